//! Fixture journals, written through the real `JournalWriter` with a
//! manual clock and fixed run ids, so that report snapshots are stable.
//! Each one tells a run the way the runner records it.

use std::collections::BTreeMap;
use std::path::Path;

use super::root;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use hpchaos::clock::{Clock, ManualClock};
use hpchaos::duration::Duration;
use hpchaos::journal::*;
use hpchaos::scenario::model::{Phase, Recovery};

pub const START: &str = "2026-11-28T10:00:00Z";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START).unwrap().to_utc()
}

fn t(secs: f64) -> DateTime<Utc> {
    start() + TimeDelta::milliseconds((secs * 1000.0) as i64)
}

/// Writes records at given offsets (seconds) from [`START`].
pub struct Script {
    writer: JournalWriter,
    clock: Arc<ManualClock>,
    scenario: Option<String>,
    /// Added to every record's time: a run later than [`START`].
    offset: TimeDelta,
}

impl Script {
    pub fn new(path: &Path, run_id: &str, suite: Option<&str>) -> Script {
        Script::new_at(path, run_id, suite, 0.0)
    }

    /// A run starting `offset` seconds after [`START`] (record times given
    /// to [`Script::at`] are relative to it).
    pub fn new_at(path: &Path, run_id: &str, suite: Option<&str>, offset: f64) -> Script {
        let offset = TimeDelta::milliseconds((offset * 1000.0) as i64);
        let clock = Arc::new(ManualClock::starting_at(start() + offset));
        let mut script = Script {
            writer: JournalWriter::create(path, clock.clone()).unwrap(),
            clock,
            scenario: None,
            offset,
        };
        script.run(
            0.0,
            Entry::RunStarted {
                run_id: run_id.into(),
                harness_version: "0.1.0".into(),
                format: FORMAT_VERSION,
                cluster: "lab".into(),
                suite: suite.map(str::to_owned),
                profile: None,
                slurm_version: Some("24.11.5".into()),
            },
        );
        script
    }

    fn run(&mut self, at: f64, entry: Entry) {
        self.clock.set(t(at) + self.offset);
        self.writer.append(None, entry).unwrap();
    }

    pub fn at(&mut self, at: f64, entry: Entry) -> &mut Self {
        self.clock.set(t(at) + self.offset);
        self.writer.append(self.scenario.as_deref(), entry).unwrap();
        self
    }

    pub fn scenario(
        &mut self,
        at: f64,
        file: &str,
        recovery: Recovery,
        deadlines: &[(Phase, u64)],
        max_lost_steps: Option<u64>,
    ) -> &mut Self {
        let source = std::fs::read_to_string(root().join(file)).unwrap();
        let name = source
            .lines()
            .find_map(|l| l.strip_prefix("name: "))
            .unwrap()
            .to_owned();
        let fault = source
            .lines()
            .skip_while(|l| *l != "fault:")
            .nth(1)
            .unwrap()
            .trim()
            .split(':')
            .next()
            .unwrap()
            .to_owned();
        self.scenario = Some(name);
        let deadlines: BTreeMap<Phase, Duration> = deadlines
            .iter()
            .map(|(p, s)| (*p, Duration::from_secs(*s)))
            .collect();
        self.at(
            at,
            Entry::ScenarioStarted {
                file: file.into(),
                description: None,
                fault,
                recovery,
                deadlines,
                max_lost_steps,
                // As a real run writes them: the phases the scenario times.
                phases: match hpchaos::scenario::parse_scenario(Path::new(file), &source, None) {
                    Ok(parsed) if parsed.expect.recovery == recovery => {
                        parsed.expect.phases(parsed.workload.is_some())
                    }
                    _ => recovery.phases().to_vec(),
                },
                source,
                tags: Vec::new(),
            },
        )
    }

    #[allow(clippy::too_many_arguments)] // one argument per journal field reads best in the fixtures
    pub fn observe(
        &mut self,
        at: f64,
        source: Source,
        node: &str,
        field: &str,
        from: Option<&str>,
        to: &str,
        source_time: Option<f64>,
    ) -> &mut Self {
        self.at(
            at,
            Entry::Observed {
                source,
                node: (!node.is_empty()).then(|| node.to_owned()),
                field: field.into(),
                from: from.map(str::to_owned),
                to: to.into(),
                source_time: source_time.map(t),
            },
        )
    }

    /// A phase boundary is written when the harness decides it, which is
    /// after the boundary itself (the source's time).
    pub fn phase(&mut self, phase: Phase, started: f64, deadline: Option<u64>) -> &mut Self {
        let written = (self.clock.now() - t(0.0)).num_milliseconds() as f64 / 1000.0;
        self.at(
            written.max(started),
            Entry::PhaseStarted {
                phase,
                started_at: t(started),
                deadline: deadline.map(Duration::from_secs),
            },
        )
    }

    pub fn phase_end(
        &mut self,
        at: f64,
        phase: Phase,
        ended: f64,
        verdict: PhaseVerdict,
        time_source: TimeSource,
        evidence: &str,
    ) -> &mut Self {
        self.at(
            at,
            Entry::PhaseEnded {
                phase,
                ended_at: t(ended),
                verdict,
                time_source,
                evidence: evidence.into(),
                lost_steps: None,
            },
        )
    }

    pub fn check(
        &mut self,
        at: f64,
        stage: Stage,
        check: &str,
        passed: bool,
        detail: &str,
    ) -> &mut Self {
        self.at(
            at,
            Entry::SteadyState {
                stage,
                check: check.into(),
                passed,
                detail: detail.into(),
            },
        )
    }

    pub fn end_scenario(&mut self, at: f64, outcome: ScenarioOutcome, reason: &str) -> &mut Self {
        self.at(
            at,
            Entry::ScenarioEnded {
                outcome,
                reason: reason.into(),
            },
        );
        self.scenario = None;
        self
    }

    pub fn end_run(mut self, at: f64, outcome: RunOutcome) {
        self.run(at, Entry::RunEnded { outcome });
    }
}

const REPLACE_DEADLINES: &[(Phase, u64)] = &[
    (Phase::Detect, 60),
    (Phase::Drain, 300),
    (Phase::Replace, 2100),
    (Phase::Rejoin, 2400),
    (Phase::Resume, 2700),
];

/// The start of a replace scenario, up to the replacement under way.
fn replace_until_pending(s: &mut Script) {
    s.scenario(
        1.0,
        "scenarios/xid48-replace.yaml",
        Recovery::Replace,
        REPLACE_DEADLINES,
        Some(500),
    )
    .at(
        2.0,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-12".into()],
        },
    )
    .check(
        3.0,
        Stage::Before,
        "targets_healthy",
        true,
        "ip-10-1-0-12 alloc",
    )
    .check(
        3.2,
        Stage::Before,
        "job_running",
        true,
        "job 17 RUNNING on ip-10-1-0-[11-12]",
    )
    .at(
        5.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-12".into()],
            action: "dcgmi test --inject --gpuid 0 -f 230 -v 48".into(),
        },
    )
    .at(
        5.4,
        Entry::InjectionFinished {
            ok: true,
            detail: "dcgmi: Successfully injected field info.".into(),
        },
    )
    .phase(Phase::Detect, 5.0, Some(60))
    .observe(
        13.1,
        Source::Sinfo,
        "ip-10-1-0-12",
        "state",
        Some("allocated"),
        "failing",
        Some(12.0),
    )
    .observe(
        13.1,
        Source::Sinfo,
        "ip-10-1-0-12",
        "reason",
        None,
        "Action:Replace",
        Some(12.0),
    )
    .observe(
        13.4,
        Source::SlurmctldLog,
        "ip-10-1-0-12",
        "line",
        None,
        "update_node: node ip-10-1-0-12 reason set to: Action:Replace",
        Some(12.0),
    )
    .phase_end(
        13.4,
        Phase::Detect,
        12.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "reason Action:Replace (sinfo %H)",
    )
    .phase(Phase::Drain, 12.0, Some(300))
    .observe(
        29.0,
        Source::Squeue,
        "",
        "job_state",
        Some("RUNNING"),
        "REQUEUED",
        None,
    )
    .observe(
        29.2,
        Source::Sinfo,
        "ip-10-1-0-12",
        "state",
        Some("failing"),
        "fail",
        Some(28.5),
    )
    .phase_end(
        29.2,
        Phase::Drain,
        28.5,
        PhaseVerdict::Met,
        TimeSource::Source,
        "no job left on the node",
    )
    .phase(Phase::Replace, 28.5, Some(2100))
    .observe(
        33.0,
        Source::Sagemaker,
        "ip-10-1-0-12",
        "status",
        Some("Running"),
        "Pending",
        None,
    );
}

/// Everything on time: detect, drain, replace, rejoin, resume.
pub fn passed(path: &Path) {
    let mut s = Script::new(path, "run-0001", None);
    replace_until_pending(&mut s);
    s.observe(
        96.0,
        Source::Harness,
        "",
        "requeue_delay",
        None,
        "120 s (Slurm's default)",
        None,
    )
    .observe(
        96.0,
        Source::Sagemaker,
        "ip-10-1-0-12",
        "instance_id",
        Some("i-0a1b2c3d4e5f60001"),
        "i-0a1b2c3d4e5f60011",
        Some(91.0),
    )
    .observe(
        96.0,
        Source::Sagemaker,
        "ip-10-1-0-12",
        "status",
        Some("Pending"),
        "Running",
        None,
    )
    .phase_end(
        96.0,
        Phase::Replace,
        91.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "new instance i-0a1b2c3d4e5f60011 (LaunchTime)",
    )
    .phase(Phase::Rejoin, 91.0, Some(2400))
    .observe(
        104.0,
        Source::Sinfo,
        "ip-10-1-0-12",
        "state",
        Some("fail"),
        "idle",
        Some(103.5),
    )
    .observe(
        104.0,
        Source::Sinfo,
        "ip-10-1-0-12",
        "reason",
        Some("Action:Replace"),
        "",
        Some(103.5),
    )
    .phase_end(
        104.0,
        Phase::Rejoin,
        103.5,
        PhaseVerdict::Met,
        TimeSource::Source,
        "idle, reason cleared",
    )
    .phase(Phase::Resume, 103.5, Some(2700))
    .observe(
        118.0,
        Source::Squeue,
        "",
        "job_state",
        Some("PENDING"),
        "RUNNING",
        None,
    )
    .observe(
        121.0,
        Source::JobOutput,
        "",
        "line",
        None,
        "resumed from checkpoint at step 400",
        None,
    )
    .observe(139.0, Source::JobOutput, "", "line", None, "step 431", None)
    .at(
        139.0,
        Entry::PhaseEnded {
            phase: Phase::Resume,
            ended_at: t(139.0),
            verdict: PhaseVerdict::Met,
            time_source: TimeSource::Observed,
            evidence: "progress past step 430 again".into(),
            lost_steps: Some(31),
        },
    )
    .check(
        141.0,
        Stage::After,
        "targets_healthy",
        true,
        "ip-10-1-0-12 alloc",
    )
    .check(141.2, Stage::After, "job_running", true, "job 17 RUNNING")
    .at(
        142.0,
        Entry::Rollback {
            step: "scancel 17 (canary)".into(),
            ok: true,
            detail: String::new(),
            undoes: None,
        },
    )
    .end_scenario(143.0, ScenarioOutcome::Passed, "");
    s.end_run(143.5, RunOutcome::Completed);
}

/// A reboot that brings the node back after its rejoin deadline.
pub fn missed_deadline(path: &Path) {
    let mut s = Script::new(path, "run-0002", None);
    s.scenario(
        1.0,
        "scenarios/node-reboot-slurm.yaml",
        Recovery::Reboot,
        &[
            (Phase::Detect, 30),
            (Phase::Reboot, 300),
            (Phase::Rejoin, 360),
        ],
        None,
    )
    .at(
        2.0,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-13".into()],
        },
    )
    .check(
        2.5,
        Stage::Before,
        "targets_healthy",
        true,
        "ip-10-1-0-13 idle",
    )
    .check(
        2.6,
        Stage::Before,
        "min_healthy_nodes: 3",
        true,
        "4 healthy",
    )
    .at(
        4.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-13".into()],
            action: "scontrol update node=ip-10-1-0-13 state=fail reason=Action:Reboot".into(),
        },
    )
    .at(
        4.2,
        Entry::InjectionFinished {
            ok: true,
            detail: "reason Action:Reboot set".into(),
        },
    )
    .phase(Phase::Detect, 4.0, Some(30))
    .observe(
        5.0,
        Source::Sinfo,
        "ip-10-1-0-13",
        "state",
        Some("idle"),
        "fail",
        Some(4.1),
    )
    .phase_end(
        5.0,
        Phase::Detect,
        4.1,
        PhaseVerdict::Met,
        TimeSource::Source,
        "state FAIL, reason Action:Reboot",
    )
    .phase(Phase::Drain, 4.1, None)
    .phase_end(
        5.0,
        Phase::Drain,
        4.1,
        PhaseVerdict::Observed,
        TimeSource::Source,
        "node was idle",
    )
    .phase(Phase::Reboot, 4.1, Some(300))
    .observe(
        9.0,
        Source::Sagemaker,
        "ip-10-1-0-13",
        "status",
        Some("Running"),
        "Pending",
        None,
    )
    .observe(
        250.0,
        Source::Sagemaker,
        "ip-10-1-0-13",
        "launch_time",
        Some("2026-11-28T09:00:00Z"),
        "2026-11-28T10:04:05Z",
        Some(245.0),
    )
    .phase_end(
        250.0,
        Phase::Reboot,
        245.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "same instance, new LaunchTime",
    )
    .phase(Phase::Rejoin, 245.0, Some(360))
    .observe(
        434.0,
        Source::Sinfo,
        "ip-10-1-0-13",
        "state",
        Some("down*"),
        "idle",
        Some(434.0),
    )
    .phase_end(
        434.0,
        Phase::Rejoin,
        434.0,
        PhaseVerdict::Missed,
        TimeSource::Source,
        "idle at 7m 10s",
    )
    .check(
        436.0,
        Stage::After,
        "targets_healthy",
        true,
        "ip-10-1-0-13 idle",
    )
    .end_scenario(
        437.0,
        ScenarioOutcome::Failed,
        "rejoin took until 7m 10s after injection; deadline 6m",
    );
    s.end_run(437.5, RunOutcome::Completed);
}

const XID79_DEADLINES: &[(Phase, u64)] = &[
    (Phase::Detect, 60),
    (Phase::Drain, 120),
    (Phase::Reboot, 300),
    (Phase::Rejoin, 360),
    (Phase::Resume, 600),
];

/// Abort: a second node went unhealthy while the fault was active.
pub fn aborted(path: &Path) {
    let mut s = Script::new(path, "run-0003", None);
    s.scenario(
        1.0,
        "scenarios/xid79-reboot.yaml",
        Recovery::Reboot,
        XID79_DEADLINES,
        Some(200),
    )
    .at(
        2.0,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-11".into()],
        },
    )
    .check(
        3.0,
        Stage::Before,
        "targets_healthy",
        true,
        "ip-10-1-0-11 alloc",
    )
    .at(
        20.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-11".into()],
            action: "dcgmi test --inject --gpuid 0 -f 230 -v 79".into(),
        },
    )
    .at(
        20.3,
        Entry::InjectionFinished {
            ok: true,
            detail: "injected".into(),
        },
    )
    .phase(Phase::Detect, 20.0, Some(60))
    .observe(
        31.0,
        Source::Sinfo,
        "ip-10-1-0-11",
        "reason",
        None,
        "Action:Reboot",
        Some(30.0),
    )
    .phase_end(
        31.0,
        Phase::Detect,
        30.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "reason Action:Reboot",
    )
    .phase(Phase::Drain, 30.0, Some(120))
    .observe(
        33.0,
        Source::Sinfo,
        "ip-10-1-0-12",
        "reason",
        None,
        "Action:Replace",
        Some(32.0),
    )
    .observe(
        33.0,
        Source::Sinfo,
        "ip-10-1-0-14",
        "state",
        Some("idle"),
        "down*",
        Some(32.5),
    )
    .at(
        33.1,
        Entry::Aborted {
            reason: "3 nodes unhealthy, more than max_unhealthy_nodes: 2".into(),
        },
    )
    .at(
        34.0,
        Entry::Rollback {
            step: "scancel 21 (canary)".into(),
            ok: true,
            detail: String::new(),
            undoes: None,
        },
    )
    .end_scenario(
        34.5,
        ScenarioOutcome::Aborted,
        "3 nodes unhealthy, more than max_unhealthy_nodes: 2",
    );
    s.end_run(35.0, RunOutcome::Aborted);
}

/// Ctrl-C while the replacement was under way: rollback, then the end.
pub fn interrupted(path: &Path) {
    let mut s = Script::new(path, "run-0004", None);
    replace_until_pending(&mut s);
    s.at(
        61.0,
        Entry::Error {
            message: "interrupted by SIGINT".into(),
        },
    )
    .at(
        61.5,
        Entry::Rollback {
            step: "scancel 17 (canary)".into(),
            ok: true,
            detail: String::new(),
            undoes: None,
        },
    )
    .at(
        61.8,
        Entry::Rollback {
            step: "leave ip-10-1-0-12 to the cluster: HyperPod is replacing it".into(),
            ok: true,
            detail: "state changed by the cluster, not by hpchaos".into(),
            undoes: None,
        },
    )
    .end_scenario(
        62.0,
        ScenarioOutcome::Interrupted,
        "interrupted by SIGINT during the replace phase",
    );
    s.end_run(62.2, RunOutcome::Interrupted);
}

/// A crash while waiting for the replacement: the last line is half written.
pub fn crashed(path: &Path) {
    let mut s = Script::new(path, "run-0005", None);
    replace_until_pending(&mut s);
    drop(s);
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut file, br#"{"seq":19,"at":"2026-11-28T10:01:"#).unwrap();
}

/// Three scenarios of a suite: two pass, the third never resumes.
pub fn suite(path: &Path) {
    let mut s = Script::new(path, "run-0006", Some("nightly"));
    suite_gpu_stress_passes(&mut s);
    suite_task_crash_passes(&mut s);
    suite_reboot_never_resumes(&mut s);
    s.end_run(892.0, RunOutcome::Completed);
}

/// The suite's first scenario: a GPU stress passes its quiet window.
fn suite_gpu_stress_passes(s: &mut Script) {
    s.scenario(1.0, "scenarios/gpu-stress.yaml", Recovery::None, &[], None)
        .at(
            1.5,
            Entry::TargetsResolved {
                nodes: vec!["ip-10-1-0-11".into()],
            },
        )
        .check(2.0, Stage::Before, "targets_healthy", true, "idle")
        .check(
            2.1,
            Stage::Before,
            "probe: nvidia-smi sees every GPU",
            true,
            "0",
        )
        .at(
            3.0,
            Entry::InjectionStarted {
                nodes: vec!["ip-10-1-0-11".into()],
                action: "dcgmi diag -r 3".into(),
            },
        )
        .at(
            3.2,
            Entry::InjectionFinished {
                ok: true,
                detail: "dcgmi diag running, pid 4121".into(),
            },
        )
        .phase(Phase::Quiet, 3.0, Some(180))
        .phase_end(
            183.0,
            Phase::Quiet,
            183.0,
            PhaseVerdict::Met,
            TimeSource::Observed,
            "no state change, no reason set for 3m",
        )
        .check(184.0, Stage::After, "targets_healthy", true, "idle")
        .at(
            184.5,
            Entry::Rollback {
                step: "kill dcgmi diag (pid 4121) on ip-10-1-0-11".into(),
                ok: true,
                detail: "already exited".into(),
                undoes: None,
            },
        )
        .end_scenario(185.0, ScenarioOutcome::Passed, "");
}

/// The suite's second scenario: a task crash fails the job, not retried, as it should.
fn suite_task_crash_passes(s: &mut Script) {
    s.scenario(
        215.0,
        "scenarios/process-kill-task.yaml",
        Recovery::JobFails,
        &[(Phase::Detect, 30), (Phase::JobEnd, 120)],
        None,
    )
    .at(
        216.0,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-12".into()],
        },
    )
    .check(230.0, Stage::Before, "job_running", true, "job 22 RUNNING")
    .at(
        231.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-12".into()],
            action: "kill -SEGV 5120 (train.py, step task of job 22)".into(),
        },
    )
    .at(
        231.1,
        Entry::InjectionFinished {
            ok: true,
            detail: "1 process signalled".into(),
        },
    )
    .phase(Phase::Detect, 231.0, Some(30))
    .observe(
        233.0,
        Source::Squeue,
        "",
        "job_state",
        Some("RUNNING"),
        "COMPLETING",
        None,
    )
    .phase_end(
        233.0,
        Phase::Detect,
        233.0,
        PhaseVerdict::Met,
        TimeSource::Observed,
        "step failed",
    )
    .phase(Phase::JobEnd, 233.0, Some(120))
    .observe(
        236.0,
        Source::JobOutput,
        "",
        "line",
        None,
        "ResumeAction=NONE: no unhealthy node, not retrying",
        None,
    )
    .observe(
        238.0,
        Source::Squeue,
        "",
        "job_state",
        Some("COMPLETING"),
        "FAILED",
        None,
    )
    .phase_end(
        238.0,
        Phase::JobEnd,
        238.0,
        PhaseVerdict::Met,
        TimeSource::Observed,
        "job FAILED, not requeued",
    )
    .end_scenario(239.0, ScenarioOutcome::Passed, "");
}

/// The suite's third scenario: an Xid 79 reboot whose job never resumes before its deadline.
fn suite_reboot_never_resumes(s: &mut Script) {
    s.scenario(
        269.0,
        "scenarios/xid79-reboot.yaml",
        Recovery::Reboot,
        XID79_DEADLINES,
        Some(200),
    )
    .at(
        270.0,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-11".into()],
        },
    )
    .at(
        290.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-11".into()],
            action: "dcgmi test --inject --gpuid 0 -f 230 -v 79".into(),
        },
    )
    .at(
        290.2,
        Entry::InjectionFinished {
            ok: true,
            detail: "injected".into(),
        },
    )
    .phase(Phase::Detect, 290.0, Some(60))
    .observe(
        301.0,
        Source::Sinfo,
        "ip-10-1-0-11",
        "reason",
        None,
        "Action:Reboot",
        Some(300.0),
    )
    .phase_end(
        301.0,
        Phase::Detect,
        300.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "reason Action:Reboot",
    )
    .phase(Phase::Drain, 300.0, Some(120))
    .phase_end(
        318.0,
        Phase::Drain,
        317.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "job requeued",
    )
    .phase(Phase::Reboot, 317.0, Some(300))
    .phase_end(
        400.0,
        Phase::Reboot,
        398.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "new LaunchTime",
    )
    .phase(Phase::Rejoin, 398.0, Some(360))
    .phase_end(
        410.0,
        Phase::Rejoin,
        409.0,
        PhaseVerdict::Met,
        TimeSource::Source,
        "idle",
    )
    .phase(Phase::Resume, 409.0, Some(600))
    .observe(
        420.0,
        Source::Squeue,
        "",
        "job_state",
        Some("REQUEUED"),
        "PENDING (BeginTime)",
        None,
    )
    .phase_end(
        890.0,
        Phase::Resume,
        890.0,
        PhaseVerdict::NotReached,
        TimeSource::Observed,
        "job still PENDING at the deadline",
    )
    .end_scenario(
        891.0,
        ScenarioOutcome::Failed,
        "resume never happened: job still PENDING 10m after injection",
    );
}

/// Every fixture: (file name, writer).
/// Writes one fixture journal at the given path.
pub type WriteFixture = fn(&Path);

pub const FIXTURES: &[(&str, WriteFixture)] = &[
    ("passed.jsonl", passed),
    ("missed-deadline.jsonl", missed_deadline),
    ("aborted.jsonl", aborted),
    ("interrupted.jsonl", interrupted),
    ("crashed.jsonl", crashed),
    ("suite.jsonl", suite),
];
