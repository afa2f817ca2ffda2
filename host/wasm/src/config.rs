//! The knobs of the runtime and of each handler, as plain structs the
//! broker fills from its own configuration (only `sluice` knows the file
//! format). Defaults are safe for an untrusted handler on a shared node;
//! every limit carries its unit in its name.

use std::path::PathBuf;

/// Node-wide settings: one [`crate::Runtime`] per node.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached by content hash. `None` keeps
    /// the cache in memory only (every process start recompiles).
    pub cache_dir: Option<PathBuf>,
    /// Meter every call with fuel. Costs 10-40% of guest speed (issue 4);
    /// turning it off leaves the epoch deadline as the only CPU bound.
    pub fuel_enabled: bool,
    /// How often the epoch ticker advances. Deadlines are rounded up to
    /// whole ticks, so this is also the deadline's resolution.
    pub epoch_tick_ms: u64,
    /// Live instances the pooling allocator reserves slots for, across all
    /// handlers. Instantiation fails beyond that (back-pressure, not OOM).
    pub instances_max: u32,
    /// The largest `Limits::memory_bytes_max` any handler may ask for; the
    /// pool reserves address space for it.
    pub memory_bytes_max_ceiling: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            fuel_enabled: true,
            epoch_tick_ms: 5,
            instances_max: 128,
            memory_bytes_max_ceiling: 256 << 20,
        }
    }
}

/// Per-handler budgets, from the tenant's quota and the pipeline step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel for one `handle` call (≈ one unit per Wasm instruction). A
    /// batch gets this times the number of messages. Ignored when the
    /// runtime has fuel off.
    pub fuel_per_call: u64,
    /// Cap on the instance's linear memory, all memories together. Growing
    /// past it traps with `memory_limit`.
    pub memory_bytes_max: u64,
    /// Wall-clock budget of one call (a batch: times the number of
    /// messages). Enforced by epoch interruption: `deadline`.
    pub deadline_ms: u64,
    /// Fuel for starting an instance and running its `init`, which may
    /// compile tables (the phone patterns in `anonymise`) or load a whole
    /// language runtime: once per instance, so it gets its own budget.
    pub init_fuel: u64,
    /// Wall-clock budget of instantiation plus `init`.
    pub init_deadline_ms: u64,
    /// Outputs one message may produce: `output_limit`.
    pub outputs_max: u32,
    /// Bytes (topics, keys, headers, payloads) one message's outputs may
    /// total: `output_limit`.
    pub output_bytes_max: u64,
    /// Calls after which an instance is replaced by a fresh one, so state
    /// a guest accumulates cannot grow forever. Memory is watched on its
    /// own (an instance near `memory_bytes_max` is recycled at once), so
    /// the default is high: instantiating a JavaScript or Python
    /// handler costs 0.1-1.3 ms and `anonymise` ~7 ms (it was
    /// ~80 ms, a tenth of its throughput at 100 000 calls, when it loaded
    /// libphonenumber's metadata at run time).
    pub calls_per_instance_max: u64,
    /// Longest key in the handler's key/value state.
    pub state_key_bytes_max: u32,
    /// Longest value in the handler's key/value state.
    pub state_value_bytes_max: u32,
    /// Keys plus values of the whole state.
    pub state_bytes_max: u64,
    /// Distinct counter names a handler may create.
    pub counters_max: u32,
    /// Log lines one call may write; the rest are dropped and counted.
    pub log_lines_per_call_max: u32,
    /// Longest log line (message plus fields); longer ones are cut.
    pub log_line_bytes_max: u32,
    /// Longest domain plus value one `tokenize` call may store in the vault.
    pub token_value_bytes_max: u32,
    /// `tokenize` calls one message may make.
    pub tokens_per_call_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // ~1.5 ms of guest code; redact-json burns ~42k per 200-byte
            // message (benches/handler_cost.rs), so ~200x headroom.
            fuel_per_call: 10_000_000,
            memory_bytes_max: 64 << 20,
            deadline_ms: 100,
            // ~70 ms of native work for anonymise's phone metadata; a
            // little more for Wasm, measured in docs/handlers.md.
            init_fuel: 2_000_000_000,
            init_deadline_ms: 2_000,
            outputs_max: 64,
            output_bytes_max: 4 << 20,
            calls_per_instance_max: 10_000_000,
            state_key_bytes_max: 256,
            state_value_bytes_max: 64 << 10,
            state_bytes_max: 1 << 20,
            counters_max: 64,
            log_lines_per_call_max: 16,
            log_line_bytes_max: 4096,
            token_value_bytes_max: 1024,
            tokens_per_call_max: 256,
        }
    }
}

impl Limits {
    /// Rejects limits the runtime cannot honour, before a handler loads.
    pub(crate) fn validate(&self, runtime: &RuntimeConfig) -> Result<(), String> {
        if self.memory_bytes_max > runtime.memory_bytes_max_ceiling {
            return Err(format!(
                "memory_bytes_max {} exceeds the node's memory_bytes_max_ceiling {}",
                self.memory_bytes_max, runtime.memory_bytes_max_ceiling
            ));
        }
        if self.memory_bytes_max < 64 << 10 {
            return Err("memory_bytes_max must be at least one Wasm page (65536)".into());
        }
        if self.deadline_ms == 0 || self.init_deadline_ms == 0 {
            return Err("deadline_ms and init_deadline_ms must be at least 1".into());
        }
        if runtime.fuel_enabled && self.fuel_per_call == 0 {
            return Err("fuel_per_call must be at least 1".into());
        }
        if self.calls_per_instance_max == 0 {
            return Err("calls_per_instance_max must be at least 1".into());
        }
        Ok(())
    }
}
