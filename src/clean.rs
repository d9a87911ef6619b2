//! Cleaning: spurious detections in the wings of bright objects are merged into them
//! (../shared/spec/deblend-clean.md §4.6).
//!
//! Each object B is modelled as a Moffat-like profile I(r²) = amp·(1 + α·r²)^(−β)
//! (β = CLEAN_PARAM) that reaches its threshold at its isophotal area:
//! U = π·a·b, amp = fdflux/(2·U·abcor), α = ((amp/thresh)^(1/β) − 1)·U/npix. A fainter
//! object F is cleaned by B if B's profile at F's position, amp·v^(−β) with
//! v = 1 + α·(cxx·dx² + cyy·dy² + cxy·dx·dy), exceeds F's `mthresh` (its minarea-th
//! brightest pixel above threshold). Only pairs closer than 10·(a_B + a_F) are tested.
//!
//! SExtractor's semantics, not SEP's (spec §4.6.3): objects are cleaned one after the
//! other in the order their detection completes (the last row of the detected
//! component, then the last column of that row; a blend's pieces in core order), each
//! against SExtractor's clean list: an array that newcomers join at the end and that
//! loses objects by swap-removal, visited in index order. The brighter of the pair
//! tests the other (the newcomer tests a listed object only if that one has strictly
//! less filtered flux; on a tie the listed one tests the newcomer). A newcomer cleaned
//! by a listed object is merged into it at once (its filtered flux and area grow, and
//! later tests read the grown values; the victims the newcomer recorded so far stay);
//! a newcomer that survives eats its victims, the last recorded first, each
//! swap-removed at its merge, and joins the list. Listed objects' models are
//! recomputed from their current sums at every test, a newcomer's once on entry. An
//! object that has been cleaned cleans nothing afterwards. Pairs are tested when
//! closer than (strictly) 10·(a₁ + a₂).
//!
//! SEP instead tests every pair after detection (O(N²); `≤` in the distance test,
//! the later object as the brighter on a tie), lets cleaned objects still clean
//! others, and drops cleaned objects. SExtractor's list also forgets objects once the
//! scan is MEMORY_BUFSIZE rows past them or the list holds MEMORY_OBJSTACK objects:
//! skysift does so only when asked ([`Forget`]), and otherwise keeps every object, so
//! the result does not depend on how the image is cut. Candidates come from a
//! uniform grid over the listed objects, so the cost grows as N log N for ordinary
//! fields.

use crate::measure::Object;

const CLEAN_ZONE: f64 = 10.0;

/// What cleaning reads of an object (a streamed run keeps only this in memory while
/// the objects wait for cleaning).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CleanRecord {
    pub x: f64,
    pub y: f64,
    pub a: f64,
    pub b: f64,
    pub cxx: f64,
    pub cyy: f64,
    pub cxy: f64,
    pub fdflux: f64,
    pub thresh: f64,
    pub abcor: f64,
    pub mthresh: f64,
    pub npix: u32,
    /// The bounding box's rows (SExtractor's ycmin/ycmax come from them).
    pub ymin: u32,
    pub ymax: u32,
}

impl From<&Object> for CleanRecord {
    fn from(o: &Object) -> Self {
        CleanRecord {
            x: o.x,
            y: o.y,
            a: o.a,
            b: o.b,
            cxx: o.cxx,
            cyy: o.cyy,
            cxy: o.cxy,
            fdflux: o.fdflux,
            thresh: o.thresh,
            abcor: o.abcor,
            mthresh: o.mthresh,
            npix: o.npix,
            ymin: o.ymin,
            ymax: o.ymax,
        }
    }
}

/// How SExtractor's cleaning list forgets objects (spec §4.6.3 steps 3 and 8);
/// skysift keeps every object unless asked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forget {
    /// MEMORY_OBJSTACK: when the list holds this many, the object whose ycmax is
    /// smallest leaves before the next one is cleaned.
    pub objstack: Option<usize>,
    /// The image buffer's lines H_s and its margin M_s (from MEMORY_BUFSIZE, the local
    /// background's thickness and the filter), and the image height: objects leave as
    /// their rows scroll out.
    pub buffer: Option<(u32, u32, u32)>,
    /// The rows that the catalog's apertures and vignets add around an object's
    /// centre (SExtractor's cleanmargin).
    pub cleanmargin: i64,
}

impl Forget {
    /// SExtractor's buffer for `params` on an image of `height` rows (None when
    /// MEMORY_BUFSIZE is not set): H_s = MEMORY_BUFSIZE + m_b lines (at most the
    /// height, at least the filter's), M_s = 1 + m_b (at least half the filter plus
    /// one), m_b = BACKPHOTO_THICK + MEMORY_BUFSIZE/4 with a local background.
    pub fn for_params(p: &crate::params::ExtractParams, height: usize) -> Forget {
        let phot = &p.phot;
        let fh = p.kernel.as_ref().map_or(0, |k| k.height());
        let buffer = p.memory_bufsize.map(|buf| {
            let mb = if phot.backphoto == crate::photometry::BackPhoto::Local {
                phot.backphoto_thick + buf / 4
            } else {
                0
            };
            let hs = (buf + mb).min(height).max(fh);
            let mut ms = 1 + mb;
            if fh > 0 {
                ms = ms.max((fh - 1) / 2 + 1);
            }
            (hs as u32, ms as u32, height as u32)
        });
        let mut cleanmargin = 0i64;
        if let Some((_, h)) = phot.want.vignet {
            cleanmargin = cleanmargin.max((h as i64 + 1) / 2);
        }
        if phot.want.aper {
            for &d in &phot.apertures {
                cleanmargin = cleanmargin.max(((d + 1.0) / 2.0) as i64 + 1);
            }
        }
        Forget {
            objstack: p.memory_objstack,
            buffer,
            cleanmargin,
        }
    }

    fn any(&self) -> bool {
        self.objstack.is_some() || self.buffer.is_some()
    }
}

/// SExtractor's ycmin and ycmax of an object joining the list (spec §4.6.3 step 7).
fn yc_range(o: &CleanRecord, cleanmargin: i64) -> (i64, i64) {
    let (cxx, cyy, cxy) = (o.cxx as f32, o.cyy as f32, o.cxy as f32);
    let sq = cxy * cxy;
    let mut hh1 = (cyy as f64 - sq as f64 / (4.0 * cxx as f64)) as f32;
    hh1 = if hh1 > 0.0 {
        (1.0 / (3.0 * hh1 as f64).sqrt()) as f32
    } else {
        0.0
    };
    let hh2 = (o.ymax as i64 - o.ymin as i64 + 1) as f64;
    let margin = (2.0 * (hh1 as f64).max(hh2) + 4.0 + 0.49999) as i64;
    let yc = (o.y + 0.49999) as i64;
    let ycmax = (o.ymax as i64 + margin).max(yc + cleanmargin);
    let ycmin = (o.ymin as i64 - margin).min(yc - cleanmargin);
    (ycmin, ycmax)
}

/// The Moffat model of an object for cleaning: (amp, α).
fn moffat(o: &CleanRecord, beta: f64) -> (f64, f64) {
    let u = crate::deblend::PI_SEX * o.a * o.b;
    let amp = o.fdflux / (2.0 * u * o.abcor);
    let alpha = if o.thresh > 0.0 && amp > 0.0 {
        ((amp / o.thresh).powf(1.0 / beta) - 1.0) * u / o.npix as f64
    } else {
        0.0
    };
    (amp, alpha)
}

/// Whether `b` cleans `f` (b is the brighter of the two).
fn cleans(b: &CleanRecord, model: (f64, f64), f: &CleanRecord, beta: f64) -> bool {
    let (dx, dy) = (f.x - b.x, f.y - b.y);
    let v = 1.0 + model.1 * (b.cxx * dx * dx + b.cyy * dy * dy + b.cxy * dx * dy);
    if v <= 1.0 {
        return false;
    }
    let contribution = if v < 1e10 {
        model.0 * v.powf(-beta)
    } else {
        0.0
    };
    contribution > f.mthresh
}

/// Whether a pair is tested: closer than CLEAN_ZONE·(a₁ + a₂) (SExtractor's strict
/// comparison; never for undefined or negative sizes or positions).
fn close(a: &CleanRecord, b: &CleanRecord) -> bool {
    let (dx, dy) = (a.x - b.x, a.y - b.y);
    let r = (a.a + b.a) * CLEAN_ZONE;
    r >= 0.0 && dx * dx + dy * dy < r * r
}

/// The order objects are cleaned in: by the row on which their detection completed
/// (`entry`: SExtractor's entry key), then by index (catalog order).
fn cleaning_order(entry: &[Entry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entry.len()).collect();
    order.sort_by_key(|&i| (entry[i], i));
    order
}

/// The kept objects, found by position: objects with a ≤ `a_cut` in a uniform grid
/// of cells at least 2·CLEAN_ZONE·a_cut wide (two of them close enough to be tested
/// are in the same or adjacent cells), the larger ones in a list tested against every
/// newcomer.
struct Kept {
    a_cut: f64,
    cell: f64,
    /// The grid's origin (cell (0, 0) starts there) and size in cells.
    x0: f64,
    y0: f64,
    nx: usize,
    ny: usize,
    cells: Vec<Vec<u32>>,
    big: Vec<usize>,
}

impl Kept {
    fn new(objs: &[CleanRecord]) -> Kept {
        let mut aa: Vec<f64> = objs.iter().map(|o| o.a).filter(|a| a.is_finite()).collect();
        aa.sort_by(|a, b| a.total_cmp(b));
        let med = if aa.is_empty() {
            1.0
        } else {
            aa[aa.len() / 2].max(0.1)
        };
        let a_cut = 4.0 * med;
        let (mut x0, mut x1, mut y0, mut y1) = (0f64, 0f64, 0f64, 0f64);
        for o in objs.iter().filter(|o| o.x.is_finite() && o.y.is_finite()) {
            x0 = x0.min(o.x);
            x1 = x1.max(o.x);
            y0 = y0.min(o.y);
            y1 = y1.max(o.y);
        }
        // Cells of at least 2·CLEAN_ZONE·a_cut (1% more, against rounding in the
        // cell arithmetic), and no more cells than about 4 per object (wider cells keep
        // the search exact, only less selective).
        let mut cell = 2.02 * CLEAN_ZONE * a_cut;
        let max_cells = 4.0 * objs.len() as f64 + 64.0;
        let span = |c: f64| ((x1 - x0) / c).floor() + 1.0;
        let spany = |c: f64| ((y1 - y0) / c).floor() + 1.0;
        while cell.is_finite() && span(cell) * spany(cell) > max_cells {
            cell *= 2.0;
        }
        let (nx, ny) = if span(cell).is_finite() && spany(cell).is_finite() {
            (span(cell) as usize, spany(cell) as usize)
        } else {
            // Positions spread beyond f64's range: one cell.
            cell = f64::INFINITY;
            (1, 1)
        };
        Kept {
            a_cut,
            cell,
            x0,
            y0,
            nx,
            ny,
            cells: vec![Vec::new(); nx * ny],
            big: Vec::new(),
        }
    }

    /// The cell of a small object (a ≤ a_cut; positions are finite for those, as
    /// a NaN or infinite position makes the moments, hence a, NaN).
    fn cell_of(&self, o: &CleanRecord) -> (usize, usize) {
        let cx = ((o.x - self.x0) / self.cell)
            .floor()
            .clamp(0.0, (self.nx - 1) as f64);
        let cy = ((o.y - self.y0) / self.cell)
            .floor()
            .clamp(0.0, (self.ny - 1) as f64);
        (cx as usize, cy as usize)
    }

    fn small(&self, o: &CleanRecord) -> bool {
        o.a <= self.a_cut && o.x.is_finite() && o.y.is_finite()
    }

    fn insert(&mut self, objs: &[CleanRecord], i: usize) {
        if self.small(&objs[i]) {
            let (cx, cy) = self.cell_of(&objs[i]);
            self.cells[cy * self.nx + cx].push(i as u32);
        } else {
            self.big.push(i);
        }
    }

    fn remove(&mut self, objs: &[CleanRecord], i: usize) {
        if self.small(&objs[i]) {
            let (cx, cy) = self.cell_of(&objs[i]);
            let list = &mut self.cells[cy * self.nx + cx];
            let at = list
                .iter()
                .position(|&j| j as usize == i)
                .expect("kept object");
            list.swap_remove(at);
        } else {
            let at = self.big.iter().position(|&j| j == i).expect("kept object");
            self.big.swap_remove(at);
        }
    }

    /// Every kept object that might be close to `o` (a superset of the close ones).
    fn near(&self, o: &CleanRecord, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.big);
        if !(o.x.is_finite() && o.y.is_finite()) || o.a.is_nan() {
            return; // nothing is close to an object without a position or size
        }
        // Small kept objects within 10·(a + a_cut): cells within `reach` of o's cell.
        // For a small newcomer that is 20·a_cut, less than a cell (they are 1% wider);
        // for a larger one, one cell more than needed, against rounding.
        let reach = if o.a <= self.a_cut {
            1
        } else {
            let r = (CLEAN_ZONE * (o.a + self.a_cut) / self.cell).ceil() + 1.0;
            if r.is_finite() {
                r.min(1e9) as i64
            } else {
                i64::MAX / 4
            }
        };
        let (cx, cy) = (
            ((o.x - self.x0) / self.cell).floor() as i64,
            ((o.y - self.y0) / self.cell).floor() as i64,
        );
        let (nx, ny) = (self.nx as i64, self.ny as i64);
        let xa = cx.saturating_sub(reach).max(0);
        let xb = cx.saturating_add(reach).min(nx - 1);
        let ya = cy.saturating_sub(reach).max(0);
        let yb = cy.saturating_add(reach).min(ny - 1);
        for y in ya..=yb {
            for x in xa..=xb {
                out.extend(
                    self.cells[(y * nx + x) as usize]
                        .iter()
                        .map(|&j| j as usize),
                );
            }
        }
    }
}

/// SExtractor's clean list (spec §4.6.3 step 2): an array joined at the end and left
/// by swap-removal (tests visit it in index order), each object's index in it
/// (`usize::MAX` when not listed), and the grid that finds its members by position
/// (None: every member is a candidate).
struct CleanList {
    items: Vec<usize>,
    pos: Vec<usize>,
    grid: Option<Kept>,
}

impl CleanList {
    fn contains(&self, s: usize) -> bool {
        self.pos[s] != usize::MAX
    }

    fn push(&mut self, recs: &[CleanRecord], o: usize) {
        self.pos[o] = self.items.len();
        self.items.push(o);
        if let Some(g) = self.grid.as_mut() {
            g.insert(recs, o);
        }
    }

    /// Swap-removes `s`: the last member takes its index.
    fn remove(&mut self, recs: &[CleanRecord], s: usize) {
        let k = self.pos[s];
        self.items.swap_remove(k);
        if k < self.items.len() {
            self.pos[self.items[k]] = k;
        }
        self.pos[s] = usize::MAX;
        if let Some(g) = self.grid.as_mut() {
            g.remove(recs, s);
        }
    }
}

/// For each object, the object it is merged into (itself if it survives).
/// `done[i]` is the row on which object i's detection completed (the last row of its
/// detected component, before deblending); see the module's text for the order and
/// the rules.
pub fn clean_targets(objs: &[Object], done: &[u32], beta: f64) -> Vec<usize> {
    let recs: Vec<CleanRecord> = objs.iter().map(CleanRecord::from).collect();
    clean_targets_records(&recs, done, beta)
}

/// When an object enters cleaning (spec §4.6.3 step 1): the last row of its
/// detection, the last column of that row (where the scan completes it), then its
/// place among the pieces of its blend (core order).
pub type Entry = (u32, u32, u32);

/// Entry keys from completion rows alone (ties in catalog order).
fn rows_only(done: &[u32]) -> Vec<Entry> {
    done.iter().map(|&d| (d, 0, 0)).collect()
}

/// [`clean_targets`] from what cleaning reads of each object.
pub fn clean_targets_records(objs: &[CleanRecord], done: &[u32], beta: f64) -> Vec<usize> {
    let keep = Forget::default();
    sequential(objs, &rows_only(done), beta, &keep, Some(Kept::new(objs))).0
}

/// [`clean_targets_records`], and for each object the row on which it was merged
/// (`u32::MAX` for a survivor): the completion row of the newcomer of its merge, the
/// victim or its direct eater, whichever completed later (photometry.md §1.1.5: the
/// victim's pixels on rows before it are written back into the measurement image).
pub fn clean_records(
    objs: &[CleanRecord],
    entry: &[Entry],
    beta: f64,
    forget: &Forget,
) -> (Vec<usize>, Vec<u32>) {
    sequential(objs, entry, beta, forget, Some(Kept::new(objs)))
}

/// The same decisions with every kept object as a candidate (for tests).
pub fn clean_targets_brute_force(objs: &[Object], done: &[u32], beta: f64) -> Vec<usize> {
    let recs: Vec<CleanRecord> = objs.iter().map(CleanRecord::from).collect();
    sequential(&recs, &rows_only(done), beta, &Forget::default(), None).0
}

/// The sequential cleaning, with candidates from the grid of kept objects (`None`:
/// every kept object is a candidate): each object's final target and the row of its
/// merge ([`clean_records`]).
fn sequential(
    objs: &[CleanRecord],
    entry: &[Entry],
    beta: f64,
    forget: &Forget,
    grid: Option<Kept>,
) -> (Vec<usize>, Vec<u32>) {
    assert_eq!(objs.len(), entry.len(), "one entry key per object");
    let n = objs.len();
    // What the tests read, grown by each merge at once (spec §4.6.3 step 6: the
    // eater's filtered flux and area; position and shape stay).
    let mut recs: Vec<CleanRecord> = objs.to_vec();
    let mut target: Vec<usize> = (0..n).collect();
    let mut merged_at = vec![u32::MAX; n];
    let mut list = CleanList {
        items: Vec::new(),
        pos: vec![usize::MAX; n],
        grid,
    };
    let (mut cands, mut victims) = (Vec::new(), Vec::new());
    let grow = |recs: &mut [CleanRecord], eater: usize, victim: usize| {
        let v = recs[victim];
        let e = &mut recs[eater];
        e.fdflux += v.fdflux;
        e.npix += v.npix;
        e.ymin = e.ymin.min(v.ymin);
        e.ymax = e.ymax.max(v.ymax);
    };
    // SExtractor's forgetting (options): each listed object's ycmin/ycmax from when
    // it joined, the smallest ycmin first, and the next scan row whose pass is due.
    let mut yc = vec![(0i64, 0i64); n];
    let mut by_ycmin: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>> =
        Default::default();
    let mut next_row = forget.buffer.map_or(0, |(hs, ms, _)| hs as i64 - ms as i64);
    let mut last_pass_done = false;
    // Removes listed objects (output, not merged) with ycmin <= t, from the last index
    // down to 0, swap-removing as it goes.
    let pass = |t: i64,
                list: &mut CleanList,
                by_ycmin: &mut std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>>,
                yc: &[(i64, i64)],
                recs: &[CleanRecord]| {
        while let Some(&std::cmp::Reverse((v, i))) = by_ycmin.peek() {
            if !list.contains(i) || yc[i].0 != v {
                by_ycmin.pop();
                continue;
            }
            break;
        }
        if by_ycmin.peek().is_none_or(|r| r.0 .0 > t) {
            return;
        }
        let mut k = list.items.len();
        while k > 0 {
            k -= 1;
            let s = list.items[k];
            if yc[s].0 <= t {
                list.remove(recs, s);
            }
        }
    };
    for o in cleaning_order(entry) {
        if let Some((hs, ms, height)) = forget.buffer {
            let (hs, ms, height) = (hs as i64, ms as i64, height as i64);
            let r = entry[o].0 as i64;
            if height <= hs {
                // The whole image in the buffer: one pass, before the last row's
                // objects enter.
                if r == height - 1 && !last_pass_done {
                    last_pass_done = true;
                    pass(0, &mut list, &mut by_ycmin, &yc, &recs);
                }
            } else {
                while next_row <= r + 1 && next_row <= height - 1 - ms {
                    let t = next_row - (hs - ms);
                    pass(t, &mut list, &mut by_ycmin, &yc, &recs);
                    next_row += 1;
                }
            }
        }
        if let Some(cap) = forget.objstack {
            if list.items.len() >= cap.max(1) {
                // The listed object whose rows end first leaves (output).
                let (_, s) = list
                    .items
                    .iter()
                    .enumerate()
                    .map(|(k, &s)| ((yc[s].1, k), s))
                    .min()
                    .expect("a full list");
                list.remove(&recs, s);
            }
        }
        cands.clear();
        match &list.grid {
            Some(g) => g.near(&recs[o], &mut cands),
            None => cands.extend_from_slice(&list.items),
        }
        cands.retain(|&s| list.contains(s) && close(&recs[o], &recs[s]));
        cands.sort_by_key(|&s| list.pos[s]);
        // The newcomer's model from its sums on entry; a listed object's from its
        // current ones, at every test.
        let model = moffat(&recs[o], beta);
        let mut cleaned = false;
        victims.clear();
        for &s in &cands {
            if recs[s].fdflux < recs[o].fdflux {
                if cleans(&recs[o], model, &recs[s], beta) {
                    victims.push(s);
                }
            } else if cleans(&recs[s], moffat(&recs[s], beta), &recs[o], beta) {
                // Merged at once; the victims recorded so far stay listed.
                target[o] = s;
                merged_at[o] = entry[o].0;
                grow(&mut recs, s, o);
                cleaned = true;
                break;
            }
        }
        if cleaned {
            continue;
        }
        // The newcomer eats its victims, the last recorded first, each leaving the
        // list (swap-removed) at its merge; then it joins the list.
        for &s in victims.iter().rev() {
            target[s] = o;
            merged_at[s] = entry[o].0;
            grow(&mut recs, o, s);
            list.remove(&recs, s);
        }
        if forget.any() {
            yc[o] = yc_range(&recs[o], forget.cleanmargin);
            by_ycmin.push(std::cmp::Reverse((yc[o].0, o)));
        }
        list.push(&recs, o);
    }
    // Follow "merged into" links to a kept object. Each link goes to an object kept
    // at the time, and the object linked leaves the kept list for good, so there are
    // no cycles.
    let targets = (0..n)
        .map(|mut i| {
            while target[i] != i {
                i = target[i];
            }
            i
        })
        .collect();
    (targets, merged_at)
}

/// The objects merged by cleaning, as (target, victim) pairs sorted by target, then
/// victim (`targets[i]` is the object that object i is merged into, itself if it
/// survives): each target's victims are a run of pairs, in index order.
pub(crate) fn victims_of(targets: &[usize]) -> Vec<(usize, usize)> {
    let mut victims: Vec<(usize, usize)> = targets
        .iter()
        .enumerate()
        .filter(|&(i, &t)| t != i)
        .map(|(i, &t)| (t, i))
        .collect();
    victims.sort_unstable();
    victims
}

/// Merges a cleaned object into the one that cleans it, as SExtractor does: areas,
/// fluxes and flux variances add up, peaks and bounding boxes combine, flags are
/// or-ed; position and shape stay the eater's.
pub fn merge_into(eater: &mut Object, victim: &Object, p: &crate::params::ExtractParams) {
    let zeropoint = p.mag_zeropoint;
    for (m, &t) in p.flag_types.iter().enumerate() {
        let a = (eater.imaflags[m], eater.nimaflags[m]);
        let b = (victim.imaflags[m], victim.nimaflags[m]);
        (eater.imaflags[m], eater.nimaflags[m]) = crate::imaflags::merge(a, b, t);
    }
    use crate::measure::flags;
    // SExtractor's merge (spec §4.6.3 step 6): the filtered area, the fluxes and
    // their variances add; the filtered peak (with XPEAK/YPEAK) is the victim's when
    // strictly larger, FLUX_MAX the larger; the boxes join; the flags but MERGED and
    // CROWDED add. ISOAREA_IMAGE, the position and the shape stay the eater's.
    eater.npix += victim.npix;
    eater.flux += victim.flux;
    eater.fdflux += victim.fdflux;
    eater.fluxerr = (eater.fluxerr * eater.fluxerr + victim.fluxerr * victim.fluxerr).sqrt();
    eater.flux_max = eater.flux_max.max(victim.flux_max);
    if victim.fdpeak > eater.fdpeak {
        eater.fdpeak = victim.fdpeak;
        eater.xpeak = victim.xpeak;
        eater.ypeak = victim.ypeak;
    }
    eater.xmin = eater.xmin.min(victim.xmin);
    eater.ymin = eater.ymin.min(victim.ymin);
    eater.xmax = eater.xmax.max(victim.xmax);
    eater.ymax = eater.ymax.max(victim.ymax);
    eater.flags |= victim.flags & !(flags::MERGED | flags::CROWDED);
    eater.mag = crate::measure::magnitude(eater.flux, zeropoint);
    eater.magerr = crate::measure::magnitude_error(eater.flux, eater.fluxerr);
    eater.mag_isocor =
        crate::measure::mag_isocor(eater.flux, eater.npix as f64, eater.thresh, zeropoint);
    crate::measure::guard_non_finite(eater);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(x: f64, y: f64, a: f64, fdflux: f64, mthresh: f64) -> Object {
        Object {
            x,
            y,
            a,
            b: a,
            cxx: 1.0 / (a * a),
            cyy: 1.0 / (a * a),
            cxy: 0.0,
            fdflux,
            npix: (std::f64::consts::PI * 9.0 * a * a) as u32 + 1,
            thresh: 10.0,
            abcor: 1.0,
            mthresh,
            ..Default::default()
        }
    }

    /// A merge grows the eater's filtered flux at once, and later tests read it
    /// (spec §4.6.3 step 6): A (1000) eats B (500); then C (1200) is fainter than the
    /// grown A (1500), so A tests C and cleans it. With A's flux as it was, C would be
    /// the brighter and test A, whose mthresh no profile reaches: both would stay.
    #[test]
    fn a_merge_grows_the_eaters_flux_before_the_next_test() {
        let objs = [
            obj(0.0, 0.0, 3.0, 1000.0, 1e9),
            obj(2.0, 0.0, 3.0, 500.0, 0.0),
            obj(1.0, 1.0, 3.0, 1200.0, 0.0),
        ];
        let done = [10, 20, 30];
        assert_eq!(clean_targets(&objs, &done, 1.0), [0, 0, 0]);
        // Without B, C is the brighter: it tests A and both stay.
        let two = [objs[0].clone(), objs[2].clone()];
        assert_eq!(clean_targets(&two, &[10, 30], 1.0), [0, 1]);
    }

    #[test]
    fn grid_and_brute_force_agree_on_random_fields() {
        let mut s = 7u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for field in 0..20 {
            let n = 50 + field * 20;
            let objs: Vec<Object> = (0..n)
                .map(|_| {
                    let bright = rnd() < 0.1;
                    obj(
                        rnd() * 500.0,
                        rnd() * 500.0,
                        if bright {
                            3.0 + 5.0 * rnd()
                        } else {
                            0.8 + rnd()
                        },
                        if bright {
                            1e5 * (1.0 + rnd())
                        } else {
                            50.0 + 500.0 * rnd()
                        },
                        5.0 + 20.0 * rnd(),
                    )
                })
                .collect();
            let done: Vec<u32> = objs.iter().map(|o| o.y as u32).collect();
            let a = clean_targets(&objs, &done, 1.0);
            let b = clean_targets_brute_force(&objs, &done, 1.0);
            assert_eq!(a, b, "field {field}");
            assert!(
                a.iter().enumerate().any(|(i, &t)| t != i),
                "field {field} cleans nothing"
            );
        }
    }

    /// A bright object, one in its wing, and one in the second's wing beyond the
    /// first's reach.
    fn chain() -> Vec<Object> {
        vec![
            obj(100.0, 100.0, 3.0, 1e5, 50.0),
            obj(108.0, 100.0, 1.5, 2000.0, 10.0),
            obj(112.0, 100.0, 1.0, 60.0, 8.0),
        ]
    }

    #[test]
    fn a_cleaned_object_cleans_nothing_afterwards_and_order_is_completion_order() {
        // B is in A's wing; C is in B's wing but beyond A's reach.
        let objs = chain();
        let r: Vec<CleanRecord> = objs.iter().map(CleanRecord::from).collect();
        let one = moffat(&r[0], 1.0);
        let two = moffat(&r[1], 1.0);
        assert!(cleans(&r[0], one, &r[1], 1.0));
        assert!(cleans(&r[1], two, &r[2], 1.0));
        assert!(!cleans(&r[0], one, &r[2], 1.0));
        // A, then B (cleaned by A on arrival), then C: nothing kept cleans C.
        assert_eq!(clean_targets(&objs, &[10, 20, 30], 1.0), vec![0, 0, 2]);
        // C, then B (cleans C), then A (cleans B): C follows B into A.
        assert_eq!(clean_targets(&objs, &[30, 20, 10], 1.0), vec![0, 0, 0]);
        // The same detection row: catalog order (A, B, C).
        assert_eq!(clean_targets(&objs, &[5, 5, 5], 1.0), vec![0, 0, 2]);
        for done in [[10, 20, 30], [30, 20, 10], [5, 5, 5]] {
            assert_eq!(
                clean_targets(&objs, &done, 1.0),
                clean_targets_brute_force(&objs, &done, 1.0)
            );
        }
    }

    #[test]
    fn a_newcomers_victims_stay_when_it_is_cleaned_itself() {
        // N cleans V, B cleans N, B does not reach V: objects B, N, V.
        let objs = chain();
        // V, then B (does not clean V), then N: in N's turn V is tested first (kept
        // before B) and would be N's victim, but B then cleans N, so V stays.
        assert_eq!(clean_targets(&objs, &[20, 30, 10], 1.0), vec![0, 0, 2]);
        assert_eq!(
            clean_targets_brute_force(&objs, &[20, 30, 10], 1.0),
            vec![0, 0, 2]
        );
        // Equal fluxes: the kept object tests the newcomer.
        let mut twin = objs[0].clone();
        twin.x = 101.0;
        let pair = vec![objs[0].clone(), twin];
        assert_eq!(clean_targets(&pair, &[1, 2], 1.0), vec![0, 0]);
        assert_eq!(clean_targets(&pair, &[2, 1], 1.0), vec![1, 1]);
    }

    #[test]
    fn grid_and_brute_force_agree_on_odd_values() {
        let base = obj(10.0, 10.0, 1.0, 100.0, 1.0);
        let bright = obj(12.0, 10.0, 2.0, 1e5, 50.0);
        let with = |f: &dyn Fn(&mut Object)| {
            let mut o = base.clone();
            f(&mut o);
            o
        };
        let odd = vec![
            bright.clone(),
            base.clone(),
            with(&|o| o.a = f64::NAN),
            with(&|o| o.a = f64::INFINITY),
            with(&|o| o.a = -1.0),
            with(&|o| o.a = f64::NEG_INFINITY),
            with(&|o| o.x = f64::INFINITY),
            with(&|o| o.y = f64::NAN),
            with(&|o| o.x = 1e308),
            with(&|o| o.x = -1e308),
            with(&|o| o.a = 1e300),
            with(&|o| o.fdflux = f64::NAN),
            with(&|o| o.mthresh = f64::NAN),
        ];
        for k in 0..=odd.len() {
            for rot in 0..odd.len().max(1) {
                let mut objs: Vec<Object> = odd[..k].to_vec();
                objs.rotate_left(rot.min(k.saturating_sub(1)));
                let done: Vec<u32> = (0..objs.len() as u32).map(|i| (i * 7) % 5).collect();
                assert_eq!(
                    clean_targets(&objs, &done, 1.0),
                    clean_targets_brute_force(&objs, &done, 1.0),
                    "{k} objects, rotated {rot}"
                );
            }
        }
    }

    #[test]
    fn a_bright_star_cleans_its_faint_wing_detections_but_not_distant_ones() {
        let star = obj(100.0, 100.0, 4.0, 2e5, 50.0);
        let wing = obj(112.0, 100.0, 1.0, 80.0, 5.0);
        let far = obj(300.0, 300.0, 1.0, 80.0, 5.0);
        let real = obj(108.0, 100.0, 1.5, 5e4, 5000.0); // bright enough to survive
        let objs = vec![star, wing, far, real];
        let t = clean_targets(&objs, &[0, 0, 0, 0], 1.0);
        assert_eq!(t, vec![0, 0, 2, 3]);
    }
}
