//! `infinite-loop`: a hostile test guest whose `handle` never returns. It
//! exists to prove that fuel and the epoch deadline stop a runaway handler
//! and that the node keeps serving afterwards.

use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler};

struct Spin;

impl Handler for Spin {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Spin)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        if message.payload == b"ok" {
            // Lets tests show that the same handler serves a good message
            // right after a bad one.
            return Ok(vec![Output::default_topic(message)]);
        }
        let mut n: u64 = 0;
        loop {
            // black_box keeps the loop from being optimised into a trap.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_handler!(Spin);
