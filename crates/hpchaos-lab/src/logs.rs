//! The lab's CloudWatch Logs: the records the lab's health agent writes
//! (HMA's, `hma.rs`), kept as JSON lines in `LAB/cloudwatch-logs.jsonl`,
//! and the two reads the harness makes of them, `FilterLogEvents` and
//! `GetLogEvents`, as CloudWatch Logs answers them (the `Logs_20140328`
//! JSON protocol, camelCase members, millisecond timestamps; shapes from
//! botocore's `logs/service-2.json`, `api_model.rs`). The cluster's log
//! group is `/aws/sagemaker/Clusters/<name>/<id>` and exists from the
//! start, as HyperPod creates it; a stream exists once written to.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub group: String,
    pub stream: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub event_id: String,
    pub message: String,
}

/// The cluster's log group, as HyperPod names it.
pub fn log_group(cluster_name: &str, cluster_arn: &str) -> String {
    let id = cluster_arn.rsplit('/').next().unwrap_or(cluster_arn);
    format!("/aws/sagemaker/Clusters/{cluster_name}/{id}")
}

/// HMA's stream of one instance.
pub fn hma_stream(group: &str, instance_id: &str) -> String {
    format!("SagemakerHealthMonitoringAgent/{group}/{instance_id}")
}

/// Appends one event written at `at` (its `timestamp`; ingested at once).
/// Errors: the file cannot be written.
pub fn append(
    path: &Path,
    group: &str,
    stream: &str,
    at: DateTime<Utc>,
    message: &str,
) -> std::io::Result<()> {
    let ms = at.timestamp_millis();
    let event = Stored {
        group: group.to_owned(),
        stream: stream.to_owned(),
        timestamp: ms,
        ingestion_time: ms,
        // 56 digits, as CloudWatch's event ids are: unique enough here.
        event_id: format!("{ms:020}{:036}", at.timestamp_subsec_nanos()),
        message: message.to_owned(),
    };
    let line = serde_json::to_string(&event).map_err(std::io::Error::other)? + "\n";
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

fn load(path: &Path) -> Vec<Stored> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A refusal: CloudWatch Logs' error type and message.
pub type Refusal = (&'static str, String);

/// The most events one answer holds (FilterLogEvents' default limit).
const PAGE: usize = 10_000;

/// Answers `operation` (input already checked against the model) from the
/// events at `path`, for the cluster whose group is `group`.
pub fn answer(operation: &str, input: &Value, path: &Path, group: &str) -> Result<Value, Refusal> {
    let asked = input["logGroupName"]
        .as_str()
        .or_else(|| input["logGroupIdentifier"].as_str());
    let Some(asked) = asked else {
        return Err((
            "InvalidParameterException",
            "Either logGroupName or logGroupIdentifier must be specified".to_owned(),
        ));
    };
    if asked != group {
        return Err((
            "ResourceNotFoundException",
            "The specified log group does not exist.".to_owned(),
        ));
    }
    let start = input["startTime"].as_i64().unwrap_or(i64::MIN);
    let end = input["endTime"].as_i64().unwrap_or(i64::MAX);
    let limit = input["limit"]
        .as_u64()
        .map_or(PAGE, |l| (l as usize).min(PAGE));
    let from: usize = input["nextToken"]
        .as_str()
        .and_then(|t| t.trim_start_matches(['f', 'b', '/']).parse().ok())
        .unwrap_or(0);
    let events: Vec<Stored> = load(path)
        .into_iter()
        .filter(|e| e.group == group && e.timestamp >= start && e.timestamp < end)
        .collect();
    match operation {
        "FilterLogEvents" => {
            let names: Option<Vec<&str>> = input["logStreamNames"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            let prefix = input["logStreamNamePrefix"].as_str();
            if names.is_some() && prefix.is_some() {
                return Err((
                    "InvalidParameterException",
                    "logStreamNames and logStreamNamePrefix are mutually exclusive".to_owned(),
                ));
            }
            let wanted = |stream: &str| {
                names.as_ref().is_none_or(|n| n.contains(&stream))
                    && prefix.is_none_or(|p| stream.starts_with(p))
            };
            let matching: Vec<&Stored> = events.iter().filter(|e| wanted(&e.stream)).collect();
            let page: Vec<Value> = matching
                .iter()
                .skip(from)
                .take(limit)
                .map(|e| {
                    json!({
                        "logStreamName": e.stream,
                        "timestamp": e.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion_time,
                        "eventId": e.event_id,
                    })
                })
                .collect();
            let mut streams: Vec<&str> = events
                .iter()
                .map(|e| e.stream.as_str())
                .filter(|s| wanted(s))
                .collect();
            streams.sort_unstable();
            streams.dedup();
            let mut out = json!({
                "events": page,
                "searchedLogStreams": streams
                    .iter()
                    .map(|s| json!({"logStreamName": s, "searchedCompletely": true}))
                    .collect::<Vec<_>>(),
            });
            if from + limit < matching.len() {
                out["nextToken"] = json!(format!("f/{}", from + limit));
            }
            Ok(out)
        }
        "GetLogEvents" => {
            let stream = input["logStreamName"].as_str().unwrap_or_default();
            if !load(path)
                .iter()
                .any(|e| e.group == group && e.stream == stream)
            {
                return Err((
                    "ResourceNotFoundException",
                    "The specified log stream does not exist.".to_owned(),
                ));
            }
            let of_stream: Vec<&Stored> = events.iter().filter(|e| e.stream == stream).collect();
            let page: Vec<Value> = of_stream
                .iter()
                .skip(from)
                .take(limit)
                .map(|e| {
                    json!({
                        "timestamp": e.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion_time,
                    })
                })
                .collect();
            let next = (from + page.len()).max(from);
            Ok(json!({
                "events": page,
                "nextForwardToken": format!("f/{next:056}"),
                "nextBackwardToken": format!("b/{from:056}"),
            }))
        }
        other => Err((
            "UnknownOperationException",
            format!("operation {other} is not served by the lab"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "/aws/sagemaker/Clusters/lab/abc123";

    fn store(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("cloudwatch-logs.jsonl");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        append(
            &path,
            GROUP,
            &hma_stream("worker", "i-1"),
            at("2026-07-20T22:53:17.5Z"),
            "one",
        )
        .unwrap();
        append(
            &path,
            GROUP,
            &hma_stream("worker", "i-2"),
            at("2026-07-20T22:54:00Z"),
            "two",
        )
        .unwrap();
        path
    }

    #[test]
    fn filter_reads_the_streams_asked_since_the_time_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        let input = json!({
            "logGroupName": GROUP,
            "logStreamNames": [hma_stream("worker", "i-1"), hma_stream("worker", "i-9")],
            "startTime": 0,
        });
        let out = answer("FilterLogEvents", &input, &path, GROUP).unwrap();
        let events = out["events"].as_array().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["message"], "one");
        let written = DateTime::parse_from_rfc3339("2026-07-20T22:53:17.5Z").unwrap();
        assert_eq!(
            events[0]["timestamp"].as_i64(),
            Some(written.timestamp_millis())
        );
        let later = json!({"logGroupName": GROUP, "startTime": events[0]["timestamp"].as_i64().unwrap() + 1});
        let out = answer("FilterLogEvents", &later, &path, GROUP).unwrap();
        assert_eq!(out["events"].as_array().unwrap().len(), 1);
        assert_eq!(out["events"][0]["message"], "two");
        // Pages.
        let paged = json!({"logGroupName": GROUP, "limit": 1});
        let out = answer("FilterLogEvents", &paged, &path, GROUP).unwrap();
        assert_eq!(out["nextToken"], "f/1");
        let next = json!({"logGroupName": GROUP, "limit": 1, "nextToken": "f/1"});
        let out = answer("FilterLogEvents", &next, &path, GROUP).unwrap();
        assert_eq!(out["events"][0]["message"], "two");
        assert!(out.get("nextToken").is_none());
    }

    #[test]
    fn unknown_groups_and_streams_are_refused_as_cloudwatch_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        let other = json!({"logGroupName": "/aws/other"});
        assert_eq!(
            answer("FilterLogEvents", &other, &path, GROUP).unwrap_err(),
            (
                "ResourceNotFoundException",
                "The specified log group does not exist.".to_owned()
            )
        );
        let stream = json!({"logGroupName": GROUP, "logStreamName": "nope"});
        assert_eq!(
            answer("GetLogEvents", &stream, &path, GROUP).unwrap_err().0,
            "ResourceNotFoundException"
        );
        let stream = json!({"logGroupName": GROUP, "logStreamName": hma_stream("worker", "i-2")});
        let out = answer("GetLogEvents", &stream, &path, GROUP).unwrap();
        assert_eq!(out["events"][0]["message"], "two");
    }
}
