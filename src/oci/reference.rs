//! An OCI reference as users write it: `[oci://]HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`,
//! parsed in one place (with its table of accepted and refused shapes below).
//! The registry is always named (there is no default registry: a skill's
//! origin is never guessed), `docker.io` is reached at `registry-1.docker.io`.

/// What `oci://` references start with on the command line.
pub const SCHEME: &str = "oci://";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, lower-case.
    pub registry: String,
    /// `acme/skills/weather`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not an OCI reference: {why}; write HOST/REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/acme/skills/weather:1.2.0"
)]
pub struct ReferenceError {
    pub text: String,
    pub why: String,
}

/// Longest reference accepted.
const MAX_REFERENCE: usize = 512;

impl Reference {
    /// Parses `text` (with or without `oci://`).
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let fail = |why: &str| ReferenceError {
            text: text.into(),
            why: why.into(),
        };
        let rest = text.strip_prefix(SCHEME).unwrap_or(text);
        if rest.len() > MAX_REFERENCE {
            return Err(fail("it is too long"));
        }
        if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(fail("it holds spaces or control characters"));
        }
        let (name, digest) = match rest.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest).map_err(|why| fail(&why))?;
                (name, Some(digest.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = name
            .split_once('/')
            .ok_or_else(|| fail("it names no registry host"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(fail(&format!(
                "`{registry}` is not a registry host (a host has a dot or a port, or is localhost)"
            )));
        }
        check_host(registry).map_err(|why| fail(&why))?;
        // A tag is after the last `:` of the last path part.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        check_repository(repository).map_err(|why| fail(&why))?;
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|why| fail(&why))?;
        }
        Ok(Reference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.into(),
            tag,
            digest,
        })
    }

    /// The same repository at `tag` (no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.into()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository at `digest` (the tag kept for reading only).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.into()),
            ..self.clone()
        }
    }

    /// What the registry is asked for: the digest, else the tag, else `latest`.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `host/repository`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host the API is reached at (Docker Hub's is not its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// Whether the registry is this machine (plain HTTP is then allowed).
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The tag a skill's version is pushed under: a tag has no `+`, so build
/// metadata is written with `_` (as Helm does).
pub fn tag_for_version(version: &str) -> String {
    version.replace('+', "_")
}

/// `host` of `host[:port]` (brackets of an IPv6 address removed).
pub fn host_of(registry: &str) -> &str {
    if let Some(v6) = registry.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    registry.split(':').next().unwrap_or_default()
}

fn check_host(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        && !registry.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(format!("`{registry}` is not a host name"))
    }
}

/// OCI's repository grammar: lower-case path parts of `[a-z0-9]` joined by
/// `.`, `_`, `__` or dashes.
fn check_repository(repository: &str) -> Result<(), String> {
    let part_ok = |part: &str| {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
            && !part.contains("..")
            && !part.contains("___")
    };
    if repository.is_empty() || repository.len() > 255 || !repository.split('/').all(part_ok) {
        return Err(format!(
            "the repository `{repository}` is not lower-case letters, digits and `._-` in `/`-separated parts"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` is not up to 128 letters, digits and `_.-`"
        ))
    }
}

/// A `sha256:<64 lower-case hex>` digest (the only algorithm taken).
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if is_sha256_hex(hex) => Ok(()),
        _ => Err(format!(
            "the digest `{digest}` is not sha256: followed by 64 lower-case hex digits"
        )),
    }
}

/// 64 lower-case hex digits.
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_in_one_place() {
        let d = format!("sha256:{}", "a".repeat(64));
        let ok = [
            (
                "oci://ghcr.io/acme/skills/weather:1.2.0",
                ("ghcr.io", "acme/skills/weather", Some("1.2.0"), None),
            ),
            (
                "127.0.0.1:5000/skills/echo-skill",
                ("127.0.0.1:5000", "skills/echo-skill", None, None),
            ),
            (
                "localhost/a_b/c__d:v1",
                ("localhost", "a_b/c__d", Some("v1"), None),
            ),
        ];
        for (text, (registry, repository, tag, digest)) in ok {
            let r = Reference::parse(text).unwrap();
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (registry, repository, tag, digest),
                "{text}"
            );
        }
        let pinned = Reference::parse(&format!("reg.io:443/a/b:1@{d}")).unwrap();
        assert_eq!(pinned.digest.as_deref(), Some(d.as_str()));
        assert_eq!(pinned.tag.as_deref(), Some("1"));
        assert_eq!(pinned.target(), d);
        assert_eq!(pinned.to_string(), format!("reg.io:443/a/b:1@{d}"));
        assert!(Reference::parse("[::1]:5000/a").unwrap().is_loopback());
        assert!(!Reference::parse("ghcr.io/a").unwrap().is_loopback());

        for (text, why) in [
            ("weather:1.0", "names no registry"),
            ("acme/weather:1.0", "not a registry host"),
            ("ghcr.io/Acme/w", "repository"),
            ("ghcr.io/a/../b", "repository"),
            ("ghcr.io/a//b", "repository"),
            ("ghcr.io/a:-x", "tag"),
            ("ghcr.io/a@sha256:abc", "digest"),
            ("ghcr.io/a@md5:0123", "digest"),
            ("ghcr.io/a b", "spaces"),
            ("-x.io/a", "host"),
        ] {
            let err = Reference::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
