//! Monitoring expectations made concrete and read back, as pure functions:
//! `$target`/`$targets` substituted into a watch per target (or one for
//! all), Prometheus's `query_range` answer read for the first instant a
//! condition held, and Alertmanager's `/api/v2/alerts` answer read for the
//! alert a scenario expects, with its own `startsAt`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::duration::Duration;
use crate::scenario::model::MonitoringExpectation;

/// One thing to look for: an expectation for one target, or for all.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The expectation's row name.
    pub name: String,
    /// The target it is about (`$target` expectations), else `None`.
    pub target: Option<String>,
    pub kind: Kind,
    pub within: Duration,
    /// What the scenario wrote, before substitution: the PromQL, or
    /// `alert NAME{labels}`.
    pub template: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A PromQL expression, substituted.
    PromQl(String),
    /// An alert by name, with label values as anchored regexes.
    Alert {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

impl Kind {
    /// What is looked for, as reports show it.
    pub fn describe(&self) -> String {
        match self {
            Kind::PromQl(query) => query.clone(),
            Kind::Alert { name, labels } => {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=~\"{v}\""))
                    .collect();
                format!("alert {name}{{{}}}", labels.join(","))
            }
        }
    }

    /// Where the time comes from: `prometheus` (the sample's) or
    /// `alertmanager` (the alert's `startsAt`).
    pub fn source(&self) -> &'static str {
        match self {
            Kind::PromQl(_) => "prometheus",
            Kind::Alert { .. } => "alertmanager",
        }
    }
}

/// A node name as a regex matching itself only, written without
/// backslashes (`ip-10-1-0-11.ec2` → `ip-10-1-0-11[.]ec2`): PromQL's
/// double-quoted strings refuse `\-`, and a doubled backslash would be
/// wrong in its backtick strings; a bracketed character reads the same in
/// every quoting and in Alertmanager's matchers.
pub fn literal(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c.to_string(),
            '\\' | '^' | ']' => regex::escape(&c.to_string()),
            c => format!("[{c}]"),
        })
        .collect()
}

/// A label value inside PromQL's double quotes: `\`, `"` and a newline
/// escaped as Go's string syntax wants them.
pub fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `$targets` → every target as a regex alternation (escaped); then
/// `$target` → `target` (when judged per target).
pub fn substitute(text: &str, target: Option<&str>, targets: &[String]) -> String {
    let all: Vec<String> = targets.iter().map(|t| literal(t)).collect();
    // A group, so what the pattern adds around it applies to every name.
    let alternation = match all.len() {
        1 => all.join(""),
        _ => format!("(?:{})", all.join("|")),
    };
    let text = text.replace("$targets", &alternation);
    match target {
        Some(target) => text.replace("$target", target),
        None => text,
    }
}

/// The watches of a scenario's expectations: one per target for those
/// saying `$target`, else one.
pub fn plan(expectations: &[MonitoringExpectation], targets: &[String]) -> Vec<Watch> {
    let mut watches = Vec::new();
    for (index, item) in expectations.iter().enumerate() {
        let name = item.label(index);
        let each: Vec<Option<&str>> = if item.per_target() {
            targets.iter().map(|t| Some(t.as_str())).collect()
        } else {
            vec![None]
        };
        for target in each {
            let kind = match (&item.promql, &item.alert) {
                (Some(query), _) => Kind::PromQl(substitute(query, target, targets)),
                (None, Some(alert)) => Kind::Alert {
                    name: alert.clone(),
                    labels: item
                        .labels
                        .iter()
                        .map(|(k, v)| {
                            // Label values are patterns: a target's name
                            // is itself, escaped.
                            let target = target.map(literal);
                            (k.clone(), substitute(v, target.as_deref(), targets))
                        })
                        .collect(),
                },
                (None, None) => continue,
            };
            let template = match (&item.promql, &item.alert) {
                (Some(query), _) => query.clone(),
                _ => Kind::Alert {
                    name: item.alert.clone().unwrap_or_default(),
                    labels: item.labels.clone(),
                }
                .describe(),
            };
            watches.push(Watch {
                template,
                name: name.clone(),
                target: target.map(str::to_owned),
                kind,
                within: item.within,
            });
        }
    }
    watches
}

/// The first instant a condition held, and what it returned then.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The monitoring's own time: the first `query_range` step at which the
    /// expression returned a series, or the alert's `startsAt`.
    pub at: DateTime<Utc>,
    /// The series (or alert labels) and value, for the report.
    pub detail: String,
}

/// Why an answer from Prometheus could not be used as one.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The body is not JSON (an HTML error page, a proxy's answer).
    #[error("not a Prometheus answer: {0}")]
    NotAnAnswer(#[source] serde_json::Error),
    /// Prometheus answered with its own error (`status: error`).
    #[error("Prometheus says {kind}: {message}")]
    Refused { kind: String, message: String },
    /// A condition that is a range vector: a query must return series.
    #[error(
        "the expression is a range vector (`[1m]`), not a condition: wrap it, e.g. `max_over_time(metric[1m]) > 0`"
    )]
    RangeVector,
    /// Alertmanager's body is not JSON.
    #[error("not an Alertmanager answer: {0}")]
    NotAlertmanager(#[source] serde_json::Error),
    /// Alertmanager's answer is JSON but not a list of alerts.
    #[error("Alertmanager's answer is not a list of alerts")]
    NotAlertList,
    /// A scalar or string where series were expected.
    #[error("the expression gives a {0}, not series: write a condition on a metric (`metric > 0`)")]
    NotSeries(String),
}

/// Prometheus's JSON answer when it says `success`; else its own error
/// (`errorType: error`), or that the body was not an answer at all.
pub(super) fn prometheus_answer(body: &[u8]) -> Result<Value, AnswerError> {
    let answer = json(body)?;
    if answer["status"] != "success" {
        return Err(AnswerError::Refused {
            kind: answer["errorType"].as_str().unwrap_or("error").to_owned(),
            message: answer["error"]
                .as_str()
                .unwrap_or("(no message)")
                .to_owned(),
        });
    }
    Ok(answer)
}

/// The body as JSON.
fn json(body: &[u8]) -> Result<Value, AnswerError> {
    serde_json::from_slice(body).map_err(AnswerError::NotAnAnswer)
}

/// Reads a `query_range` answer (`resultType: matrix`): the earliest
/// timestamp at which any series has a value, with that series. `Err`
/// carries Prometheus's own error, or says the answer was not one.
pub fn first_true(body: &[u8]) -> Result<Option<Sighting>, AnswerError> {
    let answer = prometheus_answer(body)?;
    let mut best: Option<(f64, String)> = None;
    for series in answer["data"]["result"].as_array().into_iter().flatten() {
        let Some((t, value)) = series["values"]
            .as_array()
            .and_then(|values| values.first())
            .and_then(|point| Some((point[0].as_f64()?, point[1].as_str()?.to_owned())))
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| t < *b) {
            best = Some((t, format!("{} = {value}", series_name(&series["metric"]))));
        }
    }
    Ok(best.and_then(|(t, detail)| {
        let at = Utc
            .timestamp_millis_opt((t * 1000.0).round() as i64)
            .single()?;
        Some(Sighting { at, detail })
    }))
}

/// `name{a="1",b="2"}` from a series' labels.
fn series_name(metric: &Value) -> String {
    let Some(labels) = metric.as_object() else {
        return String::new();
    };
    let name = labels
        .get("__name__")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default()))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// What Alertmanager holds for one expected alert: the earliest-starting
/// matching alert that is `active` (it notified), and the earliest one it
/// `suppressed` (silenced or inhibited: it fired, nobody was paged).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertMatch {
    pub active: Option<Sighting>,
    pub suppressed: Option<Suppressed>,
}

/// An alert Alertmanager suppressed: when it fired (`startsAt`, with its
/// labels and summary) and by what.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    pub sighting: Sighting,
    /// `silenced by <ids>`, `inhibited by <fingerprints>`, `muted by
    /// <time intervals>`, or `no reason given`.
    pub by: String,
}

impl Suppressed {
    /// The sighting with what suppressed it after its detail:
    /// `<labels>: <summary> (silenced by <id>)`.
    pub fn with_reason(&self) -> Sighting {
        Sighting {
            at: self.sighting.at,
            detail: format!("{} ({})", self.sighting.detail, self.by),
        }
    }
}

/// Reads Alertmanager's `/api/v2/alerts` answer (which lists active,
/// silenced and inhibited alerts by default): the alerts named `name`
/// whose labels match every pattern of `labels` (anchored regexes; a
/// pattern that does not compile matches itself only), the earliest
/// active and the earliest suppressed (with the silence ids or inhibiting
/// alerts' fingerprints in its detail).
pub fn matching_alerts(
    body: &[u8],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<AlertMatch, AnswerError> {
    let alerts: Value = serde_json::from_slice(body).map_err(AnswerError::NotAlertmanager)?;
    let Some(alerts) = alerts.as_array() else {
        return Err(AnswerError::NotAlertList);
    };
    let patterns: Vec<(&String, Option<regex::Regex>, &String)> = labels
        .iter()
        .map(|(k, v)| (k, regex::Regex::new(&format!("^(?:{v})$")).ok(), v))
        .collect();
    let mut found = AlertMatch::default();
    for alert in alerts {
        let own = &alert["labels"];
        if own["alertname"] != name {
            continue;
        }
        let matches = patterns.iter().all(|(key, pattern, raw)| {
            let value = own[key.as_str()].as_str().unwrap_or_default();
            match pattern {
                Some(p) => p.is_match(value),
                None => value == raw.as_str(),
            }
        });
        if !matches {
            continue;
        }
        let Some(at) = alert["startsAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        let sighting = Sighting {
            at,
            detail: format!(
                "{}: {}",
                series_name(own),
                alert["annotations"]["summary"].as_str().unwrap_or_default()
            ),
        };
        let ids = |key: &str| -> Vec<String> {
            alert["status"][key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        match alert["status"]["state"].as_str() {
            // `/api/v2` always gives a state; none is read as active.
            Some("active") | None => {
                if found.active.as_ref().is_none_or(|b| at < b.at) {
                    found.active = Some(sighting);
                }
            }
            Some("suppressed") => {
                let by: Vec<String> = [
                    ("silencedBy", "silenced by"),
                    ("inhibitedBy", "inhibited by"),
                    // Newer Alertmanagers: muted by a time interval.
                    ("mutedBy", "muted by"),
                ]
                .iter()
                .filter_map(|(key, said)| {
                    let ids = ids(key);
                    (!ids.is_empty()).then(|| format!("{said} {}", ids.join(", ")))
                })
                .collect();
                let by = if by.is_empty() {
                    "no reason given".to_owned()
                } else {
                    by.join(", ")
                };
                if found.suppressed.as_ref().is_none_or(|b| at < b.sighting.at) {
                    found.suppressed = Some(Suppressed { sighting, by });
                }
            }
            // `unprocessed`: not yet routed; looked at again next poll.
            Some(_) => {}
        }
    }
    Ok(found)
}

/// Reads an instant `query` answer: the first series it returned (as
/// `name{labels} = value`), or `None`. A scalar or string is refused: a
/// condition must return series.
pub fn instant_result(body: &[u8]) -> Result<Option<String>, AnswerError> {
    let answer = prometheus_answer(body)?;
    let kind = answer["data"]["resultType"].as_str().unwrap_or_default();
    if kind == "matrix" {
        return Err(AnswerError::RangeVector);
    }
    if kind != "vector" {
        return Err(AnswerError::NotSeries(kind.to_owned()));
    }
    Ok(answer["data"]["result"]
        .as_array()
        .and_then(|r| r.first())
        .map(|series| {
            format!(
                "{} = {}",
                series_name(&series["metric"]),
                series["value"][1].as_str().unwrap_or_default()
            )
        }))
}

/// The alerting rules' names in Prometheus's `/api/v1/rules` answer.
pub fn alert_rule_names(body: &[u8]) -> Result<Vec<String>, AnswerError> {
    let answer = json(body)?;
    Ok(answer["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["type"] == "alerting")
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect())
}

/// The metric names a PromQL expression selects with matchers
/// (`name{...}`), outside its quoted strings: the ones a typo would leave
/// selecting nothing.
pub fn selected_metrics(query: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None => plain.push(c),
        }
    }
    let selector = regex::Regex::new(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{")
        .unwrap_or_else(|_| unreachable!("a fixed, valid pattern"));
    let mut names: Vec<String> = selector
        .captures_iter(&plain)
        .map(|c| c[1].to_owned())
        .collect();
    names.dedup();
    names
}

/// The closest of `known` to `name` (case aside), if close enough to be a
/// typo of it.
pub fn did_you_mean<'a>(name: &str, known: &'a [String]) -> Option<&'a String> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&k.to_lowercase(), &lower), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The list of names in a `/api/v1/label/NAME/values` or `/api/v1/labels`
/// answer.
pub fn name_list(body: &[u8]) -> Result<Vec<String>, AnswerError> {
    let answer = json(body)?;
    Ok(answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// A `query_range` step for a window of `seconds`: one second, or coarser
/// so the answer stays under Prometheus's 11,000 points a series.
pub fn step_for(seconds: f64) -> f64 {
    (seconds / 10_000.0).ceil().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(yaml: &str) -> MonitoringExpectation {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn target_expectations_are_watched_per_target() {
        let targets = vec!["ip-10-1-0-11".to_owned(), "ip-10-1-0-12".to_owned()];
        let items = vec![
            expectation(
                "promql: 'DCGM_FI_DEV_XID_ERRORS{Hostname=\"$target\"} == 48'\nwithin: 60s",
            ),
            expectation("alert: GpuXidError\nlabels: {Hostname: $target}\nwithin: 2m"),
            expectation(
                "name: drained\npromql: 'slurm_nodes_drain >= 1 and on() count(slurm_node_status{node=~\"$targets\"}) > 0'\nwithin: 2m",
            ),
        ];
        let watches = plan(&items, &targets);
        assert_eq!(watches.len(), 5);
        assert_eq!(watches[0].name, "promql-1");
        assert_eq!(
            watches[1].kind,
            Kind::PromQl("DCGM_FI_DEV_XID_ERRORS{Hostname=\"ip-10-1-0-12\"} == 48".into())
        );
        assert_eq!(watches[2].name, "GpuXidError");
        assert_eq!(watches[2].target.as_deref(), Some("ip-10-1-0-11"));
        assert_eq!(
            watches[4].kind,
            Kind::PromQl("slurm_nodes_drain >= 1 and on() count(slurm_node_status{node=~\"(?:ip-10-1-0-11|ip-10-1-0-12)\"}) > 0".into())
        );
        assert_eq!(watches[4].target, None);
    }

    #[test]
    fn the_first_true_step_is_the_time() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_XID_ERRORS","gpu":"1"},"values":[[1764600005,"48"],[1764600006,"48"]]},
            {"metric":{"__name__":"DCGM_FI_DEV_XID_ERRORS","gpu":"0"},"values":[[1764600003.5,"48"]]}]}}"#;
        let seen = first_true(body).unwrap().unwrap();
        assert_eq!(seen.at.timestamp_millis(), 1_764_600_003_500);
        assert!(seen.detail.contains("gpu=\"0\""), "{}", seen.detail);
        let empty = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(first_true(empty).unwrap(), None);
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert!(
            first_true(bad)
                .unwrap_err()
                .to_string()
                .contains("parse error at char 5")
        );
    }

    #[test]
    fn an_alert_matches_by_name_and_anchored_labels() {
        let body = br#"[
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-111"},"startsAt":"2026-12-01T10:00:01Z","status":{"state":"active"},"annotations":{}},
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-11"},"startsAt":"2026-12-01T10:00:05.250Z","status":{"state":"active"},"annotations":{"summary":"Xid 48"}},
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-11"},"startsAt":"2026-12-01T09:00:00Z","status":{"state":"suppressed"},"annotations":{}},
          {"labels":{"alertname":"Other","Hostname":"ip-10-1-0-11"},"startsAt":"2026-12-01T10:00:00Z","status":{"state":"active"},"annotations":{}}]"#;
        let labels = BTreeMap::from([("Hostname".to_owned(), literal("ip-10-1-0-11"))]);
        let seen = matching_alerts(body, "GpuXidError", &labels)
            .unwrap()
            .active
            .unwrap();
        assert_eq!(seen.at.to_rfc3339(), "2026-12-01T10:00:05.250+00:00");
        assert!(seen.detail.contains("Xid 48"));
        assert_eq!(
            matching_alerts(body, "Missing", &labels).unwrap().active,
            None
        );
    }

    #[test]
    fn a_silenced_or_inhibited_alert_is_told_apart_from_one_that_paged() {
        let body = br#"[
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-11"},"startsAt":"2026-12-01T10:00:05Z","status":{"state":"suppressed","silencedBy":["a1b2"],"inhibitedBy":[]},"annotations":{"summary":"Xid 48"}},
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-12"},"startsAt":"2026-12-01T10:00:03Z","status":{"state":"suppressed","silencedBy":[],"inhibitedBy":["f00d"]},"annotations":{}},
          {"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-13"},"startsAt":"2026-12-01T10:00:01Z","status":{"state":"unprocessed"},"annotations":{}}]"#;
        let on = |node: &str| BTreeMap::from([("Hostname".to_owned(), literal(node))]);
        let m = matching_alerts(body, "GpuXidError", &on("ip-10-1-0-11")).unwrap();
        assert_eq!(m.active, None);
        let suppressed = m.suppressed.unwrap();
        assert_eq!(
            suppressed.sighting.at.to_rfc3339(),
            "2026-12-01T10:00:05+00:00"
        );
        assert!(suppressed.sighting.detail.ends_with(": Xid 48"));
        assert_eq!(suppressed.by, "silenced by a1b2");
        let m = matching_alerts(body, "GpuXidError", &on("ip-10-1-0-12")).unwrap();
        assert_eq!(m.suppressed.unwrap().by, "inhibited by f00d");
        // Suppressed with no list filled in: said so, not "()".
        let bare = br#"[{"labels":{"alertname":"GpuXidError","Hostname":"ip-10-1-0-14"},"startsAt":"2026-12-01T10:00:01Z","status":{"state":"suppressed","silencedBy":[],"inhibitedBy":[],"mutedBy":[]},"annotations":{}}]"#;
        let m = matching_alerts(bare, "GpuXidError", &on("ip-10-1-0-14")).unwrap();
        assert_eq!(m.suppressed.unwrap().by, "no reason given");
        // Not yet routed: neither.
        let m = matching_alerts(body, "GpuXidError", &on("ip-10-1-0-13")).unwrap();
        assert_eq!(m, AlertMatch::default());
    }

    #[test]
    fn names_become_patterns_without_backslashes() {
        assert_eq!(literal("ip-10-1-0-11"), "ip-10-1-0-11");
        assert_eq!(literal("gpu_7.cluster"), "gpu_7[.]cluster");
        let pattern = regex::Regex::new(&format!("^(?:{})$", literal("a.b"))).unwrap();
        assert!(pattern.is_match("a.b") && !pattern.is_match("axb"));
    }

    #[test]
    fn an_instant_answer_says_whether_a_series_came_back() {
        let some = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","node":"n"},"value":[1764600000.5,"1"]}]}}"#;
        assert_eq!(
            instant_result(some).unwrap().as_deref(),
            Some("up{node=\"n\"} = 1")
        );
        let none = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(instant_result(none).unwrap(), None);
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1764600000.5,"1"]}}"#;
        let refused = instant_result(scalar).unwrap_err();
        assert!(matches!(&refused, AnswerError::NotSeries(kind) if kind == "scalar"));
        assert!(refused.to_string().contains("scalar"));
    }

    #[test]
    fn typos_in_selected_metrics_are_found_and_named() {
        assert_eq!(
            selected_metrics(
                r#"max(DCGM_FI_DEV_XID_ERROR{Hostname="a{b}"}) > 0 and on() up {job="x"}"#
            ),
            ["DCGM_FI_DEV_XID_ERROR", "up"]
        );
        let known = vec!["DCGM_FI_DEV_XID_ERRORS".to_owned(), "up".to_owned()];
        assert_eq!(
            did_you_mean("DCGM_FI_DEV_XID_ERROR", &known),
            Some(&known[0])
        );
        assert_eq!(
            did_you_mean("dcgm_fi_dev_xid_errors", &known),
            Some(&known[0])
        );
        assert_eq!(did_you_mean("node_load1", &known), None);
    }

    #[test]
    fn long_windows_get_coarser_steps() {
        assert_eq!(step_for(60.0), 1.0);
        assert_eq!(step_for(3.0 * 3600.0), 2.0);
    }

    #[test]
    fn label_values_are_escaped_for_double_quotes() {
        assert_eq!(escape_label_value("10.1.0.11:9400"), "10.1.0.11:9400");
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("a\nb"), "a\\nb");
    }
}
