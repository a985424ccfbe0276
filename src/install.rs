//! `install`: the one entry point boternity's CLI and HTTP handlers call to put
//! a skill folder into the store: the shared pipeline decision, the trust tier
//! (decided here, never by the skill), precompilation, provenance, and an
//! atomic commit. Everything that can fail runs before the store is touched.

use std::path::Path;

use crate::executor::{ExecError, Executor, Grants};
use crate::manifest::{self, TrustTier};
use crate::pipeline::{self, PathTaken, PipelineError, PipelineOptions, Prepared};
use crate::provenance::Provenance;
use crate::store::{SkillStore, StagedSkill, StoreError};

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub pipeline: PipelineOptions,
    /// The tier the skill runs under; the manifest's claim is ignored.
    pub trust_tier: TrustTier,
    /// Grants beyond the manifest's capabilities (variables, hosts, secrets).
    pub grants: Grants,
}

/// A finished install.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub dir: std::path::PathBuf,
    pub path: PathTaken,
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
    #[error("the component does not run on this executor: {0}")]
    Executor(#[from] ExecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(
        "{} does not match the index: its sha256 is {actual}, the index says {expected}; \
         the registry is corrupt or was tampered with",
        path.display()
    )]
    DigestMismatch {
        path: std::path::PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
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

/// Installs skill `name` from a precompiled registry (`precompile`'s output
/// folder): the binary must match the index's sha256, and is then validated
/// like any shipped `skill.wasm` before it is accepted.
pub fn install_from_registry(
    store: &SkillStore,
    registry: &Path,
    name: &str,
    options: &InstallOptions,
    executor: Option<&Executor>,
) -> Result<Installed, InstallError> {
    manifest::check_name(name).map_err(crate::store::StoreError::from)?;
    let index_path = registry.join(crate::index::INDEX_FILE);
    let index = crate::index::Index::read(&index_path)?;
    let entry = index.find(name, &index_path)?;
    let rel = entry.path.as_deref().unwrap_or_default();
    if rel.split('/').any(|part| part == ".." || part.is_empty()) {
        return Err(crate::index::IndexError::NotBuilt {
            name: name.into(),
            version: entry.version.clone(),
            error: format!("the index gives an unsafe path `{rel}`"),
        }
        .into());
    }
    let wasm_path = registry.join(rel);
    let entry_dir = wasm_path.parent().unwrap_or(registry).to_path_buf();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Io { path, source }
    };
    let wasm = std::fs::read(&wasm_path).map_err(io(&wasm_path))?;
    let actual = crate::digest::sha256_hex(&wasm);
    let expected = entry.sha256.clone().unwrap_or_default();
    if actual != expected {
        return Err(InstallError::DigestMismatch {
            path: wasm_path,
            expected,
            actual,
        });
    }
    // A folder named after the skill, as the pipeline expects.
    let staging = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
    let dir = staging.path().join(name);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let manifest_src = entry_dir.join(manifest::MANIFEST_FILE);
    std::fs::copy(&manifest_src, dir.join(manifest::MANIFEST_FILE)).map_err(io(&manifest_src))?;
    std::fs::write(dir.join(crate::source::WASM_FILE), &wasm).map_err(io(&dir))?;
    let mut prepared = pipeline::prepare(&dir, &options.pipeline)?;
    prepared.notes.push(format!(
        "from the registry {} ({} {}, made there as: {})",
        registry.display(),
        entry.name,
        entry.version,
        entry.path_taken.map_or("?".to_string(), |p| p.to_string())
    ));
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

    let manifest_path = prepared.folder.dir.join(manifest::MANIFEST_FILE);
    let manifest_text = std::fs::read(&manifest_path).map_err(|source| InstallError::Io {
        path: manifest_path,
        source,
    })?;
    let provenance = Provenance::new(&prepared, options.trust_tier, grants, record);
    let name = manifest.name.clone();
    let replaced = store.commit(
        &name,
        StagedSkill {
            manifest_text,
            wasm: prepared.binary.clone(),
            cwasm,
            provenance: Some(provenance.clone()),
        },
    )?;
    Ok(Installed {
        dir: store.skill_dir(&name)?,
        name,
        path: prepared.path,
        reason: prepared.reason,
        trust_tier: options.trust_tier,
        replaced,
        notes,
        provenance,
    })
}
