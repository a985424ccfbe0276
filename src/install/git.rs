//! The git source of the install layer: resolve and fetch the repository
//! ([`crate::git::install::checkout`]), find and pick its skills, then write
//! out and prepare each chosen one through the pipeline. Every skill is
//! prepared before any is committed, and they are committed together.

use std::path::Path;

use super::{InstallError, InstallOptions, Installed, Installer, Pick, Planned};
use crate::fsutil::{BeneathDir, IoOp, IoResultExt, NoFollow, read_capped_no_follow};
use crate::git::GitError;
use crate::git::discover::Found;
use crate::git::install::{self as checkout_git, Checkout, display_rel};
use crate::git::spec::SourceSpec;
use crate::pipeline::{self, PipelineError};
use crate::skill::files::SkillFile;
use crate::skill::source::{SkillFolder, WASM_FILE};

/// The first line of a Git LFS pointer file.
const LFS_POINTER: &[u8] = b"version https://git-lfs.github.com/spec/";

/// Installs the skills `pick` chooses from the repository `spec` names.
pub fn install(
    installer: &Installer<'_>,
    spec: &SourceSpec,
    pick: &Pick,
    offline: bool,
    options: &InstallOptions,
) -> Result<Vec<Installed>, InstallError> {
    let checkout = checkout_git::checkout(installer.context, spec, offline)?;
    let found = checkout.discover()?;
    let chosen = checkout_git::select(found, &pick.names, pick.all, &checkout.url)?;
    // Every name is checked before anything is built.
    let origins: Vec<_> = chosen.iter().map(|f| checkout.origin(&f.rel)).collect();
    installer.check_names(
        chosen.iter().map(|f| f.key.as_str()).zip(&origins),
        options.force,
    )?;
    let planned = chosen
        .iter()
        .map(|f| prepare_skill(installer, &checkout, f, options, None))
        .collect::<Result<Vec<_>, _>>()?;
    installer.commit(planned, options)
}

/// Runs the pipeline on the skill `found` of `checkout`. `kept_lock`: a
/// `Cargo.lock` resolved at an earlier install, built with when the skill
/// ships none.
pub fn prepare_skill(
    installer: &Installer<'_>,
    checkout: &Checkout,
    found: &Found,
    options: &InstallOptions,
    kept_lock: Option<&str>,
) -> Result<Planned, InstallError> {
    let from = checkout.origin(&found.rel).describe();
    prepare_skill_inner(installer, checkout, found, options, kept_lock)
        .map_err(|e| InstallError::for_skill(&found.key, &from, e))
}

fn prepare_skill_inner(
    installer: &Installer<'_>,
    checkout: &Checkout,
    found: &Found,
    options: &InstallOptions,
    kept_lock: Option<&str>,
) -> Result<Planned, InstallError> {
    // The chosen skill's files, written out only now.
    checkout.materialize(&[&found.rel])?;
    let wasm = found.dir.join(WASM_FILE);
    if let Ok(meta) = std::fs::symlink_metadata(&wasm)
        && meta.is_file()
        && meta.len() < 1024
        && let Ok(head) = read_capped_no_follow(&wasm, 1024, NoFollow::LastComponent)
        && head.starts_with(LFS_POINTER)
    {
        return Err(GitError::LfsPointer {
            path: display_rel(&found.rel),
        }
        .into());
    }
    let cargo_toml = found.dir.join("Cargo.toml");
    let lock_path = found.dir.join("Cargo.lock");
    let is_crate = std::fs::symlink_metadata(&cargo_toml).is_ok_and(|m| m.is_file());
    let lock_shipped = std::fs::symlink_metadata(&lock_path).is_ok();
    let mut source_before_lock = None;
    if is_crate
        && !lock_shipped
        && let Some(kept) = kept_lock
    {
        let folder = SkillFolder::open(&found.dir).map_err(PipelineError::from)?;
        source_before_lock = Some(folder.source_sha256().map_err(PipelineError::from)?);
        BeneathDir::open(&found.dir)
            .map_err(GitError::from)?
            .create_file("Cargo.lock", kept.as_bytes(), false)
            .map_err(GitError::from)?;
    }
    let mut pipeline = options.pipeline.clone();
    if pipeline.build.target_dir.is_none() {
        // Its own target directory per repository and skill: incremental
        // across installs, never shared with another skill.
        let key = crate::digest::sha256_hex(format!("{}\n{}", checkout.url, found.rel).as_bytes());
        pipeline.build.target_dir = Some(installer.context.folders.skill_target_dir(&format!(
            "git-{}-{}",
            found.key,
            &key[..16]
        )));
    }
    let mut prepared = pipeline::prepare(installer.context, &found.dir, &pipeline)?;
    if let Some(sha) = source_before_lock {
        // The source is the commit's; the lock came from the earlier install.
        prepared.source_sha256 = sha;
        prepared.resolved_cargo_lock = true;
    } else if is_crate
        && !lock_shipped
        && std::fs::symlink_metadata(&lock_path).is_ok_and(|m| m.is_file())
    {
        // The build's fetch resolved one: keep it with the skill.
        let size = std::fs::metadata(&lock_path)
            .on(IoOp::Inspect, &lock_path)?
            .len();
        let real = lock_path.canonicalize().on(IoOp::Inspect, &lock_path)?;
        prepared.folder.files.push(SkillFile {
            rel: "Cargo.lock".into(),
            path: real,
            size,
            executable: false,
        });
        prepared.folder.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        prepared.resolved_cargo_lock = true;
    }
    Ok(Planned {
        key: prepared.folder.manifest.name.clone(),
        origin: checkout.origin(&found.rel),
        prepared,
        workspace: None,
    })
}

/// The `Cargo.lock` an installed skill kept from its install (resolved
/// then, since the skill shipped none), if it kept one.
pub fn kept_cargo_lock(dir: &Path, resolved_cargo_lock: bool) -> Option<String> {
    resolved_cargo_lock
        .then(|| std::fs::read_to_string(dir.join("Cargo.lock")).ok())
        .flatten()
}
