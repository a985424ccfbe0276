//! Flag groups that more than one subcommand takes, each declared (and its
//! help written) once, with clap's `value_parser` over the types' own
//! `FromStr`: where the store is, the output format, `--offline`, a "file or
//! installed skill" argument, grants, run limits, build settings, the stub
//! policy, and signing (`--password-env`, `--expires-in`, `--allow-expired`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use boternity_skills::build::fetch_proxy::RegistryHosts;
use boternity_skills::build::{BuildOptions, Confinement};
use boternity_skills::executor::grants::{Missing, Requested};
use boternity_skills::executor::{Executor, ExecutorConfig};
use boternity_skills::registry::index::parse_validity;
use boternity_skills::registry::sign::{IndexSigner, Password, SignError, SigningKey};
use boternity_skills::skill::manifest::{Capability, TrustTier};
use boternity_skills::store::InstalledSkill;
use boternity_skills::{Grants, Limits, SkillStore};
use clap::ValueEnum;

/// `--message-format`: cargo's convention (human text on stderr; JSON objects
/// on stdout, one per line, each with a `reason`: see `message.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    #[default]
    Human,
    Json,
}

/// `--message-format`, flattened into every subcommand that reports.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct OutputArgs {
    /// Output format: human text, or JSON objects on stdout (one per line).
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormat,
}

impl OutputArgs {
    pub fn json(&self) -> bool {
        self.message_format == MessageFormat::Json
    }
}

/// `--store DIR`, shared by every command that touches the store.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// The data folder holding skills/ (default: $BOTERNITY_DATA_DIR, else ~/.boternity).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

impl StoreArgs {
    /// This process's context ([`super::context::from_env`]), its data
    /// folder `--store` when given.
    pub fn context(&self) -> boternity_skills::Context {
        super::context::from_env(self.store.as_deref())
    }

    pub fn open(&self) -> anyhow::Result<SkillStore> {
        let root = match &self.store {
            Some(dir) => dir.clone(),
            None => super::context::data_dir().ok_or_else(|| {
                anyhow::anyhow!(
                    "no store: pass --store DIR or set BOTERNITY_DATA_DIR (HOME is not set)"
                )
            })?,
        };
        Ok(SkillStore::new(root))
    }
}

/// `--offline`, shared by every command that may fetch (git, a registry).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct OfflineArgs {
    /// Never use the network: only what was fetched before (the git cache's
    /// refs and commits, the download cache's indexes and files).
    #[arg(long)]
    pub offline: bool,
}

/// `--allow-expired`: whether a signed index past its `expires` time may be
/// used (installs, `outdated`, `verify`) or accepted (`index verify`).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct AllowExpiredArgs {
    /// Use a signed index past its `expires` time (with a warning). An
    /// expired index may be an old one replayed to hide newer versions and
    /// yanks.
    #[arg(
        long,
        env = "BOTERNITY_ALLOW_EXPIRED",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_expired: bool,
}

/// `--password-env VAR`: the password of a minisign secret key (`keygen`
/// encrypts with it, signing decrypts with it), never prompted for.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PasswordArgs {
    /// The environment variable holding the secret key's password (keygen
    /// encrypts the key with it; signing reads it). Never prompted for.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

impl PasswordArgs {
    /// The password the variable holds, if one was named.
    pub fn password(&self) -> Result<Option<Password>, SignError> {
        super::context::password(self.password_env.as_deref())
    }
}

/// How an index is signed, besides the key (whose flag is the command's
/// own: `--key`, `--sign-key`): its password and how long the signature
/// holds. A command whose key is optional requires it with
/// [`SigningArgs::requires_key`].
#[derive(clap::Args, Clone, Debug)]
pub struct SigningArgs {
    #[command(flatten)]
    pub password: PasswordArgs,
    /// How long the signed index stays valid (`30d`, `12h`, `1y`; at most 10
    /// years): installs refuse it after that unless --allow-expired.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_validity)]
    pub expires_in: Duration,
}

impl SigningArgs {
    /// A group making these flags require the key flag `key` (its id), for
    /// a command that signs only when given a key.
    pub fn requires_key(key: &'static str) -> clap::ArgGroup {
        clap::ArgGroup::new("signing")
            .args(["password_env", "expires_in"])
            .multiple(true)
            .requires(key)
    }

    /// The signer of `key` with these settings; a wrong password fails here.
    pub fn signer(&self, key: &Path) -> anyhow::Result<IndexSigner> {
        let password = self.password.password()?;
        let key = SigningKey::load(key, password.as_ref())
            .with_context(|| format!("cannot use the key {}", key.display()))?;
        Ok(IndexSigner {
            key,
            validity: self.expires_in,
        })
    }
}

/// A skill to run or measure: a binary file, or the name of an installed
/// skill. `run` and `bench` resolve it the same way: an existing file wins.
#[derive(clap::Args, Clone, Debug)]
pub struct SkillArg {
    /// A skill binary (`skill.wasm`: a component or a legacy stub), or the
    /// name of an installed skill.
    pub skill: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What a [`SkillArg`] named.
pub enum ResolvedSkill {
    File(PathBuf),
    Installed {
        store: SkillStore,
        skill: Box<InstalledSkill>,
    },
}

impl SkillArg {
    pub fn resolve(&self) -> anyhow::Result<ResolvedSkill> {
        let path = Path::new(&self.skill);
        if path.is_file() {
            return Ok(ResolvedSkill::File(path.to_path_buf()));
        }
        let store = self.store.open()?;
        let skill = store.get(&self.skill).with_context(|| {
            format!("`{}` is neither a file nor an installed skill", self.skill)
        })?;
        Ok(ResolvedSkill::Installed {
            store,
            skill: Box::new(skill),
        })
    }
}

/// What a skill may do. A skill's SKILL.md only asks (metadata.capabilities,
/// metadata.secrets); these flags grant.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct GrantArgs {
    /// Grant a capability (repeatable): read_file, write_file, http_get, http_post, exec_command, read_env, recall_memory, get_secret.
    #[arg(long = "grant", value_name = "CAP")]
    pub capabilities: Vec<Capability>,
    /// With read_env: a variable the skill may read (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    pub env_vars: Vec<String>,
    /// With http_get/http_post: a host (or host:port) the skill may reach (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub http_hosts: Vec<String>,
    /// With get_secret: a secret the skill may fetch (repeatable); listing it in metadata.secrets only asks for it.
    #[arg(long = "allow-secret", value_name = "NAME")]
    pub secrets: Vec<String>,
}

impl GrantArgs {
    /// These grants (and `data_dir`), as the library's type.
    pub fn grants(&self, data_dir: Option<PathBuf>) -> Grants {
        Grants {
            capabilities: self.capabilities.iter().copied().collect(),
            env_vars: self.env_vars.iter().cloned().collect(),
            http_hosts: self.http_hosts.iter().cloned().collect(),
            secrets: self.secrets.iter().cloned().collect(),
            data_dir,
        }
    }

    /// The advice a denied skill gets: the flag that grants what it lacked.
    pub fn hint(missing: &Missing<'_>) -> String {
        let flag = match missing {
            Missing::Capability(cap) => format!("--grant {cap}"),
            Missing::Secret(name) => format!("--allow-secret {name}"),
            Missing::EnvVar(name) => format!("--allow-env {name}"),
        };
        format!("grant it with `{flag}` on install, or on run")
    }

    /// The flags that would grant `request` (what a skill asked for and was
    /// not granted); empty when it is.
    pub fn flags_for(request: &Requested) -> Vec<String> {
        let mut flags: Vec<String> = request
            .capabilities
            .iter()
            .map(|c| format!("--grant {c}"))
            .collect();
        if request.capabilities.contains(&Capability::ReadEnv) {
            flags.push("--allow-env NAME".into());
        }
        if request
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::HttpGet | Capability::HttpPost))
        {
            flags.push("--allow-host HOST".into());
        }
        flags.extend(
            request
                .secrets
                .iter()
                .map(|s| format!("--allow-secret {s}")),
        );
        flags
    }
}

/// The limits of one call (defaults: the trust tier's).
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// The trust tier whose default limits apply (default: untrusted for a
    /// file, the install-time tier for an installed skill).
    #[arg(long)]
    pub trust_tier: Option<TrustTier>,
    /// Fuel (wasm instructions, roughly) the call may use.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Linear-memory cap in MiB.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Largest output in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_output: Option<usize>,
    /// Largest input in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_input: Option<usize>,
    /// Largest table, in elements.
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<u64>,
    /// Wasm stack size in KiB; deeper recursion is a stack overflow.
    #[arg(long, value_name = "KIB")]
    pub stack_kib: Option<usize>,
}

impl LimitArgs {
    pub fn limits(&self, default_tier: TrustTier) -> Limits {
        const MIB: u64 = 1024 * 1024;
        let mut limits = Limits::for_tier(self.trust_tier.unwrap_or(default_tier));
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(ms) = self.timeout_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib * MIB;
        }
        if let Some(max) = self.max_output {
            limits.max_output_bytes = max;
        }
        if let Some(max) = self.max_input {
            limits.max_input_bytes = max;
        }
        if let Some(max) = self.max_table_elements {
            limits.table_elements = max;
        }
        limits
    }

    /// The executor for these settings (the stack size is engine-wide),
    /// sized for one call (no instance pool), with the compile cache unless
    /// `cache` says not to.
    pub fn executor(&self, cache: &CacheArgs) -> anyhow::Result<Executor> {
        let mut config = cache.config();
        config.pooling = ExecutorConfig::for_one_call().pooling;
        if let Some(kib) = self.stack_kib {
            config.max_wasm_stack = kib * 1024;
        }
        super::executor_with(config)
    }
}

/// `--no-cache`: whether to use the compile cache (`compiled/` in the cache
/// folder, `$BOTERNITY_CACHE_DIR` honoured).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct CacheArgs {
    /// Neither read nor write the compile cache: compile in memory, and hash
    /// an installed .cwasm on every load.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// [`super::executor_config`], without its compile cache under `--no-cache`
    /// (the signing key stays: installed `.cwasm`s are still checked with it).
    pub fn config(&self) -> ExecutorConfig {
        let mut config = super::executor_config();
        if self.no_cache {
            config.compile_cache = None;
        }
        config
    }
}

/// How skill source is built (build-skill, install, precompile).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BuildArgs {
    /// cargo's target directory for builds (default: each skill its own, in
    /// the cache folder; skills built into one shared directory can read and
    /// overwrite each other's artifacts).
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Build skill source WITHOUT the build sandbox: its build scripts and
    /// proc macros then run with your rights (files, network, environment).
    /// Only for source you trust, on a machine that cannot confine builds.
    #[arg(long)]
    pub allow_unconfined_build: bool,
    /// A sparse index that replaces crates.io for confined builds'
    /// dependency fetches (`sparse+https://host/path/`): the only registry
    /// they then reach. A private-network address must be written literally.
    #[arg(long, value_name = "URL", env = "BOTERNITY_CRATES_MIRROR", value_parser = parse_mirror)]
    pub crates_mirror: Option<String>,
    /// With --crates-mirror: more hosts the fetch may reach (the mirror's
    /// download host), `host[:port]`, comma-separated in the variable.
    #[arg(
        long,
        value_name = "HOST",
        env = "BOTERNITY_FETCH_HOSTS",
        value_delimiter = ',',
        requires = "crates_mirror"
    )]
    pub fetch_host: Vec<String>,
    /// Most bytes one confined build may write: files it creates or changes
    /// in its target directory and private temporary folder (what the
    /// folder held before is not counted). Over it, the build is stopped
    /// (and a target directory of boternity's own removed; yours never).
    #[arg(
        long,
        value_name = "BYTES",
        env = "BOTERNITY_MAX_TARGET_BYTES",
        default_value_t = boternity_skills::build::cargo::MAX_TARGET_BYTES
    )]
    pub max_target_bytes: u64,
    /// Build every skill's dependencies in its own target directory, without
    /// the shared dependency layers (for comparisons: `cargo xtask
    /// bench-precompile`).
    #[arg(long, hide = true)]
    pub no_build_layers: bool,
}

fn parse_mirror(value: &str) -> Result<String, String> {
    RegistryHosts::with_mirror(value, &[])
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

impl BuildArgs {
    /// These flags as the library's build options.
    pub fn options(&self) -> BuildOptions {
        let registries = self
            .crates_mirror
            .as_deref()
            .and_then(|mirror| RegistryHosts::with_mirror(mirror, &self.fetch_host).ok())
            .unwrap_or_default();
        BuildOptions {
            target_dir: self.target_dir.clone(),
            confinement: if self.allow_unconfined_build {
                Confinement::Unconfined
            } else {
                Confinement::Sandboxed
            },
            registries,
            max_target_bytes: self.max_target_bytes,
            layers: !self.no_build_layers,
            ..BuildOptions::default()
        }
    }
}

/// `--no-stub`: a skill that can be neither built nor validated fails
/// instead of becoming a JSON stub (`install`, `update`, `sync`, `precompile`).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct NoStubArgs {
    /// Refuse JSON stubs (for CI): a skill that cannot be built or
    /// validated fails instead of being written as one.
    #[arg(long)]
    pub no_stub: bool,
}

/// How a skill is installed, shared by `install`, `update` and `sync`: the
/// stub policy, the trust tier, replacing another origin's skill, and the
/// build.
#[derive(clap::Args, Clone, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub stub: NoStubArgs,
    /// Replace a skill of the same name installed from another origin (another
    /// folder, repository, path or registry), deleting its data folder.
    #[arg(long)]
    pub force: bool,
    /// The trust tier to install under (the skill's own claim is ignored).
    #[arg(long, default_value = "untrusted")]
    pub trust_tier: TrustTier,
    #[command(flatten)]
    pub build: BuildArgs,
}

impl InstallArgs {
    /// These flags as the library's install options (no extra grants).
    pub fn options(&self) -> boternity_skills::InstallOptions {
        boternity_skills::InstallOptions {
            pipeline: boternity_skills::PipelineOptions {
                build: self.build.options(),
                no_stub: self.stub.no_stub,
                ..Default::default()
            },
            trust_tier: self.trust_tier,
            force: self.force,
            ..Default::default()
        }
    }
}

/// `err`, or the error it wraps with `#[error(transparent)]` (which shows
/// that error's text, and hides it from the source chain), unwrapped until
/// the error is no such wrapper.
fn unwrap_transparent<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    use boternity_skills::git::GitError;
    use boternity_skills::registry::client::RegistryError;
    use boternity_skills::registry::precompile::PrecompileError;
    use boternity_skills::{InstallError, PipelineError};
    // A boxed source is its own type in the chain.
    let install = err
        .downcast_ref::<InstallError>()
        .or_else(|| err.downcast_ref::<Box<InstallError>>().map(|b| &**b));
    if let Some(e) = install {
        match e {
            InstallError::Pipeline(e) => return unwrap_transparent(e),
            InstallError::Git(e) => return unwrap_transparent(e),
            InstallError::Registry(e) => return unwrap_transparent(e),
            InstallError::Store(e) => return e,
            _ => {}
        }
    }
    if let Some(GitError::Store(e)) = err.downcast_ref::<GitError>() {
        return e;
    }
    if let Some(PipelineError::Build(e)) = err.downcast_ref::<PipelineError>() {
        return e;
    }
    if let Some(RegistryError::Sign(e)) = err.downcast_ref::<RegistryError>() {
        return e;
    }
    if let Some(PrecompileError::Sign(e)) = err.downcast_ref::<PrecompileError>() {
        return e;
    }
    err
}

/// The flags that answer a library error, found by its type anywhere in
/// the chain (inside transparent wrappers too): the library says what is
/// wrong in its own terms, the CLI says which flag changes it.
pub fn flag_hint(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use boternity_skills::build::BuildError;
    use boternity_skills::git::GitError;
    use boternity_skills::registry::client::RegistryError;
    use boternity_skills::registry::sign::SignError;
    use boternity_skills::store::StoreError;
    let mut cause = Some(err);
    while let Some(outer) = cause {
        cause = outer.source();
        let c = unwrap_transparent(outer);
        if let Some(StoreError::OtherOrigin { .. }) = c.downcast_ref::<StoreError>() {
            return Some(
                "pass --force to replace it (its data folder is deleted), or `boternity remove` it first",
            );
        }
        if let Some(e) = c.downcast_ref::<GitError>() {
            match e {
                GitError::SeveralSkills { .. } => {
                    return Some(
                        "name the skills, pass --all for every one, or --list to see them",
                    );
                }
                GitError::NotCached { .. } => return Some("run once without --offline"),
                GitError::NotACommit(_) => {
                    return Some("--rev takes a full commit id; use --branch or --tag for a name");
                }
                GitError::TimedOut { .. } => {
                    return Some("BOTERNITY_GIT_DEADLINE sets the limit in seconds");
                }
                _ => {}
            }
        }
        if let Some(e) = c.downcast_ref::<RegistryError>() {
            match e {
                RegistryError::NotCached { .. } => return Some("run once without --offline"),
                RegistryError::Expired { .. } => {
                    return Some(
                        "pass --allow-expired (BOTERNITY_ALLOW_EXPIRED=1) to use an expired index anyway",
                    );
                }
                RegistryError::Unsigned { .. } => {
                    return Some(
                        "the key is pinned by --registry-key or BOTERNITY_REGISTRY_KEY; the publisher signs with `boternity index sign`",
                    );
                }
                _ => {}
            }
        }
        if let Some(BuildError::DiskLimit { .. }) = c.downcast_ref::<BuildError>() {
            return Some(
                "raise the limit with --max-target-bytes BYTES (BOTERNITY_MAX_TARGET_BYTES)",
            );
        }
        if let Some(e) = c.downcast_ref::<boternity_skills::oci::OciError>() {
            use boternity_skills::oci::OciError;
            match e {
                OciError::Unauthorized { with: None, .. } => {
                    return Some(
                        "log in (`docker login`), set BOTERNITY_OCI_USERNAME and BOTERNITY_OCI_PASSWORD, or pass --username with --password-stdin",
                    );
                }
                OciError::NotCached { .. } => return Some("run once without --offline"),
                OciError::Unsigned { .. } => {
                    return Some(
                        "the key is pinned by --registry-key or BOTERNITY_REGISTRY_KEY; the publisher pushes with `boternity push --sign-key`",
                    );
                }
                OciError::InsecureRealm { .. } => {
                    return Some("pass --plain-http to allow plain http:// anyway");
                }
                _ => {}
            }
        }
        if let Some(SignError::PasswordNeeded { .. }) = c.downcast_ref::<SignError>() {
            return Some("pass --password-env VAR naming the variable that holds the password");
        }
    }
    None
}
