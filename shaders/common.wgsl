// Definitions shared by every skysift shader. The host prepends this file to each
// stage's source (src/gpu/mod.rs, `shader_source`): WGSL has no include.
// `Params` mirrors `gpu::Params` (#[repr(C)], 20 x 4 bytes).

struct Params {
    width: u32,
    rows: u32,
    y0: u32,
    height: u32,
    src_y0: u32,
    src_rows: u32,
    kw: u32,
    kh: u32,
    thresh_mode: u32,
    thresh: f32,
    has_mask: u32,
    connectivity: u32,
    never: u32,
    groups_x: u32,
    n_groups: u32,
    // Number of spline nodes per row in the background row table (subtract.wgsl).
    nodes_len: u32,
    // Saturation level (raw ADU) and whether there is one.
    satur: f32,
    has_satur: u32,
    // First group of a compaction window (compact.wgsl).
    g_start: u32,
    pad1: u32,
}

// Label of a pixel that is not detected.
const NONE: u32 = 0xffffffffu;

// NaN test on the bits (WGSL lets compilers assume that floats are never NaN).
fn is_nan_bits(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Keeps a product rounded on its own: the select on a uniform that is always 0 stops
// the compiler from fusing it into a multiply-add, so that the sums round as on the CPU.
fn keep(v: f32) -> f32 {
    return select(v, 0.0, params.never != 0u);
}
