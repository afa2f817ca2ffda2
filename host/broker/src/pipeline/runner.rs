//! The runner of one pipeline: a named std thread (handler calls are
//! synchronous and may run for their whole deadline, so they never run on
//! the tokio reactor) that loops over
//!
//! 1. read up to `batch_messages_max` messages of the source stream after
//!    the pipeline's position (the batch is the bound on messages in flight),
//! 2. run each through the chain of handlers, retrying a failure with
//!    exponential back-off and jitter, then dead-lettering it,
//! 3. publish the outputs (each carrying `pl:{pipeline}:{partition}:{offset}:{n}`
//!    as its idempotency id) and dead letters, and wait until they are durable,
//! 4. commit the source offsets of the batch.
//!
//! A `kill -9` anywhere loses nothing (the offsets move only after the
//! outputs are durable) and duplicates nothing that the target streams'
//! de-duplication windows still remember (a restart re-runs at most the
//! uncommitted batch, and its outputs carry the same ids). A pipeline has
//! `runners` of these threads, each with its own handler instances and its
//! own share of the source's partitions (partition `p` is runner
//! `p % runners`'s), so order holds per partition, hence per key. When a
//! target stream is full, the runner waits: back-pressure stops the read
//! position, not memory. A reload swaps the handlers between two batches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use sluice_core::{GroupName, Message, TenantId, TopicName};
use sluice_log::StoredRecord;

use crate::node::{Node, NodeError, PendingAppends};
use crate::pipeline::spec::PipelineSpec;
use crate::pipeline::stats::{PipelineStats, RunState, StepStats};
use crate::stream::{Stream, now_ms};

/// Longest a dead-letter header carrying a guest backtrace may be.
const BACKTRACE_HEADER_BYTES_MAX: usize = 4096;
/// How long the runner sleeps between attempts when storage fails.
const STORAGE_RETRY_MS: u64 = 500;
/// How often an idle runner looks at its control channel.
const IDLE_POLL_MS: u64 = 200;

/// A deployed chain of loaded handlers and the spec it belongs to.
pub struct Deployment {
    pub spec: Arc<PipelineSpec>,
    pub steps: Vec<Step>,
}

pub struct Step {
    pub handler: sluice_wasm::LoadedHandler,
    pub stats: Arc<StepStats>,
}

/// What the node asks of a runner.
pub enum Control {
    /// Swap in a new deployment after the current batch; reply when done.
    Reload(Box<Deployment>, tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// Why a runner stopped working on a batch.
enum Interrupt {
    Stop,
    /// Storage or the metadata store failed: start over from the commit.
    Storage(NodeError),
}

impl From<NodeError> for Interrupt {
    fn from(e: NodeError) -> Self {
        Interrupt::Storage(e)
    }
}

/// Why a message was dead-lettered.
struct Failure {
    reason: String,
    handler: Option<(String, String)>,
    backtrace: Option<String>,
    attempts: u32,
}

pub struct Runner {
    /// Which of the pipeline's runners this is (0-based).
    pub index: usize,
    /// The source partitions this runner reads and commits; no other does.
    pub partitions: Vec<u32>,
    pub node: Arc<Node>,
    pub tenant: TenantId,
    pub group: GroupName,
    pub source: Arc<Stream>,
    pub dead_letter: Arc<Stream>,
    /// The tenant's token vault, flushed before outputs are published.
    pub vault: Arc<crate::vault::Vault>,
    pub deployment: Deployment,
    pub stats: Arc<PipelineStats>,
    pub control: Receiver<Control>,
    pub rt: tokio::runtime::Handle,
    /// Messages dead-lettered in a row, across batches (the breaker's count).
    pub consecutive_failures: u32,
    /// Whether a batch is being handled (reloads wait for its end).
    pub in_batch: bool,
    /// A reload that arrived during a batch.
    #[allow(clippy::type_complexity)]
    pub pending: Option<(Box<Deployment>, tokio::sync::oneshot::Sender<()>)>,
}

impl Runner {
    pub fn run(mut self) {
        // Timers and channels of the node's runtime, used from this thread.
        let rt = self.rt.clone();
        let _context = rt.enter();
        let name = self.deployment.spec.name.clone();
        tracing::info!(pipeline = %name, source = %self.source.name(), "pipeline started");
        let mut positions = match self.node.group_positions(&self.source, &self.group) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(pipeline = %name, error = %e, "cannot read the pipeline's position");
                self.stats.set_error(&e.to_string());
                self.stats.set_state(RunState::Failed);
                return;
            }
        };
        let mut changed = self.source.changed.subscribe();
        loop {
            if self.poll_control(Duration::ZERO) {
                break;
            }
            if let Some((d, done)) = self.pending.take() {
                self.reload(*d, done);
            }
            let until = self.stats.breaker_until_ms.load(Relaxed);
            if self.stats.state() == RunState::BreakerOpen {
                let left = until - now_ms();
                if left > 0 {
                    if self
                        .poll_control(Duration::from_millis(left.min(IDLE_POLL_MS as i64) as u64))
                    {
                        break;
                    }
                    continue;
                }
                // Half-open: the next failure opens it again at once.
                self.stats.set_state_unless_failed(RunState::Running);
                self.consecutive_failures = self.deployment.spec.breaker_failures.saturating_sub(1);
            }
            changed.borrow_and_update();
            self.clamp(&mut positions);
            let batch = match crate::node::read_round_robin(
                &self.source,
                &positions,
                &self.partitions,
                self.deployment.spec.batch_messages_max,
                self.node.options.limits.fetch_bytes_max,
            ) {
                Ok(b) => b,
                Err(e) => {
                    self.storage_trouble(&e);
                    if self.poll_control(Duration::from_millis(STORAGE_RETRY_MS)) {
                        break;
                    }
                    continue;
                }
            };
            if batch.messages.is_empty() {
                let wait =
                    tokio::time::timeout(Duration::from_millis(IDLE_POLL_MS), changed.changed());
                let _ = self.rt.block_on(wait);
                continue;
            }
            match self.process(batch.messages) {
                Ok(done) => {
                    for (p, next) in done {
                        positions[p as usize] = next;
                    }
                }
                Err(Interrupt::Stop) => break,
                Err(Interrupt::Storage(e)) => {
                    self.storage_trouble(&e);
                    // Whatever of the batch was published carries ids the
                    // targets de-duplicate when it is handled again.
                    match self.node.group_positions(&self.source, &self.group) {
                        Ok(p) => positions = p,
                        Err(e) => self.storage_trouble(&e),
                    }
                    if self.poll_control(Duration::from_millis(STORAGE_RETRY_MS)) {
                        break;
                    }
                }
            }
        }
        self.stats.set_state(RunState::Stopped);
        tracing::info!(pipeline = %name, "pipeline stopped");
    }

    fn storage_trouble(&self, e: &dyn std::fmt::Display) {
        tracing::warn!(pipeline = %self.deployment.spec.name, error = %e, "pipeline waits for storage");
        self.stats.set_error(&format!("storage: {e}"));
    }

    /// Keeps positions inside what the log holds (retention may have
    /// removed the oldest segments under a lagging pipeline).
    fn clamp(&self, positions: &mut [u64]) {
        for (p, h) in self.source.partitions.iter().enumerate() {
            positions[p] = positions[p].clamp(h.start_offset(), h.visible_end());
        }
    }

    /// Applies control messages waiting now or arriving within `wait`.
    /// Returns true when the runner must stop.
    fn poll_control(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = if left.is_zero() {
                match self.control.try_recv() {
                    Ok(m) => m,
                    Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return true,
                }
            } else {
                match self.control.recv_timeout(left) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => return false,
                    Err(RecvTimeoutError::Disconnected) => return true,
                }
            };
            match msg {
                Control::Stop => return true,
                // Inside a batch (a back-off, a wait for a full target) the
                // swap waits for the batch to end; a later reload replaces
                // an earlier one that has not happened yet.
                Control::Reload(d, done) if self.in_batch => self.pending = Some((d, done)),
                Control::Reload(d, done) => self.reload(*d, done),
            }
        }
    }

    /// Swaps in a new deployment. Only called between batches.
    fn reload(&mut self, d: Deployment, done: tokio::sync::oneshot::Sender<()>) {
        self.stats
            .set_steps(d.steps.iter().map(|s| s.stats.clone()).collect());
        self.deployment = d;
        if self.index == 0 {
            // Every runner swaps; the pipeline was reloaded once.
            self.stats.reloads.fetch_add(1, Relaxed);
        }
        // A new deployment deserves a fresh chance.
        self.consecutive_failures = 0;
        if self.stats.state() == RunState::BreakerOpen {
            self.stats.set_state(RunState::Running);
        }
        let _ = done.send(());
        tracing::info!(pipeline = %self.deployment.spec.name, "pipeline reloaded");
    }

    /// [`Runner::process_batch`] with reloads held back until it ends.
    fn process(
        &mut self,
        messages: Vec<(u32, StoredRecord)>,
    ) -> Result<BTreeMap<u32, u64>, Interrupt> {
        self.in_batch = true;
        let r = self.process_batch(messages);
        self.in_batch = false;
        r
    }

    /// Handles one batch; returns, per partition, the next offset to read.
    fn process_batch(
        &mut self,
        messages: Vec<(u32, StoredRecord)>,
    ) -> Result<BTreeMap<u32, u64>, Interrupt> {
        let spec = self.deployment.spec.clone();
        let mut done: BTreeMap<u32, u64> = BTreeMap::new();
        let mut outputs: Vec<Message> = Vec::new();
        let mut dead: Vec<Message> = Vec::new();
        let mut filtered = 0u64;
        let mut breaker = false;
        let mut handled = 0u64;
        for (partition, record) in messages {
            handled += 1;
            let offset = record.offset;
            let result =
                match Message::decode(record.key.clone(), record.timestamp_ms, &record.value) {
                    Ok(msg) => self.run_chain(&msg, partition, offset)?,
                    Err(e) => Err(Failure {
                        reason: format!("bad_envelope: {e}"),
                        handler: None,
                        backtrace: None,
                        attempts: 1,
                    }),
                };
            match result {
                Ok(outs) => {
                    self.consecutive_failures = 0;
                    if outs.is_empty() {
                        filtered += 1;
                    }
                    outputs.extend(outs);
                }
                Err(f) => {
                    self.consecutive_failures += 1;
                    self.stats.set_error(&f.reason);
                    dead.push(self.dead_letter_message(&record, partition, f));
                }
            }
            done.insert(partition, offset + 1);
            if spec.breaker_failures > 0 && self.consecutive_failures >= spec.breaker_failures {
                // Stop here: what follows waits in the source stream.
                breaker = true;
                break;
            }
        }
        let out_count = outputs.len() as u64;
        let dead_count = dead.len() as u64;
        // Tokens in the outputs must be reversible before anyone sees them.
        self.rt.block_on(self.vault.flush())?;
        self.publish_outputs(outputs)?;
        self.append_dead_letters(dead)?;
        self.rt
            .block_on(self.node.commit(&self.source, &self.group, &done))?;
        self.stats.runner_committed(self.index, handled);
        self.stats.messages_out.fetch_add(out_count, Relaxed);
        self.stats.dead_lettered.fetch_add(dead_count, Relaxed);
        self.stats.filtered.fetch_add(filtered, Relaxed);
        for step in &self.deployment.steps {
            if !step.handler.counters().is_empty() {
                step.stats.set_counters(self.index, step.handler.counters());
            }
        }
        if breaker {
            // Opened once what was handled is committed, so whoever sees the
            // state sees the dead letters that opened it.
            self.open_breaker(&spec);
        }
        Ok(done)
    }

    fn open_breaker(&self, spec: &PipelineSpec) {
        tracing::warn!(pipeline = %spec.name, failures = spec.breaker_failures, open_ms = spec.breaker_open_ms,
            "circuit breaker opened: the pipeline pauses");
        self.stats
            .breaker_until_ms
            .store(now_ms() + spec.breaker_open_ms as i64, Relaxed);
        self.stats.breaker_opens.fetch_add(1, Relaxed);
        self.stats.set_state_unless_failed(RunState::BreakerOpen);
    }

    /// Runs `msg` through the chain with retries. The outer error means the
    /// runner was stopped during a back-off; the inner one that the message
    /// is to be dead-lettered.
    #[allow(clippy::type_complexity)]
    fn run_chain(
        &mut self,
        msg: &Message,
        partition: u32,
        offset: u64,
    ) -> Result<Result<Vec<Message>, Failure>, Interrupt> {
        let spec = self.deployment.spec.clone();
        self.stats.messages_in.fetch_add(1, Relaxed);
        let input = to_guest(msg);
        let mut attempt = 0u32;
        loop {
            let failure = match self.run_steps(&input) {
                Ok(outs) => {
                    // Where outputs go is decided once, after the chain; a
                    // bad target is not worth retrying.
                    return Ok(self.outputs_for(&spec, msg, outs, partition, offset));
                }
                Err(f) => f,
            };
            if attempt >= spec.retries {
                return Ok(Err(Failure {
                    attempts: attempt + 1,
                    ..failure
                }));
            }
            attempt += 1;
            self.stats.retries.fetch_add(1, Relaxed);
            let backoff = backoff_ms(spec.retry_backoff_ms, spec.retry_backoff_ms_max, attempt);
            if self.poll_control(Duration::from_millis(backoff)) {
                return Err(Interrupt::Stop);
            }
        }
    }

    /// One pass through every step. An output that names a topic keeps it
    /// for the steps after it (the next step sees it as the message's topic).
    #[allow(clippy::type_complexity)]
    fn run_steps(
        &mut self,
        input: &sluice_wasm::Message,
    ) -> Result<Vec<(Option<String>, sluice_wasm::Message)>, Failure> {
        let mut current: Vec<(Option<String>, sluice_wasm::Message)> = vec![(None, input.clone())];
        for step in &mut self.deployment.steps {
            let mut next = Vec::with_capacity(current.len());
            for (routed, m) in current {
                let fuel_before = step.handler.stats().fuel_consumed;
                let started = Instant::now();
                let result = step.handler.invoke(&m);
                let fuel = step.handler.stats().fuel_consumed - fuel_before;
                step.stats.record(started.elapsed(), result.is_err(), fuel);
                match result {
                    Ok(outs) => {
                        for o in outs {
                            let topic = o.topic.or_else(|| routed.clone());
                            let mut m = o.message;
                            if let Some(t) = &topic {
                                m.topic = t.clone();
                            }
                            next.push((topic, m));
                        }
                    }
                    Err(e) => {
                        let backtrace = match &e {
                            sluice_wasm::InvokeError::Trap { backtrace, .. } => backtrace.clone(),
                            _ => None,
                        };
                        return Err(Failure {
                            reason: e.reason().into_owned(),
                            handler: Some((
                                step.handler.name().to_owned(),
                                step.handler.version().to_owned(),
                            )),
                            backtrace,
                            attempts: 1,
                        });
                    }
                }
            }
            current = next;
            if current.is_empty() {
                break;
            }
        }
        Ok(current)
    }

    /// Turns the chain's outputs into messages to publish, or a failure
    /// when one has nowhere valid to go.
    fn outputs_for(
        &self,
        spec: &PipelineSpec,
        source: &Message,
        outs: Vec<(Option<String>, sluice_wasm::Message)>,
        partition: u32,
        offset: u64,
    ) -> Result<Vec<Message>, Failure> {
        let fail = |reason: String| Failure {
            reason,
            handler: None,
            backtrace: None,
            attempts: 1,
        };
        let now = now_ms();
        let mut msgs = Vec::with_capacity(outs.len());
        for (i, (routed, m)) in outs.into_iter().enumerate() {
            let topic = routed.unwrap_or_else(|| spec.output.render(&source.topic));
            let topic = TopicName::new(&topic)
                .map_err(|e| fail(format!("bad_output_topic: {topic:?}: {e}")))?;
            if topic.is_system() {
                return Err(fail(format!(
                    "bad_output_topic: {topic} starts with '$', which is reserved for the broker"
                )));
            }
            if self.source.matches(&topic) {
                return Err(fail(format!(
                    "output_loop: {topic} is captured by the pipeline's own source stream {}",
                    self.source.name()
                )));
            }
            if m.headers.len() > sluice_core::envelope::HEADERS_MAX {
                return Err(fail(format!(
                    "output_limit: {} headers, at most {}",
                    m.headers.len(),
                    sluice_core::envelope::HEADERS_MAX
                )));
            }
            let payload_utf8 = source.mqtt.payload_utf8 && std::str::from_utf8(&m.payload).is_ok();
            msgs.push(Message {
                topic,
                key: m.key.map(Bytes::from),
                headers: m.headers,
                content_type: m.content_type,
                msg_id: Some(format!("pl:{}:{partition}:{offset}:{i}", spec.name)),
                payload: Bytes::from(m.payload),
                // Now, not the source's time: the target's time index and
                // de-duplication window both count from the append.
                timestamp_ms: now,
                mqtt: sluice_core::MqttProperties {
                    payload_utf8,
                    ..source.mqtt.clone()
                },
            });
        }
        Ok(msgs)
    }

    /// The original message with why it failed, for the dead-letter stream.
    fn dead_letter_message(&self, record: &StoredRecord, partition: u32, f: Failure) -> Message {
        let spec = &self.deployment.spec;
        let mut msg = Message::decode(record.key.clone(), record.timestamp_ms, &record.value)
            .unwrap_or_else(|_| Message {
                topic: TopicName::new("$dlq/undecodable").expect("literal"),
                key: record.key.clone(),
                headers: Vec::new(),
                content_type: None,
                msg_id: None,
                payload: record.value.clone(),
                timestamp_ms: record.timestamp_ms,
                mqtt: Default::default(),
            });
        let mut h = vec![
            ("sluice-dlq-reason".to_owned(), f.reason),
            ("sluice-dlq-pipeline".to_owned(), spec.name.clone()),
            (
                "sluice-dlq-source".to_owned(),
                format!("{}/{partition}/{}", self.source.name(), record.offset),
            ),
            (
                "sluice-dlq-source-timestamp-ms".to_owned(),
                record.timestamp_ms.to_string(),
            ),
            ("sluice-dlq-attempts".to_owned(), f.attempts.to_string()),
        ];
        if let Some((name, version)) = f.handler {
            h.push(("sluice-dlq-handler".to_owned(), name));
            h.push(("sluice-dlq-handler-version".to_owned(), version));
        }
        if let Some(mut bt) = f.backtrace {
            if bt.len() > BACKTRACE_HEADER_BYTES_MAX {
                let mut end = BACKTRACE_HEADER_BYTES_MAX;
                while !bt.is_char_boundary(end) {
                    end -= 1;
                }
                bt.truncate(end);
            }
            h.push(("sluice-dlq-backtrace".to_owned(), bt));
        }
        // The message's own headers come after ours; drop the tail beyond the
        // envelope's limit rather than the reason.
        h.append(&mut msg.headers);
        h.truncate(sluice_core::envelope::HEADERS_MAX);
        msg.headers = h;
        msg.msg_id = Some(format!(
            "pl:{}:dlq:{partition}:{}",
            spec.name, record.offset
        ));
        msg.timestamp_ms = now_ms();
        msg
    }

    /// Publishes outputs like any producer (streams first, then live MQTT
    /// subscribers) and waits until every append is durable. A full target
    /// makes the runner wait, not drop.
    fn publish_outputs(&mut self, outputs: Vec<Message>) -> Result<(), Interrupt> {
        let mut pending: Vec<(Message, PendingAppends)> = Vec::with_capacity(outputs.len());
        for msg in outputs {
            loop {
                match self.node.begin_publish(&self.tenant, &msg) {
                    Ok(p) => {
                        pending.push((msg, p));
                        break;
                    }
                    Err(NodeError::Backpressure { .. } | NodeError::RateLimited { .. }) => {
                        self.stats.backpressure_waits.fetch_add(1, Relaxed);
                        if self.poll_control(Duration::from_millis(5)) {
                            return Err(Interrupt::Stop);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for (msg, p) in pending {
            let appends = self.rt.block_on(p.wait())?;
            // A re-run after a crash finds its outputs already appended:
            // live subscribers saw them the first time.
            if appends.is_empty() || appends.iter().any(|a| !a.duplicate) {
                let (_, held, congested) = self.node.route_live(
                    &self.tenant,
                    &msg,
                    sluice_mqtt::QoS::AtLeastOnce,
                    false,
                    None,
                );
                self.rt.block_on(held)?;
                // A subscriber far behind slows the pipeline, for a bounded time.
                if let Some(c) = congested {
                    self.rt.block_on(c.drained());
                }
            }
        }
        Ok(())
    }

    fn append_dead_letters(&mut self, dead: Vec<Message>) -> Result<(), Interrupt> {
        let mut waits = Vec::with_capacity(dead.len());
        let dl = self.dead_letter.clone();
        for msg in &dead {
            loop {
                match dl.try_reserve() {
                    Ok(permit) => {
                        let (cmd, rx) = dl.append_cmd(msg);
                        permit.send(cmd);
                        waits.push(rx);
                        break;
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {
                        self.stats.backpressure_waits.fetch_add(1, Relaxed);
                        if self.poll_control(Duration::from_millis(5)) {
                            return Err(Interrupt::Stop);
                        }
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => {
                        return Err(NodeError::Storage(format!(
                            "dead-letter stream {} is closed",
                            dl.name()
                        ))
                        .into());
                    }
                }
            }
        }
        for rx in waits {
            self.rt
                .block_on(rx)
                .map_err(|_| NodeError::Storage("dead-letter writer stopped".into()))?
                .map_err(NodeError::from)?;
        }
        Ok(())
    }
}

/// Exponential back-off with full jitter in its upper half:
/// `base * 2^(attempt-1)`, capped, then a random point in [d/2, d].
fn backoff_ms(base: u64, max: u64, attempt: u32) -> u64 {
    let d = base
        .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30))
        .min(max);
    if d < 2 {
        return d;
    }
    rand::rng().random_range(d / 2..=d)
}

fn to_guest(m: &Message) -> sluice_wasm::Message {
    sluice_wasm::Message {
        topic: m.topic.as_str().to_owned(),
        key: m.key.as_ref().map(|k| k.to_vec()),
        headers: m.headers.clone(),
        content_type: m.content_type.clone(),
        payload: m.payload.to_vec(),
        timestamp_ms: m.timestamp_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_within_its_cap_with_jitter() {
        for attempt in 1..=12 {
            let d = (10u64 << (attempt - 1)).min(1000);
            for _ in 0..50 {
                let b = backoff_ms(10, 1000, attempt);
                assert!(
                    b >= d / 2 && b <= d,
                    "attempt {attempt}: {b} not in [{}, {d}]",
                    d / 2
                );
            }
        }
        assert_eq!(backoff_ms(0, 0, 5), 0);
    }
}
