//! Input formats, masks, thresholds, kernels and options, on small hand-checkable
//! images and on simulated truth.

use crate::common::{data, data_str, with_threads, Table};
use skysift::params::{Connectivity, RmsSource, ThreshType};
use skysift::{io, BackgroundParams, Error, ExtractParams, Extractor, Image, Inputs, Kernel, Mask};

/// The pattern every fmt_* fixture holds (tests/data/make_inputs.py).
fn pattern(x: usize, y: usize) -> f32 {
    (2 * ((x + 3 * y) % 17) + 100) as f32
}

fn assert_pattern(img: &Image, offset: f32) {
    assert_eq!((img.width(), img.height()), (40, 30));
    for y in 0..30 {
        for x in 0..40 {
            assert_eq!(img.get(x, y), pattern(x, y) + offset, "pixel ({x},{y})");
        }
    }
}

#[test]
fn every_fits_encoding_decodes_to_the_same_pixels() {
    for f in [
        "fmt_f32.fits",
        "fmt_f64.fits",
        "fmt_i32.fits",
        "fmt_i16_scaled.fits",
        "fmt_f32.fits.gz",
        "fmt_rice.fits",
    ] {
        let img = io::read_image(&data_str(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_pattern(&img, 0.0);
    }
    assert_pattern(
        &io::read_image(&data_str("fmt_u8_offset100.fits")).unwrap(),
        -100.0,
    );
}

#[test]
fn multi_extension_files_select_an_hdu() {
    // Default: the first HDU holding a 2-D image (HDU 2, after an empty primary and a table).
    assert_pattern(&io::read_image(&data_str("fmt_mef.fits")).unwrap(), 0.0);
    assert_pattern(
        &io::read_image(&format!("{}[3]", data_str("fmt_mef.fits"))).unwrap(),
        1.0,
    );
    assert_pattern(
        &io::read_image(&format!("{}[SCI2]", data_str("fmt_mef.fits"))).unwrap(),
        1.0,
    );
    let e = io::read_image(&format!("{}[1]", data_str("fmt_mef.fits"))).unwrap_err();
    assert!(e.to_string().contains("table"), "{e}");
    let e = io::read_image(&format!("{}[9]", data_str("fmt_mef.fits"))).unwrap_err();
    assert!(e.to_string().contains("4 HDU"), "{e}");
}

#[test]
fn a_cube_is_refused_with_its_shape() {
    let e = io::read_image(&data_str("bad_cube.fits")).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("bad_cube.fits") && m.contains("2-D"), "{m}");
}

#[test]
fn tiff_round_trip_and_same_catalog_as_fits() {
    let img = io::read_image(&data_str("sep_image.fits")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("img.tiff");
    io::tiff::write_tiff_f32(&t, &img).unwrap();
    let back = io::read_image(&t.to_string_lossy()).unwrap();
    assert_eq!(back, img);
    let a = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    let b = Extractor::default()
        .extract(&back, Inputs::default())
        .unwrap();
    assert_eq!(a.catalog, b.catalog);
}

/// A deterministic noisy sky with Gaussian stars: (image, truth (x, y, flux)).
fn synthetic(w: usize, h: usize, stars: &[(f64, f64, f64)], sigma_psf: f64, noise: f64) -> Image {
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut data = vec![0f32; w * h];
    for v in data.iter_mut() {
        let (u1, u2) = (uniform(), uniform());
        let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        *v = (500.0 + noise * g) as f32;
    }
    for &(sx, sy, flux) in stars {
        let norm = flux / (2.0 * std::f64::consts::PI * sigma_psf * sigma_psf);
        for y in 0..h {
            for x in 0..w {
                let r2 = (x as f64 - sx).powi(2) + (y as f64 - sy).powi(2);
                if r2 < 100.0 * sigma_psf * sigma_psf {
                    data[y * w + x] += (norm * (-r2 / (2.0 * sigma_psf * sigma_psf)).exp()) as f32;
                }
            }
        }
    }
    Image::new(w, h, data).unwrap()
}

fn grid_stars() -> Vec<(f64, f64, f64)> {
    let mut s = Vec::new();
    for j in 0..5 {
        for i in 0..6 {
            s.push((
                20.0 + 35.0 * i as f64 + 0.3 * j as f64,
                20.0 + 38.0 * j as f64 + 0.17 * i as f64,
                4000.0 + 500.0 * (i + j) as f64,
            ));
        }
    }
    s
}

#[test]
fn simulated_stars_are_all_found_at_their_positions() {
    let stars = grid_stars();
    let img = synthetic(230, 200, &stars, 1.5, 5.0);
    let r = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    for &(x, y, flux) in &stars {
        let o = r
            .catalog
            .objects
            .iter()
            .min_by(|a, b| ((a.x - x).hypot(a.y - y)).total_cmp(&(b.x - x).hypot(b.y - y)))
            .unwrap();
        assert!(
            (o.x - x).hypot(o.y - y) < 0.05,
            "star at ({x},{y}) measured at ({},{})",
            o.x,
            o.y
        );
        // Isophotal flux: most of the light, never more than all of it (+ noise).
        assert!(
            o.flux > 0.85 * flux && o.flux < 1.02 * flux,
            "flux {} vs {flux}",
            o.flux
        );
        // Moments are weighted by the filtered image: a Gaussian of σ² = 1.5² + 0.85²
        // (the default kernel), ≈ 1.72², cut by the isophote: A ≈ B a little below.
        assert!(
            o.a > 1.3 && o.a < 1.8 && o.b / o.a > 0.9,
            "a {} b {}",
            o.a,
            o.b
        );
    }
}

#[test]
fn simulated_truth_of_sim_crop_is_recovered() {
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let r = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    let truth = Table::read_csv_lossy(&data("sim_crop.truth.csv"));
    // Every truth source with a peak above 10σ of the noise (σ ≈ 10.6) lies inside a
    // detected footprint (blends are one object here: no deblending); the isolated
    // ones (no source of more than 5% of its flux within 20 px) are
    // measured within 0.3 px of the truth.
    let seg = r.segmentation.to_map();
    let mut bright = 0;
    let mut isolated = 0;
    for &(x, y, peak, flux) in &truth {
        if peak < 106.0 {
            continue;
        }
        bright += 1;
        let (x0, y0) = (x - 1.0, y - 1.0);
        let (px, py) = (x0.round() as usize, y0.round() as usize);
        assert!(
            seg[py * img.width() + px] != 0,
            "truth source at ({x},{y}) peak {peak} not detected"
        );
        let alone = truth.iter().all(|&(x2, y2, _, f2)| {
            (x2, y2) == (x, y) || (x2 - x).hypot(y2 - y) > 20.0 || f2 < 0.05 * flux
        });
        if alone {
            isolated += 1;
            let d = r
                .catalog
                .objects
                .iter()
                .map(|o| (o.x - x0).hypot(o.y - y0))
                .fold(f64::INFINITY, f64::min);
            assert!(
                d < 0.3,
                "isolated truth source at ({x},{y}): nearest object {d:.3} px away"
            );
        }
    }
    assert!(isolated >= 10, "only {isolated} isolated bright sources");
    assert!(bright > 20, "only {bright} bright truth sources");
}

#[test]
fn masked_pixels_are_never_detected_and_a_mask_must_match_the_image() {
    let stars = grid_stars();
    let img = synthetic(230, 200, &stars, 1.5, 5.0);
    let mut bad = vec![false; 230 * 200];
    // Mask a 16x16 box around the first star.
    for y in 12..28 {
        for x in 12..28 {
            bad[y * 230 + x] = true;
        }
    }
    let mask = Mask::new(230, 200, bad).unwrap();
    let a = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    let b = Extractor::default()
        .extract(&img, crate::common::masked(&mask))
        .unwrap();
    assert_eq!(b.catalog.len() + 1, a.catalog.len());
    for o in &b.catalog.objects {
        assert!(
            !(o.x > 10.0 && o.x < 30.0 && o.y > 10.0 && o.y < 30.0),
            "object inside the mask"
        );
    }
    let small = Mask::new(10, 10, vec![false; 100]).unwrap();
    let e = Extractor::default()
        .extract(&img, crate::common::masked(&small))
        .unwrap_err();
    assert!(
        matches!(e, Error::Mismatch(_)) && e.to_string().contains("10x10"),
        "{e}"
    );
}

#[test]
fn nan_inf_and_minus_big_pixels_are_invalid() {
    let stars = grid_stars();
    let mut img = synthetic(230, 200, &stars, 1.5, 5.0);
    let w = img.width();
    // Kill the first star with NaN, the second with +Inf, the third with -1e30.
    for (k, bad) in [(0usize, f32::NAN), (1, f32::INFINITY), (2, -1e30)] {
        let (sx, sy, _) = stars[k];
        for y in sy as usize - 6..sy as usize + 7 {
            for x in sx as usize - 6..sx as usize + 7 {
                img.data_mut()[y * w + x] = bad;
            }
        }
    }
    let r = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    assert_eq!(r.catalog.len(), stars.len() - 3);
    assert!(r
        .catalog
        .objects
        .iter()
        .all(|o| o.flux.is_finite() && o.x.is_finite()));
    let all_nan = Image::filled(64, 64, f32::NAN);
    let e = Extractor::default()
        .extract(&all_nan, Inputs::default())
        .unwrap_err();
    assert!(matches!(e, Error::EmptyImage(_)), "{e}");
}

#[test]
fn threshold_variants_agree_where_they_should() {
    let img = synthetic(230, 200, &grid_stars(), 1.5, 5.0);
    let base = Extractor::default()
        .extract(&img, Inputs::default())
        .unwrap();
    let g = base.background.global_rms();
    // Absolute threshold = 1.5 x global RMS in ADU gives the same catalog.
    let mut abs = Extractor::default();
    abs.extract.thresh_type = ThreshType::Absolute;
    abs.extract.detect_thresh = (1.5 * g as f32) as f64;
    abs.extract.analysis_thresh = abs.extract.detect_thresh;
    let a = abs.extract(&img, Inputs::default()).unwrap();
    assert_eq!(a.catalog.len(), base.catalog.len());
    // A constant threshold image of the same value gives the same objects.
    let t = Image::filled(230, 200, (1.5 * g) as f32);
    let ti = Extractor::default()
        .extract(&img, crate::common::thresholded(&t))
        .unwrap();
    assert_eq!(ti.segmentation, base.segmentation);
    // Relative to the RMS map: each object's THRESHOLD is 1.5 x the mean map RMS over it.
    let mut map = Extractor::default();
    map.extract.rms_source = RmsSource::Map;
    let m = map.extract(&img, Inputs::default()).unwrap();
    let rms = m.background.rms_map();
    for (k, o) in m.catalog.objects.iter().enumerate() {
        let runs = m.segmentation.object(k);
        let (mut s, mut n) = (0.0, 0.0);
        for r in runs {
            for x in r.x0..r.x1 {
                s += 1.5 * rms.get(x as usize, r.y as usize) as f64;
                n += 1.0;
            }
        }
        assert!((o.thresh - s / n).abs() < 1e-4 * o.thresh);
    }
    // A higher threshold finds no more objects, and each has no more pixels.
    let mut high = Extractor::default();
    high.extract.detect_thresh = 5.0;
    let hi = high.extract(&img, Inputs::default()).unwrap();
    assert!(hi.catalog.len() <= base.catalog.len());
}

#[test]
fn connectivity_and_minarea() {
    // Two 3x3 squares touching only at a corner: one object in 8-connectivity, two in 4.
    let mut img = synthetic(64, 64, &[], 1.0, 1.0);
    for (x0, y0) in [(20usize, 20usize), (23, 23)] {
        for y in y0..y0 + 3 {
            for x in x0..x0 + 3 {
                img.data_mut()[y * 64 + x] += 200.0;
            }
        }
    }
    let mut e = Extractor::default();
    e.extract.kernel = None;
    e.extract.detect_thresh = 20.0;
    assert_eq!(e.extract(&img, Inputs::default()).unwrap().catalog.len(), 1);
    e.extract.connectivity = Connectivity::Four;
    assert_eq!(e.extract(&img, Inputs::default()).unwrap().catalog.len(), 2);
    e.extract.minarea = 10;
    assert_eq!(e.extract(&img, Inputs::default()).unwrap().catalog.len(), 0);
    e.extract.connectivity = Connectivity::Eight;
    assert_eq!(e.extract(&img, Inputs::default()).unwrap().catalog.len(), 1);
}

#[test]
fn kernels_parse_and_normalise() {
    let k = Kernel::parse("CONV NORM\n# comment\n1 2 1\n2 4 2\n1 2 1\n").unwrap();
    assert_eq!(k, Kernel::default_3x3());
    let k = Kernel::parse("CONV NONORM\n1 2 1\n").unwrap();
    assert_eq!(k.data(), &[1.0, 2.0, 1.0]);
    let k = Kernel::parse("0.5, 1.0\n1.0, 0.5 # numpy.loadtxt style\n").unwrap();
    assert_eq!((k.width(), k.height()), (2, 2));
    assert!((k.data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert!(Kernel::parse("CONV NORM\n1 2 x\n")
        .unwrap_err()
        .contains("'x'"));
    assert!(Kernel::parse("1 2 3\n4 5\n")
        .unwrap_err()
        .contains("line 2 has 2 values but line 1 has 3"));
    // Ragged rows are refused even when the count is a multiple of a row's length.
    assert!(Kernel::parse("1 2 3\n4\n5 6\n").is_err());
    assert!(Kernel::parse("\n# nothing\n").is_err());
    let g = Kernel::gaussian(2.0).unwrap();
    assert_eq!((g.width(), g.height()), (5, 5));
    let c = g.data()[12];
    assert!(g.data().iter().all(|&v| v <= c));
    assert!((g.data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // Half maximum at r = FWHM/2 = 1 px: k(1,0)/k(0,0) = 0.5.
    assert!((g.data()[13] / c - 0.5).abs() < 1e-6);
    assert!(Kernel::gaussian(0.0).is_err());
    let f = Kernel::from_file(&data("sep_image.fits").with_extension("nope")).unwrap_err();
    assert!(f.to_string().contains("cannot read kernel file"));
}

#[test]
fn manual_background_and_no_filter() {
    let img = synthetic(128, 128, &[(64.0, 64.0, 5000.0)], 1.5, 5.0);
    let mut e = Extractor {
        background: BackgroundParams {
            manual_value: Some(500.0),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = e.extract(&img, Inputs::default()).unwrap();
    assert!(r.background.back_map().data().iter().all(|&v| v == 500.0));
    assert_eq!(r.background.global_back(), 500.0);
    e.extract.kernel = None;
    let r2 = e.extract(&img, Inputs::default()).unwrap();
    assert_eq!(r2.filtered(), *r2.subtracted());
}

#[test]
fn invalid_parameters_are_refused_by_name() {
    let img = synthetic(32, 32, &[], 1.0, 1.0);
    let cases: Vec<(ExtractParams, &str)> = vec![
        (
            ExtractParams {
                detect_thresh: 0.0,
                ..Default::default()
            },
            "DETECT_THRESH",
        ),
        (
            ExtractParams {
                detect_thresh: -1.0,
                ..Default::default()
            },
            "DETECT_THRESH",
        ),
        (
            ExtractParams {
                minarea: 0,
                ..Default::default()
            },
            "DETECT_MINAREA",
        ),
        (
            ExtractParams {
                gain: -1.0,
                ..Default::default()
            },
            "GAIN",
        ),
    ];
    for (p, name) in cases {
        let e = Extractor {
            extract: p,
            ..Default::default()
        }
        .extract(&img, Inputs::default())
        .unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    let e = Extractor {
        background: BackgroundParams {
            mesh_size: (0, 64),
            ..Default::default()
        },
        ..Default::default()
    }
    .extract(&img, Inputs::default())
    .unwrap_err();
    assert!(e.to_string().contains("BACK_SIZE"), "{e}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let img = io::read_image(&data_str("sim_crop.fits")).unwrap();
    let run = |n| {
        with_threads(n, || {
            Extractor::default()
                .extract(&img, Inputs::default())
                .unwrap()
        })
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(a.catalog, b.catalog);
    assert_eq!(a.segmentation, b.segmentation);
    assert_eq!(a.background.back_map(), b.background.back_map());
    assert_eq!(a.filtered(), b.filtered());
}

#[test]
fn matched_filter_finds_what_sep_finds() {
    // SEP 1.4.1 with filter_type='matched', err = its background RMS map, deblending and
    // cleaning off (tests/data/make_refs.py): the same objects with the same pixels.
    let img = io::read_image(&data_str("sep_image.fits")).unwrap();
    let mut e = Extractor::default();
    e.extract.filter_type = skysift::params::FilterType::Matched;
    e.extract.deblend.mincont = 1.0;
    e.extract.clean = false;
    let r = e.extract(&img, Inputs::default()).unwrap();
    let sep = Table::read_csv(&data("sep_image.sep_matched.csv"));
    assert_eq!(r.catalog.len(), sep.len());
    let pos: Vec<(f64, f64)> = r.catalog.objects.iter().map(|o| (o.x, o.y)).collect();
    let (pairs, missing) = crate::common::match_positions(&sep, &pos, 1.0);
    assert!(missing.is_empty());
    let mut dpos = Vec::new();
    for (ri, oi) in pairs {
        let o = &r.catalog.objects[oi];
        assert_eq!(
            o.npix as f64,
            sep.get(ri, "ISOAREAF_IMAGE"),
            "footprint of object {}",
            o.number
        );
        let f = sep.get(ri, "FLUX_ISO");
        assert!(
            (o.flux - f).abs() <= 1e-4 * f.abs(),
            "flux {} vs {f}",
            o.flux
        );
        dpos.push((o.x + 1.0 - sep.get(ri, "X_IMAGE")).hypot(o.y + 1.0 - sep.get(ri, "Y_IMAGE")));
    }
    dpos.sort_by(|a, b| a.total_cmp(b));
    // Positions: SEP weights moments slightly differently in matched mode (measured
    // median 1.2e-4 px, 90th percentile 1.5e-3 px).
    assert!(
        dpos[dpos.len() / 2] < 1e-3,
        "median {}",
        dpos[dpos.len() / 2]
    );
    // The matched filter needs a relative threshold.
    let mut bad = e.clone();
    bad.extract.thresh_type = ThreshType::Absolute;
    let err = bad.extract(&img, Inputs::default()).unwrap_err();
    assert!(err.to_string().contains("FILTER_TYPE"), "{err}");
}
