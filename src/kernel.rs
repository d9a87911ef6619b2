//! Detection kernels: SExtractor's default 3x3, Gaussians from a FWHM, SExtractor
//! `.conv` files and plain-text (numpy.loadtxt layout) kernels.
//!
//! A kernel is applied as a correlation centred on element (width/2, height/2).
//! Normalised kernels are divided by the sum of their absolute values.

use crate::error::{Error, Result};
use std::path::Path;

/// A detection kernel, row-major, already normalised if it is to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Kernel {
    /// Builds a kernel; with `normalise`, divides it by the sum of |k|.
    pub fn new(width: usize, height: usize, data: Vec<f64>, normalise: bool) -> Result<Self> {
        if width == 0 || height == 0 || width * height != data.len() {
            return Err(Error::param(
                "FILTER_NAME",
                format!("{width}x{height} kernel with {} values", data.len()),
                "a kernel needs width x height values",
            ));
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::param(
                "FILTER_NAME",
                "kernel",
                "kernel values must be finite",
            ));
        }
        let mut data = data;
        let mut norm: f64 = if normalise {
            data.iter().map(|v| v.abs()).sum()
        } else {
            1.0
        };
        if norm.is_infinite() {
            // Values near 1e308 whose sum overflows: scaled by the largest first.
            let big = data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            data.iter_mut().for_each(|v| *v /= big);
            norm = data.iter().map(|v| v.abs()).sum();
        }
        if norm == 0.0 || data.iter().all(|&v| v == 0.0) {
            return Err(Error::param(
                "FILTER_NAME",
                "kernel",
                "all kernel values are zero",
            ));
        }
        let data: Vec<f32> = data.iter().map(|v| (v / norm) as f32).collect();
        if data.iter().any(|v| v.is_infinite()) {
            return Err(Error::param(
                "FILTER_NAME",
                "kernel",
                "kernel values must be within ±3.4e38 (32-bit floats); scale the kernel down",
            ));
        }
        Ok(Kernel {
            width,
            height,
            data,
        })
    }

    /// SExtractor's default kernel `1 2 1 / 2 4 2 / 1 2 1` (a FWHM of 2 pixels), normalised.
    pub fn default_3x3() -> Self {
        Kernel {
            width: 3,
            height: 3,
            data: [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]
                .iter()
                .map(|v| v / 16.0)
                .collect(),
        }
    }

    /// A circular Gaussian of the given FWHM (pixels) sampled at pixel centres on a
    /// (2·ceil(FWHM)+1)² grid, normalised.
    pub fn gaussian(fwhm: f64) -> Result<Self> {
        if !(fwhm >= 0.01 && fwhm <= 64.0) {
            return Err(Error::param(
                "FILTER_FWHM",
                fwhm,
                "the FWHM must be between 0.01 and 64 pixels",
            ));
        }
        let r = fwhm.ceil() as i64;
        let n = (2 * r + 1) as usize;
        let sigma = fwhm / (2.0 * (2.0 * std::f64::consts::LN_2).sqrt());
        let mut data = Vec::with_capacity(n * n);
        for y in -r..=r {
            for x in -r..=r {
                data.push((-((x * x + y * y) as f64) / (2.0 * sigma * sigma)).exp());
            }
        }
        Kernel::new(n, n, data, true)
    }

    /// Reads a SExtractor `.conv` file (first line `CONV NORM` or `CONV NONORM`) or a
    /// plain-text kernel (rows of numbers separated by blanks or commas, `#` comments,
    /// as `numpy.loadtxt` reads; normalised).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, format!("cannot read kernel file: {e}")))?;
        Self::parse(&text).map_err(|reason| Error::input(path, reason))
    }

    /// Parses kernel text (see [`Kernel::from_file`]).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut normalise = true;
        let mut header_seen = false;
        // (line number from 1, values) of each row of numbers.
        let mut rows: Vec<(usize, Vec<f64>)> = Vec::new();
        let mut total = 0usize;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            // The CONV header, on the first line that is not blank.
            if !header_seen && rows.is_empty() && content.starts_with("CONV") {
                header_seen = true;
                normalise = !content.contains("NONORM");
                continue;
            }
            let mut row = Vec::new();
            for tok in content.split(|c: char| c.is_whitespace() || c == ',') {
                if tok.is_empty() {
                    continue;
                }
                let v: f64 = tok
                    .parse()
                    .map_err(|_| format!("kernel line {n}: '{tok}' is not a number"))?;
                if !v.is_finite() {
                    return Err(format!("kernel line {n}: '{tok}' is not a finite number"));
                }
                row.push(v);
            }
            total += row.len();
            if total > 1024 * 1024 {
                return Err(format!(
                    "the kernel has more than 1048576 values (line {n}); at most 1048576 are allowed"
                ));
            }
            if let Some((n0, first)) = rows.first() {
                if row.len() != first.len() {
                    return Err(format!(
                        "kernel line {n} has {} values but line {n0} has {}: every row needs the same number",
                        row.len(),
                        first.len()
                    ));
                }
            }
            rows.push((n, row));
        }
        if rows.is_empty() {
            return Err("the kernel file holds no numbers".into());
        }
        let width = rows[0].1.len();
        let height = rows.len();
        let data: Vec<f64> = rows.into_iter().flat_map(|(_, r)| r).collect();
        Kernel::new(width, height, data, normalise).map_err(|e| e.to_string())
    }

    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    /// Row-major coefficients.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}
