//! `check`: the linter for skill authors and registry CI. Reads each
//! `SKILL.md` as the installer does, and reports every lenient fallback as a
//! warning and everything the installer refuses as an error, with positions;
//! hidden text ([`super::hidden`]) in `SKILL.md` and the skill's other text
//! files is a warning at its position; `fix` rewrites what can be repaired
//! without changing meaning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::skill::front_matter::{self, FrontMatterError};
use crate::skill::manifest::{self, MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, ManifestError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Accepted by the installer, but breaks the spec.
    Warning,
    /// Refused by the installer.
    Error,
}

/// One finding, at a position in a `SKILL.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    /// `error` for refusals, else the warning's code.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// `SKILL.md` files checked.
    pub checked: Vec<PathBuf>,
    pub findings: Vec<Finding>,
    /// Files `fix` rewrote.
    pub fixed: Vec<PathBuf>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Checks `paths` (`SKILL.md` files, skill folders, or registry roots holding
/// skill folders anywhere below); with `fix`, first rewrites what can be
/// repaired. Two skills that would be stored under one key are an error.
pub fn check(paths: &[PathBuf], fix: bool) -> Result<Report, IoError> {
    let mut report = Report::default();
    let mut keys: BTreeMap<String, PathBuf> = BTreeMap::new();
    for manifest_path in manifests(paths)? {
        let folder = manifest_path
            .parent()
            .map(manifest::folder_name)
            .unwrap_or_default();
        let mut text = match read(&manifest_path) {
            Ok(text) => text,
            // A linked SKILL.md is never read (it could be any file).
            Err(e) if std::fs::symlink_metadata(&manifest_path).is_ok_and(|m| m.is_symlink()) => {
                report
                    .findings
                    .push(refusal_text(&manifest_path, crate::error_chain(&e)));
                report.checked.push(manifest_path);
                continue;
            }
            Err(e) => return Err(e),
        };
        if fix && let Some(fixed) = front_matter::fix(&text) {
            crate::fsutil::write_atomically(&manifest_path, fixed.as_bytes())?;
            report.fixed.push(manifest_path.clone());
            text = fixed;
        }
        match Manifest::parse_in(&text, &folder) {
            Ok(m) => {
                for w in &m.warnings {
                    report.findings.push(Finding {
                        path: manifest_path.clone(),
                        line: w.line,
                        column: w.column,
                        severity: Severity::Warning,
                        code: w.code.clone(),
                        message: w.message.clone(),
                        fix: Some(w.fix.clone()),
                    });
                }
                if let Some(first) = keys.get(&m.name) {
                    report.findings.push(Finding {
                        path: manifest_path.clone(),
                        line: 1,
                        column: 1,
                        severity: Severity::Error,
                        code: "key-collision".into(),
                        message: format!(
                            "this skill and {} would both be stored as `{}`",
                            first.display(),
                            m.name
                        ),
                        fix: Some("give one of them another name".into()),
                    });
                } else {
                    keys.insert(m.name.clone(), manifest_path.clone());
                }
            }
            Err(e) => report.findings.push(refusal(&manifest_path, &text, &e)),
        }
        report.findings.extend(hidden_text(&manifest_path, &text));
        if let Some(folder) = manifest_path.parent() {
            report.findings.extend(hidden_in_files(folder));
        }
        report.checked.push(manifest_path);
    }
    report
        .findings
        .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    Ok(report)
}

/// Hidden characters in `text` (the file at `path`) as warnings.
fn hidden_text(path: &Path, text: &str) -> Vec<Finding> {
    super::hidden::find(text)
        .into_iter()
        .map(|h| Finding {
            path: path.to_path_buf(),
            line: h.line,
            column: h.column,
            severity: Severity::Warning,
            code: "hidden-text".into(),
            message: format!(
                "{}: invisible to a reader, read by the model; text steering a model can hide here",
                h.what
            ),
            fix: Some("remove it (a character that is meant can be written as an escape)".into()),
        })
        .collect()
}

/// Hidden text in the skill folder's text files other than `SKILL.md`
/// (each read without following links, capped; unreadable ones skipped: the
/// installer reports those).
fn hidden_in_files(folder: &Path) -> Vec<Finding> {
    let Ok(root) = folder.canonicalize() else {
        return Vec::new();
    };
    let Ok(files) = super::files::list(&root) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.rel != MANIFEST_FILE && f.size <= MAX_MANIFEST_BYTES)
        .filter(|f| super::hidden::is_text_file(&f.rel))
    {
        let Ok(contents) = super::files::read_all([file]) else {
            continue;
        };
        if let Some(text) = contents
            .first()
            .and_then(|c| std::str::from_utf8(&c.bytes).ok())
        {
            findings.extend(hidden_text(&folder.join(&file.rel), text));
        }
    }
    findings
}

/// How many hidden characters the text files of `files` hold, and in which
/// files: what an install warns about.
pub fn count_hidden(files: &[super::files::FileContent]) -> (usize, Vec<String>) {
    let mut total = 0;
    let mut where_ = Vec::new();
    for file in files {
        if !super::hidden::is_text_file(&file.rel) {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(&file.bytes) {
            let n = super::hidden::find(text).len();
            if n > 0 {
                total += n;
                where_.push(file.rel.clone());
            }
        }
    }
    (total, where_)
}

/// A refusal without a position in the text.
fn refusal_text(path: &Path, message: String) -> Finding {
    Finding {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        severity: Severity::Error,
        code: "error".into(),
        message,
        fix: None,
    }
}

fn read(path: &Path) -> Result<String, IoError> {
    let bytes = crate::fsutil::read_capped_no_follow(
        path,
        MAX_MANIFEST_BYTES,
        crate::fsutil::NoFollow::LastComponent,
    )
    .map_err(|e| match e {
        crate::fsutil::CappedReadError::Io(e) => e,
        other => IoError::new(
            IoOp::Read,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        ),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        IoError::new(
            IoOp::Read,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// An error the installer would refuse with, as a finding at its position:
/// the parser's for YAML, the field's line for a bad field.
fn refusal(path: &Path, text: &str, e: &ManifestError) -> Finding {
    let field = match e {
        ManifestError::WrongType { field, .. } | ManifestError::InvalidValue { field, .. } => {
            Some(*field)
        }
        _ => None,
    };
    let (line, column) = match (e, field) {
        (ManifestError::FrontMatter(FrontMatterError::Yaml { line, column, .. }), _) => {
            (*line, *column)
        }
        (_, Some(field)) => field_position(text, field),
        _ => (1, 1),
    };
    Finding {
        path: path.to_path_buf(),
        line,
        column,
        severity: Severity::Error,
        code: "error".into(),
        message: crate::error_chain(e),
        fix: None,
    }
}

/// Where a field (`metadata.skill-type`: its last part) is written in the
/// front matter, 1-based; the file's start when it cannot be found.
fn field_position(text: &str, field: &str) -> (usize, usize) {
    let key = field.rsplit('.').next().unwrap_or(field);
    text.lines()
        .enumerate()
        .skip(1)
        .take_while(|(_, l)| l.trim_end() != "---")
        .find_map(|(i, line)| {
            let rest = line.trim_start();
            let at = line.len() - rest.len();
            // `key:` at a line's start, or inside a flow mapping (`{key: …}`).
            let col = if rest.starts_with(&format!("{key}:")) {
                Some(at)
            } else {
                line.find(&format!("{{{key}:"))
                    .map(|i| i + 1)
                    .or_else(|| line.find(&format!(" {key}:")).map(|i| i + 1))
            };
            col.map(|c| (i + 1, c + 1))
        })
        .unwrap_or((1, 1))
}

/// The `SKILL.md` files `paths` name, in order, each once.
fn manifests(paths: &[PathBuf]) -> Result<Vec<PathBuf>, IoError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).on(IoOp::Inspect, path)?;
        if meta.is_file() {
            found.push(path.clone());
        } else if path.join(MANIFEST_FILE).is_file() {
            found.push(path.join(MANIFEST_FILE));
        } else {
            // The skills `precompile` and `install --git` would find there.
            let dirs = crate::skill::discover::skill_folders(path)?;
            found.extend(dirs.into_iter().map(|d| d.join(MANIFEST_FILE)));
        }
    }
    found.dedup();
    Ok(found)
}
