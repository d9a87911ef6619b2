//! Where the heavy stages run.

use crate::error::{Error, Result};

/// The compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Rust on the CPU, multithreaded with rayon.
    Cpu,
    /// WGSL compute shaders through wgpu.
    Gpu,
    /// The GPU when one is usable, else the CPU.
    #[default]
    Auto,
}

impl Backend {
    /// The backend that will actually run, or an error saying why the requested one cannot.
    pub fn resolve(self) -> Result<Backend> {
        match self {
            Backend::Cpu | Backend::Auto => Ok(Backend::Cpu),
            Backend::Gpu => Err(Error::Backend(
                "this build of skysift has no GPU stages yet (the GPU path is tracked as its own issue); \
                 use --backend cpu or auto"
                    .into(),
            )),
        }
    }
}
