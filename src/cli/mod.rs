//! Subcommands, one module each: every module parses its flags (shared flag
//! groups live in [`args`]), calls the library and reports, in human text or
//! as the typed JSON messages of [`message`].

mod args;
mod bench;
mod build_skill;
mod cache;
mod check;
mod completions;
mod context;
mod doctor;
mod host_env;
mod index;
mod install;
mod install_git;
mod keygen;
mod list;
mod message;
mod new_skill;
mod oci;
mod outdated;
mod precompile;
mod push;
pub mod references;
mod registry;
mod remove;
mod run;
mod schema;
mod sync;
mod update;
mod validate;
mod verify;

use std::process::ExitCode;

use boternity_skills::executor::{Executor, ExecutorConfig};
use clap::Subcommand;

use args::OutputArgs;

// `defer`: a subcommand's arguments are built only when it runs (or shows its
// help); building all of them cost every process ~0.1 ms. So the one-line
// summaries `boternity --help` lists are the variants' doc comments (tests/it/tidy.rs
// checks that each matches its subcommand's own).
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a new Tool skill from the template
    NewSkill(new_skill::Opts),
    /// Build a Tool skill into a WebAssembly component of the skill world
    BuildSkill(build_skill::Opts),
    /// Check that a file is a component of the skill world
    Validate(validate::Opts),
    /// Run a skill: instantiate it in wasmtime and call `execute` with the input
    Run(Box<run::Opts>),
    /// Install a skill into boternity's store
    Install(Box<install::Opts>),
    /// List installed skills
    List(list::Opts),
    /// Remove an installed skill
    Remove(remove::Opts),
    /// Measure what invoking a skill costs (compile, cold start, warm invoke), step by step
    Bench(bench::Opts),
    /// Pre-compile every skill of a registry into validated components
    Precompile(Box<precompile::Opts>),
    /// Build and check a skill as install does, then push it to an OCI registry
    Push(Box<push::Opts>),
    /// Work with precompiled registry indexes
    Index(index::Opts),
    /// Write a minisign key pair for signing a registry's index.json
    Keygen(keygen::Opts),
    /// Check the toolchain, the build sandbox and boternity's folders
    Doctor(doctor::Opts),
    /// Check SKILL.md files against the Agent Skills spec
    Check(check::Opts),
    /// Show which installed skills have newer commits or versions, or were yanked
    Outdated(outdated::Opts),
    /// Update skills installed from git or OCI registries to the newest of their ref or tag
    Update(Box<update::Opts>),
    /// Check installed skills against what was installed
    Verify(verify::Opts),
    /// Install exactly what a skills.lock lists
    Sync(Box<sync::Opts>),
    /// Print the completion script for a shell
    Completions(completions::Opts),
    /// Show and sweep boternity's cache folder
    Cache(cache::Opts),
}

impl Command {
    /// Runs the subcommand; an error it returns is reported as it asked
    /// (see [`report_error`]) with exit code 1. `jobserver`: the one this
    /// process inherited, taken at the start of `main` before anything else
    /// could disturb its descriptors.
    pub fn run(self, jobserver: Option<jobserver::Client>) -> ExitCode {
        let (name, json) = (self.name(), self.format().json());
        match self.dispatch(jobserver) {
            Ok(code) => code,
            Err(err) => {
                report_error(name, json, &err);
                ExitCode::FAILURE
            }
        }
    }

    fn dispatch(self, jobserver: Option<jobserver::Client>) -> anyhow::Result<ExitCode> {
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
            Command::Push(o) => o.run(),
            Command::Index(o) => o.run(),
            Command::Keygen(o) => o.run(),
            Command::Doctor(o) => o.run(),
            Command::Check(o) => o.run(),
            Command::Outdated(o) => o.run(),
            Command::Update(o) => o.run(),
            Command::Verify(o) => o.run(),
            Command::Sync(o) => o.run(),
            Command::Completions(o) => o.run(),
            Command::Cache(o) => o.run(),
        }
    }

    /// The subcommand's name as typed (`index sign` for `index`'s).
    pub fn name(&self) -> &'static str {
        match self {
            Command::NewSkill(_) => "new-skill",
            Command::BuildSkill(_) => "build-skill",
            Command::Validate(_) => "validate",
            Command::Run(_) => "run",
            Command::Install(_) => "install",
            Command::List(_) => "list",
            Command::Remove(_) => "remove",
            Command::Bench(_) => "bench",
            Command::Precompile(_) => "precompile",
            Command::Push(_) => "push",
            Command::Index(o) => o.name(),
            Command::Keygen(_) => "keygen",
            Command::Doctor(_) => "doctor",
            Command::Check(_) => "check",
            Command::Outdated(_) => "outdated",
            Command::Update(_) => "update",
            Command::Verify(_) => "verify",
            Command::Sync(_) => "sync",
            Command::Completions(_) => "completions",
            Command::Cache(o) => o.name(),
        }
    }

    /// The subcommand's `--message-format` (every one that reports takes it;
    /// `completions` prints a script: human).
    pub fn format(&self) -> OutputArgs {
        match self {
            Command::NewSkill(o) => o.format,
            Command::BuildSkill(o) => o.format,
            Command::Validate(o) => o.format,
            Command::Run(o) => o.format,
            Command::Install(o) => o.format,
            Command::List(o) => o.format,
            Command::Remove(o) => o.format,
            Command::Bench(o) => o.format,
            Command::Precompile(o) => o.format,
            Command::Push(o) => o.format,
            Command::Index(o) => o.format(),
            Command::Keygen(o) => o.format,
            Command::Doctor(o) => o.format,
            Command::Check(o) => o.format,
            Command::Outdated(o) => o.format,
            Command::Update(o) => o.format,
            Command::Verify(o) => o.format,
            Command::Sync(o) => o.format,
            Command::Completions(_) => OutputArgs::default(),
            Command::Cache(o) => o.format(),
        }
    }
}

/// The executor configuration of every subcommand: the `.cwasm` signing key
/// and the compile cache in boternity's cache folder. The one place the CLI
/// tells the executor where that folder is.
pub fn executor_config() -> ExecutorConfig {
    ExecutorConfig::default().with_cache_dir(&context::cache_dir())
}

/// An executor with `config` and the CLI's host services (secrets and
/// `read-env` from the environment, see [`host_env`]).
pub fn executor_with(config: ExecutorConfig) -> anyhow::Result<Executor> {
    Ok(Executor::with_config(config, host_env::services())?)
}

/// The executor of a subcommand that installs or precompiles:
/// [`executor_config`] as it is.
pub fn executor() -> anyhow::Result<Executor> {
    executor_with(executor_config())
}

/// Reports the error a subcommand returned: under `--message-format json`
/// one `command-failed` line on stdout, else [`print_error`] on stderr;
/// either with the flags that answer it ([`args::flag_hint`]).
pub fn report_error(command: &'static str, json: bool, err: &anyhow::Error) {
    if json {
        message::emit(&message::CommandFailed {
            command,
            error: message::error_text(err),
            hint: args::flag_hint(err.as_ref()),
        });
    } else {
        print_error(err.as_ref());
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
    if let Some(hint) = args::flag_hint(err) {
        eprintln!("\nhint: {hint}");
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
