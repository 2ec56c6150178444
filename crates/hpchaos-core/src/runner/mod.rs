//! One run end to end: for each scenario, resolve the targets against the
//! live cluster, check steady state, inject, watch Slurm, the SageMaker API
//! and the workload at once, time the phases, roll back what the harness
//! did, check steady state again, and journal all of it as it happens.
//! Ctrl-C (the `cancel` signal) stops waiting, rolls back and ends the
//! journal as `interrupted`. A lock on the head node keeps two runs off one
//! cluster. This module runs scenarios in order; its parts: `workload`
//! (the canary or watched job), `before_watch` (the baseline before the
//! injection), `checks` (steady state, probes, abort conditions),
//! `execute` (one fault step) and `fan_out` (a step on many nodes at once),
//! `watch` (scheduling the sources, judging and journaling after the
//! injection), `regression` (gates against the history), `evidence`
//! (what a failing node showed), `lock` and `lease` (the cluster's run
//! lock and its lease), `step_error` (why a step failed) and `usage`
//! (the watch's own cost).
//!
//! Safety rules every path here keeps: a step that changes the cluster runs
//! only after its write-ahead `intent` record (with its undo steps) is on
//! disk, and never once a stop was asked for or the journal failed; a
//! stop cancels the canary and ends the scenario `interrupted`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use tokio::sync::watch as signal;

use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::faults::{self, Place, Step};
use crate::journal::{
    Entry, FORMAT_VERSION, JournalWriter, RunOutcome, ScenarioOutcome, Source, Stage,
};
use crate::live::LiveView;
use crate::scenario::Loaded;
use crate::scenario::model::{Scenario, Where};

mod before_watch;
mod checks;
pub mod emergency;
pub mod evidence;
mod execute;
mod fan_out;
mod host_keys;
pub mod lease;
pub mod lock;
pub mod record;
pub mod regression;
pub mod replay;
pub mod step_error;
pub mod steps;
mod usage;
mod watch;
pub mod workload;

use crate::observe::job_output::WorkloadJob;
use watch::Watched;

pub use lock::LOCK_DIR;

/// How long a rollback waits for a cancelled canary to leave its nodes
/// (`COMPLETING` to gone) before it says so and goes on.
pub(crate) const CANCEL_WAIT: StdDuration = StdDuration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Cluster(String),
    #[error("another hpchaos run holds the lock on this cluster: {0}")]
    Locked(String),
    /// `hpchaos stop --hold` holds the cluster: no run starts.
    #[error("{0}")]
    Held(String),
    /// The lock is held by a live run (or being taken): `--wait-lock` waits.
    #[error("another hpchaos run holds the lock on this cluster: {0}")]
    Busy(String),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    /// A record could not be written mid-run: the run stopped acting.
    #[error("cannot write the journal, so the run stopped acting: {0}")]
    JournalFailed(String),
    /// The run lost the cluster's lock mid-run: it stopped acting.
    #[error("this run lost the cluster's lock, so it stopped acting: {0}")]
    LeaseLost(String),
}

/// An undo step the rollback carried out whose record could not be
/// written, with what the cluster showed when re-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    /// The step, as the journal's intent lists it.
    pub step: String,
    /// Re-checked as still applied (or it failed).
    pub still_applied: bool,
    /// What was found, in words.
    pub found: String,
}

/// Why an action was not begun: its write-ahead record was refused, so
/// nothing was done (each names the action).
#[derive(Debug, thiserror::Error)]
pub enum NotBegun {
    /// A stop was asked for (a signal, the lease lost) before it.
    #[error("stopped before: {action}")]
    Stopped { action: String },
    /// An earlier record could not be written: the run acts no more.
    #[error("the journal failed ({why}), so not: {action}")]
    JournalFailed { why: String, action: String },
    /// The lease gate refused: the run no longer holds the cluster's lock.
    #[error("this run lost the cluster's lock ({why}), so not: {action}")]
    LeaseLost { why: String, action: String },
    /// This record could not be written.
    #[error("cannot record it in the journal ({why}), so not: {action}")]
    NotRecorded { why: String, action: String },
}

/// One renewal of the lease on the head: [`lock::RENEW_SCRIPT`] with our
/// marker and fence, the hold file (what it answers after the renewal: a
/// stop request, a hold), and `limit` (the lease: past it by the head's clock it
/// is not renewed; `None`: no limit, for a lock still ours to roll back
/// under). Errors: the head could not be asked.
async fn renew_once(
    ssh: &crate::cluster::ssh::SshPool,
    head: &crate::cluster::ssh::Endpoint,
    marker: &str,
    fence: &str,
    limit: Option<StdDuration>,
) -> Result<(Option<lock::Renewal>, emergency::Standing), crate::cluster::ssh::SshError> {
    let limit = limit.map(|l| l.as_secs().to_string()).unwrap_or_default();
    ssh.run_as_root(
        head,
        crate::cluster::privilege::Root::ClusterLock,
        &[
            "sh",
            "-c",
            lock::RENEW_SCRIPT,
            "hpchaos",
            LOCK_DIR,
            marker,
            fence,
            &limit,
            emergency::HOLD_FILE,
        ],
    )
    .await
    .map(|out| {
        (
            lock::parse_renewal(&out.stdout),
            emergency::parse_standing(&out.stdout),
        )
    })
}

/// Why the lock could not be held again to roll back under it.
#[derive(Debug)]
enum NotRetaken {
    /// Another run holds it: `recover` once that run has ended.
    HeldByAnother(String),
    /// Taken over by `recover`, or the head could not be asked.
    Other(String),
}

impl NotRetaken {
    fn why(&self) -> &str {
        match self {
            NotRetaken::HeldByAnother(why) | NotRetaken::Other(why) => why,
        }
    }
}

/// What one scenario came to.
/// A scenario ready to inject: its targets, its plan, and the steps that
/// undo it (the fault's rollback and the scenario's own).
struct Prepared {
    targets: Vec<String>,
    plan: faults::Plan,
    undo: Vec<Step>,
}

/// How a scenario ended, and why in words.
pub struct Ending {
    pub outcome: ScenarioOutcome,
    pub reason: String,
}

impl Ending {
    fn new(outcome: ScenarioOutcome, reason: impl Into<String>) -> Ending {
        Ending {
            outcome,
            reason: reason.into(),
        }
    }
}

/// What the command decides about a run, given to [`Runner::new`] whole
/// (nothing is set on a runner after it is made).
#[derive(Default)]
pub struct Settings {
    /// Regression gates and their baselines, when the run has any.
    pub gates: Option<regression::GatePlan>,
    /// How long to wait for a lock a live run holds (`--wait-lock`);
    /// `None`: refuse at once.
    pub wait_lock: Option<std::time::Duration>,
    /// The cluster profile's path as given, for the `recover` command.
    pub profile_path: Option<String>,
    /// Where the rollback says what it is undoing (a second Ctrl-C prints
    /// it); a new one when unset.
    pub undoing: Option<Arc<Mutex<Option<String>>>>,
    /// Show each record and where the scenario stands on stderr.
    pub live: bool,
    /// Act as this run (`recover`, for the run it undoes); a new id when
    /// unset.
    pub run_id: Option<String>,
    /// Where "now" comes from; the wall clock when unset (tests drive it).
    pub clock: Option<Arc<dyn Clock>>,
    /// Record each watch's raw reads here (`run --record DIR`): the
    /// directory itself for one scenario, a directory per scenario under
    /// it for several.
    pub record: Option<std::path::PathBuf>,
    /// The run's stop signal (what Ctrl-C sends): a stop request read
    /// from the head (`hpchaos stop`) sends it too, so the run stops as on
    /// SIGTERM.
    pub stop_signal: Option<Arc<signal::Sender<bool>>>,
}

pub struct Runner {
    /// Show each journal record and where the scenario stands on stderr.
    live: Option<LiveView>,
    /// Where watches are recorded (`run --record`).
    record: Option<record::RecordTo>,
    /// The watch's recording under way, and its manifest.
    tape: Option<Arc<crate::observe::recording::Tape>>,
    recording: Option<crate::observe::recording::Manifest>,
    /// The scenario under way as its file said it (for its recording).
    scenario_text: String,
    /// Judging a recording (`replay`): nothing reaches the cluster.
    replaying: bool,
    /// The last change seen from any source, for the live view.
    last_seen: Option<String>,
    pub cluster: Cluster,
    pub journal: JournalWriter,
    clock: Arc<dyn Clock>,
    cancel: signal::Receiver<bool>,
    /// Instances whose host key this run accepted after their replacement.
    accepted_instances: BTreeSet<String>,
    /// Each target's instance id before the injection, as the API listed
    /// it: rollback leaves a node on another instance to the cluster.
    instances_before: BTreeMap<String, String>,
    /// Why a journal record could not be written; once set, the run does
    /// nothing more to the cluster but undo.
    journal_error: Option<String>,
    next_intent: u64,
    /// This run's id (journal, lock, canary comment).
    run_id: String,
    /// The cluster profile's path as given, for the `recover` command.
    profile_path: Option<String>,
    /// What rollback is undoing now, for a second Ctrl-C to print.
    undoing: Arc<Mutex<Option<String>>>,
    /// Renews the lock's lease while the run holds it.
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// A compound scenario's later steps, while it runs (see `steps.rs`).
    later: Vec<steps::Live>,
    /// What the renewal read of `hpchaos stop`, and whether a scenario is
    /// under way (the renewal is then more frequent).
    stops: emergency::Stops,
    /// The stop request was journaled.
    stop_said: bool,
    /// The lease on the cluster's lock, while the run holds one.
    lease: Option<lease::Lease>,
    /// The lease's loss was said (stderr and journal).
    lease_said: bool,
    /// Why the first lease was lost, once the lock was taken again only to
    /// roll back: the run stays stopped for it.
    lost: Option<String>,
    /// Another writer (`hpchaos recover`) took the journal over: the
    /// rollback is its, not this run's.
    taken_over: bool,
    /// Undo steps the rollback carried out whose records could not be
    /// written, each as `step: what the cluster showed when re-checked`.
    pub unrecorded: Vec<Unrecorded>,
    /// The report, built from each record as it is written (the metrics
    /// push reads it; nothing reads the journal back mid-run).
    report: crate::report::Builder,
    /// The current watch's cycles, for its `watch_cost` record.
    cycles: watch::Cycles,
    /// Regression gates and their baselines, when the run has any.
    gates: Option<regression::GatePlan>,
    /// How long to wait for a lock a live run holds (`--wait-lock`);
    /// `None`: refuse at once.
    wait_lock: Option<std::time::Duration>,
    /// Evidence collections under way: (node, why, when it started,
    /// task), journaled when the watch ends.
    evidence: Vec<evidence::Collecting>,
    /// The monitoring's HTTP client, made on first use.
    monitoring: std::sync::OnceLock<std::sync::Arc<crate::monitoring::client::Client>>,
}

/// The record that opens a scenario: its file, what it injects and
/// expects, its text; `workload`: a job is watched (the resume phase).
fn scenario_started(loaded: &Loaded<Scenario>, workload: bool) -> Entry {
    let scenario = &loaded.value;
    Entry::ScenarioStarted {
        file: loaded.path.display().to_string(),
        description: scenario.description.clone(),
        fault: scenario.fault.kind().to_owned(),
        recovery: scenario.expect.recovery,
        deadlines: scenario.expect.deadlines.set(),
        max_lost_steps: scenario.expect.max_lost_steps,
        phases: scenario.expect.phases(workload),
        source: loaded.text.clone(),
        tags: scenario.tags.clone(),
    }
}

/// Creates `<report_dir>/<time>-<name>/` (`-2`, `-3`, ... when a run of the
/// same name started in the same second) and its journal.
pub fn open_run_dir(
    report_dir: &Path,
    name: &str,
    clock: Arc<dyn Clock>,
) -> Result<(PathBuf, JournalWriter), RunError> {
    std::fs::create_dir_all(report_dir)
        .map_err(|e| RunError::Cluster(format!("cannot create {}: {e}", report_dir.display())))?;
    let stem = format!("{}-{name}", clock.now().format("%Y%m%dT%H%M%S"));
    for attempt in 1..=100 {
        let dir = match attempt {
            1 => report_dir.join(&stem),
            n => report_dir.join(format!("{stem}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let journal = JournalWriter::create(&dir.join("journal.jsonl"), clock)?;
                return Ok((dir, journal));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(RunError::Cluster(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(RunError::Cluster(format!(
        "100 runs named {stem} already in {}",
        report_dir.display()
    )))
}

/// A run id unique across hosts and runs started in the same second:
/// `run-<UTC time>-<4 hex digits from the pid and the clock>`.
pub fn new_run_id(clock: &dyn Clock) -> String {
    let now = clock.now();
    let mix = (std::process::id() as u64)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(now.timestamp_subsec_nanos() as u64);
    format!("run-{}-{:04x}", now.format("%Y%m%dT%H%M%S"), mix & 0xffff)
}

impl Runner {
    /// The monitoring's client (reqwest loads the system's roots once).
    pub(crate) fn monitoring_client(&self) -> &std::sync::Arc<crate::monitoring::client::Client> {
        self.monitoring
            .get_or_init(|| std::sync::Arc::new(crate::monitoring::client::Client::new()))
    }

    /// The monitoring's steady state before the injection (see
    /// [`crate::monitoring::Monitor::ready`]), journaled as the check
    /// `monitoring_ready`; the failure, if any.
    async fn monitoring_ready(
        &mut self,
        scenario: &Scenario,
        targets: &[String],
    ) -> Option<String> {
        let endpoints = self.cluster.profile.monitoring.clone()?;
        let now = self.clock.now();
        let monitor = crate::monitoring::Monitor::new(&scenario.expect.monitoring, targets, now)?;
        let result = monitor.ready(self.monitoring_client(), &endpoints).await;
        let (passed, detail) = match &result {
            Ok(said) => (true, said.clone()),
            Err(why) => (false, why.to_string()),
        };
        self.log(
            Some(&scenario.name),
            Entry::SteadyState {
                stage: Stage::Before,
                check: "monitoring_ready".to_owned(),
                passed,
                detail,
            },
        );
        result.err().map(|why| why.to_string())
    }

    /// Sends the scenario's figures, as the report built from each record
    /// written so far shows them, to the profile's Pushgateway and remote-write
    /// receiver; each attempt is journaled (`results_pushed`) and none
    /// fails the run.
    async fn push_results(&mut self, scenario: &str) {
        let Some(monitoring) = self.cluster.profile.monitoring.clone() else {
            return;
        };
        if monitoring.pushgateway.is_none() && monitoring.remote_write.is_none() {
            return;
        }
        // The scenario's report as built from the records written so far.
        let mut report = self.report.so_far();
        report.scenarios.retain(|s| s.name == scenario);
        // Refused before the injection: it tested nothing, and must not
        // replace the scenario's last result on a dashboard.
        if report
            .scenarios
            .first()
            .is_none_or(|s| s.injected_at.is_none())
        {
            return;
        }
        let cluster = self.cluster.profile.name.clone();
        // The scenario's own figures: the run's (its id, status, start) are
        // not over yet, and would say `incomplete`.
        let families: Vec<crate::report::prometheus::Family> =
            crate::report::prometheus::families(&report)
                .into_iter()
                .filter(|f| !f.name.starts_with("hpchaos_run_"))
                .collect();
        if let Some(endpoint) = &monitoring.pushgateway {
            let text = crate::report::prometheus::render(&families);
            let pushed = crate::publish::push::to_pushgateway(
                self.monitoring_client(),
                endpoint,
                &cluster,
                scenario,
                &text,
            )
            .await;
            let to = format!(
                "{}{}",
                endpoint.url.trim_end_matches('/'),
                crate::publish::push::pushgateway_path(&cluster, scenario)
            );
            self.journal_push(scenario, to, pushed);
        }
        if let Some(endpoint) = &monitoring.remote_write {
            let at = report
                .scenarios
                .first()
                .and_then(|s| s.ended_at)
                .unwrap_or_else(|| self.clock.now());
            let request = crate::publish::remote_write::request(&families, &cluster, at);
            let written =
                crate::publish::remote_write::write(self.monitoring_client(), endpoint, &request)
                    .await;
            self.journal_push(scenario, endpoint.url.clone(), written);
        }
    }

    fn journal_push(
        &mut self,
        scenario: &str,
        to: String,
        result: Result<usize, crate::monitoring::client::MonitoringError>,
    ) {
        let entry = match result {
            Ok(series) => Entry::ResultsPushed {
                to,
                error: None,
                series,
            },
            Err(e) => {
                // The error names the URL; the entry does already.
                let text = e.to_string();
                let error = text
                    .strip_prefix(&format!("{to}: "))
                    .unwrap_or(&text)
                    .to_owned();
                Entry::ResultsPushed {
                    to,
                    error: Some(error),
                    series: 0,
                }
            }
        };
        self.log(Some(scenario), entry);
    }

    /// A runner for `cluster`, writing `journal`, stopped by `cancel`
    /// (true: Ctrl-C or SIGTERM), as `settings` say.
    pub fn new(
        cluster: Cluster,
        journal: JournalWriter,
        cancel: signal::Receiver<bool>,
        settings: Settings,
    ) -> Runner {
        Runner {
            live: settings.live.then(LiveView::default),
            record: settings.record.map(|dir| record::RecordTo {
                dir,
                per_scenario: false,
            }),
            tape: None,
            recording: None,
            scenario_text: String::new(),
            replaying: false,
            last_seen: None,
            cluster,
            journal,
            clock: settings.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            cancel,
            accepted_instances: BTreeSet::new(),
            cycles: watch::Cycles::default(),
            report: crate::report::Builder::new(),
            gates: settings.gates,
            wait_lock: settings.wait_lock,
            evidence: Vec::new(),
            monitoring: std::sync::OnceLock::new(),
            instances_before: BTreeMap::new(),
            journal_error: None,
            next_intent: 1,
            run_id: settings.run_id.unwrap_or_else(|| new_run_id(&SystemClock)),
            profile_path: settings.profile_path,
            undoing: settings.undoing.unwrap_or_default(),
            renewer: None,
            stops: emergency::Stops::new(settings.stop_signal),
            later: Vec::new(),
            stop_said: false,
            lease: None,
            lease_said: false,
            lost: None,
            taken_over: false,
            unrecorded: Vec::new(),
        }
    }

    /// How a run that stopped early ends: `aborted` when the journal
    /// failed (no signal came), `interrupted` otherwise.
    fn stopped_outcome(&self) -> RunOutcome {
        if self.journal_error.is_some() && !self.cancelled() && self.lease_lost().is_none() {
            RunOutcome::Aborted
        } else {
            RunOutcome::Interrupted
        }
    }

    /// A stop was asked for (Ctrl-C, SIGTERM, SIGHUP, `hpchaos stop`).
    fn cancelled(&self) -> bool {
        *self.cancel.borrow() || self.stops.requested().is_some()
    }

    /// Journals, once, the `hpchaos stop` request the run obeys.
    fn say_stop_request(&mut self, scenario: Option<&str>) {
        if self.stop_said {
            return;
        }
        let Some(request) = self.stops.requested() else {
            return;
        };
        self.stop_said = true;
        crate::output::say(&format!(
            "interrupted: {}; no new change to the cluster; rolling back, then writing the report",
            request.describe()
        ));
        self.log(
            scenario,
            Entry::StopRequested {
                reason: request.reason,
                by: request.by,
                asked_at: request.at,
                hold: request.hold,
            },
        );
    }

    /// Nothing more may be done to the cluster but undo: a stop was asked
    /// for, the journal cannot take records, or the lease is lost.
    fn stopping(&self) -> bool {
        self.cancelled() || self.journal_error.is_some() || self.lease_lost().is_some()
    }

    /// Why the run may no longer act on the cluster's lock, if so: its
    /// lease was lost, or went a whole lease unconfirmed (see
    /// [`lease::Lease::lost`]). `None` while the run holds no lock (before
    /// it took one, and in `recover`).
    fn lease_lost(&self) -> Option<String> {
        if let Some(why) = &self.lost {
            return Some(why.clone());
        }
        self.lease.as_ref()?.lost(lease::boot_clock())
    }

    /// The lease gate every change passes: the fence to act under while
    /// the run holds its lease (`None` while it holds no lock, as in
    /// `recover`). Past the usable part of the lease a renewal is made
    /// there and then, and the head's answer decides. Errors: why the run
    /// may not act (the lease lost, for good).
    async fn gate(&self) -> Result<Option<String>, String> {
        if let Some(why) = &self.lost {
            return Err(why.clone());
        }
        let Some(held) = self.lease.clone() else {
            return Ok(None);
        };
        match held.usable(lease::boot_clock()) {
            Ok(fence) => return Ok(Some(fence)),
            Err(lease::Unusable::Lost(why)) => return Err(why),
            Err(lease::Unusable::Stale { .. }) => {}
        }
        let head = self.cluster.slurm.head.clone();
        let sent = lease::boot_clock();
        let answer = renew_once(
            &self.cluster.ssh,
            &head,
            &lock::Owner::marker(&self.run_id),
            &held.fence(),
            Some(held.length()),
        )
        .await
        .map(|(renewal, standing)| {
            self.stops.heed(&standing);
            renewal
        })
        .map_err(lease::Unanswered::from);
        if let Some(why) = held.renewal(sent, answer, &head.name) {
            return Err(why);
        }
        match held.usable(lease::boot_clock()) {
            Ok(fence) => Ok(Some(fence)),
            Err(lease::Unusable::Lost(why)) => Err(why),
            Err(lease::Unusable::Stale { age }) => Err(format!(
                "its lease could not be renewed: not confirmed for {}s",
                age.as_secs()
            )),
        }
    }

    /// Says once, on stderr and in the journal, that the lease was lost
    /// and what became of the run's own changes (`rollback`).
    fn say_lease_lost(&mut self, scenario: Option<&str>, rollback: &str) {
        let Some(reason) = self.lease_lost() else {
            return;
        };
        // Held again only to roll back: what stopped the run stays.
        if self.lost.is_none() {
            self.lost = Some(reason.clone());
        }
        if self.lease_said {
            return;
        }
        self.lease_said = true;
        crate::output::say(&format!(
            "error: this run lost the cluster's lock and makes no further change: {reason}; {rollback}"
        ));
        self.log(
            scenario,
            Entry::LeaseLost {
                reason,
                rollback: rollback.to_owned(),
            },
        );
    }

    /// The write-ahead gate: journals (and syncs) what is about to be done
    /// and how to undo it, and returns the record's id. Refuses, so that
    /// nothing is done, once a stop was asked for or if the record cannot
    /// be written.
    async fn write_ahead(
        &mut self,
        scenario: &str,
        action: String,
        undo: Vec<Step>,
    ) -> Result<u64, NotBegun> {
        if self.cancelled() {
            return Err(NotBegun::Stopped { action });
        }
        if let Some(err) = &self.journal_error {
            return Err(NotBegun::JournalFailed {
                why: err.clone(),
                action,
            });
        }
        let fence = match self.gate().await {
            Ok(_) => self.lease.as_ref().map(lease::Lease::token),
            Err(why) => return Err(NotBegun::LeaseLost { why, action }),
        };
        let id = self.next_intent;
        let entry = Entry::Intent {
            id,
            action: action.clone(),
            undo,
            instances: self.instances_before.clone(),
            fence,
        };
        match self.journal.append(Some(scenario), entry) {
            Ok(record) => {
                self.report.push(&record);
                self.next_intent += 1;
                Ok(id)
            }
            Err(err) => {
                self.note_taken_over(&err);
                self.journal_error = Some(err.to_string());
                Err(NotBegun::NotRecorded {
                    why: err.to_string(),
                    action,
                })
            }
        }
    }

    /// A journal another writer took over (`recover`): this run's lock is
    /// recover's now, and the run has lost it.
    fn note_taken_over(&mut self, err: &crate::journal::JournalError) {
        if err.taken_over() {
            self.taken_over = true;
            self.lost.get_or_insert_with(|| {
                "`hpchaos recover` took this run's journal over (and with it the cluster's lock)"
                    .to_owned()
            });
        }
    }

    /// Why a journal record could not be written, if one could not.
    pub fn journal_failure(&self) -> Option<String> {
        self.journal_error.clone()
    }

    /// Appends a record (for `recover`, which shares the runner's steps).
    pub fn append(&mut self, scenario: Option<&str>, entry: Entry) {
        self.log(scenario, entry);
    }

    /// Writes a record to the journal, then hands it to the run's other
    /// sinks: the report under construction, the live view and its last
    /// sighting. A record that cannot be written goes nowhere, and the run
    /// stops acting (see `journal_error`).
    fn log(&mut self, scenario: Option<&str>, entry: Entry) {
        match self.journal.append(scenario, entry) {
            Ok(record) => {
                self.report.push(&record);
                if let Entry::Observed {
                    source, node, to, ..
                } = &record.entry
                {
                    let node = node.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
                    self.last_seen = Some(format!("{}{node}: {to}", source.as_str()));
                }
                if let Some(live) = self.live.as_mut() {
                    live.record(&crate::journal::progress_line(&record));
                }
            }
            Err(err) => {
                if self.journal_error.is_none() {
                    crate::output::say(&format!("error: {err}"));
                }
                self.note_taken_over(&err);
                self.journal_error.get_or_insert(err.to_string());
            }
        }
    }

    /// Runs the scenarios in order; returns the run's outcome. Nothing is
    /// done unless the run's first record is on disk.
    pub async fn run(
        &mut self,
        scenarios: &[Loaded<Scenario>],
        suite: Option<&str>,
        stop_on_failure: bool,
        cooldown: Option<StdDuration>,
    ) -> Result<RunOutcome, RunError> {
        let started = Entry::RunStarted {
            run_id: self.run_id.clone(),
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            format: FORMAT_VERSION,
            cluster: self.cluster.profile.name.clone(),
            suite: suite.map(str::to_owned),
            profile: self.profile_path.clone(),
            slurm_version: self.cluster.slurm.version.get().cloned(),
        };
        match self.journal.append(None, started) {
            Ok(record) => self.report.push(&record),
            Err(err) => {
                return Err(RunError::JournalFailed(format!(
                    "{err}; the cluster was not touched"
                )));
            }
        }
        if self.cancelled() {
            self.log(
                None,
                Entry::RunEnded {
                    outcome: RunOutcome::Interrupted,
                },
            );
            return Ok(RunOutcome::Interrupted);
        }
        if let Err(err) = self.lock().await {
            self.log(
                None,
                Entry::Error {
                    message: err.to_string(),
                },
            );
            self.log(
                None,
                Entry::RunEnded {
                    outcome: RunOutcome::Aborted,
                },
            );
            return Err(err);
        }
        let mut outcome = RunOutcome::Completed;
        if let Some(record) = self.record.as_mut() {
            record.per_scenario = scenarios.len() > 1;
        }
        for (index, loaded) in scenarios.iter().enumerate() {
            if self.stopping() {
                outcome = self.stopped_outcome();
                break;
            }
            if let (Some(pause), true) = (cooldown, index > 0)
                && !self.cool_down(pause).await
            {
                outcome = self.stopped_outcome();
                break;
            }
            let ending = self.scenario(loaded).await;
            let name = loaded.value.name.as_str();
            self.log(
                Some(name),
                Entry::ScenarioEnded {
                    outcome: ending.outcome,
                    reason: ending.reason.clone(),
                },
            );
            // Its results to the monitoring; a failed push is journaled.
            self.push_results(name).await;
            match ending.outcome {
                ScenarioOutcome::Interrupted => {
                    outcome = self.stopped_outcome();
                    break;
                }
                ScenarioOutcome::Passed => {}
                _ if stop_on_failure => {
                    outcome = RunOutcome::Aborted;
                    break;
                }
                _ => {}
            }
            // A stop asked for after the scenario settled still ends the suite.
            if self.stopping() {
                outcome = self.stopped_outcome();
                break;
            }
        }
        // The lease lost between scenarios (nothing was under way) is
        // said here; one lost mid-scenario was said by its rollback.
        self.say_lease_lost(
            None,
            "what its rollback could not undo is said as still applied",
        );
        self.say_stop_request(None);
        let lost = self.lease_lost();
        // A journal `recover` took over: the lock is recover's to release.
        if !self.taken_over {
            self.unlock().await;
        }
        self.log(None, Entry::RunEnded { outcome });
        if let Some(why) = lost {
            return Err(RunError::LeaseLost(why));
        }
        match self.journal_error.clone() {
            Some(err) => Err(RunError::JournalFailed(err)),
            None => Ok(outcome),
        }
    }

    /// The suite's pause between scenarios; Ctrl-C cuts it short, and it is
    /// looked at every second: a lease lost meanwhile ends the suite there,
    /// not when the pause is over. Whether the run may go on.
    async fn cool_down(&mut self, pause: StdDuration) -> bool {
        if let Some(live) = self.live.as_mut() {
            live.record(&format!(
                "cooldown: {}s before the next scenario",
                pause.as_secs()
            ));
        }
        let until = std::time::Instant::now() + pause;
        while !self.stopping() && std::time::Instant::now() < until {
            let mut cancel = self.cancel.clone();
            let step = until
                .saturating_duration_since(std::time::Instant::now())
                .min(StdDuration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
        }
        !self.stopping()
    }

    /// Takes the cluster's lock and starts renewing its lease; refuses a
    /// lock held by a live run, and a dead run's lock with the command that
    /// cleans up after it.
    /// Takes the cluster's lock; while a live run holds it, waits up to
    /// `wait_lock` (trying every 5 s; Ctrl-C stops the wait), saying once
    /// that it waits. A dead holder is reported at once: waiting would not
    /// help.
    async fn lock(&mut self) -> Result<(), RunError> {
        let deadline = self.wait_lock.map(|wait| std::time::Instant::now() + wait);
        let mut said = false;
        loop {
            match self.lock_once().await {
                Err(RunError::Busy(why)) => {
                    let Some(deadline) = deadline.filter(|d| std::time::Instant::now() < *d) else {
                        let waited = self
                            .wait_lock
                            .map(|w| format!(" (waited {}s)", w.as_secs()))
                            .unwrap_or_default();
                        return Err(RunError::Locked(format!("{why}{waited}")));
                    };
                    if !said {
                        said = true;
                        self.log(
                            None,
                            Entry::Observed {
                                source: Source::Harness,
                                node: None,
                                field: "lock".into(),
                                from: None,
                                to: format!("waiting for the lock: {why}"),
                                source_time: None,
                            },
                        );
                    }
                    let pause = std::time::Duration::from_secs(5)
                        .min(deadline.saturating_duration_since(std::time::Instant::now()));
                    let mut cancel = self.cancel.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = cancel.wait_for(|c| *c) => {
                            return Err(RunError::Locked(format!("{why} (stopped waiting: interrupted)")));
                        }
                    }
                }
                other => return other,
            }
        }
    }

    /// One attempt at the lock. `Busy` when a live run holds it (or is
    /// taking it): worth waiting for.
    async fn lock_once(&mut self) -> Result<(), RunError> {
        let owner = serde_json::to_value(self.owner_record())
            .map_err(|e| RunError::Cluster(format!("lock record: {e}")))?;
        let head = self.cluster.slurm.head.clone();
        let out = self
            .acquire(&owner, true)
            .await
            .map_err(|e| RunError::Cluster(e.to_string()))?;
        let token = match lock::parse_answer(&out.stdout) {
            Some(lock::LockState::Acquired(token)) => token,
            Some(lock::LockState::OnHold(hold)) => {
                let profile = self.profile_path.as_deref().unwrap_or("PROFILE");
                return Err(RunError::Held(format!(
                    "the cluster is held by hpchaos stop --hold ({}, {}): {}; no run starts until it is released with: hpchaos stop --cluster {profile} --release",
                    hold.by,
                    hold.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    hold.reason
                )));
            }
            Some(lock::LockState::Held {
                owner: Some(holder),
                lease_age,
                ..
            }) => {
                let this = lock::this_host();
                let boot = lock::this_boot();
                return Err(RunError::Locked(
                    match lock::stale_because(
                        &holder,
                        lease_age,
                        &this,
                        boot.as_deref(),
                        lock::pid_alive,
                    ) {
                        Some(why) => {
                            let profile = self
                                .profile_path
                                .as_deref()
                                .or(holder.profile.as_deref())
                                .unwrap_or("PROFILE");
                            let elsewhere = if holder.host == this {
                                String::new()
                            } else {
                                format!(
                                    " (on {}, where its journal is; if that journal is lost, release the lock without undoing anything with: hpchaos recover --cluster {profile} --release-lock {})",
                                    holder.host, holder.run_id
                                )
                            };
                            format!(
                                "{}, which is dead: {why}. What it did may still be applied; undo it and release the lock with: hpchaos recover --cluster {profile} {}{elsewhere}",
                                holder.describe(),
                                holder.journal
                            )
                        }
                        None => {
                            // On this host a stopped holder is alive: it
                            // may wake and act, whatever its lease says.
                            let stopped = if holder.here(&this, boot.as_deref())
                                && lock::pid_stopped(holder.pid)
                            {
                                format!(
                                    "; its process is STOPPED (it may wake and act): end it with kill -CONT {} then kill -INT {}",
                                    holder.pid, holder.pid
                                )
                            } else {
                                String::new()
                            };
                            return Err(RunError::Busy(format!(
                                "{} (its lease was renewed {}s ago{stopped}); wait for it to end (--wait-lock)",
                                holder.describe(),
                                lease_age.map_or("?".to_owned(), |a| a.to_string())
                            )));
                        }
                    },
                ));
            }
            Some(lock::LockState::Held { raw, lease_age, .. }) => {
                let profile = self.profile_path.as_deref().unwrap_or("PROFILE");
                return Err(RunError::Locked(if lock::ownerless_is_stale(lease_age) {
                    format!(
                        "{LOCK_DIR} on the head node has no readable owner record ({}) and is {}s old: a run died while taking it; release it with: hpchaos recover --cluster {profile}",
                        raw.trim(),
                        lease_age.unwrap_or_default()
                    )
                } else {
                    return Err(RunError::Busy(format!(
                        "{LOCK_DIR} on the head node is being taken by another run ({}s ago, no owner record yet); try again in a minute",
                        lease_age.map_or("?".to_owned(), |a| a.to_string())
                    )));
                }));
            }
            _ => {
                return Err(RunError::Cluster(format!(
                    "cannot take the lock {LOCK_DIR} on {}: exit {}: {}",
                    head.name,
                    out.status,
                    out.stderr.trim()
                )));
            }
        };
        let mut owner = owner;
        if let Some(fields) = owner.as_object_mut() {
            fields.insert("token".to_owned(), token.into());
        }
        self.log(None, Entry::LockAcquired { owner });
        self.hold(token);
        Ok(())
    }

    /// Holds the lease taken under `token`: renews it every sixth of its
    /// length on the head (each attempt, connecting included, bounded by
    /// that sixth: a hung attempt is followed by the next) and looks at
    /// every answer (see [`lease::Lease`]). A loss ends the renewals; the
    /// run stops acting at its next check and says so then, once.
    fn hold(&mut self, token: u64) {
        if let Some(old) = self.renewer.take() {
            old.abort();
        }
        let length = lock::lease();
        let held = lease::Lease::acquired(token, &self.run_id, length, lease::boot_clock());
        self.lease = Some(held.clone());
        let ssh = self.cluster.ssh.clone();
        let head = self.cluster.slurm.head.clone();
        let marker = lock::Owner::marker(&self.run_id);
        let stops = self.stops.clone();
        self.renewer = Some(tokio::spawn(async move {
            let idle = length / 6;
            let mut last = tokio::time::Instant::now();
            loop {
                // Shorter while a scenario is under way: a stop request is
                // read with the renewal. Looked at every half second, so a
                // scenario starting during a long wait shortens it at once.
                let every = if stops.active() {
                    idle.min(emergency::ACTIVE_RENEWAL)
                } else {
                    idle
                };
                let due = last + every;
                let now = tokio::time::Instant::now();
                if now < due {
                    tokio::time::sleep((due - now).min(StdDuration::from_millis(500))).await;
                    continue;
                }
                last = now;
                let sent = lease::boot_clock();
                let answer = tokio::time::timeout(
                    every.max(emergency::ACTIVE_RENEWAL),
                    renew_once(&ssh, &head, &marker, &held.fence(), Some(length)),
                )
                .await
                .map_or(
                    Err(lease::Unanswered::Timeout(every.as_secs())),
                    |answer| {
                        answer
                            .map(|(renewal, standing)| {
                                stops.heed(&standing);
                                renewal
                            })
                            .map_err(lease::Unanswered::from)
                    },
                );
                let lost = held
                    .renewal(sent, answer, &head.name)
                    .or_else(|| held.lost(lease::boot_clock()));
                // The run says it, once, with what became of its changes
                // (at its next look, within a poll).
                if lost.is_some() {
                    return;
                }
            }
        }));
    }

    /// This run's record in the lock (`owner.json`).
    fn owner_record(&self) -> lock::Owner {
        lock::Owner {
            run_id: self.run_id.clone(),
            host: lock::this_host(),
            pid: std::process::id(),
            journal: std::path::absolute(self.journal.path())
                .unwrap_or_else(|_| self.journal.path().to_path_buf())
                .display()
                .to_string(),
            profile: self.profile_path.clone(),
            started_at: self.clock.now(),
            lease_seconds: lock::lease().as_secs(),
            boot_id: lock::this_boot(),
            start_ticks: lock::process_start(std::process::id()),
        }
    }

    /// One try at the lock on the head with `owner` as its record
    /// ([`lock::ACQUIRE_SCRIPT`]), refused under a hold when `honour_hold`
    /// (a rollback under a lost lease is not); what the head printed.
    async fn acquire(
        &self,
        owner: &serde_json::Value,
        honour_hold: bool,
    ) -> Result<crate::cluster::ssh::Output, crate::cluster::ssh::SshError> {
        let record = owner.to_string();
        let hold = if honour_hold {
            emergency::HOLD_FILE
        } else {
            ""
        };
        self.cluster
            .ssh
            .run_as_root(
                &self.cluster.slurm.head,
                crate::cluster::privilege::Root::ClusterLock,
                &[
                    "sh",
                    "-c",
                    lock::ACQUIRE_SCRIPT,
                    "hpchaos",
                    LOCK_DIR,
                    &record,
                    lock::FENCE_FILE,
                    &self.run_id,
                    hold,
                ],
            )
            .await
    }

    /// Stops renewing the lease and releases the run's lock.
    async fn unlock(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        let marker = lock::Owner::marker(&self.run_id);
        lock::release(&self.cluster.ssh, &self.cluster.slurm.head, &marker).await;
    }

    async fn scenario(&mut self, loaded: &Loaded<Scenario>) -> Ending {
        let scenario = &loaded.value;
        let name = scenario.name.clone();
        let name = name.as_str();
        self.log(
            Some(name),
            scenario_started(loaded, scenario.workload.is_some()),
        );
        self.instances_before.clear();
        self.scenario_text = loaded.text.clone();
        self.stops.set_active(true);
        let mut workload = None;
        let mut ending = match self.start_workload(scenario, &mut workload).await {
            Err(reason) => Ending::new(ScenarioOutcome::Error, reason.to_string()),
            Ok(()) => self.with_workload(scenario, &mut workload).await,
        };
        if let Some(job) = workload.as_ref().filter(|w| w.submitted) {
            // Done once the job has left its nodes, not at scancel.
            let ok = self
                .cluster
                .slurm
                .scancel_and_wait(job.id, CANCEL_WAIT)
                .await;
            self.log(
                Some(name),
                Entry::Rollback {
                    step: Step::CancelCanary {
                        comment: job.comment.clone(),
                    }
                    .describe(),
                    ok: ok.is_ok(),
                    detail: match ok {
                        Ok(Some(waited)) => format!(
                            "scancel {} (canary), off its nodes after {:.1}s",
                            job.id,
                            waited.as_secs_f64()
                        ),
                        Ok(None) => format!(
                            "scancel {} (canary), still completing after {}s",
                            job.id,
                            CANCEL_WAIT.as_secs()
                        ),
                        Err(e) => e.to_string(),
                    },
                    undoes: job.intent,
                },
            );
        }
        // What a stop cut short is `interrupted`; a verdict reached before
        // it stands.
        if self.cancelled()
            && !matches!(
                ending.outcome,
                ScenarioOutcome::Passed | ScenarioOutcome::Failed | ScenarioOutcome::Interrupted
            )
        {
            ending = Ending::new(
                ScenarioOutcome::Interrupted,
                format!("interrupted: {}", ending.reason),
            );
        }
        self.say_stop_request(Some(name));
        self.stops.set_active(false);
        if let Some(request) = self.stops.requested()
            && ending.outcome == ScenarioOutcome::Interrupted
            && !ending.reason.contains("hpchaos stop")
        {
            ending.reason = format!("{}: {}", request.describe(), ending.reason);
        }
        // A lost lease is why a scenario stopped: said first.
        if let Some(why) = self.lease_lost() {
            if ending.outcome != ScenarioOutcome::Passed
                && ending.outcome != ScenarioOutcome::Failed
            {
                ending = Ending::new(
                    ScenarioOutcome::Interrupted,
                    format!(
                        "this run lost the cluster's lock ({why}): {}",
                        ending.reason
                    ),
                );
            }
        } else if let Some(err) = &self.journal_error {
            ending = Ending::new(
                ScenarioOutcome::Error,
                format!(
                    "cannot write the journal, so the run stopped acting (its rollback still ran): {err}"
                ),
            );
        }
        ending
    }

    /// One scenario with its workload (if any) in place: prepared, injected,
    /// watched, rolled back, and checked after recovery.
    async fn with_workload(
        &mut self,
        scenario: &Scenario,
        workload: &mut Option<WorkloadJob>,
    ) -> Ending {
        let name = scenario.name.as_str();
        let job = workload.as_ref().map(|w| w.id);
        let Prepared {
            targets,
            plan,
            undo,
        } = match self.prepare(scenario, job).await {
            Ok(prepared) => prepared,
            Err(ending) => return ending,
        };
        // A compound scenario's later steps, planned before any change.
        self.later.clear();
        let planned = match self.plan_steps(scenario, &targets, job).await {
            Ok(planned) => planned,
            Err(ending) => return ending,
        };
        let mut watched_targets = targets.clone();
        for step in &planned {
            for node in &step.targets {
                if !watched_targets.contains(node) {
                    watched_targets.push(node.clone());
                }
            }
        }
        if watched_targets.len() > targets.len() {
            let later: BTreeSet<String> =
                watched_targets[targets.len()..].iter().cloned().collect();
            let reached = match self.reconcile_host_keys(name, &later).await {
                Ok(()) => {
                    let nodes: Vec<String> = later.iter().cloned().collect();
                    self.reach_targets(scenario, &later, &nodes).await
                }
                Err(unread) => Err(unread.to_string()),
            };
            if let Err(why) = reached {
                return Ending::new(
                    ScenarioOutcome::Error,
                    format!("a later step's targets: {why} (nothing was changed)"),
                );
            }
        }
        let count_cluster = scenario
            .abort
            .as_ref()
            .is_some_and(|a| a.max_unhealthy_nodes.is_some());
        let baseline = self
            .baseline(&watched_targets, workload.as_mut(), count_cluster)
            .await;
        let mut judged = baseline.clone();
        judged.targets = targets.clone();
        self.instances_before = baseline.instance_ids.clone();
        self.later = planned.into_iter().map(steps::Live::new).collect();
        if let Some(ending) = self.step_triggers_ready(scenario).await {
            self.later.clear();
            return ending;
        }
        let controller_log = self.controller_log_offset(name).await;
        // Read now, while the controller answers (a fault on slurmctld
        // leaves none to ask); the watch journals it.
        if workload.is_some() {
            let _ = self.cluster.slurm.requeue_delay().await;
        }
        let actions: Vec<String> = plan.inject.iter().map(Step::describe).collect();
        let intent = match self
            .write_ahead(name, actions.join("; "), undo.clone())
            .await
        {
            Ok(id) => id,
            Err(reason) => {
                let outcome = if self.cancelled() {
                    ScenarioOutcome::Interrupted
                } else {
                    ScenarioOutcome::Error
                };
                return Ending::new(outcome, format!("{reason} (nothing was changed)"));
            }
        };
        let injected_at = self.clock.now();
        self.log(
            Some(name),
            Entry::InjectionStarted {
                nodes: targets.clone(),
                action: actions.join("; "),
            },
        );
        let (failures, never_started) = self.inject(name, &plan, job).await;
        let ending = if failures.is_empty() && !self.stopping() {
            let watched = Watched {
                baseline: &baseline,
                judged: &judged,
                injected_at,
                plan: &plan,
                controller_log,
            };
            self.watch_measured(scenario, watched, workload.as_mut())
                .await
        } else if self.cancelled() {
            Ending::new(
                ScenarioOutcome::Interrupted,
                if failures.is_empty() {
                    "interrupted right after the injection".to_owned()
                } else {
                    format!("interrupted during the injection: {}", failures.join("; "))
                },
            )
        } else {
            Ending::new(
                ScenarioOutcome::Error,
                format!("the injection did not take: {}", failures.join("; ")),
            )
        };
        // The later steps end with the watch, whatever ended it.
        let mut ending = ending;
        // A straggler's cost is throughput: measured once the watch is over.
        // Nothing was slowed when the injection failed: no figure.
        if let crate::scenario::model::Fault::Straggler(straggler) = &scenario.fault
            && let Some(job) = workload.as_ref()
            && failures.is_empty()
        {
            ending = self.throughput(name, straggler, injected_at, &job.steps_seen, ending);
        }
        if !self.later.is_empty() {
            let failures = self.close_steps(name, &ending.reason);
            if ending.outcome == ScenarioOutcome::Passed && !failures.is_empty() {
                ending = Ending::new(ScenarioOutcome::Failed, failures.join("; "));
            }
        }
        // Later steps first, last first: then the first step's own undo.
        self.roll_back_steps(name, job).await;
        if never_started {
            for step in &undo {
                self.log(
                    Some(name),
                    Entry::Rollback {
                        step: step.describe(),
                        ok: true,
                        detail: "nothing to undo: the injection never began".to_owned(),
                        undoes: Some(intent),
                    },
                );
            }
        } else {
            self.roll_back(name, intent, &undo, job).await;
        }
        if ending.outcome == ScenarioOutcome::Passed && !self.stopping() {
            return self
                .steady_after(scenario, &targets, job)
                .await
                .unwrap_or(ending);
        }
        ending
    }

    /// Measures and journals a straggler's throughput (the step rate in the
    /// minute before the injection, while the target was slow, and after),
    /// with what noticed it; fails a passed scenario whose slowdown is past
    /// its `max_slowdown`. A run that ended before the slow-down did
    /// (interrupted) was slowed only until then.
    fn throughput(
        &mut self,
        name: &str,
        straggler: &crate::scenario::model::Straggler,
        injected_at: chrono::DateTime<chrono::Utc>,
        steps: &[(chrono::DateTime<chrono::Utc>, u64)],
        ending: Ending,
    ) -> Ending {
        let now = self.clock.now();
        let slowed_until = now.min(injected_at + straggler.duration.as_chrono());
        let measured = crate::throughput::measure(
            steps,
            injected_at,
            slowed_until,
            now,
            chrono::TimeDelta::seconds(60),
            chrono::TimeDelta::seconds(2),
        );
        // What noticed it: HyperPod (a health event, a mark ending the
        // quiet window), the monitoring (an expectation seen).
        let so_far = self.report.so_far();
        let mut noticed: Vec<String> = Vec::new();
        if let Some(s) = so_far.scenarios.iter().rev().find(|s| s.name == name) {
            for entry in &s.timeline {
                if entry.source == crate::journal::Source::Hma {
                    noticed.push(format!("HMA: {}", entry.text));
                }
            }
            for m in &s.monitoring {
                if matches!(
                    m.verdict,
                    crate::report::Verdict::Met | crate::report::Verdict::Observed
                ) {
                    noticed.push(format!("monitoring {}: {}", m.name, m.detail));
                }
            }
            for p in &s.phases {
                if p.phase == crate::scenario::model::Phase::Quiet
                    && p.verdict == crate::report::Verdict::Missed
                {
                    noticed.push(format!("the cluster: {}", p.evidence));
                }
            }
        }
        self.log(
            Some(name),
            Entry::Throughput {
                throughput: measured.clone(),
                slowed_for: crate::duration::span(injected_at, slowed_until),
                noticed,
            },
        );
        match (straggler.max_slowdown, measured.slowdown) {
            (Some(limit), Some(slowdown))
                if slowdown > limit && ending.outcome == ScenarioOutcome::Passed =>
            {
                Ending::new(
                    ScenarioOutcome::Failed,
                    format!(
                        "the job ran {slowdown:.2}x slower while {} was slowed, more than max_slowdown {limit}: {}",
                        match straggler.slow {
                            crate::scenario::model::Slow::CpuQuota { .. } =>
                                "its CPU time on the target",
                            _ => "the target's GPUs",
                        },
                        measured.words()
                    ),
                )
            }
            (Some(limit), None) if ending.outcome == ScenarioOutcome::Passed => Ending::new(
                ScenarioOutcome::Failed,
                format!(
                    "the slowdown could not be measured ({}; readings before, during, after: {:?}, a rate needs {} over {} s or more), so max_slowdown {limit} cannot be judged: does the job print its steps, and did it run a while before the fault (a canary's `warmup_steps`)?",
                    measured.words(),
                    measured.samples,
                    crate::throughput::MIN_READINGS,
                    crate::throughput::MIN_SPAN_SECONDS
                ),
            ),
            _ => ending,
        }
    }

    /// Before any change: the targets resolved (journaled), the plan and
    /// its undo (the fault's own rollback, then the scenario's extra
    /// commands), every source the scenario needs reachable, no stop asked
    /// for, the steady state holding and the monitoring ready. `Err`: how
    /// the scenario ends without having changed anything.
    async fn prepare(&mut self, scenario: &Scenario, job: Option<u64>) -> Result<Prepared, Ending> {
        let name = scenario.name.as_str();
        let seed = self.clock.now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let targets = crate::targets::resolve_targets(&self.cluster, scenario, job, seed)
            .await
            .map_err(|reason| Ending::new(ScenarioOutcome::Aborted, reason.to_string()))?;
        self.log(
            Some(name),
            Entry::TargetsResolved {
                nodes: targets.clone(),
            },
        );
        let plan = faults::plan(&scenario.fault, &targets).for_run(&self.run_id);
        // The fault's own rollback, then the scenario's extra commands:
        // journaled with the injection, before it, as its undo.
        let extra: Vec<Step> = scenario
            .rollback
            .iter()
            .flat_map(|command| {
                self.places(&command.on, &targets)
                    .into_iter()
                    .map(|place| Step::RunFor {
                        on: place,
                        argv: command.command.clone(),
                        timeout: command.timeout,
                    })
            })
            .collect();
        let undo: Vec<Step> = plan.rollback.iter().chain(&extra).cloned().collect();
        // Every source the scenario needs answers before anything changes,
        // each node under the host key it should have now.
        let on_nodes = self.nodes_reached(scenario, &plan, &undo, &targets);
        let reached = match self.reconcile_host_keys(&scenario.name, &on_nodes).await {
            Ok(()) => self.reach_targets(scenario, &on_nodes, &targets).await,
            Err(unread) => Err(unread.to_string()),
        };
        // Root where the steps need it, on the nodes they run on (a
        // workload's are known only now; the preflight asked of others).
        let need = faults::root_on_nodes(plan.inject.iter().chain(&plan.verify).chain(&undo));
        let reached = match (reached, need) {
            (Ok(()), Some(need)) => {
                let nodes: Vec<_> = on_nodes.iter().map(|n| self.cluster.node(n)).collect();
                let refused = crate::preflight::sudo_refusals(&self.cluster, &nodes, need).await;
                match refused.is_empty() {
                    true => Ok(()),
                    false => Err(refused.join("; ")),
                }
            }
            (reached, _) => reached,
        };
        if let Err(reason) = reached {
            return Err(Ending::new(
                ScenarioOutcome::Error,
                format!("{reason} (nothing was changed)"),
            ));
        }
        self.pin_first_contacts(&on_nodes).await;
        if self.stopping() {
            return Err(Ending::new(
                ScenarioOutcome::Interrupted,
                "stopped before the injection: nothing was changed",
            ));
        }
        // The cluster may have started a change of its own since the
        // checks before the run (a suite's later scenario, a workload's
        // nodes known only now).
        let summary = match &self.cluster.api {
            Some(api) => api.summary().await.ok(),
            None => None,
        };
        if let Err(refusal) =
            crate::preflight::under_change(&self.cluster, scenario, summary.as_ref(), &targets)
                .await
        {
            // Not a verdict on the cluster's recovery: the run could not
            // start (exit 3), as the checks before it would have said.
            let why = refusal
                .why
                .split("; run when it is done")
                .next()
                .unwrap_or_default();
            return Err(Ending::new(
                ScenarioOutcome::Error,
                format!("{why}, since the checks before the run (nothing was changed)"),
            ));
        }
        if let Some(failure) = self
            .steady_state(scenario, Stage::Before, &targets, job)
            .await
        {
            return Err(Ending::new(
                ScenarioOutcome::Aborted,
                format!("steady state does not hold before injecting: {failure}"),
            ));
        }
        // The monitoring can be asked, and shows nothing yet: a question it
        // cannot answer, or one answered already, would time nothing.
        if let Some(failure) = self.monitoring_ready(scenario, &targets).await {
            return Err(Ending::new(
                ScenarioOutcome::Aborted,
                format!(
                    "the monitoring is not ready before injecting: {failure} (nothing was changed)"
                ),
            ));
        }
        // No stop condition holds (FIS checks its alarms before it starts).
        if let Some(ending) = self.stop_conditions_before(scenario, &targets).await {
            return Err(ending);
        }
        Ok(Prepared {
            targets,
            plan,
            undo,
        })
    }

    /// The injection's steps on every target at once (fan_out.rs), then,
    /// if they all took, its checks; each step's time journaled, then the
    /// injection's end. Returns the failures, and whether no step began
    /// (refused before the first: the lease, a stop), so nothing is to
    /// undo.
    async fn inject(
        &mut self,
        name: &str,
        plan: &faults::Plan,
        job: Option<u64>,
    ) -> (Vec<String>, bool) {
        let mut failures = Vec::new();
        let mut done = Vec::new();
        let results = self
            .execute_fanned(&plan.inject, job, fan_out::Mode::Change)
            .await;
        self.journal_steps(name, &plan.inject, &results);
        let never_started = results
            .iter()
            .all(|r| matches!(&r.result, Err(e) if e.never_began()));
        for r in results {
            let step = &plan.inject[r.index];
            match r.result {
                Ok(note) if note.is_empty() => done.push(step.describe()),
                Ok(note) => done.push(format!("{}: {note}", step.describe())),
                Err(err) => failures.push(err.to_string()),
            }
        }
        let mut verified = Vec::new();
        if failures.is_empty() {
            let results = self
                .execute_fanned(&plan.verify, job, fan_out::Mode::Change)
                .await;
            self.journal_steps(name, &plan.verify, &results);
            for r in results {
                let step = &plan.verify[r.index];
                match r.result {
                    Ok(note) if note.is_empty() => verified.push(step.describe()),
                    Ok(note) => verified.push(format!("{} ({note})", step.describe())),
                    Err(err) => failures.push(format!("{}: {err}", step.describe())),
                }
            }
        }
        let detail = if failures.is_empty() {
            let mut parts = vec![done.join("; ")];
            if !verified.is_empty() {
                parts.push(format!("verified: {}", verified.join("; ")));
            }
            parts.join("; ")
        } else {
            failures.join("; ")
        };
        self.log(
            Some(name),
            Entry::InjectionFinished {
                ok: failures.is_empty(),
                detail,
            },
        );
        (failures, never_started)
    }

    /// The watch, then what it cost, journaled (`watch_cost`): the API
    /// budget (AWS throttles per account), cycles, CPU and memory; the
    /// evidence collected meanwhile is journaled first.
    async fn watch_measured(
        &mut self,
        scenario: &Scenario,
        watched: Watched<'_>,
        workload: Option<&mut WorkloadJob>,
    ) -> Ending {
        let name = scenario.name.as_str();
        let calls_before = self.cluster.api.as_ref().map(|a| a.calls());
        let watch_started = std::time::Instant::now();
        let cpu_before = usage::cpu_ms();
        self.cycles = watch::Cycles::default();
        let ending = self.watch(scenario, watched, workload).await;
        self.journal_evidence(name).await;
        let cycles = std::mem::take(&mut self.cycles);
        let (p50, max) = cycles.slurm_wall_ms();
        let cost = Entry::WatchCost {
            seconds: watch_started.elapsed().as_secs_f64(),
            api_calls: self
                .cluster
                .api
                .as_ref()
                .zip(calls_before)
                .map(|(api, before)| api.calls().saturating_sub(before)),
            cycles: cycles.count,
            slurm_polls: cycles.slurm_walls.len() as u64,
            slurm_cycle_ms_p50: p50,
            slurm_cycle_ms_max: max,
            slurm_poll_gap_ms_max: cycles.slurm_gap_ms_max(),
            cpu_ms: usage::cpu_ms() - cpu_before,
            peak_rss_kib: usage::peak_rss_kib(),
        };
        self.log(Some(name), cost);
        if let Some(live) = self.live.as_mut() {
            live.clear();
        }
        ending
    }

    /// The steady state after recovery, for a scenario that passed: how it
    /// ends instead when the state does not hold (or a stop cut the check
    /// short: the check then says nothing about the cluster).
    async fn steady_after(
        &mut self,
        scenario: &Scenario,
        targets: &[String],
        job: Option<u64>,
    ) -> Option<Ending> {
        let failure = self
            .steady_state(scenario, Stage::After, targets, job)
            .await?;
        if self.cancelled() {
            return Some(Ending::new(
                ScenarioOutcome::Interrupted,
                "interrupted during the steady-state checks after recovery",
            ));
        }
        Some(Ending::new(
            ScenarioOutcome::Failed,
            format!("steady state does not hold after recovery: {failure}"),
        ))
    }

    /// Runs the undo steps of intent `intent`, each journaled; a second
    /// Ctrl-C meanwhile prints what is still being undone.
    async fn roll_back(&mut self, name: &str, intent: u64, undo: &[Step], job: Option<u64>) {
        // Another writer took the journal over: `recover` undoes what the
        // run left, and its records are the journal's; this run's would mix.
        if self.taken_over {
            self.say_lease_lost(
                Some(name),
                "this run undoes nothing: the rollback is recover's",
            );
            return;
        }
        // Still held? Asked of the head before anything is undone (a stop
        // asked for may come before any renewal noticed a lock taken away).
        // A head that cannot be asked does not hold the rollback up.
        if self.lease.is_some() && self.lease_lost().is_none() {
            let _ = self.fence_check().await;
        }
        // The lease lost: the run may undo only under a lock it holds. A
        // free lock (removed by hand) is taken again for the rollback; one
        // another run holds leaves the steps as they are, said as still
        // applied, for `recover` once that run has ended.
        if self.lease_lost().is_some() {
            match self.retake().await {
                Ok(how) => self.say_lease_lost(
                    Some(name),
                    &format!("{how}, only to undo this run's changes"),
                ),
                Err(not) => {
                    let when = match not {
                        NotRetaken::HeldByAnother(_) => "once that run has ended",
                        NotRetaken::Other(_) => "once the head answers",
                    };
                    let held = not.why();
                    let said = format!(
                        "nothing undone: {held}; this run's changes may still be applied (undo them with `hpchaos recover` {when})"
                    );
                    self.say_lease_lost(Some(name), &said);
                    for step in undo {
                        self.log(
                            Some(name),
                            Entry::Rollback {
                                step: step.describe(),
                                ok: false,
                                detail: format!(
                                    "not undone: this run lost the cluster's lock ({held})"
                                ),
                                undoes: Some(intent),
                            },
                        );
                    }
                    return;
                }
            }
        }
        self.say_undoing(undo);
        let results = self.execute_fanned(undo, job, fan_out::Mode::Undo).await;
        let mut unrecorded = Vec::new();
        for r in results {
            let (ok, detail) = match r.result {
                Ok(note) => (true, note),
                Err(err) => (false, err.to_string()),
            };
            let recorded_before = self.journal_error.is_none();
            self.log(
                Some(name),
                Entry::Rollback {
                    step: undo[r.index].describe(),
                    ok,
                    detail: detail.clone(),
                    undoes: Some(intent),
                },
            );
            if !recorded_before || self.journal_error.is_some() {
                unrecorded.push((r.index, if ok { Ok(()) } else { Err(detail) }));
            }
        }
        *self.undoing.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // Records that could not be written: what the cluster shows now is
        // said instead, so the run's end tells the truth about its steps.
        for (index, done) in unrecorded {
            let step = &undo[index];
            let (still_applied, found) = match done {
                Ok(()) => self.recheck(step).await,
                Err(error) => (true, format!("NOT undone ({error})")),
            };
            // Said at the run's end, with what the journal lists.
            self.unrecorded.push(Unrecorded {
                step: step.describe(),
                still_applied,
                found,
            });
        }
    }

    /// What the rollback is undoing, for a second Ctrl-C to print: every
    /// node's undo steps run at once (fan_out.rs), each node's in order, so
    /// the longest node's steps bound how long it may take.
    fn say_undoing(&self, undo: &[Step]) {
        let per_step = self.cluster.profile.ssh.command_timeout.as_std();
        let limit = |step: &Step| match step {
            Step::RunFor { timeout, .. } => timeout.as_std(),
            // Stopping a process waits up to 10 s before SIGKILL.
            Step::StopDetached { .. } => per_step * 2 + StdDuration::from_secs(10),
            _ => per_step,
        };
        let mut per_node: BTreeMap<Option<String>, StdDuration> = BTreeMap::new();
        for step in undo {
            *per_node.entry(fan_out::concerns(step)).or_default() += limit(step);
        }
        let most = per_node.values().max().copied().unwrap_or_default();
        let left: Vec<String> = undo.iter().map(Step::describe).collect();
        *self.undoing.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
            "{} step(s) on {} node(s) at once, up to {}s more: {}",
            left.len(),
            per_node.len(),
            most.as_secs(),
            left.join("; ")
        ));
    }

    /// Takes the cluster's lock again after the lease was lost, when it is
    /// free (removed by hand), to undo this run's changes; the new token
    /// fences them. Errors: who holds it, or why it could not be taken.
    async fn retake(&mut self) -> Result<String, NotRetaken> {
        let owner = serde_json::to_value(self.owner_record())
            .map_err(|e| NotRetaken::Other(e.to_string()))?;
        let head = self.cluster.slurm.head.clone();
        let out = self
            .acquire(&owner, false)
            .await
            .map_err(|e| NotRetaken::Other(format!("the lock could not be read: {e}")))?;
        // The run stays stopped for the reason it lost the first lease; a
        // lease held again only fences the rollback.
        self.lost = self.lease_lost();
        match lock::parse_answer(&out.stdout) {
            Some(lock::LockState::Acquired(token)) => {
                self.hold(token);
                Ok(format!(
                    "the lock was free, and was taken again under token {token}"
                ))
            }
            // Still ours: held again only under our own token (not taken
            // over by `recover`), whatever the lease's age.
            Some(lock::LockState::Held {
                owner: Some(holder),
                ..
            }) if holder.run_id == self.run_id => {
                let Some(held) = self.lease.clone() else {
                    return Err(NotRetaken::Other("this run holds no lease".to_owned()));
                };
                let marker = lock::Owner::marker(&self.run_id);
                match renew_once(&self.cluster.ssh, &head, &marker, &held.fence(), None)
                    .await
                    .map(|(renewal, _)| renewal)
                {
                    Ok(Some(lock::Renewal::Renewed)) => {
                        let token = held.token();
                        self.hold(token);
                        Ok(format!(
                            "the lock was still this run's (token {token}) and was held again"
                        ))
                    }
                    Ok(Some(lock::Renewal::Fenced { token })) => Err(NotRetaken::Other(format!(
                        "the lock was taken over under token `{token}` (by `hpchaos recover`)"
                    ))),
                    Ok(other) => Err(NotRetaken::Other(format!(
                        "the lock could not be held again: {other:?}"
                    ))),
                    Err(e) => Err(NotRetaken::Other(format!(
                        "the lock could not be held again: {e}"
                    ))),
                }
            }
            Some(lock::LockState::Held {
                owner: Some(holder),
                ..
            }) => Err(NotRetaken::HeldByAnother(format!(
                "the lock is held by {}",
                holder.describe()
            ))),
            Some(lock::LockState::Held { raw, .. }) => Err(NotRetaken::HeldByAnother(format!(
                "the lock is held by another run ({})",
                raw.trim()
            ))),
            _ => Err(NotRetaken::Other(format!(
                "the lock could not be taken: exit {}: {}",
                out.status,
                out.stderr.trim()
            ))),
        }
    }

    /// Undoes what a dead run's journal shows as still applied (for
    /// `hpchaos recover`), each step journaled as the rollback of its
    /// intent; returns the steps that could not be undone.
    pub async fn undo_pending(&mut self, pending: &[crate::journal::Pending]) -> Vec<String> {
        let mut failed = Vec::new();
        for item in pending {
            self.instances_before = item.instances.clone();
            let result = self.execute(&item.step, None).await;
            let (ok, detail) = match result {
                Ok(note) => (true, note),
                Err(err) => (false, err.to_string()),
            };
            crate::output::println(&format!(
                "{} {}{}",
                if ok { "undone:" } else { "FAILED:" },
                item.step.describe(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ));
            if !ok {
                failed.push(format!("{}: {detail}", item.step.describe()));
            }
            let scenario = item.scenario.clone();
            self.log(
                scenario.as_deref(),
                Entry::Rollback {
                    step: item.step.describe(),
                    ok,
                    detail,
                    undoes: Some(item.intent),
                },
            );
        }
        failed
    }

    /// Every node a step, an undo step or a probe of the scenario runs on.
    fn nodes_reached(
        &self,
        scenario: &Scenario,
        plan: &faults::Plan,
        undo: &[Step],
        targets: &[String],
    ) -> BTreeSet<String> {
        let mut on_nodes: BTreeSet<String> = plan
            .inject
            .iter()
            .chain(&plan.verify)
            .chain(undo)
            .chain(plan.follow_up.iter().flat_map(|(_, steps)| steps))
            .filter_map(Step::node)
            .collect();
        let probes = scenario
            .steady_state
            .iter()
            .filter_map(|c| match c {
                crate::scenario::model::Check::Probe(p) => Some(p),
                _ => None,
            })
            .chain(scenario.abort.iter().flat_map(|a| &a.probes));
        for probe in probes {
            for place in self.places(&probe.on, targets) {
                if let Place::Node(n) = place {
                    on_nodes.insert(n);
                }
            }
        }
        on_nodes
    }

    /// Why `node` could not be reached, in words. A pinned node whose key
    /// changed on the instance it was pinned on is no HyperPod
    /// replacement: refused, with how to forget the pin if it was rebuilt
    /// on purpose.
    fn unreachable(&self, node: &str, err: &crate::cluster::ssh::SshError) -> String {
        match (err, self.cluster.ssh.pin_of(node)) {
            (crate::cluster::ssh::SshError::HostKeyMismatch { fix, .. }, Some(pin)) => format!(
                "cannot reach target {node}: its host key changed while it still runs on the instance its key was pinned on ({}): not a replacement by HyperPod, so refused; if the node was rebuilt on purpose, forget the pin with `ssh-keygen -R {node} -f {}` and {fix}",
                if pin.instance_id.is_empty() {
                    "unknown"
                } else {
                    &pin.instance_id
                },
                self.cluster.ssh.pins_path().display()
            ),
            _ => format!("cannot reach target {node}: {err}"),
        }
    }

    /// Before anything changes: every target the fault's steps run on
    /// answers over SSH, and, where the API is configured, every target is
    /// one of the cluster's instances (so its recovery can be confirmed).
    async fn reach_targets(
        &self,
        scenario: &Scenario,
        on_nodes: &BTreeSet<String>,
        targets: &[String],
    ) -> Result<(), String> {
        // All at once (the connections stay open for the injection).
        {
            use futures::stream::{self, StreamExt};
            let reached: Vec<Result<(), String>> = stream::iter(on_nodes)
                .map(|node| async move {
                    self.cluster
                        .ssh
                        .run(&self.cluster.node(node), &["true"])
                        .await
                        .map(drop)
                        .map_err(|e| self.unreachable(node, &e))
                })
                .buffer_unordered(fan_out::FAN_OUT)
                .collect()
                .await;
            if let Some(Err(first)) = reached.into_iter().find(Result::is_err) {
                return Err(first);
            }
        }
        let needs_api = scenario.fault.needs_sagemaker()
            || matches!(
                scenario.expect.recovery,
                crate::scenario::model::Recovery::Replace
                    | crate::scenario::model::Recovery::Reboot
            );
        if let (Some(api), true) = (&self.cluster.api, needs_api) {
            let listed = api.named(targets).await.map_err(|e| e.to_string())?;
            let missing: Vec<&String> = targets
                .iter()
                .filter(|t| !listed.iter().any(|n| &n.node == *t))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "ListClusterNodes of cluster {} lists no instance for {}: check sagemaker.cluster_name in the profile",
                    api.cluster,
                    missing
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    fn places(&self, on: &Where, targets: &[String]) -> Vec<Place> {
        match on {
            Where::Head => vec![Place::Head],
            Where::Targets => targets.iter().map(|t| Place::Node(t.clone())).collect(),
            Where::Node(n) => vec![Place::Node(n.clone())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_in_one_second_get_their_own_folders_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .to_utc();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::starting_at(start));
        let (first, _) = open_run_dir(dir.path(), "nightly", clock.clone()).unwrap();
        let (second, _) = open_run_dir(dir.path(), "nightly", clock.clone()).unwrap();
        assert_eq!(first.file_name().unwrap(), "20261129T120000-nightly");
        assert_eq!(second.file_name().unwrap(), "20261129T120000-nightly-2");
        assert!(new_run_id(clock.as_ref()).starts_with("run-20261129T120000-"));
    }
}
