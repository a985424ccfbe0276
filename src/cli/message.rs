//! `--message-format json`: one typed struct per `reason`, and one [`emit`]
//! that prints it as a single JSON line on stdout (cargo's
//! `machine_message.rs`). The book's JSON messages page
//! (docs/src/reference/json-messages.md) lists the same reasons and fields;
//! a struct here is the only place a field is named.

use std::path::Path;

use boternity_skills::executor::Outcome;
use boternity_skills::executor::bench::BenchReport;
use boternity_skills::executor::grants::Requested;
use boternity_skills::registry::index::IndexEntry;
use boternity_skills::skill::manifest::{TrustTier, Warning};
use boternity_skills::skill::validate::ValidComponent;
use boternity_skills::store::InstalledBinary;
use boternity_skills::{Installed, PathTaken, Prepared};
use schemars::JsonSchema;
use serde::Serialize;

use super::schema::{
    BenchReportSchema, CapabilitySchema, ChangeSchema, FindingSchema, GitStatusSchema,
    IndexEntrySchema, InstalledBinarySchema, OriginSchema, OutcomeSchema, PathTakenSchema,
    RequestedSchema, StandingSchema, TrustTierSchema, WarningSchema,
};

/// A machine message: its `reason` and its fields (and their schema, see
/// [`super::schema`]).
pub trait Message: Serialize + JsonSchema {
    const REASON: &'static str;
}

/// Prints `message` as one JSON object on its own line, `reason` included.
pub fn emit<M: Message>(message: &M) {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        let field = object.insert("reason".into(), M::REASON.into());
        debug_assert!(field.is_none(), "{} has a field named `reason`", M::REASON);
    }
    println!("{value}");
}

/// The text of an error and each of its causes, once each.
pub fn error_text(err: &anyhow::Error) -> String {
    boternity_skills::error_chain(err.as_ref())
}

/// Any subcommand failed (an error it returned; `build-skill` and `install`
/// report theirs as `build-failed` and `install-failed`).
#[derive(Serialize, JsonSchema)]
pub struct CommandFailed {
    /// The subcommand (`index sign` for `index`'s).
    pub command: &'static str,
    /// The error and each of its causes, once each.
    pub error: String,
    /// The flags that answer it.
    pub hint: Option<&'static str>,
}

impl Message for CommandFailed {
    const REASON: &'static str = "command-failed";
}

/// `build-skill` finished.
#[derive(Serialize, JsonSchema)]
pub struct SkillBuilt<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub path: &'a Path,
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
    #[schemars(with = "PathTakenSchema")]
    pub path_taken: PathTaken,
    pub detail: &'a str,
    pub source: Option<&'static str>,
    pub imports: Option<&'a [String]>,
    pub rustc: Option<&'a str>,
    pub notes: &'a [String],
    /// What the lenient `SKILL.md` reader bent.
    #[schemars(with = "Vec<WarningSchema>")]
    pub warnings: &'a [Warning],
}

impl Message for SkillBuilt<'_> {
    const REASON: &'static str = "skill-built";
}

impl<'a> SkillBuilt<'a> {
    pub fn new(prepared: &'a Prepared, output: &'a Path) -> Self {
        let component: Option<&ValidComponent> = prepared.component.as_ref();
        SkillBuilt {
            name: prepared.name(),
            version: prepared.folder.manifest.version.as_deref(),
            path: output,
            size: component.map(|c| c.size),
            sha256: component.map(|c| c.sha256.as_str()),
            path_taken: prepared.path_taken,
            detail: &prepared.reason,
            source: prepared.folder.rust.as_ref().map(|r| r.shape()),
            imports: component.map(|c| c.imports.as_slice()),
            rustc: prepared
                .toolchain
                .as_ref()
                .map(|t| t.rustc_version.as_str()),
            notes: &prepared.notes,
            warnings: &prepared.folder.manifest.warnings,
        }
    }
}

/// `build-skill` failed.
#[derive(Serialize, JsonSchema)]
pub struct BuildFailed<'a> {
    pub skill_dir: &'a Path,
    pub error: String,
}

impl Message for BuildFailed<'_> {
    const REASON: &'static str = "build-failed";
}

/// `install` finished.
#[derive(Serialize, JsonSchema)]
pub struct SkillInstalled<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub path: &'a Path,
    #[schemars(with = "PathTakenSchema")]
    pub path_taken: PathTaken,
    pub detail: &'a str,
    pub stub: bool,
    #[schemars(with = "TrustTierSchema")]
    pub trust_tier: TrustTier,
    pub sha256: Option<&'a str>,
    pub size: Option<u64>,
    pub precompiled: bool,
    pub replaced: bool,
    /// The library's notes, then what was asked for and not granted, with
    /// the flags that would grant it.
    pub notes: Vec<String>,
    /// What the lenient `SKILL.md` reader bent.
    #[schemars(with = "Vec<WarningSchema>")]
    pub warnings: &'a [Warning],
    /// Files installed from the skill's folder.
    pub files: usize,
    /// What `SKILL.md` asked for: `capabilities`, `secrets`.
    #[schemars(with = "RequestedSchema")]
    pub requested: &'a Requested,
    /// What the skill may do: `capabilities`, `env_vars`, `http_hosts`, `secrets`.
    pub granted: GrantedFields<'a>,
    /// What was asked for and not granted: `capabilities`, `secrets`.
    #[schemars(with = "RequestedSchema")]
    pub not_granted: &'a Requested,
    /// Where it came from (`kind` and its fields; for `oci`, the reference
    /// as asked and the manifest digest it resolved to).
    #[schemars(with = "Option<OriginSchema>")]
    pub origin: Option<&'a boternity_skills::store::provenance::Origin>,
}

/// `granted` of `skill-installed`: the grants without the data folder (the
/// store's, decided at run).
#[derive(Serialize, JsonSchema)]
pub struct GrantedFields<'a> {
    #[schemars(with = "std::collections::BTreeSet<CapabilitySchema>")]
    pub capabilities: &'a std::collections::BTreeSet<boternity_skills::skill::manifest::Capability>,
    pub env_vars: &'a std::collections::BTreeSet<String>,
    pub http_hosts: &'a std::collections::BTreeSet<String>,
    pub secrets: &'a std::collections::BTreeSet<String>,
}

impl Message for SkillInstalled<'_> {
    const REASON: &'static str = "skill-installed";
}

impl<'a> SkillInstalled<'a> {
    pub fn new(installed: &'a Installed) -> Self {
        let p = &installed.provenance;
        SkillInstalled {
            name: &installed.name,
            version: p.version.as_deref(),
            path: &installed.dir,
            path_taken: installed.path_taken,
            detail: &installed.reason,
            stub: installed.path_taken == PathTaken::Stub,
            trust_tier: installed.trust_tier,
            sha256: p.wasm.as_ref().map(|w| w.sha256.as_str()),
            size: p.wasm.as_ref().map(|w| w.size),
            precompiled: p.cwasm.is_some(),
            replaced: installed.replaced,
            notes: installed
                .notes
                .iter()
                .cloned()
                .chain(super::install::not_granted_note(installed))
                .collect(),
            warnings: &p.warnings,
            files: p.files.len(),
            requested: &installed.requested,
            granted: GrantedFields {
                capabilities: &installed.granted.capabilities,
                env_vars: &installed.granted.env_vars,
                http_hosts: &installed.granted.http_hosts,
                secrets: &installed.granted.secrets,
            },
            not_granted: &installed.not_granted,
            origin: installed.provenance.origin.as_ref(),
        }
    }
}

/// `install` failed; the store is unchanged.
#[derive(Serialize, JsonSchema)]
pub struct InstallFailed<'a> {
    pub skill_dir: &'a Path,
    pub error: String,
}

impl Message for InstallFailed<'_> {
    const REASON: &'static str = "install-failed";
}

/// One line of `list`.
#[derive(Serialize, JsonSchema)]
pub struct InstalledSkillLine<'a> {
    /// The store key.
    pub name: &'a str,
    /// The `name` field as the author wrote it.
    pub written_name: Option<&'a str>,
    /// Files installed from the skill's folder.
    pub files: usize,
    pub version: &'a str,
    #[serde(rename = "type")]
    pub skill_type: &'a str,
    #[schemars(with = "Option<InstalledBinarySchema>")]
    pub binary: Option<InstalledBinary>,
    #[schemars(with = "TrustTierSchema")]
    pub trust_tier: TrustTier,
    #[schemars(with = "Option<PathTakenSchema>")]
    pub path_taken: Option<PathTaken>,
    pub manifest_error: Option<String>,
    pub path: &'a Path,
    /// Where it came from (`kind`: `folder`, `registry` or `git`, with
    /// `url`, `path`, `requested` and `commit` for git).
    #[schemars(with = "Option<OriginSchema>")]
    pub origin: Option<&'a boternity_skills::store::provenance::Origin>,
}

impl Message for InstalledSkillLine<'_> {
    const REASON: &'static str = "installed-skill";
}

/// One skill of `precompile`, as its index entry, with the dependency
/// layer its build used.
#[derive(Serialize, JsonSchema)]
pub struct SkillPrecompiled<'a> {
    #[serde(flatten)]
    #[schemars(with = "IndexEntrySchema")]
    pub entry: &'a IndexEntry,
    /// `built` (its build built the dependency layer), `reused` (it found
    /// it) or `none` (nothing was built, or without a layer).
    pub layer: LayerWord,
    /// The layer's key (its folder in the cache's `layers/`), when there is one.
    pub layer_key: Option<&'a str>,
}

/// How a build came by its dependency layer.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum LayerWord {
    Built,
    Reused,
    None,
}

impl LayerWord {
    pub fn of(layer: Option<&boternity_skills::build::layer::Layered>) -> LayerWord {
        use boternity_skills::build::layer::LayerOutcome;
        match layer.map(|l| l.outcome) {
            Some(LayerOutcome::Built) => LayerWord::Built,
            Some(LayerOutcome::Reused) => LayerWord::Reused,
            None => LayerWord::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LayerWord::Built => "built",
            LayerWord::Reused => "reused",
            LayerWord::None => "none",
        }
    }
}

impl Message for SkillPrecompiled<'_> {
    const REASON: &'static str = "skill-precompiled";
}

/// A skill pushed to an OCI registry (`push`, `precompile --push`).
#[derive(Serialize, JsonSchema)]
pub struct SkillPushed<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    /// Where it was pushed (`host/repository:tag`).
    pub reference: String,
    /// The manifest's digest (`sha256:…`): what `install oci://…@DIGEST` pins.
    pub digest: &'a str,
    /// Blobs uploaded, bytes uploaded, and blobs the registry already had.
    pub uploaded: usize,
    pub bytes: u64,
    pub skipped: usize,
    /// The signature manifest's digest, when signed.
    pub signature: Option<&'a str>,
}

impl<'a> SkillPushed<'a> {
    pub fn new(
        name: &'a str,
        version: Option<&'a str>,
        pushed: &'a boternity_skills::oci::Pushed,
        signature: Option<&'a str>,
    ) -> SkillPushed<'a> {
        SkillPushed {
            name,
            version,
            reference: pushed.reference.to_string(),
            digest: &pushed.digest,
            uploaded: pushed.uploaded,
            bytes: pushed.bytes,
            skipped: pushed.skipped,
            signature,
        }
    }
}

impl Message for SkillPushed<'_> {
    const REASON: &'static str = "skill-pushed";
}

/// `precompile` finished.
#[derive(Serialize, JsonSchema)]
pub struct PrecompileFinished<'a> {
    pub skills: usize,
    pub found: usize,
    pub ok: usize,
    pub cached: usize,
    pub skipped: usize,
    pub failed: usize,
    pub duration_ms: u64,
    pub index: &'a Path,
}

impl Message for PrecompileFinished<'_> {
    const REASON: &'static str = "precompile-finished";
}

/// `run`: the skill answered (`ok` or `err`), with every field of the
/// library's [`Outcome`].
#[derive(Serialize, JsonSchema)]
pub struct SkillRun<'a> {
    #[serde(flatten)]
    #[schemars(with = "OutcomeSchema")]
    pub outcome: &'a Outcome,
    /// Where the component's machine code came from: `compiled`,
    /// `precompiled` (its signed `.cwasm`) or `cache` (the compile cache);
    /// null for a stub.
    pub load_origin: Option<&'static str>,
}

impl Message for SkillRun<'_> {
    const REASON: &'static str = "skill-run";
}

/// `run`: the skill was stopped or could not be loaded.
#[derive(Serialize, JsonSchema)]
pub struct SkillStopped {
    pub error: String,
}

impl Message for SkillStopped {
    const REASON: &'static str = "skill-stopped";
}

/// `validate`.
#[derive(Serialize, JsonSchema)]
pub struct Validated<'a> {
    pub valid: bool,
    pub file: &'a Path,
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
    pub imports: Option<&'a [String]>,
    pub error: Option<String>,
    pub differences: Vec<String>,
}

impl Message for Validated<'_> {
    const REASON: &'static str = "validated";
}

/// `bench`: every field of the library's [`BenchReport`], and the build
/// profile (debug figures are not meaningful).
#[derive(Serialize, JsonSchema)]
pub struct Bench<'a> {
    #[serde(flatten)]
    #[schemars(with = "BenchReportSchema")]
    pub report: &'a BenchReport,
    pub profile: &'static str,
}

impl Message for Bench<'_> {
    const REASON: &'static str = "bench";
}

/// `doctor`: every check, and whether skill source can be built confined.
#[derive(Serialize, JsonSchema)]
pub struct Doctor<'a> {
    pub checks: &'a [DoctorCheck],
    pub can_build_confined: bool,
    pub ok: bool,
}

impl Message for Doctor<'_> {
    const REASON: &'static str = "doctor";
}

/// One finding of `doctor`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DoctorCheck {
    /// What was checked (`toolchain`, `target wasm32-wasip2`, `landlock`, …).
    pub check: String,
    pub status: DoctorStatus,
    /// What was found.
    pub detail: String,
    /// What to do about it (problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How a `doctor` check came out: `warn` works with less protection, `error`
/// is something boternity needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DoctorStatus {
    Ok,
    Warn,
    Error,
}

/// `check`: one finding (`severity` is `warning` or `error`).
#[derive(Serialize, JsonSchema)]
pub struct CheckFinding<'a> {
    #[serde(flatten)]
    #[schemars(with = "FindingSchema")]
    pub finding: &'a boternity_skills::skill::lint::Finding,
}

impl Message for CheckFinding<'_> {
    const REASON: &'static str = "check-finding";
}

/// `check` finished.
#[derive(Serialize, JsonSchema)]
pub struct CheckFinished<'a> {
    pub skills: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Files `--fix` rewrote.
    pub fixed: &'a [std::path::PathBuf],
    pub strict: bool,
}

impl Message for CheckFinished<'_> {
    const REASON: &'static str = "check-finished";
}

/// `install --git --list`: one skill the repository holds.
#[derive(Serialize, JsonSchema)]
pub struct SkillFound<'a> {
    /// The store key it would get.
    pub name: &'a str,
    pub written_name: Option<&'a str>,
    /// Its folder in the repository (`""`: the root).
    pub path: &'a str,
    #[serde(rename = "type")]
    pub skill_type: Option<String>,
    pub description: Option<&'a str>,
    pub manifest_error: Option<String>,
    pub url: &'a str,
    pub commit: &'a str,
}

impl Message for SkillFound<'_> {
    const REASON: &'static str = "skill-found";
}

/// `outdated`: one skill installed from git or from a registry.
#[derive(Serialize, JsonSchema)]
pub struct SkillOutdated<'a> {
    pub name: &'a str,
    /// `git`, `registry` or `oci`.
    pub kind: &'static str,
    /// The repository, or the registry (URL or folder).
    pub url: &'a str,
    /// The skill's folder in the repository (`null` for a registry).
    pub path: Option<&'a str>,
    /// The ref followed (`null`: the default branch, or a registry).
    pub requested: Option<&'a str>,
    /// The installed commit (git) or version (registry).
    pub installed: &'a str,
    /// The newest commit of the ref, or the registry's newest version that
    /// is not yanked.
    pub latest: Option<&'a str>,
    pub status: OutdatedStatus<'a>,
    /// Why the installed version was yanked in the registry (registry only).
    pub yanked: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// `status` of `skill-outdated`: git's (`up-to-date`, `outdated`, `pinned`,
/// `unknown`) or a registry's (`up-to-date`, `outdated`, `yanked`, `unknown`).
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OutdatedStatus<'a> {
    Git(#[schemars(with = "GitStatusSchema")] &'a boternity_skills::install::sync::Status),
    Registry(#[schemars(with = "StandingSchema")] boternity_skills::registry::installed::Standing),
}

impl Message for SkillOutdated<'_> {
    const REASON: &'static str = "skill-outdated";
}

/// `verify`: one skill re-hashed against its provenance record.
#[derive(Serialize, JsonSchema)]
pub struct SkillVerified<'a> {
    pub name: &'a str,
    /// No file changed and the installed version is not yanked.
    pub ok: bool,
    #[schemars(with = "Vec<ChangeSchema>")]
    pub changes: &'a [boternity_skills::store::verify::Change],
    /// Why the installed version was yanked in its registry (from the
    /// index the download cache holds).
    pub yanked: Option<&'a str>,
    pub error: Option<String>,
}

impl Message for SkillVerified<'_> {
    const REASON: &'static str = "skill-verified";
}

/// `update`: one skill (after its `skill-installed` when it moved).
#[derive(Serialize, JsonSchema)]
pub struct SkillUpdated<'a> {
    pub name: &'a str,
    pub outcome: UpdateOutcome,
    /// The commit installed before (null: not from git, or failed).
    pub from: Option<&'a str>,
    /// The commit installed now (the same as `from` unless moved).
    pub to: Option<&'a str>,
    /// Why it failed (the installed version is kept).
    pub error: Option<String>,
    /// The flags that answer `error`.
    pub hint: Option<&'static str>,
}

/// `outcome` of `skill-updated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOutcome {
    Moved,
    UpToDate,
    /// Installed with `--rev`: left alone.
    Pinned,
    /// Installed from a folder or a registry: nothing to follow.
    NotGit,
    Failed,
}

impl Message for SkillUpdated<'_> {
    const REASON: &'static str = "skill-updated";
}

/// `sync` finished (after a `skill-installed` per skill it installed).
#[derive(Serialize, JsonSchema)]
pub struct SyncFinished<'a> {
    /// The lock file.
    pub lock: &'a Path,
    /// Skills the lock lists.
    pub skills: usize,
    /// Installed now.
    pub installed: Vec<&'a str>,
    /// Already installed exactly as locked.
    pub unchanged: &'a [String],
    /// Installed but not in the lock (kept).
    pub extra: &'a [String],
}

impl Message for SyncFinished<'_> {
    const REASON: &'static str = "sync-finished";
}

/// `remove`.
#[derive(Serialize, JsonSchema)]
pub struct SkillRemoved<'a> {
    pub name: &'a str,
    /// The data folder holding skills/.
    pub store: &'a Path,
    pub data: RemovedDataField,
    /// The skill's data folder (null when it had none).
    pub data_dir: Option<&'a Path>,
}

/// `data` of `skill-removed`: what became of the skill's data folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemovedDataField {
    /// It had none.
    None,
    Deleted,
    /// Kept, for a reinstall from the same origin only.
    Kept,
}

impl From<boternity_skills::store::RemovedData> for RemovedDataField {
    fn from(data: boternity_skills::store::RemovedData) -> Self {
        use boternity_skills::store::RemovedData;
        match data {
            RemovedData::None => RemovedDataField::None,
            RemovedData::Deleted => RemovedDataField::Deleted,
            RemovedData::Kept => RemovedDataField::Kept,
        }
    }
}

impl Message for SkillRemoved<'_> {
    const REASON: &'static str = "skill-removed";
}

/// `keygen`.
#[derive(Serialize, JsonSchema)]
pub struct KeyWritten<'a> {
    /// The secret key file (mode 0600).
    pub secret_key: &'a Path,
    /// The public key file (`--registry-key` takes it).
    pub public_key: &'a Path,
    pub key_id: String,
    /// The public key in base64 (`BOTERNITY_REGISTRY_KEY` takes it).
    pub public_key_base64: String,
    /// Whether the secret key is encrypted with the `--password-env` password.
    pub encrypted: bool,
}

impl Message for KeyWritten<'_> {
    const REASON: &'static str = "key-written";
}

/// `index merge`.
#[derive(Serialize, JsonSchema)]
pub struct IndexMerged<'a> {
    /// Where the merged index was written (null: it is `index` below).
    pub output: Option<&'a Path>,
    /// How many indexes were merged.
    pub inputs: usize,
    pub skills: usize,
    pub serial: u64,
    /// The stale signature of the index this merge replaced, removed.
    pub removed_signature: Option<&'a Path>,
    pub warnings: Vec<String>,
    /// The merged index itself, when no `-o` was given.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub index: Option<serde_json::Value>,
}

impl Message for IndexMerged<'_> {
    const REASON: &'static str = "index-merged";
}

/// `index sign`, and `index yank --key` after its `index-yanked`.
#[derive(Serialize, JsonSchema)]
pub struct IndexSigned<'a> {
    pub index: &'a Path,
    /// The signature file (`INDEX.minisig`).
    pub signature: &'a Path,
    pub key_id: String,
    pub serial: u64,
    pub expires: &'a str,
}

impl Message for IndexSigned<'_> {
    const REASON: &'static str = "index-signed";
}

/// `index verify`: the signature holds (a bad one is a `command-failed`).
#[derive(Serialize, JsonSchema)]
pub struct IndexVerified<'a> {
    pub index: &'a Path,
    pub key_id: String,
    pub serial: u64,
    /// Null: signed without an expiry.
    pub expires: Option<&'a str>,
    /// Past `expires`, accepted with `--allow-expired`.
    pub expired: bool,
}

impl Message for IndexVerified<'_> {
    const REASON: &'static str = "index-verified";
}

/// `index yank`.
#[derive(Serialize, JsonSchema)]
pub struct IndexYanked<'a> {
    pub index: &'a Path,
    pub name: &'a str,
    pub version: &'a str,
    /// Why it was yanked; null with `--undo` (un-yanked).
    pub yanked: Option<&'a str>,
    pub serial: u64,
    /// Signed with `--key` (an `index-signed` follows).
    pub signed: bool,
    /// Without `--key`: the stale signature, removed.
    pub removed_signature: Option<&'a Path>,
}

impl Message for IndexYanked<'_> {
    const REASON: &'static str = "index-yanked";
}

/// `new-skill`.
#[derive(Serialize, JsonSchema)]
pub struct SkillCreated<'a> {
    pub name: &'a str,
    /// The new skill's folder.
    pub path: &'a Path,
}

impl Message for SkillCreated<'_> {
    const REASON: &'static str = "skill-created";
}

/// `cache info`: what the cache folder holds, by kind.
#[derive(Serialize, JsonSchema)]
pub struct CacheInfo<'a> {
    pub cache_dir: &'a Path,
    /// Every kind together, in bytes of disk.
    pub total_bytes: u64,
    /// What the budget bounds: the kinds `cache gc` sweeps.
    pub swept_bytes: u64,
    /// The budget (null: never swept).
    pub budget: Option<u64>,
    pub kinds: Vec<CacheKindField<'a>>,
}

impl Message for CacheInfo<'_> {
    const REASON: &'static str = "cache-info";
}

/// One kind of `cache-info`.
#[derive(Serialize, JsonSchema)]
pub struct CacheKindField<'a> {
    /// `targets`, `layers`, `layer-plans`, `shared-target`, `sources`, `fetched`,
    /// `cargo-home`, `git`, `downloads` or `compiled`.
    pub kind: &'static str,
    pub path: &'a Path,
    pub bytes: u64,
    pub entries: usize,
    /// The most recent use of one of its entries, RFC 3339: boternity's
    /// record, else when the entry's folder last changed (null: no entry).
    pub last_used: Option<String>,
    /// Whether `cache gc` (and the sweep after a build) removes it to the budget.
    pub swept: bool,
}

/// One entry a sweep removed or kept.
#[derive(Serialize, JsonSchema)]
pub struct CacheEntryField<'a> {
    /// Its kind, as in `cache-info`.
    pub kind: &'static str,
    pub path: &'a Path,
    pub bytes: u64,
    /// Its last use, RFC 3339: boternity's record, else when its folder
    /// last changed (null: unknown).
    pub last_used: Option<String>,
}

/// `cache gc`.
#[derive(Serialize, JsonSchema)]
pub struct CacheGc<'a> {
    pub budget: u64,
    /// What the build outputs took before and after.
    pub before_bytes: u64,
    pub after_bytes: u64,
    /// Removed, least recently used first.
    pub removed: Vec<CacheEntryField<'a>>,
    /// Kept because a build was using them.
    pub in_use: Vec<CacheEntryField<'a>>,
}

impl Message for CacheGc<'_> {
    const REASON: &'static str = "cache-gc";
}

/// `cache clean`.
#[derive(Serialize, JsonSchema)]
pub struct CacheCleaned<'a> {
    /// What the cache folder's kinds took before and after.
    pub before_bytes: u64,
    pub after_bytes: u64,
    pub removed: Vec<CacheEntryField<'a>>,
    /// Kept because a build was using them.
    pub in_use: Vec<CacheEntryField<'a>>,
}

impl Message for CacheCleaned<'_> {
    const REASON: &'static str = "cache-cleaned";
}
