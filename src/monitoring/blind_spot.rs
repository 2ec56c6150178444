//! Why the monitoring never saw the fault on a target: what Prometheus's
//! own `up` series say of the scrapes that name that node during the watch.
//! A blind spot has three usual causes, and this tells them apart: nothing
//! scrapes the node at all, an exporter on it was down (`up == 0`) while
//! the fault happened, or every scrape was up and the condition or alert
//! rule itself did not match. Pure readers of Prometheus's answers; the
//! requests are made by `Monitor::explain_blind_spots`.

use serde_json::Value;

/// One scrape (one `up` series) that names the node.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The scrape's `job` label (`dcgm`, `node`, ...).
    pub job: String,
    /// The scrape's `instance` label (`10.1.0.11:9400`).
    pub instance: String,
    /// The lowest `up` over the watch: 0 when it failed at least once.
    pub min_up: f64,
}

/// When a scrape was down, from a `query_range` of its `up`, in seconds
/// since the injection.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    /// The first step at which `up` was 0.
    pub from: f64,
    /// The last step at which `up` was 0.
    pub until: f64,
    /// Steps at 0 times the step: about how long it was down.
    pub seconds: f64,
    /// Still down at the last step asked (or gone from Prometheus).
    pub to_the_end: bool,
}

/// Whether a series' labels name `node`: a label value that is the node's
/// name or address, alone, with a port (`10.1.0.11:9400`) or as the first
/// part of a domain name (`ip-10-1-0-11.ec2.internal`). Setups name the
/// node in different labels (`instance`, `node`, `Hostname`, `nodename`),
/// so every label is looked at.
pub fn names_node(labels: &Value, node: &str, address: Option<&str>) -> bool {
    let Some(labels) = labels.as_object() else {
        return false;
    };
    let names = |value: &str, name: &str| {
        value == name
            || value
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('.'))
    };
    labels
        .iter()
        .filter(|(key, _)| *key != "__name__")
        .filter_map(|(_, value)| value.as_str())
        .any(|value| names(value, node) || address.is_some_and(|a| names(value, a)))
}

/// Reads the answer to `min_over_time(up[W])` (an instant vector): the
/// scrapes whose labels name `node`, sorted by job and instance. `Err` is
/// Prometheus's own error or a body that is not an answer.
pub fn scrapes_of(body: &[u8], node: &str, address: Option<&str>) -> Result<Vec<Scrape>, String> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if answer["status"] != "success" {
        return Err(format!(
            "Prometheus says: {}",
            answer["error"].as_str().unwrap_or("(no message)")
        ));
    }
    let mut scrapes: Vec<Scrape> = answer["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|series| names_node(&series["metric"], node, address))
        .map(|series| Scrape {
            job: label(&series["metric"], "job"),
            instance: label(&series["metric"], "instance"),
            min_up: series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
        })
        .collect();
    scrapes.sort_by(|a, b| (&a.job, &a.instance).cmp(&(&b.job, &b.instance)));
    Ok(scrapes)
}

fn label(labels: &Value, key: &str) -> String {
    labels[key].as_str().unwrap_or_default().to_owned()
}

/// Reads a `query_range` answer for one scrape's `up` from `start` to `end`
/// (Unix seconds, every `step` seconds): when it was 0. A series that stops
/// before `end` (its target dropped from discovery) counts as down to the
/// end. `None` when it was never 0.
pub fn down_of(body: &[u8], start: f64, end: f64, step: f64) -> Option<Down> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let values = answer["data"]["result"].as_array()?.first()?["values"]
        .as_array()?
        .iter()
        .filter_map(|point| {
            let t = point[0].as_f64()?;
            let v: f64 = point[1].as_str()?.parse().ok()?;
            Some((t, v))
        })
        .collect::<Vec<_>>();
    let zeros: Vec<f64> = values
        .iter()
        .filter(|(_, v)| *v == 0.0)
        .map(|(t, _)| *t)
        .collect();
    let last = values.last().map(|(t, _)| *t);
    let gone = last.is_some_and(|t| t + step * 2.0 < end);
    let (first, latest) = match (zeros.first(), zeros.last()) {
        (Some(first), Some(latest)) => (*first, *latest),
        _ if gone => {
            let t = last.unwrap_or(start);
            return Some(Down {
                from: t - start,
                until: end - start,
                seconds: end - t,
                to_the_end: true,
            });
        }
        _ => return None,
    };
    Some(Down {
        from: first - start,
        until: latest - start,
        seconds: zeros.len() as f64 * step,
        to_the_end: gone || last.is_some_and(|t| t <= latest),
    })
}

/// Says why `node` went unseen, from its scrapes and when each was down
/// (`downs[i]` belongs to `scrapes[i]`), over a watch of `watched` seconds
/// asked every `step` seconds. What matters is the fault's time: a scrape
/// down at the injection (its first step) is the cause ("`up` was 0 for
/// its dcgm scrape (10.1.0.11:9400) from the injection to +8.0s"); one up
/// then and down later went down with the node (a replace or reboot), so
/// the monitoring had its chance and the condition did not match.
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
    let until = |down: &Down| {
        if down.to_the_end {
            "to the end of the watch".to_owned()
        } else {
            format!("to +{:.1}s", down.until)
        }
    };
    let at_injection: Vec<String> = scrapes
        .iter()
        .zip(downs)
        .filter_map(|(scrape, down)| {
            let down = down.as_ref().filter(|d| d.from < step)?;
            Some(format!(
                "`up` was 0 for its {} scrape ({}) from the injection {} (about {:.0}s of {:.0}s)",
                scrape.job,
                scrape.instance,
                until(down),
                down.seconds,
                watched
            ))
        })
        .collect();
    if !at_injection.is_empty() {
        return at_injection.join("; ");
    }
    let each: Vec<String> = scrapes
        .iter()
        .zip(downs)
        .map(|(scrape, down)| match down {
            Some(down) => format!(
                "{} ({}) up for {:.1}s, then 0 from +{:.1}s {}",
                scrape.job,
                scrape.instance,
                down.from,
                down.from,
                until(down)
            ),
            // Down between the steps asked: `min_over_time` saw it.
            None if scrape.min_up < 1.0 => format!(
                "{} ({}) 0 at least once between the steps asked",
                scrape.job, scrape.instance
            ),
            None => format!("{} ({}) up throughout", scrape.job, scrape.instance),
        })
        .collect();
    format!(
        "its scrapes were up when the fault was injected ({}): the exporters answered, so the metric, its labels or the alert rule did not match the fault, or the scrapes were too few to catch it",
        each.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_is_named_by_any_label_with_or_without_port_or_domain() {
        let at = |labels: Value| names_node(&labels, "ip-10-1-0-11", Some("10.1.0.11"));
        assert!(at(json!({"instance": "10.1.0.11:9400", "job": "dcgm"})));
        assert!(at(json!({"instance": "x:1", "node": "ip-10-1-0-11"})));
        assert!(at(json!({"Hostname": "ip-10-1-0-11.ec2.internal"})));
        assert!(at(json!({"nodename": "10.1.0.11"})));
        // Not a node whose name merely starts the same.
        assert!(!at(json!({"instance": "10.1.0.110:9400"})));
        assert!(!at(json!({"node": "ip-10-1-0-111"})));
        assert!(!at(json!({"__name__": "ip-10-1-0-11"})));
    }

    #[test]
    fn scrapes_are_read_from_min_over_time_of_up() {
        let body = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"job": "node", "instance": "10.1.0.11:9100", "node": "ip-10-1-0-11"}, "value": [1.0, "1"]},
            {"metric": {"job": "dcgm", "instance": "10.1.0.11:9400", "node": "ip-10-1-0-11"}, "value": [1.0, "0"]},
            {"metric": {"job": "dcgm", "instance": "10.1.0.12:9400", "node": "ip-10-1-0-12"}, "value": [1.0, "0"]}
        ]}});
        let scrapes = scrapes_of(
            body.to_string().as_bytes(),
            "ip-10-1-0-11",
            Some("10.1.0.11"),
        )
        .unwrap();
        assert_eq!(
            scrapes,
            vec![
                Scrape {
                    job: "dcgm".into(),
                    instance: "10.1.0.11:9400".into(),
                    min_up: 0.0
                },
                Scrape {
                    job: "node".into(),
                    instance: "10.1.0.11:9100".into(),
                    min_up: 1.0
                },
            ]
        );
        let refused = json!({"status": "error", "error": "bad"}).to_string();
        assert!(scrapes_of(refused.as_bytes(), "n", None).is_err());
    }

    fn range(values: &[(f64, &str)]) -> Vec<u8> {
        let values: Vec<Value> = values.iter().map(|(t, v)| json!([t, v])).collect();
        json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "dcgm"}, "values": values}
        ]}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn down_spans_are_read_from_the_range_of_up() {
        // Down from the injection, back at +3 s: a replaced node's exporter.
        let body = range(&[
            (100.0, "0"),
            (101.0, "0"),
            (102.0, "0"),
            (103.0, "1"),
            (104.0, "1"),
        ]);
        assert_eq!(
            down_of(&body, 100.0, 104.0, 1.0),
            Some(Down {
                from: 0.0,
                until: 2.0,
                seconds: 3.0,
                to_the_end: false
            })
        );
        // Down to the last step.
        let body = range(&[(100.0, "1"), (101.0, "0"), (102.0, "0")]);
        let down = down_of(&body, 100.0, 102.0, 1.0).unwrap();
        assert!(down.to_the_end);
        assert_eq!(down.from, 1.0);
        // Up throughout.
        let body = range(&[(100.0, "1"), (101.0, "1")]);
        assert_eq!(down_of(&body, 100.0, 101.0, 1.0), None);
        // Gone from Prometheus at +1 s: its target dropped from discovery.
        let body = range(&[(100.0, "1"), (101.0, "1")]);
        let down = down_of(&body, 100.0, 110.0, 1.0).unwrap();
        assert!(down.to_the_end);
        assert_eq!(down.from, 1.0);
    }

    #[test]
    fn the_three_causes_are_told_apart() {
        let none = explain("ip-10-1-0-11", Some("10.1.0.11"), &[], &[], 20.0, 1.0);
        assert!(
            none.contains("no `up` series naming ip-10-1-0-11 or 10.1.0.11"),
            "{none}"
        );
        let dcgm = Scrape {
            job: "dcgm".into(),
            instance: "10.1.0.11:9400".into(),
            min_up: 0.0,
        };
        let node = Scrape {
            job: "node".into(),
            instance: "10.1.0.11:9100".into(),
            min_up: 1.0,
        };
        // The exporter was down when the fault came: the cause.
        let down = Down {
            from: 0.0,
            until: 8.0,
            seconds: 9.0,
            to_the_end: false,
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
        // Up at the injection, down later with the node (a replace): the
        // monitoring had its chance; the condition did not match.
        let later = Down {
            from: 4.0,
            until: 9.0,
            seconds: 6.0,
            to_the_end: false,
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
            "its scrapes were up when the fault was injected (dcgm (10.1.0.11:9400) up for 4.0s, then 0 from +4.0s to +9.0s; node (10.1.0.11:9100) up throughout): the exporters answered, so the metric, its labels or the alert rule did not match the fault, or the scrapes were too few to catch it"
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
