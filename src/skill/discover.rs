//! Finding the skill folders below a folder: the one discovery that
//! `precompile` (a registry's folder), `check` (the folders it is given) and
//! `install --git` (a checked-out commit, from its `--path`) share, so the
//! three see the same skills in the same tree.
//!
//! The rules, from the start folder:
//!
//! 1. A start folder that holds a `SKILL.md` is the one skill; nothing below
//!    it is looked at.
//! 2. Otherwise the skills are the folders found by
//!    * the walk: every folder below the start, depth first in name order, to
//!      [`MAX_DEPTH`] levels, skipping hidden folders (a name starting with
//!      `.`) and [`SKIPPED`] (`target`, `node_modules`: build output and
//!      installed packages);
//!    * the agent tools' own folders, hidden so not walked: the folders
//!      directly in `.agents/skills/` and `.claude/skills/` ([`AGENT_DIRS`]);
//!    * `.claude-plugin/marketplace.json` at the start folder ([`MARKETPLACE`]):
//!      each plugin's `skills` (relative to its `source`), or for a plugin
//!      without a list, its `source` folder and the folders in its `skills/`.
//!      A listed folder is taken even where the walk would not go (hidden,
//!      deeper, under `target`): the listing is explicit.
//! 3. A skill's folder is never searched further: a `SKILL.md` below one (a
//!    template in its assets, an example) is one of its files, not a skill,
//!    even when the marketplace lists it.
//! 4. Links are never followed: a linked folder is not walked, and a folder
//!    reached through a link is not a skill. Everything found is inside the
//!    start folder.
//! 5. A skill folder holds an entry named `SKILL.md` that is a file or a link.
//!    The link is found, not skipped, so that reading it refuses it by name
//!    (`SKILL.md` must be a regular file) and a listing says why; a folder
//!    named `SKILL.md` is not a manifest.
//!
//! The result is sorted by path and holds each folder once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::skill::manifest::MANIFEST_FILE;

/// How many folders below the start folder the walk looks for a skill
/// (`a/b/c/d/e/f/SKILL.md` is the deepest found).
pub const MAX_DEPTH: usize = 6;
/// Folders the walk never enters, besides hidden ones.
pub const SKIPPED: [&str; 2] = ["target", "node_modules"];
/// Hidden folders whose folders are skills all the same (agent tools keep
/// their skills there).
pub const AGENT_DIRS: [&str; 2] = [".agents/skills", ".claude/skills"];
/// Where a repository lists its plugins' skills.
pub const MARKETPLACE: &str = ".claude-plugin/marketplace.json";
/// Largest marketplace file read.
const MAX_MARKETPLACE_BYTES: u64 = 1024 * 1024;

/// The skill folders below `start` (see the module's rules), as
/// `start.join(relative path)`, sorted. An empty list: no skill.
pub fn skill_folders(start: &Path) -> Result<Vec<PathBuf>, IoError> {
    if holds_manifest(start) {
        return Ok(vec![start.to_path_buf()]);
    }
    let mut found: BTreeSet<PathBuf> = BTreeSet::new();
    walk(start, Path::new(""), 1, &mut found)?;
    let mut listed: Vec<PathBuf> = Vec::new();
    for dir in AGENT_DIRS {
        let dir = Path::new(dir);
        if is_real_dir(start, dir) {
            listed.extend(folders_in(start, dir)?);
        }
    }
    listed.extend(marketplace(start)?);
    for rel in listed {
        if is_real_dir(start, &rel) && holds_manifest(&start.join(&rel)) && !nested(start, &rel) {
            found.insert(rel);
        }
    }
    Ok(found.into_iter().map(|rel| start.join(rel)).collect())
}

/// Whether `dir` holds an entry named `SKILL.md` that is a file or a link
/// (never followed: see rule 5).
fn holds_manifest(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(MANIFEST_FILE))
        .is_ok_and(|m| m.is_file() || m.file_type().is_symlink())
}

/// The walk of rule 2: skill folders below `start/rel`, `depth` levels below
/// the start for the folders in it.
fn walk(
    start: &Path,
    rel: &Path,
    depth: usize,
    found: &mut BTreeSet<PathBuf>,
) -> Result<(), IoError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for child in folders_in(start, rel)? {
        let name = child
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
            continue;
        }
        if holds_manifest(&start.join(&child)) {
            found.insert(child);
        } else {
            walk(start, &child, depth + 1, found)?;
        }
    }
    Ok(())
}

/// The folders directly in `start/rel` (links to folders are not folders
/// here), relative to `start`, sorted.
fn folders_in(start: &Path, rel: &Path) -> Result<Vec<PathBuf>, IoError> {
    let dir = start.join(rel);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).on(IoOp::List, &dir)? {
        let entry = entry.on(IoOp::List, &dir)?;
        if entry.file_type().on(IoOp::Inspect, &entry.path())?.is_dir() {
            out.push(rel.join(entry.file_name()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `start/rel` is a folder reached without following a link: each
/// step of `rel` is a folder itself, not a link to one.
fn is_real_dir(start: &Path, rel: &Path) -> bool {
    let mut at = start.to_path_buf();
    rel.components().all(|c| {
        at.push(c);
        std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
    })
}

/// Whether a folder between the start and `start/rel` (both excluded) is a
/// skill, which makes `rel` one of its files (rule 3).
fn nested(start: &Path, rel: &Path) -> bool {
    let mut at = start.to_path_buf();
    let mut parts: Vec<_> = rel.components().collect();
    parts.pop();
    parts.into_iter().any(|c| {
        at.push(c);
        holds_manifest(&at)
    })
}

/// The folders `start/.claude-plugin/marketplace.json` lists, relative to
/// `start` (not yet checked). A missing, unreadable or invalid file lists
/// nothing (an invalid one is logged): it is a hint, not the repository's
/// contract.
fn marketplace(start: &Path) -> Result<Vec<PathBuf>, IoError> {
    let path = start.join(MARKETPLACE);
    if !is_real_dir(start, Path::new(".claude-plugin")) {
        return Ok(Vec::new());
    }
    // Never through a link.
    let Ok(bytes) = crate::fsutil::read_capped_no_follow(
        &path,
        MAX_MARKETPLACE_BYTES,
        crate::fsutil::NoFollow::Anywhere,
    ) else {
        return Ok(Vec::new());
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        tracing::warn!(path = %path.display(), "not valid JSON; ignored");
        return Ok(Vec::new());
    };
    let plugins = json
        .get("plugins")
        .and_then(|p| p.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for plugin in plugins {
        let source = plugin
            .get("source")
            .and_then(|s| s.as_str())
            .unwrap_or("./");
        let Some(source) = relative(source) else {
            continue;
        };
        match plugin.get("skills").and_then(|s| s.as_array()) {
            Some(skills) => {
                let listed = skills.iter().filter_map(|s| relative(s.as_str()?));
                out.extend(listed.map(|rel| source.join(rel)));
            }
            None => {
                out.push(source.clone());
                let skills = source.join("skills");
                if is_real_dir(start, &skills) {
                    out.extend(folders_in(start, &skills)?);
                }
            }
        }
    }
    Ok(out)
}

/// A marketplace path (`./skills/pdf`) as a relative path, or `None` when it
/// is absolute or climbs out with `..`.
fn relative(path: &str) -> Option<PathBuf> {
    if path.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join(MANIFEST_FILE),
            "---\nname: x\ndescription: x\n---\n",
        )
        .unwrap();
    }

    fn found(start: &Path) -> Vec<String> {
        skill_folders(start)
            .unwrap()
            .iter()
            .map(|d| crate::skill::files::rel_path(start, d))
            .collect()
    }

    #[test]
    fn the_walk_skips_hidden_build_output_and_packages_and_stops_at_a_skill() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        skill(&root.join("skills/pdf"));
        skill(&root.join("skills/pdf/assets/template"));
        skill(&root.join("team/deep/a"));
        skill(&root.join("target/debug/built"));
        skill(&root.join("node_modules/pkg"));
        skill(&root.join(".github/skill"));
        skill(&root.join("1/2/3/4/5/6"));
        skill(&root.join("1/2/3/4/5/6b/7"));
        std::fs::create_dir_all(root.join("empty/SKILL.md")).unwrap();
        assert_eq!(found(root), ["1/2/3/4/5/6", "skills/pdf", "team/deep/a"]);
        // A start folder that is a skill is the one skill.
        assert_eq!(found(&root.join("skills/pdf")), [""]);
        // Nothing: an empty list, not an error.
        assert!(found(&root.join("empty")).is_empty());
    }

    #[test]
    fn agent_folders_and_the_marketplace_add_what_the_walk_skips_but_never_a_nested_skill() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        skill(&root.join(".claude/skills/review"));
        skill(&root.join(".agents/skills/plan"));
        skill(&root.join(".claude/other/not-a-skill"));
        skill(&root.join("plugins/p/.hidden/listed"));
        skill(&root.join("plugins/q/skills/auto"));
        skill(&root.join("plugins/q/skills/auto/inner"));
        skill(&root.join("outer"));
        skill(&root.join("outer/inner"));
        let json = r#"{"plugins": [
            {"source": "./plugins/p", "skills": ["./.hidden/listed", "../../etc", "/abs"]},
            {"source": "./plugins/q"},
            {"source": "./", "skills": ["./outer/inner", "./missing"]}
        ]}"#;
        std::fs::create_dir_all(root.join(".claude-plugin")).unwrap();
        std::fs::write(root.join(MARKETPLACE), json).unwrap();
        assert_eq!(
            found(root),
            [
                ".agents/skills/plan",
                ".claude/skills/review",
                "outer",
                "plugins/p/.hidden/listed",
                "plugins/q/skills/auto",
            ]
        );
    }

    #[test]
    fn links_are_never_followed_but_a_linked_manifest_is_found_to_be_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let elsewhere = tempfile::tempdir().unwrap();
        skill(&elsewhere.path().join("real"));
        std::os::unix::fs::symlink(elsewhere.path(), root.join("linked")).unwrap();
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join(".claude/skills")).unwrap();
        std::fs::create_dir_all(root.join("leak")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("leak/SKILL.md")).unwrap();
        std::fs::create_dir_all(root.join(".claude-plugin")).unwrap();
        std::fs::write(
            root.join(MARKETPLACE),
            r#"{"plugins": [{"source": "./linked", "skills": ["./real"]}]}"#,
        )
        .unwrap();
        assert_eq!(found(root), ["leak"]);
    }
}
