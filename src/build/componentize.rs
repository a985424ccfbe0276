//! Turning a core module into a component of the skill world with
//! `wit-component`: the module must carry the world metadata wit-bindgen embeds
//! (a `component-type` custom section); a `wasm32-wasip1` module also gets the
//! WASI preview1 adapter, taken from the `wasi-preview1-component-adapter-provider`
//! crate (never downloaded).

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

/// Why a core module could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    #[error(
        "the core module carries no component type metadata (no `component-type` custom section): \
         build it with wit-bindgen against the skill world, or ship a component"
    )]
    NoWorldMetadata,
    #[error("invalid core module: {0}")]
    Invalid(String),
    #[error("wit-component could not componentize the module: {0}")]
    Encode(String),
}

/// Facts about a core module that decide how it is componentized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreModuleInfo {
    pub has_world_metadata: bool,
    /// It imports `wasi_snapshot_preview1` (a `wasm32-wasip1` build).
    pub uses_preview1: bool,
}

/// Reads the module's custom sections and imports.
pub fn inspect(module: &[u8]) -> Result<CoreModuleInfo, ComponentizeError> {
    let mut info = CoreModuleInfo {
        has_world_metadata: false,
        uses_preview1: false,
    };
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| ComponentizeError::Invalid(e.to_string()))? {
            Payload::CustomSection(section) if section.name().starts_with("component-type") => {
                info.has_world_metadata = true;
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(|e| ComponentizeError::Invalid(e.to_string()))?;
                    if import.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                        info.uses_preview1 = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Componentizes a core module built with wit-bindgen (any of
/// `wasm32-unknown-unknown`, `wasm32-wasip1`). The result still has to pass
/// the world check (`validate`).
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    let info = inspect(module)?;
    if !info.has_world_metadata {
        return Err(ComponentizeError::NoWorldMetadata);
    }
    let encode = |e: anyhow::Error| ComponentizeError::Encode(format!("{e:#}"));
    let mut encoder = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(encode)?;
    if info.uses_preview1 {
        encoder = encoder
            .adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
            .map_err(encode)?;
    }
    encoder.encode().map_err(encode)
}
