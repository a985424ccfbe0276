//! The one executor: runs every skill binary (components, cached precompiled
//! components, legacy stubs) in wasmtime under fuel, a wall-clock deadline, a
//! memory cap and capability-gated host functions.
//!
//! One `Engine` per executor (per policy), shared by every call, and one
//! `Linker` per set of imported WASI interfaces; a compiled component is
//! cached as an `InstancePre` by its sha256; each
//! invocation gets a fresh `Store`, so no state survives between calls. The API
//! is async: epoch ticks make a running skill yield, so an endless loop cannot
//! block the caller's runtime threads.
//!
//! This file holds the executor and its configuration and errors; `engine`
//! sets wasmtime up, `load` turns bytes or a `.cwasm` into a ready skill
//! (linked by `link`), `run` calls it, and [`host`] is what the skill may
//! call back.

pub mod bench;
pub mod cache;
mod capture;
pub mod cwasm;
mod engine;
pub mod grants;
pub mod host;
pub mod limits;
mod link;
mod load;
mod run;

use engine::{engine_config, fingerprint, spawn_epoch_ticker};

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest;
use wasmtime::component::Component;
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
pub use load::{LoadTimings, LoadedSkill, Origin};
pub use run::{Invocation, Outcome};

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

use bindings::SkillPluginPre;

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

/// The executor. Cheap to share (`Arc`); safe to use from many tasks at once.
pub struct Executor {
    engine: Engine,
    linkers: link::Linkers,
    config: ExecutorConfig,
    cache: Mutex<HashMap<String, Arc<LoadedSkill>>>,
    services: HostServices,
    stop_ticker: Arc<AtomicBool>,
    ticker_started: std::sync::Once,
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
            linkers: link::Linkers::new(),
            config,
            cache: Mutex::new(HashMap::new()),
            services,
            stop_ticker,
        })
    }

    /// The engine's compatibility fingerprint: a `.cwasm` from another wasmtime
    /// version or configuration never matches it.
    pub fn engine_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}
