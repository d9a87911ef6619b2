//! SExtractor's configuration as its users write it: `.sex` files (`KEYWORD value`
//! lines), `-KEYWORD value` arguments and `.param` files (one catalog parameter per
//! line). This module reads them into [`Setting`]s and parameter names, knows every
//! keyword of SExtractor 2.25's full configuration with its default
//! ([`KEYWORDS`]), and says where a bad line is; the command (`skysift IMAGE -c
//! field.sex -DETECT_THRESH 3`) turns the settings into its own options.
//!
//! The syntax, as SExtractor reads it: a keyword (case-insensitive) and its values on
//! one line; `#` starts a comment (outside double quotes); values are separated by
//! commas and/or blanks; a value in double quotes may hold blanks, commas and `#`.
//! Booleans are `Y` or `N`.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// One keyword of SExtractor's configuration: its name, the default `-dd` prints and
/// what it sets, in skysift's words.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keyword {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    /// Printed by `-d` (the short configuration) as well as by `-dd`.
    pub common: bool,
}

macro_rules! keywords {
    ($($name:literal, $default:literal, $common:literal, $help:literal;)*) => {
        /// Every keyword of SExtractor 2.25's full configuration (`source-extractor
        /// -dd`; tests/data/sextractor_dd.sex), in its order, with its default.
        pub const KEYWORDS: &[Keyword] = &[$(Keyword {
            name: $name,
            default: $default,
            help: $help,
            common: $common,
        }),*];
    };
}

keywords! {
    "CATALOG_NAME", "test.cat", true, "the catalog file (STDOUT: standard output)";
    "CATALOG_TYPE", "ASCII_HEAD", true, "NONE, ASCII, ASCII_HEAD, ASCII_SKYCAT, ASCII_VOTABLE, FITS_1.0 or FITS_LDAC";
    "PARAMETERS_NAME", "default.param", true, "the file listing the catalog's columns";
    "DETECT_TYPE", "CCD", true, "CCD (linear response) or PHOTO (photographic plates)";
    "DETECT_MINAREA", "5", true, "the fewest connected pixels above the threshold";
    "DETECT_MAXAREA", "0", false, "the most pixels of a detection (0: no limit)";
    "THRESH_TYPE", "RELATIVE", false, "RELATIVE (in units of the background RMS) or ABSOLUTE (ADU)";
    "DETECT_THRESH", "1.5", true, "the detection threshold (or threshold,zero-point in mag/arcsec²)";
    "ANALYSIS_THRESH", "1.5", true, "the threshold of the isophotal area (same units)";
    "FILTER", "Y", true, "filter the image before detection (Y or N)";
    "FILTER_NAME", "default.conv", true, "the detection kernel's file";
    "FILTER_THRESH", "", false, "thresholds of retina filtering";
    "DEBLEND_NTHRESH", "32", true, "the number of deblending sub-thresholds";
    "DEBLEND_MINCONT", "0.005", true, "the least contrast of a branch that becomes its own object";
    "CLEAN", "Y", true, "merge spurious detections into the objects they belong to (Y or N)";
    "CLEAN_PARAM", "1.0", true, "the Moffat beta of the cleaning model";
    "MASK_TYPE", "CORRECT", true, "neighbours in apertures: NONE, BLANK or CORRECT (mirrored)";
    "WEIGHT_TYPE", "NONE", false, "NONE, BACKGROUND, MAP_RMS, MAP_VAR or MAP_WEIGHT";
    "RESCALE_WEIGHTS", "Y", false, "rescale weight and variance maps to the measured noise (Y or N)";
    "WEIGHT_IMAGE", "weight.fits", false, "the weight map's file";
    "WEIGHT_GAIN", "Y", false, "let the weights modulate the gain (Y or N)";
    "WEIGHT_THRESH", "", false, "the weight beyond which a pixel is bad";
    "FLAG_IMAGE", "flag.fits", false, "the flag image's file";
    "FLAG_TYPE", "OR", false, "how flag pixels combine: OR, AND, MIN, MAX or MOST";
    "DGEO_TYPE", "NONE", false, "differential geometry map: NONE or PIXEL";
    "DGEO_IMAGE", "dgeo.fits", false, "the differential geometry map's file";
    "PHOT_APERTURES", "5", true, "FLUX_APER's aperture diameters (pixels)";
    "PHOT_AUTOPARAMS", "2.5, 3.5", true, "FLUX_AUTO's Kron factor and least radius";
    "PHOT_PETROPARAMS", "2.0, 3.5", true, "FLUX_PETRO's Petrosian factor and least radius";
    "PHOT_AUTOAPERS", "0.0,0.0", false, "the least apertures of the estimate and the measurement";
    "PHOT_FLUXFRAC", "0.5", false, "FLUX_RADIUS's flux fractions";
    "SATUR_LEVEL", "50000.0", true, "the level (ADU) where saturation sets in";
    "SATUR_KEY", "SATURATE", true, "the header keyword of the saturation level";
    "MAG_ZEROPOINT", "0.0", true, "the magnitude zero-point";
    "MAG_GAMMA", "4.0", true, "the emulsion's gamma (DETECT_TYPE PHOTO)";
    "GAIN", "0.0", true, "the gain in e-/ADU (0: no Poisson noise)";
    "GAIN_KEY", "GAIN", true, "the header keyword of the gain";
    "PIXEL_SCALE", "1.0", true, "the pixel size in arcsec (0: from the WCS)";
    "SEEING_FWHM", "1.2", true, "the stars' FWHM in arcsec (CLASS_STAR)";
    "STARNNW_NAME", "default.nnw", true, "CLASS_STAR's neural network file";
    "BACK_TYPE", "AUTO", false, "AUTO (the mesh model) or MANUAL (BACK_VALUE)";
    "BACK_VALUE", "0.0", false, "the background in MANUAL mode";
    "BACK_SIZE", "64", true, "the background mesh: size or width,height";
    "BACK_FILTERSIZE", "3", true, "the median filter of the mesh: size or width,height";
    "BACKPHOTO_TYPE", "GLOBAL", true, "the photometry's background: GLOBAL or LOCAL";
    "BACKPHOTO_THICK", "24", false, "the thickness of the LOCAL annulus (pixels)";
    "BACK_FILTTHRESH", "0.0", false, "the difference above which the mesh filter acts";
    "CHECKIMAGE_TYPE", "NONE", true, "the check images: NONE, BACKGROUND, SEGMENTATION, ...";
    "CHECKIMAGE_NAME", "check.fits", true, "their files, one per type";
    "MEMORY_OBJSTACK", "3000", true, "the cleaning list's size (skysift's --memory-objstack)";
    "MEMORY_PIXSTACK", "300000", true, "SExtractor's pixel stack (skysift has none)";
    "MEMORY_BUFSIZE", "1024", true, "the buffer's lines that cleaning sees (--memory-bufsize)";
    "ASSOC_NAME", "sky.list", false, "the list to associate";
    "ASSOC_DATA", "2,3,4", false, "its columns to copy";
    "ASSOC_PARAMS", "2,3,4", false, "its x, y[, mag] columns";
    "ASSOCCOORD_TYPE", "PIXEL", false, "its coordinates: PIXEL or WORLD";
    "ASSOC_RADIUS", "2.0", false, "the matching radius (pixels)";
    "ASSOC_TYPE", "NEAREST", false, "how matches combine";
    "ASSOCSELEC_TYPE", "MATCHED", false, "which objects the catalog keeps: ALL, MATCHED or -MATCHED";
    "VERBOSE_TYPE", "NORMAL", true, "QUIET, NORMAL or FULL";
    "HEADER_SUFFIX", ".head", true, "the extension of external header files";
    "WRITE_XML", "N", true, "write an XML summary (Y or N)";
    "XML_NAME", "sex.xml", true, "the XML summary's file";
    "XSL_URL", "file:///usr/share/source-extractor/source-extractor.xsl", false, "its style sheet";
    "NTHREADS", "1", false, "threads (0: every core)";
    "FITS_UNSIGNED", "N", false, "read FITS integers as unsigned (Y or N)";
    "INTERP_MAXXLAG", "16", false, "the farthest x lag of zero-weight interpolation";
    "INTERP_MAXYLAG", "16", false, "the farthest y lag of zero-weight interpolation";
    "INTERP_TYPE", "ALL", false, "zero-weight interpolation: NONE, VAR_ONLY or ALL";
    "PSF_NAME", "default.psf", false, "the PSF model's file";
    "PSF_NMAX", "1", false, "the most PSFs fitted at once";
    "PATTERN_TYPE", "RINGS-HARMONIC", false, "the pattern fitting's basis";
    "SOM_NAME", "default.som", false, "the self-organising map's file";
}

/// The keyword named `name` (case-insensitive).
pub fn keyword(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// Where a setting came from: a line of a file, or the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}, line {line}", path.display()),
            Origin::CommandLine => write!(f, "the command line"),
        }
    }
}

/// One keyword and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub keyword: &'static Keyword,
    pub values: Vec<String>,
    pub origin: Origin,
}

impl Setting {
    /// An error about this setting that names where it came from.
    pub fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Config(format!(
            "{}: {} {}: {reason}",
            self.origin,
            self.keyword.name,
            self.joined()
        ))
    }

    /// The values as written, comma-separated.
    pub fn joined(&self) -> String {
        self.values.join(",")
    }

    /// Whether the values are the keyword's default (numbers compared as numbers).
    pub fn is_default(&self) -> bool {
        let default = split_values(self.keyword.default);
        default.len() == self.values.len()
            && default.iter().zip(&self.values).all(|(d, v)| {
                d.eq_ignore_ascii_case(v)
                    || matches!((d.parse::<f64>(), v.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
            })
    }
}

/// Splits a line's values: separated by commas and/or blanks, double quotes keep a
/// value whole (and are removed), `#` outside quotes ends the line.
pub fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted => break,
            ',' | ' ' | '\t' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Reads a `.sex` file's settings, in order. An unknown keyword is an error naming
/// the file, the line and the closest known keywords.
pub fn read_sex(path: &Path) -> Result<Vec<Setting>> {
    parse_sex(&read_text(path, "the configuration file")?, path)
}

/// [`read_sex`] of `text` (read from `path`).
pub fn parse_sex(text: &str, path: &Path) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line
            .split_once(|c: char| c.is_whitespace())
            .unwrap_or((line, ""));
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: i + 1,
        };
        out.push(setting(name, split_values(rest), origin)?);
    }
    Ok(out)
}

/// The setting of keyword `name` with `values`; an unknown keyword is an error that
/// names `origin` and the closest known keywords.
pub fn setting(name: &str, values: Vec<String>, origin: Origin) -> Result<Setting> {
    let Some(keyword) = keyword(name) else {
        let close = closest(name, KEYWORDS.iter().map(|k| k.name));
        let reason = format!(
            "unknown keyword {name} (SExtractor 2.25 has no such keyword){}",
            if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(" or "))
            }
        );
        return Err(Error::Config(format!("{origin}: {reason}")));
    };
    Ok(Setting {
        keyword,
        values,
        origin,
    })
}

/// The catalog parameters of a `.param` file: one per line, `NAME` or `NAME(n)`;
/// blank lines and `#` comments are skipped, and anything after the name on a line
/// is taken as a description and ignored (SExtractor fails on those).
pub fn read_param(path: &Path) -> Result<Vec<String>> {
    Ok(parse_param(&read_text(
        path,
        "the parameter file (PARAMETERS_NAME)",
    )?))
}

/// A file's text, or an error naming it as `what`.
fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {what} {}: {e}", path.display())))
}

/// [`read_param`] of a file's text.
pub fn parse_param(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("").trim();
            // The name, with a vector's "(n)" even if blanks follow the name.
            let end = l
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(l.len());
            let (name, rest) = l.split_at(end);
            let rest = rest.trim_start();
            let vector = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .map(|(n, _)| format!("({})", n.trim()));
            (!name.is_empty()).then(|| format!("{name}{}", vector.unwrap_or_default()))
        })
        .collect()
}

/// The (up to three) names of `known` closest to `name`, if within an edit distance
/// of a third of its length (at least 2).
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let name = name.to_ascii_uppercase();
    let limit = (name.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .map(|k| (edit_distance(&name, &k.to_ascii_uppercase()), k))
        .filter(|&(d, _)| d <= limit)
        .collect();
    scored.sort();
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|s| s.0 == best)
        .take(3)
        .map(|(_, k)| k)
        .collect()
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + (ca != cb) as usize).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A configuration file in SExtractor's layout, every keyword of [`KEYWORDS`] (or,
/// `full` false, the common ones) with its default and what it sets: what `-d` and
/// `-dd` print.
pub fn default_config(full: bool) -> String {
    let mut out = String::from(
        "# skysift's default configuration, in SExtractor 2.25's keywords and defaults\n\
         # (skysift -dd prints every keyword, -d the common ones)\n",
    );
    for k in KEYWORDS.iter().filter(|k| full || k.common) {
        let line = format!("{:<16} {}", k.name, k.default);
        out.push_str(&format!("{line:<32} # {}\n", k.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_commas_and_blanks_and_keep_quotes_whole() {
        assert_eq!(split_values("2.5, 3.5"), vec!["2.5", "3.5"]);
        assert_eq!(split_values("5,10,20   # diameters"), vec!["5", "10", "20"]);
        assert_eq!(
            split_values("\"my file, #2.fits\" b"),
            vec!["my file, #2.fits", "b"]
        );
        assert_eq!(split_values(""), Vec::<String>::new());
        assert_eq!(split_values("\"\""), vec![""]);
    }

    #[test]
    fn sex_files_name_the_line_of_an_unknown_keyword() {
        let text = "# comment\nDETECT_THRESH 3 # sigmas\n\ndetect_minarea   7\nDETECT_TRESH 2\n";
        let err = parse_sex(text, Path::new("f.sex")).unwrap_err().to_string();
        assert!(
            err.contains("f.sex") && err.contains("line 5") && err.contains("DETECT_THRESH"),
            "{err}"
        );
        let ok = parse_sex(&text[..text.len() - 15], Path::new("f.sex")).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(
            (ok[1].keyword.name, ok[1].values.clone()),
            ("DETECT_MINAREA", vec!["7".to_string()])
        );
        assert_eq!(
            ok[1].origin,
            Origin::File {
                path: "f.sex".into(),
                line: 4
            }
        );
    }

    #[test]
    fn param_files_take_names_vectors_and_tolerate_descriptions() {
        let text = "NUMBER\n# a comment\n\nFLUX_APER(3)   Flux in apertures\nMAG_AUTO  # Kron\n  FLUX_RADIUS (2) radii\nX_IMAGE Object position along x [pixel]\n";
        assert_eq!(
            parse_param(text),
            vec![
                "NUMBER",
                "FLUX_APER(3)",
                "MAG_AUTO",
                "FLUX_RADIUS(2)",
                "X_IMAGE"
            ]
        );
    }

    #[test]
    fn every_keyword_of_sextractors_full_configuration_is_known_with_its_default() {
        let dd = include_str!("../tests/data/sextractor_dd.sex");
        let settings = parse_sex(dd, Path::new("sextractor_dd.sex")).unwrap();
        assert_eq!(settings.len(), KEYWORDS.len());
        for (s, k) in settings.iter().zip(KEYWORDS) {
            assert_eq!(s.keyword.name, k.name);
            assert!(
                s.is_default(),
                "{}: {:?} vs {:?}",
                k.name,
                s.values,
                k.default
            );
        }
        // And ours reads back the same.
        let ours = parse_sex(&default_config(true), Path::new("ours")).unwrap();
        assert!(ours.iter().all(Setting::is_default) && ours.len() == KEYWORDS.len());
        assert_eq!(
            closest("DETECT_TRESH", KEYWORDS.iter().map(|k| k.name)),
            vec!["DETECT_THRESH"]
        );
    }
}
