//! `filter`: keeps a JSON message when a predicate on one of its fields
//! holds and drops it otherwise. It exists as the smallest useful handler
//! and as the behavioural reference that every guest language reproduces.
//!
//! Config: `{"field": "/level", "op": "eq", "value": "error"}` where `field`
//! is a JSON pointer and `op` is one of `eq`, `ne`, `exists`, `missing`,
//! `gt`, `lt` (numbers). Non-JSON payloads are a `bad_json` handler error.
//! Numbers compare by value as 64-bit floats (`1 == 1.0`), as they do in
//! the JavaScript, Python and C versions (guest-examples/{js,python,c}).
//! The predicate is in `predicate.rs`, shared with the native benchmark.

mod predicate;

use predicate::Filter;
use serde_json::Value;
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, parse_config};

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
