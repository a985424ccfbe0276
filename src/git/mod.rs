//! Skills from git repositories: where a source spec points ([`spec`]), the
//! one function that runs git ([`command`]), resolving a ref and fetching
//! exactly that commit into a cache ([`fetch`]), checking its tree and
//! writing out what is needed ([`tree`]), finding the skills in it
//! ([`discover`]), and installing, updating and reproducing them through the
//! same pipeline and store as a local folder ([`mod@crate::install`]).
//!
//! Everything fetched is untrusted: the skills go through
//! [`crate::pipeline::prepare`] under the installer's trust tier, and their
//! source builds only as confined as any other build.

pub mod command;
pub mod discover;
pub mod fetch;
pub mod install;
pub mod spec;
pub mod tree;

use std::path::PathBuf;

use crate::fsutil::IoError;

/// Why a git source could not be read, fetched or installed (the store is
/// unchanged).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "`{url}` is refused: {why}; give an https://, http://, ssh://, git:// or file:// URL, \
         `git@host:path`, `owner/repo` or a local repository path"
    )]
    RefusedUrl { url: String, why: String },
    #[error("`{input}` is neither a URL, `owner/repo` nor an existing local folder")]
    NotASource { input: String },
    #[error("{0}")]
    Conflict(String),
    #[error("cannot run git (install it, or put it on PATH)")]
    GitMissing(#[source] std::io::Error),
    #[error("git {what} failed: {stderr}")]
    Failed { what: String, stderr: String },
    #[error(
        "deadline rule: git {what} took longer than {secs} s and was stopped; check the network \
         or the server (BOTERNITY_GIT_DEADLINE sets the limit in seconds)"
    )]
    TimedOut { what: String, secs: f64 },
    #[error(
        "git {what} printed more than {max} bytes and was stopped; the repository is too large \
         or hostile"
    )]
    OutputTooLarge { what: String, max: u64 },
    #[error("the repository {url} has no {kind} `{name}`{}", nearest_text(nearest))]
    NoSuchRef {
        url: String,
        kind: &'static str,
        name: String,
        nearest: Vec<String>,
    },
    #[error(
        "the repository {url} has no ref to start `{rest}` with (a branch, a tag or a full commit); \
         {}",
        if nearest.is_empty() { "it has none".to_string() } else { format!("it has: {}", nearest.join(", ")) }
    )]
    NoTreeRef {
        url: String,
        rest: String,
        nearest: Vec<String>,
    },
    #[error(
        "a pinned commit must be a full commit id (40 hexadecimal digits), not `{0}`; name a branch or a tag instead"
    )]
    NotACommit(String),
    #[error(
        "`{commit}` is not a full commit id (40 or 64 hexadecimal digits); git is given only \
         full commit ids, never a name or an option"
    )]
    InvalidCommit { commit: String },
    #[error(
        "`{reference}` is not a ref boternity records (`refs/heads/<branch>`, `refs/tags/<tag>` \
         or a full commit id)"
    )]
    InvalidRef { reference: String },
    #[error("commit {commit} is not in the repository {url}")]
    NoSuchCommit { url: String, commit: String },
    #[error(
        "offline: {what} of {url} is not in the cache ({}); fetch it once with the network",
        cache.display()
    )]
    NotCached {
        url: String,
        what: String,
        cache: PathBuf,
    },
    #[error("the path `{path}` leads outside the repository; give a folder inside it")]
    PathOutside { path: String },
    #[error("the path `{path}` does not exist in {url} at {commit}")]
    PathMissing {
        path: String,
        url: String,
        commit: String,
    },
    #[error(
        "no skill (a folder holding SKILL.md) in {url} at {commit}{}",
        at_path(path)
    )]
    NoSkill {
        url: String,
        commit: String,
        path: Option<String>,
    },
    #[error(
        "{url} holds {count} skills; name the ones to install, or ask for all of them:\n{listing}"
    )]
    SeveralSkills {
        url: String,
        count: usize,
        listing: String,
    },
    #[error("no skill named `{name}` in {url}; it holds: {available}")]
    NoSuchSkill {
        name: String,
        url: String,
        available: String,
    },
    #[error(
        "skills `{first}` and `{second}` in {url} would both be stored as `{key}`; install one of them"
    )]
    DuplicateKey {
        key: String,
        first: String,
        second: String,
        url: String,
    },
    #[error(
        "{path}/skill.wasm is a Git LFS pointer, not the binary: boternity does not run LFS \
         (its smudge filter is code from outside the repository); publish the skill.wasm itself, \
         or its Rust source, in the repository"
    )]
    LfsPointer { path: String },
    #[error("{what} in {url} at {commit} is unsafe: {why}")]
    UnsafeTree {
        what: String,
        url: String,
        commit: String,
        why: String,
    },
    #[error(
        "`{key}` does not match the lock: its {what} is {actual}, the lock says {expected}; \
         the repository changed under the same commit id, the toolchain differs, or the lock was \
         edited"
    )]
    LockMismatch {
        key: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("`{key}` comes from {source_kind}, which `sync` cannot fetch; install it by hand")]
    CannotSync { key: String, source_kind: String },
    #[error(
        "the skill at `{path}` in {url} is now stored as `{found}`, not `{key}`; install it anew"
    )]
    Renamed {
        key: String,
        found: String,
        path: String,
        url: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Io(#[from] IoError),
}

fn nearest_text(nearest: &[String]) -> String {
    if nearest.is_empty() {
        String::new()
    } else {
        format!("; the nearest that exist: {}", nearest.join(", "))
    }
}

fn at_path(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" under `{p}`"))
        .unwrap_or_default()
}
