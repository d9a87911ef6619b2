//! Dual-image mode (`det.fits,meas.fits`): detection, positions and shapes from the
//! first image, fluxes, FLUX_MAX, ISOAREA and photometry from the second, against
//! SExtractor's own dual-image catalog; streamed, GPU and errors.

use crate::common::{data, data_str, match_positions, rel, run_in, Table};

fn folder() -> tempfile::TempDir {
    crate::common::config_folder(&["dual_det.fits", "dual_meas.fits", "sep_image.fits"])
}

/// SExtractor's command line on the pair (oracle_full.sex, 96 parameters): the same
/// objects as SExtractor's dual run, FLAGS equal, isophotal fluxes and errors within
/// 1e-6, FLUX_AUTO/PETRO and FLUX_MAX exactly as SExtractor (its float32), the
/// windowed and world columns within their usual agreement; and the columns that
/// come from the measurement image differ from a single-image run of the detection
/// image, while those of the detection image do not.
#[test]
fn dual_image_catalog_is_sextractors() {
    let dir = folder();
    let d = dir.path();
    let o = run_in(
        d,
        &[
            "dual_det.fits,dual_meas.fits",
            "-c",
            "oracle_full.sex",
            "-CATALOG_NAME",
            "dual.csv",
            "--catalog-type",
            "csv",
            "-VERBOSE_TYPE",
            "QUIET",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ours = Table::read_csv(&d.join("dual.csv"));
    let reference = Table::read_csv(&data("dual.sex_full.csv"));
    let pos: Vec<(f64, f64)> = (0..ours.len())
        .map(|i| (ours.get(i, "X_IMAGE") - 1.0, ours.get(i, "Y_IMAGE") - 1.0))
        .collect();
    let (pairs, missing) = match_positions(&reference, &pos, 1e-3);
    assert!(missing.is_empty() && pairs.len() == ours.len() && pairs.len() > 30);
    for &(r, i) in &pairs {
        for c in [
            "FLAGS",
            "ISOAREA_IMAGE",
            "ISOAREAF_IMAGE",
            "XMAX_IMAGE",
            "ISO0",
            "ISO3",
        ] {
            assert_eq!(ours.get(i, c), reference.get(r, c), "{c} of row {r}");
        }
        for (c, tol) in [
            ("FLUX_ISO", 1e-6),
            ("FLUXERR_ISO", 1e-6),
            ("FLUX_MAX", 1e-6),
            ("FLUX_AUTO", 1e-6),
            ("FLUX_PETRO", 1e-6),
            ("FLUX_APER_2", 1e-5),
            ("FLUX_RADIUS_2", 1e-5),
            ("A_IMAGE", 1e-6),
            ("ERRX2_IMAGE", 1e-6),
            ("THRESHOLD", 1e-6),
            ("BACKGROUND", 1e-5),
        ] {
            let (a, b) = (ours.get(i, c), reference.get(r, c));
            assert!(rel(a, b) < tol, "{c} of row {r}: {a} vs {b}");
        }
        for c in ["XWIN_IMAGE", "YWIN_IMAGE"] {
            assert!(
                (ours.get(i, c) - reference.get(r, c)).abs() < 1e-5,
                "{c} of row {r}"
            );
        }
        assert!((ours.get(i, "MU_MAX") - reference.get(r, "MU_MAX")).abs() < 1e-4);
        assert!((ours.get(i, "CLASS_STAR") - reference.get(r, "CLASS_STAR")).abs() < 1e-3);
        let da = (ours.get(i, "ALPHA_J2000") - reference.get(r, "ALPHA_J2000")).abs() * 3600.0;
        assert!(da < 1e-3, "ALPHA_J2000 of row {r}: {da}\"");
    }
    // The detection image alone: the same positions, other fluxes.
    let o = run_in(
        d,
        &[
            "dual_det.fits",
            "-c",
            "oracle_full.sex",
            "-CATALOG_NAME",
            "det.csv",
            "--catalog-type",
            "csv",
            "-VERBOSE_TYPE",
            "QUIET",
        ],
    );
    assert!(o.status.success());
    let det = Table::read_csv(&d.join("det.csv"));
    assert_eq!(det.len(), ours.len());
    let moved = (0..det.len())
        .filter(|&i| rel(det.get(i, "FLUX_AUTO"), ours.get(i, "FLUX_AUTO")) > 0.01)
        .count();
    assert!(moved > det.len() / 2, "{moved} fluxes changed");
    for i in 0..det.len() {
        assert_eq!(det.get(i, "X_IMAGE"), ours.get(i, "X_IMAGE"));
        assert_eq!(det.get(i, "A_IMAGE"), ours.get(i, "A_IMAGE"));
    }
}

/// The library: the GPU backend and a streamed run (strips of 9 rows; AUTO, Petrosian,
/// FLUX_RADIUS and WIN included, their radii from the detection image's rows) give
/// the whole-image CPU catalog.
#[test]
fn dual_image_mode_streamed_and_on_the_gpu() {
    let det = data_str("dual_det.fits");
    let mut e = skysift::Extractor::default();
    e.extract.phot.want = skysift::photometry::Wanted::from_columns([
        "FLUX_APER",
        "MU_MAX",
        "FLUX_AUTO",
        "FLUX_PETRO",
        "FLUX_RADIUS",
        "XWIN_IMAGE",
    ]);
    let whole_in = skysift::FileInputs {
        measurement: Some(data_str("dual_meas.fits")),
        ..Default::default()
    };
    let whole = e.extract_file(&det, &whole_in).unwrap();
    assert!(whole.catalog.len() > 30);
    let streamed = e
        .extract_file(
            &det,
            &skysift::FileInputs {
                stream_rows: Some(9),
                ..whole_in.clone()
            },
        )
        .unwrap();
    assert!(streamed.streamed);
    assert_eq!(whole.catalog, streamed.catalog);
    let alone = e.extract_file(&det, &Default::default()).unwrap();
    assert_ne!(alone.catalog.objects[0].flux, whole.catalog.objects[0].flux);
    if let Some(mut g) = crate::gpu::gpu_extractor() {
        g.extract = e.extract.clone();
        assert_eq!(
            g.extract_file(&det, &whole_in).unwrap().catalog,
            whole.catalog
        );
    }
}

/// Images of different shapes are refused with exit code 2 and a message that names
/// the problem.
#[test]
fn dual_image_mode_refusals() {
    let dir = folder();
    let d = dir.path();
    for (args, needle) in [(
        &["dual_det.fits,sep_image.fits", "-o", "x.csv"][..],
        "same shape",
    )] {
        let o = run_in(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!d.join("x.csv").exists());
    }
}
