//! Where boternity keeps things on this machine, decided in one place:
//! the data folder (the store), the cache folder (build outputs, wrapper
//! crates, the `.cwasm` signing key) and what lives inside them.
//!
//! Every location honours an environment variable first, so tests, CI and
//! embedders can move it without touching code.

use std::path::{Path, PathBuf};

/// The file holding this machine's `.cwasm` signing key, in the cache folder:
/// losing it only means recompiling (every `.cwasm` falls back to its component).
pub const CWASM_KEY_FILE: &str = "cwasm-key";

/// boternity's data folder (the store lives in its `skills/`):
/// `$BOTERNITY_DATA_DIR`, else `~/.boternity`; `None` when neither is set.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BOTERNITY_DATA_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".boternity"))
}

/// boternity's cache folder: `$BOTERNITY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/boternity`, else `~/.cache/boternity`, else a folder in
/// the temporary directory. Everything in it can be rebuilt.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BOTERNITY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("boternity");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/boternity"),
        None => std::env::temp_dir().join("boternity-cache"),
    }
}

/// Where builds of bare `lib.rs` skills share compiled dependencies.
pub fn shared_target_dir() -> PathBuf {
    cache_dir().join("target")
}

/// The `.cwasm` signing key's default location.
pub fn cwasm_key() -> PathBuf {
    cache_dir().join(CWASM_KEY_FILE)
}

/// The compile cache (compiled components and this tool's verified copies
/// of installed `.cwasm`s): `compiled/` in the cache folder.
pub fn compile_cache_dir() -> PathBuf {
    cache_dir().join("compiled")
}

/// The user's cargo home (`$CARGO_HOME`, else `~/.cargo`).
pub fn user_cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// boternity's own cargo home, where confined builds find their dependencies:
/// registry caches only, never the user's credentials or configuration.
pub fn cargo_home() -> PathBuf {
    cache_dir().join("cargo-home")
}

/// The target directory of one skill's confined builds: its own, so no
/// skill's build scripts can read or overwrite another skill's artifacts.
/// `key` names the skill's source (its folder), so rebuilds of the same
/// skill are incremental.
pub fn skill_target_dir(key: &str) -> PathBuf {
    cache_dir().join("targets").join(key)
}

/// Whether `dir` is one of boternity's own per-skill target directories
/// (which it may start clean or remove), not a folder a caller passed in.
pub fn is_own_target_dir(dir: &Path) -> bool {
    dir.parent() == Some(cache_dir().join("targets").as_path())
}
