#!/usr/bin/env python3
"""SEP's deblending and cleaning time on one image, one thread (SEP is single-threaded).

Times sep.extract on the background-subtracted image with deblending and cleaning
each on and off (SExtractor's defaults otherwise: threshold 1.5 x global RMS,
minarea 5, the 3x3 'conv' filter, deblend_cont 0.005, clean_param 1.0), best of
--repeat runs, and prints the differences. Compare with skysift's own figures:
    skysift IMAGE -o cat.fits --threads 1 --backend cpu --timings
(the "deblending" and "cleaning" lines).

    pip install sep astropy numpy
    python3 scripts/bench_deblend_sep.py .bench/field_8192.fits
"""
import argparse
import time

import numpy as np
import sep
from astropy.io import fits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    d = np.ascontiguousarray(fits.getdata(a.image), dtype=np.float32)
    bkg = sep.Background(d, bw=64, bh=64, fw=3, fh=3)
    sub = d - bkg.back()
    err = bkg.globalrms
    sep.set_extract_pixstack(10**7)
    sep.set_sub_object_limit(4096)

    def best(dc, clean):
        t, n = 1e9, 0
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            objs = sep.extract(sub, 1.5, err=err, minarea=5, deblend_cont=dc,
                               clean=clean, clean_param=1.0, filter_type="conv")
            t = min(t, time.perf_counter() - t0)
            n = len(objs)
        return t, n

    base, n0 = best(1.0, False)
    deb, n1 = best(0.005, False)
    cln, n2 = best(1.0, True)
    both, n3 = best(0.005, True)
    print(f"SEP {sep.__version__} on {a.image} ({d.shape[1]}x{d.shape[0]}), best of {a.repeat}:")
    print(f"  neither      {base:.3f} s  ({n0} objects)")
    print(f"  deblending   {deb:.3f} s  ({n1} objects)  -> deblending {deb - base:+.3f} s")
    print(f"  cleaning     {cln:.3f} s  ({n2} objects)  -> cleaning {cln - base:+.3f} s")
    print(f"  both         {both:.3f} s  ({n3} objects)  -> together {both - base:+.3f} s")


if __name__ == "__main__":
    main()
