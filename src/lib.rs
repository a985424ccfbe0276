//! boternity-skills: the skill build pipeline of boternity.
//!
//! Data flows one way, one module per stage:
//! [`manifest`] (SKILL.md) → [`source`] (what the folder holds) →
//! [`build`] (cargo, with [`wrap`] for bare `lib.rs` files) →
//! [`componentize`] (core module → component) → [`validate`] (wasmparser +
//! the [`world`] check) → [`store`] (atomic installs) → [`executor`] (wasmtime).
//! [`pipeline`] holds the one decision (build / componentize / validate / stub)
//! that `build-skill`, `install` and `precompile` share. The library never
//! prints: it returns values and typed errors and emits `tracing` events.

pub mod build;
pub mod componentize;
pub mod digest;
pub mod executor;
pub mod fsutil;
pub mod index;
pub mod install;
pub mod manifest;
pub mod pipeline;
pub mod precompile;
pub mod provenance;
pub mod scaffold;
pub mod source;
pub mod store;
pub mod stub;
pub mod toolchain;
pub mod validate;
pub mod world;
pub mod wrap;

/// This tool's version, recorded in provenance.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
