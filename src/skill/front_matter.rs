//! Reading a `SKILL.md`'s front matter the way mainstream agents do: strict
//! YAML first, then — only when that fails — the fallbacks the Agent Skills
//! client guidance asks for (a byte-order mark, CRLF line endings, spaces
//! after the `---` fences, unquoted `: ` or ` #` in one-line values), each
//! recorded as a [`Warning`] with its position and the fix. [`fix`] applies
//! the same repairs to the file's text, touching only the front matter, so a
//! strict parser then reads exactly what the lenient one read.

use serde::{Deserialize, Serialize};

/// Something the lenient reader accepted although the spec forbids it: what,
/// where (1-based line and column in `SKILL.md`) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// A stable identifier (`unquoted-colon`, `name-mismatch`, …).
    pub code: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What the author should change.
    pub fix: String,
}

impl Warning {
    pub fn new(
        code: &str,
        (line, column): (usize, usize),
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Warning {
        Warning {
            code: code.into(),
            line,
            column,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: warning[{}]: {} (fix: {})",
            self.line, self.column, self.code, self.message, self.fix
        )
    }
}

/// A `SKILL.md` split into front matter and body, after the fallbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The YAML between the fences, with line endings normalised to `\n`
    /// and, when strict YAML failed, free-text values quoted. `None` when the
    /// file has no front matter at all.
    pub yaml: Option<String>,
    /// The file line on which `yaml`'s first line stands (2, after the fence).
    pub yaml_first_line: usize,
    /// The Markdown after the closing fence (the whole text without one).
    pub body: String,
    pub warnings: Vec<Warning>,
}

/// Why the front matter cannot be read by any fallback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontMatterError {
    #[error("SKILL.md front matter is not closed: add a `---` line after it")]
    Unclosed,
    #[error("SKILL.md front matter is not valid YAML at line {line}, column {column}: {message}")]
    Yaml {
        line: usize,
        column: usize,
        message: String,
    },
}

/// Keys whose value is always free text: a one-line value holding `: ` or
/// ` #` is quoted even when it starts like a flow collection.
const TEXT_KEYS: [&str; 6] = [
    "name",
    "description",
    "license",
    "compatibility",
    "author",
    "version",
];

/// Splits `text` and applies the fallbacks that strict YAML needs.
pub fn split(text: &str) -> Result<Split, FrontMatterError> {
    let mut warnings = Vec::new();
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            warnings.push(Warning::new(
                "bom",
                (1, 1),
                "the file starts with a byte-order mark",
                "save it as UTF-8 without a BOM (`check` fixes it)",
            ));
            rest
        }
        None => text,
    };
    let normalized;
    let text = if text.contains("\r\n") {
        warnings.push(Warning::new(
            "crlf",
            (1, 1),
            "the file has Windows (CRLF) line endings",
            "save it with LF line endings",
        ));
        normalized = text.replace("\r\n", "\n");
        normalized.as_str()
    } else {
        text
    };
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if !is_fence(first) {
        return Ok(Split {
            yaml: None,
            yaml_first_line: 0,
            body: text.to_string(),
            warnings,
        });
    }
    if first.trim_end_matches('\n') != "---" {
        warnings.push(fence_space_warning(1));
    }
    let mut yaml = String::new();
    let mut line_no = 1;
    for line in lines.by_ref() {
        line_no += 1;
        if is_fence(line) {
            if line.trim_end_matches('\n') != "---" {
                warnings.push(fence_space_warning(line_no));
            }
            let body: String = lines.collect();
            let yaml = read_yaml(yaml, &mut warnings)?;
            return Ok(Split {
                yaml: Some(yaml),
                yaml_first_line: YAML_FIRST_LINE,
                body,
                warnings,
            });
        }
        yaml.push_str(line);
    }
    Err(FrontMatterError::Unclosed)
}

fn is_fence(line: &str) -> bool {
    line.trim_end() == "---"
}

fn fence_space_warning(line: usize) -> Warning {
    Warning::new(
        "fence-space",
        (line, 4),
        "spaces after the `---` fence",
        "end the fence line right after `---`",
    )
}

/// Strict YAML first; on failure, the same text with one-line values quoted,
/// each quoting a warning. A file neither reads is refused at the strict
/// parser's position.
fn read_yaml(yaml: String, warnings: &mut Vec<Warning>) -> Result<String, FrontMatterError> {
    let (quoted, quotes) = match serde_norway::from_str::<serde_norway::Value>(&yaml) {
        // Strict YAML reads it, but would cut free text at ` #` as a comment:
        // the text is kept as written.
        Ok(_) => match quote_strict(&yaml, |key, value| {
            TEXT_KEYS.contains(&key)
                && value.contains(" #")
                && !value.starts_with(['"', '\'', '|', '>'])
                && misread(value)
        }) {
            Some(found) => found,
            None => return Ok(yaml),
        },
        Err(strict_error) => {
            quote_strict(&yaml, needs_quotes).ok_or_else(|| yaml_error(&strict_error))?
        }
    };
    for q in quotes {
        warnings.push(Warning::new(
            "unquoted-value",
            (q.line + YAML_FIRST_LINE, q.column),
            format!(
                "`{}` holds text that strict YAML misreads (`: `, ` #` or a leading `[`, `@`, `*` …); it was read as written",
                q.key
            ),
            format!("quote the value: {}: {}", q.key, yaml_quote(&q.value)),
        ));
    }
    Ok(quoted)
}

/// The file line of the front matter's first line (after the opening fence).
const YAML_FIRST_LINE: usize = 2;

/// A YAML error at its position in the file (the parser counts lines from 1
/// within the front matter).
pub fn yaml_error(e: &serde_norway::Error) -> FrontMatterError {
    let (line, column) = e
        .location()
        .map_or((0, 0), |l| (l.line() + YAML_FIRST_LINE - 1, l.column()));
    FrontMatterError::Yaml {
        line,
        column,
        message: format!(
            "{}; quote values that hold `: ` or ` #`, and indent nested keys with spaces",
            without_location(&e.to_string())
        ),
    }
}

/// The parser's message without its own " at line N column M" (which counts
/// from the front matter, not the file).
fn without_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// The YAML with the values `select` picks quoted, if any were and the
/// result is strict YAML.
fn quote_strict(yaml: &str, select: impl Fn(&str, &str) -> bool) -> Option<(String, Vec<Quoted>)> {
    let (quoted, quotes) = quote_values(yaml, select);
    let changed = !quotes.is_empty();
    (changed && serde_norway::from_str::<serde_norway::Value>(&quoted).is_ok())
        .then_some((quoted, quotes))
}

/// Whether `key: value` alone is YAML at all.
fn parses(value: &str) -> bool {
    serde_norway::from_str::<serde_norway::Value>(&format!("k: {value}")).is_ok()
}

/// Whether strict YAML reads `value` as something other than that text.
fn misread(value: &str) -> bool {
    match serde_norway::from_str::<serde_norway::Value>(&format!("k: {value}")) {
        Ok(serde_norway::Value::Mapping(m)) => {
            m.get("k").and_then(serde_norway::Value::as_str) != Some(value)
        }
        _ => true,
    }
}

/// A value the fallback quoted: 0-based line in the YAML, 1-based column.
struct Quoted {
    key: String,
    value: String,
    line: usize,
    column: usize,
}

/// Quotes the one-line values `select(key, value)` picks. Multi-line values
/// are left alone.
fn quote_values(yaml: &str, select: impl Fn(&str, &str) -> bool) -> (String, Vec<Quoted>) {
    let lines: Vec<&str> = yaml.split_inclusive('\n').collect();
    let mut out = String::with_capacity(yaml.len() + 16);
    let mut quotes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match plain_value(line, lines.get(i + 1).copied()) {
            Some((indent, key, value_start, value)) if select(key, value) => {
                let eol = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&line[..indent]);
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&yaml_quote(value));
                out.push_str(eol);
                quotes.push(Quoted {
                    key: key.to_string(),
                    value: value.to_string(),
                    line: i,
                    column: value_start + 1,
                });
            }
            _ => out.push_str(line),
        }
    }
    (out, quotes)
}

/// `key: value` on one line with a plain (unquoted, non-block) value that does
/// not continue on the next line: (indent, key, value's byte offset, value).
fn plain_value<'a>(line: &'a str, next: Option<&str>) -> Option<(usize, &'a str, usize, &'a str)> {
    let content = line.trim_end_matches(['\n', '\r']);
    let indent = content.len() - content.trim_start_matches(' ').len();
    let rest = &content[indent..];
    let colon = rest.find(": ")?;
    let key = &rest[..colon];
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let after = &rest[colon + 2..];
    let value = after.trim();
    if value.is_empty() {
        return None;
    }
    // A plain scalar continues on more-indented lines that are not keys.
    if let Some(next) = next {
        let next_content = next.trim_end_matches(['\n', '\r']);
        let next_indent = next_content.len() - next_content.trim_start_matches(' ').len();
        let next_rest = next_content.trim_start();
        if !next_rest.is_empty()
            && next_indent > indent
            && !next_rest.starts_with("- ")
            && plain_key(next_rest).is_none()
        {
            return None;
        }
    }
    let value_start = indent + colon + 2 + (after.len() - after.trim_start().len());
    Some((indent, key, value_start, value))
}

fn plain_key(rest: &str) -> Option<&str> {
    let colon = rest.find(':')?;
    let key = &rest[..colon];
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then_some(key)
}

/// What the fallback quotes once strict YAML has failed: a free-text key's
/// value that strict YAML misreads (`[WIP] …`, `@team …`, `a: b`, `"Smart"
/// quotes then text`, but not a value that is already a valid quoted or block
/// scalar); any other key's plain value holding `: ` or ` #` unless it is a
/// flow collection, as the Agent Skills client guidance asks.
fn needs_quotes(key: &str, value: &str) -> bool {
    if TEXT_KEYS.contains(&key) {
        return if value.starts_with(['"', '\'', '|', '>']) {
            !parses(value)
        } else {
            misread(value)
        };
    }
    let risky = value.contains(": ") || value.contains(" #") || value.ends_with(':');
    risky && !value.starts_with(['[', '{', '"', '\'', '|', '>'])
}

/// `value` as a double-quoted YAML scalar, read back as exactly `value`.
pub fn yaml_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `SKILL.md` with what the lenient reader bent repaired where that keeps the
/// meaning: the BOM removed, fence lines trimmed, values quoted. Only the
/// front matter changes; the body (and the file's line endings) stay byte for
/// byte. `None` when nothing needs fixing or the file cannot be read at all.
pub fn fix(text: &str) -> Option<String> {
    let split_ok = split(text).ok()?;
    if split_ok.warnings.is_empty() {
        return None;
    }
    let without_bom = text.strip_prefix('\u{feff}').unwrap_or(text);
    let crlf = without_bom.contains("\r\n");
    let mut lines = without_bom.split_inclusive('\n');
    let first = lines.next()?;
    if !is_fence(first) {
        return (without_bom.len() != text.len()).then(|| without_bom.to_string());
    }
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str("---");
    out.push_str(eol);
    let mut yaml = String::new();
    let mut closed = false;
    for line in lines.by_ref() {
        if is_fence(line) {
            closed = true;
            break;
        }
        yaml.push_str(&line.replace("\r\n", "\n"));
    }
    if !closed {
        return None;
    }
    let mut warnings = Vec::new();
    let yaml = read_yaml(yaml, &mut warnings).ok()?;
    for line in yaml.split_inclusive('\n') {
        out.push_str(line.trim_end_matches('\n'));
        out.push_str(eol);
    }
    out.push_str("---");
    out.push_str(eol);
    out.extend(lines);
    (out != text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unquoted_colon_is_read_as_written_with_a_positioned_warning() {
        let text = "---\nname: x\ndescription: Use when: the user asks # twice\n---\nBody\n";
        let split = split(text).unwrap();
        let value: serde_norway::Value =
            serde_norway::from_str(split.yaml.as_ref().unwrap()).unwrap();
        assert_eq!(value["description"], "Use when: the user asks # twice");
        let w = &split.warnings[..];
        assert_eq!(w.len(), 1, "{w:?}");
        let d = &w[0];
        assert_eq!(
            (d.code.as_str(), d.line, d.column),
            ("unquoted-value", 3, 14)
        );
        assert_eq!(split.body, "Body\n");
    }

    #[test]
    fn strict_yaml_is_left_alone() {
        let text = "---\nname: x\ndescription: \"a: b\"\nmetadata: {skill-type: tool}\n---\n";
        let split = split(text).unwrap();
        assert!(split.warnings.is_empty());
        assert_eq!(fix(text), None);
    }

    #[test]
    fn bom_crlf_and_fence_spaces_are_bent_and_fixed() {
        let text = "\u{feff}--- \r\nname: x\r\ndescription: a: b\r\n---\r\nBody\r\n";
        let split = split(text).unwrap();
        let codes: Vec<&str> = split.warnings.iter().map(|w| w.code.as_str()).collect();
        assert!(
            codes.contains(&"bom") && codes.contains(&"crlf") && codes.contains(&"fence-space"),
            "{codes:?}"
        );
        let fixed = fix(text).unwrap();
        assert!(!fixed.starts_with('\u{feff}'));
        assert!(fixed.ends_with("---\r\nBody\r\n"), "{fixed:?}");
        let yaml = fixed.split("---\r\n").nth(1).unwrap().replace("\r\n", "\n");
        let value: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(value["description"], "a: b");
    }

    #[test]
    fn unreadable_yaml_names_the_line() {
        let err = split("---\nname: x\nmetadata:\n\t- tab\n---\n").unwrap_err();
        assert!(
            matches!(err, FrontMatterError::Yaml { line: 4, .. }),
            "{err}"
        );
        assert_eq!(
            split("---\nname: x\n").unwrap_err(),
            FrontMatterError::Unclosed
        );
    }

    #[test]
    fn free_text_is_never_cut_or_refused_for_its_first_character() {
        for (written, read) in [
            ("Formats C# code #dotnet", "Formats C# code #dotnet"),
            ("[WIP] Summarise PDFs", "[WIP] Summarise PDFs"),
            ("@mention triage", "@mention triage"),
            ("*Beta* summariser", "*Beta* summariser"),
            ("\"Smart\" quotes then text", "\"Smart\" quotes then text"),
            ("> Use when asked", "> Use when asked"),
            ("'quoted' fine", "'quoted' fine"),
        ] {
            let text = format!("---\nname: x\ndescription: {written}\n---\n");
            let split = split(&text).unwrap_or_else(|e| panic!("{written}: {e}"));
            let value: serde_norway::Value =
                serde_norway::from_str(split.yaml.as_ref().unwrap()).unwrap();
            assert_eq!(value["description"], read, "{written}");
            assert!(
                split.warnings.iter().any(|w| w.code == "unquoted-value"),
                "{written}"
            );
        }
        // Valid quoted and block scalars are left as they are.
        let text = "---\nname: x\ndescription: \"a # b\"\nlicense: |\n  MIT\n---\n";
        assert!(split(text).unwrap().warnings.is_empty());
    }

    #[test]
    fn multi_line_values_and_lists_are_not_quoted() {
        let yaml = "description: first: part\n  continued\nallowed-tools: [a: b]\n";
        let (out, quotes) = quote_values(yaml, needs_quotes);
        assert!(quotes.is_empty(), "{out}");
    }
}
