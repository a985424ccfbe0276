//! Finding a usable Rust toolchain: cargo (from `$CARGO` or `PATH`), rustc, and
//! the `wasm32-wasip2` standard library. Detected up front so that a missing
//! target is one clear error with its fix, not a wall of compiler output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target skills are compiled for.
pub const SKILL_TARGET: &str = "wasm32-wasip2";

/// A toolchain that can build skills.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Toolchain {
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    /// `rustc --version`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub rustc_version: String,
    /// `cargo --version`.
    pub cargo_version: String,
    /// `rustc --print sysroot`: the toolchain's folder, which confined builds
    /// may read (and whose `bin/cargo` they run, bypassing rustup's proxy).
    pub sysroot: PathBuf,
}

impl Toolchain {
    /// The cargo a confined build runs: the toolchain's own, so the rustup
    /// proxy (which reads rustup's settings) is not needed in the sandbox.
    pub fn sysroot_cargo(&self) -> PathBuf {
        let own = self.sysroot.join("bin").join(exe("cargo"));
        if own.is_file() {
            own
        } else {
            self.cargo.clone()
        }
    }

    /// The rustc a confined build runs.
    pub fn sysroot_rustc(&self) -> PathBuf {
        let own = self.sysroot.join("bin").join(exe("rustc"));
        if own.is_file() {
            own
        } else {
            self.rustc.clone()
        }
    }
}

/// Why no usable toolchain was found; each says what would fix it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ToolchainError {
    #[error("cargo was not found (looked at $CARGO and on PATH); install Rust with rustup")]
    NoCargo,
    #[error("`{}` does not run: {message}", program.display())]
    Broken { program: PathBuf, message: String },
    #[error(
        "the `{SKILL_TARGET}` target is not installed for {rustc_version}: run `rustup target add {SKILL_TARGET}`"
    )]
    MissingTarget { rustc_version: String },
}

impl Toolchain {
    /// Detects cargo and rustc and checks that the skill target is installed.
    pub fn detect() -> Result<Toolchain, ToolchainError> {
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| find_on_path("cargo"))
            .ok_or(ToolchainError::NoCargo)?;
        // Under rustup, `$CARGO` is the toolchain's own cargo; its rustc sits beside it.
        let rustc = std::env::var_os("RUSTC")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| {
                let sibling = cargo.with_file_name(exe("rustc"));
                sibling.is_file().then_some(sibling)
            })
            .or_else(|| find_on_path("rustc"))
            .ok_or_else(|| ToolchainError::Broken {
                program: PathBuf::from("rustc"),
                message: "not found beside cargo or on PATH".into(),
            })?;
        let cargo_version = version_of(&cargo)?;
        let rustc_version = version_of(&rustc)?;
        let sysroot = run(&rustc, &["--print", "sysroot"])?;
        let sysroot = PathBuf::from(sysroot.trim());
        let target_lib = sysroot.join("lib/rustlib").join(SKILL_TARGET).join("lib");
        if !target_lib.is_dir() {
            return Err(ToolchainError::MissingTarget { rustc_version });
        }
        Ok(Toolchain {
            cargo,
            rustc,
            rustc_version,
            cargo_version,
            sysroot,
        })
    }
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path: OsString = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(exe(name)))
        .find(|candidate| candidate.is_file())
}

fn version_of(program: &Path) -> Result<String, ToolchainError> {
    Ok(run(program, &["--version"])?.trim().to_string())
}

fn run(program: &Path, args: &[&str]) -> Result<String, ToolchainError> {
    let broken = |message: String| ToolchainError::Broken {
        program: program.to_path_buf(),
        message,
    };
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| broken(e.to_string()))?;
    if !out.status.success() {
        return Err(broken(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| broken(e.to_string()))
}
