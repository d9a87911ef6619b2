// Stream compaction of the detected pixels of a strip, in raster order, so that only
// they cross back to the CPU (never the full label image).
//
// One invocation: one group of 32 consecutive strip pixels. `count` writes how many
// of them are detected; the host turns the counts into offsets (prefix sum) and
// `scatter` writes each detected pixel as four words at 4·(offsets[group] + its rank
// in the group): its strip-local index (bit 31 set if the raw pixel is saturated),
// its root label, its filtered value and its unfiltered (background-subtracted)
// value. No atomics: the output order is raster order on every run.
// Workgroup: 64, dispatched in 2-D as (min(n, 65535), ceil(n / 65535)) workgroups
// with n = ceil(groups / 64).
// Bindings: 0 params (uniform), 1 labels (u32), 2 filtered (f32), 3 counts (u32 out),
// 4 offsets (u32), 5 out (u32 x 4 per pixel), 6 subtracted source rows (f32),
// 7 raw source rows (f32).
// CPU twin: src/gpu/mod.rs (Segmentation built from the compacted pixels).

// Params, NONE and is_nan_bits come from common.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> filtered: array<f32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<storage, read> sub: array<f32>;
@group(0) @binding(7) var<storage, read> raw: array<f32>;

// Groups g_start.. (scatter runs in windows; count from 0): n_groups is the window's end.
fn group_id(wg: vec3<u32>, lid: u32) -> u32 {
    return params.g_start + (wg.y * params.groups_x + wg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn count(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = group_id(wg, lid);
    if (g >= params.n_groups) {
        return;
    }
    let n = params.width * params.rows;
    let start = g * 32u;
    let end = min(start + 32u, n);
    var c = 0u;
    for (var i = start; i < end; i = i + 1u) {
        if (labels[i] != NONE) {
            c = c + 1u;
        }
    }
    counts[g] = c;
}

@compute @workgroup_size(64)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = group_id(wg, lid);
    if (g >= params.n_groups) {
        return;
    }
    let n = params.width * params.rows;
    let start = g * 32u;
    let end = min(start + 32u, n);
    var o = offsets[g];
    // Strip index -> source-row index (the source rows start src_y0, the strip y0).
    let shift = (params.y0 - params.src_y0) * params.width;
    for (var i = start; i < end; i = i + 1u) {
        let l = labels[i];
        if (l != NONE) {
            let saturated = params.has_satur == 1u && raw[i + shift] >= params.satur;
            out[4u * o] = i | select(0u, 0x80000000u, saturated);
            out[4u * o + 1u] = l;
            out[4u * o + 2u] = bitcast<u32>(filtered[i]);
            out[4u * o + 3u] = bitcast<u32>(sub[i + shift]);
            o = o + 1u;
        }
    }
}
