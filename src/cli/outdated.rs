//! `boternity outdated`: every skill installed from git, its installed commit
//! against the newest commit of the ref it was installed from; and every
//! skill installed from a registry, its version against the registry's
//! newest, and whether it was yanked there.

use std::process::ExitCode;

use boternity_skills::install::sync::{self, Status};
use boternity_skills::registry::installed::{self, AskOptions, Standing};

use super::args::{OfflineArgs, OutputArgs, StoreArgs};
use super::message::{self, OutdatedStatus, SkillOutdated};
use super::registry::TrustArgs;

/// Show which installed skills have newer commits or versions, or were yanked.
///
/// For each skill installed with `install --git`: the installed commit, the
/// newest commit of the branch or tag it follows, and whether they differ. A
/// `--rev` install is pinned and never outdated. For each skill installed
/// from a registry: the installed version, the registry's newest version that
/// is not yanked, and whether the installed one was yanked (with the reason).
/// Asks each repository and registry once.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity outdated\n  boternity outdated --offline --message-format json\n\nExit status:\n  0  the list was made (outdated or yanked skills are not an error)\n  1  the store cannot be read"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    offline: OfflineArgs,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    oci: super::oci::OciArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let mut context = self.store.context();
        // OCI origins are reached with these flags (credentials, CA file).
        self.oci.apply(&mut context)?;
        let lines = sync::outdated(&context, &store, self.offline.offline)?;
        let ask = AskOptions {
            keys: self.trust.keys()?,
            offline: self.offline.offline,
            allow_expired: self.trust.expired.allow_expired,
        };
        let registry = installed::standings(&context, &store, &ask)?;
        if !self.format.json() {
            if lines.is_empty() && registry.is_empty() {
                eprintln!(
                    "no skill in {} was installed from git, a registry or an OCI registry",
                    store.root().display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<28} {:<12} {:<12} {:<24} STATUS",
                "NAME", "INSTALLED", "LATEST", "REF"
            );
        }
        for line in &lines {
            if self.format.json() {
                message::emit(&SkillOutdated {
                    name: &line.name,
                    kind: match line.kind {
                        boternity_skills::store::lock::SourceKind::Oci => "oci",
                        _ => "git",
                    },
                    url: &line.url,
                    path: Some(&line.path),
                    requested: line.requested.as_deref(),
                    installed: &line.installed,
                    latest: line.latest.as_deref(),
                    status: OutdatedStatus::Git(&line.status),
                    yanked: None,
                    error: line.error.as_deref(),
                });
                continue;
            }
            let short = |c: &str| {
                let c = c.strip_prefix("sha256:").unwrap_or(c);
                c[..c.len().min(12)].to_string()
            };
            let reference = match (&line.status, line.requested.as_deref()) {
                (Status::Pinned, _)
                    if line.kind == boternity_skills::store::lock::SourceKind::Oci =>
                {
                    "(pinned digest)".to_string()
                }
                (Status::Pinned, _) => "(pinned --rev)".to_string(),
                (_, None) => "(default branch)".to_string(),
                (_, Some(r)) => r
                    .strip_prefix("refs/heads/")
                    .or_else(|| r.strip_prefix("refs/tags/"))
                    .unwrap_or(r)
                    .to_string(),
            };
            let status = match &line.status {
                Status::UpToDate => "up to date".to_string(),
                Status::Outdated => "outdated: `boternity update` moves it".to_string(),
                Status::Pinned => "pinned".to_string(),
                Status::Unknown => format!(
                    "unknown: {}",
                    line.error
                        .as_deref()
                        .unwrap_or("the repository did not answer")
                ),
            };
            println!(
                "{:<28} {:<12} {:<12} {:<24} {}",
                line.name,
                short(&line.installed),
                line.latest.as_deref().map_or("-".into(), short),
                reference,
                status
            );
        }
        for line in &registry {
            if self.format.json() {
                message::emit(&SkillOutdated {
                    name: &line.name,
                    kind: "registry",
                    url: &line.url,
                    path: None,
                    requested: None,
                    installed: &line.installed,
                    latest: line.latest.as_deref(),
                    status: OutdatedStatus::Registry(line.standing),
                    yanked: line.yanked.as_deref(),
                    error: line.error.as_deref(),
                });
                continue;
            }
            let status = match line.standing {
                Standing::UpToDate => "up to date".to_string(),
                Standing::Outdated => format!(
                    "outdated: `boternity install {} --registry {}` moves it",
                    line.entry, line.url
                ),
                Standing::Yanked => format!(
                    "YANKED: {}",
                    line.yanked.as_deref().unwrap_or("no reason given")
                ),
                Standing::Unknown => format!(
                    "unknown: {}",
                    line.error
                        .as_deref()
                        .unwrap_or("the registry did not answer")
                ),
            };
            println!(
                "{:<28} {:<12} {:<12} {:<24} {}",
                line.name,
                line.installed,
                line.latest.as_deref().unwrap_or("-"),
                "(registry)",
                status
            );
            if line.standing == Standing::Yanked {
                eprintln!(
                    "warning: `{}` {} was yanked from {}: {}",
                    line.name,
                    line.installed,
                    line.url,
                    line.yanked.as_deref().unwrap_or("no reason given")
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
