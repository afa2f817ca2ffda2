//! `sluice-core` is the vocabulary every other Sluice crate shares: tenant and
//! stream names, MQTT-style topics and filters, the message envelope stored in
//! the log, and the human units (`10GiB`, `7d`) used by the config file and
//! the HTTP API. It does no I/O and knows nothing about tokio, sockets, the
//! on-disk log format or WebAssembly.

pub mod envelope;
pub mod names;
pub mod topic;
pub mod trie;
pub mod units;

pub use envelope::{EnvelopeError, Message, MqttProperties};
pub use names::{GroupName, NameError, StreamName, TenantId};
pub use topic::{TopicError, TopicFilter, TopicName};
pub use trie::FilterTrie;
pub use units::{UnitError, parse_bytes, parse_duration_ms};
