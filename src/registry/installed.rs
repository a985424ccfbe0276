//! How the skills installed from a registry stand against that registry's
//! current index: the newest version it offers, and whether the installed
//! version was yanked (with the publisher's reason). `outdated` asks each
//! registry once (or, offline, reads the index the download cache holds);
//! `verify` reads only the cache. The index goes through the same client as
//! an install: its signature when keys are pinned, its expiry and serial.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::registry::client::{RegistryClient, RegistrySource};
use crate::registry::index::{self, Index};
use crate::registry::sign::TrustedKey;
use crate::store::provenance::Origin;
use crate::store::{InstalledSkill, SkillStore, StoreError};

/// Where a registry skill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    UpToDate,
    /// The registry offers a newer version.
    Outdated,
    /// The installed version is yanked in the registry's current index.
    Yanked,
    /// The index could not be had or used (the reason is in `error`).
    Unknown,
}

/// One skill installed from a registry.
#[derive(Debug, Clone)]
pub struct RegistrySkill {
    /// The store key.
    pub name: String,
    /// The registry (URL or folder) it came from.
    pub url: String,
    /// Its name in the registry's index.
    pub entry: String,
    pub installed: String,
    /// The newest installable version that is not yanked.
    pub latest: Option<String>,
    pub standing: Standing,
    /// Why the installed version was yanked.
    pub yanked: Option<String>,
    pub error: Option<String>,
}

/// How to ask the registries.
#[derive(Debug, Clone, Default)]
pub struct AskOptions {
    /// Keys an index must be signed with (none: not checked).
    pub keys: Vec<TrustedKey>,
    /// Only the download cache (a folder registry is read as it is).
    pub offline: bool,
    pub allow_expired: bool,
}

/// The registry origin of an installed skill: `(url, entry name, version)`.
pub fn registry_origin(skill: &InstalledSkill) -> Option<(&str, &str, &str)> {
    match skill.provenance.as_ref()?.origin.as_ref()? {
        Origin::Registry { url, name, version } => Some((url, name, version)),
        _ => None,
    }
}

/// Every skill of `store` installed from a registry, each against its
/// registry's current index (each registry asked once).
pub fn standings(
    context: &Context,
    store: &SkillStore,
    options: &AskOptions,
) -> Result<Vec<RegistrySkill>, StoreError> {
    let skills = store.list()?;
    Ok(standings_of(context, &skills, options))
}

/// [`standings`] of the given skills (those not from a registry are left out).
pub fn standings_of(
    context: &Context,
    skills: &[InstalledSkill],
    options: &AskOptions,
) -> Vec<RegistrySkill> {
    let mut indexes: BTreeMap<String, Result<Index, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for skill in skills {
        let Some((url, entry, installed)) = registry_origin(skill) else {
            continue;
        };
        let index = indexes
            .entry(url.to_string())
            .or_insert_with(|| fetch(context, url, options));
        out.push(stand(&skill.name, url, entry, installed, index));
    }
    out
}

fn fetch(context: &Context, url: &str, options: &AskOptions) -> Result<Index, String> {
    let mut client = RegistryClient::new(context, RegistrySource::parse(url), options.keys.clone());
    client.offline = options.offline;
    client.allow_expired = options.allow_expired;
    client
        .fetch_index()
        .map(|f| f.index)
        .map_err(|e| crate::error_chain(&e))
}

fn stand(
    name: &str,
    url: &str,
    entry: &str,
    installed: &str,
    index: &Result<Index, String>,
) -> RegistrySkill {
    let mut line = RegistrySkill {
        name: name.into(),
        url: url.into(),
        entry: entry.into(),
        installed: installed.into(),
        latest: None,
        standing: Standing::Unknown,
        yanked: None,
        error: None,
    };
    let index = match index {
        Ok(index) => index,
        Err(e) => {
            line.error = Some(e.clone());
            return line;
        }
    };
    line.latest = index.newest(entry).map(|e| e.version.clone());
    line.yanked = index
        .get(entry, installed)
        .and_then(|e| e.yanked.as_ref())
        .map(|y| y.reason.clone());
    line.standing = if line.yanked.is_some() {
        Standing::Yanked
    } else {
        match &line.latest {
            Some(latest)
                if index::compare_versions(latest, installed) == std::cmp::Ordering::Greater =>
            {
                Standing::Outdated
            }
            Some(_) => Standing::UpToDate,
            None if index.skills.iter().any(|e| e.name == entry) => Standing::UpToDate,
            None => {
                line.error = Some(format!("the registry's index no longer lists `{entry}`"));
                Standing::Unknown
            }
        }
    };
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::index::{IndexEntry, Status, Yanked};

    fn entry(version: &str, yanked: Option<&str>) -> IndexEntry {
        IndexEntry {
            name: "tool".into(),
            version: version.into(),
            status: Status::Ok,
            path: None,
            sha256: None,
            size: None,
            path_taken: None,
            error: None,
            dir: None,
            source_sha256: None,
            files: vec![crate::registry::index::IndexFile {
                path: "SKILL.md".into(),
                size: 1,
                sha256: "0".repeat(64),
                executable: false,
            }],
            warnings: Vec::new(),
            yanked: yanked.map(|r| Yanked {
                reason: r.into(),
                at: None,
            }),
        }
    }

    #[test]
    fn installed_versions_stand_against_the_index() {
        let index = Ok(Index {
            skills: vec![entry("1.0.0", Some("CVE-1")), entry("2.0.0", None)],
            ..Index::default()
        });
        let yanked = stand("tool", "u", "tool", "1.0.0", &index);
        assert_eq!(yanked.standing, Standing::Yanked);
        assert_eq!(yanked.yanked.as_deref(), Some("CVE-1"));
        assert_eq!(yanked.latest.as_deref(), Some("2.0.0"));
        assert_eq!(
            stand("tool", "u", "tool", "2.0.0", &index).standing,
            Standing::UpToDate
        );
        let gone = stand("tool", "u", "other", "1.0.0", &index);
        assert_eq!(gone.standing, Standing::Unknown);
        let down = stand("tool", "u", "tool", "1.0.0", &Err("offline".into()));
        assert_eq!(
            (down.standing, down.error.as_deref()),
            (Standing::Unknown, Some("offline"))
        );
    }
}
