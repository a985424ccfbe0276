//! Running a loaded skill: one fresh store per invocation, with its fuel,
//! deadline, memory cap and grants, and every way a call can stop turned into
//! its own [`ExecError`].

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::*;

/// One invocation of `execute`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub input: String,
    pub skill_name: String,
    pub bot_name: String,
    pub bot_slug: String,
    pub limits: Limits,
    pub grants: Grants,
    /// How a denial tells the user to grant what was missing (`None`: the
    /// denial alone).
    pub grant_hint: Option<grants::GrantHint>,
}

impl Invocation {
    /// An invocation with the untrusted defaults and no grants.
    pub fn new(skill_name: impl Into<String>, input: impl Into<String>) -> Self {
        Invocation {
            input: input.into(),
            skill_name: skill_name.into(),
            bot_name: "boternity".into(),
            bot_slug: "boternity".into(),
            limits: Limits::UNTRUSTED,
            grants: Grants::none(),
            grant_hint: None,
        }
    }
}

/// What a finished invocation produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The skill's own answer: `Ok` text or `Err` text (serialized as the
    /// fields `ok` and `err`, one of them null).
    #[serde(flatten, serialize_with = "ok_and_err")]
    pub result: Result<String, String>,
    pub fuel_consumed: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
    pub invocation_id: String,
    pub logs: Vec<LogEntry>,
    pub logs_truncated: bool,
    /// What the skill printed (bounded by `Limits::max_captured_bytes`).
    pub stdout: String,
    pub stderr: String,
    /// stdout or stderr went past the bound and was cut.
    pub output_truncated: bool,
    /// It was a legacy JSON stub: `result` is its body, nothing ran.
    pub stub: bool,
}

/// `Result<String, String>` as `{"ok": …, "err": …}`, one of them null: the
/// shape JSON readers expect, rather than serde's `{"Ok": …}`.
fn ok_and_err<S: serde::Serializer>(
    result: &Result<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let (ok, err) = match result {
        Ok(text) => (Some(text), None),
        Err(text) => (None, Some(text)),
    };
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("ok", &ok)?;
    map.serialize_entry("err", &err)?;
    map.end()
}

/// How long each step of one call took (see [`Executor::run_timed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RunSteps {
    /// The store and its WASI context.
    pub(super) store: Duration,
    pub(super) instantiate: Duration,
    /// `execute`, to its answer.
    pub(super) call: Duration,
    /// Collecting the outcome and dropping the store.
    pub(super) teardown: Duration,
}

impl Executor {
    /// Runs `execute` once in a fresh store.
    pub async fn run(
        &self,
        skill: &LoadedSkill,
        invocation: Invocation,
    ) -> Result<Outcome, ExecError> {
        self.run_inner(skill, invocation, None).await
    }

    /// [`run`](Self::run), timing its steps (for `bench`, which so measures
    /// the very path callers take, deadline backstop included).
    pub(super) async fn run_timed(
        &self,
        skill: &LoadedSkill,
        invocation: Invocation,
    ) -> Result<(Outcome, RunSteps), ExecError> {
        let mut steps = RunSteps::default();
        let outcome = self.run_inner(skill, invocation, Some(&mut steps)).await?;
        Ok((outcome, steps))
    }

    async fn run_inner(
        &self,
        skill: &LoadedSkill,
        invocation: Invocation,
        steps: Option<&mut RunSteps>,
    ) -> Result<Outcome, ExecError> {
        let started = Instant::now();
        let limits = invocation.limits;
        if invocation.input.len() > limits.max_input_bytes {
            return Err(ExecError::InputTooLarge {
                size: invocation.input.len(),
                max: limits.max_input_bytes,
            });
        }
        let invocation_id = self.next_invocation_id();
        let pre = match skill {
            LoadedSkill::Stub(stub) => {
                return Ok(Outcome {
                    result: Ok(stub.body.clone()),
                    fuel_consumed: 0,
                    peak_memory_bytes: 0,
                    duration_us: started.elapsed().as_micros() as u64,
                    invocation_id,
                    logs: Vec::new(),
                    logs_truncated: false,
                    stdout: String::new(),
                    stderr: String::new(),
                    output_truncated: false,
                    stub: true,
                });
            }
            LoadedSkill::Component { pre, .. } => pre,
        };

        // The epoch advances while this is held: to the end of the call.
        let _ticking = self.ticker.running(&self.engine)?;
        let (mut store, stdout, stderr) =
            self.new_store(&invocation, invocation_id.clone(), started)?;
        let stored = Instant::now();

        let mut instantiated = None;
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instantiated = Some(Instant::now());
            instance.call_execute(&mut store, &invocation.input).await
        };
        // The epoch callback stops running wasm at the deadline. A skill
        // blocked in a WASI call (sleeping on a clock) runs no wasm, so this
        // timer, a little later, is what stops it (HTTP has its own cut-off).
        let backstop = limits.deadline + EPOCH_TICK * 50;
        let result = match tokio::time::timeout(backstop, call).await {
            Ok(result) => result,
            Err(_) => Err(DeadlineHit.into()),
        };
        let called = Instant::now();
        let outcome = self.finish(
            store,
            (stdout, stderr),
            result,
            &limits,
            started,
            invocation_id,
        );
        if let Some(steps) = steps {
            let instantiated = instantiated.unwrap_or(called);
            *steps = RunSteps {
                store: stored - started,
                instantiate: instantiated - stored,
                call: called - instantiated,
                teardown: called.elapsed(),
            };
        }
        outcome
    }

    /// The outcome of a finished call; drops the store.
    pub(super) fn finish(
        &self,
        store: Store<HostState>,
        (stdout, stderr): (capture::Capture, capture::Capture),
        result: wasmtime::Result<Result<String, String>>,
        limits: &Limits,
        started: Instant,
        invocation_id: String,
    ) -> Result<Outcome, ExecError> {
        let limits = *limits;
        let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let result = result.map_err(|e| self.error_for(e, &limits, started))?;
        let output_len = match &result {
            Ok(s) | Err(s) => s.len(),
        };
        if output_len > limits.max_output_bytes {
            return Err(ExecError::OutputTooLarge {
                size: output_len,
                max: limits.max_output_bytes,
            });
        }
        let state = store.into_data();
        let (stdout, stdout_truncated) = stdout.contents();
        let (stderr, stderr_truncated) = stderr.contents();
        Ok(Outcome {
            result,
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak_bytes,
            duration_us: started.elapsed().as_micros() as u64,
            invocation_id,
            logs: state.logs.entries,
            logs_truncated: state.logs.truncated,
            stdout,
            stderr,
            output_truncated: stdout_truncated || stderr_truncated,
            stub: false,
        })
    }

    /// A fresh store for one invocation: deny-by-default WASI with captured
    /// output, the host state, and every limit armed.
    pub(super) fn new_store(
        &self,
        invocation: &Invocation,
        invocation_id: String,
        started: Instant,
    ) -> Result<(Store<HostState>, capture::Capture, capture::Capture), ExecError> {
        let limits = invocation.limits;
        let stdout = capture::Capture::new(limits.max_captured_bytes);
        let stderr = capture::Capture::new(limits.max_captured_bytes);
        // Deny by default: no preopens, no environment, no arguments, no network.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let context = bindings::boternity::skill::host::SkillContext {
            bot_name: invocation.bot_name.clone(),
            bot_slug: invocation.bot_slug.clone(),
            skill_name: invocation.skill_name.clone(),
            invocation_id,
        };
        let state = HostState::new(
            wasi,
            &limits,
            (Arc::new(invocation.grants.clone()), invocation.grant_hint),
            context,
            self.services.clone(),
            started + limits.deadline,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| ExecError::Trap(format!("{e:#}")))?;
        let deadline = started + limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(DeadlineHit.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok((store, stdout, stderr))
    }

    /// `inv-<process start, ns, hex>-<pid>-<n>`: unique across processes by the
    /// first two parts (taken once), within this one by a process-wide counter.
    pub(super) fn next_invocation_id(&self) -> String {
        static PREFIX: OnceLock<String> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let prefix = PREFIX.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("inv-{nanos:x}-{}-", std::process::id())
        });
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(prefix.len() + 20);
        id.push_str(prefix);
        // Writing to a String cannot fail.
        let _ = write!(id, "{n}");
        id
    }

    pub(super) fn error_for(
        &self,
        err: wasmtime::Error,
        limits: &Limits,
        started: Instant,
    ) -> ExecError {
        if err.downcast_ref::<DeadlineHit>().is_some()
            || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt))
        {
            return ExecError::DeadlineExceeded {
                elapsed_ms: started.elapsed().as_millis() as u64,
                limit_ms: limits.deadline.as_millis() as u64,
            };
        }
        if let Some(host) = err.downcast_ref::<HostTrap>() {
            return match host {
                HostTrap::Memory { limit_mib, .. } => ExecError::MemoryLimit {
                    limit_mib: *limit_mib,
                },
                HostTrap::Table { limit } => ExecError::TableLimit { limit: *limit },
                HostTrap::Denied(msg) => ExecError::Denied(msg.clone()),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => ExecError::FuelExhausted { fuel: limits.fuel },
            Some(Trap::StackOverflow) => ExecError::StackOverflow {
                limit_kib: self.config.max_wasm_stack / 1024,
            },
            _ => {
                // The root cause says what happened; the wasm backtrace is for debugging.
                tracing::debug!("skill trapped: {err:?}");
                ExecError::Trap(err.root_cause().to_string())
            }
        }
    }
}
