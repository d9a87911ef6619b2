//! FITS images in and out, and FITS binary-table catalogs, through cfitsio (bundled).

use crate::error::{Error, Result};
use crate::image::Image;
use fitsio::hdu::HduInfo;
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
use std::path::{Path, PathBuf};

/// HDU selection parsed from `file.fits[N]` or `file.fits[NAME]`.
enum HduSel {
    First2d,
    Index(usize),
    Name(String),
}

fn parse_spec(spec: &str) -> (PathBuf, HduSel) {
    if spec.ends_with(']') && !Path::new(spec).exists() {
        if let Some(open) = spec.rfind('[') {
            let inner = &spec[open + 1..spec.len() - 1];
            let path = PathBuf::from(&spec[..open]);
            let sel = match inner.trim().parse::<usize>() {
                Ok(n) => HduSel::Index(n),
                Err(_) => HduSel::Name(inner.trim().to_string()),
            };
            return (path, sel);
        }
    }
    (PathBuf::from(spec), HduSel::First2d)
}

fn fits_err(path: &Path, e: fitsio::errors::Error) -> Error {
    let msg = e.to_string();
    let hint = if msg.contains("END_OF_FILE") || msg.contains("end of file") || msg.contains("107")
    {
        " (the file looks truncated)"
    } else {
        ""
    };
    Error::input(path, format!("cannot read FITS: {}{hint}", msg.trim()))
}

/// The 2-D shape (width, height) of an image HDU, if it is one: axes of length 1
/// beyond the second are accepted.
fn shape_2d(shape: &[usize]) -> Option<(usize, usize)> {
    let n = shape.len();
    if n < 2 || shape.contains(&0) {
        return None;
    }
    // fitsio lists axes slowest first: [.., NAXIS2, NAXIS1].
    if shape[..n - 2].iter().all(|&s| s == 1) {
        Some((shape[n - 1], shape[n - 2]))
    } else {
        None
    }
}

/// Reads a 2-D FITS image as f32 (BSCALE/BZERO applied; every BITPIX; gzip and
/// tile-compressed files). `spec` may select an HDU: `file.fits[1]` (0 = primary)
/// or `file.fits[SCI]`; the default is the first HDU holding a 2-D image.
pub fn read_fits_image(spec: &str) -> Result<Image> {
    let (path, sel) = parse_spec(spec);
    if !path.exists() {
        return Err(Error::input(&path, "no such file"));
    }
    if path.is_dir() {
        return Err(Error::input(&path, "is a directory, not a FITS image"));
    }
    let mut f = FitsFile::open(&path).map_err(|e| fits_err(&path, e))?;
    let hdu = match sel {
        HduSel::Index(i) => {
            let n = f.num_hdus().map_err(|e| fits_err(&path, e))?;
            if i >= n {
                return Err(Error::input(
                    &path,
                    format!("HDU [{i}] requested, but the file has {n} HDU(s) (numbered from 0)"),
                ));
            }
            f.hdu(i).map_err(|e| fits_err(&path, e))?
        }
        HduSel::Name(name) => f
            .hdu(name.as_str())
            .map_err(|_| Error::input(&path, format!("no HDU named '{name}'")))?,
        HduSel::First2d => {
            let n = f.num_hdus().map_err(|e| fits_err(&path, e))?;
            let mut found = None;
            let mut seen = Vec::new();
            for i in 0..n {
                let h = f.hdu(i).map_err(|e| fits_err(&path, e))?;
                if let HduInfo::ImageInfo { shape, .. } = &h.info {
                    if shape_2d(shape).is_some() {
                        found = Some(h);
                        break;
                    }
                    if !shape.is_empty() {
                        seen.push(format!("HDU {i} has shape {shape:?}"));
                    }
                }
            }
            match found {
                Some(h) => h,
                None if seen.is_empty() => {
                    return Err(Error::input(
                        &path,
                        "the file holds no image (no HDU with NAXIS >= 2)",
                    ))
                }
                None => {
                    return Err(Error::input(
                        &path,
                        format!(
                            "no 2-D image found ({}); skysift needs a 2-D image: \
                             select a plane or extension first",
                            seen.join("; ")
                        ),
                    ))
                }
            }
        }
    };
    let shape = match &hdu.info {
        HduInfo::ImageInfo { shape, .. } => shape.clone(),
        _ => {
            return Err(Error::input(
                &path,
                "the selected HDU is a table, not an image",
            ))
        }
    };
    let (w, h) = shape_2d(&shape).ok_or_else(|| {
        Error::input(
            &path,
            format!(
                "the selected HDU is not a 2-D image (NAXIS = {}, shape {:?}); \
                 a 3-D cube must be cut to one plane first",
                shape.len(),
                shape
            ),
        )
    })?;
    let data = read_scaled(&mut f, &hdu).map_err(|e| fits_err(&path, e))?;
    if data.len() != w * h {
        return Err(Error::input(
            &path,
            format!("read {} pixels but the header promises {w}x{h}", data.len()),
        ));
    }
    Image::new(w, h, data).map_err(|e| Error::input(&path, e.to_string()))
}

/// Reads an image HDU as f32. Integer images with BSCALE/BZERO are scaled in f32
/// arithmetic, `(raw as f32) * (BSCALE as f32) + (BZERO as f32)`, as SExtractor and
/// astropy do (cfitsio scales in double, which differs in the last bit for a quarter
/// of the pixels of emmi_galaxies.fits and moves whole background meshes by 5e-5).
fn read_scaled(f: &mut FitsFile, hdu: &fitsio::hdu::FitsHdu) -> fitsio::errors::Result<Vec<f32>> {
    let bitpix: i64 = hdu.read_key(f, "BITPIX").unwrap_or(-32);
    let bscale: f64 = hdu.read_key(f, "BSCALE").unwrap_or(1.0);
    let bzero: f64 = hdu.read_key(f, "BZERO").unwrap_or(0.0);
    if bitpix < 0 || (bscale == 1.0 && bzero == 0.0) || bscale == 0.0 {
        return hdu.read_image(f);
    }
    let scaled: Vec<f64> = hdu.read_image(f)?;
    let (bs, bz) = (bscale as f32, bzero as f32);
    Ok(scaled
        .into_iter()
        .map(|v| {
            if v.is_nan() {
                return f32::NAN;
            }
            let raw = ((v - bzero) / bscale).round();
            raw as f32 * bs + bz
        })
        .collect())
}

/// Writes an f32 image as a FITS primary HDU, atomically.
pub fn write_fits_f32(
    path: &Path,
    width: usize,
    height: usize,
    data: &[f32],
    kind: &str,
) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let err = |e: fitsio::errors::Error| Error::output(path, e.to_string());
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &[height, width],
        };
        let mut f = FitsFile::create(tmp)
            .with_custom_primary(&desc)
            .open()
            .map_err(err)?;
        let hdu = f.primary_hdu().map_err(err)?;
        hdu.write_image(&mut f, data).map_err(err)?;
        hdu.write_key(&mut f, "ORIGIN", "skysift").map_err(err)?;
        hdu.write_key(&mut f, "CHECKTYP", kind).map_err(err)?;
        Ok(())
    })
}

/// Writes a 32-bit integer image (segmentation maps) as a FITS primary HDU, atomically.
pub fn write_fits_i32(
    path: &Path,
    width: usize,
    height: usize,
    data: &[i32],
    kind: &str,
) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let err = |e: fitsio::errors::Error| Error::output(path, e.to_string());
        let desc = ImageDescription {
            data_type: ImageType::Long,
            dimensions: &[height, width],
        };
        let mut f = FitsFile::create(tmp)
            .with_custom_primary(&desc)
            .open()
            .map_err(err)?;
        let hdu = f.primary_hdu().map_err(err)?;
        hdu.write_image(&mut f, data).map_err(err)?;
        hdu.write_key(&mut f, "ORIGIN", "skysift").map_err(err)?;
        hdu.write_key(&mut f, "CHECKTYP", kind).map_err(err)?;
        Ok(())
    })
}
