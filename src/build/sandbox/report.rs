//! The helper's line protocol with its caller, and what a failed build's
//! output says the sandbox refused: the [`Report`] of what was enforced,
//! written as one line on stderr ([`to_parent`]) and read back
//! ([`parse_report`]); denials named after cargo's output ([`explain_denials`]).

use serde::{Deserialize, Serialize};

use super::Limits;

/// Prefix of the report line the helper writes on stderr.
pub const REPORT_PREFIX: &str = "boternity-sandbox: ";

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
    /// How the target directory was mounted at its fixed path (see
    /// [`super::TargetView`]): "private" (the build's own folder), "overlay"
    /// (over a read-only dependency layer) or "copy" (a private copy of the
    /// layer, where overlayfs could not be mounted); absent without a view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_view: Option<String>,
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

/// One line of the helper's protocol with the process that started it (read
/// back by [`parse_report`] from the build's stderr): not output for a person,
/// so it is written directly rather than printed.
pub(super) fn to_parent(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{REPORT_PREFIX}{line}");
}
