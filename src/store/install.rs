//! `install`: the one entry point boternity's CLI and HTTP handlers call to put
//! a skill folder into the store: the shared pipeline decision, the trust tier
//! (decided here, never by the skill), precompilation, provenance, and an
//! atomic commit. Everything that can fail runs before the store is touched.

use std::path::Path;

use crate::executor::{ExecError, Executor, Grants};
use crate::fsutil::IoError;
use crate::pipeline::{self, PathTaken, PipelineError, PipelineOptions, Prepared};
use crate::skill::manifest::TrustTier;
use crate::store::provenance::Provenance;
use crate::store::{SkillStore, StagedSkill, StoreError};

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub pipeline: PipelineOptions,
    /// The tier the skill runs under; the manifest's claim is ignored.
    pub trust_tier: TrustTier,
    /// Grants beyond the manifest's capabilities (variables, hosts, secrets).
    pub grants: Grants,
    /// Where the skill comes from, recorded in its provenance (a local
    /// folder's path when `None`).
    pub origin: Option<crate::store::provenance::Origin>,
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
    let prepared = pipeline::prepare(dir, &options.pipeline)?;
    commit_prepared(store, prepared, options, executor)
}

/// Commits what the pipeline prepared (shared with installs from a registry).
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

    let mut grants = Grants::from_manifest(manifest);
    grants.extend(&options.grants);

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
    let mut provenance = Provenance::new(&prepared, &files, options.trust_tier, grants, record);
    provenance.origin =
        Some(
            options
                .origin
                .clone()
                .unwrap_or_else(|| crate::store::provenance::Origin::Folder {
                    path: prepared.folder.dir.clone(),
                }),
        );
    let name = manifest.name.clone();
    let replaced = store.commit(
        &name,
        StagedSkill {
            files,
            wasm: prepared.binary.clone(),
            cwasm,
            provenance: Some(provenance.clone()),
        },
    )?;
    Ok(Installed {
        dir: store.skill_dir(&name)?,
        name,
        path_taken: prepared.path_taken,
        reason: prepared.reason,
        trust_tier: options.trust_tier,
        replaced,
        notes,
        provenance,
    })
}
