//! What a skill *is*, before anything is built: its `SKILL.md` manifest, the
//! files its folder holds, where the skill folders below a folder are
//! ([`discover`]), the world contract its binary must meet, how a binary is
//! classified and validated, and the legacy JSON stub format.
//!
//! Nothing here runs a tool or writes to the store; every other stage reads
//! these types.

pub mod discover;
pub mod files;
pub mod front_matter;
pub mod hidden;
pub mod lint;
pub mod manifest;
pub mod scaffold;
pub mod source;
pub mod stub;
pub mod validate;
pub mod world;
