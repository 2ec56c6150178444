//! Where everything of a lab lives, and what its nodes are called. Pure:
//! names, addresses and paths are derived from the lab folder and the node
//! count, so every part of the lab (and `lab down`) agrees on them.

use std::path::{Path, PathBuf};

/// The lab's private network: 10.1.0.0/24, the bridge at .1, the login
/// node at .9, the head node at .10 and compute nodes from .11 on.
pub const SUBNET_PREFIX: &str = "10.1.0";
pub const BRIDGE: &str = "hpchaos0";
pub const BRIDGE_ADDRESS: &str = "10.1.0.1";
pub const LOGIN_OCTET: u8 = 9;
/// The backup head node of a multi-head lab (`lab up --multi-head`):
/// `ip-10-1-0-8`, in the controller group, running the backup slurmctld.
pub const BACKUP_HEAD_OCTET: u8 = 8;
pub const HEAD_OCTET: u8 = 10;
pub const FIRST_COMPUTE_OCTET: u8 = 11;
/// Compute nodes a lab may run (addresses .11 to .250): the lab keeps to
/// its one /24 (the machine's other addresses are not its own).
pub const MAX_NODES: u8 = 240;
/// Slurm nodes a lab's cluster may have in all, those it runs and those
/// only declared (see [`declared_nodes`]).
pub const MAX_CLUSTER_SIZE: u16 = 8192;

/// What a node is for, as HyperPod's instance groups say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The controller group: slurmctld.
    Head,
    /// The login group: Slurm's client and config, no slurmd (not a Slurm
    /// node: `sinfo` never lists it, the API does).
    Login,
    /// A worker group: slurmd.
    Compute,
}

impl Role {
    /// The argument `hpchaos-node-init` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Login => "login",
            Role::Compute => "compute",
        }
    }
}

/// One node of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The Slurm node name, HyperPod style: `ip-10-1-0-11`.
    pub name: String,
    pub address: String,
    pub octet: u8,
    pub head: bool,
    pub role: Role,
}

impl NodeSpec {
    fn new(octet: u8, role: Role) -> NodeSpec {
        NodeSpec {
            name: format!("ip-{}-{octet}", SUBNET_PREFIX.replace('.', "-")),
            address: format!("{SUBNET_PREFIX}.{octet}"),
            octet,
            head: role == Role::Head,
            role,
        }
    }

    /// A Slurm compute node (runs slurmd).
    pub fn compute(&self) -> bool {
        self.role == Role::Compute
    }

    /// The network namespace (`ip netns`) name.
    pub fn netns(&self) -> String {
        format!("hpchaos-{}", self.name)
    }

    /// The host end of the node's veth pair (at most 15 characters).
    pub fn veth(&self) -> String {
        format!("hpcv{}", self.octet)
    }
}

/// The head node, the login node and `count` compute nodes, in that order.
pub fn nodes(count: u8) -> Vec<NodeSpec> {
    nodes_of(count, false)
}

/// As [`nodes`], with the backup head node after the login node when
/// `multi_head`: a head by role (the controller group's, running
/// slurmctld), not *the* head (`head` is false: the harness's profile and
/// the lab's own Slurm commands use the primary).
pub fn nodes_of(count: u8, multi_head: bool) -> Vec<NodeSpec> {
    let backup = multi_head.then(|| {
        let mut node = NodeSpec::new(BACKUP_HEAD_OCTET, Role::Head);
        node.head = false;
        node
    });
    [
        NodeSpec::new(HEAD_OCTET, Role::Head),
        NodeSpec::new(LOGIN_OCTET, Role::Login),
    ]
    .into_iter()
    .chain(backup)
    .chain((0..count).map(|i| NodeSpec::new(FIRST_COMPUTE_OCTET + i, Role::Compute)))
    .collect()
}

/// A node of the cluster's size that the lab declares but does not run,
/// for benchmarks at cluster scale: slurm.conf lists it (so slurmctld and
/// `sinfo` carry it, as down and not responding) and the control plane
/// lists an instance for it. Its address is never configured anywhere:
/// slurmctld's pings fail inside the head's namespace (no route), so no
/// packet leaves the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredNode {
    /// `ip-10-1-16-0`, HyperPod style.
    pub name: String,
    pub address: String,
}

/// The first /24 of declared nodes: 10.1.16.0 (16 to 47 for 8192).
pub const FIRST_DECLARED_SUBNET: u16 = 16;

/// `count` declared nodes: 10.1.16.0, 10.1.16.1, ... 10.1.16.255,
/// 10.1.17.0, ... (at most [`MAX_CLUSTER_SIZE`]).
pub fn declared_nodes(count: u16) -> Vec<DeclaredNode> {
    (0..count.min(MAX_CLUSTER_SIZE))
        .map(|i| {
            let (third, fourth) = (FIRST_DECLARED_SUBNET + i / 256, i % 256);
            DeclaredNode {
                name: format!("ip-10-1-{third}-{fourth}"),
                address: format!("10.1.{third}.{fourth}"),
            }
        })
        .collect()
}

/// Paths inside the lab folder.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("lab.json")
    }
    pub fn profile(&self) -> PathBuf {
        self.dir.join("profile.yaml")
    }
    pub fn daemon_pid(&self) -> PathBuf {
        self.dir.join("daemon.pid")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }
    pub fn ground_truth(&self) -> PathBuf {
        self.dir.join("ground-truth.jsonl")
    }
    /// The API's rate limit while the lab runs (`hpchaos lab throttle`).
    pub fn api_throttle(&self) -> PathBuf {
        self.dir.join("api-throttle")
    }
    /// The API operations the caller may not call (`hpchaos lab deny`):
    /// one operation name a line.
    pub fn api_denied(&self) -> PathBuf {
        self.dir.join("api-denied")
    }
    /// The lab's CloudWatch Logs: HMA's records (`logs.rs`).
    pub fn cloudwatch_logs(&self) -> PathBuf {
        self.dir.join("cloudwatch-logs.jsonl")
    }
    /// The lab's CloudWatch alarms (`lab alarm` sets them; the control
    /// plane's `DescribeAlarms` reads them).
    pub fn cloudwatch_alarms(&self) -> PathBuf {
        self.dir.join("cloudwatch-alarms.json")
    }
    /// The keys the API accepts (`auth.rs`): the lab's own record.
    pub fn api_keys(&self) -> PathBuf {
        self.dir.join("api-keys")
    }
    /// The cluster's own changes (`lab change`, `changes.rs`).
    pub fn changes(&self) -> PathBuf {
        self.dir.join("cluster-changes.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// Shared by every node: slurm.conf, cgroup.conf, hosts.
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
    pub fn munge_key(&self) -> PathBuf {
        self.dir.join("munge.key")
    }
    /// The node tools (`dcgmi`, `nvidia-smi`, ...), seen on nodes as /usr/local/sbin.
    pub fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }
    /// The harness's key pair, known_hosts and the nodes' authorized_keys.
    pub fn ssh(&self) -> PathBuf {
        self.dir.join("ssh")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.ssh().join("known_hosts")
    }
    pub fn client_key(&self) -> PathBuf {
        self.ssh().join("id_ed25519")
    }
    pub fn node(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }
    /// The node's own file system state (wiped by a replace): its /run,
    /// /var/log, /var/spool and /tmp.
    pub fn node_root(&self, name: &str) -> PathBuf {
        self.node(name).join("root")
    }
    /// The node's SSH host key (a replace makes a new one).
    pub fn host_key(&self, name: &str) -> PathBuf {
        self.node(name).join("ssh_host_ed25519_key")
    }
    pub fn node_console(&self, name: &str) -> PathBuf {
        self.node(name).join("console.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_like_hyperpod() {
        let nodes = nodes(4);
        assert_eq!(nodes.len(), 6);
        assert_eq!(nodes[0].name, "ip-10-1-0-10");
        assert!(nodes[0].head);
        assert_eq!(
            (nodes[1].name.as_str(), nodes[1].role),
            ("ip-10-1-0-9", Role::Login)
        );
        assert_eq!(nodes[5].name, "ip-10-1-0-14");
        assert_eq!(nodes[5].address, "10.1.0.14");
        assert_eq!(nodes[5].netns(), "hpchaos-ip-10-1-0-14");
        assert_eq!(nodes.iter().filter(|n| n.compute()).count(), 4);
        assert!(nodes.iter().all(|n| n.veth().len() <= 15));
        let most = super::nodes(MAX_NODES);
        assert_eq!(most.last().unwrap().address, "10.1.0.250");
    }

    #[test]
    fn declared_nodes_fill_whole_subnets_beyond_the_labs_own() {
        let declared = declared_nodes(4096 - 48);
        assert_eq!(declared.len(), 4048);
        assert_eq!(declared[0].name, "ip-10-1-16-0");
        assert_eq!(declared[256].address, "10.1.17.0");
        assert_eq!(declared[4047].name, "ip-10-1-31-207");
        assert_eq!(
            declared_nodes(u16::MAX).len(),
            usize::from(MAX_CLUSTER_SIZE)
        );
    }
}
