//! Building a skill's Rust source with cargo for `wasm32-wasip2`.
//!
//! The crate is found with `cargo metadata`, built with
//! `--message-format json-render-diagnostics`, and the cdylib is taken from
//! cargo's artifact messages, never from a guessed path. Source may be
//! untrusted (its build scripts and proc macros run here), so by default every
//! build runs in the [build sandbox](super::sandbox), in two phases: `cargo
//! fetch` (the only step with network; no skill code runs) and `cargo build
//! --offline --locked` (no network, the source read-only, only its own target
//! directory writable). Path dependencies outside the skill folder are refused
//! before anything runs. Unconfined builds (an explicit choice) get a scrubbed
//! environment, `--locked` when a lock file ships, and the same time limit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_metadata::{CrateType, Message, Metadata, MetadataCommand};

use crate::build::toolchain::{SKILL_TARGET, Toolchain};
use crate::build::wrap::{self, WrapError};
use crate::fsutil::{IoError, IoOp, IoResultExt};
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
    "RUSTUP_TOOLCHAIN",
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
    /// ([`crate::paths::skill_target_dir`]); an unconfined one the crate's own
    /// `target/`, or for a bare `lib.rs` [`crate::paths::shared_target_dir`].
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

/// Builds `source` for the skill `name`.
pub fn build(
    toolchain: &Toolchain,
    name: &str,
    source: &RustSource,
    options: &BuildOptions,
) -> Result<Built, BuildError> {
    match source {
        RustSource::Crate { manifest_path } => build_crate(toolchain, manifest_path, options, None),
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
                    Confinement::Unconfined => crate::paths::shared_target_dir(),
                    Confinement::Sandboxed => {
                        crate::paths::skill_target_dir(&target_key(name, lib_rs))
                    }
                });
            }
            build_crate(toolchain, &manifest, &options, appended)
        }
    }
}

fn build_crate(
    toolchain: &Toolchain,
    manifest_path: &Path,
    options: &BuildOptions,
    wrapper_additions: Option<String>,
) -> Result<Built, BuildError> {
    let metadata = crate_metadata(toolchain, manifest_path)?;
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
    let source_root = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let sandboxed = options.confinement == Confinement::Sandboxed;
    if sandboxed {
        check_self_contained(&metadata, &source_root)?;
    }
    let target_dir = match (&options.target_dir, sandboxed) {
        (Some(dir), _) => dir.clone(),
        // The crate's own `target/` is inside its (read-only) source.
        (None, true) => crate::paths::skill_target_dir(&target_key(&package.name, &source_root)),
        (None, false) => metadata.target_directory.clone().into_std_path_buf(),
    };
    let lock_file = metadata
        .workspace_root
        .join("Cargo.lock")
        .into_std_path_buf();
    let lock_shipped = lock_file.is_file();

    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--release".into(),
        "--target".into(),
        SKILL_TARGET.into(),
        "--message-format".into(),
        "json-render-diagnostics".into(),
        "--manifest-path".into(),
        manifest_path.into(),
        "--package".into(),
        package.name.to_string().into(),
        "--lib".into(),
        "--target-dir".into(),
        target_dir.clone().into(),
    ];
    if let Some(jobs) = options.jobs {
        args.extend(["--jobs".into(), jobs.to_string().into()]);
    }
    let package_name = package.name.to_string();
    let output = if sandboxed {
        let sandbox = ConfinedBuild::new(toolchain, &source_root, &target_dir, options)?;
        let workspace = metadata.workspace_root.as_std_path();
        // A lock file fetched before needs no second fetch (the warm path);
        // should the cargo home have lost a crate since, the offline build
        // says so, and it is fetched and built again.
        let fetched_before = fetch_stamp(workspace).is_some_and(|stamp| stamp.is_file());
        if !fetched_before {
            sandbox.fetch(manifest_path, lock_shipped, &package_name)?;
            remember_fetch(workspace);
        }
        args.extend(["--offline".into(), "--locked".into()]);
        let output = sandbox.run(&args, &package_name);
        match output {
            Ok(out) if fetched_before && !out.success && needs_fetch(&out.stderr) => {
                sandbox.fetch(manifest_path, lock_shipped, &package_name)?;
                remember_fetch(workspace);
                sandbox.run(&args, &package_name)
            }
            other => other,
        }
    } else {
        let mut cmd = scrubbed_cargo(toolchain);
        cmd.args(&args)
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                reproducible_rustflags(crate::paths::user_cargo_home().as_deref(), &target_dir),
            )
            .env("CARGO_TERM_COLOR", "never");
        if lock_shipped && wrapper_additions.is_none() {
            cmd.arg("--locked");
        }
        if let Some(client) = &options.jobserver {
            client.configure(&mut cmd);
        }
        run_with_timeout(cmd, options.timeout, &package_name)
    };
    if options.leave_source_untouched && !lock_shipped {
        let _ = std::fs::remove_file(&lock_file);
    }
    let output = output?;

    let mut artifact = None;
    for message in Message::parse_stream(output.stdout.as_slice()).flatten() {
        if let Message::CompilerArtifact(a) = message
            && a.package_id == package.id
            && a.target.crate_types.contains(&CrateType::CDyLib)
        {
            artifact = a
                .filenames
                .iter()
                .find(|f| f.extension() == Some("wasm"))
                .map(|f| f.clone().into_std_path_buf());
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
    let wasm = read_artifact(&artifact, &target_dir)?;
    Ok(Built {
        wasm,
        artifact,
        package: package_name,
        diagnostics: only_diagnostics(&without_sandbox_report(&output.stderr)),
        wrapper_additions,
    })
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
fn fetch_stamp(workspace: &Path) -> Option<PathBuf> {
    let lock = std::fs::read(workspace.join("Cargo.lock")).ok()?;
    let manifest = std::fs::read(workspace.join("Cargo.toml")).ok()?;
    let mut key = manifest;
    key.extend_from_slice(b"\0");
    key.extend_from_slice(&lock);
    let name = crate::digest::sha256_hex(&key);
    Some(crate::paths::cache_dir().join("fetched").join(name))
}

/// Notes a successful fetch (best effort: without the note the next build
/// just fetches again).
fn remember_fetch(workspace: &Path) {
    if let Some(stamp) = fetch_stamp(workspace) {
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

/// One confined build: where it may read and write, and its two phases.
struct ConfinedBuild<'a> {
    toolchain: &'a Toolchain,
    options: &'a BuildOptions,
    layout: super::sandbox::Layout,
    helper: PathBuf,
    // Holds the private HOME and TMPDIR until the build is over.
    _scratch: tempfile::TempDir,
}

impl<'a> ConfinedBuild<'a> {
    fn new(
        toolchain: &'a Toolchain,
        source_root: &Path,
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
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
            .unwrap_or_default();
        let layout = super::sandbox::Layout {
            skill_dir: source_root.to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            cargo_home: crate::paths::cargo_home(),
            rustup_home,
            toolchain: toolchain.sysroot.clone(),
            scratch: scratch.path().to_path_buf(),
        };
        Ok(ConfinedBuild {
            toolchain,
            options,
            layout,
            helper,
            _scratch: scratch,
        })
    }

    fn sandbox_error(&self, e: std::io::Error) -> BuildError {
        BuildError::Sandbox {
            message: format!(
                "cannot prepare its folders in {}: {e}",
                self.layout.scratch.display()
            ),
        }
    }

    /// Phase 1: resolve and download dependencies into boternity's cargo
    /// home, with network; writes `Cargo.lock` when none ships. No code of
    /// the skill runs (`cargo fetch` runs no build script or macro).
    fn fetch(&self, manifest: &Path, locked: bool, package: &str) -> Result<(), BuildError> {
        let policy =
            super::sandbox::fetch_policy(&self.layout).map_err(|e| self.sandbox_error(e))?;
        let mut args: Vec<OsString> = vec![
            "fetch".into(),
            "--manifest-path".into(),
            manifest.into(),
            "--target".into(),
            SKILL_TARGET.into(),
        ];
        if locked {
            args.push("--locked".into());
        }
        let output = self.spawn(&args, &policy, package)?;
        if !output.success {
            return Err(BuildError::Fetch {
                package: package.to_string(),
                stderr: without_sandbox_report(&output.stderr),
            });
        }
        Ok(())
    }

    /// Phase 2: the build itself, offline, with the source read-only and only
    /// the target directory writable.
    fn run(&self, args: &[OsString], package: &str) -> Result<CargoOutput, BuildError> {
        let mut policy =
            super::sandbox::build_policy(&self.layout).map_err(|e| self.sandbox_error(e))?;
        policy.env.push((
            "CARGO_ENCODED_RUSTFLAGS".into(),
            reproducible_rustflags(Some(&self.layout.cargo_home), &self.layout.target_dir),
        ));
        policy.env.push((
            "RUSTC".into(),
            self.toolchain
                .sysroot_rustc()
                .to_string_lossy()
                .into_owned(),
        ));
        self.spawn(args, &policy, package)
    }

    fn spawn(
        &self,
        args: &[OsString],
        policy: &super::sandbox::Policy,
        package: &str,
    ) -> Result<CargoOutput, BuildError> {
        // cargo discovers configuration from its working directory: the
        // private HOME, so neither the skill's nor the caller's
        // `.cargo/config.toml` applies.
        let cwd = self.layout.scratch.join("home");
        let mut cmd = super::sandbox::command(
            &self.helper,
            &self.toolchain.sysroot_cargo(),
            args,
            &cwd,
            policy,
        );
        if let Some(client) = &self.options.jobserver {
            client.configure(&mut cmd);
        }
        let disk = Some((self.layout.target_dir.as_path(), MAX_TARGET_BYTES));
        let output = run_watched(cmd, self.options.timeout, disk, package)?;
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
    let out = command.output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
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
    let kept: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            KEPT_ENV.contains(&k.as_ref()) || KEPT_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .collect();
    cmd.env_clear()
        .envs(kept)
        .env("RUSTC", &toolchain.rustc)
        .stdin(Stdio::null());
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

/// Runs cargo with a time limit (see [`run_watched`]).
fn run_with_timeout(
    cmd: Command,
    timeout: Duration,
    package: &str,
) -> Result<CargoOutput, BuildError> {
    run_watched(cmd, timeout, None, package)
}

/// Most bytes a confined build may leave in its target directory: the
/// sandbox caps each file, this caps them all, so a build script cannot fill
/// the disk.
pub const MAX_TARGET_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// How often the target directory's size is measured during a confined build.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Bytes below `dir` (not following symlinks).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Runs cargo in its own process group so a timeout stops rustc and build
/// scripts too; with `disk`, also stops it once the folder holds more than
/// the given bytes (the folder is then removed: it holds nothing worth
/// keeping).
fn run_watched(
    mut cmd: Command,
    timeout: Duration,
    disk: Option<(&Path, u64)>,
    package: &str,
) -> Result<CargoOutput, BuildError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut buf);
        buf
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let started = Instant::now();
    let mut last_disk_check = started;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                kill_group(&mut child);
                break None;
            }
            Ok(None) => {
                if let Some((dir, max)) = disk
                    && last_disk_check.elapsed() >= DISK_CHECK_EVERY
                {
                    last_disk_check = Instant::now();
                    let used = dir_bytes(dir);
                    if used > max {
                        kill_group(&mut child);
                        let _ = stdout_reader.join();
                        let _ = stderr_reader.join();
                        let _ = std::fs::remove_dir_all(dir);
                        return Err(BuildError::Sandbox {
                            message: format!(
                                "the build of `{package}` wrote {used} bytes into {}, over the {max}-byte disk limit; it was stopped and the folder removed",
                                dir.display()
                            ),
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => {
                kill_group(&mut child);
                return Err(BuildError::Spawn { program, source });
            }
        }
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    match status {
        Some(status) => Ok(CargoOutput {
            success: status.success(),
            stdout,
            stderr,
        }),
        None => Err(BuildError::Timeout {
            package: package.to_string(),
            timeout,
            stderr,
        }),
    }
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // SAFETY: kill(2) on the process group we created; no memory involved.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
