//! `bench`: measures, in one process and one run, what a skill invocation
//! costs: JIT compilation, a cold start from a `.cwasm`, warm invocations
//! (fresh store, instantiate from the cached `InstancePre`, call), and the old
//! executor's way (compile, link, instantiate and call every time).

use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};

use super::{
    ExecError, Executor, ExecutorConfig, HostServices, Invocation, bindings::SkillPlugin,
    host::HostState,
};

/// How much to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Warm invocations measured.
    pub iterations: usize,
    /// Compile-per-call invocations measured (each takes milliseconds).
    pub compile_per_call_iterations: usize,
    pub invocation: Invocation,
}

/// The figures, in the units their names say.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub compile_ms: f64,
    pub cold_start_ms: f64,
    pub invoke_median_us: f64,
    pub invoke_p99_us: f64,
    pub compile_per_call_median_us: f64,
    /// `compile_per_call_median_us / invoke_median_us`.
    pub speedup: f64,
    pub iterations: usize,
    pub compile_per_call_iterations: usize,
}

/// Runs the measurements for the component `wasm`.
pub async fn bench(wasm: &[u8], options: &BenchOptions) -> Result<BenchReport, ExecError> {
    let executor = Executor::new()?;
    // Validation once, outside every timing: it is not what is measured.
    crate::skill::validate::validate_component(wasm)?;

    // JIT compile alone.
    let started = Instant::now();
    let component =
        Component::new(&executor.engine, wasm).map_err(|e| ExecError::Compile(format!("{e:#}")))?;
    let compile = started.elapsed();
    drop(component);

    // Cold start: a fresh executor (engine set-up is not counted) loads the
    // `.cwasm` (hash check + deserialize + link) and makes the first call.
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
    let cold_executor = Executor::with_config(ExecutorConfig::default(), HostServices::default())?;
    let started = Instant::now();
    let skill = cold_executor.load_precompiled(&wasm_path, &cwasm_path, &record)?;
    cold_executor
        .run(&skill, options.invocation.clone())
        .await?;
    let cold_start = started.elapsed();
    debug_assert_eq!(skill.origin(), Some(super::Origin::Precompiled));

    // Warm: what a bot calling a skill in a loop pays.
    let skill = executor.load(wasm)?;
    for _ in 0..options.iterations.min(100) {
        executor.run(&skill, options.invocation.clone()).await?;
    }
    let mut warm = Vec::with_capacity(options.iterations);
    for _ in 0..options.iterations {
        let started = Instant::now();
        executor.run(&skill, options.invocation.clone()).await?;
        warm.push(started.elapsed());
    }

    // The old way: compile, link, instantiate and call on every invocation.
    let mut per_call = Vec::with_capacity(options.compile_per_call_iterations);
    for _ in 0..options.compile_per_call_iterations {
        let started = Instant::now();
        compile_link_and_call(&executor, wasm, &options.invocation).await?;
        per_call.push(started.elapsed());
    }

    let invoke_median = percentile(&mut warm, 0.50);
    let per_call_median = percentile(&mut per_call, 0.50);
    Ok(BenchReport {
        compile_ms: millis(compile),
        cold_start_ms: millis(cold_start),
        invoke_median_us: micros(invoke_median),
        invoke_p99_us: micros(percentile(&mut warm, 0.99)),
        compile_per_call_median_us: micros(per_call_median),
        speedup: per_call_median.as_secs_f64() / invoke_median.as_secs_f64().max(1e-9),
        iterations: options.iterations,
        compile_per_call_iterations: options.compile_per_call_iterations,
    })
}

async fn compile_link_and_call(
    executor: &Executor,
    wasm: &[u8],
    invocation: &Invocation,
) -> Result<(), ExecError> {
    let fail = |e: wasmtime::Error| ExecError::Trap(format!("{e:#}"));
    let component = Component::new(&executor.engine, wasm).map_err(fail)?;
    let mut linker = Linker::<HostState>::new(&executor.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(fail)?;
    SkillPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(fail)?;
    let (mut store, _, _) = executor.new_store(invocation, "bench".into(), Instant::now())?;
    let instance = SkillPlugin::instantiate_async(&mut store, &component, &linker)
        .await
        .map_err(fail)?;
    instance
        .call_execute(&mut store, &invocation.input)
        .await
        .map_err(fail)?
        .map_err(ExecError::Trap)?;
    Ok(())
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
