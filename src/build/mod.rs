//! Turning Rust source into a component: finding the toolchain, wrapping a
//! bare `lib.rs` into a crate, running cargo for `wasm32-wasip2`, and
//! componentizing a core module with wit-component; and the sandbox every
//! build of untrusted source runs in, with the only two ways its fetch
//! reaches out: the dependency sources a manifest may name ([`sources`]) and
//! the proxy to the package registries ([`fetch_proxy`]).

pub mod cargo;
pub mod componentize;
pub mod fetch_proxy;
pub mod layer;
pub mod sandbox;
pub mod sources;
pub mod toolchain;
pub mod wrap;

pub use cargo::{BuildError, BuildOptions, Built, Confinement, build};
pub use toolchain::{SKILL_TARGET, Toolchain, ToolchainError};
