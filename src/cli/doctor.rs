//! `boternity doctor`: what this machine offers for building and running
//! skills — the toolchain and wasm targets, each layer of the build sandbox
//! (and what a missing one leaves open), and where the store and caches live.

use std::path::PathBuf;
use std::process::ExitCode;

use boternity_skills::build::{SKILL_TARGET, Toolchain};

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, Doctor, DoctorCheck as Check, DoctorStatus as Status};

/// Check the toolchain, the build sandbox and boternity's folders.
///
/// Each line is `ok`, `warn` (works, with less protection) or `error`
/// (something boternity needs), with a hint for every problem.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity doctor\n  boternity doctor --message-format json\n\nExit status:\n  0  skills can be built confined and run here\n  1  something is missing (see the `error` lines)"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

fn check(check: &str, status: Status, detail: impl Into<String>, hint: Option<&str>) -> Check {
    Check {
        check: check.into(),
        status,
        detail: detail.into(),
        hint: hint.map(str::to_string),
    }
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut checks = Vec::new();
        toolchain_checks(&mut checks);
        let can_build_confined = sandbox_checks(&mut checks);
        self.folder_checks(&mut checks);
        let ok = checks.iter().all(|c| c.status != Status::Error);
        if self.format.json() {
            message::emit(&Doctor {
                checks: &checks,
                can_build_confined,
                ok,
            });
        } else {
            for c in &checks {
                let word = match c.status {
                    Status::Ok => "ok",
                    Status::Warn => "warn",
                    Status::Error => "error",
                };
                println!("{word:>5}  {:<22} {}", c.check, c.detail);
                if let Some(hint) = &c.hint {
                    println!("{:>5}  {:<22} hint: {hint}", "", "");
                }
            }
        }
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    fn folder_checks(&self, checks: &mut Vec<Check>) {
        match self.store.open() {
            Ok(store) => checks.push(folder("store", store.root().to_path_buf())),
            Err(e) => checks.push(check(
                "store",
                Status::Error,
                e.to_string(),
                Some("pass --store DIR or set BOTERNITY_DATA_DIR"),
            )),
        }
        let context = self.store.context();
        checks.push(folder("cache", context.folders.cache.clone()));
        checks.push(folder("cargo home", context.folders.cargo_home()));
        checks.push(configuration_check(&context));
    }
}

/// Where a build's configuration comes from: boternity's alone.
fn configuration_check(context: &boternity_skills::Context) -> Check {
    let ignored = boternity_skills::build::toolchain::IGNORED_CONFIGURATION.join(", ");
    let registries = match super::context::var("BOTERNITY_CRATES_MIRROR") {
        Some(mirror) => format!("the mirror {mirror}"),
        None => boternity_skills::build::fetch_proxy::RegistryHosts::default()
            .hosts()
            .join(", "),
    };
    check(
        "build configuration",
        Status::Ok,
        format!(
            "cargo runs in a private HOME and working folder with the cargo home {} \
             (registry caches only, anything else removed before each build); a skill's {ignored} \
             are ignored; dependency fetches reach only {registries}, through boternity's proxy",
            context.folders.cargo_home().display()
        ),
        None,
    )
}

/// A folder boternity writes: fine when it exists and is writable, or does
/// not exist yet but its nearest existing parent is writable.
fn folder(name: &str, path: PathBuf) -> Check {
    let existing = path.ancestors().find(|p| p.exists());
    let writable = existing.is_some_and(|p| {
        tempfile::Builder::new()
            .prefix(".boternity-doctor-")
            .tempfile_in(p)
            .is_ok()
    });
    let detail = format!(
        "{}{}",
        path.display(),
        if path.exists() {
            ""
        } else {
            " (created on first use)"
        }
    );
    if writable {
        check(name, Status::Ok, detail, None)
    } else {
        check(
            name,
            Status::Error,
            detail + " is not writable",
            Some(
                "fix its permissions, or point BOTERNITY_DATA_DIR / BOTERNITY_CACHE_DIR elsewhere",
            ),
        )
    }
}

fn toolchain_checks(checks: &mut Vec<Check>) {
    match Toolchain::detect(&super::context::from_env(None).host) {
        Ok(t) => {
            checks.push(check(
                "toolchain",
                Status::Ok,
                format!("{}; {}", t.cargo_version, t.rustc_version),
                None,
            ));
            checks.push(check(
                "toolchain pinned",
                Status::Ok,
                format!(
                    "{} (RUSTUP_TOOLCHAIN={}): builds run {} and {} by absolute path, \
                     resolved once from boternity's environment in {}",
                    t.sysroot.display(),
                    t.name,
                    t.cargo.display(),
                    t.rustc.display(),
                    boternity_skills::build::toolchain::NEUTRAL_DIR,
                ),
                None,
            ));
            checks.push(check(
                &format!("target {SKILL_TARGET}"),
                Status::Ok,
                "installed",
                None,
            ));
            let wasip1 = t.sysroot.join("lib/rustlib/wasm32-wasip1");
            checks.push(if wasip1.is_dir() {
                check("target wasm32-wasip1", Status::Ok, "installed", None)
            } else {
                check(
                    "target wasm32-wasip1",
                    Status::Warn,
                    "not installed (only needed to build core modules for componentizing)",
                    Some("rustup target add wasm32-wasip1"),
                )
            });
        }
        Err(e) => checks.push(check(
            "toolchain",
            Status::Warn,
            e.to_string(),
            Some(
                "skills with Rust source are not built here; shipped binaries and registry components still install",
            ),
        )),
    }
}

/// Reports each sandbox layer; returns whether builds can be confined.
fn sandbox_checks(checks: &mut Vec<Check>) -> bool {
    use boternity_skills::build::sandbox;
    let s = sandbox::probe();
    match s.landlock_abi {
        Some(abi) => {
            checks.push(check(
                "landlock",
                Status::Ok,
                format!("ABI {abi}: filesystem rules enforced"),
                None,
            ));
            checks.push(if s.landlock_tcp {
                check("landlock tcp", Status::Ok, "TCP bind and connect denied", None)
            } else {
                check(
                    "landlock tcp",
                    Status::Warn,
                    "not enforced (ABI < 4): TCP is blocked by seccomp and the network namespace only",
                    Some("a kernel >= 6.7 adds it"),
                )
            });
            checks.push(if s.landlock_scoping {
                check(
                    "landlock scoping",
                    Status::Ok,
                    "abstract Unix sockets and signals scoped to the build",
                    None,
                )
            } else {
                check(
                    "landlock scoping",
                    Status::Warn,
                    "not enforced (ABI < 6): a build could signal or reach abstract sockets of other processes of this user",
                    Some("a kernel >= 6.12 adds it"),
                )
            });
            checks.push(check(
                "unix sockets",
                Status::Ok,
                if abi >= 9 {
                    "socket files covered by Landlock, and socket(AF_UNIX) denied by seccomp"
                } else {
                    "socket(AF_UNIX) denied by seccomp (Landlock covers socket files only from ABI 9)"
                },
                None,
            ));
        }
        None => checks.push(check(
            "landlock",
            Status::Error,
            format!(
                "unavailable: {}",
                s.why_missing.first().map_or("", String::as_str)
            ),
            Some(
                "untrusted Rust source is not built here (shipped binaries, registries or a stub instead); --allow-unconfined-build builds it with your rights",
            ),
        )),
    }
    checks.push(if s.seccomp {
        check(
            "seccomp",
            Status::Ok,
            "network sockets, io_uring, namespaces, ptrace and x32 calls denied",
            None,
        )
    } else {
        check(
            "seccomp",
            Status::Error,
            "unavailable: UDP, DNS and Unix sockets would be open to builds",
            Some("a kernel with CONFIG_SECCOMP_FILTER"),
        )
    });
    let namespaces = [
        ("user", s.user_ns),
        ("mount", s.mount_ns),
        ("network", s.net_ns),
        ("pid", s.pid_ns),
    ];
    let missing: Vec<&str> = namespaces
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    checks.push(if missing.is_empty() {
        check(
            "namespaces",
            Status::Ok,
            "user, mount, network, pid: no network interface, a /proc of the build's own processes, a process cap",
            None,
        )
    } else {
        let why: Vec<&str> = s
            .why_missing
            .iter()
            .filter(|w| w.contains("namespace") || w.contains("userns"))
            .map(String::as_str)
            .collect();
        check(
            "namespaces",
            Status::Warn,
            format!(
                "missing: {} ({}); /proc is then closed to builds, and the process count is bounded only by the timeout when run as root",
                missing.join(", "),
                why.join("; ")
            ),
            Some(
                "on Ubuntu 23.10+: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for boternity",
            ),
        )
    });
    s.can_confine()
}
