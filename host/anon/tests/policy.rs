//! The policy end to end on JSON and text: rules by path, scanning of what
//! the rules leave, valid JSON out, audit counts, refusals with a reason.

use serde_json::{Value, json};
use sluice_anon::Policy;

fn fake(domain: &str, value: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in domain.bytes().chain([0]).chain(value.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}{:016x}", h.rotate_left(17) ^ 0x9e3779b97f4a7c15)
}

fn apply(policy: &str, doc: &Value) -> (Value, Value) {
    let p = Policy::from_json(policy).unwrap();
    let out = p
        .apply(
            doc.to_string().as_bytes(),
            Some("application/json"),
            &mut fake,
        )
        .unwrap();
    (
        serde_json::from_slice(&out.payload).expect("valid JSON out"),
        serde_json::to_value(&out.audit).unwrap(),
    )
}

#[test]
fn rules_then_scanning_of_the_rest() {
    let policy = r#"{
        "rules": [
            {"path": "$.user.email", "op": "pseudonymize", "format_preserving": true},
            {"path": "$.location", "op": "generalize", "decimals": 2},
            {"path": "$.card", "op": "mask", "keep_last": 4},
            {"path": "$.ssn", "op": "drop"},
            {"path": "$.age", "op": "generalize", "band": 10},
            {"path": "$.items[*].sku", "op": "keep"}
        ],
        "scan": {"default": {"op": "replace"}, "operators": {"EMAIL": {"op": "pseudonymize"}}}
    }"#;
    let doc = json!({
        "user": {"email": "ann@example.com", "name": "Ann"},
        "location": {"lat": 51.507222, "lon": -0.1275},
        "card": "4111 1111 1111 1111",
        "ssn": "123-45-6789",
        "age": 37,
        "note": "reach me at ann@example.com or +44 20 7946 0958, order 2024000123",
        "phone": 14155550123u64,
        "items": [{"sku": "4111111111111111"}, {"sku": "x", "memo": "ip 10.1.2.3"}],
        "created": "2024-03-15T10:00:00Z",
        "id": "550e8400-e29b-41d4-a716-446655440000",
    });
    let (out, audit) = apply(policy, &doc);
    let email = out["user"]["email"].as_str().unwrap();
    assert!(
        email.ends_with(".invalid") && email.contains('@'),
        "{email}"
    );
    assert_eq!(out["user"]["name"], "Ann", "names are not pattern entities");
    assert_eq!(out["location"], json!({"lat": 51.51, "lon": -0.13}));
    assert_eq!(out["card"], "**** **** **** 1111");
    assert!(out.get("ssn").is_none(), "dropped");
    assert_eq!(out["age"], "30-39");
    let note = out["note"].as_str().unwrap();
    assert!(
        !note.contains("ann@example.com") && note.contains("<PHONE>"),
        "{note}"
    );
    assert!(
        note.contains("order 2024000123"),
        "an order number stays: {note}"
    );
    assert_eq!(
        out["phone"], "<PHONE>",
        "a phone stored as a number becomes a string"
    );
    assert_eq!(out["items"][0]["sku"], "4111111111111111", "kept by rule");
    assert_eq!(out["items"][1]["memo"], "ip <IPV4>");
    assert_eq!(out["created"], "2024-03-15T10:00:00Z", "timestamps stay");
    assert_eq!(out["id"], doc["id"], "UUIDs stay");
    assert_eq!(
        audit,
        json!({"EMAIL": 2, "PHONE": 2, "CREDIT_CARD": 1, "US_SSN": 1, "IPV4": 1, "FIELD": 2}),
        "{out}"
    );
}

#[test]
fn the_same_value_gets_the_same_pseudonym_in_any_field() {
    let policy = r#"{"scan": {"default": {"op": "pseudonymize"}}}"#;
    let (out, _) = apply(
        policy,
        &json!({"a": "x ann@example.com", "b": ["ann@example.com"]}),
    );
    let a = out["a"]
        .as_str()
        .unwrap()
        .strip_prefix("x ")
        .unwrap()
        .to_owned();
    assert_eq!(out["b"][0], a);
}

#[test]
fn text_is_scanned_whole_and_binary_is_refused() {
    let p = Policy::from_json("{}").unwrap();
    let out = p
        .apply(
            b"card 4111-1111-1111-1111, thanks",
            Some("text/plain"),
            &mut fake,
        )
        .unwrap();
    assert_eq!(out.payload, b"card <CREDIT_CARD>, thanks");
    assert!(p.apply(&[0xff, 0xfe, 0x00], None, &mut fake).is_err());
    assert!(
        p.apply(b"{not json", Some("application/json"), &mut fake)
            .is_err()
    );
    // Text that merely starts with a brace is text.
    let out = p.apply(b"{ call +1 202 555 0143", None, &mut fake).unwrap();
    assert_eq!(out.payload, b"{ call <PHONE>");
}

#[test]
fn bad_policies_say_why() {
    for (policy, needle) in [
        (
            r#"{"rules": [{"path": "user.email", "op": "redact"}]}"#,
            "must start with '$'",
        ),
        (
            r#"{"rules": [{"path": "$.a", "op": "explode"}]}"#,
            "explode",
        ),
        (
            r#"{"rules": [{"path": "$.a", "op": "redact", "entity": "SHOE_SIZE"}]}"#,
            "SHOE_SIZE",
        ),
        (r#"{"scan": {"entities": ["EMAIL", "NOPE"]}}"#, "NOPE"),
        (r#"{"scan": {"phone_regions": ["XX"]}}"#, "XX"),
        (
            r#"{"scan": {"operators": {"EMAIL": {"op": "drop"}}}}"#,
            "drop",
        ),
        (r#"{"rulez": []}"#, "rulez"),
        (
            r#"{"rules": [{"path": "$[oops", "op": "redact"}]}"#,
            "unclosed",
        ),
    ] {
        let e = Policy::from_json(policy).unwrap_err();
        assert!(e.0.contains(needle), "{policy}: {e}");
    }
}

/// A vault the test can look into, standing in for the host's.
#[derive(Default)]
struct Vault {
    refuse: bool,
    remembered: std::collections::HashMap<String, String>,
}

impl sluice_anon::operator::Pseudonymizer for Vault {
    fn pseudonymize(&mut self, domain: &str, value: &str) -> String {
        fake(domain, value)
    }

    fn tokenize(&mut self, domain: &str, value: &str) -> Result<String, String> {
        if self.refuse {
            return Err("vault full".into());
        }
        let t = format!("tok_{}", fake(domain, value));
        self.remembered.insert(t.clone(), value.to_owned());
        Ok(t)
    }
}

#[test]
fn tokenize_goes_through_the_vault_and_a_refusal_fails_the_message() {
    let policy = Policy::from_json(
        r#"{"rules": [{"path": "$.email", "op": "tokenize"}],
            "scan": {"default": {"op": "tokenize"}}}"#,
    )
    .unwrap();
    let doc = json!({"email": "ann@example.com", "note": "call +44 20 7946 0958"});
    let mut vault = Vault::default();
    let out = policy
        .apply(doc.to_string().as_bytes(), None, &mut vault)
        .unwrap();
    let out: Value = serde_json::from_slice(&out.payload).unwrap();
    let token = out["email"].as_str().unwrap();
    assert!(token.starts_with("tok_"), "{out}");
    assert_eq!(vault.remembered[token], "ann@example.com");
    let note = out["note"].as_str().unwrap();
    assert!(!note.contains("7946"), "{note}");
    assert_eq!(
        vault.remembered.len(),
        2,
        "the phone in the note is a token too"
    );

    // Without a vault (the default), or with one that refuses, the message
    // fails: nothing half-protected comes out.
    for p in [
        &mut fake as &mut dyn sluice_anon::operator::Pseudonymizer,
        &mut Vault {
            refuse: true,
            ..Vault::default()
        },
    ] {
        let e = policy
            .apply(doc.to_string().as_bytes(), None, p)
            .unwrap_err();
        assert!(
            matches!(e, sluice_anon::policy::ApplyError::Tokenize(_)),
            "{e}"
        );
    }
}
