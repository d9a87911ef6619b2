//! Flag images (FLAG_IMAGE, FLAG_TYPE): IMAFLAGS_ISO(n) and NIMAFLAGS_ISO(n) against
//! SExtractor's, whole, streamed and on the GPU, and the errors of bad flag maps.

use crate::common::{data, data_str, match_positions, run_in, Table};

fn folder() -> tempfile::TempDir {
    crate::common::config_folder(&["weighted_crop.fits", "weighted_crop.flag.fits"])
}

/// Every FLAG_TYPE (OR; MIN and MAX; AND and MOST, the map given twice) equals
/// SExtractor's on every object of the crop (SExtractor's command line: `-c
/// oracle_full.sex -FLAG_IMAGE ... -FLAG_TYPE ...` with a .param naming the vectors),
/// and a streamed run (strips of 7 rows) writes the same catalog.
#[test]
fn flag_columns_equal_sextractors_for_every_flag_type() {
    let dir = folder();
    let d = dir.path();
    for (name, types) in [
        ("or", "OR"),
        ("min_max", "MIN,MAX"),
        ("and_most", "AND,MOST"),
    ] {
        let k = types.split(',').count();
        std::fs::write(
            d.join("flag.param"),
            format!(
                "NUMBER\nX_IMAGE\nY_IMAGE\nISOAREA_IMAGE\nIMAFLAGS_ISO({k})\nNIMAFLAGS_ISO({k})\n"
            ),
        )
        .unwrap();
        let maps = vec!["weighted_crop.flag.fits"; k].join(",");
        let mut outs = Vec::new();
        for stream in [None, Some("7")] {
            let out = format!("{name}{}.csv", stream.map_or("", |_| "_streamed"));
            let mut args = vec![
                "weighted_crop.fits",
                "-c",
                "oracle_full.sex",
                "-PARAMETERS_NAME",
                "flag.param",
                "-FLAG_IMAGE",
                &maps,
                "-FLAG_TYPE",
                types,
                "-VERBOSE_TYPE",
                "QUIET",
                "-CATALOG_NAME",
                &out,
                "--catalog-type",
                "csv",
            ];
            if let Some(r) = stream {
                args.extend(["--stream-rows", r]);
            }
            let o = run_in(d, &args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            outs.push(std::fs::read(d.join(&out)).unwrap());
        }
        assert_eq!(outs[0], outs[1], "{name}: streamed differs from whole");
        let ours = Table::read_csv(&d.join(format!("{name}.csv")));
        let reference = Table::read_csv(&data(&format!("weighted_crop.sex_flags_{name}.csv")));
        let pos: Vec<(f64, f64)> = (0..ours.len())
            .map(|i| (ours.get(i, "X_IMAGE") - 1.0, ours.get(i, "Y_IMAGE") - 1.0))
            .collect();
        let (pairs, missing) = match_positions(&reference, &pos, 1e-3);
        assert!(missing.is_empty() && pairs.len() == reference.len() && pairs.len() > 30);
        let mut flagged = 0;
        for (r, i) in pairs {
            for c in ["IMAFLAGS_ISO", "NIMAFLAGS_ISO"] {
                for m in 1..=k {
                    let col = if k == 1 {
                        c.to_string()
                    } else {
                        format!("{c}_{m}")
                    };
                    assert_eq!(
                        ours.get(i, &col),
                        reference.get(r, &col),
                        "{name} {col} row {r}"
                    );
                }
            }
            flagged += (reference.get(
                r,
                if k == 1 {
                    "NIMAFLAGS_ISO"
                } else {
                    "NIMAFLAGS_ISO_1"
                },
            ) > 0.0) as usize;
        }
        assert!(flagged >= 10, "{name}: {flagged} flagged objects");
    }
    // The types do differ on this map (MIN vs MAX, AND vs MOST).
    let t = Table::read_csv(&data("weighted_crop.sex_flags_min_max.csv"));
    assert!((0..t.len()).any(|r| t.get(r, "IMAFLAGS_ISO_1") != t.get(r, "IMAFLAGS_ISO_2")));
    // An int16 −1 is 65535, as SExtractor reads it.
    assert!((0..t.len()).any(|r| t.get(r, "IMAFLAGS_ISO_2") == 65535.0));
}

/// The library: the GPU backend's flags equal the CPU's.
#[test]
fn flag_columns_on_the_gpu_equal_the_cpu() {
    use skysift::imaflags::FlagType;
    let path = data_str("weighted_crop.fits");
    let inputs = skysift::FileInputs {
        flag_images: vec![data_str("weighted_crop.flag.fits"); 3],
        ..Default::default()
    };
    let mut e = skysift::Extractor::default();
    e.extract.flag_types = vec![FlagType::Or, FlagType::Min, FlagType::Most];
    let cpu = e.extract_file(&path, &inputs).unwrap();
    assert!(
        cpu.catalog
            .objects
            .iter()
            .filter(|o| o.nimaflags[0] > 0)
            .count()
            >= 10
    );
    if let Some(mut g) = crate::gpu::gpu_extractor() {
        g.extract = e.extract.clone();
        assert_eq!(g.extract_file(&path, &inputs).unwrap().catalog, cpu.catalog);
    }
}

/// A flag map of another shape, a floating-point one, or one type too many is refused
/// with exit code 2 and a message naming the problem.
#[test]
fn bad_flag_images_are_refused() {
    let dir = folder();
    let d = dir.path();
    std::fs::copy(data("sep_image.fits"), d.join("small.fits")).unwrap();
    let mut float = Vec::new();
    {
        let img = skysift::io::read_image(&data_str("weighted_crop.flag.fits")).unwrap();
        float.extend_from_slice(img.data());
        skysift::io::fits::write_fits_f32(&d.join("float.fits"), 320, 320, &float, "flag").unwrap();
    }
    for (map, needle) in [
        ("small.fits", "must have the same shape"),
        ("float.fits", "BITPIX -32"),
    ] {
        let o = run_in(
            d,
            &[
                "weighted_crop.fits",
                "-o",
                "x.csv",
                "--params",
                "NUMBER,IMAFLAGS_ISO",
                "--flag-image",
                map,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{map}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{map}: {err}");
        assert!(!d.join("x.csv").exists());
    }
    let o = run_in(
        d,
        &[
            "weighted_crop.fits",
            "-o",
            "x.csv",
            "--params",
            "IMAFLAGS_ISO",
            "--flag-image",
            "weighted_crop.flag.fits",
            "--flag-type",
            "sometimes",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--flag-type"));
}
