//! `boternity __generate-references DIR` (not a subcommand: `main` checks
//! for it before parsing; `cargo xtask man` runs it with `docs/`): writes
//! what is generated from the CLI's own definitions, so it can never
//! describe another version of them:
//!
//! - `man/`: a man page for `boternity` and each subcommand (`clap_mangen`);
//! - `src/reference/cli.md`: the command-line reference page (markdown);
//! - `schema/`: the JSON Schema of each `--message-format json` message,
//!   one `<reason>.schema.json` per message and `messages.schema.json`
//!   holding them all (see [`super::schema`]).
//!
//! It lives in the binary because the CLI does (the library has no clap
//! types); tests/it/tidy.rs runs it into a temporary folder and compares.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// The generator's argument (`boternity __generate-references DIR`).
pub const ARG: &str = "__generate-references";

/// The generated folders' files, removed before writing so that a file
/// whose subcommand or message is gone goes with it.
const GENERATED: [(&str, &str); 2] = [("man", ".1"), ("schema", ".schema.json")];

/// Runs the generator when `args` (the process's) ask for it: then its exit
/// code. Not a clap subcommand, so no help, man page or completion script
/// offers it.
pub fn main(mut args: impl Iterator<Item = OsString>) -> Option<ExitCode> {
    if args.nth(1)? != ARG {
        return None;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: boternity {ARG} DIR");
        return Some(ExitCode::from(2));
    };
    Some(match generate(Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            super::print_error(err.as_ref());
            ExitCode::FAILURE
        }
    })
}

/// Writes the references below `dir` (the docs folder).
fn generate(dir: &Path) -> anyhow::Result<()> {
    for (folder, suffix) in GENERATED {
        clear(&dir.join(folder), suffix)?;
    }
    let man = dir.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("create {}", man.display()))?;
    clap_mangen::generate_to(documented(), &man)
        .with_context(|| format!("write the man pages into {}", man.display()))?;

    let reference = dir.join("src/reference/cli.md");
    write(&reference, &cli_markdown(documented()))?;

    let schema = dir.join("schema");
    let messages = super::schema::message_schemas();
    for (reason, value) in &messages {
        write(
            &schema.join(format!("{reason}.schema.json")),
            &pretty(value),
        )?;
    }
    let index = super::schema::index_schema(&messages);
    write(&schema.join("messages.schema.json"), &pretty(&index))?;
    eprintln!(
        "wrote {}, {} and {}",
        man.display(),
        reference.display(),
        schema.display()
    );
    Ok(())
}

/// The command line as documented: every subcommand built, without the
/// `help` subcommands (each has `--help`, and `boternity help` needs no page).
fn documented() -> clap::Command {
    let mut command = crate::command().disable_help_subcommand(true);
    command.build();
    command
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    text
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// Removes the files of `dir` whose names end in `suffix` (only those: a
/// mistyped DIR loses no other file).
fn clear(dir: &Path, suffix: &str) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.to_string_lossy().ends_with(suffix) {
            std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// The reference page: every visible command, its long help, usage,
/// arguments and examples, in markdown.
pub fn cli_markdown(command: clap::Command) -> String {
    let mut out = String::from(
        "<!-- Generated from the CLI's definition by `cargo xtask man`: do not edit. -->\n\n\
         # Command-line reference\n\n\
         Every subcommand of `boternity`, as its `--help` describes it. Each is also a man \
         page: `man boternity-<subcommand>` (docs/man/).\n",
    );
    render(&mut out, &command, true);
    out
}

fn render(out: &mut String, command: &clap::Command, top: bool) {
    let mut command = command.clone();
    let name = command
        .get_bin_name()
        .unwrap_or(command.get_name())
        .to_string();
    let _ = write!(out, "\n## `{name}`\n\n");
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        let _ = writeln!(out, "{}\n", escape(&about.to_string()));
    }
    let usage = command.render_usage().to_string();
    let _ = writeln!(out, "```text\n{}\n```", usage.trim_end());

    let subcommands: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if !subcommands.is_empty() {
        out.push_str("\nCommands:\n\n");
        for sub in &subcommands {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "- [`{}`](#{}): {}",
                sub.get_name(),
                anchor(&format!("{name} {}", sub.get_name())),
                escape(&about)
            );
        }
    }

    let args: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        // The global flags once, at the top; help and version everywhere.
        .filter(|a| top || !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let (positionals, options): (Vec<_>, Vec<_>) =
        args.into_iter().partition(|a| a.is_positional());
    for (title, list) in [("Arguments", positionals), ("Options", options)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(out, "\n{title}:\n\n");
        for arg in list {
            render_arg(out, arg);
        }
    }
    if let Some(after) = command.get_after_long_help().or(command.get_after_help()) {
        let _ = writeln!(out, "\n```text\n{}\n```", after.to_string().trim_end());
    }
    for sub in subcommands {
        render(out, sub, false);
    }
}

fn render_arg(out: &mut String, arg: &clap::Arg) {
    let value = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    let takes_value = arg.get_num_args().is_none_or(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue
                | clap::ArgAction::SetFalse
                | clap::ArgAction::Count
                | clap::ArgAction::Help
                | clap::ArgAction::HelpShort
                | clap::ArgAction::HelpLong
                | clap::ArgAction::Version
        );
    let mut spelled = Vec::new();
    if let Some(short) = arg.get_short() {
        spelled.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        spelled.push(format!("--{long}"));
    }
    let mut head = spelled.join(", ");
    if arg.is_positional() {
        head = value;
    } else if takes_value {
        head = format!("{head} {value}");
    }
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let _ = write!(out, "- `{head}`");
    if !help.is_empty() {
        let _ = write!(out, ": {}", escape(&help).replace('\n', "\n  "));
    }
    let mut notes = Vec::new();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && !matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        notes.push(format!("one of {}", values.join(", ")));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if !defaults.is_empty() && takes_value {
        notes.push(format!("default {}", defaults.join(" ")));
    }
    if let Some(env) = arg.get_env() {
        notes.push(format!("env `{}`", env.to_string_lossy()));
    }
    if !notes.is_empty() {
        let _ = write!(out, " ({})", notes.join("; "));
    }
    out.push('\n');
}

/// The heading anchor mdBook gives `## \`boternity install\``.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Help text as markdown: `<`, `>` and `*` outside code spans are escaped
/// (`skill-data/<name>` is not an HTML tag, `*.wasm` not emphasis).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => in_code = !in_code,
            '<' | '>' | '*' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}
