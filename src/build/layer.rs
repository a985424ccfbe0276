//! Dependency layers: a skill's registry dependencies compiled once, in the
//! sandbox, without the skill's own code, then frozen and shared read-only by
//! every skill whose dependencies are the same (cargo-chef's recipe, Docker's
//! layer cache).
//!
//! * **What a layer is.** [`plan`] reads a skill's resolved dependency graph
//!   (`cargo metadata` of its copy, after the confined fetch) and keeps its
//!   direct dependencies that resolve to registry packages with a checksum
//!   in `Cargo.lock` — path and git dependencies (and anything a `[patch]`
//!   points elsewhere) stay in the skill's private build. From them it writes
//!   a crate of its own ([`LAYER_PACKAGE`], an empty library of the skill's
//!   crate types, no build script unless build-dependencies need one, no
//!   `[patch]`): each dependency at its exact locked version with the
//!   features the skill asks for (its own default features included), and the
//!   skill's `[profile]`s. The **key** hashes that manifest, every package of
//!   the closure with its version, source and checksum, and what else
//!   decides the compiled units (toolchain, target, tool version, rustflags,
//!   paths).
//! * **Built once, confined.** The generated crate is built like a skill
//!   (same sandbox, same flags), into `<cache>/layers/.<key>.new/`, under an
//!   exclusive lock (`<key>.lock`): a second build of the same key waits and
//!   then reuses it. Its `Cargo.lock` must name only packages of the skill's
//!   lock with their checksums. Then it is **frozen**: every file's sha256
//!   and size written into `layer.json` ([`verify`] tells a changed layer),
//!   and the folder renamed into place, never written again.
//! * **Shared read-only.** A skill builds over it in its own mount namespace:
//!   overlayfs with the layer as the read-only lower directory and the
//!   skill's own target folder as the upper one, mounted at one fixed path
//!   ([`crate::paths::Folders::layered_target_mount`]) so cargo's fingerprints
//!   match (see [`super::sandbox::TargetView`]). Nothing a skill's build
//!   writes reaches the layer; the layer's host path is granted to no build.
//! * **Budgeted.** A build holds `<key>.lock` shared while it uses a layer and
//!   touches `<key>/used`: a sweep takes the lock exclusively (without
//!   waiting) before it removes a layer, and orders layers by that stamp.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, Metadata, Package};
use serde::{Deserialize, Serialize};

use crate::digest::FileDigest;
use crate::fsutil::{IoError, IoOp, IoResultExt};

/// The version of the layer format (part of every key).
pub const LAYER_FORMAT: &str = "boternity-layer/1";
/// The generated crate's package name: no skill's, so none of the skill's
/// own units can ever be mistaken for one of the layer's.
pub const LAYER_PACKAGE: &str = "boternity-layer";
/// The frozen layer's record: its key, packages and every file's hash.
pub const LAYER_RECORD: &str = "layer.json";
/// The layer's cargo target directory inside its folder (overlayfs's lower
/// directory).
pub const LAYER_TARGET: &str = "target";
/// The generated crate inside the layer's folder.
pub const LAYER_CRATE: &str = "crate";

/// Whether a build built its layer or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOutcome {
    /// Built by this build (then frozen for the next).
    Built,
    /// Built before (by another skill with the same dependencies, or an
    /// earlier run) and reused.
    Reused,
}

impl std::fmt::Display for LayerOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerOutcome::Built => "built",
            LayerOutcome::Reused => "reused",
        })
    }
}

/// The dependency layer a build used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layered {
    /// Its key (its folder's name in `<cache>/layers/`).
    pub key: String,
    pub outcome: LayerOutcome,
}

/// One package of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub source: String,
    pub checksum: String,
}

/// What a layer is built from: the generated crate and its key.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    /// The generated crate's `Cargo.toml`.
    pub manifest: String,
    /// Whether it needs an (empty) build script, for build-dependencies.
    pub build_script: bool,
    /// The skill's `Cargo.lock`, which the generated crate starts from.
    pub lock: String,
    /// The registry packages the layer compiles (the closure of its
    /// dependencies), sorted.
    pub packages: Vec<LockedPackage>,
    /// Every package of the skill's lock with a checksum.
    skill_lock: BTreeSet<LockedPackage>,
}

/// Why a layer could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(
        "the dependency layer's lock names `{0}`, which is not a registry package of the skill's Cargo.lock with the same checksum"
    )]
    ForeignPackage(String),
    #[error("the dependency layer {} changed since it was frozen: {}", dir.display(), changed.join(", "))]
    Changed { dir: PathBuf, changed: Vec<String> },
    #[error("the dependency layer {} has no readable record", .0.display())]
    NoRecord(PathBuf),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Why a skill has no layer (a note for its build, not an error).
pub type NoLayer = String;

/// The layer for the skill `package` of `metadata` (a full `cargo metadata`
/// of its copy), whose `Cargo.toml` and `Cargo.lock` are `manifest` and
/// `lock`; `salt` is everything else that decides its compiled units
/// (toolchain, target, flags, paths). `Err` says why there is none.
pub fn plan(
    metadata: &Metadata,
    package: &Package,
    manifest: &str,
    lock: &str,
    salt: &[&str],
) -> Result<Plan, NoLayer> {
    let resolve = metadata
        .resolve
        .as_ref()
        .ok_or("cargo resolved no dependency graph")?;
    let packages: HashMap<_, &Package> = metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let nodes: HashMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let root = nodes
        .get(&package.id)
        .ok_or("the skill's package is not in its dependency graph")?;
    let skill_lock = parse_lock(lock)?;
    let checksum = |p: &Package| -> Option<LockedPackage> {
        let source = p.source.as_ref()?.repr.clone();
        if !(source.starts_with("registry+") || source.starts_with("sparse+")) {
            return None;
        }
        skill_lock
            .iter()
            .find(|l| {
                l.name == p.name.as_str()
                    && l.version == p.version.to_string()
                    && l.source == source
            })
            .cloned()
    };
    // Features the skill's own enabled features turn on in its dependencies
    // (`dep/feature`, `dep?/feature`).
    let mut more: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for feature in &root.features {
        for entry in package.features.get(feature.as_str()).into_iter().flatten() {
            if let Some((dep, feature)) = entry.split_once('/') {
                more.entry(dep.trim_end_matches('?'))
                    .or_default()
                    .insert(feature);
            }
        }
    }
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut build_script = false;
    for dep in &package.dependencies {
        let kind = match dep.kind {
            DependencyKind::Normal => "dependencies",
            DependencyKind::Build => "build-dependencies",
            _ => continue,
        };
        let key = dep.rename.as_deref().unwrap_or(&dep.name);
        let crate_name = key.replace('-', "_");
        // Resolved, and enabled (an optional dependency no enabled feature
        // asks for is absent).
        let Some(node_dep) = root.deps.iter().find(|n| {
            n.name == crate_name
                && n.dep_kinds
                    .iter()
                    .any(|k| k.kind == dep.kind && k.target == dep.target)
        }) else {
            continue;
        };
        let Some(resolved) = packages.get(&node_dep.pkg) else {
            continue;
        };
        // A path or git dependency (or one a patch replaced) stays private.
        let Some(locked) = checksum(resolved) else {
            continue;
        };
        let mut features: BTreeSet<&str> = dep.features.iter().map(String::as_str).collect();
        features.extend(more.get(key).into_iter().flatten());
        let features: Vec<String> = features.iter().map(|f| quote(f)).collect();
        let spec = format!(
            "{} = {{ package = {}, version = {}, default-features = {}, features = [{}] }}",
            quote(key),
            quote(&locked.name),
            quote(&format!("={}", locked.version)),
            dep.uses_default_features,
            features.join(", ")
        );
        let table = match &dep.target {
            Some(platform) => format!("target.{}.{kind}", quote(&platform.to_string())),
            None => kind.to_string(),
        };
        build_script |= dep.kind == DependencyKind::Build;
        tables.entry(table).or_default().push(spec);
        roots.push(&node_dep.pkg);
    }
    if roots.is_empty() {
        return Err("the skill has no registry dependencies".into());
    }
    // The closure: every package the layer compiles must be a registry
    // package with its checksum in the lock.
    let mut seen = BTreeSet::new();
    let mut closure = BTreeSet::new();
    let mut queue: VecDeque<_> = roots.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let p = packages
            .get(id)
            .ok_or("a dependency is missing from the graph")?;
        let locked = checksum(p).ok_or_else(|| {
            format!(
                "`{} {}` among its dependencies is no registry package with a checksum",
                p.name, p.version
            )
        })?;
        closure.insert(locked);
        if let Some(node) = nodes.get(id) {
            queue.extend(node.dependencies.iter());
        }
    }
    let manifest = generated_manifest(package, manifest, &tables, build_script)?;
    let mut key = sha2::Sha256::new();
    use sha2::Digest;
    let mut part = |bytes: &[u8]| {
        key.update((bytes.len() as u64).to_le_bytes());
        key.update(bytes);
    };
    part(LAYER_FORMAT.as_bytes());
    for s in salt {
        part(s.as_bytes());
    }
    part(manifest.as_bytes());
    for p in &closure {
        part(format!("{} {} {} {}", p.name, p.version, p.source, p.checksum).as_bytes());
    }
    Ok(Plan {
        key: hex::encode(key.finalize()),
        manifest,
        build_script,
        lock: lock.to_string(),
        packages: closure.into_iter().collect(),
        skill_lock,
    })
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The generated crate's `Cargo.toml`: the skill's edition, resolver, crate
/// types and profiles; `tables` of dependencies; nothing else.
fn generated_manifest(
    package: &Package,
    manifest: &str,
    tables: &BTreeMap<String, Vec<String>>,
    build_script: bool,
) -> Result<String, NoLayer> {
    let parsed: toml::Table =
        toml::from_str(manifest).map_err(|e| format!("its Cargo.toml does not parse: {e}"))?;
    let edition = serde_json::to_value(package.edition)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "2021".into());
    let crate_types: Vec<String> = package
        .targets
        .iter()
        .find(|t| t.is_lib() || t.is_cdylib())
        .map(|t| {
            t.crate_types
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .filter_map(|v| v.as_str().map(quote))
                .collect()
        })
        .unwrap_or_default();
    let mut text = format!(
        "# Generated by boternity: a skill's registry dependencies, without its code.\n\
         [package]\nname = \"{LAYER_PACKAGE}\"\nversion = \"0.0.0\"\nedition = {}\npublish = false\n",
        quote(&edition)
    );
    if build_script {
        text.push_str("build = \"build.rs\"\n");
    }
    text.push_str(&format!(
        "\n[lib]\npath = \"lib.rs\"\ncrate-type = [{}]\n",
        crate_types.join(", ")
    ));
    for (table, specs) in tables {
        text.push_str(&format!("\n[{table}]\n"));
        for spec in specs {
            text.push_str(spec);
            text.push('\n');
        }
    }
    text.push_str("\n[workspace]\n");
    let resolver = parsed
        .get("workspace")
        .and_then(|w| w.get("resolver"))
        .or_else(|| parsed.get("package").and_then(|p| p.get("resolver")));
    if let Some(resolver) = resolver.and_then(|r| r.as_str()) {
        text.push_str(&format!("resolver = {}\n", quote(resolver)));
    }
    if let Some(profile) = parsed.get("profile") {
        let mut wrapper = toml::Table::new();
        wrapper.insert("profile".into(), profile.clone());
        let profiles = toml::to_string(&wrapper)
            .map_err(|e| format!("its [profile] does not serialize: {e}"))?;
        text.push('\n');
        text.push_str(&profiles);
    }
    Ok(text)
}

/// Every package of a `Cargo.lock` with a source and a checksum.
fn parse_lock(lock: &str) -> Result<BTreeSet<LockedPackage>, NoLayer> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let parsed: Lock =
        toml::from_str(lock).map_err(|e| format!("its Cargo.lock does not parse: {e}"))?;
    Ok(parsed
        .package
        .into_iter()
        .filter_map(|e| {
            Some(LockedPackage {
                name: e.name,
                version: e.version,
                source: e.source?,
                checksum: e.checksum?,
            })
        })
        .collect())
}

impl Plan {
    /// Writes the generated crate into `dir`.
    pub fn write_crate(&self, dir: &Path) -> Result<(), IoError> {
        std::fs::create_dir_all(dir).on(IoOp::Create, dir)?;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).on(IoOp::Write, &path)
        };
        write("Cargo.toml", self.manifest.as_bytes())?;
        write("Cargo.lock", self.lock.as_bytes())?;
        write("lib.rs", b"")?;
        if self.build_script {
            write("build.rs", b"fn main() {}\n")?;
        }
        Ok(())
    }

    /// Checks the lock cargo left in the generated crate: only registry
    /// packages of the skill's own lock, with the same checksums.
    pub fn check_lock(&self, crate_dir: &Path) -> Result<(), LayerError> {
        let path = crate_dir.join("Cargo.lock");
        let text = std::fs::read_to_string(&path).on(IoOp::Read, &path)?;
        #[derive(Deserialize)]
        struct Lock {
            #[serde(default)]
            package: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            name: String,
            version: String,
            source: Option<String>,
            checksum: Option<String>,
        }
        let lock: Lock =
            toml::from_str(&text).map_err(|_| LayerError::ForeignPackage("Cargo.lock".into()))?;
        for e in lock.package {
            if e.name == LAYER_PACKAGE && e.source.is_none() {
                continue;
            }
            let found = match (&e.source, &e.checksum) {
                (Some(source), Some(checksum)) => self.skill_lock.contains(&LockedPackage {
                    name: e.name.clone(),
                    version: e.version.clone(),
                    source: source.clone(),
                    checksum: checksum.clone(),
                }),
                _ => false,
            };
            if !found {
                return Err(LayerError::ForeignPackage(format!(
                    "{} {}",
                    e.name, e.version
                )));
            }
        }
        Ok(())
    }
}

/// The record of a frozen layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub format: String,
    pub key: String,
    pub packages: Vec<LockedPackage>,
    /// Every file of `target/`, relative, with its sha256 and size.
    pub files: BTreeMap<String, FileDigest>,
}

/// A layer in use: its folder, how this build came by it, the shared lock
/// that keeps another build from rebuilding it, and the cache's hold that
/// keeps a sweep from removing it (and records its use), until the build is
/// over.
#[derive(Debug)]
pub struct LayerLease {
    pub dir: PathBuf,
    pub layered: Layered,
    _lock: File,
    _in_use: crate::cache::InUse,
}

impl LayerLease {
    /// The frozen target directory (overlayfs's lower directory).
    pub fn target(&self) -> PathBuf {
        self.dir.join(LAYER_TARGET)
    }
}

/// What a plan memo holds for a skill without a layer.
pub const NO_LAYER: &str = "none";

/// Where the plan of a skill with this manifest, lock and salt is noted (the
/// layer's key, or [`NO_LAYER`]), in `plans`.
pub fn plan_memo(plans: &Path, manifest: &str, lock: &str, salt: &[&str]) -> PathBuf {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [LAYER_FORMAT, manifest, lock].iter().chain(salt) {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    plans.join(hex::encode(hash.finalize()))
}

/// The frozen layer `key`, held shared, if it is there.
pub fn reuse(layers: &Path, key: &str) -> Result<Option<LayerLease>, LayerError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let dir = layer_dir(layers, key);
    if !is_frozen(&dir) {
        return Ok(None);
    }
    let lock_file = lock_path(layers, key);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .on(IoOp::Create, &lock_file)?;
    lock.lock_shared().on(IoOp::Lock, &lock_file)?;
    let in_use = crate::cache::InUse::acquire(&dir)?;
    // Checked again, held: a sweep may have removed it meanwhile.
    if !is_frozen(&dir) {
        return Ok(None);
    }
    Ok(Some(LayerLease {
        dir,
        layered: Layered {
            key: key.to_string(),
            outcome: LayerOutcome::Reused,
        },
        _lock: lock,
        _in_use: in_use,
    }))
}

/// The folder of layer `key` in `layers`.
pub fn layer_dir(layers: &Path, key: &str) -> PathBuf {
    layers.join(key)
}

/// The lock of layer `key`: exclusive while it is built (or removed), shared
/// while a build uses it.
pub fn lock_path(layers: &Path, key: &str) -> PathBuf {
    layers.join(format!("{key}.lock"))
}

fn is_frozen(dir: &Path) -> bool {
    dir.join(LAYER_RECORD).is_file() && dir.join(LAYER_TARGET).is_dir()
}

/// The layer of `plan` in `layers`, frozen: found, or built by `build` (which
/// gets the generated crate's folder and the target folder to fill) under
/// the exclusive lock, so one build of a key runs at a time and the others
/// then reuse it. The lease holds the lock shared.
pub fn acquire<E: From<LayerError>>(
    layers: &Path,
    plan: &Plan,
    build: impl FnOnce(&Path, &Path) -> Result<(), E>,
) -> Result<LayerLease, E> {
    std::fs::create_dir_all(layers)
        .on(IoOp::Create, layers)
        .map_err(LayerError::from)?;
    let dir = layer_dir(layers, &plan.key);
    let lock_file = lock_path(layers, &plan.key);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .on(IoOp::Create, &lock_file)
        .map_err(LayerError::from)?;
    let mut build = Some(build);
    let mut built = false;
    loop {
        lock.lock_shared()
            .on(IoOp::Lock, &lock_file)
            .map_err(LayerError::from)?;
        let in_use = crate::cache::InUse::acquire(&dir).map_err(LayerError::from)?;
        if is_frozen(&dir) {
            let outcome = match built {
                true => LayerOutcome::Built,
                false => LayerOutcome::Reused,
            };
            return Ok(LayerLease {
                dir,
                layered: Layered {
                    key: plan.key.clone(),
                    outcome,
                },
                _lock: lock,
                _in_use: in_use,
            });
        }
        drop(in_use);
        // Not there: build it, alone.
        lock.lock()
            .on(IoOp::Lock, &lock_file)
            .map_err(LayerError::from)?;
        if !is_frozen(&dir) {
            let Some(build) = build.take() else {
                // Built by this call, and gone again: give up rather than loop.
                return Err(LayerError::NoRecord(dir).into());
            };
            // Dot-named: the cache's sweep never takes a layer being built.
            let staging = layers.join(format!(".{}.new", plan.key));
            crate::fsutil::remove_tree(&staging).map_err(LayerError::from)?;
            let crate_dir = staging.join(LAYER_CRATE);
            let target = staging.join(LAYER_TARGET);
            plan.write_crate(&crate_dir).map_err(LayerError::from)?;
            std::fs::create_dir_all(&target)
                .on(IoOp::Create, &target)
                .map_err(LayerError::from)?;
            let result = build(&crate_dir, &target)
                .and_then(|()| plan.check_lock(&crate_dir).map_err(E::from))
                .and_then(|()| freeze(&staging, plan).map_err(E::from));
            if let Err(e) = result {
                let _ = crate::fsutil::remove_tree(&staging);
                return Err(e);
            }
            std::fs::rename(&staging, &dir)
                .on(IoOp::Rename, &staging)
                .map_err(LayerError::from)?;
            built = true;
        }
        // Back to shared (and checked again: a sweep may have come between).
    }
}

/// Writes `layer.json`: every file of the layer's target directory with its
/// hash.
fn freeze(dir: &Path, plan: &Plan) -> Result<(), LayerError> {
    let record = LayerRecord {
        format: LAYER_FORMAT.into(),
        key: plan.key.clone(),
        packages: plan.packages.clone(),
        files: hash_tree(&dir.join(LAYER_TARGET))?,
    };
    let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    crate::fsutil::write_atomically(&dir.join(LAYER_RECORD), &json)?;
    Ok(())
}

/// Every file below `root` (links by their target), relative, with its hash.
fn hash_tree(root: &Path) -> Result<BTreeMap<String, FileDigest>, IoError> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).on(IoOp::List, &dir)? {
            let entry = entry.on(IoOp::List, &dir)?;
            let path = entry.path();
            let kind = entry.file_type().on(IoOp::Inspect, &path)?;
            let rel = crate::skill::files::rel_path(root, &path);
            if kind.is_dir() {
                files.insert(
                    format!("{rel}/"),
                    FileDigest {
                        sha256: String::new(),
                        size: 0,
                    },
                );
                stack.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).on(IoOp::Read, &path)?;
                let bytes = target.as_os_str().as_encoded_bytes();
                files.insert(
                    format!("{rel} ->"),
                    FileDigest {
                        sha256: crate::digest::sha256_hex(bytes),
                        size: bytes.len() as u64,
                    },
                );
            } else {
                files.insert(rel, file_digest(&path)?);
            }
        }
    }
    Ok(files)
}

/// A file's sha256 and size, read in pieces.
fn file_digest(path: &Path) -> Result<FileDigest, IoError> {
    use sha2::Digest;
    let mut file = File::open(path).on(IoOp::Read, path)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).on(IoOp::Read, path)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        sha256: hex::encode(hash.finalize()),
        size,
    })
}

/// Checks a frozen layer against its record, byte for byte: a file changed,
/// added or removed since it was frozen is an error naming it.
pub fn verify(dir: &Path) -> Result<LayerRecord, LayerError> {
    let record_path = dir.join(LAYER_RECORD);
    let record: LayerRecord = std::fs::read(&record_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| LayerError::NoRecord(dir.to_path_buf()))?;
    let now = hash_tree(&dir.join(LAYER_TARGET))?;
    let mut changed: Vec<String> = record
        .files
        .iter()
        .filter(|(rel, hash)| now.get(*rel) != Some(hash))
        .map(|(rel, _)| rel.clone())
        .collect();
    changed.extend(
        now.keys()
            .filter(|rel| !record.files.contains_key(*rel))
            .map(|rel| format!("{rel} (added)")),
    );
    if !changed.is_empty() {
        return Err(LayerError::Changed {
            dir: dir.to_path_buf(),
            changed,
        });
    }
    Ok(record)
}
