//! `boternity verify`: re-hash every installed file against the provenance
//! record and name each one changed, missing or added.

use std::process::ExitCode;

use boternity_skills::store::verify;

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, SkillVerified};

/// Check installed skills against what was installed.
///
/// Every file of each skill (its folder's files, skill.wasm, skill.cwasm) is
/// re-hashed and compared with the sha256 its provenance record holds.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity verify\n  boternity verify docx --message-format json\n\nExit status:\n  0  every skill is as installed\n  1  a file changed, is missing or was added (each is named), or a skill cannot be checked"
)]
pub struct Opts {
    /// The skills to check (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let skills = if self.names.is_empty() {
            store.list()?
        } else {
            self.names
                .iter()
                .map(|n| store.get(n))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut bad = false;
        for skill in &skills {
            let result = verify::verify(skill);
            let ok = matches!(&result, Ok(changes) if changes.is_empty());
            bad |= !ok;
            if self.format.json() {
                message::emit(&SkillVerified {
                    name: &skill.name,
                    ok,
                    changes: result.as_deref().unwrap_or_default(),
                    error: result
                        .as_ref()
                        .err()
                        .map(|e| boternity_skills::error_chain(e)),
                });
                continue;
            }
            match result {
                Ok(changes) if changes.is_empty() => {
                    eprintln!("{:>12} `{}`", "Verified", skill.name)
                }
                Ok(changes) => {
                    eprintln!(
                        "error: `{}` differs from what was installed ({}):",
                        skill.name,
                        skill.dir.display()
                    );
                    for change in changes {
                        eprintln!("    {change}");
                    }
                }
                Err(err) => super::print_error(&err),
            }
        }
        Ok(if bad {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}
