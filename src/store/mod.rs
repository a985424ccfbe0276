//! The skill store: boternity's own layout, `<data>/skills/<name>/` holding
//! `SKILL.md`, `skill.wasm` (when it has one), boternity's optional
//! `.boternity-meta.toml`, and our provenance record and `.cwasm` beside them.
//!
//! Changes are atomic: a new version is staged in a hidden folder next to the
//! skills and swapped in with one rename (an exchange on Linux), under a lock
//! on the skills folder, so readers see the old version or the new one, never a
//! mix, and a failure leaves the store as it was. Several skills commit
//! together ([`SkillStore::commit_all`]): all are staged, then swapped in under
//! one lock, and swapped back should one fail. The store only reads, stages,
//! commits and locks: deciding what to install is the install layer's
//! ([`mod@crate::install`]).
//!
//! A name belongs to one origin: a commit replaces an installed skill only
//! when it comes from the same place (the same folder, registry, or
//! repository and path), unless forced. A skill's data folder
//! (`<data>/skill-data/<name>/`) belongs to its install: same-origin upgrades
//! keep it; a removal deletes it (unless kept, and then only a reinstall from
//! the same origin gets it back); a skill of another origin starts without it.

pub mod lock;
pub mod provenance;
pub mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsutil::{IoError, IoOp, IoResultExt, REMOVING_PREFIX, StagedDir, Swapped};
use crate::skill::files::FileContent;

use crate::executor::grants::Requested;
use crate::executor::{ExecError, Executor, Grants, LoadedSkill};
use crate::skill::manifest::TrustTier;
use crate::skill::manifest::{self, Manifest, ManifestError};
use crate::skill::source::WASM_FILE;
use crate::skill::validate::{self, BinaryKind};
use crate::store::provenance::{Origin, PROVENANCE_FILE, Provenance, ProvenanceError};

/// boternity's own install metadata (kept across reinstalls) and the
/// precompiled component beside `skill.wasm`.
pub use crate::skill::source::{CWASM_FILE, META_FILE};

/// How to proceed when a name is taken by a skill of another origin: the end
/// of [`StoreError::OtherOrigin`]'s text (a caller adds its own way to force).
pub const REPLACE_ADVICE: &str = "remove it first, or force the replacement";

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
    #[error("`{name}` is to be installed twice in one change")]
    Twice { name: String },
    #[error(
        "`{name}` is already installed from {installed}; installing it from {new} would replace \
         it and delete its data folder: {REPLACE_ADVICE}"
    )]
    OtherOrigin {
        name: String,
        /// The installed skill's origin, described.
        installed: String,
        /// The new one's.
        new: String,
    },
}

/// An installed skill, as found in the store.
#[derive(Debug, Clone)]
pub struct InstalledSkill {
    pub name: String,
    pub dir: PathBuf,
    /// The manifest, or why it cannot be read.
    pub manifest: Result<Manifest, Arc<ManifestError>>,
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

    /// What it may do, confined to its data folder in `store`: what the
    /// installer granted and, of what its `SKILL.md` asks for, what its trust
    /// tier's policy allows (`Grants::for_install`). Nothing for a skill
    /// without provenance (boternity's old installer: `untrusted`).
    pub fn grants(&self, store: &SkillStore) -> Grants {
        let mut grants = Grants::for_install(
            self.trust_tier(),
            &self.requested(),
            &self.installer_grants(),
        );
        grants.data_dir = Some(store.data_dir(&self.name));
        grants
    }

    /// What the installer granted, as recorded (no data folder).
    ///
    /// Records written before requests were kept apart (no `requested`)
    /// hold the manifest's capabilities and secrets merged with the
    /// installer's grants: what the installed `SKILL.md` declares is taken as
    /// a request, and only the rest as the installer's. A grant the installer
    /// gave that the manifest also declared is lost that way (a reinstall
    /// with it restores it); when the `SKILL.md` no longer reads, nothing
    /// tells them apart and nothing is granted.
    pub fn installer_grants(&self) -> Grants {
        let mut grants = match (&self.provenance, &self.manifest) {
            (Some(p), _) if p.requested.is_some() => p.grants.clone(),
            (Some(p), Ok(manifest)) => {
                let requested = Requested::of(manifest);
                let mut installer = p.grants.clone();
                installer
                    .capabilities
                    .retain(|c| !requested.capabilities.contains(c));
                installer.secrets.retain(|s| !requested.secrets.contains(s));
                installer
            }
            _ => Grants::none(),
        };
        grants.data_dir = None;
        grants
    }

    /// Where it was installed from, if recorded.
    pub fn origin(&self) -> Option<&Origin> {
        self.provenance.as_ref().and_then(|p| p.origin.as_ref())
    }

    /// What its `SKILL.md` asks for (as recorded, else as it reads now).
    pub fn requested(&self) -> Requested {
        match (
            self.provenance.as_ref().and_then(|p| p.requested.as_ref()),
            &self.manifest,
        ) {
            (Some(requested), _) => requested.clone(),
            (None, Ok(manifest)) => Requested::of(manifest),
            (None, Err(_)) => Requested::default(),
        }
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
        // The record came with the install; the executor still checks that
        // it is this machine's and that the file is the one it names.
        let precompiled = match self.provenance.as_ref().and_then(|p| p.cwasm.as_ref()) {
            Some(record) if cwasm.is_file() => Some(crate::executor::Precompiled {
                cwasm,
                record: record.clone(),
            }),
            _ => None,
        };
        executor.load(crate::executor::SkillSource::File {
            wasm: &wasm,
            precompiled,
        })
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

/// What a [`SkillStore::commit`] did besides installing.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// A version was replaced.
    pub replaced: bool,
    /// What is worth telling: a forced replacement, a data folder deleted.
    pub notes: Vec<String>,
}

/// What a [`SkillStore::remove`] did with the skill's data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedData {
    /// There was none.
    None,
    Deleted,
    /// Kept, for a reinstall from the same origin only.
    Kept,
}

/// Whose the folder at a skill's place is.
enum Occupant {
    Nobody,
    /// Installed from this origin.
    From(Origin),
    /// Installed, from an origin not known (the reason, described).
    Unknown(String),
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

    /// The store in the data folder of `folders`.
    pub fn in_folders(folders: &crate::paths::Folders) -> SkillStore {
        SkillStore::new(folders.data.clone())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn skills_dir(&self) -> PathBuf {
        self.root.join("skills")
    }

    /// Where an installed skill's `read-file`/`write-file` are confined. Outside
    /// the skill's own folder, so same-origin reinstalls keep the data.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.data_root().join(name)
    }

    fn data_root(&self) -> PathBuf {
        self.root.join("skill-data")
    }

    /// The record of whose a data folder kept by a removal is
    /// (`<data>/skill-data/<name>.kept.json`: beside the folder, out of the
    /// skill's reach).
    fn kept_record(&self, name: &str) -> PathBuf {
        self.data_root().join(format!("{name}.kept.json"))
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
        let manifest = Manifest::load(&dir).map_err(Arc::new);
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

    /// Refuses to replace skill `name` with an install from `new` when it
    /// was installed from elsewhere (a skill installed before origins were
    /// recorded counts as elsewhere), unless `force`. A check without the
    /// lock, to refuse before the work of an install; [`SkillStore::commit`]
    /// checks again under it.
    pub fn check_replace(
        &self,
        name: &str,
        new: Option<&Origin>,
        force: bool,
    ) -> Result<(), StoreError> {
        let occupant = self.occupant(&self.skill_dir(name)?);
        self.refuse_other_origin(name, &occupant, new, force)
    }

    fn refuse_other_origin(
        &self,
        name: &str,
        occupant: &Occupant,
        new: Option<&Origin>,
        force: bool,
    ) -> Result<(), StoreError> {
        let installed = match occupant {
            Occupant::Nobody => return Ok(()),
            Occupant::From(o) if new.is_some_and(|n| o.same_source(n)) => return Ok(()),
            Occupant::From(o) => o.describe(),
            Occupant::Unknown(why) => why.clone(),
        };
        if force {
            return Ok(());
        }
        Err(StoreError::OtherOrigin {
            name: name.into(),
            installed,
            new: new.map_or("an unrecorded origin".into(), Origin::describe),
        })
    }

    /// Whose the skill folder `dest` is.
    fn occupant(&self, dest: &Path) -> Occupant {
        if std::fs::symlink_metadata(dest).is_err() {
            return Occupant::Nobody;
        }
        match Provenance::read(dest) {
            Ok(Some(Provenance {
                origin: Some(origin),
                ..
            })) => Occupant::From(origin),
            Ok(_) => Occupant::Unknown(
                "an unknown origin (installed before origins were recorded)".into(),
            ),
            Err(e) => Occupant::Unknown(format!("an unknown origin ({e})")),
        }
    }

    /// The origin a data folder kept by a removal belongs to, if recorded.
    fn kept_origin(&self, name: &str) -> Option<Origin> {
        let bytes = std::fs::read(self.kept_record(name)).ok()?;
        serde_json::from_slice::<KeptData>(&bytes).ok()?.origin
    }

    /// Installs `staged` as skill `name`, replacing any installed version
    /// atomically: one of the same origin (as `staged`'s provenance records
    /// it), or with `force` any. The skill's data folder is kept for a
    /// same-origin replacement (or when a removal kept it for this origin)
    /// and deleted otherwise, so another skill never starts with it.
    pub fn commit(
        &self,
        name: &str,
        staged: StagedSkill,
        force: bool,
    ) -> Result<Committed, StoreError> {
        let mut done = self.commit_all(vec![(name.to_string(), staged)], force)?;
        Ok(done.pop().unwrap_or_default())
    }

    /// Installs several skills together, as [`SkillStore::commit`] installs
    /// one: every name is checked and every folder staged first, then all
    /// are swapped in under one lock; should one swap fail, those already
    /// swapped are swapped back. The store holds all of them or none.
    pub fn commit_all(
        &self,
        skills: Vec<(String, StagedSkill)>,
        force: bool,
    ) -> Result<Vec<Committed>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for (name, _) in &skills {
            manifest::check_name(name)?;
            if !names.insert(name.as_str()) {
                return Err(StoreError::Twice { name: name.clone() });
            }
        }
        let _lock = self.lock()?;
        // 1. Every name, before anything is written.
        let mut plans = Vec::with_capacity(skills.len());
        for (name, staged) in skills {
            let dest = self.skill_dir(&name)?;
            let new = staged.provenance.as_ref().and_then(|p| p.origin.clone());
            let occupant = self.occupant(&dest);
            self.refuse_other_origin(&name, &occupant, new.as_ref(), force)?;
            let mut notes = Vec::new();
            let keep_data = match &occupant {
                Occupant::From(o) if new.as_ref().is_some_and(|n| o.same_source(n)) => true,
                Occupant::From(o) => {
                    notes.push(format!(
                        "replaced `{name}` installed from {} (forced)",
                        o.describe()
                    ));
                    false
                }
                Occupant::Unknown(why) => {
                    notes.push(format!("replaced `{name}` installed from {why} (forced)"));
                    false
                }
                Occupant::Nobody => self
                    .kept_origin(&name)
                    .is_some_and(|o| new.as_ref().is_some_and(|n| o.same_source(n))),
            };
            plans.push((name, dest, staged, keep_data, notes));
        }
        // 2. Every folder staged.
        let mut staged_dirs = Vec::with_capacity(plans.len());
        for (name, dest, staged, _, _) in &plans {
            staged_dirs.push(self.stage(name, dest, staged)?);
        }
        // 3. The swaps, undone together on a failure. The data folder goes
        // first: a skill must never start with another one's data.
        let mut swapped: Vec<(Swapped, Option<(tempfile::TempDir, PathBuf)>)> = Vec::new();
        let mut failure = None;
        for ((name, dest, _, keep_data, _), stage) in plans.iter().zip(staged_dirs) {
            let data = self.data_dir(name);
            let aside = if *keep_data {
                None
            } else {
                match self.move_aside(&data) {
                    Ok(aside) => aside.map(|trash| (trash, data.clone())),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            };
            match stage.swap_in(dest) {
                Ok(done) => swapped.push((done, aside)),
                Err(e) => {
                    put_back(aside, name);
                    failure = Some(e.into());
                    break;
                }
            }
        }
        if let Some(err) = failure {
            // The swaps so far are the first plans', in order.
            let undone: Vec<_> = swapped.into_iter().zip(&plans).collect();
            for ((done, aside), (name, dest, ..)) in undone.into_iter().rev() {
                if let Err(back) = done.undo() {
                    tracing::warn!("cannot put {} back as it was: {back}", dest.display());
                }
                put_back(aside, name);
            }
            return Err(err);
        }
        // 4. Kept.
        let mut committed = Vec::with_capacity(plans.len());
        for ((name, _, _, _, mut notes), (done, aside)) in plans.into_iter().zip(swapped) {
            let replaced = done.replaced();
            done.finish()?;
            if let Some((_, data)) = &aside {
                notes.push(format!(
                    "the data folder {} held another install's data; deleted: `{name}` starts with an empty one",
                    data.display()
                ));
            }
            drop(aside);
            remove_if_present(&self.kept_record(&name))?;
            committed.push(Committed { replaced, notes });
        }
        // Still under the lock: skills.lock follows every change.
        lock::write(self)?;
        Ok(committed)
    }

    /// Writes `staged` into a staging folder beside `dest`.
    fn stage(
        &self,
        name: &str,
        dest: &Path,
        staged: &StagedSkill,
    ) -> Result<StagedDir, StoreError> {
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
        Ok(stage)
    }

    /// Removes skill `name`: one rename out of sight, then deletion. Its data
    /// folder is deleted with it, unless `keep_data`: then it stays, recorded
    /// as the removed install's, for a reinstall from the same origin.
    pub fn remove(&self, name: &str, keep_data: bool) -> Result<RemovedData, StoreError> {
        let dest = self.skill_dir(name)?;
        if !dest.exists() {
            return Err(StoreError::NotInstalled {
                name: name.into(),
                store: self.root.clone(),
            });
        }
        let skills = self.skills_dir();
        let _lock = self.lock()?;
        let origin = match self.occupant(&dest) {
            Occupant::From(origin) => Some(origin),
            _ => None,
        };
        let trash = tempfile::Builder::new()
            .prefix(&format!("{REMOVING_PREFIX}{name}-"))
            .tempdir_in(&skills)
            .on(IoOp::Create, &skills)?;
        let target = trash.path().join(name);
        std::fs::rename(&dest, &target).on(IoOp::Rename, &dest)?;
        drop(trash);
        let data = self.data_dir(name);
        let record = self.kept_record(name);
        let outcome = if std::fs::symlink_metadata(&data).is_err() {
            remove_if_present(&record)?;
            RemovedData::None
        } else if keep_data {
            let kept = KeptData { origin };
            let bytes = serde_json::to_vec_pretty(&kept).unwrap_or_default();
            crate::fsutil::write_atomically(&record, &bytes)?;
            RemovedData::Kept
        } else {
            drop(self.move_aside(&data)?);
            remove_if_present(&record)?;
            RemovedData::Deleted
        };
        lock::write(self)?;
        Ok(outcome)
    }

    /// Moves the folder `dir` (if any) into a removal folder beside it,
    /// holding it as `<removal>/<its name>` until the returned folder is
    /// dropped (then deleted) or it is moved back.
    fn move_aside(&self, dir: &Path) -> Result<Option<tempfile::TempDir>, StoreError> {
        if std::fs::symlink_metadata(dir).is_err() {
            return Ok(None);
        }
        let parent = dir.parent().unwrap_or(&self.root);
        let name = dir.file_name().unwrap_or_default();
        let trash = tempfile::Builder::new()
            .prefix(&format!("{REMOVING_PREFIX}{}-", name.to_string_lossy()))
            .tempdir_in(parent)
            .on(IoOp::Create, parent)?;
        std::fs::rename(dir, trash.path().join(name)).on(IoOp::Rename, dir)?;
        Ok(Some(trash))
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
        let mut swept = crate::fsutil::sweep_stale(&skills)?;
        swept += crate::fsutil::sweep_stale(&self.data_root())?;
        if swept > 0 {
            tracing::info!(swept, store = %skills.display(), "removed folders left by an interrupted install");
        }
        Ok(dir)
    }
}

/// Puts a data folder moved aside for skill `name` back (best effort: a
/// failure is logged, the folder stays in its removal folder until swept).
fn put_back(aside: Option<(tempfile::TempDir, PathBuf)>, name: &str) {
    if let Some((trash, data)) = aside {
        let held = trash.path().join(name);
        if let Err(back) = std::fs::rename(&held, &data) {
            tracing::warn!("cannot put the data folder {} back: {back}", data.display());
        }
    }
}

/// `<name>.kept.json`: whose a kept data folder is.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptData {
    /// `None`: the removed skill's origin was not recorded; no install gets
    /// the folder back.
    origin: Option<Origin>,
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(IoError::new(IoOp::Remove, path, e).into())
        }
        _ => Ok(()),
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
