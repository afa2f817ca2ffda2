//! The host imports through a real guest (`host-probe`): pseudonyms depend
//! on the tenant secret the guest never sees, the sandbox offers no
//! environment, files or network to find it in, state commits only with a
//! successful call and survives discarded instances, counters count.

use crate::{json_msg, load, load_with, runtime};
use serde_json::json;
use sluice_wasm::{InvokeError, Limits, LoadedHandler, pseudonymize};

fn ask(h: &mut LoadedHandler, cmd: serde_json::Value) -> String {
    let out = h.invoke(&json_msg("probe", cmd)).unwrap();
    String::from_utf8(out[0].message.payload.clone()).unwrap()
}

fn tenant(secret: &str) -> LoadedHandler {
    let wasm = crate::guests::guest("host-probe");
    runtime()
        .load(
            "host-probe",
            "1",
            &wasm,
            Limits::default(),
            "",
            crate::secret(secret),
        )
        .unwrap()
}

#[test]
pub fn host_probe() {
    let mut a = tenant("secret-of-tenant-a");
    let mut b = tenant("secret-of-tenant-b");
    let p = json!({"op": "pseudonymize", "domain": "email", "value": "ann@example.com"});
    let a1 = ask(&mut a, p.clone());
    let a2 = ask(&mut a, p.clone());
    let b1 = ask(&mut b, p.clone());
    assert_eq!(a1, a2, "same tenant, same input: same pseudonym");
    assert_ne!(a1, b1, "two tenants' secrets give different pseudonyms");
    assert_eq!(a1.len(), 32);
    assert_eq!(
        a1,
        pseudonymize(b"secret-of-tenant-a", "email", "ann@example.com")
    );
    let other_domain = ask(
        &mut a,
        json!({"op": "pseudonymize", "domain": "phone", "value": "ann@example.com"}),
    );
    assert_ne!(a1, other_domain);
}

#[test]
fn the_sandbox_offers_no_environment_files_or_network() {
    // Even a secret in the host's environment is out of reach.
    let mut h = load("host-probe", "");
    assert_eq!(
        ask(&mut h, json!({"op": "snoop"})),
        "env=0 args=0 root=false cwd=false environ=false net=false"
    );
}

#[test]
fn state_commits_on_success_and_rolls_back_on_failure() {
    let mut h = load("host-probe", "");
    let get = |h: &mut LoadedHandler| ask(h, json!({"op": "get", "key": "k"}));
    assert_eq!(get(&mut h), "<none>");
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "k", "value": "v1"})),
        "ok"
    );
    assert_eq!(get(&mut h), "v1");

    let err = h.invoke(&json_msg(
        "p",
        json!({"op": "set-then-panic", "key": "k", "value": "v2"}),
    ));
    assert!(matches!(err, Err(InvokeError::Trap { .. })), "{err:?}");
    assert_eq!(
        get(&mut h),
        "v1",
        "a trapped call's write is rolled back; state outlives the instance"
    );

    let err = h.invoke(&json_msg(
        "p",
        json!({"op": "set-then-error", "key": "k", "value": "v3"}),
    ));
    assert!(matches!(err, Err(InvokeError::Handler { .. })), "{err:?}");
    assert_eq!(
        get(&mut h),
        "v1",
        "a handler-error's write is rolled back too"
    );
    assert_eq!(h.state().get("k").map(Vec::as_slice), Some(&b"v1"[..]));

    assert_eq!(ask(&mut h, json!({"op": "delete", "key": "k"})), "ok");
    assert_eq!(get(&mut h), "<none>");
}

#[test]
fn state_limits_are_values_the_guest_sees() {
    let limits = Limits {
        state_value_bytes_max: 4,
        state_bytes_max: 10,
        ..Limits::default()
    };
    let mut h = load_with(runtime(), "host-probe", "", limits);
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "k", "value": "12345"})),
        "value-too-large"
    );
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "a", "value": "1234"})),
        "ok"
    );
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "b", "value": "1234"})),
        "ok"
    );
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "c", "value": "1234"})),
        "quota-exceeded"
    );
    // Overwriting an entry frees its old bytes first.
    assert_eq!(
        ask(&mut h, json!({"op": "set", "key": "b", "value": "12"})),
        "ok"
    );
}

#[test]
fn counters_logs_and_clock() {
    let mut h = load("host-probe", "");
    ask(&mut h, json!({"op": "count", "name": "seen"}));
    ask(&mut h, json!({"op": "count", "name": "seen"}));
    assert_eq!(h.counters().get("seen"), Some(&2));
    for _ in 0..20 {
        assert_eq!(ask(&mut h, json!({"op": "log"})), "ok");
    }
    let now: i64 = ask(&mut h, json!({"op": "clock"})).parse().unwrap();
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((host_now - now).abs() < 5_000);
}

#[test]
fn instances_are_reused_and_recycled() {
    let calls = |h: &mut LoadedHandler| ask(h, json!({"op": "calls"}));
    let mut h = load("host-probe", "");
    assert_eq!(calls(&mut h), "1");
    assert_eq!(calls(&mut h), "2", "one instance serves many messages");
    let limits = Limits {
        calls_per_instance_max: 2,
        ..Limits::default()
    };
    let mut h = load_with(runtime(), "host-probe", "", limits);
    assert_eq!(calls(&mut h), "1");
    assert_eq!(calls(&mut h), "2");
    assert_eq!(calls(&mut h), "1", "recycled after calls_per_instance_max");
}

#[test]
fn init_errors_fail_the_load() {
    let wasm = crate::guests::guest("host-probe");
    let err = runtime()
        .load(
            "host-probe",
            "1",
            &wasm,
            Limits::default(),
            "fail",
            crate::secret("s"),
        )
        .err()
        .unwrap();
    assert!(err.to_string().contains("init refused"), "{err}");
}
