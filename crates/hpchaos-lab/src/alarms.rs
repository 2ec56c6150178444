//! The lab's CloudWatch alarms, for stop conditions (`abort.when:
//! cloudwatch_alarm`): `hpchaos lab alarm NAME --state ALARM` sets one (as
//! CloudWatch's own `SetAlarmState` does) in `cloudwatch-alarms.json`, and
//! the control plane answers `DescribeAlarms` from that file in the
//! protocol aws-sdk-cloudwatch speaks: Smithy RPC v2 CBOR (`POST
//! /service/GraniteServiceVersion20100801/operation/DescribeAlarms`,
//! `application/cbor`, timestamps as CBOR tag 1 epoch seconds, errors as a
//! map with `__type` and `message`). The shapes are botocore's
//! `cloudwatch/service-2.json` (`DescribeAlarmsInput`: `AlarmNames`,
//! `AlarmTypes`; `DescribeAlarmsOutput`: `MetricAlarms`, `CompositeAlarms`
//! with `AlarmName`, `StateValue`, `StateReason`, `StateUpdatedTimestamp`).

use std::path::Path;

use chrono::{DateTime, Utc};
use ciborium::value::Value;
use serde::{Deserialize, Serialize};

/// The request path's prefix of CloudWatch's operations.
pub const PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";

/// The states an alarm can be in (botocore's `StateValue`).
pub const STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

/// One alarm as the lab keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
    pub state: String,
    pub reason: String,
    pub updated: DateTime<Utc>,
}

/// The alarms in `path`; none when it is missing or unreadable.
pub fn load(path: &Path) -> Vec<Alarm> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Sets alarm `name` to `state` with `reason` at `now` (adding it when
/// new), written whole. Errors: a state CloudWatch does not have, or the
/// file cannot be written.
pub fn set(
    path: &Path,
    name: &str,
    state: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if !STATES.contains(&state) {
        return Err(format!(
            "`{state}` is not an alarm state (one of: {})",
            STATES.join(", ")
        ));
    }
    let mut alarms = load(path);
    let alarm = Alarm {
        name: name.to_owned(),
        state: state.to_owned(),
        reason: reason.to_owned(),
        updated: now,
    };
    match alarms.iter_mut().find(|a| a.name == name) {
        Some(known) => *known = alarm,
        None => alarms.push(alarm),
    }
    let text = serde_json::to_string_pretty(&alarms).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

/// CBOR bytes of `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

/// An error's body: `{"__type": kind, "message": message}`.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    encode(&map(vec![
        ("__type", text(kind)),
        ("message", text(message)),
    ]))
}

/// The strings of a list member of a request map.
fn strings(request: &Value, key: &str) -> Vec<String> {
    let Value::Map(entries) = request else {
        return Vec::new();
    };
    entries
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .and_then(|(_, v)| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_text().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Answers `operation` with the CBOR `body`: the CBOR answer, or (kind,
/// message) for an error.
pub fn answer(
    operation: &str,
    body: &[u8],
    alarms: &[Alarm],
) -> Result<Vec<u8>, (&'static str, String)> {
    if operation != "DescribeAlarms" {
        return Err((
            "UnknownOperationException",
            format!("operation {operation} is not served by the lab"),
        ));
    }
    let request: Value = if body.is_empty() {
        Value::Map(Vec::new())
    } else {
        ciborium::from_reader(body).map_err(|e| {
            (
                "SerializationException",
                format!("the request body is not CBOR: {e}"),
            )
        })?
    };
    if !matches!(request, Value::Map(_)) {
        return Err((
            "SerializationException",
            "the request is not a map".to_owned(),
        ));
    }
    let names = strings(&request, "AlarmNames");
    let types = strings(&request, "AlarmTypes");
    for t in &types {
        if t != "MetricAlarm" && t != "CompositeAlarm" {
            return Err((
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{t}' at 'alarmTypes' failed to satisfy constraint: Member must satisfy enum value set: [CompositeAlarm, MetricAlarm]"
                ),
            ));
        }
    }
    // Without AlarmTypes CloudWatch lists metric alarms only.
    let metric = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
    let listed: Vec<Value> = alarms
        .iter()
        .filter(|a| metric && (names.is_empty() || names.contains(&a.name)))
        .map(|a| {
            map(vec![
                ("AlarmName", text(&a.name)),
                (
                    "AlarmArn",
                    text(&format!(
                        "arn:aws:cloudwatch:us-west-2:123456789012:alarm:{}",
                        a.name
                    )),
                ),
                ("StateValue", text(&a.state)),
                ("StateReason", text(&a.reason)),
                (
                    "StateUpdatedTimestamp",
                    Value::Tag(
                        1,
                        Box::new(Value::Float(a.updated.timestamp_millis() as f64 / 1000.0)),
                    ),
                ),
            ])
        })
        .collect();
    Ok(encode(&map(vec![
        ("MetricAlarms", Value::Array(listed)),
        ("CompositeAlarms", Value::Array(Vec::new())),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_set_and_described_as_cbor_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alarms.json");
        let at = DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        set(&path, "throughput", "ALARM", "Threshold Crossed", at).unwrap();
        set(&path, "other", "OK", "fine", at).unwrap();
        set(&path, "throughput", "OK", "back", at).unwrap();
        assert!(
            set(&path, "x", "FIRING", "", at)
                .unwrap_err()
                .contains("not an alarm state")
        );
        let alarms = load(&path);
        assert_eq!(alarms.len(), 2);
        let request = encode(&map(vec![(
            "AlarmNames",
            Value::Array(vec![text("throughput")]),
        )]));
        let answered: Value =
            ciborium::from_reader(&answer("DescribeAlarms", &request, &alarms).unwrap()[..])
                .unwrap();
        let Value::Map(top) = answered else {
            panic!("not a map")
        };
        let metric = top
            .iter()
            .find(|(k, _)| k.as_text() == Some("MetricAlarms"))
            .unwrap()
            .1
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(metric.len(), 1);
        let Value::Map(alarm) = &metric[0] else {
            panic!()
        };
        let get = |key: &str| {
            alarm
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("StateValue").as_text(), Some("OK"));
        assert!(matches!(get("StateUpdatedTimestamp"), Value::Tag(1, _)));
        // Only composite alarms asked for: none.
        let request = encode(&map(vec![(
            "AlarmTypes",
            Value::Array(vec![text("CompositeAlarm")]),
        )]));
        let answered: Value =
            ciborium::from_reader(&answer("DescribeAlarms", &request, &alarms).unwrap()[..])
                .unwrap();
        let Value::Map(top) = answered else { panic!() };
        assert!(
            top.iter()
                .find(|(k, _)| k.as_text() == Some("MetricAlarms"))
                .unwrap()
                .1
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            answer_err("PutMetricAlarm", &alarms),
            "UnknownOperationException"
        );
        let bad = encode(&map(vec![(
            "AlarmTypes",
            Value::Array(vec![text("LogAlarm2")]),
        )]));
        assert_eq!(
            answer("DescribeAlarms", &bad, &alarms).unwrap_err().0,
            "ValidationError"
        );
    }

    fn answer_err(operation: &str, alarms: &[Alarm]) -> &'static str {
        answer(operation, &[], alarms).unwrap_err().0
    }
}
