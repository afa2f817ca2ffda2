//! What the host gives a guest: the `sluice:handler` imports (log, clock,
//! counters, key/value state, pseudonyms and tokens), the memory limiter, and the
//! deny-all WASI context Rust and Python toolchains need to link. Imports
//! reach only [`GuestHost`], a narrow view like `WasiView`, never the whole
//! store: so they cannot touch limits, fuel or other handlers.

use crate::bindings::sluice::handler::{clock, log, metrics, pseudonym, state, types, vault};
use crate::config::Limits;
use crate::vault::{TenantKeys, hmac, push_hex};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Everything a `Store` holds for one instance.
pub(crate) struct StoreData {
    pub host: GuestHost,
    pub limiter: GuestLimiter,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub stdio: CapturedOutput,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A WASI context that grants nothing: no environment, arguments,
/// preopened directories, sockets or name look-ups. stdout and stderr go to
/// a small capture buffer so a panic message can travel with its trap.
/// Clocks and randomness stay (Rust's `HashMap` seeds itself from them).
pub(crate) fn deny_all_wasi(stdio: &CapturedOutput) -> WasiCtx {
    WasiCtx::builder()
        .stdout(stdio.clone())
        .stderr(stdio.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// Who a handler is, for log lines.
#[derive(Debug)]
pub(crate) struct HandlerIdent {
    pub name: String,
    pub version: String,
}

/// The state behind the `sluice:handler` imports.
pub(crate) struct GuestHost {
    pub ident: Arc<HandlerIdent>,
    pub keys: TenantKeys,
    /// `tokenize` calls left in the current call.
    pub tokens_left: u32,
    pub limits: Limits,
    pub kv: KvState,
    pub counters: HashMap<String, u64>,
    pub counters_dropped: u64,
    /// Log lines left in the current call.
    pub log_lines_left: u32,
    pub log_lines_dropped: u64,
}

impl types::Host for GuestHost {}

impl log::Host for GuestHost {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        if self.log_lines_left == 0 {
            self.log_lines_dropped += 1;
            return;
        }
        self.log_lines_left -= 1;
        let mut line = message;
        for (k, v) in &fields {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(v);
        }
        truncate_utf8(&mut line, self.limits.log_line_bytes_max as usize);
        let (name, version) = (&self.ident.name, &self.ident.version);
        // tracing needs the level at compile time, hence one arm per level.
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "sluice_wasm::guest", handler = %name, version = %version, "{line}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "sluice_wasm::guest", handler = %name, version = %version, "{line}")
            }
            log::Level::Info => {
                tracing::info!(target: "sluice_wasm::guest", handler = %name, version = %version, "{line}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "sluice_wasm::guest", handler = %name, version = %version, "{line}")
            }
            log::Level::Error => {
                tracing::error!(target: "sluice_wasm::guest", handler = %name, version = %version, "{line}")
            }
        }
    }
}

impl clock::Host for GuestHost {
    fn now_ms(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

impl metrics::Host for GuestHost {
    fn counter_add(&mut self, name: String, delta: u64) {
        if let Some(c) = self.counters.get_mut(&name) {
            *c = c.saturating_add(delta);
        } else if self.counters.len() < self.limits.counters_max as usize {
            self.counters.insert(name, delta);
        } else {
            self.counters_dropped += 1;
        }
    }
}

impl state::Host for GuestHost {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key).map(<[u8]>::to_vec)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), state::StateError> {
        self.kv.set(key, value, &self.limits)
    }

    fn delete(&mut self, key: String) {
        self.kv.delete(key);
    }
}

impl pseudonym::Host for GuestHost {
    fn pseudonymize(&mut self, domain: String, value: String) -> String {
        pseudonymize(&self.keys.secret, &domain, &value)
    }
}

impl vault::Host for GuestHost {
    fn tokenize(&mut self, domain: String, value: String) -> Result<String, String> {
        let Some(vault) = &self.keys.vault else {
            return Err("no vault: this node does not issue tokens to this handler".into());
        };
        if value.len() + domain.len() > self.limits.token_value_bytes_max as usize {
            return Err(format!(
                "the value is longer than token_value_bytes_max ({})",
                self.limits.token_value_bytes_max
            ));
        }
        if self.tokens_left == 0 {
            return Err(format!(
                "more than tokens_per_call_max ({}) tokens in one call",
                self.limits.tokens_per_call_max
            ));
        }
        self.tokens_left -= 1;
        let token = self.keys.token_of(&domain, &value);
        vault
            .remember(&token, &domain, &value)
            .map_err(|e| e.to_string())?;
        Ok(token)
    }
}

/// HMAC-SHA256(secret, len(domain) ‖ domain ‖ value), first 16 bytes as
/// hex. The length prefix keeps (`ab`, `c`) and (`a`, `bc`) apart.
pub fn pseudonymize(secret: &[u8], domain: &str, value: &str) -> String {
    let tag = hmac(
        secret,
        &[
            &(domain.len() as u64).to_be_bytes(),
            domain.as_bytes(),
            value.as_bytes(),
        ],
    );
    let mut out = String::with_capacity(32);
    push_hex(&mut out, &tag[..16]);
    out
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A handler's key/value state with per-call transactions: writes go to
/// `pending` and become visible to later calls only on `commit`, so a call
/// that fails (and will be retried) leaves no trace.
#[derive(Debug, Default)]
pub(crate) struct KvState {
    committed: HashMap<String, Vec<u8>>,
    /// `None` = deleted in this call.
    pending: HashMap<String, Option<Vec<u8>>>,
    committed_bytes: u64,
    /// Keys plus values as the current call sees them.
    bytes: u64,
}

impl KvState {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        match self.pending.get(key) {
            Some(v) => v.as_deref(),
            None => self.committed.get(key).map(Vec::as_slice),
        }
    }

    fn entry_bytes(&self, key: &str) -> u64 {
        self.get(key).map_or(0, |v| (key.len() + v.len()) as u64)
    }

    pub fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        limits: &Limits,
    ) -> Result<(), state::StateError> {
        if key.len() > limits.state_key_bytes_max as usize {
            return Err(state::StateError::KeyTooLarge);
        }
        if value.len() > limits.state_value_bytes_max as usize {
            return Err(state::StateError::ValueTooLarge);
        }
        let bytes = self.bytes - self.entry_bytes(&key) + (key.len() + value.len()) as u64;
        if bytes > limits.state_bytes_max {
            return Err(state::StateError::QuotaExceeded);
        }
        self.bytes = bytes;
        self.pending.insert(key, Some(value));
        Ok(())
    }

    pub fn delete(&mut self, key: String) {
        self.bytes -= self.entry_bytes(&key);
        self.pending.insert(key, None);
    }

    pub fn commit(&mut self) {
        if self.pending.is_empty() {
            // Most calls write nothing; draining still walks the table.
            return;
        }
        for (k, v) in self.pending.drain() {
            match v {
                Some(v) => self.committed.insert(k, v),
                None => self.committed.remove(&k),
            };
        }
        self.committed_bytes = self.bytes;
    }

    pub fn rollback(&mut self) {
        self.pending.clear();
        self.bytes = self.committed_bytes;
    }

    pub fn committed(&self) -> &HashMap<String, Vec<u8>> {
        &self.committed
    }
}

/// Caps linear memory (all memories of the instance together) and
/// remembers that it said no, so a guest that aborts on a failed allocation
/// is reported as `memory_limit` rather than as a generic trap.
pub(crate) struct GuestLimiter {
    pub memory_bytes_max: usize,
    pub memory_bytes: usize,
    pub memory_denied: bool,
}

/// Returned from `memory_growing` so that the grow itself traps: the guest
/// cannot swallow the failure, and the backtrace points at the allocation.
#[derive(Debug, thiserror::Error)]
#[error(
    "linear memory would grow to {desired_bytes} bytes, past memory_bytes_max {memory_bytes_max}"
)]
pub(crate) struct MemoryLimitExceeded {
    pub desired_bytes: usize,
    pub memory_bytes_max: usize,
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_bytes - current + desired;
        if total > self.memory_bytes_max {
            self.memory_denied = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired_bytes: total,
                memory_bytes_max: self.memory_bytes_max,
            }));
        }
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's `table_elements`; this only
        // honours the module's own maximum.
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        // Components built by today's toolchains have a handful of core
        // instances; this only stops pathological ones.
        64
    }

    fn memories(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        64
    }
}

/// stdout/stderr of one instance: the first `capacity_bytes` written since
/// the last `take`, the rest dropped. Bounded so a chatty guest cannot use
/// host memory; read after each call.
#[derive(Clone)]
pub(crate) struct CapturedOutput {
    buf: Arc<Mutex<Vec<u8>>>,
    capacity_bytes: usize,
}

impl CapturedOutput {
    pub fn new(capacity_bytes: usize) -> Self {
        CapturedOutput {
            buf: Arc::default(),
            capacity_bytes,
        }
    }

    /// Empties the buffer and returns what it held, as text.
    pub fn take(&self) -> String {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        text
    }

    fn append(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.capacity_bytes.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CaptureStream(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this path, and p3 is not linked.
        StdoutStream::async_stream(&std::io::empty())
    }
}

struct CaptureStream(CapturedOutput);

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.0.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always accept (excess is dropped): a full buffer must not turn a
        // guest's diagnostic print into an error of its own.
        Ok(64 << 10)
    }
}
