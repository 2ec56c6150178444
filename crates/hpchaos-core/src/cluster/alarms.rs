//! CloudWatch alarms, read for stop conditions (`abort.when:
//! cloudwatch_alarm`), after AWS FIS's stop conditions: an alarm holds
//! while its `StateValue` is `ALARM`. Read with `DescribeAlarms` through
//! aws-sdk-cloudwatch, with the SageMaker client's credentials, region and
//! endpoint (`SageMakerApi::cloudwatch`). This file owns the request and
//! what its answer means; `monitoring/stop.rs` decides what to do.

use chrono::{DateTime, Utc};

/// An alarm as CloudWatch gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// CloudWatch's `StateReason`.
    pub reason: String,
    /// When it entered that state.
    pub since: Option<DateTime<Utc>>,
}

impl Alarm {
    /// Whether it holds as a stop condition: in `ALARM`.
    pub fn holds(&self) -> bool {
        self.state == "ALARM"
    }

    /// `ALARM since 08:01:02Z: Threshold Crossed: ...`.
    pub fn words(&self) -> String {
        let since = self
            .since
            .map(|t| format!(" since {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
            .unwrap_or_default();
        format!("{}{since}: {}", self.state, self.reason)
    }
}

/// Why an alarm could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// No alarm by that name (metric or composite) in the region.
    #[error("CloudWatch has no alarm named `{0}` in this region")]
    NotFound(String),
    /// The request failed: the API's code and message.
    #[error("DescribeAlarms: {0}")]
    Api(String),
}

/// Reads the alarm `name` (a metric or composite alarm).
pub async fn read(client: &aws_sdk_cloudwatch::Client, name: &str) -> Result<Alarm, AlarmError> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let answer = client
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| AlarmError::Api(super::sagemaker::sdk_error(&e).1))?;
    let time = |t: Option<&aws_sdk_cloudwatch::primitives::DateTime>| {
        t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
    };
    let metric = answer.metric_alarms().iter().map(|a| Alarm {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        state: a
            .state_value()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: a.state_reason().unwrap_or_default().to_owned(),
        since: time(a.state_updated_timestamp()),
    });
    let composite = answer.composite_alarms().iter().map(|a| Alarm {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        state: a
            .state_value()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        reason: a.state_reason().unwrap_or_default().to_owned(),
        since: time(a.state_updated_timestamp()),
    });
    metric
        .chain(composite)
        .find(|a| a.name == name)
        .ok_or_else(|| AlarmError::NotFound(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_alarm_holds_and_it_says_since_when() {
        let alarm = |state: &str| Alarm {
            name: "throughput".into(),
            state: state.into(),
            reason: "Threshold Crossed".into(),
            since: DateTime::from_timestamp(1_796_000_000, 0),
        };
        assert!(alarm("ALARM").holds());
        assert!(!alarm("OK").holds());
        assert!(!alarm("INSUFFICIENT_DATA").holds());
        assert_eq!(
            alarm("ALARM").words(),
            "ALARM since 2026-11-30T00:53:20Z: Threshold Crossed"
        );
    }
}
