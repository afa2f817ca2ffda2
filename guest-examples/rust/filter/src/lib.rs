//! `filter`: keeps a JSON message when a predicate on one of its fields
//! holds and drops it otherwise. It exists as the smallest useful handler
//! and as the behavioural reference that every guest language reproduces.
//!
//! Config: `{"field": "/level", "op": "eq", "value": "error"}` where `field`
//! is a JSON pointer and `op` is one of `eq`, `ne`, `exists`, `missing`,
//! `gt`, `lt` (numbers). Non-JSON payloads are a `bad_json` handler error.
//! Numbers compare by value as 64-bit floats (`1 == 1.0`), as they do in
//! the JavaScript, Python and C versions (guest-examples/{js,python,c}).

use serde::Deserialize;
use serde_json::Value;
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, parse_config};

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Eq,
    Ne,
    Exists,
    Missing,
    Gt,
    Lt,
}

#[derive(Deserialize)]
struct Filter {
    field: String,
    op: Op,
    #[serde(default)]
    value: Value,
}

impl Filter {
    fn keeps(&self, doc: &Value) -> bool {
        let found = doc.pointer(&self.field);
        match self.op {
            Op::Eq => found.is_some_and(|v| same(v, &self.value)),
            Op::Ne => !found.is_some_and(|v| same(v, &self.value)),
            Op::Exists => found.is_some(),
            Op::Missing => found.is_none(),
            Op::Gt => cmp(found, &self.value).is_some_and(|o| o.is_gt()),
            Op::Lt => cmp(found, &self.value).is_some_and(|o| o.is_lt()),
        }
    }
}

/// JSON equality with numbers by value: serde_json's own `==` tells the
/// integer 1 from the float 1.0, which JavaScript cannot.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn cmp(found: Option<&Value>, bound: &Value) -> Option<std::cmp::Ordering> {
    found?.as_f64()?.partial_cmp(&bound.as_f64()?)
}

impl Handler for Filter {
    fn init(config: &str) -> Result<Self, String> {
        let f: Filter = parse_config(config)?;
        if !f.field.is_empty() && !f.field.starts_with('/') {
            return Err(format!(
                "field must be a JSON pointer like /a/b, got {:?}",
                f.field
            ));
        }
        Ok(f)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        let doc: Value = message.json()?;
        Ok(if self.keeps(&doc) {
            vec![Output::default_topic(message)]
        } else {
            Vec::new()
        })
    }
}

export_handler!(Filter);
