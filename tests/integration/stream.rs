//! Streaming: the catalog of a streamed run equals the whole-image run's, for every
//! strip height, with deblending and cleaning on or off.

use crate::common::data_str;
use skysift::plan::Plan;
use skysift::stream::{extract_streaming, ImageRows, RowInputs, Sinks};
use skysift::{io, Extractor, Inputs};

fn same_catalog(image: &str, e: &Extractor, strips: &[usize]) {
    let img = io::read_image(&data_str(image)).unwrap();
    let whole = e.extract(&img, Inputs::default()).unwrap();
    assert!(!whole.catalog.is_empty());
    for &rows in strips {
        let s = extract_streaming(&mut ImageRows(&img), e, rows).unwrap();
        assert_eq!(
            s.catalog.len(),
            whole.catalog.len(),
            "{image}, strips of {rows}"
        );
        assert_eq!(s.catalog, whole.catalog, "{image}, strips of {rows}");
        assert_eq!(s.background.global_rms(), whole.background.global_rms());
    }
}

/// The objects of a streamed run with `inputs`, in catalog order.
fn streamed_objects(
    img: &skysift::Image,
    inputs: RowInputs,
    e: &Extractor,
    rows: usize,
) -> Vec<skysift::Object> {
    let mut objects = Vec::new();
    skysift::stream::extract_streaming_to(
        &mut ImageRows(img),
        inputs,
        Sinks::default(),
        e,
        &Plan::rows(rows),
        &mut |_| {},
        &mut |o| {
            objects.push(o);
            Ok(())
        },
    )
    .unwrap();
    objects
}

#[test]
fn streamed_catalogs_equal_whole_image_catalogs() {
    let e = Extractor::default();
    same_catalog("sep_image.fits", &e, &[1, 2, 7, 64, 10_000]);
    same_catalog("emmi_galaxies.fits.gz", &e, &[1, 5, 100]);
    same_catalog("sim_masked_crop.fits", &e, &[3, 33]);
    let mut nodeblend = Extractor::default();
    nodeblend.extract.deblend.mincont = 1.0;
    nodeblend.extract.clean = false;
    same_catalog("sim_crop.fits", &nodeblend, &[1, 16]);
    let mut four = Extractor::default();
    four.extract.connectivity = skysift::Connectivity::Four;
    four.extract.kernel = Some(skysift::Kernel::gaussian(3.0).unwrap());
    same_catalog("sim_crop.fits", &four, &[4, 50]);
}

/// Thresholds relative to the background RMS map (SExtractor's local threshold):
/// the streamed catalog equals the whole-image run's, deblending and cleaning on.
#[test]
fn rms_map_thresholds_stream_too() {
    let mut e = Extractor::default();
    e.extract.rms_source = skysift::RmsSource::Map;
    same_catalog("sim_masked_crop.fits", &e, &[1, 7, 64]);
    same_catalog("emmi_galaxies.fits.gz", &e, &[33]);
    let mut nodeblend = e.clone();
    nodeblend.extract.deblend.mincont = 1.0;
    nodeblend.extract.clean = false;
    same_catalog("sim_crop.fits", &nodeblend, &[5]);
}

/// A per-pixel threshold image streamed beside the image (CPU and GPU): the catalog
/// equals the whole-image run's with the same threshold image.
#[test]
fn a_streamed_threshold_image_gives_the_whole_image_catalog() {
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let (w, h) = (img.width(), img.height());
    // A threshold that varies over the image (ADU above the background).
    let t = skysift::Image::new(
        w,
        h,
        (0..w * h)
            .map(|i| {
                let band = if (i / w) % 97 < 30 { 5.0 } else { 0.0 };
                12.0 + 10.0 * ((i % w) as f32 / w as f32) + band
            })
            .collect(),
    )
    .unwrap();
    let e = Extractor::default();
    let whole = e.extract(&img, crate::common::thresholded(&t)).unwrap();
    let plain = e.extract(&img, Inputs::default()).unwrap();
    assert_ne!(whole.catalog, plain.catalog, "the threshold image matters");
    let mut backends = vec![e.clone()];
    if let Some(g) = crate::gpu::gpu_extractor() {
        backends.push(g);
    }
    for b in backends.iter_mut() {
        for rows in [1, 9, 100] {
            let mut trows = ImageRows(&t);
            let inputs = RowInputs {
                threshold: Some(&mut trows),
                ..Default::default()
            };
            let objects = streamed_objects(&img, inputs, b, rows);
            assert_eq!(
                objects,
                whole.catalog.objects,
                "strips of {rows}, GPU {}",
                b.gpu.is_some()
            );
        }
    }
}

/// A row source that returns one pixel too few per read.
struct ShortRows<'a>(ImageRows<'a>);

impl skysift::stream::RowSource for ShortRows<'_> {
    fn width(&self) -> usize {
        self.0.width()
    }
    fn height(&self) -> usize {
        self.0.height()
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> skysift::Result<()> {
        self.0.read_rows(y0, n, out)?;
        out.pop();
        Ok(())
    }
}

/// A row source that returns short rows gives an error that says so, not a panic.
#[test]
fn short_rows_are_an_error() {
    let img = io::read_image(&data_str("sep_image.fits")).unwrap();
    let e = Extractor::default();
    let err = extract_streaming(&mut ShortRows(ImageRows(&img)), &e, 16).unwrap_err();
    assert!(err.to_string().contains("wrong number of pixels"), "{err}");
    let mut t = ShortRows(ImageRows(&img));
    let inputs = RowInputs {
        threshold: Some(&mut t),
        ..Default::default()
    };
    let r = skysift::stream::extract_streaming_to(
        &mut ImageRows(&img),
        inputs,
        Sinks::default(),
        &e,
        &Plan::rows(16),
        &mut |_| {},
        &mut |_| Ok(()),
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("wrong number of pixels"));
}

#[test]
fn streaming_refuses_empty_strips() {
    let img = io::read_image(&data_str("sep_image.fits")).unwrap();
    let err = extract_streaming(&mut ImageRows(&img), &Extractor::default(), 0).unwrap_err();
    assert!(err.to_string().contains("STREAM_ROWS"), "{err}");
}

/// The matched filter streams: S/N from the strip and its halo, with the background
/// RMS map or a noise map read beside the image; the catalog equals the whole-image
/// run's (deblending and cleaning on).
#[test]
fn the_matched_filter_streams_too() {
    let mut e = Extractor::default();
    e.extract.filter_type = skysift::params::FilterType::Matched;
    same_catalog("sep_image.fits", &e, &[1, 7, 64]);
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let (w, h) = (img.width(), img.height());
    let noise = skysift::Image::new(
        w,
        h,
        (0..w * h)
            .map(|i| 9.0 + 3.0 * ((i % w) as f32 / w as f32))
            .collect(),
    )
    .unwrap();
    let whole = e
        .extract(
            &img,
            Inputs {
                noise: Some(&noise),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(whole.catalog.len() > 20);
    for rows in [3, 50] {
        let mut nrows = ImageRows(&noise);
        let inputs = RowInputs {
            noise: Some(&mut nrows),
            ..Default::default()
        };
        let objects = streamed_objects(&img, inputs, &e, rows);
        assert_eq!(
            objects, whole.catalog.objects,
            "noise map, strips of {rows}"
        );
    }
}

/// Peak resident memory printed by `skysift --timings` (Linux).
fn peak_mib(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("peak resident memory"))
        .unwrap_or_else(|| panic!("no peak memory line in: {stderr}"));
    line.split(':')
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches("MiB")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_streamed_run_of_a_large_file_stays_small_and_equals_the_whole_run() {
    // A 3000x3000 f32 image (34 MiB) with sparse stars, written to a temporary FITS.
    let (w, h) = (3000usize, 3000usize);
    let mut data = vec![0f32; w * h];
    let mut s = 99u64;
    for v in data.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *v = 100.0 + ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10.0;
    }
    for k in 0..400 {
        let (cx, cy) = ((k * 7919) % (w - 20) + 10, (k * 104_729) % (h - 20) + 10);
        for dy in 0..5 {
            for dx in 0..5 {
                data[(cy + dy - 2) * w + cx + dx - 2] +=
                    300.0 / (1.0 + ((dx as f32 - 2.0).powi(2) + (dy as f32 - 2.0).powi(2)));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.fits");
    {
        let desc = fitsio::images::ImageDescription {
            data_type: fitsio::images::ImageType::Float,
            dimensions: &[h, w],
        };
        let mut f = fitsio::FitsFile::create(&img)
            .with_custom_primary(&desc)
            .open()
            .unwrap();
        let hdu = f.primary_hdu().unwrap();
        hdu.write_image(&mut f, &data).unwrap();
    }
    drop(data);
    let run = |extra: &[&str], out: &str| {
        let mut args = vec![
            img.to_str().unwrap(),
            "-o",
            out,
            "--timings",
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
            .args(&args)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{e}");
        e
    };
    let whole_cat = dir.path().join("whole.fits");
    let stream_cat = dir.path().join("stream.fits");
    let whole = run(&[], whole_cat.to_str().unwrap());
    let streamed = run(&["--memory-limit", "4"], stream_cat.to_str().unwrap());
    assert_eq!(
        std::fs::read(&whole_cat).unwrap(),
        std::fs::read(&stream_cat).unwrap(),
        "catalogs differ"
    );
    let (pw, ps) = (peak_mib(&whole), peak_mib(&streamed));
    eprintln!("peak resident memory: whole image {pw:.1} MiB, streamed {ps:.1} MiB");
    // The image alone is 34 MiB, which the whole-image run holds and the streamed run
    // must not (measured here: 43.1 vs 10.2 MiB).
    assert!(ps < pw - 0.6 * 34.3, "streamed {ps} MiB vs whole {pw} MiB");
    // A limit too small for one strip is refused with the minimum.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .args([
            img.to_str().unwrap(),
            "-o",
            dir.path().join("x.fits").to_str().unwrap(),
            "--memory-limit",
            "0.01",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too small to hold one strip"));
}

#[test]
fn a_streamed_mask_gives_the_whole_image_catalog() {
    let img = io::read_image(&data_str("sim_masked_crop.fits")).unwrap();
    // The fixture's mask (bad columns and NaN blocks, which NaN already excludes)
    // plus a box over real objects, so that the mask matters.
    let fixture = io::read_image(&data_str("sim_masked_crop.mask.fits")).unwrap();
    let w = fixture.width();
    let d: Vec<f32> = fixture
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if (100..220).contains(&(i / w)) && (150..330).contains(&(i % w)) {
                1.0
            } else {
                v
            }
        })
        .collect();
    let mimg = skysift::Image::new(w, fixture.height(), d).unwrap();
    let mask = skysift::Mask::from_image(&mimg, 0.0);
    assert!(mask.count() > 1000, "the fixture masks something");
    let e = Extractor::default();
    let whole = e.extract(&img, crate::common::masked(&mask)).unwrap();
    let unmasked = e.extract(&img, Inputs::default()).unwrap();
    assert_ne!(
        whole.catalog, unmasked.catalog,
        "the mask changes the catalog"
    );
    for rows in [1, 9, 128] {
        let mut mrows = ImageRows(&mimg);
        let s = skysift::stream::extract_streaming_with_progress(
            &mut ImageRows(&img),
            Some(skysift::stream::MaskRows {
                rows: &mut mrows,
                thresh: 0.0,
            }),
            &e,
            rows,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(s.catalog, whole.catalog, "strips of {rows}");
    }
}

/// Without cleaning, a streamed run writes each object as soon as nothing before it
/// can still appear: only a few objects are held at once, and the catalog file is
/// byte-identical to the whole-image run's (FITS, row count patched at the end; CSV).
#[test]
fn without_cleaning_objects_are_written_as_they_come() {
    use crate::cli::{skysift, stderr};
    let dir = tempfile::tempdir().unwrap();
    let img = data_str("emmi_galaxies.fits.gz");
    for ext in ["fits", "csv"] {
        let whole = dir.path().join(format!("whole.{ext}"));
        let streamed = dir.path().join(format!("streamed.{ext}"));
        let o = skysift(&[
            &img,
            "-o",
            whole.to_str().unwrap(),
            "--no-clean",
            "--backend",
            "cpu",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = skysift(&[
            &img,
            "-o",
            streamed.to_str().unwrap(),
            "--no-clean",
            "--backend",
            "cpu",
            "--stream-rows",
            "8",
            "--timings",
        ]);
        let e = stderr(&o);
        assert!(o.status.success(), "{e}");
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap(),
            "{ext}"
        );
        let held: usize = e
            .lines()
            .find(|l| l.contains("most objects held"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no held count in {e}"));
        let total: usize = e
            .split("skysift: ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no object count in {e}"));
        assert!(total > 800 && held * 10 < total, "held {held} of {total}");
    }
}

/// Check images of a streamed run, block by block, equal the whole-image run's.
fn same_check_images(image: &str, mask: Option<&str>, e: &Extractor, cases: &[(usize, usize)]) {
    use skysift::stream::{check_pass, CheckWant, MaskRows, SegmentSpill};
    let img = io::read_image(&data_str(image)).unwrap();
    let m = mask.map(|m| io::read_image(&data_str(m)).unwrap());
    let mk = m.as_ref().map(|m| skysift::Mask::from_image(m, 0.0));
    let inputs = Inputs {
        mask: mk.as_ref(),
        ..Default::default()
    };
    let whole = e.extract(&img, inputs).unwrap();
    let (w, h) = (img.width(), img.height());
    let seg_map = whole.segmentation.to_map();
    let filtered = whole.filtered();
    let (back, rms) = (whole.background.back_map(), whole.background.rms_map());
    for &(strip_rows, block_rows) in cases {
        let mut spill = SegmentSpill::new(w, h, block_rows, None).unwrap();
        let mut mrows = m.as_ref().map(ImageRows);
        let mut objects = Vec::new();
        let summary = skysift::stream::extract_streaming_to(
            &mut ImageRows(&img),
            RowInputs {
                mask: mrows.as_mut().map(|r| MaskRows {
                    rows: r,
                    thresh: 0.0,
                }),
                ..Default::default()
            },
            Sinks {
                segments: Some(&mut spill),
                ..Default::default()
            },
            e,
            &Plan::rows(strip_rows),
            &mut |_| {},
            &mut |o| {
                objects.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(objects, whole.catalog.objects, "{image} {strip_rows}");
        let want = CheckWant {
            subtracted: true,
            filtered: true,
            background: true,
            rms: true,
            segmentation: true,
        };
        let (mut sub, mut fil, mut bg, mut rm, mut seg) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut mrows = m.as_ref().map(ImageRows);
        let mut blocks = 0;
        check_pass(
            &mut ImageRows(&img),
            mrows.as_mut().map(|r| MaskRows {
                rows: r,
                thresh: 0.0,
            }),
            &summary.background,
            e,
            want,
            Some(&mut spill),
            0,
            &mut |b| {
                assert_eq!(b.y0, sub.len() / w);
                assert!(b.rows <= block_rows);
                sub.extend_from_slice(b.subtracted);
                fil.extend_from_slice(b.filtered);
                bg.extend_from_slice(b.background);
                rm.extend_from_slice(b.rms);
                seg.extend_from_slice(b.segmentation);
                blocks += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(blocks, h.div_ceil(block_rows));
        let case = format!("{image}, strips of {strip_rows}, blocks of {block_rows}");
        assert_eq!(seg, seg_map, "segmentation, {case}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&sub),
            bits(whole.subtracted().data()),
            "subtracted, {case}"
        );
        assert_eq!(bits(&fil), bits(filtered.data()), "filtered, {case}");
        assert_eq!(bits(&bg), bits(back.data()), "background, {case}");
        assert_eq!(bits(&rm), bits(rms.data()), "rms, {case}");
    }
}

#[test]
fn streamed_check_images_equal_whole_image_ones() {
    let e = Extractor::default();
    // Blocks smaller than objects, larger than the image, and not aligned with strips.
    same_check_images(
        "sep_image.fits",
        None,
        &e,
        &[(7, 1), (64, 5), (10_000, 300)],
    );
    same_check_images(
        "sim_masked_crop.fits",
        Some("sim_masked_crop.mask.fits"),
        &e,
        &[(33, 17)],
    );
    let mut noclean = Extractor::default();
    noclean.extract.clean = false;
    noclean.extract.kernel = Some(skysift::Kernel::gaussian(3.0).unwrap());
    same_check_images("emmi_galaxies.fits.gz", None, &noclean, &[(50, 64)]);
}

#[test]
fn streamed_runs_write_the_whole_image_runs_check_images_and_regions() {
    use crate::cli::{skysift, stderr};
    let dir = tempfile::tempdir().unwrap();
    let img = data_str("sim_masked_crop.fits");
    let mask = data_str("sim_masked_crop.mask.fits");
    let kinds = [
        "SEGMENTATION",
        "BACKGROUND",
        "BACKGROUND_RMS",
        "-BACKGROUND",
        "FILTERED",
        "OBJECTS",
        "-OBJECTS",
        "APERTURES",
        "MINIBACKGROUND",
        "MINIBACK_RMS",
    ];
    let run = |tag: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            img.clone(),
            "--mask".into(),
            mask.clone(),
            "-o".into(),
            dir.path().join(format!("{tag}.fits")).display().to_string(),
            "--regions".into(),
            dir.path().join(format!("{tag}.reg")).display().to_string(),
            "--backend".into(),
            "cpu".into(),
        ];
        for k in kinds {
            args.push("--check-image".into());
            args.push(format!(
                "{k}:{}",
                dir.path().join(format!("{tag}_{k}.fits")).display()
            ));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = skysift(&a);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run("whole", &[]);
    // Strips of 13 rows, check images written in blocks of 9 (smaller than objects).
    run("streamed", &["--stream-rows", "13"]);
    let read = |name: String| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("whole.fits".into()), read("streamed.fits".into()));
    assert_eq!(read("whole.reg".into()), read("streamed.reg".into()));
    for k in kinds {
        assert_eq!(
            read(format!("whole_{k}.fits")),
            read(format!("streamed_{k}.fits")),
            "{k}"
        );
    }
    // Pictures need the whole image: refused before any work, nothing written.
    let out = dir.path().join("png");
    std::fs::create_dir(&out).unwrap();
    let o = skysift(&[
        &img,
        "-o",
        out.join("c.fits").to_str().unwrap(),
        "--check-image",
        &format!("SEGMENTATION:{}", out.join("seg.png").display()),
        "--stream-rows",
        "13",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("write check images as FITS"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn an_object_larger_than_the_pixel_cap_stops_the_run_with_a_clear_error() {
    // A 200x200 sky with one broad source of about 9,000 detected pixels.
    let (w, h) = (200usize, 200usize);
    let mut s = 7u64;
    let d: Vec<f32> = (0..w * h)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0;
            let (x, y) = ((i % w) as f64 - 100.0, (i / w) as f64 - 100.0);
            (100.0 + noise + 60.0 * (-(x * x + y * y) / (2.0 * 40.0 * 40.0)).exp()) as f32
        })
        .collect();
    let img = skysift::Image::new(w, h, d).unwrap();
    let mut e = Extractor::default();
    e.background.mesh_size = (200, 200);
    let whole = e.extract(&img, Inputs::default()).unwrap();
    let biggest = whole.catalog.objects.iter().map(|o| o.npix).max().unwrap() as usize;
    assert!(biggest > 5_000, "{biggest}");
    let run = |cap: usize| {
        let mut objects = Vec::new();
        skysift::stream::extract_streaming_to(
            &mut ImageRows(&img),
            RowInputs::default(),
            Sinks::default(),
            &e,
            &Plan {
                max_open_pixels: Some(cap),
                ..Plan::rows(16)
            },
            &mut |_| {},
            &mut |o| {
                objects.push(o);
                Ok(())
            },
        )
        .map(|_| objects)
    };
    let err = run(biggest / 2).unwrap_err().to_string();
    assert!(
        err.contains("the memory limit allows") && err.contains("raise the detection threshold"),
        "{err}"
    );
    assert_eq!(run(biggest + 100).unwrap(), whole.catalog.objects);
}

/// `Extractor::extract_file` reads the image and its mask from disk and gives the
/// catalog of `extract` on the images in memory, whole and streamed under a memory
/// limit (a few strips of this 512-pixel-wide image).
#[test]
fn extract_file_equals_extract_whole_and_streamed() {
    let path = data_str("sim_masked_crop.fits");
    let mask_path = data_str("sim_masked_crop.mask.fits");
    let img = io::read_image(&path).unwrap();
    let mask = skysift::Mask::from_image(&io::read_image(&mask_path).unwrap(), 0.0);
    let e = Extractor::default();
    let want = e.extract(&img, crate::common::masked(&mask)).unwrap();
    assert!(want.catalog.len() > 50, "{}", want.catalog.len());
    let mut inputs = skysift::FileInputs {
        mask: Some(mask_path),
        ..Default::default()
    };
    let whole = e.extract_file(&path, &inputs).unwrap();
    assert!(!whole.streamed);
    assert_eq!(whole.catalog, want.catalog);
    inputs.memory_limit_mib = Some(2.0);
    let streamed = e.extract_file(&path, &inputs).unwrap();
    assert!(streamed.streamed);
    assert_eq!(streamed.catalog, want.catalog);
    // A limit below one strip is an error that says how much one needs.
    inputs.memory_limit_mib = Some(0.001);
    let err = e.extract_file(&path, &inputs).unwrap_err().to_string();
    assert!(
        err.contains("MEMORY_LIMIT") && err.contains("give at least"),
        "{err}"
    );
    // A TIFF is read whole (the same catalog), and cannot be streamed.
    let dir = tempfile::tempdir().unwrap();
    let tif = dir.path().join("image.tif");
    io::tiff::write_tiff_f32(&tif, &img).unwrap();
    let tif = tif.to_str().unwrap().to_string();
    inputs.memory_limit_mib = None;
    let from_tiff = e.extract_file(&tif, &inputs).unwrap();
    assert!(!from_tiff.streamed);
    assert_eq!(from_tiff.catalog, want.catalog);
    inputs.memory_limit_mib = Some(64.0);
    let err = e.extract_file(&tif, &inputs).unwrap_err().to_string();
    assert!(err.contains("image.tif") && err.contains("TIFF"), "{err}");
}
