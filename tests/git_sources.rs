//! `install --git`, `outdated`, `update`, `verify` and `sync` against real git
//! servers the tests start: a bare repository served by `git daemon` on
//! 127.0.0.1, and the same over `file://`, shaped like anthropics/skills
//! (`skills/<name>/` with bundled files, a `template/` whose name differs
//! from its folder, `.claude-plugin/marketplace.json`), plus a Tool skill with
//! Rust source and one with a shipped binary.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::*;

const EXPECTED: [&str; 5] = ["docx", "echo-binary", "echo-skill", "pdf", "template-skill"];

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
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
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn prompt_skill(dir: &Path, name: &str, body: &str) {
    write(
        &dir.join("SKILL.md"),
        &format!("---\nname: {name}\ndescription: The {name} skill.\n---\n{body}\n"),
    );
}

/// A working repository shaped like anthropics/skills, with one commit.
fn skills_repo(parent: &Path) -> PathBuf {
    let work = parent.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    prompt_skill(&work.join("skills/docx"), "docx", "Write Word files.");
    write(
        &work.join("skills/docx/scripts/convert.sh"),
        "#!/bin/sh\necho converted\n",
    );
    std::fs::set_permissions(
        work.join("skills/docx/scripts/convert.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(&work.join("skills/docx/references/ooxml.md"), "# OOXML\n");
    prompt_skill(&work.join("skills/pdf"), "pdf", "Read PDFs.");
    prompt_skill(&work.join("template"), "template-skill", "A template.");
    // A Tool skill with Rust source (its Cargo.lock shipped).
    copy_dir(&fixture("echo-skill"), &work.join("skills/echo-skill"));
    // A Tool skill with a shipped binary.
    let bin = work.join("skills/echo-binary");
    write(
        &bin.join("SKILL.md"),
        "---\nname: echo-binary\ndescription: Echo, shipped built.\nmetadata:\n  skill-type: tool\n---\nEcho.\n",
    );
    std::fs::write(bin.join("skill.wasm"), component("echo-skill")).unwrap();
    write(
        &work.join(".claude-plugin/marketplace.json"),
        r#"{"name": "test-skills", "plugins": [
            {"name": "document-skills", "source": "./", "skills": ["./skills/docx", "./skills/pdf"]}
        ]}"#,
    );
    write(&work.join("README.md"), "# test skills\n");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "-a", "v1.0", "-m", "v1.0"]);
    work
}

/// `bare/skills.git`, a bare clone of `work`, and a way to push to it.
fn bare_clone(work: &Path, parent: &Path) -> PathBuf {
    let served = parent.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let bare = served.join("skills.git");
    git(
        parent,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}

fn push(work: &Path, bare: &Path) {
    git(work, &["push", "-q", bare.to_str().unwrap(), "--all"]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "--tags"]);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `git daemon` serving a folder of bare repositories; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn serve(base: &Path) -> Daemon {
        let port = free_port();
        // `git-daemon` itself: `git daemon` would leave it running when killed.
        let exec_path = git(Path::new("/"), &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            .arg("--reuseaddr")
            .arg(base)
            // Quiet about the readiness probe's connections.
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start git daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon { child, port }
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// `boternity <args> --store <store>`, building into the shared test target.
fn cli(store: &Path, args: &[&str]) -> Output {
    let mut cmd = boternity();
    cmd.args(args).arg("--store").arg(store);
    let builds = matches!(args.first(), Some(&"install" | &"update" | &"sync"));
    if builds {
        cmd.arg("--target-dir").arg(skill_target_dir());
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed:\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn names(lines: &[serde_json::Value]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

fn installed(store: &Path) -> Vec<serde_json::Value> {
    json_lines(&ok(cli(store, &["list", "--message-format", "json"])))
}

/// Runs a failing command and checks its message and that the store is
/// byte for byte what it was.
fn refused(store: &Path, args: &[&str], expected: &[&str]) {
    let before = snapshot(store);
    let out = cli(store, args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} should fail: {err}");
    for e in expected {
        assert!(err.contains(e), "{args:?}: expected `{e}` in:\n{err}");
    }
    assert_eq!(snapshot(store), before, "{args:?} changed the store");
}

#[test]
fn discovery_lists_exactly_the_skills_and_installs_by_name_and_all() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let url = file_url(&work);
    let store = tmp.path().join("store");

    let listed = json_lines(&ok(cli(
        &store,
        &[
            "install",
            "--git",
            &url,
            "--list",
            "--message-format",
            "json",
        ],
    )));
    assert_eq!(
        names(&listed),
        EXPECTED.iter().map(|s| s.to_string()).collect()
    );
    let template = listed
        .iter()
        .find(|l| l["name"] == "template-skill")
        .unwrap();
    assert_eq!(template["path"], "template");
    assert!(!store.exists(), "--list installs nothing");

    // Several skills and no choice: an error listing them.
    refused(
        &store,
        &["install", "--git", &url],
        &["holds 5 skills", "echo-binary", "skills/pdf"],
    );

    ok(cli(&store, &["install", "--git", &url, "docx"]));
    let rows = installed(&store);
    assert_eq!(names(&rows), BTreeSet::from(["docx".to_string()]));
    let origin = &rows[0]["origin"];
    assert_eq!(origin["kind"], "git");
    assert_eq!(origin["url"], url.as_str());
    assert_eq!(origin["path"], "skills/docx");
    assert_eq!(
        origin["commit"],
        git(&work, &["rev-parse", "HEAD"]).as_str()
    );
    let script = store.join("skills/docx/scripts/convert.sh");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
    assert!(mode & 0o111 != 0, "the script keeps its exec bit");
    let human = stdout(&ok(cli(&store, &["list"])));
    assert!(
        human.contains("git file://") && human.contains("skills/docx @ "),
        "{human}"
    );

    ok(cli(&store, &["install", "--git", &url, "--all"]));
    let rows = installed(&store);
    assert_eq!(
        names(&rows),
        EXPECTED.iter().map(|s| s.to_string()).collect()
    );
    let taken = |n: &str| {
        rows.iter().find(|r| r["name"] == n).unwrap()["path_taken"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(taken("echo-skill"), "built");
    assert_eq!(taken("echo-binary"), "validated");
    assert_eq!(taken("pdf"), "prompt");
    let lock = std::fs::read_to_string(store.join("skills.lock")).unwrap();
    for name in EXPECTED {
        assert!(lock.contains(&format!("[skills.{name}]")), "{lock}");
    }
    assert!(!lock.contains("created_at"), "no timestamps: {lock}");
}

#[test]
fn a_tag_a_branch_holding_a_slash_and_a_full_commit_are_installed_from_git_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "-b", "feature/new-pdf"]);
    prompt_skill(&work.join("skills/pdf"), "pdf", "Read PDFs, better.");
    git(&work, &["commit", "-q", "-am", "pdf on a branch"]);
    let branch = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
    let bare = bare_clone(&work, tmp.path());
    push(&work, &bare);
    let daemon = Daemon::serve(bare.parent().unwrap());
    let url = daemon.url("skills.git");
    let store = tmp.path().join("store");

    ok(cli(
        &store,
        &["install", "--git", &url, "--tag", "v1.0", "docx"],
    ));
    ok(cli(
        &store,
        &[
            "install",
            "--git",
            &url,
            "--branch",
            "feature/new-pdf",
            "pdf",
        ],
    ));
    ok(cli(
        &store,
        &[
            "install", "--git", &url, "--rev", &first, "--path", "template",
        ],
    ));
    let rows = installed(&store);
    let origin = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap()["origin"].clone();
    assert_eq!(origin("docx")["requested"], "refs/tags/v1.0");
    assert_eq!(origin("docx")["commit"], first.as_str());
    assert_eq!(origin("pdf")["requested"], "refs/heads/feature/new-pdf");
    assert_eq!(origin("pdf")["commit"], branch.as_str());
    assert_eq!(origin("template-skill")["requested"], first.as_str());
    assert_eq!(origin("template-skill")["path"], "template");
    let pdf = std::fs::read_to_string(store.join("skills/pdf/SKILL.md")).unwrap();
    assert!(pdf.contains("better"), "{pdf}");
}

#[test]
fn a_new_commit_is_outdated_update_moves_to_it_and_a_rev_install_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let first = git(&work, &["rev-parse", "HEAD"]);
    let bare = bare_clone(&work, tmp.path());
    let daemon = Daemon::serve(bare.parent().unwrap());
    let url = daemon.url("skills.git");
    let store = tmp.path().join("store");
    ok(cli(&store, &["install", "--git", &url, "docx"]));
    ok(cli(
        &store,
        &["install", "--git", &url, "--rev", &first, "pdf"],
    ));

    prompt_skill(
        &work.join("skills/docx"),
        "docx",
        "Write Word files, version two.",
    );
    prompt_skill(&work.join("skills/pdf"), "pdf", "Read PDFs, version two.");
    git(&work, &["commit", "-q", "-am", "two"]);
    let second = git(&work, &["rev-parse", "HEAD"]);
    push(&work, &bare);

    let lines = json_lines(&ok(cli(&store, &["outdated", "--message-format", "json"])));
    let line = |n: &str| lines.iter().find(|l| l["name"] == n).unwrap().clone();
    assert_eq!(line("docx")["status"], "outdated");
    assert_eq!(line("docx")["installed"], first.as_str());
    assert_eq!(line("docx")["latest"], second.as_str());
    assert_eq!(line("pdf")["status"], "pinned");

    let out = ok(cli(&store, &["update", "--all"]));
    let err = stderr(&out);
    assert!(err.contains("`pdf` is pinned"), "{err}");
    let docx = std::fs::read_to_string(store.join("skills/docx/SKILL.md")).unwrap();
    assert!(docx.contains("version two"), "{docx}");
    let pdf = std::fs::read_to_string(store.join("skills/pdf/SKILL.md")).unwrap();
    assert!(!pdf.contains("version two"), "{pdf}");
    let lines = json_lines(&ok(cli(&store, &["outdated", "--message-format", "json"])));
    assert!(
        lines
            .iter()
            .any(|l| l["name"] == "docx" && l["status"] == "up-to-date")
    );
    let lock = std::fs::read_to_string(store.join("skills.lock")).unwrap();
    assert!(lock.contains(&second) && lock.contains(&first), "{lock}");
}

#[test]
fn sync_reproduces_every_file_byte_for_byte_from_the_cache_and_refuses_a_changed_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let bare = bare_clone(&work, tmp.path());
    let daemon = Daemon::serve(bare.parent().unwrap());
    let url = daemon.url("skills.git");
    let a = tmp.path().join("a");
    ok(cli(&a, &["install", "--git", &url, "--all"]));
    let lock = a.join("skills.lock");

    // The server is gone: every commit is cached, so nothing needs it.
    drop(daemon);
    let b = tmp.path().join("b");
    ok(cli(&b, &["sync", "--lock", lock.to_str().unwrap()]));
    let files = |store: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        snapshot(&store.join("skills"))
            .into_iter()
            .filter(|(p, _)| !p.ends_with(".boternity-provenance.json"))
            .collect()
    };
    assert_eq!(files(&a), files(&b));
    assert_eq!(
        std::fs::read(&lock).unwrap(),
        std::fs::read(b.join("skills.lock")).unwrap()
    );
    // Again: all already as locked.
    let out = ok(cli(&b, &["sync", "--lock", lock.to_str().unwrap()]));
    assert!(
        stderr(&out).contains("0 installed, 5 already as locked"),
        "{}",
        stderr(&out)
    );
    // --offline reinstalls from the cache too.
    ok(cli(&b, &["install", "--git", &url, "pdf", "--offline"]));

    // A hash that differs: nothing is installed.
    let text = std::fs::read_to_string(&lock).unwrap();
    let docx_md = text
        .lines()
        .skip_while(|l| *l != "[skills.docx.files]")
        .find(|l| l.starts_with("\"SKILL.md\""))
        .unwrap()
        .to_string();
    let tampered = tmp.path().join("tampered.lock");
    std::fs::write(
        &tampered,
        text.replace(&docx_md, &format!("\"SKILL.md\" = \"{}\"", "0".repeat(64))),
    )
    .unwrap();
    let c = tmp.path().join("c");
    refused(
        &c,
        &["sync", "--lock", tampered.to_str().unwrap()],
        &["`docx` does not match the lock", "SKILL.md"],
    );
}

#[test]
fn verify_names_each_changed_missing_and_added_file() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let store = tmp.path().join("store");
    ok(cli(
        &store,
        &["install", "--git", &file_url(&work), "docx", "pdf"],
    ));
    ok(cli(&store, &["verify"]));
    let docx = store.join("skills/docx");
    std::fs::write(docx.join("references/ooxml.md"), "edited\n").unwrap();
    std::fs::remove_file(docx.join("scripts/convert.sh")).unwrap();
    std::fs::write(docx.join("extra.txt"), "new\n").unwrap();
    let out = cli(&store, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for line in [
        "changed: references/ooxml.md",
        "missing: scripts/convert.sh",
        "added:   extra.txt",
        "Verified `pdf`",
    ] {
        assert!(err.contains(line), "`{line}` in:\n{err}");
    }
    let out = cli(&store, &["verify", "docx", "--message-format", "json"]);
    let row = &json_lines(&out)[0];
    assert_eq!(row["ok"], false);
    assert_eq!(row["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn every_bad_input_is_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let work = skills_repo(tmp.path());
    let url = file_url(&work);
    let bare = bare_clone(&work, tmp.path());
    let daemon = Daemon::serve(bare.parent().unwrap());
    let store = tmp.path().join("store");
    // A store holding a skill from a local folder, so "unchanged" means something.
    let local = tmp.path().join("local/docx");
    prompt_skill(&local, "docx", "A local docx.");
    ok(cli(&store, &["install", local.to_str().unwrap()]));

    let dead = format!("git://127.0.0.1:{}/skills.git", free_port());
    refused(
        &store,
        &["install", "--git", &dead, "--all"],
        &["ls-remote of", "127.0.0.1"],
    );
    refused(
        &store,
        &["install", "--git", &daemon.url("nope.git"), "--all"],
        &["nope.git"],
    );
    refused(
        &store,
        &[
            "install",
            "--git",
            &daemon.url("skills.git"),
            "--branch",
            "mian",
            "pdf",
        ],
        &["no branch `mian`", "main (branch)"],
    );
    refused(
        &store,
        &["install", "--git", &url, "--tag", "v1.1", "pdf"],
        &["no tag `v1.1`", "v1.0 (tag)"],
    );
    refused(
        &store,
        &["install", "--git", &url, "--rev", &"0".repeat(40), "pdf"],
        &[&format!("commit {} is not in", "0".repeat(40))],
    );
    refused(
        &store,
        &["install", "--git", &url, "--path", "../..", "--all"],
        &["leads outside"],
    );
    refused(
        &store,
        &["install", "--git", &url, "--path", "nowhere", "--all"],
        &["does not exist"],
    );
    refused(
        &store,
        &["install", "--git", &url, "nosuch"],
        &["no skill named `nosuch`", "docx"],
    );

    // Collides with the local docx: refused unless --force.
    refused(
        &store,
        &["install", "--git", &url, "docx"],
        &["`docx` is already installed from the folder", "--force"],
    );

    // Hostile URLs: refused before git runs; nothing is executed.
    let marker = tmp.path().join("pwned");
    let upload = format!("--upload-pack=touch {}", marker.display());
    refused(
        &store,
        &["install", &format!("--git={upload}"), "--all"],
        &["starts with `-`"],
    );
    refused(
        &store,
        &["install", "--git", &upload, "--all"],
        &["starts with `-`"],
    );
    let ext = format!("ext::sh -c touch% {}", marker.display());
    refused(
        &store,
        &["install", "--git", &ext, "--all"],
        &["`ext::` runs a remote helper"],
    );
    refused(
        &store,
        &["install", "--git", "ftp://example.com/r", "--all"],
        &["`ftp` transport"],
    );
    assert!(!marker.exists(), "a hostile URL ran a command");

    // Repositories with something wrong in them.
    let bad = |name: &str, setup: &dyn Fn(&Path)| -> String {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        setup(&dir);
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "x", "--allow-empty"]);
        file_url(&dir)
    };
    let empty = bad("no-skill", &|d| write(&d.join("README.md"), "nothing\n"));
    refused(
        &store,
        &["install", "--git", &empty, "--all"],
        &["no skill (a folder holding SKILL.md)"],
    );
    let link = bad("symlink", &|d| {
        write(&d.join("secret.txt"), "secret\n");
        prompt_skill(&d.join("skills/leaky"), "leaky", "Leaks.");
        std::os::unix::fs::symlink("../../secret.txt", d.join("skills/leaky/secret")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("skills/leaky/host")).unwrap();
    });
    refused(
        &store,
        &["install", "--git", &link, "leaky"],
        &["points outside the skill folder"],
    );
    let lfs = bad("lfs", &|d| {
        write(
            &d.join("skills/big/SKILL.md"),
            "---\nname: big\ndescription: LFS.\nmetadata:\n  skill-type: tool\n---\nx\n",
        );
        write(
            &d.join("skills/big/skill.wasm"),
            "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
        );
    });
    refused(
        &store,
        &["install", "--git", &lfs, "big"],
        &["skills/big/skill.wasm is a Git LFS pointer"],
    );

    // --force replaces the local docx with the repository's.
    ok(cli(&store, &["install", "--git", &url, "docx", "--force"]));
    let docx = std::fs::read_to_string(store.join("skills/docx/SKILL.md")).unwrap();
    assert!(docx.contains("Write Word files."), "{docx}");
}

#[test]
fn a_rust_skill_without_cargo_lock_keeps_the_resolved_one_and_sync_builds_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("nolock");
    copy_fixture("echo-skill", &work, "echo-skill");
    std::fs::remove_file(work.join("echo-skill/Cargo.lock")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "no lock"]);
    let a = tmp.path().join("a");
    let out = ok(cli(&a, &["install", "--git", &file_url(&work)]));
    assert!(
        stderr(&out).contains("no Cargo.lock shipped"),
        "{}",
        stderr(&out)
    );
    let resolved = std::fs::read(a.join("skills/echo-skill/Cargo.lock")).unwrap();
    let lock = std::fs::read_to_string(a.join("skills.lock")).unwrap();
    assert!(
        lock.contains("cargo_lock = ") && lock.contains("\"Cargo.lock\" = "),
        "{lock}"
    );
    ok(cli(&a, &["verify"]));

    let b = tmp.path().join("b");
    ok(cli(
        &b,
        &["sync", "--lock", a.join("skills.lock").to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(b.join("skills/echo-skill/Cargo.lock")).unwrap(),
        resolved
    );
    assert_eq!(
        std::fs::read(a.join("skills/echo-skill/skill.wasm")).unwrap(),
        std::fs::read(b.join("skills/echo-skill/skill.wasm")).unwrap()
    );
    assert_eq!(
        std::fs::read(a.join("skills.lock")).unwrap(),
        std::fs::read(b.join("skills.lock")).unwrap()
    );
}
