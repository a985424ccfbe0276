//! `boternity remove`: take a skill out of the store, with its data folder
//! unless `--keep-data`.

use std::process::ExitCode;

use boternity_skills::store::RemovedData;

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, SkillRemoved};

/// Remove an installed skill.
///
/// Atomic: it disappears in one rename. Its data folder (skill-data/<name>)
/// is deleted with it, unless --keep-data: then only a reinstall from the
/// same origin (the same folder, repository and path, or registry) gets it
/// back; any other skill installed under the name starts with an empty one.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity remove weather\n  boternity remove weather --keep-data   (reinstall it from the same place to get its data back)\n  boternity remove weather --message-format json\n\nExit status:\n  0  removed\n  1  not installed, or the store could not be changed"
)]
pub struct Opts {
    /// The skill's name.
    name: String,
    /// Keep its data folder, for a reinstall from the same origin only.
    #[arg(long)]
    keep_data: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let data = store.remove(&self.name, self.keep_data)?;
        let folder = store.data_dir(&self.name);
        if self.format.json() {
            message::emit(&SkillRemoved {
                name: &self.name,
                store: store.root(),
                data: data.into(),
                data_dir: (data != RemovedData::None).then_some(folder.as_path()),
            });
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{:>12} `{}` from {}",
            "Removed",
            self.name,
            store.root().display()
        );
        match data {
            RemovedData::None => {}
            RemovedData::Deleted => {
                eprintln!("{:>12} its data folder {}", "Deleted", folder.display());
            }
            RemovedData::Kept => eprintln!(
                "{:>12} its data folder {}: only a reinstall from the same origin gets it back",
                "Kept",
                folder.display()
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}
