//! Building a skill's Rust source with cargo for `wasm32-wasip2`.
//!
//! The crate is found with `cargo metadata`, built with
//! `--message-format json-render-diagnostics`, and the cdylib is taken from
//! cargo's artifact messages, never from a guessed path. Source may be
//! untrusted (its build scripts and proc macros run here), so by default every
//! process a build starts runs in the [build sandbox](super::sandbox):
//!
//! 1. The skill's files — exactly those its source hash covers (no `target/`,
//!    no `.git/`, links resolved inside the folder, each read without
//!    following links) — are copied into a private folder: what a build can
//!    read is what was hashed, and nothing of the skill's folder is written.
//! 2. Every dependency source the manifests and lock name is checked
//!    ([`super::sources`]): crates.io (or its configured mirror) and paths
//!    inside the folder only.
//! 3. `cargo metadata --offline`, confined.
//! 4. `cargo fetch`, confined, its only way out the [fetch proxy](super::fetch_proxy).
//! 5. The [dependency layer](super::layer) of its registry dependencies:
//!    found, or built (confined, without the skill's code) and frozen.
//! 6. `cargo build --offline --locked`: no network, the copy read-only, only
//!    its own target directory writable — a directory that is started clean
//!    whenever what runs at build time changes (see [`BuildKey`]) — seen, over
//!    the read-only layer, at one fixed path in the build's mount namespace.
//!
//! cargo and rustc are the pinned toolchain's, by absolute path, run from a
//! private working folder: a skill's `rust-toolchain(.toml)` and
//! `.cargo/config(.toml)` are ignored (and a build says so). Unconfined builds
//! (an explicit choice) get the same toolchain, a neutral working folder, a
//! scrubbed environment, `--locked` when a lock file ships, and the same time
//! limit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cargo_metadata::{CrateType, Message, Metadata, MetadataCommand};

use crate::build::fetch_proxy::{FetchProxy, RegistryHosts};
use crate::build::layer::{self, LayerError, LayerLease, Layered};
use crate::build::sandbox::{LayerMount, TargetView};
use crate::build::sources::{self, SourceRefused};
use crate::build::toolchain::{IGNORED_CONFIGURATION, NEUTRAL_DIR, SKILL_TARGET, Toolchain};
use crate::build::wrap::{self, WrapError};
use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::paths::Folders;
use crate::process::{RunError, RunLimits};
use crate::skill::files::{self, FilesError};
use crate::skill::source::RustSource;

/// How long a skill build may take by default.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Environment variables cargo keeps; everything else (tokens, keys, the
/// caller's `RUSTFLAGS`) is dropped before building untrusted source.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "TERM",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_AUTO_INSTALL",
    "RUSTC_WRAPPER",
    "CARGO_NET_OFFLINE",
    "CARGO_HTTP_TIMEOUT",
    "CARGO_HTTP_CAINFO",
    "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];
/// Prefixes of variables kept (a shared compiler cache such as sccache).
const KEPT_ENV_PREFIXES: &[&str] = &["SCCACHE_"];

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// cargo's target directory. `None`: a confined build uses the skill's own
    /// ([`Folders::skill_target_dir`]); an unconfined one the crate's own
    /// `target/`, or for a bare `lib.rs` [`Folders::shared_target_dir`].
    /// A directory shared between skills lets their builds read and overwrite
    /// each other's artifacts: share one only between sources trusted alike.
    pub target_dir: Option<PathBuf>,
    /// Where bare `lib.rs` files are wrapped into crates (a temporary folder per
    /// build when `None`).
    pub wrapper_dir: Option<PathBuf>,
    /// Kill the build after this long.
    pub timeout: Duration,
    /// `cargo build --jobs`.
    pub jobs: Option<u32>,
    /// A jobserver shared by parallel builds, so they never run more compiler
    /// processes than it has tokens.
    pub jobserver: Option<jobserver::Client>,
    /// Remove a `Cargo.lock` the build created in the source folder, leaving
    /// the source exactly as it was (a registry checkout stays clean, and its
    /// content hash stays the cache key).
    pub leave_source_untouched: bool,
    /// Whether the build runs in the sandbox (the default) or unconfined.
    pub confinement: Confinement,
    /// The executable that serves as the sandbox's helper: it must call
    /// [`super::sandbox::helper_main`] first thing in `main`. Default: this
    /// process's own executable, `/proc/self/exe` (the `boternity` binary
    /// calls it).
    pub sandbox_helper: Option<PathBuf>,
    /// The package registries a confined fetch may reach (crates.io, or a
    /// mirror that replaces it).
    pub registries: RegistryHosts,
    /// Most bytes a confined build may write into its target directory and
    /// private temporary folder: files it creates or changes, what they held
    /// before not counted ([`MAX_TARGET_BYTES`] by default).
    pub max_target_bytes: u64,
    /// Whether a confined build in boternity's own target directory builds
    /// over a [dependency layer](super::layer) (the default); off, every
    /// skill compiles its dependencies itself (for comparisons).
    pub layers: bool,
}

/// How a build of skill source is confined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Confinement {
    /// In the build sandbox: fetch with network, then build offline under
    /// Landlock, seccomp and (where allowed) namespaces. Refused where the
    /// kernel cannot confine it.
    #[default]
    Sandboxed,
    /// Unconfined, as the caller's explicit choice: build scripts and proc
    /// macros run with the caller's rights.
    Unconfined,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            target_dir: None,
            wrapper_dir: None,
            timeout: DEFAULT_BUILD_TIMEOUT,
            jobs: None,
            jobserver: None,
            leave_source_untouched: false,
            confinement: Confinement::default(),
            sandbox_helper: None,
            registries: RegistryHosts::default(),
            max_target_bytes: MAX_TARGET_BYTES,
            layers: true,
        }
    }
}

/// A successful build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The cdylib's bytes (a component for `wasm32-wasip2`).
    pub wasm: Vec<u8>,
    /// Where cargo wrote it.
    pub artifact: PathBuf,
    /// The cargo package that was built.
    pub package: String,
    /// cargo's rendered warnings (empty when clean).
    pub diagnostics: String,
    /// Text appended to a bare `lib.rs` (bindings, export), if any.
    pub wrapper_additions: Option<String>,
    /// What the build ignored or did that its caller should say (a skill's
    /// toolchain file, a target directory started clean).
    pub notes: Vec<String>,
    /// The dependency layer it was built over, if any.
    pub layer: Option<Layered>,
    /// The targets cargo compiled in this build (those it found fresh are
    /// not listed), by crate name.
    pub compiled: Vec<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Wrap(#[from] WrapError),
    #[error("`cargo metadata` failed for {}:\n{message}", manifest.display())]
    Metadata { manifest: PathBuf, message: String },
    #[error(
        "{} is a virtual workspace manifest; point at the skill package's own folder",
        .0.display()
    )]
    VirtualManifest(PathBuf),
    #[error(
        "package `{package}` has no cdylib library: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml"
    )]
    NotCdylib { package: String },
    #[error("cannot run {}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("cargo build failed for `{package}`:\n{stderr}{}", refused(denials))]
    Compile {
        package: String,
        stderr: String,
        /// What the build sandbox most likely refused (empty when nothing).
        denials: Vec<String>,
    },
    #[error(
        "`cargo fetch` failed for `{package}` (resolving and downloading dependencies):\n{stderr}"
    )]
    Fetch { package: String, stderr: String },
    #[error(
        "`{package}` depends on `{dependency}` at {}, outside the skill folder {}; \
         a skill must be self-contained (vendor the crate into the folder, or depend on it from a registry)",
        path.display(), root.display()
    )]
    PathDependencyOutside {
        package: String,
        dependency: String,
        path: PathBuf,
        root: PathBuf,
    },
    #[error(
        "the crate in {} belongs to the workspace at {}, outside the skill folder; \
         add `[workspace]` to its Cargo.toml to make it a workspace of its own",
        root.display(), workspace.display()
    )]
    WorkspaceOutside { root: PathBuf, workspace: PathBuf },
    #[error("the build sandbox could not be set up: {message}")]
    Sandbox { message: String },
    #[error("cargo build of `{package}` took over {}s and was stopped:\n{stderr}", timeout.as_secs())]
    Timeout {
        package: String,
        timeout: Duration,
        stderr: String,
    },
    #[error("cargo built `{package}` but reported no .wasm artifact for it")]
    NoArtifact { package: String },
    #[error(
        "the build of `{package}` made folders the disk watchdog cannot count below {} ({why}): it \
         was stopped{}; no build needs such folders, so it is broken or hostile",
        dir.display(),
        if *removed { "; the folder, boternity's own, was removed" } else { " (the folder is kept)" }
    )]
    Unmeasurable {
        package: String,
        dir: PathBuf,
        why: Unmeasurable,
        removed: bool,
    },
    #[error(
        "the build of `{package}` wrote {written} bytes into {} (files it created or changed), \
         over the {limit}-byte disk limit of one build: it was stopped{}; if the build needs that \
         much room, raise the limit, else it is broken or hostile",
        dir.display(),
        if *removed { "; the folder, boternity's own, was removed" } else { " (the folder is kept)" }
    )]
    DiskLimit {
        package: String,
        /// The folder it wrote most into: its target directory, or its
        /// private temporary folder.
        dir: PathBuf,
        written: u64,
        limit: u64,
        /// Whether `dir` was removed (boternity's own target directory, or
        /// the build's private TMPDIR; a caller's target directory never is).
        removed: bool,
    },
    #[error(transparent)]
    Source(#[from] SourceRefused),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("cannot copy the skill's source for its build")]
    Files(#[from] FilesError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// "\nthe build sandbox refused: …" after cargo's output, when it did.
fn refused(denials: &[String]) -> String {
    if denials.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nthe build sandbox refused:");
    for d in denials {
        text.push_str("\n  ");
        text.push_str(d);
    }
    text
}

impl BuildError {
    /// Whether cargo refused to build because the shipped or kept
    /// `Cargo.lock` no longer fits the manifests (its `--locked` refusal):
    /// then resolving anew may succeed.
    pub fn is_lock_out_of_date(&self) -> bool {
        match self {
            BuildError::Compile { stderr, .. } | BuildError::Fetch { stderr, .. } => {
                stderr.contains("--locked") && stderr.contains("lock file")
            }
            _ => false,
        }
    }
}

/// Builds `source` for the skill `name`.
pub fn build(
    folders: &Folders,
    toolchain: &Toolchain,
    name: &str,
    source: &RustSource,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    match source {
        RustSource::Crate { manifest_path } => {
            build_crate(folders, toolchain, manifest_path, options, None)
        }
        RustSource::BareLib { lib_rs } => {
            let temp;
            let wrapper_root = match &options.wrapper_dir {
                Some(dir) => dir.join(name),
                None => {
                    temp = tempfile::Builder::new()
                        .prefix("boternity-wrap-")
                        .tempdir()
                        .on(IoOp::Create, &std::env::temp_dir())?;
                    temp.path().join(name)
                }
            };
            let (manifest, appended) = wrap::write_wrapper_crate(name, lib_rs, &wrapper_root)?;
            // A wrapper lives for one build; its dependencies should not. An
            // unconfined build shares them with other bare skills; a confined
            // one keeps them in the skill's own target directory.
            let mut options = options.clone();
            if options.target_dir.is_none() {
                options.target_dir = Some(match options.confinement {
                    Confinement::Unconfined => folders.shared_target_dir(),
                    Confinement::Sandboxed => folders.skill_target_dir(&target_key(name, lib_rs)),
                });
            }
            build_crate(folders, toolchain, &manifest, &options, appended)
        }
    }
}

fn build_crate(
    folders: &Folders,
    toolchain: &Toolchain,
    manifest_path: &Path,
    options: &BuildOptions,
    wrapper_additions: Option<String>,
) -> Result<Built, BuildError> {
    let source_root = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut notes = ignored_configuration(&source_root, toolchain);
    match options.confinement {
        Confinement::Sandboxed => build_confined(
            folders,
            toolchain,
            &source_root,
            options,
            wrapper_additions,
            notes,
        ),
        Confinement::Unconfined => {
            let shared = folders.shared_target_dir();
            let _in_use = match options.target_dir.as_deref() == Some(shared.as_path()) {
                true => Some(crate::cache::InUse::acquire(&shared)?),
                false => None,
            };
            let built = build_unconfined(toolchain, manifest_path, options, wrapper_additions)?;
            notes.extend(built.notes);
            Ok(Built { notes, ..built })
        }
    }
}

/// The arguments of `cargo build` for `package`.
fn build_args(
    manifest: &Path,
    package: &str,
    target_dir: &Path,
    jobs: Option<u32>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--release".into(),
        "--target".into(),
        SKILL_TARGET.into(),
        "--message-format".into(),
        "json-render-diagnostics".into(),
        "--manifest-path".into(),
        manifest.into(),
        "--package".into(),
        package.into(),
        "--lib".into(),
        "--target-dir".into(),
        target_dir.into(),
    ];
    if let Some(jobs) = jobs {
        args.extend(["--jobs".into(), jobs.to_string().into()]);
    }
    args
}

/// The root package of `metadata`, which must be a cdylib.
fn cdylib_package<'m>(
    metadata: &'m Metadata,
    manifest_path: &Path,
) -> Result<&'m cargo_metadata::Package, BuildError> {
    let package = metadata
        .root_package()
        .ok_or_else(|| BuildError::VirtualManifest(manifest_path.to_path_buf()))?;
    let is_cdylib = package
        .targets
        .iter()
        .any(|t| t.crate_types.contains(&CrateType::CDyLib));
    if !is_cdylib {
        return Err(BuildError::NotCdylib {
            package: package.name.to_string(),
        });
    }
    Ok(package)
}

/// The confined build (see the module doc for its steps).
fn build_confined(
    folders: &Folders,
    toolchain: &Toolchain,
    source_root: &Path,
    options: &BuildOptions,
    wrapper_additions: Option<String>,
    mut notes: Vec<String>,
) -> Result<Built, BuildError> {
    let source_root = source_root.canonicalize().on(IoOp::Inspect, source_root)?;
    let folder_name = source_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "skill".into());
    let target_dir = match &options.target_dir {
        Some(dir) => dir.clone(),
        None => folders.skill_target_dir(&target_key(&folder_name, &source_root)),
    };
    // The copy has a stable place, `<cache>/sources/<name>`, named like
    // boternity's own target directory (one per source) or after the folder:
    // so cargo sees unchanged files as unchanged.
    let place_name = if folders.is_own_target_dir(&target_dir) {
        target_dir.file_name().unwrap_or_default().to_os_string()
    } else {
        target_key(&folder_name, &source_root).into()
    };
    let place = folders.sources_dir().join(place_name);
    let sandbox = ConfinedBuild::new(folders, toolchain, &place, &target_dir, options)?;
    // 1. The copy: exactly the hashed files.
    let copied = sandbox.copy_source(&source_root)?;
    let manifest_path = sandbox.layout.skill_dir.join("Cargo.toml");
    // 2. Sources, before any cargo runs.
    check_sources(&sandbox.layout.skill_dir, &copied, options)?;
    // 3. Metadata, confined.
    let metadata = sandbox.metadata(&manifest_path)?;
    let package = cdylib_package(&metadata, &manifest_path)?;
    let package_name = package.name.to_string();
    check_self_contained(&metadata, &sandbox.layout.skill_dir)?;
    let lock_file = sandbox.layout.skill_dir.join("Cargo.lock");
    let lock_shipped = copied.iter().any(|rel| rel == "Cargo.lock");
    // 4. The fetch. A lock file fetched before needs no second fetch (the
    // warm path); should the cargo home have lost a crate since, the offline
    // build says so, and it is fetched and built again.
    let copy = &sandbox.layout.skill_dir;
    let fetched_before = fetch_stamp(folders, copy).is_some_and(|stamp| stamp.is_file());
    if !fetched_before {
        sandbox.fetch(&manifest_path, lock_shipped, &package_name)?;
        remember_fetch(folders, copy);
    }
    // A lock the fetch resolved names only what the registries serve; check
    // it all the same, and give it back to the caller's folder as cargo would.
    if !lock_shipped && let Ok(resolved) = std::fs::read_to_string(&lock_file) {
        sources::check(
            &[],
            Some((&source_root.join("Cargo.lock"), &resolved)),
            false,
        )?;
        if !options.leave_source_untouched {
            // As cargo would; never through a link, never over a file.
            let mut out = std::fs::OpenOptions::new();
            out.write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut out, libc::O_NOFOLLOW);
            if let Ok(mut file) = out.open(source_root.join("Cargo.lock")) {
                let _ = std::io::Write::write_all(&mut file, resolved.as_bytes());
            }
        }
    }
    // 5. The dependency layer: built or found, held until the build is over.
    let own_dir = folders.is_own_target_dir(&target_dir);
    let lease = match own_dir && options.layers {
        true => match sandbox.layer(&manifest_path) {
            Ok(lease) => lease,
            Err(e) => {
                notes.push(format!(
                    "built without a dependency layer: {}",
                    crate::error_chain(&e)
                ));
                None
            }
        },
        false => None,
    };
    // 6. The build, in a target directory that holds only what this source's
    // build-time code wrote (over the layer, in its own mount namespace).
    // Held until the build is over: no cache sweep removes boternity's own
    // target directory meanwhile, and the sweep's order knows it was used.
    let _in_use = match own_dir {
        true => Some(crate::cache::InUse::acquire(&target_dir)?),
        false => None,
    };
    if own_dir {
        let layer_key = lease.as_ref().map(|l| l.layered.key.as_str());
        let key = BuildKey::of(
            toolchain,
            &package_name,
            &metadata,
            copy,
            &copied,
            layer_key,
        )?;
        if key.start_clean(&target_dir)? {
            notes.push(format!(
                "started {} clean: what runs at build time changed since its last build",
                target_dir.display()
            ));
        }
    }
    let work;
    let view = match &lease {
        Some(lease) => {
            let parent = folders.overlay_work_dir();
            std::fs::create_dir_all(&parent).on(IoOp::Create, &parent)?;
            work = Some(
                tempfile::Builder::new()
                    .prefix("work-")
                    .tempdir_in(&parent)
                    .on(IoOp::Create, &parent)?,
            );
            Some(TargetView {
                at: folders.layered_target_mount(),
                upper: target_dir.clone(),
                layer: Some(LayerMount {
                    lower: lease.target(),
                    work: work
                        .as_ref()
                        .map(|w| w.path().to_path_buf())
                        .unwrap_or_default(),
                }),
            })
        }
        None => {
            work = None;
            None
        }
    };
    let seen_at = view
        .as_ref()
        .map_or(target_dir.as_path(), |v| v.at.as_path());
    let mut args = build_args(&manifest_path, &package_name, seen_at, options.jobs);
    args.extend(["--offline".into(), "--locked".into()]);
    let output = match sandbox.run(&args, &package_name, view.as_ref()) {
        Ok(out) if fetched_before && !out.success && needs_fetch(&out.stderr) => {
            sandbox.fetch(&manifest_path, lock_shipped, &package_name)?;
            remember_fetch(folders, copy);
            sandbox.run(&args, &package_name, view.as_ref())
        }
        other => other,
    };
    if let Some(work) = work {
        // overlayfs leaves a folder without permissions behind.
        let _ = crate::fsutil::remove_tree(work.path());
    }
    let mut built = finish(
        output?,
        package,
        (seen_at, &target_dir),
        true,
        wrapper_additions,
        notes,
    )?;
    built.layer = lease.map(|l| l.layered.clone());
    Ok(built)
}

/// The unconfined build (an explicit choice): in place, with the pinned
/// toolchain, from a neutral working folder, in a scrubbed environment.
fn build_unconfined(
    toolchain: &Toolchain,
    manifest_path: &Path,
    options: &BuildOptions,
    wrapper_additions: Option<String>,
) -> Result<Built, BuildError> {
    let metadata = crate_metadata(toolchain, manifest_path)?;
    let package = cdylib_package(&metadata, manifest_path)?;
    let package_name = package.name.to_string();
    let target_dir = match &options.target_dir {
        Some(dir) => dir.clone(),
        None => metadata.target_directory.clone().into_std_path_buf(),
    };
    let lock_file = metadata
        .workspace_root
        .join("Cargo.lock")
        .into_std_path_buf();
    let lock_shipped = lock_file.is_file();
    let mut cmd = scrubbed_cargo(toolchain);
    cmd.args(build_args(
        manifest_path,
        &package_name,
        &target_dir,
        options.jobs,
    ))
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        reproducible_rustflags(toolchain.host.user_cargo_home().as_deref(), &target_dir),
    )
    .env("CARGO_TERM_COLOR", "never");
    if lock_shipped && wrapper_additions.is_none() {
        cmd.arg("--locked");
    }
    if let Some(client) = &options.jobserver {
        client.configure(&mut cmd);
    }
    let output = run_cargo(cmd, options.timeout, None, &package_name);
    if options.leave_source_untouched && !lock_shipped {
        let _ = std::fs::remove_file(&lock_file);
    }
    finish(
        output?,
        package,
        (&target_dir, &target_dir),
        false,
        wrapper_additions,
        Vec::new(),
    )
}

/// The built artifact out of cargo's messages, or the build's error.
/// `(seen_at, target_dir)`: where cargo saw its target directory (a fixed
/// path in a layered build's mount namespace) and where it is here.
fn finish(
    output: CargoOutput,
    package: &cargo_metadata::Package,
    (seen_at, target_dir): (&Path, &Path),
    sandboxed: bool,
    wrapper_additions: Option<String>,
    notes: Vec<String>,
) -> Result<Built, BuildError> {
    let package_name = package.name.to_string();
    let mut artifact = None;
    let mut compiled = Vec::new();
    for message in Message::parse_stream(output.stdout.as_slice()).flatten() {
        let Message::CompilerArtifact(a) = message else {
            continue;
        };
        if !a.fresh {
            compiled.push(a.target.name.clone());
        }
        if a.package_id == package.id && a.target.crate_types.contains(&CrateType::CDyLib) {
            artifact = a
                .filenames
                .iter()
                .find(|f| f.extension() == Some("wasm"))
                .map(|f| {
                    let path = f.as_std_path();
                    match path.strip_prefix(seen_at) {
                        Ok(rel) => target_dir.join(rel),
                        Err(_) => path.to_path_buf(),
                    }
                });
        }
    }
    if !output.success {
        let denials = if sandboxed {
            super::sandbox::explain_denials(&output.stderr)
        } else {
            Vec::new()
        };
        return Err(BuildError::Compile {
            package: package_name,
            stderr: without_sandbox_report(&output.stderr),
            denials,
        });
    }
    let artifact = artifact.ok_or_else(|| BuildError::NoArtifact {
        package: package_name.clone(),
    })?;
    let wasm = read_artifact(&artifact, target_dir)?;
    Ok(Built {
        wasm,
        artifact,
        package: package_name,
        diagnostics: only_diagnostics(&without_sandbox_report(&output.stderr)),
        wrapper_additions,
        notes,
        layer: None,
        compiled,
    })
}

/// Notes for every toolchain or cargo configuration file in the skill folder
/// or a folder above it: none of them is read, and the user should know.
fn ignored_configuration(source_root: &Path, toolchain: &Toolchain) -> Vec<String> {
    let mut notes = Vec::new();
    for dir in source_root.ancestors() {
        for name in IGNORED_CONFIGURATION {
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).is_ok() {
                let what = if name.starts_with("rust-toolchain") {
                    format!(
                        "boternity builds with the toolchain it pinned ({}), never one a skill or its folders name",
                        toolchain.rustc_version
                    )
                } else {
                    "cargo runs in a private working folder with boternity's own settings".into()
                };
                notes.push(format!("ignored {}: {what}", path.display()));
            }
        }
    }
    notes
}

/// Checks what every copied `Cargo.toml` and `Cargo.lock` names as a
/// dependency source, before any cargo runs.
fn check_sources(copy: &Path, copied: &[String], options: &BuildOptions) -> Result<(), BuildError> {
    let mut manifests = Vec::new();
    let mut lock = None;
    for rel in copied {
        let path = copy.join(rel);
        if rel == "Cargo.toml" || rel.ends_with("/Cargo.toml") {
            let text = std::fs::read_to_string(&path).on(IoOp::Read, &path)?;
            check_paths_inside(copy, rel, &text)?;
            manifests.push((PathBuf::from(rel), text));
        } else if rel == "Cargo.lock" {
            lock = Some(std::fs::read_to_string(&path).on(IoOp::Read, &path)?);
        }
    }
    let mirror = !options.registries.cargo_config().is_empty();
    sources::check(
        &manifests,
        lock.as_deref().map(|l| (Path::new("Cargo.lock"), l)),
        mirror,
    )?;
    Ok(())
}

/// Refuses a path dependency, build script or workspace that a manifest
/// places outside the skill folder: from the manifest's text, so the error
/// names what was written rather than a path cargo failed to find.
fn check_paths_inside(copy: &Path, rel: &str, text: &str) -> Result<(), BuildError> {
    let Ok(value) = toml::from_str::<toml::Value>(text) else {
        return Ok(()); // cargo's own error says where
    };
    let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
    let package = value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_string();
    let outside = |written: &str| {
        let mut depth: i64 = dir.components().count() as i64;
        for part in Path::new(written).components() {
            match part {
                std::path::Component::ParentDir => depth -= 1,
                std::path::Component::Normal(_) => depth += 1,
                std::path::Component::RootDir | std::path::Component::Prefix(_) => return true,
                std::path::Component::CurDir => {}
            }
            if depth < 0 {
                return true;
            }
        }
        false
    };
    if let Some(ws) = value
        .get("package")
        .and_then(|p| p.get("workspace"))
        .and_then(|w| w.as_str())
        && outside(ws)
    {
        return Err(BuildError::WorkspaceOutside {
            root: copy.to_path_buf(),
            workspace: PathBuf::from(ws),
        });
    }
    let mut tables: Vec<&toml::Value> = Vec::new();
    if let Some(t) = value.as_table() {
        for (k, v) in t {
            if k.ends_with("dependencies") {
                tables.push(v);
            } else if k == "target" {
                for platform in v.as_table().into_iter().flat_map(|t| t.values()) {
                    for (pk, pv) in platform.as_table().into_iter().flatten() {
                        if pk.ends_with("dependencies") {
                            tables.push(pv);
                        }
                    }
                }
            } else if k == "patch" {
                tables.extend(v.as_table().into_iter().flat_map(|t| t.values()));
            } else if k == "workspace"
                && let Some(deps) = v.get("dependencies")
            {
                tables.push(deps);
            }
        }
    }
    for deps in tables {
        for (name, dep) in deps.as_table().into_iter().flatten() {
            if let Some(path) = dep.get("path").and_then(|p| p.as_str())
                && outside(path)
            {
                return Err(BuildError::PathDependencyOutside {
                    package: package.clone(),
                    dependency: name.clone(),
                    path: PathBuf::from(path),
                    root: PathBuf::from(rel),
                });
            }
        }
    }
    Ok(())
}

/// What decides whether a target directory's contents may be reused: the
/// toolchain, the package, and every file whose code can run at build time.
///
/// Build scripts and proc macros write into the target directory, and cargo
/// reuses what it finds there; so a directory is reused only by a build whose
/// build-time code is the same as the one that filled it, and started clean
/// otherwise. For a skill whose folder holds one crate without a build
/// script, no file of the folder runs at build time (its dependencies come
/// from crates.io, pinned by `Cargo.lock`): the key is its `Cargo.toml` and
/// `Cargo.lock`, so editing `src/` keeps rebuilds incremental. A build script
/// or any further crate in the folder puts every file in the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildKey(String);

/// Beside a target directory (`<dir>.build-key`, out of every build's
/// reach): the [`BuildKey`] that filled it.
fn key_stamp(target_dir: &Path) -> PathBuf {
    let mut name = target_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".build-key");
    target_dir.with_file_name(name)
}

impl BuildKey {
    fn of(
        toolchain: &Toolchain,
        package: &str,
        metadata: &Metadata,
        copy: &Path,
        copied: &[String],
        layer: Option<&str>,
    ) -> Result<BuildKey, BuildError> {
        let runs_own_code = metadata.packages.iter().any(|p| {
            p.targets.iter().any(|t| {
                t.kind.iter().any(|k| {
                    matches!(
                        k,
                        cargo_metadata::TargetKind::CustomBuild
                            | cargo_metadata::TargetKind::ProcMacro
                    )
                })
            })
        }) || copied
            .iter()
            .filter(|rel| rel.ends_with("Cargo.toml"))
            .count()
            > 1;
        let mut key = sha2::Sha256::new();
        use sha2::Digest;
        for part in [
            crate::TOOL_VERSION,
            &toolchain.rustc_version,
            SKILL_TARGET,
            package,
            // What lies below the folder: a layer's, or nothing.
            layer.unwrap_or("no layer"),
        ] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part.as_bytes());
        }
        let mut files: Vec<&String> = copied.iter().collect();
        if !copied.iter().any(|r| r == "Cargo.lock") {
            // The lock the fetch resolved.
            static LOCK: std::sync::LazyLock<String> =
                std::sync::LazyLock::new(|| "Cargo.lock".to_string());
            files.push(&LOCK);
        }
        // One order whether the lock shipped or the fetch resolved it.
        files.sort();
        for rel in files {
            if !runs_own_code && rel != "Cargo.toml" && rel != "Cargo.lock" {
                continue;
            }
            let path = copy.join(rel);
            let bytes = std::fs::read(&path).on(IoOp::Read, &path)?;
            key.update((rel.len() as u64).to_le_bytes());
            key.update(rel.as_bytes());
            key.update((bytes.len() as u64).to_le_bytes());
            key.update(&bytes);
        }
        Ok(BuildKey(hex::encode(key.finalize())))
    }

    /// Empties `target_dir` unless the key it was filled under is this one,
    /// then records this one; whether it was emptied.
    fn start_clean(&self, target_dir: &Path) -> Result<bool, BuildError> {
        let stamp = key_stamp(target_dir);
        let recorded = std::fs::read_to_string(&stamp).ok();
        if recorded.as_deref() == Some(self.0.as_str()) {
            return Ok(false);
        }
        let had_contents = std::fs::read_dir(target_dir).is_ok_and(|mut d| d.next().is_some());
        if target_dir.exists() {
            std::fs::remove_dir_all(target_dir).on(IoOp::Remove, target_dir)?;
        }
        std::fs::create_dir_all(target_dir).on(IoOp::Create, target_dir)?;
        crate::fsutil::write_atomically(&stamp, self.0.as_bytes())?;
        Ok(had_contents)
    }
}

/// Reads the built `.wasm`, which a build script could have swapped for a
/// symlink to a host file in its last moment: it must lie inside the target
/// directory, is opened without following a symlink, and is capped.
fn read_artifact(artifact: &Path, target_dir: &Path) -> Result<Vec<u8>, BuildError> {
    let target = target_dir
        .canonicalize()
        .unwrap_or_else(|_| target_dir.to_path_buf());
    let parent = artifact
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_default();
    if !parent.starts_with(&target) {
        return Err(BuildError::NoArtifact {
            package: format!(
                "{} (it lies outside the target directory)",
                artifact.display()
            ),
        });
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NOFOLLOW);
    let file = open.open(artifact).on(IoOp::Read, artifact)?;
    let max = crate::skill::validate::MAX_WASM_BYTES;
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut wasm)
        .on(IoOp::Read, artifact)?;
    if wasm.len() as u64 > max {
        return Err(BuildError::Sandbox {
            message: format!("{} is over the {max}-byte limit", artifact.display()),
        });
    }
    Ok(wasm)
}

/// Where boternity notes that a crate's dependencies, as its `Cargo.toml`
/// and `Cargo.lock` pin them, are in its cargo home: in the cache folder, out
/// of every build's reach. `None` without a lock file.
fn fetch_stamp(folders: &Folders, workspace: &Path) -> Option<PathBuf> {
    let lock = std::fs::read(workspace.join("Cargo.lock")).ok()?;
    let manifest = std::fs::read(workspace.join("Cargo.toml")).ok()?;
    let mut key = manifest;
    key.extend_from_slice(b"\0");
    key.extend_from_slice(&lock);
    let name = crate::digest::sha256_hex(&key);
    Some(folders.fetched_dir().join(name))
}

/// Notes a successful fetch (best effort: without the note the next build
/// just fetches again).
fn remember_fetch(folders: &Folders, workspace: &Path) {
    if let Some(stamp) = fetch_stamp(folders, workspace) {
        let _ = crate::fsutil::write_atomically(&stamp, b"");
    }
}

/// Whether an offline build failed for want of what a fetch brings.
fn needs_fetch(stderr: &str) -> bool {
    [
        "--offline",
        "failed to download",
        "no matching package",
        "needs to be updated",
        "failed to select a version",
        "failed to load source",
    ]
    .iter()
    .any(|hint| stderr.contains(hint))
}

/// The name of a skill's own target directory: its package name and a hash
/// of where its source lives, so two skills never share one, and rebuilds of
/// the same folder are incremental.
fn target_key(name: &str, source: &Path) -> String {
    let place = source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf());
    let hash = crate::digest::sha256_hex(place.as_os_str().as_encoded_bytes());
    format!("{name}-{}", &hash[..16])
}

/// Refuses a crate that reaches outside its folder through `Cargo.toml`: a
/// path dependency elsewhere, or membership of a workspace above it. Checked
/// from `cargo metadata --no-deps`, before any code of the skill runs.
fn check_self_contained(metadata: &Metadata, root: &Path) -> Result<(), BuildError> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let inside = |path: &Path| {
        path.canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .starts_with(&root)
    };
    let workspace = metadata.workspace_root.clone().into_std_path_buf();
    if !inside(&workspace) {
        return Err(BuildError::WorkspaceOutside { root, workspace });
    }
    for package in &metadata.packages {
        for dependency in &package.dependencies {
            if let Some(path) = &dependency.path
                && !inside(path.as_std_path())
            {
                return Err(BuildError::PathDependencyOutside {
                    package: package.name.to_string(),
                    dependency: dependency.name.clone(),
                    path: path.clone().into_std_path_buf(),
                    root,
                });
            }
        }
    }
    Ok(())
}

/// cargo's stderr without the sandbox helper's report line.
fn without_sandbox_report(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with(super::sandbox::REPORT_PREFIX) || l.contains("error:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One confined build: where it may read and write, and its phases.
struct ConfinedBuild<'a> {
    folders: &'a Folders,
    toolchain: &'a Toolchain,
    options: &'a BuildOptions,
    layout: super::sandbox::Layout,
    helper: PathBuf,
    // Holds the private HOME and TMPDIR until the build is over.
    _scratch: tempfile::TempDir,
    // Holds the source copy's place for this build alone.
    _place_lock: std::fs::File,
    // Keeps `boternity cache clean` off the cargo home while it is used.
    _cargo_home_in_use: crate::cache::InUse,
}

/// Top-level entries boternity's cargo home may hold: registry caches and
/// cargo's own bookkeeping. Anything else (`config.toml`, `credentials`,
/// `bin/` …) was not written by boternity and would be read as configuration
/// by the next build: it is removed before every use.
const CARGO_HOME_ENTRIES: [&str; 5] = [
    "registry",
    "git",
    ".package-cache",
    ".package-cache-mutate",
    ".global-cache",
];

/// Removes from boternity's cargo home what is not a registry cache or
/// cargo's own bookkeeping; what was removed, for a note.
pub fn clean_cargo_home(cargo_home: &Path) -> Result<Vec<PathBuf>, IoError> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(cargo_home) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(IoError::new(IoOp::List, cargo_home, e)),
    };
    for entry in entries {
        let entry = entry.on(IoOp::List, cargo_home)?;
        if CARGO_HOME_ENTRIES.iter().any(|e| entry.file_name() == *e) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            std::fs::remove_dir_all(&path).on(IoOp::Remove, &path)?;
        } else {
            std::fs::remove_file(&path).on(IoOp::Remove, &path)?;
        }
        tracing::warn!(path = %path.display(), "removed from boternity's cargo home: not a registry cache");
        removed.push(path);
    }
    Ok(removed)
}

impl<'a> ConfinedBuild<'a> {
    fn new(
        folders: &'a Folders,
        toolchain: &'a Toolchain,
        source_place: &Path,
        target_dir: &Path,
        options: &'a BuildOptions,
    ) -> Result<Self, BuildError> {
        let support = super::sandbox::probe();
        if !support.can_confine() {
            return Err(BuildError::Sandbox {
                message: format!(
                    "this kernel cannot confine a build ({}); build it unconfined only if you trust it",
                    support.why_missing.join("; ")
                ),
            });
        }
        // `/proc/self/exe` runs this very program even when its file was
        // replaced (an upgrade) since it started; its path would not.
        let helper = options
            .sandbox_helper
            .clone()
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let temp = std::env::temp_dir();
        let scratch = tempfile::Builder::new()
            .prefix("boternity-build-")
            .tempdir()
            .on(IoOp::Create, &temp)?;
        let rustup_home = toolchain.host.rustup_home().unwrap_or_default();
        let cargo_home = folders.cargo_home();
        let cargo_home_in_use = crate::cache::InUse::acquire_unsized(&cargo_home)?;
        clean_cargo_home(&cargo_home)?;
        let mut lock_name = source_place.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = source_place.with_file_name(lock_name);
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
        }
        let place_lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .on(IoOp::Create, &lock_path)?;
        place_lock.lock().on(IoOp::Lock, &lock_path)?;
        let layout = super::sandbox::Layout {
            // The private copy of the skill's source (see `copy_source`).
            skill_dir: source_place.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            cargo_home,
            rustup_home,
            toolchain: toolchain.sysroot.clone(),
            scratch: scratch.path().to_path_buf(),
        };
        Ok(ConfinedBuild {
            folders,
            toolchain,
            options,
            layout,
            helper,
            _scratch: scratch,
            _place_lock: place_lock,
            _cargo_home_in_use: cargo_home_in_use,
        })
    }

    /// Makes the copy hold exactly the skill's files (those
    /// [`files::list`] yields: what the source hash covers), each read
    /// without following links, with its executable bit: a file whose bytes
    /// are unchanged is left as it is (so cargo sees it unchanged), a changed
    /// one is written anew with its source's modification time, and anything
    /// else in the copy is removed. Returns the copied paths.
    fn copy_source(&self, source_root: &Path) -> Result<Vec<String>, BuildError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let listed = files::list(source_root)?;
        let contents = files::read_all(&listed)?;
        let copy = &self.layout.skill_dir;
        std::fs::create_dir_all(copy).on(IoOp::Create, copy)?;
        let wanted: std::collections::BTreeSet<&str> =
            contents.iter().map(|c| c.rel.as_str()).collect();
        remove_unlisted(copy, copy, &wanted)?;
        let mut copied = Vec::with_capacity(listed.len());
        for (file, content) in listed.iter().zip(contents) {
            let dest = copy.join(&content.rel);
            let mode = if content.executable { 0o755 } else { 0o644 };
            let same = std::fs::symlink_metadata(&dest).is_ok_and(|m| {
                m.is_file()
                    && m.permissions().mode() & 0o777 == mode
                    && std::fs::read(&dest).is_ok_and(|b| b == content.bytes)
            });
            if !same {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
                }
                match std::fs::remove_file(&dest) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(IoError::new(IoOp::Remove, &dest, e).into());
                    }
                    _ => {}
                }
                let mut out = std::fs::OpenOptions::new();
                out.write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW);
                let mut handle = out.open(&dest).on(IoOp::Create, &dest)?;
                std::io::Write::write_all(&mut handle, &content.bytes).on(IoOp::Write, &dest)?;
                if let Ok(modified) = std::fs::metadata(&file.path).and_then(|m| m.modified()) {
                    let _ = handle.set_modified(modified);
                }
            }
            copied.push(content.rel);
        }
        Ok(copied)
    }

    fn sandbox_error(&self, e: std::io::Error) -> BuildError {
        BuildError::Sandbox {
            message: format!(
                "cannot prepare its folders in {}: {e}",
                self.layout.scratch.display()
            ),
        }
    }

    /// `cargo metadata --no-deps --offline`, confined like the build.
    fn metadata(&self, manifest: &Path) -> Result<Metadata, BuildError> {
        self.metadata_with(manifest, true)
    }

    /// `cargo metadata --offline`, confined like the build: the crate alone
    /// (`no_deps`), or after the fetch its whole resolved graph (`--locked`).
    fn metadata_with(&self, manifest: &Path, no_deps: bool) -> Result<Metadata, BuildError> {
        let mut layout = self.layout.clone();
        if !no_deps {
            // Resolving the graph asks rustc about the target, and cargo
            // caches its answer in the target directory: a scratch one, so
            // the skill's stays as its last build left it.
            layout.target_dir = layout.scratch.join("metadata-target");
        }
        let policy = super::sandbox::build_policy(&layout).map_err(|e| self.sandbox_error(e))?;
        let mut args: Vec<OsString> = vec![
            "metadata".into(),
            "--format-version".into(),
            "1".into(),
            "--offline".into(),
            "--manifest-path".into(),
            manifest.into(),
        ];
        args.push(if no_deps { "--no-deps" } else { "--locked" }.into());
        let err = |message: String| BuildError::Metadata {
            manifest: manifest.to_path_buf(),
            message,
        };
        let output = self.spawn(&args, &policy, "metadata", &self.layout.target_dir)?;
        if !output.success {
            return Err(err(without_sandbox_report(&output.stderr)
                .trim()
                .to_string()));
        }
        let stdout = String::from_utf8(output.stdout).map_err(|e| err(e.to_string()))?;
        MetadataCommand::parse(stdout).map_err(|e| err(e.to_string()))
    }

    /// Resolving and downloading dependencies into boternity's cargo home,
    /// through the fetch proxy; writes `Cargo.lock` in the copy when none
    /// ships. No code of the skill runs (`cargo fetch` runs no build script
    /// or macro).
    fn fetch(&self, manifest: &Path, locked: bool, package: &str) -> Result<(), BuildError> {
        let proxy = FetchProxy::start(self.options.registries.clone())
            .map_err(|e| self.sandbox_error(e))?;
        let policy = super::sandbox::fetch_policy(&self.layout, proxy.port())
            .map_err(|e| self.sandbox_error(e))?;
        let mut args: Vec<OsString> = Vec::new();
        for config in self.options.registries.cargo_config() {
            args.extend(["--config".into(), config.into()]);
        }
        args.extend([
            "fetch".into(),
            "--manifest-path".into(),
            manifest.into(),
            "--target".into(),
            SKILL_TARGET.into(),
        ]);
        if locked {
            args.push("--locked".into());
        }
        let output = self.spawn(&args, &policy, package, &self.layout.target_dir)?;
        if !output.success {
            let mut stderr = without_sandbox_report(&output.stderr);
            for refused in proxy.refused() {
                stderr.push_str("\nthe fetch proxy refused: ");
                stderr.push_str(&refused);
            }
            return Err(BuildError::Fetch {
                package: package.to_string(),
                stderr,
            });
        }
        Ok(())
    }

    /// The build itself, offline, with the copy read-only and only the
    /// target directory writable; with a `view`, the target directory is
    /// seen at its fixed path, over the layer.
    fn run(
        &self,
        args: &[OsString],
        package: &str,
        view: Option<&TargetView>,
    ) -> Result<CargoOutput, BuildError> {
        let mut layout = self.layout.clone();
        if let Some(view) = view {
            layout.target_dir = view.at.clone();
        }
        let mut policy =
            super::sandbox::build_policy(&layout).map_err(|e| self.sandbox_error(e))?;
        policy.env.push((
            "CARGO_ENCODED_RUSTFLAGS".into(),
            reproducible_rustflags(Some(&layout.cargo_home), &layout.target_dir),
        ));
        // One file over the whole build's disk limit is over it by itself:
        // the kernel stops it at that byte, where the watchdog, which looks
        // now and then, could find it later and larger.
        policy.limits.max_file_bytes = policy
            .limits
            .max_file_bytes
            .min(self.options.max_target_bytes.saturating_add(1));
        policy.target_view = view.cloned();
        policy.read_only_mounts = vec![layout.cargo_home.clone(), self.folders.layers_dir()];
        self.spawn(args, &policy, package, &self.layout.target_dir)
    }

    /// The dependency layer of the skill whose copy's manifest is `manifest`
    /// (after its fetch): found, or built and frozen, and held. `None` where
    /// it has none (no registry dependencies, no lock).
    fn layer(&self, manifest: &Path) -> Result<Option<LayerLease>, BuildError> {
        // The helper mounts a view only where it enters all its namespaces.
        if !super::sandbox::probe().namespaces() {
            return Err(LayerError::Unavailable(
                "it needs the build sandbox's user, mount, network and PID namespaces, which this kernel refuses".into(),
            )
            .into());
        }
        let at = self.folders.layered_target_mount();
        let cargo_home = &self.layout.cargo_home;
        let rustflags = reproducible_rustflags(Some(cargo_home), &at);
        let probe_view = TargetView {
            at: at.clone(),
            upper: self.layout.target_dir.clone(),
            layer: Some(LayerMount {
                lower: self.folders.layers_dir(),
                work: self.folders.overlay_work_dir(),
            }),
        };
        if !probe_view.paths_are_plain() || !cargo_home.is_absolute() {
            return Err(LayerError::Unavailable(format!(
                "the cache folder's path {} holds `,`, `:` or `\\`, which overlayfs cannot mount",
                self.folders.cache.display()
            ))
            .into());
        }
        let lock_path = self.layout.skill_dir.join("Cargo.lock");
        let Ok(lock) = std::fs::read_to_string(&lock_path) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(manifest).on(IoOp::Read, manifest)?;
        let salt = [
            crate::TOOL_VERSION,
            &self.toolchain.rustc_version,
            &self.toolchain.cargo_version,
            SKILL_TARGET,
            "release",
            &at.to_string_lossy(),
            &cargo_home.to_string_lossy(),
            &rustflags,
        ];
        // The plan is a function of the manifest, the lock and the salt: a
        // warm build finds the key it planned before (or that there is no
        // layer) without resolving the graph again.
        let layers = self.folders.layers_dir();
        let memo = layer::plan_memo(&self.folders.layer_plans_dir(), &text, &lock, &salt);
        match std::fs::read_to_string(&memo).ok().as_deref() {
            Some(layer::NO_LAYER) => return Ok(None),
            Some(key) => {
                if let Some(lease) = layer::reuse(&layers, key.trim())? {
                    return Ok(Some(lease));
                }
            }
            None => {}
        }
        let metadata = self.metadata_with(manifest, false)?;
        let package = cdylib_package(&metadata, manifest)?;
        let plan = match layer::plan(&metadata, package, &text, &lock, &salt) {
            Ok(plan) => plan,
            Err(why) => {
                tracing::debug!(%why, "no dependency layer");
                // Best effort: without the memo the next build plans again.
                let _ = crate::fsutil::write_atomically(&memo, layer::NO_LAYER.as_bytes());
                return Ok(None);
            }
        };
        let lease = layer::acquire(&layers, &plan, |crate_dir, target| {
            self.build_layer(crate_dir, target, &at)
        })?;
        let _ = crate::fsutil::write_atomically(&memo, plan.key.as_bytes());
        Ok(Some(lease))
    }

    /// Builds the generated crate in `crate_dir` into `target`, confined like
    /// a skill's build and seen at `at`, as every build over it will see it.
    fn build_layer(&self, crate_dir: &Path, target: &Path, at: &Path) -> Result<(), BuildError> {
        let mut layout = self.layout.clone();
        layout.skill_dir = crate_dir.to_path_buf();
        layout.target_dir = at.to_path_buf();
        let mut policy =
            super::sandbox::build_policy(&layout).map_err(|e| self.sandbox_error(e))?;
        // cargo writes the generated crate's lock (pruned to what it
        // compiles, offline; checked afterwards against the skill's).
        policy.read_write.push(crate_dir.to_path_buf());
        policy.env.push((
            "CARGO_ENCODED_RUSTFLAGS".into(),
            reproducible_rustflags(Some(&layout.cargo_home), at),
        ));
        policy.target_view = Some(TargetView {
            at: at.to_path_buf(),
            upper: target.to_path_buf(),
            layer: None,
        });
        policy.read_only_mounts = vec![layout.cargo_home.clone()];
        let mut args = build_args(
            &crate_dir.join("Cargo.toml"),
            layer::LAYER_PACKAGE,
            at,
            self.options.jobs,
        );
        args.push("--offline".into());
        let what = "the dependency layer";
        let output = self.spawn(&args, &policy, what, target)?;
        if !output.success {
            return Err(BuildError::Compile {
                package: what.into(),
                stderr: without_sandbox_report(&output.stderr),
                denials: super::sandbox::explain_denials(&output.stderr),
            });
        }
        Ok(())
    }

    /// Runs cargo confined by `policy`; `disk`: the folder (here, outside any
    /// mount namespace) the build writes into, which the watchdog measures.
    fn spawn(
        &self,
        args: &[OsString],
        policy: &super::sandbox::Policy,
        package: &str,
        disk: &Path,
    ) -> Result<CargoOutput, BuildError> {
        let mut policy = policy.clone();
        policy.env.extend(self.toolchain.pinned_env());
        // cargo discovers configuration from its working directory: the
        // private HOME, so neither the skill's nor the caller's
        // `.cargo/config.toml` applies.
        let cwd = self.layout.scratch.join("home");
        let mut cmd =
            super::sandbox::command(&self.helper, &self.toolchain.cargo, args, &cwd, &policy);
        if let Some(client) = &self.options.jobserver {
            client.configure(&mut cmd);
        }
        // The private TMPDIR is writable too.
        let tmp = self.layout.scratch.join("tmp");
        let disk = DiskWatch {
            dirs: vec![disk, &tmp],
            max: self.options.max_target_bytes,
            own: self.folders.is_own_target_dir(disk),
        };
        let output = run_cargo(cmd, self.options.timeout, Some(&disk), package)?;
        if super::sandbox::parse_report(&output.stderr).is_none() {
            let reason = output
                .stderr
                .lines()
                .find_map(|l| l.strip_prefix(super::sandbox::REPORT_PREFIX))
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "the helper {} did not confine the build (it must call \
                         `boternity_skills::build::sandbox::helper_main` first in `main`)",
                        self.helper.display()
                    )
                });
            return Err(BuildError::Sandbox { message: reason });
        }
        Ok(output)
    }
}

/// Removes everything below `dir` that is neither one of the `wanted` files
/// (paths relative to `root`) nor a folder holding one.
fn remove_unlisted(
    root: &Path,
    dir: &Path,
    wanted: &std::collections::BTreeSet<&str>,
) -> Result<(), IoError> {
    for entry in std::fs::read_dir(dir).on(IoOp::List, dir)? {
        let entry = entry.on(IoOp::List, dir)?;
        let path = entry.path();
        let rel = files::rel_path(root, &path);
        let is_dir = entry.file_type().on(IoOp::Inspect, &path)?.is_dir();
        if is_dir {
            let prefix = format!("{rel}/");
            if wanted.iter().any(|w| w.starts_with(&prefix)) {
                remove_unlisted(root, &path, wanted)?;
            } else {
                std::fs::remove_dir_all(&path).on(IoOp::Remove, &path)?;
            }
        } else if !wanted.contains(rel.as_str()) {
            std::fs::remove_file(&path).on(IoOp::Remove, &path)?;
        }
    }
    Ok(())
}

/// `cargo metadata --no-deps` of an unconfined build (a confined one runs it
/// in the sandbox, see [`ConfinedBuild::metadata`]).
fn crate_metadata(toolchain: &Toolchain, manifest_path: &Path) -> Result<Metadata, BuildError> {
    let mut cmd = MetadataCommand::new();
    cmd.cargo_path(&toolchain.cargo)
        .manifest_path(manifest_path)
        .no_deps();
    let mut command = cmd.cargo_command();
    scrub(&mut command, toolchain);
    let err = |message: String| BuildError::Metadata {
        manifest: manifest_path.to_path_buf(),
        message,
    };
    let limits = RunLimits {
        deadline: Duration::from_secs(120),
        ..RunLimits::default()
    };
    let out =
        crate::process::run(command, None, &limits).map_err(|e| err(crate::error_chain(&e)))?;
    if !out.status.success() {
        return Err(err(out.stderr_text().trim().to_string()));
    }
    let stdout = String::from_utf8(out.stdout).map_err(|e| err(e.to_string()))?;
    MetadataCommand::parse(stdout).map_err(|e| err(e.to_string()))
}

/// A `cargo` command with only the kept environment.
fn scrubbed_cargo(toolchain: &Toolchain) -> Command {
    let mut cmd = Command::new(&toolchain.cargo);
    scrub(&mut cmd, toolchain);
    cmd
}

fn scrub(cmd: &mut Command, toolchain: &Toolchain) {
    let kept: BTreeMap<OsString, OsString> = toolchain
        .host
        .iter()
        .map(|(k, v)| (k.to_os_string(), v.to_os_string()))
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            KEPT_ENV.contains(&k.as_ref()) || KEPT_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .collect();
    cmd.env_clear()
        .envs(kept)
        .envs(toolchain.pinned_env())
        .current_dir(NEUTRAL_DIR);
}

/// Paths that would otherwise end up in the binary (panic locations of
/// dependencies) are mapped to fixed names, so the same source gives the same
/// bytes wherever it is built. The crate's own paths are already relative.
fn reproducible_rustflags(cargo_home: Option<&Path>, target_dir: &Path) -> String {
    let mut flags = Vec::new();
    if let Some(cargo_home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            cargo_home.display()
        ));
    }
    flags.push(format!(
        "--remap-path-prefix={}=/target",
        target_dir.display()
    ));
    flags.join("\u{1f}")
}

/// cargo's stderr without its progress lines (`Compiling …`, `Finished …`).
fn only_diagnostics(stderr: &str) -> String {
    let progress = [
        "Compiling",
        "Finished",
        "Updating",
        "Downloading",
        "Downloaded",
        "Locking",
        "Adding",
        "Blocking",
        "Fresh",
    ];
    stderr
        .lines()
        .filter(|l| !progress.iter().any(|p| l.trim_start().starts_with(p)))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

struct CargoOutput {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// Most bytes one confined build may write into its target directory and
/// private temporary folder: the sandbox caps each file, this caps them
/// all, so a build script cannot fill the disk.
pub const MAX_TARGET_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// How often the watchdog measures what a confined build wrote.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The folders a confined build may write and the most it may write into
/// them together.
struct DiskWatch<'a> {
    /// Its target directory first.
    dirs: Vec<&'a Path>,
    max: u64,
    /// Whether the target directory is boternity's own (removed when the
    /// build goes over; a caller's never is).
    own: bool,
}

/// The files below a build's folders when it began, with their change times
/// (by device and inode): what the folders held before the build.
type Baseline = std::collections::HashMap<(u64, u64), (i64, i64)>;

/// Why the disk watchdog could not count what a folder below holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unmeasurable {
    /// Over `PATH_MAX`: a build can nest folders that deep with relative
    /// `mkdir`s, and a walk by path cannot read below it.
    #[error("nested too deep to measure, past the system's path length limit")]
    TooDeep,
    /// Its permissions deny the listing or the look at an entry (a build can
    /// `chmod` its own folders; root reads them anyway).
    #[error("unreadable: its permissions were taken away")]
    Unreadable,
}

impl Unmeasurable {
    /// What an error met while walking means for the count: none for an
    /// entry gone in the meantime (the build removed it), else what hides it.
    fn of(e: &std::io::Error) -> Option<Unmeasurable> {
        match e.kind() {
            std::io::ErrorKind::NotFound => None,
            _ if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Some(Unmeasurable::TooDeep),
            _ => Some(Unmeasurable::Unreadable),
        }
    }
}

/// Calls `f` with every regular file below `dir` (not following symlinks);
/// stops at the first folder or entry it cannot read, so that what the
/// build hid there is never taken for nothing.
fn for_each_file(dir: &Path, f: &mut dyn FnMut(&std::fs::Metadata)) -> Result<(), Unmeasurable> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Unmeasurable::of(&e).map_or(Ok(()), Err),
    };
    for entry in entries {
        let meta = match entry.and_then(|entry| Ok((entry.metadata()?, entry.path()))) {
            Ok(found) => found,
            Err(e) => match Unmeasurable::of(&e) {
                None => continue,
                Some(why) => return Err(why),
            },
        };
        match meta {
            (meta, path) if meta.is_dir() => for_each_file(&path, f)?,
            (meta, _) if meta.is_file() => f(&meta),
            _ => {}
        }
    }
    Ok(())
}

/// What a build wrote into its folders, as [`DiskWatch::written`] counts it.
struct Written<'a> {
    bytes: u64,
    /// The folder it wrote most into (or could not measure).
    dir: &'a Path,
    /// Why some folder below could not be read, which stops the build like
    /// one over the limit.
    unmeasurable: Option<Unmeasurable>,
}

impl DiskWatch<'_> {
    /// What the folders hold now (taken as the build begins).
    fn baseline(&self) -> Baseline {
        use std::os::unix::fs::MetadataExt;
        let mut before = Baseline::new();
        for dir in &self.dirs {
            // Folders too deep to read are found again by `written`.
            let _ = for_each_file(dir, &mut |meta| {
                before.insert((meta.dev(), meta.ino()), (meta.ctime(), meta.ctime_nsec()));
            });
        }
        before
    }

    /// What the build wrote, in all, and the folder it wrote most into: the
    /// bytes of every file not in `before` or changed since (each inode once),
    /// each at the larger of its length and its allocated blocks (a sparse
    /// file and space reserved past the end both count). Change time, not
    /// modification time: the build can set a file's modification time back,
    /// never its change time. What the folders held before is not counted, so
    /// a caller's target directory full of earlier builds' artifacts (or a
    /// file written there a moment before) is not this build's doing.
    fn written(&self, before: &Baseline) -> Written<'_> {
        use std::os::unix::fs::MetadataExt;
        let mut seen = std::collections::HashSet::new();
        let mut total = 0u64;
        let mut most = (0u64, self.dirs[0]);
        for dir in &self.dirs {
            let mut bytes = 0u64;
            let walked = for_each_file(dir, &mut |meta| {
                let id = (meta.dev(), meta.ino());
                let unchanged = before.get(&id) == Some(&(meta.ctime(), meta.ctime_nsec()));
                if !unchanged && seen.insert(id) {
                    bytes = bytes.saturating_add(meta.len().max(meta.blocks() * 512));
                }
            });
            total = total.saturating_add(bytes);
            if let Err(why) = walked {
                return Written {
                    bytes: total,
                    dir,
                    unmeasurable: Some(why),
                };
            }
            if bytes > most.0 {
                most = (bytes, dir);
            }
        }
        Written {
            bytes: total,
            dir: most.1,
            unmeasurable: None,
        }
    }
}

/// Runs cargo through [`crate::process`]: its own process group (killed
/// whole at the end, at the deadline or over the disk limit), bounded
/// output. With `disk`, also stops it once *this build* has written more
/// than the limit into its folders (files created or changed since it
/// began; what they held before is not counted), and checks once more when
/// it ends (a build may write fast between two looks); boternity's own
/// target directory is then removed (it holds nothing worth keeping), a
/// caller's never.
fn run_cargo(
    cmd: Command,
    timeout: Duration,
    disk: Option<&DiskWatch<'_>>,
    package: &str,
) -> Result<CargoOutput, BuildError> {
    let program = PathBuf::from(cmd.get_program());
    let limits = RunLimits {
        deadline: timeout,
        max_stdout: 256 * 1024 * 1024,
        max_stderr: 16 * 1024 * 1024,
        drain: Duration::from_secs(2),
    };
    let before = disk.map(DiskWatch::baseline).unwrap_or_default();
    let over_limit = || {
        let disk = disk?;
        let Written {
            bytes,
            dir,
            unmeasurable,
        } = disk.written(&before);
        (unmeasurable.is_some() || bytes > disk.max).then(|| {
            // remove_tree gives back the permissions a build took away, so
            // the folder goes even then; said only when it did.
            let own_removed = disk.own && crate::fsutil::remove_tree(disk.dirs[0]).is_ok();
            let package = package.to_string();
            let dir_path = dir.to_path_buf();
            // The private TMPDIR goes with the build's scratch folder.
            let removed = own_removed || dir != disk.dirs[0];
            match unmeasurable {
                Some(why) => BuildError::Unmeasurable {
                    package,
                    dir: dir_path,
                    why,
                    removed,
                },
                None => BuildError::DiskLimit {
                    package,
                    dir: dir_path,
                    written: bytes,
                    limit: disk.max,
                    removed,
                },
            }
        })
    };
    let mut watch = || {
        let disk = disk?;
        let Written {
            bytes,
            dir,
            unmeasurable,
        } = disk.written(&before);
        match unmeasurable {
            Some(why) => Some(format!(
                "it made folders it cannot count in {} ({why})",
                dir.display()
            )),
            None => {
                (bytes > disk.max).then(|| format!("it wrote {bytes} bytes into {}", dir.display()))
            }
        }
    };
    let every = if disk.is_some() {
        DISK_CHECK_EVERY
    } else {
        Duration::MAX
    };
    let result = crate::process::run_watched(cmd, None, &limits, every, &mut watch);
    // Over the limit however it ended (stopped by the watchdog, or by the
    // file size limit, or done between two looks): that is what it says.
    if disk.is_some()
        && let Some(err) = over_limit()
    {
        return Err(err);
    }
    match result {
        Ok(done) => Ok(CargoOutput {
            success: done.status.success(),
            stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
            stdout: done.stdout,
        }),
        Err(RunError::TimedOut { stderr, .. }) => Err(BuildError::Timeout {
            package: package.to_string(),
            timeout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
        Err(RunError::Stopped { why, .. }) => Err(BuildError::Sandbox {
            // Over the limit when looked at, under it once stopped (the
            // build removed files as it was killed): said as it was seen.
            message: format!("the build of `{package}` was stopped by its disk watchdog: {why}"),
        }),
        Err(RunError::OutputTooLarge { max, .. }) => Err(BuildError::Sandbox {
            message: format!(
                "the build of `{package}` wrote over {max} bytes of output; it was stopped"
            ),
        }),
        Err(RunError::Spawn { source, .. }) | Err(RunError::Wait { source, .. }) => {
            Err(BuildError::Spawn { program, source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Unmeasurable;

    /// Only an entry gone in the meantime is nothing to count; a folder the
    /// watchdog cannot read, for whatever reason, hides what it holds.
    #[test]
    fn what_the_walk_cannot_read_is_never_taken_for_nothing() {
        let error = |errno| std::io::Error::from_raw_os_error(errno);
        assert_eq!(Unmeasurable::of(&error(libc::ENOENT)), None);
        assert_eq!(
            Unmeasurable::of(&error(libc::ENAMETOOLONG)),
            Some(Unmeasurable::TooDeep)
        );
        for errno in [libc::EACCES, libc::EPERM, libc::ELOOP, libc::EIO] {
            assert_eq!(
                Unmeasurable::of(&error(errno)),
                Some(Unmeasurable::Unreadable)
            );
        }
    }
}
