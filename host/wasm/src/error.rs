//! Errors of the runtime, as data-carrying `thiserror` enums. The line is
//! the one `TrappableError` draws in wasmtime-wasi: what the guest reports
//! (`handler-error`) is a value and leaves the instance alive; a trap or an
//! exhausted budget ends that one instance. `InvokeError::reason` gives the
//! stable strings that dead-letter records and metrics carry.

use std::borrow::Cow;

/// Why a `Runtime` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid wasmtime configuration: {0}")]
    Engine(String),
    #[error("cannot create the compile cache directory {path}: {source}")]
    CacheDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// Why a handler could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error("not a valid component: {0}")]
    Compile(String),
    /// The component does not fit the `sluice:handler` world (missing
    /// export, import the host does not offer, wrong version).
    #[error("component does not match the sluice:handler world: {0}")]
    Link(String),
    /// The first instance could not start or its `init` failed.
    #[error("first instance failed: {0}")]
    Instance(#[source] InvokeError),
}

/// Why one call failed. Traps, exhausted budgets and failed starts discard
/// the instance (the next call gets a fresh one); `Handler` and the output
/// limits leave it alive, since the guest returned normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("fuel exhausted: the call used all {fuel_per_call} units of fuel")]
    FuelExhausted { fuel_per_call: u64 },
    #[error("memory limit: linear memory would grow past {memory_bytes_max} bytes")]
    MemoryLimit { memory_bytes_max: u64 },
    #[error("deadline: the call ran longer than {deadline_ms} ms")]
    Deadline { deadline_ms: u64 },
    #[error("too many outputs: {count} > outputs_max {outputs_max}")]
    TooManyOutputs { count: usize, outputs_max: u32 },
    #[error("outputs too large: {bytes} bytes > output_bytes_max {output_bytes_max}")]
    OutputTooLarge { bytes: u64, output_bytes_max: u64 },
    /// The guest trapped (a Rust panic, `unreachable`, an out-of-bounds
    /// access…). `message` includes what the guest wrote to stderr just
    /// before (the panic message); `backtrace` is the guest's Wasm stack.
    #[error("trap: {message}")]
    Trap {
        message: String,
        backtrace: Option<String>,
    },
    /// The guest returned a `handler-error`. The instance stays alive.
    #[error("handler error {code}: {message}")]
    Handler { code: String, message: String },
    /// `init(config)` returned an error.
    #[error("init failed: {0}")]
    Init(String),
    /// A fresh instance could not be created (pool exhausted, …).
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
}

impl InvokeError {
    /// The stable reason string for dead-letter records and metrics:
    /// `fuel_exhausted`, `memory_limit`, `deadline`, `output_limit`,
    /// `trap: …`, `handler_error: code: message`, `init: …`,
    /// `instantiate: …`.
    pub fn reason(&self) -> Cow<'static, str> {
        match self {
            InvokeError::FuelExhausted { .. } => "fuel_exhausted".into(),
            InvokeError::MemoryLimit { .. } => "memory_limit".into(),
            InvokeError::Deadline { .. } => "deadline".into(),
            InvokeError::TooManyOutputs { .. } | InvokeError::OutputTooLarge { .. } => {
                "output_limit".into()
            }
            InvokeError::Trap { message, .. } => format!("trap: {message}").into(),
            InvokeError::Handler { code, message } => {
                format!("handler_error: {code}: {message}").into()
            }
            InvokeError::Init(m) => format!("init: {m}").into(),
            InvokeError::Instantiate(m) => format!("instantiate: {m}").into(),
        }
    }

    /// Whether the instance that produced this error was thrown away.
    pub fn discarded_instance(&self) -> bool {
        !matches!(
            self,
            InvokeError::Handler { .. }
                | InvokeError::TooManyOutputs { .. }
                | InvokeError::OutputTooLarge { .. }
        )
    }
}
