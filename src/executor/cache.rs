//! The compile cache: machine code this tool compiled, kept on disk so the
//! next process deserializes instead of compiling (`run file.wasm`, `bench`),
//! and this tool's own copy of every installed `.cwasm` it has verified, so a
//! later load does not hash the installed file again.
//!
//! An entry is `<component sha256>-<engine>.cwasm` and `….json` in a folder
//! only this user can open (mode 0700, checked), holding the same signed
//! [`CwasmRecord`] as an installed `.cwasm`, plus the entry file's identity
//! and timestamps (device, inode, size, mtime, ctime) and those of the
//! installed files it stands for, all under one HMAC made with the machine's
//! key. An entry is trusted without hashing only while its file still has
//! exactly those metadata: any write to a file changes its ctime, which
//! nobody can set back (short of changing the system clock). A stamp taken in
//! the same clock tick as the file's last change is "racy" (a change in that
//! tick would keep the ctime) and is never trusted without hashing, as in git.
//!
//! Anything wrong with an entry (corrupt, stale, unsigned, changed, another
//! owner) makes it a miss, never an error: the component is compiled again and
//! the entry overwritten. The folder is bounded in size; the least recently
//! used entries (by the `.json`'s mtime, touched on every hit) go first.

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cwasm::{CwasmKey, CwasmRecord};
use crate::digest::sha256_hex;

/// The default bound on the cache folder's size.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Installed copies remembered per entry (the oldest are forgotten).
const MAX_SOURCES: usize = 8;

/// Where compiled components are cached, and how much room they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCache {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

impl CompileCache {
    /// The cache in `dir`, bounded by [`DEFAULT_MAX_BYTES`].
    pub fn new(dir: PathBuf) -> CompileCache {
        CompileCache {
            dir,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    fn stem(wasm_sha256: &str, engine: &str) -> String {
        format!("{wasm_sha256}-{}", &engine[..engine.len().min(16)])
    }

    /// The entry's `.cwasm` and `.json`.
    pub fn entry_paths(&self, wasm_sha256: &str, engine: &str) -> (PathBuf, PathBuf) {
        let stem = Self::stem(wasm_sha256, engine);
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.json")),
        )
    }

    /// Whether the folder is ours alone (created 0700 when missing).
    fn private_dir(&self) -> bool {
        if !self.dir.is_dir() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir);
        }
        match std::fs::symlink_metadata(&self.dir) {
            Ok(meta) => meta.is_dir() && meta.uid() == euid() && meta.mode() & 0o077 == 0,
            Err(_) => false,
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The clock file timestamps come from, at its own resolution.
fn coarse_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return 0; // no clock: every stamp is racy, so files are hashed
    }
    ts.tv_sec.saturating_mul(1_000_000_000) + ts.tv_nsec
}

/// A file's identity and timestamps when it was verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    /// The coarse clock just after the metadata was read.
    stamped_ns: i64,
}

impl Stamp {
    /// The stamp of `meta`, read just now.
    pub(crate) fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            stamped_ns: coarse_now_ns(),
        }
    }

    /// Whether a file with `meta` is, byte for byte, the file stamped: same
    /// inode, size and timestamps, and the stamp was not taken in the tick
    /// of the file's last change.
    pub(crate) fn vouches_for(&self, meta: &Metadata) -> bool {
        self.ctime_ns < self.stamped_ns
            && self.dev == meta.dev()
            && self.ino == meta.ino()
            && self.size == meta.size()
            && self.mtime_ns == meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
            && self.ctime_ns == meta.ctime() * 1_000_000_000 + meta.ctime_nsec()
    }
}

/// An installed `.cwasm` this entry stands for: its sha256 (as in its
/// record) and its stamp when it was hashed and matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Source {
    sha256: String,
    stamp: Stamp,
}

/// The `.json` of an entry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    pub(crate) record: CwasmRecord,
    file: Stamp,
    #[serde(default)]
    sources: Vec<Source>,
    mac: String,
}

fn entry_mac(
    key: &CwasmKey,
    record: &CwasmRecord,
    file: &Stamp,
    sources: &[Source],
) -> Hmac<Sha256> {
    let body = serde_json::to_vec(&(record, file, sources)).unwrap_or_default();
    key.hmac(&[b"boternity-cache-entry-v1", &body])
}

impl Entry {
    fn sign(key: &CwasmKey, record: CwasmRecord, file: Stamp, sources: Vec<Source>) -> Entry {
        let mac = hex::encode(
            entry_mac(key, &record, &file, &sources)
                .finalize()
                .into_bytes(),
        );
        Entry {
            record,
            file,
            sources,
            mac,
        }
    }

    fn verify(&self, key: &CwasmKey) -> bool {
        let Ok(tag) = hex::decode(&self.mac) else {
            return false;
        };
        entry_mac(key, &self.record, &self.file, &self.sources)
            .verify_slice(&tag)
            .is_ok()
            && key.verify(&self.record)
    }

    /// Whether the entry's own file, with `meta`, is unchanged since stamped.
    pub(crate) fn file_vouches_for(&self, meta: &Metadata) -> bool {
        self.file.vouches_for(meta)
    }

    /// Whether an installed `.cwasm` with this sha256 and metadata was
    /// verified before and has not changed since.
    pub(crate) fn vouches_for_source(&self, sha256: &str, meta: &Metadata) -> bool {
        self.sources
            .iter()
            .any(|s| s.sha256 == sha256 && s.stamp.vouches_for(meta))
    }
}

/// A usable entry.
pub(crate) enum Hit {
    /// Its file is unchanged since it was stamped: map it as it is.
    Unchanged { cwasm: PathBuf, entry: Entry },
    /// It had to be hashed (racy stamp, or moved by a backup): these bytes,
    /// which match its record.
    Hashed { bytes: Vec<u8>, entry: Entry },
}

impl Hit {
    pub(crate) fn entry(&self) -> &Entry {
        match self {
            Hit::Unchanged { entry, .. } | Hit::Hashed { entry, .. } => entry,
        }
    }
}

/// A file's metadata, without following a symlink, only if it is a regular
/// file that only we can write, with no other name.
pub(crate) fn private_file_meta(path: &Path) -> Option<Metadata> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    (meta.is_file() && meta.uid() == euid() && meta.mode() & 0o022 == 0 && meta.nlink() == 1)
        .then_some(meta)
}

/// Reads a file through one descriptor, checking it did not change while it
/// was read: the bytes and the metadata they belong to.
pub(crate) fn read_stable(path: &Path) -> std::io::Result<(Vec<u8>, Metadata)> {
    let mut file = File::open(path)?;
    let before = file.metadata()?;
    let mut bytes = Vec::with_capacity(before.len() as usize);
    file.read_to_end(&mut bytes)?;
    let after = file.metadata()?;
    let same = before.ino() == after.ino()
        && before.size() == after.size()
        && bytes.len() as u64 == after.size()
        && before.ctime() == after.ctime()
        && before.ctime_nsec() == after.ctime_nsec();
    if !same {
        return Err(std::io::Error::other("the file changed while it was read"));
    }
    Ok((bytes, after))
}

impl CompileCache {
    /// The entry for this component and engine, if there is a trustworthy one.
    pub(crate) fn lookup(&self, key: &CwasmKey, wasm_sha256: &str, engine: &str) -> Option<Hit> {
        let (cwasm, json) = self.entry_paths(wasm_sha256, engine);
        let text = std::fs::read(&json).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        if !entry.verify(key)
            || entry.record.engine != engine
            || entry.record.wasm_sha256 != wasm_sha256
        {
            tracing::debug!(entry = %json.display(), "compile cache entry not signed for this engine and component");
            return None;
        }
        if !self.private_dir() {
            return None;
        }
        let meta = private_file_meta(&cwasm)?;
        touch(&json);
        if entry.file.vouches_for(&meta) {
            return Some(Hit::Unchanged { cwasm, entry });
        }
        // Changed metadata or a racy stamp: only the hash can tell.
        let (bytes, meta) = read_stable(&cwasm).ok()?;
        if sha256_hex(&bytes) != entry.record.sha256 {
            tracing::debug!(entry = %cwasm.display(), "compile cache entry changed; recompiling");
            return None;
        }
        let entry = Entry::sign(key, entry.record, Stamp::of(&meta), entry.sources);
        let _ = write_atomic(
            &self.dir,
            &json,
            &serde_json::to_vec(&entry).unwrap_or_default(),
            false,
        );
        Some(Hit::Hashed { bytes, entry })
    }

    /// Stores `cwasm` (whose signed `record` says what it is) as the entry
    /// of its component, remembering `source` (an installed copy verified
    /// just now); then keeps the folder under its bound. Failures only cost
    /// a later recompile, so they are logged, not returned.
    pub(crate) fn insert(
        &self,
        key: &CwasmKey,
        record: &CwasmRecord,
        cwasm: &[u8],
        source: Option<(String, Metadata)>,
    ) {
        if let Err(e) = self.try_insert(key, record, cwasm, source) {
            tracing::debug!(
                "cannot write the compile cache in {}: {e}",
                self.dir.display()
            );
        }
        self.evict();
    }

    fn try_insert(
        &self,
        key: &CwasmKey,
        record: &CwasmRecord,
        cwasm: &[u8],
        source: Option<(String, Metadata)>,
    ) -> std::io::Result<()> {
        if !self.private_dir() {
            return Err(std::io::Error::other(
                "the cache folder is not private to this user",
            ));
        }
        let (cwasm_path, json) = self.entry_paths(&record.wasm_sha256, &record.engine);
        // Keep the installed copies an existing, valid entry stands for.
        let mut sources: Vec<Source> = std::fs::read(&json)
            .ok()
            .and_then(|t| serde_json::from_slice::<Entry>(&t).ok())
            .filter(|e| e.verify(key))
            .map(|e| e.sources)
            .unwrap_or_default();
        let file = match private_file_meta(&cwasm_path)
            .filter(|m| m.size() == cwasm.len() as u64)
            .and_then(|_| read_stable(&cwasm_path).ok())
            .filter(|(bytes, _)| bytes == cwasm)
        {
            // The same bytes are already there (another process wrote them).
            Some((_, meta)) => Stamp::of(&meta),
            None => {
                sources.clear();
                write_atomic(&self.dir, &cwasm_path, cwasm, true)?;
                Stamp::of(&std::fs::symlink_metadata(&cwasm_path)?)
            }
        };
        if let Some((sha256, meta)) = source {
            sources.retain(|s| s.stamp.ino != meta.ino() || s.stamp.dev != meta.dev());
            sources.push(Source {
                sha256,
                stamp: Stamp::of(&meta),
            });
            if sources.len() > MAX_SOURCES {
                sources.remove(0);
            }
        }
        let entry = Entry::sign(key, record.clone(), file, sources);
        write_atomic(
            &self.dir,
            &json,
            &serde_json::to_vec(&entry).unwrap_or_default(),
            false,
        )
    }

    /// Remembers that an installed `.cwasm` (sha256 `sha256`, metadata
    /// `meta`) matches the entry `hit` came from.
    pub(crate) fn add_source(&self, key: &CwasmKey, entry: &Entry, sha256: &str, meta: &Metadata) {
        let (_, json) = self.entry_paths(&entry.record.wasm_sha256, &entry.record.engine);
        let mut sources = entry.sources.clone();
        sources.retain(|s| s.stamp.ino != meta.ino() || s.stamp.dev != meta.dev());
        sources.push(Source {
            sha256: sha256.to_string(),
            stamp: Stamp::of(meta),
        });
        if sources.len() > MAX_SOURCES {
            sources.remove(0);
        }
        let entry = Entry::sign(key, entry.record.clone(), entry.file.clone(), sources);
        let _ = write_atomic(
            &self.dir,
            &json,
            &serde_json::to_vec(&entry).unwrap_or_default(),
            false,
        );
    }

    /// Deletes the least recently used entries until the folder is within
    /// its bound (temporary files of crashed writers included).
    pub fn evict(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        // stem -> (last use, bytes, files)
        let mut entries: std::collections::HashMap<String, (SystemTime, u64, Vec<PathBuf>)> =
            Default::default();
        let mut total = 0u64;
        for item in dir.flatten() {
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".json")
                .or_else(|| name.strip_suffix(".cwasm"))
                .unwrap_or(&name)
                .to_string();
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            total += meta.len();
            let slot = entries
                .entry(stem)
                .or_insert((SystemTime::UNIX_EPOCH, 0, Vec::new()));
            // The `.json` is touched on use; a lone file counts by its own mtime.
            if name.ends_with(".json") || slot.0 == SystemTime::UNIX_EPOCH {
                slot.0 = slot.0.max(used);
            }
            slot.1 += meta.len();
            slot.2.push(path);
        }
        if total <= self.max_bytes {
            return;
        }
        let mut entries: Vec<_> = entries.into_values().collect();
        entries.sort_by_key(|(used, _, _)| *used);
        for (_, bytes, files) in entries {
            if total <= self.max_bytes {
                break;
            }
            // The `.json` first: without it the `.cwasm` is never used.
            let mut files = files;
            files.sort_by_key(|p| p.extension().is_none_or(|e| e != "json"));
            for file in files {
                let _ = std::fs::remove_file(file);
            }
            total = total.saturating_sub(bytes);
        }
    }
}

/// Marks an entry as just used (its `.json`: the `.cwasm`'s own timestamps
/// are part of its stamp).
fn touch(json: &Path) {
    if let Ok(file) = File::open(json) {
        let now = SystemTime::now();
        let _ = file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(now)
                .set_modified(now),
        );
    }
}

/// Writes `path` through a private temporary file in `dir`, so a reader
/// never sees a partial file; `sync`: on disk before the rename (machine
/// code, which a signed `.json` written after it will vouch for).
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        hex::encode(nonce)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
