//! The one executor: runs every skill binary (components, cached precompiled
//! components, legacy stubs) in wasmtime under fuel, a wall-clock deadline, a
//! memory cap and capability-gated host functions.
//!
//! One `Engine` and `Linker` per executor (per policy), shared by every call; a
//! compiled component is cached as an `InstancePre` by its sha256; each
//! invocation gets a fresh `Store`, so no state survives between calls. The API
//! is async: epoch ticks make a running skill yield, so an endless loop cannot
//! block the caller's runtime threads.

pub mod bench;
pub mod cache;
mod capture;
pub mod cwasm;
pub mod grants;
pub mod host;
pub mod limits;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

pub use cache::CompileCache;
pub use cwasm::{CwasmKey, CwasmRecord};
pub use grants::Grants;
pub use host::{EnvSecrets, HostServices, LogEntry, MemoryProvider, NoMemory, SecretsProvider};
pub use limits::Limits;

use crate::digest::sha256_hex;
use crate::skill::stub::StubMarker;
use crate::skill::validate::{self, BinaryKind};
use host::{HostState, HostTrap};

mod bindings {
    // The macro takes literals only: "skill-plugin" is `world::WORLD_NAME`.
    wasmtime::component::bindgen!({
        path: "wit",
        world: "skill-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use bindings::{SkillPlugin, SkillPluginPre};

/// How often the epoch advances: the deadline's resolution and how often a
/// running skill yields to the async runtime.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Engine-wide settings (one executor per policy).
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Largest wasm stack; deeper recursion traps with "stack overflow".
    pub max_wasm_stack: usize,
    /// Use the pooling allocator (fast instantiation; reserves address space).
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// The key `.cwasm` records are signed with (default: created on first
    /// use at [`CwasmKey::default_path`]; if that fails, a per-process key).
    pub cwasm_key: Option<CwasmKey>,
    /// The on-disk compile cache: compiled components are kept there and
    /// installed `.cwasm`s, once verified, are loaded from this tool's own
    /// copy without hashing them again. `None` (the default): components are
    /// compiled in memory and every installed `.cwasm` is hashed on load.
    pub compile_cache: Option<CompileCache>,
}

impl ExecutorConfig {
    /// For a process that makes one call (the CLI): no instance pool (a pool
    /// pays off from the second instantiation; setting one up costs more than
    /// it saves on the first) and the compile cache in the cache folder.
    pub fn for_one_call() -> ExecutorConfig {
        ExecutorConfig {
            pooling: false,
            compile_cache: Some(CompileCache::default_location()),
            ..ExecutorConfig::default()
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_wasm_stack: limits::WASM_STACK_BYTES,
            pooling: true,
            pool_instances: 128,
            cwasm_key: None,
            compile_cache: None,
        }
    }
}

/// One invocation of `execute`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub input: String,
    pub skill_name: String,
    pub bot_name: String,
    pub bot_slug: String,
    pub limits: Limits,
    pub grants: Grants,
}

impl Invocation {
    /// An invocation with the untrusted defaults and no grants.
    pub fn new(skill_name: impl Into<String>, input: impl Into<String>) -> Self {
        Invocation {
            input: input.into(),
            skill_name: skill_name.into(),
            bot_name: "boternity".into(),
            bot_slug: "boternity".into(),
            limits: Limits::UNTRUSTED,
            grants: Grants::none(),
        }
    }
}

/// What a finished invocation produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The skill's own answer: `Ok` text or `Err` text (serialized as the
    /// fields `ok` and `err`, one of them null).
    #[serde(flatten, serialize_with = "ok_and_err")]
    pub result: Result<String, String>,
    pub fuel_consumed: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
    pub invocation_id: String,
    pub logs: Vec<LogEntry>,
    pub logs_truncated: bool,
    /// What the skill printed (bounded by `Limits::max_captured_bytes`).
    pub stdout: String,
    pub stderr: String,
    /// stdout or stderr went past the bound and was cut.
    pub output_truncated: bool,
    /// It was a legacy JSON stub: `result` is its body, nothing ran.
    pub stub: bool,
}

/// `Result<String, String>` as `{"ok": …, "err": …}`, one of them null: the
/// shape JSON readers expect, rather than serde's `{"Ok": …}`.
fn ok_and_err<S: serde::Serializer>(
    result: &Result<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let (ok, err) = match result {
        Ok(text) => (Some(text), None),
        Err(text) => (None, Some(text)),
    };
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("ok", &ok)?;
    map.serialize_entry("err", &err)?;
    map.end()
}

/// Why an invocation did not produce the skill's answer.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Binary(#[from] validate::ValidateError),
    #[error("skill `{name}` has no skill.wasm (a prompt skill?); nothing to run")]
    NoBinary { name: String },
    #[error("cannot read or write {}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("input is {size} bytes, over the {max}-byte limit")]
    InputTooLarge { size: usize, max: usize },
    #[error("cannot compile the component: {0}")]
    Compile(String),
    #[error("cannot link the component: {0}")]
    Link(String),
    #[error("fuel exhausted: the skill used all {fuel} units it was given")]
    FuelExhausted { fuel: u64 },
    #[error("deadline exceeded after {elapsed_ms} ms (the limit is {limit_ms} ms)")]
    DeadlineExceeded { elapsed_ms: u64, limit_ms: u64 },
    #[error("memory limit of {limit_mib} MiB exceeded")]
    MemoryLimit { limit_mib: u64 },
    #[error("table limit of {limit} elements exceeded")]
    TableLimit { limit: u64 },
    #[error("stack overflow: the skill recursed deeper than the {limit_kib} KiB wasm stack")]
    StackOverflow { limit_kib: usize },
    #[error("output too large: {size} bytes, over the {max}-byte limit")]
    OutputTooLarge { size: usize, max: usize },
    #[error("{0}")]
    Denied(String),
    #[error("the skill trapped: {0}")]
    Trap(String),
}

/// Marks the trap raised by the epoch callback when the deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineHit;

/// A skill ready to run.
pub enum LoadedSkill {
    Component {
        pre: SkillPluginPre<HostState>,
        component: Component,
        sha256: String,
        origin: Origin,
        /// What loading it took.
        timings: LoadTimings,
    },
    Stub(StubMarker),
}

/// What loading a component took, step by step (zero for steps not taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTimings {
    /// Reading and checking the `.cwasm` and its record (or the cache entry).
    pub read_check: Duration,
    /// Deserializing (or compiling) it.
    pub deserialize: Duration,
    /// Linking: the `InstancePre` against this executor's host.
    pub link: Duration,
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from the component in this process.
    Compiled,
    /// Deserialized from a `.cwasm` this tool wrote (hash checked).
    Precompiled,
    /// Deserialized from the on-disk compile cache (this tool's own entry,
    /// unchanged since it was written or hash checked).
    Cached,
}

impl Origin {
    /// `compiled`, `precompiled` or `cache`, as `skill-run` and `bench` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Compiled => "compiled",
            Origin::Precompiled => "precompiled",
            Origin::Cached => "cache",
        }
    }
}

impl LoadedSkill {
    /// `None` for stubs.
    pub fn origin(&self) -> Option<Origin> {
        match self {
            LoadedSkill::Component { origin, .. } => Some(*origin),
            LoadedSkill::Stub(_) => None,
        }
    }

    /// What loading it took (zero for stubs).
    pub fn timings(&self) -> LoadTimings {
        match self {
            LoadedSkill::Component { timings, .. } => *timings,
            LoadedSkill::Stub(_) => LoadTimings::default(),
        }
    }
}

/// The executor. Cheap to share (`Arc`); safe to use from many tasks at once.
pub struct Executor {
    engine: Engine,
    linker: Linker<HostState>,
    config: ExecutorConfig,
    cache: Mutex<HashMap<String, Arc<LoadedSkill>>>,
    services: HostServices,
    stop_ticker: Arc<AtomicBool>,
    ticker_started: std::sync::Once,
    invocations: AtomicU64,
    cwasm_key: CwasmKey,
    fingerprint: String,
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Executor {
    /// An executor with the default engine settings and host services.
    pub fn new() -> Result<Executor, ExecError> {
        Executor::with_config(ExecutorConfig::default(), HostServices::default())
    }

    pub fn with_config(
        config: ExecutorConfig,
        services: HostServices,
    ) -> Result<Executor, ExecError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| ExecError::Compile(format!("{e:#}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        let link = |e: wasmtime::Error| ExecError::Link(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        SkillPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(link)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let cwasm_key = match config.cwasm_key.clone() {
            Some(key) => key,
            None => CwasmKey::load_or_create(&CwasmKey::default_path())
                .or_else(|e| {
                    tracing::debug!("no shared .cwasm key ({e}); using one for this process only");
                    CwasmKey::random()
                })
                .map_err(|source| ExecError::Io {
                    path: CwasmKey::default_path(),
                    source,
                })?,
        };
        let fingerprint = fingerprint(&engine);
        Ok(Executor {
            cwasm_key,
            fingerprint,
            ticker_started: std::sync::Once::new(),
            engine,
            linker,
            config,
            cache: Mutex::new(HashMap::new()),
            services,
            stop_ticker,
            invocations: AtomicU64::new(0),
        })
    }

    /// The engine's compatibility fingerprint: a `.cwasm` from another wasmtime
    /// version or configuration never matches it.
    pub fn engine_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Loads a skill binary (component or stub), compiling a component once:
    /// later loads of the same bytes come from the in-process cache (and,
    /// with a [`CompileCache`], from its entry in later processes).
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedSkill>, ExecError> {
        self.load_hashed(bytes, sha256_hex(bytes))
    }

    fn load_hashed(&self, bytes: &[u8], sha256: String) -> Result<Arc<LoadedSkill>, ExecError> {
        if let Some(hit) = self.cached(&sha256) {
            return Ok(hit);
        }
        let started = Instant::now();
        if let Some(cache) = &self.config.compile_cache
            && let Some(hit) = cache.lookup(&self.cwasm_key, &sha256, &self.fingerprint)
        {
            let read_check = started.elapsed();
            let deserializing = Instant::now();
            match self.deserialize_hit(hit) {
                Ok(component) => {
                    let timings = LoadTimings {
                        read_check,
                        deserialize: deserializing.elapsed(),
                        link: Duration::ZERO,
                    };
                    let skill = self.prepare(component, sha256.clone(), Origin::Cached, timings)?;
                    return Ok(self.remember(sha256, skill));
                }
                Err(reason) => {
                    tracing::debug!(%reason, "not using the compile cache entry; compiling")
                }
            }
        }
        let skill = match validate::classify(bytes)? {
            BinaryKind::Stub(stub) => LoadedSkill::Stub(stub),
            BinaryKind::CoreModule => return Err(validate::ValidateError::CoreModule.into()),
            BinaryKind::Component => {
                // Clear errors for bad bytes or another world, before compiling.
                validate::validate_component(bytes)?;
                let compiling = Instant::now();
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| ExecError::Compile(format!("{e:#}")))?;
                let timings = LoadTimings {
                    deserialize: compiling.elapsed(),
                    ..LoadTimings::default()
                };
                let skill = self.prepare(component, sha256.clone(), Origin::Compiled, timings)?;
                if let (Some(cache), LoadedSkill::Component { component, .. }) =
                    (&self.config.compile_cache, &skill)
                    && let Ok(cwasm) = component.serialize()
                {
                    let record = self.cwasm_key.sign(
                        sha256_hex(&cwasm),
                        self.fingerprint.clone(),
                        sha256.clone(),
                    );
                    cache.insert(&self.cwasm_key, &record, &cwasm, None);
                }
                skill
            }
        };
        Ok(self.remember(sha256, skill))
    }

    /// Loads an installed component through its `.cwasm`, but only if `record`
    /// (written by [`Executor::precompile`]) matches this engine and the file's
    /// bytes; otherwise compiles `wasm_path` and says so at debug level.
    pub fn load_precompiled(
        &self,
        wasm_path: &Path,
        cwasm_path: &Path,
        record: &CwasmRecord,
    ) -> Result<Arc<LoadedSkill>, ExecError> {
        if let Some(hit) = self.cached(&record.wasm_sha256) {
            return Ok(hit);
        }
        match self.deserialize_checked(cwasm_path, record) {
            Ok((component, timings)) => {
                let skill = self.prepare(
                    component,
                    record.wasm_sha256.clone(),
                    Origin::Precompiled,
                    timings,
                )?;
                Ok(self.remember(record.wasm_sha256.clone(), skill))
            }
            Err(reason) => {
                tracing::debug!(cwasm = %cwasm_path.display(), %reason, "not using the precompiled artifact; compiling");
                let bytes = std::fs::read(wasm_path).map_err(|source| ExecError::Io {
                    path: wasm_path.to_path_buf(),
                    source,
                })?;
                self.load(&bytes)
            }
        }
    }

    /// The component in an installed `.cwasm`, if its record is this
    /// machine's, for this engine, and the file's bytes are the ones it
    /// names. The bytes hashed are the bytes deserialized (read once);
    /// with a compile cache, an installed file verified before and unchanged
    /// since (same inode, size, mtime and ctime) is loaded from this tool's
    /// own copy of those bytes instead, without hashing.
    fn deserialize_checked(
        &self,
        cwasm_path: &Path,
        record: &CwasmRecord,
    ) -> Result<(Component, LoadTimings), String> {
        let started = Instant::now();
        if !self.cwasm_key.verify(record) {
            return Err("its record was not signed with this machine's key".into());
        }
        if record.engine != self.fingerprint {
            return Err("it was compiled by another engine version or configuration".into());
        }
        let cache = self.config.compile_cache.as_ref();
        let hit =
            cache.and_then(|c| c.lookup(&self.cwasm_key, &record.wasm_sha256, &self.fingerprint));
        if let Some(hit) = hit.as_ref().filter(|hit| {
            std::fs::metadata(cwasm_path)
                .is_ok_and(|meta| hit.entry().vouches_for_source(&record.sha256, &meta))
        }) {
            let read_check = started.elapsed();
            let deserializing = Instant::now();
            let component = self.deserialize_hit_ref(hit)?;
            return Ok((
                component,
                LoadTimings {
                    read_check,
                    deserialize: deserializing.elapsed(),
                    link: Duration::ZERO,
                },
            ));
        }
        let (bytes, meta) = cache::read_stable(cwasm_path).map_err(|e| e.to_string())?;
        if sha256_hex(&bytes) != record.sha256 {
            return Err("its sha256 does not match the record this tool wrote".into());
        }
        let read_check = started.elapsed();
        let deserializing = Instant::now();
        // SAFETY: deserializing runs no checks on the machine code inside. The
        // record is signed with this machine's key, so this tool wrote it when
        // it compiled these bytes with an engine of the same fingerprint; the
        // bytes were read once and hashed above and match it: our own
        // compiler's output, unchanged.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) }
            .map_err(|e| format!("{e:#}"))?;
        let deserialize = deserializing.elapsed();
        if let Some(cache) = cache {
            match &hit {
                Some(hit) => cache.add_source(&self.cwasm_key, hit.entry(), &record.sha256, &meta),
                None => cache.insert(
                    &self.cwasm_key,
                    record,
                    &bytes,
                    Some((record.sha256.clone(), meta)),
                ),
            }
        }
        Ok((
            component,
            LoadTimings {
                read_check,
                deserialize,
                link: Duration::ZERO,
            },
        ))
    }

    fn deserialize_hit(&self, hit: cache::Hit) -> Result<Component, String> {
        self.deserialize_hit_ref(&hit)
    }

    /// Deserializes a compile cache entry [`CompileCache::lookup`] vouched for.
    fn deserialize_hit_ref(&self, hit: &cache::Hit) -> Result<Component, String> {
        match hit {
            cache::Hit::Unchanged { cwasm, entry } => {
                // SAFETY: the entry's record is signed with this machine's key
                // (this tool compiled these bytes with an engine of this
                // fingerprint) and the file, in a folder only this user can
                // open, is a private regular file with exactly the inode, size
                // and timestamps it had when it was written or hashed: any
                // write since would have changed its ctime. Checked again
                // below, after mapping.
                let component = unsafe { Component::deserialize_file(&self.engine, cwasm) }
                    .map_err(|e| format!("{e:#}"))?;
                let unchanged = cache::private_file_meta(cwasm)
                    .is_some_and(|meta| entry.file_vouches_for(&meta));
                if !unchanged {
                    return Err("the cache entry changed while it was loaded".into());
                }
                Ok(component)
            }
            cache::Hit::Hashed { bytes, .. } => {
                // SAFETY: the entry's record is signed as above, and these
                // bytes (read once) were hashed and match it.
                unsafe { Component::deserialize(&self.engine, bytes) }.map_err(|e| format!("{e:#}"))
            }
        }
    }

    /// Compiles a component ahead of time (validated and linked against this
    /// executor's host on the way, so a component that would not run is
    /// refused here); returns the `.cwasm` bytes and the record that later
    /// authorizes loading them.
    pub fn precompile(&self, wasm: &[u8]) -> Result<(Vec<u8>, CwasmRecord), ExecError> {
        let cwasm = match &*self.load(wasm)? {
            LoadedSkill::Component { component, .. } => component
                .serialize()
                .map_err(|e| ExecError::Compile(format!("{e:#}")))?,
            LoadedSkill::Stub(_) => return Err(validate::ValidateError::Stub.into()),
        };
        let record = self.cwasm_key.sign(
            sha256_hex(&cwasm),
            self.engine_fingerprint(),
            sha256_hex(wasm),
        );
        Ok((cwasm, record))
    }

    fn cached(&self, sha256: &str) -> Option<Arc<LoadedSkill>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
            .cloned()
    }

    fn remember(&self, sha256: String, skill: LoadedSkill) -> Arc<LoadedSkill> {
        let skill = Arc::new(skill);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256, skill.clone());
        skill
    }

    fn prepare(
        &self,
        component: Component,
        sha256: String,
        origin: Origin,
        mut timings: LoadTimings,
    ) -> Result<LoadedSkill, ExecError> {
        let linking = Instant::now();
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| ExecError::Link(format!("{e:#}")))?;
        let pre =
            SkillPluginPre::new(instance_pre).map_err(|e| ExecError::Link(format!("{e:#}")))?;
        timings.link = linking.elapsed();
        Ok(LoadedSkill::Component {
            pre,
            component,
            sha256,
            origin,
            timings,
        })
    }

    /// Loads a component file, through the `.cwasm` beside it when its signed
    /// record (see [`cwasm::sidecar_paths`]) vouches for it and this file.
    pub fn load_file(&self, wasm_path: &Path) -> Result<Arc<LoadedSkill>, ExecError> {
        let bytes = std::fs::read(wasm_path).map_err(|source| ExecError::Io {
            path: wasm_path.to_path_buf(),
            source,
        })?;
        let (cwasm, record) = cwasm::sidecar_paths(wasm_path);
        let record: Option<CwasmRecord> = std::fs::read(&record)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok());
        let sha256 = sha256_hex(&bytes);
        if let Some(record) = record
            && cwasm.is_file()
            && record.wasm_sha256 == sha256
        {
            return self.load_precompiled(wasm_path, &cwasm, &record);
        }
        self.load_hashed(&bytes, sha256)
    }

    /// Runs `execute` once in a fresh store.
    pub async fn run(
        &self,
        skill: &LoadedSkill,
        invocation: Invocation,
    ) -> Result<Outcome, ExecError> {
        let started = Instant::now();
        let limits = invocation.limits;
        if invocation.input.len() > limits.max_input_bytes {
            return Err(ExecError::InputTooLarge {
                size: invocation.input.len(),
                max: limits.max_input_bytes,
            });
        }
        let invocation_id = self.next_invocation_id();
        let pre = match skill {
            LoadedSkill::Stub(stub) => {
                return Ok(Outcome {
                    result: Ok(stub.body.clone()),
                    fuel_consumed: 0,
                    peak_memory_bytes: 0,
                    duration_us: started.elapsed().as_micros() as u64,
                    invocation_id,
                    logs: Vec::new(),
                    logs_truncated: false,
                    stdout: String::new(),
                    stderr: String::new(),
                    output_truncated: false,
                    stub: true,
                });
            }
            LoadedSkill::Component { pre, .. } => pre,
        };

        self.start_ticker();
        let (mut store, stdout, stderr) =
            self.new_store(&invocation, invocation_id.clone(), started)?;

        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_execute(&mut store, &invocation.input).await
        };
        // The epoch callback stops wasm; this also bounds time spent in host calls.
        let result = match tokio::time::timeout(limits.deadline + EPOCH_TICK * 50, call).await {
            Ok(result) => result,
            Err(_) => Err(DeadlineHit.into()),
        };
        self.finish(
            store,
            (stdout, stderr),
            result,
            &limits,
            started,
            invocation_id,
        )
    }

    /// Starts the epoch ticker on the first call (not for loads alone).
    fn start_ticker(&self) {
        self.ticker_started
            .call_once(|| spawn_epoch_ticker(self.engine.clone(), self.stop_ticker.clone()));
    }

    /// The outcome of a finished call; drops the store.
    fn finish(
        &self,
        store: Store<HostState>,
        (stdout, stderr): (capture::Capture, capture::Capture),
        result: wasmtime::Result<Result<String, String>>,
        limits: &Limits,
        started: Instant,
        invocation_id: String,
    ) -> Result<Outcome, ExecError> {
        let limits = *limits;
        let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let result = result.map_err(|e| self.error_for(e, &limits, started))?;
        let output_len = match &result {
            Ok(s) | Err(s) => s.len(),
        };
        if output_len > limits.max_output_bytes {
            return Err(ExecError::OutputTooLarge {
                size: output_len,
                max: limits.max_output_bytes,
            });
        }
        let state = store.into_data();
        let (stdout, stdout_truncated) = stdout.contents();
        let (stderr, stderr_truncated) = stderr.contents();
        Ok(Outcome {
            result,
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak_bytes,
            duration_us: started.elapsed().as_micros() as u64,
            invocation_id,
            logs: state.logs.entries,
            logs_truncated: state.logs.truncated,
            stdout,
            stderr,
            output_truncated: stdout_truncated || stderr_truncated,
            stub: false,
        })
    }

    /// A fresh store for one invocation: deny-by-default WASI with captured
    /// output, the host state, and every limit armed.
    fn new_store(
        &self,
        invocation: &Invocation,
        invocation_id: String,
        started: Instant,
    ) -> Result<(Store<HostState>, capture::Capture, capture::Capture), ExecError> {
        let limits = invocation.limits;
        let stdout = capture::Capture::new(limits.max_captured_bytes);
        let stderr = capture::Capture::new(limits.max_captured_bytes);
        // Deny by default: no preopens, no environment, no arguments, no network.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let context = bindings::boternity::skill::host::SkillContext {
            bot_name: invocation.bot_name.clone(),
            bot_slug: invocation.bot_slug.clone(),
            skill_name: invocation.skill_name.clone(),
            invocation_id,
        };
        let state = HostState::new(
            wasi,
            &limits,
            Arc::new(invocation.grants.clone()),
            context,
            self.services.clone(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| ExecError::Trap(format!("{e:#}")))?;
        let deadline = started + limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(DeadlineHit.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok((store, stdout, stderr))
    }

    fn next_invocation_id(&self) -> String {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("inv-{nanos:x}-{}-{n}", std::process::id())
    }

    fn error_for(&self, err: wasmtime::Error, limits: &Limits, started: Instant) -> ExecError {
        if err.downcast_ref::<DeadlineHit>().is_some()
            || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt))
        {
            return ExecError::DeadlineExceeded {
                elapsed_ms: started.elapsed().as_millis() as u64,
                limit_ms: limits.deadline.as_millis() as u64,
            };
        }
        if let Some(host) = err.downcast_ref::<HostTrap>() {
            return match host {
                HostTrap::Memory { limit_mib, .. } => ExecError::MemoryLimit {
                    limit_mib: *limit_mib,
                },
                HostTrap::Table { limit } => ExecError::TableLimit { limit: *limit },
                HostTrap::Denied(msg) => ExecError::Denied(msg.clone()),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => ExecError::FuelExhausted { fuel: limits.fuel },
            Some(Trap::StackOverflow) => ExecError::StackOverflow {
                limit_kib: self.config.max_wasm_stack / 1024,
            },
            _ => {
                // The root cause says what happened; the wasm backtrace is for debugging.
                tracing::debug!("skill trapped: {err:?}");
                ExecError::Trap(err.root_cause().to_string())
            }
        }
    }
}

fn engine_config(config: &ExecutorConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_size(config.max_wasm_stack + 1024 * 1024)
        // Wasm-offset maps only serve backtraces, which we do not show; without
        // them a .cwasm is much smaller and deserializes faster.
        .generate_address_map(false)
        .memory_init_cow(false);
    if config.pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.pool_instances)
            .total_core_instances(config.pool_instances * 4)
            .total_memories(config.pool_instances * 2)
            .total_tables(config.pool_instances * 4)
            .total_stacks(config.pool_instances)
            // Reset a reused slot's memory in place (memset, guided by
            // PAGEMAP_SCAN where the kernel has it) instead of madvise: no page
            // faults or TLB shootdowns on the next instantiation.
            .linear_memory_keep_resident(4 * 1024 * 1024)
            .table_keep_resident(64 * 1024)
            .async_stack_keep_resident(128 * 1024)
            .pagemap_scan(Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// The engine's compatibility fingerprint (see [`Executor::engine_fingerprint`]).
fn fingerprint(engine: &Engine) -> String {
    let mut hasher = ShaHasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the executor is dropped.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("boternity-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Feeds `Hash` output into sha256 (for the engine fingerprint).
struct ShaHasher(sha2::Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
