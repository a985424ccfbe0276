//! Deciding what a `skill.wasm` is, and accepting only components of the skill
//! world: wasmparser validation first, then the world check (`world`).

use wasmparser::{Parser, Validator, WasmFeatures};
use wit_parser::decoding::DecodedWasm;

use crate::digest::sha256_hex;
use crate::skill::stub::{self, JsonKind, StubMarker};
use crate::skill::world::{self, WorldMismatch};

/// The largest `skill.wasm` accepted. Real skills are tens to hundreds of KiB;
/// the cap keeps a hostile registry from filling memory or disk.
pub const MAX_WASM_BYTES: u64 = 32 * 1024 * 1024;

/// What a skill binary's bytes are, judged by their header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryKind {
    /// A WebAssembly component (not yet validated).
    Component,
    /// A core WebAssembly module (not yet validated).
    CoreModule,
    /// boternity's legacy JSON stub marker.
    Stub(StubMarker),
}

/// Why bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes, over the {max}-byte limit for a skill binary")]
    TooLarge { size: u64, max: u64 },
    #[error(
        "not a WebAssembly binary (no `\\0asm` header) and not a boternity stub marker; \
         expected a component built for the skill world"
    )]
    NotWasm,
    #[error("JSON that is not a boternity stub marker: {0}")]
    JsonNotStub(String),
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    #[error(
        "this is a core WebAssembly module, not a component; build it with `boternity build-skill` \
         or install it with `boternity install`, which componentize modules carrying wit-bindgen metadata"
    )]
    CoreModule,
    #[error("this is a boternity JSON stub marker, not a component (it only echoes its body)")]
    Stub,
    #[error("could not read the component's interface: {0}")]
    Decode(String),
    #[error("not a component of the skill world `{}/{}`:{}", world::WORLD_PACKAGE, world::WORLD_NAME, list(.0))]
    WorldMismatch(Vec<WorldMismatch>),
}

fn list(diffs: &[WorldMismatch]) -> String {
    diffs.iter().map(|d| format!("\n  - {d}")).collect()
}

/// A component that passed validation and the world check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidComponent {
    pub sha256: String,
    pub size: u64,
    /// Interfaces it imports (for reports and provenance).
    pub imports: Vec<String>,
}

/// Classifies bytes by their header (cheap, no validation).
pub fn classify(bytes: &[u8]) -> Result<BinaryKind, ValidateError> {
    if bytes.is_empty() {
        return Err(ValidateError::Empty);
    }
    if bytes.len() as u64 > MAX_WASM_BYTES {
        return Err(ValidateError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_WASM_BYTES,
        });
    }
    if Parser::is_component(bytes) {
        return Ok(BinaryKind::Component);
    }
    if Parser::is_core_wasm(bytes) {
        return Ok(BinaryKind::CoreModule);
    }
    if bytes.starts_with(b"\0asm") {
        return Err(ValidateError::Invalid(
            "truncated header or unknown WebAssembly version".into(),
        ));
    }
    match stub::recognize(bytes) {
        JsonKind::Stub(s) => Ok(BinaryKind::Stub(s)),
        JsonKind::NotAStub(reason) => Err(ValidateError::JsonNotStub(reason)),
        JsonKind::NotJson => Err(ValidateError::NotWasm),
    }
}

/// Validates a core module or component with wasmparser (structure and types).
pub fn validate_wasm(bytes: &[u8]) -> Result<(), ValidateError> {
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map(drop)
        .map_err(|e| ValidateError::Invalid(e.to_string()))
}

/// Accepts `bytes` only if they are a valid component of the skill world.
pub fn validate_component(bytes: &[u8]) -> Result<ValidComponent, ValidateError> {
    match classify(bytes)? {
        BinaryKind::Component => {}
        BinaryKind::CoreModule => {
            // Say "invalid" before "core module" when it is both.
            validate_wasm(bytes)?;
            return Err(ValidateError::CoreModule);
        }
        BinaryKind::Stub(_) => return Err(ValidateError::Stub),
    }
    validate_wasm(bytes)?;
    let (resolve, world_id) = match wit_parser::decoding::decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err(ValidateError::Decode(
                "this is a WIT package, not a component".into(),
            ));
        }
        Err(e) => return Err(ValidateError::Decode(format!("{e:#}"))),
    };
    let diffs = world::differences(&resolve, world_id);
    if !diffs.is_empty() {
        return Err(ValidateError::WorldMismatch(diffs));
    }
    let imports = resolve.worlds[world_id]
        .imports
        .iter()
        .filter_map(|(key, item)| match (key, item) {
            (wit_parser::WorldKey::Interface(id), wit_parser::WorldItem::Interface { .. }) => {
                resolve.id_of(*id)
            }
            _ => None,
        })
        .collect();
    Ok(ValidComponent {
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncation_are_named() {
        assert!(matches!(classify(b""), Err(ValidateError::Empty)));
        assert!(matches!(
            classify(b"hello world"),
            Err(ValidateError::NotWasm)
        ));
        assert!(matches!(classify(b"\0as"), Err(ValidateError::NotWasm)));
        assert!(matches!(
            classify(b"\0asm\x01"),
            Err(ValidateError::Invalid(_))
        ));
        assert!(matches!(
            validate_component(b"\0asm\x0d\0\x01\0\x01\x05"),
            Err(ValidateError::Invalid(_))
        ));
    }

    #[test]
    fn a_core_module_is_not_a_component() {
        let module = b"\0asm\x01\0\0\0";
        assert_eq!(classify(module).unwrap(), BinaryKind::CoreModule);
        assert!(matches!(
            validate_component(module),
            Err(ValidateError::CoreModule)
        ));
    }
}
