//! `boternity install`: put a skill folder into the store (build, validate or
//! stub, then an atomic swap).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::{
    Grants, InstallOptions, Installed, Installer, PathTaken, SkillStore, Source,
};

use super::args::{GrantArgs, InstallArgs, MessageFormat, OutputArgs, StoreArgs, flag_hint};
use super::message::{self, InstallFailed, SkillInstalled};

/// Install a skill into boternity's store.
///
/// Decision, in order: a prompt skill installs SKILL.md only; Rust source with
/// a usable toolchain is built (source wins over a shipped binary); a shipped
/// skill.wasm is validated (a core module with wit-bindgen metadata is
/// componentized); otherwise a JSON stub is written, loudly (--no-stub refuses).
/// The installed version is replaced atomically; a failed install changes nothing.
/// A skill of the same name from another origin is replaced only with --force.
/// SKILL.md's capabilities and secrets are requests: only --grant,
/// --allow-* and the trust tier's policy grant.
// Field docs are clap's help text, not markdown: `NAME[@VERSION]` is what
// a user types, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity install skills/word-count\n  boternity install ./my-skill --store /tmp/store --trust-tier verified\n  boternity install ./weather --grant http_get --allow-host api.weather.example --grant get_secret --allow-secret api-key\n  boternity install ./registry-skill --no-stub --message-format json\n  boternity install word-count --registry dist/   (from `boternity precompile` output)\n  boternity install word-count@1.2.0 --registry https://example.org/skills --registry-key registry.key.pub\n  boternity install oci://ghcr.io/acme/skills/weather:1.2.0 --registry-key registry.key.pub\n  boternity install oci://ghcr.io/acme/skills/weather@sha256:<digest>\n\nExit status:\n  0  installed (a stub counts, unless --no-stub)\n  1  not installed; the store is unchanged"
)]
pub struct Opts {
    /// The skill folder (holding SKILL.md), or with --registry the skill's
    /// NAME[@VERSION] (an existing folder is always taken as the folder),
    /// or with --git the first skill to install, or an OCI artifact
    /// oci://HOST/REPOSITORY[:TAG][@sha256:DIGEST] (`boternity push`'s).
    #[arg(
        required_unless_present = "git",
        default_value = ".",
        hide_default_value = true
    )]
    skill_dir: PathBuf,
    #[command(flatten)]
    git: super::install_git::GitArgs,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    oci: super::oci::OciArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    install: InstallArgs,
    #[command(flatten)]
    grants: GrantArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let mut context = self.store.context();
        // An install states the grants: a reinstall grants these, not the
        // installed version's (update and sync, which take none, keep them).
        let options = InstallOptions {
            grants: self.grants.grants(None),
            replace_grants: true,
            ..self.install.options()
        };
        if self.git.git.is_some() {
            let offline = self.registry.offline.offline;
            return super::install_git::run(
                &context,
                &self.git,
                &self.skill_dir,
                &store,
                &options,
                offline,
                self.format,
            );
        }
        let result = self
            .install(&mut context, &store, &options)
            .with_context(|| format!("cannot install {}", self.skill_dir.display()));
        match result {
            Ok(installed) => {
                for installed in &installed {
                    report(installed, self.format.message_format);
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => Ok(failed(err, &self.skill_dir, self.format)),
        }
    }

    fn install(
        &self,
        context: &mut boternity_skills::Context,
        store: &SkillStore,
        options: &InstallOptions,
    ) -> anyhow::Result<Vec<Installed>> {
        let first = self.skill_dir.to_string_lossy();
        if first.starts_with(boternity_skills::oci::reference::SCHEME) {
            let references = std::iter::once(first.into_owned())
                .chain(self.git.more.iter().cloned())
                .map(|text| boternity_skills::oci::Reference::parse(&text))
                .collect::<Result<Vec<_>, _>>()?;
            let client = self.oci.client(
                context,
                &self.registry.trust,
                self.registry.offline,
                self.format.json(),
            )?;
            let executor = super::executor()?;
            let installer = Installer::new(context, store).with_executor(&executor);
            let source = Source::Oci {
                client: Box::new(client),
                references,
            };
            return Ok(installer.install(&source, options)?);
        }
        let context = &*context;
        let executor = super::executor()?;
        let installer = Installer::new(context, store).with_executor(&executor);
        let registry = self.registry.client(context, self.format.json())?;
        let source = match registry {
            // Names: from the registry, all or none.
            Some(client) if !self.skill_dir.is_dir() => {
                let skills = std::iter::once(self.skill_dir.to_string_lossy().into_owned())
                    .chain(self.git.more.iter().cloned())
                    .map(|spec| {
                        let (name, version) = super::registry::spec(&spec);
                        (name.to_string(), version.map(str::to_string))
                    })
                    .collect();
                Source::Registry { client, skills }
            }
            // A folder: the registry is the decision's fallback before a stub.
            registry => {
                let mut options = options.clone();
                options.pipeline.registry = registry.map(|c| {
                    std::sync::Arc::new(c)
                        as std::sync::Arc<dyn boternity_skills::pipeline::ComponentSource>
                });
                return Ok(vec![installer.install_folder(&self.skill_dir, &options)?]);
            }
        };
        Ok(installer.install(&source, options)?)
    }
}

/// Reports a failed install (the store is unchanged) with the flags that
/// answer it ([`flag_hint`]); the exit code.
pub fn failed(err: anyhow::Error, skill_dir: &Path, format: OutputArgs) -> ExitCode {
    if format.json() {
        let mut error = message::error_text(&err);
        if let Some(hint) = flag_hint(err.as_ref()) {
            error.push_str("; ");
            error.push_str(hint);
        }
        message::emit(&InstallFailed { skill_dir, error });
    } else {
        // With its hint.
        super::print_error(err.as_ref());
    }
    ExitCode::FAILURE
}

/// What the skill asked for and was not granted, and the flags that would
/// grant it: a note of the install report.
pub fn not_granted_note(installed: &Installed) -> Option<String> {
    let missing = &installed.not_granted;
    if missing.is_empty() {
        return None;
    }
    let mut asked: Vec<String> = missing
        .capabilities
        .iter()
        .map(ToString::to_string)
        .collect();
    asked.extend(missing.secrets.iter().map(|s| format!("secret `{s}`")));
    Some(format!(
        "SKILL.md asks for {}, not granted (a skill's own list grants nothing); to grant it, install with {}",
        asked.join(", "),
        GrantArgs::flags_for(missing).join(" ")
    ))
}

pub fn report(installed: &Installed, format: MessageFormat) {
    let p = &installed.provenance;
    match format {
        MessageFormat::Json => message::emit(&SkillInstalled::new(installed)),
        MessageFormat::Human => {
            super::print_warnings(
                std::path::Path::new(boternity_skills::skill::manifest::MANIFEST_FILE),
                &p.warnings,
            );
            let resolved_lock = p.cargo_lock_resolved.then(|| {
                "no Cargo.lock shipped: built with the one resolved at install time, kept with \
                 the skill and reused by sync and update"
                    .to_string()
            });
            for note in installed
                .notes
                .iter()
                .cloned()
                .chain(resolved_lock)
                .chain(not_granted_note(installed))
            {
                eprintln!("note: {note}");
            }
            if installed.path_taken == PathTaken::Stub {
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
                installed.path_taken,
                installed.dir.display(),
                if installed.replaced {
                    " (replaced the previous version)"
                } else {
                    ""
                }
            );
            eprintln!("{:>12} {}", "How", installed.reason);
            eprintln!("{:>12} {}", "Trust", installed.trust_tier);
            eprintln!("{:>12} {}", "Granted", granted_text(&installed.granted));
            if let Some(w) = &p.wasm {
                eprintln!("{:>12} {} bytes, sha256 {}", "Binary", w.size, w.sha256);
            }
        }
    }
}

/// What an install granted, in one line.
fn granted_text(grants: &Grants) -> String {
    let mut parts: Vec<String> = grants
        .capabilities
        .iter()
        .map(ToString::to_string)
        .collect();
    let named = [
        ("variable", &grants.env_vars),
        ("host", &grants.http_hosts),
        ("secret", &grants.secrets),
    ];
    for (what, names) in named {
        parts.extend(names.iter().map(|n| format!("{what} `{n}`")));
    }
    if parts.is_empty() {
        "nothing (log and get-context only)".into()
    } else {
        parts.join(", ")
    }
}
