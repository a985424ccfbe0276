//! The skill store: boternity's own layout, `<data>/skills/<name>/` holding
//! `SKILL.md`, `skill.wasm` (when it has one), boternity's optional
//! `.boternity-meta.toml`, and our provenance record and `.cwasm` beside them.
//!
//! Changes are atomic: a new version is staged in a hidden folder next to the
//! skills and swapped in with one rename (an exchange on Linux), under a lock
//! on the skills folder, so readers see the old version or the new one, never a
//! mix, and a failure leaves the store as it was.

pub mod install;
pub mod lock;
pub mod provenance;
pub mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsutil::{IoError, IoOp, IoResultExt, REMOVING_PREFIX, StagedDir};
use crate::skill::files::FileContent;

use crate::executor::{ExecError, Executor, Grants, LoadedSkill};
use crate::skill::manifest::TrustTier;
use crate::skill::manifest::{self, Manifest, ManifestError};
use crate::skill::source::WASM_FILE;
use crate::skill::validate::{self, BinaryKind};
use crate::store::provenance::{PROVENANCE_FILE, Provenance, ProvenanceError};

/// boternity's own install metadata (kept across reinstalls) and the
/// precompiled component beside `skill.wasm`.
pub use crate::skill::source::{CWASM_FILE, META_FILE};

/// A store rooted at a data folder.
#[derive(Debug, Clone)]
pub struct SkillStore {
    root: PathBuf,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no skill named `{name}` is installed in {}", store.display())]
    NotInstalled { name: String, store: PathBuf },
    #[error(transparent)]
    InvalidName(#[from] ManifestError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
}

/// An installed skill, as found in the store.
#[derive(Debug, Clone)]
pub struct InstalledSkill {
    pub name: String,
    pub dir: PathBuf,
    /// The manifest, or why it cannot be read.
    pub manifest: Result<Manifest, String>,
    /// What `skill.wasm` is, if there is one.
    pub binary: Option<InstalledBinary>,
    /// `None` for skills installed by boternity's old installer.
    pub provenance: Option<Provenance>,
}

impl InstalledSkill {
    /// The tier it was installed under; `untrusted` for old installs, whatever
    /// their `SKILL.md` claims.
    pub fn trust_tier(&self) -> TrustTier {
        self.provenance
            .as_ref()
            .map_or(TrustTier::Untrusted, |p| p.trust_tier)
    }

    /// What it may do: the install-time grants (for old installs, the
    /// manifest's capabilities), confined to its data folder in `store`.
    pub fn grants(&self, store: &SkillStore) -> Grants {
        let mut grants = match (&self.provenance, &self.manifest) {
            (Some(p), _) => p.grants.clone(),
            (None, Ok(m)) => Grants::from_manifest(m),
            (None, Err(_)) => Grants::none(),
        };
        grants.data_dir = Some(store.data_dir(&self.name));
        grants
    }

    /// Loads its binary into `executor`, through the `.cwasm` when the
    /// provenance record vouches for it.
    pub fn load(&self, executor: &Executor) -> Result<Arc<LoadedSkill>, ExecError> {
        let wasm = self.dir.join(WASM_FILE);
        if self.binary.is_none() {
            return Err(ExecError::NoBinary {
                name: self.name.clone(),
            });
        }
        let cwasm = self.dir.join(CWASM_FILE);
        if let Some(record) = self.provenance.as_ref().and_then(|p| p.cwasm.as_ref())
            && cwasm.is_file()
        {
            return executor.load_precompiled(&wasm, &cwasm, record);
        }
        let bytes = std::fs::read(&wasm).map_err(|source| ExecError::Io {
            path: wasm.clone(),
            source,
        })?;
        executor.load(&bytes)
    }
}

/// The kind of an installed `skill.wasm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstalledBinary {
    Component,
    Stub,
    /// Neither (corrupt, or a core module from elsewhere).
    Unknown,
}

/// Files to place in a skill's folder, written by [`SkillStore::commit`].
#[derive(Debug, Default)]
pub struct StagedSkill {
    /// The skill folder's files, `SKILL.md` among them, byte for byte.
    pub files: Vec<FileContent>,
    pub wasm: Option<Vec<u8>>,
    pub cwasm: Option<Vec<u8>>,
    pub provenance: Option<Provenance>,
}

impl SkillStore {
    pub fn new(root: impl Into<PathBuf>) -> SkillStore {
        SkillStore { root: root.into() }
    }

    /// The store in boternity's data folder ([`crate::paths::data_dir`]).
    pub fn default_root() -> Option<PathBuf> {
        crate::paths::data_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn skills_dir(&self) -> PathBuf {
        self.root.join("skills")
    }

    /// Where an installed skill's `read-file`/`write-file` are confined. Outside
    /// the skill's own folder, so reinstalls keep the data.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join("skill-data").join(name)
    }

    /// The folder of skill `name` (checked to be a plain skill name first, so
    /// nothing like `..` or `a/b` can leave the store).
    pub fn skill_dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        manifest::check_name(name)?;
        Ok(self.skills_dir().join(name))
    }

    /// The installed skill `name`.
    pub fn get(&self, name: &str) -> Result<InstalledSkill, StoreError> {
        let dir = self.skill_dir(name)?;
        if !dir.join(manifest::MANIFEST_FILE).is_file() {
            return Err(StoreError::NotInstalled {
                name: name.into(),
                store: self.root.clone(),
            });
        }
        self.read_skill(name, dir)
    }

    fn read_skill(&self, name: &str, dir: PathBuf) -> Result<InstalledSkill, StoreError> {
        let manifest = Manifest::load(&dir).map_err(|e| e.to_string());
        let wasm_path = dir.join(WASM_FILE);
        let binary = if wasm_path.is_file() {
            Some(binary_kind(&wasm_path)?)
        } else {
            None
        };
        Ok(InstalledSkill {
            name: name.into(),
            provenance: Provenance::read(&dir)?,
            dir,
            manifest,
            binary,
        })
    }

    /// Every installed skill, by name.
    pub fn list(&self) -> Result<Vec<InstalledSkill>, StoreError> {
        let dir = self.skills_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(IoError::new(IoOp::List, &dir, e).into()),
        };
        let mut skills = Vec::new();
        for entry in entries {
            let entry = entry.on(IoOp::List, &dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            skills.push(self.read_skill(&name, entry.path())?);
        }
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(skills)
    }

    /// Installs `staged` as skill `name`, replacing any installed version
    /// atomically. Returns whether a version was replaced.
    pub fn commit(&self, name: &str, staged: StagedSkill) -> Result<bool, StoreError> {
        let dest = self.skill_dir(name)?;
        let _lock = self.lock()?;
        let stage = StagedDir::new_in(&self.skills_dir(), name)?;
        for file in &staged.files {
            stage.write_file(Path::new(&file.rel), &file.bytes, file.executable)?;
        }
        if let Some(wasm) = &staged.wasm {
            stage.write(WASM_FILE, wasm)?;
        }
        if let Some(cwasm) = &staged.cwasm {
            stage.write(CWASM_FILE, cwasm)?;
        }
        if let Some(provenance) = &staged.provenance {
            stage.write(PROVENANCE_FILE, &provenance.to_json())?;
        }
        // boternity's own metadata survives a reinstall.
        let meta = dest.join(META_FILE);
        if meta.is_file() {
            let kept = stage.path().join(META_FILE);
            std::fs::copy(&meta, &kept).on(IoOp::Copy, &meta)?;
        }
        let replaced = stage.commit(&dest)?;
        // Still under the lock: skills.lock follows every change.
        lock::write(self)?;
        Ok(replaced)
    }

    /// Removes skill `name`: one rename out of sight, then deletion.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let dest = self.skill_dir(name)?;
        if !dest.exists() {
            return Err(StoreError::NotInstalled {
                name: name.into(),
                store: self.root.clone(),
            });
        }
        let skills = self.skills_dir();
        let _lock = self.lock()?;
        let trash = tempfile::Builder::new()
            .prefix(&format!("{REMOVING_PREFIX}{name}-"))
            .tempdir_in(&skills)
            .on(IoOp::Create, &skills)?;
        let target = trash.path().join(name);
        std::fs::rename(&dest, &target).on(IoOp::Rename, &dest)?;
        drop(trash);
        lock::write(self)?;
        Ok(())
    }

    /// Takes the exclusive lock on the skills folder (created if missing),
    /// released on drop, and removes what a killed install or removal left
    /// behind: under the lock, no staging folder belongs to a live writer.
    /// Locking the folder itself adds no file to the store.
    fn lock(&self) -> Result<File, StoreError> {
        let skills = self.skills_dir();
        std::fs::create_dir_all(&skills).on(IoOp::Create, &skills)?;
        let dir = File::open(&skills).on(IoOp::Read, &skills)?;
        dir.lock().on(IoOp::Lock, &skills)?;
        let swept = crate::fsutil::sweep_stale(&skills)?;
        if swept > 0 {
            tracing::info!(swept, store = %skills.display(), "removed folders left by an interrupted install");
        }
        Ok(dir)
    }
}

/// What an installed `skill.wasm` is. A WebAssembly binary is told by its
/// 8-byte header alone (a lookup must not read whole binaries); anything else
/// is read to see whether it is a stub.
fn binary_kind(path: &Path) -> Result<InstalledBinary, StoreError> {
    let mut header = [0u8; 8];
    let mut file = File::open(path).on(IoOp::Read, path)?;
    let read = std::io::Read::read(&mut file, &mut header).on(IoOp::Read, path)?;
    let header = &header[..read];
    if header.starts_with(b"\0asm") {
        return Ok(match validate::classify(header) {
            Ok(BinaryKind::Component) => InstalledBinary::Component,
            _ => InstalledBinary::Unknown,
        });
    }
    let size = file.metadata().on(IoOp::Inspect, path)?.len();
    if size > validate::MAX_WASM_BYTES {
        return Ok(InstalledBinary::Unknown);
    }
    let bytes = std::fs::read(path).on(IoOp::Read, path)?;
    Ok(match validate::classify(&bytes) {
        Ok(BinaryKind::Stub(_)) => InstalledBinary::Stub,
        _ => InstalledBinary::Unknown,
    })
}
