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
    Apertures,
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
    ("APERTURES", CheckType::Apertures),
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

/// Writes a check image as a PNG picture (a path ending in .png).
fn write_picture(c: &CheckImage, r: &Extraction) -> Result<(), Error> {
    use skysift::picture;
    let sigma = r.background.global_rms();
    let p = match c.kind {
        CheckType::Background => picture::linear(&r.background.back_map()),
        CheckType::BackgroundRms => picture::linear(&r.background.rms_map()),
        CheckType::MiniBackground => picture::linear(&r.background.mesh_back()),
        CheckType::MiniBackRms => picture::linear(&r.background.mesh_rms()),
        CheckType::MinusBackground => picture::data_asinh(r.subtracted(), sigma),
        CheckType::Filtered => picture::data_asinh(&r.filtered(), sigma),
        CheckType::Segmentation => picture::segmentation(&r.segmentation),
        CheckType::Apertures => picture::sources(r.subtracted(), sigma, &r.catalog),
        CheckType::Objects | CheckType::MinusObjects => {
            let map = r.segmentation.to_map();
            let keep = c.kind == CheckType::Objects;
            let d = r
                .subtracted()
                .data()
                .iter()
                .zip(&map)
                .map(|(&v, &l)| if (l != 0) == keep { v } else { 0.0 })
                .collect();
            let img =
                Image::new(r.subtracted().width(), r.subtracted().height(), d).expect("same shape");
            picture::data_asinh(&img, sigma)
        }
    };
    io::png::write_png(&c.path, &p)
}

/// The pictures of `--png-dir`: data, background, rms, segmentation, sources.
pub fn png_dir(dir: &std::path::Path) -> Vec<CheckImage> {
    [
        ("data.png", "-BACKGROUND", CheckType::MinusBackground),
        ("background.png", "BACKGROUND", CheckType::Background),
        ("rms.png", "BACKGROUND_RMS", CheckType::BackgroundRms),
        ("segmentation.png", "SEGMENTATION", CheckType::Segmentation),
        ("sources.png", "APERTURES", CheckType::Apertures),
    ]
    .into_iter()
    .map(|(f, name, kind)| CheckImage {
        kind,
        name,
        path: dir.join(f),
    })
    .collect()
}

pub fn write(c: &CheckImage, r: &Extraction) -> Result<(), Error> {
    if c.path
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".png")
    {
        return write_picture(c, r);
    }
    let (w, h) = (r.subtracted().width(), r.subtracted().height());
    let f32img = |img: &Image| {
        io::fits::write_fits_f32(&c.path, img.width(), img.height(), img.data(), c.name)
    };
    match c.kind {
        CheckType::Background => f32img(&r.background.back_map()),
        CheckType::BackgroundRms => f32img(&r.background.rms_map()),
        CheckType::MiniBackground => f32img(&r.background.mesh_back()),
        CheckType::MiniBackRms => f32img(&r.background.mesh_rms()),
        CheckType::MinusBackground => f32img(r.subtracted()),
        CheckType::Filtered => f32img(&r.filtered()),
        CheckType::Segmentation => {
            let map = r.segmentation.to_map();
            let lower = c.path.to_string_lossy().to_ascii_lowercase();
            if lower.ends_with(".tif") || lower.ends_with(".tiff") {
                io::tiff::write_tiff_u32(&c.path, w, h, &map)
            } else {
                let map: Vec<i32> = map.into_iter().map(|v| v as i32).collect();
                io::fits::write_fits_i32(&c.path, w, h, &map, c.name)
            }
        }
        CheckType::Apertures => {
            // The background-subtracted image with each object's ellipse (3A x 3B at
            // THETA) drawn at the image's maximum value.
            let mut data = r.subtracted().data().to_vec();
            let top = data
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f32::MIN, f32::max);
            for o in &r.catalog.objects {
                for (x, y) in io::regions::ellipse_outline(o, w, h) {
                    data[y * w + x] = top;
                }
            }
            io::fits::write_fits_f32(&c.path, w, h, &data, c.name)
        }
        CheckType::Objects | CheckType::MinusObjects => {
            let map = r.segmentation.to_map();
            let keep_objects = c.kind == CheckType::Objects;
            let data: Vec<f32> = r
                .subtracted()
                .data()
                .iter()
                .zip(&map)
                .map(|(&v, &l)| if (l != 0) == keep_objects { v } else { 0.0 })
                .collect();
            io::fits::write_fits_f32(&c.path, w, h, &data, c.name)
        }
    }
}
