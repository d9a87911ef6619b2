//! SExtractor's command line: `skysift IMAGE [-c FILE.sex] [-KEYWORD value]...`,
//! turned into skysift's own options before they are parsed. The two styles mix:
//! SExtractor's settings (SExtractor's defaults for what skysift's differ in, then
//! `default.sex` when the command runs as `source-extractor` or `sex`, then `-c`'s
//! file, then the `-KEYWORD` arguments, the later winning) come first, skysift's own
//! options after them, so these win over both.

use skysift::config::{self, Origin, Setting};
use skysift::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The command line in skysift's options, and what to say or print first.
pub struct Translated {
    pub args: Vec<OsString>,
    pub warnings: Vec<String>,
    /// `-d`, `-dd`, `-dp` or `-v`: print this and stop.
    pub print: Option<String>,
}

/// Whether `arg` is a SExtractor keyword argument (`-DETECT_THRESH`).
fn is_keyword(arg: &str) -> bool {
    let Some(k) = arg.strip_prefix('-') else {
        return false;
    };
    k.len() > 1
        && k.starts_with(|c: char| c.is_ascii_uppercase())
        && k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Translates `argv` (the program's name first).
pub fn translate(argv: Vec<OsString>) -> Result<Translated> {
    let mut it = argv.into_iter();
    let prog = it.next().unwrap_or_else(|| "skysift".into());
    let as_sextractor = Path::new(&prog)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "source-extractor" || n == "sex");
    let (mut rest, mut config_file, mut keywords, mut print) =
        (Vec::new(), None::<PathBuf>, Vec::new(), None);
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else {
            rest.push(a);
            continue;
        };
        match s {
            "-c" => {
                let f = it.next().ok_or_else(|| {
                    Error::Config("-c needs a configuration file: -c field.sex".into())
                })?;
                config_file = Some(PathBuf::from(f));
            }
            "-d" => print = Some(config::default_config(false)),
            "-dd" => print = Some(config::default_config(true)),
            "-dp" => print = Some(parameter_list()),
            "-v" => {
                print = Some(format!(
                    "skysift {} (SExtractor 2.25's configuration and catalogs)\n",
                    env!("CARGO_PKG_VERSION")
                ))
            }
            _ if is_keyword(s) => {
                let v = it
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| {
                        Error::Config(format!("{s} needs a value: {s} VALUE[,VALUE...]"))
                    })?;
                keywords.push(config::setting(
                    &s[1..],
                    config::split_values(&v),
                    Origin::CommandLine,
                )?);
            }
            _ => rest.push(a),
        }
    }
    let mut out = Translated {
        args: vec![prog],
        warnings: Vec::new(),
        print,
    };
    let sextractor_style = as_sextractor || config_file.is_some() || !keywords.is_empty();
    // The configuration files read, which no output may replace.
    let mut read: Vec<PathBuf> = Vec::new();
    if sextractor_style {
        let mut settings = Vec::new();
        let default_sex = Path::new("default.sex");
        if as_sextractor && config_file.is_none() && default_sex.exists() {
            settings.extend(config::read_sex(default_sex)?);
            read.push(default_sex.into());
        }
        if let Some(f) = &config_file {
            settings.extend(config::read_sex(f)?);
            read.push(f.clone());
        }
        settings.extend(keywords);
        // The later setting of a keyword wins.
        let mut merged: Vec<Setting> = Vec::new();
        for s in settings {
            merged.retain(|m| m.keyword.name != s.keyword.name);
            merged.push(s);
        }
        if let Some(p) = merged.iter().find(|s| s.keyword.name == "PARAMETERS_NAME") {
            read.push(PathBuf::from(p.joined()));
        }
        // The (detection) image: the first argument that is not an option.
        let image = rest
            .first()
            .and_then(|a| a.to_str())
            .filter(|a| !a.starts_with('-'))
            .map(|a| a.split(',').next().unwrap_or(a).to_string());
        let (args, warnings) = options(&merged, as_sextractor, image.as_deref())?;
        out.args.extend(args.into_iter().map(OsString::from));
        if let Some(f) = &config_file {
            out.args.push("--prefs-name".into());
            out.args.push(f.clone().into_os_string());
        }
        out.warnings = warnings;
    }
    out.args.extend(rest);
    refuse_overwriting(&out.args, &read)?;
    Ok(out)
}

/// An error if an output (`-o`/`--output`, a `--check-image` TYPE:PATH) names one of
/// the configuration files `read`: a catalog never replaces its own configuration.
fn refuse_overwriting(args: &[OsString], read: &[PathBuf]) -> Result<()> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let out = match a {
            "-o" | "--output" => it.next().map(str::to_string),
            "--check-image" => it
                .next()
                .and_then(|v| v.split_once(':'))
                .map(|v| v.1.to_string()),
            _ => None,
        };
        if let Some(out) = out {
            if let Some(f) = read.iter().find(|f| same(Path::new(&out), f)) {
                return Err(Error::Config(format!(
                    "the output {out} is the configuration file {} that this run reads: name \
                     another file (CATALOG_NAME, CHECKIMAGE_NAME or -o)",
                    f.display()
                )));
            }
        }
    }
    Ok(())
}

/// `-dp`: every catalog parameter with its unit and what it is.
fn parameter_list() -> String {
    let mut out = String::new();
    for c in all_columns() {
        let name = if skysift::catalog::VECTOR_COLUMNS
            .iter()
            .any(|v| v.name == c.name)
        {
            format!("{}(n)", c.name)
        } else {
            c.name.to_string()
        };
        let unit = if c.unit.is_empty() {
            String::new()
        } else {
            format!(" [{}]", c.unit)
        };
        out.push_str(&format!("#{name:<24} {}{unit}\n", c.description));
    }
    out
}

/// Every catalog parameter skysift writes (vectors once).
fn all_columns() -> impl Iterator<Item = &'static skysift::catalog::Column> {
    use skysift::catalog::{COLUMNS, PHOT_COLUMNS, RUN_COLUMNS, VECTOR_COLUMNS, WORLD_COLUMNS};
    COLUMNS
        .iter()
        .chain(PHOT_COLUMNS)
        .chain(WORLD_COLUMNS)
        .chain(RUN_COLUMNS)
        .chain(
            VECTOR_COLUMNS
                .iter()
                .filter(|v| !COLUMNS.iter().chain(PHOT_COLUMNS).any(|c| c.name == v.name)),
        )
}

/// A file named in the configuration: as given (relative to the working folder, as
/// SExtractor opens it), or, where that does not exist, the file of that name that
/// SExtractor's Debian package installs (default.nnw, default.conv, ...), as
/// SExtractor falls back to it.
fn shared_file(name: &str) -> String {
    let installed = Path::new("/usr/share/source-extractor").join(name);
    if !Path::new(name).exists() && Path::new(name).is_relative() && installed.exists() {
        installed.display().to_string()
    } else {
        name.to_string()
    }
}

/// The value of a Y/N keyword.
fn yes(s: &Setting) -> Result<bool> {
    match s.joined().to_ascii_uppercase().as_str() {
        "Y" | "YES" | "T" => Ok(true),
        "N" | "NO" | "F" => Ok(false),
        _ => Err(s.error("give Y or N")),
    }
}

/// The one value of `s`.
fn one(s: &Setting) -> Result<&str> {
    match &s.values[..] {
        [v] => Ok(v),
        _ => Err(s.error("give one value")),
    }
}

/// skysift's options for SExtractor's settings (`merged`: each keyword once), and
/// the warnings for the keywords skysift accepts but does not implement.
fn options(
    merged: &[Setting],
    as_sextractor: bool,
    image: Option<&str>,
) -> Result<(Vec<String>, Vec<String>)> {
    let get = |name: &str| merged.iter().find(|s| s.keyword.name == name);
    let (mut args, mut flags, mut warnings) = (Vec::<String>::new(), Vec::new(), Vec::new());
    let mut opt = |flag: &str, value: String| {
        args.push(flag.to_string());
        args.push(value);
    };
    // Where skysift's own defaults differ from SExtractor's, SExtractor's apply.
    if get("PIXEL_SCALE").is_none() {
        opt("--pixel-scale", "1.0".into());
    }
    let exists = |f: &str| Path::new(f).exists();
    for (name, file, flag) in [
        ("PARAMETERS_NAME", "default.param", ""),
        ("FILTER_NAME", "default.conv", "--filter"),
        ("STARNNW_NAME", "default.nnw", "--starnnw-name"),
    ] {
        if get(name).is_none() && exists(file) {
            if flag.is_empty() {
                opt("--params", param_list(Path::new(file), None)?);
            } else {
                opt(flag, file.into());
            }
        }
    }
    if as_sextractor && get("CATALOG_NAME").is_none() {
        opt("--output", "test.cat".into());
    }
    // Thresholds given as surface brightness (absolute) and as numbers.
    let (mut surface, mut plain) = (0, 0);
    let filter_on = match get("FILTER") {
        Some(s) => yes(s)?,
        None => true,
    };
    for s in merged {
        let k = s.keyword.name;
        let lower = || s.joined().to_ascii_lowercase();
        match k {
            "CATALOG_NAME" => {
                let v = one(s)?;
                // STDOUT (any case): the catalog on standard output.
                let v = if v.eq_ignore_ascii_case("STDOUT") {
                    "STDOUT"
                } else {
                    v
                };
                opt("--output", v.into());
            }
            "CATALOG_TYPE" => match one(s)?.to_ascii_uppercase().as_str() {
                "ASCII_HEAD" => opt("--catalog-type", "ascii-head".into()),
                "ASCII" => opt("--catalog-type", "ascii".into()),
                "FITS_1.0" => opt("--catalog-type", "fits".into()),
                "FITS_LDAC" => opt("--catalog-type", "fits-ldac".into()),
                "ASCII_SKYCAT" => opt("--catalog-type", "ascii-skycat".into()),
                "ASCII_VOTABLE" => opt("--catalog-type", "votable".into()),
                "NONE" => opt("--catalog-type", "none".into()),
                other => {
                    return Err(s.error(format!(
                        "{other} is not a catalog type: NONE, ASCII, ASCII_HEAD, ASCII_SKYCAT, \
                         ASCII_VOTABLE, FITS_1.0 or FITS_LDAC (FITS_TPX is not implemented)"
                    )))
                }
            },
            "PARAMETERS_NAME" => opt("--params", param_list(Path::new(one(s)?), Some(s))?),
            "DETECT_TYPE" if !s.joined().eq_ignore_ascii_case("CCD") => {
                return Err(s.error("only CCD is implemented (PHOTO is not)"))
            }
            "DETECT_MINAREA" => opt("--detect-minarea", one(s)?.into()),
            "DETECT_MAXAREA" => opt("--detect-maxarea", one(s)?.into()),
            "THRESH_TYPE" => opt("--thresh-type", lower()),
            "DETECT_THRESH" | "ANALYSIS_THRESH" => {
                let flag = if k == "DETECT_THRESH" {
                    "--detect-thresh"
                } else {
                    "--analysis-thresh"
                };
                match &s.values[..] {
                    [v] => {
                        opt(flag, v.clone());
                        plain += 1;
                    }
                    [mu, zp] => {
                        let suffix = get("HEADER_SUFFIX").map_or(Ok(".head"), one)?;
                        let scale = get("PIXEL_SCALE");
                        opt(flag, surface_threshold(s, mu, zp, scale, image, suffix)?);
                        surface += 1;
                    }
                    _ => {
                        return Err(s.error(
                            "give a threshold, or a surface brightness and its zero-point \
                             (mag/arcsec², mag)",
                        ))
                    }
                }
            }
            "FILTER" => {
                if !filter_on {
                    opt("--filter", "none".into());
                }
            }
            "FILTER_NAME" => {
                if filter_on {
                    opt("--filter", shared_file(one(s)?));
                }
            }
            "DEBLEND_NTHRESH" => opt("--deblend-nthresh", one(s)?.into()),
            "DEBLEND_MINCONT" => opt("--deblend-mincont", one(s)?.into()),
            "CLEAN" => {
                if !yes(s)? {
                    flags.push("--no-clean".to_string());
                }
            }
            "CLEAN_PARAM" => opt("--clean-param", one(s)?.into()),
            "MASK_TYPE" => opt("--mask-type", lower()),
            "PHOT_APERTURES" => opt("--phot-apertures", s.joined()),
            "PHOT_AUTOPARAMS" => opt("--phot-autoparams", s.joined()),
            "PHOT_PETROPARAMS" => opt("--phot-petroparams", s.joined()),
            "PHOT_AUTOAPERS" => opt("--phot-autoapers", s.joined()),
            "PHOT_FLUXFRAC" => opt("--phot-fluxfrac", s.joined()),
            "SATUR_LEVEL" => opt("--satur-level", one(s)?.into()),
            "SATUR_KEY" => opt("--satur-key", s.joined()),
            "MAG_ZEROPOINT" => opt("--mag-zeropoint", one(s)?.into()),
            "GAIN" => opt("--gain", one(s)?.into()),
            "GAIN_KEY" => opt("--gain-key", s.joined()),
            "PIXEL_SCALE" => opt("--pixel-scale", one(s)?.into()),
            "HEADER_SUFFIX" => opt("--header-suffix", one(s)?.into()),
            "FLAG_IMAGE" => opt("--flag-image", s.values.join(",")),
            "FLAG_TYPE" => opt("--flag-type", s.values.join(",").to_ascii_lowercase()),
            "SEEING_FWHM" => opt("--seeing-fwhm", one(s)?.into()),
            "STARNNW_NAME" => opt("--starnnw-name", shared_file(one(s)?)),
            "BACK_TYPE" => match one(s)?.to_ascii_uppercase().as_str() {
                "AUTO" => {}
                "MANUAL" => {
                    let v = get("BACK_VALUE").map_or(Ok("0.0"), one)?;
                    opt("--back-value", v.into());
                }
                _ => return Err(s.error("give AUTO or MANUAL")),
            },
            "BACK_VALUE" => {}
            "BACK_SIZE" => opt("--back-size", s.joined()),
            "BACK_FILTERSIZE" => opt("--back-filtersize", s.joined()),
            "BACKPHOTO_TYPE" => opt("--backphoto-type", lower()),
            "BACKPHOTO_THICK" => opt("--backphoto-thick", one(s)?.into()),
            "BACK_FILTTHRESH" => opt("--back-filtthresh", one(s)?.into()),
            "CHECKIMAGE_TYPE" => {
                let types: Vec<&String> = s
                    .values
                    .iter()
                    .filter(|t| !t.eq_ignore_ascii_case("NONE"))
                    .collect();
                if types.is_empty() {
                    continue;
                }
                let names = get("CHECKIMAGE_NAME")
                    .map(|n| n.values.clone())
                    .unwrap_or_default();
                if names.len() != s.values.len() {
                    return Err(s.error(format!(
                        "{} check image types but {} CHECKIMAGE_NAME: give one file per type",
                        s.values.len(),
                        names.len()
                    )));
                }
                for (t, n) in s.values.iter().zip(&names) {
                    if !t.eq_ignore_ascii_case("NONE") {
                        opt("--check-image", format!("{}:{n}", t.to_ascii_uppercase()));
                    }
                }
            }
            "CHECKIMAGE_NAME" => {}
            // skysift has no stacks or buffers to size: it holds what it needs and
            // streams under --memory-limit.
            // SExtractor's cleaning list forgets objects as these say (options of
            // skysift, which keeps every object otherwise).
            "MEMORY_OBJSTACK" => opt("--memory-objstack", one(s)?.into()),
            "MEMORY_BUFSIZE" => opt("--memory-bufsize", one(s)?.into()),
            "MEMORY_PIXSTACK" => {}
            "VERBOSE_TYPE" => match one(s)?.to_ascii_uppercase().as_str() {
                "QUIET" => flags.push("--quiet".to_string()),
                "NORMAL" => {}
                "FULL" => flags.push("--timings".to_string()),
                _ => return Err(s.error("give QUIET, NORMAL or FULL")),
            },
            "NTHREADS" => {
                let n: usize = one(s)?
                    .parse()
                    .map_err(|_| s.error("give a number of threads (0: every core)"))?;
                if n > 0 {
                    opt("--threads", n.to_string());
                }
            }
            // Files read only by what is not implemented; their defaults are harmless.
            "WRITE_XML" => {
                if yes(s)? {
                    flags.push("--write-xml".to_string());
                }
            }
            "XML_NAME" => opt("--xml-name", one(s)?.into()),
            "XSL_URL" => {}
            _ if s.is_default() => {}
            _ => warnings.push(format!(
                "{}: {} {} is not implemented by skysift yet and is ignored",
                s.origin,
                k,
                s.joined()
            )),
        }
    }
    if surface > 0 {
        // skysift's THRESH_TYPE covers both thresholds: a surface brightness is in ADU.
        if plain > 0 {
            let d = get("DETECT_THRESH").expect("counted above");
            return Err(d.error(
                "one threshold is a surface brightness and the other is not: give \
                 DETECT_THRESH and ANALYSIS_THRESH both as surface brightness \
                 (mag/arcsec²,zero-point) or both as numbers",
            ));
        }
        args.extend(["--thresh-type".to_string(), "absolute".to_string()]);
    }
    args.extend(flags);
    // SExtractor's own numbers, where they differ from the exact ones.
    args.extend(["--compat".to_string(), "sextractor".to_string()]);
    Ok((args, warnings))
}

/// A threshold given as a surface brightness `mu` (mag/arcsec²) with zero-point
/// `zp`, as SExtractor takes it: PIXEL_SCALE² · 10^(−0.4 (mu − zp)) ADU per pixel.
fn surface_threshold(
    s: &Setting,
    mu: &str,
    zp: &str,
    scale: Option<&Setting>,
    image: Option<&str>,
    header_suffix: &str,
) -> Result<String> {
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| s.error(format!("{v} is not a number")))
    };
    let (mu, zp) = (num(mu)?, num(zp)?);
    let scale: f64 = match scale {
        Some(p) => one(p)?
            .parse()
            .map_err(|_| p.error("give the pixel size in arcsec"))?,
        None => 1.0,
    };
    let scale = if scale == 0.0 {
        // PIXEL_SCALE 0: the field scale of the image's WCS, as SExtractor takes it
        // (3600" per pixel without a celestial WCS).
        let image = image.ok_or_else(|| {
            s.error("a surface-brightness threshold with PIXEL_SCALE 0 needs the image's WCS: name the image first, or set PIXEL_SCALE (arcsec)")
        })?;
        skysift::world::Wcs::from_file(image, header_suffix, false)?.field_scale_arcsec()
    } else {
        scale
    };
    if scale <= 0.0 {
        return Err(s.error(
            "a surface-brightness threshold needs a positive pixel scale: set PIXEL_SCALE \
             (arcsec), or 0 for the image's WCS",
        ));
    }
    let dm = mu - zp;
    if dm.abs() > 70.0 {
        return Err(s.error(format!(
            "the surface brightness is {dm} mag from the zero-point: more than 70 mag \
             (SExtractor's limit) is not a usable threshold"
        )));
    }
    Ok(format!("{:e}", scale * scale * 10f64.powf(-0.4 * dm)))
}

/// The parameters of a `.param` file as `--params`' list; unknown ones are an error
/// that names the file and the closest known parameters.
fn param_list(path: &Path, s: Option<&Setting>) -> Result<String> {
    let names = config::read_param(path).map_err(|e| match s {
        Some(s) => s.error(e),
        None => e,
    })?;
    if skysift::catalog::select_columns(&names).is_err() {
        let known: Vec<&str> = all_columns().map(|c| c.name).collect();
        for n in &names {
            if skysift::catalog::select_columns(std::slice::from_ref(n)).is_ok() {
                continue;
            }
            let base = n
                .split('(')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            let close = config::closest(&base, known.iter().copied());
            return Err(Error::Config(format!(
                "{}: unknown, repeated or not implemented catalog parameter {n}{}",
                path.display(),
                if close.is_empty() || close[0] == base {
                    String::new()
                } else {
                    format!("; closest: {}", close.join(", "))
                }
            )));
        }
        skysift::catalog::select_columns(&names)?;
    }
    Ok(names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        let t = translate(v.iter().map(OsString::from).collect()).unwrap();
        t.args
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn keywords_become_options_and_skysifts_own_pass_through_after_them() {
        let a = args(&[
            "skysift",
            "img.fits",
            "-DETECT_THRESH",
            "3",
            "-o",
            "c.csv",
            "-CLEAN",
            "N",
        ]);
        let pos = |x: &str| a.iter().position(|y| y == x).unwrap();
        assert_eq!(a[pos("--detect-thresh") + 1], "3");
        assert!(a.contains(&"--no-clean".to_string()));
        assert!(pos("--detect-thresh") < pos("img.fits") && pos("img.fits") < pos("-o"));
        // Without SExtractor's style, nothing changes.
        assert_eq!(
            args(&["skysift", "img.fits", "-o", "c.csv"]),
            ["skysift", "img.fits", "-o", "c.csv"]
        );
        assert!(
            is_keyword("-PHOT_APERTURES")
                && !is_keyword("-o")
                && !is_keyword("--gain")
                && !is_keyword("-5")
        );
    }

    #[test]
    fn unknown_keywords_and_bad_values_name_themselves() {
        let e = translate(
            ["skysift", "i.fits", "-DETECT_TRESH", "3"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        let msg = e.err().unwrap().to_string();
        assert!(
            msg.contains("DETECT_TRESH") && msg.contains("DETECT_THRESH"),
            "{msg}"
        );
        let e = translate(
            ["skysift", "i.fits", "-CLEAN", "maybe"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        assert!(e.err().unwrap().to_string().contains("give Y or N"));
        let t = translate(
            ["skysift", "i.fits", "-WEIGHT_TYPE", "MAP_RMS"]
                .iter()
                .map(OsString::from)
                .collect(),
        )
        .unwrap();
        assert!(
            t.warnings[0].contains("WEIGHT_TYPE MAP_RMS is not implemented"),
            "{:?}",
            t.warnings
        );
    }
}
