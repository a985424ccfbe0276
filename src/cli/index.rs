//! `boternity index merge`: join the indexes of a sharded precompile;
//! `index sign` and `index verify`: its minisign signature.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::registry::index::Index;
use boternity_skills::registry::sign::{self, SigningKey, TrustedKey};

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
    /// Sign an index into INDEX.minisig (minisign's format).
    #[command(
        after_help = "Example:\n  boternity index sign dist/index.json --key registry.key --password-env BOTERNITY_KEY_PASSWORD\n  minisign -Vm dist/index.json -p registry.key.pub   (verifies it too)"
    )]
    Sign {
        /// The index to sign.
        index: PathBuf,
        /// The secret key (from `boternity keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The environment variable holding the key's password (an encrypted key).
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Check an index against INDEX.minisig and a public key (exit 1 if it does not verify).
    #[command(
        after_help = "Example:\n  boternity index verify dist/index.json --key registry.key.pub"
    )]
    Verify {
        /// The index to check.
        index: PathBuf,
        /// The public key: FILE.pub, or the base64 key itself.
        #[arg(long, value_name = "FILE.pub|KEY")]
        key: String,
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
            IndexCommand::Sign {
                index,
                key,
                password_env,
            } => {
                let key = SigningKey::load(&key, password_env.as_deref())
                    .with_context(|| format!("cannot use the key {}", key.display()))?;
                let signature = key
                    .sign_file(&index)
                    .with_context(|| format!("cannot sign {}", index.display()))?;
                eprintln!(
                    "{:>12} {} with key {} -> {}",
                    "Signed",
                    index.display(),
                    key.key_id(),
                    signature.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            IndexCommand::Verify { index, key } => {
                let trusted = TrustedKey::parse(&key)?;
                let bytes = std::fs::read(&index)
                    .with_context(|| format!("cannot read {}", index.display()))?;
                let sig_path = sign::signature_path(&index);
                let signature = std::fs::read_to_string(&sig_path).with_context(|| {
                    format!(
                        "{} is not signed: cannot read {}",
                        index.display(),
                        sig_path.display()
                    )
                })?;
                sign::verify(
                    &bytes,
                    &signature,
                    std::slice::from_ref(&trusted),
                    &index.display().to_string(),
                )?;
                eprintln!(
                    "{:>12} {} is signed by key {}",
                    "Verified",
                    index.display(),
                    trusted.key_id()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
