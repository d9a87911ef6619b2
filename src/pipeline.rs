//! The extractor: runs background, filtering, thresholding, labelling and measurement
//! on a backend and returns the background, the segmentation and the catalog.

use crate::backend::{Backend, Resolved};
use crate::background::Background;
use crate::catalog::Catalog;
use crate::convolve::{convolve, convolve_row};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuThreshold};
use crate::image::{is_valid, Image, Mask};
use crate::label::{label_runs, row_runs_with_values, Segmentation};
use crate::measure::{measure_all, MeasureInput, PixelField};
use crate::params::{BackgroundParams, ExtractParams, RmsSource, ThreshType};
use rayon::prelude::*;
use std::sync::Arc;

/// Everything an extraction produces.
#[derive(Clone, Debug)]
pub struct Extraction {
    /// The background model (mesh grid, global values, maps on demand).
    pub background: Background,
    /// The detection kernel that was used (None: no filtering).
    pub kernel: Option<crate::kernel::Kernel>,
    /// The background-subtracted image, once built (see [`Extraction::subtracted`]).
    subtracted: std::sync::OnceLock<Image>,
    /// What the subtracted image is built from when the GPU subtracted the background
    /// (the raw image and the mask); None when the CPU built it during the run.
    pending: Option<(Image, Option<Vec<bool>>)>,
    /// The objects as pixel runs; label k + 1 is catalog row k.
    pub segmentation: Segmentation,
    /// The measured objects.
    pub catalog: Catalog,
    /// Wall time of each stage, in order (stage name, seconds).
    pub timings: Vec<(&'static str, f64)>,
    /// Invalid pixels (NaN, Inf, <= -1e30) and the filtered pixels whose kernel
    /// footprint touches one, which cannot be detected ([`crate::convolve::invalid_spread`]).
    pub invalid_spread: (u64, u64),
}

/// The matched-filter S/N image: Σk·f·w / √(Σk²·w) with w = 1/σ² (0 where the noise
/// is not positive and finite, or the pixel is masked); 0 where Σk²·w = 0.
pub fn matched_filter(
    sub: &Image,
    noise: &Image,
    mask: Option<&[bool]>,
    kernel: Option<&crate::kernel::Kernel>,
) -> Image {
    let (w, h) = (sub.width(), sub.height());
    let identity = crate::kernel::Kernel::new(1, 1, vec![1.0], false).expect("1x1 kernel");
    let k = kernel.unwrap_or(&identity);
    let k2 = crate::kernel::Kernel::new(
        k.width(),
        k.height(),
        k.data().iter().map(|&v| (v as f64) * (v as f64)).collect(),
        false,
    )
    .expect("same shape");
    let weight: Vec<f32> = noise
        .data()
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let ok = s.is_finite() && s > 0.0 && !mask.is_some_and(|m| m[i]);
            if ok {
                1.0 / (s * s)
            } else {
                0.0
            }
        })
        .collect();
    let fw: Vec<f32> = sub
        .data()
        .iter()
        .zip(&weight)
        .map(|(&f, &wt)| f * wt)
        .collect();
    let fw = Image::new(w, h, fw).expect("same shape");
    let weight = Image::new(w, h, weight).expect("same shape");
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each_init(
        || vec![0f32; w],
        |den, (y, row)| {
            convolve_row(&fw, k, y, row);
            convolve_row(&weight, &k2, y, den);
            for (o, &d) in row.iter_mut().zip(den.iter()) {
                *o = if d > 0.0 { *o / d.sqrt() } else { 0.0 };
            }
        },
    );
    Image::new(w, h, out).expect("same shape")
}

impl Extraction {
    /// The background-subtracted image (masked pixels 0, invalid pixels NaN). On the
    /// CPU path it is built during the run; on the GPU path, where the device
    /// subtracts the background, it is built here on first use, with the same f32
    /// arithmetic, so it equals the CPU path's.
    pub fn subtracted(&self) -> &Image {
        self.subtracted.get_or_init(|| {
            let (image, mask) = self
                .pending
                .as_ref()
                .expect("an extraction keeps its subtracted image or what builds it");
            let w = image.width();
            let mut sub = image.data().to_vec();
            sub.par_chunks_mut(w).enumerate().for_each_init(
                || vec![0f32; w],
                |back, (y, row)| {
                    let m = mask.as_ref().map(|m| &m[y * w..(y + 1) * w]);
                    subtract_row(&self.background, y, row, m, f32::INFINITY, back);
                },
            );
            Image::new(w, image.height(), sub).expect("shape is consistent")
        })
    }

    /// The filtered, background-subtracted detection image (computed on demand: the
    /// pipeline itself only keeps the filtered values of detected pixels).
    pub fn filtered(&self) -> Image {
        match &self.kernel {
            Some(k) => convolve(self.subtracted(), k),
            None => self.subtracted().clone(),
        }
    }
}

/// Subtracts the background from image row `y` in place: invalid pixels (NaN, Inf,
/// <= -1e30) become NaN, masked pixels 0; returns the columns of the saturated pixels
/// (>= `satur` before subtraction). `back` is a scratch row.
pub(crate) fn subtract_row(
    background: &Background,
    y: usize,
    row: &mut [f32],
    mask: Option<&[bool]>,
    satur: f32,
    back: &mut [f32],
) -> Vec<usize> {
    background.back_row(y, back);
    let mut sat = Vec::new();
    // Fast path: no mask, every pixel valid and below saturation (NaN fails both).
    let plain = mask.is_none()
        && row
            .iter()
            .fold(true, |ok, &v| ok & (v > -crate::image::BIG) & (v < satur));
    if plain {
        for (v, b) in row.iter_mut().zip(back.iter()) {
            *v -= *b;
        }
        return sat;
    }
    for x in 0..row.len() {
        let v = row[x];
        row[x] = if !is_valid(v) {
            f32::NAN
        } else if mask.is_some_and(|m| m[x]) {
            0.0
        } else {
            if v >= satur {
                sat.push(x);
            }
            v - back[x]
        };
    }
    sat
}

/// A part of a split object: its runs, its pixels (indices into the object's pixel
/// list), its fixed centre if it was deblended, and whether it was.
pub(crate) type Part = (Vec<crate::label::Run>, Vec<usize>, Option<(f64, f64)>, bool);

/// One object (pixels in raster order, their runs, its first pixel's linear index,
/// its mean threshold) split by deblending: each part's runs, pixel indices, fixed
/// centre (deblended parts) and whether it came out of a split. Shared by the
/// whole-image and the streaming pipelines, so that both give the same catalog.
pub(crate) fn split_object(
    px: &[crate::deblend::Pixel],
    runs: &[crate::label::Run],
    first: u64,
    t0: f64,
    p: &ExtractParams,
) -> Vec<Part> {
    split_pieces(px, first, t0, p)
        .unwrap_or_else(|| vec![(runs.to_vec(), (0..px.len()).collect(), None, false)])
}

/// The pieces of a deblended object; `None` when it does not split.
fn split_pieces(
    px: &[crate::deblend::Pixel],
    first: u64,
    t0: f64,
    p: &ExtractParams,
) -> Option<Vec<Part>> {
    use crate::deblend::{deblend, runs_of};
    if p.deblend.mincont >= 1.0 {
        return None;
    }
    let children = deblend(
        px,
        t0,
        p.minarea,
        p.connectivity,
        &p.deblend,
        first ^ 0x5EED_5EED_5EED_5EED,
    )?;
    Some(
        children
            .into_iter()
            .map(|ch| (runs_of(px, &ch.pixels), ch.pixels, Some(ch.centre), true))
            .collect(),
    )
}

/// The deblended segmentation, the fixed centres of deblended objects, which objects
/// came out of a split and the last row of each object's detected component.
type Deblended = (Segmentation, Vec<Option<(f64, f64)>>, Vec<bool>, Vec<u32>);

/// Deblends every object of `seg` (in parallel); returns the new segmentation (objects
/// ordered by first pixel), the fixed centres of deblended objects and which objects
/// came out of a split.
/// Unfiltered values come from the segmentation when it carries them (GPU path),
/// else from `sub`.
fn deblend_all(
    seg: &Segmentation,
    sub: Option<&Image>,
    thresh: &PixelField,
    p: &ExtractParams,
) -> Deblended {
    use crate::deblend::Pixel;
    let w = seg.width();
    let with_raw = !seg.is_empty() && !seg.object_raw(0).is_empty();
    /// An object that did not split (by index), or a piece of one that did: runs,
    /// filtered values, unfiltered values (GPU path) and centre.
    enum Piece {
        Whole(usize),
        Split(Vec<crate::label::Run>, Vec<f32>, Vec<f32>, (f64, f64)),
    }
    let parts: Vec<Vec<(Piece, u32)>> = (0..seg.len())
        .into_par_iter()
        .map(|k| {
            let runs = seg.object(k);
            let vals = seg.object_values(k);
            let raw = seg.object_raw(k);
            let mut px = Vec::with_capacity(vals.len());
            let mut tsum = 0.0f64;
            for r in runs {
                for x in r.x0..r.x1 {
                    let idx = r.y as usize * w + x as usize;
                    let c = vals[px.len()];
                    let v = if with_raw {
                        raw[px.len()]
                    } else {
                        sub.expect("subtracted image or raw values").data()[idx]
                    };
                    px.push(Pixel { x, y: r.y, c, v });
                    tsum += thresh.at(idx) as f64;
                }
            }
            let t0 = tsum / px.len() as f64;
            let first = runs[0].y as u64 * w as u64 + runs[0].x0 as u64;
            let last_row = runs.last().map_or(0, |r| r.y);
            match split_pieces(&px, first, t0, p) {
                None => vec![(Piece::Whole(k), last_row)],
                Some(pieces) => pieces
                    .into_iter()
                    .map(|(r, idx, centre, _)| {
                        let c = idx.iter().map(|&i| px[i].c).collect();
                        let v = if with_raw {
                            idx.iter().map(|&i| px[i].v).collect()
                        } else {
                            Vec::new()
                        };
                        let centre = centre.expect("deblended pieces have a centre");
                        (Piece::Split(r, c, v, centre), last_row)
                    })
                    .collect(),
            }
        })
        .collect();
    let mut all: Vec<(Piece, u32)> = parts.into_iter().flatten().collect();
    let first_run = |piece: &Piece| match piece {
        Piece::Whole(k) => seg.object(*k)[0],
        Piece::Split(r, ..) => r[0],
    };
    all.sort_by_key(|(piece, _)| {
        let r = first_run(piece);
        (r.y, r.x0)
    });
    let mut out = Segmentation::empty(seg.width(), seg.height());
    let mut centres = Vec::with_capacity(all.len());
    let mut merged = Vec::with_capacity(all.len());
    let mut done = Vec::with_capacity(all.len());
    for (piece, last_row) in &all {
        match piece {
            Piece::Whole(k) => {
                out.push(seg.object(*k), seg.object_values(*k), seg.object_raw(*k));
                centres.push(None);
                merged.push(false);
            }
            Piece::Split(r, c, v, centre) => {
                out.push(r, c, v);
                centres.push(Some(*centre));
                merged.push(true);
            }
        }
        done.push(*last_row);
    }
    (out, centres, merged, done)
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

/// Merges every cleaned object's measurements into its target (by target, then in
/// index order); returns the (target, victim) pairs.
pub(crate) fn merge_cleaned(
    objects: &mut [crate::measure::Object],
    targets: &[usize],
    zeropoint: f64,
) -> Vec<(usize, usize)> {
    let victims = victims_of(targets);
    for &(t, v) in &victims {
        let victim = objects[v].clone();
        crate::clean::merge_into(&mut objects[t], &victim, zeropoint);
    }
    victims
}

/// Merges every cleaned object into its target and renumbers the survivors; the
/// segmentation follows (a victim's pixels join its eater's segment).
fn apply_cleaning(
    seg: Segmentation,
    mut objects: Vec<crate::measure::Object>,
    targets: &[usize],
    zeropoint: f64,
) -> (Segmentation, Vec<crate::measure::Object>) {
    let n = objects.len();
    let victims = merge_cleaned(&mut objects, targets, zeropoint);
    let with_raw = !seg.is_empty() && !seg.object_raw(0).is_empty();
    let mut out = Segmentation::empty(seg.width(), seg.height());
    let mut kept = Vec::with_capacity(n);
    let mut vi = 0usize;
    for (t, mut o) in objects.into_iter().enumerate() {
        if targets[t] != t {
            continue;
        }
        o.number = kept.len() as u32 + 1;
        kept.push(o);
        let from = vi;
        while vi < victims.len() && victims[vi].0 == t {
            vi += 1;
        }
        let mine = &victims[from..vi];
        if mine.is_empty() {
            out.push(seg.object(t), seg.object_values(t), seg.object_raw(t));
            continue;
        }
        // Runs and values of the eater and its victims, merged in raster order.
        let mut pix: Vec<(u32, u32, f32, f32)> = Vec::new();
        for k in std::iter::once(t).chain(mine.iter().map(|&(_, v)| v)) {
            let (vals, raw) = (seg.object_values(k), seg.object_raw(k));
            let mut i = 0;
            for r in seg.object(k) {
                for x in r.x0..r.x1 {
                    let v = vals.get(i).copied().unwrap_or(0.0);
                    pix.push((r.y, x, v, raw.get(i).copied().unwrap_or(0.0)));
                    i += 1;
                }
            }
        }
        pix.sort_by_key(|q| (q.0, q.1));
        let runs = crate::label::runs_from_raster(pix.iter().map(|q| (q.1, q.0)));
        let values: Vec<f32> = pix.iter().map(|q| q.2).collect();
        let raw: Vec<f32> = if with_raw {
            pix.iter().map(|q| q.3).collect()
        } else {
            Vec::new()
        };
        out.push(&runs, &values, &raw);
    }
    (out, kept)
}

/// Optional per-pixel inputs besides the image.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inputs<'a> {
    /// Bad pixels.
    pub mask: Option<&'a Mask>,
    /// A per-pixel detection threshold in ADU above the background (as photutils'
    /// 2-D `threshold`); replaces `detect_thresh`.
    pub threshold_image: Option<&'a Image>,
    /// A per-pixel noise (RMS) map for the matched filter; without it the matched
    /// filter uses the background RMS map.
    pub noise: Option<&'a Image>,
}

/// Runs the pipeline with validated parameters.
///
/// ```
/// use skysift::{Extractor, Image, Inputs};
/// // A flat noisy-free sky of 100 with one 3x3 source.
/// let mut data = vec![100.0f32; 64 * 64];
/// for y in 30..33 { for x in 30..33 { data[y * 64 + x] = 200.0; } }
/// // Add a little structure so the background RMS is not zero.
/// for (i, v) in data.iter_mut().enumerate() { *v += ((i * 7919) % 13) as f32 * 0.1; }
/// let image = Image::new(64, 64, data).unwrap();
/// let result = Extractor::default().extract(&image, Inputs::default()).unwrap();
/// assert_eq!(result.catalog.len(), 1);
/// let star = &result.catalog.objects[0];
/// assert!((star.x - 31.0).abs() < 0.1 && (star.y - 31.0).abs() < 0.1); // 0-based
/// ```
#[derive(Clone, Debug, Default)]
pub struct Extractor {
    pub background: BackgroundParams,
    pub extract: ExtractParams,
    /// Where filtering, thresholding and labelling run (default: the CPU). `Gpu` and
    /// `Auto` build a GPU context on each call unless [`Extractor::prepare`] or
    /// [`Extractor::with_gpu`] provided one.
    pub backend: Backend,
    /// The GPU context, once resolved (built once, reused for every image).
    pub gpu: Option<Arc<GpuContext>>,
}

impl Extractor {
    pub fn new(background: BackgroundParams, extract: ExtractParams, backend: Backend) -> Self {
        Extractor {
            background,
            extract,
            backend,
            gpu: None,
        }
    }

    /// Resolves the backend once (building the GPU context if one is used) so that
    /// every later extraction reuses it. Returns a notice when `Auto` falls back to
    /// the CPU.
    pub fn prepare(&mut self) -> Result<Option<String>> {
        let (resolved, notice) = self.backend.resolve()?;
        match resolved {
            Resolved::Gpu(ctx) => self.gpu = Some(ctx),
            Resolved::Cpu => {
                self.gpu = None;
                self.backend = Backend::Cpu;
            }
        }
        let big = match (&self.gpu, &self.extract.kernel) {
            (Some(_), Some(k)) if !crate::gpu::gpu_filters(Some(k)) => Some(format!(
                "skysift: the {}x{} filter kernel is beyond the GPU filter's exact size \
                 ((width + 1) x height <= {}, e.g. 255x255): filtering on the CPU, \
                 with the same results",
                k.width(),
                k.height(),
                crate::gpu::MAX_FILTER_STEPS
            )),
            _ => None,
        };
        Ok(match (notice, big) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (a, b) => a.or(b),
        })
    }

    /// Uses this GPU context (and the GPU backend) from now on.
    pub fn with_gpu(mut self, ctx: Arc<GpuContext>) -> Self {
        self.backend = Backend::Gpu;
        self.gpu = Some(ctx);
        self
    }

    /// Extracts the sources of `image`.
    pub fn extract(&self, image: &Image, inputs: Inputs) -> Result<Extraction> {
        self.extract_owned(image.clone(), inputs)
    }

    /// Extracts the sources of `image`, reusing its memory for the
    /// background-subtracted image (one full-size buffer less than [`Self::extract`]).
    pub fn extract_owned(&self, image: Image, inputs: Inputs) -> Result<Extraction> {
        self.background.validate()?;
        self.extract.validate()?;
        let gpu = match (&self.gpu, self.backend) {
            (Some(ctx), _) => Some(ctx.clone()),
            (None, Backend::Cpu) => None,
            (None, _) => match self.backend.resolve()?.0 {
                Resolved::Gpu(ctx) => Some(ctx),
                Resolved::Cpu => None,
            },
        };
        let (w, h) = (image.width(), image.height());
        if let Some(m) = inputs.mask {
            if (m.width(), m.height()) != (w, h) {
                return Err(Error::Mismatch(format!(
                    "the mask is {}x{} but the image is {w}x{h}: they must have the same shape",
                    m.width(),
                    m.height()
                )));
            }
        }
        if let Some(t) = inputs.threshold_image {
            if (t.width(), t.height()) != (w, h) {
                return Err(Error::Mismatch(format!(
                    "the threshold image is {}x{} but the image is {w}x{h}: they must have the same shape",
                    t.width(),
                    t.height()
                )));
            }
        }
        let p = &self.extract;
        let mut timings = Vec::new();
        let mut clock = std::time::Instant::now();
        let mut lap = |name: &'static str| {
            timings.push((name, clock.elapsed().as_secs_f64()));
            clock = std::time::Instant::now();
        };
        // On the GPU, the image goes up once when it fits one binding; the mesh
        // statistics and the detection then read it where it is.
        let matched = p.filter_type == crate::params::FilterType::Matched;
        let uploaded = match gpu.as_ref().filter(|_| !matched) {
            Some(ctx) => {
                let u = ctx.upload(&image);
                lap("upload (GPU)");
                u
            }
            None => None,
        };
        // Mesh statistics on the GPU where the device can (f64 in shaders), else the CPU.
        let mut on_gpu = false;
        let background = Background::estimate_with(
            &image,
            inputs.mask,
            &self.background,
            |img, maskd, mesh, grid| {
                if let Some(ctx) = gpu.as_ref().filter(|c| c.has_mesh_stats()) {
                    if let Some(stats) =
                        ctx.mesh_stats(img, uploaded.as_ref(), maskd, mesh, grid)?
                    {
                        on_gpu = true;
                        return Ok(stats);
                    }
                }
                Ok(crate::background::cpu_mesh_stats(img, maskd, mesh, grid))
            },
        )?;
        lap(if on_gpu {
            "background mesh statistics (GPU)"
        } else {
            "background mesh statistics"
        });
        // How far filtering spreads invalid pixels (for a notice; no cost without any).
        let invalid_spread = match &p.kernel {
            Some(k) => {
                crate::convolve::invalid_spread(image.data(), w, 0..h, k.width(), k.height())
            }
            None => (0, 0),
        };
        let mask = inputs.mask.map(|m| m.data());
        let satur = p.satur_level as f32;
        // On the GPU the device subtracts the background (except for the matched
        // filter, which runs on the CPU); the raw image is kept to build the subtracted
        // image later if anything asks for it.
        // Kernels beyond the GPU filter's exact size are filtered on the CPU (the
        // notice comes from `prepare`).
        let gpu_subtracts = gpu.is_some() && !matched && crate::gpu::gpu_filters(p.kernel.as_ref());
        let (raw_image, subtracted, mut saturated) = if gpu_subtracts {
            (Some(image), None, Vec::new())
        } else {
            // Background subtraction in place, row by row from the spline (the full
            // background map is only built on demand: `background.back_map()`).
            // Pixels masked by the mask image become 0 (as SEP does); invalid pixels
            // (NaN, Inf, <= -1e30) become NaN, so that, as in SExtractor, no filtered
            // pixel whose kernel footprint touches one is detected. Saturated pixels
            // (>= SATUR_LEVEL before subtraction) are listed on the way.
            let mut sub = image.into_data();
            let saturated_rows: Vec<Vec<usize>> = sub
                .par_chunks_mut(w)
                .enumerate()
                .map_init(
                    || vec![0f32; w],
                    |back, (y, row)| {
                        subtract_row(
                            &background,
                            y,
                            row,
                            mask.map(|m| &m[y * w..(y + 1) * w]),
                            satur,
                            back,
                        )
                        .into_iter()
                        .map(|x| y * w + x)
                        .collect::<Vec<usize>>()
                    },
                )
                .collect();
            let saturated: Vec<usize> = saturated_rows.into_iter().flatten().collect();
            let sub = Image::new(w, h, sub).expect("shape is consistent");
            lap("background map and subtraction");
            (None, Some(sub), saturated)
        };
        let rms_map = match (p.thresh_type, p.rms_source) {
            (ThreshType::Relative, RmsSource::Map) => Some(background.rms_map()),
            _ if matched => Some(background.rms_map()),
            _ => None,
        };
        let g = background.global_rms() as f32;
        let field = |k: f64| -> PixelField {
            match (p.thresh_type, &rms_map) {
                (ThreshType::Absolute, _) => PixelField::Const(k as f32),
                (ThreshType::Relative, Some(r)) => PixelField::Scaled(k as f32, r),
                (ThreshType::Relative, None) => PixelField::Const(k as f32 * g),
            }
        };
        let thresh = match inputs.threshold_image {
            Some(t) => PixelField::Map(t),
            None => field(p.detect_thresh),
        };
        let analysis_thresh = match inputs.threshold_image {
            Some(t) => PixelField::Map(t),
            None => field(p.analysis_thresh),
        };
        let noise = match &rms_map {
            Some(r) => PixelField::Map(r),
            None => PixelField::Const(g),
        };
        // Matched filter (CPU): S/N = Σk·f·w / √(Σk²·w) with w = 1/σ² (0 for masked or
        // invalid noise). Detection, deblending and cleaning then work in S/N units.
        let snr_image = if matched {
            let noise = inputs.noise.or(rms_map.as_ref()).expect("noise map");
            if (noise.width(), noise.height()) != (w, h) {
                return Err(Error::Mismatch(format!(
                    "the noise map is {}x{} but the image is {w}x{h}: they must have the same shape",
                    noise.width(),
                    noise.height()
                )));
            }
            let sub = subtracted
                .as_ref()
                .expect("the CPU subtracts for the matched filter");
            Some(matched_filter(sub, noise, mask, p.kernel.as_ref()))
        } else {
            None
        };
        let snr_thresh = PixelField::Const(p.detect_thresh as f32);
        let thresh = if matched { snr_thresh } else { thresh };
        let mut gpu_detail: Option<crate::gpu::GpuTimings> = None;
        let segmentation = match (&gpu, &snr_image) {
            (_, Some(snr)) => {
                let per_row: Vec<(Vec<crate::label::Run>, Vec<f32>)> = (0..h)
                    .into_par_iter()
                    .map(|y| {
                        let src = subtracted.as_ref().expect("CPU subtraction").row(y);
                        let s = snr.row(y);
                        row_runs_with_values(
                            y,
                            w,
                            |x| {
                                !src[x].is_nan()
                                    && !mask.is_some_and(|m| m[y * w + x])
                                    && s[x] > p.detect_thresh as f32
                            },
                            |x| s[x],
                        )
                    })
                    .collect();
                lap("matched filter and thresholding");
                let seg = label_runs(w, h, p.connectivity, p.minarea, per_row);
                lap("labelling");
                seg
            }
            (Some(ctx), None) if gpu_subtracts => {
                let per_pixel = |i: usize| thresh.at(i);
                let t = match thresh {
                    PixelField::Const(v) => GpuThreshold::Const(v),
                    _ => GpuThreshold::PerPixel(&per_pixel),
                };
                let raw = raw_image.as_ref().expect("the GPU subtracts");
                let det = ctx.detect(
                    raw,
                    uploaded.as_ref(),
                    Some(crate::gpu::Subtraction {
                        background: &background,
                        satur,
                    }),
                    p.kernel.as_ref(),
                    t,
                    mask,
                    p.connectivity,
                    p.minarea,
                )?;
                lap("subtraction, filtering, thresholding and labelling (GPU)");
                gpu_detail = Some(det.timings);
                saturated = det.saturated;
                det.segmentation
            }
            (_, None) => {
                // Filtering, thresholding and labelling, row by row: the filtered image
                // is never stored whole; the filtered values of detected pixels travel
                // with the segmentation to the measurement.
                let subtracted = subtracted.as_ref().expect("CPU subtraction");
                let per_row: Vec<(Vec<crate::label::Run>, Vec<f32>)> = (0..h)
                    .into_par_iter()
                    .map_init(
                        || vec![0f32; w],
                        |fbuf, y| {
                            let src = subtracted.row(y);
                            match &p.kernel {
                                Some(k) => convolve_row(subtracted, k, y, fbuf),
                                None => fbuf.copy_from_slice(src),
                            }
                            row_runs_with_values(
                                y,
                                w,
                                |x| {
                                    let idx = y * w + x;
                                    // Invalid pixels are NaN in `subtracted` (and in the filtered row).
                                    !src[x].is_nan()
                                        && !mask.is_some_and(|m| m[idx])
                                        && fbuf[x] > thresh.at(idx)
                                },
                                |x| fbuf[x],
                            )
                        },
                    )
                    .collect();
                lap("filtering and thresholding");
                let seg = label_runs(w, h, p.connectivity, p.minarea, per_row);
                lap("labelling");
                seg
            }
        };
        // The uploaded image is not needed any more (on a software adapter it is a
        // copy of the image in this process).
        drop(uploaded);
        // Deblending, per object in parallel, seeded by each object's first pixel.
        // With each object, the last row of its detected component (the order cleaning
        // takes objects in).
        let (segmentation, centres, merged, done) = if p.deblend.mincont < 1.0 {
            let d = deblend_all(&segmentation, subtracted.as_ref(), &thresh, p);
            lap("deblending");
            d
        } else {
            let done = (0..segmentation.len())
                .map(|k| segmentation.object(k).last().map_or(0, |r| r.y))
                .collect();
            (segmentation, Vec::new(), Vec::new(), done)
        };
        let inp = MeasureInput {
            saturated: &saturated,
            sub: subtracted.as_ref(),
            width: w,
            height: h,
            filtered: None,
            noise,
            thresh,
            analysis_thresh,
            gain: p.gain,
            mag_zeropoint: p.mag_zeropoint,
            minarea: p.minarea,
            with_mthresh: p.clean,
        };
        let mut objects = measure_all(&segmentation, &inp, &centres);
        for (o, &m) in objects.iter_mut().zip(&merged) {
            if m {
                o.flags |= crate::measure::flags::MERGED;
            }
        }
        lap("measurement");
        let (segmentation, objects) = if p.clean {
            let targets = crate::clean::clean_targets(&objects, &done, p.clean_param);
            let r = apply_cleaning(segmentation, objects, &targets, p.mag_zeropoint);
            lap("cleaning");
            r
        } else {
            (segmentation, objects)
        };
        if let Some(ctx) = &gpu {
            for (pass, t) in ctx.take_kernel_times() {
                timings.push((crate::gpu::kernel_label(pass), t));
            }
        }
        if let Some(gt) = gpu_detail {
            timings.push(("GPU stage: upload", gt.upload));
            timings.push(("GPU stage: filter + labelling", gt.filter_and_label));
            timings.push((
                "GPU stage: compaction + readback",
                gt.compaction_and_readback,
            ));
            timings.push(("GPU stage: seam merge (CPU)", gt.merge));
            timings.push(("GPU stage: strips", gt.strips as f64));
        }
        Ok(Extraction {
            timings,
            background,
            kernel: p.kernel.clone(),
            pending: raw_image.map(|img| (img, mask.map(|m| m.to_vec()))),
            subtracted: match subtracted {
                Some(sub) => std::sync::OnceLock::from(sub),
                None => std::sync::OnceLock::new(),
            },
            segmentation,
            catalog: Catalog { objects },
            invalid_spread,
        })
    }
}
