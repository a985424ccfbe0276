//! A precompiled registry's `index.json`: one entry per skill with its status,
//! where its `skill.wasm` is (relative to the index), its sha256 and size, and
//! how it was made. Shards write their own index; `merge` joins them.

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
    /// A prompt skill: listed, nothing to compile.
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
    /// What the lenient `SKILL.md` reader bent (empty for a spec-clean skill).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::skill::manifest::Warning>,
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
    #[error("no skill named `{name}` in {}", index.display())]
    NotFound { name: String, index: PathBuf },
    #[error("skill `{name}` {version} is in the index but did not build: {error}")]
    NotBuilt {
        name: String,
        version: String,
        error: String,
    },
}

impl Index {
    pub fn read(path: &Path) -> Result<Index, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| IndexError::Malformed {
            path: path.to_path_buf(),
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

    /// The newest successfully built version of `name` (by semver-ish order).
    pub fn find(&self, name: &str, index_path: &Path) -> Result<&IndexEntry, IndexError> {
        let mut candidates: Vec<&IndexEntry> =
            self.skills.iter().filter(|e| e.name == name).collect();
        if candidates.is_empty() {
            return Err(IndexError::NotFound {
                name: name.into(),
                index: index_path.to_path_buf(),
            });
        }
        candidates.sort_by_key(|e| version_key(&e.version));
        let built = candidates
            .iter()
            .rev()
            .find(|e| e.path.is_some() && e.status.is_success());
        match built {
            Some(entry) => Ok(entry),
            None => {
                let last = candidates.last().expect("not empty");
                Err(IndexError::NotBuilt {
                    name: name.into(),
                    version: last.version.clone(),
                    error: last.error.clone().unwrap_or_else(|| "no binary".into()),
                })
            }
        }
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
        assert_eq!(index.find("s", Path::new("i")).unwrap().version, "1.10.0");
        assert!(matches!(
            index.find("t", Path::new("i")),
            Err(IndexError::NotFound { .. })
        ));
    }
}
