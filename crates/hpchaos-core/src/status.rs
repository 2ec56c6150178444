//! How the harness shows a cluster and a run to people: `hpchaos status`
//! (Slurm and SageMaker side by side, disagreements flagged) and the live
//! progress lines of `hpchaos run`. Pure functions of what was read.

use std::collections::BTreeSet;

use crate::cluster::sagemaker::ApiNode;
use crate::cluster::slurm::NodeRow;
use crate::journal::{Entry, Record};

/// Where Slurm and the API disagree about one node, in words.
fn disagreements(row: Option<&NodeRow>, node: Option<&ApiNode>, api_read: bool) -> Vec<String> {
    let mut notes = Vec::new();
    match (row, node, api_read) {
        (None, Some(_), _) => notes.push("in the API, not in Slurm".to_owned()),
        (Some(_), None, true) => notes.push("in Slurm, not in the API".to_owned()),
        (Some(row), Some(node), _) => {
            let slurm_down = row.state.is_out_of_service()
                || row.state.not_responding()
                || row.state.is_rebooting();
            if slurm_down && node.status == "Running" {
                notes.push(format!("Slurm says {} but the API says Running", row.state));
            }
            if !slurm_down && node.status != "Running" {
                notes.push(format!(
                    "the API says {} but Slurm says {}",
                    node.status, row.state
                ));
            }
        }
        _ => {}
    }
    notes
}

/// Slurm's nodes and the API's instances, less `outside` (the profile's
/// head and login nodes: instances, never Slurm nodes).
fn node_names<'a>(
    outside: &[&str],
    rows: &'a [NodeRow],
    api: Option<&'a [ApiNode]>,
) -> BTreeSet<&'a str> {
    let mut names: BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    if let Some(api) = api {
        names.extend(
            api.iter()
                .map(|n| n.node.as_str())
                .filter(|n| !outside.contains(n)),
        );
    }
    names
}

/// The table of `hpchaos status`, with a note per disagreement; `outside`
/// are the head and login nodes, which are not Slurm nodes.
pub fn render(outside: &[&str], rows: &[NodeRow], api: Option<&[ApiNode]>) -> String {
    let mut out = format!(
        "{:<16} {:<14} {:<20} {:<21} {:<10} {}\n",
        "node", "slurm", "reason", "instance", "api", "notes"
    );
    let mut count = 0;
    for name in node_names(outside, rows, api) {
        let row = rows.iter().find(|r| r.name == name);
        let node = api.and_then(|a| a.iter().find(|n| n.node == name));
        let notes = disagreements(row, node, api.is_some());
        count += usize::from(!notes.is_empty());
        out.push_str(&format!(
            "{:<16} {:<14} {:<20} {:<21} {:<10} {}\n",
            name,
            row.map_or("-".to_owned(), |r| r.state.to_string()),
            row.map_or(String::new(), |r| match r.stale_reason() {
                Some(reason) => format!("({reason})"),
                None => r.reason.clone(),
            }),
            node.map_or("-", |n| n.instance_id.as_str()),
            node.map_or("-", |n| n.status.as_str()),
            notes.join("; ")
        ));
    }
    out.push_str(&match (api.is_some(), count) {
        (false, _) => "no SageMaker settings in the profile: Slurm's view only\n".to_owned(),
        (true, 0) => "Slurm and SageMaker agree\n".to_owned(),
        (true, n) => format!("{n} node(s) where Slurm and SageMaker disagree\n"),
    });
    if rows.iter().any(|r| r.stale_reason().is_some()) {
        out.push_str("(reason): left on a usable node by Slurm, not a mark\n");
    }
    out
}

/// `hpchaos status --format json`: every node with its decoded Slurm
/// state and its API view, the disagreements, and the instances the API
/// lists that map to no node name. Shape (`schema_version` 1):
/// `{schema_version, cluster, head_node, login_nodes, api_read, nodes: [{name, slurm:
/// {state, condition, reason, reason_time, reason_stale} | null, api: {instance_id,
/// instance_group, status, message, launch_time} | null, notes: [..]}],
/// unmapped_instances: [{instance_id, instance_group, status, why}]}`.
pub fn render_json(
    cluster: &str,
    head: &str,
    login: &[String],
    rows: &[NodeRow],
    api: Option<&[ApiNode]>,
    unmapped: &[crate::cluster::sagemaker::Unmapped],
) -> serde_json::Value {
    use serde_json::json;
    let mut outside: Vec<&str> = login.iter().map(String::as_str).collect();
    outside.push(head);
    let nodes: Vec<serde_json::Value> = node_names(&outside, rows, api)
        .into_iter()
        .map(|name| {
            let row = rows.iter().find(|r| r.name == name);
            let node = api.and_then(|a| a.iter().find(|n| n.node == name));
            json!({
                "name": name,
                "slurm": row.map(|r| json!({
                    "state": r.state.raw,
                    "condition": r.state.condition().as_str(),
                    "reason": r.reason,
                    "reason_time": r.reason_time,
                    // Left on a usable node (Slurm 24.11 keeps it after a
                    // resume until a job lands): not a mark.
                    "reason_stale": r.stale_reason().is_some(),
                })),
                "api": node.map(|n| json!({
                    "instance_id": n.instance_id,
                    "instance_group": n.group,
                    "status": n.status,
                    "message": n.status_message,
                    "launch_time": n.launch_time,
                })),
                "notes": disagreements(row, node, api.is_some()),
            })
        })
        .collect();
    json!({
        "schema_version": 1,
        "cluster": cluster,
        "head_node": head,
        "login_nodes": login,
        "api_read": api.is_some(),
        "nodes": nodes,
        "unmapped_instances": unmapped.iter().map(|u| json!({
            "instance_id": u.instance_id,
            "instance_group": u.group,
            "status": u.status,
            "why": u.why,
        })).collect::<Vec<_>>(),
    })
}

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
        Entry::PhaseStarted { .. }
        | Entry::PhaseEnded { .. }
        | Entry::NodePhaseEnded { .. }
        | Entry::RegressionChecked { .. }
        | Entry::RegressionUnchecked { .. } => phase_text(entry),
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
fn run_text(entry: &Entry) -> String {
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
        Entry::Observed {
            source, node, to, ..
        } => format!(
            "{} {}: {to}",
            source.as_str(),
            node.as_deref().unwrap_or("")
        ),
        Entry::Rollback { step, ok, .. } => {
            format!("rollback {}: {step}", if *ok { "done" } else { "FAILED" })
        }
        Entry::HostKeyAccepted {
            node,
            instance_id,
            fingerprint,
        } => format!("accepted the new host key of {node} on {instance_id}: {fingerprint}"),
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
            format!("{verdict:?}").to_lowercase()
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
        } => {
            format!(
                "monitoring {name}: {} ({detail})",
                crate::report::Verdict::from(*verdict).as_str()
            )
        }
        Entry::ResultsPushed { to, error, series } => match error {
            None => format!("results pushed to {to}: {series} series"),
            Some(e) => format!("results not pushed to {to}: {e}"),
        },
        Entry::FailureCost { cost } => crate::report::cost_text(cost),
        Entry::EvidenceCollected { node, files, .. } => {
            format!("evidence collected from {node}: {} file(s)", files.len())
        }
        Entry::WatchCost { .. } => crate::report::watch_cost_text(entry),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str, reason: &str) -> NodeRow {
        NodeRow {
            name: name.into(),
            state: crate::cluster::node_state::NodeState::parse(state),
            reason: reason.into(),
            reason_time: None,
        }
    }
    fn api(node: &str, status: &str) -> ApiNode {
        ApiNode {
            node: node.into(),
            instance_id: format!("i-{node}"),
            group: "workers".into(),
            status: status.into(),
            launch_time: None,
            status_message: None,
        }
    }

    #[test]
    fn flags_each_kind_of_disagreement() {
        let rows = [
            row("a", "idle", ""),
            row("b", "fail", "Action:Replace"),
            row("c", "idle", ""),
        ];
        let nodes = [
            api("head", "Running"),
            api("a", "Running"),
            api("b", "Running"),
            api("d", "Running"),
            api("c", "Pending"),
        ];
        let text = render(&["head"], &rows, Some(&nodes));
        assert!(
            text.contains("Slurm says fail but the API says Running"),
            "{text}"
        );
        assert!(text.contains("in the API, not in Slurm"), "{text}");
        assert!(
            text.contains("the API says Pending but Slurm says idle"),
            "{text}"
        );
        assert!(
            text.ends_with("3 node(s) where Slurm and SageMaker disagree\n"),
            "{text}"
        );
    }

    #[test]
    fn agreement_is_said() {
        // The login node is an instance, not a Slurm node: no disagreement.
        let text = render(
            &["head", "login"],
            &[row("a", "idle", "")],
            Some(&[api("a", "Running"), api("login", "Running")]),
        );
        assert!(text.ends_with("Slurm and SageMaker agree\n"), "{text}");
        assert!(!text.contains("login"), "{text}");
    }
}
