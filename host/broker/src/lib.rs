//! `sluice-broker` is the tokio shell of Sluice: it owns the listeners, the
//! threads that drive the blocking log (one writer per stream, with group
//! commit), the metadata store, consumer groups and the HTTP API. It knows
//! nothing about the config file format (the `sluice` binary converts that
//! into [`options`]). It runs Wasm pipelines ([`pipeline`]) through
//! `sluice-wasm`, the one crate that links wasmtime. MQTT's protocol logic
//! lives in the sans-IO `sluice-mqtt`; [`mqtt`] is its shell and router.

pub mod auth;
pub mod dedup;
pub mod drain;
pub mod heartbeat;
pub mod http_admin;
pub mod http_api;
pub mod http_caller;
pub mod http_pipelines;
pub mod http_util;
pub mod meta;
pub mod metrics;
pub mod mqtt;
pub mod node;
pub mod options;
pub mod pipeline;
pub mod quota;
pub mod server;
pub mod spec_doc;
pub mod stream;
pub mod vault;
pub mod writer;

pub use node::Node;
pub use options::{FsyncPolicy, Limits, NodeOptions, StreamSpec};
pub use server::{Running, start};
