//! `redact-json`: blanks configured fields of a JSON message before it
//! leaves the pipeline, or replaces them with host-computed pseudonyms so
//! records stay joinable without carrying the personal data.
//!
//! Config: `{"fields": ["/user/email", "/card"], "pseudonymize": false}`
//! (JSON pointers). The logic is in `redact.rs`, shared with the native
//! benchmark in `host/wasm/benches`.

mod redact;

use serde::Deserialize;
use serde_json::Value;
use sluice_handler_sdk::host;
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, parse_config};

#[derive(Deserialize)]
struct Config {
    fields: Vec<String>,
    #[serde(default)]
    pseudonymize: bool,
}

struct RedactJson {
    fields: Vec<redact::Field>,
    pseudonymize: bool,
}

impl Handler for RedactJson {
    fn init(config: &str) -> Result<Self, String> {
        let c: Config = parse_config(config)?;
        let fields = c
            .fields
            .iter()
            .map(|f| redact::Field::parse(f))
            .collect::<Result<_, _>>()?;
        Ok(RedactJson {
            fields,
            pseudonymize: c.pseudonymize,
        })
    }

    fn handle(&mut self, mut message: Message) -> Result<Vec<Output>, HandlerError> {
        let mut doc: Value = message.json()?;
        let mut pseudo = |domain: &str, value: &str| host::pseudonymize(domain, value);
        let p: Option<redact::Pseudonymize<'_>> = if self.pseudonymize {
            Some(&mut pseudo)
        } else {
            None
        };
        if redact::redact(&mut doc, &self.fields, p) > 0 {
            message.set_json(&doc)?;
        }
        Ok(vec![Output::default_topic(message)])
    }
}

export_handler!(RedactJson);
