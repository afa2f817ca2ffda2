//! The well-behaved examples do what their docs say: `filter` keeps and
//! drops, `router` routes, `redact-json` blanks or pseudonymises; the batch
//! entry point gives the same answers as single calls.

use crate::{json_msg, load, payload_json, secret};
use serde_json::json;
use sluice_wasm::{InvokeError, LoadError, Message, pseudonymize};

/// The guest's own test (named after it for `foreach_guest!`).
#[test]
pub fn filter() {
    let mut h = load(
        "filter",
        r#"{"field": "/level", "op": "eq", "value": "error"}"#,
    );
    let keep = json_msg("logs", json!({"level": "error", "msg": "disk"}));
    let out = h.invoke(&keep).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].topic, None,
        "a kept message goes to the default topic"
    );
    assert_eq!(out[0].message, keep);
    assert!(
        h.invoke(&json_msg("logs", json!({"level": "info"})))
            .unwrap()
            .is_empty()
    );
    assert!(h.invoke(&json_msg("logs", json!({}))).unwrap().is_empty());
}

#[test]
fn filter_numeric_predicate() {
    let mut h = load(
        "filter",
        r#"{"field": "/amount", "op": "gt", "value": 100}"#,
    );
    assert_eq!(
        h.invoke(&json_msg("t", json!({"amount": 150.5})))
            .unwrap()
            .len(),
        1
    );
    assert!(
        h.invoke(&json_msg("t", json!({"amount": 99})))
            .unwrap()
            .is_empty()
    );
    assert!(
        h.invoke(&json_msg("t", json!({"amount": "lots"})))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn filter_reports_bad_json_and_stays_alive() {
    let mut h = load("filter", r#"{"field": "/level", "op": "exists"}"#);
    let err = h
        .invoke(&Message::new("logs", b"not json".to_vec()))
        .unwrap_err();
    assert!(
        matches!(&err, InvokeError::Handler { code, .. } if code == "bad_json"),
        "{err:?}"
    );
    assert!(
        err.reason().starts_with("handler_error: bad_json: "),
        "{}",
        err.reason()
    );
    assert!(!err.discarded_instance());
    assert!(h.has_live_instance());
    assert_eq!(
        h.invoke(&json_msg("logs", json!({"level": 1})))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.stats().instances_started,
        1,
        "a handler-error keeps the instance"
    );
}

#[test]
fn filter_bad_config_fails_the_load() {
    let rt = crate::runtime();
    let wasm = crate::guests::guest("filter");
    let err = rt
        .load(
            "filter",
            "1",
            &wasm,
            Default::default(),
            r#"{"field": "level", "op": "eq"}"#,
            secret("s"),
        )
        .err()
        .expect("a field that is not a JSON pointer is refused");
    assert!(
        matches!(&err, LoadError::Instance(InvokeError::Init(m)) if m.contains("JSON pointer")),
        "{err:?}"
    );
}

#[test]
fn redact_json_bad_config_fails_the_load() {
    let rt = crate::runtime();
    let wasm = crate::guests::guest("redact-json");
    for (config, reason) in [
        (r#"{"fields": ["user.email"]}"#, "JSON pointer"),
        (r#"{"fields": [""]}"#, "must not be empty"),
        (r#"{"fields": "/a"}"#, "invalid type"),
    ] {
        let err = rt
            .load(
                "redact-json",
                "1",
                &wasm,
                Default::default(),
                config,
                secret("s"),
            )
            .err()
            .unwrap_or_else(|| panic!("{config} is refused"));
        assert!(
            matches!(&err, LoadError::Instance(InvokeError::Init(m)) if m.contains(reason)),
            "{config}: {err:?}"
        );
    }
}

#[test]
pub fn router() {
    let mut h = load(
        "router",
        r#"{"field": "/region", "routes": {"eu": "orders.europe"}, "template": "orders.{value}"}"#,
    );
    let route = |h: &mut sluice_wasm::LoadedHandler, v: serde_json::Value| {
        let out = h.invoke(&json_msg("orders", v)).unwrap();
        assert_eq!(out.len(), 1);
        out[0].topic.clone()
    };
    assert_eq!(
        route(&mut h, json!({"region": "eu"})).as_deref(),
        Some("orders.europe")
    );
    assert_eq!(
        route(&mut h, json!({"region": "us"})).as_deref(),
        Some("orders.us")
    );
    assert_eq!(
        route(&mut h, json!({"region": "a/b"})),
        None,
        "no topic injection"
    );
    assert_eq!(route(&mut h, json!({"other": 1})), None);
    assert_eq!(h.counters().get("routed"), Some(&2));
    assert_eq!(h.counters().get("unrouted"), Some(&2));
}

#[test]
pub fn redact_json() {
    // JSON pointers as RFC 6901 has them: `~1` is `/`, `~0` is `~`, a
    // number indexes an array but `01` does not.
    let mut h = load(
        "redact-json",
        r#"{"fields": ["/user/email", "/card", "/missing", "/a~1b", "/m~0n",
                       "/items/1/sku", "/items/01", "/amount/x"]}"#,
    );
    let msg = json_msg(
        "payments",
        json!({"user": {"email": "ann@example.com", "id": 7}, "card": 4111111111111111u64,
               "amount": 12, "a/b": "slash", "m~n": "tilde", "a": {"b": "kept"},
               "items": [{"sku": "A"}, {"sku": "B"}], "01": "kept"}),
    );
    let out = h.invoke(&msg).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        payload_json(&out[0].message),
        json!({"user": {"email": "", "id": 7}, "card": null, "amount": 12,
               "a/b": "", "m~n": "", "a": {"b": "kept"},
               "items": [{"sku": "A"}, {"sku": ""}], "01": "kept"})
    );
    assert_eq!(out[0].message.topic, "payments");
    assert_eq!(
        out[0].message.content_type.as_deref(),
        Some("application/json")
    );
}

#[test]
fn redact_json_pseudonymises_with_the_tenant_secret() {
    let mut h = load(
        "redact-json",
        r#"{"fields": ["/email"], "pseudonymize": true}"#,
    );
    let out = h
        .invoke(&json_msg("t", json!({"email": "ann@example.com"})))
        .unwrap();
    let expected = pseudonymize(b"tenant-a", "/email", "ann@example.com");
    assert_eq!(payload_json(&out[0].message), json!({"email": expected}));
}

#[test]
fn batch_gives_the_same_answers_as_single_calls() {
    let config = r#"{"fields": ["/secret"]}"#;
    let msgs: Vec<Message> = vec![
        json_msg("t", json!({"secret": "a", "n": 1})),
        Message::new("t", b"not json".to_vec()),
        json_msg("t", json!({"n": 3})),
    ];
    let mut single = load("redact-json", config);
    let expected: Vec<_> = msgs.iter().map(|m| single.invoke(m)).collect();
    let mut batched = load("redact-json", config);
    let got = batched.invoke_batch(&msgs).unwrap();
    assert_eq!(got, expected);
    assert!(matches!(got[1], Err(InvokeError::Handler { .. })));
    assert_eq!(batched.stats().calls, 1);
    assert_eq!(batched.stats().messages, 3);
}

/// The benchmark's yardstick hands every message back whole, to the
/// default topic, singly and in a batch: what it costs is the boundary's.
#[test]
pub fn passthrough() {
    let mut h = load("passthrough", "");
    let mut m = Message::new("any.topic", b"\x00\xffnot json".to_vec());
    m.key = Some(b"k".to_vec());
    m.headers = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    m.content_type = Some("application/octet-stream".into());
    m.timestamp_ms = 1_700_000_000_001;
    let out = h.invoke(&m).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, None);
    assert_eq!(out[0].message, m);
    let batch = h.invoke_batch(&[m.clone(), Message::new("t", "")]).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].as_ref().unwrap()[0].message, m);
    assert_eq!(batch[1].as_ref().unwrap()[0].message, Message::new("t", ""));
}
