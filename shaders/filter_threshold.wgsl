// Filtering and thresholding of one strip of the background-subtracted image
// (written by subtract.wgsl).
//
// One invocation: one pixel (x, y) of the strip. It correlates the image with the
// detection kernel exactly as the CPU twin does (src/convolve.rs, convolve_row:
// kernel rows j, then columns i, zero-valued coefficients and out-of-image taps
// skipped, f32 accumulation from 0 in that order), writes the filtered value, and
// initialises the pixel's label: its strip-local index if it is detected (valid,
// unmasked, filtered value > threshold), NONE otherwise.
// Workgroup: 16 x 16, dispatched in 2-D as (ceil(width/16), ceil(rows/16)).
// Bindings: 0 params (uniform), 1 src rows (image rows src_y0.., f32), 2 kernel (f32),
// 3 per-pixel thresholds of the strip (f32; unused when thresh_mode = 0),
// 4 mask bits of the source rows (u32 words; unused when has_mask = 0), 5 filtered (f32 out),
// 6 labels (u32 out).
// CPU twin: src/pipeline.rs (per-row filtering and thresholding) + src/convolve.rs.

// Params, NONE, is_nan_bits and keep come from common.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> kernel: array<f32>;
@group(0) @binding(3) var<storage, read> thresholds: array<f32>;
@group(0) @binding(4) var<storage, read> mask_bits: array<u32>;
@group(0) @binding(5) var<storage, read_write> filtered: array<f32>;
@group(0) @binding(6) var<storage, read_write> labels: array<u32>;

@compute @workgroup_size(16, 16)
fn filter_threshold(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let r = gid.y;
    if (x >= params.width || r >= params.rows) {
        return;
    }
    let w = params.width;
    let y = params.y0 + r;
    let cx = i32(params.kw / 2u);
    let cy = i32(params.kh / 2u);
    var acc = 0.0;
    for (var j = 0u; j < params.kh; j = j + 1u) {
        let sy = i32(y) + i32(j) - cy;
        if (sy < 0 || sy >= i32(params.height)) {
            continue;
        }
        let srow = u32(sy) - params.src_y0;
        for (var i = 0u; i < params.kw; i = i + 1u) {
            let c = kernel[j * params.kw + i];
            if (c == 0.0) {
                continue;
            }
            let sx = i32(x) + i32(i) - cx;
            if (sx < 0 || sx >= i32(w)) {
                continue;
            }
            // keep(): the product is rounded on its own (no fused multiply-add), as on the CPU.
            acc = acc + keep(c * src[srow * w + u32(sx)]);
        }
    }
    let idx = r * w + x;
    filtered[idx] = acc;
    let centre = src[(y - params.src_y0) * w + x];
    var t = params.thresh;
    if (params.thresh_mode == 1u) {
        t = thresholds[idx];
    }
    var masked = false;
    if (params.has_mask == 1u) {
        let m = (y - params.src_y0) * w + x;
        masked = ((mask_bits[m / 32u] >> (m % 32u)) & 1u) == 1u;
    }
    let on = !is_nan_bits(centre) && !masked && !is_nan_bits(acc) && acc > t;
    labels[idx] = select(NONE, idx, on);
}
