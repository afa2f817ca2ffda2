//! `huge-output`: a hostile test guest that answers with too much: many
//! outputs or one very large one. It exists to prove that `outputs_max` and
//! `output_bytes_max` hold (`output_limit`).
//!
//! Config: `{"outputs": 100000, "payload_bytes": 1}`; the default is one
//! output of 8 MiB.

use serde::Deserialize;
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, parse_config};

#[derive(Deserialize)]
struct Huge {
    #[serde(default = "one")]
    outputs: usize,
    #[serde(default = "eight_mib")]
    payload_bytes: usize,
}

fn one() -> usize {
    1
}

fn eight_mib() -> usize {
    8 << 20
}

impl Handler for Huge {
    fn init(config: &str) -> Result<Self, String> {
        parse_config(config)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        if message.payload == b"ok" {
            return Ok(vec![Output::default_topic(message)]);
        }
        let payload = vec![b'x'; self.payload_bytes];
        Ok((0..self.outputs)
            .map(|_| {
                Output::to(
                    "flood",
                    Message::new(message.topic.clone(), payload.clone()),
                )
            })
            .collect())
    }
}

export_handler!(Huge);
