//! Files: FITS and TIFF images, catalogs, and atomic writes.

pub mod catalog;
pub mod fits;
pub mod fits_table;
pub mod png;
pub mod regions;
pub mod tiff;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Reads an image from FITS (`file.fits`, `file.fits[N]`, `file.fits.gz`, tile-compressed)
/// or single-channel TIFF (`.tif`, `.tiff`).
pub fn read_image(spec: &str) -> Result<crate::image::Image> {
    let lower = spec.to_ascii_lowercase();
    if lower.ends_with(".tif") || lower.ends_with(".tiff") {
        tiff::read_tiff(Path::new(spec))
    } else {
        fits::read_fits_image(spec)
    }
}

/// A temporary path next to `path`, for writing before an atomic rename.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.{n}.skysift-tmp", std::process::id()))
}

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is
/// then renamed over `path`. On any error the temporary file is removed and `path`
/// is left untouched.
pub(crate) fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    check_writable(path)?;
    let tmp = temp_path(path);
    let _ = std::fs::remove_file(&tmp);
    let res = write(&tmp)
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e.to_string())));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Checks that `path` can be created: its folder exists and it is not a folder.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::output(path, "empty output path"));
    }
    if path.is_dir() {
        return Err(Error::output(path, "is a directory; give a file name"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::output(
            path,
            format!("the folder {} does not exist", parent.display()),
        ));
    }
    let md = std::fs::metadata(&parent).map_err(|e| Error::output(path, e.to_string()))?;
    if md.permissions().readonly() {
        return Err(Error::output(
            path,
            format!("the folder {} is read-only", parent.display()),
        ));
    }
    Ok(())
}
