//! What a skill folder holds: its manifest, Rust source (a full crate, or the
//! bare `src/lib.rs` boternity's skill builder writes) and a shipped
//! `skill.wasm`. Refuses folders whose symlinks lead outside them, and a
//! `SKILL.md` or `Cargo.toml` that is a symlink at all.

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
        // What the folder ships is taken from its listing, which resolved
        // every link and kept only regular files inside the folder; nothing
        // here follows a link by itself. `Cargo.toml` (like `SKILL.md`) must
        // not be a link at all.
        let listed = |rel: &str| files.iter().find(|f| f.rel == rel);
        let cargo_toml = canonical.join("Cargo.toml");
        let lib_rs = canonical.join("src/lib.rs");
        let rust = if regular_file(&cargo_toml)? {
            Some(RustSource::Crate {
                manifest_path: cargo_toml,
            })
        } else if listed("src/lib.rs").is_some() {
            Some(RustSource::BareLib { lib_rs })
        } else {
            None
        };
        let wasm = canonical.join(WASM_FILE);
        // A FIFO or device named skill.wasm is refused by name (by the
        // listing), never mistaken for "no binary" (which would mean a stub);
        // so is a folder, or a link to one.
        let shipped_wasm = match listed(WASM_FILE) {
            Some(f) => Some(f.path.clone()),
            None => match std::fs::symlink_metadata(&wasm) {
                Ok(_) => return Err(SourceError::NotRegularFile { path: wasm }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(IoError::new(IoOp::Inspect, wasm, e).into()),
            },
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

/// Whether `path` is there as a regular file, without following a link: a
/// link is refused with the rule, a FIFO or device by name; a folder or
/// nothing at all is "no".
fn regular_file(path: &Path) -> Result<bool, SourceError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            Err(IoError::new(
                IoOp::Inspect,
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{name} is a symlink; it must be a regular file inside the skill folder"
                    ),
                ),
            )
            .into())
        }
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) if meta.is_dir() => Ok(false),
        Ok(_) => Err(SourceError::NotRegularFile {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(IoError::new(IoOp::Inspect, path, e).into()),
    }
}

/// Names at a skill's top level that the store writes itself: a skill
/// folder's own copies are never installed over them.
pub fn is_store_owned(rel: &str) -> bool {
    const STORE_FILES: [&str; 4] = [WASM_FILE, CWASM_FILE, PROVENANCE_FILE, META_FILE];
    STORE_FILES.contains(&rel) || rel.ends_with(".cwasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = "---\nname: linked\ndescription: A skill.\n---\nBody.\n";

    #[test]
    fn skill_md_and_cargo_toml_must_be_regular_files_and_other_links_inside_still_work() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap().join("linked");
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join("notes.md"), MD).unwrap();
        let rule = "is a symlink; it must be a regular file inside the skill folder";

        std::os::unix::fs::symlink("notes.md", root.join("SKILL.md")).unwrap();
        let err = crate::error_chain(&SkillFolder::open(&root).unwrap_err());
        assert!(err.contains(&format!("SKILL.md {rule}")), "{err}");

        std::fs::remove_file(root.join("SKILL.md")).unwrap();
        std::fs::write(root.join("SKILL.md"), MD).unwrap();
        std::fs::write(root.join("real.toml"), "[package]\n").unwrap();
        std::os::unix::fs::symlink("real.toml", root.join("Cargo.toml")).unwrap();
        let err = crate::error_chain(&SkillFolder::open(&root).unwrap_err());
        assert!(err.contains(&format!("Cargo.toml {rule}")), "{err}");
        std::fs::remove_file(root.join("Cargo.toml")).unwrap();

        // A shipped binary and a bare lib.rs reached through links inside
        // the folder: taken at their real paths.
        std::fs::write(root.join("build/out.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink("build/out.wasm", root.join(WASM_FILE)).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("code.rs"), "// lib\n").unwrap();
        std::os::unix::fs::symlink("../code.rs", root.join("src/lib.rs")).unwrap();
        let folder = SkillFolder::open(&root).unwrap();
        assert_eq!(folder.shipped_wasm, Some(root.join("build/out.wasm")));
        assert_eq!(
            folder.rust,
            Some(RustSource::BareLib {
                lib_rs: root.join("src/lib.rs")
            })
        );

        // A folder named skill.wasm is refused by name, not taken for none.
        std::fs::remove_file(root.join(WASM_FILE)).unwrap();
        std::fs::create_dir(root.join(WASM_FILE)).unwrap();
        assert!(matches!(
            SkillFolder::open(&root),
            Err(SourceError::NotRegularFile { .. })
        ));
    }
}
