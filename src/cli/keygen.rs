//! `boternity keygen`: a minisign key pair for signing a registry's index.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::registry::sign;

use super::args::{OutputArgs, PasswordArgs};
use super::message::{self, KeyWritten};

/// Write a minisign key pair for signing a registry's index.json.
///
/// The secret key goes to FILE (mode 0600), the public key to FILE.pub. The
/// secret key is unencrypted unless --password-env names a variable holding a
/// password (a CI keeps the key file itself as a secret); signing then reads
/// the same variable. Never prompts, never overwrites a key.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity keygen --out registry.key\n  BOTERNITY_KEY_PASSWORD=… boternity keygen --out registry.key --password-env BOTERNITY_KEY_PASSWORD\n  boternity precompile registry/ --out dist/ --sign-key registry.key\n  boternity install word-count --registry https://example.org/skills --registry-key registry.key.pub\n\nExit status:\n  0  both files written\n  1  nothing written (a file exists, the variable is unset …)"
)]
pub struct Opts {
    /// Where to write the secret key (the public key goes to FILE.pub).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let password = self.password.password()?.map(|p| p.value);
        let encrypted = password.is_some();
        let public = sign::generate(&self.out, password)
            .with_context(|| format!("cannot write a key pair to {}", self.out.display()))?;
        let pub_path = sign::public_key_path(&self.out);
        if self.format.json() {
            message::emit(&KeyWritten {
                secret_key: &self.out,
                public_key: &pub_path,
                key_id: public.key_id(),
                public_key_base64: public.to_base64(),
                encrypted,
            });
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{:>12} secret key {} ({}, mode 0600): keep it secret",
            "Wrote",
            self.out.display(),
            if encrypted {
                "encrypted with the password"
            } else {
                "unencrypted"
            }
        );
        eprintln!(
            "{:>12} public key {} (key id {})",
            "Wrote",
            pub_path.display(),
            public.key_id()
        );
        eprintln!(
            "{:>12} --registry-key {} (or BOTERNITY_REGISTRY_KEY={})",
            "Users pin",
            pub_path.display(),
            public.to_base64()
        );
        Ok(ExitCode::SUCCESS)
    }
}
