//! The ready-made `anonymise` handler through the real runtime: its policy
//! applied inside the sandbox with pseudonyms from the host's secret, the
//! audit header, its fuel per message, and a bad policy failing `init`.

use crate::{json_msg, load, payload_json, runtime, secret};
use serde_json::json;
use sluice_wasm::{Limits, Message};

#[path = "../../../anon/corpus/generate.rs"]
mod generate;

/// Every record of the labelled corpus, ~100 B and ~1 KiB, as text and as
/// JSON, goes through the handler within the default limits (fuel on).
/// Work the handler does once — compiling a numbering plan's patterns the
/// first time a phone number needs them — must fit in one call's budget:
/// a call that runs out traps, the trap discards the instance, and the
/// work is lost with it, so every record needing it would be dead-lettered.
#[test]
fn the_whole_corpus_fits_the_default_limits() {
    drop(load("anonymise", "{}")); // builds and compiles the component
    let started = std::time::Instant::now();
    let mut h = load("anonymise", "{}");
    // A new instance and its `init` (numbering plans included), as after a trap.
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let budget = Limits::default().fuel_per_call;
    let (mut most, mut calls) = (0u64, 0u32);
    for size in [100usize, 1024] {
        let mut corpus = generate::Gen::new(size as u64 + 11);
        for i in 0..400 {
            let text = corpus.record(size).text;
            let mut m = if i % 2 == 0 {
                Message::new("t", text.into_bytes())
            } else {
                json_msg("t", json!({"id": i, "note": text}))
            };
            m.timestamp_ms = 1_700_000_000_000;
            let before = h.stats().fuel_consumed;
            h.invoke(&m).unwrap_or_else(|e| {
                panic!("record {i} of ~{size} B: {e} (most fuel so far {most} of {budget})")
            });
            most = most.max(h.stats().fuel_consumed - before);
            calls += 1;
        }
    }
    eprintln!(
        "anonymise: loaded in {load_ms:.0} ms; {calls} corpus records, at most {most} fuel for one, of {budget}"
    );
}

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

/// A vault the test can look into, standing in for the broker's.
#[derive(Default)]
struct MemoryVault {
    entries: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

impl sluice_wasm::TokenVault for MemoryVault {
    fn remember(
        &self,
        token: &str,
        domain: &str,
        value: &str,
    ) -> Result<(), sluice_wasm::VaultError> {
        self.entries
            .lock()
            .unwrap()
            .insert(token.into(), (domain.into(), value.into()));
        Ok(())
    }
}

#[test]
pub fn tokenize_goes_to_the_hosts_vault_and_is_refused_without_one() {
    let policy = json!({"rules": [{"path": "$.email", "op": "tokenize"}]}).to_string();
    let vault = std::sync::Arc::new(MemoryVault::default());
    let keys = sluice_wasm::TenantKeys::with_vault(secret("tenant-a"), vault.clone());
    let wasm = crate::guests::guest("anonymise");
    let mut h = runtime()
        .load(
            "anonymise",
            "1",
            &wasm,
            Limits::default(),
            &policy,
            keys.clone(),
        )
        .unwrap();
    let msg = json_msg("t", json!({"email": "ann@example.com"}));
    let first = payload_json(&h.invoke(&msg).unwrap()[0].message);
    let token = first["email"].as_str().unwrap().to_owned();
    assert_eq!(token, keys.token_of("EMAIL", "ann@example.com"));
    assert_eq!(
        vault.entries.lock().unwrap()[&token],
        ("EMAIL".to_owned(), "ann@example.com".to_owned()),
        "the vault knows what the token stands for"
    );
    // Stable, and neither the value nor its pseudonym.
    let again = payload_json(&h.invoke(&msg).unwrap()[0].message);
    assert_eq!(again["email"], token.as_str());
    assert_ne!(
        &token[4..],
        sluice_wasm::pseudonymize(&secret("tenant-a"), "EMAIL", "ann@example.com")
    );

    // A tenant with another secret gets another token.
    let other = sluice_wasm::TenantKeys::with_vault(secret("tenant-b"), vault.clone());
    let mut hb = runtime()
        .load("anonymise", "1", &wasm, Limits::default(), &policy, other)
        .unwrap();
    let b = payload_json(&hb.invoke(&msg).unwrap()[0].message);
    assert_ne!(b["email"], token.as_str());

    // No vault: the message fails (and would be dead-lettered), nothing leaks.
    let mut bare = runtime()
        .load(
            "anonymise",
            "1",
            &wasm,
            Limits::default(),
            &policy,
            secret("t"),
        )
        .unwrap();
    let e = bare.invoke(&msg).unwrap_err();
    assert_eq!(
        e.reason(),
        "handler_error: tokenize_refused: no vault: this node does not issue tokens to this handler",
        "{e}"
    );

    // A value over token_value_bytes_max is refused the same way.
    let limits = Limits {
        token_value_bytes_max: 16,
        ..Limits::default()
    };
    let mut small = runtime()
        .load("anonymise", "1", &wasm, limits, &policy, keys)
        .unwrap();
    let e = small.invoke(&msg).unwrap_err();
    assert!(e.reason().contains("token_value_bytes_max"), "{e}");
}
