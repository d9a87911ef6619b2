//! The extraction pipeline, for every image size and both backends
//! (`scan`; a whole-image run is the plan with one strip).
//!
//! Two passes over a [`RowSource`]. The background pass takes the mesh rows (all of
//! them at once when the image is in memory, else one at a time) and keeps only the
//! mesh grid. The detection pass reads strips of rows (plus the kernel's halo) on a
//! reader thread; each strip is subtracted, filtered and thresholded (rows in
//! parallel on the CPU, or on the device: [`crate::gpu::GpuStrips`]); its rows are
//! joined to the open components: a component that a row does not continue is
//! complete. Completed components are deblended and measured in parallel, from the
//! filtered and unfiltered values (and per-pixel thresholds or RMS) they carried
//! along. Objects are numbered by first pixel in raster order; without cleaning they
//! leave as soon as nothing before them can still appear, with cleaning at the end.
//! Only open components, the current strips and the measured objects are in memory.
//!
//! The sinks: an `emit` callback for the catalog (a writer, or a list), and the
//! objects' runs for the segmentation, kept in a file for check images written after
//! a streamed run ([`check_pass`], which reads the image again) or in memory for a
//! whole-image [`crate::pipeline::Extraction`]. Every result is the same for every
//! strip height, to the bit (tested from 1 row up).

use crate::background::{cpu_mesh_stats, mesh_row_stats, Background, MeshStat};
use crate::catalog::Catalog;
use crate::clean::CleanRecord;
use crate::convolve::convolve_row;
use crate::deblend::Pixel;
use crate::detect::cpu::CpuStrips;
use crate::detect::{PixelMode, RowDetections, StripDetector, StripRows};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::label::{Comp, Labeller, Run};
use crate::measure::{measure_object, MeasureInput, Object, PixelField};
use crate::params::{FilterType, RmsSource, ThreshType};
use crate::pipeline::{split_object, Extractor};
use crate::plan::Plan;
pub use crate::spill::SegmentSpill;
use crate::spill::{ObjectSpill, ObjectStore, SegmentRuns, Segments};
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Rows of an image, read on demand.
pub trait RowSource {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Reads rows `y0..y0 + n` (row-major) into `out`, replacing its content.
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()>;
    /// The whole image, when the source holds it in memory: the pipeline then reads
    /// it where it is (the background pass takes every mesh row at once).
    fn in_memory(&self) -> Option<&Image> {
        None
    }
    /// As [`Self::read_rows`], but a source that owns its image may hand over its own
    /// buffer when asked for all of it (no copy); it cannot be read again after that.
    fn take_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        self.read_rows(y0, n, out)
    }
    /// The file the rows come from, for messages (none for an image in memory).
    fn name(&self) -> Option<String> {
        None
    }
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
    fn in_memory(&self) -> Option<&Image> {
        Some(self.0)
    }
}

/// An image owned by the run: read where it is, and handed over whole to a run of one
/// strip, whose subtraction then reuses its memory.
pub(crate) struct OwnedRows {
    image: Image,
    shape: (usize, usize),
    taken: bool,
}

impl OwnedRows {
    pub(crate) fn new(image: Image) -> Self {
        OwnedRows {
            shape: (image.width(), image.height()),
            image,
            taken: false,
        }
    }
    /// The image, unless a run took its pixels.
    pub(crate) fn into_image(self) -> Option<Image> {
        (!self.taken).then_some(self.image)
    }
}

impl RowSource for OwnedRows {
    fn width(&self) -> usize {
        self.shape.0
    }
    fn height(&self) -> usize {
        self.shape.1
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        if self.taken {
            return Err(Error::System(
                "the image was handed over to the run and cannot be read again".into(),
            ));
        }
        ImageRows(&self.image).read_rows(y0, n, out)
    }
    fn in_memory(&self) -> Option<&Image> {
        (!self.taken).then_some(&self.image)
    }
    fn take_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        if self.taken || (y0, n) != (0, self.shape.1) {
            return self.read_rows(y0, n, out);
        }
        let image = std::mem::replace(&mut self.image, Image::filled(self.shape.0, 0, 0.0));
        *out = image.into_data();
        self.taken = true;
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

/// The mask of a run: rows read beside the image, or a mask in memory.
pub(crate) enum MaskInput<'a> {
    Rows(MaskRows<'a>),
    Memory(&'a crate::image::Mask),
}

impl MaskInput<'_> {
    fn shape(&self) -> (usize, usize) {
        match self {
            MaskInput::Rows(m) => (m.rows.width(), m.rows.height()),
            MaskInput::Memory(m) => (m.width(), m.height()),
        }
    }
    /// Rows `y0..y0 + n` as booleans (bad = true).
    fn read(&mut self, y0: usize, n: usize, buf: &mut Vec<f32>, out: &mut Vec<bool>) -> Result<()> {
        match self {
            MaskInput::Rows(m) => m.read(y0, n, buf, out),
            MaskInput::Memory(m) => {
                let w = m.width();
                out.clear();
                out.extend_from_slice(&m.data()[y0 * w..(y0 + n) * w]);
                Ok(())
            }
        }
    }
    /// The whole mask, when it is in memory.
    fn in_memory(&self) -> Option<&[bool]> {
        match self {
            MaskInput::Rows(_) => None,
            MaskInput::Memory(m) => Some(m.data()),
        }
    }
}

/// Reads rows `y0..y1` of the image into `buf` (checking that whole rows came back)
/// and, with a mask, its rows as flags into `mbits`, which it returns.
fn read_band<'b>(
    src: &mut (dyn RowSource + Send),
    mask: Option<&mut MaskInput>,
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
            if mbits.len() != buf.len() {
                return Err(Error::Mismatch(format!(
                    "rows {y0}..{y1} came back with the wrong number of pixels from the mask \
                     ({w} per row)"
                )));
            }
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
    /// 1 = background pass, 2 = detection pass, 4 = photometry pass (3 = check
    /// images, in the CLI).
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
        RowInputs {
            mask,
            ..Default::default()
        },
        Sinks::default(),
        e,
        &Plan::rows(strip_rows),
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

/// Images read row by row beside the image, all optional: the twin of
/// [`crate::Inputs`] for row sources.
#[derive(Default)]
pub struct RowInputs<'a> {
    /// Bad pixels (MASK_IMAGE).
    pub mask: Option<MaskRows<'a>>,
    /// A detection threshold per pixel, in ADU above the background (THRESH_IMAGE).
    pub threshold: Option<&'a mut (dyn RowSource + Send)>,
    /// The noise (RMS) map for the matched filter (default: the background RMS map).
    pub noise: Option<&'a mut (dyn RowSource + Send)>,
}

/// Where a run's outputs go besides the objects handed to `emit`.
#[derive(Default)]
pub struct Sinks<'a> {
    /// The objects' pixels, with their catalog numbers, for the check images written
    /// after the run ([`check_pass`]).
    pub segments: Option<&'a mut SegmentSpill>,
    /// Where temporary files go (the objects waiting for cleaning, about 330 bytes
    /// each); the system's temporary folder if none (which may be in memory, tmpfs,
    /// and then counts against the memory the run saves).
    pub temp_dir: Option<&'a std::path::Path>,
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
    /// Wall time of each stage (stage name, seconds; GPU strips as a count).
    pub timings: Vec<(&'static str, f64)>,
    /// The background-subtracted image, kept by a run of one strip on the CPU that
    /// was asked for it.
    pub(crate) subtracted: Option<Vec<f32>>,
    /// Dual-image mode: the measurement image's background.
    pub measurement_background: Option<Background>,
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
    mask: Option<MaskRows>,
    background: &Background,
    e: &Extractor,
    want: CheckWant,
    mut segments: Option<&mut SegmentSpill>,
    block_rows: usize,
    f: &mut dyn FnMut(&CheckBlock) -> Result<()>,
) -> Result<()> {
    let mut mask = mask.map(MaskInput::Rows);
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
            return Err(Error::Mismatch(
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
            crate::detect::cpu::subtract_rows(background, sy0, &mut raw, m, f32::INFINITY);
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
    inputs: RowInputs,
    sinks: Sinks,
    e: &Extractor,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
    emit: &mut dyn FnMut(Object) -> Result<()>,
) -> Result<StreamSummary> {
    let RowInputs {
        mask,
        threshold,
        noise,
    } = inputs;
    scan(
        src,
        Sides {
            mask: mask.map(MaskInput::Rows),
            threshold,
            noise,
            flags: Vec::new(),
            measurement: None,
        },
        sinks,
        InMemory::default(),
        e,
        plan,
        progress,
        emit,
    )
}

/// The images beside the image of a run: [`RowInputs`], with a mask in memory or
/// read row by row.
#[derive(Default)]
pub(crate) struct Sides<'a> {
    pub(crate) mask: Option<MaskInput<'a>>,
    pub(crate) threshold: Option<&'a mut (dyn RowSource + Send)>,
    pub(crate) noise: Option<&'a mut (dyn RowSource + Send)>,
    /// The flag maps (FLAG_IMAGE), one per `ExtractParams::flag_types`.
    pub(crate) flags: Vec<FlagSource<'a>>,
    /// Dual-image mode: the measurement image (its fluxes, FLUX_MAX, ISOAREA and
    /// photometry; the detection, positions and shapes stay the image's).
    pub(crate) measurement: Option<&'a mut (dyn RowSource + Send)>,
}

/// A flag map read row by row beside the image, and the mask of its integer width.
pub(crate) struct FlagSource<'a> {
    pub(crate) rows: &'a mut (dyn RowSource + Send),
    pub(crate) mask: u32,
}

/// What a run keeps in memory for a caller that wants everything there (the
/// library's [`Extractor::extract`]).
#[derive(Default)]
pub(crate) struct InMemory<'a> {
    /// The objects' runs, for the segmentation.
    pub(crate) runs: Option<&'a mut SegmentRuns>,
    /// Objects waiting for cleaning stay in memory (else in a temporary file).
    pub(crate) objects_in_memory: bool,
    /// A run of one strip on the CPU hands back its background-subtracted image
    /// ([`StreamSummary::subtracted`]).
    pub(crate) keep_subtracted: bool,
    /// Every detected pixel (filtered value above the detection threshold), one bit
    /// each, row-major: the neighbours of photometry ([`crate::photometry::Field`]).
    pub(crate) detected: Option<&'a mut Vec<u64>>,
}

/// Detected pixels that completed objects may hold before they are deblended and
/// measured together, in parallel (about 12 bytes each, with their lists: a batch
/// stays under 1 MiB, which keeps a streamed run's peak memory where it was when
/// objects were measured one by one, and holds hundreds of objects to share out).
const BATCH_PIXELS: usize = 1 << 16;

/// The extraction, for every image size and backend: the background from the mesh
/// rows (all at once when the image is in memory), then the strips: subtraction,
/// filtering, thresholding (rows in parallel on the CPU, or on the device), rows
/// joined into components across strip seams, completed components deblended and
/// measured in parallel, objects numbered by first pixel, cleaning, and the sinks.
/// A whole-image run is the plan with one strip.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan(
    src: &mut (dyn RowSource + Send),
    sides: Sides,
    sinks: Sinks,
    memory: InMemory,
    e: &Extractor,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
    emit_final: &mut dyn FnMut(Object) -> Result<()>,
) -> Result<StreamSummary> {
    e.background.validate()?;
    e.extract.validate()?;
    // World coordinates, once an object is final (a run that keeps its detected
    // pixels measures photometry after the scan, and the world columns after it).
    let world = e
        .extract
        .world
        .clone()
        .filter(|_| memory.detected.is_none());
    let mut with_world = |mut o: Object| {
        if let Some(w) = &world {
            o.world = Some(Box::new(w.measure(&o)));
        }
        emit_final(o)
    };
    let emit_final: &mut dyn FnMut(Object) -> Result<()> = &mut with_world;
    // Photometry in a run that keeps no whole image: every object waits for a second
    // pass over the rows (`photometry_pass`), which measures it in a window of rows.
    let streamed_phot = e.extract.phot.want.any() && memory.detected.is_none();
    // The objects waiting for the photometry pass: on disk unless the run keeps its
    // objects in memory, with the rows each one reads here.
    let (h, phot) = (src.height(), &e.extract.phot);
    let mut collected = Collected {
        store: match memory.objects_in_memory || !streamed_phot {
            true => ObjectStore::Memory(Vec::new()),
            false => ObjectStore::File(ObjectSpill::new(sinks.temp_dir)?),
        },
        reach: Vec::new(),
    };
    let mut collect = |o: Object| {
        let (a, b) = crate::photometry::rows_needed(&o, phot, h);
        collected.reach.push((a as u32, b as u32));
        collected.store.push(o)?;
        Ok(())
    };
    let emit: &mut dyn FnMut(Object) -> Result<()> = if streamed_phot {
        &mut collect
    } else {
        &mut *emit_final
    };
    if let Some(m) = &sides.mask {
        let (mw, mh) = m.shape();
        if (mw, mh) != (src.width(), src.height()) {
            return Err(Error::Mismatch(format!(
                "the mask is {mw}x{mh} but the image is {}x{}: they must have the same shape",
                src.width(),
                src.height()
            )));
        }
    }
    if sides.flags.len() != e.extract.flag_types.len() {
        return Err(Error::Mismatch(format!(
            "{} flag image(s) for {} FLAG_TYPE(s): give one type per flag image",
            sides.flags.len(),
            e.extract.flag_types.len()
        )));
    }
    for f in &sides.flags {
        let (fw, fh) = (f.rows.width(), f.rows.height());
        if (fw, fh) != (src.width(), src.height()) {
            return Err(Error::Mismatch(format!(
                "the flag image is {fw}x{fh} but the image is {}x{}: they must have the same shape",
                src.width(),
                src.height()
            )));
        }
    }
    let Sides {
        mut mask,
        mut threshold,
        mut noise,
        mut flags,
        mut measurement,
    } = sides;
    let flag_masks: Vec<u32> = flags.iter().map(|f| f.mask).collect();
    if let Some(m) = &measurement {
        if (m.width(), m.height()) != (src.width(), src.height()) {
            return Err(Error::Mismatch(format!(
                "the measurement image is {}x{} but the detection image is {}x{}: dual-image \
                 mode needs two images of the same shape",
                m.width(),
                m.height(),
                src.width(),
                src.height()
            )));
        }
    }
    let Sinks { segments, temp_dir } = sinks;
    let (strip_rows, max_open_pixels) = (plan.strip_rows, plan.max_open_pixels);
    let mut own_runs = SegmentRuns::default();
    let mut segments = match (segments, memory.runs) {
        (Some(s), _) if streamed_phot => Some(Segments::Both(s, &mut own_runs)),
        (Some(s), _) => Some(Segments::File(s)),
        (None, Some(r)) => Some(Segments::Memory(r)),
        (None, None) if streamed_phot => Some(Segments::Memory(&mut own_runs)),
        (None, None) => None,
    };
    let mut timings: Vec<(&'static str, f64)> = Vec::new();
    let mut clock = Instant::now();
    let named = |r: &dyn RowSource| r.name().map_or(String::new(), |n| format!(" {n}"));
    for (what, r) in [("threshold image", &threshold), ("noise image", &noise)] {
        if let Some(t) = r {
            if (t.width(), t.height()) != (src.width(), src.height()) {
                return Err(Error::Mismatch(format!(
                    "the {what}{} is {}x{} but the image{} is {}x{}: they must have the same shape",
                    named(&**t),
                    t.width(),
                    t.height(),
                    named(src),
                    src.width(),
                    src.height()
                )));
            }
        }
    }
    let has_thresh_image = threshold.is_some();
    if strip_rows == 0 {
        return Err(Error::param(
            "STREAM_ROWS",
            0,
            "strips must have at least one row",
        ));
    }
    let p = &e.extract;
    let (w, h) = (src.width(), src.height());
    let gpu = e.gpu.as_deref();
    let (background, mesh_on_gpu) = background_pass(src, mask.as_mut(), e, strip_rows, progress)?;
    // Dual-image mode: the measurement image's own background.
    let mbg = match measurement.as_deref_mut() {
        Some(m) => Some(background_pass(m, mask.as_mut(), e, strip_rows, &mut |_| {})?.0),
        None => None,
    };
    lap(
        &mut timings,
        &mut clock,
        if mesh_on_gpu {
            "background mesh statistics (GPU)"
        } else {
            "background mesh statistics"
        },
    );
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
    if mbg.is_some() && per_pixel {
        return Err(Error::param(
            "measurement image",
            "dual-image mode",
            "is measured with global thresholds: leave out the matched filter, the RMS-map \
             thresholds and the threshold image",
        ));
    }
    // Dual-image mode: the measurement image's global RMS (FLUXERR_ISO) and analysis
    // threshold (ISOAREA_IMAGE).
    let dual = mbg.as_ref().map(|b| {
        let gm = b.global_rms() as f32;
        let ta = match p.thresh_type {
            ThreshType::Absolute => p.analysis_thresh as f32,
            ThreshType::Relative => p.analysis_thresh as f32 * gm,
        };
        (gm, ta)
    });
    // The matched filter detects on S/N.
    let t_snr = p.detect_thresh as f32;
    let satur = p.satur_level as f32;
    // The detection threshold of the filtered values (S/N with the matched filter).
    let t_measure = if matched { t_snr } else { t_detect };
    let mut cpu = CpuStrips::new(&background, p.kernel.as_ref(), mode, satur, t_measure);
    let halo = p.kernel.as_ref().map_or(0, |k| k.height() / 2);
    // Pass 2: strips.
    let mut labeller = Labeller::new(p.connectivity, w);
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
        store: match (p.clean, memory.objects_in_memory) {
            (false, _) => None,
            (true, true) => Some(ObjectStore::Memory(Vec::new())),
            (true, false) => Some(ObjectStore::File(ObjectSpill::new(temp_dir)?)),
        },
    };
    let mut emitted = 0usize;
    let mut max_held = 0usize;
    let mut max_open = 0usize;
    // Completed components wait in a batch, deblended and measured together in
    // parallel; then their objects get their ids in completion order.
    let mut batch = Batch::default();
    // The run's stream of deblending draws (SExtractor's `rand()`), consumed in
    // completion order across every batch and strip.
    let rand = std::cell::RefCell::new(match &e.deblend_stream {
        Some(s) => s.lock().map(|g| g.clone()).unwrap_or_default(),
        None => crate::deblend::GlibcRand::default(),
    });
    // How many it took (--timings).
    let drawn = std::cell::Cell::new(0usize);
    let flush = |batch: &mut Batch,
                 pending: &mut BinaryHeap<Reverse<Keyed>>,
                 waiting: &mut Waiting,
                 segments: &mut Option<Segments>|
     -> Result<()> {
        // In the order the scan completes them (the order of SExtractor's draws):
        // each one's tree and draw count in parallel, then its share of the run's
        // stream of draws (an offset, a prefix sum), then its pixels shared out and
        // its objects measured, in parallel again (spec §4.5.4).
        let mut comps = batch.take();
        comps.sort_by_key(completion_key);
        let prepare = |c: Comp| {
            (
                completion_key(&c),
                prepare_component(c, w, (t_measure, mode), p),
            )
        };
        let prepared: Vec<((u32, u32), Prepared)> = if comps.len() > 1 {
            comps.into_par_iter().map(prepare).collect()
        } else {
            comps.into_iter().map(prepare).collect()
        };
        let mut offsets = Vec::with_capacity(prepared.len());
        let mut total = 0usize;
        for (_, c) in &prepared {
            offsets.push(total);
            total += c.draws();
        }
        drawn.set(drawn.get() + total);
        let stream: Vec<u32> = if p.deblend.draws == crate::params::DeblendDraws::Sextractor {
            let mut r = rand.borrow_mut();
            (0..total).map(|_| r.next_rand()).collect()
        } else {
            Vec::new()
        };
        let measure = |((done, c), at): (((u32, u32), Prepared), usize)| {
            // (Seeded draws: no stream; each object makes its own.)
            let draws = if stream.is_empty() {
                &[][..]
            } else {
                &stream[at..at + c.draws()]
            };
            (
                done,
                measure_component(c, draws, w, h, (t_measure, t_analysis, mode), g, dual, p),
            )
        };
        let measured: Vec<((u32, u32), Vec<Measured>)> = if prepared.len() > 1 {
            prepared.into_par_iter().zip(offsets).map(measure).collect()
        } else {
            prepared.into_iter().zip(offsets).map(measure).collect()
        };
        for ((row, x), parts) in measured {
            for (piece, Measured { key, object, runs }) in parts.into_iter().enumerate() {
                let done = (row, x, piece as u32);
                let id = match segments.as_mut() {
                    Some(s) => s.add(&runs)?,
                    None => u32::MAX,
                };
                match waiting.store.as_mut() {
                    Some(store) => {
                        waiting.recs.push(CleanRecord::from(&object));
                        let slot = store.push(object)?;
                        waiting.held.push(Held {
                            key,
                            done,
                            id,
                            slot,
                        });
                    }
                    None => pending.push(Reverse(Keyed {
                        key,
                        id,
                        obj: object,
                    })),
                }
            }
        }
        Ok(())
    };
    // On the GPU, the device subtracts, filters, thresholds and labels each strip and
    // returns its detected pixels with their roots; the strips are joined here.
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
                p.connectivity,
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
    // A run of one strip on the CPU subtracts in the image's own buffer (when the
    // source hands it over) and keeps the result.
    let keep_subtracted = memory.keep_subtracted && strips.len() == 1 && gpu_strips.is_none();
    let mut subtracted: Option<Vec<f32>> = None;
    let mut detected = memory.detected;
    let mut detected_runs: Vec<Run> = Vec::new();
    let span = |y0: usize, rows: usize| (y0.saturating_sub(halo), (y0 + rows + halo).min(h));
    let mut invalid_spread = (0u64, 0u64);
    let mut gpu_timings: Option<crate::gpu::GpuTimings> = None;
    // Seconds spent waiting for strips, detecting on the CPU, joining rows, measuring.
    let (mut t_wait, mut t_cpu, mut t_join, mut t_meas) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let back = std::thread::scope(|scope| -> Result<Sides> {
        let (tx, rx_read) = std::sync::mpsc::sync_channel::<Result<Stage>>(0);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<(Vec<f32>, Option<Vec<bool>>)>();
        let strips_r = &strips;
        let src = &mut *src;
        let mut sides = Sides {
            mask: mask.take(),
            threshold: threshold.take(),
            noise: noise.take(),
            flags: std::mem::take(&mut flags),
            measurement: measurement.take(),
        };
        let reader = scope.spawn(move || {
            let mut mbuf = Vec::new();
            for &(y0, rows) in strips_r {
                let recycled = recycle_rx.try_recv().unwrap_or_default();
                let span = span(y0, rows);
                let r = read_strip(
                    src,
                    &mut sides,
                    (y0, rows),
                    span,
                    keep_subtracted,
                    recycled,
                    &mut mbuf,
                )
                .map(|strip| Stage {
                    strip,
                    device: None,
                });
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break; // the detection stopped, or reading failed
                }
            }
            sides
        });
        // On the GPU backend a third thread hands each strip to the device: the device
        // detects strip N + 1 while this thread joins the rows of strip N, and the
        // reader reads strip N + 2.
        let (rx, device_thread) = match gpu_strips.take() {
            None => (rx_read, None),
            Some(mut g) => {
                let (gtx, grx) = std::sync::mpsc::sync_channel::<Result<Stage>>(0);
                g.mode = mode;
                let handle = scope.spawn(move || {
                    for &(y0, rows) in strips_r {
                        let Ok(msg) = rx_read.recv() else {
                            break; // the reader stopped
                        };
                        let out = msg.and_then(|mut st| {
                            let mut found = Vec::new();
                            g.detect_strip(
                                &mut st.strip,
                                (y0, rows),
                                span(y0, rows).0,
                                &mut found,
                            )?;
                            st.device = Some(found);
                            Ok(st)
                        });
                        let failed = out.is_err();
                        if gtx.send(out).is_err() || failed {
                            break; // the detection stopped, or the device failed
                        }
                    }
                    g.timings
                });
                (grx, Some(handle))
            }
        };
        let mut run = || -> Result<()> {
            for &(y0, rows) in &strips {
                let sy0 = span(y0, rows).0;
                let waited = Instant::now();
                let Stage { mut strip, device } = rx.recv().map_err(|_| {
                    Error::System("the strip reader or the device thread stopped".into())
                })??;
                t_wait += waited.elapsed().as_secs_f64();
                let detecting = Instant::now();
                if let Some(k) = &p.kernel {
                    let core = y0 - sy0..y0 - sy0 + rows;
                    let (a, b) =
                        crate::convolve::invalid_spread(&strip.raw, w, core, k.width(), k.height());
                    invalid_spread.0 += a;
                    invalid_spread.1 += b;
                }
                match device {
                    Some(found) => dets = found,
                    None => {
                        cpu.detect_strip(&mut strip, (y0, rows), sy0, &mut dets)?;
                        if keep_subtracted {
                            subtracted = Some(std::mem::take(&mut strip.raw));
                        }
                    }
                }
                if !strip.flags.is_empty() {
                    carry_flags(&mut dets, &strip.flags, (w, y0), &flag_masks)?;
                }
                if let (Some(rows_m), Some(mb)) = (strip.meas.take(), &mbg) {
                    let own = strip
                        .mask
                        .as_deref()
                        .map(|m| &m[(y0 - sy0) * w..(y0 - sy0 + rows) * w]);
                    carry_measurement(&mut dets, rows_m, mb, (w, y0), own, satur);
                }
                t_cpu += detecting.elapsed().as_secs_f64();
                let joining = Instant::now();
                // Labelled on the device: runs with the same root join one component.
                let labelled = dets.iter().any(|d| !d.roots.is_empty());
                labeller.start_strip();
                for y in y0..y0 + rows {
                    // On the CPU each row joins the previous one; on the GPU, whose roots
                    // join the rows within a strip, only the strip's first row (its seam
                    // with the last) does.
                    let seam = !labelled || y == y0;
                    let strip_end = !labelled || y + 1 == y0 + rows;
                    labeller.join_row(y, &dets[y - y0], labelled, seam, strip_end, &mut |c| {
                        batch.add(c, p.minarea)
                    });
                    if streamed_phot {
                        detected_runs.extend(dets[y - y0].runs.iter().map(|&(x0, x1)| Run {
                            y: y as u32,
                            x0: x0 as u32,
                            x1: x1 as u32,
                        }));
                    }
                    if let Some(bits) = detected.as_deref_mut() {
                        for &(x0, x1) in &dets[y - y0].runs {
                            for i in y * w + x0..y * w + x1 {
                                bits[i / 64] |= 1 << (i % 64);
                            }
                        }
                    }
                    if batch.pixels >= BATCH_PIXELS {
                        let measuring = Instant::now();
                        flush(&mut batch, &mut pending, &mut waiting, &mut segments)?;
                        t_meas += measuring.elapsed().as_secs_f64();
                    }
                    if let Some(cap) = max_open_pixels.filter(|&cap| labeller.open_px > cap) {
                        let big = labeller.largest().expect("pixels are held by open objects");
                        return Err(Error::ObjectTooLarge {
                            limit: cap,
                            row: y,
                            held: labeller.open_px,
                            first_row: big.first.0,
                            pixels: big.npix(),
                        });
                    }
                    max_open = max_open.max(labeller.live());
                    max_held = max_held.max(pending.len() + waiting.held.len() + batch.comps.len());
                    if !p.clean {
                        // Objects before every open or unmeasured component's first
                        // pixel and the next row.
                        let bound = labeller.first_key().min(batch.first).min((y as u32 + 1, 0));
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
                t_join += joining.elapsed().as_secs_f64();
                let measuring = Instant::now();
                flush(&mut batch, &mut pending, &mut waiting, &mut segments)?;
                t_meas += measuring.elapsed().as_secs_f64();
                let _ = recycle_tx.send((strip.raw, strip.mask));
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
        if let Some(handle) = device_thread {
            gpu_timings = handle.join().ok();
        }
        let back = reader
            .join()
            .map_err(|_| Error::System("the strip reader stopped".into()))?;
        result.map(|()| back)
    })?;
    let mut mask = back.mask;
    let measurement = back.measurement;
    for c in labeller.into_open() {
        batch.add(c, p.minarea);
    }
    let measuring = Instant::now();
    flush(&mut batch, &mut pending, &mut waiting, &mut segments)?;
    t_meas += measuring.elapsed().as_secs_f64();
    timings.push(("waiting for strips (reading, GPU detection)", t_wait));
    timings.push(("subtraction, filtering and thresholding", t_cpu));
    timings.push(("labelling (joining rows)", t_join));
    timings.push(("deblending and measurement", t_meas));
    timings.push(("deblending draws", drawn.get() as f64));
    // The next extraction of a shared stream goes on from here.
    if let Some(s) = &e.deblend_stream {
        if let Ok(mut g) = s.lock() {
            *g = rand.borrow().clone();
        }
    }
    clock = Instant::now();
    max_held = max_held.max(pending.len() + waiting.held.len());
    let cleaning = waiting.store.is_some();
    emitted = emit_the_rest(waiting, pending, segments.as_mut(), (p, h), emitted, emit)?;
    if cleaning {
        lap(&mut timings, &mut clock, "cleaning");
    }
    if streamed_phot {
        let (seg, paste) = own_runs.into_parts(w, h);
        // Dual-image mode: the measurement image's rows, with the detection image's
        // for the AUTO and Petrosian radii.
        let (main, det): (&mut (dyn RowSource + Send), _) = match measurement {
            Some(m) => (m, Some((src, &background))),
            None => (src, None),
        };
        photometry_pass(
            main,
            mask.as_mut(),
            mbg.as_ref().unwrap_or(&background),
            e,
            collected,
            &seg,
            &paste,
            &detected_runs,
            strip_rows,
            plan.phot_window,
            det,
            emit_final,
            progress,
        )?;
        lap(&mut timings, &mut clock, "photometry (second pass)");
    }
    let per_object = if p.clean {
        HELD_BYTES
    } else {
        std::mem::size_of::<Reverse<Keyed>>()
    };
    if let Some(gt) = gpu_timings {
        timings.push(("GPU stage: upload", gt.upload));
        timings.push(("GPU stage: filter + labelling", gt.filter_and_label));
        timings.push((
            "GPU stage: compaction + readback",
            gt.compaction_and_readback,
        ));
        timings.push(("GPU stage: strips", gt.strips as f64));
    }
    Ok(StreamSummary {
        background,
        objects: emitted,
        max_open,
        max_held,
        max_held_bytes: max_held * per_object,
        invalid_spread,
        timings,
        subtracted,
        measurement_background: mbg,
    })
}

/// A streamed run's objects waiting for the photometry pass, in catalog order (slot
/// k holds object k), and the rows each reads ([`crate::photometry::rows_needed`]).
struct Collected {
    store: ObjectStore,
    reach: Vec<(u32, u32)>,
}

/// The photometry of a streamed run's `objects` (numbered, with their runs in
/// `seg`): a second pass over the rows of `src` in bands of `band_rows`, keeping a
/// window from the lowest row a waiting object reads to the band read last; each
/// object is measured (in parallel with the others its band completes) once the
/// window holds every row it reads ([`crate::photometry::rows_needed`]). The pixels
/// of other detections are the runs of `detected` (every row's detected runs, in row
/// order). An object that needs more rows than its shape said is measured again on
/// the rows it needs, read for it alone.
#[allow(clippy::too_many_arguments)]
fn photometry_pass(
    src: &mut (dyn RowSource + Send),
    mut mask: Option<&mut MaskInput>,
    bg: &Background,
    e: &Extractor,
    mut objects: Collected,
    seg: &crate::label::Segmentation,
    paste: &crate::spill::PasteBack,
    detected: &[Run],
    band_rows: usize,
    window: Option<(f64, usize)>,
    mut det: Option<(&mut (dyn RowSource + Send), &Background)>,
    emit: &mut dyn FnMut(Object) -> Result<()>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    use crate::photometry::{measure_many, set, sigma2, Field};
    let (w, h) = (src.width(), src.height());
    let p = &e.extract;
    let blankh = crate::photometry::blankh(p);
    let reach: Vec<(usize, usize)> = objects
        .reach
        .iter()
        .map(|&(a, b)| (a as usize, b as usize))
        .collect();
    let n = reach.len();
    // The objects read back for measuring, and those measured, until they leave in
    // catalog order (slot k is catalog object k).
    let mut loaded: std::collections::BTreeMap<usize, Object> = Default::default();
    // Under a memory limit the window holds at most `cap` rows: bands of a quarter of
    // it, and every object's rows with a band above them. The objects still waiting
    // all end within a band of the last one read, so the window never holds more.
    // What this pass holds besides the window counts against the limit: every row's
    // detected runs, the objects' own runs, and per object its rows, its place in
    // the order and its slot.
    let held = {
        let runs = detected.len() + (0..seg.len()).map(|k| seg.object(k).len()).sum::<usize>();
        (runs * std::mem::size_of::<Run>() + n * 48) as f64
    };
    let window = window.map(|(mib, cap)| {
        let share = mib * 1048576.0 * crate::plan::STRIP_SHARE - held;
        let rows = (share / (crate::plan::PHOT_WINDOW_BYTES * w as f64)).floor();
        (mib, cap.min(rows.max(1.0) as usize))
    });
    let band_rows = match window {
        Some((_, cap)) => band_rows.min((cap / 4).max(1)),
        None => band_rows,
    };
    let too_many = |o: &Object, (a, b): (usize, usize)| -> Option<Error> {
        let (mib, cap) = window?;
        let need = b - a + band_rows;
        (need > cap).then(|| {
            Error::param(
                "MEMORY_LIMIT",
                format!("{mib}"),
                format!(
                    concat!(
                        "object {} at ({:.1}, {:.1}) measures rows {}..{} of this {}-pixel-wide ",
                        "image ({} rows with a band to read), more than the {} rows the limit ",
                        "leaves the photometry pass; give --memory-limit {:.0} or more, or smaller ",
                        "apertures (PHOT_APERTURES, PHOT_AUTOPARAMS, PHOT_PETROPARAMS)"
                    ),
                    o.number,
                    o.x + 1.0,
                    o.y + 1.0,
                    a + 1,
                    b,
                    w,
                    need,
                    cap,
                    (mib * need as f64 / cap as f64).ceil()
                ),
            )
        })
    };
    if let Some(k) = (0..n).find(|&k| too_many(&Object::default(), reach[k]).is_some()) {
        let o = objects.store.take(k as u32)?;
        return Err(too_many(&o, reach[k]).expect("too many rows"));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&k| reach[k].1);
    let (mut raw, mut mbuf, mut mbits) = (Vec::new(), Vec::new(), Vec::new());
    // Rows y0.. of the window: subtracted values and bad (masked) flags; in
    // dual-image mode the detection image's values of the same rows too.
    let (mut y0, mut vals, mut bad) = (0usize, Vec::<f32>::new(), Vec::<bool>::new());
    let (mut dvals, mut dbad) = (Vec::<f32>::new(), Vec::<bool>::new());
    let mut read = |src: &mut (dyn RowSource + Send),
                    mask: &mut Option<&mut MaskInput>,
                    (a, b): (usize, usize),
                    vals: &mut Vec<f32>,
                    bad: &mut Vec<bool>,
                    bg: &Background|
     -> Result<()> {
        let m = read_band(
            src,
            mask.as_deref_mut(),
            (a, b),
            &mut raw,
            &mut mbuf,
            &mut mbits,
        )?;
        crate::detect::cpu::subtract_rows(bg, a, &mut raw, m, f32::INFINITY);
        vals.extend_from_slice(&raw);
        match m {
            Some(m) => bad.extend_from_slice(m),
            None => bad.resize(bad.len() + raw.len(), false),
        }
        Ok(())
    };
    let bits_of = |(a, b): (usize, usize)| {
        let mut bits = vec![0u64; ((b - a) * w).div_ceil(64)];
        let first = detected.partition_point(|r| (r.y as usize) < a);
        let last = detected.partition_point(|r| (r.y as usize) < b);
        crate::photometry::mark_runs(&mut bits, w, a, &detected[first..last]);
        crate::photometry::clear_runs(&mut bits, w, a, paste.restored(blankh, (a, b)));
        bits
    };
    let own = |k: usize| paste.own_of(k).unwrap_or(seg.object(k));
    // Objects leave in catalog order as soon as they and all before them are measured.
    let mut emitted = 0usize;
    let (mut next, mut y) = (0usize, 0usize);
    while next < n {
        let top = reach[order[next]].1;
        while y < top {
            let y1 = (y + band_rows.max(1)).min(h);
            read(src, &mut mask, (y, y1), &mut vals, &mut bad, bg)?;
            if let Some((d, dbg)) = det.as_mut() {
                read(&mut **d, &mut mask, (y, y1), &mut dvals, &mut dbad, dbg)?;
            }
            y = y1;
        }
        let end = next + order[next..].partition_point(|&k| reach[k].1 <= y);
        let lo = order[next..].iter().map(|&k| reach[k].0).min().unwrap_or(y);
        if lo > y0 {
            vals.drain(..(lo - y0) * w);
            bad.drain(..(lo - y0) * w);
            if det.is_some() {
                dvals.drain(..(lo - y0) * w);
                dbad.drain(..(lo - y0) * w);
            }
            y0 = lo;
        }
        let bits = bits_of((y0, y));
        let field = Field {
            width: w,
            height: h,
            y0,
            values: &vals,
            detected: &bits,
            mask: Some(&bad),
            sigma2: sigma2(bg),
            detection: det.is_some().then_some(&dvals[..]),
        };
        let batch = &order[next..end];
        let mut todo = Vec::with_capacity(batch.len());
        for &k in batch {
            todo.push(objects.store.take(k as u32)?);
        }
        let items: Vec<_> = todo.iter().zip(batch).map(|(o, &k)| (o, own(k))).collect();
        let phots = measure_many(&field, &items, bg, p);
        for ((&k, ph), mut o) in batch.iter().zip(phots).zip(todo) {
            if let Some(ph) = ph {
                set(&mut o, ph, p.mag_zeropoint);
                loaded.insert(k, o);
                continue;
            }
            // The object read beyond its rows: twice the reach, until it is enough.
            let (mut a, mut b) = reach[k];
            loop {
                let span = b - a;
                (a, b) = (a.saturating_sub(span), (b + span).min(h));
                if let Some(err) = too_many(&o, (a, b)) {
                    return Err(err);
                }
                let (mut v, mut m) = (Vec::new(), Vec::new());
                read(src, &mut mask, (a, b), &mut v, &mut m, bg)?;
                let (mut dv, mut dm) = (Vec::new(), Vec::new());
                if let Some((d, dbg)) = det.as_mut() {
                    read(&mut **d, &mut mask, (a, b), &mut dv, &mut dm, dbg)?;
                }
                let bits = bits_of((a, b));
                let field = Field {
                    width: w,
                    height: h,
                    y0: a,
                    values: &v,
                    detected: &bits,
                    mask: Some(&m),
                    sigma2: sigma2(bg),
                    detection: det.is_some().then_some(&dv[..]),
                };
                let item = [(&o, own(k))];
                if let Some(Some(ph)) = measure_many(&field, &item, bg, p).pop() {
                    set(&mut o, ph, p.mag_zeropoint);
                    loaded.insert(k, o);
                    break;
                }
                if (a, b) == (0, h) {
                    return Err(Error::System("photometry read beyond the image".into()));
                }
            }
        }
        next = end;
        while let Some(o) = loaded.remove(&emitted) {
            emit(o)?;
            emitted += 1;
        }
        progress(Progress {
            rows_done: y,
            rows: h,
            pass: 4,
            objects: n,
        });
    }
    Ok(())
}

/// The background pass (see [`scan`]): the mesh statistics of every mesh row, on the
/// device where it computes them, and the background model from them; also whether
/// the device computed them.
fn background_pass(
    src: &mut (dyn RowSource + Send),
    mut mask: Option<&mut MaskInput>,
    e: &Extractor,
    strip_rows: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Background, bool)> {
    let (w, h) = (src.width(), src.height());
    let gpu = e.gpu.as_deref();
    let (mut mbuf, mut mbits) = (Vec::new(), Vec::new());
    // Pass 1: the background, from every mesh row at once when the image (and the
    // mask) are in memory, else in bands of as many mesh rows as a strip holds (at
    // least one), the mesh rows of a band in parallel.
    let (bw, bh) = (
        e.background.mesh_size.0.min(w),
        e.background.mesh_size.1.min(h),
    );
    let (nx, ny) = (w.div_ceil(bw), h.div_ceil(bh));
    let gpu_mesh = gpu.filter(|c| c.has_mesh_stats());
    let mut mesh_on_gpu = false;
    let mut stats: Vec<Option<MeshStat>> = Vec::with_capacity(nx * ny);
    let pass1 = |rows_done| Progress {
        rows_done,
        rows: h,
        pass: 1,
        objects: 0,
    };
    let whole = mask.as_deref().is_none_or(|m| m.in_memory().is_some());
    if let Some(img) = src.in_memory().filter(|_| whole) {
        let m = mask.as_deref().and_then(|m| m.in_memory());
        let on_device = match gpu_mesh {
            Some(ctx) => ctx.mesh_stats(img, m, (bw, bh), (nx, ny))?,
            None => None,
        };
        mesh_on_gpu = on_device.is_some();
        stats = on_device.unwrap_or_else(|| cpu_mesh_stats(img, m, (bw, bh), (nx, ny)));
        progress(pass1(h));
    } else {
        let per_band = (strip_rows.max(1) / bh).max(1);
        let mut band = Vec::new();
        for j0 in (0..ny).step_by(per_band) {
            let j1 = (j0 + per_band).min(ny);
            let (y0, y1) = (j0 * bh, (j1 * bh).min(h));
            let m = read_band(
                src,
                mask.as_deref_mut(),
                (y0, y1),
                &mut band,
                &mut mbuf,
                &mut mbits,
            )?;
            let on_device = match gpu_mesh {
                Some(ctx) => {
                    let img =
                        Image::new(w, y1 - y0, std::mem::take(&mut band)).expect("band shape");
                    let r = ctx.mesh_stats(&img, m, (bw, bh), (nx, j1 - j0));
                    band = img.into_data();
                    r?
                }
                None => None,
            };
            match on_device {
                Some(st) => {
                    mesh_on_gpu = true;
                    stats.extend(st)
                }
                None => {
                    // Each mesh row of the band in place (its pixels are not used again).
                    let rows: Vec<Vec<Option<MeshStat>>> = band
                        .par_chunks_mut(bh * w)
                        .enumerate()
                        .map(|(k, rows)| {
                            let mrows = m.map(|m| &m[k * bh * w..k * bh * w + rows.len()]);
                            mesh_row_stats(rows, w, mrows, bw, nx)
                        })
                        .collect();
                    stats.extend(rows.into_iter().flatten());
                }
            }
            progress(pass1(y1));
        }
    }
    let background = Background::from_mesh_stats(w, h, (bw, bh), nx, ny, &stats, &e.background)?;
    Ok((background, mesh_on_gpu))
}

/// The objects still held at the end of the scan, to `emit` in catalog order: with
/// cleaning (`waiting.store`), all of them, cleaned in SExtractor's order and read
/// back from the store, each survivor with its victims merged in index order; without,
/// the ones not emitted yet. Returns the count of objects emitted in all, from
/// `emitted` before.
fn emit_the_rest(
    waiting: Waiting,
    pending: BinaryHeap<Reverse<Keyed>>,
    mut segments: Option<&mut Segments>,
    (p, height): (&crate::params::ExtractParams, usize),
    mut emitted: usize,
    emit: &mut dyn FnMut(Object) -> Result<()>,
) -> Result<usize> {
    if let Some(mut store) = waiting.store {
        // Cleaning, in catalog order (by first pixel): the objects read back from the
        // store, each survivor with its victims merged in index order.
        let mut held = waiting.held.into_vec();
        let mut recs = waiting.recs.into_vec();
        // Both lists in catalog order (by first pixel), reordered in place.
        let mut order: Vec<u32> = (0..held.len() as u32).collect();
        order.sort_unstable_by_key(|&i| held[i as usize].key);
        permute_in_place(&mut order, &mut held, &mut recs);
        let done: Vec<crate::clean::Entry> = held.iter().map(|k| k.done).collect();
        let forget = crate::clean::Forget::for_params(p, height);
        let (targets, merged_at) =
            crate::clean::clean_records(&recs, &done, p.clean_param, &forget);
        drop((recs, done));
        // Victims by their target, in index order (a few percent of the objects).
        let victims = crate::clean::victims_of(&targets);
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
            for (k, &at) in held.iter().zip(&merged_at) {
                if at != u32::MAX {
                    s.set_pasted(k.id, at);
                }
            }
        }
        let mut vi = 0usize;
        for (t, k) in held.iter().enumerate() {
            if targets[t] != t {
                continue;
            }
            let mut obj = store.take(k.slot)?;
            while vi < victims.len() && victims[vi].0 == t {
                let victim = store.take(held[victims[vi].1].slot)?;
                crate::clean::merge_into(&mut obj, &victim, p);
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
    Ok(emitted)
}

/// Reads strip rows `y0..y0 + rows` with their halo rows `sy0..sy1`: the image's
/// (taken from the source when `take`, into the recycled buffers), the mask's, the
/// threshold image's (strip rows) and the noise map's (with the halo), and checks that
/// whole rows came back (a custom row source might not return them).
fn read_strip(
    src: &mut (dyn RowSource + Send),
    sides: &mut Sides,
    (y0, rows): (usize, usize),
    (sy0, sy1): (usize, usize),
    take: bool,
    (mut raw, bits): (Vec<f32>, Option<Vec<bool>>),
    mbuf: &mut Vec<f32>,
) -> Result<StripRows> {
    let n = sy1 - sy0;
    if take {
        src.take_rows(sy0, n, &mut raw)?;
    } else {
        src.read_rows(sy0, n, &mut raw)?;
    }
    let mask = match sides.mask.as_mut() {
        Some(m) => {
            let mut bits = bits.unwrap_or_default();
            m.read(sy0, n, mbuf, &mut bits)?;
            Some(bits)
        }
        None => None,
    };
    let read = |r: &mut Option<&mut (dyn RowSource + Send)>, y: usize, k: usize| {
        r.as_mut()
            .map(|r| {
                let mut v = Vec::new();
                r.read_rows(y, k, &mut v).map(|()| v)
            })
            .transpose()
    };
    let thresholds = read(&mut sides.threshold, y0, rows)?;
    let noise = read(&mut sides.noise, sy0, n)?;
    let meas = match sides.measurement.as_mut() {
        Some(m) => {
            let mut v = Vec::new();
            m.read_rows(y0, rows, &mut v)?;
            Some(v)
        }
        None => None,
    };
    let mut flags = Vec::with_capacity(sides.flags.len());
    for f in &mut sides.flags {
        let mut v = Vec::new();
        f.rows.read_rows(y0, rows, &mut v)?;
        if v.len() != rows * src.width() {
            return Err(Error::Mismatch(format!(
                "rows {y0}..{} of a flag image came back with the wrong number of pixels",
                y0 + rows
            )));
        }
        flags.push(v);
    }
    let w = src.width();
    let whole = |v: Option<usize>, len: usize| v.is_none_or(|l| l == len);
    if raw.len() != n * w
        || !whole(mask.as_ref().map(Vec::len), n * w)
        || !whole(thresholds.as_ref().map(Vec::len), rows * w)
        || !whole(noise.as_ref().map(Vec::len), n * w)
    {
        return Err(Error::Mismatch(format!(
            "rows {sy0}..{sy1} came back with the wrong number of pixels from the image, mask, \
             threshold or noise rows ({w} per row)"
        )));
    }
    Ok(StripRows {
        raw,
        mask,
        thresholds,
        noise,
        flags,
        meas,
    })
}

/// Dual-image mode: the measurement image's rows `rows` of the strip from row `y0`,
/// background-subtracted with its own background `bg` (masked pixels 0), give every
/// detected pixel its measurement value and the saturation of the measurement image.
fn carry_measurement(
    dets: &mut [crate::detect::RowDetections],
    mut rows: Vec<f32>,
    bg: &Background,
    (w, y0): (usize, usize),
    mask: Option<&[bool]>,
    satur: f32,
) {
    let saturated = crate::detect::cpu::subtract_rows(bg, y0, &mut rows, mask, satur);
    for (r, d) in dets.iter_mut().enumerate() {
        d.saturated.clear();
        d.mvalues.clear();
        for &(x0, x1) in &d.runs {
            for x in x0..x1 {
                d.mvalues.push(rows[r * w + x]);
            }
            d.saturated
                .extend(saturated[r].iter().copied().filter(|&c| c >= x0 && c < x1));
        }
        d.saturated.sort_unstable();
    }
}

/// Gives every detected pixel of a strip's rows `dets` its value in each flag map
/// (`flags`: the maps' rows of the strip, `masks` their integer widths).
fn carry_flags(
    dets: &mut [crate::detect::RowDetections],
    flags: &[Vec<f32>],
    (w, y0): (usize, usize),
    masks: &[u32],
) -> Result<()> {
    for (r, d) in dets.iter_mut().enumerate() {
        d.flags.clear();
        for &(x0, x1) in &d.runs {
            for x in x0..x1 {
                for (m, rows) in flags.iter().enumerate() {
                    let v = rows[r * w + x];
                    let f = crate::imaflags::value(v, masks[m]).ok_or_else(|| {
                        Error::Mismatch(format!(
                            "a flag image holds {v} at pixel ({}, {}): flag values must be \
                             integers below 2^24 (larger 32-bit flags are not supported)",
                            x + 1,
                            y0 + r + 1
                        ))
                    })?;
                    d.flags.push(f);
                }
            }
        }
    }
    Ok(())
}

/// Adds the time since `clock` to `timings` under `name` and restarts the clock.
fn lap(timings: &mut Vec<(&'static str, f64)>, clock: &mut Instant, name: &'static str) {
    timings.push((name, clock.elapsed().as_secs_f64()));
    *clock = Instant::now();
}

/// A strip on its way to the row joining: what was read and, on the GPU backend, what
/// the device detected in it.
struct Stage {
    strip: StripRows,
    /// The strip's detections, row by row, with the device's roots.
    device: Option<Vec<RowDetections>>,
}

/// Completed components waiting to be deblended and measured.
struct Batch {
    comps: Vec<Comp>,
    pixels: usize,
    /// The smallest first pixel among them (no object made from them can come before).
    first: (u32, u32),
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            comps: Vec::new(),
            pixels: 0,
            first: (u32::MAX, u32::MAX),
        }
    }
}

impl Batch {
    /// Adds a completed component (components smaller than `minarea` are dropped).
    fn add(&mut self, c: Comp, minarea: usize) {
        if c.npix() >= minarea {
            self.pixels += c.npix();
            self.first = self.first.min(c.first);
            self.comps.push(c);
        }
    }
    fn take(&mut self) -> Vec<Comp> {
        self.pixels = 0;
        self.first = (u32::MAX, u32::MAX);
        std::mem::take(&mut self.comps)
    }
}

/// Objects waiting for cleaning: what cleaning reads of each, and the objects (on
/// disk in streamed runs).
struct Waiting {
    held: Chunked<Held>,
    /// What cleaning reads of each object, in the order of `held`.
    recs: Chunked<CleanRecord>,
    store: Option<ObjectStore>,
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
    /// When it enters cleaning: the last row and column of its detected component,
    /// then its place among the pieces of its blend ([`crate::clean::Entry`]).
    done: crate::clean::Entry,
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

/// An object made from a completed component: its sort key (first pixel), its
/// measurements and its runs.
struct Measured {
    key: (u32, u32),
    object: Object,
    runs: Vec<Run>,
}

/// A completed component ready to be deblended and measured: its pixels and runs in
/// raster order, its per-pixel field, its saturated pixels, its first pixel's linear
/// index, its mean detection threshold and its deblending plan.
struct Prepared {
    px: Vec<Pixel>,
    runs: Vec<Run>,
    field: Vec<f32>,
    /// The flag maps' values of each pixel (one per map), in `px`'s order.
    flags: Vec<u32>,
    /// Dual-image mode: the measurement image's values, in `px`'s order.
    mvalues: Vec<f32>,
    sat: Vec<usize>,
    first: u64,
    plan: crate::deblend::Plan,
}

impl Prepared {
    /// The random numbers its deblending takes.
    fn draws(&self) -> usize {
        self.plan.draws()
    }
}

/// Where the one-pass scan completes a component: its last row, then the last column
/// of its last row (spec §4.5.3, the order of SExtractor's draws and cleaning).
fn completion_key(c: &Comp) -> (u32, u32) {
    let x = c
        .runs
        .iter()
        .filter(|r| r.y == c.last_y)
        .map(|r| r.x1)
        .max()
        .unwrap_or(0);
    (c.last_y, x)
}

/// Makes a completed component ready for [`measure_component`]: its pixels in raster
/// order and its deblending plan (the tree, the cores and their models, and how many
/// draws sharing its pixels out takes).
fn prepare_component(
    c: Comp,
    w: usize,
    (t_detect, mode): (f32, PixelMode),
    p: &crate::params::ExtractParams,
) -> Prepared {
    // Runs (and their values) in raster order.
    let mut order: Vec<usize> = (0..c.runs.len()).collect();
    order.sort_by_key(|&i| (c.runs[i].y, c.runs[i].x0));
    let n = c.filtered.len();
    let mut runs = Vec::with_capacity(c.runs.len());
    let mut filtered = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let per_pixel = mode != PixelMode::Const;
    let mut field = Vec::with_capacity(if per_pixel { n } else { 0 });
    let nm = c.flags.len() / n.max(1);
    let mut flags = Vec::with_capacity(c.flags.len());
    let mut mvalues = Vec::with_capacity(c.mvalues.len());
    for &i in &order {
        let run = c.runs[i];
        let s = c.starts[i];
        runs.push(run);
        filtered.extend_from_slice(&c.filtered[s..s + run.len()]);
        values.extend_from_slice(&c.values[s..s + run.len()]);
        if per_pixel {
            field.extend_from_slice(&c.field[s..s + run.len()]);
        }
        flags.extend_from_slice(&c.flags[s * nm..(s + run.len()) * nm]);
        if !c.mvalues.is_empty() {
            mvalues.extend_from_slice(&c.mvalues[s..s + run.len()]);
        }
    }
    let mut sat = c.saturated;
    sat.sort_unstable();
    let mut px = Vec::with_capacity(n);
    for run in &runs {
        for x in run.x0..run.x1 {
            let k = px.len();
            px.push(Pixel {
                x,
                y: run.y,
                c: filtered[k],
                v: values[k],
            });
        }
    }
    let first = runs[0].y as u64 * w as u64 + runs[0].x0 as u64;
    // The object's mean detection threshold (pixels in raster order), for deblending.
    let scaled = |k: f32, values: &[f32]| -> f64 {
        values.iter().map(|&v| (k * v) as f64).sum::<f64>() / values.len() as f64
    };
    let t0 = match mode {
        PixelMode::Matched(_) | PixelMode::Const => t_detect as f64,
        PixelMode::RmsMap(kd, _) => scaled(kd, &field),
        PixelMode::ThresholdImage => scaled(1.0, &field),
    };
    let plan = crate::pipeline::plan_object(&px, t0, p);
    Prepared {
        px,
        runs,
        field,
        flags,
        mvalues,
        sat,
        first,
        plan,
    }
}

/// Deblends (with the numbers `stream` of the run's draws, when it takes them) and
/// measures a completed component. `thresholds`: the detection and analysis
/// thresholds and how they vary: with the RMS map or a threshold image the component
/// carries the per-pixel values (`Comp::field`).
#[allow(clippy::too_many_arguments)]
fn measure_component(
    c: Prepared,
    stream: &[u32],
    w: usize,
    h: usize,
    (t_detect, t_analysis, mode): (f32, f32, PixelMode),
    g: f32,
    dual: Option<(f32, f32)>,
    p: &crate::params::ExtractParams,
) -> Vec<Measured> {
    let Prepared {
        px,
        runs,
        field,
        flags,
        mvalues,
        sat,
        first,
        plan,
    } = c;
    let nm = p.flag_types.len();
    let per_pixel = mode != PixelMode::Const;
    let seeded;
    let draws = match p.deblend.draws {
        crate::params::DeblendDraws::Sextractor => stream,
        crate::params::DeblendDraws::Seeded => {
            seeded = crate::deblend::seeded_draws(first ^ 0x5EED_5EED_5EED_5EED, plan.draws());
            &seeded[..]
        }
    };
    split_object(&px, &runs, plan, draws)
        .into_iter()
        .map(|part| {
            let pf: Vec<f32> = part.pixels.iter().map(|&i| px[i].c).collect();
            let pr: Vec<f32> = part.pixels.iter().map(|&i| px[i].v).collect();
            // Dual-image mode: the fluxes from the measurement image; cleaning's
            // Gaussian area correction stays the detection image's, as the rest of
            // what cleaning reads.
            let pm: Option<Vec<f32>> =
                (!mvalues.is_empty()).then(|| part.pixels.iter().map(|&i| mvalues[i]).collect());
            let ps: Vec<f32> = if per_pixel {
                part.pixels.iter().map(|&i| field[i]).collect()
            } else {
                Vec::new()
            };
            let per = |k: f32| PixelField::PerPixel { k, values: &ps };
            let (noise, thresh, analysis_thresh) = match mode {
                PixelMode::ThresholdImage => (PixelField::Const(g), per(1.0), per(1.0)),
                PixelMode::Matched(ka) => (
                    per(1.0),
                    PixelField::Const(t_detect),
                    match ka {
                        Some(k) => per(k),
                        None => PixelField::Const(t_analysis),
                    },
                ),
                PixelMode::RmsMap(kd, ka) => (per(1.0), per(kd), per(ka)),
                PixelMode::Const => (
                    PixelField::Const(g),
                    PixelField::Const(t_detect),
                    PixelField::Const(dual.map_or(t_analysis, |d| d.1)),
                ),
            };
            let inp = MeasureInput {
                saturated: &sat,
                sub: None,
                width: w,
                height: h,
                filtered: None,
                noise,
                flux_noise: dual.map(|d| d.0),
                abcor_values: pm.as_ref().map(|_| &pr[..]),
                thresh,
                analysis_thresh,
                gain: p.gain,
                mag_zeropoint: p.mag_zeropoint,
                minarea: p.minarea,
                with_mthresh: p.clean,
                list_order: part.list.as_deref(),
            };
            let values = pm.as_deref().unwrap_or(&pr);
            let mut object = measure_object(&part.runs, &pf, values, part.centre, &inp);
            // MOST breaks ties by SExtractor's pixel-list order.
            let order = p
                .flag_types
                .contains(&crate::imaflags::FlagType::Most)
                .then(|| match &part.list {
                    Some(l) => l.clone(),
                    None => crate::measure::scan_list_order(&part.runs),
                });
            for (m, &t) in p.flag_types.iter().enumerate() {
                let at = |j: usize| flags[part.pixels[j] * nm + m];
                (object.imaflags[m], object.nimaflags[m]) = match &order {
                    Some(o) => crate::imaflags::combine(o.iter().map(|&j| at(j as usize)), t),
                    None => crate::imaflags::combine((0..part.pixels.len()).map(at), t),
                };
            }
            if part.centre.is_some() {
                object.flags |= crate::measure::flags::MERGED;
            }
            // A piece is truncated when its core touches the border (SExtractor's
            // rule), not when its gathered pixels do.
            if let Some((x0, x1, y0, y1)) = part.core_box {
                use crate::measure::flags::TRUNCATED;
                let edge = x0 == 0 || y0 == 0 || x1 as usize + 1 >= w || y1 as usize + 1 >= h;
                object.flags = (object.flags & !TRUNCATED) | if edge { TRUNCATED } else { 0 };
            }
            if part.overflow {
                object.flags |= crate::measure::flags::DEBLEND_OVERFLOW;
            }
            Measured {
                key: (part.runs[0].y, part.runs[0].x0),
                object,
                runs: part.runs,
            }
        })
        // DETECT_MAXAREA: objects of more pixels (after deblending, before cleaning,
        // as SExtractor's) are dropped.
        .filter(|m| p.maxarea.is_none_or(|a| m.object.npix as usize <= a))
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
