//! The artifact a skill is pushed as, and the checks it is read back with.
//!
//! ```text
//! manifest (application/vnd.oci.image.manifest.v1+json)
//!   config   application/vnd.wasm.config.v0+json   (Tool skill: the Wasm OCI layout's config)
//!            application/vnd.oci.empty.v1+json      (prompt skill: `{}`, artifactType below)
//!   layers   application/wasm                       (Tool skill: the component; first)
//!            application/vnd.boternity.skill.file.v1  one per file of the skill folder,
//!                                                   its path in org.opencontainers.image.title
//!   annotations org.opencontainers.image.{title,version,description,source,revision}
//! ```
//!
//! Wasm OCI tools (`wkg oci pull`, `wash`, `oras`) find the component as
//! the one `application/wasm` layer under the Wasm config. Each file of the
//! folder is its own layer, so its sha256 is its digest (recorded in the
//! signed manifest), an unchanged file is a blob the registry already has,
//! and there is no archive format to unpack: a layer is one file's bytes,
//! written at one checked relative path, and symlinks cannot be expressed.
//!
//! Small serde structs of our own, not `oci-spec`: the few fields used are
//! here, unknown fields are ignored, and nothing else is compiled (see the
//! book's OCI page for the measurement).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::OciError;
use super::reference::check_digest;
use crate::skill::files::{MAX_FILES, MAX_TOTAL_BYTES};
use crate::skill::validate::MAX_WASM_BYTES;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER: &str = "application/wasm";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// One file of the skill folder.
pub const SKILL_FILE: &str = "application/vnd.boternity.skill.file.v1";
/// The artifact type of a prompt skill (a Tool skill's is its Wasm config).
pub const SKILL_ARTIFACT: &str = "application/vnd.boternity.skill.v1";
/// The artifact type of a signature referring to a skill's manifest.
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.boternity.skill.signature.v1";
/// The one layer of a signature: minisign's `.minisig` text.
pub const SIGNATURE_LAYER: &str = "application/vnd.boternity.minisign.v1";

pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const SOURCE: &str = "org.opencontainers.image.source";
pub const REVISION: &str = "org.opencontainers.image.revision";
/// A file layer's execute bit.
pub const EXECUTABLE: &str = "dev.boternity.skill.file.executable";

/// Largest manifest read (the distribution spec's own suggestion).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest config read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The empty config's bytes.
pub const EMPTY_JSON: &[u8] = b"{}";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The hex part of its (checked) digest.
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::digest::sha256_hex(bytes))
}

/// An image manifest (OCI 1.1: `artifactType` and `subject` included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serializes")
    }
}

/// An image index (the referrers API's answer).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The Wasm OCI artifact's config (CNCF TAG Runtime's layout, as `wkg`
/// and `oci-wasm` write it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// Fixed (the Unix epoch): the same skill pushes to the same digest.
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    pub component: ComponentInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub target: Option<String>,
}

/// A skill to push: its files and component, and what the manifest says of it.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Each file of the folder: relative path, bytes, execute bit.
    pub files: Vec<(String, Vec<u8>, bool)>,
    /// The component (`None`: a prompt skill).
    pub wasm: Option<Vec<u8>>,
    /// The component's imports, for the Wasm config.
    pub imports: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The blobs and manifest of an artifact, ready to upload.
#[derive(Debug, Clone)]
pub struct Built {
    /// Every blob: descriptor and bytes (config first).
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub digest: String,
}

impl Artifact {
    /// The manifest and blobs of this skill (see the module doc).
    pub fn build(&self) -> Built {
        let mut layers = Vec::new();
        let mut blobs = Vec::new();
        if let Some(wasm) = &self.wasm {
            layers.push((Descriptor::of(WASM_LAYER, wasm), wasm.clone()));
        }
        let mut files = self.files.clone();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, bytes, executable) in files {
            let mut d = Descriptor::of(SKILL_FILE, &bytes);
            d.annotations.insert(TITLE.into(), rel);
            if executable {
                d.annotations.insert(EXECUTABLE.into(), "true".into());
            }
            layers.push((d, bytes));
        }
        let config: (Descriptor, Vec<u8>) = match &self.wasm {
            Some(_) => {
                let config = WasmConfig {
                    created: "1970-01-01T00:00:00Z".into(),
                    architecture: "wasm".into(),
                    os: "wasip2".into(),
                    layer_digests: layers
                        .iter()
                        .filter(|(d, _)| d.media_type == WASM_LAYER)
                        .map(|(d, _)| d.digest.clone())
                        .collect(),
                    component: ComponentInfo {
                        exports: vec![format!(
                            "{}/{}",
                            crate::skill::world::WORLD_PACKAGE,
                            crate::skill::world::WORLD_NAME
                        )],
                        imports: self.imports.clone(),
                        target: None,
                    },
                };
                let bytes = serde_json::to_vec(&config).expect("a config serializes");
                (Descriptor::of(WASM_CONFIG, &bytes), bytes)
            }
            None => (Descriptor::of(EMPTY, EMPTY_JSON), EMPTY_JSON.to_vec()),
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST.into()),
            artifact_type: self.wasm.is_none().then(|| SKILL_ARTIFACT.to_string()),
            config: config.0.clone(),
            layers: layers.iter().map(|(d, _)| d.clone()).collect(),
            subject: None,
            annotations: self.annotations.clone(),
        };
        blobs.push(config);
        blobs.extend(layers);
        let manifest_bytes = manifest.to_json();
        Built {
            digest: digest_of(&manifest_bytes),
            blobs,
            manifest,
            manifest_bytes,
        }
    }
}

/// What a pulled manifest asks to be written: each file's path, descriptor
/// and execute bit, and the component's descriptor.
#[derive(Debug, Clone)]
pub struct Layout {
    pub files: Vec<(String, Descriptor, bool)>,
    pub wasm: Option<Descriptor>,
    /// `org.opencontainers.image.title`: the skill's name, as pushed.
    pub title: Option<String>,
    pub version: Option<String>,
}

/// Parses and checks a skill's manifest (`what` names it in errors): every
/// media type known, every digest well-formed, every size within its cap,
/// every file path relative and inside the folder, no path twice.
pub fn read_layout(bytes: &[u8], what: &str) -> Result<Layout, OciError> {
    let manifest = parse_manifest(bytes, what)?;
    let unknown = |kind: &str, media_type: &str| OciError::UnknownMediaType {
        what: what.into(),
        kind: kind.into(),
        media_type: media_type.into(),
    };
    if ![WASM_CONFIG, EMPTY].contains(&manifest.config.media_type.as_str()) {
        return Err(unknown("config", &manifest.config.media_type));
    }
    check_descriptor(&manifest.config, MAX_CONFIG_BYTES, what)?;
    let mut layout = Layout {
        files: Vec::new(),
        wasm: None,
        title: manifest.annotations.get(TITLE).cloned(),
        version: manifest.annotations.get(VERSION).cloned(),
    };
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            WASM_LAYER if layout.wasm.is_none() => {
                check_descriptor(layer, MAX_WASM_BYTES, what)?;
                layout.wasm = Some(layer.clone());
            }
            WASM_LAYER => {
                return Err(OciError::BadManifest {
                    what: what.into(),
                    why: "it has more than one application/wasm layer".into(),
                });
            }
            SKILL_FILE => {
                check_descriptor(layer, MAX_TOTAL_BYTES, what)?;
                total = total.saturating_add(layer.size);
                let rel = layer
                    .annotations
                    .get(TITLE)
                    .ok_or_else(|| OciError::BadManifest {
                        what: what.into(),
                        why: format!("the file layer {} has no {TITLE} (its path)", layer.digest),
                    })?;
                check_file_path(rel).map_err(|why| OciError::UnsafePath {
                    what: what.into(),
                    path: rel.clone(),
                    why,
                })?;
                // Two names one file system may fold together are one path.
                if !seen.insert(rel.to_lowercase()) {
                    return Err(OciError::UnsafePath {
                        what: what.into(),
                        path: rel.clone(),
                        why: "it is listed twice (or twice with different case)".into(),
                    });
                }
                let executable = layer
                    .annotations
                    .get(EXECUTABLE)
                    .is_some_and(|v| v == "true");
                layout.files.push((rel.clone(), layer.clone(), executable));
            }
            other => return Err(unknown("layer", other)),
        }
    }
    if layout.files.len() > MAX_FILES {
        return Err(OciError::BadManifest {
            what: what.into(),
            why: format!(
                "it lists {} files, over the cap of {MAX_FILES}",
                layout.files.len()
            ),
        });
    }
    if total > MAX_TOTAL_BYTES {
        return Err(OciError::OverCap {
            what: format!("the files of {what}"),
            size: total,
            max: MAX_TOTAL_BYTES,
        });
    }
    Ok(layout)
}

/// Parses an image manifest, refusing an index or any other document.
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<Manifest, OciError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        media_type: Option<String>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| OciError::BadManifest {
        what: what.into(),
        why: format!("it is not JSON: {e}"),
    })?;
    match head.media_type.as_deref() {
        None | Some(MANIFEST) => {}
        Some(INDEX) | Some(DOCKER_LIST) => {
            return Err(OciError::BadManifest {
                what: what.into(),
                why: "it is an image index (several platforms), not a skill".into(),
            });
        }
        Some(other) => {
            return Err(OciError::UnknownMediaType {
                what: what.into(),
                kind: "manifest".into(),
                media_type: other.into(),
            });
        }
    }
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| OciError::BadManifest {
        what: what.into(),
        why: format!("it is not an OCI image manifest: {e}"),
    })?;
    if manifest.schema_version != 2 {
        return Err(OciError::BadManifest {
            what: what.into(),
            why: format!("its schemaVersion is {}, not 2", manifest.schema_version),
        });
    }
    Ok(manifest)
}

fn check_descriptor(d: &Descriptor, max: u64, what: &str) -> Result<(), OciError> {
    check_digest(&d.digest).map_err(|why| OciError::BadManifest {
        what: what.into(),
        why,
    })?;
    if d.size > max {
        return Err(OciError::OverCap {
            what: format!("{} {} of {what}", d.media_type, d.digest),
            size: d.size,
            max,
        });
    }
    Ok(())
}

/// A file layer's path: relative, `/`-separated, inside the folder, not a
/// file the store writes itself.
pub fn check_file_path(rel: &str) -> Result<(), String> {
    if rel.is_empty() || rel.len() > 1024 {
        return Err("it is empty or too long".into());
    }
    if rel.starts_with('/') {
        return Err("it is absolute".into());
    }
    if rel.contains('\\') || rel.chars().any(|c| c.is_control() || c == ':') {
        return Err("it holds a backslash, a colon or a control character".into());
    }
    if rel
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("it leaves the skill folder (an empty, `.` or `..` part)".into());
    }
    if crate::skill::source::is_store_owned(rel) {
        return Err("the store writes that file itself".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_layer(rel: &str) -> Descriptor {
        let mut d = Descriptor::of(SKILL_FILE, rel.as_bytes());
        d.annotations.insert(TITLE.into(), rel.into());
        d
    }

    fn manifest_with(layers: Vec<Descriptor>) -> Vec<u8> {
        Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST.into()),
            artifact_type: Some(SKILL_ARTIFACT.into()),
            config: Descriptor::of(EMPTY, EMPTY_JSON),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
        .to_json()
    }

    #[test]
    fn a_pushed_artifact_reads_back_and_hostile_layouts_are_refused() {
        let artifact = Artifact {
            files: vec![
                ("SKILL.md".into(), b"---\nname: a\n---\n".to_vec(), false),
                ("scripts/run.sh".into(), b"#!/bin/sh\n".to_vec(), true),
            ],
            wasm: Some(b"\0asm".to_vec()),
            imports: Vec::new(),
            annotations: BTreeMap::from([(TITLE.to_string(), "a".to_string())]),
        };
        let built = artifact.build();
        assert_eq!(built.digest, digest_of(&built.manifest_bytes));
        assert_eq!(built.manifest.config.media_type, WASM_CONFIG);
        let layout = read_layout(&built.manifest_bytes, "m").unwrap();
        assert_eq!(layout.title.as_deref(), Some("a"));
        assert!(layout.wasm.is_some());
        assert_eq!(layout.files.len(), 2);
        assert!(layout.files[1].2, "the execute bit is kept");
        // The same skill pushes to the same digest.
        assert_eq!(artifact.build().digest, built.digest);

        for (rel, why) in [
            ("../x", "leaves"),
            ("/etc/passwd", "absolute"),
            ("a/../../x", "leaves"),
            ("a//b", "leaves"),
            ("skill.wasm", "store writes"),
            ("C:\\x", "backslash"),
        ] {
            let err = read_layout(&manifest_with(vec![file_layer(rel)]), "m").unwrap_err();
            assert!(err.to_string().contains(why), "{rel}: {err}");
        }
        let twice = manifest_with(vec![file_layer("A.md"), file_layer("a.md")]);
        assert!(
            read_layout(&twice, "m")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let mut odd = file_layer("x");
        odd.media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        let err = read_layout(&manifest_with(vec![odd]), "m").unwrap_err();
        assert!(matches!(err, OciError::UnknownMediaType { .. }), "{err}");
        let mut huge = file_layer("x");
        huge.size = MAX_TOTAL_BYTES + 1;
        let err = read_layout(&manifest_with(vec![huge]), "m").unwrap_err();
        assert!(matches!(err, OciError::OverCap { .. }), "{err}");
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(
            read_layout(index, "m")
                .unwrap_err()
                .to_string()
                .contains("image index")
        );
    }
}
