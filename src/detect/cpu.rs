//! Detection of a strip on the CPU, the twin of [`super::gpu`]: the rows in parallel
//! (rayon), first the background subtraction, then filtering (or the matched filter's
//! S/N over the strip) and thresholding. A one-strip run on many cores is as parallel
//! as the rows of the image.

use super::{
    strip_fields, strip_thresholds, PixelMode, RowDetections, RowThresholds, StripDetector,
    StripRows,
};
use crate::background::Background;
use crate::convolve::convolve_row;
use crate::image::is_valid;
use crate::image::Image;
use crate::kernel::Kernel;
use rayon::prelude::*;

/// The CPU's strip detection, with its reusable row buffers.
pub(crate) struct CpuStrips<'a> {
    pub(crate) background: &'a Background,
    pub(crate) kernel: Option<&'a Kernel>,
    pub(crate) mode: PixelMode,
    /// Raw pixels at or above this level are saturated; not finite: none.
    pub(crate) satur: f32,
    /// The constant detection threshold (ADU, or S/N with the matched filter).
    pub(crate) thresh: f32,
    /// The background RMS of the strip rows and their halo (the matched filter's
    /// default noise).
    noise_rows: Vec<f32>,
    /// The per-pixel values objects carry for the strip rows (see `Comp::field`).
    field_rows: Vec<f32>,
    /// Per-pixel thresholds k·rms of the strip rows.
    thr_rows: Vec<f32>,
}

impl<'a> CpuStrips<'a> {
    pub(crate) fn new(
        background: &'a Background,
        kernel: Option<&'a Kernel>,
        mode: PixelMode,
        satur: f32,
        thresh: f32,
    ) -> Self {
        CpuStrips {
            background,
            kernel,
            mode,
            satur,
            thresh,
            noise_rows: Vec::new(),
            field_rows: Vec::new(),
            thr_rows: Vec::new(),
        }
    }
}

impl StripDetector for CpuStrips<'_> {
    /// The background is subtracted in `strip.raw`, which holds the subtracted rows
    /// afterwards.
    fn detect_strip(
        &mut self,
        strip: &mut StripRows,
        (y0, rows): (usize, usize),
        sy0: usize,
        dets: &mut Vec<RowDetections>,
    ) -> crate::Result<()> {
        let background = self.background;
        let w = background.shape().0;
        let sy1 = sy0 + strip.raw.len() / w;
        let matched = matches!(self.mode, PixelMode::Matched(_));
        let per_pixel = self.mode != PixelMode::Const;
        dets.resize_with(rows, RowDetections::default);
        dets.iter_mut().for_each(RowDetections::clear);
        let have_mask = strip.mask.is_some();
        let mbits: &[bool] = strip.mask.as_deref().unwrap_or(&[]);
        if matched {
            self.noise_rows.resize((sy1 - sy0) * w, 0.0);
            self.noise_rows
                .par_chunks_mut(w)
                .enumerate()
                .for_each(|(k, row)| background.rms_row(sy0 + k, row));
            // The background RMS of the strip rows, for the errors.
            self.field_rows.clear();
            self.field_rows
                .extend_from_slice(&self.noise_rows[(y0 - sy0) * w..(y0 - sy0 + rows) * w]);
            if let Some(n) = strip.noise.take() {
                self.noise_rows = n;
            }
        }
        strip_fields(
            self.mode,
            background,
            (y0, rows),
            strip.thresholds.take(),
            &mut self.field_rows,
            &mut self.thr_rows,
        );
        let sat_rows = subtract_rows(
            background,
            sy0,
            &mut strip.raw,
            strip.mask.as_deref(),
            self.satur,
        );
        let sub = Image::new(w, sy1 - sy0, std::mem::take(&mut strip.raw)).expect("strip shape");
        // The matched filter's S/N over the strip (its halo rows give the strip rows
        // their full kernel footprint).
        let snr = if matched {
            let noise_img = Image::new(w, sy1 - sy0, std::mem::take(&mut self.noise_rows))
                .expect("noise strip shape");
            let snr = matched_filter(&sub, &noise_img, have_mask.then_some(mbits), self.kernel);
            self.noise_rows = noise_img.into_data();
            Some(snr)
        } else {
            None
        };
        // Filtering and thresholding, rows in parallel.
        let row_thresholds = RowThresholds {
            constant: self.thresh,
            per_pixel: (per_pixel && !matched)
                .then(|| strip_thresholds(self.mode, &self.field_rows, &self.thr_rows)),
        };
        let fields = per_pixel.then_some(&self.field_rows[..]);
        let (sub_ref, snr_ref, sat_ref, kernel) = (&sub, snr.as_ref(), &sat_rows, self.kernel);
        dets.par_iter_mut().enumerate().for_each_init(
            || vec![0f32; w],
            |fbuf, (i, d)| {
                let ly = y0 + i - sy0;
                match (snr_ref, kernel) {
                    (Some(snr), _) => fbuf.copy_from_slice(snr.row(ly)),
                    (None, Some(k)) => convolve_row(sub_ref, k, ly, fbuf),
                    (None, None) => fbuf.copy_from_slice(sub_ref.row(ly)),
                }
                let mrow = have_mask.then(|| &mbits[ly * w..(ly + 1) * w]);
                d.detect_row(
                    fbuf,
                    sub_ref.row(ly),
                    mrow,
                    &row_thresholds,
                    i * w,
                    fields,
                    &sat_ref[ly],
                );
            },
        );
        strip.raw = sub.into_data();
        Ok(())
    }
}

/// Subtracts the background from the whole image rows `y0..` in `rows`, in place and
/// rows in parallel (see [`subtract_row`]); returns each row's saturated columns.
pub(crate) fn subtract_rows(
    background: &Background,
    y0: usize,
    rows: &mut [f32],
    mask: Option<&[bool]>,
    satur: f32,
) -> Vec<Vec<usize>> {
    let w = background.shape().0;
    rows.par_chunks_mut(w)
        .enumerate()
        .map_init(
            || vec![0f32; w],
            |back, (k, row)| {
                let mrow = mask.map(|m| &m[k * w..(k + 1) * w]);
                subtract_row(background, y0 + k, row, mrow, satur, back)
            },
        )
        .collect()
}

/// Subtracts the background from image row `y` in place: invalid pixels (NaN, Inf,
/// <= -1e30) become NaN, masked pixels 0; returns the columns of the saturated pixels
/// (>= `satur` before subtraction). `back` is a scratch row.
fn subtract_row(
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
