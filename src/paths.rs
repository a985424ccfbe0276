//! Where boternity keeps things, decided in one place: [`Folders`] names the
//! data folder (the store) and the cache folder (build outputs, copies of
//! skill sources, git and download caches, the `.cwasm` signing key) and
//! everything inside them.
//!
//! The library never chooses these folders itself: the caller passes them in
//! its [`crate::Context`] (the CLI from `--store`, `$BOTERNITY_DATA_DIR`,
//! `$BOTERNITY_CACHE_DIR` and the XDG rules; an embedder from its own
//! configuration; tests from private temporary folders).

use std::path::{Path, PathBuf};

/// The file holding this machine's `.cwasm` signing key, in the cache folder:
/// losing it only means recompiling (every `.cwasm` falls back to its component).
pub const CWASM_KEY_FILE: &str = "cwasm-key";
/// The compile cache's folder in the cache folder.
pub const COMPILE_CACHE_DIR: &str = "compiled";

/// boternity's two folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    /// The data folder: the store lives in its `skills/`.
    pub data: PathBuf,
    /// The cache folder: everything in it can be rebuilt.
    pub cache: PathBuf,
}

impl Folders {
    pub fn new(data: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Folders {
        Folders {
            data: data.into(),
            cache: cache.into(),
        }
    }

    /// `root/data` and `root/cache`: one private place (an embedder's state
    /// folder, a test's temporary folder).
    pub fn under(root: &Path) -> Folders {
        Folders::new(root.join("data"), root.join("cache"))
    }

    /// Where builds of bare `lib.rs` skills share compiled dependencies
    /// (unconfined builds only).
    pub fn shared_target_dir(&self) -> PathBuf {
        self.cache.join("target")
    }

    /// The `.cwasm` signing key's default location.
    pub fn cwasm_key(&self) -> PathBuf {
        self.cache.join(CWASM_KEY_FILE)
    }

    /// The compile cache (compiled components and this tool's verified
    /// copies of installed `.cwasm`s).
    pub fn compile_cache_dir(&self) -> PathBuf {
        self.cache.join(COMPILE_CACHE_DIR)
    }

    /// boternity's own cargo home, where confined builds find their
    /// dependencies: registry caches only, never the user's credentials or
    /// configuration.
    pub fn cargo_home(&self) -> PathBuf {
        self.cache.join("cargo-home")
    }

    /// The target directory of one skill's confined builds: its own, so no
    /// skill's build scripts can read or overwrite another skill's artifacts.
    /// `key` names the skill's source (its folder), so rebuilds of the same
    /// skill are incremental.
    pub fn skill_target_dir(&self, key: &str) -> PathBuf {
        self.targets_dir().join(key)
    }

    /// Where the per-skill target directories are ([`Folders::skill_target_dir`]).
    pub fn targets_dir(&self) -> PathBuf {
        self.cache.join("targets")
    }

    /// Whether `dir` is one of boternity's own per-skill target directories
    /// (which it may start clean or remove), not a folder a caller passed in.
    pub fn is_own_target_dir(&self, dir: &Path) -> bool {
        dir.parent() == Some(self.targets_dir().as_path())
    }

    /// Dependency layers, one folder per key (see [`crate::build::layer`]):
    /// `<key>/` a frozen layer (its `target/`, the generated crate it was
    /// built from, `layer.json` with every file's hash),
    /// `<key>.lock` the lock taken to build it (exclusive) or use it (shared).
    /// Swept by [`crate::cache`] like target directories.
    pub fn layers_dir(&self) -> PathBuf {
        self.cache.join("layers")
    }

    /// What each skill's dependency layer is, by its manifest and lock (a
    /// layer's key, or none): a warm build finds its layer without resolving
    /// its dependency graph again.
    pub fn layer_plans_dir(&self) -> PathBuf {
        self.cache.join("layer-plans")
    }

    /// Where every layered build sees its target directory, inside its own
    /// mount namespace (an empty folder outside them): one fixed path, so the
    /// fingerprints cargo wrote into a layer match every build over it.
    pub fn layered_target_mount(&self) -> PathBuf {
        self.cache.join("build-target")
    }

    /// overlayfs's work folders of layered builds (each emptied and removed
    /// when its build ends).
    pub fn overlay_work_dir(&self) -> PathBuf {
        self.cache.join("overlay-work")
    }

    /// Private copies of skill sources, one per skill, that confined builds
    /// read (exactly the files the source hash covers).
    pub fn sources_dir(&self) -> PathBuf {
        self.cache.join("sources")
    }

    /// What a confined fetch downloaded for a skill, kept for `--offline`.
    pub fn fetched_dir(&self) -> PathBuf {
        self.cache.join("fetched")
    }

    /// Bare clones of git repositories, one per URL.
    pub fn git_cache_dir(&self) -> PathBuf {
        self.cache.join("git")
    }

    /// Files downloaded from registries, by sha256.
    pub fn downloads_dir(&self) -> PathBuf {
        self.cache.join("downloads")
    }

    /// The newest index serial accepted from each registry.
    pub fn registry_state_dir(&self) -> PathBuf {
        self.cache.join("registry-state")
    }
}
