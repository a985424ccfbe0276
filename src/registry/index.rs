//! A precompiled registry's `index.json`: one entry per skill with its status,
//! where its `skill.wasm` is (relative to the index), its sha256 and size, how
//! it was made, the source tree's hash, and every published file with its
//! size and sha256. Shards write their own index; `merge` joins them; a
//! minisign signature over it ([`crate::registry::sign`]) covers them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::PathTaken;

/// The index file's name in a precompile output folder.
pub const INDEX_FILE: &str = "index.json";

/// What happened to a skill in a precompile run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Built, componentized, validated or stubbed in this run.
    Ok,
    /// Unchanged since the last run (same source, toolchain, world, tool): reused.
    Cached,
    /// A prompt skill in indexes written before registries served prompt
    /// skills' files (they are now `ok`, with `path_taken: prompt`).
    Skipped,
    /// Failed; `error` says why.
    Failed,
}

impl Status {
    pub fn is_success(self) -> bool {
        self != Status::Failed
    }
}

/// One skill in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    pub version: String,
    pub status: Status,
    /// `skill.wasm`, relative to the index's folder (`<name>/<version>/skill.wasm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_taken: Option<PathTaken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The skill's folder in the registry, relative to the index
    /// (`<name>/<version>`): its `files` are below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The pipeline's sha256 of the source tree the entry was made from
    /// (`Prepared::source_sha256`): a build is matched with its source by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Every file of the skill as published (`SKILL.md`, `scripts/` …),
    /// each relative to `dir`, with its size and sha256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<IndexFile>,
    /// What the lenient `SKILL.md` reader bent (empty for a spec-clean skill).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::skill::manifest::Warning>,
}

/// One published file of a skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Relative to the entry's `dir`, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Installed with mode 0755 (scripts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

impl IndexEntry {
    /// Whether the entry can be installed: it succeeded and published its
    /// files (a prompt skill) or a binary (a Tool skill).
    pub fn is_installable(&self) -> bool {
        self.status.is_success() && (self.path.is_some() || !self.files.is_empty())
    }

    /// Whether the entry carries a real component (not a stub).
    pub fn has_component(&self) -> bool {
        self.status.is_success()
            && self.path.is_some()
            && self.sha256.is_some()
            && !matches!(
                self.path_taken,
                Some(PathTaken::Stub) | Some(PathTaken::Prompt)
            )
    }
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub skills: Vec<IndexEntry>,
}

/// Why an index could not be read, merged or used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid index", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "skill `{name}` {version} appears in two indexes with different contents; shards must not overlap"
    )]
    Conflict { name: String, version: String },
    #[error("no skill named `{name}` in {index}")]
    NotFound { name: String, index: String },
    #[error(
        "skill `{name}` has no version {version} in {index}; it has: {}",
        available.join(", ")
    )]
    VersionNotFound {
        name: String,
        version: String,
        index: String,
        available: Vec<String>,
    },
    #[error("skill `{name}` {version} is in the index but did not build: {error}")]
    NotBuilt {
        name: String,
        version: String,
        error: String,
    },
    #[error(
        "the index gives skill `{name}` the path `{path}`, which leaves the registry; \
         the index is corrupt or hostile: nothing was installed"
    )]
    UnsafePath { name: String, path: String },
}

/// Checks a path the index gives: relative, `/`-separated, every part a
/// plain name (no `..`, `.`, empty part, backslash or drive), so that it
/// stays inside the registry and inside the skill's folder.
pub fn check_rel_path(name: &str, path: &str) -> Result<(), IndexError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.chars().any(|c| c.is_control() || c == ':')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(IndexError::UnsafePath {
            name: name.into(),
            path: path.into(),
        });
    }
    Ok(())
}

impl Index {
    pub fn read(path: &Path) -> Result<Index, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Index::from_slice(&bytes, path)
    }

    /// Parses an index's bytes; `origin` names it in errors.
    pub fn from_slice(bytes: &[u8], origin: &Path) -> Result<Index, IndexError> {
        serde_json::from_slice(bytes).map_err(|source| IndexError::Malformed {
            path: origin.to_path_buf(),
            source,
        })
    }

    /// Pretty JSON, entries sorted by name and version: the same registry gives
    /// the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut sorted = self.clone();
        sorted.sort();
        let mut bytes = serde_json::to_vec_pretty(&sorted).expect("index serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn sort(&mut self) {
        self.skills
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    }

    /// Joins shard indexes. The same entry in two shards is fine; two different
    /// entries for one skill version are a conflict.
    pub fn merge(indexes: impl IntoIterator<Item = Index>) -> Result<Index, IndexError> {
        let mut by_key: BTreeMap<(String, String), IndexEntry> = BTreeMap::new();
        for index in indexes {
            for entry in index.skills {
                let key = (entry.name.clone(), entry.version.clone());
                match by_key.get(&key) {
                    Some(existing) if *existing != entry => {
                        return Err(IndexError::Conflict {
                            name: key.0,
                            version: key.1,
                        });
                    }
                    _ => {
                        by_key.insert(key, entry);
                    }
                }
            }
        }
        Ok(Index {
            skills: by_key.into_values().collect(),
        })
    }

    /// The entry of `name` to install: `version` when given, else the newest
    /// installable version (by semver-ish order). `origin` names the index in
    /// errors.
    pub fn find(
        &self,
        name: &str,
        version: Option<&str>,
        origin: &str,
    ) -> Result<&IndexEntry, IndexError> {
        let mut candidates: Vec<&IndexEntry> =
            self.skills.iter().filter(|e| e.name == name).collect();
        if candidates.is_empty() {
            return Err(IndexError::NotFound {
                name: name.into(),
                index: origin.into(),
            });
        }
        candidates.sort_by_key(|e| version_key(&e.version));
        let chosen = match version {
            Some(version) => match candidates.iter().rev().find(|e| e.version == version) {
                Some(entry) => *entry,
                None => {
                    return Err(IndexError::VersionNotFound {
                        name: name.into(),
                        version: version.into(),
                        index: origin.into(),
                        available: candidates.iter().map(|e| e.version.clone()).collect(),
                    });
                }
            },
            None => match candidates.iter().rev().find(|e| e.is_installable()) {
                Some(entry) => *entry,
                None => candidates.last().expect("not empty"),
            },
        };
        if !chosen.is_installable() {
            return Err(IndexError::NotBuilt {
                name: name.into(),
                version: chosen.version.clone(),
                error: chosen.error.clone().unwrap_or_else(|| "no binary".into()),
            });
        }
        Ok(chosen)
    }

    /// The component the registry built from exactly the source tree with
    /// sha256 `source_sha256`, if it has one (newest version first).
    pub fn find_by_source(&self, name: &str, source_sha256: &str) -> Option<&IndexEntry> {
        let mut candidates: Vec<&IndexEntry> = self
            .skills
            .iter()
            .filter(|e| {
                e.name == name
                    && e.source_sha256.as_deref() == Some(source_sha256)
                    && e.has_component()
            })
            .collect();
        candidates.sort_by_key(|e| version_key(&e.version));
        candidates.last().copied()
    }
}

/// Orders `1.10.0` after `1.9.0`: numeric parts compare as numbers.
fn version_key(version: &str) -> Vec<(u64, String)> {
    version
        .split(['.', '-', '+'])
        .map(|part| (part.parse().unwrap_or(0), part.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, status: Status) -> IndexEntry {
        IndexEntry {
            name: name.into(),
            version: version.into(),
            status,
            path: (status != Status::Failed).then(|| format!("{name}/{version}/skill.wasm")),
            sha256: None,
            size: None,
            path_taken: None,
            error: (status == Status::Failed).then(|| "boom".into()),
            dir: None,
            source_sha256: None,
            files: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn merge_joins_and_refuses_conflicts() {
        let a = Index {
            skills: vec![entry("b", "1.0.0", Status::Ok)],
        };
        let b = Index {
            skills: vec![
                entry("a", "1.0.0", Status::Ok),
                entry("b", "1.0.0", Status::Ok),
            ],
        };
        let merged = Index::merge([a.clone(), b]).unwrap();
        assert_eq!(
            merged
                .skills
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        let c = Index {
            skills: vec![entry("b", "1.0.0", Status::Failed)],
        };
        assert!(matches!(
            Index::merge([a, c]),
            Err(IndexError::Conflict { .. })
        ));
    }

    #[test]
    fn find_takes_the_newest_built_version() {
        let index = Index {
            skills: vec![
                entry("s", "1.9.0", Status::Ok),
                entry("s", "1.10.0", Status::Ok),
                entry("s", "2.0.0", Status::Failed),
            ],
        };
        assert_eq!(index.find("s", None, "i").unwrap().version, "1.10.0");
        assert_eq!(
            index.find("s", Some("1.9.0"), "i").unwrap().version,
            "1.9.0"
        );
        assert!(matches!(
            index.find("t", None, "i"),
            Err(IndexError::NotFound { .. })
        ));
        let err = index.find("s", Some("3.0.0"), "i").unwrap_err();
        assert!(err.to_string().contains("1.9.0, 1.10.0, 2.0.0"), "{err}");
        assert!(matches!(
            index.find("s", Some("2.0.0"), "i"),
            Err(IndexError::NotBuilt { .. })
        ));
    }

    #[test]
    fn paths_that_leave_the_registry_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\b",
            "C:/x",
            "",
        ] {
            assert!(check_rel_path("s", bad).is_err(), "{bad}");
        }
        for good in ["s/1.0.0/skill.wasm", "SKILL.md", "scripts/run.sh", "a..b"] {
            assert!(check_rel_path("s", good).is_ok(), "{good}");
        }
    }
}
