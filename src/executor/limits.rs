//! Resource limits for one skill invocation, with defaults per trust tier.
//!
//! The seed's 500,000 units of fuel are used up by parsing a few KiB of JSON
//! (100 M units are ~7 ms of a tight loop here), so fuel defaults are sized for
//! real work and the wall-clock deadline is the backstop.

use std::time::Duration;

use crate::skill::manifest::TrustTier;

const MIB: u64 = 1024 * 1024;

/// Limits for one invocation. Every field, when hit, gives its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Units of wasmtime fuel (roughly one per wasm instruction).
    pub fuel: u64,
    /// Wall-clock deadline for instantiation plus the call.
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Largest total linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest table, in elements.
    pub table_elements: u64,
    /// Largest input to `execute`, in bytes.
    pub max_input_bytes: usize,
    /// Largest output (the `Ok` or `Err` text), in bytes.
    pub max_output_bytes: usize,
    /// Largest captured stdout, stderr and log text, each, in bytes.
    pub max_captured_bytes: usize,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl Limits {
    /// Defaults for `untrusted` skills (registry skills, unless the installer says otherwise).
    pub const UNTRUSTED: Limits = Limits {
        fuel: 2_000_000_000,
        deadline: Duration::from_secs(10),
        memory_bytes: 64 * MIB,
        table_elements: 20_000,
        max_input_bytes: MIB as usize,
        max_output_bytes: MIB as usize,
        max_captured_bytes: 64 * 1024,
    };

    /// Defaults for `verified` skills.
    pub const VERIFIED: Limits = Limits {
        fuel: 20_000_000_000,
        deadline: Duration::from_secs(30),
        memory_bytes: 256 * MIB,
        table_elements: 100_000,
        max_input_bytes: 8 * MIB as usize,
        max_output_bytes: 8 * MIB as usize,
        max_captured_bytes: 1024 * 1024,
    };

    /// The defaults for a tier. `local` skills are the user's own; when they are
    /// run here at all they get the `verified` limits.
    pub fn for_tier(tier: TrustTier) -> Limits {
        match tier {
            TrustTier::Untrusted => Limits::UNTRUSTED,
            TrustTier::Verified | TrustTier::Local => Limits::VERIFIED,
        }
    }
}

/// The wasm stack every engine gets: deep enough for real code, small enough
/// that runaway recursion stops quickly with "stack overflow".
pub const WASM_STACK_BYTES: usize = 1024 * 1024;
