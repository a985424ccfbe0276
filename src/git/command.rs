//! The one place boternity runs `git`: every call gets the same hardening.
//!
//! The git command-line tool is used (as cargo's `net.git-fetch-with-cli`
//! does) so that credential helpers, SSH configuration, proxies and
//! `insteadOf` rewrites work as the user set them up. It never prompts
//! (`GIT_TERMINAL_PROMPT=0`, SSH in batch mode), runs no hooks, follows no
//! submodules, smudges no LFS files, speaks only the transports boternity
//! allows, and checks every object it receives. It runs through
//! [`crate::process::run`]: in a process group of its own (a helper it starts,
//! `ssh` or a remote helper, dies with it), stopped after a time limit
//! (the context's [`GitSettings::deadline`]), its stdout capped.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

use super::GitError;
use crate::context::GitSettings;
use crate::process::{self, RunError, RunLimits};

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

/// Most a git call may print on stdout unless it says otherwise (a
/// listing of refs, a fetch's quiet output).
pub const MAX_OUTPUT: u64 = 64 * 1024 * 1024;

/// Runs `git <args>` (in `git_dir` as `--git-dir` when given), feeding it
/// `stdin`, and returns its stdout. `what` names the step in errors
/// (`ls-remote of https://…`).
pub fn git(
    settings: &GitSettings,
    git_dir: Option<&Path>,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
    what: &str,
) -> Result<Vec<u8>, GitError> {
    git_capped(settings, git_dir, args, stdin, what, MAX_OUTPUT)
}

/// [`git`], stopped (its whole process group killed) once its stdout holds
/// more than `max_stdout` bytes ([`GitError::OutputTooLarge`]) or after
/// its deadline ([`GitSettings::deadline`]) ([`GitError::TimedOut`], naming `what`, which names the
/// URL for calls that reach one).
pub fn git_capped(
    settings: &GitSettings,
    git_dir: Option<&Path>,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
    what: &str,
    max_stdout: u64,
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
    let ssh = match &settings.ssh_command {
        Some(user) if !user.trim().is_empty() => format!("{user} -o BatchMode=yes"),
        _ => "ssh -o BatchMode=yes".to_string(),
    };
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", ssh)
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .env("LC_ALL", "C");
    tracing::debug!(?args, "git");
    let deadline = settings.deadline;
    let limits = RunLimits {
        deadline,
        max_stdout,
        ..RunLimits::default()
    };
    let finished = match process::run(cmd, stdin.map(<[u8]>::to_vec), &limits) {
        Ok(finished) => finished,
        Err(RunError::Spawn { source, .. }) => return Err(GitError::GitMissing(source)),
        Err(RunError::TimedOut { .. }) => {
            return Err(GitError::TimedOut {
                what: what.to_string(),
                secs: deadline.as_secs_f64(),
            });
        }
        Err(RunError::OutputTooLarge { max, .. }) => {
            return Err(GitError::OutputTooLarge {
                what: what.to_string(),
                max,
            });
        }
        Err(e @ (RunError::Stopped { .. } | RunError::Wait { .. })) => {
            return Err(GitError::Failed {
                what: what.to_string(),
                stderr: crate::error_chain(&e),
            });
        }
    };
    if !finished.status.success() {
        return Err(GitError::Failed {
            what: what.to_string(),
            stderr: tidy_stderr(&finished.stderr),
        });
    }
    Ok(finished.stdout)
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
