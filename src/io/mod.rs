//! Files: FITS and TIFF images, catalogs, and atomic writes.

pub mod catalog;
pub mod fits;
pub mod fits_table;
pub mod output;
pub mod png;
pub mod regions;
pub mod tiff;
pub mod votable;
pub mod xml;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

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

/// The memory available to a new allocation (MemAvailable of /proc/meminfo, and the
/// cgroup's limit when lower), in bytes; None where unknown.
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

/// The pixel count of a FITS image from its header (None for TIFF or unreadable).
pub(crate) fn image_pixels(image: &str) -> Option<f64> {
    use crate::stream::RowSource;
    if is_tiff(image) {
        return None;
    }
    let rows = fits::FitsRows::open(image).ok()?;
    Some((rows.width() * rows.height()) as f64)
}

/// A FITS file opened for reading row by row, if named.
pub(crate) fn open_rows(path: &Option<String>) -> Result<Option<crate::io::fits::FitsRows>> {
    path.as_deref()
        .map(crate::io::fits::FitsRows::open)
        .transpose()
}

/// A side image read row by row whose values are checked as they come (a noise map
/// must be positive, a threshold image non-negative).
pub(crate) struct CheckedRows {
    rows: crate::io::fits::FitsRows,
    path: PathBuf,
    what: &'static str,
    rule: crate::image::ValueRule,
}

impl crate::stream::RowSource for CheckedRows {
    fn width(&self) -> usize {
        self.rows.width()
    }
    fn height(&self) -> usize {
        self.rows.height()
    }
    fn name(&self) -> Option<String> {
        self.rows.name()
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        self.rows.read_rows(y0, n, out)?;
        crate::image::check_values(&self.path, self.what, self.rule, out, self.rows.width(), y0)
    }
}

/// [`open_rows`] with the values checked.
pub(crate) fn open_checked(
    path: &Option<String>,
    what: &'static str,
    rule: crate::image::ValueRule,
) -> Result<Option<CheckedRows>> {
    Ok(open_rows(path)?.map(|rows| CheckedRows {
        rows,
        path: crate::io::fits::file_of(path.as_deref().unwrap_or_default()),
        what,
        rule,
    }))
}

/// A whole side image, read and its values checked.
pub(crate) fn read_checked(
    path: &str,
    what: &'static str,
    rule: crate::image::ValueRule,
) -> Result<crate::Image> {
    let img = read_image(path)?;
    crate::image::check_values(&fits::file_of(path), what, rule, img.data(), img.width(), 0)?;
    Ok(img)
}

/// The threshold image and the noise map of a whole-image run, read and their values
/// checked.
pub(crate) fn read_side_images(
    threshold: &Option<String>,
    noise: &Option<String>,
) -> Result<(Option<crate::Image>, Option<crate::Image>)> {
    use crate::image::ValueRule;
    let read = |f: &Option<String>, what, rule| f.as_deref().map(|f| read_checked(f, what, rule));
    Ok((
        read(threshold, "threshold image", ValueRule::NonNegative).transpose()?,
        read(noise, "noise image", ValueRule::Positive).transpose()?,
    ))
}

/// The threshold image and the noise map of a streamed run, read row by row with
/// their values checked.
pub(crate) fn open_side_rows(
    threshold: &Option<String>,
    noise: &Option<String>,
) -> Result<(Option<CheckedRows>, Option<CheckedRows>)> {
    use crate::image::ValueRule;
    Ok((
        open_checked(threshold, "threshold image", ValueRule::NonNegative)?,
        open_checked(noise, "noise image", ValueRule::Positive)?,
    ))
}
