//! SExtractor check images (CHECKIMAGE_TYPE), written as FITS.

use crate::{io, Error, Extraction, Image};
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
                name: "CHECKIMAGE_TYPE",
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
    use crate::picture;
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
            let mut d = Vec::new();
            objects_only(r.subtracted().data(), &map, c.kind, &mut d);
            let img =
                Image::new(r.subtracted().width(), r.subtracted().height(), d).expect("same shape");
            picture::data_asinh(&img, sigma)
        }
    };
    io::png::write_png(&c.path, &p)
}

/// OBJECTS (the subtracted image where there are objects, 0 elsewhere) or -OBJECTS
/// (the other way round) from the subtracted values and the segmentation, into `out`.
fn objects_only(sub: &[f32], seg: &[u32], kind: CheckType, out: &mut Vec<f32>) {
    let keep = kind == CheckType::Objects;
    out.clear();
    out.extend(
        sub.iter()
            .zip(seg)
            .map(|(&v, &l)| if (l != 0) == keep { v } else { 0.0 }),
    );
}

/// The largest finite value of `v`, or `start` if larger (APERTURES are drawn at the
/// subtracted image's maximum).
fn finite_max(v: &[f32], start: f32) -> f32 {
    v.iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(start, f32::max)
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

/// A check image's pixels: 32-bit floats, or integers (SEGMENTATION).
enum Pixels {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

/// The pixels of the FITS check image `c` of the extraction `r`.
fn render(c: &CheckImage, r: &Extraction) -> Pixels {
    let (w, h) = (r.subtracted().width(), r.subtracted().height());
    let f32img = |img: &Image| Pixels::F32(img.data().to_vec());
    match c.kind {
        CheckType::Background => f32img(&r.background.back_map()),
        CheckType::BackgroundRms => f32img(&r.background.rms_map()),
        CheckType::MiniBackground => f32img(&r.background.mesh_back()),
        CheckType::MiniBackRms => f32img(&r.background.mesh_rms()),
        CheckType::MinusBackground => f32img(r.subtracted()),
        CheckType::Filtered => f32img(&r.filtered()),
        CheckType::Segmentation => Pixels::I32(
            r.segmentation
                .to_map()
                .into_iter()
                .map(|v| v as i32)
                .collect(),
        ),
        CheckType::Apertures => {
            // The background-subtracted image with each object's ellipse (3A x 3B at
            // THETA) drawn at the image's maximum value.
            let mut data = r.subtracted().data().to_vec();
            let top = finite_max(&data, f32::MIN);
            for o in &r.catalog.objects {
                for (x, y) in io::regions::ellipse_outline(o, w, h) {
                    data[y * w + x] = top;
                }
            }
            Pixels::F32(data)
        }
        CheckType::Objects | CheckType::MinusObjects => {
            let map = r.segmentation.to_map();
            let mut data = Vec::new();
            objects_only(r.subtracted().data(), &map, c.kind, &mut data);
            Pixels::F32(data)
        }
    }
}

/// The width and height of the check image `c` of `r` (the mesh grid for MINI*).
fn shape(c: &CheckImage, r: &Extraction) -> (usize, usize) {
    match c.kind {
        CheckType::MiniBackground | CheckType::MiniBackRms => {
            let m = r.background.mesh_back();
            (m.width(), m.height())
        }
        _ => (r.subtracted().width(), r.subtracted().height()),
    }
}

pub fn write(c: &CheckImage, r: &Extraction) -> Result<(), Error> {
    let lower = c.path.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(".png") {
        return write_picture(c, r);
    }
    let (w, h) = shape(c, r);
    match render(c, r) {
        Pixels::F32(d) => io::fits::write_fits_f32(&c.path, w, h, &d, c.name),
        Pixels::I32(d) if lower.ends_with(".tif") || lower.ends_with(".tiff") => {
            let map: Vec<u32> = d.into_iter().map(|v| v as u32).collect();
            io::tiff::write_tiff_u32(&c.path, w, h, &map)
        }
        Pixels::I32(d) => io::fits::write_fits_i32(&c.path, w, h, &d, c.name),
    }
}

/// Appends the FITS check image `c` of the extraction `r` (one extension of a
/// multi-extension image) to its multi-extension file `mef`, named `extname`.
pub fn append(
    c: &CheckImage,
    r: &Extraction,
    mef: &mut io::fits::MefWriter,
    extname: &str,
) -> Result<(), Error> {
    let (w, h) = shape(c, r);
    match render(c, r) {
        Pixels::F32(d) => mef.append(w, h, io::fits::MefPixels::F32(&d), extname),
        Pixels::I32(d) => mef.append(w, h, io::fits::MefPixels::I32(&d), extname),
    }
}

impl CheckImage {
    /// Whether a streamed run can write it: FITS files (pictures and TIFF images are
    /// made from the whole image).
    pub fn streamable(&self) -> bool {
        let p = self.path.to_string_lossy().to_ascii_lowercase();
        !(p.ends_with(".png") || p.ends_with(".tif") || p.ends_with(".tiff"))
    }

    fn needs_segmentation(&self) -> bool {
        matches!(
            self.kind,
            CheckType::Segmentation | CheckType::Objects | CheckType::MinusObjects
        )
    }
}

/// The spills a streamed run fills for its check images: the objects' pixels (for
/// SEGMENTATION, OBJECTS, -OBJECTS) and the apertures' outlines (APERTURES).
pub struct StreamedChecks {
    pub segments: Option<crate::spill::SegmentSpill>,
    pub outlines: Option<crate::spill::SegmentSpill>,
    pub block_rows: usize,
}

impl StreamedChecks {
    /// Spills for `checks` of a `width` x `height` image, their files in `dir`.
    pub fn new(
        checks: &[CheckImage],
        (width, height): (usize, usize),
        block_rows: usize,
        dir: &std::path::Path,
    ) -> Result<Self, Error> {
        use crate::spill::SegmentSpill;
        let segments = checks
            .iter()
            .any(|c| c.needs_segmentation())
            .then(|| SegmentSpill::new(width, height, block_rows, Some(dir)))
            .transpose()?;
        let outlines = checks
            .iter()
            .any(|c| c.kind == CheckType::Apertures)
            .then(|| SegmentSpill::new(width, height, block_rows, Some(dir)))
            .transpose()?;
        Ok(StreamedChecks {
            segments,
            outlines,
            block_rows,
        })
    }
}

/// Records an object's aperture outline (3A x 3B at THETA) in `outlines`, when kept.
pub fn add_outline(
    outlines: &mut Option<crate::spill::SegmentSpill>,
    o: &crate::Object,
    width: usize,
    height: usize,
) -> Result<(), Error> {
    if let Some(s) = outlines.as_mut() {
        let px = io::regions::ellipse_outline(o, width, height);
        s.add_numbered(&crate::spill::runs_of_pixels(px), 1)?;
    }
    Ok(())
}

/// Writes the check images of a streamed run of the image file `path`, block of rows
/// by block of rows: the image (and the mask of `inputs`) are read again; values as
/// in a whole-image run.
pub fn write_streamed(
    checks: &[CheckImage],
    path: &str,
    inputs: &crate::FileInputs,
    background: &crate::Background,
    e: &crate::Extractor,
    spills: &mut StreamedChecks,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), Error> {
    use crate::stream::{check_pass, CheckWant, MaskRows, RowSource};
    let mut image = io::fits::FitsRows::open(path)?;
    let mut mask_rows = io::open_rows(&inputs.mask)?;
    let thresh = inputs.mask_thresh;
    let (w, h) = (image.width(), image.height());
    let mut want = CheckWant::default();
    for c in checks {
        match c.kind {
            CheckType::Background => want.background = true,
            CheckType::BackgroundRms => want.rms = true,
            CheckType::MinusBackground | CheckType::Apertures => want.subtracted = true,
            CheckType::Filtered => want.filtered = true,
            CheckType::Segmentation => want.segmentation = true,
            CheckType::Objects | CheckType::MinusObjects => {
                want.subtracted = true;
                want.segmentation = true;
            }
            CheckType::MiniBackground | CheckType::MiniBackRms => {}
        }
    }
    // Mesh-sized maps are small: written whole.
    for c in checks {
        let img = match c.kind {
            CheckType::MiniBackground => background.mesh_back(),
            CheckType::MiniBackRms => background.mesh_rms(),
            _ => continue,
        };
        io::fits::write_fits_f32(&c.path, img.width(), img.height(), img.data(), c.name)?;
    }
    // APERTURES are drawn at the subtracted image's maximum: one pass to find it.
    let mut top = f32::MIN;
    if checks.iter().any(|c| c.kind == CheckType::Apertures) {
        let only_sub = CheckWant {
            subtracted: true,
            ..Default::default()
        };
        check_pass(
            &mut image,
            mask_rows.as_mut().map(|rows| MaskRows { rows, thresh }),
            background,
            e,
            only_sub,
            None,
            spills.block_rows,
            &mut |b| {
                top = finite_max(b.subtracted, top);
                Ok(())
            },
        )?;
    }
    let mut writers = Vec::new();
    for c in checks {
        if matches!(c.kind, CheckType::MiniBackground | CheckType::MiniBackRms) {
            continue;
        }
        let integer = c.kind == CheckType::Segmentation;
        writers.push((
            c.kind,
            io::fits::FitsImageWriter::create(&c.path, w, h, integer, c.name)?,
        ));
    }
    let StreamedChecks {
        segments,
        outlines,
        block_rows,
    } = spills;
    let mut row_buf: Vec<f32> = Vec::new();
    let mut int_buf: Vec<i32> = Vec::new();
    let mut marks: Vec<u32> = Vec::new();
    check_pass(
        &mut image,
        mask_rows.as_mut().map(|rows| MaskRows { rows, thresh }),
        background,
        e,
        want,
        segments.as_mut(),
        *block_rows,
        &mut |b| {
            for (kind, wr) in writers.iter_mut() {
                match kind {
                    CheckType::Background => wr.write_rows_f32(b.background)?,
                    CheckType::BackgroundRms => wr.write_rows_f32(b.rms)?,
                    CheckType::MinusBackground => wr.write_rows_f32(b.subtracted)?,
                    CheckType::Filtered => wr.write_rows_f32(b.filtered)?,
                    CheckType::Segmentation => {
                        int_buf.clear();
                        int_buf.extend(b.segmentation.iter().map(|&v| v as i32));
                        wr.write_rows_i32(&int_buf)?;
                    }
                    CheckType::Objects | CheckType::MinusObjects => {
                        objects_only(b.subtracted, b.segmentation, *kind, &mut row_buf);
                        wr.write_rows_f32(&row_buf)?;
                    }
                    CheckType::Apertures => {
                        let s = outlines.as_mut().expect("outlines kept for APERTURES");
                        s.paint(b.y0 / s.block_rows(), &mut marks)?;
                        row_buf.clear();
                        row_buf.extend(b.subtracted.iter().zip(&marks).map(|(&v, &m)| {
                            if m != 0 {
                                top
                            } else {
                                v
                            }
                        }));
                        wr.write_rows_f32(&row_buf)?;
                    }
                    CheckType::MiniBackground | CheckType::MiniBackRms => {}
                }
            }
            progress(b.y0 + b.rows, h);
            Ok(())
        },
    )?;
    for (_, wr) in writers {
        wr.finish()?;
    }
    Ok(())
}
