//! `passthrough`: hands every message back unchanged to the pipeline's
//! default topic. It does no work of its own, so what a call into it costs
//! is the host's overhead per message (lowering the message into the guest,
//! entering it, lifting the output back): the benchmark's yardstick.

use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler};

struct Passthrough;

impl Handler for Passthrough {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Passthrough)
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        Ok(vec![Output::default_topic(message)])
    }
}

export_handler!(Passthrough);
