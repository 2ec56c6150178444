//! The cluster's monitoring (Prometheus, Alertmanager) as the watch reads
//! it, when the scenario expects something of it: each poll in a task of
//! its own, so a slow or hung Prometheus never holds up Slurm, the API or
//! the job (`monitoring/` owns the questions and their decoding). Says
//! each sighting (with the monitoring's own time), a condition already
//! true at the injection, why the monitoring could not be read, and, as
//! its last word, each expectation's verdict. Read on after the phases
//! settled, until every expectation is decided.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::journal::{Entry, PhaseVerdict, Source as SourceName};
use crate::monitoring::client::Client;
use crate::monitoring::{Monitor, Update};
use crate::profile::Monitoring as Endpoints;

use super::{Cadence, Closing, Cx, Said, Source};

/// A poll under way: the monitor it works on, given back with what it saw.
type Poll = JoinHandle<(Monitor, Vec<Update>)>;

/// The scenario's monitoring expectations, every `monitoring.poll`.
pub struct Monitoring {
    monitor: Monitor,
    client: Arc<Client>,
    /// `None`: the profile names no monitoring; nothing is asked, and
    /// every expectation ends unseen.
    endpoints: Option<Endpoints>,
    /// Node name to address, for asking Prometheus why a target was unseen.
    addresses: BTreeMap<String, String>,
    cadence: Cadence,
    /// A condition true by its deadline shows up a scrape and a poll
    /// later: it is given that long before it is called unseen.
    grace: Duration,
    polling: Option<Poll>,
    /// A poll the arrival took, for the next read to take in.
    done: Option<(Monitor, Vec<Update>)>,
}

impl Monitoring {
    pub fn new(
        monitor: Monitor,
        client: Arc<Client>,
        endpoints: Option<Endpoints>,
        addresses: BTreeMap<String, String>,
    ) -> Monitoring {
        let every = endpoints
            .as_ref()
            .map_or(Duration::from_secs(2), |m| m.poll.as_std())
            .max(Duration::from_millis(100));
        Monitoring {
            monitor,
            client,
            endpoints,
            addresses,
            cadence: Cadence::every(every),
            grace: every + Duration::from_secs(2),
            polling: None,
            done: None,
        }
    }

    /// What a poll's update says, as a journal record (pure).
    pub fn said(monitor: &Monitor, update: Update) -> Said {
        // The variant says whether it held before the injection.
        let (watch, sighting, before) = match update {
            Update::Seen { watch, sighting } => (watch, sighting, false),
            Update::HeldBefore { watch, sighting } => (watch, sighting, true),
            Update::Unread { watch, error } => {
                return Said::Record(Entry::MonitoringUnread {
                    name: monitor.watches[watch].name.clone(),
                    error,
                });
            }
        };
        let w = &monitor.watches[watch];
        Said::Record(Entry::MonitoringSeen {
            name: w.name.clone(),
            target: w.target.clone(),
            query: w.kind.describe(),
            source: w.kind.source().to_owned(),
            seen_at: sighting.at,
            detail: if before {
                format!("already true before the injection: {}", sighting.detail)
            } else {
                sighting.detail
            },
        })
    }

    /// Each expectation's verdict as records, and the failure of each not
    /// met (pure).
    pub fn verdicts(monitor: &Monitor) -> Vec<Said> {
        let mut said = Vec::new();
        for judged in monitor.judge() {
            match judged.verdict {
                PhaseVerdict::Met | PhaseVerdict::Observed => {}
                PhaseVerdict::Missed => said.push(Said::Failed(format!(
                    "monitoring {}: seen after its deadline {}: {}",
                    judged.name, judged.within, judged.detail
                ))),
                _ => said.push(Said::Failed(format!(
                    "monitoring {}: {}",
                    judged.name, judged.detail
                ))),
            }
            said.push(Said::Record(Entry::MonitoringJudged {
                name: judged.name,
                query: judged.query,
                source: judged.source.to_owned(),
                within: judged.within,
                seen_at: judged.seen_at,
                verdict: judged.verdict,
                detail: judged.detail,
                blind_spot: Some(judged.blind_spot),
                muted: Some(judged.muted),
            }));
        }
        said
    }
}

impl Source for Monitoring {
    fn name(&self) -> SourceName {
        SourceName::Monitoring
    }

    fn due(&self, now: Instant) -> bool {
        self.done.is_some()
            || self.polling.as_ref().is_some_and(JoinHandle::is_finished)
            || (self.endpoints.is_some() && self.polling.is_none() && self.cadence.due(now))
    }

    fn wake_at(&self) -> Option<Instant> {
        // A poll under way wakes the watch with its answer.
        (self.endpoints.is_some() && self.polling.is_none()).then_some(self.cadence.next)
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            let mut said = Vec::new();
            if self.polling.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(task) = self.polling.take()
                && let Ok(done) = task.await
            {
                self.done = Some(done);
            }
            if let Some((polled, updates)) = self.done.take() {
                said.extend(updates.into_iter().map(|u| Monitoring::said(&polled, u)));
                self.monitor = polled;
            }
            let now = Instant::now();
            if self.polling.is_none()
                && self.cadence.due(now)
                && let Some(endpoints) = self.endpoints.clone()
            {
                self.cadence.started(now);
                let at = cx.clock.now();
                let client = self.client.clone();
                let mut monitor = self.monitor.clone();
                self.polling = Some(tokio::spawn(async move {
                    let updates = monitor.poll(&client, &endpoints, at).await;
                    (monitor, updates)
                }));
            }
            said
        })
    }

    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.polling.as_mut() {
                Some(task) => {
                    if let Ok(done) = task.await {
                        self.done = Some(done);
                    }
                    self.polling = None;
                }
                None => std::future::pending().await,
            }
        })
    }

    fn outlasts_phases(&self) -> bool {
        true
    }

    fn settled(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.monitor.settled(now, self.grace)
    }

    fn close<'a>(&'a mut self, closing: &'a Closing<'a>) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            self.stop();
            // A blind spot first asks Prometheus why (its `up` for the
            // unseen node).
            if let Some(endpoints) = &self.endpoints {
                self.monitor
                    .explain_blind_spots(&self.client, endpoints, &self.addresses, closing.now)
                    .await;
            }
            Monitoring::verdicts(&self.monitor)
        })
    }

    fn stop(&mut self) {
        if let Some(task) = self.polling.take() {
            task.abort();
        }
    }
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        self.stop();
    }
}
