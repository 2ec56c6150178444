//! The SageMaker API as the watch reads it: `DescribeClusterNode` per
//! target, by the instance each was last seen on (a replacement moves
//! it), and a listing page when an instance is gone
//! (`cluster/sagemaker.rs`, `targets`). Each read runs in a task of its
//! own: a throttled API (the SDK backs off and retries for up to half a
//! minute) delays only the API's own observations, never Slurm's. A read
//! unanswered after an interval is said as failing then, not when the SDK
//! gives up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::cluster::sagemaker::{ApiNode, SageMakerApi};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::recording::Raw;
use super::{Cadence, Cx, Said, Source};

/// What one read of the targets said.
pub type Read = Result<Vec<ApiNode>, ReadError>;

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
}

impl ApiView {
    pub fn new(targets: &[String], before: BTreeMap<String, String>) -> ApiView {
        ApiView {
            targets: targets.to_vec(),
            ids: before.clone(),
            before,
            slow_said: false,
        }
    }

    /// Decodes [`Raw::Sagemaker`]: the one decoding, live and replayed.
    pub fn decode(&mut self, raw: &Raw, seen_at: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let Raw::Sagemaker { nodes, error } = raw else {
            return Vec::new();
        };
        let read = match error {
            Some(error) => Err(error.clone()),
            None => Ok(nodes.clone()),
        };
        self.said(read, seen_at)
    }
}

impl Api {
    pub fn new(
        api: SageMakerApi,
        targets: &[String],
        every: Duration,
        before: BTreeMap<String, String>,
    ) -> Api {
        Api {
            api,
            cadence: Cadence::every(every),
            asking: None,
            answer: None,
            view: ApiView::new(targets, before),
        }
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
        said.push(Said::Health(read.as_ref().err().cloned()));
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
            if let Some(read) = self.answer.take() {
                let raw = match read {
                    Ok(nodes) => Raw::Sagemaker { nodes, error: None },
                    Err(err) => Raw::Sagemaker {
                        nodes: Vec::new(),
                        error: Some(err.to_string()),
                    },
                };
                let at = cx.clock.now();
                cx.record(at, || raw.clone());
                said.extend(self.view.decode(&raw, at));
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
                let task = tokio::spawn(async move { Ok(api.targets(&asked).await?) });
                self.asking = Some((now, task));
            }
            said
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
