//! The JSON Schema of every `--message-format json` message (docs/schema/),
//! generated from the message types of [`super::message`] with `schemars`.
//!
//! The library's types that messages embed get no schema derive of their
//! own: each has a mirror here, used through `#[schemars(with = …)]`. The
//! schemas are strict (`additionalProperties: false`, every field a message
//! always prints is `required`), and the test suite checks each JSON line
//! it sees against them (tests/it/common's `validate_json_line`), so a mirror
//! that drifts from its library type fails the tests.

// Mirrors are described, never built.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use super::message::{self, Message};

/// The schema documents' draft.
const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every message: its `reason` and its schema, each document self-contained
/// (its own `$defs`), `reason` added as a required constant.
pub fn message_schemas() -> Vec<(&'static str, Value)> {
    fn one<M: Message + JsonSchema>() -> (&'static str, Value) {
        let generator = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator();
        let schema: Schema = generator.into_root_schema_for::<M>();
        let mut value = schema.to_value();
        let object = value.as_object_mut().expect("a message is an object");
        // `emit` adds the reason: first, as readers look for it.
        let mut properties = Map::new();
        properties.insert(
            "reason".into(),
            json!({ "const": M::REASON, "description": "What the message is." }),
        );
        if let Some(Value::Object(own)) = object.remove("properties") {
            properties.extend(own);
        }
        object.insert("properties".into(), Value::Object(properties));
        let required = object
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(required) = required {
            required.insert(0, "reason".into());
        }
        close_objects(&mut value);
        (M::REASON, value)
    }
    let mut all = vec![
        one::<message::CommandFailed>(),
        one::<message::SkillBuilt<'static>>(),
        one::<message::BuildFailed<'static>>(),
        one::<message::SkillInstalled<'static>>(),
        one::<message::InstallFailed<'static>>(),
        one::<message::SkillPushed<'static>>(),
        one::<message::InstalledSkillLine<'static>>(),
        one::<message::SkillPrecompiled<'static>>(),
        one::<message::PrecompileFinished<'static>>(),
        one::<message::SkillRun<'static>>(),
        one::<message::SkillStopped>(),
        one::<message::Validated<'static>>(),
        one::<message::Bench<'static>>(),
        one::<message::Doctor<'static>>(),
        one::<message::CheckFinding<'static>>(),
        one::<message::CheckFinished<'static>>(),
        one::<message::SkillFound<'static>>(),
        one::<message::SkillOutdated<'static>>(),
        one::<message::SkillVerified<'static>>(),
        one::<message::SkillUpdated<'static>>(),
        one::<message::SyncFinished<'static>>(),
        one::<message::SkillRemoved<'static>>(),
        one::<message::KeyWritten<'static>>(),
        one::<message::IndexMerged<'static>>(),
        one::<message::IndexSigned<'static>>(),
        one::<message::IndexVerified<'static>>(),
        one::<message::IndexYanked<'static>>(),
        one::<message::SkillCreated<'static>>(),
        one::<message::CacheInfo<'static>>(),
        one::<message::CacheGc<'static>>(),
        one::<message::CacheCleaned<'static>>(),
    ];
    all.sort_by_key(|(reason, _)| *reason);
    all
}

/// The index of every message: one document whose `oneOf` holds each
/// message (told apart by its `reason` constant), their shared definitions
/// in `$defs` beside them.
pub fn index_schema(messages: &[(&'static str, Value)]) -> Value {
    let mut defs = Map::new();
    let mut one_of = Vec::new();
    for (reason, schema) in messages {
        let mut schema = schema.clone();
        let object = schema.as_object_mut().expect("an object");
        object.remove("$schema");
        if let Some(Value::Object(own)) = object.remove("$defs") {
            for (name, def) in own {
                let previous = defs.insert(name.clone(), def.clone());
                assert!(
                    previous.is_none_or(|p| p == def),
                    "two different schemas are named {name}"
                );
            }
        }
        assert!(!defs.contains_key(*reason), "{reason} names a type too");
        defs.insert((*reason).into(), schema);
        one_of.push(json!({ "$ref": format!("#/$defs/{reason}") }));
    }
    json!({
        "$schema": DRAFT,
        "title": "boternity --message-format json",
        "description": "One JSON object per line on stdout; `reason` says which message it is. Each message is also in <reason>.schema.json beside this file. The schemas describe this version exactly (no unlisted field); later versions may add fields.",
        "oneOf": one_of,
        "$defs": defs,
    })
}

/// Every object schema that lists its properties allows no others: the
/// schema describes exactly what is printed.
fn close_objects(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if object.contains_key("properties")
        && !object.contains_key("additionalProperties")
        && !object.contains_key("unevaluatedProperties")
    {
        object.insert("additionalProperties".into(), false.into());
    }
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" => {
                if let Value::Object(map) = value {
                    map.values_mut().for_each(close_objects);
                }
            }
            "items" | "additionalProperties" | "not" | "if" | "then" | "else" => {
                close_objects(value)
            }
            "oneOf" | "anyOf" | "allOf" | "prefixItems" => {
                if let Value::Array(list) = value {
                    list.iter_mut().for_each(close_objects);
                }
            }
            _ => {}
        }
    }
}

// The mirrors of the library's types, as they serialize (their docs as the
// library's).

/// Which way a skill's binary came to be.
#[derive(JsonSchema)]
#[schemars(rename = "PathTaken", rename_all = "lowercase")]
pub enum PathTakenSchema {
    /// A prompt skill: no binary.
    Prompt,
    /// Built from Rust source with cargo.
    Built,
    /// A shipped core module, componentized.
    Componentized,
    /// A shipped component, validated as is.
    Validated,
    /// No real build was possible: the JSON stub.
    Stub,
    /// A registry's component, verified against its index.
    Registry,
}

/// Something the lenient `SKILL.md` reader accepted although the spec
/// forbids it: what, where (1-based line and column) and how to fix it.
#[derive(JsonSchema)]
#[schemars(rename = "Warning")]
pub struct WarningSchema {
    /// A stable identifier (`unquoted-colon`, `name-mismatch`, …).
    pub code: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What the author should change.
    pub fix: String,
}

/// How far a skill is trusted; decides its sandbox limits.
#[derive(JsonSchema)]
#[schemars(rename = "TrustTier", rename_all = "lowercase")]
pub enum TrustTierSchema {
    /// Not run in Wasm by boternity (a user's own skill).
    Local,
    Verified,
    Untrusted,
}

/// A host capability a skill may be granted; each gates host functions.
#[derive(JsonSchema)]
#[schemars(rename = "Capability", rename_all = "snake_case")]
pub enum CapabilitySchema {
    ReadFile,
    WriteFile,
    HttpGet,
    HttpPost,
    ExecCommand,
    ReadEnv,
    RecallMemory,
    GetSecret,
}

/// Capabilities and secrets (what `SKILL.md` asks for, or what was not
/// granted of it).
#[derive(JsonSchema)]
#[schemars(rename = "Requested")]
pub struct RequestedSchema {
    pub capabilities: BTreeSet<CapabilitySchema>,
    pub secrets: BTreeSet<String>,
}

/// The kind of an installed `skill.wasm`.
#[derive(JsonSchema)]
#[schemars(rename = "InstalledBinary", rename_all = "lowercase")]
pub enum InstalledBinarySchema {
    Component,
    Stub,
    /// Neither (corrupt, or a core module from elsewhere).
    Unknown,
}

/// Where an installed skill came from.
#[derive(JsonSchema)]
#[schemars(rename = "Origin", tag = "kind", rename_all = "lowercase")]
pub enum OriginSchema {
    /// A folder on this machine.
    Folder { path: PathBuf },
    /// A registry: its URL or folder, and the entry installed.
    Registry {
        url: String,
        name: String,
        version: String,
    },
    /// An OCI registry: the reference as asked and the manifest digest it
    /// resolved to.
    Oci { reference: String, digest: String },
    /// A git repository: the URL (credentials stripped), the skill's path in
    /// it, the ref asked for (null: the default branch) and the commit.
    Git {
        url: String,
        path: String,
        requested: Option<String>,
        commit: String,
    },
}

/// What happened to a skill in a precompile run.
#[derive(JsonSchema)]
#[schemars(rename = "IndexStatus", rename_all = "lowercase")]
pub enum IndexStatusSchema {
    /// Built, componentized, validated or stubbed in this run.
    Ok,
    /// Unchanged since the last run: reused.
    Cached,
    /// A prompt skill in indexes written before registries served prompt
    /// skills' files.
    Skipped,
    /// Failed; `error` says why.
    Failed,
}

/// One skill in a registry index.
#[derive(JsonSchema)]
#[schemars(rename = "IndexEntry")]
pub struct IndexEntrySchema {
    pub name: String,
    pub version: String,
    pub status: IndexStatusSchema,
    /// `skill.wasm`, relative to the index's folder.
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub path_taken: Option<PathTakenSchema>,
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The skill's folder in the registry, relative to the index.
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The sha256 of the source tree the entry was made from.
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Every file of the skill as published, each relative to `dir`.
    #[schemars(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<IndexFileSchema>,
    /// What the lenient `SKILL.md` reader bent.
    #[schemars(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<WarningSchema>,
    /// Withdrawn by the publisher (`boternity index yank`).
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub yanked: Option<YankedSchema>,
}

/// Why and when a version was yanked.
#[derive(JsonSchema)]
#[schemars(rename = "Yanked")]
pub struct YankedSchema {
    pub reason: String,
    /// When, RFC 3339 (UTC).
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// One published file of a skill.
#[derive(JsonSchema)]
#[schemars(rename = "IndexFile")]
pub struct IndexFileSchema {
    /// Relative to the entry's `dir`, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Installed with mode 0755 (scripts).
    #[schemars(skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// What a finished invocation produced.
#[derive(JsonSchema)]
#[schemars(rename = "Outcome")]
pub struct OutcomeSchema {
    /// The skill's answer (null when it answered `err`).
    pub ok: Option<String>,
    /// The skill's error (null when it answered `ok`).
    pub err: Option<String>,
    pub fuel_consumed: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
    pub invocation_id: String,
    pub logs: Vec<LogEntrySchema>,
    pub logs_truncated: bool,
    /// What the skill printed (bounded).
    pub stdout: String,
    pub stderr: String,
    /// stdout or stderr went past the bound and was cut.
    pub output_truncated: bool,
    /// It was a legacy JSON stub: nothing ran.
    pub stub: bool,
}

/// One `log` call.
#[derive(JsonSchema)]
#[schemars(rename = "LogEntry")]
pub struct LogEntrySchema {
    pub level: String,
    pub message: String,
}

/// The figures of `bench`, in the units their names say.
#[derive(JsonSchema)]
#[schemars(rename = "BenchReport")]
pub struct BenchReportSchema {
    pub compile_ms: f64,
    /// A skill's first call in a process, from its installed `.cwasm`: the
    /// sum of the five `cold_` steps below.
    pub cold_start_ms: f64,
    pub cold_read_check_ms: f64,
    pub cold_deserialize_ms: f64,
    pub cold_link_ms: f64,
    pub cold_instantiate_ms: f64,
    pub cold_first_call_ms: f64,
    /// The first load after the `.cwasm` was written or changed.
    pub cold_first_verify_ms: f64,
    /// Cold starts measured.
    pub cold_rounds: usize,
    pub invoke_median_us: f64,
    pub invoke_p99_us: f64,
    pub warm_store_us: f64,
    pub warm_instantiate_us: f64,
    pub warm_call_us: f64,
    pub warm_teardown_us: f64,
    pub compile_per_call_median_us: f64,
    /// `compile_per_call_median_us / invoke_median_us`.
    pub speedup: f64,
    pub iterations: usize,
    pub compile_per_call_iterations: usize,
    /// Where the warm executor's component came from: `compiled` or `cache`.
    pub load_origin: String,
}

/// How bad a `check` finding is.
#[derive(JsonSchema)]
#[schemars(rename = "Severity", rename_all = "lowercase")]
pub enum SeveritySchema {
    /// Accepted by the installer, but breaks the spec.
    Warning,
    /// Refused by the installer.
    Error,
}

/// One finding, at a position in a `SKILL.md`.
#[derive(JsonSchema)]
#[schemars(rename = "Finding")]
pub struct FindingSchema {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub severity: SeveritySchema,
    /// `error` for refusals, else the warning's code.
    pub code: String,
    pub message: String,
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// How a skill installed from git stands against its ref.
#[derive(JsonSchema)]
#[schemars(rename = "GitStatus", rename_all = "kebab-case")]
pub enum GitStatusSchema {
    UpToDate,
    Outdated,
    /// Installed with `--rev`: never moved.
    Pinned,
    /// The origin could not be asked (the reason is in `error`).
    Unknown,
}

/// Where a registry skill stands.
#[derive(JsonSchema)]
#[schemars(rename = "RegistryStanding", rename_all = "kebab-case")]
pub enum StandingSchema {
    UpToDate,
    /// The registry offers a newer version.
    Outdated,
    /// The installed version is yanked in the registry's current index.
    Yanked,
    /// The index could not be had or used (the reason is in `error`).
    Unknown,
}

/// What differs from the provenance record.
#[derive(JsonSchema)]
#[schemars(
    rename = "Change",
    tag = "change",
    content = "file",
    rename_all = "lowercase"
)]
pub enum ChangeSchema {
    Changed(String),
    Missing(String),
    Added(String),
}
