//! Building a skill's Rust source with cargo for `wasm32-wasip2`.
//!
//! The crate is found with `cargo metadata`, built with
//! `--message-format json-render-diagnostics`, and the cdylib is taken from
//! cargo's artifact messages, never from a guessed path. Source may be
//! untrusted (its build scripts and proc macros run here), so cargo gets a
//! scrubbed environment, `--locked` when a lock file ships, and a time limit.

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
    /// cargo's target directory; `None` uses the crate's own (`target/`), or for
    /// a bare `lib.rs` the shared one in [`crate::paths::shared_target_dir`].
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
    #[error("cannot run cargo ({})", cargo.display())]
    Spawn {
        cargo: PathBuf,
        source: std::io::Error,
    },
    #[error("cargo build failed for `{package}`:\n{stderr}")]
    Compile { package: String, stderr: String },
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
            // A wrapper lives for one build; its dependencies should not.
            let mut options = options.clone();
            if options.target_dir.is_none() {
                options.target_dir = Some(crate::paths::shared_target_dir());
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
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| metadata.target_directory.clone().into_std_path_buf());
    let lock_file = metadata
        .workspace_root
        .join("Cargo.lock")
        .into_std_path_buf();
    let lock_shipped = lock_file.is_file();

    let mut cmd = scrubbed_cargo(toolchain);
    cmd.arg("build")
        .arg("--release")
        .args(["--target", SKILL_TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(manifest_path)
        .args(["--package", &package.name])
        .arg("--lib")
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            reproducible_rustflags(&target_dir),
        )
        .env("CARGO_TERM_COLOR", "never");
    if lock_shipped && wrapper_additions.is_none() {
        cmd.arg("--locked");
    }
    if let Some(jobs) = options.jobs {
        cmd.args(["--jobs", &jobs.to_string()]);
    }
    if let Some(client) = &options.jobserver {
        client.configure(&mut cmd);
    }
    let package_name = package.name.to_string();
    let output = run_with_timeout(cmd, toolchain, options.timeout, &package_name);
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
        return Err(BuildError::Compile {
            package: package_name,
            stderr: output.stderr,
        });
    }
    let artifact = artifact.ok_or_else(|| BuildError::NoArtifact {
        package: package_name.clone(),
    })?;
    let wasm = std::fs::read(&artifact).on(IoOp::Read, &artifact)?;
    Ok(Built {
        wasm,
        artifact,
        package: package_name,
        diagnostics: only_diagnostics(&output.stderr),
        wrapper_additions,
    })
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
fn reproducible_rustflags(target_dir: &Path) -> String {
    let mut flags = Vec::new();
    if let Some(cargo_home) = crate::paths::user_cargo_home() {
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

/// Runs cargo in its own process group so a timeout stops rustc and build
/// scripts too, not just cargo.
fn run_with_timeout(
    mut cmd: Command,
    toolchain: &Toolchain,
    timeout: Duration,
    package: &str,
) -> Result<CargoOutput, BuildError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        cargo: toolchain.cargo.clone(),
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
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                kill_group(&mut child);
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                kill_group(&mut child);
                return Err(BuildError::Spawn {
                    cargo: toolchain.cargo.clone(),
                    source,
                });
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
