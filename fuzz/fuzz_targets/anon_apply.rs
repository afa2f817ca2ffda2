//! Arbitrary bytes into the anonymiser, as a payload (declared JSON, text,
//! or undeclared) and as a policy: it must never panic, and what it passes
//! on must still be UTF-8, and still JSON when it was taken for JSON. The property
//! tests in `host/anon/tests/properties.rs` check the same on generated
//! documents; this reaches the byte-level corners they do not.
#![no_main]

use std::sync::LazyLock;

static POLICY: LazyLock<sluice_anon::Policy> = LazyLock::new(|| {
    sluice_anon::Policy::from_json(
        r#"{"rules": [{"path": "$.email", "op": "pseudonymize", "format_preserving": true}, {"path": "$.a[*].b", "op": "generalize"}, {"path": "$.ssn", "op": "drop"}], "scan": {"default": {"op": "mask", "keep_last": 4}}}"#,
    )
    .expect("the fuzz policy parses")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pseudo = |_: &str, v: &str| format!("{:064x}", v.len());
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        if let Ok(out) = POLICY.apply(data, content_type, &mut pseudo) {
            assert!(std::str::from_utf8(&out.payload).is_ok());
            // JSON is what is declared so, or what begins with '{' or '['
            // and parses; anything else is scanned as text.
            let first = data.iter().find(|b| !b.is_ascii_whitespace());
            let json = content_type == Some("application/json")
                || (matches!(first, Some(b'{' | b'['))
                    && serde_json::from_slice::<serde_json::Value>(data).is_ok());
            if json {
                assert!(serde_json::from_slice::<serde_json::Value>(&out.payload).is_ok());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_anon::Policy::from_json(text);
    }
});
