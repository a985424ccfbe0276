//! A checkout of one commit of a repository: resolve the ref, fetch that
//! commit (or take it from the cache), check its tree and write into a
//! temporary folder what discovery reads, find the skills, and write out a
//! chosen one's files when the install layer ([`mod@crate::install`]'s git
//! source) prepares it; plus picking skills by name and describing origins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::GitError;
use super::discover::{self, Found};
use super::fetch::{self, RepoCache, Resolved};
use super::spec::{self, SourceSpec};
use super::tree::{Entry, EntryKind, Tree};
use crate::context::Context;
use crate::fsutil::{BeneathDir, IoOp, IoResultExt};
use crate::skill::manifest::MANIFEST_FILE;
use crate::store::provenance::Origin;

/// One commit of a repository, checked whole and written out as far as
/// needed for one operation (removed on drop): at first the folders, links,
/// every `SKILL.md` and `.claude-plugin/marketplace.json` (what discovery
/// reads); a skill folder's other files once it is chosen
/// ([`Checkout::materialize`], which the install layer calls).
#[derive(Debug)]
pub struct Checkout {
    /// The URL as recorded (credentials stripped).
    pub url: String,
    pub fetch_url: String,
    /// The ref asked for (`None`: the default branch).
    pub requested: Option<String>,
    pub commit: String,
    /// The folder to start discovery in (`--path`, or a tree URL's path).
    pub path: Option<String>,
    /// The tree's root.
    pub root: PathBuf,
    cache: RepoCache,
    /// The commit's tree, checked.
    tree: Tree,
    root_dir: BeneathDir,
    /// Which entries of `tree` are written out.
    written: Mutex<Vec<bool>>,
    _temp: tempfile::TempDir,
}

/// Resolves and fetches what `spec` names (`offline`: from the cache only).
pub fn checkout(context: &Context, spec: &SourceSpec, offline: bool) -> Result<Checkout, GitError> {
    let cache = RepoCache::for_url(context, &spec.url);
    let _lock = cache.lock()?;
    let resolved =
        fetch::resolve_ref(&cache, &spec.fetch_url, &spec.url, &spec.reference, offline)?;
    let path = match (&spec.path, &resolved.tree_path) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(t)) => spec::normal_path(t)?,
        (None, None) => None,
    };
    write_out(&cache, &spec.fetch_url, &spec.url, resolved, path, offline)
}

/// Writes out `commit` of `url` (fetched unless cached).
pub fn checkout_commit(
    context: &Context,
    fetch_url: &str,
    url: &str,
    requested: Option<String>,
    commit: &str,
    offline: bool,
) -> Result<Checkout, GitError> {
    // Wherever they come from (a lock file, a provenance record), checked
    // before anything is run or written.
    spec::check_url(fetch_url)?;
    spec::check_url(url)?;
    spec::check_commit(commit)?;
    spec::check_requested(requested.as_deref())?;
    let cache = RepoCache::for_url(context, url);
    let _lock = cache.lock()?;
    let resolved = Resolved {
        requested,
        commit: commit.to_string(),
        tree_path: None,
    };
    write_out(&cache, fetch_url, url, resolved, None, offline)
}

fn write_out(
    cache: &RepoCache,
    fetch_url: &str,
    url: &str,
    resolved: Resolved,
    path: Option<String>,
    offline: bool,
) -> Result<Checkout, GitError> {
    cache.ensure_commit(fetch_url, &resolved.commit, offline)?;
    // The whole tree is checked (caps, names, links) before anything is
    // written.
    let tree = cache.read_tree(&resolved.commit)?;
    let tmp_parent = std::env::temp_dir();
    let temp = tempfile::Builder::new()
        .prefix("boternity-git-")
        .tempdir()
        .on(IoOp::Create, &tmp_parent)?;
    // Named after the repository, so a root skill without a name takes it.
    let root = temp.path().join(spec::repo_name(url));
    let root_dir = BeneathDir::create_new(&root)?;
    let mut written = vec![false; tree.entries().len()];
    cache.write_entries(&tree, &root_dir, &discovery_reads, &mut written)?;
    Ok(Checkout {
        url: url.to_string(),
        fetch_url: fetch_url.to_string(),
        requested: resolved.requested,
        commit: resolved.commit,
        path,
        root,
        cache: cache.clone(),
        tree,
        root_dir,
        written: Mutex::new(written),
        _temp: temp,
    })
}

/// What discovery reads: folders, links (they may lead to a skill folder),
/// every `SKILL.md` and `.claude-plugin/marketplace.json`.
fn discovery_reads(entry: &Entry) -> bool {
    match entry.kind {
        EntryKind::Dir | EntryKind::Symlink { .. } => true,
        EntryKind::File { .. } => {
            let name = entry.path.rsplit('/').next().unwrap_or_default();
            name == MANIFEST_FILE
                || entry.path == MARKETPLACE
                || entry.path.ends_with(&format!("/{MARKETPLACE}"))
        }
    }
}

/// Where a repository lists its plugins' skills.
const MARKETPLACE: &str = ".claude-plugin/marketplace.json";

impl Checkout {
    /// Writes out every file of the folders `rels` (relative to the root,
    /// `""`: all of it) not written yet: what a chosen skill is built and
    /// installed from.
    pub fn materialize(&self, rels: &[&str]) -> Result<(), GitError> {
        let rels: Vec<&str> = rels.iter().map(|r| r.trim_matches('/')).collect();
        let pick = |e: &Entry| {
            rels.iter().any(|rel| {
                rel.is_empty()
                    || e.path == *rel
                    || (e.path.starts_with(rel) && e.path.as_bytes().get(rel.len()) == Some(&b'/'))
            })
        };
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        self.cache
            .write_entries(&self.tree, &self.root_dir, &pick, &mut written)
    }

    /// The skills in the tree (see [`discover`]).
    pub fn discover(&self) -> Result<Vec<Found>, GitError> {
        discover::discover(&self.root, self.path.as_deref(), &self.url, &self.commit)
    }

    /// The skill whose folder is `rel` (`""`: the root).
    pub fn skill_at(&self, rel: &str) -> Result<Found, GitError> {
        let start = spec::normal_path(rel)?;
        let found = discover::discover(&self.root, start.as_deref(), &self.url, &self.commit)?;
        found
            .into_iter()
            .find(|f| f.rel == start.clone().unwrap_or_default())
            .ok_or_else(|| GitError::NoSkill {
                url: self.url.clone(),
                commit: self.commit.clone(),
                path: Some(rel.to_string()),
            })
    }

    /// The origin recorded for the skill at `rel`.
    pub fn origin(&self, rel: &str) -> Origin {
        Origin::Git {
            url: self.url.clone(),
            path: rel.to_string(),
            requested: self.requested.clone(),
            commit: self.commit.clone(),
        }
    }
}

/// The skills to install: those `names` pick, all with `all`, or the only
/// one; several and no choice is an error listing them.
pub fn select(
    found: Vec<Found>,
    names: &[String],
    all: bool,
    url: &str,
) -> Result<Vec<Found>, GitError> {
    let available = || {
        found
            .iter()
            .map(|f| f.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<Found> = if !names.is_empty() {
        let mut chosen = Vec::new();
        for name in names {
            let matching: Vec<&Found> = found.iter().filter(|f| f.answers_to(name)).collect();
            match matching.as_slice() {
                [] => {
                    return Err(GitError::NoSuchSkill {
                        name: name.clone(),
                        url: url.into(),
                        available: available(),
                    });
                }
                [one] => chosen.push((*one).clone()),
                [first, second, ..] => {
                    return Err(GitError::DuplicateKey {
                        key: name.clone(),
                        first: first.rel.clone(),
                        second: second.rel.clone(),
                        url: url.into(),
                    });
                }
            }
        }
        chosen
    } else if all || found.len() == 1 {
        found
    } else {
        return Err(GitError::SeveralSkills {
            url: url.into(),
            count: found.len(),
            listing: found
                .iter()
                .map(|f| format!("  {}", f.describe()))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    };
    let mut seen: BTreeMap<&str, &Found> = BTreeMap::new();
    for f in &chosen {
        if let Some(first) = seen.insert(&f.key, f)
            && first.rel != f.rel
        {
            return Err(GitError::DuplicateKey {
                key: f.key.clone(),
                first: first.rel.clone(),
                second: f.rel.clone(),
                url: url.into(),
            });
        }
    }
    let mut unique = chosen;
    unique.dedup_by(|a, b| a.rel == b.rel);
    Ok(unique)
}

pub(crate) fn display_rel(rel: &str) -> String {
    if rel.is_empty() {
        ".".into()
    } else {
        rel.to_string()
    }
}
