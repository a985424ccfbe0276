//! Confinement of untrusted `cargo fetch` / `cargo build` runs on Linux.
//!
//! Layers (applied by a re-executed, single-threaded helper, see [`helper_main`]):
//! * user + mount + PID namespaces, and a network namespace for the build phase, where the
//!   kernel allows them: no network interface, a fresh `/proc` showing only the phase's
//!   processes, a reaper as PID 1 (its exit takes every process of the phase with it);
//! * Landlock (required): filesystem allow-list, TCP bind/connect denied but for the fetch
//!   proxy's port in the fetch phase (ABI >= 4), abstract Unix sockets and signals scoped
//!   (ABI >= 6); `/proc` is not granted unless it is the private one of the PID namespace;
//! * seccomp: `socket()` is an allow-list — nothing in the build phase, TCP over IPv4/IPv6
//!   in the fetch phase (to the proxy): UDP, raw, Unix, netlink, vsock and every other
//!   family fail with EACCES; io_uring and clone3 fail with ENOSYS, x32 syscalls fail,
//!   namespace/mount/ptrace/bpf/keyring/session syscalls fail with EPERM;
//! * all capabilities dropped (bounding set too), environment replaced by an allow-list,
//!   rlimits (NPROC, FSIZE, CPU, CORE=0).
//!
//! The helper prints one line `boternity-sandbox: {json}` (a [`Report`]) on stderr just
//! before it execs the confined program; [`parse_report`] reads it back.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Hidden first argument that turns the main binary into the sandbox helper.
pub const HELPER_MARKER: &str = "__boternity-sandbox-exec";
/// Environment variable carrying the JSON policy to the helper.
const POLICY_ENV: &str = "BOTERNITY_SANDBOX_POLICY";
/// Variables a jobserver client sets on the helper, passed on to the program.
const JOBSERVER_ENV: [&str; 3] = ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];
/// Exit code of the helper when it could not set up the sandbox.
pub const HELPER_FAILURE: u8 = 125;
/// Prefix of the report line the helper writes on stderr.
pub const REPORT_PREFIX: &str = "boternity-sandbox: ";
/// Highest Landlock ABI this module was tested with; newer kernels are used at this level.
const MAX_LANDLOCK_ABI: i32 = 7;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// Readable (and executable) hierarchies. Missing paths are skipped.
    pub read_only: Vec<PathBuf>,
    /// Readable and writable hierarchies (target dir, private TMPDIR, /dev/null...).
    pub read_write: Vec<PathBuf>,
    /// The fetch phase: TCP sockets, and connecting to this port only, where boternity's
    /// fetch proxy listens on 127.0.0.1 (see [`super::fetch_proxy`]); the host's network
    /// namespace is kept so the proxy is reachable. `None`: no network at all.
    pub proxy_port: Option<u16>,
    /// The complete environment of the confined program.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// Use user+mount+PID namespaces (and a network namespace unless `proxy_port` is set)
    /// when the kernel offers them.
    pub namespaces: bool,
}

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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Support {
    /// Landlock ABI of the running kernel (None: Landlock absent or disabled).
    pub landlock_abi: Option<i32>,
    pub landlock_fs: bool,
    pub landlock_tcp: bool,
    pub landlock_scoping: bool,
    pub seccomp: bool,
    pub user_ns: bool,
    pub mount_ns: bool,
    pub net_ns: bool,
    pub pid_ns: bool,
    pub why_missing: Vec<String>,
}

impl Support {
    /// Untrusted source may be built only when this is true.
    pub fn can_confine(&self) -> bool {
        self.landlock_fs && self.seccomp
    }
    pub fn namespaces(&self) -> bool {
        self.user_ns && self.mount_ns && self.net_ns && self.pid_ns
    }
}

/// What the helper enforced, printed as one JSON line before exec.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub landlock_abi: i32,
    /// "FullyEnforced" | "PartiallyEnforced" | "NotEnforced"
    pub landlock: String,
    pub landlock_tcp: bool,
    pub landlock_scoped: bool,
    pub no_new_privs: bool,
    pub seccomp: bool,
    /// e.g. ["user", "mnt", "net", "pid"]
    pub namespaces: Vec<String>,
    /// "private" (fresh /proc of the PID namespace, read-only) or "denied".
    pub proc: String,
    pub capabilities_dropped: bool,
    pub limits: Option<Limits>,
    /// pid_max of the private PID namespace (Linux >= 6.14), a hard bound on the number of
    /// processes even for uid 0, whose RLIMIT_NPROC the kernel does not enforce.
    pub pid_max: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox policy: {0}")]
    Policy(String),
    #[error("Landlock is not usable on this kernel ({0}); refusing to run untrusted code")]
    NoLandlock(String),
    #[error("Landlock: {0}")]
    Landlock(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("{0}: {1}")]
    Sys(&'static str, std::io::Error),
}

fn sys_err(what: &'static str) -> SandboxError {
    SandboxError::Sys(what, std::io::Error::last_os_error())
}

// ---------------------------------------------------------------------------------------
// Probe

/// Kernel Landlock ABI version, via `landlock_create_ruleset(NULL, 0, VERSION)`.
pub fn landlock_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: null attr, size 0, flag VERSION; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r > 0 { Some(r as i32) } else { None }
}

/// What the running kernel allows. Cheap and cached (forks once to try the namespaces).
pub fn probe() -> Support {
    static CACHE: OnceLock<Support> = OnceLock::new();
    CACHE.get_or_init(probe_uncached).clone()
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn probe_uncached() -> Support {
    let mut s = Support {
        landlock_abi: landlock_abi(),
        ..Default::default()
    };
    match s.landlock_abi {
        Some(abi) => {
            s.landlock_fs = true;
            s.landlock_tcp = abi >= 4;
            s.landlock_scoping = abi >= 6;
            if abi < 4 {
                s.why_missing.push(format!(
                    "Landlock ABI {abi} < 4: no TCP restriction (kernel < 6.7)"
                ));
            }
            if abi < 6 {
                s.why_missing.push(format!(
                    "Landlock ABI {abi} < 6: no abstract-socket/signal scoping (kernel < 6.12)"
                ));
            }
        }
        None => {
            let err = std::io::Error::last_os_error();
            s.why_missing.push(match err.raw_os_error() {
                Some(libc::EOPNOTSUPP) => "Landlock is built but disabled: add `landlock` to the `lsm=` kernel boot parameter".into(),
                Some(libc::ENOSYS) => "Landlock is not built into this kernel (needs Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK)".into(),
                _ => format!("Landlock unavailable: {err}"),
            });
        }
    }
    // PR_GET_SECCOMP fails with EINVAL when the kernel lacks CONFIG_SECCOMP.
    // SAFETY: prctl(PR_GET_SECCOMP) only reads this thread's seccomp mode.
    s.seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
    if !s.seccomp {
        s.why_missing
            .push("seccomp is not available (CONFIG_SECCOMP_FILTER)".into());
    }
    // Try the namespaces in a throw-away child: exit code says how far it got.
    // SAFETY: the child calls only async-signal-safe syscalls (unshare, _exit) before exiting,
    // so forking from a multi-threaded process is sound; the parent only waits.
    let code = unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let steps = [
                libc::CLONE_NEWUSER,
                libc::CLONE_NEWNS,
                libc::CLONE_NEWNET,
                libc::CLONE_NEWPID,
            ];
            for (i, flag) in steps.iter().enumerate() {
                if libc::unshare(*flag) != 0 {
                    libc::_exit(10 + i as i32);
                }
            }
            libc::_exit(0);
        }
        let mut status = 0;
        if pid < 0 || libc::waitpid(pid, &mut status, 0) != pid || !libc::WIFEXITED(status) {
            -1
        } else {
            libc::WEXITSTATUS(status)
        }
    };
    let reached = if code == 0 {
        4
    } else if (10..14).contains(&code) {
        code - 10
    } else {
        0
    };
    s.user_ns = reached >= 1;
    s.mount_ns = reached >= 2;
    s.net_ns = reached >= 3;
    s.pid_ns = reached >= 4;
    if !s.user_ns {
        if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
        {
            s.why_missing.push("sysctl kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu >= 23.10) blocks user namespaces".into());
        }
        if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            s.why_missing
                .push("sysctl kernel.unprivileged_userns_clone=0 blocks user namespaces".into());
        }
        if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
            s.why_missing
                .push("sysctl user.max_user_namespaces=0 blocks user namespaces".into());
        }
        s.why_missing.push("user namespaces unavailable (seccomp/container policy?): /proc is then denied to builds".into());
    } else if !s.pid_ns {
        s.why_missing.push(format!(
            "unshare of namespace #{} (mnt, net, pid) refused",
            reached
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------
// Caller side

/// A `Command` that runs `program args` in `cwd`, confined by `policy`, through the helper
/// (`helper_exe` must call [`helper_main`] first thing in `main`). The environment of the
/// program is exactly `policy.env`. The command is put in its own process group: to stop
/// it on timeout, kill the group (`kill(-pid, SIGKILL)`).
pub fn command(
    helper_exe: &Path,
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    policy: &Policy,
) -> Command {
    let mut cmd = Command::new(helper_exe);
    cmd.arg(HELPER_MARKER)
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env(
            POLICY_ENV,
            serde_json::to_string(policy).expect("policy serializes"),
        )
        .process_group(0);
    cmd
}

/// The report line the helper printed, if any.
pub fn parse_report(stderr: &str) -> Option<Report> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_PREFIX))
        .and_then(|j| serde_json::from_str(j).ok())
}

/// What the sandbox most likely refused, from a failed build's stderr.
/// Each entry is `filesystem: <path>: <error>`, `network: <line>` or `process: <line>`.
pub fn explain_denials(stderr: &str) -> Vec<String> {
    const FS: [&str; 4] = [
        "Permission denied (os error 13)",
        "Operation not permitted (os error 1)",
        "Read-only file system (os error 30)",
        "Permission denied",
    ];
    const NET: [&str; 8] = [
        "Connection refused",
        "Network is unreachable",
        "os error 101",
        "Address family not supported",
        "failed to lookup address",
        "Temporary failure in name resolution",
        "Name or service not known",
        "Cannot assign requested address",
    ];
    const PROC: [&str; 6] = [
        "Resource temporarily unavailable (os error 11)",
        "SIGXFSZ",
        "signal: 25",
        "File too large",
        "SIGXCPU",
        "signal: 24",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s)
        }
    };
    for (i, line) in lines.iter().enumerate() {
        // The report line, and a build script's `cargo:warning=` echo (cargo
        // prints each warning again as `warning: pkg@ver: …`).
        if line.starts_with(REPORT_PREFIX) || line.trim_start().starts_with("cargo:warning=") {
            continue;
        }
        if let Some(p) = PROC.iter().find(|p| line.contains(*p)) {
            push(format!("process: {} ({})", line.trim(), limit_hint(p)));
            continue;
        }
        if NET.iter().any(|p| line.contains(p)) {
            push(format!("network: {}", line.trim()));
            continue;
        }
        if let Some(p) = FS.iter().find(|p| line.contains(*p)) {
            // The path is on this line or, with cargo's "Caused by:", a few lines above.
            let path = (0..=i.min(4)).map(|k| lines[i - k]).find_map(quoted_path);
            match path {
                Some(path) => push(format!("filesystem: {path}: {p}")),
                None if line.contains("socket") || line.contains("connect") => {
                    push(format!("network: {}", line.trim()))
                }
                None => push(format!("denied: {}", line.trim())),
            }
        }
    }
    out
}

fn limit_hint(p: &str) -> &'static str {
    match p {
        "SIGXFSZ" | "signal: 25" | "File too large" => "file size limit",
        "SIGXCPU" | "signal: 24" => "CPU time limit",
        _ => "process limit",
    }
}

/// First path (absolute, or relative with a `/`) quoted with `…`, '…' or "…" in `line`.
fn quoted_path(line: &str) -> Option<String> {
    for q in ['`', '\'', '"'] {
        let mut parts = line.split(q);
        parts.next();
        while let Some(inner) = parts.next() {
            if inner.contains('/') && !inner.contains(' ') && !inner.contains("://") {
                return Some(inner.to_string());
            }
            parts.next();
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Helper side

/// Call first thing in `main()`. If `argv[1]` is [`HELPER_MARKER`], applies the policy and
/// execs the program (never returns on success; on failure prints `boternity-sandbox:
/// error: ...` and returns exit code 125); with namespaces it returns the program's exit
/// status (128+signal if killed). Otherwise returns `None`.
pub fn helper_main() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    args.next();
    if args.next().as_deref() != Some(OsStr::new(HELPER_MARKER)) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(match run_helper(rest) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            to_parent(&format!("error: {e}"));
            ExitCode::from(HELPER_FAILURE)
        }
    })
}

/// One line of the helper's protocol with the process that started it (read
/// back by [`parse_report`] from the build's stderr): not output for a person,
/// so it is written directly rather than printed.
fn to_parent(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{REPORT_PREFIX}{line}");
}

fn run_helper(rest: Vec<OsString>) -> Result<u8, SandboxError> {
    let json = std::env::var(POLICY_ENV)
        .map_err(|_| SandboxError::Policy(format!("{POLICY_ENV} not set")))?;
    let policy: Policy =
        serde_json::from_str(&json).map_err(|e| SandboxError::Policy(e.to_string()))?;
    let (program, args) = rest
        .split_first()
        .ok_or_else(|| SandboxError::Policy("no program".into()))?;
    let program = resolve_program(program, &policy)?;
    let mut argv: Vec<CString> = vec![cstring(program.as_os_str())?];
    for a in args {
        argv.push(cstring(a)?);
    }
    // The program's environment is the policy's, plus the jobserver variables
    // the caller set on the helper (their descriptors are inherited).
    let mut env = policy.env.clone();
    for name in JOBSERVER_ENV {
        if let Ok(value) = std::env::var(name) {
            env.push((name.to_string(), value));
        }
    }
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| cstring(OsStr::new(&format!("{k}={v}"))))
        .collect::<Result<_, _>>()?;

    let support = probe();
    if !support.landlock_fs {
        return Err(SandboxError::NoLandlock(support.why_missing.join("; ")));
    }
    if !support.seccomp {
        return Err(SandboxError::Seccomp("not available".into()));
    }
    // Compile the seccomp filters before forking (plain computation).
    let filters = seccomp_filters(&policy)?;

    let use_ns = policy.namespaces && support.namespaces();
    if !use_ns {
        let mut report = Report {
            proc: "denied".into(),
            ..Default::default()
        };
        confine_and_exec(&policy, &filters, &argv, &envp, false, &mut report)?;
        unreachable!()
    }

    // user + mount (+ net) + pid namespaces; we stay outside the new PID namespace and
    // our first child becomes its PID 1. The fetch phase keeps the host's network
    // namespace, where the fetch proxy listens; Landlock and seccomp hold it to that.
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;
    let mut namespaces = vec!["user", "mnt", "pid"];
    if policy.proxy_port.is_none() {
        flags |= libc::CLONE_NEWNET;
        namespaces.insert(2, "net");
    }
    // SAFETY: unshare takes flags only; the helper is single-threaded here (a fresh exec).
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(sys_err("unshare(user|mnt|net|pid)"));
    }
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
    write_file("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
    // SAFETY: the helper process is single-threaded (freshly exec'd), so the child may allocate.
    let pid1 = unsafe { libc::fork() };
    if pid1 < 0 {
        return Err(sys_err("fork"));
    }
    if pid1 == 0 {
        // PID 1 of the new namespace.
        let code = match pid1_main(&policy, &filters, &argv, &envp, &namespaces) {
            Ok(code) => code,
            Err(e) => {
                to_parent(&format!("error: {e}"));
                HELPER_FAILURE
            }
        };
        // SAFETY: _exit ends the child without running the parent's destructors twice.
        unsafe { libc::_exit(code as i32) };
    }
    Ok(wait_exit_code(pid1))
}

fn pid1_main(
    policy: &Policy,
    filters: &[seccompiler::BpfProgram],
    argv: &[CString],
    envp: &[CString],
    namespaces: &[&str],
) -> Result<u8, SandboxError> {
    // SAFETY: mount(2) with valid NUL-terminated C strings and null data; PID 1 of our own namespaces.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let none = std::ptr::null::<libc::c_char>();
        if libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(sys_err("mount(/, MS_REC | MS_PRIVATE)"));
        }
        if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            return Err(sys_err("mount /proc"));
        }
    }
    // Per-PID-namespace pid_max (Linux >= 6.14): bounds the process count for root too.
    // The kernel's minimum is 301 (PIDs below 300 are reserved after the first wrap).
    let pid_max = (policy.limits.max_processes + 1).max(301);
    let pid_max = std::fs::write("/proc/sys/kernel/pid_max", pid_max.to_string())
        .ok()
        .map(|_| pid_max);
    // SAFETY: PID 1 of the sandbox is single-threaded, so the child may allocate.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(sys_err("fork"));
    }
    if child == 0 {
        let mut report = Report {
            proc: "private".into(),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            pid_max,
            ..Default::default()
        };
        let err = confine_and_exec(policy, filters, argv, envp, true, &mut report).unwrap_err();
        to_parent(&format!("error: {err}"));
        // SAFETY: _exit ends the child without running the parent's destructors twice.
        unsafe { libc::_exit(HELPER_FAILURE as i32) };
    }
    // Reap everything (orphans are re-parented to us) until the program exits.
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(sys_err("waitpid"));
        }
        if pid == child {
            return Ok(status_code(status));
        }
    }
}

fn wait_exit_code(pid: libc::pid_t) -> u8 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status_code(status);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return HELPER_FAILURE;
        }
    }
}

fn status_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        128u8.wrapping_add(libc::WTERMSIG(status) as u8)
    } else {
        HELPER_FAILURE
    }
}

/// Last step, in the process that becomes the program: rlimits, capabilities, Landlock,
/// seccomp, report, execve. Returns only on error.
fn confine_and_exec(
    policy: &Policy,
    filters: &[seccompiler::BpfProgram],
    argv: &[CString],
    envp: &[CString],
    private_proc: bool,
    report: &mut Report,
) -> Result<std::convert::Infallible, SandboxError> {
    set_rlimits(&policy.limits)?;
    report.limits = Some(policy.limits);
    drop_capabilities()?;
    report.capabilities_dropped = true;
    apply_landlock(policy, private_proc, report)?;
    for f in filters {
        seccompiler::apply_filter(f).map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    }
    report.seccomp = true;
    to_parent(&serde_json::to_string(report).unwrap_or_default());
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: argv and envp are null-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(argv_p[0], argv_p.as_ptr(), envp_p.as_ptr()) };
    Err(sys_err("execve"))
}

fn set_rlimits(l: &Limits) -> Result<(), SandboxError> {
    let set = |res, v: u64, what| {
        let lim = libc::rlimit {
            rlim_cur: v as libc::rlim_t,
            rlim_max: v as libc::rlim_t,
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            Err(sys_err(what))
        } else {
            Ok(())
        }
    };
    set(libc::RLIMIT_NPROC, l.max_processes, "setrlimit(NPROC)")?;
    set(libc::RLIMIT_FSIZE, l.max_file_bytes, "setrlimit(FSIZE)")?;
    set(libc::RLIMIT_CPU, l.cpu_seconds, "setrlimit(CPU)")?;
    set(libc::RLIMIT_CORE, 0, "setrlimit(CORE)")
}

/// Empty bounding, ambient, inheritable, permitted and effective sets (so exec as uid 0
/// gains nothing).
fn drop_capabilities() -> Result<(), SandboxError> {
    // SAFETY: prctl and capset on this process only, with valid pointers to local structs.
    unsafe {
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
            {
                return Err(sys_err("prctl(PR_CAPBSET_DROP)"));
            }
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut h = Header {
            version: 0x2008_0522,
            pid: 0,
        }; // _LINUX_CAPABILITY_VERSION_3
        let d = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) != 0 {
            return Err(sys_err("capset"));
        }
    }
    Ok(())
}

fn apply_landlock(
    policy: &Policy,
    private_proc: bool,
    report: &mut Report,
) -> Result<(), SandboxError> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    let kernel = landlock_abi().ok_or_else(|| SandboxError::NoLandlock("no ABI".into()))?;
    let proc_ok = |p: &&PathBuf| private_proc || !p.starts_with("/proc");
    let ro: Vec<&PathBuf> = policy.read_only.iter().filter(proc_ok).collect();
    let rw: Vec<&PathBuf> = policy.read_write.iter().filter(proc_ok).collect();
    let mut errors = Vec::new();
    // Some backported kernels refuse newer rights with EINVAL: retry at lower ABIs.
    for n in (1..=kernel.min(MAX_LANDLOCK_ABI)).rev() {
        let abi = ABI::from(n);
        let attempt = || -> Result<landlock::RestrictionStatus, landlock::RulesetError> {
            let mut rs = Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(abi))?;
            if n >= 4 {
                rs = rs.handle_access(AccessNet::from_all(abi))?;
            }
            if n >= 6 {
                rs = rs.scope(Scope::from_all(abi))?;
            }
            let mut created = rs
                .create()?
                .add_rules(path_beneath_rules(&ro, AccessFs::from_read(abi)))?
                .add_rules(path_beneath_rules(&rw, AccessFs::from_all(abi)))?;
            if n >= 4
                && let Some(port) = policy.proxy_port
            {
                created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
            }
            created.restrict_self()
        };
        match attempt() {
            Ok(st) => {
                report.landlock_abi = n;
                report.landlock = format!("{:?}", st.ruleset);
                report.landlock_tcp = n >= 4;
                report.landlock_scoped = n >= 6;
                report.no_new_privs = st.no_new_privs;
                if st.ruleset != RulesetStatus::FullyEnforced {
                    return Err(SandboxError::Landlock(format!(
                        "ruleset {:?} at ABI {n}",
                        st.ruleset
                    )));
                }
                return Ok(());
            }
            Err(e) => errors.push(format!("ABI {n}: {e}")),
        }
    }
    Err(SandboxError::Landlock(errors.join("; ")))
}

fn seccomp_filters(policy: &Policy) -> Result<Vec<seccompiler::BpfProgram>, SandboxError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    #[cfg(target_arch = "x86_64")]
    let arch = TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    let arch = TargetArch::aarch64;
    #[cfg(target_arch = "riscv64")]
    let arch = TargetArch::riscv64;
    let e = |e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string());
    let build =
        |rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32| -> Result<BpfProgram, SandboxError> {
            SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                arch,
            )
            .and_then(BpfProgram::try_from)
            .map_err(e)
        };
    let arg0 = |op, v: u64| SeccompCondition::new(0, SeccompCmpArgLen::Dword, op, v).map_err(e);

    // 1. socket(): an allow-list. The build phase may create no socket at all; the fetch
    // phase TCP over IPv4/IPv6 only (to reach the proxy). A rule is an AND of its
    // conditions and the rules of a syscall are OR'ed, so "not an allowed family" is one
    // rule of `!=` conditions and "not a stream" one rule per other socket type.
    // `socketpair` (Unix pairs between a process's own threads) stays allowed.
    let socket_rules = match policy.proxy_port {
        // No rules: the call matches whatever its arguments.
        None => vec![],
        Some(_) => {
            let mut rules = vec![
                SeccompRule::new(vec![
                    arg0(SeccompCmpOp::Ne, libc::AF_INET as u64)?,
                    arg0(SeccompCmpOp::Ne, libc::AF_INET6 as u64)?,
                ])
                .map_err(e)?,
            ];
            // The type's low four bits (flags such as SOCK_CLOEXEC sit above them).
            for kind in (0..16u64).filter(|k| *k != libc::SOCK_STREAM as u64) {
                let cond = SeccompCondition::new(
                    1,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::MaskedEq(0xf),
                    kind,
                )
                .map_err(e)?;
                rules.push(SeccompRule::new(vec![cond]).map_err(e)?);
            }
            rules
        }
    };
    let mut f1 = build(
        BTreeMap::from([(libc::SYS_socket, socket_rules)]),
        libc::EACCES,
    )?;
    // x32 syscalls (nr with bit 30 set on x86_64) -> ENOSYS, checked before anything else.
    #[cfg(target_arch = "x86_64")]
    {
        use seccompiler::sock_filter;
        let ld_nr = sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }; // BPF_LD|BPF_W|BPF_ABS, offset of nr
        let jset = sock_filter {
            code: 0x45,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        }; // BPF_JMP|BPF_JSET|BPF_K
        let ret = sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | libc::ENOSYS as u32,
        }; // RET ERRNO
        f1.splice(0..0, [ld_nr, jset, ret]);
    }

    // 2. ENOSYS: callers fall back (glibc clone3 -> clone; io_uring users -> epoll).
    let enosys = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_clone3,
    ];
    let f2 = build(enosys.iter().map(|n| (*n, vec![])).collect(), libc::ENOSYS)?;

    // 3. EPERM: no new namespaces, mounts, tracing, bpf, keyrings.
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = [
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_kexec_load,
        // A new session or process group would leave the group boternity kills
        // when a phase ends (where no PID namespace holds the phase).
        libc::SYS_setsid,
        libc::SYS_setpgid,
    ]
    .iter()
    .map(|n| (*n, vec![]))
    .collect();
    let clone_rules = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ]
    .iter()
    .map(|f| SeccompRule::new(vec![arg0(SeccompCmpOp::MaskedEq(*f as u64), *f as u64)?]).map_err(e))
    .collect::<Result<Vec<_>, _>>()?;
    eperm.insert(libc::SYS_clone, clone_rules);
    let f3 = build(eperm, libc::EPERM)?;
    Ok(vec![f1, f2, f3])
}

fn resolve_program(program: &OsStr, policy: &Policy) -> Result<PathBuf, SandboxError> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = policy
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            SandboxError::Policy(format!("{} not found in PATH", program.to_string_lossy()))
        })
}

fn cstring(s: &OsStr) -> Result<CString, SandboxError> {
    CString::new(s.to_os_string().into_vec())
        .map_err(|_| SandboxError::Policy("NUL byte in argument".into()))
}

fn write_file(path: &str, content: &str) -> Result<(), SandboxError> {
    std::fs::write(path, content).map_err(|e| SandboxError::Sys("write uid/gid map", e))
}

// ---------------------------------------------------------------------------------------
// Policies for the two phases

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
    })
}

/// Files in the cargo home that `cargo build --offline --locked` must be able to write:
/// none. With cargo 1.95 the whole cargo home can be read-only under Landlock (cargo
/// tolerates EACCES on its package-cache lock and last-use database). Kept as a hook.
pub const CARGO_HOME_WRITABLE: &[&str] = &[];
