// Background evaluation and subtraction of one strip's source rows (the strip and
// the filter's halo rows above and below it).
//
// One invocation: one pixel (x, r) of the source rows. It evaluates the background
// spline at the pixel from the row's node table and the column's weights, in f32 and
// in the CPU's order (src/background.rs, eval_pixel: a·(n0 + ca·d0) + b·(n1 + cb·d1),
// SExtractor's, every product rounded on its own; d0, d1 are second derivatives / 6), and writes the subtracted value: NaN for an
// invalid pixel (NaN, ±Inf, <= -1e30), 0 for a masked one, raw - background
// otherwise. The raw values stay in `raw` (the compaction reads them to flag
// saturated pixels).
// Workgroup: 16 x 16, dispatched in 2-D as (ceil(width/16), ceil(src_rows/16)).
// Bindings: 0 params (uniform), 1 raw source rows (f32), 2 subtracted (f32 out),
// 3 column interval (u32 per column), 4 column weights (vec4<f32> a, b, a²−1, b²−1
// per column), 5 row nodes (per source row: nodes_len node values, then nodes_len second
// derivatives along x divided by 6), 6 mask bits of the source rows (unused when has_mask = 0).
// CPU twin: src/pipeline.rs (subtract_row) with src/background.rs (eval_row).

// Params, is_nan_bits and keep come from common.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read_write> sub: array<f32>;
@group(0) @binding(3) var<storage, read> col_interval: array<u32>;
@group(0) @binding(4) var<storage, read> col_weights: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> row_nodes: array<f32>;
@group(0) @binding(6) var<storage, read> mask_bits: array<u32>;

// The twin of background.rs's eval_pixel.
fn eval_pixel(wt: vec4<f32>, n0: f32, n1: f32, d0: f32, d1: f32) -> f32 {
    // A flat interval is its node value exactly (background.rs, eval_pixel).
    if (n0 == n1 && d0 == 0.0 && d1 == 0.0) {
        return n0;
    }
    let l = n0 + keep(wt.z * d0);
    let r = n1 + keep(wt.w * d1);
    return keep(wt.x * l) + keep(wt.y * r);
}

// Valid: finite and above -1e30 (image.rs, is_valid), tested on the bits for NaN/Inf.
fn is_valid(v: f32) -> bool {
    let finite = (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
    return finite && v > -1e30;
}

@compute @workgroup_size(16, 16)
fn subtract(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let r = gid.y;
    if (x >= params.width || r >= params.src_rows) {
        return;
    }
    let idx = r * params.width + x;
    let v = raw[idx];
    var out = 0.0;
    var masked = false;
    if (params.has_mask == 1u) {
        masked = ((mask_bits[idx / 32u] >> (idx % 32u)) & 1u) == 1u;
    }
    if (!is_valid(v)) {
        out = bitcast<f32>(0x7fc00000u);
    } else if (!masked) {
        let i = col_interval[x];
        let base = r * 2u * params.nodes_len;
        let n0 = row_nodes[base + i];
        let n1 = row_nodes[base + i + 1u];
        let d0 = row_nodes[base + params.nodes_len + i];
        let d1 = row_nodes[base + params.nodes_len + i + 1u];
        out = v - eval_pixel(col_weights[x], n0, n1, d0, d1);
    }
    sub[idx] = out;
}
