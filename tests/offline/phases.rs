//! The phase engine on recorded-style timelines: in order, shuffled,
//! with missing events, with clock skew between sources, deadlines met,
//! missed and never reached, and the workload's lost steps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hpchaos::duration::Duration;
use hpchaos::journal::{PhaseVerdict, Source, TimeSource};
use hpchaos::phases::{Baseline, BootWitness, Event, Expectation, Observation, judge, secs};
use hpchaos::scenario::model::{Phase, Recovery};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .unwrap()
        .to_utc()
}
fn t(s: f64) -> DateTime<Utc> {
    t0() + secs(s)
}

const NODE: &str = "ip-10-1-0-12";

fn baseline(workload: bool) -> Baseline {
    Baseline {
        targets: vec![NODE.into()],
        instance_ids: BTreeMap::from([(NODE.into(), "i-0old".into())]),
        launch_times: BTreeMap::from([(NODE.into(), t(-3600.0))]),
        workload,
        progress: workload.then_some(27),
        checkpoint: workload.then_some(20),
        boots: BTreeMap::from([(
            NODE.into(),
            BootWitness {
                boot_time: Some(t(-7200.0)),
                slurmd_started: Some(t(-7190.0)),
            },
        )]),
        unhealthy_before: Default::default(),
        instance_groups: Default::default(),
    }
}

fn expect(recovery: Recovery, deadlines: &[(Phase, u64)]) -> Expectation {
    Expectation {
        recovery,
        phases: recovery.phases().to_vec(),
        deadlines: deadlines
            .iter()
            .map(|(p, s)| (*p, Duration::from_secs(*s)))
            .collect(),
        quiet_for: None,
        max_lost_steps: None,
    }
}

fn slurm(seen: f64, source: Option<f64>, state: &str, flags: &str, reason: &str) -> Event {
    Event {
        seen: t(seen),
        source_time: source.map(t),
        source: Source::Sinfo,
        observation: Observation::SlurmNode {
            node: NODE.into(),
            state: hpchaos::cluster::node_state::NodeState::parse(&format!("{state}{flags}")),
            reason: reason.into(),
        },
    }
}
fn api(seen: f64, status: &str, id: &str, launch: f64) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::Sagemaker,
        observation: Observation::ApiNode {
            node: NODE.into(),
            running: status == "Running",
            status: status.into(),
            instance_id: id.into(),
            launch_time: Some(t(launch)),
        },
    }
}
fn job(seen: f64, state: &str, nodes: &[&str], restarts: u32) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::Squeue,
        observation: Observation::Job {
            state: state.into(),
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            restarts,
        },
    }
}
fn step(seen: f64, step: u64) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::JobOutput,
        observation: Observation::Progress { step, exact: true },
    }
}
fn restarted(seen: f64, from: Option<u64>, said: &str) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::JobOutput,
        observation: Observation::JobRestarted {
            from,
            said: said.to_owned(),
        },
    }
}

/// HMA's record of a detection on `node`, read at `seen`, decided at `ts`.
fn hma(seen: f64, ts: f64, node: &str) -> Event {
    Event {
        seen: t(seen),
        source_time: Some(t(ts)),
        source: Source::Hma,
        observation: Observation::HealthEvent {
            node: node.into(),
            words: "XID Error {\"ErrNum\":48}: DCGM Policy Violation found".into(),
        },
    }
}

fn replace_timeline() -> Vec<Event> {
    vec![
        step(0.5, 27),
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        api(21.0, "Pending", "i-0old", -3600.0),
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
        job(80.0, "RUNNING", &["ip-10-1-0-12", "ip-10-1-0-13"], 1),
        step(84.0, 21),
        step(90.0, 28),
    ]
}

const REPLACE_DEADLINES: &[(Phase, u64)] = &[
    (Phase::Detect, 60),
    (Phase::Drain, 120),
    (Phase::Replace, 600),
    (Phase::Rejoin, 700),
    (Phase::Resume, 800),
];

/// A replace with a workload and the usual deadlines, judged at 100 s.
fn judge_replace(timeline: &[Event]) -> hpchaos::phases::Judgement {
    judge_replace_from(27, timeline)
}

/// [`judge_replace`] with the job at step `progress` at the fault.
fn judge_replace_from(progress: u64, timeline: &[Event]) -> hpchaos::phases::Judgement {
    let mut base = baseline(true);
    base.progress = Some(progress);
    judge(
        t0(),
        &base,
        &expect(Recovery::Replace, REPLACE_DEADLINES),
        timeline,
        t(100.0),
        false,
    )
}

/// The result of `phase` in `judgement` (which must time it).
fn phase_in(judgement: &hpchaos::phases::Judgement, phase: Phase) -> &hpchaos::phases::PhaseResult {
    judgement.phases.iter().find(|p| p.phase == phase).unwrap()
}

fn ends(judgement: &hpchaos::phases::Judgement) -> Vec<(Phase, f64, TimeSource, PhaseVerdict)> {
    judgement
        .phases
        .iter()
        .map(|p| {
            let end = p.ended.as_ref().unwrap();
            (
                p.phase,
                (end.at - t0()).num_milliseconds() as f64 / 1000.0,
                end.time_source,
                p.verdict.unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_replace_in_order_times_every_phase_by_the_best_clock() {
    let judgement = judge_replace(&replace_timeline());
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
    assert_eq!(
        ends(&judgement),
        vec![
            (Phase::Detect, 8.0, TimeSource::Source, PhaseVerdict::Met),
            (Phase::Drain, 20.0, TimeSource::Observed, PhaseVerdict::Met),
            (Phase::Replace, 66.0, TimeSource::Source, PhaseVerdict::Met),
            (Phase::Rejoin, 75.0, TimeSource::Observed, PhaseVerdict::Met),
            (Phase::Resume, 90.0, TimeSource::Observed, PhaseVerdict::Met),
        ]
    );
    // Redone: steps 21 to 27.
    assert_eq!(judgement.lost_steps, Some(7));
}

/// HMA's own record times detect (it decides, then marks the node in
/// Slurm), whether it is read before or after the Slurm mark; the Slurm
/// mark alone when HMA's record is absent; a detection from before the
/// injection, or on another node, is not this fault's.
#[test]
fn hmas_record_times_detect_before_the_slurm_mark() {
    let detect = |extra: Vec<Event>| {
        let mut timeline = replace_timeline();
        timeline.extend(extra);
        let judgement = judge_replace(&timeline);
        let end = phase_in(&judgement, Phase::Detect).ended.clone().unwrap();
        (
            (end.at - t0()).num_milliseconds() as f64 / 1000.0,
            end.time_source,
            end.evidence,
        )
    };
    // Read after the Slurm mark (CloudWatch's ingestion lags), or before.
    for seen in [12.0, 7.5] {
        let (at, source, evidence) = detect(vec![hma(seen, 6.0, NODE)]);
        assert_eq!((at, source), (6.0, TimeSource::Source), "{evidence}");
        assert!(
            evidence.starts_with("hma ip-10-1-0-12: XID Error"),
            "{evidence}"
        );
    }
    // Its whole-second ts within the injection's second: the injection.
    let (at, _, evidence) = detect(vec![hma(3.0, -0.4, NODE)]);
    assert_eq!(at, 0.0);
    assert!(
        evidence.starts_with("hma ") && evidence.contains("within the injection's second"),
        "{evidence}"
    );
    // Not this fault's: before the injection's second, another node, or
    // later than the Slurm mark (a second detection).
    for other in [
        hma(3.0, -5.0, NODE),
        hma(3.0, 6.0, "ip-10-1-0-99"),
        hma(30.0, 25.0, NODE),
    ] {
        let (at, _, evidence) = detect(vec![other]);
        assert_eq!(at, 8.0, "{evidence}");
        assert!(evidence.starts_with("sinfo"), "{evidence}");
    }
}

/// A deep health check: taken up when Slurm shows the node in its
/// maintenance reservation or the API shows `DeepHealthCheckInProgress`,
/// over when the API shows it `Running` again on the same instance,
/// rejoined when Slurm shows it usable (the reservation gone). A
/// replacement is not the check's end.
#[test]
fn a_deep_health_check_is_timed_in_and_out() {
    let expectation = expect(
        Recovery::HealthCheck,
        &[
            (Phase::Detect, 60),
            (Phase::HealthCheck, 600),
            (Phase::Rejoin, 700),
        ],
    );
    let judged = |timeline: &[Event]| {
        judge(
            t0(),
            &baseline(false),
            &expectation,
            timeline,
            t(100.0),
            false,
        )
    };
    let timeline = vec![
        slurm(2.0, None, "idle", "$", ""),
        api(3.0, "DeepHealthCheckInProgress", "i-0old", -3600.0),
        api(20.0, "Running", "i-0old", -3600.0),
        slurm(21.0, None, "idle", "$", ""),
        slurm(23.0, None, "idle", "", ""),
    ];
    let judgement = judged(&timeline);
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
    assert_eq!(
        ends(&judgement),
        vec![
            (Phase::Detect, 2.0, TimeSource::Observed, PhaseVerdict::Met),
            (
                Phase::HealthCheck,
                20.0,
                TimeSource::Observed,
                PhaseVerdict::Met
            ),
            (Phase::Rejoin, 23.0, TimeSource::Observed, PhaseVerdict::Met),
        ]
    );
    // HyperPod checking or patching the node is not another scenario's
    // detection: a replace expected sees only the Slurm mark.
    let mut timeline = replace_timeline();
    timeline.insert(0, api(1.0, "SystemUpdating", "i-0old", -3600.0));
    timeline.insert(0, api(0.5, "DeepHealthCheckInProgress", "i-0old", -3600.0));
    let judgement = judge_replace(&timeline);
    let detect = phase_in(&judgement, Phase::Detect).ended.clone().unwrap();
    assert_eq!(
        (detect.at - t0()).num_milliseconds(),
        8000,
        "{}",
        detect.evidence
    );
    // The node replaced instead: the check is not over.
    let replaced = vec![
        api(3.0, "DeepHealthCheckInProgress", "i-0old", -3600.0),
        api(20.0, "Running", "i-0new", 19.0),
    ];
    let judgement = judged(&replaced);
    assert!(
        phase_in(&judgement, Phase::HealthCheck).ended.is_none(),
        "{judgement:?}"
    );
}

/// Lost steps count from the highest step reached before the restart to
/// where the job restarted, whatever step a poll happened to see first:
/// `make run`'s xid48-replace reached step 12 after an injection at step
/// 8, restarted from 0, and was first polled at step 5 (12 were redone).
#[test]
fn lost_steps_are_counted_from_where_the_job_restarted() {
    let mut timeline = vec![
        slurm(2.0, Some(2.0), "fail", "", "Action:Replace"),
        step(2.5, 9),
        step(2.5, 12),
        job(3.0, "PENDING", &[], 1),
        job(6.0, "RUNNING", &["ip-10-1-0-12"], 1),
        // One poll reads the restart's first lines at once.
        step(7.0, 1),
        step(7.0, 2),
        step(7.0, 5),
    ];
    timeline.sort_by_key(|e| e.seen);
    let judgement = judge_replace_from(8, &timeline);
    assert_eq!(judgement.lost_steps, Some(12));
    // No restart seen: nothing known to be lost.
    let judgement = judge_replace_from(8, &[step(2.0, 9), step(3.0, 10)]);
    assert_eq!(judgement.lost_steps, None);
}

#[test]
fn events_delivered_out_of_order_give_the_same_phases() {
    let mut shuffled = replace_timeline();
    shuffled.reverse();
    shuffled.swap(1, 5);
    let in_order = judge_replace(&replace_timeline());
    let out_of_order = judge_replace(&shuffled);
    assert_eq!(in_order, out_of_order);
}

#[test]
fn a_missing_drain_event_is_implied_by_the_replacement() {
    let timeline: Vec<Event> = replace_timeline()
        .into_iter()
        .filter(
            |e| !matches!(e.observation, Observation::Job { ref state, .. } if *state == hpchaos::cluster::job_state::JobState::Pending),
        )
        .collect();
    let judgement = judge_replace(&timeline);
    let drain = &judgement.phases[1];
    let end = drain.ended.as_ref().unwrap();
    assert!(
        end.evidence.starts_with("implied by replace"),
        "{}",
        end.evidence
    );
    assert_eq!(end.at, t(66.0));
}

#[test]
fn a_source_clock_behind_the_harness_is_clamped_not_backwards() {
    // The API's LaunchTime says 15 s, before the drain boundary at 20 s.
    let mut timeline = replace_timeline();
    timeline[4] = api(70.0, "Running", "i-0new", 15.0);
    let judgement = judge_replace(&timeline);
    let replace = judgement.phases[2].ended.as_ref().unwrap();
    assert_eq!(replace.at, t(20.0));
    assert!(replace.evidence.contains("clamped"), "{}", replace.evidence);
    let times: Vec<_> = judgement
        .phases
        .iter()
        .map(|p| p.ended.as_ref().unwrap().at)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn a_late_phase_is_missed_and_an_absent_one_not_reached() {
    let tight = [
        (Phase::Detect, 60),
        (Phase::Drain, 120),
        (Phase::Replace, 30),
        (Phase::Rejoin, 700),
        (Phase::Resume, 800),
    ];
    let judgement = judge(
        t(0.0),
        &baseline(true),
        &expect(Recovery::Replace, &tight),
        &replace_timeline(),
        t(100.0),
        false,
    );
    assert_eq!(judgement.phases[2].verdict, Some(PhaseVerdict::Missed));
    assert!(!judgement.passed);
    assert!(
        judgement
            .reason
            .contains("replace took until 1m 06s after injection; deadline 30s"),
        "{}",
        judgement.reason
    );

    let early: Vec<Event> = replace_timeline().into_iter().take(4).collect();
    let waiting = judge_replace(&early);
    assert!(!waiting.settled, "replace may still come: deadline 600 s");
    assert_eq!(waiting.phases[2].verdict, None);
    // Past the deadline the phase is still watched (it may yet end, late)...
    let late = judge(
        t(0.0),
        &baseline(true),
        &expect(Recovery::Replace, REPLACE_DEADLINES),
        &early,
        t(601.0),
        false,
    );
    assert!(!late.settled);
    // ...until the run gives up on it.
    let given_up = judge(
        t(0.0),
        &baseline(true),
        &expect(Recovery::Replace, REPLACE_DEADLINES),
        &early,
        t(901.0),
        true,
    );
    assert!(given_up.settled && !given_up.passed);
    assert_eq!(given_up.phases[2].verdict, Some(PhaseVerdict::NotReached));
}

#[test]
fn a_reboot_keeps_the_instance_and_moves_the_launch_time() {
    let timeline = vec![
        slurm(5.0, Some(4.0), "fail", "", "Action:Reboot"),
        slurm(6.0, Some(4.0), "fail", "", "Action:Reboot"),
        api(40.0, "Running", "i-0old", 35.0),
        slurm(45.0, None, "idle", "", ""),
    ];
    let deadlines = [
        (Phase::Detect, 30),
        (Phase::Reboot, 300),
        (Phase::Rejoin, 360),
    ];
    let mut e = expect(Recovery::Reboot, &deadlines);
    e.recovery = Recovery::Reboot;
    let judgement = judge(t(0.0), &baseline(false), &e, &timeline, t(50.0), false);
    let phases: Vec<_> = judgement
        .phases
        .iter()
        .map(|p| (p.phase, p.verdict))
        .collect();
    assert_eq!(
        phases,
        vec![
            (Phase::Detect, Some(PhaseVerdict::Met)),
            (Phase::Drain, Some(PhaseVerdict::Observed)),
            (Phase::Reboot, Some(PhaseVerdict::Met)),
            (Phase::Rejoin, Some(PhaseVerdict::Met)),
            (Phase::Resume, None),
        ]
    );
    assert_eq!(judgement.phases[2].ended.as_ref().unwrap().at, t(35.0));
}

#[test]
fn too_many_lost_steps_fail_the_scenario() {
    let mut e = expect(Recovery::Replace, REPLACE_DEADLINES);
    e.max_lost_steps = Some(5);
    let judgement = judge(
        t(0.0),
        &baseline(true),
        &e,
        &replace_timeline(),
        t(100.0),
        false,
    );
    assert!(!judgement.passed);
    assert!(
        judgement
            .reason
            .contains("7 steps lost, more than max_lost_steps 5"),
        "{}",
        judgement.reason
    );
}

/// A ping slurmctld reports unanswered after the node is back (a late
/// word about a replaced node) is no reaction on its own; a node Slurm
/// shows not responding, or one set DOWN for it, is.
#[test]
fn an_unanswered_ping_alone_does_not_disturb_a_quiet_window() {
    let mut e = expect(Recovery::None, &[]);
    e.quiet_for = Some(Duration::from_secs(30));
    let late = vec![
        slurm(1.0, None, "idle", "", ""),
        controller_log(2.0, 2.0, "error: Nodes ip-10-1-0-12 not responding"),
        slurm(3.0, None, "idle", "", ""),
    ];
    let judged = judge(t(0.0), &baseline(false), &e, &late, t(31.0), false);
    assert!(judged.settled && judged.passed, "{judged:?}");
    let confirmed = vec![
        controller_log(2.0, 2.0, "error: Nodes ip-10-1-0-12 not responding"),
        slurm(3.0, None, "idle*", "", ""),
    ];
    let judged = judge(t(0.0), &baseline(false), &e, &confirmed, t(31.0), false);
    assert!(judged.settled && !judged.passed, "{judged:?}");
    let down = vec![controller_log(
        2.0,
        2.0,
        "error: Nodes ip-10-1-0-12 not responding, setting DOWN",
    )];
    let judged = judge(t(0.0), &baseline(false), &e, &down, t(31.0), false);
    assert!(judged.settled && !judged.passed, "{judged:?}");
}

#[test]
fn recovery_none_passes_after_a_quiet_window_and_fails_on_a_reaction() {
    let mut e = expect(Recovery::None, &[]);
    e.quiet_for = Some(Duration::from_secs(60));
    let calm = vec![slurm(10.0, None, "allocated", "", "")];
    let during = judge(t(0.0), &baseline(false), &e, &calm, t(30.0), false);
    assert!(!during.settled);
    let after = judge(t(0.0), &baseline(false), &e, &calm, t(61.0), false);
    assert!(after.settled && after.passed);
    let reacted = vec![slurm(10.0, Some(9.0), "fail", "", "Action:Replace")];
    let judged = judge(t(0.0), &baseline(false), &e, &reacted, t(61.0), false);
    assert!(judged.settled && !judged.passed);
    assert!(
        judged.reason.contains("Action:Replace"),
        "{}",
        judged.reason
    );
}

#[test]
fn job_fails_ends_when_the_job_does() {
    let e = expect(
        Recovery::JobFails,
        &[(Phase::Detect, 30), (Phase::JobEnd, 120)],
    );
    let timeline = vec![
        job(2.0, "RUNNING", &[NODE], 0),
        job(4.0, "COMPLETING", &[NODE], 0),
        job(7.0, "FAILED", &[], 0),
    ];
    let judgement = judge(t(0.0), &baseline(true), &e, &timeline, t(10.0), false);
    assert!(judgement.passed, "{judgement:?}");
    assert_eq!(judgement.phases[0].ended.as_ref().unwrap().at, t(4.0));
    assert_eq!(judgement.phases[1].ended.as_ref().unwrap().at, t(7.0));

    // The job seen FAILED straight away ends both phases with one event.
    let at_once = vec![
        job(2.0, "RUNNING", &[NODE], 0),
        job(8.5, "FAILED", &[NODE], 0),
    ];
    let judgement = judge(t(0.0), &baseline(true), &e, &at_once, t(10.0), false);
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
    assert_eq!(judgement.phases[1].ended.as_ref().unwrap().at, t(8.5));
}

/// A hung rank: the collective watchdog's line is the detection, before
/// Slurm shows the step failing; the job's end closes job_end.
#[test]
fn a_hang_is_detected_by_the_watchdogs_line() {
    let e = expect(
        Recovery::JobFails,
        &[(Phase::Detect, 30), (Phase::JobEnd, 60)],
    );
    let fault = Event {
        seen: t(21.0),
        source_time: None,
        source: Source::JobOutput,
        observation: Observation::JobFault {
            said: "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=97, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=20000) ran for 20031 milliseconds before timing out.".into(),
        },
    };
    let timeline = vec![
        job(2.0, "RUNNING", &[NODE], 0),
        step(2.5, 97),
        fault,
        job(22.0, "COMPLETING", &[NODE], 0),
        job(24.0, "FAILED", &[], 0),
    ];
    let judgement = judge(t(0.0), &baseline(true), &e, &timeline, t(25.0), false);
    assert!(judgement.passed, "{judgement:?}");
    let detect = judgement.phases[0].ended.as_ref().unwrap();
    assert_eq!(detect.at, t(21.0));
    assert!(
        detect.evidence.contains("Watchdog caught"),
        "{}",
        detect.evidence
    );
    assert_eq!(judgement.phases[1].ended.as_ref().unwrap().at, t(24.0));
    // The job failed: the steps since its latest checkpoint (20, before
    // the fault) up to the highest it reached (97) are lost.
    assert_eq!(judgement.lost_steps, Some(77));
    // A checkpoint written after the fault is the one a restart goes back
    // to.
    let mut later = timeline.clone();
    later.insert(
        2,
        Event {
            seen: t(2.6),
            source_time: None,
            source: Source::JobOutput,
            observation: Observation::Checkpoint { step: 95 },
        },
    );
    let judged = judge(t(0.0), &baseline(true), &e, &later, t(25.0), false);
    assert_eq!(judged.lost_steps, Some(2));
    // No checkpoint ever said: unknown, not zero.
    let unsaid = Baseline {
        checkpoint: None,
        ..baseline(true)
    };
    let judged = judge(t(0.0), &unsaid, &e, &timeline, t(25.0), false);
    assert_eq!(judged.lost_steps, None);
    // A replace scenario does not take a watchdog line for HyperPod's
    // detection.
    let replace = expect(Recovery::Replace, &[]);
    let only_fault = vec![timeline[2].clone()];
    let judged = judge(
        t(0.0),
        &baseline(true),
        &replace,
        &only_fault,
        t(25.0),
        false,
    );
    assert!(judged.phases[0].ended.is_none(), "{judged:?}");
}

#[test]
fn a_healthy_node_before_anything_happened_is_not_a_rejoin() {
    // The first poll after the injection still sees the node as it was.
    let mut timeline = vec![slurm(0.3, None, "allocated", "", "")];
    timeline.extend(replace_timeline());
    let judgement = judge_replace(&timeline);
    assert_eq!(
        judgement.phases[0].ended.as_ref().unwrap().at,
        t(8.0),
        "detect is the Action:Replace, not the healthy poll"
    );
    assert_eq!(judgement.phases[3].ended.as_ref().unwrap().at, t(75.0));
    assert!(judgement.passed);
}

#[test]
fn a_node_seen_idle_just_before_its_replacement_was_seen_has_rejoined() {
    // One poll reads sinfo (already idle), then the API (the new instance).
    let timeline = vec![
        slurm(3.0, Some(2.4), "fail", "", "Action:Replace"),
        job(3.5, "FAILED", &[NODE], 0),
        slurm(9.5, None, "idle", "", ""),
        api(9.6, "Running", "i-0new", 9.0),
    ];
    let deadlines = [
        (Phase::Detect, 60),
        (Phase::Drain, 120),
        (Phase::Replace, 600),
        (Phase::Rejoin, 700),
    ];
    let judgement = judge(
        t(0.0),
        &baseline(true),
        &expect(Recovery::Replace, &deadlines),
        &timeline,
        t(12.0),
        false,
    );
    let rejoin = judgement.phases[3]
        .ended
        .as_ref()
        .expect("rejoin closed from the state already seen");
    assert_eq!(rejoin.at, t(9.5));
    assert_eq!(judgement.phases[2].ended.as_ref().unwrap().at, t(9.0));
}

#[test]
fn a_finished_run_leaves_no_phase_open() {
    let judgement = judge(
        t(0.0),
        &baseline(true),
        &expect(Recovery::Replace, &[]),
        &[],
        t(5.0),
        true,
    );
    assert!(judgement.settled && !judgement.passed);
    assert!(
        judgement
            .phases
            .iter()
            .all(|p| p.verdict == Some(PhaseVerdict::NotReached))
    );
}

fn controller_log(seen: f64, at: f64, message: &str) -> Event {
    Event {
        seen: t(seen),
        source_time: Some(t(at)),
        source: Source::SlurmctldLog,
        observation: Observation::ControllerLog {
            node: NODE.into(),
            message: message.into(),
            news: hpchaos::cluster::controller_log::NodeNews::of(message),
        },
    }
}

#[test]
fn the_controller_log_times_detection_to_the_millisecond() {
    // sinfo's reason time has whole seconds (8.0 for 8.722); the log line,
    // read first in the same poll, has the milliseconds.
    let mut timeline = replace_timeline();
    timeline.insert(
        1,
        controller_log(
            8.9,
            8.722,
            "update_node: node ip-10-1-0-12 reason set to: Action:Replace",
        ),
    );
    let judgement = judge_replace(&timeline);
    let detect = &judgement.phases[0];
    assert_eq!(
        ends(&judgement)[0],
        (Phase::Detect, 8.722, TimeSource::Source, PhaseVerdict::Met)
    );
    assert!(
        detect
            .ended
            .as_ref()
            .unwrap()
            .evidence
            .starts_with("slurmctld_log ip-10-1-0-12"),
        "{detect:?}"
    );
    // A line about the node that is not a sign of trouble detects nothing.
    let mut quiet = replace_timeline();
    quiet.insert(
        1,
        controller_log(8.9, 8.5, "update_node: node ip-10-1-0-12 state set to IDLE"),
    );
    let judgement = judge_replace(&quiet);
    assert_eq!(ends(&judgement)[0].1, 8.0);
}

#[test]
fn the_controller_log_times_the_rejoin_too() {
    let mut timeline = replace_timeline();
    // Resumed at 74.210 by the controller's clock; sinfo saw it at 75.
    timeline.insert(
        5,
        controller_log(
            74.9,
            74.21,
            "update_node: node ip-10-1-0-12 state set to IDLE",
        ),
    );
    let judgement = judge_replace(&timeline);
    assert_eq!(
        ends(&judgement)[3],
        (Phase::Rejoin, 74.21, TimeSource::Source, PhaseVerdict::Met)
    );
}

/// Field case 12: a reboot whose LaunchTime does not change (EC2's "last
/// launched" meaning) is still seen, from Slurm's own signs: the node
/// stopped responding, then responded again.
#[test]
fn field_case_12_a_reboot_is_seen_from_slurm_without_a_new_launch_time() {
    let text = include_str!("../fixtures/field-cases/12-reboot-same-launchtime.txt");
    let launch = DateTime::parse_from_rfc3339("2026-11-28T07:47:41Z")
        .unwrap()
        .to_utc();
    let mut events = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('|').collect();
        let seen: f64 = f[0].parse().unwrap();
        events.push(match f[1] {
            "sinfo" => slurm(seen, None, f[3], f[4], f[5]),
            _ => Event {
                seen: t(seen),
                source_time: None,
                source: Source::Sagemaker,
                observation: Observation::ApiNode {
                    node: f[2].into(),
                    running: f[3] == "Running",
                    status: f[3].into(),
                    instance_id: f[4].into(),
                    launch_time: Some(launch),
                },
            },
        });
    }
    let mut base = baseline(false);
    base.instance_ids
        .insert(NODE.into(), "i-0a1b2c3d4e5f60012".into());
    base.launch_times.insert(NODE.into(), launch);
    let mut expectation = expect(
        Recovery::Reboot,
        &[
            (Phase::Detect, 60),
            (Phase::Reboot, 300),
            (Phase::Rejoin, 360),
        ],
    );
    // No workload: no resume phase.
    expectation.phases.retain(|p| *p != Phase::Resume);
    let judgement = judge(t0(), &base, &expectation, &events, t(200.0), false);
    let ended = |phase: Phase| {
        judgement
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .and_then(|p| p.ended.as_ref())
            .map(|b| ((b.at - t0()).num_seconds(), b.evidence.clone()))
    };
    let (at, evidence) = ended(Phase::Reboot).expect("the reboot is seen");
    assert_eq!(at, 180, "{evidence}");
    assert!(evidence.contains("responding again"), "{evidence}");
    assert_eq!(ended(Phase::Rejoin).map(|(at, _)| at), Some(180));
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
}

/// sinfo's reason time has whole seconds; when the controller log shows
/// the same detection within that second, a poll later, its millisecond
/// time is the detect boundary (the more precise clock wins).
#[test]
fn detect_takes_the_controller_logs_milliseconds_over_sinfos_second() {
    let events = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        controller_log(
            9.5,
            8.304,
            "update_node: node ip-10-1-0-12 reason set to: Action:Replace",
        ),
    ];
    let judgement = judge_replace(&events);
    let detect = judgement.phases[0].ended.as_ref().unwrap();
    assert_eq!((detect.at - t0()).num_milliseconds(), 8304);
    assert!(
        detect.evidence.starts_with("slurmctld_log"),
        "{}",
        detect.evidence
    );
    // A log line from another second is another event: sinfo's time stands.
    let events = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        controller_log(9.5, 9.7, "update_node: node ip-10-1-0-12 state set to IDLE"),
    ];
    let judgement = judge_replace(&events);
    let detect = judgement.phases[0].ended.as_ref().unwrap();
    assert_eq!((detect.at - t0()).num_milliseconds(), 8000);
}

/// Slurm 24.11 without accounting keeps `Action:*` on a node it resumed:
/// a usable node with a leftover reason is neither a detection (before the
/// fault, from the last scenario) nor kept from rejoining (after it).
#[test]
fn a_reason_left_on_a_usable_node_is_not_a_mark() {
    for (state, flags) in [
        ("idle", ""),
        ("mixed", ""),
        ("allocated", "+"),
        ("idle", "-"),
    ] {
        let timeline = vec![
            // Left by the last reboot of this node, set an hour ago.
            slurm(1.0, Some(-3600.0), state, flags, "Action:Reboot"),
            slurm(5.0, Some(4.0), "fail", "", "Action:Reboot"),
            api(40.0, "Running", "i-0old", 35.0),
            slurm(45.0, None, state, flags, "Action:Reboot"),
        ];
        let deadlines = [
            (Phase::Detect, 30),
            (Phase::Reboot, 300),
            (Phase::Rejoin, 360),
        ];
        let judgement = judge(
            t(0.0),
            &baseline(false),
            &expect(Recovery::Reboot, &deadlines),
            &timeline,
            t(50.0),
            false,
        );
        let detect = judgement.phases[0].ended.as_ref().unwrap();
        assert_eq!(detect.at, t(4.0), "{state}{flags}: {judgement:?}");
        let rejoin = phase_in(&judgement, Phase::Rejoin);
        assert_eq!(rejoin.verdict, Some(PhaseVerdict::Met), "{state}{flags}");
        let end = rejoin.ended.as_ref().unwrap();
        assert_eq!(end.at, t(45.0));
        assert!(end.evidence.contains("left by Slurm"), "{}", end.evidence);
    }
}

/// HyperPod retries a replacement whose launch failed (HYPERPOD.md,
/// "Failure is not always final"): `Failure`, then another instance
/// `Pending`, `DeepHealthCheckInProgress`, then `Running`. The replace
/// ends when an instance other than the old one runs, timed by its
/// LaunchTime; a status on the way is not the end.
#[test]
fn a_failed_launch_retried_is_not_the_end_of_the_replacement() {
    let timeline = vec![
        step(0.5, 27),
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        api(21.0, "Pending", "i-0old", -3600.0),
        api(40.0, "Failure", "i-0try1", 35.0),
        api(50.0, "Pending", "i-0try2", 48.0),
        api(60.0, "DeepHealthCheckInProgress", "i-0try2", 48.0),
        api(70.0, "Running", "i-0try2", 48.0),
        slurm(75.0, None, "idle", "", ""),
        job(80.0, "RUNNING", &["ip-10-1-0-12", "ip-10-1-0-13"], 1),
        step(84.0, 21),
        step(90.0, 28),
    ];
    let judgement = judge_replace(&timeline);
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
    let replace = phase_in(&judgement, Phase::Replace);
    let end = replace.ended.as_ref().unwrap();
    assert_eq!(end.at, t(48.0));
    assert!(end.evidence.contains("i-0try2"), "{}", end.evidence);
    // Stopped at the failure: the replacement is still under way.
    let cut: Vec<Event> = timeline[..5].to_vec();
    let judgement = judge_replace(&cut);
    let replace = phase_in(&judgement, Phase::Replace);
    assert!(replace.ended.is_none(), "{replace:?}");
}

fn boot(seen: f64, boot_time: f64, slurmd_started: f64) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::Scontrol,
        observation: Observation::NodeBoot {
            node: NODE.into(),
            boot: BootWitness {
                boot_time: Some(t(boot_time)),
                slurmd_started: Some(t(slurmd_started)),
            },
        },
    }
}

/// A reboot whose instance keeps its LaunchTime (EC2's meaning) is seen
/// from what slurmd reports: a later BootTime (the kernel booted again),
/// else a later SlurmdStartTime; by Slurm's clock. The first reading, as
/// before the fault, proves nothing.
#[test]
fn a_reboot_is_seen_by_slurmds_boot_and_start_times() {
    let deadlines = [
        (Phase::Detect, 30),
        (Phase::Reboot, 300),
        (Phase::Rejoin, 360),
    ];
    let reboot_end = |timeline: Vec<Event>| {
        let judgement = judge(
            t(0.0),
            &baseline(false),
            &expect(Recovery::Reboot, &deadlines),
            &timeline,
            t(60.0),
            false,
        );
        let reboot = phase_in(&judgement, Phase::Reboot);
        reboot
            .ended
            .clone()
            .map(|b| (b.at, b.time_source, b.evidence))
    };
    let marked = slurm(5.0, Some(4.0), "fail", "", "Action:Reboot");
    // Same LaunchTime: the API proves nothing.
    let same_launch = api(40.0, "Running", "i-0old", -3600.0);
    // Unchanged readings: not a reboot; nor BootTime's wobble (Slurm
    // computes it as now - uptime: a second either way at each
    // registration), nor a later reading of a boot before the fault.
    for (boot_time, slurmd) in [(-7200.0, -7190.0), (-7199.0, -7190.0), (-7190.0, -7190.0)] {
        let timeline = vec![
            marked.clone(),
            boot(6.0, boot_time, slurmd),
            same_launch.clone(),
        ];
        assert_eq!(reboot_end(timeline), None, "BootTime {boot_time}");
    }
    // The kernel booted again at 30 s, slurmd started at 38 s: BootTime.
    let (at, source, evidence) = reboot_end(vec![
        marked.clone(),
        same_launch.clone(),
        boot(41.0, 30.0, 38.0),
    ])
    .unwrap();
    assert_eq!((at, source), (t(30.0), TimeSource::Source));
    assert!(evidence.contains("BootTime"), "{evidence}");
    // The lab's nodes share the host's kernel: slurmd's start alone.
    let (at, _, evidence) =
        reboot_end(vec![marked, same_launch, boot(41.0, -7200.0, 38.0)]).unwrap();
    assert_eq!(at, t(38.0));
    assert!(evidence.contains("SlurmdStartTime"), "{evidence}");
}

/// The events of `replace_timeline` about the node, moved to `node` and
/// shifted by `lag` seconds (the workload's left out).
fn node_replace(node: &str, lag: f64, new_id: &str) -> Vec<Event> {
    let on = |mut e: Event| {
        e.seen += secs(lag);
        e.source_time = e.source_time.map(|t| t + secs(lag));
        match &mut e.observation {
            Observation::SlurmNode { node: n, .. } | Observation::ApiNode { node: n, .. } => {
                *n = node.to_owned()
            }
            _ => {}
        }
        if let Observation::ApiNode {
            instance_id,
            launch_time,
            ..
        } = &mut e.observation
        {
            if instance_id != "i-0old" {
                *instance_id = new_id.to_owned();
            }
            *launch_time = launch_time.map(|t| t + secs(lag));
        }
        e
    };
    vec![
        on(slurm(9.0, Some(8.0), "fail", "", "Action:Replace")),
        on(api(21.0, "Pending", "i-0old", -3600.0)),
        on(api(70.0, "Running", "i-0new", 66.0)),
        on(slurm(75.0, None, "idle", "", "")),
    ]
}

fn two_targets() -> Baseline {
    let mut b = baseline(false);
    let other = "ip-10-1-0-13";
    b.targets.push(other.into());
    b.instance_ids.insert(other.into(), "i-0old".into());
    b.launch_times.insert(other.into(), t(-3600.0));
    b
}

#[test]
fn several_targets_are_timed_each_and_a_phase_ends_on_the_last() {
    use hpchaos::phases::judge_scenario;
    let mut events = node_replace(NODE, 0.0, "i-0new12");
    events.extend(node_replace("ip-10-1-0-13", 30.0, "i-0new13"));
    let deadlines = &[
        (Phase::Detect, 60),
        (Phase::Drain, 120),
        (Phase::Replace, 90),
        (Phase::Rejoin, 200),
    ];
    let mut expectation = expect(Recovery::Replace, deadlines);
    expectation.phases.retain(|p| *p != Phase::Resume);
    let (whole, per_node) = judge_scenario(
        t(0.0),
        &two_targets(),
        &expectation,
        &events,
        t(200.0),
        false,
    );
    // Each node timed on its own: the second is 30 s behind.
    let first = &per_node[NODE];
    let second = &per_node["ip-10-1-0-13"];
    let replace = |j: &hpchaos::phases::Judgement| {
        let end = phase_in(j, Phase::Replace);
        (
            (end.ended.as_ref().unwrap().at - t0()).num_milliseconds(),
            end.verdict,
        )
    };
    assert_eq!(replace(first), (66_000, Some(PhaseVerdict::Met)));
    assert_eq!(replace(second), (96_000, Some(PhaseVerdict::Missed)));
    // The scenario's replacement ends when the last target's did, and
    // misses its deadline because one target did: not on the first one.
    assert_eq!(replace(&whole), (96_000, Some(PhaseVerdict::Missed)));
    let replace_end = phase_in(&whole, Phase::Replace);
    assert!(
        replace_end
            .ended
            .as_ref()
            .unwrap()
            .evidence
            .starts_with("last of 2 targets, ip-10-1-0-13:"),
        "{:?}",
        replace_end.ended
    );
    assert!(whole.settled && !whole.passed);
    assert!(whole.reason.contains("ip-10-1-0-13"), "{}", whole.reason);
}

#[test]
fn one_target_not_replaced_keeps_the_scenario_open_then_not_reached() {
    use hpchaos::phases::judge_scenario;
    // Only the first target is replaced.
    let events = node_replace(NODE, 0.0, "i-0new12");
    let mut expectation = expect(Recovery::Replace, REPLACE_DEADLINES);
    expectation.phases.retain(|p| *p != Phase::Resume);
    let (open, per_node) = judge_scenario(
        t(0.0),
        &two_targets(),
        &expectation,
        &events,
        t(100.0),
        false,
    );
    assert!(per_node[NODE].phases.iter().all(|p| p.ended.is_some()));
    assert!(!open.settled, "the scenario waits for the second target");
    assert!(
        open.phases.iter().all(|p| p.ended.is_none()),
        "{:?}",
        open.phases
    );
    let (done, _) = judge_scenario(
        t(0.0),
        &two_targets(),
        &expectation,
        &events,
        t(900.0),
        true,
    );
    assert!(done.settled && !done.passed);
    assert!(
        done.phases
            .iter()
            .all(|p| p.verdict == Some(PhaseVerdict::NotReached)),
        "{:?}",
        done.phases
    );
}

#[test]
fn with_one_target_the_scenario_is_judged_as_before() {
    use hpchaos::phases::judge_scenario;
    let expectation = expect(Recovery::Replace, REPLACE_DEADLINES);
    let (whole, per_node) = judge_scenario(
        t(0.0),
        &baseline(true),
        &expectation,
        &replace_timeline(),
        t(100.0),
        false,
    );
    assert_eq!(whole, judge_replace(&replace_timeline()));
    assert_eq!(per_node[NODE], whole);
}

/// A node seen booting after the fault, as `scontrol show node` says.
fn booted(seen: f64, at: f64) -> Event {
    Event {
        seen: t(seen),
        source_time: None,
        source: Source::Sinfo,
        observation: Observation::NodeBoot {
            node: NODE.into(),
            boot: BootWitness {
                boot_time: Some(t(at)),
                slurmd_started: Some(t(at + 5.0)),
            },
        },
    }
}

#[test]
fn a_mark_the_cluster_dropped_ends_the_wait_instead_of_the_deadline() {
    let expectation = expect(Recovery::Replace, REPLACE_DEADLINES);
    let judge_at = |timeline: &[Event], at: f64| {
        judge(
            t(0.0),
            &baseline(false),
            &expectation,
            timeline,
            t(at),
            false,
        )
    };
    // slurmctld restarted without its state: the node is idle with no
    // reason, the API still shows the old instance Running.
    let restarted = vec![
        slurm(2.0, Some(1.0), "down", "", "Action:Replace"),
        api(3.0, "Running", "i-0old", -3600.0),
        slurm(20.0, None, "idle", "", ""),
    ];
    // Within the grace: still waiting.
    let early = judge_at(&restarted, 45.0);
    assert!(!early.settled, "{early:?}");
    let late = judge_at(&restarted, 51.0);
    assert!(late.settled && !late.passed, "{late:?}");
    let why = late.open_because.clone().unwrap();
    assert!(
        why.contains("dropped the mark") && why.contains("Action:Replace"),
        "{why}"
    );
    assert!(late.reason.contains("dropped the mark"), "{}", late.reason);
    // Detect and drain happened; the replacement never will.
    let verdicts: Vec<(Phase, Option<PhaseVerdict>)> =
        late.phases.iter().map(|p| (p.phase, p.verdict)).collect();
    assert_eq!(
        verdicts,
        vec![
            (Phase::Detect, Some(PhaseVerdict::Met)),
            (Phase::Drain, Some(PhaseVerdict::Met)),
            (Phase::Replace, Some(PhaseVerdict::NotReached)),
            (Phase::Rejoin, Some(PhaseVerdict::NotReached)),
            (Phase::Resume, Some(PhaseVerdict::NotReached)),
        ]
    );
    // Resumed by hand on Slurm 24.11: the reason stays, the mark is gone.
    let by_hand = vec![
        slurm(2.0, Some(1.0), "down", "", "Action:Replace"),
        slurm(20.0, None, "idle", "", "Action:Replace"),
    ];
    assert!(judge_at(&by_hand, 60.0).open_because.is_some());
    // HyperPod acting (the API shows it), a reboot seen, or a node that
    // stopped responding: recovery is under way, no drop is called.
    for sign in [
        api(25.0, "Pending", "i-0old", -3600.0),
        api(25.0, "Running", "i-0new", 24.0),
        booted(25.0, 15.0),
        slurm(10.0, None, "down", "*", "Action:Replace"),
    ] {
        let mut timeline = restarted.clone();
        timeline.push(sign.clone());
        let j = judge_at(&timeline, 60.0);
        assert!(j.open_because.is_none(), "{sign:?}: {j:?}");
    }
    // Without the API the replacement could not be seen: never called.
    let mut no_api = baseline(false);
    no_api.instance_ids.clear();
    let j = judge(t(0.0), &no_api, &expectation, &restarted, t(60.0), false);
    assert!(j.open_because.is_none() && !j.settled, "{j:?}");
    // A quiet scenario or one with nothing detected yet is not judged so.
    let undetected = vec![slurm(20.0, None, "idle", "", "")];
    assert!(judge_at(&undetected, 60.0).open_because.is_none());
}

/// Field case 15: HyperPod's auto-resume in place. The job stays RUNNING
/// with Restarts=0: it is shrunk off the target, expanded with the new
/// instance and its step retried. Drain ends when the job is seen without
/// the target; resume at the first step after "Retrying step"; nothing lost
/// (the step resumed from the checkpoint at the fault).
#[test]
fn field_case_15_auto_resume_in_place_is_a_resume() {
    let all = ["ip-10-1-0-11", NODE, "ip-10-1-0-13"];
    let without = ["ip-10-1-0-11", "ip-10-1-0-13"];
    let timeline = vec![
        job(1.0, "RUNNING", &all, 0),
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(12.0, "RUNNING", &without, 0),
        api(21.0, "Pending", "i-0old", -3600.0),
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
        job(78.0, "RUNNING", &all, 0),
        restarted(
            80.0,
            None,
            "[Auto Resume] Info: JobID: 82 StepID: 0 Retrying step. Attempt number: 1",
        ),
        step(84.0, 28),
        step(90.0, 29),
    ];
    let judgement = judge_replace(&timeline);
    assert!(judgement.settled && judgement.passed, "{judgement:?}");
    let ends = ends(&judgement);
    assert_eq!(ends[1].0, Phase::Drain);
    assert_eq!(ends[1].1, 12.0);
    assert_eq!(
        ends[4],
        (Phase::Resume, 84.0, TimeSource::Observed, PhaseVerdict::Met)
    );
    assert_eq!(judgement.lost_steps, Some(0));
    // Without the job's word or a change of its nodes, a step alone is no
    // resume: the job was never interrupted.
    let quiet = vec![job(1.0, "RUNNING", &all, 0), step(84.0, 28)];
    let judgement = judge_replace(&quiet);
    assert!(judgement.phases[4].ended.is_none(), "{judgement:?}");
}

/// Field case 16: a requeued job's output truncated and rewritten. The
/// reader says the file was rewritten (a restart, the job's own word); the
/// steps from 1001 are the new attempt: 200 steps lost (1200 back to the
/// checkpoint 1000); resume ends at step 1201, the first past the fault.
#[test]
fn field_case_16_a_rewritten_output_is_a_restart() {
    let mut timeline = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
        job(80.0, "RUNNING", &[NODE], 1),
        restarted(82.0, None, "output rewritten"),
    ];
    for (i, s) in (1001..=1202).enumerate() {
        timeline.push(step(83.0 + i as f64 * 0.01, s));
    }
    let judgement = judge_replace_from(1200, &timeline);
    assert_eq!(judgement.lost_steps, Some(200));
    let resume = phase_in(&judgement, Phase::Resume);
    assert!(
        resume
            .ended
            .as_ref()
            .unwrap()
            .evidence
            .contains("step 1201"),
        "{resume:?}"
    );
}

/// Ranks printing out of order are no restart: a lower step without the
/// job's word (or Slurm's) loses nothing, and the checkpoint a resume
/// names is the floor below which a step is a restart again.
#[test]
fn out_of_order_steps_are_not_restarts() {
    let timeline = vec![step(1.0, 28), step(1.1, 26), step(1.2, 29)];
    let judgement = judge_replace(&timeline);
    assert_eq!(judgement.lost_steps, None);
    // Resumed from checkpoint 20, then a step below it: a second restart.
    let timeline = vec![
        step(1.0, 30),
        restarted(2.0, Some(20), "resumed from checkpoint at step 20"),
        step(2.1, 21),
        step(2.2, 25),
        step(2.3, 24),
        step(3.0, 11),
    ];
    let judgement = judge_replace(&timeline);
    // 30 back to 20 (10), then 25 back to 10 (15).
    assert_eq!(judgement.lost_steps, Some(25));
    // An approximate step (`1.2e+4`) never restarts anything.
    let mut approximate = step(1.5, 12);
    approximate.observation = Observation::Progress {
        step: 12,
        exact: false,
    };
    let judgement = judge_replace(&[step(1.0, 28), approximate, step(2.0, 29)]);
    assert_eq!(judgement.lost_steps, None);
}

/// A job that ended for good while its resume is awaited ends the wait:
/// the open phases are not reached now, with why, not at their deadlines.
/// A job requeued (PENDING) is still awaited.
#[test]
fn a_job_that_ended_for_good_is_not_waited_on() {
    let failed = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "FAILED", &[], 0),
    ];
    // The node's repair is still watched: not settled yet.
    let judgement = judge_replace(&failed);
    assert!(!judgement.settled && !judgement.passed, "{judgement:?}");
    let mut repaired = failed.clone();
    repaired.extend([
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
    ]);
    let judgement = judge_replace(&repaired);
    assert!(judgement.settled && !judgement.passed, "{judgement:?}");
    let verdicts: Vec<_> = judgement.phases.iter().map(|p| p.verdict).collect();
    assert_eq!(
        verdicts,
        [
            Some(PhaseVerdict::Met),
            Some(PhaseVerdict::Met),
            Some(PhaseVerdict::Met),
            Some(PhaseVerdict::Met),
            Some(PhaseVerdict::NotReached)
        ]
    );
    // Cancelled by hand: said so, not blamed on auto-resume.
    let cancelled = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "CANCELLED", &[], 0),
    ];
    let judgement = judge_replace(&cancelled);
    assert!(
        judgement.reason.contains("the job was cancelled"),
        "{}",
        judgement.reason
    );
    assert!(
        !judgement.reason.contains("ResumeAction"),
        "{}",
        judgement.reason
    );
    let judgement = judge_replace(&failed);
    assert!(
        judgement
            .reason
            .contains("the job ended FAILED, not requeued"),
        "{}",
        judgement.reason
    );
    let resume = phase_in(&judgement, Phase::Resume);
    assert_eq!(resume.verdict, Some(PhaseVerdict::NotReached));
    let requeued = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
    ];
    let judgement = judge_replace(&requeued);
    assert!(!judgement.settled, "{judgement:?}");
}

fn registered(seen: f64, at: f64) -> Event {
    Event {
        seen: t(seen),
        source_time: Some(t(at)),
        source: Source::SlurmctldLog,
        observation: Observation::ControllerLog {
            node: NODE.into(),
            message: "node ip-10-1-0-12 returned to service".into(),
            news: hpchaos::cluster::controller_log::NodeNews::of(
                "node ip-10-1-0-12 returned to service",
            ),
        },
    }
}

/// slurmctld logs `returned to service` on a registration even when the
/// node stays DOWN, DRAINED or FAIL (node_mgr.c `validate_node_specs`):
/// the line alone is no rejoin; once Slurm shows the node usable, the
/// rejoin is at the line's time; a node seen still out of service after
/// the line rejoins when Slurm shows it usable.
#[test]
fn returned_to_service_is_a_rejoin_only_once_usable() {
    let base = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        api(70.0, "Running", "i-0new", 66.0),
    ];
    let rejoin = |extra: Vec<Event>| {
        let mut timeline = base.clone();
        timeline.extend(extra);
        let judgement = judge_replace(&timeline);
        phase_in(&judgement, Phase::Rejoin).ended.clone()
    };
    // The line alone: not rejoined.
    assert_eq!(rejoin(vec![registered(72.0, 71.5)]), None);
    // Then usable: rejoined at the line's time, from the source.
    let end = rejoin(vec![
        registered(72.0, 71.5),
        slurm(75.0, None, "idle", "", ""),
    ])
    .unwrap();
    assert_eq!((end.at, end.time_source), (t(71.5), TimeSource::Source));
    assert!(
        end.evidence.contains("returned to service; then idle"),
        "{}",
        end.evidence
    );
    // Still drained after the line, usable later: rejoined when seen usable.
    let end = rejoin(vec![
        registered(72.0, 71.5),
        slurm(73.0, None, "drained", "", "Action:Replace"),
        slurm(80.0, None, "idle", "", ""),
    ])
    .unwrap();
    assert_eq!((end.at, end.time_source), (t(80.0), TimeSource::Observed));
}

/// A job requeued once and then ended for good is said so.
#[test]
fn a_job_that_ended_after_a_requeue_is_said_so() {
    let timeline = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        job(30.0, "FAILED", &[], 1),
    ];
    let judgement = judge_replace(&timeline);
    assert!(
        judgement
            .reason
            .contains("the job ended FAILED, not requeued again after 1 requeue(s)"),
        "{}",
        judgement.reason
    );
}

/// The last run's lines read after the requeue are no resume, even when a
/// later phase's end catches the resume up: the new attempt's own first
/// step past the fault is (found by a newcomer: a job restored from its
/// checkpoint, silent for 15 s, was called resumed at the old run's step
/// 42, nothing lost). The steps redone are then counted, and a
/// `max_lost_steps` that cannot be checked does not pass.
#[test]
fn the_last_runs_lines_read_late_are_no_resume() {
    let mut base = baseline(true);
    base.progress = Some(40);
    let mut timeline = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        // Read late, in the same poll: the old run's last steps.
        step(20.0, 41),
        step(20.0, 42),
        api(70.0, "Running", "i-0new", 66.0),
        job(72.0, "RUNNING", &[NODE], 1),
        restarted(
            72.0,
            Some(40),
            "Restored all states from the checkpoint at /ckpt/epoch=0-step=40.ckpt",
        ),
        slurm(75.0, None, "idle", "", ""),
    ];
    let mut e = expect(Recovery::Replace, REPLACE_DEADLINES);
    let judge_at =
        |timeline: &[Event], e: &Expectation| judge(t0(), &base, e, timeline, t(100.0), false);
    let judgement = judge_at(&timeline, &e);
    let resume = |j: &hpchaos::phases::Judgement| phase_in(j, Phase::Resume).ended.clone();
    assert_eq!(resume(&judgement), None, "{judgement:?}");
    // The new attempt prints: resumed at its first step, 2 steps redone.
    timeline.push(step(90.0, 41));
    timeline.push(step(91.0, 42));
    let judgement = judge_at(&timeline, &e);
    let end = resume(&judgement).unwrap();
    assert_eq!(end.at, t(90.0));
    assert!(
        end.evidence.contains("step 41") && end.evidence.contains("requeued (Restarts 1)"),
        "{}",
        end.evidence
    );
    assert_eq!(judgement.lost_steps, Some(2));
    // A limit on lost steps that the output cannot check fails, said.
    e.max_lost_steps = Some(30);
    let silent = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
        job(80.0, "RUNNING", &["ip-10-1-0-13"], 0),
        job(81.0, "RUNNING", &[NODE], 0),
        restarted(
            82.0,
            None,
            "[Auto Resume] Info: JobID: 1 StepID: 0 Retrying step. Attempt number: 1",
        ),
        step(83.0, 41),
    ];
    let judgement = judge_at(&silent, &e);
    assert_eq!(judgement.lost_steps, Some(0), "{judgement:?}");
    assert!(judgement.passed, "{}", judgement.reason);
}

/// HyperPod's last mark on a target must be the one the scenario expects
/// (`expect.reason`, else its recovery's): a reboot that escalated to a
/// replace is a replace; a stale mark on a usable node is no mark.
#[test]
fn the_last_mark_hyperpod_set_must_be_the_one_expected() {
    use hpchaos::phases::wrong_mark;
    let base = baseline(false);
    let escalated = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Reboot"),
        slurm(60.0, Some(59.0), "fail", "", "Action:Replace"),
    ];
    assert_eq!(wrong_mark(&base, "Action:Replace", &escalated), None);
    let said = wrong_mark(&base, "Action:Reboot", &escalated).unwrap();
    assert_eq!(
        said,
        "HyperPod marked ip-10-1-0-12 `Action:Replace`, not the `Action:Reboot` the scenario expects (expect.reason)"
    );
    let reboot = vec![slurm(9.0, Some(8.0), "fail", "", "Action:Reboot")];
    assert!(wrong_mark(&base, "Action:Replace", &reboot).is_some());
    assert_eq!(wrong_mark(&base, "Action:Reboot", &reboot), None);
    // Slurm 24.11 keeps the reason on a node back in service: stale.
    let stale = vec![slurm(9.0, Some(8.0), "idle", "", "Action:Reboot")];
    assert_eq!(wrong_mark(&base, "Action:Replace", &stale), None);
    // Our own drain is no HyperPod mark.
    let ours = vec![slurm(9.0, None, "drained", "", "hpchaos: drill run-1")];
    assert_eq!(wrong_mark(&base, "Action:Replace", &ours), None);
}

/// Past step 100,000 NeMo prints every step to three digits (`1.23e+5`):
/// no exact step follows a restart, yet the checkpoint the job says it
/// restored from tells what was redone.
#[test]
fn a_restart_followed_only_by_rounded_steps_is_settled_by_its_checkpoint() {
    let about = |seen: f64, step: u64| Event {
        seen: t(seen),
        source_time: None,
        source: Source::JobOutput,
        observation: Observation::Progress { step, exact: false },
    };
    let timeline = vec![
        slurm(9.0, Some(8.0), "fail", "", "Action:Replace"),
        job(20.0, "PENDING", &[], 1),
        api(70.0, "Running", "i-0new", 66.0),
        slurm(75.0, None, "idle", "", ""),
        job(80.0, "RUNNING", &[NODE], 1),
        restarted(
            82.0,
            Some(122_000),
            "Restored all states from the checkpoint at /fsx/ckpt/epoch=0-step=122000.ckpt",
        ),
        about(83.0, 122_000),
        about(90.0, 123_000),
        about(95.0, 124_000),
    ];
    let judgement = judge_replace_from(123_456, &timeline);
    assert_eq!(judgement.lost_steps, Some(1456), "{judgement:?}");
}
