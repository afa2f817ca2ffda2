//! The ready-made `anonymise` handler through the real runtime: its policy
//! applied inside the sandbox with pseudonyms from the host's secret, the
//! audit header, its fuel per message, and a bad policy failing `init`.

use crate::{json_msg, load, payload_json, runtime, secret};
use serde_json::json;
use sluice_wasm::Limits;

#[test]
pub fn anonymise() {
    let policy = json!({
        "rules": [{"path": "$.email", "op": "pseudonymize"}],
        "scan": {"default": {"op": "replace"}},
    });
    let mut h = load("anonymise", &policy.to_string());
    let msg = json_msg(
        "t",
        json!({"email": "ann@example.com", "note": "call +44 20 7946 0958"}),
    );
    let fuel_before = h.stats().fuel_consumed;
    let out = h.invoke(&msg).expect("anonymise");
    let fuel = h.stats().fuel_consumed - fuel_before;
    let v = payload_json(&out[0].message);
    assert_eq!(
        v["email"],
        sluice_wasm::pseudonymize(&secret("tenant-a"), "EMAIL", "ann@example.com")
    );
    assert_eq!(v["note"], "call <PHONE>");
    let audit = out[0]
        .message
        .headers
        .iter()
        .find(|(k, _)| k == "sluice-anon-audit")
        .unwrap();
    assert_eq!(audit.1, r#"{"EMAIL":1,"PHONE":1}"#);
    assert_eq!(h.counters()["PHONE"], 1);
    eprintln!("anonymise: {fuel} fuel for one ~60-byte JSON message");
    assert!(
        fuel < Limits::default().fuel_per_call / 10,
        "{fuel} fuel: far too much per message"
    );

    let err = runtime()
        .load(
            "anonymise",
            "1",
            &crate::guests::guest("anonymise"),
            Limits::default(),
            r#"{"rules": [{"path": "email", "op": "redact"}]}"#,
            secret("t"),
        )
        .err()
        .expect("a bad policy fails init");
    assert!(err.to_string().contains("must start with '$'"), "{err}");
}
