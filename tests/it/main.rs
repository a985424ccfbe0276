//! The integration tests, as one binary (matklad's "one integration test
//! binary", as rust-analyzer and jj do): wasmtime and cranelift are linked
//! once instead of once per file, and `cargo test` runs one process whose
//! harness spreads every test over the machine's cores.
//!
//! Each module covers one part of the tool (docs/src/dev/testing.md has the
//! table); `common` holds the fixtures and helpers they share. Run one part
//! with `cargo test --test it <module>::`, e.g. `cargo test --test it tidy::`.

mod common;

mod build_and_run;
mod build_sandbox;
mod cache;
mod doctor;
mod executor_server;
mod executor_speed;
mod git_sources;
mod house;
mod install;
mod layer;
mod lenient;
mod oci;
mod precompile;
mod registry;
mod sandbox;
mod tidy;
