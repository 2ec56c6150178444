//! What the lab's HyperPod control plane knows about its instances: ids,
//! groups, launch times and statuses. Shared by the API and the recovery
//! engine; saved to `state.json` after each change for `lab status`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::{NodeSpec, Role};

pub const CONTROLLER_GROUP: &str = "controller";
pub const WORKER_GROUP: &str = "workers";
/// HyperPod's optional login group: instances users log in to, not Slurm
/// nodes.
pub const LOGIN_GROUP: &str = "login";
/// The instances of nodes the lab declares but does not run
/// (`lab up --cluster-size`): listed, always `Running`, never acted on.
pub const FLEET_GROUP: &str = "fleet";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub node: String,
    pub address: String,
    pub instance_id: String,
    pub group: String,
    pub instance_type: String,
    pub launch_time: DateTime<Utc>,
    /// `Running`, `Pending`, `ShuttingDown`, ...
    pub status: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub cluster_name: String,
    pub cluster_arn: String,
    pub region: String,
    pub created: DateTime<Utc>,
    /// `Automatic` or `None`.
    pub node_recovery: String,
    pub instances: Vec<Instance>,
    /// Answer as the API did before 2025-11-20 (and as moto does): no
    /// `PrivateDnsHostname` in ListClusterNodes or DescribeClusterNode.
    pub omit_hostnames: bool,
    /// The login group's name (any, on HyperPod: `lab up --login-group`).
    #[serde(default = "login_group")]
    pub login_group: String,
    /// What HyperPod did to the cluster's instances, as
    /// `ListClusterEvents` gives it (the lab's cluster provisions
    /// continuously, `NodeProvisioningMode: Continuous`).
    #[serde(default)]
    pub events: Vec<ClusterEvent>,
}

/// One cluster event (botocore's `ClusterEventSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// A UUID, as the model's `EventId` pattern asks.
    pub id: String,
    pub time: DateTime<Utc>,
    pub group: String,
    pub instance_id: String,
    pub description: String,
    /// `Info`, `Warn` or `Error`.
    pub level: String,
}

/// Events kept: the oldest go first past this many.
const EVENTS_KEPT: usize = 10_000;

impl ClusterState {
    /// Records that HyperPod did `description` to the instance `node` is
    /// on now (nothing when the node has none).
    pub fn record_event(&mut self, node: &str, level: &str, description: String) {
        let Some(instance) = self.instances.iter().find(|i| i.node == node) else {
            return;
        };
        let id = format!("{:032x}", u128::from(mix(7)) << 64 | u128::from(mix(11)));
        let event = ClusterEvent {
            id: format!(
                "{}-{}-{}-{}-{}",
                &id[0..8],
                &id[8..12],
                &id[12..16],
                &id[16..20],
                &id[20..32]
            ),
            time: Utc::now(),
            group: instance.group.clone(),
            instance_id: instance.instance_id.clone(),
            description,
            level: level.to_owned(),
        };
        self.events.push(event);
        if self.events.len() > EVENTS_KEPT {
            self.events.remove(0);
        }
    }
}

fn login_group() -> String {
    LOGIN_GROUP.to_owned()
}

impl ClusterState {
    pub fn new(
        cluster_name: &str,
        region: &str,
        node_recovery: &str,
        nodes: &[NodeSpec],
    ) -> ClusterState {
        let now = Utc::now();
        ClusterState {
            cluster_name: cluster_name.to_owned(),
            cluster_arn: format!(
                "arn:aws:sagemaker:{region}:123456789012:cluster/{}",
                short_id()
            ),
            region: region.to_owned(),
            created: now,
            node_recovery: node_recovery.to_owned(),
            omit_hostnames: false,
            login_group: LOGIN_GROUP.to_owned(),
            events: Vec::new(),
            instances: nodes
                .iter()
                .map(|node| Instance {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    instance_id: new_instance_id(),
                    group: match node.role {
                        Role::Head => CONTROLLER_GROUP,
                        Role::Login => LOGIN_GROUP,
                        Role::Compute => WORKER_GROUP,
                    }
                    .to_owned(),
                    instance_type: match node.role {
                        Role::Compute => "ml.p5.48xlarge",
                        Role::Head | Role::Login => "ml.m5.xlarge",
                    }
                    .to_owned(),
                    launch_time: now,
                    status: "Pending".to_owned(),
                    message: String::new(),
                })
                .collect(),
        }
    }

    /// Adds a `Running` instance in the fleet group for each declared node.
    pub fn add_declared(&mut self, declared: &[super::layout::DeclaredNode]) {
        let now = Utc::now();
        self.instances.extend(declared.iter().map(|node| Instance {
            node: node.name.clone(),
            address: node.address.clone(),
            instance_id: new_instance_id(),
            group: FLEET_GROUP.to_owned(),
            instance_type: "ml.p5.48xlarge".to_owned(),
            launch_time: now,
            status: "Running".to_owned(),
            message: String::new(),
        }));
    }

    /// Names the login group `name`.
    pub fn rename_login_group(&mut self, name: &str) {
        for instance in &mut self.instances {
            if instance.group == self.login_group {
                instance.group = name.to_owned();
            }
        }
        self.login_group = name.to_owned();
    }

    /// A group's `SlurmConfig`: its Slurm role (`Controller`, `Login`,
    /// `Compute`) and its partition (botocore's `ClusterPartitionNames`
    /// holds at most one; the lab's slurm.conf).
    pub fn slurm_config(&self, group: &str) -> (&'static str, Option<&'static str>) {
        match group {
            CONTROLLER_GROUP => ("Controller", None),
            g if g == self.login_group => ("Login", None),
            FLEET_GROUP => ("Compute", Some("fleet")),
            _ => ("Compute", Some("dev")),
        }
    }

    /// The instance groups, in the order their first instance is listed.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for instance in &self.instances {
            if !groups.contains(&instance.group.as_str()) {
                groups.push(&instance.group);
            }
        }
        groups
    }

    pub fn instance(&self, node: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.node == node)
    }

    pub fn instance_mut(&mut self, node: &str) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.node == node)
    }

    pub fn by_id(&self, instance_id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.instance_id == instance_id)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(tmp, path)
    }

    pub fn load(path: &Path) -> Option<ClusterState> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// A fresh EC2-style id (`i-` and 17 hex digits), unique within the process.
pub fn new_instance_id() -> String {
    format!("i-0{:016x}", mix(SEQUENCE.fetch_add(1, Ordering::Relaxed)))
}

/// A secret access key for the lab (40 characters, as AWS's).
pub fn new_secret() -> String {
    format!("{:016x}{:016x}{:08x}", mix(1), mix(2), mix(3) & 0xffff_ffff)
}

fn short_id() -> String {
    format!("{:012x}", mix(0) & 0xffff_ffff_ffff)
}

/// Time and a counter, mixed (splitmix64) so ids look like AWS's.
fn mix(counter: u64) -> u64 {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mut z = nanos ^ counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_look_like_ec2_and_differ() {
        let a = new_instance_id();
        let b = new_instance_id();
        assert_eq!(a.len(), 19);
        assert!(a.starts_with("i-0"));
        assert_ne!(a, b);
    }
}
