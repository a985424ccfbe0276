//! What a skill is allowed to do: capabilities, plus the specifics some
//! capabilities need (which variables, which hosts, which folder, which secrets).
//! Everything not granted is denied with a message naming the capability.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::skill::manifest::{Capability, Manifest};

/// The grants of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Grants {
    pub capabilities: BTreeSet<Capability>,
    /// Variables `read-env` may read (only these, and only with `read_env`).
    pub env_vars: BTreeSet<String>,
    /// Hosts `http-get`/`http-post` may reach (`host` or `host:port`).
    pub http_hosts: BTreeSet<String>,
    /// The folder `read-file`/`write-file` are confined to.
    pub data_dir: Option<PathBuf>,
    /// Secret names `get-secret` may fetch (the manifest's `metadata.secrets`).
    pub secrets: BTreeSet<String>,
}

impl Grants {
    /// Nothing at all: `log` and `get-context` still work.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// The capabilities and secret names a manifest declares. Host-specific
    /// grants (variables, hosts, data folder) come from the installer or caller.
    pub fn from_manifest(manifest: &Manifest) -> Grants {
        Grants {
            capabilities: manifest.capabilities.iter().copied().collect(),
            secrets: manifest.secrets.iter().cloned().collect(),
            ..Grants::default()
        }
    }

    /// Adds `more` to these grants (a data folder in `more` replaces ours).
    pub fn extend(&mut self, more: &Grants) {
        self.capabilities.extend(more.capabilities.iter().copied());
        self.env_vars.extend(more.env_vars.iter().cloned());
        self.http_hosts.extend(more.http_hosts.iter().cloned());
        self.secrets.extend(more.secrets.iter().cloned());
        if more.data_dir.is_some() {
            self.data_dir.clone_from(&more.data_dir);
        }
    }

    /// `Ok` if `cap` was granted, else the message the skill gets.
    pub fn require(&self, cap: Capability, function: &str) -> Result<(), String> {
        if self.capabilities.contains(&cap) {
            Ok(())
        } else {
            Err(format!(
                "permission denied: `{function}` needs the `{cap}` capability, which this skill was not granted"
            ))
        }
    }
}
