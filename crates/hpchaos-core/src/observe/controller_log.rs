//! The controller log (`slurmctld.log`) as the watch reads it: followed
//! over a kept channel while that works (`cluster/log_follow.rs`), else
//! read from where it was read to at each Slurm poll. Says each line that
//! names a target (journaled, and judged with the line's millisecond
//! time), a line that cannot be placed in time (once), rotation, and a
//! follower that stopped; a mark that calls for evidence is said at its
//! first line, a poll before sinfo shows it.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::cluster::controller_log::{self, Stamp};
use crate::cluster::hostlist::nodes_named_in;
use crate::cluster::log_follow::Follower;
use crate::cluster::slurm::Slurm;
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::recording::Raw;
use super::{Cadence, Cx, Said, Source, note};

/// The controller log, from where it ended before the injection.
pub struct ControllerLog {
    slurm: Slurm,
    path: String,
    cadence: Cadence,
    /// Where it has been read to; `None` when it is not readable at all.
    offset: Option<u64>,
    follower: Option<Follower>,
    /// Follow it (the profile's `slurm.follow_controller_log`).
    follow: bool,
    /// When to try following it again after the follower ended.
    retry_at: Option<Instant>,
    view: LogView,
    /// Told whether the log is followed, and stirred by a line about a
    /// target (see [`super::Quiet`]).
    quiet: std::sync::Arc<super::Quiet>,
}

/// What the watch knows of the log between reads: the decoding's state
/// (a replay drives it alone).
pub struct LogView {
    targets: Vec<String>,
    /// Lines without a placeable time were said once already.
    unplaced_said: bool,
}

/// What one read of the log took: [`Raw::SlurmctldLog`]'s fields.
#[derive(Default)]
struct Taken {
    lines: Vec<String>,
    notes: Vec<String>,
    polled: bool,
    failed: Option<String>,
}

impl ControllerLog {
    /// Starts reading `path` at `offset` (its size before the injection;
    /// `None`: unreadable, so never read), following it when `follow`.
    /// Returns the source and what it said on the way (a follower that
    /// could not start).
    pub async fn open(
        slurm: Slurm,
        path: String,
        offset: Option<u64>,
        targets: &[String],
        every: Duration,
        follow: bool,
        quiet: std::sync::Arc<super::Quiet>,
    ) -> (ControllerLog, Vec<Said>) {
        let mut log = ControllerLog {
            slurm,
            path,
            cadence: Cadence::every(every),
            offset,
            follower: None,
            follow,
            retry_at: None,
            view: LogView::new(targets),
            quiet,
        };
        let mut said = Vec::new();
        if follow {
            log.start_following(&mut said).await;
        }
        (log, said)
    }

    /// Starts following the log from where it was read to; on failure,
    /// says why and reads it each poll, trying again a poll later.
    async fn start_following(&mut self, said: &mut Vec<Said>) {
        if let Some(why) = self.try_following().await {
            said.push(note(SourceName::SlurmctldLog, why));
        }
    }

    /// Starts following; why not, when it could not.
    async fn try_following(&mut self) -> Option<String> {
        let offset = self.offset?;
        match Follower::start(&self.slurm, &self.path, offset).await {
            Ok(follower) => {
                self.follower = Some(follower);
                self.quiet.set_followed(true);
                self.retry_at = None;
                None
            }
            Err(err) => {
                self.retry_at = Some(Instant::now() + self.cadence.every);
                Some(format!(
                    "cannot follow {} ({err}); reading it each poll meanwhile",
                    self.path
                ))
            }
        }
    }

    /// New whole lines: what the follower handed over, or, without one
    /// and when due (or `again`), what was appended since the last read;
    /// with what was noted on the way.
    async fn new_lines(&mut self, again: bool, taken: &mut Taken) {
        let now = Instant::now();
        if let Some(follower) = self.follower.as_mut() {
            let handed = follower.take();
            self.offset = Some(follower.offset());
            taken.notes.extend(handed.notices);
            if let Some(why) = handed.ended {
                self.follower = None;
                self.quiet.set_followed(false);
                self.retry_at = Some(now + self.cadence.every);
                taken.notes.push(format!(
                    "stopped following {}: {why}; reading it each poll until it can be followed again",
                    self.path
                ));
            }
            taken.lines = handed.lines;
            return;
        }
        let Some(offset) = self.offset else {
            return;
        };
        if !(again || self.cadence.due(now)) {
            return;
        }
        let read = self.slurm.read_log(&self.path, offset).await;
        taken.polled = true;
        taken.failed = read.as_ref().err().map(|e| e.to_string());
        let (size, text) = read.unwrap_or((offset, String::new()));
        let mut offset = offset;
        if size < offset {
            // Rotated: the new file is read from its start next poll.
            offset = 0;
            taken
                .notes
                .push(format!("{} was rotated; reading the new file", self.path));
        }
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset = Some(offset + complete as u64);
        taken.lines = text[..complete].lines().map(str::to_owned).collect();
    }
}

impl LogView {
    pub fn new(targets: &[String]) -> LogView {
        LogView {
            targets: targets.to_vec(),
            unplaced_said: false,
        }
    }

    /// Decodes one read ([`Raw::SlurmctldLog`]'s fields): a poll's health,
    /// the notes, then the lines (the controller's UTC offset
    /// `utc_offset`): the one decoding, live and replayed.
    pub fn decode(
        &mut self,
        raw: &Raw,
        utc_offset: chrono::FixedOffset,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Said> {
        let Raw::SlurmctldLog {
            lines,
            notes,
            polled,
            failed,
        } = raw
        else {
            return Vec::new();
        };
        let mut said = Vec::new();
        if *polled {
            said.push(Said::Health(failed.clone()));
        }
        said.extend(
            notes
                .iter()
                .map(|n| note(SourceName::SlurmctldLog, n.clone())),
        );
        said.extend(self.said_of(lines, utc_offset, now));
        said
    }

    /// Decodes lines into what they say about the targets (pure but for
    /// the once-only note on unplaceable stamps).
    pub fn said_of(
        &mut self,
        lines: &[String],
        utc_offset: chrono::FixedOffset,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Said> {
        let mut said = Vec::new();
        for line in lines {
            let parsed = controller_log::parse_line(line, utc_offset, now);
            let named = nodes_named_in(parsed.message, &self.targets);
            if named.is_empty() {
                continue;
            }
            // A line it cannot place in time is said once, then timed
            // when seen.
            if parsed.stamp != Stamp::Placed && !self.unplaced_said {
                self.unplaced_said = true;
                let why = match &parsed.stamp {
                    Stamp::Unplaceable(stamp) => format!(
                        "lines stamped `[{stamp}]` give no time of day (LogTimeFormat clock or thread_id?): timed when seen"
                    ),
                    _ => "lines carry no time stamp (LogTimeFormat=omit?): timed when seen"
                        .to_owned(),
                };
                said.push(note(SourceName::SlurmctldLog, why));
            }
            // The controller's own line is the first sign of a mark (sinfo
            // shows it a poll later): collect the evidence from here.
            if let Some((_, reason)) = parsed.message.split_once("reason set to: ")
                && crate::cluster::slurm::marks_for_repair(reason.trim())
            {
                for node in &named {
                    said.push(Said::Evidence {
                        node: (*node).clone(),
                        why: reason.trim().to_owned(),
                    });
                }
            }
            for node in named {
                said.push(Said::Record(Entry::Observed {
                    source: SourceName::SlurmctldLog,
                    node: Some(node.clone()),
                    field: "line".into(),
                    from: None,
                    to: parsed.message.to_owned(),
                    source_time: parsed.at,
                }));
                said.push(Said::Event(Event {
                    seen: now,
                    source_time: parsed.at,
                    source: SourceName::SlurmctldLog,
                    observation: Observation::ControllerLog {
                        node: node.clone(),
                        message: parsed.message.to_owned(),
                        news: crate::cluster::controller_log::NodeNews::of(parsed.message),
                    },
                }));
            }
        }
        said
    }
}

impl Source for ControllerLog {
    fn name(&self) -> SourceName {
        SourceName::SlurmctldLog
    }

    fn due(&self, now: Instant) -> bool {
        if self.offset.is_none() {
            return false;
        }
        self.follower.as_ref().is_some_and(Follower::has_arrivals) || self.cadence.due(now)
    }

    fn wake_at(&self) -> Option<Instant> {
        self.offset.map(|_| self.cadence.next)
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            let now = Instant::now();
            let due = self.cadence.due(now);
            let mut taken = Taken::default();
            self.new_lines(cx.again, &mut taken).await;
            if due {
                self.cadence.started(now);
            }
            // Not followed, and following was asked for: tried again a
            // poll after it failed.
            if due
                && self.follow
                && self.follower.is_none()
                && self.retry_at.is_some_and(|at| now >= at)
                && let Some(why) = self.try_following().await
            {
                taken.notes.push(why);
            }
            if taken.lines.is_empty() && taken.notes.is_empty() && !taken.polled {
                return Vec::new();
            }
            let utc_offset = self.slurm.utc_offset().await;
            let raw = Raw::SlurmctldLog {
                lines: taken.lines,
                notes: taken.notes,
                polled: taken.polled,
                failed: taken.failed,
            };
            let at = cx.clock.now();
            cx.record(at, || raw.clone());
            let said = self.view.decode(&raw, utc_offset, at);
            // A line about a target: the node table is read now, and
            // every poll from here on.
            if said
                .iter()
                .any(|s| matches!(s, Said::Event(_) | Said::Value { .. }))
            {
                self.quiet.stir();
            }
            said
        })
    }

    fn arrival(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.follower.as_mut() {
                Some(follower) => follower.arrival().await,
                None => std::future::pending().await,
            }
        })
    }

    fn explains_changes(&self) -> bool {
        true
    }
}
