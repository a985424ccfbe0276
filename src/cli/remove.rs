//! `boternity remove`: take a skill out of the store.

use std::process::ExitCode;

use super::args::StoreArgs;

/// Remove an installed skill.
///
/// Atomic: it disappears in one rename. Its data folder (skill-data/<name>) is kept.
#[derive(clap::Args)]
pub struct Opts {
    /// The skill's name.
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        store.remove(&self.name)?;
        eprintln!(
            "{:>12} `{}` from {}",
            "Removed",
            self.name,
            store.root().display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
