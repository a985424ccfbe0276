//! Dependency layers end to end: skills with the same registry dependencies
//! build over one layer, built once, confined and without any skill's code,
//! then frozen and shared read-only. A hostile skill over it (its build
//! script and its proc macro write, chmod, rename, delete and create files in
//! the layer, its fingerprints and the registry cache) changes nothing anyone
//! else reads: the layer is byte for byte as frozen, and the next skill's
//! component is byte-identical to the one it gets built alone, without a
//! layer. A second skill reuses the layer (cargo compiles only the skill's
//! own crate); a path dependency stays in the skill's own build.
//!
//! Every test builds in the tests' shared cache folder (its cargo home is
//! warm), from copies of the fixtures in a private folder, and removes the
//! target directories it made.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use boternity_skills::build::layer::{self, LayerOutcome};
use boternity_skills::build::{self, BuildError, BuildOptions, Built, Toolchain};
use boternity_skills::skill::source::RustSource;

use common::*;

/// Builds the crate `skill` confined, in boternity's own target directory
/// for it, over a dependency layer unless `layers` is off.
fn build_crate(skill: &Path, layers: bool) -> Result<Built, BuildError> {
    let context = context();
    let toolchain = Toolchain::detect(&context.host).expect("a toolchain with wasm32-wasip2");
    let options = BuildOptions {
        sandbox_helper: Some(PathBuf::from(env!("CARGO_BIN_EXE_boternity"))),
        layers,
        ..BuildOptions::default()
    };
    let name = skill.file_name().unwrap().to_string_lossy().into_owned();
    let source = RustSource::Crate {
        manifest_path: skill.join("Cargo.toml"),
    };
    build::build(&context.folders, &toolchain, &name, &source, &options)
}

/// The target directory boternity keeps for the skill folder `skill`
/// (`paths::skill_target_dir`: folder name, hash of its path).
fn own_target_dir(skill: &Path) -> PathBuf {
    let place = skill.canonicalize().unwrap();
    let hash = boternity_skills::digest::sha256_hex(place.as_os_str().as_encoded_bytes());
    let name = skill.file_name().unwrap().to_string_lossy();
    cache_dir()
        .join("targets")
        .join(format!("{name}-{}", &hash[..16]))
}

/// Removes what building `skill` left in the shared cache (its target
/// directory and key stamp, its source copy).
fn forget(skill: &Path) {
    let target = own_target_dir(skill);
    let mut stamp = target.clone().into_os_string();
    stamp.push(".build-key");
    let _ = boternity_skills::fsutil::remove_tree(&target);
    let _ = std::fs::remove_file(stamp);
    let _ = std::fs::remove_dir_all(
        cache_dir()
            .join("sources")
            .join(target.file_name().unwrap()),
    );
}

/// Every file below `dir` with its mode and the sha256 of its bytes (a link:
/// its target), read here, not from any record boternity keeps.
fn digests(dir: &Path) -> BTreeMap<PathBuf, (u32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.insert(rel, (mode, String::new()));
                stack.push(path);
            } else if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, (mode, target.display().to_string()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, (mode, boternity_skills::digest::sha256_hex(&bytes)));
            }
        }
    }
    out
}

/// A copy of fixture `name` in `parent/<as_name>`, with `SKILL.md` renamed.
fn skill_copy(name: &str, parent: &Path, as_name: &str) -> PathBuf {
    let dir = copy_fixture(name, parent, as_name);
    let md = dir.join("SKILL.md");
    let text = std::fs::read_to_string(&md).unwrap();
    std::fs::write(
        &md,
        text.replacen(&format!("name: {name}"), &format!("name: {as_name}"), 1),
    )
    .unwrap();
    dir
}

/// echo-skill's layer exists (built now or before) and is used: its key.
fn echo_layer(work: &Path) -> String {
    let first = skill_copy("echo-skill", work, "echo-first");
    let built = build_crate(&first, true).unwrap_or_else(|e| panic!("echo-skill: {e}"));
    forget(&first);
    let layer = built.layer.expect("echo-skill builds over a layer");
    layer.key
}

#[test]
fn a_hostile_build_over_a_layer_changes_nothing_another_skill_reads() {
    let work = tempfile::tempdir().unwrap();
    let key = echo_layer(work.path());
    let layer_dir = cache_dir().join("layers").join(&key);
    let layer_before = digests(&layer_dir.join("target"));
    assert!(
        layer_before
            .keys()
            .any(|p| p.to_string_lossy().contains("wit_bindgen")),
        "the layer holds no wit-bindgen"
    );
    let registry = cache_dir().join("cargo-home/registry");
    let registry_before = digests(&registry);

    // The hostile skill has echo-skill's registry dependencies: it builds
    // over the same layer, and its build script and macro attack it.
    let hostile = skill_copy("layer-hostile", work.path(), "layer-hostile");
    let result = build_crate(&hostile, true);
    let upper = own_target_dir(&hostile);
    let reports: Vec<String> = files_below(&upper)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("tamper-report.txt"))
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        reports.len(),
        2,
        "the build script's and the macro's reports: {:?}",
        result.as_ref().map(|b| &b.layer).map_err(|e| e.to_string())
    );
    if let Ok(built) = &result {
        assert_eq!(
            built.layer.as_ref().map(|l| l.key.as_str()),
            Some(key.as_str()),
            "the hostile build did not run over echo-skill's layer"
        );
    }
    let report = reports.join("");
    // In its own view, it changed what it saw of the layer (all of it
    // landing in its own folder)…
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("write ") && l.contains("wit_bindgen") && l.ends_with("true")),
        "the attack never reached the layer's files:\n{report}"
    );
    // …but nothing of the cache folder's: the registry cache and the layers.
    let cache = cache_dir().canonicalize().unwrap();
    for line in report.lines().filter(|l| l.ends_with("true")) {
        assert!(
            !line.contains(&*cache.join("cargo-home").to_string_lossy())
                && !line.contains(&*cache.join("layers").to_string_lossy()),
            "the sandbox let this through: {line}"
        );
    }
    // The layer is as it was frozen: by its record, and byte for byte.
    layer::verify(&layer_dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        digests(&layer_dir.join("target")),
        layer_before,
        "the layer changed"
    );
    assert_eq!(
        digests(&registry),
        registry_before,
        "the registry cache changed"
    );
    forget(&hostile);

    // The next skill over the layer gets the component it gets alone.
    let next = skill_copy("echo-skill", work.path(), "echo-next");
    let layered = build_crate(&next, true).unwrap_or_else(|e| panic!("over the layer: {e}"));
    assert_eq!(
        layered.layer.as_ref().map(|l| (l.key.as_str(), l.outcome)),
        Some((key.as_str(), LayerOutcome::Reused))
    );
    let alone = skill_copy("echo-skill", work.path(), "echo-alone");
    let unlayered = build_crate(&alone, false).unwrap_or_else(|e| panic!("alone: {e}"));
    assert!(unlayered.layer.is_none());
    assert!(
        unlayered.compiled.iter().any(|c| c == "wit_bindgen"),
        "built alone, it compiled its dependencies itself: {:?}",
        unlayered.compiled
    );
    assert!(
        layered.wasm == unlayered.wasm,
        "the component over the layer differs from the one built alone"
    );
    forget(&next);
    forget(&alone);
}

#[test]
fn a_second_skill_with_the_same_dependencies_reuses_the_layer() {
    let work = tempfile::tempdir().unwrap();
    let key = echo_layer(work.path());
    // A new skill, cold (its own target directory empty), over the layer:
    // cargo compiles its crate and nothing else.
    let second = skill_copy("echo-skill", work.path(), "echo-second");
    let built = build_crate(&second, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        built.layer.as_ref().map(|l| (l.key.as_str(), l.outcome)),
        Some((key.as_str(), LayerOutcome::Reused))
    );
    assert_eq!(
        built.compiled,
        ["echo_skill"],
        "compiled more than the skill"
    );
    forget(&second);

    // precompile says so, per skill.
    let registry = work.path().join("registry");
    for name in ["echo-one", "echo-two"] {
        skill_copy("echo-skill", &registry, name);
    }
    let out = boternity()
        .arg("precompile")
        .arg(&registry)
        .arg("--out")
        .arg(work.path().join("out"))
        .args(["--jobs", "1", "--message-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(json_line)
        .filter(|l| l["reason"] == "skill-precompiled")
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    for line in &lines {
        assert_eq!(line["layer"], "reused", "{line}");
        assert_eq!(line["layer_key"], key.as_str(), "{line}");
    }
    for name in ["echo-one", "echo-two"] {
        forget(&registry.join(name));
    }

    // Unchanged skills are not built again: no layer to speak of.
    let again = boternity()
        .arg("precompile")
        .arg(&registry)
        .arg("--out")
        .arg(work.path().join("out"))
        .args(["--jobs", "1"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let table = stdout(&again);
    assert!(table.lines().next().unwrap().contains("LAYER"), "{table}");
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains(" cached ") && l.contains(" none ")),
        "{table}"
    );
}

#[test]
fn a_path_dependency_stays_in_the_skills_own_build() {
    let work = tempfile::tempdir().unwrap();
    let key = echo_layer(work.path());
    let skill = skill_copy("layer-path-skill", work.path(), "layer-path-skill");
    let built = build_crate(&skill, true).unwrap_or_else(|e| panic!("{e}"));
    // Its registry dependencies are echo-skill's: the same layer.
    assert_eq!(
        built.layer.as_ref().map(|l| (l.key.as_str(), l.outcome)),
        Some((key.as_str(), LayerOutcome::Reused))
    );
    let mut compiled = built.compiled.clone();
    compiled.sort();
    assert_eq!(compiled, ["layer_path_skill", "shout"]);
    // The path crate is in the skill's own folder, never in the layer.
    let layer_dir = cache_dir().join("layers").join(&key);
    let record = layer::verify(&layer_dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !record.files.keys().any(|f| f.contains("shout")),
        "the layer holds the path dependency"
    );
    assert!(
        files_below(&own_target_dir(&skill))
            .iter()
            .any(|p| p.to_string_lossy().contains("libshout")),
        "the path dependency was not built in the skill's own folder"
    );
    let generated =
        std::fs::read_to_string(layer_dir.join(layer::LAYER_CRATE).join("Cargo.toml")).unwrap();
    assert!(!generated.contains("shout"), "{generated}");
    forget(&skill);
}

/// Every path below `dir` (files, folders, links), sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}
