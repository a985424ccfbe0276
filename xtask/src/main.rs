//! Developer chores for boternity-skills (the cargo-xtask pattern):
//!
//! - `cargo xtask demo`: the main job on the bundled example: scaffold a skill
//!   from `templates/`, build it into a component, validate it, run it.
//! - `cargo xtask test`: install the wasm targets the tests build for (and Debian's minisign,
//!   docker-registry, skopeo and htpasswd), then run
//!   the whole test suite, then `examples/embed.rs` (what CI runs).
//! - `cargo xtask bench`: the executor's figures (`boternity bench`, release
//!   build) on the example skill, step by step, then whole processes side by
//!   side with the wasmtime CLI when it is installed (`--version`, running an
//!   installed skill against `wasmtime run` of the same precompiled
//!   component, and a second run of a `.wasm` against wasmtime's cache).
//! - `cargo xtask bench-precompile`: a generated registry of 12 skills over
//!   3 dependency sets, precompiled by default (over dependency layers)
//!   against the same without layers (a target directory per skill) and 12
//!   isolated `build-skill` runs, from cold caches, side by side in one run;
//!   then a new skill over an existing layer.
//! - `cargo xtask bench-build`: what the build sandbox costs, a cold and a
//!   warm `build-skill` of the example skill, confined against unconfined.
//! - `cargo xtask fuzz [SECONDS]`: both cargo-fuzz targets for a while each.
//! - `cargo xtask man`: the generated references in `docs/`: the man pages
//!   (`docs/man/`), the CLI reference page (`docs/src/reference/cli.md`) and
//!   the JSON Schema of every `--message-format json` message
//!   (`docs/schema/`). The binary writes them itself (its hidden
//!   `__generate-references DIR`, src/cli/references.rs), from its own clap
//!   definitions and message types; tests/it/tidy.rs fails while they are stale.
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
            ensure_test_tools()?;
            test(&args[1..])
        }
        Some("bench") => {
            ensure_targets(&["wasm32-wasip2"])?;
            bench()
        }
        Some("bench-precompile") => {
            ensure_targets(&["wasm32-wasip2"])?;
            bench_precompile()
        }
        Some("bench-build") => {
            ensure_targets(&["wasm32-wasip2"])?;
            bench_build()
        }
        Some("man") => man(),
        Some("fuzz") => fuzz(
            args.get(1)
                .map_or(Ok(60), |s| s.parse())
                .context("SECONDS is a number")?,
        ),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>

tasks:
  demo    scaffold, build, validate and run the example skill
  test    install the wasm targets, then run every test and the embed example
  bench   executor figures (release build)
  bench-precompile   layered precompile vs per-skill target dirs and isolated builds
  bench-build        build sandbox cost, cold and warm
  fuzz [SECONDS]     run the cargo-fuzz targets
  man     regenerate docs/: man pages, CLI reference, JSON Schema"
            );
            bail!("unknown or missing task")
        }
    }
}

/// Skills build for wasm32-wasip2; tests also build core modules for the
/// other two to exercise componentization.
const TEST_TARGETS: [&str; 3] = ["wasm32-wasip2", "wasm32-wasip1", "wasm32-unknown-unknown"];

/// The Debian packages the tests use, each with a program that shows it is
/// installed: `minisign` (a test checks that it verifies the registry
/// signatures boternity writes), `docker-registry` (tests/it/oci.rs pushes to
/// and installs from a real OCI registry), `skopeo` (a second client reads
/// what boternity pushed) and `htpasswd` from apache2-utils (the registry's
/// basic auth file).
const TEST_PACKAGES: [(&str, &str); 4] = [
    ("minisign", "minisign"),
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("apache2-utils", "htpasswd"),
];

/// Installs the missing [`TEST_PACKAGES`] with apt-get.
fn ensure_test_tools() -> anyhow::Result<()> {
    let on_path = |program: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .filter(|(_, program)| !on_path(program))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "$ apt-get update && apt-get install -y {}",
        missing.join(" ")
    );
    let installed = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .and_then(|_| {
            Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&missing)
                .status()
        })
        .with_context(|| {
            format!(
                "run apt-get (install {} by hand where there is none)",
                missing.join(" ")
            )
        })?;
    if !installed.success() {
        bail!(
            "apt-get install {} failed; install them by hand",
            missing.join(" ")
        );
    }
    Ok(())
}

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

/// Runs the suite, echoing cargo's output, and closes with one line that
/// totals every test binary's results.
fn test(extra: &[String]) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut child = cargo()
        .current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("run cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    let status = child.wait()?;
    println!("\ntests: {passed} passed, {failed} failed");
    if !status.success() {
        bail!("tests failed");
    }
    // The embedding example is a test too: a server's load, eviction and
    // upgrade path, checked by the example itself (it fails on a wrong answer).
    println!("\n$ cargo run --example embed");
    let status = cargo()
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--example", "embed"])
        .status()
        .context("run cargo run --example embed")?;
    if !status.success() {
        bail!("examples/embed.rs failed");
    }
    Ok(())
}

/// In `ok. 11 passed; 0 failed; …`, the number before `word`.
fn count_before(text: &str, word: &str) -> u64 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
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

/// Builds the `boternity` binary and returns its path: the test profile's for
/// the demo (so tests and demo share one build), release for benches.
fn build_boternity(release: bool) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let mut cmd = cargo();
    cmd.current_dir(&root).args(["build", "--bin", "boternity"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --bin boternity failed");
    }
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("boternity"))
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` when set (relative
/// to the workspace, where cargo runs), else `target/`.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

fn step(binary: &Path, args: &[&str]) -> anyhow::Result<()> {
    step_env(binary, args, &[])
}

fn step_env(binary: &Path, args: &[&str], env: &[(&str, &Path)]) -> anyhow::Result<()> {
    println!("\n$ boternity {}", args.join(" "));
    let status = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("run {}", binary.display()))?;
    if !status.success() {
        bail!("`boternity {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    let boternity = build_boternity(false)?;
    let demo_dir = workspace_root().join("target/demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir).context("clear target/demo")?;
    }
    std::fs::create_dir_all(&demo_dir)?;
    let dir = demo_dir.to_str().context("demo path is UTF-8")?;
    let skill = format!("{dir}/word-count");
    let wasm = format!("{skill}/skill.wasm");
    let store = format!("{dir}/store");
    // The cache the integration tests use (`CARGO_TARGET_TMPDIR`, i.e.
    // `target/tmp`): the dependency layer the demo's build makes is the one
    // the tests' build of the same template reuses, so `cargo xtask test`
    // after the demo does not compile wit-bindgen's closure again. Under
    // `target/`, the demo leaves nothing in the developer's own cache.
    let cache = target_dir().join("tmp/boternity-cache");
    println!("\n$ export BOTERNITY_CACHE_DIR={}", cache.display());
    let env: &[(&str, &Path)] = &[("BOTERNITY_CACHE_DIR", &cache)];
    let step = |args: &[&str]| step_env(&boternity, args, env);

    step(&["new-skill", "word-count", "--path", dir])?;
    step(&["build-skill", &skill])?;
    step(&["validate", &wasm])?;
    step(&[
        "run",
        &wasm,
        "--input",
        "The quick brown fox\njumps over the lazy dog",
    ])?;
    step(&["install", &skill, "--store", &store])?;
    step(&["list", "--store", &store])?;
    step(&[
        "run",
        "word-count",
        "--store",
        &store,
        "--input",
        "installed and running",
    ])?;
    println!(
        "\nDemo finished: the example skill was built into a real component, installed, and ran in the sandbox."
    );
    Ok(())
}

/// Regenerates the references in `docs/` with the binary's own generator.
fn man() -> anyhow::Result<()> {
    let boternity = build_boternity(false)?;
    let docs = workspace_root().join("docs");
    let docs = docs.to_str().context("UTF-8 path")?;
    step(&boternity, &["__generate-references", docs])
}

/// A fresh folder under target/ for a chore.
fn scratch(name: &str) -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("target").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run_quiet(binary: &Path, args: &[&str]) -> anyhow::Result<std::time::Duration> {
    run_quiet_env(binary, args, &[])
}

fn bench() -> anyhow::Result<()> {
    let built = build_boternity(true)?;
    let dir = scratch("bench")?;
    // Measured as installed: `cargo install` (how the wasmtime CLI compared
    // here got its binary) copies the binary, and a copied file starts
    // ~0.1-0.2 ms faster here than the linker's own output (how its pages sit
    // in the page cache), which would otherwise count against boternity.
    let boternity = dir.join("boternity");
    std::fs::copy(&built, &boternity)
        .with_context(|| format!("copy {} to {}", built.display(), boternity.display()))?;
    // Every boternity process here uses a cache folder (key, compile cache) of its own.
    let cache = dir.join("cache");
    let env = [("BOTERNITY_CACHE_DIR", cache.as_os_str())];
    let parent = dir.to_str().context("UTF-8 path")?;
    run_quiet_env(
        &boternity,
        &["new-skill", "word-count", "--path", parent],
        &env,
    )?;
    let skill = format!("{parent}/word-count");
    run_quiet_env(&boternity, &["build-skill", &skill], &env)?;
    let wasm = format!("{skill}/skill.wasm");

    println!("== in process: `boternity bench` (the template skill)");
    for format in ["human", "json"] {
        let args = [
            "bench",
            &wasm,
            "--input",
            "the quick brown fox",
            "--iterations",
            "20000",
            "--message-format",
            format,
        ];
        println!("\n$ boternity {}", args.join(" "));
        let status = Command::new(&boternity)
            .args(args)
            .envs(env)
            .status()
            .context("run boternity bench")?;
        if !status.success() {
            bail!("boternity bench failed");
        }
    }
    println!(
        "\ntargets: invoke_median_us <= 6, cold_start_ms <= 0.3 (median of three runs of this task)"
    );

    whole_process(&boternity, &dir, &env)
}

/// The whole-process table: boternity against the wasmtime CLI on a skill
/// that imports no host functions (the template without `log` and
/// `get-context`), so both tools can run it.
fn whole_process(
    boternity: &Path,
    dir: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<()> {
    const ROUNDS: usize = 40;
    const INPUT: &str = "the quick brown fox";
    let parent = dir.to_str().context("UTF-8 path")?;
    run_quiet_env(
        boternity,
        &["new-skill", "plain-count", "--path", parent],
        env,
    )?;
    let lib = dir.join("plain-count/src/lib.rs");
    let text = std::fs::read_to_string(&lib)?;
    let text: String = text
        .lines()
        .filter(|l| !l.contains("host::") && !l.contains("let context"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&lib, text)?;
    let skill = format!("{parent}/plain-count");
    run_quiet_env(boternity, &["build-skill", &skill], env)?;
    let wasm = format!("{skill}/skill.wasm");
    let store = format!("{parent}/store");
    run_quiet_env(boternity, &["install", &skill, "--store", &store], env)?;
    // Old enough that its stamps are not racy, and verified once.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let run_installed = ["run", "plain-count", "--store", &store, "--input", INPUT];
    let run_file = ["run", wasm.as_str(), "--input", INPUT];
    for _ in 0..2 {
        run_quiet_env(boternity, &run_installed, env)?;
        run_quiet_env(boternity, &run_file, env)?;
    }

    let wasmtime = find_on_path("wasmtime");
    let invoke = format!("execute(\"{INPUT}\")");
    let wasmtime_cwasm = format!("{parent}/plain-count.wasmtime.cwasm");
    if let Some(wasmtime) = &wasmtime {
        run_quiet(wasmtime, &["compile", &wasm, "-o", &wasmtime_cwasm])?;
        // Its compile cache, warmed.
        run_quiet(wasmtime, &["run", "--invoke", &invoke, &wasm])?;
    }

    type Row<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>);
    let rows: [Row; 3] = [
        (
            "a process doing nothing (--version)",
            vec!["--version"],
            vec!["--version"],
        ),
        (
            "run an installed skill / a .cwasm",
            run_installed.to_vec(),
            vec![
                "run",
                "--allow-precompiled",
                "--invoke",
                &invoke,
                &wasmtime_cwasm,
            ],
        ),
        (
            "run a .wasm file the second time",
            run_file.to_vec(),
            vec!["run", "--invoke", &invoke, &wasm],
        ),
    ];
    // Interleaved rounds, so both tools see the same machine load.
    let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); rows.len()];
    for _ in 0..ROUNDS {
        for (i, (_, ours, theirs)) in rows.iter().enumerate() {
            times[i]
                .0
                .push(run_quiet_env(boternity, ours, env)?.as_secs_f64() * 1e3);
            if let Some(wasmtime) = &wasmtime {
                times[i]
                    .1
                    .push(run_quiet(wasmtime, theirs)?.as_secs_f64() * 1e3);
            }
        }
    }
    println!("\n== whole processes ({ROUNDS} interleaved rounds, best / median ms)");
    if wasmtime.is_none() {
        println!("wasmtime CLI not found; install it with cargo install wasmtime-cli");
    }
    println!(
        "{:<38} {:>16} {:>16} {:>8}",
        "what", "boternity", "wasmtime CLI", "ratio"
    );
    for ((what, _, _), (ours, theirs)) in rows.iter().zip(&mut times) {
        let (ob, om) = best_median(ours);
        let (theirs_text, ratio) = if theirs.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            let (tb, tm) = best_median(theirs);
            (format!("{tb:.2} / {tm:.2}"), format!("{:.2}", om / tm))
        };
        println!(
            "{what:<38} {:>16} {theirs_text:>16} {ratio:>8}",
            format!("{ob:.2} / {om:.2}")
        );
    }
    println!(
        "\nratio = boternity median / wasmtime median; targets: run installed <= 0.50, second run of a .wasm <= 1.00"
    );
    Ok(())
}

fn best_median(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[0], samples[samples.len() / 2])
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

fn run_quiet_env(
    binary: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<std::time::Duration> {
    let started = std::time::Instant::now();
    let out = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("run {}", binary.display()))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "`{} {}` failed:\n{}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// The dependency sets of the bench registry: what each skill adds to the
/// template's `[dependencies]` (wit-bindgen alone for the first).
const BENCH_DEPENDENCY_SETS: [&str; 3] = [
    "",
    "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n",
    "regex-lite = \"0.1\"\nitoa = \"1\"\n",
];

/// `count` skills from the template in `registry`, over the dependency sets
/// in turn, each with its `Cargo.lock` resolved (in `cargo_home`, which the
/// crates are then fetched into, so no measured build downloads anything).
fn generate_layered_registry(
    boternity: &Path,
    registry: &Path,
    count: usize,
    cargo_home: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let parent = registry.to_str().context("UTF-8 path")?;
    let mut skills = Vec::new();
    for i in 0..count {
        let name = format!("bench-skill-{i:02}");
        run_quiet(boternity, &["new-skill", &name, "--path", parent])?;
        let dir = registry.join(&name);
        let lib = dir.join("src/lib.rs");
        let text = std::fs::read_to_string(&lib)?;
        std::fs::write(
            &lib,
            text.replace(
                "\"words={} lines={} chars={}\"",
                &format!("\"skill {i}: words={{}} lines={{}} chars={{}}\""),
            ),
        )?;
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)?;
        let extra = BENCH_DEPENDENCY_SETS[i % BENCH_DEPENDENCY_SETS.len()];
        std::fs::write(
            &manifest,
            text.replacen("[dependencies]\n", &format!("[dependencies]\n{extra}"), 1),
        )?;
        for args in [
            vec!["generate-lockfile"],
            vec!["fetch", "--locked", "--target", "wasm32-wasip2"],
        ] {
            let status = cargo()
                .args(&args)
                .arg("--manifest-path")
                .arg(&manifest)
                .env("CARGO_HOME", cargo_home)
                .status()
                .context("run cargo")?;
            if !status.success() {
                bail!("cargo {} failed for {name}", args[0]);
            }
        }
        skills.push(dir);
    }
    Ok(skills)
}

/// Bytes below `dir` (files only, links not followed).
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

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// A fresh cache folder `dir` whose cargo home holds every crate the bench
/// registry needs (copied): builds then start cold but download nothing.
fn fresh_cache(dir: &Path, cargo_home: &Path) -> anyhow::Result<PathBuf> {
    copy_tree(cargo_home, &dir.join("cargo-home"))?;
    Ok(dir.to_path_buf())
}

/// What a build leaves in a cache folder: target directories and layers.
fn build_bytes(cache: &Path) -> u64 {
    dir_bytes(&cache.join("targets")) + dir_bytes(&cache.join("layers"))
}

/// The registry CI at scale: 12 skills over 3 dependency sets, from cold
/// caches, side by side in one run: `precompile` as it is by default
/// (confined, each skill over a shared dependency layer), the same without
/// layers (a target directory per skill, each compiling its dependencies),
/// and 12 isolated `build-skill` runs (each with a cache folder of its own);
/// then a new skill whose layer exists, built cold. Prints times, disk and
/// their ratios (the machine may be shared: the ratios are the figures).
fn bench_precompile() -> anyhow::Result<()> {
    const SKILLS: usize = 12;
    // The time is cargo's and rustc's: a debug boternity drives them as fast
    // (its hashing runs in optimised dependencies), without the release
    // build's minutes of whole-program LTO.
    let boternity = build_boternity(false)?;
    let dir = scratch("bench-precompile")?;
    let registry = dir.join("registry");
    let warm_home = dir.join("warm-cargo-home");
    let skills = generate_layered_registry(&boternity, &registry, SKILLS, &warm_home)?;
    let reg = registry.to_str().context("UTF-8 path")?;
    let precompile = |name: &str, extra: &[&str]| -> anyhow::Result<(f64, u64, PathBuf)> {
        let cache = fresh_cache(&dir.join(format!("cache-{name}")), &warm_home)?;
        let out = dir.join(format!("out-{name}"));
        let out = out.to_str().context("UTF-8 path")?;
        let mut args = vec!["precompile", reg, "--out", out, "--no-stub"];
        args.extend(extra);
        let took = run_quiet_env(
            &boternity,
            &args,
            &[("BOTERNITY_CACHE_DIR", cache.as_os_str())],
        )?;
        Ok((took.as_secs_f64(), build_bytes(&cache), cache))
    };
    println!("precompile, layered (the default) ...");
    let (layered, layered_bytes, layered_cache) = precompile("layered", &[])?;
    println!("precompile, a target directory per skill without layers ...");
    let (per_skill, per_skill_bytes, _) = precompile("per-skill", &["--no-build-layers"])?;
    println!("{SKILLS} isolated build-skill runs ...");
    let (mut isolated, mut isolated_bytes) = (0.0, 0);
    for (i, skill) in skills.iter().enumerate() {
        let cache = fresh_cache(&dir.join(format!("cache-isolated-{i:02}")), &warm_home)?;
        let skill = skill.to_str().context("UTF-8 path")?;
        isolated += run_quiet_env(
            &boternity,
            &["build-skill", skill, "-o", &format!("{skill}.wasm")],
            &[("BOTERNITY_CACHE_DIR", cache.as_os_str())],
        )?
        .as_secs_f64();
        isolated_bytes += build_bytes(&cache);
    }
    // A new skill with the first set's dependencies: its layer exists.
    let new_skill = registry.join("bench-skill-00");
    let fresh = dir.join("bench-new-skill");
    copy_tree(&new_skill, &fresh)?;
    std::fs::remove_file(fresh.join("skill.wasm")).ok();
    let fresh = fresh.to_str().context("UTF-8 path")?;
    let new_cold = run_quiet_env(
        &boternity,
        &["build-skill", fresh, "-o", &format!("{fresh}.wasm")],
        &[("BOTERNITY_CACHE_DIR", layered_cache.as_os_str())],
    )?
    .as_secs_f64();

    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "\nregistry of {SKILLS} Rust skills over {} dependency sets (cold caches, crates downloaded, one run):",
        BENCH_DEPENDENCY_SETS.len()
    );
    println!("{:<46} {:>9} {:>10}", "", "seconds", "disk MB");
    println!(
        "{:<46} {:>9.1} {:>10.0}",
        "precompile, layered (default)",
        layered,
        mb(layered_bytes)
    );
    println!(
        "{:<46} {:>9.1} {:>10.0}",
        "precompile, a target dir per skill, no layers",
        per_skill,
        mb(per_skill_bytes)
    );
    println!(
        "{:<46} {:>9.1} {:>10.0}",
        format!("{SKILLS} isolated build-skill runs"),
        isolated,
        mb(isolated_bytes)
    );
    println!(
        "\nlayered / per-skill dirs: time {:.2} (target <= 0.30), disk {:.2} (target <= 0.40)",
        layered / per_skill,
        layered_bytes as f64 / per_skill_bytes.max(1) as f64
    );
    println!(
        "layered / isolated builds: time {:.2}, disk {:.2}",
        layered / isolated,
        layered_bytes as f64 / isolated_bytes.max(1) as f64
    );
    println!("a new skill whose layer exists, built cold: {new_cold:.1} s (target <= 3)");
    Ok(())
}

fn fuzz(seconds: u64) -> anyhow::Result<()> {
    let fuzz_dir = workspace_root().join("fuzz");
    for target in ["validate", "manifest"] {
        println!("\n$ cargo fuzz run -O {target} corpus/{target} -- -max_total_time={seconds}");
        // cargo-fuzz passes -Z flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
        let status = cargo()
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                "-O",
                target,
                &format!("corpus/{target}"),
                "--",
            ])
            .arg(format!("-max_total_time={seconds}"))
            .status()
            .context("run cargo fuzz (install it with `cargo install cargo-fuzz`)")?;
        if !status.success() {
            bail!("fuzz target {target} failed: see fuzz/artifacts/{target}/");
        }
    }
    Ok(())
}

/// What confinement costs a build: the example skill built cold (a fresh
/// target directory, dependencies already downloaded) and warm (nothing to
/// do), confined and with `--allow-unconfined-build`, interleaved so both see
/// the same machine load. Prints medians and ratios.
fn bench_build() -> anyhow::Result<()> {
    const COLD_ROUNDS: usize = 3;
    const WARM_ROUNDS: usize = 9;
    let boternity = build_boternity(true)?;
    let dir = scratch("bench-build")?;
    let cache = dir.join("cache");
    let env = [("BOTERNITY_CACHE_DIR", cache.as_os_str())];
    let parent = dir.to_str().context("UTF-8 path")?;
    run_quiet_env(
        &boternity,
        &["new-skill", "word-count", "--path", parent],
        &env,
    )?;
    let skill = format!("{parent}/word-count");
    let build = |target: &str, confined: bool| -> anyhow::Result<f64> {
        let mut args = vec!["build-skill", skill.as_str(), "--target-dir", target];
        if !confined {
            args.push("--allow-unconfined-build");
        }
        Ok(run_quiet_env(&boternity, &args, &env)?.as_secs_f64())
    };
    // Downloads the dependencies into both cargo homes once.
    build(&format!("{parent}/warm-up"), true)?;
    build(&format!("{parent}/warm-up-unconfined"), false)?;

    let mut cold = (Vec::new(), Vec::new());
    for round in 0..COLD_ROUNDS {
        cold.0
            .push(build(&format!("{parent}/cold-confined-{round}"), true)?);
        cold.1
            .push(build(&format!("{parent}/cold-unconfined-{round}"), false)?);
    }
    let (warm_confined, warm_unconfined) = (format!("{parent}/warm"), format!("{parent}/warm-u"));
    build(&warm_confined, true)?;
    build(&warm_unconfined, false)?;
    let mut warm = (Vec::new(), Vec::new());
    for _ in 0..WARM_ROUNDS {
        warm.0.push(build(&warm_confined, true)?);
        warm.1.push(build(&warm_unconfined, false)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("== build-skill of the example skill, confined vs unconfined (median seconds)");
    println!(
        "{:<28} {:>10} {:>12} {:>8}",
        "", "confined", "unconfined", "ratio"
    );
    for (label, (c, u)) in [
        ("cold (fresh target dir)", &mut cold),
        ("warm (nothing to do)", &mut warm),
    ] {
        let (c, u) = (median(c), median(u));
        println!("{label:<28} {c:>10.3} {u:>12.3} {:>8.2}", c / u);
    }
    println!("target: warm ratio <= 1.05");
    Ok(())
}
