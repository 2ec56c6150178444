//! Human durations (`90s`, `5m`, `1h30m`) as they appear in scenario and
//! profile files: parsing, printing and their JSON Schema; and the time
//! helpers every stage shares (a span between two instants, a span for
//! people, seconds as a chrono delta), so that none imports them from a
//! stage downstream of it. Owns nothing else.

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

/// A span for people: `7s`, `16.5s`, `1m 02s`, `1h 05m 00s`, or `-`.
pub fn show_duration(span: Option<Duration>) -> String {
    let Some(span) = span else {
        return "-".to_owned();
    };
    let millis = span.as_std().as_millis();
    let secs = millis / 1000;
    match secs {
        0..60 if millis % 1000 == 0 => format!("{secs}s"),
        0..60 => format!("{:.1}s", millis as f64 / 1000.0),
        60..3600 if secs % 60 == 0 => format!("{}m", secs / 60),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

/// The span from `from` to `to` as a [`Duration`], negatives (clock skew)
/// clamped to 0.
pub fn span(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> Duration {
    let delta = to - from;
    Duration(
        delta
            .max(chrono::TimeDelta::zero())
            .to_std()
            .unwrap_or_default(),
    )
}

/// Seconds (fractions to the millisecond) as a chrono delta.
pub fn secs(seconds: f64) -> chrono::TimeDelta {
    chrono::TimeDelta::milliseconds((seconds * 1000.0) as i64)
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

    #[test]
    fn durations_read_naturally() {
        let ms = |m| Some(Duration(std::time::Duration::from_millis(m)));
        assert_eq!(show_duration(None), "-");
        assert_eq!(show_duration(ms(7_000)), "7s");
        assert_eq!(show_duration(ms(16_500)), "16.5s");
        assert_eq!(show_duration(ms(60_000)), "1m");
        assert_eq!(show_duration(ms(62_500)), "1m 02s");
        assert_eq!(show_duration(ms(3_905_000)), "1h 05m 05s");
    }
}
