//! Property tests of `Policy::apply`, the part of the anonymiser that
//! decodes untrusted payloads: whatever comes in, it answers without
//! panicking; JSON in is valid JSON out, with the document's structure kept
//! where the policy only scans; text stays text; and an email address in
//! any string field, among any neighbours, does not come out.

use proptest::prelude::*;
use serde_json::Value;
use sluice_anon::Policy;

/// Deterministic stand-in for the host's HMAC pseudonymizer.
fn fake(domain: &str, value: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in domain.bytes().chain([0]).chain(value.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Entity-shaped fragments, decoys and words the generated text is made of.
const PIECES: &[&str] = &[
    "4111 1111 1111 1111",
    "4111111111111112",
    "+44 20 7946 0958",
    "(202) 555-0143",
    "030 1234567",
    "192.168.0.1",
    "v1.2.3.4",
    "2001:db8::8a2e:370:7334",
    "aa:bb:cc:dd:ee:ff",
    "2024-03-12",
    "12 March 1990",
    "2024-03-12T10:00:00Z",
    "DE89 3704 0044 0532 0130 00",
    "AB 12 34 56 C",
    "123-45-6789",
    "51.5074, -0.1278",
    "https://x.io/a?b=1",
    "550e8400-e29b-41d4-a716-446655440000",
    "born",
    "phone",
    "card",
    "ssn",
    "the",
    "1,299.00",
    "é",
    "日本",
    "\"",
    "\\",
    "\n",
];

/// Addresses the last property looks for in the output.
const EMAILS: &[&str] = &[
    "ann@example.com",
    "bob.lee+tag@mail.example.co.uk",
    "x_y@sub.domain.org",
];

/// Entities with a word's boundaries on both sides: whatever their
/// neighbours, each is found.
const ENTITIES: &[&str] = &[
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "AB 12 34 56 C",
    "2001:db8::8a2e:370:7334",
    "aa:bb:cc:dd:ee:ff",
    "192.168.0.1",
    "https://x.io/a?b=1",
];

/// The policies every property runs under: defaults, each scan operator,
/// and rules by path that change values, drop fields and keep others.
const POLICIES: &[&str] = &[
    "{}",
    r#"{"scan": {"default": {"op": "redact"}}}"#,
    r#"{"scan": {"default": {"op": "mask", "keep_last": 4}}}"#,
    r#"{"scan": {"default": {"op": "pseudonymize", "format_preserving": true}}}"#,
    r#"{"scan": {"default": {"op": "replace"}, "operators": {"DATE": {"op": "generalize", "to": "year"}, "IPV4": {"op": "generalize"}}}}"#,
    r#"{"rules": [{"path": "$.email", "op": "pseudonymize"}, {"path": "$.location", "op": "generalize", "decimals": 1}, {"path": "$.card", "op": "mask", "keep_last": 4}, {"path": "$.ssn", "op": "drop"}, {"path": "$.age", "op": "generalize", "band": 10}, {"path": "$.items[*].id", "op": "keep"}, {"path": "$.user.phone", "op": "redact"}]}"#,
];

/// Policies that only scan: they may change string values (and numbers
/// that are entities) but no key, no array length, no boolean or null.
const SCAN_ONLY: usize = 5;

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => prop::sample::select(EMAILS).prop_map(str::to_owned),
        2 => "[ -~]{0,10}",
        1 => "\\PC{0,4}",
    ];
    let glue = prop::sample::select(&[" ", "", ", ", ": ", "-", "/", ". ", "\t"][..]);
    prop::collection::vec((glue, piece), 0..6).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(g, p)| [g.to_owned(), p])
            .collect()
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "email", "phone", "dob", "ip", "location", "lat", "lon", "note", "id", "card",
                "ssn", "age", "items", "user", "",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Phone numbers, order numbers and timestamps stored as numbers.
        (1_000_000u64..100_000_000_000_000).prop_map(Value::from),
        (-180.0f64..180.0).prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// `v` with its strings and numbers erased: keys, lengths, booleans and
/// nulls are what a scan-only policy must leave as they were.
fn shape(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Number(_) => Value::from("·"),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

/// [`POLICIES`], parsed once for every case.
static PARSED: std::sync::LazyLock<Vec<Policy>> = std::sync::LazyLock::new(|| {
    POLICIES
        .iter()
        .map(|p| Policy::from_json(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_in_is_json_out(doc in document()) {
        let input = doc.to_string();
        for (i, policy) in PARSED.iter().enumerate() {
            let out = policy
                .apply(input.as_bytes(), Some("application/json"), &mut fake)
                .map_err(|e| TestCaseError::fail(format!("{}: {e:?}", POLICIES[i])))?;
            let back: Value = serde_json::from_slice(&out.payload).map_err(|e| {
                TestCaseError::fail(format!(
                    "{}: not JSON ({e}): {}",
                    POLICIES[i],
                    String::from_utf8_lossy(&out.payload)
                ))
            })?;
            if i < SCAN_ONLY {
                prop_assert_eq!(shape(&back), shape(&doc), "{}", POLICIES[i]);
            }
        }
    }

    #[test]
    fn any_bytes_get_an_answer_not_a_panic(
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            text().prop_map(String::into_bytes),
            document().prop_map(|d| {
                // A document cut short or with a byte changed.
                let mut b = d.to_string().into_bytes();
                let n = b.len();
                if n > 1 { b[n / 2] ^= 0x21; }
                b
            }),
        ],
        content_type in prop::sample::select(&[None, Some("application/json"), Some("text/plain")][..]),
    ) {
        for policy in PARSED.iter() {
            if let Ok(out) = policy.apply(&payload, content_type, &mut fake) {
                // Whatever is passed on is still text, or still JSON.
                let text = std::str::from_utf8(&out.payload);
                prop_assert!(text.is_ok(), "not UTF-8 out");
                // JSON is what is declared so, or what begins with '{' or
                // '[' and parses; anything else is scanned as text.
                let first = payload.iter().find(|b| !b.is_ascii_whitespace());
                let json = content_type == Some("application/json")
                    || (matches!(first, Some(b'{' | b'['))
                        && serde_json::from_slice::<Value>(&payload).is_ok());
                if json {
                    prop_assert!(serde_json::from_slice::<Value>(&out.payload).is_ok());
                }
            }
        }
    }

    #[test]
    fn no_email_comes_out(doc in document(), email in prop::sample::select(EMAILS)) {
        // The address in a field of its own, and in free text among others.
        let doc = serde_json::json!({"a": doc, "b": email, "c": format!("write to {email} today")});
        let input = doc.to_string();
        for (i, policy) in PARSED.iter().enumerate().take(SCAN_ONLY) {
            let out = policy
                .apply(input.as_bytes(), Some("application/json"), &mut fake)
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let out = String::from_utf8(out.payload).unwrap();
            for e in EMAILS {
                prop_assert!(!out.contains(e), "{} kept {}: {}", POLICIES[i], e, out);
            }
        }
    }

    #[test]
    fn no_entity_comes_out_between_spaces(
        left in text(),
        entity in prop::sample::select(ENTITIES),
        right in text(),
    ) {
        // Only the occurrence put between spaces is looked for.
        prop_assume!(!left.contains(entity) && !right.contains(entity));
        let doc = serde_json::json!({"c": format!("{left} {entity} {right}")});
        // The defaults (`{}`).
        let out = PARSED[0]
            .apply(doc.to_string().as_bytes(), Some("application/json"), &mut fake)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let out = String::from_utf8(out.payload).unwrap();
        prop_assert!(!out.contains(entity), "{} kept: {}", entity, out);
    }
}
