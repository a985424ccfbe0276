//! Resolving a ref to a commit (`git ls-remote`), fetching only that commit,
//! shallow, into a cache keyed by URL (`<cache>/git/<sha256 of the URL>/`),
//! and writing a commit's tree into a folder.
//!
//! A commit already in the cache is never fetched again, so a reinstall or a
//! `sync` of a cached commit does not touch the network; the refs last seen
//! are kept too, for `--offline`. The tree is written from git's objects by
//! boternity itself (`ls-tree` + `cat-file`), not checked out: no filter
//! (LFS or any other) runs, submodules are skipped, and every path is checked
//! to stay inside the folder.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::GitError;
use super::command::git;
use super::spec::{RefRequest, is_full_commit};
use crate::fsutil::{IoError, IoOp, IoResultExt};

/// Largest tree boternity writes out (all blobs of one commit).
pub const MAX_TREE_BYTES: u64 = 512 * 1024 * 1024;

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
pub fn ls_remote(fetch_url: &str, url: &str) -> Result<RemoteRefs, GitError> {
    let out = git(
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
}

impl RepoCache {
    /// The cache of `url` (credentials stripped) in boternity's cache folder.
    pub fn for_url(url: &str) -> RepoCache {
        let key = &crate::digest::sha256_hex(url.as_bytes())[..24];
        RepoCache {
            dir: crate::paths::cache_dir().join("git").join(key),
            url: url.to_string(),
        }
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
        self.db().join("HEAD").is_file()
            && git(
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

    /// Writes the tree of `commit` (in the cache) into `dest` (created):
    /// regular files with their executable bit, symlinks as symlinks;
    /// submodules are skipped. No filter runs.
    pub fn write_tree(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        let db = self.db();
        let listing = git(
            Some(&db),
            &[
                OsStr::new("ls-tree"),
                OsStr::new("-r"),
                OsStr::new("-z"),
                OsStr::new("-l"),
                OsStr::new("--full-tree"),
                OsStr::new(commit),
            ],
            None,
            &format!("ls-tree of {commit}"),
        )?;
        let unsafe_tree = |what: &str, why: &str| GitError::UnsafeTree {
            what: what.to_string(),
            url: self.url.clone(),
            commit: commit.to_string(),
            why: why.to_string(),
        };
        struct Entry {
            mode: String,
            object: String,
            path: String,
        }
        let mut entries = Vec::new();
        let mut total: u64 = 0;
        for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let mut fields = meta.split_whitespace();
            let (Some(mode), Some(kind), Some(object), size) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if kind != "blob" {
                continue; // a submodule (commit): never followed
            }
            if path.split('/').any(|part| {
                part.is_empty()
                    || part == "."
                    || part == ".."
                    || part.eq_ignore_ascii_case(".git")
                    || part.contains('\\')
            }) {
                return Err(unsafe_tree(path, "the path would leave the folder"));
            }
            total += size.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            entries.push(Entry {
                mode: mode.to_string(),
                object: object.to_string(),
                path: path.to_string(),
            });
        }
        if total > MAX_TREE_BYTES {
            return Err(unsafe_tree(
                "the tree",
                &format!("it holds {total} bytes, over the cap of {MAX_TREE_BYTES}"),
            ));
        }
        let mut request = String::new();
        for e in &entries {
            request.push_str(&e.object);
            request.push('\n');
        }
        let blobs = git(
            Some(&db),
            &[OsStr::new("cat-file"), OsStr::new("--batch")],
            Some(request.as_bytes()),
            &format!("cat-file of {commit}"),
        )?;
        std::fs::create_dir_all(dest).on(IoOp::Create, dest)?;
        let mut at = 0;
        for e in &entries {
            let header_end = blobs[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|p| at + p)
                .ok_or_else(|| unsafe_tree(&e.path, "git returned a truncated object"))?;
            let header = String::from_utf8_lossy(&blobs[at..header_end]);
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| unsafe_tree(&e.path, "git returned a malformed object"))?;
            let start = header_end + 1;
            let end = start + size;
            if end > blobs.len() {
                return Err(unsafe_tree(&e.path, "git returned a truncated object"));
            }
            let bytes = &blobs[start..end];
            at = end + 1;
            let path = dest.join(&e.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
            }
            match e.mode.as_str() {
                "120000" => {
                    let target = String::from_utf8_lossy(bytes).into_owned();
                    std::os::unix::fs::symlink(&target, &path).on(IoOp::Create, &path)?;
                }
                mode => {
                    std::fs::write(&path, bytes).on(IoOp::Write, &path)?;
                    if mode == "100755" {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                            .on(IoOp::Write, &path)?;
                    }
                }
            }
        }
        Ok(())
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
        let refs = ls_remote(fetch_url, url)?;
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
