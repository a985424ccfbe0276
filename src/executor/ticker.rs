//! The epoch ticker: the thread that advances the engine's epoch every
//! [`EPOCH_TICK`] while a call runs, so a running skill yields to the async
//! runtime and stops at its deadline (the epoch callback checks the clock on
//! each tick).
//!
//! It ticks only while at least one call runs: each call holds a
//! [`Running`] guard, and when the last one lets go the thread finishes the
//! tick it is in and waits on a condition variable, with no timeout, until
//! the next call starts. An idle executor therefore makes no timer wake-ups
//! at all (its [`ticks`](Ticker::ticks) stand still). The thread itself is
//! started by the first call (loads alone start nothing) and kept, parked,
//! between bursts rather than started for each: starting a thread costs
//! about as much as a warm call, which a server calling a skill every few
//! milliseconds would pay every time. It ends when the executor is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use wasmtime::Engine;

use super::{EPOCH_TICK, ExecError};

/// What the ticker thread and the calls share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the first call of a burst starts, and on drop.
    wake: Condvar,
    /// Epoch increments made so far.
    ticks: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Calls running now.
    running: usize,
    /// The executor is gone: the thread ends.
    stop: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Two integers, consistent after every statement: a panic while the
        // lock was held leaves nothing to repair.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One executor's epoch ticker.
#[derive(Default)]
pub(super) struct Ticker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Held for the length of one call: the epoch advances while any is held.
pub(super) struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // The thread sees it after its current tick and parks.
        self.0.shared.state().running -= 1;
    }
}

impl Ticker {
    /// Marks a call as running, starting the thread on the first call ever
    /// and waking it on the first call after an idle spell.
    pub(super) fn running(&self, engine: &Engine) -> Result<Running<'_>, ExecError> {
        self.ensure_thread(engine)?;
        let mut state = self.shared.state();
        state.running += 1;
        if state.running == 1 {
            self.shared.wake.notify_one();
        }
        Ok(Running(self))
    }

    /// Epoch increments made so far: they stand still while no call runs.
    pub(super) fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }

    fn ensure_thread(&self, engine: &Engine) -> Result<(), ExecError> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_some() {
            return Ok(());
        }
        let (shared, engine) = (self.shared.clone(), engine.clone());
        let handle = std::thread::Builder::new()
            .name("boternity-epoch".into())
            .spawn(move || tick_while_running(&shared, &engine))
            .map_err(|e| ExecError::Ticker(e.to_string()))?;
        *thread = Some(handle);
        Ok(())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        let thread = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(thread) = thread.take() {
            // At most one tick away; the thread holds an engine reference,
            // which is better released before the executor is gone.
            let _ = thread.join();
        }
    }
}

/// The thread: a tick every [`EPOCH_TICK`] while a call runs, parked
/// (no timeout, no wake-ups) while none does.
fn tick_while_running(shared: &Shared, engine: &Engine) {
    loop {
        {
            let mut state = shared.state();
            while state.running == 0 && !state.stop {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                return;
            }
        }
        std::thread::sleep(EPOCH_TICK);
        engine.increment_epoch();
        shared.ticks.fetch_add(1, Ordering::Relaxed);
    }
}
