//! A precompiled registry's `index.json`: one entry per skill with its status,
//! where its `skill.wasm` is (relative to the index), its sha256 and size, how
//! it was made, the source tree's hash, and every published file with its
//! size and sha256. Shards write their own index; `merge` joins them; a
//! minisign signature over it ([`crate::registry::sign`]) covers them all.
//!
//! A signature proves who published an index, not that it is the newest, nor
//! that an entry is the skill it names. So the index also carries a `serial`
//! that grows with every index written ([`Index::stamp`]) and, once signed, an
//! `expires` time (a client refuses an older serial than it accepted before,
//! and an expired index); an entry may be `yanked` (with a reason), which an
//! install takes only when that exact version is asked for; and an entry's
//! name, its `dir` folder and its `SKILL.md`'s name and version must agree
//! ([`IndexEntry::check_identity`]), or it is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    /// Withdrawn by the publisher (`boternity index yank`): installed only
    /// when this exact version is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<Yanked>,
}

/// Why and when a version was yanked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Yanked {
    pub reason: String,
    /// When, RFC 3339 (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
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

    /// The entry's folder relative to the index: `dir`, else the folder of
    /// its binary (indexes written before `dir`), else `<name>/<version>`.
    /// Not checked: see [`check_rel_path`] and [`IndexEntry::check_dir`].
    pub fn dir_or_default(&self) -> String {
        self.dir
            .clone()
            .or_else(|| {
                self.path
                    .as_deref()
                    .and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
            })
            .unwrap_or_else(|| format!("{}/{}", self.name, self.version))
    }

    /// The name rule, first half: the entry's folder is `<name>/…` (a path
    /// that stays in the registry).
    pub fn check_dir(&self) -> Result<(), IndexError> {
        let dir = self.dir_or_default();
        check_rel_path(&self.name, &dir)?;
        if dir.split('/').next() != Some(self.name.as_str()) {
            return Err(IndexError::DirMismatch {
                name: self.name.clone(),
                version: self.version.clone(),
                dir,
            });
        }
        Ok(())
    }

    /// The name rule: the entry's name, its folder and the name (and version)
    /// its `SKILL.md` (the bytes `skill_md`) gives, read as an install reads it
    /// (in a folder named after the entry), all agree. `hint` ends the error
    /// (what to do where the check runs).
    pub fn check_identity(&self, skill_md: &[u8], hint: &str) -> Result<(), IndexError> {
        self.check_dir()?;
        let text = std::str::from_utf8(skill_md).map_err(|_| IndexError::BadManifest {
            name: self.name.clone(),
            version: self.version.clone(),
            error: "it is not UTF-8".into(),
        })?;
        let manifest =
            crate::skill::manifest::Manifest::parse_in(text, &self.name).map_err(|e| {
                IndexError::BadManifest {
                    name: self.name.clone(),
                    version: self.version.clone(),
                    error: crate::error_chain(&e),
                }
            })?;
        if manifest.name != self.name || manifest.version_or_default() != self.version {
            return Err(IndexError::IdentityMismatch(Box::new(Mismatch {
                name: self.name.clone(),
                version: self.version.clone(),
                dir: self.dir_or_default(),
                skill_md_name: manifest.name.clone(),
                skill_md_version: manifest.version_or_default().to_string(),
                hint: hint.to_string(),
            })));
        }
        Ok(())
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
    /// Grows with every index written for a registry ([`Index::stamp`]: past
    /// the previous serial and the current time in unix seconds). A client
    /// refuses an index with a smaller serial than one it accepted before
    /// from the same registry and key. `0`: an index written before serials.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub serial: u64,
    /// After this time (RFC 3339, UTC) a client refuses the index unless told
    /// otherwise (`--allow-expired`): a replayed current index goes stale.
    /// Set when the index is signed; `None` in indexes written before expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub skills: Vec<IndexEntry>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How long a signed index stays valid unless told otherwise (`--expires-in`).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest validity an index may be given (ten years).
pub const MAX_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// A validity as `--expires-in` takes it: `30d`, `12h`, `90days`, `1y`
/// (humantime), more than nothing and at most [`MAX_VALIDITY`].
pub fn parse_validity(text: &str) -> Result<Duration, String> {
    let validity = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 30d, 12h or 1y"))?;
    if validity.is_zero() || validity > MAX_VALIDITY {
        return Err(format!(
            "`{text}`: an index's validity must be more than nothing and at most 10 years"
        ));
    }
    Ok(validity)
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
    #[error(
        "every version of skill `{name}` in {index} is yanked ({}); a yanked version is \
         installed only when asked for by its exact version (`{name}@VERSION`)",
        yanked.join("; ")
    )]
    AllYanked {
        name: String,
        index: String,
        /// Each version with its reason.
        yanked: Vec<String>,
    },
    #[error(
        "name rule: the index entry `{}` {} has the folder `{}`, whose SKILL.md says name `{}` \
         version {}; an entry's name, its folder and its SKILL.md's name (and version) must \
         agree, so that no skill installs in another's place: the entry is refused{}",
        .0.name, .0.version, .0.dir, .0.skill_md_name, .0.skill_md_version, .0.hint
    )]
    IdentityMismatch(Box<Mismatch>),
    #[error(
        "name rule: the index entry `{name}` {version} has the folder `{dir}`, which is not \
         `{name}/…`; an entry's name and its folder must agree: the entry is refused"
    )]
    DirMismatch {
        name: String,
        version: String,
        dir: String,
    },
    #[error("the SKILL.md of index entry `{name}` {version} cannot be read: {error}")]
    BadManifest {
        name: String,
        version: String,
        error: String,
    },
    #[error(
        "`expires` in {index} is `{value}`, not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z); \
         the index is corrupt: re-sign it (`boternity index sign`)"
    )]
    BadExpiry { index: String, value: String },
    #[error("`{spec}` is not NAME@VERSION (yank names one exact version)")]
    BadSpec { spec: String },
}

/// An entry and the `SKILL.md` it serves, disagreeing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub name: String,
    pub version: String,
    pub dir: String,
    pub skill_md_name: String,
    pub skill_md_version: String,
    /// What to do, for the context the check runs in.
    pub hint: String,
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

    /// Reads `path` if it exists (`Ok(None)` when it does not).
    pub fn read_if_exists(path: &Path) -> Result<Option<Index>, IndexError> {
        match std::fs::read(path) {
            Ok(bytes) => Index::from_slice(&bytes, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IndexError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
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
        // Plain strings, numbers and enums: serializing cannot fail.
        let mut bytes = serde_json::to_vec_pretty(&sorted).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn sort(&mut self) {
        self.skills
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    }

    /// Makes this a new index of its registry: the serial past `floor` (the
    /// serials of the indexes it follows), its own and `now` in unix seconds,
    /// so it only grows, across machines too; `expires` `validity` from now
    /// (`None`: no expiry, for an index that is not signed here).
    pub fn stamp(&mut self, floor: u64, validity: Option<Duration>, now: SystemTime) {
        let secs = unix_secs(now);
        self.serial = floor.max(self.serial).max(secs).saturating_add(1);
        self.expires = validity.map(|v| format_time(now + v.min(MAX_VALIDITY)));
    }

    /// When the index expires (`None`: it does not say). `origin` names it
    /// in errors.
    pub fn expires_at(&self, origin: &str) -> Result<Option<SystemTime>, IndexError> {
        match &self.expires {
            None => Ok(None),
            Some(text) => humantime::parse_rfc3339(text.trim())
                .map(Some)
                .map_err(|_| IndexError::BadExpiry {
                    index: origin.into(),
                    value: text.clone(),
                }),
        }
    }

    /// Marks `name` `version` yanked with `reason` (`None`: un-yanks it).
    pub fn yank(
        &mut self,
        name: &str,
        version: &str,
        reason: Option<&str>,
        now: SystemTime,
        origin: &str,
    ) -> Result<&IndexEntry, IndexError> {
        if !self.skills.iter().any(|e| e.name == name) {
            return Err(IndexError::NotFound {
                name: name.into(),
                index: origin.into(),
            });
        }
        let available = self.versions_of(name);
        let Some(entry) = self
            .skills
            .iter_mut()
            .find(|e| e.name == name && e.version == version)
        else {
            return Err(IndexError::VersionNotFound {
                name: name.into(),
                version: version.into(),
                index: origin.into(),
                available,
            });
        };
        entry.yanked = reason.map(|reason| Yanked {
            reason: reason.to_string(),
            at: Some(format_time(now)),
        });
        Ok(entry)
    }

    /// Every version of `name`, oldest first.
    fn versions_of(&self, name: &str) -> Vec<String> {
        let mut versions: Vec<&str> = self
            .skills
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.version.as_str())
            .collect();
        versions.sort_by_key(|v| version_key(v));
        versions.into_iter().map(str::to_string).collect()
    }

    /// Keeps the yanks of `previous` (the index this one replaces) on the
    /// same versions here: rebuilding a registry does not un-yank anything.
    pub fn carry_yanks(&mut self, previous: &Index) {
        for entry in self.skills.iter_mut().filter(|e| e.yanked.is_none()) {
            if let Some(old) = previous
                .skills
                .iter()
                .find(|o| o.name == entry.name && o.version == entry.version)
            {
                entry.yanked.clone_from(&old.yanked);
            }
        }
    }

    /// Joins shard indexes. The same entry in two shards is fine (yanked in
    /// either: yanked); two different entries for one skill version are a
    /// conflict. The serial is the largest of theirs (stamp the result).
    pub fn merge(indexes: impl IntoIterator<Item = Index>) -> Result<Index, IndexError> {
        let mut by_key: BTreeMap<(String, String), IndexEntry> = BTreeMap::new();
        let mut serial = 0;
        for index in indexes {
            serial = serial.max(index.serial);
            for entry in index.skills {
                let key = (entry.name.clone(), entry.version.clone());
                match by_key.get_mut(&key) {
                    Some(existing) => {
                        let same = IndexEntry {
                            yanked: existing.yanked.clone(),
                            ..entry.clone()
                        } == *existing;
                        if !same {
                            return Err(IndexError::Conflict {
                                name: key.0,
                                version: key.1,
                            });
                        }
                        if existing.yanked.is_none() {
                            existing.yanked = entry.yanked;
                        }
                    }
                    None => {
                        by_key.insert(key, entry);
                    }
                }
            }
        }
        Ok(Index {
            serial,
            expires: None,
            skills: by_key.into_values().collect(),
        })
    }

    /// The entry of `name` to install: `version` when given (yanked or not:
    /// the caller says so loudly), else the newest installable version that
    /// is not yanked (by semver-ish order). `origin` names the index in errors.
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
            None => {
                let installable = || candidates.iter().rev().filter(|e| e.is_installable());
                match installable().find(|e| e.yanked.is_none()) {
                    Some(entry) => *entry,
                    None if installable().next().is_some() => {
                        return Err(IndexError::AllYanked {
                            name: name.into(),
                            index: origin.into(),
                            yanked: installable()
                                .rev()
                                .map(|e| {
                                    let reason =
                                        e.yanked.as_ref().map_or("", |y| y.reason.as_str());
                                    format!("{}: {reason}", e.version)
                                })
                                .collect(),
                        });
                    }
                    None => candidates
                        .last()
                        .copied()
                        .ok_or_else(|| IndexError::NotFound {
                            name: name.into(),
                            index: origin.into(),
                        })?,
                }
            }
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

    /// The newest installable version of `name` that is not yanked.
    pub fn newest(&self, name: &str) -> Option<&IndexEntry> {
        self.skills
            .iter()
            .filter(|e| e.name == name && e.is_installable() && e.yanked.is_none())
            .max_by_key(|e| version_key(&e.version))
    }

    /// The entry of `name` `version`, if the index has it.
    pub fn get(&self, name: &str, version: &str) -> Option<&IndexEntry> {
        self.skills
            .iter()
            .find(|e| e.name == name && e.version == version)
    }

    /// The component the registry built from exactly the source tree with
    /// sha256 `source_sha256`, if it has one that is not yanked (newest
    /// version first).
    pub fn find_by_source(&self, name: &str, source_sha256: &str) -> Option<&IndexEntry> {
        let mut candidates: Vec<&IndexEntry> = self
            .skills
            .iter()
            .filter(|e| {
                e.name == name
                    && e.source_sha256.as_deref() == Some(source_sha256)
                    && e.has_component()
                    && e.yanked.is_none()
            })
            .collect();
        candidates.sort_by_key(|e| version_key(&e.version));
        candidates.last().copied()
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 in UTC, to the second (`2030-01-31T12:00:00Z`); a time
/// humantime cannot write (before 1970, after 9999) is written as the epoch.
pub fn format_time(time: SystemTime) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    if time < SystemTime::UNIX_EPOCH {
        return "1970-01-01T00:00:00Z".into();
    }
    match write!(text, "{}", humantime::format_rfc3339_seconds(time)) {
        Ok(()) => text,
        Err(_) => "1970-01-01T00:00:00Z".into(),
    }
}

/// How two versions order, numeric parts as numbers (`1.10.0` > `1.9.0`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    version_key(a).cmp(&version_key(b))
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
            yanked: None,
        }
    }

    fn index(skills: Vec<IndexEntry>) -> Index {
        Index {
            skills,
            ..Index::default()
        }
    }

    #[test]
    fn merge_joins_and_refuses_conflicts() {
        let a = index(vec![entry("b", "1.0.0", Status::Ok)]);
        let b = index(vec![
            entry("a", "1.0.0", Status::Ok),
            entry("b", "1.0.0", Status::Ok),
        ]);
        let merged = Index::merge([a.clone(), b]).unwrap();
        assert_eq!(
            merged
                .skills
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        let c = index(vec![entry("b", "1.0.0", Status::Failed)]);
        assert!(matches!(
            Index::merge([a, c]),
            Err(IndexError::Conflict { .. })
        ));
    }

    #[test]
    fn find_takes_the_newest_built_version() {
        let index = index(vec![
            entry("s", "1.9.0", Status::Ok),
            entry("s", "1.10.0", Status::Ok),
            entry("s", "2.0.0", Status::Failed),
        ]);
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

    #[test]
    fn yanked_versions_are_taken_only_when_asked_for_exactly() {
        let mut idx = index(vec![
            entry("s", "1.0.0", Status::Ok),
            entry("s", "2.0.0", Status::Ok),
        ]);
        let now = SystemTime::now();
        idx.yank("s", "2.0.0", Some("broken"), now, "i").unwrap();
        assert_eq!(idx.find("s", None, "i").unwrap().version, "1.0.0");
        let asked = idx.find("s", Some("2.0.0"), "i").unwrap();
        assert_eq!(asked.yanked.as_ref().unwrap().reason, "broken");
        assert_eq!(idx.newest("s").unwrap().version, "1.0.0");
        idx.yank("s", "1.0.0", Some("also broken"), now, "i")
            .unwrap();
        let err = idx.find("s", None, "i").unwrap_err();
        assert!(matches!(err, IndexError::AllYanked { .. }), "{err}");
        assert!(err.to_string().contains("2.0.0: broken"), "{err}");
        // Un-yank.
        idx.yank("s", "1.0.0", None, now, "i").unwrap();
        assert_eq!(idx.find("s", None, "i").unwrap().version, "1.0.0");
        assert!(matches!(
            idx.yank("s", "9.0.0", Some("x"), now, "i"),
            Err(IndexError::VersionNotFound { .. })
        ));
        // Yanks survive a rebuild (carry) and a merge.
        let mut rebuilt = index(vec![entry("s", "2.0.0", Status::Ok)]);
        rebuilt.carry_yanks(&idx);
        assert!(rebuilt.skills[0].yanked.is_some());
        let merged = Index::merge([index(vec![entry("s", "2.0.0", Status::Ok)]), rebuilt]).unwrap();
        assert!(merged.skills[0].yanked.is_some());
    }

    #[test]
    fn stamps_only_grow_and_old_indexes_read() {
        let old: Index = serde_json::from_str(r#"{"skills": []}"#).unwrap();
        assert_eq!((old.serial, old.expires.as_deref()), (0, None));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut idx = Index::default();
        idx.stamp(0, Some(Duration::from_secs(60)), now);
        assert_eq!(idx.serial, 1_700_000_001);
        assert_eq!(idx.expires.as_deref(), Some("2023-11-14T22:14:20Z"));
        assert_eq!(
            idx.expires_at("i").unwrap(),
            Some(now + Duration::from_secs(60))
        );
        // Past a previous serial from the future, and past its own.
        idx.stamp(5_000_000_000, None, now);
        assert_eq!((idx.serial, idx.expires.as_deref()), (5_000_000_001, None));
        idx.stamp(0, None, now);
        assert_eq!(idx.serial, 5_000_000_002);
        idx.expires = Some("next tuesday".into());
        assert!(matches!(
            idx.expires_at("i"),
            Err(IndexError::BadExpiry { .. })
        ));
        assert!(parse_validity("30d").is_ok());
        for bad in ["0s", "11y", "soon", ""] {
            assert!(parse_validity(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn an_entry_must_be_the_skill_it_names() {
        let mut e = entry("innocent", "1.0.0", Status::Ok);
        e.dir = Some("innocent/1.0.0".into());
        let own = b"---\nname: innocent\ndescription: d\nmetadata:\n  version: 1.0.0\n---\n";
        e.check_identity(own, "").unwrap();
        // No name: the folder's (the entry's) stands in, as at install.
        e.check_identity(
            b"---\ndescription: d\nmetadata:\n  version: 1.0.0\n---\n",
            "",
        )
        .unwrap();
        let hijack = b"---\nname: victim\ndescription: d\nmetadata:\n  version: 1.0.0\n---\n";
        let err = e.check_identity(hijack, "").unwrap_err().to_string();
        assert!(
            err.contains("`innocent`")
                && err.contains("`victim`")
                && err.contains("innocent/1.0.0"),
            "{err}"
        );
        let other_version =
            b"---\nname: innocent\ndescription: d\nmetadata:\n  version: 0.1.0\n---\n";
        assert!(e.check_identity(other_version, "").is_err());
        e.dir = Some("victim/1.0.0".into());
        let err = e.check_identity(own, "").unwrap_err();
        assert!(matches!(err, IndexError::DirMismatch { .. }), "{err}");
        e.dir = Some("innocent/../victim".into());
        assert!(matches!(
            e.check_identity(own, ""),
            Err(IndexError::UnsafePath { .. })
        ));
        e.dir = Some("innocent/1.0.0".into());
        assert!(matches!(
            e.check_identity(b"\xff\xfe", ""),
            Err(IndexError::BadManifest { .. })
        ));
    }
}
