//! Human durations (`90s`, `5m`, `1h30m`) as they appear in scenario and
//! profile files: parsing, printing and their JSON Schema. Owns nothing else.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name of the schema definition; the structural checker recognises it to
/// give duration-specific messages.
pub const SCHEMA_NAME: &str = "Duration";

/// Regex that editors use to flag bad durations; the checker itself parses
/// with [`Duration::from_str`], which is the authority.
const PATTERN: &str = r"^\s*([0-9]+\s*(ns|nsec|us|usec|ms|msec|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)\s*)+$";

/// A span of time written with units, such as `60s` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// The same span as a chrono duration, saturating at chrono's maximum.
    pub fn as_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.0).unwrap_or(chrono::TimeDelta::MAX)
    }
}

/// Why a duration string was refused, written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

impl DurationError {
    pub const HINT: &'static str = "write a number with a unit, like `90s`, `5m` or `1h30m`";
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|err| DurationError {
                input: text.to_owned(),
                reason: err.to_string(),
            })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed(SCHEMA_NAME)
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "A duration with units, such as `90s`, `5m` or `1h30m`.",
            "examples": ["60s", "5m", "1h30m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_units() {
        let parsed: Duration = "1h30m".parse().unwrap();
        assert_eq!(parsed.as_std().as_secs(), 5400);
        assert_eq!(parsed.to_string(), "1h 30m");
    }

    #[test]
    fn refuses_unknown_unit_with_its_input() {
        let err = "90x".parse::<Duration>().unwrap_err();
        assert_eq!(err.input, "90x");
        assert!(err.to_string().starts_with("`90x` is not a duration"));
    }

    #[test]
    fn pattern_agrees_with_parser_on_common_forms() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        for ok in ["60s", "5m", "1h30m", "2 min", "500ms", "1d"] {
            assert!(pattern.is_match(ok), "{ok}");
            assert!(ok.parse::<Duration>().is_ok(), "{ok}");
        }
        for bad in ["90x", "5", "m", ""] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }
}
