//! The executor as a sandbox: a hostile skill (tests/fixtures/hostile) tries
//! everything a sandbox must stop; each attempt gets its specific error and
//! nothing leaks. Grants make the allowed paths work. Limits fire only when
//! reached.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boternity_skills::executor::{
    ExecError, Executor, ExecutorConfig, Grants, HostServices, Invocation, Limits, MemoryProvider,
    Origin, Outcome, Precompiled, SecretsProvider, SkillSource,
};
use boternity_skills::install::{self, InstallOptions};
use boternity_skills::skill::manifest::Capability;
use boternity_skills::store::SkillStore;
use common::*;

struct Secrets;
impl SecretsProvider for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        (name == "api-key").then(|| "s3cr3t".to_string())
    }
}

struct Memory;
impl MemoryProvider for Memory {
    fn recall(&self, bot_slug: &str, query: &str, limit: u32) -> Vec<String> {
        vec![format!("{bot_slug}:{query}"), format!("limit={limit}")]
    }
}

fn executor() -> Executor {
    let services = HostServices {
        secrets: Arc::new(Secrets),
        memory: Arc::new(Memory),
        env: Arc::new(|name| (name == "ALLOWED_VAR").then(|| "allowed-value".to_string())),
    };
    Executor::with_config(ExecutorConfig::default(), services).unwrap()
}

async fn run(
    executor: &Executor,
    input: &str,
    configure: impl FnOnce(&mut Invocation),
) -> Result<Outcome, ExecError> {
    let skill = executor
        .load(SkillSource::Bytes(&component("hostile")))
        .unwrap();
    let mut invocation = Invocation::new("hostile", input);
    configure(&mut invocation);
    executor.run(&skill, invocation).await
}

fn grant(caps: &[Capability]) -> Grants {
    Grants {
        capabilities: caps.iter().copied().collect(),
        ..Grants::none()
    }
}

/// Everything an outcome shows the outside world, for "nothing leaked" checks.
fn everything(outcome: &Outcome) -> String {
    format!(
        "{:?} {} {} {:?}",
        outcome.result, outcome.stdout, outcome.stderr, outcome.logs
    )
}

#[tokio::test]
async fn an_endless_loop_runs_out_of_fuel_or_time_never_hangs() {
    let ex = executor();
    let err = run(&ex, "loop", |_| {}).await.unwrap_err();
    assert!(
        matches!(err, ExecError::FuelExhausted { fuel } if fuel == Limits::UNTRUSTED.fuel),
        "{err}"
    );

    let started = Instant::now();
    let err = run(&ex, "loop", |i| {
        i.limits.fuel = u64::MAX / 2;
        i.limits.deadline = Duration::from_millis(300);
    })
    .await
    .unwrap_err();
    let ExecError::DeadlineExceeded {
        elapsed_ms,
        limit_ms,
    } = err
    else {
        panic!("expected a deadline error, got {err}");
    };
    assert_eq!(limit_ms, 300);
    assert!(elapsed_ms >= 300, "{elapsed_ms}");
    assert!(
        started.elapsed() < STOPPED_WITHIN,
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().starts_with("deadline exceeded after"));
}

#[tokio::test]
async fn limits_fire_only_when_reached() {
    let ex = executor();
    // Real work well inside the deadline succeeds (the old executor trapped at once).
    let ok = run(&ex, "work 200000", |i| {
        i.limits.deadline = Duration::from_secs(5)
    })
    .await
    .unwrap();
    assert!(ok.result.is_ok());
    // Exactly the fuel it needs is enough; half of it is not.
    let needed = ok.fuel_consumed;
    assert!(needed > 200_000, "{needed}");
    let exact = run(&ex, "work 200000", |i| i.limits.fuel = needed)
        .await
        .unwrap();
    assert_eq!(exact.result, ok.result);
    let err = run(&ex, "work 200000", |i| i.limits.fuel = needed / 2)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::FuelExhausted { .. }), "{err}");
    // Memory under the cap is fine and measured.
    let ok = run(&ex, "alloc 8", |_| {}).await.unwrap();
    assert_eq!(ok.result, Ok("allocated 8388608".into()));
    assert!(ok.peak_memory_bytes >= 8 << 20, "{}", ok.peak_memory_bytes);
    // Moderate recursion is fine.
    assert!(
        run(&ex, "recurse 1000", |_| {})
            .await
            .unwrap()
            .result
            .is_ok()
    );
    // Output at the cap is fine; one byte over is not.
    let max = Limits::UNTRUSTED.max_output_bytes;
    let ok = run(&ex, &format!("output {max}"), |_| {}).await.unwrap();
    assert_eq!(ok.result.unwrap().len(), max);
}

#[tokio::test]
async fn a_huge_allocation_hits_the_memory_limit() {
    let err = run(&executor(), "alloc 1024", |_| {}).await.unwrap_err();
    assert!(
        matches!(err, ExecError::MemoryLimit { limit_mib: 64 }),
        "{err}"
    );
    let err = run(&executor(), "alloc 20", |i| {
        i.limits.memory_bytes = 16 << 20
    })
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "memory limit of 16 MiB exceeded");
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack_cleanly() {
    let err = run(&executor(), "recurse 100000000", |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::StackOverflow { limit_kib: 1024 }),
        "{err}"
    );
}

#[tokio::test]
async fn huge_output_is_refused_and_printing_is_captured_bounded() {
    let ex = executor();
    let max = Limits::UNTRUSTED.max_output_bytes;
    let err = run(&ex, &format!("output {}", max + 1), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::OutputTooLarge { size, .. } if size == max + 1),
        "{err}"
    );

    let out = run(&ex, "print 100", |_| {}).await.unwrap();
    assert_eq!(out.stdout, "p".repeat(100));
    assert_eq!(out.stderr, "to stderr");
    assert!(!out.output_truncated);
    // Printing far past the bound neither fails the skill nor grows the result.
    let out = run(&ex, "print 5000000", |_| {}).await.unwrap();
    assert_eq!(out.result, Ok("printed".into()));
    assert_eq!(out.stdout.len(), Limits::UNTRUSTED.max_captured_bytes);
    assert!(out.output_truncated);
}

#[tokio::test]
async fn etc_passwd_is_out_of_reach() {
    let ex = executor();
    let data = tempfile::tempdir().unwrap();
    // Through WASI: no preopened directory at all.
    let out = run(&ex, "wasi-read /etc/passwd", |_| {}).await.unwrap();
    assert!(
        out.result.as_ref().unwrap_err().starts_with("wasi: "),
        "{:?}",
        out.result
    );
    assert!(!everything(&out).contains("root:"));
    // Through read-file without the capability.
    let out = run(&ex, "read-file /etc/passwd", |_| {}).await.unwrap();
    assert_eq!(
        out.result,
        Err("permission denied: `read-file` needs the `read_file` capability, which this skill was not granted".into())
    );
    // With the capability: absolute paths, `..` and symlinks out are refused.
    let granted = |i: &mut Invocation| {
        i.grants = grant(&[Capability::ReadFile, Capability::WriteFile]);
        i.grants.data_dir = Some(data.path().to_path_buf());
    };
    std::os::unix::fs::symlink("/etc", data.path().join("etc-link")).unwrap();
    for (input, expected) in [
        ("read-file /etc/passwd", "must be a relative path"),
        (
            "read-file ../../../../../../etc/passwd",
            "must be a relative path",
        ),
        (
            "read-file etc-link/passwd",
            "leads outside the skill's data folder",
        ),
        ("write-file ../escape.txt x", "must be a relative path"),
        (
            "write-file etc-link/evil x",
            "leads outside the skill's data folder",
        ),
    ] {
        let out = run(&ex, input, granted).await.unwrap();
        let err = out.result.clone().unwrap_err();
        assert!(
            err.contains("permission denied") && err.contains(expected),
            "{input}: {err}"
        );
        assert!(!everything(&out).contains("root:"));
    }
    assert!(!data.path().parent().unwrap().join("escape.txt").exists());
    // The allowed path works: write, then read back, inside the data folder.
    let out = run(&ex, "write-file notes/today.txt hello-data", granted)
        .await
        .unwrap();
    assert_eq!(out.result, Ok("written".into()));
    assert_eq!(
        std::fs::read_to_string(data.path().join("notes/today.txt")).unwrap(),
        "hello-data"
    );
    let out = run(&ex, "read-file notes/today.txt", granted)
        .await
        .unwrap();
    assert_eq!(out.result, Ok("hello-data".into()));
}

#[tokio::test]
async fn the_environment_is_not_inherited_and_read_env_needs_the_name() {
    let ex = executor();
    let home = std::env::var("HOME").unwrap_or_default();
    let out = run(&ex, "std-env HOME", |_| {}).await.unwrap();
    assert_eq!(
        out.result,
        Err("std: environment variable not found".into())
    );
    let out = run(&ex, "env HOME", |_| {}).await.unwrap();
    assert!(
        out.result
            .clone()
            .unwrap_err()
            .contains("needs the `read_env` capability")
    );
    let with_grant = |i: &mut Invocation| {
        i.grants = grant(&[Capability::ReadEnv]);
        i.grants.env_vars = BTreeSet::from(["ALLOWED_VAR".to_string()]);
    };
    let out = run(&ex, "env HOME", with_grant).await.unwrap();
    assert_eq!(
        out.result,
        Err("permission denied: variable `HOME` was not granted to this skill".into())
    );
    if !home.is_empty() {
        assert!(!everything(&out).contains(&home));
    }
    let out = run(&ex, "env ALLOWED_VAR", with_grant).await.unwrap();
    assert_eq!(out.result, Ok("allowed-value".into()));
}

#[tokio::test]
async fn sockets_are_denied() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(&executor(), &format!("connect 127.0.0.1:{port}"), |_| {})
        .await
        .unwrap();
    assert!(
        out.result.clone().unwrap_err().starts_with("connect: "),
        "{:?}",
        out.result
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

/// Answers one HTTP request on `listener` with `body`; returns the request.
fn answer_one(listener: TcpListener, body: &'static str) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if n == 0 {
                break;
            }
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= head_end + 4 + length {
                    break;
                }
            }
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    })
}

/// The call ended with the 300 ms deadline's own error, well before the
/// thing it waited on (seconds) would have.
/// How soon after a 300 ms deadline a call must be seen stopped: far more
/// than a loaded machine's delay, and below the 10 s HTTP timeout
/// (`executor::host::HTTP_TIMEOUT`) the deadline must beat, which is the
/// alternative these tests rule out.
const STOPPED_WITHIN: Duration = Duration::from_secs(8);

fn assert_stopped_at_300ms_deadline(err: &ExecError, started: Instant) {
    assert!(
        matches!(err, ExecError::DeadlineExceeded { limit_ms: 300, .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < STOPPED_WITHIN,
        "{:?}",
        started.elapsed()
    );
}

/// A granted host that accepts the connection and never answers: the call
/// ends at the invocation's deadline, not at the 10 s request timeout.
#[tokio::test]
async fn an_http_call_that_hangs_ends_at_the_deadline() {
    let ex = executor();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let started = Instant::now();
    let err = run(
        &ex,
        &format!("http-get http://127.0.0.1:{port}/slow"),
        |i| {
            i.grants = grant(&[Capability::HttpGet]);
            i.grants.http_hosts = BTreeSet::from([format!("127.0.0.1:{port}")]);
            i.limits.deadline = Duration::from_millis(300);
        },
    )
    .await
    .unwrap_err();
    assert_stopped_at_300ms_deadline(&err, started);
    // The request did reach the server (it was cut off, not refused).
    assert!(held.join().unwrap().is_ok());
}

#[tokio::test]
async fn http_reaches_only_allowed_hosts() {
    let ex = executor();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/ping");
    // No capability; then the capability but not the host: no request is made.
    let out = run(&ex, &format!("http-get {url}"), |_| {}).await.unwrap();
    assert!(
        out.result
            .clone()
            .unwrap_err()
            .contains("needs the `http_get` capability")
    );
    let out = run(&ex, &format!("http-get {url}"), |i| {
        i.grants = grant(&[Capability::HttpGet])
    })
    .await
    .unwrap();
    assert_eq!(
        out.result,
        Err("permission denied: host `127.0.0.1` is not on this skill's HTTP allow-list".into())
    );
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    listener.set_nonblocking(false).unwrap();

    let allowed = move |i: &mut Invocation| {
        i.grants = grant(&[Capability::HttpGet, Capability::HttpPost]);
        i.grants.http_hosts = BTreeSet::from([format!("127.0.0.1:{port}")]);
    };
    let server = answer_one(listener, "pong");
    let out = run(&ex, &format!("http-get {url}"), allowed).await.unwrap();
    assert_eq!(out.result, Ok("pong".into()));
    assert!(server.join().unwrap().starts_with("GET /ping HTTP/1.1"));

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = answer_one(listener, "stored");
    let out = run(&ex, &format!("http-post {url} payload-123"), allowed)
        .await
        .unwrap();
    assert_eq!(out.result, Ok("stored".into()));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /ping") && request.ends_with("payload-123"),
        "{request}"
    );
}

#[tokio::test]
async fn secrets_memory_and_context_come_from_the_host() {
    let ex = executor();
    let secrets = |i: &mut Invocation| {
        i.grants = grant(&[Capability::GetSecret]);
        i.grants.secrets = BTreeSet::from(["api-key".to_string()]);
    };
    assert_eq!(
        run(&ex, "secret api-key", secrets).await.unwrap().result,
        Ok("s3cr3t".into())
    );
    let out = run(&ex, "secret db-password", secrets).await.unwrap();
    assert!(
        out.result
            .unwrap_err()
            .contains("secret `db-password` was not granted to this skill")
    );
    let out = run(&ex, "secret api-key", |_| {}).await.unwrap();
    assert!(
        out.result
            .unwrap_err()
            .contains("needs the `get_secret` capability")
    );

    let err = run(&ex, "memory cats", |_| {}).await.unwrap_err();
    assert!(
        matches!(&err, ExecError::Denied(m) if m.contains("`recall_memory` capability")),
        "{err}"
    );
    let out = run(&ex, "memory cats", |i| {
        i.grants = grant(&[Capability::RecallMemory]);
        i.bot_slug = "jarvis".into();
    })
    .await
    .unwrap();
    assert_eq!(out.result, Ok("jarvis:cats|limit=5".into()));

    let context = |i: &mut Invocation| {
        i.bot_name = "Jarvis".into();
        i.bot_slug = "jarvis".into();
    };
    let first = run(&ex, "context", context).await.unwrap();
    let second = run(&ex, "context", context).await.unwrap();
    let first = first.result.unwrap();
    assert!(first.starts_with("Jarvis|jarvis|hostile|inv-"), "{first}");
    assert_ne!(
        first,
        second.result.unwrap(),
        "every invocation gets a fresh id"
    );
}

/// Every capability, in the order the store lists them.
const ALL_CAPABILITIES: [&str; 8] = [
    "read_file",
    "write_file",
    "http_get",
    "http_post",
    "exec_command",
    "read_env",
    "recall_memory",
    "get_secret",
];

/// A skill folder `parent/<name>` whose SKILL.md asks for `capabilities`
/// and `secrets` (YAML lists), shipping the hostile component.
fn asking_skill(
    parent: &std::path::Path,
    name: &str,
    capabilities: &str,
    secrets: &str,
) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: Asks for things.\nmetadata:\n  skill-type: tool\n  \
             capabilities: {capabilities}\n  secrets: {secrets}\n---\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("skill.wasm"), component("hostile")).unwrap();
    dir
}

/// `boternity <args> --store <store>`, with a secret and a variable in the
/// environment for a skill to try to read.
fn cli(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    boternity()
        .args(args)
        .arg("--store")
        .arg(store)
        .env("BOTERNITY_SECRET_API_KEY", "s3cr3t")
        .env("BOTERNITY_TEST_VAR", "visible")
        .output()
        .unwrap()
}

/// Installs `dir` with `extra` flags; its `skill-installed` message.
fn install_cli(
    store: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec!["install", dir.to_str().unwrap(), "--message-format", "json"];
    args.extend(extra);
    let out = cli(store, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(stdout(&out).trim());
    assert_eq!(v["reason"], "skill-installed");
    v
}

/// `run <name> --input <input>` on the installed skill.
fn run_cli(store: &std::path::Path, name: &str, input: &str) -> std::process::Output {
    cli(store, &["run", name, "--input", input])
}

fn ran(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out).trim_end().to_string()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Denied: the skill's error names the capability and the flag that grants
/// it, and nothing of the secret or the variable shows.
fn assert_denied(out: &std::process::Output, code: i32, what: &str, flag: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(
        err.contains(what)
            && err.contains(&format!("(grant it with `{flag}` on install, or on run)")),
        "expected `{what}` and `{flag}` in: {err}"
    );
    let all = format!("{}{err}", stdout(out));
    assert!(!all.contains("s3cr3t") && !all.contains("visible"), "{all}");
}

fn assert_capability_denied(out: &std::process::Output, cap: &str) {
    let code = if cap == "recall_memory" { 2 } else { 1 };
    assert_denied(
        out,
        code,
        &format!("needs the `{cap}` capability, which this skill was not granted"),
        &format!("--grant {cap}"),
    );
}

/// What a SKILL.md lists is a request: recorded and shown at install with
/// the flags that would grant it, never granted by itself. Each capability
/// is denied until the installer grants it, then works.
#[test]
fn a_skill_md_asks_and_only_the_installer_grants() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = asking_skill(
        tmp.path(),
        "asker",
        &format!("[{}]", ALL_CAPABILITIES.join(", ")),
        "[api-key]",
    );
    let v = install_cli(&store, &dir, &[]);
    assert_eq!(strings(&v["requested"]["capabilities"]), ALL_CAPABILITIES);
    assert_eq!(strings(&v["requested"]["secrets"]), ["api-key"]);
    assert_eq!(strings(&v["granted"]["capabilities"]), Vec::<String>::new());
    assert_eq!(strings(&v["granted"]["secrets"]), Vec::<String>::new());
    assert_eq!(v["not_granted"], v["requested"]);
    let notes = v["notes"].to_string();
    for flag in ALL_CAPABILITIES
        .iter()
        .map(|c| format!("--grant {c}"))
        .chain(["--allow-secret api-key".into(), "--allow-host HOST".into()])
    {
        assert!(notes.contains(&flag), "{flag} in {notes}");
    }
    let p = SkillStore::new(&store)
        .get("asker")
        .unwrap()
        .provenance
        .unwrap();
    let requested = p.requested.unwrap();
    assert_eq!(
        requested.capabilities,
        Capability::ALL.into_iter().collect()
    );
    assert_eq!(p.grants, Grants::none());

    // Each host function is denied, naming its capability and the flag.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/ping");
    for (input, cap) in [
        ("read-file notes.txt".to_string(), "read_file"),
        ("write-file notes.txt x".into(), "write_file"),
        (format!("http-get {url}"), "http_get"),
        (format!("http-post {url} body"), "http_post"),
        ("env BOTERNITY_TEST_VAR".into(), "read_env"),
        ("memory cats".into(), "recall_memory"),
        ("secret api-key".into(), "get_secret"),
    ] {
        assert_capability_denied(&run_cli(&store, "asker", &input), cap);
    }
    assert_unheard(&listener);
    assert!(!SkillStore::new(&store).data_dir("asker").exists());

    // The capability without the name: the name's flag.
    install_cli(
        &store,
        &dir,
        &["--grant", "get_secret", "--grant", "read_env"],
    );
    assert_denied(
        &run_cli(&store, "asker", "secret api-key"),
        1,
        "permission denied: secret `api-key` was not granted to this skill",
        "--allow-secret api-key",
    );
    assert_denied(
        &run_cli(&store, "asker", "env BOTERNITY_TEST_VAR"),
        1,
        "permission denied: variable `BOTERNITY_TEST_VAR` was not granted to this skill",
        "--allow-env BOTERNITY_TEST_VAR",
    );

    // Granted: each works.
    let host = format!("127.0.0.1:{port}");
    let mut flags: Vec<&str> = ALL_CAPABILITIES
        .iter()
        .flat_map(|c| ["--grant", c])
        .collect();
    flags.extend([
        "--allow-host",
        &host,
        "--allow-env",
        "BOTERNITY_TEST_VAR",
        "--allow-secret",
        "api-key",
    ]);
    let v = install_cli(&store, &dir, &flags);
    assert_eq!(strings(&v["granted"]["capabilities"]), ALL_CAPABILITIES);
    assert_eq!(strings(&v["granted"]["http_hosts"]), [host.as_str()]);
    assert_eq!(
        strings(&v["not_granted"]["capabilities"]),
        Vec::<String>::new()
    );
    assert!(
        !v["notes"].to_string().contains("not granted"),
        "{}",
        v["notes"]
    );
    assert_eq!(
        ran(&run_cli(&store, "asker", "write-file notes.txt hello")),
        "written"
    );
    assert_eq!(
        ran(&run_cli(&store, "asker", "read-file notes.txt")),
        "hello"
    );
    let server = answer_one(listener, "pong");
    assert_eq!(
        ran(&run_cli(&store, "asker", &format!("http-get {url}"))),
        "pong"
    );
    assert!(server.join().unwrap().starts_with("GET /ping"));
    let server = answer_one(TcpListener::bind(("127.0.0.1", port)).unwrap(), "stored");
    assert_eq!(
        ran(&run_cli(
            &store,
            "asker",
            &format!("http-post {url} payload")
        )),
        "stored"
    );
    assert!(server.join().unwrap().ends_with("payload"));
    assert_eq!(
        ran(&run_cli(&store, "asker", "env BOTERNITY_TEST_VAR")),
        "visible"
    );
    assert_eq!(ran(&run_cli(&store, "asker", "secret api-key")), "s3cr3t");
    assert_eq!(ran(&run_cli(&store, "asker", "memory cats")), "");
    // exec_command gates no host function of this world yet: it is asked
    // for, recorded, and granted only by name like the rest.
    let p = SkillStore::new(&store)
        .get("asker")
        .unwrap()
        .provenance
        .unwrap();
    assert!(p.grants.capabilities.contains(&Capability::ExecCommand));
}

/// A secret granted to one skill is that skill's: another skill listing
/// the same name in its SKILL.md (under any tier) never sees it.
#[test]
fn a_secret_is_scoped_to_the_skill_it_was_granted_to() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let keeper = asking_skill(tmp.path(), "keeper", "[get_secret]", "[api-key]");
    let snoop = asking_skill(tmp.path(), "snoop", "[get_secret]", "[api-key]");
    install_cli(
        &store,
        &keeper,
        &["--grant", "get_secret", "--allow-secret", "api-key"],
    );
    for tier in ["untrusted", "verified", "local"] {
        install_cli(&store, &snoop, &["--trust-tier", tier]);
        assert_capability_denied(&run_cli(&store, "snoop", "secret api-key"), "get_secret");
    }
    install_cli(&store, &snoop, &["--grant", "get_secret"]);
    assert_denied(
        &run_cli(&store, "snoop", "secret api-key"),
        1,
        "secret `api-key` was not granted to this skill",
        "--allow-secret api-key",
    );
    assert_eq!(ran(&run_cli(&store, "keeper", "secret api-key")), "s3cr3t");
}

/// `verified` and `local` get, of what SKILL.md asks for, only what touches
/// the skill's own data; never secrets, variables, hosts or commands.
#[test]
fn the_trust_tier_policy_grants_only_what_touches_the_skills_own_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = asking_skill(
        tmp.path(),
        "asker",
        &format!("[{}]", ALL_CAPABILITIES.join(", ")),
        "[api-key]",
    );
    for tier in ["verified", "local"] {
        let store = tmp.path().join(tier);
        let v = install_cli(&store, &dir, &["--trust-tier", tier]);
        assert_eq!(
            strings(&v["granted"]["capabilities"]),
            ["read_file", "write_file", "recall_memory"],
            "{tier}"
        );
        assert_eq!(
            strings(&v["not_granted"]["capabilities"]),
            [
                "http_get",
                "http_post",
                "exec_command",
                "read_env",
                "get_secret"
            ],
            "{tier}"
        );
        assert_eq!(strings(&v["not_granted"]["secrets"]), ["api-key"]);
        assert_eq!(
            ran(&run_cli(&store, "asker", "write-file a.txt mine")),
            "written"
        );
        assert_eq!(ran(&run_cli(&store, "asker", "read-file a.txt")), "mine");
        assert_eq!(ran(&run_cli(&store, "asker", "memory cats")), "");
        assert_capability_denied(&run_cli(&store, "asker", "secret api-key"), "get_secret");
        assert_capability_denied(
            &run_cli(&store, "asker", "env BOTERNITY_TEST_VAR"),
            "read_env",
        );
        assert_capability_denied(
            &run_cli(&store, "asker", "http-get http://127.0.0.1:9/x"),
            "http_get",
        );
    }
}

/// Provenance written before requests were kept apart merged the manifest's
/// capabilities and secrets into the grants: they read as requests now, and
/// only what the installer alone could have granted stays granted.
#[test]
fn an_old_record_grants_only_what_the_installer_named() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = asking_skill(tmp.path(), "legacy", "[read_file, get_secret]", "[api-key]");
    install_cli(
        &store,
        &dir,
        &["--grant", "read_env", "--allow-env", "BOTERNITY_TEST_VAR"],
    );
    let record = SkillStore::new(&store)
        .skill_dir("legacy")
        .unwrap()
        .join(".boternity-provenance.json");
    let mut p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    // As the installer wrote it then: the manifest's request merged in.
    p.as_object_mut().unwrap().remove("requested");
    p["grants"]["capabilities"] = serde_json::json!(["read_file", "read_env", "get_secret"]);
    p["grants"]["secrets"] = serde_json::json!(["api-key"]);
    std::fs::write(&record, serde_json::to_vec_pretty(&p).unwrap()).unwrap();

    assert_eq!(
        ran(&run_cli(&store, "legacy", "env BOTERNITY_TEST_VAR")),
        "visible"
    );
    assert_capability_denied(&run_cli(&store, "legacy", "read-file a.txt"), "read_file");
    assert_capability_denied(&run_cli(&store, "legacy", "secret api-key"), "get_secret");

    // No record at all (boternity's old installer): nothing.
    std::fs::remove_file(&record).unwrap();
    assert_capability_denied(
        &run_cli(&store, "legacy", "env BOTERNITY_TEST_VAR"),
        "read_env",
    );
}

#[tokio::test]
async fn no_state_survives_between_calls() {
    let ex = executor();
    for _ in 0..3 {
        assert_eq!(
            run(&ex, "count", |_| {}).await.unwrap().result,
            Ok("1".into())
        );
    }
}

/// A skill blocked in a WASI call (sleeping on a clock) runs no wasm, so
/// the epoch cannot stop it: the deadline's timer does.
#[tokio::test]
async fn a_skill_asleep_in_wasi_ends_at_the_deadline() {
    let started = Instant::now();
    let err = run(&executor(), "sleep 20000", |i| {
        i.limits.deadline = Duration::from_millis(300);
    })
    .await
    .unwrap_err();
    assert_stopped_at_300ms_deadline(&err, started);
}

/// A component is linked against only the WASI interfaces it imports
/// (`executor/link.rs`): randomness and clocks, which std reaches on its own,
/// link and answer.
#[tokio::test]
async fn wasi_random_and_clocks_link_and_answer() {
    let out = run(&executor(), "random seed", |_| {}).await.unwrap();
    assert_eq!(out.result, Ok("hashed=true now=true".into()));
}

#[tokio::test]
async fn logs_are_captured_and_bounded() {
    let out = run(&executor(), "log-flood 100000", |_| {}).await.unwrap();
    assert_eq!(out.result, Ok("flooded".into()));
    assert!(out.logs_truncated);
    assert!(!out.logs.is_empty() && out.logs.len() < 100000);
    assert_eq!(out.logs[0].message, "line 0");
}

#[test]
fn fifty_concurrent_invocations_on_two_threads_are_not_blocked_by_a_loop() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ex = Arc::new(executor());
    let skill = ex.load(SkillSource::Bytes(&component("hostile"))).unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (ex, skill) = (ex.clone(), skill.clone());
            tasks.push(tokio::spawn(async move {
                let input = if i == 0 { "loop" } else { "work 10000" };
                let mut invocation = Invocation::new("hostile", input);
                invocation.limits.fuel = u64::MAX / 2;
                invocation.limits.deadline = Duration::from_secs(3);
                let result = ex.run(&skill, invocation).await;
                (i, result, started.elapsed())
            }));
        }
        for task in tasks {
            let (i, result, finished) = task.await.unwrap();
            if i == 0 {
                assert!(
                    matches!(result, Err(ExecError::DeadlineExceeded { .. })),
                    "{result:?}"
                );
            } else {
                assert!(result.unwrap().result.is_ok());
                assert!(
                    finished < Duration::from_millis(1500),
                    "call {i} took {finished:?}"
                );
            }
        }
    });
}

#[tokio::test]
async fn a_cwasm_is_used_only_when_its_record_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SkillStore::new(tmp.path().join("store"));
    // Executors of one machine: they share its signing key (an executor's
    // own random key would trust none of the others' records).
    let key = boternity_skills::executor::CwasmKey::random().unwrap();
    let on_this_machine = || {
        Executor::with_config(
            ExecutorConfig {
                cwasm_key: Some(key.clone()),
                ..ExecutorConfig::default()
            },
            HostServices::default(),
        )
        .unwrap()
    };
    let ex = on_this_machine();
    let options = InstallOptions {
        pipeline: pipeline_options(),
        ..InstallOptions::default()
    };
    install::install(
        &common::context(),
        &store,
        &fixture("echo-skill"),
        &options,
        Some(&ex),
    )
    .unwrap();
    let installed = store.get("echo-skill").unwrap();

    let fresh = on_this_machine();
    let skill = installed.load(&fresh).unwrap();
    assert_eq!(skill.origin(), Some(Origin::Precompiled));
    let out = fresh
        .run(&skill, Invocation::new("echo-skill", "cwasm"))
        .await
        .unwrap();
    assert_eq!(out.result, Ok("ECHO: CWASM".into()));

    // One flipped byte: the hash no longer matches, so it is compiled instead.
    let cwasm = installed.dir.join("skill.cwasm");
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cwasm, &bytes).unwrap();
    let fresh = on_this_machine();
    let skill = installed.load(&fresh).unwrap();
    assert_eq!(skill.origin(), Some(Origin::Compiled));
    let out = fresh
        .run(&skill, Invocation::new("echo-skill", "safe"))
        .await
        .unwrap();
    assert_eq!(out.result, Ok("ECHO: SAFE".into()));

    // A record signed with another machine's key is not trusted, even when
    // everything else in it is right.
    let original = installed
        .provenance
        .as_ref()
        .unwrap()
        .cwasm
        .clone()
        .unwrap();
    std::fs::write(&cwasm, {
        let mut fixed = bytes.clone();
        fixed[middle] ^= 0xff;
        fixed
    })
    .unwrap();
    let foreign = boternity_skills::executor::CwasmKey::random()
        .unwrap()
        .sign(
            original.sha256.clone(),
            original.engine.clone(),
            original.wasm_sha256.clone(),
        );
    let fresh = on_this_machine();
    let skill = fresh
        .load(SkillSource::File {
            wasm: &installed.dir.join("skill.wasm"),
            precompiled: Some(Precompiled {
                cwasm: cwasm.clone(),
                record: foreign.clone(),
            }),
        })
        .unwrap();
    assert_eq!(skill.origin(), Some(Origin::Compiled));
    // The genuine record still works with the restored file.
    let fresh = on_this_machine();
    let skill = fresh
        .load(SkillSource::File {
            wasm: &installed.dir.join("skill.wasm"),
            precompiled: Some(Precompiled {
                cwasm: cwasm.clone(),
                record: original.clone(),
            }),
        })
        .unwrap();
    assert_eq!(skill.origin(), Some(Origin::Precompiled));

    // A record from another engine configuration is not trusted either.
    let mut record = installed
        .provenance
        .as_ref()
        .unwrap()
        .cwasm
        .clone()
        .unwrap();
    record.sha256 = boternity_skills::digest::sha256_hex(&bytes);
    record.engine = "another-engine".into();
    let fresh = on_this_machine();
    let skill = fresh
        .load(SkillSource::File {
            wasm: &installed.dir.join("skill.wasm"),
            precompiled: Some(Precompiled {
                cwasm: cwasm.clone(),
                record: record.clone(),
            }),
        })
        .unwrap();
    assert_eq!(skill.origin(), Some(Origin::Compiled));
}

#[test]
fn run_prints_the_whole_result_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("hostile.wasm");
    std::fs::write(&wasm, component("hostile")).unwrap();
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args(["--input", "print 3", "--message-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(stdout(&out).trim());
    assert_eq!(v["reason"], "skill-run");
    assert_eq!(v["ok"], "printed");
    assert_eq!(v["stdout"], "ppp");
    assert!(v["fuel_consumed"].as_u64().unwrap() > 0);
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert!(v["duration_us"].as_u64().is_some());

    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args([
            "--input",
            "alloc 100",
            "--message-format",
            "json",
            "--memory-mib",
            "32",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = json_line(stdout(&out).trim());
    assert_eq!(v["error"], "memory limit of 32 MiB exceeded");

    // --grant on run opens what the skill asks for, and only that.
    let out = boternity()
        .arg("run")
        .arg(&wasm)
        .args([
            "--input",
            "env LANG_TEST_VAR",
            "--grant",
            "read_env",
            "--allow-env",
            "LANG_TEST_VAR",
        ])
        .env("LANG_TEST_VAR", "granted!")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "granted!\n");
}

#[test]
fn build_skill_cwasm_is_used_for_that_file_only() {
    let tmp = tempfile::tempdir().unwrap();
    let skill = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    let wasm = tmp.path().join("dist/echo.wasm");
    let out = build_skill(&skill)
        .arg("-o")
        .arg(&wasm)
        .arg("--cwasm")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wasm.with_extension("cwasm").is_file() && wasm.with_extension("cwasm.json").is_file());

    // The CLI signed the record with the key in its cache folder.
    let key = boternity_skills::executor::CwasmKey::load_or_create(&cache_dir().join("cwasm-key"))
        .unwrap();
    let executor = || {
        Executor::with_config(
            ExecutorConfig {
                cwasm_key: Some(key.clone()),
                ..ExecutorConfig::default()
            },
            HostServices::default(),
        )
        .unwrap()
    };
    assert_eq!(
        executor()
            .load(SkillSource::File {
                wasm: &wasm,
                precompiled: Precompiled::beside(&wasm),
            })
            .unwrap()
            .origin(),
        Some(Origin::Precompiled)
    );
    // Another component under that name: the record does not vouch for it.
    std::fs::write(&wasm, component("bare-full")).unwrap();
    assert_eq!(
        executor()
            .load(SkillSource::File {
                wasm: &wasm,
                precompiled: Precompiled::beside(&wasm),
            })
            .unwrap()
            .origin(),
        Some(Origin::Compiled)
    );
    // Another machine's key: compiled, never deserialized.
    let stranger = Executor::with_config(
        ExecutorConfig {
            cwasm_key: Some(boternity_skills::executor::CwasmKey::random().unwrap()),
            ..ExecutorConfig::default()
        },
        HostServices::default(),
    )
    .unwrap();
    std::fs::write(&wasm, component("echo-skill")).unwrap();
    assert_eq!(
        stranger
            .load(SkillSource::File {
                wasm: &wasm,
                precompiled: Precompiled::beside(&wasm),
            })
            .unwrap()
            .origin(),
        Some(Origin::Compiled)
    );
}

/// Answers one HTTP request on `listener` with the raw `reply`.
fn answer_raw(listener: TcpListener, reply: String) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        stream.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    })
}

fn redirect_to(location: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// Nothing connected to `listener` (checked without waiting).
fn assert_unheard(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    listener.set_nonblocking(false).unwrap();
}

#[tokio::test]
async fn a_granted_name_that_resolves_inward_is_refused_and_every_redirect_is_checked() {
    let ex = executor();
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    );
    let grants = |hosts: &[String]| {
        let hosts: BTreeSet<String> = hosts.iter().cloned().collect();
        move |i: &mut Invocation| {
            i.grants = grant(&[Capability::HttpGet]);
            i.grants.http_hosts = hosts;
        }
    };

    // A granted *name* whose address is loopback (an internal name, DNS
    // rebinding): refused before any connection.
    let out = run(
        &ex,
        &format!("http-get http://localhost:{a}/admin"),
        grants(&[format!("localhost:{a}")]),
    )
    .await
    .unwrap();
    let err = out.result.unwrap_err();
    assert!(
        err.contains("permission denied")
            && err.contains("points inward")
            && err.contains("127.0.0.1"),
        "{err}"
    );
    assert_unheard(&first);

    // A redirect to a host not granted: the first hop is made, the second refused.
    let server = answer_raw(first, redirect_to(&format!("http://127.0.0.1:{b}/secret")));
    let out = run(
        &ex,
        &format!("http-get http://127.0.0.1:{a}/start"),
        grants(&[format!("127.0.0.1:{a}")]),
    )
    .await
    .unwrap();
    let err = out.result.unwrap_err();
    assert!(
        err.starts_with("redirect refused: permission denied: host `127.0.0.1`"),
        "{err}"
    );
    assert!(server.join().unwrap().starts_with("GET /start"));
    assert_unheard(&second);

    // A redirect to a granted name that resolves inward: refused the same way.
    let first = TcpListener::bind(("127.0.0.1", a)).unwrap();
    let server = answer_raw(first, redirect_to(&format!("http://localhost:{b}/secret")));
    let out = run(
        &ex,
        &format!("http-get http://127.0.0.1:{a}/start"),
        grants(&[format!("127.0.0.1:{a}"), format!("localhost:{b}")]),
    )
    .await
    .unwrap();
    let err = out.result.unwrap_err();
    assert!(err.contains("points inward"), "{err}");
    server.join().unwrap();
    assert_unheard(&second);

    // Granted addresses, written literally, are meant: the redirect is followed.
    let first = TcpListener::bind(("127.0.0.1", a)).unwrap();
    let server = std::thread::spawn(move || {
        let hop = answer_raw(first.try_clone().unwrap(), redirect_to("/next"))
            .join()
            .unwrap();
        // The relative redirect comes back to the same server.
        let landed = answer_one(first, "landed").join().unwrap();
        (hop, landed)
    });
    let out = run(
        &ex,
        &format!("http-get http://127.0.0.1:{a}/start"),
        grants(&[format!("127.0.0.1:{a}")]),
    )
    .await
    .unwrap();
    assert_eq!(out.result, Ok("landed".into()));
    let (hop, landed) = server.join().unwrap();
    assert!(hop.starts_with("GET /start") && landed.starts_with("GET /next"));
}
