//! World coordinates: pixel → sky against astropy.wcs (wcslib) on a header per
//! projection and convention (tests/data/wcs, made by make_wcs_refs.py), and the
//! catalog's world columns against SExtractor's.

use crate::common::{data, Table};
use skysift::world::{Header, Wcs};

/// The angular distance in arcsec between two (lon, lat) positions in degrees.
fn arcsec(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (a0, d0, a1, d1) = (
        a[0].to_radians(),
        a[1].to_radians(),
        b[0].to_radians(),
        b[1].to_radians(),
    );
    let h = ((d1 - d0) / 2.0).sin().powi(2) + d0.cos() * d1.cos() * ((a1 - a0) / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin().to_degrees() * 3600.0
}

fn wcs_of(name: &str) -> Wcs {
    let text = std::fs::read_to_string(data(&format!("wcs/{name}.hdr"))).unwrap();
    let cards: Vec<&str> = text.lines().collect();
    Wcs::from_header(&Header::from_cards(&cards), [1024, 960], name == "sip")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every projection and convention within 1e-4 arcsec of astropy, in the header's
/// own frame and in equatorial J2000 (galactic axes converted, EQUINOX 1950
/// precessed with the IAU 1976 angles).
#[test]
fn pixel_to_sky_matches_astropy_for_every_projection() {
    let names = [
        "tan",
        "sin",
        "arc",
        "zea",
        "stg",
        "azp",
        "air",
        "zpn",
        "car",
        "cea",
        "cyp",
        "ait",
        "mol",
        "mer",
        "sfl",
        "par",
        "sin_slant",
        "ncp",
        "tan_north",
        "crota",
        "pc",
        "lonpole",
        "decra",
        "galactic_car",
        "galactic_tan",
        "ecliptic_tan",
        "fk5_1950",
        "tpv",
        "sip",
    ];
    let mut report = Vec::new();
    for name in names {
        let w = wcs_of(name);
        assert!(w.celestial(), "{name}: no celestial pair");
        let t = Table::read_csv(&data(&format!("wcs/{name}.csv")));
        assert!(t.len() >= 40, "{name}: {} points", t.len());
        let (lng, lat) = w.lng_lat();
        let (mut worst_native, mut worst_j2000) = (0.0f64, 0.0f64);
        for r in 0..t.len() {
            let p = [t.get(r, "x"), t.get(r, "y")];
            let native = w
                .pix2native(p)
                .unwrap_or_else(|| panic!("{name}: {p:?} unreachable"));
            let want = [t.get(r, "w1"), t.get(r, "w2")];
            let d = arcsec([native[lng], native[lat]], [want[lng], want[lat]]);
            worst_native = worst_native.max(d);
            let (ra, dec) = (t.get(r, "ra"), t.get(r, "dec"));
            if ra.is_finite() {
                let sky = w.sky_of(w.pix2world(p).unwrap());
                worst_j2000 = worst_j2000.max(arcsec(w.j2000_of(sky), [ra, dec]));
            }
        }
        let ok = worst_native <= 1e-4 && worst_j2000 <= 1e-4;
        report.push(format!(
            "{name}: {worst_native:.2e}\" native, {worst_j2000:.2e}\" J2000{}",
            if ok { "" } else { "  <-- over 1e-4\"" }
        ));
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(!report.contains("<--"), "{report}");
}

/// SExtractor ignores SIP: without --sip the SIP header is plain TAN, which is
/// astropy's answer with the distortion left out, and far from the one with it.
#[test]
fn sip_is_left_out_unless_asked() {
    let text = std::fs::read_to_string(data("wcs/sip.hdr")).unwrap();
    let cards: Vec<&str> = text.lines().collect();
    let h = Header::from_cards(&cards);
    let plain = Wcs::from_header(&h, [1024, 960], false).unwrap();
    assert!(
        plain.warnings.iter().any(|w| w.contains("SIP")),
        "{:?}",
        plain.warnings
    );
    let tan = wcs_of("tan");
    let corner = [1.0, 1.0];
    let d = arcsec(
        plain.pix2world(corner).unwrap(),
        tan.pix2world(corner).unwrap(),
    );
    assert!(d < 1e-9, "{d}");
    let with = wcs_of("sip");
    let d = arcsec(
        plain.pix2world(corner).unwrap(),
        with.pix2world(corner).unwrap(),
    );
    assert!(d > 1.0, "SIP moves the corner by {d}\"");
}

/// A working folder with the oracle configuration, the WCS test crop and its
/// external headers.
fn world_folder() -> tempfile::TempDir {
    crate::common::config_folder(&[
        "weighted_crop.fits",
        "weighted_crop.fk5_1950.head",
        "weighted_crop.galactic.head",
        "weighted_crop.tpv.head",
    ])
}

/// skysift run in `dir` with `args`; its CSV catalog `name`.
fn run_csv(dir: &std::path::Path, args: &[&str], name: &str) -> Table {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Table::read_csv(&dir.join(name))
}

/// The angle difference in degrees, wrapped at 180.
fn dtheta(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(180.0);
    d.min(180.0 - d)
}

/// SExtractor's world columns on the TAN crop of sim_weighted_1024 and through its
/// three external headers (FK5 1950: precession; galactic axes; TPV), with SExtractor's
/// configuration (`-c oracle_full.sex`, which implies `--compat sextractor`):
/// positions within 1e-3", shapes within 1e-4 relative, angles within 0.01 degree.
#[test]
fn world_columns_match_sextractor_for_each_header() {
    let dir = world_folder();
    let d = dir.path();
    for variant in ["", "_fk5_1950", "_galactic", "_tpv"] {
        let suffix = match variant {
            "" => ".nohead".to_string(),
            v => format!("{}.head", v.replacen('_', ".", 1)),
        };
        let name = format!("ours{variant}.csv");
        let ours = run_csv(
            d,
            &[
                "weighted_crop.fits",
                "-c",
                "oracle_full.sex",
                "-PARAMETERS_NAME",
                "world.param",
                "-HEADER_SUFFIX",
                &suffix,
                "-VERBOSE_TYPE",
                "QUIET",
                "--catalog-type",
                "csv",
                "-CATALOG_NAME",
                &name,
            ],
            &name,
        );
        let reference = Table::read_csv(&data(&format!("weighted_crop.sex_world{variant}.csv")));
        assert!(
            reference.len() > 30,
            "{variant}: {} objects",
            reference.len()
        );
        let pos: Vec<(f64, f64)> = (0..ours.len())
            .map(|i| (ours.get(i, "X_IMAGE") - 1.0, ours.get(i, "Y_IMAGE") - 1.0))
            .collect();
        let (pairs, missing) = crate::common::match_positions(&reference, &pos, 1e-3);
        assert!(missing.is_empty(), "{variant}: {} unmatched", missing.len());
        let mut worst = std::collections::BTreeMap::<&str, f64>::new();
        let mut note = |k: &'static str, v: f64| {
            let w = worst.entry(k).or_insert(0.0);
            *w = w.max(v);
        };
        for &(r, i) in &pairs {
            let at = |t: &Table, row: usize, a: &str, b: &str| [t.get(row, a), t.get(row, b)];
            for (a, b) in [
                ("ALPHA_J2000", "DELTA_J2000"),
                ("ALPHA_SKY", "DELTA_SKY"),
                ("ALPHA_B1950", "DELTA_B1950"),
                ("X_WORLD", "Y_WORLD"),
                ("ALPHAPEAK_J2000", "DELTAPEAK_J2000"),
                ("XPEAK_WORLD", "YPEAK_WORLD"),
            ] {
                note(a, arcsec(at(&ours, i, a, b), at(&reference, r, a, b)));
            }
            // The windowed position itself differs by up to 1e-6 px between the two.
            let win = arcsec(
                at(&ours, i, "ALPHAWIN_J2000", "DELTAWIN_J2000"),
                at(&reference, r, "ALPHAWIN_J2000", "DELTAWIN_J2000"),
            );
            note("ALPHAWIN_J2000", win);
            for c in [
                "X2_WORLD",
                "Y2_WORLD",
                "A_WORLD",
                "B_WORLD",
                "CXX_WORLD",
                "CYY_WORLD",
                "ERRA_WORLD",
                "ERRB_WORLD",
                "ISOAREA_WORLD",
                "AWIN_WORLD",
                "BWIN_WORLD",
            ] {
                note(c, crate::common::rel(ours.get(i, c), reference.get(r, c)));
            }
            for c in ["XY_WORLD", "CXY_WORLD"] {
                // Signed terms: relative to the scale of their diagonal partners.
                let (o, s) = (ours.get(i, c), reference.get(r, c));
                let scale = match c {
                    "XY_WORLD" => reference.get(r, "X2_WORLD") + reference.get(r, "Y2_WORLD"),
                    _ => reference.get(r, "CXX_WORLD") + reference.get(r, "CYY_WORLD"),
                };
                note(c, (o - s).abs() / scale);
            }
            for c in [
                "THETA_WORLD",
                "THETA_SKY",
                "THETA_J2000",
                "THETA_B1950",
                "THETAWIN_J2000",
            ] {
                // Round objects' angles are not defined to 0.01 degree.
                let e = ours.get(i, "A_WORLD") / ours.get(i, "B_WORLD");
                if e > 1.05 {
                    note(c, dtheta(ours.get(i, c), reference.get(r, c)));
                }
            }
            let (ea, eb) = (ours.get(i, "ERRA_WORLD"), ours.get(i, "ERRB_WORLD"));
            if ea / eb > 1.05 {
                note(
                    "ERRTHETA_J2000",
                    dtheta(
                        ours.get(i, "ERRTHETA_J2000"),
                        reference.get(r, "ERRTHETA_J2000"),
                    ),
                );
            }
            if ours.get(i, "FWHM_IMAGE") == reference.get(r, "FWHM_IMAGE") {
                note(
                    "FWHM_WORLD",
                    crate::common::rel(ours.get(i, "FWHM_WORLD"), reference.get(r, "FWHM_WORLD")),
                );
            }
            note(
                "MU_MAX",
                (ours.get(i, "MU_MAX") - reference.get(r, "MU_MAX")).abs(),
            );
            note(
                "MU_THRESHOLD",
                (ours.get(i, "MU_THRESHOLD") - reference.get(r, "MU_THRESHOLD")).abs(),
            );
            note(
                "CLASS_STAR",
                (ours.get(i, "CLASS_STAR") - reference.get(r, "CLASS_STAR")).abs(),
            );
        }
        let limit = |k: &str| match k {
            "ALPHAWIN_J2000" => 1e-3,
            k if k.starts_with("ALPHA") || k.ends_with("_WORLD") && k.starts_with(['X', 'Y']) => {
                if k.contains('2') {
                    1e-4
                } else {
                    1e-3
                }
            }
            k if k.contains("THETA") => 0.01,
            "MU_MAX" | "MU_THRESHOLD" => 1e-4,
            "CLASS_STAR" => 1e-3,
            _ => 1e-4,
        };
        let bad: Vec<String> = worst
            .iter()
            .filter(|(k, v)| **v > limit(k))
            .map(|(k, v)| format!("{k} {v:.3e}"))
            .collect();
        eprintln!("{variant}: {} objects, worst {worst:?}", pairs.len());
        assert!(bad.is_empty(), "{variant}: over the limits: {bad:?}");
    }
}

/// Without `--compat sextractor` the shapes are the exact transform J·C·Jᵀ of the
/// pixel moments, with J from the library's WCS; SExtractor's formula differs.
#[test]
fn world_shapes_are_exact_without_compat() {
    let dir = world_folder();
    let d = dir.path();
    let cols = "X_IMAGE,Y_IMAGE,X2_IMAGE,Y2_IMAGE,XY_IMAGE,A_WORLD,B_WORLD,THETA_WORLD";
    let ours = run_csv(
        d,
        &[
            "weighted_crop.fits",
            "-q",
            "-o",
            "exact.csv",
            "--params",
            cols,
        ],
        "exact.csv",
    );
    let compat = run_csv(
        d,
        &[
            "weighted_crop.fits",
            "-q",
            "-o",
            "compat.csv",
            "--params",
            cols,
            "--compat",
            "sextractor",
        ],
        "compat.csv",
    );
    let wcs = Wcs::from_file(
        &crate::common::data_str("weighted_crop.fits"),
        ".head",
        false,
    )
    .unwrap();
    assert_eq!(ours.len(), compat.len());
    let mut far = 0;
    for i in 0..ours.len() {
        let p = [ours.get(i, "X_IMAGE"), ours.get(i, "Y_IMAGE")];
        let j = wcs.jacobian(p).unwrap();
        let [l0, l1, l2, l3] = j.l;
        let (x2, y2, xy) = (
            ours.get(i, "X2_IMAGE"),
            ours.get(i, "Y2_IMAGE"),
            ours.get(i, "XY_IMAGE"),
        );
        // J C Jᵀ written out.
        let w = [
            l0 * l0 * x2 + 2.0 * l0 * l1 * xy + l1 * l1 * y2,
            l2 * l2 * x2 + 2.0 * l2 * l3 * xy + l3 * l3 * y2,
            l0 * l2 * x2 + (l0 * l3 + l1 * l2) * xy + l1 * l3 * y2,
        ];
        let mean = 0.5 * (w[0] + w[1]);
        let root = (0.25 * (w[0] - w[1]).powi(2) + w[2] * w[2]).sqrt();
        let (a, b) = ((mean + root).sqrt(), (mean - root).max(0.0).sqrt());
        assert!(crate::common::rel(ours.get(i, "A_WORLD"), a) < 1e-6, "{i}");
        assert!(crate::common::rel(ours.get(i, "B_WORLD"), b) < 1e-6, "{i}");
        // The exact ellipse's axes equal the pixel ellipse's times the pixel size
        // (this WCS is a rotation and a uniform scale).
        let s = j.area.sqrt();
        let pix_mean = 0.5 * (x2 + y2);
        let pix_root = (0.25 * (x2 - y2).powi(2) + xy * xy).sqrt();
        assert!(
            crate::common::rel(a, (pix_mean + pix_root).sqrt() * s) < 1e-6,
            "{i}"
        );
        if crate::common::rel(compat.get(i, "B_WORLD"), b) > 0.01 {
            far += 1;
        }
    }
    assert!(
        far > 0,
        "SExtractor's formula should differ on tilted objects"
    );
}

/// World columns through the library: a streamed run (strips of 7 rows) and the GPU
/// backend give the whole-image CPU run's catalog, world coordinates included.
#[test]
fn streamed_world_columns_equal_the_whole_image_run() {
    use skysift::world::{MomentTransform, WorldSettings};
    let path = crate::common::data_str("weighted_crop.fits");
    let mut e = skysift::Extractor::default();
    e.extract.phot.want = skysift::photometry::Wanted::from_columns(["XWIN_WORLD", "MU_MAX"]);
    e.extract.world = Some(std::sync::Arc::new(WorldSettings {
        wcs: Wcs::from_file(&path, ".head", false).unwrap(),
        transform: MomentTransform::Exact,
        pixel_scale: 0.0,
    }));
    let whole = e.extract_file(&path, &Default::default()).unwrap();
    let streamed = e
        .extract_file(
            &path,
            &skysift::FileInputs {
                stream_rows: Some(7),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(streamed.streamed && !whole.streamed);
    assert!(whole.catalog.len() > 30);
    assert!(whole.catalog.objects.iter().all(|o| o.world.is_some()));
    let w = whole.catalog.objects[0].world.as_deref().unwrap();
    assert!((w.pos[0].j2000[0] - 150.1).abs() < 0.1 && (w.pos[0].j2000[1] - 2.2).abs() < 0.1);
    assert_eq!(whole.catalog, streamed.catalog);
    // The GPU backend (lavapipe in CI) gives the same catalog, world columns included.
    if let Some(mut g) = crate::gpu::gpu_extractor() {
        g.extract = e.extract.clone();
        let on_gpu = g.extract_file(&path, &Default::default()).unwrap();
        assert_eq!(whole.catalog, on_gpu.catalog);
    }
}
