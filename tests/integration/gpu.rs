//! The GPU backend: the CPU's reference suite run on it, CPU/GPU parity on every test
//! image and strip size, and adversarial shapes for the union-find labelling.
//!
//! Without a GPU adapter these tests print why and return, unless
//! SKYSIFT_REQUIRE_GPU=1 (set by .ci/run, which installs lavapipe), where they fail.

use crate::common::data_str;
use crate::reference::{check_catalog_with, nodeblend, Case, EMMI, SEP_IMAGE, SIM, SIM_MASKED};
use skysift::gpu::GpuContext;
use skysift::params::{Connectivity, ThreshType};
use skysift::{io, Extractor, Image, Inputs, Mask};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| GpuContext::new().map(Arc::new).map_err(|e| e.to_string()));
    match ctx {
        Ok(c) => Some(c.clone()),
        Err(e) => {
            if std::env::var("SKYSIFT_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("SKYSIFT_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            eprintln!("GPU test skipped (set SKYSIFT_REQUIRE_GPU=1 to make this a failure): {e}");
            None
        }
    }
}

/// A GPU extractor with strips of at most `rows` rows (None: as large as the device
/// allows). Contexts are cached for the whole test run and never dropped: tearing a
/// lavapipe device down while other threads use Vulkan corrupted the heap in rare
/// runs (see src/main.rs).
fn gpu(rows: Option<usize>) -> Option<Extractor> {
    let base = context()?;
    let ctx = match rows {
        None => base,
        Some(r) => {
            static BY_ROWS: OnceLock<Mutex<HashMap<usize, Arc<GpuContext>>>> = OnceLock::new();
            let map = BY_ROWS.get_or_init(|| Mutex::new(HashMap::new()));
            let mut map = map.lock().unwrap();
            map.entry(r)
                .or_insert_with(|| {
                    let mut c = GpuContext::new().expect("adapter present");
                    c.max_strip_rows = Some(r);
                    Arc::new(c)
                })
                .clone()
        }
    };
    Some(Extractor::default().with_gpu(ctx))
}

/// A GPU extractor for other test modules (None without an adapter, unless required).
pub fn gpu_extractor() -> Option<Extractor> {
    gpu(None)
}

#[test]
fn gpu_shaders_run_on_an_adapter() {
    let Some(ctx) = context() else { return };
    let d = ctx.describe();
    assert!(d.contains("adapter:"), "{d}");
    eprintln!("{d}");
}

fn reference_on_gpu(c: &Case) {
    if let Some(ctx) = context() {
        check_catalog_with(c, &nodeblend().with_gpu(ctx));
    }
}

#[test]
fn reference_sep_image_on_gpu() {
    reference_on_gpu(&SEP_IMAGE);
}
#[test]
fn reference_emmi_galaxies_on_gpu() {
    reference_on_gpu(&EMMI);
}
#[test]
fn reference_sim_on_gpu() {
    reference_on_gpu(&SIM);
}
#[test]
fn reference_sim_masked_on_gpu() {
    reference_on_gpu(&SIM_MASKED);
}

/// CPU and GPU give the same segmentation (numbering included) and the same catalog.
fn assert_parity(img: &Image, cpu: &Extractor, gpu: &Extractor, inputs: Inputs, what: &str) {
    let a = cpu.extract(img, inputs).unwrap();
    let b = gpu.extract(img, inputs).unwrap();
    assert!(!a.catalog.is_empty() || a.segmentation.is_empty(), "{what}");
    assert_eq!(
        a.segmentation.len(),
        b.segmentation.len(),
        "{what}: object count"
    );
    assert_eq!(a.segmentation, b.segmentation, "{what}: segmentation");
    assert_eq!(a.catalog, b.catalog, "{what}: catalog");
}

#[test]
fn parity_on_every_test_image_and_strip_size() {
    for rows in [None, Some(64), Some(37), Some(1)] {
        let Some(g) = gpu(rows) else { return };
        for f in ["sep_image.fits", "sim_masked_crop.fits"] {
            let img = io::read_image(&data_str(f)).unwrap();
            assert_parity(
                &img,
                &Extractor::default(),
                &g,
                Inputs::default(),
                &format!("{f}, strips {rows:?}"),
            );
        }
    }
}

#[test]
fn parity_with_masks_thresholds_and_kernels() {
    let Some(g) = gpu(Some(50)) else { return };
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let (w, h) = (img.width(), img.height());
    let mask = Mask::new(
        w,
        h,
        (0..w * h)
            .map(|i| (i / w) % 97 < 9 || (i % w) % 61 < 4)
            .collect(),
    )
    .unwrap();
    let cpu = Extractor::default();
    assert_parity(&img, &cpu, &g, crate::common::masked(&mask), "mask");
    let t = Image::new(
        w,
        h,
        (0..w * h).map(|i| 12.0 + (i % w) as f32 * 0.02).collect(),
    )
    .unwrap();
    assert_parity(
        &img,
        &cpu,
        &g,
        crate::common::thresholded(&t),
        "threshold image",
    );
    let mut c2 = cpu.clone();
    let mut g2 = g.clone();
    for e in [&mut c2, &mut g2] {
        e.extract.rms_source = skysift::RmsSource::Map;
        e.extract.kernel = Some(skysift::Kernel::gaussian(3.0).unwrap());
        e.extract.connectivity = Connectivity::Four;
    }
    assert_parity(
        &img,
        &c2,
        &g2,
        Inputs::default(),
        "RMS map threshold, Gaussian kernel, 4-connectivity",
    );
}

/// The mesh statistics on the GPU (f64 sums, histograms, modes) equal the CPU's to
/// the bit: every test image, integer-valued (comb histograms) and float, with a mask
/// and NaN holes, for mesh sizes that split a mesh's rows over several dispatches
/// (256 x 256), odd ones and partial last meshes.
#[test]
fn gpu_mesh_statistics_equal_the_cpu_ones() {
    let Some(ctx) = context() else { return };
    assert!(
        ctx.has_mesh_stats(),
        "this adapter cannot run the mesh statistics (needs f64 in shaders): {}",
        ctx.describe()
    );
    use skysift::background::cpu_mesh_stats;
    let mut images: Vec<(String, Image, Option<Mask>)> = Vec::new();
    for f in ["sep_image.fits", "emmi_galaxies.fits.gz", "sim_crop.fits"] {
        images.push((f.into(), io::read_image(&data_str(f)).unwrap(), None));
    }
    let masked = io::read_image(&data_str("sim_masked_crop.fits")).unwrap();
    let mimg = io::read_image(&data_str("sim_masked_crop.mask.fits")).unwrap();
    let (mw, mh) = (mimg.width(), mimg.height());
    // The fixture's mask plus bad columns, so that some meshes go bad.
    let flags = mimg
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| v > 0.0 || (i % mw) % 64 < 40 && (i / mw) < 128)
        .collect();
    let mask = Mask::new(mw, mh, flags).unwrap();
    images.push(("sim_masked_crop.fits + mask".into(), masked, Some(mask)));
    // NaN holes, an -1e30 block and a nearly empty mesh.
    let mut holes = io::read_image(&data_str("sim_crop.fits"))
        .unwrap()
        .into_data();
    for (i, v) in holes.iter_mut().enumerate() {
        let (x, y) = (i % 512, i / 512);
        if (i * 7919) % 23 == 0 || (x < 40 && y < 40) {
            *v = f32::NAN;
        } else if (100..170).contains(&x) && (300..330).contains(&y) {
            *v = -1e31;
        }
    }
    images.push(("holes".into(), Image::new(512, 512, holes).unwrap(), None));
    let mut compared = 0;
    for (name, img, mask) in &images {
        let (w, h) = (img.width(), img.height());
        for (bw, bh) in [(64, 64), (32, 48), (256, 256), (100, 7), (w, h)] {
            let (bw, bh) = (bw.min(w), bh.min(h));
            let grid = (w.div_ceil(bw), h.div_ceil(bh));
            let m = mask.as_ref().map(|m| m.data());
            let cpu = cpu_mesh_stats(img, m, (bw, bh), grid);
            let gpu = ctx.mesh_stats(img, m, (bw, bh), grid).unwrap().unwrap();
            assert_eq!(cpu.len(), gpu.len());
            for (k, (a, b)) in cpu.iter().zip(&gpu).enumerate() {
                let bits = |s: &Option<skysift::background::MeshStat>| {
                    s.map(|s| (s.back.to_bits(), s.sigma.to_bits()))
                };
                assert_eq!(
                    bits(a),
                    bits(b),
                    "{name}, mesh {bw}x{bh}, mesh {k}: CPU {a:?} vs GPU {b:?}"
                );
                compared += a.is_some() as usize;
            }
        }
    }
    assert!(compared > 1500, "{compared} good meshes compared");
}

/// The GPU subtracts the background itself: the unfiltered values it returns for the
/// detected pixels, its saturation flags and the subtracted image built afterwards
/// are the CPU's to the bit (spline background with a mask and saturated stars, and a
/// manual background).
#[test]
fn gpu_background_subtraction_equals_the_cpu_subtraction() {
    let Some(g) = gpu(Some(40)) else { return };
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let (w, h) = (img.width(), img.height());
    let mask = Mask::new(w, h, (0..w * h).map(|i| (i / w) % 53 < 3).collect()).unwrap();
    let inputs = crate::common::masked(&mask);
    let bits = |im: &Image| im.data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    for manual in [None, Some(1000.5)] {
        let mut cpu = Extractor::default();
        cpu.extract.deblend.mincont = 1.0;
        cpu.extract.clean = false;
        cpu.extract.satur_level = 1400.0;
        cpu.background.manual_value = manual;
        let mut gpu = g.clone();
        gpu.extract = cpu.extract.clone();
        gpu.background = cpu.background.clone();
        let a = cpu.extract(&img, inputs).unwrap();
        let b = gpu.extract(&img, inputs).unwrap();
        assert_eq!(a.segmentation, b.segmentation, "manual {manual:?}");
        assert_eq!(a.catalog, b.catalog, "manual {manual:?}");
        let saturated = a
            .catalog
            .objects
            .iter()
            .filter(|o| o.flags & 4 != 0)
            .count();
        assert!(saturated >= 3, "only {saturated} saturated objects");
        let sub = a.subtracted();
        assert_eq!(bits(b.subtracted()), bits(sub), "subtracted image");
    }
}

/// A binary test image: `f(x, y)` true → 100, else 0; extracted with no filter and an
/// absolute threshold of 50 and minimum area 1, so the pixels on are exactly the pattern.
fn pattern(w: usize, h: usize, f: impl Fn(usize, usize) -> bool) -> Image {
    let d = (0..w * h)
        .map(|i| if f(i % w, i / w) { 100.0 } else { 0.0 })
        .collect();
    Image::new(w, h, d).unwrap()
}

fn binary(e: &Extractor, conn: Connectivity) -> Extractor {
    let mut e = e.clone();
    e.extract.kernel = None;
    e.extract.thresh_type = ThreshType::Absolute;
    e.extract.detect_thresh = 50.0;
    e.extract.analysis_thresh = 50.0;
    e.extract.minarea = 1;
    e.extract.connectivity = conn;
    e.background.manual_value = Some(0.0);
    e
}

#[test]
fn adversarial_shapes_label_like_the_cpu() {
    let shapes: Vec<(&str, Image)> = vec![
        // A 1-pixel-wide serpentine spanning the whole image: one object, a long chain.
        (
            "serpentine",
            pattern(301, 203, |x, y| {
                y % 4 == 0
                    || (y % 8 == 1 || y % 8 == 2 || y % 8 == 3) && x == 300
                    || (y % 8 == 5 || y % 8 == 6 || y % 8 == 7) && x == 0
            }),
        ),
        // One object covering ~90% of the image, with holes.
        (
            "90 percent",
            pattern(257, 190, |x, y| !(x % 10 == 3 && y % 10 == 7)),
        ),
        // One-pixel diagonal lines: 8-connected lines, 4-connected single pixels.
        (
            "diagonals",
            pattern(129, 131, |x, y| (x + y) % 9 == 0 || (x + 200 - y) % 13 == 0),
        ),
        ("checkerboard", pattern(97, 67, |x, y| (x + y) % 2 == 0)),
        // Objects crossing every strip seam (strips of 16 rows) and touching corners.
        (
            "seams",
            pattern(120, 160, |x, y| {
                (x % 20 < 3)
                    || (y % 16 == 15 && x % 7 == 0)
                    || (y % 16 == 0 && x % 7 == 1)
                    || (x, y) == (119, 159)
                    || (x, y) == (0, 0)
            }),
        ),
        ("1xN", pattern(1, 999, |_, y| y % 5 != 0)),
        ("Nx1", pattern(1001, 1, |x, _| x % 7 != 3)),
        ("odd sizes", pattern(17, 33, |x, y| (x * 7 + y * 3) % 5 < 2)),
    ];
    for rows in [None, Some(16), Some(5)] {
        let Some(g) = gpu(rows) else { return };
        for (name, img) in &shapes {
            for conn in [Connectivity::Eight, Connectivity::Four] {
                let c = binary(&Extractor::default(), conn);
                let gg = binary(&g, conn);
                assert_parity(
                    img,
                    &c,
                    &gg,
                    Inputs::default(),
                    &format!("{name}, {conn:?}, strips {rows:?}"),
                );
            }
        }
    }
    // The shapes are what they claim (checked on the CPU path).
    let c8 = binary(&Extractor::default(), Connectivity::Eight);
    let c4 = binary(&Extractor::default(), Connectivity::Four);
    let count =
        |e: &Extractor, img: &Image| e.extract(img, Inputs::default()).unwrap().catalog.len();
    assert_eq!(count(&c4, &shapes[0].1), 1, "serpentine is one object");
    assert_eq!(count(&c8, &shapes[1].1), 1, "90% object is one object");
    assert_eq!(
        count(&c8, &shapes[3].1),
        1,
        "checkerboard is one 8-connected object"
    );
    assert_eq!(
        count(&c4, &shapes[3].1),
        (97usize * 67).div_ceil(2),
        "checkerboard is single pixels in 4-connectivity"
    );
}

#[test]
fn no_adapter_gives_a_clear_error_for_backend_gpu() {
    // With WGPU_BACKEND naming a backend that does not exist here, no adapter is found.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .args([
            &data_str("sep_image.fits"),
            "-o",
            "/tmp/skysift-nogpu.csv",
            "--backend",
            "gpu",
        ])
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no GPU adapter") && e.contains("--backend cpu"),
        "{e}"
    );
    assert!(!std::path::Path::new("/tmp/skysift-nogpu.csv").exists());
}

/// Random small images of every awkward shape (1xN, Nx1, tiny, non-multiples of the
/// workgroup size), with NaN holes and bright blobs: no panic, and the two backends
/// agree exactly, deblending and cleaning included.
#[test]
fn random_small_images_agree_on_both_backends() {
    let Some(g) = gpu(Some(7)) else { return };
    let cpu = Extractor::default();
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut with_objects, mut deblended) = (0, 0);
    for case in 0..60 {
        let w = 1 + (rnd() * 70.0) as usize;
        let h = 1 + (rnd() * 70.0) as usize;
        let blobs: Vec<(f64, f64, f64)> = (0..(rnd() * 6.0) as usize)
            .map(|_| (rnd() * w as f64, rnd() * h as f64, 200.0 + 2000.0 * rnd()))
            .collect();
        let d: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                if rnd() < 0.01 {
                    return f32::NAN;
                }
                let mut v = 100.0 + 3.0 * (rnd() - 0.5);
                for &(bx, by, a) in &blobs {
                    v += a * (-((x - bx).powi(2) + (y - by).powi(2)) / 3.0).exp();
                }
                v as f32
            })
            .collect();
        let img = Image::new(w, h, d).unwrap();
        match (
            cpu.extract(&img, Inputs::default()),
            g.extract(&img, Inputs::default()),
        ) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.segmentation, b.segmentation, "case {case} ({w}x{h})");
                assert_eq!(a.catalog, b.catalog, "case {case} ({w}x{h})");
                with_objects += !a.catalog.is_empty() as usize;
                deblended += a.catalog.objects.iter().any(|o| o.flags & 2 != 0) as usize;
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "case {case}"),
            (a, b) => panic!(
                "case {case} ({w}x{h}): CPU {:?} vs GPU {:?}",
                a.err(),
                b.err()
            ),
        }
    }
    eprintln!("{with_objects} of 60 random images had objects, {deblended} had deblended ones");
    assert!(
        with_objects >= 20 && deblended >= 3,
        "{with_objects} with objects, {deblended} deblended"
    );
}

/// Several images on the GPU backend, where the next image is read while the current
/// one is processed: each catalog equals a run on that image alone, and a bad image
/// in the middle stops the run with exit code 2 after the ones before it (the reader
/// thread does not hang the process).
#[test]
fn several_images_read_ahead_on_the_gpu_backend() {
    if context().is_none() {
        return;
    }
    use crate::cli::{skysift, stderr};
    let dir = tempfile::tempdir().unwrap();
    let images = [data_str("sep_image.fits"), data_str("sim_crop.fits")];
    let all = dir.path().join("all");
    let mut args: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let all_s = format!("{}/", all.display());
    args.extend(["-o", &all_s, "--backend", "gpu", "--catalog-type", "csv"]);
    let o = skysift(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for im in &images {
        let stem = std::path::Path::new(im)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap();
        let one = dir.path().join(format!("{stem}.one.csv"));
        let o = skysift(&[im, "-o", one.to_str().unwrap(), "--backend", "gpu"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let a = std::fs::read(all.join(format!("{stem}.csv"))).unwrap();
        assert_eq!(a, std::fs::read(&one).unwrap(), "{stem}");
    }
    // A readable header with its data cut short: the reader thread meets the error.
    let bad = dir.path().join("broken.fits");
    let whole = std::fs::read(&images[1]).unwrap();
    std::fs::write(&bad, &whole[..whole.len() / 2]).unwrap();
    let out = dir.path().join("bad");
    let out_s = format!("{}/", out.display());
    let o = skysift(&[
        &images[0],
        bad.to_str().unwrap(),
        &images[1],
        "-o",
        &out_s,
        "--backend",
        "gpu",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.fits"), "{}", stderr(&o));
    assert!(out.join("sep_image.fits").exists());
    assert!(!out.join("sim_crop.fits").exists());
}

/// Streaming on the GPU backend (mesh statistics per mesh row and detection per strip
/// on the device, rows joined on the CPU) gives the CPU whole-image catalog, for strips
/// of 1 row up to the whole image, with deblending and cleaning, without them, with
/// 4-connectivity and a Gaussian kernel, and with a streamed mask.
#[test]
fn gpu_streaming_equals_the_cpu_whole_image_run() {
    let Some(g) = gpu(None) else { return };
    use skysift::stream::{
        extract_streaming, extract_streaming_with_progress, ImageRows, MaskRows,
    };
    let mut nodeblend = Extractor::default();
    nodeblend.extract.deblend.mincont = 1.0;
    nodeblend.extract.clean = false;
    let mut four = Extractor::default();
    four.extract.connectivity = Connectivity::Four;
    four.extract.kernel = Some(skysift::Kernel::gaussian(3.0).unwrap());
    let mut rms_map = Extractor::default();
    rms_map.extract.rms_source = skysift::RmsSource::Map;
    let cases: [(&str, &Extractor, &[usize]); 5] = [
        ("sep_image.fits", &Extractor::default(), &[1, 7, 64, 10_000]),
        ("sim_masked_crop.fits", &rms_map, &[3, 64]),
        ("emmi_galaxies.fits.gz", &Extractor::default(), &[5, 100]),
        ("sim_crop.fits", &nodeblend, &[1, 16]),
        ("sim_crop.fits", &four, &[4, 50]),
    ];
    for (f, cpu, strips) in cases {
        let img = io::read_image(&data_str(f)).unwrap();
        let whole = cpu.extract(&img, Inputs::default()).unwrap();
        let mut ge = g.clone();
        ge.extract = cpu.extract.clone();
        for &rows in strips {
            let s = extract_streaming(&mut ImageRows(&img), &ge, rows).unwrap();
            assert_eq!(s.catalog, whole.catalog, "{f}, GPU strips of {rows}");
        }
    }
    // A streamed mask.
    let img = io::read_image(&data_str("sim_masked_crop.fits")).unwrap();
    let m = io::read_image(&data_str("sim_masked_crop.mask.fits")).unwrap();
    let mask = Mask::from_image(&m, 0.0);
    let whole = Extractor::default()
        .extract(&img, crate::common::masked(&mask))
        .unwrap();
    for rows in [9, 128] {
        let mut mrows = ImageRows(&m);
        let s = extract_streaming_with_progress(
            &mut ImageRows(&img),
            Some(MaskRows {
                rows: &mut mrows,
                thresh: 0.0,
            }),
            &g,
            rows,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(s.catalog, whole.catalog, "mask, GPU strips of {rows}");
    }
}

/// The compaction reads detected pixels back in windows that each fit one binding
/// (16 bytes per pixel, while strips are sized for 4): with windows forced down to
/// 1,000 pixels, an image that is 90% one object and the reference images give the
/// CPU's segmentation and catalog.
#[test]
fn compaction_windows_give_the_same_result() {
    if context().is_none() {
        return;
    }
    let mut c = GpuContext::new().expect("adapter present");
    c.max_output_pixels = Some(1000);
    c.max_strip_rows = Some(100);
    let g = Extractor::default().with_gpu(Arc::new(c));
    let cpu = Extractor::default();
    let big = pattern(300, 200, |x, y| !(x % 37 == 0 && y % 11 == 0) && x < 290);
    assert_parity(
        &big,
        &binary(&cpu, Connectivity::Eight),
        &binary(&g, Connectivity::Eight),
        Inputs::default(),
        "90% object, windows of 1000 pixels",
    );
    for f in ["sep_image.fits", "sim_masked_crop.fits"] {
        let img = io::read_image(&data_str(f)).unwrap();
        assert_parity(&img, &cpu, &g, Inputs::default(), f);
    }
}

/// Out of memory for the strips: they are halved and the work retried, with the same
/// catalog; below 16 rows the run fails with an error that names the cause.
#[test]
fn out_of_memory_halves_the_strips_or_says_why() {
    if context().is_none() {
        return;
    }
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let cpu = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    let mut c = GpuContext::new().expect("adapter present");
    c.simulated_memory_rows = Some(40);
    let g = Extractor::default().with_gpu(Arc::new(c));
    let r = g.extract(&img, Inputs::default()).unwrap();
    assert_eq!(r.catalog, cpu.catalog);
    let strips = r
        .timings
        .iter()
        .find(|t| t.0 == "GPU stage: strips")
        .map(|t| t.1 as usize);
    assert_eq!(
        strips,
        Some(512usize.div_ceil(32)),
        "512 rows in strips of 32"
    );
    let mut c = GpuContext::new().expect("adapter present");
    c.simulated_memory_rows = Some(10);
    let g = Extractor::default().with_gpu(Arc::new(c));
    let e = g.extract(&img, Inputs::default()).unwrap_err().to_string();
    assert!(
        e.contains("out of memory") && e.contains("--backend cpu"),
        "{e}"
    );
}

/// The device's union-find labelling (label.wgsl) of one strip covering the whole
/// image gives the CPU's objects, both connectivities: every object's pixels share one
/// root, its first pixel in raster order, and no two objects share a root.
#[test]
fn union_find_on_the_device_labels_as_the_cpu() {
    if context().is_none() {
        return;
    }
    for f in ["sim_crop.fits", "sep_image.fits"] {
        let img = io::read_image(&data_str(f)).unwrap();
        let (w, h) = (img.width(), img.height());
        for conn in [Connectivity::Eight, Connectivity::Four] {
            let mut cpu = Extractor::default();
            cpu.extract.deblend.mincont = 1.0;
            cpu.extract.clean = false;
            cpu.extract.minarea = 1;
            cpu.extract.connectivity = conn;
            let want = cpu.extract(&img, Inputs::default()).unwrap();
            assert!(
                want.segmentation.len() > 50,
                "{f}: {}",
                want.segmentation.len()
            );
            let t = cpu.extract.detect_thresh as f32 * want.background.global_rms() as f32;
            let ctx = context().expect("adapter present");
            let mut strips = ctx
                .strips(
                    w,
                    h,
                    h,
                    &want.background,
                    cpu.extract.kernel.as_ref(),
                    t,
                    cpu.extract.satur_level as f32,
                    false,
                    false,
                    conn,
                )
                .unwrap();
            assert_eq!(strips.strip_rows(), h, "{f}: one strip");
            let rows = strips.detect(img.data(), None, (0, h), None, &[]).unwrap();
            assert_eq!(rows.len(), h);
            // Every detected pixel with its row's run root, in raster order.
            let pixels: Vec<(usize, usize)> = rows
                .iter()
                .enumerate()
                .flat_map(|(y, d)| {
                    d.runs
                        .iter()
                        .zip(&d.roots)
                        .flat_map(move |(&(x0, x1), &root)| {
                            (x0..x1).map(move |x| (y * w + x, root))
                        })
                })
                .collect();
            let map = want.segmentation.to_map();
            assert_eq!(
                pixels.len(),
                map.iter().filter(|&&m| m != 0).count(),
                "{f} {conn:?}: detected pixels"
            );
            // Object number -> its root; root -> object number.
            let mut root_of = vec![usize::MAX; want.segmentation.len() + 1];
            let mut object_of = std::collections::HashMap::new();
            for &(index, root) in &pixels {
                let k = map[index] as usize;
                assert!(k != 0, "{f} {conn:?}: pixel {index} is not in an object");
                if root_of[k] == usize::MAX {
                    root_of[k] = root;
                    assert_eq!(root, index, "{f} {conn:?}: root is the first pixel");
                }
                assert_eq!(root_of[k], root, "{f} {conn:?}: object {k} has two roots");
                assert_eq!(*object_of.entry(root).or_insert(k), k, "{f} {conn:?}");
            }
        }
    }
}
