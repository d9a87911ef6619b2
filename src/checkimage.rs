//! SExtractor check images (CHECKIMAGE_TYPE), written as FITS.

use skysift::{io, Error, Extraction, Image};
use std::path::PathBuf;

/// Check-image types, with SExtractor's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckType {
    Background,
    BackgroundRms,
    MiniBackground,
    MiniBackRms,
    MinusBackground,
    Filtered,
    Segmentation,
    Objects,
    MinusObjects,
}

pub const TYPES: &[(&str, CheckType)] = &[
    ("BACKGROUND", CheckType::Background),
    ("BACKGROUND_RMS", CheckType::BackgroundRms),
    ("MINIBACKGROUND", CheckType::MiniBackground),
    ("MINIBACK_RMS", CheckType::MiniBackRms),
    ("-BACKGROUND", CheckType::MinusBackground),
    ("FILTERED", CheckType::Filtered),
    ("SEGMENTATION", CheckType::Segmentation),
    ("OBJECTS", CheckType::Objects),
    ("-OBJECTS", CheckType::MinusObjects),
];

#[derive(Clone, Debug)]
pub struct CheckImage {
    pub kind: CheckType,
    pub name: &'static str,
    pub path: PathBuf,
}

pub fn parse_all(specs: &[String]) -> Result<Vec<CheckImage>, Error> {
    specs
        .iter()
        .map(|s| {
            let bad = |reason: String| Error::InvalidParam {
                name: "--check-image",
                value: s.clone(),
                reason,
            };
            let (t, p) = s
                .split_once(':')
                .ok_or_else(|| bad("expected TYPE:PATH, e.g. SEGMENTATION:seg.fits".into()))?;
            let (name, kind) = TYPES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(t.trim()))
                .ok_or_else(|| {
                    bad(format!(
                        "unknown type '{t}'; known: {}",
                        TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ))
                })?;
            if p.is_empty() {
                return Err(bad("the path is empty".into()));
            }
            Ok(CheckImage {
                kind: *kind,
                name,
                path: PathBuf::from(p),
            })
        })
        .collect()
}

pub fn write(c: &CheckImage, r: &Extraction) -> Result<(), Error> {
    let (w, h) = (r.subtracted.width(), r.subtracted.height());
    let f32img = |img: &Image| {
        io::fits::write_fits_f32(&c.path, img.width(), img.height(), img.data(), c.name)
    };
    match c.kind {
        CheckType::Background => f32img(&r.background.back_map()),
        CheckType::BackgroundRms => f32img(&r.background.rms_map()),
        CheckType::MiniBackground => f32img(&r.background.mesh_back()),
        CheckType::MiniBackRms => f32img(&r.background.mesh_rms()),
        CheckType::MinusBackground => f32img(&r.subtracted),
        CheckType::Filtered => f32img(&r.filtered()),
        CheckType::Segmentation => {
            let map: Vec<i32> = r
                .segmentation
                .to_map()
                .into_iter()
                .map(|v| v as i32)
                .collect();
            io::fits::write_fits_i32(&c.path, w, h, &map, c.name)
        }
        CheckType::Objects | CheckType::MinusObjects => {
            let map = r.segmentation.to_map();
            let keep_objects = c.kind == CheckType::Objects;
            let data: Vec<f32> = r
                .subtracted
                .data()
                .iter()
                .zip(&map)
                .map(|(&v, &l)| if (l != 0) == keep_objects { v } else { 0.0 })
                .collect();
            io::fits::write_fits_f32(&c.path, w, h, &data, c.name)
        }
    }
}
