//! Finding the skills in a checked-out tree, as the skill tools people use do:
//! a `SKILL.md` at the start folder (`--path`, or the root) is the one skill;
//! otherwise `skills/*/`, the start folder's own folders, the folders
//! `.claude-plugin/marketplace.json` lists, `.agents/skills/*` and
//! `.claude/skills/*`; when none of those holds a skill, every folder below
//! (depth 5, skipping `.git`, `target`, `node_modules`). Names go through the
//! same lenient reader and safe keys as a local install.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::GitError;
use crate::skill::manifest::{self, MANIFEST_FILE, Manifest};

/// How deep the fallback search goes below the start folder.
pub const MAX_DEPTH: usize = 5;
const SKIPPED: [&str; 3] = [".git", "target", "node_modules"];

/// A skill found in the tree.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its folder relative to the repository root (`/`-separated; `""` for
    /// the root).
    pub rel: String,
    pub dir: PathBuf,
    /// The store key (the lenient reader's), or the folder's slug when the
    /// manifest cannot be read.
    pub key: String,
    /// The manifest, or why it cannot be read.
    pub manifest: Result<Manifest, String>,
}

impl Found {
    /// Whether `name` picks this skill: its key, the name as written, or its
    /// folder's name.
    pub fn answers_to(&self, name: &str) -> bool {
        self.key == name
            || self.rel.rsplit('/').next() == Some(name)
            || self.manifest.as_ref().is_ok_and(|m| m.written_name == name)
    }

    /// One line for a listing: `key  path  (type) description`.
    pub fn describe(&self) -> String {
        let rel = if self.rel.is_empty() { "." } else { &self.rel };
        match &self.manifest {
            Ok(m) => {
                let mut description: String = m.description.chars().take(70).collect();
                if m.description.chars().count() > 70 {
                    description.push('…');
                }
                format!(
                    "{:<28} {:<32} {:<6} {description}",
                    self.key, rel, m.skill_type
                )
            }
            Err(e) => format!("{:<28} {:<32} (unreadable: {e})", self.key, rel),
        }
    }
}

/// The skills below `root/start` (`start` already normalised; `None`: the
/// root). `url` and `commit` name the tree in errors.
pub fn discover(
    root: &Path,
    start: Option<&str>,
    url: &str,
    commit: &str,
) -> Result<Vec<Found>, GitError> {
    let root = root
        .canonicalize()
        .map_err(|e| crate::fsutil::IoError::new(crate::fsutil::IoOp::Inspect, root, e))?;
    let base = match start {
        Some(rel) => {
            let joined = root.join(rel);
            if std::fs::symlink_metadata(&joined).is_err() {
                return Err(GitError::PathMissing {
                    path: rel.into(),
                    url: url.into(),
                    commit: commit.into(),
                });
            }
            let real = joined.canonicalize().map_err(|_| GitError::PathMissing {
                path: rel.into(),
                url: url.into(),
                commit: commit.into(),
            })?;
            if !real.starts_with(&root) {
                return Err(GitError::PathOutside { path: rel.into() });
            }
            if !real.is_dir() {
                return Err(GitError::PathMissing {
                    path: rel.into(),
                    url: url.into(),
                    commit: commit.into(),
                });
            }
            real
        }
        None => root.clone(),
    };
    if has_manifest(&base) {
        return Ok(vec![found(&root, &base)]);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(children(&base.join("skills")));
    dirs.extend(children(&base));
    dirs.extend(marketplace(&root, &base));
    dirs.extend(children(&base.join(".agents/skills")));
    dirs.extend(children(&base.join(".claude/skills")));
    let mut skills: BTreeMap<PathBuf, Found> = BTreeMap::new();
    for dir in dirs {
        let Ok(real) = dir.canonicalize() else {
            continue;
        };
        if real.starts_with(&root) && has_manifest(&real) {
            skills
                .entry(real.clone())
                .or_insert_with(|| found(&root, &real));
        }
    }
    if skills.is_empty() {
        let mut deep = Vec::new();
        walk(&base, 0, &mut deep);
        for real in deep {
            skills
                .entry(real.clone())
                .or_insert_with(|| found(&root, &real));
        }
    }
    if skills.is_empty() {
        return Err(GitError::NoSkill {
            url: url.into(),
            commit: commit.into(),
            path: start.map(str::to_string),
        });
    }
    let mut list: Vec<Found> = skills.into_values().collect();
    list.sort_by(|a, b| a.key.cmp(&b.key).then(a.rel.cmp(&b.rel)));
    Ok(list)
}

/// Whether `dir` holds a `SKILL.md`: a file, or a link (never followed
/// here; reading it refuses it with the rule, so the listing says why).
fn has_manifest(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(MANIFEST_FILE))
        .is_ok_and(|m| m.is_file() || m.file_type().is_symlink())
}

fn found(root: &Path, dir: &Path) -> Found {
    let rel = crate::skill::files::rel_path(root, dir);
    let manifest = Manifest::load(dir).map_err(|e| crate::error_chain(&e));
    let key = match &manifest {
        Ok(m) => m.name.clone(),
        Err(_) => manifest::slug(&manifest::folder_name(dir)).unwrap_or_else(|| "skill".into()),
    };
    Found {
        rel,
        dir: dir.to_path_buf(),
        key,
        manifest,
    }
}

/// The folders directly in `dir` (not following symlinks to folders).
fn children(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !SKIPPED.iter().any(|s| e.file_name() == *s))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Skill folders below `dir`, depth-first, to [`MAX_DEPTH`].
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    for child in children(dir) {
        if has_manifest(&child) {
            out.push(child);
        } else {
            walk(&child, depth + 1, out);
        }
    }
}

/// The folders `.claude-plugin/marketplace.json` (at the start folder or the
/// root) lists: each plugin's `skills` (relative to its `source`), else the
/// skills below its `source`.
fn marketplace(root: &Path, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for at in [base, root] {
        let path = at.join(".claude-plugin/marketplace.json");
        // Never through a link (`at` is a real path).
        let Ok(bytes) = crate::fsutil::read_capped_no_follow(
            &path,
            1024 * 1024,
            crate::fsutil::NoFollow::Anywhere,
        ) else {
            continue;
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            tracing::warn!(path = %path.display(), "not valid JSON; ignored");
            continue;
        };
        let plugins = json
            .get("plugins")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        for plugin in plugins {
            let source = plugin
                .get("source")
                .and_then(|s| s.as_str())
                .unwrap_or("./");
            let Ok(source) = super::spec::normal_path(source) else {
                continue;
            };
            let source_dir = match &source {
                Some(s) => at.join(s),
                None => at.to_path_buf(),
            };
            match plugin.get("skills").and_then(|s| s.as_array()) {
                Some(skills) => {
                    for skill in skills.iter().filter_map(|s| s.as_str()) {
                        if let Ok(Some(rel)) = super::spec::normal_path(skill) {
                            out.push(source_dir.join(rel));
                        }
                    }
                }
                None => {
                    out.push(source_dir.clone());
                    out.extend(children(&source_dir.join("skills")));
                }
            }
        }
        if at == root {
            break;
        }
    }
    out
}
