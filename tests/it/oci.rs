//! Skills in OCI registries, end to end against a real registry (Debian's
//! `docker-registry`, started on 127.0.0.1 with its storage in a temporary
//! folder): push a Tool skill and a prompt skill, install each by tag and by
//! digest, run the Tool skill, reinstall from the cache offline, sync a lock
//! by digest, push signed and install with a pinned key; the registry behind
//! htpasswd basic auth and behind TLS with a CA the test makes; Debian's
//! `skopeo` reads what boternity pushed and copies it to a second registry
//! that boternity installs from; `precompile --push`. Then every bad answer
//! (a tampered blob or manifest, caps, unknown media types, a path leaving
//! the skill folder, 401/403, an unknown tag, a dead or endlessly slow
//! registry, a missing or foreign signature) is refused with a clear error
//! and the store byte for byte as it was: a small fake registry serves what
//! a real one would not.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boternity_skills::oci::manifest::{self, Artifact, Descriptor};
use common::{boternity, copy_fixture, json_line, skill_target_dir, snapshot, stderr, stdout};

// ----------------------------------------------------------- a real registry

/// Fails the test when `program` is not on PATH: a missing tool is a
/// failure, never a skip (`.ci/run` and `cargo xtask test` install it).
fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is not installed (cargo xtask test installs it with apt-get)"
    );
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a test registry is reached.
enum Access {
    Open,
    /// htpasswd basic auth with this user and password.
    Basic(&'static str, &'static str),
    /// TLS with a server certificate of a CA the test made (its PEM file).
    Tls,
}

/// `docker-registry serve` on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    host: String,
    /// The CA certificate, for [`Access::Tls`].
    ca: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Fails the test when docker-registry is not installed.
    fn start(access: Access) -> Registry {
        require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        let mut ca = None;
        match access {
            Access::Open => {}
            Access::Basic(user, password) => {
                require("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", stderr(&out));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                ));
            }
            Access::Tls => {
                let (cert, key, ca_cert) = make_certificates(dir.path());
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                ca = Some(ca_cert);
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            ca,
            _dir: dir,
        };
        // Up once it accepts connections.
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.host).is_err() {
            assert!(Instant::now() < until, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (the openssl
/// CLI): `(server cert, server key, CA cert)`.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=boternity test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("ca.crt"),
    )
}

// ----------------------------------------------------------------- helpers

/// `boternity` with its own cache folder (the download cache included).
fn bt(cache: &Path) -> Command {
    let mut cmd = boternity();
    cmd.env("BOTERNITY_CACHE_DIR", cache)
        .env_remove("BOTERNITY_OCI_USERNAME")
        .env_remove("BOTERNITY_OCI_PASSWORD")
        .env("DOCKER_CONFIG", cache.join("no-docker-config"));
    cmd
}

/// Builds with the tests' shared cache, whose cargo home the shared target
/// directory's dependencies were compiled from ([`skill_target_dir`]); what
/// the test checks of its own cache (downloads) comes from installs.
fn shared_build_cache(cmd: &mut Command) -> &mut Command {
    cmd.env("BOTERNITY_CACHE_DIR", common::cache_dir())
}

/// `boternity push <dir> <reference> --message-format json` (builds in the
/// tests' shared target directory): the `skill-pushed` message.
fn push(cache: &Path, dir: &Path, reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = push_output(bt(cache), dir, reference, extra);
    assert!(
        out.status.success(),
        "push {reference}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let message = json_line(stdout(&out).trim());
    assert_eq!(message["reason"], "skill-pushed", "{message}");
    message
}

fn push_output(mut cmd: Command, dir: &Path, reference: &str, extra: &[&str]) -> Output {
    shared_build_cache(&mut cmd)
        .arg("push")
        .arg(dir)
        .arg(reference)
        .arg("--target-dir")
        .arg(skill_target_dir())
        .args(["--message-format", "json"])
        .args(extra)
        .output()
        .unwrap()
}

/// `boternity install oci://<reference> --store <store>`.
fn install(cache: &Path, store: &Path, reference: &str, extra: &[&str]) -> Output {
    install_with(bt(cache), store, reference, extra)
}

/// [`install`] with `cmd` (a [`bt`] with variables of its own).
fn install_with(mut cmd: Command, store: &Path, reference: &str, extra: &[&str]) -> Output {
    cmd.arg("install")
        .arg(format!("oci://{reference}"))
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        stdout(out),
        stderr(out)
    );
}

/// The prompt skill `be-kind` (with a file in `references/`).
fn prompt_skill(parent: &Path, name: &str, version: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("references")).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: {name}, version {version}.\nmetadata:\n  skill-type: prompt\n  version: {version}\n---\nBe {name} ({version}).\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("references/tone.md"), "Warm.\n").unwrap();
    dir
}

/// A key pair from `boternity keygen`: `(secret, public)`.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let out = boternity()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert_ok(&out, "keygen");
    (key.clone(), dir.join(format!("{name}.pub")))
}

fn run_skill(store: &Path, name: &str, input: &str) -> String {
    let out = boternity()
        .args(["run", name, "--input", input, "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert_ok(&out, "run");
    stdout(&out)
}

// ------------------------------------------------------------------- tests

/// Push a Tool skill and a prompt skill, install each by tag and by digest,
/// run the Tool skill; a reinstall downloads nothing (offline works); a
/// lock's digest is what `sync` installs, whatever the tag says now; skopeo
/// reads the artifact and copies it to a second registry, which boternity
/// installs from.
#[test]
fn push_install_by_tag_and_digest_run_sync_and_skopeo() {
    let registry = Registry::start(Access::Open);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let host = &registry.host;

    // A Tool skill: without a tag, its version is the tag.
    let echo = push(
        &cache,
        &common::fixture("echo-skill"),
        &format!("oci://{host}/skills/echo-skill"),
        &[],
    );
    assert_eq!(echo["reference"], format!("{host}/skills/echo-skill:1.2.0"));
    let echo_digest = echo["digest"].as_str().unwrap().to_string();
    assert!(echo["uploaded"].as_u64().unwrap() >= 3, "{echo}");
    // Pushed again: every blob is there already, the digest the same.
    let again = push(
        &cache,
        &common::fixture("echo-skill"),
        &format!("{host}/skills/echo-skill:1.2.0"),
        &[],
    );
    assert_eq!(again["digest"], echo["digest"]);
    assert_eq!(again["uploaded"], 0, "{again}");

    let be_kind = prompt_skill(tmp.path(), "be-kind", "1.0.0");
    let kind = push(
        &cache,
        &be_kind,
        &format!("{host}/skills/be-kind:1.0.0"),
        &[],
    );
    let kind_digest = kind["digest"].as_str().unwrap().to_string();

    // By tag and by digest, each into a store of its own.
    let by_tag = tmp.path().join("by-tag");
    assert_ok(
        &install(
            &cache,
            &by_tag,
            &format!("{host}/skills/echo-skill:1.2.0"),
            &[],
        ),
        "install by tag",
    );
    assert!(run_skill(&by_tag, "echo-skill", "hello").contains("ECHO: HELLO"));
    assert_ok(
        &install(
            &cache,
            &by_tag,
            &format!("{host}/skills/be-kind:1.0.0"),
            &[],
        ),
        "prompt by tag",
    );
    let by_digest = tmp.path().join("by-digest");
    let fresh_cache = tmp.path().join("cache-2");
    let out = install(
        &fresh_cache,
        &by_digest,
        &format!("{host}/skills/echo-skill@{echo_digest}"),
        &["--message-format", "json"],
    );
    assert_ok(&out, "install by digest");
    let installed = json_line(stdout(&out).trim());
    assert_eq!(installed["origin"]["kind"], "oci", "{installed}");
    assert_eq!(installed["origin"]["digest"], echo_digest.as_str());
    assert!(run_skill(&by_digest, "echo-skill", "abc").contains("ECHO: ABC"));
    assert_ok(
        &install(
            &fresh_cache,
            &by_digest,
            &format!("{host}/skills/be-kind@{kind_digest}"),
            &[],
        ),
        "prompt by digest",
    );
    let skill_md =
        std::fs::read_to_string(by_digest.join("skills/be-kind/references/tone.md")).unwrap();
    assert_eq!(skill_md, "Warm.\n");

    // The lock records the reference and the digest.
    let lock = std::fs::read_to_string(by_tag.join("skills.lock")).unwrap();
    assert!(
        lock.contains("source = \"oci\"") && lock.contains(&echo_digest),
        "{lock}"
    );

    // A reinstall of the same artifact downloads nothing: offline works.
    let offline_store = tmp.path().join("offline");
    assert_ok(
        &install(
            &cache,
            &offline_store,
            &format!("{host}/skills/echo-skill:1.2.0"),
            &["--offline"],
        ),
        "offline install from the cache",
    );

    // The tag moves on; sync installs exactly the locked digest.
    let moved = prompt_skill(&tmp.path().join("v2"), "be-kind", "2.0.0");
    let v2 = push(&cache, &moved, &format!("{host}/skills/be-kind:1.0.0"), &[]);
    assert_ne!(v2["digest"], kind["digest"]);
    let synced = tmp.path().join("synced");
    let out = bt(&tmp.path().join("cache-3"))
        .args(["sync", "--lock"])
        .arg(by_tag.join("skills.lock"))
        .arg("--store")
        .arg(&synced)
        .output()
        .unwrap();
    assert_ok(&out, "sync");
    let md = std::fs::read_to_string(synced.join("skills/be-kind/SKILL.md")).unwrap();
    assert!(
        md.contains("version: 1.0.0"),
        "sync took the tag, not the digest: {md}"
    );
    assert!(run_skill(&synced, "echo-skill", "x").contains("ECHO: X"));

    // `outdated` sees the tag moved; `update` follows it; a digest install is pinned.
    let out = bt(&cache)
        .args(["outdated", "--message-format", "json", "--store"])
        .arg(&by_tag)
        .output()
        .unwrap();
    assert_ok(&out, "outdated");
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(json_line).collect();
    let kind_line = lines.iter().find(|l| l["name"] == "be-kind").unwrap();
    assert_eq!(kind_line["kind"], "oci", "{kind_line}");
    assert_eq!(kind_line["status"], "outdated", "{kind_line}");
    assert_eq!(kind_line["latest"], v2["digest"]);
    let echo_line = lines.iter().find(|l| l["name"] == "echo-skill").unwrap();
    assert_eq!(echo_line["status"], "up-to-date", "{echo_line}");
    let out = bt(&cache)
        .args(["update", "be-kind", "--store"])
        .arg(&by_tag)
        .output()
        .unwrap();
    assert_ok(&out, "update");
    let md = std::fs::read_to_string(by_tag.join("skills/be-kind/SKILL.md")).unwrap();
    assert!(
        md.contains("version: 2.0.0"),
        "update did not follow the tag: {md}"
    );
    let out = bt(&cache)
        .args(["outdated", "--message-format", "json", "--store"])
        .arg(&by_digest)
        .output()
        .unwrap();
    assert!(
        stdout(&out)
            .lines()
            .map(json_line)
            .all(|l| l["status"] == "pinned"),
        "{}",
        stdout(&out)
    );

    // A second client reads what boternity pushed, and copies it.
    require("skopeo");
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/skills/echo-skill:1.2.0"))
        .output()
        .unwrap();
    assert_ok(&out, "skopeo inspect");
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(raw["config"]["mediaType"], manifest::WASM_CONFIG);
    assert_eq!(raw["layers"][0]["mediaType"], manifest::WASM_LAYER);
    assert_eq!(raw["annotations"][manifest::VERSION], "1.2.0");
    let mirror = Registry::start(Access::Open);
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{host}/skills/echo-skill:1.2.0"))
        .arg(format!("docker://{}/mirror/echo-skill:1.2.0", mirror.host))
        .output()
        .unwrap();
    assert_ok(&out, "skopeo copy");
    let mirrored = tmp.path().join("mirrored");
    let out = install(
        &tmp.path().join("cache-4"),
        &mirrored,
        &format!("{}/mirror/echo-skill@{echo_digest}", mirror.host),
        &[],
    );
    assert_ok(&out, "install from the mirror by digest");
    assert!(run_skill(&mirrored, "echo-skill", "m").contains("ECHO: M"));
}

/// A registry behind htpasswd: push with --username and --password-stdin,
/// install with the CI variables and with Docker's config.json; no or wrong
/// credentials are a 401 said plainly, the store unchanged.
#[test]
fn basic_auth_registry() {
    let registry = Registry::start(Access::Basic("bot", "s3cret"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let host = &registry.host;
    let skill = prompt_skill(tmp.path(), "be-kind", "1.0.0");
    let reference = format!("{host}/team/be-kind:1.0.0");

    // No credentials: refused, saying how to give them.
    let out = push_output(bt(&cache), &skill, &reference, &[]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("no credentials were found"),
        "{}",
        stdout(&out)
    );

    let mut cmd = bt(&cache);
    cmd.stdin(Stdio::piped());
    let mut child = {
        cmd.arg("push")
            .arg(&skill)
            .arg(&reference)
            .args([
                "--username",
                "bot",
                "--password-stdin",
                "--message-format",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, "push with --password-stdin");

    let store = tmp.path().join("store");
    let mut cmd = bt(&cache);
    cmd.env("BOTERNITY_OCI_USERNAME", "bot")
        .env("BOTERNITY_OCI_PASSWORD", "s3cret");
    let out = install_with(cmd, &store, &reference, &[]);
    assert_ok(&out, "install with the CI variables");
    let before = snapshot(&store);

    // Docker's config.json, as `docker login` writes it.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = boternity_skills::oci::auth::base64_encode(b"bot:s3cret");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    let other_store = tmp.path().join("store-2");
    let mut cmd = bt(&tmp.path().join("cache-2"));
    cmd.env("DOCKER_CONFIG", &docker);
    let out = install_with(cmd, &other_store, &reference, &[]);
    assert_ok(&out, "install with Docker's config.json");

    // A credential helper named by config.json: found on PATH, given the
    // host on standard input.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-testhelper");
    let asked = tmp.path().join("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\ncat > {}\necho '{{\"ServerURL\":\"x\",\"Username\":\"bot\",\"Secret\":\"s3cret\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helped = tmp.path().join("helped");
    std::fs::create_dir_all(&helped).unwrap();
    std::fs::write(
        helped.join("config.json"),
        format!(r#"{{"credHelpers": {{"{host}": "testhelper"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = bt(&tmp.path().join("cache-helper"));
    cmd.env("DOCKER_CONFIG", &helped).env("PATH", &path);
    let out = install_with(cmd, &tmp.path().join("store-3"), &reference, &[]);
    assert_ok(&out, "install with a credential helper");
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), *host);

    // Without credentials, and with wrong ones: 401, the store unchanged.
    let out = install(&tmp.path().join("cache-3"), &store, &reference, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("HTTP 401") && stderr(&out).contains("no credentials were found"),
        "{}",
        stderr(&out)
    );
    let mut cmd = bt(&tmp.path().join("cache-4"));
    cmd.env("BOTERNITY_OCI_USERNAME", "bot")
        .env("BOTERNITY_OCI_PASSWORD", "wrong");
    let out = install_with(cmd, &store, &reference, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wrong user name or password"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&store), before);
}

/// A registry over TLS with a CA the test made: trusted with --ca-file,
/// refused without it (the store unchanged).
#[test]
fn tls_registry_with_a_generated_ca() {
    require("openssl");
    let registry = Registry::start(Access::Tls);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let ca = registry.ca.clone().unwrap();
    let reference = format!("{}/tls/echo-skill:1.2.0", registry.host);
    let ca_flag = ["--ca-file", ca.to_str().unwrap()];
    push(&cache, &common::fixture("echo-skill"), &reference, &ca_flag);
    let store = tmp.path().join("store");
    assert_ok(
        &install(&cache, &store, &reference, &ca_flag),
        "install over TLS",
    );
    assert!(run_skill(&store, "echo-skill", "tls").contains("ECHO: TLS"));
    let before = snapshot(&store);
    // Without the CA: the certificate is not trusted, and plain http is
    // never tried against a registry that speaks TLS.
    let out = install(&tmp.path().join("cache-2"), &store, &reference, &[]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("cannot reach") && text.contains("https://"),
        "{text}"
    );
    assert_eq!(snapshot(&store), before);
}

/// `push --sign-key`: the signature is a referrer of the manifest, under the
/// tag fallback on a registry without the referrers API; an install pinning
/// the key takes it, and refuses an unsigned artifact and one signed by
/// another key, the store unchanged.
#[test]
fn signed_pushes_and_pinned_installs() {
    let registry = Registry::start(Access::Open);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let host = &registry.host;
    let (key, public) = keygen(tmp.path(), "publisher.key");
    let (other, _) = keygen(tmp.path(), "other.key");
    let skill = prompt_skill(tmp.path(), "be-kind", "1.0.0");
    let signed = push(
        &cache,
        &skill,
        &format!("{host}/s/be-kind:1.0.0"),
        &["--sign-key", key.to_str().unwrap()],
    );
    let digest = signed["digest"].as_str().unwrap();
    assert!(signed["signature"].is_string(), "{signed}");
    // Where the signature lives: the tag fallback, whose manifest refers to the skill's.
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let out = bt(&cache)
        .arg("install")
        .arg(format!("oci://{host}/s/be-kind:{tag}"))
        .arg("--store")
        .arg(tmp.path().join("never"))
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("not a boternity skill's"),
        "a signature is not a skill: {}",
        stderr(&out)
    );

    let pin = ["--registry-key", public.to_str().unwrap()];
    let store = tmp.path().join("store");
    assert_ok(
        &install(&cache, &store, &format!("{host}/s/be-kind:1.0.0"), &pin),
        "signed install",
    );
    let before = snapshot(&store);

    let unsigned = prompt_skill(&tmp.path().join("u"), "unsigned", "1.0.0");
    push(&cache, &unsigned, &format!("{host}/s/unsigned:1.0.0"), &[]);
    let out = install(&cache, &store, &format!("{host}/s/unsigned:1.0.0"), &pin);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));

    let foreign = prompt_skill(&tmp.path().join("f"), "foreign", "1.0.0");
    push(
        &cache,
        &foreign,
        &format!("{host}/s/foreign:1.0.0"),
        &["--sign-key", other.to_str().unwrap()],
    );
    let out = install(&cache, &store, &format!("{host}/s/foreign:1.0.0"), &pin);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("which is not pinned"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&store), before);
}

/// `precompile --push REGISTRY/NAMESPACE`: every skill of a registry pushed
/// as NAMESPACE/<name>:<version>, each digest reported in JSON.
#[test]
fn precompile_pushes_a_registry() {
    let registry = Registry::start(Access::Open);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reg = tmp.path().join("registry");
    copy_fixture("echo-skill", &reg, "echo-skill");
    prompt_skill(&reg, "be-kind", "1.0.0");
    prompt_skill(&reg, "be-brief", "0.3.0");
    let out = shared_build_cache(&mut bt(&cache))
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(tmp.path().join("dist"))
        .arg("--target-dir")
        .arg(skill_target_dir())
        .arg("--push")
        .arg(format!("{}/acme", registry.host))
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_ok(&out, "precompile --push");
    let pushed: HashMap<String, serde_json::Value> = stdout(&out)
        .lines()
        .map(json_line)
        .filter(|m| m["reason"] == "skill-pushed")
        .map(|m| (m["name"].as_str().unwrap().to_string(), m))
        .collect();
    assert_eq!(pushed.len(), 3, "{}", stdout(&out));
    assert_eq!(
        pushed["be-brief"]["reference"],
        format!("{}/acme/be-brief:0.3.0", registry.host)
    );
    let digest = pushed["echo-skill"]["digest"].as_str().unwrap();
    let store = tmp.path().join("store");
    assert_ok(
        &install(
            &cache,
            &store,
            &format!("{}/acme/echo-skill@{digest}", registry.host),
            &[],
        ),
        "install what precompile pushed",
    );
    assert!(run_skill(&store, "echo-skill", "p").contains("ECHO: P"));
}

// ------------------------------------------------------- a hostile registry

/// One answer of the fake registry.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send the head, then a byte now and then, for ever.
    drip: bool,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
            drip: false,
        }
    }
}

/// A registry on 127.0.0.1 that answers from a table (path → reply): what
/// a real registry would never serve. With `bearer`, every `/v2/` request
/// must carry that token, fetched anonymously from `/token`.
struct Fake {
    host: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Fake {
    fn start(bearer: Option<&'static str>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let table = routes.clone();
        let realm = format!("http://{host}/token");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let table = table.clone();
                let realm = realm.clone();
                std::thread::spawn(move || serve(stream, &table, bearer, &realm));
            }
        });
        Fake { host, routes }
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.into(), reply);
    }

    /// Serves `built` at `repo:tag` (and by digest), as a registry would.
    fn serve_artifact(&self, repo: &str, tag: &str, built: &manifest::Built) {
        let mut reply = Reply::ok(built.manifest_bytes.clone());
        reply
            .headers
            .push(("Content-Type".into(), manifest::MANIFEST.into()));
        reply
            .headers
            .push(("Docker-Content-Digest".into(), built.digest.clone()));
        self.route(&format!("/v2/{repo}/manifests/{tag}"), reply.clone());
        self.route(&format!("/v2/{repo}/manifests/{}", built.digest), reply);
        for (d, bytes) in &built.blobs {
            self.route(
                &format!("/v2/{repo}/blobs/{}", d.digest),
                Reply::ok(bytes.clone()),
            );
        }
        self.route(
            &format!("/v2/{repo}/tags/list"),
            Reply::ok(format!(r#"{{"name":"{repo}","tags":["{tag}"]}}"#).into_bytes()),
        );
    }
}

fn serve(
    stream: TcpStream,
    table: &Mutex<HashMap<String, Reply>>,
    bearer: Option<&str>,
    realm: &str,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // A TLS handshake is answered as a plain HTTP server answers it.
    if reader.fill_buf().is_ok_and(|b| b.first() == Some(&0x16)) {
        let mut out = stream;
        let _ = out.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        return;
    }
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut authorization = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("authorization:") {
            authorization = Some(line[line.len() - v.len()..].trim().to_string());
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default().to_string();
    let reply = if path == "/token" {
        Reply::ok(format!(r#"{{"token":"{}"}}"#, bearer.unwrap_or("none")).into_bytes())
    } else if let Some(token) = bearer
        && authorization.as_deref() != Some(&format!("Bearer {token}"))
    {
        Reply {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(r#"Bearer realm="{realm}",service="fake""#),
            )],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                .to_vec(),
            drip: false,
        }
    } else {
        table.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
            status: 404,
            headers: Vec::new(),
            body: br#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#.to_vec(),
            drip: false,
        })
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if out.write_all(head.as_bytes()).is_err() || method == "HEAD" {
        return;
    }
    if reply.drip {
        // A byte every half second for at most a minute: never done in time.
        for byte in reply.body.iter().take(120) {
            std::thread::sleep(Duration::from_millis(500));
            if out.write_all(&[*byte]).and_then(|_| out.flush()).is_err() {
                return;
            }
        }
        return;
    }
    let _ = out.write_all(&reply.body);
}

/// The prompt skill `be-kind` as an artifact, built in this process.
fn kind_artifact(files: Vec<(&str, &[u8])>) -> manifest::Built {
    let mut all: Vec<(String, Vec<u8>, bool)> = vec![(
        "SKILL.md".into(),
        b"---\nname: be-kind\ndescription: Be kind.\nmetadata:\n  skill-type: prompt\n  version: 1.0.0\n---\nBe kind.\n".to_vec(),
        false,
    )];
    all.extend(
        files
            .into_iter()
            .map(|(p, b)| (p.to_string(), b.to_vec(), false)),
    );
    Artifact {
        files: all,
        wasm: None,
        imports: Vec::new(),
        annotations: [(manifest::TITLE.to_string(), "be-kind".to_string())].into(),
    }
    .build()
}

/// Re-serializes `built` with its manifest changed by `change`.
fn with_manifest(
    built: &manifest::Built,
    change: impl FnOnce(&mut manifest::Manifest),
) -> manifest::Built {
    let mut built = built.clone();
    change(&mut built.manifest);
    built.manifest_bytes = built.manifest.to_json();
    built.digest = manifest::digest_of(&built.manifest_bytes);
    built
}

/// Every bad answer is refused with an error saying what is wrong, and the
/// store stays byte for byte as it was. The anonymous token challenge is
/// answered on the way (the fake asks for a Bearer token).
#[test]
fn hostile_registries_are_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::start(Some("t0k3n"));
    let good = kind_artifact(vec![("references/tone.md", b"Warm.\n")]);
    fake.serve_artifact("good/be-kind", "1.0.0", &good);
    let store = tmp.path().join("store");
    let out = install(
        &tmp.path().join("cache-0"),
        &store,
        &format!("{}/good/be-kind:1.0.0", fake.host),
        &[],
    );
    assert_ok(&out, "install through the token challenge");
    let before = snapshot(&store);

    let mut case = 0;
    let mut refused = |what: &str, reference: &str, extra: &[&str], expect: &str| {
        case += 1;
        let cache = tmp.path().join(format!("cache-{case}"));
        let mut cmd = bt(&cache);
        cmd.env("BOTERNITY_HTTP_DEADLINE", "2")
            .env("BOTERNITY_HTTP_RETRIES", "0")
            .arg("install")
            .arg(format!("oci://{reference}"))
            .arg("--store")
            .arg(&store)
            .args(extra);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expect),
            "{what}: expected `{expect}` in:\n{}",
            stderr(&out)
        );
        assert_eq!(snapshot(&store), before, "{what} changed the store");
    };
    let h = fake.host.clone();

    // A tampered blob: the bytes are not the digest's.
    let tampered = kind_artifact(vec![("references/tone.md", b"Cold.\n")]);
    fake.serve_artifact("tampered-blob/be-kind", "1.0.0", &tampered);
    let (d, _) = tampered.blobs.last().unwrap();
    fake.route(
        &format!("/v2/tampered-blob/be-kind/blobs/{}", d.digest),
        Reply::ok(b"Evil.\n".to_vec()),
    );
    refused(
        "tampered blob",
        &format!("{h}/tampered-blob/be-kind:1.0.0"),
        &[],
        "does not match its digest",
    );

    // A tampered manifest: asked by digest, another one served.
    let other = kind_artifact(vec![("references/tone.md", b"Other.\n")]);
    fake.serve_artifact("tampered-manifest/be-kind", "1.0.0", &other);
    fake.route(
        &format!("/v2/tampered-manifest/be-kind/manifests/{}", good.digest),
        Reply::ok(other.manifest_bytes.clone()),
    );
    refused(
        "tampered manifest",
        &format!("{h}/tampered-manifest/be-kind@{}", good.digest),
        &[],
        "does not match its digest",
    );

    // A manifest over its cap, said by its length before it is read.
    fake.route(
        "/v2/huge/be-kind/manifests/1.0.0",
        Reply::ok(vec![b' '; 5 * 1024 * 1024]),
    );
    refused(
        "oversized manifest",
        &format!("{h}/huge/be-kind:1.0.0"),
        &[],
        "over the 4194304-byte cap",
    );

    // A layer over its cap: refused before downloading.
    let big = with_manifest(&good, |m| m.layers[0].size = 65 * 1024 * 1024);
    fake.serve_artifact("big-layer/be-kind", "1.0.0", &big);
    refused(
        "oversized layer",
        &format!("{h}/big-layer/be-kind:1.0.0"),
        &[],
        "refused before downloading",
    );

    // Unknown media types: a container image's layer, a config.
    let image = with_manifest(&good, |m| {
        m.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into()
    });
    fake.serve_artifact("image/be-kind", "1.0.0", &image);
    refused(
        "unknown layer type",
        &format!("{h}/image/be-kind:1.0.0"),
        &[],
        "not a boternity skill's",
    );
    let config = with_manifest(&good, |m| {
        m.config.media_type = "application/vnd.oci.image.config.v1+json".into()
    });
    fake.serve_artifact("config/be-kind", "1.0.0", &config);
    refused(
        "unknown config type",
        &format!("{h}/config/be-kind:1.0.0"),
        &[],
        "not a boternity skill's",
    );

    // File layers leaving the skill folder.
    for (i, path) in ["../../outside.md", "/etc/evil", "references/../../x"]
        .iter()
        .enumerate()
    {
        let escape = with_manifest(&good, |m| {
            m.layers[1]
                .annotations
                .insert(manifest::TITLE.into(), path.to_string());
        });
        let repo = format!("escape{i}/be-kind");
        fake.serve_artifact(&repo, "1.0.0", &escape);
        refused(
            path,
            &format!("{h}/{repo}:1.0.0"),
            &[],
            "nothing was installed",
        );
    }
    assert!(!tmp.path().join("outside.md").exists());

    // A manifest whose title is not the skill it holds.
    let renamed = with_manifest(&good, |m| {
        m.annotations
            .insert(manifest::TITLE.into(), "be-cruel".into());
    });
    fake.serve_artifact("renamed/be-kind", "1.0.0", &renamed);
    refused(
        "title mismatch",
        &format!("{h}/renamed/be-kind:1.0.0"),
        &[],
        "its manifest's title says `be-cruel`",
    );

    // A tag that does not exist: the tags that do are listed.
    refused(
        "unknown tag",
        &format!("{h}/good/be-kind:9.9.9"),
        &[],
        "has no tag `9.9.9`; its tags: 1.0.0",
    );

    // 403.
    let mut forbidden = Reply::ok(Vec::new());
    forbidden.status = 403;
    fake.route("/v2/private/be-kind/manifests/1.0.0", forbidden);
    refused(
        "403",
        &format!("{h}/private/be-kind:1.0.0"),
        &[],
        "denied access",
    );

    // A registry key pinned and no signature anywhere.
    let (_, public) = keygen(tmp.path(), "k.key");
    refused(
        "unsigned",
        &format!("{h}/good/be-kind:1.0.0"),
        &["--registry-key", public.to_str().unwrap()],
        "is not signed",
    );

    // A signature referrer of the right shape whose text is not a signature
    // of this digest by the pinned key: through the referrers API.
    let (secret, _) = keygen(tmp.path(), "other.key");
    let key = boternity_skills::registry::sign::SigningKey::load(&secret, None).unwrap();
    let text = key.sign(good.digest.as_bytes(), "x").unwrap();
    let layer = Descriptor::of(manifest::SIGNATURE_LAYER, text.as_bytes());
    let sig = manifest::Manifest {
        schema_version: 2,
        media_type: Some(manifest::MANIFEST.into()),
        artifact_type: Some(manifest::SIGNATURE_ARTIFACT.into()),
        config: Descriptor::of(manifest::EMPTY, manifest::EMPTY_JSON),
        layers: vec![layer.clone()],
        subject: Some(Descriptor::of(manifest::MANIFEST, &good.manifest_bytes)),
        annotations: Default::default(),
    };
    let sig_bytes = sig.to_json();
    let sig_digest = manifest::digest_of(&sig_bytes);
    let mut entry = Descriptor::of(manifest::MANIFEST, &sig_bytes);
    entry.artifact_type = Some(manifest::SIGNATURE_ARTIFACT.into());
    fake.route(
        &format!("/v2/good/be-kind/referrers/{}", good.digest),
        Reply::ok(serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": manifest::INDEX, "manifests": [entry]})).unwrap()),
    );
    fake.route(
        &format!("/v2/good/be-kind/manifests/{sig_digest}"),
        Reply::ok(sig_bytes),
    );
    fake.route(
        &format!("/v2/good/be-kind/blobs/{}", layer.digest),
        Reply::ok(text.into_bytes()),
    );
    refused(
        "foreign signature",
        &format!("{h}/good/be-kind:1.0.0"),
        &["--registry-key", public.to_str().unwrap()],
        "which is not pinned",
    );

    // A dead registry, and one that never finishes its answer.
    let dead = format!("127.0.0.1:{}", free_port());
    refused(
        "dead",
        &format!("{dead}/x/be-kind:1.0.0"),
        &[],
        "cannot reach",
    );
    let mut slow = Reply::ok(good.manifest_bytes.clone());
    slow.drip = true;
    fake.route("/v2/slow/be-kind/manifests/1.0.0", slow);
    refused(
        "endlessly slow",
        &format!("{h}/slow/be-kind:1.0.0"),
        &[],
        "deadline rule",
    );
}
