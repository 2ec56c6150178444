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

/// The notice's body: `text` for people, `hpchaos` for machines.
/// `report_dir`: the run's folder (its `report.md`).
pub fn body(report: &Report, report_dir: &str) -> Value {
    let what = report
        .suite
        .clone()
        .or_else(|| report.scenarios.first().map(|s| s.name.clone()))
        .unwrap_or_else(|| "run".to_owned());
    let mut lines = vec![format!(
        "hpchaos: {what} on {} {}",
        report.cluster,
        report.status.as_str().to_uppercase()
    )];
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
    lines.push(format!("report: {report_dir}/report.md"));
    json!({
        "text": lines.join("\n"),
        "hpchaos": {
            "run_id": report.run_id,
            "cluster": report.cluster,
            "suite": report.suite,
            "status": report.status.as_str(),
            "scenarios": report.scenarios.iter().map(|s| json!({
                "name": s.name,
                "status": s.status.as_str(),
                "reason": s.reason,
            })).collect::<Vec<_>>(),
            "report": format!("{report_dir}/report.md"),
            "still_applied": report.still_applied,
            "recover": report.recover_command,
        }
    })
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

/// Tells every webhook due of `report`, concurrently.
pub async fn notify_all(hooks: &[Notify], report: &Report, report_dir: &str) -> Vec<Sent> {
    let http = reqwest::Client::new();
    let body = body(report, report_dir);
    let sends = hooks
        .iter()
        .filter(|h| due(h, report))
        .map(|h| send(&http, h, &body, Duration::from_secs(1)));
    futures::future::join_all(sends).await
}

/// Tells every webhook (a refusal is a failure, whatever `on` says)
/// that a run of `what` on `cluster` was refused before any change, and
/// why; there is no report.
pub async fn refused_all(hooks: &[Notify], cluster: &str, what: &str, why: &str) -> Vec<Sent> {
    let http = reqwest::Client::new();
    let body = json!({
        "text": format!("hpchaos: {what} on {cluster} REFUSED before any change: {why}"),
        "hpchaos": {
            "cluster": cluster,
            "status": "refused",
            "scenarios": what,
            "reason": why,
        }
    });
    let sends = hooks
        .iter()
        .map(|h| send(&http, h, &body, Duration::from_secs(1)));
    futures::future::join_all(sends).await
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
        let body = body(&report(Status::Failed, true), "/r/20261203T080000-nightly");
        let text = body["text"].as_str().unwrap();
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
        assert_eq!(body["hpchaos"]["status"], "failed");
        assert_eq!(
            body["hpchaos"]["recover"],
            "hpchaos recover --cluster lab.yaml /r/journal.jsonl"
        );
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
