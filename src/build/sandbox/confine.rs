//! The last step in the process that becomes the program: rlimits, all
//! capabilities dropped, the Landlock ruleset and the seccomp filters, in that
//! order, then the report line and `execve`.

use std::ffi::CString;
use std::path::PathBuf;

use super::report::{Report, to_parent};
use super::{Limits, Policy, SandboxError, landlock_abi, sys_err};

/// Highest Landlock ABI this module was tested with; newer kernels are used at this level.
const MAX_LANDLOCK_ABI: i32 = 7;

/// Last step, in the process that becomes the program: rlimits, capabilities, Landlock,
/// seccomp, report, execve. Returns only on error.
pub(super) fn confine_and_exec(
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

pub(super) fn seccomp_filters(
    policy: &Policy,
) -> Result<Vec<seccompiler::BpfProgram>, SandboxError> {
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
