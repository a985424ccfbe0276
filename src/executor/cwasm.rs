//! When a `.cwasm` may be deserialized. Deserializing runs no checks on the
//! machine code inside, so a `.cwasm` is loaded only with a record this tool
//! wrote: the file's sha256, the engine's compatibility fingerprint, the
//! component it came from, and an HMAC-SHA256 over all three made with a key
//! kept on this machine. Without the key nobody can vouch for a `.cwasm`, not
//! even someone who can write the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What authorizes loading one `.cwasm`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CwasmRecord {
    /// sha256 of the `.cwasm` file.
    pub sha256: String,
    /// The engine's compatibility fingerprint (wasmtime version and settings).
    pub engine: String,
    /// sha256 of the component it was compiled from.
    pub wasm_sha256: String,
    /// HMAC-SHA256 of the three above with this machine's key.
    pub mac: String,
}

/// The machine-local key records are signed with.
#[derive(Clone)]
pub struct CwasmKey([u8; 32]);

impl std::fmt::Debug for CwasmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CwasmKey(..)")
    }
}

impl CwasmKey {
    /// Reads the key at `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<CwasmKey> {
        if let Ok(bytes) = std::fs::read(path)
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(CwasmKey(key));
        }
        let key = CwasmKey::random()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(&key.0)?;
                file.sync_all()?;
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(path)?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map(CwasmKey)
                    .map_err(|_| {
                        std::io::Error::other(format!("{} is not a 32-byte key", path.display()))
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// A key for this process only (its records are not trusted by others).
    pub fn random() -> std::io::Result<CwasmKey> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(CwasmKey(key))
    }

    /// An HMAC over `parts`, each length-prefixed (callers start with a
    /// label of their own, so no two uses of the key can collide).
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    fn mac(&self, sha256: &str, engine: &str, wasm_sha256: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [sha256, engine, wasm_sha256] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A signed record.
    pub fn sign(&self, sha256: String, engine: String, wasm_sha256: String) -> CwasmRecord {
        let mac = hex::encode(
            self.mac(&sha256, &engine, &wasm_sha256)
                .finalize()
                .into_bytes(),
        );
        CwasmRecord {
            sha256,
            engine,
            wasm_sha256,
            mac,
        }
    }

    /// Whether this key signed `record` (constant-time comparison).
    pub fn verify(&self, record: &CwasmRecord) -> bool {
        let Ok(tag) = hex::decode(&record.mac) else {
            return false;
        };
        self.mac(&record.sha256, &record.engine, &record.wasm_sha256)
            .verify_slice(&tag)
            .is_ok()
    }
}

/// Where `build-skill --cwasm` puts a component's `.cwasm` and its record.
pub fn sidecar_paths(wasm: &Path) -> (PathBuf, PathBuf) {
    (
        wasm.with_extension("cwasm"),
        wasm.with_extension("cwasm.json"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_verify_only_with_the_key_that_signed_them() {
        let key = CwasmKey::random().unwrap();
        let record = key.sign("a".into(), "e".into(), "w".into());
        assert!(key.verify(&record));
        assert!(!CwasmKey::random().unwrap().verify(&record));
        let mut forged = record.clone();
        forged.sha256 = "b".into();
        assert!(!key.verify(&forged));
    }

    #[test]
    fn the_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        let a = CwasmKey::load_or_create(&path).unwrap();
        let b = CwasmKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
