//! The host side of the skill world: the state each invocation's `Store` holds,
//! and the `boternity:skill/host` functions, each gated by its capability
//! (and `get-secret`/`read-env` by the names granted), a denial ending with
//! the caller's hint on how to grant it.

mod files;
mod http;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use files::{read_confined, write_confined};
use http::http_request;

use super::bindings::boternity::skill::host::{Host, SkillContext};
use super::grants::{GrantHint, Grants, Missing, denial};
use super::limits::Limits;
use crate::skill::manifest::Capability;

/// Largest file `read-file` returns and `write-file` writes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest HTTP response body returned to a skill.
pub const MAX_HTTP_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Time limit of one HTTP request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `get-secret` values come from; the embedding application implements it.
pub trait SecretsProvider: Send + Sync {
    /// The secret's value, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

/// No secrets: every `get-secret` answers that the secret is not set.
#[derive(Debug, Default, Clone)]
pub struct NoSecrets;

impl SecretsProvider for NoSecrets {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

/// The bot's memory, for `recall-memory`; the embedding application implements it.
pub trait MemoryProvider: Send + Sync {
    fn recall(&self, bot_slug: &str, query: &str, limit: u32) -> Vec<String>;
}

/// No memory: `recall-memory` returns nothing.
#[derive(Debug, Default, Clone)]
pub struct NoMemory;

impl MemoryProvider for NoMemory {
    fn recall(&self, _bot_slug: &str, _query: &str, _limit: u32) -> Vec<String> {
        Vec::new()
    }
}

/// Looks a variable up for `read-env`.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Services shared by every invocation of an executor.
#[derive(Clone)]
pub struct HostServices {
    pub secrets: Arc<dyn SecretsProvider>,
    pub memory: Arc<dyn MemoryProvider>,
    /// Where `read-env` reads variables (by default nowhere: every variable
    /// is unset; the CLI installs the process environment).
    pub env: EnvLookup,
}

/// No secrets, no memory, no variables: the library reads nothing of the
/// process it runs in; the embedder says where each comes from.
impl Default for HostServices {
    fn default() -> Self {
        HostServices {
            secrets: Arc::new(NoSecrets),
            memory: Arc::new(NoMemory),
            env: Arc::new(|_| None),
        }
    }
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices").finish_non_exhaustive()
    }
}

/// One `log` call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
}

/// A limit hit inside a host function or the limiter, reported as the
/// invocation's error rather than a generic trap.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostTrap {
    #[error("memory limit of {limit_mib} MiB exceeded (the skill asked for {requested} bytes)")]
    Memory { limit_mib: u64, requested: u64 },
    #[error("table limit of {limit} elements exceeded")]
    Table { limit: u64 },
    #[error("permission denied: {0}")]
    Denied(String),
}

/// Caps linear memory and tables; remembers the peak.
#[derive(Debug)]
pub struct Limiter {
    memory_bytes: u64,
    table_elements: u64,
    /// Sum of all linear memories' sizes: each starts at 0 and grows, so the
    /// running sum of growth is the total (a component may hold several).
    total_bytes: u64,
    pub peak_bytes: u64,
}

impl Limiter {
    fn new(limits: &Limits) -> Self {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            total_bytes: 0,
            peak_bytes: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total_bytes + desired.saturating_sub(current) as u64;
        if total > self.memory_bytes {
            return Err(HostTrap::Memory {
                limit_mib: self.memory_bytes / (1024 * 1024),
                requested: total,
            }
            .into());
        }
        self.total_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            return Err(HostTrap::Table {
                limit: self.table_elements,
            }
            .into());
        }
        Ok(true)
    }
}

/// Bounded text capture (logs).
#[derive(Debug, Default)]
pub struct LogBuffer {
    pub entries: Vec<LogEntry>,
    bytes: usize,
    pub truncated: bool,
}

/// Everything one invocation's store holds.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: Limiter,
    grants: Arc<Grants>,
    /// The caller's advice on granting what a denied call lacked.
    hint: Option<GrantHint>,
    context: SkillContext,
    services: HostServices,
    pub(super) logs: LogBuffer,
    max_captured: usize,
    /// When the invocation's deadline passes: an HTTP request is cut off then
    /// (the epoch stops wasm then; `run`'s timer, anything else).
    deadline: Instant,
}

impl HostState {
    pub(super) fn new(
        wasi: WasiCtx,
        limits: &Limits,
        (grants, hint): (Arc<Grants>, Option<GrantHint>),
        context: SkillContext,
        services: HostServices,
        deadline: Instant,
    ) -> Self {
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            grants,
            hint,
            context,
            services,
            logs: LogBuffer::default(),
            max_captured: limits.max_captured_bytes,
            deadline,
        }
    }

    /// `Ok` if `cap` was granted, else the denial (with the caller's hint).
    fn require(&self, cap: Capability, function: &str) -> Result<(), String> {
        self.grants.require_with(cap, function, self.hint)
    }

    fn data_dir(&self, function: &str, cap: Capability) -> Result<&Path, String> {
        self.require(cap, function)?;
        self.grants.data_dir.as_deref().ok_or_else(|| {
            format!("permission denied: `{function}` has no data folder granted to this skill")
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for HostState {
    async fn get_context(&mut self) -> wasmtime::Result<SkillContext> {
        Ok(self.context.clone())
    }

    async fn recall_memory(&mut self, query: String, limit: u32) -> wasmtime::Result<Vec<String>> {
        // The function has no error channel: a denial stops the skill with the reason.
        self.require(Capability::RecallMemory, "recall-memory")
            .map_err(HostTrap::Denied)?;
        let memory = self.services.memory.clone();
        let slug = self.context.bot_slug.clone();
        Ok(memory.recall(&slug, &query, limit.min(100)))
    }

    async fn http_get(&mut self, url: String) -> wasmtime::Result<Result<String, String>> {
        if let Err(denied) = self.require(Capability::HttpGet, "http-get") {
            return Ok(Err(denied));
        }
        http_request(&self.grants, "GET", url, None, self.deadline).await
    }

    async fn http_post(
        &mut self,
        url: String,
        body: String,
    ) -> wasmtime::Result<Result<String, String>> {
        if let Err(denied) = self.require(Capability::HttpPost, "http-post") {
            return Ok(Err(denied));
        }
        http_request(&self.grants, "POST", url, Some(body), self.deadline).await
    }

    async fn read_file(&mut self, path: String) -> wasmtime::Result<Result<String, String>> {
        let root = match self.data_dir("read-file", Capability::ReadFile) {
            Ok(root) => root,
            Err(denied) => return Ok(Err(denied)),
        };
        Ok(read_confined(root, &path))
    }

    async fn write_file(
        &mut self,
        path: String,
        content: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let root = match self.data_dir("write-file", Capability::WriteFile) {
            Ok(root) => root,
            Err(denied) => return Ok(Err(denied)),
        };
        Ok(write_confined(root, &path, content.as_bytes()))
    }

    async fn get_secret(&mut self, name: String) -> wasmtime::Result<Result<String, String>> {
        if let Err(denied) = self.require(Capability::GetSecret, "get-secret") {
            return Ok(Err(denied));
        }
        // Only names granted to this skill: what its `SKILL.md` lists is a request.
        if !self.grants.secrets.contains(&name) {
            return Ok(Err(denial(
                format!("permission denied: secret `{name}` was not granted to this skill"),
                &Missing::Secret(&name),
                self.hint,
            )));
        }
        Ok(self
            .services
            .secrets
            .get(&name)
            .ok_or_else(|| format!("secret `{name}` is not set")))
    }

    async fn read_env(&mut self, name: String) -> wasmtime::Result<Result<String, String>> {
        if let Err(denied) = self.require(Capability::ReadEnv, "read-env") {
            return Ok(Err(denied));
        }
        if !self.grants.env_vars.contains(&name) {
            return Ok(Err(denial(
                format!("permission denied: variable `{name}` was not granted to this skill"),
                &Missing::EnvVar(&name),
                self.hint,
            )));
        }
        Ok((self.services.env)(&name).ok_or_else(|| format!("variable `{name}` is not set")))
    }

    async fn log(&mut self, level: String, message: String) -> wasmtime::Result<()> {
        tracing::info!(target: "boternity::skill", skill = %self.context.skill_name, %level, "{message}");
        let size = level.len() + message.len();
        if self.logs.bytes + size > self.max_captured {
            self.logs.truncated = true;
        } else {
            self.logs.bytes += size;
            self.logs.entries.push(LogEntry { level, message });
        }
        Ok(())
    }
}
