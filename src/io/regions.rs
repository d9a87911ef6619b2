//! DS9 region files: one ellipse per object (3·A by 3·B at THETA, the isophotal
//! extent SExtractor's ellipse parameters describe), in 1-based image coordinates.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes the catalog's ellipses as a DS9 region file, atomically.
pub fn write_regions(path: &Path, cat: &Catalog) -> Result<()> {
    let mut w = RegionWriter::create(path)?;
    for o in &cat.objects {
        w.write(o)?;
    }
    w.finish()
}

/// A DS9 region file written object by object (streamed runs), under a temporary
/// name renamed over the path by `finish`; dropped unfinished, it leaves no file.
pub struct RegionWriter {
    path: std::path::PathBuf,
    tmp: super::output::TempFile,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl RegionWriter {
    pub fn create(path: &Path) -> Result<RegionWriter> {
        let tmp = super::output::TempFile::new(path)?;
        let ioerr = |e: std::io::Error| Error::output(path, e.to_string());
        let f = std::fs::File::create(tmp.path()).map_err(ioerr)?;
        let mut w = RegionWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::new(f)),
        };
        let out = w.out.as_mut().expect("just opened");
        writeln!(out, "# Region file format: DS9 version 4.1").map_err(ioerr)?;
        writeln!(
            out,
            "# skysift: ellipses of 3 A_IMAGE x 3 B_IMAGE at THETA_IMAGE; deblended objects in red"
        )
        .map_err(ioerr)?;
        writeln!(
            out,
            "global color=green width=1 font=\"helvetica 9 normal roman\""
        )
        .map_err(ioerr)?;
        writeln!(out, "image").map_err(ioerr)?;
        Ok(w)
    }

    /// Appends one object's ellipse.
    pub fn write(&mut self, o: &crate::measure::Object) -> Result<()> {
        let path = &self.path;
        let ioerr = |e: std::io::Error| Error::output(path, e.to_string());
        let colour = if o.flags & crate::measure::flags::MERGED != 0 {
            " color=red"
        } else {
            ""
        };
        writeln!(
            self.out.as_mut().expect("open until finished"),
            "ellipse({:.3},{:.3},{:.3},{:.3},{:.2}) # text={{{}}}{}",
            o.x + 1.0,
            o.y + 1.0,
            3.0 * o.a,
            3.0 * o.b,
            o.theta,
            o.number,
            colour
        )
        .map_err(ioerr)
    }

    /// Flushes the file and puts it in place.
    pub fn finish(mut self) -> Result<()> {
        let ioerr = |e: std::io::Error| Error::output(&self.path, e.to_string());
        let mut out = self.out.take().expect("open until finished");
        out.flush().map_err(ioerr)?;
        drop(out);
        // Dropped unfinished, the temporary is removed.
        self.tmp.finish()
    }
}

/// The pixels of an ellipse outline (3·A, 3·B, THETA) around an object, in 0-based
/// image coordinates, clipped to the image.
pub fn ellipse_outline(
    o: &crate::measure::Object,
    width: usize,
    height: usize,
) -> Vec<(usize, usize)> {
    let (a, b) = (3.0 * o.a, 3.0 * o.b);
    let t = o.theta.to_radians();
    let steps = ((2.0 * std::f64::consts::PI * a).ceil() as usize * 2).clamp(16, 100_000);
    let mut out = Vec::with_capacity(steps);
    for k in 0..steps {
        let u = 2.0 * std::f64::consts::PI * k as f64 / steps as f64;
        let (ex, ey) = (a * u.cos(), b * u.sin());
        let x = o.x + ex * t.cos() - ey * t.sin();
        let y = o.y + ex * t.sin() + ey * t.cos();
        let (xi, yi) = (x.round(), y.round());
        if xi >= 0.0 && yi >= 0.0 && (xi as usize) < width && (yi as usize) < height {
            out.push((xi as usize, yi as usize));
        }
    }
    out
}
