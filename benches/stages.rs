//! Criterion benchmarks: each stage of the CPU path and the whole extraction, and
//! the GPU stages (device time of the shaders from timestamp queries, and time with
//! transfers), on a generated star field, with throughput in pixels.
//!
//!     cargo bench --bench stages            # sizes 1024², 2048², 4096²
//!     cargo bench --bench stages -- 2048    # one size
//!     SKYSIFT_BENCH_SIZES=1024,8192 cargo bench --bench stages

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use skysift::convolve::convolve;
use skysift::{Background, BackgroundParams, Connectivity, Extractor, Image, Inputs, Kernel};
use std::time::Duration;

/// A noisy sky (σ = 10 around 1000) with a Gaussian star every ~1600 px².
fn field(n: usize) -> Image {
    let mut state: u64 = 0x9E3779B97F4A7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut d = vec![0f32; n * n];
    for v in d.iter_mut() {
        // Sum of 4 uniforms: a cheap near-Gaussian noise.
        let g = (next() + next() + next() + next() - 2.0) * 1.732;
        *v = (1000.0 + 10.0 * g) as f32;
    }
    let nstars = n * n / 1600;
    for _ in 0..nstars {
        let (sx, sy) = (next() * n as f64, next() * n as f64);
        let amp = 20.0 + 2000.0 * next().powi(3);
        let (x0, y0) = (sx as isize, sy as isize);
        for y in (y0 - 6).max(0)..(y0 + 7).min(n as isize) {
            for x in (x0 - 6).max(0)..(x0 + 7).min(n as isize) {
                let r2 = (x as f64 - sx).powi(2) + (y as f64 - sy).powi(2);
                d[y as usize * n + x as usize] += (amp * (-r2 / 4.5).exp()) as f32;
            }
        }
    }
    Image::new(n, n, d).unwrap()
}

/// The image minus its background map.
fn subtracted(img: &Image, bg: &Background) -> Image {
    let bm = bg.back_map();
    let d = img
        .data()
        .iter()
        .zip(bm.data())
        .map(|(a, b)| a - b)
        .collect();
    Image::new(img.width(), img.height(), d).unwrap()
}

/// Image sizes: SKYSIFT_BENCH_SIZES (comma-separated) or 1024, 2048, 4096.
fn sizes() -> Vec<usize> {
    std::env::var("SKYSIFT_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1024, 2048, 4096])
}

fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    for n in sizes() {
        let img = field(n);
        g.throughput(Throughput::Elements((n * n) as u64));
        let bp = BackgroundParams::default();
        g.bench_with_input(BenchmarkId::new("background", n), &img, |b, img| {
            b.iter(|| Background::estimate(img, None, &bp).unwrap())
        });
        let bg = Background::estimate(&img, None, &bp).unwrap();
        g.bench_with_input(BenchmarkId::new("background_map", n), &bg, |b, bg| {
            b.iter(|| bg.back_map())
        });
        let sub = subtracted(&img, &bg);
        let k = Kernel::default_3x3();
        g.bench_with_input(BenchmarkId::new("convolve_3x3", n), &sub, |b, s| {
            b.iter(|| convolve(s, &k))
        });
        g.bench_with_input(BenchmarkId::new("extract_end_to_end", n), &img, |b, img| {
            b.iter(|| {
                Extractor::default()
                    .extract(img, Inputs::default())
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// Device time of the shaders that `f` dispatches, `iters` times (timestamp queries).
fn kernel_time(ctx: &skysift::gpu::GpuContext, iters: u64, f: &dyn Fn()) -> Duration {
    assert!(ctx.set_profiling(true), "no timestamp queries on this GPU");
    ctx.take_kernel_times();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        f();
        let t: f64 = ctx.take_kernel_times().iter().map(|k| k.1).sum();
        total += Duration::from_secs_f64(t);
    }
    ctx.set_profiling(false);
    total
}

/// The GPU stages against the same stages on the CPU (group `cpu`): the mesh
/// statistics, and subtraction + filtering + thresholding + labelling + compaction of
/// the raw image, each as device time of its shaders (timestamp queries, summed over
/// the dispatches) and as time with transfers (upload, shaders, readback), and the
/// whole extraction on the GPU backend. Skipped with a message when there is no adapter.
fn gpu_stages(c: &mut Criterion) {
    let ctx = match skysift::gpu::GpuContext::new() {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => {
            eprintln!("no GPU adapter, GPU benchmarks skipped: {e}");
            return;
        }
    };
    eprintln!("{}", ctx.describe());
    let mut g = c.benchmark_group(format!("gpu ({})", ctx.adapter_name()));
    g.sample_size(10);
    for n in sizes() {
        let img = field(n);
        let bp = BackgroundParams::default();
        let bg = Background::estimate(&img, None, &bp).unwrap();
        let t = 1.5 * bg.global_rms() as f32;
        let k = Kernel::default_3x3();
        let grid = (n.div_ceil(64), n.div_ceil(64));
        g.throughput(Throughput::Elements((n * n) as u64));
        let mesh = || {
            ctx.mesh_stats(&img, None, (64, 64), grid).unwrap().unwrap();
        };
        // One strip over the whole image (as a whole-image run hands the device).
        let detect = || {
            let mut strips = ctx
                .strips(
                    n,
                    n,
                    n,
                    &bg,
                    Some(&k),
                    t,
                    50000.0,
                    false,
                    false,
                    Connectivity::Eight,
                )
                .unwrap();
            let rows = strips.strip_rows();
            let mut y0 = 0;
            while y0 < n {
                let r = rows.min(n - y0);
                let (s0, s1) = (y0.saturating_sub(1), (y0 + r + 1).min(n));
                strips
                    .detect(&img.data()[s0 * n..s1 * n], None, (y0, r), None, &[])
                    .unwrap();
                y0 += r;
            }
        };
        if ctx.has_mesh_stats() {
            g.bench_function(BenchmarkId::new("mesh_stats_with_transfers", n), |b| {
                b.iter(mesh)
            });
            g.bench_function(BenchmarkId::new("mesh_stats_kernels", n), |b| {
                b.iter_custom(|iters| kernel_time(&ctx, iters, &mesh))
            });
        }
        g.bench_function(BenchmarkId::new("detect_with_transfers", n), |b| {
            b.iter(detect)
        });
        g.bench_function(BenchmarkId::new("detect_kernels", n), |b| {
            b.iter_custom(|iters| kernel_time(&ctx, iters, &detect))
        });
        let e = Extractor::default().with_gpu(ctx.clone());
        g.bench_with_input(BenchmarkId::new("extract_end_to_end", n), &img, |b, img| {
            b.iter(|| e.extract(img, Inputs::default()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, stages, gpu_stages);
criterion_main!(benches);
