//! `filter`: keeps a JSON message when a predicate on one of its fields
//! holds and drops it otherwise. It exists as the smallest useful handler
//! and as the behavioural reference that every guest language reproduces.
//!
//! Config: `{"field": "/level", "op": "eq", "value": "error"}` where `field`
//! is a JSON pointer and `op` is one of `eq`, `ne`, `exists`, `missing`,
//! `gt`, `lt` (numbers). Non-JSON payloads are a `bad_json` handler error.

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
            Op::Eq => found == Some(&self.value),
            Op::Ne => found != Some(&self.value),
            Op::Exists => found.is_some(),
            Op::Missing => found.is_none(),
            Op::Gt => cmp(found, &self.value).is_some_and(|o| o.is_gt()),
            Op::Lt => cmp(found, &self.value).is_some_and(|o| o.is_lt()),
        }
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
