//! `verify`: re-hash every file of an installed skill against its provenance
//! record (the skill folder's files, `skill.wasm`, `skill.cwasm`) and name
//! each one changed, missing or added since the install.

use std::collections::BTreeMap;
use std::path::Path;

use crate::digest::sha256_hex;
use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::skill::source::{CWASM_FILE, META_FILE, PROVENANCE_FILE, WASM_FILE};
use crate::store::InstalledSkill;

/// What differs from the record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", content = "file", rename_all = "lowercase")]
pub enum Change {
    Changed(String),
    Missing(String),
    Added(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Changed(p) => write!(f, "changed: {p}"),
            Change::Missing(p) => write!(f, "missing: {p}"),
            Change::Added(p) => write!(f, "added:   {p}"),
        }
    }
}

/// Why a skill cannot be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "`{0}` has no provenance record (installed by boternity's old installer): nothing to verify \
         against; reinstall it"
    )]
    NoRecord(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Every difference between `skill`'s folder and its provenance record,
/// sorted by path; empty when it is as installed.
pub fn verify(skill: &InstalledSkill) -> Result<Vec<Change>, VerifyError> {
    let p = skill
        .provenance
        .as_ref()
        .ok_or_else(|| VerifyError::NoRecord(skill.name.clone()))?;
    let mut expected: BTreeMap<String, String> = p
        .files
        .iter()
        .map(|(rel, d)| (rel.clone(), d.sha256.clone()))
        .collect();
    if let Some(w) = &p.wasm {
        expected.insert(WASM_FILE.into(), w.sha256.clone());
    }
    if let Some(c) = &p.cwasm {
        expected.insert(CWASM_FILE.into(), c.sha256.clone());
    }
    let mut actual = BTreeMap::new();
    walk(&skill.dir, &skill.dir, &mut actual)?;
    let mut changes = Vec::new();
    for (rel, sha) in &expected {
        match actual.get(rel) {
            None => changes.push(Change::Missing(rel.clone())),
            Some(found) if found != sha => changes.push(Change::Changed(rel.clone())),
            Some(_) => {}
        }
    }
    for rel in actual.keys() {
        if !expected.contains_key(rel) && rel != PROVENANCE_FILE && rel != META_FILE {
            changes.push(Change::Added(rel.clone()));
        }
    }
    changes.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    Ok(changes)
}

fn path_of(c: &Change) -> &str {
    match c {
        Change::Changed(p) | Change::Missing(p) | Change::Added(p) => p,
    }
}

/// Every entry below `dir` that is not a folder, by relative path, with its
/// sha256 (a symlink's is that of its target text, so it never matches a
/// recorded file).
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), IoError> {
    for entry in std::fs::read_dir(dir).on(IoOp::List, dir)? {
        let entry = entry.on(IoOp::List, dir)?;
        let path = entry.path();
        let kind = entry.file_type().on(IoOp::Inspect, &path)?;
        let rel = crate::skill::files::rel_path(root, &path);
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).on(IoOp::Read, &path)?;
            out.insert(rel, sha256_hex(&bytes));
        } else {
            let target = std::fs::read_link(&path).unwrap_or_default();
            out.insert(rel, format!("symlink:{}", target.to_string_lossy()));
        }
    }
    Ok(())
}
