//! Streaming extraction: images of any size in memory bounded by the strip height.
//!
//! Two passes over a [`RowSource`]. The background pass reads one mesh row at a time
//! and keeps only the mesh grid. The detection pass reads strips of rows (plus the
//! kernel's halo), subtracts the background, filters and thresholds row by row, and
//! labels incrementally: components stay open while the current row continues them;
//! a component that the row does not continue is complete, and is deblended and
//! measured at once with the same code as the whole-image pipeline
//! ([`crate::pipeline`]), from the filtered and unfiltered values it carried along.
//! Only open components, the current strip and the measured objects are in memory.
//! Cleaning runs at the end on the measured objects. The catalog equals the
//! whole-image run's: same objects, same numbering (first pixel in raster order),
//! same values to the bit (tested for strips from 1 row up).
//!
//! Supported here: thresholds relative to the global RMS or to the RMS map (the map's
//! rows are evaluated per strip and objects carry the RMS of their pixels for their
//! errors and thresholds), absolute thresholds, a per-pixel threshold image and a
//! mask streamed beside the image, the convolution filter and the matched filter
//! (S/N over each strip with its halo, from a noise map streamed beside the image or
//! the background RMS map; on the CPU for either backend, as in whole-image runs),
//! both backends. On the GPU
//! ([`crate::gpu::GpuStrips`]) the device computes each mesh row's statistics and
//! subtracts, filters and thresholds each strip, returning only its detected pixels;
//! the rows are joined here exactly as on the CPU. Check images need the whole image
//! and are not produced in streaming mode.

use crate::background::{mesh_row_stats, Background, MeshStat};
use crate::catalog::Catalog;
use crate::clean::CleanRecord;
use crate::convolve::convolve_row;
use crate::deblend::Pixel;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::label::Run;
use crate::measure::{measure_object, MeasureInput, Object, PixelField};
use crate::params::{Connectivity, FilterType, RmsSource, ThreshType};
use crate::pipeline::{split_object, subtract_row, Extractor};
pub use crate::spill::SegmentSpill;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;

/// Rows of an image, read on demand.
pub trait RowSource {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Reads rows `y0..y0 + n` (row-major) into `out`, replacing its content.
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()>;
}

/// An in-memory image as a row source.
pub struct ImageRows<'a>(pub &'a Image);

impl RowSource for ImageRows<'_> {
    fn width(&self) -> usize {
        self.0.width()
    }
    fn height(&self) -> usize {
        self.0.height()
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let w = self.0.width();
        out.clear();
        out.extend_from_slice(&self.0.data()[y0 * w..(y0 + n) * w]);
        Ok(())
    }
}

/// What a streamed extraction returns.
#[derive(Debug)]
pub struct StreamExtraction {
    pub background: Background,
    pub catalog: Catalog,
    /// The largest number of open components held at once.
    pub max_open: usize,
}

/// An open component: its runs with the filtered and unfiltered values of their
/// pixels, its saturated pixels, and the last row it reached.
#[derive(Default)]
struct Comp {
    runs: Vec<Run>,
    /// Start of each run's values in `f` and `r`.
    starts: Vec<usize>,
    f: Vec<f32>,
    r: Vec<f32>,
    /// The per-pixel field at each pixel: the background RMS (RMS-map thresholds, the
    /// matched filter) or the threshold image's value; empty with constant thresholds.
    s: Vec<f32>,
    sat: Vec<usize>,
    last_y: u32,
    /// Its first pixel (row, column): the smallest key any object made from it can have.
    first: (u32, u32),
}

impl Comp {
    fn npix(&self) -> usize {
        self.f.len()
    }
    fn absorb(&mut self, other: Comp) {
        let off = self.f.len();
        self.runs.extend(other.runs);
        self.starts
            .extend(other.starts.into_iter().map(|s| s + off));
        self.f.extend(other.f);
        self.r.extend(other.r);
        self.s.extend(other.s);
        self.sat.extend(other.sat);
        self.last_y = self.last_y.max(other.last_y);
        self.first = self.first.min(other.first);
    }
}

/// Streams the extraction over `src` in strips of `strip_rows` rows.
pub fn extract_streaming(
    src: &mut (dyn RowSource + Send),
    e: &Extractor,
    strip_rows: usize,
) -> Result<StreamExtraction> {
    extract_streaming_with_progress(src, None, e, strip_rows, &mut |_| {})
}

/// A mask streamed beside the image: its rows, and the value above which a pixel is bad.
pub struct MaskRows<'a> {
    pub rows: &'a mut (dyn RowSource + Send),
    pub thresh: f32,
}

impl MaskRows<'_> {
    /// Rows `y0..y0 + n` of the mask as booleans (bad = value > thresh or NaN).
    fn read(&mut self, y0: usize, n: usize, buf: &mut Vec<f32>, out: &mut Vec<bool>) -> Result<()> {
        self.rows.read_rows(y0, n, buf)?;
        out.clear();
        let t = self.thresh;
        out.extend(buf.iter().map(|&v| v.is_nan() || v > t));
        Ok(())
    }
}

/// Reads rows `y0..y1` of the image into `buf` (checking that whole rows came back)
/// and, with a mask, its rows as flags into `mbits`, which it returns.
fn read_band<'b>(
    src: &mut (dyn RowSource + Send),
    mask: Option<&mut MaskRows>,
    (y0, y1): (usize, usize),
    buf: &mut Vec<f32>,
    mbuf: &mut Vec<f32>,
    mbits: &'b mut Vec<bool>,
) -> Result<Option<&'b [bool]>> {
    let w = src.width();
    src.read_rows(y0, y1 - y0, buf)?;
    if buf.len() != (y1 - y0) * w {
        return Err(Error::Mismatch(format!(
            "rows {y0}..{y1} came back with the wrong number of pixels from the image \
             ({w} per row)"
        )));
    }
    match mask {
        Some(m) => {
            m.read(y0, y1 - y0, mbuf, mbits)?;
            Ok(Some(&mbits[..]))
        }
        None => Ok(None),
    }
}

/// Progress of a streamed extraction, reported after each mesh row and each strip.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Rows done in the current pass, of `rows`.
    pub rows_done: usize,
    pub rows: usize,
    /// 1 = background pass, 2 = detection pass (3 = check images, in the CLI).
    pub pass: u8,
    /// Objects measured so far.
    pub objects: usize,
}

/// [`extract_streaming`], calling `progress` after each mesh row and each strip.
pub fn extract_streaming_with_progress(
    src: &mut (dyn RowSource + Send),
    mask: Option<MaskRows>,
    e: &Extractor,
    strip_rows: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamExtraction> {
    let mut objects = Vec::new();
    let summary = extract_streaming_to(
        src,
        mask,
        Beside::default(),
        e,
        strip_rows,
        progress,
        &mut |o| {
            objects.push(o);
            Ok(())
        },
    )?;
    Ok(StreamExtraction {
        background: summary.background,
        catalog: Catalog { objects },
        max_open: summary.max_open,
    })
}

/// Per-pixel inputs read row by row beside the image (see [`crate::pipeline::Inputs`]).
#[derive(Default)]
pub struct Beside<'a> {
    /// A detection threshold per pixel, in ADU above the background.
    pub threshold: Option<&'a mut (dyn RowSource + Send)>,
    /// The noise (RMS) map for the matched filter (default: the background RMS map).
    pub noise: Option<&'a mut (dyn RowSource + Send)>,
    /// Where the objects' pixels go, with their catalog numbers, for the check images
    /// written after the run ([`check_pass`]).
    pub segments: Option<&'a mut SegmentSpill>,
    /// Where temporary files go (the objects waiting for cleaning, about 330 bytes
    /// each); the system's temporary folder if none (which may be in memory, tmpfs,
    /// and then counts against the memory the run saves).
    pub temp_dir: Option<&'a std::path::Path>,
    /// The most detected pixels that objects not complete yet may hold (their pixels
    /// wait in memory until the object ends): beyond it the run stops with an error
    /// naming the object, instead of growing past a memory limit (an object larger
    /// than the memory, e.g. a threshold below the noise).
    pub max_open_pixels: Option<usize>,
}

/// What [`extract_streaming_to`] returns besides the objects it emitted.
#[derive(Debug)]
pub struct StreamSummary {
    pub background: Background,
    /// Objects emitted.
    pub objects: usize,
    /// The largest number of open components held at once.
    pub max_open: usize,
    /// The largest number of measured objects held at once, waiting to be emitted in
    /// order (all of them with cleaning, which needs every object).
    pub max_held: usize,
    /// The memory those objects took at most (with cleaning, only what cleaning reads
    /// of each is in memory, the objects wait in a temporary file; this includes an
    /// estimate of the cleaning's own arrays at the end).
    pub max_held_bytes: usize,
    /// Invalid pixels and the filtered pixels they make undetectable, as
    /// [`crate::pipeline::Extraction::invalid_spread`].
    pub invalid_spread: (u64, u64),
}

/// What [`check_pass`] computes for each block of rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckWant {
    /// The background-subtracted image (-BACKGROUND; also OBJECTS, APERTURES).
    pub subtracted: bool,
    /// The filtered image (FILTERED).
    pub filtered: bool,
    /// The background map (BACKGROUND).
    pub background: bool,
    /// The background RMS map (BACKGROUND_RMS).
    pub rms: bool,
    /// The segmentation (SEGMENTATION; also OBJECTS), from a [`SegmentSpill`].
    pub segmentation: bool,
}

/// One block of rows of the check images: `rows` rows of `width` pixels from row
/// `y0`; each slice is empty unless asked for.
pub struct CheckBlock<'a> {
    pub y0: usize,
    pub rows: usize,
    pub width: usize,
    pub subtracted: &'a [f32],
    pub filtered: &'a [f32],
    pub background: &'a [f32],
    pub rms: &'a [f32],
    pub segmentation: &'a [u32],
}

/// After a streamed run, reads the image again block by block (the spill's blocks
/// when the segmentation is asked for, else `block_rows`) and hands `f` the rows of
/// the check images, with the same values as a whole-image run's
/// ([`crate::pipeline::Extraction`]): the subtracted image (invalid pixels NaN,
/// masked ones 0), its convolution with the detection kernel, the background and
/// RMS maps, and the segmentation numbered as the catalog.
#[allow(clippy::too_many_arguments)]
pub fn check_pass(
    src: &mut (dyn RowSource + Send),
    mut mask: Option<MaskRows>,
    background: &Background,
    e: &Extractor,
    want: CheckWant,
    mut segments: Option<&mut SegmentSpill>,
    block_rows: usize,
    f: &mut dyn FnMut(&CheckBlock) -> Result<()>,
) -> Result<()> {
    let (w, h) = (src.width(), src.height());
    if background.shape() != (w, h) {
        return Err(Error::Mismatch(format!(
            "the background is {}x{} but the image is {w}x{h}",
            background.shape().0,
            background.shape().1
        )));
    }
    if let Some(s) = &segments {
        if s.shape() != (w, h) {
            return Err(Error::Mismatch(format!(
                "the objects' pixels were kept for a {}x{} image but the image is {w}x{h}",
                s.shape().0,
                s.shape().1
            )));
        }
    }
    let block_rows = match (&segments, want.segmentation) {
        (Some(s), _) => s.block_rows(),
        (None, true) => {
            return Err(Error::Backend(
                "the segmentation check image needs the objects' pixels kept during the run".into(),
            ))
        }
        (None, false) => block_rows.max(1),
    };
    let kernel = e.extract.kernel.as_ref();
    let halo = if want.filtered {
        kernel.map_or(0, |k| k.height() / 2)
    } else {
        0
    };
    let need_sub = want.subtracted || want.filtered;
    let (mut raw, mut mbuf, mut mbits) = (Vec::new(), Vec::new(), Vec::new());
    let mut back = vec![0f32; w];
    let (mut filtered, mut bg, mut rms, mut seg) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut y0 = 0;
    let mut b = 0;
    while y0 < h {
        let rows = block_rows.min(h - y0);
        let (sy0, sy1) = (y0.saturating_sub(halo), (y0 + rows + halo).min(h));
        let mut strip: Option<Image> = None;
        if need_sub {
            let m = read_band(
                src,
                mask.as_mut(),
                (sy0, sy1),
                &mut raw,
                &mut mbuf,
                &mut mbits,
            )?;
            for (k, row) in raw.chunks_exact_mut(w).enumerate() {
                let mrow = m.map(|m| &m[k * w..(k + 1) * w]);
                subtract_row(background, sy0 + k, row, mrow, f32::INFINITY, &mut back);
            }
            strip = Some(Image::new(w, sy1 - sy0, std::mem::take(&mut raw)).expect("strip shape"));
        }
        filtered.clear();
        if want.filtered {
            let strip = strip.as_ref().expect("read for the filtered rows");
            filtered.resize(rows * w, 0.0);
            for (k, out) in filtered.chunks_exact_mut(w).enumerate() {
                let ly = y0 + k - sy0;
                match kernel {
                    Some(kern) => convolve_row(strip, kern, ly, out),
                    None => out.copy_from_slice(strip.row(ly)),
                }
            }
        }
        bg.clear();
        if want.background {
            bg.resize(rows * w, 0.0);
            for (k, out) in bg.chunks_exact_mut(w).enumerate() {
                background.back_row(y0 + k, out);
            }
        }
        rms.clear();
        if want.rms {
            rms.resize(rows * w, 0.0);
            for (k, out) in rms.chunks_exact_mut(w).enumerate() {
                background.rms_row(y0 + k, out);
            }
        }
        seg.clear();
        if want.segmentation {
            segments
                .as_mut()
                .expect("checked above")
                .paint(b, &mut seg)?;
        }
        let sub = match (&strip, want.subtracted) {
            (Some(st), true) => &st.data()[(y0 - sy0) * w..(y0 - sy0 + rows) * w],
            _ => &[][..],
        };
        f(&CheckBlock {
            y0,
            rows,
            width: w,
            subtracted: sub,
            filtered: &filtered,
            background: &bg,
            rms: &rms,
            segmentation: &seg,
        })?;
        if let Some(st) = strip {
            raw = st.into_data();
        }
        y0 += rows;
        b += 1;
    }
    Ok(())
}

/// The streamed extraction, handing each final object to `emit` in catalog order
/// (numbered; first pixel in raster order, as the whole-image run). Without cleaning,
/// objects leave as soon as nothing before them can still appear, so the catalog is
/// never held whole (a writer can put it on disk as it comes); with cleaning, they
/// leave at the end. `beside` holds images read row by row beside the image (a
/// threshold image, a noise map). `progress` is called after each mesh row and each
/// strip.
pub fn extract_streaming_to(
    src: &mut (dyn RowSource + Send),
    mut mask: Option<MaskRows>,
    beside: Beside,
    e: &Extractor,
    strip_rows: usize,
    progress: &mut dyn FnMut(Progress),
    emit: &mut dyn FnMut(Object) -> Result<()>,
) -> Result<StreamSummary> {
    e.background.validate()?;
    e.extract.validate()?;
    if let Some(m) = &mask {
        if (m.rows.width(), m.rows.height()) != (src.width(), src.height()) {
            return Err(Error::Mismatch(format!(
                "the mask is {}x{} but the image is {}x{}: they must have the same shape",
                m.rows.width(),
                m.rows.height(),
                src.width(),
                src.height()
            )));
        }
    }
    let Beside {
        mut threshold,
        mut noise,
        mut segments,
        max_open_pixels,
        temp_dir,
    } = beside;
    for (what, r) in [("threshold image", &threshold), ("noise map", &noise)] {
        if let Some(t) = r {
            if (t.width(), t.height()) != (src.width(), src.height()) {
                return Err(Error::Mismatch(format!(
                    "the {what} is {}x{} but the image is {}x{}: they must have the same shape",
                    t.width(),
                    t.height(),
                    src.width(),
                    src.height()
                )));
            }
        }
    }
    let has_thresh_image = threshold.is_some();
    let mut mbuf = Vec::new();
    let mut mbits: Vec<bool> = Vec::new();
    if strip_rows == 0 {
        return Err(Error::param(
            "--stream-rows",
            0,
            "strips must have at least one row",
        ));
    }
    let p = &e.extract;
    let (w, h) = (src.width(), src.height());
    let gpu = e.gpu.as_deref();
    // Pass 1: the background, one mesh row at a time.
    let (bw, bh) = (
        e.background.mesh_size.0.min(w),
        e.background.mesh_size.1.min(h),
    );
    let (nx, ny) = (w.div_ceil(bw), h.div_ceil(bh));
    let mut stats: Vec<Option<MeshStat>> = Vec::with_capacity(nx * ny);
    let mut band = Vec::new();
    for j in 0..ny {
        let (y0, y1) = (j * bh, ((j + 1) * bh).min(h));
        let m = read_band(
            src,
            mask.as_mut(),
            (y0, y1),
            &mut band,
            &mut mbuf,
            &mut mbits,
        )?;
        let gpu_stats = match gpu.filter(|c| c.has_mesh_stats()) {
            Some(ctx) => {
                let img = Image::new(w, y1 - y0, std::mem::take(&mut band)).expect("band shape");
                let r = ctx.mesh_stats(&img, None, m, (bw, y1 - y0), (nx, 1));
                band = img.into_data();
                r?
            }
            None => None,
        };
        match gpu_stats {
            Some(st) => stats.extend(st),
            None => stats.extend(mesh_row_stats(&mut band, w, m, bw, nx)),
        }
        progress(Progress {
            rows_done: y1,
            rows: h,
            pass: 1,
            objects: 0,
        });
    }
    let background = Background::from_mesh_stats(w, h, (bw, bh), nx, ny, &stats, &e.background)?;
    let g = background.global_rms() as f32;
    let thresh_of = |k: f64| match p.thresh_type {
        ThreshType::Absolute => k as f32,
        ThreshType::Relative => k as f32 * g,
    };
    let (t_detect, t_analysis) = (thresh_of(p.detect_thresh), thresh_of(p.analysis_thresh));
    // Thresholds relative to the background RMS map: k·rms(x, y) per pixel, from the
    // RMS rows of each strip; objects carry the RMS of their pixels for measurement.
    // A per-pixel threshold image does the same with its own values (the threshold
    // in ADU, for detection and analysis).
    // The matched filter detects on S/N (threshold DETECT_THRESH) and measures with the
    // background RMS map, as the whole-image pipeline.
    let matched = p.filter_type == FilterType::Matched;
    let mode = if matched {
        PixelMode::Matched(
            (p.thresh_type == ThreshType::Relative).then_some(p.analysis_thresh as f32),
        )
    } else if has_thresh_image {
        PixelMode::ThresholdImage
    } else if p.thresh_type == ThreshType::Relative && p.rms_source == RmsSource::Map {
        PixelMode::RmsMap(p.detect_thresh as f32, p.analysis_thresh as f32)
    } else {
        PixelMode::Const
    };
    let per_pixel = mode != PixelMode::Const;
    let t_snr = p.detect_thresh as f32;
    let mut noise_rows: Vec<f32> = Vec::new();
    // The per-pixel values objects carry (RMS or threshold image) of the strip rows.
    let mut field_rows: Vec<f32> = Vec::new();
    let mut thr_rows: Vec<f32> = Vec::new();
    let satur = p.satur_level as f32;
    let halo = p.kernel.as_ref().map_or(0, |k| k.height() / 2);
    // Pass 2: strips.
    let mut open = Open::default();
    // Detected pixels held by the open components.
    let mut open_px = 0usize;
    // The previous row's runs and their components.
    let mut prev: Vec<(Run, usize)> = Vec::new();
    // Measured objects not emitted yet, smallest first pixel first. Without cleaning,
    // an object is emitted (numbered, handed to `emit`) as soon as no open component
    // and no later row can produce an object with a smaller first pixel, so objects
    // leave in the whole-image order; with cleaning, all wait for it.
    let mut pending: BinaryHeap<Reverse<Keyed>> = BinaryHeap::new();
    // With cleaning, measured objects go to a file and only what cleaning reads of
    // them stays here until the end.
    let mut waiting = Waiting {
        held: Chunked::default(),
        recs: Chunked::default(),
        spill: if p.clean {
            Some(crate::spill::ObjectSpill::new(temp_dir)?)
        } else {
            None
        },
    };
    let mut emitted = 0usize;
    let mut max_held = 0usize;
    let mut max_open = 0usize;
    let mut back = vec![0f32; w];
    let mut fbuf = vec![0f32; w];
    let reach: u32 = if p.connectivity == Connectivity::Eight {
        1
    } else {
        0
    };
    let finish = |c: Comp,
                  pending: &mut BinaryHeap<Reverse<Keyed>>,
                  waiting: &mut Waiting,
                  segments: &mut Option<&mut SegmentSpill>|
     -> Result<()> {
        if c.npix() >= p.minarea {
            let t_measure = if matched { t_snr } else { t_detect };
            let done = c.last_y;
            for (key, obj, runs) in measure_component(c, w, h, (t_measure, t_analysis, mode), g, p)
            {
                let id = match segments.as_mut() {
                    Some(s) => s.add(&runs)?,
                    None => u32::MAX,
                };
                match waiting.spill.as_mut() {
                    Some(spill) => {
                        let slot = spill.push(&obj)?;
                        waiting.held.push(Held {
                            key,
                            done,
                            id,
                            slot,
                        });
                        waiting.recs.push(CleanRecord::from(&obj));
                    }
                    None => pending.push(Reverse(Keyed { key, id, obj })),
                }
            }
        }
        Ok(())
    };
    // On the GPU, the device subtracts, filters and thresholds each strip and returns
    // its detected pixels; the rows are joined here as on the CPU.
    let mut gpu_strips =
        match gpu.filter(|_| !matched && crate::gpu::gpu_filters(p.kernel.as_ref())) {
            Some(ctx) => Some(ctx.strips(
                w,
                h,
                strip_rows,
                &background,
                p.kernel.as_ref(),
                t_detect,
                satur,
                mask.is_some(),
                per_pixel,
            )?),
            None => None,
        };
    let strip_rows = gpu_strips.as_ref().map_or(strip_rows, |g| g.strip_rows());
    let mut dets: Vec<RowDetections> = Vec::new();
    // The strips, read one ahead on a second thread (file reading and decoding overlap
    // the detection of the previous strip, on the CPU or the GPU).
    let strips: Vec<(usize, usize)> = {
        let (mut v, mut y) = (Vec::new(), 0);
        while y < h {
            let r = strip_rows.min(h - y);
            v.push((y, r));
            y += r;
        }
        v
    };
    let span = |y0: usize, rows: usize| (y0.saturating_sub(halo), (y0 + rows + halo).min(h));
    // Raw rows with the halo, their mask flags, the strip rows' threshold-image values,
    // the noise map's rows with the halo.
    type Strip = (
        Vec<f32>,
        Option<Vec<bool>>,
        Option<Vec<f32>>,
        Option<Vec<f32>>,
    );
    // A strip on its way to the row joining: what was read, and on the GPU backend the
    // detected pixels with the per-pixel values objects carry.
    struct Stage {
        strip: Strip,
        gpu: Option<(Vec<crate::gpu::DetectedPixel>, Vec<f32>)>,
    }
    let mut invalid_spread = (0u64, 0u64);
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx_read) = std::sync::mpsc::sync_channel::<Result<Stage>>(0);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<(Vec<f32>, Option<Vec<bool>>)>();
        let strips_r = &strips;
        let src = &mut *src;
        let mut mask = mask.take();
        let mut threshold = threshold.take();
        let mut noise = noise.take();
        scope.spawn(move || {
            let mut mbuf = Vec::new();
            for &(y0, rows) in strips_r {
                let (sy0, sy1) = span(y0, rows);
                let (mut raw, bits) = recycle_rx.try_recv().unwrap_or_default();
                let mut bits = bits.unwrap_or_default();
                let r = src
                    .read_rows(sy0, sy1 - sy0, &mut raw)
                    .and_then(|()| match mask.as_mut() {
                        Some(m) => m
                            .read(sy0, sy1 - sy0, &mut mbuf, &mut bits)
                            .map(|()| Some(bits)),
                        None => Ok(None),
                    })
                    .and_then(|b| match threshold.as_mut() {
                        Some(t) => {
                            let mut tv = Vec::new();
                            t.read_rows(y0, rows, &mut tv).map(|()| (b, Some(tv)))
                        }
                        None => Ok((b, None)),
                    })
                    .and_then(|(b, t)| match noise.as_mut() {
                        Some(n) => {
                            let mut nv = Vec::new();
                            n.read_rows(sy0, sy1 - sy0, &mut nv)
                                .map(|()| (b, t, Some(nv)))
                        }
                        None => Ok((b, t, None)),
                    })
                    .map(|(b, t, n)| (raw, b, t, n))
                    .and_then(|strip: Strip| {
                        // A row source must return whole rows (a custom one might not).
                        let (halo_len, len) = ((sy1 - sy0) * w, rows * w);
                        let ok = strip.0.len() == halo_len
                            && strip.1.as_ref().is_none_or(|b| b.len() == halo_len)
                            && strip.2.as_ref().is_none_or(|t| t.len() == len)
                            && strip.3.as_ref().is_none_or(|n| n.len() == halo_len);
                        if ok {
                            Ok(Stage { strip, gpu: None })
                        } else {
                            Err(Error::Mismatch(format!(
                                "rows {sy0}..{sy1} came back with the wrong number of pixels \
                                 from the image, mask, threshold or noise rows ({w} per row)"
                            )))
                        }
                    });
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break; // the detection stopped, or reading failed
                }
            }
        });
        // On the GPU backend a third thread hands each strip to the device: the device
        // detects strip N + 1 while this thread joins the rows of strip N, and the
        // reader reads strip N + 2.
        let rx = match gpu_strips.take() {
            None => rx_read,
            Some(mut g) => {
                let (gtx, grx) = std::sync::mpsc::sync_channel::<Result<Stage>>(0);
                let background = &background;
                scope.spawn(move || {
                    let mut thr: Vec<f32> = Vec::new();
                    for &(y0, rows) in strips_r {
                        let Ok(msg) = rx_read.recv() else {
                            break; // the reader stopped
                        };
                        let out = msg.and_then(|mut st| {
                            let mut field = Vec::new();
                            let tvals = st.strip.2.take();
                            strip_fields(mode, background, (y0, rows), tvals, &mut field, &mut thr);
                            let px = g.detect(
                                &st.strip.0,
                                st.strip.1.as_deref(),
                                (y0, rows),
                                per_pixel.then_some(strip_thresholds(mode, &field, &thr)),
                            )?;
                            st.gpu = Some((px, field));
                            Ok(st)
                        });
                        let failed = out.is_err();
                        if gtx.send(out).is_err() || failed {
                            break; // the detection stopped, or the device failed
                        }
                    }
                });
                grx
            }
        };
        let mut run = || -> Result<()> {
            for &(y0, rows) in &strips {
                let (sy0, sy1) = span(y0, rows);
                let Stage {
                    strip: (mut raw, bits, tvals, nvals),
                    gpu: detected,
                } = rx.recv().map_err(|_| {
                    Error::Backend("the strip reader or the device thread stopped".into())
                })??;
                if let Some(k) = &p.kernel {
                    let core = y0 - sy0..y0 - sy0 + rows;
                    let (a, b) =
                        crate::convolve::invalid_spread(&raw, w, core, k.width(), k.height());
                    invalid_spread.0 += a;
                    invalid_spread.1 += b;
                }
                let have_mask = bits.is_some();
                let mbits: &[bool] = bits.as_deref().unwrap_or(&[]);
                dets.resize_with(rows, RowDetections::default);
                dets.iter_mut().for_each(RowDetections::clear);
                if matched {
                    let (sy0, sy1) = span(y0, rows);
                    noise_rows.resize((sy1 - sy0) * w, 0.0);
                    for (k, row) in noise_rows.chunks_exact_mut(w).enumerate() {
                        background.rms_row(sy0 + k, row);
                    }
                    // The background RMS of the strip rows, for the errors.
                    field_rows.clear();
                    field_rows
                        .extend_from_slice(&noise_rows[(y0 - sy0) * w..(y0 - sy0 + rows) * w]);
                    if let Some(n) = nvals {
                        noise_rows = n;
                    }
                }
                if detected.is_none() {
                    let rows_at = (y0, rows);
                    strip_fields(
                        mode,
                        &background,
                        rows_at,
                        tvals,
                        &mut field_rows,
                        &mut thr_rows,
                    );
                }
                let thresholds = strip_thresholds(mode, &field_rows, &thr_rows);
                match detected {
                    Some((px, field)) => {
                        field_rows = field;
                        for q in px {
                            let (y, x) = (q.index / w, q.index % w);
                            let d = &mut dets[y - y0];
                            match d.runs.last_mut() {
                                Some(r) if r.1 == x => r.1 += 1,
                                _ => d.runs.push((x, x + 1)),
                            }
                            d.f.push(q.filtered);
                            d.r.push(q.value);
                            if per_pixel {
                                d.s.push(field_rows[(y - y0) * w + x]);
                            }
                            if q.saturated {
                                d.sat.push(x);
                            }
                        }
                    }
                    None => {
                        let mut sat_rows: Vec<Vec<usize>> = Vec::with_capacity(sy1 - sy0);
                        for (k, row) in raw.chunks_exact_mut(w).enumerate() {
                            let mrow = have_mask.then(|| &mbits[k * w..(k + 1) * w]);
                            sat_rows.push(subtract_row(
                                &background,
                                sy0 + k,
                                row,
                                mrow,
                                satur,
                                &mut back,
                            ));
                        }
                        let strip = Image::new(w, sy1 - sy0, std::mem::take(&mut raw))
                            .expect("strip shape");
                        // The matched filter's S/N over the strip (its halo rows give the
                        // strip rows their full kernel footprint).
                        let snr = if matched {
                            let noise_img =
                                Image::new(w, sy1 - sy0, std::mem::take(&mut noise_rows))
                                    .expect("noise strip shape");
                            let snr = crate::pipeline::matched_filter(
                                &strip,
                                &noise_img,
                                have_mask.then_some(mbits),
                                p.kernel.as_ref(),
                            );
                            noise_rows = noise_img.into_data();
                            Some(snr)
                        } else {
                            None
                        };
                        let t_row_const = if matched { t_snr } else { t_detect };
                        for y in y0..y0 + rows {
                            let ly = y - sy0;
                            match (&snr, &p.kernel) {
                                (Some(snr), _) => fbuf.copy_from_slice(snr.row(ly)),
                                (None, Some(k)) => convolve_row(&strip, k, ly, &mut fbuf),
                                (None, None) => fbuf.copy_from_slice(strip.row(ly)),
                            }
                            let subrow = strip.row(ly);
                            let mrow = have_mask.then(|| &mbits[ly * w..(ly + 1) * w]);
                            // Detected: valid and filtered value above the threshold (a NaN
                            // filtered value, next to an invalid pixel, is not).
                            let thr_per_pixel = per_pixel && !matched;
                            let trow = &thresholds[if thr_per_pixel { (y - y0) * w } else { 0 }..];
                            let on = |x: usize| {
                                !subrow[x].is_nan()
                                    && !mrow.is_some_and(|m| m[x])
                                    && fbuf[x] > if thr_per_pixel { trow[x] } else { t_row_const }
                            };
                            let d = &mut dets[y - y0];
                            let mut x = 0usize;
                            while x < w {
                                if !on(x) {
                                    x += 1;
                                    continue;
                                }
                                let x0 = x;
                                while x < w && on(x) {
                                    x += 1;
                                }
                                d.runs.push((x0, x));
                                d.f.extend_from_slice(&fbuf[x0..x]);
                                d.r.extend_from_slice(&subrow[x0..x]);
                                if per_pixel {
                                    let base = (y - y0) * w;
                                    d.s.extend_from_slice(&field_rows[base + x0..base + x]);
                                }
                                d.sat
                                    .extend(sat_rows[ly].iter().filter(|&&sx| sx >= x0 && sx < x));
                            }
                        }
                        raw = strip.into_data();
                    }
                }
                for y in y0..y0 + rows {
                    let d = &dets[y - y0];
                    // This row's runs, joined to the previous row's components.
                    let mut current: Vec<(Run, usize)> = Vec::new();
                    let mut pi = 0usize;
                    let mut off = 0usize;
                    for &(x0, x) in &d.runs {
                        let run = Run {
                            y: y as u32,
                            x0: x0 as u32,
                            x1: x as u32,
                        };
                        // Components of the previous row that this run touches.
                        while pi < prev.len() && prev[pi].0.x1 + reach <= run.x0 {
                            pi += 1;
                        }
                        let mut target: Option<usize> = None;
                        let mut k = pi;
                        while k < prev.len() && prev[k].0.x0 < run.x1 + reach {
                            if let Some(c) = open.resolve(prev[k].1) {
                                target = Some(match target {
                                    Some(t) if t != c => open.merge(t, c),
                                    _ => c,
                                });
                            }
                            k += 1;
                        }
                        let id = match target {
                            Some(t) => t,
                            None => open.create(),
                        };
                        let comp = open.comps[id].as_mut().expect("open component");
                        let len = x - x0;
                        if comp.runs.is_empty() {
                            comp.first = (run.y, run.x0);
                        }
                        comp.starts.push(comp.f.len());
                        comp.runs.push(run);
                        comp.f.extend_from_slice(&d.f[off..off + len]);
                        open_px += len;
                        comp.r.extend_from_slice(&d.r[off..off + len]);
                        if per_pixel {
                            comp.s.extend_from_slice(&d.s[off..off + len]);
                        }
                        off += len;
                        comp.sat.extend(
                            d.sat
                                .iter()
                                .filter(|&&sx| sx >= x0 && sx < x)
                                .map(|&sx| y * w + sx),
                        );
                        comp.last_y = y as u32;
                        current.push((run, id));
                    }
                    // Components of the previous row that this row did not continue are complete.
                    for &(_, c0) in &prev {
                        if let Some(c) = open.resolve(c0) {
                            if open.comps[c]
                                .as_ref()
                                .is_some_and(|q| (q.last_y as usize) < y)
                            {
                                let done = open.complete(c);
                                open_px -= done.npix();
                                finish(done, &mut pending, &mut waiting, &mut segments)?;
                            }
                        }
                    }
                    // Merges during this row may have moved components.
                    for item in current.iter_mut() {
                        item.1 = open.resolve(item.1).expect("continued component is open");
                    }
                    open.end_row();
                    if let Some(cap) = max_open_pixels.filter(|&cap| open_px > cap) {
                        let big = open
                            .comps
                            .iter()
                            .flatten()
                            .max_by_key(|c| c.npix())
                            .expect("pixels are held by open objects");
                        return Err(Error::InvalidParam {
                            name: "--memory-limit",
                            value: format!("{cap} detected pixels in objects not complete yet"),
                            reason: format!(
                                "at row {y} they hold {open_px}; the largest starts at row {} and \
                                 has {} pixels so far. An object this large often means a \
                                 threshold near the noise or a bad background: raise the \
                                 detection threshold, or the memory limit",
                                big.first.0,
                                big.npix()
                            ),
                        });
                    }
                    prev = current;
                    max_open = max_open.max(open.live());
                    max_held = max_held.max(pending.len() + waiting.held.len());
                    if !p.clean {
                        // Objects before every open component's first pixel and the next row.
                        let bound = open.first_key().min((y as u32 + 1, 0));
                        while pending.peek().is_some_and(|k| k.0.key < bound) {
                            let Reverse(Keyed { mut obj, id, .. }) = pending.pop().expect("peeked");
                            emitted += 1;
                            obj.number = emitted as u32;
                            if let Some(s) = segments.as_mut() {
                                s.set_number(id, obj.number);
                            }
                            emit(obj)?;
                        }
                    }
                }

                let _ = recycle_tx.send((raw, bits));
                progress(Progress {
                    rows_done: y0 + rows,
                    rows: h,
                    pass: 2,
                    objects: emitted + pending.len() + waiting.held.len(),
                });
            }
            Ok(())
        };
        let result = run();
        drop(rx); // unblocks the reader if the detection stopped early
        result
    })?;
    for c in open.comps.into_iter().flatten() {
        finish(c, &mut pending, &mut waiting, &mut segments)?;
    }
    max_held = max_held.max(pending.len() + waiting.held.len());
    if let Some(mut spill) = waiting.spill {
        // Cleaning, as the pipeline: in catalog order (by first pixel), the objects
        // read back from the file, each survivor with its victims merged in index order.
        let mut held = waiting.held.into_vec();
        let mut recs = waiting.recs.into_vec();
        // Both lists in catalog order (by first pixel), reordered in place.
        let mut order: Vec<u32> = (0..held.len() as u32).collect();
        order.sort_unstable_by_key(|&i| held[i as usize].key);
        permute_in_place(&mut order, &mut held, &mut recs);
        let done: Vec<u32> = held.iter().map(|k| k.done).collect();
        let targets = crate::clean::clean_targets_records(&recs, &done, p.clean_param);
        drop((recs, done));
        // Victims by their target, in index order (a few percent of the objects).
        let victims = crate::pipeline::victims_of(&targets);
        let mut number = vec![0u32; targets.len()];
        let mut next = 0u32;
        for (i, &t) in targets.iter().enumerate() {
            if t == i {
                next += 1;
                number[i] = next;
            }
        }
        if let Some(s) = segments.as_mut() {
            // A cleaned object's pixels take the number of the object it joined.
            for (k, &t) in held.iter().zip(&targets) {
                s.set_number(k.id, number[t]);
            }
        }
        let mut vi = 0usize;
        for (t, k) in held.iter().enumerate() {
            if targets[t] != t {
                continue;
            }
            let mut obj = spill.get(k.slot)?;
            while vi < victims.len() && victims[vi].0 == t {
                let victim = spill.get(held[victims[vi].1].slot)?;
                crate::clean::merge_into(&mut obj, &victim, p.mag_zeropoint);
                vi += 1;
            }
            obj.number = number[t];
            emitted += 1;
            emit(obj)?;
        }
    } else {
        // The rest in whole-image order (by first pixel), sorted in the heap's own
        // buffer.
        let mut sorted = pending.into_sorted_vec(); // Reverse: largest key first
        sorted.reverse();
        for Reverse(k) in sorted {
            let mut obj = k.obj;
            emitted += 1;
            obj.number = emitted as u32;
            if let Some(s) = segments.as_mut() {
                s.set_number(k.id, obj.number);
            }
            emit(obj)?;
        }
    }
    let per_object = if p.clean {
        HELD_BYTES
    } else {
        std::mem::size_of::<Reverse<Keyed>>()
    };
    Ok(StreamSummary {
        background,
        objects: emitted,
        max_open,
        max_held,
        max_held_bytes: max_held * per_object,
        invalid_spread,
    })
}

/// For strip rows `y0..y0 + rows` with per-pixel thresholds: the values objects carry
/// into `field` (the RMS rows when thresholds are relative to the RMS map, the
/// threshold image's rows `tvals`) and, relative to the RMS map, the thresholds k·rms
/// into `thr`. Other modes leave both as they are.
fn strip_fields(
    mode: PixelMode,
    background: &Background,
    (y0, rows): (usize, usize),
    tvals: Option<Vec<f32>>,
    field: &mut Vec<f32>,
    thr: &mut Vec<f32>,
) {
    let w = background.shape().0;
    match (mode, tvals) {
        (PixelMode::RmsMap(kd, _), _) => {
            field.resize(rows * w, 0.0);
            for (k, row) in field.chunks_exact_mut(w).enumerate() {
                background.rms_row(y0 + k, row);
            }
            thr.clear();
            thr.extend(field.iter().map(|&v| kd * v));
        }
        (PixelMode::ThresholdImage, Some(t)) => *field = t,
        _ => {}
    }
}

/// The strip rows' detection thresholds when they vary per pixel: the threshold
/// image itself, or k·rms (see [`strip_fields`]).
fn strip_thresholds<'a>(mode: PixelMode, field: &'a [f32], thr: &'a [f32]) -> &'a [f32] {
    if mode == PixelMode::ThresholdImage {
        field
    } else {
        thr
    }
}

/// Objects waiting for cleaning: what cleaning reads of each, the objects on disk.
struct Waiting {
    held: Chunked<Held>,
    /// What cleaning reads of each object, in the order of `held`.
    recs: Chunked<CleanRecord>,
    spill: Option<crate::spill::ObjectSpill>,
}

/// A list grown in chunks of fixed size: no reallocation copies the whole list and at
/// most one chunk is unused (a `Vec` can hold twice its length while it grows).
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    const CHUNK: usize = 1 << 16;

    fn push(&mut self, v: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < Self::CHUNK => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(Self::CHUNK);
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    /// One `Vec` of exactly the items (the chunks are freed as they are moved).
    fn into_vec(self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for c in self.chunks {
            out.extend(c);
        }
        out
    }
}

/// An object waiting for cleaning (the object itself is in the spill, at `slot`).
struct Held {
    key: (u32, u32),
    /// The last row of the object's detected component (the order cleaning takes
    /// objects in).
    done: u32,
    id: u32,
    slot: u32,
}

/// Reorders `a` and `b` so that item k becomes the one that was at `order[k]`, in
/// place (following the permutation's cycles; `order` is used up).
fn permute_in_place<A, B>(order: &mut [u32], a: &mut [A], b: &mut [B]) {
    for i in 0..order.len() {
        if order[i] as usize == i {
            continue;
        }
        let mut j = i;
        loop {
            let k = order[j] as usize;
            order[j] = j as u32;
            if k == i {
                break;
            }
            a.swap(j, k);
            b.swap(j, k);
            j = k;
        }
    }
}

/// Memory per object waiting for cleaning: its record and what cleaning reads, and
/// (an estimate) the arrays the cleaning itself uses at the end.
const HELD_BYTES: usize = std::mem::size_of::<Held>() + std::mem::size_of::<CleanRecord>() + 100;

/// A measured object keyed by its first pixel (row, column), ordered by the key.
struct Keyed {
    key: (u32, u32),
    /// The object's id in the segment spill (when there is one).
    id: u32,
    obj: Object,
}

impl PartialEq for Keyed {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Keyed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// The detected pixels of one row: runs (x0..x1); the filtered and unfiltered values
/// of their pixels, run after run; the columns of the saturated ones.
#[derive(Default)]
struct RowDetections {
    runs: Vec<(usize, usize)>,
    f: Vec<f32>,
    r: Vec<f32>,
    /// The per-pixel field at each detected pixel (see `Comp::s`).
    s: Vec<f32>,
    sat: Vec<usize>,
}

impl RowDetections {
    fn clear(&mut self) {
        self.runs.clear();
        self.f.clear();
        self.r.clear();
        self.s.clear();
        self.sat.clear();
    }
}

/// The open components: slots (None once completed or merged away), forwarding of
/// merged-away slots to the component that absorbed them, and reusable slots.
#[derive(Default)]
struct Open {
    comps: Vec<Option<Comp>>,
    fwd: Vec<usize>,
    free: Vec<usize>,
    /// Slots merged away during the current row (forwarding still needed until the
    /// row's runs are resolved).
    merged_away: Vec<usize>,
}

impl Open {
    /// The live component that slot `c` now belongs to, if any.
    fn resolve(&self, mut c: usize) -> Option<usize> {
        while self.comps[c].is_none() {
            c = self.fwd[c];
            if c == usize::MAX {
                return None;
            }
        }
        Some(c)
    }
    /// The smallest first pixel of the live components ((MAX, MAX) if none).
    fn first_key(&self) -> (u32, u32) {
        self.comps
            .iter()
            .flatten()
            .map(|c| c.first)
            .min()
            .unwrap_or((u32::MAX, u32::MAX))
    }

    fn create(&mut self) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.comps[slot] = Some(Comp::default());
                self.fwd[slot] = usize::MAX;
                slot
            }
            None => {
                self.comps.push(Some(Comp::default()));
                self.fwd.push(usize::MAX);
                self.comps.len() - 1
            }
        }
    }
    /// Merges two live components (the smaller into the larger); returns the survivor.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let size = |c: usize| self.comps[c].as_ref().map_or(0, |q| q.npix());
        let (keep, gone) = if size(a) >= size(b) { (a, b) } else { (b, a) };
        let g = self.comps[gone].take().expect("open component");
        self.comps[keep].as_mut().expect("open component").absorb(g);
        self.fwd[gone] = keep;
        self.merged_away.push(gone);
        keep
    }
    /// At the end of a row, once nothing refers to merged-away slots any more, makes
    /// them reusable.
    fn end_row(&mut self) {
        for s in self.merged_away.drain(..) {
            self.fwd[s] = usize::MAX;
            self.free.push(s);
        }
    }
    /// Takes a completed component out; its slot can be reused.
    fn complete(&mut self, c: usize) -> Comp {
        let comp = self.comps[c].take().expect("open component");
        self.fwd[c] = usize::MAX;
        self.free.push(c);
        comp
    }
    fn live(&self) -> usize {
        self.comps.iter().filter(|c| c.is_some()).count()
    }
}

/// Deblends and measures a completed component, exactly as the whole-image pipeline
/// does; returns each object with its sort key (first pixel).
#[allow(clippy::too_many_arguments)]
/// How the thresholds vary over the image in a streamed run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PixelMode {
    /// Constant detection and analysis thresholds.
    Const,
    /// k_detect·rms and k_analysis·rms, with the background RMS map.
    RmsMap(f32, f32),
    /// A per-pixel threshold image (ADU above the background), for both.
    ThresholdImage,
    /// The matched filter: detection on S/N (constant threshold), errors from the
    /// background RMS map, the analysis threshold k·rms (relative) or constant.
    Matched(Option<f32>),
}

/// `thresholds`: the detection and analysis thresholds and how they vary: with the
/// RMS map or a threshold image the component carries the per-pixel values.
fn measure_component(
    c: Comp,
    w: usize,
    h: usize,
    (t_detect, t_analysis, mode): (f32, f32, PixelMode),
    g: f32,
    p: &crate::params::ExtractParams,
) -> Vec<((u32, u32), Object, Vec<Run>)> {
    // Runs (and their values) in raster order.
    let mut order: Vec<usize> = (0..c.runs.len()).collect();
    order.sort_by_key(|&i| (c.runs[i].y, c.runs[i].x0));
    let mut runs = Vec::with_capacity(c.runs.len());
    let mut f = Vec::with_capacity(c.f.len());
    let mut r = Vec::with_capacity(c.r.len());
    let mut rms: HashMap<usize, f32> = HashMap::new();
    for &i in &order {
        let run = c.runs[i];
        let s = c.starts[i];
        runs.push(run);
        f.extend_from_slice(&c.f[s..s + run.len()]);
        r.extend_from_slice(&c.r[s..s + run.len()]);
        if mode != PixelMode::Const {
            for (k, x) in (run.x0..run.x1).enumerate() {
                rms.insert(run.y as usize * w + x as usize, c.s[s + k]);
            }
        }
    }
    let mut sat = c.sat;
    sat.sort_unstable();
    let mut px = Vec::with_capacity(f.len());
    for run in &runs {
        for x in run.x0..run.x1 {
            let k = px.len();
            px.push(Pixel {
                x,
                y: run.y,
                c: f[k],
                v: r[k],
            });
        }
    }
    let first = runs[0].y as u64 * w as u64 + runs[0].x0 as u64;
    let sparse = |k: f32| PixelField::Sparse { k, values: &rms };
    let (noise, thresh, analysis_thresh) = match mode {
        PixelMode::ThresholdImage => (PixelField::Const(g), sparse(1.0), sparse(1.0)),
        PixelMode::Matched(ka) => (
            sparse(1.0),
            PixelField::Const(t_detect),
            match ka {
                Some(k) => sparse(k),
                None => PixelField::Const(t_analysis),
            },
        ),
        PixelMode::RmsMap(kd, ka) => (sparse(1.0), sparse(kd), sparse(ka)),
        PixelMode::Const => (
            PixelField::Const(g),
            PixelField::Const(t_detect),
            PixelField::Const(t_analysis),
        ),
    };
    // The object's mean threshold (pixels in raster order), as the pipeline's deblending.
    let t0 = match mode {
        PixelMode::Matched(_) => t_detect as f64,
        PixelMode::RmsMap(..) | PixelMode::ThresholdImage => {
            let sum: f64 = px
                .iter()
                .map(|q| thresh.at(q.y as usize * w + q.x as usize) as f64)
                .sum();
            sum / px.len() as f64
        }
        PixelMode::Const => t_detect as f64,
    };
    let inp = MeasureInput {
        saturated: &sat,
        sub: None,
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
    split_object(&px, &runs, first, t0, p)
        .into_iter()
        .map(|(part_runs, idx, centre, merged)| {
            let pf: Vec<f32> = idx.iter().map(|&i| px[i].c).collect();
            let pr: Vec<f32> = idx.iter().map(|&i| px[i].v).collect();
            let mut o = measure_object(&part_runs, &pf, &pr, centre, &inp);
            if merged {
                o.flags |= crate::measure::flags::MERGED;
            }
            ((part_runs[0].y, part_runs[0].x0), o, part_runs)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Chunked;

    #[test]
    fn chunked_lists_keep_their_order_across_chunks() {
        let mut c = Chunked::default();
        for k in 0..200_000u32 {
            c.push(k);
        }
        assert_eq!(c.len(), 200_000);
        assert_eq!(c.chunks.len(), 4);
        assert_eq!(c.into_vec(), (0..200_000).collect::<Vec<u32>>());
        assert!(Chunked::<u8>::default().into_vec().is_empty());
    }

    #[test]
    fn permutations_apply_in_place() {
        let mut s = 5u64;
        for n in [0usize, 1, 2, 7, 100, 1000] {
            let mut order: Vec<u32> = (0..n as u32).collect();
            // A shuffle.
            for i in (1..n).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let want: Vec<u32> = order.iter().map(|&k| k * 10).collect();
            let mut a: Vec<u32> = (0..n as u32).map(|k| k * 10).collect();
            let mut b: Vec<u32> = a.clone();
            super::permute_in_place(&mut order, &mut a, &mut b);
            assert_eq!(a, want);
            assert_eq!(b, want);
        }
    }
}
