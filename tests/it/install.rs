//! `install`: every path of the decision with real skills and binaries, every
//! bad input refused with a specific error, and the store unchanged after any
//! failure.

use crate::common;

use std::path::{Path, PathBuf};

use boternity_skills::digest::sha256_hex;
use boternity_skills::executor::{Executor, Invocation};
use boternity_skills::install::{self, InstallError, InstallOptions};
use boternity_skills::pipeline::PathTaken;
use boternity_skills::skill::manifest::{Capability, TrustTier};
use boternity_skills::skill::stub::StubMarker;
use boternity_skills::store::{InstalledBinary, SkillStore};
use common::*;

fn options() -> InstallOptions {
    InstallOptions {
        pipeline: pipeline_options(),
        ..InstallOptions::default()
    }
}

/// A skill folder holding only SKILL.md (a Tool skill) and, if given, skill.wasm.
fn binary_skill(parent: &Path, name: &str, wasm: Option<&[u8]>) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: A shipped binary.\nmetadata:\n  skill-type: tool\n---\nThe body of {name}.\n"),
    )
    .unwrap();
    if let Some(wasm) = wasm {
        std::fs::write(dir.join("skill.wasm"), wasm).unwrap();
    }
    dir
}

async fn run_installed(store: &SkillStore, name: &str, input: &str) -> Result<String, String> {
    let executor = Executor::new().unwrap();
    let installed = store.get(name).unwrap();
    let skill = installed.load(&executor).unwrap();
    let mut invocation = Invocation::new(name, input);
    invocation.grants = installed.grants(store);
    executor.run(&skill, invocation).await.unwrap().result
}

fn install_with(
    store: &SkillStore,
    dir: &Path,
    options: &InstallOptions,
) -> Result<install::Installed, InstallError> {
    let executor = Executor::new().unwrap();
    install::install(&common::context(), store, dir, options, Some(&executor))
}

/// Installs `dir`, expects an error containing `expected`, and checks that the
/// store is byte-for-byte what it was.
fn assert_refused(store: &SkillStore, dir: &Path, options: &InstallOptions, expected: &str) {
    let before = snapshot(store.root());
    let err = install_with(store, dir, options).expect_err("install should fail");
    let message = boternity_skills::error_chain(&err);
    assert!(
        message.contains(expected),
        "expected `{expected}` in: {message}"
    );
    assert_eq!(
        snapshot(store.root()),
        before,
        "the store changed after: {message}"
    );
}

/// A store that already holds a working skill, so "unchanged" means something.
fn store_with_echo(tmp: &Path) -> SkillStore {
    let store = SkillStore::new(tmp.join("store"));
    let src = binary_skill(
        &tmp.join("src"),
        "echo-skill",
        Some(&component("echo-skill")),
    );
    install_with(&store, &src, &options()).unwrap();
    store
}

#[tokio::test]
async fn a_crate_is_built_installed_with_provenance_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let installed = install_with(&store, &fixture("echo-skill"), &options()).unwrap();
    assert_eq!(installed.path_taken, PathTaken::Built);
    assert!(!installed.replaced);

    let dir = store.skill_dir("echo-skill").unwrap();
    let wasm = std::fs::read(dir.join("skill.wasm")).unwrap();
    let p = store.get("echo-skill").unwrap().provenance.unwrap();
    assert_eq!(p.path_taken, PathTaken::Built);
    assert_eq!(p.wasm.as_ref().unwrap().sha256, sha256_hex(&wasm));
    assert_eq!(p.wasm.as_ref().unwrap().size, wasm.len() as u64);
    assert_eq!(p.source_shape.as_deref(), Some("crate"));
    assert_eq!(p.source_sha256.len(), 64);
    assert!(p.rustc_version.as_deref().unwrap().starts_with("rustc "));
    assert!(p.cargo_version.as_deref().unwrap().starts_with("cargo "));
    assert_eq!(p.world.package, "boternity:skill");
    assert_eq!(p.world.world, "skill-plugin");
    assert_eq!(p.tool_version, env!("CARGO_PKG_VERSION"));
    assert!(p.created_at.ends_with('Z'));
    assert_eq!(p.trust_tier, TrustTier::Untrusted);
    let cwasm = p.cwasm.as_ref().expect("precompiled at install");
    assert_eq!(
        cwasm.sha256,
        sha256_hex(&std::fs::read(dir.join("skill.cwasm")).unwrap())
    );

    assert_eq!(
        run_installed(&store, "echo-skill", "store").await,
        Ok("ECHO: STORE".into())
    );
}

#[tokio::test]
async fn both_bare_lib_shapes_are_wrapped_built_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let opts = options();
    let minimal = install_with(&store, &fixture("bare-minimal"), &opts).unwrap();
    assert_eq!(minimal.path_taken, PathTaken::Built);
    assert!(
        minimal
            .notes
            .iter()
            .any(|n| n.contains("export!(VowelCounter);")),
        "{:?}",
        minimal.notes
    );
    let full = install_with(&store, &fixture("bare-full"), &opts).unwrap();
    assert!(
        !full.notes.iter().any(|n| n.contains("appended")),
        "{:?}",
        full.notes
    );
    assert_eq!(full.provenance.source_shape.as_deref(), Some("bare lib.rs"));
    assert_eq!(
        run_installed(&store, "bare-minimal", "education").await,
        Ok("vowels=5".into())
    );
    assert_eq!(
        run_installed(&store, "bare-full", "stressed").await,
        Ok("desserts".into())
    );
}

#[tokio::test]
async fn shipped_components_and_core_modules_are_validated_or_componentized() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let cases = [
        (
            "shipped-component",
            component("echo-skill"),
            PathTaken::Validated,
        ),
        (
            "shipped-core",
            core_module("echo-skill", "wasm32-unknown-unknown"),
            PathTaken::Componentized,
        ),
        (
            "shipped-wasip1",
            core_module("echo-skill", "wasm32-wasip1"),
            PathTaken::Componentized,
        ),
    ];
    for (name, bytes, path) in cases {
        let dir = binary_skill(tmp.path(), name, Some(&bytes));
        let installed = install_with(&store, &dir, &options()).unwrap();
        assert_eq!(installed.path_taken, path, "{name}");
        assert_eq!(
            run_installed(&store, name, "hi").await,
            Ok("ECHO: HI".into()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn source_wins_over_a_shipped_binary_and_says_whether_it_matched() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let dir = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    std::fs::write(dir.join("skill.wasm"), component("bare-full")).unwrap();
    let installed = install_with(&store, &dir, &options()).unwrap();
    assert_eq!(installed.path_taken, PathTaken::Built);
    assert_eq!(
        installed.provenance.shipped.as_ref().unwrap().matched_build,
        Some(false)
    );
    assert!(
        installed
            .notes
            .iter()
            .any(|n| n.contains("differs from the build"))
    );
    assert_eq!(
        run_installed(&store, "echo-skill", "x").await,
        Ok("ECHO: X".into())
    );

    std::fs::write(dir.join("skill.wasm"), component("echo-skill")).unwrap();
    let installed = install_with(&store, &dir, &options()).unwrap();
    assert!(installed.replaced);
    assert_eq!(
        installed.provenance.shipped.as_ref().unwrap().matched_build,
        Some(true)
    );
}

#[tokio::test]
async fn prompt_skills_install_without_a_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let dir = tmp.path().join("tone-guide");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: tone-guide\ndescription: Be kind.\n---\nAlways be kind.\n",
    )
    .unwrap();
    let installed = install_with(&store, &dir, &options()).unwrap();
    assert_eq!(installed.path_taken, PathTaken::Prompt);
    let listed = store.get("tone-guide").unwrap();
    assert_eq!(listed.binary, None);
    assert!(!listed.dir.join("skill.wasm").exists());
}

#[tokio::test]
async fn without_a_toolchain_source_becomes_a_loud_stub_and_no_stub_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    let empty_path = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let skill = copy_fixture("bare-minimal", tmp.path(), "bare-minimal");

    let before = snapshot(store.root());
    let out = boternity()
        .arg("install")
        .arg(&skill)
        .arg("--store")
        .arg(store.root())
        .arg("--no-stub")
        .env("PATH", &empty_path)
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("stubs are not allowed"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("cargo was not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(store.root()), before);

    let out = boternity()
        .arg("install")
        .arg(&skill)
        .arg("--store")
        .arg(store.root())
        .env("PATH", &empty_path)
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("installed as a JSON STUB"), "{err}");
    assert!(err.contains("rustup target add wasm32-wasip2"), "{err}");
    let installed = store.get("bare-minimal").unwrap();
    assert_eq!(installed.binary, Some(InstalledBinary::Stub));
    assert_eq!(installed.provenance.unwrap().path_taken, PathTaken::Stub);
    assert_eq!(
        run_installed(&store, "bare-minimal", "ignored").await,
        Ok("Count vowels.\n".into())
    );
}

#[tokio::test]
async fn neither_source_nor_binary_is_a_stub_unless_forbidden() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    let dir = binary_skill(tmp.path(), "nothing-here", None);
    let mut forbid = options();
    forbid.pipeline.no_stub = true;
    assert_refused(&store, &dir, &forbid, "neither Rust source");
    let installed = install_with(&store, &dir, &options()).unwrap();
    assert_eq!(installed.path_taken, PathTaken::Stub);
    assert_eq!(
        run_installed(&store, "nothing-here", "x").await,
        Ok("The body of nothing-here.\n".into())
    );
}

#[tokio::test]
async fn legacy_stubs_keep_running_and_install_as_stubs() {
    let tmp = tempfile::tempdir().unwrap();
    // A store exactly as boternity's old installer left it.
    let store = SkillStore::new(tmp.path().join("store"));
    let old = store.skills_dir().join("old-weather");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("SKILL.md"), "---\nname: old-weather\ndescription: Weather.\nmetadata:\n  skill-type: tool\n  trust-tier: local\n---\nSunny.\n").unwrap();
    std::fs::write(
        old.join("skill.wasm"),
        br#"{"boternity_wasm_stub": true, "version": 1, "body": "Sunny.\n"}"#,
    )
    .unwrap();
    std::fs::write(old.join(".boternity-meta.toml"), "source = \"registry\"\n").unwrap();
    let listed = store.get("old-weather").unwrap();
    assert_eq!(listed.binary, Some(InstalledBinary::Stub));
    assert!(listed.provenance.is_none());
    // Its `local` claim is not believed.
    assert_eq!(listed.trust_tier(), TrustTier::Untrusted);
    let executor = Executor::new().unwrap();
    let outcome = executor
        .run(
            &listed.load(&executor).unwrap(),
            Invocation::new("old-weather", "x"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.result, Ok("Sunny.\n".into()));
    assert_eq!(outcome.fuel_consumed, 0);
    assert!(outcome.stub);

    // The CLI runs it too.
    let out = boternity()
        .args(["run", "old-weather", "--input", "x", "--store"])
        .arg(store.root())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "Sunny.\n");
    assert!(stderr(&out).contains("JSON stub"));

    // A stub shipped as a skill's skill.wasm installs as a stub; boternity's
    // metadata survives the reinstall.
    let src = binary_skill(
        tmp.path(),
        "old-weather",
        Some(&StubMarker::new("Rainy.").to_bytes()),
    );
    let mut forbid = options();
    forbid.pipeline.no_stub = true;
    forbid.force = true;
    assert_refused(&store, &src, &forbid, "legacy JSON stub marker");
    // Where the old installer took it from is not known: replacing it is a
    // decision (`force`), not a side effect.
    assert_refused(
        &store,
        &src,
        &options(),
        "`old-weather` is already installed from an unknown origin (installed before origins were recorded)",
    );
    let mut forced = options();
    forced.force = true;
    let installed = install_with(&store, &src, &forced).unwrap();
    assert_eq!(installed.path_taken, PathTaken::Stub);
    assert!(installed.replaced);
    assert_eq!(
        std::fs::read_to_string(old.join(".boternity-meta.toml")).unwrap(),
        "source = \"registry\"\n"
    );
    assert_eq!(
        run_installed(&store, "old-weather", "x").await,
        Ok("Rainy.".into())
    );
}

#[test]
fn the_installer_decides_the_trust_tier() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let dir = binary_skill(tmp.path(), "climber", Some(&component("echo-skill")));
    let text = std::fs::read_to_string(dir.join("SKILL.md")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        text.replace(
            "skill-type: tool",
            "skill-type: tool\n  trust-tier: verified",
        ),
    )
    .unwrap();
    let installed = install_with(&store, &dir, &options()).unwrap();
    assert_eq!(installed.trust_tier, TrustTier::Untrusted);
    assert_eq!(
        installed.provenance.declared_trust_tier,
        Some(TrustTier::Verified)
    );
    assert!(
        installed
            .notes
            .iter()
            .any(|n| n.contains("claims trust-tier `verified`; ignored")),
        "{:?}",
        installed.notes
    );
    let mut verified = options();
    verified.trust_tier = TrustTier::Verified;
    let installed = install_with(&store, &dir, &verified).unwrap();
    assert_eq!(
        store.get("climber").unwrap().trust_tier(),
        TrustTier::Verified
    );
    assert!(installed.notes.iter().all(|n| !n.contains("claims")));
}

#[test]
fn bad_skill_folders_are_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();

    let no_manifest = bad.join("no-manifest");
    std::fs::create_dir_all(&no_manifest).unwrap();
    assert_refused(&store, &no_manifest, &options(), "SKILL.md");

    // No front matter and nothing but a heading: nothing describes the skill.
    let dir = binary_skill(&bad, "no-front-matter", None);
    std::fs::write(dir.join("SKILL.md"), "# Just markdown\n").unwrap();
    assert_refused(&store, &dir, &options(), "no front matter and no text");

    let dir = binary_skill(&bad, "bad-yaml", None);
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: bad-yaml\nmetadata:\n\tskill-type: tool\n---\n",
    )
    .unwrap();
    assert_refused(&store, &dir, &options(), "not valid YAML");

    let dir = binary_skill(&bad, "bad-type", None);
    let text = std::fs::read_to_string(dir.join("SKILL.md")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        text.replace("skill-type: tool", "skill-type: rust"),
    )
    .unwrap();
    assert_refused(&store, &dir, &options(), "valid values: prompt, tool");

    // Names that are not valid keys are accepted under a safe key
    // (tests/it/lenient.rs); fields that decide what a skill may do are not.
    let dir = binary_skill(&bad, "bad-capability", None);
    let text = std::fs::read_to_string(dir.join("SKILL.md")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        text.replace(
            "skill-type: tool",
            "skill-type: tool\n  capabilities: [root]",
        ),
    )
    .unwrap();
    assert_refused(&store, &dir, &options(), "`root`; valid values: read_file");

    let dir = binary_skill(&bad, "linked", Some(&component("echo-skill")));
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
    assert_refused(&store, &dir, &options(), "points outside the skill folder");
}

#[test]
fn bad_binaries_are_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    let bad = tmp.path().join("bad");
    let echo = component("echo-skill");
    let other = boternity_skills::build::build(
        &common::context().folders,
        &boternity_skills::build::Toolchain::detect(&common::context().host).unwrap(),
        "other-world",
        &boternity_skills::skill::source::RustSource::Crate {
            manifest_path: fixture("other-world").join("Cargo.toml"),
        },
        &build_options(),
    )
    .unwrap()
    .wasm;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"MZ\x90\x00 definitely not wasm".to_vec(),
            "not a WebAssembly binary",
        ),
        (
            "truncated",
            echo[..echo.len() / 3].to_vec(),
            "invalid WebAssembly",
        ),
        (
            "other-world",
            other,
            "imports `acme:calc/clock`, which the executor does not provide",
        ),
        (
            "bare-module",
            wat::parse_str("(module (func (export \"execute\")))").unwrap(),
            "no component type metadata",
        ),
        (
            "not-a-stub",
            br#"{"name": "json"}"#.to_vec(),
            "JSON that is not a boternity stub marker",
        ),
    ];
    for (name, bytes, expected) in cases {
        let dir = binary_skill(&bad, name, Some(&bytes));
        assert_refused(&store, &dir, &options(), expected);
    }
    // Over the size cap: refused before it is read (a sparse file costs nothing).
    let dir = binary_skill(&bad, "oversized", None);
    let file = std::fs::File::create(dir.join("skill.wasm")).unwrap();
    file.set_len(boternity_skills::skill::validate::MAX_WASM_BYTES + 1)
        .unwrap();
    assert_refused(&store, &dir, &options(), "over the 33554432-byte limit");
}

#[tokio::test]
async fn a_failed_upgrade_keeps_the_previous_version_running() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    // v2 of echo-skill does not compile (from another folder: forced).
    let v2 = copy_fixture("echo-skill", &tmp.path().join("v2"), "echo-skill");
    rename_package(&v2, "echo-upgrade");
    std::fs::write(v2.join("src/lib.rs"), "this is not rust").unwrap();
    let forced = InstallOptions {
        force: true,
        ..options()
    };
    assert_refused(
        &store,
        &v2,
        &forced,
        "cargo build failed for `echo-upgrade`",
    );
    std::fs::write(v2.join("src/lib.rs"), "wit_bindgen::generate!({ world: \"skill-plugin\", path: \"wit\" });\nfn oops() -> u8 { \"text\" }\n").unwrap();
    assert_refused(&store, &v2, &forced, "error[E0308]");
    assert_eq!(
        run_installed(&store, "echo-skill", "still").await,
        Ok("ECHO: STILL".into())
    );
}

#[test]
fn concurrent_installs_of_one_skill_leave_one_consistent_version() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let versions = [
        binary_skill(
            &tmp.path().join("a"),
            "racer",
            Some(&component("echo-skill")),
        ),
        binary_skill(
            &tmp.path().join("b"),
            "racer",
            Some(&component("bare-full")),
        ),
    ];
    let executor = Executor::new().unwrap();
    // Two folders: each replaces the other only with `force`.
    let forced = InstallOptions {
        force: true,
        ..options()
    };
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (store, dir, executor, forced) = (&store, &versions[i % 2], &executor, &forced);
            scope.spawn(move || {
                install::install(&common::context(), store, dir, forced, Some(executor)).unwrap();
            });
        }
    });
    let dir = store.skill_dir("racer").unwrap();
    let wasm = std::fs::read(dir.join("skill.wasm")).unwrap();
    let provenance = store.get("racer").unwrap().provenance.unwrap();
    assert_eq!(provenance.wasm.unwrap().sha256, sha256_hex(&wasm));
    assert_eq!(
        provenance.cwasm.unwrap().sha256,
        sha256_hex(&std::fs::read(dir.join("skill.cwasm")).unwrap())
    );
    // Nothing staged or half-removed is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(store.skills_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("racer")]);
}

#[test]
fn list_and_remove_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_echo(tmp.path());
    let out = boternity()
        .args(["list", "--message-format", "json", "--store"])
        .arg(store.root())
        .output()
        .unwrap();
    let row = json_line(stdout(&out).trim());
    assert_eq!(row["name"], "echo-skill");
    assert_eq!(row["binary"], "component");
    assert_eq!(row["path_taken"], "validated");

    let out = boternity()
        .args(["remove", "../etc", "--store"])
        .arg(store.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid skill name"),
        "{}",
        stderr(&out)
    );

    let out = boternity()
        .args(["remove", "echo-skill", "--store"])
        .arg(store.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(store.list().unwrap().is_empty());
    let out = boternity()
        .args(["remove", "echo-skill", "--store"])
        .arg(store.root())
        .output()
        .unwrap();
    assert!(stderr(&out).contains("no skill named `echo-skill` is installed"));
}

/// `boternity <args> --store <store>`.
fn cli(store: &Path, args: &[&str]) -> std::process::Output {
    boternity()
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

fn cli_ok(store: &Path, args: &[&str]) -> std::process::Output {
    let out = cli(store, args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Runs `args`, expects exit 1 with each of `expected` in stderr, and the
/// store byte for byte as it was.
fn cli_refused(store: &Path, args: &[&str], expected: &[&str]) -> String {
    let before = snapshot(store);
    let out = cli(store, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {err}");
    for e in expected {
        assert!(err.contains(e), "{args:?}: expected `{e}` in:\n{err}");
    }
    assert_eq!(snapshot(store), before, "{args:?} changed the store");
    err
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository at `dir` holding `skills/<name>` with `wasm`; its URL.
fn repo_with(dir: &Path, name: &str, wasm: &[u8]) -> String {
    binary_skill(&dir.join("skills"), name, Some(wasm));
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "skills"]);
    format!("file://{}", dir.display())
}

/// A registry (`boternity precompile`'s output) at `dist` holding `name` with `wasm`.
fn registry_with(dir: &Path, name: &str, wasm: &[u8]) -> PathBuf {
    let reg = dir.join("registry");
    binary_skill(&reg, name, Some(wasm));
    let dist = dir.join("dist");
    let out = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(&dist)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dist
}

fn origin_kind(store: &Path, name: &str) -> String {
    let p = SkillStore::new(store)
        .get(name)
        .unwrap()
        .provenance
        .unwrap();
    serde_json::to_value(p.origin.unwrap()).unwrap()["kind"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A registry entry or a git skill must not silently replace a skill of the
/// same name installed from somewhere else (nor a folder another folder's):
/// refused by the one commit every install goes through, naming what it
/// would replace; same-origin reinstalls replace as before; `--force` replaces.
#[tokio::test]
async fn a_skill_of_another_origin_is_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = &tmp.path().canonicalize().unwrap();
    let store = SkillStore::new(tmp.join("store"));
    let victim = binary_skill(&tmp.join("a"), "victim", Some(&component("echo-skill")));
    let other = binary_skill(&tmp.join("b"), "victim", Some(&component("bare-full")));
    install_with(&store, &victim, &options()).unwrap();

    // The library: another folder is refused, naming both origins.
    let folder = |p: &Path| format!("the folder {}", p.display());
    assert_refused(
        &store,
        &other,
        &options(),
        &format!(
            "`victim` is already installed from {}; installing it from {} would replace it and \
             delete its data folder: remove it first, or force the replacement",
            folder(&victim),
            folder(&other)
        ),
    );
    // The same folder again: a reinstall.
    let again = install_with(&store, &victim, &options()).unwrap();
    assert!(again.replaced);
    assert!(
        again.notes.iter().all(|n| !n.contains("forced")),
        "{:?}",
        again.notes
    );

    // The CLI says how to proceed, in both formats.
    let root = store.root();
    let other_arg = other.to_str().unwrap();
    cli_refused(
        root,
        &["install", other_arg],
        &[
            &folder(&victim),
            &folder(&other),
            "hint: pass --force to replace it",
        ],
    );
    let out = cli(root, &["install", other_arg, "--message-format", "json"]);
    let v = json_line(stdout(&out).trim());
    assert_eq!(v["reason"], "install-failed");
    assert!(v["error"].as_str().unwrap().contains("pass --force"), "{v}");

    // From git, at another URL: refused; then the other way round.
    let url = repo_with(&tmp.join("repo"), "victim", &component("bare-full"));
    cli_refused(
        root,
        &["install", "--git", &url, "victim"],
        &[
            &folder(&victim),
            &format!("{url} (skills/victim)"),
            "--force",
        ],
    );
    let git_store = tmp.join("git-store");
    cli_ok(&git_store, &["install", "--git", &url, "victim"]);
    cli_refused(
        &git_store,
        &["install", victim.to_str().unwrap()],
        &[
            &format!("already installed from {url} (skills/victim)"),
            &folder(&victim),
            "--force",
        ],
    );
    let url2 = repo_with(&tmp.join("repo2"), "victim", &component("echo-skill"));
    cli_refused(
        &git_store,
        &["install", "--git", &url2, "victim"],
        &[
            &format!("{url} (skills/victim)"),
            &format!("{url2} (skills/victim)"),
        ],
    );
    // The same repository and path again (a reinstall) is fine.
    cli_ok(&git_store, &["install", "--git", &url, "victim"]);

    // From a registry; and from another registry.
    let dist = registry_with(&tmp.join("reg"), "victim", &component("bare-full"));
    let dist_arg = dist.to_str().unwrap();
    cli_refused(
        root,
        &["install", "victim", "--registry", dist_arg],
        &[
            &folder(&victim),
            &format!("the registry {dist_arg}"),
            "--force",
        ],
    );
    let reg_store = tmp.join("reg-store");
    cli_ok(&reg_store, &["install", "victim", "--registry", dist_arg]);
    cli_ok(&reg_store, &["install", "victim", "--registry", dist_arg]);
    let dist2 = registry_with(&tmp.join("reg2"), "victim", &component("echo-skill"));
    cli_refused(
        &reg_store,
        &["install", "victim", "--registry", dist2.to_str().unwrap()],
        &[&format!("the registry {dist_arg}"), "--force"],
    );

    // sync: a lock naming `victim` from git does not replace the folder's.
    let lock = git_store.join("skills.lock");
    let lock_arg = lock.to_str().unwrap();
    cli_refused(
        root,
        &["sync", "--lock", lock_arg],
        &[&folder(&victim), &format!("{url} (skills/victim)"), "force"],
    );
    assert_eq!(origin_kind(root, "victim"), "folder");

    // --force replaces, and says what it replaced.
    let out = cli_ok(root, &["install", "--git", &url, "victim", "--force"]);
    assert!(
        stderr(&out).contains(&format!(
            "replaced `victim` installed from {} (forced)",
            folder(&victim)
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(origin_kind(root, "victim"), "git");
    assert_eq!(
        run_installed(&store, "victim", "stressed").await,
        Ok("desserts".into())
    );
    cli_ok(root, &["install", victim.to_str().unwrap(), "--force"]);
    cli_ok(root, &["sync", "--lock", lock_arg, "--force"]);
    assert_eq!(origin_kind(root, "victim"), "git");
    cli_ok(
        root,
        &["install", "victim", "--registry", dist_arg, "--force"],
    );
    assert_eq!(origin_kind(root, "victim"), "registry");
    let mut forced = options();
    forced.force = true;
    let installed = install_with(&store, &other, &forced).unwrap();
    assert!(installed.replaced);
    assert!(
        installed
            .notes
            .iter()
            .any(|n| n.contains(&format!("installed from the registry {dist_arg}"))),
        "{:?}",
        installed.notes
    );
}

/// A skill that can read and write its data folder (the hostile fixture's
/// component), under `parent/<name>`.
fn data_skill(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: Keeps notes.\nmetadata:\n  skill-type: tool\n  capabilities: [read_file, write_file]\n---\n"),
    )
    .unwrap();
    std::fs::write(dir.join("skill.wasm"), component("hostile")).unwrap();
    dir
}

/// `run <name> --input <input>`: the skill's answer, or its error text.
fn run_cli(store: &Path, name: &str, input: &str) -> Result<String, String> {
    let out = cli(store, &["run", name, "--input", input]);
    if out.status.success() {
        Ok(stdout(&out).trim_end().to_string())
    } else {
        Err(stderr(&out))
    }
}

const DATA_GRANTS: [&str; 4] = ["--grant", "read_file", "--grant", "write_file"];

fn install_data_skill(store: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["install", dir.to_str().unwrap()];
    args.extend(DATA_GRANTS);
    args.extend(extra);
    cli_ok(store, &args)
}

/// A skill's private files belong to its install: removal deletes them
/// (unless kept, and then only for a reinstall from the same origin), a
/// skill of another origin under the name starts empty, a same-origin
/// upgrade keeps them.
#[test]
fn a_skill_never_inherits_another_skills_data() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let data = SkillStore::new(&store).data_dir("notes");
    let a = data_skill(&tmp.path().join("a"), "notes");
    let b = data_skill(&tmp.path().join("b"), "notes");
    let not_there = |answer: Result<String, String>| {
        let err = answer.expect_err("the file must not be there");
        assert!(err.contains("cannot read `secret.txt`"), "{err}");
    };

    // A same-origin upgrade keeps the data.
    install_data_skill(&store, &a, &[]);
    assert_eq!(
        run_cli(&store, "notes", "write-file secret.txt a-private"),
        Ok("written".into())
    );
    install_data_skill(&store, &a, &[]);
    assert_eq!(
        run_cli(&store, "notes", "read-file secret.txt"),
        Ok("a-private".into())
    );

    // Removed: its data goes with it; B under the same name finds nothing.
    let out = cli_ok(&store, &["remove", "notes"]);
    assert!(stderr(&out).contains("Deleted"), "{}", stderr(&out));
    assert!(!data.exists());
    install_data_skill(&store, &b, &[]);
    not_there(run_cli(&store, "notes", "read-file secret.txt"));

    // Replaced by force: B's data is deleted, A starts empty.
    assert_eq!(
        run_cli(&store, "notes", "write-file secret.txt b-private"),
        Ok("written".into())
    );
    let out = install_data_skill(&store, &a, &["--force"]);
    assert!(
        stderr(&out).contains("held another install's data; deleted"),
        "{}",
        stderr(&out)
    );
    not_there(run_cli(&store, "notes", "read-file secret.txt"));

    // --keep-data keeps it for a reinstall from the same origin only.
    assert_eq!(
        run_cli(&store, "notes", "write-file secret.txt a-kept"),
        Ok("written".into())
    );
    let out = cli_ok(&store, &["remove", "notes", "--keep-data"]);
    assert!(
        stderr(&out).contains("only a reinstall from the same origin"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("secret.txt")).unwrap(),
        "a-kept"
    );
    install_data_skill(&store, &a, &[]);
    assert_eq!(
        run_cli(&store, "notes", "read-file secret.txt"),
        Ok("a-kept".into())
    );

    cli_ok(&store, &["remove", "notes", "--keep-data"]);
    install_data_skill(&store, &b, &[]);
    not_there(run_cli(&store, "notes", "read-file secret.txt"));
    assert!(!data.join("secret.txt").exists());
    // Nothing of it is left anywhere in the store.
    let everything = snapshot(&store);
    assert!(
        everything.iter().all(
            |(path, bytes)| !String::from_utf8_lossy(bytes).contains("a-kept")
                && !path.to_string_lossy().contains(".removing-")
        ),
        "{:?}",
        everything.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );

    // A data folder an older version's removal left (no record of whose it
    // is) is not handed to the next skill under the name either.
    cli_ok(&store, &["remove", "notes"]);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("secret.txt"), "orphan").unwrap();
    install_data_skill(&store, &a, &[]);
    not_there(run_cli(&store, "notes", "read-file secret.txt"));
}

/// An upgrade from the same origin keeps what the installer granted (and the
/// data): `update` and `sync` take no grants. An `install` states them anew.
#[test]
fn an_upgrade_keeps_the_grants_and_an_install_states_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = SkillStore::new(&store_dir);
    let repo = tmp.path().join("repo");
    let dir = data_skill(&repo.join("skills"), "notes");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let url = format!("file://{}", repo.display());
    let mut args = vec!["install", "--git", &url, "notes"];
    args.extend(DATA_GRANTS);
    cli_ok(&store_dir, &args);
    assert_eq!(
        run_cli(&store_dir, "notes", "write-file kept.txt mine"),
        Ok("written".into())
    );

    let text = std::fs::read_to_string(dir.join("SKILL.md")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        text.replace("Keeps notes.", "Keeps notes, v2."),
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let out = cli_ok(&store_dir, &["update", "notes"]);
    assert!(stderr(&out).contains("Updated"), "{}", stderr(&out));
    let installed = store.get("notes").unwrap();
    assert!(
        installed
            .manifest
            .as_ref()
            .unwrap()
            .description
            .contains("v2"),
        "updated"
    );
    assert!(
        installed
            .provenance
            .as_ref()
            .unwrap()
            .notes
            .iter()
            .all(|n| !n.contains("forced"))
    );
    assert_eq!(
        run_cli(&store_dir, "notes", "read-file kept.txt"),
        Ok("mine".into())
    );

    // The library keeps them by default on a same-origin reinstall…
    let other = tmp.path().join("lib-store");
    let lib_store = SkillStore::new(&other);
    let folder = data_skill(&tmp.path().join("folder"), "notes");
    let mut granting = options();
    granting.grants.capabilities = [Capability::ReadFile].into_iter().collect();
    install_with(&lib_store, &folder, &granting).unwrap();
    let again = install_with(&lib_store, &folder, &options()).unwrap();
    assert!(again.granted.capabilities.contains(&Capability::ReadFile));
    assert!(
        again
            .notes
            .iter()
            .any(|n| n == "kept the grants of the installed version")
    );
    // …and an `install` states them: without the flags, they are gone.
    cli_ok(&store_dir, &["install", "--git", &url, "notes"]);
    let err = run_cli(&store_dir, "notes", "read-file kept.txt").unwrap_err();
    assert!(err.contains("needs the `read_file` capability"), "{err}");
}

/// Every line a `--message-format json` run printed on stdout, each a JSON
/// object with a `reason`, valid against that message's schema.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|line| {
            // Parsed and checked against the message's schema.
            json_line(line)
        })
        .collect()
}

/// The one `command-failed` line of a failed run (exit 1).
fn command_failed(out: &std::process::Output, command: &str) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let lines = json_lines(out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines.into_iter().next().unwrap();
    assert_eq!(line["reason"], "command-failed", "{line}");
    assert_eq!(line["command"], command, "{line}");
    assert!(
        line["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{line}"
    );
    line
}

/// `boternity <args> --message-format json`, no store.
fn json_cli(args: &[&str]) -> std::process::Output {
    boternity()
        .args(args)
        .args(["--message-format", "json"])
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_speaks_json_failures_included() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    // A prompt skill: installed without a build.
    let src = tmp.path().join("src/notes");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("SKILL.md"),
        "---\nname: notes\ndescription: Take notes.\n---\nTake notes.\n",
    )
    .unwrap();
    let json = ["--message-format", "json"];
    fn with_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &["--message-format", "json"][..]].concat()
    }
    let lines = json_lines(&cli_ok(&store, &with_json(&["install", &path(&src)])));
    assert_eq!(lines[0]["reason"], "skill-installed");

    // update: a folder install has nothing to follow.
    let lines = json_lines(&cli_ok(&store, &with_json(&["update", "notes"])));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["reason"], "skill-updated");
    assert_eq!(lines[0]["name"], "notes");
    assert_eq!(lines[0]["outcome"], "not-git");
    assert!(lines[0]["from"].is_null() && lines[0]["error"].is_null());
    assert!(json_lines(&cli_ok(&store, &with_json(&["update", "--all"]))).is_empty());

    // sync with the store's own lock: nothing to do.
    let lines = json_lines(&cli_ok(&store, &with_json(&["sync"])));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let finished = &lines[0];
    assert_eq!(finished["reason"], "sync-finished");
    assert_eq!(finished["skills"], 1);
    assert_eq!(finished["unchanged"], serde_json::json!(["notes"]));
    assert_eq!(finished["installed"], serde_json::json!([]));
    assert_eq!(finished["extra"], serde_json::json!([]));
    assert!(finished["lock"].as_str().unwrap().ends_with("skills.lock"));
    // Into another store: a folder is not fetched, so sync fails.
    let lock = path(&store.join("skills.lock"));
    let other = tmp.path().join("other");
    command_failed(&cli(&other, &with_json(&["sync", "--lock", &lock])), "sync");

    // remove, then remove again (and a bad name): one command-failed each.
    let lines = json_lines(&cli_ok(&store, &with_json(&["remove", "notes"])));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["reason"], "skill-removed");
    assert_eq!(lines[0]["name"], "notes");
    assert_eq!(lines[0]["store"], path(&store));
    assert_eq!(lines[0]["data"], "none");
    let failed = command_failed(&cli(&store, &with_json(&["remove", "notes"])), "remove");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no skill named `notes` is installed"),
        "{failed}"
    );
    assert!(failed["hint"].is_null(), "{failed}");
    command_failed(&cli(&store, &with_json(&["remove", "../etc"])), "remove");

    // keygen: one unencrypted key, one encrypted; never over a key.
    let key = tmp.path().join("registry.key");
    let out = json_cli(&["keygen", "--out", &path(&key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let written = &lines[0];
    assert_eq!(written["reason"], "key-written");
    assert_eq!(written["secret_key"], path(&key));
    assert_eq!(written["public_key"], format!("{}.pub", path(&key)));
    assert_eq!(written["encrypted"], false);
    let key_id = written["key_id"].as_str().unwrap().to_string();
    assert!(!key_id.is_empty());
    assert!(
        written["public_key_base64"]
            .as_str()
            .unwrap()
            .starts_with("RW")
    );
    command_failed(&json_cli(&["keygen", "--out", &path(&key)]), "keygen");
    let locked = tmp.path().join("locked.key");
    let out = boternity()
        .args(["keygen", "--out", &path(&locked), "--password-env", "PW"])
        .args(json)
        .env("PW", "hunter2")
        .output()
        .unwrap();
    assert_eq!(json_lines(&out)[0]["encrypted"], true, "{}", stderr(&out));

    // index merge, sign, verify, yank.
    let shard = tmp.path().join("shard.json");
    std::fs::write(
        &shard,
        r#"{"skills":[{"name":"notes","version":"1.0.0","status":"ok"}]}"#,
    )
    .unwrap();
    let index = tmp.path().join("index.json");
    let out = json_cli(&["index", "merge", &path(&shard), "-o", &path(&index)]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?} {}", stderr(&out));
    assert_eq!(lines[0]["reason"], "index-merged");
    assert_eq!(lines[0]["output"], path(&index));
    assert_eq!(
        (lines[0]["inputs"].clone(), lines[0]["skills"].clone()),
        (1.into(), 1.into())
    );
    assert!(lines[0]["index"].is_null());
    // Without -o the merged index is the message's.
    let lines = json_lines(&json_cli(&["index", "merge", &path(&shard)]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["index"]["skills"][0]["name"], "notes");

    let out = json_cli(&["index", "sign", &path(&index), "--key", &path(&key)]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?} {}", stderr(&out));
    let signed = &lines[0];
    assert_eq!(signed["reason"], "index-signed");
    assert_eq!(signed["key_id"], key_id.as_str());
    assert!(Path::new(signed["signature"].as_str().unwrap()).is_file());
    // An encrypted key without its password: the hint names the flag.
    let failed = command_failed(
        &json_cli(&["index", "sign", &path(&index), "--key", &path(&locked)]),
        "index sign",
    );
    assert!(
        failed["hint"].as_str().unwrap().contains("--password-env"),
        "{failed}"
    );

    let public = format!("{}.pub", path(&key));
    let lines = json_lines(&json_cli(&[
        "index",
        "verify",
        &path(&index),
        "--key",
        &public,
    ]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["reason"], "index-verified");
    assert_eq!(lines[0]["key_id"], key_id.as_str());
    assert_eq!(lines[0]["serial"], signed["serial"]);
    assert_eq!(lines[0]["expired"], false);
    // The secret key is not a public key.
    command_failed(
        &json_cli(&["index", "verify", &path(&index), "--key", &path(&key)]),
        "index verify",
    );

    let out = json_cli(&[
        "index",
        "yank",
        &path(&index),
        "notes@1.0.0",
        "--reason",
        "leaks",
        "--key",
        &path(&key),
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?} {}", stderr(&out));
    assert_eq!(lines[0]["reason"], "index-yanked");
    assert_eq!(lines[0]["name"], "notes");
    assert_eq!(lines[0]["version"], "1.0.0");
    assert_eq!(lines[0]["yanked"], "leaks");
    assert_eq!(lines[0]["signed"], true);
    assert_eq!(lines[1]["reason"], "index-signed");
    let lines = json_lines(&json_cli(&[
        "index",
        "yank",
        &path(&index),
        "notes@1.0.0",
        "--undo",
    ]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]["yanked"].is_null());
    assert_eq!(lines[0]["signed"], false);
    assert_eq!(
        lines[0]["removed_signature"],
        format!("{}.minisig", path(&index))
    );
    command_failed(
        &json_cli(&["index", "yank", &path(&index), "nobody@1.0.0", "--undo"]),
        "index yank",
    );

    // new-skill.
    let lines = json_lines(&json_cli(&[
        "new-skill",
        "demo",
        "--path",
        &path(tmp.path()),
    ]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["reason"], "skill-created");
    assert_eq!(lines[0]["path"], path(&tmp.path().join("demo")));
    command_failed(
        &json_cli(&["new-skill", "demo", "--path", &path(tmp.path())]),
        "new-skill",
    );
}
