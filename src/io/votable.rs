//! SExtractor's ASCII_VOTABLE catalogs, through the `votable` crate (cds-astro): the
//! crate writes the document (VOTABLE, RESOURCE, TABLE, each FIELD with its datatype,
//! unit, UCD, array size and description) up to the TABLEDATA element and from its
//! end; [`super::catalog::CatalogWriter`] writes the rows in between as objects come,
//! so a streamed run's VOTable is written in bounded memory too.
//!
//! Differences from SExtractor 2.25, which are fixes: a vector parameter's FIELD has
//! its `arraysize` (SExtractor leaves it out, so VOTable readers such as astropy read
//! FLUX_APER as one masked number), and VIGNET is written (SExtractor drops it).

use crate::catalog::Column;
use crate::error::{Error, Result};
use votable::datatype::Datatype;
use votable::field::{ArraySize, Field};
use votable::impls::mem::VoidTableDataContent;
use votable::resource::{Resource, ResourceSubElem};
use votable::table::Table;
use votable::votable::{VOTable, Version};

/// The UCD (IVOA Unified Content Descriptor) and VOUnit of each parameter, as
/// SExtractor 2.25's VOTables give them (units in the VOUnit spelling VOTable
/// readers parse: `pix`, `ct`, `pix2`, ...).
const UCD: &[(&str, &str, &str)] = &[
    // The world columns, as SExtractor's VOTable of sep_image writes them.
    ("X_WORLD", "pos.eq.ra", "deg"),
    ("Y_WORLD", "pos.eq.dec", "deg"),
    ("ALPHA_J2000", "pos.eq.ra;pos.barycenter;meta.main", "deg"),
    ("DELTA_J2000", "pos.eq.dec;pos.barycenter;meta.main", "deg"),
    ("ALPHA_SKY", "pos.eq.ra;pos.barycenter", "deg"),
    ("DELTA_SKY", "pos.eq.dec;pos.barycenter", "deg"),
    ("XWIN_WORLD", "pos.eq.ra", "deg"),
    ("YWIN_WORLD", "pos.eq.dec", "deg"),
    ("ALPHAWIN_J2000", "pos.eq.ra", "deg"),
    ("DELTAWIN_J2000", "pos.eq.dec", "deg"),
    ("A_WORLD", "phys.size.smajAxis;meta.main", "deg"),
    ("B_WORLD", "phys.size.sminAxis;meta.main", "deg"),
    ("THETA_WORLD", "pos.posAng", "deg"),
    ("THETA_J2000", "pos.posAng;meta.main", "deg"),
    (
        "ERRA_WORLD",
        "stat.stdev;stat.max;pos.errorEllipse;meta.main",
        "deg",
    ),
    (
        "ERRB_WORLD",
        "stat.stdev;stat.min;pos.errorEllipse;meta.main",
        "deg",
    ),
    ("FWHM_WORLD", "phys.angSize;instr.det.psf", "deg"),
    ("NUMBER", "meta.record", ""),
    (
        "X_IMAGE",
        "pos.cartesian.x;pos.barycenter;instr.det;meta.main",
        "pix",
    ),
    (
        "Y_IMAGE",
        "pos.cartesian.y;pos.barycenter;instr.det;meta.main",
        "pix",
    ),
    ("XMIN_IMAGE", "pos.cartesian.x;stat.min", "pix"),
    ("YMIN_IMAGE", "pos.cartesian.y;stat.min", "pix"),
    ("XMAX_IMAGE", "pos.cartesian.x;stat.max", "pix"),
    ("YMAX_IMAGE", "pos.cartesian.y;stat.max", "pix"),
    ("XPEAK_IMAGE", "pos.cartesian.x", "pix"),
    ("YPEAK_IMAGE", "pos.cartesian.y", "pix"),
    ("X2_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("Y2_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("XY_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("A_IMAGE", "phys.size.smajAxis;instr.det;meta.main", "pix"),
    ("B_IMAGE", "phys.size.sminAxis;instr.det;meta.main", "pix"),
    ("THETA_IMAGE", "pos.posAng;instr.det;meta.main", "deg"),
    ("ELONGATION", "src.ellipticity;arith.ratio;instr.det", ""),
    ("ELLIPTICITY", "src.ellipticity;instr.det", ""),
    ("CXX_IMAGE", "src.impactParam;instr.det", "pix-2"),
    ("CYY_IMAGE", "src.impactParam;instr.det", "pix-2"),
    ("CXY_IMAGE", "src.impactParam;instr.det", "pix-2"),
    (
        "ERRX2_IMAGE",
        "stat.variance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRY2_IMAGE",
        "stat.variance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRXY_IMAGE",
        "stat.covariance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRA_IMAGE",
        "stat.stdev;stat.max;pos.errorEllipse;instr.det;meta.main",
        "pix",
    ),
    (
        "ERRB_IMAGE",
        "stat.stdev;stat.min;pos.errorEllipse;instr.det;meta.main",
        "pix",
    ),
    (
        "ERRTHETA_IMAGE",
        "pos.posAng;pos.errorEllipse;instr.det;meta.main",
        "deg",
    ),
    (
        "ERRCXX_IMAGE",
        "src.impactParam;pos.errorEllipse;instr.det",
        "pix-2",
    ),
    (
        "ERRCYY_IMAGE",
        "src.impactParam;pos.errorEllipse;instr.det",
        "pix-2",
    ),
    (
        "ERRCXY_IMAGE",
        "src.impactParam;pos.errorEllipse;instr.det",
        "pix-2",
    ),
    ("ISOAREA_IMAGE", "phys.area", "pix2"),
    ("ISOAREAF_IMAGE", "phys.area", "pix2"),
    ("FLUX_ISO", "phot.flux", "ct"),
    ("FLUXERR_ISO", "stat.stdev;phot.flux", "ct"),
    ("MAG_ISO", "phot.mag", "mag"),
    ("MAGERR_ISO", "stat.stdev;phot.mag", "mag"),
    ("MAG_ISOCOR", "phot.mag", "mag"),
    ("FLUX_MAX", "phot.flux.sb;stat.max", "ct"),
    ("THRESHOLD", "instr.sensitivity;phot.flux.sb", "ct"),
    ("FLAGS", "meta.code.qual", ""),
    ("KRON_RADIUS", "arith.factor;arith.ratio", ""),
    ("FLUX_AUTO", "phot.flux;meta.main", "ct"),
    ("FLUXERR_AUTO", "stat.stdev;phot.flux;meta.main", "ct"),
    ("MAG_AUTO", "phot.mag;meta.main", "mag"),
    ("MAGERR_AUTO", "stat.stdev;phot.mag;meta.main", "mag"),
    ("PETRO_RADIUS", "arith.factor;arith.ratio", ""),
    ("FLUX_PETRO", "phot.flux", "ct"),
    ("FLUXERR_PETRO", "stat.stdev;phot.flux", "ct"),
    ("MAG_PETRO", "phot.mag", "mag"),
    ("MAGERR_PETRO", "stat.stdev;phot.mag", "mag"),
    ("FLUX_ISOCOR", "phot.flux", "ct"),
    ("FLUXERR_ISOCOR", "stat.stdev;phot.flux", "ct"),
    ("FLUX_BEST", "phot.flux", "ct"),
    ("FLUXERR_BEST", "stat.stdev;phot.flux", "ct"),
    ("MAG_BEST", "phot.mag", "mag"),
    ("MAGERR_BEST", "stat.stdev;phot.mag", "mag"),
    ("XWIN_IMAGE", "pos.cartesian.x;instr.det", "pix"),
    ("YWIN_IMAGE", "pos.cartesian.y;instr.det", "pix"),
    (
        "ERRX2WIN_IMAGE",
        "stat.variance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRY2WIN_IMAGE",
        "stat.variance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRXYWIN_IMAGE",
        "stat.covariance;pos.errorEllipse;instr.det",
        "pix2",
    ),
    (
        "ERRAWIN_IMAGE",
        "stat.stdev;stat.max;pos.errorEllipse;instr.det",
        "pix",
    ),
    (
        "ERRBWIN_IMAGE",
        "stat.stdev;stat.min;pos.errorEllipse;instr.det",
        "pix",
    ),
    (
        "ERRTHETAWIN_IMAGE",
        "pos.posAng;pos.errorEllipse;instr.det",
        "deg",
    ),
    ("X2WIN_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("Y2WIN_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("XYWIN_IMAGE", "src.impactParam;instr.det", "pix2"),
    ("AWIN_IMAGE", "phys.size.smajAxis;instr.det", "pix"),
    ("BWIN_IMAGE", "phys.size.sminAxis;instr.det", "pix"),
    ("THETAWIN_IMAGE", "pos.posAng;instr.det", "deg"),
    ("CXXWIN_IMAGE", "src.impactParam;instr.det", "pix-2"),
    ("CYYWIN_IMAGE", "src.impactParam;instr.det", "pix-2"),
    ("CXYWIN_IMAGE", "src.impactParam;instr.det", "pix-2"),
    ("FLUX_WIN", "phot.flux", "ct"),
    ("FLUXERR_WIN", "stat.stdev;phot.flux", "ct"),
    ("SNR_WIN", "stat.snr", ""),
    ("FLAGS_WIN", "meta.code.qual", ""),
    ("NITER_WIN", "meta.number", ""),
    ("MU_MAX", "phot.mag.sb;stat.max", "mag.arcsec-2"),
    (
        "MU_THRESHOLD",
        "instr.sensitivity;phot.mag.sb",
        "mag.arcsec-2",
    ),
    ("BACKGROUND", "instr.skyLevel", "ct"),
    ("ISO0", "phys.area;instr.det", "pix2"),
    ("ISO1", "phys.area;instr.det", "pix2"),
    ("ISO2", "phys.area;instr.det", "pix2"),
    ("ISO3", "phys.area;instr.det", "pix2"),
    ("ISO4", "phys.area;instr.det", "pix2"),
    ("ISO5", "phys.area;instr.det", "pix2"),
    ("ISO6", "phys.area;instr.det", "pix2"),
    ("ISO7", "phys.area;instr.det", "pix2"),
    ("FWHM_IMAGE", "phys.size.diameter;instr.det.psf", "pix"),
    ("CLASS_STAR", "src.class.starGalaxy", ""),
    ("FLUX_APER", "phot.flux", "ct"),
    ("FLUXERR_APER", "stat.stdev;phot.flux", "ct"),
    ("MAG_APER", "phot.mag", "mag"),
    ("MAGERR_APER", "stat.stdev;phot.mag", "mag"),
    ("FLUX_RADIUS", "phys.size.radius;instr.det", "pix"),
    ("EXT_NUMBER", "meta.id;meta.dataset", ""),
    ("VIGNET", "obs.image", "ct"),
];

/// A parameter's UCD and unit.
pub fn ucd_unit(name: &str) -> (&'static str, &'static str) {
    UCD.iter()
        .find(|u| u.0 == name)
        .map_or(("", ""), |u| (u.1, u.2))
}

fn datatype(c: &Column) -> Datatype {
    match super::fits_table::tform(c, true) {
        'I' => Datatype::ShortInt,
        'J' => Datatype::Int,
        'E' => Datatype::Float,
        _ => Datatype::Double,
    }
}

/// The FIELD of each catalog field of `cols` (a vector's elements are one field):
/// SExtractor's name, UCD, unit and datatype, and its arraysize.
pub(crate) fn fields<'a>(cols: &'a [&'a Column]) -> impl Iterator<Item = Field> + 'a {
    cols.iter().filter_map(|c| {
        let (name, n) = c.field()?;
        let (ucd, unit) = ucd_unit(name);
        let mut f = Field::new(name, datatype(c)).set_description(c.description.into());
        if !ucd.is_empty() {
            f = f.set_ucd(ucd);
        }
        if !unit.is_empty() {
            f = f.set_unit(unit);
        }
        if let Some((w, h)) = c.tdim {
            f = f.set_arraysize(ArraySize::new_fixed_nd(vec![w as u32, h as u32]));
        } else if n > 1 {
            f = f.set_arraysize(ArraySize::new_fixed_1d(n as u32));
        }
        Some(f)
    })
}

/// The document before the rows (through `<TABLEDATA>`) and after them, for a catalog
/// of `cols` from the image `image`.
pub fn head_and_tail(cols: &[&Column], image: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut table = Table::new()
        .set_id("Source_List")
        .set_name(format!("{image}/out"))
        .set_description("Table of sources detected in image".into());
    for f in fields(cols) {
        table = table.push_field(f);
    }
    let table = table
        .set_data(votable::data::Data::new_empty().set_tabledata(VoidTableDataContent::default()));
    let resource = Resource::default()
        .set_id("skysift")
        .set_name(image)
        .set_description("Catalog of sources extracted with skysift".into())
        .push_sub_elem(ResourceSubElem::from_table(table));
    let mut vot = VOTable::new(Version::V1_4, resource)
        .set_description(format!("produced by skysift {}", env!("CARGO_PKG_VERSION")).into());
    let err = |e: votable::error::VOTableError| Error::System(format!("VOTable: {e}"));
    let mut w = votable::votable::new_xml_writer(Vec::new(), Some(b' '), Some(1));
    vot.write_to_data_beginning(&mut w, &(), false)
        .map_err(err)?;
    let mut head = w.into_inner();
    head.push(b'\n');
    let mut w = votable::votable::new_xml_writer(Vec::new(), Some(b' '), Some(1));
    vot.write_from_data_end(&mut w, &(), false).map_err(err)?;
    let mut tail = w.into_inner();
    tail.push(b'\n');
    Ok((head, tail))
}
