//! `boternity completions`: the shell completion script (`clap_complete`),
//! generated from the same command line the binary parses.

use std::process::ExitCode;

use clap_complete::Shell;

/// Print the completion script for a shell.
///
/// The script completes subcommands, flags and their values; load it in the
/// shell's startup file (see the examples).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity completions bash > ~/.local/share/bash-completion/completions/boternity\n  boternity completions zsh > \"${fpath[1]}/_boternity\"\n  boternity completions fish > ~/.config/fish/completions/boternity.fish\n  boternity completions powershell >> $PROFILE\n  boternity completions elvish >> ~/.config/elvish/rc.elv"
)]
pub struct Opts {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        // `generate` builds every subcommand first.
        let mut command = crate::command();
        clap_complete::generate(
            self.shell,
            &mut command,
            "boternity",
            &mut std::io::stdout(),
        );
        Ok(ExitCode::SUCCESS)
    }
}
