//! `SKILL.md`: YAML front matter between `---` lines, then a Markdown body.
//!
//! This module owns parsing and every rule about the manifest (name format,
//! skill type, capabilities, trust tier), with errors that name the field, the
//! bad value and the valid ones.
//!
//! It reads what mainstream agents load: what the spec forbids but an agent
//! would still understand (a name that is not a valid key, no description, a
//! long description, a top-level `version` …) is accepted with a
//! [`Warning`]; fields that decide what a skill may do (`skill-type`,
//! `capabilities`, `secrets`, `trust-tier`) are never guessed. The YAML-level
//! fallbacks live in [`super::front_matter`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use super::front_matter::Warning;
use super::front_matter::{self, FrontMatterError};

/// The manifest file's name inside a skill folder.
pub const MANIFEST_FILE: &str = "SKILL.md";
/// Longest skill name allowed.
pub const MAX_NAME_LEN: usize = 64;
/// Longest description allowed.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Largest `SKILL.md` read (a manifest is text for a prompt, not a payload).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A parsed, checked `SKILL.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The skill's key: a valid name (`[a-z0-9-]`, ≤ 64), used for the store
    /// folder, the registry path and every lookup. The `name` field when it is
    /// valid, else a slug of it, else of the folder.
    pub name: String,
    /// The `name` field as the author wrote it (the folder's name when absent).
    pub written_name: String,
    pub description: String,
    pub license: Option<String>,
    pub compatibility: Option<String>,
    pub allowed_tools: Option<String>,
    pub author: Option<String>,
    pub version: Option<String>,
    pub skill_type: SkillType,
    pub capabilities: Vec<Capability>,
    /// The tier the manifest *claims*. The installer decides the real one.
    pub declared_trust_tier: Option<TrustTier>,
    pub secrets: Vec<String>,
    pub dependencies: Vec<String>,
    pub categories: Vec<String>,
    /// The Markdown after the front matter.
    pub body: String,
    /// What the lenient reader bent, with positions and fixes.
    pub warnings: Vec<Warning>,
}

/// `metadata.skill-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkillType {
    /// Injected into the system prompt; no binary.
    Prompt,
    /// Runs as a WebAssembly component.
    Tool,
}

impl fmt::Display for SkillType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkillType::Prompt => "prompt",
            SkillType::Tool => "tool",
        })
    }
}

/// A host capability a skill may be granted; each gates host functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    ReadFile,
    WriteFile,
    HttpGet,
    HttpPost,
    ExecCommand,
    ReadEnv,
    RecallMemory,
    GetSecret,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::ReadFile,
        Capability::WriteFile,
        Capability::HttpGet,
        Capability::HttpPost,
        Capability::ExecCommand,
        Capability::ReadEnv,
        Capability::RecallMemory,
        Capability::GetSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ReadFile => "read_file",
            Capability::WriteFile => "write_file",
            Capability::HttpGet => "http_get",
            Capability::HttpPost => "http_post",
            Capability::ExecCommand => "exec_command",
            Capability::ReadEnv => "read_env",
            Capability::RecallMemory => "recall_memory",
            Capability::GetSecret => "get_secret",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, ManifestError> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ManifestError::InvalidValue {
                field: "metadata.capabilities",
                value: s.to_string(),
                valid: Capability::ALL.map(Capability::as_str).join(", "),
            })
    }
}

/// How far a skill is trusted; decides its sandbox limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TrustTier {
    /// Not run in Wasm by boternity (a user's own skill).
    Local,
    Verified,
    #[default]
    Untrusted,
}

impl TrustTier {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::Local => "local",
            TrustTier::Verified => "verified",
            TrustTier::Untrusted => "untrusted",
        }
    }
}

impl fmt::Display for TrustTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrustTier {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, ManifestError> {
        [TrustTier::Local, TrustTier::Verified, TrustTier::Untrusted]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ManifestError::InvalidValue {
                field: "metadata.trust-tier",
                value: s.to_string(),
                valid: "local, verified, untrusted".into(),
            })
    }
}

/// What is wrong with a `SKILL.md`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "SKILL.md has no front matter and no text to describe the skill: start it with \
         `---`, `name: …`, `description: …`, `---`"
    )]
    NoFrontMatter,
    #[error(transparent)]
    FrontMatter(#[from] FrontMatterError),
    #[error("SKILL.md has no `{0}` field and nothing to take it from; add it")]
    Missing(&'static str),
    #[error("skills `{first}` and `{second}` would both be stored as `{key}`; rename one of them")]
    KeyCollision {
        key: String,
        first: String,
        second: String,
    },
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("`{field}` is `{value}`; valid values: {valid}")]
    InvalidValue {
        field: &'static str,
        value: String,
        valid: String,
    },
    #[error("invalid skill name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
}

/// Checks a skill name: lowercase letters, digits and hyphens, at most 64
/// characters, no leading, trailing or doubled hyphen. Such a name is also
/// safe as a single path component (no `..`, `/`).
pub fn check_name(name: &str) -> Result<(), ManifestError> {
    let bad = |reason| {
        Err(ManifestError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("use only lowercase letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("it may not start or end with a hyphen");
    }
    if name.contains("--") {
        return bad("it may not contain two hyphens in a row");
    }
    Ok(())
}

impl Manifest {
    /// Reads `<skill_dir>/SKILL.md` leniently, the folder's name standing in
    /// for a missing or unusable `name`.
    ///
    /// `SKILL.md` is opened without following a link (a link is refused with
    /// the rule, whatever it points at), must be a regular file (a FIFO or
    /// device is refused without blocking) and is read capped.
    pub fn load(skill_dir: &Path) -> Result<Manifest, ManifestError> {
        use crate::fsutil::{CappedReadError, NoFollow, read_capped_no_follow};
        let path = skill_dir.join(MANIFEST_FILE);
        let io = |source| ManifestError::Io {
            path: path.clone(),
            source,
        };
        let bytes = match read_capped_no_follow(&path, MAX_MANIFEST_BYTES, NoFollow::LastComponent)
        {
            Ok(bytes) => bytes,
            Err(CappedReadError::Io(e)) => return Err(io(e.source)),
            Err(CappedReadError::TooLarge(t)) => {
                return Err(ManifestError::TooLarge { path, size: t.size });
            }
            Err(CappedReadError::NotRegular(_)) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "SKILL.md is not a regular file (a FIFO, socket, device or folder); \
                     it must be a regular file inside the skill folder",
                )));
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        Manifest::parse_in(&text, &folder_name(skill_dir))
    }

    /// Parses the text of a `SKILL.md` that has no folder (a missing `name`
    /// is then an error).
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse_in(text, "")
    }

    /// Parses the text of the `SKILL.md` in the folder named `folder`.
    pub fn parse_in(text: &str, folder: &str) -> Result<Manifest, ManifestError> {
        let split = front_matter::split(text)?;
        let mut warnings = split.warnings;
        let body = split.body;
        let Some(yaml) = split.yaml else {
            return Manifest::without_front_matter(folder, body, warnings);
        };
        let at = |key: &str| key_position(&yaml, key, split.yaml_first_line);
        let raw: RawFrontMatter = if yaml.trim().is_empty() {
            RawFrontMatter::default()
        } else {
            serde_norway::from_str(&yaml).map_err(|e| front_matter::yaml_error(&e))?
        };

        let written = string_field(raw.name, "name")?;
        let (name, written_name) = skill_key(written, folder, at("name"), &mut warnings)?;

        let description = match string_field(raw.description, "description")? {
            Some(d) if !d.trim().is_empty() => d,
            _ => {
                let from_body =
                    first_paragraph(&body).ok_or(ManifestError::Missing("description"))?;
                warnings.push(Warning::new(
                    "missing-description",
                    at("description"),
                    "no `description`: the body's first paragraph stands in for it",
                    "add `description:` saying what the skill does and when to use it",
                ));
                from_body
            }
        };
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            warnings.push(Warning::new(
                "long-description",
                at("description"),
                format!(
                    "`description` is {} characters, over the spec's {MAX_DESCRIPTION_LEN} (kept whole)",
                    description.chars().count()
                ),
                "shorten it; move details into the body",
            ));
        }
        let meta = match raw.metadata {
            None | Some(serde_norway::Value::Null) => BTreeMap::new(),
            Some(serde_norway::Value::Mapping(m)) => m
                .into_iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
                .collect(),
            Some(_) => {
                return Err(ManifestError::WrongType {
                    field: "metadata",
                    expected: "a mapping",
                });
            }
        };
        let meta_str = |key: &'static str| string_field(meta.get(key).cloned(), key);
        let meta_list = |key: &'static str| list_field(meta.get(key), key);

        let skill_type = match meta_str("skill-type")? {
            None => SkillType::Prompt,
            Some(s) => match s.as_str() {
                "prompt" => SkillType::Prompt,
                "tool" => SkillType::Tool,
                _ => {
                    return Err(ManifestError::InvalidValue {
                        field: "metadata.skill-type",
                        value: s,
                        valid: "prompt, tool".into(),
                    });
                }
            },
        };
        let mut capabilities = Vec::new();
        for c in meta_list("capabilities")? {
            let cap: Capability = c.parse()?;
            if !capabilities.contains(&cap) {
                capabilities.push(cap);
            }
        }
        let declared_trust_tier = meta_str("trust-tier")?
            .map(|t| t.parse::<TrustTier>())
            .transpose()?;

        let version = match (meta_str("version")?, string_field(raw.version, "version")?) {
            (Some(v), _) => Some(v),
            (None, Some(v)) => {
                warnings.push(Warning::new(
                    "top-level-version",
                    at("version"),
                    "`version` at the top level (the spec keeps it in `metadata`); used",
                    "move it under `metadata:` as `version:`",
                ));
                Some(v)
            }
            (None, None) => None,
        };
        if let Some(v) = &version
            && !is_semver(v)
        {
            warnings.push(Warning::new(
                "version-not-semver",
                at("version"),
                format!("version `{v}` is not MAJOR.MINOR.PATCH; kept as written"),
                "write it as semver, e.g. 1.0.0",
            ));
        }
        let mut loose = |value: Option<serde_norway::Value>, field: &'static str| {
            loose_text(value, field, at(field), &mut warnings)
        };
        let license = loose(raw.license, "license");
        let compatibility = loose(raw.compatibility, "compatibility");
        let allowed_tools = loose(raw.allowed_tools, "allowed-tools");
        let author = loose(meta.get("author").cloned(), "author");
        let dependencies = loose_list(meta.get("dependencies"), "dependencies", &mut warnings);
        let categories = loose_list(meta.get("categories"), "categories", &mut warnings);

        Ok(Manifest {
            name,
            written_name,
            description,
            license,
            compatibility,
            allowed_tools,
            author,
            version,
            skill_type,
            capabilities,
            declared_trust_tier,
            secrets: meta_list("secrets")?,
            dependencies,
            categories,
            body,
            warnings,
        })
    }

    /// A `SKILL.md` without front matter: a prompt skill named after its
    /// folder and described by its first paragraph.
    fn without_front_matter(
        folder: &str,
        body: String,
        mut warnings: Vec<Warning>,
    ) -> Result<Manifest, ManifestError> {
        let description = first_paragraph(&body).ok_or(ManifestError::NoFrontMatter)?;
        let (name, written_name) = skill_key(None, folder, (1, 1), &mut warnings)?;
        warnings.push(Warning::new(
            "no-front-matter",
            (1, 1),
            "no front matter: read as a prompt skill named after its folder, described by its first paragraph",
            "start the file with `---`, `name: …`, `description: …`, `---`",
        ));
        Ok(Manifest {
            name,
            written_name,
            description,
            license: None,
            compatibility: None,
            allowed_tools: None,
            author: None,
            version: None,
            skill_type: SkillType::Prompt,
            capabilities: Vec::new(),
            declared_trust_tier: None,
            secrets: Vec::new(),
            dependencies: Vec::new(),
            categories: Vec::new(),
            body,
            warnings,
        })
    }

    /// The version as one safe path component (`<name>/<version>/` in a
    /// registry): kept as written where it can be, every other character `-`.
    pub fn version_path_segment(&self) -> String {
        let v: String = self
            .version_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if v.chars().all(|c| c == '.') {
            "0.0.0".into()
        } else {
            v
        }
    }

    /// The version to publish under (`metadata.version`, else `0.0.0`).
    pub fn version_or_default(&self) -> &str {
        self.version.as_deref().unwrap_or("0.0.0")
    }
}

/// The skill's key and the name as written: the `name` field when it is a
/// valid name, else a slug of it, else the folder's slug; each bend warned.
fn skill_key(
    written: Option<String>,
    folder: &str,
    at: (usize, usize),
    warnings: &mut Vec<Warning>,
) -> Result<(String, String), ManifestError> {
    let folder_key = slug(folder);
    let Some(written) = written.filter(|n| !n.trim().is_empty()) else {
        let key = folder_key.ok_or(ManifestError::Missing("name"))?;
        warnings.push(Warning::new(
            "missing-name",
            at,
            format!("no `name`: the folder's name `{key}` stands in for it"),
            format!("add `name: {key}`"),
        ));
        return Ok((key, folder.to_string()));
    };
    let key = if check_name(&written).is_ok() {
        written.clone()
    } else {
        let key = slug(&written)
            .or(folder_key)
            .ok_or_else(|| ManifestError::InvalidName {
                name: written.clone(),
                reason: "nothing usable as a key is left in it or in its folder's name",
            })?;
        warnings.push(Warning::new(
            "invalid-name",
            at,
            format!(
                "`{written}` is not a valid skill name (lowercase letters, digits and hyphens, at most {MAX_NAME_LEN}); stored as `{key}`"
            ),
            format!("use `name: {key}`"),
        ));
        return Ok((key, written));
    };
    if !folder.is_empty() && folder != key {
        warnings.push(Warning::new(
            "name-mismatch",
            at,
            format!("`name` is `{key}` but the folder is `{folder}`; stored as `{key}`"),
            format!("rename the folder to `{key}`, or the name to `{folder}`"),
        ));
    }
    Ok((key, written))
}

/// `text` as a valid skill name: lowercase, every other run of characters a
/// single `-`, no leading or trailing `-`, at most 64 characters. `None` when
/// nothing is left. The result can never hold a path separator or `..`.
pub fn slug(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_string();
    if out.len() > MAX_NAME_LEN {
        out.truncate(MAX_NAME_LEN);
        out = out.trim_end_matches('-').to_string();
    }
    (!out.is_empty() && check_name(&out).is_ok()).then_some(out)
}

/// The body's first paragraph, as one line (what stands in for a missing
/// description): the first run of non-blank lines that is not a heading.
fn first_paragraph(body: &str) -> Option<String> {
    let mut lines = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        if t.is_empty() {
            if !lines.is_empty() {
                break;
            }
            continue;
        }
        if t.starts_with('#') && lines.is_empty() {
            continue;
        }
        lines.push(t);
    }
    let text = lines.join(" ");
    (!text.is_empty()).then_some(text)
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre`/`+build`.
fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Where `key:` stands in the front matter (1-based line and column in the
/// file), or the front matter's first line when it is absent.
fn key_position(yaml: &str, key: &str, first_line: usize) -> (usize, usize) {
    yaml.lines()
        .enumerate()
        .find_map(|(i, line)| {
            let rest = line.trim_start();
            rest.strip_prefix(key)
                .filter(|r| r.starts_with(':'))
                .map(|_| (i + first_line, line.len() - rest.len() + 1))
        })
        .unwrap_or((first_line.max(1), 1))
}

/// A free-text field that does not decide what the skill may do: a list is
/// joined (`allowed-tools: [Read, Grep]`), anything else unreadable is ignored
/// with a warning rather than refused.
fn loose_text(
    value: Option<serde_norway::Value>,
    field: &'static str,
    at: (usize, usize),
    warnings: &mut Vec<Warning>,
) -> Option<String> {
    use serde_norway::Value;
    match value {
        Some(Value::Sequence(items)) if items.iter().all(|v| v.as_str().is_some()) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => string_field(other, field).unwrap_or_else(|_| {
            warnings.push(Warning::new(
                "ignored-field",
                at,
                format!("`{field}` is not text; ignored"),
                format!("write `{field}` as a string"),
            ));
            None
        }),
    }
}

/// A list of strings that does not decide what the skill may do; anything
/// else is ignored with a warning.
fn loose_list(
    value: Option<&serde_norway::Value>,
    field: &'static str,
    warnings: &mut Vec<Warning>,
) -> Vec<String> {
    list_field(value, field).unwrap_or_else(|_| {
        warnings.push(Warning::new(
            "ignored-field",
            (1, 1),
            format!("`metadata.{field}` is not a list of strings; ignored"),
            format!("write `{field}: [a, b]`"),
        ));
        Vec::new()
    })
}

/// The last component of a path, as text (what the skill's name must equal).
pub fn folder_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Unknown fields are tolerated (the open agent-skills convention adds some);
/// the known ones are read loosely here and checked with clear errors above.
#[derive(Debug, Default, Deserialize)]
struct RawFrontMatter {
    name: Option<serde_norway::Value>,
    description: Option<serde_norway::Value>,
    license: Option<serde_norway::Value>,
    compatibility: Option<serde_norway::Value>,
    #[serde(rename = "allowed-tools")]
    allowed_tools: Option<serde_norway::Value>,
    /// Not in the spec's top level, but common: read with a warning.
    version: Option<serde_norway::Value>,
    metadata: Option<serde_norway::Value>,
}

fn string_field(
    value: Option<serde_norway::Value>,
    field: &'static str,
) -> Result<Option<String>, ManifestError> {
    use serde_norway::Value;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // YAML reads `version: 1.0` as a number; it is still a version string.
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(ManifestError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn list_field(
    value: Option<&serde_norway::Value>,
    field: &'static str,
) -> Result<Vec<String>, ManifestError> {
    use serde_norway::Value;
    let wrong = ManifestError::WrongType {
        field,
        expected: "a list of strings",
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(wrong),
        Some(_) => Err(wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nname: word-count\ndescription: Counts words.\nunknown-field: ok\nmetadata:\n  skill-type: tool\n  version: 1.0\n  capabilities: [read_env, log_ignored_if_valid]\n---\n# Body\n";

    #[test]
    fn parses_a_tool_skill_and_rejects_unknown_capabilities() {
        let err = Manifest::parse(GOOD).unwrap_err();
        assert!(
            err.to_string().contains("log_ignored_if_valid")
                && err.to_string().contains("read_file"),
            "{err}"
        );
        let text = GOOD.replace(", log_ignored_if_valid", "");
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.name, "word-count");
        assert_eq!(m.skill_type, SkillType::Tool);
        assert_eq!(m.capabilities, vec![Capability::ReadEnv]);
        assert_eq!(m.version.as_deref(), Some("1.0"));
        assert_eq!(m.body, "# Body\n");
    }

    #[test]
    fn invalid_skill_types_name_the_valid_ones() {
        for bad in ["rust", "prompt (local)"] {
            let text = GOOD
                .replace("skill-type: tool", &format!("skill-type: {bad}"))
                .replace(", log_ignored_if_valid", "");
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("prompt, tool"), "{err}");
        }
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "",
            "Up",
            "a_b",
            "../x",
            "a/b",
            "-a",
            "a-",
            "a--b",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "web-search", "x2", &"a".repeat(64)] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn front_matter_errors_are_specific() {
        assert!(matches!(
            Manifest::parse("# no front matter"),
            Err(ManifestError::NoFrontMatter)
        ));
        assert!(matches!(
            Manifest::parse("---\nname: x\n"),
            Err(ManifestError::FrontMatter(FrontMatterError::Unclosed))
        ));
        let err =
            Manifest::parse("---\nname: x\nmetadata:\n\tskill-type: tool\n---\n").unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::FrontMatter(FrontMatterError::Yaml { line: 4, .. })
            ),
            "{err:?}"
        );
        assert!(matches!(
            Manifest::parse("---\ndescription: d\n---\n"),
            Err(ManifestError::Missing("name"))
        ));
        assert!(matches!(
            Manifest::parse("---\nname: x\ndescription: \" \"\n---\n"),
            Err(ManifestError::Missing("description"))
        ));
    }
}
