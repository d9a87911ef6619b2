#!/usr/bin/env python3
"""Makes the WCS fixtures of tests/integration/world.rs: one header per projection
or convention (NAME.hdr, one card per line) and what astropy.wcs (wcslib) gives on
a grid of pixels (NAME.csv: x, y as FITS 1-based pixels, w1, w2 the world axes in the
header's own frame, ra, dec the J2000 equatorial position).

ra/dec: the same as w1/w2 for ICRS/FK5 J2000 headers; for galactic, ecliptic and
supergalactic axes astropy's transform to FK5 J2000; for an EQUINOX 1950 FK5 header
the IAU 1976 precession (ERFA pmat76, as SExtractor precesses; astropy's own FK5
frame uses a newer model 0.14" away).

Run from this folder: python3 make_wcs_refs.py (needs numpy, astropy).
"""
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.coordinates import SkyCoord
import astropy.units as u
import erfa

S = 0.4 / 3600.0


def tan_cards(code="TAN", crval=(150.1, 2.2), rot=15.0, extra=(), lng="RA--", lat="DEC-", scale=S):
    r = np.radians(rot)
    return [
        ("CTYPE1", f"{lng}-{code}"),
        ("CTYPE2", f"{lat}-{code}"),
        ("CRPIX1", 512.5), ("CRPIX2", 480.25),
        ("CRVAL1", crval[0]), ("CRVAL2", crval[1]),
        ("CD1_1", -scale * np.cos(r)), ("CD1_2", scale * np.sin(r)),
        ("CD2_1", scale * np.sin(r)), ("CD2_2", scale * np.cos(r)),
    ] + list(extra)


def headers():
    h = {}
    eq = [("RADESYS", "ICRS"), ("EQUINOX", 2000.0)]
    for code in ["TAN", "SIN", "ARC", "ZEA", "STG", "AZP", "SZP", "AIR", "ZPN", "CAR", "CEA", "CYP",
                 "AIT", "MOL", "MER", "SFL", "PAR", "COP", "COD", "COE", "COO"]:
        extra = list(eq)
        if code == "ZPN":
            extra += [("PV2_0", 0.0), ("PV2_1", 1.0), ("PV2_2", 0.0), ("PV2_3", 5.0)]
        if code == "AZP":
            extra += [("PV2_1", 2.0), ("PV2_2", 30.0)]
        if code == "CEA":
            extra += [("PV2_1", 0.7)]
        if code == "SZP":
            extra += [("PV2_1", 2.0), ("PV2_2", 200.0), ("PV2_3", 70.0)]
        if code == "AIR":
            extra += [("PV2_1", 45.0)]
        if code == "CYP":
            extra += [("PV2_1", 1.0), ("PV2_2", 0.7)]
        if code in ("COP", "COD", "COE", "COO"):
            extra += [("PV2_1", 45.0), ("PV2_2", 10.0)]
        # Wide-field projections get a scale that reaches far from the reference.
        scale = 0.01 if code in ("CAR", "CEA", "CYP", "AIT", "MOL", "MER", "SFL", "PAR", "COP", "COD", "COE", "COO") else S
        crval = {"CAR": (150.1, 0.0), "COP": (150.1, 45.0), "COD": (150.1, 45.0), "COE": (150.1, 45.0),
                 "COO": (150.1, 45.0)}.get(code, (150.1, 2.2))
        h[code.lower()] = tan_cards(code, crval=crval, extra=extra, scale=scale)
    # Slant SIN (an interferometer's), NCP, and a far-north TAN.
    h["sin_slant"] = tan_cards("SIN", crval=(30.0, 60.0), extra=eq + [("PV2_1", 0.05), ("PV2_2", -0.1)])
    h["ncp"] = tan_cards("NCP", crval=(30.0, 60.0), extra=eq)
    h["tan_north"] = tan_cards("TAN", crval=(10.0, 89.9), extra=eq)
    # Linear-matrix conventions and the poles.
    h["crota"] = [("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRPIX1", 100.0), ("CRPIX2", 80.0),
                  ("CRVAL1", 210.0), ("CRVAL2", -40.0), ("CDELT1", -S), ("CDELT2", S), ("CROTA2", 25.0)] + eq
    h["pc"] = [("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRPIX1", 100.0), ("CRPIX2", 80.0),
               ("CRVAL1", 210.0), ("CRVAL2", -40.0), ("CDELT1", -S), ("CDELT2", 1.5 * S),
               ("PC1_1", 0.9), ("PC1_2", 0.3), ("PC2_1", -0.2), ("PC2_2", 0.95)] + eq
    h["lonpole"] = tan_cards("TAN", extra=eq + [("LONPOLE", 170.0)])
    h["decra"] = [("CTYPE1", "DEC--TAN"), ("CTYPE2", "RA---TAN"), ("CRPIX1", 512.5), ("CRPIX2", 480.25),
                  ("CRVAL1", 2.2), ("CRVAL2", 150.1), ("CD1_1", 0.0), ("CD1_2", S), ("CD2_1", -S), ("CD2_2", 0.0)] + eq
    # Frames.
    h["galactic_car"] = tan_cards("CAR", crval=(30.0, 0.0), lng="GLON", lat="GLAT", scale=0.002)
    h["galactic_tan"] = tan_cards("TAN", crval=(120.0, 35.0), lng="GLON", lat="GLAT")
    h["ecliptic_tan"] = tan_cards("TAN", crval=(200.0, -10.0), lng="ELON", lat="ELAT")
    h["fk5_1950"] = tan_cards("TAN", extra=[("RADESYS", "FK5"), ("EQUINOX", 1950.0)])
    # Distortions: TPV (DECam's kind, amplified) and SIP (HST's kind).
    tpv = [("PV1_0", 1e-4), ("PV1_1", 1.0), ("PV1_2", 2e-3), ("PV1_4", 0.05), ("PV1_5", -0.02),
           ("PV1_7", 3.0), ("PV1_9", -1.0), ("PV2_0", -2e-4), ("PV2_1", 1.0), ("PV2_2", -1e-3),
           ("PV2_4", 0.03), ("PV2_6", 0.04), ("PV2_10", 2.0), ("PV1_11", 0.5)]
    h["tpv"] = tan_cards("TPV", crval=(53.1, -27.8), extra=eq + tpv, scale=0.27 / 3600 * 4)
    sip = [("A_ORDER", 3), ("A_2_0", 2e-5), ("A_1_1", -1e-5), ("A_0_2", 3e-6), ("A_3_0", 1e-8),
           ("B_ORDER", 3), ("B_2_0", -1e-5), ("B_0_2", 2e-5), ("B_1_2", -2e-8), ("B_0_3", 1e-8)]
    cards = tan_cards("TAN", extra=eq + sip)
    cards[0] = ("CTYPE1", "RA---TAN-SIP")
    cards[1] = ("CTYPE2", "DEC--TAN-SIP")
    h["sip"] = cards
    return h


def main():
    xs = np.linspace(1, 1024, 9)
    ys = np.linspace(1, 960, 8)
    px, py = np.meshgrid(xs, ys)
    px, py = px.ravel(), py.ravel()
    for name, cards in headers().items():
        hdr = fits.Header()
        hdr["NAXIS"] = 2
        hdr["NAXIS1"] = 1024
        hdr["NAXIS2"] = 960
        for k, v in cards:
            hdr[k] = v
        w = WCS(hdr)
        w1, w2 = w.all_pix2world(px, py, 1)
        ok = np.isfinite(w1) & np.isfinite(w2)
        ctype1 = hdr["CTYPE1"]
        if ctype1.startswith(("GLON", "ELON")):
            # Ecliptic: astropy's mean obliquity (IAU 2006) is not SExtractor's
            # constant pole (0.04" apart): ra/dec are left out (NaN) there.
            if ctype1.startswith("G"):
                j = SkyCoord(w1 * u.deg, w2 * u.deg, frame="galactic").transform_to("fk5")
            else:
                j = SkyCoord(np.nan * w1 * u.deg, np.nan * w2 * u.deg, frame="icrs")
            ra, dec = j.ra.deg, j.dec.deg
        elif name == "fk5_1950":
            m = erfa.pmat76(2433282.5, 0.0).T
            v = erfa.s2c(np.radians(w1), np.radians(w2))
            a, d = erfa.c2s(v @ m.T)
            ra, dec = np.degrees(a) % 360, np.degrees(d)
        elif name == "decra":
            ra, dec = w2, w1
        else:
            ra, dec = w1, w2
        with open(f"{name}.hdr", "w") as f:
            for card in hdr.cards:
                f.write(str(card) + "\n")
        with open(f"{name}.csv", "w") as f:
            f.write("x,y,w1,w2,ra,dec\n")
            for i in np.nonzero(ok)[0]:
                f.write(f"{float(px[i])!r},{float(py[i])!r},{float(w1[i])!r},{float(w2[i])!r},{float(ra[i])!r},{float(dec[i])!r}\n")


if __name__ == "__main__":
    main()
