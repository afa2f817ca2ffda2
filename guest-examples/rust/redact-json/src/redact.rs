//! The redaction logic of `redact-json`, free of any Wasm or SDK type. It
//! lives in its own file so the `sluice-wasm` benchmark can compile the very
//! same code natively and compare it with the component (issue 4 asks for
//! the ratio).

use serde_json::Value;

/// Computes a pseudonym for (`domain`, `value`); in the component this is
/// the host's `pseudonymize` import.
pub type Pseudonymize<'a> = &'a mut dyn FnMut(&str, &str) -> String;

/// Blanks each JSON pointer in `fields`: strings become `""`, every other
/// value becomes `null`; with `pseudonymize`, string values are instead
/// replaced by `pseudonymize(pointer, value)`. Missing fields are skipped.
/// Returns how many fields were changed.
pub fn redact(
    doc: &mut Value,
    fields: &[String],
    mut pseudonymize: Option<Pseudonymize<'_>>,
) -> usize {
    let mut changed = 0;
    for field in fields {
        let Some(slot) = doc.pointer_mut(field) else {
            continue;
        };
        *slot = match (&*slot, pseudonymize.as_mut()) {
            (Value::String(s), Some(p)) => Value::String(p(field, s)),
            (Value::String(_), None) => Value::String(String::new()),
            _ => Value::Null,
        };
        changed += 1;
    }
    changed
}
