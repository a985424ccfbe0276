//! The provenance record kept beside every installed or precompiled
//! `skill.wasm`: how it was made (path taken and why, source hash, toolchain,
//! world, tool version, time), what it is (sha256, size), where it came from,
//! and the policy it was installed under (trust tier, what `SKILL.md` asked
//! for and what was granted, the `.cwasm` record).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::executor::grants::Requested;
use crate::executor::{CwasmRecord, Grants};
use crate::pipeline::{PathTaken, Prepared, ShippedBinary, StubReason};
use crate::skill::files::FileContent;
use crate::skill::manifest::TrustTier;
use crate::skill::world::{self, SkillWorld};

/// The record's file name, beside `skill.wasm`.
pub use crate::skill::source::PROVENANCE_FILE;
/// Bumped when the record's meaning changes. Schema 2 records as fields
/// what schema 1 kept only as notes (a resolved `Cargo.lock`, why a stub);
/// schema 1 records still read (see [`Provenance::resolved_cargo_lock`]).
pub const SCHEMA: u32 = 2;

/// How schema 1 records said that an installed `Cargo.lock` was resolved at
/// install time: read, never written.
const LEGACY_RESOLVED_CARGO_LOCK_NOTE: &str = "no Cargo.lock shipped: built with the one resolved at install time, kept with the skill \
     and reused by sync and update";

pub use crate::digest::FileDigest;

/// Where an installed skill came from: what `list` shows and what `outdated`,
/// `update` and `sync` follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A folder on this machine.
    Folder { path: std::path::PathBuf },
    /// A registry (`install <name> --registry`): its URL or folder, and the
    /// entry installed.
    Registry {
        url: String,
        name: String,
        version: String,
    },
    /// An OCI registry (`install oci://REF`): the reference as asked
    /// (`host/repository:tag`, or `@sha256:…`) and the manifest digest it
    /// resolved to.
    Oci { reference: String, digest: String },
    /// A git repository: the URL (credentials stripped), the skill's path in
    /// it, the ref asked for (`None`: the default branch) and the commit.
    Git {
        url: String,
        path: String,
        requested: Option<String>,
        commit: String,
    },
}

impl Origin {
    /// Whether an install from `other` is an install of the same skill
    /// (a reinstall or an upgrade): the same folder, the same registry, or
    /// the same repository and path in it (at any ref or commit).
    pub fn same_source(&self, other: &Origin) -> bool {
        match (self, other) {
            (Origin::Folder { path: a }, Origin::Folder { path: b }) => a == b,
            (Origin::Registry { url: a, .. }, Origin::Registry { url: b, .. }) => a == b,
            // The same repository, at any tag or digest.
            (Origin::Oci { reference: a, .. }, Origin::Oci { reference: b, .. }) => {
                match (
                    crate::oci::Reference::parse(a),
                    crate::oci::Reference::parse(b),
                ) {
                    (Ok(a), Ok(b)) => a.repository_name() == b.repository_name(),
                    _ => a == b,
                }
            }
            (
                Origin::Git {
                    url: a, path: p, ..
                },
                Origin::Git {
                    url: b, path: q, ..
                },
            ) => a == b && p == q,
            _ => false,
        }
    }

    /// The origin in a few words, for messages and `list`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Folder { path } => format!("the folder {}", path.display()),
            Origin::Registry { url, name, version } => {
                format!("the registry {url} ({name} {version})")
            }
            Origin::Oci { reference, digest } => format!("oci://{reference} ({digest})"),
            Origin::Git { url, path, .. } if path.is_empty() => url.clone(),
            Origin::Git { url, path, .. } => format!("{url} ({path})"),
        }
    }
}

/// The world a component was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldRef {
    pub package: String,
    pub world: String,
    /// The package's version (`None`: boternity's world is unversioned).
    pub version: Option<String>,
    /// sha256 of the WIT text: the exact contract.
    pub wit_sha256: String,
}

impl WorldRef {
    pub fn current() -> WorldRef {
        WorldRef {
            package: world::WORLD_PACKAGE.into(),
            world: world::WORLD_NAME.into(),
            version: None,
            wit_sha256: SkillWorld::wit_sha256(),
        }
    }
}

/// Everything known about how an installed binary came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub schema: u32,
    pub skill: String,
    pub version: Option<String>,
    pub path_taken: PathTaken,
    /// Why that path, in a sentence (for a stub: why nothing could be built).
    pub reason: String,
    /// `skill.wasm`; `None` for prompt skills.
    pub wasm: Option<FileDigest>,
    /// sha256 of the source tree (`digest::tree_sha256`).
    pub source_sha256: String,
    /// `crate` or `bare lib.rs` when built from source.
    pub source_shape: Option<String>,
    pub shipped: Option<ShippedBinary>,
    pub rustc_version: Option<String>,
    pub cargo_version: Option<String>,
    pub world: WorldRef,
    pub tool_version: String,
    /// When it was made (RFC 3339, UTC). The only time-dependent datum: never
    /// inside the component, so rebuilds stay byte-identical.
    pub created_at: String,
    /// The tier the installer decided.
    pub trust_tier: TrustTier,
    /// The tier `SKILL.md` claimed (never believed).
    pub declared_trust_tier: Option<TrustTier>,
    /// What the installer granted. The skill may do that and, of what it
    /// `requested`, what the trust tier's policy allows
    /// (`Grants::for_install`). In records without `requested` (written
    /// before requests were kept apart), the manifest's capabilities and
    /// secrets merged with the installer's grants: see
    /// `InstalledSkill::installer_grants`.
    pub grants: Grants,
    /// What `SKILL.md` asked for (`metadata.capabilities`, `metadata.secrets`):
    /// a request, granted only as far as `grants` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Requested>,
    /// The precompiled `.cwasm` beside `skill.wasm`, if any.
    pub cwasm: Option<CwasmRecord>,
    pub notes: Vec<String>,
    /// `precompile`'s content-addressed cache key (source, toolchain, world,
    /// tool): the same key means the same output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Every file installed from the skill's folder (`SKILL.md`, `scripts/`,
    /// `assets/` …) by relative path: what `verify` re-hashes. Empty in
    /// records written before files were installed.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, FileDigest>,
    /// What the lenient `SKILL.md` reader bent (code, position, fix).
    #[serde(default)]
    pub warnings: Vec<crate::skill::manifest::Warning>,
    /// Where the skill came from (`None` in records written before origins
    /// were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The skill shipped no `Cargo.lock`; the one its build resolved is
    /// installed with it, and `sync` and `update` build with it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cargo_lock_resolved: bool,
    /// Why a stub was written, for a stub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stub_reason: Option<StubReason>,
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("cannot read {}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid provenance record", path.display())]
    Malformed {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
}

impl Provenance {
    /// The record for what the pipeline prepared.
    pub fn new(
        prepared: &Prepared,
        files: &[FileContent],
        trust_tier: TrustTier,
        grants: Grants,
        cwasm: Option<CwasmRecord>,
    ) -> Provenance {
        let manifest = &prepared.folder.manifest;
        Provenance {
            schema: SCHEMA,
            skill: manifest.name.clone(),
            version: manifest.version.clone(),
            path_taken: prepared.path_taken,
            reason: prepared.reason.clone(),
            wasm: prepared.binary.as_deref().map(FileDigest::of),
            source_sha256: prepared.source_sha256.clone(),
            source_shape: (prepared.path_taken == PathTaken::Built)
                .then(|| prepared.folder.rust.as_ref().map(|r| r.shape().to_string()))
                .flatten(),
            shipped: prepared.shipped.clone(),
            rustc_version: prepared.toolchain.as_ref().map(|t| t.rustc_version.clone()),
            cargo_version: prepared.toolchain.as_ref().map(|t| t.cargo_version.clone()),
            world: WorldRef::current(),
            tool_version: crate::TOOL_VERSION.into(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            trust_tier,
            declared_trust_tier: manifest.declared_trust_tier,
            grants,
            requested: Some(Requested::of(manifest)),
            cwasm,
            notes: prepared.notes.clone(),
            cache_key: None,
            files: files
                .iter()
                .map(|f| (f.rel.clone(), FileDigest::of(&f.bytes)))
                .collect(),
            warnings: manifest.warnings.clone(),
            origin: None,
            cargo_lock_resolved: prepared.resolved_cargo_lock,
            stub_reason: prepared.stub_reason,
        }
    }

    /// Reads `dir/.boternity-provenance.json`; `Ok(None)` when there is none
    /// (skills installed by boternity's old installer).
    pub fn read(dir: &Path) -> Result<Option<Provenance>, ProvenanceError> {
        let path = dir.join(PROVENANCE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ProvenanceError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ProvenanceError::Malformed { path, source })
    }

    /// Whether the installed `Cargo.lock` was resolved at install time (the
    /// skill shipped none): the field, or in a schema 1 record the note.
    pub fn resolved_cargo_lock(&self) -> bool {
        self.cargo_lock_resolved
            || self
                .notes
                .iter()
                .any(|n| n == LEGACY_RESOLVED_CARGO_LOCK_NOTE)
    }

    /// The record as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("provenance serializes");
        bytes.push(b'\n');
        bytes
    }
}
