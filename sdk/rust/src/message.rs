//! Conveniences on the generated `Message`, `Output` and `HandlerError`
//! records, so handlers read like ordinary Rust instead of field plumbing:
//! JSON in and out, header look-up, output constructors.

use crate::{HandlerError, Message, Output};
use serde::Serialize;
use serde::de::DeserializeOwned;

impl Message {
    /// A message with this topic and payload and nothing else.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Message {
            topic: topic.into(),
            key: None,
            headers: Vec::new(),
            content_type: None,
            payload: payload.into(),
            timestamp_ms: 0,
        }
    }

    /// The payload parsed as JSON into `T`; a parse failure is a
    /// `bad_json` handler error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_slice(&self.payload).map_err(HandlerError::bad_json)
    }

    /// Replaces the payload with `value` serialised as JSON and sets the
    /// content type to `application/json`.
    pub fn set_json<T: Serialize>(&mut self, value: &T) -> Result<(), HandlerError> {
        self.payload =
            serde_json::to_vec(value).map_err(|e| HandlerError::new("serialize", e.to_string()))?;
        self.content_type = Some("application/json".to_owned());
        Ok(())
    }

    /// The payload as UTF-8 text.
    pub fn text(&self) -> Result<&str, HandlerError> {
        std::str::from_utf8(&self.payload).map_err(|e| HandlerError::new("bad_utf8", e.to_string()))
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Output {
    /// Sends `message` to the pipeline's default output topic.
    pub fn default_topic(message: Message) -> Self {
        Output {
            topic: None,
            message,
        }
    }

    /// Sends `message` to `topic`.
    pub fn to(topic: impl Into<String>, message: Message) -> Self {
        Output {
            topic: Some(topic.into()),
            message,
        }
    }
}

impl HandlerError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_json(e: impl std::fmt::Display) -> Self {
        HandlerError::new("bad_json", e.to_string())
    }
}
