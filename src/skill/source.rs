//! What a skill folder holds: its manifest, Rust source (a full crate, or the
//! bare `src/lib.rs` boternity's skill builder writes) and a shipped
//! `skill.wasm`. Refuses folders whose symlinks lead outside them.

use std::path::{Path, PathBuf};

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::skill::manifest::{Manifest, ManifestError};

/// The binary file name in a skill folder and in the store.
pub const WASM_FILE: &str = "skill.wasm";

/// Rust source in one of the two shapes skills ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustSource {
    /// A cargo package: `Cargo.toml` + `src/`.
    Crate { manifest_path: PathBuf },
    /// A lone `src/lib.rs` with no `Cargo.toml`: wrapped in the template crate.
    BareLib { lib_rs: PathBuf },
}

impl RustSource {
    /// `crate` or `bare lib.rs`, for reports.
    pub fn shape(&self) -> &'static str {
        match self {
            RustSource::Crate { .. } => "crate",
            RustSource::BareLib { .. } => "bare lib.rs",
        }
    }
}

/// A skill folder, read and checked.
#[derive(Debug, Clone)]
pub struct SkillFolder {
    /// Canonical path of the folder.
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub rust: Option<RustSource>,
    /// A pre-compiled `skill.wasm` shipped in the folder.
    pub shipped_wasm: Option<PathBuf>,
}

/// Why a skill folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{} is not a skill folder: {reason}", dir.display())]
    NotAFolder { dir: PathBuf, reason: String },
    #[error("cannot read the skill in {}", dir.display())]
    Manifest {
        dir: PathBuf,
        #[source]
        source: ManifestError,
    },
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
    #[error(transparent)]
    Io(#[from] IoError),
}

impl SkillFolder {
    /// Reads the folder: manifest first, then what it ships.
    pub fn open(dir: &Path) -> Result<SkillFolder, SourceError> {
        let not_folder = |reason: String| SourceError::NotAFolder {
            dir: dir.to_path_buf(),
            reason,
        };
        let canonical = dir.canonicalize().map_err(|e| not_folder(e.to_string()))?;
        if !canonical.is_dir() {
            return Err(not_folder(
                "it is a file; pass the folder holding SKILL.md".into(),
            ));
        }
        check_symlinks(&canonical, &canonical)?;
        let manifest = Manifest::load(&canonical).map_err(|source| SourceError::Manifest {
            dir: canonical.clone(),
            source,
        })?;
        let cargo_toml = canonical.join("Cargo.toml");
        let lib_rs = canonical.join("src/lib.rs");
        let rust = if cargo_toml.is_file() {
            Some(RustSource::Crate {
                manifest_path: cargo_toml,
            })
        } else if lib_rs.is_file() {
            Some(RustSource::BareLib { lib_rs })
        } else {
            None
        };
        let wasm = canonical.join(WASM_FILE);
        // Not `is_file()`: a FIFO or device named skill.wasm is refused by
        // name, never mistaken for "no binary" (which would mean a stub).
        let shipped_wasm = match std::fs::metadata(&wasm) {
            Ok(meta) if meta.is_file() => Some(wasm),
            Ok(_) => return Err(SourceError::NotRegularFile { path: wasm }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(IoError::new(IoOp::Inspect, wasm, e).into()),
        };
        Ok(SkillFolder {
            dir: canonical,
            manifest,
            rust,
            shipped_wasm,
        })
    }

    /// sha256 of the folder's source tree (without build output or the shipped
    /// binary): the cache key's main part, and provenance.
    pub fn source_sha256(&self) -> Result<String, SourceError> {
        crate::digest::tree_sha256(&self.dir, |rel| rel == WASM_FILE || rel.ends_with(".cwasm"))
            .on(IoOp::Read, &self.dir)
            .map_err(SourceError::from)
    }
}

/// Every symlink below `dir` must resolve inside `root`.
fn check_symlinks(root: &Path, dir: &Path) -> Result<(), SourceError> {
    for entry in std::fs::read_dir(dir).on(IoOp::List, dir)? {
        let entry = entry.on(IoOp::List, dir)?;
        let path = entry.path();
        let kind = entry.file_type().on(IoOp::Inspect, &path)?;
        if kind.is_symlink() {
            let target = std::fs::canonicalize(&path).unwrap_or_else(|_| {
                std::fs::read_link(&path).unwrap_or_else(|_| PathBuf::from("?"))
            });
            if !target.starts_with(root) {
                return Err(SourceError::SymlinkEscapes { link: path, target });
            }
        } else if kind.is_dir() && entry.file_name() != "target" && entry.file_name() != ".git" {
            check_symlinks(root, &path)?;
        }
    }
    Ok(())
}
