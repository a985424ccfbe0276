//! The legacy JSON stub marker boternity's first installer wrote as `skill.wasm`.
//!
//! A stub is not WebAssembly: it is `{"boternity_wasm_stub": true, "version": 1,
//! "body": "…"}` and "running" it returns `body`. We still write one when nothing
//! can be built (and say so loudly), and we keep running the ones already in
//! users' stores.

use serde::{Deserialize, Serialize};

/// The stub format version boternity wrote.
pub const STUB_VERSION: u32 = 1;

/// A parsed stub marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StubMarker {
    pub boternity_wasm_stub: bool,
    pub version: u32,
    pub body: String,
}

impl StubMarker {
    /// A stub that returns `body` (the skill's SKILL.md body).
    pub fn new(body: impl Into<String>) -> Self {
        StubMarker {
            boternity_wasm_stub: true,
            version: STUB_VERSION,
            body: body.into(),
        }
    }

    /// The bytes written as `skill.wasm`.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of a bool, an int and a string cannot fail.
        serde_json::to_vec(self).expect("stub marker serializes")
    }
}

/// What a `skill.wasm` that is not WebAssembly turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKind {
    /// A stub marker boternity can run.
    Stub(StubMarker),
    /// JSON, but not a stub marker; the reason says what is off.
    NotAStub(String),
    /// Not JSON at all.
    NotJson,
}

/// Classifies bytes that do not start with the WebAssembly magic number.
pub fn recognize(bytes: &[u8]) -> JsonKind {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return JsonKind::NotJson;
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return JsonKind::NotJson,
    };
    if value.get("boternity_wasm_stub") != Some(&serde_json::Value::Bool(true)) {
        return JsonKind::NotAStub("it has no `\"boternity_wasm_stub\": true` field".into());
    }
    match serde_json::from_value::<StubMarker>(value) {
        Ok(stub) if stub.version == STUB_VERSION => JsonKind::Stub(stub),
        Ok(stub) => JsonKind::NotAStub(format!(
            "stub marker version {} is unknown (this tool reads version {STUB_VERSION})",
            stub.version
        )),
        Err(e) => JsonKind::NotAStub(format!("malformed stub marker: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_boternity_wrote() {
        let legacy = br#"{"boternity_wasm_stub": true, "version": 1, "body": "Hello"}"#;
        assert_eq!(recognize(legacy), JsonKind::Stub(StubMarker::new("Hello")));
        let ours = StubMarker::new("line\n\"quoted\"").to_bytes();
        assert_eq!(
            recognize(&ours),
            JsonKind::Stub(StubMarker::new("line\n\"quoted\""))
        );
    }

    #[test]
    fn tells_other_json_and_garbage_apart() {
        assert!(matches!(recognize(br#"{"a": 1}"#), JsonKind::NotAStub(_)));
        assert!(matches!(
            recognize(br#"{"boternity_wasm_stub": true, "version": 2, "body": ""}"#),
            JsonKind::NotAStub(_)
        ));
        assert!(matches!(
            recognize(br#"{"boternity_wasm_stub": true}"#),
            JsonKind::NotAStub(_)
        ));
        assert_eq!(recognize(b"\x00garbage"), JsonKind::NotJson);
        assert_eq!(recognize(b"{ truncated"), JsonKind::NotJson);
    }
}
