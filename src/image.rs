//! Images: row-major `f32` pixels with their shape, and masks.

use crate::error::{Error, Result};

/// Pixels at or below this value are invalid (SExtractor's `-BIG`).
pub const BIG: f32 = 1e30;

/// A 2-D image, row-major (`data[y * width + x]`), 0-based coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Image {
    /// Wraps `data` (row-major) as a `width` x `height` image.
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::EmptyImage(format!(
                "image has no pixels ({width}x{height})"
            )));
        }
        if width.checked_mul(height) != Some(data.len()) {
            return Err(Error::Mismatch(format!(
                "image data holds {} pixels, but its shape {width}x{height} needs {}",
                data.len(),
                width.saturating_mul(height)
            )));
        }
        Ok(Image {
            width,
            height,
            data,
        })
    }

    /// An image of one constant value.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Image {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Pixel at (x, y), 0-based.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }
    /// Row `y`.
    pub fn row(&self, y: usize) -> &[f32] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
    pub fn shape_string(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// Whether a pixel value counts as valid data (not NaN or infinite, not <= -1e30).
#[inline]
pub fn is_valid(v: f32) -> bool {
    v.is_finite() && v > -BIG
}

/// A boolean mask: `true` = masked (bad) pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    width: usize,
    height: usize,
    bad: Vec<bool>,
}

impl Mask {
    /// Builds a mask from a mask image: pixels with value > `thresh` are masked
    /// (SExtractor's and SEP's `maskthresh` convention); NaN mask pixels are masked too.
    pub fn from_image(img: &Image, thresh: f32) -> Self {
        Mask {
            width: img.width(),
            height: img.height(),
            bad: img
                .data()
                .iter()
                .map(|&v| v.is_nan() || v > thresh)
                .collect(),
        }
    }
    /// A mask from booleans, row-major.
    pub fn new(width: usize, height: usize, bad: Vec<bool>) -> Result<Self> {
        if width * height != bad.len() {
            return Err(Error::Mismatch(format!(
                "mask data holds {} pixels, but its shape {width}x{height} needs {}",
                bad.len(),
                width * height
            )));
        }
        Ok(Mask { width, height, bad })
    }
    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn is_masked(&self, x: usize, y: usize) -> bool {
        self.bad[y * self.width + x]
    }
    pub fn data(&self) -> &[bool] {
        &self.bad
    }
    /// Number of masked pixels.
    pub fn count(&self) -> usize {
        self.bad.iter().filter(|&&b| b).count()
    }
}

/// What the values of a side image must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRule {
    /// A noise (RMS) map: > 0 (NaN marks a bad pixel).
    Positive,
    /// A threshold image: >= 0 ADU above the background (NaN marks a bad pixel).
    NonNegative,
}

/// Checks the values of rows `y0..` of a side image (`data`, rows of `width`) against
/// `rule`; the error names the file, the first offending pixel (1-based) and its value.
pub fn check_values(
    path: &std::path::Path,
    what: &str,
    rule: ValueRule,
    data: &[f32],
    width: usize,
    y0: usize,
) -> Result<()> {
    let bad = |v: f32| match rule {
        ValueRule::Positive => !(v.is_nan() || (v > 0.0 && v.is_finite())),
        ValueRule::NonNegative => !(v.is_nan() || (v >= 0.0 && v.is_finite())),
    };
    if let Some(i) = data.iter().position(|&v| bad(v)) {
        let need = match rule {
            ValueRule::Positive => "an RMS must be > 0 and finite (NaN marks a bad pixel)",
            ValueRule::NonNegative => {
                "a threshold must be >= 0 ADU above the background and finite (NaN marks a bad pixel)"
            }
        };
        return Err(Error::input(
            path,
            format!(
                "the {what} has the value {} at pixel ({}, {}): {need}",
                data[i],
                i % width.max(1) + 1,
                y0 + i / width.max(1) + 1
            ),
        ));
    }
    Ok(())
}
