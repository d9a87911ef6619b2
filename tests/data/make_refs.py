#!/usr/bin/env python3
"""Rebuilds the reference fixtures of tests/data from ../shared/data and SExtractor.

Needs: numpy, astropy (pip install numpy astropy) and SExtractor 2.25
(apt-get install source-extractor). Run from the repository root:

    python3 tests/data/make_refs.py /path/to/shared/data

What it writes (all small):
- sep_image.fits: SEP's 256x256 test image (BITPIX 16, BSCALE/BZERO), as shipped.
- emmi_galaxies.fits.gz: SExtractor's 1024x1024 test image, gzipped.
- sim_crop.fits, sim_masked_crop.fits (+ .mask.fits): the lower-left 512x512 of the
  simulated images of shared/data (NaN blocks kept in the masked one).
- <name>.sex_nodeblend.csv: SExtractor's catalog with the oracle configuration
  (shared/data/config/oracle.sex) and deblending and cleaning off
  (-DEBLEND_MINCONT 1.0 -CLEAN N), written as FITS_1.0 and converted to CSV.
- <name>.sex_deblend.csv: the same with the oracle configuration unchanged
  (DEBLEND_NTHRESH 32, DEBLEND_MINCONT 0.005, CLEAN Y, CLEAN_PARAM 1).
- sep_image.sex_full_nodeblend.csv: shared/data/refs/sep_image/sextractor_full_nodeblend.csv
  as is (oracle_full.sex + oracle_full.param: every photometry column, PHOT_APERTURES
  5,10,20, PHOT_FLUXFRAC 0.2,0.5,0.9, -DEBLEND_MINCONT 1 -CLEAN N), copied by hand.
- sep_image.sex_full_local12_nodeblend.csv: SExtractor 2.25 run here from a copy of
  shared/data/config/ as `source-extractor sep_image.fits -c oracle_full.sex
  -PARAMETERS_NAME bench.param -CATALOG_TYPE FITS_1.0 -CATALOG_NAME local12.fits
  -DEBLEND_MINCONT 1 -CLEAN N -BACKPHOTO_TYPE LOCAL -BACKPHOTO_THICK 12
  -STARNNW_NAME /usr/share/source-extractor/default.nnw` (bench.param: the 79 names of
  oracle_full.param without the world columns), converted to CSV with vectors as
  NAME_1..n and every float as the float64 of its float32.
- emmi_galaxies.sex_full_nodeblend.csv.gz: shared/data/refs/emmi_galaxies/
  sextractor_full_nodeblend.csv without its world columns, gzipped (full_refs()).
- sim_crop.sex_full_{nodeblend,masknone_nodeblend,maskblank_nodeblend,deblend}.csv,
  sim_masked_crop.sex_full_nodeblend.csv, sep_image.sex_full_deblend.csv: SExtractor
  2.25 run here by full_refs() with oracle_full.sex and the 79 non-world names of
  oracle_full.param (-DEBLEND_MINCONT 1 -CLEAN N for *nodeblend, -MASK_TYPE NONE or
  BLANK for mask*), vectors as NAME_1..n, every float as the float64 of its float32.
  `python3 tests/data/make_refs.py ../shared/data --full-only` remakes just these.
- mef3.fits.gz: a multi-extension file of three images (empty primary; CCD1 =
  sep_image, CCD2 = sep_image upside down, CCD3 = the first 200 columns of its
  transpose, as float32; GAIN 1, 2, 3), and mef3.sex_nodeblend.ldac: SExtractor's
  FITS_LDAC catalog of it (oracle.sex, tests/data/config/mef.param, -DEBLEND_MINCONT 1
  -CLEAN N) and mef3.sex_deblend.ldac (the same with deblending and cleaning on: its
  deblending draws continue from one extension to the next); sep_image.sex_nodeblend.skycat: SExtractor's ASCII_SKYCAT catalog of
  sep_image (oracle.sex, tests/data/config/skycat.param, -PHOT_APERTURES 5,10,
  -DEBLEND_MINCONT 1 -CLEAN N). `--formats-only` remakes just these (format_refs()).
- emmi_galaxies.sex_bufsize40.csv.gz, emmi_galaxies.sex_objstack16.csv.gz,
  sim_crop.sex_bufsize40.csv: SExtractor with oracle.sex and -MEMORY_BUFSIZE 40 or
  -MEMORY_OBJSTACK 16 (its cleaning list forgets objects). `--memory-only` (memory_refs()).
- weighted_crop.fits: the central 320x320 of sim_weighted_1024 (rotated TAN WCS, CRPIX
  moved), weighted_crop.{fk5_1950,galactic,tpv}.head: external headers over it (FK5
  EQUINOX 1950; galactic axes; TPV with large terms), and weighted_crop.sex_world*.csv:
  SExtractor with oracle_full.sex, tests/data/config/world.param and -HEADER_SUFFIX
  for each (`--wcs-only`, wcs_refs()).
- weighted_crop.flag.fits (the same crop of the int16 flag map, a pattern of mixed
  values, -1 among them, over its upper right part) and
  weighted_crop.sex_flags_{or,min_max,and_most}.csv: SExtractor's IMAFLAGS_ISO(k) and
  NIMAFLAGS_ISO(k) with FLAG_TYPE OR, MIN,MAX and AND,MOST (the map given k times;
  `--flags-only`, flag_refs()).
- dual_det.fits, dual_meas.fits: the central 320x320 of the sim_dual_1024 pair, and
  dual.sex_full.csv: SExtractor's dual-image catalog of them (`source-extractor
  dual_det.fits,dual_meas.fits -c oracle_full.sex`; `--dual-only`, dual_refs()).
- <name>.sex_back.fits.gz, .sex_rms.fits.gz, .sex_seg.fits.gz: its BACKGROUND,
  BACKGROUND_RMS and SEGMENTATION check images. For emmi_galaxies the two maps are
  subsampled (every 4th row and column, starting at 0) to keep the repository small.
For sep_image and emmi_galaxies the SExtractor outputs are those of shared/data/refs
(same program, same configuration); the crops were run here with:

    source-extractor IMAGE -c oracle.sex -CATALOG_TYPE FITS_1.0 -CATALOG_NAME cat.fits \
        -DEBLEND_MINCONT 1.0 -CLEAN N \
        -CHECKIMAGE_TYPE BACKGROUND,BACKGROUND_RMS,SEGMENTATION \
        -CHECKIMAGE_NAME back.fits,rms.fits,seg.fits \
        -STARNNW_NAME /usr/share/source-extractor/default.nnw

(working directory shared/data/config, so default.conv and oracle.param are found).
"""
import gzip, os, shutil, subprocess, sys, tempfile
import numpy as np
from astropy.io import fits
from astropy.table import Table

shared = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "../shared/data")
out = os.path.dirname(os.path.abspath(__file__))
cfg = os.path.join(shared, "config")


def gz_write(arr, path, dtype):
    hdu = fits.PrimaryHDU(np.asarray(arr, dtype=dtype))
    with tempfile.NamedTemporaryFile(suffix=".fits") as t:
        hdu.writeto(t.name, overwrite=True)
        with open(t.name, "rb") as fi, gzip.open(path, "wb", 9) as fo:
            shutil.copyfileobj(fi, fo)


def fits_to_csv(cat_fits, csv_path):
    t = Table.read(cat_fits, hdu=2 if len(fits.open(cat_fits)) > 2 else 1)
    for c in t.colnames:
        t[c].format = None  # full precision, not the TDISP display format
    t.write(csv_path, format="csv", overwrite=True)


def run_sex_memory(image, name, keyword, value):
    """SExtractor's catalog with the oracle configuration and a small MEMORY_BUFSIZE or
    MEMORY_OBJSTACK (its cleaning list forgets objects): <name>.sex_<keyword><value>.csv."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            ["source-extractor", image, "-c", "oracle.sex", "-CATALOG_TYPE", "FITS_1.0",
             "-CATALOG_NAME", f"{d}/cat.fits", "-VERBOSE_TYPE", "QUIET", f"-MEMORY_{keyword.upper()}",
             str(value), "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw"], cwd=cfg, check=True)
        fits_to_csv(f"{d}/cat.fits", f"{out}/{name}.sex_{keyword}{value}.csv")
        if name == "emmi_galaxies":
            subprocess.run(["gzip", "-9", "-f", f"{out}/{name}.sex_{keyword}{value}.csv"], check=True)


def memory_refs():
    run_sex_memory(f"{shared}/images/emmi_galaxies.fits", "emmi_galaxies", "bufsize", 40)
    run_sex_memory(f"{shared}/images/emmi_galaxies.fits", "emmi_galaxies", "objstack", 16)
    run_sex_memory(f"{out}/sim_crop.fits", "sim_crop", "bufsize", 40)


def run_sex_deblend(image, name):
    """SExtractor's catalog with the oracle configuration as it is (deblending and
    cleaning on): <name>.sex_deblend.csv."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            ["source-extractor", image, "-c", "oracle.sex", "-CATALOG_TYPE", "FITS_1.0",
             "-CATALOG_NAME", f"{d}/cat.fits", "-VERBOSE_TYPE", "QUIET",
             "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw"], cwd=cfg, check=True)
        fits_to_csv(f"{d}/cat.fits", f"{out}/{name}.sex_deblend.csv")


def run_sex(image, name, subsample=1):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            ["source-extractor", image, "-c", "oracle.sex", "-CATALOG_TYPE", "FITS_1.0",
             "-CATALOG_NAME", f"{d}/cat.fits", "-DEBLEND_MINCONT", "1.0", "-CLEAN", "N",
             "-CHECKIMAGE_TYPE", "BACKGROUND,BACKGROUND_RMS,SEGMENTATION",
             "-CHECKIMAGE_NAME", f"{d}/back.fits,{d}/rms.fits,{d}/seg.fits",
             "-VERBOSE_TYPE", "QUIET", "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw"], cwd=cfg, check=True)
        fits_to_csv(f"{d}/cat.fits", f"{out}/{name}.sex_nodeblend.csv")
        s = slice(None, None, subsample)
        gz_write(fits.getdata(f"{d}/back.fits")[s, s], f"{out}/{name}.sex_back.fits.gz", np.float32)
        gz_write(fits.getdata(f"{d}/rms.fits")[s, s], f"{out}/{name}.sex_rms.fits.gz", np.float32)
        gz_write(fits.getdata(f"{d}/seg.fits"), f"{out}/{name}.sex_seg.fits.gz", np.int32)


def full_csv(cat_fits, csv_path, columns=None):
    """A FITS_1.0 catalog as CSV with vectors as NAME_1..n and every value as the
    shortest decimal of its float64 (a float32 is written as its exact float64), as
    shared/data's refs are; gzipped when csv_path ends in .gz. columns: keep only those
    (after flattening)."""
    t = fits.getdata(cat_fits, 2 if len(fits.open(cat_fits)) > 2 else 1)
    names, values = [], []
    for c in t.columns.names:
        v = np.asarray(t[c])
        if v.ndim == 2:
            for k in range(v.shape[1]):
                names.append(f"{c}_{k + 1}")
                values.append(v[:, k])
        else:
            names.append(c)
            values.append(v)
    keep = [i for i, n in enumerate(names) if columns is None or n in columns]
    lines = [",".join(names[i] for i in keep)]
    for r in range(len(t)):
        lines.append(",".join(
            str(int(values[i][r])) if values[i].dtype.kind in "iu" else repr(float(values[i][r]))
            for i in keep))
    text = "\n".join(lines) + "\n"
    if csv_path.endswith(".gz"):
        with gzip.open(csv_path, "wt", 9) as f:
            f.write(text)
    else:
        with open(csv_path, "w") as f:
            f.write(text)


def bench_param():
    """oracle_full.param without the world columns (79 names; WCS is not skysift's yet)."""
    with open(f"{cfg}/oracle_full.param") as f:
        return [l.strip() for l in f if l.strip() and "WORLD" not in l and "J2000" not in l
                and "_SKY" not in l]


def run_sex_full(image, name, suffix, extra=()):
    """SExtractor with oracle_full.sex and the 79 non-world parameters of
    oracle_full.param on IMAGE: <name>.sex_full_<suffix>.csv."""
    with tempfile.TemporaryDirectory() as d:
        for f in os.listdir(cfg):
            shutil.copy(f"{cfg}/{f}", d)
        with open(f"{d}/bench.param", "w") as f:
            f.write("\n".join(bench_param()) + "\n")
        subprocess.run(
            ["source-extractor", image, "-c", "oracle_full.sex", "-PARAMETERS_NAME", "bench.param",
             "-CATALOG_TYPE", "FITS_1.0", "-CATALOG_NAME", f"{d}/cat.fits", "-VERBOSE_TYPE", "QUIET",
             "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw", *extra], cwd=d, check=True)
        full_csv(f"{d}/cat.fits", f"{out}/{name}.sex_full_{suffix}.csv")


NODEBLEND = ("-DEBLEND_MINCONT", "1", "-CLEAN", "N")


def full_refs():
    """The photometry references besides sep_image.sex_full_nodeblend.csv."""
    # emmi_galaxies: shared/data's own run, trimmed to the 79 non-world columns, gzipped.
    import csv
    keep = None
    src = f"{shared}/refs/emmi_galaxies/sextractor_full_nodeblend.csv"
    with open(src) as fi, gzip.open(f"{out}/emmi_galaxies.sex_full_nodeblend.csv.gz", "wt", 9) as fo:
        r = csv.reader(fi)
        head = next(r)
        keep = [i for i, n in enumerate(head) if "WORLD" not in n and "J2000" not in n and "_SKY" not in n]
        w = csv.writer(fo, lineterminator="\n")
        w.writerow([head[i] for i in keep])
        for row in r:
            w.writerow([row[i] for i in keep])
    run_sex_full(f"{out}/sim_crop.fits", "sim_crop", "nodeblend", NODEBLEND)
    run_sex_full(f"{out}/sim_crop.fits", "sim_crop", "masknone_nodeblend", NODEBLEND + ("-MASK_TYPE", "NONE"))
    run_sex_full(f"{out}/sim_crop.fits", "sim_crop", "maskblank_nodeblend", NODEBLEND + ("-MASK_TYPE", "BLANK"))
    run_sex_full(f"{out}/sim_masked_crop.fits", "sim_masked_crop", "nodeblend", NODEBLEND)
    run_sex_full(f"{out}/sim_crop.fits", "sim_crop", "deblend")
    run_sex_full(f"{out}/sep_image.fits", "sep_image", "deblend")


def format_refs():
    """The multi-extension image and SExtractor's LDAC and SkyCat catalogs."""
    d0 = fits.getdata(f"{out}/sep_image.fits").astype(np.float32)
    exts = [d0, d0[::-1, :], d0.T[:, :200]]
    hdus = [fits.PrimaryHDU()]
    for i, d in enumerate(exts):
        h = fits.ImageHDU(np.ascontiguousarray(d), name=f"CCD{i + 1}")
        h.header["GAIN"] = (1.0 + i, "test")
        hdus.append(h)
    fits.HDUList(hdus).writeto(f"{out}/mef3.fits.gz", overwrite=True)
    with tempfile.TemporaryDirectory() as d:
        for f in os.listdir(cfg):
            shutil.copy(f"{cfg}/{f}", d)
        for f in ("mef.param", "skycat.param"):
            shutil.copy(f"{out}/config/{f}", d)
        with gzip.open(f"{out}/mef3.fits.gz") as fi, open(f"{d}/mef3.fits", "wb") as fo:
            shutil.copyfileobj(fi, fo)
        subprocess.run(["source-extractor", "mef3.fits", "-c", "oracle.sex", "-PARAMETERS_NAME", "mef.param",
                        "-CATALOG_TYPE", "FITS_LDAC", "-CATALOG_NAME", f"{out}/mef3.sex_nodeblend.ldac",
                        "-VERBOSE_TYPE", "QUIET", *NODEBLEND], cwd=d, check=True)
        subprocess.run(["source-extractor", "mef3.fits", "-c", "oracle.sex", "-PARAMETERS_NAME", "mef.param",
                        "-CATALOG_TYPE", "FITS_LDAC", "-CATALOG_NAME", f"{out}/mef3.sex_deblend.ldac",
                        "-VERBOSE_TYPE", "QUIET"], cwd=d, check=True)
        subprocess.run(["source-extractor", f"{out}/sep_image.fits", "-c", "oracle.sex", "-PARAMETERS_NAME",
                        "skycat.param", "-PHOT_APERTURES", "5,10", "-CATALOG_TYPE", "ASCII_SKYCAT",
                        "-CATALOG_NAME", f"{out}/sep_image.sex_nodeblend.skycat", "-VERBOSE_TYPE", "QUIET",
                        *NODEBLEND], cwd=d, check=True)


WORLD_VARIANTS = {
    # suffix: cards of an external header (HEADER_SUFFIX) over the crop's own TAN WCS.
    "": None,
    ".fk5_1950.head": [("RADESYS", "'FK5'"), ("EQUINOX", "1950.0")],
    ".galactic.head": [("CTYPE1", "'GLON-TAN'"), ("CTYPE2", "'GLAT-TAN'"), ("CRVAL1", "120.5"),
                       ("CRVAL2", "35.25")],
    ".tpv.head": [("CTYPE1", "'RA---TPV'"), ("CTYPE2", "'DEC--TPV'"), ("PV1_0", "0.0"),
                  ("PV1_1", "1.0"), ("PV1_4", "0.5"), ("PV1_7", "60.0"), ("PV2_0", "0.0"),
                  ("PV2_1", "1.0"), ("PV2_6", "-0.4"), ("PV2_10", "40.0")],
}


def wcs_refs():
    """weighted_crop.fits: the central 320x320 of sim_weighted_1024 (its rotated TAN
    WCS, CRPIX moved), external headers for three variants, and SExtractor's world
    columns for each (tests/data/config/world.param): weighted_crop.sex_world<suffix>.csv."""
    from astropy.wcs import WCS
    hdu = fits.open(f"{shared}/images/sim_weighted_1024.fits")[0]
    y0, x0, n = 352, 352, 320
    data = np.asarray(hdu.data[y0:y0 + n, x0:x0 + n], dtype=np.float32)
    h = WCS(hdu.header)[y0:y0 + n, x0:x0 + n].to_header()
    for k in ("RADESYS", "EQUINOX"):
        h[k] = hdu.header[k]
    fits.PrimaryHDU(data, header=h).writeto(f"{out}/weighted_crop.fits", overwrite=True)
    for suffix, cards in WORLD_VARIANTS.items():
        if cards:
            with open(f"{out}/weighted_crop{suffix}", "w") as f:
                for k, v in cards:
                    f.write(f"{k:<8}= {v:>20}\n")
                f.write("END\n")
        with tempfile.TemporaryDirectory() as d:
            for f in os.listdir(cfg):
                shutil.copy(f"{cfg}/{f}", d)
            shutil.copy(f"{out}/config/world.param", d)
            subprocess.run(
                ["source-extractor", f"{out}/weighted_crop.fits", "-c", "oracle_full.sex",
                 "-PARAMETERS_NAME", "world.param", "-CATALOG_TYPE", "FITS_1.0", "-CATALOG_NAME",
                 f"{d}/cat.fits", "-VERBOSE_TYPE", "QUIET", "-HEADER_SUFFIX", suffix or ".nohead",
                 "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw"], cwd=d, check=True)
            name = suffix.replace(".head", "").replace(".", "_")
            full_csv(f"{d}/cat.fits", f"{out}/weighted_crop.sex_world{name}.csv")


FLAG_RUNS = {"or": ("OR",), "min_max": ("MIN", "MAX"), "and_most": ("AND", "MOST")}


def flag_refs():
    """weighted_crop.flag.fits: the same crop of sim_weighted_1024.flag.fits.gz (int16),
    with a pattern of mixed values (-1 among them) over its upper right part,
    and SExtractor's IMAFLAGS_ISO/NIMAFLAGS_ISO with it for each FLAG_TYPE
    (weighted_crop.sex_flags_<types>.csv; two types: the map given twice)."""
    y0, x0, n = 352, 352, 320
    flag = fits.getdata(f"{shared}/images/sim_weighted_1024.flag.fits.gz")
    crop = np.ascontiguousarray(flag[y0:y0 + n, x0:x0 + n]).astype(np.int16)
    # Over the map's rectangles, a pattern of mixed values (-1 included, 65535 as
    # SExtractor reads it) so that OR, MIN, MAX and MOST differ within objects.
    yy, xx = np.mgrid[0:n, 0:n]
    levels = np.array([0, 1, 2, 4, 8, -1, 3, 2, 2], dtype=np.int16)
    pattern = levels[(xx * 3 + yy * 5 + (xx * yy) % 7) % len(levels)]
    crop = np.where(xx + yy > n // 2, pattern, crop).astype(np.int16)
    fits.PrimaryHDU(crop).writeto(f"{out}/weighted_crop.flag.fits", overwrite=True)
    for name, types in FLAG_RUNS.items():
        with tempfile.TemporaryDirectory() as d:
            for f in os.listdir(cfg):
                shutil.copy(f"{cfg}/{f}", d)
            k = len(types)
            with open(f"{d}/flag.param", "w") as f:
                f.write(f"NUMBER\nX_IMAGE\nY_IMAGE\nISOAREA_IMAGE\nIMAFLAGS_ISO({k})\nNIMAFLAGS_ISO({k})\n")
            maps = ",".join([f"{out}/weighted_crop.flag.fits"] * k)
            subprocess.run(
                ["source-extractor", f"{out}/weighted_crop.fits", "-c", "oracle_full.sex",
                 "-PARAMETERS_NAME", "flag.param", "-CATALOG_TYPE", "FITS_1.0", "-CATALOG_NAME",
                 f"{d}/cat.fits", "-VERBOSE_TYPE", "QUIET", "-FLAG_IMAGE", maps, "-FLAG_TYPE",
                 ",".join(types)], cwd=d, check=True)
            full_csv(f"{d}/cat.fits", f"{out}/weighted_crop.sex_flags_{name}.csv")


def dual_refs():
    """dual_det.fits, dual_meas.fits: the central 320x320 of the sim_dual_1024 pair
    (their TAN WCS, CRPIX moved), and SExtractor's dual-image catalog of them with
    oracle_full.sex and oracle_full.param: dual.sex_full.csv."""
    from astropy.wcs import WCS
    y0, x0, n = 352, 352, 320
    for band in ("det", "meas"):
        hdu = fits.open(f"{shared}/images/sim_dual_{band}_1024.fits")[0]
        h = WCS(hdu.header)[y0:y0 + n, x0:x0 + n].to_header()
        for k in ("RADESYS", "EQUINOX"):
            h[k] = hdu.header[k]
        data = np.asarray(hdu.data[y0:y0 + n, x0:x0 + n], dtype=np.float32)
        fits.PrimaryHDU(data, header=h).writeto(f"{out}/dual_{band}.fits", overwrite=True)
    with tempfile.TemporaryDirectory() as d:
        for f in os.listdir(cfg):
            shutil.copy(f"{cfg}/{f}", d)
        subprocess.run(
            ["source-extractor", f"{out}/dual_det.fits,{out}/dual_meas.fits", "-c",
             "oracle_full.sex", "-CATALOG_TYPE", "FITS_1.0", "-CATALOG_NAME", f"{d}/cat.fits",
             "-VERBOSE_TYPE", "QUIET"], cwd=d, check=True)
        full_csv(f"{d}/cat.fits", f"{out}/dual.sex_full.csv")


def main():
    shutil.copy(f"{shared}/images/sep_image.fits", f"{out}/sep_image.fits")
    run_sex(f"{out}/sep_image.fits", "sep_image")
    with open(f"{shared}/images/emmi_galaxies.fits", "rb") as fi, gzip.open(f"{out}/emmi_galaxies.fits.gz", "wb", 9) as fo:
        shutil.copyfileobj(fi, fo)
    run_sex(f"{shared}/images/emmi_galaxies.fits", "emmi_galaxies", subsample=4)
    for src, name in (("sim_1024", "sim_crop"), ("sim_masked_1024", "sim_masked_crop")):
        data = fits.getdata(f"{shared}/images/{src}.fits")[:512, :512]
        fits.PrimaryHDU(np.asarray(data, dtype=np.float32)).writeto(f"{out}/{name}.fits", overwrite=True)
        if src == "sim_masked_1024":
            m = fits.getdata(f"{shared}/images/{src}.mask.fits")[:512, :512]
            fits.PrimaryHDU(np.asarray(m, dtype=np.uint8)).writeto(f"{out}/{name}.mask.fits", overwrite=True)
        run_sex(f"{out}/{name}.fits", name)
    run_sex_deblend(f"{out}/sep_image.fits", "sep_image")
    run_sex_deblend(f"{shared}/images/emmi_galaxies.fits", "emmi_galaxies")
    run_sex_deblend(f"{out}/sim_crop.fits", "sim_crop")
    run_sex_deblend(f"{out}/sim_masked_crop.fits", "sim_masked_crop")
    sep_matched()
    full_refs()
    format_refs()
    memory_refs()
    wcs_refs()
    flag_refs()
    dual_refs()
    print("done")

# sim_crop.truth.csv: the rows of shared/data/images/sim_1024.truth.csv with
# x <= 512.5 and y <= 512.5 (1-based centres inside the crop), columns id, type,
# x, y, flux, peak.

# sep_image.sep_matched.csv: SEP 1.4.1 (pip install sep) with its matched filter on
# sep_image.fits: Background(bw=bh=64, fw=fh=3), extract(data - back, 1.5,
# err=bkg.rms(), minarea=5, filter_kernel=[[1,2,1],[2,4,2],[1,2,1]],
# filter_type='matched', deblend_cont=1.0, clean=False); columns X_IMAGE, Y_IMAGE
# (1-based), ISOAREAF_IMAGE (npix), FLUX_ISO (flux).
def sep_matched():
    import sep
    data = np.ascontiguousarray(fits.getdata(f"{out}/sep_image.fits").astype(np.float32))
    bkg = sep.Background(data, bw=64, bh=64, fw=3, fh=3)
    k = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32)
    o = sep.extract(data - bkg.back(), 1.5, err=bkg.rms(), minarea=5, filter_kernel=k,
                    filter_type="matched", deblend_cont=1.0, clean=False)
    with open(f"{out}/sep_image.sep_matched.csv", "w") as f:
        f.write("X_IMAGE,Y_IMAGE,ISOAREAF_IMAGE,FLUX_ISO\n")
        for r in o:
            f.write(f"{float(r['x']) + 1!r},{float(r['y']) + 1!r},{int(r['npix'])},{float(r['flux'])!r}\n")


if __name__ == "__main__":
    if "--sep-only" in sys.argv:
        sep_matched()
    elif "--full-only" in sys.argv:
        full_refs()
    elif "--formats-only" in sys.argv:
        format_refs()
    elif "--memory-only" in sys.argv:
        memory_refs()
    elif "--wcs-only" in sys.argv:
        wcs_refs()
    elif "--flags-only" in sys.argv:
        flag_refs()
    elif "--dual-only" in sys.argv:
        dual_refs()
    else:
        main()
