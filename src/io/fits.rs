//! FITS images in and out, and FITS binary-table catalogs, through cfitsio (bundled).
//!
//! A few cfitsio calls are made directly (fitsio does not wrap them): files are
//! opened and created with `ffdkopn`/`ffdkinit`, which take the name as it is (never
//! cfitsio's extended syntax `file[1]`, `!file`), and pixels are read with `ffgpv` and
//! a NaN null value, so that integer BLANK pixels become NaN. Each unsafe block passes
//! pointers to live, correctly sized buffers and a `fitsfile` that fitsio owns.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::image::Image;
use fitsio::hdu::HduInfo;
use fitsio::FitsFile;
use std::path::{Path, PathBuf};

/// HDU selection parsed from `file.fits[N]` or `file.fits[NAME]`.
enum HduSel {
    First2d,
    Index(usize),
    Name(String),
}

/// A file that exists under the whole name is that file (`br[1].fits` included);
/// only otherwise is a trailing `[N]` or `[NAME]` an HDU selection.
fn parse_spec(spec: &str) -> (PathBuf, HduSel) {
    if spec.ends_with(']') && !Path::new(spec).exists() {
        if let Some(open) = spec.rfind('[') {
            let inner = &spec[open + 1..spec.len() - 1];
            let path = PathBuf::from(&spec[..open]);
            let sel = match inner.trim().parse::<usize>() {
                Ok(n) => HduSel::Index(n),
                Err(_) => HduSel::Name(inner.trim().to_string()),
            };
            return (path, sel);
        }
    }
    (PathBuf::from(spec), HduSel::First2d)
}

/// The images a specification stands for, as SExtractor reads a multi-extension
/// file: a plain name whose file holds more than one 2-D image HDU is each of them,
/// in order (`file.fits[1]`, `file.fits[2]`, ...); anything else (a single image, an
/// explicit `[N]` or `[NAME]`) is itself.
pub fn image_extensions(spec: &str) -> Vec<String> {
    let (path, sel) = parse_spec(spec);
    let one = || vec![spec.to_string()];
    if !matches!(sel, HduSel::First2d) || !path.is_file() || super::is_tiff(spec) {
        return one();
    }
    // A file that cannot be read is one image: reading it says what is wrong, at its
    // turn among the images.
    let Ok(mut f) = open_disk(&path) else {
        return one();
    };
    let Ok(images) = image_hdus(&mut f) else {
        return one();
    };
    let found: Vec<usize> = images
        .iter()
        .filter(|(_, shape)| shape_2d(shape).is_some())
        .map(|&(i, _)| i)
        .collect();
    if found.len() <= 1 {
        return one();
    }
    found.iter().map(|i| format!("{spec}[{i}]")).collect()
}

/// Every image HDU of a file (tables left out): its index and shape (slowest axis
/// first; empty for a header-only HDU).
fn image_hdus(
    f: &mut FitsFile,
) -> std::result::Result<Vec<(usize, Vec<usize>)>, fitsio::errors::Error> {
    let mut out = Vec::new();
    for i in 0..f.num_hdus()? {
        if let HduInfo::ImageInfo { shape, .. } = f.hdu(i)?.info {
            out.push((i, shape));
        }
    }
    Ok(out)
}

/// The file an image specification names (`file.fits[1]` → `file.fits`).
pub fn file_of(spec: &str) -> PathBuf {
    parse_spec(spec).0
}

/// A cfitsio error in words, with what its status usually means.
fn fitsio_message(e: &fitsio::errors::Error) -> String {
    let msg = e.to_string();
    let status = match e {
        fitsio::errors::Error::Fits(f) => f.status,
        _ => 0,
    };
    let hint = match status {
        106 => " (a write failed: is the disk full, or the file system read-only?)",
        107 | 108 => " (the file looks truncated)",
        _ if msg.contains("END_OF_FILE") || msg.contains("end of file") => {
            " (the file looks truncated)"
        }
        _ => "",
    };
    format!("{}{hint}", msg.trim())
}

/// The error of a failed write of output `path`: a cfitsio write error (status 106)
/// says what the file system reports (space left, or read-only), which cfitsio does
/// not.
fn write_err(path: &Path, e: &fitsio::errors::Error) -> Error {
    let status = match e {
        fitsio::errors::Error::Fits(f) => f.status,
        _ => 0,
    };
    if status != 106 {
        return Error::output(path, fitsio_message(e));
    }
    let folder = super::output::folder_of(path);
    let why = match free_space(&folder) {
        Some((_, true)) => format!("the file system of {} is read-only", folder.display()),
        Some((free, false)) if free < 16 << 20 => format!(
            "the disk is full: {} has {:.1} MiB free; free some space or write the file elsewhere",
            folder.display(),
            free as f64 / 1048576.0
        ),
        _ => "cfitsio's write failed (status 106)".to_string(),
    };
    Error::output(path, format!("cannot write the FITS image: {why}"))
}

/// Free bytes for an unprivileged writer and whether the file system is read-only.
fn free_space(folder: &Path) -> Option<(u64, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(folder.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((
        s.f_bavail as u64 * s.f_frsize as u64,
        s.f_flag & libc::ST_RDONLY != 0,
    ))
}

fn fits_err(path: &Path, e: fitsio::errors::Error) -> Error {
    Error::input(path, format!("cannot read FITS: {}", fitsio_message(&e)))
}

/// The error of a raw cfitsio call's status.
fn status_err(status: i32) -> fitsio::errors::Error {
    let mut buf = [0 as std::os::raw::c_char; 31];
    unsafe { fitsio::sys::ffgerr(status, buf.as_mut_ptr()) };
    let message = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    fitsio::errors::Error::Fits(fitsio::errors::FitsError { status, message })
}

fn c_path(path: &Path) -> std::result::Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "the file name holds a NUL byte".to_string())
}

/// Opens a FITS file for reading by its name alone: cfitsio's extended file-name
/// syntax (`[1]`, `[x>5]`, `!`, `mem://`) is never applied to it.
fn open_disk(path: &Path) -> Result<FitsFile> {
    let c = c_path(path).map_err(|e| Error::input(path, e))?;
    let mut fptr = std::ptr::null_mut();
    let mut status = 0;
    unsafe { fitsio::sys::ffdkopn(&mut fptr, c.as_ptr(), 0, &mut status) };
    if status != 0 {
        if !fptr.is_null() {
            let mut s2 = 0;
            unsafe { fitsio::sys::ffclos(fptr, &mut s2) };
        }
        return Err(fits_err(path, status_err(status)));
    }
    unsafe { FitsFile::from_raw(fptr, fitsio::FileOpenMode::READONLY) }
        .map_err(|e| fits_err(path, e))
}

/// Creates a new FITS file by its name alone (no extended file-name syntax) with a
/// `width` x `height` primary image of 32-bit floats or integers.
fn create_disk_image(
    path: &Path,
    width: usize,
    height: usize,
    integer: bool,
) -> std::result::Result<FitsFile, String> {
    let c = c_path(path)?;
    let mut fptr = std::ptr::null_mut();
    let mut status = 0;
    let mut naxes = [
        width as std::os::raw::c_long,
        height as std::os::raw::c_long,
    ];
    let bitpix = if integer { 32 } else { -32 };
    unsafe {
        fitsio::sys::ffdkinit(&mut fptr, c.as_ptr(), &mut status);
        if status == 0 {
            fitsio::sys::ffcrim(fptr, bitpix, 2, naxes.as_mut_ptr(), &mut status);
        }
    }
    if status != 0 {
        if !fptr.is_null() {
            let mut s2 = 0;
            unsafe { fitsio::sys::ffclos(fptr, &mut s2) };
        }
        return Err(fitsio_message(&status_err(status)));
    }
    unsafe { FitsFile::from_raw(fptr, fitsio::FileOpenMode::READWRITE) }
        .map_err(|e| fitsio_message(&e))
}

/// The 2-D shape (width, height) of an image HDU, if it is one: axes of length 1
/// beyond the second are accepted.
fn shape_2d(shape: &[usize]) -> Option<(usize, usize)> {
    let n = shape.len();
    if n < 2 || shape.contains(&0) {
        return None;
    }
    // fitsio lists axes slowest first: [.., NAXIS2, NAXIS1].
    if shape[..n - 2].iter().all(|&s| s == 1) {
        Some((shape[n - 1], shape[n - 2]))
    } else {
        None
    }
}

/// How the pixels of an image HDU are stored and turned into f32.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// BITPIX (of the uncompressed image).
    bitpix: i64,
    /// (BSCALE, BZERO) of an integer image that needs SExtractor's f32 scaling.
    scaling: Option<(f64, f64)>,
    /// A float image with BSCALE/BZERO: cfitsio scales it in f64, which is read as
    /// f64 so that values beyond f32 are an error, not infinities.
    float_scaled: bool,
}

/// An opened image HDU.
struct Opened {
    file: FitsFile,
    /// 1-based HDU number (cfitsio's).
    hdu_num: i32,
    width: usize,
    height: usize,
    path: PathBuf,
    layout: Layout,
}

/// Bytes cfitsio can read from `path`: the file's length, or for a gzip file the
/// uncompressed length its trailer records (modulo 2^32), with None when unknown.
fn readable_bytes(path: &Path) -> Option<(u64, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = std::fs::metadata(path).ok()?.len();
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() {
        return Some((len, false));
    }
    match magic {
        [0x1f, 0x8b, ..] => {
            f.seek(SeekFrom::End(-4)).ok()?;
            let mut isize = [0u8; 4];
            f.read_exact(&mut isize).ok()?;
            Some((u32::from_le_bytes(isize) as u64, true))
        }
        [0x1f, 0x9d, ..] | [b'P', b'K', 3, 4] | [b'B', b'Z', b'h', _] => None,
        _ => Some((len, false)),
    }
}

/// Refuses an HDU whose header promises more data than the file holds (a lying or
/// truncated header), before any pixel buffer is allocated.
fn check_declared_size(o: &mut Opened) -> Result<()> {
    let (mut head, mut start, mut end, mut status) = (0i64, 0i64, 0i64, 0);
    unsafe {
        fitsio::sys::ffghadll(
            o.file.as_raw(),
            &mut head,
            &mut start,
            &mut end,
            &mut status,
        )
    };
    if status != 0 {
        return Err(fits_err(&o.path, status_err(status)));
    }
    let Some((have, gzip)) = readable_bytes(&o.path) else {
        return Ok(());
    };
    let end = end as u64;
    // A gzip trailer gives the size modulo 2^32: exact below 4 GiB, else only the
    // deflate ratio (at most 1032:1) bounds it.
    let short = if gzip {
        let compressed = std::fs::metadata(&o.path).map_or(0, |m| m.len());
        if end < (1u64 << 32) {
            end > have
        } else {
            end > compressed.saturating_mul(1100)
        }
    } else {
        end > have
    };
    if short {
        return Err(Error::input(
            &o.path,
            format!(
                "the header declares a {}x{} image of BITPIX {} ({} bytes of data from byte {start}), \
                 but the file holds only {have} bytes{}: the header is wrong or the file is truncated",
                o.width,
                o.height,
                o.layout.bitpix,
                end.saturating_sub(start as u64),
                if gzip { " once uncompressed" } else { "" }
            ),
        ));
    }
    Ok(())
}

/// Reads a 2-D FITS image as f32 (BSCALE/BZERO applied; BLANK and NaN pixels as NaN;
/// every BITPIX; gzip and tile-compressed files). `spec` may select an HDU:
/// `file.fits[1]` (0 = primary) or `file.fits[SCI]`; the default is the first HDU
/// holding a 2-D image.
pub fn read_fits_image(spec: &str) -> Result<Image> {
    let mut o = open_image_hdu(spec)?;
    let n = o
        .width
        .checked_mul(o.height)
        .filter(|&n| n <= isize::MAX as usize / 4);
    let Some(n) = n else {
        return Err(Error::input(
            &o.path,
            format!("a {}x{} image is too large to address", o.width, o.height),
        ));
    };
    super::check_memory(
        &o.path,
        o.width,
        o.height,
        n as f64 * 4.0,
        "stream it with --memory-limit MIB",
    )?;
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(n).map_err(|_| {
        Error::input(
            &o.path,
            format!(
                "cannot allocate {:.1} GiB for a {}x{} image: stream it with --memory-limit MIB",
                n as f64 * 4.0 / 1073741824.0,
                o.width,
                o.height
            ),
        )
    })?;
    data.resize(n, 0.0);
    read_pixels(&mut o.file, o.hdu_num, o.layout, o.width, 0, &mut data)
        .map_err(|e| Error::input(&o.path, e))?;
    Image::new(o.width, o.height, data).map_err(|e| Error::input(&o.path, e.to_string()))
}

/// The numeric values of header keywords `keys` (None: not asked) of the image HDU
/// `spec` selects (as [`read_fits_image`] does), each None when the header has no
/// such keyword or it is not a number (SATUR_KEY and GAIN_KEY: SExtractor then keeps
/// its configuration's value). The file is opened once.
pub fn header_numbers<const N: usize>(
    spec: &str,
    keys: [Option<&str>; N],
) -> Result<[Option<f64>; N]> {
    if keys.iter().all(Option::is_none) {
        return Ok([None; N]);
    }
    let mut o = open_image_hdu(spec)?;
    let hdu = o
        .file
        .hdu(o.hdu_num as usize - 1)
        .map_err(|e| fits_err(&o.path, e))?;
    Ok(keys.map(|k| {
        k.and_then(|k| hdu.read_key::<f64>(&mut o.file, k).ok())
            .filter(|v| v.is_finite())
    }))
}

/// The header of the image HDU `spec` selects, as its 80-character cards (without
/// END): what a FITS_LDAC catalog's LDAC_IMHEAD holds.
pub fn header_cards(spec: &str) -> Result<Vec<String>> {
    use fitsio::sys;
    let mut o = open_image_hdu(spec)?;
    let fptr = unsafe { o.file.as_raw() };
    let (mut status, mut hdutype, mut nkeys) = (0, 0, 0);
    let mut text: *mut std::os::raw::c_char = std::ptr::null_mut();
    unsafe {
        sys::ffmahd(fptr, o.hdu_num, &mut hdutype, &mut status);
        sys::ffhdr2str(
            fptr,
            0,
            std::ptr::null_mut(),
            0,
            &mut text,
            &mut nkeys,
            &mut status,
        );
    }
    if status != 0 || text.is_null() {
        return Err(Error::input(
            &o.path,
            format!("cannot read its header (cfitsio status {status})"),
        ));
    }
    let bytes = unsafe { std::ffi::CStr::from_ptr(text) }
        .to_bytes()
        .to_vec();
    unsafe { sys::fffree(text as *mut std::os::raw::c_void, &mut status) };
    Ok(bytes
        .chunks(80)
        .map(|c| format!("{:<80}", String::from_utf8_lossy(c)))
        .filter(|c| !c.starts_with("END     ") && c.trim() != "END")
        .collect())
}

/// What the WCS of the image HDU `spec` selects is made of: its header cards, its
/// ordinal among the file's image HDUs of two or more axes (1-based: the block of an
/// external `.head` file that serves it) and its width and height.
pub fn header_for_wcs(spec: &str) -> Result<(Vec<String>, usize, [usize; 2])> {
    let cards = header_cards(spec)?;
    let o = open_image_hdu(spec)?;
    let (w, h, num, path) = (o.width, o.height, o.hdu_num as usize, o.path);
    let mut f = o.file;
    let images = image_hdus(&mut f).map_err(|e| fits_err(&path, e))?;
    let ordinal = images
        .iter()
        .filter(|(i, shape)| *i < num && shape.len() >= 2)
        .count()
        .max(1);
    Ok((cards, ordinal, [w, h]))
}

/// Reads `out.len()` pixels from pixel `first` (0-based, row-major) of the HDU as f32:
/// integer BLANK pixels and NaN become NaN, scaled integers are scaled in f32 as
/// SExtractor does, and 64-bit floats beyond f32's range are an error.
fn read_pixels(
    file: &mut FitsFile,
    hdu_num: i32,
    layout: Layout,
    width: usize,
    first: usize,
    out: &mut [f32],
) -> std::result::Result<(), String> {
    use fitsio::sys;
    let fptr = unsafe { file.as_raw() };
    let mut status = 0;
    let mut hdutype = 0;
    unsafe { sys::ffmahd(fptr, hdu_num, &mut hdutype, &mut status) };
    let as_f64 = layout.scaling.is_some() || layout.bitpix == -64 || layout.float_scaled;
    let beyond = |v: f64, at: usize| {
        format!(
            "pixel ({}, {}) is {v:e}, beyond the range of 32-bit floats (±3.4e38) in which \
             skysift works, as SExtractor does: rescale the image first (check BSCALE and BZERO)",
            at % width.max(1) + 1,
            at / width.max(1) + 1
        )
    };
    // f64 values go through a bounded buffer.
    const CHUNK: usize = 1 << 20;
    let mut buf: Vec<f64> = Vec::new();
    let mut done = 0;
    while done < out.len() && status == 0 {
        let n = if as_f64 {
            (out.len() - done).min(CHUNK)
        } else {
            out.len() - done
        };
        let firstelem = (first + done + 1) as i64;
        let mut anynul = 0;
        if as_f64 {
            buf.resize(n, 0.0);
            let mut nul = f64::NAN;
            unsafe {
                sys::ffgpv(
                    fptr,
                    82, // TDOUBLE
                    firstelem,
                    n as i64,
                    &mut nul as *mut f64 as *mut _,
                    buf.as_mut_ptr() as *mut _,
                    &mut anynul,
                    &mut status,
                )
            };
            if status != 0 {
                break;
            }
            let dst = &mut out[done..done + n];
            match layout.scaling {
                Some((bscale, bzero)) => {
                    for (k, (d, &v)) in dst.iter_mut().zip(&buf).enumerate() {
                        *d = scale_f32(v, bscale, bzero);
                        if d.is_infinite() {
                            return Err(beyond(v, first + done + k));
                        }
                    }
                }
                None => {
                    for (k, (d, &v)) in dst.iter_mut().zip(&buf).enumerate() {
                        if v.is_finite() && v.abs() > f32::MAX as f64 {
                            return Err(beyond(v, first + done + k));
                        }
                        *d = v as f32;
                    }
                }
            }
        } else {
            let mut nul = f32::NAN;
            unsafe {
                sys::ffgpv(
                    fptr,
                    42, // TFLOAT
                    firstelem,
                    n as i64,
                    &mut nul as *mut f32 as *mut _,
                    out[done..].as_mut_ptr() as *mut _,
                    &mut anynul,
                    &mut status,
                )
            };
        }
        done += n;
    }
    if status != 0 {
        return Err(format!(
            "cannot read FITS: {}",
            fitsio_message(&status_err(status))
        ));
    }
    Ok(())
}

/// Opens the selected 2-D image HDU and checks its header against the file.
fn open_image_hdu(spec: &str) -> Result<Opened> {
    let (path, sel) = parse_spec(spec);
    if !path.exists() {
        return Err(Error::input(&path, "no such file"));
    }
    if path.is_dir() {
        return Err(Error::input(&path, "is a directory, not a FITS image"));
    }
    let mut f = open_disk(&path)?;
    let (hdu, index) = match sel {
        HduSel::Index(i) => {
            let n = f.num_hdus().map_err(|e| fits_err(&path, e))?;
            if i >= n {
                return Err(Error::input(
                    &path,
                    format!("HDU [{i}] requested, but the file has {n} HDU(s) (numbered from 0)"),
                ));
            }
            (f.hdu(i).map_err(|e| fits_err(&path, e))?, i)
        }
        HduSel::Name(name) => {
            let h = f
                .hdu(name.as_str())
                .map_err(|_| Error::input(&path, format!("no HDU named '{name}'")))?;
            let mut num = 0;
            unsafe { fitsio::sys::ffghdn(f.as_raw(), &mut num) };
            (h, (num.max(1) - 1) as usize)
        }
        HduSel::First2d => {
            let images = image_hdus(&mut f).map_err(|e| fits_err(&path, e))?;
            match images.iter().find(|(_, shape)| shape_2d(shape).is_some()) {
                Some(&(i, _)) => (f.hdu(i).map_err(|e| fits_err(&path, e))?, i),
                None if images.iter().all(|(_, shape)| shape.is_empty()) => {
                    return Err(Error::input(
                        &path,
                        "the file holds no image (no HDU with NAXIS >= 2)",
                    ))
                }
                None => {
                    return Err(Error::input(
                        &path,
                        format!(
                            "no 2-D image found ({}); skysift needs a 2-D image: \
                             select a plane or extension first",
                            images
                                .iter()
                                .filter(|(_, shape)| !shape.is_empty())
                                .map(|(i, shape)| format!("HDU {i} has shape {shape:?}"))
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    ))
                }
            }
        }
    };
    let shape = match &hdu.info {
        HduInfo::ImageInfo { shape, .. } => shape.clone(),
        _ => {
            return Err(Error::input(
                &path,
                "the selected HDU is a table, not an image",
            ))
        }
    };
    let (w, h) = shape_2d(&shape).ok_or_else(|| {
        Error::input(
            &path,
            format!(
                "the selected HDU is not a 2-D image (NAXIS = {}, shape {:?}); \
                 a 3-D cube must be cut to one plane first",
                shape.len(),
                shape
            ),
        )
    })?;
    let layout = layout_of(&mut f, &hdu).map_err(|e| Error::input(&path, e))?;
    let mut o = Opened {
        file: f,
        hdu_num: index as i32 + 1,
        width: w,
        height: h,
        path,
        layout,
    };
    check_declared_size(&mut o)?;
    Ok(o)
}

/// A FITS image read row by row (streaming): only the rows asked for are in memory.
pub struct FitsRows {
    /// fitsio's Send wrapper (a mutex around the handle), so that streaming can read
    /// strips on a second thread; only that thread uses it.
    file: fitsio::threadsafe_fitsfile::ThreadsafeFitsFile,
    hdu_num: i32,
    width: usize,
    height: usize,
    path: PathBuf,
    layout: Layout,
}

impl FitsRows {
    /// Opens `spec` (same syntax as [`read_fits_image`]).
    pub fn open(spec: &str) -> Result<Self> {
        let o = open_image_hdu(spec)?;
        Ok(FitsRows {
            file: o.file.threadsafe(),
            hdu_num: o.hdu_num,
            width: o.width,
            height: o.height,
            path: o.path,
            layout: o.layout,
        })
    }
}

impl crate::stream::RowSource for FitsRows {
    fn name(&self) -> Option<String> {
        Some(self.path.display().to_string())
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn read_rows(&mut self, y0: usize, n: usize, out: &mut Vec<f32>) -> Result<()> {
        if y0 + n > self.height {
            return Err(Error::input(
                &self.path,
                format!(
                    "rows {y0}..{} asked of an image of {} rows",
                    y0 + n,
                    self.height
                ),
            ));
        }
        out.clear();
        out.resize(n * self.width, 0.0);
        let path = self.path.clone();
        let mut file = self.file.lock().map_err(|e| fits_err(&path, e))?;
        read_pixels(
            &mut file,
            self.hdu_num,
            self.layout,
            self.width,
            y0 * self.width,
            out,
        )
        .map_err(|e| Error::input(&self.path, format!("rows {y0}..{}: {e}", y0 + n)))
    }
}

/// BITPIX and the scaling of an image HDU.
fn layout_of(f: &mut FitsFile, hdu: &fitsio::hdu::FitsHdu) -> std::result::Result<Layout, String> {
    // ZBITPIX for tile-compressed images (cfitsio shows their image header).
    let bitpix: i64 = hdu
        .read_key(f, "ZBITPIX")
        .or_else(|_| hdu.read_key(f, "BITPIX"))
        .unwrap_or(-32);
    let bscale = number_key(f, "BSCALE", 1.0)?;
    let bzero = number_key(f, "BZERO", 0.0)?;
    if bscale == 0.0 || !bscale.is_finite() || !bzero.is_finite() {
        return Err(format!(
            "BSCALE = {bscale} and BZERO = {bzero}: pixels cannot be scaled (BSCALE must be a \
             non-zero finite number, BZERO finite); fix the header"
        ));
    }
    let scaled = !(bscale == 1.0 && bzero == 0.0);
    let scaling = (bitpix > 0 && scaled).then_some((bscale, bzero));
    Ok(Layout {
        bitpix,
        scaling,
        float_scaled: bitpix < 0 && scaled,
    })
}

/// A numeric header keyword of the current HDU, `default` when absent, an error when
/// its value is not a number (cfitsio would read `BSCALE = F` as 0, or fail later).
fn number_key(f: &mut FitsFile, key: &str, default: f64) -> std::result::Result<f64, String> {
    let name = std::ffi::CString::new(key).expect("a keyword has no NUL");
    let mut value = [0 as std::os::raw::c_char; 72];
    let mut status = 0;
    unsafe {
        fitsio::sys::ffgkey(
            f.as_raw(),
            name.as_ptr(),
            value.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    if status != 0 {
        return Ok(default); // absent (KEY_NO_EXIST)
    }
    let text = unsafe { std::ffi::CStr::from_ptr(value.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let t = text.trim();
    t.replace(['D', 'd'], "E")
        .parse::<f64>()
        .map_err(|_| format!("{key} = {t} is not a number; fix the header"))
}

/// One integer pixel scaled as SExtractor does: the raw value recovered from cfitsio's
/// f64 scaling, then `raw·BSCALE + BZERO` in f32 arithmetic (cfitsio scales in double,
/// which differs in the last bit for a quarter of the pixels of emmi_galaxies.fits and
/// moves whole background meshes by 5e-5). BLANK pixels arrive as NaN and stay NaN.
fn scale_f32(v: f64, bscale: f64, bzero: f64) -> f32 {
    if v.is_nan() {
        return f32::NAN;
    }
    let raw = ((v - bzero) / bscale).round();
    raw as f32 * bscale as f32 + bzero as f32
}

/// Writes an f32 image as a FITS primary HDU, atomically.
pub fn write_fits_f32(
    path: &Path,
    width: usize,
    height: usize,
    data: &[f32],
    kind: &str,
) -> Result<()> {
    let mut w = FitsImageWriter::create(path, width, height, false, kind)?;
    w.write_rows_f32(data)?;
    w.finish()
}

/// Writes a 32-bit integer image (segmentation maps) as a FITS primary HDU, atomically.
pub fn write_fits_i32(
    path: &Path,
    width: usize,
    height: usize,
    data: &[i32],
    kind: &str,
) -> Result<()> {
    let mut w = FitsImageWriter::create(path, width, height, true, kind)?;
    w.write_rows_i32(data)?;
    w.finish()
}

/// Closing a FITS file reports no error (cfitsio's status is dropped), so a written
/// file is checked by its size: whole 2,880-byte records, a header and the data.
fn check_complete(path: &Path, written: &Path, data_bytes: u64) -> Result<()> {
    let len = std::fs::metadata(written)
        .map_err(|e| Error::output(path, e.to_string()))?
        .len();
    let want = 2880 + data_bytes.div_ceil(2880) * 2880;
    if len % 2880 != 0 || len < want {
        return Err(Error::output(
            path,
            format!(
                "the file came out with {len} bytes, not a complete FITS image \
                 (at least {want}): is the disk full?"
            ),
        ));
    }
    Ok(())
}

/// A multi-extension FITS file written one image extension at a time (the check
/// images of a multi-extension image, as SExtractor writes them: an empty primary
/// HDU, then one IMAGE extension per input extension, each named as its input's);
/// under a temporary name, put in place by `finish` (at the commit of the open
/// output batch).
pub struct MefWriter {
    path: PathBuf,
    tmp: Option<super::output::TempFile>,
    fptr: *mut fitsio::sys::fitsfile,
}

// The cfitsio handle is used by one thread at a time (it moves with the writer).
unsafe impl Send for MefWriter {}

/// An image for [`MefWriter::append`].
pub enum MefPixels<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
}

impl MefWriter {
    /// A file for `path` with its empty primary HDU.
    pub fn create(path: &Path) -> Result<MefWriter> {
        let tmp = super::output::TempFile::new(path)?;
        let c = c_path(tmp.path()).map_err(|e| Error::output(path, e))?;
        let (mut fptr, mut status) = (std::ptr::null_mut(), 0);
        unsafe {
            fitsio::sys::ffdkinit(&mut fptr, c.as_ptr(), &mut status);
            if status == 0 {
                fitsio::sys::ffcrim(fptr, 8, 0, std::ptr::null_mut(), &mut status);
            }
        }
        let w = MefWriter {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            fptr,
        };
        w.check(status)?;
        Ok(w)
    }

    fn check(&self, status: i32) -> Result<()> {
        match status {
            0 => Ok(()),
            s => Err(write_err(&self.path, &status_err(s))),
        }
    }

    /// Appends a `width` x `height` image extension named `extname`.
    pub fn append(
        &mut self,
        width: usize,
        height: usize,
        pixels: MefPixels,
        extname: &str,
    ) -> Result<()> {
        let mut naxes = [
            width as std::os::raw::c_long,
            height as std::os::raw::c_long,
        ];
        let bitpix = match pixels {
            MefPixels::F32(_) => -32,
            MefPixels::I32(_) => 32,
        };
        let mut status = 0;
        let key = std::ffi::CString::new("EXTNAME").expect("no NUL");
        let value = std::ffi::CString::new(extname.replace('\0', "")).expect("no NUL");
        let n = (width * height) as i64;
        unsafe {
            fitsio::sys::ffcrim(self.fptr, bitpix, 2, naxes.as_mut_ptr(), &mut status);
            if status == 0 {
                fitsio::sys::ffpkys(
                    self.fptr,
                    key.as_ptr(),
                    value.as_ptr() as *mut _,
                    std::ptr::null_mut(),
                    &mut status,
                );
            }
            if status == 0 {
                match pixels {
                    MefPixels::F32(d) => {
                        assert_eq!(d.len() as i64, n, "pixels of the image");
                        fitsio::sys::ffppre(
                            self.fptr,
                            0,
                            1,
                            n,
                            d.as_ptr() as *mut f32,
                            &mut status,
                        );
                    }
                    MefPixels::I32(d) => {
                        assert_eq!(d.len() as i64, n, "pixels of the image");
                        fitsio::sys::ffpprk(
                            self.fptr,
                            0,
                            1,
                            n,
                            d.as_ptr() as *mut i32,
                            &mut status,
                        );
                    }
                }
            }
        }
        self.check(status)
    }

    /// Closes the file and puts it in place.
    pub fn finish(mut self) -> Result<()> {
        let mut status = 0;
        unsafe { fitsio::sys::ffclos(self.fptr, &mut status) };
        self.fptr = std::ptr::null_mut();
        self.check(status)?;
        self.tmp.take().expect("finished once").finish()
    }
}

impl Drop for MefWriter {
    fn drop(&mut self) {
        if !self.fptr.is_null() {
            let mut status = 0;
            unsafe { fitsio::sys::ffclos(self.fptr, &mut status) };
        }
    }
}

/// A FITS image (primary HDU) written block of rows by block of rows, for the check
/// images of streamed runs: under a temporary name next to `path`, renamed over it by
/// `finish` once every row is in; dropped unfinished, it leaves no file.
pub struct FitsImageWriter {
    path: PathBuf,
    tmp: Option<super::output::TempFile>,
    file: Option<FitsFile>,
    hdu: fitsio::hdu::FitsHdu,
    width: usize,
    height: usize,
    rows_done: usize,
}

impl FitsImageWriter {
    /// A `width` x `height` image of 32-bit floats (`integer` false) or integers.
    pub fn create(
        path: &Path,
        width: usize,
        height: usize,
        integer: bool,
        kind: &str,
    ) -> Result<FitsImageWriter> {
        // Dropped on an error, the temporary is removed.
        let tmp = super::output::TempFile::new(path)?;
        let err = |e: fitsio::errors::Error| write_err(path, &e);
        let mut f = create_disk_image(tmp.path(), width, height, integer)
            .map_err(|e| Error::output(path, e))?;
        let hdu = f.primary_hdu().map_err(err)?;
        hdu.write_key(&mut f, "ORIGIN", "skysift").map_err(err)?;
        hdu.write_key(&mut f, "CHECKTYP", kind).map_err(err)?;
        Ok(FitsImageWriter {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            file: Some(f),
            hdu,
            width,
            height,
            rows_done: 0,
        })
    }

    fn write<T: fitsio::images::WriteImage>(&mut self, data: &[T]) -> Result<()> {
        let rows = data.len() / self.width.max(1);
        if data.len() != rows * self.width || self.rows_done + rows > self.height {
            return Err(Error::output(
                &self.path,
                format!(
                    "{} values do not make whole rows of {} pixels within the image's {} rows",
                    data.len(),
                    self.width,
                    self.height
                ),
            ));
        }
        let f = self.file.as_mut().expect("open until finished");
        let start = self.rows_done * self.width;
        self.hdu
            .write_section(f, start, start + data.len(), data)
            .map_err(|e| write_err(&self.path, &e))?;
        self.rows_done += rows;
        Ok(())
    }

    /// Appends whole rows of floats (the next rows of the image).
    pub fn write_rows_f32(&mut self, data: &[f32]) -> Result<()> {
        self.write(data)
    }

    /// Appends whole rows of integers (the next rows of the image).
    pub fn write_rows_i32(&mut self, data: &[i32]) -> Result<()> {
        self.write(data)
    }

    /// Closes the file and puts it in place; every row must have been written.
    pub fn finish(mut self) -> Result<()> {
        if self.rows_done != self.height {
            return Err(Error::output(
                &self.path,
                format!("{} of {} rows were written", self.rows_done, self.height),
            ));
        }
        drop(self.file.take()); // closes (flushes) the FITS file
        let tmp = self.tmp.take().expect("finished once");
        // On an error the temporary is dropped, which removes it.
        check_complete(
            &self.path,
            tmp.path(),
            4 * (self.width * self.height) as u64,
        )?;
        tmp.finish()
    }
}
