//! The predicate of `filter`, free of any Wasm or SDK type, so the
//! `sluice-wasm` benchmark compiles the very same code natively and
//! compares it with the component in each guest language.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Exists,
    Missing,
    Gt,
    Lt,
}

#[derive(Deserialize)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    #[serde(default)]
    pub value: Value,
}

impl Filter {
    pub fn keeps(&self, doc: &Value) -> bool {
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
