//! `precompile` on a fixture registry (good, broken, stub-needing,
//! pre-compiled and prompt skills): the index, the exit code, the cache,
//! byte-identical rebuilds from two paths, shards, and installing from the
//! result.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use boternity_skills::digest::sha256_hex;
use boternity_skills::pipeline::PathTaken;
use boternity_skills::registry::index::{Index, IndexEntry, Status};
use common::*;

/// The skills `registry` holds, by name.
const REGISTRY_SKILLS: [&str; 6] = [
    "bare-full",
    "be-kind",
    "broken-skill",
    "echo-skill",
    "needs-stub",
    "shipped-echo",
];

/// A registry with every kind of skill, in nested folders.
fn registry(root: &Path) -> PathBuf {
    let reg = root.join("registry");
    copy_fixture("echo-skill", &reg.join("team-a"), "echo-skill");
    copy_fixture("bare-full", &reg.join("team-b"), "bare-full");
    let broken = copy_fixture("echo-skill", &reg.join("team-b"), "broken-skill");
    let manifest = std::fs::read_to_string(broken.join("SKILL.md")).unwrap();
    std::fs::write(
        broken.join("SKILL.md"),
        manifest.replace("name: echo-skill", "name: broken-skill"),
    )
    .unwrap();
    rename_package(&broken, "broken-skill");
    std::fs::write(broken.join("src/lib.rs"), "wit_bindgen::generate!({ world: \"skill-plugin\", path: \"wit\" });\nstruct S;\nimpl Guest for S {}\nexport!(S);\n").unwrap();
    let shipped = reg.join("shipped-echo");
    std::fs::create_dir_all(&shipped).unwrap();
    std::fs::write(shipped.join("SKILL.md"), "---\nname: shipped-echo\ndescription: Pre-compiled.\nmetadata:\n  skill-type: tool\n  version: 2.0.0\n---\n").unwrap();
    std::fs::write(shipped.join("skill.wasm"), component("echo-skill")).unwrap();
    let stub = reg.join("needs-stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(stub.join("SKILL.md"), "---\nname: needs-stub\ndescription: Nothing to build.\nmetadata:\n  skill-type: tool\n---\nStub body.\n").unwrap();
    let prompt = reg.join("prompts/be-kind");
    std::fs::create_dir_all(&prompt).unwrap();
    std::fs::write(
        prompt.join("SKILL.md"),
        "---\nname: be-kind\ndescription: A prompt.\n---\nBe kind.\n",
    )
    .unwrap();
    reg
}

fn precompile(reg: &Path, out: &Path, extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let out = boternity()
        .arg("precompile")
        .arg(reg)
        .arg("--out")
        .arg(out)
        .arg("--target-dir")
        .arg(skill_target_dir())
        .args(["--message-format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let lines = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, lines)
}

fn entry<'a>(index: &'a Index, name: &str) -> &'a IndexEntry {
    index
        .skills
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not in index"))
}

#[test]
fn a_registry_is_precompiled_indexed_cached_and_installable() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let out = tmp.path().join("out");

    let (run, lines) = precompile(&reg, &out, &[]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "a failed skill fails the run: {}",
        stderr(&run)
    );
    // One JSON object per skill, then the summary.
    assert_eq!(lines.len(), 7);
    assert!(
        lines[..6]
            .iter()
            .all(|l| l["reason"] == "skill-precompiled")
    );
    let summary = &lines[6];
    assert_eq!(summary["reason"], "precompile-finished");
    assert_eq!(
        (
            summary["ok"].as_u64(),
            summary["skipped"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(5), Some(0), Some(1))
    );

    let index = Index::read(&out.join("index.json")).unwrap();
    let names: Vec<&str> = index.skills.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, REGISTRY_SKILLS);
    for (name, path) in [
        ("echo-skill", PathTaken::Built),
        ("bare-full", PathTaken::Built),
        ("shipped-echo", PathTaken::Validated),
        ("needs-stub", PathTaken::Stub),
    ] {
        let e = entry(&index, name);
        assert_eq!((e.status, e.path_taken), (Status::Ok, Some(path)), "{name}");
        let rel = e.path.as_deref().unwrap();
        assert_eq!(rel, format!("{name}/{}/skill.wasm", e.version));
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(
            e.sha256.as_deref(),
            Some(sha256_hex(&bytes).as_str()),
            "{name}"
        );
        assert_eq!(e.size, Some(bytes.len() as u64));
        assert!(
            out.join(rel)
                .with_file_name(".boternity-provenance.json")
                .is_file()
        );
    }
    assert_eq!(entry(&index, "shipped-echo").version, "2.0.0");
    let broken = entry(&index, "broken-skill");
    assert_eq!(broken.status, Status::Failed);
    assert!(broken.sha256.is_none() && broken.path.is_none());
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .contains("not all trait items implemented"),
        "{:?}",
        broken.error
    );
    // A prompt skill is published too: its files, no binary.
    let prompt = entry(&index, "be-kind");
    assert_eq!(
        (prompt.status, prompt.path.as_ref(), prompt.path_taken),
        (Status::Ok, None, Some(PathTaken::Prompt))
    );
    assert!(prompt.files.iter().any(|f| f.path == "SKILL.md"));
    assert!(out.join("be-kind/0.0.0/SKILL.md").is_file());

    // Unchanged: nothing is rebuilt.
    let echo_wasm = out.join("echo-skill/1.2.0/skill.wasm");
    let modified = std::fs::metadata(&echo_wasm).unwrap().modified().unwrap();
    let (_, _) = precompile(&reg, &out, &[]);
    let again = Index::read(&out.join("index.json")).unwrap();
    for name in ["echo-skill", "bare-full", "shipped-echo", "needs-stub"] {
        assert_eq!(entry(&again, name).status, Status::Cached, "{name}");
        assert_eq!(entry(&again, name).sha256, entry(&index, name).sha256);
    }
    assert_eq!(
        std::fs::metadata(&echo_wasm).unwrap().modified().unwrap(),
        modified
    );

    // One skill changes: only it is rebuilt. --force rebuilds everything.
    let lib = reg.join("team-b/bare-full/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text.replace("\"reversing\"", "\"reversing!\"")).unwrap();
    let (_, _) = precompile(&reg, &out, &[]);
    let changed = Index::read(&out.join("index.json")).unwrap();
    assert_eq!(entry(&changed, "bare-full").status, Status::Ok);
    assert_ne!(
        entry(&changed, "bare-full").sha256,
        entry(&index, "bare-full").sha256
    );
    assert_eq!(entry(&changed, "echo-skill").status, Status::Cached);
    let (_, _) = precompile(&reg, &out, &["--force"]);
    let forced = Index::read(&out.join("index.json")).unwrap();
    assert_eq!(entry(&forced, "echo-skill").status, Status::Ok);
    assert_eq!(
        entry(&forced, "echo-skill").sha256,
        entry(&index, "echo-skill").sha256
    );

    // --no-stub: the skill that needs a stub fails instead.
    let (run, _) = precompile(&reg, &tmp.path().join("out-nostub"), &["--no-stub"]);
    assert_eq!(run.status.code(), Some(1));
    let strict = Index::read(&tmp.path().join("out-nostub/index.json")).unwrap();
    assert!(
        entry(&strict, "needs-stub")
            .error
            .as_deref()
            .unwrap()
            .contains("stubs are not allowed")
    );

    // --cwasm: components also get a signed .cwasm (stubs cannot).
    let with_cwasm = tmp.path().join("out-cwasm");
    let (_, _) = precompile(&reg, &with_cwasm, &["--cwasm"]);
    assert!(with_cwasm.join("echo-skill/1.2.0/skill.cwasm").is_file());
    assert!(!with_cwasm.join("needs-stub/0.0.0/skill.cwasm").exists());
    let provenance =
        boternity_skills::store::provenance::Provenance::read(&with_cwasm.join("echo-skill/1.2.0"))
            .unwrap()
            .unwrap();
    let record = provenance.cwasm.unwrap();
    assert_eq!(
        record.sha256,
        sha256_hex(&std::fs::read(with_cwasm.join("echo-skill/1.2.0/skill.cwasm")).unwrap())
    );

    // Install from the result: checked against the index, then validated.
    let store = tmp.path().join("store");
    let installed = boternity()
        .args(["install", "echo-skill", "--registry"])
        .arg(&out)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", stderr(&installed));
    let ran = boternity()
        .args(["run", "echo-skill", "--input", "from registry", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(stdout(&ran), "ECHO: FROM REGISTRY\n");

    let before = snapshot(&store);
    let shipped = out.join("shipped-echo/2.0.0/skill.wasm");
    let mut bytes = std::fs::read(&shipped).unwrap();
    bytes.push(0);
    std::fs::write(&shipped, bytes).unwrap();
    let tampered = boternity()
        .args(["install", "shipped-echo", "--registry"])
        .arg(&out)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(tampered.status.code(), Some(1));
    assert!(
        stderr(&tampered).contains("does not match the index"),
        "{}",
        stderr(&tampered)
    );
    assert_eq!(snapshot(&store), before);
    let missing = boternity()
        .args(["install", "broken-skill", "--registry"])
        .arg(&out)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        stderr(&missing).contains("did not build"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn the_same_source_gives_byte_identical_components_from_two_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for (i, parent) in ["first/registry", "somewhere/else/entirely"]
        .iter()
        .enumerate()
    {
        let reg = tmp.path().join(parent);
        copy_fixture("echo-skill", &reg, "echo-skill");
        let out = tmp.path().join(format!("out-{i}"));
        // A clean build each time: its own, empty target directory.
        let run = boternity()
            .arg("precompile")
            .arg(&reg)
            .arg("--out")
            .arg(&out)
            .arg("--target-dir")
            .arg(tmp.path().join(format!("target-{i}")))
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr(&run));
        let wasm = std::fs::read(out.join("echo-skill/1.2.0/skill.wasm")).unwrap();
        digests.push(sha256_hex(&wasm));
    }
    assert_eq!(digests[0], digests[1]);
    // And the same bytes as a build in the shared test target directory.
    assert_eq!(digests[0], sha256_hex(&component("echo-skill")));
}

#[test]
fn shards_cover_the_registry_exactly_once_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let mut shard_indexes = Vec::new();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let out = tmp.path().join(format!("shard-{k}"));
        let _ = precompile(&reg, &out, &["--shard", &format!("{k}/3")]);
        let index_path = out.join("index.json");
        let index = Index::read(&index_path).unwrap();
        seen.extend(index.skills.iter().map(|e| e.name.clone()));
        shard_indexes.push(index_path);
    }
    seen.sort();
    assert_eq!(seen, REGISTRY_SKILLS);

    let merged_path = tmp.path().join("merged.json");
    let merge = boternity()
        .args(["index", "merge"])
        .args(&shard_indexes)
        .arg("-o")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", stderr(&merge));
    let merged = Index::read(&merged_path).unwrap();
    assert_eq!(merged.skills.len(), 6);
    assert_eq!(
        entry(&merged, "echo-skill").sha256.as_deref(),
        Some(sha256_hex(&component("echo-skill")).as_str())
    );

    // The same split every time.
    let out = tmp.path().join("shard-1-again");
    let _ = precompile(&reg, &out, &["--shard", "1/3"]);
    let first: Vec<String> = Index::read(&shard_indexes[0])
        .unwrap()
        .skills
        .into_iter()
        .map(|e| e.name)
        .collect();
    let again: Vec<String> = Index::read(&out.join("index.json"))
        .unwrap()
        .skills
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(first, again);

    let bad = boternity()
        .args(["precompile"])
        .arg(&reg)
        .args(["--out", "x", "--shard", "4/3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("is not a shard"));
}

/// A compiler cache such as sccache is a server the sandbox would have to let
/// the build reach: the wrapper runs only for builds the user chose to run
/// unconfined.
#[test]
fn rustc_wrapper_is_honoured_only_when_building_unconfined() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    copy_fixture("echo-skill", &reg, "echo-skill");
    let log = tmp.path().join("wrapper.log");
    let wrapper = tmp.path().join("wrapper.sh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexec \"$@\"\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let run = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--target-dir")
        .arg(tmp.path().join("target"))
        .env("RUSTC_WRAPPER", &wrapper)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!log.exists(), "a confined build ran the wrapper");

    let run = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(tmp.path().join("out-unconfined"))
        .arg("--target-dir")
        .arg(tmp.path().join("target-unconfined"))
        .arg("--allow-unconfined-build")
        .env("RUSTC_WRAPPER", &wrapper)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--crate-name echo_skill"), "{calls}");
}
