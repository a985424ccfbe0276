//! What a skill is allowed to do: capabilities, plus the specifics some
//! capabilities need (which variables, which hosts, which folder, which secrets).
//! Everything not granted is denied with a message naming what is missing.
//!
//! A skill's `SKILL.md` only *asks* ([`Requested`]): what it asks for is
//! recorded and shown, never granted by itself. Grants come from the
//! installer (or the caller) and from the trust tier's policy
//! ([`tier_capabilities`], the one place that policy is written down).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::skill::manifest::{Capability, Manifest, TrustTier};

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
    /// Secret names `get-secret` may fetch (only these, and only with
    /// `get_secret`): granted by name, never taken from `metadata.secrets`.
    pub secrets: BTreeSet<String>,
}

/// What a skill's `SKILL.md` asks for (`metadata.capabilities`,
/// `metadata.secrets`): recorded in its provenance and shown at install,
/// granted only by the installer or the trust tier's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Requested {
    pub capabilities: BTreeSet<Capability>,
    pub secrets: BTreeSet<String>,
}

impl Requested {
    /// What `manifest` asks for.
    pub fn of(manifest: &Manifest) -> Requested {
        Requested {
            capabilities: manifest.capabilities.iter().copied().collect(),
            secrets: manifest.secrets.iter().cloned().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.capabilities.is_empty() && self.secrets.is_empty()
    }

    /// What of this request `grants` leave out.
    pub fn not_granted(&self, grants: &Grants) -> Requested {
        Requested {
            capabilities: self
                .capabilities
                .difference(&grants.capabilities)
                .copied()
                .collect(),
            secrets: self.secrets.difference(&grants.secrets).cloned().collect(),
        }
    }
}

/// The trust tier's policy: the capabilities a skill of `tier` gets *when its
/// `SKILL.md` asks for them*, without the installer naming them. Everything
/// else (secrets, variables, hosts, HTTP, commands) is granted by name only.
///
/// - `untrusted`: nothing.
/// - `verified`: what touches only the skill's own data: `read_file` and
///   `write_file` (confined to its data folder) and `recall_memory`.
/// - `local` (a user's own skill): the same as `verified`. A folder on this
///   machine may still be a copy of a stranger's skill, and its `SKILL.md`
///   is its author's word, not the user's: secrets and the network stay
///   one explicit grant away.
pub fn tier_capabilities(tier: TrustTier) -> &'static [Capability] {
    const OWN_DATA: &[Capability] = &[
        Capability::ReadFile,
        Capability::WriteFile,
        Capability::RecallMemory,
    ];
    match tier {
        TrustTier::Untrusted => &[],
        TrustTier::Verified | TrustTier::Local => OWN_DATA,
    }
}

/// What a denied call lacked: given to a [`GrantHint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing<'a> {
    Capability(Capability),
    /// A secret name (the capability was granted).
    Secret(&'a str),
    /// A variable name (the capability was granted).
    EnvVar(&'a str),
}

/// How the caller tells a denied skill (and, through it, the user) to grant
/// what was missing: appended to the denial in parentheses. The library
/// names no flags; the CLI's hint does.
pub type GrantHint = fn(&Missing<'_>) -> String;

impl Grants {
    /// Nothing at all: `log` and `get-context` still work.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// The capabilities and secret names a manifest declares, as grants.
    /// Only for records of what a skill asks for (a registry's index): an
    /// install grants [`Grants::for_install`], never this.
    pub fn from_manifest(manifest: &Manifest) -> Grants {
        let requested = Requested::of(manifest);
        Grants {
            capabilities: requested.capabilities,
            secrets: requested.secrets,
            ..Grants::default()
        }
    }

    /// What an install of a skill asking for `requested` grants under `tier`:
    /// the installer's `grants` and, of the capabilities asked for, those the
    /// tier's policy allows ([`tier_capabilities`]). No secret, variable or
    /// host is granted unless the installer named it.
    pub fn for_install(tier: TrustTier, requested: &Requested, installer: &Grants) -> Grants {
        let mut grants = installer.clone();
        grants.data_dir = None;
        grants.capabilities.extend(
            requested
                .capabilities
                .iter()
                .filter(|c| tier_capabilities(tier).contains(c)),
        );
        grants
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
        self.require_with(cap, function, None)
    }

    /// [`Grants::require`], the denial ending with `hint`'s advice.
    pub fn require_with(
        &self,
        cap: Capability,
        function: &str,
        hint: Option<GrantHint>,
    ) -> Result<(), String> {
        if self.capabilities.contains(&cap) {
            Ok(())
        } else {
            Err(denial(
                format!(
                    "permission denied: `{function}` needs the `{cap}` capability, which this skill was not granted"
                ),
                &Missing::Capability(cap),
                hint,
            ))
        }
    }
}

/// `message`, with `hint`'s advice for `missing` in parentheses.
pub fn denial(message: String, missing: &Missing<'_>, hint: Option<GrantHint>) -> String {
    match hint {
        Some(hint) => format!("{message} ({})", hint(missing)),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(caps: &[Capability], secrets: &[&str]) -> Requested {
        Requested {
            capabilities: caps.iter().copied().collect(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_request_alone_grants_only_what_the_tier_allows() {
        let asked = request(&Capability::ALL, &["api-key"]);
        let untrusted = Grants::for_install(TrustTier::Untrusted, &asked, &Grants::none());
        assert_eq!(untrusted, Grants::none());
        for tier in [TrustTier::Verified, TrustTier::Local] {
            let granted = Grants::for_install(tier, &asked, &Grants::none());
            assert_eq!(
                granted.capabilities,
                BTreeSet::from([
                    Capability::ReadFile,
                    Capability::WriteFile,
                    Capability::RecallMemory
                ]),
                "{tier}"
            );
            assert!(granted.secrets.is_empty() && granted.env_vars.is_empty());
            assert_eq!(
                asked.not_granted(&granted),
                request(
                    &[
                        Capability::HttpGet,
                        Capability::HttpPost,
                        Capability::ExecCommand,
                        Capability::ReadEnv,
                        Capability::GetSecret
                    ],
                    &["api-key"]
                )
            );
        }
        // The policy adds only what was asked for.
        let granted =
            Grants::for_install(TrustTier::Verified, &Requested::default(), &Grants::none());
        assert_eq!(granted, Grants::none());
    }

    #[test]
    fn the_installer_grants_by_name_and_a_hint_says_how() {
        let installer = Grants {
            capabilities: BTreeSet::from([Capability::GetSecret]),
            secrets: BTreeSet::from(["api-key".to_string()]),
            data_dir: Some("/elsewhere".into()),
            ..Grants::none()
        };
        let granted = Grants::for_install(TrustTier::Untrusted, &Requested::default(), &installer);
        assert_eq!(granted.secrets, installer.secrets);
        assert_eq!(granted.data_dir, None, "the store decides the data folder");
        assert!(granted.require(Capability::GetSecret, "get-secret").is_ok());
        let hint: GrantHint = |m| format!("try {m:?}");
        assert_eq!(
            granted
                .require_with(Capability::ReadFile, "read-file", Some(hint))
                .unwrap_err(),
            "permission denied: `read-file` needs the `read_file` capability, which this skill \
             was not granted (try Capability(ReadFile))"
        );
    }
}
