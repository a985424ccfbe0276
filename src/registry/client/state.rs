//! What a client remembers of the registries it installed from, to refuse a
//! replayed older index (TUF's rollback attack): for each registry URL (or
//! folder) and the key that signed its index, the newest `serial` it
//! accepted. One small JSON file each, in `<cache>/registry-state/`
//! (`Folders::registry_state_dir`), named `<first 16 hex digits of the URL's
//! sha256>-<KEY ID>.json` and holding the URL and key in words.
//!
//! Deleting a file (or the folder) resets that registry's protection: the
//! next index accepted starts it over, whatever its serial. Only indexes
//! verified against a pinned key are remembered: without a key anyone on the
//! path can write any serial.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::fsutil::{IoError, IoOp, IoResultExt};

/// Largest state file read (they are a few hundred bytes).
const MAX_STATE_FILE: u64 = 64 * 1024;

/// The state folder (`Folders::registry_state_dir`).
#[derive(Debug, Clone)]
pub struct RegistryState {
    root: PathBuf,
}

/// One registry and key: the newest index accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub url: String,
    /// The key id that signed it.
    pub key: String,
    pub serial: u64,
    /// That index's `expires`, for people reading the file.
    #[serde(default)]
    pub expires: Option<String>,
    /// When it was accepted (RFC 3339).
    #[serde(default)]
    pub accepted: Option<String>,
}

/// How an index's serial compares with what was accepted before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nothing was remembered: this serial is now.
    First,
    /// At least as new as the newest accepted (remembered when newer).
    Current { before: u64 },
    /// Older than one accepted before: a rollback.
    Older { newest: u64, file: PathBuf },
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "{} (what this machine remembers of a registry, to refuse replayed old indexes) is \
         corrupt; delete it to start that registry's protection over",
        path.display()
    )]
    Corrupt { path: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl RegistryState {
    pub fn new(root: PathBuf) -> RegistryState {
        RegistryState { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file remembering registry `url` signed by key `key_id`.
    pub fn file(&self, url: &str, key_id: &str) -> PathBuf {
        let hash = sha256_hex(url.as_bytes());
        let key: String = key_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect();
        self.root.join(format!("{}-{key}.json", &hash[..16]))
    }

    /// What is remembered of `url` and `key_id`, if anything.
    pub fn get(&self, url: &str, key_id: &str) -> Result<Option<Remembered>, StateError> {
        read(&self.file(url, key_id))
    }

    /// Compares `serial` with the newest accepted from `url` and `key_id`,
    /// and remembers it when it is newer: one process at a time (a lock in
    /// the folder), the file written atomically.
    pub fn accept(
        &self,
        url: &str,
        key_id: &str,
        serial: u64,
        expires: Option<&str>,
    ) -> Result<Standing, StateError> {
        std::fs::create_dir_all(&self.root).on(IoOp::Create, &self.root)?;
        let lock_path = self.root.join(".lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .on(IoOp::Create, &lock_path)?;
        lock.lock().on(IoOp::Lock, &lock_path)?;
        let file = self.file(url, key_id);
        let standing = match read(&file)? {
            Some(old) if serial < old.serial => {
                return Ok(Standing::Older {
                    newest: old.serial,
                    file,
                });
            }
            Some(old) if serial == old.serial => return Ok(Standing::Current { before: serial }),
            Some(old) => Standing::Current { before: old.serial },
            None => Standing::First,
        };
        let remembered = Remembered {
            url: url.into(),
            key: key_id.into(),
            serial,
            expires: expires.map(str::to_string),
            accepted: Some(crate::registry::index::format_time(
                std::time::SystemTime::now(),
            )),
        };
        let mut bytes = serde_json::to_vec_pretty(&remembered).unwrap_or_default();
        bytes.push(b'\n');
        crate::fsutil::write_atomically(&file, &bytes)?;
        Ok(standing)
    }
}

fn read(path: &Path) -> Result<Option<Remembered>, StateError> {
    match crate::fsutil::read_capped(path, MAX_STATE_FILE) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| StateError::Corrupt { path: path.into() }),
        Err(crate::fsutil::CappedReadError::Io(e))
            if e.source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(crate::fsutil::CappedReadError::Io(e)) => Err(e.into()),
        Err(_) => Err(StateError::Corrupt { path: path.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_remembered_per_registry_and_key_and_never_go_back() {
        let tmp = tempfile::tempdir().unwrap();
        let state = RegistryState::new(tmp.path().join("registry-state"));
        let url = "https://example.org/skills";
        assert_eq!(state.accept(url, "AB", 5, None).unwrap(), Standing::First);
        assert_eq!(
            state
                .accept(url, "AB", 9, Some("2030-01-01T00:00:00Z"))
                .unwrap(),
            Standing::Current { before: 5 }
        );
        assert_eq!(
            state.accept(url, "AB", 9, None).unwrap(),
            Standing::Current { before: 9 }
        );
        let older = state.accept(url, "AB", 7, None).unwrap();
        assert!(
            matches!(older, Standing::Older { newest: 9, .. }),
            "{older:?}"
        );
        // Still 9: an older serial is never remembered.
        assert_eq!(state.get(url, "AB").unwrap().unwrap().serial, 9);
        // Another key, another registry: their own.
        assert_eq!(state.accept(url, "CD", 1, None).unwrap(), Standing::First);
        assert_eq!(
            state
                .accept("https://other.example", "AB", 1, None)
                .unwrap(),
            Standing::First
        );
        // A corrupt file is an error naming it, not a reset.
        std::fs::write(state.file(url, "AB"), b"{nonsense").unwrap();
        let err = state.accept(url, "AB", 1, None).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    }
}
