//! Detection of a strip: what a backend does to the rows of one strip (with the
//! kernel's halo rows above and below): background subtraction, filtering (or the
//! matched filter) and thresholding, and on the GPU union-find labelling. Both
//! backends return the strip's detections row by row ([`RowDetections`]); the
//! pipeline (`stream::scan`) joins them into objects. [`cpu`] runs the rows
//! in parallel with rayon, [`gpu`] on the device.

pub mod cpu;
pub mod gpu;

use crate::background::Background;

/// What a backend does to one strip: background subtraction, filtering (or the
/// matched filter) and thresholding, and on the GPU union-find labelling, giving the
/// strip's detections row by row. [`cpu::CpuStrips`] and [`gpu::GpuStrips`] implement
/// it; the pipeline hands each strip to one of them.
pub(crate) trait StripDetector {
    /// Detects rows `y0..y0 + rows` of `strip` (its rows read from row `sy0`, with the
    /// kernel's halo) into `dets`, one per strip row.
    fn detect_strip(
        &mut self,
        strip: &mut StripRows,
        strip_rows: (usize, usize),
        sy0: usize,
        dets: &mut Vec<RowDetections>,
    ) -> crate::Result<()>;
}

/// How the thresholds vary over the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PixelMode {
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

/// A strip as read: the raw rows with the halo, their mask flags, the strip rows'
/// threshold-image values and the noise map's rows with the halo.
pub(crate) struct StripRows {
    pub(crate) raw: Vec<f32>,
    pub(crate) mask: Option<Vec<bool>>,
    pub(crate) thresholds: Option<Vec<f32>>,
    pub(crate) noise: Option<Vec<f32>>,
    /// The flag maps' values of the strip's own rows, one vector per map.
    pub(crate) flags: Vec<Vec<f32>>,
    /// Dual-image mode: the measurement image's own rows of the strip, as read.
    pub(crate) meas: Option<Vec<f32>>,
}

/// The detection threshold of a strip's rows: one constant, or one per pixel of the
/// strip rows.
pub(crate) struct RowThresholds<'a> {
    pub(crate) constant: f32,
    pub(crate) per_pixel: Option<&'a [f32]>,
}

/// For strip rows `y0..y0 + rows` with per-pixel thresholds: the values objects carry
/// into `field` (the RMS rows when thresholds are relative to the RMS map, the
/// threshold image's rows `tvals`) and, relative to the RMS map, the thresholds k·rms
/// into `thr`. Other modes leave both as they are.
pub(crate) fn strip_fields(
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
pub(crate) fn strip_thresholds<'a>(mode: PixelMode, field: &'a [f32], thr: &'a [f32]) -> &'a [f32] {
    if mode == PixelMode::ThresholdImage {
        field
    } else {
        thr
    }
}

/// The detected pixels of one row, as a backend returns them: runs (columns
/// x0..x1); the filtered and unfiltered (background-subtracted) values of their
/// pixels, run after run; the columns of the saturated ones.
#[derive(Default)]
pub struct RowDetections {
    pub runs: Vec<(usize, usize)>,
    pub filtered: Vec<f32>,
    pub values: Vec<f32>,
    /// The per-pixel value objects carry at each detected pixel (the background RMS
    /// or the threshold image's value; empty with constant thresholds).
    pub field: Vec<f32>,
    /// The columns of the saturated detected pixels, ascending.
    pub saturated: Vec<usize>,
    /// Labelled on the device: each run's root, the linear index of its component's
    /// first pixel in the strip (see [`crate::gpu::GpuStrips::detect`]); empty on the CPU.
    pub roots: Vec<usize>,
    /// The flag maps' values of each detected pixel (one per map, pixel after pixel;
    /// empty without flag maps).
    pub flags: Vec<u32>,
    /// Dual-image mode: the measurement image's background-subtracted value of each
    /// detected pixel (empty otherwise).
    pub mvalues: Vec<f32>,
}

impl RowDetections {
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.filtered.clear();
        self.values.clear();
        self.field.clear();
        self.saturated.clear();
        self.roots.clear();
        self.flags.clear();
        self.mvalues.clear();
    }

    /// Detects the pixels of one row: valid (the subtracted value `sub` is not NaN),
    /// not masked, and filtered value above the threshold (a NaN filtered value, next
    /// to an invalid pixel, is not). `base` is the row's offset in the strip rows'
    /// per-pixel thresholds and `fields`; `saturated` the row's saturated columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn detect_row(
        &mut self,
        filtered: &[f32],
        sub: &[f32],
        mask: Option<&[bool]>,
        thresholds: &RowThresholds,
        base: usize,
        fields: Option<&[f32]>,
        saturated: &[usize],
    ) {
        let w = filtered.len();
        let on = |x: usize| {
            !sub[x].is_nan()
                && !mask.is_some_and(|m| m[x])
                && filtered[x]
                    > match thresholds.per_pixel {
                        Some(t) => t[base + x],
                        None => thresholds.constant,
                    }
        };
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
            self.runs.push((x0, x));
            self.filtered.extend_from_slice(&filtered[x0..x]);
            self.values.extend_from_slice(&sub[x0..x]);
            if let Some(f) = fields {
                self.field.extend_from_slice(&f[base + x0..base + x]);
            }
            self.saturated
                .extend(saturated.iter().filter(|&&sx| sx >= x0 && sx < x));
        }
    }
}
