//! `boternity validate`: is this file a component of the skill world?

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::skill::validate::{self, ValidateError};

use super::args::{MessageFormat, OutputArgs};
use super::message::{self, Validated};

/// Check that a file is a component of the skill world.
///
/// wasmparser validation, then the world check (exports `get-name`,
/// `get-description`, `execute` with exactly the world's types; imports only
/// `boternity:skill/host` and the WASI 0.2 interfaces the executor links).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity validate skill.wasm\n  boternity validate skill.wasm --message-format json\n\nExit status:\n  0  a component of the skill world\n  1  anything else (every difference is listed)"
)]
pub struct Opts {
    /// The file to check.
    file: PathBuf,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let size = std::fs::metadata(&self.file)
            .with_context(|| format!("cannot read {}", self.file.display()))?
            .len();
        let result = if size > validate::MAX_WASM_BYTES {
            Err(ValidateError::TooLarge {
                size,
                max: validate::MAX_WASM_BYTES,
            })
        } else {
            let bytes = std::fs::read(&self.file)
                .with_context(|| format!("cannot read {}", self.file.display()))?;
            validate::validate_component(&bytes)
        };
        match (self.format.message_format, result) {
            (MessageFormat::Json, Ok(c)) => message::emit(&Validated {
                valid: true,
                file: &self.file,
                size: Some(c.size),
                sha256: Some(&c.sha256),
                imports: Some(&c.imports),
                error: None,
                differences: Vec::new(),
            }),
            (MessageFormat::Json, Err(e)) => {
                let differences = match &e {
                    ValidateError::WorldMismatch(d) => d.iter().map(|d| d.to_string()).collect(),
                    _ => Vec::new(),
                };
                message::emit(&Validated {
                    valid: false,
                    file: &self.file,
                    size: None,
                    sha256: None,
                    imports: None,
                    error: Some(boternity_skills::error_chain(&e)),
                    differences,
                });
                return Ok(ExitCode::FAILURE);
            }
            (MessageFormat::Human, Ok(c)) => {
                eprintln!(
                    "{}: a component of the skill world ({} bytes, sha256 {})",
                    self.file.display(),
                    c.size,
                    c.sha256
                );
                eprintln!("imports: {}", c.imports.join(", "));
            }
            (MessageFormat::Human, Err(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{} is not a valid skill", self.file.display())));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
