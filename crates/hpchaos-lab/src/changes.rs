//! What the lab's cluster is doing of its own accord, as `hpchaos lab
//! change` sets it: an AMI patch scheduled (`AutoPatchConfig`), a software
//! update in flight (`SoftwareUpdateStatus`), a scaling operation
//! (`ActiveOperations`), deep health checks on nodes
//! (`DeepHealthCheckInProgress`, the nodes in a Slurm maintenance
//! reservation meanwhile). Kept in a file beside the lab and read by the
//! API on each request, as the denials are (HYPERPOD.md, "Since 2025").

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::state::ClusterState;

/// The cluster's own changes under way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// The next AMI patch: its strategy (`WhenIdle`, `WhenAllIdle`,
    /// `DrainFirst`) and date.
    #[serde(default)]
    pub patch: Option<Patch>,
    /// A software update's status (`InProgress`, `Pending`, ...).
    #[serde(default)]
    pub software_update: Option<String>,
    /// Scaling operations in flight.
    #[serde(default)]
    pub scaling: Option<u32>,
    /// Nodes under a deep health check, until when.
    #[serde(default)]
    pub deep_health_checks: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    pub strategy: String,
    pub next_patch_date: DateTime<Utc>,
}

/// The Slurm maintenance reservation a deep health check puts `node` in.
pub fn check_reservation(node: &str) -> String {
    format!("sagemaker-deep-health-check-{node}")
}

/// Puts `node` in its deep health check's Slurm maintenance reservation
/// for `minutes` (at least 1: Slurm counts a reservation's `Duration` in
/// minutes), run on the head node (pid `head`). Errors: Slurm's refusal
/// (one already there among them).
pub fn hold_in_reservation(
    head: u32,
    node: &str,
    minutes: i64,
) -> Result<String, super::system::LabError> {
    let name = format!("ReservationName={}", check_reservation(node));
    let duration = format!("Duration={}", minutes.max(1));
    let nodes = format!("Nodes={node}");
    super::system::in_node(
        head,
        &[
            "scontrol",
            "create",
            "reservation",
            &name,
            "Flags=MAINT,IGNORE_JOBS",
            "StartTime=now",
            &duration,
            &nodes,
            "Users=root",
        ],
    )
}

/// The status a node under a deep health check has (botocore's
/// `ClusterInstanceStatus`).
pub const DEEP_HEALTH_CHECK: &str = "DeepHealthCheckInProgress";

impl Changes {
    /// The changes in `path`; none when it is absent or unreadable.
    pub fn load(path: &Path) -> Changes {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the changes to `path` (what `lab change`, the API's
    /// `StartClusterHealthCheck` and the daemon's end of a check share).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// `state` as the API shows it with these changes at `now`: the nodes
    /// under a deep health check in that status.
    pub fn applied(&self, state: &ClusterState, now: DateTime<Utc>) -> ClusterState {
        let mut shown = state.clone();
        for instance in &mut shown.instances {
            if self
                .deep_health_checks
                .get(&instance.node)
                .is_some_and(|until| now < *until)
            {
                instance.status = DEEP_HEALTH_CHECK.to_owned();
            }
        }
        shown
    }

    /// The members a compute group's `ClusterInstanceGroupDetails` gets
    /// from these changes.
    pub fn group_members(&self, group: &mut Value) {
        if let Some(patch) = &self.patch {
            group["AutoPatchConfig"] = json!({
                "PatchingStrategy": patch.strategy,
                "CurrentPatchSchedule": {
                    "NextPatchDate": patch.next_patch_date.timestamp_millis() as f64 / 1000.0
                },
            });
        }
        if let Some(status) = &self.software_update {
            group["SoftwareUpdateStatus"] = json!(status);
        }
        if let Some(count) = self.scaling.filter(|c| *c > 0) {
            group["ActiveOperations"] = json!({ "Scaling": count });
        }
    }
}
