//! Embedding boternity-skills in an async service: install a skill once (its
//! source built in the build sandbox), then serve many calls of it at once.
//!
//! ```sh
//! cargo run --example embed
//! ```
//!
//! A program that builds skill source must let the build sandbox re-execute
//! it as its helper: call `helper_main` first thing in `main`, before any
//! thread starts (or point `BuildOptions::sandbox_helper` at the `boternity`
//! binary).

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints its results

use std::process::ExitCode;
use std::sync::Arc;

use boternity_skills::build::sandbox;
use boternity_skills::{
    Context, Executor, Folders, HostEnv, InstallOptions, Invocation, SkillStore, install,
    skill::scaffold,
};

fn main() -> ExitCode {
    // The build sandbox's helper (this binary re-executed to confine cargo):
    // first, with the variables it needs, which the library never reads itself.
    let env = sandbox::HELPER_ENV
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)));
    if let Some(code) = sandbox::helper_main(std::env::args_os(), env) {
        return code;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", boternity_skills::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    // A skill as a skill author (or a language model) would hand it over.
    let skill_dir = scaffold::new_skill("word-count", tmp.path())?;
    // A server decides where boternity keeps things and which environment
    // its builds see (here: its own folders, and this process's PATH etc.).
    let context =
        Context::new(Folders::under(tmp.path())).with_host(HostEnv::from_vars(std::env::vars_os()));
    let store = SkillStore::new(&context.folders.data);
    let executor = Arc::new(Executor::new()?);

    // Installing builds, validates, links and precompiles: blocking work,
    // kept off the async threads.
    let installed = {
        let (context, store, executor) = (context.clone(), store.clone(), executor.clone());
        tokio::task::spawn_blocking(move || {
            install(
                &context,
                &store,
                &skill_dir,
                &InstallOptions::default(),
                Some(executor.as_ref()),
            )
        })
        .await??
    };
    println!("installed `{}` ({})", installed.name, installed.path_taken);

    // Many concurrent calls of one loaded skill: each gets a fresh instance,
    // its own fuel, deadline and memory cap.
    let skill = store.get(&installed.name)?;
    let loaded = skill.load(&executor)?;
    let calls = (0..50).map(|i| {
        let (executor, loaded) = (executor.clone(), loaded.clone());
        let mut invocation = Invocation::new("word-count", format!("call number {i}"));
        invocation.grants = skill.grants(&store);
        tokio::spawn(async move { executor.run(&loaded, invocation).await })
    });
    let mut answered = 0;
    for call in calls {
        let outcome = call.await??;
        if let Ok(text) = &outcome.result {
            answered += 1;
            if answered == 1 {
                println!("first answer: {text} ({} µs)", outcome.duration_us);
            }
        }
    }
    println!("{answered} of 50 concurrent calls answered");
    Ok(())
}
