//! `hpchaos replay DIR`: a recording (observe/recording.rs) judged again
//! without a cluster. The recorded raw answers are handed, cycle by cycle,
//! to the same decoders the live sources use, on a clock set to when each
//! was read, and the same watch (`Runner::observe`) judges and journals
//! them; the journal then makes the same reports. Nothing reaches a
//! cluster: no evidence is collected, no host key accepted, no abort probe
//! or follow-up step run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::clock::{Clock, ManualClock};
use crate::journal::{Entry, ScenarioOutcome, Source as SourceName};
use crate::observe::api::ApiView;
use crate::observe::boots::Boots;
use crate::observe::controller_log::LogView;
use crate::observe::hma::HmaView;
use crate::observe::job::JobView;
use crate::observe::job_output::WorkloadJob;
use crate::observe::recording::{Raw, Read, Recording};
use crate::observe::slurm_nodes::NodesView;
use crate::observe::{self, Cx, Said};
use crate::scenario::Loaded;
use crate::scenario::model::{Phase, Scenario};

use super::watch::{Sources, Watched};
use super::{Ending, Runner};

/// The recorded reads not yet replayed, shared by the replayed sources.
struct Cursor {
    reads: VecDeque<Read>,
}

impl Cursor {
    /// The cycle being replayed: the first read's.
    fn cycle(&self) -> Option<u64> {
        self.reads.front().map(|r| r.cycle)
    }

    /// Whether `source` has a read in the cycle being replayed.
    fn has(&self, source: SourceName) -> bool {
        let Some(cycle) = self.cycle() else {
            return false;
        };
        self.reads
            .iter()
            .take_while(|r| r.cycle == cycle)
            .any(|r| r.raw.source() == source)
    }

    /// Takes `source`'s reads of the cycle being replayed, and the latest
    /// time any read of that cycle returned.
    fn take(&mut self, source: SourceName) -> (Vec<Read>, Option<DateTime<Utc>>) {
        let Some(cycle) = self.cycle() else {
            return (Vec::new(), None);
        };
        let latest = self
            .reads
            .iter()
            .take_while(|r| r.cycle == cycle)
            .map(|r| r.at)
            .max();
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(read) = self.reads.pop_front() {
            if read.cycle != cycle {
                kept.push_back(read);
                break;
            }
            match read.raw.source() == source {
                true => taken.push(read),
                false => kept.push_back(read),
            }
        }
        kept.extend(self.reads.drain(..));
        self.reads = kept;
        (taken, latest)
    }
}

/// The cursor, locked. A poisoned lock: a replayed read panicked; the
/// queue is intact.
fn lock(cursor: &Mutex<Cursor>) -> std::sync::MutexGuard<'_, Cursor> {
    cursor.lock().unwrap_or_else(|p| p.into_inner())
}

/// A source's decoder, as the live source holds it.
enum Decoder<'a> {
    Nodes(NodesView),
    Boots,
    Controllers,
    Log(LogView),
    Api(ApiView),
    Hma(HmaView),
    Job(JobView<'a>),
}

/// One recorded source, replayed.
struct Replayed<'a> {
    name: SourceName,
    decoder: Decoder<'a>,
    cursor: Arc<Mutex<Cursor>>,
    clock: Arc<ManualClock>,
    offset: chrono::FixedOffset,
    /// Ends the replay once the recording has no more reads (one source
    /// does: sinfo's): the clock goes to where the live watch ended, and,
    /// if the judgement is still open then, the watch is stopped: what
    /// came after is not in the recording.
    ticks: bool,
    /// The watch's stop, and whether the end of the recording was reached.
    stop: tokio::sync::watch::Sender<bool>,
    at_end: Arc<std::sync::atomic::AtomicBool>,
    /// When the live watch ended: the clock's time once every read is
    /// taken.
    ended_at: Option<DateTime<Utc>>,
}

impl Replayed<'_> {
    fn cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        lock(&self.cursor)
    }

    fn decode(&mut self, read: &Read) -> Vec<Said> {
        match &mut self.decoder {
            Decoder::Nodes(view) => match &read.raw {
                Raw::Sinfo { rows, groups } => {
                    view.decode(rows, groups.as_ref(), self.offset, read.at)
                }
                _ => Vec::new(),
            },
            Decoder::Boots => match &read.raw {
                Raw::Scontrol { nodes } => Boots::decode(nodes, self.offset, read.at),
                _ => Vec::new(),
            },
            Decoder::Controllers => match &read.raw {
                Raw::Ping { controllers } => {
                    crate::observe::controllers::Controllers::decode(controllers, read.at)
                }
                _ => Vec::new(),
            },
            Decoder::Log(view) => view.decode(&read.raw, self.offset, read.at),
            Decoder::Api(view) => view.decode(&read.raw, read.at),
            Decoder::Hma(view) => view.decode(&read.raw, read.at),
            Decoder::Job(view) => match view.decode(&read.raw, read.at) {
                Ok(said) => said,
                Err(why) => vec![Said::Health(Some(format!(
                    "recorded read unreadable: {why}"
                )))],
            },
        }
    }
}

impl observe::Source for Replayed<'_> {
    fn name(&self) -> SourceName {
        self.name
    }

    fn due(&self, _: Instant) -> bool {
        let cursor = self.cursor();
        cursor.has(self.name) || (self.ticks && cursor.cycle().is_none())
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(Instant::now())
    }

    fn read<'b>(&'b mut self, cx: &'b Cx) -> BoxFuture<'b, Vec<Said>> {
        Box::pin(async move {
            if cx.again {
                return Vec::new();
            }
            let (reads, latest, left) = {
                let mut cursor = self.cursor();
                let (reads, latest) = cursor.take(self.name);
                (reads, latest, cursor.cycle().is_some())
            };
            // The live watch's end, once nothing is left to read.
            let latest = match left {
                true => latest,
                false => latest.max(self.ended_at),
            };
            match latest {
                Some(latest) if latest > self.clock.now() => self.clock.set(latest),
                // Past the recording, where the live watch ended: the
                // judgement was open still; the rest is not in it.
                _ if reads.is_empty() && self.ticks => {
                    self.at_end.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = self.stop.send(true);
                }
                _ => {}
            }
            reads.iter().flat_map(|read| self.decode(read)).collect()
        })
    }

    fn explains_changes(&self) -> bool {
        self.name == SourceName::SlurmctldLog
    }

    /// The live watch's last look, recorded in the cycle after its last:
    /// this source's reads of that cycle, when the replay is there (a
    /// scenario judged differently may settle sooner: the reads left are
    /// not a last look then).
    fn last_look<'b>(&'b mut self, _: &'b Cx) -> BoxFuture<'b, Vec<Said>> {
        let reads = {
            let mut cursor = self.cursor();
            let looked = cursor.reads.iter().all(|r| r.raw.last_look());
            match looked {
                true => cursor.take(self.name).0,
                false => Vec::new(),
            }
        };
        let said = reads.iter().flat_map(|read| self.decode(read)).collect();
        Box::pin(std::future::ready(said))
    }

    fn close<'b>(&'b mut self, closing: &'b observe::Closing<'b>) -> BoxFuture<'b, Vec<Said>> {
        let said = match &self.decoder {
            Decoder::Job(view) => view.cost(closing),
            _ => Vec::new(),
        };
        Box::pin(std::future::ready(said))
    }
}

/// Why a recording cannot be replayed with a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Recording(String),
    #[error(transparent)]
    Workload(#[from] super::workload::WorkloadError),
}

/// Why a recording cannot be judged as it is: no reads, or reads that end
/// more than `slack` before the live watch did (a live watch ends in the
/// cycle after a read: `slack` is a few of its longest poll intervals; a
/// copy interrupted, a disk that filled). Errors name the file and the
/// times.
pub fn cut(recording: &Recording, slack: chrono::TimeDelta) -> Result<(), String> {
    let manifest = &recording.manifest;
    let reads = recording.dir.join("reads.jsonl");
    let since = |at: DateTime<Utc>| (at - manifest.injected_at).as_seconds_f64();
    let Some(last) = recording.reads.last().map(|r| r.at) else {
        return Err(format!(
            "{}: no reads: the recording holds nothing to judge (was the run stopped before its watch, or the file emptied?)",
            reads.display()
        ));
    };
    match manifest.ended_at {
        Some(ended) if ended - last > slack && !manifest.monitored => Err(format!(
            "{}: the reads end at +{:.1}s, but the live watch ended at +{:.1}s: the recording is cut (copied while being written, or a disk that filled); record the run again",
            reads.display(),
            since(last),
            since(ended)
        )),
        _ => Ok(()),
    }
}

/// How much later than its last read a live watch with `poll` can end:
/// two of its longest poll intervals and a second (it ends in the cycle
/// after a read, and some source is read every interval).
pub fn cut_slack(poll: &crate::profile::Poll) -> chrono::TimeDelta {
    let longest = poll
        .slurm
        .as_std()
        .max(poll.sagemaker.as_std())
        .max(poll.job_output.as_std());
    chrono::TimeDelta::from_std(longest * 2).unwrap_or_default() + chrono::TimeDelta::seconds(1)
}

impl Runner {
    /// Replays `recording` as `loaded`'s watch (the recorded scenario, or
    /// another given with `--scenario`): journals the run as `run` would
    /// (run, scenario, targets, injection, the watch's records and phases,
    /// the scenario's end), on `clock`, which the replay moves. Returns
    /// how the scenario ended. Errors: the controller's offset unreadable,
    /// the job's patterns not regular expressions.
    pub async fn replay(
        &mut self,
        recording: &Recording,
        loaded: &Loaded<Scenario>,
        clock: Arc<ManualClock>,
        stop: tokio::sync::watch::Sender<bool>,
    ) -> Result<Ending, ReplayError> {
        cut(recording, cut_slack(&self.cluster.profile.poll)).map_err(ReplayError::Recording)?;
        self.replaying = true;
        let manifest = &recording.manifest;
        let offset = recording.utc_offset().map_err(ReplayError::Recording)?;
        let mut scenario = loaded.value.clone();
        // Probes are commands on the cluster: not run.
        if let Some(abort) = scenario.abort.as_mut() {
            abort.probes.clear();
        }
        let name = scenario.name.clone();
        let patterns = super::workload::patterns_of(&scenario)?;
        let mut job = match (&manifest.job, patterns) {
            (Some(recorded), patterns) => {
                let mut job = WorkloadJob::replayed(recorded, patterns);
                job.read_on = recorded.read_on.as_deref().map(|node| {
                    crate::cluster::ssh::Endpoint::of_node(&self.cluster.profile, node)
                });
                Some(job)
            }
            (None, _) => None,
        };
        let baseline = manifest.baseline.baseline(job.is_some());
        let first = recording.reads.first().map(|r| r.at);
        clock.set(
            manifest
                .injected_at
                .min(first.unwrap_or(manifest.injected_at)),
        );
        self.log(
            None,
            Entry::RunStarted {
                run_id: self.run_id.clone(),
                harness_version: env!("CARGO_PKG_VERSION").to_owned(),
                format: crate::journal::FORMAT_VERSION,
                cluster: self.cluster.profile.name.clone(),
                suite: None,
                profile: Some(format!(
                    "replay of {} (run {})",
                    recording.dir.display(),
                    manifest.run_id
                )),
                slurm_version: None,
            },
        );
        self.log(Some(&name), super::scenario_started(loaded, job.is_some()));
        self.log(
            Some(&name),
            Entry::TargetsResolved {
                nodes: baseline.targets.clone(),
            },
        );
        clock.set(manifest.injected_at);
        self.log(
            Some(&name),
            Entry::InjectionStarted {
                nodes: baseline.targets.clone(),
                action: format!(
                    "replayed: {} recorded reads of run {} ({})",
                    recording.reads.len(),
                    manifest.run_id,
                    recording.dir.display()
                ),
            },
        );
        self.log(
            Some(&name),
            Entry::InjectionFinished {
                ok: true,
                detail: "replayed from the recording: nothing was changed".to_owned(),
            },
        );
        if !scenario.expect.monitoring.is_empty() {
            self.note_replay(
                &name,
                "expect.monitoring is not judged: a recording (version 1) keeps no monitoring answers"
                    .to_owned(),
            );
        }
        let plan = crate::faults::Plan {
            inject: Vec::new(),
            verify: Vec::new(),
            follow_up: None,
            rollback: Vec::new(),
        };
        let watched = Watched {
            baseline: &baseline,
            judged: &baseline,
            injected_at: manifest.injected_at,
            plan: &plan,
            controller_log: None,
        };
        let cursor = Arc::new(Mutex::new(Cursor {
            reads: VecDeque::new(),
        }));
        let recorded =
            |source: SourceName| recording.reads.iter().any(|r| r.raw.source() == source);
        let targets = &baseline.targets;
        let mut decoders: Vec<(SourceName, Decoder<'_>)> = vec![
            (
                SourceName::SlurmctldLog,
                Decoder::Log(LogView::new(targets)),
            ),
            (
                SourceName::Sinfo,
                Decoder::Nodes(NodesView::new(targets, baseline.unhealthy_before.clone())),
            ),
        ];
        if recorded(SourceName::Hma) {
            decoders.push((SourceName::Hma, Decoder::Hma(HmaView::default())));
        }
        if recorded(SourceName::Sagemaker) {
            decoders.push((
                SourceName::Sagemaker,
                Decoder::Api({
                    let mut view = ApiView::new(targets, baseline.instance_ids.clone());
                    view.started_check = matches!(
                        scenario.fault,
                        crate::scenario::model::Fault::DeepHealthCheck(_)
                    );
                    view
                }),
            ));
        }
        // Every source the recording read is replayed, whether the
        // scenario judged now would read it or not (its reads are taken in
        // order with the others').
        if recorded(SourceName::Scontrol)
            || scenario
                .expect
                .phases(job.is_some())
                .contains(&Phase::Reboot)
        {
            decoders.push((SourceName::Scontrol, Decoder::Boots));
        }
        if recorded(SourceName::Ping)
            || scenario
                .expect
                .phases(job.is_some())
                .contains(&Phase::Takeover)
        {
            decoders.push((SourceName::Ping, Decoder::Controllers));
        }
        let id = job.as_ref().map(|j| j.id);
        if let Some(job) = job.as_mut() {
            let profile = &self.cluster.profile;
            let mut view =
                JobView::new(job, profile.slurm.gpus_per_node, profile.addresses.clone());
            view.utc_offset = offset;
            decoders.push((SourceName::Squeue, Decoder::Job(view)));
        }
        // Reads no decoder takes (a job's output, replayed without a
        // workload) are dropped, and said.
        let taken: Vec<SourceName> = decoders.iter().map(|(name, _)| *name).collect();
        let (kept, dropped): (Vec<&Read>, Vec<&Read>) = recording
            .reads
            .iter()
            .partition(|r| taken.contains(&r.raw.source()));
        if !dropped.is_empty() {
            self.note_replay(
                &name,
                format!(
                    "{} recorded read(s) of a source this scenario does not read (no workload?) are left out",
                    dropped.len()
                ),
            );
        }
        lock(&cursor).reads = kept.into_iter().cloned().collect();
        let at_end = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sources: Sources<'_> = decoders
            .into_iter()
            .map(|(name, decoder)| {
                Box::new(Replayed {
                    name,
                    decoder,
                    cursor: cursor.clone(),
                    clock: clock.clone(),
                    offset,
                    ticks: name == SourceName::Sinfo,
                    ended_at: manifest.ended_at,
                    stop: stop.clone(),
                    at_end: at_end.clone(),
                }) as Box<dyn observe::Source + '_>
            })
            .collect();
        let mut ending = self
            .observe(&scenario, &watched, sources, Vec::new(), id)
            .await;
        // Stopped at the end of the recording: what the scenario still
        // awaited is not in it.
        if at_end.load(std::sync::atomic::Ordering::SeqCst)
            && ending.outcome == ScenarioOutcome::Interrupted
        {
            let end = recording
                .reads
                .last()
                .map_or(manifest.injected_at, |r| r.at);
            let (during, mark) = match ending.reason.split_once("; ") {
                Some((during, mark)) => (during.to_owned(), Some(mark.to_owned())),
                None => (ending.reason.clone(), None),
            };
            let ended = format!(
                "the recording ends at +{:.1}s (where the run it was made in, of scenario {}, ended): {}; what came after is not in it",
                (end - manifest.injected_at).as_seconds_f64(),
                manifest.scenario,
                during.replace("interrupted during", "it ends during")
            );
            // A mark HyperPod set otherwise than expected is a verdict
            // already: failed, whatever came after.
            ending = match mark {
                Some(mark) => Ending::new(ScenarioOutcome::Failed, format!("{mark}; {ended}")),
                None => Ending::new(ScenarioOutcome::Error, ended),
            };
        }
        self.log(
            Some(&name),
            Entry::ScenarioEnded {
                outcome: ending.outcome,
                reason: ending.reason.clone(),
            },
        );
        let run = match ending.outcome {
            ScenarioOutcome::Interrupted => crate::journal::RunOutcome::Interrupted,
            _ => crate::journal::RunOutcome::Completed,
        };
        self.log(None, Entry::RunEnded { outcome: run });
        Ok(ending)
    }
}

impl Runner {
    /// A note on the replay itself (`field: replay`).
    fn note_replay(&mut self, name: &str, to: String) {
        self.log(
            Some(name),
            Entry::Observed {
                source: SourceName::Harness,
                node: None,
                field: "replay".into(),
                from: None,
                to,
                source_time: None,
            },
        );
    }
}
