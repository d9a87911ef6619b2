//! The `skysift` command: arguments → settings ([`cli`]) → the library's run
//! ([`skysift::run::run`]) → exit code. Exit codes: 0 success, 2 bad input or usage
//! (with a message naming the problem), 1 unexpected failure.

mod cli;
mod sexargs;

use clap::Parser;
use cli::Cli;
use skysift::io;

/// A line on standard error that never panics (a closed or full stderr is ignored).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// A write to standard output that failed because its reader went away (`| head`)
/// ends the run quietly, as other command-line tools do.
fn quiet_on_broken_pipe(r: std::io::Result<()>) -> skysift::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(skysift::Error::Output {
            path: "standard output".into(),
            reason: e.to_string(),
        }),
        Ok(()) => Ok(()),
    }
}

fn run(cli: Cli) -> Result<(), skysift::Error> {
    if cli.gpu_info {
        let ctx = skysift::gpu::GpuContext::new()?;
        use std::io::Write;
        let out = writeln!(std::io::stdout(), "{}", ctx.describe());
        std::mem::forget(ctx); // see skysift::run::run
        return quiet_on_broken_pipe(out);
    }
    let extractor = cli.extractor()?;
    cli.validate_inputs()?;
    skysift::run::run(&cli.settings(), extractor)
}

fn main() {
    // Mesa's Vulkan drivers complain on stderr when XDG_RUNTIME_DIR is unset (common
    // in containers and CI); give them the temporary folder before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // SIGINT, SIGTERM and SIGHUP remove this run's temporary files (and leave every
    // target as it was) before the process ends with 128 + the signal.
    if let Err(e) = io::output::install_signal_cleanup() {
        say!("skysift: error: {e}");
        std::process::exit(2);
    }
    // SExtractor's style (-c FILE.sex, -KEYWORD value, -d/-dd/-dp/-v) into skysift's.
    let translated = match sexargs::translate(std::env::args_os().collect()) {
        Ok(t) => t,
        Err(e) => {
            say!("skysift: error: {}", cli::message(&e));
            std::process::exit(2);
        }
    };
    if let Some(text) = translated.print {
        use std::io::Write;
        let r = write!(std::io::stdout(), "{text}");
        let _ = quiet_on_broken_pipe(r);
        std::process::exit(0);
    }
    for w in &translated.warnings {
        say!("skysift: warning: {w}");
    }
    let cli = match Cli::try_parse_from(translated.args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                use std::io::Write;
                let r = write!(std::io::stdout(), "{}", e.render());
                let _ = quiet_on_broken_pipe(r);
                std::process::exit(0);
            }
            // clap's message, with skysift's prefix (and without clap's own "error: ").
            let text = e.render().to_string();
            let text = text.trim_start_matches("error: ");
            say!("skysift: error: {}", text.trim_end());
            std::process::exit(2);
        }
    };
    // The worker count is checked before any thread starts.
    if let Some(t) = cli.threads {
        if !(1..=cli::MAX_THREADS).contains(&t) {
            say!(
                "skysift: error: invalid value for --threads: {t} (give 1 to {}, or leave it out to use all cores)",
                cli::MAX_THREADS
            );
            std::process::exit(2);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cli.threads.unwrap_or(0))
        .build();
    let pool = match pool {
        Ok(p) => p,
        Err(e) => {
            say!(
                "skysift: error: cannot start the worker threads ({e}); give fewer with --threads"
            );
            std::process::exit(2);
        }
    };
    match pool.install(|| run(cli)) {
        Ok(()) => {}
        Err(e) => {
            io::output::remove_created_folders();
            say!("skysift: error: {}", cli::message(&e));
            std::process::exit(2);
        }
    }
}
