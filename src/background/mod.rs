//! Background estimation, as SExtractor does it (../shared/spec/background.md):
//!
//! 1. The image is cut into meshes of `BACK_SIZE` pixels (partial meshes at the right
//!    and top edges). In each mesh, over the valid pixels: mean and σ; a 2σ clip; a
//!    histogram of ±5σ with ≈ 0.8·n levels; the mode by iterated 3σ clipping of the
//!    histogram, `2.5·median − 1.5·mean` unless mean and median disagree by ≥ 0.3σ
//!    (then the median). Meshes with fewer than half their pixels valid are bad.
//! 2. Bad meshes take the mean of the nearest valid meshes; the grid is median
//!    filtered (`BACK_FILTERSIZE`, window shrinking at the grid edges), and a mesh
//!    takes the filtered value when it differs by at least `BACK_FILTTHRESH`.
//! 3. The global background and RMS are the medians of the filtered grid.
//! 4. The maps are natural bicubic splines through the mesh nodes, nodes at
//!    x = (i+½)·bw − ½ and y = (j+½)·bh in pixel coordinates.
//!
//! Mesh statistics run in parallel over meshes; map rows in parallel over rows.

pub mod gpu;
use crate::error::{Error, Result};
use crate::image::{is_valid, Image, Mask};
use crate::params::BackgroundParams;
use rayon::prelude::*;

const QUANTIF_NSIGMA: f64 = 5.0;
const QUANTIF_AMIN: f64 = 4.0;
const QUANTIF_NMAXLEVELS: usize = 4096;
const BACK_MINGOODFRAC: f64 = 0.5;
const PEARSON: f64 = 2.5;
const MODE_EPS: f64 = 1e-4;

/// The statistics of one mesh: its mode (background) and σ, or `None` if bad.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeshStat {
    pub back: f32,
    pub sigma: f32,
}

/// The estimated background: the filtered mesh grid, global values, and what is
/// needed to evaluate the interpolated maps at any pixel.
#[derive(Clone, Debug)]
pub struct Background {
    width: usize,
    height: usize,
    mesh_w: usize,
    mesh_h: usize,
    nx: usize,
    ny: usize,
    /// Filtered mesh backgrounds, row-major nx x ny.
    back: Vec<f64>,
    /// Filtered mesh σ, row-major nx x ny.
    sigma: Vec<f64>,
    /// The two grids in f32, as SExtractor interpolates them, and the second
    /// derivatives of their splines along y, per mesh column (f32).
    back32: Vec<f32>,
    sigma32: Vec<f32>,
    d2_back: Vec<f32>,
    d2_sigma: Vec<f32>,
    global_back: f64,
    global_rms: f64,
    manual: Option<f64>,
    /// Interpolation weights along x.
    xc: XCoefs,
}

/// Statistics of one mesh from its valid pixel values; `total` is the mesh's
/// pixel count (valid or not). Returns `None` for a bad mesh.
pub fn mesh_stat(values: &[f32], total: usize) -> Option<MeshStat> {
    let sums = |keep: &dyn Fn(f32) -> bool| {
        values
            .iter()
            .filter(|&&v| keep(v))
            .fold((0, 0.0, 0.0), |(n, s, s2), &v| {
                (n + 1, s + v as f64, s2 + v as f64 * v as f64)
            })
    };
    // First pass: mean and population σ, for the 2σ clip.
    let (n, s, s2) = sums(&|_| true);
    let (lcut, hcut) = clip_cuts(n, s, s2, total)?;
    let (n1, s, s2) = sums(&|v| v >= lcut && v <= hcut);
    let q = Quantisation::of(n1, s, s2)?;
    Some(mesh_mode(&q, &mut Vec::new(), std::iter::once(values)))
}

/// The mode and σ of a mesh from the histogram of its values (given as `rows` of
/// pixels; NaN is invalid), binned as `q` says, into `hist`.
fn mesh_mode<'a>(
    q: &Quantisation,
    hist: &mut Vec<u32>,
    rows: impl Iterator<Item = &'a [f32]> + Clone,
) -> MeshStat {
    hist.clear();
    hist.resize(q.nlevels, 0u32);
    for row in rows.clone() {
        for &v in row {
            let b = (v / q.qscale + q.cste) as i64; // NaN → 0, so test validity
            if !v.is_nan() && b >= 0 && (b as usize) < q.nlevels {
                hist[b as usize] += 1;
            }
        }
    }
    let (mut mode, sigma) = histogram_mode(hist, q.qzero as f64, q.qscale as f64);
    if sigma == 0.0 {
        if let Some(c) = constant_value(rows.flat_map(|r| r.iter().copied())) {
            mode = c as f64;
        }
    }
    MeshStat {
        back: mode as f32,
        sigma: sigma as f32,
    }
}

/// The value shared by every valid (non-NaN) pixel, if they all have the same one.
/// A mesh whose histogram mode comes out with σ = 0 is checked with it: E[x²] − μ²
/// of a constant mesh need not cancel to 0 in f64 (Σv² rounds above ~1e10), which
/// left the quantisation and so the mode 1 ulp from the constant, and a constant
/// image at such levels full of detections. A constant mesh is its value.
pub(crate) fn constant_value(mut vals: impl Iterator<Item = f32>) -> Option<f32> {
    let first = vals.by_ref().find(|v| !v.is_nan())?;
    vals.filter(|v| !v.is_nan())
        .all(|v| v == first)
        .then_some(first)
}

/// Sequential sums of valid values (NaN = invalid) and of their squares, for four
/// meshes at once: each mesh's sums keep SExtractor's order (row by row, left to
/// right), and the four independent chains run side by side. Adding 0 for an
/// invalid pixel leaves a sum unchanged, so the result equals the branchy loop.
struct Moments {
    n: Vec<usize>,
    s: Vec<f64>,
    s2: Vec<f64>,
}

/// Accumulates over one band the moments of the pixels that `keep` accepts.
// The lane loops index four arrays in step on purpose (four independent chains).
#[allow(clippy::needless_range_loop)]
fn band_moments(band: &[f32], w: usize, bw: usize, nx: usize, keep: &[(f32, f32)]) -> Moments {
    let mut m = Moments {
        n: vec![0; nx],
        s: vec![0.0; nx],
        s2: vec![0.0; nx],
    };
    let full = w / bw; // meshes of full width
    for row in band.chunks_exact(w) {
        let mut i = 0;
        while i + 4 <= full {
            let (mut n, mut s, mut s2) = ([0usize; 4], [0f64; 4], [0f64; 4]);
            n.copy_from_slice(&m.n[i..i + 4]);
            s.copy_from_slice(&m.s[i..i + 4]);
            s2.copy_from_slice(&m.s2[i..i + 4]);
            let segs: [&[f32]; 4] = std::array::from_fn(|l| &row[(i + l) * bw..(i + l + 1) * bw]);
            let cuts: [(f32, f32); 4] = std::array::from_fn(|l| keep[i + l]);
            for k in 0..bw {
                for l in 0..4 {
                    let v = segs[l][k];
                    let ok = v >= cuts[l].0 && v <= cuts[l].1;
                    let x = if ok { v as f64 } else { 0.0 };
                    n[l] += ok as usize;
                    s[l] += x;
                    s2[l] += x * x;
                }
            }
            m.n[i..i + 4].copy_from_slice(&n);
            m.s[i..i + 4].copy_from_slice(&s);
            m.s2[i..i + 4].copy_from_slice(&s2);
            i += 4;
        }
        while i < nx {
            let seg = &row[i * bw..((i + 1) * bw).min(w)];
            let (lo, hi) = keep[i];
            for &v in seg {
                if v >= lo && v <= hi {
                    m.n[i] += 1;
                    m.s[i] += v as f64;
                    m.s2[i] += v as f64 * v as f64;
                }
            }
            i += 1;
        }
    }
    m
}

/// Mean and population σ from sums (σ² clamped at 0).
fn mean_sigma(n: usize, s: f64, s2: f64) -> (f64, f64) {
    let mean = s / n as f64;
    let var = s2 / n as f64 - mean * mean;
    (mean, if var > 0.0 { var.sqrt() } else { 0.0 })
}

// Meshes are indexed in step across several per-mesh arrays.
#[allow(clippy::needless_range_loop)]
/// The statistics of the meshes of one band of rows `y0..y1` (see [`mesh_stat`],
/// which states the same computation for one mesh).
fn band_stats(
    img: &Image,
    mask: Option<&[bool]>,
    y0: usize,
    y1: usize,
    bw: usize,
    nx: usize,
    band: &mut Vec<f32>,
) -> Vec<Option<MeshStat>> {
    let w = img.width();
    band.clear();
    band.extend_from_slice(&img.data()[y0 * w..y1 * w]);
    mesh_row_stats(band, w, mask.map(|m| &m[y0 * w..y1 * w]), bw, nx)
}

/// The statistics of the meshes of one band of rows given as `band` (a copy of the
/// rows, `w` pixels wide, reused as scratch: invalid and masked pixels are set to
/// NaN in it), meshes `bw` wide. Used by [`Background::estimate`] and by streaming,
/// which reads the image one mesh row at a time.
// Meshes are indexed in step across several per-mesh arrays.
#[allow(clippy::needless_range_loop)]
pub fn mesh_row_stats(
    band: &mut [f32],
    w: usize,
    mask: Option<&[bool]>,
    bw: usize,
    nx: usize,
) -> Vec<Option<MeshStat>> {
    let rows = band.len() / w;
    // Invalid and masked pixels become NaN (they fail every test below).
    for (k, v) in band.iter_mut().enumerate() {
        if !is_valid(*v) || mask.is_some_and(|m| m[k]) {
            *v = f32::NAN;
        }
    }
    let band = &*band;
    let all = vec![(f32::NEG_INFINITY, f32::INFINITY); nx];
    let m0 = band_moments(band, w, bw, nx, &all);
    let mut cuts = vec![(f32::NAN, f32::NAN); nx]; // NaN cuts keep nothing
    for i in 0..nx {
        let total = (((i + 1) * bw).min(w) - i * bw) * rows;
        if let Some(c) = clip_cuts(m0.n[i], m0.s[i], m0.s2[i], total) {
            cuts[i] = c;
        }
    }
    let m1 = band_moments(band, w, bw, nx, &cuts);
    let mut out = Vec::with_capacity(nx);
    let mut hist = Vec::new();
    for i in 0..nx {
        let Some(q) = (!cuts[i].0.is_nan())
            .then(|| Quantisation::of(m1.n[i], m1.s[i], m1.s2[i]))
            .flatten()
        else {
            out.push(None);
            continue;
        };
        let (x0, x1) = (i * bw, ((i + 1) * bw).min(w));
        let rows = band.chunks_exact(w).map(|r| &r[x0..x1]);
        out.push(Some(mesh_mode(&q, &mut hist, rows)));
    }
    out
}

/// The 2σ clipping cuts of a mesh from the moments of its valid pixels (`total`: its
/// pixel count), or None for a bad mesh (too few valid pixels).
pub fn clip_cuts(n: usize, s: f64, s2: f64, total: usize) -> Option<(f32, f32)> {
    if n == 0 || (n as f64) < BACK_MINGOODFRAC * total as f64 {
        return None;
    }
    let (mean, sig) = mean_sigma(n, s, s2);
    Some(((mean - 2.0 * sig) as f32, (mean + 2.0 * sig) as f32))
}

/// A mesh's histogram binning: bin = trunc(v / qscale + cste) in f32, `nlevels` bins;
/// the mode is converted back to ADU with qzero and qscale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantisation {
    pub qscale: f32,
    pub qzero: f32,
    pub cste: f32,
    pub nlevels: usize,
}

impl Quantisation {
    /// From the moments of the clipped pixels; None if none are left.
    pub fn of(n1: usize, s: f64, s2: f64) -> Option<Self> {
        if n1 == 0 {
            return None;
        }
        let (mean1, sig1) = mean_sigma(n1, s, s2);
        let (qscale, qzero, nlevels) = quantisation(n1, mean1, sig1);
        Some(Quantisation {
            qscale,
            qzero,
            cste: 0.499999 - qzero / qscale,
            nlevels,
        })
    }
}

/// The mesh statistics of the whole image on the CPU (mesh rows in parallel), as a
/// row-major `nx` x `ny` grid; `mask` flags bad pixels.
pub fn cpu_mesh_stats(
    img: &Image,
    mask: Option<&[bool]>,
    (bw, bh): (usize, usize),
    (nx, ny): (usize, usize),
) -> Vec<Option<MeshStat>> {
    let h = img.height();
    let bands: Vec<Vec<Option<MeshStat>>> = (0..ny)
        .into_par_iter()
        .map_init(Vec::new, |buf, j| {
            band_stats(img, mask, j * bh, ((j + 1) * bh).min(h), bw, nx, buf)
        })
        .collect();
    bands.into_iter().flatten().collect()
}

/// The histogram quantisation of a mesh: (qscale, qzero, nlevels). qscale and
/// qzero are computed in f64 from the unrounded clipped mean and σ and rounded once
/// to f32; the binning itself is f32. (Rounding mean and σ to f32 first shifts
/// qscale by an ulp, which on integer-valued images moves whole "teeth" of the
/// comb-shaped histogram across a bin boundary: measured 99 of 528 meshes off
/// SEP/SExtractor by up to 5e-5, and 0 with this order.)
fn quantisation(n1: usize, mean1: f64, sig1: f64) -> (f32, f32, usize) {
    let step = (2.0 / std::f64::consts::PI).sqrt() * QUANTIF_NSIGMA / QUANTIF_AMIN;
    let nlevels = ((step * n1 as f64 + 1.0) as usize).min(QUANTIF_NMAXLEVELS);
    let qscale: f32 = if sig1 > 0.0 {
        (2.0 * QUANTIF_NSIGMA * sig1 / nlevels as f64) as f32
    } else {
        1.0
    };
    let qzero: f32 = (mean1 - QUANTIF_NSIGMA * sig1) as f32;
    (qscale, qzero, nlevels)
}

/// Round half away from zero, then truncate, as SExtractor's RINT-like cuts.
fn round_half_away(v: f64) -> i64 {
    if v > 0.0 {
        (v + 0.5) as i64
    } else {
        (v - 0.5) as i64
    }
}

/// The mode and σ of a histogram (bin units converted with `qzero`, `qscale`).
///
/// Iterated 3σ clipping of the histogram around its median (see the module docs).
/// The median is found by two pointers that start at the cuts and advance the side
/// whose running sum is smaller (the high side on ties) until they meet; runs of
/// empty bins are consumed by whichever side is advancing, so the walk is done over
/// the non-empty bins only (by binary search on their prefix sums), and the moments
/// come from prefix sums: each iteration costs O(log² non-empty bins). `histogram_mode_direct` in the tests is the
/// bin-by-bin statement it is checked against.
pub fn histogram_mode(hist: &[u32], qzero: f64, qscale: f64) -> (f64, f64) {
    let nlevels = hist.len() as i64;
    let top = nlevels - 1;
    // The non-empty bins and prefix sums of h, i·h, i²·h over them (exact integers):
    // cum[k] sums the first k non-empty bins.
    let mut nz: Vec<i64> = Vec::new();
    let mut cum: Vec<[u64; 3]> = vec![[0; 3]];
    let mut acc = [0u64; 3];
    for (i, &h) in hist.iter().enumerate() {
        if h != 0 {
            let (h, iu) = (h as u64, i as u64);
            acc[0] += h;
            acc[1] += iu * h;
            acc[2] += iu * iu * h;
            nz.push(i as i64);
            cum.push(acc);
        }
    }
    let (mut lcut, mut hcut) = (0i64, top);
    let mut sig = 10.0 * top as f64;
    let mut sig_prev = 1.0f64;
    let (mut mean, mut med) = (0.0f64, 0.0f64);
    let mut iter = 0;
    while iter < 100 && sig >= 0.1 && (sig / sig_prev - 1.0).abs() > MODE_EPS {
        iter += 1;
        sig_prev = sig;
        // Non-empty bins inside [lcut, hcut]: nz[a0..b0].
        let a0 = nz.partition_point(|&i| i < lcut);
        let b0 = nz.partition_point(|&i| i <= hcut);
        let sum = (cum[b0][0] - cum[a0][0]) as f64;
        let s1 = (cum[b0][1] - cum[a0][1]) as f64;
        let s2 = (cum[b0][2] - cum[a0][2]) as f64;
        if sum == 0.0 {
            mean = 0.0;
            sig = 0.0;
        } else {
            mean = s1 / sum;
            let v = s2 / sum - mean * mean;
            sig = if v > 0.0 { v.sqrt() } else { 0.0 };
        }
        // Median: where the two-pointer walk ends, found by binary search. With N
        // non-empty bins in the window, L(k) the count of its k lowest and H(m) of its
        // m highest, the low side takes its (j+1)-th bin once the high side has taken
        // m(j) = min{m : H(m) > L(j)} bins, which is possible while j + m(j) < N; so
        // low takes k* = min{j : j + m(j) >= N} bins and high the rest. Empty bins
        // between the two sides' last bins go to the side that moves last (low if
        // L(k*) < H(N − k*)).
        let n = b0 - a0;
        let low = |k: usize| cum[a0 + k][0] - cum[a0][0];
        let high = |m: usize| cum[b0][0] - cum[b0 - m][0];
        let m_of = |j: usize| {
            // Smallest m in 0..=n with H(m) > L(j), or n + 1 if none.
            let target = low(j);
            let (mut lo_m, mut hi_m) = (0usize, n + 1);
            while lo_m < hi_m {
                let mid = (lo_m + hi_m) / 2;
                if high(mid) > target {
                    hi_m = mid;
                } else {
                    lo_m = mid + 1;
                }
            }
            lo_m
        };
        let (mut lo_k, mut hi_k) = (0usize, n);
        while lo_k < hi_k {
            let mid = (lo_k + hi_k) / 2;
            if mid + m_of(mid) >= n {
                hi_k = mid;
            } else {
                lo_k = mid + 1;
            }
        }
        let k = lo_k;
        let m = n - k;
        let (lowsum, highsum) = (low(k), high(m));
        let (lo, hi) = if lowsum < highsum {
            let q = if m > 0 { nz[b0 - m] } else { hcut + 1 };
            (q, q - 1)
        } else {
            let p = if k > 0 { nz[a0 + k - 1] } else { lcut - 1 };
            (p + 1, p)
        };
        med = median_from_pointers(hist, lo, hi, lowsum, highsum);
        let (nl, nh) = cuts(med, sig, top);
        lcut = nl;
        hcut = nh;
        if hcut < lcut {
            break;
        }
    }
    (mode_from(mean, med, sig, qzero, qscale), sig * qscale)
}

/// The interpolated median once the two pointers have met (lo = hi + 1).
fn median_from_pointers(hist: &[u32], lo: i64, hi: i64, lowsum: u64, highsum: u64) -> f64 {
    if hi < 0 {
        return 0.0;
    }
    let top = hist.len() as i64 - 1;
    let hl = hist[lo.min(top) as usize];
    let hh = hist[hi as usize];
    let denom = 2.0 * hl.max(hh) as f64;
    let frac = if denom > 0.0 {
        (highsum as f64 - lowsum as f64) / denom
    } else {
        0.0
    };
    hi as f64 + 0.5 + frac
}

/// The next 3σ cuts around the median, in bins.
fn cuts(med: f64, sig: f64, top: i64) -> (i64, i64) {
    let lo_cut = med - 3.0 * sig;
    let hi_cut = med + 3.0 * sig;
    (
        if lo_cut > 0.0 {
            round_half_away(lo_cut)
        } else {
            0
        },
        if hi_cut < top as f64 {
            round_half_away(hi_cut)
        } else {
            top
        },
    )
}

/// SExtractor's mode estimate from the final mean, median and σ (bins → ADU).
fn mode_from(mean: f64, med: f64, sig: f64, qzero: f64, qscale: f64) -> f64 {
    if sig > 0.0 {
        if ((mean - med) / sig).abs() < 0.3 {
            qzero + (PEARSON * med - (PEARSON - 1.0) * mean) * qscale
        } else {
            qzero + med * qscale
        }
    } else {
        qzero + mean * qscale
    }
}

/// Median of a slice (mean of the two middle values for an even count).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Second derivatives of the cubic spline through `y` at unit spacing, as SExtractor
/// computes them, in f32 (its floats; every operation rounded, in this order, which
/// makes its maps bit for bit).
///
/// The forward sweep is that of the natural spline (second derivative 0 at both
/// ends; `d[i-1] + 4 d[i] + d[i+1] = 6 Δ²y[i]`), but SExtractor's back-substitution
/// multiplies by the *following value divided by 6* (it stores d/6 and reuses the
/// stored value): `d[k] = c[k]·d[k+1]/6 + u[k]` instead of `c[k]·d[k+1] + u[k]`.
/// SEP inherits this. It is not the natural spline, and the maps differ from a true
/// natural spline by up to ~5% of the mesh-to-mesh contrast; we reproduce it because
/// SExtractor's BACKGROUND maps are the reference.
fn spline_d2(y: &[f32]) -> Vec<f32> {
    let n = y.len();
    let mut d2 = vec![0.0f32; n];
    if n < 3 {
        return d2;
    }
    let mut c = vec![0.0f32; n];
    let mut u = vec![0.0f32; n];
    for i in 1..n - 1 {
        let t = -1.0 / (c[i - 1] + 4.0);
        c[i] = t;
        u[i] = t * (u[i - 1] - 6.0 * (y[i + 1] + y[i - 1] - 2.0 * y[i]));
    }
    for k in (1..n - 1).rev() {
        d2[k] = c[k] * (d2[k + 1] / 6.0) + u[k];
    }
    d2
}

/// The spline (`y`, `d2`) at node coordinate `t` as SExtractor evaluates it along y,
/// in f32: `((a·y0 + b·y1) + (a³ − a)·(d0/6)) + (b³ − b)·(d1/6)` with b = t − i and
/// a = 1 − b; the end intervals extrapolate. Nodes every `stride` elements (a column
/// of a row-major grid), `n` of them.
#[inline]
fn spline_eval_strided(y: &[f32], d2: &[f32], stride: usize, n: usize, t: f64) -> f32 {
    if n == 1 {
        return y[0];
    }
    let i = (t.floor().max(0.0) as usize).min(n - 2);
    let b = (t - i as f64) as f32;
    let a = 1.0 - b;
    let (k0, k1) = (i * stride, (i + 1) * stride);
    // A flat interval is its node value exactly, as in [`eval_pixel`] (a + b != 1 in
    // f32: a flat image at 1e8 would otherwise get a background 1 ulp off, detected).
    if y[k0] == y[k1] && d2[k0] == 0.0 && d2[k1] == 0.0 {
        return y[k0];
    }
    ((a * y[k0] + b * y[k1]) + (a * a * a - a) * (d2[k0] / 6.0)) + (b * b * b - b) * (d2[k1] / 6.0)
}

/// Precomputed x-interpolation weights, one per pixel column (structure of arrays):
/// a, b and a² − 1, b² − 1 in f32, and the pixel span of each node interval, so that
/// a row is evaluated interval by interval in a loop the compiler vectorises. The
/// per-pixel evaluation is [`eval_pixel`], in f32, so that the GPU
/// (shaders/subtract.wgsl) computes the same bits.
#[derive(Clone, Debug, Default)]
struct XCoefs {
    a: Vec<f32>,
    b: Vec<f32>,
    ca: Vec<f32>,
    cb: Vec<f32>,
    /// (interval i, first pixel, end pixel), in increasing x.
    spans: Vec<(usize, usize, usize)>,
}

/// One pixel of an interpolated map as SExtractor evaluates it along x, in f32 and in
/// this order, each operation rounded on its own: a·(n0 + ca·d0) + b·(n1 + cb·d1),
/// where n0, n1 are the row's spline node values on either side of the pixel, d0, d1
/// their second derivatives along x divided by 6, and a, b, ca = a² − 1, cb = b² − 1
/// the pixel's weights (bit for bit SExtractor's BACKGROUND maps). The GPU twin is
/// `eval_pixel` in shaders/subtract.wgsl; both must round identically (no fused
/// multiply-add).
#[inline(always)]
pub fn eval_pixel(w: [f32; 4], n0: f32, n1: f32, d0: f32, d1: f32) -> f32 {
    // A flat interval (equal nodes, no curvature) is its node value exactly: the
    // weighted sum rounds to a neighbouring float (a + b != 1 in f32), which on a
    // constant image at 1e8 or more left 1-ulp stripes that were detected. Noisy
    // backgrounds never have equal nodes with zero second derivatives.
    if n0 == n1 && d0 == 0.0 && d1 == 0.0 {
        return n0;
    }
    w[0] * (n0 + w[2] * d0) + w[1] * (n1 + w[3] * d1)
}

/// The background (or RMS) map of one row as the GPU evaluates it: the nodes and
/// their second derivatives along x divided by 6 at that row, in f32 (nx values each).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowNodes {
    pub nodes: Vec<f32>,
    pub d2: Vec<f32>,
}

impl Background {
    /// Estimates the background of `img`; `mask` marks bad pixels (NaN, Inf and
    /// values <= -1e30 are bad too).
    pub fn estimate(img: &Image, mask: Option<&Mask>, p: &BackgroundParams) -> Result<Self> {
        p.validate()?;
        if let Some(m) = mask {
            if m.width() != img.width() || m.height() != img.height() {
                return Err(Error::Mismatch(format!(
                    "the mask is {}x{} but the image is {}: they must have the same shape",
                    m.width(),
                    m.height(),
                    img.shape_string()
                )));
            }
        }
        let (w, h) = (img.width(), img.height());
        let (bw, bh) = (p.mesh_size.0.min(w), p.mesh_size.1.min(h));
        let nx = w.div_ceil(bw);
        let ny = h.div_ceil(bh);
        let stats = cpu_mesh_stats(img, mask.map(|m| m.data()), (bw, bh), (nx, ny));
        Self::from_mesh_stats(w, h, (bw, bh), nx, ny, &stats, p)
    }

    /// Builds the background from per-mesh statistics (filled on either backend).
    pub fn from_mesh_stats(
        width: usize,
        height: usize,
        mesh: (usize, usize),
        nx: usize,
        ny: usize,
        stats: &[Option<MeshStat>],
        p: &BackgroundParams,
    ) -> Result<Self> {
        let good: Vec<usize> = (0..stats.len()).filter(|&k| stats[k].is_some()).collect();
        if good.is_empty() {
            return Err(Error::EmptyImage(
                "no background mesh has enough valid pixels (the image is empty, all NaN, all masked, \
                 or at or below -1e30, which SExtractor counts as bad pixels); check the image \
                 and mask, or use a larger BACK_SIZE"
                    .into(),
            ));
        }
        // Bad meshes: mean of the valid meshes at the minimum grid distance.
        let mut back = vec![0.0f64; nx * ny];
        let mut sigma = vec![0.0f64; nx * ny];
        for k in 0..nx * ny {
            if let Some(s) = stats[k] {
                back[k] = s.back as f64;
                sigma[k] = s.sigma as f64;
                continue;
            }
            let (i, j) = ((k % nx) as i64, (k / nx) as i64);
            let mut best = i64::MAX;
            let (mut sb, mut ss, mut cnt) = (0.0, 0.0, 0usize);
            for &g in &good {
                let (gi, gj) = ((g % nx) as i64, (g / nx) as i64);
                let d = (gi - i).pow(2) + (gj - j).pow(2);
                let s = stats[g].expect("good mesh");
                if d < best {
                    best = d;
                    sb = s.back as f64;
                    ss = s.sigma as f64;
                    cnt = 1;
                } else if d == best {
                    sb += s.back as f64;
                    ss += s.sigma as f64;
                    cnt += 1;
                }
            }
            back[k] = sb / cnt as f64;
            sigma[k] = ss / cnt as f64;
        }
        // Median filter with a window that stays centred and shrinks at the edges.
        let (hfx, hfy) = (p.filter_size.0 / 2, p.filter_size.1 / 2);
        if hfx > 0 || hfy > 0 {
            let mut fb = back.clone();
            let mut fs = sigma.clone();
            let mut wb = Vec::new();
            let mut ws = Vec::new();
            for j in 0..ny {
                let ry = hfy.min(j).min(ny - 1 - j);
                for i in 0..nx {
                    let rx = hfx.min(i).min(nx - 1 - i);
                    wb.clear();
                    ws.clear();
                    for jj in j - ry..=j + ry {
                        for ii in i - rx..=i + rx {
                            wb.push(back[jj * nx + ii]);
                            ws.push(sigma[jj * nx + ii]);
                        }
                    }
                    let mb = median(&mut wb);
                    let ms = median(&mut ws);
                    let k = j * nx + i;
                    if (mb - back[k]).abs() >= p.filter_thresh {
                        fb[k] = mb;
                        fs[k] = ms;
                    }
                }
            }
            back = fb;
            sigma = fs;
        }
        let global_back = median(&mut back.clone());
        let mut global_rms = median(&mut sigma.clone());
        if global_rms <= 0.0 {
            let mut pos: Vec<f64> = sigma.iter().copied().filter(|&s| s > 0.0).collect();
            global_rms = if pos.is_empty() {
                1.0
            } else {
                median(&mut pos)
            };
        }
        let mut bg = Background {
            width,
            height,
            mesh_w: mesh.0,
            mesh_h: mesh.1,
            nx,
            ny,
            back,
            sigma,
            back32: Vec::new(),
            sigma32: Vec::new(),
            d2_back: Vec::new(),
            d2_sigma: Vec::new(),
            global_back,
            global_rms,
            manual: p.manual_value,
            xc: XCoefs::default(),
        };
        bg.xc = bg.x_coefs();
        if let Some(v) = p.manual_value {
            bg.back.iter_mut().for_each(|b| *b = v);
            bg.global_back = v;
        }
        bg.back32 = bg.back.iter().map(|&v| v as f32).collect();
        bg.sigma32 = bg.sigma.iter().map(|&v| v as f32).collect();
        bg.d2_back = bg.column_d2(&bg.back32);
        bg.d2_sigma = bg.column_d2(&bg.sigma32);
        Ok(bg)
    }

    fn column_d2(&self, grid: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; grid.len()];
        let mut col = vec![0.0f32; self.ny];
        for i in 0..self.nx {
            for j in 0..self.ny {
                col[j] = grid[j * self.nx + i];
            }
            let d2 = spline_d2(&col);
            for j in 0..self.ny {
                out[j * self.nx + i] = d2[j];
            }
        }
        out
    }

    fn x_coefs(&self) -> XCoefs {
        let bw = self.mesh_w as f64;
        let mut c = XCoefs::default();
        for x in 0..self.width {
            let (i, a, b) = if self.nx == 1 {
                (0, 1.0, 0.0)
            } else {
                let t = (x as f64 + 0.5) / bw - 0.5;
                let i = (t.floor().max(0.0) as usize).min(self.nx - 2);
                let b = (t - i as f64) as f32;
                (i, 1.0 - b, b)
            };
            c.a.push(a);
            c.b.push(b);
            c.ca.push(a * a - 1.0);
            c.cb.push(b * b - 1.0);
            match c.spans.last_mut() {
                Some(last) if last.0 == i => last.2 = x + 1,
                _ => c.spans.push((i, x, x + 1)),
            }
        }
        c
    }

    /// The f32 nodes of row `y` of the map with mesh values `grid` (second
    /// derivatives along y `d2`): the y spline of every node column at that row, and
    /// the second derivatives of the natural spline through them along x (0 with a
    /// single mesh row, where SExtractor interpolates linearly along x). With a single
    /// mesh column, the one node is repeated so that [`eval_pixel`] needs no special case.
    fn row_nodes(&self, grid: &[f32], d2: &[f32], y: usize) -> RowNodes {
        let t = y as f64 / self.mesh_h as f64 - 0.5;
        // Only the two nodes around t of each column and their second derivatives
        // are read (grid and d2 are row-major nx x ny).
        let ny = self.ny;
        let nodes: Vec<f32> = (0..self.nx)
            .map(|i| spline_eval_strided(&grid[i..], &d2[i..], self.nx, ny, t))
            .collect();
        if self.nx == 1 {
            return RowNodes {
                nodes: vec![nodes[0]; 2],
                d2: vec![0.0; 2],
            };
        }
        let d2x = if self.ny > 1 {
            spline_d2(&nodes)
        } else {
            vec![0.0; self.nx]
        };
        RowNodes {
            nodes,
            d2: d2x.iter().map(|&v| v / 6.0).collect(),
        }
    }

    fn eval_row(&self, grid: &[f32], d2: &[f32], y: usize, xc: &XCoefs, out: &mut [f32]) {
        let rn = self.row_nodes(grid, d2, y);
        for &(i, x0, x1) in &xc.spans {
            let (n0, n1, d0, d1) = (rn.nodes[i], rn.nodes[i + 1], rn.d2[i], rn.d2[i + 1]);
            let (a, b) = (&xc.a[x0..x1], &xc.b[x0..x1]);
            let (ca, cb) = (&xc.ca[x0..x1], &xc.cb[x0..x1]);
            for (k, o) in out[x0..x1].iter_mut().enumerate() {
                *o = eval_pixel([a[k], b[k], ca[k], cb[k]], n0, n1, d0, d1);
            }
        }
    }

    /// The per-column interpolation table for the GPU: for each pixel column, its
    /// node interval and its weights (a, b, ca, cb) of [`eval_pixel`].
    /// With a manual background the weights are (1, 0, 0, 0) on interval 0, so that
    /// every pixel is the constant exactly.
    pub fn column_table(&self) -> (Vec<u32>, Vec<[f32; 4]>) {
        if self.manual.is_some() {
            return (vec![0; self.width], vec![[1.0, 0.0, 0.0, 0.0]; self.width]);
        }
        let mut idx = vec![0u32; self.width];
        for &(i, x0, x1) in &self.xc.spans {
            idx[x0..x1].fill(i as u32);
        }
        let w = (0..self.width)
            .map(|x| [self.xc.a[x], self.xc.b[x], self.xc.ca[x], self.xc.cb[x]])
            .collect();
        (idx, w)
    }

    /// The node table of rows `y0..y0 + rows` for the GPU: per row, its
    /// background nodes then their second derivatives ([`Background::back_row_nodes`]),
    /// into `out` (rows computed in parallel).
    pub fn row_node_table(&self, y0: usize, rows: usize, out: &mut Vec<f32>) {
        let nl = self.nodes_len();
        out.clear();
        out.resize(2 * nl * rows, 0.0);
        out.par_chunks_mut(2 * nl).enumerate().for_each(|(r, o)| {
            let rn = self.back_row_nodes(y0 + r);
            o[..nl].copy_from_slice(&rn.nodes);
            o[nl..].copy_from_slice(&rn.d2);
        });
    }

    /// The number of nodes per row in [`RowNodes`]: the grid's columns, at least 2
    /// (a single column or a manual background repeat their one value).
    pub fn nodes_len(&self) -> usize {
        self.nx.max(2)
    }

    /// The background nodes of row `y` (see [`RowNodes`]); a manual background is one
    /// constant node.
    pub fn back_row_nodes(&self, y: usize) -> RowNodes {
        match self.manual {
            Some(v) => RowNodes {
                nodes: vec![v as f32; self.nodes_len()],
                d2: vec![0.0; self.nodes_len()],
            },
            None => self.row_nodes(&self.back32, &self.d2_back, y),
        }
    }

    /// The interpolated background map.
    pub fn back_map(&self) -> Image {
        if let Some(v) = self.manual {
            return Image::filled(self.width, self.height, v as f32);
        }
        self.map(&self.back32, &self.d2_back)
    }

    /// The interpolated background RMS map.
    pub fn rms_map(&self) -> Image {
        self.map(&self.sigma32, &self.d2_sigma)
    }

    fn map(&self, grid: &[f32], d2: &[f32]) -> Image {
        let mut data = vec![0.0f32; self.width * self.height];
        data.par_chunks_mut(self.width)
            .enumerate()
            .for_each(|(y, row)| self.eval_row(grid, d2, y, &self.xc, row));
        Image::new(self.width, self.height, data).expect("shape is consistent")
    }

    /// Row `y` of the background map, into `out` (length = image width).
    pub fn back_row(&self, y: usize, out: &mut [f32]) {
        match self.manual {
            Some(v) => out.fill(v as f32),
            None => self.eval_row(&self.back32, &self.d2_back, y, &self.xc, out),
        }
    }

    /// Row `y` of the background RMS map, into `out`.
    pub fn rms_row(&self, y: usize, out: &mut [f32]) {
        self.eval_row(&self.sigma32, &self.d2_sigma, y, &self.xc, out)
    }

    /// Image width and height.
    pub fn shape(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The filtered mesh grid of backgrounds (nx x ny), SExtractor's MINIBACKGROUND.
    /// SExtractor's BACKGROUND column at the object centred at (x, y) (0-based): the
    /// filtered mesh grid interpolated bilinearly (not the spline of the subtraction)
    /// at pixel (trunc(x + 0.5), trunc(y + 0.5)), in f32 (photometry.md §2).
    pub fn bilinear_back(&self, x: f64, y: f64) -> f64 {
        let coord = |p: f64, mesh: usize, n: usize| -> (usize, usize, f32) {
            let u = ((p + 0.5) as i64) as f32 / mesh as f32 - 0.5;
            let i = u as i64;
            let f = u - i as f32;
            let (i, f) = if i < 0 {
                (0, f - 1.0)
            } else if i >= n as i64 - 1 {
                (n.saturating_sub(2), f + 1.0)
            } else {
                (i as usize, f)
            };
            (i, (i + 1).min(n - 1), f)
        };
        let (i0, i1, fx) = coord(x, self.mesh_w, self.nx);
        let (j0, j1, fy) = coord(y, self.mesh_h, self.ny);
        let b = |i: usize, j: usize| self.back[j * self.nx + i] as f32;
        let v = (1.0 - fx) * (1.0 - fy) * b(i0, j0)
            + fx * (1.0 - fy) * b(i1, j0)
            + fx * fy * b(i1, j1)
            + (1.0 - fx) * fy * b(i0, j1);
        v as f64
    }

    pub fn mesh_back(&self) -> Image {
        let data = self.back.iter().map(|&v| v as f32).collect();
        Image::new(self.nx, self.ny, data).expect("shape is consistent")
    }
    /// The filtered mesh grid of σ (nx x ny), SExtractor's MINIBACK_RMS.
    pub fn mesh_rms(&self) -> Image {
        let data = self.sigma.iter().map(|&v| v as f32).collect();
        Image::new(self.nx, self.ny, data).expect("shape is consistent")
    }
    /// The global background: the median of the filtered mesh backgrounds.
    pub fn global_back(&self) -> f64 {
        self.global_back
    }
    /// The global RMS: the median of the filtered mesh σ.
    pub fn global_rms(&self) -> f64 {
        self.global_rms
    }
    /// Mesh grid size (nx, ny).
    pub fn grid(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }
    /// Mesh size in pixels (after clamping to the image size).
    pub fn mesh_size(&self) -> (usize, usize) {
        (self.mesh_w, self.mesh_h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spline_eval(y: &[f32], d2: &[f32], t: f64) -> f32 {
        spline_eval_strided(y, d2, 1, y.len(), t)
    }

    #[test]
    fn spline_through_a_line_is_the_line() {
        let y = [1.0, 3.0, 5.0, 7.0];
        let d2 = spline_d2(&y);
        assert!(d2.iter().all(|v| v.abs() < 1e-6));
        assert!((spline_eval(&y, &d2, 1.5) - 4.0).abs() < 1e-6);
        assert!((spline_eval(&y, &d2, -0.5) - 0.0).abs() < 1e-6);
        assert!((spline_eval(&y, &d2, 3.5) - 8.0).abs() < 1e-6);
    }

    #[test]
    fn natural_spline_matches_hand_solution() {
        // Nodes 0, 1, 0: d2[1] solves 4 d2 = 6 (0 - 2 + 0) → d2 = -3.
        let y = [0.0, 1.0, 0.0];
        let d2 = spline_d2(&y);
        assert_eq!(d2[1], -3.0);
        // At t = 0.5: 0.5·0 + 0.5·1 + (0.125 − 0.5)·(−3/6) = 0.6875 (exact in f32).
        assert_eq!(spline_eval(&y, &d2, 0.5), 0.6875);
    }

    #[test]
    fn spline_second_derivatives_follow_sextractor() {
        // y = 0, 10, 0, 0, 0. Forward sweep: c = −1/4, −4/15, −15/56;
        // u = −30, 24, −45/7. Back-substitution with the d/6 reuse:
        // d3 = u3 = −6.428571; d2 = c2·d3/6 + u2; d1 = c1·d2/6 + u1.
        let d = spline_d2(&[0.0, 10.0, 0.0, 0.0, 0.0]);
        let d3 = -45.0f32 / 7.0;
        let d2 = (-4.0 / 15.0) * d3 / 6.0 + 24.0;
        let d1 = -0.25 * d2 / 6.0 - 30.0;
        assert!((d[3] - d3).abs() < 1e-5 && (d[2] - d2).abs() < 1e-5 && (d[1] - d1).abs() < 1e-4);
        assert_eq!((d[0], d[4]), (0.0, 0.0));
        // d1 ≈ −31.012: what SEP's maps show (a natural spline would give −36.43).
        assert!((d[1] + 31.0119).abs() < 1e-3);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn mode_of_a_symmetric_histogram_is_its_centre() {
        // Triangle centred on bin 5: sum 25, mean 5, Σi²h = 725 → σ = 2. The
        // two-pointer median ends with lo = 5, hi = 4, lowsum 10, highsum 15:
        // med = 4 + 0.5 + 5/(2·5) = 5. The 3σ cuts keep the whole histogram, σ is
        // unchanged, and mode = 2.5·5 − 1.5·5 = 5.
        let hist = [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0];
        let (mode, sigma) = histogram_mode(&hist, 10.0, 0.5);
        assert!((sigma - 1.0).abs() < 1e-12, "sigma {sigma}");
        assert!((mode - 12.5).abs() < 1e-12, "mode {mode}");
    }

    #[test]
    fn skewed_histogram_uses_pearson_mode() {
        // Bins 0..4 with counts 1,4,3,1,1: sum 10, mean 1.7; median by the rule:
        // steps take h4,h0? no: high first (h4=1, hi=3), low (h0=1, lo=1),
        // 1<1 false → high (h3=1, hi=2, highsum 2), low (h1=4, lowsum 5, lo=2),
        // 5<2 false → high (h2=3, hi=1, highsum 5). med = 1 + 0.5 + 0/(2·4) = 1.5.
        let hist = [1, 4, 3, 1, 1];
        let (mode, _) = histogram_mode(&hist, 0.0, 1.0);
        let mean: f64 = 1.7;
        let sig = ((4.0 + 12.0 + 9.0 + 16.0) / 10.0 - mean * mean).sqrt();
        // First iteration: cuts med ± 3σ cover everything again, so one more pass
        // gives the same σ and the loop ends; |mean − med|/σ = 0.2/1.1 < 0.3.
        assert!(((mean - 1.5) / sig).abs() < 0.3);
        assert!(
            (mode - (2.5 * 1.5 - 1.5 * mean)).abs() < 1e-12,
            "mode {mode}"
        );
    }

    /// The bin-by-bin statement of the mode (the spec, literally).
    fn histogram_mode_direct(hist: &[u32], qzero: f64, qscale: f64) -> (f64, f64) {
        let top = hist.len() as i64 - 1;
        let (mut lcut, mut hcut) = (0i64, top);
        let mut sig = 10.0 * top as f64;
        let mut sig_prev = 1.0f64;
        let (mut mean, mut med) = (0.0f64, 0.0f64);
        let mut iter = 0;
        while iter < 100 && sig >= 0.1 && (sig / sig_prev - 1.0).abs() > MODE_EPS {
            iter += 1;
            sig_prev = sig;
            let (mut sum, mut s1, mut s2) = (0.0f64, 0.0f64, 0.0f64);
            for i in lcut..=hcut {
                let h = hist[i as usize] as f64;
                sum += h;
                s1 += i as f64 * h;
                s2 += (i * i) as f64 * h;
            }
            if sum == 0.0 {
                mean = 0.0;
                sig = 0.0;
            } else {
                mean = s1 / sum;
                let v = s2 / sum - mean * mean;
                sig = if v > 0.0 { v.sqrt() } else { 0.0 };
            }
            let (mut lo, mut hi) = (lcut, hcut);
            let (mut lowsum, mut highsum) = (0u64, 0u64);
            for _ in lcut..=hcut {
                if lowsum < highsum {
                    lowsum += hist[lo as usize] as u64;
                    lo += 1;
                } else {
                    highsum += hist[hi as usize] as u64;
                    hi -= 1;
                }
            }
            med = median_from_pointers(hist, lo, hi, lowsum, highsum);
            let (nl, nh) = cuts(med, sig, top);
            lcut = nl;
            hcut = nh;
            if hcut < lcut {
                break;
            }
        }
        (mode_from(mean, med, sig, qzero, qscale), sig * qscale)
    }

    #[test]
    fn fast_mode_equals_the_direct_statement_on_random_histograms() {
        let mut state = 12345u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..2000 {
            let n = 1 + (next() % 4096) as usize;
            let comb = 1 + (next() % 25) as usize; // sparse "comb" histograms too
            let centre = (next() % n as u64) as f64;
            let width = 1.0 + (next() % 400) as f64;
            let mut h = vec![0u32; n];
            for _ in 0..(next() % 5000) {
                // Sum of uniforms: a bell around `centre`.
                let u = (0..4).map(|_| (next() % 1000) as f64 / 1000.0).sum::<f64>() - 2.0;
                let b = (centre + u * width) as i64;
                if b >= 0 && (b as usize) < n && (b as usize).is_multiple_of(comb) {
                    h[b as usize] += 1;
                }
            }
            let fast = histogram_mode(&h, 100.0, 0.25);
            let direct = histogram_mode_direct(&h, 100.0, 0.25);
            assert_eq!(fast, direct, "case {case}: n {n} comb {comb}");
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn band_statistics_equal_the_per_mesh_statement() {
        // 203x150 image (partial last mesh column and row), noise + a gradient, NaN,
        // -1e30 and masked pixels, integer-valued rows (comb histograms) too.
        let (w, h) = (203usize, 150usize);
        let mut state = 99u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut data = vec![0f32; w * h];
        for (k, v) in data.iter_mut().enumerate() {
            let (x, y) = (k % w, k / w);
            let g = (0..4).map(|_| next()).sum::<f64>() - 2.0;
            *v = (1000.0 + 0.3 * x as f64 + 25.0 * g) as f32;
            if y % 7 == 3 {
                *v = v.round();
            }
        }
        for k in (0..w * h).step_by(37) {
            data[k] = f32::NAN;
        }
        for k in (5..w * h).step_by(101) {
            data[k] = -1e31;
        }
        let img = Image::new(w, h, data).unwrap();
        let bad: Vec<bool> = (0..w * h).map(|k| k % 53 == 0).collect();
        let mask = Mask::new(w, h, bad.clone()).unwrap();
        let (bw, bh) = (48, 40);
        let nx = w.div_ceil(bw);
        for j in 0..h.div_ceil(bh) {
            let (y0, y1) = (j * bh, ((j + 1) * bh).min(h));
            let band = band_stats(&img, Some(mask.data()), y0, y1, bw, nx, &mut Vec::new());
            for i in 0..nx {
                let (x0, x1) = (i * bw, ((i + 1) * bw).min(w));
                let mut vals = Vec::new();
                for y in y0..y1 {
                    for x in x0..x1 {
                        let v = img.get(x, y);
                        if is_valid(v) && !bad[y * w + x] {
                            vals.push(v);
                        }
                    }
                }
                assert_eq!(
                    band[i],
                    mesh_stat(&vals, (x1 - x0) * (y1 - y0)),
                    "mesh ({i},{j})"
                );
            }
        }
    }

    #[test]
    fn constant_mesh_has_its_value_as_mode_and_zero_sigma() {
        let v = vec![100.0f32; 64 * 64];
        let s = mesh_stat(&v, v.len()).unwrap();
        assert_eq!(s.sigma, 0.0);
        // σ = 0: qscale = 1, qzero = mean, the one populated bin is 0 → mode = mean.
        assert!((s.back - 100.0).abs() < 1e-4);
    }

    #[test]
    fn half_valid_mesh_is_bad() {
        let v = vec![1.0f32; 100];
        assert!(mesh_stat(&v, 201).is_none());
        assert!(mesh_stat(&v, 200).is_some());
    }
}
