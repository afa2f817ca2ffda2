//! Hostile guests get the right `InvokeError` and reason, lose their
//! instance, and the same handler serves the next message with a fresh
//! one: the node survives its tenants' bugs.

use crate::{load, load_with, runtime};
use sluice_wasm::{InvokeError, Limits, LoadedHandler, Message, Runtime, RuntimeConfig};
use std::time::{Duration, Instant};

fn bad() -> Message {
    Message::new("t", b"go".to_vec())
}

/// Limits with CPU budgets far above what the test needs, for tests about
/// other limits: filling megabytes costs a lot of fuel.
fn roomy() -> Limits {
    Limits {
        fuel_per_call: 2_000_000_000,
        deadline_ms: 10_000,
        ..Limits::default()
    }
}

/// After a failure the handler must answer a good message at once, from a
/// new instance.
fn still_serves(h: &mut LoadedHandler) {
    assert!(
        !h.has_live_instance(),
        "a failed instance must be discarded"
    );
    let ok = Message::new("t", b"ok".to_vec());
    let out = h
        .invoke(&ok)
        .expect("a fresh instance serves the next message");
    assert_eq!(out[0].message.payload, b"ok");
    assert!(h.stats().instances_started >= 2);
}

#[test]
pub fn infinite_loop() {
    let limits = Limits {
        fuel_per_call: 5_000_000,
        ..Limits::default()
    };
    let mut h = load_with(runtime(), "infinite-loop", "", limits);
    let err = h.invoke(&bad()).unwrap_err();
    assert_eq!(
        err,
        InvokeError::FuelExhausted {
            fuel_per_call: 5_000_000
        }
    );
    assert_eq!(err.reason(), "fuel_exhausted");
    assert!(h.stats().fuel_consumed >= 5_000_000);
    still_serves(&mut h);
}

#[test]
fn infinite_loop_without_fuel_hits_the_deadline() {
    let rt = Runtime::new(RuntimeConfig {
        fuel_enabled: false,
        instances_max: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let limits = Limits {
        deadline_ms: 50,
        ..Limits::default()
    };
    let mut h = load_with(&rt, "infinite-loop", "", limits);
    let start = Instant::now();
    let err = h.invoke(&bad()).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err, InvokeError::Deadline { deadline_ms: 50 });
    assert_eq!(err.reason(), "deadline");
    assert!(took >= Duration::from_millis(50), "stopped early: {took:?}");
    assert!(took < Duration::from_secs(2), "stopped late: {took:?}");
    still_serves(&mut h);
}

#[test]
pub fn memory_bomb() {
    // Plenty of fuel and time: this test is about memory only.
    let limits = Limits {
        memory_bytes_max: 16 << 20,
        ..roomy()
    };
    let mut h = load_with(runtime(), "memory-bomb", "", limits);
    let err = h.invoke(&bad()).unwrap_err();
    assert_eq!(
        err,
        InvokeError::MemoryLimit {
            memory_bytes_max: 16 << 20
        }
    );
    assert_eq!(err.reason(), "memory_limit");
    still_serves(&mut h);
}

#[test]
pub fn panic() {
    let mut h = load("panic", "");
    let err = h.invoke(&bad()).unwrap_err();
    let InvokeError::Trap { message, backtrace } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(
        message.contains("hostile handler panicked on purpose"),
        "{message}"
    );
    assert!(err.reason().starts_with("trap: "), "{}", err.reason());
    let backtrace = backtrace
        .as_deref()
        .expect("wasmtime gives a guest backtrace");
    assert!(backtrace.contains("handle"), "{backtrace}");
    still_serves(&mut h);
}

#[test]
pub fn huge_output() {
    // The default config answers with one 8 MiB output.
    let mut h = load_with(runtime(), "huge-output", "", roomy());
    let err = h.invoke(&bad()).unwrap_err();
    assert!(
        matches!(err, InvokeError::OutputTooLarge { bytes, output_bytes_max } if output_bytes_max == Limits::default().output_bytes_max && bytes > 8 << 20),
        "{err:?}"
    );
    assert_eq!(err.reason(), "output_limit");
    // The guest returned normally: its instance is still good.
    assert!(h.has_live_instance());
    assert_eq!(
        h.invoke(&Message::new("t", b"ok".to_vec())).unwrap().len(),
        1
    );
}

#[test]
fn huge_output_too_many_outputs() {
    let mut h = load("huge-output", r#"{"outputs": 1000, "payload_bytes": 1}"#);
    let err = h.invoke(&bad()).unwrap_err();
    assert_eq!(
        err,
        InvokeError::TooManyOutputs {
            count: 1000,
            outputs_max: 64
        }
    );
    assert_eq!(err.reason(), "output_limit");
}

#[test]
fn a_trap_in_a_batch_fails_the_batch_and_the_next_call_works() {
    let mut h = load("panic", "");
    let msgs = [Message::new("t", b"ok".to_vec()), bad()];
    assert!(matches!(
        h.invoke_batch(&msgs),
        Err(InvokeError::Trap { .. })
    ));
    let got = h.invoke_batch(&msgs[..1]).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok());
}

#[test]
fn limits_beyond_the_node_ceiling_are_refused() {
    let limits = Limits {
        memory_bytes_max: 1 << 40,
        ..Limits::default()
    };
    let wasm = crate::guests::guest("filter");
    let err = runtime()
        .load("filter", "1", &wasm, limits, "", crate::secret("s"))
        .err()
        .unwrap();
    assert!(matches!(err, sluice_wasm::LoadError::Limits(_)), "{err:?}");
}
