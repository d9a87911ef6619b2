// Background mesh statistics (../shared/spec/background.md, A to C) of a chunk of
// whole mesh rows, in f64 where SExtractor sums in double (needs SHADER_F64).
//
// `moments`: one invocation per mesh, dispatched as (ceil(nx/64), mesh_rows) with
// workgroup 64. It continues its mesh's running sums (n, Σv, Σv²) over the mesh's
// rows r0..r1, in raster order, exactly as the CPU's sequential f64 sums (the host
// splits a mesh's rows over dispatches so that no invocation loops long: lavapipe
// stops invocations after ~65k loop iterations). With clip = 1 only meshes marked
// good count, and only pixels inside their cuts.
// `mode`: one workgroup of 256 per mesh, dispatched as (nx, mesh_rows). It builds
// the mesh's histogram (bin = trunc(v / qscale + cste), the division correctly
// rounded like the CPU's f32 division by `div_rn`) with workgroup atomics, turns it into
// prefix sums, and finds the mode by iterated 3σ clipping around the median: the
// moments over the window by a tree reduction (exact integers in f64), the median
// where the CPU's two-pointer walk ends, by binary search on the prefix sums.
// Bindings: 0 params (uniform), 1 raw rows (f32), 2 mask bits (u32), 3 counts
// (u32 per mesh), 4 sums (f64 x 2 per mesh), 5 cuts (vec2<f32> per mesh), 6 good
// (u32 per mesh), 7 quantisation (per mesh), 8 out (f64 x 2 per mesh: mode, σ).
// CPU twin: src/background.rs (mesh_row_stats, clip_cuts, Quantisation, histogram_mode).

// keep() comes from common.wgsl (it reads params.never).

struct MeshParams {
    width: u32,
    rows: u32,
    bw: u32,
    bh: u32,
    nx: u32,
    mesh_rows: u32,
    r0: u32,
    r1: u32,
    clip: u32,
    has_mask: u32,
    never: u32,
    pad: u32,
}

struct Quant {
    qscale: f32,
    cste: f32,
    qzero: f32,
    nlevels: u32,
}

@group(0) @binding(0) var<uniform> params: MeshParams;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> mask_bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f64>;
@group(0) @binding(5) var<storage, read> cuts: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> good: array<u32>;
@group(0) @binding(7) var<storage, read> quant: array<Quant>;
@group(0) @binding(8) var<storage, read_write> out: array<f64>;

fn keep64(v: f64) -> f64 {
    return select(v, f64(0.0), params.never != 0u);
}

fn valid(idx: u32) -> bool {
    let v = raw[idx];
    let finite = (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
    var masked = false;
    if (params.has_mask == 1u) {
        masked = ((mask_bits[idx / 32u] >> (idx % 32u)) & 1u) == 1u;
    }
    return finite && v > -1e30 && !masked;
}

@compute @workgroup_size(64)
fn moments(@builtin(global_invocation_id) gid: vec3<u32>) {
    let mx = gid.x;
    let my = gid.y;
    if (mx >= params.nx || my >= params.mesh_rows) {
        return;
    }
    let m = my * params.nx + mx;
    if (params.clip == 1u && good[m] == 0u) {
        return;
    }
    let x0 = mx * params.bw;
    let x1 = min(x0 + params.bw, params.width);
    let y0 = my * params.bh;
    let ya = y0 + params.r0;
    let yb = min(y0 + params.r1, min(y0 + params.bh, params.rows));
    var n = counts[m];
    var s = sums[2u * m];
    var s2 = sums[2u * m + 1u];
    let c = cuts[m];
    for (var y = ya; y < yb; y = y + 1u) {
        for (var x = x0; x < x1; x = x + 1u) {
            let idx = y * params.width + x;
            var ok = valid(idx);
            let v = raw[idx];
            if (params.clip == 1u) {
                ok = ok && v >= c.x && v <= c.y;
            }
            if (ok) {
                let d = f64(v);
                n = n + 1u;
                s = s + d;
                s2 = s2 + keep64(d * d);
            }
        }
    }
    counts[m] = n;
    sums[2u * m] = s;
    sums[2u * m + 1u] = s2;
}

const NBINS: u32 = 4096u;
const THREADS: u32 = 256u;
const PER: u32 = 16u; // NBINS / THREADS

// Histogram, then its inclusive prefix sums P[i] = Σ_{b<=i} h[b].
var<workgroup> hist: array<atomic<u32>, 4096>;
var<workgroup> part: array<u32, 256>;
var<workgroup> red: array<f64, 768>;
var<workgroup> wg_go: u32;
var<workgroup> wg_lcut: i32;
var<workgroup> wg_hcut: i32;

// Σ_{b<i} h[b].
fn cum(i: i32) -> u32 {
    if (i <= 0) {
        return 0u;
    }
    return atomicLoad(&hist[u32(i - 1)]);
}

fn bin(i: i32) -> u32 {
    return cum(i + 1) - cum(i);
}

fn next_up(c: f32) -> f32 {
    let b = bitcast<u32>(c);
    if ((b & 0x7fffffffu) == 0u) {
        return bitcast<f32>(1u);
    }
    return bitcast<f32>(select(b - 1u, b + 1u, (b >> 31u) == 0u));
}

fn next_down(c: f32) -> f32 {
    let b = bitcast<u32>(c);
    if ((b & 0x7fffffffu) == 0u) {
        return bitcast<f32>(0x80000001u);
    }
    return bitcast<f32>(select(b + 1u, b - 1u, (b >> 31u) == 0u));
}

// The correctly rounded f32 quotient v / q (q > 0, both finite), as the CPU's f32
// division, without trusting the device's division: from a guess, step to the
// neighbour while v lies outside [lo·q, hi·q], lo and hi being the midpoints to the
// neighbours (in f64, every midpoint and product here is exact), ties to even. The
// guess is deliberately put two ulps off so that the correction runs, and is tested,
// on every device.
fn div_rn(v: f32, q: f32) -> f32 {
    if (is_nan_bits(v / q) || q <= 0.0) {
        return v / q;
    }
    var c = next_up(next_up(f32(f64(v) / f64(q))));
    let vd = f64(v);
    let qd = f64(q);
    for (var k = 0; k < 12; k = k + 1) {
        let dn = next_down(c);
        let up = next_up(c);
        let lo = (f64(dn) + f64(c)) * f64(0.5) * qd;
        let hi = (f64(c) + f64(up)) * f64(0.5) * qd;
        if (vd < lo) {
            c = dn;
        } else if (vd > hi) {
            c = up;
        } else {
            // On a midpoint, the neighbour with the even significand.
            if (vd == lo && (bitcast<u32>(c) & 1u) == 1u) {
                c = dn;
            } else if (vd == hi && (bitcast<u32>(c) & 1u) == 1u) {
                c = up;
            }
            break;
        }
    }
    return c;
}

fn round_half_away(v: f64) -> i32 {
    if (v > f64(0.0)) {
        return i32(v + f64(0.5));
    }
    return i32(v - f64(0.5));
}

@compute @workgroup_size(256)
fn mode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let m = wg.y * params.nx + wg.x;
    let q = quant[m];
    if (q.nlevels == 0u) {
        return;
    }
    let nl = q.nlevels;
    for (var b = t; b < NBINS; b = b + THREADS) {
        atomicStore(&hist[b], 0u);
    }
    workgroupBarrier();
    let x0 = wg.x * params.bw;
    let x1 = min(x0 + params.bw, params.width);
    let y0 = wg.y * params.bh;
    let y1 = min(y0 + params.bh, params.rows);
    let mw = x1 - x0;
    let np = mw * (y1 - y0);
    let fnl = f32(nl);
    for (var k = t; k < np; k = k + THREADS) {
        let idx = (y0 + k / mw) * params.width + x0 + k % mw;
        if (valid(idx)) {
            let qv = div_rn(raw[idx], q.qscale);
            // Rust's `as i64` maps NaN to 0 (bin 0); trunc keeps -0.0 for (-1, 0).
            let sum = qv + q.cste;
            let tb = select(trunc(sum), 0.0, is_nan_bits(sum));
            if (tb >= 0.0 && tb < fnl) {
                atomicAdd(&hist[u32(tb)], 1u);
            }
        }
    }
    workgroupBarrier();
    // Prefix sums: each thread scans its 16 bins, thread 0 the 256 totals.
    let b0 = t * PER;
    var acc = 0u;
    for (var b = b0; b < b0 + PER; b = b + 1u) {
        acc = acc + atomicLoad(&hist[b]);
        atomicStore(&hist[b], acc);
    }
    part[t] = acc;
    workgroupBarrier();
    if (t == 0u) {
        var run = 0u;
        for (var i = 0u; i < THREADS; i = i + 1u) {
            let v = part[i];
            part[i] = run;
            run = run + v;
        }
    }
    workgroupBarrier();
    let off = part[t];
    for (var b = b0; b < b0 + PER; b = b + 1u) {
        atomicAdd(&hist[b], off);
    }
    // Iterated clipping (thread 0 holds the state; the window is broadcast).
    let top = i32(nl) - 1;
    var lcut = 0;
    var hcut = top;
    var sig = f64(10.0) * f64(top);
    var sig_prev = f64(1.0);
    var mean = f64(0.0);
    var med = f64(0.0);
    var stop = false;
    let qzero = f64(q.qzero);
    let qscale = f64(q.qscale);
    for (var iter = 0; iter < 100; iter = iter + 1) {
        if (t == 0u) {
            let go = !stop && sig >= f64(0.1) && abs(sig / sig_prev - f64(1.0)) > f64(1e-4);
            wg_go = select(0u, 1u, go);
            wg_lcut = lcut;
            wg_hcut = hcut;
        }
        if (workgroupUniformLoad(&wg_go) == 0u) {
            break;
        }
        let lc = wg_lcut;
        let hc = wg_hcut;
        var ps = f64(0.0);
        var p1 = f64(0.0);
        var p2 = f64(0.0);
        for (var b = i32(b0); b < i32(b0 + PER); b = b + 1) {
            if (b >= lc && b <= hc) {
                let h = f64(bin(b));
                ps = ps + h;
                p1 = p1 + f64(u32(b)) * h;
                p2 = p2 + f64(u32(b) * u32(b)) * h;
            }
        }
        red[t] = ps;
        red[THREADS + t] = p1;
        red[2u * THREADS + t] = p2;
        for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
            workgroupBarrier();
            if (t < stride) {
                red[t] = red[t] + red[t + stride];
                red[THREADS + t] = red[THREADS + t] + red[THREADS + t + stride];
                red[2u * THREADS + t] = red[2u * THREADS + t] + red[2u * THREADS + t + stride];
            }
        }
        workgroupBarrier();
        if (t == 0u) {
            sig_prev = sig;
            let sum = red[0];
            if (sum == f64(0.0)) {
                mean = f64(0.0);
                sig = f64(0.0);
            } else {
                mean = red[THREADS] / sum;
                let v = red[2u * THREADS] / sum - keep64(mean * mean);
                sig = select(f64(0.0), sqrt(v), v > f64(0.0));
            }
            // Median: where the two-pointer walk over bins lc..hc ends. The low side
            // takes k = min{j : j + m(j) >= n} bins, m(j) = min{m : H(m) > L(j)}.
            let n = hc - lc + 1;
            let base_l = cum(lc);
            let end_h = cum(hc + 1);
            var ka = 0;
            var kb = n;
            while (ka < kb) {
                let mid = (ka + kb) / 2;
                let low_j = cum(lc + mid) - base_l;
                var ma = 0;
                var mb = n + 1;
                while (ma < mb) {
                    let mm = (ma + mb) / 2;
                    if (mm <= n && end_h - cum(hc + 1 - mm) > low_j) {
                        mb = mm;
                    } else {
                        ma = mm + 1;
                    }
                }
                if (mid + ma >= n) {
                    kb = mid;
                } else {
                    ka = mid + 1;
                }
            }
            let lo = lc + ka;
            let hi = lo - 1;
            let lowsum = cum(lo) - base_l;
            let highsum = end_h - cum(hi + 1);
            if (hi < 0) {
                med = f64(0.0);
            } else {
                let hl = bin(min(lo, top));
                let hh = bin(hi);
                let denom = f64(2.0) * f64(max(hl, hh));
                var frac = f64(0.0);
                if (denom > f64(0.0)) {
                    frac = (f64(highsum) - f64(lowsum)) / denom;
                }
                med = f64(hi) + f64(0.5) + frac;
            }
            let lo_cut = med - keep64(f64(3.0) * sig);
            let hi_cut = med + keep64(f64(3.0) * sig);
            lcut = select(0, round_half_away(lo_cut), lo_cut > f64(0.0));
            hcut = select(top, round_half_away(hi_cut), hi_cut < f64(top));
            stop = hcut < lcut;
        }
    }
    if (t == 0u) {
        var mode = qzero + keep64(mean * qscale);
        if (sig > f64(0.0)) {
            if (abs((mean - med) / sig) < f64(0.3)) {
                let d = keep64(f64(2.5) * med) - keep64(f64(1.5) * mean);
                mode = qzero + keep64(d * qscale);
            } else {
                mode = qzero + keep64(med * qscale);
            }
        }
        out[2u * m] = mode;
        out[2u * m + 1u] = keep64(sig * qscale);
    }
}
