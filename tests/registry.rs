//! Registries over HTTP: a registry precompiled and signed (`--sign-key`),
//! served by a small HTTP/1.1 file server this test starts on 127.0.0.1,
//! installed from by URL and run; every bad answer (dead server, 404,
//! timeout, a body over the cap, tampered bytes, a rewritten index, a missing
//! or foreign signature, a path leaving the registry, an unknown version)
//! refused with the store unchanged; the download cache and `--offline`; the
//! decision's registry step for a user without a toolchain; and Debian's
//! `minisign` verifying our signature.

mod common;

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
    let (fail, slow, claim) = {
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
    if status != 304 {
        stream.write_all(&body)?;
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
    let message: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
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
    let Ok(out) = Command::new("minisign")
        .arg("-Vm")
        .arg(p.dist.join("index.json"))
        .arg("-p")
        .arg(&p.public)
        .output()
    else {
        // .ci/run installs it; a machine without it cannot run this check.
        assert!(
            std::env::var_os("CI").is_none(),
            "minisign is not installed (apt-get install minisign)"
        );
        return;
    };
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
        serde_json::from_str(stdout(&out).trim()).unwrap()
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
