//! Filtering of the background-subtracted image with the detection kernel.
//!
//! A correlation, `out[y][x] = Σ k[j][i] · in[y + j − kh/2][x + i − kw/2]`, with the
//! kernel truncated at the image edges (zero padding, no renormalisation), as
//! SExtractor does. Invalid and masked pixels enter as 0. Rows run in parallel.

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
