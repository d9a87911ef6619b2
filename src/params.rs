//! Parameters of every stage, with SExtractor's defaults and one `validate()` at the
//! public boundary. Names follow SExtractor's configuration keywords.

use crate::error::{Error, Result};
use crate::kernel::Kernel;

/// Deblending parameters (SExtractor keywords).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeblendParams {
    /// DEBLEND_NTHRESH (default 32, 1..=64).
    pub nthresh: usize,
    /// DEBLEND_MINCONT (default 0.005; 1 turns deblending off).
    pub mincont: f64,
    /// The most nodes one level of a detection's tree may hold (SEP's sub-object
    /// limit; SExtractor's fixed 1024): a detection whose tree reaches it is kept
    /// whole with FLAGS 64, as SExtractor does. None (the default): no limit.
    pub sub_object_limit: Option<usize>,
    /// Where the random numbers that share out a blend's pixels come from.
    pub draws: DeblendDraws,
}

/// The random numbers of deblending (spec §4.5.2, §4.5.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeblendDraws {
    /// SExtractor's: glibc's `rand()` stream from seed 1, consumed by the blends in
    /// the order the scan completes them (whatever the thread count or strips).
    #[default]
    Sextractor,
    /// Seeded per object by its first pixel: an object's pieces do not depend on any
    /// other object (a cut-out gives the same pieces), but are not SExtractor's.
    Seeded,
}

impl Default for DeblendParams {
    fn default() -> Self {
        DeblendParams {
            nthresh: 32,
            mincont: 0.005,
            sub_object_limit: None,
            draws: DeblendDraws::Sextractor,
        }
    }
}

/// Background estimation (SExtractor `BACK_*` keywords).
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundParams {
    /// `BACK_SIZE`: mesh width and height in pixels (default 64, 64).
    pub mesh_size: (usize, usize),
    /// `BACK_FILTERSIZE`: median-filter width and height in meshes (default 3, 3).
    pub filter_size: (usize, usize),
    /// `BACK_FILTTHRESH`: a mesh is replaced by its filtered value only if it differs
    /// from it by at least this much (ADU; default 0 = always).
    pub filter_thresh: f64,
    /// `BACK_TYPE MANUAL` + `BACK_VALUE`: a constant background instead of the
    /// estimated one (the RMS is still estimated from the meshes).
    pub manual_value: Option<f64>,
}

impl Default for BackgroundParams {
    fn default() -> Self {
        BackgroundParams {
            mesh_size: (64, 64),
            filter_size: (3, 3),
            filter_thresh: 0.0,
            manual_value: None,
        }
    }
}

/// Values at or beyond 1e30 are outside every option's meaning: pixels at or below
/// -1e30 are bad pixels (SExtractor's convention), and f32 arithmetic on them
/// overflows.
pub const BIG: f64 = 1e30;

impl BackgroundParams {
    pub fn validate(&self) -> Result<()> {
        let (w, h) = self.mesh_size;
        if w == 0 || h == 0 {
            return Err(Error::param(
                "BACK_SIZE",
                format!("{w},{h}"),
                "mesh sizes must be at least 1 pixel (SExtractor's default is 64)",
            ));
        }
        let (fw, fh) = self.filter_size;
        if fw == 0 || fh == 0 {
            return Err(Error::param(
                "BACK_FILTERSIZE",
                format!("{fw},{fh}"),
                "filter sizes must be at least 1 mesh (1 = no filtering; default 3)",
            ));
        }
        if !(self.filter_thresh >= 0.0 && self.filter_thresh < BIG) {
            return Err(Error::param(
                "BACK_FILTTHRESH",
                self.filter_thresh,
                "must be between 0 and 1e30 ADU",
            ));
        }
        if let Some(v) = self.manual_value {
            if !(v.abs() < BIG) {
                return Err(Error::param(
                    "BACK_VALUE",
                    v,
                    "must be between -1e30 and 1e30 ADU (values at or below -1e30 mark bad pixels)",
                ));
            }
        }
        Ok(())
    }
}

/// How the detection threshold is expressed (SExtractor `THRESH_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThreshType {
    /// Multiples of the background RMS (`RELATIVE`, the default).
    #[default]
    Relative,
    /// ADU above the background (`ABSOLUTE`).
    Absolute,
}

/// Which RMS a relative threshold multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RmsSource {
    /// The global background RMS (SExtractor without weight maps; the default).
    #[default]
    Global,
    /// The interpolated per-pixel RMS map (SEP with `err=bkg.rms()`).
    Map,
}

/// How the detection image is filtered (SEP's `filter_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FilterType {
    /// Convolution with the normalised kernel; detection on filtered value > threshold
    /// (SExtractor; the default).
    #[default]
    Conv,
    /// Matched filter with a per-pixel noise map: detection on
    /// S/N = Σk·f/σ² / √(Σk²/σ²) > DETECT_THRESH (SEP's default when it has a noise
    /// array). Relative thresholds only.
    Matched,
}

/// Pixel connectivity for labelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Connectivity {
    Four,
    /// 8-connectivity, SExtractor's (the default).
    #[default]
    Eight,
}

/// Parameters of detection and measurement (SExtractor keywords in the comments).
#[derive(Clone, Debug)]
pub struct ExtractParams {
    /// `DETECT_THRESH` (default 1.5).
    pub detect_thresh: f64,
    /// `ANALYSIS_THRESH` (default 1.5): the threshold of ISOAREA_IMAGE.
    pub analysis_thresh: f64,
    /// `THRESH_TYPE` (default relative).
    pub thresh_type: ThreshType,
    /// What a relative threshold multiplies (default the global RMS).
    pub rms_source: RmsSource,
    /// `DETECT_MINAREA` (default 5 pixels).
    pub minarea: usize,
    /// The detection kernel (`FILTER`/`FILTER_NAME`); `None` = no filtering.
    pub kernel: Option<Kernel>,
    /// Convolution or matched filter (default convolution).
    pub filter_type: FilterType,
    /// Pixel connectivity (default 8).
    pub connectivity: Connectivity,
    /// `GAIN` in e-/ADU; 0 = no Poisson term (default 0).
    pub gain: f64,
    /// `MAG_ZEROPOINT` (default 0).
    pub mag_zeropoint: f64,
    /// `SATUR_LEVEL` in ADU before background subtraction (default 50000).
    pub satur_level: f64,
    /// `DEBLEND_NTHRESH`, `DEBLEND_MINCONT` (default 32, 0.005; MINCONT 1 = off).
    pub deblend: DeblendParams,
    /// `CLEAN` (default on).
    pub clean: bool,
    /// `CLEAN_PARAM`: the Moffat β of the cleaning model (default 1.0).
    pub clean_param: f64,
    /// The photometry beyond the isophote (PHOT_*, MASK_TYPE; none by default).
    pub phot: crate::photometry::PhotParams,
    /// SExtractor's MEMORY_OBJSTACK: the cleaning list holds at most this many
    /// objects, the one whose rows end first leaving when it is full (spec §4.6.3 step
    /// 3). None (the default): no limit.
    pub memory_objstack: Option<usize>,
    /// SExtractor's MEMORY_BUFSIZE: on an image taller than a buffer of this many
    /// lines, objects leave the cleaning list when their rows scroll out of it (spec
    /// §4.6.3 step 8). None (the default): every object stays.
    pub memory_bufsize: Option<usize>,
    /// The world coordinate system and settings of the world columns (X_WORLD,
    /// ALPHA_J2000, A_WORLD, ...; [`crate::world`]), and of the pixel scale of
    /// MU_MAX, MU_THRESHOLD and CLASS_STAR when PIXEL_SCALE is 0. None: no world
    /// columns, and those take the scale of an image without a WCS.
    pub world: Option<std::sync::Arc<crate::world::WorldSettings>>,
    /// FLAG_TYPE of each flag map read beside the image (FLAG_IMAGE; at most 4; empty:
    /// none): IMAFLAGS_ISO and NIMAFLAGS_ISO ([`crate::imaflags`]).
    pub flag_types: Vec<crate::imaflags::FlagType>,
    /// `DETECT_MAXAREA`: detections of more pixels are dropped (None, SExtractor's 0:
    /// no limit).
    pub maxarea: Option<usize>,
}

impl Default for ExtractParams {
    fn default() -> Self {
        ExtractParams {
            detect_thresh: 1.5,
            analysis_thresh: 1.5,
            thresh_type: ThreshType::Relative,
            rms_source: RmsSource::Global,
            minarea: 5,
            kernel: Some(Kernel::default_3x3()),
            filter_type: FilterType::Conv,
            connectivity: Connectivity::Eight,
            gain: 0.0,
            mag_zeropoint: 0.0,
            satur_level: 50000.0,
            deblend: DeblendParams::default(),
            clean: true,
            clean_param: 1.0,
            phot: Default::default(),
            memory_objstack: None,
            memory_bufsize: None,
            world: None,
            flag_types: Vec::new(),
            maxarea: None,
        }
    }
}

impl ExtractParams {
    /// A threshold `t` (DETECT_THRESH or ANALYSIS_THRESH) in ADU: relative ones times
    /// the global background RMS `global_rms`.
    pub fn thresh_adu(&self, t: f64, global_rms: f64) -> f64 {
        match self.thresh_type {
            ThreshType::Relative => t * global_rms,
            ThreshType::Absolute => t,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.phot.validate()?;
        if self.flag_types.len() > crate::imaflags::MAX_MAPS {
            return Err(Error::param(
                "FLAG_IMAGE",
                self.flag_types.len(),
                "at most 4 flag images can be combined",
            ));
        }
        let positive = |name: &'static str, v: f64| {
            if v > 0.0 && v < BIG {
                Ok(())
            } else {
                Err(Error::param(name, v, "must be a number > 0 and < 1e30"))
            }
        };
        match self.thresh_type {
            ThreshType::Relative => {
                positive("DETECT_THRESH", self.detect_thresh)?;
                positive("ANALYSIS_THRESH", self.analysis_thresh)?;
            }
            ThreshType::Absolute => {
                for (n, v) in [
                    ("DETECT_THRESH", self.detect_thresh),
                    ("ANALYSIS_THRESH", self.analysis_thresh),
                ] {
                    if !(v.abs() < BIG) {
                        return Err(Error::param(
                            n,
                            v,
                            "an absolute threshold must be between -1e30 and 1e30 ADU",
                        ));
                    }
                }
            }
        }
        if self.filter_type == FilterType::Matched && self.thresh_type != ThreshType::Relative {
            return Err(Error::param(
                "FILTER_TYPE",
                "matched",
                "the matched filter detects on S/N, so it needs THRESH_TYPE RELATIVE",
            ));
        }
        if self.minarea == 0 {
            return Err(Error::param(
                "DETECT_MINAREA",
                0,
                "must be at least 1 pixel (SExtractor's default is 5)",
            ));
        }
        if !(self.gain == 0.0 || (self.gain >= 1e-30 && self.gain <= BIG)) {
            return Err(Error::param(
                "GAIN",
                self.gain,
                "must be 0 (no Poisson noise term) or between 1e-30 and 1e30 e-/ADU",
            ));
        }
        if !(self.mag_zeropoint.abs() <= 1000.0) {
            return Err(Error::param(
                "MAG_ZEROPOINT",
                self.mag_zeropoint,
                "must be between -1000 and 1000 mag",
            ));
        }
        positive("SATUR_LEVEL", self.satur_level)?;
        if !(1..=64).contains(&self.deblend.nthresh) {
            return Err(Error::param(
                "DEBLEND_NTHRESH",
                self.deblend.nthresh,
                "must be between 1 and 64 (default 32)",
            ));
        }
        if !(self.deblend.mincont >= 0.0 && self.deblend.mincont <= 1.0) {
            return Err(Error::param(
                "DEBLEND_MINCONT",
                self.deblend.mincont,
                "must be between 0 and 1 (default 0.005; 1 turns deblending off)",
            ));
        }
        if !(self.clean_param >= 0.1 && self.clean_param <= 10.0) {
            return Err(Error::param(
                "CLEAN_PARAM",
                self.clean_param,
                "must be between 0.1 and 10 (default 1.0)",
            ));
        }
        Ok(())
    }
}
