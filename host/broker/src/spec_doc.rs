//! The document shape of a stream definition: what `PUT /v1/streams/{name}`
//! takes, what `GET` shows, what the metadata store keeps, and what a
//! `[[streams]]` table in the config file holds. Human units (`"7d"`,
//! `"10GiB"`) are parsed here, once, into a checked [`StreamSpec`].

use serde::{Deserialize, Serialize};
use sluice_core::{StreamName, TopicFilter, parse_bytes, parse_duration_ms};

use crate::options::{FsyncPolicy, PARTITIONS_MAX, StreamSpec};

/// A stream definition as written by people. Only `subjects` is required.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDoc {
    /// Present in the config file and in metadata; taken from the path in the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionDoc>,
    /// `"always"` (default), `"never"`, or a duration such as `"50ms"` for interval syncing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_ids_max: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_messages_max: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<String>,
}

/// Why a stream definition was refused; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

/// The smallest segment we accept; smaller ones would mean a file per handful of messages.
pub const SEGMENT_BYTES_MIN: u64 = 4096;

impl StreamDoc {
    /// Checks the document and fills in defaults. `name` overrides the document's own.
    pub fn into_spec(self, name: Option<&str>) -> Result<StreamSpec, SpecError> {
        let name = name
            .map(str::to_owned)
            .or(self.name)
            .ok_or_else(|| err("stream has no name"))?;
        let name = StreamName::new(&name).map_err(|e| err(e.to_string()))?;
        if self.subjects.is_empty() {
            return Err(err("`subjects` must list at least one topic filter"));
        }
        let subjects = self
            .subjects
            .iter()
            .map(|s| TopicFilter::new(s).map_err(|e| err(format!("in `subjects`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut spec = StreamSpec::new(name, subjects);
        if let Some(p) = self.partitions {
            if p == 0 || p > PARTITIONS_MAX {
                return Err(err(format!(
                    "`partitions` must be between 1 and {PARTITIONS_MAX}, not {p}"
                )));
            }
            spec.partitions = p;
        }
        let bytes = |s: &str| parse_bytes(s).map_err(|e| err(e.to_string()));
        let duration = |s: &str| parse_duration_ms(s).map_err(|e| err(e.to_string()));
        if let Some(r) = self.retention {
            spec.retention_max_age_ms = r.max_age.as_deref().map(duration).transpose()?;
            spec.retention_max_bytes = r.max_bytes.as_deref().map(bytes).transpose()?;
        }
        if let Some(f) = self.fsync.as_deref() {
            spec.fsync = match f {
                "always" => FsyncPolicy::Always,
                "never" => FsyncPolicy::Never,
                other => match parse_duration_ms(other) {
                    Ok(ms) if ms > 0 => FsyncPolicy::IntervalMs(ms),
                    _ => {
                        return Err(err(format!(
                            "`fsync` must be \"always\", \"never\" or an interval such as \"50ms\", not {other:?}"
                        )));
                    }
                },
            };
        }
        if let Some(s) = self.segment_bytes.as_deref() {
            spec.segment_bytes_max = bytes(s)?;
            if spec.segment_bytes_max < SEGMENT_BYTES_MIN {
                return Err(err(format!(
                    "`segment_bytes` must be at least {SEGMENT_BYTES_MIN}"
                )));
            }
        }
        if let Some(s) = self.segment_age.as_deref() {
            spec.segment_age_ms_max = duration(s)?.max(1);
        }
        if let Some(s) = self.dedup_window.as_deref() {
            spec.dedup_window_ms = duration(s)?;
        }
        if let Some(n) = self.dedup_ids_max {
            spec.dedup_ids_max = n;
        }
        if let Some(n) = self.queue_messages_max {
            if n == 0 {
                return Err(err("`queue_messages_max` must be at least 1"));
            }
            spec.queue_messages_max = n;
        }
        Ok(spec)
    }

    /// The fully filled-in document for a spec, in canonical units (ms, bytes).
    pub fn from_spec(spec: &StreamSpec) -> Self {
        Self {
            name: Some(spec.name.to_string()),
            subjects: spec.subjects.iter().map(ToString::to_string).collect(),
            partitions: Some(spec.partitions),
            retention: Some(RetentionDoc {
                max_age: spec.retention_max_age_ms.map(|ms| format!("{ms}ms")),
                max_bytes: spec.retention_max_bytes.map(|b| b.to_string()),
            }),
            fsync: Some(match spec.fsync {
                FsyncPolicy::Always => "always".to_owned(),
                FsyncPolicy::Never => "never".to_owned(),
                FsyncPolicy::IntervalMs(ms) => format!("{ms}ms"),
            }),
            segment_bytes: Some(spec.segment_bytes_max.to_string()),
            segment_age: Some(format!("{}ms", spec.segment_age_ms_max)),
            dedup_window: Some(format!("{}ms", spec.dedup_window_ms)),
            dedup_ids_max: Some(spec.dedup_ids_max),
            queue_messages_max: Some(spec.queue_messages_max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Result<StreamSpec, SpecError> {
        serde_json::from_str::<StreamDoc>(json)
            .unwrap()
            .into_spec(Some("s"))
    }

    #[test]
    fn the_documented_example_parses() {
        let spec = doc(r#"{"subjects": ["sensors/#"], "partitions": 4, "retention": {"max_age": "7d", "max_bytes": "10GiB"}}"#).unwrap();
        assert_eq!(spec.partitions, 4);
        assert_eq!(spec.retention_max_age_ms, Some(7 * 86_400_000));
        assert_eq!(spec.retention_max_bytes, Some(10 << 30));
        assert_eq!(spec.fsync, FsyncPolicy::Always);
    }

    #[test]
    fn round_trips_through_the_document() {
        let spec = doc(r#"{"subjects": ["a/+", "b/#"], "fsync": "20ms", "segment_bytes": "1MiB"}"#)
            .unwrap();
        let again = StreamDoc::from_spec(&spec).into_spec(None).unwrap();
        assert_eq!(spec, again);
    }

    #[test]
    fn bad_documents_say_why() {
        for (json, needle) in [
            (r#"{"subjects": []}"#, "at least one"),
            (r#"{"subjects": ["a/#/b"]}"#, "'#'"),
            (r#"{"subjects": ["a"], "partitions": 0}"#, "partitions"),
            (
                r#"{"subjects": ["a"], "retention": {"max_age": "7 weeks"}}"#,
                "duration",
            ),
            (r#"{"subjects": ["a"], "fsync": "sometimes"}"#, "fsync"),
            (
                r#"{"subjects": ["a"], "segment_bytes": "10"}"#,
                "segment_bytes",
            ),
        ] {
            let e = doc(json).unwrap_err();
            assert!(e.0.contains(needle), "{json}: {e}");
        }
    }
}
