//! The host's services, wrapped so handlers need not know the generated
//! module paths: logging, clock, counters, per-handler state,
//! pseudonyms and reversible tokens. Everything else (files, sockets, environment) is
//! unavailable by design.

use crate::bindings::sluice::handler as wit;

pub use wit::log::Level;
pub use wit::state::StateError;

/// Writes one structured log line into the node's log.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wit::log::log(level, message, &fields);
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    wit::clock::now_ms()
}

/// Adds `delta` to the handler's counter `name`.
pub fn counter_add(name: &str, delta: u64) {
    wit::metrics::counter_add(name, delta);
}

/// A stable pseudonym of `value` in `domain`, computed by the host with the
/// tenant's secret (which the handler never sees).
pub fn pseudonymize(domain: &str, value: &str) -> String {
    wit::pseudonym::pseudonymize(domain, value)
}

/// A reversible token (`tok_…`) of `value` in `domain`. The host computes
/// it with a key the handler never sees and remembers the value behind it,
/// which only an admin can look up. `Err` says why the host refused (no
/// vault, value too long, vault full); the handler should fail the message
/// rather than pass the value on.
pub fn tokenize(domain: &str, value: &str) -> Result<String, String> {
    wit::vault::tokenize(domain, value)
}

/// The handler's private key/value state, shared by all its instances.
pub mod state {
    use super::{StateError, wit};

    pub fn get(key: &str) -> Option<Vec<u8>> {
        wit::state::get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
        wit::state::set(key, value)
    }

    pub fn delete(key: &str) {
        wit::state::delete(key)
    }
}
