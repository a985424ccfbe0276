//! Skills in OCI registries (GitHub Container Registry, Docker Hub, Harbor,
//! a company's own `registry:2`): `push` publishes a skill as an OCI
//! artifact in the Wasm OCI layout ([`manifest`]), `install oci://REF`
//! takes one by tag or digest, and a minisign signature of the manifest
//! digest is kept as an OCI referrer of it (and under the tag
//! `sha256-<hex>.sig` for registries without the referrers API).
//!
//! The distribution protocol is spoken by [`client`] over the registry
//! client's transport ([`crate::registry::client::http`]: ureq and rustls,
//! size caps before reading, deadlines, retries): HEAD/GET of manifests and
//! blobs, monolithic blob upload (POST then PUT), PUT of a manifest, tag
//! listing and the referrers API, and the registry's `WWW-Authenticate`
//! challenge (Bearer token or Basic) with credentials found as users keep
//! them ([`auth`]). Every blob is checked against its digest, every
//! manifest against the digest asked for; blobs are kept in the download
//! cache under their sha256, so a reinstall of an unchanged artifact
//! downloads nothing and `--offline` works from the cache.

pub mod auth;
pub mod client;
pub mod manifest;
pub mod publish;
pub mod reference;

use std::path::PathBuf;

pub use auth::{Basic, OciSettings};
pub use client::{OciClient, Pulled, Pushed};
pub use reference::{Reference, ReferenceError};

use crate::fsutil::IoError;
use crate::registry::client::http::HttpError;
use crate::registry::sign::SignError;

/// Why talking to an OCI registry failed (an install leaves the store
/// unchanged).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(
        "{registry} refused the request (HTTP 401) {}",
        match with {
            Some(from) => format!("with the credentials from {from}: wrong user name or password/token?"),
            None => "and no credentials were found for it".into(),
        }
    )]
    Unauthorized {
        registry: String,
        with: Option<String>,
    },
    #[error(
        "{registry} denied access to {repository} (HTTP 403){}: the account may lack the permission (pull, or push to publish)",
        with.as_deref().map(|f| format!(" with the credentials from {f}")).unwrap_or_default()
    )]
    Forbidden {
        registry: String,
        repository: String,
        with: Option<String>,
    },
    #[error(
        "{repository} has no tag `{tag}`; {}",
        if tags.is_empty() { "it has no tags at all".to_string() } else { format!("its tags: {}", tags.join(", ")) }
    )]
    UnknownTag {
        repository: String,
        tag: String,
        tags: Vec<String>,
    },
    #[error("{reference} does not exist in the registry (HTTP 404)")]
    NotFound { reference: String },
    #[error(
        "{what} does not match its digest: expected {expected}, got {actual}; the registry (or \
         something on the way) changed it: nothing was installed"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is {size} bytes, over the {max}-byte cap; refused before downloading it")]
    OverCap { what: String, size: u64, max: u64 },
    #[error(
        "{what}: its {kind} has the media type `{media_type}`, which is not a boternity skill's \
         (pushed by another tool? see `boternity push`)"
    )]
    UnknownMediaType {
        what: String,
        kind: String,
        media_type: String,
    },
    #[error("{what} is not a skill's manifest: {why}")]
    BadManifest { what: String, why: String },
    #[error(
        "{what} puts a file at `{path}`: {why}; the registry is corrupt or hostile: nothing was installed"
    )]
    UnsafePath {
        what: String,
        path: String,
        why: String,
    },
    #[error(
        "{reference} ({digest}) is not signed (no signature referrer and no tag {tag}) but a \
         registry key is pinned; the publisher must sign it"
    )]
    Unsigned {
        reference: String,
        digest: String,
        tag: String,
    },
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("cannot get credentials for {registry}: {why}")]
    Credentials { registry: String, why: String },
    #[error("cannot use the CA certificates in {}: {why}", path.display())]
    Certificates { path: PathBuf, why: String },
    #[error("offline: {what} is not in the download cache ({}); fetch it once with the network", cache.display())]
    NotCached { what: String, cache: PathBuf },
    #[error("{url} answered HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Registry {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "{reference} is the skill `{found}`, but its manifest's title says `{title}`; the \
         registry is corrupt or hostile: nothing was installed"
    )]
    NameMismatch {
        reference: String,
        title: String,
        found: String,
    },
    #[error(
        "the token service {realm} is plain http:// to another machine: credentials and tokens \
         would cross the network in the clear"
    )]
    InsecureRealm { realm: String },
    #[error("cannot ask {reference} what its tag points at: {why}")]
    Tag { reference: String, why: String },
    #[error(transparent)]
    Io(#[from] IoError),
}
