//! Finding a usable Rust toolchain: cargo, rustc and the `wasm32-wasip2`
//! standard library. Detected up front so that a missing target is one clear
//! error with its fix, not a wall of compiler output.
//!
//! The toolchain is resolved **once, from boternity's own environment (the
//! caller's [`HostEnv`]), in a
//! neutral working folder** (`/`): rustup's proxies pick a toolchain from the
//! working folder's `rust-toolchain(.toml)` and its parents, so probing from
//! inside a cloned skills repository would let the repository choose the
//! program boternity runs (a `path =` toolchain is any executable). Every
//! later step runs the resolved sysroot's own `bin/cargo` and `bin/rustc` by
//! absolute path, with `RUSTUP_TOOLCHAIN` pinned to it: nothing a skill ships
//! selects the compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::context::HostEnv;

/// The target skills are compiled for.
pub const SKILL_TARGET: &str = "wasm32-wasip2";

/// Where toolchain probes run: a folder no skill can put a
/// `rust-toolchain.toml` or `.cargo/config.toml` in.
pub const NEUTRAL_DIR: &str = "/";

/// Files in a skill folder (or its parents) that would choose the compiler or
/// configure cargo if boternity let them: they are ignored, and a build says so.
pub const IGNORED_CONFIGURATION: [&str; 4] = [
    "rust-toolchain.toml",
    "rust-toolchain",
    ".cargo/config.toml",
    ".cargo/config",
];

/// A toolchain that can build skills, pinned by absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Toolchain {
    /// The sysroot's own `bin/cargo` (not a rustup proxy).
    pub cargo: PathBuf,
    /// The sysroot's own `bin/rustc`.
    pub rustc: PathBuf,
    /// `rustc --version`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub rustc_version: String,
    /// `cargo --version`.
    pub cargo_version: String,
    /// `rustc --print sysroot`: the toolchain's folder, which confined builds
    /// may read.
    pub sysroot: PathBuf,
    /// The toolchain's name as rustup knows it (the sysroot folder's name,
    /// e.g. `stable-x86_64-unknown-linux-gnu`): `RUSTUP_TOOLCHAIN` for every
    /// process a build starts, so a proxy reached through `PATH` cannot pick
    /// another one either.
    pub name: String,
    /// The host environment it was found in: what the programs a build
    /// starts may inherit (each through its allow-list), and where rustup's
    /// and the user's cargo homes are.
    #[serde(skip)]
    pub host: HostEnv,
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
    ///
    /// Only boternity's own environment decides (`$CARGO`, `$RUSTC`, `PATH`,
    /// `RUSTUP_TOOLCHAIN`, rustup's default), and every probe runs in
    /// [`NEUTRAL_DIR`].
    pub fn detect(host: &HostEnv) -> Result<Toolchain, ToolchainError> {
        let cargo = host
            .path("CARGO")
            .filter(|p| p.is_absolute() && p.is_file())
            .or_else(|| find_on_path(host, "cargo"))
            .ok_or(ToolchainError::NoCargo)?;
        // Under rustup, `$CARGO` is the toolchain's own cargo; its rustc sits beside it.
        let rustc = host
            .path("RUSTC")
            .filter(|p| p.is_absolute() && p.is_file())
            .or_else(|| {
                let sibling = cargo.with_file_name(exe("rustc"));
                sibling.is_file().then_some(sibling)
            })
            .or_else(|| find_on_path(host, "rustc"))
            .ok_or_else(|| ToolchainError::Broken {
                program: PathBuf::from("rustc"),
                message: "not found beside cargo or on PATH".into(),
            })?;
        let sysroot = run(&rustc, &["--print", "sysroot"])?;
        let sysroot = PathBuf::from(sysroot.trim());
        // From here on, the sysroot's own programs (a rustup proxy would
        // choose again at every call); where the sysroot has none (a
        // distribution's packages), the programs found are themselves real.
        let own = |name: &str, found: PathBuf| {
            let path = sysroot.join("bin").join(exe(name));
            if path.is_file() { path } else { found }
        };
        let cargo = own("cargo", cargo);
        let rustc = own("rustc", rustc);
        let cargo_version = version_of(&cargo)?;
        let rustc_version = version_of(&rustc)?;
        let target_lib = sysroot.join("lib/rustlib").join(SKILL_TARGET).join("lib");
        if !target_lib.is_dir() {
            return Err(ToolchainError::MissingTarget { rustc_version });
        }
        let name = sysroot
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Toolchain {
            cargo,
            rustc,
            rustc_version,
            cargo_version,
            sysroot,
            name,
            host: host.clone(),
        })
    }

    /// The environment every program a build starts gets for the toolchain:
    /// `RUSTC` by absolute path and `RUSTUP_TOOLCHAIN` pinned.
    pub fn pinned_env(&self) -> Vec<(String, String)> {
        vec![
            ("RUSTC".into(), self.rustc.to_string_lossy().into_owned()),
            ("RUSTUP_TOOLCHAIN".into(), self.name.clone()),
        ]
    }
}

/// A command for `program` that runs in [`NEUTRAL_DIR`].
pub fn neutral_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(NEUTRAL_DIR);
    cmd
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn find_on_path(host: &HostEnv, name: &str) -> Option<PathBuf> {
    let path = host.get("PATH")?;
    // A relative entry would resolve against the working folder.
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
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
    let out = neutral_command(program)
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
