//! Filtering of the background-subtracted image with the detection kernel.
//!
//! A correlation, `out[y][x] = Σ k[j][i] · in[y + j − kh/2][x + i − kw/2]`, with the
//! kernel truncated at the image edges (zero padding, no renormalisation), as
//! SExtractor does. Masked pixels enter as 0 (they are 0 in the subtracted image);
//! invalid pixels are NaN there, and make every filtered pixel whose kernel footprint
//! touches one NaN, never detected, as in SExtractor ([`invalid_spread`] counts them).
//! Rows run in parallel.

use crate::image::Image;
use crate::kernel::Kernel;
use rayon::prelude::*;

/// Convolves `img` with `kernel` (see the module docs).
pub fn convolve(img: &Image, kernel: &Kernel) -> Image {
    let (w, h) = (img.width(), img.height());
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w)
        .enumerate()
        .for_each(|(y, orow)| convolve_row(img, kernel, y, orow));
    Image::new(w, h, out).expect("shape is consistent")
}

/// A pixel the pipeline treats as invalid: NaN, ±Inf, or at or below -1e30
/// (SExtractor's convention for bad pixels).
#[inline]
pub fn is_invalid(v: f32) -> bool {
    !v.is_finite() || v <= -1e30
}

/// How filtering spreads invalid pixels, over rows `core` of `rows` (row-major, `w`
/// wide; rows outside `core` are a strip's halo): (invalid pixels in `core`, pixels of
/// `core` whose `kw` x `kh` footprint touches an invalid pixel). (0, 0) at once when
/// no pixel is invalid.
pub fn invalid_spread(
    rows: &[f32],
    w: usize,
    core: std::ops::Range<usize>,
    kw: usize,
    kh: usize,
) -> (u64, u64) {
    let h = rows.len() / w.max(1);
    let row = |y: usize| &rows[y * w..(y + 1) * w];
    let bad_rows: Vec<bool> = (0..h)
        .into_par_iter()
        .map(|y| row(y).iter().any(|&v| is_invalid(v)))
        .collect();
    if !bad_rows.iter().any(|&b| b) {
        return (0, 0);
    }
    let (cx, cy) = (kw / 2, kh / 2);
    core.into_par_iter()
        .map_init(
            || (vec![false; w], vec![0u32; w + 1]),
            |(col, prefix), y| {
                let invalid = row(y).iter().filter(|&&v| is_invalid(v)).count() as u64;
                // Columns with an invalid pixel within the footprint's rows...
                col.fill(false);
                let (j0, j1) = (y.saturating_sub(cy), (y + kh - cy).min(h));
                for j in (j0..j1).filter(|&j| bad_rows[j]) {
                    for (c, &v) in col.iter_mut().zip(row(j)) {
                        *c |= is_invalid(v);
                    }
                }
                // ...then any of them within the footprint's columns.
                for x in 0..w {
                    prefix[x + 1] = prefix[x] + col[x] as u32;
                }
                let poisoned = (0..w)
                    .filter(|&x| {
                        let (i0, i1) = (x.saturating_sub(cx), (x + kw - cx).min(w));
                        prefix[i1] > prefix[i0]
                    })
                    .count() as u64;
                (invalid, poisoned)
            },
        )
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// A notice when filtering made many more pixels invalid than the image had: a
/// scattered-NaN image loses its detections (SExtractor's behaviour, kept).
pub fn invalid_spread_notice(
    image: &str,
    invalid: u64,
    poisoned: u64,
    pixels: u64,
) -> Option<String> {
    let frac = poisoned as f64 / pixels.max(1) as f64;
    (frac > 0.1 && poisoned as f64 > 1.5 * invalid as f64).then(|| {
        format!(
            "skysift: notice: {:.0}% of the filtered pixels of {image} are invalid ({:.1}% of its \
             pixels are NaN, Inf or <= -1e30, and the detection filter spreads each one over its \
             footprint, as in SExtractor), so objects there cannot be detected; use --filter none, \
             or interpolate over the bad pixels first, with a --mask marking them (README: Bad pixels)",
            100.0 * frac,
            100.0 * invalid as f64 / pixels.max(1) as f64
        )
    })
}

/// Row `y` of the convolution of `img` with `kernel`, into `out` (length = width).
pub fn convolve_row(img: &Image, kernel: &Kernel, y: usize, out: &mut [f32]) {
    let (w, h) = (img.width(), img.height());
    let (kw, kh) = (kernel.width(), kernel.height());
    let (cx, cy) = ((kw / 2) as isize, (kh / 2) as isize);
    let k = kernel.data();
    let src = img.data();
    out.fill(0.0);
    for j in 0..kh {
        let sy = y as isize + j as isize - cy;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        let srow = &src[sy as usize * w..(sy as usize + 1) * w];
        for i in 0..kw {
            let c = k[j * kw + i];
            if c == 0.0 {
                continue;
            }
            let dx = i as isize - cx;
            // Output x range whose source x + dx is inside [0, w).
            let x0 = (-dx).max(0) as usize;
            let x1 = (w as isize - dx).min(w as isize).max(0) as usize;
            if x0 >= x1 {
                continue;
            }
            let s = &srow[(x0 as isize + dx) as usize..(x1 as isize + dx) as usize];
            for (o, &v) in out[x0..x1].iter_mut().zip(s) {
                *o += c * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_source_spreads_into_the_kernel_and_truncates_at_edges() {
        let mut data = vec![0.0f32; 25];
        data[2 * 5 + 2] = 16.0; // centre of a 5x5 image
        data[0] = 16.0; // corner
        let img = Image::new(5, 5, data).unwrap();
        let out = convolve(&img, &Kernel::default_3x3());
        // Centre: 4/16·16 = 4; its side neighbours 2; diagonal 1.
        assert_eq!(out.get(2, 2), 4.0);
        assert_eq!(out.get(1, 2), 2.0);
        assert_eq!(out.get(1, 1), 1.0 + 1.0); // diagonal of centre + diagonal of corner
                                              // The corner keeps only the in-image part of the kernel: 4 at (0,0).
        assert_eq!(out.get(0, 0), 4.0);
        assert_eq!(out.get(4, 4), 0.0);
    }

    #[test]
    fn asymmetric_kernel_is_a_correlation() {
        // Kernel [0 0 1] (not normalised): out[x] = in[x + 1].
        let k = Kernel::new(3, 1, vec![0.0, 0.0, 1.0], false).unwrap();
        let img = Image::new(4, 1, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let out = convolve(&img, &k);
        assert_eq!(out.data(), &[2.0, 3.0, 4.0, 0.0]);
    }
}
