//! The loaded-skill cache: skills ready to run, by their component's sha256,
//! so a server loading a skill again neither compiles nor deserializes it.
//! It is bounded by the bytes of machine code its entries keep resident
//! ([`LoadedSkill::resident_bytes`]), and the least recently used entries go
//! first: a long-lived executor that sees every version of every skill
//! holds only as many as its budget, not all it ever loaded.
//!
//! Eviction only drops the cache's reference: a caller still holding the
//! `Arc` of an evicted skill runs it as before, and its code is freed when
//! the last caller lets go.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::LoadedSkill;

/// The default bound on the loaded-skill cache (see
/// [`ExecutorConfig::loaded_cache_bytes`](super::ExecutorConfig::loaded_cache_bytes)):
/// room for a few hundred typical skills (a Rust skill compiles to a few
/// hundred KiB to a few MiB of code).
pub const DEFAULT_LOADED_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// What the loaded-skill cache holds and has done, for an embedder's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Skills held.
    pub entries: usize,
    /// Their resident bytes (never over `budget`).
    pub bytes: u64,
    /// The bound.
    pub budget: u64,
    /// Skills dropped to stay within the bound.
    pub evictions: u64,
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads that compiled or deserialized (each added an entry, perhaps
    /// evicted at once when it alone is over the budget).
    pub misses: u64,
}

struct Entry {
    skill: Arc<LoadedSkill>,
    bytes: u64,
    /// When it was last used, on the cache's own clock (its key in `by_use`).
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Last use -> sha256: the least recently used first.
    by_use: BTreeMap<u64, String>,
    clock: u64,
    stats: CacheStats,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// Loaded skills by sha256, least recently used evicted first.
pub(super) struct LoadedCache {
    inner: Mutex<Inner>,
}

impl LoadedCache {
    pub(super) fn new(budget: u64) -> LoadedCache {
        let mut inner = Inner::default();
        inner.stats.budget = budget;
        LoadedCache {
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The cache is consistent after every statement that can panic, so
        // a panic elsewhere while it was held leaves nothing to repair.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The skill with this sha256, if held (now the most recently used).
    pub(super) fn get(&self, sha256: &str) -> Option<Arc<LoadedSkill>> {
        let mut inner = self.lock();
        let now = inner.tick();
        let entry = inner.entries.get_mut(sha256)?;
        let before = std::mem::replace(&mut entry.used, now);
        let skill = entry.skill.clone();
        inner.by_use.remove(&before);
        inner.by_use.insert(now, sha256.to_string());
        inner.stats.hits += 1;
        Some(skill)
    }

    /// Holds `skill`, just loaded, as the most recently used, then evicts
    /// the least recently used until the cache is within its budget (`skill`
    /// itself last: alone over the budget, it is not kept). When another
    /// caller loaded the same skill meanwhile, that one is kept and returned.
    pub(super) fn insert(&self, sha256: String, skill: LoadedSkill) -> Arc<LoadedSkill> {
        let mut inner = self.lock();
        if let Some(held) = inner.entries.get(&sha256) {
            return held.skill.clone();
        }
        let skill = Arc::new(skill);
        let bytes = skill.resident_bytes();
        let used = inner.tick();
        inner.by_use.insert(used, sha256.clone());
        inner.entries.insert(
            sha256,
            Entry {
                skill: skill.clone(),
                bytes,
                used,
            },
        );
        inner.stats.bytes += bytes;
        inner.stats.misses += 1;
        while inner.stats.bytes > inner.stats.budget {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.stats.bytes -= gone.bytes;
                inner.stats.evictions += 1;
                tracing::debug!(sha256 = %oldest, bytes = gone.bytes, "evicted from the loaded-skill cache");
            }
        }
        skill
    }

    pub(super) fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.entries.len(),
            ..inner.stats
        }
    }
}
