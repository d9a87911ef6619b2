#!/usr/bin/env python3
"""Times skysift against SEP and SExtractor on generated star-and-galaxy fields.

    python3 scripts/bench_compare.py [--sizes 2048,4096,8192] [--repeat 3] [--out .bench] [--full]

Needs: numpy, astropy, sep (pip install numpy astropy sep), SExtractor
(apt-get install source-extractor) and a release build of skysift
(cargo build --release). Every code runs with the same settings, SExtractor's
defaults with deblending and cleaning off (--deblend: on): BACK_SIZE 64,
BACK_FILTERSIZE 3, the default 3x3 filter, DETECT_THRESH 1.5 x global RMS,
DETECT_MINAREA 5, DEBLEND_MINCONT 1 (off), CLEAN N, and the same isophotal catalog
columns.

What is timed, per code, from the FITS file on disk to the catalog in memory or
on disk (best of --repeat runs, files already in the page cache):
- skysift: wall time of the whole process (`skysift IMG -o CAT.fits --threads N`).
- SEP: in-process time of read (astropy) + Background + subtraction + extract
  (Python start-up and imports excluded, which favours SEP).
- SExtractor: wall time of the whole process, NTHREADS 1, isophotal columns only.

--full: every photometry and classification column both write (FULL_PARAMS, those of
../shared/data/config/oracle_full.param without the world coordinates), PHOT_APERTURES
5,10,20 and PHOT_FLUXFRAC 0.2,0.5,0.9, CLASS_STAR with Debian's default.nnw; SEP is
left out (it has no such catalog) and skysift's own isophotal-only time is printed
beside its full one.
"""
import argparse, math, os, shutil, subprocess, sys, tempfile, time
import numpy as np
from astropy.io import fits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKYSIFT = os.path.join(ROOT, "target", "release", "skysift")
PARAMS = ["NUMBER", "X_IMAGE", "Y_IMAGE", "XMIN_IMAGE", "YMIN_IMAGE", "XMAX_IMAGE", "YMAX_IMAGE",
          "XPEAK_IMAGE", "YPEAK_IMAGE", "X2_IMAGE", "Y2_IMAGE", "XY_IMAGE", "A_IMAGE", "B_IMAGE",
          "THETA_IMAGE", "CXX_IMAGE", "CYY_IMAGE", "CXY_IMAGE", "ERRX2_IMAGE", "ERRY2_IMAGE",
          "ERRXY_IMAGE", "ISOAREA_IMAGE", "ISOAREAF_IMAGE", "FLUX_ISO", "FLUXERR_ISO", "MAG_ISO",
          "MAGERR_ISO", "FLUX_MAX", "FLAGS"]


PHOT = ["FLUX_AUTO", "FLUXERR_AUTO", "KRON_RADIUS", "FLUX_RADIUS(3)", "FWHM_IMAGE", "CLASS_STAR",
        "MAG_AUTO", "MAGERR_AUTO", "FLUX_APER(3)", "FLUXERR_APER(3)", "MAG_APER(3)", "MAGERR_APER(3)",
        "XWIN_IMAGE", "YWIN_IMAGE", "ERRAWIN_IMAGE", "ERRBWIN_IMAGE", "ERRTHETAWIN_IMAGE",
        "X2WIN_IMAGE", "Y2WIN_IMAGE", "XYWIN_IMAGE", "AWIN_IMAGE", "BWIN_IMAGE", "THETAWIN_IMAGE",
        "FLAGS_WIN", "SNR_WIN", "FLUX_PETRO", "FLUXERR_PETRO", "MAG_PETRO", "PETRO_RADIUS",
        "FLUX_BEST", "MAG_BEST", "FLUX_ISOCOR", "MU_MAX", "MU_THRESHOLD", "BACKGROUND", "THRESHOLD",
        "ISO0", "ISO1", "ISO2", "ISO3", "ISO4", "ISO5", "ISO6", "ISO7"]
FULL_PARAMS = PARAMS[:-1] + PHOT + ["FLAGS"]
FULL = False  # set by --full
NNW = "/usr/share/source-extractor/default.nnw"


def params():
    return FULL_PARAMS if FULL else PARAMS


def make_field(n, path, seed=42):
    """A sky of 1000 ADU with Gaussian noise (σ 10), Moffat stars and exponential
    galaxies: about one source per 1700 px² (≈ 40k sources at 8192²)."""
    rng = np.random.default_rng(seed)
    img = rng.normal(1000.0, 10.0, (n, n)).astype(np.float32)
    nsrc = int(n * n / 1700)
    xs = rng.uniform(0, n, nsrc)
    ys = rng.uniform(0, n, nsrc)
    flux = 10 ** rng.uniform(2.3, 5.0, nsrc)
    gal = rng.random(nsrc) < 0.4
    yy, xx = np.mgrid[-12:13, -12:13]
    for x, y, f, g in zip(xs, ys, flux, gal):
        ix, iy = int(x), int(y)
        dx, dy = xx + ix - x, yy + iy - y
        r2 = dx * dx + dy * dy
        if g:
            q = rng.uniform(0.4, 1.0)
            t = rng.uniform(0, np.pi)
            u = dx * np.cos(t) + dy * np.sin(t)
            v = (-dx * np.sin(t) + dy * np.cos(t)) / q
            prof = np.exp(-np.sqrt(u * u + v * v) / rng.uniform(1.0, 3.0))
        else:
            prof = (1 + r2 / 2.0 ** 2) ** -3.5
        prof *= f / prof.sum()
        y0, y1, x0, x1 = iy - 12, iy + 13, ix - 12, ix + 13
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = 25 - max(0, y1 - n), 25 - max(0, x1 - n)
        img[max(0, y0):min(n, y1), max(0, x0):min(n, x1)] += prof[sy0:sy1, sx0:sx1].astype(np.float32)
    fits.PrimaryHDU(img).writeto(path, overwrite=True)
    return nsrc


def best(fn, repeat):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


DEBLEND = False  # set by --deblend


def run_skysift(img, cat, threads, backend="cpu", full=None):
    full = FULL if full is None else full
    args = [SKYSIFT, img, "-o", cat, "-q", "--params", ",".join(FULL_PARAMS if full else PARAMS),
            "--backend", backend]
    if full:
        args += ["--phot-apertures", "5,10,20", "--phot-fluxfrac", "0.2,0.5,0.9"]
    if not DEBLEND:
        args += ["--deblend-mincont", "1", "--no-clean"]
    if threads:
        args += ["--threads", str(threads)]
    subprocess.run(args, check=True)
    return len(fits.getdata(cat, 1))


def run_sep(img):
    import sep
    sep.set_extract_pixstack(5_000_000)
    sep.set_sub_object_limit(4096)
    t0 = time.perf_counter()
    data = fits.getdata(img).astype(np.float32)
    bkg = sep.Background(data, bw=64, bh=64, fw=3, fh=3)
    sub = data - bkg.back()
    kernel = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32)
    objs = sep.extract(sub, 1.5, err=bkg.globalrms, minarea=5, filter_kernel=kernel,
                       filter_type="conv", deblend_cont=0.005 if DEBLEND else 1.0, clean=DEBLEND)
    return time.perf_counter() - t0, len(objs)


def run_sextractor(img, cat, workdir):
    cfg = os.path.join(workdir, "bench.sex")
    subprocess.run(["source-extractor", img, "-c", cfg, "-CATALOG_NAME", cat], check=True, cwd=workdir,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(fits.getdata(cat, 1))


def write_sex_config(workdir, n):
    with open(os.path.join(workdir, "bench.param"), "w") as f:
        f.write("\n".join(params()) + "\n")
    with open(os.path.join(workdir, "default.conv"), "w") as f:
        f.write("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    with open(os.path.join(workdir, "bench.sex"), "w") as f:
        f.write(f"""CATALOG_TYPE FITS_1.0
PARAMETERS_NAME bench.param
DETECT_TYPE CCD
DETECT_MINAREA 5
DETECT_THRESH 1.5
ANALYSIS_THRESH 1.5
THRESH_TYPE RELATIVE
FILTER Y
FILTER_NAME default.conv
DEBLEND_NTHRESH 32
DEBLEND_MINCONT {0.005 if DEBLEND else 1.0}
CLEAN {"Y" if DEBLEND else "N"}
WEIGHT_TYPE NONE
GAIN 0
MAG_ZEROPOINT 0
SATUR_LEVEL 50000
BACK_TYPE AUTO
BACK_SIZE 64
BACK_FILTERSIZE 3
BACKPHOTO_TYPE GLOBAL
PHOT_APERTURES 5,10,20
PHOT_FLUXFRAC 0.2,0.5,0.9
PHOT_AUTOPARAMS 2.5,3.5
PHOT_PETROPARAMS 2.0,3.5
MASK_TYPE CORRECT
SEEING_FWHM 1.2
PIXEL_SCALE 0
STARNNW_NAME {NNW}
CHECKIMAGE_TYPE NONE
MEMORY_OBJSTACK 65535
MEMORY_PIXSTACK 30000000
MEMORY_BUFSIZE {max(1024, min(n, 8192))}
VERBOSE_TYPE QUIET
NTHREADS 1
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2048,4096,8192")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench"))
    ap.add_argument("--no-sextractor", action="store_true")
    ap.add_argument("--deblend", action="store_true",
                    help="deblending and cleaning on for all three (DEBLEND_MINCONT 0.005, CLEAN Y)")
    ap.add_argument("--full", action="store_true",
                    help="every photometry and classification column (skysift and SExtractor; no SEP)")
    ap.add_argument("--gpu", action="store_true",
                    help="also time skysift --backend gpu (the adapter is printed; lavapipe is a CPU emulation)")
    a = ap.parse_args()
    global DEBLEND, FULL
    DEBLEND, FULL = a.deblend, a.full
    if not os.path.exists(SKYSIFT):
        sys.exit(f"{SKYSIFT} not found: run `cargo build --release` first")
    os.makedirs(a.out, exist_ok=True)
    ncores = os.cpu_count()
    print(f"machine: {os.uname().machine}, {ncores} cores; best of {a.repeat}")
    if a.gpu:
        info = subprocess.run([SKYSIFT, "--gpu-info"], capture_output=True, text=True)
        print("GPU:", (info.stdout or info.stderr).strip().replace("\n", "; "))
    rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        img = os.path.join(a.out, f"field_{n}.fits")
        if not os.path.exists(img):
            nsrc = make_field(n, img)
            print(f"generated {img}: {n}x{n}, {nsrc} sources")
        cat = os.path.join(a.out, f"cat_{n}.fits")
        t1, n1 = best(lambda: run_skysift(img, cat, 1), a.repeat)
        tn, nn = best(lambda: run_skysift(img, cat, None), a.repeat)
        if FULL:
            ti, _ = best(lambda: run_skysift(img, cat, 1, full=False), a.repeat)
            print(f"  skysift 1 thread, full/isophotal-only: {t1:.3f} / {ti:.3f} s = {t1 / ti:.2f}x")
            ts, ns = float("nan"), 0
        else:
            sep_runs = [run_sep(img) for _ in range(a.repeat)]
            ts, ns = min(r[0] for r in sep_runs), sep_runs[0][1]
        tx, nx = (float("nan"), 0)
        if not a.no_sextractor and shutil.which("source-extractor"):
            with tempfile.TemporaryDirectory() as wd:
                write_sex_config(wd, n)
                tx, nx = best(lambda: run_sextractor(img, os.path.join(wd, "cat.fits"), wd), a.repeat)
        if a.gpu:
            tg, ng = best(lambda: run_skysift(img, cat, None, backend="gpu"), a.repeat)
            print(f"  skysift --backend gpu: {tg:.3f} s, {ng} objects; SEP/skysift(gpu) {ts / tg:.2f}x, "
                  f"SExtractor/skysift(gpu) {tx / tg:.2f}x")
        rows.append((n, n1, ns, nx, t1, tn, ts, tx))
        print(f"{n}x{n}: objects skysift {n1}, SEP {ns}, SExtractor {nx}")
        print(f"  skysift 1 thread {t1:.3f} s | skysift {ncores} threads {tn:.3f} s | SEP {ts:.3f} s | SExtractor {tx:.3f} s")
        print(f"  ratios: SEP/skysift(1) {ts / t1:.2f}x, SExtractor/skysift(1) {tx / t1:.2f}x, "
              f"SEP/skysift({ncores}) {ts / tn:.2f}x, SExtractor/skysift({ncores}) {tx / tn:.2f}x")
    return rows


if __name__ == "__main__":
    main()
