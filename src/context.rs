//! What the library needs from its surroundings, as one value its caller
//! builds and passes in: the folders it keeps things in, the host
//! environment its toolchain and tools are found in, and how it reaches
//! registries and git remotes.
//!
//! The library reads no environment variable of its own. The CLI builds a
//! [`Context`] from its flags and the process environment
//! (`src/cli/context.rs`, the one place that reads it); a server that embeds
//! boternity builds one from its own configuration; tests build one over
//! private temporary folders, so nothing touches a developer's `~/.cache`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::paths::Folders;
use crate::registry::client::TransportOptions;

/// Everything the library may know about the machine it runs on.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where the store and the caches are.
    pub folders: Folders,
    /// The host's environment: where cargo, rustc and git are found, and what
    /// the programs a build starts may inherit (each through its allow-list).
    pub host: HostEnv,
    /// Timeouts, retries and deadlines of registry downloads.
    pub transport: TransportOptions,
    /// How git is run.
    pub git: GitSettings,
    /// What the cache folder's build outputs (target directories, dependency
    /// layers) may take: the sweep after a build removes the least recently
    /// used down to it ([`crate::cache`]). `None`: never swept.
    pub cache_budget: Option<u64>,
    /// How OCI registries are reached: credentials, CA certificates, plain
    /// HTTP.
    pub oci: crate::oci::OciSettings,
}

impl Context {
    /// A context over `folders`, with no host environment (no toolchain is
    /// found: give one with [`Context::with_host`] to build Rust source) and
    /// the default transport and git settings.
    pub fn new(folders: Folders) -> Context {
        Context {
            folders,
            host: HostEnv::default(),
            transport: TransportOptions::default(),
            git: GitSettings::default(),
            cache_budget: Some(crate::cache::DEFAULT_MAX_SIZE),
            oci: crate::oci::OciSettings::default(),
        }
    }

    pub fn with_host(mut self, host: HostEnv) -> Context {
        self.host = host;
        self
    }
}

/// How git is run.
#[derive(Debug, Clone)]
pub struct GitSettings {
    /// The longest one git call may take; a server that answers a byte at a
    /// time is stopped by it too (it counts from the start).
    pub deadline: Duration,
    /// The ssh command git uses (boternity adds `-o BatchMode=yes`, so it
    /// never prompts); `ssh` when `None`.
    pub ssh_command: Option<String>,
}

/// How long one git call may take by default.
pub const GIT_DEADLINE: Duration = Duration::from_secs(600);

impl Default for GitSettings {
    fn default() -> GitSettings {
        GitSettings {
            deadline: GIT_DEADLINE,
            ssh_command: None,
        }
    }
}

/// A snapshot of the host's environment variables, taken by the caller.
/// Empty by default: then no toolchain is found and programs the library
/// starts get only what it sets itself.
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    vars: Arc<BTreeMap<OsString, OsString>>,
}

/// Two snapshots are equal when they hold the same variables.
impl PartialEq for HostEnv {
    fn eq(&self, other: &HostEnv) -> bool {
        self.vars == other.vars
    }
}

impl Eq for HostEnv {}

impl HostEnv {
    /// The environment made of `vars` (e.g. `std::env::vars_os()`).
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> HostEnv {
        HostEnv {
            vars: Arc::new(vars.into_iter().collect()),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str)
    }

    /// The value of `name` as a path, if set and not empty.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// Every variable, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The user's cargo home (`$CARGO_HOME`, else `~/.cargo`).
    pub fn user_cargo_home(&self) -> Option<PathBuf> {
        self.path("CARGO_HOME")
            .or_else(|| self.path("HOME").map(|h| h.join(".cargo")))
    }

    /// rustup's home (`$RUSTUP_HOME`, else `~/.rustup`).
    pub fn rustup_home(&self) -> Option<PathBuf> {
        self.path("RUSTUP_HOME")
            .or_else(|| self.path("HOME").map(|h| h.join(".rustup")))
    }
}
