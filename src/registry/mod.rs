//! Registries of skills: the `index.json` format a registry publishes, and
//! `precompile`, the batch job that builds a whole registry in CI and writes
//! that index, signing it (minisign), and the client that installs from one
//! (a folder or an HTTP registry).

pub mod client;
pub mod index;
pub mod precompile;
pub mod sign;
