//! The one I/O layer: every file-system step that can fail returns an
//! [`IoError`] naming the operation and the path, reads of untrusted files are
//! capped before they start, and a folder is staged beside its destination and
//! swapped in with fsync so that nothing is ever left half-written.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What was being done to a path when the OS said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Read,
    Write,
    Create,
    Copy,
    Remove,
    Rename,
    List,
    Lock,
    Inspect,
    Sync,
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Create => "create",
            IoOp::Copy => "copy",
            IoOp::Remove => "remove",
            IoOp::Rename => "move into place",
            IoOp::List => "list",
            IoOp::Lock => "lock",
            IoOp::Inspect => "inspect",
            IoOp::Sync => "flush to disk",
        })
    }
}

/// A failed file-system step: what, where, and the OS's reason (as the source,
/// so it is printed once, as a cause).
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", path.display())]
pub struct IoError {
    pub op: IoOp,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(op: IoOp, path: impl Into<PathBuf>, source: std::io::Error) -> IoError {
        IoError {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error kind, for callers that treat "not found" differently.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }
}

/// `result.on(IoOp::Read, path)?`: attaches the operation and path to an
/// `std::io::Error`.
pub trait IoResultExt<T> {
    fn on(self, op: IoOp, path: &Path) -> Result<T, IoError>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn on(self, op: IoOp, path: &Path) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(op, path, source))
    }
}

/// A file that is too large to read, found before reading it.
#[derive(Debug, thiserror::Error)]
#[error("{} is {size} bytes, over the {max}-byte limit", path.display())]
pub struct TooLarge {
    pub path: PathBuf,
    pub size: u64,
    pub max: u64,
}

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum CappedReadError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(
        "{} is not a regular file (a FIFO, socket, device or folder); replace it with a regular file",
        .0.display()
    )]
    NotRegular(PathBuf),
}

/// Reads a regular file of at most `max` bytes. The size is checked before
/// reading and the read itself is bounded, so a file that grows meanwhile, a
/// FIFO or a device never makes us read without end.
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, CappedReadError> {
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    // Non-blocking, so opening a FIFO returns at once and is refused below
    // instead of waiting for a writer; regular files ignore the flag.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let file = open.open(path).on(IoOp::Read, path)?;
    let meta = file.metadata().on(IoOp::Inspect, path)?;
    if !meta.is_file() {
        return Err(CappedReadError::NotRegular(path.to_path_buf()));
    }
    if meta.len() > max {
        return Err(TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .on(IoOp::Read, path)?;
    if bytes.len() as u64 > max {
        return Err(TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max,
        }
        .into());
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` by writing a temporary file beside it and renaming
/// it into place: readers see the old file or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).on(IoOp::Create, dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).on(IoOp::Create, dir)?;
    std::io::Write::write_all(&mut tmp, bytes).on(IoOp::Write, tmp.path())?;
    tmp.as_file().sync_all().on(IoOp::Sync, tmp.path())?;
    tmp.persist(path)
        .map_err(|e| IoError::new(IoOp::Rename, path, e.error))?;
    sync_dir(dir)
}

/// Writes a new file and flushes it to disk before returning.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let mut file = File::create(path).on(IoOp::Create, path)?;
    std::io::Write::write_all(&mut file, bytes).on(IoOp::Write, path)?;
    file.sync_all().on(IoOp::Sync, path)
}

/// Flushes a folder's entries (new names, renames) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .on(IoOp::Sync, dir)
}

/// A folder being assembled beside its destination (`.staging-<label>-*`),
/// swapped in whole by [`StagedDir::commit`]; dropped uncommitted, it is
/// removed. Callers that may be killed hold a lock on `parent` and call
/// [`sweep_stale`] under it.
#[derive(Debug)]
pub struct StagedDir {
    dir: tempfile::TempDir,
}

/// The prefix of a staging folder's name.
pub const STAGING_PREFIX: &str = ".staging-";
/// The prefix of a folder on its way out.
pub const REMOVING_PREFIX: &str = ".removing-";

impl StagedDir {
    /// A new staging folder in `parent` (created if missing).
    pub fn new_in(parent: &Path, label: &str) -> Result<StagedDir, IoError> {
        std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{label}-"))
            .tempdir_in(parent)
            .on(IoOp::Create, parent)?;
        Ok(StagedDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` inside the staged folder, flushed to disk.
    pub fn write(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> Result<(), IoError> {
        self.write_file(rel.as_ref(), bytes, false)
    }

    /// Writes `rel` (a relative path that stays inside the folder: no `..`,
    /// no root) with mode 0755 when `executable`, else 0644.
    pub fn write_file(&self, rel: &Path, bytes: &[u8], executable: bool) -> Result<(), IoError> {
        use std::path::Component;
        let path = self.dir.path().join(rel);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(IoError::new(
                IoOp::Write,
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the path leaves the folder",
                ),
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
        }
        write_synced(&path, bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .on(IoOp::Write, &path)?;
        }
        Ok(())
    }

    /// Puts the staged folder at `dest` in one step (an exchange when `dest`
    /// exists; the old contents are then removed), with the folder and its
    /// parent flushed so a crash leaves the old version or the new one.
    /// Returns whether a previous version was replaced.
    pub fn commit(self, dest: &Path) -> Result<bool, IoError> {
        sync_dir(self.dir.path())?;
        let replaced = dest.exists();
        replace_dir(self.dir.path(), dest).on(IoOp::Rename, dest)?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        // On a replace, `self.dir` now holds the old version and is removed
        // as it drops.
        Ok(replaced)
    }
}

impl StagedDir {
    /// Puts the staged folder at `dest`, which must not exist: a folder that
    /// appeared meanwhile is never replaced (the error's kind is then
    /// `AlreadyExists`).
    pub fn commit_new(self, dest: &Path) -> Result<(), IoError> {
        sync_dir(self.dir.path())?;
        rename_no_replace(self.dir.path(), dest).on(IoOp::Rename, dest)?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

/// Removes staging and removal folders that a killed process left in
/// `parent`. Call only while holding the lock under which such folders are
/// created: then none of them belongs to a live writer.
pub fn sweep_stale(parent: &Path) -> Result<usize, IoError> {
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(IoError::new(IoOp::List, parent, e)),
    };
    let mut swept = 0;
    for entry in entries {
        let entry = entry.on(IoOp::List, parent)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(STAGING_PREFIX) || name.starts_with(REMOVING_PREFIX) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).on(IoOp::Remove, &path)?;
            swept += 1;
        }
    }
    Ok(swept)
}

/// Puts the folder `staged` at `dest`: an exchange when `dest` exists (then
/// `staged` holds the old contents, for the caller to remove), else a rename.
fn replace_dir(staged: &Path, dest: &Path) -> std::io::Result<()> {
    if dest.exists() {
        exchange(staged, dest)
    } else {
        std::fs::rename(staged, dest)
    }
}

/// The one-step renames Linux offers.
#[derive(Clone, Copy)]
enum AtomicRename {
    /// Fail rather than replace an existing destination.
    NoReplace,
    /// Swap the two paths.
    Exchange,
}

/// `renameat2` on Linux: `Some(result)`, or `None` where the OS or file
/// system does not support the rename asked for (the caller then falls back
/// to plain renames).
fn renameat2(from: &Path, to: &Path, how: AtomicRename) -> Option<std::io::Result<()>> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let paths = CString::new(from.as_os_str().as_bytes())
            .and_then(|f| Ok((f, CString::new(to.as_os_str().as_bytes())?)));
        let (from_c, to_c) = match paths {
            Ok(paths) => paths,
            Err(e) => return Some(Err(e.into())),
        };
        let flags = match how {
            AtomicRename::NoReplace => libc::RENAME_NOREPLACE,
            AtomicRename::Exchange => libc::RENAME_EXCHANGE,
        };
        // SAFETY: two valid NUL-terminated paths; renameat2 touches no memory of ours.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from_c.as_ptr(),
                libc::AT_FDCWD,
                to_c.as_ptr(),
                flags,
            )
        };
        if rc == 0 {
            return Some(Ok(()));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) && err.raw_os_error() != Some(libc::ENOSYS) {
            return Some(Err(err));
        }
    }
    let _ = (from, to, how);
    None
}

/// Renames `from` to `to` unless `to` exists (Linux `RENAME_NOREPLACE`; a
/// check then a rename elsewhere).
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(done) = renameat2(from, to, AtomicRename::NoReplace) {
        return done;
    }
    if to.exists() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

/// Swaps two folders in one step where the OS can (Linux `RENAME_EXCHANGE`),
/// else with two renames.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    if let Some(done) = renameat2(a, b, AtomicRename::Exchange) {
        return done;
    }
    let aside = a.with_extension("old");
    std::fs::rename(b, &aside)?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(e);
    }
    std::fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_operation_and_path_once() {
        let path = Path::new("/nonexistent/boternity/x");
        let err = std::fs::read(path).on(IoOp::Read, path).unwrap_err();
        assert_eq!(err.to_string(), "cannot read /nonexistent/boternity/x");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("No such file"), "{cause}");
        assert!(!err.to_string().contains(&cause));
    }

    #[test]
    fn capped_reads_refuse_large_files_and_fifos_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 100]).unwrap();
        assert!(matches!(
            read_capped(&big, 99),
            Err(CappedReadError::TooLarge(TooLarge { size: 100, .. }))
        ));
        assert_eq!(read_capped(&big, 100).unwrap().len(), 100);
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // No writer ever comes: the read must not wait for one.
        assert!(matches!(
            read_capped(&fifo, 10),
            Err(CappedReadError::NotRegular(_))
        ));
    }

    #[test]
    fn stale_staging_folders_are_swept_and_live_skills_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".staging-a-x1/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join(".removing-b-x2")).unwrap();
        std::fs::create_dir_all(dir.path().join("kept")).unwrap();
        assert_eq!(sweep_stale(dir.path()).unwrap(), 2);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("kept")]);
    }

    #[test]
    fn a_staged_folder_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("skill");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old"), b"1").unwrap();
        let staged = StagedDir::new_in(dir.path(), "skill").unwrap();
        staged.write("nested/new", b"2").unwrap();
        assert!(staged.commit(&dest).unwrap());
        assert!(!dest.join("old").exists());
        assert_eq!(std::fs::read(dest.join("nested/new")).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
