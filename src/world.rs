//! World coordinates: pixel positions and shapes on the sky, as SExtractor 2.25 makes
//! them (../shared/spec/wcs.md, from the FITS WCS papers, the TPV convention and
//! Shupe et al. 2005 for SIP).
//!
//! - **Header** ([`Header`]): the image's cards, first occurrence of a keyword
//!   winning, with a SCAMP `.head` file beside the image merged over them
//!   ([`external_header`]).
//! - **Linear part**: `CD · (p − CRPIX)` from CD, else PC·CDELT, else CDELT+CROTA2,
//!   with SExtractor's defaults (CRPIX 1, CDELT 1, a missing CD element 1 on the
//!   diagonal and 0 elsewhere).
//! - **Celestial pair**: two axes `RA--`/`DEC-` or `?LON`/`?LAT` with one projection
//!   code. TAN (with the TPV polynomial whenever a PV coefficient is set), SIN
//!   (slant too, and NCP as slant SIN) and CAR are deprojected here, with the
//!   spherical rotation of Calabretta & Greisen (2002); every other projection goes
//!   through the `wcs` crate (cds-astro), fed the intermediate coordinates computed
//!   here. The crate lacks TPV and slant SIN, and its SIP polynomial is wrong
//!   (spec §4), so those are ours; SIP is applied only when asked (`sip`), since
//!   SExtractor ignores it.
//! - **Frames**: galactic, ecliptic and supergalactic axes are turned into
//!   equatorial coordinates (§8.1); ALPHA_J2000 precesses from EQUINOX with the IAU
//!   1976 angles (§8.2); ALPHA_B1950 is the FK5 → FK4 conversion of Standish (§8.3).
//! - **Shapes** ([`Jacobian`]): the local Jacobian by +1-pixel differences; second
//!   moments transformed with SExtractor's formula (its cross terms lack a factor 2,
//!   [`MomentTransform::Sextractor`]) or exactly.
//!
//! Positions here are FITS 1-based pixels (the catalog's X_IMAGE); angles degrees.

use crate::error::{Error, Result};
use std::f64::consts::PI;

const D2R: f64 = PI / 180.0;
const R2D: f64 = 180.0 / PI;

/// A world value that could not be computed (an unreachable point), as SExtractor
/// writes it.
pub const UNREACHABLE: f64 = 1e31;

/// A FITS header as keyword → value text, the first card of a keyword winning.
#[derive(Clone, Debug, Default)]
pub struct Header {
    cards: Vec<(String, String)>,
}

/// A card's keyword and value text (strings without their quotes), or None for a
/// card without a value.
fn parse_card(card: &str) -> Option<(String, String)> {
    let card = card.trim_end();
    let (key, rest) = if card.len() >= 9 && card.get(8..9) == Some("=") {
        (card.get(..8)?.trim(), card.get(9..)?)
    } else {
        // Free-format `.head` lines: KEY = value.
        let (k, r) = card.split_once('=')?;
        let k = k.trim();
        if k.is_empty() || k.len() > 8 || k.contains(' ') {
            return None;
        }
        (k, r)
    };
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let rest = rest.trim_start();
    let value = if let Some(s) = rest.strip_prefix('\'') {
        // A string: up to the closing quote ('' is a quote inside).
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    out.push('\'');
                }
                '\'' => break,
                c => out.push(c),
            }
        }
        out.trim_end().to_string()
    } else {
        rest.split('/').next().unwrap_or("").trim().to_string()
    };
    Some((key.to_ascii_uppercase(), value))
}

impl Header {
    /// A header from its 80-character cards (END and anything after it ignored).
    pub fn from_cards<S: AsRef<str>>(cards: &[S]) -> Header {
        let mut h = Header::default();
        for c in cards {
            let c = c.as_ref();
            if c.starts_with("END") && c[3..].trim().is_empty() {
                break;
            }
            if let Some((k, v)) = parse_card(c) {
                if h.raw(&k).is_none() {
                    h.cards.push((k, v));
                }
            }
        }
        h
    }

    /// Merges the cards of an external header over this one: each valid card
    /// replaces the card of its keyword or is appended (SIMPLE, BITPIX, NAXIS, BSCALE
    /// and BZERO are left alone).
    pub fn merge<S: AsRef<str>>(&mut self, cards: &[S]) {
        for c in cards {
            let Some((k, v)) = parse_card(c.as_ref()) else {
                continue;
            };
            if ["SIMPLE", "BITPIX", "BSCALE", "BZERO"].contains(&k.as_str())
                || k.starts_with("NAXIS")
            {
                continue;
            }
            match self.cards.iter_mut().find(|(key, _)| *key == k) {
                Some(card) => card.1 = v,
                None => self.cards.push((k, v)),
            }
        }
    }

    /// The value text of `key`.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.cards
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The numeric value of `key` (Fortran `D` exponents allowed).
    pub fn number(&self, key: &str) -> Option<f64> {
        let t = self.raw(key)?.replace(['D', 'd'], "E");
        t.trim().parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Whether any keyword satisfies `f`.
    fn any(&self, f: impl Fn(&str) -> bool) -> bool {
        self.cards.iter().any(|(k, _)| f(k))
    }
}

/// The name of the external header of image `path` (without `[ext]`): everything
/// from the last '.' of the path replaced by `suffix` (SExtractor's rule: a dot-free
/// file name in a dotted folder hits the folder's dot).
pub fn external_header_path(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let s = path.to_string_lossy();
    match s.rfind('.') {
        Some(i) => format!("{}{suffix}", &s[..i]).into(),
        None => format!("{s}{suffix}").into(),
    }
}

/// The cards of block `block` (1-based; blocks end with END) of the external header
/// `path`, None when there is no such file. One block serves each image HDU of the
/// file, in order.
pub fn external_header(path: &std::path::Path, block: usize) -> Result<Option<Vec<String>>> {
    let text = match std::fs::read(path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::input(
                path,
                format!("cannot read this external header: {e}"),
            ))
        }
    };
    let mut blocks: Vec<Vec<String>> = vec![Vec::new()];
    for line in text.lines() {
        if line.starts_with("END") && line[3..].trim().is_empty() {
            blocks.push(Vec::new());
        } else {
            blocks.last_mut().expect("one block").push(line.to_string());
        }
    }
    Ok(blocks.into_iter().nth(block.max(1) - 1))
}

/// The sky frame of a celestial pair's axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkyFrame {
    Equatorial,
    Galactic,
    Ecliptic,
    Supergalactic,
}

impl SkyFrame {
    /// The equatorial (α, δ) of the frame's origin and pole (spec §8.1).
    fn origin_pole(self) -> Option<([f64; 2], [f64; 2])> {
        match self {
            SkyFrame::Equatorial => None,
            SkyFrame::Galactic => Some(([266.40499625, -28.93617242], [192.85948123, 27.12825120])),
            SkyFrame::Ecliptic => Some(([0.0, 0.0], [270.0, 66.560709])),
            SkyFrame::Supergalactic => Some(([42.308333, 59.528333], [283.754167, 15.708889])),
        }
    }

    /// (l, b) in this frame → equatorial (α, δ).
    fn to_equatorial(self, l: f64, b: f64) -> [f64; 2] {
        let Some((o, p)) = self.origin_pole() else {
            return [l, b];
        };
        let (ap, dp) = (p[0] * D2R, p[1] * D2R);
        let phi0 = (o[1] * D2R).cos() * ((p[0] - o[0]) * D2R).sin();
        let phi0 = phi0.asin();
        let lp = l * D2R - phi0;
        let b = b * D2R;
        let sd = b.sin() * dp.sin() - b.cos() * dp.cos() * lp.cos();
        let d = sd.clamp(-1.0, 1.0).asin();
        let a = ap + (b.cos() * dp.cos() * lp.sin()).atan2(b.sin() - sd * dp.sin());
        [(a * R2D).rem_euclid(360.0), d * R2D]
    }
}

/// How the deprojection is done.
#[derive(Debug)]
enum Proj {
    /// TAN (and TPV when `tpv` is set).
    Tan,
    /// SIN with its slant parameters (ξ, η) = (PV2_1, PV2_2); NCP is (0, cot δ₀).
    Sin(f64, f64),
    Car,
    /// CEA with λ = PV2_1.
    Cea(f64),
    /// CYP with μ = PV2_1, λ = PV2_2.
    Cyp(f64, f64),
    Mer,
    Sfl,
    Par,
    Mol,
    Ait,
    /// ZPN: the polynomial's coefficients PV2_0..PV2_20 and the end of its first
    /// rising stretch (radians), where the root is searched.
    Zpn(Vec<f64>, f64),
    /// Another projection, by the `wcs` crate: intermediate coordinates (degrees) as
    /// "pixels" with CRPIX 0 and an identity CD.
    Crate(Box<wcs::WCS>),
}

/// The spherical rotation from native (φ, θ) to celestial coordinates.
#[derive(Clone, Copy, Debug)]
struct Rotation {
    alpha_p: f64,
    delta_p: f64,
    phi_p: f64,
}

impl Rotation {
    /// The rotation of a projection with native reference latitude `theta0` (90 for
    /// zenithal ones), reference point `crval` (α₀, δ₀) and LONPOLE / LATPOLE.
    fn new(theta0: f64, crval: [f64; 2], lonpole: Option<f64>, latpole: Option<f64>) -> Self {
        let (a0, d0) = (crval[0], crval[1]);
        if theta0 == 90.0 {
            return Rotation {
                alpha_p: a0,
                delta_p: d0,
                phi_p: lonpole.unwrap_or(180.0),
            };
        }
        let phi0 = 0.0f64;
        let phi_p = lonpole.unwrap_or(if d0 >= theta0 { 0.0 } else { 180.0 });
        let (st0, ct0) = ((theta0 * D2R).sin(), (theta0 * D2R).cos());
        let dphi = (phi_p - phi0) * D2R;
        let sd0 = (d0 * D2R).sin();
        let cd0 = (d0 * D2R).cos();
        let a = st0.atan2(ct0 * dphi.cos());
        let c = ct0 * dphi.sin();
        let q = (sd0 / (1.0 - c * c).sqrt()).clamp(-1.0, 1.0);
        let b = q.acos();
        let (p1, p2) = ((a + b) * R2D, (a - b) * R2D);
        let target = latpole.unwrap_or(999.0);
        let (near, far) = if (p1 - target).abs() <= (p2 - target).abs() {
            (p1, p2)
        } else {
            (p2, p1)
        };
        let delta_p = if near.abs() <= 90.0 + 1e-10 {
            near
        } else {
            far
        }
        .clamp(-90.0, 90.0);
        let mut alpha_p = if cd0.abs() < 1e-12 {
            a0
        } else if (delta_p - 90.0).abs() < 1e-12 {
            a0 + phi_p - phi0 - 180.0
        } else if (delta_p + 90.0).abs() < 1e-12 {
            a0 - phi_p + phi0
        } else {
            let dp = delta_p * D2R;
            a0 - R2D * (dphi.sin() * ct0 / cd0).atan2((st0 - dp.sin() * sd0) / (dp.cos() * cd0))
        };
        if a0 >= 0.0 && alpha_p < 0.0 {
            alpha_p += 360.0;
        } else if a0 < 0.0 && alpha_p > 0.0 {
            alpha_p -= 360.0;
        }
        Rotation {
            alpha_p,
            delta_p,
            phi_p,
        }
    }

    /// Native (φ, θ) → celestial (α, δ), normalised as SExtractor.
    fn apply(&self, phi: f64, theta: f64) -> [f64; 2] {
        let (th, dp) = (theta * D2R, self.delta_p * D2R);
        let dphi = (phi - self.phi_p) * D2R;
        let x = -th.cos() * dphi.sin();
        let y = th.sin() * dp.cos() - th.cos() * dp.sin() * dphi.cos();
        let z = th.sin() * dp.sin() + th.cos() * dp.cos() * dphi.cos();
        let mut a = self.alpha_p + x.atan2(y) * R2D;
        let d = if z.abs() > 0.99 {
            (x.hypot(y)).min(1.0).acos().copysign(z) * R2D
        } else {
            z.asin() * R2D
        };
        if self.alpha_p >= 0.0 {
            if a < 0.0 {
                a += 360.0;
            }
        } else if a > 0.0 {
            a -= 360.0;
        }
        if a > 360.0 {
            a -= 360.0;
        } else if a < -360.0 {
            a += 360.0;
        }
        [a, d]
    }
}

/// A celestial pair of axes.
#[derive(Debug)]
struct Celestial {
    /// Axis indices (0-based) of the longitude and the latitude.
    lng: usize,
    lat: usize,
    frame: SkyFrame,
    code: String,
    proj: Proj,
    rotation: Rotation,
    /// TPV coefficients of the longitude and latitude axes (k = 0..=K).
    tpv: Option<[Vec<f64>; 2]>,
}

/// SIP distortion polynomials (A and B) and their orders.
#[derive(Clone, Debug)]
struct Sip {
    a: Vec<(i32, i32, f64)>,
    b: Vec<(i32, i32, f64)>,
}

/// How the second moments go to world coordinates (spec §7.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MomentTransform {
    /// J·C·Jᵀ exactly.
    #[default]
    Exact,
    /// SExtractor 2.25's formula, whose variance cross terms lack a factor 2
    /// (`--compat sextractor`).
    Sextractor,
}

/// An image's world coordinate system.
#[derive(Debug)]
pub struct Wcs {
    naxis: [usize; 2],
    crpix: [f64; 2],
    crval: [f64; 2],
    cd: [[f64; 2]; 2],
    sky: Option<Celestial>,
    sip: Option<Sip>,
    /// EQUINOX (a Julian epoch) and the frame (RADESYS).
    pub equinox: f64,
    pub radesys: String,
    /// Notes for the user (keywords ignored, SIP left out, no celestial axes).
    pub warnings: Vec<String>,
    /// The native pole's J2000 and B1950 images (THETA_J2000, THETA_B1950).
    pole_j2000: [f64; 2],
    pole_b1950: [f64; 2],
}

/// Projection codes SExtractor 2.25 knows (and NCP).
const CODES: &[&str] = &[
    "AZP", "TAN", "SIN", "STG", "ARC", "ZPN", "ZEA", "AIR", "CYP", "CAR", "MER", "CEA", "COP",
    "COD", "COE", "COO", "BON", "PCO", "GLS", "PAR", "AIT", "MOL", "CSC", "QSC", "TSC", "TNX",
    "TPV", "NCP", "SZP", "SFL",
];

/// Zenithal codes (native reference latitude 90).
const ZENITHAL: &[&str] = &[
    "AZP", "SZP", "TAN", "STG", "SIN", "ARC", "ZPN", "ZEA", "AIR", "NCP", "TPV",
];

impl Wcs {
    /// The WCS of a header of an image of `naxis` pixels. `sip`: apply SIP distortion
    /// (SExtractor ignores it, with a warning here).
    pub fn from_header(h: &Header, naxis: [usize; 2], sip: bool) -> Result<Wcs> {
        let bad = |what: String| Error::param("WCS", "header", what);
        let mut warnings = Vec::new();
        if h.number("NAXIS").is_some_and(|n| n > 2.0) {
            warnings.push("the header has more than 2 axes: only the first two are used".into());
        }
        let ctype: [String; 2] = [1, 2].map(|i| {
            let t = h.raw(&format!("CTYPE{i}")).unwrap_or("").to_string();
            t.chars().take(8).collect::<String>()
        });
        let crval = [1, 2].map(|i| h.number(&format!("CRVAL{i}")).unwrap_or(0.0));
        let crpix = [1, 2].map(|i| h.number(&format!("CRPIX{i}")).unwrap_or(1.0));
        let cdelt = [1, 2].map(|i| h.number(&format!("CDELT{i}")).unwrap_or(1.0));
        if cdelt.iter().any(|c| c.abs() < 1e-30) {
            return Err(bad(
                "CDELT1 or CDELT2 is 0: the pixel scale cannot be 0".into()
            ));
        }
        let element = |prefix: &str, i: usize, j: usize| {
            h.number(&format!("{prefix}{i}_{j}"))
                .unwrap_or(if i == j { 1.0 } else { 0.0 })
        };
        let is_cd = |k: &str| k.len() > 3 && k.starts_with("CD") && k.as_bytes()[3] == b'_';
        let cd = if h.any(is_cd) {
            [
                [element("CD", 1, 1), element("CD", 1, 2)],
                [element("CD", 2, 1), element("CD", 2, 2)],
            ]
        } else if h.any(|k| k.starts_with("PC") && k.contains('_')) {
            [1, 2].map(|i| [1, 2].map(|j| element("PC", i, j) * cdelt[i - 1]))
        } else if h.any(|k| k.starts_with("PC00")) {
            [1, 2].map(|i| {
                [1, 2].map(|j| {
                    h.number(&format!("PC{i:03}{j:03}"))
                        .unwrap_or(if i == j { 1.0 } else { 0.0 })
                        * cdelt[i - 1]
                })
            })
        } else {
            let r = h.number("CROTA2").unwrap_or(0.0) * D2R;
            [
                [cdelt[0] * r.cos(), -cdelt[1] * r.sin()],
                [cdelt[0] * r.sin(), cdelt[1] * r.cos()],
            ]
        };
        let epoch = h.number("EPOCH").unwrap_or(2000.0);
        let mut equinox = h.number("EQUINOX").unwrap_or(epoch);
        let radesys = h
            .raw("RADESYS")
            .or(h.raw("RADECSYS"))
            .map(|s| s.trim().to_ascii_uppercase());
        let mut radesys = radesys.unwrap_or_else(|| {
            if equinox >= 2000.0 {
                "ICRS".into()
            } else if equinox < 1984.0 {
                "FK4".into()
            } else {
                "FK5".into()
            }
        });
        if radesys.starts_with("FK4") && equinox == 2000.0 {
            equinox = h.number("EQUINOX").unwrap_or(1950.0);
        }
        if !["ICRS", "FK5", "FK4", "FK4-NO-E"].contains(&radesys.as_str()) {
            warnings.push(format!("RADESYS '{radesys}' is not known: taken as ICRS"));
            radesys = "ICRS".into();
        }
        let sky = celestial_pair(&ctype);
        let sip_keys = h.any(|k| k == "A_ORDER" || k == "B_ORDER");
        let sip_poly = if sip_keys {
            let poly = |p: &str| {
                let order = h.number(&format!("{p}_ORDER")).unwrap_or(0.0) as i32;
                let mut terms = Vec::new();
                for i in 0..=order {
                    for j in 0..=(order - i) {
                        if let Some(v) = h.number(&format!("{p}_{i}_{j}")) {
                            terms.push((i, j, v));
                        }
                    }
                }
                terms
            };
            if sip {
                Some(Sip {
                    a: poly("A"),
                    b: poly("B"),
                })
            } else {
                warnings.push(
                    "the header's SIP distortion (A_*, B_*, AP_*, BP_* keywords) is left out, \
                     as SExtractor does: give --sip to apply it"
                        .into(),
                );
                None
            }
        } else {
            None
        };
        let lonpole = h.number("LONPOLE").or(h.number("LONGPOLE"));
        let latpole = h.number("LATPOLE");
        let sky = match sky {
            None => {
                if !ctype[0].trim().is_empty() || !ctype[1].trim().is_empty() {
                    warnings.push(format!(
                        "CTYPE1 '{}' / CTYPE2 '{}' are not a celestial pair: world \
                         coordinates are linear",
                        ctype[0].trim(),
                        ctype[1].trim()
                    ));
                }
                None
            }
            Some((lng, lat, frame, code)) => {
                let pv = |axis: usize, m: usize| {
                    h.number(&format!("PV{}_{m}", axis + 1)).or_else(|| {
                        // The old PROJPm keywords are the latitude axis's PV.
                        (axis == lat)
                            .then(|| h.number(&format!("PROJP{m}")))
                            .flatten()
                    })
                };
                let c0 = [crval[lng], crval[lat]];
                let (proj, theta0, tpv) = match code.as_str() {
                    "TNX" => {
                        return Err(bad(
                            "the TNX projection (IRAF's WAT keywords) is not supported: \
                             convert the header to TPV (e.g. with SCAMP) or give a .head file"
                                .into(),
                        ))
                    }
                    "TAN" | "TPV" => {
                        let [cl, ca] = [lng, lat].map(|a| {
                            (0..40)
                                .map(|m| pv(a, m).unwrap_or(0.0))
                                .collect::<Vec<f64>>()
                        });
                        let k = (0..40).rev().find(|&m| cl[m] != 0.0 || ca[m] != 0.0);
                        let tpv = match k {
                            Some(k) if k > 0 => Some([cl[..=k].to_vec(), ca[..=k].to_vec()]),
                            _ => None,
                        };
                        (Proj::Tan, 90.0, tpv)
                    }
                    "SIN" => (
                        Proj::Sin(pv(lat, 1).unwrap_or(0.0), pv(lat, 2).unwrap_or(0.0)),
                        90.0,
                        None,
                    ),
                    "NCP" => {
                        let t = (c0[1] * D2R).tan();
                        if t == 0.0 {
                            return Err(bad(
                                "an NCP projection needs a reference declination (CRVAL) off \
                                 the equator"
                                    .into(),
                            ));
                        }
                        (Proj::Sin(0.0, 1.0 / t), 90.0, None)
                    }
                    "CAR" => (Proj::Car, 0.0, None),
                    "CEA" => (Proj::Cea(pv(lat, 1).unwrap_or(1.0)), 0.0, None),
                    "CYP" => (
                        Proj::Cyp(pv(lat, 1).unwrap_or(1.0), pv(lat, 2).unwrap_or(1.0)),
                        0.0,
                        None,
                    ),
                    "MER" => (Proj::Mer, 0.0, None),
                    "SFL" | "GLS" => (Proj::Sfl, 0.0, None),
                    "PAR" => (Proj::Par, 0.0, None),
                    "MOL" => (Proj::Mol, 0.0, None),
                    "AIT" => (Proj::Ait, 0.0, None),
                    "ZPN" => {
                        let c: Vec<f64> = (0..=20).map(|m| pv(lat, m).unwrap_or(0.0)).collect();
                        let end = zpn_rising_end(&c);
                        (Proj::Zpn(c, end), 90.0, None)
                    }
                    "BON" | "PCO" | "CSC" | "QSC" | "TSC" | "SZP" | "COP" | "COD" | "COE"
                    | "COO" => {
                        return Err(bad(format!(
                            "the {code} projection is not supported (supported: TAN, TPV, SIN, \
                             NCP, AZP, STG, ARC, ZPN, ZEA, AIR, CAR, CEA, CYP, MER, SFL, PAR, MOL, \
                             AIT)"
                        )))
                    }
                    other => {
                        let t0 = if ZENITHAL.contains(&other) { 90.0 } else { 0.0 };
                        (
                            crate_proj(other, c0, lonpole, latpole, &|m| pv(lat, m))?,
                            t0,
                            None,
                        )
                    }
                };
                Some(Celestial {
                    lng,
                    lat,
                    frame,
                    code,
                    proj,
                    rotation: Rotation::new(theta0, c0, lonpole, latpole),
                    tpv,
                })
            }
        };
        if sky.is_none() && sip_poly.is_some() {
            warnings.push("SIP distortion without a celestial projection is ignored".into());
        }
        let mut w = Wcs {
            naxis,
            crpix,
            crval,
            cd,
            sip: sip_poly.filter(|_| sky.is_some()),
            sky,
            equinox,
            radesys,
            warnings,
            pole_j2000: [0.0, 90.0],
            pole_b1950: [0.0, 90.0],
        };
        let pole = if (w.equinox - 2000.0).abs() > 0.003 {
            precess(w.equinox, 2000.0, [0.0, 90.0])
        } else {
            [0.0, 90.0]
        };
        w.pole_j2000 = pole;
        w.pole_b1950 = j2000_to_b1950(pole, w.equinox);
        Ok(w)
    }

    /// The WCS of an image file (FITS; `spec` with cfitsio's `[ext]`), with its
    /// external header (`HEADER_SUFFIX`, SExtractor's `.head`) merged over the
    /// image's when the file exists. A TIFF has the identity of SExtractor's
    /// defaults.
    pub fn from_file(spec: &str, header_suffix: &str, sip: bool) -> Result<Wcs> {
        let (cards, ordinal, naxis) = if crate::io::is_tiff(spec) {
            let image = crate::io::read_image(spec)?;
            (Vec::new(), 1, [image.width(), image.height()])
        } else {
            crate::io::fits::header_for_wcs(spec)?
        };
        let mut h = Header::from_cards(&cards);
        let mut notes = Vec::new();
        if !header_suffix.is_empty() {
            let path = crate::io::fits::file_of(spec);
            let head = external_header_path(&path, header_suffix);
            if let Some(block) = external_header(&head, ordinal)? {
                h.merge(&block);
                notes.push(format!("world coordinates: {} read", head.display()));
            }
        }
        let mut w = Wcs::from_header(&h, naxis, sip).map_err(|e| match e {
            Error::InvalidParam { reason, .. } => Error::input(spec, format!("its WCS: {reason}")),
            e => e,
        })?;
        w.warnings.extend(notes);
        Ok(w)
    }

    /// Whether the WCS has a celestial pair of axes.
    pub fn celestial(&self) -> bool {
        self.sky.is_some()
    }

    /// The indices of the longitude and latitude world axes (0, 1 without a pair).
    pub fn lng_lat(&self) -> (usize, usize) {
        self.sky.as_ref().map_or((0, 1), |s| (s.lng, s.lat))
    }

    /// The projection code of the celestial pair.
    pub fn projection(&self) -> Option<&str> {
        self.sky.as_ref().map(|s| s.code.as_str())
    }

    /// World coordinates (axis 1, axis 2) of the 1-based pixel position `p`, with a
    /// non-equatorial celestial pair turned into equatorial (α, δ); None where the
    /// point cannot be reached.
    pub fn pix2world(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let native = self.pix2native(p)?;
        let Some(s) = &self.sky else {
            return Some(native);
        };
        let eq = s.frame.to_equatorial(native[s.lng], native[s.lat]);
        let mut out = [0.0; 2];
        out[s.lng] = eq[0];
        out[s.lat] = eq[1];
        Some(out)
    }

    /// World coordinates (axis 1, axis 2) of the 1-based pixel position `p` in the
    /// header's own frame (galactic longitude for GLON axes, ...).
    pub fn pix2native(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let (mut u, mut v) = (p[0] - self.crpix[0], p[1] - self.crpix[1]);
        if let Some(sip) = &self.sip {
            let f = |t: &[(i32, i32, f64)]| {
                t.iter()
                    .map(|&(i, j, c)| c * u.powi(i) * v.powi(j))
                    .sum::<f64>()
            };
            let (du, dv) = (f(&sip.a), f(&sip.b));
            (u, v) = (u + du, v + dv);
        }
        let inter = [
            self.cd[0][0] * u + self.cd[0][1] * v,
            self.cd[1][0] * u + self.cd[1][1] * v,
        ];
        let Some(s) = &self.sky else {
            return Some([inter[0] + self.crval[0], inter[1] + self.crval[1]]);
        };
        let (mut x, mut y) = (inter[s.lng], inter[s.lat]);
        if let Some([cl, ca]) = &s.tpv {
            let r = x.hypot(y);
            (x, y) = (tpv_sum(cl, x, y, r), tpv_sum(ca, y, x, r));
        }
        let ad = match &s.proj {
            Proj::Tan => {
                let r = x.hypot(y);
                let phi = if r == 0.0 { 0.0 } else { x.atan2(-y) * R2D };
                s.rotation.apply(phi, (R2D).atan2(r) * R2D)
            }
            Proj::Sin(xi, eta) => {
                let (x0, y0) = (x * D2R, y * D2R);
                let (phi, theta) = if *xi == 0.0 && *eta == 0.0 {
                    let r2 = x0 * x0 + y0 * y0;
                    if r2 > 1.0 {
                        return None;
                    }
                    let phi = if r2 == 0.0 { 0.0 } else { x0.atan2(-y0) };
                    let t = if r2 < 0.5 {
                        r2.sqrt().acos()
                    } else {
                        (1.0 - r2).sqrt().asin()
                    };
                    (phi, t)
                } else {
                    slant_sin(x0, y0, *xi, *eta)?
                };
                s.rotation.apply(phi * R2D, theta * R2D)
            }
            Proj::Car => {
                let mut phi = x;
                while phi > 180.0 {
                    phi -= 360.0;
                }
                while phi < -180.0 {
                    phi += 360.0;
                }
                if y.abs() > 90.0 {
                    return None;
                }
                s.rotation.apply(phi, y)
            }
            Proj::Cea(l) => {
                let t = l * y * D2R;
                if t.abs() > 1.0 {
                    return None;
                }
                s.rotation.apply(x, t.asin() * R2D)
            }
            Proj::Cyp(mu, l) => {
                let eta = y * D2R / (mu + l);
                let t = eta.atan2(1.0) + (eta * mu / (eta * eta + 1.0).sqrt()).asin();
                s.rotation.apply(x / l, t * R2D)
            }
            Proj::Mer => s
                .rotation
                .apply(x, (2.0 * (y * D2R).exp().atan() - PI / 2.0) * R2D),
            Proj::Sfl => {
                let c = (y * D2R).cos();
                s.rotation.apply(if c == 0.0 { 0.0 } else { x / c }, y)
            }
            Proj::Par => {
                let t = y / 180.0;
                if t.abs() > 1.0 {
                    return None;
                }
                s.rotation
                    .apply(x / (1.0 - 4.0 * t * t), 3.0 * t.asin() * R2D)
            }
            Proj::Mol => {
                let (xr, yr) = (x * D2R, y * D2R);
                let t = yr / 2f64.sqrt();
                if t.abs() > 1.0 {
                    return None;
                }
                let g = t.asin();
                let phi = PI * xr / (2.0 * 2f64.sqrt() * g.cos());
                if !phi.is_finite() || phi.abs() > PI + 1e-12 {
                    return None;
                }
                let st = ((2.0 * g + (2.0 * g).sin()) / PI).clamp(-1.0, 1.0);
                s.rotation.apply(phi * R2D, st.asin() * R2D)
            }
            Proj::Ait => {
                let (xr, yr) = (x * D2R, y * D2R);
                let z2 = 1.0 - xr * xr / 16.0 - yr * yr / 4.0;
                if z2 < 0.5 {
                    return None;
                }
                let z = z2.sqrt();
                let phi = 2.0 * (z * xr / 2.0).atan2(2.0 * z2 - 1.0);
                s.rotation
                    .apply(phi * R2D, (yr * z).clamp(-1.0, 1.0).asin() * R2D)
            }
            Proj::Zpn(c, end) => {
                let r = x.hypot(y) * D2R;
                let u = zpn_root(c, *end, r)?;
                let phi = if r == 0.0 { 0.0 } else { x.atan2(-y) * R2D };
                s.rotation.apply(phi, 90.0 - u * R2D)
            }
            Proj::Crate(w) => {
                let ll = w.unproj(&wcs::ImgXY::new(x, y))?;
                let (mut a, d) = (ll.lon() * R2D, ll.lat() * R2D);
                let a0 = self.crval[s.lng];
                if a0 < 0.0 && a > 0.0 {
                    a -= 360.0;
                }
                [a, d]
            }
        };
        if !ad[0].is_finite() || !ad[1].is_finite() || ad[1].abs() > 90.0 + 1e-9 {
            return None;
        }
        let mut out = [0.0; 2];
        out[s.lng] = ad[0];
        out[s.lat] = ad[1];
        Some(out)
    }

    /// The equatorial (α, δ) of a world position (ALPHA_SKY, DELTA_SKY); (0, 0)
    /// without a celestial pair.
    pub fn sky_of(&self, world: [f64; 2]) -> [f64; 2] {
        match &self.sky {
            Some(s) => [world[s.lng], world[s.lat]],
            None => [0.0, 0.0],
        }
    }

    /// ALPHA_J2000, DELTA_J2000 of an equatorial (α, δ) at EQUINOX.
    pub fn j2000_of(&self, sky: [f64; 2]) -> [f64; 2] {
        if self.sky.is_none() {
            return [0.0, 0.0];
        }
        if (self.equinox - 2000.0).abs() > 0.003 {
            precess(self.equinox, 2000.0, sky)
        } else {
            sky
        }
    }

    /// ALPHA_B1950, DELTA_B1950 of a J2000 position.
    pub fn b1950_of(&self, j2000: [f64; 2]) -> [f64; 2] {
        if self.sky.is_none() {
            return [0.0, 0.0];
        }
        j2000_to_b1950(j2000, self.equinox)
    }

    /// The field pixel scale in arcsec (spec §6): at the image centre, from +1-pixel
    /// steps; without a celestial pair |CD2_2| "degrees".
    pub fn field_scale_arcsec(&self) -> f64 {
        let c = [
            (self.naxis[0] as f64 + 1.0) / 2.0,
            (self.naxis[1] as f64 + 1.0) / 2.0,
        ];
        let Some(s) = &self.sky else {
            let (Some(w0), Some(w1)) = (self.pix2world(c), self.pix2world([c[0], c[1] + 1.0]))
            else {
                return 0.0;
            };
            return (w1[1] - w0[1]).abs() * 3600.0;
        };
        let w = |p: [f64; 2]| self.pix2world(p).map(|w| [w[s.lng], w[s.lat]]);
        let (Some(w0), Some(wx), Some(wy)) = (w(c), w([c[0] + 1.0, c[1]]), w([c[0], c[1] + 1.0]))
        else {
            return 0.0;
        };
        let da1 = wrap180(wx[0] - w0[0]);
        let dd1 = wx[1] - w0[1];
        let da2 = wrap180(wy[0] - w0[0]);
        let dd2 = wy[1] - w0[1];
        ((da1 * dd2 - dd1 * da2).abs() * (w0[1] * D2R).cos()).sqrt() * 3600.0
    }

    /// The local Jacobian at the 1-based pixel `p` (spec §7.1), None where a point
    /// cannot be reached.
    pub fn jacobian(&self, p: [f64; 2]) -> Option<Jacobian> {
        let w0 = self.pix2world(p)?;
        let wx = self.pix2world([p[0] + 1.0, p[1]])?;
        let wy = self.pix2world([p[0], p[1] + 1.0])?;
        let (lng, lat) = self.lng_lat();
        let celestial = self.sky.is_some();
        // j[world axis][pixel axis]
        let mut j = [
            [wx[0] - w0[0], wy[0] - w0[0]],
            [wx[1] - w0[1], wy[1] - w0[1]],
        ];
        if celestial {
            let c = (w0[lat] * D2R).cos();
            for d in &mut j[lng] {
                *d = wrap180(*d) * c;
            }
        }
        let l = [j[lng][lng], j[lng][lat], j[lat][lng], j[lat][lat]];
        Some(Jacobian {
            l,
            area: (l[0] * l[3] - l[1] * l[2]).abs(),
        })
    }

    /// The angle (degrees) to add to a position angle east of the native north to
    /// have it east of J2000 north at the object (THETA_J2000), from its native
    /// equatorial and J2000 declinations and J2000 right ascension.
    pub fn theta_j2000_offset(&self, sky: [f64; 2], j2000: [f64; 2]) -> f64 {
        pole_offset(self.pole_j2000, sky[1], j2000)
    }

    /// The same for B1950 (THETA_B1950), from the B1950 position.
    pub fn theta_b1950_offset(&self, sky: [f64; 2], b1950: [f64; 2]) -> f64 {
        pole_offset(self.pole_b1950, sky[1], b1950)
    }

    /// Whether the longitude axis comes after the latitude axis (DEC/RA order).
    pub fn swapped(&self) -> bool {
        self.sky.as_ref().is_some_and(|s| s.lng > s.lat)
    }
}

/// Δθ between the native north and the north of a frame whose pole's image is
/// `pole`, at an object of native declination `d_sky` and frame position `p`.
fn pole_offset(pole: [f64; 2], d_sky: f64, p: [f64; 2]) -> f64 {
    let (sp, s2, c2) = (
        (pole[1] * D2R).sin(),
        (p[1] * D2R).sin(),
        (p[1] * D2R).cos(),
    );
    let (ss, cs) = ((d_sky * D2R).sin(), (d_sky * D2R).cos());
    let c = (sp - s2 * ss) / (c2 * cs);
    let dd = if c >= 1.0 {
        0.0
    } else if c <= -1.0 {
        180.0
    } else {
        c.acos() * R2D
    };
    let da = pole[0] - p[0];
    if (da > 0.0 && da < 180.0) || da < -180.0 {
        -dd
    } else {
        dd
    }
}

/// The slant orthographic deprojection (CG 2002 §5.1.5) of (x, y) in radians: (φ, θ)
/// in radians.
fn slant_sin(x: f64, y: f64, xi: f64, eta: f64) -> Option<(f64, f64)> {
    let a = xi * xi + eta * eta + 1.0;
    let b = xi * (x - xi) + eta * (y - eta);
    let c = (x - xi) * (x - xi) + (y - eta) * (y - eta) - 1.0;
    let disc = b * b - a * c;
    if disc < 0.0 {
        return None;
    }
    let t1 = (-b + disc.sqrt()) / a;
    let t2 = (-b - disc.sqrt()) / a;
    let pick = |t: f64| (t.abs() <= 1.0 + 1e-12).then(|| t.clamp(-1.0, 1.0).asin());
    let theta = match (pick(t1), pick(t2)) {
        (Some(a), Some(b)) => {
            if (a - PI / 2.0).abs() <= (b - PI / 2.0).abs() {
                a
            } else {
                b
            }
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    let st = theta.sin();
    let phi = (x - xi * (1.0 - st)).atan2(-(y - eta * (1.0 - st)));
    Some((phi, theta))
}

/// ZPN's polynomial Σ c_m u^m and its derivative.
fn zpn_poly(c: &[f64], u: f64) -> (f64, f64) {
    let (mut f, mut d) = (0.0, 0.0);
    for (m, &cm) in c.iter().enumerate().rev() {
        d = d * u + f;
        f = f * u + cm;
        let _ = m;
    }
    (f, d)
}

/// Where ZPN's polynomial stops rising first in [0, π] (its root is searched below).
fn zpn_rising_end(c: &[f64]) -> f64 {
    let n = 3142;
    (1..=n)
        .map(|i| i as f64 * PI / n as f64)
        .find(|&u| zpn_poly(c, u).1 <= 0.0)
        .unwrap_or(PI)
}

/// The u in [0, end] where ZPN's polynomial equals r (radians), by safeguarded
/// Newton steps; None beyond the polynomial's reach.
fn zpn_root(c: &[f64], end: f64, r: f64) -> Option<f64> {
    let (mut lo, mut hi) = (0.0, end);
    let (f_lo, f_hi) = (zpn_poly(c, lo).0 - r, zpn_poly(c, hi).0 - r);
    if f_lo == 0.0 {
        return Some(lo);
    }
    if f_lo * f_hi > 0.0 {
        return None;
    }
    let mut u = if c.len() > 1 && c[1] != 0.0 {
        ((r - c[0]) / c[1]).clamp(lo, hi)
    } else {
        0.5 * (lo + hi)
    };
    for _ in 0..100 {
        let (f, d) = zpn_poly(c, u);
        let f = f - r;
        if f.abs() < 1e-15 {
            break;
        }
        if (f < 0.0) == (f_lo < 0.0) {
            lo = u;
        } else {
            hi = u;
        }
        let next = u - f / d;
        u = if d != 0.0 && next > lo && next < hi {
            next
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo < 1e-16 {
            break;
        }
    }
    Some(u)
}

/// Σ_k c_k · T_k(u, v, r) of the TPV convention.
fn tpv_sum(c: &[f64], u: f64, v: f64, r: f64) -> f64 {
    let mut s = 0.0;
    let mut k = 0usize;
    let term = |t: f64, s: &mut f64, k: &mut usize| {
        if let Some(&ck) = c.get(*k) {
            *s += ck * t;
        }
        *k += 1;
    };
    term(1.0, &mut s, &mut k);
    for n in 1..=7i32 {
        for j in 0..=n {
            term(u.powi(n - j) * v.powi(j), &mut s, &mut k);
        }
        if n % 2 == 1 {
            term(r.powi(n), &mut s, &mut k);
        }
        if k >= c.len() {
            break;
        }
    }
    s
}

/// The celestial pair of two CTYPEs (first 8 characters): (longitude axis, latitude
/// axis, frame, projection code).
fn celestial_pair(ctype: &[String; 2]) -> Option<(usize, usize, SkyFrame, String)> {
    let parse = |t: &str| -> Option<(String, String)> {
        let t = format!("{t:<8}");
        if t.as_bytes()[4] != b'-' {
            return None;
        }
        let code = t[5..8].to_string();
        CODES
            .contains(&code.as_str())
            .then(|| (t[..4].to_string(), code))
    };
    let a = parse(&ctype[0]);
    let b = parse(&ctype[1]);
    let (first, second, first_axis) = match (a, b) {
        (Some(a), Some(b)) => (a, b, 0usize),
        _ => return None,
    };
    if first.1 != second.1 {
        return None;
    }
    let kind = |t: &str| -> Option<(bool, SkyFrame)> {
        match t {
            "RA--" => Some((true, SkyFrame::Equatorial)),
            "DEC-" => Some((false, SkyFrame::Equatorial)),
            _ => {
                let frame = match t.as_bytes()[0] {
                    b'G' => SkyFrame::Galactic,
                    b'E' => SkyFrame::Ecliptic,
                    b'S' => SkyFrame::Supergalactic,
                    _ => return None,
                };
                match &t[1..] {
                    "LON" => Some((true, frame)),
                    "LAT" => Some((false, frame)),
                    _ => None,
                }
            }
        }
    };
    let (is_lon1, f1) = kind(&first.0)?;
    let (is_lon2, f2) = kind(&second.0)?;
    if is_lon1 == is_lon2 || f1 != f2 {
        return None;
    }
    let (lng, lat) = if is_lon1 {
        (first_axis, 1 - first_axis)
    } else {
        (1 - first_axis, first_axis)
    };
    Some((lng, lat, f1, first.1))
}

/// A projection of the `wcs` crate, fed intermediate world coordinates in degrees.
fn crate_proj(
    code: &str,
    crval: [f64; 2],
    lonpole: Option<f64>,
    latpole: Option<f64>,
    pv: &dyn Fn(usize) -> Option<f64>,
) -> Result<Proj> {
    use serde_json::{json, Map, Value};
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("NAXIS", json!(2));
    put("NAXIS1", json!(1000));
    put("NAXIS2", json!(1000));
    put("CTYPE1", json!(format!("RA---{code}")));
    put("CTYPE2", json!(format!("DEC--{code}")));
    put("CRPIX1", json!(0.0));
    put("CRPIX2", json!(0.0));
    put("CRVAL1", json!(crval[0]));
    put("CRVAL2", json!(crval[1]));
    put("CD1_1", json!(1.0));
    put("CD1_2", json!(0.0));
    put("CD2_1", json!(0.0));
    put("CD2_2", json!(1.0));
    if let Some(l) = lonpole {
        put("LONPOLE", json!(l));
    }
    if let Some(l) = latpole {
        put("LATPOLE", json!(l));
    }
    for i in 0..=20 {
        if let Some(v) = pv(i) {
            put(&format!("PV2_{i}"), json!(v));
        }
    }
    let params: wcs::WCSParams = serde_json::from_value(Value::Object(m))
        .map_err(|e| Error::param("WCS", code, format!("cannot set the projection up: {e}")))?;
    let w = wcs::WCS::new(&params).map_err(|e| {
        Error::param(
            "WCS",
            code,
            format!("the {code} projection's keywords are not valid: {e:?}"),
        )
    })?;
    Ok(Proj::Crate(Box::new(w)))
}

/// `d` wrapped into [−180, 180].
fn wrap180(d: f64) -> f64 {
    if d > 180.0 {
        d - 360.0
    } else if d < -180.0 {
        d + 360.0
    } else {
        d
    }
}

/// Precesses (α, δ) from Julian epoch `from` to `to` with the IAU 1976 angles
/// (Lieske 1977).
pub fn precess(from: f64, to: f64, ad: [f64; 2]) -> [f64; 2] {
    let t0 = (from - 2000.0) / 100.0;
    let t = (to - from) / 100.0;
    let as2r = D2R / 3600.0;
    let w = 2306.2181 + 1.39656 * t0 - 0.000139 * t0 * t0;
    let zeta = (w * t + (0.30188 - 0.000344 * t0) * t * t + 0.017998 * t * t * t) * as2r;
    let z = (w * t + (1.09468 + 0.000066 * t0) * t * t + 0.018203 * t * t * t) * as2r;
    let theta = ((2004.3109 - 0.85330 * t0 - 0.000217 * t0 * t0) * t
        - (0.42665 + 0.000217 * t0) * t * t
        - 0.041833 * t * t * t)
        * as2r;
    let (a, d) = (ad[0] * D2R, ad[1] * D2R);
    let sd = d.sin() * theta.cos() + d.cos() * theta.sin() * (a + zeta).cos();
    let y = d.cos() * (a + zeta).sin();
    let x = d.cos() * theta.cos() * (a + zeta).cos() - d.sin() * theta.sin();
    let mut a2 = (y.atan2(x) + z) * R2D;
    a2 = a2.rem_euclid(360.0);
    let d2 = if sd.abs() > 0.99 {
        x.hypot(y).min(1.0).acos().copysign(sd) * R2D
    } else {
        sd.asin() * R2D
    };
    [a2, d2]
}

/// The FK4 → FK5 matrix (Standish 1982; Aoki et al. 1983): position and velocity.
const FK4_FK5: [[f64; 6]; 6] = [
    [
        0.9999256782,
        -0.0111820611,
        -0.0048579477,
        0.00000242395018,
        -0.00000002710663,
        -0.00000001177656,
    ],
    [
        0.0111820610,
        0.9999374784,
        -0.0000271765,
        0.00000002710663,
        0.00000242397878,
        -0.00000000006587,
    ],
    [
        0.0048579479,
        -0.0000271474,
        0.9999881997,
        0.00000001177656,
        -0.00000000006582,
        0.00000242410173,
    ],
    [
        -0.000551,
        -0.238565,
        0.435739,
        0.99994704,
        -0.01118251,
        -0.00485767,
    ],
    [
        0.238514,
        -0.002662,
        -0.008541,
        0.01118251,
        0.99995883,
        -0.00002718,
    ],
    [
        -0.435623,
        0.012254,
        0.002117,
        0.00485767,
        -0.00002714,
        1.00000956,
    ],
];

/// The inverse of [`FK4_FK5`], by Gauss-Jordan elimination with partial pivoting.
fn fk5_fk4() -> &'static [[f64; 6]; 6] {
    static INV: std::sync::OnceLock<[[f64; 6]; 6]> = std::sync::OnceLock::new();
    INV.get_or_init(|| {
        let mut a = FK4_FK5;
        let mut inv = [[0.0; 6]; 6];
        for (i, row) in inv.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        for col in 0..6 {
            let piv = (col..6)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .expect("rows");
            a.swap(col, piv);
            inv.swap(col, piv);
            let p = a[col][col];
            for j in 0..6 {
                a[col][j] /= p;
                inv[col][j] /= p;
            }
            for i in 0..6 {
                if i != col {
                    let f = a[i][col];
                    for j in 0..6 {
                        a[i][j] -= f * a[col][j];
                        inv[i][j] -= f * inv[col][j];
                    }
                }
            }
        }
        inv
    })
}

/// FK5 J2000 → FK4 B1950 for a source without proper motion, with the epoch term
/// of EQUINOX `equinox` (spec §8.3).
pub fn j2000_to_b1950(ad: [f64; 2], equinox: f64) -> [f64; 2] {
    let (a, d) = (ad[0] * D2R, ad[1] * D2R);
    let r = [d.cos() * a.cos(), d.cos() * a.sin(), d.sin()];
    let m = fk5_fk4();
    let mut r1 = [0.0; 3];
    let mut v1 = [0.0; 3];
    for i in 0..3 {
        r1[i] = (0..3).map(|j| m[i][j] * r[j]).sum();
        v1[i] = (0..3).map(|j| m[i + 3][j] * r[j]).sum();
    }
    let as2r = D2R / 3600.0;
    let tau = ((equinox - 2000.0) + (51544.5 - 33281.92346) / 365.25) * 1.0000214 / 100.0;
    let r2: [f64; 3] = std::array::from_fn(|i| r1[i] + v1[i] * as2r * tau);
    let e0 = [-1.62557e-6, -0.31919e-6, -0.13843e-6];
    let e1 = [1.245e-3, -1.580e-3, -0.659e-3];
    let ea: [f64; 3] = std::array::from_fn(|i| e0[i] + e1[i] * as2r * tau);
    let dot: f64 = (0..3).map(|i| ea[i] * (r2[i] + ea[i])).sum();
    let s = 2.0 / (1.0 + (1.0 + 4.0 * dot).sqrt());
    let r0: [f64; 3] = std::array::from_fn(|i| s * (r2[i] + ea[i]));
    let n = (r0[0] * r0[0] + r0[1] * r0[1] + r0[2] * r0[2]).sqrt();
    let dd = (r0[2] / n).clamp(-1.0, 1.0).asin();
    let cd = n * dd.cos();
    let mut aa = if cd == 0.0 {
        0.0
    } else {
        (r0[0] / cd).clamp(-1.0, 1.0).acos() * R2D
    };
    if r0[1] < 0.0 {
        aa = 360.0 - aa;
    }
    [aa, dd * R2D]
}

/// The local Jacobian of the pixel → world transform: l0 = ∂lng/∂x·cos δ, l1 =
/// ∂lng/∂y·cos δ, l2 = ∂lat/∂x, l3 = ∂lat/∂y (degrees per pixel), and its |det|.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jacobian {
    pub l: [f64; 4],
    pub area: f64,
}

impl Jacobian {
    /// Pixel second moments (x2, y2, xy) in world units (degrees²).
    pub fn moments(&self, m: [f64; 3], how: MomentTransform) -> [f64; 3] {
        let [l0, l1, l2, l3] = self.l;
        let [x2, y2, xy] = m;
        let k = match how {
            MomentTransform::Exact => 2.0,
            MomentTransform::Sextractor => 1.0,
        };
        [
            l0 * l0 * x2 + l1 * l1 * y2 + k * l0 * l1 * xy,
            l2 * l2 * x2 + l3 * l3 * y2 + k * l2 * l3 * xy,
            l0 * l2 * x2 + l1 * l3 * y2 + (l0 * l3 + l1 * l2) * xy,
        ]
    }
}

/// SExtractor's angle fold: +90 maps to −90 and −90 to +90, into (−90, 90].
pub fn fold(a: f64) -> f64 {
    if a > 0.0 {
        (a + 90.0) % 180.0 - 90.0
    } else {
        (a - 90.0) % 180.0 + 90.0
    }
}

/// The ellipse of world moments (X2, Y2, XY): (A, B, THETA, CXX, CYY, CXY) (spec §7.3).
pub fn ellipse(m: [f64; 3]) -> [f64; 6] {
    let [x2, y2, mut xy] = m;
    let d = x2 - y2;
    let theta = if d == 0.0 {
        45.0
    } else {
        fold(0.5 * (2.0 * xy).atan2(d) * R2D)
    };
    let mean = 0.5 * (x2 + y2);
    let root = (0.25 * d * d + xy * xy).sqrt();
    let a = (mean + root).max(0.0).sqrt();
    let b = (mean - root).max(0.0).sqrt();
    let mut det = x2 * y2 - xy * xy;
    if det < 1e-6 {
        det = 1e-6;
        xy *= 0.99999;
    }
    [a, b, theta, y2 / det, x2 / det, -2.0 * xy / det]
}

/// An object's world coordinates, computed once when the catalog asks for any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct World {
    /// Barycentre, windowed and peak positions: world (X_WORLD, Y_WORLD), sky
    /// (ALPHA_SKY, ...), J2000 and B1950.
    pub pos: [Position; 3],
    /// The Jacobian at the barycentre (every shape column's).
    pub jac: Jacobian,
    /// Whether the WCS has a celestial pair, and whether its axes are DEC/RA.
    pub celestial: bool,
    pub swapped: bool,
    /// PIXEL_SCALE/3600 when PIXEL_SCALE > 0 (it replaces √area).
    pub scale_deg: Option<f64>,
    pub transform: MomentTransform,
}

/// A position in each frame, with the offsets of THETA_J2000 and THETA_B1950.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Position {
    pub world: [f64; 2],
    pub sky: [f64; 2],
    pub j2000: [f64; 2],
    pub b1950: [f64; 2],
    pub dtheta_j2000: f64,
    pub dtheta_b1950: f64,
}

/// Which position of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Barycentre = 0,
    Windowed = 1,
    Peak = 2,
}

/// The settings of world columns: the WCS, the moment transform and PIXEL_SCALE.
#[derive(Debug)]
pub struct WorldSettings {
    pub wcs: Wcs,
    pub transform: MomentTransform,
    /// PIXEL_SCALE in arcsec (0: from the WCS).
    pub pixel_scale: f64,
}

impl WorldSettings {
    fn position(&self, p: [f64; 2]) -> Position {
        let w = &self.wcs;
        let Some(world) = w.pix2world(p) else {
            let u = [UNREACHABLE; 2];
            return Position {
                world: u,
                sky: u,
                j2000: u,
                b1950: u,
                ..Default::default()
            };
        };
        let sky = w.sky_of(world);
        let j2000 = w.j2000_of(sky);
        let b1950 = w.b1950_of(j2000);
        let celestial = w.celestial();
        Position {
            world,
            sky,
            j2000,
            b1950,
            dtheta_j2000: if celestial {
                w.theta_j2000_offset(sky, j2000)
            } else {
                0.0
            },
            dtheta_b1950: if celestial {
                w.theta_b1950_offset(sky, b1950)
            } else {
                0.0
            },
        }
    }

    /// The world coordinates of `o` (its photometry's windowed position when it has
    /// one, else the barycentre).
    pub fn measure(&self, o: &crate::measure::Object) -> World {
        let bary = [o.x + 1.0, o.y + 1.0];
        let win = o
            .phot
            .as_deref()
            .map_or(bary, |p| [p.win.x + 1.0, p.win.y + 1.0]);
        let peak = [o.xpeak as f64 + 1.0, o.ypeak as f64 + 1.0];
        let jac = |p| self.wcs.jacobian(p).unwrap_or_default();
        World {
            pos: [self.position(bary), self.position(win), self.position(peak)],
            jac: jac(bary),
            celestial: self.wcs.celestial(),
            swapped: self.wcs.swapped(),
            scale_deg: (self.pixel_scale > 0.0).then_some(self.pixel_scale / 3600.0),
            transform: self.transform,
        }
    }
}

impl World {
    /// Pixel moments (x2, y2, xy) in world units.
    pub fn moments(&self, m: [f64; 3]) -> [f64; 3] {
        self.jac.moments(m, self.transform)
    }

    /// √area or PIXEL_SCALE/3600: the size of a pixel in degrees.
    pub fn pixel_deg(&self) -> f64 {
        self.scale_deg.unwrap_or(self.jac.area.sqrt())
    }

    /// THETA_SKY of a THETA_WORLD (0 without a celestial pair).
    pub fn theta_sky(&self, theta_world: f64) -> f64 {
        if !self.celestial {
            0.0
        } else if self.swapped {
            theta_world
        } else if theta_world > 0.0 {
            fold(90.0 - theta_world)
        } else {
            fold(-90.0 - theta_world)
        }
    }

    /// THETA_J2000 / THETA_B1950 of a THETA_WORLD at position `at`.
    pub fn theta_frame(&self, theta_world: f64, at: At, b1950: bool) -> f64 {
        if !self.celestial {
            return 0.0;
        }
        let p = &self.pos[at as usize];
        let d = if b1950 {
            p.dtheta_b1950
        } else {
            p.dtheta_j2000
        };
        fold(self.theta_sky(theta_world) + d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cards: &[&str]) -> Header {
        Header::from_cards(cards)
    }

    #[test]
    fn tpv_terms_follow_the_registry_order() {
        // T_0..T_11 at u = 2, v = 3, r = √13.
        let (u, v) = (2.0f64, 3.0f64);
        let r = 13f64.sqrt();
        let expect = [
            1.0,
            u,
            v,
            r,
            u * u,
            u * v,
            v * v,
            u * u * u,
            u * u * v,
            u * v * v,
            v * v * v,
            r * r * r,
            u.powi(4),
        ];
        for (k, e) in expect.iter().enumerate() {
            let mut c = vec![0.0; k + 1];
            c[k] = 1.0;
            assert!((tpv_sum(&c, u, v, r) - e).abs() < 1e-9, "term {k}");
        }
        // T_23 = r⁵, T_39 = r⁷.
        let mut c = vec![0.0; 40];
        c[23] = 1.0;
        assert!((tpv_sum(&c, u, v, r) - r.powi(5)).abs() < 1e-6);
        c[23] = 0.0;
        c[39] = 1.0;
        assert!((tpv_sum(&c, u, v, r) - r.powi(7)).abs() < 1e-5);
    }

    #[test]
    fn galactic_centre_and_pole_in_equatorial() {
        let c = SkyFrame::Galactic.to_equatorial(0.0, 0.0);
        assert!((c[0] - 266.40499625).abs() < 1e-7 && (c[1] + 28.93617242).abs() < 1e-7);
        let p = SkyFrame::Galactic.to_equatorial(123.0, 90.0);
        assert!((p[1] - 27.12825120).abs() < 1e-7);
    }

    #[test]
    fn precession_from_1950_to_2000() {
        // The equinox of J1950 (0, 0) in J2000, as ERFA's IAU 1976 matrix
        // (`erfa.pmat76`) puts it: 0.6405241929430732, 0.2784003413723996.
        let p = precess(1950.0, 2000.0, [0.0, 0.0]);
        assert!((p[0] - 0.640_524_192_943_073_2).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 0.278_400_341_372_399_6).abs() < 1e-12, "{p:?}");
        // There and back.
        let q = precess(2000.0, 1950.0, p);
        assert!(
            q[0].min(360.0 - q[0]).abs() < 1e-9 && q[1].abs() < 1e-9,
            "{q:?}"
        );
    }

    #[test]
    fn b1950_of_a_known_source() {
        // 3C 273 (J2000 187.277915, 2.052388): astropy's FK5 → FK4(B1950, obstime
        // J2000) gives 186.6385102633005, 2.3286714590606716.
        let j = [187.277915, 2.052388];
        let b = j2000_to_b1950(j, 2000.0);
        assert!((b[0] - 186.638_510_263_300_5).abs() < 3e-7, "{b:?}");
        assert!((b[1] - 2.328_671_459_060_671_6).abs() < 3e-7, "{b:?}");
    }

    #[test]
    fn header_rules_of_sextractor() {
        // A missing CD2_2 is 1 (not 0 as the FITS rule says); CRPIX defaults to 1.
        let h = header(&[
            "CTYPE1  = 'RA---TAN'",
            "CTYPE2  = 'DEC--TAN'",
            "CRVAL1  = 10.0",
            "CRVAL2  = 20.0",
            "CD1_1   = -1.0E-4",
        ]);
        let w = Wcs::from_header(&h, [100, 100], false).unwrap();
        assert_eq!(w.cd, [[-1e-4, 0.0], [0.0, 1.0]]);
        assert_eq!(w.crpix, [1.0, 1.0]);
        // CROTA2 with CDELT1 = CDELT2.
        let h = header(&["CDELT1  = 2.0", "CDELT2  = 2.0", "CROTA2  = 30.0"]);
        let w = Wcs::from_header(&h, [10, 10], false).unwrap();
        let r = 30f64.to_radians();
        assert!((w.cd[0][1] + 2.0 * r.sin()).abs() < 1e-12);
        assert!((w.cd[1][0] - 2.0 * r.sin()).abs() < 1e-12);
        // No keywords: X_WORLD = X_IMAGE − 1.
        let w = Wcs::from_header(&Header::default(), [10, 10], false).unwrap();
        assert_eq!(w.pix2world([5.0, 7.0]), Some([4.0, 6.0]));
        assert_eq!(w.field_scale_arcsec(), 3600.0);
        // Mismatched pairs are linear.
        for (a, b) in [
            ("RA---TAN", "DEC--SIN"),
            ("RA---TAN", "GLAT-TAN"),
            ("RA---TAN", ""),
        ] {
            let h = header(&[&format!("CTYPE1  = '{a}'"), &format!("CTYPE2  = '{b}'")]);
            assert!(
                !Wcs::from_header(&h, [10, 10], false).unwrap().celestial(),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn external_header_merges_over_the_image() {
        let mut h = header(&["CRVAL1  = 1.0", "CRPIX2  = 3.0", "NAXIS1  = 10"]);
        h.merge(&[
            "CRVAL1  =   5.5 / new",
            "NAXIS1  = 99",
            "garbage line",
            "EQUINOX = 2000.0",
        ]);
        assert_eq!(h.number("CRVAL1"), Some(5.5));
        assert_eq!(h.number("NAXIS1"), Some(10.0));
        assert_eq!(h.number("EQUINOX"), Some(2000.0));
        assert_eq!(h.number("CRPIX2"), Some(3.0));
        assert_eq!(
            external_header_path(std::path::Path::new("a.b/img.fits"), ".head"),
            std::path::PathBuf::from("a.b/img.head")
        );
        assert_eq!(
            external_header_path(std::path::Path::new("a.b/img"), ".head"),
            std::path::PathBuf::from("a.head")
        );
    }

    #[test]
    fn moments_and_angles() {
        // A TAN header rotated by 15 degrees: THETA_IMAGE −90 → THETA_WORLD 75 →
        // THETA_J2000 15 (spec §7.4's example).
        let s = 0.4 / 3600.0;
        let r = 15f64.to_radians();
        let cards = [
            "CTYPE1  = 'RA---TAN'".to_string(),
            "CTYPE2  = 'DEC--TAN'".to_string(),
            "CRPIX1  = 512.5".into(),
            "CRPIX2  = 512.5".into(),
            "CRVAL1  = 150.1".into(),
            "CRVAL2  = 2.2".into(),
            format!("CD1_1   = {}", -s * r.cos()),
            format!("CD1_2   = {}", s * r.sin()),
            format!("CD2_1   = {}", s * r.sin()),
            format!("CD2_2   = {}", s * r.cos()),
        ];
        let w = Wcs::from_header(&Header::from_cards(&cards), [1024, 1024], false).unwrap();
        assert!((w.field_scale_arcsec() - 0.4).abs() < 1e-6);
        let j = w.jacobian([512.5, 512.5]).unwrap();
        // An ellipse along y (THETA_IMAGE −90 or 90).
        let m = j.moments([1.0, 4.0, 0.0], MomentTransform::Exact);
        let e = ellipse(m);
        assert!((e[2] - 75.0).abs() < 0.01, "{e:?}");
        assert!((e[0] - 2.0 * s).abs() / s < 1e-4 && (e[1] - s).abs() / s < 1e-4);
        let settings = WorldSettings {
            wcs: w,
            transform: MomentTransform::Exact,
            pixel_scale: 0.0,
        };
        let p = settings.position([512.5, 512.5]);
        assert!((p.world[0] - 150.1).abs() < 1e-12 && (p.world[1] - 2.2).abs() < 1e-12);
        let world = World {
            pos: [p; 3],
            celestial: true,
            ..Default::default()
        };
        assert!((world.theta_frame(e[2], At::Barycentre, false) - 15.0).abs() < 0.01);
    }

    #[test]
    fn fold_maps_the_ends() {
        assert_eq!(fold(90.0), -90.0);
        assert_eq!(fold(-90.0), 90.0);
        assert_eq!(fold(100.0), -80.0);
        assert_eq!(fold(-100.0), 80.0);
        assert_eq!(fold(30.0), 30.0);
    }
}
