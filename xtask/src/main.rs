//! Developer chores for boternity-skills (the cargo-xtask pattern):
//!
//! - `cargo xtask demo`: the main job on the bundled example: scaffold a skill
//!   from `templates/`, build it into a component, validate it, run it.
//! - `cargo xtask test`: install the wasm targets the tests build for, then run
//!   the whole test suite (what CI runs).
//!
//! Each step prints the `boternity` command it runs, so the demo doubles as a
//! walkthrough of the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => {
            ensure_targets(&["wasm32-wasip2"])?;
            demo()
        }
        Some("test") => {
            ensure_targets(&TEST_TARGETS)?;
            test(&args[1..])
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  demo    scaffold, build, validate and run the example skill\n  test    install the wasm targets, then run every test"
            );
            bail!("unknown or missing task")
        }
    }
}

/// Skills build for wasm32-wasip2; tests also build core modules for the
/// other two to exercise componentization.
const TEST_TARGETS: [&str; 3] = ["wasm32-wasip2", "wasm32-wasip1", "wasm32-unknown-unknown"];

/// Installs missing rustup targets (nothing installs itself here).
fn ensure_targets(targets: &[&str]) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("run rustup (is Rust installed with rustup?)")?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("$ rustup target add {}", missing.join(" "));
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .status()
        .context("run rustup target add")?;
    if !status.success() {
        bail!("rustup target add {} failed", missing.join(" "));
    }
    Ok(())
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    let status = cargo()
        .current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(extra)
        .status()
        .context("run cargo test")?;
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the `boternity` binary (the test profile's, so tests and the demo
/// share one build) and returns its path.
fn build_boternity() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = cargo()
        .current_dir(&root)
        .args(["build", "--bin", "boternity"])
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --bin boternity failed");
    }
    Ok(root.join("target/debug/boternity"))
}

fn step(binary: &Path, args: &[&str]) -> anyhow::Result<()> {
    println!("\n$ boternity {}", args.join(" "));
    let status = Command::new(binary)
        .args(args)
        .status()
        .with_context(|| format!("run {}", binary.display()))?;
    if !status.success() {
        bail!("`boternity {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    let boternity = build_boternity()?;
    let demo_dir = workspace_root().join("target/demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir).context("clear target/demo")?;
    }
    std::fs::create_dir_all(&demo_dir)?;
    let dir = demo_dir.to_str().context("demo path is UTF-8")?;
    let skill = format!("{dir}/word-count");
    let wasm = format!("{skill}/skill.wasm");
    let store = format!("{dir}/store");

    step(&boternity, &["new-skill", "word-count", "--path", dir])?;
    step(&boternity, &["build-skill", &skill])?;
    step(&boternity, &["validate", &wasm])?;
    step(
        &boternity,
        &[
            "run",
            &wasm,
            "--input",
            "The quick brown fox\njumps over the lazy dog",
        ],
    )?;
    let _ = store;
    println!(
        "\nDemo finished: the example skill was built into a real component and ran in the sandbox."
    );
    Ok(())
}
