//! The executor's fast paths keep every guarantee: the compile cache (hit on
//! the second run, a corrupt entry is a miss, `--no-cache` writes nothing, the
//! folder stays within its bound) and the stamped `.cwasm` check (an installed
//! `.cwasm` edited or swapped after it was verified is never deserialized).

use crate::common;

use std::path::Path;
use std::time::Duration;

use boternity_skills::executor::{
    CompileCache, CwasmKey, Executor, ExecutorConfig, HostServices, Invocation, Origin, SkillSource,
};
use boternity_skills::install::{self, InstallOptions};
use boternity_skills::store::SkillStore;
use common::*;

/// `boternity run FILE --input INPUT --message-format json` with its own cache folder.
fn run_json(cache: &Path, file: &Path, input: &str, extra: &[&str]) -> serde_json::Value {
    let out = boternity()
        .env("BOTERNITY_CACHE_DIR", cache)
        .arg("run")
        .arg(file)
        .args(["--input", input, "--message-format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    json_line(stdout(&out).trim())
}

/// Every `.cwasm` in the compile cache folder.
fn cached_cwasms(cache: &Path) -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir(cache.join("compiled")) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// File timestamps and a stamp in the same clock tick are racy: move on.
fn next_tick() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn the_second_run_of_a_file_comes_from_the_compile_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let wasm = tmp.path().join("echo.wasm");
    std::fs::write(&wasm, component("echo-skill")).unwrap();

    let first = run_json(&cache, &wasm, "one", &[]);
    assert_eq!(first["ok"], "ECHO: ONE");
    assert_eq!(first["load_origin"], "compiled");
    assert_eq!(cached_cwasms(&cache).len(), 1);
    next_tick();
    let second = run_json(&cache, &wasm, "two", &[]);
    assert_eq!(second["ok"], "ECHO: TWO");
    assert_eq!(second["load_origin"], "cache");
    next_tick();
    let third = run_json(&cache, &wasm, "three", &[]);
    assert_eq!(third["ok"], "ECHO: THREE");
    assert_eq!(third["load_origin"], "cache");

    // The folder is this user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cache.join("compiled"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn a_corrupt_cache_entry_is_a_miss_and_is_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let wasm = tmp.path().join("echo.wasm");
    std::fs::write(&wasm, component("echo-skill")).unwrap();
    assert_eq!(run_json(&cache, &wasm, "a", &[])["load_origin"], "compiled");
    next_tick();

    // One flipped byte in the machine code.
    let entry = cached_cwasms(&cache).pop().unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let v = run_json(&cache, &wasm, "b", &[]);
    assert_eq!(v["ok"], "ECHO: B");
    assert_eq!(v["load_origin"], "compiled");
    next_tick();
    assert_eq!(run_json(&cache, &wasm, "c", &[])["load_origin"], "cache");

    // Garbage everywhere: still a miss, never an error.
    for file in std::fs::read_dir(cache.join("compiled")).unwrap().flatten() {
        std::fs::write(file.path(), b"garbage").unwrap();
    }
    let v = run_json(&cache, &wasm, "d", &[]);
    assert_eq!(v["ok"], "ECHO: D");
    assert_eq!(v["load_origin"], "compiled");

    // An entry signed with another key (another machine's cache) is a miss.
    std::fs::write(cache.join("cwasm-key"), [7u8; 32]).unwrap();
    let v = run_json(&cache, &wasm, "e", &[]);
    assert_eq!(v["ok"], "ECHO: E");
    assert_eq!(v["load_origin"], "compiled");
}

#[test]
fn no_cache_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let wasm = tmp.path().join("echo.wasm");
    std::fs::write(&wasm, component("echo-skill")).unwrap();
    for _ in 0..2 {
        let v = run_json(&cache, &wasm, "x", &["--no-cache"]);
        assert_eq!(v["ok"], "ECHO: X");
        assert_eq!(v["load_origin"], "compiled");
    }
    assert!(!cache.join("compiled").exists());
}

#[test]
fn eviction_keeps_the_cache_within_its_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compiled");
    let key = CwasmKey::random().unwrap();
    let executor = |max_bytes| {
        Executor::with_config(
            ExecutorConfig {
                cwasm_key: Some(key.clone()),
                compile_cache: Some(CompileCache {
                    dir: dir.clone(),
                    max_bytes,
                }),
                ..ExecutorConfig::default()
            },
            HostServices::default(),
        )
        .unwrap()
    };
    let size = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    // Measure one entry, then allow room for about one and a half.
    executor(u64::MAX)
        .load(SkillSource::Bytes(&component("echo-skill")))
        .unwrap();
    let one = size(&dir);
    let bound = one * 3 / 2;
    std::fs::remove_dir_all(&dir).unwrap();

    let first = executor(bound)
        .load(SkillSource::Bytes(&component("echo-skill")))
        .unwrap();
    assert_eq!(first.origin(), Some(Origin::Compiled));
    std::thread::sleep(Duration::from_millis(20));
    executor(bound)
        .load(SkillSource::Bytes(&component("bare-full")))
        .unwrap();
    assert!(size(&dir) <= bound, "{} > {bound}", size(&dir));
    // The most recently used entry stayed; the older one went.
    next_tick();
    assert_eq!(
        executor(bound)
            .load(SkillSource::Bytes(&component("bare-full")))
            .unwrap()
            .origin(),
        Some(Origin::Cached)
    );
    assert_eq!(
        executor(bound)
            .load(SkillSource::Bytes(&component("echo-skill")))
            .unwrap()
            .origin(),
        Some(Origin::Compiled)
    );
    assert!(size(&dir) <= bound);
}

#[tokio::test]
async fn an_installed_cwasm_changed_after_it_was_verified_is_never_deserialized() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    let key = CwasmKey::random().unwrap();
    let cached = |dir: &str| ExecutorConfig {
        cwasm_key: Some(key.clone()),
        compile_cache: Some(CompileCache {
            dir: tmp.path().join(dir),
            max_bytes: u64::MAX,
        }),
        ..ExecutorConfig::default()
    };
    let fresh =
        |config: &ExecutorConfig| Executor::with_config(config.clone(), HostServices::default());
    let config = cached("compiled");
    let options = InstallOptions {
        pipeline: pipeline_options(),
        ..InstallOptions::default()
    };
    install::install(
        &common::context(),
        &store,
        &fixture("echo-skill"),
        &options,
        Some(&fresh(&config).unwrap()),
    )
    .unwrap();
    let installed = store.get("echo-skill").unwrap();
    let cwasm = installed.dir.join("skill.cwasm");
    // Verified (hashed) once, then loaded through the stamp, repeatedly.
    next_tick();
    for _ in 0..3 {
        let ex = fresh(&config).unwrap();
        let skill = installed.load(&ex).unwrap();
        assert_eq!(skill.origin(), Some(Origin::Precompiled));
        let out = ex
            .run(&skill, Invocation::new("echo-skill", "ok"))
            .await
            .unwrap();
        assert_eq!(out.result, Ok("ECHO: OK".into()));
        next_tick();
    }

    // One byte edited in place: the stamp no longer matches, the hash does
    // not either, so the changed file is not deserialized: the component runs
    // (from this tool's own cache entry or compiled), with the right answer.
    let original = std::fs::read(&cwasm).unwrap();
    let mut edited = original.clone();
    let middle = edited.len() / 2;
    edited[middle] ^= 0xff;
    std::fs::write(&cwasm, &edited).unwrap();
    for config in [
        config.clone(),
        cached("other-cache"),
        ExecutorConfig {
            compile_cache: None,
            ..config.clone()
        },
    ] {
        let ex = fresh(&config).unwrap();
        let skill = installed.load(&ex).unwrap();
        assert_ne!(skill.origin(), Some(Origin::Precompiled));
        let out = ex
            .run(&skill, Invocation::new("echo-skill", "edited"))
            .await
            .unwrap();
        assert_eq!(out.result, Ok("ECHO: EDITED".into()));
    }

    // Restored (new ctime): verified again by its hash, then precompiled again.
    std::fs::write(&cwasm, &original).unwrap();
    next_tick();
    let ex = fresh(&config).unwrap();
    assert_eq!(
        installed.load(&ex).unwrap().origin(),
        Some(Origin::Precompiled)
    );
    next_tick();

    // Another valid .cwasm of this machine (another skill's) swapped in,
    // by rename and in place: never deserialized.
    let other = fresh(&config)
        .unwrap()
        .precompile(&component("bare-full"))
        .unwrap()
        .0;
    let swap = tmp.path().join("swap.cwasm");
    std::fs::write(&swap, &other).unwrap();
    std::fs::rename(&swap, &cwasm).unwrap();
    let ex = fresh(&config).unwrap();
    let skill = installed.load(&ex).unwrap();
    assert_ne!(skill.origin(), Some(Origin::Precompiled));
    let out = ex
        .run(&skill, Invocation::new("echo-skill", "swapped"))
        .await
        .unwrap();
    assert_eq!(out.result, Ok("ECHO: SWAPPED".into()));
    std::fs::write(&cwasm, &original).unwrap();
    next_tick();
    assert_eq!(
        installed.load(&fresh(&config).unwrap()).unwrap().origin(),
        Some(Origin::Precompiled)
    );
    next_tick();
    std::fs::write(&cwasm, &other).unwrap();
    let ex = fresh(&config).unwrap();
    let skill = installed.load(&ex).unwrap();
    assert_ne!(skill.origin(), Some(Origin::Precompiled));
    let out = ex
        .run(&skill, Invocation::new("echo-skill", "in place"))
        .await
        .unwrap();
    assert_eq!(out.result, Ok("ECHO: IN PLACE".into()));
}

#[test]
fn bench_reports_every_step_and_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let wasm = tmp.path().join("echo.wasm");
    std::fs::write(&wasm, component("echo-skill")).unwrap();
    let bench = || {
        let out = boternity()
            .env("BOTERNITY_CACHE_DIR", &cache)
            .arg("bench")
            .arg(&wasm)
            .args([
                "--iterations",
                "20",
                "--compile-iterations",
                "1",
                "--message-format",
                "json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json_line(stdout(&out).trim())
    };
    let v = bench();
    assert_eq!(v["reason"], "bench");
    for field in [
        "cold_start_ms",
        "cold_read_check_ms",
        "cold_deserialize_ms",
        "cold_link_ms",
        "cold_instantiate_ms",
        "cold_first_call_ms",
        "cold_first_verify_ms",
        "invoke_median_us",
        "warm_store_us",
        "warm_instantiate_us",
        "warm_call_us",
        "warm_teardown_us",
    ] {
        assert!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {v}");
    }
    assert_eq!(v["load_origin"], "compiled");
    next_tick();
    assert_eq!(bench()["load_origin"], "cache");
}
