//! The redaction logic of `redact-json`, free of any Wasm or SDK type. It
//! lives in its own file so the `sluice-wasm` benchmark can compile the very
//! same code natively and compare it with the component (issue 4 asks for
//! the ratio).

use serde_json::Value;

/// Computes a pseudonym for (`domain`, `value`); in the component this is
/// the host's `pseudonymize` import.
pub type Pseudonymize<'a> = &'a mut dyn FnMut(&str, &str) -> String;

/// A configured field: a JSON pointer (RFC 6901) split and unescaped once,
/// at `init`, rather than on every message. Unescaping per message
/// (`Value::pointer_mut`) was a tenth of the component's time: string
/// search without SIMD is slow in Wasm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The pointer as configured; the pseudonym domain.
    pub pointer: String,
    tokens: Vec<String>,
}

impl Field {
    /// Parses `pointer`, which must start with `/`: the empty pointer, the
    /// whole document, is not a field.
    pub fn parse(pointer: &str) -> Result<Field, String> {
        if pointer.is_empty() {
            return Err("a field must not be empty: the whole document is not a field".into());
        }
        let Some(rest) = pointer.strip_prefix('/') else {
            return Err(format!(
                "fields must be JSON pointers like /a/b, got {pointer:?}"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Ok(Field {
            pointer: pointer.to_owned(),
            tokens,
        })
    }

    /// The value this field points at in `doc`, if there is one.
    fn find<'v>(&self, doc: &'v mut Value) -> Option<&'v mut Value> {
        self.tokens.iter().try_fold(doc, |at, token| match at {
            Value::Object(map) => map.get_mut(token.as_str()),
            Value::Array(list) => array_index(token).and_then(|i| list.get_mut(i)),
            _ => None,
        })
    }
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// Blanks each of `fields`: strings become `""`, every other value becomes
/// `null`; with `pseudonymize`, string values are instead replaced by
/// `pseudonymize(pointer, value)`. Missing fields are skipped. Returns how
/// many fields were changed.
pub fn redact(
    doc: &mut Value,
    fields: &[Field],
    mut pseudonymize: Option<Pseudonymize<'_>>,
) -> usize {
    let mut changed = 0;
    for field in fields {
        let Some(slot) = field.find(doc) else {
            continue;
        };
        *slot = match (&*slot, pseudonymize.as_mut()) {
            (Value::String(s), Some(p)) => Value::String(p(&field.pointer, s)),
            (Value::String(_), None) => Value::String(String::new()),
            _ => Value::Null,
        };
        changed += 1;
    }
    changed
}
