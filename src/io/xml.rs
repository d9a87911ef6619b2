//! WRITE_XML / XML_NAME: the run's metadata as a VOTable document laid out as
//! SExtractor's (written through the `votable` crate): a RESOURCE with the catalog's
//! field definitions, then MetaData (software, date, duration, threads, path), its
//! Extension_Data table (one row per image or extension: detections, background,
//! threshold, pixel scale, gain, saturation), its Warnings table, and a Config
//! resource with the command line and the settings.

use crate::catalog::Column;
use crate::error::{Error, Result};
use votable::{
    data::Data,
    datatype::Datatype,
    field::{ArraySize, Field},
    impls::mem::InMemTableDataStringRows,
    param::Param,
    resource::{Resource, ResourceElem, ResourceSubElem},
    table::Table,
    votable::{VOTable, Version},
};

/// What one image (or extension) of the run gave.
#[derive(Clone, Debug, Default)]
pub struct Extension {
    /// 1-based extension number within its file.
    pub number: usize,
    pub image: String,
    /// UTC date (YYYY-MM-DD) and time (hh:mm:ss) it ended, and its seconds.
    pub date: String,
    pub time: String,
    pub duration: f64,
    pub detections: usize,
    pub objects: usize,
    pub background: f64,
    pub rms: f64,
    pub threshold: f64,
    pub pixel_scale: f64,
    pub gain: f64,
    pub satur_level: f64,
    pub external_header: bool,
}

/// The whole run.
#[derive(Clone, Debug, Default)]
pub struct RunLog {
    pub image_name: String,
    pub command_line: String,
    pub prefs_name: String,
    pub threads: usize,
    pub duration: f64,
    pub date: String,
    pub time: String,
    pub path: String,
    pub extensions: Vec<Extension>,
    /// (date, time, message) of each warning said.
    pub warnings: Vec<(String, String, String)>,
    /// The configuration's settings: (name, value).
    pub config: Vec<(String, String)>,
}

/// The UTC date and time now, as (YYYY-MM-DD, hh:mm:ss).
pub fn now_utc() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Days to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

fn text_param(name: &str, ucd: &str, value: &str) -> Param {
    Param::new(name, Datatype::CharASCII, value)
        .set_arraysize(ArraySize::new_variable_1d())
        .set_ucd(ucd)
}

fn field(name: &str, datatype: Datatype, ucd: &str, unit: &str) -> Field {
    let mut f = Field::new(name, datatype).set_ucd(ucd);
    if datatype == Datatype::CharASCII {
        f = f.set_arraysize(ArraySize::new_variable_1d());
    }
    if !unit.is_empty() {
        f = f.set_unit(unit);
    }
    f
}

/// The document of `log`, with the catalog's columns `cols`.
pub fn document(log: &RunLog, cols: &[&Column]) -> Result<Vec<u8>> {
    let mut sources: Table<InMemTableDataStringRows> = Table::new()
        .set_id("Source_List")
        .set_name(format!("{}/out", log.image_name))
        .set_description("Table of sources detected in image".into());
    for f in super::votable::fields(cols) {
        sources = sources.push_field(f);
    }
    let mut ext = Table::new()
        .set_id("Extension_Data")
        .set_name("Extension_Data")
        .set_description("Data gathered by skysift for every image or FITS extension".into())
        .push_param(Param::new(
            "NExtensions",
            Datatype::Int,
            log.extensions.len().to_string(),
        ));
    for (name, dt, ucd, unit) in [
        ("Extension", Datatype::Int, "meta.record", ""),
        ("Image_Name", Datatype::CharASCII, "obs.image;meta.fits", ""),
        ("External_Header", Datatype::Logical, "meta.code", ""),
        (
            "Date",
            Datatype::CharASCII,
            "meta.record;time.event.end",
            "",
        ),
        (
            "Time",
            Datatype::CharASCII,
            "meta.record;time.event.end",
            "",
        ),
        (
            "Duration",
            Datatype::Float,
            "meta.record;time.event.end",
            "s",
        ),
        ("NDetect", Datatype::Int, "meta.number;src.sample", ""),
        ("NSextracted", Datatype::Int, "meta.number;src.sample", ""),
        (
            "Background_Mean",
            Datatype::Float,
            "instr.skyLevel;obs.image;stat.median",
            "ct",
        ),
        (
            "Background_StDev",
            Datatype::Float,
            "stat.stdev;obs.image;stat.median",
            "ct",
        ),
        (
            "Threshold",
            Datatype::Float,
            "instr.sensitivity;obs.image;stat.median",
            "ct",
        ),
        (
            "Pixel_Scale",
            Datatype::Float,
            "instr.scale;obs.image;stat.mean",
            "arcsec",
        ),
        ("Gain", Datatype::Float, "instr.param;obs.param", ""),
        (
            "Satur_Level",
            Datatype::Float,
            "instr.saturation;phot.count",
            "ct",
        ),
    ] {
        ext = ext.push_field(field(name, dt, ucd, unit));
    }
    let rows: Vec<Vec<String>> = log
        .extensions
        .iter()
        .map(|e| {
            vec![
                e.number.to_string(),
                e.image.clone(),
                if e.external_header { "T" } else { "F" }.into(),
                e.date.clone(),
                e.time.clone(),
                format!("{:.3}", e.duration),
                e.detections.to_string(),
                e.objects.to_string(),
                format!("{}", e.background as f32),
                format!("{}", e.rms as f32),
                format!("{}", e.threshold as f32),
                format!("{}", e.pixel_scale as f32),
                format!("{}", e.gain as f32),
                format!("{}", e.satur_level as f32),
            ]
        })
        .collect();
    let ext = ext.set_data(Data::new_empty().set_tabledata(InMemTableDataStringRows::new(rows)));
    let mut warn = Table::new()
        .set_id("Warnings")
        .set_name("Warnings")
        .set_description("skysift's warnings".into());
    for name in ["Date", "Time", "Msg"] {
        warn = warn.push_field(field(name, Datatype::CharASCII, "meta", ""));
    }
    let rows = log
        .warnings
        .iter()
        .map(|(d, t, m)| vec![d.clone(), t.clone(), m.clone()])
        .collect();
    let warn = warn.set_data(Data::new_empty().set_tabledata(InMemTableDataStringRows::new(rows)));
    let mut config = Resource::default()
        .set_id("Config")
        .set_name("Config")
        .set_description("skysift's configuration".into())
        .push_elem(ResourceElem::Param(Box::new(text_param(
            "Command_Line",
            "obs.param",
            &log.command_line,
        ))))
        .push_elem(ResourceElem::Param(Box::new(text_param(
            "Prefs_Name",
            "obs.param;meta.file",
            &log.prefs_name,
        ))));
    for (k, v) in &log.config {
        config = config.push_elem(ResourceElem::Param(Box::new(text_param(k, "obs.param", v))));
    }
    let mut meta = Resource::default()
        .set_id("MetaData")
        .set_name("MetaData")
        .set_description("skysift meta-data".into());
    for (k, ucd, v) in [
        (
            "Software",
            "meta.title;meta.software",
            "skysift".to_string(),
        ),
        (
            "Version",
            "meta.version;meta.software",
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("Date", "time.event.end;meta.software", log.date.clone()),
        ("Time", "time.event.end;meta.software", log.time.clone()),
        ("Path", "meta.dataset", log.path.clone()),
        ("Image_Name", "obs.image;meta.fits", log.image_name.clone()),
    ] {
        meta = meta.push_elem(ResourceElem::Param(Box::new(text_param(k, ucd, &v))));
    }
    meta = meta
        .push_elem(ResourceElem::Param(Box::new(
            Param::new("NThreads", Datatype::Int, log.threads.to_string())
                .set_ucd("meta.number;meta.software"),
        )))
        .push_elem(ResourceElem::Param(Box::new(
            Param::new("Duration", Datatype::Float, format!("{:.3}", log.duration))
                .set_ucd("time.event;meta.software")
                .set_unit("s"),
        )))
        .push_sub_elem(ResourceSubElem::from_table(ext))
        .push_sub_elem(ResourceSubElem::from_table(warn))
        .push_sub_elem(ResourceSubElem::from_resource(config));
    let resource = Resource::default()
        .set_id("skysift")
        .set_name(&log.image_name)
        .set_description("Catalog of sources extracted with skysift".into())
        .push_sub_elem(ResourceSubElem::from_table(sources))
        .push_sub_elem(ResourceSubElem::from_resource(meta));
    let mut vot = VOTable::new(Version::V1_4, resource)
        .set_description(format!("produced by skysift {}", env!("CARGO_PKG_VERSION")).into())
        .wrap();
    vot.to_ivoa_xml_bytes()
        .map_err(|e| Error::System(format!("VOTable: {e}")))
}

/// Writes the document of `log` to `path` (through a temporary, put in place whole).
pub fn write(path: &std::path::Path, log: &RunLog, cols: &[&Column]) -> Result<()> {
    let bytes = document(log, cols)?;
    let tmp = super::output::TempFile::new(path)?;
    std::fs::write(tmp.path(), bytes).map_err(|e| Error::output(path, e.to_string()))?;
    tmp.finish()
}
