//! Credentials for a registry, found as users already keep them, and the
//! registry's `WWW-Authenticate` challenge answered.
//!
//! Lookup order for a registry host (the first that has an answer wins):
//! 1. the credentials the caller gave ([`OciSettings::credentials`]: the
//!    CLI's `--username` with `--password-stdin`, else
//!    `BOTERNITY_OCI_USERNAME`/`BOTERNITY_OCI_PASSWORD`);
//! 2. Docker's `config.json` ([`OciSettings::docker_config`]): its
//!    `credHelpers` entry for the host, else its `auths` entry (base64
//!    `user:password` in `auth`), else its `credsStore`;
//! 3. none: anonymous, through the registry's token challenge.
//!
//! A credential helper is a program the user installed
//! (`docker-credential-<name>`): it is found on the host's `PATH`, run by
//! the crate's process runner with a deadline and bounded output, given the
//! host on standard input (never on its command line), and its name must be
//! a plain word.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::OciError;

/// A user name and password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    pub username: String,
    pub password: String,
    /// Where they came from, for messages (never the secret).
    pub from: String,
}

impl std::fmt::Debug for Basic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Basic({} from {})", self.username, self.from)
    }
}

impl Basic {
    /// The `Authorization` header's value.
    pub fn header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// How OCI registries are reached: part of [`crate::Context`].
#[derive(Debug, Clone, Default)]
pub struct OciSettings {
    /// Credentials for every registry this process talks to.
    pub credentials: Option<Basic>,
    /// Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`), if there is one to read.
    pub docker_config: Option<PathBuf>,
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The system's CA bundle (found by the caller), else Mozilla's roots.
    pub system_roots: Option<PathBuf>,
    /// Plain `http://` to any registry (without it: only to this machine).
    pub plain_http: bool,
}

/// Largest `config.json` read.
const MAX_CONFIG: u64 = 1024 * 1024;
/// How long a credential helper may take.
const HELPER_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `ghcr.io`, `https://ghcr.io/`, `https://index.docker.io/v1/` → the host.
fn config_key_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// The credentials for `registry` (see the module doc); `Ok(None)`:
/// anonymous.
pub fn lookup(
    settings: &OciSettings,
    host_env: &crate::context::HostEnv,
    registry: &str,
) -> Result<Option<Basic>, OciError> {
    if let Some(basic) = &settings.credentials {
        return Ok(Some(basic.clone()));
    }
    let Some(path) = &settings.docker_config else {
        return Ok(None);
    };
    let bytes = match crate::fsutil::read_capped(path, MAX_CONFIG) {
        Ok(bytes) => bytes,
        Err(crate::fsutil::CappedReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => {
            return Err(OciError::Credentials {
                registry: registry.into(),
                why: format!("cannot read {}: {e}", path.display()),
            });
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| OciError::Credentials {
            registry: registry.into(),
            why: format!("{} is not Docker's config.json: {e}", path.display()),
        })?;
    let wanted = config_key_host(registry);
    let from = |what: &str| format!("{what} in {}", path.display());
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| config_key_host(k) == wanted)
    {
        return run_helper(
            helper,
            registry,
            host_env,
            &from(&format!("credHelpers `{helper}`")),
        );
    }
    if let Some((_, auth)) = config
        .auths
        .iter()
        .find(|(k, _)| config_key_host(k) == wanted)
    {
        if let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64_decode(encoded)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OciError::Credentials {
                    registry: registry.into(),
                    why: format!(
                        "the `auth` of {wanted} in {} is not base64 of user:password",
                        path.display()
                    ),
                })?;
            let (username, password) =
                decoded
                    .split_once(':')
                    .ok_or_else(|| OciError::Credentials {
                        registry: registry.into(),
                        why: format!("the `auth` of {wanted} in {} holds no `:`", path.display()),
                    })?;
            return Ok(Some(Basic {
                username: username.into(),
                password: password.into(),
                from: from("auths"),
            }));
        }
        if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
            return Ok(Some(Basic {
                username: username.clone(),
                password: password.clone(),
                from: from("auths"),
            }));
        }
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        return run_helper(
            store,
            registry,
            host_env,
            &from(&format!("credsStore `{store}`")),
        );
    }
    Ok(None)
}

/// `docker-credential-<name> get`, the host on standard input.
fn run_helper(
    name: &str,
    registry: &str,
    host_env: &crate::context::HostEnv,
    from: &str,
) -> Result<Option<Basic>, OciError> {
    let fail = |why: String| OciError::Credentials {
        registry: registry.into(),
        why,
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || name.starts_with(['-', '.'])
    {
        return Err(fail(format!(
            "the credential helper name `{name}` ({from}) is not a plain word"
        )));
    }
    let program = format!("docker-credential-{name}");
    let path = host_env
        .get("PATH")
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file())
        .ok_or_else(|| fail(format!("{program} ({from}) is not on PATH")))?;
    let mut cmd = std::process::Command::new(&path);
    cmd.arg("get").env_clear().envs(host_env.iter());
    let limits = crate::process::RunLimits {
        deadline: HELPER_DEADLINE,
        max_stdout: 64 * 1024,
        max_stderr: 16 * 1024,
        ..crate::process::RunLimits::default()
    };
    let finished = crate::process::run(cmd, Some(registry.as_bytes().to_vec()), &limits)
        .map_err(|e| fail(format!("{program}: {}", crate::error_chain(&e))))?;
    if !finished.status.success() {
        let said = String::from_utf8_lossy(&finished.stdout).trim().to_string();
        // Docker's helpers say so when they hold nothing for the host.
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{program} get failed ({}): {} {}",
            finished.status,
            said,
            finished.stderr_text().trim()
        )));
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&finished.stdout).map_err(|e| {
        fail(format!(
            "{program} get did not answer with Username and Secret: {e}"
        ))
    })?;
    Ok(Some(Basic {
        username: answer.username,
        password: answer.secret,
        from: from.into(),
    }))
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = std::collections::BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key, value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` on anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_base64() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
        for text in ["", "a", "ab", "abc", "user:pässword"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(
                base64_decode(&encoded).unwrap(),
                text.as_bytes(),
                "{encoded}"
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn docker_config_auths_and_helpers() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"auths": {"https://reg.example/v1/": {"auth": "dXNlcjpwYXNz"}},
                "credHelpers": {"helped.example": "bad name"}}"#,
        )
        .unwrap();
        let settings = OciSettings {
            docker_config: Some(config),
            ..OciSettings::default()
        };
        let env = crate::context::HostEnv::default();
        let basic = lookup(&settings, &env, "reg.example").unwrap().unwrap();
        assert_eq!(
            (basic.username.as_str(), basic.password.as_str()),
            ("user", "pass")
        );
        assert!(lookup(&settings, &env, "other.example").unwrap().is_none());
        let err = lookup(&settings, &env, "helped.example").unwrap_err();
        assert!(err.to_string().contains("not a plain word"), "{err}");
    }
}
