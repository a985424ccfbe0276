//! Signing a registry's `index.json`, in minisign's format (the `minisign`
//! crate, so Debian's `minisign -Vm index.json -p key.pub` verifies what we
//! write): `keygen` writes a key pair, `sign` writes `index.json.minisig`
//! beside the index, and installs verify it against the keys they pin.
//!
//! The index holds every file's size and sha256, so one signature over it
//! covers every byte a registry serves. It also holds the index's `serial`
//! and `expires` ([`crate::registry::index::Index::stamp`]): [`sign_index`]
//! stamps the index anew before signing it, so every signature covers a
//! serial larger than the last and a fresh expiry, inside the signed bytes
//! (minisign signs the whole file; `minisign -Vm` still verifies it).

use std::path::{Path, PathBuf};

use crate::fsutil::{IoError, IoOp, IoResultExt};

/// What a signature's file name adds to the signed file's.
pub const SIGNATURE_SUFFIX: &str = ".minisig";
/// What a public key's file name adds to the secret key's.
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";
/// Largest key or signature file read (they are a few hundred bytes).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key could not be made or used, or a signature did not verify.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{} exists; a key is never overwritten: remove it or choose another path", path.display())]
    KeyExists { path: PathBuf },
    #[error("cannot generate a key pair")]
    Generate(#[source] minisign::PError),
    #[error("{} is not a minisign secret key", path.display())]
    BadSecretKey {
        path: PathBuf,
        #[source]
        source: minisign::PError,
    },
    #[error("{} is encrypted with a password, and none was given", path.display())]
    PasswordNeeded { path: PathBuf },
    #[error("cannot decrypt {} with the password from {from} (wrong password?)", path.display())]
    WrongPassword {
        path: PathBuf,
        /// Where the password came from (e.g. `the variable X`).
        from: String,
        #[source]
        source: minisign::PError,
    },
    #[error("the password variable `{var}` is not set (or not UTF-8)")]
    PasswordUnset { var: String },
    #[error("`{key}` is neither a minisign public key file nor a base64 public key")]
    BadPublicKey {
        key: String,
        #[source]
        source: minisign::PError,
    },
    #[error("cannot sign {what}")]
    Sign {
        what: String,
        #[source]
        source: minisign::PError,
    },
    #[error("{what} is not a minisign signature")]
    BadSignature {
        what: String,
        #[source]
        source: minisign::PError,
    },
    #[error(
        "{what} is signed by key {signed_by}, which is not pinned (pinned: {}); \
         the registry was re-signed by someone else, or the wrong key is pinned",
        pinned.join(", ")
    )]
    UnknownSigner {
        what: String,
        signed_by: String,
        pinned: Vec<String>,
    },
    #[error(
        "the signature of {what} does not match its contents (key {key_id}): the index was \
         changed after it was signed; do not use this registry until its publisher re-signs it"
    )]
    Mismatch {
        what: String,
        key_id: String,
        #[source]
        source: minisign::PError,
    },
    #[error(transparent)]
    Index(#[from] crate::registry::index::IndexError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A secret key and how long the indexes it signs stay valid.
#[derive(Debug, Clone)]
pub struct IndexSigner {
    pub key: SigningKey,
    /// From signing to `expires` ([`crate::registry::index::DEFAULT_VALIDITY`]
    /// unless told otherwise).
    pub validity: std::time::Duration,
}

impl IndexSigner {
    /// `key`, with the default validity.
    pub fn new(key: SigningKey) -> IndexSigner {
        IndexSigner {
            key,
            validity: crate::registry::index::DEFAULT_VALIDITY,
        }
    }
}

/// What [`sign_index`] wrote.
#[derive(Debug, Clone)]
pub struct SignedIndex {
    pub signature: PathBuf,
    pub serial: u64,
    pub expires: String,
}

/// Stamps the index at `path` (its serial past `floor`, its own and now;
/// `expires` the signer's validity from now), writes it back and signs it
/// into `path.minisig`. The index is rewritten in this tool's form (entries
/// sorted; fields it does not know are dropped).
pub fn sign_index(path: &Path, signer: &IndexSigner, floor: u64) -> Result<SignedIndex, SignError> {
    let mut index = crate::registry::index::Index::read(path)?;
    index.stamp(floor, Some(signer.validity), std::time::SystemTime::now());
    crate::fsutil::write_atomically(path, &index.to_json())?;
    let signature = signer.key.sign_file(path)?;
    Ok(SignedIndex {
        signature,
        serial: index.serial,
        expires: index.expires.unwrap_or_default(),
    })
}

/// A secret key, decrypted and ready to sign.
#[derive(Clone)]
pub struct SigningKey {
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
    /// Where it was read from.
    pub path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// A public key an install trusts.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pk: minisign::PublicKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({})", self.key_id())
    }
}

/// A key id as minisign prints it (16 upper-case hex digits).
fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    bytes[..keynum.len().min(8)].copy_from_slice(&keynum[..keynum.len().min(8)]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

/// A secret key's password, and where it came from (named in errors).
#[derive(Clone)]
pub struct Password {
    pub value: String,
    /// e.g. `the variable SIGNING_PASSWORD`.
    pub from: String,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(from {})", self.from)
    }
}

/// Writes a new key pair: the secret key to `out` (mode 0600), the public key
/// to `out.pub`. The secret key is encrypted with `password` when given;
/// without one it is not (minisign's `-W`). Never prompts, never overwrites.
pub fn generate(out: &Path, password: Option<String>) -> Result<TrustedKey, SignError> {
    let pub_path = public_key_path(out);
    for path in [out, pub_path.as_path()] {
        if path.exists() {
            return Err(SignError::KeyExists {
                path: path.to_path_buf(),
            });
        }
    }
    let pair = match password {
        Some(password) => minisign::KeyPair::generate_encrypted_keypair(Some(password)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(SignError::Generate)?;
    let sk_box = pair
        .sk
        .to_box(Some("boternity registry secret key"))
        .map_err(SignError::Generate)?;
    let pk_box = pair.pk.to_box().map_err(SignError::Generate)?;
    write_new(out, sk_box.to_string().as_bytes(), 0o600)?;
    write_new(&pub_path, pk_box.to_string().as_bytes(), 0o644)?;
    Ok(TrustedKey { pk: pair.pk })
}

/// `FILE.pub` for the secret key `FILE`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_os_string();
    name.push(PUBLIC_KEY_SUFFIX);
    PathBuf::from(name)
}

/// `index.json.minisig` for `index.json`.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

/// Creates `path` (which must not exist) with `mode`, flushed to disk.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IoError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, mode);
    let mut file = open.open(path).on(IoOp::Create, path)?;
    std::io::Write::write_all(&mut file, bytes).on(IoOp::Write, path)?;
    file.sync_all().on(IoOp::Sync, path)
}

fn read_small(path: &Path) -> Result<String, IoError> {
    let bytes = crate::fsutil::read_capped(path, MAX_KEY_FILE).map_err(|e| match e {
        crate::fsutil::CappedReadError::Io(e) => e,
        other => IoError::new(
            IoOp::Read,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        ),
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl SigningKey {
    /// Reads the secret key `path`, decrypting it with `password` when it
    /// is encrypted.
    pub fn load(path: &Path, password: Option<&Password>) -> Result<SigningKey, SignError> {
        let text = read_small(path)?;
        let sk_box = minisign::SecretKeyBox::from_string(&text).map_err(|source| {
            SignError::BadSecretKey {
                path: path.into(),
                source,
            }
        })?;
        let sk = match password {
            Some(password) => {
                match minisign::SecretKey::from_box(sk_box.clone(), Some(password.value.clone())) {
                    Ok(sk) => sk,
                    // An unencrypted key needs no password: take it as is.
                    Err(_) if minisign::SecretKey::from_unencrypted_box(sk_box.clone()).is_ok() => {
                        minisign::SecretKey::from_unencrypted_box(sk_box).map_err(|source| {
                            SignError::BadSecretKey {
                                path: path.into(),
                                source,
                            }
                        })?
                    }
                    Err(source) => {
                        return Err(SignError::WrongPassword {
                            path: path.into(),
                            from: password.from.clone(),
                            source,
                        });
                    }
                }
            }
            None => minisign::SecretKey::from_unencrypted_box(sk_box).map_err(|source| {
                if source.to_string().contains("encrypted") {
                    SignError::PasswordNeeded { path: path.into() }
                } else {
                    SignError::BadSecretKey {
                        path: path.into(),
                        source,
                    }
                }
            })?,
        };
        let pk = minisign::PublicKey::from_secret_key(&sk).map_err(|source| {
            SignError::BadSecretKey {
                path: path.into(),
                source,
            }
        })?;
        Ok(SigningKey {
            sk,
            pk,
            path: path.into(),
        })
    }

    pub fn key_id(&self) -> String {
        key_id(self.pk.keynum())
    }

    /// The public key that verifies this key's signatures.
    pub fn public(&self) -> TrustedKey {
        TrustedKey {
            pk: self.pk.clone(),
        }
    }

    /// A minisign signature of `bytes` (the text of a `.minisig` file);
    /// `file_name` goes into the signed trusted comment, as minisign does.
    pub fn sign(&self, bytes: &[u8], file_name: &str) -> Result<String, SignError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let trusted = format!("timestamp:{timestamp}\tfile:{file_name}\thashed");
        let signature = minisign::sign(
            Some(&self.pk),
            &self.sk,
            std::io::Cursor::new(bytes),
            Some(&trusted),
            Some("signature from a boternity registry key"),
        )
        .map_err(|source| SignError::Sign {
            what: file_name.into(),
            source,
        })?;
        Ok(signature.into_string())
    }

    /// Signs the file `path` into `path.minisig` (written atomically).
    pub fn sign_file(&self, path: &Path) -> Result<PathBuf, SignError> {
        let bytes = std::fs::read(path).on(IoOp::Read, path)?;
        let name = path
            .file_name()
            .map_or_else(|| "index.json".into(), |n| n.to_string_lossy().into_owned());
        let signature = self.sign(&bytes, &name)?;
        let sig_path = signature_path(path);
        crate::fsutil::write_atomically(&sig_path, signature.as_bytes())?;
        Ok(sig_path)
    }
}

impl TrustedKey {
    /// A public key given as a file (`key.pub`, minisign's format) or as the
    /// base64 key itself (the second line of that file, `RW…`).
    pub fn parse(spec: &str) -> Result<TrustedKey, SignError> {
        let trimmed = spec.trim();
        let path = Path::new(trimmed);
        let parsed = if path.is_file() {
            let text = read_small(path)?;
            minisign::PublicKeyBox::from_string(&text)
                .and_then(|b| b.into_public_key())
                .or_else(|_| minisign::PublicKey::from_base64(text.trim()))
        } else {
            minisign::PublicKey::from_base64(trimmed)
        };
        parsed
            .map(|pk| TrustedKey { pk })
            .map_err(|source| SignError::BadPublicKey {
                key: spec.into(),
                source,
            })
    }

    /// 16 hex digits, as `minisign` prints them.
    pub fn key_id(&self) -> String {
        key_id(self.pk.keynum())
    }

    /// The base64 form (`RW…`), for `BOTERNITY_REGISTRY_KEY`.
    pub fn to_base64(&self) -> String {
        self.pk.to_base64()
    }
}

/// Verifies `signature` (a `.minisig` file's text) over `bytes` against the
/// pinned `keys` (any one suffices). `what` names the signed file in errors.
pub fn verify(
    bytes: &[u8],
    signature: &str,
    keys: &[TrustedKey],
    what: &str,
) -> Result<TrustedKey, SignError> {
    let sig_box = minisign::SignatureBox::from_string(signature).map_err(|source| {
        SignError::BadSignature {
            what: what.into(),
            source,
        }
    })?;
    let signed_by = key_id(sig_box.keynum());
    let Some(key) = keys.iter().find(|k| k.pk.keynum() == sig_box.keynum()) else {
        return Err(SignError::UnknownSigner {
            what: what.into(),
            signed_by,
            pinned: keys.iter().map(TrustedKey::key_id).collect(),
        });
    };
    minisign::verify(
        &key.pk,
        &sig_box,
        std::io::Cursor::new(bytes),
        true,
        false,
        false,
    )
    .map_err(|source| SignError::Mismatch {
        what: what.into(),
        key_id: signed_by,
        source,
    })?;
    Ok(key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_and_refuse_other_keys_and_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("registry.key");
        let public = generate(&key, None).unwrap();
        assert!(matches!(
            generate(&key, None),
            Err(SignError::KeyExists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let signer = SigningKey::load(&key, None).unwrap();
        assert_eq!(signer.public(), public);
        let from_file = TrustedKey::parse(public_key_path(&key).to_str().unwrap()).unwrap();
        let from_text = TrustedKey::parse(&public.to_base64()).unwrap();
        assert_eq!(from_file, from_text);

        let sig = signer.sign(b"{\"skills\":[]}", "index.json").unwrap();
        verify(
            b"{\"skills\":[]}",
            &sig,
            std::slice::from_ref(&from_file),
            "index.json",
        )
        .unwrap();
        let err = verify(b"{\"skills\":[1]}", &sig, &[from_file], "index.json").unwrap_err();
        assert!(matches!(err, SignError::Mismatch { .. }), "{err}");

        let other = tmp.path().join("other.key");
        let other_pub = generate(&other, None).unwrap();
        let err = verify(b"{\"skills\":[]}", &sig, &[other_pub], "index.json").unwrap_err();
        assert!(matches!(err, SignError::UnknownSigner { .. }), "{err}");
    }

    #[test]
    fn encrypted_keys_need_their_password() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k");
        generate(&key, Some("hunter2".into())).unwrap();
        let err = SigningKey::load(&key, None).unwrap_err();
        assert!(matches!(err, SignError::PasswordNeeded { .. }), "{err}");
        let wrong = Password {
            value: "hunter3".into(),
            from: "the variable TEST".into(),
        };
        let err = SigningKey::load(&key, Some(&wrong)).unwrap_err();
        assert!(matches!(err, SignError::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains("the variable TEST"), "{err}");
        let right = Password {
            value: "hunter2".into(),
            from: "the variable TEST".into(),
        };
        SigningKey::load(&key, Some(&right)).unwrap();
    }
}
