//! Command-line definitions and their translation into validated library settings.

use clap::{Parser, ValueEnum};
use skysift::io::catalog::CatalogFormat;
use skysift::run::Settings;
use skysift::{
    Backend, BackgroundParams, Connectivity, Error, ExtractParams, Extractor, Kernel, RmsSource,
    ThreshType,
};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ThreshTypeArg {
    Relative,
    Absolute,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RmsArg {
    /// The global background RMS (SExtractor without weight maps)
    Global,
    /// The interpolated background RMS map, pixel by pixel
    Map,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BackPhotoArg {
    Global,
    Local,
}

/// `--compat`: where to reproduce SExtractor's numbers even where they are wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompatArg {
    Sextractor,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MaskTypeArg {
    None,
    Blank,
    Correct,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum FilterTypeArg {
    Conv,
    Matched,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BackendArg {
    Cpu,
    Gpu,
    Auto,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DrawsArg {
    Sextractor,
    Seeded,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Csv,
    AsciiHead,
    Fits,
    /// SExtractor's FITS_LDAC, what PSFEx and SCAMP read
    FitsLdac,
    /// SExtractor's ASCII: ASCII_HEAD's rows without its header
    Ascii,
    /// SExtractor's ASCII_SKYCAT, for the SkyCat viewer
    AsciiSkycat,
    /// SExtractor's ASCII_VOTABLE: an IVOA VOTable with units and UCDs
    #[value(alias = "ascii-votable")]
    Votable,
    /// No catalog (a run for its check images)
    None,
}

/// skysift: find the stars and galaxies in a sky image and measure them into a
/// SExtractor-style catalog.
///
/// The image (FITS or single-channel TIFF) is background-subtracted on a mesh grid
/// (BACK_SIZE), filtered with a detection kernel (FILTER_NAME), thresholded at
/// DETECT_THRESH times the background RMS, and every group of at least
/// DETECT_MINAREA connected pixels is measured (SExtractor's isophotal parameters:
/// X_IMAGE, FLUX_ISO, A_IMAGE, ...). Defaults are SExtractor's. Positions in the
/// catalog are 1-based, as in SExtractor.
///
/// Example: skysift field.fits -o field.csv --detect-thresh 3 --check-image SEGMENTATION:seg.fits
#[derive(Debug, Parser)]
#[command(
    name = "skysift",
    version,
    about,
    long_about,
    max_term_width = 100,
    args_override_self = true
)]
pub struct Cli {
    /// Image(s) to process: FITS (file.fits, file.fits.gz, file.fits[1] for an
    /// extension) or single-channel TIFF. With several images, -o names a folder that
    /// receives one catalog per image (IMAGE_STEM.fits, or per --catalog-type).
    /// DET.fits,MEAS.fits is dual-image mode (SExtractor's syntax): detection on the
    /// first, fluxes and photometry on the second
    #[arg(required_unless_present = "gpu_info", value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Output catalog; the format follows the extension: .csv, .fits (binary table),
    /// .ldac (FITS_LDAC), .xml or .vot (VOTable), anything else SExtractor's ASCII_HEAD.
    /// STDOUT or - for standard output. A folder (existing, or ending in /) for several
    /// images
    #[arg(
        short = 'o',
        long = "output",
        value_name = "CATALOG",
        required_unless_present_any = ["gpu_info", "catalog_type"]
    )]
    pub output: Option<PathBuf>,

    /// Print the GPU adapter skysift would use and its limits, then exit
    #[arg(long)]
    pub gpu_info: bool,

    /// Catalog format, overriding the extension
    #[arg(long = "catalog-type", value_enum, value_name = "FORMAT")]
    pub catalog_type: Option<FormatArg>,

    /// DETECT_THRESH: detection threshold, in units of the background RMS (relative)
    /// or in ADU (absolute)
    #[arg(long, default_value_t = 1.5, value_name = "SIGMAS")]
    pub detect_thresh: f64,

    /// ANALYSIS_THRESH: threshold of ISOAREA_IMAGE, same units as --detect-thresh
    #[arg(long, value_name = "SIGMAS")]
    pub analysis_thresh: Option<f64>,

    /// THRESH_TYPE: relative to the background RMS, or absolute ADU
    #[arg(long, value_enum, default_value = "relative")]
    pub thresh_type: ThreshTypeArg,

    /// Which RMS a relative threshold multiplies: the global value (SExtractor
    /// without weight maps) or the per-pixel RMS map
    #[arg(long, value_enum, default_value = "global")]
    pub thresh_rms: RmsArg,

    /// DETECT_MINAREA: minimum number of connected pixels above threshold
    #[arg(long, default_value_t = 5, value_name = "PIXELS")]
    pub detect_minarea: usize,

    /// DETECT_MAXAREA: detections of more pixels are dropped (0: no limit)
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub detect_maxarea: usize,

    /// FILTER / FILTER_NAME: 'default' (SExtractor's 3x3 kernel), 'none', or the
    /// path of a kernel: a SExtractor .conv file or a plain-text matrix
    #[arg(long, default_value = "default", value_name = "default|none|PATH")]
    pub filter: String,

    /// conv: convolve and threshold the filtered value (SExtractor); matched: detect on
    /// the matched-filter S/N with the noise map (SEP's default with a noise array)
    #[arg(long, value_enum, default_value = "conv")]
    pub filter_type: FilterTypeArg,

    /// Noise (RMS) map for the matched filter (FITS or TIFF); default: the
    /// background RMS map
    #[arg(long, value_name = "FILE")]
    pub noise_image: Option<String>,

    /// FLAG_IMAGE: up to 4 integer flag maps (FITS, comma-separated), read when the
    /// catalog asks for IMAFLAGS_ISO(n) / NIMAFLAGS_ISO(n)
    #[arg(long, value_name = "FILE[,FILE...]", value_delimiter = ',')]
    pub flag_image: Vec<String>,

    /// FLAG_TYPE of each flag map: or, and (SExtractor's: always 0), and_nonzero (the
    /// documented AND), min, max, most; the last one given applies to the rest
    #[arg(
        long,
        value_name = "TYPE[,TYPE...]",
        value_delimiter = ',',
        default_value = "or"
    )]
    pub flag_type: Vec<String>,

    /// Filter with a Gaussian of this FWHM (pixels) instead of --filter
    #[arg(long, value_name = "PIXELS")]
    pub filter_fwhm: Option<f64>,

    /// BACK_SIZE: background mesh size in pixels, 'N' or 'W,H'
    #[arg(long, default_value = "64", value_name = "N|W,H")]
    pub back_size: String,

    /// BACK_FILTERSIZE: median filter of the mesh grid, in meshes, 'N' or 'W,H'
    #[arg(long, default_value = "3", value_name = "N|W,H")]
    pub back_filtersize: String,

    /// BACK_FILTTHRESH: only meshes differing from the median by at least this (ADU)
    /// are replaced
    #[arg(long, default_value_t = 0.0, value_name = "ADU")]
    pub back_filtthresh: f64,

    /// BACK_TYPE MANUAL with this BACK_VALUE: a constant background (ADU)
    #[arg(long, value_name = "ADU")]
    pub back_value: Option<f64>,

    /// Mask image (FITS or TIFF, same shape): pixels above --mask-thresh are ignored
    #[arg(long, value_name = "FILE")]
    pub mask: Option<String>,

    /// Mask pixels with values above this are bad
    #[arg(long, default_value_t = 0.0, value_name = "VALUE")]
    pub mask_thresh: f64,

    /// Per-pixel detection threshold image (ADU above background), as photutils'
    /// 2-D threshold; replaces --detect-thresh and --analysis-thresh
    #[arg(long, value_name = "FILE")]
    pub threshold_image: Option<String>,

    /// GAIN in e-/ADU for the Poisson term of the errors (0 = none)
    #[arg(long, default_value_t = 0.0)]
    pub gain: f64,

    /// MAG_ZEROPOINT
    #[arg(long, default_value_t = 0.0, value_name = "MAG")]
    pub mag_zeropoint: f64,

    /// SATUR_LEVEL: pixels at or above this value (before background subtraction)
    /// flag their object as saturated (FLAGS 4); an image header's --satur-key
    /// keyword replaces it
    #[arg(long, default_value_t = 50000.0, value_name = "ADU")]
    pub satur_level: f64,

    /// SATUR_KEY: the FITS header keyword whose value, where present, replaces
    /// --satur-level for that image, as in SExtractor ('' to always use the option)
    #[arg(long, default_value = "SATURATE", value_name = "KEYWORD")]
    pub satur_key: String,

    /// GAIN_KEY: the FITS header keyword whose value, where present, replaces --gain
    /// for that image, as in SExtractor ('' to always use the option)
    #[arg(long, default_value = "GAIN", value_name = "KEYWORD")]
    pub gain_key: String,

    /// DEBLEND_NTHRESH: number of deblending sub-thresholds (1-64)
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub deblend_nthresh: usize,

    /// DEBLEND_MINCONT: minimum contrast for a branch to become its own object
    /// (fraction of the object's flux; 1 turns deblending off)
    #[arg(long, default_value_t = 0.005, value_name = "FRACTION")]
    pub deblend_mincont: f64,

    /// The most nodes one level of a detection's deblending tree may hold, as SEP's
    /// sub-object limit and SExtractor's fixed 1024: a detection that reaches it is
    /// kept whole with FLAGS 64 (default: no limit)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sub_object_limit: Option<u64>,

    /// Where deblending's random draws come from: SExtractor's (glibc's rand() from
    /// seed 1, in the order the scan completes the blends: SExtractor's pieces) or
    /// seeded per object (an object's pieces independent of every other object)
    #[arg(long, value_enum, default_value = "sextractor")]
    pub deblend_draws: DrawsArg,

    /// MEMORY_OBJSTACK: let SExtractor's cleaning list hold at most N objects (the one
    /// whose rows end first leaves when it is full), as SExtractor does (default: no
    /// limit, every object stays)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_objstack: Option<u64>,

    /// MEMORY_BUFSIZE: on images taller than a buffer of LINES lines, objects leave
    /// the cleaning list as their rows scroll out of it, as in SExtractor (default:
    /// every object stays, whatever the image's height)
    #[arg(long, value_name = "LINES", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_bufsize: Option<u64>,

    /// CLEAN N: keep spurious detections in the wings of bright objects
    #[arg(long)]
    pub no_clean: bool,

    /// CLEAN_PARAM: Moffat beta of the cleaning model (0.1-10)
    #[arg(long, default_value_t = 1.0, value_name = "BETA")]
    pub clean_param: f64,

    /// Pixel connectivity: 8 (SExtractor) or 4
    #[arg(long, default_value = "8", value_parser = ["4", "8"])]
    pub connectivity: String,

    /// Check image, TYPE:PATH; repeatable. TYPE is one of BACKGROUND, BACKGROUND_RMS,
    /// MINIBACKGROUND, MINIBACK_RMS, -BACKGROUND, FILTERED, SEGMENTATION, OBJECTS,
    /// -OBJECTS, APERTURES; SEGMENTATION to a .tif/.tiff path is written as a 32-bit TIFF,
    /// any type to a .png path as a picture
    #[arg(
        long = "check-image",
        value_name = "TYPE:PATH",
        allow_hyphen_values = true
    )]
    pub check_image: Vec<String>,

    /// Write pictures (PNG) into this folder: data.png (asinh stretch),
    /// background.png, rms.png, segmentation.png and sources.png (ellipses)
    #[arg(long, value_name = "DIR")]
    pub png_dir: Option<PathBuf>,

    /// Also write the objects' ellipses (3A x 3B at THETA) as a DS9 region file
    #[arg(long, value_name = "FILE")]
    pub regions: Option<PathBuf>,

    /// PHOT_APERTURES: aperture diameters in pixels, for FLUX_APER(n) and MAG_APER(n)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5",
        value_name = "D,D..."
    )]
    pub phot_apertures: Vec<f64>,

    /// PHOT_AUTOPARAMS: Kron factor and minimum radius of FLUX_AUTO
    #[arg(long, default_value = "2.5,3.5", value_name = "K,RMIN")]
    pub phot_autoparams: String,

    /// PHOT_PETROPARAMS: Petrosian factor and minimum radius of FLUX_PETRO
    #[arg(long, default_value = "2.0,3.5", value_name = "K,RMIN")]
    pub phot_petroparams: String,

    /// PHOT_AUTOAPERS: minimum diameters (pixels) of the AUTO and Petrosian apertures,
    /// first and second pass
    #[arg(long, default_value = "0,0", value_name = "D1,D2")]
    pub phot_autoapers: String,

    /// PHOT_FLUXFRAC: fractions of FLUX_AUTO for FLUX_RADIUS(n)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.5",
        value_name = "F,F..."
    )]
    pub phot_fluxfrac: Vec<f64>,

    /// MASK_TYPE: how the pixels of other objects enter apertures: correct (their
    /// mirror through the centre, SExtractor's default), blank (0) or none
    #[arg(long, value_enum, default_value = "correct")]
    pub mask_type: MaskTypeArg,

    /// PIXEL_SCALE in arcsec for MU_MAX and MU_THRESHOLD (0: from the WCS; without a
    /// celestial WCS, 3600 as SExtractor)
    #[arg(long, default_value_t = 0.0, value_name = "ARCSEC")]
    pub pixel_scale: f64,

    /// BACKPHOTO_TYPE: global (the background map) or local (plus the residual of an
    /// annulus around each object) for the photometry
    #[arg(long, value_enum, default_value = "global")]
    pub backphoto_type: BackPhotoArg,

    /// BACKPHOTO_THICK: the LOCAL annulus' thickness in pixels
    #[arg(long, default_value_t = 24, value_name = "PIXELS")]
    pub backphoto_thick: usize,

    /// WRITE_XML: write the run's metadata (images, detections, background,
    /// thresholds, settings) as a VOTable document, as SExtractor's XML
    #[arg(long)]
    pub write_xml: bool,

    /// XML_NAME: the file of --write-xml
    #[arg(long, default_value = "sex.xml", value_name = "FILE")]
    pub xml_name: PathBuf,

    /// The SExtractor configuration file given with -c (set by the command line's
    /// translation; for the XML's Prefs_Name)
    #[arg(long, hide = true)]
    pub prefs_name: Option<String>,

    /// HEADER_SUFFIX: the external header beside each image (SCAMP's `IMAGE.head`)
    /// whose cards replace the image's WCS keywords ("" or "none": none)
    #[arg(long, default_value = ".head", value_name = "SUFFIX")]
    pub header_suffix: String,

    /// Apply SIP distortion (A_p_q, B_p_q) to world coordinates; SExtractor ignores
    /// it, and so does skysift by default, with a warning
    #[arg(long)]
    pub sip: bool,

    /// Reproduce SExtractor where it is wrong: `sextractor` transforms second moments
    /// to world units with SExtractor 2.25's formula (cross terms without their factor
    /// 2: A_WORLD, B_WORLD, THETA_WORLD, ... as it writes them); default exact
    #[arg(long, value_enum, value_name = "WHAT")]
    pub compat: Option<CompatArg>,

    /// SEEING_FWHM in arcsec: the seeing of CLASS_STAR
    #[arg(long, default_value_t = 1.2, value_name = "ARCSEC")]
    pub seeing_fwhm: f64,

    /// STARNNW_NAME: SExtractor's neural network file for CLASS_STAR (default: the
    /// one installed with SExtractor, /usr/share/source-extractor/default.nnw)
    #[arg(long, value_name = "FILE")]
    pub starnnw_name: Option<PathBuf>,

    /// Catalog columns, comma-separated SExtractor names, vectors as NAME(n) (default:
    /// every isophotal column; photometry columns are asked for by name)
    #[arg(long, value_name = "NAME,NAME...")]
    pub params: Vec<String>,

    /// Stream the image from disk in strips of this many rows (bounded memory; every
    /// output equals the whole-image run's). FITS image, mask, threshold and noise
    /// images; any backend, threshold and filter; check images as FITS (written after
    /// the run, reading the image again)
    #[arg(long, value_name = "ROWS")]
    pub stream_rows: Option<usize>,

    /// Stream the image with strips sized to keep the working memory under this many
    /// MiB (see --stream-rows)
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<f64>,

    /// Worker threads (default: all cores)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Where the per-pixel stages (mesh statistics, background subtraction,
    /// filtering, thresholding, labelling) run: gpu (fails if there is no adapter),
    /// cpu, or auto (a hardware GPU if there is one, else the CPU)
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,

    /// No summary line
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the time spent in each stage
    #[arg(long)]
    pub timings: bool,
}

/// The most worker threads --threads accepts.
pub const MAX_THREADS: usize = 1024;

/// Parses `N` or `W,H` into a pair.
pub fn parse_pair(name: &'static str, s: &str) -> Result<(usize, usize), Error> {
    let bad = || Error::InvalidParam {
        name,
        value: s.to_string(),
        reason: "expected a positive integer N or a pair W,H".into(),
    };
    let parts: Vec<&str> = s.split(',').map(|p| p.trim()).collect();
    let nums: Vec<usize> = parts
        .iter()
        .map(|p| p.parse::<usize>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match nums.as_slice() {
        [n] if *n > 0 => Ok((*n, *n)),
        [a, b] if *a > 0 && *b > 0 => Ok((*a, *b)),
        _ => Err(bad()),
    }
}

/// Parses `A,B` into a pair of numbers.
pub fn parse_fpair(name: &'static str, s: &str) -> Result<(f64, f64), Error> {
    let bad = || Error::InvalidParam {
        name,
        value: s.to_string(),
        reason: "expected two numbers A,B".into(),
    };
    match s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Vec<_>>()[..]
    {
        [Ok(a), Ok(b)] => Ok((a, b)),
        _ => Err(bad()),
    }
}

impl Cli {
    pub fn background_params(&self) -> Result<BackgroundParams, Error> {
        let p = BackgroundParams {
            mesh_size: parse_pair("--back-size", &self.back_size)?,
            filter_size: parse_pair("--back-filtersize", &self.back_filtersize)?,
            filter_thresh: self.back_filtthresh,
            manual_value: self.back_value,
        };
        p.validate()?;
        Ok(p)
    }

    pub fn extract_params(&self) -> Result<ExtractParams, Error> {
        let kernel = if let Some(fwhm) = self.filter_fwhm {
            Some(Kernel::gaussian(fwhm)?)
        } else {
            match self.filter.as_str() {
                "default" => Some(Kernel::default_3x3()),
                "none" => None,
                path => Some(Kernel::from_file(std::path::Path::new(path))?),
            }
        };
        let want =
            skysift::photometry::Wanted::from_columns(self.params().iter().map(|s| s.as_str()));
        let mut p = ExtractParams {
            detect_thresh: self.detect_thresh,
            analysis_thresh: self.analysis_thresh.unwrap_or(self.detect_thresh),
            thresh_type: match self.thresh_type {
                ThreshTypeArg::Relative => ThreshType::Relative,
                ThreshTypeArg::Absolute => ThreshType::Absolute,
            },
            rms_source: match self.thresh_rms {
                RmsArg::Global => RmsSource::Global,
                RmsArg::Map => RmsSource::Map,
            },
            minarea: self.detect_minarea,
            kernel,
            filter_type: if self.filter_type == FilterTypeArg::Matched {
                skysift::params::FilterType::Matched
            } else {
                skysift::params::FilterType::Conv
            },
            connectivity: if self.connectivity == "4" {
                Connectivity::Four
            } else {
                Connectivity::Eight
            },
            gain: self.gain,
            mag_zeropoint: self.mag_zeropoint,
            satur_level: self.satur_level,
            deblend: skysift::params::DeblendParams {
                nthresh: self.deblend_nthresh,
                mincont: self.deblend_mincont,
                sub_object_limit: self.sub_object_limit.map(|n| n as usize),
                draws: match self.deblend_draws {
                    DrawsArg::Sextractor => skysift::params::DeblendDraws::Sextractor,
                    DrawsArg::Seeded => skysift::params::DeblendDraws::Seeded,
                },
            },
            clean: !self.no_clean,
            clean_param: self.clean_param,
            memory_objstack: self.memory_objstack.map(|n| n as usize),
            memory_bufsize: self.memory_bufsize.map(|n| n as usize),
            world: None,
            flag_types: self.flag_types()?,
            maxarea: (self.detect_maxarea > 0).then_some(self.detect_maxarea),
            phot: skysift::photometry::PhotParams {
                apertures: self.phot_apertures.clone(),
                auto_params: parse_fpair("--phot-autoparams", &self.phot_autoparams)?,
                petro_params: parse_fpair("--phot-petroparams", &self.phot_petroparams)?,
                auto_apers: parse_fpair("--phot-autoapers", &self.phot_autoapers)?,
                flux_frac: self.phot_fluxfrac.clone(),
                mask_type: match self.mask_type {
                    MaskTypeArg::None => skysift::photometry::MaskType::None,
                    MaskTypeArg::Blank => skysift::photometry::MaskType::Blank,
                    MaskTypeArg::Correct => skysift::photometry::MaskType::Correct,
                },
                pixel_scale: self.pixel_scale,
                backphoto: match self.backphoto_type {
                    BackPhotoArg::Global => skysift::photometry::BackPhoto::Global,
                    BackPhotoArg::Local => skysift::photometry::BackPhoto::Local,
                },
                backphoto_thick: self.backphoto_thick,
                seeing_fwhm: self.seeing_fwhm,
                star_nnw: None,
                want,
            },
        };
        if want.class {
            let default = std::path::Path::new(skysift::photometry::DEBIAN_NNW);
            p.phot.star_nnw = match &self.starnnw_name {
                Some(f) => Some(skysift::photometry::Nnw::from_file(f)?),
                None if default.exists() => Some(skysift::photometry::Nnw::from_file(default)?),
                None => None,
            };
        }
        p.validate()?;
        if let Some(t) = self.threads {
            if t == 0 {
                return Err(Error::InvalidParam {
                    name: "--threads",
                    value: "0".into(),
                    reason: "must be at least 1 (leave it out to use all cores)".into(),
                });
            }
        }
        Ok(p)
    }

    /// Checks the options that are not library settings: each value within its meaning.
    pub fn validate_inputs(&self) -> Result<(), Error> {
        if !self.mask_thresh.is_finite() {
            return Err(Error::InvalidParam {
                name: "--mask-thresh",
                value: self.mask_thresh.to_string(),
                reason: "must be a finite number (mask pixels above it are bad; default 0)".into(),
            });
        }
        if let Some(m) = self.memory_limit {
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::InvalidParam {
                    name: "--memory-limit",
                    value: m.to_string(),
                    reason: "must be a positive number of MiB, e.g. 1024".into(),
                });
            }
        }
        if self.stream_rows == Some(0) {
            return Err(Error::InvalidParam {
                name: "--stream-rows",
                value: "0".into(),
                reason: "must be at least 1 row".into(),
            });
        }
        if self.noise_image.is_some() && self.filter_type != FilterTypeArg::Matched {
            return Err(Error::InvalidParam {
                name: "--noise-image",
                value: self.noise_image.clone().unwrap_or_default(),
                reason: "only the matched filter reads a noise image: add --filter-type matched, \
                         or leave out --noise-image"
                    .into(),
            });
        }
        Ok(())
    }

    /// The extractor: background and extraction settings and the backend.
    pub fn extractor(&self) -> Result<Extractor, Error> {
        let backend = match self.backend {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Gpu => Backend::Gpu,
            BackendArg::Auto => Backend::Auto,
        };
        Ok(Extractor::new(
            self.background_params()?,
            self.extract_params()?,
            backend,
        ))
    }

    /// What the run does besides extracting: images, outputs, side images, streaming.
    /// The --params names, split at the commas outside parentheses (VIGNET(35,35)).
    pub fn params(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.params {
            let (mut depth, mut cur) = (0i32, String::new());
            for c in p.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if c == ',' && depth == 0 {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.push(c);
                }
            }
            out.push(cur);
        }
        out.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// What the world columns and the WCS's pixel scale need, when the catalog asks
    /// for them: a world column, or PIXEL_SCALE 0 with CLASS_STAR or MU_*.
    fn world_request(&self) -> Option<skysift::run::WorldRequest> {
        let params = self.params();
        let world_column = params.iter().any(|p| {
            let name = p.split('(').next().unwrap_or("").trim();
            skysift::catalog::WORLD_COLUMNS
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(name))
        });
        let scale = self.pixel_scale == 0.0
            && params.iter().any(|p| {
                let p = p.to_ascii_uppercase();
                p.starts_with("CLASS_STAR") || p.starts_with("MU_")
            });
        (world_column || scale).then(|| skysift::run::WorldRequest {
            header_suffix: match self.header_suffix.as_str() {
                "none" | "NONE" => String::new(),
                s => s.to_string(),
            },
            sip: self.sip,
            transform: match self.compat {
                Some(CompatArg::Sextractor) => skysift::world::MomentTransform::Sextractor,
                None => skysift::world::MomentTransform::Exact,
            },
            pixel_scale: self.pixel_scale,
        })
    }

    /// How many flag maps are read: SExtractor's rule, the fewer of the files and the
    /// largest IMAFLAGS_ISO(n) / NIMAFLAGS_ISO(n) the catalog asks for.
    fn flag_maps(&self) -> usize {
        let asked = self
            .params()
            .iter()
            .filter_map(|p| {
                let up = p.to_ascii_uppercase();
                let name = up.split('(').next().unwrap_or("").trim().to_string();
                (name == "IMAFLAGS_ISO" || name == "NIMAFLAGS_ISO").then(|| {
                    up.split_once('(')
                        .and_then(|(_, r)| r.trim_end_matches(')').trim().parse().ok())
                        .unwrap_or(1usize)
                })
            })
            .max()
            .unwrap_or(0);
        asked.min(self.flag_image.len())
    }

    /// The FLAG_TYPE of each flag map read.
    fn flag_types(&self) -> Result<Vec<skysift::imaflags::FlagType>, Error> {
        (0..self.flag_maps())
            .map(|m| {
                let t = self
                    .flag_type
                    .get(m)
                    .or(self.flag_type.last())
                    .map_or("or", |s| s.as_str());
                skysift::imaflags::FlagType::parse(t).ok_or_else(|| Error::InvalidParam {
                    name: "--flag-type",
                    value: t.to_string(),
                    reason: "give or, and, and_nonzero, min, max or most".into(),
                })
            })
            .collect()
    }

    /// The images, with dual-image mode's `DET,MEAS` split (a name with a comma that
    /// is not a file): the detection images and the measurement image.
    fn images(&self) -> (Vec<String>, Option<String>) {
        match &self.images[..] {
            [one] if one.contains(',') && !std::path::Path::new(one).exists() => {
                let (det, meas) = one.split_once(',').expect("a comma");
                (vec![det.to_string()], Some(meas.to_string()))
            }
            _ => (self.images.clone(), None),
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            images: self.images().0,
            output: self.output.clone(),
            catalog_type: self.catalog_type.map(|t| match t {
                FormatArg::Csv => CatalogFormat::Csv,
                FormatArg::AsciiHead => CatalogFormat::AsciiHead,
                FormatArg::Fits => CatalogFormat::Fits,
                FormatArg::FitsLdac => CatalogFormat::FitsLdac,
                FormatArg::Ascii => CatalogFormat::Ascii,
                FormatArg::AsciiSkycat => CatalogFormat::AsciiSkycat,
                FormatArg::Votable => CatalogFormat::Votable,
                FormatArg::None => CatalogFormat::None,
            }),
            params: self.params(),
            check_images: self.check_image.clone(),
            png_dir: self.png_dir.clone(),
            regions: self.regions.clone(),
            inputs: skysift::FileInputs {
                mask: self.mask.clone(),
                mask_thresh: self.mask_thresh as f32,
                threshold_image: self.threshold_image.clone(),
                noise: self.noise_image.clone(),
                flag_images: self.flag_image[..self.flag_maps()].to_vec(),
                measurement: self.images().1,
                memory_limit_mib: self.memory_limit,
                stream_rows: self.stream_rows,
            },
            filter_file: (self.filter_fwhm.is_none()
                && !matches!(self.filter.as_str(), "default" | "none"))
            .then(|| PathBuf::from(&self.filter)),
            satur_key: Some(self.satur_key.clone()).filter(|k| !k.is_empty()),
            gain_key: Some(self.gain_key.clone()).filter(|k| !k.is_empty()),
            world: self.world_request(),
            xml: self.write_xml.then(|| self.xml_name.clone()),
            prefs_name: self.prefs_name.clone(),
            quiet: self.quiet,
            timings: self.timings,
        }
    }
}

/// The command's option for each SExtractor keyword (or skysift setting) that the
/// library's errors name.
const FLAGS: &[(&str, &str)] = &[
    ("BACK_SIZE", "--back-size"),
    ("BACK_FILTERSIZE", "--back-filtersize"),
    ("BACK_FILTTHRESH", "--back-filtthresh"),
    ("BACK_VALUE", "--back-value"),
    ("DETECT_THRESH", "--detect-thresh"),
    ("ANALYSIS_THRESH", "--analysis-thresh"),
    ("THRESH_TYPE", "--thresh-type"),
    ("FILTER_TYPE", "--filter-type"),
    ("FILTER_NAME", "--filter"),
    ("FILTER_FWHM", "--filter-fwhm"),
    ("DETECT_MINAREA", "--detect-minarea"),
    ("GAIN", "--gain"),
    ("MAG_ZEROPOINT", "--mag-zeropoint"),
    ("SATUR_LEVEL", "--satur-level"),
    ("SATUR_KEY", "--satur-key"),
    ("GAIN_KEY", "--gain-key"),
    ("DEBLEND_NTHRESH", "--deblend-nthresh"),
    ("DEBLEND_MINCONT", "--deblend-mincont"),
    ("CLEAN_PARAM", "--clean-param"),
    ("PHOT_APERTURES", "--phot-apertures"),
    ("PHOT_AUTOPARAMS", "--phot-autoparams"),
    ("PHOT_PETROPARAMS", "--phot-petroparams"),
    ("PHOT_AUTOAPERS", "--phot-autoapers"),
    ("PHOT_FLUXFRAC", "--phot-fluxfrac"),
    ("PIXEL_SCALE", "--pixel-scale"),
    ("SEEING_FWHM", "--seeing-fwhm"),
    ("BACKPHOTO_THICK", "--backphoto-thick"),
    ("STARNNW_NAME", "--starnnw-name"),
    ("CHECKIMAGE_TYPE", "--check-image"),
    ("PARAMETERS_NAME", "--params"),
    ("STREAM_ROWS", "--stream-rows"),
    ("MEMORY_LIMIT", "--memory-limit"),
];

/// The error as the command says it: the library names SExtractor's keyword, the
/// command adds its own option ("invalid value for --gain (GAIN): ...").
pub fn message(e: &skysift::Error) -> String {
    let flag = |keyword: &str| FLAGS.iter().find(|f| f.0 == keyword).map(|f| f.1);
    match e {
        skysift::Error::InvalidParam {
            name,
            value,
            reason,
        } => match flag(name) {
            Some(f) => format!("invalid value for {f} ({name}): {value} ({reason})"),
            None => e.to_string(),
        },
        skysift::Error::ObjectTooLarge { .. } => format!("{e} (--memory-limit)"),
        _ => e.to_string(),
    }
}
