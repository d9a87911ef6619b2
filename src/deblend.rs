//! Deblending: SExtractor's multi-threshold tree (../shared/spec/deblend-clean.md §4.5),
//! SExtractor's pieces exactly.
//!
//! For one detected object with threshold t₀ and filtered peak P, N = DEBLEND_NTHRESH
//! levels t_k = t₀·(P/t₀)^(k/N) are cut through it. At each level every node of the
//! previous level is re-segmented (filtered value > t_k, same connectivity as the
//! detection); components of at least min(DETECT_MINAREA, 3) pixels become its
//! children. A child is *significant* if its filtered flux above its own isophote,
//! Σc − t·n, exceeds DEBLEND_MINCONT times the whole object's filtered flux. Going
//! back up the tree, a node with two or more significant children emits those of them
//! that were not split further as separate objects ("cores"), and is itself marked as
//! split, as are all its ancestors. If the root was split, the pixels outside the
//! cores are shared out: each core is modelled as an elliptical Gaussian (its own
//! moments, SExtractor's area correction `abcor`, amplitude t₀·e^(n/(2π·abcor·a·b))
//! capped at 4× its peak), and each pixel goes to a core drawn with probability
//! proportional to the models' values there (to the nearest model if they all vanish).
//!
//! SExtractor's orders and arithmetic are followed where they decide a pixel: a
//! level's nodes by their parent's rank, then where the scan completes them; the
//! cores deepest first, each level in node order; the core models in f32; the pixels
//! visited in the parent's pixel-list order (the one-pass scan's); the draws from
//! glibc's `rand()` stream of seed 1 ([`GlibcRand`]), which SExtractor consumes one per
//! visited pixel where the models do not all vanish, blend after blend in the order
//! the scan completes them. To stay parallel, [`plan`] builds the tree and counts each
//! blend's draws, the caller gives each blend its offset in the stream (a prefix sum
//! in completion order) and [`Sharing::assign`] shares the pixels out: the result does
//! not depend on the thread count, the strips or the backend. `--deblend-draws seeded`
//! draws per object instead ([`seeded_draws`]). The sub-object limit is optional.

use crate::label::Run;
use crate::params::{Connectivity, DeblendParams};

/// One pixel of an object: position, filtered value, unfiltered value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pixel {
    pub x: u32,
    pub y: u32,
    pub c: f32,
    pub v: f32,
}

/// A deblended child: indices of its pixels (into the parent's pixel list, in raster
/// order), its pixel list in SExtractor's order (positions in `pixels`: its core's
/// scan order, then the pixels it received, which `mthresh` reads) and the
/// barycentre of its core (0-based image coordinates), which is its position, as
/// SExtractor reports deblended objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub pixels: Vec<usize>,
    pub list: Vec<u32>,
    pub centre: (f64, f64),
    /// Its core's bounding box (xmin, xmax, ymin, ymax): SExtractor flags a piece as
    /// truncated (FLAGS 8) when its core touches the image's border.
    pub core_box: (u32, u32, u32, u32),
}

/// A small, fast, seedable generator (SplitMix64), for the reproducible draws.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1].
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }
}

/// glibc's `rand()` as SExtractor consumes it (it never calls `srand`, so the stream
/// is seed 1's; spec §4.5.2): glibc's default additive lagged-Fibonacci generator
/// (degree 31, separation 3), seeded by the multiplicative congruential recurrence
/// r_i = 16807·r_(i-1) mod (2³¹ − 1), its first 310 outputs discarded; each output is
/// the top 31 bits of a 32-bit word. The algorithm is public (glibc's `random_r`).
#[derive(Clone, Debug)]
pub struct GlibcRand {
    ring: [u32; 31],
    i: usize,
}

impl Default for GlibcRand {
    fn default() -> Self {
        GlibcRand::new(1)
    }
}

impl GlibcRand {
    /// The stream `srand(seed)` gives (seed 0 is 1, as in glibc).
    pub fn new(seed: u32) -> Self {
        let mut r = [0u32; 34];
        r[0] = if seed == 0 { 1 } else { seed };
        for i in 1..31 {
            // Schrage's method on signed 32-bit words, as glibc evaluates it.
            let prev = r[i - 1] as i32 as i64;
            let (hi, lo) = (prev / 127_773, prev % 127_773);
            let mut w = 16_807 * lo - 2_836 * hi;
            if w < 0 {
                w += 2_147_483_647;
            }
            r[i] = w as u32;
        }
        for i in 31..34 {
            r[i] = r[i - 31];
        }
        let mut ring = [0u32; 31];
        for (i, &v) in r.iter().enumerate().skip(3) {
            ring[i % 31] = v;
        }
        let mut g = GlibcRand { ring, i: 34 };
        for _ in 0..310 {
            g.step();
        }
        g
    }

    fn step(&mut self) -> u32 {
        let k = self.i % 31;
        let v = self.ring[k].wrapping_add(self.ring[(self.i + 28) % 31]);
        self.ring[k] = v;
        self.i += 1;
        v
    }

    /// The next `rand()`: 0..2³¹ − 1.
    pub fn next_rand(&mut self) -> u32 {
        self.step() >> 1
    }
}

/// Local grid of an object's bounding box: pixel index per cell, or u32::MAX.
struct Grid {
    x0: u32,
    y0: u32,
    w: usize,
    h: usize,
    cell: Vec<u32>,
}

impl Grid {
    fn new(px: &[Pixel]) -> Self {
        let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
        for p in px {
            x0 = x0.min(p.x);
            x1 = x1.max(p.x);
            y0 = y0.min(p.y);
            y1 = y1.max(p.y);
        }
        let (w, h) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
        let mut cell = vec![u32::MAX; w * h];
        for (i, p) in px.iter().enumerate() {
            cell[(p.y - y0) as usize * w + (p.x - x0) as usize] = i as u32;
        }
        Grid { x0, y0, w, h, cell }
    }
    /// The pixels next to `p` (8- or 4-connectivity), row by row from the one
    /// above, left to right.
    fn neighbours<'g>(&'g self, p: &Pixel, conn: Connectivity) -> impl Iterator<Item = usize> + 'g {
        let (x, y) = ((p.x - self.x0) as i64, (p.y - self.y0) as i64);
        (-1i64..=1)
            .flat_map(|dy| (-1i64..=1).map(move |dx| (dx, dy)))
            .filter(move |&(dx, dy)| {
                !((dx == 0 && dy == 0) || (conn == Connectivity::Four && dx != 0 && dy != 0))
            })
            .filter_map(move |(dx, dy)| self.at(x + dx, y + dy))
    }
    fn at(&self, x: i64, y: i64) -> Option<usize> {
        if x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h {
            return None;
        }
        let c = self.cell[y as usize * self.w + x as usize];
        (c != u32::MAX).then_some(c as usize)
    }
}

/// A node of the tree: its pixels (indices, raster order) and pre-analysis.
struct Node {
    /// A pixel of the component (its union-find root when the level was cut).
    rep: usize,
    thresh: f64,
    parent: usize,
    ok: bool,
    significant: bool,
    /// The component's last pixel in raster order (the largest index): where the
    /// one-pass scan completes it (spec §4.5 step 2, the node order).
    last: usize,
}

/// Moments of a set of pixels weighted by filtered values: (x̄, ȳ, x2, y2, xy)
/// after SExtractor's singularity correction.
fn moments(px: &[Pixel], set: &[usize]) -> (f64, f64, f64, f64, f64) {
    // Relative to (xmin, ymin), as SExtractor sums them (its rounding, which the
    // sharing's f32 arithmetic can see).
    let x0 = set.iter().map(|&i| px[i].x).min().unwrap_or(0) as f64;
    let y0 = set.iter().map(|&i| px[i].y).min().unwrap_or(0) as f64;
    let mut m = crate::measure::Moments::default();
    for &i in set {
        m.add(px[i].c as f64, px[i].x as f64 - x0, px[i].y as f64 - y0);
    }
    let crate::measure::Moments {
        s,
        sx,
        sy,
        sxx,
        syy,
        sxy,
    } = m;
    let (mx, my) = (sx / s, sy / s);
    let xy = sxy / s - mx * my;
    let (x2, y2, _) = crate::measure::regularised(sxx / s - mx * mx, syy / s - my * my, xy);
    (x0 + mx, y0 + my, x2, y2, xy)
}

/// The Gaussian model of a core, for the pixel sharing, in SExtractor's precisions
/// (spec §4.5.1: the centre in f64, the rest in f32).
struct Model {
    mx: f64,
    my: f64,
    cxx: f32,
    cyy: f32,
    cxy: f32,
    abcor: f32,
    amp: f32,
}

/// SExtractor's π where SExtractor uses it (abcor, amplitudes, cleaning): its own
/// 14-digit constant, not `std::f64::consts::PI` (the difference reaches the f32
/// amplitudes' last bits).
#[allow(clippy::approx_constant)]
pub(crate) const PI_SEX: f64 = 3.1415926535898;

fn model(px: &[Pixel], core: &[usize], t_core: f64, t0: f64) -> Model {
    let (mx, my, x2, y2, xy) = moments(px, core);
    let det = x2 * y2 - xy * xy;
    let d = x2 - y2;
    let tt = (0.25 * d * d + xy * xy).sqrt();
    let a = (0.5 * (x2 + y2) + tt).max(0.0).sqrt() as f32;
    let b = (0.5 * (x2 + y2) - tt).max(0.0).sqrt() as f32;
    let fdpeak = core.iter().map(|&i| px[i].c).fold(f32::MIN, f32::max);
    let dpeak = core
        .iter()
        .map(|&i| px[i].v as f64)
        .fold(f64::MIN, f64::max);
    let dnpix = core.iter().filter(|&&i| px[i].v as f64 > t_core).count() as f64;
    // Area correction for a Gaussian profile (spec §4.4, abcor), with the core's own
    // threshold and peak.
    let t2 = (t_core + dpeak) / 2.0;
    let abcor = if t2 == 0.0 || t_core / t2 <= 0.0 || a * b == 0.0 {
        1.0
    } else {
        let area2 = core.iter().filter(|&&i| px[i].v as f64 > t2).count() as f64;
        let darea = area2 - dnpix;
        let num = if darea < 0.0 { darea } else { -1.0 };
        ((num / (2.0 * PI_SEX * (t_core / t2).min(0.99).ln() * a as f64 * b as f64)).min(1.0))
            as f32
    };
    // The amplitude: f32(npix / (2π·abcor·a·b)) (the product and quotient in f64),
    // t0·e^d in f32, capped at 4 times the core's filtered peak.
    let npix = core.len() as f64;
    let dd = (npix / (2.0 * PI_SEX * abcor as f64 * a as f64 * b as f64)) as f32;
    let cap = 4.0 * fdpeak;
    let mut amp = if dd < 70.0 { t0 as f32 * dd.exp() } else { cap };
    if amp > cap {
        amp = cap;
    }
    Model {
        mx,
        my,
        cxx: (y2 / det) as f32,
        cyy: (x2 / det) as f32,
        cxy: (-2.0 * xy / det) as f32,
        abcor,
        amp,
    }
}

/// What deblending made of an object.
#[derive(Clone, Debug, PartialEq)]
pub enum Deblended {
    /// Not split: one object.
    Whole,
    /// Split into these children (at least two), in raster order of their first pixel.
    Split(Vec<Child>),
    /// A level of its tree reached the sub-object limit: kept whole, FLAGS 64.
    Overflow,
}

/// Deblends one object with draws seeded per object (`seed`): [`plan`], then
/// [`Sharing::assign`].
pub fn deblend(
    px: &[Pixel],
    t0: f64,
    minarea: usize,
    conn: Connectivity,
    p: &DeblendParams,
    seed: u64,
) -> Deblended {
    match plan(px, t0, minarea, conn, p) {
        Plan::Whole => Deblended::Whole,
        Plan::Overflow => Deblended::Overflow,
        Plan::Share(s) => {
            let draws = seeded_draws(seed, s.draws());
            Deblended::Split(s.assign(px, &draws))
        }
    }
}

/// `n` numbers in 0..2³¹ from a generator seeded with `seed` (`--deblend-draws
/// seeded`: the same for an object whatever the others).
pub fn seeded_draws(seed: u64, n: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() >> 33) as u32).collect()
}

/// The deblending tree of one object (spec §4.5): `px` its pixels in raster order,
/// `t0` its detection threshold (filtered units). Its cores and their models, or
/// why it is not split.
pub fn plan(px: &[Pixel], t0: f64, minarea: usize, conn: Connectivity, p: &DeblendParams) -> Plan {
    // One threshold (DEBLEND_NTHRESH 1) has no sub-thresholds: nothing to split at.
    if p.mincont >= 1.0 || p.nthresh < 2 || px.len() < 2 * minarea.min(3) {
        return Plan::Whole;
    }
    let peak = px.iter().map(|q| q.c as f64).fold(f64::MIN, f64::max);
    if t0.is_nan() || t0 <= 0.0 || peak <= t0 {
        return Plan::Whole;
    }
    let n = p.nthresh;
    let sub_minarea = minarea.min(3);
    let grid = Grid::new(px);
    // A component with fewer than two of the object's local maxima cannot split
    // further (its brightest pixel at any level is one of them): it is not segmented
    // again.
    let is_max = |q: &Pixel| {
        let (x, y) = ((q.x - grid.x0) as i64, (q.y - grid.y0) as i64);
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                if (dx == 0 && dy == 0) || (conn == Connectivity::Four && dx != 0 && dy != 0) {
                    continue;
                }
                if let Some(nb) = grid.at(x + dx, y + dy) {
                    if px[nb].c > q.c {
                        return false;
                    }
                }
            }
        }
        true
    };
    // The brightest pixel of any component at any level is a local maximum of the
    // object (no connected neighbour is brighter), so an object with a single local
    // maximum cannot split: most objects stop here.
    if px.iter().filter(|q| is_max(q)).take(2).count() < 2 {
        return Plan::Whole;
    }
    let root_flux: f64 = px.iter().map(|q| q.c as f64).sum();
    // The tree, built in one pass (a component tree): pixels are added in decreasing
    // filtered value to a union-find that keeps each component's area and flux; after
    // the pixels above t_k are in, its components are the nodes of level k. Level 0
    // is the whole object.
    let mut nodes = vec![Node {
        rep: 0,
        thresh: t0,
        parent: usize::MAX,
        ok: true,
        significant: true,
        last: px.len() - 1,
    }];
    let mut order: Vec<usize> = (0..px.len()).collect();
    order.sort_by(|&a, &b| px[b].c.total_cmp(&px[a].c).then(a.cmp(&b)));
    let mut uf_parent: Vec<usize> = (0..px.len()).collect();
    let mut size = vec![0usize; px.len()];
    let mut flux = vec![0f64; px.len()];
    let mut lastidx: Vec<usize> = (0..px.len()).collect();
    let mut added = vec![false; px.len()];
    let mut live: Vec<usize> = Vec::new();
    let mut live_pos = vec![usize::MAX; px.len()];
    let mut next = 0usize;
    // levels[k] = node indices at level k (k = 0..n-1); filled from the top down.
    let mut levels: Vec<Vec<usize>> = vec![Vec::new(); n];
    levels[0].push(0);
    for k in (1..n).rev() {
        let t = t0 * (peak / t0).powf(k as f64 / n as f64);
        while next < order.len() && px[order[next]].c as f64 > t {
            let i = order[next];
            next += 1;
            added[i] = true;
            size[i] = 1;
            flux[i] = px[i].c as f64;
            live_pos[i] = live.len();
            live.push(i);
            for nb in grid.neighbours(&px[i], conn) {
                if !added[nb] {
                    continue;
                }
                let (a, b) = (
                    crate::label::find(&mut uf_parent, i),
                    crate::label::find(&mut uf_parent, nb),
                );
                if a == b {
                    continue;
                }
                let (keep, gone) = if size[a] >= size[b] { (a, b) } else { (b, a) };
                uf_parent[gone] = keep;
                size[keep] += size[gone];
                flux[keep] += flux[gone];
                lastidx[keep] = lastidx[keep].max(lastidx[gone]);
                let pos = live_pos[gone];
                live.swap_remove(pos);
                if pos < live.len() {
                    live_pos[live[pos]] = pos;
                }
                live_pos[gone] = usize::MAX;
            }
        }
        for &r in &live {
            if size[r] < sub_minarea {
                continue;
            }
            let significant = flux[r] - t * size[r] as f64 > p.mincont * root_flux;
            levels[k].push(nodes.len());
            nodes.push(Node {
                rep: r,
                thresh: t,
                parent: usize::MAX,
                ok: true,
                significant,
                last: lastidx[r],
            });
        }
        // Parents of the level-(k+1) nodes: the level-k node now holding their pixels.
        if k + 1 < n {
            let here: std::collections::HashMap<usize, usize> =
                levels[k].iter().map(|&ni| (nodes[ni].rep, ni)).collect();
            let (upper, lower) = (&levels[k + 1], &mut nodes);
            for &ci in upper {
                let r = crate::label::find(&mut uf_parent, lower[ci].rep);
                lower[ci].parent = here[&r];
            }
        }
    }
    for &ci in &levels[1] {
        nodes[ci].parent = 0;
    }
    // The sub-object limit L, as SExtractor counts (spec §4.5.6): it builds the levels
    // one after the other and fails on adding a level's (L+1)-th node, or before
    // building a level when the one below holds L: levels 1..N-2 fail at L nodes, the
    // last level at L+1.
    if let Some(limit) = p.sub_object_limit {
        let over = (1..n).any(|k| levels[k].len() >= if k + 1 < n { limit } else { limit + 1 });
        if over {
            return Plan::Overflow;
        }
    }
    // Keep the levels down to the last one that has nodes (the old per-level loop
    // stopped at the first empty level; nodes below an empty level cannot exist).
    let depth = levels.iter().position(|l| l.is_empty()).unwrap_or(n);
    levels.truncate(depth);
    // SExtractor's node order (spec §4.5 step 2): a level's nodes by their parent's
    // rank on the level above, then by where the scan completes them.
    let mut rank = vec![0usize; nodes.len()];
    for level in levels.iter_mut().skip(1) {
        level.sort_by_key(|&ni| (rank[nodes[ni].parent], nodes[ni].last));
        for (r, &ni) in level.iter().enumerate() {
            rank[ni] = r;
        }
    }
    // Prune from the top: nodes with two or more significant children emit them, the
    // deepest first and each level in node order (the core order, spec §4.5 step 4).
    let mut cores: Vec<usize> = Vec::new();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for level in levels.iter().skip(1) {
        for &c in level {
            kids[nodes[c].parent].push(c);
        }
    }
    for k in (0..levels.len().saturating_sub(1)).rev() {
        for &ni in &levels[k] {
            let children = &kids[ni];
            let mut ok = nodes[ni].ok;
            for &c in children {
                ok &= nodes[c].ok;
            }
            let sig: Vec<usize> = children
                .iter()
                .copied()
                .filter(|&c| nodes[c].significant)
                .collect();
            if sig.len() >= 2 {
                for &c in &sig {
                    if nodes[c].ok {
                        cores.push(c);
                    }
                }
                ok = false;
            }
            nodes[ni].ok = ok;
        }
    }
    if nodes[0].ok || cores.len() < 2 {
        return Plan::Whole;
    }
    // The pixels of each core: its component above its threshold, grown from its
    // representative pixel; raster order.
    let mut core_pixels = Vec::with_capacity(cores.len());
    let mut seen = vec![false; px.len()];
    for &c in &cores {
        let (rep, t) = (nodes[c].rep, nodes[c].thresh);
        let mut stack = vec![rep];
        seen[rep] = true;
        let mut set = Vec::new();
        while let Some(k) = stack.pop() {
            set.push(k);
            for nb in grid.neighbours(&px[k], conn) {
                if !seen[nb] && px[nb].c as f64 > t {
                    seen[nb] = true;
                    stack.push(nb);
                }
            }
        }
        set.sort_unstable();
        core_pixels.push(set);
    }
    let models: Vec<Model> = cores
        .iter()
        .zip(&core_pixels)
        .map(|(&c, set)| model(px, set, nodes[c].thresh, t0))
        .collect();
    // The other pixels, in the parent's pixel-list order (the one-pass scan's), and
    // how many of them take a draw (those where the models do not all vanish).
    let order = crate::measure::scan_list_order(&runs_of(px, &(0..px.len()).collect::<Vec<_>>()));
    let walk: Vec<u32> = order.into_iter().filter(|&i| !seen[i as usize]).collect();
    // The models' values are kept for the sharing when they are few (most blends),
    // else computed again there.
    let k = models.len();
    let keep = walk.len() * (k + 2) <= KEPT_SHARES;
    let mut kept = Vec::with_capacity(if keep { walk.len() * (k + 2) } else { 0 });
    let mut cum = vec![0f32; k];
    let mut draws = 0;
    for &i in &walk {
        let (total, best) = shares(&px[i as usize], &models, &mut cum);
        draws += (total as f64 > 1e-31) as usize;
        if keep {
            kept.push(total);
            kept.push(f32::from_bits(best as u32));
            kept.extend_from_slice(&cum);
        }
    }
    Plan::Share(Sharing {
        core_pixels,
        models,
        walk,
        draws,
        kept,
    })
}

/// What the tree made of an object, before the pixels outside the cores are shared
/// out (which takes `draws` random numbers, [`Sharing::draws`]).
pub enum Plan {
    Whole,
    Overflow,
    Share(Sharing),
}

impl Plan {
    /// The random numbers sharing the object out takes (0 when it is not split).
    pub fn draws(&self) -> usize {
        match self {
            Plan::Share(s) => s.draws(),
            _ => 0,
        }
    }
}

/// A split object whose pixels outside the cores are still to be shared out.
pub struct Sharing {
    /// Each core's pixels (raster order), in core order.
    core_pixels: Vec<Vec<usize>>,
    models: Vec<Model>,
    /// The pixels outside the cores, in the parent's list order.
    walk: Vec<u32>,
    draws: usize,
    /// Per pixel of the walk, when kept: the total, the nearest core (its bits) and
    /// the cumulative values.
    kept: Vec<f32>,
}

/// The most values [`Sharing`] keeps (4 MiB of f32) rather than compute again.
const KEPT_SHARES: usize = 1 << 20;

/// The models' cumulative values at a pixel (into `cum`), in SExtractor's f32
/// arithmetic (spec §4.5.1 step 4): the total, and the nearest core (smallest
/// q, the first on a tie).
fn shares(p: &Pixel, models: &[Model], cum: &mut [f32]) -> (f32, usize) {
    let (mut total, mut best, mut qmin) = (0f32, 0usize, 1e31f32);
    for (k, m) in models.iter().enumerate() {
        let dx = (p.x as f64 - m.mx) as f32;
        let dy = (p.y as f64 - m.my) as f32;
        let s = m.cxx * dx * dx + m.cyy * dy * dy + m.cxy * dx * dy;
        let q = ((0.5 * s) as f64 / m.abcor as f64) as f32;
        if q < qmin {
            qmin = q;
            best = k;
        }
        let w = if q < 70.0 { m.amp * (-q).exp() } else { 0.0 };
        total += w;
        cum[k] = total;
    }
    (total, best)
}

impl Sharing {
    /// The random numbers sharing the pixels out takes (one per pixel outside the
    /// cores where the models do not all vanish).
    pub fn draws(&self) -> usize {
        self.draws
    }

    /// Shares the pixels out with `draws` (exactly [`Sharing::draws`] numbers in
    /// 0..2³¹, each used by the next pixel of the walk that takes one): a pixel goes
    /// to the first core whose cumulative model reaches a uniform fraction of the
    /// total, or to the nearest core where the models vanish. The children are in
    /// core order, each with its pixel list in SExtractor's order: its core's scan
    /// order, then the pixels it received in the order they were visited.
    pub fn assign(self, px: &[Pixel], draws: &[u32]) -> Vec<Child> {
        assert_eq!(draws.len(), self.draws, "one number per draw");
        let k = self.models.len();
        let mut gathered: Vec<Vec<usize>> = vec![Vec::new(); k];
        let mut cum = vec![0f32; k];
        let mut next = draws.iter();
        let kept = !self.kept.is_empty();
        for (n, &i) in self.walk.iter().enumerate() {
            let i = i as usize;
            let (total, best) = if kept {
                let at = n * (k + 2);
                cum.copy_from_slice(&self.kept[at + 2..at + 2 + k]);
                (self.kept[at], self.kept[at + 1].to_bits() as usize)
            } else {
                shares(&px[i], &self.models, &mut cum)
            };
            let to = if total as f64 > 1e-31 {
                let r = *next.next().expect("counted") as f32;
                let u = (total * r) / 2147483648f32;
                cum.iter().position(|&c| c >= u).unwrap_or(best)
            } else {
                best
            };
            gathered[to].push(i);
        }
        self.core_pixels
            .into_iter()
            .zip(gathered)
            .zip(&self.models)
            .map(|((core, got), m)| {
                // SExtractor's list: the core in its own scan order, then the
                // gathered pixels; as positions in the child's raster-ordered list.
                let core_order = crate::measure::scan_list_order(&runs_of(px, &core));
                let mut pixels: Vec<usize> = core.iter().chain(&got).copied().collect();
                pixels.sort_unstable();
                let at = |i: usize| pixels.binary_search(&i).expect("the child's pixel") as u32;
                let list: Vec<u32> = core_order
                    .iter()
                    .map(|&k| at(core[k as usize]))
                    .chain(got.iter().map(|&i| at(i)))
                    .collect();
                let core_box = core.iter().fold((u32::MAX, 0, u32::MAX, 0), |b, &i| {
                    let q = &px[i];
                    (b.0.min(q.x), b.1.max(q.x), b.2.min(q.y), b.3.max(q.y))
                });
                Child {
                    list,
                    pixels,
                    centre: (m.mx, m.my),
                    core_box,
                }
            })
            .collect()
    }
}

/// Runs of a set of pixels given in raster order.
pub fn runs_of(px: &[Pixel], set: &[usize]) -> Vec<Run> {
    crate::label::runs_from_raster(set.iter().map(|&i| (px[i].x, px[i].y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of pixels: two blobs (16, 10, 10 and 10, 10, 10) joined by a saddle of 6,
    /// in a skirt of 1.5 above the threshold 1.
    fn two_blobs() -> Vec<Pixel> {
        [1.5, 16.0, 10.0, 10.0, 6.0, 6.0, 10.0, 10.0, 10.0, 1.5]
            .iter()
            .enumerate()
            .map(|(x, &c)| Pixel {
                x: x as u32,
                y: 0,
                c,
                v: c,
            })
            .collect()
    }

    fn run(nthresh: usize, limit: Option<usize>) -> Deblended {
        let p = DeblendParams {
            nthresh,
            mincont: 0.005,
            sub_object_limit: limit,
            draws: Default::default(),
        };
        deblend(&two_blobs(), 1.0, 3, Connectivity::Eight, &p, 1)
    }

    /// A piece's pixel list (spec §4.5.3): its core in its own scan order, then the
    /// pixels it received in the order the parent's list visits them. With draws of 0
    /// every shared pixel goes to the first core in core order (the first whose
    /// cumulative model reaches 0): the left blob's, which completes first.
    #[test]
    fn a_pieces_list_is_its_core_then_its_gathered_pixels() {
        let px = two_blobs();
        let p = DeblendParams {
            nthresh: 4,
            mincont: 0.005,
            sub_object_limit: None,
            draws: Default::default(),
        };
        let Plan::Share(s) = plan(&px, 1.0, 3, Connectivity::Eight, &p) else {
            panic!("the blobs split");
        };
        // The pixels outside the cores (x = 0, 4, 5, 9) each take a draw.
        assert_eq!(s.draws(), 4);
        let children = s.assign(&px, &[0; 4]);
        assert_eq!(children.len(), 2);
        assert_eq!(children[0].pixels, [0, 1, 2, 3, 4, 5, 9]);
        // Core x = 1, 2, 3 (positions 1..3), then x = 0, 4, 5, 9 as visited.
        assert_eq!(children[0].list, [1, 2, 3, 0, 4, 5, 6]);
        assert_eq!(
            (children[1].pixels.as_slice(), children[1].list.as_slice()),
            (&[6, 7, 8][..], &[0, 1, 2][..])
        );
        // The largest draw goes to the last core whose cumulative model reaches it.
        let last = plan(&px, 1.0, 3, Connectivity::Eight, &p);
        let Plan::Share(s) = last else { unreachable!() };
        let children = s.assign(&px, &[(1 << 31) - 1; 4]);
        assert!(children[1].pixels.contains(&9), "{:?}", children[1].pixels);
    }

    #[test]
    fn glibc_rand_is_glibcs_stream() {
        let mut g = GlibcRand::default();
        let first: Vec<u32> = (0..10).map(|_| g.next_rand()).collect();
        assert_eq!(
            first,
            [
                1804289383, 846930886, 1681692777, 1714636915, 1957747793, 424238335, 719885386,
                1649760492, 596516649, 1189641421
            ]
        );
        for _ in 10..999_999 {
            g.next_rand();
        }
        assert_eq!(g.next_rand(), 429357853, "the 10^6-th output");
    }

    /// The sub-object limit as SExtractor counts (spec §4.5.6). With 4 levels
    /// (t = 2, 4, 8) the blobs separate at the last level only, where L nodes pass;
    /// with 8 levels (t = 1.41 .. 11.3) they separate at level 6 of 7, where L nodes
    /// fail.
    #[test]
    fn the_sub_object_limit_counts_as_sextractor() {
        assert!(matches!(run(4, None), Deblended::Split(ref c) if c.len() == 2));
        assert!(matches!(run(4, Some(2)), Deblended::Split(ref c) if c.len() == 2));
        assert_eq!(run(4, Some(1)), Deblended::Overflow);
        assert!(matches!(run(8, None), Deblended::Split(ref c) if c.len() == 2));
        assert_eq!(run(8, Some(2)), Deblended::Overflow);
        assert!(matches!(run(8, Some(3)), Deblended::Split(ref c) if c.len() == 2));
    }
}
