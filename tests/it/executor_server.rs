//! The executor as a long-lived server holds it: its loaded-skill cache
//! stays within its byte budget however many skill versions pass through
//! (the least recently used go first, and a skill still held by a caller
//! keeps running after it was evicted), and an idle executor costs nothing:
//! its epoch ticker makes no wake-ups while no call runs, and deadlines
//! still hold when calls start again.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use boternity_skills::executor::{
    ExecError, Executor, ExecutorConfig, HostServices, Invocation, Origin, SkillSource,
};
use common::*;

/// Version `n` of `echo-skill`: the same code with a custom section naming
/// `n`, so a component of its own (another sha256, another cache entry) of
/// exactly the same compiled size.
fn version(n: u32) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut value: usize) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            out.push(if value == 0 { byte } else { byte | 0x80 });
            if value == 0 {
                break;
            }
        }
    }
    let name = b"boternity-test-version";
    let mut section = Vec::new();
    leb(&mut section, name.len());
    section.extend_from_slice(name);
    section.extend_from_slice(&n.to_le_bytes());
    let mut bytes = component("echo-skill");
    bytes.push(0); // a custom section
    leb(&mut bytes, section.len());
    bytes.extend_from_slice(&section);
    bytes
}

fn with_budget(loaded_cache_bytes: u64) -> Executor {
    Executor::with_config(
        ExecutorConfig {
            loaded_cache_bytes,
            ..ExecutorConfig::default()
        },
        HostServices::default(),
    )
    .unwrap()
}

async fn echo(executor: &Executor, skill: &boternity_skills::executor::LoadedSkill, input: &str) {
    let out = executor
        .run(skill, Invocation::new("echo-skill", input))
        .await
        .unwrap();
    assert_eq!(out.result, Ok(format!("ECHO: {}", input.to_uppercase())));
}

#[tokio::test]
async fn more_versions_than_the_budget_holds_stay_within_it_and_each_runs() {
    // One version's size, measured on an executor of its own.
    let probe = Executor::new().unwrap();
    probe.load(SkillSource::Bytes(&version(0))).unwrap();
    let one = probe.cache_stats().bytes;
    assert!(one > 0);
    // Room for two versions, never three.
    let budget = one * 5 / 2;
    let executor = with_budget(budget);

    let mut held = Vec::new();
    for n in 0..6 {
        let skill = executor.load(SkillSource::Bytes(&version(n))).unwrap();
        assert_eq!(skill.origin(), Some(Origin::Compiled));
        let stats = executor.cache_stats();
        assert!(stats.bytes <= budget, "{stats:?}");
        assert!(stats.entries <= 2, "{stats:?}");
        echo(&executor, &skill, &format!("version {n}")).await;
        held.push(skill);
    }
    let stats = executor.cache_stats();
    assert_eq!(
        (stats.entries, stats.bytes, stats.budget),
        (2, 2 * one, budget)
    );
    assert_eq!((stats.misses, stats.evictions, stats.hits), (6, 4, 0));

    // Evicted long ago, but its caller still holds it: it still runs.
    echo(&executor, &held[0], "still here").await;

    // The two most recent are held: a load is the very same skill.
    let v4 = executor.load(SkillSource::Bytes(&version(4))).unwrap();
    assert!(Arc::ptr_eq(&v4, &held[4]));
    // Now 5 is the least recently used: loading 0 again (compiled again,
    // a new skill) evicts 5 and keeps 4.
    let v0 = executor.load(SkillSource::Bytes(&version(0))).unwrap();
    assert!(!Arc::ptr_eq(&v0, &held[0]));
    assert_eq!(v0.origin(), Some(Origin::Compiled));
    echo(&executor, &v0, "reloaded").await;
    assert!(Arc::ptr_eq(
        &executor.load(SkillSource::Bytes(&version(4))).unwrap(),
        &held[4]
    ));
    assert!(!Arc::ptr_eq(
        &executor.load(SkillSource::Bytes(&version(5))).unwrap(),
        &held[5]
    ));
    let stats = executor.cache_stats();
    assert!(stats.bytes <= budget, "{stats:?}");
    assert_eq!((stats.misses, stats.evictions, stats.hits), (8, 6, 2));
}

#[tokio::test]
async fn a_budget_smaller_than_one_skill_keeps_nothing_and_still_runs() {
    let executor = with_budget(0);
    for _ in 0..2 {
        let skill = executor.load(SkillSource::Bytes(&version(7))).unwrap();
        assert_eq!(skill.origin(), Some(Origin::Compiled));
        echo(&executor, &skill, "uncached").await;
    }
    let stats = executor.cache_stats();
    assert_eq!((stats.entries, stats.bytes), (0, 0));
    assert_eq!((stats.misses, stats.evictions, stats.hits), (2, 2, 0));
}

/// Runs the hostile fixture's endless loop under a 100 ms deadline: it is
/// stopped by the epoch (the ticker must be ticking), on time.
async fn loop_until_the_deadline(executor: &Executor) {
    let skill = executor
        .load(SkillSource::Bytes(&component("hostile")))
        .unwrap();
    let mut invocation = Invocation::new("hostile", "loop");
    invocation.limits.fuel = u64::MAX / 2;
    invocation.limits.deadline = Duration::from_millis(100);
    let started = Instant::now();
    let result = executor.run(&skill, invocation).await;
    assert!(
        matches!(
            result,
            Err(ExecError::DeadlineExceeded { limit_ms: 100, .. })
        ),
        "{result:?}"
    );
    assert!(
        // Stopped on time, not never: generous for a loaded machine.
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_executor_makes_no_timer_wake_ups_and_deadlines_still_hold() {
    let executor = Executor::new().unwrap();
    // Loading starts no ticker.
    executor
        .load(SkillSource::Bytes(&component("hostile")))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(executor.epoch_ticks(), 0);

    // A call: the epoch advances while it runs, and stops it at its deadline.
    loop_until_the_deadline(&executor).await;
    let after_call = executor.epoch_ticks();
    assert!(after_call > 0, "no tick in a 100 ms call");

    // Idle: once the tick under way when the call ended is done, none.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let idle_from = executor.epoch_ticks();
    assert!(
        idle_from <= after_call + 1,
        "{idle_from} > {after_call} + 1"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(executor.epoch_ticks(), idle_from, "wake-ups while idle");

    // Calls after the idle spell: the ticker is back, the deadline holds.
    loop_until_the_deadline(&executor).await;
    assert!(executor.epoch_ticks() > idle_from);
    let skill = executor
        .load(SkillSource::Bytes(&component("echo-skill")))
        .unwrap();
    echo(&executor, &skill, "after a rest").await;
}
