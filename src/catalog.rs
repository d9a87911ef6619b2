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

macro_rules! col {
    ($name:expr, $desc:expr, $unit:expr, Int, $f:expr) => {
        Column {
            name: $name,
            description: $desc,
            unit: $unit,
            kind: ColumnKind::Int,
            get: $f,
        }
    };
    ($name:expr, $desc:expr, $unit:expr, Float, $f:expr) => {
        Column {
            name: $name,
            description: $desc,
            unit: $unit,
            kind: ColumnKind::Float,
            get: $f,
        }
    };
}

/// Every column skysift can write, in SExtractor's order.
pub const COLUMNS: &[Column] = &[
    col!("NUMBER", "Running object number", "", Int, |o| o.number
        as f64),
    col!("X_IMAGE", "Object position along x", "pixel", Float, |o| o
        .x
        + 1.0),
    col!("Y_IMAGE", "Object position along y", "pixel", Float, |o| o
        .y
        + 1.0),
    col!(
        "XMIN_IMAGE",
        "Minimum x-coordinate among detected pixels",
        "pixel",
        Int,
        |o| o.xmin as f64 + 1.0
    ),
    col!(
        "YMIN_IMAGE",
        "Minimum y-coordinate among detected pixels",
        "pixel",
        Int,
        |o| o.ymin as f64 + 1.0
    ),
    col!(
        "XMAX_IMAGE",
        "Maximum x-coordinate among detected pixels",
        "pixel",
        Int,
        |o| o.xmax as f64 + 1.0
    ),
    col!(
        "YMAX_IMAGE",
        "Maximum y-coordinate among detected pixels",
        "pixel",
        Int,
        |o| o.ymax as f64 + 1.0
    ),
    col!(
        "XPEAK_IMAGE",
        "x-coordinate of the brightest pixel",
        "pixel",
        Int,
        |o| o.xpeak as f64 + 1.0
    ),
    col!(
        "YPEAK_IMAGE",
        "y-coordinate of the brightest pixel",
        "pixel",
        Int,
        |o| o.ypeak as f64 + 1.0
    ),
    col!("X2_IMAGE", "Variance along x", "pixel**2", Float, |o| o.x2),
    col!("Y2_IMAGE", "Variance along y", "pixel**2", Float, |o| o.y2),
    col!(
        "XY_IMAGE",
        "Covariance between x and y",
        "pixel**2",
        Float,
        |o| o.xy
    ),
    col!(
        "A_IMAGE",
        "Profile RMS along major axis",
        "pixel",
        Float,
        |o| o.a
    ),
    col!(
        "B_IMAGE",
        "Profile RMS along minor axis",
        "pixel",
        Float,
        |o| o.b
    ),
    col!("THETA_IMAGE", "Position angle (CCW/x)", "deg", Float, |o| o
        .theta),
    col!("ELONGATION", "A_IMAGE/B_IMAGE", "", Float, |o| o.a / o.b),
    col!("ELLIPTICITY", "1 - B_IMAGE/A_IMAGE", "", Float, |o| 1.0
        - o.b / o.a),
    col!(
        "CXX_IMAGE",
        "Cxx object ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.cxx
    ),
    col!(
        "CYY_IMAGE",
        "Cyy object ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.cyy
    ),
    col!(
        "CXY_IMAGE",
        "Cxy object ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.cxy
    ),
    col!(
        "ERRX2_IMAGE",
        "Variance of position along x",
        "pixel**2",
        Float,
        |o| o.errx2
    ),
    col!(
        "ERRY2_IMAGE",
        "Variance of position along y",
        "pixel**2",
        Float,
        |o| o.erry2
    ),
    col!(
        "ERRXY_IMAGE",
        "Covariance of position between x and y",
        "pixel**2",
        Float,
        |o| o.errxy
    ),
    col!(
        "ERRA_IMAGE",
        "RMS position error along major axis",
        "pixel",
        Float,
        |o| o.erra
    ),
    col!(
        "ERRB_IMAGE",
        "RMS position error along minor axis",
        "pixel",
        Float,
        |o| o.errb
    ),
    col!(
        "ERRTHETA_IMAGE",
        "Error ellipse position angle (CCW/x)",
        "deg",
        Float,
        |o| o.errtheta
    ),
    col!(
        "ERRCXX_IMAGE",
        "Cxx error ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.errcxx
    ),
    col!(
        "ERRCYY_IMAGE",
        "Cyy error ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.errcyy
    ),
    col!(
        "ERRCXY_IMAGE",
        "Cxy error ellipse parameter",
        "pixel**(-2)",
        Float,
        |o| o.errcxy
    ),
    col!(
        "ISOAREA_IMAGE",
        "Isophotal area above Analysis threshold",
        "pixel**2",
        Int,
        |o| o.isoarea as f64
    ),
    col!(
        "ISOAREAF_IMAGE",
        "Isophotal area (filtered) above Detection threshold",
        "pixel**2",
        Int,
        |o| o.npix as f64
    ),
    col!("FLUX_ISO", "Isophotal flux", "count", Float, |o| o.flux),
    col!(
        "FLUXERR_ISO",
        "RMS error for isophotal flux",
        "count",
        Float,
        |o| o.fluxerr
    ),
    col!("MAG_ISO", "Isophotal magnitude", "mag", Float, |o| o.mag),
    col!(
        "MAGERR_ISO",
        "RMS error for isophotal magnitude",
        "mag",
        Float,
        |o| o.magerr
    ),
    col!(
        "MAG_ISOCOR",
        "Corrected isophotal magnitude",
        "mag",
        Float,
        |o| o.mag_isocor
    ),
    col!(
        "FLUX_MAX",
        "Peak flux above background",
        "count",
        Float,
        |o| o.flux_max
    ),
    col!(
        "THRESHOLD",
        "Detection threshold above background",
        "count",
        Float,
        |o| o.thresh
    ),
    col!("FLAGS", "Extraction flags", "", Int, |o| o.flags as f64),
];

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
