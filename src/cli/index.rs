//! `boternity index merge`: join the indexes of a sharded precompile.

use std::path::PathBuf;
use std::process::ExitCode;

use boternity_skills::registry::index::Index;

/// Work with precompiled registry indexes.
#[derive(clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(clap::Subcommand)]
enum IndexCommand {
    /// Join shard indexes into one (a skill in two shards must be identical).
    #[command(
        after_help = "Example:\n  boternity index merge shard-1/index.json shard-2/index.json -o dist/index.json"
    )]
    Merge {
        /// The shard indexes.
        #[arg(required = true)]
        indexes: Vec<PathBuf>,
        /// Where to write the merged index (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            IndexCommand::Merge { indexes, output } => {
                let read: Vec<Index> = indexes
                    .iter()
                    .map(|p| Index::read(p))
                    .collect::<Result<_, _>>()?;
                let merged = Index::merge(read)?;
                let bytes = merged.to_json();
                match output {
                    Some(path) => {
                        boternity_skills::fsutil::write_atomically(&path, &bytes)?;
                        eprintln!(
                            "{:>12} {} skills from {} indexes into {}",
                            "Merged",
                            merged.skills.len(),
                            indexes.len(),
                            path.display()
                        );
                    }
                    None => print!("{}", String::from_utf8_lossy(&bytes)),
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
