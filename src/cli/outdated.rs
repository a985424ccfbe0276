//! `boternity outdated`: every skill installed from git, its installed commit
//! against the newest commit of the ref it was installed from.

use std::process::ExitCode;

use boternity_skills::git::sync::{self, Status};

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, SkillOutdated};

/// Show which skills installed from git have newer commits.
///
/// For each skill installed with `install --git`: the installed commit, the
/// newest commit of the branch or tag it follows, and whether they differ. A
/// `--rev` install is pinned and never outdated. Asks each repository once.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity outdated\n  boternity outdated --message-format json\n\nExit status:\n  0  the list was made (outdated skills are not an error)\n  1  the store cannot be read"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArgs,
    /// Use the refs seen last (the cache); never the network.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let lines = sync::outdated(&store, self.offline)?;
        if !self.format.json() {
            if lines.is_empty() {
                eprintln!(
                    "no skill in {} was installed from git",
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
                    url: &line.url,
                    path: &line.path,
                    requested: line.requested.as_deref(),
                    installed: &line.installed,
                    latest: line.latest.as_deref(),
                    status: &line.status,
                    error: line.error.as_deref(),
                });
                continue;
            }
            let short = |c: &str| c[..c.len().min(12)].to_string();
            let reference = match (&line.status, line.requested.as_deref()) {
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
        Ok(ExitCode::SUCCESS)
    }
}
