//! `boternity verify`: re-hash every installed file against the provenance
//! record and name each one changed, missing or added; and name each skill
//! installed from a registry at a version that registry has since yanked.

use std::process::ExitCode;

use boternity_skills::registry::installed::{self, AskOptions, Standing};
use boternity_skills::store::verify;

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, SkillVerified};
use super::registry::TrustArgs;

/// Check installed skills against what was installed.
///
/// Every file of each skill (its folder's files, skill.wasm, skill.cwasm) is
/// re-hashed and compared with the sha256 its provenance record holds. A
/// skill installed from a registry is also looked up in that registry's
/// index as the download cache holds it (never the network: `boternity
/// outdated` refreshes it): a yanked version is reported.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity verify\n  boternity verify docx --message-format json\n\nExit status:\n  0  every skill is as installed\n  1  a file changed, is missing or was added (each is named), a skill's version was yanked in its registry, or a skill cannot be checked"
)]
pub struct Opts {
    /// The skills to check (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    pub format: OutputArgs,
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
        let ask = AskOptions {
            keys: self.trust.keys()?,
            offline: true,
            allow_expired: self.trust.expired.allow_expired,
        };
        let registry = installed::standings_of(&self.store.context(), &skills, &ask);
        let mut bad = false;
        for skill in &skills {
            let result = verify::verify(skill);
            let standing = registry.iter().find(|r| r.name == skill.name);
            let yanked = standing
                .filter(|r| r.standing == Standing::Yanked)
                .map(|r| r.yanked.as_deref().unwrap_or("no reason given"));
            let ok = matches!(&result, Ok(changes) if changes.is_empty()) && yanked.is_none();
            bad |= !ok;
            if self.format.json() {
                message::emit(&SkillVerified {
                    name: &skill.name,
                    ok,
                    changes: result.as_deref().unwrap_or_default(),
                    yanked,
                    error: result
                        .as_ref()
                        .err()
                        .map(|e| boternity_skills::error_chain(e)),
                });
                continue;
            }
            if let (Some(reason), Some(line)) = (yanked, standing) {
                eprintln!(
                    "error: `{}` {} was yanked from {}: {reason}; install another version \
                     (`boternity outdated` shows the newest)",
                    skill.name, line.installed, line.url
                );
            }
            match result {
                Ok(changes) if changes.is_empty() && yanked.is_some() => {}
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
