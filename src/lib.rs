//! boternity-skills: the skill build pipeline of boternity.
//!
//! A skill folder goes through the stages in this order, each a module that
//! uses only the stages before it:
//!
//! 1. [`skill`]: what a skill is — `SKILL.md` ([`skill::manifest`]), the files
//!    its folder holds ([`skill::source`]), the world contract
//!    ([`skill::world`]), binary validation ([`skill::validate`]) and the
//!    legacy stub format ([`skill::stub`]).
//! 2. [`build`]: Rust source to a component — toolchain, cargo, wrapping a
//!    bare `lib.rs`, componentizing a core module.
//! 3. [`pipeline`]: the one decision (build / componentize / validate / stub)
//!    that `build-skill`, `install` and `precompile` share.
//! 4. [`executor`]: wasmtime, running every binary under limits and grants.
//! 5. [`store`]: the installed skills. [`store::install`] calls the executor
//!    before committing, to link and precompile the component: a skill that
//!    cannot run is never installed.
//! 6. [`registry`]: the index a registry publishes, the batch job that builds
//!    one, and installing from one; it feeds the same pipeline and store.
//! 7. [`git`]: skills from git repositories — a ref resolved to a commit,
//!    fetched shallow into a cache, its skills discovered, then the same
//!    pipeline and store; `outdated`, `update` and `sync` (with
//!    [`store::lock`], the store's `skills.lock`) follow them back.
//!
//! [`paths`] (where things live) and [`fsutil`]/[`digest`] (I/O and hashing)
//! serve every stage. The library never prints: it returns values and typed
//! errors and emits `tracing` events.
//!
//! # The front door
//!
//! A program that embeds boternity needs only what is re-exported here:
//! [`install()`] a skill folder into a [`SkillStore`], or [`prepare`] one
//! without installing, then load it into an [`Executor`] and [`Executor::run`]
//! an [`Invocation`].
//!
//! ```
//! use boternity_skills::{InstallOptions, SkillStore, install};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let skill = tmp.path().join("greeting");
//! std::fs::create_dir(&skill)?;
//! std::fs::write(
//!     skill.join("SKILL.md"),
//!     "---\nname: greeting\ndescription: Greets the user.\n---\nSay hello.\n",
//! )?;
//!
//! let store = SkillStore::new(tmp.path().join("data"));
//! let installed = install(&store, &skill, &InstallOptions::default(), None)?;
//! assert_eq!(installed.name, "greeting");
//! assert_eq!(store.list()?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! Running a binary: here a legacy JSON stub, which needs no build (a
//! component runs the same way, under the invocation's limits and grants).
//! `examples/embed.rs` is a server: it installs skills, serves concurrent
//! calls, and shows the executor's bounded cache evicting and reloading
//! skills across versions.
//!
//! ```
//! use boternity_skills::skill::stub::StubMarker;
//! use boternity_skills::{Executor, Invocation, SkillSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = Executor::new()?;
//! let stub = StubMarker::new("Hello from a stub").to_bytes();
//! let skill = executor.load(SkillSource::Bytes(&stub))?;
//! let outcome = executor.run(&skill, Invocation::new("greeting", "hi")).await?;
//! assert_eq!(outcome.result, Ok("Hello from a stub".to_string()));
//! assert!(outcome.stub);
//! # Ok(())
//! # }
//! ```

pub mod address;
pub mod build;
pub mod digest;
pub mod executor;
pub mod fsutil;
pub mod git;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod registry;
pub mod skill;
pub mod store;

pub use executor::{
    ExecError, Executor, ExecutorConfig, Grants, Invocation, Limits, Outcome, SkillSource,
};
pub use pipeline::{PathTaken, PipelineError, PipelineOptions, Prepared, prepare};
pub use store::SkillStore;
pub use store::install::{InstallError, InstallOptions, Installed, install};

/// This tool's version, recorded in provenance.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An error and its causes on one line, each said once (`a: b: c`): for
/// places that keep an error as text, such as an index entry. Error messages
/// in this crate never repeat their source, so nothing is printed twice.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
