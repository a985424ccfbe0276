//! The cache folder's budget: what each kind of thing in it is
//! ([`Kind`]), how much room each takes ([`info`]), and the sweep that
//! removes the least recently used build outputs down to a budget ([`gc`]),
//! or every rebuildable thing at once ([`clean`]).
//!
//! Only boternity records when an entry was used: a build takes an
//! [`InUse`] guard on the target directory (or dependency layer) it uses,
//! which holds a shared advisory lock (`flock`) on a file beside it,
//! `<entry>.use`, and sets that file's modification time when taken and
//! when released. Access times are not trusted (most file systems mount
//! `relatime` or `noatime`, and anything that reads a file moves them). An
//! eviction takes the same lock exclusively, without waiting: an entry a
//! build (of this process or another) is using is never removed, only
//! skipped.
//!
//! What the budget bounds, and why: the build outputs — each skill's
//! target directory (`targets/`), the dependency layers (`layers/`) and the
//! shared target directory of unconfined bare builds (`target/`) — grow
//! with every skill built and cost only a slower next build when removed.
//! The rest is kept by `gc` and reported by `info`: the cargo home (the
//! registry's crate sources, shared by every build and needed offline), the
//! download and git caches (what `--offline` installs and `update` read),
//! the compile cache (bounded by the executor itself), the copies of skill
//! sources and the fetch notes (small). [`clean`] removes all of those too,
//! except what is not a cache: the `.cwasm` signing key and each registry's
//! newest accepted serial (forgetting it would let an old index be replayed).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fsutil::{IoError, IoOp, IoResultExt};
use crate::paths::Folders;

/// The default budget: what the build outputs of the cache folder may
/// take before a sweep after a build removes the least recently used.
///
/// 10 GiB: a skill's target directory holds 100–300 MB (wit-bindgen and
/// its dependencies compiled once per skill), so this keeps some fifty
/// skills warm; and it is above the most one build may write
/// ([`crate::build::cargo::MAX_TARGET_BYTES`], 8 GiB), so one build's output
/// always fits.
pub const DEFAULT_MAX_SIZE: u64 = 10 * GIB;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The suffix of an entry's in-use file (`<entry>.use`, beside it).
pub const USE_SUFFIX: &str = ".use";

/// One kind of thing in the cache folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Each skill's own target directory (`targets/<key>/`).
    Targets,
    /// Dependency layers shared read-only by skills' builds (`layers/<key>/`).
    Layers,
    /// Which layer each skill's manifest and lock plan (`layer-plans/`):
    /// tiny memo files, planned again when gone.
    LayerPlans,
    /// The target directory unconfined builds of bare `lib.rs` skills share
    /// (`target/`).
    SharedTarget,
    /// Private copies of skill sources that confined builds read
    /// (`sources/<key>/`).
    Sources,
    /// Notes that a lock file's dependencies were fetched (`fetched/`).
    Fetched,
    /// boternity's cargo home: the registry's crate sources (`cargo-home/`).
    CargoHome,
    /// Bare clones of git repositories (`git/<key>/`).
    Git,
    /// Files downloaded from registries, and their indexes (`downloads/`).
    Downloads,
    /// Compiled components and verified `.cwasm` copies (`compiled/`).
    Compiled,
}

impl Kind {
    /// Every kind, in the order `info` lists them.
    pub const ALL: [Kind; 10] = [
        Kind::Targets,
        Kind::Layers,
        Kind::LayerPlans,
        Kind::SharedTarget,
        Kind::Sources,
        Kind::Fetched,
        Kind::CargoHome,
        Kind::Git,
        Kind::Downloads,
        Kind::Compiled,
    ];

    /// Its name in messages (`targets`, `cargo-home` …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Targets => "targets",
            Kind::Layers => "layers",
            Kind::LayerPlans => "layer-plans",
            Kind::SharedTarget => "shared-target",
            Kind::Sources => "sources",
            Kind::Fetched => "fetched",
            Kind::CargoHome => "cargo-home",
            Kind::Git => "git",
            Kind::Downloads => "downloads",
            Kind::Compiled => "compiled",
        }
    }

    /// Whether [`gc`] sweeps it to the budget (see the module doc); every
    /// kind is removed by [`clean`].
    pub fn swept(self) -> bool {
        matches!(self, Kind::Targets | Kind::Layers | Kind::SharedTarget)
    }

    /// Where it lives.
    pub fn path(self, folders: &Folders) -> PathBuf {
        match self {
            Kind::Targets => folders.targets_dir(),
            Kind::Layers => folders.layers_dir(),
            Kind::LayerPlans => folders.layer_plans_dir(),
            Kind::SharedTarget => folders.shared_target_dir(),
            Kind::Sources => folders.sources_dir(),
            Kind::Fetched => folders.fetched_dir(),
            Kind::CargoHome => folders.cargo_home(),
            Kind::Git => folders.git_cache_dir(),
            Kind::Downloads => folders.downloads_dir(),
            Kind::Compiled => folders.compile_cache_dir(),
        }
    }

    /// Whether its folder holds one entry per subfolder (`targets/<key>/`)
    /// rather than being one entry itself (`cargo-home/`).
    fn one_per_subfolder(self) -> bool {
        matches!(
            self,
            Kind::Targets | Kind::Layers | Kind::Sources | Kind::Git
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the cache could not be measured or swept.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Io(#[from] IoError),
}

/// One entry: a folder (or file) removed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub path: PathBuf,
    /// Disk space it takes (allocated blocks; hard links counted once).
    pub bytes: u64,
    /// When boternity last recorded a use ([`InUse`]); for an entry that
    /// has no record, when its folder last changed. `None`: unknown.
    pub last_used: Option<SystemTime>,
    /// Whether `last_used` is boternity's record (its in-use file).
    recorded: bool,
}

/// What one kind holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: Kind,
    pub path: PathBuf,
    pub bytes: u64,
    pub entries: usize,
    /// The most recent use of any of its entries.
    pub last_used: Option<SystemTime>,
    /// Whether [`gc`] sweeps it to the budget.
    pub swept: bool,
}

/// What the cache folder holds, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub cache_dir: PathBuf,
    pub kinds: Vec<KindInfo>,
    /// Every kind together.
    pub total_bytes: u64,
    /// What the budget bounds: the kinds [`gc`] sweeps.
    pub swept_bytes: u64,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// The budget it swept to (`None`: [`clean`], everything).
    pub budget: Option<u64>,
    /// What the swept kinds took before and after.
    pub before_bytes: u64,
    pub after_bytes: u64,
    /// Removed, least recently used first.
    pub removed: Vec<Entry>,
    /// Kept because a build was using it.
    pub in_use: Vec<Entry>,
}

impl Sweep {
    pub fn removed_bytes(&self) -> u64 {
        self.removed.iter().map(|e| e.bytes).sum()
    }
}

/// What the cache folder of `folders` holds, measured now.
pub fn info(folders: &Folders) -> Result<Info, CacheError> {
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        let entries = entries_of(folders, kind, Measure::Walk)?;
        kinds.push(KindInfo {
            kind,
            path: kind.path(folders),
            bytes: entries.iter().map(|e| e.bytes).sum(),
            entries: entries.len(),
            last_used: entries.iter().filter_map(|e| e.last_used).max(),
            swept: kind.swept(),
        });
    }
    let total_bytes = kinds.iter().map(|k| k.bytes).sum();
    let swept_bytes = kinds.iter().filter(|k| k.swept).map(|k| k.bytes).sum();
    Ok(Info {
        cache_dir: folders.cache.clone(),
        kinds,
        total_bytes,
        swept_bytes,
    })
}

/// Removes the least recently used build outputs (the kinds
/// [`Kind::swept`]) until they take at most `max_bytes`; entries in use are
/// skipped (then the cache may stay over its budget).
pub fn gc(folders: &Folders, max_bytes: u64) -> Result<Sweep, CacheError> {
    let mut entries = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.swept()) {
        entries.extend(entries_of(folders, kind, Measure::Recorded)?);
    }
    // Least recently used first; an entry without a record before all.
    entries.sort_by_key(|e| e.last_used);
    let before_bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut sweep = Sweep {
        budget: Some(max_bytes),
        before_bytes,
        after_bytes: before_bytes,
        ..Sweep::default()
    };
    for entry in entries {
        if sweep.after_bytes <= max_bytes {
            break;
        }
        if evict(folders, &entry)? {
            sweep.after_bytes -= entry.bytes;
            sweep.removed.push(entry);
        } else {
            sweep.in_use.push(entry);
        }
    }
    remove_leftovers(folders)?;
    Ok(sweep)
}

/// Removes everything the cache folder holds that can be rebuilt (every
/// [`Kind`]), except what a build is using; never the `.cwasm` signing key
/// nor the registries' serials. `before_bytes` and `after_bytes` count
/// every kind.
pub fn clean(folders: &Folders) -> Result<Sweep, CacheError> {
    let mut sweep = Sweep::default();
    for kind in Kind::ALL {
        for entry in entries_of(folders, kind, Measure::Walk)? {
            sweep.before_bytes += entry.bytes;
            if evict(folders, &entry)? {
                sweep.removed.push(entry);
            } else {
                sweep.after_bytes += entry.bytes;
                sweep.in_use.push(entry);
            }
        }
    }
    remove_leftovers(folders)?;
    Ok(sweep)
}

/// The sweep after a build: [`gc`] to the context's budget when one is
/// set. Never fails a build: a sweep that cannot finish is logged.
pub fn sweep_after_build(context: &crate::Context) -> Option<Sweep> {
    let budget = context.cache_budget?;
    match gc(&context.folders, budget) {
        Ok(sweep) => {
            if !sweep.removed.is_empty() {
                tracing::info!(
                    removed = sweep.removed.len(),
                    bytes = sweep.removed_bytes(),
                    budget,
                    "the cache was over its budget: removed the least recently used build outputs"
                );
            }
            Some(sweep)
        }
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "cannot sweep the cache folder");
            None
        }
    }
}

/// How an entry's size is found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// Every file below it, now.
    Walk,
    /// What the last build that used it recorded when it was done
    /// ([`InUse`]), else every file below it: the sweep after each build
    /// then reads a small file per entry instead of walking thousands (only
    /// builds write into these entries, and each records when done).
    Recorded,
}

/// The entries of `kind`, measured (none when its folder is missing).
/// Names starting with `.` (staging folders, leftovers) are not entries.
fn entries_of(folders: &Folders, kind: Kind, how: Measure) -> Result<Vec<Entry>, CacheError> {
    let root = kind.path(folders);
    let mut entries = Vec::new();
    if !kind.one_per_subfolder() {
        if std::fs::symlink_metadata(&root).is_ok() {
            entries.push(measure(kind, root, how)?);
        }
        return Ok(entries);
    }
    let listing = match std::fs::read_dir(&root) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(IoError::new(IoOp::List, &root, e).into()),
    };
    for item in listing {
        let item = item.on(IoOp::List, &root)?;
        let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || item.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        entries.push(measure(kind, item.path(), how)?);
    }
    Ok(entries)
}

fn measure(kind: Kind, path: PathBuf, how: Measure) -> Result<Entry, CacheError> {
    let use_path = use_file(&path);
    let recorded_size = match how {
        Measure::Walk => None,
        Measure::Recorded => std::fs::read_to_string(&use_path)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok()),
    };
    let bytes = recorded_size.unwrap_or_else(|| disk_usage(&path));
    let recorded = std::fs::metadata(&use_path).and_then(|m| m.modified()).ok();
    let last_used = recorded.or_else(|| {
        std::fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .ok()
    });
    Ok(Entry {
        kind,
        path,
        bytes,
        last_used,
        recorded: recorded.is_some(),
    })
}

/// Disk space below `path` (allocated blocks, not following links, each
/// inode once); what cannot be read counts nothing.
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if !seen.insert((meta.dev(), meta.ino())) {
            return 0;
        }
        let own = meta.blocks() * 512;
        if !meta.is_dir() {
            return own;
        }
        let Ok(listing) = std::fs::read_dir(path) else {
            return own;
        };
        own + listing
            .flatten()
            .map(|item| walk(&item.path(), seen))
            .sum::<u64>()
    }
    walk(path, &mut HashSet::new())
}

/// `<entry>.use`, beside it.
fn use_file(entry: &Path) -> PathBuf {
    let mut name = entry.file_name().unwrap_or_default().to_os_string();
    name.push(USE_SUFFIX);
    entry.with_file_name(name)
}

/// Removes `entry` unless a build is using it; whether it was removed.
fn evict(folders: &Folders, entry: &Entry) -> Result<bool, CacheError> {
    let path = &entry.path;
    match entry.kind {
        // A repository's cache is held by its own lock (`git::fetch`),
        // inside it: empty the folder under the lock, keep the lock file.
        Kind::Git => {
            let lock_path = path.join("lock");
            let Some(lock) = try_exclusive(&lock_path)? else {
                return Ok(false);
            };
            for item in std::fs::read_dir(path).on(IoOp::List, path)? {
                let item = item.on(IoOp::List, path)?;
                if item.file_name() != "lock" {
                    crate::fsutil::remove_tree(&item.path())?;
                }
            }
            drop(lock);
            Ok(true)
        }
        // A source copy is held by its build's place lock
        // (`<sources>/<key>.lock`, which that build takes exclusively and
        // never re-checks): kept, so both always lock the same file.
        Kind::Sources => {
            let Some(lock) = try_exclusive(&sibling(path, ".lock"))? else {
                return Ok(false);
            };
            crate::fsutil::remove_tree(path)?;
            drop(lock);
            Ok(true)
        }
        _ => {
            let Some(guard) = Evicting::try_take(path)? else {
                return Ok(false);
            };
            // Used between the listing and the lock: no longer the least
            // recently used.
            if entry.recorded && guard.recorded_use() != entry.last_used {
                return Ok(false);
            }
            crate::fsutil::remove_tree(path)?;
            if entry.kind == Kind::Targets {
                // What built it (`cargo::BuildKey`'s stamp) and the copy of
                // its source, named alike.
                crate::fsutil::remove_tree(&sibling(path, ".build-key"))?;
                if let Some(name) = path.file_name() {
                    let source = Entry {
                        kind: Kind::Sources,
                        path: folders.sources_dir().join(name),
                        bytes: 0,
                        last_used: None,
                        recorded: false,
                    };
                    if source.path.exists() {
                        evict(folders, &source)?;
                    }
                }
            }
            guard.finish()?;
            Ok(true)
        }
    }
}

/// What killed sweeps left: folders named `.removing-…`.
fn remove_leftovers(folders: &Folders) -> Result<(), CacheError> {
    let roots = Kind::ALL
        .into_iter()
        .filter(|k| k.one_per_subfolder())
        .map(|k| k.path(folders))
        .chain([folders.cache.clone()]);
    for root in roots {
        let Ok(listing) = std::fs::read_dir(&root) else {
            continue;
        };
        for item in listing.flatten() {
            if item
                .file_name()
                .as_encoded_bytes()
                .starts_with(crate::fsutil::REMOVING_PREFIX.as_bytes())
            {
                crate::fsutil::remove_tree(&item.path())?;
            }
        }
    }
    Ok(())
}

/// `path` with `suffix` appended to its name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The exclusive lock on `path` if no one holds it (`None` when someone
/// does, or the file is missing: nothing to guard then, `Some` of a fresh
/// lock).
fn try_exclusive(path: &Path) -> Result<Option<File>, IoError> {
    let file = match File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::new(IoOp::Lock, path, e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(IoError::new(IoOp::Lock, path, e)),
    }
}

/// A build's hold on a cache entry (a target directory, a dependency
/// layer, the cargo home) while it uses it: a shared lock on
/// `<entry>.use`, so no sweep removes the entry meanwhile (a sweep that
/// holds it already is waited for), and the record of its use (the file's
/// modification time, set when taken and when dropped), which orders
/// [`gc`]'s evictions. When dropped, it also writes the entry's size into
/// the file, which the sweep after a build reads instead of measuring.
///
/// Taken by the build code around a build; the entry's parent folder is
/// created if missing. Several builds may hold the same entry at once.
#[derive(Debug)]
pub struct InUse {
    file: File,
    path: PathBuf,
    /// The entry, when its size is recorded on drop.
    sized: Option<PathBuf>,
}

impl InUse {
    /// Takes the hold on `entry` (waiting while a sweep removes it).
    pub fn acquire(entry: &Path) -> Result<InUse, IoError> {
        InUse::take(entry, true)
    }

    /// [`InUse::acquire`] for an entry [`gc`] never sweeps (the cargo
    /// home): its size is not recorded, which would cost a walk of it.
    pub fn acquire_unsized(entry: &Path) -> Result<InUse, IoError> {
        InUse::take(entry, false)
    }

    fn take(entry: &Path, sized: bool) -> Result<InUse, IoError> {
        let path = use_file(entry);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).on(IoOp::Create, parent)?;
        }
        loop {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .on(IoOp::Create, &path)?;
            file.lock_shared().on(IoOp::Lock, &path)?;
            // A sweep removes the file while it holds the lock: locked after
            // that, this one is no longer the entry's, and the next open
            // makes a new one.
            if same_file(&file, &path) {
                let held = InUse {
                    file,
                    path,
                    sized: sized.then(|| entry.to_path_buf()),
                };
                held.record();
                return Ok(held);
            }
        }
    }

    /// The in-use file (`<entry>.use`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&self) {
        if let Err(e) = self.file.set_modified(SystemTime::now()) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot record a cache entry's use");
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(entry) = &self.sized {
            // Fixed width, written at the start in one call: holders
            // dropping at once each write a whole number, the last one stays.
            let size = format!("{:>20}\n", disk_usage(entry));
            let _ = std::os::unix::fs::FileExt::write_all_at(&self.file, size.as_bytes(), 0);
        }
        self.record();
    }
}

/// Whether the open `file` is the one at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A sweep's exclusive hold on an entry's in-use file.
struct Evicting {
    file: File,
    path: PathBuf,
}

impl Evicting {
    /// The hold, unless a build holds the entry (`None`).
    fn try_take(entry: &Path) -> Result<Option<Evicting>, IoError> {
        let path = use_file(entry);
        let Some(file) = try_exclusive(&path)? else {
            return Ok(None);
        };
        if !same_file(&file, &path) {
            // Removed by another sweep meanwhile.
            return Ok(None);
        }
        Ok(Some(Evicting { file, path }))
    }

    fn recorded_use(&self) -> Option<SystemTime> {
        self.file.metadata().and_then(|m| m.modified()).ok()
    }

    /// Removes the in-use file while still holding it (a build waiting on
    /// it then sees it is stale, see [`InUse::acquire`]).
    fn finish(self) -> Result<(), IoError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(IoError::new(IoOp::Remove, &self.path, e))
            }
            _ => Ok(()),
        }
    }
}

/// A size as written by a person: a number of bytes, optionally with a
/// unit — `K`, `M`, `G`, `T` and `KiB` … `TiB` are powers of 1024, `kB`,
/// `MB`, `GB`, `TB` powers of 1000 (`500M`, `2GiB`, `1.5G`, `10GB`).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || SizeError(text.to_string());
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "t" | "tib" => 1024 * GIB,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "tb" => 1000 * 1000 * 1000 * 1000,
        _ => return Err(bad()),
    };
    let bytes = number * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A size that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a size: write a number of bytes, or one with a unit (500M, 2GiB, 10GB)")]
pub struct SizeError(pub String);

/// `bytes` for people: `1.5 GiB`, `300 MiB`, `12 KiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    let units = [
        (1024 * GIB, "TiB"),
        (GIB, "GiB"),
        (MIB, "MiB"),
        (KIB, "KiB"),
    ];
    for (size, unit) in units {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value >= 100.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1234", Some(1234)),
            ("512B", Some(512)),
            ("500M", Some(500 * MIB)),
            ("500 MiB", Some(500 * MIB)),
            ("2GiB", Some(2 * GIB)),
            ("2g", Some(2 * GIB)),
            ("1.5G", Some(GIB + GIB / 2)),
            ("10GB", Some(10_000_000_000)),
            ("3kB", Some(3000)),
            ("1T", Some(1024 * GIB)),
            ("", None),
            ("M", None),
            ("12 parsecs", None),
            ("-1G", None),
            ("1e3", None),
            ("1.2.3M", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_size(text).ok(), *expected, "{text}");
        }
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 * MIB / 2), "1.5 MiB");
        assert_eq!(human_size(10 * GIB), "10.0 GiB");
        assert_eq!(human_size(300 * GIB), "300 GiB");
    }

    #[test]
    fn a_held_entry_is_never_evicted_and_a_free_one_is() {
        let tmp = tempfile::tempdir().unwrap();
        let folders = Folders::under(tmp.path());
        let held = folders.skill_target_dir("held-0");
        let free = folders.skill_target_dir("free-0");
        for dir in [&held, &free] {
            std::fs::create_dir_all(dir.join("release")).unwrap();
            std::fs::write(dir.join("release/lib.rlib"), vec![1u8; 64 * 1024]).unwrap();
        }
        let guard = InUse::acquire(&held).unwrap();
        let sweep = gc(&folders, 0).unwrap();
        assert_eq!(sweep.removed.len(), 1, "{sweep:?}");
        assert_eq!(sweep.removed[0].path, free);
        assert_eq!(sweep.in_use.len(), 1);
        assert!(held.join("release/lib.rlib").is_file());
        assert!(!free.exists() && !use_file(&free).exists());
        drop(guard);
        let sweep = gc(&folders, 0).unwrap();
        assert_eq!(sweep.removed.len(), 1);
        assert!(!held.exists());
    }

    #[test]
    fn a_dropped_hold_records_the_size_the_sweep_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let folders = Folders::under(tmp.path());
        let dir = folders.skill_target_dir("sized-0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.rlib"), vec![1u8; 100_000]).unwrap();
        drop(InUse::acquire(&dir).unwrap());
        let recorded: u64 = std::fs::read_to_string(use_file(&dir))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(recorded, disk_usage(&dir));
        let entry = measure(Kind::Targets, dir.clone(), Measure::Recorded).unwrap();
        assert_eq!(entry.bytes, recorded);
        // A record that does not read is measured instead.
        std::fs::write(use_file(&dir), "garbage").unwrap();
        let entry = measure(Kind::Targets, dir.clone(), Measure::Recorded).unwrap();
        assert_eq!(entry.bytes, disk_usage(&dir));
        // The cargo home's hold records no size.
        let home = folders.cargo_home();
        std::fs::create_dir_all(&home).unwrap();
        drop(InUse::acquire_unsized(&home).unwrap());
        assert_eq!(std::fs::read(use_file(&home)).unwrap(), b"");
    }

    #[test]
    fn a_frozen_read_only_entry_is_removed() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let folders = Folders::under(tmp.path());
        let layer = folders.layers_dir().join("frozen");
        std::fs::create_dir_all(layer.join("deps")).unwrap();
        std::fs::write(layer.join("deps/libserde.rlib"), b"rlib").unwrap();
        for dir in [layer.join("deps"), layer.clone()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let sweep = clean(&folders).unwrap();
        assert_eq!(sweep.removed.len(), 1, "{sweep:?}");
        assert!(!layer.exists());
    }
}
