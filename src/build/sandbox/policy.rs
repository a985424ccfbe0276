//! What a confined run may touch: the [`Policy`] the helper enforces, its
//! [`Limits`], and the two policies a build uses, one per phase
//! ([`fetch_policy`], [`build_policy`]), from the [`Layout`] of its folders.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the helper enforces for one run (sent to it as JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// Readable (and executable) hierarchies. Missing paths are skipped.
    pub read_only: Vec<PathBuf>,
    /// Readable and writable hierarchies (target dir, private TMPDIR, /dev/null...).
    pub read_write: Vec<PathBuf>,
    /// The fetch phase: TCP sockets, and connecting to this port only, where boternity's
    /// fetch proxy listens on 127.0.0.1 (see [`crate::build::fetch_proxy`]); the host's network
    /// namespace is kept so the proxy is reachable. `None`: no network at all.
    pub proxy_port: Option<u16>,
    /// The complete environment of the confined program.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// Use user+mount+PID namespaces (and a network namespace unless `proxy_port` is set)
    /// when the kernel offers them.
    pub namespaces: bool,
    /// The target directory the program sees, mounted in its mount namespace before
    /// anything is confined (see [`TargetView`]). Requires the namespaces: the helper
    /// refuses to run a policy with a view where it cannot make one.
    #[serde(default)]
    pub target_view: Option<TargetView>,
    /// Folders bind-mounted read-only in the mount namespace (where there is
    /// one), after the target view: Landlock governs what a process may open,
    /// not `chmod` or `utimes` of a file it owns, which a read-only mount
    /// refuses (the cargo home's registry cache, the dependency layers).
    #[serde(default)]
    pub read_only_mounts: Vec<PathBuf>,
}

/// A target directory seen at a fixed path inside the build's mount namespace.
///
/// cargo's fingerprints name the target directory by its path, so a
/// [dependency layer](crate::build::layer) is only reused when every build sees
/// it where it was built: every layered build sees its target directory at
/// `at` (the same path for all of them, each in its own mount namespace). The
/// helper bind-mounts `upper` there, or, with a `layer`, mounts overlayfs with
/// the layer as its read-only lower directory and `upper` as the build's
/// private, writable one: what a build writes, changes or deletes lands in
/// `upper`, never in the layer. Where overlayfs cannot be mounted, the layer's
/// files are copied into `upper` first (a private copy) and `upper` is
/// bind-mounted. `at` and every path here must hold no `,`, `:` or `\`
/// (overlayfs's option separators).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetView {
    /// Where the program sees its target directory.
    pub at: PathBuf,
    /// The build's own writable directory.
    pub upper: PathBuf,
    /// The frozen layer below it, if any.
    pub layer: Option<LayerMount>,
}

/// The read-only lower directory of a [`TargetView`], and overlayfs's work
/// directory (empty, on the same filesystem as the view's `upper`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerMount {
    pub lower: PathBuf,
    pub work: PathBuf,
}

impl TargetView {
    /// Whether every path of the view can be written into overlayfs's options.
    pub fn paths_are_plain(&self) -> bool {
        let plain = |p: &Path| p.is_absolute() && !p.to_string_lossy().contains([',', ':', '\\']);
        plain(&self.at)
            && plain(&self.upper)
            && self
                .layer
                .as_ref()
                .is_none_or(|l| plain(&l.lower) && plain(&l.work))
    }
}

/// The rlimits of the confined process and its children.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NPROC. Counted per uid (not enforced for uid 0 of the initial namespace).
    pub max_processes: u64,
    /// RLIMIT_FSIZE: largest file a process may write (SIGXFSZ beyond).
    pub max_file_bytes: u64,
    /// RLIMIT_CPU, per process.
    pub cpu_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: 4096,
            max_file_bytes: 2 << 30,
            cpu_seconds: 1800,
        }
    }
}

/// Where things are, for [`fetch_policy`] / [`build_policy`].
#[derive(Clone, Debug)]
pub struct Layout {
    /// The skill's source folder (contains Cargo.toml).
    pub skill_dir: PathBuf,
    /// Build output directory (read-write).
    pub target_dir: PathBuf,
    /// boternity's own cargo home (registry caches; no credentials, no config).
    pub cargo_home: PathBuf,
    /// rustup home (toolchains are read).
    pub rustup_home: PathBuf,
    /// The toolchain directory (`rustc --print sysroot`): its `bin/cargo` is run directly.
    pub toolchain: PathBuf,
    /// A private, empty scratch directory; `home/` and `tmp/` are created in it.
    pub scratch: PathBuf,
}

/// System locations the compiler, host linker (cc) and wasm linkers need. On this
/// (merged-/usr) machine `/usr` alone suffices: /bin, /lib, /lib64 are symlinks into it,
/// Landlock does not gate symlink resolution (so /etc/alternatives/cc is followed), and
/// the dynamic loader works without /etc/ld.so.cache. The others are for split-/usr systems.
pub const SYSTEM_READ_ONLY: &[&str] = &["/usr", "/lib", "/lib64", "/bin"];

fn base_env(l: &Layout) -> Vec<(String, String)> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        (
            "PATH".into(),
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin",
                s(&l.toolchain.join("bin"))
            ),
        ),
        ("HOME".into(), s(&l.scratch.join("home"))),
        ("TMPDIR".into(), s(&l.scratch.join("tmp"))),
        ("CARGO_HOME".into(), s(&l.cargo_home)),
        ("RUSTUP_HOME".into(), s(&l.rustup_home)),
        (
            "RUSTUP_TOOLCHAIN".into(),
            l.toolchain
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        ("CARGO_TARGET_DIR".into(), s(&l.target_dir)),
        ("CARGO_TERM_COLOR".into(), "never".into()),
        ("CARGO_NET_GIT_FETCH_WITH_CLI".into(), "false".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

fn prepare(l: &Layout) -> std::io::Result<()> {
    for d in [
        l.scratch.join("home"),
        l.scratch.join("tmp"),
        l.target_dir.clone(),
        l.cargo_home.clone(),
    ] {
        std::fs::create_dir_all(d)?;
    }
    Ok(())
}

/// Phase 1: `cargo fetch`, with TCP to the fetch proxy on 127.0.0.1:`proxy_port` only
/// (which reaches only the package registries boternity is configured for); writes
/// `Cargo.lock` in the source copy and the registry caches in the cargo home. No code of
/// the skill runs in this phase, and it is confined like the build all the same.
pub fn fetch_policy(l: &Layout, proxy_port: u16) -> std::io::Result<Policy> {
    prepare(l)?;
    let mut read_only: Vec<PathBuf> = SYSTEM_READ_ONLY.iter().map(PathBuf::from).collect();
    // TLS roots (names are resolved by the proxy, not here).
    for p in ["/etc/ssl", "/etc/ca-certificates", "/etc/pki"] {
        read_only.push(p.into());
    }
    read_only.extend([l.toolchain.clone(), l.scratch.join("home"), "/proc".into()]);
    let mut env = base_env(l);
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    env.extend([
        ("CARGO_HTTP_PROXY".into(), proxy),
        ("CARGO_NET_RETRY".into(), "2".into()),
    ]);
    Ok(Policy {
        read_only,
        read_write: vec![
            l.skill_dir.clone(),
            l.cargo_home.clone(),
            l.scratch.join("tmp"),
            "/dev/null".into(),
        ],
        proxy_port: Some(proxy_port),
        env,
        limits: Limits::default(),
        namespaces: true,
        target_view: None,
        read_only_mounts: Vec::new(),
    })
}

/// Phase 2: `cargo build --offline --locked` (and `cargo metadata --offline` before it):
/// no network, the source copy and cargo home read-only (see [`CARGO_HOME_WRITABLE`]),
/// only the target directory and a private TMPDIR writable.
pub fn build_policy(l: &Layout) -> std::io::Result<Policy> {
    prepare(l)?;
    let mut read_only: Vec<PathBuf> = SYSTEM_READ_ONLY.iter().map(PathBuf::from).collect();
    read_only.extend([
        l.skill_dir.clone(),
        l.toolchain.clone(),
        l.cargo_home.clone(),
        l.scratch.join("home"),
        "/proc".into(),
    ]);
    let mut read_write = vec![
        l.target_dir.clone(),
        l.scratch.join("tmp"),
        "/dev/null".into(),
    ];
    for f in CARGO_HOME_WRITABLE {
        let p = l.cargo_home.join(f);
        if !p.exists() {
            std::fs::File::create(&p)?;
        }
        read_write.push(p);
    }
    Ok(Policy {
        read_only,
        read_write,
        proxy_port: None,
        env: base_env(l),
        limits: Limits::default(),
        namespaces: true,
        target_view: None,
        read_only_mounts: Vec::new(),
    })
}

/// Files in the cargo home that `cargo build --offline --locked` must be able to write:
/// none. With cargo 1.95 the whole cargo home can be read-only under Landlock (cargo
/// tolerates EACCES on its package-cache lock and last-use database). Kept as a hook.
pub const CARGO_HOME_WRITABLE: &[&str] = &[];
