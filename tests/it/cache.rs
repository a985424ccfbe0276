//! The cache's budget and the build's disk watchdog, through the CLI:
//! `boternity cache info`, `gc` and `clean` on cache folders of the test's
//! own (never the shared test cache: a sweep there would take other tests'
//! target directories), eviction in the order boternity recorded uses, no
//! eviction of what a build (a real one, or a held guard) is using, the
//! sweep after a build; and a confined build that writes past its disk
//! limit stopped with an error that says so, while a caller's pre-filled
//! `--target-dir` survives a build.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use boternity_skills::cache::InUse;
use common::*;
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// A cache folder (and data folder) of this test's own.
struct Cache {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Cache {
    fn new() -> Cache {
        let tmp = tempfile::Builder::new()
            .prefix("boternity-cache-test-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("cache");
        std::fs::create_dir_all(&dir).unwrap();
        Cache { tmp, dir }
    }

    fn folders(&self) -> boternity_skills::Folders {
        boternity_skills::Folders::new(self.tmp.path().join("data"), &self.dir)
    }

    /// `boternity <args> --message-format json` over this cache folder.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = boternity();
        cmd.env("BOTERNITY_CACHE_DIR", &self.dir)
            .env("BOTERNITY_DATA_DIR", self.tmp.path().join("data"))
            .env_remove("BOTERNITY_CACHE_MAX_SIZE")
            .args(args)
            .args(["--message-format", "json"]);
        cmd
    }

    /// Runs `boternity <args>` and returns its one JSON message (checked
    /// against the schema).
    fn json(&self, args: &[&str]) -> Value {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        json_line(lines[0])
    }

    /// A target directory `targets/<key>` holding `bytes` of real files, its
    /// build-key stamp and its source copy, as a build leaves them.
    fn target(&self, key: &str, bytes: u64) -> PathBuf {
        let dir = self.folders().skill_target_dir(key);
        fill(&dir.join("wasm32-wasip2/release/deps"), bytes);
        std::fs::write(dir.with_file_name(format!("{key}.build-key")), "key").unwrap();
        let source = self.folders().sources_dir().join(key);
        std::fs::create_dir_all(source.join("src")).unwrap();
        std::fs::write(source.join("src/lib.rs"), "// source").unwrap();
        dir
    }

    /// A dependency layer `layers/<key>`.
    fn layer(&self, key: &str, bytes: u64) -> PathBuf {
        let dir = self.folders().layers_dir().join(key);
        fill(&dir.join("release/deps"), bytes);
        dir
    }
}

/// Writes `bytes` of real data into `dir/blob`.
fn fill(dir: &Path, bytes: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("blob"), vec![7u8; bytes as usize]).unwrap();
}

/// Records a use of `entry` as a build does (takes and drops its guard),
/// then waits out the file system clock's coarseness so that the next
/// record is later.
fn use_entry(entry: &Path) {
    drop(InUse::acquire(entry).unwrap());
    std::thread::sleep(Duration::from_millis(50));
}

fn paths(list: &Value) -> Vec<PathBuf> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| PathBuf::from(e["path"].as_str().unwrap()))
        .collect()
}

fn kind<'v>(info: &'v Value, name: &str) -> &'v Value {
    info["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == name)
        .unwrap_or_else(|| panic!("no kind {name} in {info}"))
}

#[test]
fn gc_removes_the_least_recently_used_first_down_to_the_budget() {
    let cache = Cache::new();
    let a = cache.target("a-0", 4 * MIB);
    let b = cache.target("b-0", 4 * MIB);
    let layer = cache.layer("serde-1", 4 * MIB);
    let c = cache.target("c-0", 4 * MIB);
    // Created a, b, layer, c; used in the order b, layer, a, c: the order of
    // creation (and of modification) is not what counts.
    for entry in [&b, &layer, &a, &c] {
        use_entry(entry);
    }
    // Room for two entries and a little: the two least recently used go.
    let sweep = cache.json(&["cache", "gc", "--max-size", "9M"]);
    assert_eq!(
        paths(&sweep["removed"]),
        vec![b.clone(), layer.clone()],
        "{sweep}"
    );
    assert_eq!(sweep["budget"], 9 * MIB);
    assert!(sweep["after_bytes"].as_u64().unwrap() <= 9 * MIB, "{sweep}");
    assert!(
        sweep["before_bytes"].as_u64().unwrap() >= 16 * MIB,
        "{sweep}"
    );
    assert!(paths(&sweep["in_use"]).is_empty());
    assert!(!b.exists() && !layer.exists());
    assert!(a.join("wasm32-wasip2/release/deps/blob").is_file());
    assert!(c.join("wasm32-wasip2/release/deps/blob").is_file());
    // With b went what only b's builds used: its build key and source copy.
    let folders = cache.folders();
    assert!(!b.with_file_name("b-0.build-key").exists());
    assert!(!folders.sources_dir().join("b-0").exists());
    assert!(folders.sources_dir().join("a-0").exists());

    // Under the budget: nothing to do.
    let again = cache.json(&["cache", "gc", "--max-size", "9M"]);
    assert!(paths(&again["removed"]).is_empty(), "{again}");
    // A use moves an entry to the back of the line: c, then a.
    use_entry(&a);
    let sweep = cache.json(&["cache", "gc", "--max-size", "5MiB"]);
    assert_eq!(paths(&sweep["removed"]), vec![c.clone()], "{sweep}");
    assert!(a.exists());
    // The budget from the environment, when gc is given none.
    let mut cmd = cache.command(&["cache", "gc"]);
    let out = cmd.env("BOTERNITY_CACHE_MAX_SIZE", "0").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep = json_line(stdout(&out).trim());
    assert_eq!(sweep["budget"], 0);
    assert_eq!(paths(&sweep["removed"]), vec![a.clone()], "{sweep}");
    // A size that does not read is refused by the flag.
    let out = cache
        .command(&["cache", "gc", "--max-size", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`lots` is not a size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn info_reports_every_kind_with_sizes_entries_and_last_use() {
    let cache = Cache::new();
    let folders = cache.folders();
    let used = cache.target("used-0", 2 * MIB);
    cache.target("never-0", MIB);
    cache.layer("wit-bindgen-1", 3 * MIB);
    fill(&folders.cargo_home().join("registry/cache"), MIB);
    fill(&folders.downloads_dir().join("sha256"), MIB);
    use_entry(&used);

    let mut cmd = cache.command(&["cache", "info"]);
    let out = cmd
        .env("BOTERNITY_CACHE_MAX_SIZE", "700M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let info = json_line(stdout(&out).trim());
    assert_eq!(info["cache_dir"], cache.dir.display().to_string());
    assert_eq!(info["budget"], 700 * MIB);
    let names: Vec<&str> = info["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "targets",
            "layers",
            "layer-plans",
            "shared-target",
            "sources",
            "fetched",
            "cargo-home",
            "git",
            "downloads",
            "compiled"
        ]
    );
    let targets = kind(&info, "targets");
    assert_eq!(targets["entries"], 2);
    let bytes = targets["bytes"].as_u64().unwrap();
    assert!((3 * MIB..4 * MIB).contains(&bytes), "{targets}");
    assert_eq!(targets["swept"], true);
    assert_eq!(targets["path"], folders.targets_dir().display().to_string());
    // The last use is boternity's record, RFC 3339, within this test's time.
    let last = targets["last_used"].as_str().unwrap();
    let last = humantime::parse_rfc3339(last).unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(last)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(600), "{last:?}");
    assert_eq!(kind(&info, "layers")["entries"], 1);
    assert_eq!(kind(&info, "sources")["entries"], 2);
    assert_eq!(kind(&info, "sources")["swept"], false);
    let cargo_home = kind(&info, "cargo-home");
    assert_eq!(cargo_home["entries"], 1);
    assert_eq!(cargo_home["swept"], false);
    assert!(cargo_home["bytes"].as_u64().unwrap() >= MIB);
    assert_eq!(kind(&info, "git")["entries"], 0);
    assert_eq!(kind(&info, "git")["bytes"], 0);
    let swept = info["swept_bytes"].as_u64().unwrap();
    assert!((6 * MIB..7 * MIB).contains(&swept), "{info}");
    assert!(info["total_bytes"].as_u64().unwrap() >= swept + 2 * MIB);

    // The same, for people: a table on stdout, the total on stderr.
    let out = boternity()
        .env("BOTERNITY_CACHE_DIR", &cache.dir)
        .args(["cache", "info"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("targets") && stdout(&out).contains("cargo-home"));
    assert!(stderr(&out).contains("10.0 GiB budget"), "{}", stderr(&out));
}

#[test]
fn clean_removes_every_rebuildable_thing_but_never_keys_serials_or_the_store() {
    let cache = Cache::new();
    let folders = cache.folders();
    cache.target("t-0", MIB);
    cache.layer("l-1", MIB);
    fill(&folders.shared_target_dir().join("release"), MIB);
    fill(&folders.cargo_home().join("registry/src"), MIB);
    fill(&folders.downloads_dir().join("sha256"), MIB);
    fill(&folders.compile_cache_dir(), MIB);
    fill(&folders.fetched_dir(), 0);
    let repo = folders.git_cache_dir().join("0123456789abcdef01234567");
    fill(&repo.join("db.git"), MIB);
    std::fs::write(repo.join("lock"), "").unwrap();
    // Not caches: the .cwasm signing key, the registries' serials, the store.
    std::fs::write(folders.cwasm_key(), "secret key").unwrap();
    fill(&folders.registry_state_dir(), 10);
    fill(&folders.data.join("skills/greeting"), 10);

    let cleaned = cache.json(&["cache", "clean"]);
    assert_eq!(cleaned["after_bytes"], 0, "{cleaned}");
    assert!(
        cleaned["before_bytes"].as_u64().unwrap() >= 7 * MIB,
        "{cleaned}"
    );
    let removed = paths(&cleaned["removed"]);
    for path in [
        folders.skill_target_dir("t-0"),
        folders.layers_dir().join("l-1"),
        folders.shared_target_dir(),
        folders.cargo_home(),
        folders.downloads_dir(),
        folders.compile_cache_dir(),
        folders.fetched_dir(),
        repo.clone(),
    ] {
        assert!(
            removed.contains(&path),
            "{} not removed: {cleaned}",
            path.display()
        );
    }
    // With its target directory went its source copy.
    for gone in [
        folders.skill_target_dir("t-0"),
        folders.sources_dir().join("t-0"),
        folders.layers_dir().join("l-1"),
        folders.shared_target_dir(),
        folders.cargo_home(),
        folders.downloads_dir(),
        folders.compile_cache_dir(),
        repo.join("db.git"),
    ] {
        assert!(!gone.exists(), "{} is still there", gone.display());
    }
    // The repository's lock stays: a fetch that holds it keeps holding the file it locked.
    assert!(repo.join("lock").is_file());
    assert_eq!(
        std::fs::read_to_string(folders.cwasm_key()).unwrap(),
        "secret key"
    );
    assert!(folders.registry_state_dir().join("blob").is_file());
    assert!(folders.data.join("skills/greeting/blob").is_file());
    let info = cache.json(&["cache", "info"]);
    assert_eq!(info["swept_bytes"], 0, "{info}");
}

#[test]
fn an_entry_whose_guard_is_held_is_never_evicted() {
    let cache = Cache::new();
    let held = cache.target("held-0", 2 * MIB);
    let layer = cache.layer("held-layer", 2 * MIB);
    let free = cache.target("free-0", 2 * MIB);
    // Held, as a build holds its target directory and the layer code its layer.
    let target_guard = InUse::acquire(&held).unwrap();
    let layer_guard = InUse::acquire(&layer).unwrap();
    let sweep = cache.json(&["cache", "gc", "--max-size", "0"]);
    assert_eq!(paths(&sweep["removed"]), vec![free.clone()], "{sweep}");
    let mut kept = paths(&sweep["in_use"]);
    kept.sort();
    let mut expected = vec![held.clone(), layer.clone()];
    expected.sort();
    assert_eq!(kept, expected);
    assert!(sweep["after_bytes"].as_u64().unwrap() >= 4 * MIB, "{sweep}");
    assert!(held.join("wasm32-wasip2/release/deps/blob").is_file());
    assert!(layer.join("release/deps/blob").is_file());
    // Nor by clean.
    let cleaned = cache.json(&["cache", "clean"]);
    assert!(paths(&cleaned["in_use"]).contains(&held), "{cleaned}");
    assert!(held.join("wasm32-wasip2/release/deps/blob").is_file());
    // A guard taken while another is held, and one taken after a sweep
    // removed the entry, both hold (the entry is the build's again).
    let second = InUse::acquire(&held).unwrap();
    drop((target_guard, layer_guard, second));
    let sweep = cache.json(&["cache", "gc", "--max-size", "0"]);
    assert_eq!(paths(&sweep["removed"]).len(), 2, "{sweep}");
    let again = InUse::acquire(&held).unwrap();
    let sweep = cache.json(&["cache", "gc", "--max-size", "0"]);
    assert!(paths(&sweep["removed"]).is_empty(), "{sweep}");
    drop(again);
}

/// A skill crate with no dependencies (so its build needs no network and
/// is quick) whose build script writes `script`'s body; it builds, but is
/// not a component of the skill world.
fn plain_skill(parent: &Path, name: &str, script: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: A test skill.\nmetadata:\n  skill-type: tool\n---\nTest.\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\nbuild = \"build.rs\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
    std::fs::write(
        dir.join("build.rs"),
        format!("fn main() {{\n{script}\n}}\n"),
    )
    .unwrap();
    dir
}

/// Waits for `child` at most `limit`, killing it past that.
fn wait_within(mut child: std::process::Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_running_build_keeps_its_target_directory_through_gc_and_is_swept_after() {
    let cache = Cache::new();
    let stale = cache.target("stale-0", MIB);
    use_entry(&stale);
    // The build script runs long enough for the sweep to meet the build.
    let skill = plain_skill(
        cache.tmp.path(),
        "slow-build",
        "    let out = std::path::PathBuf::from(std::env::var(\"OUT_DIR\").unwrap());\n    \
         std::fs::write(out.join(\"artifact\"), vec![1u8; 1 << 20]).unwrap();\n    \
         std::thread::sleep(std::time::Duration::from_secs(6));",
    );
    let mut cmd = cache.command(&["build-skill", skill.to_str().unwrap()]);
    // A budget of one byte: the sweep after the build removes what it used.
    cmd.env("BOTERNITY_CACHE_MAX_SIZE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Once the build holds its target directory (its in-use file is locked)…
    let targets = cache.folders().targets_dir();
    let started = Instant::now();
    let building = loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the build never started"
        );
        let held = std::fs::read_dir(&targets).ok().and_then(|listing| {
            listing.flatten().map(|e| e.path()).find(|p| {
                p.extension().is_some_and(|e| e == "use")
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("slow-build-")
                    && std::fs::File::open(p).is_ok_and(|f| {
                        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
                    })
            })
        });
        if let Some(use_file) = held {
            break use_file.with_extension("");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // …a sweep to nothing removes what is not in use, and keeps it.
    let sweep = cache.json(&["cache", "gc", "--max-size", "0"]);
    assert_eq!(paths(&sweep["removed"]), vec![stale.clone()], "{sweep}");
    assert_eq!(paths(&sweep["in_use"]), vec![building.clone()], "{sweep}");
    assert!(building.is_dir());

    let out = wait_within(child, Duration::from_secs(600));
    let text = stdout(&out);
    // cargo ran to its end: what fails is the world check of its output,
    // not a build whose folder went away.
    assert!(!out.status.success(), "{text}");
    let failed = json_line(text.lines().last().unwrap());
    assert_eq!(failed["reason"], "build-failed");
    let error = failed["error"].as_str().unwrap();
    assert!(!error.contains("cargo build failed"), "{error}");
    assert!(!error.contains("No such file"), "{error}");
    // The sweep after the build: its target directory, no longer in use,
    // is over the one-byte budget.
    assert!(!building.exists(), "the sweep after the build kept it");
    let info = cache.json(&["cache", "info"]);
    assert_eq!(kind(&info, "targets")["entries"], 0, "{info}");
}

#[test]
fn a_build_writing_past_its_disk_limit_is_stopped_and_says_so() {
    let cache = Cache::new();
    let skill = copy_fixture("hostile-build-huge-file", cache.tmp.path(), "huge-file");
    let limit = 64 * MIB;
    let limit_text = limit.to_string();
    let started = Instant::now();
    let out = cache
        .command(&[
            "build-skill",
            skill.to_str().unwrap(),
            "--max-target-bytes",
            &limit_text,
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    let failed = json_line(text.lines().last().unwrap());
    let error = failed["error"].as_str().unwrap();
    // What limit, where, what happened, what to do.
    let target_dir = cache.folders().targets_dir();
    for expected in [
        "the build of `hostile-build-huge-file` wrote ",
        &format!("over the {limit}-byte disk limit of one build: it was stopped"),
        &target_dir.display().to_string(),
        "boternity's own, was removed",
        "raise the limit with --max-target-bytes",
    ] {
        assert!(
            error.contains(expected),
            "`{expected}` missing from:\n{error}"
        );
    }
    assert!(!error.contains("no limit stopped it"), "{error}");
    // Stopped near the limit, not after gigabytes: no file is much larger,
    // and boternity's own target directory is gone.
    for file in files_below(&cache.dir) {
        let size = std::fs::symlink_metadata(&file).unwrap().len();
        assert!(size <= limit + MIB, "{} is {size} bytes", file.display());
    }
    let left: Vec<_> = std::fs::read_dir(&target_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(started.elapsed() < Duration::from_secs(600));
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_callers_prefilled_target_dir_survives_a_build_and_is_not_counted() {
    // The shared test target directory: a caller's `--target-dir` already
    // holding real artifacts of earlier builds; this test adds a marker and
    // a sparse file that by itself is over the limit below.
    let target = skill_target_dir();
    let mine = target.join(format!("cache-test-prefill-{}", std::process::id()));
    std::fs::create_dir_all(&mine).unwrap();
    let marker = mine.join("marker");
    std::fs::write(&marker, "earlier build").unwrap();
    let sparse = mine.join("old-artifact.rlib");
    let file = std::fs::File::create(&sparse).unwrap();
    file.set_len(1536 * MIB).unwrap();
    drop(file);
    // What a warm build writes is far below this; what the folder holds is
    // far above it.
    let limit = 1024 * MIB;

    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    rename_package(&skill, "cache-prefilled-echo");
    let out = build_skill(&skill)
        .args([
            "--max-target-bytes",
            &limit.to_string(),
            "--message-format",
            "json",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    let message = json_line(text.lines().last().unwrap_or_default());
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(message["reason"], "skill-built", "{message}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "earlier build");
    assert_eq!(std::fs::metadata(&sparse).unwrap().len(), 1536 * MIB);
    std::fs::remove_dir_all(&mine).unwrap();
}
