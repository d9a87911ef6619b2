//! PNG output of [`crate::picture::Picture`]s, atomically.

use crate::error::{Error, Result};
use crate::picture::Picture;
use std::path::Path;

pub fn write_png(path: &Path, p: &Picture) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| Error::output(path, e.to_string()))?;
        let mut enc =
            png::Encoder::new(std::io::BufWriter::new(f), p.width as u32, p.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::output(path, e.to_string()))?;
        w.write_image_data(&p.rgb)
            .map_err(|e| Error::output(path, e.to_string()))?;
        w.finish().map_err(|e| Error::output(path, e.to_string()))?;
        Ok(())
    })
}
