//! `boternity new-skill`: scaffold a Tool skill crate from the template.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::args::OutputArgs;
use super::message::{self, SkillCreated};

/// Create a new Tool skill from the template.
///
/// SKILL.md, a wit-bindgen cdylib crate implementing the skill world, and the
/// world's WIT. It builds as generated.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity new-skill word-count\n  boternity new-skill word-count --path skills/\n  cd word-count && boternity build-skill . && boternity run skill.wasm --input 'hello world'"
)]
pub struct Opts {
    /// The skill's name: lowercase letters, digits and hyphens (at most 64).
    name: String,
    /// Folder to create the skill in (default: the current folder).
    #[arg(long, default_value = ".")]
    path: PathBuf,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let dir = boternity_skills::skill::scaffold::new_skill(&self.name, &self.path)
            .with_context(|| format!("cannot create skill `{}`", self.name))?;
        if self.format.json() {
            message::emit(&SkillCreated {
                name: &self.name,
                path: &dir,
            });
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("Created Tool skill `{}` in {}", self.name, dir.display());
        eprintln!(
            "Next: boternity build-skill {} && boternity run {}/skill.wasm --input 'hello world'",
            dir.display(),
            dir.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
