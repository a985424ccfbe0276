//! `boternity run`: call a skill's `execute` once in the sandbox.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use boternity_skills::executor::{
    Executor, ExecutorConfig, Grants, HostServices, Invocation, Limits, Outcome,
};
use boternity_skills::manifest::{Capability, TrustTier};
use serde_json::json;

use super::{MessageFormat, emit_json};

/// Run a skill: instantiate it in wasmtime and call `execute` with the input.
///
/// The skill's `Ok` text goes to stdout; its `Err` text, or why it was
/// stopped (fuel, deadline, memory, trap), goes to stderr.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity run skill.wasm --input 'hello world'\n  echo hi | boternity run skill.wasm --input-file -\n  boternity run skill.wasm --input x --grant read_env --allow-env LANG\n\nExit status:\n  0  the skill returned Ok\n  1  the skill returned Err\n  2  the skill was stopped (limit, trap, denied) or could not be loaded"
)]
pub struct Opts {
    /// A skill binary (`skill.wasm`: a component or a legacy stub), or the
    /// name of an installed skill.
    skill: String,
    #[command(flatten)]
    store: super::StoreArgs,
    /// The input text.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input from a file (`-` for stdin).
    #[arg(long)]
    input_file: Option<PathBuf>,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Output format: the skill's text, or the whole result as one JSON object.
    #[arg(long, value_enum, default_value_t)]
    message_format: MessageFormat,
}

/// Limits and grants of a run (defaults: the trust tier's limits, no grants).
#[derive(clap::Args, Clone, Debug)]
pub struct SandboxArgs {
    /// The trust tier whose default limits apply (default: untrusted for a
    /// file, the install-time tier for an installed skill).
    #[arg(long, value_parser = parse_tier)]
    pub trust_tier: Option<TrustTier>,
    /// Grant a capability (repeatable): read_file, write_file, http_get, http_post, read_env, recall_memory, get_secret.
    #[arg(long = "grant", value_name = "CAP", value_parser = parse_capability)]
    pub grants: Vec<Capability>,
    /// With read_env: a variable the skill may read (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    pub env_vars: Vec<String>,
    /// With http_get/http_post: a host (or host:port) the skill may reach (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub http_hosts: Vec<String>,
    /// With read_file/write_file: the folder they are confined to.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// With get_secret: a secret name the skill may fetch (repeatable).
    #[arg(long = "allow-secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// Fuel (wasm instructions, roughly) the call may use.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Linear-memory cap in MiB.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Largest output in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_output: Option<usize>,
    /// Largest input in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_input: Option<usize>,
    /// Largest table, in elements.
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<u64>,
    /// Wasm stack size in KiB; deeper recursion is a stack overflow.
    #[arg(long, value_name = "KIB")]
    pub stack_kib: Option<usize>,
    /// The bot's name and slug as `get-context` reports them.
    #[arg(long, default_value = "boternity")]
    pub bot_name: String,
    #[arg(long, default_value = "boternity")]
    pub bot_slug: String,
}

pub fn parse_tier(s: &str) -> Result<TrustTier, String> {
    s.parse()
        .map_err(|e: boternity_skills::manifest::ManifestError| e.to_string())
}

pub fn parse_capability(s: &str) -> Result<Capability, String> {
    s.parse()
        .map_err(|e: boternity_skills::manifest::ManifestError| e.to_string())
}

impl SandboxArgs {
    pub fn limits(&self, default_tier: TrustTier) -> Limits {
        let mut limits = Limits::for_tier(self.trust_tier.unwrap_or(default_tier));
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(ms) = self.timeout_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib * 1024 * 1024;
        }
        if let Some(max) = self.max_output {
            limits.max_output_bytes = max;
        }
        if let Some(max) = self.max_input {
            limits.max_input_bytes = max;
        }
        if let Some(max) = self.max_table_elements {
            limits.table_elements = max;
        }
        limits
    }

    /// The executor for these settings (the stack size is engine-wide).
    pub fn executor(&self) -> anyhow::Result<Executor> {
        let mut config = ExecutorConfig::default();
        if let Some(kib) = self.stack_kib {
            config.max_wasm_stack = kib * 1024;
        }
        Ok(Executor::with_config(config, HostServices::default())?)
    }

    /// These flags' grants, added to `base` (e.g. an installed skill's).
    pub fn grants(&self, mut base: Grants) -> Grants {
        base.extend(&Grants {
            capabilities: self.grants.iter().copied().collect(),
            env_vars: self.env_vars.iter().cloned().collect(),
            http_hosts: self.http_hosts.iter().cloned().collect(),
            secrets: self.secrets.iter().cloned().collect(),
            data_dir: self.data_dir.clone(),
        });
        base
    }

    pub fn invocation(
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
            limits: self.limits(default_tier),
            grants: self.grants(grants),
        }
    }
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let input = read_input(self.input.clone(), self.input_file.as_ref())?;
        let path = std::path::Path::new(&self.skill);
        let runtime = tokio::runtime::Runtime::new()?;
        let executor = self.sandbox.executor()?;
        let outcome = if path.is_file() {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "skill".into());
            let invocation =
                self.sandbox
                    .invocation(&name, input, Grants::none(), TrustTier::Untrusted);
            runtime.block_on(async {
                let skill = executor.load_file(path)?;
                executor.run(&skill, invocation).await
            })
        } else {
            let store = self.store.open()?;
            let installed = store.get(&self.skill).with_context(|| {
                format!("`{}` is neither a file nor an installed skill", self.skill)
            })?;
            // An installed skill runs under the tier it was installed with,
            // unless the caller names one.
            let invocation = self.sandbox.invocation(
                &installed.name,
                input,
                installed.grants(&store),
                installed.trust_tier(),
            );
            runtime.block_on(async {
                let skill = installed.load(&executor)?;
                executor.run(&skill, invocation).await
            })
        };
        Ok(report(outcome, self.message_format))
    }
}

pub fn read_input(input: Option<String>, file: Option<&PathBuf>) -> anyhow::Result<String> {
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
pub fn report(
    outcome: Result<Outcome, boternity_skills::executor::ExecError>,
    format: MessageFormat,
) -> ExitCode {
    match (format, outcome) {
        (MessageFormat::Json, Ok(o)) => {
            let code = if o.result.is_ok() { 0 } else { 1 };
            let (ok, err) = match &o.result {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            emit_json(&json!({
                "reason": "skill-run", "ok": ok, "err": err,
                "fuel_consumed": o.fuel_consumed, "peak_memory_bytes": o.peak_memory_bytes,
                "duration_us": o.duration_us, "invocation_id": o.invocation_id,
                "logs": o.logs, "logs_truncated": o.logs_truncated,
                "stdout": o.stdout, "stderr": o.stderr, "stub": o.stub,
            }));
            ExitCode::from(code)
        }
        (MessageFormat::Json, Err(e)) => {
            emit_json(&json!({"reason": "skill-stopped", "error": e.to_string()}));
            ExitCode::from(2)
        }
        (MessageFormat::Human, Ok(o)) => {
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
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
