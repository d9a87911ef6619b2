//! Helpers shared by the test modules.

use std::collections::HashMap;
use std::path::PathBuf;

/// A file of tests/data.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn data_str(name: &str) -> String {
    data(name).to_string_lossy().into_owned()
}

/// A catalog read from CSV (SExtractor names in the header).
pub struct Table {
    pub cols: HashMap<String, usize>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    pub fn read_csv(path: &std::path::Path) -> Table {
        let mut text = String::new();
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.extension().is_some_and(|e| e == "gz") {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
        } else {
            std::io::Read::read_to_string(&mut std::io::BufReader::new(file), &mut text)
        }
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let header = lines.next().expect("header row");
        let cols = header
            .split(',')
            .enumerate()
            .map(|(i, n)| (n.trim().to_string(), i))
            .collect();
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split(',')
                    .map(|v| v.trim().parse::<f64>().expect("number"))
                    .collect()
            })
            .collect();
        Table { cols, rows }
    }
    pub fn get(&self, row: usize, col: &str) -> f64 {
        let c = *self
            .cols
            .get(col)
            .unwrap_or_else(|| panic!("no column {col}"));
        self.rows[row][c]
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Matches reference rows to our objects one to one by nearest position (1-based
/// X_IMAGE/Y_IMAGE in the table, 0-based x/y in ours) within `radius` pixels.
/// Returns (ref row, our index) pairs and the unmatched reference rows.
pub fn match_positions(
    reference: &Table,
    ours: &[(f64, f64)],
    radius: f64,
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut used = vec![false; ours.len()];
    let mut pairs = Vec::new();
    let mut missing = Vec::new();
    for r in 0..reference.len() {
        let (x, y) = (
            reference.get(r, "X_IMAGE") - 1.0,
            reference.get(r, "Y_IMAGE") - 1.0,
        );
        let mut best = None;
        let mut bd = radius;
        for (i, &(ox, oy)) in ours.iter().enumerate() {
            let d = ((ox - x).powi(2) + (oy - y).powi(2)).sqrt();
            if !used[i] && d <= bd {
                bd = d;
                best = Some(i);
            }
        }
        match best {
            Some(i) => {
                used[i] = true;
                pairs.push((r, i));
            }
            None => missing.push(r),
        }
    }
    (pairs, missing)
}

/// Relative difference, safe at zero.
pub fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(1e-300)
    }
}

impl Table {
    /// Reads x, y, peak, flux from a truth table whose text columns are skipped.
    pub fn read_csv_lossy(path: &std::path::Path) -> Vec<(f64, f64, f64, f64)> {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let idx = |n: &str| header.iter().position(|h| *h == n).unwrap();
        let (ix, iy, ip, iflux) = (idx("x"), idx("y"), idx("peak"), idx("flux"));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let num = |i: usize| f[i].parse::<f64>().unwrap();
                (num(ix), num(iy), num(ip), num(iflux))
            })
            .collect()
    }
}

/// Runs `f` in a rayon pool of `n` threads.
pub fn with_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

/// Extraction inputs with only a mask.
pub fn masked(mask: &skysift::Mask) -> skysift::Inputs<'_> {
    skysift::Inputs {
        mask: Some(mask),
        ..Default::default()
    }
}

/// Extraction inputs with only a per-pixel threshold image.
pub fn thresholded(t: &skysift::Image) -> skysift::Inputs<'_> {
    skysift::Inputs {
        threshold_image: Some(t),
        ..Default::default()
    }
}

/// skysift run in the folder `dir`.
pub fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_skysift"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("skysift runs")
}

/// A temporary working folder holding a copy of tests/data/config (SExtractor's
/// oracle configuration) and the named files of tests/data.
pub fn config_folder(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(data("config")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    for f in files {
        std::fs::copy(data(f), dir.path().join(f)).unwrap();
    }
    dir
}
