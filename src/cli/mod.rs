//! Subcommands, one module each: every module parses its flags (shared flag
//! groups live in [`args`]), calls the library and reports, in human text or
//! as the typed JSON messages of [`message`].

mod args;
mod bench;
mod build_skill;
mod check;
mod doctor;
mod index;
mod install;
mod install_git;
mod keygen;
mod list;
mod message;
mod new_skill;
mod outdated;
mod precompile;
mod registry;
mod remove;
mod run;
mod sync;
mod update;
mod validate;
mod verify;

use std::process::ExitCode;

use clap::Subcommand;

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
    Keygen(keygen::Opts),
    Doctor(doctor::Opts),
    Check(check::Opts),
    Outdated(outdated::Opts),
    Update(Box<update::Opts>),
    Verify(verify::Opts),
    Sync(Box<sync::Opts>),
}

impl Command {
    /// `jobserver`: the one this process inherited, taken at the start of
    /// `main` before anything else could disturb its descriptors.
    pub fn run(self, jobserver: Option<jobserver::Client>) -> anyhow::Result<ExitCode> {
        match self {
            Command::NewSkill(o) => o.run(),
            Command::BuildSkill(o) => o.run(),
            Command::Validate(o) => o.run(),
            Command::Run(o) => o.run(),
            Command::Install(o) => o.run(),
            Command::List(o) => o.run(),
            Command::Remove(o) => o.run(),
            Command::Bench(o) => o.run(),
            Command::Precompile(o) => o.run(jobserver),
            Command::Index(o) => o.run(),
            Command::Keygen(o) => o.run(),
            Command::Doctor(o) => o.run(),
            Command::Check(o) => o.run(),
            Command::Outdated(o) => o.run(),
            Command::Update(o) => o.run(),
            Command::Verify(o) => o.run(),
            Command::Sync(o) => o.run(),
        }
    }
}

/// Prints an error as `error: …` and then each cause once, on its own
/// `Caused by:` line (as wasm-tools does).
pub fn print_error(err: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {err}");
    let mut cause = err.source();
    if cause.is_some() {
        eprintln!("\nCaused by:");
    }
    while let Some(c) = cause {
        eprintln!("    {c}");
        cause = c.source();
    }
}

/// Prints what the lenient `SKILL.md` reader bent, in the shape compilers
/// use (`file:line:col: warning[code]: message`), then the fix.
pub fn print_warnings(
    manifest: &std::path::Path,
    warnings: &[boternity_skills::skill::manifest::Warning],
) {
    for w in warnings {
        eprintln!(
            "{}:{}:{}: warning[{}]: {}",
            manifest.display(),
            w.line,
            w.column,
            w.code,
            w.message
        );
        eprintln!("    = fix: {}", w.fix);
    }
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
