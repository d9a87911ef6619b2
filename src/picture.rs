//! Pictures (PNG) of an extraction, because people look at images before they read
//! tables: the data with an asinh stretch, the background and RMS maps, the
//! segmentation (one colour per object) and the sources with their ellipses
//! (3·A by 3·B at THETA, as the Galaxy tool draws them).

use crate::catalog::Catalog;
use crate::image::Image;
use crate::label::Segmentation;

/// An 8-bit RGB picture, row-major, top row first.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    fn grey(width: usize, height: usize, levels: impl Iterator<Item = u8>) -> Self {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for g in levels {
            rgb.extend_from_slice(&[g, g, g]);
        }
        Picture { width, height, rgb }.flipped()
    }

    /// FITS rows go bottom-up (y = 0 is the bottom row in DS9); PNG rows top-down.
    fn flipped(mut self) -> Self {
        let row = self.width * 3;
        let mut out = Vec::with_capacity(self.rgb.len());
        for y in (0..self.height).rev() {
            out.extend_from_slice(&self.rgb[y * row..(y + 1) * row]);
        }
        self.rgb = out;
        self
    }

    fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        // (x, y) in image coordinates (y up).
        let yy = self.height - 1 - y;
        let k = (yy * self.width + x) * 3;
        self.rgb[k..k + 3].copy_from_slice(&c);
    }
}

fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The image with an asinh stretch: black at −1σ below the sky (`sigma` = the
/// background RMS, `img` background-subtracted), white at the 99.8th percentile.
pub fn data_asinh(img: &Image, sigma: f64) -> Picture {
    let mut finite: Vec<f32> = img
        .data()
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let step = (finite.len() / 200_000).max(1);
    let mut sample: Vec<f32> = finite.iter().step_by(step).copied().collect();
    finite.clear();
    sample.sort_by(|a, b| a.total_cmp(b));
    let lo = -sigma;
    let hi = (percentile(&sample, 0.998) as f64).max(lo + 10.0 * sigma);
    let soft = sigma.max(1e-30);
    let f = |v: f64| ((v - lo) / soft).asinh();
    let (flo, fhi) = (f(lo), f(hi));
    let levels = img.data().iter().map(|&v| {
        if !v.is_finite() {
            return 0;
        }
        let t = ((f((v as f64).clamp(lo, hi)) - flo) / (fhi - flo)).clamp(0.0, 1.0);
        (t * 255.0).round() as u8
    });
    Picture::grey(img.width(), img.height(), levels)
}

/// A map (background, RMS) with a linear stretch from its minimum to its maximum.
pub fn linear(img: &Image) -> Picture {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in img.data().iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let levels = img.data().iter().map(|&v| {
        if v.is_finite() {
            (((v - lo) / span) * 255.0).round() as u8
        } else {
            0
        }
    });
    Picture::grey(img.width(), img.height(), levels)
}

/// A bright colour for label `k`, spread around the hue circle (golden-ratio steps).
fn label_colour(k: u32) -> [u8; 3] {
    let h = (k as f64 * 0.618_033_988_75).fract() * 6.0;
    let (s, v) = (0.75, 1.0);
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [
        ((r + m) * 255.0) as u8,
        ((g + m) * 255.0) as u8,
        ((b + m) * 255.0) as u8,
    ]
}

/// The segmentation: black sky, one colour per object.
pub fn segmentation(seg: &Segmentation) -> Picture {
    let (w, h) = (seg.width(), seg.height());
    let mut p = Picture {
        width: w,
        height: h,
        rgb: vec![0; w * h * 3],
    };
    for k in 0..seg.len() {
        let c = label_colour(k as u32 + 1);
        for r in seg.object(k) {
            for x in r.x0..r.x1 {
                p.set(x as usize, r.y as usize, c);
            }
        }
    }
    p
}

/// The data (asinh stretch) with each object's ellipse, 3·A by 3·B at THETA: green,
/// or red for deblended objects.
pub fn sources(img: &Image, sigma: f64, cat: &Catalog) -> Picture {
    let mut p = data_asinh(img, sigma);
    for o in &cat.objects {
        let c = if o.flags & crate::measure::flags::MERGED != 0 {
            [255, 60, 60]
        } else {
            [60, 255, 60]
        };
        for (x, y) in crate::io::regions::ellipse_outline(o, p.width, p.height) {
            p.set(x, y, c);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_sky_dark_and_peaks_white_and_flips_rows() {
        let mut d = vec![0f32; 16];
        d[0] = 1000.0; // bottom-left pixel in image coordinates
        let img = Image::new(4, 4, d).unwrap();
        let p = data_asinh(&img, 1.0);
        // Bottom-left of the image is the first pixel of the last PNG row.
        assert_eq!(p.rgb[(3 * 4) * 3], 255);
        assert!(p.rgb[0] < 80 && p.rgb[0] > 0, "sky {}", p.rgb[0]);
    }

    #[test]
    fn label_colours_differ() {
        assert_ne!(label_colour(1), label_colour(2));
        assert_ne!(label_colour(2), label_colour(3));
    }
}
