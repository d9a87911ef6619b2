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
}

/// One catalog column: SExtractor's name, description and unit.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    pub kind: ColumnKind,
    get: fn(&Object) -> f64,
}

impl Column {
    /// The value of this column for `o`, in the written (1-based) convention.
    pub fn value(&self, o: &Object) -> f64 {
        (self.get)(o)
    }
}

/// Builds [`COLUMNS`] from one line per column: name, description, unit, kind and
/// value (in the written, 1-based convention).
macro_rules! columns {
    ($($name:literal, $desc:literal, $unit:literal, $kind:ident, $f:expr;)*) => {
        /// Every column skysift can write, in SExtractor's order.
        pub const COLUMNS: &[Column] = &[$(Column {
            name: $name,
            description: $desc,
            unit: $unit,
            kind: ColumnKind::$kind,
            get: $f,
        }),*];
    };
}

columns! {
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

/// Looks a column up by its SExtractor name (case-insensitive).
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Resolves a list of column names; an unknown name is an error that lists the known ones.
pub fn select_columns(names: &[String]) -> Result<Vec<&'static Column>> {
    if names.is_empty() {
        return Ok(COLUMNS.iter().collect());
    }
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|n| {
            if !seen.insert(n.trim().to_ascii_uppercase()) {
                return Err(Error::param(
                    "PARAMETERS_NAME",
                    n,
                    "is listed twice: name each catalog parameter once",
                ));
            }
            column(n.trim()).ok_or_else(|| {
                Error::param(
                    "PARAMETERS_NAME",
                    n,
                    format!(
                        "unknown catalog parameter; known: {}",
                        COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(",")
                    ),
                )
            })
        })
        .collect()
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
