//! The one place boternity runs `git`: every call gets the same hardening.
//!
//! The git command-line tool is used (as cargo's `net.git-fetch-with-cli`
//! does) so that credential helpers, SSH configuration, proxies and
//! `insteadOf` rewrites work as the user set them up. It never prompts
//! (`GIT_TERMINAL_PROMPT=0`, SSH in batch mode), runs no hooks, follows no
//! submodules, smudges no LFS files, speaks only the transports boternity
//! allows, checks every object it receives, and is stopped after a time
//! limit.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::GitError;

/// How long one git call may take.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Configuration every call gets (`git -c key=value`).
const CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.autocrlf=false",
    "core.symlinks=true",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
    "protocol.git.allow=always",
    "protocol.file.allow=always",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "transfer.fsckObjects=true",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
];

/// Variables of an enclosing git process (a hook, a `git rebase -x`) that
/// would point our calls at another repository.
const CLEARED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXEC_PATH",
];

/// Runs `git <args>` (in `git_dir` as `--git-dir` when given), feeding it
/// `stdin`, and returns its stdout. `what` names the step in errors
/// (`ls-remote of https://…`).
pub fn git(
    git_dir: Option<&Path>,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
    what: &str,
) -> Result<Vec<u8>, GitError> {
    let mut cmd = Command::new("git");
    for c in CONFIG {
        cmd.arg("-c").arg(c);
    }
    if let Some(dir) = git_dir {
        let mut arg = OsString::from("--git-dir=");
        arg.push(dir);
        cmd.arg(arg);
    }
    cmd.args(args);
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let ssh = match std::env::var("GIT_SSH_COMMAND") {
        Ok(user) if !user.trim().is_empty() => format!("{user} -o BatchMode=yes"),
        _ => "ssh -o BatchMode=yes".to_string(),
    };
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", ssh)
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!(?args, "git");
    let mut child = cmd.spawn().map_err(GitError::GitMissing)?;
    let feeder = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > GIT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(GitError::TimedOut {
                    what: what.to_string(),
                    secs: GIT_TIMEOUT.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(GitError::GitMissing(e)),
        }
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(GitError::Failed {
            what: what.to_string(),
            stderr: tidy_stderr(&stderr),
        });
    }
    Ok(stdout)
}

/// git's stderr on one line, without progress noise.
fn tidy_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect();
    if lines.is_empty() {
        "(git printed nothing)".into()
    } else {
        lines.join("; ")
    }
}
