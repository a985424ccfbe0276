//! What a skill folder holds: its manifest, Rust source (a full crate, or the
//! bare `src/lib.rs` boternity's skill builder writes) and a shipped
//! `skill.wasm`. Refuses folders whose symlinks lead outside them.

use std::path::{Path, PathBuf};

use crate::fsutil::{IoError, IoOp};
use crate::skill::files::{self, FilesError, SkillFile};
use crate::skill::manifest::{Manifest, ManifestError};

/// The binary file name in a skill folder and in the store.
pub const WASM_FILE: &str = "skill.wasm";
/// Names the store writes beside an installed skill's files (defined here, with
/// the skill folder's layout, so a folder's own copies are never installed).
pub const CWASM_FILE: &str = "skill.cwasm";
pub const PROVENANCE_FILE: &str = ".boternity-provenance.json";
pub const META_FILE: &str = ".boternity-meta.toml";

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
    /// Every file of the folder (`SKILL.md`, source, `scripts/`, `assets/` …).
    pub files: Vec<SkillFile>,
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
    #[error(transparent)]
    Files(#[from] FilesError),
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
        let files = files::list(&canonical)?;
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
            files,
        })
    }

    /// The files installed with the skill: all of them but a shipped binary
    /// (the pipeline's own takes its place) and names the store writes itself.
    pub fn installed_files(&self) -> impl Iterator<Item = &SkillFile> {
        self.files.iter().filter(|f| !is_store_owned(&f.rel))
    }

    /// sha256 of the folder's source tree (without build output or the shipped
    /// binary): the cache key's main part, and provenance.
    pub fn source_sha256(&self) -> Result<String, SourceError> {
        let source = self
            .files
            .iter()
            .filter(|f| f.rel != WASM_FILE && !f.rel.ends_with(".cwasm"));
        Ok(files::sha256(source)?)
    }
}

/// Names at a skill's top level that the store writes itself: a skill
/// folder's own copies are never installed over them.
pub fn is_store_owned(rel: &str) -> bool {
    const STORE_FILES: [&str; 4] = [WASM_FILE, CWASM_FILE, PROVENANCE_FILE, META_FILE];
    STORE_FILES.contains(&rel) || rel.ends_with(".cwasm")
}
