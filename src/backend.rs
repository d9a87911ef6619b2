//! Where the heavy stages run.

use crate::error::Result;
use crate::gpu::GpuContext;

/// The compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Rust on the CPU, multithreaded with rayon (the library's default: a GPU is
    /// only initialised when asked for).
    #[default]
    Cpu,
    /// WGSL compute shaders through wgpu.
    Gpu,
    /// A hardware GPU when one is usable, else the CPU (the CLI's default).
    Auto,
}

/// What a backend choice resolved to.
#[derive(Debug)]
pub enum Resolved {
    Cpu,
    Gpu(std::sync::Arc<GpuContext>),
}

impl Backend {
    /// Resolves the choice: `Gpu` builds a GPU context or fails with the reason;
    /// `Auto` uses a hardware GPU when there is one, else the CPU, and returns a
    /// one-line notice saying so (a software adapter such as lavapipe is slower than
    /// the CPU path, so `Auto` does not pick it).
    pub fn resolve(self) -> Result<(Resolved, Option<String>)> {
        match self {
            Backend::Cpu => Ok((Resolved::Cpu, None)),
            Backend::Gpu => Ok((Resolved::Gpu(std::sync::Arc::new(GpuContext::new()?)), None)),
            // Probe the adapter first: a software one (lavapipe) is slower than the CPU
            // path and is not worth a device.
            Backend::Auto => match crate::gpu::probe_adapter() {
                Ok((name, true)) => Ok((
                    Resolved::Cpu,
                    Some(format!(
                        "skysift: the only GPU adapter is the software rasteriser {name}; using the CPU (--backend gpu forces it)"
                    )),
                )),
                Ok((_, false)) => match GpuContext::new() {
                    Ok(ctx) => Ok((Resolved::Gpu(std::sync::Arc::new(ctx)), None)),
                    Err(e) => Ok((Resolved::Cpu, Some(format!("skysift: no usable GPU ({e}); using the CPU")))),
                },
                Err(e) => Ok((Resolved::Cpu, Some(format!("skysift: no usable GPU ({e}); using the CPU")))),
            },
        }
    }
}
