//! `boternity`: build, validate, install and run boternity Tool skills as
//! sandboxed WebAssembly components. Each subcommand lives in `cli/` and only
//! parses flags, calls the library and reports.
#![allow(clippy::print_stdout, clippy::print_stderr)] // The CLI reports to the user on stdout/stderr; the library never prints.

mod cli;

use std::process::ExitCode;

use boternity_skills::build::sandbox;
use clap::{CommandFactory, Parser};

/// Build, validate, install and run boternity Tool skills as sandboxed
/// WebAssembly components of the `boternity:skill/skill-plugin` world.
#[derive(Parser)]
#[command(name = "boternity", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: cli::Command,
}

/// The command line, for `completions` and the generated references: they
/// build it whole (`Command::build`), each subcommand's deferred arguments
/// included (see `cli/mod.rs`).
fn command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    // Re-executed as the build sandbox's helper: confine, then exec cargo.
    // Checked before anything else runs, so the helper stays single-threaded.
    // Its policy and jobserver variables are read here: the library reads no
    // environment variable of its own.
    let env = sandbox::HELPER_ENV
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)));
    if let Some(code) = sandbox::helper_main(std::env::args_os(), env) {
        return code;
    }
    // First, before anything opens a descriptor or spawns a process (as rustc
    // does): the inherited jobserver's descriptors are only known to be its
    // own until then.
    // SAFETY: nothing has run yet that could open, close or reuse a file
    // descriptor in this process.
    let jobserver = unsafe { boternity_skills::registry::precompile::inherited_jobserver() };
    // `cargo xtask man`'s generator (cli/references.rs).
    if let Some(code) = cli::references::main(std::env::args_os()) {
        return code;
    }
    let cli = Cli::parse();
    cli::init_tracing(cli.verbose);
    // An error is reported as the subcommand's --message-format asks.
    cli.command.run(jobserver)
}
