//! `precompile` on a fixture registry (good, broken, stub-needing,
//! pre-compiled and prompt skills): the index, the exit code, the cache,
//! byte-identical rebuilds from two paths, shards, and installing from the
//! result; a reused output folder changed to name another skill refused by
//! the name rule; serials that grow through precompile, merge and sign.

use crate::common;

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
    let lines = stdout(&out).lines().map(json_line).collect();
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
        // The default build: each copy in a target directory of its own
        // (boternity's, keyed by the folder's path), its crate compiled from
        // its own path, over the dependency layer the tests share.
        let run = boternity()
            .arg("precompile")
            .arg(&reg)
            .arg("--out")
            .arg(&out)
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
    // Confined, the default way (over the tests' shared dependency layer):
    // the skill's own crate is compiled here, so a wrapper honoured would log.
    let run = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(tmp.path().join("out"))
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
        // The target directory of builds with the developer's cargo home:
        // its dependencies are fresh there, and this copy's crate (a path of
        // its own) is compiled through the wrapper.
        .arg("--target-dir")
        .arg(host_cargo_target_dir())
        .arg("--allow-unconfined-build")
        .env("RUSTC_WRAPPER", &wrapper)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--crate-name echo_skill"), "{calls}");
}

/// The name rule at precompile: an output folder reused from an earlier run
/// (a CI cache) whose SKILL.md was changed to name another skill, with its
/// provenance edited to match, is not listed as that entry: it fails.
#[test]
fn a_reused_output_naming_another_skill_fails_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    let skill = reg.join("innocent");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: innocent\ndescription: Harmless.\nmetadata:\n  version: 1.0.0\n---\nHi.\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let (run, _) = precompile(&reg, &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));

    // The poisoned cache: SKILL.md says `victim`, the record agrees.
    let entry_dir = out.join("innocent/1.0.0");
    let hijack = b"---\nname: victim\ndescription: Not harmless.\nmetadata:\n  version: 1.0.0\n---\nGotcha.\n";
    std::fs::write(entry_dir.join("SKILL.md"), hijack).unwrap();
    let record = entry_dir.join(".boternity-provenance.json");
    let mut provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    provenance["files"]["SKILL.md"] = serde_json::json!({
        "sha256": sha256_hex(hijack),
        "size": hijack.len(),
    });
    std::fs::write(&record, serde_json::to_vec_pretty(&provenance).unwrap()).unwrap();

    let (run, lines) = precompile(&reg, &out, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let line = &lines[0];
    assert_eq!(
        (&line["name"], &line["status"]),
        (&"innocent".into(), &"failed".into()),
        "{line}"
    );
    let error = line["error"].as_str().unwrap();
    for expect in [
        "name rule",
        "`innocent`",
        "innocent/1.0.0",
        "`victim`",
        "force a rebuild",
    ] {
        assert!(error.contains(expect), "expected `{expect}` in: {error}");
    }
    let index = Index::read(&out.join("index.json")).unwrap();
    assert_eq!(entry(&index, "innocent").status, Status::Failed);
    // --force rebuilds it from the source: the entry is right again.
    let (run, _) = precompile(&reg, &out, &["--force"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        std::fs::read_to_string(entry_dir.join("SKILL.md")).unwrap(),
        std::fs::read_to_string(skill.join("SKILL.md")).unwrap()
    );
}

/// The serial grows through every step of the CI flow (precompile, merge,
/// sign), and a signed index carries an expiry; unsigned output has none.
#[test]
fn serials_grow_through_precompile_merge_and_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    for name in ["alpha", "bravo"] {
        let dir = reg.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("SKILL.md"),
            format!("---\nname: {name}\ndescription: {name}.\n---\n{name}.\n"),
        )
        .unwrap();
    }
    let mut shards = Vec::new();
    for k in 1..=2 {
        let out = tmp.path().join(format!("shard-{k}"));
        let (run, _) = precompile(&reg, &out, &["--shard", &format!("{k}/2")]);
        assert!(run.status.success(), "{}", stderr(&run));
        let index = Index::read(&out.join("index.json")).unwrap();
        assert!(index.serial > 0 && index.expires.is_none(), "{index:?}");
        shards.push(out.join("index.json"));
    }
    let first = Index::read(&shards[0]).unwrap().serial;
    // A second run over the same output goes past the first.
    let (run, _) = precompile(&reg, &tmp.path().join("shard-1"), &["--shard", "1/2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let rerun = Index::read(&shards[0]).unwrap().serial;
    assert!(rerun > first, "{rerun} <= {first}");

    let merged_path = tmp.path().join("dist/index.json");
    std::fs::create_dir_all(merged_path.parent().unwrap()).unwrap();
    let merge = boternity()
        .args(["index", "merge"])
        .args(&shards)
        .arg("-o")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", stderr(&merge));
    let merged = Index::read(&merged_path).unwrap();
    let highest = shards
        .iter()
        .map(|s| Index::read(s).unwrap().serial)
        .max()
        .unwrap();
    assert!(merged.serial > highest, "{} <= {highest}", merged.serial);
    assert!(merged.expires.is_none());

    let key = tmp.path().join("registry.key");
    let keygen = boternity()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let sign = boternity()
        .args(["index", "sign"])
        .arg(&merged_path)
        .arg("--key")
        .arg(&key)
        .args(["--expires-in", "7d"])
        .output()
        .unwrap();
    assert!(sign.status.success(), "{}", stderr(&sign));
    let signed = Index::read(&merged_path).unwrap();
    assert!(signed.serial > merged.serial);
    let expires = signed.expires_at("i").unwrap().unwrap();
    let in_a_week = std::time::SystemTime::now() + std::time::Duration::from_secs(7 * 86400);
    let off = in_a_week
        .duration_since(expires)
        .unwrap_or_else(|e| e.duration());
    assert!(off < std::time::Duration::from_secs(120), "{off:?}");
    assert!(stderr(&sign).contains(&format!("serial {}", signed.serial)));
    let verify = boternity()
        .args(["index", "verify"])
        .arg(&merged_path)
        .arg("--key")
        .arg(tmp.path().join("registry.key.pub"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    // A merge over the signed index (e.g. in CI's next run) goes past it.
    let merge = boternity()
        .args(["index", "merge"])
        .args(&shards)
        .arg("--previous")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", stderr(&merge));
    let again: Index = serde_json::from_slice(&merge.stdout).unwrap();
    assert!(again.serial > signed.serial);
    for bad in ["0s", "20y", "soon"] {
        let out = boternity()
            .args(["index", "sign"])
            .arg(&merged_path)
            .arg("--key")
            .arg(&key)
            .args(["--expires-in", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}
