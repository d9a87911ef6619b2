//! Planning a run: how many rows a strip holds under a memory limit, when an image is
//! too large for a whole-image run (and is streamed instead), how many detected pixels
//! objects not complete yet may hold, and whether the next image may be read ahead.
//!
//! The byte costs are per image pixel of a strip (or of the image, for whole-image
//! runs), measured with the peak resident memory of streamed and whole runs
//! (docs/benchmarks.md).

use crate::pipeline::Extractor;

/// The strip being detected: its rows (subtracted in place) and their filtered
/// values, f32, with the per-row detections.
pub const STRIP_BYTES: f64 = 12.0;
/// The next strip, read ahead on the reader thread: its rows and mask flags.
pub const READ_AHEAD_BYTES: f64 = 5.0;
/// On the GPU, one more strip is in flight: the device detects it while the rows of
/// the previous one are joined.
pub const IN_FLIGHT_BYTES: f64 = 5.0;
/// A software adapter (lavapipe) keeps its device buffers in this process's memory:
/// raw, subtracted, filtered and label rows.
pub const SOFTWARE_DEVICE_BYTES: f64 = 16.0;
/// Thresholds that vary per pixel (RMS map, threshold image) add their rows to the
/// strip in flight on the GPU.
pub const VARYING_THRESHOLD_GPU_BYTES: f64 = 4.0;
/// The share of a memory limit that the strips take; the rest is for the objects not
/// complete yet and the catalog.
pub const STRIP_SHARE: f64 = 0.75;
/// The share of a memory limit that objects not complete yet may hold.
pub const OPEN_SHARE: f64 = 0.25;
/// Bytes per pixel held by an object not complete yet (filtered, unfiltered and
/// per-pixel values and runs: about 24) and, once complete, its deblending and
/// measurement (about 70 more).
pub const OPEN_PIXEL_BYTES: f64 = 96.0;
/// A whole-image run's working memory per image pixel (the image, subtracted in
/// place, and the detected pixels' values).
pub const WHOLE_RUN_BYTES: f64 = 6.0;
/// A whole-image run may take at most this share of the available memory; beyond it
/// the image is streamed.
pub const WHOLE_RUN_SHARE: f64 = 0.6;
/// An image streamed because it is too large gets this share of the available memory
/// as its limit, at most [`AUTO_LIMIT_MAX_MIB`].
pub const AUTO_LIMIT_SHARE: f64 = 0.25;
pub const AUTO_LIMIT_MAX_MIB: f64 = 1024.0;
/// Strip height of a streamed run given neither rows nor a memory limit.
pub const DEFAULT_STRIP_ROWS: usize = 256;
/// Bytes per image pixel of the next image read ahead while one is processed.
pub const READ_AHEAD_IMAGE_BYTES: f64 = 4.0;

const MIB: f64 = 1024.0 * 1024.0;

/// How a streamed run is cut: its strip height, the detected pixels objects not
/// complete yet may hold, and the rows of a block of check images written after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub strip_rows: usize,
    pub max_open_pixels: Option<usize>,
    /// Check images are written after the run in blocks of rows holding about as
    /// much as a strip (subtracted, filtered, map and segmentation rows: 24 bytes per
    /// pixel where a strip takes 17).
    pub check_rows: usize,
    /// Under a memory limit: the limit (MiB) and the rows the photometry pass's window
    /// may hold ([`PHOT_WINDOW_BYTES`] a pixel, in the strips' share of the limit).
    pub phot_window: Option<(f64, usize)>,
}

/// Bytes per pixel of the photometry pass's window of rows: the subtracted values,
/// the band being read and converted, the bad-pixel flags and the detected bits.
pub const PHOT_WINDOW_BYTES: f64 = 9.5;

/// A memory limit too small for one strip of the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TooSmall {
    /// The smallest limit (MiB) that holds one strip.
    pub need_mib: f64,
}

impl TooSmall {
    /// The smallest limit, printed with enough digits to be given back.
    pub fn need(&self) -> String {
        if self.need_mib < 10.0 {
            format!("{:.3}", self.need_mib.max(0.001))
        } else {
            format!("{}", self.need_mib.ceil())
        }
    }
}

/// Bytes per image pixel that a strip costs with this extractor's backend, with
/// thresholds that vary per pixel or not.
pub fn strip_bytes_per_pixel(e: &Extractor, varying_thresholds: bool) -> f64 {
    let mut bytes = STRIP_BYTES + READ_AHEAD_BYTES;
    if let Some(g) = &e.gpu {
        bytes += IN_FLIGHT_BYTES;
        if g.is_software() {
            bytes += SOFTWARE_DEVICE_BYTES;
        }
        if varying_thresholds {
            bytes += VARYING_THRESHOLD_GPU_BYTES;
        }
    }
    bytes
}

impl Plan {
    /// Strips of `strip_rows` rows, with no cap on the pixels of open objects.
    pub fn rows(strip_rows: usize) -> Plan {
        Plan {
            strip_rows,
            max_open_pixels: None,
            check_rows: (strip_rows * 17 / 24).max(1),
            phot_window: None,
        }
    }

    /// The plan for an image `width` pixels wide: `strip_rows` as given, else as many
    /// rows as [`STRIP_SHARE`] of `memory_limit_mib` holds, else
    /// [`DEFAULT_STRIP_ROWS`]. `varying_thresholds`: a threshold image, or thresholds
    /// relative to the RMS map.
    pub fn new(
        e: &Extractor,
        width: usize,
        varying_thresholds: bool,
        strip_rows: Option<usize>,
        memory_limit_mib: Option<f64>,
    ) -> std::result::Result<Plan, TooSmall> {
        let per_pixel = strip_bytes_per_pixel(e, varying_thresholds);
        let rows = match (strip_rows, memory_limit_mib) {
            (Some(r), _) => r,
            (None, Some(mib)) => {
                let r = (mib * MIB * STRIP_SHARE / (per_pixel * width as f64)).floor();
                if r.is_nan() || r < 1.0 {
                    return Err(TooSmall {
                        need_mib: per_pixel * width as f64 / STRIP_SHARE / MIB,
                    });
                }
                r as usize
            }
            (None, None) => DEFAULT_STRIP_ROWS,
        };
        Ok(Plan {
            max_open_pixels: memory_limit_mib
                .map(|mib| (mib * MIB * OPEN_SHARE / OPEN_PIXEL_BYTES).max(1.0) as usize),
            phot_window: memory_limit_mib.map(|mib| {
                let r = mib * MIB * STRIP_SHARE / (PHOT_WINDOW_BYTES * width as f64);
                (mib, (r.floor() as usize).max(1))
            }),
            ..Plan::rows(rows)
        })
    }

    /// [`Plan::new`] for the image `image` under the memory limit `limit`, a limit too
    /// small for one strip as the library's error: naming MEMORY_LIMIT when it was
    /// `given`, the image when it came from the machine's free memory.
    pub fn for_image(
        e: &Extractor,
        image: &str,
        width: usize,
        varying: bool,
        strip_rows: Option<usize>,
        limit: Option<f64>,
        given: bool,
    ) -> crate::Result<Plan> {
        Plan::new(e, width, varying, strip_rows, limit).map_err(|small| {
            let (need, mib) = (small.need(), limit.unwrap_or_default());
            if given {
                crate::Error::InvalidParam {
                    name: "MEMORY_LIMIT",
                    value: format!("{mib}"),
                    reason: format!(
                        "too small to hold one strip of this {width}-pixel-wide image; give at \
                         least {need} MiB"
                    ),
                }
            } else {
                crate::Error::Input {
                    path: crate::io::fits::file_of(image),
                    reason: format!(
                        "the image is {width} pixels wide: one row strip needs {need} MiB, more \
                         than the {mib:.0} MiB this machine's free memory allows; free memory \
                         or give --memory-limit {need}"
                    ),
                }
            }
        })
    }
}

/// Whether thresholds vary per pixel: a threshold image, or thresholds relative to
/// the background RMS map.
pub fn varying_thresholds(e: &Extractor, threshold_image: bool) -> bool {
    threshold_image
        || (e.extract.rms_source == crate::RmsSource::Map
            && e.extract.thresh_type == crate::ThreshType::Relative)
}

/// For an image of `pixels` pixels whose whole-image run would need more than
/// [`WHOLE_RUN_SHARE`] of the `avail` bytes of available memory, the memory limit
/// (MiB) to stream it with; None when a whole-image run fits.
pub fn auto_memory_limit(pixels: f64, avail: f64) -> Option<f64> {
    (pixels * WHOLE_RUN_BYTES > WHOLE_RUN_SHARE * avail)
        .then(|| (avail * AUTO_LIMIT_SHARE / MIB).min(AUTO_LIMIT_MAX_MIB))
}

/// Whether the next image may be read while one is processed: the largest of the
/// images (`pixels`; None for an image of unknown size) fits twice over with its
/// working memory in [`WHOLE_RUN_SHARE`] of the available memory `avail`.
pub fn can_read_ahead(pixels: impl Iterator<Item = Option<f64>>, avail: Option<f64>) -> bool {
    let Some(avail) = avail else {
        return false;
    };
    let mut largest = 0.0f64;
    for p in pixels {
        match p {
            Some(p) => largest = largest.max(p),
            None => return false,
        }
    }
    largest * (WHOLE_RUN_BYTES + READ_AHEAD_IMAGE_BYTES) <= WHOLE_RUN_SHARE * avail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_are_streamed_small_ones_are_not() {
        let gib = 1024.0 * MIB;
        assert_eq!(auto_memory_limit(8192.0 * 8192.0, 24.0 * gib), None);
        // 65536² needs ≈ 26 GB: streamed, with a 1 GiB limit.
        assert_eq!(
            auto_memory_limit(65536.0 * 65536.0, 24.0 * gib),
            Some(1024.0)
        );
        // With 2 GiB available, 32768² is streamed within a quarter of it.
        assert_eq!(auto_memory_limit(32768.0 * 32768.0, 2.0 * gib), Some(512.0));
    }

    #[test]
    fn strips_fill_three_quarters_of_the_limit() {
        let e = Extractor::default();
        // 17 bytes per pixel on the CPU: 100 MiB · 0.75 / (17 · 1000) rows.
        let p = Plan::new(&e, 1000, false, None, Some(100.0)).unwrap();
        assert_eq!(p.strip_rows, (100.0 * MIB * 0.75 / 17000.0) as usize);
        assert_eq!(
            p.max_open_pixels,
            Some((100.0 * MIB * 0.25 / 96.0) as usize)
        );
        assert_eq!(p.check_rows, p.strip_rows * 17 / 24);
        let given = Plan::new(&e, 1000, false, Some(7), None).unwrap();
        assert_eq!((given.strip_rows, given.max_open_pixels), (7, None));
        let tiny = Plan::new(&e, 1_000_000, false, None, Some(1.0)).unwrap_err();
        assert!((tiny.need_mib - 17e6 / 0.75 / MIB).abs() < 1e-9);
        assert_eq!(tiny.need(), "22");
    }
}
