//! Resolving a ref to a commit (`git ls-remote`), fetching only that commit,
//! shallow, into a cache keyed by URL (`<cache>/git/<sha256 of the URL>/`),
//! and writing a commit's tree into a folder.
//!
//! A commit already in the cache is never fetched again, so a reinstall or a
//! `sync` of a cached commit does not touch the network; the refs last seen
//! are kept too, for `--offline`. The tree is written from git's objects by
//! boternity itself ([`super::tree`]), not checked out: no filter (LFS or
//! any other) runs, submodules are skipped, the tree is checked and capped
//! before anything is written, and nothing is written through a link.
//!
//! Every URL and commit is checked here, where git is given it
//! ([`super::spec::check_url`], [`super::spec::check_commit`]), whatever it
//! came from.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::GitError;
use super::command::git;
use super::spec::{RefRequest, check_commit, check_url, is_full_commit};
use super::tree::{Entry, Tree};
use crate::context::{Context, GitSettings};
use crate::fsutil::{BeneathDir, IoError, IoOp, IoResultExt};

pub use super::tree::MAX_TREE_BYTES;

/// The refs a remote advertises.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteRefs {
    /// The branch `HEAD` points at (`refs/heads/main`), when the remote says.
    pub head: Option<String>,
    /// The commit of `HEAD`.
    pub head_commit: Option<String>,
    /// Every branch and tag (`refs/heads/…`, `refs/tags/…`) and its commit
    /// (annotated tags peeled).
    pub refs: BTreeMap<String, String>,
}

/// A ref resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The full ref asked for (`refs/heads/x`, `refs/tags/v1`), the commit
    /// for `--rev`, `None` for the default branch: what `update` follows.
    pub requested: Option<String>,
    pub commit: String,
    /// The path a tree URL named after its ref.
    pub tree_path: Option<String>,
}

/// `git ls-remote` of `fetch_url` (`url` names it in errors).
pub fn ls_remote(
    settings: &GitSettings,
    fetch_url: &str,
    url: &str,
) -> Result<RemoteRefs, GitError> {
    check_url(fetch_url)?;
    let out = git(
        settings,
        None,
        &[
            OsStr::new("ls-remote"),
            OsStr::new("--symref"),
            OsStr::new("--"),
            OsStr::new(fetch_url),
        ],
        None,
        &format!("ls-remote of {url} (listing its refs)"),
    )?;
    Ok(parse_ls_remote(&String::from_utf8_lossy(&out)))
}

fn parse_ls_remote(text: &str) -> RemoteRefs {
    let mut refs = RemoteRefs::default();
    let mut peeled = BTreeMap::new();
    for line in text.lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                refs.head = Some(target.to_string());
            }
            continue;
        }
        if name == "HEAD" {
            refs.head_commit = Some(left.to_string());
        } else if let Some(tag) = name.strip_suffix("^{}") {
            peeled.insert(tag.to_string(), left.to_string());
        } else if name.starts_with("refs/heads/") || name.starts_with("refs/tags/") {
            refs.refs.insert(name.to_string(), left.to_string());
        }
    }
    refs.refs.extend(peeled);
    refs
}

/// Resolves `request` against `refs`.
pub fn resolve(refs: &RemoteRefs, request: &RefRequest, url: &str) -> Result<Resolved, GitError> {
    let find = |kind: &'static str, prefix: &str, name: &str| {
        let full = format!("{prefix}{name}");
        match refs.refs.get(&full) {
            Some(commit) => Ok(Resolved {
                requested: Some(full),
                commit: commit.clone(),
                tree_path: None,
            }),
            None => Err(GitError::NoSuchRef {
                url: url.to_string(),
                kind,
                name: name.to_string(),
                nearest: nearest(refs, name),
            }),
        }
    };
    match request {
        RefRequest::Default => match &refs.head_commit {
            Some(commit) => Ok(Resolved {
                requested: None,
                commit: commit.clone(),
                tree_path: None,
            }),
            None => Err(GitError::NoSuchRef {
                url: url.to_string(),
                kind: "default branch",
                name: "HEAD".into(),
                nearest: nearest(refs, "main"),
            }),
        },
        RefRequest::Branch(b) => find("branch", "refs/heads/", b),
        RefRequest::Tag(t) => find("tag", "refs/tags/", t),
        RefRequest::Rev(commit) => Ok(Resolved {
            requested: Some(commit.clone()),
            commit: commit.clone(),
            tree_path: None,
        }),
        RefRequest::Tree(rest) => {
            let parts: Vec<&str> = rest.split('/').collect();
            for take in (1..=parts.len()).rev() {
                let name = parts[..take].join("/");
                let path = (take < parts.len()).then(|| parts[take..].join("/"));
                for prefix in ["refs/heads/", "refs/tags/"] {
                    if let Ok(mut found) = find("ref", prefix, &name) {
                        found.tree_path = path.clone();
                        return Ok(found);
                    }
                }
                if take == 1 && is_full_commit(&name) {
                    return Ok(Resolved {
                        requested: Some(name.to_ascii_lowercase()),
                        commit: name.to_ascii_lowercase(),
                        tree_path: path,
                    });
                }
            }
            Err(GitError::NoTreeRef {
                url: url.to_string(),
                rest: rest.clone(),
                nearest: nearest(refs, parts[0]),
            })
        }
    }
}

/// Up to three ref names nearest to `name` (edit distance), short names.
fn nearest(refs: &RemoteRefs, name: &str) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = refs
        .refs
        .keys()
        .map(|r| {
            let short = r
                .strip_prefix("refs/heads/")
                .or_else(|| r.strip_prefix("refs/tags/"))
                .unwrap_or(r);
            let kind = if r.starts_with("refs/tags/") {
                "tag"
            } else {
                "branch"
            };
            (distance(short, name), format!("{short} ({kind})"))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, s)| s).collect()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// One repository's cache: a bare object database holding the commits
/// fetched so far, and the refs last seen.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
    url: String,
    settings: GitSettings,
}

impl RepoCache {
    /// The cache of `url` (credentials stripped) in the context's cache
    /// folder, run with its git settings.
    pub fn for_url(context: &Context, url: &str) -> RepoCache {
        let key = &crate::digest::sha256_hex(url.as_bytes())[..24];
        RepoCache {
            dir: context.folders.git_cache_dir().join(key),
            url: url.to_string(),
            settings: context.git.clone(),
        }
    }

    /// How git is run for this cache.
    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db(&self) -> PathBuf {
        self.dir.join("db.git")
    }

    /// Holds the cache for one process at a time (released on drop).
    pub fn lock(&self) -> Result<File, IoError> {
        std::fs::create_dir_all(&self.dir).on(IoOp::Create, &self.dir)?;
        let path = self.dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .on(IoOp::Create, &path)?;
        file.lock().on(IoOp::Lock, &path)?;
        Ok(file)
    }

    fn ensure_db(&self) -> Result<(), GitError> {
        let db = self.db();
        if db.join("HEAD").is_file() {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&db);
        git(
            &self.settings,
            None,
            &[
                OsStr::new("init"),
                OsStr::new("--bare"),
                OsStr::new("--quiet"),
                OsStr::new("--"),
                db.as_os_str(),
            ],
            None,
            "init (the cache)",
        )?;
        Ok(())
    }

    /// Whether `commit` is in the cache.
    pub fn has_commit(&self, commit: &str) -> bool {
        is_full_commit(commit)
            && self.db().join("HEAD").is_file()
            && git(
                &self.settings,
                Some(&self.db()),
                &[
                    OsStr::new("cat-file"),
                    OsStr::new("-e"),
                    OsStr::new(&format!("{commit}^{{commit}}")),
                ],
                None,
                "cat-file",
            )
            .is_ok()
    }

    /// Makes sure `commit` is in the cache: fetched (depth 1, that commit
    /// only) unless it already is. `offline` refuses to fetch.
    pub fn ensure_commit(
        &self,
        fetch_url: &str,
        commit: &str,
        offline: bool,
    ) -> Result<(), GitError> {
        check_commit(commit)?;
        check_url(fetch_url)?;
        if self.has_commit(commit) {
            return Ok(());
        }
        if offline {
            return Err(GitError::NotCached {
                url: self.url.clone(),
                what: format!("commit {commit}"),
                cache: self.dir.clone(),
            });
        }
        self.ensure_db()?;
        let fetched = git(
            &self.settings,
            Some(&self.db()),
            &[
                OsStr::new("fetch"),
                OsStr::new("--quiet"),
                OsStr::new("--depth=1"),
                OsStr::new("--no-tags"),
                OsStr::new("--no-recurse-submodules"),
                OsStr::new("--no-write-fetch-head"),
                OsStr::new("--"),
                OsStr::new(fetch_url),
                OsStr::new(&format!("+{commit}:refs/boternity/{commit}")),
            ],
            None,
            &format!("fetch of commit {commit} from {}", self.url),
        );
        match fetched {
            Ok(_) if self.has_commit(commit) => Ok(()),
            Ok(_) => Err(GitError::NoSuchCommit {
                url: self.url.clone(),
                commit: commit.into(),
            }),
            Err(GitError::Failed { stderr, .. })
                if stderr.contains("not our ref")
                    || stderr.contains("couldn't find remote ref")
                    || stderr.contains("unadvertised object")
                    || stderr.contains("no such remote ref") =>
            {
                Err(GitError::NoSuchCommit {
                    url: self.url.clone(),
                    commit: commit.into(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Remembers the refs a remote advertised, for `--offline`.
    pub fn save_refs(&self, refs: &RemoteRefs) -> Result<(), IoError> {
        let path = self.dir.join("refs.json");
        let json = serde_json::to_vec_pretty(refs).expect("refs serialize");
        crate::fsutil::write_atomically(&path, &json)
    }

    /// The refs last seen (for `--offline`).
    pub fn load_refs(&self) -> Result<RemoteRefs, GitError> {
        let path = self.dir.join("refs.json");
        let not_cached = || GitError::NotCached {
            url: self.url.clone(),
            what: "the list of refs".into(),
            cache: self.dir.clone(),
        };
        let bytes = std::fs::read(&path).map_err(|_| not_cached())?;
        serde_json::from_slice(&bytes).map_err(|_| not_cached())
    }

    /// Lists and checks the tree of `commit` (in the cache); nothing is
    /// written (see [`Tree::read`]).
    pub fn read_tree(&self, commit: &str) -> Result<Tree, GitError> {
        Tree::read(&self.settings, &self.db(), &self.url, commit)
    }

    /// Writes the entries of `tree` that `pick` selects and `written` does
    /// not mark yet into the folder `root` (see [`Tree::write`]).
    pub fn write_entries(
        &self,
        tree: &Tree,
        root: &BeneathDir,
        pick: &dyn Fn(&Entry) -> bool,
        written: &mut [bool],
    ) -> Result<(), GitError> {
        tree.write(&self.settings, &self.db(), root, pick, written)
    }

    /// Writes the whole tree of `commit` (in the cache) into `dest` (created;
    /// it must not exist): regular files with their executable bit, symlinks
    /// as symlinks; submodules are skipped. No filter runs, and the tree is
    /// checked before anything is written.
    pub fn write_tree(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        let tree = self.read_tree(commit)?;
        let root = BeneathDir::create_new(dest)?;
        let mut written = vec![false; tree.entries().len()];
        self.write_entries(&tree, &root, &|_| true, &mut written)
    }
}

/// Resolves `request` for `url`: with the network (remembering the refs),
/// or `offline` from the refs last seen; a `--rev` needs neither.
pub fn resolve_ref(
    cache: &RepoCache,
    fetch_url: &str,
    url: &str,
    request: &RefRequest,
    offline: bool,
) -> Result<Resolved, GitError> {
    if let RefRequest::Rev(_) = request {
        return resolve(&RemoteRefs::default(), request, url);
    }
    let refs = if offline {
        cache.load_refs()?
    } else {
        let refs = ls_remote(&cache.settings, fetch_url, url)?;
        cache.save_refs(&refs)?;
        refs
    };
    resolve(&refs, request, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = "ref: refs/heads/main\tHEAD\n\
        1111111111111111111111111111111111111111\tHEAD\n\
        1111111111111111111111111111111111111111\trefs/heads/main\n\
        2222222222222222222222222222222222222222\trefs/heads/feature/x\n\
        3333333333333333333333333333333333333333\trefs/tags/v1.0\n\
        4444444444444444444444444444444444444444\trefs/tags/v1.0^{}\n\
        5555555555555555555555555555555555555555\trefs/pull/1/head\n";

    #[test]
    fn refs_resolve_with_slashes_peeled_tags_and_nearest_names() {
        let refs = parse_ls_remote(LS);
        assert_eq!(refs.head.as_deref(), Some("refs/heads/main"));
        assert_eq!(refs.refs.len(), 3);
        assert_eq!(refs.refs["refs/tags/v1.0"], "4".repeat(40));
        let tree = resolve(&refs, &RefRequest::Tree("feature/x/skills/a".into()), "u").unwrap();
        assert_eq!(tree.requested.as_deref(), Some("refs/heads/feature/x"));
        assert_eq!(tree.tree_path.as_deref(), Some("skills/a"));
        let err = resolve(&refs, &RefRequest::Branch("mian".into()), "u").unwrap_err();
        assert!(err.to_string().contains("main (branch)"), "{err}");
        let default = resolve(&refs, &RefRequest::Default, "u").unwrap();
        assert_eq!(default.requested, None);
        assert_eq!(default.commit, "1".repeat(40));
    }
}
