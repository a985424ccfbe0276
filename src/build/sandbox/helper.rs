//! The re-executed helper: the single-threaded process the main binary turns
//! into when its first argument is [`HELPER_MARKER`]. The caller side builds
//! its command line ([`command`]); the helper side reads the policy, enters the
//! namespaces (a reaper as PID 1 of the new PID namespace, a private `/proc`),
//! then confines the last process and execs the program (see [`super::confine`]).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::confine::{confine_and_exec, seccomp_filters};
use super::report::{Report, to_parent};
use super::{Policy, SandboxError, TargetView, probe, sys_err};

/// Hidden first argument that turns the main binary into the sandbox helper.
pub const HELPER_MARKER: &str = "__boternity-sandbox-exec";
/// Environment variable carrying the JSON policy to the helper.
const POLICY_ENV: &str = "BOTERNITY_SANDBOX_POLICY";
/// Variables a jobserver client sets on the helper, passed on to the program.
const JOBSERVER_ENV: [&str; 3] = ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];
/// The environment variables the helper needs: its policy and the jobserver's.
/// The binary's `main` looks them up and hands those that are set to
/// [`helper_main`], so the library itself reads no environment variable.
pub const HELPER_ENV: [&str; 4] = [
    POLICY_ENV,
    JOBSERVER_ENV[0],
    JOBSERVER_ENV[1],
    JOBSERVER_ENV[2],
];
/// Exit code of the helper when it could not set up the sandbox.
pub const HELPER_FAILURE: u8 = 125;

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

// ---------------------------------------------------------------------------------------
// Helper side

/// Call first thing in `main()`, with the process's arguments (`argv[0]`
/// first) and the variables of [`HELPER_ENV`] that are set (others are
/// ignored). If `argv[1]` is [`HELPER_MARKER`], applies the policy and execs the
/// program (never returns on success; on failure prints `boternity-sandbox:
/// error: ...` and returns exit code 125); with namespaces it returns the
/// program's exit status (128+signal if killed). Otherwise returns `None`.
///
/// The caller looks the variables up (as `src/main.rs` and `examples/embed.rs`
/// do): the library reads none of its own.
pub fn helper_main(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Option<ExitCode> {
    let mut args = args.into_iter();
    args.next();
    if args.next().as_deref() != Some(OsStr::new(HELPER_MARKER)) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(match run_helper(rest, env.into_iter().collect()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            to_parent(&format!("error: {e}"));
            ExitCode::from(HELPER_FAILURE)
        }
    })
}

/// `rest`: the program and its arguments; `env`: the caller's [`HELPER_ENV`].
fn run_helper(rest: Vec<OsString>, env: Vec<(String, String)>) -> Result<u8, SandboxError> {
    let json = env
        .iter()
        .find(|(name, _)| name == POLICY_ENV)
        .map(|(_, value)| value)
        .ok_or_else(|| SandboxError::Policy(format!("{POLICY_ENV} not set")))?;
    let policy: Policy =
        serde_json::from_str(json).map_err(|e| SandboxError::Policy(e.to_string()))?;
    let (program, args) = rest
        .split_first()
        .ok_or_else(|| SandboxError::Policy("no program".into()))?;
    let program = resolve_program(program, &policy)?;
    let mut argv: Vec<CString> = vec![cstring(program.as_os_str())?];
    for a in args {
        argv.push(cstring(a)?);
    }
    // The program's environment is the policy's, plus the jobserver variables
    // the caller set on the helper (their descriptors are inherited); only
    // those, so nothing else a caller hands in reaches the program.
    let jobserver = env
        .iter()
        .filter(|(name, _)| JOBSERVER_ENV.contains(&name.as_str()));
    let envp: Vec<CString> = policy
        .env
        .iter()
        .chain(jobserver)
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
    if !use_ns && policy.target_view.is_some() {
        return Err(SandboxError::Policy(
            "a target view needs user and mount namespaces, which this kernel refuses".into(),
        ));
    }
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
    // The target directory at its fixed path, before anything is confined
    // (the confined program can mount nothing: seccomp refuses it).
    let target_view = match &policy.target_view {
        Some(view) => Some(mount_target_view(view)?),
        None => None,
    };
    for dir in &policy.read_only_mounts {
        if dir.is_dir() {
            bind(dir, dir, true)?;
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
            target_view: target_view.map(str::to_string),
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

/// Mounts `view` in this (private) mount namespace; how: "private",
/// "overlay" or "copy" (see [`TargetView`]).
fn mount_target_view(view: &TargetView) -> Result<&'static str, SandboxError> {
    if !view.paths_are_plain() {
        return Err(SandboxError::Policy(
            "a target view's paths must be absolute, without `,`, `:` or `\\`".into(),
        ));
    }
    let Some(layer) = &view.layer else {
        bind(&view.upper, &view.at, false)?;
        return Ok("private");
    };
    // The layer read-only in this namespace whatever its files' modes: not
    // even a bug here could write it.
    bind(&layer.lower, &layer.lower, true)?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        layer.lower.display(),
        view.upper.display(),
        layer.work.display()
    );
    let at = cpath(&view.at)?;
    let data = cstring(OsStr::new(&options))?;
    // SAFETY: mount(2) with valid NUL-terminated strings; in our own mount namespace.
    let mounted = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            at.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    } == 0;
    if mounted {
        return Ok("overlay");
    }
    // No overlayfs here (an old kernel, or none in user namespaces): a
    // private copy of the layer below what the build already wrote.
    copy_missing(&layer.lower, &view.upper)
        .map_err(|e| SandboxError::Sys("copy the dependency layer", e))?;
    bind(&view.upper, &view.at, false)?;
    Ok("copy")
}

/// Bind-mounts `from` at `to`, read-only when asked (keeping the flags the
/// original mount has locked, which a user namespace may not clear).
fn bind(from: &Path, to: &Path, read_only: bool) -> Result<(), SandboxError> {
    let (from_c, to_c) = (cpath(from)?, cpath(to)?);
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: mount(2) with valid NUL-terminated strings and null data; in our own namespace.
    if unsafe {
        libc::mount(
            from_c.as_ptr(),
            to_c.as_ptr(),
            none,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(sys_err("mount(MS_BIND)"));
    }
    if !read_only {
        return Ok(());
    }
    // SAFETY: statvfs writes into a zeroed local struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a pointer to the local struct.
    if unsafe { libc::statvfs(to_c.as_ptr(), &mut stat) } != 0 {
        return Err(sys_err("statvfs"));
    }
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    for (st, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if stat.f_flag & st != 0 {
            flags |= ms;
        }
    }
    // SAFETY: as above; a remount of the bind mount just made.
    if unsafe { libc::mount(none, to_c.as_ptr(), none, flags, std::ptr::null()) } != 0 {
        return Err(sys_err("mount(MS_REMOUNT | MS_RDONLY)"));
    }
    Ok(())
}

/// Copies what `from` holds and `to` lacks (files, folders, links), so a
/// build over a private copy sees the layer below its own writes.
fn copy_missing(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_missing(&src, &dest)?;
        } else if std::fs::symlink_metadata(&dest).is_ok() {
            continue;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dest)?;
        }
    }
    Ok(())
}

fn cpath(path: &Path) -> Result<CString, SandboxError> {
    cstring(path.as_os_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_helper_runs_only_when_called_and_reads_its_policy_from_its_arguments() {
        // Not the helper: the program goes on.
        let env = vec![(POLICY_ENV.to_string(), "{}".to_string())];
        assert!(helper_main(args(&["boternity", "list"]), env).is_none());
        assert!(helper_main(args(&["boternity"]), Vec::new()).is_none());
        // The helper, without the policy it is handed (the process's own
        // environment is never read): it refuses before anything runs.
        let code = helper_main(args(&["boternity", HELPER_MARKER, "/bin/true"]), Vec::new());
        assert_eq!(code, Some(ExitCode::from(HELPER_FAILURE)));
        let err = run_helper(args(&["/bin/true"]), Vec::new()).unwrap_err();
        assert!(err.to_string().contains(POLICY_ENV), "{err}");
        let bad = vec![(POLICY_ENV.to_string(), "not json".to_string())];
        let err = run_helper(args(&["/bin/true"]), bad).unwrap_err();
        assert!(matches!(err, SandboxError::Policy(_)), "{err}");
    }
}
