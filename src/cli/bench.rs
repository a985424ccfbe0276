//! `boternity bench`: what invoking a skill costs, measured in one run.

use std::process::ExitCode;

use anyhow::Context;
use boternity_skills::executor::Invocation;
use boternity_skills::executor::bench::{self, BenchOptions};
use boternity_skills::skill::source::WASM_FILE;

use super::args::{CacheArgs, OutputArgs, ResolvedSkill, SkillArg};
use super::message::{self, Bench};

/// Measure what invoking a skill costs (compile, cold start, warm invoke),
/// step by step.
///
/// In one process: `compile_ms` (JIT compile); `cold_start_ms`, a skill's
/// first call in a process from its installed .cwasm, and its steps
/// (`cold_read_check_ms`, `cold_deserialize_ms`, `cold_link_ms`,
/// `cold_instantiate_ms`, `cold_first_call_ms`), and `cold_first_verify_ms`
/// (the first load after the .cwasm was written: hashed whole);
/// `invoke_median_us` and `invoke_p99_us` (warm: fresh store, instantiate,
/// call `execute`, drop) and its steps (`warm_store_us`,
/// `warm_instantiate_us`, `warm_call_us`, `warm_teardown_us`); and
/// `compile_per_call_median_us` (the old executor: compile, link,
/// instantiate and call every time). Build in release mode for meaningful
/// figures.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo run --release -- bench skill.wasm --input 'hello world'\n  boternity bench word-count --iterations 20000 --message-format json"
)]
pub struct Opts {
    #[command(flatten)]
    skill: SkillArg,
    /// The input passed to `execute`.
    #[arg(long, default_value = "hello world")]
    input: String,
    /// Warm invocations to measure.
    #[arg(long, default_value_t = 5000)]
    iterations: usize,
    /// Compile-per-call invocations to measure.
    #[arg(long, default_value_t = 20)]
    compile_iterations: usize,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let wasm_path = match self.skill.resolve()? {
            ResolvedSkill::File(path) => path,
            ResolvedSkill::Installed { skill, .. } => skill.dir.join(WASM_FILE),
        };
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("cannot read {}", wasm_path.display()))?;
        let options = BenchOptions {
            iterations: self.iterations.max(1),
            compile_per_call_iterations: self.compile_iterations.max(1),
            invocation: Invocation::new("bench", self.input.clone()),
            config: self.cache.config(),
            services: super::host_env::services(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let report = runtime.block_on(bench::bench(&wasm, &options))?;
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        if self.format.json() {
            message::emit(&Bench {
                report: &report,
                profile,
            });
            return Ok(ExitCode::SUCCESS);
        }
        if cfg!(debug_assertions) {
            eprintln!("note: this is a debug build of boternity; use --release for real figures");
        }
        let r = &report;
        println!("compile_ms                  {:>12.3}", r.compile_ms);
        println!(
            "cold_start_ms               {:>12.3}   (median of {} fresh executors)",
            r.cold_start_ms, r.cold_rounds
        );
        println!("  read + check .cwasm       {:>12.3}", r.cold_read_check_ms);
        println!(
            "  deserialize               {:>12.3}",
            r.cold_deserialize_ms
        );
        println!("  link (InstancePre)        {:>12.3}", r.cold_link_ms);
        println!(
            "  instantiate               {:>12.3}",
            r.cold_instantiate_ms
        );
        println!("  first call                {:>12.3}", r.cold_first_call_ms);
        println!(
            "cold_first_verify_ms        {:>12.3}   (first load of a new .cwasm: hashed, copied to the cache)",
            r.cold_first_verify_ms
        );
        println!("invoke_median_us            {:>12.1}", r.invoke_median_us);
        println!("  store + WASI context      {:>12.1}", r.warm_store_us);
        println!(
            "  instantiate               {:>12.1}",
            r.warm_instantiate_us
        );
        println!("  call                      {:>12.1}", r.warm_call_us);
        println!("  teardown                  {:>12.1}", r.warm_teardown_us);
        println!("invoke_p99_us               {:>12.1}", r.invoke_p99_us);
        println!(
            "compile_per_call_median_us  {:>12.1}",
            r.compile_per_call_median_us
        );
        println!("speedup (per-call / warm)   {:>12.0}x", r.speedup);
        println!("load_origin                 {:>12}", r.load_origin);
        Ok(ExitCode::SUCCESS)
    }
}
