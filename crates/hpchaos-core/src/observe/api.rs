//! The SageMaker API as the watch reads it: `DescribeClusterNode` per
//! target, by the instance each was last seen on (a replacement moves
//! it), and a listing page when an instance is gone
//! (`cluster/sagemaker.rs`, `targets`). Each read runs in a task of its
//! own: a throttled API (the SDK backs off and retries for up to half a
//! minute) delays only the API's own observations, never Slurm's. A read
//! unanswered after an interval is said as failing then, not when the SDK
//! gives up. The same read asks for the cluster's events on instances
//! since the injection (`ListClusterEvents`, clusters that provision
//! continuously): each event on a target's instance is journaled with its
//! own time, a witness of what HyperPod did (a cluster without them says
//! so once and is not asked again).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::cluster::sagemaker::{ApiError, ApiNode, ClusterEvent, SageMakerApi};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::recording::Raw;
use super::{Cadence, Cx, Said, Source};

/// What one read of the targets said, and of the cluster's events (not
/// asked once refused for good).
pub type Read = Result<(Vec<ApiNode>, Option<Result<Vec<ClusterEvent>, ApiError>>), ReadError>;

/// Why a read of the targets said nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The API refused or failed (the SDK retried first).
    #[error(transparent)]
    Api(#[from] crate::cluster::sagemaker::ApiError),
    /// The read's task ended without an answer (cancelled or panicked).
    #[error("the API's read ended: {0}")]
    Ended(#[from] tokio::task::JoinError),
}

/// The targets in the API, every `poll.sagemaker`.
pub struct Api {
    api: SageMakerApi,
    cadence: Cadence,
    /// The read under way and when it was sent.
    asking: Option<(Instant, JoinHandle<Read>)>,
    /// An answer the arrival took, for the next read to take in.
    answer: Option<Read>,
    view: ApiView,
    /// Events are asked for from here (a second before the injection).
    since: chrono::DateTime<chrono::Utc>,
    /// Reads sent so far: events are asked with every [`EVENTS_EVERY`]th.
    sent: u64,
}

/// The cluster's events are asked with every third read of the targets
/// (every 15 s at the default 5 s poll): a witness journaled with its own
/// time needs no haste, and the API's request budget stays under 30 a
/// minute.
const EVENTS_EVERY: u64 = 3;

/// How long the watch's last look waits for the events at least: the
/// poll interval when longer.
const LAST_LOOK_WAIT: Duration = Duration::from_secs(5);

/// Whether the API's refusal of `ListClusterEvents` lasts (no permission,
/// an API without it): the events are not asked again.
fn lasting(err: &ApiError) -> bool {
    matches!(
        err.code.as_deref(),
        Some("AccessDeniedException" | "ValidationException" | "UnknownOperationException")
    )
}

/// What the watch knows of the targets' instances between reads: the
/// decoding's state (a replay drives it alone).
pub struct ApiView {
    targets: Vec<String>,
    /// Each target's instance before the injection: another one running
    /// is a replacement.
    before: BTreeMap<String, String>,
    /// The instance each target is on, as last seen: what is asked.
    ids: BTreeMap<String, String>,
    /// The read under way was said as failing (unanswered an interval).
    slow_said: bool,
    /// Events said already, by id.
    events_seen: std::collections::BTreeSet<String>,
    /// The cluster's events were refused for good: not asked again.
    pub events_off: bool,
    /// Targets said to be under the cluster's own change.
    changing: std::collections::BTreeSet<String>,
    /// The scenario started a deep health check: that status is its own.
    pub started_check: bool,
}

impl ApiView {
    pub fn new(targets: &[String], before: BTreeMap<String, String>) -> ApiView {
        ApiView {
            targets: targets.to_vec(),
            ids: before.clone(),
            before,
            slow_said: false,
            events_seen: Default::default(),
            events_off: false,
            changing: Default::default(),
            started_check: false,
        }
    }

    /// Decodes [`Raw::Sagemaker`]: the one decoding, live and replayed.
    pub fn decode(&mut self, raw: &Raw, seen_at: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let Raw::Sagemaker {
            nodes,
            error,
            events,
            events_error,
            events_lasting,
            last_look,
        } = raw
        else {
            return Vec::new();
        };
        let read = match error {
            Some(error) => Err(error.clone()),
            None => Ok(nodes.clone()),
        };
        // The last look asked for the events alone.
        let mut said = match last_look {
            true => Vec::new(),
            false => self.said(read, seen_at),
        };
        said.extend(self.events(events, events_error.as_deref(), *events_lasting));
        said
    }

    /// The cluster's events on the targets' instances (before the fault,
    /// or since), each journaled once with its own time; a lasting
    /// refusal said once.
    fn events(&mut self, events: &[ClusterEvent], error: Option<&str>, lasting: bool) -> Vec<Said> {
        let mut said = Vec::new();
        if let Some(error) = error {
            if lasting && !self.events_off {
                self.events_off = true;
                said.push(super::note(
                    SourceName::Sagemaker,
                    format!("the cluster's events are not read ({error}); what HyperPod did is timed from the API's statuses"),
                ));
            }
            return said;
        }
        for event in events {
            let node = self
                .targets
                .iter()
                .find(|t| {
                    let on = |ids: &BTreeMap<String, String>| {
                        ids.get(*t).is_some_and(|id| {
                            *id == event.instance_id || event.description.contains(id.as_str())
                        })
                    };
                    on(&self.before) || on(&self.ids)
                })
                .cloned();
            // An event on an instance not known yet (a replacement the
            // listing has not shown) is taken when it is.
            let Some(node) = node else { continue };
            if !self.events_seen.insert(event.id.clone()) {
                continue;
            }
            said.push(Said::Record(Entry::Observed {
                source: SourceName::Sagemaker,
                node: Some(node),
                field: "cluster_event".into(),
                from: None,
                to: format!(
                    "{}: {} ({})",
                    event.level, event.description, event.instance_id
                ),
                source_time: event.time,
            }));
        }
        said
    }
}

impl Api {
    /// `since`: the injection (events are asked for from a second
    /// before it).
    pub fn new(
        api: SageMakerApi,
        targets: &[String],
        every: Duration,
        before: BTreeMap<String, String>,
        since: chrono::DateTime<chrono::Utc>,
        started_check: bool,
    ) -> Api {
        let mut view = ApiView::new(targets, before);
        view.started_check = started_check;
        Api {
            api,
            cadence: Cadence::every(every),
            asking: None,
            answer: None,
            view,
            since: since - chrono::TimeDelta::seconds(1),
            sent: 0,
        }
    }

    /// Decodes (and records) the answer an arrival took, if any.
    fn take_answer(&mut self, cx: &Cx) -> Vec<Said> {
        let Some(read) = self.answer.take() else {
            return Vec::new();
        };
        let raw = match read {
            Ok((nodes, events)) => {
                let (events, events_error, events_lasting) = match events {
                    None => (Vec::new(), None, false),
                    Some(Ok(events)) => (events, None, false),
                    Some(Err(err)) => (Vec::new(), Some(err.to_string()), lasting(&err)),
                };
                Raw::Sagemaker {
                    nodes,
                    error: None,
                    events,
                    events_error,
                    events_lasting,
                    last_look: false,
                }
            }
            Err(err) => Raw::Sagemaker {
                nodes: Vec::new(),
                error: Some(err.to_string()),
                events: Vec::new(),
                events_error: None,
                events_lasting: false,
                last_look: false,
            },
        };
        let at = cx.clock.now();
        cx.record(at, || raw.clone());
        self.view.decode(&raw, at)
    }

    /// Whether the read under way waited an interval and is not said yet.
    fn overdue(&self, now: Instant) -> bool {
        !self.view.slow_said
            && self
                .asking
                .as_ref()
                .is_some_and(|(sent, _)| now.duration_since(*sent) > self.cadence.every)
    }
}

impl ApiView {
    /// Decodes one answer (pure but for the instances it remembers).
    fn said(
        &mut self,
        read: Result<Vec<ApiNode>, String>,
        seen_at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Said> {
        let mut said = Vec::new();
        if self.slow_said
            && let Err(error) = &read
        {
            said.push(Said::Record(Entry::Observed {
                source: SourceName::Sagemaker,
                node: None,
                field: "poll".into(),
                from: Some("failing".to_owned()),
                to: format!("failing: {error}"),
                source_time: None,
            }));
        }
        self.slow_said = false;
        said.push(Said::Health(
            read.as_ref().err().map(|e| credentials_hint(e)),
        ));
        let Ok(nodes) = read else {
            return said;
        };
        for node in &nodes {
            self.ids.insert(node.node.clone(), node.instance_id.clone());
        }
        // A target can vanish from the listing (between launch attempts
        // after a `Failure`): said, not an event.
        for target in &self.targets {
            if !nodes.iter().any(|n| &n.node == target) {
                said.push(Said::Value {
                    source: SourceName::Sagemaker,
                    node: Some(target.clone()),
                    field: "status|instance_id|launch_time".into(),
                    value: "not listed".into(),
                    source_time: None,
                    event: None,
                });
            }
        }
        for node in nodes.into_iter().filter(|n| self.targets.contains(&n.node)) {
            let replaced = self
                .before
                .get(&node.node)
                .is_some_and(|old| *old != node.instance_id);
            // The cluster's own change on a target during the watch: said
            // as such; the phases do not credit it to the fault.
            if crate::phases::own_change(&node.status)
                && !(self.started_check && node.status == "DeepHealthCheckInProgress")
                && self.changing.insert(node.node.clone())
            {
                said.push(Said::Record(Entry::Observed {
                    source: SourceName::Sagemaker,
                    node: Some(node.node.clone()),
                    field: "cluster_change".into(),
                    from: None,
                    to: format!(
                        "{}: HyperPod's own work on the node ({}), not counted as the fault's detection unless the scenario started it",
                        node.status,
                        crate::cluster::sagemaker::status_meaning(&node.status)
                    ),
                    source_time: None,
                }));
            }
            if replaced && node.running() {
                said.push(Said::Replaced {
                    node: node.node.clone(),
                    instance_id: node.instance_id.clone(),
                });
            }
            said.push(Said::Value {
                source: SourceName::Sagemaker,
                node: Some(node.node.clone()),
                field: "status|instance_id|launch_time".into(),
                value: format!(
                    "{}|{}|{}",
                    node.status,
                    node.instance_id,
                    node.launch_time.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
                source_time: node.launch_time,
                event: Some(Event {
                    seen: seen_at,
                    source_time: None,
                    source: SourceName::Sagemaker,
                    observation: Observation::ApiNode {
                        running: node.running(),
                        node: node.node,
                        status: node.status,
                        instance_id: node.instance_id,
                        launch_time: node.launch_time,
                    },
                }),
            });
        }
        said
    }
}

/// An API error, with what to do when it says the credentials ran out
/// mid-run (`ExpiredTokenException`, `ExpiredToken`; an SSO session of an
/// hour outlived by a 30-minute replace): the watch says so, never stops
/// seeing the API in silence.
pub fn credentials_hint(error: &str) -> String {
    if error.contains("ExpiredToken") {
        format!(
            "{error}; the credentials expired during the run: use a profile that refreshes them (SSO, credential_process, an assumed role), or log in again (`aws sso login`) before a long run"
        )
    } else {
        error.to_owned()
    }
}

impl Source for Api {
    fn name(&self) -> SourceName {
        SourceName::Sagemaker
    }

    fn due(&self, now: Instant) -> bool {
        match &self.asking {
            None => self.answer.is_some() || self.cadence.due(now),
            Some((_, task)) => task.is_finished() || self.overdue(now),
        }
    }

    fn wake_at(&self) -> Option<Instant> {
        match &self.asking {
            // Its answer wakes the watch; an overdue one is said then.
            Some((sent, _)) if !self.view.slow_said => Some(*sent + self.cadence.every),
            Some(_) => None,
            None => Some(self.cadence.next),
        }
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut said = Vec::new();
            if self.asking.as_ref().is_some_and(|(_, t)| t.is_finished())
                && let Some((_, task)) = self.asking.take()
            {
                let read = task.await.unwrap_or_else(|e| Err(ReadError::Ended(e)));
                self.answer = Some(read);
            }
            if self.answer.is_some() {
                said.extend(self.take_answer(cx));
            } else if self.overdue(now)
                && let Some((sent, _)) = &self.asking
            {
                let waited = now.duration_since(*sent).as_secs_f64();
                said.push(Said::Health(Some(format!(
                    "no answer after {waited:.1}s (the SDK retries a throttled or failing request with backoff)"
                ))));
                self.view.slow_said = true;
            }
            if self.asking.is_none() && self.cadence.due(now) {
                self.cadence.started(now);
                let view = &self.view;
                let asked: Vec<(String, String)> = view
                    .targets
                    .iter()
                    .filter_map(|t| view.ids.get(t).map(|id| (t.clone(), id.clone())))
                    .collect();
                let api = self.api.clone();
                let since = (!view.events_off && self.sent.is_multiple_of(EVENTS_EVERY))
                    .then_some(self.since);
                self.sent += 1;
                let task = tokio::spawn(async move {
                    let nodes = api.targets(&asked).await?;
                    let events = match since {
                        Some(since) => Some(api.instance_events(since).await),
                        None => None,
                    };
                    Ok((nodes, events))
                });
                self.asking = Some((now, task));
            }
            said
        })
    }

    /// The cluster's events once more (unless refused for good): an
    /// event HyperPod recorded since the last read that asked for them is
    /// journaled with its time, not lost to the watch's end. Only the
    /// events: a read of the nodes in flight is left to the stop (the
    /// phases are settled), so the look is the cycle's one read and a
    /// replay finds it whole.
    fn last_look<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            if self.view.events_off {
                return Vec::new();
            }
            let wait = self.cadence.every.max(LAST_LOOK_WAIT);
            let raw = match tokio::time::timeout(wait, self.api.instance_events(self.since)).await {
                Err(_) => {
                    return vec![super::note(
                        SourceName::Sagemaker,
                        format!(
                            "the cluster's events had no answer within {:.0}s of the watch's end: an event HyperPod recorded since the last read is not in the journal",
                            wait.as_secs_f64()
                        ),
                    )];
                }
                Ok(Ok(events)) => Raw::Sagemaker {
                    nodes: Vec::new(),
                    error: None,
                    events,
                    events_error: None,
                    events_lasting: false,
                    last_look: true,
                },
                Ok(Err(err)) => Raw::Sagemaker {
                    nodes: Vec::new(),
                    error: None,
                    events: Vec::new(),
                    events_error: Some(err.to_string()),
                    events_lasting: lasting(&err),
                    last_look: true,
                },
            };
            let at = cx.clock.now();
            cx.record(at, || raw.clone());
            self.view.decode(&raw, at)
        })
    }

    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.asking.as_mut() {
                Some((_, task)) => {
                    let read = task.await.unwrap_or_else(|e| Err(ReadError::Ended(e)));
                    self.asking = None;
                    self.answer = Some(read);
                }
                None => std::future::pending().await,
            }
        })
    }

    fn stop(&mut self) {
        if let Some((_, task)) = self.asking.take() {
            task.abort();
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, instance: &str, description: &str) -> ClusterEvent {
        ClusterEvent {
            id: id.into(),
            time: chrono::DateTime::parse_from_rfc3339("2026-12-03T05:00:00Z")
                .ok()
                .map(|t| t.to_utc()),
            group: "workers".into(),
            instance_id: instance.into(),
            description: description.into(),
            level: "Info".into(),
        }
    }

    /// Each event on a target's instance (before the fault, or the
    /// replacement the listing shows) is journaled once with its own
    /// time; others are not; one on an instance not known yet waits for
    /// the listing; a lasting refusal is said once and ends the asking.
    #[test]
    fn cluster_events_on_the_targets_are_journaled_once_with_their_time() {
        let mut view = ApiView::new(
            &["ip-10-1-0-12".to_owned()],
            BTreeMap::from([("ip-10-1-0-12".to_owned(), "i-0old".to_owned())]),
        );
        let events = [
            event(
                "1",
                "i-0old",
                "Instance i-0old is unhealthy: replacement started",
            ),
            event("2", "i-0other", "Instance i-0other rebooted and is running"),
            event(
                "3",
                "i-0new",
                "Instance i-0new replaced instance i-0old and is running",
            ),
            event("4", "i-0newer", "Instance i-0newer rebooted and is running"),
        ];
        let said = view.events(&events, None, false);
        let journaled: Vec<String> = said
            .iter()
            .filter_map(|s| match s {
                Said::Record(Entry::Observed {
                    to, source_time, ..
                }) => {
                    assert!(source_time.is_some());
                    Some(to.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(journaled.len(), 2, "{journaled:?}");
        assert!(journaled[0].starts_with("Info: Instance i-0old is unhealthy"));
        assert!(journaled[1].contains("replaced instance i-0old"));
        assert!(view.events(&events, None, false).is_empty(), "said once");
        // The replacement seen by the listing: its own events follow.
        view.ids.insert("ip-10-1-0-12".into(), "i-0newer".into());
        assert_eq!(view.events(&events, None, false).len(), 1);
        // Not a continuously provisioned cluster: said once, then off.
        let refused = view.events(&[], Some("ValidationException: not continuous"), true);
        assert_eq!(refused.len(), 1);
        assert!(view.events_off);
        assert!(
            view.events(&[], Some("ValidationException"), true)
                .is_empty()
        );
    }

    /// The watch's last look asked for the events alone: its empty node
    /// list says nothing of the targets (no "not listed"), its events are
    /// journaled.
    #[test]
    fn a_last_look_says_its_events_and_nothing_of_the_nodes() {
        let mut view = ApiView::new(
            &["ip-10-1-0-12".to_owned()],
            BTreeMap::from([("ip-10-1-0-12".to_owned(), "i-0old".to_owned())]),
        );
        let raw = Raw::Sagemaker {
            nodes: Vec::new(),
            error: None,
            events: vec![event(
                "1",
                "i-0new",
                "Instance i-0new replaced instance i-0old and is running",
            )],
            events_error: None,
            events_lasting: false,
            last_look: true,
        };
        let seen = chrono::DateTime::parse_from_rfc3339("2026-12-03T05:01:00Z")
            .unwrap()
            .to_utc();
        let said = view.decode(&raw, seen);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            matches!(&said[0], Said::Record(Entry::Observed { field, to, .. })
                if field == "cluster_event" && to.contains("replaced instance i-0old")),
            "{said:?}"
        );
        // The same answer as a read of the nodes: the target is unlisted.
        let Raw::Sagemaker { events, .. } = raw else {
            unreachable!()
        };
        let read = Raw::Sagemaker {
            nodes: Vec::new(),
            error: None,
            events,
            events_error: None,
            events_lasting: false,
            last_look: false,
        };
        let said = view.decode(&read, seen);
        assert!(
            said.iter()
                .any(|s| matches!(s, Said::Value { value, .. } if value == "not listed")),
            "{said:?}"
        );
    }
}
