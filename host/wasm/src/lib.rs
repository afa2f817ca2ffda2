//! `sluice-wasm` runs Sluice message handlers: WebAssembly components that
//! implement the `sluice:handler` world in `wit/`. It is the only crate of
//! the workspace that links wasmtime, so the broker stays free of it and
//! the sandbox's rules (limits, deny-all WASI, secret handling) live in one
//! place.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sluice_wasm::{Limits, Message, Runtime, RuntimeConfig};
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let wasm = std::fs::read("filter.wasm")?;
//! let secret: std::sync::Arc<[u8]> = b"tenant secret".as_slice().into();
//! let mut h = runtime.load("filter", "1.0.0", &wasm, Limits::default(),
//!     r#"{"field": "/level", "op": "eq", "value": "error"}"#, secret)?;
//! let outputs = h.invoke(&Message::new("logs", br#"{"level":"error"}"#.to_vec()))?;
//! assert_eq!(outputs.len(), 1);
//! # Ok(()) }
//! ```
//!
//! `invoke` is synchronous and may run for up to `Limits::deadline_ms`:
//! call it from a blocking worker thread, never on an async reactor.

mod bindings;
mod config;
mod error;
mod handler;
mod host;
mod message;
mod runtime;
mod vault;

pub use config::{Limits, RuntimeConfig};
pub use error::{InvokeError, LoadError, RuntimeError};
pub use handler::{HandlerStats, LoadedHandler};
pub use host::pseudonymize;
pub use message::{Message, Output};
pub use runtime::{CompileSource, Runtime};
pub use vault::{TenantKeys, TokenVault, VaultError};

// The broker shares one runtime between threads and moves each handler to
// the worker thread that drives it; keep both true.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<LoadedHandler>();
    assert_send_sync::<Runtime>();
};
