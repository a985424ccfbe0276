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
//!
//! One room per job: `probe` (what this machine can confine), `policy` (what a
//! run may touch), `helper` (the re-executed process: its command line,
//! namespaces and reaper), `confine` (rlimits, capabilities, Landlock, seccomp,
//! exec) and `report` (the report line, and denials named after cargo's
//! output). This file is the front door: everything other modules use is
//! re-exported here.

mod confine;
mod helper;
mod policy;
mod probe;
mod report;

pub use helper::{HELPER_ENV, HELPER_FAILURE, HELPER_MARKER, command, helper_main};
pub use policy::{
    CARGO_HOME_WRITABLE, LayerMount, Layout, Limits, Policy, SYSTEM_READ_ONLY, TargetView,
    build_policy, fetch_policy,
};
pub use probe::{Support, landlock_abi, probe};
pub use report::{REPORT_PREFIX, Report, explain_denials, parse_report};

/// Why the helper could not confine the program (it then exits with
/// [`HELPER_FAILURE`] and says why on its report line).
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

/// The failed system call `what`, with the error it set.
fn sys_err(what: &'static str) -> SandboxError {
    SandboxError::Sys(what, std::io::Error::last_os_error())
}
