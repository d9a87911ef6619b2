//! Flag images (FLAG_IMAGE, FLAG_TYPE): IMAFLAGS_ISO and NIMAFLAGS_ISO, the
//! combination of up to four integer maps over each object's pixels (spec
//! weights.md §9).
//!
//! Each map's values are read beside the image, row by row like a threshold image,
//! and every detected pixel carries its value from each map through labelling,
//! deblending and measurement (`RowDetections::flags`, `Comp::flags`), so whole-image
//! and streamed runs, and both backends, combine the same pixels: an object's
//! isophotal footprint after deblending. Values are unsigned at the map's own width
//! (an int16 −1 is 65535). When cleaning merges two objects, their flags merge as
//! SExtractor's do ([`merge`]).

use crate::error::{Error, Result};

/// The most flag maps an extraction takes (SExtractor's limit).
pub const MAX_MAPS: usize = 4;

/// FLAG_TYPE: how a map's values over an object's pixels combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlagType {
    /// Bitwise OR of the non-zero values; the count is the non-zero pixels.
    #[default]
    Or,
    /// SExtractor's AND: always 0 (its accumulator starts at 0); the count is the
    /// non-zero pixels.
    And,
    /// The documented AND: bitwise AND of the non-zero values (0 if none).
    AndNonzero,
    /// The smallest non-zero value, and how many pixels have it.
    Min,
    /// The largest value, and how many pixels have it.
    Max,
    /// The most frequent non-zero value (the first met on a tie), and its count.
    Most,
}

impl FlagType {
    /// Parses a FLAG_TYPE value (case-insensitive).
    pub fn parse(s: &str) -> Option<FlagType> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "OR" => FlagType::Or,
            "AND" => FlagType::And,
            "AND_NONZERO" | "AND-NONZERO" => FlagType::AndNonzero,
            "MIN" => FlagType::Min,
            "MAX" => FlagType::Max,
            "MOST" => FlagType::Most,
            _ => return None,
        })
    }
}

/// The mask of a map's values at its width: BITPIX 8, 16 or 32 (others are refused).
pub fn width_mask(bitpix: i64, path: &str) -> Result<u32> {
    match bitpix {
        8 => Ok(0xFF),
        16 => Ok(0xFFFF),
        32 => Ok(0xFFFF_FFFF),
        b => Err(Error::input(
            path,
            format!(
                "a flag image holds integers of 8, 16 or 32 bits, and this one has BITPIX {b}: \
                 convert it to an integer image"
            ),
        )),
    }
}

/// A map's value read as f32 (its integers are exact below 2^24), as the unsigned
/// integer of the map's width (`mask`); NaN (a BLANK pixel) is 0. None for a value
/// that f32 did not hold exactly.
pub fn value(v: f32, mask: u32) -> Option<u32> {
    if v.is_nan() {
        return Some(0);
    }
    let i = v as i64;
    (i as f32 == v && i.unsigned_abs() < (1 << 24)).then_some((i as u32) & mask)
}

/// IMAFLAGS_ISO and NIMAFLAGS_ISO of one map over an object's pixel values, in the
/// object's pixel order.
pub fn combine(values: impl Iterator<Item = u32>, t: FlagType) -> (u32, u32) {
    let (mut acc, mut n) = (0u32, 0u32);
    match t {
        FlagType::Or | FlagType::And | FlagType::AndNonzero => {
            let mut and: Option<u32> = None;
            for v in values.filter(|&v| v != 0) {
                acc |= v;
                and = Some(and.map_or(v, |a| a & v));
                n += 1;
            }
            match t {
                FlagType::Or => (acc, n),
                FlagType::And => (0, n),
                _ => (and.unwrap_or(0), n),
            }
        }
        FlagType::Min => {
            for v in values.filter(|&v| v != 0) {
                if n == 0 || v < acc {
                    (acc, n) = (v, 1);
                } else if v == acc {
                    n += 1;
                }
            }
            (acc, n)
        }
        FlagType::Max => {
            for v in values {
                if v > acc {
                    (acc, n) = (v, 1);
                } else if v == acc && v != 0 {
                    n += 1;
                }
            }
            (acc, n)
        }
        FlagType::Most => {
            // Counts in first-met order, so a tie keeps the value met first.
            let mut counts: Vec<(u32, u32)> = Vec::new();
            for v in values.filter(|&v| v != 0) {
                match counts.iter_mut().find(|c| c.0 == v) {
                    Some(c) => c.1 += 1,
                    None => counts.push((v, 1)),
                }
            }
            let mut best = (0u32, 0u32);
            for &(v, c) in &counts {
                if c > best.1 {
                    best = (v, c);
                }
            }
            best
        }
    }
}

/// The flags of an object that absorbs another's (cleaning), as SExtractor merges
/// them: OR and AND bitwise with the counts added, MIN and MAX the extreme (counts
/// added on equality), MOST the value of the larger count.
pub fn merge(a: (u32, u32), b: (u32, u32), t: FlagType) -> (u32, u32) {
    match t {
        FlagType::Or | FlagType::And => (a.0 | b.0, a.1 + b.1),
        FlagType::AndNonzero => match (a.1, b.1) {
            (0, _) => b,
            (_, 0) => a,
            _ => (a.0 & b.0, a.1 + b.1),
        },
        FlagType::Min => match (a.1, b.1) {
            (0, _) => b,
            (_, 0) => a,
            _ if a.0 == b.0 => (a.0, a.1 + b.1),
            _ if b.0 < a.0 => b,
            _ => a,
        },
        FlagType::Max => {
            if a.0 == b.0 {
                (a.0, a.1 + b.1)
            } else if b.0 > a.0 {
                b
            } else {
                a
            }
        }
        FlagType::Most => {
            if b.1 > a.1 {
                b
            } else {
                a
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_follow_sextractor() {
        let px = [0u32, 5, 1, 4, 0, 4, 1];
        let c = |t| combine(px.iter().copied(), t);
        assert_eq!(c(FlagType::Or), (5, 5));
        assert_eq!(c(FlagType::And), (0, 5));
        assert_eq!(c(FlagType::AndNonzero), (0, 5));
        assert_eq!(c(FlagType::Min), (1, 2));
        assert_eq!(c(FlagType::Max), (5, 1));
        // 1 and 4 both twice: the first met (4, at index 3... 1 at index 2) wins.
        assert_eq!(c(FlagType::Most), (1, 2));
        assert_eq!(combine([0u32, 0].into_iter(), FlagType::Min), (0, 0));
        assert_eq!(combine([0u32, 0].into_iter(), FlagType::Max), (0, 0));
        assert_eq!(combine([6u32, 7].into_iter(), FlagType::AndNonzero), (6, 2));
        // Unsigned at the map's width.
        assert_eq!(value(-1.0, 0xFFFF), Some(65535));
        assert_eq!(value(-32768.0, 0xFFFF), Some(32768));
        assert_eq!(value(200.0, 0xFF), Some(200));
        assert_eq!(value(2.5, 0xFFFF), None);
        assert_eq!(value(f32::NAN, 0xFFFF), Some(0));
        assert_eq!(merge((4, 2), (1, 3), FlagType::Min), (1, 3));
        assert_eq!(merge((4, 2), (4, 3), FlagType::Max), (4, 5));
        assert_eq!(merge((4, 2), (1, 3), FlagType::Or), (5, 5));
        assert_eq!(merge((4, 2), (1, 3), FlagType::Most), (1, 3));
    }
}
