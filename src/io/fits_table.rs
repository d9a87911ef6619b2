//! A FITS binary-table writer in plain Rust (FITS 4.0 §7.3), row by row.
//!
//! cfitsio writes a binary table column by column; for a catalog of N rows and C
//! columns that is C passes over the whole table through its small I/O buffers
//! (measured 0.58 s for 33k rows x 29 columns). Writing rows in order is one
//! sequential pass and lets large catalogs be streamed in chunks.

use crate::catalog::{Catalog, Column, ColumnKind};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

const BLOCK: usize = 2880;

/// One 80-character header card.
fn card(key: &str, value: &str, comment: &str) -> String {
    // Fixed format: strings open their quote in column 11, other values end in column 30.
    let mut c = if value.is_empty() {
        format!("{key:<8}")
    } else if value.starts_with('\'') {
        format!("{key:<8}= {value:<20}")
    } else {
        format!("{key:<8}= {value:>20}")
    };
    if !comment.is_empty() {
        c.push_str(" / ");
        c.push_str(comment);
    }
    let mut c: String = c
        .chars()
        .filter(|ch| ch.is_ascii() && !ch.is_ascii_control())
        .collect();
    c.truncate(80);
    format!("{c:<80}")
}

fn quoted(s: &str) -> String {
    format!("'{:<8}'", s.replace('\'', "''"))
}

fn header(cards: &[String]) -> Vec<u8> {
    let mut h: Vec<u8> = cards.concat().into_bytes();
    h.extend_from_slice(format!("{:<80}", "END").as_bytes());
    let pad = (BLOCK - h.len() % BLOCK) % BLOCK;
    h.extend(std::iter::repeat_n(b' ', pad));
    h
}

/// Writes `cat` as a FITS file: an empty primary HDU, then a BINTABLE named
/// LDAC_OBJECTS with one column per `cols` (J = i32 for integer columns, D = f64
/// otherwise), TUNITn units and the descriptions as TTYPEn comments.
pub fn write(path: &Path, cat: &Catalog, cols: &[&Column]) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let ioerr = |e: std::io::Error| Error::output(path, e.to_string());
        let f = std::fs::File::create(tmp).map_err(ioerr)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let primary = header(&[
            card("SIMPLE", "T", "conforms to FITS standard"),
            card("BITPIX", "8", "array data type"),
            card("NAXIS", "0", "number of array dimensions"),
            card("EXTEND", "T", ""),
            card("ORIGIN", &quoted("skysift"), "source extraction"),
        ]);
        w.write_all(&primary).map_err(ioerr)?;
        let row_bytes: usize = cols
            .iter()
            .map(|c| if c.kind == ColumnKind::Int { 4 } else { 8 })
            .sum();
        let mut cards = vec![
            card("XTENSION", &quoted("BINTABLE"), "binary table extension"),
            card("BITPIX", "8", "array data type"),
            card("NAXIS", "2", "number of array dimensions"),
            card("NAXIS1", &row_bytes.to_string(), "length of a row in bytes"),
            card("NAXIS2", &cat.len().to_string(), "number of rows"),
            card("PCOUNT", "0", "number of group parameters"),
            card("GCOUNT", "1", "number of groups"),
            card("TFIELDS", &cols.len().to_string(), "number of table fields"),
        ];
        for (i, c) in cols.iter().enumerate() {
            let n = i + 1;
            cards.push(card(&format!("TTYPE{n}"), &quoted(c.name), c.description));
            let form = if c.kind == ColumnKind::Int {
                "1J"
            } else {
                "1D"
            };
            cards.push(card(&format!("TFORM{n}"), &quoted(form), ""));
            if !c.unit.is_empty() {
                cards.push(card(&format!("TUNIT{n}"), &quoted(c.unit), ""));
            }
        }
        cards.push(card(
            "EXTNAME",
            &quoted("LDAC_OBJECTS"),
            "name of this table",
        ));
        w.write_all(&header(&cards)).map_err(ioerr)?;
        let mut row = Vec::with_capacity(row_bytes);
        for o in &cat.objects {
            row.clear();
            for c in cols {
                let v = c.value(o);
                match c.kind {
                    ColumnKind::Int => row.extend_from_slice(&(v as i32).to_be_bytes()),
                    ColumnKind::Float => row.extend_from_slice(&v.to_be_bytes()),
                }
            }
            w.write_all(&row).map_err(ioerr)?;
        }
        let data = row_bytes * cat.len();
        let pad = (BLOCK - data % BLOCK) % BLOCK;
        w.write_all(&vec![0u8; pad]).map_err(ioerr)?;
        w.flush().map_err(ioerr)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_80_characters_and_headers_whole_blocks() {
        let c = card("NAXIS1", "232", "length of a row in bytes");
        assert_eq!(c.len(), 80);
        assert!(c.starts_with("NAXIS1  =                  232 / length"));
        assert_eq!(quoted("D"), "'D       '");
        assert_eq!(header(&[c]).len(), 2880);
        let x = card("XTENSION", &quoted("BINTABLE"), "");
        assert!(x.starts_with("XTENSION= 'BINTABLE'"), "{x}");
    }
}
