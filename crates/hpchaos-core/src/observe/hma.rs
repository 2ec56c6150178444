//! HyperPod's Health Monitoring Agent's record as the watch reads it: the
//! targets' HMA streams in CloudWatch Logs (`cluster/hma.rs`), every
//! `poll.sagemaker`, each read in a task of its own (a throttled API
//! delays only this source). Each detection is said with HMA's own `ts`
//! as its source time: the earliest witness of detect. Without access to
//! the log group (or with no such group) the run says so once and stops
//! reading it: detect is then timed from Slurm's mark.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::cluster::hma::{HmaLog, LogEvent, LogsError, decode};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::recording::Raw;
use super::{Cadence, Cx, Said, Source};

type Read = Result<Vec<LogEvent>, LogsError>;

/// The targets' HMA streams, every interval, until a lasting refusal.
pub struct Hma {
    log: HmaLog,
    /// `(node, stream)` of each target's instance before the injection
    /// (a detection is recorded in the stream of the instance it was on).
    streams: Vec<(String, String)>,
    /// Events from here on are asked for: a second before the injection
    /// (HMA's `ts` has whole seconds, CloudWatch's `timestamp` ms).
    since: DateTime<Utc>,
    cadence: Cadence,
    asking: Option<JoinHandle<Read>>,
    answer: Option<Read>,
    view: HmaView,
}

/// What the watch knows of HMA's record between reads: the decoding's
/// state (a replay drives it alone).
#[derive(Default)]
pub struct HmaView {
    /// Events said already (by id, else stream, time and message): each
    /// read asks from the same start.
    seen: BTreeSet<String>,
    /// A lasting refusal was said: nothing more is read.
    pub off: bool,
    /// Targets HMA's record has a detection of: once every target has
    /// one, detect is timed and the record is not read again.
    pub detected: BTreeSet<String>,
}

impl HmaView {
    /// Decodes [`Raw::Hma`]: the one decoding, live and replayed.
    pub fn decode(&mut self, raw: &Raw, seen_at: DateTime<Utc>) -> Vec<Said> {
        let Raw::Hma {
            events,
            error,
            lasting,
        } = raw
        else {
            return Vec::new();
        };
        // A lasting refusal is said once, as the note below; a passing one
        // as the source's health.
        let mut said = match (error, *lasting) {
            (Some(_), true) => Vec::new(),
            _ => vec![Said::Health(error.clone())],
        };
        if let Some(error) = error {
            if *lasting && !self.off {
                self.off = true;
                said.push(Said::Record(Entry::Observed {
                    source: SourceName::Hma,
                    node: None,
                    field: "poll".into(),
                    from: None,
                    to: format!(
                        "HMA's record cannot be read ({error}); detect is timed from Slurm's mark (grant logs:FilterLogEvents on the cluster's log group to time it from HMA's own ts)"
                    ),
                    source_time: None,
                }));
            }
            return said;
        }
        for event in events {
            let key = event.event_id.clone().unwrap_or_else(|| {
                format!("{}|{:?}|{}", event.stream, event.timestamp, event.message)
            });
            if !self.seen.insert(key) {
                continue;
            }
            let Some(detection) = decode(&event.message) else {
                continue;
            };
            self.detected.insert(event.node.clone());
            let words = detection.words();
            said.push(Said::Record(Entry::Observed {
                source: SourceName::Hma,
                node: Some(event.node.clone()),
                field: "health_event".into(),
                from: None,
                to: format!("{words} (stream {})", event.stream),
                source_time: Some(detection.ts),
            }));
            said.push(Said::Event(Event {
                seen: seen_at,
                source_time: Some(detection.ts),
                source: SourceName::Hma,
                observation: Observation::HealthEvent {
                    node: event.node.clone(),
                    words,
                },
            }));
        }
        said
    }
}

impl Hma {
    /// `streams`: `(node, stream)` per target; `injected_at`: events are
    /// asked for from a second before it.
    pub fn new(
        log: HmaLog,
        streams: Vec<(String, String)>,
        injected_at: DateTime<Utc>,
        every: Duration,
    ) -> Hma {
        Hma {
            log,
            streams,
            since: injected_at - chrono::TimeDelta::seconds(1),
            cadence: Cadence::every(every),
            asking: None,
            answer: None,
            view: HmaView::default(),
        }
    }
}

impl Hma {
    /// A read whose task ended without an answer (cancelled or panicked).
    fn ended(&self, e: tokio::task::JoinError) -> LogsError {
        LogsError {
            operation: "FilterLogEvents",
            group: self.log.group.clone(),
            detail: format!("the read ended: {e}"),
            code: None,
        }
    }

    /// Nothing more to read: refused for good, or every target detected.
    fn done(&self) -> bool {
        self.view.off
            || self
                .streams
                .iter()
                .all(|(node, _)| self.view.detected.contains(node))
    }
}

impl Source for Hma {
    fn name(&self) -> SourceName {
        SourceName::Hma
    }

    fn due(&self, now: Instant) -> bool {
        if self.done() && self.asking.is_none() && self.answer.is_none() {
            return false;
        }
        match &self.asking {
            None => self.answer.is_some() || self.cadence.due(now),
            Some(task) => task.is_finished(),
        }
    }

    fn wake_at(&self) -> Option<Instant> {
        match (&self.asking, self.done()) {
            (None, false) => Some(self.cadence.next),
            _ => None,
        }
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut said = Vec::new();
            if self.asking.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(task) = self.asking.take()
            {
                self.answer = Some(task.await.unwrap_or_else(|e| Err(self.ended(e))));
            }
            if let Some(read) = self.answer.take() {
                let raw = match read {
                    Ok(events) => Raw::Hma {
                        events,
                        error: None,
                        lasting: false,
                    },
                    Err(err) => Raw::Hma {
                        events: Vec::new(),
                        lasting: err.lasting(),
                        error: Some(err.to_string()),
                    },
                };
                let at = cx.clock.now();
                cx.record(at, || raw.clone());
                said.extend(self.view.decode(&raw, at));
            }
            if !self.done() && self.asking.is_none() && self.cadence.due(now) {
                self.cadence.started(now);
                let (log, streams, since) = (self.log.clone(), self.streams.clone(), self.since);
                self.asking = Some(tokio::spawn(
                    async move { log.events(&streams, since).await },
                ));
            }
            said
        })
    }

    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.asking.as_mut() {
                Some(task) => {
                    let read = task.await.unwrap_or_else(|e| Err(self.ended(e)));
                    self.asking = None;
                    self.answer = Some(read);
                }
                None => std::future::pending().await,
            }
        })
    }

    /// Read again in the cycle another source saw a change in: the Slurm
    /// mark HMA left is seen with HMA's own record of it.
    fn explains_changes(&self) -> bool {
        !self.done()
    }

    fn stop(&mut self) {
        if let Some(task) = self.asking.take() {
            task.abort();
        }
    }
}

impl Drop for Hma {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::tests::fixed_now;

    fn event(id: &str, message: &str) -> LogEvent {
        LogEvent {
            node: "ip-10-1-0-12".into(),
            stream: "SagemakerHealthMonitoringAgent/worker/i-1".into(),
            event_id: Some(id.into()),
            timestamp: None,
            message: message.into(),
        }
    }

    const RECORD: &str = r#"{"level":"info","ts":"2026-07-20T22:53:17Z","msg":"DCGM Policy Violation found ","condition: ":"XID Error","data: ":{"ErrNum":48},"HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#;

    #[test]
    fn each_detection_is_said_once_with_hmas_own_time() {
        let mut view = HmaView::default();
        let raw = Raw::Hma {
            events: vec![
                event("1", RECORD),
                event("2", r#"{"level":"info","msg":"HMA started"}"#),
            ],
            error: None,
            lasting: false,
        };
        let seen = fixed_now();
        let said = view.decode(&raw, seen);
        let events: Vec<_> = said
            .iter()
            .filter_map(|s| match s {
                Said::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 1, "{said:?}");
        assert_eq!(
            events[0].source_time.unwrap().to_rfc3339(),
            "2026-07-20T22:53:17+00:00"
        );
        assert!(matches!(
            &events[0].observation,
            Observation::HealthEvent { node, words } if node == "ip-10-1-0-12" && words.starts_with("XID Error {\"ErrNum\":48}")
        ));
        // The next read asks from the same start: nothing new is said.
        let again = view.decode(&raw, seen);
        assert!(!again.iter().any(|s| matches!(s, Said::Event(_))));
    }

    #[test]
    fn a_lasting_refusal_is_said_once_and_ends_the_reading() {
        let mut view = HmaView::default();
        let raw = Raw::Hma {
            events: Vec::new(),
            error: Some(
                "CloudWatch Logs FilterLogEvents on log group g: AccessDeniedException: no".into(),
            ),
            lasting: true,
        };
        let said = view.decode(&raw, fixed_now());
        assert!(view.off);
        let notes = said
            .iter()
            .filter(|s| matches!(s, Said::Record(Entry::Observed { to, .. }) if to.contains("detect is timed from Slurm's mark")))
            .count();
        assert_eq!(notes, 1, "{said:?}");
        let said = view.decode(&raw, fixed_now());
        assert!(!said.iter().any(|s| matches!(s, Said::Record(_))));
        // A passing failure (throttled) does not end it.
        let mut view = HmaView::default();
        view.decode(
            &Raw::Hma {
                events: Vec::new(),
                error: Some("ThrottlingException".into()),
                lasting: false,
            },
            fixed_now(),
        );
        assert!(!view.off);
    }
}
