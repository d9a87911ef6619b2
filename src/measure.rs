//! Isophotal measurement of each object, as SExtractor defines it
//! (../shared/seeds/sextractor-isophotal-measurements.txt, ../shared/spec/detection.md §4.4).
//!
//! Positions and shapes are weighted by the filtered, background-subtracted
//! detection image; fluxes use the unfiltered background-subtracted image. All
//! sums are f64 and taken relative to the bounding-box corner (xmin, ymin).
//! Coordinates here are 0-based; written catalogs add 1.

use crate::image::Image;
use crate::label::Run;

/// SExtractor FLAGS bits.
pub mod flags {
    /// The object has neighbours or bad pixels that bias its photometry.
    pub const CROWDED: u32 = 1;
    /// The object was deblended from a larger one.
    pub const MERGED: u32 = 2;
    /// At least one pixel is saturated (or very close to it).
    pub const SATURATED: u32 = 4;
    /// The object touches the image border.
    pub const TRUNCATED: u32 = 8;
    /// An aperture of the photometry leaves the image.
    pub const APER_TRUNCATED: u32 = 16;
    /// The object's isophotal data are incomplete or corrupted: here, a sum that f64
    /// cannot hold or a shape that cannot be computed (pixels near the f32 limit).
    pub const ISO_CORRUPT: u32 = 32;
    /// Deblending was not done: the detection's tree reached the sub-object limit
    /// (`--sub-object-limit`; SExtractor's fixed 1024 nodes per level).
    pub const DEBLEND_OVERFLOW: u32 = 64;
}

/// A per-pixel quantity of an object: a constant, or k times a value per pixel of the
/// object, in the order of its pixels (the order of its runs).
#[derive(Clone, Copy, Debug)]
pub enum PixelField<'a> {
    Const(f32),
    PerPixel { k: f32, values: &'a [f32] },
}

impl PixelField<'_> {
    /// The value at the object's `k`-th pixel.
    #[inline]
    pub fn at(&self, k: usize) -> f32 {
        match *self {
            PixelField::Const(v) => v,
            PixelField::PerPixel { k: scale, values } => scale * values[k],
        }
    }
}

/// What measurement reads.
pub struct MeasureInput<'a> {
    /// Linear indices (y·width + x) of the saturated pixels, ascending.
    pub saturated: &'a [usize],
    /// The background-subtracted image (None when every object carries its unfiltered
    /// values, as in streaming).
    pub sub: Option<&'a Image>,
    /// Image width and height (border flags).
    pub width: usize,
    pub height: usize,
    /// The filtered background-subtracted image, if the segmentation does not carry
    /// the filtered values of its pixels.
    pub filtered: Option<&'a Image>,
    /// Background RMS per pixel; measurement squares it into the variance (in f64
    /// where the f32 square would overflow: an RMS above ~1.8e19).
    pub noise: PixelField<'a>,
    /// The RMS of FLUXERR_ISO, when it is not `noise`'s (dual-image mode: the
    /// measurement image's, where the position errors take the detection image's).
    pub flux_noise: Option<f32>,
    /// The unfiltered values (run order) `abcor` is measured on, when they are not
    /// the fluxes' (dual-image mode: the detection image's, which cleaning reads).
    pub abcor_values: Option<&'a [f32]>,
    /// Detection threshold per pixel (ADU above background).
    pub thresh: PixelField<'a>,
    /// Analysis threshold per pixel (ADU above background).
    pub analysis_thresh: PixelField<'a>,
    pub gain: f64,
    pub mag_zeropoint: f64,
    /// DETECT_MINAREA (for `mthresh`).
    pub minarea: usize,
    /// Whether to compute `mthresh` (cleaning reads it; 0 otherwise).
    pub with_mthresh: bool,
    /// The object's pixel list in SExtractor's order, as positions in raster order
    /// (a deblended piece's: its core's scan order, then its gathered pixels); None:
    /// the one-pass scan order of its runs.
    pub list_order: Option<&'a [u32]>,
}

/// One object's isophotal measurements (0-based coordinates; angles in degrees,
/// counter-clockwise from the x axis, in (−90, 90]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    pub number: u32,
    /// The image extension the object is in (0-based among a multi-extension file's
    /// images; written as EXT_NUMBER, 1-based).
    pub ext: u16,
    pub xmin: u32,
    pub ymin: u32,
    pub xmax: u32,
    pub ymax: u32,
    pub x: f64,
    pub y: f64,
    pub xpeak: u32,
    pub ypeak: u32,
    pub x2: f64,
    pub y2: f64,
    pub xy: f64,
    pub a: f64,
    pub b: f64,
    pub theta: f64,
    pub cxx: f64,
    pub cyy: f64,
    pub cxy: f64,
    pub errx2: f64,
    pub erry2: f64,
    pub errxy: f64,
    pub erra: f64,
    pub errb: f64,
    pub errtheta: f64,
    pub errcxx: f64,
    pub errcyy: f64,
    pub errcxy: f64,
    /// Pixels above the analysis threshold in the unfiltered image (ISOAREA_IMAGE).
    pub isoarea: u32,
    /// Pixels in the detection footprint (ISOAREAF_IMAGE).
    pub npix: u32,
    pub flux: f64,
    pub fluxerr: f64,
    pub mag: f64,
    pub magerr: f64,
    pub mag_isocor: f64,
    pub flux_max: f64,
    /// Mean detection threshold over the object's pixels (ADU above background).
    pub thresh: f64,
    /// Sum of the filtered values (the moments' weight).
    pub fdflux: f64,
    /// Maximum filtered value.
    pub fdpeak: f64,
    /// SExtractor's isophotal area correction for a Gaussian profile (`abcor`).
    pub abcor: f64,
    /// DETECT_MINAREA-th largest (filtered value − threshold) of the object's pixels
    /// (SExtractor's `mthresh`, used by cleaning).
    pub mthresh: f64,
    pub flags: u32,
    /// The second moments were (nearly) singular and corrected ([`regularised`]).
    pub singular: bool,
    /// The photometry beyond the isophote, when asked for ([`crate::photometry`]).
    pub phot: Option<Box<crate::photometry::Photometry>>,
    /// The world coordinates, when the catalog asks for them ([`crate::world`]).
    pub world: Option<Box<crate::world::World>>,
    /// IMAFLAGS_ISO and NIMAFLAGS_ISO of each flag map ([`crate::imaflags`]).
    pub imaflags: [u32; 4],
    pub nimaflags: [u32; 4],
}

/// `Object` as fixed-size records of 64-bit words (u32 fields widened, f64 fields by
/// their bits), for objects kept on disk while a streamed run waits for cleaning.
macro_rules! object_words {
    ($($f:ident : $k:ident),* $(,)?) => {
        impl Object {
            /// Words per object record.
            pub(crate) const WORDS: usize = [$(stringify!($f)),*].len() + 8;

            /// Appends the object's record to `out`.
            pub(crate) fn to_words(&self, out: &mut Vec<u64>) {
                $( out.push(object_words!(@to $k self.$f)); )*
                out.extend(self.imaflags.iter().chain(&self.nimaflags).map(|&v| v as u64));
            }

            /// The object of a record made by `to_words`.
            pub(crate) fn from_words(w: &[u64]) -> Object {
                let mut it = w.iter().copied();
                Object {
                    $( $f: object_words!(@from $k it.next().expect("a whole record")), )*
                    phot: None,
                    world: None,
                    imaflags: std::array::from_fn(|_| it.next().expect("a whole record") as u32),
                    nimaflags: std::array::from_fn(|_| it.next().expect("a whole record") as u32),
                }
            }
        }
    };
    (@to u32 $e:expr) => { $e as u64 };
    (@to u16 $e:expr) => { $e as u64 };
    (@from u16 $e:expr) => { $e as u16 };
    (@to f64 $e:expr) => { $e.to_bits() };
    (@to bool $e:expr) => { $e as u64 };
    (@from bool $e:expr) => { $e != 0 };
    (@from u32 $e:expr) => { $e as u32 };
    (@from f64 $e:expr) => { f64::from_bits($e) };
}

object_words!(
    number: u32, ext: u16, xmin: u32, ymin: u32, xmax: u32, ymax: u32, x: f64, y: f64,
    xpeak: u32, ypeak: u32, x2: f64, y2: f64, xy: f64, a: f64, b: f64, theta: f64,
    cxx: f64, cyy: f64, cxy: f64, errx2: f64, erry2: f64, errxy: f64, erra: f64,
    errb: f64, errtheta: f64, errcxx: f64, errcyy: f64, errcxy: f64, isoarea: u32,
    npix: u32, flux: f64, fluxerr: f64, mag: f64, magerr: f64, mag_isocor: f64,
    flux_max: f64, thresh: f64, fdflux: f64, fdpeak: f64, abcor: f64, mthresh: f64,
    flags: u32, singular: bool,
);

/// SExtractor's magnitude for a flux, 99 for non-positive (or non-finite) fluxes.
pub fn magnitude(flux: f64, zp: f64) -> f64 {
    if flux > 0.0 && flux.is_finite() {
        -2.5 * flux.log10() + zp
    } else {
        99.0
    }
}

/// SExtractor's magnitude error, 1.086·σ/F; 99 where the magnitude is 99 or the error
/// is not a finite number.
pub fn magnitude_error(flux: f64, fluxerr: f64) -> f64 {
    let e = 1.086 * fluxerr / flux;
    if flux > 0.0 && flux.is_finite() && e.is_finite() {
        e
    } else {
        99.0
    }
}

/// The ellipse's coefficients (CXX, CYY, CXY) from second moments: the inverse of the
/// moment matrix, CXX = y2/det, CYY = x2/det, CXY = −2·xy/det.
pub(crate) fn ellipse_coefficients(x2: f64, y2: f64, xy: f64) -> (f64, f64, f64) {
    let det = x2 * y2 - xy * xy;
    (y2 / det, x2 / det, -2.0 * xy / det)
}

/// Weighted sums of a set of pixels: Σw, Σw·dx, Σw·dy, Σw·dx², Σw·dy², Σw·dx·dy, with
/// dx, dy relative to a corner (the object's, or a core's first pixel).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moments {
    pub(crate) s: f64,
    pub(crate) sx: f64,
    pub(crate) sy: f64,
    pub(crate) sxx: f64,
    pub(crate) syy: f64,
    pub(crate) sxy: f64,
}

impl Moments {
    pub(crate) fn add(&mut self, w: f64, dx: f64, dy: f64) {
        self.s += w;
        self.sx += w * dx;
        self.sy += w * dy;
        self.sxx += w * dx * dx;
        self.syy += w * dy * dy;
        self.sxy += w * dx * dy;
    }
}

/// Second moments of a (nearly) singular object, SExtractor's constants: when the
/// determinant x2·y2 − xy² is below `SINGULAR_DET` (a line, a single pixel), a
/// pixel's own variance `SINGULAR_ADD` (about 1/12) is added to x2 and y2, and
/// `SINGULAR_ERR` scales the matching term of the position errors. Deblending's
/// core models use the same rule.
const SINGULAR_DET: f64 = 0.00694;
const SINGULAR_ADD: f64 = 0.0833333;
pub(crate) const SINGULAR_ERR: f64 = 0.08333;

/// x2 and y2 with SExtractor's correction of (nearly) singular moments, and whether it
/// applied.
pub(crate) fn regularised(x2: f64, y2: f64, xy: f64) -> (f64, f64, bool) {
    if x2 * y2 - xy * xy < SINGULAR_DET {
        (x2 + SINGULAR_ADD, y2 + SINGULAR_ADD, true)
    } else {
        (x2, y2, false)
    }
}

/// Where a legal but extreme image (values near the f32 limit) makes a position or a
/// shape impossible to compute, the object keeps defined values and says so: the
/// position is its peak pixel, the shape a pixel's (x2 = y2 = 1/12), undefined errors
/// are 0, and FLAGS has [`flags::ISO_CORRUPT`]. Never NaN in a catalog.
pub fn guard_non_finite(o: &mut Object) {
    let shape = [
        o.x, o.y, o.x2, o.y2, o.xy, o.a, o.b, o.theta, o.cxx, o.cyy, o.cxy,
    ];
    if shape.iter().any(|v| !v.is_finite()) {
        o.flags |= flags::ISO_CORRUPT;
        o.x = o.xpeak as f64;
        o.y = o.ypeak as f64;
        (o.x2, o.y2, o.xy) = (1.0 / 12.0, 1.0 / 12.0, 0.0);
        (o.a, o.b, o.theta) = ((1.0f64 / 12.0).sqrt(), (1.0f64 / 12.0).sqrt(), 0.0);
        (o.cxx, o.cyy, o.cxy) = (12.0, 12.0, 0.0);
    }
    let errors = [
        &mut o.errx2,
        &mut o.erry2,
        &mut o.errxy,
        &mut o.erra,
        &mut o.errb,
        &mut o.errtheta,
        &mut o.errcxx,
        &mut o.errcyy,
        &mut o.errcxy,
        &mut o.abcor,
    ];
    let mut bad = false;
    for e in errors {
        if !e.is_finite() {
            *e = 0.0;
            bad = true;
        }
    }
    if bad || !o.flux.is_finite() || !o.fluxerr.is_finite() {
        o.flags |= flags::ISO_CORRUPT;
    }
}

/// SExtractor's corrected isophotal magnitude (MAG_ISOCOR): the isophotal flux
/// divided by the fraction a Gaussian profile keeps above its isophote.
pub fn mag_isocor(flux: f64, npix: f64, thresh: f64, zp: f64) -> f64 {
    if flux <= 0.0 {
        return 99.0;
    }
    let ati = (npix * thresh / flux).clamp(0.0, 1.0);
    let corr = 1.0 - 0.196099 * ati - 0.751208 * ati * ati;
    if corr > 0.0 {
        magnitude(flux / corr, zp)
    } else {
        99.0
    }
}

/// Eigen-decomposition of a 2x2 covariance: (a, b, theta in degrees).
pub(crate) fn ellipse(x2: f64, y2: f64, xy: f64) -> (f64, f64, f64) {
    let d = x2 - y2;
    let theta = if d != 0.0 {
        0.5 * (2.0 * xy).atan2(d)
    } else {
        std::f64::consts::FRAC_PI_4
    };
    let t = (0.25 * d * d + xy * xy).sqrt();
    let mid = 0.5 * (x2 + y2);
    let a2 = mid + t;
    let b2 = mid - t;
    (a2.max(0.0).sqrt(), b2.max(0.0).sqrt(), theta.to_degrees())
}

/// Measures one object from its runs; `fvalues` are the filtered values of its
/// pixels in run order, or empty to read them from `inp.filtered`. With `centre`
/// (0-based image coordinates), the position is that point and the second moments
/// are taken about it (SExtractor's "robust" analysis of deblended objects, whose
/// position is the barycentre of their core). `rvalues` are the unfiltered values in
/// the same order, or empty to read them from `inp.sub`.
pub fn measure_object(
    runs: &[Run],
    fvalues: &[f32],
    rvalues: &[f32],
    centre: Option<(f64, f64)>,
    inp: &MeasureInput,
) -> Object {
    let w = inp.width;
    let h = inp.height;
    // Unfiltered value of the k-th pixel (run order) at linear index idx.
    let raw = |k: usize, idx: usize| -> f32 {
        if rvalues.is_empty() {
            inp.sub.expect("subtracted image or values").data()[idx]
        } else {
            rvalues[k]
        }
    };
    let mut o = Object::default();
    let (mut xmin, mut xmax) = (u32::MAX, 0u32);
    let (mut ymin, mut ymax) = (u32::MAX, 0u32);
    for r in runs {
        xmin = xmin.min(r.x0);
        xmax = xmax.max(r.x1 - 1);
        ymin = ymin.min(r.y);
        ymax = ymax.max(r.y);
    }
    let (mut npix, mut isoarea) = (0u32, 0u32);
    // Moments of the filtered values, and of the variances (for the errors).
    let (mut c_m, mut v_m) = (Moments::default(), Moments::default());
    let (mut flux, mut var_sum, mut thresh_sum) = (0.0f64, 0.0f64, 0.0f64);
    let mut peak = f64::NEG_INFINITY;
    let mut fdpeak = f64::NEG_INFINITY;
    let (mut xpeak, mut ypeak) = (0u32, 0u32);
    let mut saturated = false;
    let gain = inp.gain;
    let mut vi = 0usize;
    // The filtered values above the threshold, in raster order (for mthresh).
    let mut above: Vec<f64> = if inp.with_mthresh {
        Vec::with_capacity(runs.iter().map(|r| r.len()).sum())
    } else {
        Vec::new()
    };
    for r in runs {
        let y = r.y as usize;
        let dy = (r.y - ymin) as f64;
        if !inp.saturated.is_empty() {
            let (a, b) = (y * w + r.x0 as usize, y * w + r.x1 as usize);
            let k = inp.saturated.partition_point(|&i| i < a);
            saturated |= k < inp.saturated.len() && inp.saturated[k] < b;
        }
        for x in r.x0 as usize..r.x1 as usize {
            let idx = y * w + x;
            let c = if fvalues.is_empty() {
                inp.filtered.expect("filtered image or values").data()[idx] as f64
            } else {
                vi += 1;
                fvalues[vi - 1] as f64
            };
            let ord = npix as usize;
            let v = raw(ord, idx) as f64;
            let var = {
                let s = inp.noise.at(ord);
                let v = s * s;
                if v.is_finite() {
                    v as f64
                } else {
                    s as f64 * s as f64
                }
            };
            let dx = (x as u32 - xmin) as f64;
            npix += 1;
            c_m.add(c, dx, dy);
            let pv = if gain > 0.0 && c > 0.0 {
                var + c / gain
            } else {
                var
            };
            v_m.add(pv, dx, dy);
            flux += v;
            var_sum += match inp.flux_noise {
                Some(s) => (s * s) as f64,
                None => var,
            };
            let tpix = inp.thresh.at(ord) as f64;
            thresh_sum += tpix;
            if inp.with_mthresh {
                // In f32, as SExtractor.
                above.push((c as f32 - tpix as f32) as f64);
            }
            if v > inp.analysis_thresh.at(ord) as f64 {
                isoarea += 1;
            }
            if v > peak {
                peak = v;
            }
            // XPEAK/YPEAK: the brightest pixel of the filtered image, as SExtractor.
            if c > fdpeak {
                fdpeak = c;
                xpeak = x as u32;
                ypeak = r.y;
            }
        }
    }
    if inp.with_mthresh {
        o.mthresh = match inp.list_order {
            Some(order) => mthresh(&above, order, inp.minarea),
            None => mthresh(&above, &scan_list_order(runs), inp.minarea),
        };
    }
    o.xmin = xmin;
    o.xmax = xmax;
    o.ymin = ymin;
    o.ymax = ymax;
    o.npix = npix;
    o.isoarea = isoarea;
    let Moments {
        s: sc,
        sx: scx,
        sy: scy,
        sxx: scxx,
        syy: scyy,
        sxy: scxy,
    } = c_m;
    let Moments {
        s: sv,
        sx: svx,
        sy: svy,
        sxx: svxx,
        syy: svyy,
        sxy: svxy,
    } = v_m;
    o.fdflux = sc;
    o.fdpeak = fdpeak;
    o.flux_max = peak;
    o.xpeak = xpeak;
    o.ypeak = ypeak;
    o.thresh = thresh_sum / npix as f64;
    // First and second moments (relative to the corner, then shifted).
    let (mx, my, mut x2, mut y2, xy) = match centre {
        None => {
            let (mx, my) = (scx / sc, scy / sc);
            (
                mx,
                my,
                scxx / sc - mx * mx,
                scyy / sc - my * my,
                scxy / sc - mx * my,
            )
        }
        Some((cx, cy)) => {
            let (mx, my) = (cx - xmin as f64, cy - ymin as f64);
            (
                mx,
                my,
                scxx / sc - 2.0 * mx * scx / sc + mx * mx,
                scyy / sc - 2.0 * my * scy / sc + my * my,
                scxy / sc - mx * scy / sc - my * scx / sc + mx * my,
            )
        }
    };
    o.x = xmin as f64 + mx;
    o.y = ymin as f64 + my;
    let singular;
    (x2, y2, singular) = regularised(x2, y2, xy);
    o.singular = singular;
    (o.x2, o.y2, o.xy) = (x2, y2, xy);
    (o.a, o.b, o.theta) = ellipse(x2, y2, xy);
    (o.cxx, o.cyy, o.cxy) = ellipse_coefficients(x2, y2, xy);
    // Position errors: Σ v (x − x̄)² / (Σ c)².
    let f2 = sc * sc;
    let mut errx2 = (svxx - 2.0 * mx * svx + mx * mx * sv) / f2;
    let mut erry2 = (svyy - 2.0 * my * svy + my * my * sv) / f2;
    let errxy = (svxy - mx * svy - my * svx + mx * my * sv) / f2;
    if singular {
        let rho = sv * SINGULAR_ERR / f2;
        if errx2 * erry2 - errxy * errxy < rho * rho {
            errx2 += rho;
            erry2 += rho;
        }
    }
    (o.errx2, o.erry2, o.errxy) = (errx2, erry2, errxy);
    (o.erra, o.errb, o.errtheta) = ellipse(errx2, erry2, errxy);
    if errx2 * erry2 - errxy * errxy > 0.0 {
        (o.errcxx, o.errcyy, o.errcxy) = ellipse_coefficients(errx2, erry2, errxy);
    }
    o.abcor = match inp.abcor_values {
        Some(d) => {
            let top = d.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            area_correction(runs, |k, _| d[k], (o.thresh, top), (o.a, o.b), w)
        }
        None => area_correction(runs, raw, (o.thresh, peak), (o.a, o.b), w),
    };
    // Photometry.
    o.flux = flux;
    let mut ferr2 = var_sum;
    if gain > 0.0 && flux > 0.0 {
        ferr2 += flux / gain;
    }
    o.fluxerr = ferr2.sqrt();
    o.mag = magnitude(flux, inp.mag_zeropoint);
    o.magerr = magnitude_error(flux, o.fluxerr);
    o.mag_isocor = mag_isocor(flux, npix as f64, o.thresh, inp.mag_zeropoint);
    if xmin == 0 || ymin == 0 || xmax as usize == w - 1 || ymax as usize == h - 1 {
        o.flags |= flags::TRUNCATED;
    }
    if saturated {
        o.flags |= flags::SATURATED;
    }
    guard_non_finite(&mut o);
    o
}

/// SExtractor's area correction of a Gaussian profile (`abcor`, spec §4.4): the area
/// above (thresh + peak)/2 against the isophotal area, from the unfiltered value
/// `raw(k, idx)` of the k-th pixel (run order) at linear index idx.
fn area_correction(
    runs: &[Run],
    raw: impl Fn(usize, usize) -> f32,
    (t, peak): (f64, f64),
    (a, b): (f64, f64),
    w: usize,
) -> f64 {
    let t2 = (t + peak) / 2.0;
    if t2 == 0.0 || t / t2 <= 0.0 || a * b == 0.0 {
        return 1.0;
    }
    let (mut dnpix, mut area2) = (0.0f64, 0.0f64);
    let mut k = 0usize;
    for r in runs {
        for x in r.x0 as usize..r.x1 as usize {
            let v = raw(k, r.y as usize * w + x) as f64;
            k += 1;
            dnpix += (v > t) as u8 as f64;
            area2 += (v > t2) as u8 as f64;
        }
    }
    let darea = area2 - dnpix;
    let num = if darea < 0.0 { darea } else { -1.0 };
    (num / (2.0 * crate::deblend::PI_SEX * (t / t2).min(0.99).ln() * a * b)).min(1.0)
}

/// SExtractor's `mthresh` (../shared/spec/deblend-clean.md §4.6.1), from the values
/// above threshold in raster order and the pixel-list order (`order[k]` = the raster
/// index of the k-th pixel of the list): the first `minarea` values fill an array H,
/// the next one only triggers H's ascending sort and is never inserted, and each later
/// value larger than H[0] replaces it and is sifted down by SExtractor's (and SEP's)
/// heap, which continues from the child's right neighbour (p = c + 1) instead of the
/// child: not a correct heap, so mthresh is often larger than the minarea-th largest
/// value and SExtractor cleans less. The result is H[0]; the first pixel's value when
/// the object has exactly `minarea` pixels; 0 below that.
fn mthresh(above: &[f64], order: &[u32], minarea: usize) -> f64 {
    let n = above.len();
    let m = minarea;
    if n < m || m == 0 {
        return 0.0;
    }
    if n == m {
        return above[order[0] as usize];
    }
    let mut h: Vec<f64> = order[..m].iter().map(|&k| above[k as usize]).collect();
    h.sort_by(|a, b| a.total_cmp(b));
    for &k in &order[m + 1..] {
        let v = above[k as usize];
        if v <= h[0] {
            continue;
        }
        h[0] = v;
        let mut p = 0usize;
        loop {
            let r = 2 * p + 2;
            if r > m {
                break;
            }
            let c = if r < m && h[r - 1] > h[r] { r } else { r - 1 };
            if h[p] <= h[c] {
                break;
            }
            h.swap(p, c);
            p = c + 1;
        }
    }
    h[0]
}

/// The order in which a one-pass connected-component scan (Lutz's algorithm, as
/// SExtractor and SEP detect) links an object's pixels into its pixel list, which
/// `mthresh` depends on. For each position of the list, the pixel's index in raster
/// order; `runs` in raster order.
///
/// Rows are scanned in order, each from left to right. Pixels join the list of the
/// segment they belong to. A segment that starts inside the (8-connected) span of a
/// previous-row segment continues that segment's list; one that starts left of it
/// begins a list of its own. When the scan reaches the start of a previous-row segment
/// while inside a segment and their lists differ: if that segment is the first
/// (leftmost) of its list on its row, its list (with everything linked to it) is
/// appended to the current list; if it is a later one, the current list is appended
/// to its list instead; the rest of the current segment follows. At one column, the
/// start of a previous-row segment is handled before the pixel, the end (one column
/// past the segment) after it. Pieces that never join (a deblended object's pixels
/// need not touch) follow one another in the order they began. (A deblended piece's
/// list is taken in this scan order of its own pixels; SExtractor builds it from the
/// piece's core and then the parent's other pixels, which only matters when cleaning
/// tests a deblended piece.)
pub(crate) fn scan_list_order(runs: &[Run]) -> Vec<u32> {
    const NONE: u32 = u32::MAX;
    let npix: usize = runs.iter().map(|r| r.len()).sum();
    let mut next = vec![NONE; npix];
    // Lists: head, tail, parent (union-find: a merged list points at the one it joined).
    let mut head: Vec<u32> = Vec::new();
    let mut tail: Vec<u32> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    // Appends pixels first..last (raster indices, inclusive range as a half-open one).
    let append = |next: &mut [u32], head: &mut [u32], tail: &mut [u32], l: u32, s: u32, e: u32| {
        if s >= e {
            return;
        }
        for i in s..e - 1 {
            next[i as usize] = i + 1;
        }
        let l = l as usize;
        if tail[l] == NONE {
            head[l] = s;
        } else {
            next[tail[l] as usize] = s;
        }
        tail[l] = e - 1;
    };
    // Previous row's segments: (x0, x1 exclusive, list).
    // Previous row's segments: (x0, x1 exclusive, list, first segment of its list on
    // that row).
    let mut prev: Vec<(u32, u32, u32, bool)> = Vec::new();
    let mut cur: Vec<(u32, u32, u32, bool)> = Vec::new();
    // Appends list `b` after list `a` (b joins a).
    let join = |next: &mut [u32],
                head: &mut [u32],
                tail: &mut [u32],
                parent: &mut [u32],
                a: u32,
                b: u32| {
        let (a, b) = (a as usize, b as usize);
        if head[b] != NONE {
            if tail[a] == NONE {
                head[a] = head[b];
            } else {
                next[tail[a] as usize] = head[b];
            }
            tail[a] = tail[b];
        }
        parent[b] = a as u32;
    };
    let mut i = 0usize;
    let mut offset = 0u32;
    while i < runs.len() {
        let y = runs[i].y;
        let mut j = i;
        while j < runs.len() && runs[j].y == y {
            j += 1;
        }
        cur.clear();
        // The previous row's segment whose span the scan is in: its list (`active`).
        let mut p = 0usize;
        let mut active: Option<u32> = None;
        for run in &runs[i..j] {
            let len = run.len() as u32;
            // Previous-row segments met before this segment starts (their start at or
            // before x0): the last one whose span (x0 ..= x1) still covers x0 is active.
            while p < prev.len() && prev[p].0 <= run.x0 {
                active = Some(prev[p].2);
                p += 1;
            }
            let in_span = p > 0 && prev[p - 1].1 >= run.x0;
            let mut list = match active {
                Some(l) if in_span => crate::label::find(&mut parent, l),
                _ => {
                    head.push(NONE);
                    tail.push(NONE);
                    parent.push(head.len() as u32 - 1);
                    head.len() as u32 - 1
                }
            };
            // Previous-row segments that start inside this one or at the column after
            // it (touching diagonally): their lists join.
            let mut from = offset;
            while p < prev.len() && prev[p].0 <= run.x1 {
                let at = offset + (prev[p].0 - run.x0);
                append(&mut next, &mut head, &mut tail, list, from, at);
                from = at;
                let other = crate::label::find(&mut parent, prev[p].2);
                if other != list {
                    if prev[p].3 {
                        // The first segment of its list: that list follows this one.
                        join(&mut next, &mut head, &mut tail, &mut parent, list, other);
                    } else {
                        // A later segment of a list already met: this list follows it.
                        join(&mut next, &mut head, &mut tail, &mut parent, other, list);
                        list = other;
                    }
                }
                active = Some(list);
                p += 1;
            }
            append(&mut next, &mut head, &mut tail, list, from, offset + len);
            cur.push((run.x0, run.x1, list, false));
            offset += len;
        }
        // Which segments are the first (leftmost) of their list on this row.
        for k in 0..cur.len() {
            let l = crate::label::find(&mut parent, cur[k].2);
            cur[k].2 = l;
            cur[k].3 = !cur[..k].iter().any(|c| c.2 == l);
        }
        std::mem::swap(&mut prev, &mut cur);
        i = j;
    }
    let mut order = Vec::with_capacity(npix);
    for l in 0..head.len() as u32 {
        if parent[l as usize] == l {
            let mut k = head[l as usize];
            while k != NONE {
                order.push(k);
                k = next[k as usize];
            }
        }
    }
    debug_assert_eq!(order.len(), npix);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs (raster order) of a set of pixels (y, x).
    fn runs_of(pix: &[(u32, u32)]) -> Vec<Run> {
        let mut p = pix.to_vec();
        p.sort();
        let px: Vec<crate::deblend::Pixel> = p
            .iter()
            .map(|&(y, x)| crate::deblend::Pixel {
                x,
                y,
                c: 0.0,
                v: 0.0,
            })
            .collect();
        crate::deblend::runs_of(&px, &(0..px.len()).collect::<Vec<_>>())
    }

    /// The scan order stated column by column (the definition, slowly): at each column,
    /// previous-row segment starts, then the pixel, then previous-row segment ends.
    fn scan_order_by_columns(runs: &[Run]) -> Vec<u32> {
        let raster: Vec<(u32, u32)> = runs
            .iter()
            .flat_map(|r| (r.x0..r.x1).map(move |x| (r.y, x)))
            .collect();
        let index = |y: u32, x: u32| raster.iter().position(|&q| q == (y, x)).unwrap() as u32;
        let mut lists: Vec<Option<Vec<u32>>> = Vec::new();
        let mut parent: Vec<usize> = Vec::new();
        fn find(parent: &[usize], mut i: usize) -> usize {
            while parent[i] != i {
                i = parent[i];
            }
            i
        }
        // (x0, last x, list, first segment of its list on its row)
        let mut prev: Vec<(u32, u32, usize, bool)> = Vec::new();
        let ys: std::collections::BTreeSet<u32> = runs.iter().map(|r| r.y).collect();
        for y in ys {
            let row: Vec<&Run> = runs.iter().filter(|r| r.y == y).collect();
            let on = |x: u32| row.iter().any(|r| r.x0 <= x && x < r.x1);
            let lo = row[0].x0.min(prev.first().map_or(u32::MAX, |p| p.0));
            let hi = row.last().unwrap().x1 + prev.last().map_or(0, |p| p.1 + 2);
            let (mut in_seg, mut cur, mut active, mut in_span) = (false, 0usize, 0usize, false);
            let (mut seg_start, mut next_prev) = (0u32, Vec::new());
            for x in lo..=hi {
                for &(_, _, l, first) in prev.iter().filter(|p| p.0 == x) {
                    let r = find(&parent, l);
                    if in_seg {
                        let c = find(&parent, cur);
                        if r != c {
                            // The first segment of its list: it follows; else this
                            // list follows it.
                            let (keep, gone) = if first { (c, r) } else { (r, c) };
                            let moved = lists[gone].take().unwrap();
                            lists[keep].as_mut().unwrap().extend(moved);
                            parent[gone] = keep;
                            cur = keep;
                        }
                        active = cur;
                    } else {
                        active = r;
                    }
                    in_span = true;
                }
                if on(x) {
                    if !in_seg {
                        in_seg = true;
                        seg_start = x;
                        cur = if in_span {
                            find(&parent, active)
                        } else {
                            lists.push(Some(Vec::new()));
                            parent.push(lists.len() - 1);
                            lists.len() - 1
                        };
                    }
                    let c = find(&parent, cur);
                    lists[c].as_mut().unwrap().push(index(y, x));
                }
                if prev.iter().any(|p| p.1 + 1 == x) {
                    in_span = false;
                }
                if !on(x) && in_seg {
                    in_seg = false;
                    next_prev.push((seg_start, x - 1, cur, false));
                }
            }
            let mut seen = Vec::new();
            for s in next_prev.iter_mut() {
                s.2 = find(&parent, s.2);
                s.3 = !seen.contains(&s.2);
                seen.push(s.2);
            }
            prev = next_prev;
        }
        (0..lists.len())
            .filter(|&l| parent[l] == l)
            .flat_map(|l| lists[l].clone().unwrap())
            .collect()
    }

    #[test]
    fn scan_list_order_links_as_a_one_pass_scan() {
        // A plus: the middle row starts left of the top pixel, so its list comes
        // first and the top pixel's joins it at column 221.
        let plus = runs_of(&[(166, 221), (167, 220), (167, 221), (167, 222), (168, 221)]);
        // Raster indices: (166,221)=0, (167,220)=1, (167,221)=2, (167,222)=3, (168,221)=4.
        assert_eq!(scan_list_order(&plus), vec![1, 0, 2, 3, 4]);
        // A later segment of a list met while inside a segment that began its own list:
        // the new list follows the old one (here the scan keeps raster order).
        let fork = runs_of(&[
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (1, 0),
            (1, 3),
            (1, 4),
            (2, 2),
            (2, 3),
        ]);
        assert_eq!(scan_list_order(&fork), (0..10).collect::<Vec<u32>>());
        // Random blobs (connected or not) against the column-by-column statement.
        let mut s = 99u64;
        let mut rnd = move |n: u32| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n as u64) as u32
        };
        for case in 0..300 {
            let (w, h) = (3 + rnd(12), 1 + rnd(10));
            let fill = 30 + rnd(60);
            let pix: Vec<(u32, u32)> = (0..h)
                .flat_map(|y| (0..w).map(move |x| (y + 5, x + 7)))
                .filter(|_| rnd(100) < fill)
                .collect();
            if pix.is_empty() {
                continue;
            }
            let runs = runs_of(&pix);
            let got = scan_list_order(&runs);
            assert_eq!(got, scan_order_by_columns(&runs), "case {case}: {pix:?}");
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..pix.len() as u32).collect::<Vec<_>>());
        }
    }

    #[test]
    fn objects_survive_their_word_records() {
        // Every field set (a struct literal: a new field must be added here, and to
        // the record, or this does not compile).
        let o = Object {
            number: 7,
            ext: 2,
            xmin: 1,
            ymin: 2,
            xmax: 3,
            ymax: 4,
            x: 1.5,
            y: -2.25,
            xpeak: 5,
            ypeak: 6,
            x2: 0.1,
            y2: 0.2,
            xy: -0.3,
            a: 1.1,
            b: 0.9,
            theta: 45.0,
            cxx: 1.2,
            cyy: 1.3,
            cxy: -0.4,
            errx2: 1e-3,
            erry2: 2e-3,
            errxy: -3e-4,
            erra: 0.01,
            errb: 0.02,
            errtheta: 3.0,
            errcxx: 4.0,
            errcyy: 5.0,
            errcxy: -6.0,
            isoarea: 11,
            npix: 12,
            flux: 1234.5,
            fluxerr: 6.7,
            mag: -7.7,
            magerr: 0.005,
            mag_isocor: -7.8,
            flux_max: 99.0,
            thresh: 15.0,
            fdflux: 2000.0,
            fdpeak: 300.0,
            abcor: 0.97,
            mthresh: f64::NAN,
            flags: 0x8000_0003,
            singular: true,
            // Photometry and world coordinates are measured once objects are final,
            // after they wait here.
            phot: None,
            world: None,
            imaflags: [1, 2, 3, 4],
            nimaflags: [5, 6, 7, 8],
        };
        let mut w = Vec::new();
        o.to_words(&mut w);
        assert_eq!(w.len(), Object::WORDS);
        let back = Object::from_words(&w);
        assert!(back.mthresh.is_nan());
        let (mut a, mut b) = (o.clone(), back);
        a.mthresh = 0.0;
        b.mthresh = 0.0;
        assert_eq!(a, b);
    }

    #[test]
    fn mthresh_quirks() {
        let order: Vec<u32> = vec![1, 0, 2, 3, 4, 5, 6];
        let above = [0.25, 0.9, 4.0, 0.3, 0.6, 7.0, 0.1];
        // Exactly minarea pixels: the first in list order (not the minimum).
        assert_eq!(mthresh(&above[..5], &order[..5], 5), 0.9);
        // Fewer: 0.
        assert_eq!(mthresh(&above[..4], &[1, 0, 2, 3], 5), 0.0);
        // More: the heap takes list positions 0-4 and 6, never position 5 (raster 5,
        // the 7.0): the 5 largest of {0.9, 0.25, 4.0, 0.3, 0.6, 0.1} end at 0.25.
        assert_eq!(mthresh(&above, &order, 5), 0.25);
        // minarea 3: heap {0.9, 0.25, 4.0}, skip 0.3, then 0.6 (> 0.25), 7.0, 0.1.
        assert_eq!(mthresh(&above, &order, 3), 0.9);
        // The spec's cases (minarea 5): v6 skipped; the off-by-one sift.
        let id = |n: u32| (0..n).collect::<Vec<u32>>();
        assert_eq!(
            mthresh(&[1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 0.0], &id(7), 5),
            1.0
        );
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 10.0, 11.0, 12.0];
        assert_eq!(mthresh(&v, &id(9), 5), 10.0, "a correct heap gives 4");
        // n = m + 1: the minimum of the first m.
        assert_eq!(mthresh(&[3.0, 1.0, 2.0, 9.0], &id(4), 3), 1.0);
    }

    /// For minarea 4 and 5 the heap has a closed form (spec §4.6.1): the 3rd largest
    /// of the 3 smallest of the first m values and every value after the (m+1)-th.
    #[test]
    fn mthresh_closed_form_for_minarea_4_and_5() {
        let mut rng = crate::deblend::SplitMix64::new(7);
        for trial in 0..2000 {
            let m = 4 + trial % 2;
            let n = m + 2 + (rng.next_u64() % 40) as usize;
            let v: Vec<f64> = (0..n).map(|_| (rng.next_u64() % 50) as f64).collect();
            let order: Vec<u32> = (0..n as u32).collect();
            let mut first: Vec<f64> = v[..m].to_vec();
            first.sort_by(|a, b| a.total_cmp(b));
            let mut pool: Vec<f64> = first[..3].to_vec();
            pool.extend_from_slice(&v[m + 1..]);
            pool.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(mthresh(&v, &order, m), pool[2], "{v:?} m {m}");
        }
    }
    fn input<'a>(img: &'a Image) -> MeasureInput<'a> {
        MeasureInput {
            saturated: &[],
            sub: Some(img),
            width: img.width(),
            height: img.height(),
            filtered: Some(img),
            noise: PixelField::Const(2.0),
            flux_noise: None,
            abcor_values: None,
            thresh: PixelField::Const(0.5),
            analysis_thresh: PixelField::Const(1.5),
            gain: 0.0,
            mag_zeropoint: 25.0,
            minarea: 5,
            with_mthresh: true,
            list_order: None,
        }
    }

    #[test]
    fn cross_moments_by_hand() {
        // 5x5 image, a plus sign centred on (2,2): centre 4, arms 1 (x arms) and 2 (y arms).
        let mut d = vec![0.0f32; 25];
        d[2 * 5 + 2] = 4.0;
        d[2 * 5 + 1] = 1.0;
        d[2 * 5 + 3] = 1.0;
        d[5 + 2] = 2.0;
        d[3 * 5 + 2] = 2.0;
        let img = Image::new(5, 5, d).unwrap();
        let runs = vec![
            Run { y: 1, x0: 2, x1: 3 },
            Run { y: 2, x0: 1, x1: 4 },
            Run { y: 3, x0: 2, x1: 3 },
        ];
        let o = measure_object(&runs, &[], &[], None, &input(&img));
        // Σc = 10; x̄ = 2, ȳ = 2; x2 = (1+1)/10 = 0.2; y2 = (2+2)/10 = 0.4; xy = 0.
        assert_eq!((o.x, o.y), (2.0, 2.0));
        assert!((o.x2 - 0.2).abs() < 1e-12 && (o.y2 - 0.4).abs() < 1e-12);
        assert_eq!(o.xy, 0.0);
        // Not singular: 0.08 ≥ 0.00694. A = √0.4, B = √0.2, θ = 90°.
        assert!((o.a - 0.4f64.sqrt()).abs() < 1e-12);
        assert!((o.b - 0.2f64.sqrt()).abs() < 1e-12);
        assert!((o.theta - 90.0).abs() < 1e-12);
        assert!((o.cxx - 1.0 / 0.2).abs() < 1e-9 && (o.cyy - 1.0 / 0.4).abs() < 1e-9);
        // Errors: var 4 per pixel; errx2 = 4·(1+1)/100 = 0.08, erry2 = 0.08.
        assert!((o.errx2 - 0.08).abs() < 1e-12 && (o.erry2 - 0.08).abs() < 1e-12);
        assert_eq!(o.npix, 5);
        assert_eq!(o.isoarea, 3); // 4, 2, 2 are > 1.5
        assert_eq!(o.flux, 10.0);
        assert!((o.fluxerr - 20f64.sqrt()).abs() < 1e-12);
        assert!((o.mag - (25.0 - 2.5)).abs() < 1e-12);
        assert_eq!((o.xpeak, o.ypeak, o.flux_max), (2, 2, 4.0));
        assert_eq!(o.fdpeak, 4.0);
        assert_eq!((o.xmin, o.xmax, o.ymin, o.ymax), (1, 3, 1, 3));
        assert_eq!(o.flags, 0);
    }

    #[test]
    fn single_pixel_is_singular_and_flagged_at_the_border() {
        let img = Image::new(3, 3, vec![9.0, 0., 0., 0., 0., 0., 0., 0., 0.]).unwrap();
        let o = measure_object(&[Run { y: 0, x0: 0, x1: 1 }], &[], &[], None, &input(&img));
        assert!((o.x2 - 0.0833333).abs() < 1e-12 && (o.y2 - 0.0833333).abs() < 1e-12);
        assert!((o.a - 0.0833333f64.sqrt()).abs() < 1e-12);
        // ρe = Σv·0.08333/F² = 4·0.08333/81 is added to the zero error moments.
        let rho = 4.0 * 0.08333 / 81.0;
        assert!((o.errx2 - rho).abs() < 1e-15);
        assert_eq!(o.flags, flags::TRUNCATED);
    }
}
