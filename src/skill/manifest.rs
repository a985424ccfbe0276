//! `SKILL.md`: YAML front matter between `---` lines, then a Markdown body.
//!
//! This module owns parsing and every rule about the manifest (name format,
//! skill type, capabilities, trust tier), with errors that name the field, the
//! bad value and the valid ones.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    pub name: String,
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
    #[error("SKILL.md must start with YAML front matter between `---` lines")]
    NoFrontMatter,
    #[error("SKILL.md front matter is not closed: add a `---` line after it")]
    UnclosedFrontMatter,
    #[error("SKILL.md front matter is not valid YAML: {0}")]
    Yaml(String),
    #[error("SKILL.md has no `{0}` field; it is required")]
    Missing(&'static str),
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
    #[error("`description` {0}")]
    InvalidDescription(&'static str),
    #[error("skill name `{name}` does not match its folder `{folder}`; rename one of them")]
    NameMismatch { name: String, folder: String },
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
    /// Reads `<skill_dir>/SKILL.md` and checks that its name matches the folder.
    pub fn load(skill_dir: &Path) -> Result<Manifest, ManifestError> {
        let path = skill_dir.join(MANIFEST_FILE);
        let io = |source| ManifestError::Io {
            path: path.clone(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(io)?.len();
        if size > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge { path, size });
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let manifest = Manifest::parse(&text)?;
        let folder = folder_name(skill_dir);
        if folder != manifest.name {
            return Err(ManifestError::NameMismatch {
                name: manifest.name,
                folder,
            });
        }
        Ok(manifest)
    }

    /// Parses the text of a `SKILL.md`.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let (yaml, body) = split_front_matter(text)?;
        let raw: RawFrontMatter = if yaml.trim().is_empty() {
            RawFrontMatter::default()
        } else {
            serde_norway::from_str(yaml).map_err(|e| ManifestError::Yaml(e.to_string()))?
        };
        let name = string_field(raw.name, "name")?.ok_or(ManifestError::Missing("name"))?;
        check_name(&name)?;
        let description = string_field(raw.description, "description")?
            .ok_or(ManifestError::Missing("description"))?;
        if description.trim().is_empty() {
            return Err(ManifestError::InvalidDescription("is empty"));
        }
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            return Err(ManifestError::InvalidDescription(
                "is longer than 1024 characters",
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

        Ok(Manifest {
            name,
            description,
            license: string_field(raw.license, "license")?,
            compatibility: string_field(raw.compatibility, "compatibility")?,
            allowed_tools: string_field(raw.allowed_tools, "allowed-tools")?,
            author: meta_str("author")?,
            version: meta_str("version")?,
            skill_type,
            capabilities,
            declared_trust_tier,
            secrets: meta_list("secrets")?,
            dependencies: meta_list("dependencies")?,
            categories: meta_list("categories")?,
            body: body.to_string(),
        })
    }

    /// The version to publish under (`metadata.version`, else `0.0.0`).
    pub fn version_or_default(&self) -> &str {
        self.version.as_deref().unwrap_or("0.0.0")
    }
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

/// Splits `---\n<yaml>\n---\n<body>`.
fn split_front_matter(text: &str) -> Result<(&str, &str), ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line_end = text.find('\n').unwrap_or(text.len());
    if text[..first_line_end].trim_end() != "---" {
        return Err(ManifestError::NoFrontMatter);
    }
    let rest = &text[(first_line_end + 1).min(text.len())..];
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Ok((yaml, body.strip_prefix('\n').unwrap_or(body)));
        }
        offset += line.len();
    }
    Err(ManifestError::UnclosedFrontMatter)
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
            Err(ManifestError::UnclosedFrontMatter)
        ));
        assert!(matches!(
            Manifest::parse("---\nname: [x\n---\n"),
            Err(ManifestError::Yaml(_))
        ));
        assert!(matches!(
            Manifest::parse("---\ndescription: d\n---\n"),
            Err(ManifestError::Missing("name"))
        ));
        assert!(matches!(
            Manifest::parse("---\nname: x\ndescription: \" \"\n---\n"),
            Err(ManifestError::InvalidDescription(_))
        ));
    }
}
