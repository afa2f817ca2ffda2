//! The document shape of a pipeline: what `PUT /v1/pipelines/{name}` takes,
//! what `GET` shows, what the metadata store keeps and what a `[[pipelines]]`
//! table of the config file holds. Human units (`"100ms"`, `"64MiB"`) are
//! parsed here, once, into a checked [`PipelineSpec`].

use serde::{Deserialize, Serialize};
use sluice_core::names::validate_name;
use sluice_core::{StreamName, TopicName, parse_bytes, parse_duration_ms};

/// The longest pipeline name: it becomes part of its group's and its
/// dead-letter stream's names, which have a limit of their own.
pub const PIPELINE_NAME_BYTES_MAX: usize = 48;
/// Steps one pipeline may chain.
pub const STEPS_MAX: usize = 16;
/// Largest `batch_messages_max`: messages read, run and committed together.
pub const BATCH_MESSAGES_MAX: usize = 4096;
/// Most runner threads one pipeline may have (each holds its own handler
/// instances).
pub const RUNNERS_MAX: usize = 16;
/// Most retries a pipeline may ask for before dead-lettering.
pub const RETRIES_MAX: u32 = 20;
/// Largest step config, in bytes (it is handed to `init` of every instance).
pub const STEP_CONFIG_BYTES_MAX: usize = 64 << 10;

/// A pipeline as written by people. `source`, `steps` and `output` are required.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineDoc {
    /// Present in the config file and in metadata; taken from the path in the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The stream the pipeline reads, as a consumer group of its own.
    pub source: String,
    pub steps: Vec<StepDoc>,
    /// Topic of outputs whose handler named none: a template where
    /// `{topic}` is the input topic and `{0}`, `{1}`… its levels.
    pub output: String,
    /// Stream that receives what fails after its retries (default `{name}-dlq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Attempts after the first before a message is dead-lettered (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// First retry delay, doubled each retry with jitter (default `"10ms"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    /// Longest retry delay (default `"1s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff_max: Option<String>,
    /// Messages read, handled and committed as one unit: the bound on
    /// messages in flight (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_messages_max: Option<usize>,
    /// Runner threads, each with its own handler instances and its own share
    /// of the source's partitions (default 1; at most the source's
    /// partitions and `RUNNERS_MAX`). Order still holds per partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runners: Option<usize>,
    /// Dead-lettered messages in a row that open the circuit breaker (default 10; 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_failures: Option<u32>,
    /// How long an open breaker pauses the pipeline (default `"30s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_open: Option<String>,
}

/// One handler step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepDoc {
    /// A deployed handler's name.
    pub handler: String,
    /// Its version; the newest deployed one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Handed to the handler's `init`: a string as is, anything else as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<StepLimitsDoc>,
}

/// Per-step guest budgets; what is missing keeps the runtime's safe default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StepLimitsDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_per_call: Option<u64>,
    /// e.g. `"64MiB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes_max: Option<String>,
    /// Wall-clock budget of one call, e.g. `"100ms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_max: Option<u32>,
    /// e.g. `"4MiB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes_max: Option<String>,
    /// Fuel for starting an instance and its `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_fuel: Option<u64>,
    /// Wall-clock budget of starting an instance and its `init`, e.g. `"2s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_deadline: Option<String>,
}

/// A checked pipeline definition.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    pub name: String,
    pub source: StreamName,
    pub steps: Vec<StepSpec>,
    pub output: OutputTemplate,
    pub dead_letter: StreamName,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_ms_max: u64,
    pub batch_messages_max: usize,
    pub runners: usize,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    /// The document it came from, as shown by `GET` and kept in metadata.
    pub doc: PipelineDoc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub handler: String,
    pub version: Option<String>,
    /// What `init` receives.
    pub config: String,
    pub limits: sluice_wasm::Limits,
}

/// Why a pipeline definition was refused; shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PipelineSpecError(pub String);

fn err(msg: impl Into<String>) -> PipelineSpecError {
    PipelineSpecError(msg.into())
}

impl PipelineDoc {
    /// Checks the document and fills in defaults. `name` overrides the document's own.
    pub fn into_spec(mut self, name: Option<&str>) -> Result<PipelineSpec, PipelineSpecError> {
        if let Some(n) = name {
            self.name = Some(n.to_owned());
        }
        let name = self
            .name
            .clone()
            .ok_or_else(|| err("pipeline has no name"))?;
        validate_name("pipeline", &name).map_err(|e| err(e.to_string()))?;
        if name.len() > PIPELINE_NAME_BYTES_MAX {
            return Err(err(format!(
                "pipeline name is {} bytes long; the limit is {PIPELINE_NAME_BYTES_MAX}",
                name.len()
            )));
        }
        let source = StreamName::new(&self.source).map_err(|e| err(format!("`source`: {e}")))?;
        if self.steps.is_empty() {
            return Err(err("`steps` must list at least one handler"));
        }
        if self.steps.len() > STEPS_MAX {
            return Err(err(format!("at most {STEPS_MAX} steps")));
        }
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_spec().map_err(|e| err(format!("step {}: {e}", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        let output =
            OutputTemplate::parse(&self.output).map_err(|e| err(format!("`output`: {e}")))?;
        let dead_letter = match &self.dead_letter {
            Some(d) => StreamName::new(d).map_err(|e| err(format!("`dead_letter`: {e}")))?,
            None => StreamName::new(&format!("{name}-dlq"))
                .map_err(|e| err(format!("default dead-letter stream: {e}")))?,
        };
        if dead_letter == source {
            return Err(err("`dead_letter` must not be the source stream"));
        }
        let duration = |field: &str, v: &Option<String>, default: u64| match v {
            Some(s) => parse_duration_ms(s).map_err(|e| err(format!("`{field}`: {e}"))),
            None => Ok(default),
        };
        let retries = self.retries.unwrap_or(3);
        if retries > RETRIES_MAX {
            return Err(err(format!("`retries` must be at most {RETRIES_MAX}")));
        }
        let retry_backoff_ms = duration("retry_backoff", &self.retry_backoff, 10)?;
        let retry_backoff_ms_max = duration("retry_backoff_max", &self.retry_backoff_max, 1000)?;
        if retry_backoff_ms_max < retry_backoff_ms {
            return Err(err("`retry_backoff_max` is shorter than `retry_backoff`"));
        }
        let batch_messages_max = self.batch_messages_max.unwrap_or(64);
        if batch_messages_max == 0 || batch_messages_max > BATCH_MESSAGES_MAX {
            return Err(err(format!(
                "`batch_messages_max` must be between 1 and {BATCH_MESSAGES_MAX}"
            )));
        }
        let runners = self.runners.unwrap_or(1);
        if runners == 0 || runners > RUNNERS_MAX {
            return Err(err(format!(
                "`runners` must be between 1 and {RUNNERS_MAX}"
            )));
        }
        let breaker_open_ms = duration("breaker_open", &self.breaker_open, 30_000)?;
        Ok(PipelineSpec {
            name,
            source,
            steps,
            output,
            dead_letter,
            retries,
            retry_backoff_ms,
            retry_backoff_ms_max,
            batch_messages_max,
            runners,
            breaker_failures: self.breaker_failures.unwrap_or(10),
            breaker_open_ms,
            doc: self,
        })
    }
}

impl StepDoc {
    fn to_spec(&self) -> Result<StepSpec, String> {
        validate_name("handler", &self.handler).map_err(|e| e.to_string())?;
        if let Some(v) = &self.version {
            validate_version(v)?;
        }
        let config = match &self.config {
            None => "{}".to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        if config.len() > STEP_CONFIG_BYTES_MAX {
            return Err(format!("`config` is over {STEP_CONFIG_BYTES_MAX} bytes"));
        }
        let mut limits = sluice_wasm::Limits::default();
        if let Some(l) = &self.limits {
            let bytes =
                |field: &str, s: &str| parse_bytes(s).map_err(|e| format!("`limits.{field}`: {e}"));
            if let Some(f) = l.fuel_per_call {
                limits.fuel_per_call = f;
            }
            if let Some(m) = &l.memory_bytes_max {
                limits.memory_bytes_max = bytes("memory_bytes_max", m)?;
            }
            if let Some(d) = &l.deadline {
                limits.deadline_ms =
                    parse_duration_ms(d).map_err(|e| format!("`limits.deadline`: {e}"))?;
            }
            if let Some(n) = l.outputs_max {
                limits.outputs_max = n;
            }
            if let Some(b) = &l.output_bytes_max {
                limits.output_bytes_max = bytes("output_bytes_max", b)?;
            }
            if let Some(f) = l.init_fuel {
                limits.init_fuel = f;
            }
            if let Some(d) = &l.init_deadline {
                limits.init_deadline_ms =
                    parse_duration_ms(d).map_err(|e| format!("`limits.init_deadline`: {e}"))?;
            }
        }
        Ok(StepSpec {
            handler: self.handler.clone(),
            version: self.version.clone(),
            config,
            limits,
        })
    }
}

/// Handler versions are free-form but end up in file names and URLs.
pub fn validate_version(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "version {v:?} may contain only ASCII letters, digits and . - _ + (at most 64)"
        ))
    }
}

/// The default output topic: literal text with `{topic}` (the input topic)
/// and `{N}` (level N of the input topic, from 0) in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Topic,
    Level(usize),
}

impl OutputTemplate {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?
                + open;
            let field = &rest[open + 1..close];
            parts.push(match field {
                "topic" => Part::Topic,
                n => Part::Level(n.parse().map_err(|_| {
                    format!("unknown field {{{n}}} in {s:?}: use {{topic}} or a level number")
                })?),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let t = OutputTemplate { parts };
        // A template must give a valid topic for a plain input.
        let sample = TopicName::new("a/b/c/d/e/f/g/h").expect("literal");
        let out = t.render(&sample);
        TopicName::new(&out).map_err(|e| format!("{s:?} does not make a valid topic: {e}"))?;
        if out.starts_with('$') {
            return Err("output topics must not start with '$'".into());
        }
        Ok(t)
    }

    /// The output topic for an input topic (a missing level renders empty).
    pub fn render(&self, input: &TopicName) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Topic => out.push_str(input.as_str()),
                Part::Level(n) => out.push_str(input.as_str().split('/').nth(*n).unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Result<PipelineSpec, PipelineSpecError> {
        serde_json::from_str::<PipelineDoc>(json)
            .unwrap()
            .into_spec(Some("p"))
    }

    #[test]
    fn defaults_are_filled_in() {
        let s = doc(r#"{"source": "in", "steps": [{"handler": "redact-json", "config": {"fields": ["/a"]}}], "output": "clean/{topic}"}"#).unwrap();
        assert_eq!(s.dead_letter.as_str(), "p-dlq");
        assert_eq!(s.retries, 3);
        assert_eq!(s.batch_messages_max, 64);
        assert_eq!(s.runners, 1);
        assert_eq!(s.steps[0].config, r#"{"fields":["/a"]}"#);
        assert_eq!(s.steps[0].limits, sluice_wasm::Limits::default());
    }

    #[test]
    fn templates_render_topic_and_levels() {
        let t = OutputTemplate::parse("out/{1}/{topic}").unwrap();
        let topic = TopicName::new("site/a7/temp").unwrap();
        assert_eq!(t.render(&topic), "out/a7/site/a7/temp");
        assert!(OutputTemplate::parse("out/{nope}").is_err());
        assert!(OutputTemplate::parse("out/{1").is_err());
        assert!(OutputTemplate::parse("out/+").is_err());
        assert!(OutputTemplate::parse("$SYS/x").is_err());
    }

    #[test]
    fn bad_documents_say_why() {
        for (json, needle) in [
            (
                r#"{"source": "in", "steps": [], "output": "o"}"#,
                "at least one",
            ),
            (
                r#"{"source": "in/x", "steps": [{"handler": "h"}], "output": "o"}"#,
                "source",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h", "version": "../x"}], "output": "o"}"#,
                "version",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h", "limits": {"deadline": "soon"}}], "output": "o"}"#,
                "limits.deadline",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o/#"}"#,
                "output",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o", "dead_letter": "in"}"#,
                "dead_letter",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o", "batch_messages_max": 0}"#,
                "batch_messages_max",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o", "runners": 0}"#,
                "runners",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o", "runners": 17}"#,
                "runners",
            ),
            (
                r#"{"source": "in", "steps": [{"handler": "h"}], "output": "o", "retries": 99}"#,
                "retries",
            ),
        ] {
            let e = doc(json).unwrap_err();
            assert!(e.0.contains(needle), "{json}: {e}");
        }
    }
}
