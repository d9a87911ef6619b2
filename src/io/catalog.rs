//! Catalog writers: CSV (header row of SExtractor names), SExtractor ASCII_HEAD and
//! FITS binary table. The format comes from the extension or is given explicitly.

use crate::catalog::{Catalog, Column, ColumnKind};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Catalog formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFormat {
    /// Comma-separated values with a header row of SExtractor names.
    Csv,
    /// SExtractor's ASCII_HEAD: `#   1 NAME  description [unit]` lines, then rows.
    AsciiHead,
    /// FITS binary table (SExtractor's FITS_1.0 layout).
    Fits,
}

impl CatalogFormat {
    /// The format implied by a file name: .csv, .fits/.fit/.fts, else ASCII_HEAD
    /// (.cat, .txt, .ascii, anything else).
    pub fn from_path(path: &Path) -> Self {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".csv") {
            CatalogFormat::Csv
        } else if name.ends_with(".fits") || name.ends_with(".fit") || name.ends_with(".fts") {
            CatalogFormat::Fits
        } else {
            CatalogFormat::AsciiHead
        }
    }
}

fn fmt_value(c: &Column, v: f64) -> String {
    match c.kind {
        ColumnKind::Int => format!("{}", v as i64),
        ColumnKind::Float => format!("{v}"),
    }
}

/// Writes `cat` with columns `cols` to `path` in `format`, atomically.
pub fn write_catalog(
    path: &Path,
    cat: &Catalog,
    cols: &[&Column],
    format: CatalogFormat,
) -> Result<()> {
    match format {
        CatalogFormat::Fits => super::fits_table::write(path, cat, cols),
        CatalogFormat::Csv | CatalogFormat::AsciiHead => super::write_atomic(path, |tmp| {
            let ioerr = |e: std::io::Error| Error::output(path, e.to_string());
            let f = std::fs::File::create(tmp).map_err(ioerr)?;
            let mut w = std::io::BufWriter::new(f);
            if format == CatalogFormat::Csv {
                let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
                writeln!(w, "{}", names.join(",")).map_err(ioerr)?;
            } else {
                for (i, c) in cols.iter().enumerate() {
                    let unit = if c.unit.is_empty() {
                        String::new()
                    } else {
                        format!("[{}]", c.unit)
                    };
                    writeln!(
                        w,
                        "# {:>3} {:<22} {:<58} {}",
                        i + 1,
                        c.name,
                        c.description,
                        unit
                    )
                    .map_err(ioerr)?;
                }
            }
            let sep = if format == CatalogFormat::Csv {
                ","
            } else {
                " "
            };
            let mut line = String::new();
            for o in &cat.objects {
                line.clear();
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        line.push_str(sep);
                    }
                    line.push_str(&fmt_value(c, c.value(o)));
                }
                writeln!(w, "{line}").map_err(ioerr)?;
            }
            w.flush().map_err(ioerr)?;
            Ok(())
        }),
    }
}
