//! boternity-skills: the skill build pipeline of boternity (Linux).
//!
//! # The front door
//!
//! A program that embeds boternity (a bot server, an HTTP API) needs two
//! things, both re-exported here:
//!
//! - the **install layer**, [`Installer`]: a [`Source`] (a skill folder,
//!   skills of a git repository, skills a registry publishes) goes through
//!   the pipeline and is committed to a [`SkillStore`], all of its skills or
//!   none;
//! - the **executor**, [`Executor`]: a server-sized wasmtime host that loads
//!   installed skills and [`Executor::run`]s an [`Invocation`] under fuel, a
//!   deadline, a memory cap and the skill's grants.
//!
//! Both take what they need from their caller, never from the environment:
//! a [`Context`] names the folders, the host environment (where cargo and
//! git are found), and the transport and git settings.
//!
//! # The house
//!
//! Each stage is a module that uses only the ones before it:
//!
//! 1. [`skill`]: what a skill is — `SKILL.md` ([`skill::manifest`]), the
//!    files its folder holds ([`skill::source`]), the world contract
//!    ([`skill::world`]), binary validation ([`skill::validate`]) and the
//!    legacy stub format ([`skill::stub`]).
//! 2. [`build`]: Rust source to a component — toolchain, the confined cargo
//!    build and its sandbox, wrapping a bare `lib.rs`, componentizing.
//! 3. [`pipeline`]: the one decision (build / componentize / validate / stub).
//! 4. [`executor`]: wasmtime, running every binary under limits and grants.
//! 5. [`store`]: the installed skills — read, stage, commit (atomically,
//!    several at once), lock; and `skills.lock` ([`store::lock`]).
//! 6. [`registry`] and [`git`]: where skills come from — a registry's
//!    index, the batch job that builds one and its client; git repositories
//!    resolved, fetched and checked.
//! 7. [`mod@install`]: the layer over them all — sources resolved, skills
//!    prepared and staged, then committed together; `update` and `sync`.
//!
//! [`context`] and [`paths`] (what the caller decides, where things live),
//! [`fsutil`]/[`digest`] (I/O and hashing), [`process`] (the one way a
//! program is started) and [`cache`] (the cache folder's budget) serve every
//! stage. The library never prints: it
//! returns values and typed errors and emits `tracing` events.
//!
//! ```
//! use boternity_skills::{Context, Folders, InstallOptions, Installer, SkillStore, Source};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! // Where boternity keeps things: the embedder decides (the library reads
//! // no environment variable).
//! let context = Context::new(Folders::under(tmp.path()));
//! let skill = tmp.path().join("greeting");
//! std::fs::create_dir(&skill)?;
//! std::fs::write(
//!     skill.join("SKILL.md"),
//!     "---\nname: greeting\ndescription: Greets the user.\n---\nSay hello.\n",
//! )?;
//!
//! let store = SkillStore::new(&context.folders.data);
//! let installer = Installer::new(&context, &store);
//! let installed = installer.install(&Source::Folder(skill), &InstallOptions::default())?;
//! assert_eq!(installed[0].name, "greeting");
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

// Linux only, said at once rather than by a wall of missing-symbol errors:
// the build sandbox that untrusted skill source is compiled in is made of
// Landlock, seccomp and namespaces, which only Linux has.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "boternity-skills builds only on Linux: its build sandbox confines untrusted skill source with Landlock, seccomp and Linux namespaces"
);

pub mod address;
pub mod build;
pub mod cache;
pub mod context;
pub mod digest;
pub mod executor;
pub mod fsutil;
pub mod git;
pub mod install;
pub mod oci;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod registry;
pub mod skill;
pub mod store;

pub use context::{Context, HostEnv};
pub use executor::{
    ExecError, Executor, ExecutorConfig, Grants, Invocation, Limits, Outcome, SkillSource,
};
pub use install::{InstallError, InstallOptions, Installed, Installer, Source, install};
pub use paths::Folders;
pub use pipeline::{PathTaken, PipelineError, PipelineOptions, Prepared, prepare};
pub use store::SkillStore;

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
