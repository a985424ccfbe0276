//! Finding the skills in a checked-out tree: the start folder (`--path`, or
//! the root) is resolved inside the tree, then [`crate::skill::discover`]
//! finds the skill folders below it by the same rules as `precompile` on a
//! plain folder. Names go through the same lenient reader and safe keys as a
//! local install.

use std::path::{Path, PathBuf};

use super::GitError;
use crate::skill::manifest::{self, Manifest, ManifestError};
use std::sync::Arc;

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
    pub manifest: Result<Manifest, Arc<ManifestError>>,
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
    let dirs = crate::skill::discover::skill_folders(&base)?;
    if dirs.is_empty() {
        return Err(GitError::NoSkill {
            url: url.into(),
            commit: commit.into(),
            path: start.map(str::to_string),
        });
    }
    let mut list: Vec<Found> = dirs.iter().map(|dir| found(&root, dir)).collect();
    list.sort_by(|a, b| a.key.cmp(&b.key).then(a.rel.cmp(&b.rel)));
    Ok(list)
}

/// The skill at `dir`, keyed as a local install keys it.
fn found(root: &Path, dir: &Path) -> Found {
    let rel = crate::skill::files::rel_path(root, dir);
    let manifest = Manifest::load(dir).map_err(Arc::new);
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
