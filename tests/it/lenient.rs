//! Real-world `SKILL.md` shapes (issue #11): what the lenient reader accepts
//! with a positioned warning, what stays strict, whole-folder installs and
//! their refusals, `precompile --strict`, and `boternity check [--fix]`.
//! Every install goes through the CLI into a temporary `--store`.

#![allow(clippy::print_stderr)]

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use boternity_skills::digest::sha256_hex;
use boternity_skills::skill::front_matter;
use boternity_skills::skill::manifest::Manifest;
use boternity_skills::store::SkillStore;
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// Writes `<parent>/<folder>/SKILL.md` with exactly `text`.
fn write_skill(parent: &Path, folder: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let dir = parent.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SKILL.md"), text).unwrap();
    dir
}

/// The JSON objects a `--message-format json` run printed on stdout.
fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(json_line)
        .collect()
}

/// `boternity install <dir> --store <store> --message-format json`: the run
/// and its one JSON line.
fn install(store: &Path, dir: &Path, extra: &[&str]) -> (Output, Value) {
    let out = boternity()
        .arg("install")
        .arg(dir)
        .arg("--store")
        .arg(store)
        .args(["--message-format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let mut lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{}\n{}", stdout(&out), stderr(&out));
    (out, lines.remove(0))
}

fn install_ok(store: &Path, dir: &Path, extra: &[&str]) -> Value {
    let (out, line) = install(store, dir, extra);
    assert!(
        out.status.success(),
        "install {} failed: {line}\n{}",
        dir.display(),
        stderr(&out)
    );
    assert_eq!(line["reason"], "skill-installed", "{line}");
    line
}

/// Installs `dir`, expects a refusal mentioning every one of `expected`, and
/// checks that the store is byte-for-byte what it was. Returns the error.
fn assert_refused(store: &Path, dir: &Path, expected: &[&str]) -> String {
    let before = snapshot(store);
    let (out, line) = install(store, dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert_eq!(line["reason"], "install-failed", "{line}");
    let error = line["error"].as_str().unwrap().to_string();
    for e in expected {
        assert!(error.contains(e), "expected `{e}` in: {error}");
    }
    assert!(
        snapshot(store) == before,
        "the store changed after: {error}"
    );
    error
}

/// `boternity list --message-format json`.
fn list(store: &Path) -> Vec<Value> {
    let out = boternity()
        .args(["list", "--message-format", "json", "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&out)
}

/// `warnings` of a JSON message as (code, line, column), sorted.
fn warnings(v: &Value) -> Vec<(String, u64, u64)> {
    let mut w: Vec<(String, u64, u64)> = v["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array in {v}"))
        .iter()
        .map(|w| {
            for field in ["message", "fix"] {
                assert!(
                    w[field].as_str().is_some_and(|s| !s.is_empty()),
                    "warning without {field}: {w}"
                );
            }
            (
                w["code"].as_str().unwrap().to_string(),
                w["line"].as_u64().unwrap(),
                w["column"].as_u64().unwrap(),
            )
        })
        .collect();
    w.sort();
    w
}

fn expected(w: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
    let mut w: Vec<_> = w.iter().map(|(c, l, k)| (c.to_string(), *l, *k)).collect();
    w.sort();
    w
}

/// A store key: `[a-z0-9-]`, ≤ 64, no `/` or `..`, not starting or ending
/// with `-`.
fn assert_safe_key(key: &str) {
    assert!(
        !key.is_empty()
            && key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !key.contains("..")
            && !key.contains('/')
            && !key.starts_with('-')
            && !key.ends_with('-'),
        "unsafe key {key:?}"
    );
}

/// One accepted shape: the folder it is in, its `SKILL.md`, what the store
/// must show, and what else the manifest must hold.
struct Case {
    folder: String,
    text: String,
    key: String,
    written_name: String,
    warnings: Vec<(String, u64, u64)>,
    check: Box<dyn Fn(&Manifest)>,
}

/// A case whose key and name as written are `key`.
fn case(
    folder: &str,
    text: impl Into<String>,
    key: &str,
    warnings: &[(&str, u64, u64)],
    check: impl Fn(&Manifest) + 'static,
) -> Case {
    Case {
        folder: folder.into(),
        text: text.into(),
        key: key.into(),
        written_name: key.into(),
        warnings: expected(warnings),
        check: Box::new(check),
    }
}

/// Every shape real skills come in that the lenient reader accepts, with the
/// warning each one earns (code, line, column).
fn accepted_shapes() -> Vec<Case> {
    let mut cases = vec![
        // An unquoted `: ` in a description is kept exactly.
        case(
            "use-when",
            "---\nname: use-when\ndescription: Use when: the user asks for X\n---\nBody.\n",
            "use-when",
            &[("unquoted-value", 3, 14)],
            |m| {
                assert_eq!(m.description, "Use when: the user asks for X");
                assert_eq!(m.body, "Body.\n");
            },
        ),
        // ` #` after a `: ` would be a comment to strict YAML: kept too.
        case(
            "dotnet",
            "---\nname: dotnet\ndescription: Use when: editing C# files #dotnet, or .csproj\n---\nBody.\n",
            "dotnet",
            &[("unquoted-value", 3, 14)],
            |m| {
                assert_eq!(
                    m.description,
                    "Use when: editing C# files #dotnet, or .csproj"
                )
            },
        ),
        // Both in other free-text fields.
        case(
            "multi",
            "---\nname: multi\ndescription: Triage: bugs\nlicense: MIT: see LICENSE.txt\ncompatibility: claude-code: 1.x #only\n---\nBody.\n",
            "multi",
            &[
                ("unquoted-value", 3, 14),
                ("unquoted-value", 4, 10),
                ("unquoted-value", 5, 16),
            ],
            |m| {
                assert_eq!(m.description, "Triage: bugs");
                assert_eq!(m.license.as_deref(), Some("MIT: see LICENSE.txt"));
                assert_eq!(m.compatibility.as_deref(), Some("claude-code: 1.x #only"));
            },
        ),
        // A byte-order mark, CRLF and spaces after the fences.
        case(
            "windows-made",
            "\u{feff}---  \r\nname: windows-made\r\ndescription: Made on Windows.\r\n---   \r\n# Title\r\n\r\nBody line.\r\n",
            "windows-made",
            &[
                ("bom", 1, 1),
                ("crlf", 1, 1),
                ("fence-space", 1, 4),
                ("fence-space", 4, 4),
            ],
            |m| assert_eq!(m.description, "Made on Windows."),
        ),
        // No front matter: a prompt skill named after its folder, described by
        // its first paragraph.
        case(
            "haiku-answers",
            HAIKU,
            "haiku-answers",
            &[("missing-name", 1, 1), ("no-front-matter", 1, 1)],
            |m| {
                assert_eq!(m.description, "Always answer in haiku. Keep it short.");
                assert_eq!(m.skill_type.to_string(), "prompt");
                assert_eq!(m.body, HAIKU);
            },
        ),
        // … and a folder name that is not a valid key becomes a safe one.
        Case {
            written_name: "my-notes-v2".into(),
            ..case(
                "My Notes_v2",
                "Use British spelling.\n",
                "my-notes-v2",
                &[("missing-name", 1, 1), ("no-front-matter", 1, 1)],
                |m| assert_eq!(m.description, "Use British spelling."),
            )
        },
        // No name: the folder's.
        case(
            "folder-named",
            "---\ndescription: Named after its folder.\n---\nBody.\n",
            "folder-named",
            &[("missing-name", 2, 1)],
            |m| assert_eq!(m.description, "Named after its folder."),
        ),
        // No description: the first paragraph.
        case(
            "first-para",
            "---\nname: first-para\nlicense: MIT\n---\n# First para\n\nDescribes the skill\nin two lines.\n\nNot this.\n",
            "first-para",
            &[("missing-description", 2, 1)],
            |m| assert_eq!(m.description, "Describes the skill in two lines."),
        ),
        // A description over 1024 characters is kept whole.
        case(
            "claude-api",
            format!(
                "---\nname: claude-api\ndescription: {}\n---\nBody.\n",
                long_description()
            ),
            "claude-api",
            &[("long-description", 3, 1)],
            |m| assert_eq!(m.description, long_description()),
        ),
        // A top-level `version` is used.
        case(
            "top-version",
            "---\nname: top-version\ndescription: d\nversion: 2.1.0\n---\nBody.\n",
            "top-version",
            &[("top-level-version", 4, 1)],
            |m| assert_eq!(m.version.as_deref(), Some("2.1.0")),
        ),
        // `metadata` as a flow mapping, and with values of any type: silently.
        case(
            "flow",
            "---\nname: flow\ndescription: d\nmetadata: {skill-type: prompt, version: 1.0.0}\n---\nBody.\n",
            "flow",
            &[],
            |m| assert_eq!(m.version.as_deref(), Some("1.0.0")),
        ),
        case(
            "rich-metadata",
            "---\nname: rich-metadata\ndescription: d\nmetadata:\n  skill-type: prompt\n  version: 1.2.3\n  priority: 3\n  weight: 0.5\n  experimental: true\n  author: Jane Doe\n  openclaw:\n    emoji: \"🦞\"\n    requires:\n      bins: [git, gh]\n      env: {GH_TOKEN: optional}\n  tags: [a, b]\n---\nBody.\n",
            "rich-metadata",
            &[],
            |m| assert_eq!(m.author.as_deref(), Some("Jane Doe")),
        ),
        // Fields the spec does not know: silently.
        case(
            "unknown-fields",
            "---\nname: unknown-fields\ndescription: d\nallowed-tools: Read, Grep, Bash(git:*)\nlicense: Complete terms in LICENSE.txt\ncompatibility: Requires git and network access\nrequires: [git]\nuser-invocable: true\nhooks:\n  pre: [lint]\n---\nBody.\n",
            "unknown-fields",
            &[],
            |m| {
                assert_eq!(m.allowed_tools.as_deref(), Some("Read, Grep, Bash(git:*)"));
                assert_eq!(m.license.as_deref(), Some("Complete terms in LICENSE.txt"));
            },
        ),
    ];

    // Names that are not valid keys are stored under a safe key, quoted …
    let long = "A".repeat(100);
    let long_key = "a".repeat(64);
    let quoted = [
        ("v3-opt", "V3 MCP Optimization", "v3-mcp-optimization"),
        ("biosample", "biosample_genomics", "biosample-genomics"),
        ("review", "ce:review", "ce-review"),
        (
            "didi-ride",
            "openakita/skills@didi-ride",
            "openakita-skills-didi-ride",
        ),
        ("lead", "-leading", "leading"),
        ("escape", "../../etc/passwd", "etc-passwd"),
        ("dots", "..", "dots"),
        ("jp-skill", "日本語スキル", "jp-skill"),
        ("long", long.as_str(), long_key.as_str()),
        ("shout", "UPPER--CASE-", "upper-case"),
    ];
    // … and unquoted, as authors write them.
    let unquoted = [
        ("review", "ce:review", "ce-review"),
        ("lead", "-leading", "leading"),
        (
            "didi-ride",
            "openakita/skills@didi-ride",
            "openakita-skills-didi-ride",
        ),
    ];
    for (quote, list) in [("\"", &quoted[..]), ("", &unquoted[..])] {
        for &(folder, name, key) in list {
            let written = name.to_string();
            cases.push(Case {
                written_name: name.into(),
                ..case(
                    folder,
                    format!("---\nname: {quote}{name}{quote}\ndescription: d\n---\nBody.\n"),
                    key,
                    &[("invalid-name", 2, 1)],
                    move |m| assert_eq!(m.written_name, written),
                )
            });
        }
    }
    // A name not matching its folder is stored under the name.
    for (folder, name) in [("template", "template-skill"), ("react", "vercel-react")] {
        cases.push(case(
            folder,
            format!("---\nname: {name}\ndescription: Replace with a description of the skill.\n---\nBody.\n"),
            name,
            &[("name-mismatch", 2, 1)],
            |_| {},
        ));
    }
    // Versions that are not semver are kept as written.
    for (written, version) in [("\"1.0\"", "1.0"), ("2", "2"), ("1.0", "1.0")] {
        cases.push(case(
            "loose-version",
            format!("---\nname: loose-version\ndescription: d\nmetadata:\n  author: someone\n  version: {written}\n---\nBody.\n"),
            "loose-version",
            &[("version-not-semver", 6, 3)],
            move |m| assert_eq!(m.version.as_deref(), Some(version), "{written}"),
        ));
    }
    cases
}

const HAIKU: &str =
    "# Haiku answers\n\nAlways answer in haiku.\nKeep it short.\n\nA second paragraph.\n";

fn long_description() -> String {
    "Build apps with the Claude API or Anthropic SDK; trigger when code imports anthropic. "
        .repeat(16)
        .trim_end()
        .to_string()
}

// ------------------------------------- 1. accepted, with a warning each

/// Each shape read as the store reads a folder: its key, its name as
/// written, its warnings (each with a message and a fix) and its fields.
#[test]
fn every_accepted_shape_reads_to_its_key_name_warnings_and_fields() {
    assert!(long_description().chars().count() > 1024);
    for case in accepted_shapes() {
        let m = Manifest::parse_in(&case.text, &case.folder)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", case.folder));
        assert_eq!(m.name, case.key, "{}", case.folder);
        assert_safe_key(&m.name);
        // Without a name, the name as written is the folder's (in the store,
        // the folder is the key: `list` shows that).
        let written = if case.text.contains("name:") {
            &case.written_name
        } else {
            &case.folder
        };
        assert_eq!(&m.written_name, written, "{}", case.folder);
        let mut warnings: Vec<(String, u64, u64)> = m
            .warnings
            .iter()
            .map(|w| {
                assert!(!w.message.is_empty() && !w.fix.is_empty(), "{w:?}");
                (w.code.clone(), w.line as u64, w.column as u64)
            })
            .collect();
        warnings.sort();
        assert_eq!(warnings, case.warnings, "{}", case.folder);
        (case.check)(&m);
    }
}

/// Installing through the CLI stores what the reader read: the
/// `skill-installed` line's key and warnings, `list`'s key and name as
/// written, `SKILL.md` byte for byte, and the manifest read back from the
/// store. One store holds them all (every case whose key is its own).
#[test]
fn accepted_shapes_install_through_the_cli_as_they_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut seen = std::collections::BTreeSet::new();
    let cases: Vec<Case> = accepted_shapes()
        .into_iter()
        .filter(|c| seen.insert(c.key.clone()))
        .collect();
    for (i, case) in cases.iter().enumerate() {
        let dir = write_skill(
            &tmp.path().join(format!("src{i}")),
            &case.folder,
            &case.text,
        );
        let line = install_ok(&store, &dir, &[]);
        assert_eq!(line["name"], case.key.as_str(), "{line}");
        assert_eq!(warnings(&line), case.warnings, "{}: {line}", case.folder);
        if case.key == "top-version" {
            assert_eq!(line["version"], "2.1.0");
        }
        let installed = store.join("skills").join(&case.key);
        assert_eq!(
            std::fs::read(installed.join("SKILL.md")).unwrap(),
            case.text.as_bytes(),
            "SKILL.md of {} is not byte for byte the original",
            case.folder
        );
        let m = SkillStore::new(&store)
            .get(&case.key)
            .unwrap()
            .manifest
            .unwrap();
        (case.check)(&m);
    }
    let rows: BTreeMap<String, Value> = list(&store)
        .into_iter()
        .map(|row| (row["name"].as_str().unwrap().to_string(), row))
        .collect();
    assert_eq!(rows.len(), cases.len(), "{rows:?}");
    for case in &cases {
        let row = &rows[&case.key];
        assert_eq!(row["written_name"], case.written_name.as_str(), "{row}");
        assert!(row["manifest_error"].is_null(), "{row}");
    }
}

// -------------------------------------------------- 2. what stays strict

#[test]
fn fields_that_decide_what_a_skill_may_do_and_unreadable_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let keeper = write_skill(
        tmp.path(),
        "keeper",
        "---\nname: keeper\ndescription: Already here.\n---\nKept.\n",
    );
    install_ok(&store, &keeper, &[]);
    let bad = tmp.path().join("bad");
    let tool = |extra: &str| {
        format!(
            "---\nname: strict\ndescription: Use when: strict\nmetadata:\n  skill-type: tool\n{extra}---\nBody.\n"
        )
    };

    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            tool("").replace("skill-type: tool", "skill-type: rust"),
            vec![
                "`metadata.skill-type` is `rust`",
                "valid values: prompt, tool",
            ],
        ),
        (
            tool("  capabilities: [read_file, root]\n"),
            vec![
                "`root`",
                "valid values: read_file, write_file, http_get, http_post, exec_command, read_env, recall_memory, get_secret",
            ],
        ),
        (
            tool("  secrets: API_KEY\n"),
            vec!["`secrets` must be a list of strings"],
        ),
        (
            tool("  trust-tier: root\n"),
            vec!["valid values: local, verified, untrusted"],
        ),
        // A tab-indented nested key: no fallback reads it.
        (
            "---\nname: strict\ndescription: d\nmetadata:\n\tskill-type: tool\n---\nBody.\n".into(),
            vec!["not valid YAML at line 5, column 1"],
        ),
        // A flow collection never closed, in a key that is not free text.
        (
            "---\nname: strict\ndescription: d\nmetadata:\n  categories: [unclosed\n---\nBody.\n"
                .into(),
            vec!["not valid YAML at line"],
        ),
        (
            "---\nname: strict\ndescription: d\n".into(),
            vec!["front matter is not closed"],
        ),
        (
            "# Only a heading\n".into(),
            vec!["no front matter and no text to describe the skill"],
        ),
    ];
    for (text, expected) in &cases {
        let dir = write_skill(&bad, "strict", text);
        assert_refused(&store, &dir, expected);
    }
    assert_eq!(list(&store).len(), 1);
}

// ------------------------------------------------------- 3. collisions

#[test]
fn skills_that_would_share_a_key_fail_naming_both_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    let skill = |folder: &str, text: &str| write_skill(&reg, folder, text);
    let a = skill(
        "team-a/same-name",
        "---\nname: same-name\ndescription: A.\n---\nA.\n",
    );
    let b = skill(
        "team-b/other",
        "---\nname: same-name\ndescription: B.\n---\nB.\n",
    );
    let lower = skill("foo", "Foo, lower case.\n");
    let upper = skill("Foo", "---\ndescription: Foo, upper case.\n---\n");
    skill("fine", "---\nname: fine\ndescription: Fine.\n---\n");

    let out_dir = tmp.path().join("out");
    let run = boternity()
        .arg("precompile")
        .arg(&reg)
        .arg("--out")
        .arg(&out_dir)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let lines = json_lines(&run);
    let finished = lines.last().unwrap();
    assert_eq!(finished["reason"], "precompile-finished");
    assert_eq!(finished["failed"], 4, "{finished}");
    // The one skill without a collision is a prompt skill, published as `ok`.
    assert_eq!(finished["ok"], 1, "{finished}");
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["reason"] == "skill-precompiled" && l["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 4);
    for (key, dirs) in [("same-name", [&a, &b]), ("foo", [&lower, &upper])] {
        let entries: Vec<_> = failed.iter().filter(|l| l["name"] == key).collect();
        assert_eq!(entries.len(), 2, "{key}: {failed:?}");
        for e in entries {
            let error = e["error"].as_str().unwrap();
            for dir in dirs {
                let shown = dir.canonicalize().unwrap();
                assert!(
                    error.contains(&dir.display().to_string())
                        || error.contains(&shown.display().to_string()),
                    "{} not named in: {error}",
                    dir.display()
                );
            }
            assert!(error.contains(&format!("`{key}`")), "{error}");
        }
    }

    // `check` says the same to the registry's CI.
    let out = boternity().arg("check").arg(&reg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(": error: ") && l.contains("would both be stored as"))
            .count(),
        2,
        "{text}"
    );
}

// ------------------------------------- 4. a Tool skill that needs the fallbacks

/// `SKILL.md` of a copy of echo-skill that only the lenient reader reads: an
/// unquoted `: ` and ` #`, a name that is not its folder's, a version that is
/// not semver.
const LENIENT_ECHO: &str = "---\nname: echo-lenient\ndescription: Use when: the user wants an echo #loud\nmetadata:\n  skill-type: tool\n  version: \"1.0\"\n---\nEcho body.\n";

/// A copy of echo-skill with [`LENIENT_ECHO`], as cargo package `package`
/// (its own name, so parallel builds in the shared target directory never
/// overwrite each other's artifact).
fn lenient_echo(parent: &Path, folder: &str, package: &str) -> PathBuf {
    let dir = copy_fixture("echo-skill", parent, folder);
    assert!(dir.join("Cargo.lock").is_file());
    rename_package(&dir, package);
    std::fs::write(dir.join("SKILL.md"), LENIENT_ECHO).unwrap();
    dir
}

#[test]
fn a_tool_skill_needing_the_fallbacks_builds_installs_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = lenient_echo(tmp.path(), "echo-folder", "lenient-echo-run");
    let target = skill_target_dir();
    let line = install_ok(&store, &dir, &["--target-dir", target.to_str().unwrap()]);
    assert_eq!(line["name"], "echo-lenient");
    assert_eq!(line["path_taken"], "built", "{line}");
    assert_eq!(line["stub"], false);
    assert_eq!(line["version"], "1.0");
    assert_eq!(
        warnings(&line),
        expected(&[
            ("name-mismatch", 2, 1),
            ("unquoted-value", 3, 14),
            ("version-not-semver", 6, 3),
        ])
    );
    let installed = store.join("skills/echo-lenient");
    assert_eq!(
        std::fs::read(installed.join("SKILL.md")).unwrap(),
        LENIENT_ECHO.as_bytes()
    );
    assert!(installed.join("skill.wasm").is_file());
    let m = SkillStore::new(&store)
        .get("echo-lenient")
        .unwrap()
        .manifest
        .unwrap();
    assert_eq!(m.description, "Use when: the user wants an echo #loud");

    let ran = boternity()
        .args(["run", "echo-lenient", "--input", "hi", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(stdout(&ran), "ECHO: HI\n");
}

// --------------------------------- 5. property: --fix reads strictly the same

/// Characters descriptions are made of: ordinary text and everything YAML
/// gives a meaning to.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789        :#'\"\\@*&![]{},|>-?%é🙂";

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` one-line strings of 1..=80 characters over [`ALPHABET`].
fn descriptions(count: usize, seed: u64) -> Vec<String> {
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    let mut rng = XorShift(seed);
    (0..count)
        .map(|_| {
            let len = 1 + rng.below(80);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        })
        .collect()
}

/// What strict YAML's value of a scalar field reads as text (as the
/// manifest reads it: numbers and booleans as written by `Display`).
fn scalar_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Front matter and body of a fixed file, split by hand (no fallbacks).
fn split_strictly(text: &str) -> (&str, &str) {
    let rest = text
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("fixed file does not start with a clean fence: {text:?}"));
    let end = rest
        .find("\n---\n")
        .unwrap_or_else(|| panic!("no clean closing fence: {text:?}"));
    (&rest[..=end], &rest[end + 5..])
}

/// Why strict YAML or the manifest refused `d`, in a few words.
fn refusal_kind(d: &str) -> String {
    let first = d.trim_start().chars().next().unwrap_or(' ');
    if "'\"[]{}@`*&!|>%?-,#".contains(first) {
        format!("starts with `{first}`")
    } else if d.contains(" #") {
        "holds ` #`".into()
    } else {
        "other".into()
    }
}

#[test]
fn fixed_files_parse_strictly_to_what_the_lenient_reader_read() {
    let all = descriptions(2000, 0x9e37_79b9_7f4a_7c15);
    let tmp = tempfile::tempdir().unwrap();
    let mut accepted = Vec::new();
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bent = 0;
    let mut not_as_written: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in all.iter().enumerate() {
        let text = format!("---\nname: x\ndescription: {d}\n---\nbody\n");
        let m = match Manifest::parse_in(&text, "x") {
            Ok(m) => m,
            Err(e) => {
                let e = boternity_skills::error_chain(&e);
                refused
                    .entry(refusal_kind(d))
                    .or_default()
                    .push(format!("{d:?}: {e}"));
                continue;
            }
        };
        assert_eq!(m.body, "body\n", "{d:?}");
        let codes: Vec<&str> = m.warnings.iter().map(|w| w.code.as_str()).collect();
        let fixed = front_matter::fix(&text);
        if codes.contains(&"unquoted-value") {
            bent += 1;
            // The fallback keeps the text exactly as written.
            assert_eq!(m.description, d.trim(), "{d:?}");
            assert!(fixed.is_some(), "{d:?} bent but not fixed");
        }
        let fixed = fixed.unwrap_or_else(|| text.clone());
        let (yaml, body) = split_strictly(&fixed);
        assert_eq!(body, "body\n", "{d:?} -> {fixed:?}");
        let strict: serde_norway::Value = serde_norway::from_str(yaml).unwrap_or_else(|e| {
            panic!("{d:?}: fixed front matter is not strict YAML: {e}\n{yaml}")
        });
        let strict_description = scalar_text(&strict["description"]);
        if codes.contains(&"missing-description") {
            assert!(
                strict_description
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty()),
                "{d:?}: {strict_description:?}"
            );
            assert_eq!(m.description, "body");
        } else {
            assert_eq!(
                strict_description.as_deref(),
                Some(m.description.as_str()),
                "{d:?}: the fixed file reads differently: {yaml}"
            );
            if m.description != d.trim() {
                *not_as_written.entry(refusal_kind(d)).or_default() += 1;
            }
        }
        // And leniently, the fixed file needs no fallback any more.
        let again = Manifest::parse_in(&fixed, "x").unwrap();
        assert_eq!(again.description, m.description, "{d:?}");
        assert!(
            !again
                .warnings
                .iter()
                .any(|w| matches!(w.code.as_str(), "unquoted-value" | "bom" | "fence-space")),
            "{d:?}: {:?}",
            again.warnings
        );
        accepted.push((i, text, fixed));
    }

    // `boternity check --fix` writes what the library's `fix` returns.
    let reg = tmp.path().join("registry");
    for (i, text, _) in &accepted {
        write_skill(&reg, &format!("d{i:04}"), text);
    }
    let out = boternity()
        .arg("check")
        .arg(&reg)
        .arg("--fix")
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    let finished = json_lines(&out).pop().unwrap();
    assert_eq!(finished["reason"], "check-finished");
    assert_eq!(finished["skills"], accepted.len());
    for (i, _, fixed) in &accepted {
        let written = std::fs::read_to_string(reg.join(format!("d{i:04}/SKILL.md"))).unwrap();
        assert_eq!(&written, fixed, "d{i:04}");
    }

    let summary: Vec<String> = refused
        .iter()
        .map(|(kind, v)| format!("{kind}: {} (e.g. {})", v.len(), v[0]))
        .collect();
    eprintln!(
        "accepted {} of {} ({} by quoting); read other than written: {not_as_written:?}; refused:\n  {}",
        accepted.len(),
        all.len(),
        bent,
        summary.join("\n  ")
    );
    // Every description not starting with a YAML indicator is accepted;
    // those that do (`[WIP] …`, `` `gh` … ``, `@…`, `*Beta* …`) are refused
    // unless they also hold `: ` (the fallback quotes only those).
    let plain: Vec<&String> = all
        .iter()
        .filter(|d| !refusal_kind(d).starts_with("starts with"))
        .collect();
    let plain_refused: Vec<&String> = refused
        .iter()
        .filter(|(kind, _)| !kind.starts_with("starts with"))
        .flat_map(|(_, v)| v)
        .collect();
    assert!(
        plain_refused.is_empty(),
        "{} of {} descriptions without a leading indicator refused: {plain_refused:#?}",
        plain_refused.len(),
        plain.len()
    );
    assert!(
        accepted.len() * 10 > all.len() * 8,
        "only {} of {} accepted; refused:\n  {}",
        accepted.len(),
        all.len(),
        summary.join("\n  ")
    );
}

/// A one-line value holding ` #` but no `: ` before it is valid YAML with a
/// comment: strict YAML silently cuts it at the ` #`. The lenient reader must
/// keep the text as written (or at least say what it dropped).
#[test]
fn a_value_cut_by_a_space_hash_is_kept_and_warned_about() {
    for d in ["Formats C# code #dotnet", "Use for C# #dotnet: builds"] {
        let text = format!("---\nname: x\ndescription: {d}\n---\nbody\n");
        let m = Manifest::parse_in(&text, "x").unwrap();
        let warned = m
            .warnings
            .iter()
            .any(|w| w.line == 3 && w.code == "unquoted-value");
        assert!(
            m.description == d && warned,
            "{d:?} read as {:?} without a warning",
            m.description
        );
    }
}

// -------------------------------- 6. a registry of real-world shapes

/// A registry mixing the shapes above, Tool and prompt skills; returns it and
/// the keys of the skills that need a fallback.
fn mixed_registry(root: &Path) -> (PathBuf, Vec<&'static str>) {
    let reg = root.join("registry");
    lenient_echo(&reg.join("tools"), "echo-folder", "lenient-echo-reg");
    let p = reg.join("prompts");
    write_skill(
        &p,
        "use-when",
        "---\nname: use-when\ndescription: Use when: the user asks for X\n---\nBody.\n",
    );
    write_skill(
        &p,
        "windows-made",
        "\u{feff}--- \r\nname: windows-made\r\ndescription: d\r\n---\r\nBody.\r\n",
    );
    write_skill(&p, "haiku", "Always answer in haiku.\n");
    write_skill(
        &p,
        "template",
        "---\nname: template-skill\ndescription: d\n---\n",
    );
    write_skill(
        &p,
        "v3",
        "---\nname: V3 MCP Optimization\ndescription: d\n---\n",
    );
    write_skill(
        &p,
        "first-para",
        "---\nname: first-para\n---\nFrom the body.\n",
    );
    write_skill(
        &p,
        "top-version",
        "---\nname: top-version\ndescription: d\nversion: 1.0.0\n---\n",
    );
    // Spec-clean ones, which --strict keeps.
    write_skill(
        &p,
        "flow",
        "---\nname: flow\ndescription: d\nmetadata: {skill-type: prompt, version: 1.0.0}\n---\n",
    );
    write_skill(
        &p,
        "unknown-fields",
        "---\nname: unknown-fields\ndescription: d\nallowed-tools: Read\nlicense: MIT\nrequires: [git]\nmetadata:\n  priority: 3\n  nested: {a: true}\n---\n",
    );
    let lenient = vec![
        "echo-lenient",
        "first-para",
        "haiku",
        "template-skill",
        "top-version",
        "use-when",
        "v3-mcp-optimization",
        "windows-made",
    ];
    (reg, lenient)
}

fn precompile(reg: &Path, out: &Path, extra: &[&str]) -> (Output, Vec<Value>) {
    let run = boternity()
        .arg("precompile")
        .arg(reg)
        .arg("--out")
        .arg(out)
        .arg("--target-dir")
        .arg(skill_target_dir())
        .args(["--message-format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let lines = json_lines(&run);
    (run, lines)
}

#[test]
fn a_registry_of_real_world_shapes_precompiles_and_fails_only_under_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, lenient) = mixed_registry(tmp.path());
    let out = tmp.path().join("out");
    let (run, lines) = precompile(&reg, &out, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let finished = lines.last().unwrap();
    assert_eq!(finished["reason"], "precompile-finished");
    assert_eq!(
        (&finished["failed"], &finished["ok"], &finished["skipped"]),
        // A registry serves prompt skills too: every skill is published.
        (&Value::from(0), &Value::from(10), &Value::from(0)),
        "{finished}"
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let entries = index["skills"].as_array().unwrap();
    let mut keys: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    keys.sort();
    for key in &keys {
        assert_safe_key(key);
    }
    for e in entries {
        let key = e["name"].as_str().unwrap();
        let has_warnings = e["warnings"].as_array().is_some_and(|w| !w.is_empty());
        assert_eq!(has_warnings, lenient.contains(&key), "{e}");
    }
    let echo = entries
        .iter()
        .find(|e| e["name"] == "echo-lenient")
        .unwrap();
    assert_eq!(echo["status"], "ok", "{echo}");
    assert_eq!(echo["version"], "1.0");
    assert_eq!(
        warnings(echo),
        expected(&[
            ("name-mismatch", 2, 1),
            ("unquoted-value", 3, 14),
            ("version-not-semver", 6, 3),
        ])
    );
    // dist/ carries the skill's files, SKILL.md byte for byte.
    let published = out.join(echo["path"].as_str().unwrap());
    let published = published.parent().unwrap();
    assert_eq!(
        std::fs::read(published.join("SKILL.md")).unwrap(),
        LENIENT_ECHO.as_bytes()
    );
    assert_eq!(
        std::fs::read(published.join("src/lib.rs")).unwrap(),
        std::fs::read(fixture("echo-skill").join("src/lib.rs")).unwrap()
    );
    let windows = entries
        .iter()
        .find(|e| e["name"] == "windows-made")
        .unwrap();
    assert_eq!(
        warnings(windows),
        expected(&[("bom", 1, 1), ("crlf", 1, 1), ("fence-space", 1, 4),])
    );

    let (run, lines) = precompile(&reg, &tmp.path().join("out-strict"), &["--strict"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let finished = lines.last().unwrap();
    assert_eq!(finished["failed"], lenient.len(), "{finished}");
    for l in lines.iter().filter(|l| l["reason"] == "skill-precompiled") {
        let key = l["name"].as_str().unwrap();
        if lenient.contains(&key) {
            assert_eq!(l["status"], "failed", "{l}");
            assert!(
                l["error"]
                    .as_str()
                    .unwrap()
                    .contains("breaks the Agent Skills spec"),
                "{l}"
            );
        } else {
            assert_eq!(l["status"], "ok", "{l}");
        }
    }
}

// --------------------------------------------- 7. the whole skill folder

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode()
}

#[cfg(unix)]
#[test]
fn a_prompt_skill_installs_with_every_file_identical() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = write_skill(
        tmp.path(),
        "pdf-tools",
        "---\nname: pdf-tools\ndescription: Use when: a PDF must be read\n---\nRun `scripts/run.sh`; read `references/api.md`.\n",
    );
    let logo: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "scripts/run.sh",
            b"#!/bin/sh\nexec python3 \"$(dirname \"$0\")/extract.py\" \"$@\"\n".to_vec(),
        ),
        (
            "scripts/extract.py",
            b"import sys\nprint(sys.argv)\n".to_vec(),
        ),
        (
            "references/api.md",
            b"# API\n\n`extract(path) -> str`\n".to_vec(),
        ),
        ("assets/img/deep/logo.png", logo),
        (
            "target/debug/build-output",
            b"not part of the skill".to_vec(),
        ),
        (".git/HEAD", b"ref: refs/heads/main\n".to_vec()),
        (".git/objects/ab/cdef", vec![0, 1, 2]),
    ];
    for (rel, bytes) in &files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::set_permissions(
        dir.join("scripts/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("references/api.md", dir.join("latest")).unwrap();

    let line = install_ok(&store, &dir, &[]);
    assert_eq!(line["name"], "pdf-tools");
    assert_eq!(line["files"], 6, "{line}");
    let installed = store.join("skills/pdf-tools");

    let wanted = [
        "SKILL.md",
        "assets/img/deep/logo.png",
        "latest",
        "references/api.md",
        "scripts/extract.py",
        "scripts/run.sh",
    ];
    let source_of = |rel: &str| {
        if rel == "latest" {
            dir.join("references/api.md")
        } else {
            dir.join(rel)
        }
    };
    for rel in wanted {
        let path = installed.join(rel);
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert!(kind.is_file(), "{rel} is not a regular file: {kind:?}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(source_of(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_ne!(mode(&installed.join("scripts/run.sh")) & 0o111, 0);
    assert_eq!(mode(&installed.join("scripts/extract.py")) & 0o111, 0);
    assert_eq!(mode(&installed.join("SKILL.md")) & 0o111, 0);

    // Nothing else: no build output, no version control.
    let mut present: Vec<String> = snapshot(&installed)
        .into_iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    present.sort();
    let mut everything: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
    everything.extend(
        [
            ".boternity-provenance.json",
            "assets",
            "assets/img",
            "assets/img/deep",
            "references",
            "scripts",
        ]
        .map(String::from),
    );
    everything.sort();
    assert_eq!(present, everything);

    // The provenance records every file with its sha256 and size.
    let provenance: Value = serde_json::from_slice(
        &std::fs::read(installed.join(".boternity-provenance.json")).unwrap(),
    )
    .unwrap();
    let recorded = provenance["files"].as_object().unwrap();
    let mut recorded_names: Vec<&str> = recorded.keys().map(String::as_str).collect();
    recorded_names.sort();
    assert_eq!(recorded_names, wanted);
    for rel in wanted {
        let bytes = std::fs::read(installed.join(rel)).unwrap();
        assert_eq!(recorded[rel]["sha256"], sha256_hex(&bytes), "{rel}");
        assert_eq!(recorded[rel]["size"], bytes.len(), "{rel}");
    }
    assert_eq!(
        warnings(&provenance),
        expected(&[("unquoted-value", 3, 14)])
    );

    let rows = list(&store);
    assert_eq!(rows[0]["files"], 6, "{}", rows[0]);
}

// ------------------------------------ 8. refused shapes leave the store

#[cfg(unix)]
#[test]
fn escaping_links_special_files_and_folders_over_the_caps_are_refused() {
    use boternity_skills::skill::files::{MAX_FILES, MAX_TOTAL_BYTES};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let keeper = write_skill(
        tmp.path(),
        "keeper",
        "---\nname: keeper\ndescription: Already here.\n---\n",
    );
    install_ok(&store, &keeper, &[]);
    let bad = tmp.path().join("bad");
    let skill = |folder: &str| {
        write_skill(
            &bad,
            folder,
            format!("---\nname: {folder}\ndescription: d\n---\n"),
        )
    };

    let dir = skill("leak");
    std::os::unix::fs::symlink("/etc/hostname", dir.join("leak")).unwrap();
    assert_refused(&store, &dir, &["leak", "points outside the skill folder"]);

    let dir = skill("leak-dir");
    std::fs::create_dir_all(dir.join("references")).unwrap();
    std::os::unix::fs::symlink("../../../..", dir.join("references/up")).unwrap();
    assert_refused(&store, &dir, &["references/up", "points outside"]);

    let dir = skill("fifo");
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("scripts/pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    assert_refused(&store, &dir, &["scripts/pipe", "not a regular file"]);

    let dir = skill("too-many");
    std::fs::create_dir_all(dir.join("many")).unwrap();
    for i in 0..MAX_FILES {
        std::fs::write(dir.join(format!("many/{i:04}.txt")), "x").unwrap();
    }
    std::fs::write(dir.join("big-one.txt"), vec![b'y'; 5000]).unwrap();
    let error = assert_refused(&store, &dir, &["4098 files", "cap of 4096", "largest"]);
    assert!(error.contains("big-one.txt (5000 bytes)"), "{error}");

    let dir = skill("too-big");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    let huge = std::fs::File::create(dir.join("assets/huge.bin")).unwrap();
    huge.set_len(MAX_TOTAL_BYTES + 1).unwrap();
    let error = assert_refused(&store, &dir, &["cap of 67108864", "largest"]);
    assert!(
        error.contains(&format!("assets/huge.bin ({} bytes)", MAX_TOTAL_BYTES + 1)),
        "{error}"
    );

    assert_eq!(list(&store).len(), 1);
}

// --------------------------------------------------- 9. boternity check

/// A skill needing three fallbacks: a BOM, a fence with spaces and an
/// unquoted `: `; its body holds text that looks like front matter.
const NEEDS_FIX: &str = "\u{feff}---  \nname: check-me\ndescription: Use when: checking #now\n---\nBody stays: as is #here\n---\nkey: value\n";

#[test]
fn check_reports_like_a_compiler_and_fix_repairs_only_the_front_matter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_skill(tmp.path(), "check-me", NEEDS_FIX);
    let manifest = dir.join("SKILL.md");
    let check = |args: &[&str]| {
        boternity()
            .arg("check")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };

    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let path = manifest.display();
    let want = [
        format!("{path}:1:1: warning[bom]: "),
        format!("{path}:1:4: warning[fence-space]: "),
        format!("{path}:3:14: warning[unquoted-value]: "),
    ];
    assert_eq!(lines.len(), 2 * want.len(), "{text}");
    for (i, prefix) in want.iter().enumerate() {
        assert!(lines[2 * i].starts_with(prefix.as_str()), "{text}");
        assert!(lines[2 * i + 1].starts_with("    = fix: "), "{text}");
    }
    assert!(
        lines[5].contains(r#"description: "Use when: checking #now""#),
        "{text}"
    );

    let out = check(&["--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("{path}:3:14: error[unquoted-value]: ")),
        "{}",
        stdout(&out)
    );

    // JSON: one finding per line, then the summary.
    let out = check(&["--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    for l in &lines[..3] {
        assert_eq!(l["reason"], "check-finding", "{l}");
        assert_eq!(l["path"], manifest.to_str().unwrap());
        assert_eq!(l["severity"], "warning");
        for field in ["line", "column"] {
            assert!(l[field].as_u64().is_some_and(|n| n > 0), "{l}");
        }
        for field in ["code", "message", "fix"] {
            assert!(l[field].as_str().is_some_and(|s| !s.is_empty()), "{l}");
        }
    }
    assert_eq!(
        (&lines[2]["code"], &lines[2]["line"], &lines[2]["column"]),
        (&"unquoted-value".into(), &3.into(), &14.into())
    );
    let finished = &lines[3];
    assert_eq!(finished["reason"], "check-finished");
    assert_eq!(
        (
            &finished["skills"],
            &finished["errors"],
            &finished["warnings"],
            &finished["strict"]
        ),
        (&1.into(), &0.into(), &3.into(), &false.into()),
        "{finished}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), NEEDS_FIX);

    // --fix: the front matter repaired, the body byte for byte.
    let out = check(&["--fix"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Fixed"), "{}", stderr(&out));
    let fixed = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(
        fixed,
        "---\nname: check-me\ndescription: \"Use when: checking #now\"\n---\nBody stays: as is #here\n---\nkey: value\n"
    );
    let (yaml, body) = split_strictly(&fixed);
    let strict: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    assert_eq!(strict["description"], "Use when: checking #now");
    assert_eq!(body, "Body stays: as is #here\n---\nkey: value\n");
    let out = check(&["--strict", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["warnings"], 0);
    // Nothing left to fix: the file is not rewritten.
    let out = check(&["--fix", "--message-format", "json"]);
    assert_eq!(json_lines(&out)[0]["fixed"], Value::Array(vec![]));

    // CRLF files keep their line endings; the rest is fixed.
    let crlf = write_skill(
        tmp.path(),
        "crlf-fix",
        "--- \r\nname: crlf-fix\r\ndescription: a: b\r\n---\r\nBody\r\n",
    );
    let out = boternity()
        .arg("check")
        .arg(crlf.join("SKILL.md"))
        .args(["--fix", "--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let codes: Vec<Value> = json_lines(&out)
        .iter()
        .filter(|l| l["reason"] == "check-finding")
        .map(|l| l["code"].clone())
        .collect();
    assert_eq!(codes, vec![Value::from("crlf")]);
    assert_eq!(
        std::fs::read_to_string(crlf.join("SKILL.md")).unwrap(),
        "---\r\nname: crlf-fix\r\ndescription: \"a: b\"\r\n---\r\nBody\r\n"
    );
}

#[test]
fn check_fails_on_errors_with_their_position() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    let good = write_skill(&reg, "good", "---\nname: good\ndescription: d\n---\n");
    let bad = write_skill(
        &reg,
        "bad",
        "---\nname: bad\ndescription: d\nmetadata:\n\tskill-type: tool\n---\n",
    );
    let before = std::fs::read(bad.join("SKILL.md")).unwrap();
    let out = boternity()
        .arg("check")
        .arg(&reg)
        .arg("--fix")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let prefix = format!("{}:5:1: error: ", bad.join("SKILL.md").display());
    assert!(
        text.lines()
            .any(|l| l.starts_with(&prefix) && l.contains("not valid YAML")),
        "{text}"
    );
    assert!(!text.contains(&good.display().to_string()), "{text}");
    // --fix leaves what it cannot read untouched.
    assert_eq!(std::fs::read(bad.join("SKILL.md")).unwrap(), before);

    let out = boternity()
        .arg("check")
        .arg(&reg)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    let error = lines
        .iter()
        .find(|l| l["reason"] == "check-finding")
        .unwrap();
    assert_eq!(
        (&error["severity"], &error["line"], &error["column"]),
        (&"error".into(), &5.into(), &1.into()),
        "{error}"
    );
    let finished = lines.last().unwrap();
    assert_eq!(
        (&finished["skills"], &finished["errors"]),
        (&2.into(), &1.into())
    );
}

#[test]
fn hidden_text_is_reported_where_it_is_and_counted_at_install() {
    let tmp = tempfile::tempdir().unwrap();
    // A zero-width space and a right-to-left override in the body, tag
    // characters spelling "IGNORE" in a bundled reference.
    let dir = write_skill(
        tmp.path(),
        "sly",
        "---\nname: sly\ndescription: Looks harmless.\n---\nBe helpful.\u{200B}\nabc\u{202E}fed\n",
    );
    std::fs::create_dir_all(dir.join("references")).unwrap();
    let tags: String = "IGNORE"
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
        .collect();
    std::fs::write(
        dir.join("references/notes.md"),
        format!("Notes.\nplain {tags}\n"),
    )
    .unwrap();

    let out = boternity()
        .arg("check")
        .arg(&dir)
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    let findings: Vec<(String, u64, u64, String)> = json_lines(&out)
        .into_iter()
        .filter(|v| v["code"] == "hidden-text")
        .map(|v| {
            (
                Path::new(v["path"].as_str().unwrap())
                    .strip_prefix(&dir)
                    .unwrap()
                    .display()
                    .to_string(),
                v["line"].as_u64().unwrap(),
                v["column"].as_u64().unwrap(),
                v["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at: Vec<(&str, u64, u64)> = findings
        .iter()
        .map(|(p, l, c, _)| (p.as_str(), *l, *c))
        .collect();
    let mut expected_at = vec![("SKILL.md", 5, 12), ("SKILL.md", 6, 4)];
    expected_at.extend((7..13).map(|c| ("references/notes.md", 2, c)));
    assert_eq!(at, expected_at, "{}", stdout(&out));
    assert!(
        findings[0].3.contains("U+200B ZERO WIDTH SPACE"),
        "{findings:?}"
    );
    assert!(
        findings[1].3.contains("U+202E RIGHT-TO-LEFT OVERRIDE"),
        "{findings:?}"
    );
    assert!(findings[2].3.contains("tag"), "{findings:?}");
    // Warnings only: --strict makes them fail.
    assert!(out.status.success(), "{}", stderr(&out));
    let strict = boternity()
        .arg("check")
        .arg(&dir)
        .arg("--strict")
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));

    // The install goes ahead and says how many, and where.
    let line = install_ok(&tmp.path().join("store"), &dir, &[]);
    let hidden: Vec<&Value> = line["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "hidden-text")
        .collect();
    assert_eq!(hidden.len(), 1, "{line}");
    let message = hidden[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("8 hidden characters")
            && message.contains("SKILL.md")
            && message.contains("references/notes.md"),
        "{message}"
    );
    assert_eq!(
        (hidden[0]["line"].as_u64(), hidden[0]["column"].as_u64()),
        (Some(5), Some(12))
    );
}
