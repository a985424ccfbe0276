//! `boternity doctor`: every check reported, consistent with what the sandbox
//! probe finds, and problems named with a hint and a failing exit status.

use crate::common;

use common::{boternity, json_line, stdout};

fn doctor(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let out = boternity()
        .arg("doctor")
        .args(["--message-format", "json"])
        .args(args)
        .output()
        .unwrap();
    let value = json_line(stdout(&out).trim());
    (out, value)
}

/// The check named `check` of a doctor report.
fn check<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` check in {report}"))
}

fn status<'a>(report: &'a serde_json::Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

#[test]
fn doctor_reports_every_layer_and_agrees_with_the_probe() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (out, report) = doctor(&["--store", store.to_str().unwrap()]);
    assert_eq!(report["reason"], "doctor");
    for check in [
        "toolchain",
        "landlock",
        "seccomp",
        "namespaces",
        "store",
        "cache",
        "cargo home",
    ] {
        status(&report, check);
    }
    let support = boternity_skills::build::sandbox::probe();
    assert_eq!(report["can_build_confined"], support.can_confine());
    assert_eq!(
        status(&report, "landlock") == "ok",
        support.landlock_abi.is_some()
    );
    assert_eq!(status(&report, "namespaces") == "ok", support.namespaces());
    assert_eq!(status(&report, "store"), "ok");
    assert_eq!(out.status.success(), report["ok"] == true);

    // The toolchain it pinned, and where a build's configuration comes from.
    let detail = |name: &str| check(&report, name)["detail"].as_str().unwrap().to_string();
    let toolchain = boternity_skills::build::Toolchain::detect(&common::context().host).unwrap();
    let pinned = detail("toolchain pinned");
    assert!(
        pinned.contains(&toolchain.sysroot.display().to_string())
            && pinned.contains(&format!("RUSTUP_TOOLCHAIN={}", toolchain.name))
            && pinned.contains(&toolchain.cargo.display().to_string()),
        "{pinned}"
    );
    assert!(
        toolchain.cargo.starts_with(&toolchain.sysroot),
        "{toolchain:?}"
    );
    let configuration = detail("build configuration");
    for expected in [
        "private HOME",
        "rust-toolchain.toml",
        ".cargo/config.toml",
        "index.crates.io:443",
    ] {
        assert!(
            configuration.contains(expected),
            "{expected}: {configuration}"
        );
    }
}

#[test]
fn doctor_names_an_unusable_store_with_a_hint_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    // A store below a regular file can never be created.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let store = file.join("store");
    let (out, report) = doctor(&["--store", store.to_str().unwrap()]);
    assert_eq!(status(&report, "store"), "error");
    let store_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "store")
        .unwrap();
    assert!(
        store_check["detail"]
            .as_str()
            .unwrap()
            .contains("not writable"),
        "{store_check}"
    );
    assert!(store_check["hint"].is_string(), "{store_check}");
    assert_eq!(report["ok"], false);
    assert_eq!(out.status.code(), Some(1));

    // The human form says the same, one line per check.
    let human = boternity()
        .args(["doctor", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(1));
    let text = stdout(&human);
    assert!(text.contains("error  store"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}
