#!/usr/bin/env python3
"""Survey-mosaic benchmark: generates N x N star-and-galaxy mosaics on disk and
reports skysift's throughput (Mpix/s) and peak resident memory, streamed
(--memory-limit) and whole-image, next to SExtractor (stacks raised) on the sizes
given with --sextractor.

    python3 scripts/bench_mosaic.py [--sizes 16384,32768,65536] [--sextractor 16384,32768]
                                    [--memory-limit 256] [--out .bench] [--gpu]

Mosaics are written row block by row block (astropy StreamingHDU), so generating a
64k x 64k (16 GiB) file does not need 16 GiB of memory. Sources: one per ~6000 px²
(Gaussian stars and elongated galaxies, sigma 1-3 px) on a sky of 1000 ADU with
Gaussian noise of sigma 10. Deblending and cleaning on (SExtractor's defaults).
Peak memory is skysift's own report (VmHWM, printed by --timings); SExtractor's is
taken with /usr/bin/time -v when available."""
import argparse, os, re, shutil, subprocess, sys, tempfile, time
import numpy as np
from astropy.io import fits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKYSIFT = os.path.join(ROOT, "target", "release", "skysift")


def make_mosaic(n, path, seed=7, block=1024):
    rng = np.random.default_rng(seed)
    hdr = fits.Header()
    hdr["SIMPLE"] = True
    hdr["BITPIX"] = -32
    hdr["NAXIS"] = 2
    hdr["NAXIS1"] = n
    hdr["NAXIS2"] = n
    s = fits.StreamingHDU(path, hdr)
    nsrc_per_block = max(1, int(n * block / 6000))
    yy, xx = np.mgrid[-10:11, -10:11]
    for y0 in range(0, n, block):
        rows = min(block, n - y0)
        img = rng.normal(1000.0, 10.0, (rows + 20, n)).astype(np.float32)  # 10-row margins
        for _ in range(nsrc_per_block):
            x, y = rng.uniform(10, n - 10), rng.uniform(10, rows + 10)
            f = 10 ** rng.uniform(2.5, 4.5)
            sig = rng.uniform(1.0, 3.0)
            q = rng.uniform(0.3, 1.0) if rng.random() < 0.4 else 1.0
            t = rng.uniform(0, np.pi)
            ix, iy = int(x), int(y)
            dx, dy = xx + ix - x, yy + iy - y
            u = dx * np.cos(t) + dy * np.sin(t)
            v = (-dx * np.sin(t) + dy * np.cos(t)) / q
            prof = np.exp(-(u * u + v * v) / (2 * sig * sig))
            prof *= f / prof.sum()
            img[iy - 10:iy + 11, ix - 10:ix + 11] += prof.astype(np.float32)
        s.write(img[10:10 + rows])
    s.close()


def skysift(img, cat, extra, backend="cpu"):
    t0 = time.perf_counter()
    r = subprocess.run([SKYSIFT, img, "-o", cat, "--timings", "--backend", backend] + extra,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        return dt, None, None, r.stderr.strip().splitlines()[-1]
    peak = re.search(r"peak resident memory:\s*([0-9.]+) MiB", r.stderr)
    nobj = re.search(r"skysift: (\d+) objects", r.stderr)
    return dt, float(peak.group(1)) if peak else None, int(nobj.group(1)) if nobj else None, ""


def sextractor(img, n):
    wd = tempfile.mkdtemp()
    with open(os.path.join(wd, "p.param"), "w") as f:
        f.write("NUMBER\nX_IMAGE\nY_IMAGE\nFLUX_ISO\nFLAGS\n")
    with open(os.path.join(wd, "default.conv"), "w") as f:
        f.write("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    cmd = ["source-extractor", img, "-PARAMETERS_NAME", "p.param", "-FILTER_NAME", "default.conv",
           "-CATALOG_TYPE", "FITS_1.0", "-CATALOG_NAME", "cat.fits", "-VERBOSE_TYPE", "QUIET",
           "-MEMORY_OBJSTACK", "65535", "-MEMORY_PIXSTACK", "30000000", "-MEMORY_BUFSIZE", "8192",
           "-NTHREADS", "1", "-CHECKIMAGE_TYPE", "NONE"]
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    t0 = time.perf_counter()
    r = subprocess.run(timer + cmd, cwd=wd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    nobj = len(fits.getdata(os.path.join(wd, "cat.fits"), 1)) if r.returncode == 0 else None
    shutil.rmtree(wd, ignore_errors=True)
    return dt, (int(peak.group(1)) / 1024 if peak else None), nobj, r.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16384,32768,65536")
    ap.add_argument("--sextractor", default="16384,32768")
    ap.add_argument("--memory-limit", default="256")
    ap.add_argument("--whole-max", type=int, default=32768, help="largest size also run whole-image")
    ap.add_argument("--gpu", action="store_true", help="also stream on the GPU backend")
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sex_sizes = {int(s) for s in a.sextractor.split(",") if s}
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores")
    for n in [int(s) for s in a.sizes.split(",")]:
        img = os.path.join(a.out, f"mosaic_{n}.fits")
        if not os.path.exists(img):
            t0 = time.perf_counter()
            make_mosaic(n, img)
            print(f"generated {img} ({os.path.getsize(img) / 2**30:.1f} GiB) in {time.perf_counter() - t0:.0f} s")
        mpix = n * n / 1e6
        cat = os.path.join(a.out, f"mosaic_{n}.cat.fits")
        for label, extra in [(f"streamed --memory-limit {a.memory_limit}", ["--memory-limit", a.memory_limit]),
                             ("streamed, 1 thread", ["--memory-limit", a.memory_limit, "--threads", "1"])] + (
                [("whole image", [])] if n <= a.whole_max else []) + (
                [(f"GPU streamed --memory-limit {a.memory_limit}", ["--memory-limit", a.memory_limit, "gpu"])]
                if a.gpu else []):
            backend = "cpu"
            if extra and extra[-1] == "gpu":
                extra, backend = extra[:-1], "gpu"
            dt, peak, nobj, err = skysift(img, cat, extra, backend)
            if err:
                print(f"  {n}x{n} skysift {label}: failed: {err}")
                continue
            print(f"  {n}x{n} skysift {label}: {dt:.1f} s, {mpix / dt:.0f} Mpix/s, peak {peak:.0f} MiB, {nobj} objects")
        if n in sex_sizes and shutil.which("source-extractor"):
            dt, peak, nobj, rc = sextractor(img, n)
            p = f"{peak:.0f} MiB" if peak else "?"
            print(f"  {n}x{n} SExtractor (1 thread): {dt:.1f} s, {mpix / dt:.0f} Mpix/s, peak {p}, {nobj} objects, exit {rc}")


if __name__ == "__main__":
    main()
