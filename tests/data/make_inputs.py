#!/usr/bin/env python3
"""Makes the small input-format fixtures of tests/data (run from anywhere; needs
numpy and astropy). Every file holds the same 40x30 pattern
    v(x, y) = 2 * ((x + 3 * y) % 17) + 100        (0-based x, y)
in a different encoding, so the tests can check that each decodes to it exactly."""
import gzip, os, shutil
import numpy as np
from astropy.io import fits

out = os.path.dirname(os.path.abspath(__file__))
y, x = np.mgrid[0:30, 0:40]
v = 2 * ((x + 3 * y) % 17) + 100


def w(hdul, name):
    hdul.writeto(os.path.join(out, name), overwrite=True)


w(fits.HDUList([fits.PrimaryHDU(v.astype(np.float32))]), "fmt_f32.fits")
w(fits.HDUList([fits.PrimaryHDU(v.astype(np.float64))]), "fmt_f64.fits")
w(fits.HDUList([fits.PrimaryHDU(v.astype(np.int32))]), "fmt_i32.fits")
w(fits.HDUList([fits.PrimaryHDU((v - 100).astype(np.uint8))]), "fmt_u8_offset100.fits")
# BITPIX 16 with BSCALE/BZERO: stored s = (v - 1000) / 0.5, physical = 0.5 * s + 1000.
h = fits.PrimaryHDU(((v - 1000) / 0.5).astype(np.int16))
h.header["BSCALE"] = 0.5
h.header["BZERO"] = 1000.0
w(fits.HDUList([h]), "fmt_i16_scaled.fits")
with open(os.path.join(out, "fmt_f32.fits"), "rb") as fi, gzip.open(os.path.join(out, "fmt_f32.fits.gz"), "wb") as fo:
    shutil.copyfileobj(fi, fo)
# Tile-compressed (RICE, lossless for integers) in extension 1.
w(fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(v.astype(np.int32), compression_type="RICE_1")]), "fmt_rice.fits")
# Multi-extension: an empty primary, a table, then the image, then a second image (v + 1).
tab = fits.BinTableHDU.from_columns([fits.Column(name="A", format="J", array=np.arange(3))])
img2 = fits.ImageHDU((v + 1).astype(np.float32), name="SCI2")
w(fits.HDUList([fits.PrimaryHDU(), tab, fits.ImageHDU(v.astype(np.float32), name="SCI"), img2]), "fmt_mef.fits")
# A 3-D cube: not an image skysift accepts.
w(fits.HDUList([fits.PrimaryHDU(np.stack([v, v]).astype(np.float32))]), "bad_cube.fits")
print("done")
