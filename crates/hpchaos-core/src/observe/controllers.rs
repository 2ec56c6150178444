//! Which slurmctld is in control (`scontrol ping` and whether Slurm
//! answers, `cluster/controllers.rs`), every `poll.slurm`, for scenarios
//! that time a backup controller's takeover: says the controllers when
//! their read changes.

use std::time::Instant;

use futures::future::BoxFuture;

use crate::cluster::controllers::{Controllers as Read, PING_SCRIPT};
use crate::cluster::slurm::Slurm;
use crate::journal::Source as SourceName;
use crate::phases::{Event, Observation};

use super::recording::{Answer, Raw};
use super::{Cx, Said, Source};

/// The controllers, every interval, read by a task of its own: Slurm's
/// other clients (sinfo, squeue) wait while no controller is in control
/// (up to 1.5 × `SlurmctldTimeout`, retrying every half of it), and a
/// cycle of the watch waits for them; these reads go on meanwhile, each
/// stamped when it returned, so the takeover is timed from the first read
/// that saw it, not from when the cycle ended.
pub struct Controllers {
    reads: tokio::sync::mpsc::UnboundedReceiver<(chrono::DateTime<chrono::Utc>, Answer)>,
    /// Reads taken from the task, not yet said.
    taken: Vec<(chrono::DateTime<chrono::Utc>, Answer)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Controllers {
    /// Starts reading at once, then every `every`, stamping each read with
    /// `clock`.
    pub fn new(
        slurm: Slurm,
        every: std::time::Duration,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Controllers {
        let (send, reads) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let started = Instant::now();
                let answer = Answer::of(&slurm.head_text(&["sh", "-c", PING_SCRIPT]).await);
                if send.send((clock.now(), answer)).is_err() {
                    return;
                }
                tokio::time::sleep_until((started + every).into()).await;
            }
        });
        Controllers {
            reads,
            taken: Vec::new(),
            task,
        }
    }

    /// Decodes [`Raw::Ping`]'s answer: the one decoding, live and
    /// replayed. A failed read says only its health.
    pub fn decode(answer: &Answer, seen_at: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let text = match answer.result() {
            Ok(text) => text,
            Err(e) => return vec![Said::Health(Some(e.to_owned()))],
        };
        let read = Read::parse(text);
        vec![
            Said::Health(None),
            Said::Value {
                source: SourceName::Ping,
                node: None,
                field: "controllers".into(),
                value: read.words(),
                source_time: None,
                event: Some(Event {
                    seen: seen_at,
                    source_time: None,
                    source: SourceName::Ping,
                    observation: Observation::Controllers(read),
                }),
            },
        ]
    }
}

impl Source for Controllers {
    fn name(&self) -> SourceName {
        SourceName::Ping
    }

    fn due(&self, _now: Instant) -> bool {
        !self.taken.is_empty() || !self.reads.is_empty()
    }

    fn wake_at(&self) -> Option<Instant> {
        None
    }

    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.taken.is_empty()
                && let Some(read) = self.reads.recv().await
            {
                self.taken.push(read);
            }
        })
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            while let Ok(read) = self.reads.try_recv() {
                self.taken.push(read);
            }
            let mut said = Vec::new();
            for (at, answer) in self.taken.drain(..) {
                cx.record(at, || Raw::Ping {
                    controllers: answer.clone(),
                });
                said.extend(Controllers::decode(&answer, at));
            }
            said
        })
    }
}
