//! Telling people how a run ended (`notify:` in the profile): a webhook
//! per entry, with a JSON body Slack's incoming webhooks and Teams'
//! connectors both show (`text`, Markdown-ish) and the run's facts for
//! machines under `hpchaos`. Sent once the reports are written: every run
//! (`on: end`), a run that did not pass (`on: failure`), and always a run
//! whose rollback left something applied, with the report's path and the
//! `recover` command. Each send is retried with exponential backoff
//! (the `backon` crate) within a bound, and never changes the run's exit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::profile::{Notify, NotifyOn};
use crate::report::{Report, Status};

/// Attempts per webhook (the first and its retries).
pub const ATTEMPTS: usize = 4;

/// Whether `hook` is told of `report`.
pub fn due(hook: &Notify, report: &Report) -> bool {
    report.recover_command.is_some()
        || match hook.on {
            NotifyOn::End => true,
            NotifyOn::Failure => report.status != Status::Passed,
        }
}

/// What a notice says, whatever the webhook's format: a title, lines for
/// people, a link to the report (if any) and the facts for machines.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
    /// The run's folder (its `report.md` is in it), if there is one.
    pub run_dir: Option<String>,
    /// The facts under `hpchaos`: always the same shape (`run_id`,
    /// `cluster`, `suite`, `status`, `scenarios` as `{name, status,
    /// reason}`, `report`, `still_applied`, `recover`).
    pub facts: Value,
}

/// The notice of a run that ended (`run_dir`: its folder).
pub fn notice(report: &Report, run_dir: &str) -> Notice {
    let what = report
        .suite
        .clone()
        .or_else(|| report.scenarios.first().map(|s| s.name.clone()))
        .unwrap_or_else(|| "run".to_owned());
    let mut lines = Vec::new();
    for scenario in &report.scenarios {
        let why = if scenario.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", scenario.reason)
        };
        lines.push(format!(
            "- {} {}{why}",
            scenario.name,
            scenario.status.as_str()
        ));
    }
    if let Some(command) = &report.recover_command {
        lines.push(format!(
            "ROLLBACK LEFT CHANGES APPLIED: {}; undo them with: {command}",
            report.still_applied.join("; ")
        ));
    }
    Notice {
        title: format!(
            "hpchaos: {what} on {} {}",
            report.cluster,
            report.status.as_str().to_uppercase()
        ),
        lines,
        run_dir: Some(run_dir.to_owned()),
        facts: json!({
            "run_id": report.run_id,
            "cluster": report.cluster,
            "suite": report.suite,
            "status": report.status.as_str(),
            "scenarios": report.scenarios.iter().map(|s| json!({
                "name": s.name,
                "status": s.status.as_str(),
                "reason": s.reason,
            })).collect::<Vec<_>>(),
            "report": format!("{run_dir}/report.md"),
            "still_applied": report.still_applied,
            "recover": report.recover_command,
        }),
    }
}

/// The notice of a run refused before any change (no report).
pub fn refused(cluster: &str, scenarios: &[String], why: &str) -> Notice {
    Notice {
        title: format!(
            "hpchaos: {} on {cluster} REFUSED before any change",
            scenarios.join(", ")
        ),
        lines: vec![why.to_owned()],
        run_dir: None,
        facts: json!({
            "run_id": Value::Null,
            "cluster": cluster,
            "suite": Value::Null,
            "status": "refused",
            "scenarios": scenarios.iter().map(|s| json!({
                "name": s,
                "status": "refused",
                "reason": why,
            })).collect::<Vec<_>>(),
            "report": Value::Null,
            "still_applied": Vec::<String>::new(),
            "recover": Value::Null,
        }),
    }
}

/// Where a webhook's reader finds the report: `<report_url>/<run folder
/// name>/report.md` when the hook says where runs are published, else
/// the path on this machine.
fn report_link(hook: &Notify, run_dir: &str) -> String {
    match &hook.report_url {
        Some(base) => {
            let name = std::path::Path::new(run_dir)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{}/{name}/report.md", base.trim_end_matches('/'))
        }
        None => format!("{run_dir}/report.md"),
    }
}

/// The body `hook` takes: Slack's (`text`, with the facts under
/// `hpchaos`) or an Adaptive Card for Teams' Workflows webhooks.
pub fn body(hook: &Notify, notice: &Notice) -> Value {
    let link = notice.run_dir.as_deref().map(|d| report_link(hook, d));
    let mut facts = notice.facts.clone();
    if let Some(link) = &link {
        facts["report"] = json!(link);
    }
    match hook.format {
        crate::profile::NotifyFormat::Slack => {
            let mut text = vec![notice.title.clone()];
            text.extend(notice.lines.iter().cloned());
            if let Some(link) = &link {
                text.push(format!("report: {link}"));
            }
            json!({"text": text.join("\n"), "hpchaos": facts})
        }
        crate::profile::NotifyFormat::Teams => {
            let mut blocks = vec![json!({
                "type": "TextBlock", "text": notice.title, "weight": "Bolder", "wrap": true
            })];
            blocks.extend(
                notice
                    .lines
                    .iter()
                    .map(|l| json!({"type": "TextBlock", "text": l, "wrap": true})),
            );
            let mut card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": blocks,
            });
            if let Some(link) = &link {
                if link.starts_with("http") {
                    card["actions"] =
                        json!([{"type": "Action.OpenUrl", "title": "Report", "url": link}]);
                } else if let Some(body) = card["body"].as_array_mut() {
                    body.push(json!({"type": "TextBlock", "text": format!("report: {link}"), "wrap": true}));
                }
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": card,
                }],
                "hpchaos": facts,
            })
        }
    }
}

/// How one webhook was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub url: String,
    pub attempts: usize,
    /// `Ok(status)` or the last error.
    pub result: Result<u16, String>,
}

/// Posts `body` to `hook`, retrying a failed attempt (no answer, or a
/// status other than 2xx: 429 and 5xx are what webhooks answer under
/// load) with backoff from `first_delay`, doubling, [`ATTEMPTS`] in all.
pub async fn send(
    http: &reqwest::Client,
    hook: &Notify,
    body: &Value,
    first_delay: Duration,
) -> Sent {
    use backon::{ExponentialBuilder, Retryable};
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let post = || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = http
            .post(&hook.webhook)
            .timeout(hook.timeout.as_std())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = answer.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            let text = answer.text().await.unwrap_or_default();
            Err(format!("HTTP {}: {}", status.as_u16(), text.trim()))
        }
    };
    let result = post
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(first_delay)
                .with_factor(2.0)
                .with_max_times(ATTEMPTS - 1),
        )
        .sleep(tokio::time::sleep)
        .await;
    Sent {
        url: hook.webhook.clone(),
        attempts: attempts.into_inner(),
        result,
    }
}

/// The most a notice may take, all attempts and backoff included: past it
/// the run ends, saying the webhook was not told.
pub const BUDGET: Duration = Duration::from_secs(20);

/// Sends `notice` to each of `hooks`, concurrently, each within [`BUDGET`].
async fn tell(hooks: Vec<&Notify>, notice: &Notice) -> Vec<Sent> {
    let http = reqwest::Client::new();
    let sends = hooks.into_iter().map(|h| {
        let http = &http;
        async move {
            let body = body(h, notice);
            match tokio::time::timeout(BUDGET, send(http, h, &body, Duration::from_secs(1))).await {
                Ok(sent) => sent,
                Err(_) => Sent {
                    url: h.webhook.clone(),
                    attempts: 0,
                    result: Err(format!(
                        "no answer within {}s, all attempts included: given up so the run ends",
                        BUDGET.as_secs()
                    )),
                },
            }
        }
    });
    futures::future::join_all(sends).await
}

/// Tells every webhook due of `report`, concurrently.
pub async fn notify_all(hooks: &[Notify], report: &Report, run_dir: &str) -> Vec<Sent> {
    let notice = notice(report, run_dir);
    tell(hooks.iter().filter(|h| due(h, report)).collect(), &notice).await
}

/// Tells every webhook (a refusal is a failure, whatever `on` says)
/// that a run of `scenarios` on `cluster` was refused before any change,
/// and why; there is no report.
pub async fn refused_all(
    hooks: &[Notify],
    cluster: &str,
    scenarios: &[String],
    why: &str,
) -> Vec<Sent> {
    let notice = refused(cluster, scenarios, why);
    tell(hooks.iter().collect(), &notice).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, left: bool) -> Report {
        let journal = crate::journal::Journal::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/journals/passed.jsonl"
        )))
        .unwrap();
        let mut report = crate::report::build(&journal);
        report.status = status;
        report.cluster = "lab".into();
        if left {
            report.still_applied =
                vec!["scontrol update nodename=ip-10-1-0-12 state=resume".into()];
            report.recover_command =
                Some("hpchaos recover --cluster lab.yaml /r/journal.jsonl".into());
        }
        report
    }

    fn hook(on: NotifyOn) -> Notify {
        Notify {
            webhook: "http://127.0.0.1:9/hook".into(),
            on,
            timeout: crate::duration::Duration(Duration::from_secs(1)),
            format: crate::profile::NotifyFormat::Slack,
            report_url: None,
        }
    }

    #[test]
    fn failures_are_told_passes_only_on_end_and_a_rollback_left_applied_always() {
        assert!(!due(
            &hook(NotifyOn::Failure),
            &report(Status::Passed, false)
        ));
        assert!(due(&hook(NotifyOn::End), &report(Status::Passed, false)));
        for status in [
            Status::Failed,
            Status::Aborted,
            Status::Error,
            Status::Interrupted,
        ] {
            assert!(
                due(&hook(NotifyOn::Failure), &report(status, false)),
                "{status:?}"
            );
        }
        assert!(due(&hook(NotifyOn::Failure), &report(Status::Passed, true)));
    }

    #[test]
    fn the_body_has_text_for_people_and_facts_for_machines() {
        let notice = notice(&report(Status::Failed, true), "/r/20261203T080000-nightly");
        let said = body(&hook(NotifyOn::Failure), &notice);
        let text = said["text"].as_str().unwrap();
        assert!(text.starts_with("hpchaos: "), "{text}");
        assert!(text.contains("on lab FAILED"), "{text}");
        assert!(
            text.contains("report: /r/20261203T080000-nightly/report.md"),
            "{text}"
        );
        assert!(
            text.contains("ROLLBACK LEFT CHANGES APPLIED: scontrol update nodename=ip-10-1-0-12 state=resume; undo them with: hpchaos recover"),
            "{text}"
        );
        assert_eq!(said["hpchaos"]["status"], "failed");
        assert_eq!(
            said["hpchaos"]["recover"],
            "hpchaos recover --cluster lab.yaml /r/journal.jsonl"
        );
        // Published reports are linked; Teams gets an Adaptive Card.
        let mut teams = hook(NotifyOn::Failure);
        teams.format = crate::profile::NotifyFormat::Teams;
        teams.report_url = Some("https://ci.example.com/chaos/".into());
        let card = body(&teams, &notice);
        assert_eq!(card["type"], "message");
        let content = &card["attachments"][0]["content"];
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(
            content["actions"][0]["url"],
            "https://ci.example.com/chaos/20261203T080000-nightly/report.md"
        );
        assert_eq!(card["hpchaos"]["report"], content["actions"][0]["url"]);
        // A refusal has the same facts' shape.
        let refusal = body(
            &hook(NotifyOn::Failure),
            &refused("lab", &["t-idle".into()], "the cluster is held"),
        );
        for key in [
            "run_id",
            "cluster",
            "suite",
            "status",
            "scenarios",
            "report",
            "still_applied",
            "recover",
        ] {
            assert!(refusal["hpchaos"].get(key).is_some(), "{key}: {refusal}");
            assert!(said["hpchaos"].get(key).is_some(), "{key}: {said}");
        }
        assert_eq!(refusal["hpchaos"]["scenarios"][0]["name"], "t-idle");
        assert_eq!(refusal["hpchaos"]["scenarios"][0]["status"], "refused");
    }

    #[tokio::test]
    async fn a_webhook_failing_twice_is_retried_and_told_on_the_third() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for answer in ["503 Service Unavailable", "429 Too Many Requests", "200 OK"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Read the headers and the body (Content-Length).
                loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if rest.len() >= length {
                            bodies.push(rest.to_owned());
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {answer}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
            bodies
        });
        let mut hook = hook(NotifyOn::Failure);
        hook.webhook = url;
        let sent = send(
            &reqwest::Client::new(),
            &hook,
            &json!({"text": "x"}),
            Duration::from_millis(10),
        )
        .await;
        assert_eq!(sent.attempts, 3);
        assert_eq!(sent.result, Ok(200));
        let bodies = server.await.unwrap();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b == r#"{"text":"x"}"#), "{bodies:?}");
    }

    #[tokio::test]
    async fn a_webhook_that_never_answers_gives_up_after_every_attempt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let mut hook = hook(NotifyOn::Failure);
        hook.webhook = url;
        let sent = send(
            &reqwest::Client::new(),
            &hook,
            &json!({}),
            Duration::from_millis(5),
        )
        .await;
        assert_eq!(sent.attempts, ATTEMPTS);
        assert!(sent.result.is_err());
    }
}
