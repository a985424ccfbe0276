//! Text a person cannot see but a language model reads: zero-width and other
//! invisible characters, bidirectional controls (which reorder what is shown:
//! "Trojan Source"), and Unicode tag characters (which spell out whole ASCII
//! instructions invisibly). A skill's body steers a model, so these are a
//! known injection vector: `check` reports each with its line and column, and
//! an install says how many a skill holds.

/// One hidden character in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenChar {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub ch: char,
    /// What it is, e.g. `U+202E RIGHT-TO-LEFT OVERRIDE (bidirectional control)`.
    pub what: String,
}

/// The kind of hidden character `c` is, with its name, if it is one.
fn classify(c: char) -> Option<(&'static str, &'static str)> {
    let kind_bidi = "bidirectional control";
    let kind_invisible = "invisible";
    Some(match c {
        '\u{202A}' => ("LEFT-TO-RIGHT EMBEDDING", kind_bidi),
        '\u{202B}' => ("RIGHT-TO-LEFT EMBEDDING", kind_bidi),
        '\u{202C}' => ("POP DIRECTIONAL FORMATTING", kind_bidi),
        '\u{202D}' => ("LEFT-TO-RIGHT OVERRIDE", kind_bidi),
        '\u{202E}' => ("RIGHT-TO-LEFT OVERRIDE", kind_bidi),
        '\u{2066}' => ("LEFT-TO-RIGHT ISOLATE", kind_bidi),
        '\u{2067}' => ("RIGHT-TO-LEFT ISOLATE", kind_bidi),
        '\u{2068}' => ("FIRST STRONG ISOLATE", kind_bidi),
        '\u{2069}' => ("POP DIRECTIONAL ISOLATE", kind_bidi),
        '\u{200E}' => ("LEFT-TO-RIGHT MARK", kind_bidi),
        '\u{200F}' => ("RIGHT-TO-LEFT MARK", kind_bidi),
        '\u{061C}' => ("ARABIC LETTER MARK", kind_bidi),
        '\u{200B}' => ("ZERO WIDTH SPACE", kind_invisible),
        '\u{200C}' => ("ZERO WIDTH NON-JOINER", kind_invisible),
        '\u{200D}' => ("ZERO WIDTH JOINER", kind_invisible),
        '\u{2060}' => ("WORD JOINER", kind_invisible),
        '\u{2061}'..='\u{2064}' => ("INVISIBLE OPERATOR", kind_invisible),
        '\u{FEFF}' => ("ZERO WIDTH NO-BREAK SPACE", kind_invisible),
        '\u{180E}' => ("MONGOLIAN VOWEL SEPARATOR", kind_invisible),
        '\u{00AD}' => ("SOFT HYPHEN", kind_invisible),
        '\u{034F}' => ("COMBINING GRAPHEME JOINER", kind_invisible),
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' => ("HANGUL FILLER", kind_invisible),
        '\u{E0000}'..='\u{E007F}' => ("TAG CHARACTER", "invisible tag: spells hidden ASCII"),
        '\u{E0100}'..='\u{E01EF}' => ("VARIATION SELECTOR SUPPLEMENT", kind_invisible),
        _ => return None,
    })
}

/// Pictographs a zero-width joiner legitimately glues together (emoji
/// sequences such as a family or a profession).
fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x2600..=0x27BF | 0x1F000..=0x1FAFF) || c == '\u{FE0F}'
}

/// Every hidden character in `text`, in order. A byte-order mark at the very
/// start (handled by the reader) and a zero-width joiner inside an emoji
/// sequence are not hidden text.
pub fn find(text: &str) -> Vec<HiddenChar> {
    let mut found = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for (col, &c) in chars.iter().enumerate() {
            let Some((name, kind)) = classify(c) else {
                continue;
            };
            if c == '\u{FEFF}' && index == 0 && col == 0 {
                continue;
            }
            if c == '\u{200D}'
                && col > 0
                && chars.get(col + 1).is_some_and(|n| is_pictograph(*n))
                && is_pictograph(chars[col - 1])
            {
                continue;
            }
            found.push(HiddenChar {
                line: index + 1,
                column: col + 1,
                ch: c,
                what: format!("U+{:04X} {name} ({kind})", c as u32),
            });
        }
    }
    found
}

/// Files of a skill worth scanning: text a model may be shown (Markdown,
/// plain text, scripts, data), by extension, or no extension at all.
pub fn is_text_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => matches!(
            ext.to_ascii_lowercase().as_str(),
            "md" | "markdown"
                | "txt"
                | "rst"
                | "adoc"
                | "html"
                | "htm"
                | "xml"
                | "json"
                | "yaml"
                | "yml"
                | "toml"
                | "csv"
                | "tsv"
                | "sh"
                | "bash"
                | "zsh"
                | "py"
                | "js"
                | "mjs"
                | "ts"
                | "rb"
                | "pl"
                | "ps1"
                | "rs"
                | "wit"
                | "sql"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_found_with_their_positions() {
        let text =
            "---\nname: x\n---\nSay hi.\u{200B}\nabc\u{202E}dcba\u{202C}\n\u{E0049}\u{E0047}\n";
        let found = find(text);
        let at: Vec<(usize, usize, char)> =
            found.iter().map(|h| (h.line, h.column, h.ch)).collect();
        assert_eq!(
            at,
            [
                (4, 8, '\u{200B}'),
                (5, 4, '\u{202E}'),
                (5, 9, '\u{202C}'),
                (6, 1, '\u{E0049}'),
                (6, 2, '\u{E0047}'),
            ]
        );
        assert!(
            found[1].what.contains("U+202E RIGHT-TO-LEFT OVERRIDE"),
            "{}",
            found[1].what
        );
        assert!(found[3].what.contains("tag"), "{}", found[3].what);
    }

    #[test]
    fn a_leading_bom_and_emoji_sequences_are_not_hidden_text() {
        assert!(find("\u{FEFF}---\nname: x\n---\n👨\u{200D}👩\u{200D}👧 family\n").is_empty());
        assert_eq!(find("a\u{200D}b").len(), 1);
        assert!(find("plain ascii and ünïcödé, 日本語").is_empty());
    }
}
