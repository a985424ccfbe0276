//! Turning Rust source into a component: finding the toolchain, wrapping a
//! bare `lib.rs` into a crate, running cargo for `wasm32-wasip2`, and
//! componentizing a core module with wit-component.

pub mod cargo;
pub mod componentize;
pub mod toolchain;
pub mod wrap;

pub use cargo::{BuildError, BuildOptions, Built, build};
pub use toolchain::{SKILL_TARGET, Toolchain, ToolchainError};
