//! `boternity install`: put a skill folder into the store (build, validate or
//! stub, then an atomic swap).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::build::BuildOptions;
use boternity_skills::executor::{Executor, Grants};
use boternity_skills::install::{self, InstallOptions, Installed};
use boternity_skills::manifest::{Capability, TrustTier};
use boternity_skills::pipeline::{PathTaken, PipelineOptions};
use serde_json::json;

use super::run::{parse_capability, parse_tier};
use super::{MessageFormat, StoreArgs, emit_json};

/// Install a skill into boternity's store.
///
/// Decision, in order: a prompt skill installs SKILL.md only; Rust source with
/// a usable toolchain is built (source wins over a shipped binary); a shipped
/// skill.wasm is validated (a core module with wit-bindgen metadata is
/// componentized); otherwise a JSON stub is written, loudly (--no-stub refuses).
/// The installed version is replaced atomically; a failed install changes nothing.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity install skills/word-count\n  boternity install ./my-skill --store /tmp/store --trust-tier verified\n  boternity install ./registry-skill --no-stub --message-format json\n  boternity install word-count --registry dist/   (from `boternity precompile` output)\n\nExit status:\n  0  installed (a stub counts, unless --no-stub)\n  1  not installed; the store is unchanged"
)]
pub struct Opts {
    /// The skill folder (holding SKILL.md), or with --registry the skill's name.
    skill_dir: PathBuf,
    /// Install the named skill from a precompiled registry (the --out of
    /// `boternity precompile`): its sha256 is checked against index.json and the
    /// binary validated before it is accepted.
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    /// Refuse to install a JSON stub (for CI).
    #[arg(long)]
    no_stub: bool,
    /// The trust tier to install under (the skill's own claim is ignored).
    #[arg(long, default_value = "untrusted", value_parser = parse_tier)]
    trust_tier: TrustTier,
    /// Grant a capability beyond the manifest's (repeatable).
    #[arg(long = "grant", value_name = "CAP", value_parser = parse_capability)]
    grants: Vec<Capability>,
    /// A variable `read-env` may read (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    env_vars: Vec<String>,
    /// A host (or host:port) `http-get`/`http-post` may reach (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    http_hosts: Vec<String>,
    /// A secret `get-secret` may fetch, beyond metadata.secrets (repeatable).
    #[arg(long = "allow-secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// cargo's target directory for builds.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Output format: human text on stderr, or one JSON object on stdout.
    #[arg(long, value_enum, default_value_t)]
    message_format: MessageFormat,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let options = InstallOptions {
            pipeline: PipelineOptions {
                build: BuildOptions {
                    target_dir: self.target_dir.clone(),
                    ..BuildOptions::default()
                },
                no_stub: self.no_stub,
                toolchain: None,
            },
            trust_tier: self.trust_tier,
            grants: Grants {
                capabilities: self.grants.iter().copied().collect(),
                env_vars: self.env_vars.iter().cloned().collect(),
                http_hosts: self.http_hosts.iter().cloned().collect(),
                secrets: self.secrets.iter().cloned().collect(),
                data_dir: None,
            },
        };
        let result = Executor::new()
            .map_err(anyhow::Error::from)
            .and_then(|executor| {
                match &self.registry {
                    Some(registry) => install::install_from_registry(
                        &store,
                        registry,
                        &self.skill_dir.to_string_lossy(),
                        &options,
                        Some(&executor),
                    ),
                    None => install::install(&store, &self.skill_dir, &options, Some(&executor)),
                }
                .map_err(anyhow::Error::from)
            })
            .with_context(|| format!("cannot install {}", self.skill_dir.display()));
        match (result, self.message_format) {
            (Ok(installed), format) => {
                report(&installed, format);
                Ok(ExitCode::SUCCESS)
            }
            (Err(err), MessageFormat::Json) => {
                emit_json(
                    &json!({"reason": "install-failed", "skill_dir": self.skill_dir, "error": format!("{err:#}")}),
                );
                Ok(ExitCode::FAILURE)
            }
            (Err(err), MessageFormat::Human) => Err(err),
        }
    }
}

pub fn report(installed: &Installed, format: MessageFormat) {
    let p = &installed.provenance;
    match format {
        MessageFormat::Json => emit_json(&json!({
            "reason": "skill-installed",
            "name": installed.name,
            "version": p.version,
            "path": installed.dir,
            "path_taken": installed.path,
            "detail": installed.reason,
            "stub": installed.path == PathTaken::Stub,
            "trust_tier": installed.trust_tier,
            "sha256": p.wasm.as_ref().map(|w| &w.sha256),
            "size": p.wasm.as_ref().map(|w| w.size),
            "precompiled": p.cwasm.is_some(),
            "replaced": installed.replaced,
            "notes": installed.notes,
        })),
        MessageFormat::Human => {
            for note in &installed.notes {
                eprintln!("note: {note}");
            }
            if installed.path == PathTaken::Stub {
                eprintln!(
                    "warning: ================================================================"
                );
                eprintln!(
                    "warning: `{}` is installed as a JSON STUB, not a real component.",
                    installed.name
                );
                eprintln!("warning: why: {}", installed.reason);
                eprintln!("warning: running it only returns its SKILL.md body.");
                eprintln!(
                    "warning: for a real build: ship Rust source (Cargo.toml + src/, or src/lib.rs) or a"
                );
                eprintln!(
                    "warning: skill.wasm, and have cargo with `rustup target add wasm32-wasip2`; then reinstall."
                );
                eprintln!("warning: use --no-stub to make this an error.");
                eprintln!(
                    "warning: ================================================================"
                );
            }
            eprintln!(
                "{:>12} `{}`{} ({}) -> {}{}",
                "Installed",
                installed.name,
                p.version
                    .as_deref()
                    .map(|v| format!(" v{v}"))
                    .unwrap_or_default(),
                installed.path,
                installed.dir.display(),
                if installed.replaced {
                    " (replaced the previous version)"
                } else {
                    ""
                }
            );
            eprintln!("{:>12} {}", "How", installed.reason);
            eprintln!("{:>12} {}", "Trust", installed.trust_tier);
            if let Some(w) = &p.wasm {
                eprintln!("{:>12} {} bytes, sha256 {}", "Binary", w.size, w.sha256);
            }
        }
    }
}
