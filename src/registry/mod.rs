//! Registries of skills: the `index.json` format a registry publishes, and
//! `precompile`, the batch job that builds a whole registry in CI and writes
//! that index, and the client that installs from one.

pub mod client;
pub mod index;
pub mod precompile;
