//! `panic`: a hostile test guest that panics on every message except `ok`.
//! It exists to prove that a panic becomes `trap: …` with the panic message
//! and a guest backtrace, and that the instance is replaced.

use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler};

struct Panicker;

impl Handler for Panicker {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Panicker)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        if message.payload == b"ok" {
            return Ok(vec![Output::default_topic(message)]);
        }
        panic!("hostile handler panicked on purpose");
    }
}

export_handler!(Panicker);
