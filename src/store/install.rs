//! `install`: the one entry point boternity's CLI and HTTP handlers call to put
//! a skill folder into the store: the shared pipeline decision, the trust tier
//! and the grants (decided here, never by the skill: what its `SKILL.md` asks
//! for is recorded as a request), precompilation, provenance, and an atomic
//! commit, which every install (folder, git, registry, sync, update) goes
//! through and which replaces a skill of another origin only when forced.
//! Everything that can fail runs before the store is touched.

use std::path::Path;

use crate::executor::grants::Requested;
use crate::executor::{ExecError, Executor, Grants};
use crate::fsutil::IoError;
use crate::pipeline::{self, PathTaken, PipelineError, PipelineOptions, Prepared};
use crate::skill::manifest::{Manifest, TrustTier};
use crate::store::provenance::{Origin, Provenance};
use crate::store::{SkillStore, StagedSkill, StoreError};

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub pipeline: PipelineOptions,
    /// The tier the skill runs under; the manifest's claim is ignored.
    pub trust_tier: TrustTier,
    /// What the installer grants (capabilities, variables, hosts, secrets).
    /// The skill's own `SKILL.md` grants nothing: of what it asks for, only
    /// what these grants and the trust tier's policy cover is granted
    /// (`Grants::for_install`).
    pub grants: Grants,
    /// Where the skill comes from, recorded in its provenance (a local
    /// folder's path when `None`).
    pub origin: Option<Origin>,
    /// Replace a skill of the same name installed from another origin (and
    /// delete its data folder). Without it such an install is refused.
    pub force: bool,
    /// On a same-origin reinstall or upgrade, grant only `grants`. Without
    /// it the installed version's grants are kept and `grants` added (what
    /// `update` and `sync`, which take no grants, need).
    pub replace_grants: bool,
}

/// A finished install.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub dir: std::path::PathBuf,
    pub path_taken: PathTaken,
    pub reason: String,
    pub trust_tier: TrustTier,
    /// A previous version was replaced.
    pub replaced: bool,
    /// What its `SKILL.md` asked for (also in the provenance).
    pub requested: Requested,
    /// What it may do (the installer's grants and the tier's policy; the
    /// data folder is the store's, decided at run).
    pub granted: Grants,
    /// What was asked for and not granted.
    pub not_granted: Requested,
    /// Warnings worth showing (ignored trust claims, shipped binary mismatch…).
    pub notes: Vec<String>,
    pub provenance: Provenance,
}

/// Why an install failed (the store is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("the component does not run on this executor")]
    Executor(#[from] ExecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Installs the skill folder `dir` into `store`. With an `executor`, the
/// component is also linked against it and precompiled to `skill.cwasm`.
pub fn install(
    store: &SkillStore,
    dir: &Path,
    options: &InstallOptions,
    executor: Option<&Executor>,
) -> Result<Installed, InstallError> {
    // Refused before the work of a build when the name is taken by a skill
    // of another origin (the commit checks again, under the store's lock).
    if let Ok(canonical) = dir.canonicalize()
        && let Ok(manifest) = Manifest::load(&canonical)
    {
        let origin = options
            .origin
            .clone()
            .unwrap_or(Origin::Folder { path: canonical });
        store.check_replace(&manifest.name, Some(&origin), options.force)?;
    }
    let prepared = pipeline::prepare(dir, &options.pipeline)?;
    commit_prepared(store, prepared, options, executor)
}

/// Commits what the pipeline prepared: every install commits through here
/// (installs from a folder, a registry and git, `sync` and `update`), so
/// none skips the origin check ([`SkillStore::commit`]).
pub fn commit_prepared(
    store: &SkillStore,
    prepared: Prepared,
    options: &InstallOptions,
    executor: Option<&Executor>,
) -> Result<Installed, InstallError> {
    let manifest = &prepared.folder.manifest;
    let mut notes = prepared.notes.clone();
    if let Some(claimed) = manifest.declared_trust_tier
        && claimed != options.trust_tier
    {
        notes.push(format!(
            "SKILL.md claims trust-tier `{claimed}`; ignored: the installer decides, and installed it as `{}`",
            options.trust_tier
        ));
    }

    let origin = options.origin.clone().unwrap_or_else(|| Origin::Folder {
        path: prepared.folder.dir.clone(),
    });
    let requested = Requested::of(manifest);
    let mut installer = options.grants.clone();
    installer.data_dir = None;
    if !options.replace_grants
        && let Ok(installed) = store.get(&manifest.name)
        && installed.origin().is_some_and(|o| o.same_source(&origin))
    {
        // An upgrade keeps what the installer granted this origin.
        let kept = installed.installer_grants();
        if kept != Grants::none() {
            notes.push("kept the grants of the installed version".into());
        }
        installer.extend(&kept);
    }
    let granted = Grants::for_install(options.trust_tier, &requested, &installer);
    let not_granted = requested.not_granted(&granted);

    let (cwasm, record) = match (executor, &prepared.component, &prepared.binary) {
        (Some(executor), Some(_), Some(wasm)) => {
            // Also links it: every import provided, with the right types.
            let (cwasm, record) = executor.precompile(wasm)?;
            (Some(cwasm), Some(record))
        }
        _ => (None, None),
    };

    let files = crate::skill::files::read_all(prepared.folder.installed_files())
        .map_err(|e| PipelineError::Source(e.into()))?;
    let mut provenance = Provenance::new(&prepared, &files, options.trust_tier, installer, record);
    provenance.origin = Some(origin);
    let name = manifest.name.clone();
    let committed = store.commit(
        &name,
        StagedSkill {
            files,
            wasm: prepared.binary.clone(),
            cwasm,
            provenance: Some(provenance.clone()),
        },
        options.force,
    )?;
    notes.extend(committed.notes);
    Ok(Installed {
        dir: store.skill_dir(&name)?,
        name,
        path_taken: prepared.path_taken,
        reason: prepared.reason,
        trust_tier: options.trust_tier,
        replaced: committed.replaced,
        requested,
        granted,
        not_granted,
        notes,
        provenance,
    })
}
