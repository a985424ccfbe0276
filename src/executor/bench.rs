//! `bench`: measures, in one process and one run, what a skill invocation
//! costs: JIT compilation, a cold start from an installed `.cwasm` step by
//! step (read and check, deserialize, link, instantiate, first call), warm
//! invocations step by step (store and WASI context, instantiate from the
//! cached `InstancePre`, call, teardown), and the old executor's way
//! (compile, link, instantiate and call every time). Every call goes through
//! [`Executor::run`] itself (its deadline backstop and ticker included),
//! every load through [`Executor::load`]: what is measured is what callers
//! get.

use std::time::{Duration, Instant};

use wasmtime::component::Component;

use super::{
    CompileCache, ExecError, Executor, ExecutorConfig, HostServices, Invocation, LoadedSkill,
    Precompiled, SkillSource,
};

/// How much to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Warm invocations measured.
    pub iterations: usize,
    /// Compile-per-call invocations measured (each takes milliseconds).
    pub compile_per_call_iterations: usize,
    pub invocation: Invocation,
    /// The warm executor's configuration: where it finds (or leaves) the
    /// compiled component, and the signing key. The cold starts use its key
    /// and engine settings, with a compile cache of their own.
    pub config: ExecutorConfig,
    pub services: HostServices,
}

/// The figures, in the units their names say. Each step of the cold start and
/// of a warm call is the median over its rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub compile_ms: f64,
    /// A skill's first call in a process, from its installed `.cwasm`
    /// (verified before): the sum of the five `cold_` steps below.
    pub cold_start_ms: f64,
    /// Reading and checking the `.cwasm` record (and the compile cache
    /// entry that stands for the file).
    pub cold_read_check_ms: f64,
    pub cold_deserialize_ms: f64,
    /// Linking: the `InstancePre`.
    pub cold_link_ms: f64,
    /// The store, WASI context and instantiation.
    pub cold_instantiate_ms: f64,
    /// The first call to `execute`, and dropping the store.
    pub cold_first_call_ms: f64,
    /// The first load after the `.cwasm` was written or changed: read and
    /// hash the whole file, deserialize, link, and copy it into the compile
    /// cache (synced to disk), for comparison.
    pub cold_first_verify_ms: f64,
    /// Cold starts measured (each with a fresh executor).
    pub cold_rounds: usize,
    /// A warm call (fresh store, instantiate, `execute`, drop), through
    /// `Executor::run`.
    pub invoke_median_us: f64,
    pub invoke_p99_us: f64,
    /// A warm call's steps: the store and WASI context, instantiation, the
    /// call, and teardown (collecting the outcome and dropping the store).
    pub warm_store_us: f64,
    pub warm_instantiate_us: f64,
    pub warm_call_us: f64,
    pub warm_teardown_us: f64,
    /// The old executor's way: validate, compile, link, instantiate and call
    /// on every invocation (through `load` and `run` of an executor that
    /// keeps no loaded skill).
    pub compile_per_call_median_us: f64,
    /// `compile_per_call_median_us / invoke_median_us`.
    pub speedup: f64,
    pub iterations: usize,
    pub compile_per_call_iterations: usize,
    /// Where the warm executor's component came from: `compiled`, or
    /// `cache` (the compile cache had it).
    pub load_origin: &'static str,
}

/// Cold starts measured.
const COLD_ROUNDS: usize = 15;

/// Runs the measurements for the component `wasm`.
pub async fn bench(wasm: &[u8], options: &BenchOptions) -> Result<BenchReport, ExecError> {
    let executor = Executor::with_config(options.config.clone(), options.services.clone())?;
    // Validation once, outside every timing: it is not what is measured.
    crate::skill::validate::validate_component(wasm)?;

    // JIT compile alone.
    let started = Instant::now();
    let component =
        Component::new(&executor.engine, wasm).map_err(|e| ExecError::Compile(e.into()))?;
    let compile = started.elapsed();
    drop(component);

    // Cold start: a fresh executor (engine set-up is not counted) loads the
    // installed `.cwasm` (check, deserialize, link) and makes the first call.
    // Its compile cache is a folder of its own, so the first load verifies
    // the file by its hash and later ones find it unchanged; without a
    // compile cache (`--no-cache`) every load hashes the whole file.
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ExecError::Io { path, source }
    };
    let dir = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
    let (cwasm, record) = executor.precompile(wasm)?;
    let wasm_path = dir.path().join("skill.wasm");
    let cwasm_path = dir.path().join("skill.cwasm");
    std::fs::write(&wasm_path, wasm).map_err(io(&wasm_path))?;
    std::fs::write(&cwasm_path, &cwasm).map_err(io(&cwasm_path))?;
    let cold_config = ExecutorConfig {
        compile_cache: options
            .config
            .compile_cache
            .as_ref()
            .map(|_| CompileCache::new(dir.path().join(super::COMPILE_CACHE_DIR))),
        cwasm_key: Some(executor.cwasm_key.clone()),
        ..options.config.clone()
    };
    // A file timestamp and a stamp taken in one clock tick are never trusted
    // without hashing: let the clock move on.
    std::thread::sleep(Duration::from_millis(25));
    let mut first_verify = Duration::ZERO;
    let mut steps: [Vec<Duration>; 6] = Default::default();
    for round in 0..=COLD_ROUNDS + 1 {
        let cold = Executor::with_config(cold_config.clone(), options.services.clone())?;
        let source = SkillSource::File {
            wasm: &wasm_path,
            precompiled: Some(Precompiled {
                cwasm: cwasm_path.clone(),
                record: record.clone(),
            }),
        };
        let started = Instant::now();
        let skill = cold.load(source)?;
        let loaded = started.elapsed();
        let (instantiate, call) = timed_call(&cold, &skill, &options.invocation).await?;
        let total = started.elapsed();
        debug_assert_eq!(skill.origin(), Some(super::Origin::Precompiled));
        match round {
            0 => {
                first_verify = loaded;
                std::thread::sleep(Duration::from_millis(25));
            }
            // The second load re-stamps what the first stamped in its tick.
            1 => {}
            _ => {
                let t = skill.timings();
                for (samples, d) in steps.iter_mut().zip([
                    t.read_check,
                    t.deserialize,
                    t.link,
                    instantiate,
                    call,
                    total,
                ]) {
                    samples.push(d);
                }
            }
        }
    }
    let [
        mut read_check,
        mut deserialize,
        mut link,
        mut instantiate,
        mut first_call,
        _,
    ] = steps;
    let cold_read_check = percentile(&mut read_check, 0.5);
    let cold_deserialize = percentile(&mut deserialize, 0.5);
    let cold_link = percentile(&mut link, 0.5);
    let cold_instantiate = percentile(&mut instantiate, 0.5);
    let cold_first_call = percentile(&mut first_call, 0.5);

    // Warm: what a bot calling a skill in a loop pays.
    let skill = executor.load(SkillSource::Bytes(wasm))?;
    let load_origin = skill.origin().map_or("stub", super::Origin::as_str);
    for _ in 0..options.iterations.min(100) {
        executor.run(&skill, options.invocation.clone()).await?;
    }
    let mut warm = Vec::with_capacity(options.iterations);
    for _ in 0..options.iterations {
        let started = Instant::now();
        executor.run(&skill, options.invocation.clone()).await?;
        warm.push(started.elapsed());
    }
    // The same calls, step by step.
    let mut warm_steps: [Vec<Duration>; 4] = Default::default();
    for _ in 0..options.iterations {
        let (_, steps) = executor
            .run_timed(&skill, options.invocation.clone())
            .await?;
        for (samples, d) in
            warm_steps
                .iter_mut()
                .zip([steps.store, steps.instantiate, steps.call, steps.teardown])
        {
            samples.push(d);
        }
    }
    let [mut w_store, mut w_instantiate, mut w_call, mut w_teardown] = warm_steps;

    // The old way: compile, link, instantiate and call on every invocation;
    // here an executor that keeps no loaded skill, so each load compiles.
    let per_call_executor = Executor::with_config(
        ExecutorConfig {
            loaded_cache_bytes: 0,
            compile_cache: None,
            ..options.config.clone()
        },
        options.services.clone(),
    )?;
    let mut per_call = Vec::with_capacity(options.compile_per_call_iterations);
    for _ in 0..options.compile_per_call_iterations {
        let started = Instant::now();
        let skill = per_call_executor.load(SkillSource::Bytes(wasm))?;
        per_call_executor
            .run(&skill, options.invocation.clone())
            .await?;
        per_call.push(started.elapsed());
    }

    let invoke_median = percentile(&mut warm, 0.50);
    let per_call_median = percentile(&mut per_call, 0.50);
    Ok(BenchReport {
        compile_ms: millis(compile),
        cold_start_ms: millis(
            cold_read_check + cold_deserialize + cold_link + cold_instantiate + cold_first_call,
        ),
        cold_read_check_ms: millis(cold_read_check),
        cold_deserialize_ms: millis(cold_deserialize),
        cold_link_ms: millis(cold_link),
        cold_instantiate_ms: millis(cold_instantiate),
        cold_first_call_ms: millis(cold_first_call),
        cold_first_verify_ms: millis(first_verify),
        cold_rounds: COLD_ROUNDS,
        invoke_median_us: micros(invoke_median),
        invoke_p99_us: micros(percentile(&mut warm, 0.99)),
        warm_store_us: micros(percentile(&mut w_store, 0.5)),
        warm_instantiate_us: micros(percentile(&mut w_instantiate, 0.5)),
        warm_call_us: micros(percentile(&mut w_call, 0.5)),
        warm_teardown_us: micros(percentile(&mut w_teardown, 0.5)),
        compile_per_call_median_us: micros(per_call_median),
        speedup: per_call_median.as_secs_f64() / invoke_median.as_secs_f64().max(1e-9),
        iterations: options.iterations,
        compile_per_call_iterations: options.compile_per_call_iterations,
        load_origin,
    })
}

/// One call through [`Executor::run`]: (store + instantiate, call + teardown).
async fn timed_call(
    executor: &Executor,
    skill: &LoadedSkill,
    invocation: &Invocation,
) -> Result<(Duration, Duration), ExecError> {
    let (_, steps) = executor.run_timed(skill, invocation.clone()).await?;
    Ok((steps.store + steps.instantiate, steps.call + steps.teardown))
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let index = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[index]
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0
}

fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6 * 10.0).round() / 10.0
}
