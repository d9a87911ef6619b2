//! Reliability: outputs never destroy inputs or each other, special files, one commit
//! per image, signals, file names with cfitsio syntax, BLANK pixels, flat images,
//! large kernels on both backends, and values outside their meaning.

use crate::cli::{files, skysift, stderr};
use crate::common::data_str;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A float32 FITS image (primary HDU) of `w` x `h` pixels.
fn write_f32(path: &Path, w: usize, h: usize, data: &[f32]) {
    skysift::io::fits::write_fits_f32(path, w, h, data, "TEST").unwrap();
}

/// An integer FITS image with BITPIX `bitpix`, optional BZERO and BLANK, written with
/// cfitsio directly (the stored raw values are `raw`).
fn write_int(
    path: &Path,
    w: usize,
    h: usize,
    bitpix: i32,
    raw: &[i64],
    bzero: Option<f64>,
    blank: Option<i64>,
) {
    use fitsio::images::{ImageDescription, ImageType};
    let _ = std::fs::remove_file(path);
    let ty = match bitpix {
        8 => ImageType::UnsignedByte,
        16 => ImageType::Short,
        _ => ImageType::Long,
    };
    let desc = ImageDescription {
        data_type: ty,
        dimensions: &[h, w],
    };
    let mut f = fitsio::FitsFile::create(path)
        .with_custom_primary(&desc)
        .open()
        .unwrap();
    let hdu = f.primary_hdu().unwrap();
    if let Some(b) = blank {
        hdu.write_key(&mut f, "BLANK", b).unwrap();
    }
    // Raw values are written with scaling off, then BZERO declared.
    match bitpix {
        8 => {
            let v: Vec<u8> = raw.iter().map(|&x| x as u8).collect();
            hdu.write_image(&mut f, &v).unwrap();
        }
        16 => {
            let v: Vec<i16> = raw.iter().map(|&x| x as i16).collect();
            hdu.write_image(&mut f, &v).unwrap();
        }
        _ => {
            let v: Vec<i32> = raw.iter().map(|&x| x as i32).collect();
            hdu.write_image(&mut f, &v).unwrap();
        }
    }
    if let Some(z) = bzero {
        hdu.write_key(&mut f, "BZERO", z).unwrap();
        hdu.write_key(&mut f, "BSCALE", 1.0).unwrap();
    }
}

/// A copy of sep_image.fits in a fresh folder.
fn image_in(dir: &Path) -> PathBuf {
    let img = dir.join("img.fits");
    std::fs::copy(data_str("sep_image.fits"), &img).unwrap();
    img
}

#[test]
fn no_output_may_overwrite_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let original = std::fs::read(&img).unwrap();
    let mask = d.join("mask.fits");
    write_f32(&mask, 256, 256, &vec![0.0; 256 * 256]);
    let kernel = d.join("k.conv");
    std::fs::write(&kernel, "CONV NORM\n1 2 1\n2 4 2\n1 2 1\n").unwrap();
    std::os::unix::fs::symlink(&img, d.join("link.fits")).unwrap();
    std::fs::hard_link(&img, d.join("hard.fits")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let inputs: [(&str, PathBuf); 6] = [
        ("image", img.clone()),
        ("image through a link", d.join("link.fits")),
        ("image through a hard link", d.join("hard.fits")),
        ("image through ..", d.join("sub/../img.fits")),
        ("mask", mask.clone()),
        ("filter", kernel.clone()),
    ];
    for (what, target) in &inputs {
        for kind in ["catalog", "check", "regions", "png"] {
            let cat = d.join("cat.csv");
            let check = format!("SEGMENTATION:{}", s(target));
            let mut args: Vec<&str> = vec![s(&img), "--mask", s(&mask), "--filter", s(&kernel)];
            match kind {
                "catalog" => args.extend(["-o", s(target)]),
                "check" => args.extend(["-o", s(&cat), "--check-image", &check]),
                "regions" => args.extend(["-o", s(&cat), "--regions", s(target)]),
                _ => {}
            }
            if kind == "png" {
                continue; // pictures go in a folder under fixed names: below
            }
            let o = skysift(&args);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{kind} over the {what}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains("never writes its inputs"),
                "{}",
                stderr(&o)
            );
        }
    }
    // The threshold and noise images, under each output kind.
    let thr = d.join("thr.fits");
    write_f32(&thr, 256, 256, &vec![100.0; 256 * 256]);
    let noise = d.join("noise.fits");
    write_f32(&noise, 256, 256, &vec![60.0; 256 * 256]);
    let cat = d.join("cat.csv");
    for (opt, side, extra) in [
        ("--threshold-image", &thr, None),
        ("--noise-image", &noise, Some("matched")),
    ] {
        for kind in ["catalog", "check", "regions"] {
            let check = format!("BACKGROUND:{}", s(side));
            let mut args: Vec<&str> = vec![s(&img), opt, s(side)];
            if let Some(m) = extra {
                args.extend(["--filter-type", m]);
            }
            match kind {
                "catalog" => args.extend(["-o", s(side)]),
                "check" => args.extend(["-o", s(&cat), "--check-image", &check]),
                _ => args.extend(["-o", s(&cat), "--regions", s(side)]),
            }
            let o = skysift(&args);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{kind} over {opt}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains("never writes its inputs"),
                "{}",
                stderr(&o)
            );
        }
    }
    assert_eq!(
        std::fs::read(&thr).unwrap().len(),
        std::fs::read(&noise).unwrap().len()
    );
    // A picture folder whose data.png is an input.
    let pics = d.join("pics");
    std::fs::create_dir(&pics).unwrap();
    std::fs::copy(&img, pics.join("data.png")).unwrap();
    let o = skysift(&[
        s(&pics.join("data.png")),
        "-o",
        s(&d.join("c.csv")),
        "--png-dir",
        s(&pics),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Several images into their own folder: each catalog would be named after its image.
    let o = skysift(&[s(&img), s(&d.join("hard.fits")), "-o", s(d)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&img).unwrap(),
        original,
        "the input was changed"
    );
    assert!(
        !files(d).iter().any(|f| f.contains("skysift-tmp")),
        "{:?}",
        files(d)
    );
}

#[test]
fn outputs_may_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let c = d.join("c.fits");
    let same = format!("SEGMENTATION:{}", s(&c));
    let via = format!("BACKGROUND:{}", s(&d.join("sub/../c.fits")));
    std::fs::create_dir(d.join("sub")).unwrap();
    for args in [
        vec![s(&img), "-o", s(&c), "--check-image", &same],
        vec![s(&img), "-o", s(&c), "--regions", s(&c)],
        vec![
            s(&img),
            "-o",
            s(&d.join("x.csv")),
            "--check-image",
            &same,
            "--check-image",
            &via,
        ],
    ] {
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("same file"), "{}", stderr(&o));
    }
    // A picture of --png-dir named as a check image too.
    let pics = d.join("pics");
    let seg = format!("SEGMENTATION:{}", s(&pics.join("rms.png")));
    std::fs::create_dir(&pics).unwrap();
    let o = skysift(&[
        s(&img),
        "-o",
        s(&d.join("y.csv")),
        "--png-dir",
        s(&pics),
        "--check-image",
        &seg,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(files(d), vec!["img.fits", "pics", "sub"]);
}

#[test]
fn special_files_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let img = image_in(dir.path());
    for backend in ["cpu", "gpu"] {
        let o = skysift(&[
            s(&img),
            "-o",
            "/dev/null",
            "--check-image",
            "SEGMENTATION:/dev/null",
            "--regions",
            "/dev/null",
            "-q",
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // A full device is an error, and no regular output of the run is put in place.
    let cat = dir.path().join("cat.csv");
    let o = skysift(&[
        s(&img),
        "-o",
        s(&cat),
        "--check-image",
        "SEGMENTATION:/dev/full",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/dev/full"), "{}", stderr(&o));
    assert!(!cat.exists());
    // /dev/stdout: the catalog arrives on standard output.
    let o = skysift(&[s(&img), "-o", "/dev/stdout", "--catalog-type", "csv", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 69, "header + 68 objects");
    // A FIFO is written, not replaced.
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let reader = {
        let f = fifo.clone();
        std::thread::spawn(move || std::fs::read(f).unwrap())
    };
    let o = skysift(&[s(&img), "-o", s(&fifo), "--catalog-type", "csv", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&reader.join().unwrap())
            .lines()
            .count(),
        69
    );
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_failed_run_changes_no_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let cat = d.join("cat.csv");
    let seg = d.join("seg.fits");
    std::fs::write(&cat, "old catalog").unwrap();
    std::fs::write(&seg, "old seg").unwrap();
    // The last check image fails while it is written (a full device): the catalog and
    // the first check image stay as they were, and no temporary is left.
    let a = format!("SEGMENTATION:{}", s(&seg));
    let o = skysift(&[
        s(&img),
        "-o",
        s(&cat),
        "--check-image",
        &a,
        "--check-image",
        "BACKGROUND:/dev/full",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&cat).unwrap(), "old catalog");
    assert_eq!(std::fs::read_to_string(&seg).unwrap(), "old seg");
    assert_eq!(files(d), vec!["cat.csv", "img.fits", "seg.fits"]);
    // Several images, the second bad: the first one's catalog is written and named.
    let bad = d.join("bad.fits");
    std::fs::write(&bad, "not a FITS file").unwrap();
    let out = d.join("out");
    let o = skysift(&[s(&img), s(&bad), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("1 of 2 images done"), "{}", stderr(&o));
    assert_eq!(files(&out), vec!["img.fits"]);
    // Folders the run created for its outputs go again when it fails.
    let cats = d.join("new/cats");
    let o = skysift(&[s(&bad), s(&img), "-o", s(&cats)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("new").exists(), "{}", stderr(&o));
    let pics = d.join("pics");
    let o = skysift(&[
        s(&img),
        "-o",
        s(&cat),
        "--png-dir",
        s(&pics),
        "--check-image",
        "BACKGROUND:/dev/full",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!pics.exists(), "{}", stderr(&o));
}

/// Sends `sig` to a run after `after` and checks: the exit code, the folder holds the
/// inputs and the earlier outputs only, unchanged.
fn interrupt(args: &[&str], dir: &Path, sig: i32, after: std::time::Duration) {
    let before = files(dir);
    let contents: Vec<Vec<u8>> = before
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_default())
        .collect();
    // The run's length was measured while other tests shared the cores: if it ends
    // before the signal, or the signal comes while its outputs are being put in place
    // (the handler lets that finish: every output replaced, which is allowed, but not
    // what this tests), put the folder back as it was and signal sooner (a run that
    // never gets the signal fails).
    let mut after = after;
    let restore = || {
        for f in files(dir) {
            if !before.contains(&f) {
                std::fs::remove_file(dir.join(&f)).unwrap();
            }
        }
        for (f, c) in before.iter().zip(&contents) {
            std::fs::write(dir.join(f), c).unwrap();
        }
    };
    loop {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            unsafe { libc::kill(child.id() as i32, sig) };
            let o = child.wait_with_output().unwrap();
            assert_eq!(
                o.status.code(),
                Some(128 + sig),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let now = files(dir);
            let unchanged = before
                .iter()
                .zip(&contents)
                .all(|(f, c)| std::fs::read(dir.join(f)).unwrap_or_default() == *c);
            if now == before && unchanged {
                break;
            }
            // The outputs were put in place before the handler ran (it waits for a
            // commit in progress): nothing partial is left (no temporary); retry sooner.
            assert!(
                now.iter().all(|f| !f.starts_with('.')),
                "temporaries left after signal {sig}: {now:?}"
            );
        }
        assert!(
            after > std::time::Duration::from_millis(20),
            "the run ended before the signal: make it longer"
        );
        restore();
        after /= 2;
    }
    assert_eq!(files(dir), before, "files changed after signal {sig}");
    for (f, c) in before.iter().zip(&contents) {
        assert_eq!(
            &std::fs::read(dir.join(f)).unwrap_or_default(),
            c,
            "{f} changed"
        );
    }
}

#[test]
fn signals_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 3000 x 3000 field of noise and sources: long enough on one thread.
    let (w, h) = (3000, 3000);
    let mut rng = 12345u64;
    let data: Vec<f32> = (0..w * h)
        .map(|i| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (rng >> 40) as f32 / (1u64 << 24) as f32;
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let src = if (x % 50.0 - 25.0).abs() < 3.0 && (y % 50.0 - 25.0).abs() < 3.0 {
                50.0
            } else {
                0.0
            };
            100.0 + 10.0 * (u - 0.5) + src
        })
        .collect();
    let img = d.join("field.fits");
    write_f32(&img, w, h, &data);
    let cat = d.join("cat.fits");
    std::fs::write(&cat, "earlier catalog").unwrap();
    let seg = format!("SEGMENTATION:{}", s(&d.join("seg.fits")));
    let back = format!("-BACKGROUND:{}", s(&d.join("sub.fits")));
    let whole = [
        s(&img),
        "-o",
        s(&cat),
        "--check-image",
        &seg,
        "--check-image",
        &back,
        "--threads",
        "1",
        "--backend",
        "cpu",
        "-q",
    ];
    let streamed = [
        s(&img),
        "-o",
        s(&cat),
        "--check-image",
        &seg,
        "--stream-rows",
        "8",
        "--threads",
        "1",
        "--backend",
        "cpu",
        "-q",
    ];
    for args in [&whole[..], &streamed[..]] {
        // How long an uninterrupted run takes here (into another folder, so that the
        // earlier outputs stay as they are; the shortest of three, as other tests
        // share the cores); the signals come early and late in a run.
        let other = tempfile::tempdir().unwrap();
        let o = other.path().join("cat.fits");
        let mut plain: Vec<&str> = args.to_vec();
        plain[2] = s(&o);
        plain.retain(|a| !a.contains(':'));
        plain.retain(|a| *a != "--check-image");
        let full = (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                assert!(skysift(&plain).status.success());
                t.elapsed()
            })
            .min()
            .expect("three runs");
        for frac in [0.15, 0.6] {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                interrupt(args, d, sig, full.mul_f64(frac));
            }
        }
    }
}

#[test]
fn stale_temporaries_of_killed_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    // Left by a process that no longer runs (PIDs above 2^22 never exist on Linux).
    std::fs::write(d.join(".cat.csv.4194305.0.skysift-tmp"), "half").unwrap();
    let o = skysift(&[s(&img), "-o", s(&d.join("cat.csv"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed 1 temporary file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(files(d), vec!["cat.csv", "img.fits"]);
}

#[test]
fn names_with_cfitsio_syntax_are_plain_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = d.join("br[1].fits");
    std::fs::copy(data_str("sep_image.fits"), &img).unwrap();
    let seg = format!("SEGMENTATION:{}", s(&d.join("seg[1].fits")));
    let back = format!("BACKGROUND:{}", s(&d.join("!b+.fits")));
    let o = skysift(&[
        s(&img),
        "-o",
        s(&d.join("c[2].csv")),
        "--check-image",
        &seg,
        "--check-image",
        &back,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        files(d),
        vec!["!b+.fits", "br[1].fits", "c[2].csv", "seg[1].fits"]
    );
    // The written check image reads back, under its own name.
    let m = skysift::io::read_image(s(&d.join("seg[1].fits"))).unwrap();
    assert_eq!((m.width(), m.height()), (256, 256));
    // An HDU selection still works when no file has the whole name.
    let sel = format!("{}[0]", s(&d.join("seg[1].fits")));
    assert!(skysift::io::read_image(&sel).is_ok());
}

#[test]
fn blank_pixels_are_bad_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h) = (128usize, 128usize);
    let mut rng = 7u64;
    let mut noise = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 40) % 21) as i64 - 10
    };
    for (bitpix, base, blank, bzero) in [
        (8, 100i64, 255i64, None),
        (16, 1000, 32767, None),
        (16, 1000, -32768, Some(32768.0)),
        (32, 1000, 2147483647, None),
    ] {
        let mut raw: Vec<i64> = (0..w * h).map(|_| base + noise()).collect();
        for y in 40..60 {
            for x in 40..60 {
                raw[y * w + x] = blank;
            }
        }
        let p = d.join(format!("blank{bitpix}_{}.fits", bzero.is_some()));
        write_int(&p, w, h, bitpix, &raw, bzero, Some(blank));
        let img = skysift::io::read_image(s(&p)).unwrap();
        let nan = img.data().iter().filter(|v| v.is_nan()).count();
        assert_eq!(nan, 400, "BITPIX {bitpix}: BLANK pixels are NaN");
        // Streamed reads agree.
        let mut rows = skysift::io::fits::FitsRows::open(s(&p)).unwrap();
        let mut buf = Vec::new();
        skysift::stream::RowSource::read_rows(&mut rows, 40, 20, &mut buf).unwrap();
        assert_eq!(buf.iter().filter(|v| v.is_nan()).count(), 400);
        for extra in [&[][..], &["--stream-rows", "16"][..]] {
            let cat = d.join("c.csv");
            let mut args = vec![s(&p), "-o", s(&cat), "--backend", "cpu"];
            args.extend(extra);
            let o = skysift(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(
                stderr(&o).contains(" 0 objects"),
                "BITPIX {bitpix} {extra:?}: {}",
                stderr(&o)
            );
        }
    }
    // An all-BLANK image is an error, not a background of -32768.
    let p = d.join("allblank.fits");
    write_int(&p, 64, 64, 16, &vec![-32768; 64 * 64], None, Some(-32768));
    let o = skysift(&[s(&p), "-o", s(&d.join("a.csv"))]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn flat_images_give_no_objects_at_any_level() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h) = (300usize, 200usize);
    let mut levels: Vec<f32> = (0..=38).map(|e| 10f32.powi(e)).collect();
    levels.extend([5.6234132e7, 1.778e12, 3e38, f32::MAX, -1e29, 1e-30]);
    let cat = d.join("c.csv");
    for v in levels {
        let p = d.join("flat.fits");
        write_f32(&p, w, h, &vec![v; w * h]);
        for backend in ["cpu", "gpu"] {
            for extra in [
                &[][..],
                &["--thresh-rms", "map"][..],
                &["--stream-rows", "50"][..],
            ] {
                let mut args = vec![s(&p), "-o", s(&cat), "--backend", backend];
                args.extend(extra);
                let o = skysift(&args);
                assert!(o.status.success(), "{v:e}: {:?} {}", o.status, stderr(&o));
                assert!(
                    stderr(&o).contains(" 0 objects"),
                    "{v:e} {backend} {extra:?}: {}",
                    stderr(&o)
                );
            }
        }
    }
    // Through BZERO: int16 and int32 constants.
    for (bitpix, raw, bzero) in [
        (16, 1000i64, 32768.0),
        (32, 5, 2147483648.0),
        (32, 2_000_000_000, 0.0),
    ] {
        let p = d.join("flat_int.fits");
        write_int(&p, w, h, bitpix, &vec![raw; w * h], Some(bzero), None);
        let o = skysift(&[s(&p), "-o", s(&d.join("c.csv")), "--backend", "cpu"]);
        assert!(
            stderr(&o).contains(" 0 objects"),
            "{bitpix} {raw}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn large_kernels_give_the_same_catalog_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = data_str("sim_crop.fits");
    for n in [255usize, 256, 257, 301] {
        let k = d.join(format!("k{n}.txt"));
        let c = (n / 2) as f64;
        let sig = n as f64 / 6.0;
        let mut text = String::new();
        for y in 0..n {
            let row: Vec<String> = (0..n)
                .map(|x| {
                    let r2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2);
                    format!("{:.6e}", (-r2 / (2.0 * sig * sig)).exp())
                })
                .collect();
            text.push_str(&row.join(" "));
            text.push('\n');
        }
        std::fs::write(&k, text).unwrap();
        let mut outs = Vec::new();
        for backend in ["cpu", "gpu"] {
            let cat = d.join(format!("{backend}{n}.fits"));
            let seg = d.join(format!("{backend}{n}.seg.fits"));
            let segs = format!("SEGMENTATION:{}", s(&seg));
            let o = skysift(&[
                &img,
                "-o",
                s(&cat),
                "--filter",
                s(&k),
                "--backend",
                backend,
                "--check-image",
                &segs,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            if backend == "gpu" && n > 255 {
                assert!(
                    stderr(&o).contains("filtering on the CPU"),
                    "{}",
                    stderr(&o)
                );
            }
            outs.push((std::fs::read(&cat).unwrap(), std::fs::read(&seg).unwrap()));
        }
        assert!(
            outs[0] == outs[1],
            "{n}x{n} kernel: CPU and GPU outputs differ"
        );
    }
}

#[test]
fn values_outside_their_meaning_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let out = d.join("c.csv");
    let cases: &[(&[&str], &str)] = &[
        (&["--mask-thresh", "nan"], "--mask-thresh"),
        (&["--gain", "1e-320"], "--gain"),
        (&["--gain", "inf"], "--gain"),
        (&["--back-value=-1e308"], "--back-value"),
        (&["--back-value", "1e30"], "--back-value"),
        (&["--detect-thresh", "1e31"], "--detect-thresh"),
        (
            &["--thresh-type", "absolute", "--detect-thresh=-1e39"],
            "--detect-thresh",
        ),
        (&["--mag-zeropoint", "1e308"], "--mag-zeropoint"),
        (&["--filter-fwhm", "1e-320"], "--filter-fwhm"),
        (&["--memory-limit", "0"], "--memory-limit"),
        (&["--stream-rows", "0"], "--stream-rows"),
        (&["--threads", "18446744073709551615"], "--threads"),
        (&["--threads", "0"], "--threads"),
        (&["--params", "NUMBER,NUMBER"], "--params"),
        (&["--deblend-nthresh", "0"], "--deblend-nthresh"),
    ];
    for (extra, name) in cases {
        let mut args = vec![s(&img), "-o", s(&out)];
        args.extend(extra.iter());
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("skysift: error:") && e.contains(name),
            "{extra:?}: {e}"
        );
        assert_eq!(e.matches("error").count(), 1, "said once: {e}");
    }
    assert!(!out.exists(), "a refused run wrote its catalog");
    // DEBLEND_NTHRESH 1: no sub-thresholds, no deblending, no panic, on both backends.
    for backend in ["cpu", "gpu"] {
        let o = skysift(&[
            s(&img),
            "-o",
            s(&out),
            "--deblend-nthresh",
            "1",
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("objects"), "{}", stderr(&o));
    }
    // Clap's own errors carry the prefix and exit 2.
    let o = skysift(&[s(&img), "--no-such-option"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("skysift: error:"), "{}", stderr(&o));
}

#[test]
fn side_images_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let out = d.join("c.csv");
    let small = d.join("small.fits");
    write_f32(&small, 100, 100, &vec![1.0; 100 * 100]);
    let mut zero = vec![5.0f32; 256 * 256];
    zero[300] = 0.0;
    let zero_p = d.join("zero.fits");
    write_f32(&zero_p, 256, 256, &zero);
    let mut neg = vec![5.0f32; 256 * 256];
    neg[1000] = -1.0;
    let neg_p = d.join("neg.fits");
    write_f32(&neg_p, 256, 256, &neg);
    let m = ["--filter-type", "matched"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--noise-image", s(&small), m[0], m[1]], "same shape"),
        (
            vec![
                "--noise-image",
                s(&small),
                m[0],
                m[1],
                "--stream-rows",
                "16",
            ],
            "same shape",
        ),
        (vec!["--noise-image", s(&zero_p), m[0], m[1]], "(45, 2)"),
        (
            vec![
                "--noise-image",
                s(&zero_p),
                m[0],
                m[1],
                "--stream-rows",
                "16",
            ],
            "(45, 2)",
        ),
        (vec!["--noise-image", s(&neg_p)], "--filter-type matched"),
        (vec!["--threshold-image", s(&neg_p)], "(233, 4)"),
        (
            vec!["--threshold-image", s(&neg_p), "--stream-rows", "16"],
            "(233, 4)",
        ),
        (vec!["--threshold-image", s(&small)], "same shape"),
    ];
    for (extra, want) in cases {
        let mut args = vec![s(&img), "-o", s(&out)];
        args.extend(extra.iter());
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
    assert!(!out.exists());
}

#[test]
fn lying_headers_are_refused_for_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    // A 5,760-byte file whose header claims 100000 x 100000 float pixels.
    let mut head = String::new();
    for card in [
        "SIMPLE  =                    T",
        "BITPIX  =                  -32",
        "NAXIS   =                    2",
        "NAXIS1  =               100000",
        "NAXIS2  =               100000",
        "END",
    ] {
        head.push_str(&format!("{card:<80}"));
    }
    let mut bytes = format!("{head:<2880}").into_bytes();
    bytes.extend(vec![0u8; 2880]);
    let lie = d.join("lie.fits");
    std::fs::write(&lie, &bytes).unwrap();
    let out = d.join("c.csv");
    let pics = d.join("pics");
    let cases: Vec<Vec<&str>> = vec![
        vec![s(&lie), "-o", s(&out)],
        vec![s(&lie), "-o", s(&out), "--stream-rows", "16"],
        vec![s(&img), "-o", s(&out), "--mask", s(&lie)],
        vec![s(&img), "-o", s(&out), "--threshold-image", s(&lie)],
        vec![
            s(&img),
            "-o",
            s(&out),
            "--noise-image",
            s(&lie),
            "--filter-type",
            "matched",
        ],
        vec![s(&lie), "-o", s(&out), "--png-dir", s(&pics)],
    ];
    for args in cases {
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("lie.fits"), "{args:?}: {}", stderr(&o));
    }
    assert!(!out.exists());
}

#[test]
fn closed_standard_streams_are_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_in(dir.path());
    // stderr on a full device: the run itself succeeds, no panic (exit 101).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .args([s(&img), "-o", s(&dir.path().join("c.csv"))])
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(0));
    // stdout closed by its reader: --gpu-info exits quietly.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .arg("--gpu-info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

/// Four Gaussian sources on noise (uniform, ±2), all times `scale` (clamped to the f32
/// range).
fn scaled_field(scale: f64) -> Vec<f32> {
    let (w, h) = (128usize, 128usize);
    let mut rng = 99u64;
    (0..w * h)
        .map(|i| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (rng >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            let mut v = 4.0 * u;
            for (cx, cy, a) in [
                (30.0, 30.0, 50.0),
                (80.0, 60.0, 20.0),
                (50.0, 90.0, 200.0),
                (100.0, 100.0, 8.0),
            ] {
                v += a * (-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / 8.0).exp();
            }
            (v * scale).clamp(-3.4e38, 3.4e38) as f32
        })
        .collect()
}

#[test]
fn extreme_values_never_give_nan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cat = d.join("c.csv");
    let p = d.join("x.fits");
    // 1e36: the RMS squared overflows f32 (errors once inf); 1.7e38: the noise reaches
    // the f32 limit (below -1e30 pixels are bad, as in SExtractor), the background
    // spline overshoots, background-subtracted pixels overflow f32, so fluxes are inf
    // and shapes cannot be computed.
    for (scale, gain) in [
        (1.0, "0"),
        (1e36, "0"),
        (1e36, "1e-30"),
        (1e30, "1e30"),
        (1.7e38, "0"),
    ] {
        write_f32(&p, 128, 128, &scaled_field(scale));
        for extra in [
            &["--backend", "cpu"][..],
            &["--backend", "gpu"][..],
            &["--stream-rows", "20"][..],
            &["--thresh-rms", "map"][..],
            &["--filter", "none"][..],
        ] {
            let mut args = vec![s(&p), "-o", s(&cat), "--gain", gain, "-q"];
            args.extend(extra);
            let o = skysift(&args);
            assert!(o.status.success(), "{scale:e} {extra:?}: {}", stderr(&o));
            let text = std::fs::read_to_string(&cat).unwrap();
            assert!(
                !text.to_lowercase().contains("nan"),
                "{scale:e} {extra:?}: NaN in\n{text}"
            );
            let t = crate::common::Table::read_csv(&cat);
            assert!(!t.is_empty(), "{scale:e} {extra:?}: no objects");
            for r in 0..t.len() {
                let flags = t.get(r, "FLAGS") as u32;
                for c in [
                    "X_IMAGE",
                    "Y_IMAGE",
                    "A_IMAGE",
                    "B_IMAGE",
                    "ERRX2_IMAGE",
                    "FLUXERR_ISO",
                    "MAGERR_ISO",
                    "MAG_ISO",
                ] {
                    assert!(
                        t.get(r, c).is_finite(),
                        "{scale:e} {extra:?} row {r}: {c} = {}",
                        t.get(r, c)
                    );
                }
                let (flux, mag) = (t.get(r, "FLUX_ISO"), t.get(r, "MAG_ISO"));
                if flux.is_finite() && flux > 0.0 {
                    assert!(
                        mag < 99.0 && (mag - (-2.5 * flux.log10())).abs() < 1e-3,
                        "{scale:e}: mag {mag} for flux {flux}"
                    );
                } else {
                    assert_eq!(mag, 99.0);
                    assert_eq!(t.get(r, "MAGERR_ISO"), 99.0);
                }
                // Flagged exactly where a value could not be computed.
                assert_eq!(
                    flags & 32 != 0,
                    !flux.is_finite(),
                    "{scale:e} {extra:?} row {r}: flags {flags}, flux {flux}"
                );
                if scale < 1e37 {
                    assert!(t.get(r, "FLUXERR_ISO") > 0.0);
                }
            }
        }
    }
}

/// A little-endian grey TIFF made by hand (uncompressed, one strip): any bit depth and
/// any declared size, whatever the data that follows.
fn raw_tiff(w: u32, h: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend(8u32.to_le_bytes());
    let tags: [(u16, u16, u32); 8] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, bits as u32),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 8 * 12 + 4),
        (278, 4, h),
        (279, 4, data.len() as u32),
    ];
    b.extend((tags.len() as u16).to_le_bytes());
    for (tag, ty, v) in tags {
        b.extend(tag.to_le_bytes());
        b.extend(ty.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        if ty == 3 {
            b.extend((v as u16).to_le_bytes());
            b.extend([0, 0]);
        } else {
            b.extend(v.to_le_bytes());
        }
    }
    b.extend(0u32.to_le_bytes());
    b.extend(data);
    b
}

#[test]
fn tiffs_are_read_or_refused_clearly() {
    use tiff::encoder::{colortype, compression::Deflate, TiffEncoder};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cat = d.join("c.csv");
    // 1-bit: named as such, with what to do.
    let p = d.join("bilevel.tif");
    std::fs::write(&p, raw_tiff(64, 64, 1, &[0xAA; 64 * 8])).unwrap();
    let o = skysift(&[s(&p), "-o", s(&cat)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("1-bit grey TIFF") && stderr(&o).contains("convert"),
        "{}",
        stderr(&o)
    );
    // A header that claims 200000 x 200000 in a few bytes: refused before allocating,
    // for the image and for the mask alike.
    let p = d.join("liar.tif");
    std::fs::write(&p, raw_tiff(200_000, 200_000, 8, &[0; 64])).unwrap();
    let img = image_in(d);
    for args in [
        vec![s(&p), "-o", s(&cat)],
        vec![s(&img), "--mask", s(&p), "-o", s(&cat)],
    ] {
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("liar.tif") && stderr(&o).contains("GiB"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!cat.exists());
    // Beyond the tiff crate's default decoding limit (256 MiB of samples): read, since
    // skysift has no size ceiling. 6000 x 6000 float64, compressed.
    let p = d.join("big.tif");
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut enc = TiffEncoder::new(std::io::BufWriter::new(f)).unwrap();
        let v: Vec<f64> = (0..6000 * 6000)
            .map(|i| ((i % 6000) / 100) as f64)
            .collect();
        enc.write_image_with_compression::<colortype::Gray64Float, _>(
            6000,
            6000,
            Deflate::default(),
            &v,
        )
        .unwrap();
    }
    let m = skysift::io::read_image(s(&p)).unwrap();
    assert_eq!((m.width(), m.height()), (6000, 6000));
    assert_eq!(m.data()[6000 * 3000 + 4321], 43.0);
    drop(m);
    // Several pages: the first is read, with a warning.
    let p = d.join("pages.tif");
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut enc = TiffEncoder::new(std::io::BufWriter::new(f)).unwrap();
        let sep = skysift::io::read_image(&data_str("sep_image.fits")).unwrap();
        for _ in 0..3 {
            enc.write_image::<colortype::Gray32Float>(
                sep.width() as u32,
                sep.height() as u32,
                sep.data(),
            )
            .unwrap();
        }
    }
    let o = skysift(&[s(&p), "-o", s(&cat)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has 3 pages; skysift reads the first only"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("68 objects"), "{}", stderr(&o));
    // Streaming needs FITS: said so, for the image and for the threshold image.
    let fits = image_in(d);
    for args in [
        vec![s(&p), "-o", s(&cat), "--stream-rows", "64"],
        vec![
            s(&fits),
            "--threshold-image",
            s(&p),
            "-o",
            s(&cat),
            "--memory-limit",
            "100",
        ],
        // A TIFF mask too (it was opened as FITS and failed in cfitsio).
        vec![
            s(&fits),
            "--mask",
            s(&p),
            "-o",
            s(&cat),
            "--stream-rows",
            "64",
        ],
    ] {
        let o = skysift(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("streaming (MEMORY_LIMIT or STREAM_ROWS) reads FITS files")
                && stderr(&o).contains("is a TIFF")
                && stderr(&o).contains("convert it to FITS"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn scattered_nan_is_said_and_the_default_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sep = skysift::io::read_image(&data_str("sep_image.fits")).unwrap();
    let (w, h) = (sep.width(), sep.height());
    let cat = d.join("c.csv");
    let with = |name: &str, nan: &dyn Fn(usize, usize) -> bool| {
        let data: Vec<f32> = (0..w * h)
            .map(|i| {
                if nan(i % w, i / w) {
                    f32::NAN
                } else {
                    sep.data()[i]
                }
            })
            .collect();
        let p = d.join(name);
        write_f32(&p, w, h, &data);
        p
    };
    let checker = with("checker.fits", &|x, y| (x + y) % 2 == 0);
    let border = with("border.fits", &|x, _| x < 40);
    let clean = with("clean.fits", &|_, _| false);
    let notice = "of the filtered pixels of";
    for extra in [
        &[][..],
        &["--stream-rows", "40"][..],
        &["--backend", "gpu"][..],
    ] {
        // The checkerboard: every filtered pixel is invalid, no detection (SExtractor's
        // behaviour, kept), and the notice says why and what to do.
        let mut a = vec![s(&checker), "-o", s(&cat)];
        a.extend(extra);
        let o = skysift(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("100% {notice}")) && e.contains("50.0% of its pixels"),
            "{extra:?}: {e}"
        );
        assert!(
            e.contains("--filter none") && e.contains(" 0 objects"),
            "{extra:?}: {e}"
        );
        // Unfiltered, the same image has detections and no notice.
        let mut a = vec![s(&checker), "-o", s(&cat), "--filter", "none"];
        a.extend(extra);
        let e = stderr(&skysift(&a));
        assert!(!e.contains(notice), "{e}");
        assert!(!e.contains(" 0 objects"), "{e}");
        // A NaN border (a mosaic's edge) is not spread much: no notice; nor for a clean image.
        for p in [&border, &clean] {
            let mut a = vec![s(p), "-o", s(&cat)];
            a.extend(extra);
            let o = skysift(&a);
            assert!(
                o.status.success() && !stderr(&o).contains(notice),
                "{}",
                stderr(&o)
            );
        }
    }
    // The counts themselves: a 3x3 footprint around one invalid pixel in a 5x5 image.
    let mut px = vec![1.0f32; 25];
    px[12] = f32::NAN;
    px[0] = -1e31;
    assert_eq!(
        skysift::convolve::invalid_spread(&px, 5, 0..5, 3, 3),
        (2, 9 + 3)
    );
    assert_eq!(
        skysift::convolve::invalid_spread(&px, 5, 1..2, 3, 3),
        (0, 4)
    );
    assert_eq!(
        skysift::convolve::invalid_spread(&[1.0; 25], 5, 0..5, 3, 3),
        (0, 0)
    );
}

/// A FITS file made by hand: a primary header of `cards` and `data` (padded).
fn raw_fits(cards: &[String], data: &[u8]) -> Vec<u8> {
    let mut h: String = cards.iter().map(|c| format!("{c:<80}")).collect();
    h.push_str(&format!("{:<80}", "END"));
    while h.len() % 2880 != 0 {
        h.push(' ');
    }
    let mut b = h.into_bytes();
    b.extend(data);
    b.resize(b.len().div_ceil(2880) * 2880, 0);
    b
}

#[test]
fn messages_name_the_file_or_option_the_problem_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image_in(d);
    let cat = d.join("c.csv");
    let card = |k: &str, v: &str| format!("{k:<8}= {v:>20}");
    let head = |bitpix: &str, w: &str, h: &str| {
        vec![
            card("SIMPLE", "T"),
            card("BITPIX", bitpix),
            card("NAXIS", "2"),
            card("NAXIS1", w),
            card("NAXIS2", h),
        ]
    };
    let run = |args: &[&str]| {
        let o = skysift(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert_eq!(
            e.lines()
                .filter(|l| l.starts_with("skysift: error:"))
                .count(),
            1,
            "{e}"
        );
        e
    };
    // A 2^32-wide header: the file and its real size, not --memory-limit.
    let wide = d.join("wide.fits");
    std::fs::write(&wide, raw_fits(&head("-32", "4294967296", "1"), &[0; 64])).unwrap();
    for extra in [&[][..], &["--memory-limit", "100"][..]] {
        let mut a = vec![s(&wide), "-o", s(&cat)];
        a.extend(extra);
        let e = run(&a);
        assert!(
            e.contains("wide.fits") && e.contains("4294967296x1") && e.contains("truncated"),
            "{e}"
        );
        assert!(!e.contains("--memory-limit"), "{e}");
    }
    // float64 values beyond f32: the file, the pixel, the value, not "all NaN".
    let big = d.join("big.fits");
    let px: Vec<u8> = (0..64).flat_map(|_| 1e300f64.to_be_bytes()).collect();
    std::fs::write(&big, raw_fits(&head("-64", "8", "8"), &px)).unwrap();
    let e = run(&[s(&big), "-o", s(&cat)]);
    assert!(
        e.contains("big.fits") && e.contains("pixel (1, 1) is 1e300") && e.contains("rescale"),
        "{e}"
    );
    // A float image whose BSCALE overflows f32, and BSCALE that is not a number.
    let px: Vec<u8> = (0..64).flat_map(|_| 1e30f32.to_be_bytes()).collect();
    let mut cards = head("-32", "8", "8");
    cards.push(card("BSCALE", "1E20"));
    let scaled = d.join("scaled.fits");
    std::fs::write(&scaled, raw_fits(&cards, &px)).unwrap();
    let e = run(&[s(&scaled), "-o", s(&cat)]);
    assert!(
        e.contains("scaled.fits") && e.contains("beyond the range of 32-bit floats"),
        "{e}"
    );
    let mut cards = head("16", "8", "8");
    cards.push(card("BSCALE", "F"));
    let logical = d.join("logical.fits");
    std::fs::write(&logical, raw_fits(&cards, &[0; 128])).unwrap();
    let e = run(&[s(&logical), "-o", s(&cat)]);
    assert!(
        e.contains("logical.fits") && e.contains("BSCALE = F is not a number"),
        "{e}"
    );
    // Options: the option itself, the range, a readable value.
    let e = run(&[s(&img), "-o", s(&cat), "--memory-limit", "0"]);
    assert!(
        e.contains("--memory-limit") && e.contains("positive") && !e.contains("0.0 MiB"),
        "{e}"
    );
    let e = run(&[s(&img), "-o", s(&cat), "--filter-fwhm", "1e-320"]);
    assert!(
        e.contains("--filter-fwhm (FILTER_FWHM): 1e-320") && e.contains("between 0.01 and 64"),
        "{e}"
    );
    // Kernel files: the line, counted from the top of the file.
    let k = d.join("k.conv");
    std::fs::write(&k, "CONV NORM\n# comment\n1 2 1\n2 x 2\n").unwrap();
    let e = run(&[s(&img), "-o", s(&cat), "--filter", s(&k)]);
    assert!(
        e.contains("k.conv") && e.contains("kernel line 4: 'x' is not a number"),
        "{e}"
    );
    std::fs::write(&k, "1 2 1\n2 4\n1 2 1 0\n").unwrap();
    let e = run(&[s(&img), "-o", s(&cat), "--filter", s(&k)]);
    assert!(
        e.contains("kernel line 2 has 2 values but line 1 has 3"),
        "{e}"
    );
    assert!(!cat.exists());
}
