//! What a running pipeline counts, shared between its runner thread (which
//! records with relaxed atomics) and the HTTP API (`GET /v1/pipelines/{name}`
//! and `/metrics`, which read). Per-step figures live in [`StepStats`],
//! replaced whole when a reload swaps the handlers.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::metrics::{HANDLER_BUCKETS_S, Histogram};

/// Where a pipeline's runner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    Running = 0,
    /// Too many messages in a row were dead-lettered: paused until `breaker_until_ms`.
    BreakerOpen = 1,
    /// Its source or dead-letter stream is gone, or its handlers cannot start.
    Failed = 2,
    Stopped = 3,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::BreakerOpen => "breaker_open",
            RunState::Failed => "failed",
            RunState::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => RunState::Running,
            1 => RunState::BreakerOpen,
            2 => RunState::Failed,
            _ => RunState::Stopped,
        }
    }
}

/// Counters of one pipeline, across reloads.
#[derive(Debug)]
pub struct PipelineStats {
    /// Source messages fully handled (outputs durable or dead-lettered).
    pub messages_in: AtomicU64,
    /// Messages published by the pipeline.
    pub messages_out: AtomicU64,
    /// Source messages the chain filtered out (no output).
    pub filtered: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Attempts after a failed first one.
    pub retries: AtomicU64,
    /// Times an output waited because a target stream's queue was full.
    pub backpressure_waits: AtomicU64,
    pub breaker_opens: AtomicU64,
    pub reloads: AtomicU64,
    state: AtomicU8,
    pub breaker_until_ms: AtomicI64,
    last_error: Mutex<Option<(String, i64)>>,
    steps: Mutex<Vec<Arc<StepStats>>>,
    /// Per runner: the source partitions it owns and the source messages
    /// it has committed since it started.
    runners: Mutex<Vec<(Vec<u32>, u64)>>,
}

/// Counters of one step (one handler version) of a pipeline.
#[derive(Debug)]
pub struct StepStats {
    pub handler: String,
    pub version: String,
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub fuel_consumed: AtomicU64,
    pub latency: Histogram,
    /// The guest's own counters (`metrics.counter-add`), e.g. the entities
    /// `anonymise` handled per kind; copied after each batch, one map per
    /// runner (each has its own instance), summed when read.
    counters: Mutex<Vec<std::collections::BTreeMap<String, u64>>>,
}

impl StepStats {
    pub fn new(handler: &str, version: &str) -> Self {
        Self {
            handler: handler.to_owned(),
            version: version.to_owned(),
            invocations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            fuel_consumed: AtomicU64::new(0),
            latency: Histogram::with_bounds(&HANDLER_BUCKETS_S),
            counters: Mutex::default(),
        }
    }

    /// Replaces what runner `runner`'s instance has counted so far.
    pub fn set_counters<'a>(
        &self,
        runner: usize,
        c: impl IntoIterator<Item = (&'a String, &'a u64)>,
    ) {
        let mut all = self.counters.lock().expect("stats lock");
        if all.len() <= runner {
            all.resize_with(runner + 1, Default::default);
        }
        let m = &mut all[runner];
        m.clear();
        m.extend(c.into_iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// The counters of every runner's instance, summed.
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let mut sum = std::collections::BTreeMap::new();
        for m in self.counters.lock().expect("stats lock").iter() {
            for (k, v) in m {
                *sum.entry(k.clone()).or_insert(0) += v;
            }
        }
        sum
    }

    pub fn record(&self, took: Duration, failed: bool, fuel: u64) {
        self.invocations.fetch_add(1, Relaxed);
        if failed {
            self.errors.fetch_add(1, Relaxed);
        }
        self.fuel_consumed.fetch_add(fuel, Relaxed);
        self.latency.observe(took);
    }

    fn to_json(&self) -> Value {
        let us = |s: Option<f64>| s.map(|s| (s * 1e6).round() as u64);
        json!({
            "handler": self.handler,
            "version": self.version,
            "invocations": self.invocations.load(Relaxed),
            "errors": self.errors.load(Relaxed),
            "fuel_consumed": self.fuel_consumed.load(Relaxed),
            "counters": self.counters(),
            "latency_us": {
                "mean": (self.latency.mean_s() * 1e6).round() as u64,
                "p50_at_most": us(self.latency.quantile_upper_s(0.5)),
                "p99_at_most": us(self.latency.quantile_upper_s(0.99)),
            },
        })
    }
}

impl Default for PipelineStats {
    fn default() -> Self {
        Self {
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            backpressure_waits: AtomicU64::new(0),
            breaker_opens: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            state: AtomicU8::new(RunState::Running as u8),
            breaker_until_ms: AtomicI64::new(0),
            last_error: Mutex::new(None),
            steps: Mutex::new(Vec::new()),
            runners: Mutex::new(Vec::new()),
        }
    }
}

impl PipelineStats {
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_state(&self, s: RunState) {
        self.state.store(s as u8, Relaxed);
    }

    /// [`PipelineStats::set_state`], except that a failed pipeline stays
    /// failed: with several runners, one runner's breaker must not hide
    /// another's failure.
    pub fn set_state_unless_failed(&self, s: RunState) {
        let _ = self.state.fetch_update(Relaxed, Relaxed, |now| {
            (now != RunState::Failed as u8).then_some(s as u8)
        });
    }

    pub fn set_error(&self, reason: &str) {
        *self.last_error.lock().expect("stats lock") =
            Some((reason.to_owned(), crate::stream::now_ms()));
    }

    pub fn set_steps(&self, steps: Vec<Arc<StepStats>>) {
        *self.steps.lock().expect("stats lock") = steps;
    }

    /// A new set of runners, owning these partitions each; their counts
    /// start at zero.
    pub fn set_runners(&self, partitions: Vec<Vec<u32>>) {
        *self.runners.lock().expect("stats lock") =
            partitions.into_iter().map(|p| (p, 0)).collect();
    }

    /// Runner `index` committed `n` more source messages.
    pub fn runner_committed(&self, index: usize, n: u64) {
        if let Some(r) = self.runners.lock().expect("stats lock").get_mut(index) {
            r.1 += n;
        }
    }

    pub fn steps(&self) -> Vec<Arc<StepStats>> {
        self.steps.lock().expect("stats lock").clone()
    }

    pub fn to_json(&self) -> Value {
        let last_error = self
            .last_error
            .lock()
            .expect("stats lock")
            .clone()
            .map(|(reason, at)| json!({"reason": reason, "at_ms": at}));
        let until = self.breaker_until_ms.load(Relaxed);
        json!({
            "state": self.state().as_str(),
            "breaker_until_ms": (self.state() == RunState::BreakerOpen).then_some(until),
            "messages_in": self.messages_in.load(Relaxed),
            "messages_out": self.messages_out.load(Relaxed),
            "filtered": self.filtered.load(Relaxed),
            "dead_lettered": self.dead_lettered.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "backpressure_waits": self.backpressure_waits.load(Relaxed),
            "breaker_opens": self.breaker_opens.load(Relaxed),
            "reloads": self.reloads.load(Relaxed),
            "last_error": last_error,
            "runners": self
                .runners
                .lock()
                .expect("stats lock")
                .iter()
                .map(|(p, n)| json!({"partitions": p, "messages_committed": n}))
                .collect::<Vec<_>>(),
            "steps": self.steps().iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        })
    }
}
