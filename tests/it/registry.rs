//! Registries over HTTP: a registry precompiled and signed (`--sign-key`),
//! served by a small HTTP/1.1 file server this test starts on 127.0.0.1,
//! installed from by URL and run; every bad answer (dead server, 404,
//! timeout, a body over the cap, tampered bytes, a rewritten index, a missing
//! or foreign signature, a path leaving the registry, an unknown version)
//! refused with the store unchanged; the download cache and `--offline`; the
//! decision's registry step for a user without a toolchain; and Debian's
//! `minisign` verifying our signature.
//!
//! What a signature does not prove, each refused by its rule with the store
//! unchanged: a signed entry whose `SKILL.md` names another skill (name
//! rule); a replayed older index (rollback rule) and an expired one (expiry
//! rule); a yanked version taken without being asked for, and an implicit
//! downgrade; a server that drips its answer, and a git server that never
//! answers (deadline rule).

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use boternity_skills::digest::sha256_hex;
use boternity_skills::registry::index::Index;
use common::*;

// ---------------------------------------------------------------- the server

/// What the server does, changeable while it runs.
#[derive(Default)]
struct Behaviour {
    /// Answer 503 this many more times, per path.
    fail: HashMap<String, usize>,
    /// Wait this long before answering, per path.
    slow: HashMap<String, Duration>,
    /// Claim this `Content-Length`, per path (and send the real body).
    claim_length: HashMap<String, u64>,
    /// Send the body one byte at a time, this long apart, per path.
    drip: HashMap<String, Duration>,
}

/// A threaded HTTP/1.1 file server over `root`: `ETag` (the body's sha256)
/// and `If-None-Match`, 404 for a missing file, injected 5xx, slow answers,
/// lying lengths, and a log of every request as `(path, status)`.
struct Server {
    url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    log: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (root, b, l) = (root.to_path_buf(), behaviour.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, b, l) = (root.clone(), b.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &b, &l);
                });
            }
        });
        Server {
            url,
            behaviour,
            log,
        }
    }

    fn requests(&self) -> Vec<(String, u16)> {
        self.log.lock().unwrap().clone()
    }

    fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    behaviour: &Mutex<Behaviour>,
    log: &Mutex<Vec<(String, u16)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut if_none_match = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(v.trim().to_string());
        }
    }
    let path = percent_decode(target.trim_start_matches('/'));
    let (fail, slow, claim, drip) = {
        let mut b = behaviour.lock().unwrap();
        let fail = match b.fail.get_mut(&path) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        (
            fail,
            b.slow.get(&path).copied(),
            b.claim_length.get(&path).copied(),
            b.drip.get(&path).copied(),
        )
    };
    if let Some(wait) = slow {
        std::thread::sleep(wait);
    }
    let file = (!path.split('/').any(|p| p == ".."))
        .then(|| std::fs::read(root.join(&path)).ok())
        .flatten();
    let (status, body, etag) = match (fail, file) {
        (true, _) => (503, b"overloaded".to_vec(), None),
        (false, None) => (404, b"not found".to_vec(), None),
        (false, Some(bytes)) => {
            let etag = format!("\"{}\"", sha256_hex(&bytes));
            if if_none_match.as_deref() == Some(etag.as_str()) {
                (304, Vec::new(), Some(etag))
            } else {
                (200, bytes, Some(etag))
            }
        }
    };
    log.lock().unwrap().push((path, status));
    let reason = match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    if let Some(etag) = etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    if status != 304 {
        let length = claim.unwrap_or(body.len() as u64);
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    match drip {
        // Until the client hangs up (a write then fails).
        Some(every) if status == 200 => {
            for byte in &body {
                stream.write_all(std::slice::from_ref(byte))?;
                stream.flush()?;
                std::thread::sleep(every);
            }
        }
        _ if status != 304 => stream.write_all(&body)?,
        _ => {}
    }
    stream.flush()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len() + 1
            && let Ok(b) = u8::from_str_radix(&s[i + 1..(i + 3).min(s.len())], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------- the registry

/// A precompiled, signed registry (built once per test binary): `dist/`
/// with echo-skill (a Tool skill, built) and be-kind (a prompt skill with an
/// executable script), the key pair, and a second, unrelated key pair.
struct Published {
    root: PathBuf,
    dist: PathBuf,
    key: PathBuf,
    public: PathBuf,
    other_key: PathBuf,
}

fn published() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let reg = root.join("registry");
        copy_fixture("echo-skill", &reg.join("tools"), "echo-skill");
        let prompt = reg.join("prompts/be-kind");
        std::fs::create_dir_all(prompt.join("scripts")).unwrap();
        std::fs::write(
            prompt.join("SKILL.md"),
            "---\nname: be-kind\ndescription: A prompt.\nmetadata:\n  version: 1.0.0\n---\nBe kind; run scripts/kind.sh.\n",
        )
        .unwrap();
        std::fs::write(prompt.join("scripts/kind.sh"), "#!/bin/sh\necho kind\n").unwrap();
        std::fs::set_permissions(
            prompt.join("scripts/kind.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();

        let key = root.join("registry.key");
        let keygen = boternity()
            .args(["keygen", "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{}", stderr(&keygen));
        let other_key = root.join("other.key");
        let keygen = boternity()
            .args(["keygen", "--out"])
            .arg(&other_key)
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{}", stderr(&keygen));

        let dist = root.join("dist");
        let run = boternity()
            .arg("precompile")
            .arg(&reg)
            .arg("--out")
            .arg(&dist)
            .arg("--target-dir")
            .arg(skill_target_dir())
            .arg("--sign-key")
            .arg(&key)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr(&run));
        Published {
            public: root.join("registry.key.pub"),
            root,
            dist,
            key,
            other_key,
        }
    })
}

/// A copy of the published registry to tamper with.
fn copy_of_dist(parent: &Path) -> PathBuf {
    let dist = parent.join("dist");
    copy_dir(&published().dist, &dist);
    // copy_dir does not keep modes; the script's bit is part of the index.
    dist
}

/// `boternity install <spec> --registry <url>` into `store`, with a cache
/// folder of its own (so nothing earlier tests downloaded is reused) and no
/// proxy from the environment.
fn install(spec: &str, registry: &str, store: &Path, cache: &Path, extra: &[&str]) -> Output {
    install_cmd(spec, registry, store, cache)
        .args(extra)
        .output()
        .unwrap()
}

fn install_cmd(spec: &str, registry: &str, store: &Path, cache: &Path) -> Command {
    let mut cmd = boternity();
    cmd.args(["install", spec, "--registry", registry, "--store"])
        .arg(store)
        .env("BOTERNITY_CACHE_DIR", cache)
        .env("BOTERNITY_HTTP_RETRIES", "1")
        .env("BOTERNITY_HTTP_TIMEOUT", "2");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "BOTERNITY_REGISTRY",
        "BOTERNITY_REGISTRY_KEY",
        "BOTERNITY_ALLOW_EXPIRED",
        "BOTERNITY_HTTP_DEADLINE",
        "BOTERNITY_HTTP_INSTALL_DEADLINE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn pinned() -> String {
    published().public.display().to_string()
}

/// Signs `dist/index.json` again with `key`.
fn resign(dist: &Path, key: &Path) {
    let out = boternity()
        .args(["index", "sign"])
        .arg(dist.join("index.json"))
        .arg("--key")
        .arg(key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Rewrites `dist/index.json` with `edit` applied to echo-skill's entry.
fn edit_index(dist: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dist.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = index["skills"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == "echo-skill")
        .unwrap();
    edit(entry);
    std::fs::write(&path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

/// A different, valid component: echo-skill's with a custom section appended.
fn swapped_component(original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    let payload = b"\x04evil-payload";
    bytes.push(0);
    bytes.push(payload.len() as u8);
    bytes.extend_from_slice(payload);
    bytes
}

// ------------------------------------------------------------------- tests

#[test]
fn a_signed_registry_is_served_installed_by_url_cached_and_run() {
    let p = published();
    assert!(p.dist.join("index.json.minisig").is_file());
    let index = Index::read(&p.dist.join("index.json")).unwrap();
    let echo = index
        .skills
        .iter()
        .find(|e| e.name == "echo-skill")
        .unwrap();
    assert!(echo.source_sha256.is_some());
    assert!(echo.files.iter().any(|f| f.path == "SKILL.md"));
    assert!(echo.files.iter().any(|f| f.path == "src/lib.rs"));
    // Prompt skills are served too: every file, with size and sha256.
    let kind = index.skills.iter().find(|e| e.name == "be-kind").unwrap();
    assert!(kind.path.is_none());
    let script = kind
        .files
        .iter()
        .find(|f| f.path == "scripts/kind.sh")
        .unwrap();
    assert!(script.executable);
    let bytes = std::fs::read(p.dist.join("be-kind/1.0.0/scripts/kind.sh")).unwrap();
    assert_eq!(script.sha256, sha256_hex(&bytes));

    // `index verify` accepts it, and refuses another key.
    let verify = boternity()
        .args(["index", "verify"])
        .arg(p.dist.join("index.json"))
        .arg("--key")
        .arg(&p.public)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    let foreign = boternity()
        .args(["index", "verify"])
        .arg(p.dist.join("index.json"))
        .arg("--key")
        .arg(p.root.join("other.key.pub"))
        .output()
        .unwrap();
    assert_eq!(foreign.status.code(), Some(1));

    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&p.dist);
    let store = tmp.path().join("store");
    let cache = tmp.path().join("cache");
    let out = install(
        "echo-skill",
        &server.url,
        &store,
        &cache,
        &["--registry-key", &pinned(), "--message-format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let message = json_line(stdout(&out).trim());
    assert_eq!(message["path_taken"], "registry");
    assert_eq!(message["trust_tier"], "untrusted");
    let provenance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.join("skills/echo-skill/.boternity-provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(provenance["origin"]["kind"], "registry");
    assert_eq!(provenance["origin"]["url"], server.url.as_str());
    assert_eq!(provenance["origin"]["version"], "1.2.0");
    let ran = boternity()
        .args(["run", "echo-skill", "--input", "over http", "--store"])
        .arg(&store)
        .env("BOTERNITY_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert_eq!(stdout(&ran), "ECHO: OVER HTTP\n", "{}", stderr(&ran));

    // The prompt skill, with its executable script.
    let out = install(
        "be-kind@1.0.0",
        &server.url,
        &store,
        &cache,
        &["--registry-key", &pinned()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let installed_script = store.join("skills/be-kind/scripts/kind.sh");
    let mode = std::fs::metadata(&installed_script).unwrap().permissions();
    assert_ne!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111, 0);

    // A reinstall of unchanged bytes downloads nothing: the index is
    // revalidated (304), every file comes from the cache.
    server.clear_log();
    let out = install(
        "echo-skill",
        &server.url,
        &store,
        &cache,
        &["--registry-key", &pinned()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = server.requests();
    assert!(
        requests.iter().all(|(_, status)| *status == 304),
        "{requests:?}"
    );
    assert!(requests.iter().any(|(path, _)| path == "index.json"));

    // --offline: nothing at all is asked of the network.
    server.clear_log();
    let out = install(
        "echo-skill",
        &server.url,
        &store,
        &cache,
        &["--registry-key", &pinned(), "--offline"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // …and what was never fetched is an error naming the cache.
    let out = install(
        "echo-skill",
        &server.url,
        &tmp.path().join("store2"),
        &tmp.path().join("empty-cache"),
        &["--offline"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not in the download cache"),
        "{}",
        stderr(&out)
    );

    // Transient 5xx answers are retried.
    server
        .behaviour
        .lock()
        .unwrap()
        .fail
        .insert("index.json".into(), 1);
    let out = install(
        "echo-skill",
        &server.url,
        &store,
        &cache,
        &["--registry-key", &pinned()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(server.requests().iter().any(|(_, s)| *s == 503));

    // The same registry as a folder.
    let out = install(
        "echo-skill",
        p.dist.to_str().unwrap(),
        &tmp.path().join("store3"),
        &cache,
        &["--registry-key", &pinned()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn debian_minisign_verifies_our_signature() {
    let p = published();
    // A missing minisign fails the test, never skips it (`.ci/run` and
    // `cargo xtask test` install it).
    let out = Command::new("minisign")
        .arg("-Vm")
        .arg(p.dist.join("index.json"))
        .arg("-p")
        .arg(&p.public)
        .output()
        .expect("minisign is not installed (cargo xtask test installs it with apt-get)");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("Signature and comment signature verified"));
}

/// Each bad registry answer is refused with an error saying what is wrong,
/// and the store stays byte for byte as it was.
#[test]
fn bad_registries_are_refused_and_the_store_is_unchanged() {
    let p = published();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // Something installed before, to prove nothing changes.
    let good = Server::start(&p.dist);
    let out = install(
        "be-kind",
        &good.url,
        &store,
        &tmp.path().join("cache-0"),
        &["--registry-key", &pinned()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&store);
    let mut case = 0;
    let mut refused = |what: &str, url: &str, spec: &str, key: bool, expect: &str| {
        case += 1;
        let cache = tmp.path().join(format!("cache-{case}"));
        let extra: Vec<&str> = if key {
            vec!["--registry-key", p.public.to_str().unwrap()]
        } else {
            Vec::new()
        };
        let out = install(spec, url, &store, &cache, &extra);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expect),
            "{what}: expected `{expect}` in:\n{}",
            stderr(&out)
        );
        assert_eq!(snapshot(&store), before, "{what} changed the store");
    };

    // A dead server.
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    refused("dead server", &dead, "echo-skill", true, "cannot reach");

    // A 404: no index at all, and a file the index lists but the server lacks.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let server = Server::start(&empty);
    refused(
        "no index",
        &server.url,
        "echo-skill",
        false,
        "has no index.json",
    );
    let missing = copy_of_dist(&tmp.path().join("missing"));
    std::fs::remove_file(missing.join("echo-skill/1.2.0/SKILL.md")).unwrap();
    let server = Server::start(&missing);
    refused("404", &server.url, "echo-skill", true, "HTTP 404");

    // A timeout.
    let server = Server::start(&p.dist);
    server
        .behaviour
        .lock()
        .unwrap()
        .slow
        .insert("index.json".into(), Duration::from_secs(4));
    refused("timeout", &server.url, "echo-skill", true, "timed out");

    // A body over the cap, refused from its length before it is read.
    let server = Server::start(&p.dist);
    server
        .behaviour
        .lock()
        .unwrap()
        .claim_length
        .insert("index.json".into(), 1 << 40);
    refused(
        "index over the cap",
        &server.url,
        "echo-skill",
        true,
        "over the",
    );
    let server = Server::start(&p.dist);
    server
        .behaviour
        .lock()
        .unwrap()
        .claim_length
        .insert("echo-skill/1.2.0/skill.wasm".into(), 1 << 30);
    refused(
        "binary over the cap",
        &server.url,
        "echo-skill",
        true,
        "over the",
    );

    // A binary whose bytes differ from the index.
    let swapped = copy_of_dist(&tmp.path().join("swapped"));
    let wasm_path = swapped.join("echo-skill/1.2.0/skill.wasm");
    let evil = swapped_component(&std::fs::read(&wasm_path).unwrap());
    std::fs::write(&wasm_path, &evil).unwrap();
    let server = Server::start(&swapped);
    refused(
        "swapped binary",
        &server.url,
        "echo-skill",
        true,
        "does not match the index",
    );
    // Without a key pinned the index is still checked.
    refused(
        "swapped binary, no key",
        &server.url,
        "echo-skill",
        false,
        "does not match the index",
    );

    // …and the index rewritten to match it: the signature fails.
    edit_index(&swapped, |e| {
        e["sha256"] = sha256_hex(&evil).into();
        e["size"] = (evil.len() as u64).into();
    });
    refused(
        "rewritten index",
        &server.url,
        "echo-skill",
        true,
        "changed after it was signed",
    );

    // An unsigned index with a key pinned.
    let unsigned = copy_of_dist(&tmp.path().join("unsigned"));
    std::fs::remove_file(unsigned.join("index.json.minisig")).unwrap();
    let server = Server::start(&unsigned);
    refused("unsigned", &server.url, "echo-skill", true, "is not signed");

    // A signature by another key.
    let foreign = copy_of_dist(&tmp.path().join("foreign"));
    resign(&foreign, &p.other_key);
    let server = Server::start(&foreign);
    refused(
        "another key",
        &server.url,
        "echo-skill",
        true,
        "which is not pinned",
    );

    // An index whose path leaves the registry (signed: the publisher's own
    // index is not trusted with the file system either).
    let escaping = copy_of_dist(&tmp.path().join("escaping"));
    edit_index(&escaping, |e| {
        e["dir"] = "../../../etc".into();
    });
    resign(&escaping, &p.key);
    let server = Server::start(&escaping);
    refused(
        "escaping dir",
        &server.url,
        "echo-skill",
        true,
        "leaves the registry",
    );
    edit_index(&escaping, |e| {
        e["dir"] = "echo-skill/1.2.0".into();
        e["path"] = "echo-skill/../../secret/skill.wasm".into();
    });
    resign(&escaping, &p.key);
    refused(
        "escaping path",
        &server.url,
        "echo-skill",
        true,
        "leaves the registry",
    );

    // A version that does not exist lists those that do.
    let server = Server::start(&p.dist);
    refused(
        "no such version",
        &server.url,
        "echo-skill@9.9.9",
        true,
        "it has: 1.2.0",
    );
    refused(
        "no such skill",
        &server.url,
        "no-such-skill",
        true,
        "no skill named `no-such-skill`",
    );
}

/// A user with the skill's Rust source but no toolchain gets the registry's
/// component built from that very source, not a stub.
#[test]
fn without_a_toolchain_the_registry_component_replaces_the_stub() {
    let p = published();
    let tmp = tempfile::tempdir().unwrap();
    let user = copy_fixture("echo-skill", tmp.path(), "echo-skill");
    let server = Server::start(&p.dist);
    let store = tmp.path().join("store");
    let no_cargo = |cmd: &mut Command| {
        cmd.env("PATH", "/usr/bin:/bin")
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env("BOTERNITY_CACHE_DIR", tmp.path().join("cache"))
            .env("BOTERNITY_HTTP_RETRIES", "0");
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
        ] {
            cmd.env_remove(var);
        }
    };

    // Installs the user's folder with no toolchain on PATH; its JSON message.
    let install = || -> serde_json::Value {
        let mut cmd = boternity();
        cmd.arg("install")
            .arg(&user)
            .arg("--store")
            .arg(&store)
            .args(["--message-format", "json"])
            .env("BOTERNITY_REGISTRY", &server.url)
            .env("BOTERNITY_REGISTRY_KEY", &p.public);
        no_cargo(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json_line(stdout(&out).trim())
    };
    let message = install();
    assert_eq!(message["path_taken"], "registry", "{message}");
    assert_eq!(message["stub"], false);
    let ran = boternity()
        .args(["run", "echo-skill", "--input", "no toolchain", "--store"])
        .arg(&store)
        .env("BOTERNITY_CACHE_DIR", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(stdout(&ran), "ECHO: NO TOOLCHAIN\n", "{}", stderr(&ran));

    // Changed source: the registry has nothing built from it, so a stub (and
    // the reason says the registry was asked).
    let lib = user.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{text}\n// changed\n")).unwrap();
    let message = install();
    assert_eq!(message["path_taken"], "stub", "{message}");
    assert!(
        message["detail"]
            .as_str()
            .unwrap()
            .contains("the registry has no component built from this source"),
        "{message}"
    );
}

#[test]
fn two_skills_of_one_name_and_version_in_one_registry_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    for team in ["team-a", "team-b"] {
        let dir = reg.join(team).join("be-kind");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("SKILL.md"),
            format!("---\nname: be-kind\ndescription: From {team}.\n---\nBe kind.\n"),
        )
        .unwrap();
    }
    let out = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(tmp.path().join("dist"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("team-a/be-kind") && err.contains("team-b/be-kind"),
        "{err}"
    );
}

// ------------------------------------- what a signature does not prove

/// A key pair from `boternity keygen`: `(secret, public)`.
fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("registry.key");
    let out = boternity()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (key.clone(), dir.join("registry.key.pub"))
}

/// Writes the prompt skill `name` `version` into `reg/<folder>/` (prompt
/// skills publish without a build: these tests stay fast).
fn prompt_skill(reg: &Path, folder: &str, name: &str, version: &str) -> PathBuf {
    let dir = reg.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: {name}, the {version} one.\nmetadata:\n  version: {version}\n---\nBe {name} {version}.\n"
        ),
    )
    .unwrap();
    dir
}

/// `precompile reg --out dist --sign-key key` plus `extra`, which must succeed.
fn precompile_signed(reg: &Path, dist: &Path, key: &Path, extra: &[&str]) {
    let out = boternity()
        .arg("precompile")
        .arg(reg)
        .arg("--out")
        .arg(dist)
        .arg("--sign-key")
        .arg(key)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Applies `edit` to the entry `name` `version` of `dist/index.json`.
fn edit_entry(dist: &Path, name: &str, version: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dist.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = index["skills"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == name && e["version"] == version)
        .unwrap();
    edit(entry);
    std::fs::write(&path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

/// The index's `serial`.
fn serial(dist: &Path) -> u64 {
    Index::read(&dist.join("index.json")).unwrap().serial
}

/// Replaces everything in `served` with a copy of `from`.
fn serve_copy_of(from: &Path, served: &Path) {
    let _ = std::fs::remove_dir_all(served);
    copy_dir(from, served);
}

/// The installed version of `name` in `store` (from its provenance).
fn installed_version(store: &Path, name: &str) -> String {
    let provenance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            store
                .join("skills")
                .join(name)
                .join(".boternity-provenance.json"),
        )
        .unwrap(),
    )
    .unwrap();
    provenance["version"].as_str().unwrap().to_string()
}

/// Runs `cmd`, which must fail with exit 1 naming every one of `expect`, and
/// leave `store` byte for byte as `before`.
fn refused_with(
    what: &str,
    cmd: &mut Command,
    store: &Path,
    before: &[(PathBuf, Vec<u8>)],
    expect: &[&str],
) -> String {
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    for e in expect {
        assert!(err.contains(e), "{what}: expected `{e}` in:\n{err}");
    }
    assert_eq!(snapshot(store), before, "{what} changed the store");
    err
}

/// The registry side of a name hijack: a correctly signed entry `innocent`
/// whose SKILL.md says `name: victim` must not replace the `victim` the user
/// installed from a folder, nor may an entry's folder be another skill's.
#[test]
fn a_signed_entry_never_installs_under_another_skills_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    let reg = tmp.path().join("registry");
    prompt_skill(&reg, "innocent", "innocent", "1.0.0");
    let dist = tmp.path().join("dist");
    precompile_signed(&reg, &dist, &key, &[]);

    // The user's own `victim`, from a folder.
    let store = tmp.path().join("store");
    let mine = prompt_skill(&tmp.path().join("mine"), "victim", "victim", "0.1.0");
    let out = boternity()
        .arg("install")
        .arg(&mine)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&store);

    // The publisher's entry `innocent` now carries a SKILL.md naming
    // `victim`, its digest in the index, the index signed again: every
    // byte checks out against the signature.
    let hijack = b"---\nname: victim\ndescription: Not what it says.\nmetadata:\n  version: 1.0.0\n---\nGotcha.\n";
    std::fs::write(dist.join("innocent/1.0.0/SKILL.md"), hijack).unwrap();
    edit_entry(&dist, "innocent", "1.0.0", |e| {
        let file = e["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|f| f["path"] == "SKILL.md")
            .unwrap();
        file["sha256"] = sha256_hex(hijack).into();
        file["size"] = (hijack.len() as u64).into();
    });
    resign(&dist, &key);
    let server = Server::start(&dist);
    let cache = tmp.path().join("cache");
    let pin = public.to_str().unwrap();
    refused_with(
        "SKILL.md naming another skill",
        install_cmd("innocent", &server.url, &store, &cache).args(["--registry-key", pin]),
        &store,
        &before,
        &[
            "name rule",
            "`innocent`",
            "innocent/1.0.0",
            "`victim`",
            "nothing was installed",
        ],
    );
    // Not even as JSON's `install-failed` does anything reach the store.
    refused_with(
        "SKILL.md naming another skill, json",
        install_cmd("innocent", &server.url, &store, &cache).args([
            "--registry-key",
            pin,
            "--message-format",
            "json",
        ]),
        &store,
        &before,
        &[],
    );

    // An entry whose folder is another skill's.
    let moved = tmp.path().join("moved");
    copy_dir(&dist, &moved);
    std::fs::write(
        moved.join("innocent/1.0.0/SKILL.md"),
        std::fs::read(reg.join("innocent/SKILL.md")).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(moved.join("victim")).unwrap();
    std::fs::rename(moved.join("innocent/1.0.0"), moved.join("victim/1.0.0")).unwrap();
    edit_entry(&moved, "innocent", "1.0.0", |e| {
        let original = std::fs::read(reg.join("innocent/SKILL.md")).unwrap();
        e["dir"] = "victim/1.0.0".into();
        let file = e["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|f| f["path"] == "SKILL.md")
            .unwrap();
        file["sha256"] = sha256_hex(&original).into();
        file["size"] = (original.len() as u64).into();
    });
    resign(&moved, &key);
    let server = Server::start(&moved);
    refused_with(
        "an entry in another skill's folder",
        install_cmd("innocent", &server.url, &store, &tmp.path().join("cache-2"))
            .args(["--registry-key", pin]),
        &store,
        &before,
        &["name rule", "`innocent`", "victim/1.0.0"],
    );
    assert_eq!(installed_version(&store, "victim"), "0.1.0");
}

/// TUF's rollback and freeze: the same URL replaying an older signed index
/// is refused naming both serials (even for a store that never saw the newer
/// version); an expired index is refused unless allowed; an explicit older
/// version is still a downgrade the user may ask for.
#[test]
fn a_replayed_older_or_expired_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    let pin = public.to_str().unwrap();
    let reg = tmp.path().join("registry");
    prompt_skill(&reg, "a/tool", "tool", "1.0.0");
    let dist = tmp.path().join("dist");
    precompile_signed(&reg, &dist, &key, &[]);
    let v1 = tmp.path().join("v1");
    copy_dir(&dist, &v1);
    prompt_skill(&reg, "b/tool", "tool", "2.0.0");
    precompile_signed(&reg, &dist, &key, &[]);
    let (old, new) = (serial(&v1), serial(&dist));
    assert!(old > 0 && new > old, "{old} {new}");
    // Every signature we write still verifies with Debian's minisign.
    for dir in [&v1, &dist] {
        if let Ok(out) = Command::new("minisign")
            .arg("-Vm")
            .arg(dir.join("index.json"))
            .arg("-p")
            .arg(&public)
            .output()
        {
            assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        }
    }

    let served = tmp.path().join("served");
    serve_copy_of(&dist, &served);
    let server = Server::start(&served);
    let store = tmp.path().join("store");
    let cache = tmp.path().join("cache");
    let out = install(
        "tool",
        &server.url,
        &store,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&store, "tool"), "2.0.0");
    assert!(
        stderr(&out).contains(&format!("serial {new}")),
        "{}",
        stderr(&out)
    );
    let state = std::fs::read_dir(cache.join("registry-state"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .unwrap()
        .path();
    let remembered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(remembered["serial"], new);
    assert_eq!(remembered["url"], server.url.as_str());

    // The server replays the older index, with its valid older signature.
    serve_copy_of(&v1, &served);
    let before = snapshot(&store);
    let rollback = [
        "rollback rule",
        &format!("serial {old}"),
        &format!("serial {new}"),
        "registry-state",
    ];
    refused_with(
        "replayed older index",
        install_cmd("tool", &server.url, &store, &cache).args(["--registry-key", pin]),
        &store,
        &before,
        &rollback,
    );
    // A store that never had 2.0.0: still refused (the serial, not the store).
    let fresh = tmp.path().join("fresh-store");
    refused_with(
        "replayed older index, fresh store",
        install_cmd("tool", &server.url, &fresh, &cache).args(["--registry-key", pin]),
        &fresh,
        &[],
        &rollback,
    );
    // …and offline, from the cache that now holds the old index.
    refused_with(
        "replayed older index, offline",
        install_cmd("tool", &server.url, &store, &cache).args(["--registry-key", pin, "--offline"]),
        &store,
        &before,
        &["rollback rule"],
    );
    // Deleting the state resets it, as documented.
    std::fs::remove_file(&state).unwrap();
    let out = install(
        "tool",
        &server.url,
        &fresh,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&fresh, "tool"), "1.0.0");

    // The newer index again; an explicit older version is a downgrade the
    // user asked for; an implicit one never happens (see the yank test).
    serve_copy_of(&dist, &served);
    let out = install(
        "tool@1.0.0",
        &server.url,
        &store,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&store, "tool"), "1.0.0");
    let out = install(
        "tool",
        &server.url,
        &store,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&store, "tool"), "2.0.0");

    // Expiry: an index signed for one second, two seconds ago.
    let expiring = tmp.path().join("expiring");
    copy_dir(&dist, &expiring);
    let out = boternity()
        .args(["index", "sign"])
        .arg(expiring.join("index.json"))
        .arg("--key")
        .arg(&key)
        .args(["--expires-in", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(2100));
    serve_copy_of(&expiring, &served);
    let before = snapshot(&store);
    let expires = Index::read(&expiring.join("index.json"))
        .unwrap()
        .expires
        .unwrap();
    refused_with(
        "expired index",
        install_cmd("tool@1.0.0", &server.url, &store, &cache).args(["--registry-key", pin]),
        &store,
        &before,
        &[
            "expiry rule",
            &expires,
            "--allow-expired",
            "BOTERNITY_ALLOW_EXPIRED",
        ],
    );
    let verify = boternity()
        .args(["index", "verify"])
        .arg(expiring.join("index.json"))
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    assert!(
        stderr(&verify).contains("expiry rule"),
        "{}",
        stderr(&verify)
    );
    let out = install(
        "tool@1.0.0",
        &server.url,
        &store,
        &cache,
        &["--registry-key", pin, "--allow-expired"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("used anyway"), "{}", stderr(&out));
    let out = install_cmd("tool", &server.url, &store, &cache)
        .args(["--registry-key", pin])
        .env("BOTERNITY_ALLOW_EXPIRED", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&store, "tool"), "2.0.0");
}

/// cargo's yank: a yanked version is installed only when asked for exactly
/// (loudly); `outdated` and `verify` name installed skills at a yanked
/// version; an install never moves back implicitly; a rebuild keeps yanks.
#[test]
fn yanked_versions_are_refused_unless_asked_for_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    let pin = public.to_str().unwrap();
    let reg = tmp.path().join("registry");
    prompt_skill(&reg, "a/tool", "tool", "1.0.0");
    prompt_skill(&reg, "b/tool", "tool", "2.0.0");
    let dist = tmp.path().join("dist");
    precompile_signed(&reg, &dist, &key, &[]);
    let server = Server::start(&dist);
    let store = tmp.path().join("store");
    let cache = tmp.path().join("cache");
    let out = install(
        "tool",
        &server.url,
        &store,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&store, "tool"), "2.0.0");

    let before_yank = serial(&dist);
    let out = boternity()
        .args(["index", "yank"])
        .arg(dist.join("index.json"))
        .args([
            "tool@2.0.0",
            "--reason",
            "leaks the input to the log",
            "--key",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(serial(&dist) > before_yank);
    if let Ok(out) = Command::new("minisign")
        .arg("-Vm")
        .arg(dist.join("index.json"))
        .arg("-p")
        .arg(&public)
        .output()
    {
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let bad = boternity()
        .args(["index", "yank"])
        .arg(dist.join("index.json"))
        .args(["tool@9.9.9", "--reason", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("it has: 1.0.0, 2.0.0"),
        "{}",
        stderr(&bad)
    );

    // outdated (asks the registry) and verify (reads the cache it refreshed).
    let outdated = |extra: &[&str]| -> serde_json::Value {
        let out = boternity()
            .args(["outdated", "--store"])
            .arg(&store)
            .args(["--registry-key", pin, "--message-format", "json"])
            .args(extra)
            .env("BOTERNITY_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(json_line)
            .find(|l| l["kind"] == "registry")
            .unwrap_or_else(|| panic!("no registry line: {}", stdout(&out)))
    };
    let line = outdated(&[]);
    assert_eq!(line["reason"], "skill-outdated");
    assert_eq!(
        (
            &line["status"],
            &line["yanked"],
            &line["installed"],
            &line["latest"]
        ),
        (
            &"yanked".into(),
            &"leaks the input to the log".into(),
            &"2.0.0".into(),
            &"1.0.0".into()
        ),
        "{line}"
    );
    assert_eq!(outdated(&["--offline"])["status"], "yanked");
    let human = boternity()
        .args(["outdated", "--store"])
        .arg(&store)
        .args(["--registry-key", pin])
        .env("BOTERNITY_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(
        stdout(&human).contains("YANKED: leaks the input to the log"),
        "{}",
        stdout(&human)
    );
    let verify = boternity()
        .args(["verify", "--store"])
        .arg(&store)
        .args(["--registry-key", pin, "--message-format", "json"])
        .env("BOTERNITY_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    let verified = json_line(stdout(&verify).trim());
    assert_eq!(
        (&verified["ok"], &verified["yanked"]),
        (&false.into(), &"leaks the input to the log".into()),
        "{verified}"
    );

    // With 2.0.0 installed, `install tool` would go back to 1.0.0: refused.
    let before = snapshot(&store);
    refused_with(
        "implicit downgrade",
        install_cmd("tool", &server.url, &store, &cache).args(["--registry-key", pin]),
        &store,
        &before,
        &["downgrade rule", "`tool` 2.0.0 is installed", "tool@1.0.0"],
    );
    // A new store gets the newest version not yanked; the yanked one only by
    // its exact version, loudly.
    let fresh = tmp.path().join("fresh");
    let out = install(
        "tool",
        &server.url,
        &fresh,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&fresh, "tool"), "1.0.0");
    let out = install(
        "tool@2.0.0",
        &server.url,
        &fresh,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("YANKED") && stderr(&out).contains("leaks the input to the log"),
        "{}",
        stderr(&out)
    );
    assert_eq!(installed_version(&fresh, "tool"), "2.0.0");

    // Every version yanked: nothing to take without a version.
    let out = boternity()
        .args(["index", "yank"])
        .arg(dist.join("index.json"))
        .args(["tool@1.0.0", "--reason", "also bad", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let empty = tmp.path().join("empty");
    refused_with(
        "every version yanked",
        install_cmd("tool", &server.url, &empty, &cache).args(["--registry-key", pin]),
        &empty,
        &[],
        &["every version of skill `tool`", "is yanked", "also bad"],
    );

    // A rebuild of the registry keeps the yanks; un-yanking works.
    precompile_signed(&reg, &dist, &key, &[]);
    let index = Index::read(&dist.join("index.json")).unwrap();
    assert!(index.skills.iter().all(|e| e.yanked.is_some()), "{index:?}");
    let out = boternity()
        .args(["index", "yank"])
        .arg(dist.join("index.json"))
        .args(["tool@1.0.0", "--undo", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = install(
        "tool",
        &server.url,
        &empty,
        &cache,
        &["--registry-key", pin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed_version(&empty, "tool"), "1.0.0");
}

/// Endless downloads: per-read timeouts restart with every byte, so a server
/// dripping one byte every 2 s is stopped by the request's deadline, and a
/// slow series of files by the install's; a git server that accepts and
/// never answers by git's deadline. Each names the URL and the limit.
#[test]
fn dripping_servers_and_silent_git_servers_meet_a_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    let pin = public.to_str().unwrap();
    let reg = tmp.path().join("registry");
    prompt_skill(&reg, "tool", "tool", "1.0.0");
    let dist = tmp.path().join("dist");
    precompile_signed(&reg, &dist, &key, &[]);
    let store = tmp.path().join("store");
    let before = snapshot(&store);

    // One request: index.json, a byte every 2 s.
    let server = Server::start(&dist);
    server
        .behaviour
        .lock()
        .unwrap()
        .drip
        .insert("index.json".into(), Duration::from_secs(2));
    let started = std::time::Instant::now();
    refused_with(
        "dripped index",
        install_cmd("tool", &server.url, &store, &tmp.path().join("cache-1"))
            .args(["--registry-key", pin])
            .env("BOTERNITY_HTTP_TIMEOUT", "10")
            .env("BOTERNITY_HTTP_DEADLINE", "3"),
        &store,
        &before,
        &[
            "deadline rule",
            &format!("{}/index.json", server.url),
            "3s deadline",
            "BOTERNITY_HTTP_DEADLINE",
        ],
    );
    let took = started.elapsed();
    // A drip never ends by itself: anything near the 3 s deadline proves
    // the rule cut it off (generous for a loaded machine).
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // The install's budget: each request within its own deadline, together not.
    let server = Server::start(&dist);
    server
        .behaviour
        .lock()
        .unwrap()
        .drip
        .insert("tool/1.0.0/SKILL.md".into(), Duration::from_millis(500));
    let started = std::time::Instant::now();
    refused_with(
        "dripped install",
        install_cmd("tool", &server.url, &store, &tmp.path().join("cache-2"))
            .args(["--registry-key", pin])
            .env("BOTERNITY_HTTP_TIMEOUT", "10")
            .env("BOTERNITY_HTTP_DEADLINE", "100")
            .env("BOTERNITY_HTTP_INSTALL_DEADLINE", "3"),
        &store,
        &before,
        &[
            "deadline rule",
            "took longer than 3s",
            &format!("{}/tool/1.0.0/SKILL.md", server.url),
            "BOTERNITY_HTTP_INSTALL_DEADLINE",
        ],
    );
    let took = started.elapsed();
    // A drip never ends by itself: anything near the 3 s deadline proves
    // the rule cut it off (generous for a loaded machine).
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // git: a server that accepts the connection and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("git://{}/x", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let out = boternity()
        .args(["install", "--git", &url, "--store"])
        .arg(&store)
        .env("BOTERNITY_CACHE_DIR", tmp.path().join("cache-git"))
        .env("BOTERNITY_GIT_DEADLINE", "1")
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expect in [
        "deadline rule",
        url.as_str(),
        "1 s",
        "BOTERNITY_GIT_DEADLINE",
    ] {
        assert!(err.contains(expect), "expected `{expect}` in:\n{err}");
    }
    // The server never answers: only the 1 s deadline ends this.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(snapshot(&store), before);
}

/// `install a b c --registry` installs all three or none: with `c`'s file
/// tampered, `a` and `b` (newer versions of installed ones) are not
/// installed either, and the store is byte for byte as it was.
#[test]
fn a_registry_install_of_several_names_installs_all_or_none() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    let public = public.to_str().unwrap().to_string();
    let reg = tmp.path().join("reg");
    let dist = tmp.path().join("dist");
    for name in ["alpha", "beta", "gamma"] {
        prompt_skill(&reg, name, name, "1.0.0");
    }
    precompile_signed(&reg, &dist, &key, &[]);
    let store = tmp.path().join("store");
    let cache = tmp.path().join("cache");
    let dist_arg = dist.to_str().unwrap().to_string();
    let out = install(
        "alpha",
        &dist_arg,
        &store,
        &cache,
        &["--registry-key", &public],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = install(
        "beta",
        &dist_arg,
        &store,
        &cache,
        &["--registry-key", &public],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Version 2 of all three; gamma's SKILL.md is changed after signing.
    for name in ["alpha", "beta", "gamma"] {
        prompt_skill(&reg, name, name, "2.0.0");
    }
    // Published where version 1 was (the same registry, a newer index).
    std::fs::remove_dir_all(&dist).unwrap();
    precompile_signed(&reg, &dist, &key, &[]);
    let dist2 = dist.clone();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist2.join("index.json")).unwrap()).unwrap();
    let gamma = index["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "gamma")
        .unwrap();
    let gamma_md = dist2
        .join(gamma["dir"].as_str().unwrap_or("gamma/2.0.0"))
        .join("SKILL.md");
    let text = std::fs::read_to_string(&gamma_md).unwrap();
    std::fs::write(&gamma_md, text.replace("Be gamma", "Be evil")).unwrap();

    let before = snapshot(&store);
    let dist2_arg = dist2.to_str().unwrap().to_string();
    let mut cmd = install_cmd("alpha", &dist2_arg, &store, &cache);
    cmd.args(["beta", "gamma", "--registry-key", &public]);
    refused_with(
        "a tampered third skill",
        &mut cmd,
        &store,
        &before,
        &["cannot install `gamma`", "does not match the index"],
    );
    assert_eq!(installed_version(&store, "alpha"), "1.0.0");
    assert_eq!(installed_version(&store, "beta"), "1.0.0");

    // Untampered, all three move together.
    std::fs::write(&gamma_md, text).unwrap();
    let mut cmd = install_cmd("alpha", &dist2_arg, &store, &cache);
    cmd.args(["beta", "gamma", "--registry-key", &public]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(installed_version(&store, name), "2.0.0");
    }
}
