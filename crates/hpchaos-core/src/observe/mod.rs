//! The watch's sources: one file per place the harness reads while a
//! fault plays out (Slurm's node table, the controller log, the SageMaker
//! API, slurmd's boot witnesses, the workload job, the monitoring);
//! `job_output.rs` reads the job's output, for `job.rs` and the runner.
//! Each owns its interval, its reading, its decoding and its
//! health, and says what it saw as [`Said`] items; the watch
//! (`runner/watch.rs`) owns only the scheduling, the `select!`, the
//! judging and the journaling. A source never writes the journal and
//! never judges a phase.
//!
//! The seam is [`Source`]: the watch reads a `Vec<Box<dyn Source>>`, so a
//! stub (see the watch's unit tests) or a recording (`recording.rs`,
//! replayed by runner/replay.rs) drives it without a cluster. Each source
//! fetches a raw answer, puts it on the run's [`recording::Tape`] when
//! there is one, and decodes it with a pure function a replay calls on
//! the same raw answer.

pub mod api;
pub mod boots;
pub mod controller_log;
pub mod controllers;
pub mod hma;
pub mod job;
pub mod job_output;
pub mod monitoring;
pub mod recording;
pub mod slurm_nodes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::clock::Clock;
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Judgement};

/// What a source says after a read, in the order it saw it. The watch
/// journals and judges these; a source only decodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// The current value of a watched field of one node (or of the job,
    /// `node: None`): journaled, with the value before, and `event`
    /// judged, only when it differs from the last value said under the
    /// same source, node and field.
    Value {
        source: SourceName,
        node: Option<String>,
        field: String,
        value: String,
        /// When the source says the value was set (a reason's time).
        source_time: Option<DateTime<Utc>>,
        event: Option<Event>,
    },
    /// Something that happened (a controller log line, a progress step):
    /// judged as it is.
    Event(Event),
    /// A record to journal as it is (a log line, a note on the source).
    Record(Entry),
    /// Whether this read worked: `Some(error)` when it did not. The watch
    /// journals a source's first failure and its first success after one.
    Health(Option<String>),
    /// A target marked for a repair that wipes or restarts it: its
    /// evidence is collected now, beside the watch.
    Evidence { node: String, why: String },
    /// A target running on a new instance (a replacement): its new host
    /// key may be accepted (`ssh.accept_replaced_host_keys`).
    Replaced { node: String, instance_id: String },
    /// Nodes unhealthy since the fault, cluster-wide, for the abort
    /// condition `max_unhealthy_nodes`.
    Unhealthy(usize),
    /// A failure a source's last word adds to the scenario (a monitoring
    /// expectation not met).
    Failed(String),
}

/// What a read is given.
#[derive(Clone)]
pub struct Cx {
    /// The run's clock: events are stamped when the read returned.
    pub clock: Arc<dyn Clock>,
    /// Read again at once, whatever the interval: another source saw a
    /// change this cycle (see [`Source::explains_changes`]).
    pub again: bool,
    /// The watch's cycle, counted from 0: kept with each recorded read.
    pub cycle: u64,
    /// Where raw answers are recorded (`run --record`).
    pub tape: Option<Arc<recording::Tape>>,
}

impl Cx {
    /// Records a raw answer read at `at`, when the run records; `raw` is
    /// only built then.
    pub fn record(&self, at: DateTime<Utc>, raw: impl FnOnce() -> recording::Raw) {
        if let Some(tape) = &self.tape {
            tape.write(&recording::Read {
                at,
                cycle: self.cycle,
                raw: raw(),
            });
        }
    }
}

/// What a source's last word is given when the watch ends.
pub struct Closing<'a> {
    pub judgement: &'a Judgement,
    pub injected_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// One place the watch reads. Reads of the sources due in one cycle run
/// concurrently; what they said is taken in in the order of the watch's
/// list.
pub trait Source: Send {
    /// Its name in the journal (health records are filed under it).
    fn name(&self) -> SourceName;
    /// Whether it is to be read now: its interval passed, or it has
    /// something already (a followed line, an answer from its own task).
    fn due(&self, now: Instant) -> bool;
    /// When the watch must wake for it next; `None`: only its
    /// [`arrival`](Source::arrival) wakes it.
    fn wake_at(&self) -> Option<Instant>;
    /// Reads once (or takes in what its own task read), says what it saw.
    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>>;
    /// Ready when it has something before it is due (a followed log line,
    /// an answer from its own task); never, by default. Cancel-safe: the
    /// watch drops it when another source wakes first.
    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
    /// Read again in the same cycle when another source saw a change (the
    /// controller log: its millisecond times explain sinfo's whole
    /// seconds, and are judged in the same poll).
    fn explains_changes(&self) -> bool {
        false
    }
    /// Still read once the phases settled (the monitoring); the others
    /// rest then.
    fn outlasts_phases(&self) -> bool {
        false
    }
    /// Nothing more is awaited from it (the monitoring: every expectation
    /// seen, or past its deadline and grace).
    fn settled(&self, _now: DateTime<Utc>) -> bool {
        true
    }
    /// A last read when the phases settled, before the sources stop:
    /// what the source's own cadence would have read only after the
    /// watch's end, and happened before it (HyperPod's events, asked with
    /// every third read of the API: the "replaced instance" event comes
    /// seconds before a requeued job resumes, and the watch ends there).
    /// Recorded like a read, in the cycle after the last. Nothing, by
    /// default.
    fn last_look<'a>(&'a mut self, _cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(std::future::ready(Vec::new()))
    }
    /// Its last word when the phases settled (the failure's cost to the
    /// job, the monitoring's judgement).
    fn close<'a>(&'a mut self, _closing: &'a Closing<'a>) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(std::future::ready(Vec::new()))
    }
    /// Stops what it runs in the background (a read in its own task).
    fn stop(&mut self) {}
    /// The watch is no longer quiet (a phase ended): a source that reads
    /// lightly while it is ([`Touch`]) reads every poll from now on.
    fn stir(&self) {}
}

/// Whether the watch is still quiet, shared by the sources that ask
/// slurmctld (the light touch on a shared controller): the controller
/// log says when it is followed and stirs the watch when a line about a
/// target arrives; the node table's readers stir it when a target's row
/// changes. While the log is followed and nothing has stirred, `sinfo`
/// and `scontrol show node` are read only at the start and every
/// `poll.slurm_when_quiet` (a safety net); once stirred, every poll until
/// the watch ends. slurmctld serves node listings under a lock: on a
/// production cluster the harness must not be its heaviest client
/// (docs/HYPERPOD.md, "The controller's load").
#[derive(Debug, Default)]
pub struct Quiet {
    followed: std::sync::atomic::AtomicBool,
    stirred: std::sync::atomic::AtomicBool,
}

impl Quiet {
    pub fn set_followed(&self, followed: bool) {
        self.followed
            .store(followed, std::sync::atomic::Ordering::Relaxed);
    }

    /// Something happened on a target: every poll from now on.
    pub fn stir(&self) {
        self.stirred
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn stirred(&self) -> bool {
        self.stirred.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read lightly: the log is followed and nothing has stirred.
    pub fn light(&self) -> bool {
        self.followed.load(std::sync::atomic::Ordering::Relaxed) && !self.stirred()
    }
}

/// When a reader of slurmctld's node table is due: every `every`, or,
/// while the watch is [`Quiet`], at its first read and then every `floor`
/// (`None`: always every `every`, the light touch off).
#[derive(Debug)]
pub struct Touch {
    cadence: Cadence,
    floor: Option<Cadence>,
    quiet: Option<Arc<Quiet>>,
    read_once: bool,
}

impl Touch {
    pub fn new(every: Duration, floor: Option<Duration>, quiet: Option<Arc<Quiet>>) -> Touch {
        Touch {
            cadence: Cadence::every(every),
            // A floor below the poll would read more often while quiet.
            floor: floor.map(|f| Cadence::every(f.max(every))),
            quiet,
            read_once: false,
        }
    }

    fn light(&self) -> Option<&Cadence> {
        let quiet = self.quiet.as_ref()?;
        (self.read_once && quiet.light())
            .then_some(self.floor.as_ref())
            .flatten()
    }

    pub fn due(&self, now: Instant) -> bool {
        match self.light() {
            Some(floor) => floor.due(now),
            None => self.cadence.due(now),
        }
    }

    pub fn wake_at(&self) -> Instant {
        match self.light() {
            Some(floor) => floor.next,
            None => self.cadence.next,
        }
    }

    /// A read starts at `now`.
    pub fn started(&mut self, now: Instant) {
        self.cadence.started(now);
        if let Some(floor) = self.floor.as_mut() {
            floor.started(now);
        }
        self.read_once = true;
    }

    /// A target's row changed: every poll from now on.
    pub fn stir(&self) {
        if let Some(quiet) = &self.quiet {
            quiet.stir();
        }
    }
}

/// A source's interval: due once `every` has passed since its last read.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub every: Duration,
    pub next: Instant,
}

impl Cadence {
    /// Due at once, then every `every`.
    pub fn every(every: Duration) -> Cadence {
        Cadence {
            every,
            next: Instant::now(),
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// A read starts at `now`: the next is due an interval later.
    pub fn started(&mut self, now: Instant) {
        self.next = now + self.every;
    }
}

/// A journal record of something the harness noticed about a source
/// itself (`field: poll`).
pub fn note(source: SourceName, to: String) -> Said {
    Said::Record(Entry::Observed {
        source,
        node: None,
        field: "poll".into(),
        from: None,
        to,
        source_time: None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed time for the sources' tests: tests read no clock.
    pub(crate) fn fixed_now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-03T05:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// The node table is read at the first poll; then, while the log is
    /// followed and nothing stirred, only at the floor; once stirred (a
    /// log line or a changed row about a target), every poll again; with
    /// the log not followed, or no floor, every poll throughout.
    #[test]
    fn the_light_touch_reads_the_node_table_only_when_something_stirs() {
        let every = Duration::from_secs(2);
        let floor = Duration::from_secs(300);
        let quiet = Arc::new(Quiet::default());
        quiet.set_followed(true);
        let mut touch = Touch::new(every, Some(floor), Some(quiet.clone()));
        let start = Instant::now();
        assert!(touch.due(start), "the first read is always made");
        touch.started(start);
        let later = start + Duration::from_secs(10);
        assert!(!touch.due(later), "quiet and followed: not every poll");
        assert_eq!(touch.wake_at(), start + floor);
        assert!(touch.due(start + floor), "the safety net");
        quiet.stir();
        assert!(touch.due(later), "stirred: every poll again");
        assert_eq!(touch.wake_at(), start + every);
        // The log not followed: every poll.
        let unfollowed = Arc::new(Quiet::default());
        let mut touch = Touch::new(every, Some(floor), Some(unfollowed.clone()));
        touch.started(start);
        assert!(touch.due(later));
        // A row that changes stirs through the touch itself.
        unfollowed.set_followed(true);
        assert!(!touch.due(later));
        touch.stir();
        assert!(unfollowed.stirred() && touch.due(later));
        // No floor (`slurm_when_quiet: 0s`): every poll.
        let mut off = Touch::new(every, None, Some(quiet_followed()));
        off.started(start);
        assert!(off.due(later));
    }

    fn quiet_followed() -> Arc<Quiet> {
        let quiet = Arc::new(Quiet::default());
        quiet.set_followed(true);
        quiet
    }
}
