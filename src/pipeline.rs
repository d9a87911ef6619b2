//! The extractor: runs background, filtering, thresholding, labelling and measurement
//! on a backend and returns the background, the segmentation and the catalog.

use crate::backend::{Backend, Resolved};
use crate::background::Background;
use crate::catalog::Catalog;
use crate::convolve::convolve;
pub use crate::detect::cpu::matched_filter;
use crate::detect::cpu::subtract_rows;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::image::{Image, Mask};
use crate::label::Segmentation;
use crate::params::{BackgroundParams, ExtractParams};
use crate::spill::SegmentRuns;
use crate::stream::{ImageRows, InMemory, MaskInput, RowSource, Sides, Sinks};
use std::sync::Arc;

/// Everything an extraction produces.
#[derive(Clone, Debug)]
pub struct Extraction {
    /// The background model (mesh grid, global values, maps on demand).
    pub background: Background,
    /// The detection kernel that was used (None: no filtering).
    pub kernel: Option<crate::kernel::Kernel>,
    /// The background-subtracted image, once built (see [`Extraction::subtracted`]).
    subtracted: std::sync::OnceLock<Image>,
    /// What the subtracted image is built from when the GPU subtracted the background
    /// (the raw image and the mask); None when the CPU built it during the run.
    pending: Option<(Image, Option<Vec<bool>>)>,
    /// The objects as pixel runs; label k + 1 is catalog row k.
    pub segmentation: Segmentation,
    /// The measured objects.
    pub catalog: Catalog,
    /// Wall time of each stage, in order (stage name, seconds).
    pub timings: Vec<(&'static str, f64)>,
    /// Invalid pixels (NaN, Inf, <= -1e30) and the filtered pixels whose kernel
    /// footprint touches one, which cannot be detected ([`crate::convolve::invalid_spread`]).
    pub invalid_spread: (u64, u64),
}

impl Extraction {
    /// The background-subtracted image (masked pixels 0, invalid pixels NaN). On the
    /// CPU path it is built during the run; on the GPU path, where the device
    /// subtracts the background, it is built here on first use, with the same f32
    /// arithmetic, so it equals the CPU path's.
    pub fn subtracted(&self) -> &Image {
        self.subtracted.get_or_init(|| {
            let (image, mask) = self
                .pending
                .as_ref()
                .expect("an extraction keeps its subtracted image or what builds it");
            let mut sub = image.data().to_vec();
            subtract_rows(
                &self.background,
                0,
                &mut sub,
                mask.as_deref(),
                f32::INFINITY,
            );
            Image::new(image.width(), image.height(), sub).expect("shape is consistent")
        })
    }

    /// The filtered, background-subtracted detection image (computed on demand: the
    /// pipeline itself only keeps the filtered values of detected pixels).
    pub fn filtered(&self) -> Image {
        match &self.kernel {
            Some(k) => convolve(self.subtracted(), k),
            None => self.subtracted().clone(),
        }
    }
}

/// A part of a split object: its runs, its pixels (indices into the object's pixel
/// list) and, if it came out of deblending, its fixed centre.
pub(crate) struct Part {
    pub(crate) runs: Vec<crate::label::Run>,
    pub(crate) pixels: Vec<usize>,
    /// A deblended piece's pixel list in SExtractor's order (positions in `pixels`:
    /// its core's scan order, then the pixels it received), which `mthresh` reads;
    /// None: the scan order of its pixels.
    pub(crate) list: Option<Vec<u32>>,
    pub(crate) centre: Option<(f64, f64)>,
    /// A deblended piece's core box (xmin, xmax, ymin, ymax), which decides its FLAGS 8.
    pub(crate) core_box: Option<(u32, u32, u32, u32)>,
    /// Kept whole because its tree reached the sub-object limit (FLAGS 64).
    pub(crate) overflow: bool,
}

/// The deblending plan of one object (pixels in raster order, its mean detection
/// threshold `t0`): [`crate::deblend::plan`], unless deblending is off.
pub(crate) fn plan_object(
    px: &[crate::deblend::Pixel],
    t0: f64,
    p: &ExtractParams,
) -> crate::deblend::Plan {
    if p.deblend.mincont >= 1.0 {
        return crate::deblend::Plan::Whole;
    }
    crate::deblend::plan(px, t0, p.minarea, p.connectivity, &p.deblend)
}

/// One object (pixels in raster order, their runs) split by its deblending plan,
/// with `draws` the random numbers it takes, into its parts (itself if it does not
/// split).
pub(crate) fn split_object(
    px: &[crate::deblend::Pixel],
    runs: &[crate::label::Run],
    plan: crate::deblend::Plan,
    draws: &[u32],
) -> Vec<Part> {
    use crate::deblend::{runs_of, Plan};
    let whole = |overflow| {
        vec![Part {
            runs: runs.to_vec(),
            pixels: (0..px.len()).collect(),
            list: None,
            centre: None,
            core_box: None,
            overflow,
        }]
    };
    match plan {
        Plan::Whole => whole(false),
        Plan::Overflow => whole(true),
        Plan::Share(s) => s
            .assign(px, draws)
            .into_iter()
            .map(|ch| Part {
                runs: runs_of(px, &ch.pixels),
                pixels: ch.pixels,
                list: Some(ch.list),
                centre: Some(ch.centre),
                core_box: Some(ch.core_box),
                overflow: false,
            })
            .collect(),
    }
}

/// Optional per-pixel inputs besides the image.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inputs<'a> {
    /// Bad pixels.
    pub mask: Option<&'a Mask>,
    /// A per-pixel detection threshold in ADU above the background (as photutils'
    /// 2-D `threshold`); replaces `detect_thresh`.
    pub threshold_image: Option<&'a Image>,
    /// A per-pixel noise (RMS) map for the matched filter; without it the matched
    /// filter uses the background RMS map.
    pub noise: Option<&'a Image>,
    /// The flag maps (FLAG_IMAGE), one per `ExtractParams::flag_types`, each with the
    /// mask of its integer width ([`flag_mask`]).
    pub flags: &'a [(&'a Image, u32)],
    /// Dual-image mode: the measurement image (`det.fits,meas.fits`): fluxes,
    /// FLUX_MAX, ISOAREA_IMAGE and the photometry come from it, each image with its
    /// own background; detection, positions and shapes from the image.
    pub measurement: Option<&'a Image>,
}

/// The flag maps' row sources, each with its width's mask, as the pipeline reads them.
fn flag_sources<R: RowSource + Send>(maps: &mut [(R, u32)]) -> Vec<crate::stream::FlagSource<'_>> {
    maps.iter_mut()
        .map(|(r, mask)| crate::stream::FlagSource {
            rows: r,
            mask: *mask,
        })
        .collect()
}

/// The mask of the integer width of the flag map `path` (its BITPIX: 8, 16 or 32; a
/// TIFF's values are taken as 32-bit).
pub fn flag_mask(path: &str) -> Result<u32> {
    if crate::io::is_tiff(path) {
        return Ok(u32::MAX);
    }
    let [b] = crate::io::fits::header_numbers(path, [Some("BITPIX")])?;
    crate::imaflags::width_mask(b.unwrap_or(0.0) as i64, path)
}

/// Files given beside an image to [`Extractor::extract_file`], all optional, and
/// how the image is streamed: the twin of [`Inputs`] for images on disk (FITS, or
/// TIFF read whole).
#[derive(Clone, Debug, Default)]
pub struct FileInputs {
    /// A mask image (MASK_IMAGE): pixels above `mask_thresh`, or NaN, are ignored.
    pub mask: Option<String>,
    pub mask_thresh: f32,
    /// A per-pixel detection threshold in ADU above the background (THRESH_IMAGE).
    pub threshold_image: Option<String>,
    /// A per-pixel noise (RMS) map for the matched filter.
    pub noise: Option<String>,
    /// The flag maps (FLAG_IMAGE), one per `ExtractParams::flag_types`.
    pub flag_images: Vec<String>,
    /// Dual-image mode: the measurement image ([`Inputs::measurement`]).
    pub measurement: Option<String>,
    /// Stream the image in strips under this memory limit (MiB; MEMORY_LIMIT), or in
    /// strips of `stream_rows` rows (STREAM_ROWS). Without either, an image is
    /// extracted whole unless that needs more than the machine's free memory allows
    /// ([`crate::plan::auto_memory_limit`]), as the command does.
    pub memory_limit_mib: Option<f64>,
    pub stream_rows: Option<usize>,
}

impl FileInputs {
    /// Whether a memory limit or a strip height asks for a streamed run.
    pub fn streamed(&self) -> bool {
        self.memory_limit_mib.is_some() || self.stream_rows.is_some()
    }

    /// The first TIFF among the image `path` and these files, with its role: a
    /// streamed run reads FITS rows, and a TIFF is read whole.
    fn first_tiff<'a>(&'a self, path: &'a str) -> Option<(&'static str, &'a str)> {
        [
            ("image", Some(path)),
            ("mask", self.mask.as_deref()),
            ("threshold image", self.threshold_image.as_deref()),
            ("noise image", self.noise.as_deref()),
        ]
        .into_iter()
        .chain(
            self.flag_images
                .iter()
                .map(|f| ("flag image", Some(f.as_str())))
                .chain([("measurement image", self.measurement.as_deref())]),
        )
        .find_map(|(what, f)| f.filter(|f| crate::io::is_tiff(f)).map(|f| (what, f)))
    }

    /// Refuses to stream the image `path` when it or one of the files is a TIFF.
    pub fn check_streamable(&self, path: &str) -> Result<()> {
        match self.first_tiff(path) {
            Some((what, f)) => Err(crate::Error::Input {
                path: f.into(),
                reason: format!(
                    "streaming (MEMORY_LIMIT or STREAM_ROWS) reads FITS files row by row, and \
                     this {what} is a TIFF, which is read whole: convert it to FITS, or do not \
                     stream the image"
                ),
            }),
            None => Ok(()),
        }
    }
}

/// What [`Extractor::extract_file`] returns.
#[derive(Clone, Debug)]
pub struct FileExtraction {
    pub background: Background,
    pub catalog: Catalog,
    /// Whether the image was streamed in strips (else extracted whole).
    pub streamed: bool,
}

/// Runs the pipeline with validated parameters.
///
/// ```
/// use skysift::{Extractor, Image, Inputs};
/// // A flat noisy-free sky of 100 with one 3x3 source.
/// let mut data = vec![100.0f32; 64 * 64];
/// for y in 30..33 { for x in 30..33 { data[y * 64 + x] = 200.0; } }
/// // Add a little structure so the background RMS is not zero.
/// for (i, v) in data.iter_mut().enumerate() { *v += ((i * 7919) % 13) as f32 * 0.1; }
/// let image = Image::new(64, 64, data).unwrap();
/// let result = Extractor::default().extract(&image, Inputs::default()).unwrap();
/// assert_eq!(result.catalog.len(), 1);
/// let star = &result.catalog.objects[0];
/// assert!((star.x - 31.0).abs() < 0.1 && (star.y - 31.0).abs() < 0.1); // 0-based
/// ```
#[derive(Clone, Debug, Default)]
pub struct Extractor {
    pub background: BackgroundParams,
    pub extract: ExtractParams,
    /// Where filtering, thresholding and labelling run (default: the CPU). `Gpu` and
    /// `Auto` build a GPU context on each call unless [`Extractor::prepare`] or
    /// [`Extractor::with_gpu`] provided one.
    pub backend: Backend,
    /// The GPU context, once resolved (built once, reused for every image).
    pub gpu: Option<Arc<GpuContext>>,
    /// SExtractor's stream of deblending draws, shared by extractions that continue
    /// one stream (the extensions of one multi-extension file, as one SExtractor
    /// process reads them; the command sets it per file). None: each extraction starts
    /// the stream from seed 1.
    pub deblend_stream: Option<Arc<std::sync::Mutex<crate::deblend::GlibcRand>>>,
}

impl Extractor {
    pub fn new(background: BackgroundParams, extract: ExtractParams, backend: Backend) -> Self {
        Extractor {
            background,
            extract,
            backend,
            gpu: None,
            deblend_stream: None,
        }
    }

    /// Resolves the backend once (building the GPU context if one is used) so that
    /// every later extraction reuses it. Returns a notice when `Auto` falls back to
    /// the CPU.
    pub fn prepare(&mut self) -> Result<Option<String>> {
        let (resolved, notice) = self.backend.resolve()?;
        match resolved {
            Resolved::Gpu(ctx) => self.gpu = Some(ctx),
            Resolved::Cpu => {
                self.gpu = None;
                self.backend = Backend::Cpu;
            }
        }
        let big = match (&self.gpu, &self.extract.kernel) {
            (Some(_), Some(k)) if !crate::gpu::gpu_filters(Some(k)) => Some(format!(
                "skysift: the {}x{} filter kernel is beyond the GPU filter's exact size \
                 ((width + 1) x height <= {}, e.g. 255x255): filtering on the CPU, \
                 with the same results",
                k.width(),
                k.height(),
                crate::gpu::MAX_FILTER_STEPS
            )),
            _ => None,
        };
        Ok(match (notice, big) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (a, b) => a.or(b),
        })
    }

    /// Uses this GPU context (and the GPU backend) from now on.
    pub fn with_gpu(mut self, ctx: Arc<GpuContext>) -> Self {
        self.backend = Backend::Gpu;
        self.gpu = Some(ctx);
        self
    }

    /// Extracts the sources of `image`.
    pub fn extract(&self, image: &Image, inputs: Inputs) -> Result<Extraction> {
        self.extract_owned(image.clone(), inputs)
    }

    /// This extractor with its backend resolved (a GPU context built for `Gpu` and
    /// `Auto` when [`Self::prepare`] did not).
    fn resolved(&self) -> Result<std::borrow::Cow<'_, Extractor>> {
        Ok(match (&self.gpu, self.backend) {
            (None, Backend::Gpu | Backend::Auto) => match self.backend.resolve()?.0 {
                Resolved::Gpu(ctx) => std::borrow::Cow::Owned(self.clone().with_gpu(ctx)),
                Resolved::Cpu => std::borrow::Cow::Borrowed(self),
            },
            _ => std::borrow::Cow::Borrowed(self),
        })
    }

    /// Extracts the sources of the image in the file `path` (FITS, with cfitsio's
    /// extension syntax, or TIFF) with the files of `inputs`: whole, or streamed from
    /// the file in strips when `inputs` gives a memory limit or a whole-image run
    /// needs more than the machine's free memory allows (FITS only). Catalogs are the
    /// same either way.
    pub fn extract_file(&self, path: &str, inputs: &FileInputs) -> Result<FileExtraction> {
        use crate::io;
        let auto = match inputs.streamed() || inputs.first_tiff(path).is_some() {
            true => None,
            false => io::image_pixels(path)
                .zip(io::mem_available())
                .and_then(|(pixels, avail)| crate::plan::auto_memory_limit(pixels, avail)),
        };
        if !inputs.streamed() && auto.is_none() {
            let image = io::read_image(path)?;
            let mask = match &inputs.mask {
                Some(m) => Some(Mask::from_image(&io::read_image(m)?, inputs.mask_thresh)),
                None => None,
            };
            let (threshold, noise) = io::read_side_images(&inputs.threshold_image, &inputs.noise)?;
            let flags = inputs
                .flag_images
                .iter()
                .map(|f| Ok((io::read_image(f)?, flag_mask(f)?)))
                .collect::<Result<Vec<_>>>()?;
            let flag_refs: Vec<(&Image, u32)> = flags.iter().map(|(f, m)| (f, *m)).collect();
            let meas = inputs
                .measurement
                .as_deref()
                .map(io::read_image)
                .transpose()?;
            let x = self.extract_owned(
                image,
                Inputs {
                    mask: mask.as_ref(),
                    threshold_image: threshold.as_ref(),
                    noise: noise.as_ref(),
                    flags: &flag_refs,
                    measurement: meas.as_ref(),
                },
            )?;
            return Ok(FileExtraction {
                background: x.background,
                catalog: x.catalog,
                streamed: false,
            });
        }
        let e = &*self.resolved()?;
        let plan = e.plan_file(path, inputs, auto)?;
        let mut objects = Vec::new();
        let summary = e.stream_file(
            path,
            inputs,
            &plan,
            Sinks::default(),
            &mut |_| {},
            &mut |o| {
                objects.push(o);
                Ok(())
            },
        )?;
        Ok(FileExtraction {
            background: summary.background,
            catalog: Catalog { objects },
            streamed: true,
        })
    }

    /// The plan of a streamed run of the image file `path`: strips of
    /// `inputs.stream_rows` rows, else as many as the memory limit holds
    /// (`inputs.memory_limit_mib`, else `auto_limit`, one from the machine's free
    /// memory, which a limit too small is then said as).
    pub fn plan_file(
        &self,
        path: &str,
        inputs: &FileInputs,
        auto_limit: Option<f64>,
    ) -> Result<crate::plan::Plan> {
        inputs.check_streamable(path)?;
        let e = &*self.resolved()?;
        let width = crate::io::fits::FitsRows::open(path)?.width();
        let varying = crate::plan::varying_thresholds(e, inputs.threshold_image.is_some());
        let limit = inputs.memory_limit_mib.or(auto_limit);
        let given = inputs.memory_limit_mib.is_some();
        crate::plan::Plan::for_image(e, path, width, varying, inputs.stream_rows, limit, given)
    }

    /// Streams the image file `path` (FITS) with the files of `inputs` under `plan`,
    /// handing each object to `emit` in catalog order (see
    /// [`crate::stream::extract_streaming_to`]).
    pub fn stream_file(
        &self,
        path: &str,
        inputs: &FileInputs,
        plan: &crate::plan::Plan,
        sinks: Sinks,
        progress: &mut dyn FnMut(crate::stream::Progress),
        emit: &mut dyn FnMut(crate::Object) -> Result<()>,
    ) -> Result<crate::stream::StreamSummary> {
        use crate::io;
        inputs.check_streamable(path)?;
        let e = &*self.resolved()?;
        let mut rows = io::fits::FitsRows::open(path)?;
        let mut mask_rows = io::open_rows(&inputs.mask)?;
        let (mut threshold, mut noise) =
            io::open_side_rows(&inputs.threshold_image, &inputs.noise)?;
        let mut flag_rows = inputs
            .flag_images
            .iter()
            .map(|f| Ok((io::fits::FitsRows::open(f)?, flag_mask(f)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut meas_rows = inputs
            .measurement
            .as_deref()
            .map(io::fits::FitsRows::open)
            .transpose()?;
        crate::stream::scan(
            &mut rows,
            Sides {
                mask: mask_rows.as_mut().map(|m| {
                    MaskInput::Rows(crate::stream::MaskRows {
                        rows: m,
                        thresh: inputs.mask_thresh,
                    })
                }),
                threshold: threshold.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
                noise: noise.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
                flags: flag_sources(&mut flag_rows),
                measurement: meas_rows.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
            },
            sinks,
            InMemory::default(),
            e,
            plan,
            progress,
            emit,
        )
    }

    /// Extracts the sources of `image`, reusing its memory for the
    /// background-subtracted image (one full-size buffer less than [`Self::extract`]).
    /// The image is one strip of the pipeline (`stream::scan`) with every
    /// sink in memory.
    pub fn extract_owned(&self, image: Image, inputs: Inputs) -> Result<Extraction> {
        self.background.validate()?;
        self.extract.validate()?;
        let e = &*self.resolved()?;
        let (w, h) = (image.width(), image.height());
        let mut src = crate::stream::OwnedRows::new(image);
        let mut threshold = inputs.threshold_image.map(ImageRows);
        let mut noise = inputs.noise.map(ImageRows);
        let mut flag_rows: Vec<(ImageRows, u32)> = inputs
            .flags
            .iter()
            .map(|&(f, m)| (ImageRows(f), m))
            .collect();
        let mut meas_rows = inputs.measurement.map(ImageRows);
        let mut runs = SegmentRuns::default();
        let mut objects = Vec::new();
        let phot = e.extract.phot.want.any();
        let mut detected = phot.then(|| vec![0u64; (w * h).div_ceil(64)]);
        let summary = crate::stream::scan(
            &mut src,
            Sides {
                mask: inputs.mask.map(MaskInput::Memory),
                threshold: threshold.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
                noise: noise.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
                flags: flag_sources(&mut flag_rows),
                measurement: meas_rows.as_mut().map(|r| r as &mut (dyn RowSource + Send)),
            },
            Sinks::default(),
            InMemory {
                runs: Some(&mut runs),
                objects_in_memory: true,
                keep_subtracted: true,
                detected: detected.as_mut(),
            },
            e,
            &crate::plan::Plan::rows(h),
            &mut |_| {},
            &mut |o| {
                objects.push(o);
                Ok(())
            },
        )?;
        let mut timings = summary.timings;
        let summary_mbg = summary.measurement_background;
        if let Some(ctx) = &e.gpu {
            for (pass, t) in ctx.take_kernel_times() {
                timings.push((crate::gpu::kernel_label(pass), t));
            }
        }
        let mask = inputs.mask.map(|m| m.data().to_vec());
        let (subtracted, pending) = match summary.subtracted {
            Some(sub) => (
                std::sync::OnceLock::from(Image::new(w, h, sub).expect("the image's shape")),
                None,
            ),
            None => (
                std::sync::OnceLock::new(),
                Some((
                    src.into_image()
                        .expect("a run that keeps no subtracted image leaves the image"),
                    mask,
                )),
            ),
        };
        let (segmentation, paste) = runs.into_parts(w, h);
        let mut x = Extraction {
            timings,
            background: summary.background,
            kernel: self.extract.kernel.clone(),
            pending,
            subtracted,
            segmentation,
            catalog: Catalog { objects },
            invalid_spread: summary.invalid_spread,
        };
        if let Some(mut bits) = detected {
            let t = std::time::Instant::now();
            // Dual-image mode: the photometry measures the measurement image,
            // subtracted with its own background.
            let meas = match (inputs.measurement, &summary_mbg) {
                (Some(m), Some(mb)) => {
                    let mut sub = m.data().to_vec();
                    crate::detect::cpu::subtract_rows(
                        mb,
                        0,
                        &mut sub,
                        inputs.mask.map(|k| k.data()),
                        f32::INFINITY,
                    );
                    Some(Image::new(w, h, sub).expect("the image's shape"))
                }
                _ => None,
            };
            crate::photometry::measure_extraction(
                &mut x,
                &mut bits,
                &paste,
                inputs.mask,
                &e.extract,
                meas.as_ref().zip(summary_mbg.as_ref()),
            );
            x.timings.push(("photometry", t.elapsed().as_secs_f64()));
            if let Some(w) = &e.extract.world {
                for o in &mut x.catalog.objects {
                    o.world = Some(Box::new(w.measure(o)));
                }
            }
        }
        Ok(x)
    }
}
