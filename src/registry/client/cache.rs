//! The download cache, `<cache>/downloads/`: every file fetched from a
//! registry kept under its sha256 (`sha256/<hex>`), so a reinstall of
//! unchanged bytes downloads nothing and `--offline` installs from what was
//! fetched before; and each registry's `index.json` with its `ETag` and
//! signature (`index/<sha256 of the URL>/`), revalidated with
//! `If-None-Match`. Everything here can be deleted; a read is re-hashed
//! before it is trusted.

use std::path::{Path, PathBuf};

use crate::digest::sha256_hex;
use crate::fsutil::{IoError, write_atomically};

/// The download cache in `root` (`Folders::downloads_dir`).
#[derive(Debug, Clone)]
pub struct DownloadCache {
    root: PathBuf,
}

/// A cached document (an index or its signature) and its `ETag`.
#[derive(Debug, Clone)]
pub struct CachedDocument {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

impl DownloadCache {
    pub fn new(root: PathBuf) -> DownloadCache {
        DownloadCache { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(sha256)
    }

    /// The bytes with this sha256 and size, if cached and intact.
    pub fn get(&self, sha256: &str, size: u64) -> Option<Vec<u8>> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = crate::fsutil::read_capped(&self.blob(sha256), size).ok()?;
        (bytes.len() as u64 == size && sha256_hex(&bytes) == sha256).then_some(bytes)
    }

    /// Keeps `bytes` (already checked against `sha256`).
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), IoError> {
        write_atomically(&self.blob(sha256), bytes)
    }

    fn document_dir(&self, url: &str) -> PathBuf {
        self.root.join("index").join(sha256_hex(url.as_bytes()))
    }

    /// The cached copy of the document at `url`.
    pub fn document(&self, url: &str, max: u64) -> Option<CachedDocument> {
        let dir = self.document_dir(url);
        let bytes = crate::fsutil::read_capped(&dir.join("body"), max).ok()?;
        let etag = std::fs::read_to_string(dir.join("etag"))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Some(CachedDocument { bytes, etag })
    }

    /// Keeps the document at `url` with its `ETag`.
    pub fn put_document(&self, url: &str, doc: &CachedDocument) -> Result<(), IoError> {
        let dir = self.document_dir(url);
        // The old tag goes first: a body never sits beside a tag not its own.
        write_atomically(&dir.join("etag"), b"")?;
        write_atomically(&dir.join("body"), &doc.bytes)?;
        write_atomically(
            &dir.join("etag"),
            doc.etag.as_deref().unwrap_or("").as_bytes(),
        )?;
        write_atomically(&dir.join("url"), url.as_bytes())
    }
}
