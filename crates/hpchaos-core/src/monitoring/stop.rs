//! Stop conditions (`abort.when`), after AWS FIS's stop conditions and
//! krkn's PromQL gates: asked before the injection (with the same check
//! before use as monitoring expectations: a typo'd metric or alert is said
//! then, not after the fault) and all along the watch. A PromQL condition
//! holds while it returns a series, an alert while Alertmanager holds it
//! (active or suppressed: a silence mutes the page, not the condition), a
//! CloudWatch alarm while it is in `ALARM`. A condition that cannot be
//! read for [`BLIND_LIMIT`] is itself a reason to stop: a run must not go
//! on blind to what it was told to stop on. This file owns the asking and
//! the verdicts; the runner acts on them.

use chrono::{DateTime, Utc};

use super::client::Client;
use super::expect;
use crate::profile::Monitoring;
use crate::scenario::model::StopCondition;

/// How long a stop condition may go unread before the run stops for it.
pub const BLIND_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// One stop condition made concrete (`$target`/`$targets` substituted).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Its name in reports.
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A PromQL expression or an Alertmanager alert.
    Monitoring(expect::Kind),
    /// A CloudWatch alarm's name.
    Alarm(String),
}

impl Condition {
    /// What is asked, in words: `promql `...``, `alert X{...}`,
    /// `CloudWatch alarm X`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Monitoring(expect::Kind::PromQl(q)) => format!("promql `{q}`"),
            Kind::Monitoring(kind) => kind.describe(),
            Kind::Alarm(name) => format!("CloudWatch alarm {name}"),
        }
    }
}

/// The scenario's stop conditions, with `$target` and `$targets` both
/// standing for every target (a stop condition is about the run, not one
/// node).
pub fn plan(when: &[StopCondition], targets: &[String]) -> Vec<Condition> {
    let sub = |text: &str| {
        let text = text
            .replace("$targets", "\u{0}")
            .replace("$target", "\u{0}")
            .replace('\u{0}', "$targets");
        expect::substitute(&text, None, targets)
    };
    when.iter()
        .enumerate()
        .map(|(index, item)| {
            let kind = match (&item.promql, &item.alert, &item.cloudwatch_alarm) {
                (Some(q), _, _) => Kind::Monitoring(expect::Kind::PromQl(sub(q))),
                (_, Some(name), _) => Kind::Monitoring(expect::Kind::Alert {
                    name: name.clone(),
                    labels: item
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), sub(v)))
                        .collect(),
                }),
                (_, _, Some(alarm)) => Kind::Alarm(alarm.clone()),
                // Validation refuses a condition without any of the three.
                (None, None, None) => Kind::Monitoring(expect::Kind::PromQl(String::new())),
            };
            Condition {
                name: item.label(index),
                kind,
            }
        })
        .collect()
}

/// What one reading of the conditions found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// The first condition that holds: its name, what it is, and its value.
    pub holds: Option<Held>,
    /// Conditions that could not be read, with why.
    pub unread: Vec<(String, String)>,
}

/// A condition that holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub name: String,
    pub what: String,
    /// The series and value, the alert and since when, the alarm's state.
    pub value: String,
}

impl Held {
    /// `stop condition fleet-down holds: promql `...` = {…} 0.03`.
    pub fn words(&self) -> String {
        format!(
            "stop condition {} holds: {}: {}",
            self.name, self.what, self.value
        )
    }
}

/// Where the conditions' endpoints are: the profile's monitoring and, for
/// alarms, a CloudWatch client.
pub struct Endpoints<'a> {
    pub client: &'a Client,
    pub monitoring: Option<&'a Monitoring>,
    pub cloudwatch: Option<&'a aws_sdk_cloudwatch::Client>,
}

/// The check before use: every condition can be asked (Prometheus and
/// Alertmanager configured, no metric, alert rule or label name that is a
/// near miss of a known one, a CloudWatch alarm that exists). `Err`: the
/// problems, each naming its condition.
pub async fn askable(conditions: &[Condition], at: &Endpoints<'_>) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut readiness = match at.monitoring {
        Some(monitoring) => Some(super::Readiness::read(at.client, monitoring).await),
        None => None,
    };
    for condition in conditions {
        match (&condition.kind, readiness.as_mut()) {
            (Kind::Monitoring(_), None) => problems.push(format!(
                "{}: the profile has no `monitoring:` section to ask",
                condition.name
            )),
            (Kind::Monitoring(expect::Kind::PromQl(q)), Some(readiness)) => {
                readiness.promql_names(&condition.name, q);
            }
            (Kind::Monitoring(expect::Kind::Alert { name, labels }), Some(readiness)) => {
                readiness.alert_names(&condition.name, name, labels).await;
            }
            (Kind::Alarm(_), _) if at.cloudwatch.is_none() => problems.push(format!(
                "{}: a CloudWatch alarm needs the profile's `sagemaker:` section (region, credentials)",
                condition.name
            )),
            // It must exist: a typo'd name could never be in ALARM.
            (Kind::Alarm(alarm), _) => {
                if let Some(client) = at.cloudwatch
                    && let Err(why) = crate::cluster::alarms::read(client, alarm).await
                {
                    problems.push(format!("{}: {why}", condition.name));
                }
            }
        }
    }
    if let Some(mut readiness) = readiness {
        problems.append(&mut readiness.problems);
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Asks every condition once, concurrently; the first that holds (in the
/// scenario's order) and the ones that could not be read.
pub async fn read(conditions: &[Condition], at: &Endpoints<'_>) -> Reading {
    let asks = conditions.iter().map(|c| ask(c, at));
    let answers = futures::future::join_all(asks).await;
    let mut reading = Reading::default();
    for (condition, answer) in conditions.iter().zip(answers) {
        match answer {
            Ok(Some(value)) if reading.holds.is_none() => {
                reading.holds = Some(Held {
                    name: condition.name.clone(),
                    what: condition.describe(),
                    value,
                });
            }
            Ok(_) => {}
            Err(error) => reading.unread.push((condition.name.clone(), error)),
        }
    }
    reading
}

/// One condition: `Some(value)` while it holds.
async fn ask(condition: &Condition, at: &Endpoints<'_>) -> Result<Option<String>, String> {
    let monitoring = at.monitoring;
    match &condition.kind {
        Kind::Monitoring(expect::Kind::PromQl(query)) => {
            let endpoint = monitoring
                .and_then(|m| m.prometheus.as_ref())
                .ok_or("the profile has no monitoring.prometheus")?;
            let body = at
                .client
                .get(endpoint, "/api/v1/query", &[("query", query.as_str())])
                .await
                .map_err(|e| e.to_string())?;
            expect::instant_result(&body).map_err(|e| e.to_string())
        }
        Kind::Monitoring(expect::Kind::Alert { name, labels }) => {
            let endpoint = monitoring
                .and_then(|m| m.alertmanager.as_ref())
                .ok_or("the profile has no monitoring.alertmanager")?;
            let found = super::firing_alert(at.client, endpoint, name, labels)
                .await
                .map_err(|e| e.to_string())?;
            let since = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            Ok(found
                .active
                .map(|a| format!("firing since {}: {}", since(a.at), a.detail))
                .or(found.suppressed.map(|s| {
                    format!(
                        "firing since {} ({}): {}",
                        since(s.sighting.at),
                        s.by,
                        s.sighting.detail
                    )
                })))
        }
        Kind::Alarm(name) => {
            let client = at
                .cloudwatch
                .ok_or("a CloudWatch alarm needs the profile's sagemaker section")?;
            let alarm = crate::cluster::alarms::read(client, name)
                .await
                .map_err(|e| e.to_string())?;
            Ok(alarm.holds().then(|| alarm.words()))
        }
    }
}

/// Every stop condition (`abort.when`) can be asked: the metrics, alert
/// rules and labels it names exist in the monitoring (or are no near miss
/// of a name there), an alarm exists in CloudWatch. Refused as the
/// scenario's (exit 2) with every problem at once: as written it names
/// something that is not there. Whether one holds is asked again right
/// before the injection.
pub async fn refusal(
    cluster: &crate::cluster::Cluster,
    scenario: &crate::scenario::model::Scenario,
) -> Result<(), crate::preflight::Refusal> {
    let Some(abort) = &scenario.abort else {
        return Ok(());
    };
    if abort.when.is_empty() {
        return Ok(());
    }
    let conditions = plan(&abort.when, &[]);
    let client = Client::new();
    let cloudwatch = cluster.api.as_ref().map(|a| a.cloudwatch());
    let at = Endpoints {
        client: &client,
        monitoring: cluster.profile.monitoring.as_ref(),
        cloudwatch: cloudwatch.as_ref(),
    };
    askable(&conditions, &at)
        .await
        .map_err(|problems| crate::preflight::Refusal {
            kind: crate::preflight::RefusalKind::Scenario,
            why: format!("stop conditions: {}", problems.join("; ")),
        })
}

/// How long each condition has gone unread, for [`BLIND_LIMIT`].
#[derive(Debug, Default)]
pub struct Blindness {
    since: std::collections::BTreeMap<String, DateTime<Utc>>,
}

impl Blindness {
    /// Takes a reading at `now`: the conditions newly unread (to say once)
    /// and the first one unread for longer than `limit`, in words.
    pub fn take(
        &mut self,
        reading: &Reading,
        now: DateTime<Utc>,
        limit: std::time::Duration,
    ) -> (Vec<(String, String)>, Option<String>) {
        let unread: Vec<&String> = reading.unread.iter().map(|(n, _)| n).collect();
        self.since.retain(|name, _| unread.contains(&name));
        let mut new = Vec::new();
        let mut too_long = None;
        for (name, error) in &reading.unread {
            let since = *self.since.entry(name.clone()).or_insert_with(|| {
                new.push((name.clone(), error.clone()));
                now
            });
            let blind = (now - since).to_std().unwrap_or_default();
            if blind > limit && too_long.is_none() {
                too_long = Some(format!(
                    "stop condition {name} could not be read for {}s (limit {}s): {error}; a run does not go on blind to its stop conditions",
                    blind.as_secs(),
                    limit.as_secs()
                ));
            }
        }
        (new, too_long)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(yaml: &str) -> Vec<StopCondition> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn targets_stand_for_every_target_and_each_kind_is_named() {
        let when = conditions(
            "- promql: 'up{instance=~\"$target\"} == 0'\n- alert: SlurmNodeDrained\n  labels: {node: $targets}\n- cloudwatch_alarm: training-throughput\n- name: fleet\n  promql: 'x > 0.02'\n",
        );
        let targets = vec!["ip-10-1-0-11".to_owned(), "ip-10-1-0-12".to_owned()];
        let planned = plan(&when, &targets);
        let names: Vec<&str> = planned.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "promql-1",
                "SlurmNodeDrained",
                "training-throughput",
                "fleet"
            ]
        );
        assert_eq!(
            planned[0].describe(),
            "promql `up{instance=~\"(?:ip-10-1-0-11|ip-10-1-0-12)\"} == 0`"
        );
        let Kind::Monitoring(expect::Kind::Alert { labels, .. }) = &planned[1].kind else {
            panic!("not an alert");
        };
        assert_eq!(labels["node"], "(?:ip-10-1-0-11|ip-10-1-0-12)");
        assert_eq!(
            planned[2].describe(),
            "CloudWatch alarm training-throughput"
        );
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + s, 0).unwrap()
    }

    #[test]
    fn an_unread_condition_is_said_once_and_stops_the_run_past_the_limit() {
        let mut blind = Blindness::default();
        let limit = std::time::Duration::from_secs(60);
        let unread = Reading {
            holds: None,
            unread: vec![("fleet".into(), "connection refused".into())],
        };
        let (new, stop) = blind.take(&unread, t(0), limit);
        assert_eq!(new.len(), 1);
        assert_eq!(stop, None);
        let (new, stop) = blind.take(&unread, t(30), limit);
        assert!(new.is_empty());
        assert_eq!(stop, None);
        // Read again: the streak ends, and a new one starts from zero.
        let (_, stop) = blind.take(&Reading::default(), t(40), limit);
        assert_eq!(stop, None);
        let (new, _) = blind.take(&unread, t(50), limit);
        assert_eq!(new.len(), 1);
        let (_, stop) = blind.take(&unread, t(111), limit);
        let stop = stop.unwrap();
        assert!(stop.contains("fleet could not be read for 61s"), "{stop}");
        assert!(stop.contains("connection refused"), "{stop}");
    }

    #[test]
    fn a_held_condition_says_its_name_what_and_value() {
        let held = Held {
            name: "fleet".into(),
            what: "promql `x > 0.02`".into(),
            value: "{} = 0.05".into(),
        };
        assert_eq!(
            held.words(),
            "stop condition fleet holds: promql `x > 0.02`: {} = 0.05"
        );
    }
}
