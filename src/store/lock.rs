//! `skills.lock`: what the store holds, in a form another machine can
//! reproduce (`boternity sync`). TOML, one table per skill, sorted by key,
//! no timestamps (so two installs of the same thing write the same file and
//! merges stay line-wise): where each skill came from (URL with credentials
//! stripped, path, requested ref, resolved commit), the sha256 of its source
//! tree, of its binary and of every installed file, and the `Cargo.lock`
//! resolved at install time for a Rust skill that ships none.
//!
//! Derived from the provenance records, and rewritten atomically under the
//! store's lock on every install, update and removal. Read back, every git
//! entry's URL, commit, ref and path must pass the checks `install --git`
//! makes ([`LockedSkill::check`]): a lock is a file anyone may have edited.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::git::{GitError, spec};
use crate::store::SkillStore;
use crate::store::provenance::{Origin, Provenance};

/// The lock's file name, in the store's data folder.
pub const LOCK_FILE: &str = "skills.lock";
/// The format's version: bumped when its meaning changes.
pub const LOCK_VERSION: u32 = 1;
/// Largest lock file read.
const MAX_LOCK_BYTES: u64 = 64 * 1024 * 1024;

/// A whole `skills.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    #[serde(default)]
    pub skills: BTreeMap<String, LockedSkill>,
}

/// Which kind of origin a lock entry records (the `kind` of its
/// [`Origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Git,
    Folder,
    Registry,
    Oci,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Git => "git",
            SourceKind::Folder => "folder",
            SourceKind::Registry => "registry",
            SourceKind::Oci => "oci",
        })
    }
}

/// One skill of the lock: its [`Origin`] (flattened as `source`, `url`,
/// `path`, `ref`, `commit`, `name`, `version`) and the hashes it was
/// installed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedSkill {
    pub source: SourceKind,
    /// The repository URL (credentials stripped), the folder, or the registry.
    pub url: String,
    /// The skill's folder in the repository (`""`: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The ref asked for (`refs/heads/…`, `refs/tags/…`, a commit for a
    /// pinned install); absent: the default branch.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The commit installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// An OCI artifact's manifest digest (`sha256:…`): what `sync` installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A registry entry's name and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// sha256 of the skill's source tree at that commit.
    pub source_sha256: String,
    /// sha256 of `skill.wasm` (absent for prompt skills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_sha256: Option<String>,
    /// The `Cargo.lock` resolved at install time, for a Rust skill that
    /// ships none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cargo_lock: Option<String>,
    /// Every installed file of the skill's folder and its sha256.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// Why a lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{} is not a valid skills.lock; restore it from version control", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "{} has version {version}; this boternity reads version {LOCK_VERSION}: upgrade boternity",
        path.display()
    )]
    Version { path: PathBuf, version: u32 },
    #[error(
        "{}: the entry of `{key}` is refused (nothing was run); restore the lock from version \
         control, or write it anew from a store (every install does)",
        path.display()
    )]
    Refused {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<GitError>,
    },
}

impl LockedSkill {
    /// For a git entry: its URL, commit, ref and path pass the same checks
    /// as `install --git` ([`crate::git::spec::check_url`] and the rest), so
    /// nothing in a lock file reaches git unchecked. Other entries are never
    /// given to git.
    pub fn check(&self) -> Result<(), GitError> {
        if self.source == SourceKind::Oci {
            // Parsed as `install oci://` parses it, and pinned by a digest.
            let digest = self.digest.as_deref().unwrap_or("(none)");
            return crate::oci::Reference::parse(&self.url)
                .map_err(|e| e.to_string())
                .and_then(|_| crate::oci::reference::check_digest(digest))
                .map_err(|why| {
                    GitError::Conflict(format!("the OCI entry `{}` is refused: {why}", self.url))
                });
        }
        if self.source != SourceKind::Git {
            return Ok(());
        }
        spec::check_url(&self.url)?;
        spec::check_commit(self.commit.as_deref().unwrap_or("(none)"))?;
        spec::check_requested(self.reference.as_deref())?;
        if let Some(path) = &self.path {
            spec::normal_path(path)?;
        }
        Ok(())
    }

    /// The entry for an installed skill's provenance record (`dir` is its
    /// folder in the store, for a kept `Cargo.lock`).
    /// Where the entry says the skill came from.
    pub fn origin(&self) -> Origin {
        match self.source {
            SourceKind::Git => Origin::Git {
                url: self.url.clone(),
                path: self.path.clone().unwrap_or_default(),
                requested: self.reference.clone(),
                commit: self.commit.clone().unwrap_or_default(),
            },
            SourceKind::Folder => Origin::Folder {
                path: PathBuf::from(&self.url),
            },
            SourceKind::Registry => Origin::Registry {
                url: self.url.clone(),
                name: self.name.clone().unwrap_or_default(),
                version: self.version.clone().unwrap_or_default(),
            },
            SourceKind::Oci => Origin::Oci {
                reference: self.url.clone(),
                digest: self.digest.clone().unwrap_or_default(),
            },
        }
    }

    pub fn from_provenance(p: &Provenance, dir: &Path) -> Option<LockedSkill> {
        let mut entry = LockedSkill {
            source: SourceKind::Folder,
            url: String::new(),
            path: None,
            reference: None,
            commit: None,
            digest: None,
            name: None,
            version: None,
            source_sha256: p.source_sha256.clone(),
            wasm_sha256: p.wasm.as_ref().map(|w| w.sha256.clone()),
            cargo_lock: None,
            files: p
                .files
                .iter()
                .map(|(rel, d)| (rel.clone(), d.sha256.clone()))
                .collect(),
        };
        match p.origin.as_ref()? {
            Origin::Git {
                url,
                path,
                requested,
                commit,
            } => {
                entry.source = SourceKind::Git;
                entry.url = url.clone();
                entry.path = Some(path.clone());
                entry.reference = requested.clone();
                entry.commit = Some(commit.clone());
            }
            Origin::Folder { path } => {
                entry.source = SourceKind::Folder;
                entry.url = path.display().to_string();
            }
            Origin::Registry { url, name, version } => {
                entry.source = SourceKind::Registry;
                entry.url = url.clone();
                entry.name = Some(name.clone());
                entry.version = Some(version.clone());
            }
            Origin::Oci { reference, digest } => {
                entry.source = SourceKind::Oci;
                entry.url = reference.clone();
                entry.digest = Some(digest.clone());
            }
        }
        if p.resolved_cargo_lock() {
            entry.cargo_lock = std::fs::read_to_string(dir.join("Cargo.lock")).ok();
        }
        Some(entry)
    }
}

impl LockFile {
    /// The lock for what `store` holds now (skills without a provenance
    /// record, from boternity's old installer, are left out).
    pub fn of_store(store: &SkillStore) -> Result<LockFile, IoError> {
        let mut lock = LockFile {
            version: LOCK_VERSION,
            skills: BTreeMap::new(),
        };
        let skills = store.skills_dir();
        let entries = match std::fs::read_dir(&skills) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lock),
            Err(e) => return Err(IoError::new(IoOp::List, &skills, e)),
        };
        for entry in entries {
            let entry = entry.on(IoOp::List, &skills)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            match Provenance::read(&entry.path()) {
                Ok(Some(p)) => {
                    if let Some(locked) = LockedSkill::from_provenance(&p, &entry.path()) {
                        lock.skills.insert(name, locked);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(skill = %name, error = %crate::error_chain(&e), "left out of skills.lock")
                }
            }
        }
        Ok(lock)
    }

    /// The lock as TOML.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("the lock serializes");
        format!(
            "# skills.lock: written by boternity on every install, update and removal.\n\
             # `boternity sync --lock skills.lock` installs exactly this elsewhere.\n\n{body}"
        )
    }

    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<LockFile, LockError> {
        let bytes = crate::fsutil::read_capped(path, MAX_LOCK_BYTES).map_err(|e| match e {
            crate::fsutil::CappedReadError::Io(e) => LockError::Io(e),
            other => LockError::Io(IoError::new(
                IoOp::Read,
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
            )),
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let lock: LockFile = toml::from_str(&text).map_err(|source| LockError::Malformed {
            path: path.to_path_buf(),
            source,
        })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.to_path_buf(),
                version: lock.version,
            });
        }
        for (key, entry) in &lock.skills {
            entry.check().map_err(|source| LockError::Refused {
                path: path.to_path_buf(),
                key: key.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(lock)
    }
}

/// Where `store` keeps its lock.
pub fn lock_path(store: &SkillStore) -> PathBuf {
    store.root().join(LOCK_FILE)
}

/// Rewrites `store`'s lock from its provenance records, atomically. Called
/// under the store's lock by every commit and removal.
pub fn write(store: &SkillStore) -> Result<(), IoError> {
    let lock = LockFile::of_store(store)?;
    crate::fsutil::write_atomically(&lock_path(store), lock.to_toml().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_whose_git_entry_would_reach_git_unchecked_is_refused_on_read() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let good = format!(
            "version = 1\n\n[skills.docx]\nsource = \"git\"\nurl = \"https://example.com/r\"\n\
             path = \"skills/docx\"\ncommit = \"{commit}\"\nsource_sha256 = \"00\"\n"
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("skills.lock");
        std::fs::write(&path, &good).unwrap();
        assert_eq!(LockFile::read(&path).unwrap().skills.len(), 1);
        for (from, to, why) in [
            (
                "https://example.com/r",
                "ext::sh -c touch% /tmp/x",
                "remote helper",
            ),
            (
                "https://example.com/r",
                "--upload-pack=touch /tmp/x",
                "starts with `-`",
            ),
            (commit, "HEAD", "not a full commit id"),
            (commit, "--output=/tmp/x", "not a full commit id"),
            ("skills/docx", "../../etc", "leads outside"),
        ] {
            std::fs::write(&path, good.replace(from, to)).unwrap();
            let err = LockFile::read(&path).unwrap_err();
            let text = crate::error_chain(&err);
            assert!(
                text.contains("the entry of `docx` is refused") && text.contains(why),
                "{to}: {text}"
            );
        }
        // Not git: never given to git, so not checked as a URL.
        std::fs::write(
            &path,
            good.replace("source = \"git\"", "source = \"folder\"")
                .replace("https://example.com/r", "relative/folder"),
        )
        .unwrap();
        assert!(LockFile::read(&path).is_ok());
    }
}
