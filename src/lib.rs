//! # skysift
//!
//! Source extraction for astronomical images, SExtractor's way. The pipeline:
//! read an image ([`io::read_image`]) → estimate the background on a mesh grid and
//! interpolate it ([`Background`]) → subtract it and filter with a detection kernel
//! ([`Kernel`], [`convolve()`](convolve::convolve)) → threshold (relative to the RMS,
//! absolute, or a per-pixel threshold image; masks honoured) → label connected
//! pixels (8- or 4-connectivity, minimum area; [`Segmentation`]) → measure each
//! object's isophotal parameters ([`Object`]) → write the catalog
//! ([`io::catalog::write_catalog`]) and check images.
//!
//! The per-pixel stages (mesh statistics, background subtraction, filtering,
//! thresholding, union-find labelling) run on the CPU or, with
//! [`Extractor::with_gpu`] and a [`gpu::GpuContext`], as WGSL shaders through wgpu,
//! with identical results. One pipeline ([`stream`]) runs every image as a sequence
//! of row strips: a whole image in memory is one strip; an image of any size streams
//! from disk through bounded memory ([`Extractor::extract_file`],
//! [`stream::extract_streaming_to`]).
//!
//! Library coordinates are 0-based (the first pixel's centre is (0, 0)); written
//! catalogs are 1-based, as SExtractor's.
//!
//! ```no_run
//! use skysift::{Extractor, Inputs};
//! let image = skysift::io::read_image("field.fits").unwrap();
//! let result = Extractor::default().extract(&image, Inputs::default()).unwrap();
//! for o in &result.catalog.objects {
//!     println!("{} {:.3} {:.3} {}", o.number, o.x + 1.0, o.y + 1.0, o.flux);
//! }
//! ```
// Unsafe code only where a C library must be called directly: cfitsio's disk-file
// open/create and null-checked reads (src/io/fits.rs), and `_exit` after a signal
// (src/io/output.rs); each block says why it is sound.
#![deny(unsafe_code)]

pub mod backend;
pub mod background;
pub mod catalog;
pub mod checkimage;
pub mod clean;
pub mod config;
pub mod convolve;
pub mod deblend;
pub mod detect;
pub mod error;
pub mod gpu;
pub mod imaflags;
pub mod image;
pub mod io;
pub mod kernel;
pub mod label;
pub mod measure;
pub mod params;
pub mod photometry;
pub mod picture;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod spill;
pub mod stream;
pub mod world;

pub use backend::Backend;
pub use background::Background;
pub use catalog::Catalog;
pub use error::{Error, Result};
pub use image::{Image, Mask};
pub use kernel::Kernel;
pub use label::Segmentation;
pub use measure::Object;
pub use params::{BackgroundParams, Connectivity, ExtractParams, RmsSource, ThreshType};
pub use pipeline::{Extraction, Extractor, FileExtraction, FileInputs, Inputs};
