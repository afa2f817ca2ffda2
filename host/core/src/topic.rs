//! MQTT-style topic names and topic filters, shared by streams (their subject
//! filters), the HTTP API and, later, MQTT subscriptions. The rules are the
//! MQTT 5.0 ones (§4.7), so a filter means the same thing whichever protocol
//! a message arrived by.

use std::fmt;

/// MQTT caps topics at 65,535 bytes (a two-byte length prefix).
pub const TOPIC_BYTES_MAX: usize = 65_535;
/// Levels a topic or filter may have. MQTT sets no limit, but every walk over
/// levels must be bounded (a filter of 65,535 slashes is 65,536 levels);
/// Mosquitto also refuses deep topics.
pub const TOPIC_LEVELS_MAX: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic is {0} bytes long; the limit is {TOPIC_BYTES_MAX}")]
    TooLong(usize),
    #[error("topic contains a NUL character")]
    Nul,
    #[error("topic has more than {TOPIC_LEVELS_MAX} levels")]
    TooManyLevels,
    #[error("topic name {0:?} contains a wildcard ('+' or '#'); wildcards belong in filters")]
    WildcardInName(String),
    #[error("filter {0:?}: '#' must be the last level and stand alone in it")]
    BadMultiLevelWildcard(String),
    #[error("filter {0:?}: '+' must stand alone in its level")]
    BadSingleLevelWildcard(String),
}

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > TOPIC_BYTES_MAX {
        return Err(TopicError::TooLong(s.len()));
    }
    if s.contains('\0') {
        return Err(TopicError::Nul);
    }
    if s.bytes().filter(|b| *b == b'/').count() >= TOPIC_LEVELS_MAX {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// A concrete topic a message is published to, such as `site-a/line-2/temp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    pub fn new(s: &str) -> Result<Self, TopicError> {
        check_common(s)?;
        if s.contains(['+', '#']) {
            return Err(TopicError::WildcardInName(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Topics beginning with `$` (such as `$SYS/…`) are the broker's own: wildcards
    /// at the first level do not match them (MQTT 5.0 §4.7.2).
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }

    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pattern over topics with `+` (exactly one level) and `#` (any number of
/// trailing levels, including none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    pub fn new(s: &str) -> Result<Self, TopicError> {
        check_common(s)?;
        let mut levels = s.split('/').peekable();
        while let Some(level) = levels.next() {
            if level.contains('#') && (level != "#" || levels.peek().is_some()) {
                return Err(TopicError::BadMultiLevelWildcard(s.to_owned()));
            }
            if level.contains('+') && level != "+" {
                return Err(TopicError::BadSingleLevelWildcard(s.to_owned()));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `topic` matches this filter, with the spec's `$`-topic rule.
    pub fn matches(&self, topic: &TopicName) -> bool {
        let mut filter = self.0.split('/');
        let mut levels = topic.levels();
        if topic.is_system() && matches!(self.0.as_bytes().first(), Some(b'+' | b'#')) {
            return false;
        }
        loop {
            match (filter.next(), levels.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(l)) if f == l => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(filter: &str, topic: &str) -> bool {
        TopicFilter::new(filter)
            .unwrap()
            .matches(&TopicName::new(topic).unwrap())
    }

    #[test]
    fn wildcards_follow_the_spec() {
        assert!(check("sensors/#", "sensors"));
        assert!(check("sensors/#", "sensors/a/b"));
        assert!(check("sensors/+/temp", "sensors/a/temp"));
        assert!(!check("sensors/+/temp", "sensors/a/b/temp"));
        assert!(check("+/+", "/finance"));
        assert!(check("/+", "/finance"));
        assert!(!check("+", "/finance"));
        assert!(check("#", "a/b/c"));
        assert!(check("a/b", "a/b"));
        assert!(!check("a/b", "a/b/c"));
        assert!(!check("a/b/c", "a/b"));
        assert!(check("a/+", "a/"));
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        assert!(!check("#", "$SYS/uptime"));
        assert!(!check("+/uptime", "$SYS/uptime"));
        assert!(check("$SYS/#", "$SYS/uptime"));
    }

    #[test]
    fn invalid_filters_and_names_are_rejected() {
        for bad in ["", "a/#/b", "a#", "a/b+", "+a", "a\0b"] {
            assert!(TopicFilter::new(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a/+", "a/#", "a\0"] {
            assert!(TopicName::new(bad).is_err(), "{bad:?}");
        }
        assert!(TopicName::new(&"a".repeat(TOPIC_BYTES_MAX + 1)).is_err());
        assert!(
            TopicFilter::new(&"/".repeat(65_535)).is_err(),
            "deep filters are refused"
        );
        assert!(TopicName::new(&"a/".repeat(TOPIC_LEVELS_MAX - 1)).is_ok());
        assert!(TopicName::new(&"a/".repeat(TOPIC_LEVELS_MAX)).is_err());
    }
}
