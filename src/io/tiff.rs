//! Single-channel TIFF images (as the Galaxy source-extractor tool accepts).

use crate::error::{Error, Result};
use crate::image::Image;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::ColorType;

/// Opens a TIFF decoder without the tiff crate's size limits (skysift has no image
/// size ceiling; [`read_tiff`] checks memory itself).
fn decoder(path: &Path) -> Result<Decoder<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::input(path, e.to_string()))?;
    Ok(Decoder::new(std::io::BufReader::new(file))
        .map_err(|e| tiff_error(path, e))?
        .with_limits(tiff::decoder::Limits::unlimited()))
}

fn tiff_error(path: &Path, e: tiff::TiffError) -> Error {
    let why = match &e {
        tiff::TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends before its image data does (truncated, or a header that lies)"
                .to_string()
        }
        _ => e.to_string(),
    };
    Error::input(path, format!("cannot read TIFF: {why}"))
}

/// How many images (pages) a TIFF holds; skysift reads the first.
pub fn page_count(path: &Path) -> Result<usize> {
    let mut dec = decoder(path)?;
    let mut n = 1;
    while dec.more_images() {
        dec.next_image().map_err(|e| tiff_error(path, e))?;
        n += 1;
    }
    Ok(n)
}

/// Reads a single-channel (grey) TIFF of 8- to 64-bit integer or float samples as f32
/// (the first page of a multi-page file; see [`page_count`]).
pub fn read_tiff(path: &Path) -> Result<Image> {
    let mut dec = decoder(path)?;
    let err = |e: tiff::TiffError| tiff_error(path, e);
    let ct = dec.colortype().map_err(err)?;
    let bits = match ct {
        ColorType::Gray(b) => b,
        _ => {
            return Err(Error::input(
                path,
                format!("TIFF colour type {ct:?}: skysift needs a single-channel (grey) image"),
            ))
        }
    };
    if bits < 8 || bits % 8 != 0 {
        return Err(Error::input(
            path,
            format!(
                "a {bits}-bit grey TIFF: skysift reads 8-, 16-, 32- and 64-bit samples; \
                 convert it first (e.g. tiffcp or ImageMagick's `convert in.tif -depth 8 out.tif`) or use FITS"
            ),
        ));
    }
    let (w, h) = dec.dimensions().map_err(err)?;
    // The decoded samples and the f32 image are held together for a moment.
    let bytes = w as f64 * h as f64 * (4.0 + bits as f64 / 8.0);
    super::check_memory(
        path,
        w as usize,
        h as usize,
        bytes,
        "convert it to FITS, which skysift streams in bounded memory (--memory-limit MIB)",
    )?;
    let data: Vec<f32> = match dec.read_image().map_err(err)? {
        DecodingResult::U8(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U16(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I8(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I16(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        #[allow(unreachable_patterns)]
        _ => return Err(Error::input(path, "unsupported TIFF sample format")),
    };
    Image::new(w as usize, h as usize, data).map_err(|e| Error::input(path, e.to_string()))
}

/// Writes a grey f32 TIFF (used by tests and by callers that want TIFF output).
pub fn write_tiff_f32(path: &Path, img: &Image) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let err = |e: tiff::TiffError| Error::output(path, e.to_string());
        let f = std::fs::File::create(tmp).map_err(|e| Error::output(path, e.to_string()))?;
        let mut enc = tiff::encoder::TiffEncoder::new(std::io::BufWriter::new(f)).map_err(err)?;
        enc.write_image::<tiff::encoder::colortype::Gray32Float>(
            img.width() as u32,
            img.height() as u32,
            img.data(),
        )
        .map_err(err)?;
        Ok(())
    })
}

/// Writes a grey 32-bit unsigned TIFF (segmentation maps, as the Galaxy tool writes them).
pub fn write_tiff_u32(path: &Path, width: usize, height: usize, data: &[u32]) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let err = |e: tiff::TiffError| Error::output(path, e.to_string());
        let f = std::fs::File::create(tmp).map_err(|e| Error::output(path, e.to_string()))?;
        let mut enc = tiff::encoder::TiffEncoder::new(std::io::BufWriter::new(f)).map_err(err)?;
        enc.write_image::<tiff::encoder::colortype::Gray32>(width as u32, height as u32, data)
            .map_err(err)?;
        Ok(())
    })
}
