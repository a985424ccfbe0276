//! The one place that reads the process environment: the library's
//! [`Context`] (folders, host environment, transport, git settings) built
//! from boternity's variables and the standard ones, and the few variables
//! the CLI itself honours. The library reads none (tests/it/tidy.rs checks).
//!
//! | Variable | What it sets |
//! |---|---|
//! | `BOTERNITY_DATA_DIR` | the data folder (the store), else `~/.boternity` |
//! | `BOTERNITY_CACHE_DIR` | the cache folder, else `$XDG_CACHE_HOME/boternity`, else `~/.cache/boternity` |
//! | `BOTERNITY_HTTP_TIMEOUT`, `_RETRIES`, `_DEADLINE`, `_INSTALL_DEADLINE` | registry downloads |
//! | `BOTERNITY_GIT_DEADLINE` | the longest one git call may take (seconds) |
//! | `BOTERNITY_CACHE_MAX_SIZE` | the cache's budget for build outputs (`10GiB` by default; `unlimited`: never swept) |
//! | `GIT_SSH_COMMAND` | the ssh git uses (boternity adds `-o BatchMode=yes`) |
//! | `BOTERNITY_OCI_USERNAME`, `BOTERNITY_OCI_PASSWORD` | credentials for OCI registries (CI) |
//! | `DOCKER_CONFIG` | the folder of Docker's `config.json` (else `~/.docker`) |
//! | `SSL_CERT_FILE` | the CA bundle OCI registries are checked against (else the system's) |
//! | `BOTERNITY_SECRET_<NAME>` | secrets a skill was granted (`get-secret`) |

use std::path::{Path, PathBuf};
use std::time::Duration;

use boternity_skills::context::{Context, GitSettings, HostEnv};
use boternity_skills::paths::Folders;
use boternity_skills::registry::client::TransportOptions;

/// The context of this process: `store` (a `--store` flag) wins over the
/// environment's data folder.
pub fn from_env(store: Option<&Path>) -> Context {
    let folders = Folders::new(
        store
            .map(Path::to_path_buf)
            .or_else(data_dir)
            .unwrap_or_default(),
        cache_dir(),
    );
    let mut context = Context::new(folders).with_host(HostEnv::from_vars(std::env::vars_os()));
    context.transport = transport();
    context.oci = oci_settings();
    context.git = GitSettings {
        deadline: secs("BOTERNITY_GIT_DEADLINE").unwrap_or(boternity_skills::context::GIT_DEADLINE),
        ssh_command: var("GIT_SSH_COMMAND"),
    };
    if let Some(budget) = cache_budget() {
        context.cache_budget = budget;
    }
    context
}

/// `BOTERNITY_CACHE_MAX_SIZE`: a size (`10GiB`, `500M`), or `unlimited`
/// (never swept); `None` when unset. A value that does not read is
/// reported and ignored (the default budget stays).
fn cache_budget() -> Option<Option<u64>> {
    let value = var("BOTERNITY_CACHE_MAX_SIZE")?;
    if value.trim().eq_ignore_ascii_case("unlimited") {
        return Some(None);
    }
    match boternity_skills::cache::parse_size(&value) {
        Ok(size) => Some(Some(size)),
        Err(err) => {
            tracing::warn!("BOTERNITY_CACHE_MAX_SIZE: {err}; the default budget applies");
            None
        }
    }
}

/// How OCI registries are reached: credentials from
/// `BOTERNITY_OCI_USERNAME`/`BOTERNITY_OCI_PASSWORD` (both, or neither),
/// Docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`), the
/// system's CA bundle (`$SSL_CERT_FILE`, else the first of the usual
/// places). Flags (`--username`, `--ca-file`, `--plain-http`) are applied
/// on top by the commands that take them.
fn oci_settings() -> boternity_skills::oci::OciSettings {
    let credentials = match (
        var("BOTERNITY_OCI_USERNAME"),
        std::env::var("BOTERNITY_OCI_PASSWORD"),
    ) {
        (Some(username), Ok(password)) if !password.is_empty() => {
            Some(boternity_skills::oci::Basic {
                username,
                password,
                from: "BOTERNITY_OCI_USERNAME and BOTERNITY_OCI_PASSWORD".into(),
            })
        }
        _ => None,
    };
    let docker_config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|dir| dir.join("config.json"));
    const BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    let system_roots = var("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()));
    boternity_skills::oci::OciSettings {
        credentials,
        docker_config,
        ca_file: None,
        system_roots,
        plain_http: false,
    }
}

/// The data folder: `$BOTERNITY_DATA_DIR`, else `~/.boternity`; `None`
/// when neither is set.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BOTERNITY_DATA_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".boternity"))
}

/// The cache folder: `$BOTERNITY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/boternity`, else `~/.cache/boternity`, else a folder in
/// the temporary directory. Everything in it can be rebuilt.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BOTERNITY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("boternity");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/boternity"),
        None => std::env::temp_dir().join("boternity-cache"),
    }
}

/// The defaults, with `BOTERNITY_HTTP_TIMEOUT`, `BOTERNITY_HTTP_RETRIES`,
/// `BOTERNITY_HTTP_DEADLINE` and `BOTERNITY_HTTP_INSTALL_DEADLINE` applied
/// when set to a number.
fn transport() -> TransportOptions {
    let mut options = TransportOptions::default();
    if let Some(timeout) = secs("BOTERNITY_HTTP_TIMEOUT") {
        options.connect_timeout = timeout;
        options.read_timeout = timeout;
    }
    if let Some(deadline) = secs("BOTERNITY_HTTP_DEADLINE") {
        options.deadline = deadline;
    }
    if let Some(deadline) = secs("BOTERNITY_HTTP_INSTALL_DEADLINE") {
        options.install_deadline = deadline;
    }
    if let Some(retries) = var("BOTERNITY_HTTP_RETRIES").and_then(|v| v.trim().parse().ok()) {
        options.retries = retries;
    }
    options
}

/// The variable `name`, if set (to valid UTF-8) and not blank.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A positive, finite number of seconds in the variable `name`.
fn secs(name: &str) -> Option<Duration> {
    var(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
}

/// The password held in the variable `name` (a `--password-env` flag).
pub fn password(
    name: Option<&str>,
) -> Result<
    Option<boternity_skills::registry::sign::Password>,
    boternity_skills::registry::sign::SignError,
> {
    use boternity_skills::registry::sign::{Password, SignError};
    let Some(name) = name else {
        return Ok(None);
    };
    match std::env::var(name) {
        Ok(value) => Ok(Some(Password {
            value,
            from: format!("the variable `{name}` (--password-env)"),
        })),
        Err(_) => Err(SignError::PasswordUnset { var: name.into() }),
    }
}
