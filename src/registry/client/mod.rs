//! Installing from a registry — a URL (`http://`, `https://`) or a folder
//! (`precompile`'s output): its `index.json` is fetched (and, with a key
//! pinned, its `index.json.minisig` verified), the entry chosen, every file
//! downloaded and checked against the index's size and sha256, and the skill
//! then goes through the pipeline's validation and the store's atomic commit
//! like a local folder. Nothing touches the store before every check passed.
//!
//! The same client serves the decision's registry step
//! ([`crate::pipeline::ComponentSource`]): a component built from exactly
//! the source tree being installed.

pub mod cache;
pub mod http;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::executor::Executor;
use crate::fsutil::{CappedReadError, IoError, IoOp, IoResultExt};
use crate::pipeline::{self, ComponentSource, RegistryComponent};
use crate::registry::index::{self, INDEX_FILE, Index, IndexEntry, IndexError};
use crate::registry::sign::{self, SIGNATURE_SUFFIX, SignError, TrustedKey};
use crate::skill::manifest;
use crate::skill::validate::MAX_WASM_BYTES;
use crate::store::SkillStore;
use crate::store::install::{InstallError, InstallOptions, Installed, commit_prepared};
use crate::store::provenance::Origin;

use self::cache::{CachedDocument, DownloadCache};
use self::http::{Fetched, Http, HttpError, TransportOptions};

/// Largest `index.json` read.
pub const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// Largest signature read.
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// Why an install from a registry failed (the store is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(
        "{registry} has no {INDEX_FILE}: is it a registry (the --out of `boternity precompile`, or where that was published)?"
    )]
    NoIndex { registry: String },
    #[error(
        "{index} is not signed ({index}{SIGNATURE_SUFFIX} is missing) but a registry key is pinned \
         (--registry-key or BOTERNITY_REGISTRY_KEY); the publisher must sign it (`boternity index sign`)"
    )]
    Unsigned { index: String },
    #[error("--offline: {what} is not in the download cache ({}); run once without --offline", cache.display())]
    NotCached { what: String, cache: PathBuf },
    #[error(
        "{file} does not match the index: {actual_size} bytes with sha256 {actual}, the index says \
         {expected_size} bytes with sha256 {expected}; the registry is corrupt or was tampered with"
    )]
    DigestMismatch {
        file: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error(
        "skill `{name}` {version}: the index gives {file} a size of {size} bytes, over the {max}-byte cap; refused before downloading"
    )]
    OverCap {
        name: String,
        version: String,
        file: String,
        size: u64,
        max: u64,
    },
    #[error(
        "skill `{name}` {version}: the index lists no files (an index written before registries served every file); re-run `boternity precompile`"
    )]
    NoFiles { name: String, version: String },
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Where a registry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrySource {
    /// `http://` or `https://`: the folder holding `index.json`.
    Url(String),
    /// A folder on this machine.
    Dir(PathBuf),
}

impl RegistrySource {
    /// `http(s)://…` is a URL (a trailing `/index.json` is dropped); anything
    /// else a folder (`file://` stripped).
    pub fn parse(text: &str) -> RegistrySource {
        let text = text.trim();
        if text.starts_with("http://") || text.starts_with("https://") {
            let base = text.strip_suffix(INDEX_FILE).unwrap_or(text);
            return RegistrySource::Url(base.trim_end_matches('/').to_string());
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        let path = Path::new(path);
        let path = if path.file_name().is_some_and(|n| n == INDEX_FILE) && path.is_file() {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        RegistrySource::Dir(path.to_path_buf())
    }

    /// As the user would write it.
    pub fn display(&self) -> String {
        match self {
            RegistrySource::Url(url) => url.clone(),
            RegistrySource::Dir(dir) => dir.display().to_string(),
        }
    }

    /// Where `rel` (a checked relative path) is, in words.
    fn locate(&self, rel: &str) -> String {
        match self {
            RegistrySource::Url(url) => http::join(url, rel),
            RegistrySource::Dir(dir) => dir.join(rel).display().to_string(),
        }
    }
}

/// What an install reports about its downloads (for a progress bar).
#[derive(Debug, Clone, Copy)]
pub enum DownloadEvent {
    /// These files and bytes are not cached and will be downloaded.
    Start { files: usize, bytes: u64 },
    /// This many more bytes arrived.
    Advance(u64),
    /// All downloads are done.
    Finish,
}

/// A progress callback.
pub type ProgressSink = Arc<dyn Fn(DownloadEvent) + Send + Sync>;

/// A registry, the keys it must be signed with, and how to reach it.
#[derive(Clone)]
pub struct RegistryClient {
    pub source: RegistrySource,
    /// With any key here, `index.json.minisig` must verify against one of them.
    pub keys: Vec<TrustedKey>,
    /// Use only the download cache; never the network.
    pub offline: bool,
    pub cache: DownloadCache,
    http: Http,
    progress: Option<ProgressSink>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("source", &self.source)
            .field("keys", &self.keys)
            .field("offline", &self.offline)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// An index as fetched, and whose key signed it.
#[derive(Debug, Clone)]
pub struct FetchedIndex {
    pub index: Index,
    /// The pinned key that verified it (`None`: no key was pinned).
    pub signed_by: Option<TrustedKey>,
}

impl RegistryClient {
    /// A client for `source` with the default cache and transport
    /// (`BOTERNITY_HTTP_TIMEOUT`, `BOTERNITY_HTTP_RETRIES` honoured).
    pub fn new(source: RegistrySource, keys: Vec<TrustedKey>) -> RegistryClient {
        RegistryClient {
            source,
            keys,
            offline: false,
            cache: DownloadCache::default(),
            http: Http::new(TransportOptions::from_env()),
            progress: None,
        }
    }

    /// The registry in `BOTERNITY_REGISTRY` with the keys in
    /// `BOTERNITY_REGISTRY_KEY` (a key file or a base64 key), if set.
    pub fn from_env() -> Result<Option<RegistryClient>, SignError> {
        let Some(source) = std::env::var("BOTERNITY_REGISTRY")
            .ok()
            .filter(|s| !s.trim().is_empty())
        else {
            return Ok(None);
        };
        let keys = match std::env::var("BOTERNITY_REGISTRY_KEY") {
            Ok(key) if !key.trim().is_empty() => vec![TrustedKey::parse(&key)?],
            _ => Vec::new(),
        };
        Ok(Some(RegistryClient::new(
            RegistrySource::parse(&source),
            keys,
        )))
    }

    pub fn with_transport(mut self, options: TransportOptions) -> RegistryClient {
        self.http = Http::new(options);
        self
    }

    pub fn with_progress(mut self, progress: ProgressSink) -> RegistryClient {
        self.progress = Some(progress);
        self
    }

    /// A warning for plain `http://` to another machine with no key pinned:
    /// anyone on the path can change what is installed.
    pub fn insecure_warning(&self) -> Option<String> {
        match &self.source {
            RegistrySource::Url(url) if self.keys.is_empty() && http::is_insecure(url) => {
                Some(format!(
                    "{url} is plain http:// to another machine and no registry key is pinned: anyone on the \
                 network path can change what is installed; use https:// or pin the publisher's key \
                 (--registry-key / BOTERNITY_REGISTRY_KEY)"
                ))
            }
            _ => None,
        }
    }

    fn emit(&self, event: DownloadEvent) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }

    /// A small document of the registry (`index.json`, its signature):
    /// `Ok(None)` when the registry does not have it. Over HTTP it is
    /// revalidated with its cached `ETag`; offline, only the cache is read.
    fn document(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, RegistryError> {
        match &self.source {
            RegistrySource::Dir(dir) => {
                let path = dir.join(rel);
                match crate::fsutil::read_capped(&path, max) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(CappedReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(None)
                    }
                    Err(CappedReadError::Io(e)) => Err(e.into()),
                    Err(other) => Err(IoError::new(
                        IoOp::Read,
                        &path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
                    )
                    .into()),
                }
            }
            RegistrySource::Url(base) => {
                let url = http::join(base, rel);
                let cached = self.cache.document(&url, max);
                if self.offline {
                    return match cached {
                        Some(doc) => Ok(Some(doc.bytes)),
                        None => Err(RegistryError::NotCached {
                            what: url,
                            cache: self.cache.root().to_path_buf(),
                        }),
                    };
                }
                let etag = cached.as_ref().and_then(|d| d.etag.as_deref());
                match self.http.get(&url, max, etag, None) {
                    Ok(Fetched::NotModified) => Ok(cached.map(|d| d.bytes)),
                    Ok(Fetched::Body { bytes, etag }) => {
                        let doc = CachedDocument { bytes, etag };
                        if let Err(e) = self.cache.put_document(&url, &doc) {
                            tracing::warn!(error = %crate::error_chain(&e), "cannot cache {url}");
                        }
                        Ok(Some(doc.bytes))
                    }
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The registry's index, its signature verified when keys are pinned.
    pub fn fetch_index(&self) -> Result<FetchedIndex, RegistryError> {
        let where_ = self.source.locate(INDEX_FILE);
        let bytes =
            self.document(INDEX_FILE, MAX_INDEX_BYTES)?
                .ok_or_else(|| RegistryError::NoIndex {
                    registry: self.source.display(),
                })?;
        let signed_by = if self.keys.is_empty() {
            None
        } else {
            let sig_rel = format!("{INDEX_FILE}{SIGNATURE_SUFFIX}");
            let signature = self
                .document(&sig_rel, MAX_SIGNATURE_BYTES)?
                .ok_or_else(|| RegistryError::Unsigned {
                    index: where_.clone(),
                })?;
            let text = String::from_utf8_lossy(&signature);
            Some(sign::verify(&bytes, &text, &self.keys, &where_)?)
        };
        let index = Index::from_slice(&bytes, Path::new(&where_))?;
        Ok(FetchedIndex { index, signed_by })
    }

    /// One file the index lists, checked against its size and sha256:
    /// from the download cache when it holds those bytes, else fetched.
    fn file(
        &self,
        entry: &IndexEntry,
        rel: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        index::check_rel_path(&entry.name, rel)?;
        let location = self.source.locate(rel);
        if size > MAX_WASM_BYTES {
            return Err(RegistryError::OverCap {
                name: entry.name.clone(),
                version: entry.version.clone(),
                file: location,
                size,
                max: MAX_WASM_BYTES,
            });
        }
        let is_url = matches!(self.source, RegistrySource::Url(_));
        if is_url && let Some(bytes) = self.cache.get(sha256, size) {
            return Ok(bytes);
        }
        let bytes = match &self.source {
            RegistrySource::Dir(dir) => {
                let path = dir.join(rel);
                // One byte over the index's size is enough to tell a mismatch.
                match crate::fsutil::read_capped(&path, size + 1) {
                    Ok(bytes) => bytes,
                    Err(CappedReadError::Io(e)) => return Err(e.into()),
                    Err(CappedReadError::TooLarge(t)) => {
                        return Err(RegistryError::DigestMismatch {
                            file: location,
                            expected: sha256.into(),
                            expected_size: size,
                            actual: "(not computed)".into(),
                            actual_size: t.size,
                        });
                    }
                    Err(CappedReadError::NotRegular(path)) => {
                        return Err(IoError::new(
                            IoOp::Read,
                            path,
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "not a regular file",
                            ),
                        )
                        .into());
                    }
                }
            }
            RegistrySource::Url(_) => {
                if self.offline {
                    return Err(RegistryError::NotCached {
                        what: location,
                        cache: self.cache.root().to_path_buf(),
                    });
                }
                let last = std::sync::atomic::AtomicU64::new(0);
                let progress = |received: u64, _total: Option<u64>| {
                    let before = last.swap(received, std::sync::atomic::Ordering::Relaxed);
                    self.emit(DownloadEvent::Advance(received.saturating_sub(before)));
                };
                // Capped at the skill cap, not the index's size: a longer
                // body is then reported as not matching the index.
                match self
                    .http
                    .get(&location, MAX_WASM_BYTES, None, Some(&progress))?
                {
                    Fetched::Body { bytes, .. } => bytes,
                    Fetched::NotModified => Vec::new(),
                }
            }
        };
        let actual = crate::digest::sha256_hex(&bytes);
        if actual != sha256 || bytes.len() as u64 != size {
            return Err(RegistryError::DigestMismatch {
                file: location,
                expected: sha256.into(),
                expected_size: size,
                actual,
                actual_size: bytes.len() as u64,
            });
        }
        if is_url && let Err(e) = self.cache.put(sha256, &bytes) {
            tracing::warn!(error = %crate::error_chain(&e), "cannot cache {location}");
        }
        Ok(bytes)
    }

    /// Bytes the entry's files need that the cache does not hold.
    fn announce(&self, wanted: &[Wanted]) {
        if !matches!(self.source, RegistrySource::Url(_)) || self.offline {
            return;
        }
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(_, size, sha)| self.cache.get(sha, *size).is_none())
            .collect();
        if !missing.is_empty() {
            self.emit(DownloadEvent::Start {
                files: missing.len(),
                bytes: missing.iter().map(|(_, s, _)| s).sum(),
            });
        }
    }
}

/// The files (relative to the registry) the entry needs: `(path, size,
/// sha256)` of each published file, then its binary's, every path checked.
fn wanted_files(entry: &IndexEntry) -> Result<(Vec<Wanted>, Option<Wanted>), RegistryError> {
    if entry.files.is_empty() {
        return Err(RegistryError::NoFiles {
            name: entry.name.clone(),
            version: entry.version.clone(),
        });
    }
    let dir = entry
        .dir
        .clone()
        .or_else(|| {
            entry
                .path
                .as_deref()
                .and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        })
        .unwrap_or_else(|| format!("{}/{}", entry.name, entry.version));
    index::check_rel_path(&entry.name, &dir)?;
    let mut files = Vec::new();
    for f in &entry.files {
        index::check_rel_path(&entry.name, &f.path)?;
        files.push((format!("{dir}/{}", f.path), f.size, f.sha256.clone()));
    }
    let binary = match (&entry.path, &entry.sha256, entry.size) {
        (Some(path), Some(sha), Some(size)) => {
            index::check_rel_path(&entry.name, path)?;
            Some((path.clone(), size, sha.clone()))
        }
        (Some(path), _, _) => {
            return Err(IndexError::NotBuilt {
                name: entry.name.clone(),
                version: entry.version.clone(),
                error: format!("the index gives {path} without its sha256 and size"),
            }
            .into());
        }
        _ => None,
    };
    Ok((files, binary))
}

/// A file to fetch: its path relative to the registry, size and sha256.
type Wanted = (String, u64, String);

/// `name` or `name@version`.
pub fn parse_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((name, version)) if !version.is_empty() => (name, Some(version)),
        Some((name, _)) => (name, None),
        None => (spec, None),
    }
}

/// Installs skill `name` (`version`, else the newest) from the registry:
/// every file checked against the (signed) index, the binary validated,
/// then one atomic commit. The trust tier is `options`' (the installer's):
/// a signature proves who published a skill, not that it is harmless.
pub fn install_from_registry(
    store: &SkillStore,
    client: &RegistryClient,
    name: &str,
    version: Option<&str>,
    options: &InstallOptions,
    executor: Option<&Executor>,
) -> Result<Installed, RegistryError> {
    manifest::check_name(name).map_err(|e| InstallError::Store(e.into()))?;
    let fetched = client.fetch_index()?;
    let origin = client.source.locate(INDEX_FILE);
    let entry = fetched.index.find(name, version, &origin)?;
    let (files, binary) = wanted_files(entry)?;
    let mut all = files.clone();
    all.extend(binary.clone());
    client.announce(&all);

    let mut contents = Vec::new();
    for ((rel, size, sha), published) in files.iter().zip(&entry.files) {
        let bytes = client.file(entry, rel, *size, sha)?;
        contents.push((published.path.clone(), bytes, published.executable));
    }
    let wasm = match &binary {
        Some((rel, size, sha)) => Some(client.file(entry, rel, *size, sha)?),
        None => None,
    };
    client.emit(DownloadEvent::Finish);

    // A folder named after the skill, as the pipeline expects.
    let temp = std::env::temp_dir();
    let staging = tempfile::tempdir().on(IoOp::Create, &temp)?;
    let dir = staging.path().join(&entry.name);
    let staged = crate::fsutil::StagedDir::new_in(staging.path(), &entry.name)?;
    for (rel, bytes, executable) in &contents {
        staged.write_file(Path::new(rel), bytes, *executable)?;
    }
    staged.commit_new(&dir)?;
    let mut prepared =
        pipeline::prepare_with_binary(&dir, wasm, &options.pipeline).map_err(InstallError::from)?;
    prepared.notes.push(format!(
        "from the registry {} ({} {}, made there as: {}{})",
        client.source.display(),
        entry.name,
        entry.version,
        entry.path_taken.map_or("?".to_string(), |p| p.to_string()),
        match &fetched.signed_by {
            Some(key) => format!("; index signed by key {}", key.key_id()),
            None => "; no key pinned, signature not checked".into(),
        }
    ));
    if let Some(warning) = client.insecure_warning() {
        prepared.notes.push(warning);
    }
    let options = InstallOptions {
        origin: Some(Origin::Registry {
            url: client.source.display(),
            name: entry.name.clone(),
            version: entry.version.clone(),
        }),
        ..options.clone()
    };
    Ok(commit_prepared(store, prepared, &options, executor)?)
}

impl ComponentSource for RegistryClient {
    fn component_for(
        &self,
        name: &str,
        source_sha256: &str,
    ) -> Result<Option<RegistryComponent>, String> {
        let fetched = self.fetch_index().map_err(|e| crate::error_chain(&e))?;
        let Some(entry) = fetched.index.find_by_source(name, source_sha256) else {
            return Ok(None);
        };
        let (_, binary) = wanted_files(entry)
            .or_else(|e| match e {
                // An older index without files still names its binary.
                RegistryError::NoFiles { .. } => Ok((Vec::new(), None)),
                e => Err(e),
            })
            .map_err(|e| crate::error_chain(&e))?;
        let (rel, size, sha) = match binary {
            Some(b) => b,
            None => match (&entry.path, entry.size, &entry.sha256) {
                (Some(p), Some(s), Some(h)) => (p.clone(), s, h.clone()),
                _ => return Ok(None),
            },
        };
        index::check_rel_path(name, &rel).map_err(|e| e.to_string())?;
        self.announce(&[(rel.clone(), size, sha.clone())]);
        let bytes = self
            .file(entry, &rel, size, &sha)
            .map_err(|e| crate::error_chain(&e))?;
        self.emit(DownloadEvent::Finish);
        Ok(Some(RegistryComponent {
            bytes,
            from: format!(
                "{} ({} {}{})",
                self.source.display(),
                entry.name,
                entry.version,
                match &fetched.signed_by {
                    Some(key) => format!(", index signed by key {}", key.key_id()),
                    None => String::new(),
                }
            ),
        }))
    }
}
