//! The one executor: runs every skill binary (components, cached precompiled
//! components, legacy stubs) in wasmtime under fuel, a wall-clock deadline, a
//! memory cap and capability-gated host functions.
//!
//! One `Engine` per executor (per policy), shared by every call, and one
//! `Linker` per set of imported WASI interfaces; a loaded component is kept
//! as an `InstancePre` by its sha256, in a cache bounded by bytes (least
//! recently used out first); each invocation gets a fresh `Store`, so no
//! state survives between calls. The API is async: epoch ticks make a
//! running skill yield, so an endless loop cannot block the caller's runtime
//! threads.
//!
//! This file holds the executor and its configuration and errors; `engine`
//! sets wasmtime up, `load` turns a [`SkillSource`] (bytes, or a file and its
//! `.cwasm`) into a ready skill (linked by `link`, kept by `loaded_cache`),
//! `run` calls it, and [`host`] is what the skill may call back.

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
mod loaded_cache;
mod run;
mod ticker;

use engine::{engine_config, fingerprint};

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
pub use host::{HostServices, LogEntry, MemoryProvider, NoMemory, NoSecrets, SecretsProvider};
pub use limits::Limits;
pub use load::{LoadTimings, LoadedSkill, Origin, Precompiled, SkillSource};
pub use loaded_cache::{CacheStats, DEFAULT_LOADED_CACHE_BYTES};
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

/// How often the epoch advances while a call runs: the deadline's
/// resolution and how often a running skill yields to the async runtime.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The `.cwasm` signing key's file and the compile cache's folder in a cache
/// folder (see [`ExecutorConfig::with_cache_dir`]): where [`Folders`] puts
/// them.
///
/// [`Folders`]: crate::paths::Folders
pub use crate::paths::{COMPILE_CACHE_DIR, CWASM_KEY_FILE};

/// Engine-wide settings (one executor per policy). The executor reads no
/// environment and knows no default folder: whatever it keeps on disk is
/// named here. The default keeps nothing on disk.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Largest wasm stack; deeper recursion traps with "stack overflow".
    pub max_wasm_stack: usize,
    /// Use the pooling allocator (fast instantiation; reserves address space).
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// The key `.cwasm` records are signed and checked with. `None`: the key
    /// in [`cwasm_key_file`](Self::cwasm_key_file), else a fresh random key
    /// of this executor's own (so the records it signs, e.g. an install's
    /// `skill.cwasm`, are trusted by no other executor: they are compiled
    /// again there, never deserialized).
    pub cwasm_key: Option<CwasmKey>,
    /// Where the key lives when [`cwasm_key`](Self::cwasm_key) is `None`:
    /// read, or created (mode 0600) on first use; if that fails, a random
    /// key (said at debug level). Sharing the file is what lets one process
    /// load the `.cwasm`s another wrote.
    pub cwasm_key_file: Option<PathBuf>,
    /// The most bytes of machine code the in-process cache of loaded skills
    /// keeps resident ([`LoadedSkill::resident_bytes`]); past it, the least
    /// recently used skills are dropped (and compiled or deserialized again
    /// when next loaded). Default: [`DEFAULT_LOADED_CACHE_BYTES`]; `0`
    /// keeps nothing, so every load compiles or deserializes.
    pub loaded_cache_bytes: u64,
    /// The on-disk compile cache: compiled components are kept there and
    /// installed `.cwasm`s, once verified, are loaded from this tool's own
    /// copy without hashing them again. `None` (the default): components are
    /// compiled in memory and every installed `.cwasm` is hashed on load.
    pub compile_cache: Option<CompileCache>,
}

impl ExecutorConfig {
    /// For a process that makes one call (the CLI): no instance pool (a pool
    /// pays off from the second instantiation; setting one up costs more than
    /// it saves on the first).
    pub fn for_one_call() -> ExecutorConfig {
        ExecutorConfig {
            pooling: false,
            ..ExecutorConfig::default()
        }
    }

    /// Keeps the signing key ([`CWASM_KEY_FILE`]) and the compile cache
    /// ([`COMPILE_CACHE_DIR`], [`cache::DEFAULT_MAX_BYTES`]) in `dir`, as
    /// the CLI does in boternity's cache folder.
    pub fn with_cache_dir(self, dir: &Path) -> ExecutorConfig {
        ExecutorConfig {
            cwasm_key_file: Some(dir.join(CWASM_KEY_FILE)),
            compile_cache: Some(CompileCache::new(dir.join(COMPILE_CACHE_DIR))),
            ..self
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_wasm_stack: limits::WASM_STACK_BYTES,
            pooling: true,
            pool_instances: 128,
            loaded_cache_bytes: DEFAULT_LOADED_CACHE_BYTES,
            cwasm_key: None,
            cwasm_key_file: None,
            compile_cache: None,
        }
    }
}

/// An error of wasmtime's, with its chain of causes.
pub type WasmtimeError = Box<dyn std::error::Error + Send + Sync>;

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
    /// wasmtime's error and its causes, kept as the source.
    #[error("cannot compile the component")]
    Compile(#[source] WasmtimeError),
    #[error("cannot link the component")]
    Link(#[source] WasmtimeError),
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
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(String),
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
    loaded: loaded_cache::LoadedCache,
    services: HostServices,
    ticker: ticker::Ticker,
    cwasm_key: CwasmKey,
    fingerprint: String,
}

impl Executor {
    /// An executor with the default engine settings and host services: it
    /// keeps nothing on disk and signs `.cwasm` records with a random key of
    /// its own (see [`ExecutorConfig`]).
    pub fn new() -> Result<Executor, ExecError> {
        Executor::with_config(ExecutorConfig::default(), HostServices::default())
    }

    pub fn with_config(
        config: ExecutorConfig,
        services: HostServices,
    ) -> Result<Executor, ExecError> {
        let engine =
            Engine::new(&engine_config(&config)).map_err(|e| ExecError::Compile(e.into()))?;
        let random = || {
            CwasmKey::random().map_err(|source| ExecError::Io {
                path: PathBuf::from("(the system's random source)"),
                source,
            })
        };
        let cwasm_key = match (&config.cwasm_key, &config.cwasm_key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(file)) => match CwasmKey::load_or_create(file) {
                Ok(key) => key,
                Err(e) => {
                    tracing::debug!(
                        "no shared .cwasm key at {} ({e}); using one for this executor only",
                        file.display()
                    );
                    random()?
                }
            },
            (None, None) => random()?,
        };
        let fingerprint = fingerprint(&engine);
        Ok(Executor {
            cwasm_key,
            fingerprint,
            ticker: ticker::Ticker::default(),
            engine,
            linkers: link::Linkers::new(),
            loaded: loaded_cache::LoadedCache::new(config.loaded_cache_bytes),
            config,
            services,
        })
    }

    /// What the loaded-skill cache holds (entries, bytes, budget) and has
    /// done (evictions, hits, misses).
    pub fn cache_stats(&self) -> CacheStats {
        self.loaded.stats()
    }

    /// How many times this executor has advanced its epoch (every
    /// [`EPOCH_TICK`] while a call runs). It stands still while no call
    /// runs: an idle executor makes no timer wake-ups.
    pub fn epoch_ticks(&self) -> u64 {
        self.ticker.ticks()
    }

    /// The engine's compatibility fingerprint: a `.cwasm` from another wasmtime
    /// version or configuration never matches it.
    pub fn engine_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}
