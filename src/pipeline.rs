//! The one decision every entry point shares (`build-skill`, `install`,
//! `precompile`): given a skill folder, build its source, componentize a core
//! module, validate a shipped component, or, when nothing can be built, fall
//! back to the legacy JSON stub, and say which and why.
//!
//! Order: a prompt skill has no binary; Rust source with a usable toolchain is
//! built (source wins over a shipped binary); a shipped `skill.wasm` is
//! validated (or componentized); a configured registry's component built from
//! this very source tree (same sha256) is taken; otherwise a stub, unless
//! stubs are forbidden.

use std::path::Path;

use crate::build::cargo::{self, BuildError, BuildOptions};
use crate::build::componentize::{self, ComponentizeError};
use crate::build::toolchain::{Toolchain, ToolchainError};
use crate::context::Context;
use crate::digest::sha256_hex;
use crate::fsutil::{CappedReadError, IoError};
use crate::skill::manifest::SkillType;
use crate::skill::source::{RustSource, SkillFolder, SourceError};
use crate::skill::stub::StubMarker;
use crate::skill::validate::{self, BinaryKind, ValidComponent, ValidateError};

/// Which way a skill's binary came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathTaken {
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
    /// A registry's component: built there from the same source tree (or
    /// installed by name from it), verified against its index.
    Registry,
}

impl std::fmt::Display for PathTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathTaken::Prompt => "prompt",
            PathTaken::Built => "built",
            PathTaken::Componentized => "componentized",
            PathTaken::Validated => "validated",
            PathTaken::Stub => "stub",
            PathTaken::Registry => "registry",
        })
    }
}

/// How the pipeline may proceed.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    pub build: BuildOptions,
    /// Refuse to produce a stub (CI's `--no-stub`, and `build-skill`).
    pub no_stub: bool,
    /// Use this toolchain instead of detecting one (`Some(Err)` forces "none").
    pub toolchain: Option<Result<Toolchain, ToolchainError>>,
    /// A registry to take a component from when nothing can be built here
    /// (step 4 of the decision): its component must have been built from a
    /// source tree with this folder's sha256.
    pub registry: Option<std::sync::Arc<dyn ComponentSource>>,
}

/// Where the decision may find a component built elsewhere from the same
/// source (a registry's client implements it; the pipeline knows no more).
pub trait ComponentSource: std::fmt::Debug + Send + Sync {
    /// The component built from skill `name`'s source tree with sha256
    /// `source_sha256`, verified (signature, size, sha256); `Ok(None)` when
    /// there is none. An `Err` (unreachable, unsigned …) is reported in the
    /// reason of what the decision falls back to.
    fn component_for(
        &self,
        name: &str,
        source_sha256: &str,
    ) -> Result<Option<RegistryComponent>, ComponentSourceError>;
}

/// Why a [`ComponentSource`] could not be used (its own error, kept whole).
pub type ComponentSourceError = Box<dyn std::error::Error + Send + Sync>;

/// A component a [`ComponentSource`] found.
#[derive(Debug, Clone)]
pub struct RegistryComponent {
    pub bytes: Vec<u8>,
    /// Where it came from, in words (`https://… (echo-skill 1.2.0)`).
    pub from: String,
}

/// What the pipeline produced for a skill.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub folder: SkillFolder,
    pub path_taken: PathTaken,
    /// Why this path was taken, in a sentence.
    pub reason: String,
    /// `skill.wasm`'s bytes (a component or a stub); `None` for prompt skills.
    pub binary: Option<Vec<u8>>,
    /// The validation report, for components.
    pub component: Option<ValidComponent>,
    /// The toolchain that built it.
    pub toolchain: Option<Toolchain>,
    /// sha256 of the source tree.
    pub source_sha256: String,
    /// What a user should know: a shipped binary that differs from the build,
    /// compiler warnings, the text added to a bare `lib.rs`.
    pub notes: Vec<String>,
    /// The shipped `skill.wasm`'s sha256 and whether the build reproduced it.
    pub shipped: Option<ShippedBinary>,
    /// Why a stub, for a stub.
    pub stub_reason: Option<StubReason>,
    /// The skill shipped no `Cargo.lock` and is installed with the one its
    /// build resolved (set by the git source, which keeps it).
    pub resolved_cargo_lock: bool,
    /// The dependency layer its build was built over (built or reused), if any.
    pub layer: Option<crate::build::layer::Layered>,
}

/// Why the pipeline wrote a stub instead of a real component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StubReason {
    /// Neither Rust source nor a `skill.wasm`.
    NothingToBuild,
    /// Rust source, but no usable toolchain.
    NoToolchain,
    /// Rust source, but its build cannot be confined on this machine and
    /// unconfined builds were not allowed.
    CannotConfine,
    /// The shipped `skill.wasm` is itself a legacy stub marker.
    ShippedStub,
    /// The registry's binary is a legacy stub marker.
    RegistryStub,
}

/// A `skill.wasm` that came with the source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShippedBinary {
    pub sha256: String,
    /// `Some(true)` when the build produced the same bytes; `None` when nothing was built.
    pub matched_build: Option<bool>,
}

impl Prepared {
    /// The skill folder `dir`, read and hashed, with nothing decided yet (as
    /// a prompt skill: no binary).
    fn open(dir: &Path) -> Result<Prepared, PipelineError> {
        let mut folder = SkillFolder::open(dir)?;
        warn_hidden_text(&mut folder)?;
        Ok(Prepared {
            path_taken: PathTaken::Prompt,
            reason: "a prompt skill has no binary".into(),
            binary: None,
            component: None,
            toolchain: None,
            source_sha256: folder.source_sha256()?,
            notes: Vec::new(),
            shipped: None,
            stub_reason: None,
            resolved_cargo_lock: false,
            layer: None,
            folder,
        })
    }

    pub fn name(&self) -> &str {
        &self.folder.manifest.name
    }
}

/// Adds one warning to the manifest's when the skill's text files hold
/// hidden characters (invisible, bidirectional controls, tags: see
/// [`crate::skill::hidden`]), with how many and where; `check` lists each.
fn warn_hidden_text(folder: &mut SkillFolder) -> Result<(), PipelineError> {
    let texts: Vec<&crate::skill::files::SkillFile> = folder
        .files
        .iter()
        .filter(|f| f.size <= crate::skill::manifest::MAX_MANIFEST_BYTES)
        .filter(|f| crate::skill::hidden::is_text_file(&f.rel))
        .collect();
    let contents = crate::skill::files::read_all(texts).map_err(SourceError::from)?;
    let (count, files) = crate::skill::lint::count_hidden(&contents);
    if count == 0 {
        return Ok(());
    }
    let first = contents
        .iter()
        .find(|c| c.rel == crate::skill::manifest::MANIFEST_FILE)
        .and_then(|c| std::str::from_utf8(&c.bytes).ok())
        .and_then(|t| {
            crate::skill::hidden::find(t)
                .first()
                .map(|h| (h.line, h.column))
        })
        .unwrap_or((1, 1));
    folder
        .manifest
        .warnings
        .push(crate::skill::manifest::Warning::new(
            "hidden-text",
            first,
            format!(
                "{count} hidden character{} (invisible or bidirectional controls) in {}: \
             a model reads them, a person does not",
                if count == 1 { "" } else { "s" },
                files.join(", ")
            ),
            "see each with `boternity check`, and remove them",
        ));
    Ok(())
}

/// Why a skill could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot componentize {what}")]
    Componentize {
        what: String,
        #[source]
        source: ComponentizeError,
    },
    #[error("{what} is not a usable skill component")]
    Invalid {
        what: String,
        #[source]
        source: ValidateError,
    },
    #[error("no real build is possible and stubs are not allowed: {reason}")]
    StubForbidden { reason: String },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Runs the decision for the skill folder `dir`.
/// `context` says where the toolchain is found and where builds keep their
/// caches.
pub fn prepare(
    context: &Context,
    dir: &Path,
    options: &PipelineOptions,
) -> Result<Prepared, PipelineError> {
    let mut prepared = Prepared::open(dir)?;
    if prepared.folder.manifest.skill_type == SkillType::Prompt {
        return Ok(prepared);
    }
    let shipped_bytes = match &prepared.folder.shipped_wasm {
        Some(path) => Some(read_capped(path)?),
        None => None,
    };

    if let Some(rust) = prepared.folder.rust.clone() {
        let toolchain = match &options.toolchain {
            Some(choice) => choice.clone(),
            None => Toolchain::detect(&context.host),
        };
        let unconfinable = match options.build.confinement {
            crate::build::Confinement::Sandboxed => cannot_confine(),
            crate::build::Confinement::Unconfined => None,
        };
        match (toolchain, unconfinable) {
            (Ok(_), Some(why)) => {
                let reason = format!(
                    "the skill has Rust source ({}) but its build cannot be confined here ({why}); \
                     not built (allow an unconfined build to build it anyway, only if you trust it)",
                    rust.shape()
                );
                prepared.notes.push(reason.clone());
                return match shipped_bytes {
                    Some(bytes) => accept_shipped(prepared, bytes, options),
                    None => stub(prepared, options, StubReason::CannotConfine, reason),
                };
            }
            (Ok(toolchain), None) => {
                build_source(context, &mut prepared, &toolchain, &rust, &options.build)?;
                prepared.toolchain = Some(toolchain);
                if let Some(shipped) = shipped_bytes {
                    let sha256 = sha256_hex(&shipped);
                    let matched = prepared.component.as_ref().map(|c| c.sha256 == sha256);
                    prepared.notes.push(if matched == Some(true) {
                        "the shipped skill.wasm is identical to the build".into()
                    } else {
                        "the shipped skill.wasm differs from the build; the build is used".into()
                    });
                    prepared.shipped = Some(ShippedBinary {
                        sha256,
                        matched_build: matched,
                    });
                }
                return Ok(prepared);
            }
            (Err(missing), _) => {
                let reason = format!(
                    "the skill has Rust source ({}) but no usable toolchain: {missing}",
                    rust.shape()
                );
                return match shipped_bytes {
                    Some(bytes) => {
                        prepared.notes.push(reason);
                        accept_shipped(prepared, bytes, options)
                    }
                    None => stub(prepared, options, StubReason::NoToolchain, reason),
                };
            }
        }
    }

    match shipped_bytes {
        Some(bytes) => accept_shipped(prepared, bytes, options),
        None => stub(
            prepared,
            options,
            StubReason::NothingToBuild,
            "the skill has neither Rust source (Cargo.toml or src/lib.rs) nor a skill.wasm".into(),
        ),
    }
}

/// Why this machine cannot run a confined build, if it cannot.
fn cannot_confine() -> Option<String> {
    let support = crate::build::sandbox::probe();
    if support.can_confine() {
        return None;
    }
    Some(support.why_missing.join("; "))
}

fn build_source(
    context: &Context,
    prepared: &mut Prepared,
    toolchain: &Toolchain,
    rust: &RustSource,
    options: &BuildOptions,
) -> Result<(), PipelineError> {
    let built = cargo::build(
        &context.folders,
        toolchain,
        &prepared.folder.manifest.name,
        rust,
        options,
    )?;
    prepared.notes.extend(built.notes.iter().cloned());
    prepared.layer = built.layer.clone();
    if options.confinement == crate::build::Confinement::Unconfined {
        prepared.notes.push(
            "built UNCONFINED (as allowed): its build scripts and macros ran with your rights"
                .into(),
        );
    }
    if let Some(added) = &built.wrapper_additions {
        prepared.notes.push(format!(
            "wrapped the bare lib.rs; appended:{}",
            added.trim_end()
        ));
    }
    if !built.diagnostics.is_empty() {
        prepared
            .notes
            .push(format!("compiler output:\n{}", built.diagnostics));
    }
    let what = format!("the build of `{}`", built.package);
    let (component, componentized) = into_component(built.wasm, &what)?;
    let valid = validate::validate_component(&component)
        .map_err(|source| PipelineError::Invalid { what, source })?;
    prepared.path_taken = PathTaken::Built;
    prepared.reason = format!(
        "built from Rust source ({}) with {}{}",
        rust.shape(),
        toolchain.rustc_version,
        if componentized {
            ", then componentized"
        } else {
            ""
        }
    );
    prepared.binary = Some(component);
    prepared.component = Some(valid);
    Ok(())
}

/// A component as is, or a core module componentized (`true`).
fn into_component(bytes: Vec<u8>, what: &str) -> Result<(Vec<u8>, bool), PipelineError> {
    let invalid = |source| PipelineError::Invalid {
        what: what.to_string(),
        source,
    };
    match validate::classify(&bytes).map_err(invalid)? {
        BinaryKind::Component => Ok((bytes, false)),
        BinaryKind::CoreModule => {
            validate::validate_wasm(&bytes).map_err(invalid)?;
            let component = componentize::componentize(&bytes).map_err(|source| {
                PipelineError::Componentize {
                    what: what.to_string(),
                    source,
                }
            })?;
            Ok((component, true))
        }
        BinaryKind::Stub(_) => Err(invalid(ValidateError::Stub)),
    }
}

fn accept_shipped(
    mut prepared: Prepared,
    bytes: Vec<u8>,
    options: &PipelineOptions,
) -> Result<Prepared, PipelineError> {
    let what = "the shipped skill.wasm".to_string();
    let sha256 = sha256_hex(&bytes);
    prepared.shipped = Some(ShippedBinary {
        sha256,
        matched_build: None,
    });
    if let Ok(BinaryKind::Stub(_)) = validate::classify(&bytes) {
        let reason = "the shipped skill.wasm is a legacy JSON stub marker".to_string();
        if options.no_stub {
            return Err(PipelineError::StubForbidden { reason });
        }
        prepared.path_taken = PathTaken::Stub;
        prepared.stub_reason = Some(StubReason::ShippedStub);
        prepared.reason = reason;
        prepared.binary = Some(bytes);
        return Ok(prepared);
    }
    let (component, componentized) = into_component(bytes, &what)?;
    let valid = validate::validate_component(&component)
        .map_err(|source| PipelineError::Invalid { what, source })?;
    (prepared.path_taken, prepared.reason) = if componentized {
        (
            PathTaken::Componentized,
            "the shipped skill.wasm is a core module with wit-bindgen metadata; componentized"
                .into(),
        )
    } else {
        (
            PathTaken::Validated,
            "the shipped skill.wasm is a component of the skill world".into(),
        )
    };
    prepared.binary = Some(component);
    prepared.component = Some(valid);
    Ok(prepared)
}

/// Prepares a skill folder whose binary came from a registry (`install
/// <name> --registry`): `binary` (checked against the registry's signed
/// index by the caller) is validated like a shipped one and recorded as the
/// registry's; nothing is built. `None` for a prompt skill.
pub fn prepare_with_binary(
    dir: &Path,
    binary: Option<Vec<u8>>,
    options: &PipelineOptions,
) -> Result<Prepared, PipelineError> {
    let prepared = Prepared::open(dir)?;
    match binary {
        None if prepared.folder.manifest.skill_type == SkillType::Prompt => Ok(prepared),
        None => Err(PipelineError::StubForbidden {
            reason: "the registry publishes no binary for this Tool skill".into(),
        }),
        Some(bytes) => accept_registry(
            prepared,
            bytes,
            "the registry's component",
            "the registry's component, verified against its index".into(),
            options,
        ),
    }
}

/// Takes a registry's binary: a stub stays a stub; a component (or a core
/// module, componentized) must pass validation and the world check.
fn accept_registry(
    mut prepared: Prepared,
    bytes: Vec<u8>,
    what: &str,
    reason: String,
    options: &PipelineOptions,
) -> Result<Prepared, PipelineError> {
    if let Ok(BinaryKind::Stub(_)) = validate::classify(&bytes) {
        let reason = format!("{what} is a legacy JSON stub marker");
        if options.no_stub {
            return Err(PipelineError::StubForbidden { reason });
        }
        prepared.path_taken = PathTaken::Stub;
        prepared.stub_reason = Some(StubReason::RegistryStub);
        prepared.reason = reason;
        prepared.binary = Some(bytes);
        return Ok(prepared);
    }
    let what = what.to_string();
    let (component, _) = into_component(bytes, &what)?;
    let valid = validate::validate_component(&component)
        .map_err(|source| PipelineError::Invalid { what, source })?;
    prepared.path_taken = PathTaken::Registry;
    prepared.reason = reason;
    prepared.binary = Some(component);
    prepared.component = Some(valid);
    Ok(prepared)
}

/// Step 4: the configured registry's component built from this very source
/// tree, if it has one; else the stub.
fn stub(
    mut prepared: Prepared,
    options: &PipelineOptions,
    why: StubReason,
    mut reason: String,
) -> Result<Prepared, PipelineError> {
    if let Some(registry) = &options.registry {
        let name = prepared.folder.manifest.name.clone();
        match registry.component_for(&name, &prepared.source_sha256) {
            Ok(Some(found)) => {
                let reason = format!(
                    "the registry's component from {}, built there from this very source tree \
                     (sha256 {}) and verified against its index; not built here: {reason}",
                    found.from, prepared.source_sha256
                );
                let what = format!("the registry's component from {}", found.from);
                return accept_registry(prepared, found.bytes, &what, reason, options);
            }
            Ok(None) => {
                reason.push_str(&format!(
                    "; the registry has no component built from this source (sha256 {})",
                    prepared.source_sha256
                ));
            }
            Err(why) => reason.push_str(&format!(
                "; the registry could not be used: {}",
                crate::error_chain(why.as_ref())
            )),
        }
    }
    if options.no_stub {
        return Err(PipelineError::StubForbidden { reason });
    }
    tracing::info!(skill = %prepared.folder.manifest.name, %reason, "writing a JSON stub instead of a real component");
    prepared.binary = Some(StubMarker::new(prepared.folder.manifest.body.clone()).to_bytes());
    prepared.path_taken = PathTaken::Stub;
    prepared.stub_reason = Some(why);
    prepared.reason = reason;
    Ok(prepared)
}

/// Reads a shipped binary, refusing one over the size cap before reading it.
fn read_capped(path: &Path) -> Result<Vec<u8>, PipelineError> {
    crate::fsutil::read_capped(path, validate::MAX_WASM_BYTES).map_err(|e| match e {
        CappedReadError::Io(e) => PipelineError::Io(e),
        CappedReadError::TooLarge(t) => PipelineError::Invalid {
            what: "the shipped skill.wasm".into(),
            source: ValidateError::TooLarge {
                size: t.size,
                max: t.max,
            },
        },
        CappedReadError::NotRegular(path) => {
            PipelineError::Source(SourceError::NotRegularFile { path })
        }
    })
}
