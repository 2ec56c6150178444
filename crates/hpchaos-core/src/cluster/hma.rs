//! HyperPod's Health Monitoring Agent's own record of each detection: on
//! Slurm clusters HMA writes every detection as a JSON line to CloudWatch
//! Logs, log group `/aws/sagemaker/Clusters/<name>/<id>`, stream
//! `SagemakerHealthMonitoringAgent/<group>/<instance-id>`, with its own
//! `ts`; HyperPod sends no EventBridge event for it (docs/HYPERPOD.md,
//! "Since 2025"). This file owns the names, the reading
//! (`FilterLogEvents` through aws-sdk-cloudwatchlogs, with the SageMaker
//! client's credentials and endpoint) and the decoding of a record.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The prefix of HMA's log streams.
pub const STREAM_PREFIX: &str = "SagemakerHealthMonitoringAgent";

/// The log group of a cluster's logs: `/aws/sagemaker/Clusters/<name>/<id>`,
/// `<id>` the last part of the cluster's ARN
/// (`arn:aws:sagemaker:REGION:ACCOUNT:cluster/<id>`).
pub fn log_group(cluster_name: &str, cluster_arn: &str) -> String {
    let id = cluster_arn.rsplit('/').next().unwrap_or(cluster_arn);
    format!("/aws/sagemaker/Clusters/{cluster_name}/{id}")
}

/// HMA's stream of one instance: `SagemakerHealthMonitoringAgent/<group>/<instance-id>`.
pub fn stream(group: &str, instance_id: &str) -> String {
    format!("{STREAM_PREFIX}/{group}/{instance_id}")
}

/// One CloudWatch Logs event of a target's HMA stream, as read: the
/// message as HMA wrote it (decoded by [`decode`]). Kept in recordings
/// (`observe/recording.rs`) with these names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEvent {
    /// The Slurm node the stream is of.
    pub node: String,
    pub stream: String,
    /// CloudWatch's `eventId` (unique in the group), when given.
    #[serde(default)]
    pub event_id: Option<String>,
    /// CloudWatch's `timestamp` (milliseconds since the epoch), as a time.
    pub timestamp: Option<DateTime<Utc>>,
    pub message: String,
}

/// A detection as HMA recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// HMA's own `ts`: when it decided (whole seconds, as HMA writes it).
    pub ts: DateTime<Utc>,
    /// `msg`, trimmed: `DCGM Policy Violation found`.
    pub msg: String,
    /// `condition: `: `XID Error`, ...
    pub condition: Option<String>,
    /// `data: `, as compact JSON: `{"ErrNum":79}`.
    pub data: Option<String>,
}

impl Detection {
    /// In words: `XID Error {"ErrNum":79}: DCGM Policy Violation found`.
    pub fn words(&self) -> String {
        let mut out = String::new();
        if let Some(condition) = &self.condition {
            out.push_str(condition);
        }
        if let Some(data) = &self.data {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(data);
        }
        if !self.msg.is_empty() {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&self.msg);
        }
        out
    }
}

/// A member of HMA's record by its name, whatever trailing `": "` HMA
/// wrote after it (`"condition: "`, `"data: "`, as HyperPod writes them;
/// `"condition"` too).
fn member<'a>(record: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    record
        .iter()
        .find(|(key, _)| key.trim_end_matches([' ', ':']) == name)
        .map(|(_, value)| value)
}

/// A detection from one HMA log line: a JSON object with a
/// `HealthMonitoringAgentDetectionEvent` member and a `ts` (RFC 3339).
/// `None` for anything else HMA writes (its own info lines), or a line
/// that is not JSON.
pub fn decode(message: &str) -> Option<Detection> {
    let value: Value = serde_json::from_str(message.trim()).ok()?;
    let record = value.as_object()?;
    member(record, "HealthMonitoringAgentDetectionEvent")?;
    let ts = member(record, "ts")?.as_str()?;
    let ts = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    Some(Detection {
        ts,
        msg: member(record, "msg").map(text).unwrap_or_default(),
        condition: member(record, "condition").map(text),
        data: member(record, "data").map(text),
    })
}

/// Why HMA's record could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("CloudWatch Logs {operation} on log group {group}: {detail}")]
pub struct LogsError {
    pub operation: &'static str,
    pub group: String,
    pub detail: String,
    /// The service's code when it answered (`AccessDeniedException`,
    /// `ResourceNotFoundException`, `ThrottlingException`, ...).
    pub code: Option<String>,
}

impl LogsError {
    /// Reading again will not help: no permission on the log group, no
    /// such group, keys refused. The run says so once and times detect
    /// from Slurm.
    pub fn lasting(&self) -> bool {
        self.code.as_deref().is_some_and(|c| {
            matches!(
                c,
                "AccessDeniedException"
                    | "ResourceNotFoundException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
            )
        })
    }
}

/// A cluster's HMA log group, read through CloudWatch Logs.
#[derive(Clone)]
pub struct HmaLog {
    client: aws_sdk_cloudwatchlogs::Client,
    pub group: String,
    /// Requests sent (each page counts).
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HmaLog {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, group: String) -> HmaLog {
        HmaLog {
            client,
            group,
            calls: Default::default(),
        }
    }

    /// Requests sent so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The events of `streams` (`(node, stream)`) since `since`
    /// (CloudWatch's `startTime`, milliseconds), every page:
    /// `FilterLogEvents` with at most 100 stream names per request (the
    /// API's limit). A stream that does not exist yet is no error
    /// (FilterLogEvents searches only those that do).
    pub async fn events(
        &self,
        streams: &[(String, String)],
        since: DateTime<Utc>,
    ) -> Result<Vec<LogEvent>, LogsError> {
        let mut events = Vec::new();
        for chunk in streams.chunks(100) {
            let names: Vec<String> = chunk.iter().map(|(_, s)| s.clone()).collect();
            let mut token: Option<String> = None;
            loop {
                self.calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let page = self
                    .client
                    .filter_log_events()
                    .log_group_name(&self.group)
                    .set_log_stream_names(Some(names.clone()))
                    .start_time(since.timestamp_millis())
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|err| {
                        let (code, detail) = crate::cluster::sagemaker::sdk_error(&err);
                        LogsError {
                            operation: "FilterLogEvents",
                            group: self.group.clone(),
                            detail,
                            code,
                        }
                    })?;
                for event in page.events() {
                    let stream = event.log_stream_name().unwrap_or_default();
                    let Some((node, _)) = chunk.iter().find(|(_, s)| s == stream) else {
                        continue;
                    };
                    events.push(LogEvent {
                        node: node.clone(),
                        stream: stream.to_owned(),
                        event_id: event.event_id().map(str::to_owned),
                        timestamp: event.timestamp().and_then(DateTime::from_timestamp_millis),
                        message: event.message().unwrap_or_default().to_owned(),
                    });
                }
                // The last page has no token (or repeats the one sent).
                match page.next_token() {
                    Some(next) if token.as_deref() != Some(next) => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HyperPod's record, as docs/HYPERPOD.md quotes it: keys with a
    /// trailing colon and space.
    const RECORD: &str = r#"{"level":"info","ts":"2026-07-20T22:53:17Z","msg":"DCGM Policy Violation found ","condition: ":"XID Error","data: ":{"ErrNum":79},"HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#;

    #[test]
    fn hmas_record_is_read_as_hyperpod_writes_it() {
        let found = decode(RECORD).unwrap();
        assert_eq!(found.ts.to_rfc3339(), "2026-07-20T22:53:17+00:00");
        assert_eq!(found.condition.as_deref(), Some("XID Error"));
        assert_eq!(found.data.as_deref(), Some(r#"{"ErrNum":79}"#));
        assert_eq!(
            found.words(),
            r#"XID Error {"ErrNum":79}: DCGM Policy Violation found"#
        );
    }

    #[test]
    fn other_spellings_and_other_lines() {
        // Keys without the odd suffix, fractional seconds, an offset.
        let plain = r#"{"ts":"2026-07-20T22:53:17.250+02:00","msg":"Kernel log Xid","condition":"XID Error","data":"48","HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#;
        let found = decode(plain).unwrap();
        assert_eq!(
            found
                .ts
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-07-20T20:53:17.250Z"
        );
        assert_eq!(found.data.as_deref(), Some("48"));
        // HMA's own info lines, a line that is not JSON, a record without
        // a time: no detection.
        for other in [
            r#"{"level":"info","ts":"2026-07-20T22:53:17Z","msg":"Health Monitoring Agent started"}"#,
            "DCGM Policy Violation found",
            r#"{"msg":"x","HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#,
            r#"{"ts":"yesterday","HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#,
        ] {
            assert_eq!(decode(other), None, "{other}");
        }
    }

    #[test]
    fn names_are_hyperpods() {
        assert_eq!(
            log_group(
                "ml-cluster",
                "arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh"
            ),
            "/aws/sagemaker/Clusters/ml-cluster/abcd1234efgh"
        );
        assert_eq!(
            stream("worker-group-1", "i-0123456789abcdef0"),
            "SagemakerHealthMonitoringAgent/worker-group-1/i-0123456789abcdef0"
        );
    }

    #[test]
    fn only_lasting_refusals_end_the_reading() {
        let error = |code: Option<&str>| LogsError {
            operation: "FilterLogEvents",
            group: "g".into(),
            detail: String::new(),
            code: code.map(str::to_owned),
        };
        assert!(error(Some("AccessDeniedException")).lasting());
        assert!(error(Some("ResourceNotFoundException")).lasting());
        assert!(!error(Some("ThrottlingException")).lasting());
        assert!(!error(None).lasting());
    }
}
