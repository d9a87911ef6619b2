//! A FITS binary-table writer in plain Rust (FITS 4.0 §7.3), row by row.
//!
//! cfitsio writes a binary table column by column; for a catalog of N rows and C
//! columns that is C passes over the whole table through its small I/O buffers
//! (measured 0.58 s for 33k rows x 29 columns). Writing rows in order is one
//! sequential pass and lets large catalogs be streamed as they are measured: the
//! row count (NAXIS2) is patched in at the end ([`super::catalog::CatalogWriter`]).

use crate::catalog::{Column, ColumnKind};
use crate::measure::Object;

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

/// The byte length of one table row for `cols` (J = i32 for integer columns, D = f64
/// otherwise).
pub(crate) fn row_bytes(cols: &[&Column]) -> usize {
    cols.iter()
        .map(|c| if c.kind == ColumnKind::Int { 4 } else { 8 })
        .sum()
}

/// Where the NAXIS2 card sits in the file: after the primary header (one block) and
/// the table header's first four cards.
pub(crate) const NAXIS2_OFFSET: u64 = BLOCK as u64 + 4 * 80;

/// The NAXIS2 card for `rows` rows (80 bytes, whatever the count).
pub(crate) fn naxis2_card(rows: usize) -> String {
    card("NAXIS2", &rows.to_string(), "number of rows")
}

/// The primary HDU (empty) and the header of a BINTABLE named LDAC_OBJECTS with one
/// column per `cols`, TUNITn units and the descriptions as TTYPEn comments, for
/// `rows` rows (patched at the end when rows are streamed).
pub(crate) fn headers(cols: &[&Column], rows: usize) -> Vec<u8> {
    let mut out = header(&[
        card("SIMPLE", "T", "conforms to FITS standard"),
        card("BITPIX", "8", "array data type"),
        card("NAXIS", "0", "number of array dimensions"),
        card("EXTEND", "T", ""),
        card("ORIGIN", &quoted("skysift"), "source extraction"),
    ]);
    let mut cards = vec![
        card("XTENSION", &quoted("BINTABLE"), "binary table extension"),
        card("BITPIX", "8", "array data type"),
        card("NAXIS", "2", "number of array dimensions"),
        card(
            "NAXIS1",
            &row_bytes(cols).to_string(),
            "length of a row in bytes",
        ),
        naxis2_card(rows),
        card("PCOUNT", "0", "number of group parameters"),
        card("GCOUNT", "1", "number of groups"),
    ];
    // A vector parameter's elements (adjacent columns) are one field of n values.
    let fields: Vec<(&Column, &str, usize)> = cols
        .iter()
        .filter_map(|c| c.field().map(|(name, len)| (*c, name, len)))
        .collect();
    cards.push(card(
        "TFIELDS",
        &fields.len().to_string(),
        "number of table fields",
    ));
    for (i, &(c, name, len)) in fields.iter().enumerate() {
        let n = i + 1;
        cards.push(card(&format!("TTYPE{n}"), &quoted(name), c.description));
        let kind = if c.kind == ColumnKind::Int { "J" } else { "D" };
        cards.push(card(
            &format!("TFORM{n}"),
            &quoted(&format!("{len}{kind}")),
            "",
        ));
        if !c.unit.is_empty() {
            cards.push(card(&format!("TUNIT{n}"), &quoted(c.unit), ""));
        }
    }
    cards.push(card(
        "EXTNAME",
        &quoted("LDAC_OBJECTS"),
        "name of this table",
    ));
    out.extend(header(&cards));
    out
}

/// One object's row, big-endian, into `row` (cleared first).
pub(crate) fn encode_row(o: &Object, cols: &[&Column], row: &mut Vec<u8>) {
    row.clear();
    for c in cols {
        let v = c.value(o);
        match c.kind {
            ColumnKind::Int => row.extend_from_slice(&(v as i32).to_be_bytes()),
            ColumnKind::Float => row.extend_from_slice(&v.to_be_bytes()),
        }
    }
}

/// The zero bytes that complete the last block after `rows` rows.
pub(crate) fn data_padding(cols: &[&Column], rows: usize) -> Vec<u8> {
    let data = row_bytes(cols) * rows;
    vec![0u8; (BLOCK - data % BLOCK) % BLOCK]
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
