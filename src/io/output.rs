//! Output files that cannot destroy inputs and land together.
//!
//! Every output (catalog, check image, region file, picture) is written into a
//! temporary file ([`TempFile`]) next to its target and put in place by a rename.
//! Inside an [`OutputBatch`] (the command line opens one per image) finished files
//! wait until [`OutputBatch::commit`], which puts them all in place at once; if the
//! run fails before, every temporary is removed and no target changes. Targets that
//! are not regular files (`/dev/null`, a FIFO, `/dev/stdout`) are written directly at
//! commit time: a device node is never replaced by a regular file.
//!
//! The temporaries that exist at any moment are listed in one process-wide registry,
//! so that [`install_signal_cleanup`] can remove them on SIGINT, SIGTERM or SIGHUP;
//! after a SIGKILL, [`remove_stale_temps`] removes those a dead process left.
//!
//! [`check_paths`] compares every output with every input by file identity (device
//! and inode, links and `..` resolved) and with every other output.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The suffix of every temporary output file.
pub const TEMP_SUFFIX: &str = ".skysift-tmp";

/// Where a finished temporary goes.
#[derive(Debug, Clone)]
enum Target {
    /// A regular file (or a new one), replaced by renaming the temporary over it.
    Replace(PathBuf),
    /// A device, FIFO, socket or `/dev/stdout`: written in place (opened for writing,
    /// the temporary's bytes copied into it).
    Direct(PathBuf),
}

#[derive(Debug)]
struct Finished {
    tmp: PathBuf,
    target: Target,
    shown: PathBuf,
}

#[derive(Default)]
struct State {
    /// Every temporary output that exists now.
    live: Vec<PathBuf>,
    /// Folders this run created for its outputs (removed again, if still empty, when
    /// the run fails or is interrupted).
    created: Vec<PathBuf>,
}

static STATE: Mutex<State> = Mutex::new(State {
    live: Vec::new(),
    created: Vec::new(),
});

/// Creates the output folder `dir` (and its missing parents) and remembers what it
/// created, for [`remove_created_folders`].
pub fn create_folder(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    state().created.extend(missing.into_iter().rev());
    Ok(())
}

/// Removes the folders [`create_folder`] made that are still empty, innermost first
/// (after a failed run: nothing of it stays behind).
pub fn remove_created_folders() {
    remove_created(&mut state());
}

fn remove_created(s: &mut State) {
    for d in s.created.drain(..).rev() {
        let _ = std::fs::remove_dir(d); // only if empty
    }
}

thread_local! {
    /// Finished outputs waiting for the commit of this thread's batch (None: no batch
    /// open on this thread).
    static BATCH: std::cell::RefCell<Option<Vec<Finished>>> = const { std::cell::RefCell::new(None) };
}

fn state() -> std::sync::MutexGuard<'static, State> {
    // A panic while holding the lock leaves the list usable.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn unregister(s: &mut State, tmp: &Path) {
    s.live.retain(|p| p != tmp);
}

/// A name for a temporary: the target's name with characters outside
/// `[A-Za-z0-9._+-]` replaced (cfitsio would read brackets, `!` or `+` in a name as its
/// own syntax) and shortened so that the whole name stays under the 255-byte limit.
fn temp_name(target: &Path) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!(".{clean}.{}.{n}{TEMP_SUFFIX}", std::process::id())
}

/// Whether `path` names a special file: under /dev or /proc (`/dev/stdout` is a link
/// to whatever standard output is, a regular file included), or an existing file that
/// is not a regular file (a device, FIFO or socket).
fn is_special(path: &Path) -> bool {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    if abs.starts_with("/dev") || abs.starts_with("/proc") {
        return true;
    }
    matches!(std::fs::metadata(path), Ok(m) if !m.is_file() && !m.is_dir())
}

/// Checks that `path` can be written: not empty, not a folder, its folder exists and
/// is writable (special files: that they exist).
pub fn check_writable(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::output(path, "empty output path"));
    }
    if path.is_dir() {
        return Err(Error::output(path, "is a directory; give a file name"));
    }
    if is_special(path) {
        if std::fs::metadata(path).is_err() {
            return Err(Error::output(
                path,
                "no such device or special file (skysift creates regular files only outside /dev and /proc)",
            ));
        }
        return Ok(());
    }
    if std::fs::symlink_metadata(path).is_ok() && std::fs::metadata(path).is_err() {
        return Err(Error::output(
            path,
            "is a broken symbolic link: remove it or point it at a file",
        ));
    }
    let parent = folder_of(path);
    if !parent.is_dir() {
        return Err(Error::output(
            path,
            format!("the folder {} does not exist", parent.display()),
        ));
    }
    // A file made and removed at once: the only exact test (permissions, a read-only
    // file system, root, ACLs), before any work.
    let probe = parent.join(temp_name(path));
    state().live.push(probe.clone());
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    unregister(&mut state(), &probe);
    made.map(|_| ()).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EROFS) => "is on a read-only file system".to_string(),
            Some(libc::EACCES) | Some(libc::EPERM) => "is not writable by this user".to_string(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                "is on a full disk (or over quota)".to_string()
            }
            _ => format!("does not take new files ({e})"),
        };
        Error::output(path, format!("the folder {} {why}", parent.display()))
    })
}

/// The folder of `path` ("." for a bare name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output being written: a temporary file, put in place by [`TempFile::finish`]
/// (or at its batch's commit); dropped unfinished, it is removed.
#[derive(Debug)]
pub struct TempFile {
    tmp: PathBuf,
    target: Target,
    shown: PathBuf,
    /// False once handed to the batch or put in place.
    owned: bool,
}

impl TempFile {
    /// A temporary for the output `path` (checked writable), registered for removal on
    /// a signal. Nothing is created yet: the caller creates [`TempFile::path`].
    pub fn new(path: &Path) -> Result<TempFile> {
        check_writable(path)?;
        let (tmp, target) = if is_special(path) {
            (
                std::env::temp_dir().join(temp_name(path)),
                Target::Direct(path.to_path_buf()),
            )
        } else {
            // A link is followed: the file it points at is replaced, the link stays.
            let real = if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            {
                std::fs::canonicalize(path).map_err(|e| Error::output(path, e.to_string()))?
            } else {
                path.to_path_buf()
            };
            (
                folder_of(&real).join(temp_name(&real)),
                Target::Replace(real),
            )
        };
        let _ = std::fs::remove_file(&tmp);
        state().live.push(tmp.clone());
        Ok(TempFile {
            tmp,
            target,
            shown: path.to_path_buf(),
            owned: true,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The output's name as given (for messages).
    pub fn target(&self) -> &Path {
        &self.shown
    }

    /// The file is complete: put it in place now, or at the commit of the open batch.
    pub fn finish(mut self) -> Result<()> {
        let f = Finished {
            tmp: self.tmp.clone(),
            target: self.target.clone(),
            shown: self.shown.clone(),
        };
        self.owned = false;
        let f = match BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(batch) => {
                batch.push(f);
                None
            }
            None => Some(f),
        }) {
            None => return Ok(()),
            Some(f) => f,
        };
        let mut s = state();
        let r = put_in_place(&f);
        unregister(&mut s, &f.tmp);
        r
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.tmp);
            unregister(&mut state(), &self.tmp);
        }
    }
}

/// Renames (or, for special files, copies) a finished temporary onto its target; the
/// temporary is gone afterwards either way.
fn put_in_place(f: &Finished) -> Result<()> {
    let r = match &f.target {
        Target::Replace(real) => {
            std::fs::rename(&f.tmp, real).map_err(|e| Error::output(&f.shown, e.to_string()))
        }
        Target::Direct(dev) => copy_into(&f.tmp, dev, &f.shown),
    };
    let _ = std::fs::remove_file(&f.tmp);
    r
}

fn copy_into(tmp: &Path, dev: &Path, shown: &Path) -> Result<()> {
    use std::io::Write;
    let err = |e: std::io::Error| Error::output(shown, e.to_string());
    let mut src = std::fs::File::open(tmp).map_err(err)?;
    let dev_s = dev.to_string_lossy();
    if dev_s == "/dev/stdout" || dev_s == "/proc/self/fd/1" {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut src, &mut out).map_err(err)?;
        return out.flush().map_err(err);
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dev)
        .map_err(err)?;
    std::io::copy(&mut src, &mut out).map_err(err)?;
    out.flush().map_err(err)?;
    out.sync_data().or_else(|e| {
        // Devices and pipes cannot be synced (EINVAL/ENOTSUP); a full device shows here.
        if e.raw_os_error() == Some(libc::ENOSPC) {
            Err(err(e))
        } else {
            Ok(())
        }
    })
}

/// The outputs of one image, put in place together: finished outputs wait until
/// [`OutputBatch::commit`]; dropped without a commit (an error), they are removed and
/// no target changes. A batch holds the outputs finished on the thread that opened it.
pub struct OutputBatch {
    open: bool,
}

impl OutputBatch {
    /// Opens the batch: from now on finished outputs wait for the commit.
    pub fn begin() -> OutputBatch {
        BATCH.with(|b| *b.borrow_mut() = Some(Vec::new()));
        OutputBatch { open: true }
    }

    /// Puts every finished output in place (the signal handler waits until all are).
    /// Returns the targets, as given.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        self.open = false;
        let files = BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default();
        let mut s = state();
        let mut first_err = None;
        let mut done = Vec::new();
        // Special files first (a write there can fail: /dev/full), then the renames,
        // which do not fail once the temporaries are written in the targets' folders:
        // a failure leaves every regular target as it was.
        let (regular, direct): (Vec<&Finished>, Vec<&Finished>) = files
            .iter()
            .partition(|f| matches!(f.target, Target::Replace(_)));
        for f in direct.into_iter().chain(regular) {
            if first_err.is_some() {
                let _ = std::fs::remove_file(&f.tmp);
            } else {
                match put_in_place(f) {
                    Ok(()) => done.push(f.shown.clone()),
                    Err(e) => first_err = Some(e),
                }
            }
            unregister(&mut s, &f.tmp);
        }
        match first_err {
            None => Ok(done),
            Some(e) => Err(e),
        }
    }
}

impl Drop for OutputBatch {
    fn drop(&mut self) {
        if self.open {
            let files = BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default();
            let mut s = state();
            for f in files {
                let _ = std::fs::remove_file(&f.tmp);
                unregister(&mut s, &f.tmp);
            }
        }
    }
}

/// Removes every temporary output of this process (the signal handler's work) and
/// returns the registry's lock, held until the process exits.
fn remove_all_temps() -> std::sync::MutexGuard<'static, State> {
    let mut s = state();
    for p in s.live.drain(..) {
        let _ = std::fs::remove_file(&p);
    }
    remove_created(&mut s);
    s
}

/// On SIGINT, SIGTERM or SIGHUP: removes every temporary output (a commit in progress
/// completes first, so the targets are either all replaced or all as they were),
/// says so, and exits with 128 + the signal's number (130, 143, 129).
pub fn install_signal_cleanup() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::System(format!("cannot install the signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("skysift-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _held = remove_all_temps();
                let name = match sig {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\nskysift: stopped by {name}: temporary files removed, no output of the unfinished image replaced"
                );
                // No destructors or exit handlers: other threads may be inside cfitsio
                // or the GPU driver. `_exit` takes no pointers and does not return.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(128 + sig)
                };
            }
        })
        .map_err(|e| Error::System(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// Removes the temporary outputs in `dir` that a process which no longer runs left
/// (after a SIGKILL or a power cut). Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_pid(&name) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// The process id in a temporary's name `.NAME.PID.N.skysift-tmp`.
fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let n = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// How a file is identified: (device, inode) when it exists, else its absolute path
/// with the folder resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path) {
        return Some(Identity::Inode(m.dev(), m.ino()));
    }
    let parent = std::fs::canonicalize(folder_of(path)).ok()?;
    Some(Identity::Path(parent.join(path.file_name()?)))
}

/// Whether outputs may share `path`: character devices (`/dev/null`) take any number.
fn shareable(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// A file of the run and what it is ("the image", "the catalog", ...).
pub struct Role<'a> {
    pub what: String,
    pub path: &'a Path,
}

impl<'a> Role<'a> {
    pub fn new(what: impl Into<String>, path: &'a Path) -> Self {
        Role {
            what: what.into(),
            path,
        }
    }
}

/// Refuses a run whose outputs would overwrite one of its inputs or each other: every
/// output is compared with every input and every other output by file identity (the
/// same file through a link, a hard link, `..` or another relative path is the same).
pub fn check_paths(inputs: &[Role], outputs: &[Role]) -> Result<()> {
    let ins: Vec<(Option<Identity>, &Role)> =
        inputs.iter().map(|r| (identity(r.path), r)).collect();
    let mut seen: Vec<(Identity, &Role)> = Vec::new();
    for o in outputs {
        let Some(id) = identity(o.path) else {
            continue; // its folder is missing: check_writable says so
        };
        if let Some((_, i)) = ins.iter().find(|(iid, _)| iid.as_ref() == Some(&id)) {
            return Err(Error::output(
                o.path,
                format!(
                    "{} {} would overwrite {} {}: skysift never writes its inputs; give the output another name",
                    o.what,
                    o.path.display(),
                    i.what,
                    i.path.display()
                ),
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(sid, _)| *sid == id) {
            if !shareable(o.path) {
                return Err(Error::output(
                    o.path,
                    format!(
                        "{} {} and {} {} are the same file: give each output its own name",
                        other.what,
                        other.path.display(),
                        o.what,
                        o.path.display()
                    ),
                ));
            }
        }
        seen.push((id, o));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid_and_no_cfitsio_syntax() {
        let n = temp_name(Path::new("dir/seg[1].fits"));
        assert!(!n.contains('[') && !n.contains(']'), "{n}");
        assert_eq!(temp_pid(&n), Some(std::process::id()));
        assert_eq!(temp_pid(".a.fits.12.3.skysift-tmp"), Some(12));
        assert_eq!(temp_pid(".a.fits.x.3.skysift-tmp"), None);
        assert_eq!(temp_pid("a.fits"), None);
        let long = "x".repeat(300);
        assert!(temp_name(Path::new(&long)).len() < 200);
    }

    #[test]
    fn a_batch_puts_outputs_in_place_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, "old a").unwrap();
        // Abandoned batch: nothing changes, nothing is left.
        {
            let _batch = OutputBatch::begin();
            for p in [&a, &b] {
                let t = TempFile::new(p).unwrap();
                std::fs::write(t.path(), "new").unwrap();
                t.finish().unwrap();
            }
            assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
            assert!(!b.exists());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        // Committed batch: both are in place.
        let batch = OutputBatch::begin();
        for p in [&a, &b] {
            let t = TempFile::new(p).unwrap();
            std::fs::write(t.path(), "new").unwrap();
            t.finish().unwrap();
        }
        assert_eq!(batch.commit().unwrap().len(), 2);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(state().live.iter().all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's maximum (2^22): never a running process.
        let stale = dir.path().join(".cat.fits.4194304.0.skysift-tmp");
        let mine = dir
            .path()
            .join(format!(".cat.fits.{}.0.skysift-tmp", std::process::id()));
        let other = dir.path().join(".notes.txt");
        for p in [&stale, &mine, &other] {
            std::fs::write(p, "x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!stale.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn clashes_are_found_through_links_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img.fits");
        std::fs::write(&img, "x").unwrap();
        let link = dir.path().join("link.fits");
        std::os::unix::fs::symlink(&img, &link).unwrap();
        let hard = dir.path().join("hard.fits");
        std::fs::hard_link(&img, &hard).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let dotdot = dir.path().join("sub/../img.fits");
        let inputs = [Role::new("the image", &img)];
        for out in [&img, &link, &hard, &dotdot] {
            let e = check_paths(&inputs, &[Role::new("the catalog", out)]).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("never writes its inputs") && msg.contains("img.fits"),
                "{msg}"
            );
        }
        let new1 = dir.path().join("new.csv");
        let new2 = dir.path().join("sub/../new.csv");
        let e = check_paths(
            &inputs,
            &[
                Role::new("the catalog", &new1),
                Role::new("the region file", &new2),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("same file"), "{e}");
        check_paths(&inputs, &[Role::new("the catalog", &new1)]).unwrap();
        let null = Path::new("/dev/null");
        check_paths(
            &inputs,
            &[
                Role::new("the catalog", null),
                Role::new("a check image", null),
            ],
        )
        .unwrap();
    }
}
