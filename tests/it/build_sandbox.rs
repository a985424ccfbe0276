//! The build sandbox end to end: hostile skills (tests/fixtures/hostile-build-*)
//! installed through the CLI as `untrusted` try to read, write, connect,
//! signal, fork and fill the disk from their build scripts, proc macros and
//! `include_str!`. Every attempt must be refused, the refusal must show in the
//! install's error, and a random canary (in `$HOME/.canary`, beside the skill
//! folder and in the environment of `boternity`) must appear nowhere: not in
//! the CLI's output, the store, or any file of the cache folder (target
//! directory included). A normal skill must still build and run confined.

use crate::common;

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Longest an install of a hostile skill may take before the test fails.
const INSTALL_LIMIT: Duration = Duration::from_secs(300);
/// The build sandbox's default file size limit (`sandbox::Limits`).
const FILE_SIZE_LIMIT: u64 = 2 << 30;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).unwrap();
    hex::encode(buf)
}

/// One hostile install's surroundings: a private HOME holding the canary, a
/// cache folder (so the target directory and cargo home are this test's
/// own), a store, and listeners that must hear nothing.
struct World {
    tmp: tempfile::TempDir,
    canary: String,
    nonce: String,
    home: PathBuf,
    cache: PathBuf,
    store: PathBuf,
    /// The parent of the skill copy; `outside.txt` (the canary) sits here.
    work: PathBuf,
    marker: PathBuf,
    tcp: TcpListener,
    udp: UdpSocket,
    unix: UnixListener,
    unix_path: PathBuf,
    abstract_unix: UnixListener,
    abstract_name: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("boternity-sbx-")
            .tempdir()
            .unwrap();
        let canary = format!("CANARY-{}", random_hex(16));
        let nonce = random_hex(8);
        let home = tmp.path().join("home");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(home.join(".canary"), &canary).unwrap();
        std::fs::write(work.join("outside.txt"), &canary).unwrap();

        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let unix_path = tmp.path().join("sock");
        let unix = UnixListener::bind(&unix_path).unwrap();
        unix.set_nonblocking(true).unwrap();
        let abstract_name = format!("boternity-test-{nonce}");
        let abstract_unix =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(&abstract_name).unwrap())
                .unwrap();
        abstract_unix.set_nonblocking(true).unwrap();

        World {
            cache: tmp.path().join("cache"),
            store: tmp.path().join("store"),
            marker: PathBuf::from(format!("/tmp/boternity-test-marker-{nonce}")),
            tmp,
            canary,
            nonce,
            home,
            work,
            tcp,
            udp,
            unix,
            unix_path,
            abstract_unix,
            abstract_name,
        }
    }

    /// Copies fixture `name` into `work/<name>` and writes its attack plan.
    fn skill(&self, name: &str) -> PathBuf {
        let dir = copy_fixture(name, &self.work, name);
        let user_cargo = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| real_home().join(".cargo"));
        let plan = [
            ("nonce", self.nonce.clone()),
            ("home", self.home.display().to_string()),
            ("canary", self.home.join(".canary").display().to_string()),
            ("user_cargo", user_cargo.display().to_string()),
            ("test_dir", self.tmp.path().display().to_string()),
            ("host_pid", std::process::id().to_string()),
            ("tcp", self.tcp.local_addr().unwrap().port().to_string()),
            ("udp", self.udp.local_addr().unwrap().port().to_string()),
            ("unix", self.unix_path.display().to_string()),
            ("abstract", self.abstract_name.clone()),
            ("marker", self.marker.display().to_string()),
            ("cache", self.cache.display().to_string()),
        ];
        let text: String = plan.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(dir.join("attack.txt"), text).unwrap();
        dir
    }

    /// `boternity install <skill> --trust-tier untrusted --message-format json`
    /// with this world's HOME, cache folder, store and canary variable.
    fn install(&self, skill: &Path) -> Output {
        let mut cmd = self.command(&self.cache);
        cmd.arg("install")
            .arg(skill)
            .arg("--store")
            .arg(&self.store)
            .args(["--trust-tier", "untrusted", "--message-format", "json"]);
        output_within(&mut cmd, INSTALL_LIMIT)
    }

    fn command(&self, cache: &Path) -> Command {
        let mut cmd = boternity();
        cmd.env("HOME", &self.home)
            .env("BOTERNITY_CACHE_DIR", cache)
            .env("BOTERNITY_TEST_CANARY", &self.canary)
            // The toolchain stays where it is although HOME moved.
            .env("RUSTUP_HOME", rustup_home())
            .env_remove("XDG_CACHE_HOME");
        cmd
    }

    /// The temporary paths a hostile build tries to create.
    fn host_markers(&self) -> Vec<PathBuf> {
        let n = &self.nonce;
        vec![
            self.marker.clone(),
            format!("/tmp/pwned-{n}-dir").into(),
            format!("/tmp/pwned-{n}-shell").into(),
            format!("/dev/shm/pwned-{n}").into(),
            format!("/var/tmp/pwned-{n}").into(),
        ]
    }

    /// Nothing leaked and nothing escaped: the canary is in no output and no
    /// file of the store or cache folder, HOME holds only the canary, no
    /// marker exists, no listener heard anything.
    fn assert_contained(&self, out: &Output) {
        self.assert_canary_absent(out);
        let home: Vec<PathBuf> = snapshot(&self.home).into_iter().map(|(p, _)| p).collect();
        assert_eq!(home, [PathBuf::from(".canary")], "HOME gained files");
        for marker in self.host_markers() {
            assert!(
                std::fs::symlink_metadata(&marker).is_err(),
                "{} was created",
                marker.display()
            );
        }
        for path in files_below(self.tmp.path()) {
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(!name.starts_with("pwned"), "{} was created", path.display());
        }
        self.assert_silence();
    }

    fn assert_canary_absent(&self, out: &Output) {
        let canary = self.canary.as_bytes();
        assert!(!contains(&out.stdout, canary), "the canary is on stdout");
        assert!(!contains(&out.stderr, canary), "the canary is on stderr");
        for dir in [&self.store, &self.cache] {
            for path in files_below(dir) {
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_file() {
                    let bytes = std::fs::read(&path).unwrap();
                    assert!(
                        !contains(&bytes, canary),
                        "the canary leaked into {}",
                        path.display()
                    );
                }
            }
        }
        for path in files_below(&self.store) {
            assert!(
                !std::fs::symlink_metadata(&path).unwrap().is_symlink(),
                "the store holds a symlink: {}",
                path.display()
            );
        }
    }

    fn assert_silence(&self) {
        let tcp = self.tcp.accept().map(|(_, peer)| peer);
        assert!(
            matches!(&tcp, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "the TCP listener heard {tcp:?}"
        );
        let mut buf = [0u8; 64];
        let udp = self.udp.recv_from(&mut buf);
        assert!(
            matches!(&udp, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "the UDP socket received {udp:?}"
        );
        for (what, listener) in [("unix", &self.unix), ("abstract", &self.abstract_unix)] {
            let got = listener.accept().map(|_| ());
            assert!(
                matches!(&got, Err(e) if e.kind() == ErrorKind::WouldBlock),
                "the {what} socket was connected to: {got:?}"
            );
        }
    }
}

fn real_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
}

fn rustup_home() -> PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| real_home().join(".rustup"))
}

/// Runs `cmd` to completion, or kills it and fails the test after `limit`.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes while waiting, so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).unwrap();
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Every path below `dir` (not following symlinks); empty if it is missing.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The error of the one `install-failed` line; the exit status must be 1.
fn install_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "install should fail; stdout: {} stderr: {}",
        stdout(out),
        stderr(out)
    );
    let text = stdout(out);
    let line = text
        .lines()
        .filter_map(maybe_json_line)
        .find(|v| v["reason"] == "install-failed")
        .unwrap_or_else(|| panic!("no install-failed line in: {text}"));
    line["error"].as_str().expect("an error text").to_string()
}

/// Every path below a skill folder with its bytes (a symlink: its target),
/// to prove a build changed nothing.
fn skill_snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = files_below(dir)
        .into_iter()
        .map(|path| {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let bytes = if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                target.as_os_str().as_encoded_bytes().to_vec()
            } else if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (path.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// The skill copy holds what it held before, save a `Cargo.lock` the fetch may add.
fn assert_unchanged(skill: &Path, before: &[(PathBuf, Vec<u8>)]) {
    let after: Vec<_> = skill_snapshot(skill)
        .into_iter()
        .filter(|(p, _)| p != Path::new("Cargo.lock") || before.iter().any(|(b, _)| b == p))
        .collect();
    assert!(after == before, "the skill folder changed");
}

/// The `ATTEMPT <name>: …` line of `report`.
fn attempt<'a>(report: &'a str, name: &str) -> &'a str {
    let prefix = format!("ATTEMPT {name}: ");
    report
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no attempt `{name}` in:\n{report}"))
}

/// Attempts the sandbox itself must refuse (Landlock or seccomp: EACCES).
const DENIED: &[&str] = &[
    "read-home-canary",
    "list-home",
    "read-etc-passwd",
    "list-user-cargo-home",
    "list-test-dir",
    "read-outside-skill-by-path",
    "tcp-connect-loopback",
    "tcp-connect-ipv6-loopback",
    "tcp-connect-internet",
    "tcp-listen",
    "udp-send-loopback",
    "unix-connect",
    "unix-datagram-send",
    "unix-connect-abstract",
    "socket-vsock",
    "socket-netlink",
    "socket-packet",
    "write-tmp-marker",
    "mkdir-tmp",
    "write-dev-shm",
    "write-var-tmp",
    "write-home",
    "write-skill-folder",
    "append-to-skill-source",
    "write-above-skill-folder",
    "write-cargo-home",
    "write-cache-folder",
];

/// Attempts that must fail, whatever the reason (absent, not found...).
const FAILED: &[&str] = &[
    "read-outside-skill",
    "read-etc-hostname",
    "read-env-var",
    "read-env-var-at-compile-time",
    "scan-proc-environ",
    "read-test-process-environ",
    "signal-test-process",
    "resolve-localhost",
    "resolve-crates-io",
    "shell-reads-canary",
];

/// Checks the report of attacks.rs (build script or proc macro) in `error`.
fn assert_every_attempt_refused(error: &str, extra: &[&str]) {
    assert!(
        !error.contains("LEAK:") && !error.contains("SUCCEEDED"),
        "an attempt succeeded:\n{error}"
    );
    assert!(
        error.contains("HOSTILE-DONE"),
        "the hostile code did not finish:\n{error}"
    );
    for name in DENIED {
        let outcome = attempt(error, name);
        // The cargo home is also mounted read-only in the build's namespace
        // (where it has one), which the kernel checks before Landlock.
        let read_only =
            *name == "write-cargo-home" && outcome.starts_with("failed: ReadOnlyFilesystem");
        assert!(
            outcome.starts_with("failed: PermissionDenied") || read_only,
            "{name} was not denied by the sandbox: {outcome}"
        );
    }
    for name in FAILED.iter().chain(extra) {
        let outcome = attempt(error, name);
        assert!(outcome.starts_with("failed"), "{name}: {outcome}");
    }
    assert!(
        error.contains("the build sandbox refused"),
        "the error does not name the sandbox:\n{error}"
    );
    // /proc shows the build's own few processes (a private PID namespace), or nothing.
    let scan = attempt(error, "scan-proc-environ");
    let visible: usize = scan
        .split(" of ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no process count in: {scan}"));
    assert!(visible < 50, "the build sees {visible} processes: {scan}");
}

// ---------------------------------------------------------------------------

#[test]
fn a_build_script_can_read_write_connect_or_signal_nothing_outside_its_target_dir() {
    let world = World::new();
    let skill = world.skill("hostile-build-script");
    let before = skill_snapshot(&skill);

    let out = world.install(&skill);
    let error = install_error(&out);
    assert_every_attempt_refused(&error, &["hard-link-canary", "read-through-symlink"]);
    assert_eq!(
        attempt(&error, "read-through-symlink"),
        "failed: PermissionDenied: Permission denied (os error 13)"
    );
    assert!(
        error.contains("the build sandbox refused:\n  filesystem: ")
            || error.contains("the build sandbox refused:\n  denied: "),
        "{error}"
    );

    // The daemon it started would write `daemon-alive` 3 s after starting:
    // the build's processes must all be gone with the build.
    std::thread::sleep(Duration::from_secs(5));
    for path in files_below(&world.cache) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(name != "daemon-alive", "a build process outlived the build");
        assert!(!name.starts_with("loot-"), "something was read: {name}");
    }
    world.assert_contained(&out);
    assert_unchanged(&skill, &before);
}

#[test]
fn include_str_of_a_host_file_fails_by_absolute_path_relative_path_symlink_or_home() {
    let world = World::new();
    let skill = world.skill("hostile-build-include");
    let canary_path = world.home.join(".canary");
    let absolute = format!(
        "pub static LEAKED: &str = include_str!({:?});\n",
        canary_path.display().to_string()
    );
    // src/lib.rs -> the skill folder -> work/, where outside.txt holds the canary.
    let relative = "pub static LEAKED: &str = include_str!(\"../../outside.txt\");\n";
    let symlink = "pub static LEAKED: &[u8] = include_bytes!(\"secret.txt\");\n";
    let shipped = std::fs::read_to_string(skill.join("src/lib.rs")).unwrap();
    assert!(shipped.contains("env!(\"HOME\")"), "{shipped}");

    let link = skill.join("src/secret.txt");
    for (case, source, expected) in [
        (
            "absolute path",
            absolute.as_str(),
            &["couldn't read", "the build sandbox refused"][..],
        ),
        // The build sees a copy of the skill's files only: nothing is beside it.
        (
            "relative path",
            relative,
            &["couldn't read", "No such file or directory"],
        ),
        // A symlink out of the folder is refused before the build starts.
        ("symlink", symlink, &["points outside the skill folder"]),
        // HOME in the build is a private empty folder: no canary there.
        (
            "env!(HOME)",
            shipped.as_str(),
            &["couldn't read", "No such file or directory"],
        ),
    ] {
        std::fs::write(skill.join("src/lib.rs"), source).unwrap();
        if case == "symlink" {
            std::os::unix::fs::symlink(&canary_path, &link).unwrap();
        }
        let before = skill_snapshot(&skill);
        let out = world.install(&skill);
        let error = install_error(&out);
        for text in expected {
            assert!(error.contains(text), "{case}: no `{text}` in:\n{error}");
        }
        world.assert_contained(&out);
        assert_unchanged(&skill, &before);
        if case == "symlink" {
            std::fs::remove_file(&link).unwrap();
        }
    }
}

#[test]
fn a_proc_macro_inside_the_skill_folder_is_confined_like_the_build_script() {
    // The macro runs the very attacks of the build script.
    assert_eq!(
        std::fs::read(fixture("hostile-build-macro/macros/src/attacks.rs")).unwrap(),
        std::fs::read(fixture("hostile-build-script/attacks.rs")).unwrap(),
        "the two copies of attacks.rs differ"
    );
    let world = World::new();
    let skill = world.skill("hostile-build-macro");
    let before = skill_snapshot(&skill);

    let out = world.install(&skill);
    let error = install_error(&out);
    assert!(
        error.contains("Compiling hostile-build-macro-macros"),
        "the macro crate was not built: {error}"
    );
    assert_every_attempt_refused(&error, &[]);
    world.assert_contained(&out);
    assert_unchanged(&skill, &before);
}

#[test]
fn a_path_dependency_outside_the_skill_folder_is_refused_before_anything_runs() {
    let world = World::new();
    // The crate outside: its build script would leave a marker if it ever ran.
    let outside = world.work.join("outside-crate");
    std::fs::create_dir_all(outside.join("src")).unwrap();
    std::fs::write(
        outside.join("Cargo.toml"),
        "[package]\nname = \"outside-crate\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(outside.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        outside.join("build.rs"),
        format!(
            "fn main() {{ std::fs::write({:?}, \"ran\").unwrap(); }}\n",
            world.marker.display().to_string()
        ),
    )
    .unwrap();
    let skill = world.skill("hostile-build-outside-dep");
    let manifest = std::fs::read_to_string(skill.join("Cargo.toml")).unwrap();

    // As written, and through a symlink inside the folder that leads out of it.
    let through_symlink = manifest.replace("\"../outside-crate\"", "\"vendored\"");
    assert_ne!(manifest, through_symlink);
    for (case, toml, expected) in [
        ("../", &manifest, "depends on `outside-crate`"),
        (
            "symlink",
            &through_symlink,
            "points outside the skill folder",
        ),
    ] {
        std::fs::write(skill.join("Cargo.toml"), toml).unwrap();
        if case == "symlink" {
            std::os::unix::fs::symlink(&outside, skill.join("vendored")).unwrap();
        }
        let before = skill_snapshot(&skill);
        let out = world.install(&skill);
        let error = install_error(&out);
        assert!(
            error.contains(expected) && error.contains("outside the skill folder"),
            "{case}: {error}"
        );
        // Refused before the fetch and the build: no target dir, no lock file.
        assert!(
            files_below(&world.cache.join("targets")).is_empty(),
            "{case}: a build started"
        );
        assert!(!skill.join("Cargo.lock").exists(), "{case}: fetched");
        assert_eq!(skill_snapshot(&skill), before, "{case}");
        world.assert_contained(&out);
    }
}

#[test]
fn a_fork_bomb_in_a_build_script_is_bounded_and_the_install_finishes() {
    let world = World::new();
    let skill = world.skill("hostile-build-fork-bomb");
    let started = Instant::now();
    let out = world.install(&skill);
    let took = started.elapsed();
    let error = install_error(&out);
    let count: u64 = error
        .lines()
        .find_map(|l| l.split_once("FORK-BOMB-DONE: ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no process count in:\n{error}"));
    assert!(count < 5000, "the fork bomb got {count} processes");
    assert!(
        error.contains("FORKS: ") && error.contains("process limit"),
        "the process limit is not named:\n{error}"
    );
    assert!(took < INSTALL_LIMIT, "took {took:?}");
    // The machine is still usable: a process starts and finishes.
    let echo = Command::new("true").status().unwrap();
    assert!(echo.success());
    world.assert_contained(&out);
}

#[test]
fn a_huge_file_in_a_build_script_hits_the_file_size_limit() {
    let world = World::new();
    let skill = world.skill("hostile-build-huge-file");
    let out = world.install(&skill);
    let error = install_error(&out);
    assert!(
        error.contains("file size limit"),
        "the file size limit is not named:\n{error}"
    );
    assert!(error.contains("the build sandbox refused"), "{error}");
    assert!(!error.contains("no limit stopped it"), "{error}");
    for path in files_below(&world.cache) {
        let size = std::fs::symlink_metadata(&path).unwrap().len();
        assert!(
            size <= FILE_SIZE_LIMIT + (1 << 20),
            "{} is {size} bytes",
            path.display()
        );
    }
    assert!(!contains(&out.stdout, world.canary.as_bytes()));
    assert!(!contains(&out.stderr, world.canary.as_bytes()));
    world.assert_silence();
}

/// Installs `skill` (untrusted, built in the sandbox with the shared cache)
/// and returns its JSON message; `round` names the attempt in failures.
fn install_untrusted(world: &World, skill: &Path, round: &str) -> serde_json::Value {
    let mut cmd = world.command(&cache_dir());
    cmd.arg("install")
        .arg(skill)
        .arg("--store")
        .arg(&world.store)
        .args(["--trust-tier", "untrusted", "--message-format", "json"]);
    let out = output_within(&mut cmd, Duration::from_secs(900));
    assert!(
        out.status.success(),
        "{round}: {} {}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .find_map(maybe_json_line)
        .expect("a JSON line")
}

#[test]
fn a_normal_skill_with_dependencies_builds_confined_cold_and_warm_and_runs() {
    let world = World::new();
    let skill = copy_fixture("echo-skill", &world.work, "echo-skill");
    // The shared cache folder: its cargo home already holds wit-bindgen.
    for round in ["cold", "warm"] {
        let line = install_untrusted(&world, &skill, round);
        assert_eq!(line["reason"], "skill-installed", "{round}: {line}");
        assert_eq!(line["path_taken"], "built", "{round}: {line}");
        assert_eq!(line["trust_tier"], "untrusted", "{round}: {line}");

        let mut run = world.command(&cache_dir());
        run.args(["run", "echo-skill", "--input", "hi", "--store"])
            .arg(&world.store);
        let out = output_within(&mut run, Duration::from_secs(120));
        assert!(out.status.success(), "{round}: {}", stderr(&out));
        assert_eq!(stdout(&out), "ECHO: HI\n", "{round}");
        assert!(!contains(&out.stdout, world.canary.as_bytes()));
    }
    let home: Vec<PathBuf> = snapshot(&world.home).into_iter().map(|(p, _)| p).collect();
    assert_eq!(home, [PathBuf::from(".canary")], "HOME gained files");
    // The shared cache keeps no target dir of a deleted copy (named like
    // `paths::skill_target_dir`: package name, hash of the source folder).
    let place = skill.canonicalize().unwrap();
    let hash = boternity_skills::digest::sha256_hex(place.as_os_str().as_encoded_bytes());
    let target = cache_dir()
        .join("targets")
        .join(format!("echo-skill-{}", &hash[..16]));
    if target.is_dir() {
        std::fs::remove_dir_all(&target).unwrap();
    }
}

/// A skill with a proc-macro dependency (serde's derive) and dependencies
/// with build scripts (serde, serde_json, proc-macro2) builds confined from a
/// cold target directory and again warm, and runs.
#[test]
fn a_skill_using_serde_derive_builds_confined_cold_and_warm_and_runs() {
    let world = World::new();
    let skill = copy_fixture("serde-skill", &world.work, "serde-skill");
    for round in ["cold", "warm"] {
        let line = install_untrusted(&world, &skill, round);
        assert_eq!(line["path_taken"], "built", "{round}: {line}");

        let mut run = world.command(&cache_dir());
        run.args([
            "run",
            "serde-skill",
            "--input",
            r#"{"words": ["a", "sandboxed", "build"]}"#,
            "--store",
        ])
        .arg(&world.store);
        let out = output_within(&mut run, Duration::from_secs(120));
        assert!(out.status.success(), "{round}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "{\"count\":3,\"longest\":\"sandboxed\"}\n",
            "{round}"
        );
    }
    let place = skill.canonicalize().unwrap();
    let hash = boternity_skills::digest::sha256_hex(place.as_os_str().as_encoded_bytes());
    let target = cache_dir()
        .join("targets")
        .join(format!("serde-skill-{}", &hash[..16]));
    if target.is_dir() {
        std::fs::remove_dir_all(&target).unwrap();
    }
}

/// A warm confined build skips the fetch phase for a lock file fetched
/// before; when the cargo home has lost the crates since, the offline build
/// says so and the dependencies are fetched again, transparently.
#[test]
fn a_warm_build_refetches_what_the_cargo_home_lost() {
    let world = World::new();
    let skill = copy_fixture("echo-skill", &world.work, "echo-skill");
    let install = |round: &str| {
        let mut cmd = world.command(&world.cache);
        cmd.arg("install")
            .arg(&skill)
            .arg("--store")
            .arg(&world.store)
            .args(["--message-format", "json"]);
        let out = output_within(&mut cmd, Duration::from_secs(900));
        assert!(
            out.status.success(),
            "{round}: {} {}",
            stdout(&out),
            stderr(&out)
        );
    };
    install("first");
    let stamps = world.cache.join("fetched");
    assert_eq!(std::fs::read_dir(&stamps).unwrap().count(), 1);
    // The crates are gone, the note that they were fetched is not.
    std::fs::remove_dir_all(world.cache.join("cargo-home/registry")).unwrap();
    std::fs::remove_dir_all(world.cache.join("targets")).unwrap();
    install("after the cargo home lost its crates");
    assert!(world.cache.join("cargo-home/registry").is_dir());
}

// ---------------------------------------------------------------------------
// The doors around the sandbox: the toolchain, configuration, target
// directories, the fetch phase, dependency sources, what a build may read.

/// A fake toolchain (`bin/cargo`, `bin/rustc`) whose programs leave the
/// world's marker and the canary behind should anything ever run them.
fn fake_toolchain(world: &World, dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for program in ["cargo", "rustc"] {
        let path = dir.join("bin").join(program);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\ncat {canary} > {marker} 2>/dev/null; echo {program} >> {marker}\nexit 1\n",
                canary = world.home.join(".canary").display(),
                marker = world.marker.display(),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
}

/// Installs `skill` (warm shared cache) with `cwd` as the working folder;
/// returns the install's JSON line.
fn install_from(world: &World, skill: &Path, cwd: &Path) -> serde_json::Value {
    let mut cmd = world.command(&cache_dir());
    cmd.current_dir(cwd)
        .arg("install")
        .arg(skill)
        .arg("--store")
        .arg(&world.store)
        .args(["--trust-tier", "untrusted", "--message-format", "json"]);
    let out = output_within(&mut cmd, Duration::from_secs(900));
    world.assert_contained(&out);
    stdout(&out)
        .lines()
        .find_map(maybe_json_line)
        .unwrap_or_else(|| panic!("no JSON line: {}", stderr(&out)))
}

#[test]
fn a_toolchain_or_cargo_configuration_file_never_chooses_what_runs() {
    let world = World::new();
    let skill = copy_fixture("echo-skill", &world.work, "echo-skill");
    let fake_outside = world.work.join("fake-toolchain");
    fake_toolchain(&world, &fake_outside);
    fake_toolchain(&world, &skill.join("fake"));
    let parent_file = world.work.join("rust-toolchain.toml");
    // Each form rustup and cargo read, in the skill and in a folder above it
    // (where a cloned repository or `precompile .` puts boternity).
    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "channel",
            skill.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"evil-toolchain\"\n".into(),
        ),
        (
            "path into the skill",
            skill.join("rust-toolchain.toml"),
            format!("[toolchain]\npath = \"{}\"\n", skill.join("fake").display()),
        ),
        (
            "path through /proc/self/cwd",
            skill.join("rust-toolchain.toml"),
            "[toolchain]\npath = \"/proc/self/cwd/fake\"\n".into(),
        ),
        (
            "legacy file",
            skill.join("rust-toolchain"),
            "evil-toolchain\n".into(),
        ),
        (
            "parent folder",
            parent_file.clone(),
            format!("[toolchain]\npath = \"{}\"\n", fake_outside.display()),
        ),
        (
            "cargo configuration",
            skill.join(".cargo/config.toml"),
            format!(
                "[build]\nrustc-wrapper = \"{0}/bin/rustc\"\n[target.wasm32-wasip2]\nlinker = \"{0}/bin/cargo\"\n",
                fake_outside.display()
            ),
        ),
    ];
    for (case, file, text) in cases {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        // From inside the skill folder, so a proxy probing the working
        // folder would see the file too.
        let line = install_from(&world, &skill, &skill);
        assert_eq!(line["reason"], "skill-installed", "{case}: {line}");
        let notes = line["notes"].to_string();
        assert!(
            notes.contains(&format!("ignored {}", file.display())),
            "{case}: no note names {}: {notes}",
            file.display()
        );
        assert!(!world.marker.exists(), "{case}: the skill's toolchain ran");
        std::fs::remove_file(&file).unwrap();
    }

    // Configuration planted in boternity's own cargo home (by an earlier
    // unconfined run, say) is removed before the next build reads it.
    let planted = world.tmp.path().join("planted-cache");
    let cargo_home = planted.join("cargo-home");
    std::fs::create_dir_all(cargo_home.join("bin")).unwrap();
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[build]\nrustc-wrapper = \"{}/bin/rustc\"\n",
            fake_outside.display()
        ),
    )
    .unwrap();
    std::fs::copy(fake_outside.join("bin/cargo"), cargo_home.join("bin/cargo")).unwrap();
    let plain = world.work.join("plain-skill");
    plain_crate(&plain, "");
    let mut cmd = world.command(&planted);
    cmd.arg("build-skill")
        .arg(&plain)
        .arg("-o")
        .arg(world.tmp.path().join("out.wasm"))
        .args(["--message-format", "json"]);
    let out = output_within(&mut cmd, INSTALL_LIMIT);
    let text = stdout(&out);
    assert!(
        text.contains("plain-skill") && !text.contains("evil"),
        "{text} {}",
        stderr(&out)
    );
    assert!(!world.marker.exists(), "the planted wrapper ran");
    assert!(!cargo_home.join("config.toml").exists());
    assert!(!cargo_home.join("bin").exists());
    assert!(
        files_below(&planted.join("targets"))
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "wasm")),
        "the build did not run"
    );
    world.assert_contained(&out);
}

/// A crate with no dependencies: builds in seconds (into a core-less cdylib
/// that is no component of the world; the tests here look at the build).
fn plain_crate(dir: &Path, manifest_extra: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {}\ndescription: d\nmetadata:\n  skill-type: tool\n---\nBody.\n",
            dir.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"plain-skill\"\nversion = \"0.1.0\"\nedition = \"2024\"\n{manifest_extra}\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "#[unsafe(no_mangle)]\npub extern \"C\" fn answer() -> i32 { 42 }\n",
    )
    .unwrap();
}

#[test]
fn what_one_source_built_into_a_target_directory_is_never_used_by_another() {
    let world = World::new();
    let skill = world.work.join("plain-skill");
    // A hostile skill at this path leaves a trojan in its target directory…
    plain_crate(&skill, "build = \"build.rs\"");
    std::fs::write(
        skill.join("build.rs"),
        "fn main() {\n    let target = std::env::var(\"CARGO_TARGET_DIR\").unwrap();\n    \
         std::fs::write(std::path::Path::new(&target).join(\"TROJAN\"), \"planted\").unwrap();\n}\n",
    )
    .unwrap();
    let _ = world.install(&skill);
    let targets = world.cache.join("targets");
    let trojans = |dir: &Path| {
        files_below(dir)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "TROJAN"))
            .count()
    };
    assert_eq!(trojans(&targets), 1, "the hostile build did not run");

    // …and an honest skill later built at the same path never sees it.
    std::fs::remove_dir_all(&skill).unwrap();
    plain_crate(&skill, "");
    let out = world.install(&skill);
    assert_eq!(
        trojans(&targets),
        0,
        "the trojan survived into the next source's build"
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(!text.contains("TROJAN"), "{text}");
    let wasm = || {
        files_below(&targets)
            .into_iter()
            .find(|p| {
                p.extension().is_some_and(|e| e == "wasm")
                    && p.to_string_lossy().contains("/release/")
            })
            .expect("the honest build's artifact")
    };
    let first = std::fs::metadata(wasm()).unwrap().modified().unwrap();

    // The author's own rebuilds stay incremental: an unchanged rebuild
    // recompiles nothing, and an edit to src/ keeps the directory.
    let _ = world.install(&skill);
    assert_eq!(
        std::fs::metadata(wasm()).unwrap().modified().unwrap(),
        first
    );
    let kept = wasm().parent().unwrap().join("kept-across-edits");
    std::fs::write(&kept, "").unwrap();
    std::fs::write(
        skill.join("src/lib.rs"),
        "#[unsafe(no_mangle)]\npub extern \"C\" fn answer() -> i32 { 43 }\n",
    )
    .unwrap();
    let _ = world.install(&skill);
    assert!(std::fs::metadata(wasm()).unwrap().modified().unwrap() > first);
    assert!(
        kept.exists(),
        "the directory was started clean on an edit to src/"
    );
    world.assert_contained(&out);
}

#[test]
fn a_dependency_source_the_skill_names_is_refused_before_the_fetch() {
    let world = World::new();
    let port = world.tcp.local_addr().unwrap().port();
    let udp = world.udp.local_addr().unwrap().port();
    let cases = [
        (
            "sparse index on loopback",
            format!(
                "[dependencies]\nserde = {{ version = \"1\", registry-index = \"sparse+http://127.0.0.1:{port}/\" }}\n"
            ),
            None,
            "registry index `sparse+http://127.0.0.1",
        ),
        (
            "git dependency",
            format!("[dependencies]\nx = {{ git = \"http://127.0.0.1:{port}/x.git\" }}\n"),
            None,
            "vendor the crate into the skill folder",
        ),
        (
            "patch to a git repository",
            format!("[patch.crates-io]\nserde = {{ git = \"git://127.0.0.1:{udp}/serde\" }}\n"),
            None,
            "[patch.crates-io]",
        ),
        (
            "lock file naming a local registry",
            "[dependencies]\nserde = \"1\"\n".to_string(),
            Some(format!(
                "version = 4\n\n[[package]]\nname = \"plain-skill\"\nversion = \"0.1.0\"\ndependencies = [\"serde\"]\n\n\
                 [[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"sparse+http://127.0.0.1:{port}/index/\"\n"
            )),
            "is locked to `sparse+http://127.0.0.1",
        ),
    ];
    for (case, deps, lock, expected) in cases {
        let skill = world.work.join("plain-skill");
        let _ = std::fs::remove_dir_all(&skill);
        plain_crate(&skill, "");
        let manifest = skill.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("[lib]", &format!("{deps}\n[lib]"))).unwrap();
        if let Some(lock) = lock {
            std::fs::write(skill.join("Cargo.lock"), lock).unwrap();
        }
        let before = skill_snapshot(&skill);
        let out = world.install(&skill);
        let error = install_error(&out);
        assert!(error.contains(expected), "{case}: {error}");
        assert!(
            error.contains("Cargo."),
            "{case}: the error names no file: {error}"
        );
        assert!(
            !world.cache.join("targets").exists()
                || files_below(&world.cache.join("targets")).is_empty(),
            "{case}: a build started"
        );
        assert_eq!(
            skill_snapshot(&skill),
            before,
            "{case}: the skill folder changed"
        );
        assert!(
            !world.store.join("plain-skill").exists(),
            "{case}: installed"
        );
        world.assert_contained(&out);
    }
}

#[test]
fn a_build_script_under_target_is_never_built_because_target_is_never_read() {
    let world = World::new();
    let skill = world.work.join("plain-skill");
    plain_crate(&skill, "build = \"target/build.rs\"");
    std::fs::create_dir_all(skill.join("target")).unwrap();
    std::fs::write(
        skill.join("target/build.rs"),
        format!(
            "fn main() {{ let _ = std::fs::write({:?}, \"ran\"); }}\n",
            world.marker.display().to_string()
        ),
    )
    .unwrap();
    let out = world.install(&skill);
    let error = install_error(&out);
    assert!(error.contains("target/build.rs"), "{error}");
    assert!(!world.marker.exists(), "the unhashed build script ran");
    world.assert_contained(&out);
}

#[test]
fn every_phase_ends_with_its_whole_process_tree_gone() {
    use boternity_skills::build::sandbox;
    use boternity_skills::process::{RunLimits, run};
    let tmp = tempfile::tempdir().unwrap();
    let layout = sandbox::Layout {
        skill_dir: tmp.path().join("source"),
        target_dir: tmp.path().join("target"),
        cargo_home: tmp.path().join("cargo-home"),
        rustup_home: tmp.path().join("rustup"),
        toolchain: tmp.path().join("toolchain"),
        scratch: tmp.path().join("scratch"),
    };
    std::fs::create_dir_all(&layout.skill_dir).unwrap();
    let nonce = random_hex(4);
    let duration = format!("299.{}", u32::from_str_radix(&nonce, 16).unwrap());
    for (phase, policy) in [
        ("fetch", sandbox::fetch_policy(&layout, 9).unwrap()),
        ("build", sandbox::build_policy(&layout).unwrap()),
    ] {
        // A daemon that holds the phase's output pipes open.
        let script = format!("sleep {duration} & sleep {duration} </dev/null & echo started");
        let cmd = sandbox::command(
            Path::new(env!("CARGO_BIN_EXE_boternity")),
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            &layout.scratch,
            &policy,
        );
        let started = Instant::now();
        let done = run(cmd, None, &RunLimits::default()).unwrap();
        assert!(done.status.success(), "{phase}: {}", done.stderr_text());
        assert_eq!(done.stdout, b"started\n", "{phase}");
        assert!(started.elapsed() < Duration::from_secs(30), "{phase}: hung");
        std::thread::sleep(Duration::from_millis(200));
        let survivors: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&duration))
            .collect();
        assert!(survivors.is_empty(), "{phase}: left running: {survivors:?}");
    }
}

#[test]
fn the_disk_watchdog_counts_what_the_build_wrote_and_never_removes_a_callers_folder() {
    let world = World::new();
    let skill = world.work.join("plain-skill");
    plain_crate(&skill, "build = \"build.rs\"");
    // 24 MiB into OUT_DIR, then long enough for the watchdog to look.
    std::fs::write(
        skill.join("build.rs"),
        "fn main() {\n    let out = std::path::PathBuf::from(std::env::var(\"OUT_DIR\").unwrap());\n    \
         for i in 0..24 { std::fs::write(out.join(format!(\"blob-{i}\")), vec![7u8; 1 << 20]).unwrap(); }\n    \
         std::thread::sleep(std::time::Duration::from_secs(8));\n}\n",
    )
    .unwrap();
    // The caller's target directory already holds 16 MiB of earlier builds:
    // over the limit by itself, and none of this build's doing.
    let target = world.tmp.path().join("callers-target");
    std::fs::create_dir_all(target.join("earlier")).unwrap();
    std::fs::write(target.join("earlier/artifact.rlib"), vec![1u8; 16 << 20]).unwrap();
    let mut cmd = world.command(&world.cache);
    cmd.arg("build-skill")
        .arg(&skill)
        .arg("--target-dir")
        .arg(&target)
        .args(["--max-target-bytes", "8388608", "--message-format", "json"]);
    let out = output_within(&mut cmd, INSTALL_LIMIT);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("over the 8388608-byte disk limit")
            && text.contains("it was stopped")
            && !text.contains("removed"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(target.join("earlier/artifact.rlib"))
            .unwrap()
            .len(),
        16 << 20,
        "the caller's folder lost its contents"
    );
    world.assert_contained(&out);
}

/// A build that nests folders past the path length limit (relative `mkdir`s)
/// hides what they hold from a walk by path: the watchdog stops it instead
/// of counting nothing there.
#[test]
fn folders_nested_too_deep_to_measure_stop_the_build() {
    let world = World::new();
    let skill = world.work.join("deep-skill");
    plain_crate(&skill, "build = \"build.rs\"");
    std::fs::write(
        skill.join("build.rs"),
        "fn main() {\n    std::env::set_current_dir(std::env::var(\"OUT_DIR\").unwrap()).unwrap();\n    \
         for _ in 0..3000 { std::fs::create_dir(\"a\").unwrap(); std::env::set_current_dir(\"a\").unwrap(); }\n    \
         std::fs::write(\"hidden\", vec![7u8; 1 << 20]).unwrap();\n    \
         std::thread::sleep(std::time::Duration::from_secs(4));\n}\n",
    )
    .unwrap();
    let mut cmd = world.command(&world.cache);
    cmd.arg("build-skill")
        .arg(&skill)
        .args(["--message-format", "json"]);
    let out = output_within(&mut cmd, INSTALL_LIMIT);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("too deep to measure") && text.contains("it was stopped"),
        "{text}{}",
        stderr(&out)
    );
    world.assert_contained(&out);
}
