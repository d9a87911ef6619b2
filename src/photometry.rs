//! Photometry beyond the isophote, as SExtractor measures it
//! (../shared/spec/photometry.md): fixed apertures (FLUX_APER), Kron (FLUX_AUTO,
//! KRON_RADIUS), Petrosian (FLUX_PETRO, PETRO_RADIUS), the growth curve (FLUX_RADIUS
//! and the half-light radius), the windowed position and shape (XWIN_IMAGE, ...), the
//! corrected isophotal and best fluxes, surface brightness and the background at the
//! object; FLAGS bits 1 (crowded aperture) and 16 (aperture off the image).
//!
//! Apertures read pixels beyond an object's footprint: the background-subtracted
//! image ([`Field`]) in which the pixels of every *other* detection (every pixel whose
//! filtered value is above the detection threshold, groups smaller than
//! DETECT_MINAREA included) are bad, as SExtractor blanks them (MASK_TYPE). The
//! single- and double-precision steps are SExtractor's, each as the spec states it:
//! parity with its catalogs needs them (a missed f32 rounding moves FLUX_RADIUS by up
//! to 1e-5).

use crate::label::Run;
use crate::measure::{flags, magnitude, magnitude_error, Object};

/// Defines `$name`, which runs `$body` compiled for AVX2 where the CPU has it (the
/// same IEEE operations in wider registers, so the same bits), else as it is.
macro_rules! with_avx2 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $body:ident) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) -> $r {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(unsafe_code)]
                unsafe fn avx2($($a: $t),*) -> $r {
                    $body($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}

/// How the pixels of other detections enter an aperture (MASK_TYPE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskType {
    /// Read as they are.
    None,
    /// Counted as 0.
    Blank,
    /// Replaced by the pixel mirrored through the object's centre (SExtractor's default).
    #[default]
    Correct,
}

/// Where photometry takes its background from (BACKPHOTO_TYPE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackPhoto {
    /// The background map (SExtractor's default).
    #[default]
    Global,
    /// The map plus a residual from a rectangular annulus around each object
    /// (BACKPHOTO_THICK pixels thick), estimated as a background mesh.
    Local,
}

/// The photometry settings, with SExtractor's keywords and defaults. Values are held
/// as SExtractor holds them: each parsed through single precision ([`f32_param`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PhotParams {
    /// PHOT_APERTURES: aperture diameters in pixels (default 5).
    pub apertures: Vec<f64>,
    /// PHOT_AUTOPARAMS: the Kron factor k and the minimum radius (default 2.5, 3.5).
    pub auto_params: (f64, f64),
    /// PHOT_PETROPARAMS: the Petrosian factor and the minimum radius (default 2, 3.5).
    pub petro_params: (f64, f64),
    /// PHOT_AUTOAPERS: the minimum diameters of the first and second passes of AUTO
    /// and Petrosian photometry (default 0, 0).
    pub auto_apers: (f64, f64),
    /// PHOT_FLUXFRAC: the fractions of FLUX_AUTO of FLUX_RADIUS (default 0.5).
    pub flux_frac: Vec<f64>,
    /// MASK_TYPE (default CORRECT).
    pub mask_type: MaskType,
    /// PIXEL_SCALE in arcsec (default 0: from the WCS; without a celestial WCS,
    /// SExtractor's 3600, one "degree" per pixel).
    pub pixel_scale: f64,
    /// BACKPHOTO_TYPE and BACKPHOTO_THICK (default GLOBAL, 24 pixels).
    pub backphoto: BackPhoto,
    pub backphoto_thick: usize,
    /// SEEING_FWHM in arcsec, CLASS_STAR's seeing input (default 1.2).
    pub seeing_fwhm: f64,
    /// STARNNW_NAME's network, which CLASS_STAR needs ([`Nnw::from_file`]).
    pub star_nnw: Option<Nnw>,
    /// Which measurements to make (the catalog's columns say; FLAGS bits 1 and 16
    /// depend on them, as in SExtractor).
    pub want: Wanted,
}

/// Where Debian's `source-extractor` package installs SExtractor's network
/// (`default.nnw`, GPL: skysift does not ship it).
pub const DEBIAN_NNW: &str = "/usr/share/source-extractor/default.nnw";

/// A SExtractor neural network (`.nnw`, formats-photometry-classify.md §5.1): layer
/// sizes, input biases and scales, each later neuron's weights and bias, output
/// biases and scales.
#[derive(Clone, Debug, PartialEq)]
pub struct Nnw {
    sizes: Vec<usize>,
    in_bias: Vec<f64>,
    in_scale: Vec<f64>,
    /// Per connection layer, per neuron of the next layer: (weights, bias).
    layers: Vec<Vec<(Vec<f64>, f64)>>,
    out_bias: Vec<f64>,
    out_scale: Vec<f64>,
}

impl Nnw {
    /// Reads a `.nnw` file (STARNNW_NAME).
    pub fn from_file(path: &std::path::Path) -> crate::Result<Nnw> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::Error::input(path, format!("cannot read the neural network file: {e}"))
        })?;
        Nnw::parse(&text).map_err(|why| {
            crate::Error::input(
                path,
                format!("not a SExtractor neural network (.nnw): {why}"),
            )
        })
    }

    /// Parses the text of a `.nnw` file.
    pub fn parse(text: &str) -> std::result::Result<Nnw, String> {
        let mut lines = text.lines();
        if !lines.next().is_some_and(|l| l.starts_with("NNW")) {
            return Err("the first line must start with NNW".into());
        }
        let mut tokens = lines
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.split_whitespace());
        let mut num = |what: &str| -> std::result::Result<f64, String> {
            let t = tokens.next().ok_or(format!("it ends before {what}"))?;
            // Held in single precision, as SExtractor holds them.
            t.parse::<f32>()
                .map(|v| v as f64)
                .map_err(|_| format!("{t:?} in {what} is not a number"))
        };
        let nl = num("the layer count")? as usize;
        if !(2..=3).contains(&nl) {
            return Err(format!("{nl} layers (2 or 3 are possible)"));
        }
        let mut sizes = Vec::new();
        for _ in 0..nl {
            let n = num("the layer sizes")?;
            if !(1.0..=10.0).contains(&n) || n.fract() != 0.0 {
                return Err(format!("a layer of {n} neurons (1 to 10 are possible)"));
            }
            sizes.push(n as usize);
        }
        let mut vec =
            |n: usize, what: &str| (0..n).map(|_| num(what)).collect::<Result<Vec<_>, _>>();
        let in_bias = vec(sizes[0], "the input biases")?;
        let in_scale = vec(sizes[0], "the input scales")?;
        let mut layers = Vec::new();
        for l in 0..nl - 1 {
            let mut layer = Vec::new();
            for _ in 0..sizes[l + 1] {
                let w = vec(sizes[l], "the weights")?;
                let b = vec(1, "a bias")?[0];
                layer.push((w, b));
            }
            layers.push(layer);
        }
        let out_bias = vec(sizes[nl - 1], "the output biases")?;
        let out_scale = vec(sizes[nl - 1], "the output scales")?;
        Ok(Nnw {
            sizes,
            in_bias,
            in_scale,
            layers,
            out_bias,
            out_scale,
        })
    }

    /// The number of inputs.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// The network's first output for `input` (in double; the sigmoid on every
    /// layer after the first, the output's included).
    pub fn eval(&self, input: &[f64]) -> f64 {
        let mut x: Vec<f64> = input
            .iter()
            .zip(self.in_scale.iter().zip(&self.in_bias))
            .map(|(v, (s, b))| v * s + b)
            .collect();
        for layer in &self.layers {
            x = layer
                .iter()
                .map(|(w, b)| {
                    let z = w.iter().zip(&x).fold(*b, |acc, (w, v)| acc + w * v);
                    1.0 / (1.0 + (-z).exp())
                })
                .collect();
        }
        (x[0] - self.out_bias[0]) / self.out_scale[0]
    }
}

/// Which photometry a catalog asks for, with SExtractor's dependencies: FLUX_RADIUS,
/// FLUX_BEST and the windowed measurements need FLUX_AUTO, which sets FLAGS bit 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub aper: bool,
    pub auto: bool,
    pub petro: bool,
    /// The growth curve (FLUX_RADIUS, and the half-light radius of WIN).
    pub growth: bool,
    pub win: bool,
    /// FLUX_ISOCOR, FLUX_BEST, MU_*, BACKGROUND: no apertures of their own.
    pub other: bool,
    /// ISO0..ISO7, FWHM_IMAGE, CLASS_STAR: from the object's own pixels.
    pub class: bool,
    /// VIGNET(w,h).
    pub vignet: Option<(usize, usize)>,
}

impl Wanted {
    /// What the catalog columns `names` need (SExtractor names).
    pub fn from_columns<'a>(names: impl IntoIterator<Item = &'a str>) -> Wanted {
        let mut w = Wanted::default();
        for n in names {
            let n = n.trim().to_ascii_uppercase();
            let n = n.as_str();
            let has = |s: &str| n.contains(s);
            w.aper |= has("_APER");
            w.petro |= has("PETRO");
            w.growth |= has("FLUX_RADIUS");
            w.win |= has("WIN");
            w.auto |= has("AUTO") || has("KRON") || has("BEST") || has("FLUX_RADIUS");
            w.other |= has("ISOCOR") || has("MU_") || n == "BACKGROUND";
            w.class |= (n.starts_with("ISO") && n.len() == 4) || has("FWHM") || has("CLASS_STAR");
            w.vignet = w.vignet.or(crate::catalog::vignet_size(n));
        }
        w.growth |= w.win;
        w.auto |= w.growth;
        w
    }

    /// Whether any photometry is asked for.
    pub fn any(&self) -> bool {
        *self != Wanted::default()
    }
}

impl Default for PhotParams {
    fn default() -> Self {
        PhotParams {
            apertures: vec![5.0],
            auto_params: (2.5, 3.5),
            petro_params: (2.0, 3.5),
            auto_apers: (0.0, 0.0),
            flux_frac: vec![0.5],
            mask_type: MaskType::Correct,
            pixel_scale: 0.0,
            backphoto: BackPhoto::Global,
            backphoto_thick: 24,
            seeing_fwhm: 1.2,
            star_nnw: None,
            want: Wanted::default(),
        }
    }
}

impl PhotParams {
    /// Checks every value against its meaning (errors name SExtractor's keyword).
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        let list = |v: &[f64]| {
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.apertures.is_empty() || self.apertures.iter().any(|&d| !(d > 0.0 && d < 1e6)) {
            return Err(Error::param(
                "PHOT_APERTURES",
                list(&self.apertures),
                "give one or more diameters in pixels, each > 0",
            ));
        }
        if self.flux_frac.is_empty() || self.flux_frac.iter().any(|&f| !(f > 0.0 && f <= 1.0)) {
            return Err(Error::param(
                "PHOT_FLUXFRAC",
                list(&self.flux_frac),
                "give one or more fractions of FLUX_AUTO, each in (0, 1]",
            ));
        }
        for (name, (k, rmin)) in [
            ("PHOT_AUTOPARAMS", self.auto_params),
            ("PHOT_PETROPARAMS", self.petro_params),
        ] {
            if !(k > 0.0 && k < 1e6 && (0.0..1e6).contains(&rmin)) {
                return Err(Error::param(
                    name,
                    format!("{k},{rmin}"),
                    "the factor must be > 0 and the minimum radius >= 0",
                ));
            }
        }
        let (d0, d1) = self.auto_apers;
        if !((0.0..1e6).contains(&d0) && (0.0..1e6).contains(&d1)) {
            return Err(Error::param(
                "PHOT_AUTOAPERS",
                format!("{d0},{d1}"),
                "minimum diameters must be >= 0 pixels",
            ));
        }
        if !(1..1_000_000).contains(&self.backphoto_thick) {
            return Err(Error::param(
                "BACKPHOTO_THICK",
                self.backphoto_thick,
                "give the annulus' thickness in pixels, at least 1",
            ));
        }
        if !(self.seeing_fwhm > 0.0 && self.seeing_fwhm < 1e6) {
            return Err(Error::param(
                "SEEING_FWHM",
                self.seeing_fwhm,
                "must be > 0 arcsec (the seeing of CLASS_STAR)",
            ));
        }
        if self.want.class && self.star_nnw.as_ref().is_none_or(|n| n.inputs() != 10) {
            return Err(Error::param(
                "STARNNW_NAME",
                "",
                match &self.star_nnw {
                    None => format!(
                        "CLASS_STAR needs SExtractor's neural network file default.nnw, which \
                         skysift does not ship (GPL): install SExtractor (Debian: apt-get \
                         install source-extractor, which puts it in {DEBIAN_NNW}) or name a \
                         .nnw file"
                    ),
                    Some(n) => {
                        format!("the network has {} inputs; CLASS_STAR gives 10", n.inputs())
                    }
                },
            ));
        }
        if !(0.0..1e6).contains(&self.pixel_scale) {
            return Err(Error::param(
                "PIXEL_SCALE",
                self.pixel_scale,
                "must be >= 0 arcsec (0: from the WCS)",
            ));
        }
        Ok(())
    }
}

/// A configuration value as SExtractor holds it: parsed into a single-precision
/// variable, then widened (PHOT_FLUXFRAC 0.2 is 0.2000000030).
pub fn f32_param(v: f64) -> f64 {
    v as f32 as f64
}

/// The windowed measurements (photometry.md §7); the isophotal values where
/// FLAGS_WIN is not 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windowed {
    /// 0-based position.
    pub x: f64,
    pub y: f64,
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
    pub flux: f64,
    pub fluxerr: f64,
    pub snr: f64,
    pub flags: u32,
    pub niter: u32,
}

/// An object's photometry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Photometry {
    /// VIGNET(w,h), row-major from the low y.
    pub vignet: Vec<f32>,
    /// One per PHOT_APERTURES diameter.
    pub flux_aper: Vec<f64>,
    pub fluxerr_aper: Vec<f64>,
    pub mag_aper: Vec<f64>,
    pub magerr_aper: Vec<f64>,
    pub kron_radius: f64,
    pub flux_auto: f64,
    pub fluxerr_auto: f64,
    pub mag_auto: f64,
    pub magerr_auto: f64,
    pub petro_radius: f64,
    pub flux_petro: f64,
    pub fluxerr_petro: f64,
    pub mag_petro: f64,
    pub magerr_petro: f64,
    /// One per PHOT_FLUXFRAC fraction.
    pub flux_radius: Vec<f64>,
    pub flux_isocor: f64,
    pub fluxerr_isocor: f64,
    pub flux_best: f64,
    pub fluxerr_best: f64,
    pub mag_best: f64,
    pub magerr_best: f64,
    pub win: Windowed,
    pub mu_max: f64,
    pub mu_threshold: f64,
    /// The background at the object (BACKGROUND).
    pub background: f64,
    /// Own pixels above each of 8 levels from the analysis threshold to the peak.
    pub iso: [u32; 8],
    pub fwhm: f64,
    pub class_star: f64,
    /// The local background residual (BACKPHOTO_TYPE LOCAL; 0 with GLOBAL), and the
    /// isophotal flux and peak it corrects (FLUX_ISO, FLUX_MAX).
    pub dbkg: f64,
    pub flux_iso: f64,
    pub flux_max: f64,
    /// FLAGS bits 1 and 16, or-ed into the object's FLAGS.
    pub flags: u32,
}

/// The background-subtracted measurement image photometry reads: rows
/// `y0..y0 + rows` of a `width` x `height` image (bad pixels NaN), and which of its
/// pixels other detections cover.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    pub width: usize,
    pub height: usize,
    pub y0: usize,
    pub values: &'a [f32],
    /// One bit per pixel of `values` (row-major): detected (filtered value above the
    /// detection threshold).
    pub detected: &'a [u64],
    /// Bad pixels of `values` besides NaN ones (a mask).
    pub mask: Option<&'a [bool]>,
    /// σ² of a pixel: f32(global RMS²).
    pub sigma2: f64,
    /// Dual-image mode: the detection image's values of the same rows, where the
    /// AUTO and Petrosian first passes (their radii) are measured, as SExtractor's.
    pub detection: Option<&'a [f32]>,
}

/// Sets the bits of the pixels of `runs` (whose rows lie in the field's window) in a
/// bit set of a field `width` wide from row `y0`.
pub fn mark_runs(bits: &mut [u64], width: usize, y0: usize, runs: &[Run]) {
    for r in runs {
        let row = (r.y as usize - y0) * width;
        for x in r.x0 as usize..r.x1 as usize {
            let i = row + x;
            bits[i / 64] |= 1 << (i % 64);
        }
    }
}

/// Clears the bits of the pixels of `runs` (whose rows lie in the field's window).
pub fn clear_runs<'r>(
    bits: &mut [u64],
    width: usize,
    y0: usize,
    runs: impl Iterator<Item = &'r Run>,
) {
    for r in runs {
        let row = (r.y as usize - y0) * width;
        for x in r.x0 as usize..r.x1 as usize {
            let i = row + x;
            bits[i / 64] &= !(1 << (i % 64));
        }
    }
}

/// The rows the scan lags behind when it blanks detections: the filter's half height
/// + 1, or 1 unfiltered (photometry.md §1.1.2).
pub(crate) fn blankh(p: &crate::ExtractParams) -> usize {
    p.kernel.as_ref().map_or(1, |k| k.height() / 2 + 1)
}

/// One object's view of the field: its own pixels are never neighbours.
struct View<'a> {
    f: &'a Field<'a>,
    /// The object's runs, sorted by row then x.
    own: Vec<Run>,
    /// The same pixels as bits over their bounding box (one test per read).
    own_bits: OwnBits,
    mask: MaskType,
    /// Set when a pixel outside the field's rows was needed (a streamed run's
    /// window too small for this object: it is measured again on a larger one).
    missed: std::cell::Cell<bool>,
}

/// A set of pixels as bits over its bounding box.
#[derive(Default)]
struct OwnBits {
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
    bits: Vec<u64>,
}

impl OwnBits {
    fn of(runs: &[Run]) -> OwnBits {
        let Some(first) = runs.first() else {
            return OwnBits::default();
        };
        let (mut x0, mut x1, mut y0, mut y1) = (first.x0, first.x1, first.y, first.y + 1);
        for r in runs {
            (x0, x1) = (x0.min(r.x0), x1.max(r.x1));
            (y0, y1) = (y0.min(r.y), y1.max(r.y + 1));
        }
        let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let mut bits = vec![0u64; (w * h).div_ceil(64)];
        for r in runs {
            let row = (r.y - y0) as usize * w;
            for x in (r.x0 - x0) as usize..(r.x1 - x0) as usize {
                bits[(row + x) / 64] |= 1 << ((row + x) % 64);
            }
        }
        OwnBits {
            x0: x0 as usize,
            y0: y0 as usize,
            w,
            h,
            bits,
        }
    }

    #[inline(always)]
    fn contains(&self, x: usize, y: usize) -> bool {
        let (dx, dy) = (x.wrapping_sub(self.x0), y.wrapping_sub(self.y0));
        if dx >= self.w || dy >= self.h {
            return false;
        }
        let i = dy * self.w + dx;
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }
}

impl<'a> View<'a> {
    fn new(f: &'a Field<'a>, mut own: Vec<Run>, mask: MaskType) -> View<'a> {
        own.sort_unstable_by_key(|r| (r.y, r.x0));
        View {
            f,
            own_bits: OwnBits::of(&own),
            own,
            mask,
            missed: Default::default(),
        }
    }

    #[inline(always)]
    fn own(&self, x: usize, y: usize) -> bool {
        self.own_bits.contains(x, y)
    }

    /// The index of pixel (x < width, y) in the field's rows; None (and `missed`
    /// set) outside them.
    fn index(&self, x: usize, y: usize) -> Option<usize> {
        let i = y
            .checked_sub(self.f.y0)
            .map(|dy| dy * self.f.width + x)
            .filter(|&i| i < self.f.values.len());
        if i.is_none() {
            self.missed.set(true);
        }
        i
    }

    /// The value at (x, y), None when the pixel is bad: invalid, masked, or (unless
    /// MASK_TYPE NONE) another detection's.
    fn read(&self, x: usize, y: usize) -> Option<f32> {
        let i = self.index(x, y)?;
        let v = self.f.values[i];
        if v.is_nan() || self.f.mask.is_some_and(|m| m[i]) {
            return None;
        }
        let neighbour = self.mask != MaskType::None
            && self.f.detected[i / 64] >> (i % 64) & 1 == 1
            && !self.own(x, y);
        (!neighbour).then_some(v)
    }

    /// The value at (x, y) and whether it is detected; None when invalid or masked.
    fn raw(&self, x: usize, y: usize) -> Option<(f32, bool)> {
        let i = self.index(x, y)?;
        let v = self.f.values[i];
        let bad = v.is_nan() || self.f.mask.is_some_and(|m| m[i]);
        (!bad).then(|| (v, self.f.detected[i / 64] >> (i % 64) & 1 == 1))
    }

    /// The value of a pixel inside an integration: a bad one through MASK_TYPE, with
    /// CORRECT its mirror (`mx2`, `my2`: twice the centre) if that is inside the
    /// image and good, else 0. Also whether the pixel was bad.
    fn value(&self, x: usize, y: usize, mx2: f64, my2: f64) -> (f64, bool) {
        match self.read(x, y) {
            Some(v) => (v as f64, false),
            None => {
                if self.mask == MaskType::Correct {
                    let x2 = (mx2 + 0.49999 - x as f64) as i64;
                    let y2 = (my2 + 0.49999 - y as f64) as i64;
                    let (w, h) = (self.f.width as i64, self.f.height as i64);
                    if (0..w).contains(&x2) && (0..h).contains(&y2) {
                        if let Some(v) = self.read(x2 as usize, y2 as usize) {
                            return (v as f64, true);
                        }
                    }
                }
                (0.0, true)
            }
        }
    }
}

/// A box clipped to the image: [x0, x1) x [y0, y1), and whether it was clipped.
fn clip_box(
    f: &Field,
    (x0, x1, y0, y1): (i64, i64, i64, i64),
) -> ((usize, usize, usize, usize), bool) {
    let (w, h) = (f.width as i64, f.height as i64);
    let clipped = x0 < 0 || y0 < 0 || x1 > w || y1 > h;
    let c = |v: i64, hi: i64| v.clamp(0, hi) as usize;
    ((c(x0, w), c(x1, w), c(y0, h), c(y1, h)), clipped)
}

/// The shape inputs of the elliptical apertures, in single precision as SExtractor
/// holds them.
#[derive(Clone, Copy)]
struct Ellipse {
    mx: f32,
    my: f32,
    a: f32,
    b: f32,
    cxx: f32,
    cyy: f32,
    cxy: f32,
}

impl Ellipse {
    fn of(o: &Object) -> Self {
        Ellipse {
            mx: o.x as f32,
            my: o.y as f32,
            a: o.a as f32,
            b: o.b as f32,
            cxx: o.cxx as f32,
            cyy: o.cyy as f32,
            cxy: o.cxy as f32,
        }
    }
}

/// A region of reduced radius `r`: the object's ellipse, or a circle (CXX = CYY = 1).
#[derive(Clone, Copy)]
struct Region {
    cxx: f32,
    cyy: f32,
    cxy: f32,
    r: f32,
    dxlim: f32,
    dylim: f32,
}

impl Region {
    fn ellipse(e: &Ellipse, r: f32) -> Region {
        let half = |rad: f32| {
            if rad > 0.0 {
                (r as f64 / (rad as f64).sqrt()) as f32
            } else {
                0.0
            }
        };
        let (cxx, cyy, cxy) = (e.cxx as f64, e.cyy as f64, e.cxy as f64);
        let radx = (cxx - cxy * cxy / (4.0 * cyy)) as f32;
        let rady = (cyy - cxy * cxy / (4.0 * cxx)) as f32;
        Region {
            cxx: e.cxx,
            cyy: e.cyy,
            cxy: e.cxy,
            r,
            dxlim: half(radx),
            dylim: half(rady),
        }
    }

    fn circle(r: f32) -> Region {
        Region {
            cxx: 1.0,
            cyy: 1.0,
            cxy: 0.0,
            r,
            dxlim: r,
            dylim: r,
        }
    }

    /// The region of a first or second pass: the ellipse of reduced radius `r` if it
    /// is larger than the minimum diameter `dmin` allows, else the circle of diameter
    /// `dmin` (and whether it is the circle).
    fn choose(e: &Ellipse, r: f32, dmin: f64) -> (Region, bool) {
        if (r as f64) * ((e.a * e.b) as f64).sqrt() > dmin / 2.0 {
            (Region::ellipse(e, r), false)
        } else {
            (Region::circle((dmin / 2.0) as f32), true)
        }
    }

    /// Its box around (mx, my), clipped.
    fn bounds(&self, f: &Field, mx: f32, my: f32) -> ((usize, usize, usize, usize), bool) {
        let rint = |v: f32| (v as f64 + 0.5).floor() as i64;
        clip_box(
            f,
            (
                rint(mx - self.dxlim),
                rint(mx + self.dxlim) + 1,
                rint(my - self.dylim),
                rint(my + self.dylim) + 1,
            ),
        )
    }

    /// ρ² of an offset (f32, left to right).
    fn rho2(&self, dx: f32, dy: f32) -> f32 {
        self.cxx * dx * dx + self.cyy * dy * dy + self.cxy * dx * dy
    }
}

/// The counts of a first pass (Kron or Petrosian radius).
struct FirstPass {
    good: u32,
    bad: u32,
}

impl FirstPass {
    fn crowded(&self) -> bool {
        let n = self.good + self.bad;
        n > 0 && (self.bad as f32 / n as f32) as f64 > 0.1
    }
}

/// The second pass of AUTO and Petrosian photometry: (flux, variance, crowded,
/// clipped) in `region`.
fn second_pass(
    v: &View,
    e: &Ellipse,
    region: &Region,
    gain: f64,
    dbkg: f32,
) -> (f64, f64, bool, bool) {
    let ((x0, x1, y0, y1), clipped) = region.bounds(v.f, e.mx, e.my);
    let lim = region.r * region.r;
    let (mx2, my2) = ((2.0 * e.mx) as f64, (2.0 * e.my) as f64);
    let (mut flux, mut var, mut n, mut bad) = (0.0f64, 0.0f64, 0u32, 0u32);
    for y in y0..y1 {
        let dy = y as f32 - e.my;
        for x in x0..x1 {
            let dx = x as f32 - e.mx;
            if region.rho2(dx, dy) <= lim {
                n += 1;
                let (val, was_bad) = v.value(x, y, mx2, my2);
                bad += was_bad as u32;
                flux += val;
                var += v.f.sigma2;
            }
        }
    }
    let crowded = bad as f64 > 0.1 * n as f64;
    flux -= (n as f32 * dbkg) as f64;
    if gain > 0.0 && flux > 0.0 {
        var += flux / gain;
    }
    (flux, var, crowded, clipped)
}

/// A flux's magnitude and its error as the catalog stores them (f32; 99 for a
/// flux ≤ 0).
fn mags(flux: f64, err: f64, zp: f64) -> (f64, f64) {
    (
        magnitude(flux, zp) as f32 as f64,
        magnitude_error(flux, err) as f32 as f64,
    )
}

/// AUTO or Petrosian photometry with the radius `r` (units of A and B) its first
/// pass found: the flux and its error (f32), the radius reported (0 for the circle
/// of diameter `dmin` that replaces a smaller ellipse, or for a flux ≤ 0), and the
/// crowding and truncation flags of the second pass.
fn radius_flux(
    v: &View,
    e: &Ellipse,
    r: f32,
    dmin: f64,
    gain: f64,
    dbkg: f32,
) -> (f64, f64, f64, bool, bool) {
    let (region, circle) = Region::choose(e, r, dmin);
    let (flux, var, crowded, clipped) = second_pass(v, e, &region, gain, dbkg);
    let radius = if circle || flux <= 0.0 { 0.0 } else { r as f64 };
    (
        flux as f32 as f64,
        var.sqrt() as f32 as f64,
        radius,
        crowded,
        clipped,
    )
}

/// Sub-pixels of a pixel straddling a circle: n x n (at most 11), offsets from
/// `start` by `step` (f32 sums, as SExtractor), each worth `area`: the part of the
/// pixel inside is the f32 running sum of `area` once per sub-pixel inside, taken
/// from a table (`sums[k]`: k additions), and the offsets' squares are computed once
/// per pixel, so the 121 tests of the window's 11 x 11 are independent (the same
/// f32 operations as one loop over them).
struct Sub {
    n: usize,
    start: f32,
    step: f32,
    sums: Vec<f32>,
    /// The CPU has AVX2: [`Sub::inside`] compares eight sub-pixels at once.
    avx2: bool,
}

impl Sub {
    fn new(n: usize, start: f32, step: f32, area: f32) -> Sub {
        assert!(n <= 16, "at most 16 sub-pixels a side");
        let mut sums = vec![0.0f32; n * n + 1];
        for k in 1..sums.len() {
            sums[k] = sums[k - 1] + area;
        }
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Sub {
            n,
            start,
            step,
            sums,
            avx2,
        }
    }

    /// The squares of the sub-pixels' x offsets (f32, accumulated from dx + start),
    /// +∞ beyond the n-th.
    #[inline(always)]
    fn xx(&self, dx: f32) -> [f32; 16] {
        let mut xx = [f32::INFINITY; 16];
        let mut dx1 = dx + self.start;
        for v in xx.iter_mut().take(self.n) {
            *v = dx1 * dx1;
            dx1 += self.step;
        }
        xx
    }

    /// The part of the pixel at offset (dx, dy) inside the circle of squared radius
    /// `r2` (strictly inside, in f32).
    #[inline(always)]
    fn inside(&self, dx: f32, dy: f32, r2: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 (Sub::new checked).
            #[allow(unsafe_code)]
            return unsafe { self.inside_avx2(dx, dy, r2) };
        }
        self.inside_plain(dx, dy, r2)
    }

    /// [`Sub::inside`] one sub-pixel at a time.
    #[inline(always)]
    fn inside_plain(&self, dx: f32, dy: f32, r2: f32) -> f32 {
        let xx = self.xx(dx);
        let mut count = 0usize;
        let mut dy1 = dy + self.start;
        for _ in 0..self.n {
            let yy = dy1 * dy1;
            count += xx.iter().filter(|&&x| x + yy < r2).count();
            dy1 += self.step;
        }
        self.sums[count]
    }

    /// [`Sub::inside`] with AVX2: each row's sums xx + yy and their comparisons with
    /// r2 eight at a time (the same f32 additions; +∞ lanes never count).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(unsafe_code)]
    unsafe fn inside_avx2(&self, dx: f32, dy: f32, r2: f32) -> f32 {
        use std::arch::x86_64::*;
        let xx = self.xx(dx);
        let (lo, hi) = (
            _mm256_loadu_ps(xx.as_ptr()),
            _mm256_loadu_ps(xx.as_ptr().add(8)),
        );
        let r = _mm256_set1_ps(r2);
        let mut count = 0u32;
        let mut dy1 = dy + self.start;
        for _ in 0..self.n {
            let yy = _mm256_set1_ps(dy1 * dy1);
            let a = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_add_ps(lo, yy), r));
            let b = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_add_ps(hi, yy), r));
            count += (a as u32).count_ones() + (b as u32).count_ones();
            dy1 += self.step;
        }
        self.sums[count as usize]
    }
}

with_avx2!(
/// FLUX_APER of one diameter: (flux, variance, clipped).
fn aperture(v: &View, e: &Ellipse, d: f64, gain: f64, dbkg: f64) -> (f64, f64, bool) = aperture_body);

#[inline(always)]
fn aperture_body(v: &View, e: &Ellipse, d: f64, gain: f64, dbkg: f64) -> (f64, f64, bool) {
    let r = (d / 2.0) as f32;
    let r_in = r - 0.75;
    let rin2 = if r_in > 0.0 { r_in * r_in } else { 0.0 };
    let rout2 = ((r as f64 + 0.75) * (r as f64 + 0.75)) as f32;
    let r2 = r * r;
    let (mx, my) = (e.mx, e.my);
    let ((x0, x1, y0, y1), clipped) = clip_box(
        v.f,
        (
            ((mx - r) as f64 + 0.499999) as i64,
            ((mx + r) as f64 + 1.499999) as i64,
            ((my - r) as f64 + 0.499999) as i64,
            ((my + r) as f64 + 1.499999) as i64,
        ),
    );
    // APER_OVERSAMP 5: sub-pixel offsets from −0.4 by 0.2, each 0.04 of the area.
    let step = 0.2f32;
    let start = (0.5 * (0.2 - 1.0)) as f32;
    let sub = Sub::new(5, start, step, 0.04f32);
    let (mx2, my2) = ((2.0 * mx) as f64, (2.0 * my) as f64);
    let (mut flux, mut var, mut area) = (0.0f64, 0.0f64, 0.0f64);
    for y in y0..y1 {
        let dy = y as f32 - my;
        for x in x0..x1 {
            let dx = x as f32 - mx;
            let d2 = dx * dx + dy * dy;
            if d2 >= rout2 {
                continue;
            }
            let a = if d2 > rin2 {
                sub.inside(dx, dy, r2)
            } else {
                1.0
            } as f64;
            let (val, _) = v.value(x, y, mx2, my2);
            area += a;
            flux += a * val;
            var += a * v.f.sigma2;
        }
    }
    flux -= area * dbkg;
    if gain > 0.0 && flux > 0.0 {
        var += flux / gain;
    }
    (flux, var, clipped)
}

/// The pixels of a first pass (Kron and Petrosian radius) over `region`'s box, in
/// raster order: each one's ρ² (f32) and value (NaN when bad or a neighbour), read
/// once for both passes and all of Petrosian's rings; and whether the box was clipped.
fn first_pass_pixels(v: &View, e: &Ellipse, region: &Region) -> (Vec<(f32, f32)>, bool) {
    let ((x0, x1, y0, y1), clipped) = region.bounds(v.f, e.mx, e.my);
    let mut px = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        let dy = y as f32 - e.my;
        for x in x0..x1 {
            let dx = x as f32 - e.mx;
            px.push((region.rho2(dx, dy), v.read(x, y).unwrap_or(f32::NAN)));
        }
    }
    (px, clipped)
}

/// The first pass of Kron photometry over the pixels of `region`: (r₁ = Σ√ρ²·v,
/// v₁ = Σv, counts).
fn kron_first_pass(px: &[(f32, f32)], region: &Region) -> (f64, f64, FirstPass) {
    let lim = region.r * region.r;
    let (mut r1, mut v1) = (0.0f64, 0.0f64);
    let mut c = FirstPass { good: 0, bad: 0 };
    for &(rho2, val) in px {
        if rho2 <= lim {
            if val.is_nan() {
                c.bad += 1;
            } else {
                c.good += 1;
                r1 += (rho2 as f64).sqrt() * val as f64;
                v1 += val as f64;
            }
        }
    }
    (r1, v1, c)
}

/// The first pass of Petrosian photometry: the last κ_mea evaluated, its counts and
/// whether both means were defined and non-zero.
fn petro_first_pass(px: &[(f32, f32)], region: &Region) -> (f32, FirstPass, bool) {
    let klim = (region.r * region.r).sqrt();
    let kstep = klim / 20.0;
    let mut kmin = kstep;
    let mut last = (0.0f32, FirstPass { good: 0, bad: 0 }, false);
    loop {
        let kmax = (1.2 * kmin as f64) as f32;
        if kmax >= klim {
            break;
        }
        let kmea = (kmin + kmax) / 2.0;
        let (kmin2, kmax2, kmea2) = (kmin * kmin, kmax * kmax, kmea * kmea);
        let mut c = FirstPass { good: 0, bad: 0 };
        let (mut sa, mut na, mut si, mut ni) = (0.0f64, 0u32, 0.0f64, 0u32);
        for &(rho2, val) in px {
            if rho2 > kmax2 {
                continue;
            }
            if val.is_nan() {
                c.bad += 1;
                continue;
            }
            c.good += 1;
            if rho2 >= kmin2 {
                sa += val as f64;
                na += 1;
            }
            if rho2 < kmea2 {
                si += val as f64;
                ni += 1;
            }
        }
        let means = (na > 0 && ni > 0).then(|| (sa / na as f64, si / ni as f64));
        let defined = means.is_some_and(|(a, i)| a != 0.0 && i != 0.0);
        last = (kmea, c, defined);
        if means.is_some_and(|(a, i)| a < 0.2 * i) {
            break;
        }
        kmin += kstep;
    }
    last
}

/// The growth curve (photometry.md §6): the cumulative flux in 64 bins of width
/// `step` out to `rlim`, and whether its box was clipped.
fn growth_curve(v: &View, o: &Object, dmin: f64) -> ([f64; 64], f64, f64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            #[allow(unsafe_code)]
            return unsafe { growth_curve_avx2(v, o, dmin) };
        }
    }
    growth_curve_plain(v, o, dmin)
}

/// [`growth_curve`] compiled for AVX2: the sub-pixels' square roots four at a time
/// (the same IEEE operations, so the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn growth_curve_avx2(v: &View, o: &Object, dmin: f64) -> ([f64; 64], f64, f64, bool) {
    growth_curve_with::<true>(v, o, dmin)
}

fn growth_curve_plain(v: &View, o: &Object, dmin: f64) -> ([f64; 64], f64, f64, bool) {
    growth_curve_with::<false>(v, o, dmin)
}

#[inline(always)]
fn growth_curve_with<const AVX2: bool>(
    v: &View,
    o: &Object,
    dmin: f64,
) -> ([f64; 64], f64, f64, bool) {
    const NSTEP: usize = 64;
    let rlim = (6.0 * (o.a as f32) as f64).max(dmin);
    let rmax = rlim + 1.5;
    let step = rlim / NSTEP as f64;
    let dens = NSTEP as f64 / rlim;
    let (mx, my) = (o.x, o.y);
    let ((x0, x1, y0, y1), clipped) = clip_box(
        v.f,
        (
            (mx - rmax + 0.499999) as i64,
            (mx + rmax + 1.499999) as i64,
            (my - rmax + 0.499999) as i64,
            (my + rmax + 1.499999) as i64,
        ),
    );
    let mut bins = [0.0f64; NSTEP];
    let put = |bins: &mut [f64; NSTEP], b: usize, val: f64| {
        if b < NSTEP {
            bins[b] += val;
        }
    };
    let (mx2, my2) = (2.0 * mx, 2.0 * my);
    let skip2 = (rlim + 0.6) * (rlim + 0.6);
    for y in y0..y1 {
        let dy = y as f64 - my;
        for x in x0..x1 {
            let dx = x as f64 - mx;
            let d2 = dx * dx + dy * dy;
            // Beyond rlim + 0.6 not even a sub-pixel (within 0.57 of the centre) falls
            // in a bin: such pixels feed nothing.
            if d2 >= rmax * rmax || d2 > skip2 {
                continue;
            }
            let (val, _) = v.value(x, y, mx2, my2);
            let d = d2.sqrt();
            // Bins narrower than 1.5 px split every pixel (fmod not needed).
            if step < 1.5 || {
                let frac = d % step;
                frac < 0.75 || frac > step - 0.75
            } {
                let sub = 0.04 * val;
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                // SAFETY: AVX2 is only true when the CPU has it (growth_curve).
                let bins25 = if AVX2 {
                    unsafe { sub_bins_avx2(dx, dy, dens) }
                } else {
                    sub_bins(dx, dy, dens)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let bins25 = sub_bins(dx, dy, dens);
                for b in bins25 {
                    put(&mut bins, b as usize, sub);
                }
            } else {
                put(&mut bins, (d * dens) as usize, val);
            }
        }
    }
    for i in 1..NSTEP {
        bins[i] += bins[i - 1];
    }
    (bins, step, rlim, clipped)
}

/// The growth-curve bins of the 5×5 sub-pixels of the pixel at offset (dx, dy), in
/// raster order: trunc(√(dx'² + dy'²)·dens) with the offsets dx − 0.4 … + 0.4
/// accumulated in steps of 0.2 (photometry.md §6). Computed apart from the sums, so
/// that the square roots run side by side in vector registers.
/// [`sub_bins`] with AVX2 intrinsics: the sums, roots, products and truncations of
/// four sub-pixels at once (each lane the same IEEE operation as the scalar code;
/// the bins are < 2³¹, where truncation to i32 is exact either way).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
unsafe fn sub_bins_avx2(dx: f64, dy: f64, dens: f64) -> [i32; 25] {
    use std::arch::x86_64::*;
    let q = sub_distances(dx, dy);
    let mut out = [0i32; 28];
    let d = _mm256_set1_pd(dens);
    for k in (0..28).step_by(4) {
        let v = _mm256_loadu_pd(q.as_ptr().add(k));
        let b = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_sqrt_pd(v), d));
        _mm_storeu_si128(out.as_mut_ptr().add(k) as *mut __m128i, b);
    }
    let mut r = [0i32; 25];
    r.copy_from_slice(&out[..25]);
    r
}

/// The squared distances dx'² + dy'² of the 5×5 sub-pixels (raster order, then
/// three zeros to fill a last vector of four).
#[inline(always)]
fn sub_distances(dx: f64, dy: f64) -> [f64; 28] {
    let (mut xx, mut yy) = ([0.0f64; 5], [0.0f64; 5]);
    let (mut dx1, mut dy1) = (dx - 0.4, dy - 0.4);
    for k in 0..5 {
        xx[k] = dx1 * dx1;
        yy[k] = dy1 * dy1;
        dx1 += 0.2;
        dy1 += 0.2;
    }
    let mut q = [0.0f64; 28];
    for i in 0..5 {
        for j in 0..5 {
            q[i * 5 + j] = xx[j] + yy[i];
        }
    }
    q
}

#[inline(always)]
fn sub_bins(dx: f64, dy: f64, dens: f64) -> [i32; 25] {
    let q = sub_distances(dx, dy);
    std::array::from_fn(|k| (q[k].sqrt() * dens) as i32)
}

/// The radius inside which the growth curve `g` reaches `t`.
fn radius_at(g: &[f64; 64], step: f64, rlim: f64, t: f64) -> f64 {
    let r = match (0..63).find(|&i| g[i] >= t) {
        Some(0) => {
            if g[0] != 0.0 {
                step * t / g[0]
            } else {
                0.0
            }
        }
        Some(i) => {
            let d = g[i] - g[i - 1];
            if d != 0.0 {
                step * (i as f64 + (t - g[i - 1]) / d)
            } else {
                step * i as f64
            }
        }
        None => step * (63.0 + (t - g[61]) / (g[62] - g[61])),
    };
    r.min(rlim)
}

with_avx2!(
/// The windowed measurements (photometry.md §7) from the half-light radius `hlr`;
/// also whether a box was clipped.
fn windowed(v: &View, o: &Object, hlr: f32, gain: f64) -> (Windowed, bool) = windowed_body);

#[inline(always)]
fn windowed_body(v: &View, o: &Object, hlr: f32, gain: f64) -> (Windowed, bool) {
    let sig = (hlr as f64 * 2.0 / 2.35) as f32;
    let c = (1.0 / (2.0 * sig as f64 * sig as f64)) as f32;
    let r = 4.0f32 * sig;
    let sq = |v: f64| (v * v) as f32;
    let rin2 = if r > 0.75 { sq(r as f64 - 0.75) } else { 0.0 };
    let rout2 = sq(r as f64 + 0.75);
    let r2 = r * r;
    // WINPOS_OVERSAMP 11.
    let step = (1.0f64 / 11.0) as f32;
    let start = (0.5 * (1.0f64 / 11.0 - 1.0)) as f32;
    let sub = Sub::new(11, start, step, sq(1.0 / 11.0));
    let (mut xc, mut yc) = (o.x, o.y);
    let mut clipped = false;
    let (mut s, mut sx, mut sy, mut sxx, mut syy, mut sxy);
    let (mut e, mut ex, mut ey, mut exy);
    let (mut xi, mut eta);
    let mut niter = 0u32;
    loop {
        niter += 1;
        (s, sx, sy, sxx, syy, sxy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        (e, ex, ey, exy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let (bx, cl) = clip_box(
            v.f,
            (
                (xc - r as f64 + 0.499999) as i64,
                (xc + r as f64 + 1.499999) as i64,
                (yc - r as f64 + 0.499999) as i64,
                (yc + r as f64 + 1.499999) as i64,
            ),
        );
        clipped |= cl;
        let (mx2, my2) = (2.0 * xc, 2.0 * yc);
        for y in bx.2..bx.3 {
            let dy = (y as f64 - yc) as f32;
            for x in bx.0..bx.1 {
                let dx = (x as f64 - xc) as f32;
                let d2 = dx * dx + dy * dy;
                if d2 >= rout2 {
                    continue;
                }
                let a = if d2 > rin2 {
                    sub.inside(dx, dy, r2)
                } else {
                    1.0
                };
                let w = a * (-d2 * c).exp();
                let (val, _) = v.value(x, y, mx2, my2);
                let p = w as f64 * val;
                let (dxd, dyd) = (dx as f64, dy as f64);
                s += p;
                sx += p * dxd;
                sy += p * dyd;
                sxx += p * dxd * dxd;
                syy += p * dyd * dyd;
                sxy += p * dxd * dyd;
                let mut err = v.f.sigma2;
                if gain > 0.0 && val > 0.0 {
                    err += val / gain;
                }
                let om = (w * w) as f64 * err;
                e += om;
                ex += om * (dxd * dxd + 0.0833);
                ey += om * (dyd * dyd + 0.0833);
                exy += om * dxd * dyd;
            }
        }
        if s > 0.0 {
            xi = sx / s;
            eta = sy / s;
            xc += 2.0 * xi;
            yc += 2.0 * eta;
        } else {
            xi = sx;
            eta = sy;
            break;
        }
        if xi * xi + eta * eta < 1e-8 {
            break;
        }
        if niter == 16 {
            niter = 17;
            break;
        }
    }
    let x2 = sxx / s - xi * xi;
    let y2 = syy / s - eta * eta;
    let xy = sxy / s - xi * eta;
    let mut fl = 0u32;
    let ddx = ((xc + 1.0) - (o.x + 1.0)) as f32 as f64;
    let ddy = ((yc + 1.0) - (o.y + 1.0)) as f32 as f64;
    if ddx * ddx > 1.0
        && ddy * ddy > 1.0
        && o.cxx * ddx * ddx + o.cyy * ddy * ddy + o.cxy * ddx * ddy > 1.0
    {
        fl |= 8;
    }
    if s <= 0.0 {
        fl |= 4;
    }
    if x2 < 0.0 || y2 < 0.0 {
        fl |= 2;
    }
    if x2 * y2 - xy * xy < 0.0 {
        fl |= 1;
    }
    let snr = if e > 1e-30 {
        (s as f32 / (e.sqrt() as f32)) as f64
    } else {
        1e30
    };
    let mut out = Windowed {
        flux: s,
        fluxerr: e.sqrt(),
        snr,
        flags: fl,
        niter,
        ..Default::default()
    };
    if fl != 0 {
        (out.x, out.y) = (o.x, o.y);
        (out.x2, out.y2, out.xy) = (o.x2, o.y2, o.xy);
        (out.a, out.b, out.theta) = (o.a, o.b, o.theta);
        (out.cxx, out.cyy, out.cxy) = (o.cxx, o.cyy, o.cxy);
        (out.errx2, out.erry2, out.errxy) = (o.errx2, o.erry2, o.errxy);
        (out.erra, out.errb, out.errtheta) = (o.erra, o.errb, o.errtheta);
        return (out, clipped);
    }
    (out.x, out.y) = (xc, yc);
    // The isophotal measurement's rules for (nearly) singular moments and their
    // errors, and its ellipse.
    use crate::measure::{ellipse, ellipse_coefficients, regularised, SINGULAR_ERR};
    let n = 4.0 / (s * s);
    let (mut ex2, mut ey2, exy2) = (ex * n, ey * n, exy * n);
    let rho = SINGULAR_ERR * e * n;
    if o.singular && ex2 * ey2 - exy2 * exy2 < rho * rho {
        ex2 += rho;
        ey2 += rho;
    }
    (out.errx2, out.erry2, out.errxy) = (ex2, ey2, exy2);
    (out.erra, out.errb, out.errtheta) = ellipse(ex2, ey2, exy2);
    let (x2, y2, _) = regularised(x2, y2, xy);
    (out.x2, out.y2, out.xy) = (x2, y2, xy);
    (out.cxx, out.cyy, out.cxy) = ellipse_coefficients(x2, y2, xy);
    (out.a, out.b, out.theta) = ellipse(x2, y2, xy);
    (out, clipped)
}

/// What photometry needs besides the field and the object.
pub struct Context<'a> {
    pub params: &'a PhotParams,
    pub gain: f64,
    pub zeropoint: f64,
    /// The analysis threshold in ADU (MU_THRESHOLD, ISO0..7, CLASS_STAR).
    pub analysis_thresh: f64,
    /// SATUR_LEVEL (FWHM_IMAGE leaves saturated pixels out).
    pub satur_level: f64,
    /// The rows the scan lags behind when it blanks detections (the filter's half
    /// height + 1, or 1 unfiltered): what a LOCAL annulus sees as blanked.
    pub blankh: usize,
    /// The background at a pixel (BACKGROUND).
    pub background: &'a (dyn Fn(f64, f64) -> f64 + Sync),
    /// The WCS, for the pixel scale of MU_* and CLASS_STAR when PIXEL_SCALE is 0.
    pub world: Option<&'a crate::world::WorldSettings>,
}

/// Measures the photometry of `o` on `field`; `runs` are its pixels.
/// None when the field's rows do not hold every pixel the measurements read.
pub fn measure(field: &Field, o: &Object, runs: &[Run], cx: &Context) -> Option<Photometry> {
    let p = cx.params;
    let v = View::new(field, runs.to_vec(), p.mask_type);
    let e = Ellipse::of(o);
    let zp = f32_param(cx.zeropoint);
    let mut ph = Photometry::default();
    let mut fl = 0u32;
    let mut flag = |clipped: bool, crowded: bool| {
        fl |= if clipped { flags::APER_TRUNCATED } else { 0 };
        fl |= if crowded { flags::CROWDED } else { 0 };
    };
    // BACKPHOTO_TYPE LOCAL: the residual background of the annulus corrects the
    // isophotal flux and peak, the thresholds and every aperture but the growth
    // curve's and the window's (photometry.md §2).
    let dbkg = match p.backphoto {
        BackPhoto::Global => 0.0f32,
        BackPhoto::Local => local_background(&v, o, p.backphoto_thick, cx.blankh),
    };
    let corrected;
    let o = if dbkg != 0.0 {
        let mut c = o.clone();
        c.flux = (o.flux as f32 - o.npix as f32 * dbkg) as f64;
        c.flux_max = (o.flux_max as f32 - dbkg) as f64;
        corrected = c;
        &corrected
    } else {
        o
    };
    ph.dbkg = dbkg as f64;
    (ph.flux_iso, ph.flux_max) = (o.flux, o.flux_max);
    // FLUX_ISOCOR (photometry.md §8), from the float FLUX_ISO.
    let iso = o.flux as f32;
    let ati = if iso > 0.0 {
        ((o.npix as f32 * o.thresh as f32) / iso).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ati64, iso64) = (ati as f64, iso as f64);
    ph.flux_isocor = (iso64 / (1.0 - 0.196099 * ati64 - 0.751208 * ati64 * ati64)) as f32 as f64;
    let var_iso = (o.fluxerr * o.fluxerr) as f32;
    ph.fluxerr_isocor = if iso > 0.0 {
        let s = (var_iso / (iso * iso)) as f64;
        let dl = if o.npix > 0 {
            ati64 * (s + 1.0 / o.npix as f64).sqrt()
        } else {
            0.0
        };
        let dl = 0.196099 * dl + 2.0 * 0.751208 * ati64 * dl;
        ((s + dl * dl).sqrt() * iso64) as f32 as f64
    } else {
        (var_iso as f64).sqrt()
    };
    let want = p.want;
    // Fixed apertures.
    for &d in p.apertures.iter().filter(|_| want.aper) {
        let (flux, var, clipped) = aperture(&v, &e, d, cx.gain, dbkg as f64);
        flag(clipped, false);
        let err = var.sqrt();
        ph.flux_aper.push(flux as f32 as f64);
        ph.fluxerr_aper.push(err as f32 as f64);
        // From the double flux and error (photometry.md §3).
        let (mag, magerr) = mags(flux, err, zp);
        ph.mag_aper.push(mag);
        ph.magerr_aper.push(magerr);
    }
    // Kron.
    let (k, kmin) = (f32_param(p.auto_params.0), f32_param(p.auto_params.1));
    let (d0, d1) = (f32_param(p.auto_apers.0), f32_param(p.auto_apers.1));
    // Kron's and Petrosian's first passes read the same pixels.
    let first = region_first(&e, d0);
    let (px, first_clipped) = match (want.auto || want.petro, field.detection) {
        (false, _) => (Vec::new(), false),
        (true, None) => first_pass_pixels(&v, &e, &first),
        (true, Some(d)) => {
            let det = Field {
                values: d,
                detection: None,
                ..*field
            };
            first_pass_pixels(&View::new(&det, runs.to_vec(), p.mask_type), &e, &first)
        }
    };
    let (r1, v1, c1, clipped) = match want.auto {
        true => {
            let (r1, v1, c1) = kron_first_pass(&px, &first);
            (r1, v1, c1, first_clipped)
        }
        false => (0.0, 0.0, FirstPass { good: 0, bad: 0 }, false),
    };
    flag(clipped, c1.crowded());
    if c1.good + c1.bad > 0 {
        let kr = if r1 > 0.0 && v1 > 0.0 {
            ((k * r1 / v1) as f32 as f64).max(kmin) as f32
        } else {
            kmin as f32
        };
        let (flux, err, radius, crowded, clipped) = radius_flux(&v, &e, kr, d1, cx.gain, dbkg);
        flag(clipped, crowded);
        (ph.flux_auto, ph.fluxerr_auto, ph.kron_radius) = (flux, err, radius);
    }
    (ph.mag_auto, ph.magerr_auto) = mags(ph.flux_auto, ph.fluxerr_auto, zp);
    // Petrosian.
    let (eta, pmin) = (f32_param(p.petro_params.0), f32_param(p.petro_params.1));
    let (kmea, c1, defined, clipped) = match want.petro {
        true => {
            let (kmea, c1, defined) = petro_first_pass(&px, &first);
            (kmea, c1, defined, first_clipped)
        }
        false => (0.0, FirstPass { good: 0, bad: 0 }, false, false),
    };
    flag(clipped, c1.crowded());
    if c1.good + c1.bad > 0 {
        let pr = if defined {
            ((eta * kmea as f64) as f32 as f64).max(pmin) as f32
        } else {
            pmin as f32
        };
        let (flux, err, radius, crowded, clipped) = radius_flux(&v, &e, pr, d1, cx.gain, dbkg);
        flag(clipped, crowded);
        (ph.flux_petro, ph.fluxerr_petro, ph.petro_radius) = (flux, err, radius);
    }
    (ph.mag_petro, ph.magerr_petro) = mags(ph.flux_petro, ph.fluxerr_petro, zp);
    // The growth curve, FLUX_RADIUS and the half-light radius.
    if want.growth {
        let (g, step, rlim, clipped) = growth_curve(&v, o, d0);
        flag(clipped, false);
        let auto = ph.flux_auto;
        for &frac in &p.flux_frac {
            let r = radius_at(&g, step, rlim, f32_param(frac) * auto);
            ph.flux_radius.push(r as f32 as f64);
        }
        if want.win {
            let hlr = radius_at(&g, step, rlim, 0.5 * auto)
                .abs()
                .min(rlim)
                .max(0.5);
            let (win, clipped) = windowed(&v, o, hlr as f32, cx.gain);
            flag(clipped, false);
            ph.win = win;
        }
    }
    ph.flags = fl;
    // Best flux.
    let crowded = (o.flags | fl) & flags::CROWDED != 0;
    (ph.flux_best, ph.fluxerr_best) = if crowded {
        (ph.flux_isocor, ph.fluxerr_isocor)
    } else {
        (ph.flux_auto, ph.fluxerr_auto)
    };
    (ph.mag_best, ph.magerr_best) = mags(ph.flux_best, ph.fluxerr_best, zp);
    // Surface brightness: the pixel's area on the sky at the object (the WCS's local
    // Jacobian); without a WCS a pixel is one "degree" wide, as in SExtractor.
    let omega = if p.pixel_scale > 0.0 {
        f32_param(p.pixel_scale) * f32_param(p.pixel_scale)
    } else {
        match cx
            .world
            .and_then(|w| w.wcs.jacobian([o.x + 1.0, o.y + 1.0]))
        {
            Some(j) => j.area * 3600.0 * 3600.0,
            None => 3600.0 * 3600.0,
        }
    };
    let mu = |v: f64| {
        if v > 0.0 {
            (-2.5 * (v / omega).log10() + zp) as f32 as f64
        } else {
            99.0
        }
    };
    ph.mu_max = mu(o.flux_max);
    ph.mu_threshold = mu((cx.analysis_thresh as f32 - dbkg) as f64);
    ph.background = ((cx.background)(o.x, o.y) as f32 + dbkg) as f64;
    if want.class {
        classify(&mut ph, field, o, &v.own, cx);
    }
    if let Some((w, h)) = want.vignet {
        ph.vignet = vignet(&v, o, w, h);
    }
    (!v.missed.get()).then_some(ph)
}

/// The rows `lo..hi` that the photometry of `o` reads in an image `height` rows
/// high, as far as its shape tells before measuring (the bounding box, the
/// apertures, the first-pass ellipse, the growth curve's 6A, the window's 4σ and a
/// Kron or Petrosian radius from non-negative pixels); [`measure`] says (None) when
/// an object needed more.
pub fn rows_needed(o: &Object, p: &PhotParams, height: usize) -> (usize, usize) {
    let e = Ellipse::of(o);
    let dmax = p.apertures.iter().copied().fold(0.0f64, f64::max);
    let (d0, d1) = p.auto_apers;
    let rlim = (6.0 * o.a).max(d0);
    let kmax = [
        6.0,
        6.0 * p.auto_params.0,
        p.auto_params.1,
        6.0 * p.petro_params.0,
        p.petro_params.1,
    ]
    .into_iter()
    .fold(0.0f64, f64::max);
    let ell = Region::ellipse(&e, kmax as f32).dylim as f64;
    let reach = [
        dmax / 2.0 + 1.5,
        rlim + 2.5,
        3.5 * rlim + 2.0,
        ell + 1.0,
        d0.max(d1) / 2.0 + 1.0,
        p.want.vignet.map_or(0.0, |(_, h)| (h / 2 + 1) as f64),
    ]
    .into_iter()
    .fold(0.0f64, f64::max)
        + 2.0;
    let mut lo = ((o.y - reach).floor().max(0.0) as usize).min(o.ymin as usize);
    let mut hi = (((o.y + reach).ceil() as usize).saturating_add(1)).max(o.ymax as usize + 1);
    if p.backphoto == BackPhoto::Local {
        let oy = (o.ymax - o.ymin) as usize + 1;
        let by = if oy < height / 2 {
            oy / 4
        } else {
            (height - oy) / 4
        };
        lo = lo.min((o.ymin as usize).saturating_sub(by + p.backphoto_thick));
        hi = hi.max(o.ymax as usize + 1 + by + p.backphoto_thick);
    }
    (lo, hi.min(height))
}

/// VIGNET(w,h) (photometry.md §13): the w x h pixels around the integer centre,
/// row-major from the low y, as the measurement reads them: −1e30 off the image, on
/// bad pixels and (MASK_TYPE BLANK or CORRECT) on other detections, with no mirror;
/// all −1e30 when the centre is off the image.
fn vignet(v: &View, o: &Object, w: usize, h: usize) -> Vec<f32> {
    const OFF: f32 = -1e30;
    let (ix, iy) = ((o.x + 0.49999) as i64, (o.y + 0.49999) as i64);
    let (fw, fh) = (v.f.width as i64, v.f.height as i64);
    if !(0..fw).contains(&ix) || !(0..fh).contains(&iy) {
        return vec![OFF; w * h];
    }
    let (x0, y0) = (ix - (w / 2) as i64, iy - (h / 2) as i64);
    let mut out = Vec::with_capacity(w * h);
    for y in y0..y0 + h as i64 {
        for x in x0..x0 + w as i64 {
            let inside = (0..fw).contains(&x) && (0..fh).contains(&y);
            out.push(if inside {
                v.read(x as usize, y as usize).unwrap_or(OFF)
            } else {
                OFF
            });
        }
    }
    out
}

/// The LOCAL background residual of `o` (photometry.md §2): the mesh estimate of
/// the valid pixels of the annulus between its bounding box grown by a quarter of
/// its size and that grown by `thick`, all inside the image (else 0), without the
/// detections the scan had blanked when the object was completed (rows up to its
/// last + 1 − `blankh`).
fn local_background(v: &View, o: &Object, thick: usize, blankh: usize) -> f32 {
    let f = v.f;
    let (w, h, t) = (f.width as i64, f.height as i64, thick as i64);
    let margin = |size: i64, full: i64| {
        if size < full / 2 {
            size / 4
        } else {
            (full - size) / 4
        }
    };
    let bx = margin((o.xmax - o.xmin) as i64 + 1, w);
    let by = margin((o.ymax - o.ymin) as i64 + 1, h);
    let (ix0, ix1) = (o.xmin as i64 - bx, o.xmax as i64 + 1 + bx);
    let (iy0, iy1) = (o.ymin as i64 - by, o.ymax as i64 + 1 + by);
    let (x0, x1, y0, y1) = (ix0 - t, ix1 + t, iy0 - t, iy1 + t);
    if x0 < 0 || y0 < 0 || x1 >= w || y1 >= h {
        return 0.0;
    }
    let blanked_to = o.ymax as i64 + 1 - blankh as i64;
    let mut vals = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            if (ix0..ix1).contains(&x) && (iy0..iy1).contains(&y) {
                continue;
            }
            if let Some((val, det)) = v.raw(x as usize, y as usize) {
                if !(det && v.mask != MaskType::None && y <= blanked_to) {
                    vals.push(val);
                }
            }
        }
    }
    crate::background::mesh_stat(&vals, vals.len()).map_or(0.0, |s| s.back)
}

/// ISO0..ISO7, FWHM_IMAGE and CLASS_STAR (photometry.md §11) from the object's own
/// pixels `own`.
fn classify(ph: &mut Photometry, f: &Field, o: &Object, own: &[Run], cx: &Context) {
    let p = cx.params;
    let d = ph.dbkg as f32;
    let t = cx.analysis_thresh as f32 - d;
    // The object's own peak: FLUX_MAX unless cleaning merged a brighter one into it.
    let peak = own
        .iter()
        .flat_map(|r| {
            f.values[(r.y as usize - f.y0) * f.width..][r.x0 as usize..r.x1 as usize].iter()
        })
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
        - d;
    let peak = if peak.is_finite() {
        peak.min(o.flux_max as f32)
    } else {
        o.flux_max as f32
    };
    let levels: [f32; 8] = std::array::from_fn(|i| {
        if peak > 0.0 && t > 0.0 {
            (t as f64 * ((peak / t) as f64).powf(i as f64 / 8.0)) as f32
        } else {
            0.0
        }
    });
    let t0 = (peak / 5.0).max(t);
    let top = cx.satur_level - ph.background;
    let (mut s, mut s1, mut s2, mut sl, mut slr) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for r in own {
        let y = r.y as usize;
        let row = &f.values[(y - f.y0) * f.width..];
        for x in r.x0 as usize..r.x1 as usize {
            let v = row[x];
            for (k, &l) in levels.iter().enumerate() {
                if v > l {
                    ph.iso[k] += 1;
                } else {
                    break;
                }
            }
            let vc = v as f64 - d as f64;
            if t0 > 0.0 && vc > t0 as f64 && vc < top {
                let (dx, dy) = (x as f64 - o.x, y as f64 - o.y);
                let r2 = dx * dx + dy * dy;
                let (q, ln) = (vc * vc, vc.ln());
                s += q;
                s1 += q * r2;
                s2 += q * r2 * r2;
                sl += q * ln;
                slr += q * r2 * ln;
            }
        }
    }
    let d = s * s2 - s1 * s1;
    ph.fwhm = 0.0;
    if t0 > 0.0 && d.abs() > 0.0 {
        let bmin = 1.0f32 / (13.0 * o.a as f32 * o.b as f32);
        let b = (-(s * slr - s1 * sl) / d).max(bmin as f64);
        let fwhm = (1.6651 / b.sqrt()) as f32;
        ph.fwhm = if fwhm > 0.0 {
            (fwhm - 1.0 / (4.0 * fwhm)) as f64
        } else {
            0.0
        };
    }
    let Some(nnw) = &p.star_nnw else {
        return;
    };
    let seeing = f32_param(p.seeing_fwhm);
    let scale = if p.pixel_scale > 0.0 {
        f32_param(p.pixel_scale)
    } else {
        cx.world.map_or(3600.0, |w| w.wcs.field_scale_arcsec())
    };
    let f2 = (seeing / scale) * (seeing / scale);
    let area = |n: u32, zero: f64| {
        if n > 0 {
            (n as f64 / f2).log10()
        } else {
            zero
        }
    };
    let mut input = [0.0f64; 10];
    input[0] = area(ph.iso[0], 0.01f64.log10());
    let ta = cx.analysis_thresh as f32;
    input[1] = if ta <= 0.0 {
        -1.0
    } else if o.flux_max > 0.0 {
        ((o.flux_max as f32 / ta) as f64).log10()
    } else {
        0.1f64.log10()
    };
    for i in 1..8 {
        input[i + 1] = area(ph.iso[i], -2.0);
    }
    input[9] = seeing.log10();
    ph.class_star = nnw.eval(&input) as f32 as f64;
}

/// Measures the photometry of every object of a whole-image extraction (in
/// parallel), whose detected pixels are the bits of `detected`; each object's FLAGS
/// gets bits 1 and 16.
pub fn measure_extraction(
    x: &mut crate::Extraction,
    detected: &mut [u64],
    paste: &crate::spill::PasteBack,
    mask: Option<&crate::Mask>,
    p: &crate::ExtractParams,
    measurement: Option<(&crate::Image, &crate::Background)>,
) {
    let sub = match measurement {
        Some((m, _)) => m,
        None => x.subtracted(),
    };
    clear_runs(
        detected,
        sub.width(),
        0,
        paste.restored(blankh(p), (0, sub.height())),
    );
    let detected = &*detected;
    let field = Field {
        width: sub.width(),
        height: sub.height(),
        y0: 0,
        values: sub.data(),
        detected,
        mask: mask.map(|m| m.data()),
        sigma2: sigma2(measurement.map_or(&x.background, |m| m.1)),
        detection: measurement.map(|_| x.subtracted().data()),
    };
    let (objects, seg) = (&x.catalog.objects, &x.segmentation);
    let items: Vec<(&Object, &[Run])> = (0..objects.len())
        .map(|k| (&objects[k], paste.own_of(k).unwrap_or(seg.object(k))))
        .collect();
    let phots = measure_many(
        &field,
        &items,
        measurement.map_or(&x.background, |m| m.1),
        p,
    );
    for (o, ph) in x.catalog.objects.iter_mut().zip(phots) {
        set(
            o,
            ph.expect("the whole image holds every pixel"),
            p.mag_zeropoint,
        );
    }
}

/// σ² of a pixel: f32(global RMS²), as SExtractor.
pub(crate) fn sigma2(bg: &crate::Background) -> f64 {
    let g = bg.global_rms() as f32;
    (g * g) as f64
}

/// Gives `o` its photometry and FLAGS bits 1 and 16.
pub(crate) fn set(o: &mut Object, ph: Photometry, zeropoint: f64) {
    if ph.dbkg != 0.0 {
        // LOCAL: FLUX_ISO and FLUX_MAX, and the magnitudes of the isophotal flux.
        (o.flux, o.flux_max) = (ph.flux_iso, ph.flux_max);
        o.mag = magnitude(o.flux, zeropoint);
        o.magerr = magnitude_error(o.flux, o.fluxerr);
        o.mag_isocor = crate::measure::mag_isocor(o.flux, o.npix as f64, o.thresh, zeropoint);
    }
    o.flags |= ph.flags;
    o.phot = Some(Box::new(ph));
}

/// The photometry of each (object, its runs) on `field`, in parallel (None where the
/// field's rows are too few).
pub(crate) fn measure_many(
    field: &Field,
    items: &[(&Object, &[Run])],
    bg: &crate::Background,
    p: &crate::ExtractParams,
) -> Vec<Option<Photometry>> {
    use rayon::prelude::*;
    let analysis_thresh = p.thresh_adu(p.analysis_thresh, bg.global_rms());
    let back = |x: f64, y: f64| bg.bilinear_back(x, y);
    let cx = Context {
        params: &p.phot,
        gain: p.gain,
        zeropoint: p.mag_zeropoint,
        analysis_thresh,
        satur_level: p.satur_level,
        blankh: blankh(p),
        background: &back,
        world: p.world.as_deref(),
    };
    items
        .par_iter()
        .map(|&(o, runs)| measure(field, o, runs, &cx))
        .collect()
}

/// The first-pass region of Kron and Petrosian photometry: the ellipse of reduced
/// radius 6 (3 x MARGIN_SCALE), or the circle of diameter PHOT_AUTOAPERS[0].
fn region_first(e: &Ellipse, d0: f64) -> Region {
    Region::choose(e, 6.0, d0).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: usize, h: usize, v: f32) -> (Vec<f32>, Vec<u64>) {
        (vec![v; w * h], vec![0; (w * h).div_ceil(64)])
    }

    fn round_object(x: f64, y: f64) -> Object {
        Object {
            x,
            y,
            a: 2.0,
            b: 2.0,
            cxx: 0.25,
            cyy: 0.25,
            x2: 4.0,
            y2: 4.0,
            npix: 10,
            ..Default::default()
        }
    }

    /// A field of `w` x `h` pixels with σ² 4.
    fn test_field<'a>(w: usize, h: usize, values: &'a [f32], detected: &'a [u64]) -> Field<'a> {
        Field {
            width: w,
            height: h,
            y0: 0,
            values,
            detected,
            mask: None,
            sigma2: 4.0,
            detection: None,
        }
    }

    /// Noise-like values from a fixed seed.
    fn noisy(w: usize, h: usize) -> (Vec<f32>, Vec<u64>) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let vals = (0..w * h)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 200.0 - 50.0
            })
            .collect();
        (vals, vec![0u64; (w * h).div_ceil(64)])
    }

    /// The AVX2 code paths give the plain code's bits (this machine takes the AVX2
    /// ones everywhere else, so these are what keep the plain ones honest).
    #[test]
    fn the_avx2_paths_equal_the_plain_ones() {
        let (vals, det) = noisy(96, 96);
        let f = test_field(96, 96, &vals, &det);
        let v = View::new(&f, Vec::new(), MaskType::Correct);
        for (k, a) in [0.7, 1.3, 2.0, 3.7, 6.2, 11.0].into_iter().enumerate() {
            let mut o = round_object(40.0 + 0.37 * k as f64, 47.0 - 0.61 * k as f64);
            (o.a, o.b) = (a, 0.8 * a);
            assert_eq!(
                growth_curve(&v, &o, 0.0),
                growth_curve_plain(&v, &o, 0.0),
                "A {a}"
            );
            assert_eq!(
                windowed(&v, &o, a as f32, 2.0),
                windowed_body(&v, &o, a as f32, 2.0)
            );
            let e = Ellipse::of(&o);
            assert_eq!(
                aperture(&v, &e, 4.0 * a, 2.0, 0.3),
                aperture_body(&v, &e, 4.0 * a, 2.0, 0.3)
            );
        }
        for n in [5, 11] {
            let step = 1.0 / n as f32;
            let sub = Sub::new(n, 0.5 * (step - 1.0), step, step * step);
            assert_eq!(sub.avx2, sub_avx2());
            let mut counted = 0;
            for i in 0..4000 {
                let (dx, dy) = ((i % 63) as f32 * 0.173 - 5.3, (i / 63) as f32 * 0.191 - 6.1);
                let r2 = 9.0 + (i % 7) as f32 * 1.37;
                let want = sub.inside_plain(dx, dy, r2);
                assert_eq!(sub.inside(dx, dy, r2), want, "({dx}, {dy}) r² {r2}");
                counted += (want > 0.0 && want < sub.sums[n * n]) as usize;
            }
            assert!(counted > 100, "partial pixels were tested");
        }
    }

    fn sub_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    #[test]
    fn a_flat_field_gives_the_area_of_the_aperture() {
        let (vals, det) = flat(64, 64, 1.0);
        let f = test_field(64, 64, &vals, &det);
        let v = View::new(&f, Vec::new(), MaskType::Correct);
        let e = Ellipse::of(&round_object(32.0, 32.0));
        for d in [5.0, 10.0, 20.0] {
            let (flux, var, clipped) = aperture(&v, &e, d, 0.0, 0.0);
            let area = std::f64::consts::PI * d * d / 4.0;
            assert!((flux - area).abs() < 0.02 * area, "{d}: {flux} vs {area}");
            assert!((var - 4.0 * flux).abs() < 1e-9);
            assert!(!clipped);
        }
        // Off the edge: flagged (FLAGS 16).
        let e = Ellipse::of(&round_object(1.0, 32.0));
        assert!(aperture(&v, &e, 10.0, 0.0, 0.0).2);
        // SExtractor's box truncates toward zero: x from trunc(x̄ − r + 0.499999), so
        // a circle of radius 5 at x̄ = 3.9 crosses the edge by 1.1 px unflagged, and
        // at 3.4 (bound −1.1 → −1) is flagged. Its flux is the pixels inside.
        let e = Ellipse::of(&round_object(3.9, 32.0));
        let (flux, _, clipped) = aperture(&v, &e, 10.0, 0.0, 0.0);
        assert!(
            !clipped && flux < std::f64::consts::PI * 25.0 - 1.5,
            "{flux}"
        );
        let e = Ellipse::of(&round_object(3.4, 32.0));
        assert!(aperture(&v, &e, 10.0, 0.0, 0.0).2);
    }

    #[test]
    fn neighbours_are_mirrored_and_own_pixels_are_not_neighbours() {
        let (mut vals, mut det) = flat(32, 32, 1.0);
        // A neighbour at (20, 16), value 100, detected; the object's own pixel at
        // (16, 16), detected too.
        vals[16 * 32 + 20] = 100.0;
        mark_runs(
            &mut det,
            32,
            0,
            &[Run {
                y: 16,
                x0: 20,
                x1: 21,
            }],
        );
        mark_runs(
            &mut det,
            32,
            0,
            &[Run {
                y: 16,
                x0: 16,
                x1: 17,
            }],
        );
        let f = Field {
            width: 32,
            height: 32,
            y0: 0,
            values: &vals,
            detected: &det,
            mask: None,
            sigma2: 1.0,
            detection: None,
        };
        let own = vec![Run {
            y: 16,
            x0: 16,
            x1: 17,
        }];
        let e = Ellipse::of(&round_object(16.0, 16.0));
        let correct = View::new(&f, own.clone(), MaskType::Correct);
        let none = View::new(&f, own.clone(), MaskType::None);
        let blank = View::new(&f, own, MaskType::Blank);
        let (fc, _, _) = aperture(&correct, &e, 12.0, 0.0, 0.0);
        let (fnone, _, _) = aperture(&none, &e, 12.0, 0.0, 0.0);
        let (fb, _, _) = aperture(&blank, &e, 12.0, 0.0, 0.0);
        assert!((fnone - fc - 99.0).abs() < 1e-9, "{fnone} {fc}");
        assert!((fc - fb - 1.0).abs() < 1e-9, "{fc} {fb}");
        assert!(correct.read(16, 16).is_some() && correct.read(20, 16).is_none());
    }

    #[test]
    fn a_window_too_small_is_said_not_measured() {
        let (vals, det) = flat(64, 64, 1.0);
        let p = PhotParams {
            want: Wanted::from_columns(["FLUX_RADIUS", "FLUX_APER"]),
            ..Default::default()
        };
        let back = |_: f64, _: f64| 0.0;
        let cx = Context {
            params: &p,
            gain: 0.0,
            zeropoint: 0.0,
            analysis_thresh: 1.0,
            satur_level: 5e4,
            blankh: 2,
            background: &back,
            world: None,
        };
        let o = Object {
            ymin: 31,
            ymax: 33,
            ..round_object(32.0, 32.0)
        };
        let runs = [Run {
            y: 32,
            x0: 31,
            x1: 34,
        }];
        let field = |y0: usize, rows: usize| Field {
            width: 64,
            height: 64,
            y0,
            values: &vals[y0 * 64..(y0 + rows) * 64],
            detected: &det,
            mask: None,
            sigma2: 1.0,
            detection: None,
        };
        // The growth curve reaches 6A + 1.5 = 13.5 rows from the centre.
        assert!(measure(&field(28, 10), &o, &runs, &cx).is_none());
        let (lo, hi) = rows_needed(&o, &p, 64);
        assert!(lo <= 32 - 14 && hi >= 32 + 15, "{lo}..{hi}");
        let inside = measure(&field(lo, hi - lo), &o, &runs, &cx).unwrap();
        assert_eq!(Some(inside), measure(&field(0, 64), &o, &runs, &cx));
    }

    #[test]
    fn networks_are_read_and_evaluated_as_the_format_says() {
        // 2 inputs, 1 output: sigmoid(1·x0 − 1·y0 + 0.5), inputs scaled by 2 then
        // shifted by 1, output unshifted and unscaled.
        let text = "NNW\n# a comment\n 2 2 1\n\n 1 1\n 2 2\n 1 -1 0.5\n 0\n 1\n";
        let n = Nnw::parse(text).unwrap();
        assert_eq!(n.inputs(), 2);
        let (a, b) = (0.3f64, -0.2f64);
        let z = (2.0 * a + 1.0) - (2.0 * b + 1.0) + 0.5;
        assert!((n.eval(&[a, b]) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-12);
        assert!(Nnw::parse("CONV\n 2 2 1").unwrap_err().contains("NNW"));
        assert!(Nnw::parse("NNW\n 2 2 1\n 1 1\n 2")
            .unwrap_err()
            .contains("ends"));
        assert!(Nnw::parse("NNW\n 5 2 1").unwrap_err().contains("layers"));
    }

    #[test]
    fn growth_radii_interpolate_the_cumulative_curve() {
        let mut g = [0.0f64; 64];
        for (i, v) in g.iter_mut().enumerate() {
            *v = (i + 1) as f64;
        }
        // Half of 64 is reached at bin 31 exactly: r = step·(31 + 1) ... interpolated.
        let r = radius_at(&g, 0.5, 32.0, 32.0);
        assert!((r - 0.5 * 31.0 - 0.5).abs() < 1e-12, "{r}");
        assert_eq!(radius_at(&g, 0.5, 32.0, 0.5), 0.25);
    }
}
