//! The GPU backend's device side: the context (adapter, device, queue, pipelines),
//! buffers and the uniforms that mirror the shaders' structs, and the WGSL sources
//! (shaders/*.wgsl) embedded at build time.
//!
//! The stages' host code sits next to its CPU twin: the mesh statistics in
//! [`crate::background::gpu`], and a strip's detection (subtraction, filtering,
//! thresholding, union-find labelling, compaction) in [`crate::detect::gpu`]. The
//! pipeline (`stream::scan`) hands the device one strip at a time, with the
//! kernel's halo rows above and below; strips are sized to the device's storage
//! binding limit and halved when the device runs out of memory, so no image size is
//! refused. Each strip's components are rooted at their first pixel in raster order
//! and only the detected pixels come back; the CPU joins components across seams,
//! then deblends and measures.

mod buffers;
mod context;
pub(crate) mod uniforms;

pub use crate::detect::gpu::GpuStrips;
pub use crate::detect::RowDetections;
pub(crate) use context::Failure;
pub use context::{probe_adapter, GpuContext};

/// Where the GPU detection spent its time (wall clock on the host; a stage's time
/// includes waiting for the device to finish it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuTimings {
    /// Writing the strips (and background tables, thresholds, mask bits) into device
    /// buffers, with the CPU's evaluation of the background spline's row nodes.
    pub upload: f64,
    /// Background subtraction, filtering, thresholding and union-find labelling,
    /// until the last flag readback.
    pub filter_and_label: f64,
    /// Counting, offsets, the list and reading back the detected pixels.
    pub compaction_and_readback: f64,
    /// Number of strips.
    pub strips: usize,
}

/// Shared WGSL definitions, prepended to every stage.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// A stage's complete source: common.wgsl followed by the stage.
pub fn shader_source(stage: &str) -> String {
    format!("{COMMON}\n{stage}")
}

/// The WGSL sources of the stages, embedded at build time.
pub const SHADERS: &[(&str, &str)] = &[
    (
        "filter_threshold.wgsl",
        include_str!("../../shaders/filter_threshold.wgsl"),
    ),
    ("label.wgsl", include_str!("../../shaders/label.wgsl")),
    ("compact.wgsl", include_str!("../../shaders/compact.wgsl")),
    ("subtract.wgsl", include_str!("../../shaders/subtract.wgsl")),
    (
        "meshstats.wgsl",
        include_str!("../../shaders/meshstats.wgsl"),
    ),
];

/// The most loop steps one invocation of the filter shader may take: Mesa's
/// llvmpipe/lavapipe end an invocation silently after about 65,535 loop iterations,
/// and the filter takes about (width + 1) x height steps per pixel. Measured on
/// llvmpipe: 255x255 exact; 256x256, 257x257 and 300 wide x 218 tall not. Applied on
/// every adapter, so that the GPU and CPU catalogs are equal everywhere.
pub const MAX_FILTER_STEPS: usize = 255 * 256;

/// Whether the GPU filter computes `kernel` exactly; larger kernels are filtered on
/// the CPU (the GPU still computes the mesh statistics).
pub fn gpu_filters(kernel: Option<&crate::Kernel>) -> bool {
    kernel.is_none_or(|k| (k.width() + 1).saturating_mul(k.height()) <= MAX_FILTER_STEPS)
}

/// The timing label of a shader entry point's device time (see
/// [`GpuContext::set_profiling`]).
pub fn kernel_label(pass: &str) -> &'static str {
    match pass {
        "moments" => "GPU kernel: mesh moments",
        "mode" => "GPU kernel: mesh histogram + mode",
        "subtract" => "GPU kernel: subtract",
        "filter" => "GPU kernel: filter + threshold",
        "compress" => "GPU kernel: label compress",
        "reduce" => "GPU kernel: label reduce",
        "count" => "GPU kernel: compaction count",
        "index_list" => "GPU kernel: compaction list",
        "gather" => "GPU kernel: compaction gather",
        _ => "GPU kernel: other",
    }
}

/// Mask flags packed 32 to a word, bit k % 32 of word k / 32 (as the shaders read them).
pub(crate) fn mask_bits(m: &[bool]) -> Vec<u32> {
    let mut bits = vec![0u32; m.len().div_ceil(32)];
    for (k, &b) in m.iter().enumerate() {
        if b {
            bits[k / 32] |= 1 << (k % 32);
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::{shader_source, SHADERS};

    #[test]
    fn every_shader_parses_and_validates_with_naga() {
        for (name, stage) in SHADERS {
            let src = &shader_source(stage);
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            let mut v = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::FLOAT64,
            );
            v.validate(&module)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
