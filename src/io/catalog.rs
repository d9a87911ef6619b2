//! Catalog writers: CSV (header row of SExtractor names), SExtractor ASCII_HEAD and
//! FITS binary table. The format comes from the extension or is given explicitly.

use crate::catalog::{Catalog, Column, ColumnKind};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Catalog formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFormat {
    /// Comma-separated values with a header row of SExtractor names.
    Csv,
    /// SExtractor's ASCII_HEAD: `#   1 NAME  description [unit]` lines, then rows
    /// printed with SExtractor's formats.
    AsciiHead,
    /// SExtractor's ASCII: the rows of ASCII_HEAD without its header.
    Ascii,
    /// FITS binary table (SExtractor's FITS_1.0 layout).
    Fits,
    /// SExtractor's FITS_LDAC (what PSFEx and SCAMP read): an LDAC_IMHEAD table with
    /// the image's header, then the LDAC_OBJECTS table.
    FitsLdac,
}

impl CatalogFormat {
    /// The format implied by a file name: .csv, .ldac, .fits/.fit/.fts, else ASCII_HEAD
    /// (.cat, .txt, .ascii, anything else).
    pub fn from_path(path: &Path) -> Self {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".csv") {
            CatalogFormat::Csv
        } else if name.ends_with(".ldac") {
            CatalogFormat::FitsLdac
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
        ColumnKind::Float32 => format!("{}", v as f32),
    }
}

/// Writes `cat` with columns `cols` to `path` in `format`, atomically.
pub fn write_catalog(
    path: &Path,
    cat: &Catalog,
    cols: &[&Column],
    format: CatalogFormat,
) -> Result<()> {
    write_catalog_with_header(path, cat, cols, format, &[], &[])
}

/// [`write_catalog`] with the image's header cards for a FITS_LDAC catalog's
/// LDAC_IMHEAD.
pub fn write_catalog_with_header(
    path: &Path,
    cat: &Catalog,
    cols: &[&Column],
    format: CatalogFormat,
    image_header: &[String],
    cards: &[(&str, f64, &str)],
) -> Result<()> {
    let mut w = CatalogWriter::create_with_header(path, cols, format, image_header)?;
    for &(key, value, comment) in cards {
        w.set_card(key, value, comment);
    }
    for o in &cat.objects {
        w.write(o)?;
    }
    w.finish()
}

/// A catalog written row by row as objects come (streamed runs write each object as
/// soon as it is final), into a temporary file renamed over `path` by
/// [`CatalogWriter::finish`] (or with the other outputs of an open
/// [`super::output::OutputBatch`]); dropped unfinished (an error), it removes the temporary
/// file, so no half-written catalog is left. FITS tables get their row count patched
/// into the header at the end.
pub struct CatalogWriter<'a> {
    path: PathBuf,
    tmp: Option<super::output::TempFile>,
    w: Option<std::io::BufWriter<std::fs::File>>,
    cols: &'a [&'a Column],
    format: CatalogFormat,
    rows: usize,
    line: String,
    row: Vec<u8>,
    /// Bytes of the LDAC_IMHEAD extension before the objects' table.
    imhead: usize,
    /// Where each LDAC_IMHEAD card sits in the file (by keyword), for
    /// [`CatalogWriter::set_card`].
    cards: Vec<(String, u64)>,
    /// Cards to write there at the end.
    patches: Vec<(u64, String)>,
}

impl<'a> CatalogWriter<'a> {
    /// Creates the temporary file and writes the header.
    pub fn create(path: &Path, cols: &'a [&'a Column], format: CatalogFormat) -> Result<Self> {
        Self::create_with_header(path, cols, format, &[])
    }

    /// [`CatalogWriter::create`] with the image's header cards (FITS_LDAC's
    /// LDAC_IMHEAD; other formats ignore them).
    pub fn create_with_header(
        path: &Path,
        cols: &'a [&'a Column],
        format: CatalogFormat,
        image_header: &[String],
    ) -> Result<Self> {
        let tmp = super::output::TempFile::new(path)?;
        let f =
            std::fs::File::create(tmp.path()).map_err(|e| Error::output(path, e.to_string()))?;
        let mut cw = CatalogWriter {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            w: Some(std::io::BufWriter::with_capacity(1 << 20, f)),
            cols,
            format,
            rows: 0,
            line: String::new(),
            row: Vec::new(),
            imhead: 0,
            cards: Vec::new(),
            patches: Vec::new(),
        };
        let mut head: Vec<u8> = Vec::new();
        match format {
            CatalogFormat::Fits => head = super::fits_table::headers(cols, 0, &[]),
            CatalogFormat::FitsLdac => {
                let (imhead, start) = super::fits_table::ldac_imhead(image_header);
                cw.imhead = imhead.len();
                cw.cards = image_header
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let key = c.get(..8).unwrap_or(c).trim().to_string();
                        (key, (2880 + start + 80 * i) as u64)
                    })
                    .collect();
                head = super::fits_table::headers(cols, 0, &imhead);
            }
            CatalogFormat::Csv => {
                let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
                head.extend(format!("{}\n", names.join(",")).into_bytes());
            }
            CatalogFormat::Ascii => {}
            CatalogFormat::AsciiHead => {
                // SExtractor's numbering: a vector is named once, at its first column.
                for (i, c) in cols.iter().enumerate() {
                    let Some((name, _)) = c.field() else {
                        continue;
                    };
                    let unit = if c.unit.is_empty() {
                        String::new()
                    } else {
                        format!("[{}]", c.unit)
                    };
                    head.extend(
                        format!(
                            "# {:>3} {:<22} {:<58} {}\n",
                            i + 1,
                            name,
                            c.description,
                            unit
                        )
                        .into_bytes(),
                    );
                }
            }
        }
        cw.put(&head)?;
        Ok(cw)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.w.as_mut().expect("writer open until finish");
        w.write_all(bytes)
            .map_err(|e| Error::output(&self.path, e.to_string()))
    }

    /// Appends one object's row.
    pub fn write(&mut self, o: &crate::measure::Object) -> Result<()> {
        match self.format {
            CatalogFormat::Fits | CatalogFormat::FitsLdac => {
                let mut row = std::mem::take(&mut self.row);
                let ldac = self.format == CatalogFormat::FitsLdac;
                super::fits_table::encode_row(o, self.cols, ldac, &mut row);
                let r = self.put(&row);
                self.row = row;
                r?;
            }
            CatalogFormat::Csv | CatalogFormat::AsciiHead | CatalogFormat::Ascii => {
                let csv = self.format == CatalogFormat::Csv;
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                for (i, c) in self.cols.iter().enumerate() {
                    if i > 0 {
                        line.push_str(if csv { "," } else { " " });
                    }
                    // ASCII catalogs as SExtractor prints them; CSV at full precision.
                    match crate::catalog::display_format(c).filter(|_| !csv) {
                        Some(f) => line.push_str(&crate::catalog::display(f, c.value(o))),
                        None => line.push_str(&fmt_value(c, c.value(o))),
                    }
                }
                line.push('\n');
                let r = self.put(line.as_bytes());
                self.line = line;
                r?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Rewrites the LDAC_IMHEAD card of `key` (one of the image header's cards, a
    /// placeholder until the run's values are known) with `value` at the end; other
    /// formats ignore it.
    pub fn set_card(&mut self, key: &str, value: f64, comment: &str) {
        if let Some(&(_, at)) = self.cards.iter().find(|c| c.0 == key) {
            let card = super::fits_table::value_card(key, value, comment);
            self.patches.push((at, card));
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Completes the file (FITS: padding and the row count) and renames it over `path`.
    pub fn finish(mut self) -> Result<()> {
        let fits = matches!(self.format, CatalogFormat::Fits | CatalogFormat::FitsLdac);
        if fits {
            let ldac = self.format == CatalogFormat::FitsLdac;
            let pad = super::fits_table::data_padding(self.cols, self.rows, ldac);
            self.put(&pad)?;
        }
        let path = self.path.clone();
        let ioerr = |e: std::io::Error| Error::output(&path, e.to_string());
        let w = self.w.take().expect("writer open until finish");
        let mut f = w.into_inner().map_err(|e| ioerr(e.into_error()))?;
        if fits {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(super::fits_table::naxis2_offset(
                self.imhead,
            )))
            .map_err(ioerr)?;
            f.write_all(super::fits_table::naxis2_card(self.rows).as_bytes())
                .map_err(ioerr)?;
            for (at, card) in &self.patches {
                f.seek(SeekFrom::Start(*at)).map_err(ioerr)?;
                f.write_all(card.as_bytes()).map_err(ioerr)?;
            }
        }
        f.flush().map_err(ioerr)?;
        drop(f);
        // Dropped unfinished (an error), the temporary file is removed: no partial file.
        self.tmp.take().expect("finished once").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cat.fits");
        let cols = crate::catalog::select_columns(&[]).unwrap();
        let mut w = CatalogWriter::create(&path, &cols, CatalogFormat::Fits).unwrap();
        w.write(&crate::measure::Object::default()).unwrap();
        assert_eq!(w.rows(), 1);
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
