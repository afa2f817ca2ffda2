//! The `sluice-wasm` test suite: one binary (like wasmtime's `tests/all`)
//! that builds every guest in `guest-examples/rust` and runs it as a real
//! component through the real runtime — no mocks. A guest without a test
//! named after it fails the build (`foreach_guest!`).

mod anonymise;
mod cache;
mod examples;
mod guest_arena;
#[path = "../../../../guest-examples/guests.rs"]
mod guests;
mod host_imports;
mod hostile;
mod polyglot;

pub use anonymise::*;
pub use examples::*;
pub use host_imports::*;
pub use hostile::*;

use sluice_wasm::{Limits, LoadedHandler, Message, Runtime, RuntimeConfig};
use std::sync::{Arc, OnceLock};

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

macro_rules! assert_test_exists {
    ($name:ident) => {
        const _: fn() = $name;
    };
}
foreach_guest!(assert_test_exists);

/// One runtime for the tests that need no special engine settings: the
/// pool reserves address space, so not every test gets its own.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

pub fn secret(s: &str) -> Arc<[u8]> {
    s.as_bytes().into()
}

pub fn load(guest: &str, config: &str) -> LoadedHandler {
    load_with(runtime(), guest, config, Limits::default())
}

pub fn load_with(rt: &Runtime, guest: &str, config: &str, limits: Limits) -> LoadedHandler {
    rt.load(
        guest,
        "0.1.0",
        &guests::guest(guest),
        limits,
        config,
        secret("tenant-a"),
    )
    .unwrap_or_else(|e| panic!("load {guest}: {e}"))
}

pub fn json_msg(topic: &str, v: serde_json::Value) -> Message {
    let mut m = Message::new(topic, serde_json::to_vec(&v).unwrap());
    m.content_type = Some("application/json".into());
    m
}

pub fn payload_json(m: &Message) -> serde_json::Value {
    serde_json::from_slice(&m.payload).unwrap()
}
