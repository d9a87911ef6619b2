//! The catalog: measured objects and the SExtractor columns they are written as.
//!
//! **Coordinates.** Inside the library, pixel coordinates are 0-based: the centre of
//! the first pixel is (0, 0). Written catalogs follow SExtractor: the centre of the
//! first pixel is (1, 1), so every `*_IMAGE` position column is the field plus 1.

use crate::error::{Error, Result};
use crate::measure::Object;

/// How a column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Float,
    /// Single precision (VIGNET's pixels, as SExtractor writes them).
    Float32,
}

/// One catalog column: SExtractor's name, description and unit. A vector parameter
/// (FLUX_APER(n), ...) is written as n columns NAME_1..NAME_n, each its element.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    pub kind: ColumnKind,
    get: fn(&Object, usize) -> f64,
    /// The element of a vector parameter (0 for a scalar).
    index: usize,
    /// For an element of a vector parameter of n > 1 elements: its name and n (FITS
    /// tables write the n columns as one vector column, ASCII_HEAD names it once).
    pub vector: Option<(&'static str, usize)>,
    /// A 2-D vector's width and height (VIGNET(w,h): FITS TDIM).
    pub tdim: Option<(usize, usize)>,
}

impl Column {
    /// Whether this column starts a field of its own: a scalar, or the first element
    /// of a vector (how many it holds).
    pub fn field(&self) -> Option<(&'static str, usize)> {
        match self.vector {
            None => Some((self.name, 1)),
            Some((name, n)) => (self.index == 0).then_some((name, n)),
        }
    }

    /// The value of this column for `o`, in the written (1-based) convention.
    pub fn value(&self, o: &Object) -> f64 {
        (self.get)(o, self.index)
    }
}

/// A scalar column's value (its closure's argument typed).
fn scalar(o: &Object, f: impl Fn(&Object) -> f64) -> f64 {
    f(o)
}

/// A photometry value of `o` (0 for an object measured without photometry).
fn ph(o: &Object, f: impl Fn(&crate::photometry::Photometry) -> f64) -> f64 {
    o.phot.as_deref().map_or(0.0, f)
}

/// Element `i` of a photometry vector of `o` (0 beyond its length).
fn ph_at(o: &Object, i: usize, f: impl Fn(&crate::photometry::Photometry) -> &[f64]) -> f64 {
    o.phot
        .as_deref()
        .map_or(0.0, |p| f(p).get(i).copied().unwrap_or(0.0))
}

/// A world value of `o` from its world coordinates and itself (0 without them).
fn wd(o: &Object, f: impl Fn(&crate::world::World, &Object) -> f64) -> f64 {
    o.world.as_deref().map_or(0.0, |w| f(w, o))
}

/// The windowed moments of `o` (x2, y2, xy) and their errors (0 without photometry).
fn win_moments(o: &Object, err: bool) -> [f64; 3] {
    o.phot.as_deref().map_or([0.0; 3], |p| {
        if err {
            [p.win.errx2, p.win.erry2, p.win.errxy]
        } else {
            [p.win.x2, p.win.y2, p.win.xy]
        }
    })
}

/// The moments of `o` in world units: isophotal (`win` false) or windowed, of the
/// profile or of the position error (`err`).
fn wm(w: &crate::world::World, o: &Object, win: bool, err: bool) -> [f64; 3] {
    let m = match (win, err) {
        (false, false) => [o.x2, o.y2, o.xy],
        (false, true) => [o.errx2, o.erry2, o.errxy],
        (true, e) => win_moments(o, e),
    };
    w.moments(m)
}

/// Element `k` of the world ellipse (A, B, THETA, CXX, CYY, CXY) of those moments.
fn we(w: &crate::world::World, o: &Object, win: bool, err: bool, k: usize) -> f64 {
    crate::world::ellipse(wm(w, o, win, err))[k]
}

/// THETA_SKY (frame None), THETA_J2000 or THETA_B1950 of those moments.
fn wt(w: &crate::world::World, o: &Object, win: bool, err: bool, frame: Option<bool>) -> f64 {
    let t = we(w, o, win, err, 2);
    let at = if win && !err {
        crate::world::At::Windowed
    } else {
        crate::world::At::Barycentre
    };
    match frame {
        None => w.theta_sky(t),
        Some(b1950) => w.theta_frame(t, at, b1950),
    }
}

/// Builds a table of columns from one line per column: name, description, unit,
/// kind and value (in the written, 1-based convention).
macro_rules! columns {
    ($table:ident: $($name:literal, $desc:literal, $unit:literal, $kind:ident, $f:expr;)*) => {
        pub const $table: &[Column] = &[$(Column {
            name: $name,
            description: $desc,
            unit: $unit,
            kind: ColumnKind::$kind,
            get: |o, _| scalar(o, $f),
            index: 0,
            vector: None,
            tdim: None,
        }),*];
    };
}

// Every isophotal column, in SExtractor's order: the default catalog.
columns! {
    COLUMNS:
    "NUMBER", "Running object number", "", Int, |o| o.number as f64;
    "X_IMAGE", "Object position along x", "pixel", Float, |o| o.x + 1.0;
    "Y_IMAGE", "Object position along y", "pixel", Float, |o| o.y + 1.0;
    "XMIN_IMAGE", "Minimum x-coordinate among detected pixels", "pixel", Int,
        |o| o.xmin as f64 + 1.0;
    "YMIN_IMAGE", "Minimum y-coordinate among detected pixels", "pixel", Int,
        |o| o.ymin as f64 + 1.0;
    "XMAX_IMAGE", "Maximum x-coordinate among detected pixels", "pixel", Int,
        |o| o.xmax as f64 + 1.0;
    "YMAX_IMAGE", "Maximum y-coordinate among detected pixels", "pixel", Int,
        |o| o.ymax as f64 + 1.0;
    "XPEAK_IMAGE", "x-coordinate of the brightest pixel", "pixel", Int, |o| o.xpeak as f64 + 1.0;
    "YPEAK_IMAGE", "y-coordinate of the brightest pixel", "pixel", Int, |o| o.ypeak as f64 + 1.0;
    "X2_IMAGE", "Variance along x", "pixel**2", Float, |o| o.x2;
    "Y2_IMAGE", "Variance along y", "pixel**2", Float, |o| o.y2;
    "XY_IMAGE", "Covariance between x and y", "pixel**2", Float, |o| o.xy;
    "A_IMAGE", "Profile RMS along major axis", "pixel", Float, |o| o.a;
    "B_IMAGE", "Profile RMS along minor axis", "pixel", Float, |o| o.b;
    "THETA_IMAGE", "Position angle (CCW/x)", "deg", Float, |o| o.theta;
    "ELONGATION", "A_IMAGE/B_IMAGE", "", Float, |o| o.a / o.b;
    "ELLIPTICITY", "1 - B_IMAGE/A_IMAGE", "", Float, |o| 1.0 - o.b / o.a;
    "CXX_IMAGE", "Cxx object ellipse parameter", "pixel**(-2)", Float, |o| o.cxx;
    "CYY_IMAGE", "Cyy object ellipse parameter", "pixel**(-2)", Float, |o| o.cyy;
    "CXY_IMAGE", "Cxy object ellipse parameter", "pixel**(-2)", Float, |o| o.cxy;
    "ERRX2_IMAGE", "Variance of position along x", "pixel**2", Float, |o| o.errx2;
    "ERRY2_IMAGE", "Variance of position along y", "pixel**2", Float, |o| o.erry2;
    "ERRXY_IMAGE", "Covariance of position between x and y", "pixel**2", Float, |o| o.errxy;
    "ERRA_IMAGE", "RMS position error along major axis", "pixel", Float, |o| o.erra;
    "ERRB_IMAGE", "RMS position error along minor axis", "pixel", Float, |o| o.errb;
    "ERRTHETA_IMAGE", "Error ellipse position angle (CCW/x)", "deg", Float, |o| o.errtheta;
    "ERRCXX_IMAGE", "Cxx error ellipse parameter", "pixel**(-2)", Float, |o| o.errcxx;
    "ERRCYY_IMAGE", "Cyy error ellipse parameter", "pixel**(-2)", Float, |o| o.errcyy;
    "ERRCXY_IMAGE", "Cxy error ellipse parameter", "pixel**(-2)", Float, |o| o.errcxy;
    "ISOAREA_IMAGE", "Isophotal area above Analysis threshold", "pixel**2", Int,
        |o| o.isoarea as f64;
    "ISOAREAF_IMAGE", "Isophotal area (filtered) above Detection threshold", "pixel**2", Int,
        |o| o.npix as f64;
    "FLUX_ISO", "Isophotal flux", "count", Float, |o| o.flux;
    "FLUXERR_ISO", "RMS error for isophotal flux", "count", Float, |o| o.fluxerr;
    "MAG_ISO", "Isophotal magnitude", "mag", Float, |o| o.mag;
    "MAGERR_ISO", "RMS error for isophotal magnitude", "mag", Float, |o| o.magerr;
    "MAG_ISOCOR", "Corrected isophotal magnitude", "mag", Float, |o| o.mag_isocor;
    "FLUX_MAX", "Peak flux above background", "count", Float, |o| o.flux_max;
    "THRESHOLD", "Detection threshold above background", "count", Float, |o| o.thresh;
    "FLAGS", "Extraction flags", "", Int, |o| o.flags as f64;
}

// The photometry columns (photometry.md), asked for by name.
columns! {
    PHOT_COLUMNS:
    "KRON_RADIUS", "Kron radius of the AUTO aperture, in units of A and B", "", Float,
        |o| ph(o, |p| p.kron_radius);
    "FLUX_AUTO", "Flux in the Kron aperture", "count", Float, |o| ph(o, |p| p.flux_auto);
    "FLUXERR_AUTO", "RMS error of FLUX_AUTO", "count", Float, |o| ph(o, |p| p.fluxerr_auto);
    "MAG_AUTO", "Magnitude in the Kron aperture", "mag", Float, |o| ph(o, |p| p.mag_auto);
    "MAGERR_AUTO", "RMS error of MAG_AUTO", "mag", Float, |o| ph(o, |p| p.magerr_auto);
    "PETRO_RADIUS", "Petrosian radius, in units of A and B", "", Float,
        |o| ph(o, |p| p.petro_radius);
    "FLUX_PETRO", "Flux in the Petrosian aperture", "count", Float, |o| ph(o, |p| p.flux_petro);
    "FLUXERR_PETRO", "RMS error of FLUX_PETRO", "count", Float,
        |o| ph(o, |p| p.fluxerr_petro);
    "MAG_PETRO", "Magnitude in the Petrosian aperture", "mag", Float, |o| ph(o, |p| p.mag_petro);
    "MAGERR_PETRO", "RMS error of MAG_PETRO", "mag", Float, |o| ph(o, |p| p.magerr_petro);
    "FLUX_ISOCOR", "Isophotal flux corrected for the wings of a Gaussian profile", "count",
        Float, |o| ph(o, |p| p.flux_isocor);
    "FLUXERR_ISOCOR", "RMS error of FLUX_ISOCOR", "count", Float,
        |o| ph(o, |p| p.fluxerr_isocor);
    "FLUX_BEST", "FLUX_AUTO, or FLUX_ISOCOR where neighbours crowd the aperture", "count",
        Float, |o| ph(o, |p| p.flux_best);
    "FLUXERR_BEST", "RMS error of FLUX_BEST", "count", Float, |o| ph(o, |p| p.fluxerr_best);
    "MAG_BEST", "Magnitude of FLUX_BEST", "mag", Float, |o| ph(o, |p| p.mag_best);
    "MAGERR_BEST", "RMS error of MAG_BEST", "mag", Float, |o| ph(o, |p| p.magerr_best);
    "XWIN_IMAGE", "Windowed position along x", "pixel", Float, |o| ph(o, |p| p.win.x + 1.0);
    "YWIN_IMAGE", "Windowed position along y", "pixel", Float, |o| ph(o, |p| p.win.y + 1.0);
    "ERRX2WIN_IMAGE", "Variance of XWIN_IMAGE", "pixel**2", Float, |o| ph(o, |p| p.win.errx2);
    "ERRY2WIN_IMAGE", "Variance of YWIN_IMAGE", "pixel**2", Float, |o| ph(o, |p| p.win.erry2);
    "ERRXYWIN_IMAGE", "Covariance of XWIN_IMAGE and YWIN_IMAGE", "pixel**2", Float,
        |o| ph(o, |p| p.win.errxy);
    "ERRAWIN_IMAGE", "Major axis of the windowed position's error ellipse", "pixel", Float,
        |o| ph(o, |p| p.win.erra);
    "ERRBWIN_IMAGE", "Minor axis of the windowed position's error ellipse", "pixel", Float,
        |o| ph(o, |p| p.win.errb);
    "ERRTHETAWIN_IMAGE", "Angle of the windowed position's error ellipse", "deg", Float,
        |o| ph(o, |p| p.win.errtheta);
    "X2WIN_IMAGE", "Windowed second moment along x", "pixel**2", Float, |o| ph(o, |p| p.win.x2);
    "Y2WIN_IMAGE", "Windowed second moment along y", "pixel**2", Float, |o| ph(o, |p| p.win.y2);
    "XYWIN_IMAGE", "Windowed cross moment", "pixel**2", Float, |o| ph(o, |p| p.win.xy);
    "AWIN_IMAGE", "Windowed major axis", "pixel", Float, |o| ph(o, |p| p.win.a);
    "BWIN_IMAGE", "Windowed minor axis", "pixel", Float, |o| ph(o, |p| p.win.b);
    "THETAWIN_IMAGE", "Windowed position angle, counter-clockwise from x", "deg", Float,
        |o| ph(o, |p| p.win.theta);
    "CXXWIN_IMAGE", "Windowed ellipse parameter CXX", "pixel**(-2)", Float,
        |o| ph(o, |p| p.win.cxx);
    "CYYWIN_IMAGE", "Windowed ellipse parameter CYY", "pixel**(-2)", Float,
        |o| ph(o, |p| p.win.cyy);
    "CXYWIN_IMAGE", "Windowed ellipse parameter CXY", "pixel**(-2)", Float,
        |o| ph(o, |p| p.win.cxy);
    "FLUX_WIN", "Flux in the Gaussian window", "count", Float, |o| ph(o, |p| p.win.flux);
    "FLUXERR_WIN", "RMS error of FLUX_WIN", "count", Float, |o| ph(o, |p| p.win.fluxerr);
    "SNR_WIN", "Signal-to-noise ratio in the Gaussian window", "", Float,
        |o| ph(o, |p| p.win.snr);
    "FLAGS_WIN", "Flags of the windowed measurements", "", Int,
        |o| ph(o, |p| p.win.flags as f64);
    "NITER_WIN", "Iterations of the windowed position", "", Int,
        |o| ph(o, |p| p.win.niter as f64);
    "MU_MAX", "Peak surface brightness above the background", "mag * arcsec**(-2)", Float,
        |o| ph(o, |p| p.mu_max);
    "MU_THRESHOLD", "Surface brightness of the analysis threshold", "mag * arcsec**(-2)",
        Float, |o| ph(o, |p| p.mu_threshold);
    "BACKGROUND", "Background at the object's centre", "count", Float,
        |o| ph(o, |p| p.background);
    "ISO0", "Own pixels above the analysis threshold", "pixel**2", Int,
        |o| ph(o, |p| p.iso[0] as f64);
    "ISO1", "Own pixels above level 1 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[1] as f64);
    "ISO2", "Own pixels above level 2 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[2] as f64);
    "ISO3", "Own pixels above level 3 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[3] as f64);
    "ISO4", "Own pixels above level 4 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[4] as f64);
    "ISO5", "Own pixels above level 5 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[5] as f64);
    "ISO6", "Own pixels above level 6 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[6] as f64);
    "ISO7", "Own pixels above level 7 of 8 to the peak", "pixel**2", Int,
        |o| ph(o, |p| p.iso[7] as f64);
    "FWHM_IMAGE", "FWHM of a Gaussian fitted to the profile", "pixel", Float,
        |o| ph(o, |p| p.fwhm);
    "CLASS_STAR", "Stellarity from SExtractor's neural network (1 star, 0 galaxy)", "", Float,
        |o| ph(o, |p| p.class_star);
}

// The world columns (wcs.md): positions in each frame, shapes through the local
// Jacobian.
columns! {
    WORLD_COLUMNS:
    "X_WORLD", "Barycenter position along world x axis", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].world[0]);
    "Y_WORLD", "Barycenter position along world y axis", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].world[1]);
    "XWIN_WORLD", "Windowed position along world x axis", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].world[0]);
    "YWIN_WORLD", "Windowed position along world y axis", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].world[1]);
    "XPEAK_WORLD", "World-x coordinate of the brightest pixel", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].world[0]);
    "YPEAK_WORLD", "World-y coordinate of the brightest pixel", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].world[1]);
    "ALPHA_SKY", "Right ascension of barycenter (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].sky[0]);
    "DELTA_SKY", "Declination of barycenter (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].sky[1]);
    "ALPHA_J2000", "Right ascension of barycenter (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].j2000[0]);
    "DELTA_J2000", "Declination of barycenter (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].j2000[1]);
    "ALPHA_B1950", "Right ascension of barycenter (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].b1950[0]);
    "DELTA_B1950", "Declination of barycenter (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[0].b1950[1]);
    "ALPHAWIN_SKY", "Windowed right ascension (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].sky[0]);
    "DELTAWIN_SKY", "Windowed declination (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].sky[1]);
    "ALPHAWIN_J2000", "Windowed right ascension (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].j2000[0]);
    "DELTAWIN_J2000", "Windowed declination (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].j2000[1]);
    "ALPHAWIN_B1950", "Windowed right ascension (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].b1950[0]);
    "DELTAWIN_B1950", "Windowed declination (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[1].b1950[1]);
    "ALPHAPEAK_SKY", "Right ascension of brightest pix (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].sky[0]);
    "DELTAPEAK_SKY", "Declination of brightest pix (native)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].sky[1]);
    "ALPHAPEAK_J2000", "Right ascension of brightest pix (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].j2000[0]);
    "DELTAPEAK_J2000", "Declination of brightest pix (J2000)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].j2000[1]);
    "ALPHAPEAK_B1950", "Right ascension of brightest pix (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].b1950[0]);
    "DELTAPEAK_B1950", "Declination of brightest pix (B1950)", "deg", Float,
        |o| wd(o, |w, _| w.pos[2].b1950[1]);
    "X2_WORLD", "Variance along X-WORLD (alpha)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, false)[0]);
    "Y2_WORLD", "Variance along Y-WORLD (delta)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, false)[1]);
    "XY_WORLD", "Covariance between X-WORLD and Y-WORLD", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, false)[2]);
    "A_WORLD", "Profile RMS along major axis (world units)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 0));
    "B_WORLD", "Profile RMS along minor axis (world units)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 1));
    "THETA_WORLD", "Position angle (CCW/world-x)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 2));
    "THETA_SKY", "Position angle (east of north) (native)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, false, None));
    "THETA_J2000", "Position angle (east of north) (J2000)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, false, Some(false)));
    "THETA_B1950", "Position angle (east of north) (B1950)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, false, Some(true)));
    "CXX_WORLD", "Cxx object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 3));
    "CYY_WORLD", "Cyy object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 4));
    "CXY_WORLD", "Cxy object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, false, 5));
    "ERRX2_WORLD", "Variance of position along X-WORLD (alpha)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, true)[0]);
    "ERRY2_WORLD", "Variance of position along Y-WORLD (delta)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, true)[1]);
    "ERRXY_WORLD", "Covariance of position X-WORLD/Y-WORLD", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, false, true)[2]);
    "ERRA_WORLD", "World RMS position error along major axis", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 0));
    "ERRB_WORLD", "World RMS position error along minor axis", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 1));
    "ERRTHETA_WORLD", "Error ellipse pos. angle (CCW/world-x)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 2));
    "ERRTHETA_SKY", "Native error ellipse pos. angle (east of north)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, true, None));
    "ERRTHETA_J2000", "J2000 error ellipse pos. angle (east of north)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, true, Some(false)));
    "ERRTHETA_B1950", "B1950 error ellipse pos. angle (east of north)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, false, true, Some(true)));
    "ERRCXX_WORLD", "Cxx error ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 3));
    "ERRCYY_WORLD", "Cyy error ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 4));
    "ERRCXY_WORLD", "Cxy error ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, false, true, 5));
    "X2WIN_WORLD", "Windowed variance along X-WORLD (alpha)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, false)[0]);
    "Y2WIN_WORLD", "Windowed variance along Y-WORLD (delta)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, false)[1]);
    "XYWIN_WORLD", "Windowed covariance between X-WORLD and Y-WORLD", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, false)[2]);
    "AWIN_WORLD", "Windowed profile RMS along major axis (world units)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 0));
    "BWIN_WORLD", "Windowed profile RMS along minor axis (world units)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 1));
    "THETAWIN_WORLD", "Windowed position angle (CCW/world-x)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 2));
    "THETAWIN_SKY", "Windowed position angle (east of north) (native)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, true, false, None));
    "THETAWIN_J2000", "Windowed position angle (east of north) (J2000)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, true, false, Some(false)));
    "THETAWIN_B1950", "Windowed position angle (east of north) (B1950)", "deg", Float,
        |o| wd(o, |w, o| wt(w, o, true, false, Some(true)));
    "CXXWIN_WORLD", "Windowed Cxx object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 3));
    "CYYWIN_WORLD", "Windowed Cyy object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 4));
    "CXYWIN_WORLD", "Windowed Cxy object ellipse parameter (WORLD units)", "deg**(-2)", Float,
        |o| wd(o, |w, o| we(w, o, true, false, 5));
    "ERRX2WIN_WORLD", "Variance of windowed pos along X-WORLD (alpha)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, true)[0]);
    "ERRY2WIN_WORLD", "Variance of windowed pos along Y-WORLD (delta)", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, true)[1]);
    "ERRXYWIN_WORLD", "Covariance of windowed pos X-WORLD/Y-WORLD", "deg**2", Float,
        |o| wd(o, |w, o| wm(w, o, true, true)[2]);
    "ERRAWIN_WORLD", "World RMS windowed pos error along major axis", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, true, 0));
    "ERRBWIN_WORLD", "World RMS windowed pos error along minor axis", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, true, 1));
    "ERRTHETAWIN_WORLD", "Windowed error ellipse pos. angle (CCW/world-x)", "deg", Float,
        |o| wd(o, |w, o| we(w, o, true, true, 2));
    "ERRTHETAWIN_SKY", "Native windowed error ellipse pos. angle (east of north)", "deg",
        Float, |o| wd(o, |w, o| wt(w, o, true, true, None));
    "ERRTHETAWIN_J2000", "J2000 windowed error ellipse pos. angle (east of north)", "deg",
        Float, |o| wd(o, |w, o| wt(w, o, true, true, Some(false)));
    "ERRTHETAWIN_B1950", "B1950 windowed error ellipse pos. angle (east of north)", "deg",
        Float, |o| wd(o, |w, o| wt(w, o, true, true, Some(true)));
    "ERRCXXWIN_WORLD", "Cxx windowed error ellipse parameter (WORLD units)", "deg**(-2)",
        Float, |o| wd(o, |w, o| we(w, o, true, true, 3));
    "ERRCYYWIN_WORLD", "Cyy windowed error ellipse parameter (WORLD units)", "deg**(-2)",
        Float, |o| wd(o, |w, o| we(w, o, true, true, 4));
    "ERRCXYWIN_WORLD", "Cxy windowed error ellipse parameter (WORLD units)", "deg**(-2)",
        Float, |o| wd(o, |w, o| we(w, o, true, true, 5));
    "FWHM_WORLD", "FWHM assuming a gaussian core", "deg", Float,
        |o| wd(o, |w, o| o.phot.as_deref().map_or(0.0, |p| p.fwhm) * w.pixel_deg());
    "ISOAREA_WORLD", "Isophotal area above Analysis threshold", "deg**2", Float,
        |o| wd(o, |w, o| o.isoarea as f64 * w.pixel_deg() * w.pixel_deg());
    "ISOAREAF_WORLD", "Isophotal area (filtered) above Detection threshold", "deg**2", Float,
        |o| wd(o, |w, o| o.npix as f64 * w.pixel_deg() * w.pixel_deg());
}

// Columns about the run rather than the object.
columns! {
    RUN_COLUMNS:
    "EXT_NUMBER", "FITS extension number", "", Int, |o| o.ext as f64 + 1.0;
}

/// The vector parameters, `NAME(n)`: element i of each.
pub const VECTOR_COLUMNS: &[Column] = &[
    vector(
        "FLUX_APER",
        "Flux in a fixed circular aperture (PHOT_APERTURES)",
        "count",
        |o, i| ph_at(o, i, |p| &p.flux_aper),
    ),
    vector("FLUXERR_APER", "RMS error of FLUX_APER", "count", |o, i| {
        ph_at(o, i, |p| &p.fluxerr_aper)
    }),
    vector(
        "MAG_APER",
        "Magnitude in a fixed circular aperture",
        "mag",
        |o, i| ph_at(o, i, |p| &p.mag_aper),
    ),
    vector("MAGERR_APER", "RMS error of MAG_APER", "mag", |o, i| {
        ph_at(o, i, |p| &p.magerr_aper)
    }),
    vector(
        "FLUX_RADIUS",
        "Radius holding a fraction of FLUX_AUTO (PHOT_FLUXFRAC)",
        "pixel",
        |o, i| ph_at(o, i, |p| &p.flux_radius),
    ),
    Column {
        kind: ColumnKind::Int,
        ..vector(
            "IMAFLAGS_ISO",
            "FLAG-image flags OR'ed over the iso. profile",
            "",
            |o, i| o.imaflags.get(i).map_or(0.0, |&v| v as f64),
        )
    },
    Column {
        kind: ColumnKind::Int,
        ..vector(
            "NIMAFLAGS_ISO",
            "Number of flagged pixels entering IMAFLAGS_ISO",
            "",
            |o, i| o.nimaflags.get(i).map_or(0.0, |&v| v as f64),
        )
    },
];

const fn vector(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    get: fn(&Object, usize) -> f64,
) -> Column {
    Column {
        name,
        description,
        unit,
        kind: ColumnKind::Float,
        get,
        index: 0,
        vector: None,
        tdim: None,
    }
}

/// VIGNET(w,h): the background-subtracted pixels of the w x h box around each object
/// (-1e30 off the image and, with MASK_TYPE BLANK or CORRECT, on other objects), what
/// PSFEx reads.
const VIGNET: Column = Column {
    name: "VIGNET",
    description: "Pixel data around detection",
    unit: "count",
    kind: ColumnKind::Float32,
    get: |o, i| {
        o.phot
            .as_deref()
            .and_then(|p| p.vignet.get(i))
            .map_or(-1e30, |&v| v as f64)
    },
    index: 0,
    vector: None,
    tdim: None,
};

/// Element `i` (0-based) of a vector column, named NAME_i+1 (one per name and
/// element for the whole process).
fn element(base: &'static Column, i: usize, n: usize) -> &'static Column {
    element_2d(base, i, n, None)
}

/// [`element`] of a vector that is a `tdim` image.
fn element_2d(
    base: &'static Column,
    i: usize,
    n: usize,
    tdim: Option<(usize, usize)>,
) -> &'static Column {
    use std::sync::Mutex;
    static MADE: Mutex<Vec<&'static Column>> = Mutex::new(Vec::new());
    let name = if n == 1 {
        base.name.to_string()
    } else {
        format!("{}_{}", base.name, i + 1)
    };
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = made.iter().find(|c| c.name == name && c.tdim == tdim) {
        return c;
    }
    let c: &'static Column = Box::leak(Box::new(Column {
        name: Box::leak(name.into_boxed_str()),
        index: i,
        vector: (n > 1).then_some((base.name, n)),
        tdim,
        ..*base
    }));
    made.push(c);
    c
}

/// SExtractor's display format of each parameter (its FITS TDISPn, the printf format
/// of its ASCII catalogs), as its FITS_LDAC catalog of sep_image shows them (the last
/// rows, for parameters no reference holds, by their siblings' formats).
const DISPLAY: &[(&str, &str)] = &[
    ("NUMBER", "I10"),
    ("X_IMAGE", "F11.4"),
    ("Y_IMAGE", "F11.4"),
    ("XMIN_IMAGE", "I10"),
    ("YMIN_IMAGE", "I10"),
    ("XMAX_IMAGE", "I10"),
    ("YMAX_IMAGE", "I10"),
    ("XPEAK_IMAGE", "I10"),
    ("YPEAK_IMAGE", "I10"),
    ("X2_IMAGE", "E18.10"),
    ("Y2_IMAGE", "E18.10"),
    ("XY_IMAGE", "E18.10"),
    ("A_IMAGE", "F9.3"),
    ("B_IMAGE", "F9.3"),
    ("THETA_IMAGE", "F6.2"),
    ("ELONGATION", "F8.3"),
    ("ELLIPTICITY", "F8.3"),
    ("CXX_IMAGE", "E15.7"),
    ("CYY_IMAGE", "E15.7"),
    ("CXY_IMAGE", "E15.7"),
    ("ERRX2_IMAGE", "E18.10"),
    ("ERRY2_IMAGE", "E18.10"),
    ("ERRXY_IMAGE", "E18.10"),
    ("ERRA_IMAGE", "F9.5"),
    ("ERRB_IMAGE", "F9.5"),
    ("ERRTHETA_IMAGE", "F6.2"),
    ("ISOAREA_IMAGE", "I9"),
    ("ISOAREAF_IMAGE", "I9"),
    ("FLUX_ISO", "G12.7"),
    ("FLUXERR_ISO", "G12.7"),
    ("MAG_ISO", "F8.4"),
    ("MAGERR_ISO", "F8.4"),
    ("MAG_ISOCOR", "F8.4"),
    ("FLUX_MAX", "G12.7"),
    ("FLUX_AUTO", "G12.7"),
    ("FLUXERR_AUTO", "G12.7"),
    ("KRON_RADIUS", "F5.2"),
    ("FLUX_RADIUS", "F10.3"),
    ("FWHM_IMAGE", "F8.2"),
    ("CLASS_STAR", "F6.3"),
    ("FLAGS", "I3"),
    ("MAG_AUTO", "F8.4"),
    ("MAGERR_AUTO", "F8.4"),
    ("FLUX_APER", "G12.7"),
    ("FLUXERR_APER", "G12.7"),
    ("MAG_APER", "F8.4"),
    ("MAGERR_APER", "F8.4"),
    ("XWIN_IMAGE", "F11.4"),
    ("YWIN_IMAGE", "F11.4"),
    ("ERRAWIN_IMAGE", "F9.5"),
    ("ERRBWIN_IMAGE", "F9.5"),
    ("ERRTHETAWIN_IMAGE", "F6.2"),
    ("X2WIN_IMAGE", "E18.10"),
    ("Y2WIN_IMAGE", "E18.10"),
    ("XYWIN_IMAGE", "E18.10"),
    ("AWIN_IMAGE", "F9.3"),
    ("BWIN_IMAGE", "F9.3"),
    ("THETAWIN_IMAGE", "F6.2"),
    ("FLAGS_WIN", "I3"),
    ("SNR_WIN", "G10.4"),
    ("FLUX_PETRO", "G12.7"),
    ("FLUXERR_PETRO", "G12.7"),
    ("MAG_PETRO", "F8.4"),
    ("PETRO_RADIUS", "F5.2"),
    ("FLUX_BEST", "G12.7"),
    ("MAG_BEST", "F8.4"),
    ("FLUX_ISOCOR", "G12.7"),
    ("MU_MAX", "F8.4"),
    ("MU_THRESHOLD", "F8.4"),
    ("BACKGROUND", "G12.7"),
    ("THRESHOLD", "G12.7"),
    ("ISO0", "I8"),
    ("ISO1", "I8"),
    ("ISO2", "I8"),
    ("ISO3", "I8"),
    ("ISO4", "I8"),
    ("ISO5", "I8"),
    ("ISO6", "I8"),
    ("ISO7", "I8"),
    ("ERRCXX_IMAGE", "G12.7"),
    ("ERRCYY_IMAGE", "G12.7"),
    ("ERRCXY_IMAGE", "G12.7"),
    ("MAGERR_PETRO", "F8.4"),
    ("FLUXERR_ISOCOR", "G12.7"),
    ("FLUXERR_BEST", "G12.7"),
    ("MAGERR_BEST", "F8.4"),
    ("ERRX2WIN_IMAGE", "E18.10"),
    ("ERRY2WIN_IMAGE", "E18.10"),
    ("ERRXYWIN_IMAGE", "E18.10"),
    ("CXXWIN_IMAGE", "E15.7"),
    ("CYYWIN_IMAGE", "E15.7"),
    ("CXYWIN_IMAGE", "E15.7"),
    ("FLUX_WIN", "G12.7"),
    ("FLUXERR_WIN", "G12.7"),
    ("NITER_WIN", "I3"),
    ("VIGNET", "G12.7"),
];

/// SExtractor's display format of a world column (by the kind of value).
fn world_display(name: &str) -> Option<&'static str> {
    if name.starts_with("ALPHA") || name.starts_with("DELTA") {
        Some("F11.7")
    } else if name.contains("THETA") {
        Some("F6.2")
    } else if !name.ends_with("_WORLD") {
        None
    } else if name.starts_with('X')
        || name.starts_with('Y')
        || name.starts_with("ERRX")
        || name.starts_with("ERRY")
    {
        // Positions and second moments.
        Some("E18.10")
    } else if name.contains("CXX") || name.contains("CYY") || name.contains("CXY") {
        Some("E15.7")
    } else {
        Some("G12.7")
    }
}

/// The display format of column `c` (SExtractor's TDISP: `I10`, `F11.4`, `E18.10`,
/// `G12.7`), by its parameter's name.
pub fn display_format(c: &Column) -> Option<&'static str> {
    let name = c.vector.map_or(c.name, |v| v.0);
    DISPLAY
        .iter()
        .find(|d| d.0 == name)
        .map(|d| d.1)
        .or_else(|| world_display(name))
}

/// `v` as SExtractor's ASCII catalogs print it with display format `f` (C's printf
/// `%wd`, `%w.pf`, `%w.pe`, `%w.pg`).
pub fn display(f: &str, v: f64) -> String {
    let (kind, rest) = f.split_at(1);
    let (w, p) = match rest.split_once('.') {
        Some((w, p)) => (w.parse().unwrap_or(0), p.parse().unwrap_or(6)),
        None => (rest.parse().unwrap_or(0), 0),
    };
    let s = match kind {
        "I" => format!("{}", v as i64),
        "F" => format!("{v:.p$}"),
        "E" => c_exp(v, p),
        _ => c_g(v, p.max(1)),
    };
    format!("{s:>w$}")
}

/// C's `%.pe`: a mantissa of p decimals and a signed exponent of at least two digits.
fn c_exp(v: f64, p: usize) -> String {
    let s = format!("{v:.p$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// C's `%.pg`: p significant digits, trailing zeros removed, in exponent form when
/// the exponent is below −4 or at least p.
fn c_g(v: f64, p: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let e = format!("{v:.prec$e}", prec = p - 1);
    let exp: i32 = e.split_once('e').map_or(0, |(_, x)| x.parse().unwrap_or(0));
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= p as i32 {
        let s = c_exp(v, p - 1);
        let (m, x) = s.split_once('e').unwrap_or((&s, ""));
        format!("{}e{x}", trim(m.to_string()))
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(format!("{v:.decimals$}"))
    }
}

/// Looks a scalar column up by its SExtractor name (case-insensitive).
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS
        .iter()
        .chain(PHOT_COLUMNS)
        .chain(WORLD_COLUMNS)
        .chain(RUN_COLUMNS)
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The columns of one parameter: `NAME`, or `NAME(n)` for n elements of a vector.
fn parameter(spec: &str) -> Option<Vec<&'static Column>> {
    if let Some((w, h)) = vignet_size(spec) {
        let n = w * h;
        return Some(
            (0..n)
                .map(|i| element_2d(&VIGNET, i, n, Some((w, h))))
                .collect(),
        );
    }
    let (name, n) = match spec.split_once('(') {
        Some((name, rest)) => (name.trim(), rest.strip_suffix(')')?.trim().parse().ok()?),
        None => (spec, 1usize),
    };
    if let Some(c) = column(name) {
        return (n == 1 && !spec.contains('(')).then(|| vec![c]);
    }
    let base = VECTOR_COLUMNS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))?;
    (n >= 1).then(|| (0..n).map(|i| element(base, i, n)).collect())
}

/// The (w, h) of a `VIGNET(w,h)` parameter (case-insensitive), each 1 to 1024.
pub fn vignet_size(spec: &str) -> Option<(usize, usize)> {
    let (name, rest) = spec.trim().split_once('(')?;
    if !name.trim().eq_ignore_ascii_case("VIGNET") {
        return None;
    }
    let (w, h) = rest.strip_suffix(')')?.split_once(',')?;
    let (w, h): (usize, usize) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    ((1..=1024).contains(&w) && (1..=1024).contains(&h)).then_some((w, h))
}

/// Resolves a list of parameters (`NAME` or `NAME(n)`); an unknown one is an error
/// that lists the known ones. None gives the isophotal columns.
pub fn select_columns(names: &[String]) -> Result<Vec<&'static Column>> {
    if names.is_empty() {
        return Ok(COLUMNS.iter().collect());
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for n in names {
        let key = n
            .trim()
            .split('(')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        if !seen.insert(key) {
            return Err(Error::param(
                "PARAMETERS_NAME",
                n,
                "is listed twice: name each catalog parameter once",
            ));
        }
        let cols = parameter(n.trim()).ok_or_else(|| {
            let known = COLUMNS
                .iter()
                .chain(PHOT_COLUMNS)
                .chain(WORLD_COLUMNS)
                .chain(RUN_COLUMNS)
                .map(|c| c.name.to_string());
            let vectors = VECTOR_COLUMNS.iter().map(|c| format!("{}(n)", c.name));
            Error::param(
                "PARAMETERS_NAME",
                n,
                format!(
                    "unknown catalog parameter; known: {}",
                    known.chain(vectors).collect::<Vec<_>>().join(",")
                ),
            )
        })?;
        out.extend(cols);
    }
    Ok(out)
}

/// A catalog: the objects, numbered from 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub objects: Vec<Object>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of SExtractor's own ASCII_HEAD row of sep_image's object 1, and C's
    /// printf rules (`%g` trims zeros and switches to an exponent, `%e` has two
    /// exponent digits).
    #[test]
    fn values_print_as_sextractors_ascii_catalogs() {
        assert_eq!(display("I10", 1.0), "         1");
        assert_eq!(display("F11.4", 165.14493), "   165.1449");
        assert_eq!(display("E18.10", 2.4117662184), "  2.4117662184e+00");
        assert_eq!(display("E15.7", -0.040335801), " -4.0335801e-02");
        assert_eq!(display("G12.7", 3016.4941), "    3016.494");
        assert_eq!(display("G12.7", 11147.4), "     11147.4");
        assert_eq!(display("G12.7", 0.0), "           0");
        assert_eq!(display("G12.7", 1.25e-5), "    1.25e-05");
        assert_eq!(display("G12.7", 123456789.0), "1.234568e+08");
        assert_eq!(display("G10.4", 25.70638), "     25.71");
        assert_eq!(display("F6.2", -57.19), "-57.19");
        let x = column("X_IMAGE").unwrap();
        assert_eq!(display_format(x), Some("F11.4"));
        let aper = &select_columns(&["FLUX_APER(3)".to_string()]).unwrap()[1];
        assert_eq!(display_format(aper), Some("G12.7"));
    }
}
