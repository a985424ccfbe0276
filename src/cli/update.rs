//! `boternity update`: move skills installed from git to the newest commit of
//! the ref they follow, one at a time, through the same pipeline.

use std::process::ExitCode;

use boternity_skills::Installer;
use boternity_skills::install::sync::{self, Updated};

use super::args::{InstallArgs, MessageFormat, OfflineArgs, StoreArgs};

/// Update skills installed from git to the newest commit of their ref.
///
/// Each skill is fetched, built and checked before it replaces the installed
/// version, atomically; a failure keeps the installed version and says why.
/// A skill installed with --rev is pinned and left alone. A Rust skill that
/// ships no Cargo.lock is rebuilt with the one kept from its install.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity update --all\n  boternity update docx pdf\n\nExit status:\n  0  every skill named is up to date, updated or pinned\n  1  an update failed (that skill keeps its installed version)"
)]
pub struct Opts {
    /// The skills to update (by store name).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    names: Vec<String>,
    /// Update every skill installed from git.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    offline: OfflineArgs,
    #[command(flatten)]
    install: InstallArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let options = self.install.options();
        let context = self.store.context();
        let executor = super::executor()?;
        let installer = Installer::new(&context, &store).with_executor(&executor);
        let outcomes = sync::update(&installer, &self.names, &options, self.offline.offline)?;
        let mut failed = false;
        if outcomes.is_empty() {
            eprintln!(
                "no skill in {} was installed from git",
                store.root().display()
            );
        }
        for (name, outcome) in outcomes {
            match outcome {
                Updated::Moved {
                    from,
                    to,
                    installed,
                } => {
                    super::install::report(&installed, MessageFormat::Human);
                    eprintln!(
                        "{:>12} `{name}` {} -> {}",
                        "Updated",
                        short(&from),
                        short(&to)
                    );
                }
                Updated::UpToDate { commit } => {
                    eprintln!("{:>12} `{name}` at {}", "Up to date", short(&commit));
                }
                Updated::Pinned { commit } => eprintln!(
                    "{:>12} `{name}` is pinned to {} (installed with --rev); left alone. \
                     Reinstall it with --branch or --tag to follow a ref.",
                    "Pinned",
                    short(&commit)
                ),
                Updated::NotGit => eprintln!(
                    "{:>12} `{name}` was not installed from git; nothing to follow",
                    "Skipped"
                ),
                Updated::Failed(err) => {
                    failed = true;
                    eprintln!("error: `{name}` was not updated; the installed version is kept");
                    super::print_error(&err);
                }
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
