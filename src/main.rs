//! The `skysift` command. Thin: arguments → validated settings → library → files.
//! Exit codes: 0 success, 2 bad input or usage (with a message naming the problem),
//! 1 unexpected failure.

mod checkimage;
mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{BackendArg, Cli};
use skysift::{catalog, io, Backend, Extractor, Inputs, Mask};
use std::time::Instant;

fn run(cli: Cli) -> Result<(), skysift::Error> {
    let start = Instant::now();
    if cli.gpu_info {
        let ctx = skysift::gpu::GpuContext::new()?;
        println!("{}", ctx.describe());
        return Ok(());
    }
    let (Some(image_path), Some(output)) = (cli.image.clone(), cli.output.clone()) else {
        return Err(skysift::Error::InvalidParam {
            name: "IMAGE",
            value: String::new(),
            reason: "an image and -o CATALOG are required".into(),
        });
    };
    let bg = cli.background_params()?;
    let ex = cli.extract_params()?;
    let cols = catalog::select_columns(&cli.params)?;
    let mut checks = checkimage::parse_all(&cli.check_image)?;
    if let Some(dir) = &cli.png_dir {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(|e| skysift::Error::Output {
                path: dir.clone(),
                reason: format!("cannot create the picture folder: {e}"),
            })?;
        }
        checks.extend(checkimage::png_dir(dir));
    }
    let backend = match cli.backend {
        BackendArg::Cpu => Backend::Cpu,
        BackendArg::Gpu => Backend::Gpu,
        BackendArg::Auto => Backend::Auto,
    };
    // Fail on unwritable outputs before the work, not after it.
    io::check_writable(&output)?;
    for c in &checks {
        io::check_writable(&c.path)?;
    }
    if let Some(r) = &cli.regions {
        io::check_writable(r)?;
    }
    let t_read = Instant::now();
    let image = io::read_image(&image_path)?;
    let read_s = t_read.elapsed().as_secs_f64();
    let mask = match &cli.mask {
        Some(m) => {
            let mimg = io::read_image(m)?;
            if (mimg.width(), mimg.height()) != (image.width(), image.height()) {
                return Err(skysift::Error::Mismatch(format!(
                    "the mask {m} is {} but the image {} is {}: they must have the same shape",
                    mimg.shape_string(),
                    image_path,
                    image.shape_string()
                )));
            }
            Some(Mask::from_image(&mimg, cli.mask_thresh as f32))
        }
        None => None,
    };
    let thresh_img = match &cli.threshold_image {
        Some(t) => {
            let timg = io::read_image(t)?;
            if (timg.width(), timg.height()) != (image.width(), image.height()) {
                return Err(skysift::Error::Mismatch(format!(
                    "the threshold image {t} is {} but the image {} is {}: they must have the same shape",
                    timg.shape_string(),
                    image_path,
                    image.shape_string()
                )));
            }
            Some(timg)
        }
        None => None,
    };
    let noise_img = match &cli.noise_image {
        Some(n) => Some(io::read_image(n)?),
        None => None,
    };
    let mut extractor = Extractor::new(bg, ex, backend);
    if let Some(notice) = extractor.prepare()? {
        if !cli.quiet {
            eprintln!("{notice}");
        }
    }
    let shape = image.shape_string();
    let result = extractor.extract_owned(
        image,
        Inputs {
            mask: mask.as_ref(),
            threshold_image: thresh_img.as_ref(),
            noise: noise_img.as_ref(),
        },
    )?;
    let t_write = Instant::now();
    for c in &checks {
        checkimage::write(c, &result)?;
    }
    if let Some(r) = &cli.regions {
        io::regions::write_regions(r, &result.catalog)?;
    }
    io::catalog::write_catalog(&output, &result.catalog, &cols, cli.catalog_format())?;
    if cli.timings {
        eprintln!("{:>32}: {:8.4} s", "read image", read_s);
        for (name, t) in &result.timings {
            eprintln!("{name:>32}: {t:8.4} s");
        }
        eprintln!(
            "{:>32}: {:8.4} s",
            "write outputs",
            t_write.elapsed().as_secs_f64()
        );
    }
    if !cli.quiet {
        eprintln!(
            "skysift: {} objects in {} ({}, background {:.4}, RMS {:.4}) -> {} in {:.3} s ({})",
            result.catalog.len(),
            image_path,
            shape,
            result.background.global_back(),
            result.background.global_rms(),
            output.display(),
            start.elapsed().as_secs_f64(),
            match &extractor.gpu {
                Some(g) => format!("GPU: {}", g.adapter_name()),
                None => "CPU".to_string(),
            }
        );
    }
    Ok(())
}

fn main() {
    // Mesa's Vulkan drivers complain on stderr when XDG_RUNTIME_DIR is unset (common
    // in containers and CI); give them the temporary folder before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let threads = cli.threads;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads");
    let pool = match pool {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skysift: error: {e:#}");
            std::process::exit(1);
        }
    };
    match pool.install(|| run(cli)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("skysift: error: {e}");
            std::process::exit(2);
        }
    }
}
