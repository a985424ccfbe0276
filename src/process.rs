//! The one way boternity runs a program for a skill (git, cargo, the build
//! sandbox's helper): in a process group of its own, with a deadline, with
//! its output bounded, and with the whole group killed and every pipe closed
//! before [`run`] returns — a daemon that a build script or a hostile
//! repository leaves behind can neither outlive the call nor hang it by
//! holding a pipe open.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a program may run and how much it may say.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Killed (the whole group) once this much time has passed.
    pub deadline: Duration,
    /// Killed once stdout holds more than this.
    pub max_stdout: u64,
    /// stderr beyond this is dropped (never an error: it is for people).
    pub max_stderr: u64,
    /// After the program exits, how long descendants still holding its pipes
    /// may take to close them before the group is killed.
    pub drain: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            deadline: Duration::from_secs(600),
            max_stdout: 256 * 1024 * 1024,
            max_stderr: 4 * 1024 * 1024,
            drain: Duration::from_millis(500),
        }
    }
}

/// A program that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a program did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} ran longer than {} s and was stopped", program.display(), deadline.as_secs_f64())]
    TimedOut {
        program: PathBuf,
        deadline: Duration,
        /// What it wrote on stderr before it was stopped.
        stderr: Vec<u8>,
    },
    #[error("{} wrote more than {max} bytes of output and was stopped", program.display())]
    OutputTooLarge { program: PathBuf, max: u64 },
    /// A watcher (see [`run_watched`]) stopped it, saying why.
    #[error("{} was stopped: {why}", program.display())]
    Stopped { program: PathBuf, why: String },
    #[error("cannot wait for {}", program.display())]
    Wait {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `cmd` to its end (see the module doc), feeding it `stdin`.
pub fn run(cmd: Command, stdin: Option<Vec<u8>>, limits: &RunLimits) -> Result<Finished, RunError> {
    run_watched(cmd, stdin, limits, Duration::MAX, &mut || None)
}

/// [`run`], calling `watch` every `every` while the program runs: a
/// `Some(why)` stops it with [`RunError::Stopped`].
pub fn run_watched(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    limits: &RunLimits,
    every: Duration,
    watch: &mut dyn FnMut() -> Option<String>,
) -> Result<Finished, RunError> {
    let program = PathBuf::from(cmd.get_program());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let group = Group(child.id() as libc::pid_t);
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Detached: a program that never reads its input must not block us;
        // the pipe breaks when the group is gone.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stdout = Collector::start(child.stdout.take(), limits.max_stdout.saturating_add(1));
    let stderr = Collector::start(child.stderr.take(), limits.max_stderr);

    let started = Instant::now();
    let mut last_watch = started;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                group.kill(&mut child);
                return Err(RunError::Wait { program, source });
            }
        }
        if started.elapsed() >= limits.deadline {
            group.kill(&mut child);
            stderr.wait_until(Instant::now() + limits.drain);
            return Err(RunError::TimedOut {
                program,
                deadline: limits.deadline,
                stderr: stderr.take(),
            });
        }
        if stdout.len() > limits.max_stdout {
            group.kill(&mut child);
            return Err(RunError::OutputTooLarge {
                program,
                max: limits.max_stdout,
            });
        }
        if last_watch.elapsed() >= every {
            last_watch = Instant::now();
            if let Some(why) = watch() {
                group.kill(&mut child);
                return Err(RunError::Stopped { program, why });
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The program is gone; whatever it left in its group goes too, once its
    // pipes are drained (or the drain time is up).
    let drained_by = Instant::now() + limits.drain;
    let drained = stdout.wait_until(drained_by) & stderr.wait_until(drained_by);
    group.kill_rest();
    if !drained {
        // Killing the group closed the pipes of every process in it; one
        // that left the group (it cannot inside the build sandbox) is cut
        // off here: its readers are abandoned.
        stdout.wait_until(Instant::now() + limits.drain);
        stderr.wait_until(Instant::now() + limits.drain);
    }
    if stdout.len() > limits.max_stdout {
        return Err(RunError::OutputTooLarge {
            program,
            max: limits.max_stdout,
        });
    }
    Ok(Finished {
        status,
        stdout: stdout.take(),
        stderr: stderr.take(),
    })
}

/// A process group boternity started.
struct Group(libc::pid_t);

impl Group {
    fn kill(&self, child: &mut Child) {
        self.kill_rest();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL to every process left in the group.
    fn kill_rest(&self) {
        // SAFETY: kill(2) on a process group this module created; no memory involved.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// What a pipe delivered so far, and whether it has closed.
type Buffer = Mutex<(Vec<u8>, bool)>;

/// Reads one pipe on a thread into a shared, capped buffer, so the caller can
/// take what arrived without waiting for the pipe to close.
struct Collector {
    state: Arc<(Buffer, std::sync::Condvar)>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>, cap: u64) -> Collector {
        let state = Arc::new((Mutex::new((Vec::new(), false)), std::sync::Condvar::new()));
        let shared = Arc::clone(&state);
        match pipe {
            Some(mut pipe) => {
                std::thread::spawn(move || {
                    let mut chunk = [0u8; 64 * 1024];
                    loop {
                        let n = match pipe.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut guard = shared.0.lock().unwrap_or_else(|p| p.into_inner());
                        let room = cap.saturating_sub(guard.0.len() as u64) as usize;
                        guard.0.extend_from_slice(&chunk[..n.min(room)]);
                    }
                    let mut guard = shared.0.lock().unwrap_or_else(|p| p.into_inner());
                    guard.1 = true;
                    shared.1.notify_all();
                });
            }
            None => state.0.lock().unwrap_or_else(|p| p.into_inner()).1 = true,
        }
        Collector { state }
    }

    fn len(&self) -> u64 {
        self.state
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .len() as u64
    }

    /// Waits for the pipe to close, at most until `by`; whether it closed.
    fn wait_until(&self, by: Instant) -> bool {
        let (lock, closed) = &*self.state;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !guard.1 {
            let now = Instant::now();
            if now >= by {
                return false;
            }
            guard = closed
                .wait_timeout(guard, by - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.state.0.lock().unwrap_or_else(|p| p.into_inner()).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn output_and_status_come_back() {
        let done = run(
            sh("echo out; echo err >&2; exit 3"),
            None,
            &RunLimits::default(),
        )
        .unwrap();
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr, b"err\n");
        assert_eq!(done.status.code(), Some(3));
        let fed = run(
            Command::new("cat"),
            Some(b"in".to_vec()),
            &RunLimits::default(),
        )
        .unwrap();
        assert_eq!(fed.stdout, b"in");
    }

    #[test]
    fn a_daemon_holding_the_pipes_neither_hangs_the_call_nor_survives_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; exit 0", pid_file.display());
        let started = Instant::now();
        let done = run(sh(&script), None, &RunLimits::default()).unwrap();
        assert!(done.status.success());
        assert!(started.elapsed() < Duration::from_secs(60));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped by init or gone: either way no longer running `sleep`.
        std::thread::sleep(Duration::from_millis(100));
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "the daemon {pid} outlived the call");
    }

    #[test]
    fn deadline_and_output_cap_stop_the_program() {
        let limits = RunLimits {
            deadline: Duration::from_millis(300),
            ..RunLimits::default()
        };
        let err = run(sh("echo started >&2; sleep 30"), None, &limits).unwrap_err();
        match err {
            RunError::TimedOut { stderr, .. } => assert_eq!(stderr, b"started\n"),
            other => panic!("{other}"),
        }
        let limits = RunLimits {
            max_stdout: 1000,
            ..RunLimits::default()
        };
        let err = run(sh("yes"), None, &limits).unwrap_err();
        assert!(
            matches!(err, RunError::OutputTooLarge { max: 1000, .. }),
            "{err}"
        );
    }
}
