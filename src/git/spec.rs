//! What `install --git <source>` names: a URL (https, http, ssh, git, file),
//! `git@host:path`, `owner/repo` (GitHub), a GitHub or GitLab tree URL
//! (`…/tree/<ref>/<path>`, which sets the ref and the path), or a local
//! repository. Everything else — a leading `-`, `ext::` and every other
//! `transport::`, schemes outside the five — is refused before git runs.
//!
//! [`check_url`], [`check_commit`] and [`check_requested`] are the one
//! validation of what reaches git, whatever it comes from: the command line,
//! `skills.lock`, or a provenance record read by `outdated` and `update`.

use std::path::Path;

use super::GitError;

/// The ref asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefRequest {
    /// The remote's default branch (its `HEAD`).
    Default,
    Branch(String),
    Tag(String),
    /// A full commit id: pinned.
    Rev(String),
    /// The part of a tree URL after `/tree/`: a ref, possibly holding `/`,
    /// then a path; split against the remote's refs.
    Tree(String),
}

/// A parsed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// What git is given (credentials the user typed included).
    pub fetch_url: String,
    /// The URL as recorded and shown: without credentials.
    pub url: String,
    pub reference: RefRequest,
    /// A folder inside the repository (`/`-separated, no `..`).
    pub path: Option<String>,
    /// Worth telling the user (plain http).
    pub warnings: Vec<String>,
}

const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

/// Parses `input` with the flags given beside it.
pub fn parse(
    input: &str,
    branch: Option<&str>,
    tag: Option<&str>,
    rev: Option<&str>,
    path: Option<&str>,
) -> Result<SourceSpec, GitError> {
    let refuse = |why: &str| GitError::RefusedUrl {
        url: input.to_string(),
        why: why.to_string(),
    };
    if input.starts_with('-') {
        return Err(refuse(
            "it starts with `-`, so git would read it as an option",
        ));
    }
    if input.is_empty() || input.chars().any(|c| c.is_control()) {
        return Err(refuse("it is empty or holds control characters"));
    }
    let mut warnings = Vec::new();
    let (fetch_url, url, mut tree) = if let Some(colon) = input.find("://") {
        let scheme = input[..colon].to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(refuse(&format!("the `{scheme}` transport is not allowed")));
        }
        let rest = &input[colon + 3..];
        if rest.starts_with('-') {
            return Err(refuse("its host starts with `-`"));
        }
        if scheme == "http" {
            warnings.push(format!(
                "{input} is plain http: anyone on the way can change what is fetched; prefer https"
            ));
        }
        let (fetch, shown) = strip_credentials(&scheme, rest);
        let (fetch, shown, tree) = split_tree_url(&scheme, fetch, shown);
        (fetch, shown, tree)
    } else if let Some(at) = input.find("::") {
        let transport = &input[..at];
        return Err(refuse(&format!(
            "`{transport}::` runs a remote helper (for `ext::`, any command)"
        )));
    } else if let Some((host, repo)) = scp_like(input) {
        if host.starts_with('-') || repo.starts_with('-') {
            return Err(refuse("its host or path starts with `-`"));
        }
        (input.to_string(), input.to_string(), None)
    } else if Path::new(input).is_dir() {
        let abs = Path::new(input)
            .canonicalize()
            .map_err(|_| GitError::NotASource {
                input: input.to_string(),
            })?;
        let shown = abs.display().to_string();
        (format!("file://{shown}"), shown, None)
    } else if is_owner_repo(input) {
        let url = format!("https://github.com/{}", input.trim_end_matches(".git"));
        (url.clone(), url, None)
    } else {
        return Err(GitError::NotASource {
            input: input.to_string(),
        });
    };

    let flags = [
        branch.map(|b| RefRequest::Branch(b.to_string())),
        tag.map(|t| RefRequest::Tag(t.to_string())),
        rev.map(|r| RefRequest::Rev(r.to_string())),
    ];
    let mut given = flags.into_iter().flatten();
    let flag = given.next();
    if given.next().is_some() {
        return Err(GitError::Conflict(
            "a branch, a tag and a commit each name the ref; give one".into(),
        ));
    }
    let reference = match (flag, tree.take()) {
        (Some(_), Some(_)) => {
            return Err(GitError::Conflict(format!(
                "{input} already names a ref (after /tree/); give no other branch, tag or commit"
            )));
        }
        (Some(RefRequest::Rev(r)), None) => {
            if !is_full_commit(&r) {
                return Err(GitError::NotACommit(r));
            }
            RefRequest::Rev(r.to_ascii_lowercase())
        }
        (Some(other), None) => other,
        (None, Some(rest)) => {
            if path.is_some() {
                return Err(GitError::Conflict(format!(
                    "{input} already names a path (after the ref); give no other path"
                )));
            }
            RefRequest::Tree(rest)
        }
        (None, None) => RefRequest::Default,
    };
    for name in [branch, tag].into_iter().flatten() {
        if name.is_empty() || name.starts_with('-') || name.contains("..") {
            return Err(GitError::Conflict(format!(
                "`{name}` is not a valid branch or tag name"
            )));
        }
    }
    let path = path.map(normal_path).transpose()?.flatten();
    // What git will be given passes the one check every URL passes.
    check_url(&fetch_url)?;
    check_url(&url)?;
    Ok(SourceSpec {
        fetch_url,
        url,
        reference,
        path,
        warnings,
    })
}

/// The one check every URL passes before git is given it, wherever it comes
/// from (the command line through [`parse`], `skills.lock`, a provenance
/// record read by `outdated` and `update`): not empty, no control
/// characters, nothing git would read as an option (a leading `-`, a host or
/// path starting with `-`), no `ext::` or other `transport::` helper, and
/// only the five schemes, `host:path`, or an absolute local path.
pub fn check_url(url: &str) -> Result<(), GitError> {
    let refuse = |why: String| GitError::RefusedUrl {
        url: url.to_string(),
        why,
    };
    if url.is_empty() || url.chars().any(|c| c.is_control()) {
        return Err(refuse("it is empty or holds control characters".into()));
    }
    if url.starts_with('-') {
        return Err(refuse(
            "it starts with `-`, so git would read it as an option".into(),
        ));
    }
    if let Some(colon) = url.find("://") {
        let scheme = url[..colon].to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(refuse(format!("the `{scheme}` transport is not allowed")));
        }
        if url[colon + 3..].starts_with('-') {
            return Err(refuse("its host starts with `-`".into()));
        }
        return Ok(());
    }
    if url.starts_with('/') {
        // A local repository: `/` cannot start a `transport::` name.
        return Ok(());
    }
    if let Some(at) = url.find("::") {
        let transport = &url[..at];
        return Err(refuse(format!(
            "`{transport}::` runs a remote helper (for `ext::`, any command)"
        )));
    }
    match scp_like(url) {
        Some((host, repo)) if host.starts_with('-') || repo.starts_with('-') => {
            Err(refuse("its host or path starts with `-`".into()))
        }
        Some(_) => Ok(()),
        None => Err(refuse(
            "it is neither a URL, `host:path` nor an absolute local path".into(),
        )),
    }
}

/// The one check every commit id passes before git is given it: a full
/// commit id (40 or 64 hexadecimal digits), never a name (`HEAD`) or
/// anything git would read as an option.
pub fn check_commit(commit: &str) -> Result<(), GitError> {
    if is_full_commit(commit) {
        Ok(())
    } else {
        Err(GitError::InvalidCommit {
            commit: commit.escape_debug().to_string(),
        })
    }
}

/// The check every recorded ref passes (a lock's `ref`, a provenance
/// record's `requested`): absent (the default branch), a full commit id
/// (pinned), or `refs/heads/<name>` / `refs/tags/<name>` with a sane name.
pub fn check_requested(requested: Option<&str>) -> Result<(), GitError> {
    let Some(r) = requested else {
        return Ok(());
    };
    if is_full_commit(r) {
        return Ok(());
    }
    let name = r
        .strip_prefix("refs/heads/")
        .or_else(|| r.strip_prefix("refs/tags/"));
    match name {
        Some(name)
            if !name.is_empty()
                && !name.starts_with('-')
                && !name.contains("..")
                && !name.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Ok(())
        }
        _ => Err(GitError::InvalidRef {
            reference: r.escape_debug().to_string(),
        }),
    }
}

/// `a/b/./c/` → `a/b/c`; `""` and `.` → `None`; a `..` or an absolute path
/// is refused (it would leave the repository).
pub fn normal_path(path: &str) -> Result<Option<String>, GitError> {
    if path.starts_with('/') {
        return Err(GitError::PathOutside { path: path.into() });
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(GitError::PathOutside { path: path.into() }),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// A full commit id (sha1 or sha256).
pub fn is_full_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `scheme://` stripped `rest` → (what git gets, what is shown). Userinfo is
/// shown only for ssh, and then without a password.
fn strip_credentials(scheme: &str, rest: &str) -> (String, String) {
    let fetch = format!("{scheme}://{rest}");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (fetch.clone(), fetch);
    };
    let user = &authority[..at];
    let host_and_path = &rest[at + 1..];
    let shown = if scheme == "ssh" {
        let user = user.split(':').next().unwrap_or_default();
        format!("{scheme}://{user}@{host_and_path}")
    } else {
        format!("{scheme}://{host_and_path}")
    };
    (fetch, shown)
}

/// A GitHub (`/owner/repo/tree/<rest>`) or GitLab (`/group/repo/-/tree/<rest>`)
/// browser URL → the repository's URL and the part after `tree/`.
fn split_tree_url(scheme: &str, fetch: String, shown: String) -> (String, String, Option<String>) {
    if scheme != "https" && scheme != "http" {
        return (fetch, shown, None);
    }
    for marker in ["/-/tree/", "/tree/"] {
        if let (Some(f), Some(s)) = (fetch.find(marker), shown.find(marker)) {
            // GitHub: exactly host/owner/repo before it.
            let before = &shown[..s];
            let path_segments = before
                .split("://")
                .nth(1)
                .map_or(0, |r| r.split('/').count().saturating_sub(1));
            if marker == "/tree/" && path_segments != 2 {
                continue;
            }
            let rest = shown[s + marker.len()..].trim_end_matches('/').to_string();
            if rest.is_empty() {
                continue;
            }
            return (fetch[..f].to_string(), before.to_string(), Some(rest));
        }
    }
    (fetch, shown, None)
}

/// `user@host:path` or `host:path` (no `/` before the colon, not a Windows
/// drive, a host of more than one letter).
fn scp_like(input: &str) -> Option<(&str, &str)> {
    let colon = input.find(':')?;
    let (head, path) = (&input[..colon], &input[colon + 1..]);
    if head.contains('/') || path.is_empty() {
        return None;
    }
    let host = head.rsplit('@').next().unwrap_or(head);
    if host.len() < 2 {
        return None;
    }
    Some((host, path))
}

/// `owner/repo` as GitHub spells them.
fn is_owner_repo(input: &str) -> bool {
    let mut parts = input.split('/');
    let (Some(owner), Some(repo), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    ok(owner) && ok(repo)
}

/// The repository's name (its last path segment without `.git`): the folder
/// a root skill is checked out into, so its name falls back to it.
pub fn repo_name(url: &str) -> String {
    let tail = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    let tail = tail.trim_end_matches(".git");
    if tail.is_empty() || tail == "." || tail == ".." {
        "repo".into()
    } else {
        tail.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> SourceSpec {
        parse(input, None, None, None, None).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    #[test]
    fn sources_parse_to_urls_refs_and_paths() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        let table: &[(&str, &str, &str, RefRequest, Option<&str>)] = &[
            // input, fetch URL, shown URL, ref, path
            (
                "anthropics/skills",
                "https://github.com/anthropics/skills",
                "https://github.com/anthropics/skills",
                RefRequest::Default,
                None,
            ),
            (
                "https://github.com/anthropics/skills.git",
                "https://github.com/anthropics/skills.git",
                "https://github.com/anthropics/skills.git",
                RefRequest::Default,
                None,
            ),
            (
                "https://github.com/anthropics/skills/tree/main/skills/docx",
                "https://github.com/anthropics/skills",
                "https://github.com/anthropics/skills",
                RefRequest::Tree("main/skills/docx".into()),
                None,
            ),
            (
                "https://github.com/o/r/tree/feature/x/skills/a/",
                "https://github.com/o/r",
                "https://github.com/o/r",
                RefRequest::Tree("feature/x/skills/a".into()),
                None,
            ),
            (
                "https://gitlab.com/group/sub/proj/-/tree/v1.0/skills",
                "https://gitlab.com/group/sub/proj",
                "https://gitlab.com/group/sub/proj",
                RefRequest::Tree("v1.0/skills".into()),
                None,
            ),
            (
                "https://user:s3cret@example.com/r.git",
                "https://user:s3cret@example.com/r.git",
                "https://example.com/r.git",
                RefRequest::Default,
                None,
            ),
            (
                "https://ghp_token@github.com/o/r/tree/main/x",
                "https://ghp_token@github.com/o/r",
                "https://github.com/o/r",
                RefRequest::Tree("main/x".into()),
                None,
            ),
            (
                "ssh://git:pw@host.example/r.git",
                "ssh://git:pw@host.example/r.git",
                "ssh://git@host.example/r.git",
                RefRequest::Default,
                None,
            ),
            (
                "git@github.com:o/r.git",
                "git@github.com:o/r.git",
                "git@github.com:o/r.git",
                RefRequest::Default,
                None,
            ),
            (
                "git://127.0.0.1:9418/skills.git",
                "git://127.0.0.1:9418/skills.git",
                "git://127.0.0.1:9418/skills.git",
                RefRequest::Default,
                None,
            ),
            (
                "file:///srv/git/skills.git",
                "file:///srv/git/skills.git",
                "file:///srv/git/skills.git",
                RefRequest::Default,
                None,
            ),
            (
                "HTTP://example.com/r",
                "http://example.com/r",
                "http://example.com/r",
                RefRequest::Default,
                None,
            ),
        ];
        for (input, fetch, shown, reference, path) in table {
            let spec = ok(input);
            assert_eq!(spec.fetch_url, *fetch, "{input}");
            assert_eq!(spec.url, *shown, "{input}");
            assert_eq!(spec.reference, *reference, "{input}");
            assert_eq!(spec.path.as_deref(), *path, "{input}");
        }
        let spec = parse("o/r", None, None, Some(&c.to_uppercase()), Some("./a//b/")).unwrap();
        assert_eq!(spec.reference, RefRequest::Rev(c.into()));
        assert_eq!(spec.path.as_deref(), Some("a/b"));
        assert_eq!(
            parse("o/r", Some("feature/x"), None, None, None)
                .unwrap()
                .reference,
            RefRequest::Branch("feature/x".into())
        );
        assert!(!ok("http://example.com/r").warnings.is_empty());
    }

    #[test]
    fn hostile_and_unknown_sources_are_refused_before_git_runs() {
        for input in [
            "--upload-pack=touch /tmp/x",
            "-oProxyCommand=touch /tmp/x",
            "ext::sh -c touch% /tmp/pwned",
            "fd::17",
            "ftp://example.com/r",
            "git+ssh://example.com/r",
            "ssh://-oProxyCommand=x/r",
            "-x@host:path",
            "",
            "a\nb",
        ] {
            let err = parse(input, None, None, None, None).expect_err(input);
            assert!(matches!(err, GitError::RefusedUrl { .. }), "{input}: {err}");
        }
        for input in ["no-such-folder-here", "a/b/c"] {
            assert!(matches!(
                parse(input, None, None, None, None),
                Err(GitError::NotASource { .. })
            ));
        }
        assert!(matches!(
            parse("o/r", None, None, Some("main"), None),
            Err(GitError::NotACommit(_))
        ));
        assert!(matches!(
            parse("o/r", Some("a"), Some("b"), None, None),
            Err(GitError::Conflict(_))
        ));
        assert!(matches!(
            parse(
                "https://github.com/o/r/tree/main/x",
                Some("a"),
                None,
                None,
                None
            ),
            Err(GitError::Conflict(_))
        ));
        assert!(matches!(
            parse("o/r", None, None, None, Some("../up")),
            Err(GitError::PathOutside { .. })
        ));
        assert!(matches!(
            parse("o/r", None, None, None, Some("/etc")),
            Err(GitError::PathOutside { .. })
        ));
    }

    #[test]
    fn urls_commits_and_refs_from_a_lock_or_a_record_pass_the_same_checks() {
        for url in [
            "https://github.com/o/r",
            "git://127.0.0.1:9418/skills.git",
            "file:///srv/git/skills.git",
            "ssh://git@host.example/r.git",
            "git@github.com:o/r.git",
            "/srv/git/skills",
            "/srv/git/a::b",
        ] {
            check_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for url in [
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh -c 'touch x://y'",
            "--upload-pack=touch /tmp/x",
            "-oProxyCommand=x",
            "fd::17",
            "ftp://example.com/r",
            "ssh://-oProxyCommand=x/r",
            "host:-x",
            "relative/path",
            "",
            "https://a\nb",
        ] {
            let err = check_url(url).expect_err(url);
            assert!(matches!(err, GitError::RefusedUrl { .. }), "{url}: {err}");
        }
        check_commit(&"a".repeat(40)).unwrap();
        check_commit(&"0".repeat(64)).unwrap();
        for commit in ["HEAD", "--output=/tmp/x", "abc123", "", &"g".repeat(40)] {
            let err = check_commit(commit).expect_err(commit);
            assert!(err.to_string().contains("not a full commit id"), "{err}");
        }
        for r in [
            None,
            Some("refs/heads/main"),
            Some("refs/tags/v1.0"),
            Some(&*"b".repeat(40)),
        ] {
            check_requested(r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        }
        for r in [
            "main",
            "refs/heads/--x",
            "refs/heads/a..b",
            "refs/remotes/x",
            "refs/heads/",
        ] {
            assert!(check_requested(Some(r)).is_err(), "{r}");
        }
    }

    #[test]
    fn repository_names_come_from_the_last_segment() {
        assert_eq!(repo_name("https://github.com/o/skills.git"), "skills");
        assert_eq!(repo_name("git@github.com:o/r"), "r");
        assert_eq!(repo_name("file:///srv/x/"), "x");
    }
}
