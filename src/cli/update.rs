//! `boternity update`: move skills installed from git to the newest commit of
//! the ref they follow, one at a time, through the same pipeline.

use std::process::ExitCode;

use boternity_skills::Installer;
use boternity_skills::install::sync::{self, Updated};

use super::args::{InstallArgs, MessageFormat, OfflineArgs, OutputArgs, StoreArgs, flag_hint};
use super::message::{self, SkillUpdated, UpdateOutcome};

/// Update skills installed from git or OCI registries to the newest of their ref or tag.
///
/// Each skill is fetched, built and checked before it replaces the installed
/// version, atomically; a failure keeps the installed version and says why.
/// A skill installed with --rev, or from an OCI registry by digest, is pinned
/// and left alone. A Rust skill that
/// ships no Cargo.lock is rebuilt with the one kept from its install.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity update --all\n  boternity update docx pdf --message-format json\n\nExit status:\n  0  every skill named is up to date, updated or pinned\n  1  an update failed (that skill keeps its installed version)"
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
    #[command(flatten)]
    oci: super::oci::OciArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let options = self.install.options();
        let mut context = self.store.context();
        // OCI origins are reached with these flags (credentials, CA file).
        self.oci.apply(&mut context)?;
        let executor = super::executor()?;
        let installer = Installer::new(&context, &store).with_executor(&executor);
        let outcomes = sync::update(&installer, &self.names, &options, self.offline.offline)?;
        let json = self.format.json();
        if outcomes.is_empty() && !json {
            eprintln!(
                "no skill in {} was installed from git",
                store.root().display()
            );
        }
        let mut failed = false;
        for (name, outcome) in outcomes {
            failed |= matches!(outcome, Updated::Failed(_));
            if json {
                report_json(&name, &outcome);
            } else {
                report_human(&name, outcome);
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// `skill-updated`, after `skill-installed` when the skill moved.
fn report_json(name: &str, outcome: &Updated) {
    let line = |outcome, from, to| SkillUpdated {
        name,
        outcome,
        from,
        to,
        error: None,
        hint: None,
    };
    let message = match outcome {
        Updated::Moved {
            from,
            to,
            installed,
        } => {
            super::install::report(installed, MessageFormat::Json);
            line(UpdateOutcome::Moved, Some(from), Some(to))
        }
        Updated::UpToDate { commit } => line(UpdateOutcome::UpToDate, Some(commit), Some(commit)),
        Updated::Pinned { commit } => line(UpdateOutcome::Pinned, Some(commit), Some(commit)),
        Updated::NotGit => line(UpdateOutcome::NotGit, None, None),
        Updated::Failed(err) => SkillUpdated {
            error: Some(boternity_skills::error_chain(err)),
            hint: flag_hint(err),
            ..line(UpdateOutcome::Failed, None, None)
        },
    };
    message::emit(&message);
}

fn report_human(name: &str, outcome: Updated) {
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
            eprintln!("error: `{name}` was not updated; the installed version is kept");
            super::print_error(&err);
        }
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
