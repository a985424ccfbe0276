//! The OCI distribution protocol over the registry client's transport:
//! what `push`, `install oci://` and `sync` ask of a registry.
//!
//! Every request that comes back 401 is answered once: the registry's
//! challenge says Bearer (a token is fetched from its realm, with the
//! registry's credentials when there are any, else anonymously) or Basic
//! (the credentials themselves); the answer is kept for the rest of the
//! process per registry and scope. `Authorization` is only ever sent to the
//! registry's own origin: a blob redirected to another host (as real
//! registries do) is fetched without it, and trusted for its digest alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::OciError;
use super::auth::{self, Basic, Challenge, OciSettings};
use super::manifest::{
    self, DOCKER_MANIFEST, Descriptor, EMPTY, EMPTY_JSON, INDEX, ImageIndex, Layout, MANIFEST,
    MAX_MANIFEST_BYTES, Manifest, SIGNATURE_ARTIFACT, SIGNATURE_LAYER,
};
use super::reference::{Reference, is_sha256_hex};
use crate::context::{Context, HostEnv};
use crate::fsutil::{IoError, IoOp};
use crate::registry::client::cache::{CachedDocument, DownloadCache};
use crate::registry::client::http::{Budget, Http, HttpError, Method, Request, Response, encode};
use crate::registry::client::{DownloadEvent, ProgressSink, TransportOptions};
use crate::registry::sign::{self, TrustedKey};

/// Largest signature blob read.
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// Largest token answer or tag list read.
const MAX_SMALL_JSON: u64 = 1024 * 1024;
/// Most signature referrers looked at.
const MAX_REFERRERS: usize = 16;
/// Most tags named in an error.
const MAX_TAGS_SHOWN: usize = 20;

/// What the client remembers while a process runs: per registry, its
/// scheme and credentials; per registry and scope, the `Authorization`
/// that worked.
#[derive(Debug, Default)]
struct Session {
    schemes: HashMap<String, &'static str>,
    credentials: HashMap<String, Option<Basic>>,
    authorization: HashMap<(String, String), String>,
}

/// A client for OCI registries, with the context's transport, credentials
/// and download cache.
#[derive(Clone)]
pub struct OciClient {
    http: Http,
    /// The same, never retrying: to find out whether a registry on this
    /// machine speaks TLS.
    probe: Http,
    settings: OciSettings,
    host_env: HostEnv,
    transport: TransportOptions,
    /// With any key here, an artifact must carry a signature by one of them.
    pub keys: Vec<TrustedKey>,
    /// Use only the download cache; never the network.
    pub offline: bool,
    pub cache: DownloadCache,
    progress: Option<ProgressSink>,
    session: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for OciClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciClient")
            .field("keys", &self.keys)
            .field("offline", &self.offline)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// What [`OciClient::push`] did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: Reference,
    /// The manifest's digest.
    pub digest: String,
    /// Blobs uploaded, and those the registry already had.
    pub uploaded: usize,
    pub skipped: usize,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// A skill pulled into a temporary folder (removed with it): every blob
/// checked against its digest.
#[derive(Debug)]
pub struct Pulled {
    /// As asked, with the digest it resolved to.
    pub reference: Reference,
    pub digest: String,
    pub layout: Layout,
    /// `<workspace>/<name>`: the skill folder.
    pub dir: PathBuf,
    pub workspace: tempfile::TempDir,
    pub wasm: Option<Vec<u8>>,
    /// The pinned key whose signature verified (`None`: none pinned).
    pub signed_by: Option<TrustedKey>,
    pub notes: Vec<String>,
}

impl OciClient {
    /// A client with `context`'s transport, OCI settings and download cache.
    pub fn new(context: &Context, keys: Vec<TrustedKey>) -> Result<OciClient, OciError> {
        let roots = roots(&context.oci)?;
        let mut quick = context.transport.clone();
        quick.retries = 0;
        Ok(OciClient {
            http: Http::with_roots(context.transport.clone(), roots.clone()),
            probe: Http::with_roots(quick, roots),
            settings: context.oci.clone(),
            host_env: context.host.clone(),
            transport: context.transport.clone(),
            keys,
            offline: false,
            cache: DownloadCache::new(context.folders.downloads_dir()),
            progress: None,
            session: Arc::default(),
        })
    }

    pub fn with_progress(mut self, progress: ProgressSink) -> OciClient {
        self.progress = Some(progress);
        self
    }

    /// The time one install's (or push's) requests may take together.
    pub fn budget(&self) -> Budget {
        Budget::new(self.transport.install_deadline)
    }

    fn emit(&self, event: DownloadEvent) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `scheme://host` of the registry: https, except plain http when
    /// allowed for every registry, or for a registry on this machine that
    /// does not speak TLS (found out once, with a request to `/v2/`).
    fn origin(&self, r: &Reference, budget: &Budget) -> Result<String, OciError> {
        let host = r.api_host().to_string();
        if self.settings.plain_http {
            return Ok(format!("http://{host}"));
        }
        if !r.is_loopback() || self.offline {
            return Ok(format!("https://{host}"));
        }
        if let Some(scheme) = self.session().schemes.get(&host) {
            return Ok(format!("{scheme}://{host}"));
        }
        let https = format!("https://{host}");
        let probe = Request::new(Method::GET, format!("{https}/v2/"), MAX_SMALL_JSON);
        let scheme = match self.probe.call(&probe, None, budget) {
            // It answered TLS with plain HTTP: a registry without TLS.
            Err(HttpError::Unreachable { source, .. }) if answers_plain_http(&source) => "http",
            // It speaks TLS (maybe with a certificate we do not trust: then
            // that is the error), is down, or is too slow: https, and its error.
            _ => "https",
        };
        self.session().schemes.insert(host.clone(), scheme);
        Ok(format!("{scheme}://{host}"))
    }

    /// `origin/v2/<repository>/<rest>`.
    fn url(&self, r: &Reference, rest: &str, budget: &Budget) -> Result<String, OciError> {
        Ok(format!(
            "{}/v2/{}/{rest}",
            self.origin(r, budget)?,
            r.repository
        ))
    }

    fn credentials(&self, r: &Reference) -> Result<Option<Basic>, OciError> {
        if let Some(found) = self.session().credentials.get(&r.registry) {
            return Ok(found.clone());
        }
        let found = auth::lookup(&self.settings, &self.host_env, &r.registry)?;
        self.session()
            .credentials
            .insert(r.registry.clone(), found.clone());
        Ok(found)
    }

    /// Sends `request` to the registry of `r` with the authorization of
    /// `scope` (`pull` or `pull,push`), answering a 401 challenge once.
    /// A 401 that stays, and a 403, are errors; any other status is the
    /// caller's to read.
    fn send(
        &self,
        r: &Reference,
        push: bool,
        mut request: Request<'_>,
        progress: Option<crate::registry::client::http::ProgressFn<'_>>,
        budget: &Budget,
    ) -> Result<Response, OciError> {
        let scope = format!(
            "repository:{}:{}",
            r.repository,
            if push { "pull,push" } else { "pull" }
        );
        let slot = (r.registry.clone(), scope.clone());
        let origin = self.origin(r, budget)?;
        let own = same_origin(&request.url, &origin);
        let base_headers = request.headers.clone();
        let known = self.session().authorization.get(&slot).cloned();
        if own && let Some(value) = &known {
            request
                .headers
                .push(("Authorization".into(), value.clone()));
        }
        let response = self.http.call(&request, progress, budget)?;
        if response.status != 401 || !own {
            return self.refuse_403(r, response);
        }
        let challenge = response
            .header_all("www-authenticate")
            .into_iter()
            .find_map(auth::parse_challenge);
        let credentials = self.credentials(r)?;
        let value = match challenge {
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                // The scope we need; the registry's when it names one for this request.
                let scope = match asked {
                    Some(asked)
                        if asked.contains(&r.repository) && (!push || asked.contains("push")) =>
                    {
                        asked
                    }
                    _ => scope.clone(),
                };
                format!(
                    "Bearer {}",
                    self.token(
                        r,
                        &realm,
                        service.as_deref(),
                        &scope,
                        credentials.as_ref(),
                        budget
                    )?
                )
            }
            Some(Challenge::Basic) | None => match &credentials {
                Some(basic) => basic.header(),
                None => {
                    return Err(OciError::Unauthorized {
                        registry: r.registry.clone(),
                        with: None,
                    });
                }
            },
        };
        if known.as_ref() == Some(&value) {
            return Err(OciError::Unauthorized {
                registry: r.registry.clone(),
                with: credentials.map(|c| c.from),
            });
        }
        self.session().authorization.insert(slot, value.clone());
        request.headers = base_headers;
        request.headers.push(("Authorization".into(), value));
        let response = self.http.call(&request, progress, budget)?;
        if response.status == 401 {
            return Err(OciError::Unauthorized {
                registry: r.registry.clone(),
                with: credentials.map(|c| c.from),
            });
        }
        self.refuse_403(r, response)
    }

    fn refuse_403(&self, r: &Reference, response: Response) -> Result<Response, OciError> {
        if response.status == 403 {
            let with = self
                .session()
                .credentials
                .get(&r.registry)
                .cloned()
                .flatten()
                .map(|c| c.from);
            return Err(OciError::Forbidden {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                with,
            });
        }
        Ok(response)
    }

    /// A token from the realm of a Bearer challenge.
    fn token(
        &self,
        r: &Reference,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: Option<&Basic>,
        budget: &Budget,
    ) -> Result<String, OciError> {
        let realm_loopback = realm.strip_prefix("http://").map(|rest| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            Reference {
                registry: authority.to_string(),
                repository: String::new(),
                tag: None,
                digest: None,
            }
            .is_loopback()
        });
        match realm_loopback {
            None if realm.starts_with("https://") => {}
            Some(true) => {}
            Some(false) if self.settings.plain_http => {}
            _ => {
                return Err(OciError::InsecureRealm {
                    realm: realm.into(),
                });
            }
        }
        let mut url = realm.to_string();
        url.push(if url.contains('?') { '&' } else { '?' });
        if let Some(service) = service {
            url.push_str(&format!("service={}&", encode(service)));
        }
        url.push_str(&format!("scope={}", encode(scope)));
        let mut request = Request::new(Method::GET, url.clone(), MAX_SMALL_JSON);
        if let Some(basic) = credentials {
            request = request.header("Authorization", basic.header());
        }
        let response = self.http.call(&request, None, budget)?;
        match response.status {
            200..=299 => {}
            401 | 403 => {
                return Err(OciError::Unauthorized {
                    registry: r.registry.clone(),
                    with: credentials.map(|c| c.from.clone()),
                });
            }
            status => return Err(registry_error(&response, status)),
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let token: Token =
            serde_json::from_slice(&response.body).map_err(|e| OciError::Registry {
                url: url.clone(),
                status: response.status,
                message: format!("not a token answer: {e}"),
            })?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| OciError::Registry {
                url,
                status: response.status,
                message: "the answer holds no token".into(),
            })
    }

    // ---- pulling --------------------------------------------------------

    /// The manifest `r` names and its digest: checked against the digest
    /// asked for (or, by tag, the one the registry says it served), capped
    /// at [`MAX_MANIFEST_BYTES`]. A tag that does not exist is an error
    /// listing the tags that do.
    pub fn manifest(&self, r: &Reference, budget: &Budget) -> Result<(Vec<u8>, String), OciError> {
        let key = format!("oci://{}/{}@{}", r.registry, r.repository, r.target());
        let what = format!("the manifest of {r}");
        let (bytes, served) = if self.offline {
            let doc = self
                .cache
                .document(&key, MAX_MANIFEST_BYTES)
                .ok_or_else(|| OciError::NotCached {
                    what: what.clone(),
                    cache: self.cache.root().to_path_buf(),
                })?;
            (doc.bytes, None)
        } else {
            let url = self.url(r, &format!("manifests/{}", r.target()), budget)?;
            let request = Request::new(Method::GET, url, MAX_MANIFEST_BYTES)
                .header("Accept", format!("{MANIFEST}, {INDEX}, {DOCKER_MANIFEST}"));
            let response = self
                .send(r, false, request, None, budget)
                .map_err(|e| over_cap(e, &what))?;
            match response.status {
                200..=299 => {}
                404 => return Err(self.not_found(r, budget)),
                status => return Err(registry_error(&response, status)),
            }
            let served = response.header("docker-content-digest").map(str::to_string);
            (response.body, served)
        };
        let digest = manifest::digest_of(&bytes);
        let expected = r.digest.clone().or(served);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(OciError::DigestMismatch {
                what,
                expected,
                actual: digest,
            });
        }
        if !self.offline {
            // Kept by digest too: `sync --offline` asks for exactly that.
            let by_digest = format!("oci://{}/{}@{digest}", r.registry, r.repository);
            for key in [key.as_str(), by_digest.as_str()] {
                let doc = CachedDocument {
                    bytes: bytes.clone(),
                    etag: None,
                };
                if let Err(e) = self.cache.put_document(key, &doc) {
                    tracing::warn!(error = %crate::error_chain(&e), "cannot cache {key}");
                }
            }
        }
        Ok((bytes, digest))
    }

    /// A 404 for `r`: a tag that does not exist lists the tags that do.
    fn not_found(&self, r: &Reference, budget: &Budget) -> OciError {
        match (&r.digest, &r.tag) {
            (None, Some(tag)) => match self.tags(r, budget) {
                Ok(tags) => OciError::UnknownTag {
                    repository: r.repository_name(),
                    tag: tag.clone(),
                    tags,
                },
                Err(e) => e,
            },
            _ => OciError::NotFound {
                reference: r.to_string(),
            },
        }
    }

    /// The repository's tags (at most [`MAX_TAGS_SHOWN`], then `…`).
    pub fn tags(&self, r: &Reference, budget: &Budget) -> Result<Vec<String>, OciError> {
        let url = self.url(r, "tags/list", budget)?;
        let response = self.send(
            r,
            false,
            Request::new(Method::GET, url, MAX_SMALL_JSON),
            None,
            budget,
        )?;
        match response.status {
            200..=299 => {}
            404 => {
                return Err(OciError::NotFound {
                    reference: r.repository_name(),
                });
            }
            status => return Err(registry_error(&response, status)),
        }
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let tags: Tags = serde_json::from_slice(&response.body).unwrap_or(Tags { tags: None });
        let mut tags: Vec<String> = tags
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.ends_with(".sig"))
            .map(|t| t.chars().filter(|c| !c.is_control()).take(128).collect())
            .collect();
        tags.sort();
        if tags.len() > MAX_TAGS_SHOWN {
            tags.truncate(MAX_TAGS_SHOWN);
            tags.push("…".into());
        }
        Ok(tags)
    }

    /// The blob `d` of `r`'s repository: from the download cache when there,
    /// else downloaded (at most its size) and checked against its digest.
    pub fn blob(
        &self,
        r: &Reference,
        d: &Descriptor,
        budget: &Budget,
    ) -> Result<Vec<u8>, OciError> {
        let hex = d.hex();
        if !is_sha256_hex(hex) {
            return Err(OciError::BadManifest {
                what: format!("the manifest of {r}"),
                why: format!("`{}` is not a sha256 digest", d.digest),
            });
        }
        if let Some(bytes) = self.cache.get(hex, d.size) {
            return Ok(bytes);
        }
        let what = format!("the blob {} ({}) of {r}", d.digest, d.media_type);
        if self.offline {
            return Err(OciError::NotCached {
                what,
                cache: self.cache.root().to_path_buf(),
            });
        }
        let url = self.url(r, &format!("blobs/{}", d.digest), budget)?;
        let last = std::sync::atomic::AtomicU64::new(0);
        let progress = |received: u64, _total: Option<u64>| {
            let before = last.swap(received, std::sync::atomic::Ordering::Relaxed);
            self.emit(DownloadEvent::Advance(received.saturating_sub(before)));
        };
        let response = self
            .send(
                r,
                false,
                Request::new(Method::GET, url, d.size),
                Some(&progress),
                budget,
            )
            .map_err(|e| over_cap(e, &what))?;
        match response.status {
            200..=299 => {}
            404 => {
                return Err(OciError::NotFound {
                    reference: format!("{}@{}", r.repository_name(), d.digest),
                });
            }
            status => return Err(registry_error(&response, status)),
        }
        let actual = manifest::digest_of(&response.body);
        if actual != d.digest || response.body.len() as u64 != d.size {
            return Err(OciError::DigestMismatch {
                what,
                expected: format!("{} ({} bytes)", d.digest, d.size),
                actual: format!("{actual} ({} bytes)", response.body.len()),
            });
        }
        if let Err(e) = self.cache.put(hex, &response.body) {
            tracing::warn!(error = %crate::error_chain(&e), "cannot cache {}", d.digest);
        }
        Ok(response.body)
    }

    /// Pulls the skill `r` names into a temporary folder: its manifest
    /// checked ([`manifest::read_layout`]), with a key pinned its signature
    /// verified, then every blob downloaded (or taken from the cache) and
    /// checked. Nothing is written outside the temporary folder.
    pub fn pull(&self, r: &Reference, budget: &Budget) -> Result<Pulled, OciError> {
        let (bytes, digest) = self.manifest(r, budget)?;
        let what = format!("the manifest of {r} ({digest})");
        let layout = manifest::read_layout(&bytes, &what)?;
        let signed_by = if self.keys.is_empty() {
            None
        } else {
            Some(self.verify_signature(r, &digest, budget)?)
        };
        let mut blobs: Vec<&Descriptor> = layout.files.iter().map(|(_, d, _)| d).collect();
        blobs.extend(&layout.wasm);
        let missing: Vec<_> = blobs
            .iter()
            .filter(|d| self.cache.get(d.hex(), d.size).is_none())
            .collect();
        if !missing.is_empty() && !self.offline {
            self.emit(DownloadEvent::Start {
                files: missing.len(),
                bytes: missing.iter().map(|d| d.size).sum(),
            });
        }
        let mut contents = Vec::with_capacity(layout.files.len());
        for (rel, d, executable) in &layout.files {
            contents.push((rel.clone(), self.blob(r, d, budget)?, *executable));
        }
        let wasm = match &layout.wasm {
            Some(d) => Some(self.blob(r, d, budget)?),
            None => None,
        };
        self.emit(DownloadEvent::Finish);

        let name = layout
            .title
            .clone()
            .filter(|t| crate::skill::manifest::check_name(t).is_ok())
            .unwrap_or_else(|| "skill".into());
        let workspace = tempfile::Builder::new()
            .prefix("boternity-oci-")
            .tempdir()
            .map_err(|e| IoError::new(IoOp::Create, Path::new("a temporary folder"), e))?;
        let dir = workspace.path().join(&name);
        let staged = crate::fsutil::StagedDir::new_in(workspace.path(), &name)?;
        for (rel, bytes, executable) in &contents {
            staged.write_file(Path::new(rel), bytes, *executable)?;
        }
        staged.commit_new(&dir)?;
        let mut notes = vec![format!(
            "from oci://{r} (manifest {digest}{})",
            match &signed_by {
                Some(key) => format!(", signed by key {}", key.key_id()),
                None => ", no key pinned, signature not checked".into(),
            }
        )];
        if self.settings.plain_http && !r.is_loopback() && signed_by.is_none() {
            notes.push(format!(
                "{} was reached over plain http:// and no registry key is pinned: anyone on the \
                 network path could change what is installed",
                r.registry
            ));
        }
        Ok(Pulled {
            reference: r.clone(),
            digest,
            layout,
            dir,
            workspace,
            wasm,
            signed_by,
            notes,
        })
    }

    // ---- signatures -----------------------------------------------------

    /// The tag a signature of `digest` is kept under for registries without
    /// the referrers API (cosign's scheme).
    pub fn signature_tag(digest: &str) -> String {
        format!("{}.sig", digest.replace(':', "-"))
    }

    /// The signature texts attached to `digest`: its referrers of our
    /// signature type (the referrers API), and the one under the tag
    /// fallback.
    fn signatures(
        &self,
        r: &Reference,
        digest: &str,
        budget: &Budget,
    ) -> Result<Vec<String>, OciError> {
        let mut manifests: Vec<Reference> = Vec::new();
        if !self.offline {
            let url = self.url(
                r,
                &format!(
                    "referrers/{digest}?artifactType={}",
                    encode(SIGNATURE_ARTIFACT)
                ),
                budget,
            )?;
            let request =
                Request::new(Method::GET, url, MAX_MANIFEST_BYTES).header("Accept", INDEX);
            let response = self.send(r, false, request, None, budget)?;
            if (200..300).contains(&response.status)
                && let Ok(index) = serde_json::from_slice::<ImageIndex>(&response.body)
            {
                manifests.extend(
                    index
                        .manifests
                        .iter()
                        .filter(|d| d.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT))
                        .filter(|d| super::reference::check_digest(&d.digest).is_ok())
                        .take(MAX_REFERRERS)
                        .map(|d| r.with_digest(&d.digest)),
                );
            }
        }
        let by_tag = r.with_tag(&Self::signature_tag(digest));
        let mut texts = Vec::new();
        for (i, sig_ref) in manifests.iter().chain(std::iter::once(&by_tag)).enumerate() {
            let fallback = i == manifests.len();
            let bytes = match self.manifest(sig_ref, budget) {
                Ok((bytes, _)) => bytes,
                Err(
                    OciError::UnknownTag { .. }
                    | OciError::NotFound { .. }
                    | OciError::NotCached { .. },
                ) if fallback => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let what = format!("the signature manifest {sig_ref}");
            let m: Manifest = manifest::parse_manifest(&bytes, &what)?;
            if m.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest) {
                continue;
            }
            for layer in m.layers.iter().filter(|l| l.media_type == SIGNATURE_LAYER) {
                if layer.size > MAX_SIGNATURE_BYTES {
                    return Err(OciError::OverCap {
                        what: format!("the signature {}", layer.digest),
                        size: layer.size,
                        max: MAX_SIGNATURE_BYTES,
                    });
                }
                let blob = self.blob(r, layer, budget)?;
                texts.push(String::from_utf8_lossy(&blob).into_owned());
            }
        }
        Ok(texts)
    }

    /// The pinned key whose signature of `digest` verifies: unsigned, or
    /// signed only by keys not pinned (or wrongly), is an error.
    pub fn verify_signature(
        &self,
        r: &Reference,
        digest: &str,
        budget: &Budget,
    ) -> Result<TrustedKey, OciError> {
        let texts = self.signatures(r, digest, budget)?;
        let what = format!("the manifest digest of {r} ({digest})");
        let mut last = None;
        for text in &texts {
            match sign::verify(digest.as_bytes(), text, &self.keys, &what) {
                Ok(key) => return Ok(key),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e.into()),
            None => Err(OciError::Unsigned {
                reference: r.to_string(),
                digest: digest.into(),
                tag: Self::signature_tag(digest),
            }),
        }
    }

    // ---- pushing --------------------------------------------------------

    /// Whether the repository has the blob `d`.
    fn has_blob(&self, r: &Reference, d: &Descriptor, budget: &Budget) -> Result<bool, OciError> {
        let url = self.url(r, &format!("blobs/{}", d.digest), budget)?;
        let response = self.send(r, true, Request::new(Method::HEAD, url, 0), None, budget)?;
        Ok((200..300).contains(&response.status))
    }

    /// Uploads `bytes` as the blob `d` (one POST, one PUT).
    fn upload(
        &self,
        r: &Reference,
        d: &Descriptor,
        bytes: &[u8],
        budget: &Budget,
    ) -> Result<(), OciError> {
        let url = self.url(r, "blobs/uploads/", budget)?;
        let response = self.send(
            r,
            true,
            Request::new(Method::POST, url.clone(), MAX_SMALL_JSON).body(&[]),
            None,
            budget,
        )?;
        if response.status != 202 {
            return Err(registry_error(&response, response.status));
        }
        let location = response
            .header("location")
            .ok_or_else(|| OciError::Registry {
                url: url.clone(),
                status: response.status,
                message: "the upload was accepted without a Location".into(),
            })?;
        let origin = self.origin(r, budget)?;
        let mut put = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{origin}{location}")
        } else {
            return Err(OciError::Registry {
                url,
                status: response.status,
                message: format!("the upload Location `{location}` is not a URL"),
            });
        };
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str(&format!("digest={}", encode(&d.digest)));
        let request = Request::new(Method::PUT, put, MAX_SMALL_JSON)
            .header("Content-Type", "application/octet-stream")
            .body(bytes);
        let response = self.send(r, true, request, None, budget)?;
        if response.status != 201 {
            return Err(registry_error(&response, response.status));
        }
        Ok(())
    }

    /// Puts `bytes` (an image manifest) at `reference` (a tag or digest).
    fn put_manifest(
        &self,
        r: &Reference,
        reference: &str,
        bytes: &[u8],
        budget: &Budget,
    ) -> Result<(), OciError> {
        let url = self.url(r, &format!("manifests/{reference}"), budget)?;
        let request = Request::new(Method::PUT, url, MAX_SMALL_JSON)
            .header("Content-Type", MANIFEST)
            .body(bytes);
        let response = self.send(r, true, request, None, budget)?;
        if !(200..300).contains(&response.status) {
            return Err(registry_error(&response, response.status));
        }
        Ok(())
    }

    /// Pushes `built` to `r` (its tag, else `latest`): each blob the
    /// repository lacks is uploaded, then the manifest.
    pub fn push(
        &self,
        r: &Reference,
        built: &manifest::Built,
        budget: &Budget,
    ) -> Result<Pushed, OciError> {
        let mut pushed = Pushed {
            reference: r.clone(),
            digest: built.digest.clone(),
            uploaded: 0,
            skipped: 0,
            bytes: 0,
        };
        let mut seen = std::collections::HashSet::new();
        for (d, bytes) in &built.blobs {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            if self.has_blob(r, d, budget)? {
                pushed.skipped += 1;
                continue;
            }
            self.upload(r, d, bytes, budget)?;
            pushed.uploaded += 1;
            pushed.bytes += bytes.len() as u64;
        }
        self.put_manifest(
            r,
            r.tag.as_deref().unwrap_or("latest"),
            &built.manifest_bytes,
            budget,
        )?;
        Ok(pushed)
    }

    /// Pushes `signature` (minisign's text over the manifest digest
    /// `digest`) as a referrer of that manifest, tagged
    /// [`OciClient::signature_tag`] for registries without the referrers
    /// API. Returns the signature manifest's digest.
    pub fn push_signature(
        &self,
        r: &Reference,
        subject: &Descriptor,
        signature: &str,
        budget: &Budget,
    ) -> Result<String, OciError> {
        let layer = Descriptor::of(SIGNATURE_LAYER, signature.as_bytes());
        let config = Descriptor::of(EMPTY, EMPTY_JSON);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST.into()),
            artifact_type: Some(SIGNATURE_ARTIFACT.into()),
            config: config.clone(),
            layers: vec![layer.clone()],
            subject: Some(subject.clone()),
            annotations: Default::default(),
        };
        let bytes = manifest.to_json();
        let built = manifest::Built {
            blobs: vec![
                (config, EMPTY_JSON.to_vec()),
                (layer, signature.as_bytes().to_vec()),
            ],
            digest: manifest::digest_of(&bytes),
            manifest,
            manifest_bytes: bytes,
        };
        let tagged = r.with_tag(&Self::signature_tag(&subject.digest));
        self.push(&tagged, &built, budget).map(|p| p.digest)
    }
}

/// The trusted roots: the system's bundle and the CA file, when given
/// (`None`: Mozilla's, bundled).
fn roots(settings: &OciSettings) -> Result<Option<Vec<Vec<u8>>>, OciError> {
    if settings.ca_file.is_none() && settings.system_roots.is_none() {
        return Ok(None);
    }
    let mut roots = Vec::new();
    let mut read = |path: &Path, required: bool| -> Result<(), OciError> {
        let fail = |why: String| OciError::Certificates {
            path: path.to_path_buf(),
            why,
        };
        let pem = match crate::fsutil::read_capped(path, 16 * 1024 * 1024) {
            Ok(pem) => pem,
            Err(_) if !required => return Ok(()),
            Err(e) => return Err(fail(e.to_string())),
        };
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => roots.push(cert.der().to_vec()),
                Ok(_) => {}
                Err(e) if required => return Err(fail(e.to_string())),
                Err(_) => {}
            }
        }
        if required && roots.len() == before {
            return Err(fail("it holds no PEM certificate".into()));
        }
        Ok(())
    };
    if let Some(system) = &settings.system_roots {
        read(system, false)?;
    }
    if let Some(ca) = &settings.ca_file {
        read(ca, true)?;
    }
    Ok(Some(roots))
}

/// Whether a TLS handshake failed because the server answered with
/// something that is not TLS (a plain HTTP server's error page).
fn answers_plain_http(err: &ureq::Error) -> bool {
    let not_tls = |e: &rustls::Error| matches!(e, rustls::Error::InvalidMessage(_));
    match err {
        ureq::Error::Rustls(e) => not_tls(e),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(not_tls),
        _ => false,
    }
}

/// Whether `url` is on `origin` (`scheme://host[:port]`).
fn same_origin(url: &str, origin: &str) -> bool {
    url.strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// An HTTP size refusal of `what`, said as a cap.
fn over_cap(err: OciError, what: &str) -> OciError {
    match err {
        OciError::Http(HttpError::TooLarge { size, max, .. }) => OciError::OverCap {
            what: what.into(),
            size,
            max,
        },
        other => other,
    }
}

/// An unexpected answer, with the registry's own error message (the
/// distribution spec's `{"errors":[{"code","message"}]}`) when it gave one.
fn registry_error(response: &Response, status: u16) -> OciError {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let message = serde_json::from_slice::<Errors>(&response.body)
        .map(|e| {
            e.errors
                .iter()
                .take(3)
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    OciError::Registry {
        url: response.url.clone(),
        status,
        message: message
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect(),
    }
}
