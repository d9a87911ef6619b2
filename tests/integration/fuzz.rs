//! A bounded mutation fuzzer for the parsers skysift owns or guards: the kernel file
//! parser (`.conv` with CONV NORM/NONORM, and numpy.loadtxt-style matrices) and the
//! FITS image reader's header checks (BITPIX, NAXISn, BSCALE/BZERO, BLANK, declared
//! against actual size, before any allocation).
//!
//! Each target starts from its corpus in tests/fuzz/ and mutates it (bytes flipped,
//! inserted, deleted; tokens and header values replaced by hostile ones) for a time
//! budget: `SKYSIFT_FUZZ_SECONDS` (default 3 per target here), from the seed
//! `SKYSIFT_FUZZ_SEED` (default fixed, so that a CI run is reproducible).
//! `scripts/fuzz.sh SECONDS` runs longer with a random seed. Properties: no panic, and
//! what is accepted is consistent (shape, finite values, normalisation). An input that
//! breaks one is written to target/fuzz-failures/ and named in the failure; once fixed,
//! add it to the corpus.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn budget() -> Duration {
    let s: f64 = std::env::var("SKYSIFT_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

fn seed() -> u64 {
    std::env::var("SKYSIFT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_5EED)
        | 1
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let v: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(v.len() >= 3, "the {kind} corpus is missing");
    v
}

/// Keeps a failing input and fails the test with its path and the seed.
fn failure(target: &str, input: &[u8], seed: u64, why: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{target}-{seed:x}-{}", input.len()));
    std::fs::write(&p, input).unwrap();
    panic!(
        "{target}: {why} (input kept in {}, seed {seed})",
        p.display()
    );
}

/// One random mutation of `b`: bytes flipped, inserted, deleted, or a token spliced in.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>, tokens: &[&str]) {
    match rng.below(6) {
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(b.len() + 1);
            b.insert(i, rng.next() as u8);
        }
        2 if !b.is_empty() => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16.min(b.len() - i));
            b.drain(i..i + n);
        }
        3 => {
            // Replace the run of bytes at a random place with a hostile token.
            let t = rng.pick(tokens).as_bytes();
            let i = rng.below(b.len() + 1);
            let end = (i + rng.below(8)).min(b.len());
            b.splice(i..end, t.iter().copied());
        }
        4 if b.len() > 2 => {
            // Duplicate a slice (long rows, repeated headers).
            let i = rng.below(b.len());
            let n = 1 + rng.below((b.len() - i).min(64));
            let s: Vec<u8> = b[i..i + n].to_vec();
            let at = rng.below(b.len() + 1);
            b.splice(at..at, s);
        }
        _ => {
            let n = rng.below(b.len() + 1);
            b.truncate(n);
        }
    }
}

const KERNEL_TOKENS: &[&str] = &[
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1e309",
    "1e-320",
    "0",
    "-0",
    "0.0",
    ",",
    ",,",
    " ",
    "\n",
    "\r\n",
    "\t",
    "#",
    "CONV",
    "CONV NORM\n",
    "CONV NONORM\n",
    "e",
    "-",
    "+",
    ".",
    "1.5.2",
    "0x10",
    "\u{feff}",
    "\u{00e9}",
    "99999999999999999999",
    "1 2 3\n",
    "\n\n\n",
];

#[test]
fn kernel_parser_survives_mutation() {
    let corpus = corpus("kernel");
    let seed = seed();
    let mut rng = Rng(seed);
    let (start, limit) = (Instant::now(), budget());
    let mut runs = 0u64;
    let mut accepted = 0u64;
    while start.elapsed() < limit || runs < 200 {
        let mut b = rng.pick(&corpus).clone();
        for _ in 0..1 + rng.below(6) {
            mutate(&mut rng, &mut b, KERNEL_TOKENS);
        }
        let text = String::from_utf8_lossy(&b).into_owned();
        let r = catch_unwind(AssertUnwindSafe(|| skysift::kernel::Kernel::parse(&text)));
        match r {
            Err(_) => failure("kernel", &b, seed, "the parser panicked"),
            Ok(Err(msg)) => {
                if msg.is_empty() || msg.contains("panicked") {
                    failure("kernel", &b, seed, "an empty error message");
                }
            }
            Ok(Ok(k)) => {
                accepted += 1;
                let (w, h) = (k.width(), k.height());
                if w == 0 || h == 0 || w * h != k.data().len() {
                    failure(
                        "kernel",
                        &b,
                        seed,
                        &format!("{w}x{h} kernel with {} values", k.data().len()),
                    );
                }
                if k.data().iter().any(|v| !v.is_finite()) {
                    failure("kernel", &b, seed, "a non-finite coefficient");
                }
                let norm: f64 = k.data().iter().map(|&v| v.abs() as f64).sum();
                let nonorm = text
                    .lines()
                    .find(|l| !l.split('#').next().unwrap().trim().is_empty())
                    .is_some_and(|l| l.trim().starts_with("CONV") && l.contains("NONORM"));
                if !nonorm && (norm - 1.0).abs() > 1e-4 {
                    failure(
                        "kernel",
                        &b,
                        seed,
                        &format!("normalised kernel sums to {norm}"),
                    );
                }
            }
        }
        runs += 1;
    }
    // The mutations must reach both sides of the parser.
    assert!(
        accepted > runs / 20 && accepted < runs,
        "{accepted} of {runs} accepted"
    );
    // Round trip: a written random matrix reads back as itself.
    for _ in 0..200 {
        let (w, h) = (1 + rng.below(9), 1 + rng.below(9));
        let m: Vec<f64> = (0..w * h)
            .map(|_| (rng.below(2001) as f64 - 1000.0) / 64.0)
            .collect();
        if m.iter().all(|&v| v == 0.0) {
            continue;
        }
        let mut text = String::from("CONV NONORM\n");
        for row in m.chunks(w) {
            let r: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            text.push_str(&r.join(if rng.below(2) == 0 { " " } else { "," }));
            text.push('\n');
        }
        let k = skysift::kernel::Kernel::parse(&text).unwrap();
        assert_eq!((k.width(), k.height()), (w, h), "{text}");
        for (a, b) in k.data().iter().zip(&m) {
            assert_eq!(*a, *b as f32, "{text}");
        }
    }
}

const FITS_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "8",
    "16",
    "-16",
    "32",
    "-32",
    "64",
    "-64",
    "99999999999",
    "2147483648",
    "4294967297",
    "18446744073709551616",
    "-2147483648",
    "1E308",
    "-1E308",
    "1E-320",
    "NAN",
    "T",
    "F",
    "'abc'",
    "1.5",
    "100000",
    "65536",
];
const FITS_KEYS: &[&str] = &[
    "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "BSCALE", "BZERO", "BLANK", "SIMPLE", "END",
];

/// Sets header card `key` of a FITS file to `value` (or adds it before END).
fn set_card(b: &mut Vec<u8>, key: &str, value: &str) {
    let card = format!("{key:<8}= {value:>20}");
    let card = format!("{card:<80}");
    let n = b.len().min(2880 * 4) / 80;
    for i in 0..n {
        let c = &b[i * 80..i * 80 + 8];
        if c == format!("{key:<8}").as_bytes() {
            b[i * 80..i * 80 + 80].copy_from_slice(card.as_bytes());
            return;
        }
        if c == b"END     " {
            b.splice(i * 80..i * 80, card.bytes());
            return;
        }
    }
}

#[test]
fn fits_reader_survives_mutation() {
    let corpus = corpus("fits");
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.fits");
    let (start, limit) = (Instant::now(), budget());
    let (mut runs, mut accepted) = (0u64, 0u64);
    while start.elapsed() < limit || runs < 100 {
        let mut b = rng.pick(&corpus).clone();
        for _ in 0..1 + rng.below(3) {
            if rng.below(3) == 0 {
                mutate(&mut rng, &mut b, FITS_VALUES);
            } else {
                let (k, v) = (*rng.pick(FITS_KEYS), *rng.pick(FITS_VALUES));
                set_card(&mut b, k, v);
            }
        }
        std::fs::write(&path, &b).unwrap();
        let p = path.to_str().unwrap().to_string();
        match catch_unwind(|| skysift::io::read_image(&p)) {
            Err(_) => failure("fits", &b, seed, "the reader panicked"),
            Ok(Err(e)) => {
                let m = e.to_string();
                if !m.contains("x.fits") {
                    failure(
                        "fits",
                        &b,
                        seed,
                        &format!("the error does not name the file: {m}"),
                    );
                }
            }
            Ok(Ok(img)) => {
                accepted += 1;
                if img.width() == 0
                    || img.height() == 0
                    || img.data().len() != img.width() * img.height()
                {
                    failure("fits", &b, seed, "an inconsistent image");
                }
                if img.data().iter().any(|v| v.is_infinite()) {
                    failure(
                        "fits",
                        &b,
                        seed,
                        "an infinite pixel (BSCALE/BZERO beyond f32?)",
                    );
                }
            }
        }
        runs += 1;
    }
    assert!(
        accepted > runs / 20 && accepted < runs,
        "{accepted} of {runs} accepted"
    );
}
