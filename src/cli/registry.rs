//! `--registry`, `--registry-key`, `--allow-expired` and `--offline`
//! (defaults from `BOTERNITY_REGISTRY`, `BOTERNITY_REGISTRY_KEY` and
//! `BOTERNITY_ALLOW_EXPIRED`): the registry an install takes a skill from by
//! name, or falls back to when a folder cannot be built here, with a progress
//! bar for downloads on a terminal. `outdated` and `verify` take the key and
//! expiry flags alone ([`TrustArgs`]) to read the registries skills came from.
//! `--offline` and `--allow-expired` are declared in `args.rs`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use boternity_skills::registry::client::{
    DownloadEvent, RegistryClient, RegistrySource, parse_spec,
};
use boternity_skills::registry::sign::TrustedKey;

use super::args::{AllowExpiredArgs, OfflineArgs};

/// Where registry installs come from.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// A registry: http(s):// URL or folder (the --out of `boternity
    /// precompile`, or where it is published). With a skill NAME[@VERSION],
    /// installs it from there; with a folder that cannot be built here, the
    /// registry's component built from the same source is used before a stub.
    #[arg(long, value_name = "URL|DIR", env = "BOTERNITY_REGISTRY")]
    pub registry: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub offline: OfflineArgs,
}

/// The keys a registry's index must be signed with, and whether an expired
/// one may be used.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TrustArgs {
    /// A public key the registry's index must be signed with (FILE.pub from
    /// `boternity keygen`, or the base64 key); repeatable. With a key pinned,
    /// a missing or bad index.json.minisig is an error, and so are an expired
    /// index and one older than an index accepted before.
    #[arg(
        long = "registry-key",
        value_name = "FILE.pub|KEY",
        env = "BOTERNITY_REGISTRY_KEY"
    )]
    pub registry_keys: Vec<String>,
    #[command(flatten)]
    pub expired: AllowExpiredArgs,
}

impl TrustArgs {
    /// The pinned keys, each parsed.
    pub fn keys(&self) -> anyhow::Result<Vec<TrustedKey>> {
        self.registry_keys
            .iter()
            .filter(|k| !k.trim().is_empty())
            .map(|k| TrustedKey::parse(k).with_context(|| "cannot use --registry-key".to_string()))
            .collect()
    }
}

impl RegistryArgs {
    /// The configured registry's client, if any; a progress bar on stderr
    /// when it is a terminal and `quiet` is false.
    pub fn client(
        &self,
        context: &boternity_skills::Context,
        quiet: bool,
    ) -> anyhow::Result<Option<RegistryClient>> {
        let Some(registry) = self.registry.as_deref().filter(|r| !r.trim().is_empty()) else {
            return Ok(None);
        };
        let keys = self.trust.keys()?;
        let mut client = RegistryClient::new(context, RegistrySource::parse(registry), keys);
        client.offline = self.offline.offline;
        client.allow_expired = self.trust.expired.allow_expired;
        if !quiet && std::io::stderr().is_terminal() {
            client = client.with_progress(progress_bar());
        }
        Ok(Some(client))
    }
}

/// `NAME[@VERSION]`.
pub fn spec(arg: &str) -> (&str, Option<&str>) {
    parse_spec(arg)
}

pub fn progress_bar() -> Arc<dyn Fn(DownloadEvent) + Send + Sync> {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} Downloading {msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Arc::new(move |event| match event {
        DownloadEvent::Start { files, bytes } => {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(bytes);
            bar.set_position(0);
            bar.set_message(format!("{files} files"));
        }
        DownloadEvent::Advance(n) => bar.inc(n),
        DownloadEvent::Finish => bar.finish_and_clear(),
    })
}
