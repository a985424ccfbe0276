//! `boternity index merge`: join the indexes of a sharded precompile;
//! `index sign` and `index verify`: its minisign signature, its serial and
//! expiry; `index yank`: withdraw a version (re-signed when a key is given).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use boternity_skills::registry::client::parse_spec;
use boternity_skills::registry::index::{Index, IndexError};
use boternity_skills::registry::sign::{self, IndexSigner, TrustedKey};

use super::args::{AllowExpiredArgs, OutputArgs, SigningArgs};
use super::message::{self, IndexMerged, IndexSigned, IndexVerified, IndexYanked};

/// Work with precompiled registry indexes.
#[derive(clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(clap::Subcommand)]
enum IndexCommand {
    /// Join shard indexes into one (a skill in two shards must be identical).
    ///
    /// The merged index's serial grows past every input's (and --previous's);
    /// yanks in any input, or in --previous, are kept. It is not signed: run
    /// `index sign` on it.
    #[command(
        after_help = "Example:\n  boternity index merge shard-1/index.json shard-2/index.json --previous published.json -o dist/index.json"
    )]
    Merge {
        /// The shard indexes.
        #[arg(required = true)]
        indexes: Vec<PathBuf>,
        /// Where to write the merged index (default: stdout; with
        /// --message-format json, the `index` field of `index-merged`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The index published now (e.g. downloaded from the registry): the
        /// new serial grows past its, and its yanks carry over to the same
        /// versions. Missing file: ignored.
        #[arg(long, value_name = "INDEX")]
        previous: Option<PathBuf>,
        #[command(flatten)]
        format: OutputArgs,
    },
    /// Sign an index into INDEX.minisig (minisign's format).
    ///
    /// The index is first stamped: its serial grows (past its own and the
    /// current time) and it expires --expires-in from now; then signed.
    #[command(
        after_help = "Example:\n  boternity index sign dist/index.json --key registry.key --password-env BOTERNITY_KEY_PASSWORD\n  minisign -Vm dist/index.json -p registry.key.pub   (verifies it too)"
    )]
    Sign {
        /// The index to sign.
        index: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        format: OutputArgs,
    },
    /// Check an index against INDEX.minisig and a public key (exit 1 if it
    /// does not verify, or has expired).
    #[command(
        after_help = "Example:\n  boternity index verify dist/index.json --key registry.key.pub"
    )]
    Verify {
        /// The index to check.
        index: PathBuf,
        /// The public key: FILE.pub, or the base64 key itself.
        #[arg(long, value_name = "FILE.pub|KEY")]
        key: String,
        #[command(flatten)]
        expired: AllowExpiredArgs,
        #[command(flatten)]
        format: OutputArgs,
    },
    /// Mark a version yanked (withdrawn), with a reason; re-sign with --key.
    ///
    /// Installs then take a yanked version only when asked for by its exact
    /// version (with a loud note); `outdated` and `verify` report skills
    /// installed at it. Without --key a stale INDEX.minisig is removed: sign
    /// the index afterwards.
    #[command(
        group = SigningArgs::requires_key("key"),
        after_help = "Examples:\n  boternity index yank dist/index.json word-count@1.2.0 --reason \"leaks the input to the log\" --key registry.key\n  boternity index yank dist/index.json word-count@1.2.0 --undo --key registry.key"
    )]
    Yank {
        /// The index to change.
        index: PathBuf,
        /// The version to yank: NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        spec: String,
        /// Why (shown to everyone who installs it or has it installed).
        #[arg(long, value_name = "TEXT", required_unless_present = "undo")]
        reason: Option<String>,
        /// Un-yank the version instead.
        #[arg(long, conflicts_with = "reason")]
        undo: bool,
        /// Sign the changed index with this secret key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        format: OutputArgs,
    },
}

/// The signing key and how long what it signs stays valid.
#[derive(clap::Args)]
struct KeyArgs {
    /// The secret key (from `boternity keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Signs `index` and says so.
fn sign_and_report(index: &Path, signer: &IndexSigner, json: bool) -> anyhow::Result<()> {
    let signed = sign::sign_index(index, signer, 0)
        .with_context(|| format!("cannot sign {}", index.display()))?;
    if json {
        message::emit(&IndexSigned {
            index,
            signature: &signed.signature,
            key_id: signer.key.key_id(),
            serial: signed.serial,
            expires: &signed.expires,
        });
        return Ok(());
    }
    eprintln!(
        "{:>12} {} with key {} (serial {}, expires {}) -> {}",
        "Signed",
        index.display(),
        signer.key.key_id(),
        signed.serial,
        signed.expires,
        signed.signature.display()
    );
    Ok(())
}

impl Opts {
    /// The subcommand's name, as `command-failed` gives it.
    pub fn name(&self) -> &'static str {
        match self.command {
            IndexCommand::Merge { .. } => "index merge",
            IndexCommand::Sign { .. } => "index sign",
            IndexCommand::Verify { .. } => "index verify",
            IndexCommand::Yank { .. } => "index yank",
        }
    }

    /// The subcommand's `--message-format`.
    pub fn format(&self) -> OutputArgs {
        match &self.command {
            IndexCommand::Merge { format, .. }
            | IndexCommand::Sign { format, .. }
            | IndexCommand::Verify { format, .. }
            | IndexCommand::Yank { format, .. } => *format,
        }
    }

    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            IndexCommand::Merge {
                indexes,
                output,
                previous,
                format,
            } => merge(
                &indexes,
                output.as_deref(),
                previous.as_deref(),
                format.json(),
            ),
            IndexCommand::Sign { index, key, format } => {
                let signer = key.signing.signer(&key.key)?;
                sign_and_report(&index, &signer, format.json())?;
                Ok(ExitCode::SUCCESS)
            }
            IndexCommand::Verify {
                index,
                key,
                expired,
                format,
            } => verify(&index, &key, expired.allow_expired, format.json()),
            IndexCommand::Yank {
                index,
                spec,
                reason,
                undo,
                key,
                signing,
                format,
            } => {
                // The key first: a wrong password changes nothing.
                let signer = match &key {
                    Some(key) => Some(signing.signer(key)?),
                    None => None,
                };
                let reason = if undo { None } else { reason.as_deref() };
                yank(&index, &spec, reason, signer.as_ref(), format.json())
            }
        }
    }
}

fn merge(
    indexes: &[PathBuf],
    output: Option<&Path>,
    previous: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let read: Vec<Index> = indexes
        .iter()
        .map(|p| Index::read(p))
        .collect::<Result<_, _>>()?;
    let mut merged = Index::merge(read)?;
    let mut floor = merged.serial;
    let mut warnings = Vec::new();
    // Writing over an index: it is the previous one too.
    let replaced = match output {
        Some(path) => Index::read_if_exists(path).unwrap_or_else(|e| {
            let warning = format!(
                "{} (the file this merge replaces) is not read as the previous index: {}",
                path.display(),
                boternity_skills::error_chain(&e)
            );
            if json {
                warnings.push(warning);
            } else {
                eprintln!("warning: {warning}");
            }
            None
        }),
        None => None,
    };
    let previous = match previous {
        Some(path) => Index::read_if_exists(path)?,
        None => None,
    };
    for old in replaced.iter().chain(previous.iter()) {
        merged.carry_yanks(old);
        floor = floor.max(old.serial);
    }
    merged.stamp(floor, None, SystemTime::now());
    let bytes = merged.to_json();
    let mut removed_signature = None;
    if let Some(path) = output {
        boternity_skills::fsutil::write_atomically(path, &bytes)?;
        let stale = sign::signature_path(path);
        if std::fs::remove_file(&stale).is_ok() {
            removed_signature = Some(stale);
        }
    }
    if json {
        message::emit(&IndexMerged {
            output,
            inputs: indexes.len(),
            skills: merged.skills.len(),
            serial: merged.serial,
            removed_signature: removed_signature.as_deref(),
            warnings,
            index: match output {
                Some(_) => None,
                None => Some(serde_json::from_slice(&bytes)?),
            },
        });
        return Ok(ExitCode::SUCCESS);
    }
    match output {
        Some(path) => {
            if let Some(stale) = &removed_signature {
                eprintln!(
                    "note: removed {} (it signed the index this merge replaced)",
                    stale.display()
                );
            }
            eprintln!(
                "{:>12} {} skills from {} indexes into {} (serial {}; not signed: \
                 run `boternity index sign`)",
                "Merged",
                merged.skills.len(),
                indexes.len(),
                path.display(),
                merged.serial
            );
        }
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(index: &Path, key: &str, allow_expired: bool, json: bool) -> anyhow::Result<ExitCode> {
    let trusted = TrustedKey::parse(key)?;
    let bytes = std::fs::read(index).with_context(|| format!("cannot read {}", index.display()))?;
    let sig_path = sign::signature_path(index);
    let signature = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "{} is not signed: cannot read {}",
            index.display(),
            sig_path.display()
        )
    })?;
    let name = index.display().to_string();
    sign::verify(&bytes, &signature, std::slice::from_ref(&trusted), &name)?;
    let parsed = Index::from_slice(&bytes, index)?;
    let expires = parsed.expires_at(&name)?;
    let expired = expires.is_some_and(|at| SystemTime::now() > at);
    if !json {
        // The signature holds, whatever the expiry rule says next.
        eprintln!(
            "{:>12} {} is signed by key {} (serial {}, expires {})",
            "Verified",
            index.display(),
            trusted.key_id(),
            parsed.serial,
            parsed
                .expires
                .as_deref()
                .unwrap_or("never: signed before expiry")
        );
    }
    if expired {
        let text = format!(
            "{} expired at {}: installs refuse it (unless --allow-expired); re-sign it with \
             `boternity index sign`",
            index.display(),
            parsed.expires.as_deref().unwrap_or_default()
        );
        if !allow_expired {
            anyhow::bail!("expiry rule: {text}");
        }
        if !json {
            eprintln!("warning: {text}");
        }
    }
    if json {
        message::emit(&IndexVerified {
            index,
            key_id: trusted.key_id(),
            serial: parsed.serial,
            expires: parsed.expires.as_deref(),
            expired,
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn yank(
    index: &Path,
    spec: &str,
    reason: Option<&str>,
    signer: Option<&IndexSigner>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (name, version) = match parse_spec(spec) {
        (name, Some(version)) if !name.is_empty() => (name, version),
        _ => return Err(IndexError::BadSpec { spec: spec.into() }.into()),
    };
    let mut parsed = Index::read(index)?;
    let origin = index.display().to_string();
    parsed.yank(name, version, reason, SystemTime::now(), &origin)?;
    let floor = parsed.serial;
    parsed.stamp(floor, None, SystemTime::now());
    boternity_skills::fsutil::write_atomically(index, &parsed.to_json())?;
    let mut removed_signature = None;
    if signer.is_none() {
        let stale = sign::signature_path(index);
        if std::fs::remove_file(&stale).is_ok() {
            removed_signature = Some(stale);
        }
    }
    if json {
        message::emit(&IndexYanked {
            index,
            name,
            version,
            yanked: reason,
            serial: parsed.serial,
            signed: signer.is_some(),
            removed_signature: removed_signature.as_deref(),
        });
    } else {
        eprintln!(
            "{:>12} `{name}` {version} in {}",
            if reason.is_some() {
                "Yanked"
            } else {
                "Un-yanked"
            },
            index.display()
        );
        if let Some(stale) = &removed_signature {
            eprintln!(
                "note: removed {} (it no longer matches); sign the index: \
                 boternity index sign {} --key FILE",
                stale.display(),
                index.display()
            );
        }
    }
    if let Some(signer) = signer {
        sign_and_report(index, signer, json)?;
    }
    Ok(ExitCode::SUCCESS)
}
