//! A journal record in words: the one line each record is said as, live
//! on stderr during `hpchaos run` (and wherever a run's progress is
//! shown). Pure functions of the record.

use super::{Entry, Record};

/// One line of live progress for a journal record.
pub fn progress_line(record: &Record) -> String {
    let who = record.scenario.as_deref().unwrap_or("run");
    let entry = &record.entry;
    let what = match entry {
        Entry::RunStarted { .. }
        | Entry::ScenarioStarted { .. }
        | Entry::LockAcquired { .. }
        | Entry::Intent { .. }
        | Entry::RecoverStarted { .. }
        | Entry::RecoverEnded { .. }
        | Entry::Aborted { .. }
        | Entry::Error { .. }
        | Entry::LeaseLost { .. }
        | Entry::StopRequested { .. }
        | Entry::ScenarioEnded { .. }
        | Entry::RunEnded { .. } => run_text(entry),
        Entry::TargetsResolved { .. }
        | Entry::SteadyState { .. }
        | Entry::InjectionStarted { .. }
        | Entry::InjectionFinished { .. }
        | Entry::Observed { .. }
        | Entry::StepRan { .. }
        | Entry::Rollback { .. }
        | Entry::HostKeyAccepted { .. }
        | Entry::CanarySubmitted { .. } => injection_text(entry),
        Entry::StepPlanned { .. }
        | Entry::StepInjected { .. }
        | Entry::StepPhaseEnded { .. }
        | Entry::StepEnded { .. } => step_text(entry),
        Entry::PhaseStarted { .. }
        | Entry::PhaseEnded { .. }
        | Entry::NodePhaseEnded { .. }
        | Entry::RegressionChecked { .. }
        | Entry::RegressionUnchecked { .. } => phase_text(entry),
        Entry::Throughput {
            throughput,
            noticed,
            ..
        } => format!(
            "throughput: {}; noticed by {}",
            throughput.words(),
            if noticed.is_empty() {
                "nothing".to_owned()
            } else {
                noticed.join(", ")
            }
        ),
        Entry::MonitoringSeen { .. }
        | Entry::MonitoringUnread { .. }
        | Entry::MonitoringJudged { .. }
        | Entry::ResultsPushed { .. }
        | Entry::FailureCost { .. }
        | Entry::EvidenceCollected { .. }
        | Entry::WatchCost { .. } => measured_text(entry),
    };
    format!("[{}] {who}: {what}", record.at.format("%H:%M:%S%.3f"))
}

/// A run-level or lock record in words: the run's and scenario's start
/// and end, the cluster's lock, intents, recover, aborts, errors and a lost
/// lease.
/// A run-level record in words (also the report's note for a stop request).
pub fn run_text(entry: &Entry) -> String {
    match entry {
        Entry::RunStarted {
            run_id, cluster, ..
        } => format!("run {run_id} on {cluster}"),
        Entry::ScenarioStarted {
            fault, recovery, ..
        } => format!("start: {fault}, expect {recovery}"),
        Entry::LockAcquired { .. } => "took the cluster's lock".to_owned(),
        Entry::Intent { action, undo, .. } => format!(
            "about to: {action} (undo: {})",
            if undo.is_empty() {
                "none".to_owned()
            } else {
                undo.iter()
                    .map(crate::faults::Step::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
        Entry::RecoverStarted { by } => format!("recover started by {by}"),
        Entry::RecoverEnded { still_applied } => {
            if still_applied.is_empty() {
                "recover ended: nothing left applied".to_owned()
            } else {
                format!("recover ended; STILL APPLIED: {}", still_applied.join("; "))
            }
        }
        Entry::Aborted { reason } => format!("ABORT: {reason}"),
        Entry::Error { message } => format!("error: {message}"),
        Entry::LeaseLost { reason, rollback } => format!("LEASE LOST: {reason}; {rollback}"),
        Entry::StopRequested {
            reason,
            by,
            asked_at,
            hold,
        } => format!(
            "STOP asked by {by} at {} (hpchaos stop{}): {reason}; no further change, rolling back",
            asked_at.format("%H:%M:%S"),
            if *hold { " --hold" } else { "" }
        ),
        Entry::ScenarioEnded { outcome, reason } => format!("ended: {outcome:?} {reason}"),
        Entry::RunEnded { outcome } => format!("run ended: {outcome:?}"),
        _ => String::new(),
    }
}

/// A record from around the fault's injection in words: the targets,
/// steady state, the injection and its steps, what a source observed, the
/// rollback, an accepted host key and the canary.
fn injection_text(entry: &Entry) -> String {
    match entry {
        Entry::TargetsResolved { nodes } => format!("targets: {}", nodes.join(", ")),
        Entry::SteadyState {
            stage,
            check,
            passed,
            detail,
        } => format!(
            "steady state {}: {check} {} ({detail})",
            format!("{stage:?}").to_lowercase(),
            if *passed { "holds" } else { "FAILS" }
        ),
        Entry::InjectionStarted { action, .. } => format!("inject: {action}"),
        Entry::InjectionFinished { ok, detail } => {
            format!("injection {} {detail}", if *ok { "took" } else { "FAILED" })
        }
        // About a node: the node names it; else the field does
        // (`harness requeue_delay: 120 s ...`, `hma poll: ...`).
        Entry::Observed {
            source,
            node,
            field,
            to,
            ..
        } => format!(
            "{} {}: {to}",
            source.as_str(),
            node.as_deref().unwrap_or(field.as_str())
        ),
        Entry::Rollback { step, ok, .. } => {
            format!("rollback {}: {step}", if *ok { "done" } else { "FAILED" })
        }
        Entry::HostKeyAccepted {
            node,
            instance_id,
            fingerprint,
            replaces,
        } => host_key_text(node, instance_id, fingerprint, replaces.as_ref()),
        Entry::CanarySubmitted { job, .. } => format!("canary submitted: job {job}"),
        Entry::StepRan {
            step, took_ms, ok, ..
        } => format!(
            "step {} in {took_ms} ms: {step}",
            if *ok { "done" } else { "FAILED" }
        ),
        _ => String::new(),
    }
}

/// A phase record in words: its start, its end (over the scenario or on a
/// node) and the regression gate on it.
fn phase_text(entry: &Entry) -> String {
    match entry {
        Entry::PhaseStarted {
            phase, deadline, ..
        } => format!(
            "phase {phase} started{}",
            deadline
                .map(|d| format!(" (deadline {d} after injection)"))
                .unwrap_or_default()
        ),
        Entry::PhaseEnded {
            phase,
            verdict,
            evidence,
            ..
        } => format!(
            "phase {phase} ended: {} ({evidence})",
            verdict.as_str().to_lowercase()
        ),
        Entry::RegressionChecked {
            phase,
            seconds,
            baseline_seconds,
            passed,
            ..
        } => format!(
            "regression gate on {phase}: {seconds:.2} s after the injection against {baseline_seconds:.2} s: {}",
            if *passed { "holds" } else { "FAILS" }
        ),
        Entry::RegressionUnchecked { phase, why } => {
            format!("regression gate on {phase} not judged: {why}")
        }
        Entry::NodePhaseEnded {
            node,
            phase,
            verdict,
            ..
        } => format!(
            "phase {phase} ended on {node}: {}",
            format!("{verdict:?}").to_lowercase()
        ),
        _ => String::new(),
    }
}

/// A monitoring or measurement record in words: what the monitoring saw
/// or could not read and its verdict, the results pushed, the failure's
/// cost, the evidence collected and the watch's cost.
fn measured_text(entry: &Entry) -> String {
    match entry {
        Entry::MonitoringSeen {
            name,
            target,
            source,
            seen_at,
            ..
        } => format!(
            "monitoring {name}{} seen in {source} at {}",
            target
                .as_deref()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default(),
            seen_at.format("%H:%M:%S%.3f")
        ),
        Entry::MonitoringUnread { name, error } => format!("monitoring {name} unread: {error}"),
        Entry::MonitoringJudged {
            name,
            verdict,
            detail,
            ..
        } => monitoring_judged_text(name, *verdict, detail),
        Entry::ResultsPushed { to, error, series } => match error {
            None => format!("results pushed to {to}: {series} series"),
            Some(e) => format!("results not pushed to {to}: {e}"),
        },
        Entry::FailureCost { cost } => cost_text(cost),
        Entry::EvidenceCollected { node, files, .. } => {
            format!("evidence collected from {node}: {} file(s)", files.len())
        }
        Entry::WatchCost { .. } => watch_cost_text(entry),
        _ => String::new(),
    }
}

/// A watch's cost in words, for the timeline and `hpchaos status`.
pub fn watch_cost_text(entry: &Entry) -> String {
    let Entry::WatchCost {
        seconds,
        api_calls,
        cycles,
        slurm_polls,
        slurm_cycle_ms_p50,
        slurm_cycle_ms_max,
        slurm_poll_gap_ms_max,
        cpu_ms,
        peak_rss_kib,
    } = entry
    else {
        return String::new();
    };
    let gap = slurm_poll_gap_ms_max
        .map(|g| format!(", {g:.0} ms longest between polls"))
        .unwrap_or_default();
    let api = match api_calls {
        Some(calls) if *seconds > 0.0 => format!(
            "{calls} SageMaker request(s) ({:.1}/min), ",
            *calls as f64 * 60.0 / seconds
        ),
        Some(calls) => format!("{calls} SageMaker request(s), "),
        None => String::new(),
    };
    format!(
        "watch cost: {seconds:.1}s, {api}{cycles} cycles ({slurm_polls} Slurm polls, {slurm_cycle_ms_p50:.0} ms median, {slurm_cycle_ms_max:.0} ms longest{gap}), CPU {cpu_ms:.0} ms, peak RSS {:.1} MiB",
        *peak_rss_kib as f64 / 1024.0
    )
}

/// The cost of a failure in words, with the formula's terms.
pub fn cost_text(cost: &crate::cost::FailureCost) -> String {
    // The steps redone are inside the downtime (see cost.rs): said, not
    // added.
    let redone = match (cost.redone_steps, cost.step_seconds) {
        (None, _) => {
            "; steps redone unknown (the output never showed where the job went back to)".to_owned()
        }
        (Some(steps), Some(step)) => {
            format!(", {steps} steps redone inside it at {step:.2} s a step")
        }
        (Some(steps), None) => format!(", {steps} steps redone inside it"),
    };
    format!(
        "{:.2} GPU-hours lost: {} GPUs ({}) × ({:.0} s down{redone}); ETTR {:.1}% over {:.0} s",
        cost.gpu_hours_lost,
        cost.gpus,
        cost.gpus_from,
        cost.downtime_seconds,
        cost.ettr * 100.0,
        cost.window_seconds
    )
}

/// A monitoring expectation's verdict in words: `monitoring NAME: met
/// (DETAIL)`.
pub fn monitoring_judged_text(name: &str, verdict: super::PhaseVerdict, detail: &str) -> String {
    format!("monitoring {name}: {} ({detail})", verdict.as_str())
}

/// A host key accepted in words: `accepted the new host key of NODE on
/// INSTANCE: FP` (`, replacing FP pinned on INSTANCE` when a pin had it).
pub fn host_key_text(
    node: &str,
    instance_id: &str,
    fingerprint: &str,
    replaces: Option<&super::PinnedKey>,
) -> String {
    let was = replaces
        .map(|p| format!(", replacing {} pinned on {}", p.fingerprint, p.instance_id))
        .unwrap_or_default();
    format!("accepted the new host key of {node} on {instance_id}: {fingerprint}{was}")
}

/// A later step's record in words.
pub fn step_text(entry: &Entry) -> String {
    match entry {
        Entry::StepPlanned {
            step,
            nodes,
            action,
            trigger,
            ..
        } => format!(
            "step {step} planned on {}: {action}, {trigger}",
            nodes.join(", ")
        ),
        Entry::StepInjected {
            step,
            action,
            ok,
            detail,
            ..
        } => format!(
            "step {step} injected: {action}{}",
            if *ok {
                String::new()
            } else {
                format!(" FAILED: {detail}")
            }
        ),
        Entry::StepPhaseEnded {
            step,
            phase,
            verdict,
            ..
        } => format!("step {step}: phase {phase} ended: {verdict:?}"),
        Entry::StepEnded {
            step,
            passed,
            reason,
        } => match passed {
            true => format!("step {step} passed"),
            false => format!("step {step} FAILED: {reason}"),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Source;

    fn observed(node: Option<&str>) -> Record {
        Record {
            seq: 1,
            at: chrono::DateTime::parse_from_rfc3339("2026-12-03T05:00:00Z")
                .unwrap()
                .to_utc(),
            scenario: Some("xid48-replace".into()),
            entry: Entry::Observed {
                source: Source::Harness,
                node: node.map(str::to_owned),
                field: "requeue_delay".into(),
                from: None,
                to: "120 s (Slurm's default)".into(),
                source_time: None,
            },
        }
    }

    /// A record about no node is named by its field, never `harness : `.
    #[test]
    fn an_observation_is_named_by_its_node_else_its_field() {
        assert_eq!(
            progress_line(&observed(None)),
            "[05:00:00.000] xid48-replace: harness requeue_delay: 120 s (Slurm's default)"
        );
        assert_eq!(
            progress_line(&observed(Some("ip-10-1-0-12"))),
            "[05:00:00.000] xid48-replace: harness ip-10-1-0-12: 120 s (Slurm's default)"
        );
    }
}
