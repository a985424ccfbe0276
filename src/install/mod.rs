//! The install layer: the one way skills get into a store, whatever their
//! source. A [`Source`] (a folder, skills of a git repository, skills a
//! registry publishes) is resolved into skills; each goes through the
//! pipeline ([`crate::pipeline::prepare`]) and is staged: the trust tier
//! and grants decided (by the installer, never by the skill: what its
//! `SKILL.md` asks for is recorded as a request), the component linked and
//! precompiled on the executor, its provenance written. Then the store
//! commits **all of them or none** ([`SkillStore::commit_all`]).
//!
//! Everything that can fail runs before the store is touched; a skill of
//! another origin is replaced only when forced. `update` and `sync`
//! ([`sync`]) follow installed skills back to their git origins through the
//! same layer.
//!
//! ```text
//!   Source ──resolve──▶ Planned (pipeline) ──stage──▶ Staged ──commit_all──▶ store
//! ```

pub mod git;
pub mod oci;
pub mod registry;
pub mod sync;

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::executor::grants::Requested;
use crate::executor::{ExecError, Executor, Grants};
use crate::fsutil::IoError;
use crate::git::GitError;
use crate::git::spec::SourceSpec;
use crate::pipeline::{self, PathTaken, PipelineError, PipelineOptions, Prepared};
use crate::registry::client::{RegistryClient, RegistryError};
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
    /// Replace a skill of the same name installed from another origin (and
    /// delete its data folder). Without it such an install is refused.
    pub force: bool,
    /// On a same-origin reinstall or upgrade, grant only `grants`. Without
    /// it the installed version's grants are kept and `grants` added (what
    /// `update` and `sync`, which take no grants, need).
    pub replace_grants: bool,
}

/// Where skills to install come from.
#[derive(Debug)]
pub enum Source {
    /// A skill folder on this machine.
    Folder(PathBuf),
    /// Skills of a git repository at a ref.
    Git {
        spec: SourceSpec,
        pick: Pick,
        /// Only from the cache: nothing is fetched.
        offline: bool,
    },
    /// Skills a registry publishes: each a name and, optionally, a version
    /// (the newest otherwise).
    Registry {
        client: RegistryClient,
        skills: Vec<(String, Option<String>)>,
    },
    /// Skills in OCI registries, each by tag or digest.
    Oci {
        client: Box<crate::oci::OciClient>,
        references: Vec<crate::oci::Reference>,
    },
}

/// Which of a repository's skills to install.
#[derive(Debug, Clone, Default)]
pub struct Pick {
    /// By key, name or folder (empty: the only one, or every one with `all`).
    pub names: Vec<String>,
    pub all: bool,
}

/// A finished install.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub dir: PathBuf,
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

/// Why an install failed. The store is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    #[error(transparent)]
    Index(#[from] crate::registry::index::IndexError),
    #[error("the component does not run on this executor")]
    Executor(#[from] ExecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] IoError),
    /// One skill of several failed; none was installed.
    #[error("cannot install `{skill}` from {from}")]
    Skill {
        skill: String,
        /// Its source, described.
        from: String,
        #[source]
        source: Box<InstallError>,
    },
}

impl InstallError {
    /// `err`, naming the skill it happened to.
    fn for_skill(skill: &str, from: &str, err: impl Into<InstallError>) -> InstallError {
        InstallError::Skill {
            skill: skill.into(),
            from: from.into(),
            source: Box::new(err.into()),
        }
    }
}

/// A skill the pipeline prepared, with where it came from: ready to stage.
#[derive(Debug)]
pub struct Planned {
    pub key: String,
    pub prepared: Prepared,
    pub origin: Origin,
    /// The temporary folder its files were written to, when the source
    /// wrote them (a registry's downloads): removed once it is staged.
    pub workspace: Option<tempfile::TempDir>,
}

/// A skill ready to commit: its files in memory, and the report of its
/// install.
struct Staged {
    staged: StagedSkill,
    installed: Installed,
}

/// Installs into one store, with one context (and, to link and precompile
/// components, one executor).
#[derive(Clone, Copy)]
pub struct Installer<'a> {
    pub context: &'a Context,
    pub store: &'a SkillStore,
    /// Links every component against it and precompiles it to
    /// `skill.cwasm`: a component that cannot run is never installed.
    pub executor: Option<&'a Executor>,
}

impl<'a> Installer<'a> {
    pub fn new(context: &'a Context, store: &'a SkillStore) -> Installer<'a> {
        Installer {
            context,
            store,
            executor: None,
        }
    }

    pub fn with_executor(mut self, executor: &'a Executor) -> Installer<'a> {
        self.executor = Some(executor);
        self
    }

    /// Installs what `source` names: every skill prepared and staged, then
    /// all committed at once; on any failure none is.
    pub fn install(
        &self,
        source: &Source,
        options: &InstallOptions,
    ) -> Result<Vec<Installed>, InstallError> {
        let result = match source {
            Source::Folder(dir) => self.install_folder(dir, options).map(|i| vec![i]),
            Source::Git {
                spec,
                pick,
                offline,
            } => git::install(self, spec, pick, *offline, options),
            Source::Registry { client, skills } => registry::install(self, client, skills, options),
            Source::Oci { client, references } => oci::install(self, client, references, options),
        };
        // The cache's build outputs back within their budget, whatever came
        // of the install (a failed build leaves its target directory too).
        crate::cache::sweep_after_build(self.context);
        result
    }

    /// Installs the skill folder `dir`.
    pub fn install_folder(
        &self,
        dir: &Path,
        options: &InstallOptions,
    ) -> Result<Installed, InstallError> {
        let origin = dir.canonicalize().ok().map(|path| Origin::Folder { path });
        // Refused before the work of a build when the name is taken by a
        // skill of another origin (the commit checks again, under the lock).
        if let Some(origin) = &origin
            && let Origin::Folder { path } = origin
            && let Ok(manifest) = Manifest::load(path)
        {
            self.store
                .check_replace(&manifest.name, Some(origin), options.force)?;
        }
        let prepared = pipeline::prepare(self.context, dir, &options.pipeline)?;
        let origin = origin.unwrap_or_else(|| Origin::Folder {
            path: prepared.folder.dir.clone(),
        });
        let planned = Planned {
            key: prepared.folder.manifest.name.clone(),
            prepared,
            origin,
            workspace: None,
        };
        let mut done = self.commit(vec![planned], options)?;
        Ok(done.remove(0))
    }

    /// Checks, before any work, that none of `planned`'s names is taken by
    /// a skill of another origin (unless forced).
    pub fn check_names<'p>(
        &self,
        names: impl IntoIterator<Item = (&'p str, &'p Origin)>,
        force: bool,
    ) -> Result<(), InstallError> {
        for (name, origin) in names {
            self.store
                .check_replace(name, Some(origin), force)
                .map_err(|e| InstallError::for_skill(name, &origin.describe(), e))?;
        }
        Ok(())
    }

    /// Stages every planned skill, then commits them all at once: the store
    /// holds all of them or, on any failure, is as it was.
    pub fn commit(
        &self,
        planned: Vec<Planned>,
        options: &InstallOptions,
    ) -> Result<Vec<Installed>, InstallError> {
        self.check_names(
            planned.iter().map(|p| (p.key.as_str(), &p.origin)),
            options.force,
        )?;
        let mut staged = Vec::with_capacity(planned.len());
        for plan in planned {
            let key = plan.key.clone();
            let from = plan.origin.describe();
            staged.push(
                self.stage(plan, options)
                    .map_err(|e| InstallError::for_skill(&key, &from, e))?,
            );
        }
        let (to_commit, mut reports): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .map(|s| ((s.installed.name.clone(), s.staged), s.installed))
            .unzip();
        let committed = self.store.commit_all(to_commit, options.force)?;
        for (report, committed) in reports.iter_mut().zip(committed) {
            report.replaced = committed.replaced;
            report.notes.extend(committed.notes);
        }
        Ok(reports)
    }

    /// Decides the tier and grants, links and precompiles the component,
    /// reads the files and writes the provenance: everything but the commit.
    fn stage(&self, plan: Planned, options: &InstallOptions) -> Result<Staged, InstallError> {
        let Planned {
            prepared, origin, ..
        } = plan;
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
        let requested = Requested::of(manifest);
        let mut installer = options.grants.clone();
        installer.data_dir = None;
        if !options.replace_grants
            && let Ok(installed) = self.store.get(&manifest.name)
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

        let (cwasm, record) = match (self.executor, &prepared.component, &prepared.binary) {
            (Some(executor), Some(_), Some(wasm)) => {
                // Also links it: every import provided, with the right types.
                let (cwasm, record) = executor.precompile(wasm)?;
                (Some(cwasm), Some(record))
            }
            _ => (None, None),
        };

        let files = crate::skill::files::read_all(prepared.folder.installed_files())
            .map_err(|e| PipelineError::Source(e.into()))?;
        let mut provenance =
            Provenance::new(&prepared, &files, options.trust_tier, installer, record);
        provenance.origin = Some(origin);
        let name = manifest.name.clone();
        Ok(Staged {
            staged: StagedSkill {
                files,
                wasm: prepared.binary.clone(),
                cwasm,
                provenance: Some(provenance.clone()),
            },
            installed: Installed {
                dir: self.store.skill_dir(&name)?,
                name,
                path_taken: prepared.path_taken,
                reason: prepared.reason,
                trust_tier: options.trust_tier,
                replaced: false,
                requested,
                granted,
                not_granted,
                notes,
                provenance,
            },
        })
    }
}

/// Installs the skill folder `dir` into `store`: [`Installer::install_folder`]
/// for one call. With an `executor`, the component is also linked against it
/// and precompiled to `skill.cwasm`.
pub fn install(
    context: &Context,
    store: &SkillStore,
    dir: &Path,
    options: &InstallOptions,
    executor: Option<&Executor>,
) -> Result<Installed, InstallError> {
    Installer {
        context,
        store,
        executor,
    }
    .install_folder(dir, options)
}
