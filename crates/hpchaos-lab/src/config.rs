//! The lab's settings (written to `lab.json` at `up`, read by the daemon)
//! and the files generated from them: slurm.conf, cgroup.conf, hosts,
//! each node's sshd_config, and the cluster profile the harness reads.
//! Pure functions of the settings, so they are tested without root.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::{self, Layout, NodeSpec};
use hpchaos::duration::Duration;
use hpchaos::profile::{Compute, Endpoint, Host, Monitoring, Poll, Profile, SageMaker, Slurm, Ssh};

/// The AWS profile name in the lab's credentials file.
pub const LAB_AWS_PROFILE: &str = "hpchaos-lab";

/// The lab's AWS credentials file with `secret`: the keys its API accepts
/// (checked as AWS checks them, `auth.rs`).
pub fn aws_credentials(secret: &str) -> String {
    format!(
        "[{LAB_AWS_PROFILE}]\naws_access_key_id = AKIDHPCHAOSLAB\naws_secret_access_key = {secret}\n"
    )
}

/// What HyperPod's health agent does about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reboot,
    Replace,
    None,
}

impl Action {
    /// The Slurm reason HyperPod sets, matched exactly.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Action::Reboot => Some("Action:Reboot"),
            Action::Replace => Some("Action:Replace"),
            Action::None => None,
        }
    }
}

/// How fast the lab's cluster reacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TimingProfile {
    /// Seconds: for tests.
    Fast,
    /// The observed minutes of docs/HYPERPOD.md, times `--scale`.
    Realistic,
}

/// Delays the control plane applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// From a fault on the node to the health agent's `Action:*` reason.
    pub detect: Duration,
    /// Node down to back up, for a reboot.
    pub reboot: Duration,
    /// Instance terminated to the new one running, for a replace.
    pub replace: Duration,
    /// How often the control plane polls nodes and Slurm.
    pub poll: Duration,
    /// Slurm's SlurmdTimeout, in seconds.
    pub slurmd_timeout_secs: u64,
    /// How long a requeued job waits in `PENDING (BeginTime)`; `None`
    /// leaves Slurm's own delay (about 120 s, as on HyperPod).
    pub requeue_delay: Option<Duration>,
    /// How long a deep health check (`StartClusterHealthCheck`) holds a
    /// node.
    #[serde(default = "deep_health_check")]
    pub deep_health_check: Duration,
}

/// A lab's deep health check before this setting existed: the fast one.
fn deep_health_check() -> Duration {
    Duration::from_secs(5)
}

impl Timings {
    pub fn of(profile: TimingProfile, scale: f64) -> Timings {
        let scaled =
            |secs: f64| Duration(std::time::Duration::from_secs_f64((secs * scale).max(0.1)));
        match profile {
            TimingProfile::Fast => Timings {
                detect: scaled(2.0),
                reboot: scaled(3.0),
                replace: scaled(6.0),
                poll: Duration(std::time::Duration::from_millis(250)),
                slurmd_timeout_secs: 10,
                requeue_delay: Some(scaled(1.0)),
                deep_health_check: scaled(5.0),
            },
            TimingProfile::Realistic => Timings {
                detect: scaled(15.0),
                reboot: scaled(120.0),
                replace: scaled(25.0 * 60.0),
                poll: Duration::from_secs(1),
                slurmd_timeout_secs: 300,
                requeue_delay: None,
                // InstanceStress runs GPU and memory stress for minutes.
                deep_health_check: scaled(20.0 * 60.0),
            },
        }
    }
}

/// Everything `lab up` decided; the daemon and `lab down` read it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    pub compute_nodes: u8,
    pub timing_profile: TimingProfile,
    pub timings: Timings,
    pub cluster_name: String,
    pub region: String,
    /// Port of the SageMaker control plane on 127.0.0.1.
    pub api_port: u16,
    /// `Automatic` or `None`, as HyperPod's `NodeRecovery`.
    pub node_recovery: String,
    /// Xid code → action, docs/HYPERPOD.md's defaults unless changed.
    pub xid_actions: BTreeMap<u32, Action>,
    /// The hpchaos binary the nodes and the daemon run.
    pub exe: String,
    /// The API omits `PrivateDnsHostname` (older API versions, moto).
    #[serde(default)]
    pub api_without_hostnames: bool,
    /// slurm.conf's `LogTimeFormat` (Slurm's default when `None`).
    #[serde(default)]
    pub log_time_format: Option<String>,
    /// Which Slurm the nodes run.
    #[serde(default)]
    pub slurm: SlurmRelease,
    /// A reboot leaves the instance's `LaunchTime` as it was (EC2's
    /// meaning: when the instance was launched, not booted); hpchaos must
    /// see the reboot from Slurm.
    #[serde(default)]
    pub reboot_keeps_launch_time: bool,
    /// The root file system the nodes are chrooted into (`None`: the host's
    /// own, with the host's Slurm).
    #[serde(default)]
    pub rootfs: Option<String>,
    /// Slurm nodes (and instances) declared but not run, to give the
    /// cluster its size for benchmarks (`lab up --cluster-size`).
    #[serde(default)]
    pub declared_nodes: u16,
    /// The monitoring stack runs (`lab up --monitoring`): exporters on the
    /// nodes, Prometheus, Alertmanager and a Pushgateway on the lab's
    /// monitoring host.
    #[serde(default)]
    pub monitoring: bool,
    /// Which key the compute nodes let `ubuntu` in with (`lab up
    /// --compute-trusts`): the cluster's own, as on HyperPod, or also the
    /// profile's.
    #[serde(default)]
    pub compute_trusts: ComputeTrusts,
    /// How the lab's auto-resume brings a job back (`lab up
    /// --auto-resume`): requeue, or in place with Slurm's job expansion.
    #[serde(default)]
    pub auto_resume: AutoResume,
    /// The login instance group's name (`lab up --login-group`).
    #[serde(default = "default_login_group")]
    pub login_group: String,
    /// A second head node runs a backup slurmctld (`lab up --multi-head`):
    /// see [`layout::BACKUP_HEAD_OCTET`] and [`slurm_conf`].
    #[serde(default)]
    pub multi_head: bool,
}

fn default_login_group() -> String {
    super::state::LOGIN_GROUP.to_owned()
}

/// The two shapes of HyperPod's auto-resume (HYPERPOD.md, "Resume").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AutoResume {
    /// The job is requeued and runs again under its id (`Restarts` + 1),
    /// its output truncated: as reported on GPU (GRES) nodes.
    #[default]
    Requeue,
    /// The job keeps running (`Restarts` unchanged): shrunk to its healthy
    /// nodes, expanded with the repaired one by an expansion job (Slurm's
    /// `--dependency=expand:`, `SchedulerParameters=permit_job_expansion`)
    /// and its step retried (shared/field-cases/15-auto-resume-in-place.txt).
    /// A job whose batch host is the faulty node is requeued instead.
    InPlace,
}

/// The key compute nodes accept besides the cluster's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ComputeTrusts {
    /// Only the cluster's key (`/fsx/ubuntu/.ssh`, which the head node
    /// uses), as HyperPod's lifecycle scripts set it up.
    #[default]
    Head,
    /// The profile's key too: hpchaos can reach them with its own
    /// connection (`ssh.compute: through_head`).
    Profile,
}

/// The user operators log in as on HyperPod, with passwordless sudo.
pub const LOGIN_USER: &str = "ubuntu";

/// `ubuntu`'s uid and gid in the lab's root file system
/// (scripts/slurm-rootfs), as on HyperPod's Ubuntu AMI.
pub const LOGIN_UID: u32 = 1000;

/// The cluster's own key pair and `ubuntu`'s SSH setup, in the shared home
/// (`/fsx/ubuntu/.ssh`), as HyperPod's lifecycle scripts make them: every
/// node trusts the key, and nodes reach each other by name without
/// host-key checks.
pub fn login_ssh_config() -> &'static str {
    "Host ip-*\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
}

/// cloud-init's sudoers entry for `ubuntu` on HyperPod's AMI.
pub fn sudoers() -> String {
    format!("{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n")
}

impl LabConfig {
    /// The nodes are entered as `ubuntu` with sudo (the 24.11 root file
    /// system has that user); a lab on the host's own Slurm (22.05) keeps
    /// root, having no such user.
    pub fn login_as_ubuntu(&self) -> bool {
        self.rootfs.is_some()
    }
}

/// The Slurm release a lab runs: 24.11 (what HyperPod's AMI ships; Debian
/// trixie's packages in a root file system `make setup` builds) or 22.05
/// (Debian bookworm's, the host's own packages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum SlurmRelease {
    #[default]
    #[value(name = "24.11")]
    #[serde(rename = "24.11")]
    V24_11,
    #[value(name = "22.05")]
    #[serde(rename = "22.05")]
    V22_05,
}

impl SlurmRelease {
    /// `24.11` or `22.05`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlurmRelease::V24_11 => "24.11",
            SlurmRelease::V22_05 => "22.05",
        }
    }
}

/// Where `make setup` (`scripts/slurm-rootfs`) builds the Slurm 24.11 root
/// file system; `HPCHAOS_LAB_ROOTFS` names another.
pub const DEFAULT_ROOTFS: &str = "/var/cache/hpchaos/rootfs/slurm-24.11";

impl LabConfig {
    pub fn nodes(&self) -> Vec<NodeSpec> {
        layout::nodes_of(self.compute_nodes, self.multi_head)
    }

    /// The nodes declared but not run (see [`layout::DeclaredNode`]).
    pub fn declared(&self) -> Vec<layout::DeclaredNode> {
        layout::declared_nodes(self.declared_nodes)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// What the health agent does about Xid `code`.
    pub fn action_for_xid(&self, code: u32) -> Action {
        self.xid_actions.get(&code).copied().unwrap_or(Action::None)
    }
}

/// docs/HYPERPOD.md's table: 79 → reboot; 48, 74, 64, 95 → replace; the
/// application-level and benign codes → nothing.
pub fn default_xid_actions() -> BTreeMap<u32, Action> {
    let mut table = BTreeMap::new();
    for code in [79, 119, 120] {
        table.insert(code, Action::Reboot);
    }
    for code in [48, 64, 74, 95] {
        table.insert(code, Action::Replace);
    }
    for code in [13, 31, 43, 63, 92] {
        table.insert(code, Action::None);
    }
    table
}

/// Where a multi-head lab keeps slurmctld's state: on the shared file
/// system both head nodes mount, as HyperPod's multi-head clusters keep it
/// on FSx (HYPERPOD.md, "Multi-head clusters").
pub const SHARED_STATE_SAVE_LOCATION: &str = "/fsx/slurm/state";

pub fn slurm_conf(config: &LabConfig) -> String {
    let nodes = config.nodes();
    let head = &nodes[0];
    // A multi-head cluster lists its backup controller after the primary
    // and keeps Slurm's state where both reach it (HyperPod: on FSx for
    // Lustre; the lab: /fsx); one head keeps it on its own disk.
    let backup = nodes
        .iter()
        .filter(|n| n.role == layout::Role::Head && !n.head)
        .map(|n| format!("SlurmctldHost={}({})\n", n.name, n.address))
        .collect::<String>();
    let state = if backup.is_empty() {
        "/var/spool/slurmctld"
    } else {
        SHARED_STATE_SAVE_LOCATION
    };
    let mut text = format!(
        "# Written by `hpchaos lab up`: a small Slurm cluster with HyperPod's shape.\n\
         ClusterName={cluster}\n\
         SlurmctldHost={head}({head_addr})\n{backup}\
         SlurmUser=root\nSlurmdUser=root\n\
         AuthType=auth/munge\nCredType=cred/munge\nMpiDefault=none\n\
         StateSaveLocation={state}\nSlurmdSpoolDir=/var/spool/slurmd\n\
         SlurmctldPidFile=/run/slurmctld.pid\nSlurmdPidFile=/run/slurmd.pid\n\
         SlurmctldLogFile=/var/log/slurm/slurmctld.log\nSlurmdLogFile=/var/log/slurm/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
         SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
         ReturnToService=1\nSlurmdTimeout={timeout}\nSlurmctldTimeout=10\nMessageTimeout=5\n\
         InactiveLimit=0\nKillWait=2\nMinJobAge=60\nRebootProgram=/usr/local/sbin/reboot\n\
         JobRequeue=1\nKillOnBadExit=1\n\
         SchedulerParameters=permit_job_expansion\n\
         ScronParameters=enable\n",
        cluster = config.cluster_name,
        head = head.name,
        head_addr = head.address,
        timeout = config.timings.slurmd_timeout_secs,
    );
    // Features a site sets on its p5 nodes (the instance's GPU and its
    // fabric), for pools that pick by them (`target.pool.slurm.features`).
    for node in nodes.iter().filter(|n| n.compute()) {
        text.push_str(&format!(
            "NodeName={} NodeAddr={} CPUs=2 RealMemory=1000 Features=h100,efa State=UNKNOWN\n",
            node.name, node.address
        ));
    }
    let computes = nodes
        .iter()
        .filter(|n| n.compute())
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    // As on HyperPod: a default partition and one per instance type over
    // the same nodes (sinfo -N lists each node once per partition), and a
    // hidden one (listed only with -a).
    text.push_str(&format!(
        "PartitionName=dev Nodes={computes} Default=YES MaxTime=INFINITE State=UP\n\
         PartitionName=p5 Nodes={computes} MaxTime=INFINITE State=UP\n\
         PartitionName=maint Nodes={computes} Hidden=YES MaxTime=INFINITE State=UP\n"
    ));
    // Declared, not run: one line per /24 as host-list ranges (slurm.conf
    // expands NodeName and NodeAddr alike), in a partition of their own so
    // no lab job lands there.
    let declared = config.declared();
    if !declared.is_empty() {
        let mut ranges = Vec::new();
        for chunk in declared.chunks(256) {
            let (first, last) = (&chunk[0], &chunk[chunk.len() - 1]);
            let third = first.address.split('.').nth(2).unwrap_or("0");
            let low = first.address.rsplit('.').next().unwrap_or("0");
            let high = last.address.rsplit('.').next().unwrap_or("0");
            text.push_str(&format!(
                "NodeName=ip-10-1-{third}-[{low}-{high}] NodeAddr=10.1.{third}.[{low}-{high}] CPUs=2 RealMemory=1000 State=UNKNOWN\n"
            ));
            ranges.push(format!("ip-10-1-{third}-[{low}-{high}]"));
        }
        text.push_str(&format!(
            "PartitionName=fleet Nodes={} MaxTime=INFINITE State=UP\n",
            ranges.join(",")
        ));
    }
    if let Some(format) = &config.log_time_format {
        text.push_str(&format!("LogTimeFormat={format}\n"));
    }
    text
}

/// Slurm 22.05's slurmd insists on a cgroup plugin; v1 with nothing
/// constrained works inside the node namespaces.
pub fn cgroup_conf() -> &'static str {
    "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=no\nConstrainRAMSpace=no\nConstrainDevices=no\n"
}

/// How long the lab's auto-resume waits for the health agent to mark a
/// node after a step fails (twice the detection delay and 3 s to spare),
/// and its shape ([`AutoResume`]).
pub fn auto_resume_env(config: &LabConfig) -> String {
    let seconds = (config.timings.detect.as_std().as_secs_f64() * 2.0 + 3.0).ceil() as u64;
    let shape = match config.auto_resume {
        AutoResume::Requeue => "requeue",
        AutoResume::InPlace => "in-place",
    };
    format!("DIAGNOSIS_SECONDS={seconds}\nSHAPE={shape}\n")
}

pub fn hosts(config: &LabConfig) -> String {
    let mut text = "127.0.0.1 localhost\n".to_owned();
    for node in config.nodes() {
        text.push_str(&format!("{} {}\n", node.address, node.name));
    }
    text
}

/// A node's sshd_config. Entered as `ubuntu` (see
/// [`LabConfig::login_as_ubuntu`]): root may not log in; every node accepts
/// the cluster's key (`~/.ssh/authorized_keys` in the shared home); the
/// head and login nodes also the profile's (the key that opens the session
/// from outside), compute nodes only with `--compute-trusts profile`.
/// Otherwise (22.05 on the host) root logs in with the profile's key.
pub fn sshd_config(layout: &Layout, node: &NodeSpec, config: &LabConfig) -> String {
    let profile_keys = layout.ssh().join("authorized_keys").display().to_string();
    let (root, keys) = if config.login_as_ubuntu() {
        let outside =
            node.role != layout::Role::Compute || config.compute_trusts == ComputeTrusts::Profile;
        let keys = match outside {
            true => format!(".ssh/authorized_keys {profile_keys}"),
            false => ".ssh/authorized_keys".to_owned(),
        };
        ("no", keys)
    } else {
        ("prohibit-password", profile_keys)
    };
    format!(
        "# Written by `hpchaos lab`: node {name}.\n\
         ListenAddress {address}\n\
         HostKey {host_key}\n\
         PermitRootLogin {root}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         AuthorizedKeysFile {keys}\nStrictModes no\nUsePAM no\nPidFile /run/sshd.pid\n\
         MaxSessions 10\nClientAliveInterval 15\n\
         # The account's own settings, as people put in ~/.bashrc: Slurm's\n\
         # clients print times and pick records by them (field case 19).\n\
         SetEnv {account_env}\n{penalties}",
        account_env = ACCOUNT_ENV,
        // HyperPod's nodes run Ubuntu 22.04's OpenSSH 8.9, which has no
        // per-source penalties; trixie's 10.0 (the 24.11 root file system)
        // would shut out a node whose canary opens connections to its peers
        // (its collective's stand-in) and closes them unauthenticated.
        penalties = if config.login_as_ubuntu() {
            "PerSourcePenalties no\n"
        } else {
            ""
        },
        name = node.name,
        address = node.address,
        host_key = layout.host_key(&node.name).display(),
    )
}

/// What every SSH session on a lab node has in its environment: settings
/// a user keeps in `~/.bashrc` that change what Slurm prints
/// (`SLURM_TIME_FORMAT=relative`: `Sat 16:07` for a reason time) and which
/// jobs `squeue` lists (`SQUEUE_STATES=all`: ended ones too). hpchaos must
/// read the cluster right under them.
pub const ACCOUNT_ENV: &str = "SLURM_TIME_FORMAT=relative SQUEUE_STATES=all SINFO_SORT=-N";

/// The cluster profile for the lab, in the format users write.
pub fn profile(layout: &Layout, config: &LabConfig) -> Profile {
    let nodes = config.nodes();
    let head = &nodes[0];
    Profile {
        name: "lab".to_owned(),
        head_node: Host {
            name: head.name.clone(),
            address: Some(head.address.clone()),
            port: 22,
            local: false,
        },
        login_nodes: nodes
            .iter()
            .filter(|n| n.role == layout::Role::Login)
            .map(|n| n.name.clone())
            .collect(),
        addresses: nodes
            .iter()
            .map(|n| (n.name.clone(), n.address.clone()))
            .collect(),
        ssh: Ssh {
            user: Some(
                match config.login_as_ubuntu() {
                    true => LOGIN_USER,
                    false => "root",
                }
                .to_owned(),
            ),
            elevate: None,
            compute: match config.login_as_ubuntu() && config.compute_trusts == ComputeTrusts::Head
            {
                true => Compute::FromHead,
                false => Compute::ThroughHead,
            },
            key: Some(path_text(&layout.client_key())),
            known_hosts: path_text(&layout.known_hosts()),
            jump_host: None,
            proxy_command: None,
            config: None,
            config_host: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(5),
            max_channels_per_host: 8,
            accept_replaced_host_keys: true,
        },
        slurm: Slurm {
            controller_log: "/var/log/slurm/slurmctld.log".to_owned(),
            follow_controller_log: true,
            // The lab's nvidia-smi shows eight H100s a node; its Slurm
            // has no GPU gres.
            gpus_per_node: Some(8),
            canary_script: Some(path_text(&layout.bin().join("hpchaos-canary.sbatch"))),
        },
        sagemaker: Some(SageMaker {
            cluster_name: config.cluster_name.clone(),
            region: config.region.clone(),
            endpoint_url: Some(config.endpoint()),
            aws_profile: Some(LAB_AWS_PROFILE.to_owned()),
            credentials_file: Some(path_text(&layout.dir.join("aws-credentials"))),
        }),
        poll: Poll {
            slurm: Duration(std::time::Duration::from_millis(500)),
            sagemaker: Duration(std::time::Duration::from_millis(500)),
            job_output: Duration(std::time::Duration::from_millis(500)),
            // HyperPod's default: the light touch on the controller.
            slurm_when_quiet: Duration::from_secs(300),
        },
        monitoring: config.monitoring.then(|| {
            let endpoint = |port: u16| Endpoint {
                url: super::monitoring::url(port),
                sigv4: None,
                timeout: Duration::from_secs(5),
            };
            Monitoring {
                prometheus: Some(endpoint(super::monitoring::PROMETHEUS_PORT)),
                alertmanager: Some(endpoint(super::monitoring::ALERTMANAGER_PORT)),
                pushgateway: Some(endpoint(super::monitoring::PUSHGATEWAY_PORT)),
                // Results go to the Pushgateway; a profile may write them to
                // `http://10.1.0.5:9090/api/v1/write` instead (not both: the
                // same series from two paths would collide).
                remote_write: None,
                poll: Duration(std::time::Duration::from_millis(500)),
            }
        }),
        notify: Vec::new(),
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// A lab config for unit tests: two compute nodes, fast timings, no
/// monitoring.
#[cfg(test)]
pub(crate) fn test_config() -> LabConfig {
    LabConfig {
        compute_nodes: 2,
        timing_profile: TimingProfile::Fast,
        timings: Timings::of(TimingProfile::Fast, 1.0),
        cluster_name: "hpchaos-lab".into(),
        region: "us-west-2".into(),
        api_port: 18080,
        node_recovery: "Automatic".into(),
        xid_actions: default_xid_actions(),
        exe: "/usr/bin/hpchaos".into(),
        api_without_hostnames: false,
        log_time_format: None,
        slurm: SlurmRelease::V24_11,
        rootfs: None,
        declared_nodes: 0,
        monitoring: false,
        reboot_keeps_launch_time: false,
        compute_trusts: ComputeTrusts::Head,
        auto_resume: AutoResume::Requeue,
        login_group: "login".into(),
        multi_head: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LabConfig {
        test_config()
    }

    #[test]
    fn declared_nodes_are_listed_by_subnet_in_a_partition_of_their_own() {
        let mut config = config();
        config.declared_nodes = 300;
        let text = slurm_conf(&config);
        assert!(text.contains(
            "NodeName=ip-10-1-16-[0-255] NodeAddr=10.1.16.[0-255] CPUs=2 RealMemory=1000 State=UNKNOWN\n"
        ));
        assert!(text.contains("NodeName=ip-10-1-17-[0-43] NodeAddr=10.1.17.[0-43] "));
        assert!(text.contains(
            "PartitionName=fleet Nodes=ip-10-1-16-[0-255],ip-10-1-17-[0-43] MaxTime=INFINITE State=UP\n"
        ));
        // The lab's own partitions keep to the nodes it runs.
        assert!(text.contains("PartitionName=dev Nodes=ip-10-1-0-11,ip-10-1-0-12 "));
    }

    #[test]
    fn slurm_conf_lists_compute_nodes_and_the_head() {
        let text = slurm_conf(&config());
        assert!(text.contains("SlurmctldHost=ip-10-1-0-10(10.1.0.10)\n"));
        assert!(text.contains("NodeName=ip-10-1-0-12 NodeAddr=10.1.0.12 "));
        assert!(text.contains("PartitionName=dev Nodes=ip-10-1-0-11,ip-10-1-0-12 "));
        assert!(text.contains("PartitionName=p5 Nodes=ip-10-1-0-11,ip-10-1-0-12 "));
        assert!(text.contains("PartitionName=maint Nodes=ip-10-1-0-11,ip-10-1-0-12 Hidden=YES"));
        assert!(!text.contains("LogTimeFormat"));
        assert!(text.contains("SlurmdTimeout=10\n"));
        assert!(text.contains("StateSaveLocation=/var/spool/slurmctld\n"));
        assert_eq!(text.matches("SlurmctldHost=").count(), 1);
    }

    /// A multi-head lab: the backup controller listed after the primary,
    /// Slurm's state on the shared file system, the backup head in no
    /// partition (it runs no slurmd).
    #[test]
    fn a_multi_head_lab_lists_its_backup_controller_and_shares_its_state() {
        let mut config = config();
        config.multi_head = true;
        let text = slurm_conf(&config);
        assert!(text.contains(
            "SlurmctldHost=ip-10-1-0-10(10.1.0.10)\nSlurmctldHost=ip-10-1-0-8(10.1.0.8)\n"
        ));
        assert!(text.contains("StateSaveLocation=/fsx/slurm/state\n"));
        assert!(!text.contains("NodeName=ip-10-1-0-8 "));
        assert!(text.contains("PartitionName=dev Nodes=ip-10-1-0-11,ip-10-1-0-12 "));
        let nodes = config.nodes();
        let heads: Vec<(&str, bool)> = nodes
            .iter()
            .filter(|n| n.role == layout::Role::Head)
            .map(|n| (n.name.as_str(), n.head))
            .collect();
        assert_eq!(heads, vec![("ip-10-1-0-10", true), ("ip-10-1-0-8", false)]);
    }

    #[test]
    fn xid_table_follows_hyperpod_md() {
        let config = config();
        assert_eq!(config.action_for_xid(79), Action::Reboot);
        assert_eq!(config.action_for_xid(48), Action::Replace);
        assert_eq!(config.action_for_xid(74), Action::Replace);
        assert_eq!(config.action_for_xid(13), Action::None);
        assert_eq!(config.action_for_xid(4242), Action::None);
    }

    #[test]
    fn the_lab_profile_is_a_valid_profile() {
        let layout = Layout::new(Path::new("/tmp/lab"));
        let yaml = serde_saphyr::to_string(&profile(&layout, &config())).unwrap();
        let parsed = hpchaos::scenario::parse_profile(Path::new("profile.yaml"), &yaml).unwrap();
        assert_eq!(
            parsed.sagemaker.unwrap().endpoint_url.as_deref(),
            Some("http://127.0.0.1:18080")
        );
    }
}
