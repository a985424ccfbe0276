//! `boternity build-skill`: build a skill's Rust source into a validated
//! component of the skill world (the shared pipeline, with stubs forbidden).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::build::BuildOptions;
use boternity_skills::executor::Executor;
use boternity_skills::executor::cwasm::sidecar_paths;
use boternity_skills::fsutil::write_atomically;
use boternity_skills::pipeline::{self, PipelineOptions, Prepared};
use boternity_skills::toolchain::Toolchain;
use serde_json::json;

use super::{MessageFormat, emit_json};

/// Build a Tool skill into a WebAssembly component of the skill world.
///
/// The skill's crate (Cargo.toml + src/) or bare src/lib.rs is built with
/// `cargo build --release --target wasm32-wasip2`; a core module is
/// componentized; the result is validated against the world and written out.
/// A skill without source but with a shipped skill.wasm has that binary
/// validated instead. Never writes a stub.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity build-skill skills/word-count\n  boternity build-skill . -o dist/word-count.wasm --message-format json\n\nExit status:\n  0  the component was built, validated and written\n  1  it was not (the reason is printed; compiler output intact)"
)]
pub struct Opts {
    /// The skill folder (holding SKILL.md).
    skill_dir: PathBuf,
    /// Where to write the component (default: <skill-dir>/skill.wasm).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// cargo's target directory (default: the crate's own).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Also precompile it for this machine: <output>.cwasm and its signed
    /// record <output>.cwasm.json, which `boternity run <output>` then uses.
    #[arg(long)]
    cwasm: bool,
    /// Output format: human text on stderr, or one JSON object on stdout.
    #[arg(long, value_enum, default_value_t)]
    message_format: MessageFormat,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.build() {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(err) if self.message_format == MessageFormat::Json => {
                emit_json(&json!({
                    "reason": "build-failed",
                    "skill_dir": self.skill_dir,
                    "error": format!("{err:#}"),
                }));
                Ok(ExitCode::FAILURE)
            }
            Err(err) => Err(err),
        }
    }

    fn build(&self) -> anyhow::Result<()> {
        let what = || format!("cannot build the skill in {}", self.skill_dir.display());
        let options = PipelineOptions {
            build: BuildOptions {
                target_dir: self.target_dir.clone(),
                ..BuildOptions::default()
            },
            no_stub: true,
            // Detected up front: a missing target is one clear error with its fix.
            toolchain: Some(Ok(Toolchain::detect().with_context(what)?)),
        };
        let prepared = pipeline::prepare(&self.skill_dir, &options).with_context(what)?;
        let Some(binary) = &prepared.binary else {
            anyhow::bail!(
                "`{}` is a prompt skill (metadata.skill-type: prompt): it has nothing to build",
                prepared.name()
            );
        };
        let output = self.output.clone().unwrap_or_else(|| {
            prepared
                .folder
                .dir
                .join(boternity_skills::source::WASM_FILE)
        });
        write_atomically(&output, binary)
            .with_context(|| format!("cannot write {}", output.display()))?;
        if self.cwasm && prepared.component.is_some() {
            let executor = Executor::new()?;
            let (cwasm, record) = executor.precompile(binary)?;
            let (cwasm_path, record_path) = sidecar_paths(&output);
            write_atomically(&cwasm_path, &cwasm)
                .with_context(|| format!("cannot write {}", cwasm_path.display()))?;
            write_atomically(&record_path, &serde_json::to_vec_pretty(&record)?)
                .with_context(|| format!("cannot write {}", record_path.display()))?;
        }
        self.report(&prepared, &output);
        Ok(())
    }

    fn report(&self, prepared: &Prepared, output: &Path) {
        let component = prepared.component.as_ref();
        let source = prepared.folder.rust.as_ref().map(|r| r.shape());
        match self.message_format {
            MessageFormat::Json => emit_json(&json!({
                "reason": "skill-built",
                "name": prepared.name(),
                "version": prepared.folder.manifest.version,
                "path": output,
                "size": component.map(|c| c.size),
                "sha256": component.map(|c| &c.sha256),
                "path_taken": prepared.path,
                "detail": prepared.reason,
                "source": source,
                "imports": component.map(|c| &c.imports),
                "rustc": prepared.toolchain.as_ref().map(|t| &t.rustc_version),
                "notes": prepared.notes,
            })),
            MessageFormat::Human => {
                for note in &prepared.notes {
                    eprintln!("note: {note}");
                }
                eprintln!(
                    "{:>12} `{}` ({}) -> {}",
                    "Built",
                    prepared.name(),
                    prepared.path,
                    output.display()
                );
                if let Some(c) = component {
                    eprintln!("{:>12} {} bytes, sha256 {}", "Component", c.size, c.sha256);
                }
                eprintln!("{:>12} {}", "How", prepared.reason);
            }
        }
    }
}
