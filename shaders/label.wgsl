// Connected-component labelling of one strip by union-find on the GPU, 32-bit
// atomics only. The filter pass leaves every detected pixel its own root; `reduce`
// unites each one with its detected causal neighbours, `compress` points it at its
// root. Both run over the list of the strip's detected pixels (compact.wgsl's
// `list`), not over every pixel: most pixels are not detected.
//
// labels[i] is NONE for background pixels, else the index of a parent pixel with a
// smaller (or equal, for a root) strip-local index. Every union links the larger
// root to the smaller, so each component's final root is its smallest index, i.e.
// its first pixel in raster order: the numbering is deterministic and equal to the
// CPU's (whose objects are numbered by their first pixel).
// Loops are bounded (lavapipe silently stops an invocation after ~65k loop
// iterations): an invocation that runs out of steps raises `flags[0]` and the host
// runs the pass again until no invocation does.
// One invocation: one detected pixel, list[k] for k < n_groups (here: how many there
// are); workgroup 64, dispatched in 2-D as (min(n, 65535), ceil(n / 65535)) with
// n = ceil(count / 64).
// Bindings: 0 params (uniform), 1 labels (atomic u32, read-write), 2 flags (atomic u32),
// 3 list (u32: strip indices of the detected pixels).
// CPU twin: the row joining of src/stream.rs (`Open`).

const MAX_STEPS: u32 = 4096u;
// Params, NONE and is_nan_bits come from common.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> labels: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> list: array<u32>;

// The detected pixel of this invocation (NONE past the end of the list).
fn listed(wg: vec3<u32>, lid: u32) -> u32 {
    let k = (wg.y * params.groups_x + wg.x) * 64u + lid;
    if (k >= params.n_groups) {
        return NONE;
    }
    return list[k];
}

fn on(x: i32, r: i32) -> bool {
    if (x < 0 || r < 0 || x >= i32(params.width) || r >= i32(params.rows)) {
        return false;
    }
    return atomicLoad(&labels[u32(r) * params.width + u32(x)]) != NONE;
}

// Root of i, following parents for at most MAX_STEPS steps (raises the flag if cut).
fn find(i0: u32) -> u32 {
    var i = i0;
    for (var s = 0u; s < MAX_STEPS; s = s + 1u) {
        let p = atomicLoad(&labels[i]);
        if (p == i) {
            return i;
        }
        i = p;
    }
    atomicStore(&flags[0], 1u);
    return i;
}

// Compress: point every detected pixel at its current root.
@compute @workgroup_size(64)
fn compress(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let idx = listed(wg, lid);
    if (idx == NONE) {
        return;
    }
    let root = find(idx);
    atomicStore(&labels[idx], root);
}

fn unite(a0: u32, b0: u32) {
    var a = find(a0);
    var b = find(b0);
    for (var s = 0u; s < MAX_STEPS; s = s + 1u) {
        if (a == b) {
            return;
        }
        if (a < b) {
            let t = a;
            a = b;
            b = t;
        }
        // a > b: link root a under b, unless a stopped being a root meanwhile.
        let old = atomicMin(&labels[a], b);
        if (old == a) {
            return;
        }
        a = find(old);
        b = find(b);
    }
    atomicStore(&flags[0], 1u);
}

// Reduce: unite each detected pixel with its detected causal neighbours.
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let idx = listed(wg, lid);
    if (idx == NONE) {
        return;
    }
    let w = i32(params.width);
    let x = i32(idx % params.width);
    let r = i32(idx / params.width);
    if (on(x - 1, r)) {
        unite(idx, idx - 1u);
    }
    if (on(x, r - 1)) {
        unite(idx, u32((r - 1) * w + x));
    }
    if (params.connectivity == 8u) {
        if (on(x - 1, r - 1)) {
            unite(idx, u32((r - 1) * w + x - 1));
        }
        if (on(x + 1, r - 1)) {
            unite(idx, u32((r - 1) * w + x + 1));
        }
    }
}
