//! Files: FITS and TIFF images, catalogs, and atomic writes.

pub mod catalog;
pub mod fits;
pub mod fits_table;
pub mod output;
pub mod png;
pub mod regions;
pub mod tiff;

use crate::error::{Error, Result};
use std::path::Path;

/// Whether an input is read as TIFF (its name ends in `.tif` or `.tiff`, any case).
pub fn is_tiff(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    lower.ends_with(".tif") || lower.ends_with(".tiff")
}

/// Reads an image from FITS (`file.fits`, `file.fits[N]`, `file.fits.gz`, tile-compressed)
/// or single-channel TIFF (`.tif`, `.tiff`).
pub fn read_image(spec: &str) -> Result<crate::image::Image> {
    if is_tiff(spec) {
        tiff::read_tiff(Path::new(spec))
    } else {
        fits::read_fits_image(spec)
    }
}

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is
/// then put in place (see [`output::TempFile`]: at once, or with the other outputs of
/// an open [`output::OutputBatch`]). On any error the temporary file is removed and
/// `path` is left untouched.
pub(crate) fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let tmp = output::TempFile::new(path)?;
    write(tmp.path())?;
    tmp.finish()
}

pub use output::check_writable;

/// The memory available to a new allocation (MemAvailable of /proc/meminfo, and the
/// cgroup's limit when lower), in bytes; None where unknown.
/// Refuses a whole-image read that would not fit in memory (`bytes` to hold it);
/// `fix` says what to do instead.
pub(crate) fn check_memory(
    path: &Path,
    width: usize,
    height: usize,
    bytes: f64,
    fix: &str,
) -> Result<()> {
    if let Some(avail) = mem_available() {
        if bytes > avail {
            return Err(Error::input(
                path,
                format!(
                    "a {width}x{height} image needs {:.1} GiB in memory, more than the {:.1} GiB available: {fix}",
                    bytes / 1073741824.0,
                    avail / 1073741824.0
                ),
            ));
        }
    }
    Ok(())
}

pub fn mem_available() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let mut avail = avail_kb * 1024.0;
    // cgroup v2: memory.max minus memory.current.
    if let (Ok(max), Ok(cur)) = (
        std::fs::read_to_string("/sys/fs/cgroup/memory.max"),
        std::fs::read_to_string("/sys/fs/cgroup/memory.current"),
    ) {
        if let (Ok(max), Ok(cur)) = (max.trim().parse::<f64>(), cur.trim().parse::<f64>()) {
            avail = avail.min((max - cur).max(0.0));
        }
    }
    Some(avail)
}
