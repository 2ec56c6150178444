//! The run journal: an append-only JSON Lines file, one record per line,
//! written and flushed as things happen, so that a crash loses at most the
//! line being written. Reading tolerates a journal cut short (or with a
//! damaged line) and says so, which the report then marks `incomplete`.

mod words;
pub use words::{
    cost_text, host_key_text, monitoring_judged_text, progress_line, run_text, step_text,
    watch_cost_text,
};

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::duration::Duration;
use crate::faults::Step;
use crate::scenario::model::{Phase, Recovery};

/// One file of evidence collected from a node (see `runner::evidence`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Collected {
    /// The file's path relative to the run folder.
    pub file: String,
    pub bytes: u64,
    /// Why it is empty or partial, if it is (the command failed, timed
    /// out, or the node was gone).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
}

/// Bumped when a record changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1, 2, 3, ... in write order.
    pub seq: u64,
    /// When the harness wrote the record.
    pub at: DateTime<Utc>,
    /// The scenario the record belongs to; absent for run-level records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(flatten)]
    pub entry: Entry,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        harness_version: String,
        format: u32,
        cluster: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suite: Option<String>,
        /// The cluster profile's path as given, for the `recover` command
        /// a cut journal's report prints.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
        /// The controller's Slurm release, as `sinfo --version` gave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slurm_version: Option<String>,
    },
    /// The run holds the cluster's lock (`owner` is the lock's record:
    /// run id, host, pid, journal, profile, start, lease).
    LockAcquired {
        owner: serde_json::Value,
    },
    /// Write-ahead: written and synced *before* a step that changes the
    /// cluster, with the steps that undo it. A run that cannot write this
    /// record does not act; `recover` reads these to undo what a dead run
    /// left applied.
    Intent {
        /// Referred to by the `rollback` records that undo it.
        id: u64,
        /// What is about to be done, for people.
        action: String,
        /// The steps that undo it, in order (empty: nothing can be undone).
        #[serde(default)]
        undo: Vec<Step>,
        /// Each target's instance id before the step, so that an undo can
        /// tell a node the cluster replaced from the one we changed.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        instances: BTreeMap<String, String>,
        /// The fencing token of the cluster's lock the run held when it
        /// wrote this (see `runner::lock`): the change goes with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
    },
    /// The canary job we submitted (cancelled by rollback or `recover`).
    CanarySubmitted {
        job: u64,
        /// The `--comment` that marks it as this run's.
        comment: String,
    },
    /// `hpchaos recover` took over a cut journal.
    RecoverStarted {
        /// Host and pid of the recovering process.
        by: String,
    },
    /// `hpchaos recover` is done; what it could not undo, if anything.
    RecoverEnded {
        #[serde(default)]
        still_applied: Vec<String>,
    },
    ScenarioStarted {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Fault kind, e.g. `xid`.
        fault: String,
        recovery: Recovery,
        /// Deadline per phase, counted from the injection.
        #[serde(default)]
        deadlines: BTreeMap<Phase, Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lost_steps: Option<u64>,
        /// The phases timed, in order; empty means all of `recovery`'s.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        phases: Vec<Phase>,
        /// The scenario file exactly as it ran.
        source: String,
        /// The scenario's `tags` (its categories in the resiliency score).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    TargetsResolved {
        nodes: Vec<String>,
    },
    SteadyState {
        stage: Stage,
        check: String,
        passed: bool,
        #[serde(default)]
        detail: String,
    },
    InjectionStarted {
        nodes: Vec<String>,
        /// What was done, e.g. the command line or API call.
        action: String,
    },
    InjectionFinished {
        ok: bool,
        #[serde(default)]
        detail: String,
    },
    /// One step of an injection or its verification, on one node (`None`:
    /// the head node or the API): when it started, how long it took (ms),
    /// how it ended.
    StepRan {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        step: String,
        started_at: DateTime<Utc>,
        took_ms: u64,
        ok: bool,
        #[serde(default)]
        detail: String,
    },
    /// A change seen by a watcher.
    Observed {
        source: Source,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// What changed: `state`, `reason`, `instance_id`, `job_state`, `line`, ...
        field: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
        /// When the source says it happened, if it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_time: Option<DateTime<Utc>>,
    },
    PhaseStarted {
        phase: Phase,
        started_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<Duration>,
    },
    PhaseEnded {
        phase: Phase,
        ended_at: DateTime<Utc>,
        verdict: PhaseVerdict,
        time_source: TimeSource,
        #[serde(default)]
        evidence: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost_steps: Option<u64>,
    },
    /// What a scenario's watch cost: the SageMaker requests it made (AWS
    /// throttles per account), its cycles (a wake with a source due or a
    /// followed log line), the wall time of the cycles that read Slurm,
    /// and hpchaos's own CPU time and peak resident memory over the watch.
    WatchCost {
        /// How long the watch ran (s).
        seconds: f64,
        /// SageMaker API requests, retries included; `None` without the API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_calls: Option<u64>,
        cycles: u64,
        slurm_polls: u64,
        /// Median and longest wall time of a cycle that read Slurm (ms).
        slurm_cycle_ms_p50: f64,
        slurm_cycle_ms_max: f64,
        /// The longest time between two Slurm polls (ms): the poll interval
        /// when no other source held Slurm up. Absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slurm_poll_gap_ms_max: Option<f64>,
        /// The process's user + system CPU time during the watch (ms).
        cpu_ms: f64,
        /// The process's peak resident set so far (KiB).
        peak_rss_kib: u64,
    },
    /// Evidence collected from a target marked for replacement or reboot,
    /// before its instance went: each file, relative to the run folder.
    EvidenceCollected {
        node: String,
        /// What marked it (its Slurm reason).
        why: String,
        files: Vec<Collected>,
        /// When the collection started (it is journaled when the watch
        /// ends); absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collected_at: Option<DateTime<Utc>>,
    },
    /// What the failure cost the workload: GPU-hours lost and ETTR, with
    /// the formula's terms (see `cost.rs`).
    FailureCost {
        cost: crate::cost::FailureCost,
    },
    /// A regression gate judged: the phase's time since the injection
    /// against its baseline from the run history.
    RegressionChecked {
        phase: Phase,
        seconds: f64,
        baseline_seconds: f64,
        /// Where the baseline comes from, in words.
        baseline_from: String,
        /// How much slower than the baseline (negative: faster).
        increase_percent: f64,
        max_increase_percent: f64,
        passed: bool,
    },
    /// A regression gate that could not be judged (no baseline yet, the
    /// history unusable, the phase did not end in time): said, never a
    /// silent pass.
    RegressionUnchecked {
        phase: Phase,
        why: String,
    },
    /// The monitoring showed what a scenario expects of it, first seen
    /// now: `seen_at` is the monitoring's own time (the first Prometheus step
    /// the condition held, or the alert's `startsAt`).
    MonitoringSeen {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// What was looked for: the PromQL, or `alert NAME{labels}`.
        query: String,
        /// `prometheus` or `alertmanager`.
        source: String,
        seen_at: DateTime<Utc>,
        detail: String,
    },
    /// The monitoring could not be read (journaled once per failure kind
    /// and expectation; the watch goes on).
    MonitoringUnread {
        name: String,
        error: String,
    },
    /// A monitoring expectation judged at the scenario's end, like a
    /// phase: `seen_at` the latest of its targets' times, `verdict` against
    /// `within`; a blind spot (never seen) says which targets.
    MonitoringJudged {
        name: String,
        query: String,
        source: String,
        within: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seen_at: Option<DateTime<Utc>>,
        verdict: PhaseVerdict,
        detail: String,
        /// The monitoring could be read and never saw the fault on some
        /// target. Absent in journals before it was recorded: read from
        /// the detail's words then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blind_spot: Option<bool>,
        /// An alert fired and Alertmanager suppressed it (absent: as
        /// `blind_spot`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muted: Option<bool>,
    },
    /// Results pushed to the monitoring after a scenario (a Pushgateway or
    /// remote write); a failed push is said here and never fails the run.
    ResultsPushed {
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        series: usize,
    },
    /// A phase ended on one target of a scenario with several (the
    /// scenario's phase ends when it has on all of them): per-node timing.
    NodePhaseEnded {
        node: String,
        phase: Phase,
        ended_at: DateTime<Utc>,
        verdict: PhaseVerdict,
        time_source: TimeSource,
        #[serde(default)]
        evidence: String,
    },
    Rollback {
        step: String,
        ok: bool,
        #[serde(default)]
        detail: String,
        /// The `intent` record this step undoes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undoes: Option<u64>,
    },
    /// A replaced node's new host key, accepted for the rest of the run
    /// because the API showed the node on a new instance.
    HostKeyAccepted {
        node: String,
        instance_id: String,
        fingerprint: String,
        /// The key it replaces, pinned by an earlier run with the instance
        /// it belonged to (`cluster/pins.rs`); absent for a replacement
        /// seen during this run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<PinnedKey>,
    },
    Aborted {
        reason: String,
    },
    Error {
        message: String,
    },
    /// The run lost the cluster's lock (a renewal found it gone or taken,
    /// or its lease ran out while the process was stopped): it makes no
    /// further change. `rollback`: what it did about its own changes.
    LeaseLost {
        reason: String,
        #[serde(default)]
        rollback: String,
    },
    /// A straggler's cost: the job's step rate before the slow-down,
    /// during it (`slowed_for` from the injection) and after, and what
    /// noticed it (HMA, a Slurm mark, the monitoring), if anything.
    Throughput {
        throughput: crate::throughput::Throughput,
        slowed_for: Duration,
        #[serde(default)]
        noticed: Vec<String>,
    },
    /// A later step of a compound scenario, planned before anything was
    /// changed: its targets, what it will do, what triggers it, and the
    /// phases it is timed by (counted from its own injection).
    StepPlanned {
        step: String,
        nodes: Vec<String>,
        fault: String,
        action: String,
        trigger: String,
        recovery: Recovery,
        phases: Vec<Phase>,
        #[serde(default)]
        deadlines: BTreeMap<Phase, Duration>,
    },
    /// A later step injected (its intent written ahead just before): the
    /// record's time is its injection, its phases' zero.
    StepInjected {
        step: String,
        /// When its injection began: its phases count from here.
        injected_at: DateTime<Utc>,
        nodes: Vec<String>,
        action: String,
        #[serde(default)]
        ok: bool,
        #[serde(default)]
        detail: String,
    },
    /// A phase of a later step ended (as `phase_ended` for the first).
    StepPhaseEnded {
        step: String,
        phase: Phase,
        ended_at: DateTime<Utc>,
        verdict: PhaseVerdict,
        time_source: TimeSource,
        #[serde(default)]
        evidence: String,
    },
    /// How a later step came out: passed, or why not (failed its
    /// expectation, its injection failed, its trigger never came).
    StepEnded {
        step: String,
        passed: bool,
        #[serde(default)]
        reason: String,
    },
    /// `hpchaos stop` asked this run to stop (read with a lease renewal):
    /// it makes no further change and rolls back, as on SIGTERM. `hold`:
    /// the cluster is held too (`hpchaos stop --release` ends the hold).
    StopRequested {
        reason: String,
        by: String,
        asked_at: DateTime<Utc>,
        #[serde(default)]
        hold: bool,
    },
    ScenarioEnded {
        outcome: ScenarioOutcome,
        #[serde(default)]
        reason: String,
    },
    RunEnded {
        outcome: RunOutcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Before,
    After,
}

/// Which watcher saw a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Sinfo,
    /// `scontrol show node`: what slurmd reported (boot, slurmd start).
    Scontrol,
    Squeue,
    Sagemaker,
    JobOutput,
    SlurmctldLog,
    /// The cluster's monitoring (Prometheus, Alertmanager).
    Monitoring,
    /// HyperPod's Health Monitoring Agent's record in CloudWatch Logs
    /// (`cluster/hma.rs`).
    Hma,
    /// `scontrol ping` and whether Slurm answers: which slurmctld is in
    /// control (`cluster/controllers.rs`).
    Ping,
    Harness,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sinfo => "sinfo",
            Source::Scontrol => "scontrol",
            Source::Squeue => "squeue",
            Source::Sagemaker => "sagemaker",
            Source::JobOutput => "job_output",
            Source::SlurmctldLog => "slurmctld_log",
            Source::Monitoring => "monitoring",
            Source::Hma => "hma",
            Source::Ping => "ping",
            Source::Harness => "harness",
        }
    }
}

/// Whether a phase boundary is the source's own time or when we saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    Source,
    Observed,
}

impl TimeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Source => "source",
            TimeSource::Observed => "observed",
        }
    }
}

/// A host key pinned with its instance, as a record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKey {
    pub instance_id: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseVerdict {
    /// Over within its deadline.
    Met,
    /// Over, but after its deadline.
    Missed,
    /// Never happened before the scenario ended.
    NotReached,
    /// Over, and it had no deadline.
    Observed,
}

impl PhaseVerdict {
    /// The verdict as reports say it (`MISSED` loud).
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseVerdict::Met => "met",
            PhaseVerdict::Missed => "MISSED",
            PhaseVerdict::NotReached => "not reached",
            PhaseVerdict::Observed => "observed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioOutcome {
    Passed,
    Failed,
    Aborted,
    /// The harness itself failed (cluster unreachable, ...).
    Error,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Completed,
    Aborted,
    Interrupted,
}

/// Appends records to a journal file, one flushed line each.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    next_seq: u64,
    /// Bytes of whole records in the file: a write that fails half way
    /// is cut back to here, so the next record starts on its own line.
    len: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("journal {}: {source}", path.display())]
pub struct JournalError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
    /// Another writer appended to the journal since this one last wrote:
    /// `hpchaos recover` took the run over.
    taken_over: bool,
}

impl JournalError {
    fn io(path: &Path, source: std::io::Error) -> JournalError {
        JournalError {
            path: path.to_path_buf(),
            source,
            taken_over: false,
        }
    }

    /// Whether another process (`hpchaos recover`) wrote to the journal
    /// since this writer did: the run was taken over, and its records are
    /// not to be mixed with the other writer's.
    pub fn taken_over(&self) -> bool {
        self.taken_over
    }
}

impl JournalWriter {
    /// Creates the journal; refuses to overwrite an existing one.
    pub fn create(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, JournalError> {
        // Append mode: every write lands at the end, also after a failed
        // write was cut back (see `append`).
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|source| JournalError::io(path, source))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            clock,
            next_seq: 1,
            len: 0,
        })
    }

    /// Reopens an existing journal (one a dead run left) to append to it:
    /// numbering goes on after its last record, and a half-written last
    /// line is closed with a newline (kept, so the report lists it).
    /// The file is read under its lock, so a record the run is writing at
    /// that moment is counted, and the numbering stays unique.
    pub fn append_to(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, JournalError> {
        let err = |source| JournalError::io(path, source);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        // A writer stopped in the middle of a record holds the lock: said
        // after 10 s rather than waited on for ever.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(err(std::io::Error::other(
                        "another process has held its lock for 10 s (a run stopped while writing it?)",
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
            }
        }
        let mut text = String::new();
        {
            use std::io::Read;
            let read = (&file).read_to_string(&mut text);
            if let Err(e) = read {
                let _ = file.unlock();
                return Err(err(e));
            }
        }
        let next_seq = Journal::parse(&text)
            .records
            .iter()
            .map(|r| r.seq)
            .max()
            .unwrap_or(0)
            + 1;
        let mut len = text.len() as u64;
        if !text.is_empty() && !text.ends_with('\n') {
            let closed = file.write_all(b"\n");
            if let Err(e) = closed {
                let _ = file.unlock();
                return Err(err(e));
            }
            len += 1;
        }
        file.unlock().map_err(err)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            clock,
            next_seq,
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record and hands it back. The whole line goes out in one
    /// write; run and scenario ends are also synced to disk.
    pub fn append(&mut self, scenario: Option<&str>, entry: Entry) -> Result<Record, JournalError> {
        let durable = matches!(
            entry,
            Entry::ScenarioEnded { .. }
                | Entry::RunEnded { .. }
                | Entry::RunStarted { .. }
                | Entry::Intent { .. }
                | Entry::CanarySubmitted { .. }
                | Entry::LockAcquired { .. }
        );
        let record = Record {
            seq: self.next_seq,
            at: self.clock.now(),
            scenario: scenario.map(str::to_owned),
            entry,
        };
        let mut line = serde_json::to_string(&record).map_err(|err| self.error(err.into()))?;
        line.push('\n');
        // Under the file's lock (`recover` takes it too), the file must be
        // as this writer left it: still named on disk, and no longer than
        // what it wrote. Otherwise the run folder was deleted, or another
        // writer took the journal over; either way nothing is written.
        self.file.lock().map_err(|e| self.error(e))?;
        let result = self.write_locked(&line, durable);
        let _ = self.file.unlock();
        result?;
        self.len += line.len() as u64;
        self.next_seq += 1;
        Ok(record)
    }

    /// Writes `line` (the lock held): refuses a deleted or taken-over file.
    fn write_locked(&mut self, line: &str, durable: bool) -> Result<(), JournalError> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.file.metadata().map_err(|e| self.error(e))?;
        if meta.nlink() == 0 {
            return Err(self.error(std::io::Error::other(format!(
                "it was deleted while the run wrote it (its folder {} was removed?): nothing more can be recorded",
                self.path
                    .parent()
                    .map_or_else(|| ".".into(), |p| p.display().to_string())
            ))));
        }
        if meta.len() != self.len {
            return Err(JournalError {
                path: self.path.clone(),
                source: std::io::Error::other(format!(
                    "another process wrote to it since this run did ({} bytes where this run wrote {}): `hpchaos recover` took this run over, and this run records and does nothing more",
                    meta.len(),
                    self.len
                )),
                taken_over: true,
            });
        }
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .and_then(|()| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(err) = written {
            // Cut a partly written line back off, so that what follows
            // (if the disk recovers) starts on a line of its own.
            let _ = self.file.set_len(self.len);
            return Err(self.error(err));
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> JournalError {
        JournalError::io(&self.path, source)
    }
}

/// An undo step a journal shows as not yet done (see
/// [`Journal::still_applied`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The `intent` record it undoes.
    pub intent: u64,
    pub scenario: Option<String>,
    pub step: Step,
    /// Instance ids of the targets before the step (node → id).
    pub instances: BTreeMap<String, String>,
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    pub records: Vec<Record>,
    /// Lines that could not be read, as (line number, what was wrong).
    pub damaged: Vec<(usize, String)>,
    /// The journal stops without a `run_ended` record.
    pub cut_short: bool,
}

impl Journal {
    /// Reads journal text; never fails: what cannot be read is listed.
    pub fn parse(text: &str) -> Journal {
        let mut records = Vec::new();
        let mut damaged = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(record) => records.push(record),
                Err(err) => damaged.push((index + 1, err.to_string())),
            }
        }
        let cut_short = !records
            .iter()
            .any(|r| matches!(r.entry, Entry::RunEnded { .. }));
        Journal {
            records,
            damaged,
            cut_short,
        }
    }

    /// The undo steps of write-ahead records that no successful `rollback`
    /// record answers, in the order they must run: latest intent first,
    /// each intent's steps in their own order. What a dead run left
    /// applied (its undo steps are conditional, so running one whose step
    /// never took is harmless). Empty for a run that ended.
    pub fn still_applied(&self) -> Vec<Pending> {
        let mut pending = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            let Entry::Intent {
                id,
                undo,
                instances,
                ..
            } = &record.entry
            else {
                continue;
            };
            let later = &self.records[index + 1..];
            let mut open: Vec<Pending> = undo
                .iter()
                .filter(|step| {
                    let text = step.describe();
                    !later.iter().any(|r| {
                        matches!(&r.entry, Entry::Rollback { step, ok: true, undoes: Some(u), .. }
                            if u == id && *step == text)
                    })
                })
                .map(|step| Pending {
                    intent: *id,
                    scenario: record.scenario.clone(),
                    step: step.clone(),
                    instances: instances.clone(),
                })
                .collect();
            open.append(&mut pending);
            pending = open;
        }
        pending
    }

    /// The `run_started` record's run id and profile path, if any.
    pub fn run(&self) -> Option<(&str, Option<&str>)> {
        self.records.iter().find_map(|r| match &r.entry {
            Entry::RunStarted {
                run_id, profile, ..
            } => Some((run_id.as_str(), profile.as_deref())),
            _ => None,
        })
    }

    pub fn load(path: &Path) -> Result<Journal, JournalError> {
        std::fs::read_to_string(path)
            .map(|text| Journal::parse(&text))
            .map_err(|source| JournalError::io(path, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeDelta;

    fn clock() -> Arc<ManualClock> {
        let start = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc();
        Arc::new(ManualClock::starting_at(start))
    }

    #[test]
    fn written_records_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let clock = clock();
        let mut writer = JournalWriter::create(&path, clock.clone()).unwrap();
        writer
            .append(
                None,
                Entry::RunStarted {
                    run_id: "r1".into(),
                    harness_version: "0.1.0".into(),
                    format: FORMAT_VERSION,
                    cluster: "lab".into(),
                    suite: None,
                    profile: None,
                    slurm_version: Some("24.11.5".into()),
                },
            )
            .unwrap();
        clock.advance(TimeDelta::seconds(5));
        writer
            .append(
                Some("s"),
                Entry::Error {
                    message: "boom".into(),
                },
            )
            .unwrap();
        // Readable while still open: every record is already on disk.
        let journal = Journal::load(&path).unwrap();
        assert_eq!(journal.records.len(), 2);
        assert_eq!(journal.records[1].seq, 2);
        assert_eq!(
            journal.records[1].at.timestamp() - journal.records[0].at.timestamp(),
            5
        );
        assert!(journal.cut_short);
        assert!(journal.damaged.is_empty());
    }

    #[test]
    fn still_applied_is_what_no_successful_rollback_answers() {
        use crate::faults::{Place, Step};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut writer = JournalWriter::create(&path, clock()).unwrap();
        let resume = Step::ResumeIfUntouched {
            node: "ip-10-1-0-13".into(),
            reason: "Action:Reboot".into(),
        };
        let cleanup = Step::Run {
            on: Place::Head,
            argv: vec!["rm".into(), "-f".into(), "/tmp/x".into()],
        };
        let canary = Step::CancelCanary {
            comment: "hpchaos:r:s".into(),
        };
        for (id, undo) in [
            (1, vec![canary.clone()]),
            (2, vec![resume.clone(), cleanup.clone()]),
        ] {
            writer
                .append(
                    Some("s"),
                    Entry::Intent {
                        id,
                        action: format!("step {id}"),
                        undo,
                        instances: BTreeMap::from([("ip-10-1-0-13".into(), "i-1".into())]),
                        fence: Some(1),
                    },
                )
                .unwrap();
        }
        // The resume was done; the clean-up failed; the canary untouched.
        for (step, ok) in [(&resume, true), (&cleanup, false)] {
            writer
                .append(
                    Some("s"),
                    Entry::Rollback {
                        step: step.describe(),
                        ok,
                        detail: String::new(),
                        undoes: Some(2),
                    },
                )
                .unwrap();
        }
        // A half-written last line, as a kill -9 leaves it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"seq":5,"at":"2026-11"#)
            .unwrap();
        let journal = Journal::load(&path).unwrap();
        let pending: Vec<(u64, Step)> = journal
            .still_applied()
            .into_iter()
            .map(|p| (p.intent, p.step))
            .collect();
        // Latest intent first.
        assert_eq!(pending, vec![(2, cleanup.clone()), (1, canary)]);
        assert_eq!(journal.still_applied()[0].instances["ip-10-1-0-13"], "i-1");
        // recover appends after the damaged line, numbering on.
        let mut again = JournalWriter::append_to(&path, clock()).unwrap();
        let record = again
            .append(None, Entry::RecoverStarted { by: "test".into() })
            .unwrap();
        assert_eq!(record.seq, 5);
        let journal = Journal::load(&path).unwrap();
        assert_eq!(journal.damaged.len(), 1);
        assert!(matches!(
            journal.records.last().unwrap().entry,
            Entry::RecoverStarted { .. }
        ));
    }

    #[test]
    fn a_journal_taken_over_by_recover_refuses_its_first_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut run = JournalWriter::create(&path, clock()).unwrap();
        run.append(
            None,
            Entry::Error {
                message: "a".into(),
            },
        )
        .unwrap();
        // recover takes over: its records number on from the run's.
        let mut recover = JournalWriter::append_to(&path, clock()).unwrap();
        let taken = recover
            .append(None, Entry::RecoverStarted { by: "test".into() })
            .unwrap();
        assert_eq!(taken.seq, 2);
        // The run's next write is refused, and says why; nothing written.
        let refused = run
            .append(
                None,
                Entry::Error {
                    message: "b".into(),
                },
            )
            .unwrap_err();
        assert!(refused.taken_over(), "{refused}");
        assert!(refused.to_string().contains("hpchaos recover"), "{refused}");
        let journal = Journal::load(&path).unwrap();
        let seqs: Vec<u64> = journal.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert!(journal.damaged.is_empty());
    }

    #[test]
    fn a_journal_whose_folder_was_deleted_says_so_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("run");
        std::fs::create_dir(&folder).unwrap();
        let mut run = JournalWriter::create(&folder.join("journal.jsonl"), clock()).unwrap();
        run.append(
            None,
            Entry::Error {
                message: "a".into(),
            },
        )
        .unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        let refused = run
            .append(
                None,
                Entry::Error {
                    message: "b".into(),
                },
            )
            .unwrap_err();
        assert!(!refused.taken_over());
        assert!(
            refused
                .to_string()
                .contains("it was deleted while the run wrote it"),
            "{refused}"
        );
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "").unwrap();
        assert!(JournalWriter::create(&path, clock()).is_err());
    }

    #[test]
    fn half_written_last_line_is_reported_not_fatal() {
        let text = concat!(
            r#"{"seq":1,"at":"2026-11-28T10:00:00Z","type":"run_started","run_id":"r","harness_version":"0","format":1,"cluster":"c"}"#,
            "\n",
            r#"{"seq":2,"at":"2026-11-28T10:00:01Z","type":"err"#
        );
        let journal = Journal::parse(text);
        assert_eq!(journal.records.len(), 1);
        assert_eq!(journal.damaged.len(), 1);
        assert_eq!(journal.damaged[0].0, 2);
        assert!(journal.cut_short);
    }
}
