//! `boternity run`: call a skill's `execute` once in the sandbox.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::executor::{Origin, Precompiled, SkillSource};
use boternity_skills::skill::manifest::TrustTier;
use boternity_skills::{ExecError, Grants, Invocation, Outcome};

use super::args::{
    CacheArgs, GrantArgs, LimitArgs, MessageFormat, OutputArgs, ResolvedSkill, SkillArg,
};
use super::message::{self, SkillRun, SkillStopped};

/// Run a skill: instantiate it in wasmtime and call `execute` with the input.
///
/// The skill's `Ok` text goes to stdout; its `Err` text, or why it was
/// stopped (fuel, deadline, memory, trap), goes to stderr.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity run skill.wasm --input 'hello world'\n  echo hi | boternity run skill.wasm --input-file -\n  boternity run skill.wasm --input x --grant read_env --allow-env LANG\n\nExit status:\n  0  the skill returned Ok\n  1  the skill returned Err\n  2  the skill was stopped (limit, trap, denied) or could not be loaded"
)]
pub struct Opts {
    #[command(flatten)]
    skill: SkillArg,
    /// The input text.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input from a file (`-` for stdin).
    #[arg(long)]
    input_file: Option<PathBuf>,
    #[command(flatten)]
    grants: GrantArgs,
    /// With read_file/write_file: the folder they are confined to.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    cache: CacheArgs,
    /// The bot's name as `get-context` reports it.
    #[arg(long, default_value = "boternity")]
    bot_name: String,
    /// The bot's slug as `get-context` reports it.
    #[arg(long, default_value = "boternity")]
    bot_slug: String,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let input = read_input(self.input.clone(), self.input_file.as_ref())?;
        // One call: a runtime on this thread (no worker threads to start).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let executor = self.limits.executor(&self.cache)?;
        let extra = self.grants.grants(self.data_dir.clone());
        let outcome = match self.skill.resolve()? {
            ResolvedSkill::File(path) => {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "skill".into());
                let invocation = self.invocation(&name, input, extra, TrustTier::Untrusted);
                runtime.block_on(async {
                    let skill = executor.load(SkillSource::File {
                        wasm: &path,
                        precompiled: Precompiled::beside(&path),
                    })?;
                    let origin = skill.origin();
                    let outcome = executor.run(&skill, invocation).await;
                    std::mem::forget(skill); // see the end of `run`
                    Ok((outcome?, origin))
                })
            }
            ResolvedSkill::Installed { store, skill } => {
                // An installed skill runs under the tier and grants recorded
                // at its install (never what its SKILL.md merely asks for);
                // flags add grants and may name a tier.
                let mut grants = skill.grants(&store);
                grants.extend(&extra);
                let invocation = self.invocation(&skill.name, input, grants, skill.trust_tier());
                runtime.block_on(async {
                    let loaded = skill.load(&executor)?;
                    let origin = loaded.origin();
                    let outcome = executor.run(&loaded, invocation).await;
                    std::mem::forget(loaded); // see below
                    Ok((outcome?, origin))
                })
            }
        };
        // The process ends after the report: unmapping the compiled code and
        // freeing the engine is the kernel's job then (it saves ~0.05 ms), and
        // an HTTP request abandoned at the deadline is not waited for.
        std::mem::forget(executor);
        std::mem::forget(runtime);
        Ok(report(outcome, self.format))
    }

    fn invocation(
        &self,
        skill_name: &str,
        input: String,
        grants: Grants,
        default_tier: TrustTier,
    ) -> Invocation {
        Invocation {
            input,
            skill_name: skill_name.to_string(),
            bot_name: self.bot_name.clone(),
            bot_slug: self.bot_slug.clone(),
            limits: self.limits.limits(default_tier),
            grants,
            grant_hint: Some(GrantArgs::hint),
        }
    }
}

fn read_input(input: Option<String>, file: Option<&PathBuf>) -> anyhow::Result<String> {
    match (input, file) {
        (Some(text), _) => Ok(text),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the input from stdin")?;
            Ok(text)
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the input file {}", path.display())),
        (None, None) => anyhow::bail!(
            "give the skill an input: --input TEXT or --input-file FILE (- for stdin)"
        ),
    }
}

/// Prints an outcome and returns the exit code (0 Ok, 1 Err, 2 stopped).
fn report(outcome: Result<(Outcome, Option<Origin>), ExecError>, format: OutputArgs) -> ExitCode {
    match (format.message_format, outcome) {
        (MessageFormat::Json, Ok((o, origin))) => {
            message::emit(&SkillRun {
                outcome: &o,
                load_origin: origin.map(Origin::as_str),
            });
            ExitCode::from(if o.result.is_ok() { 0 } else { 1 })
        }
        (MessageFormat::Json, Err(e)) => {
            message::emit(&SkillStopped {
                error: boternity_skills::error_chain(&e),
            });
            ExitCode::from(2)
        }
        (MessageFormat::Human, Ok((o, _))) => {
            if o.stub {
                eprintln!("warning: this skill is a JSON stub: nothing ran, its body is returned");
            }
            for log in &o.logs {
                eprintln!("[skill {}] {}", log.level, log.message);
            }
            match o.result {
                Ok(text) => {
                    // Exactly the skill's text, ending in one newline.
                    if text.ends_with('\n') {
                        print!("{text}");
                    } else {
                        println!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Err(text) => {
                    eprintln!("skill error: {text}");
                    ExitCode::from(1)
                }
            }
        }
        (MessageFormat::Human, Err(e)) => {
            super::print_error(&e);
            ExitCode::from(2)
        }
    }
}
