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

/// The book's page listing the JSON messages.
const JSON_MESSAGES_PAGE: &str = "docs/src/reference/json-messages.md";

/// The first column (between backticks) of the first table in the "JSON
/// messages" section of `text` (the book's reference page).
fn reasons_in_json_page(text: &str) -> Vec<String> {
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
                .unwrap_or_else(|| panic!("{JSON_MESSAGES_PAGE}: a row without a `reason`: {row}"))
                .to_string()
        })
        .collect()
}

#[test]
fn json_messages_page_names_exactly_the_reasons_in_message_rs() {
    let source = reasons_in_source(&read(Path::new("src/cli/message.rs")));
    let page = reasons_in_json_page(&read(Path::new(JSON_MESSAGES_PAGE)));
    assert!(
        !source.is_empty(),
        "no `const REASON` found in src/cli/message.rs"
    );
    assert!(
        !page.is_empty(),
        "{JSON_MESSAGES_PAGE} has no table in a \"JSON messages\" section"
    );
    let source_set: BTreeSet<&String> = source.iter().collect();
    let page_set: BTreeSet<&String> = page.iter().collect();
    assert_eq!(
        source.len(),
        source_set.len(),
        "a reason is defined twice: {source:?}"
    );
    assert_eq!(
        page.len(),
        page_set.len(),
        "{JSON_MESSAGES_PAGE} lists a reason twice: {page:?}"
    );
    let undocumented: Vec<_> = source_set.difference(&page_set).collect();
    let unknown: Vec<_> = page_set.difference(&source_set).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "the JSON messages table in {JSON_MESSAGES_PAGE} is out of date:\n  missing from it: \
         {undocumented:?}\n  not in src/cli/message.rs: {unknown:?}"
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

/// The library's source files: everything in `src/` but the CLI.
fn library_files() -> Vec<PathBuf> {
    rust_files(Path::new("src"))
        .into_iter()
        .filter(|rel| !rel.starts_with("src/cli") && rel != Path::new("src/main.rs"))
        .collect()
}

/// The library reads no environment variable: its caller passes a
/// `Context` (the CLI builds it in `src/cli/context.rs`, the one place that
/// reads the environment), so an embedder and the tests decide everything.
#[test]
fn the_library_reads_no_environment_variable() {
    let mut offenders = Vec::new();
    for rel in library_files() {
        for (n, line) in read(&rel).lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains("env::var") || code.contains("env!(\"HOME") {
                offenders.push(format!("{}:{}: {}", rel.display(), n + 1, code));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the library must not read the environment (take it from the Context; only \
         src/cli/context.rs reads it):\n  {}",
        offenders.join("\n  ")
    );
    let context = read(Path::new("src/cli/context.rs"));
    assert!(
        context.contains("std::env::vars_os()"),
        "the CLI builds the context from the environment"
    );
}

/// Whether `text` (a string literal's contents) names a command-line flag
/// in a sentence: `--word` after a space, a quote or a parenthesis.
fn names_a_flag(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(2)).any(|i| {
        bytes[i] == b'-'
            && bytes[i + 1] == b'-'
            && bytes[i + 2].is_ascii_lowercase()
            && (i == 0 || matches!(bytes[i - 1], b' ' | b'`' | b'(' | b'\''))
            && text.contains(' ')
    })
}

/// The string literals of a Rust source text, each with the line it starts
/// on: the text is read as one, so a literal continued over several lines
/// (`"…\` then more) is one literal. Comments are skipped; `'"'` is a char,
/// not a quote (good enough for this source: no raw strings hold sentences).
fn literals(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut prev = '\0';
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
            }
            '"' if prev != '\'' => {
                let start = line;
                let mut literal = String::new();
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => {
                            escaped = true;
                            continue;
                        }
                        '"' => break,
                        _ => {}
                    }
                    literal.push(c);
                }
                out.push((start, literal));
            }
            _ => {}
        }
        prev = c;
    }
    out
}

/// The library says what is wrong in its own terms; the CLI adds which flag
/// changes it (`cli/args.rs`'s `flag_hint`), so an embedder's users are
/// never told to "pass --force".
#[test]
fn no_library_message_names_a_flag() {
    // Text written into files for their readers, not said to a user.
    const ALLOWED: [&str; 1] = ["`boternity sync --lock skills.lock` installs exactly this"];
    let mut offenders = Vec::new();
    for rel in library_files() {
        let text = read(&rel);
        // Unit tests feed flags as data.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (line, literal) in literals(text) {
            if names_a_flag(&literal) && !ALLOWED.iter().any(|a| literal.contains(a)) {
                offenders.push(format!("{}:{line}: {literal}", rel.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library messages must not name CLI flags (the CLI's flag_hint adds them):\n  {}",
        offenders.join("\n  ")
    );
    assert!(names_a_flag("pass --force to replace it"));
    assert!(!names_a_flag("--offline"));
    // A sentence continued over lines is read whole.
    let continued =
        literals("let e = \"it would replace it \\\n    (pass --force to replace it)\";");
    assert_eq!(continued.len(), 1, "{continued:?}");
    assert!(names_a_flag(&continued[0].1), "{continued:?}");
}

/// README.md and every Markdown file below `docs/`, sorted, relative to the
/// crate root.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // mdBook's output (`mdbook build docs`) is not a source.
                if path != root().join("docs/book") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|ext| ext == "md") {
                out.push(path.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    let mut files = vec![PathBuf::from("README.md")];
    walk(&root().join("docs"), &mut files);
    files.sort();
    files
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// `line` with every inline code span replaced by `code`, so that neither a
/// `[a](b)` shown as code counts as a link nor a link's text in backticks
/// hides it.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let ticks = rest[open..].len() - rest[open..].trim_start_matches('`').len();
        let fence = &rest[open..open + ticks];
        let after = &rest[open + ticks..];
        match after.find(fence) {
            Some(close) => {
                out.push_str("code");
                rest = &after[close + ticks..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the inline links `[text](target)` (and images) of a
/// Markdown text, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n, after[..end].trim().to_string()));
            rest = &after[end + 1..];
        }
    }
    out
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, every other
/// character but letters, digits, `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings (a repeated heading's second
/// anchor gets `-1`, as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        // A link in a heading counts by its text.
        let heading = line[hashes..].trim().trim_end_matches('#');
        let mut text = String::new();
        let mut rest = heading;
        while let Some(at) = rest.find("](") {
            let end = rest[at..].find(')').map_or(rest.len(), |e| at + e + 1);
            text.push_str(&rest[..at]);
            rest = &rest[end..];
        }
        text.push_str(rest);
        let base = slug(&text);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `base/rel` with `.` and `..` resolved lexically (no link is followed);
/// `None` when it leaves the crate root (`base` is relative to it).
fn join_lexically(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in base.join(rel).components() {
        match part {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            std::path::Component::CurDir => {}
            std::path::Component::Normal(name) => out.push(name),
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Every relative link in README.md and the book leads to a file (or
/// folder) that exists, and every `#anchor` to a heading of its page.
#[test]
fn book_links_are_valid() {
    let mut broken = Vec::new();
    let files = markdown_files();
    assert!(files.len() > 10, "the book is missing: {files:?}");
    for rel in &files {
        let text = read(rel);
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let at = format!("{}:{line}: ({target})", rel.display());
            let resolved = if path.is_empty() {
                rel.clone()
            } else if let Some(resolved) = join_lexically(rel.parent().unwrap(), path) {
                resolved
            } else {
                broken.push(format!("{at}: leaves the repository"));
                continue;
            };
            if !root().join(&resolved).exists() {
                broken.push(format!("{at}: {} does not exist", resolved.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                if resolved.extension().is_none_or(|ext| ext != "md") {
                    broken.push(format!("{at}: an anchor into a file that is not Markdown"));
                } else if !anchors(&read(&resolved)).contains(anchor) {
                    broken.push(format!(
                        "{at}: {} has no heading whose anchor is `{anchor}`",
                        resolved.display()
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

/// Every page under `docs/src/` is a chapter of the book: `SUMMARY.md` links
/// to it (mdBook renders only what SUMMARY.md lists).
#[test]
fn every_book_page_is_in_summary() {
    let src = Path::new("docs/src");
    let summary: BTreeSet<PathBuf> = links(&read(&src.join("SUMMARY.md")))
        .into_iter()
        .filter_map(|(_, target)| join_lexically(src, target.split('#').next().unwrap()))
        .collect();
    let pages: Vec<PathBuf> = markdown_files()
        .into_iter()
        .filter(|p| p.starts_with(src) && p != &src.join("SUMMARY.md"))
        .collect();
    assert!(pages.len() > 10, "the book is missing: {pages:?}");
    let missing: Vec<String> = pages
        .iter()
        .filter(|p| !summary.contains(*p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "pages of the book that docs/src/SUMMARY.md does not list:\n  {}",
        missing.join("\n  ")
    );
}

/// README.md fits a screen or two (issue #23); the manual is the book.
#[test]
fn readme_is_at_most_150_lines() {
    let lines = read(Path::new("README.md")).lines().count();
    assert!(
        lines <= 150,
        "README.md has {lines} lines (at most 150): move the detail into the book under docs/src/"
    );
}

#[test]
fn slugs_and_links_are_read_as_github_does() {
    assert_eq!(
        slug("Build (`build-skill`, and every build)"),
        "build-build-skill-and-every-build"
    );
    assert_eq!(
        slug("A skill's data belongs to its install"),
        "a-skills-data-belongs-to-its-install"
    );
    assert_eq!(slug("`.cwasm` files"), "cwasm-files");
    assert_eq!(
        links("see [`a`](b.md#c), `[x](not-a-link)`, ![i](img.png)\n```\n[y](fenced)\n```\n"),
        vec![(1, "b.md#c".to_string()), (1, "img.png".to_string())]
    );
    let page = anchors("# T\n## Usage\n## Usage\n```\n# not a heading\n```\n");
    assert!(page.contains("usage") && page.contains("usage-1") && !page.contains("not-a-heading"));
}
// --- Generated references (man pages, CLI reference, JSON Schema), shell
// completions and the package's contents. ---

// The suite's JSON line checker, for its own test below.
use crate::common::schema;

/// The files below `dir`, relative to it, with their text.
fn files_below(dir: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), text);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// docs/man/, docs/src/reference/cli.md and docs/schema/ are exactly what
/// the binary's generator writes now (and man/ and schema/ hold nothing else).
#[test]
fn generated_references_are_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boternity"))
        .arg("__generate-references")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stale = Vec::new();
    for generated in ["man", "schema", "src/reference"] {
        let now = files_below(&tmp.path().join(generated));
        let committed = files_below(&root().join("docs").join(generated));
        assert!(
            !now.is_empty(),
            "the generator wrote nothing into {generated}/"
        );
        for (file, text) in &now {
            match committed.get(file) {
                None => stale.push(format!("docs/{generated}/{} is missing", file.display())),
                Some(old) if old != text => {
                    stale.push(format!("docs/{generated}/{} is stale", file.display()))
                }
                Some(_) => {}
            }
        }
        // docs/src/reference/ also holds written pages; man/ and schema/
        // are the generator's alone.
        if generated == "src/reference" {
            continue;
        }
        for file in committed.keys().filter(|f| !now.contains_key(*f)) {
            stale.push(format!(
                "docs/{generated}/{} is no longer generated",
                file.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "the generated references differ from the CLI: run `cargo xtask man`\n  {}",
        stale.join("\n  ")
    );
}

/// Each reason of `message.rs` has its schema file and its place in the
/// index, and nothing else does (the generator's list is written by hand).
#[test]
fn every_message_has_a_schema() {
    let mut reasons = reasons_in_source(&read(Path::new("src/cli/message.rs")));
    reasons.sort();
    let index: serde_json::Value =
        serde_json::from_str(&read(Path::new("docs/schema/messages.schema.json"))).unwrap();
    let mut listed: Vec<String> = index["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/$defs/")
                .to_string()
        })
        .collect();
    listed.sort();
    assert_eq!(
        reasons, listed,
        "src/cli/schema.rs's message_schemas lists other messages than message.rs"
    );
    let mut files: Vec<String> = files_below(&root().join("docs/schema"))
        .into_keys()
        .map(|f| f.display().to_string())
        .filter(|f| f != "messages.schema.json")
        .collect();
    files.sort();
    let expected: Vec<String> = reasons.iter().map(|r| format!("{r}.schema.json")).collect();
    assert_eq!(files, expected);
    for reason in &reasons {
        let own = &index["$defs"][reason.as_str()];
        assert_eq!(own["properties"]["reason"]["const"], reason.as_str());
        assert!(
            own["required"]
                .as_array()
                .unwrap()
                .contains(&"reason".into()),
            "{reason}"
        );
    }
}

/// The checker the suite validates JSON lines with knows every keyword the
/// schema uses, and refuses what it should.
#[test]
fn the_schema_checker_knows_the_schema_and_refuses_bad_lines() {
    fn keywords(schema: &serde_json::Value, unknown: &mut BTreeSet<String>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        for (key, value) in object {
            if !schema::KNOWN_KEYWORDS.contains(&key.as_str()) {
                unknown.insert(key.clone());
            }
            match key.as_str() {
                "properties" | "$defs" => {
                    for sub in value.as_object().unwrap().values() {
                        keywords(sub, unknown);
                    }
                }
                "items" | "additionalProperties" => keywords(value, unknown),
                "oneOf" | "anyOf" | "allOf" => {
                    for sub in value.as_array().unwrap() {
                        keywords(sub, unknown);
                    }
                }
                _ => {}
            }
        }
    }
    let index = schema::messages_schema();
    let mut unknown = BTreeSet::new();
    keywords(index, &mut unknown);
    assert!(
        unknown.is_empty(),
        "tests/it/common/schema.rs does not check {unknown:?}"
    );

    let failed = &index["$defs"]["command-failed"];
    let check = |line: serde_json::Value| schema::errors(index, failed, &line);
    let good = serde_json::json!({
        "reason": "command-failed", "command": "remove", "error": "gone", "hint": null
    });
    assert_eq!(check(good.clone()), Vec::<String>::new());
    schema::validate_json_line(&good.to_string());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("hint");
    assert!(check(missing)[0].contains("`hint` is missing"));
    let mut extra = good.clone();
    extra["surprise"] = 1.into();
    assert!(check(extra)[0].contains("does not list"));
    let mut wrong = good.clone();
    wrong["error"] = 3.into();
    assert!(check(wrong)[0].contains("not of type"));
    let mut other = good;
    other["reason"] = "skill-built".into();
    assert!(check(other)[0].contains("is not \"command-failed\""));

    let installed = &index["$defs"]["installed-skill"];
    let line = serde_json::json!({
        "reason": "installed-skill", "name": "a", "written_name": null, "files": 1,
        "version": "1", "type": "tool", "binary": "component", "trust_tier": "untrusted",
        "path_taken": "built", "manifest_error": null, "path": "/s/a",
        "origin": { "kind": "git", "url": "u", "path": "", "requested": null, "commit": "c" }
    });
    assert_eq!(
        schema::errors(index, installed, &line),
        Vec::<String>::new()
    );
    let mut bad = line;
    bad["origin"]["kind"] = "ftp".into();
    bad["files"] = (-1).into();
    let errors = schema::errors(index, installed, &bad);
    assert!(
        errors.iter().any(|e| e.starts_with(".files:")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with(".origin:")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with(".files:") || e.starts_with(".origin:")),
        "{errors:?}"
    );
}

/// `boternity completions SHELL` prints a script that knows the subcommands
/// (and not the hidden generator).
#[test]
fn completions_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_boternity"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["install", "build-skill", "precompile", "--message-format"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        assert!(!script.contains("__generate-references"), "{shell}");
    }
}

/// `cargo package` ships what the crate compiles in (the skill template, the
/// skill world's WIT) and the generated docs.
#[test]
fn the_package_holds_the_templates_and_the_wit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(root())
        // Not the target folder the running tests hold.
        .env("CARGO_TARGET_DIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut wanted = vec![
        "docs/schema/messages.schema.json".to_string(),
        "docs/man/boternity.1".to_string(),
        "docs/src/reference/cli.md".to_string(),
    ];
    for dir in ["templates", "wit"] {
        let files = files_below(&root().join(dir));
        assert!(!files.is_empty(), "{dir}/ is empty");
        wanted.extend(files.into_keys().map(|f| format!("{dir}/{}", f.display())));
    }
    let missing: Vec<&String> = wanted.iter().filter(|f| !listed.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "cargo package leaves out {missing:?} (Cargo.toml's `include`; a folder with a Cargo.toml is never packaged)"
    );
}

/// `cargo tree --offline --prefix none` with `args`, its output.
fn cargo_tree(args: &[&str]) -> String {
    let out = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["tree", "--offline", "--prefix", "none"])
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `wasmparser v0.254.2` out of `cargo tree`'s `wasmparser v0.254.2 (*)`
/// (seen before) or `boternity-skills v0.1.0 (/work/main)`.
fn package_id(shown: &str) -> String {
    shown.split(" (").next().unwrap().trim().to_string()
}

/// Every package `cargo tree` shows over `edges`, each with the feature sets
/// it is built with: one per copy cargo compiles (the host's copy, for proc
/// macros and build scripts, is a second one when its features differ).
fn feature_sets(edges: &str) -> std::collections::BTreeMap<String, BTreeSet<BTreeSet<String>>> {
    let out = cargo_tree(&["--workspace", "--format", "{p}|{f}", "--edges", edges]);
    let mut by_package = std::collections::BTreeMap::<String, BTreeSet<BTreeSet<String>>>::new();
    for line in out.lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        let package = package_id(package);
        let features = features.trim_end_matches(" (*)").trim();
        by_package.entry(package).or_default().insert(
            features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    by_package
}

/// `cargo xtask demo` builds the binary and `cargo xtask test` the tests:
/// every package both builds must get the same features, or the tests
/// recompile everything above the one that differs (the wasm stack, minutes
/// on a fresh machine). Packages only the tests use (`wat`, `wast`) are
/// theirs alone.
#[test]
fn the_demo_and_the_tests_resolve_the_same_features() {
    let demo = feature_sets("normal,build");
    let tests = feature_sets("normal,build,dev");
    let differ: Vec<String> = demo
        .iter()
        .filter(|(package, f)| tests.get(*package).is_some_and(|t| t != *f))
        .map(|(package, f)| format!("{package}: {f:?} vs the tests' {:?}", tests[package]))
        .collect();
    assert!(
        differ.is_empty(),
        "the tests turn on features the demo's build does not; turn them on in Cargo.toml's [dependencies] too: {differ:#?}"
    );
}

/// The proc macros and build scripts get the same copy of a package as the
/// binary: one feature set per package, or cargo compiles it twice (the
/// wasm-tools crates, wasmtime-environ, object, serde: ~90 s of CPU of a
/// cold build on 2 cores). Cargo.toml's `[build-dependencies]` ask for the
/// binary's features on the host side.
#[test]
fn no_package_is_compiled_twice_for_two_feature_sets() {
    for edges in ["normal,build", "normal,build,dev"] {
        let twice: Vec<String> = feature_sets(edges)
            .into_iter()
            .filter(|(_, sets)| sets.len() > 1)
            .map(|(package, sets)| format!("{package}: {sets:?}"))
            .collect();
        assert!(
            twice.is_empty(),
            "built twice over --edges {edges}; add the missing features to Cargo.toml's [build-dependencies] (the host's side) or [dependencies]: {twice:#?}"
        );
    }
    // And the build-dependencies only raise features: each is a package the
    // binary builds anyway, at the same version (a pin left behind by a
    // wasmtime upgrade would build a whole old wasmtime-environ for nothing).
    let packages = |edges: &str, depth: &str| -> BTreeSet<String> {
        cargo_tree(&[
            "--package",
            "boternity-skills",
            "--format",
            "{p}",
            "--edges",
            edges,
            "--depth",
            depth,
        ])
        .lines()
        .map(package_id)
        .collect()
    };
    let built = packages("normal", "999");
    let extra: Vec<String> = packages("build", "1")
        .into_iter()
        .filter(|package| !built.contains(package))
        .collect();
    assert!(
        extra.is_empty(),
        "Cargo.toml's [build-dependencies] name packages the binary does not build (or not at that version); update or remove them: {extra:?}"
    );
}
