//! Tidy checks on the source tree itself (in the spirit of rust-analyzer's
//! `tidy.rs`): rules that are cheap to state, easy to forget, and checked by
//! reading files, not by running anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, sorted, as paths relative to the crate root.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
        .collect()
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{}: {e}", rel.display()))
}

#[test]
fn every_source_file_starts_with_a_module_doc_comment() {
    let missing: Vec<String> = rust_files(Path::new("src"))
        .into_iter()
        .filter(|rel| !read(rel).starts_with("//!"))
        .map(|rel| rel.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` module doc comment saying what they are for:\n  {}",
        missing.join("\n  ")
    );
}

/// The values of `const REASON: &'static str = "…";` in `message.rs`.
fn reasons_in_source(text: &str) -> Vec<String> {
    const PREFIX: &str = "const REASON: &'static str = \"";
    text.match_indices(PREFIX)
        .map(|(at, _)| {
            let rest = &text[at + PREFIX.len()..];
            rest[..rest.find('"').expect("unterminated REASON string")].to_string()
        })
        .collect()
}

/// The first column (between backticks) of the first table in README's
/// "JSON messages" section.
fn reasons_in_readme(text: &str) -> Vec<String> {
    let section = text
        .lines()
        .skip_while(|line| {
            !(line.starts_with('#') && line.trim_start_matches('#').trim() == "JSON messages")
        })
        .skip(1)
        .take_while(|line| !line.starts_with('#'));
    let table = section
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        // The header row and the `| --- |` separator.
        .skip(2);
    table
        .map(|row| {
            let first = row
                .trim_start_matches('|')
                .split('|')
                .next()
                .unwrap()
                .trim();
            first
                .strip_prefix('`')
                .and_then(|s| s.strip_suffix('`'))
                .unwrap_or_else(|| panic!("README JSON messages row without a `reason`: {row}"))
                .to_string()
        })
        .collect()
}

#[test]
fn readme_json_messages_table_names_exactly_the_reasons_in_message_rs() {
    let source = reasons_in_source(&read(Path::new("src/cli/message.rs")));
    let readme = reasons_in_readme(&read(Path::new("README.md")));
    assert!(
        !source.is_empty(),
        "no `const REASON` found in src/cli/message.rs"
    );
    assert!(
        !readme.is_empty(),
        "README.md has no table in a \"JSON messages\" section"
    );
    let source_set: BTreeSet<&String> = source.iter().collect();
    let readme_set: BTreeSet<&String> = readme.iter().collect();
    assert_eq!(
        source.len(),
        source_set.len(),
        "a reason is defined twice: {source:?}"
    );
    assert_eq!(
        readme.len(),
        readme_set.len(),
        "README lists a reason twice: {readme:?}"
    );
    let undocumented: Vec<_> = source_set.difference(&readme_set).collect();
    let unknown: Vec<_> = readme_set.difference(&source_set).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "README's JSON messages table is out of date:\n  missing from README: {undocumented:?}\n  \
         not in src/cli/message.rs: {unknown:?}"
    );
}

#[test]
fn only_the_cli_prints() {
    const PRINTS: [&str; 4] = ["println!", "eprintln!", "print!(", "eprint!("];
    let mut offenders = Vec::new();
    for rel in rust_files(Path::new("src")) {
        if rel.starts_with("src/cli") || rel == Path::new("src/main.rs") {
            continue;
        }
        for (n, line) in read(&rel).lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if PRINTS.iter().any(|p| line.contains(p)) {
                offenders.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the library must not print (return values, or emit `tracing` events; the CLI decides what \
         to show):\n  {}",
        offenders.join("\n  ")
    );
}

/// `boternity --help` lists each subcommand with its variant's doc comment
/// (subcommands are built lazily, see `cli/mod.rs`): each must be the first
/// line of the subcommand's own `--help`.
#[test]
fn top_level_help_summaries_match_each_subcommand() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_boternity"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    let listed: Vec<(String, String)> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (name, summary) = l.trim().split_once(char::is_whitespace)?;
            Some((name.to_string(), summary.trim().to_string()))
        })
        .filter(|(name, _)| name != "help")
        .collect();
    assert!(listed.len() >= 15, "{top}");
    for (name, summary) in listed {
        let own = help(&[&name, "--help"]);
        let first = own.lines().next().unwrap_or_default().trim_end_matches('.');
        assert_eq!(
            first, summary,
            "`boternity {name} --help` begins differently"
        );
    }
}
