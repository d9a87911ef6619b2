//! The library's error type. Every message names the file, option or value at fault
//! and, where there is one, the fix.

use std::path::PathBuf;

/// Errors returned by skysift. All of them describe bad input or an unusable
/// environment; the CLI exits with status 2 on every one of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of its valid range.
    #[error("invalid value for {name}: {value} ({reason})")]
    InvalidParam {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// An input file could not be read or is not what it should be.
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    /// An output file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
    /// Two inputs that must agree do not (e.g. a mask of the wrong shape).
    #[error("{0}")]
    Mismatch(String),
    /// The image holds no usable pixel.
    #[error("{0}")]
    EmptyImage(String),
    /// The requested backend cannot run here, or failed (the GPU device).
    #[error("backend unavailable: {0}")]
    Backend(String),
    /// SExtractor's configuration (a `.sex` file, a `-KEYWORD` argument, a `.param`
    /// file) is wrong; the message names where and what.
    #[error("{0}")]
    Config(String),
    /// The machine failed the run: a temporary file, a thread, a signal handler.
    #[error("{0}")]
    System(String),
    /// Objects not complete yet hold more detected pixels than a streamed run's
    /// memory limit allows (often a threshold near the noise, or a bad background).
    #[error(
        "objects not complete yet hold {held} detected pixels at row {row}, more than the \
         {limit} the memory limit allows; the largest starts at row {first_row} and has \
         {pixels} pixels so far. An object this large often means a threshold near the \
         noise or a bad background: raise the detection threshold (DETECT_THRESH), or the \
         memory limit"
    )]
    ObjectTooLarge {
        limit: usize,
        row: usize,
        held: usize,
        first_row: u32,
        pixels: usize,
    },
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn param(
        name: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        // Numbers far from 1 print as 1e-320, not as 320 digits.
        let mut value = value.to_string();
        if value.len() > 24 {
            if let Ok(v) = value.parse::<f64>() {
                value = format!("{v:e}");
            }
        }
        Error::InvalidParam {
            name,
            value,
            reason: reason.into(),
        }
    }
    pub(crate) fn input(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn output(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Output {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
