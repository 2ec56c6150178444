//! How `hpchaos status` shows a cluster to people: Slurm and SageMaker
//! side by side, disagreements flagged. Pure functions of what was read.
//! (A run's progress lines are the journal's: `journal::progress_line`.)

use std::collections::BTreeSet;

use crate::cluster::sagemaker::ApiNode;
use crate::cluster::slurm::NodeRow;

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
            if slurm_down && node.running() {
                notes.push(format!("Slurm says {} but the API says Running", row.state));
            }
            // A deep health check: the API's status, and Slurm's
            // maintenance reservation (`maint`, `$`): agreeing.
            let checked = node.status == "DeepHealthCheckInProgress"
                && (row.state.flags.maintenance || row.state.raw.starts_with("maint"));
            if !slurm_down && !node.running() && !checked {
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

/// What a group is doing of its own, in words (none: empty).
fn group_changes(group: &crate::cluster::sagemaker::GroupSummary) -> Vec<String> {
    let mut said = Vec::new();
    if let Some(next) = group.next_patch {
        said.push(format!(
            "AMI patch due {} ({})",
            next.format("%Y-%m-%dT%H:%M:%SZ"),
            group
                .patch_strategy
                .as_deref()
                .unwrap_or("strategy unknown")
        ));
    }
    if let Some(update) = &group.software_update {
        said.push(format!("software update {update}"));
    }
    for (operation, count) in group.operations.iter().filter(|(_, n)| *n > 0) {
        said.push(format!("{operation} ({count})"));
    }
    said
}

/// Each instance group's Slurm role (`SlurmConfig.NodeType`), its nodes
/// and what it is doing of its own, for `hpchaos status`; controller and
/// login nodes are never targets.
pub fn render_groups(
    summary: &crate::cluster::sagemaker::ClusterSummary,
    nodes: &[ApiNode],
) -> String {
    let mut out = String::new();
    for group in &summary.groups {
        let members: Vec<&str> = nodes
            .iter()
            .filter(|n| n.group == group.name)
            .map(|n| n.node.as_str())
            .collect();
        let shown: Vec<&str> = members.iter().take(4).copied().collect();
        let more = members.len().saturating_sub(shown.len());
        let changes = group_changes(group);
        out.push_str(&format!(
            "group {}: {}{}, {} node(s){}{}{}\n",
            group.name,
            group
                .node_type
                .as_deref()
                .unwrap_or("role unknown (no SlurmConfig)"),
            if group.is_protected() {
                " (never a target)"
            } else {
                ""
            },
            members.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(": {}", shown.join(", "))
            },
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            if changes.is_empty() {
                String::new()
            } else {
                format!("; under change: {}", changes.join(", "))
            },
        ));
    }
    out
}

/// The instance groups for `status --format json`: `[{name, node_type,
/// partitions, nodes: [..], changes: [..]}]`.
pub fn groups_json(
    summary: &crate::cluster::sagemaker::ClusterSummary,
    nodes: &[ApiNode],
) -> serde_json::Value {
    serde_json::Value::Array(
        summary
            .groups
            .iter()
            .map(|group| {
                serde_json::json!({
                    "name": group.name,
                    "node_type": group.node_type,
                    "partitions": group.partitions,
                    "protected": group.is_protected(),
                    "nodes": nodes.iter().filter(|n| n.group == group.name).map(|n| n.node.clone()).collect::<Vec<_>>(),
                    "changes": group_changes(group),
                })
            })
            .collect(),
    )
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
