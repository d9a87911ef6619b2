//! The command's job, shared by the `skysift` binary and any front end that runs it:
//! images to catalogs, check images, DS9 regions and pictures on disk. Each image is
//! extracted whole or streamed (as the settings and the machine's free memory say),
//! its outputs are checked before any work and put in place together after it
//! ([`crate::io::output`]), and what happened is said on standard error.

use crate::io::catalog::CatalogFormat;
use crate::{catalog, checkimage, io, Extractor, Inputs, Mask, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A line on standard error that never panics (a closed or full stderr is ignored).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// The progress bar of a streamed run: one bar per pass over the rows (the
/// `indicatif` crate), each with its rate from the end of the previous pass; the
/// background pass gives way to the detection pass, later passes stay on screen.
struct Progress {
    show: bool,
    bar: Option<indicatif::ProgressBar>,
    width: usize,
    pass: u8,
    pass_start: Instant,
    ended: Instant,
}

impl Progress {
    /// Bars on standard error when `show` and it is a terminal (`width`: pixels per
    /// row, for the rate).
    fn new(show: bool, width: usize) -> Progress {
        use std::io::IsTerminal as _;
        Progress {
            show: show && std::io::stderr().is_terminal(),
            bar: None,
            width,
            pass: 0,
            pass_start: Instant::now(),
            ended: Instant::now(),
        }
    }

    fn bar(rows: usize, what: &'static str) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(rows as u64),
            indicatif::ProgressDrawTarget::stderr_with_hz(2),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "skysift: {prefix} [{bar:30}] row {pos}/{len} ({percent}%), {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what);
        bar
    }

    fn update(&mut self, p: crate::stream::Progress) {
        if p.pass != self.pass {
            (self.pass, self.pass_start) = (p.pass, self.ended);
            if let Some(old) = self.bar.take() {
                if !old.is_finished() {
                    old.finish_and_clear();
                }
            }
            if self.show {
                let what = match p.pass {
                    1 => "background pass",
                    2 => "detection pass",
                    4 => "photometry pass",
                    _ => "check images",
                };
                self.bar = Some(Self::bar(p.rows, what));
            }
        }
        if p.rows_done == p.rows {
            self.ended = Instant::now();
        }
        let Some(bar) = &self.bar else {
            return;
        };
        let secs = self.pass_start.elapsed().as_secs_f64().max(1e-9);
        let rate = (p.rows_done * self.width) as f64 / secs / 1e6;
        bar.set_message(format!("{} objects, {rate:.0} Mpix/s", p.objects));
        bar.set_position(p.rows_done as u64);
        if p.rows_done == p.rows && p.pass >= 2 {
            bar.finish();
            // indicatif leaves the cursor on the finished bar's line.
            say!();
        }
    }
}

/// What the command was asked to do: its options, each already checked against its
/// meaning (the binary's `cli` module builds it; SExtractor's names in the comments).
/// How each image's WCS is read for the world columns.
#[derive(Clone, Debug, Default)]
pub struct WorldRequest {
    /// HEADER_SUFFIX ("" for none).
    pub header_suffix: String,
    /// Apply SIP distortion.
    pub sip: bool,
    pub transform: crate::world::MomentTransform,
    /// PIXEL_SCALE in arcsec (0: from the WCS).
    pub pixel_scale: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The images (FITS, `file.fits[ext]`, or TIFF).
    pub images: Vec<String>,
    /// The catalog (one image) or the folder of catalogs (several); CATALOG_NAME.
    pub output: Option<PathBuf>,
    /// CATALOG_TYPE, overriding the output's extension.
    pub catalog_type: Option<CatalogFormat>,
    /// The catalog columns (PARAMETERS_NAME's list); empty for the default set.
    pub params: Vec<String>,
    /// CHECKIMAGE_TYPE:CHECKIMAGE_NAME pairs, as `TYPE:PATH`.
    pub check_images: Vec<String>,
    /// A folder for the pictures (PNG).
    pub png_dir: Option<PathBuf>,
    /// A DS9 region file of the objects' ellipses.
    pub regions: Option<PathBuf>,
    /// The files read beside every image (mask, threshold and noise images) and how
    /// the images are streamed (a strip height or a memory limit).
    pub inputs: crate::FileInputs,
    /// The filter file read (FILTER_NAME), an input the outputs must not replace.
    pub filter_file: Option<PathBuf>,
    /// SATUR_KEY and GAIN_KEY: FITS header keywords whose values, where an image's
    /// header has them, replace SATUR_LEVEL and GAIN for that image, as in SExtractor
    /// (None: the configuration's values always).
    pub satur_key: Option<String>,
    pub gain_key: Option<String>,
    /// The world columns' WCS settings, when the catalog needs a WCS (None: no WCS
    /// is read).
    pub world: Option<WorldRequest>,
    /// WRITE_XML's XML_NAME: the run's metadata as a VOTable document (None: none).
    pub xml: Option<PathBuf>,
    /// The configuration file read (`-c`), for the XML's Prefs_Name.
    pub prefs_name: Option<String>,
    /// No summary lines, notices or progress.
    pub quiet: bool,
    /// Per-stage times on standard error.
    pub timings: bool,
}

impl Settings {
    /// The catalog format for `path`: [`Settings::catalog_type`], else the extension.
    pub fn catalog_format_for(&self, path: &Path) -> CatalogFormat {
        self.catalog_type
            .unwrap_or_else(|| CatalogFormat::from_path(path))
    }
}

/// Streams one FITS image from disk (bounded memory) and writes its catalog, its
/// DS9 regions and its check images (after the run, reading the image again).
#[allow(clippy::too_many_arguments)]
fn stream_one(
    cli: &Settings,
    extractor: &Extractor,
    part: Part,
    out: &mut CatalogOut,
    checks: &[checkimage::CheckImage],
    k: usize,
    n: usize,
    auto_limit: Option<f64>,
) -> Result<Option<String>> {
    let start = Instant::now();
    let (w, h) = {
        use crate::stream::RowSource as _;
        let rows = io::fits::FitsRows::open(part.image)?;
        (rows.width(), rows.height())
    };
    let plan = extractor.plan_file(part.image, &cli.inputs, auto_limit)?;
    let strip_rows = plan.strip_rows;
    // A progress bar on a terminal (the `indicatif` crate: rows, objects, rate),
    // redrawn at most twice a second; nothing when standard error is not a terminal.
    let mut progress = Progress::new(!cli.quiet, w);
    let mut report = |p: crate::stream::Progress| progress.update(p);
    // Objects go to the catalog file as they become final (all at the end with
    // cleaning, which needs every object); an error leaves no partial file.
    // Check images are written after the run in blocks of rows (holding about as
    // much as a strip: subtracted, filtered, map and segmentation rows).
    let out_dir = io::output::folder_of(out.path);
    let writer = out.begin(part.image, (w, h))?;
    let mut overflows = Overflows::default();
    let mut spills = checkimage::StreamedChecks::new(checks, (w, h), plan.check_rows, &out_dir)?;
    let mut regions = match &cli.regions {
        Some(r) => Some(io::regions::RegionWriter::create(r)?),
        None => None,
    };
    let checkimage::StreamedChecks {
        segments: spill_segments,
        outlines: spill_outlines,
        ..
    } = &mut spills;
    let result = extractor.stream_file(
        part.image,
        &cli.inputs,
        &plan,
        crate::stream::Sinks {
            segments: spill_segments.as_mut(),
            temp_dir: Some(&out_dir),
        },
        &mut report,
        &mut |mut o| {
            o.ext = part.ext;
            overflows.note(&o);
            writer.write(&o)?;
            if let Some(r) = regions.as_mut() {
                r.write(&o)?;
            }
            checkimage::add_outline(spill_outlines, &o, w, h)
        },
    )?;
    for (key, value, comment) in ldac_values(extractor, &result.background, result.objects) {
        writer.set_card(key, value, comment);
    }
    if let Some(r) = regions {
        r.finish()?;
    }
    if !checks.is_empty() {
        let t = Instant::now();
        let objects = result.objects;
        checkimage::write_streamed(
            checks,
            part.image,
            &cli.inputs,
            &result.background,
            extractor,
            &mut spills,
            &mut |rows_done, rows| {
                report(crate::stream::Progress {
                    rows_done,
                    rows,
                    pass: 3,
                    objects,
                })
            },
        )?;
        if cli.timings {
            say!(
                "{:>32}: {:8.4} s",
                "check images (second read)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    let (invalid, spread) = result.invalid_spread;
    if let (false, Some(n)) = (
        cli.quiet,
        crate::convolve::invalid_spread_notice(part.image, invalid, spread, (w * h) as u64),
    ) {
        say!("{n}");
    }
    overflows.say(cli, extractor);
    // Cleaning keeps what it reads of every measured object until the end (the objects
    // wait on disk): say so when that grew large next to the memory limit.
    if let (Some(mib), true, false) = (
        cli.inputs.memory_limit_mib.or(auto_limit),
        extractor.extract.clean,
        cli.quiet,
    ) {
        let held = result.max_held_bytes as f64 / 1048576.0;
        if held > 0.25 * mib {
            say!(
                "skysift: {} objects waited for cleaning ({held:.0} MiB next to --memory-limit {mib:.0}); \
                 --no-clean writes objects as they come",
                result.max_held
            );
        }
    }
    if cli.timings {
        say_timings(&result.timings);
        say!("{:>32}: {strip_rows} rows", "strip height");
        say!("{:>32}: {}", "most open objects", result.max_open);
        say!("{:>32}: {}", "most objects held", result.max_held);
        if let Some(ctx) = &extractor.gpu {
            for (pass, t) in ctx.take_kernel_times() {
                say!("{:>32}: {t:8.4} s", crate::gpu::kernel_label(pass));
            }
        }
        if let Some(peak) = peak_rss_mib() {
            say!("{:>32}: {peak:.1} MiB", "peak resident memory");
        }
    }
    out.log.push(xml_extension(
        extractor,
        &part,
        &result.background,
        result.objects,
        start,
    ));
    Ok((!cli.quiet).then(|| {
        format!(
            "skysift: {}{} objects in {} (streamed in strips of {strip_rows} rows) -> {} in {:.3} s ({})",
            counter(k, n),
            result.objects,
            part.image,
            out.shown(),
            start.elapsed().as_secs_f64(),
            backend_name(extractor)
        )
    }))
}

/// The WRITE_XML row of one image or extension.
fn xml_extension(
    e: &Extractor,
    part: &Part,
    bg: &crate::Background,
    objects: usize,
    start: Instant,
) -> io::xml::Extension {
    let (date, time) = io::xml::now_utc();
    let p = &e.extract;
    let pixel_scale = match (&p.world, p.phot.pixel_scale) {
        (_, s) if s > 0.0 => s,
        (Some(w), _) => w.wcs.field_scale_arcsec(),
        (None, _) => 0.0,
    };
    io::xml::Extension {
        number: part.ext as usize + 1,
        image: part.image.to_string(),
        date,
        time,
        duration: start.elapsed().as_secs_f64(),
        detections: objects,
        objects,
        background: bg.global_back(),
        rms: bg.global_rms(),
        threshold: p.thresh_adu(p.detect_thresh, bg.global_rms()),
        pixel_scale,
        gain: p.gain,
        satur_level: p.satur_level,
        external_header: p
            .world
            .as_ref()
            .is_some_and(|w| w.wcs.warnings.iter().any(|m| m.ends_with(" read"))),
    }
}

/// Each stage's wall time (`--timings`; GPU strips as a count).
fn say_timings(timings: &[(&'static str, f64)]) {
    for (name, t) in timings {
        if name.ends_with("strips") || name.ends_with("draws") {
            say!("{name:>32}: {t:8.0}");
        } else {
            say!("{name:>32}: {t:8.4} s");
        }
    }
}

/// Where the run happened, for the summary line.
fn backend_name(extractor: &Extractor) -> String {
    match &extractor.gpu {
        Some(g) => format!("GPU: {}", g.adapter_name()),
        None => "CPU".to_string(),
    }
}

/// "[k/n] " before a summary line when several images are processed.
fn counter(k: usize, n: usize) -> String {
    if n > 1 {
        format!("[{}/{n}] ", k + 1)
    } else {
        String::new()
    }
}

/// The process's peak resident memory in MiB (Linux: VmHWM in /proc/self/status).
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One image to process and where its catalog goes.
struct Job {
    image: String,
    output: PathBuf,
    /// The images it stands for: itself, or each image extension of a
    /// multi-extension FITS file ([`io::fits::image_extensions`]).
    parts: Vec<String>,
}

/// The detections kept whole by the sub-object limit (FLAGS 64): how many, and the
/// first one's position (1-based).
#[derive(Default)]
struct Overflows(usize, Option<(f64, f64)>);

impl Overflows {
    fn note(&mut self, o: &crate::Object) {
        if o.flags & crate::measure::flags::DEBLEND_OVERFLOW != 0 {
            self.0 += 1;
            self.1.get_or_insert((o.x + 1.0, o.y + 1.0));
        }
    }

    fn say(&self, cli: &Settings, extractor: &Extractor) {
        if let (false, Some((x, y)), Some(limit)) = (
            cli.quiet,
            self.1,
            extractor.extract.deblend.sub_object_limit,
        ) {
            say!(
                "skysift: warning: {} detection(s) reached --sub-object-limit {limit} and were kept \
                 whole, not deblended (FLAGS 64), the first at ({x:.1}, {y:.1})",
                self.0
            );
        }
    }
}

/// One image of a job: its specification and its extension index (EXT_NUMBER - 1).
#[derive(Clone, Copy)]
struct Part<'a> {
    image: &'a str,
    ext: u16,
}

/// One job's catalog, opened at its first image (once the image's size is known, for
/// a TIFF's LDAC header) and moved on at each next extension of a multi-extension
/// file.
struct CatalogOut<'a> {
    /// What each image or extension gave, for WRITE_XML.
    log: Vec<io::xml::Extension>,
    /// A multi-extension image's check images: one file per check image, an
    /// extension appended per image extension (empty otherwise).
    mef: Vec<io::fits::MefWriter>,
    writer: Option<io::catalog::CatalogWriter<'a>>,
    path: &'a Path,
    name: &'a str,
    cols: &'a [&'a catalog::Column],
    format: CatalogFormat,
}

impl<'a> CatalogOut<'a> {
    fn new(cli: &Settings, job: &'a Job, cols: &'a [&'a catalog::Column]) -> Self {
        CatalogOut {
            log: Vec::new(),
            mef: Vec::new(),
            writer: None,
            path: &job.output,
            name: &job.image,
            cols,
            format: cli.catalog_format_for(&job.output),
        }
    }

    /// The writer, at the start of the catalog of `image` (`w` x `h`).
    fn begin(
        &mut self,
        image: &str,
        dims: (usize, usize),
    ) -> Result<&mut io::catalog::CatalogWriter<'a>> {
        let header = ldac_header(self.format, image, dims)?;
        match &mut self.writer {
            Some(w) => w.next_extension(&header)?,
            None => {
                let info = io::catalog::ImageInfo {
                    name: self.name,
                    header: &header,
                };
                self.writer = Some(io::catalog::CatalogWriter::create_for(
                    self.path,
                    self.cols,
                    self.format,
                    info,
                )?)
            }
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }

    /// Where the catalog went, for the summary line.
    fn shown(&self) -> String {
        if self.format == CatalogFormat::None {
            "no catalog (CATALOG_TYPE NONE)".into()
        } else if io::catalog::is_stdout(self.path) {
            "standard output".into()
        } else {
            self.path.display().to_string()
        }
    }

    fn finish(self) -> Result<()> {
        self.writer.map_or(Ok(()), |w| w.finish())
    }
}

/// The images and their catalogs: one image → the -o path; several images → one
/// catalog per image in the -o folder, named after the image.
fn jobs(cli: &Settings) -> Result<Vec<Job>> {
    let none = cli.catalog_type == Some(CatalogFormat::None);
    let output = cli
        .output
        .clone()
        .or_else(|| none.then(|| PathBuf::from("STDOUT")))
        .ok_or_else(|| crate::Error::InvalidParam {
            name: "-o",
            value: String::new(),
            reason: "an output catalog (or folder, for several images) is required".into(),
        })?;
    if cli.images.is_empty() {
        return Err(crate::Error::InvalidParam {
            name: "IMAGE",
            value: String::new(),
            reason: "give at least one image".into(),
        });
    }
    let stdout = io::catalog::is_stdout(&output);
    if stdout && cli.images.len() > 1 && !none {
        return Err(crate::Error::InvalidParam {
            name: "-o",
            value: output.display().to_string(),
            reason: format!(
                "standard output takes the catalog of one image ({} given): name a folder for several",
                cli.images.len()
            ),
        });
    }
    let to_dir = !stdout
        && (cli.images.len() > 1 || output.is_dir() || output.to_string_lossy().ends_with('/'));
    if !to_dir {
        return cli
            .images
            .iter()
            .map(|image| {
                Ok(Job {
                    image: image.clone(),
                    output: output.clone(),
                    parts: io::fits::image_extensions(image),
                })
            })
            .collect();
    }
    if !output.is_dir() {
        io::output::create_folder(&output).map_err(|e| crate::Error::Output {
            path: output.clone(),
            reason: format!("cannot create the catalog folder: {e}"),
        })?;
    }
    let ext = cli.catalog_type.map_or("fits", |f| f.extension());
    let mut seen = std::collections::HashSet::new();
    cli.images
        .iter()
        .map(|image| {
            let base = image.split('[').next().unwrap_or(image);
            let name = Path::new(base)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = name
                .trim_end_matches(".gz")
                .trim_end_matches(".fz")
                .trim_end_matches(".fits")
                .trim_end_matches(".fit")
                .trim_end_matches(".fts")
                .trim_end_matches(".tiff")
                .trim_end_matches(".tif")
                .to_string();
            if !seen.insert(stem.clone()) {
                return Err(crate::Error::InvalidParam {
                    name: "IMAGE",
                    value: image.clone(),
                    reason: format!(
                        "two images would both write {stem}.{ext} into {}",
                        output.display()
                    ),
                });
            }
            Ok(Job {
                image: image.clone(),
                output: output.join(format!("{stem}.{ext}")),
                parts: io::fits::image_extensions(image),
            })
        })
        .collect()
}

/// Checks every output before any work: writable, not one of the inputs (by file
/// identity: links, hard links and other relative paths included), not another output.
/// Removes the temporaries that killed runs left in the output folders.
fn check_files(cli: &Settings, jobs: &[Job], checks: &[checkimage::CheckImage]) -> Result<()> {
    use io::output::Role;
    let image_files: Vec<PathBuf> = cli.images.iter().map(|i| io::fits::file_of(i)).collect();
    let side = |f: &Option<String>| f.as_deref().map(io::fits::file_of);
    let (mask, thresh, noise) = (
        side(&cli.inputs.mask),
        side(&cli.inputs.threshold_image),
        side(&cli.inputs.noise),
    );
    let filter = cli.filter_file.clone();
    let flags: Vec<PathBuf> = cli
        .inputs
        .flag_images
        .iter()
        .map(|f| io::fits::file_of(f))
        .collect();
    let meas: Vec<PathBuf> = cli
        .inputs
        .measurement
        .iter()
        .map(|f| io::fits::file_of(f))
        .collect();
    let mut inputs: Vec<Role> = image_files
        .iter()
        .map(|p| Role::new("the image", p))
        .chain(flags.iter().map(|p| Role::new("the flag image", p)))
        .chain(meas.iter().map(|p| Role::new("the measurement image", p)))
        .collect();
    for (what, p) in [
        ("the mask", &mask),
        ("the threshold image", &thresh),
        ("the noise image", &noise),
        ("the filter file", &filter),
    ] {
        if let Some(p) = p {
            inputs.push(Role::new(what, p));
        }
    }
    let mut outputs: Vec<Role> = jobs
        .iter()
        .filter(|j| {
            !io::catalog::is_stdout(&j.output)
                && cli.catalog_format_for(&j.output) != CatalogFormat::None
        })
        .map(|j| Role::new("the catalog", &j.output))
        .collect();
    for c in checks {
        outputs.push(Role::new(format!("the check image {}", c.name), &c.path));
    }
    if let Some(r) = &cli.regions {
        outputs.push(Role::new("the region file", r));
    }
    if let Some(x) = &cli.xml {
        outputs.push(Role::new("the XML file", x));
    }
    for o in &outputs {
        io::check_writable(o.path)?;
    }
    io::output::check_paths(&inputs, &outputs)?;
    // Multi-page TIFFs: the first page is the image.
    if !cli.quiet {
        for r in inputs
            .iter()
            .filter(|r| io::is_tiff(&r.path.to_string_lossy()))
        {
            if let Ok(n @ 2..) = io::tiff::page_count(r.path) {
                say!(
                    "skysift: warning: {} ({}) has {n} pages; skysift reads the first only \
                     (split the file to measure the others)",
                    r.path.display(),
                    r.what
                );
            }
        }
    }
    let mut folders: Vec<PathBuf> = outputs
        .iter()
        .filter_map(|o| std::fs::canonicalize(io::output::folder_of(o.path)).ok())
        .collect();
    folders.sort();
    folders.dedup();
    for f in folders {
        let n = io::output::remove_stale_temps(&f);
        if n > 0 && !cli.quiet {
            say!(
                "skysift: removed {n} temporary file(s) that an interrupted run left in {}",
                f.display()
            );
        }
    }
    Ok(())
}

/// Runs the command's job: every image to its catalog, check images, regions and
/// pictures, whole or streamed as the settings and the machine's memory say.
pub fn run(cli: &Settings, extractor: Extractor) -> Result<()> {
    let run_start = Instant::now();
    let mut xml_log = Vec::new();
    let jobs = jobs(cli)?;
    let cols = catalog::select_columns(&cli.params)?;
    for job in &jobs {
        cli.catalog_format_for(&job.output).check_columns(&cols)?;
    }
    let mut checks = checkimage::parse_all(&cli.check_images)?;
    let images: usize = jobs.iter().map(|j| j.parts.len()).sum();
    // A multi-extension image's FITS check images are multi-extension files, as
    // SExtractor writes them (whole-image runs).
    let mef_checks = jobs.len() == 1
        && cli.png_dir.is_none()
        && cli.regions.is_none()
        && !cli.inputs.streamed()
        && checks.iter().all(|c| c.streamable());
    if images > 1
        && !mef_checks
        && (!checks.is_empty() || cli.png_dir.is_some() || cli.regions.is_some())
    {
        let mef = jobs.iter().find(|j| j.parts.len() > 1);
        return Err(crate::Error::InvalidParam {
            name: "--check-image",
            value: format!("{images} images"),
            reason: match mef {
                Some(j) => format!(
                    "{} has {} image extensions; its FITS check images are written as \
                     multi-extension files, but pictures (.png), TIFF check images, --png-dir, \
                     --regions and streamed runs are for one image: name an extension ({}[1]), \
                     or leave them out",
                    j.image,
                    j.parts.len(),
                    j.image
                ),
                None => "check images, --png-dir and --regions name one file each: use them \
                         with a single image"
                    .into(),
            },
        });
    }
    if let Some(dir) = &cli.png_dir {
        if !dir.is_dir() {
            io::output::create_folder(dir).map_err(|e| crate::Error::Output {
                path: dir.clone(),
                reason: format!("cannot create the picture folder: {e}"),
            })?;
        }
        checks.extend(checkimage::png_dir(dir));
    }
    // Fail on unwritable outputs, and on outputs that would overwrite an input or
    // each other, before the work, not after it.
    check_files(cli, &jobs, &checks)?;
    let inputs = &cli.inputs;
    let mask = match &inputs.mask {
        Some(m) => Some((m.clone(), io::read_image(m)?)),
        None => None,
    };
    let (thresh_img, noise_img) = io::read_side_images(&inputs.threshold_image, &inputs.noise)?;
    let thresh_img = inputs.threshold_image.clone().zip(thresh_img);
    let noise_img = inputs.noise.clone().zip(noise_img);
    // Dual-image mode's measurement image, for whole-image runs.
    let meas_img = match (&inputs.measurement, inputs.streamed()) {
        (Some(m), false) => Some((m.clone(), io::read_image(m)?)),
        _ => None,
    };
    // Flag maps for whole-image runs (a streamed run reads them row by row).
    let flag_imgs = match inputs.streamed() {
        true => Vec::new(),
        false => inputs
            .flag_images
            .iter()
            .map(|f| {
                Ok((
                    f.clone(),
                    io::read_image(f)?,
                    crate::pipeline::flag_mask(f)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let mut extractor = extractor;
    if let Some(notice) = extractor.prepare()? {
        if !cli.quiet {
            say!("{notice}");
        }
    }
    if let (true, Some(ctx)) = (cli.timings, &extractor.gpu) {
        // Device time per shader, from timestamp queries, in the --timings report.
        if !ctx.set_profiling(true) {
            say!("skysift: this GPU has no timestamp queries: no per-shader times");
        }
    }
    let streaming = cli.inputs.streamed();
    if streaming {
        if let Some(c) = checks.iter().find(|c| !c.streamable()) {
            return Err(crate::Error::InvalidParam {
                name: "--memory-limit",
                value: "streaming".into(),
                reason: format!(
                    "{} is a picture or a TIFF image, made from the whole image in memory; \
                     streamed runs (--memory-limit/--stream-rows) write check images as FITS \
                     (give a .fits name), or leave out --memory-limit/--stream-rows",
                    c.path.display()
                ),
            });
        }
        // Streaming reads rows from FITS files; TIFF images are read whole.
        for image in &cli.images {
            inputs.check_streamable(image)?;
        }
    }
    let n = jobs.len();
    // Images too large for this machine's memory are streamed automatically when the
    // settings allow it (check images in FITS; threshold and noise images in FITS,
    // which streaming reads row by row), on either backend.
    let can_stream = checks.iter().all(|c| c.streamable());
    // Which images are streamed, decided up front; the others are read one ahead by a
    // reader thread while the current one is processed (when two fit in memory), so
    // that the cores and the GPU are not idle while a file is read.
    // Each image's size (its FITS header, read once) and the free memory, once, when
    // whole-image runs may be streamed or read ahead.
    let sizes_needed = !streaming && (can_stream || n > 1);
    let avail = sizes_needed.then(io::mem_available).flatten();
    let pixels: Vec<Option<f64>> = jobs
        .iter()
        .map(|job| sizes_needed.then(|| io::image_pixels(&job.image)).flatten())
        .collect();
    let auto: Vec<Option<f64>> = pixels
        .iter()
        .zip(&jobs)
        .map(|(&px, job)| match (can_stream, px, avail) {
            (true, Some(px), Some(avail))
                if !streaming && inputs.check_streamable(&job.image).is_ok() =>
            {
                crate::plan::auto_memory_limit(px, avail)
            }
            _ => None,
        })
        .collect();
    // (A multi-extension file is read one extension at a time, never ahead.)
    let whole: Vec<usize> = (0..n)
        .filter(|&k| !streaming && auto[k].is_none() && jobs[k].parts.len() == 1)
        .collect();
    // Reading competes with the extraction for the cores: measured on 2 cores, reading
    // ahead made 4 images of 8192² 10% slower with both cores extracting and 8% faster
    // with one (docs/benchmarks.md); so only with a GPU or at least 4 cores.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let read_ahead = whole.len() > 1
        && (extractor.gpu.is_some() || cores >= 4)
        && crate::plan::can_read_ahead(whole.iter().map(|&k| pixels[k]), avail);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(crate::Result<crate::Image>, f64)>(0);
        if read_ahead {
            let (jobs, whole) = (&jobs, &whole);
            scope.spawn(move || {
                for &k in whole {
                    let t = Instant::now();
                    let r = io::read_image(&jobs[k].image);
                    let failed = r.is_err();
                    if tx.send((r, t.elapsed().as_secs_f64())).is_err() || failed {
                        break; // the run stopped, or will stop at this image
                    }
                }
            });
        }
        let result = run_jobs(
            cli,
            &extractor,
            &jobs,
            &cols,
            &checks,
            SideInputs {
                mask: &mask,
                threshold: &thresh_img,
                noise: &noise_img,
                flags: &flag_imgs,
                measurement: &meas_img,
            },
            &auto,
            read_ahead.then_some(&rx),
            &mut xml_log,
        );
        drop(rx); // unblocks the reader if the run stopped early
        result
    })?;
    if let Some(path) = &cli.xml {
        let (date, time) = io::xml::now_utc();
        let p = &extractor.extract;
        let log = io::xml::RunLog {
            image_name: cli.images.join(","),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            prefs_name: cli.prefs_name.clone().unwrap_or_default(),
            threads: rayon::current_num_threads(),
            duration: run_start.elapsed().as_secs_f64(),
            date,
            time,
            path: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            extensions: xml_log,
            warnings: Vec::new(),
            config: vec![
                (
                    "Catalog_Name".into(),
                    jobs.iter()
                        .map(|j| j.output.display().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ("Parameters".into(), cli.params.join(",")),
                ("Detect_Thresh".into(), p.detect_thresh.to_string()),
                ("Analysis_Thresh".into(), p.analysis_thresh.to_string()),
                ("Detect_MinArea".into(), p.minarea.to_string()),
                ("Deblend_NThresh".into(), p.deblend.nthresh.to_string()),
                ("Deblend_MinCont".into(), p.deblend.mincont.to_string()),
                ("Clean".into(), if p.clean { "T" } else { "F" }.into()),
                ("Clean_Param".into(), p.clean_param.to_string()),
                ("Mag_ZeroPoint".into(), p.mag_zeropoint.to_string()),
                ("Gain".into(), p.gain.to_string()),
                ("Satur_Level".into(), p.satur_level.to_string()),
                (
                    "Back_Size".into(),
                    format!(
                        "{},{}",
                        extractor.background.mesh_size.0, extractor.background.mesh_size.1
                    ),
                ),
                (
                    "Back_FilterSize".into(),
                    format!(
                        "{},{}",
                        extractor.background.filter_size.0, extractor.background.filter_size.1
                    ),
                ),
            ],
        };
        io::xml::write(path, &log, &cols)?;
    }
    // Leave the GPU context to process exit instead of tearing the device down here:
    // under load, Mesa's lavapipe corrupted the heap while destroying its device in
    // about 1 run in 80 (never reproduced under a debugger); the OS reclaims it all.
    std::mem::forget(extractor);
    Ok(())
}

/// The images read ahead, in order, with their read times.
type ReadAhead = std::sync::mpsc::Receiver<(crate::Result<crate::Image>, f64)>;

/// The optional whole images read beside every image, with their file names.
#[derive(Clone, Copy)]
struct SideInputs<'a> {
    mask: &'a Option<(String, crate::Image)>,
    threshold: &'a Option<(String, crate::Image)>,
    noise: &'a Option<(String, crate::Image)>,
    /// The flag maps, with their integer widths' masks.
    flags: &'a [(String, crate::Image, u32)],
    /// Dual-image mode: the measurement image.
    measurement: &'a Option<(String, crate::Image)>,
}

/// A FITS_LDAC catalog's LDAC_IMHEAD cards: the image's own header (a TIFF image,
/// `w` x `h`, gets the cards of its size only); nothing for other formats.
fn ldac_header(format: CatalogFormat, image: &str, (w, h): (usize, usize)) -> Result<Vec<String>> {
    if format != CatalogFormat::FitsLdac {
        return Ok(Vec::new());
    }
    let mut cards = if io::is_tiff(image) {
        vec![
            format!("{:<80}", "SIMPLE  =                    T"),
            format!("{:<80}", "BITPIX  =                  -32"),
            format!("{:<80}", "NAXIS   =                    2"),
            format!("{:<80}", format!("NAXIS1  = {w:>20}")),
            format!("{:<80}", format!("NAXIS2  = {h:>20}")),
        ]
    } else {
        io::fits::header_cards(image)?
    };
    // SExtractor's run keywords (PSFEx reads SEXBKDEV), filled in at the end.
    cards.retain(|c| {
        !LDAC_KEYS
            .iter()
            .any(|k| c.starts_with(&format!("{:<8}=", k.0)))
    });
    for (key, comment) in LDAC_KEYS {
        cards.push(io::fits_table::value_card(key, 0.0, comment));
    }
    Ok(cards)
}

/// The keywords SExtractor adds to a FITS_LDAC catalog's LDAC_IMHEAD that skysift
/// writes, with their comments.
const LDAC_KEYS: [(&str, &str); 7] = [
    ("SEXBKGND", "Median background level (ADU)"),
    ("SEXBKDEV", "Median background RMS (ADU)"),
    ("SEXTHLD", "Extraction threshold (ADU)"),
    ("SEXATHLD", "Analysis threshold (ADU)"),
    ("SEXNFIN", "Final number of extracted sources"),
    ("SEXGAIN", "Gain used (e-/ADU)"),
    ("SEXSATLV", "Saturation level used for flagging (ADU)"),
];

/// The values of [`LDAC_KEYS`] for a run with `extractor` whose background is `bg`
/// and that found `objects`.
fn ldac_values(
    extractor: &Extractor,
    bg: &crate::Background,
    objects: usize,
) -> Vec<(&'static str, f64, &'static str)> {
    let p = &extractor.extract;
    let rms = bg.global_rms();
    let values = [
        bg.global_back(),
        rms,
        p.thresh_adu(p.detect_thresh, rms),
        p.thresh_adu(p.analysis_thresh, rms),
        objects as f64,
        p.gain,
        p.satur_level,
    ];
    LDAC_KEYS
        .iter()
        .zip(values)
        .map(|(&(k, c), v)| (k, v, c))
        .collect()
}

/// The extractor for `image` when its FITS header holds SATUR_KEY or GAIN_KEY with
/// a value other than the configuration's (SExtractor's rule: the header wins).
fn header_overrides(
    cli: &Settings,
    extractor: &Extractor,
    image: &str,
) -> Result<Option<Extractor>> {
    let world = match &cli.world {
        Some(req) => {
            // Dual-image mode: the measurement image's WCS (spec wcs.md §10).
            let of = cli.inputs.measurement.as_deref().unwrap_or(image);
            let wcs = crate::world::Wcs::from_file(of, &req.header_suffix, req.sip)?;
            if !cli.quiet {
                for w in &wcs.warnings {
                    say!("skysift: {image}: {w}");
                }
                if !wcs.celestial() && req.pixel_scale == 0.0 {
                    say!(
                        "skysift: {image}: no celestial WCS: *_WORLD columns are in pixel units \
                         and the pixel scale is taken as 1 degree, as SExtractor does; set \
                         --pixel-scale (PIXEL_SCALE) for CLASS_STAR and MU_*"
                    );
                }
            }
            Some(std::sync::Arc::new(crate::world::WorldSettings {
                wcs,
                transform: req.transform,
                pixel_scale: req.pixel_scale,
            }))
        }
        None => None,
    };
    if io::is_tiff(image) {
        return Ok(world.map(|w| {
            let mut e = extractor.clone();
            e.extract.world = Some(w);
            e
        }));
    }
    let keys = [&cli.satur_key, &cli.gain_key].map(|k| k.as_deref().filter(|k| !k.is_empty()));
    let [satur, gain] = io::fits::header_numbers(image, keys)?;
    let p = &extractor.extract;
    let satur = satur.filter(|&v| v != p.satur_level && v > 0.0);
    let gain = gain.filter(|&v| v != p.gain && v >= 0.0);
    if satur.is_none() && gain.is_none() && world.is_none() {
        return Ok(None);
    }
    let mut e = extractor.clone();
    e.extract.world = world;
    if let Some(v) = satur {
        e.extract.satur_level = v;
    }
    if let Some(v) = gain {
        e.extract.gain = v;
    }
    Ok(Some(e))
}

/// Processes every job in order (see [`run`]); `auto[k]` is the memory limit of an
/// image streamed because it is too large; `ahead` delivers the other images.
#[allow(clippy::too_many_arguments)]
fn run_jobs(
    cli: &Settings,
    extractor: &Extractor,
    jobs: &[Job],
    cols: &[&'static catalog::Column],
    checks: &[checkimage::CheckImage],
    sides: SideInputs,
    auto: &[Option<f64>],
    ahead: Option<&ReadAhead>,
    xml_log: &mut Vec<io::xml::Extension>,
) -> Result<()> {
    let n = jobs.len();
    let mut done: Vec<&Job> = Vec::new();
    for (k, job) in jobs.iter().enumerate() {
        // All outputs of one image are put in place together, after all are written;
        // an error (or a signal) before leaves every target as it was.
        let batch = io::output::OutputBatch::begin();
        // The summary line is said once the outputs are in place.
        let result = (|| -> Result<Vec<String>> {
            let mut out = CatalogOut::new(cli, job, cols);
            // A multi-extension file's extensions continue one stream of deblending
            // draws, as in SExtractor's one run over the file.
            let shared;
            let extractor = if job.parts.len() > 1 {
                let mut e = extractor.clone();
                e.deblend_stream = Some(Default::default());
                shared = e;
                &shared
            } else {
                extractor
            };
            let mut lines = Vec::new();
            if job.parts.len() > 1 {
                out.mef = checks
                    .iter()
                    .map(|c| io::fits::MefWriter::create(&c.path))
                    .collect::<Result<_>>()?;
            }
            for (e, image) in job.parts.iter().enumerate() {
                let part = Part {
                    image,
                    ext: e as u16,
                };
                // Images read ahead are the single-image jobs whole.
                let ahead = ahead.filter(|_| job.parts.len() == 1);
                lines.extend(run_part(
                    cli, extractor, part, &mut out, checks, &sides, auto[k], ahead, k, n,
                )?);
            }
            xml_log.append(&mut out.log);
            for m in out.mef.drain(..) {
                m.finish()?;
            }
            out.finish()?;
            Ok(lines)
        })()
        .and_then(|lines| batch.commit().map(|_| lines));
        match result {
            Ok(lines) => {
                for line in lines {
                    say!("{line}");
                }
            }
            Err(e) => {
                if n > 1 {
                    let names: Vec<String> = done.iter().map(|j| j.image.clone()).collect();
                    say!(
                        "skysift: {} of {n} images done before {} failed{}{}",
                        done.len(),
                        job.image,
                        if done.is_empty() { "" } else { ": " },
                        names.join(", ")
                    );
                }
                return Err(e);
            }
        }
        done.push(job);
    }
    Ok(())
}

/// Extracts one image of a job (whole or streamed) into its catalog `out`, with its
/// check images and regions; the summary line.
#[allow(clippy::too_many_arguments)]
fn run_part(
    cli: &Settings,
    extractor: &Extractor,
    part: Part,
    out: &mut CatalogOut,
    checks: &[checkimage::CheckImage],
    sides: &SideInputs,
    auto: Option<f64>,
    ahead: Option<&ReadAhead>,
    k: usize,
    n: usize,
) -> Result<Option<String>> {
    let SideInputs {
        mask,
        threshold: thresh_img,
        noise: noise_img,
        flags: flag_imgs,
        measurement: meas_img,
    } = *sides;
    let streaming = cli.inputs.streamed();
    let from_header = header_overrides(cli, extractor, part.image)?;
    let extractor = from_header.as_ref().unwrap_or(extractor);
    if !out.mef.is_empty() && (streaming || auto.is_some()) {
        return Err(crate::Error::InvalidParam {
            name: "--check-image",
            value: part.image.to_string(),
            reason: "the check images of a multi-extension image are written from whole-image \
                     runs, and this extension is streamed: name one extension (file.fits[1]) \
                     for streamed check images"
                .into(),
        });
    }
    if streaming {
        return stream_one(cli, extractor, part, out, checks, k, n, None);
    }
    if let Some(limit) = auto {
        if !cli.quiet {
            say!(
                        "skysift: {} is larger than this machine's free memory allows for a whole-image run; \
                         streaming it with --memory-limit {limit:.0}",
                        part.image
                    );
        }
        return stream_one(cli, extractor, part, out, checks, k, n, Some(limit));
    }
    let start = Instant::now();
    let (image, read_s) = match ahead {
        Some(rx) => {
            let (image, t) = rx
                .recv()
                .map_err(|_| crate::Error::System("the image reader stopped".into()))?;
            (image?, t)
        }
        None => (io::read_image(part.image)?, start.elapsed().as_secs_f64()),
    };
    let same_shape = |what: &str, name: &str, img: &crate::Image| {
        if (img.width(), img.height()) != (image.width(), image.height()) {
            Err(crate::Error::Mismatch(format!(
                "the {what} {name} is {} but the image {} is {}: they must have the same shape",
                img.shape_string(),
                part.image,
                image.shape_string()
            )))
        } else {
            Ok(())
        }
    };
    let mask_bits = match &mask {
        Some((name, m)) => {
            same_shape("mask", name, m)?;
            Some(Mask::from_image(m, cli.inputs.mask_thresh))
        }
        None => None,
    };
    if let Some((name, t)) = &thresh_img {
        same_shape("threshold image", name, t)?;
    }
    for (name, f, _) in flag_imgs {
        same_shape("flag image", name, f)?;
    }
    if let Some((name, m)) = meas_img {
        same_shape("measurement image", name, m)?;
    }
    let flag_refs: Vec<(&crate::Image, u32)> = flag_imgs.iter().map(|(_, f, m)| (f, *m)).collect();
    let shape = image.shape_string();
    let dims = (image.width(), image.height());
    let pixels = (dims.0 * dims.1) as u64;
    let result = extractor.extract_owned(
        image,
        Inputs {
            mask: mask_bits.as_ref(),
            threshold_image: thresh_img.as_ref().map(|(_, t)| t),
            noise: noise_img.as_ref().map(|(_, n)| n),
            flags: &flag_refs,
            measurement: meas_img.as_ref().map(|(_, m)| m),
        },
    )?;
    let (invalid, spread) = result.invalid_spread;
    if let (false, Some(n)) = (
        cli.quiet,
        crate::convolve::invalid_spread_notice(part.image, invalid, spread, pixels),
    ) {
        say!("{n}");
    }
    let t_write = Instant::now();
    if out.mef.is_empty() {
        for c in checks {
            checkimage::write(c, &result)?;
        }
    } else {
        // One extension of each check image, named as the image extension.
        let cards = io::fits::header_cards(part.image)?;
        let extname = crate::world::Header::from_cards(&cards)
            .raw("EXTNAME")
            .map_or_else(|| format!("EXT{}", part.ext + 1), str::to_string);
        for (c, m) in checks.iter().zip(&mut out.mef) {
            checkimage::append(c, &result, m, &extname)?;
        }
    }
    if let Some(r) = &cli.regions {
        io::regions::write_regions(r, &result.catalog)?;
    }
    let writer = out.begin(part.image, dims)?;
    let mut overflows = Overflows::default();
    for o in &result.catalog.objects {
        overflows.note(o);
        if part.ext == 0 {
            writer.write(o)?;
        } else {
            writer.write(&crate::Object {
                ext: part.ext,
                ..o.clone()
            })?;
        }
    }
    for (key, value, comment) in
        ldac_values(extractor, &result.background, result.catalog.objects.len())
    {
        writer.set_card(key, value, comment);
    }
    overflows.say(cli, extractor);
    if cli.timings {
        if let Some(peak) = peak_rss_mib() {
            say!("{:>32}: {peak:.1} MiB", "peak resident memory");
        }
        say!("{:>32}: {:8.4} s", "read image", read_s);
        say_timings(&result.timings);
        say!(
            "{:>32}: {:8.4} s",
            "write outputs",
            t_write.elapsed().as_secs_f64()
        );
    }
    out.log.push(xml_extension(
        extractor,
        &part,
        &result.background,
        result.catalog.len(),
        start,
    ));
    Ok((!cli.quiet).then(|| {
        format!(
            "skysift: {}{} objects in {} ({}, background {:.4}, RMS {:.4}) -> {} in {:.3} s ({})",
            counter(k, n),
            result.catalog.len(),
            part.image,
            shape,
            result.background.global_back(),
            result.background.global_rms(),
            out.shown(),
            start.elapsed().as_secs_f64(),
            backend_name(extractor)
        )
    }))
}
