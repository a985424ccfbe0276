//! `precompile`: the job a registry's CI runs on every push. Every skill folder
//! below the registry goes through the install pipeline's decision (one code
//! path), into `<out>/<name>/<version>/` with its provenance, plus
//! `<out>/index.json`.
//!
//! Fast: each skill builds confined in its own target directory over a
//! read-only [dependency layer](crate::build::layer) (common dependencies
//! compile once per dependency set, and each skill reports whether it built or
//! reused its layer), a content-addressed cache (an unchanged skill is not
//! rebuilt), and `jobs` skills at a time under one jobserver so parallel cargo
//! processes never oversubscribe the cores. Shardable: `K/N` splits by skill
//! name.
//!
//! Each entry is checked as an install checks it before it is listed: its
//! name, its folder and its published `SKILL.md`'s name and version agree
//! (a reused output folder could have been changed since it was built). The
//! new index's serial grows past the previous index in `--out`, whose yanks
//! it keeps; signing also gives it an expiry.

use crate::context::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::build::cargo::BuildOptions;
use crate::build::layer::Layered;
use crate::build::toolchain::{Toolchain, ToolchainError};
use crate::digest::sha256_hex;
use crate::executor::{Executor, ExecutorConfig, Grants, HostServices};
use crate::fsutil::{IoError, IoOp, IoResultExt, StagedDir};
use crate::pipeline::{self, PipelineOptions};
use crate::registry::index::{INDEX_FILE, Index, IndexEntry, IndexFile, Status};
use crate::skill::files::FileContent;
use crate::skill::manifest::{self, Manifest, TrustTier};
use crate::skill::source::WASM_FILE;
use crate::skill::world::SkillWorld;
use crate::store::CWASM_FILE;
use crate::store::provenance::{PROVENANCE_FILE, Provenance};

/// One shard of a registry: `index` of `count`, 1-based (`2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: use K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether skill `name` belongs to this shard: a stable hash of the name,
    /// so every skill lands in exactly one shard on every machine.
    pub fn contains(&self, name: &str) -> bool {
        let digest = Sha256::digest(name.as_bytes());
        let bucket =
            u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % u64::from(self.count);
        bucket == u64::from(self.index - 1)
    }
}

/// How to precompile.
#[derive(Debug, Clone)]
pub struct PrecompileOptions {
    pub out: PathBuf,
    /// Skills processed at once.
    pub jobs: usize,
    pub shard: Option<Shard>,
    pub no_stub: bool,
    /// Rebuild even unchanged skills.
    pub force: bool,
    /// A cargo target directory every build shares (faster, but the skills'
    /// build scripts can then read and overwrite each other's artifacts); by
    /// default each skill has its own.
    pub target_dir: Option<PathBuf>,
    /// Whether builds run in the sandbox (the default) or unconfined.
    pub confinement: crate::build::Confinement,
    /// The package registries confined fetches may reach.
    pub registries: crate::build::fetch_proxy::RegistryHosts,
    /// Most bytes one confined build may write (see
    /// [`crate::build::BuildOptions::max_target_bytes`]).
    pub max_target_bytes: u64,
    /// Fail skills whose `SKILL.md` needed a lenient fallback (for registries
    /// that enforce the Agent Skills spec).
    pub strict: bool,
    /// Also write `skill.cwasm`, precompiled for this machine's engine and
    /// signed with its key (useful when this machine, or one sharing its
    /// cache folder, installs from the output).
    pub cwasm: bool,
    /// The jobserver the caller inherited (from make or cargo), taken once at
    /// the start of `main` (see [`inherited_jobserver`]); without one, a new
    /// jobserver with a token per core is shared by this run's builds.
    pub jobserver: Option<jobserver::Client>,
    /// Sign `index.json` into `index.json.minisig` with this key, valid for
    /// its validity (without one, a stale signature is removed: it could not
    /// match).
    pub sign_key: Option<crate::registry::sign::IndexSigner>,
    /// Build over [dependency layers](crate::build::layer) (the default), so
    /// skills with the same dependencies compile them once; off, each skill
    /// compiles its own (for comparisons).
    pub layers: bool,
}

/// What [`precompile`] reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The skills of this run (this shard's) are known.
    Started { skills: usize },
    /// One skill is done: its entry, and the dependency layer its build
    /// built or reused (none when nothing was built, or without one).
    Finished {
        entry: &'a IndexEntry,
        layer: Option<&'a Layered>,
    },
}

/// The jobserver this process inherited, if any. Call it first thing in
/// `main`, before anything opens a file or spawns a process: the inherited
/// descriptors are only known to be the jobserver's until then.
///
/// # Safety
/// The caller guarantees that no file descriptor has been opened or closed
/// in this process since it started, so the descriptors named in
/// `CARGO_MAKEFLAGS`/`MAKEFLAGS` are still the ones the parent passed down.
pub unsafe fn inherited_jobserver() -> Option<jobserver::Client> {
    // SAFETY: the caller's guarantee above is exactly `from_env`'s contract.
    unsafe { jobserver::Client::from_env() }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct PrecompileReport {
    pub index: Index,
    /// Skill folders found in the registry (all shards).
    pub found: usize,
    pub duration: Duration,
    pub index_path: PathBuf,
    /// The dependency layer each skill built in this run was built over, by
    /// name and version.
    layers: HashMap<(String, String), Layered>,
}

impl PrecompileReport {
    /// The dependency layer `entry`'s build built or reused in this run.
    pub fn layer(&self, entry: &IndexEntry) -> Option<&Layered> {
        self.layers
            .get(&(entry.name.clone(), entry.version.clone()))
    }

    pub fn count(&self, status: Status) -> usize {
        self.index
            .skills
            .iter()
            .filter(|e| e.status == status)
            .count()
    }

    pub fn failed(&self) -> bool {
        self.count(Status::Failed) > 0
    }
}

/// Why the run as a whole could not proceed (a skill's own failure is an
/// index entry, not this).
#[derive(Debug, thiserror::Error)]
pub enum PrecompileError {
    #[error("cannot read the registry {}", path.display())]
    Registry {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the executor to precompile `.cwasm` files")]
    Executor(#[from] crate::executor::ExecError),
    #[error(transparent)]
    Sign(#[from] crate::registry::sign::SignError),
    #[error(transparent)]
    Output(#[from] IoError),
}

/// Every skill folder below `registry`, sorted: what `install --git` finds
/// in the same tree ([`crate::skill::discover`] holds the rules).
pub fn discover(registry: &Path) -> Result<Vec<PathBuf>, PrecompileError> {
    crate::skill::discover::skill_folders(registry).map_err(|e| PrecompileError::Registry {
        path: e.path,
        source: e.source,
    })
}

/// Runs the job. `progress` is called once the run's skills are known, then
/// (from worker threads) as each skill finishes.
pub fn precompile(
    context: &Context,
    registry: &Path,
    options: &PrecompileOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<PrecompileReport, PrecompileError> {
    let started = Instant::now();
    let all = discover(registry)?;
    let found = all.len();
    let skills: Vec<PathBuf> = all
        .into_iter()
        .filter(|dir| {
            options
                .shard
                .is_none_or(|s| s.contains(&manifest::folder_name(dir)))
        })
        .collect();
    progress(Progress::Started {
        skills: skills.len(),
    });
    std::fs::create_dir_all(&options.out).on(IoOp::Create, &options.out)?;

    // Signed with the key in the cache folder: what `cwasm` promises.
    let executor = match options.cwasm {
        true => Some(Executor::with_config(
            ExecutorConfig {
                cwasm_key_file: Some(context.folders.cwasm_key()),
                ..ExecutorConfig::default()
            },
            HostServices::default(),
        )?),
        false => None,
    };
    let job = Job {
        context,
        collisions: collisions(&skills),
        executor,
        toolchain: Toolchain::detect(&context.host),
        build: BuildOptions {
            target_dir: options.target_dir.clone(),
            confinement: options.confinement,
            registries: options.registries.clone(),
            max_target_bytes: options.max_target_bytes,
            jobserver: options.jobserver.clone().or_else(new_jobserver),
            leave_source_untouched: true,
            layers: options.layers,
            ..BuildOptions::default()
        },
        options,
    };
    let next = AtomicUsize::new(0);
    type Done = (IndexEntry, Option<Layered>);
    let results: Mutex<Vec<Option<Done>>> = Mutex::new(vec![None; skills.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, skills.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(dir) = skills.get(i) else { break };
                    let (entry, layer) = job.one(dir);
                    progress(Progress::Finished {
                        entry: &entry,
                        layer: layer.as_ref(),
                    });
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some((entry, layer));
                }
            });
        }
    });
    // Every build of the run is over: the cache's build outputs back within
    // their budget.
    crate::cache::sweep_after_build(context);
    let results: Vec<(IndexEntry, Option<Layered>)> = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let layers = results
        .iter()
        .filter_map(|(e, l)| Some(((e.name.clone(), e.version.clone()), l.clone()?)))
        .collect();
    let mut index = Index {
        skills: results.into_iter().map(|(e, _)| e).collect(),
        ..Index::default()
    };
    index.sort();
    let index_path = options.out.join(INDEX_FILE);
    // The previous index of this output: its serial is passed, its yanks kept.
    let previous = match Index::read_if_exists(&index_path) {
        Ok(previous) => previous,
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "ignoring the previous index");
            None
        }
    };
    if let Some(previous) = &previous {
        index.carry_yanks(previous);
    }
    let floor = previous.as_ref().map_or(0, |p| p.serial);
    index.stamp(floor, None, std::time::SystemTime::now());
    crate::fsutil::write_atomically(&index_path, &index.to_json())?;
    let signature = crate::registry::sign::signature_path(&index_path);
    match &options.sign_key {
        Some(signer) => {
            let signed = crate::registry::sign::sign_index(&index_path, signer, index.serial)?;
            index.serial = signed.serial;
            index.expires = Some(signed.expires);
        }
        None => match std::fs::remove_file(&signature) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(IoError::new(IoOp::Remove, &signature, e).into());
            }
            _ => {}
        },
    }
    Ok(PrecompileReport {
        index,
        found,
        duration: started.elapsed(),
        index_path,
        layers,
    })
}

/// Folders of this run that would be published as one skill name and
/// version: each fails with an error naming the others (a registry may hold
/// several versions of a skill, never two sources of one version).
fn collisions(skills: &[PathBuf]) -> HashMap<PathBuf, String> {
    let mut by_key: HashMap<(String, String), Vec<&PathBuf>> = HashMap::new();
    for dir in skills {
        if let Ok(m) = Manifest::load(dir) {
            let version = m.version_or_default().to_string();
            by_key.entry((m.name, version)).or_default().push(dir);
        }
    }
    let mut errors = HashMap::new();
    for ((name, version), dirs) in by_key.into_iter().filter(|(_, d)| d.len() > 1) {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        for dir in &dirs {
            errors.insert(
                (*dir).clone(),
                format!(
                    "skills in {} are all `{name}` {version}; a registry serves one source per \
                     name and version: rename all but one, or give them different versions",
                    names.join(" and ")
                ),
            );
        }
    }
    errors
}

/// A jobserver with a token per core, shared by this run's parallel cargo
/// processes so they never run more compilers than there are cores.
fn new_jobserver() -> Option<jobserver::Client> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    jobserver::Client::new(cores).ok()
}

struct Job<'a> {
    context: &'a Context,
    /// Skill folders whose key another folder of the run has too, and the
    /// error naming both.
    collisions: HashMap<PathBuf, String>,
    executor: Option<Executor>,
    toolchain: Result<Toolchain, ToolchainError>,
    build: BuildOptions,
    options: &'a PrecompileOptions,
}

impl Job<'_> {
    /// The skill's entry, and the layer its build used.
    fn one(&self, dir: &Path) -> (IndexEntry, Option<Layered>) {
        match Manifest::load(dir) {
            Ok(manifest) => {
                let mut layer = None;
                let entry = IndexEntry {
                    warnings: manifest.warnings.clone(),
                    ..self.one_manifest(dir, &manifest, &mut layer)
                };
                (entry, layer)
            }
            Err(e) => (
                failed(
                    &manifest::folder_name(dir),
                    "unknown",
                    format!("{}: {}", dir.display(), crate::error_chain(&e)),
                ),
                None,
            ),
        }
    }

    fn one_manifest(
        &self,
        dir: &Path,
        manifest: &Manifest,
        layer: &mut Option<Layered>,
    ) -> IndexEntry {
        let version = manifest.version_or_default().to_string();
        if let Some(collision) = self.collisions.get(dir) {
            return failed(&manifest.name, &version, collision.clone());
        }
        if self.options.strict && !manifest.warnings.is_empty() {
            let list: Vec<String> = manifest.warnings.iter().map(|w| w.to_string()).collect();
            return failed(
                &manifest.name,
                &version,
                format!(
                    "strict: {} breaks the Agent Skills spec:\n  {}",
                    dir.join(manifest::MANIFEST_FILE).display(),
                    list.join("\n  ")
                ),
            );
        }
        let key = match self.cache_key(dir) {
            Ok(key) => key,
            Err(e) => {
                return failed(
                    &manifest.name,
                    &version,
                    format!("cannot hash {}: {e}", dir.display()),
                );
            }
        };
        let rel = format!("{}/{}", manifest.name, manifest.version_path_segment());
        let entry_dir = self.options.out.join(&rel);
        if !self.options.force
            && let Some(cached) = cached_entry(&entry_dir, &key)
        {
            return entry(
                &manifest.name,
                &version,
                Status::Cached,
                (&entry_dir, &rel),
                &cached,
            );
        }
        match self.build(dir, &entry_dir, &key, layer) {
            Ok(provenance) => entry(
                &manifest.name,
                &version,
                Status::Ok,
                (&entry_dir, &rel),
                &provenance,
            ),
            Err(message) => failed(&manifest.name, &version, message),
        }
    }

    /// Everything that decides the output: the source tree (with any shipped
    /// binary), the toolchain, the world, this tool, the stub policy.
    fn cache_key(&self, dir: &Path) -> Result<String, String> {
        let canonical = dir.canonicalize().map_err(|e| e.to_string())?;
        let files = crate::skill::files::list(&canonical).map_err(|e| crate::error_chain(&e))?;
        let tree = crate::skill::files::sha256(&files).map_err(|e| crate::error_chain(&e))?;
        let toolchain = match &self.toolchain {
            Ok(t) => format!("{} / {}", t.rustc_version, t.cargo_version),
            Err(e) => format!("no toolchain: {e}"),
        };
        let key = format!(
            "boternity-precompile/1\n{tree}\n{toolchain}\n{}\n{}\nno_stub={}\ncwasm={}\n",
            SkillWorld::wit_sha256(),
            crate::TOOL_VERSION,
            self.options.no_stub,
            self.options.cwasm
        );
        Ok(sha256_hex(key.as_bytes()))
    }

    fn build(
        &self,
        dir: &Path,
        entry_dir: &Path,
        key: &str,
        layer: &mut Option<Layered>,
    ) -> Result<Provenance, String> {
        let options = PipelineOptions {
            build: self.build.clone(),
            no_stub: self.options.no_stub,
            toolchain: Some(self.toolchain.clone()),
            registry: None,
        };
        let prepared =
            pipeline::prepare(self.context, dir, &options).map_err(|e| crate::error_chain(&e))?;
        layer.clone_from(&prepared.layer);
        let binary = prepared.binary.as_deref();
        let (cwasm, record) = match (&self.executor, &prepared.component) {
            (Some(executor), Some(_)) => {
                let (cwasm, record) = executor
                    .precompile(binary.unwrap_or_default())
                    .map_err(|e| crate::error_chain(&e))?;
                (Some(cwasm), Some(record))
            }
            _ => (None, None),
        };
        let grants = Grants::from_manifest(&prepared.folder.manifest);
        let files = crate::skill::files::read_all(prepared.folder.installed_files())
            .map_err(|e| crate::error_chain(&e))?;
        let mut provenance =
            Provenance::new(&prepared, &files, TrustTier::Untrusted, grants, record);
        provenance.cache_key = Some(key.to_string());
        publish(entry_dir, &files, binary, cwasm.as_deref(), &provenance)
            .map_err(|e| crate::error_chain(&e))?;
        Ok(provenance)
    }
}

/// The previous run's output, if it was made from exactly this input and is
/// intact (every published file and the binary as recorded).
fn cached_entry(entry_dir: &Path, key: &str) -> Option<Provenance> {
    let provenance = Provenance::read(entry_dir).ok()??;
    if provenance.cache_key.as_deref() != Some(key) {
        return None;
    }
    if let Some(digest) = &provenance.wasm {
        let wasm = std::fs::read(entry_dir.join(WASM_FILE)).ok()?;
        if digest.sha256 != sha256_hex(&wasm) {
            return None;
        }
    }
    published_files(entry_dir, &provenance)?;
    Some(provenance)
}

/// The published files of `entry_dir` as the index lists them, each checked
/// against the provenance's digest (`None` if any is missing or differs).
fn published_files(entry_dir: &Path, provenance: &Provenance) -> Option<Vec<IndexFile>> {
    provenance
        .files
        .iter()
        .map(|(rel, digest)| {
            let path = entry_dir.join(rel);
            let bytes = std::fs::read(&path).ok()?;
            if sha256_hex(&bytes) != digest.sha256 {
                return None;
            }
            let executable = std::fs::metadata(&path).ok().is_some_and(|m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            });
            Some(IndexFile {
                path: rel.clone(),
                size: digest.size,
                sha256: digest.sha256.clone(),
                executable,
            })
        })
        .collect()
}

/// Writes `<entry_dir>/`: the skill's files (`SKILL.md`, `scripts/` …),
/// `skill.wasm`, `skill.cwasm` and the provenance, by staging beside it and
/// swapping it into place, flushed to disk like a store commit.
fn publish(
    entry_dir: &Path,
    files: &[FileContent],
    wasm: Option<&[u8]>,
    cwasm: Option<&[u8]>,
    provenance: &Provenance,
) -> Result<(), IoError> {
    let parent = entry_dir.parent().unwrap_or(entry_dir);
    let staged = StagedDir::new_in(parent, "entry")?;
    for file in files {
        staged.write_file(Path::new(&file.rel), &file.bytes, file.executable)?;
    }
    if let Some(wasm) = wasm {
        staged.write(WASM_FILE, wasm)?;
    }
    if let Some(cwasm) = cwasm {
        staged.write(CWASM_FILE, cwasm)?;
    }
    staged.write(PROVENANCE_FILE, &provenance.to_json())?;
    // The previous output (if any) ends up in the staged folder and goes with it.
    staged.commit(entry_dir)?;
    Ok(())
}

/// The index entry of a skill published in `entry_dir` (`rel` from the index).
fn entry(
    name: &str,
    version: &str,
    status: Status,
    (entry_dir, rel): (&Path, &str),
    provenance: &Provenance,
) -> IndexEntry {
    let Some(files) = published_files(entry_dir, provenance) else {
        return failed(
            name,
            version,
            format!("the published files in {rel} do not match their provenance"),
        );
    };
    let listed = IndexEntry {
        name: name.into(),
        version: version.into(),
        status,
        path: provenance
            .wasm
            .as_ref()
            .map(|_| format!("{rel}/{WASM_FILE}")),
        sha256: provenance.wasm.as_ref().map(|w| w.sha256.clone()),
        size: provenance.wasm.as_ref().map(|w| w.size),
        path_taken: Some(provenance.path_taken),
        error: None,
        dir: Some(rel.into()),
        source_sha256: Some(provenance.source_sha256.clone()),
        files,
        warnings: Vec::new(),
        yanked: None,
    };
    // The name rule, as an install applies it, on the files as published.
    let skill_md = entry_dir.join(manifest::MANIFEST_FILE);
    let checked = crate::fsutil::read_capped_no_follow(
        &skill_md,
        manifest::MAX_MANIFEST_BYTES,
        crate::fsutil::NoFollow::LastComponent,
    )
    .map_err(|e| format!("cannot read {}: {e}", skill_md.display()))
    .and_then(|bytes| {
        let hint = format!(
            "; {} was changed after it was built (a poisoned cache?): delete it, or \
                 force a rebuild of the registry",
            entry_dir.display()
        );
        listed
            .check_identity(&bytes, &hint)
            .map_err(|e| crate::error_chain(&e))
    });
    match checked {
        Ok(()) => listed,
        Err(error) => failed(name, version, error),
    }
}

fn failed(name: &str, version: &str, error: String) -> IndexEntry {
    IndexEntry {
        name: name.into(),
        version: version.into(),
        status: Status::Failed,
        path: None,
        sha256: None,
        size: None,
        path_taken: None,
        error: Some(error),
        dir: None,
        source_sha256: None,
        files: Vec::new(),
        warnings: Vec::new(),
        yanked: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_name_exactly_once() {
        let shards: Vec<Shard> = (1..=4).map(|k| format!("{k}/4").parse().unwrap()).collect();
        for i in 0..500 {
            let name = format!("skill-{i}");
            assert_eq!(
                shards.iter().filter(|s| s.contains(&name)).count(),
                1,
                "{name}"
            );
        }
        for bad in ["0/4", "5/4", "1/0", "x", "1-4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
