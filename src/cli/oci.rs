//! The flags of every command that talks to an OCI registry (`push`,
//! `install oci://`, `sync`, `precompile --push`): credentials from
//! standard input, a CA file, plain HTTP. Applied on top of what the
//! context read from the environment (see `context.rs`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use boternity_skills::Context;
use boternity_skills::oci::{Basic, OciClient};

use super::args::OfflineArgs;
use super::registry::TrustArgs;

/// How OCI registries are reached.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OciArgs {
    /// The user name for OCI registries (with --password-stdin). Else
    /// BOTERNITY_OCI_USERNAME and BOTERNITY_OCI_PASSWORD, else Docker's
    /// config.json (auths, credential helpers), else anonymous.
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Trust the CA certificates in this PEM file too (a registry with a
    /// certificate of its own CA), besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Speak plain http:// to OCI registries that are not on this machine
    /// (a registry on 127.0.0.1 or localhost is reached over http:// when it
    /// does not speak TLS, without this flag). Anyone on the network path can
    /// then read credentials and change what is installed.
    #[arg(long)]
    pub plain_http: bool,
}

impl OciArgs {
    /// Applies the flags to `context`'s OCI settings.
    pub fn apply(&self, context: &mut Context) -> anyhow::Result<()> {
        if let Some(username) = &self.username {
            let mut password = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut password)
                .context("cannot read the password from standard input (--password-stdin)")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            anyhow::ensure!(
                !password.is_empty(),
                "--password-stdin read an empty password"
            );
            context.oci.credentials = Some(Basic {
                username: username.clone(),
                password,
                from: "--username and --password-stdin".into(),
            });
        }
        if let Some(ca) = &self.ca_file {
            context.oci.ca_file = Some(ca.clone());
        }
        context.oci.plain_http |= self.plain_http;
        Ok(())
    }

    /// A client for `context` with these flags applied, the pinned keys of
    /// `trust`, `offline`, and a progress bar on a terminal unless `quiet`.
    pub fn client(
        &self,
        context: &mut Context,
        trust: &TrustArgs,
        offline: OfflineArgs,
        quiet: bool,
    ) -> anyhow::Result<OciClient> {
        self.apply(context)?;
        let mut client = OciClient::new(context, trust.keys()?)?;
        client.offline = offline.offline;
        if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            client = client.with_progress(super::registry::progress_bar());
        }
        Ok(client)
    }
}
