//! Writes a simulated star-and-galaxy mosaic as a float FITS image, block of rows by
//! block of rows (any size in little memory), for benchmarks on machines without
//! Python's astropy (the lent GPU machines):
//!
//!     cargo run --release --example make_mosaic -- 16384 mosaic_16384.fits [seed]
//!
//! The same kind of field as scripts/bench_mosaic.py (not the same pixels): a sky of
//! 1000 ADU with Gaussian noise of sigma 10 and one source per ~6000 px² (Gaussian
//! stars and elongated galaxies, sigma 1-3 px, fluxes 10^2.5 to 10^4.5 ADU).

use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    /// Two standard normal deviates (Box-Muller).
    fn normal2(&mut self) -> (f64, f64) {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * v;
        (r * t.cos(), r * t.sin())
    }
}

struct Source {
    x: f64,
    y: f64,
    amp: f64,
    /// Inverse covariance of the Gaussian (cxx, cyy, cxy).
    c: (f64, f64, f64),
    /// Rows it reaches (5 sigma).
    reach: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: make_mosaic N OUT.fits [seed]");
        std::process::exit(2);
    }
    let n: usize = args[1].parse()?;
    let path = &args[2];
    let seed: u64 = args.get(3).map_or(Ok(7), |s| s.parse())?;
    if n < 64 {
        eprintln!("make_mosaic: N must be at least 64");
        std::process::exit(2);
    }
    let mut rng = Rng(seed);
    let count = (n as f64 * n as f64 / 6000.0) as usize;
    let mut sources: Vec<Source> = (0..count)
        .map(|_| {
            let x = rng.uniform(10.0, n as f64 - 10.0);
            let y = rng.uniform(10.0, n as f64 - 10.0);
            let flux = 10f64.powf(rng.uniform(2.5, 4.5));
            let sig = rng.uniform(1.0, 3.0);
            let q = if rng.unit() < 0.4 {
                rng.uniform(0.3, 1.0)
            } else {
                1.0
            };
            let t = rng.uniform(0.0, std::f64::consts::PI);
            let (sa, sb) = (sig, sig * q);
            let (ct, st) = (t.cos(), t.sin());
            let (ia, ib) = (1.0 / (sa * sa), 1.0 / (sb * sb));
            Source {
                x,
                y,
                amp: flux / (2.0 * std::f64::consts::PI * sa * sb),
                c: (
                    ia * ct * ct + ib * st * st,
                    ia * st * st + ib * ct * ct,
                    2.0 * (ia - ib) * ct * st,
                ),
                reach: 5.0 * sa,
            }
        })
        .collect();
    sources.sort_by(|a, b| (a.y - a.reach).total_cmp(&(b.y - b.reach)));
    let _ = std::fs::remove_file(path);
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &[n, n],
    };
    let mut f = FitsFile::create(path).with_custom_primary(&desc).open()?;
    let hdu = f.primary_hdu()?;
    let block = 256usize;
    let mut data = vec![0f32; block * n];
    let mut first = 0usize; // sources before this one end above the current block
    let mut y0 = 0usize;
    while y0 < n {
        let rows = block.min(n - y0);
        let buf = &mut data[..rows * n];
        for pair in buf.chunks_mut(2) {
            let (a, b) = rng.normal2();
            pair[0] = (1000.0 + 10.0 * a) as f32;
            if pair.len() > 1 {
                pair[1] = (1000.0 + 10.0 * b) as f32;
            }
        }
        while first < sources.len() && sources[first].y + sources[first].reach < y0 as f64 {
            first += 1;
        }
        for s in &sources[first..] {
            if s.y - s.reach > (y0 + rows) as f64 {
                break;
            }
            let (ya, yb) = (
                ((s.y - s.reach).floor().max(y0 as f64)) as usize,
                ((s.y + s.reach).ceil().min((y0 + rows - 1) as f64)) as usize,
            );
            let (xa, xb) = (
                (s.x - s.reach).floor().max(0.0) as usize,
                ((s.x + s.reach).ceil() as usize).min(n - 1),
            );
            for y in ya..=yb {
                let dy = y as f64 - s.y;
                for x in xa..=xb {
                    let dx = x as f64 - s.x;
                    let q = s.c.0 * dx * dx + s.c.1 * dy * dy + s.c.2 * dx * dy;
                    buf[(y - y0) * n + x] += (s.amp * (-0.5 * q).exp()) as f32;
                }
            }
        }
        hdu.write_section(&mut f, y0 * n, (y0 + rows) * n, buf)?;
        y0 += rows;
    }
    eprintln!("make_mosaic: {path}: {n}x{n}, {count} sources");
    Ok(())
}
