//! The files a skill folder holds: what its body points at (`scripts/`,
//! `references/`, `assets/` …), listed once, checked once, and installed byte
//! for byte with their executable bits.
//!
//! Build output (`target/`) and version-control folders are not part of a
//! skill. A symlink that stays inside the folder counts as the file it points
//! to; one that leads out, and any special file (FIFO, socket, device), is
//! refused by name, as is a folder over the caps on file count and size.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsutil::{IoError, IoOp, IoResultExt};

/// Folders that are never part of a skill.
pub const SKIPPED_DIRS: [&str; 4] = ["target", ".git", ".hg", ".svn"];
/// Most files a skill may hold.
pub const MAX_FILES: usize = 4096;
/// Most bytes a skill's files may hold together.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// One file of a skill folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillFile {
    /// Its path relative to the folder, with `/` separators.
    pub rel: String,
    /// Where its bytes are (a symlink's target, inside the folder).
    pub path: PathBuf,
    pub size: u64,
    /// Any execute bit set (scripts keep theirs when installed).
    pub executable: bool,
}

/// Why a folder's files cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(
        "symlink {} points outside the skill folder (to {}); skills must be self-contained",
        link.display(), target.display()
    )]
    SymlinkEscapes { link: PathBuf, target: PathBuf },
    #[error(
        "{} is not a regular file (a FIFO, socket or device); skills hold only regular files, folders and symlinks within the folder",
        path.display()
    )]
    NotRegularFile { path: PathBuf },
    #[error("symlink {} is dangling (its target {} does not exist); remove it or restore the target", link.display(), target.display())]
    DanglingSymlink { link: PathBuf, target: PathBuf },
    #[error("the skill holds {count} files, over the cap of {MAX_FILES}; largest: {largest}")]
    TooManyFiles { count: usize, largest: String },
    #[error(
        "the skill's files hold {total} bytes, over the cap of {MAX_TOTAL_BYTES}; largest: {largest}"
    )]
    TooLarge { total: u64, largest: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Every file of the skill folder `root` (canonical), sorted by path.
pub fn list(root: &Path) -> Result<Vec<SkillFile>, FilesError> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let total: u64 = files.iter().map(|f| f.size).sum();
    if files.len() > MAX_FILES {
        return Err(FilesError::TooManyFiles {
            count: files.len(),
            largest: largest(&files),
        });
    }
    if total > MAX_TOTAL_BYTES {
        return Err(FilesError::TooLarge {
            total,
            largest: largest(&files),
        });
    }
    Ok(files)
}

/// The five largest files, for an error that says what to remove.
fn largest(files: &[SkillFile]) -> String {
    let mut by_size: Vec<&SkillFile> = files.iter().collect();
    by_size.sort_by(|a, b| b.size.cmp(&a.size).then(a.rel.cmp(&b.rel)));
    by_size
        .iter()
        .take(5)
        .map(|f| format!("{} ({} bytes)", f.rel, f.size))
        .collect::<Vec<_>>()
        .join(", ")
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SkillFile>) -> Result<(), FilesError> {
    for entry in std::fs::read_dir(dir).on(IoOp::List, dir)? {
        let entry = entry.on(IoOp::List, dir)?;
        let path = entry.path();
        let kind = entry.file_type().on(IoOp::Inspect, &path)?;
        if kind.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| entry.file_name() == *s) {
                walk(root, &path, out)?;
            }
            continue;
        }
        let real = if kind.is_symlink() {
            let target = match std::fs::canonicalize(&path) {
                Ok(target) => target,
                Err(_) => {
                    let written = std::fs::read_link(&path).unwrap_or_default();
                    // Where it would lead, to tell a dangling link inside
                    // from one leading out.
                    let resolved = path.parent().unwrap_or(root).join(&written);
                    let lexical = lexically_normal(&resolved);
                    if lexical.starts_with(root) {
                        return Err(FilesError::DanglingSymlink {
                            link: path,
                            target: written,
                        });
                    }
                    return Err(FilesError::SymlinkEscapes {
                        link: path,
                        target: written,
                    });
                }
            };
            if !target.starts_with(root) {
                return Err(FilesError::SymlinkEscapes { link: path, target });
            }
            if target.is_dir() {
                // A link to a folder inside: its files are listed where they are.
                continue;
            }
            target
        } else {
            path.clone()
        };
        let meta = std::fs::metadata(&real).on(IoOp::Inspect, &real)?;
        if !meta.is_file() {
            return Err(FilesError::NotRegularFile { path });
        }
        let rel = rel_path(root, &path);
        out.push(SkillFile {
            rel,
            path: real,
            size: meta.len(),
            executable: is_executable(&meta),
        });
    }
    Ok(())
}

/// `path` with `.` and `..` resolved without touching the file system.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `root`, with `/` separators: how a skill's files are
/// named in provenance, indexes and lock files.
pub fn rel_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
}

/// A file's bytes, read once: what is installed, hashed and recorded are the
/// same bytes, whatever happens to the folder meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub rel: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

/// Reads `files` (each capped at the size it was listed with, so a file
/// growing meanwhile cannot exceed the folder's caps), each opened at its
/// real path without following a symlink anywhere on the way: a link that
/// appeared since the folder was listed is refused, never read through.
pub fn read_all<'a>(
    files: impl IntoIterator<Item = &'a SkillFile>,
) -> Result<Vec<FileContent>, FilesError> {
    files
        .into_iter()
        .map(|f| {
            Ok(FileContent {
                rel: f.rel.clone(),
                bytes: read_one(f)?,
                executable: f.executable,
            })
        })
        .collect()
}

/// The bytes of one listed file (see [`read_all`]).
pub fn read_one(f: &SkillFile) -> Result<Vec<u8>, FilesError> {
    use crate::fsutil::{CappedReadError, NoFollow, read_capped_no_follow};
    read_capped_no_follow(&f.path, f.size, NoFollow::Anywhere).map_err(|e| match e {
        CappedReadError::Io(e) => FilesError::Io(e),
        CappedReadError::TooLarge(t) => FilesError::TooLarge {
            total: t.size,
            largest: format!("{} grew while it was read", f.rel),
        },
        CappedReadError::NotRegular(path) => FilesError::NotRegularFile { path },
    })
}

/// sha256 over files: each one's relative path and contents, in path order,
/// so renaming, adding or editing any file changes it while the folder's own
/// location does not. Each file is read as [`read_all`] reads it.
pub fn sha256<'a>(files: impl IntoIterator<Item = &'a SkillFile>) -> Result<String, IoError> {
    let mut hasher = Sha256::new();
    for file in files {
        let contents = read_one(file).map_err(|e| match e {
            FilesError::Io(e) => e,
            other => IoError::new(
                IoOp::Read,
                &file.path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
            ),
        })?;
        hasher.update((file.rel.len() as u64).to_le_bytes());
        hasher.update(file.rel.as_bytes());
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_with_modes_and_skips_build_output() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        std::fs::create_dir_all(root.join("assets/img/deep")).unwrap();
        std::fs::create_dir_all(root.join("target/release")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("SKILL.md"), "x").unwrap();
        std::fs::write(root.join("scripts/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("scripts/run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(root.join("assets/img/deep/a.png"), [0u8, 1, 2]).unwrap();
        std::fs::write(root.join("target/release/x"), "built").unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        std::os::unix::fs::symlink("scripts/run.sh", root.join("run")).unwrap();
        let files = list(&root).unwrap();
        let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            ["SKILL.md", "assets/img/deep/a.png", "run", "scripts/run.sh"]
        );
        assert!(files[3].executable && !files[0].executable);
        assert_eq!(files[2].path, root.join("scripts/run.sh"));
    }

    #[test]
    fn the_tree_hash_ignores_location_and_build_output_but_not_content() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("src")).unwrap();
            std::fs::write(d.join("src/lib.rs"), "fn x() {}").unwrap();
            std::fs::create_dir_all(d.join("target")).unwrap();
        }
        std::fs::write(b.path().join("target/junk"), "x").unwrap();
        let hash = |d: &Path| sha256(&list(&d.canonicalize().unwrap()).unwrap()).unwrap();
        assert_eq!(hash(a.path()), hash(b.path()));
        std::fs::write(b.path().join("src/lib.rs"), "fn y() {}").unwrap();
        assert_ne!(hash(a.path()), hash(b.path()));
    }

    #[test]
    fn escaping_links_special_files_and_caps_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("out")).unwrap();
        assert!(matches!(
            list(&root),
            Err(FilesError::SymlinkEscapes { .. })
        ));
        std::fs::remove_file(root.join("out")).unwrap();
        let fifo = std::ffi::CString::new(root.join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = list(&root).unwrap_err();
        assert!(err.to_string().contains("pipe"), "{err}");
        std::fs::remove_file(root.join("pipe")).unwrap();
        let big = std::fs::File::create(root.join("big.bin")).unwrap();
        big.set_len(MAX_TOTAL_BYTES + 1).unwrap();
        let err = list(&root).unwrap_err();
        assert!(
            matches!(err, FilesError::TooLarge { .. }) && err.to_string().contains("big.bin"),
            "{err}"
        );
    }
}
