//! The one I/O layer: every file-system step that can fail returns an
//! [`IoError`] naming the operation and the path, reads of untrusted files are
//! capped before they start, and a folder is staged beside its destination and
//! swapped in with fsync so that nothing is ever left half-written.
//!
//! Untrusted trees (a git checkout, a skill folder) are read and written
//! without following symlinks: [`read_capped_no_follow`] opens a file with
//! `O_NOFOLLOW` on its last component or on every component, and
//! [`BeneathDir`] creates folders, files and links relative to a folder's
//! descriptor (`openat`/`mkdirat` with `O_NOFOLLOW`, files with `O_EXCL`), so
//! a link planted in the tree is never written or read through.

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
    read_open_capped(file, path, max)
}

/// Reads the open `file` (named `path`) if it is a regular file of at most
/// `max` bytes.
fn read_open_capped(file: File, path: &Path, max: u64) -> Result<Vec<u8>, CappedReadError> {
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

/// Which components of a path may be symlinks when an untrusted file is
/// opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFollow {
    /// The file itself must not be a link (its folders may be reached
    /// through links, e.g. a store under a linked home).
    LastComponent,
    /// No component may be a link: for real (canonical) paths, so a link
    /// that appears after the path was resolved is refused, not followed.
    Anywhere,
}

/// [`read_capped`], opening `path` without following a symlink (see
/// [`NoFollow`]): a link is refused with an error naming it and the rule, a
/// FIFO or device is refused without blocking.
pub fn read_capped_no_follow(
    path: &Path,
    max: u64,
    how: NoFollow,
) -> Result<Vec<u8>, CappedReadError> {
    let file = open_no_follow(path, how)?;
    read_open_capped(file, path, max)
}

/// Opens `path` for reading without following a symlink (see [`NoFollow`]),
/// non-blocking (a FIFO opens at once, for the caller to refuse).
pub fn open_no_follow(path: &Path, how: NoFollow) -> Result<File, IoError> {
    use std::path::Component;
    const FILE_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    if how == NoFollow::LastComponent {
        let mut open = std::fs::OpenOptions::new();
        open.read(true);
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut open,
            libc::O_NOFOLLOW | libc::O_NONBLOCK,
        );
        return match open.open(path) {
            Ok(file) => Ok(file),
            Err(e) if is_link_error(&e) && is_symlink(path) => Err(link_refused(path, path)),
            Err(e) => Err(IoError::new(IoOp::Read, path, e)),
        };
    }
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => names.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(IoError::new(
                    IoOp::Read,
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "the path holds `..`; give the real path",
                    ),
                ));
            }
        }
    }
    let Some((last, folders)) = names.split_last() else {
        return Err(IoError::new(
            IoOp::Read,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file named"),
        ));
    };
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = BeneathDir::open(Path::new(start))?;
    let mut walked = PathBuf::from(start);
    for name in folders {
        walked.push(name);
        dir = match dir.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) {
            Ok(fd) => BeneathDir {
                fd,
                path: walked.clone(),
            },
            Err(e) if is_link_error(&e) && dir.is_link(name) => {
                return Err(link_refused(path, &walked));
            }
            Err(e) => return Err(IoError::new(IoOp::Read, path, e)),
        };
    }
    match dir.open_at(last, FILE_FLAGS) {
        Ok(fd) => Ok(File::from(fd)),
        Err(e) if is_link_error(&e) && dir.is_link(last) => Err(link_refused(path, path)),
        Err(e) => Err(IoError::new(IoOp::Read, path, e)),
    }
}

/// What `open` says when `O_NOFOLLOW` met a link (`O_DIRECTORY` may say
/// "not a folder" instead).
fn is_link_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The error for a link met where a real file or folder must be: names the
/// link and the rule.
fn link_refused(path: &Path, link: &Path) -> IoError {
    let name = link.file_name().map_or_else(
        || link.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let why = if link == path {
        format!("{name} is a symlink; it must be a regular file inside the skill folder")
    } else {
        format!(
            "{} is a symlink; links are not followed on the way to a file of an untrusted tree",
            link.display()
        )
    };
    IoError::new(
        IoOp::Read,
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    )
}

/// A folder held by its descriptor, in which folders, files and links are
/// created and opened relative to it and never through a symlink: a folder
/// is opened with `O_DIRECTORY | O_NOFOLLOW`, a file is created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW` (whatever is already there, a planted link
/// included, is an error), and every name is one component (no `/`, `.` or
/// `..`). What a checkout of an untrusted tree is written with.
#[derive(Debug)]
pub struct BeneathDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl BeneathDir {
    /// Creates the folder `path` (which must not exist) and holds it.
    pub fn create_new(path: &Path) -> Result<BeneathDir, IoError> {
        std::fs::create_dir(path).on(IoOp::Create, path)?;
        BeneathDir::open(path)
    }

    /// Holds the existing folder `path` (its last component must not be a
    /// link).
    pub fn open(path: &Path) -> Result<BeneathDir, IoError> {
        let mut open = std::fs::OpenOptions::new();
        open.read(true);
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut open,
            libc::O_DIRECTORY | libc::O_NOFOLLOW,
        );
        let file = open.open(path).on(IoOp::Inspect, path)?;
        Ok(BeneathDir {
            fd: file.into(),
            path: path.to_path_buf(),
        })
    }

    /// The path the folder had when it was opened (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder `name` in this one, created (mode 0755) when missing. A
    /// link or a file there is an error, never followed.
    pub fn subdir(&self, name: impl AsRef<std::ffi::OsStr>) -> Result<BeneathDir, IoError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        let c_name = one_component(name).on(IoOp::Create, &path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let fd = match self.open_at(name, flags) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // SAFETY: mkdirat on a descriptor we own and a NUL-terminated name.
                let rc = unsafe { libc::mkdirat(self.raw(), c_name.as_ptr(), 0o755) };
                if rc != 0 {
                    return Err(IoError::new(
                        IoOp::Create,
                        &path,
                        std::io::Error::last_os_error(),
                    ));
                }
                self.open_at(name, flags).on(IoOp::Create, &path)?
            }
            Err(e) if is_link_error(&e) => {
                let why = if self.is_link(name) {
                    "a symlink is there; a folder is never created through one"
                } else {
                    "a file is there, where a folder must be"
                };
                return Err(IoError::new(
                    IoOp::Create,
                    &path,
                    std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
                ));
            }
            Err(e) => return Err(IoError::new(IoOp::Create, &path, e)),
        };
        Ok(BeneathDir { fd, path })
    }

    /// Writes the new file `name` with `bytes`, mode 0755 when `executable`,
    /// else 0644. Anything already there (a file, a folder, a link) is an
    /// error; a link is never followed.
    pub fn create_file(
        &self,
        name: impl AsRef<std::ffi::OsStr>,
        bytes: &[u8],
        executable: bool,
    ) -> Result<(), IoError> {
        use std::os::fd::AsRawFd;
        let name = name.as_ref();
        let path = self.path.join(name);
        let mode = if executable { 0o755 } else { 0o644 };
        let fd = self
            .create_at(
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                mode,
            )
            .on(IoOp::Create, &path)?;
        let mut file = File::from(fd);
        std::io::Write::write_all(&mut file, bytes).on(IoOp::Write, &path)?;
        // The exact mode, whatever the umask: on the descriptor, not the path.
        // SAFETY: fchmod on a descriptor we own.
        if unsafe { libc::fchmod(file.as_raw_fd(), mode) } != 0 {
            return Err(IoError::new(
                IoOp::Write,
                &path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Creates the symlink `name` pointing at `target` (the caller checked
    /// where it leads); anything already there is an error.
    pub fn symlink(
        &self,
        name: impl AsRef<std::ffi::OsStr>,
        target: impl AsRef<std::ffi::OsStr>,
    ) -> Result<(), IoError> {
        use std::os::unix::ffi::OsStrExt;
        let name = name.as_ref();
        let path = self.path.join(name);
        let c_name = one_component(name).on(IoOp::Create, &path)?;
        let c_target = std::ffi::CString::new(target.as_ref().as_bytes())
            .map_err(std::io::Error::from)
            .on(IoOp::Create, &path)?;
        // SAFETY: symlinkat with two NUL-terminated strings and a descriptor we own.
        let rc = unsafe { libc::symlinkat(c_target.as_ptr(), self.raw(), c_name.as_ptr()) };
        if rc != 0 {
            return Err(IoError::new(
                IoOp::Create,
                &path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Opens the file `name` in this folder for reading, never through a
    /// link, non-blocking.
    pub fn open_file(&self, name: impl AsRef<std::ffi::OsStr>) -> Result<File, IoError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        match self.open_at(name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) {
            Ok(fd) => Ok(File::from(fd)),
            Err(e) if is_link_error(&e) && self.is_link(name) => Err(link_refused(&path, &path)),
            Err(e) => Err(IoError::new(IoOp::Read, &path, e)),
        }
    }

    fn raw(&self) -> libc::c_int {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// `openat(self, name, flags | O_CLOEXEC)`.
    fn open_at(
        &self,
        name: &std::ffi::OsStr,
        flags: libc::c_int,
    ) -> std::io::Result<std::os::fd::OwnedFd> {
        self.create_at(name, flags, 0)
    }

    /// `openat(self, name, flags | O_CLOEXEC, mode)`.
    fn create_at(
        &self,
        name: &std::ffi::OsStr,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let c_name = one_component(name)?;
        // SAFETY: openat with a descriptor we own and a NUL-terminated name;
        // the mode is passed as the variadic argument openat expects.
        let fd = unsafe {
            libc::openat(
                self.raw(),
                c_name.as_ptr(),
                flags | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor openat just returned, owned by nothing else.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// Whether `name` in this folder is a symlink (not followed).
    fn is_link(&self, name: &std::ffi::OsStr) -> bool {
        let Ok(c_name) = one_component(name) else {
            return false;
        };
        // SAFETY: an all-zero stat is a valid value for fstatat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstatat with a descriptor we own, a NUL-terminated name and
        // a stat buffer of the right type.
        let rc = unsafe {
            libc::fstatat(
                self.raw(),
                c_name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// `name` as a C string, if it is one path component: not empty, not `.` or
/// `..`, no `/`, no NUL.
fn one_component(name: &std::ffi::OsStr) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a single name inside the folder",
        ));
    }
    std::ffi::CString::new(bytes).map_err(std::io::Error::from)
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
    /// Puts the staged folder at `dest` like [`StagedDir::commit`], but keeps
    /// what it replaced until the returned [`Swapped`] is finished, so that
    /// several folders change together: a failure swaps the earlier ones
    /// back ([`Swapped::undo`]).
    pub fn swap_in(self, dest: &Path) -> Result<Swapped, IoError> {
        sync_dir(self.dir.path())?;
        let replaced = dest.exists();
        replace_dir(self.dir.path(), dest).on(IoOp::Rename, dest)?;
        Ok(Swapped {
            held: self.dir,
            dest: dest.to_path_buf(),
            replaced,
        })
    }

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

/// A folder put in place by [`StagedDir::swap_in`], holding what it
/// replaced (if anything) until [`Swapped::finish`] or [`Swapped::undo`].
#[derive(Debug)]
pub struct Swapped {
    /// After an exchange, the old contents; after a plain rename, nothing
    /// (the temporary folder's path is free).
    held: tempfile::TempDir,
    dest: PathBuf,
    replaced: bool,
}

impl Swapped {
    /// Whether a folder was replaced.
    pub fn replaced(&self) -> bool {
        self.replaced
    }

    /// Keeps the new folder; the old one is removed.
    pub fn finish(self) -> Result<(), IoError> {
        if let Some(parent) = self.dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Puts things back as they were before the swap: the old folder at
    /// `dest` again, or nothing there when there was none.
    pub fn undo(self) -> Result<(), IoError> {
        if self.replaced {
            exchange(self.held.path(), &self.dest).on(IoOp::Rename, &self.dest)?;
        } else {
            std::fs::rename(&self.dest, self.held.path()).on(IoOp::Rename, &self.dest)?;
        }
        if let Some(parent) = self.dest.parent() {
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

/// `renameat2`: `Some(result)`, or `None` where the kernel or file system
/// does not support the rename asked for (the caller then falls back to plain
/// renames).
fn renameat2(from: &Path, to: &Path, how: AtomicRename) -> Option<std::io::Result<()>> {
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

/// Removes a file or folder (missing is fine). A folder is first renamed to
/// `.removing-…` beside it, so a sweep killed half-way leaves no half
/// entry under its own name; read-only folders (a frozen layer) are made
/// writable on the way.
pub fn remove_tree(path: &Path) -> Result<(), IoError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IoError::new(IoOp::Inspect, path, e)),
    };
    if !meta.is_dir() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(IoError::new(IoOp::Remove, path, e))
            }
            _ => Ok(()),
        };
    }
    let mut aside = path.to_path_buf();
    if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
        let mut hidden = std::ffi::OsString::from(REMOVING_PREFIX);
        hidden.push(name);
        let candidate = parent.join(hidden);
        if std::fs::rename(path, &candidate).is_ok() {
            aside = candidate;
        }
    }
    make_writable(&aside);
    std::fs::remove_dir_all(&aside).on(IoOp::Remove, &aside)
}

/// Gives the owner write access to every folder below `dir` (so that its
/// entries can be removed); best effort.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(listing) = std::fs::read_dir(dir) {
        for item in listing.flatten() {
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&item.path());
            }
        }
    }
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
    fn a_planted_symlink_is_never_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let target = outside.join("bashrc");
        std::fs::write(&target, "original").unwrap();
        let tree = BeneathDir::create_new(&tmp.path().join("tree")).unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join("tree/a")).unwrap();
        std::os::unix::fs::symlink(&outside, tmp.path().join("tree/d")).unwrap();
        std::os::unix::fs::symlink(outside.join("new"), tmp.path().join("tree/dangling")).unwrap();

        // A file over a link to a file, to a folder, or a dangling one.
        for name in ["a", "d", "dangling"] {
            let err = tree.create_file(name, b"evil", true).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        // A folder through a link to a folder.
        let err = tree.subdir("d").unwrap_err();
        assert!(
            crate::error_chain(&err).contains("symlink"),
            "{}",
            crate::error_chain(&err)
        );
        assert!(tree.symlink("a", "elsewhere").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "original");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0, "chmod went through the link");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        // Not one component: refused.
        for name in ["", ".", "..", "x/y"] {
            assert!(tree.create_file(name, b"x", false).is_err(), "{name:?}");
            assert!(tree.subdir(name).is_err(), "{name:?}");
        }
        // What may be written is written, with its exact mode.
        let sub = tree.subdir("sub").unwrap();
        sub.create_file("run.sh", b"#!/bin/sh\n", true).unwrap();
        sub.symlink("link", "run.sh").unwrap();
        let written = tmp.path().join("tree/sub/run.sh");
        assert_eq!(std::fs::read(&written).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(tree.subdir("sub").is_ok(), "an existing folder is opened");
        assert!(sub.open_file("link").is_err(), "a link is not opened");
        assert!(sub.open_file("run.sh").is_ok());
    }

    #[test]
    fn reads_of_untrusted_files_never_follow_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::write(root.join("secret"), "s3cret").unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), "ok").unwrap();
        std::os::unix::fs::symlink(root.join("secret"), root.join("real/SKILL.md")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked")).unwrap();

        let file = root.join("real/file");
        for how in [NoFollow::LastComponent, NoFollow::Anywhere] {
            assert_eq!(read_capped_no_follow(&file, 10, how).unwrap(), b"ok");
            let err = read_capped_no_follow(&root.join("real/SKILL.md"), 100, how).unwrap_err();
            let text = crate::error_chain(&err);
            assert!(
                text.contains(
                    "SKILL.md is a symlink; it must be a regular file inside the skill folder"
                ),
                "{text}"
            );
            assert!(!text.contains("s3cret"));
        }
        // A linked folder on the way: followed only when allowed.
        let through = root.join("linked/file");
        assert_eq!(
            read_capped_no_follow(&through, 10, NoFollow::LastComponent).unwrap(),
            b"ok"
        );
        let err = read_capped_no_follow(&through, 10, NoFollow::Anywhere).unwrap_err();
        assert!(
            crate::error_chain(&err).contains("linked is a symlink"),
            "{err}"
        );
        // `..` is refused rather than resolved.
        let dotdot = root.join("real/../real/file");
        assert!(read_capped_no_follow(&dotdot, 10, NoFollow::Anywhere).is_err());
        // A FIFO: refused at once, not waited on.
        let fifo = root.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for how in [NoFollow::LastComponent, NoFollow::Anywhere] {
            assert!(matches!(
                read_capped_no_follow(&fifo, 10, how),
                Err(CappedReadError::NotRegular(_))
            ));
        }
        assert!(matches!(
            read_capped_no_follow(&file, 1, NoFollow::Anywhere),
            Err(CappedReadError::TooLarge(_))
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
