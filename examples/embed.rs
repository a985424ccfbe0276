//! Embedding boternity-skills in a long-lived async service: skills are
//! installed into a store once, loaded through the executor's cache (bounded
//! by bytes: the least recently used skill goes first), called many times at
//! once, evicted, loaded again from their `.cwasm`, and replaced by a new
//! version while a caller still holds the old one.
//!
//! ```sh
//! cargo run --example embed
//! ```
//!
//! It runs unattended in about a second, so CI runs it (`cargo xtask test`).
//! Its skills are shipped components, made here from a few lines of
//! WebAssembly text so that nothing needs building; a skill with Rust source
//! goes through the same `install`, built in the build sandbox. A program
//! that builds skill source must let the sandbox re-execute it as its
//! helper: call `helper_main` first thing in `main`, before any thread
//! starts (or point `BuildOptions::sandbox_helper` at the `boternity`
//! binary).

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints its results

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use boternity_skills::build::sandbox;
use boternity_skills::executor::{CacheStats, HostServices, LoadedSkill, Origin};
use boternity_skills::skill::world::{SKILL_WIT, WORLD_NAME};
use boternity_skills::{
    Context, Executor, ExecutorConfig, Folders, HostEnv, InstallOptions, Invocation, SkillSource,
    SkillStore, install,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    // The build sandbox's helper (this binary re-executed to confine cargo,
    // should a skill with Rust source be installed): first, with the
    // variables it needs, which the library never reads itself.
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

async fn serve() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    // A server decides where boternity keeps things and which environment
    // its builds see (here: its own folders, and this process's PATH etc.).
    let context =
        Context::new(Folders::under(tmp.path())).with_host(HostEnv::from_vars(std::env::vars_os()));
    let store = SkillStore::new(&context.folders.data);
    let skills = tmp.path().join("skills");

    // How much one of these skills keeps resident once loaded, so that the
    // budget below holds two of them: a real server gives its budget in MiB
    // (256 by default), enough for hundreds of skills.
    let one = Executor::new()?
        .load(SkillSource::Bytes(&skill_component("Hello, ")?))?
        .resident_bytes();
    let config = ExecutorConfig {
        loaded_cache_bytes: one * 5 / 2,
        // Its own folder for the `.cwasm` signing key and the compile cache:
        // what an install precompiles, a later load deserializes.
        ..ExecutorConfig::default().with_cache_dir(&tmp.path().join("cache"))
    };
    println!(
        "executor: loaded-skill budget {} bytes (one of these skills keeps {one})",
        config.loaded_cache_bytes
    );
    let executor = Arc::new(Executor::with_config(config, HostServices::default())?);

    // Installing validates, links and precompiles: blocking work, kept off
    // the async threads.
    for (name, version, prefix) in [
        ("greeter", "1.0.0", "Hello, "),
        ("echo", "1.0.0", "echo: "),
        ("tagger", "1.0.0", "#"),
    ] {
        let dir = write_skill(&skills, name, version, prefix)?;
        install_skill(&context, &store, &executor, dir).await?;
    }
    // Installing compiled each skill (to precompile it) and left it in the
    // cache: the budget already held only the last two.
    show(&executor.cache_stats());

    // Two skills in use: 20 concurrent calls of each.
    let greeter_v1 = load(&store, &executor, "greeter")?;
    let echo = load(&store, &executor, "echo")?;
    for (name, skill) in [("greeter", &greeter_v1), ("echo", &echo)] {
        serve_calls(&executor, name, skill, 20).await?;
    }

    // A third skill: the least recently used one (greeter) is evicted, the
    // other stays (its next load is the very same skill, not loaded again) ...
    let before = executor.cache_stats();
    let tagger = load(&store, &executor, "tagger")?;
    expect(&executor, &tagger, "tagger", "news", "#news").await?;
    let after = executor.cache_stats();
    show(&after);
    if after.evictions != before.evictions + 1 || after.entries != 2 {
        return Err(format!("expected one eviction, two skills held: {after:?}").into());
    }
    if !Arc::ptr_eq(&load(&store, &executor, "echo")?, &echo) {
        return Err("echo, used more recently than greeter, was evicted".into());
    }
    // ... but a caller still holding greeter keeps working ...
    expect(
        &executor,
        &greeter_v1,
        "greeter",
        "still here",
        "Hello, still here",
    )
    .await?;
    println!("greeter, evicted, still answers the caller that holds it");
    // ... and a later load brings it back from its .cwasm (no compiling).
    let again = load(&store, &executor, "greeter")?;
    if again.origin() != Some(Origin::Precompiled) || Arc::ptr_eq(&again, &greeter_v1) {
        return Err("greeter was not loaded again from its .cwasm".into());
    }
    show(&executor.cache_stats());

    // A new version of greeter replaces the installed one; the next load is
    // the new version, while the old one, still held, answers as before.
    let dir = write_skill(&skills, "greeter", "2.0.0", "Hi there, ")?;
    install_skill(&context, &store, &executor, dir).await?;
    // (held already: installing it compiled it into the cache)
    let greeter_v2 = load(&store, &executor, "greeter")?;
    expect(&executor, &greeter_v2, "greeter", "Ada", "Hi there, Ada").await?;
    expect(&executor, &greeter_v1, "greeter", "Ada", "Hello, Ada").await?;
    println!("greeter 2.0.0 answers new loads; 1.0.0 still answers its holder");
    let stats = executor.cache_stats();
    show(&stats);
    if stats.bytes > stats.budget {
        return Err(format!("over budget: {stats:?}").into());
    }
    Ok(())
}

/// The skill `name` as installed now, loaded (from the cache when held).
fn load(store: &SkillStore, executor: &Executor, name: &str) -> Result<Arc<LoadedSkill>, Error> {
    let installed = store.get(name)?;
    let hits = executor.cache_stats().hits;
    let skill = installed.load(executor)?;
    let version = installed
        .provenance
        .as_ref()
        .and_then(|p| p.version.clone())
        .unwrap_or_default();
    let from = match skill.origin() {
        _ if executor.cache_stats().hits > hits => "held in the cache",
        Some(Origin::Precompiled) => "deserialized from its .cwasm",
        Some(origin) => origin.as_str(),
        None => "a stub",
    };
    println!("load    {name} {version} ({from})");
    Ok(skill)
}

async fn install_skill(
    context: &Context,
    store: &SkillStore,
    executor: &Arc<Executor>,
    dir: PathBuf,
) -> Result<(), Error> {
    let (context, store, executor) = (context.clone(), store.clone(), executor.clone());
    let installed = tokio::task::spawn_blocking(move || {
        install(
            &context,
            &store,
            &dir,
            &InstallOptions::default(),
            Some(&executor),
        )
    })
    .await??;
    let replaced = if installed.replaced {
        ", replacing the old one"
    } else {
        ""
    };
    println!(
        "install {} {} ({}{replaced})",
        installed.name,
        installed.provenance.version.as_deref().unwrap_or("?"),
        installed.path_taken
    );
    Ok(())
}

/// `count` concurrent calls of one loaded skill: each gets a fresh instance,
/// its own fuel, deadline and memory cap.
async fn serve_calls(
    executor: &Arc<Executor>,
    name: &str,
    skill: &Arc<LoadedSkill>,
    count: usize,
) -> Result<(), Error> {
    let calls: Vec<_> = (0..count)
        .map(|i| {
            let (executor, skill) = (executor.clone(), skill.clone());
            let invocation = Invocation::new(name, format!("call {i}"));
            tokio::spawn(async move { executor.run(&skill, invocation).await })
        })
        .collect();
    let mut answered = 0;
    for call in calls {
        if call.await??.result.is_ok() {
            answered += 1;
        }
    }
    println!("serve   {name}: {answered} of {count} concurrent calls answered");
    if answered != count {
        return Err(format!("{name} answered {answered} of {count} calls").into());
    }
    Ok(())
}

async fn expect(
    executor: &Executor,
    skill: &LoadedSkill,
    name: &str,
    input: &str,
    answer: &str,
) -> Result<(), Error> {
    let outcome = executor.run(skill, Invocation::new(name, input)).await?;
    if outcome.result.as_deref() != Ok(answer) {
        return Err(format!("{name}: expected {answer:?}, got {:?}", outcome.result).into());
    }
    Ok(())
}

fn show(stats: &CacheStats) {
    println!(
        "cache   {} skills, {} of {} bytes; {} evictions, {} hits, {} misses",
        stats.entries, stats.bytes, stats.budget, stats.evictions, stats.hits, stats.misses
    );
}

/// A skill folder as an author ships it: `SKILL.md` and a built `skill.wasm`.
fn write_skill(parent: &Path, name: &str, version: &str, prefix: &str) -> Result<PathBuf, Error> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("SKILL.md"),
        format!(
            "---\nname: {name}\ndescription: Answers its input after `{prefix}`.\n\
             metadata:\n  skill-type: tool\n  version: {version}\n---\n# {name}\n"
        ),
    )?;
    std::fs::write(dir.join("skill.wasm"), skill_component(prefix)?)?;
    Ok(dir)
}

/// A component of the skill world whose `execute` answers `prefix` followed
/// by its input: a core module in the canonical ABI (strings in linear
/// memory, results through a return area), given the world's metadata and
/// made a component by the same code that componentizes a skill's build.
fn skill_component(prefix: &str) -> Result<Vec<u8>, Error> {
    let len = prefix.len();
    let module = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "skill")
  (data (i32.const 32) "answers after a prefix")
  (data (i32.const 1024) "{prefix}")
  ;; A bump allocator: an instance serves one call, then is dropped.
  (func $realloc (export "cabi_realloc")
    (param i32 i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.const 1) (i32.shr_u
          (i32.sub (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
          (i32.const 16)))) (i32.const 0))
        (then unreachable))))
    (local.get $ptr))
  (func (export "get-name") (result i32)
    (i32.store (i32.const 2048) (i32.const 16))
    (i32.store (i32.const 2052) (i32.const 5))
    (i32.const 2048))
  (func (export "cabi_post_get-name") (param i32))
  (func (export "get-description") (result i32)
    (i32.store (i32.const 2048) (i32.const 32))
    (i32.store (i32.const 2052) (i32.const 22))
    (i32.const 2048))
  (func (export "cabi_post_get-description") (param i32))
  ;; result<string, string>: case 0 (ok), then the string's pointer and length.
  (func (export "execute") (param $in i32) (param $len i32) (result i32)
    (local $out i32)
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.add (i32.const {len}) (local.get $len))))
    (memory.copy (local.get $out) (i32.const 1024) (i32.const {len}))
    (memory.copy (i32.add (local.get $out) (i32.const {len})) (local.get $in) (local.get $len))
    (i32.store8 (i32.const 2064) (i32.const 0))
    (i32.store (i32.const 2068) (local.get $out))
    (i32.store (i32.const 2072) (i32.add (i32.const {len}) (local.get $len)))
    (i32.const 2064))
  (func (export "cabi_post_execute") (param i32)))"#
    );
    let mut module = wat::parse_str(module)?;
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("boternity-skill.wit", SKILL_WIT)?;
    let world = resolve.select_world(&[package], Some(WORLD_NAME))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )?;
    Ok(boternity_skills::build::componentize::componentize(
        &module,
    )?)
}
