//! Installing from a registry: the skill's entry is looked up in the
//! registry's `index.json`, its binary must match the index's sha256, and it
//! then goes through the same pipeline and store commit as a local folder.

use std::path::Path;

use crate::executor::Executor;
use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::pipeline::{self, PipelineError};
use crate::registry::index::{INDEX_FILE, Index, IndexError};
use crate::skill::files;
use crate::skill::manifest;
use crate::skill::source::{self, SourceError, WASM_FILE};
use crate::store::SkillStore;
use crate::store::provenance::Origin;
use crate::store::install::{InstallError, InstallOptions, Installed, commit_prepared};

/// Why an install from a registry failed (the store is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Index(#[from] IndexError),
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
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Io(#[from] IoError),
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
) -> Result<Installed, RegistryError> {
    manifest::check_name(name).map_err(|e| InstallError::Store(e.into()))?;
    let index_path = registry.join(INDEX_FILE);
    let index = Index::read(&index_path)?;
    let entry = index.find(name, &index_path)?;
    let rel = entry.path.as_deref().unwrap_or_default();
    if rel.split('/').any(|part| part == ".." || part.is_empty()) {
        return Err(IndexError::NotBuilt {
            name: name.into(),
            version: entry.version.clone(),
            error: format!("the index gives an unsafe path `{rel}`"),
        }
        .into());
    }
    let wasm_path = registry.join(rel);
    let entry_dir = wasm_path.parent().unwrap_or(registry).to_path_buf();
    let wasm = std::fs::read(&wasm_path).on(IoOp::Read, &wasm_path)?;
    let actual = crate::digest::sha256_hex(&wasm);
    let expected = entry.sha256.clone().unwrap_or_default();
    if actual != expected {
        return Err(RegistryError::DigestMismatch {
            path: wasm_path,
            expected,
            actual,
        });
    }
    // A folder named after the skill, as the pipeline expects.
    let temp = std::env::temp_dir();
    let staging = tempfile::tempdir().on(IoOp::Create, &temp)?;
    let dir = staging.path().join(name);
    // The skill's files as published (SKILL.md, scripts/, assets/ …), but
    // not the publisher's provenance or `.cwasm`: this machine makes its own.
    let canonical = entry_dir.canonicalize().on(IoOp::Read, &entry_dir)?;
    let listed = files::list(&canonical)
        .map_err(|e| InstallError::from(PipelineError::from(SourceError::from(e))))?;
    let published: Vec<_> = listed
        .iter()
        .filter(|f| !source::is_store_owned(&f.rel))
        .collect();
    let contents = files::read_all(published)
        .map_err(|e| InstallError::from(PipelineError::from(SourceError::from(e))))?;
    let staged = crate::fsutil::StagedDir::new_in(staging.path(), name)?;
    for file in &contents {
        staged.write_file(Path::new(&file.rel), &file.bytes, file.executable)?;
    }
    staged.commit_new(&dir)?;
    let wasm_dest = dir.join(WASM_FILE);
    std::fs::write(&wasm_dest, &wasm).on(IoOp::Write, &wasm_dest)?;
    let mut prepared = pipeline::prepare(&dir, &options.pipeline).map_err(InstallError::from)?;
    prepared.notes.push(format!(
        "from the registry {} ({} {}, made there as: {})",
        registry.display(),
        entry.name,
        entry.version,
        entry.path_taken.map_or("?".to_string(), |p| p.to_string())
    ));
    let options = InstallOptions {
        origin: Some(Origin::Registry {
            url: registry.display().to_string(),
            name: entry.name.clone(),
            version: entry.version.clone(),
        }),
        ..options.clone()
    };
    Ok(commit_prepared(store, prepared, &options, executor)?)
}
