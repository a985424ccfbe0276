//! Publishing to an OCI registry: the artifact of a skill the pipeline
//! prepared (`push`) or of an entry `precompile` wrote (`precompile
//! --push`), pushed and, with a key, signed; many at once with a bounded
//! number of uploads in flight.

use std::collections::BTreeMap;
use std::path::Path;

use super::manifest::{Artifact, DESCRIPTION, Descriptor, MANIFEST, TITLE, VERSION};
use super::{OciClient, OciError, Pushed, Reference};
use crate::fsutil::{IoError, IoOp};
use crate::pipeline::{PathTaken, Prepared};
use crate::registry::index::IndexEntry;
use crate::registry::sign::SigningKey;
use crate::skill::manifest::Manifest;

/// A push, and its signature manifest's digest when signed.
#[derive(Debug, Clone)]
pub struct Published {
    pub pushed: Pushed,
    pub signature: Option<String>,
}

/// The annotations every pushed skill carries: its name (the title), its
/// version and its description.
pub fn annotations(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert(TITLE.into(), manifest.name.clone());
    annotations.insert(VERSION.into(), manifest.version_or_default().to_string());
    if !manifest.description.is_empty() {
        annotations.insert(DESCRIPTION.into(), manifest.description.clone());
    }
    annotations
}

/// The artifact of what the pipeline prepared: its installed files, its
/// component (never a stub: a push refuses one).
pub fn artifact_of(prepared: &Prepared) -> Result<Artifact, OciError> {
    if prepared.path_taken == PathTaken::Stub {
        return Err(not_publishable(
            prepared.name(),
            "it is a JSON stub, not a component",
        ));
    }
    let files = crate::skill::files::read_all(prepared.folder.installed_files())
        .map_err(|e| not_publishable(prepared.name(), &crate::error_chain(&e)))?;
    Ok(Artifact {
        files: files
            .into_iter()
            .map(|f| (f.rel, f.bytes, f.executable))
            .collect(),
        wasm: prepared.binary.clone(),
        imports: prepared
            .component
            .as_ref()
            .map(|c| c.imports.clone())
            .unwrap_or_default(),
        annotations: annotations(&prepared.folder.manifest),
    })
}

/// The artifact of an entry `precompile` wrote below `out`: its files and
/// binary as the index lists them (each re-checked against its sha256), the
/// component validated again.
pub fn artifact_of_entry(out: &Path, entry: &IndexEntry) -> Result<Artifact, OciError> {
    let fail = |why: String| not_publishable(&entry.name, &why);
    if !entry.is_installable() {
        return Err(fail("precompile did not publish it".into()));
    }
    if entry.path_taken == Some(PathTaken::Stub) {
        return Err(fail("it is a JSON stub, not a component".into()));
    }
    let dir_rel = entry.dir_or_default();
    crate::registry::index::check_rel_path(&entry.name, &dir_rel)
        .map_err(|e| fail(e.to_string()))?;
    let dir = out.join(&dir_rel);
    let read = |rel: &str, size: u64, sha256: &str| -> Result<Vec<u8>, OciError> {
        crate::registry::index::check_rel_path(&entry.name, rel)
            .map_err(|e| fail(e.to_string()))?;
        let path = out.join(rel);
        let bytes = crate::fsutil::read_capped(&path, size).map_err(|e| {
            OciError::Io(IoError::new(
                IoOp::Read,
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            ))
        })?;
        if crate::digest::sha256_hex(&bytes) != sha256 {
            return Err(fail(format!(
                "{} changed since precompile wrote it",
                path.display()
            )));
        }
        Ok(bytes)
    };
    let mut files = Vec::with_capacity(entry.files.len());
    for f in &entry.files {
        let bytes = read(&format!("{dir_rel}/{}", f.path), f.size, &f.sha256)?;
        files.push((f.path.clone(), bytes, f.executable));
    }
    let (wasm, imports) = match (&entry.path, entry.size, &entry.sha256) {
        (Some(path), Some(size), Some(sha)) => {
            let bytes = read(path, size, sha)?;
            let valid = crate::skill::validate::validate_component(&bytes)
                .map_err(|e| fail(crate::error_chain(&e)))?;
            (Some(bytes), valid.imports)
        }
        _ => (None, Vec::new()),
    };
    let manifest = Manifest::load(&dir).map_err(|e| fail(crate::error_chain(&e)))?;
    if manifest.name != entry.name {
        return Err(fail(format!("its SKILL.md names `{}`", manifest.name)));
    }
    Ok(Artifact {
        files,
        wasm,
        imports,
        annotations: annotations(&manifest),
    })
}

fn not_publishable(name: &str, why: &str) -> OciError {
    OciError::BadManifest {
        what: format!("`{name}`"),
        why: format!("cannot be pushed: {why}"),
    }
}

/// Pushes `artifact` to `reference` and, with `key`, a signature of its
/// manifest digest (a referrer, and the `sha256-<hex>.sig` tag).
pub fn push_signed(
    client: &OciClient,
    reference: &Reference,
    artifact: &Artifact,
    key: Option<&SigningKey>,
) -> Result<Published, OciError> {
    let budget = client.budget();
    let built = artifact.build();
    let pushed = client.push(reference, &built, &budget)?;
    let signature = match key {
        Some(key) => {
            let comment = format!("oci://{reference}").replace(['\t', '\n', '\r'], " ");
            let text = key.sign(pushed.digest.as_bytes(), &comment)?;
            let subject = Descriptor {
                media_type: MANIFEST.into(),
                digest: built.digest.clone(),
                size: built.manifest_bytes.len() as u64,
                artifact_type: built.manifest.artifact_type.clone(),
                annotations: BTreeMap::new(),
            };
            Some(client.push_signature(reference, &subject, &text, &budget)?)
        }
        None => None,
    };
    Ok(Published { pushed, signature })
}

/// Pushes every `(reference, artifact)` with at most `jobs` in flight; the
/// results in the same order.
pub fn push_all(
    client: &OciClient,
    items: &[(Reference, Artifact)],
    jobs: usize,
    key: Option<&SigningKey>,
) -> Vec<Result<Published, OciError>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<Published, OciError>>>> =
        std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((reference, artifact)) = items.get(i) else {
                        break;
                    };
                    let result = push_signed(client, reference, artifact, key);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was pushed"))
        .collect()
}
