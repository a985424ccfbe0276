//! Helpers shared by the integration tests: fixture skills (real crates built
//! with cargo into one shared target directory), copies of them in temporary
//! folders, and the `boternity` binary.

pub mod schema;

pub use schema::{json_line, maybe_json_line};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use boternity_skills::build::BuildOptions;
use boternity_skills::pipeline::{self, PipelineOptions};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One cargo target directory for every skill the tests build confined with
/// the shared cache ([`cache_dir`]), so wit-bindgen compiles once per target,
/// not once per fixture.
///
/// Only builds that read crates from that cache's cargo home may use it:
/// cargo's fingerprints hold the path of each dependency's source, so a
/// build reading them from another cargo home (a private cache, the
/// developer's own) would rebuild every dependency here, and the next build
/// with the shared cache rebuild them back.
pub fn skill_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skill-target")
}

/// The target directory of builds that read crates from the developer's own
/// cargo home: plain `cargo build`s ([`core_module`]) and unconfined ones.
pub fn host_cargo_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("host-cargo-target")
}

/// The tests' shared cache folder (`BOTERNITY_CACHE_DIR` of [`boternity`] and
/// of [`context`]): its cargo home, dependency layers and target directories.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("boternity-cache")
}

/// The library's context for in-process tests: private folders under
/// `CARGO_TARGET_TMPDIR` (never the developer's own), the cache shared by
/// the tests so that builds stay warm, and this process's environment as
/// the host's (where cargo and git are found).
pub fn context() -> boternity_skills::Context {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    boternity_skills::Context::new(boternity_skills::Folders::new(
        root.join("boternity-data"),
        cache_dir(),
    ))
    .with_host(boternity_skills::HostEnv::from_vars(std::env::vars_os()))
}

/// The `boternity` binary serves as the build sandbox's helper (this test
/// binary cannot: its `main` is the test harness).
pub fn build_options() -> BuildOptions {
    BuildOptions {
        target_dir: Some(skill_target_dir()),
        sandbox_helper: Some(PathBuf::from(env!("CARGO_BIN_EXE_boternity"))),
        ..BuildOptions::default()
    }
}

pub fn pipeline_options() -> PipelineOptions {
    PipelineOptions {
        build: build_options(),
        ..PipelineOptions::default()
    }
}

/// The component built from fixture `name` (built once per test binary).
pub fn component(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = BUILT.get_or_init(Default::default);
    if let Some(bytes) = cache.lock().unwrap().get(name) {
        return bytes.clone();
    }
    let prepared = pipeline::prepare(&context(), &fixture(name), &pipeline_options())
        .unwrap_or_else(|e| panic!("fixture {name} does not build: {e}"));
    let bytes = prepared.binary.expect("a tool skill has a binary");
    cache
        .lock()
        .unwrap()
        .insert(name.to_string(), bytes.clone());
    bytes
}

/// A core module built from fixture `name` for `target`
/// (`wasm32-unknown-unknown` or `wasm32-wasip1`), straight with cargo.
pub fn core_module(name: &str, target: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            target,
            "--message-format",
            "json",
        ])
        .arg("--manifest-path")
        .arg(fixture(name).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(host_cargo_target_dir())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build {name} for {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crate_name = name.replace('-', "_");
    let path = host_cargo_target_dir()
        .join(target)
        .join("release")
        .join(format!("{crate_name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Copies fixture `name` into `parent/<as_name>` (without build output).
pub fn copy_fixture(name: &str, parent: &Path, as_name: &str) -> PathBuf {
    let dest = parent.join(as_name);
    copy_dir(&fixture(name), &dest);
    dest
}

/// Gives a copied skill crate its own package name, so builds sharing the test
/// target directory never mistake it for the original. Its lock file names the
/// package too, and is renamed with it so `--locked` builds still pass.
pub fn rename_package(skill: &Path, package: &str) {
    let manifest = skill.join("Cargo.toml");
    let toml = std::fs::read_to_string(&manifest).unwrap();
    let old = toml
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .expect("a package name")
        .to_string();
    let rename = |path: &Path| {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let renamed: Vec<String> = text
            .lines()
            .map(|l| match l.strip_prefix("name = ") {
                Some(name) if name == old => format!("name = \"{package}\""),
                _ => l.to_string(),
            })
            .collect();
        std::fs::write(path, renamed.join("\n") + "\n").unwrap();
    };
    rename(&manifest);
    rename(&skill.join("Cargo.lock"));
}

/// `boternity build-skill <skill>` in the shared test target directory.
pub fn build_skill(skill: &Path) -> Command {
    let mut cmd = boternity();
    cmd.arg("build-skill")
        .arg(skill)
        .arg("--target-dir")
        .arg(skill_target_dir());
    cmd
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        // Lock files are kept: a copy must resolve the same dependencies as
        // the fixture, whatever the registry publishes next month.
        if entry.file_name() == "target" {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The `boternity` binary, with the shared build cache and no store of the user's.
pub fn boternity() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boternity"));
    cmd.env("BOTERNITY_CACHE_DIR", cache_dir())
        .env(
            "BOTERNITY_DATA_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-store"),
        )
        .env_remove("RUST_LOG");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file below `dir` with its bytes: to prove a failure changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut files);
    }
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        if entry.file_type().unwrap().is_dir() {
            out.push((rel, Vec::new()));
            walk(root, &path, out);
        } else {
            out.push((rel, std::fs::read(&path).unwrap()));
        }
    }
}
