//! `boternity build-skill`: build a skill's Rust source into a validated
//! component of the skill world (the shared pipeline, with stubs forbidden).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::executor::cwasm::sidecar_paths;
use boternity_skills::fsutil::write_atomically;
use boternity_skills::pipeline::{self, PipelineOptions, Prepared};
use boternity_skills::skill::source::WASM_FILE;

use super::args::{BuildArgs, OutputArgs};
use super::message::{self, BuildFailed, SkillBuilt};

/// Build a Tool skill into a WebAssembly component of the skill world.
///
/// The skill's crate (Cargo.toml + src/) or bare src/lib.rs is built with
/// `cargo build --release --target wasm32-wasip2`; a core module is
/// componentized; the result is validated against the world and written out.
/// A skill without source but with a shipped skill.wasm has that binary
/// validated instead (no toolchain needed). Never writes a stub.
// Field docs are clap's help text, not markdown: `<output>` is a
// placeholder the user reads, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
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
    #[command(flatten)]
    build: BuildArgs,
    /// Also precompile it for this machine: <output>.cwasm and its signed
    /// record <output>.cwasm.json, which `boternity run <output>` then uses.
    #[arg(long)]
    cwasm: bool,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.build() {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(err) if self.format.json() => {
                let mut error = message::error_text(&err);
                if let Some(hint) = super::args::flag_hint(err.as_ref()) {
                    error.push_str("; ");
                    error.push_str(hint);
                }
                message::emit(&BuildFailed {
                    skill_dir: &self.skill_dir,
                    error,
                });
                Ok(ExitCode::FAILURE)
            }
            Err(err) => Err(err),
        }
    }

    fn build(&self) -> anyhow::Result<()> {
        let what = || format!("cannot build the skill in {}", self.skill_dir.display());
        // The pipeline decides whether a toolchain is needed (source) or not
        // (a shipped binary only), and says which toolchain is missing.
        let options = PipelineOptions {
            build: self.build.options(),
            no_stub: true,
            toolchain: None,
            registry: None,
        };
        let context = super::context::from_env(None);
        let prepared = pipeline::prepare(&context, &self.skill_dir, &options);
        // Built or not, the cache's build outputs back within their budget.
        boternity_skills::cache::sweep_after_build(&context);
        let prepared = prepared.with_context(what)?;
        let Some(binary) = &prepared.binary else {
            anyhow::bail!(
                "`{}` is a prompt skill (metadata.skill-type: prompt): it has nothing to build",
                prepared.name()
            );
        };
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| prepared.folder.dir.join(WASM_FILE));
        write_atomically(&output, binary)?;
        if self.cwasm && prepared.component.is_some() {
            let executor = super::executor()?;
            let (cwasm, record) = executor.precompile(binary)?;
            let (cwasm_path, record_path) = sidecar_paths(&output);
            write_atomically(&cwasm_path, &cwasm)?;
            write_atomically(&record_path, &serde_json::to_vec_pretty(&record)?)?;
        }
        self.report(&prepared, &output);
        Ok(())
    }

    fn report(&self, prepared: &Prepared, output: &Path) {
        if self.format.json() {
            message::emit(&SkillBuilt::new(prepared, output));
            return;
        }
        super::print_warnings(
            &prepared
                .folder
                .dir
                .join(boternity_skills::skill::manifest::MANIFEST_FILE),
            &prepared.folder.manifest.warnings,
        );
        for note in &prepared.notes {
            eprintln!("note: {note}");
        }
        eprintln!(
            "{:>12} `{}` ({}) -> {}",
            "Built",
            prepared.name(),
            prepared.path_taken,
            output.display()
        );
        if let Some(c) = &prepared.component {
            eprintln!("{:>12} {} bytes, sha256 {}", "Component", c.size, c.sha256);
        }
        eprintln!("{:>12} {}", "How", prepared.reason);
    }
}
