//! Catalog writers: CSV (header row of SExtractor names), SExtractor's ASCII_HEAD,
//! ASCII, ASCII_SKYCAT and ASCII_VOTABLE, FITS binary table (FITS_1.0) and FITS_LDAC.
//! The format comes from the extension or is given explicitly.

use crate::catalog::{Catalog, Column, ColumnKind};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Catalog formats (SExtractor's CATALOG_TYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFormat {
    /// Comma-separated values with a header row of SExtractor names.
    Csv,
    /// SExtractor's ASCII_HEAD: `#   1 NAME  description [unit]` lines, then rows
    /// printed with SExtractor's formats.
    AsciiHead,
    /// SExtractor's ASCII: the rows of ASCII_HEAD without its header.
    Ascii,
    /// SExtractor's ASCII_SKYCAT: the SkyCat viewer's tab-separated catalog, whose
    /// first four fields SkyCat reads as id, ra, dec and mag (SExtractor labels them
    /// so, whatever they hold).
    AsciiSkycat,
    /// SExtractor's ASCII_VOTABLE: an IVOA VOTable (TABLEDATA) with each column's UCD.
    Votable,
    /// FITS binary table (SExtractor's FITS_1.0 layout).
    Fits,
    /// SExtractor's FITS_LDAC (what PSFEx and SCAMP read): an LDAC_IMHEAD table with
    /// the image's header, then the LDAC_OBJECTS table; one pair per extension of a
    /// multi-extension image.
    FitsLdac,
    /// SExtractor's NONE: no catalog (a run for its check images).
    None,
}

impl CatalogFormat {
    /// The format implied by a file name: .csv, .ldac, .fits/.fit/.fts, .xml/.vot,
    /// else ASCII_HEAD (.cat, .txt, .ascii, anything else).
    pub fn from_path(path: &Path) -> Self {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".csv") {
            CatalogFormat::Csv
        } else if name.ends_with(".ldac") {
            CatalogFormat::FitsLdac
        } else if name.ends_with(".fits") || name.ends_with(".fit") || name.ends_with(".fts") {
            CatalogFormat::Fits
        } else if name.ends_with(".xml") || name.ends_with(".vot") || name.ends_with(".votable") {
            CatalogFormat::Votable
        } else {
            CatalogFormat::AsciiHead
        }
    }

    /// The extension a catalog in this format is given when skysift names it.
    pub fn extension(self) -> &'static str {
        match self {
            CatalogFormat::Csv => "csv",
            CatalogFormat::AsciiHead | CatalogFormat::Ascii | CatalogFormat::None => "cat",
            CatalogFormat::AsciiSkycat => "skycat",
            CatalogFormat::Votable => "xml",
            CatalogFormat::FitsLdac => "ldac",
            CatalogFormat::Fits => "fits",
        }
    }

    fn is_fits(self) -> bool {
        matches!(self, CatalogFormat::Fits | CatalogFormat::FitsLdac)
    }

    /// Checks that `cols` can be written in this format, before any work: SkyCat
    /// needs four fields (id, ra, dec, mag), as SExtractor requires.
    pub fn check_columns(self, cols: &[&Column]) -> Result<()> {
        let fields = cols.iter().filter(|c| c.field().is_some()).count();
        if self == CatalogFormat::AsciiSkycat && fields < 4 {
            return Err(Error::param(
                "CATALOG_TYPE",
                "ASCII_SKYCAT",
                format!(
                    "a SkyCat catalog needs at least 4 parameters, read as id, ra, dec and mag \
                     (SExtractor's rule); the parameter list has {fields}"
                ),
            ));
        }
        Ok(())
    }
}

/// Whether a catalog name means standard output (SExtractor's `STDOUT`, or `-`).
pub fn is_stdout(path: &Path) -> bool {
    let s = path.as_os_str();
    s == "STDOUT" || s == "-"
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
    let mut w = CatalogWriter::create(path, cols, format)?;
    for o in &cat.objects {
        w.write(o)?;
    }
    w.finish()
}

/// What a catalog says about the image it comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageInfo<'h> {
    /// The image's name (VOTable's RESOURCE name).
    pub name: &'h str,
    /// The image's header cards (FITS_LDAC's LDAC_IMHEAD; other formats ignore them).
    pub header: &'h [String],
}

/// Where a catalog's bytes go.
enum Sink {
    /// A temporary file renamed over the target at the end.
    File(std::io::BufWriter<std::fs::File>),
    /// Standard output, held until the end (FITS headers are patched at the end, and a
    /// failed run writes nothing).
    Memory(Vec<u8>),
    /// CATALOG_TYPE NONE.
    Discard,
}

/// A catalog written row by row as objects come (streamed runs write each object as
/// soon as it is final), into a temporary file renamed over `path` by
/// [`CatalogWriter::finish`] (or with the other outputs of an open
/// [`super::output::OutputBatch`]); dropped unfinished (an error), it removes the temporary
/// file, so no half-written catalog is left. FITS tables get their row count patched
/// into the header at the end. `STDOUT` (or `-`) writes to standard output at the end.
pub struct CatalogWriter<'a> {
    path: PathBuf,
    tmp: Option<super::output::TempFile>,
    sink: Option<Sink>,
    cols: &'a [&'a Column],
    format: CatalogFormat,
    /// Bytes written so far.
    written: u64,
    /// Rows in all, and in the current table (FITS_LDAC: one table per extension).
    rows: usize,
    table_rows: usize,
    /// Where the current objects' table header starts (its NAXIS2 card is patched).
    table_at: u64,
    line: String,
    row: Vec<u8>,
    /// Where each LDAC_IMHEAD card of the current extension sits in the file (by
    /// keyword), for [`CatalogWriter::set_card`].
    cards: Vec<(String, u64)>,
    /// Cards to write there at the end.
    patches: Vec<(u64, String)>,
    /// What closes the file (VOTable's closing tags, SkyCat's `[EOD]`).
    footer: Vec<u8>,
}

impl<'a> CatalogWriter<'a> {
    /// Creates the temporary file and writes the header.
    pub fn create(path: &Path, cols: &'a [&'a Column], format: CatalogFormat) -> Result<Self> {
        Self::create_for(path, cols, format, ImageInfo::default())
    }

    /// [`CatalogWriter::create`] for the image `image` (its name and, for FITS_LDAC's
    /// LDAC_IMHEAD, its header cards).
    pub fn create_for(
        path: &Path,
        cols: &'a [&'a Column],
        format: CatalogFormat,
        image: ImageInfo,
    ) -> Result<Self> {
        format.check_columns(cols)?;
        let (tmp, sink) = if format == CatalogFormat::None {
            (None, Sink::Discard)
        } else if is_stdout(path) {
            (None, Sink::Memory(Vec::new()))
        } else {
            let tmp = super::output::TempFile::new(path)?;
            let f = std::fs::File::create(tmp.path())
                .map_err(|e| Error::output(path, e.to_string()))?;
            (
                Some(tmp),
                Sink::File(std::io::BufWriter::with_capacity(1 << 20, f)),
            )
        };
        let mut cw = CatalogWriter {
            path: path.to_path_buf(),
            tmp,
            sink: Some(sink),
            cols,
            format,
            written: 0,
            rows: 0,
            table_rows: 0,
            table_at: 0,
            line: String::new(),
            row: Vec::new(),
            cards: Vec::new(),
            patches: Vec::new(),
            footer: Vec::new(),
        };
        let mut head: Vec<u8> = Vec::new();
        match format {
            CatalogFormat::Fits | CatalogFormat::FitsLdac => {
                cw.put(&super::fits_table::primary())?;
                return cw.fits_table(image.header).map(|_| cw);
            }
            CatalogFormat::Csv => {
                let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
                head.extend(format!("{}\n", names.join(",")).into_bytes());
            }
            CatalogFormat::Ascii | CatalogFormat::None => {}
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
            CatalogFormat::AsciiSkycat => {
                head.extend_from_slice(SKYCAT_HEAD.as_bytes());
                // SkyCat reads the first four fields as id, ra, dec and mag.
                let names: Vec<&str> = cols
                    .iter()
                    .filter_map(|c| c.field())
                    .enumerate()
                    .map(|(i, (name, _))| {
                        ["id", "ra", "dec", "mag"].get(i).copied().unwrap_or(name)
                    })
                    .collect();
                head.extend(format!("{}\n------------------\n", names.join("\t")).into_bytes());
                cw.footer = b"[EOD]".to_vec();
            }
            CatalogFormat::Votable => {
                let (start, end) = super::votable::head_and_tail(cols, image.name)?;
                head = start;
                cw.footer = end;
            }
        }
        cw.put(&head)?;
        Ok(cw)
    }

    /// Writes a FITS catalog's next objects' table header (FITS_LDAC: after the
    /// extension's LDAC_IMHEAD, from `image_header`).
    fn fits_table(&mut self, image_header: &[String]) -> Result<()> {
        let ldac = self.format == CatalogFormat::FitsLdac;
        if ldac {
            let (imhead, start) = super::fits_table::ldac_imhead(image_header);
            let at = self.written + start as u64;
            self.cards = image_header
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let key = c.get(..8).unwrap_or(c).trim().to_string();
                    (key, at + 80 * i as u64)
                })
                .collect();
            self.put(&imhead)?;
        }
        self.table_at = self.written;
        self.table_rows = 0;
        let head = super::fits_table::table_header(self.cols, 0, ldac);
        self.put(&head)
    }

    /// Starts the catalog of the next extension of a multi-extension image: FITS_LDAC
    /// closes the current LDAC_OBJECTS table and opens the extension's LDAC_IMHEAD
    /// (from `image_header`) and LDAC_OBJECTS pair; the other formats go on with the
    /// same table (EXT_NUMBER tells the extensions apart).
    pub fn next_extension(&mut self, image_header: &[String]) -> Result<()> {
        if self.format != CatalogFormat::FitsLdac {
            return Ok(());
        }
        self.close_fits_table()?;
        self.fits_table(image_header)
    }

    /// Pads the current FITS table to a whole block and records its row count.
    fn close_fits_table(&mut self) -> Result<()> {
        let ldac = self.format == CatalogFormat::FitsLdac;
        let pad = super::fits_table::data_padding(self.cols, self.table_rows, ldac);
        self.put(&pad)?;
        self.patches.push((
            super::fits_table::naxis2_offset(self.table_at),
            super::fits_table::naxis2_card(self.table_rows),
        ));
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.written += bytes.len() as u64;
        match self.sink.as_mut().expect("writer open until finish") {
            Sink::File(w) => w
                .write_all(bytes)
                .map_err(|e| Error::output(&self.path, e.to_string())),
            Sink::Memory(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Sink::Discard => Ok(()),
        }
    }

    /// Appends one object's row.
    pub fn write(&mut self, o: &crate::measure::Object) -> Result<()> {
        self.rows += 1;
        self.table_rows += 1;
        let text = |c: &Column| match crate::catalog::display_format(c) {
            Some(f) => crate::catalog::display(f, c.value(o)),
            None => fmt_value(c, c.value(o)),
        };
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.format {
            CatalogFormat::None => return Ok(()),
            CatalogFormat::Fits | CatalogFormat::FitsLdac => {
                let mut row = std::mem::take(&mut self.row);
                let ldac = self.format == CatalogFormat::FitsLdac;
                super::fits_table::encode_row(o, self.cols, ldac, &mut row);
                let r = self.put(&row);
                self.row = row;
                return r;
            }
            CatalogFormat::Csv => {
                // CSV at full precision.
                for (i, c) in self.cols.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&fmt_value(c, c.value(o)));
                }
            }
            // ASCII catalogs as SExtractor prints them.
            CatalogFormat::AsciiHead | CatalogFormat::Ascii => {
                for (i, c) in self.cols.iter().enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(&text(c));
                }
            }
            CatalogFormat::AsciiSkycat => {
                for (i, c) in self.cols.iter().enumerate() {
                    if i > 0 {
                        line.push_str(" \t");
                    }
                    line.push_str(&text(c));
                }
            }
            CatalogFormat::Votable => {
                // One cell per field; a vector's elements separated by spaces.
                line.push_str("    <TR>");
                for c in self.cols {
                    if c.field().is_some() {
                        if line.ends_with(' ') {
                            line.pop();
                            line.push_str("</TD>");
                        }
                        line.push_str("<TD>");
                    }
                    line.push_str(text(c).trim());
                    line.push(' ');
                }
                if line.ends_with(' ') {
                    line.pop();
                    line.push_str("</TD>");
                }
                line.push_str("</TR>");
            }
        }
        line.push('\n');
        let r = self.put(line.as_bytes());
        self.line = line;
        r
    }

    /// Rewrites the LDAC_IMHEAD card of `key` (one of the current extension's header
    /// cards, a placeholder until the run's values are known) with `value` at the end;
    /// other formats ignore it.
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

    /// Completes the file (FITS: padding and the row counts) and renames it over
    /// `path` (standard output: writes it there).
    pub fn finish(mut self) -> Result<()> {
        if self.format.is_fits() {
            self.close_fits_table()?;
        }
        let footer = std::mem::take(&mut self.footer);
        self.put(&footer)?;
        let path = self.path.clone();
        let ioerr = |e: std::io::Error| Error::output(&path, e.to_string());
        match self.sink.take().expect("writer open until finish") {
            Sink::Discard => Ok(()),
            Sink::Memory(mut v) => {
                for (at, card) in &self.patches {
                    let at = *at as usize;
                    v[at..at + card.len()].copy_from_slice(card.as_bytes());
                }
                let mut out = std::io::stdout().lock();
                out.write_all(&v).and_then(|_| out.flush()).map_err(ioerr)
            }
            Sink::File(w) => {
                let mut f = w.into_inner().map_err(|e| ioerr(e.into_error()))?;
                use std::io::{Seek, SeekFrom};
                for (at, card) in &self.patches {
                    f.seek(SeekFrom::Start(*at)).map_err(ioerr)?;
                    f.write_all(card.as_bytes()).map_err(ioerr)?;
                }
                f.flush().map_err(ioerr)?;
                drop(f);
                // Dropped unfinished (an error), the temporary file is removed: no
                // partial file.
                self.tmp.take().expect("finished once").finish()
            }
        }
    }
}

/// The lines SExtractor's ASCII_SKYCAT catalogs open with (SkyCat's catalog-server
/// configuration entry).
const SKYCAT_HEAD: &str = "QueryResult\n\n# Config entry for original catalog server:\n\
serv_type: catalog\nlong_name: SExtractor catalog\nshort_name: SExCat\n\
symbol: id diamond  8.0\n# End config entry\n\n";

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
