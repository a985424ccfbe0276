//! `boternity`: build, validate, install and run boternity Tool skills as
//! sandboxed WebAssembly components. Each subcommand lives in `cli/` and only
//! parses flags, calls the library and reports.

mod cli;

use std::process::ExitCode;

use clap::Parser;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(cli.verbose);
    match cli.command.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
