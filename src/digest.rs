//! Content digests: sha256 of bytes, as lower-case hex (a skill folder's
//! tree digest is [`crate::skill::files::sha256`]).

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 and size of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    pub sha256: String,
    pub size: u64,
}

impl FileDigest {
    pub fn of(bytes: &[u8]) -> FileDigest {
        FileDigest {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        }
    }
}
