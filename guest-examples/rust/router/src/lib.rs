//! `router`: sends each JSON message to a topic chosen by one of its fields.
//! It exists to show fan-out by content, the other half of what pipelines
//! are for besides filtering.
//!
//! Config: `{"field": "/region", "routes": {"eu": "orders.eu"},
//! "template": "orders.{value}"}`. A value listed in `routes` goes to that
//! topic; otherwise, with a `template`, to the template with `{value}`
//! replaced (only for values made of `[A-Za-z0-9_-]`, so a payload cannot
//! inject topic levels); otherwise, or when the field is missing, to the
//! pipeline's default topic. Counts routed messages in `routed` and
//! `unrouted`.

use serde::Deserialize;
use serde_json::Value;
use sluice_handler_sdk::host;
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, parse_config};
use std::collections::HashMap;

#[derive(Deserialize)]
struct Router {
    field: String,
    #[serde(default)]
    routes: HashMap<String, String>,
    #[serde(default)]
    template: Option<String>,
}

impl Router {
    fn topic_for(&self, value: &Value) -> Option<String> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        if let Some(t) = self.routes.get(&text) {
            return Some(t.clone());
        }
        let safe = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        match &self.template {
            Some(t) if safe => Some(t.replace("{value}", &text)),
            _ => None,
        }
    }
}

impl Handler for Router {
    fn init(config: &str) -> Result<Self, String> {
        parse_config(config)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        let doc: Value = message.json()?;
        let topic = doc.pointer(&self.field).and_then(|v| self.topic_for(v));
        host::counter_add(
            if topic.is_some() {
                "routed"
            } else {
                "unrouted"
            },
            1,
        );
        Ok(vec![Output { topic, message }])
    }
}

export_handler!(Router);
