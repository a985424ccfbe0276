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
//!
//! A signature proves who published an index, nothing more, so an index
//! verified against a pinned key must also be fresh: not expired (unless
//! `allow_expired`), and not older (by its `serial`) than one accepted before
//! from the same registry and key ([`state`]). Then the entry must be the
//! skill it names (its name, folder and `SKILL.md`), a yanked version is
//! taken only when asked for by its exact version, an install never goes
//! back to an older version than the one installed unless that version was
//! asked for, and every download ends within its deadline and the install's
//! ([`http::Budget`]).

pub mod cache;
pub mod http;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::context::Context;
use crate::fsutil::{CappedReadError, IoError, IoOp};
use crate::pipeline::{ComponentSource, ComponentSourceError, RegistryComponent};
use crate::registry::index::{self, INDEX_FILE, Index, IndexEntry, IndexError};
use crate::registry::sign::{self, SIGNATURE_SUFFIX, SignError, TrustedKey};
use crate::skill::manifest;
use crate::skill::validate::MAX_WASM_BYTES;

use self::cache::{CachedDocument, DownloadCache};
pub use self::http::TransportOptions;
use self::http::{Budget, Fetched, Http, HttpError};
use self::state::{RegistryState, StateError};

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
        "{registry} has no {INDEX_FILE}: is it a registry (what `precompile` wrote, or where that was published)?"
    )]
    NoIndex { registry: String },
    #[error(
        "{index} is not signed ({index}{SIGNATURE_SUFFIX} is missing) but a registry key is pinned; \
         the publisher must sign it"
    )]
    Unsigned { index: String },
    #[error("offline: {what} is not in the download cache ({}); download it once with the network", cache.display())]
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
    #[error(
        "expiry rule: {index} expired at {expired} (signed by key {key_id}); a registry re-signs \
         its index before it expires, so an expired one may be an old index replayed to hide \
         newer versions and yanks; nothing was installed: ask the publisher to re-sign it, or \
         allow an expired index to use it anyway"
    )]
    Expired {
        index: String,
        expired: String,
        key_id: String,
    },
    #[error(
        "rollback rule: {index} has serial {serial}, older than serial {newest} accepted before \
         from this registry with key {key_id}: an older index was replayed (it would install \
         older versions); nothing was installed. If the publisher really went back, delete {} \
         to start this registry over",
        state.display()
    )]
    RolledBack {
        index: String,
        serial: u64,
        newest: u64,
        key_id: String,
        state: PathBuf,
    },
    #[error(
        "downgrade rule: `{name}` {installed} is installed and the newest version {registry} \
         offers is {candidate}; an install never goes back to an older version unless it is \
         asked for: install `{name}@{candidate}` to downgrade"
    )]
    ImplicitDowngrade {
        name: String,
        installed: String,
        candidate: String,
        registry: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
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
    /// Use a signed index past its `expires` (with a note).
    pub allow_expired: bool,
    pub cache: DownloadCache,
    /// The newest serial accepted per registry and key.
    pub state: RegistryState,
    http: Http,
    progress: Option<ProgressSink>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("source", &self.source)
            .field("keys", &self.keys)
            .field("offline", &self.offline)
            .field("allow_expired", &self.allow_expired)
            .field("cache", &self.cache)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// An index as fetched, and whose key signed it.
#[derive(Debug, Clone)]
pub struct FetchedIndex {
    pub index: Index,
    /// The pinned key that verified it (`None`: no key was pinned).
    pub signed_by: Option<TrustedKey>,
    /// What the install should say about it (an index without an expiry, an
    /// expired one used with `allow_expired`).
    pub notes: Vec<String>,
}

impl RegistryClient {
    /// A client for `source`, with the caches, transport and index
    /// policy of `context`.
    pub fn new(context: &Context, source: RegistrySource, keys: Vec<TrustedKey>) -> RegistryClient {
        RegistryClient {
            source,
            keys,
            offline: false,
            allow_expired: false,
            cache: DownloadCache::new(context.folders.downloads_dir()),
            state: RegistryState::new(context.folders.registry_state_dir()),
            http: Http::new(context.transport.clone()),
            progress: None,
        }
    }

    pub fn with_transport(mut self, options: TransportOptions) -> RegistryClient {
        self.http = Http::new(options);
        self
    }

    pub fn with_progress(mut self, progress: ProgressSink) -> RegistryClient {
        self.progress = Some(progress);
        self
    }

    /// The time one install's downloads may take together, starting now.
    pub fn budget(&self) -> Budget {
        Budget::new(self.http.options().install_deadline)
    }

    /// The registry as its state is remembered: the URL, or the folder's
    /// real path.
    fn identity(&self) -> String {
        match &self.source {
            RegistrySource::Url(url) => url.clone(),
            RegistrySource::Dir(dir) => dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string(),
        }
    }

    /// A warning for plain `http://` to another machine with no key pinned:
    /// anyone on the path can change what is installed.
    pub fn insecure_warning(&self) -> Option<String> {
        match &self.source {
            RegistrySource::Url(url) if self.keys.is_empty() && http::is_insecure(url) => {
                Some(format!(
                    "{url} is plain http:// to another machine and no registry key is pinned: anyone on the \
                 network path can change what is installed; use https:// or pin the publisher's key"
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
    fn document(
        &self,
        rel: &str,
        max: u64,
        budget: &Budget,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
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
                match self.http.get(&url, max, etag, None, budget) {
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

    /// The registry's index, its signature verified when keys are pinned
    /// and then its freshness (expiry, serial): within a budget of its own.
    pub fn fetch_index(&self) -> Result<FetchedIndex, RegistryError> {
        self.fetch_index_within(&self.budget())
    }

    /// [`RegistryClient::fetch_index`] within an install's `budget`.
    pub fn fetch_index_within(&self, budget: &Budget) -> Result<FetchedIndex, RegistryError> {
        let where_ = self.source.locate(INDEX_FILE);
        let bytes = self
            .document(INDEX_FILE, MAX_INDEX_BYTES, budget)?
            .ok_or_else(|| RegistryError::NoIndex {
                registry: self.source.display(),
            })?;
        let signed_by = if self.keys.is_empty() {
            None
        } else {
            let sig_rel = format!("{INDEX_FILE}{SIGNATURE_SUFFIX}");
            let signature = self
                .document(&sig_rel, MAX_SIGNATURE_BYTES, budget)?
                .ok_or_else(|| RegistryError::Unsigned {
                    index: where_.clone(),
                })?;
            let text = String::from_utf8_lossy(&signature);
            Some(sign::verify(&bytes, &text, &self.keys, &where_)?)
        };
        let index = Index::from_slice(&bytes, Path::new(&where_))?;
        let notes = match &signed_by {
            Some(key) => self.check_fresh(&index, key, &where_)?,
            None => Vec::new(),
        };
        Ok(FetchedIndex {
            index,
            signed_by,
            notes,
        })
    }

    /// The freshness rules for an index `key` verified: not older than the
    /// newest accepted from this registry and key, not expired (unless
    /// allowed); then its serial is remembered.
    fn check_fresh(
        &self,
        index: &Index,
        key: &TrustedKey,
        where_: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let registry = self.identity();
        let key_id = key.key_id();
        let rolled_back = |newest: u64, state: PathBuf| RegistryError::RolledBack {
            index: where_.into(),
            serial: index.serial,
            newest,
            key_id: key_id.clone(),
            state,
        };
        if let Some(seen) = self.state.get(&registry, &key_id)?
            && index.serial < seen.serial
        {
            return Err(rolled_back(
                seen.serial,
                self.state.file(&registry, &key_id),
            ));
        }
        let mut notes = Vec::new();
        match index.expires_at(where_)? {
            None => notes.push(format!(
                "{where_} carries no expiry{} (it was signed by an older boternity): a replayed \
                 old index cannot be told from it; the publisher should re-sign it with \
                 `boternity index sign`",
                if index.serial == 0 {
                    " and no serial"
                } else {
                    ""
                }
            )),
            Some(at) if std::time::SystemTime::now() > at => {
                let expired = index.expires.clone().unwrap_or_default();
                if !self.allow_expired {
                    return Err(RegistryError::Expired {
                        index: where_.into(),
                        expired,
                        key_id,
                    });
                }
                notes.push(format!(
                    "{where_} expired at {expired}; used anyway (expired indexes allowed)"
                ));
            }
            Some(_) => {}
        }
        if let state::Standing::Older { newest, file } =
            self.state
                .accept(&registry, &key_id, index.serial, index.expires.as_deref())?
        {
            return Err(rolled_back(newest, file));
        }
        Ok(notes)
    }

    /// One file the index lists, checked against its size and sha256:
    /// from the download cache when it holds those bytes, else fetched.
    fn file(
        &self,
        entry: &IndexEntry,
        rel: &str,
        (size, sha256): (u64, &str),
        budget: &Budget,
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
                    .get(&location, MAX_WASM_BYTES, None, Some(&progress), budget)?
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
    let dir = entry.dir_or_default();
    index::check_rel_path(&entry.name, &dir)?;
    entry.check_dir()?;
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

/// A skill downloaded from a registry into a temporary folder (removed with
/// it), every file checked against the index's size and sha256 and its
/// `SKILL.md` checked to be the skill the entry names.
#[derive(Debug)]
pub struct Downloaded {
    pub entry: IndexEntry,
    /// `<workspace>/<name>`: the skill folder, as the pipeline expects it.
    pub dir: PathBuf,
    pub workspace: tempfile::TempDir,
    /// The entry's binary, if it publishes one.
    pub wasm: Option<Vec<u8>>,
    /// What the install should say: where it came from, who signed the
    /// index, a yank, an insecure transport.
    pub notes: Vec<String>,
}

impl RegistryClient {
    /// Downloads `entry` of `fetched` within `budget`.
    pub fn download(
        &self,
        fetched: &FetchedIndex,
        entry: &IndexEntry,
        budget: &Budget,
    ) -> Result<Downloaded, RegistryError> {
        let (files, binary) = wanted_files(entry)?;
        let mut all = files.clone();
        all.extend(binary.clone());
        self.announce(&all);

        let mut contents = Vec::new();
        for ((rel, size, sha), published) in files.iter().zip(&entry.files) {
            let bytes = self.file(entry, rel, (*size, sha), budget)?;
            contents.push((published.path.clone(), bytes, published.executable));
        }
        let wasm = match &binary {
            Some((rel, size, sha)) => Some(self.file(entry, rel, (*size, sha), budget)?),
            None => None,
        };
        self.emit(DownloadEvent::Finish);

        // The name rule on the SKILL.md as downloaded, before anything is staged.
        let skill_md = contents
            .iter()
            .find(|(rel, ..)| rel == manifest::MANIFEST_FILE)
            .ok_or_else(|| IndexError::BadManifest {
                name: entry.name.clone(),
                version: entry.version.clone(),
                error: "the index lists no SKILL.md among its files".into(),
            })?;
        entry.check_identity(&skill_md.1, HOSTILE_HINT)?;

        // A folder named after the skill, as the pipeline expects.
        let workspace = tempfile::Builder::new()
            .prefix("boternity-registry-")
            .tempdir()
            .map_err(|e| IoError::new(IoOp::Create, Path::new("a temporary folder"), e))?;
        let dir = workspace.path().join(&entry.name);
        let staged = crate::fsutil::StagedDir::new_in(workspace.path(), &entry.name)?;
        for (rel, bytes, executable) in &contents {
            staged.write_file(Path::new(rel), bytes, *executable)?;
        }
        staged.commit_new(&dir)?;
        Ok(Downloaded {
            notes: self.install_notes(fetched, entry),
            entry: entry.clone(),
            dir,
            workspace,
            wasm,
        })
    }

    /// What an install from this registry should say about `entry`.
    fn install_notes(&self, fetched: &FetchedIndex, entry: &IndexEntry) -> Vec<String> {
        let mut notes = vec![format!(
            "from the registry {} ({} {}, made there as: {}{})",
            self.source.display(),
            entry.name,
            entry.version,
            entry.path_taken.map_or("?".to_string(), |p| p.to_string()),
            match &fetched.signed_by {
                Some(key) => format!(
                    "; index signed by key {}, serial {}{}",
                    key.key_id(),
                    fetched.index.serial,
                    fetched
                        .index
                        .expires
                        .as_deref()
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                ),
                None => "; no key pinned, signature not checked".into(),
            }
        )];
        notes.extend(fetched.notes.iter().cloned());
        if let Some(yanked) = &entry.yanked {
            notes.push(format!(
                "YANKED: `{}` {} is yanked in the registry ({}{}); installed only because this exact \
                 version was asked for: move to another version as soon as you can",
                entry.name,
                entry.version,
                yanked.reason,
                yanked
                    .at
                    .as_deref()
                    .map(|at| format!(", since {at}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(warning) = self.insecure_warning() {
            notes.push(warning);
        }
        notes
    }

    /// Where the index is, in words (for errors).
    pub fn index_location(&self) -> String {
        self.source.locate(INDEX_FILE)
    }
}

/// The end of an identity error about a downloaded skill.
pub const HOSTILE_HINT: &str = "; the registry is corrupt or hostile: nothing was installed";

impl ComponentSource for RegistryClient {
    fn component_for(
        &self,
        name: &str,
        source_sha256: &str,
    ) -> Result<Option<RegistryComponent>, ComponentSourceError> {
        let budget = self.budget();
        let fetched = self.fetch_index_within(&budget)?;
        let Some(entry) = fetched.index.find_by_source(name, source_sha256) else {
            return Ok(None);
        };
        let (_, binary) = wanted_files(entry).or_else(|e| match e {
            // An older index without files still names its binary.
            RegistryError::NoFiles { .. } => Ok((Vec::new(), None)),
            e => Err(e),
        })?;
        let (rel, size, sha) = match binary {
            Some(b) => b,
            None => match (&entry.path, entry.size, &entry.sha256) {
                (Some(p), Some(s), Some(h)) => (p.clone(), s, h.clone()),
                _ => return Ok(None),
            },
        };
        index::check_rel_path(name, &rel)?;
        self.announce(&[(rel.clone(), size, sha.clone())]);
        let bytes = self.file(entry, &rel, (size, &sha), &budget)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::sign::{IndexSigner, SigningKey};

    /// A folder registry signed by a new key, and a client pinning it with
    /// its own cache and state.
    fn setup(tmp: &Path) -> (PathBuf, SigningKey, RegistryClient) {
        let key_path = tmp.join("k");
        let public = sign::generate(&key_path, None).unwrap();
        let key = SigningKey::load(&key_path, None).unwrap();
        let dir = tmp.join("dist");
        std::fs::create_dir_all(&dir).unwrap();
        let context = Context::new(crate::paths::Folders::under(tmp));
        let client = RegistryClient::new(&context, RegistrySource::Dir(dir.clone()), vec![public]);
        (dir, key, client)
    }

    #[test]
    fn old_indexes_are_read_with_a_note_and_never_after_a_newer_one() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, key, client) = setup(tmp.path());
        let index = dir.join(INDEX_FILE);
        // Signed as written before serials and expiry.
        std::fs::write(&index, b"{\"skills\": []}\n").unwrap();
        key.sign_file(&index).unwrap();
        let fetched = client.fetch_index().unwrap();
        assert_eq!(fetched.index.serial, 0);
        assert!(
            fetched.notes[0].contains("no expiry and no serial"),
            "{:?}",
            fetched.notes
        );
        // A stamped index is accepted, and then the old one is a rollback.
        let signed = sign::sign_index(&index, &IndexSigner::new(key.clone()), 0).unwrap();
        let fetched = client.fetch_index().unwrap();
        assert!(fetched.notes.is_empty(), "{:?}", fetched.notes);
        assert_eq!(fetched.index.serial, signed.serial);
        std::fs::write(&index, b"{\"skills\": []}\n").unwrap();
        key.sign_file(&index).unwrap();
        let err = client.fetch_index().unwrap_err();
        assert!(matches!(err, RegistryError::RolledBack { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("serial 0") && text.contains(&format!("serial {}", signed.serial)),
            "{text}"
        );
        // Without a key nothing is remembered or checked.
        let mut unpinned = client.clone();
        unpinned.keys.clear();
        assert_eq!(unpinned.fetch_index().unwrap().index.serial, 0);
    }

    #[test]
    fn an_expired_index_is_refused_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, key, mut client) = setup(tmp.path());
        let index = dir.join(INDEX_FILE);
        let past = Index {
            serial: 7,
            expires: Some("2001-01-01T00:00:00Z".into()),
            skills: Vec::new(),
        };
        std::fs::write(&index, past.to_json()).unwrap();
        key.sign_file(&index).unwrap();
        let err = client.fetch_index().unwrap_err();
        assert!(matches!(err, RegistryError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("2001-01-01T00:00:00Z"), "{err}");
        // Refused: not remembered.
        assert!(
            client
                .state
                .get(&client.identity(), &key.key_id())
                .unwrap()
                .is_none()
        );
        client.allow_expired = true;
        let fetched = client.fetch_index().unwrap();
        assert!(
            fetched.notes[0].contains("used anyway (expired indexes allowed)"),
            "{:?}",
            fetched.notes
        );
    }
}
