//! Single-channel TIFF images (as the Galaxy source-extractor tool accepts).

use crate::error::{Error, Result};
use crate::image::Image;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::ColorType;

/// Reads a single-channel (grey) TIFF of any integer or float sample type as f32.
pub fn read_tiff(path: &Path) -> Result<Image> {
    let file = std::fs::File::open(path).map_err(|e| Error::input(path, e.to_string()))?;
    let err = |e: tiff::TiffError| Error::input(path, format!("cannot read TIFF: {e}"));
    let mut dec = Decoder::new(std::io::BufReader::new(file)).map_err(err)?;
    let ct = dec.colortype().map_err(err)?;
    if !matches!(ct, ColorType::Gray(_)) {
        return Err(Error::input(
            path,
            format!("TIFF colour type {ct:?}: skysift needs a single-channel (grey) image"),
        ));
    }
    let (w, h) = dec.dimensions().map_err(err)?;
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
