//! Registries of skills: the `index.json` format a registry publishes, and
//! `precompile`, the batch job that builds a whole registry in CI and writes
//! that index, signing it (minisign), and the client that installs from one
//! (a folder or an HTTP registry), and how skills installed from one stand
//! against its current index (newer versions, yanks).

pub mod client;
pub mod index;
pub mod installed;
pub mod precompile;
pub mod sign;
