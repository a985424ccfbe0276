//! The foundation end to end: scaffold, build with cargo, componentize,
//! validate against the world, run in wasmtime — with real skills.

use crate::common;

use boternity_skills::build;
use boternity_skills::build::Toolchain;
use boternity_skills::build::componentize;
use boternity_skills::digest::sha256_hex;
use boternity_skills::executor::{Executor, Invocation, SkillSource};
use boternity_skills::skill::source::RustSource;
use boternity_skills::skill::validate::{self, ValidateError};
use boternity_skills::skill::world::WorldMismatch;
use common::*;

#[test]
fn the_template_scaffolds_builds_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boternity()
        .args(["new-skill", "word-count", "--path"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let skill = tmp.path().join("word-count");

    // The quickstart's build, as a user runs it: over the dependency layer
    // (the tests' cache, where `cargo xtask demo` built the same template's).
    let out = boternity().arg("build-skill").arg(&skill).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let wasm = skill.join("skill.wasm");

    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "one two\nthree"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "words=3 lines=2 chars=13\n");
    assert!(
        stderr(&out).contains("counting for bot boternity"),
        "{}",
        stderr(&out)
    );

    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "   "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("give me some text to count"),
        "{}",
        stderr(&out)
    );

    let out = boternity().arg("validate").arg(&wasm).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn new_skill_refuses_bad_names_and_existing_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boternity()
        .args(["new-skill", "Not_Valid", "--path"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lowercase letters, digits and hyphens"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    let out = boternity()
        .args(["new-skill", "taken", "--path"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn build_skill_json_reports_path_size_and_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    let output = tmp.path().join("dist/echo.wasm");
    let out = build_skill(&skill)
        .arg("-o")
        .arg(&output)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {lines:?}");
    let report = json_line(lines[0]);
    let bytes = std::fs::read(&output).unwrap();
    assert_eq!(report["reason"], "skill-built");
    assert_eq!(report["name"], "echo-skill");
    assert_eq!(report["version"], "1.2.0");
    assert_eq!(report["path_taken"], "built");
    assert_eq!(report["source"], "crate");
    assert_eq!(report["path"], output.to_str().unwrap());
    assert_eq!(report["size"], bytes.len());
    assert_eq!(report["sha256"], sha256_hex(&bytes));
    // Rust std imports WASI even in a skill that calls no host function.
    let imports = report["imports"].as_array().unwrap();
    assert!(
        imports.contains(&"wasi:cli/environment@0.2.6".into()),
        "{imports:?}"
    );

    // A failure is one JSON object too, with the reason.
    let out = boternity()
        .arg("build-skill")
        .arg(tmp.path().join("nowhere"))
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json_line(stdout(&out).trim());
    assert_eq!(report["reason"], "build-failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("not a skill folder")
    );
}

#[test]
fn output_is_exact_and_errors_go_to_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("echo.wasm");
    std::fs::write(&wasm, component("echo-skill")).unwrap();
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "hello wasm"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ECHO: HELLO WASM\n");

    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "fail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("echo-skill refuses to echo `fail`"));

    // The input can come from stdin.
    let mut child = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"from stdin").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "ECHO: FROM STDIN\n");
}

#[test]
fn a_skill_written_against_the_seed_world_builds_validates_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("seed-greeter", tmp.path(), "seed-greeter");
    // Its wit/skill-world.wit is boternity's seed file, verbatim.
    let out = build_skill(&skill).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let wasm = skill.join("skill.wasm");
    let out = boternity().arg("validate").arg(&wasm).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "Ada", "--bot-name", "Jarvis"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, Ada! -- Jarvis (skill)\n");
    // Not granted read_env: the host said no, and the skill logged the reason.
    assert!(
        stderr(&out).contains("needs the `read_env` capability"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_component_of_another_world_is_rejected_with_every_difference() {
    let toolchain = Toolchain::detect(&common::context().host).unwrap();
    let built = build::build(
        &common::context().folders,
        &toolchain,
        "other-world",
        &RustSource::Crate {
            manifest_path: fixture("other-world").join("Cargo.toml"),
        },
        &build_options(),
    )
    .unwrap();
    let err = validate::validate_component(&built.wasm).unwrap_err();
    let ValidateError::WorldMismatch(diffs) = &err else {
        panic!("expected a world mismatch, got {err}");
    };
    assert!(diffs.contains(&WorldMismatch::MissingExport {
        name: "get-description".into(),
        expected: "func() -> string".into()
    }));
    assert!(diffs.contains(&WorldMismatch::ExportSignature {
        name: "execute".into(),
        expected: "func(input: string) -> result<string, string>".into(),
        found: "func(input: string) -> string".into(),
    }));
    assert!(diffs.contains(&WorldMismatch::UnexpectedExport { name: "add".into() }));
    assert!(diffs.contains(&WorldMismatch::UnknownImport {
        name: "acme:calc/clock".into()
    }));
    assert_eq!(diffs.len(), 4, "{diffs:?}");

    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("other.wasm");
    std::fs::write(&wasm, &built.wasm).unwrap();
    let out = boternity()
        .arg("validate")
        .arg(&wasm)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = json_line(stdout(&out).trim());
    assert_eq!(report["valid"], false);
    assert_eq!(report["differences"].as_array().unwrap().len(), 4);

    // build-skill refuses it too, listing the differences.
    let out = build_skill(&fixture("other-world"))
        .arg("-o")
        .arg(tmp.path().join("never.wasm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing export `get-description"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("never.wasm").exists());
}

#[tokio::test]
async fn core_modules_are_componentized_and_run() {
    let executor = Executor::new().unwrap();
    for target in ["wasm32-unknown-unknown", "wasm32-wasip1"] {
        let module = core_module("echo-skill", target);
        assert_eq!(
            validate::classify(&module).unwrap(),
            validate::BinaryKind::CoreModule
        );
        let info = componentize::inspect(&module).unwrap();
        assert!(info.has_world_metadata);
        assert_eq!(info.uses_preview1, target == "wasm32-wasip1");
        let component = componentize::componentize(&module).unwrap();
        validate::validate_component(&component).unwrap_or_else(|e| panic!("{target}: {e}"));
        let skill = executor.load(SkillSource::Bytes(&component)).unwrap();
        let outcome = executor
            .run(&skill, Invocation::new("echo-skill", "core"))
            .await
            .unwrap();
        assert_eq!(outcome.result, Ok("ECHO: CORE".to_string()), "{target}");
    }
}

#[test]
fn a_core_module_without_world_metadata_is_refused() {
    let module = wat::parse_str("(module (func (export \"execute\")))").unwrap();
    assert!(matches!(
        componentize::componentize(&module),
        Err(componentize::ComponentizeError::NoWorldMetadata)
    ));
}

#[test]
fn garbage_truncated_and_empty_files_are_rejected_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let echo = component("echo-skill");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage.wasm",
            b"this is not wasm at all".to_vec(),
            "not a WebAssembly binary",
        ),
        ("empty.wasm", Vec::new(), "the file is empty"),
        (
            "truncated.wasm",
            echo[..echo.len() / 2].to_vec(),
            "invalid WebAssembly",
        ),
        ("header.wasm", echo[..6].to_vec(), "invalid WebAssembly"),
        (
            "json.wasm",
            br#"{"hello": "world"}"#.to_vec(),
            "JSON that is not a boternity stub marker",
        ),
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "core WebAssembly module, not a component",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let validate = boternity().arg("validate").arg(&path).output().unwrap();
        let run = boternity()
            .arg("run")
            .arg(&path)
            .args(["--input", "x"])
            .output()
            .unwrap();
        for (command, out) in [("validate", validate), ("run", run)] {
            assert!(!out.status.success(), "{command} {name} succeeded");
            let err = stderr(&out);
            assert!(err.contains(expected), "{command} {name}: {err}");
            assert!(!err.contains("panicked"), "{command} {name}: {err}");
        }
    }
}

#[test]
fn a_missing_target_is_reported_with_the_command_that_fixes_it() {
    let tmp = tempfile::tempdir().unwrap();
    // A rustc whose sysroot has no wasm32-wasip2 standard library.
    let sysroot = tmp.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib")).unwrap();
    let fake = tmp.path().join("rustc");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'rustc 1.95.0 (fake)'; else echo '{}'; fi\n",
            sysroot.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = boternity()
        .arg("build-skill")
        .arg(fixture("echo-skill"))
        .env("RUSTC", &fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `rustup target add wasm32-wasip2`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn compiler_errors_reach_the_user_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    // Its own package name: the shared target dir must not mix it up with the
    // good echo-skill other tests build at the same time.
    rename_package(&skill, "echo-broken");
    let lib = skill.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        text.replace("input.to_uppercase()", "input.to_uppercase() + 1u8"),
    )
    .unwrap();
    let out = build_skill(&skill).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cargo build failed for `echo-broken`"),
        "{err}"
    );
    assert!(err.contains("error[E0308]"), "{err}");
    assert!(err.contains("--> src/lib.rs:16:"), "{err}");
    assert!(!skill.join("skill.wasm").exists());
}

#[test]
fn build_skill_takes_a_bare_lib_rs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("bare-minimal", tmp.path(), "bare-minimal");
    let out = build_skill(&skill)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json_line(stdout(&out).trim());
    assert_eq!(report["source"], "bare lib.rs");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("export!(VowelCounter);")
    );
    let out = boternity()
        .arg("run")
        .arg(skill.join("skill.wasm"))
        .args(["--input", "queueing"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "vowels=5\n");
}

#[test]
fn builds_see_no_host_secrets_and_stop_at_the_time_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    rename_package(&skill, "echo-env-probe");
    // A build script that fails if it can see the host's secret, and sleeps on request.
    std::fs::write(
        skill.join("build.rs"),
        "fn main() {\n    if let Ok(v) = std::env::var(\"SUPER_SECRET_TOKEN\") { panic!(\"build saw the secret {v}\"); }\n    if std::path::Path::new(\"sleep-please\").exists() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n}\n",
    )
    .unwrap();
    let out = build_skill(&skill)
        .env("SUPER_SECRET_TOKEN", "hunter2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    std::fs::write(skill.join("sleep-please"), "").unwrap();
    std::fs::write(
        skill.join("build.rs"),
        std::fs::read_to_string(skill.join("build.rs")).unwrap() + "\n// changed\n",
    )
    .unwrap();
    let toolchain = Toolchain::detect(&common::context().host).unwrap();
    let started = std::time::Instant::now();
    let err = build::build(
        &common::context().folders,
        &toolchain,
        "echo-skill",
        &RustSource::Crate {
            manifest_path: skill.join("Cargo.toml"),
        },
        &build::BuildOptions {
            timeout: std::time::Duration::from_secs(5),
            ..build_options()
        },
    )
    .unwrap_err();
    assert!(matches!(err, build::BuildError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("took over 5s and was stopped"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
