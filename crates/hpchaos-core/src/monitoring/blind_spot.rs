//! Why the monitoring never saw the fault on a target: what Prometheus's
//! own `up` series say of the scrapes that name that node during the watch.
//! A blind spot has three usual causes, and this tells them apart: nothing
//! scrapes the node at all, an exporter on it was down (`up == 0`) or gone
//! from Prometheus when the fault happened, or its scrapes were up then and
//! the condition or alert rule did not match (or the scrapes were too few
//! to catch it). Pure readers of Prometheus's answers; the requests are
//! made by `Monitor::explain_blind_spots`.

use std::collections::BTreeMap;

use serde_json::Value;

/// One scrape (one `up` series) that names the node.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The scrape's `job` label (`dcgm`, `node`, ...).
    pub job: String,
    /// The scrape's `instance` label (`10.1.0.11:9400`).
    pub instance: String,
    /// Every label of the series, for a selector that matches it alone.
    pub labels: BTreeMap<String, String>,
    /// The lowest `up` over the watch: 0 when it failed at least once.
    pub min_up: f64,
    /// Seconds between its samples over the watch (the watch divided by
    /// the samples Prometheus holds); `None` with fewer than two.
    pub interval: Option<f64>,
    /// Whether Prometheus still has the series at the end of the watch (a
    /// target dropped from discovery is marked stale at once).
    pub present_at_end: bool,
}

impl Scrape {
    /// A PromQL selector for exactly this series: `up{every label}`.
    pub fn selector(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", super::expect::escape_label_value(v)))
            .collect();
        format!("up{{{}}}", labels.join(","))
    }

    /// How late after the injection a first failed scrape still counts as
    /// "down at the injection": one and a half scrape intervals (at least
    /// `step`), since a target down from before the fault shows it only at
    /// its next scrape.
    pub fn tolerance(&self, step: f64) -> f64 {
        self.interval.map_or(step, |i| (1.5 * i).max(step))
    }
}

/// What a `query_range` of one scrape's `up` showed, in seconds since the
/// injection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Down {
    /// When `up` was 0: the first and last such step and about how long.
    pub zero: Option<Span>,
    /// The series stopped here (its target dropped from discovery, or the
    /// instance gone): the step after its last sample.
    pub gone_at: Option<f64>,
}

/// A run of steps at which `up` was 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The first step at 0.
    pub from: f64,
    /// The last step at 0.
    pub until: f64,
    /// Steps at 0 times the step.
    pub seconds: f64,
    /// Still 0 at the series' last sample.
    pub to_its_end: bool,
}

/// Whether a series' labels name `node`: a label value that is the node's
/// name or address, alone, with a port (`10.1.0.11:9400`) or as the first
/// part of a domain name (`ip-10-1-0-11.ec2.internal`). Setups name the
/// node in different labels (`instance`, `node`, `Hostname`, `nodename`),
/// so every label is looked at.
pub fn names_node(labels: &Labels, node: &str, address: Option<&str>) -> bool {
    let names = |value: &str, name: &str| {
        value == name
            || value
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('.'))
    };
    labels
        .iter()
        .filter(|(key, _)| *key != "__name__")
        .any(|(_, value)| names(value, node) || address.is_some_and(|a| names(value, a)))
}

/// A series' labels (without `__name__`).
pub type Labels = BTreeMap<String, String>;

/// The series of an instant-vector answer, keyed by their labels, with
/// their values. `Err` is Prometheus's own error or a body that is not an
/// answer.
fn vector(body: &[u8]) -> Result<Vec<(Labels, f64)>, super::expect::AnswerError> {
    let answer = super::expect::prometheus_answer(body)?;
    Ok(answer["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect())
}

/// The answers Prometheus gave at the end of a watch of `watched` seconds:
/// `min_over_time(up[W])`, `count_over_time(up[W])` and `up`.
pub struct UpAnswers<'a> {
    pub min: &'a [u8],
    pub count: &'a [u8],
    pub now: &'a [u8],
    pub watched: f64,
}

/// Every scrape of the answers, read once for all targets, sorted by job
/// and instance, with its lowest `up`, interval and presence at the end.
/// `Err` is Prometheus's own error or a body that is not an answer.
pub fn read_scrapes(answers: &UpAnswers) -> Result<Vec<Scrape>, super::expect::AnswerError> {
    let counts: BTreeMap<_, _> = vector(answers.count)?.into_iter().collect();
    let present: std::collections::BTreeSet<Labels> =
        vector(answers.now)?.into_iter().map(|(l, _)| l).collect();
    let mut scrapes: Vec<Scrape> = vector(answers.min)?
        .into_iter()
        .map(|(labels, min_up)| Scrape {
            job: labels.get("job").cloned().unwrap_or_default(),
            instance: labels.get("instance").cloned().unwrap_or_default(),
            interval: counts
                .get(&labels)
                .filter(|n| **n >= 2.0)
                .map(|n| answers.watched / n),
            present_at_end: present.contains(&labels),
            labels,
            min_up,
        })
        .collect();
    scrapes.sort_by(|a, b| (&a.job, &a.instance).cmp(&(&b.job, &b.instance)));
    Ok(scrapes)
}

/// The scrapes of `all` whose labels name `node` (see [`names_node`]).
pub fn scrapes_of(all: &[Scrape], node: &str, address: Option<&str>) -> Vec<Scrape> {
    all.iter()
        .filter(|scrape| names_node(&scrape.labels, node, address))
        .cloned()
        .collect()
}

/// Reads a `query_range` answer for one scrape's `up` from `start` to `end`
/// (Unix seconds, every `step` seconds): when it was 0 and whether its
/// series stopped before `end`. Several series (the selector matched more
/// than one) are read as one, step by step.
pub fn down_of(body: &[u8], start: f64, end: f64, step: f64) -> Down {
    let answer: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut points: Vec<(f64, f64)> = answer["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["values"].as_array().into_iter().flatten())
        .filter_map(|point| {
            let t = point[0].as_f64()?;
            let v: f64 = point[1].as_str()?.parse().ok()?;
            Some((t, v))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let zeros: Vec<f64> = points
        .iter()
        .filter(|(_, v)| *v == 0.0)
        .map(|(t, _)| *t)
        .collect();
    let last = points.last().map(|(t, _)| *t);
    let gone_at = match last {
        Some(t) if t + step * 1.5 < end => Some(t + step - start),
        None => Some(0.0),
        _ => None,
    };
    let zero = match (zeros.first(), zeros.last()) {
        (Some(first), Some(latest)) => Some(Span {
            from: first - start,
            until: latest - start,
            seconds: zeros.len() as f64 * step,
            to_its_end: last.is_some_and(|t| t <= *latest),
        }),
        _ => None,
    };
    Down { zero, gone_at }
}

/// Says why `node` went unseen, from its scrapes and what each did
/// (`downs[i]` belongs to `scrapes[i]`; `None`: up and present
/// throughout), over a watch of `watched` seconds asked every `step`
/// seconds. What matters is the fault's time: a scrape down or gone at the
/// injection (within its `tolerance`) is the cause ("`up` was 0 for its
/// dcgm scrape (10.1.0.11:9400) from the injection to +8.0s"); one up then
/// and down later (with a replaced node) had its chance, and how many
/// scrapes it had is said.
pub fn explain(
    node: &str,
    address: Option<&str>,
    scrapes: &[Scrape],
    downs: &[Option<Down>],
    watched: f64,
    step: f64,
) -> String {
    if scrapes.is_empty() {
        let also = address.map(|a| format!(" or {a}")).unwrap_or_default();
        return format!(
            "Prometheus has no `up` series naming {node}{also}: nothing scrapes it (its exporters are not in the scrape configuration, or their labels do not name the node)"
        );
    }
    let end_of = |span: &Span, down: &Down| match (span.to_its_end, down.gone_at) {
        (true, Some(gone)) => format!("until its series stopped at +{gone:.1}s"),
        (true, None) => "to the end of the watch".to_owned(),
        (false, _) => format!("to +{:.1}s", span.until),
    };
    let at_injection: Vec<String> = scrapes
        .iter()
        .zip(downs)
        .filter_map(|(scrape, down)| {
            let down = down.as_ref()?;
            let tolerance = scrape.tolerance(step);
            match (&down.zero, down.gone_at) {
                (Some(span), _) if span.from < tolerance => Some(format!(
                    "`up` was 0 for its {} scrape ({}) from the injection {} (about {:.0}s of {:.0}s)",
                    scrape.job,
                    scrape.instance,
                    end_of(span, down),
                    span.seconds,
                    watched
                )),
                (_, Some(gone)) if gone < tolerance => Some(format!(
                    "its {} scrape ({}) was gone from Prometheus from the injection on (its target dropped from discovery)",
                    scrape.job, scrape.instance
                )),
                _ => None,
            }
        })
        .collect();
    if !at_injection.is_empty() {
        return at_injection.join("; ");
    }
    let each: Vec<String> = scrapes
        .iter()
        .zip(downs)
        .map(|(scrape, down)| {
            let name = format!("{} ({})", scrape.job, scrape.instance);
            let scrapes_in = |seconds: f64| match scrape.interval {
                Some(i) if i > 0.0 => format!(" (about {:.0} scrapes)", (seconds / i).floor()),
                _ => String::new(),
            };
            match down {
                Some(down) => match (&down.zero, down.gone_at) {
                    (Some(span), _) => format!(
                        "{name} up for {:.1}s{}, then 0 from +{:.1}s {}",
                        span.from,
                        scrapes_in(span.from),
                        span.from,
                        end_of(span, down)
                    ),
                    (None, Some(gone)) => format!(
                        "{name} up for {gone:.1}s{}, then its series stopped",
                        scrapes_in(gone)
                    ),
                    (None, None) => format!("{name} up throughout"),
                },
                // Down between the steps asked: `min_over_time` saw it.
                None if scrape.min_up < 1.0 => {
                    format!("{name} 0 at least once between the steps asked")
                }
                None => format!("{name} up throughout{}", scrapes_in(watched)),
            }
        })
        .collect();
    format!(
        "its scrapes were up when the fault was injected ({}): the exporters answered after it, so the metric, its labels or the alert rule did not match the fault, or the scrapes were too few to catch it",
        each.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_is_named_by_any_label_with_or_without_port_or_domain() {
        let at = |labels: Value| {
            let labels: Labels = serde_json::from_value(labels).unwrap();
            names_node(&labels, "ip-10-1-0-11", Some("10.1.0.11"))
        };
        assert!(at(json!({"instance": "10.1.0.11:9400", "job": "dcgm"})));
        assert!(at(json!({"instance": "x:1", "node": "ip-10-1-0-11"})));
        assert!(at(json!({"Hostname": "ip-10-1-0-11.ec2.internal"})));
        assert!(at(json!({"nodename": "10.1.0.11"})));
        // Not a node whose name merely starts the same.
        assert!(!at(json!({"instance": "10.1.0.110:9400"})));
        assert!(!at(json!({"node": "ip-10-1-0-111"})));
        assert!(!at(json!({"__name__": "ip-10-1-0-11"})));
    }

    fn vector_of(series: &[(Value, &str)]) -> Vec<u8> {
        let result: Vec<Value> = series
            .iter()
            .map(|(m, v)| json!({"metric": m, "value": [1.0, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn scrapes_are_read_with_their_interval_and_presence() {
        let dcgm = json!({"job": "dcgm", "instance": "10.1.0.11:9400", "node": "ip-10-1-0-11"});
        let node = json!({"job": "node", "instance": "10.1.0.11:9100", "node": "ip-10-1-0-11"});
        let other = json!({"job": "dcgm", "instance": "10.1.0.12:9400", "node": "ip-10-1-0-12"});
        let min = vector_of(&[
            (node.clone(), "1"),
            (dcgm.clone(), "0"),
            (other.clone(), "0"),
        ]);
        let count = vector_of(&[(node.clone(), "4"), (dcgm.clone(), "2"), (other, "2")]);
        // The dcgm series is gone at the end (stale).
        let now = vector_of(&[(node, "1")]);
        let answers = UpAnswers {
            min: &min,
            count: &count,
            now: &now,
            watched: 60.0,
        };
        let scrapes = scrapes_of(
            &read_scrapes(&answers).unwrap(),
            "ip-10-1-0-11",
            Some("10.1.0.11"),
        );
        assert_eq!(scrapes.len(), 2);
        assert_eq!(
            (
                scrapes[0].job.as_str(),
                scrapes[0].min_up,
                scrapes[0].interval
            ),
            ("dcgm", 0.0, Some(30.0))
        );
        assert!(!scrapes[0].present_at_end);
        assert_eq!(
            (
                scrapes[1].job.as_str(),
                scrapes[1].interval,
                scrapes[1].present_at_end
            ),
            ("node", Some(15.0), true)
        );
        assert_eq!(
            scrapes[0].selector(),
            r#"up{instance="10.1.0.11:9400",job="dcgm",node="ip-10-1-0-11"}"#
        );
        // A down at +40 s is still "at the injection" with a 30 s interval.
        assert_eq!(scrapes[0].tolerance(1.0), 45.0);
        let refused = json!({"status": "error", "error": "bad"}).to_string();
        let answers = UpAnswers {
            min: refused.as_bytes(),
            count: &count,
            now: &now,
            watched: 60.0,
        };
        assert!(read_scrapes(&answers).is_err());
    }

    fn range(series: &[&[(f64, &str)]]) -> Vec<u8> {
        let result: Vec<Value> = series
            .iter()
            .map(|values| {
                let values: Vec<Value> = values.iter().map(|(t, v)| json!([t, v])).collect();
                json!({"metric": {"job": "dcgm"}, "values": values})
            })
            .collect();
        json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn down_spans_and_gone_series_are_read_from_the_range_of_up() {
        // Down from the injection, back at +3 s: a replaced node's exporter.
        let body = range(&[&[
            (100.0, "0"),
            (101.0, "0"),
            (102.0, "0"),
            (103.0, "1"),
            (104.0, "1"),
        ]]);
        assert_eq!(
            down_of(&body, 100.0, 104.0, 1.0),
            Down {
                zero: Some(Span {
                    from: 0.0,
                    until: 2.0,
                    seconds: 3.0,
                    to_its_end: false
                }),
                gone_at: None
            }
        );
        // Down to the last step.
        let body = range(&[&[(100.0, "1"), (101.0, "0"), (102.0, "0")]]);
        let down = down_of(&body, 100.0, 102.0, 1.0);
        assert!(down.zero.as_ref().unwrap().to_its_end);
        assert_eq!(down.gone_at, None);
        // Up throughout.
        let body = range(&[&[(100.0, "1"), (101.0, "1")]]);
        assert_eq!(down_of(&body, 100.0, 101.0, 1.0), Down::default());
        // Up, then gone at +2 s (the step after its last sample): never 0.
        let down = down_of(&body, 100.0, 110.0, 1.0);
        assert_eq!((down.zero, down.gone_at), (None, Some(2.0)));
        // 0, back to 1, then gone: the 0-span and the gap told apart.
        let body = range(&[&[(100.0, "0"), (101.0, "1"), (102.0, "1")]]);
        let down = down_of(&body, 100.0, 110.0, 1.0);
        assert_eq!(down.zero.as_ref().map(|s| s.to_its_end), Some(false));
        assert_eq!(down.gone_at, Some(3.0));
        // No sample at all in the watch: gone from the start.
        assert_eq!(down_of(&range(&[]), 100.0, 110.0, 1.0).gone_at, Some(0.0));
        // Two series read as one.
        let body = range(&[&[(100.0, "1")], &[(101.0, "0"), (102.0, "0")]]);
        let down = down_of(&body, 100.0, 102.0, 1.0);
        assert_eq!(down.zero.map(|s| (s.from, s.to_its_end)), Some((1.0, true)));
    }

    fn scrape(job: &str, port: u16, min_up: f64, interval: Option<f64>) -> Scrape {
        Scrape {
            job: job.into(),
            instance: format!("10.1.0.11:{port}"),
            labels: BTreeMap::new(),
            min_up,
            interval,
            present_at_end: true,
        }
    }

    #[test]
    fn the_causes_are_told_apart() {
        let none = explain("ip-10-1-0-11", Some("10.1.0.11"), &[], &[], 20.0, 1.0);
        assert!(
            none.contains("no `up` series naming ip-10-1-0-11 or 10.1.0.11"),
            "{none}"
        );
        let dcgm = scrape("dcgm", 9400, 0.0, Some(1.0));
        let node = scrape("node", 9100, 1.0, Some(1.0));
        let span = |from: f64, until: f64, seconds: f64| Span {
            from,
            until,
            seconds,
            to_its_end: false,
        };
        // The exporter was down when the fault came: the cause.
        let down = Down {
            zero: Some(span(0.0, 8.0, 9.0)),
            gone_at: None,
        };
        let said = explain(
            "ip-10-1-0-11",
            None,
            &[dcgm.clone(), node.clone()],
            &[Some(down), None],
            22.4,
            1.0,
        );
        assert_eq!(
            said,
            "`up` was 0 for its dcgm scrape (10.1.0.11:9400) from the injection to +8.0s (about 9s of 22s)"
        );
        // With a 30 s scrape interval, a first failed scrape at +25 s was
        // already down at the injection.
        let slow = scrape("dcgm", 9400, 0.0, Some(30.0));
        let late = Down {
            zero: Some(Span {
                to_its_end: true,
                ..span(25.0, 90.0, 66.0)
            }),
            gone_at: None,
        };
        let said = explain(
            "ip-10-1-0-11",
            None,
            &[slow],
            &[Some(late.clone())],
            90.0,
            1.0,
        );
        assert!(
            said.starts_with("`up` was 0 for its dcgm scrape (10.1.0.11:9400) from the injection to the end of the watch"),
            "{said}"
        );
        // Gone from Prometheus at the injection.
        let gone = Down {
            zero: None,
            gone_at: Some(0.0),
        };
        let said = explain(
            "ip-10-1-0-11",
            None,
            std::slice::from_ref(&dcgm),
            &[Some(gone)],
            20.0,
            1.0,
        );
        assert!(
            said.contains("was gone from Prometheus from the injection on"),
            "{said}"
        );
        // Up at the injection, down later with the node (a replace): the
        // monitoring had its chance; the condition did not match.
        let later = Down {
            zero: Some(span(4.0, 9.0, 6.0)),
            gone_at: None,
        };
        let said = explain(
            "ip-10-1-0-11",
            None,
            &[dcgm.clone(), node.clone()],
            &[Some(later), None],
            18.0,
            1.0,
        );
        assert_eq!(
            said,
            "its scrapes were up when the fault was injected (dcgm (10.1.0.11:9400) up for 4.0s (about 4 scrapes), then 0 from +4.0s to +9.0s; node (10.1.0.11:9100) up throughout (about 18 scrapes)): the exporters answered after it, so the metric, its labels or the alert rule did not match the fault, or the scrapes were too few to catch it"
        );
        // Up, then its series stopped (the old instance dropped).
        let stopped = Down {
            zero: None,
            gone_at: Some(6.0),
        };
        let said = explain(
            "ip-10-1-0-11",
            None,
            std::slice::from_ref(&node),
            &[Some(stopped)],
            20.0,
            1.0,
        );
        assert!(
            said.contains(
                "node (10.1.0.11:9100) up for 6.0s (about 6 scrapes), then its series stopped"
            ),
            "{said}"
        );
        let blinked = explain(
            "ip-10-1-0-11",
            None,
            std::slice::from_ref(&dcgm),
            &[None],
            22.0,
            1.0,
        );
        assert!(
            blinked.contains("dcgm (10.1.0.11:9400) 0 at least once between the steps asked"),
            "{blinked}"
        );
    }
}
