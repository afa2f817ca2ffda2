//! The message and output types of the public API: plain Rust structs, so
//! the broker depends on neither wasmtime nor the generated bindings. They
//! mirror `message` and `output` in `wit/handler.wit`; conversions to and
//! from the generated types live here too.

use crate::bindings::sluice::handler::types as wit;

/// One message handed to a handler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub payload: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// One message a handler asks to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Target topic; `None` means the pipeline's default output topic.
    pub topic: Option<String>,
    /// The message; its `topic` field is what the guest set and is not
    /// where it goes (`topic` above decides).
    pub message: Message,
}

impl Message {
    /// A message with this topic and payload and nothing else.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            ..Message::default()
        }
    }

    /// Bytes this message adds to `Limits::output_bytes_max`.
    pub(crate) fn size_bytes(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.topic.len()
            + self.key.as_ref().map_or(0, Vec::len)
            + headers
            + self.content_type.as_ref().map_or(0, String::len)
            + self.payload.len()) as u64
    }
}

impl Output {
    pub(crate) fn size_bytes(&self) -> u64 {
        self.topic.as_ref().map_or(0, |t| t.len() as u64) + self.message.size_bytes()
    }
}

impl Message {
    /// This message as the guest's parameter, borrowing every field: the
    /// only copy is the one lowering makes into the guest's memory.
    /// `headers` needs a list of borrowed pairs, built into `scratch` (no
    /// allocation when there are none).
    pub(crate) fn as_param<'a>(
        &'a self,
        scratch: &'a mut Vec<(&'a str, &'a str)>,
    ) -> wit::MessageParam<'a> {
        scratch.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        wit::MessageParam {
            topic: &self.topic,
            key: self.key.as_deref(),
            headers: scratch,
            content_type: self.content_type.as_deref(),
            payload: &self.payload,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

impl From<wit::MessageResult> for Message {
    fn from(m: wit::MessageResult) -> Self {
        Message {
            topic: m.topic,
            key: m.key,
            headers: m.headers,
            content_type: m.content_type,
            payload: m.payload,
            timestamp_ms: m.timestamp_ms,
        }
    }
}

impl From<wit::Output> for Output {
    fn from(o: wit::Output) -> Self {
        Output {
            topic: o.topic,
            message: o.message.into(),
        }
    }
}
