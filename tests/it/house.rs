//! Regression tests for bugs fixed in the CLI and the library: a shipped
//! binary validated without a toolchain, `run`'s JSON carrying the whole
//! outcome, precompile progress under a shard, errors that name the right
//! action and say each cause once, FIFOs refused without hanging, leftovers of
//! a killed install swept, and fixture copies keeping their lock file.
#![allow(clippy::print_stdout, clippy::print_stderr)] // Tests may print diagnostics; only the library must not.

use crate::common;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use boternity_skills::digest::sha256_hex;
use boternity_skills::registry::index::Status;
use boternity_skills::registry::precompile::{self, PrecompileOptions, Progress, Shard};
use common::*;

/// A Tool skill folder holding SKILL.md and, if given, a shipped skill.wasm.
fn tool_skill(parent: &Path, name: &str, wasm: Option<&[u8]>) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: A tool.\nmetadata:\n  skill-type: tool\n---\nThe body of {name}.\n"
        ),
    )
    .unwrap();
    if let Some(wasm) = wasm {
        std::fs::write(dir.join("skill.wasm"), wasm).unwrap();
    }
    dir
}

/// A Prompt skill folder: SKILL.md only, nothing to compile.
fn prompt_skill(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: A prompt.\nmetadata:\n  skill-type: prompt\n---\nBe kind, says {name}.\n"
        ),
    )
    .unwrap();
    dir
}

/// `cmd` with no Rust toolchain to be found: no CARGO/RUSTC, an empty PATH.
fn without_toolchain(cmd: &mut Command, empty_path: &Path) {
    cmd.env("PATH", empty_path)
        .env_remove("CARGO")
        .env_remove("RUSTC");
}

/// Runs `cmd` to completion, or kills it and fails the test after `limit`.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; killed. stderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names in a folder, sorted (empty when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("list {}: {e}", dir.display()),
    };
    names.sort();
    names
}

fn one_json_line(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got: {text}");
    json_line(lines[0])
}

// 1 ---------------------------------------------------------------------------

#[test]
fn build_skill_validates_a_shipped_binary_without_any_toolchain() {
    let tmp = tempfile::tempdir().unwrap();
    let shipped = component("echo-skill");
    let dir = tool_skill(tmp.path(), "shipped-echo", Some(&shipped));
    assert!(!dir.join("Cargo.toml").exists() && !dir.join("src").exists());
    let empty_path = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();

    // Human output.
    let output = tmp.path().join("out/shipped-echo.wasm");
    let mut cmd = boternity();
    cmd.arg("build-skill").arg(&dir).arg("-o").arg(&output);
    without_toolchain(&mut cmd, &empty_path);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("(validated)"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("cargo was not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&output).unwrap(), shipped);

    // JSON output.
    let json_output = tmp.path().join("out/shipped-echo-json.wasm");
    let mut cmd = boternity();
    cmd.arg("build-skill")
        .arg(&dir)
        .arg("-o")
        .arg(&json_output)
        .args(["--message-format", "json"]);
    without_toolchain(&mut cmd, &empty_path);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(v["reason"], "skill-built");
    assert_eq!(v["name"], "shipped-echo");
    assert_eq!(v["path_taken"], "validated");
    assert_eq!(v["source"], serde_json::Value::Null);
    assert_eq!(v["rustc"], serde_json::Value::Null);
    assert_eq!(v["path"], json_output.to_str().unwrap());
    assert_eq!(v["sha256"], sha256_hex(&shipped));
    assert_eq!(v["size"], shipped.len() as u64);
    assert_eq!(std::fs::read(&json_output).unwrap(), shipped);

    // Without -o, the shipped file is rewritten in place, byte for byte.
    let mut cmd = boternity();
    cmd.arg("build-skill").arg(&dir);
    without_toolchain(&mut cmd, &empty_path);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.join("skill.wasm")).unwrap(), shipped);
}

// 2 ---------------------------------------------------------------------------

#[test]
fn run_json_carries_every_field_of_the_outcome_and_flags_truncated_output() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("hostile.wasm");
    std::fs::write(&wasm, component("hostile")).unwrap();
    // Untrusted (a file's default tier) captures 64 KiB of stdout.
    let printed = 200_000;
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", &format!("print {printed}")])
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    let object = v.as_object().unwrap();
    for field in [
        "ok",
        "err",
        "fuel_consumed",
        "peak_memory_bytes",
        "duration_us",
        "invocation_id",
        "logs",
        "logs_truncated",
        "stdout",
        "stderr",
        "output_truncated",
        "stub",
    ] {
        assert!(object.contains_key(field), "no `{field}` in {v}");
    }
    assert_eq!(v["reason"], "skill-run");
    assert_eq!(v["ok"], "printed");
    assert_eq!(v["err"], serde_json::Value::Null);
    assert!(v["fuel_consumed"].as_u64().unwrap() > 0, "{v}");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(v["duration_us"].as_u64().is_some(), "{v}");
    assert!(
        !v["invocation_id"].as_str().unwrap().is_empty(),
        "{}",
        v["invocation_id"]
    );
    assert_eq!(v["logs"], serde_json::json!([]));
    assert_eq!(v["logs_truncated"], false);
    let captured = v["stdout"].as_str().unwrap();
    assert_eq!(
        captured.len(),
        boternity_skills::Limits::UNTRUSTED.max_captured_bytes
    );
    assert!(captured.len() < printed);
    assert!(captured.chars().all(|c| c == 'p'));
    assert_eq!(v["stderr"], "to stderr");
    assert_eq!(v["output_truncated"], true);
    assert_eq!(v["stub"], false);

    // Below the bound nothing is cut.
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "print 10", "--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(v["stdout"], "pppppppppp");
    assert_eq!(v["output_truncated"], false);
}

// 3 ---------------------------------------------------------------------------

#[test]
fn precompile_progress_counts_only_the_skills_of_its_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    let names = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    for (i, name) in names.iter().enumerate() {
        // Nested folders, as in a real registry.
        prompt_skill(&reg.join(format!("team-{}", i % 3)), name);
    }
    let first: Shard = "1/2".parse().unwrap();
    let second: Shard = "2/2".parse().unwrap();
    let mut in_first: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| first.contains(n))
        .collect();
    in_first.sort();
    assert!(
        !in_first.is_empty() && in_first.len() < names.len(),
        "choose names that fall in both shards: {in_first:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| first.contains(n) != second.contains(n))
    );

    let run = |shard: Shard, out: &str| {
        let options = PrecompileOptions {
            out: tmp.path().join(out),
            jobs: 2,
            shard: Some(shard),
            no_stub: false,
            force: false,
            target_dir: Some(skill_target_dir()),
            confinement: Default::default(),
            registries: Default::default(),
            max_target_bytes: boternity_skills::build::cargo::MAX_TARGET_BYTES,
            strict: false,
            cwasm: false,
            jobserver: None,
            sign_key: None,
            layers: true,
        };
        let started = Mutex::new(Vec::new());
        let finished = Mutex::new(Vec::new());
        let report =
            precompile::precompile(&common::context(), &reg, &options, &|progress: Progress<
                '_,
            >| {
                match progress {
                    Progress::Started { skills } => started.lock().unwrap().push(skills),
                    Progress::Finished { entry, .. } => finished
                        .lock()
                        .unwrap()
                        .push((entry.name.clone(), entry.status)),
                }
            })
            .unwrap();
        (
            report,
            started.into_inner().unwrap(),
            finished.into_inner().unwrap(),
        )
    };

    let (report, started, mut finished) = run(first, "out-1");
    assert_eq!(started.len(), 1, "Started is reported once: {started:?}");
    assert_eq!(started[0], finished.len());
    assert_eq!(started[0], report.index.skills.len());
    assert_eq!(started[0], in_first.len());
    assert!(started[0] < names.len());
    assert_eq!(report.found, names.len());
    finished.sort_by(|a, b| a.0.cmp(&b.0));
    let finished_names: Vec<&str> = finished.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(finished_names, in_first);
    assert!(
        // Prompt skills are published (their files), not skipped.
        finished.iter().all(|(_, s)| *s == Status::Ok),
        "{finished:?}"
    );
    let indexed: Vec<&str> = report
        .index
        .skills
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(indexed, in_first);
    assert!(report.index_path.is_file());

    // The other shard reports the rest.
    let (report, started, finished) = run(second, "out-2");
    assert_eq!(started, vec![names.len() - in_first.len()]);
    assert_eq!(finished.len(), started[0]);
    assert_eq!(report.index.skills.len(), started[0]);
}

// 4 ---------------------------------------------------------------------------

#[test]
fn install_into_a_store_that_is_a_file_says_cannot_create() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = prompt_skill(tmp.path(), "tone-guide");
    let store = tmp.path().join("store-is-a-file");
    std::fs::write(&store, "not a folder").unwrap();
    let out = boternity()
        .arg("install")
        .arg(&skill)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let skills = store.join("skills");
    assert!(
        err.contains(&format!("cannot create {}", skills.display())),
        "{err}"
    );
    assert!(!err.contains("cannot read"), "{err}");
    assert_eq!(std::fs::read(&store).unwrap(), b"not a folder");
}

#[test]
fn build_skill_says_cannot_read_a_lib_rs_that_is_not_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tool_skill(tmp.path(), "not-utf8", None);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), [0xff, 0xfe, 0x00]).unwrap();
    let out = build_skill(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lib_rs = dir.canonicalize().unwrap().join("src/lib.rs");
    assert!(
        err.contains(&format!("cannot read {}", lib_rs.display())),
        "{err}"
    );
    assert!(err.contains("valid UTF-8"), "{err}");
    assert!(!err.contains("write"), "{err}");
    assert!(!dir.join("skill.wasm").exists());
}

/// A distinctive part of the YAML parser's message for a tab-indented key
/// (front matter no lenient fallback can read).
const YAML_MESSAGE: &str = "found character that cannot start any token";

fn bad_yaml_skill(parent: &Path) -> PathBuf {
    let dir = tool_skill(parent, "bad-yaml", None);
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: bad-yaml\nmetadata:\n\tskill-type: tool\n---\n",
    )
    .unwrap();
    dir
}

#[test]
fn an_invalid_yaml_front_matter_is_reported_once_as_a_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bad_yaml_skill(tmp.path());
    let store = tmp.path().join("store");
    let out = boternity()
        .arg("install")
        .arg(&dir)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("error: cannot install {}", dir.display())),
        "{err}"
    );
    assert!(err.contains("\nCaused by:\n"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
    assert_eq!(err.matches(YAML_MESSAGE).count(), 1, "{err}");
    assert_eq!(err.matches("not valid YAML").count(), 1, "{err}");
    assert!(snapshot(&store).is_empty());
}

#[test]
fn an_invalid_yaml_front_matter_is_reported_once_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = bad_yaml_skill(tmp.path());
    let store = tmp.path().join("store");
    let out = boternity()
        .arg("install")
        .arg(&dir)
        .arg("--store")
        .arg(&store)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = one_json_line(&out);
    assert_eq!(v["reason"], "install-failed");
    assert_eq!(v["skill_dir"], dir.to_str().unwrap());
    let error = v["error"].as_str().unwrap();
    assert!(error.starts_with("cannot install "), "{error}");
    assert_eq!(error.matches(YAML_MESSAGE).count(), 1, "{error}");
    assert_eq!(error.matches("not valid YAML").count(), 1, "{error}");
    assert!(snapshot(&store).is_empty());
}

// 5 ---------------------------------------------------------------------------

#[test]
fn a_fifo_named_skill_wasm_is_refused_at_once_by_install_and_build_skill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tool_skill(tmp.path(), "fifo-skill", None);
    let fifo = dir.join("skill.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let fifo_path = dir.canonicalize().unwrap().join("skill.wasm");
    let expected = format!("{} is not a regular file", fifo_path.display());

    let store = tmp.path().join("store");
    let out = output_within(
        boternity()
            .arg("install")
            .arg(&dir)
            .arg("--store")
            .arg(&store),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert_eq!(names_in(&store.join("skills")), Vec::<String>::new());

    let output = tmp.path().join("out.wasm");
    let out = output_within(
        build_skill(&dir).arg("-o").arg(&output),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(!output.exists());
    // The FIFO itself is left alone.
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

// 6 ---------------------------------------------------------------------------

/// `boternity install <skill> --store <store>`, expected to succeed.
fn install_ok(skill: &Path, store: &Path) {
    let out = boternity()
        .arg("install")
        .arg(skill)
        .arg("--store")
        .arg(store)
        .arg("--target-dir")
        .arg(skill_target_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_install_sweeps_what_a_killed_install_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let skills = store.join("skills");
    let staging = skills.join(".staging-ghost-abc123");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("SKILL.md"), "---\nname: ghost\n---\n").unwrap();
    let removing = skills.join(".removing-old-xyz");
    std::fs::create_dir_all(removing.join("old")).unwrap();
    std::fs::write(removing.join("old/SKILL.md"), "old").unwrap();

    install_ok(&prompt_skill(tmp.path(), "tone-guide"), &store);
    assert_eq!(names_in(&skills), ["tone-guide"]);
    assert_eq!(
        std::fs::read_to_string(skills.join("tone-guide/SKILL.md")).unwrap(),
        std::fs::read_to_string(tmp.path().join("tone-guide/SKILL.md")).unwrap()
    );
}

#[test]
fn an_install_killed_mid_commit_is_cleaned_up_by_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let skills = store.join("skills");
    let mut child = boternity()
        .arg("install")
        .arg(fixture("echo-skill"))
        .arg("--store")
        .arg(&store)
        .arg("--target-dir")
        .arg(skill_target_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(60) {
        if names_in(&skills).iter().any(|n| n.starts_with(".staging-")) {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if !killed && child.try_wait().unwrap().is_none() {
        // Neither a staging folder nor an exit within a minute: give up on
        // this half rather than hang (the simulated test covers the sweep).
        child.kill().unwrap();
    }
    child.wait().unwrap();
    eprintln!(
        "killed mid-commit: {killed}; left behind: {:?}",
        names_in(&skills)
    );

    install_ok(&prompt_skill(tmp.path(), "tone-guide"), &store);
    let left: Vec<String> = names_in(&skills)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(skills.join("tone-guide/SKILL.md").is_file());
}

// 7 ---------------------------------------------------------------------------

#[test]
fn a_fixture_copy_keeps_its_lock_file() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("echo-skill");
    copy_dir(&fixture("echo-skill"), &copy);
    let original = std::fs::read(fixture("echo-skill").join("Cargo.lock")).unwrap();
    assert!(copy.join("Cargo.lock").is_file());
    assert_eq!(std::fs::read(copy.join("Cargo.lock")).unwrap(), original);
}
