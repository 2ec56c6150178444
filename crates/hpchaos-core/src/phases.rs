//! Events → phase boundaries and verdicts: the pure core of a run. Given
//! when the fault was injected, what things looked like before it, what
//! the scenario expects, and what the watchers saw (in any order, some
//! missing, sources' clocks a little apart), decide when each phase ended,
//! by whose clock, and whether it met its deadline.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::cluster::controller_log::NodeNews;
use crate::cluster::job_state::JobState;
use crate::cluster::node_state::NodeState;
pub use crate::cluster::slurm::BootWitness;
use crate::cluster::slurm::is_hyperpod_mark;
use crate::duration::Duration;
use crate::journal::{PhaseVerdict, Source, TimeSource};
use crate::scenario::model::{Phase, Recovery};

/// What a watcher saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A target node in `sinfo`.
    SlurmNode {
        node: String,
        /// Decoded once (see [`NodeState`]).
        state: NodeState,
        reason: String,
    },
    /// A target node in `ListClusterNodes`.
    ApiNode {
        node: String,
        /// `InstanceStatus.Status` as the API gives it, for the words.
        status: String,
        /// `Running`, decoded once ([`crate::cluster::sagemaker::ApiNode::running`]).
        running: bool,
        instance_id: String,
        launch_time: Option<DateTime<Utc>>,
    },
    /// The workload job in `scontrol show job`.
    Job {
        /// Decoded once (see [`JobState`]).
        state: JobState,
        nodes: Vec<String>,
        restarts: u32,
    },
    /// The workload job is gone from Slurm.
    JobGone,
    /// A progress line of the workload (`step N`); `exact` is false for a
    /// step printed to a few digits (`1.2e+4`).
    Progress { step: u64, exact: bool },
    /// The job says it started again: its output rewritten from the start
    /// (a requeued job's output is truncated), a line saying it resumed
    /// from a checkpoint, or HyperPod's auto-resume retrying the step in
    /// place. `from`: the checkpoint's step, when said.
    JobRestarted { from: Option<u64>, said: String },
    /// The job says it hit a fault HyperPod's health agent does not see:
    /// its collective watchdog gave up on a rank (PyTorch's `Watchdog
    /// caught collective operation timeout`), NCCL failed a collective, a
    /// checkpoint could not be written (`No space left on device`).
    JobFault { said: String },
    /// The job says it wrote a checkpoint at `step` (its checkpoint
    /// pattern): what a restart goes back to.
    Checkpoint { step: u64 },
    /// Slurm's controllers as `scontrol ping` lists them and whether Slurm
    /// answers (`cluster/controllers.rs`): a backup in control ends
    /// `takeover`.
    Controllers(crate::cluster::controllers::Controllers),
    /// A line of the controller log about a target node.
    ControllerLog {
        node: String,
        message: String,
        /// What it says, decoded once.
        news: NodeNews,
    },
    /// A target's boot as slurmd reports it (`scontrol show node`).
    NodeBoot { node: String, boot: BootWitness },
    /// A detection HyperPod's Health Monitoring Agent recorded on a
    /// target (`cluster/hma.rs`): the event's `source_time` is HMA's `ts`.
    HealthEvent {
        node: String,
        /// What HMA said, in words.
        words: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When the harness saw it.
    pub seen: DateTime<Utc>,
    /// When the source says it happened, if it says.
    pub source_time: Option<DateTime<Utc>>,
    pub source: Source,
    pub observation: Observation,
}

/// How things were just before the injection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub targets: Vec<String>,
    pub instance_ids: BTreeMap<String, String>,
    /// Each target's instance group (for HMA's stream names).
    pub instance_groups: BTreeMap<String, String>,
    pub launch_times: BTreeMap<String, DateTime<Utc>>,
    /// Whether a workload job is watched.
    pub workload: bool,
    /// The workload's last step before the fault.
    pub progress: Option<u64>,
    /// The step of the workload's last checkpoint before the fault, when
    /// its output said one (the scenario's checkpoint pattern).
    pub checkpoint: Option<u64>,
    /// Each target's boot and slurmd start before the fault.
    pub boots: BTreeMap<String, BootWitness>,
    /// The nodes already out of service before the fault: not counted
    /// against `max_unhealthy_nodes` (a large cluster always has some).
    pub unhealthy_before: std::collections::BTreeSet<String>,
}

impl Baseline {
    /// Whether `node` is one of the scenario's targets.
    pub fn is_target(&self, node: &str) -> bool {
        self.targets.iter().any(|t| t == node)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub recovery: Recovery,
    /// The phases timed, in order (see `Expect::phases`).
    pub phases: Vec<Phase>,
    /// Counted from the injection.
    pub deadlines: BTreeMap<Phase, Duration>,
    pub quiet_for: Option<Duration>,
    pub max_lost_steps: Option<u64>,
}

/// The end of a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    pub at: DateTime<Utc>,
    pub time_source: TimeSource,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseResult {
    pub phase: Phase,
    pub started_at: Option<DateTime<Utc>>,
    pub ended: Option<Boundary>,
    pub deadline: Option<Duration>,
    /// `None` while the phase may still end in time.
    pub verdict: Option<PhaseVerdict>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub phases: Vec<PhaseResult>,
    pub lost_steps: Option<u64>,
    /// Every phase has a verdict: nothing more to wait for.
    pub settled: bool,
    pub passed: bool,
    /// Why it failed; empty when it passed or is not settled.
    pub reason: String,
    /// Why the open phases will never end, when that is known before
    /// their deadlines (the cluster dropped the mark): the evidence their
    /// `not_reached` is journaled with.
    pub open_because: Option<String>,
}

/// How long a target must stay usable without its mark, with no sign of
/// HyperPod's recovery, before the mark is called dropped: several API
/// polls, so a replacement the API has not shown yet is not mistaken.
pub const MARK_DROPPED_AFTER: TimeDelta = TimeDelta::seconds(30);

/// The mark (`Action:Replace`/`Action:Reboot`) a target carried after the
/// fault is gone while the node is usable again and nothing of HyperPod's
/// recovery was seen for [`MARK_DROPPED_AFTER`]: no new instance or status
/// other than `Running` in the API, no reboot or not-responding spell in
/// Slurm. That is a cluster that dropped the mark (slurmctld restarted
/// without its saved state, or someone resumed the node by hand), and no
/// recovery can follow. Only judged where the API knows the target (its
/// instance id is in the baseline), since without it a replacement could
/// not be seen. Returns the evidence.
fn mark_dropped(
    injected_at: DateTime<Utc>,
    baseline: &Baseline,
    events: &[&Event],
    tracker: &Tracker,
    now: DateTime<Utc>,
) -> Option<String> {
    let mut said = Vec::new();
    for target in &baseline.targets {
        let instance = baseline.instance_ids.get(target)?;
        let rows: Vec<(&Event, NodeState, &str)> = events
            .iter()
            .filter_map(|e| match &e.observation {
                Observation::SlurmNode {
                    node,
                    state,
                    reason,
                } if node == target => Some((*e, state.clone(), reason.as_str())),
                _ => None,
            })
            .collect();
        let marked = rows
            .iter()
            .rfind(|(_, state, reason)| !state.is_usable() && is_hyperpod_mark(reason))?;
        let (back, state, reason) = rows.last()?;
        // Usable again (Slurm 24.11 keeps the reason of a node resumed by
        // hand, so the reason alone does not tell).
        if !state.is_usable() || back.seen <= marked.0.seen {
            return None;
        }
        if now - back.seen < MARK_DROPPED_AFTER || tracker.went_away.contains(target) {
            return None;
        }
        let recovering = events.iter().any(|e| match &e.observation {
            Observation::ApiNode {
                node,
                running,
                instance_id,
                ..
            } => node == target && (!running || instance_id != instance),
            Observation::NodeBoot { node, boot } => {
                node == target && boot.boot_time.is_some_and(|t| t > injected_at)
            }
            _ => false,
        });
        if recovering {
            return None;
        }
        said.push(format!(
            "{target}, marked `{}` after the fault, has been usable again since {} ({state}{}) and HyperPod did nothing (still {instance}, Running, no reboot)",
            marked.2,
            back.seen.format("%H:%M:%S"),
            if reason.is_empty() {
                ", no reason".to_owned()
            } else {
                format!(", its old reason {reason} left on it")
            },
        ));
    }
    (!said.is_empty()).then(|| {
        format!(
            "the cluster dropped the mark, so no recovery will follow (slurmctld restarted without its saved state, or the node was resumed by hand): {}",
            said.join("; ")
        )
    })
}

/// The facts a quiet scenario is judged from: when the fault was injected,
/// the state before it, what the scenario expects, the time of judging and
/// whether the run ended.
#[derive(Clone, Copy)]
struct QuietRun<'a> {
    injected_at: DateTime<Utc>,
    baseline: &'a Baseline,
    expectation: &'a Expectation,
    now: DateTime<Utc>,
    finished: bool,
}

/// Judges the events seen up to `now`. `finished` says no more events will
/// come (the run ended), so open phases are not reached.
pub fn judge(
    injected_at: DateTime<Utc>,
    baseline: &Baseline,
    expectation: &Expectation,
    events: &[Event],
    now: DateTime<Utc>,
    finished: bool,
) -> Judgement {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| e.seen);
    let order = expectation.phases.as_slice();
    let mut ends: Vec<Option<Boundary>> = vec![None; order.len()];
    let mut tracker = Tracker {
        peak: baseline.progress,
        checkpoint: baseline.checkpoint,
        injected_at: Some(injected_at),
        ..Tracker::default()
    };

    if expectation.recovery == Recovery::None {
        let run = QuietRun {
            injected_at,
            baseline,
            expectation,
            now,
            finished,
        };
        return judge_quiet(run, &events, &tracker, &mut ends[0]);
    }

    close_phases(
        order,
        &mut ends,
        &events,
        &mut tracker,
        baseline,
        expectation,
    );
    sharpen_detect(order, &mut ends, &events, &tracker, baseline, expectation);
    hma_first(order, &mut ends, &events, &tracker, baseline, injected_at);
    clamp_boundaries(&mut ends, injected_at);
    let phases = phase_results(order, &ends, expectation, injected_at, finished);
    let lost_steps = tracker.lost_steps(expectation.recovery);
    // A mark dropped after the detection: the phases still open end now,
    // not at their deadlines.
    let waiting = ends.first().is_some_and(Option::is_some) && ends.iter().any(Option::is_none);
    let dropped = matches!(expectation.recovery, Recovery::Replace | Recovery::Reboot) && waiting;
    if dropped && let Some(why) = mark_dropped(injected_at, baseline, &events, &tracker, now) {
        let open = |p: &PhaseResult| p.ended.is_none();
        return not_reached_now(injected_at, phases, open, why, lost_steps, expectation);
    }
    // The job ended for good while its resume is awaited (auto-resume
    // answered ResumeAction=NONE, or it was cancelled): the resume is not
    // reached now, not at its deadline. The node's own phases still open
    // (replace, rejoin) are still watched: the cluster may yet repair it.
    let awaiting_resume = phases
        .iter()
        .any(|p| p.phase == Phase::Resume && p.ended.is_none());
    if awaiting_resume
        && expectation.recovery != Recovery::JobFails
        && let Some(why) = job_ended(&events)
    {
        let resume = |p: &PhaseResult| p.phase == Phase::Resume;
        return not_reached_now(injected_at, phases, resume, why, lost_steps, expectation);
    }
    // A controller's change must keep the running jobs (the backup loads
    // the state the primary saved): a job that ended fails the scenario,
    // whether the takeover came or not.
    if expectation.recovery == Recovery::Takeover
        && let Some(why) = job_ended(&events)
    {
        let why = format!("the job did not outlive the controller's change: {why}");
        let open = |p: &PhaseResult| p.ended.is_none();
        let mut judgement = not_reached_now(
            injected_at,
            phases,
            open,
            why.clone(),
            lost_steps,
            expectation,
        );
        if judgement.passed {
            judgement.passed = false;
            judgement.reason = why;
        }
        return judgement;
    }
    finish(injected_at, phases, lost_steps, expectation)
}

/// The judgement when `why` says the phases `which` picks will never end:
/// not reached now, not at their deadlines, `why` leading the reason and
/// kept as the evidence they are journaled with.
fn not_reached_now(
    injected_at: DateTime<Utc>,
    mut phases: Vec<PhaseResult>,
    which: impl Fn(&PhaseResult) -> bool,
    why: String,
    lost_steps: Option<u64>,
    expectation: &Expectation,
) -> Judgement {
    for phase in phases.iter_mut().filter(|p| which(p)) {
        phase.verdict = Some(PhaseVerdict::NotReached);
    }
    let mut judgement = finish(injected_at, phases, lost_steps, expectation);
    judgement.reason = format!("{why}; {}", judgement.reason);
    judgement.open_because = Some(why);
    judgement
}

/// The workload job's end, when the last word about it is that it ended
/// (a final state, or gone from Slurm), with the words: `job ended FAILED,
/// not requeued`. A requeued job is PENDING, never final.
fn job_ended(events: &[&Event]) -> Option<String> {
    let last = events.iter().rev().find_map(|e| match &e.observation {
        Observation::Job {
            state, restarts, ..
        } => Some(Some((state, *restarts))),
        Observation::JobGone => Some(None),
        _ => None,
    })?;
    match last {
        Some((JobState::Cancelled, _)) => Some(
            "the job was cancelled (CANCELLED: scancel or an operator), so nothing can resume it"
                .to_owned(),
        ),
        Some((state, restarts)) if state.is_final() => Some(format!(
            "the job ended {state}, not requeued{}{}",
            match restarts {
                0 => String::new(),
                n => format!(" again after {n} requeue(s)"),
            },
            if *state == JobState::Failed {
                " (HyperPod's auto-resume answers ResumeAction=NONE when it finds no unhealthy node)"
            } else {
                ""
            }
        )),
        Some(_) => None,
        None => Some("the job is gone from Slurm, not requeued".to_owned()),
    }
}

/// Judges a scenario that expects no recovery: disturbed if the targets
/// change within the quiet window, met once the window passed (or the run
/// ended) without a change. `phase` is the quiet phase's end, set when it
/// is met. Returns the judgement.
fn judge_quiet(
    run: QuietRun<'_>,
    events: &[&Event],
    tracker: &Tracker,
    phase: &mut Option<Boundary>,
) -> Judgement {
    let QuietRun {
        injected_at,
        baseline,
        expectation,
        now,
        finished,
    } = run;
    let window = expectation.quiet_for.unwrap_or(Duration::from_secs(120));
    let window_end = injected_at + window.as_chrono();
    let disturbance = events
        .iter()
        .filter(|e| e.seen <= window_end)
        // An unanswered ping alone is no reaction (see NodeNews::unanswered).
        .filter(|e| {
            !matches!(
                &e.observation,
                Observation::ControllerLog { news, .. } if news.unanswered && !news.returned
            )
        })
        .find_map(|e| {
            tracker
                .detect(baseline, expectation, e)
                .map(|b| (b, e.seen))
        });
    let verdict = match disturbance {
        Some((boundary, _)) => {
            let reason = format!(
                "the cluster reacted within the quiet window: {}",
                boundary.evidence
            );
            return quiet_judgement(
                injected_at,
                window,
                Some(boundary),
                PhaseVerdict::Missed,
                reason,
            );
        }
        None if now >= window_end || finished => {
            *phase = Some(Boundary {
                at: window_end,
                time_source: TimeSource::Observed,
                evidence: format!("no change for {window}"),
            });
            PhaseVerdict::Met
        }
        None => {
            return quiet_judgement(injected_at, window, None, PhaseVerdict::Met, String::new())
                .unsettled();
        }
    };
    quiet_judgement(injected_at, window, phase.clone(), verdict, String::new())
}

/// Walks the events in the order they were seen, feeding `tracker`, and
/// sets in `ends` the end of each phase of `order` they close (and of the
/// earlier phases that end implies).
fn close_phases(
    order: &[Phase],
    ends: &mut [Option<Boundary>],
    events: &[&Event],
    tracker: &mut Tracker,
    baseline: &Baseline,
    expectation: &Expectation,
) {
    let mut latest: BTreeMap<String, &Event> = BTreeMap::new();
    for event in events {
        tracker.observe(event);
        if tracker.first_resumed.is_none() && tracker.resume_boundary(baseline, event).is_some() {
            tracker.first_resumed = Some((*event).clone());
        }
        latest.insert(event_key(event), event);
        // The furthest phase this event closes; earlier open phases are
        // implied by it (a replaced node was drained, even if unseen).
        let current = ends.iter().position(Option::is_none);
        let Some(current) = current else { break };
        // Only phases that cannot look like the state before the fault may
        // imply others: a healthy node is no proof of a rejoin.
        let reached = (current..order.len())
            .rev()
            .filter(|i| *i == current || implies_earlier(order[*i]))
            .find_map(|i| {
                tracker
                    .closes(order[i], baseline, expectation, event)
                    .map(|b| (i, b))
            });
        if let Some((index, boundary)) = reached {
            for end in ends.iter_mut().take(index).skip(current) {
                *end = Some(Boundary {
                    at: boundary.at,
                    time_source: boundary.time_source,
                    evidence: format!("implied by {}: {}", order[index], boundary.evidence),
                });
            }
            let closed_at = boundary.at;
            ends[index] = Some(boundary);
            // The state each source was last seen in may already end the
            // phases that follow (a node seen idle a moment before its
            // replacement was seen has rejoined by then).
            catch_up(
                ends,
                order,
                &latest,
                closed_at,
                tracker,
                baseline,
                expectation,
            );
        }
    }
}

/// Moves the detection's end to the controller log's millisecond time
/// when the log shows the same detection within sinfo's whole second.
fn sharpen_detect(
    order: &[Phase],
    ends: &mut [Option<Boundary>],
    events: &[&Event],
    tracker: &Tracker,
    baseline: &Baseline,
    expectation: &Expectation,
) {
    // The more precise clock wins: sinfo's reason time has whole seconds;
    // when the controller log shows the same detection within that second
    // (read a poll later), its millisecond time is the boundary.
    if let (Some(Phase::Detect), Some(Some(end))) = (order.first(), ends.first())
        && end.time_source == TimeSource::Source
        && end.at.timestamp_subsec_nanos() == 0
        && let Some(precise) = events
            .iter()
            .filter(|e| matches!(e.observation, Observation::ControllerLog { .. }))
            .filter(|e| {
                e.source_time
                    .is_some_and(|t| t >= end.at && t < end.at + TimeDelta::seconds(1))
            })
            .find_map(|e| tracker.detect(baseline, expectation, e))
    {
        ends[0] = Some(precise);
    }
}

/// HMA's own record is the earliest witness of a detection (it decides,
/// then marks the node in Slurm): a detection it recorded on a target at
/// or before the detect boundary the other sources gave is the boundary
/// (source: its `ts`), whichever source was read first. Its whole-second
/// `ts` within the injection's own second is the injection.
fn hma_first(
    order: &[Phase],
    ends: &mut [Option<Boundary>],
    events: &[&Event],
    tracker: &Tracker,
    baseline: &Baseline,
    injected_at: DateTime<Utc>,
) {
    let (Some(Phase::Detect), Some(Some(end))) = (order.first(), ends.first()) else {
        return;
    };
    let earliest = events
        .iter()
        .filter_map(|e| match &e.observation {
            Observation::HealthEvent { node, words }
                if baseline.is_target(node) && tracker.after_injection(e.source_time) =>
            {
                Some((e.source_time?, node, words))
            }
            _ => None,
        })
        .min_by_key(|(at, _, _)| *at);
    if let Some((at, node, words)) = earliest
        && at <= end.at
    {
        let mut evidence = format!("hma {node}: {words}");
        if at < injected_at {
            evidence.push_str(" (HMA's ts has whole seconds: within the injection's second)");
        }
        ends[0] = Some(Boundary {
            at: at.max(injected_at),
            time_source: TimeSource::Source,
            evidence,
        });
    }
}

/// Clamps each phase's end to be no earlier than the one before it (the
/// first, no earlier than the injection), saying so in its evidence.
fn clamp_boundaries(ends: &mut [Option<Boundary>], injected_at: DateTime<Utc>) {
    // Boundaries never run backwards: a source clock a little behind the
    // harness's is clamped to the previous boundary.
    let mut previous = injected_at;
    for end in ends.iter_mut().flatten() {
        if end.at < previous {
            end.evidence = format!(
                "{} (clamped: source clock behind by {}ms)",
                end.evidence,
                (previous - end.at).num_milliseconds()
            );
            end.at = previous;
        }
        previous = end.at;
    }
}

/// Each phase of `order` with its start (the end of the one before, the
/// first at the injection), end, deadline and verdict.
fn phase_results(
    order: &[Phase],
    ends: &[Option<Boundary>],
    expectation: &Expectation,
    injected_at: DateTime<Utc>,
    finished: bool,
) -> Vec<PhaseResult> {
    let mut phases = Vec::with_capacity(order.len());
    let mut started = Some(injected_at);
    for (phase, end) in order.iter().zip(ends) {
        let deadline = expectation.deadlines.get(phase).copied();
        let verdict = verdict_of(end.as_ref(), deadline, injected_at, finished);
        phases.push(PhaseResult {
            phase: *phase,
            started_at: started,
            ended: end.clone(),
            deadline,
            verdict,
        });
        started = end.as_ref().map(|b| b.at);
    }
    phases
}

/// The node an observation is about; `None` for the workload's (the job,
/// its progress), which concerns every target.
fn node_of(observation: &Observation) -> Option<&str> {
    match observation {
        Observation::SlurmNode { node, .. }
        | Observation::ApiNode { node, .. }
        | Observation::ControllerLog { node, .. }
        | Observation::HealthEvent { node, .. }
        | Observation::NodeBoot { node, .. } => Some(node),
        Observation::Job { .. }
        | Observation::JobGone
        | Observation::Progress { .. }
        | Observation::JobRestarted { .. }
        | Observation::JobFault { .. }
        | Observation::Checkpoint { .. }
        | Observation::Controllers(_) => None,
    }
}

/// A target whose last HyperPod mark is not `expected` (`Action:Replace`
/// where the scenario expects `Action:Reboot`), in words. The last, not
/// the first: HyperPod escalates a reboot that did not help to a replace.
pub fn wrong_mark(baseline: &Baseline, expected: &str, events: &[Event]) -> Option<String> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for event in events {
        if let Observation::SlurmNode {
            node,
            state,
            reason,
        } = &event.observation
            && baseline.is_target(node)
            && !state.is_usable()
            && is_hyperpod_mark(reason)
        {
            last.insert(node, reason);
        }
    }
    last.into_iter()
        .find(|(_, reason)| *reason != expected)
        .map(|(node, reason)| {
            format!(
                "HyperPod marked {node} `{reason}`, not the `{expected}` the scenario expects (expect.reason)"
            )
        })
}

/// Each target judged on its own: the events about it and the workload's,
/// as if it were the only target. Keyed by node name.
pub fn judge_per_node(
    injected_at: DateTime<Utc>,
    baseline: &Baseline,
    expectation: &Expectation,
    events: &[Event],
    now: DateTime<Utc>,
    finished: bool,
) -> BTreeMap<String, Judgement> {
    baseline
        .targets
        .iter()
        .map(|target| {
            let own = Baseline {
                targets: vec![target.clone()],
                ..baseline.clone()
            };
            let events: Vec<Event> = events
                .iter()
                .filter(|e| node_of(&e.observation).is_none_or(|n| n == target))
                .cloned()
                .collect();
            let judgement = judge(injected_at, &own, expectation, &events, now, finished);
            (target.clone(), judgement)
        })
        .collect()
}

/// The scenario's judgement and each target's. With one target they are
/// the same. With several, a recovery phase ends when it has ended on
/// every target (the last one's boundary, named), and meets its deadline
/// only if it did so on every one; a quiet scenario is disturbed by a
/// change on any target, as [`judge`] says of them all at once.
pub fn judge_scenario(
    injected_at: DateTime<Utc>,
    baseline: &Baseline,
    expectation: &Expectation,
    events: &[Event],
    now: DateTime<Utc>,
    finished: bool,
) -> (Judgement, BTreeMap<String, Judgement>) {
    let whole = judge(injected_at, baseline, expectation, events, now, finished);
    if baseline.targets.len() < 2 || expectation.recovery == Recovery::None {
        let per_node = baseline
            .targets
            .iter()
            .map(|t| (t.clone(), whole.clone()))
            .collect();
        return (whole, per_node);
    }
    let per_node = judge_per_node(injected_at, baseline, expectation, events, now, finished);
    let count = per_node.len();
    let mut phases = Vec::with_capacity(expectation.phases.len());
    let mut started = Some(injected_at);
    for (index, phase) in expectation.phases.iter().enumerate() {
        let ends: Vec<(&String, Option<&Boundary>)> = per_node
            .iter()
            .map(|(node, j)| (node, j.phases.get(index).and_then(|p| p.ended.as_ref())))
            .collect();
        let reached = ends.iter().filter(|(_, b)| b.is_some()).count();
        let last = ends
            .iter()
            .filter_map(|(node, b)| b.map(|b| (*node, b)))
            .max_by_key(|(_, b)| b.at);
        let ended = match last {
            Some((node, boundary)) if reached == count => Some(Boundary {
                at: boundary.at,
                time_source: boundary.time_source,
                evidence: format!("last of {count} targets, {node}: {}", boundary.evidence),
            }),
            _ => None,
        };
        let deadline = expectation.deadlines.get(phase).copied();
        let verdict = verdict_of(ended.as_ref(), deadline, injected_at, finished);
        phases.push(PhaseResult {
            phase: *phase,
            started_at: started,
            ended: ended.clone(),
            deadline,
            verdict,
        });
        started = ended.map(|b| b.at);
    }
    let mut judgement = finish(injected_at, phases, whole.lost_steps, expectation);
    // Every target settled, some by a dropped mark: nothing more will come.
    let dropped: Vec<&str> = per_node
        .values()
        .filter_map(|j| j.open_because.as_deref())
        .collect();
    if !judgement.settled && !dropped.is_empty() && per_node.values().all(|j| j.settled) {
        for phase in judgement.phases.iter_mut().filter(|p| p.ended.is_none()) {
            phase.verdict = Some(PhaseVerdict::NotReached);
        }
        let why = dropped.join("; ");
        judgement = Judgement {
            settled: true,
            passed: false,
            reason: why.clone(),
            open_because: Some(why),
            ..judgement
        };
    }
    if !judgement.passed && judgement.settled {
        // Name the targets that did not make it.
        let behind: Vec<String> = per_node
            .iter()
            .filter(|(_, j)| !j.passed)
            .map(|(node, j)| format!("{node}: {}", j.reason))
            .collect();
        if !behind.is_empty() {
            judgement.reason = format!("{} ({})", judgement.reason, behind.join("; "));
        }
    }
    (judgement, per_node)
}

/// A phase's verdict from its end (if any) and deadline (from the
/// injection); `None` while it may still end. Past its deadline a phase is
/// watched on, so the report can say by how much it was missed; only the
/// end of the run (`finished`) makes it not reached.
fn verdict_of(
    end: Option<&Boundary>,
    deadline: Option<Duration>,
    injected_at: DateTime<Utc>,
    finished: bool,
) -> Option<PhaseVerdict> {
    match (end, deadline) {
        (Some(b), Some(d)) => Some(if b.at - injected_at <= d.as_chrono() {
            PhaseVerdict::Met
        } else {
            PhaseVerdict::Missed
        }),
        (Some(_), None) => Some(PhaseVerdict::Observed),
        (None, _) if finished => Some(PhaseVerdict::NotReached),
        (None, _) => None,
    }
}

/// One key per source and node: the latest event of each is the state now.
fn event_key(event: &Event) -> String {
    match &event.observation {
        Observation::SlurmNode { node, .. } => format!("sinfo/{node}"),
        Observation::ApiNode { node, .. } => format!("api/{node}"),
        Observation::NodeBoot { node, .. } => format!("boot/{node}"),
        Observation::Job { .. } | Observation::JobGone => "job".to_owned(),
        Observation::Progress { .. } => "progress".to_owned(),
        Observation::JobRestarted { .. } => "job-restarted".to_owned(),
        Observation::JobFault { .. } => "job-fault".to_owned(),
        Observation::Checkpoint { .. } => "checkpoint".to_owned(),
        Observation::Controllers(_) => "controllers".to_owned(),
        Observation::ControllerLog { node, .. } => format!("log/{node}"),
        Observation::HealthEvent { node, .. } => format!("hma/{node}"),
    }
}

/// Closes the phases after one that just ended, if the latest known state
/// of some source already ends them; they end no earlier than `from`.
fn catch_up(
    ends: &mut [Option<Boundary>],
    order: &[Phase],
    latest: &BTreeMap<String, &Event>,
    from: DateTime<Utc>,
    tracker: &Tracker,
    baseline: &Baseline,
    expectation: &Expectation,
) {
    let mut from = from;
    while let Some(current) = ends.iter().position(Option::is_none) {
        // A resume is dated by the new attempt's first progress, not by
        // the latest line read (which may be the last run's, read late).
        let found = match order[current] {
            Phase::Resume => tracker
                .first_resumed
                .as_ref()
                .and_then(|event| tracker.closes(Phase::Resume, baseline, expectation, event)),
            phase => latest
                .values()
                .find_map(|event| tracker.closes(phase, baseline, expectation, event)),
        };
        let Some(mut boundary) = found else { return };
        if boundary.at < from {
            boundary.at = from;
            boundary.time_source = TimeSource::Observed;
            boundary.evidence = format!(
                "{} (already so when the phase before ended)",
                boundary.evidence
            );
        }
        from = boundary.at;
        ends[current] = Some(boundary);
    }
}

/// Phases whose end proves the earlier phases happened.
fn implies_earlier(phase: Phase) -> bool {
    matches!(phase, Phase::Drain | Phase::Replace | Phase::Reboot)
}

fn finish(
    injected_at: DateTime<Utc>,
    phases: Vec<PhaseResult>,
    lost_steps: Option<u64>,
    expectation: &Expectation,
) -> Judgement {
    let settled = phases.iter().all(|p| p.verdict.is_some());
    let mut reasons: Vec<String> = phases
        .iter()
        .filter_map(|p| match p.verdict {
            Some(PhaseVerdict::Missed) => Some(format!(
                "{} took until {} after injection; deadline {}",
                p.phase,
                p.ended
                    .as_ref()
                    .map_or("?".to_owned(), |b| crate::duration::show_duration(Some(
                        crate::duration::span(injected_at, b.at)
                    ))),
                p.deadline.map_or("-".to_owned(), |d| d.to_string())
            )),
            Some(PhaseVerdict::NotReached) => Some(format!("{} never happened", p.phase)),
            _ => None,
        })
        .collect();
    if let (Some(lost), Some(max)) = (lost_steps, expectation.max_lost_steps)
        && lost > max
    {
        reasons.push(format!("{lost} steps lost, more than max_lost_steps {max}"));
    }
    // A limit that could not be checked does not pass: the job resumed,
    // yet its output never showed where it went back to.
    let resumed = phases
        .iter()
        .any(|p| p.phase == Phase::Resume && p.ended.is_some());
    if let (None, Some(max), true) = (lost_steps, expectation.max_lost_steps, resumed) {
        reasons.push(format!(
            "lost steps unknown (the output never showed where the job went back to), so max_lost_steps {max} could not be checked"
        ));
    }
    Judgement {
        passed: settled && reasons.is_empty(),
        settled,
        reason: reasons.join("; "),
        phases,
        lost_steps,
        open_because: None,
    }
}

fn quiet_judgement(
    injected_at: DateTime<Utc>,
    window: Duration,
    end: Option<Boundary>,
    verdict: PhaseVerdict,
    reason: String,
) -> Judgement {
    let passed = verdict == PhaseVerdict::Met;
    Judgement {
        phases: vec![PhaseResult {
            phase: Phase::Quiet,
            started_at: Some(injected_at),
            ended: end,
            deadline: Some(window),
            verdict: Some(verdict),
        }],
        lost_steps: None,
        settled: true,
        passed,
        reason,
        open_because: None,
    }
}

impl Judgement {
    fn unsettled(mut self) -> Judgement {
        self.settled = false;
        self.passed = false;
        for phase in &mut self.phases {
            phase.verdict = None;
        }
        self
    }
}

/// A restart known and its first step not seen yet.
#[derive(Debug, Clone, Copy)]
struct Restarting {
    /// The checkpoint's step it resumed from, when said.
    from: Option<u64>,
    /// Said by the output itself, at its place among the lines (else by
    /// Slurm, whose word comes apart from them: old lines not read yet
    /// may still follow).
    in_output: bool,
}

/// What the events so far say about the workload.
#[derive(Default)]
struct Tracker {
    /// When the fault was injected: a boot before it is no reboot.
    injected_at: Option<DateTime<Utc>>,
    /// The job was interrupted since the fault: it left RUNNING, was
    /// requeued, its node list changed (HyperPod's auto-resume in place
    /// shrinks and expands it), or it said it restarted.
    job_interrupted: bool,
    /// A new attempt of the job is under way: the job said it restarted
    /// (its output), a step went back (a restart seen in the output), or
    /// Slurm shows it RUNNING again after it left. Only its progress is a
    /// resume: the last run's lines read late are not.
    new_attempt: bool,
    /// The job was seen out of RUNNING since the fault.
    left_running: bool,
    /// How the job came back, in words, from its first sign: requeued (a
    /// new run under its id), resumed in place (RUNNING throughout, its
    /// nodes changed: HyperPod's auto-resume with job expansion), or as
    /// its output said.
    came_back: Option<String>,
    last_restarts: Option<u32>,
    last_nodes: Option<Vec<String>>,
    /// The highest exact step of the current attempt.
    peak: Option<u64>,
    /// A restart is known to have happened and its first step not seen
    /// yet (see [`Restarting`]).
    restarting: Option<Restarting>,
    /// The checkpoint the current attempt resumed from: a step below it
    /// is another restart, whoever says so.
    resumed_from: Option<u64>,
    /// Steps redone, summed over every restart.
    redone: Option<u64>,
    /// The step of the job's latest checkpoint (before the fault, or
    /// since).
    checkpoint: Option<u64>,
    /// The first event that would end the resume (progress past the step
    /// at the fault in a new attempt; set by `close_phases` as it walks
    /// the events): what a resume caught up later is dated by (never a
    /// line of the last run read late).
    first_resumed: Option<Event>,
    /// Nodes Slurm showed not responding or rebooting since the fault.
    went_away: std::collections::BTreeSet<String>,
    /// A target's last `returned to service` in slurmctld's log (when, and
    /// the line), since its last sign of being out of service: the
    /// rejoin's time once Slurm shows it usable.
    registered: BTreeMap<String, (DateTime<Utc>, String)>,
}

fn at(event: &Event) -> (DateTime<Utc>, TimeSource) {
    match event.source_time {
        Some(t) => (t, TimeSource::Source),
        None => (event.seen, TimeSource::Observed),
    }
}

/// Where a slurmctld log line about a target ends a phase: when its news
/// says what `wanted` asks (taken out, rebooted, resumed), at the line's
/// own time, with the line as evidence.
fn log_says(baseline: &Baseline, event: &Event, wanted: fn(&NodeNews) -> bool) -> Option<Boundary> {
    match &event.observation {
        Observation::ControllerLog {
            node,
            message,
            news,
        } if baseline.is_target(node) && wanted(news) => {
            Some(boundary(event, format!("slurmctld_log {node}: {message}")))
        }
        _ => None,
    }
}

fn boundary(event: &Event, evidence: String) -> Boundary {
    let (at, time_source) = at(event);
    Boundary {
        at,
        time_source,
        evidence,
    }
}

impl Tracker {
    /// Whether a source time is after the injection, to the second: HMA
    /// writes its `ts` in whole seconds, so a detection within the
    /// injection's own second reads as up to a second before it.
    fn after_injection(&self, at: Option<DateTime<Utc>>) -> bool {
        match (at, self.injected_at) {
            (Some(at), Some(injected)) => at > injected - TimeDelta::seconds(1),
            _ => true,
        }
    }

    fn observe(&mut self, event: &Event) {
        match &event.observation {
            Observation::Job {
                state,
                restarts,
                nodes,
            } => {
                let requeued = self.last_restarts.is_some_and(|r| *restarts > r);
                let reshaped = self
                    .last_nodes
                    .as_ref()
                    .is_some_and(|before| !nodes.is_empty() && before != nodes);
                if !state.is_running() || requeued || reshaped {
                    self.job_interrupted = true;
                }
                // Out of RUNNING and not ended: on its way back as a new run.
                if requeued
                    || (!state.is_running() && !state.is_final() && self.came_back.is_none())
                {
                    self.came_back = Some(format!("requeued (Restarts {restarts})"));
                } else if reshaped && state.is_running() && self.came_back.is_none() {
                    self.came_back =
                        Some("resumed in place (RUNNING throughout, its nodes changed)".to_owned());
                }
                if !state.is_running() {
                    self.left_running = true;
                } else if self.left_running {
                    self.new_attempt = true;
                }
                // Slurm's word (requeued, or out of RUNNING) arrives apart
                // from the output's lines: it arms a restart the output's
                // next step at or below the peak completes.
                if (requeued || !state.is_running()) && self.restarting.is_none() {
                    self.restarting = Some(Restarting {
                        from: None,
                        in_output: false,
                    });
                }
                self.last_restarts = Some(*restarts);
                if !nodes.is_empty() {
                    self.last_nodes = Some(nodes.clone());
                }
            }
            Observation::JobGone => self.job_interrupted = true,
            Observation::JobRestarted { from, .. } => {
                self.job_interrupted = true;
                self.new_attempt = true;
                if self.came_back.is_none() {
                    self.came_back = Some("restarted, as its output says".to_owned());
                }
                self.restarting = Some(Restarting {
                    from: *from,
                    in_output: true,
                });
            }
            Observation::SlurmNode { node, state, .. } => {
                if state.not_responding() || state.is_rebooting() {
                    self.went_away.insert(node.clone());
                }
                // Registered, yet Slurm shows it still out of service
                // (DOWN, DRAINED, FAIL after `returned to service`): that
                // line was not its return.
                if !state.is_usable()
                    && self
                        .registered
                        .get(node)
                        .is_some_and(|(at, _)| *at <= event.seen)
                {
                    self.registered.remove(node);
                }
            }
            Observation::Progress { step, exact } => self.progress(*step, *exact),
            Observation::Checkpoint { step } => self.checkpoint = Some(*step),
            Observation::ControllerLog {
                node,
                message,
                news,
            } => {
                if news.registered {
                    let (at, _) = at(event);
                    self.registered.insert(node.clone(), (at, message.clone()));
                } else if news.out_of_service {
                    self.registered.remove(node);
                }
            }
            _ => {}
        }
    }

    /// A progress step: the work from where a restart went back to, up to
    /// the highest step reached before, is redone. A lower step is a
    /// restart only when the job said so (or Slurm requeued it), or when
    /// it falls below the checkpoint the attempt resumed from: several
    /// ranks print out of order, and a step printed to a few digits
    /// (`1.2e+4`) says nothing exact.
    fn progress(&mut self, step: u64, exact: bool) {
        if !exact {
            // A step known to a few digits (`1.23e+5`) says nothing of
            // where the job went back to; the checkpoint the job named
            // does: the restart is settled from it.
            if let Some(from) = self.restarting.and_then(|r| r.from) {
                if let Some(peak) = self.peak {
                    let redone = peak.saturating_sub(from.min(peak));
                    self.redone = Some(self.redone.unwrap_or(0) + redone);
                }
                self.restarting = None;
                self.resumed_from = Some(from);
                self.peak = Some(from);
                self.new_attempt = true;
            }
            return;
        }
        let below_floor = self.resumed_from.is_some_and(|floor| step < floor);
        let restart = match (self.restarting, self.peak) {
            (Some(r), Some(peak)) if step <= peak => Some(r.from),
            (Some(r), None) => Some(r.from),
            _ if below_floor => Some(None),
            _ => None,
        };
        match restart {
            Some(from) => {
                let resumed_at = from.unwrap_or(step.saturating_sub(1));
                if let Some(peak) = self.peak {
                    let redone = peak.saturating_sub(resumed_at.min(peak));
                    self.redone = Some(self.redone.unwrap_or(0) + redone);
                }
                self.restarting = None;
                self.resumed_from = Some(resumed_at);
                self.peak = Some(step);
                self.new_attempt = true;
            }
            None => {
                // Past the peak: a restart still pending went back no
                // further than where the job stood (nothing redone), once
                // the new attempt is known to be printing.
                if self
                    .restarting
                    .is_some_and(|r| r.in_output || self.new_attempt)
                    && self.peak.is_some_and(|p| step > p)
                {
                    self.restarting = None;
                    self.redone = Some(self.redone.unwrap_or(0));
                }
                self.peak = Some(self.peak.map_or(step, |p| p.max(step)));
            }
        }
    }

    /// Steps redone after restarts; `None` when no restart showed. A job
    /// expected to fail (`job_fails`) that did not restart loses the steps
    /// it made since its latest checkpoint: what a restart from that
    /// checkpoint does again (`None` when no checkpoint or no exact step
    /// was seen).
    fn lost_steps(&self, recovery: Recovery) -> Option<u64> {
        match (self.redone, recovery) {
            (None, Recovery::JobFails) => self
                .peak
                .zip(self.checkpoint)
                .map(|(peak, checkpoint)| peak.saturating_sub(checkpoint)),
            (redone, _) => redone,
        }
    }

    /// The first sign the system noticed the fault.
    fn detect(
        &self,
        baseline: &Baseline,
        expectation: &Expectation,
        event: &Event,
    ) -> Option<Boundary> {
        let target = |node: &str| baseline.is_target(node);
        match &event.observation {
            Observation::SlurmNode {
                node,
                state,
                reason,
            } if target(node) => {
                // A reason counts only on a node its state takes out of
                // service: Slurm 24.11 leaves `Action:*` on a node that is
                // back and usable (see `NodeRow::healthy`).
                if state.is_usable() {
                    None
                } else if is_hyperpod_mark(reason) {
                    Some(boundary(
                        event,
                        format!("{} {node}: reason {reason}", event.source.as_str()),
                    ))
                } else if state.is_out_of_service()
                    || state.not_responding()
                    || state.is_rebooting()
                    || (expectation.recovery == Recovery::HealthCheck
                        && state.condition() == crate::cluster::node_state::Condition::Maintenance)
                {
                    Some(boundary(
                        event,
                        format!("{} {node}: state {state}", event.source.as_str()),
                    ))
                } else {
                    None
                }
            }
            Observation::ControllerLog { .. } => log_says(baseline, event, |n| n.out_of_service),
            Observation::HealthEvent { node, words }
                if target(node) && self.after_injection(event.source_time) =>
            {
                Some(boundary(event, format!("hma {node}: {words}")))
            }
            // HyperPod patching the node or checking it is the cluster's
            // own change, not the fault's detection (unless the scenario
            // started the check).
            Observation::ApiNode { status, .. }
                if own_change(status) && expectation.recovery != Recovery::HealthCheck =>
            {
                None
            }
            Observation::ApiNode {
                node,
                status,
                running,
                ..
            } if target(node) && !running => Some(Boundary {
                at: event.seen,
                time_source: TimeSource::Observed,
                evidence: format!("sagemaker {node}: status {status}"),
            }),
            // The job's own word (its watchdog's line) comes before Slurm
            // shows the step failed.
            Observation::JobFault { said }
                if matches!(expectation.recovery, Recovery::Requeue | Recovery::JobFails) =>
            {
                Some(boundary(event, format!("job output: {said}")))
            }
            Observation::Job { state, .. }
                if matches!(expectation.recovery, Recovery::Requeue | Recovery::JobFails)
                    && !state.is_running() =>
            {
                Some(boundary(event, format!("job {state}")))
            }
            Observation::JobGone
                if matches!(expectation.recovery, Recovery::Requeue | Recovery::JobFails) =>
            {
                Some(boundary(event, "job gone".to_owned()))
            }
            _ => None,
        }
    }

    /// Whether `event` ends `phase`, and where.
    fn closes(
        &self,
        phase: Phase,
        baseline: &Baseline,
        expectation: &Expectation,
        event: &Event,
    ) -> Option<Boundary> {
        match phase {
            Phase::Detect => self.detect(baseline, expectation, event),
            Phase::Drain => drain_boundary(baseline, event),
            Phase::Replace => replace_boundary(baseline, event),
            Phase::Reboot => self.reboot_boundary(baseline, event),
            Phase::Rejoin => self.rejoin_boundary(baseline, event),
            Phase::Resume => self.resume_boundary(baseline, event),
            Phase::JobEnd => job_end_boundary(event),
            Phase::HealthCheck => health_check_boundary(baseline, event),
            Phase::Takeover => takeover_boundary(event),
            Phase::Quiet => None,
        }
    }

    /// Whether `event` ends the reboot phase, and where: the API's new
    /// LaunchTime on the same instance, slurmd's boot report, or Slurm's
    /// signs of a reboot.
    fn reboot_boundary(&self, baseline: &Baseline, event: &Event) -> Option<Boundary> {
        let target = |node: &str| baseline.is_target(node);
        match &event.observation {
            Observation::ApiNode {
                node,
                running,
                instance_id,
                launch_time,
                ..
            } if target(node) && *running => {
                let same = baseline.instance_ids.get(node) == Some(instance_id);
                let later = match (launch_time, baseline.launch_times.get(node)) {
                    (Some(now), Some(before)) => now > before,
                    _ => false,
                };
                (same && later).then(|| Boundary {
                    at: launch_time.unwrap_or(event.seen),
                    time_source: TimeSource::Source,
                    evidence: format!("same instance {instance_id}, new LaunchTime"),
                })
            }
            // slurmd's own report: a later BootTime is the node's kernel
            // booting again (the best witness, to the second); a later
            // SlurmdStartTime alone (the lab's nodes share the host's
            // kernel) is slurmd restarted on the node being rebooted.
            // Slurm computes BootTime as now - uptime, so it wobbles by a
            // second at each registration: only a boot (or slurmd start)
            // after the injection, and more than a second past the last
            // reading, is a reboot.
            Observation::NodeBoot { node, boot } if target(node) => {
                self.boot_boundary(baseline, node, boot)
            }
            // Slurm's own signs of a reboot (LaunchTime is one witness,
            // not the only one: it may keep EC2's "last launched" meaning):
            // a node that stopped responding or showed a reboot under way,
            // responding again.
            Observation::SlurmNode { node, state, .. }
                if target(node) && self.went_away.contains(node) =>
            {
                (!state.not_responding() && !state.is_rebooting()).then(|| Boundary {
                    at: event.seen,
                    time_source: TimeSource::Observed,
                    evidence: format!(
                        "{node} responding again ({state}) after it stopped responding: rebooted"
                    ),
                })
            }
            Observation::ControllerLog { .. } => log_says(baseline, event, |n| n.rebooted),
            _ => None,
        }
    }

    /// The reboot a target's boot report shows, if any: a BootTime (else a
    /// SlurmdStartTime) after the injection and more than a second past
    /// the one before the fault. Returns its boundary.
    fn boot_boundary(
        &self,
        baseline: &Baseline,
        node: &str,
        boot: &BootWitness,
    ) -> Option<Boundary> {
        let before = baseline.boots.get(node).copied().unwrap_or_default();
        let injected = self.injected_at;
        let later = |now: Option<DateTime<Utc>>, then: Option<DateTime<Utc>>| match (now, then) {
            (Some(now), Some(then)) => {
                let after_fault = injected.is_none_or(|i| now >= i);
                (now > then + TimeDelta::seconds(1) && after_fault).then_some(now)
            }
            _ => None,
        };
        if let Some(at) = later(boot.boot_time, before.boot_time) {
            Some(Boundary {
                at,
                time_source: TimeSource::Source,
                evidence: format!("{node} BootTime {}: booted again", at.format("%H:%M:%S")),
            })
        } else {
            later(boot.slurmd_started, before.slurmd_started).map(|at| Boundary {
                at,
                time_source: TimeSource::Source,
                evidence: format!(
                    "{node} SlurmdStartTime {}: slurmd started again (BootTime unchanged)",
                    at.format("%H:%M:%S")
                ),
            })
        }
    }

    /// Whether `event` ends the rejoin phase: a target usable in Slurm
    /// again (at slurmctld's `returned to service` for it, when the log
    /// said so since it was taken out: to the millisecond), or slurmctld's
    /// log saying it was resumed. Returns where.
    fn rejoin_boundary(&self, baseline: &Baseline, event: &Event) -> Option<Boundary> {
        let target = |node: &str| baseline.is_target(node);
        match &event.observation {
            Observation::SlurmNode {
                node,
                state,
                reason,
            } if target(node) && state.is_usable() => {
                let left = if reason.is_empty() {
                    "reason cleared".to_owned()
                } else {
                    format!("usable (reason `{reason}` left by Slurm)")
                };
                Some(match self.registered.get(node) {
                    Some((at, message)) if *at <= event.seen => Boundary {
                        at: *at,
                        time_source: TimeSource::Source,
                        evidence: format!("slurmctld_log {node}: {message}; then {state}, {left}"),
                    },
                    _ => Boundary {
                        at: event.seen,
                        time_source: TimeSource::Observed,
                        evidence: format!("{node} {state}, {left}"),
                    },
                })
            }
            // Slurm's own record of the node resumed, to the millisecond.
            Observation::ControllerLog { .. } => log_says(baseline, event, |n| n.returned),
            _ => None,
        }
    }

    /// Whether `event` ends the resume phase: the workload's progress past
    /// its step at the fault, in a new attempt of the job (see
    /// [`Tracker::new_attempt`]). Returns where.
    fn resume_boundary(&self, baseline: &Baseline, event: &Event) -> Option<Boundary> {
        match &event.observation {
            Observation::Progress { step, .. } if self.job_interrupted && self.new_attempt => {
                let past = baseline.progress.is_none_or(|before| *step > before);
                past.then(|| Boundary {
                    at: event.seen,
                    time_source: TimeSource::Observed,
                    evidence: match &self.came_back {
                        Some(how) => {
                            format!("progress at step {step}, past the fault; the job {how}")
                        }
                        None => format!("progress at step {step}, past the fault"),
                    },
                })
            }
            _ => None,
        }
    }
}

/// Whether `event` ends the drain phase, and where: the workload job off
/// the targets (or gone), or with no workload a target drained in Slurm.
fn drain_boundary(baseline: &Baseline, event: &Event) -> Option<Boundary> {
    let target = |node: &str| baseline.is_target(node);
    match &event.observation {
        Observation::Job { state, nodes, .. } if baseline.workload => {
            let left = !state.is_running() || !nodes.iter().any(|n| target(n));
            left.then(|| {
                boundary(
                    event,
                    format!(
                        "job {state} on {}",
                        if nodes.is_empty() {
                            "-".to_owned()
                        } else {
                            nodes.join(",")
                        }
                    ),
                )
            })
        }
        Observation::JobGone if baseline.workload => {
            Some(boundary(event, "job gone from the node".to_owned()))
        }
        Observation::SlurmNode { node, state, .. } if !baseline.workload && target(node) => state
            .is_drained()
            .then(|| boundary(event, format!("{node} {state}, no workload on it"))),
        _ => None,
    }
}

/// Whether `event` ends the replace phase: a target `Running` in the API
/// under a new instance id. Returns where (its LaunchTime when known).
fn replace_boundary(baseline: &Baseline, event: &Event) -> Option<Boundary> {
    let target = |node: &str| baseline.is_target(node);
    match &event.observation {
        Observation::ApiNode {
            node,
            running,
            instance_id,
            launch_time,
            ..
        } if target(node) && *running => {
            let old = baseline.instance_ids.get(node)?;
            (instance_id != old).then(|| match launch_time {
                Some(t) => Boundary {
                    at: *t,
                    time_source: TimeSource::Source,
                    evidence: format!("new instance {instance_id} (was {old}), LaunchTime"),
                },
                None => Boundary {
                    at: event.seen,
                    time_source: TimeSource::Observed,
                    evidence: format!("new instance {instance_id} (was {old})"),
                },
            })
        }
        _ => None,
    }
}

/// Whether `event` ends the job-end phase: the workload job in a final
/// state, or gone from Slurm. Returns where.
/// An API status that is HyperPod's own work on a node, not a fault's
/// sign: `SystemUpdating` (a patch or software update),
/// `DeepHealthCheckInProgress` (botocore's `ClusterInstanceStatus`).
pub fn own_change(status: &str) -> bool {
    matches!(status, "SystemUpdating" | "DeepHealthCheckInProgress")
}

/// Whether `event` ends a deep health check: the API shows the target
/// `Running` again (out of `DeepHealthCheckInProgress`), on the instance it
/// was checked on. A replacement is HyperPod repairing a node that failed
/// its check: not this phase's end (`recovery: replace` times that).
/// Whether `event` ends the takeover, and where: a read of the controllers
/// with the primary DOWN and Slurm answering, so a backup serves it
/// (see `cluster::controllers`).
fn takeover_boundary(event: &Event) -> Option<Boundary> {
    let Observation::Controllers(read) = &event.observation else {
        return None;
    };
    let backup = read.backup_in_control()?;
    Some(boundary(
        event,
        format!(
            "scontrol ping: {} (backup {} in control)",
            read.words(),
            backup.host
        ),
    ))
}

fn health_check_boundary(baseline: &Baseline, event: &Event) -> Option<Boundary> {
    match &event.observation {
        Observation::ApiNode {
            node,
            running: true,
            instance_id,
            ..
        } if baseline.is_target(node)
            && baseline
                .instance_ids
                .get(node)
                .is_none_or(|before| before == instance_id) =>
        {
            Some(Boundary {
                at: event.seen,
                time_source: TimeSource::Observed,
                evidence: format!("sagemaker {node}: Running again on {instance_id}"),
            })
        }
        _ => None,
    }
}

fn job_end_boundary(event: &Event) -> Option<Boundary> {
    match &event.observation {
        Observation::Job { state, .. } if state.is_final() => {
            Some(boundary(event, format!("job {state}")))
        }
        Observation::JobGone => Some(Boundary {
            at: event.seen,
            time_source: TimeSource::Observed,
            evidence: "job gone".to_owned(),
        }),
        _ => None,
    }
}

pub use crate::duration::secs;
