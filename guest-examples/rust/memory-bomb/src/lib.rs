//! `memory-bomb`: a hostile test guest that allocates and touches memory
//! until something stops it. It exists to prove that `memory_bytes_max`
//! holds and is reported as `memory_limit`, not as a generic trap.

use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler};

struct Bomb {
    hoard: Vec<Vec<u8>>,
}

impl Handler for Bomb {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Bomb { hoard: Vec::new() })
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        if message.payload == b"ok" {
            return Ok(vec![Output::default_topic(message)]);
        }
        loop {
            self.hoard.push(std::hint::black_box(vec![0xA5u8; 1 << 20]));
        }
    }
}

export_handler!(Bomb);
