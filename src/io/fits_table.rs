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

/// How a column is stored: its TFORM letter. FITS_1.0 here: J (i32) for integers, D
/// (f64) otherwise, E for single-precision columns. FITS_LDAC (`ldac`): SExtractor's own
/// types, which PSFEx reads as they are: E for most values, D for the second moments
/// and windowed positions, I (i16) for FLAGS, FLAGS_WIN, EXT_NUMBER and NITER_WIN.
pub(crate) fn tform(c: &Column, ldac: bool) -> char {
    const DOUBLE: [&str; 14] = [
        "X2_IMAGE",
        "Y2_IMAGE",
        "XY_IMAGE",
        "ERRX2_IMAGE",
        "ERRY2_IMAGE",
        "ERRXY_IMAGE",
        "XWIN_IMAGE",
        "YWIN_IMAGE",
        "X2WIN_IMAGE",
        "Y2WIN_IMAGE",
        "XYWIN_IMAGE",
        "ERRX2WIN_IMAGE",
        "ERRY2WIN_IMAGE",
        "ERRXYWIN_IMAGE",
    ];
    match (c.kind, ldac) {
        (ColumnKind::Int, true)
            if ["FLAGS", "FLAGS_WIN", "EXT_NUMBER", "NITER_WIN"].contains(&c.name) =>
        {
            'I'
        }
        (ColumnKind::Int, _) => 'J',
        (ColumnKind::Float32, _) => 'E',
        (ColumnKind::Float, false) => 'D',
        (ColumnKind::Float, true) if DOUBLE.contains(&c.name) || world_double(c.name) => 'D',
        (ColumnKind::Float, true) => 'E',
    }
}

/// The world columns SExtractor stores in double precision: positions (X_WORLD,
/// ALPHA_J2000, XWIN_WORLD, ALPHAPEAK_B1950, ...) and second moments (X2_WORLD,
/// ERRXY_WORLD, X2WIN_WORLD, ...).
fn world_double(name: &str) -> bool {
    name.starts_with("ALPHA")
        || name.starts_with("DELTA")
        || (name.ends_with("_WORLD")
            && (name.starts_with('X')
                || name.starts_with('Y')
                || name.starts_with("ERRX")
                || name.starts_with("ERRY")))
}

fn tform_bytes(t: char) -> usize {
    match t {
        'I' => 2,
        'J' | 'E' => 4,
        _ => 8,
    }
}

/// The byte length of one table row for `cols` ([`tform`]).
pub(crate) fn row_bytes(cols: &[&Column], ldac: bool) -> usize {
    cols.iter().map(|c| tform_bytes(tform(c, ldac))).sum()
}

/// Where the NAXIS2 card sits in the file for a table whose header starts at byte
/// `table_at`: after its first four cards.
pub(crate) fn naxis2_offset(table_at: u64) -> u64 {
    table_at + 4 * 80
}

/// A FITS_LDAC catalog's LDAC_IMHEAD extension: a table of one row whose one field
/// holds the image's header `cards` (80 characters each, END last), as SExtractor
/// writes it (TFORM nA, TDIM (80, cards)).
/// Also where its cards start in that extension (bytes).
pub(crate) fn ldac_imhead(cards: &[String]) -> (Vec<u8>, usize) {
    let mut data: Vec<u8> = cards
        .iter()
        .flat_map(|c| format!("{c:<80.80}").into_bytes())
        .collect();
    data.extend_from_slice(format!("{:<80}", "END").as_bytes());
    let n = data.len() / 80;
    let mut out = header(&[
        card("XTENSION", &quoted("BINTABLE"), "binary table extension"),
        card("BITPIX", "8", "array data type"),
        card("NAXIS", "2", "number of array dimensions"),
        card(
            "NAXIS1",
            &data.len().to_string(),
            "length of a row in bytes",
        ),
        card("NAXIS2", "1", "number of rows"),
        card("PCOUNT", "0", "number of group parameters"),
        card("GCOUNT", "1", "number of groups"),
        card("TFIELDS", "1", "number of table fields"),
        card("TTYPE1", &quoted("Field Header Card"), ""),
        card("TFORM1", &quoted(&format!("{}A", data.len())), ""),
        card("TDIM1", &quoted(&format!("(80, {n})")), ""),
        card("EXTNAME", &quoted("LDAC_IMHEAD"), "name of this table"),
    ]);
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    let start = out.len();
    out.extend(data);
    out.extend(std::iter::repeat_n(0u8, pad));
    (out, start)
}

/// A header card `key = value / comment` (numbers right-aligned, as cfitsio writes
/// them).
pub fn value_card(key: &str, value: f64, comment: &str) -> String {
    let v = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.12E}")
    };
    card(key, &v, comment)
}

/// The NAXIS2 card for `rows` rows (80 bytes, whatever the count).
pub(crate) fn naxis2_card(rows: usize) -> String {
    card("NAXIS2", &rows.to_string(), "number of rows")
}

/// A catalog's primary HDU (empty).
pub(crate) fn primary() -> Vec<u8> {
    header(&[
        card("SIMPLE", "T", "conforms to FITS standard"),
        card("BITPIX", "8", "array data type"),
        card("NAXIS", "0", "number of array dimensions"),
        card("EXTEND", "T", ""),
        card("ORIGIN", &quoted("skysift"), "source extraction"),
    ])
}

/// The header of a BINTABLE named LDAC_OBJECTS with one column per `cols`, TUNITn
/// units and the descriptions as TTYPEn comments, for `rows` rows (patched at the end
/// when rows are streamed); `ldac`: SExtractor's FITS_LDAC column types ([`tform`]).
pub(crate) fn table_header(cols: &[&Column], rows: usize, ldac: bool) -> Vec<u8> {
    let mut cards = vec![
        card("XTENSION", &quoted("BINTABLE"), "binary table extension"),
        card("BITPIX", "8", "array data type"),
        card("NAXIS", "2", "number of array dimensions"),
        card(
            "NAXIS1",
            &row_bytes(cols, ldac).to_string(),
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
        let kind = tform(c, ldac);
        cards.push(card(
            &format!("TFORM{n}"),
            &quoted(&format!("{len}{kind}")),
            "",
        ));
        if let Some((w, h)) = c.tdim {
            cards.push(card(
                &format!("TDIM{n}"),
                &quoted(&format!("({w}, {h})")),
                "",
            ));
        }
        if !c.unit.is_empty() {
            cards.push(card(&format!("TUNIT{n}"), &quoted(c.unit), ""));
        }
    }
    cards.push(card(
        "EXTNAME",
        &quoted("LDAC_OBJECTS"),
        "name of this table",
    ));
    header(&cards)
}

/// One object's row, big-endian, into `row` (cleared first).
pub(crate) fn encode_row(o: &Object, cols: &[&Column], ldac: bool, row: &mut Vec<u8>) {
    row.clear();
    for c in cols {
        let v = c.value(o);
        match tform(c, ldac) {
            'I' => row.extend_from_slice(&(v as i16).to_be_bytes()),
            'J' => row.extend_from_slice(&(v as i32).to_be_bytes()),
            'E' => row.extend_from_slice(&(v as f32).to_be_bytes()),
            _ => row.extend_from_slice(&v.to_be_bytes()),
        }
    }
}

/// The zero bytes that complete the last block after `rows` rows.
pub(crate) fn data_padding(cols: &[&Column], rows: usize, ldac: bool) -> Vec<u8> {
    let data = row_bytes(cols, ldac) * rows;
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
