//! What this machine can confine: the kernel's Landlock ABI, seccomp, and the
//! namespaces an unprivileged process may create, each with why it is missing.
//! Read by `doctor`, by the pipeline before it builds untrusted source, and by
//! the helper before it confines.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Which confinement layers this kernel offers, and why any is missing.
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
