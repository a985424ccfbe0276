//! The skill store: boternity's own layout, `<data>/skills/<name>/` holding
//! `SKILL.md`, `skill.wasm` (when it has one), boternity's optional
//! `.boternity-meta.toml`, and our provenance record and `.cwasm` beside them.
//!
//! Changes are atomic: a new version is staged in a hidden folder next to the
//! skills and swapped in with one rename (an exchange on Linux), under a lock
//! on the skills folder, so readers see the old version or the new one, never a
//! mix, and a failure leaves the store as it was.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::executor::{ExecError, Executor, Grants, LoadedSkill};
use crate::manifest::TrustTier;
use crate::manifest::{self, Manifest, ManifestError};
use crate::provenance::{PROVENANCE_FILE, Provenance, ProvenanceError};
use crate::source::WASM_FILE;
use crate::validate::{self, BinaryKind};

/// boternity's own install metadata, kept across reinstalls.
pub const META_FILE: &str = ".boternity-meta.toml";
/// The precompiled component beside `skill.wasm`.
pub const CWASM_FILE: &str = "skill.cwasm";

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
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
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
    pub manifest_text: Vec<u8>,
    pub wasm: Option<Vec<u8>>,
    pub cwasm: Option<Vec<u8>>,
    pub provenance: Option<Provenance>,
}

impl SkillStore {
    pub fn new(root: impl Into<PathBuf>) -> SkillStore {
        SkillStore { root: root.into() }
    }

    /// boternity's data folder: `$BOTERNITY_DATA_DIR`, else `~/.boternity`.
    pub fn default_root() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("BOTERNITY_DATA_DIR") {
            return Some(PathBuf::from(dir));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".boternity"))
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
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut skills = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
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
        let skills = self.skills_dir();
        std::fs::create_dir_all(&skills).map_err(io(&skills))?;
        let _lock = lock(&skills)?;

        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{name}-"))
            .tempdir_in(&skills)
            .map_err(io(&skills))?;
        let stage = staging.path();
        write_synced(&stage.join(manifest::MANIFEST_FILE), &staged.manifest_text)?;
        if let Some(wasm) = &staged.wasm {
            write_synced(&stage.join(WASM_FILE), wasm)?;
        }
        if let Some(cwasm) = &staged.cwasm {
            write_synced(&stage.join(CWASM_FILE), cwasm)?;
        }
        if let Some(provenance) = &staged.provenance {
            write_synced(&stage.join(PROVENANCE_FILE), &provenance.to_json())?;
        }
        // boternity's own metadata survives a reinstall.
        let meta = dest.join(META_FILE);
        if meta.is_file() {
            std::fs::copy(&meta, stage.join(META_FILE)).map_err(io(&meta))?;
        }
        if let Ok(dir) = File::open(stage) {
            let _ = dir.sync_all();
        }

        let replaced = dest.exists();
        // On a replace the staging folder ends up holding the old version, and
        // is removed when `staging` drops.
        crate::fsutil::replace_dir(stage, &dest).map_err(io(&dest))?;
        if let Ok(dir) = File::open(&skills) {
            let _ = dir.sync_all();
        }
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
        let _lock = lock(&skills)?;
        let trash = tempfile::Builder::new()
            .prefix(&format!(".removing-{name}-"))
            .tempdir_in(&skills)
            .map_err(io(&skills))?;
        let target = trash.path().join(name);
        std::fs::rename(&dest, &target).map_err(io(&dest))?;
        drop(trash);
        Ok(())
    }
}

/// What an installed `skill.wasm` is. A WebAssembly binary is told by its
/// 8-byte header alone (a lookup must not read whole binaries); anything else
/// is read to see whether it is a stub.
fn binary_kind(path: &Path) -> Result<InstalledBinary, StoreError> {
    let mut header = [0u8; 8];
    let mut file = File::open(path).map_err(io(path))?;
    let read = std::io::Read::read(&mut file, &mut header).map_err(io(path))?;
    let header = &header[..read];
    if header.starts_with(b"\0asm") {
        return Ok(match validate::classify(header) {
            Ok(BinaryKind::Component) => InstalledBinary::Component,
            _ => InstalledBinary::Unknown,
        });
    }
    let size = file.metadata().map_err(io(path))?.len();
    if size > validate::MAX_WASM_BYTES {
        return Ok(InstalledBinary::Unknown);
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(match validate::classify(&bytes) {
        Ok(BinaryKind::Stub(_)) => InstalledBinary::Stub,
        _ => InstalledBinary::Unknown,
    })
}

/// Exclusive lock on the skills folder, released on drop. Locking the folder
/// itself adds no file to the store.
fn lock(skills: &Path) -> Result<File, StoreError> {
    let dir = File::open(skills).map_err(io(skills))?;
    dir.lock().map_err(io(skills))?;
    Ok(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(io(path))?;
    std::io::Write::write_all(&mut file, bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}
