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
    // cfitsio status 107 (END_OF_FILE) or 108 (READ_ERROR): fewer bytes than the header promises.
    let hint = if msg.contains("END_OF_FILE")
        || msg.contains("end of file")
        || msg.contains("status: 107")
        || msg.contains("status: 108")
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
    let (mut f, hdu, w, h, path) = open_image_hdu(spec)?;
    let data = read_scaled(&mut f, &hdu).map_err(|e| fits_err(&path, e))?;
    if data.len() != w * h {
        return Err(Error::input(
            &path,
            format!("read {} pixels but the header promises {w}x{h}", data.len()),
        ));
    }
    Image::new(w, h, data).map_err(|e| Error::input(&path, e.to_string()))
}

/// Opens the selected 2-D image HDU: (file, HDU, width, height, path).
fn open_image_hdu(spec: &str) -> Result<(FitsFile, fitsio::hdu::FitsHdu, usize, usize, PathBuf)> {
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
    Ok((f, hdu, w, h, path))
}

/// A FITS image read row by row (streaming): only the rows asked for are in memory.
pub struct FitsRows {
    /// fitsio's Send wrapper (a mutex around the handle), so that streaming can read
    /// strips on a second thread; only that thread uses it.
    file: fitsio::threadsafe_fitsfile::ThreadsafeFitsFile,
    hdu: fitsio::hdu::FitsHdu,
    width: usize,
    height: usize,
    path: PathBuf,
    /// (BSCALE, BZERO) of an integer image that needs SExtractor's f32 scaling.
    scaling: Option<(f64, f64)>,
}

impl FitsRows {
    /// Opens `spec` (same syntax as [`read_fits_image`]).
    pub fn open(spec: &str) -> Result<Self> {
        let (mut file, hdu, width, height, path) = open_image_hdu(spec)?;
        let scaling = integer_scaling(&mut file, &hdu);
        Ok(FitsRows {
            file: file.threadsafe(),
            hdu,
            width,
            height,
            path,
            scaling,
        })
    }
}

impl crate::stream::RowSource for FitsRows {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let path = self.path.clone();
        let err = |e| fits_err(&path, e);
        out.clear();
        let mut file = self.file.lock().map_err(err)?;
        match self.scaling {
            None => {
                let v: Vec<f32> = self.hdu.read_rows(&mut file, y0, n).map_err(err)?;
                out.extend(v);
            }
            Some((bscale, bzero)) => {
                let v: Vec<f64> = self.hdu.read_rows(&mut file, y0, n).map_err(err)?;
                out.extend(v.into_iter().map(|x| scale_f32(x, bscale, bzero)));
            }
        }
        if out.len() != n * self.width {
            return Err(Error::input(
                &self.path,
                format!("rows {y0}..{} could not be read", y0 + n),
            ));
        }
        Ok(())
    }
}

/// (BSCALE, BZERO) of an integer image whose scaling must be redone in f32.
fn integer_scaling(f: &mut FitsFile, hdu: &fitsio::hdu::FitsHdu) -> Option<(f64, f64)> {
    let bitpix: i64 = hdu.read_key(f, "BITPIX").unwrap_or(-32);
    let bscale: f64 = hdu.read_key(f, "BSCALE").unwrap_or(1.0);
    let bzero: f64 = hdu.read_key(f, "BZERO").unwrap_or(0.0);
    (bitpix > 0 && !(bscale == 1.0 && bzero == 0.0) && bscale != 0.0).then_some((bscale, bzero))
}

/// One integer pixel scaled as SExtractor does: the raw value recovered from cfitsio's
/// f64 scaling, then `raw·BSCALE + BZERO` in f32 arithmetic.
fn scale_f32(v: f64, bscale: f64, bzero: f64) -> f32 {
    if v.is_nan() {
        return f32::NAN;
    }
    let raw = ((v - bzero) / bscale).round();
    raw as f32 * bscale as f32 + bzero as f32
}

/// Reads an image HDU as f32. Integer images with BSCALE/BZERO are scaled in f32
/// arithmetic, `(raw as f32) * (BSCALE as f32) + (BZERO as f32)`, as SExtractor and
/// astropy do (cfitsio scales in double, which differs in the last bit for a quarter
/// of the pixels of emmi_galaxies.fits and moves whole background meshes by 5e-5).
fn read_scaled(f: &mut FitsFile, hdu: &fitsio::hdu::FitsHdu) -> fitsio::errors::Result<Vec<f32>> {
    let Some((bscale, bzero)) = integer_scaling(f, hdu) else {
        return hdu.read_image(f);
    };
    let scaled: Vec<f64> = hdu.read_image(f)?;
    Ok(scaled
        .into_iter()
        .map(|v| scale_f32(v, bscale, bzero))
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
    let mut w = FitsImageWriter::create(path, width, height, false, kind)?;
    w.write_rows_f32(data)?;
    w.finish()
}

/// Writes a 32-bit integer image (segmentation maps) as a FITS primary HDU, atomically.
pub fn write_fits_i32(
    path: &Path,
    width: usize,
    height: usize,
    data: &[i32],
    kind: &str,
) -> Result<()> {
    let mut w = FitsImageWriter::create(path, width, height, true, kind)?;
    w.write_rows_i32(data)?;
    w.finish()
}

/// Closing a FITS file reports no error (cfitsio's status is dropped), so a written
/// file is checked by its size: whole 2,880-byte records, a header and the data.
fn check_complete(path: &Path, written: &Path, data_bytes: u64) -> Result<()> {
    let len = std::fs::metadata(written)
        .map_err(|e| Error::output(path, e.to_string()))?
        .len();
    let want = 2880 + data_bytes.div_ceil(2880) * 2880;
    if len % 2880 != 0 || len < want {
        return Err(Error::output(
            path,
            format!(
                "the file came out with {len} bytes, not a complete FITS image \
                 (at least {want}): is the disk full?"
            ),
        ));
    }
    Ok(())
}

/// A FITS image (primary HDU) written block of rows by block of rows, for the check
/// images of streamed runs: under a temporary name next to `path`, renamed over it by
/// `finish` once every row is in; dropped unfinished, it leaves no file.
pub struct FitsImageWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<FitsFile>,
    hdu: fitsio::hdu::FitsHdu,
    width: usize,
    height: usize,
    rows_done: usize,
}

impl FitsImageWriter {
    /// A `width` x `height` image of 32-bit floats (`integer` false) or integers.
    pub fn create(
        path: &Path,
        width: usize,
        height: usize,
        integer: bool,
        kind: &str,
    ) -> Result<FitsImageWriter> {
        super::check_writable(path)?;
        let tmp = super::temp_path(path);
        let _ = std::fs::remove_file(&tmp);
        let err = |e: fitsio::errors::Error| Error::output(path, e.to_string());
        let desc = ImageDescription {
            data_type: if integer {
                ImageType::Long
            } else {
                ImageType::Float
            },
            dimensions: &[height, width],
        };
        let made = (|| {
            let mut f = FitsFile::create(&tmp)
                .with_custom_primary(&desc)
                .open()
                .map_err(err)?;
            let hdu = f.primary_hdu().map_err(err)?;
            hdu.write_key(&mut f, "ORIGIN", "skysift").map_err(err)?;
            hdu.write_key(&mut f, "CHECKTYP", kind).map_err(err)?;
            Ok((f, hdu))
        })();
        match made {
            Ok((f, hdu)) => Ok(FitsImageWriter {
                path: path.to_path_buf(),
                tmp,
                file: Some(f),
                hdu,
                width,
                height,
                rows_done: 0,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn write<T: fitsio::images::WriteImage>(&mut self, data: &[T]) -> Result<()> {
        let rows = data.len() / self.width.max(1);
        if data.len() != rows * self.width || self.rows_done + rows > self.height {
            return Err(Error::output(
                &self.path,
                format!(
                    "{} values do not make whole rows of {} pixels within the image's {} rows",
                    data.len(),
                    self.width,
                    self.height
                ),
            ));
        }
        let f = self.file.as_mut().expect("open until finished");
        let start = self.rows_done * self.width;
        self.hdu
            .write_section(f, start, start + data.len(), data)
            .map_err(|e| Error::output(&self.path, e.to_string()))?;
        self.rows_done += rows;
        Ok(())
    }

    /// Appends whole rows of floats (the next rows of the image).
    pub fn write_rows_f32(&mut self, data: &[f32]) -> Result<()> {
        self.write(data)
    }

    /// Appends whole rows of integers (the next rows of the image).
    pub fn write_rows_i32(&mut self, data: &[i32]) -> Result<()> {
        self.write(data)
    }

    /// Closes the file and puts it in place; every row must have been written.
    pub fn finish(mut self) -> Result<()> {
        if self.rows_done != self.height {
            return Err(Error::output(
                &self.path,
                format!("{} of {} rows were written", self.rows_done, self.height),
            ));
        }
        drop(self.file.take()); // closes (flushes) the FITS file
        check_complete(&self.path, &self.tmp, 4 * (self.width * self.height) as u64).inspect_err(
            |_| {
                let _ = std::fs::remove_file(&self.tmp);
            },
        )?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            Error::output(&self.path, e.to_string())
        })
    }
}

impl Drop for FitsImageWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
