//! The report: what a run showed, built from its journal by a pure
//! function, and one exporter per output format (in the manner of
//! hyperfine's `src/export/`). Exporters only read a [`Report`]; none of
//! them looks at the journal or the cluster.

mod build;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod prometheus;
pub mod table;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::duration::Duration;
use crate::journal::{PhaseVerdict, Source, Stage, TimeSource};

use crate::scenario::model::{Phase, Recovery};

pub use crate::journal::{cost_text, watch_cost_text};
pub use build::{Builder, build};

/// Bumped when the JSON report changes incompatibly.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Everything one run showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    pub harness_version: String,
    pub cluster: String,
    /// The cluster's Slurm release (`24.11.5`), when the run read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_version: Option<String>,
    /// The suite's name, for suite runs.
    pub suite: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub scenarios: Vec<ScenarioReport>,
    /// Journal lines that could not be read: (line, problem).
    pub damaged_lines: Vec<(usize, String)>,
    /// For a journal cut short: the undo steps it shows as not done (what
    /// the dead run may have left applied on the cluster); after
    /// `recover`, what recover could not undo.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub still_applied: Vec<String>,
    /// The command that undoes `still_applied` and releases the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover_command: Option<String>,
    /// When `hpchaos recover` finished with this journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<DateTime<Utc>>,
    /// Why the run lost the cluster's lock mid-run, if it did (its
    /// `lease_lost` record): it stopped acting then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_lost: Option<String>,
}

/// How a run or a scenario ended, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Aborted,
    Error,
    Interrupted,
    /// The journal stops early (the harness crashed or is still running).
    Incomplete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::Error => "error",
            Status::Interrupted => "interrupted",
            Status::Incomplete => "incomplete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    pub fault: String,
    /// The fault's settings as the scenario wrote them, in YAML's flow
    /// style (`slow: {cpu_quota: {cpus: 0.05}}, duration: 20s`); absent
    /// when it has none or the journaled scenario does not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_settings: Option<String>,
    /// The scenario's tags: its categories in the resiliency score.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub recovery: Recovery,
    pub status: Status,
    /// Why it failed, aborted or stopped; empty when it passed.
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub injected_at: Option<DateTime<Utc>>,
    pub targets: Vec<String>,
    pub phases: Vec<PhaseReport>,
    pub steady_state: Vec<CheckReport>,
    pub lost_steps: Option<u64>,
    pub max_lost_steps: Option<u64>,
    /// How long a requeued job waits before it may run again, and where
    /// that was read (`"120 s (Slurm's default)"`): a resume after a
    /// requeue comes no sooner. Shown beside the resume phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue_delay: Option<String>,
    pub rollback: Vec<RollbackReport>,
    /// A straggler's throughput: the job's step rate before, during and
    /// after the slow-down, and what noticed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<ThroughputReport>,
    /// A compound scenario's later steps (its first step is the scenario's
    /// own phases above), in the order they were planned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    /// With several targets: each phase's end on each target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_node: Vec<NodePhaseReport>,
    /// With several targets: each phase summed up over them (from the
    /// injection to its end on each).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<PhaseSpread>,
    /// Evidence collected from targets marked for repair: (node, files
    /// relative to the run folder).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collected: Vec<CollectedReport>,
    /// What the failure cost the workload (GPU-hours, ETTR), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::FailureCost>,
    /// Regression gates against the run history's baseline, judged or
    /// not (with why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regression: Vec<RegressionReport>,
    /// Monitoring expectations, judged like phases (rows of the phase
    /// table and the gantt).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub monitoring: Vec<MonitoringReport>,
    /// Where the scenario's results were pushed, or why not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<PushReport>,
    /// What the watch cost (API requests, CPU, memory), when journaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchReport>,
    /// Everything that happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Reasons and log lines captured, verbatim.
    pub evidence: Vec<String>,
    /// The scenario file exactly as it ran.
    pub source: String,
}

/// A straggler's measured throughput.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputReport {
    #[serde(flatten)]
    pub rates: crate::throughput::Throughput,
    pub slowed_for_seconds: f64,
    /// What noticed the slow-down (empty: nothing did).
    pub noticed: Vec<String>,
}

/// A later step of a compound scenario: its own targets, injection and
/// phase set (counted from its own injection).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub name: String,
    pub fault: String,
    pub targets: Vec<String>,
    /// What triggers it, in words.
    pub trigger: String,
    pub recovery: Recovery,
    pub injected_at: Option<DateTime<Utc>>,
    /// `passed`, `failed`, or `not_started` (never injected).
    pub status: Status,
    pub reason: String,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// How long the phase itself took.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Option<Duration>,
    /// From the injection to the end of the phase.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Option<Duration>,
    /// Deadline counted from the injection.
    #[serde(rename = "deadline_seconds", serialize_with = "seconds")]
    pub deadline: Option<Duration>,
    pub verdict: Verdict,
    pub time_source: Option<TimeSource>,
    pub evidence: String,
}

/// Evidence collected from one node before its repair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectedReport {
    pub node: String,
    pub why: String,
    pub files: Vec<crate::journal::Collected>,
}

/// One monitoring expectation: what was looked for, where, and when the
/// monitoring first showed it (its own time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitoringReport {
    pub name: String,
    /// The PromQL, or `alert NAME{labels}`, as the scenario wrote it.
    pub query: String,
    /// `prometheus` or `alertmanager`.
    pub source: String,
    #[serde(rename = "deadline_seconds", serialize_with = "seconds")]
    pub deadline: Option<Duration>,
    pub seen_at: Option<DateTime<Utc>>,
    /// From the injection to `seen_at`.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Option<Duration>,
    pub verdict: Verdict,
    pub detail: String,
    /// The monitoring never saw the fault on some target.
    pub blind_spot: bool,
    /// An alert fired and was suppressed: nobody was paged.
    pub muted: bool,
}

/// One push of results: where, how many series, or the error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushReport {
    pub to: String,
    pub series: usize,
    pub error: Option<String>,
}

/// One regression gate: the phase's time against its baseline, or why it
/// was not judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionReport {
    pub phase: Phase,
    /// `None`: not judged (see `note`).
    pub passed: Option<bool>,
    pub seconds: Option<f64>,
    pub baseline_seconds: Option<f64>,
    pub baseline_from: Option<String>,
    pub increase_percent: Option<f64>,
    pub max_increase_percent: Option<f64>,
    /// Why it was not judged; empty when it was.
    pub note: String,
}

impl RegressionReport {
    /// The gate in words, both numbers included.
    pub fn describe(&self) -> String {
        match (self.seconds, self.baseline_seconds, self.increase_percent) {
            (Some(seconds), Some(baseline), Some(increase)) => describe_regression(
                self.phase.as_str(),
                seconds,
                increase,
                baseline,
                self.baseline_from.as_deref().unwrap_or("-"),
                self.max_increase_percent.unwrap_or(0.0),
            ),
            _ => format!("{} not judged: {}", self.phase, self.note),
        }
    }
}

/// A change smaller than this (s) never fails a gate: sub-second phases
/// wobble by more than any percentage from poll to poll.
pub const MIN_CHANGE_SECONDS: f64 = 1.0;

/// A regression gate in words, both numbers included (the journal's and
/// the report's wording; the gate itself is `history::gate`).
pub fn describe_regression(
    phase: &str,
    seconds: f64,
    increase_percent: f64,
    baseline_seconds: f64,
    baseline_from: &str,
    max_increase_percent: f64,
) -> String {
    format!(
        "{phase} ended {seconds:.2} s after the injection, {increase_percent:+.0}% against the baseline {baseline_seconds:.2} s ({baseline_from}); allowed {max_increase_percent:+.0}% (and {MIN_CHANGE_SECONDS:.0} s)"
    )
}

/// What a scenario's watch cost (journal's `watch_cost`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchReport {
    pub seconds: f64,
    pub api_calls: Option<u64>,
    pub api_calls_per_minute: Option<f64>,
    pub cycles: u64,
    pub slurm_cycle_ms_p50: f64,
    pub cpu_ms: f64,
    pub peak_rss_kib: u64,
}

/// One phase's end on one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodePhaseReport {
    pub node: String,
    pub phase: Phase,
    pub ended_at: DateTime<Utc>,
    /// From the injection to the phase's end on this node.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Option<Duration>,
    pub verdict: Verdict,
    pub time_source: TimeSource,
    pub evidence: String,
}

/// One phase over a scenario's targets: on how many it ended, and how long
/// after the injection (fastest, median, slowest, and which was slowest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpread {
    pub phase: Phase,
    pub targets: usize,
    pub reached: usize,
    #[serde(rename = "min_seconds", serialize_with = "seconds")]
    pub min: Option<Duration>,
    #[serde(rename = "p50_seconds", serialize_with = "seconds")]
    pub p50: Option<Duration>,
    #[serde(rename = "max_seconds", serialize_with = "seconds")]
    pub max: Option<Duration>,
    pub slowest: Option<String>,
}

/// Spans go to JSON as seconds (a number), which dashboards can plot.
fn seconds<S: serde::Serializer>(
    span: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match span {
        Some(span) => serializer.serialize_f64(span.as_std().as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// A phase's verdict as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    NotReached,
    Observed,
    /// Started, and the journal ends before it did.
    Unfinished,
    /// Never started: the scenario stopped early (aborted, interrupted,
    /// crashed) before it could.
    NotStarted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotReached => "not reached",
            Verdict::Observed => "observed",
            Verdict::Unfinished => "unfinished",
            Verdict::NotStarted => "not started",
        }
    }
}

impl From<PhaseVerdict> for Verdict {
    fn from(verdict: PhaseVerdict) -> Self {
        match verdict {
            PhaseVerdict::Met => Verdict::Met,
            PhaseVerdict::Missed => Verdict::Missed,
            PhaseVerdict::NotReached => Verdict::NotReached,
            PhaseVerdict::Observed => Verdict::Observed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub stage: Stage,
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackReport {
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// The source's own time for the change, when it gave one.
    pub source_time: Option<DateTime<Utc>>,
    pub source: Source,
    pub node: Option<String>,
    pub text: String,
}

/// One output format.
pub trait Exporter {
    fn render(&self, report: &Report) -> String;
}

/// The formats `hpchaos report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Junit,
    /// Prometheus's text exposition format, for a Pushgateway (not among
    /// the files a run writes).
    Prometheus,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Table, Format::Markdown, Format::Json, Format::Junit];

    pub fn exporter(self) -> Box<dyn Exporter> {
        match self {
            Format::Table => Box::new(table::TableExporter),
            Format::Markdown => Box::new(markdown::MarkdownExporter),
            Format::Json => Box::new(json::JsonExporter),
            Format::Junit => Box::new(junit::JunitExporter),
            Format::Prometheus => Box::new(prometheus::PrometheusExporter),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Junit => "junit.xml",
            Format::Prometheus => "prom",
        }
    }
}

impl ScenarioReport {
    /// The requeue delay read at the injection, where it bears on a phase:
    /// only a scenario that times a resume (a straggler, a job that fails,
    /// a quiet window have none to delay).
    pub fn requeue_delay_shown(&self) -> Option<&str> {
        let resumes = self
            .phases
            .iter()
            .chain(self.steps.iter().flat_map(|s| s.phases.iter()))
            .any(|p| p.phase == crate::scenario::model::Phase::Resume);
        self.requeue_delay.as_deref().filter(|_| resumes)
    }
}
