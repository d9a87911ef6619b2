// Stream compaction of the detected pixels of a strip, in raster order, so that only
// they cross back to the CPU (never the full label image).
//
// `count` (one invocation per group of 32 consecutive strip pixels) writes how many
// of them are detected; the host turns the counts into offsets (prefix sum);
// `index_list` writes each detected pixel's strip index at offsets[group] + its rank
// in the group: the list that label.wgsl labels and `gather` reads. `gather` (one
// invocation per listed pixel) writes four words per pixel: its strip index (bit 31
// set if the raw pixel is saturated), its root label, its filtered value and its
// unfiltered (background-subtracted) value. No atomics: the output order is raster
// order on every run.
// Workgroup: 64, dispatched in 2-D as (min(n, 65535), ceil(n / 65535)) workgroups
// with n = ceil(groups / 64) (or the window's listed pixels / 64 for `gather`).
// Bindings: 0 params (uniform), 1 labels (u32), 2 filtered (f32), 3 counts (u32 out),
// 4 offsets (u32), 5 out (u32: the list for `index_list`, 4 words per pixel for
// `gather`), 6 subtracted source rows (f32), 7 raw source rows (f32), 8 the list (u32).
// CPU twin: the CPU's strips give the same rows of runs (src/detect/cpu.rs).

// Params, NONE and is_nan_bits come from common.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> filtered: array<f32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<storage, read> sub: array<f32>;
@group(0) @binding(7) var<storage, read> raw: array<f32>;
@group(0) @binding(8) var<storage, read> detected: array<u32>;

// Groups (or list entries, for `gather`) g_start..n_groups.
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

// index_list: the strip indices of the detected pixels, in raster order, at
// offsets[group] + rank in the group (out holds one word per detected pixel here).
@compute @workgroup_size(64)
fn index_list(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = group_id(wg, lid);
    if (g >= params.n_groups) {
        return;
    }
    let n = params.width * params.rows;
    let start = g * 32u;
    let end = min(start + 32u, n);
    var o = offsets[g];
    for (var i = start; i < end; i = i + 1u) {
        if (labels[i] != NONE) {
            out[o] = i;
            o = o + 1u;
        }
    }
}

// Gather: for list entries g_start..n_groups (a window of the output), four words
// each at 4·(k − g_start): the strip index (bit 31 set if the raw pixel is
// saturated), its root label, its filtered value and its unfiltered value.
@compute @workgroup_size(64)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wg, lid);
    if (k >= params.n_groups) {
        return;
    }
    let i = detected[k];
    // Strip index -> source-row index (the source rows start src_y0, the strip y0).
    let shift = (params.y0 - params.src_y0) * params.width;
    let saturated = params.has_satur == 1u && raw[i + shift] >= params.satur;
    let o = 4u * (k - params.g_start);
    out[o] = i | select(0u, 0x80000000u, saturated);
    out[o + 1u] = labels[i];
    out[o + 2u] = bitcast<u32>(filtered[i]);
    out[o + 3u] = bitcast<u32>(sub[i + shift]);
}
