//! One loaded handler: its linked component (`InstancePre`), its limits and
//! config, and at most one live instance, each in its own `Store`. After any
//! trap wasmtime refuses to enter that store again (`CannotEnterComponent`),
//! so a trapped instance is dropped whole and the next call starts a fresh
//! one; the handler's key/value state and counters live outside the
//! instance and survive.
//!
//! Instances are reused across messages rather than created per message:
//! a reused call costs a few microseconds, a fresh instance plus `init`
//! tens of microseconds (numbers and command in docs/handlers.md).

use crate::bindings::sluice::handler::types as wit;
use crate::bindings::{Handler, HandlerPre};
use crate::config::{Limits, RuntimeConfig};
use crate::error::{InvokeError, LoadError};
use crate::host::{
    CapturedOutput, GuestHost, GuestLimiter, HandlerIdent, KvState, MemoryLimitExceeded, StoreData,
    deny_all_wasi,
};
use crate::message::{Message, Output};
use crate::runtime::CompileSource;
use crate::vault::TenantKeys;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, WasmBacktrace};

/// How much of a guest's stdout/stderr is kept per call: enough for a
/// panic message, small enough not to matter per instance.
const STDIO_CAPTURE_BYTES: usize = 4096;

/// WASI resources (streams, pollables) one instance may hold at once.
/// Today's guests hold a handful; the cap turns a leak into a trap that
/// ends the instance instead of growing host memory.
const RESOURCE_TABLE_ENTRIES_MAX: usize = 1024;

/// An instance whose linear memory has grown past this share (in
/// per-mille) of its headroom — from its size after `init` up to
/// `memory_bytes_max` — is replaced after the call that grew it, before a
/// later message fails on the limit. It is what keeps guests that leak per
/// call (ComponentizeJS and componentize-py keep every payload) serving
/// without a `memory_limit` dead letter; guests that free what they
/// allocate never get near it.
const RECYCLE_AT_HEADROOM_PER_MILLE: usize = 750;

/// Running totals of one handler, for pipeline status and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerStats {
    /// `invoke` and `invoke_batch` calls.
    pub calls: u64,
    /// Messages handed to the guest (a batch counts each).
    pub messages: u64,
    /// Calls that returned an error of any kind.
    pub errors: u64,
    /// Fuel burnt by all calls (0 when the runtime has fuel off).
    pub fuel_consumed: u64,
    pub instances_started: u64,
    pub instances_discarded: u64,
    /// Instances replaced because their memory neared `memory_bytes_max`
    /// (see `RECYCLE_AT_HEADROOM_PER_MILLE`); also counted as discarded.
    pub memory_recycles: u64,
    pub log_lines_dropped: u64,
    pub counters_dropped: u64,
}

/// A handler ready to take messages. Not `Sync`: one worker thread drives
/// it; a pipeline that wants parallelism loads one per worker.
pub struct LoadedHandler {
    pre: HandlerPre<StoreData>,
    ident: Arc<HandlerIdent>,
    limits: Limits,
    config: String,
    keys: TenantKeys,
    runtime: RuntimeConfig,
    compile_source: CompileSource,
    instance: Option<Instance>,
    /// Host state kept while no instance is live.
    parked: Parked,
    stats: HandlerStats,
}

struct Instance {
    store: Store<StoreData>,
    bindings: Handler,
    calls: u64,
    /// Linear memory bytes past which the instance is recycled.
    recycle_at_memory_bytes: usize,
}

#[derive(Default)]
struct Parked {
    kv: KvState,
    counters: HashMap<String, u64>,
}

impl LoadedHandler {
    pub(crate) fn start(
        pre: HandlerPre<StoreData>,
        ident: Arc<HandlerIdent>,
        limits: Limits,
        config: String,
        keys: TenantKeys,
        runtime: RuntimeConfig,
        compile_source: CompileSource,
    ) -> Result<LoadedHandler, LoadError> {
        let mut h = LoadedHandler {
            pre,
            ident,
            limits,
            config,
            keys,
            runtime,
            compile_source,
            instance: None,
            parked: Parked::default(),
            stats: HandlerStats::default(),
        };
        h.ensure_instance().map_err(LoadError::Instance)?;
        Ok(h)
    }

    pub fn name(&self) -> &str {
        &self.ident.name
    }

    pub fn version(&self) -> &str {
        &self.ident.version
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Totals so far, including the live instance's dropped log lines and
    /// counter names.
    pub fn stats(&self) -> HandlerStats {
        let mut stats = self.stats.clone();
        if let Some(i) = &self.instance {
            stats.log_lines_dropped += i.store.data().host.log_lines_dropped;
            stats.counters_dropped += i.store.data().host.counters_dropped;
        }
        stats
    }

    /// Where the compiled code came from when this handler was loaded.
    pub fn compile_source(&self) -> CompileSource {
        self.compile_source
    }

    /// Whether an instance is live (false right after a trap, until the
    /// next call starts a fresh one).
    pub fn has_live_instance(&self) -> bool {
        self.instance.is_some()
    }

    /// The guest's counters (`metrics.counter-add`).
    pub fn counters(&self) -> &HashMap<String, u64> {
        match &self.instance {
            Some(i) => &i.store.data().host.counters,
            None => &self.parked.counters,
        }
    }

    /// The committed key/value state, e.g. to persist it.
    pub fn state(&self) -> &HashMap<String, Vec<u8>> {
        match &self.instance {
            Some(i) => i.store.data().host.kv.committed(),
            None => self.parked.kv.committed(),
        }
    }

    /// Handles one message. On a trap or an exhausted budget the instance
    /// is discarded and the error says why; the next call gets a fresh
    /// instance. State writes of a failed call are rolled back.
    pub fn invoke(&mut self, message: &Message) -> Result<Vec<Output>, InvokeError> {
        let mut headers = Vec::new();
        let arg = message.as_param(&mut headers);
        let limits = self.limits.clone();
        let outcome = self.call(1, |b, s| {
            b.call_handle(s, arg.clone()).map(|r| {
                r.map_err(handler_error)
                    .and_then(|o| check_outputs(o, &limits))
            })
        });
        self.finish(outcome)
    }

    /// Handles several messages in one guest call (`handle-batch`), which
    /// saves most of the per-call overhead. Budgets scale with the batch:
    /// fuel and deadline are `len` times the per-call ones. The outer error
    /// is a trap or budget of the whole batch (the instance is gone; retry
    /// the messages one by one to find the culprit); inner errors are per
    /// message. State writes commit when the batch returns, whatever the
    /// per-message results: handlers that need per-message rollback should
    /// be driven with `invoke`.
    pub fn invoke_batch(
        &mut self,
        messages: &[Message],
    ) -> Result<Vec<Result<Vec<Output>, InvokeError>>, InvokeError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut headers: Vec<Vec<(&str, &str)>> = messages.iter().map(|_| Vec::new()).collect();
        let args: Vec<wit::MessageParam<'_>> = messages
            .iter()
            .zip(headers.iter_mut())
            .map(|(m, h)| m.as_param(h))
            .collect();
        let limits = self.limits.clone();
        let n = messages.len();
        let outcome = self.call(n as u64, |b, s| {
            b.call_handle_batch(s, &args).map(|results| {
                if results.len() != n {
                    return Err(InvokeError::Trap {
                        message: format!(
                            "handle-batch returned {} results for {n} messages",
                            results.len()
                        ),
                        backtrace: None,
                    });
                }
                Ok(results
                    .into_iter()
                    .map(|r| {
                        r.map_err(handler_error)
                            .and_then(|o| check_outputs(o, &limits))
                    })
                    .collect::<Vec<_>>())
            })
        });
        self.finish(outcome)
    }

    /// Runs `f` on a live instance with the budgets of `messages` messages
    /// armed. `Err(wasmtime)` from `f` means the guest trapped.
    fn call<R>(
        &mut self,
        messages: u64,
        f: impl FnOnce(&Handler, &mut Store<StoreData>) -> wasmtime::Result<Result<R, InvokeError>>,
    ) -> Result<R, InvokeError> {
        self.stats.calls += 1;
        self.stats.messages += messages;
        self.ensure_instance()?;
        let inst = self
            .instance
            .as_mut()
            .expect("ensure_instance left an instance");
        let fuel = arm(&mut inst.store, &self.limits, &self.runtime, messages);
        let result = f(&inst.bindings, &mut inst.store);
        inst.calls += 1;
        self.stats.fuel_consumed += fuel_used(&inst.store, fuel);
        match result {
            Ok(r) => {
                let data = inst.store.data_mut();
                // A failed `handle` leaves no state behind: it will be
                // retried and must see what it saw the first time.
                match r {
                    Ok(_) => data.host.kv.commit(),
                    Err(_) => data.host.kv.rollback(),
                }
                let out = data.stdio.take();
                if !out.is_empty() {
                    tracing::debug!(target: "sluice_wasm::guest", handler = %self.ident.name, "stdio: {}", out.trim_end());
                }
                let near_limit = data.limiter.memory_bytes >= inst.recycle_at_memory_bytes;
                if near_limit {
                    self.stats.memory_recycles += 1;
                }
                if near_limit || inst.calls >= self.limits.calls_per_instance_max {
                    self.discard();
                }
                r
            }
            Err(e) => {
                let err = classify(e, inst.store.data(), &self.limits, messages);
                self.discard();
                Err(err)
            }
        }
    }

    fn finish<R>(&mut self, outcome: Result<R, InvokeError>) -> Result<R, InvokeError> {
        if outcome.is_err() {
            self.stats.errors += 1;
        }
        outcome
    }

    /// Starts a fresh instance and runs `init` if none is live.
    fn ensure_instance(&mut self) -> Result<(), InvokeError> {
        if self.instance.is_some() {
            return Ok(());
        }
        let parked = std::mem::take(&mut self.parked);
        let stdio = CapturedOutput::new(STDIO_CAPTURE_BYTES);
        let data = StoreData {
            host: GuestHost {
                ident: self.ident.clone(),
                keys: self.keys.clone(),
                limits: self.limits.clone(),
                kv: parked.kv,
                counters: parked.counters,
                counters_dropped: 0,
                log_lines_left: 0,
                tokens_left: 0,
                log_lines_dropped: 0,
            },
            limiter: GuestLimiter {
                memory_bytes_max: usize::try_from(self.limits.memory_bytes_max)
                    .unwrap_or(usize::MAX),
                memory_bytes: 0,
                memory_denied: false,
            },
            wasi: deny_all_wasi(&stdio),
            table: {
                let mut t = ResourceTable::new();
                t.set_max_capacity(RESOURCE_TABLE_ENTRIES_MAX);
                t
            },
            stdio,
        };
        let mut store = Store::new(self.pre.engine(), data);
        store.limiter(|d| &mut d.limiter);
        // Instantiation and `init` run under their own budget.
        let init_limits = Limits {
            fuel_per_call: self.limits.init_fuel,
            deadline_ms: self.limits.init_deadline_ms,
            ..self.limits.clone()
        };
        arm(&mut store, &init_limits, &self.runtime, 1);
        self.stats.instances_started += 1;
        let bindings = match self.pre.instantiate(&mut store) {
            Ok(b) => b,
            Err(e) => {
                let err = match classify(e, store.data(), &init_limits, 1) {
                    InvokeError::Trap { message, .. } => InvokeError::Instantiate(message),
                    other => other,
                };
                self.park(store);
                return Err(err);
            }
        };
        match bindings.call_init(&mut store, &self.config) {
            Ok(Ok(())) => {
                store.data_mut().host.kv.commit();
                let limiter = &store.data().limiter;
                let recycle_at_memory_bytes =
                    recycle_threshold(limiter.memory_bytes, limiter.memory_bytes_max);
                self.instance = Some(Instance {
                    store,
                    bindings,
                    calls: 0,
                    recycle_at_memory_bytes,
                });
                Ok(())
            }
            Ok(Err(message)) => {
                store.data_mut().host.kv.rollback();
                self.park(store);
                Err(InvokeError::Init(message))
            }
            Err(e) => {
                let err = match classify(e, store.data(), &init_limits, 1) {
                    InvokeError::Trap { message, .. } => {
                        InvokeError::Init(format!("trap: {message}"))
                    }
                    other => other,
                };
                self.park(store);
                Err(err)
            }
        }
    }

    /// Drops the live instance, keeping the host state it held.
    fn discard(&mut self) {
        if let Some(inst) = self.instance.take() {
            self.park(inst.store);
        }
    }

    fn park(&mut self, store: Store<StoreData>) {
        self.stats.instances_discarded += 1;
        let data = store.into_data();
        let mut host = data.host;
        host.kv.rollback();
        self.stats.log_lines_dropped += host.log_lines_dropped;
        self.stats.counters_dropped += host.counters_dropped;
        self.parked = Parked {
            kv: host.kv,
            counters: host.counters,
        };
    }
}

/// The memory size at which an instance that started at `started_bytes`
/// is recycled: `RECYCLE_AT_HEADROOM_PER_MILLE` of the way to `max_bytes`.
fn recycle_threshold(started_bytes: usize, max_bytes: usize) -> usize {
    let headroom = max_bytes.saturating_sub(started_bytes);
    started_bytes + headroom / 1000 * RECYCLE_AT_HEADROOM_PER_MILLE
}

/// Sets fuel, the epoch deadline and per-call host budgets for a call that
/// carries `messages` messages. Returns the fuel given.
fn arm(
    store: &mut Store<StoreData>,
    limits: &Limits,
    runtime: &RuntimeConfig,
    messages: u64,
) -> u64 {
    let fuel = limits.fuel_per_call.saturating_mul(messages);
    if runtime.fuel_enabled {
        store.set_fuel(fuel).expect("fuel is enabled in the engine");
    }
    // Round up to whole ticks, plus one because the current tick is
    // already partly over.
    let deadline_ms = limits.deadline_ms.saturating_mul(messages);
    let tick_ms = runtime.epoch_tick_ms.max(1);
    store.set_epoch_deadline(deadline_ms.div_ceil(tick_ms) + 1);
    let data = store.data_mut();
    data.limiter.memory_denied = false;
    data.host.log_lines_left = limits
        .log_lines_per_call_max
        .saturating_mul(messages.min(u64::from(u32::MAX)) as u32);
    data.host.tokens_left = limits
        .tokens_per_call_max
        .saturating_mul(messages.min(u64::from(u32::MAX)) as u32);
    if runtime.fuel_enabled { fuel } else { 0 }
}

fn fuel_used(store: &Store<StoreData>, given: u64) -> u64 {
    if given == 0 {
        return 0;
    }
    given.saturating_sub(store.get_fuel().unwrap_or(0))
}

fn handler_error(e: wit::HandlerError) -> InvokeError {
    InvokeError::Handler {
        code: e.code,
        message: e.message,
    }
}

/// Applies `outputs_max` and `output_bytes_max` to one message's outputs.
fn check_outputs(outputs: Vec<wit::Output>, limits: &Limits) -> Result<Vec<Output>, InvokeError> {
    if outputs.len() > limits.outputs_max as usize {
        return Err(InvokeError::TooManyOutputs {
            count: outputs.len(),
            outputs_max: limits.outputs_max,
        });
    }
    let outputs: Vec<Output> = outputs.into_iter().map(Output::from).collect();
    let bytes: u64 = outputs.iter().map(Output::size_bytes).sum();
    if bytes > limits.output_bytes_max {
        return Err(InvokeError::OutputTooLarge {
            bytes,
            output_bytes_max: limits.output_bytes_max,
        });
    }
    Ok(outputs)
}

/// Turns a wasmtime error from a guest call into the reason the broker
/// records. Budgets are recognised first: a guest that aborts because an
/// allocation failed is out of memory, whatever instruction it died on.
fn classify(e: wasmtime::Error, data: &StoreData, limits: &Limits, messages: u64) -> InvokeError {
    if data.limiter.memory_denied || e.is::<MemoryLimitExceeded>() {
        return InvokeError::MemoryLimit {
            memory_bytes_max: limits.memory_bytes_max,
        };
    }
    let trap = e.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::OutOfFuel) => {
            return InvokeError::FuelExhausted {
                fuel_per_call: limits.fuel_per_call.saturating_mul(messages),
            };
        }
        Some(Trap::Interrupt) => {
            return InvokeError::Deadline {
                deadline_ms: limits.deadline_ms.saturating_mul(messages),
            };
        }
        _ => {}
    }
    let mut message = match trap {
        Some(t) => t.to_string(),
        None => e.root_cause().to_string(),
    };
    let stdio = data.stdio.take();
    let said: Vec<&str> = stdio
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
        .collect();
    if !said.is_empty() {
        message.push_str("; guest said: ");
        message.push_str(&said.join(" "));
    }
    if message.len() > 1024 {
        let mut end = 1024;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    InvokeError::Trap {
        message,
        backtrace: e.downcast_ref::<WasmBacktrace>().map(|b| b.to_string()),
    }
}
