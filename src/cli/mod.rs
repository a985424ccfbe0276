//! Subcommands (one module each) and what they share: output format, the
//! store location, tracing set-up.

mod bench;
mod build_skill;
mod index;
mod install;
mod list;
mod new_skill;
mod precompile;
mod remove;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum Command {
    NewSkill(new_skill::Opts),
    BuildSkill(build_skill::Opts),
    Validate(validate::Opts),
    Run(Box<run::Opts>),
    Install(Box<install::Opts>),
    List(list::Opts),
    Remove(remove::Opts),
    Bench(bench::Opts),
    Precompile(Box<precompile::Opts>),
    Index(index::Opts),
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::NewSkill(o) => o.run(),
            Command::BuildSkill(o) => o.run(),
            Command::Validate(o) => o.run(),
            Command::Run(o) => o.run(),
            Command::Install(o) => o.run(),
            Command::List(o) => o.run(),
            Command::Remove(o) => o.run(),
            Command::Bench(o) => o.run(),
            Command::Precompile(o) => o.run(),
            Command::Index(o) => o.run(),
        }
    }
}

/// `--message-format`: cargo's convention (human text on stderr; JSON objects
/// on stdout, one per line, each with a `reason`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    #[default]
    Human,
    Json,
}

/// `--store DIR`, shared by every command that touches the store.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// The data folder holding skills/ (default: $BOTERNITY_DATA_DIR, else ~/.boternity).
    #[arg(long, value_name = "DIR")]
    store: Option<std::path::PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<boternity_skills::store::SkillStore> {
        let root = match &self.store {
            Some(dir) => dir.clone(),
            None => boternity_skills::store::SkillStore::default_root().ok_or_else(|| {
                anyhow::anyhow!(
                    "no store: pass --store DIR or set BOTERNITY_DATA_DIR (HOME is not set)"
                )
            })?,
        };
        Ok(boternity_skills::store::SkillStore::new(root))
    }
}

/// Prints one JSON object on its own line (stdout).
pub fn emit_json(value: &serde_json::Value) {
    println!("{value}");
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
