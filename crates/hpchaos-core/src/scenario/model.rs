//! The scenario language as Rust types: what one experiment targets, which
//! fault it injects, what must hold before and after, and what recovery is
//! expected by when. Serde reads it, schemars describes it; the checks that
//! need more than types live in `semantic.rs`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// One chaos experiment: inject one fault into chosen nodes and judge how
/// the cluster recovers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hpchaos scenario")]
pub struct Scenario {
    /// Short identifier used in report names and JUnit test cases
    /// (letters, digits, `-`, `_`, `.`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub name: String,
    /// What the experiment shows and why it matters.
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form labels for selecting scenarios from suites.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Which nodes the fault hits.
    pub target: Target,
    /// A job whose resumption is timed: an existing one, or a canary that
    /// hpchaos submits.
    #[serde(default)]
    pub workload: Option<Workload>,
    /// The one fault this scenario injects.
    pub fault: Fault,
    /// Checks that must hold before injecting and again after recovery.
    #[serde(default)]
    pub steady_state: Vec<Check>,
    /// The recovery expected and how long each phase may take.
    pub expect: Expect,
    /// Conditions that stop the run early and roll back.
    #[serde(default)]
    pub abort: Option<Abort>,
    /// Extra clean-up commands, run after each fault's own rollback.
    #[serde(default)]
    pub rollback: Vec<RemoteCommand>,
    /// Faults that follow the first (`fault`, the scenario's first step),
    /// each with its own targets and trigger: a second node lost while the
    /// first is replaced, a stress on the replacement as it rejoins. Every
    /// step is planned before anything is changed (targets resolved, undo
    /// written ahead), injected when its trigger comes, timed as its own
    /// phase set, and rolled back before the steps before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LaterStep>,
}

/// A fault that follows the scenario's first, with its own targets,
/// trigger and expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaterStep {
    /// The step's name in reports and triggers (unique in the scenario,
    /// and not the scenario's own name, which names the first step).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub name: String,
    /// Its nodes; without it, the first step's targets (a stress on the
    /// node HyperPod just replaced). A pool leaves out the earlier steps'
    /// targets; nodes named outright are taken as named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The fault.
    pub fault: Fault,
    /// Injected this long after the scenario's first injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Duration>,
    /// Injected when this holds (with `after`, once both have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Trigger>,
    /// What this step expects; without it, the scenario's `expect`
    /// (its recovery, deadlines and mark), counted from this step's own
    /// injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<StepExpect>,
}

/// When a later step is injected: a phase of an earlier step starting or
/// ending, or a PromQL condition on the profile's Prometheus returning a
/// series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The earlier step (its name; the scenario's name for the first);
    /// the first step when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Its phase: `drain` with `edge: ended` is "during the replacement".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `started` (default) or `ended`.
    #[serde(default)]
    pub edge: Edge,
    /// A PromQL condition, true once it returns a series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
}

/// A phase's edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    #[default]
    Started,
    Ended,
}

impl Edge {
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Started => "started",
            Edge::Ended => "ended",
        }
    }
}

impl Scenario {
    /// The expectation a later step is judged by: its own `expect`, else
    /// the scenario's recovery, mark, deadlines and quiet window (no
    /// regression gates, monitoring or lost-step limit: those are the
    /// scenario's as a whole).
    pub fn step_expect(&self, step: &LaterStep) -> Expect {
        match &step.expect {
            Some(own) => Expect {
                recovery: own.recovery,
                reason: own.reason.clone(),
                deadlines: own.deadlines.clone(),
                quiet_for: own.quiet_for,
                max_lost_steps: None,
                regression: None,
                monitoring: Vec::new(),
            },
            None => Expect {
                max_lost_steps: None,
                regression: None,
                monitoring: Vec::new(),
                ..self.expect.clone()
            },
        }
    }

    /// Every step's name in order: the scenario's own (its first step),
    /// then each later step's.
    pub fn step_names(&self) -> Vec<&str> {
        std::iter::once(self.name.as_str())
            .chain(self.steps.iter().map(|s| s.name.as_str()))
            .collect()
    }
}

/// What a later step expects of the cluster, from its own injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    pub recovery: Recovery,
    /// HyperPod's mark on the step's targets (default: the recovery's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub deadlines: Deadlines,
    /// For `recovery: none`: how long nothing may happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_for: Option<Duration>,
}

/// Node selection: a pool, how many of it, what to leave out, and a cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Where candidate nodes come from.
    pub pool: Pool,
    /// How many of the pool to hit. Defaults to one node.
    #[serde(default)]
    pub pick: Pick,
    /// Nodes never to touch. Controller and login nodes from the cluster
    /// profile are always excluded as well.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Blast-radius cap: the run refuses to start if the selection resolves
    /// to more nodes than this.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub max_nodes: u32,
    /// Seed for random picks, so that a run can be repeated exactly.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Where target candidates come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pool {
    /// Slurm node names, e.g. `ip-10-1-0-11`.
    Nodes(Vec<String>),
    /// Every node of a Slurm partition.
    Partition(String),
    /// Every node of a SageMaker HyperPod instance group.
    InstanceGroup(String),
    /// The nodes running an existing Slurm job, by id.
    JobId(u64),
    /// The nodes running an existing Slurm job, by name.
    JobName(String),
    /// The nodes running the scenario's workload (see `workload`).
    Workload,
    /// The nodes Slurm shows with a state, features, GRES, partition or
    /// jobs (every filter given must hold): `{slurm: {state: idle, gres:
    /// "gpu:h100"}}`. `plan` says why each node was or was not chosen.
    Slurm(SlurmPool),
}

/// A pool chosen by what Slurm knows of each node (`sinfo`, `squeue`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmPool {
    /// Only nodes of this partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Only nodes in this state: `idle` (in service, no job: no job is
    /// hit), `allocated` (running jobs, `mixed` included), `mixed`,
    /// `usable` (in service, whatever runs there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<NodeStateFilter>,
    /// Only nodes with every one of these features (`AvailableFeatures`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Only nodes offering this GRES, by name and optionally type:
    /// `gpu`, `gpu:h100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    /// Only nodes running a job matching every field given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobMatch>,
}

/// Slurm node states a pool can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStateFilter {
    Idle,
    Allocated,
    Mixed,
    Usable,
}

impl NodeStateFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStateFilter::Idle => "idle",
            NodeStateFilter::Allocated => "allocated",
            NodeStateFilter::Mixed => "mixed",
            NodeStateFilter::Usable => "usable",
        }
    }
}

/// Running jobs by name, user and account (exact; every one given must
/// match).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl JobMatch {
    /// `name=train user=alice`.
    pub fn describe(&self) -> String {
        [
            ("name", &self.name),
            ("user", &self.user),
            ("account", &self.account),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// How many nodes of the pool to hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pick {
    /// This many nodes, chosen at random.
    Count(#[schemars(range(min = 1))] u32),
    /// This percentage of the pool (rounded up, at least one node).
    Percent(#[schemars(range(min = 1, max = 100))] u32),
    /// Every node in the pool.
    All,
}

impl Default for Pick {
    fn default() -> Self {
        Pick::Count(1)
    }
}

/// The job the scenario watches for the resume phase and lost work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// Watch a job that is already running.
    Existing(ExistingJob),
    /// Submit a canary job before injecting, and cancel it afterwards.
    Canary(CanaryJob),
}

/// A running job to watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistingJob {
    /// Which job.
    pub job: JobRef,
    /// How to read its progress from its output.
    #[serde(default)]
    pub progress: Option<Progress>,
}

/// A Slurm job by id or by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRef {
    Id(u64),
    Name(String),
}

/// A job that hpchaos submits with `sbatch` on the head node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryJob {
    /// Batch script path on the head node. Defaults to the cluster
    /// profile's canary script.
    #[serde(default)]
    pub script: Option<String>,
    /// Job name shown in `squeue`.
    #[serde(default = "canary_name")]
    pub name: String,
    /// `--nodes`: how many nodes the job spans.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub nodes: u32,
    /// `--partition`, when not the default one.
    #[serde(default)]
    pub partition: Option<String>,
    /// Launch steps with `srun --auto-resume=1` (HyperPod auto-resume).
    #[serde(default = "yes")]
    pub auto_resume: bool,
    /// Submit with `--requeue`.
    #[serde(default = "yes")]
    pub requeue: bool,
    /// Extra `sbatch` arguments, one per item.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
    /// Inject only once the job has made this much progress.
    #[serde(default)]
    pub warmup_steps: Option<u64>,
    /// How to read its progress from its output: what it leaves out (with
    /// no `framework`) is the canary's own (`step N`, its checkpoint and
    /// resume lines), so `progress: { stalled_after: 2m }` keeps them.
    #[serde(
        default = "Progress::canary_default",
        deserialize_with = "Progress::deserialize_for_canary"
    )]
    pub progress: Progress,
}

fn canary_name() -> String {
    "hpchaos-canary".to_owned()
}

fn yes() -> bool {
    true
}

/// How to read a job's progress from its output: a framework whose lines
/// hpchaos knows (see [`super::frameworks`]), or regular expressions over
/// the output's lines, or both (a pattern given replaces the framework's).
/// The first capture group of `pattern` is the step: a whole number or a
/// number (`794.0`, `1.2e+4`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The training framework that writes the output: its progress,
    /// checkpoint and resume lines are known.
    #[serde(default)]
    pub framework: Option<Framework>,
    /// Matches a progress line, e.g. `step (\d+)`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Matches a checkpoint marker, e.g. `checkpoint saved at step (\d+)`.
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// Matches the line where the job says it resumed from a checkpoint,
    /// e.g. `resumed from checkpoint at step (\d+)`; its first group, when
    /// it has one, is the checkpoint's step.
    #[serde(default)]
    pub resumed: Option<String>,
    /// Output file, when it cannot be read from `scontrol show job`.
    #[serde(default)]
    pub output: Option<String>,
    /// The job's progress stopped: no new step for this long while the job
    /// runs is a fault the job itself shows (a hung rank, a partition, a
    /// frozen mount), said once per stall and counted as detection for
    /// `requeue` and `job_fails` recoveries. Set it below the job's own
    /// watchdog timeout (PyTorch's NCCL watchdog: 10 min by default) to see
    /// a hang before the watchdog does, and above the longest step and
    /// checkpoint pause. Unset: a stall is not watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_after: Option<Duration>,
}

/// A training framework whose output lines hpchaos knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// Megatron-LM (and Megatron-based NeMo 1): `iteration N/ M |`.
    Megatron,
    /// NeMo 2: Lightning's progress bar, `global_step=N`.
    Nemo,
    /// PyTorch Lightning's progress bar, `global_step=N`.
    Lightning,
    /// Hugging Face Transformers' `Trainer`: its bar, `N/M [`.
    HfTrainer,
    /// torchtitan: `step: N  loss: ...`.
    Torchtitan,
    /// A plain `step N` (or `step: N`, `step=N`) line.
    Plain,
}

impl Progress {
    /// What a canary's output is read with, unless it says otherwise:
    /// the lab's `hpchaos-train` lines.
    pub fn canary_default() -> Self {
        Progress {
            framework: None,
            pattern: Some(r"step (\d+)".to_owned()),
            checkpoint: Some(r"checkpoint saved at step (\d+)".to_owned()),
            resumed: Some(r"resumed from checkpoint at step (\d+)".to_owned()),
            output: None,
            stalled_after: None,
        }
    }

    /// A canary's `progress` as written, its patterns left out filled in
    /// from [`Progress::canary_default`] unless it names a framework.
    /// Errors: as for [`Progress`] itself.
    pub fn deserialize_for_canary<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Progress, D::Error> {
        let given = Progress::deserialize(deserializer)?;
        if given.framework.is_some() {
            return Ok(given);
        }
        let canary = Progress::canary_default();
        Ok(Progress {
            pattern: given.pattern.or(canary.pattern),
            checkpoint: given.checkpoint.or(canary.checkpoint),
            resumed: given.resumed.or(canary.resumed),
            ..given
        })
    }

    /// The patterns to read with: each given one, else the framework's
    /// (else `plain`'s, for the progress line). (progress, checkpoint,
    /// resumed), as regular-expression text.
    pub fn patterns(&self) -> (String, Option<String>, Option<String>) {
        let preset = super::frameworks::preset(self.framework.unwrap_or(Framework::Plain));
        let with_framework = self.framework.is_some() || self.pattern.is_none();
        (
            self.pattern
                .clone()
                .unwrap_or_else(|| preset.progress.to_owned()),
            self.checkpoint
                .clone()
                .or_else(|| with_framework.then(|| preset.checkpoint.to_owned())),
            self.resumed
                .clone()
                .or_else(|| with_framework.then(|| preset.resumed.to_owned())),
        )
    }
}

/// The one fault a scenario injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Load the GPUs; a healthy node must stay healthy.
    GpuStress(GpuStress),
    /// Kill processes on the target nodes.
    ProcessKill(ProcessKill),
    /// Reboot the target nodes.
    NodeReboot(NodeReboot),
    /// Have the target nodes replaced by new instances.
    NodeReplace(NodeReplace),
    /// Simulate an NVIDIA Xid error.
    Xid(Xid),
    /// Have HyperPod run its deep health checks on the targets
    /// (`StartClusterHealthCheck`): the nodes are taken out of service in
    /// a Slurm maintenance reservation while checked, then given back.
    DeepHealthCheck(DeepHealthCheck),
    /// Stop one rank of the workload (`SIGSTOP` of its task on each
    /// target node): a hang, which HyperPod's health agent does not catch;
    /// only the training's collective watchdog does. Needs a workload.
    Hang(Hang),
    /// Restart or stop one of Slurm's daemons: `slurmd` on each target,
    /// or `slurmctld` on the head node (with `allow_controller`, or a
    /// stop with `recovery: takeover` on a multi-head cluster).
    Daemon(Daemon),
    /// Break the checkpoint file system: fill it, make it read-only or
    /// freeze it on the targets (`/`, the root, only read-only).
    Filesystem(Filesystem),
    /// Slow the targets for a while (GPU clocks locked low, GPU power
    /// capped, or the job's CPU time held by a cgroup quota): a straggler,
    /// which slows every step of a synchronous job and fails nothing. What
    /// is measured is the job's step rate.
    Straggler(Straggler),
    /// Disturb the network between the targets and their peers: a
    /// partition, loss, latency or a bandwidth limit (`tc`: an HTB qdisc
    /// with `u32` filters for the peers, `netem` for loss and latency), on the
    /// traffic to the peers only: never the head node's, never SSH's path.
    Network(Network),
}

/// The network between each target and its peers disturbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub effect: NetEffect,
    /// The compute nodes whose traffic from each target is disturbed; by
    /// default the other targets. Never the head or a login node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Undo it this long after the injection; by default at the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NetEffect {
    /// Every packet to the peers dropped.
    Partition,
    /// This share of the packets to the peers dropped.
    Loss {
        #[schemars(range(min = 1, max = 100))]
        percent: u32,
    },
    /// This much delay on every packet to the peers.
    Latency {
        #[schemars(range(min = 1))]
        ms: u32,
    },
    /// The traffic to the peers limited to this rate.
    Bandwidth {
        #[schemars(range(min = 1))]
        mbit: u32,
    },
}

impl NetEffect {
    /// What the node's `tc` is told (`faults/network.rs`): `partition`
    /// (a queue of length 0: every packet dropped), `rate:MBIT` (an HTB
    /// class at that rate), or `netem:ARGS` (`loss 30%`, `delay 200ms`).
    pub fn tc(&self) -> String {
        match self {
            NetEffect::Partition => "partition".to_owned(),
            NetEffect::Loss { percent } => format!("netem:loss {percent}%"),
            NetEffect::Latency { ms } => format!("netem:delay {ms}ms"),
            NetEffect::Bandwidth { mbit } => format!("rate:{mbit}"),
        }
    }
}

/// A straggler: the targets slowed (their GPUs, or the job's CPU time
/// there) for `duration`, then restored to what they were before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Straggler {
    pub slow: Slow,
    /// How long the target stays slow.
    pub duration: Duration,
    /// Fail the scenario when the job's step rate during the slow-down is
    /// more than this many times slower than before it (`2.0`: half as
    /// fast); without it the slowdown is measured and reported only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slowdown: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Slow {
    /// `nvidia-smi -lgc MHZ,MHZ` (a thermal clock drop); undone with
    /// `nvidia-smi -rgc`.
    GpuClocks {
        #[schemars(range(min = 1))]
        max_mhz: u32,
    },
    /// `nvidia-smi -pl WATTS` (a power cap); undone by setting the limit
    /// read before.
    PowerCap {
        #[schemars(range(min = 1))]
        watts: u32,
    },
    /// The workload's processes on the target held to this much CPU time
    /// (`cpus: 0.5`: half of one CPU, as `docker --cpus`), through a
    /// cgroup CPU quota (`cpu.max` on cgroup v2, `cpu.cfs_quota_us` on
    /// v1; period 100 ms, 1 s under 0.01 CPU): a noisy neighbour, or a host throttling the
    /// data loader and the launcher. A job in a Slurm job cgroup
    /// (`proctrack/cgroup` on v2) is limited in place; otherwise its
    /// processes are moved into a cgroup of hpchaos's and back. Undone
    /// by putting back the quota read before. Needs a workload.
    CpuQuota {
        #[schemars(range(min = 0.001))]
        cpus: f64,
    },
}

impl Slow {
    /// The setting's key under `slow`, as the scenario spells it.
    pub fn key(&self) -> &'static str {
        match self {
            Slow::GpuClocks { .. } => "gpu_clocks",
            Slow::PowerCap { .. } => "power_cap",
            Slow::CpuQuota { .. } => "cpu_quota",
        }
    }
}

/// The checkpoint file system broken: `full` (a file fills it, once, from
/// the first target: it is shared), `read_only` (remounted read-only on
/// each target, in that node's view) or `frozen` (every new file operation
/// under it blocks on each target, as on a Lustre client whose servers
/// stopped answering).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// The mount point or directory, absolute and written plainly (no
    /// `.`, `..` or `//`): FSx for Lustre's, or the checkpoints' (the
    /// lab's canary writes to `/fsx/canary`). Never under the node's
    /// system directories (`/usr`, `/var`, `/etc`, ...); `/` only with
    /// `effect: read_only`.
    pub path: String,
    pub effect: FsEffect,
    /// Undo it this long after the injection; by default at the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FsEffect {
    /// Filled up to `leave_free` left (`0`, `10MiB`, `1GB`).
    Full {
        #[serde(default = "zero_bytes")]
        leave_free: String,
    },
    /// Remounted read-only.
    ReadOnly,
    /// Frozen: a FUSE passthrough (`bindfs`, which must be installed on
    /// the targets) stacked on the path and stopped (`SIGSTOP`), so every
    /// file opened or looked up there from now on waits, killable, until
    /// the undo continues and unmounts it; files open before keep working.
    Frozen,
}

fn zero_bytes() -> String {
    "0".to_owned()
}

/// A Slurm daemon restarted or stopped through its systemd unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// `slurmd` (on each target) or `slurmctld` (on the head node).
    pub name: SlurmDaemon,
    /// `restart` (default) or `stop`.
    #[serde(default)]
    pub action: DaemonAction,
    /// For `stop`: start it again this long after; by default it stays
    /// stopped until the rollback starts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Allow `slurmctld`: on a cluster with one head node its restart
    /// stops all scheduling while it lasts. Never with other steps.
    #[serde(default)]
    pub allow_controller: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlurmDaemon {
    Slurmd,
    Slurmctld,
}

impl SlurmDaemon {
    pub fn as_str(self) -> &'static str {
        match self {
            SlurmDaemon::Slurmd => "slurmd",
            SlurmDaemon::Slurmctld => "slurmctld",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DaemonAction {
    #[default]
    Restart,
    Stop,
}

/// A hung rank: the workload's task on each target node stopped
/// (`SIGSTOP`), and let go (`SIGCONT`) after `duration` or at rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hang {
    /// The rank to stop (`SLURM_PROCID`, which must run on the target), or
    /// `random`: one of the job's ranks on each target, drawn at the
    /// injection (the journal says which). By default the lowest rank on
    /// each target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<RankChoice>,
    /// Let it go again after this long (a stall shorter than the
    /// watchdog's timeout is a straggler, not a failure); by default it
    /// stays stopped until the job reacts and the rollback lets it go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// Which rank a hang stops: a number, or the word `random`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RankChoice {
    /// One of the job's ranks on the target, drawn at the injection: the
    /// word `random`.
    Drawn(RandomRank),
    /// This rank (`SLURM_PROCID`).
    Rank(u32),
}

/// The word `random`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RandomRank {
    Random,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::GpuStress(_) => "gpu_stress",
            Fault::ProcessKill(_) => "process_kill",
            Fault::NodeReboot(_) => "node_reboot",
            Fault::NodeReplace(_) => "node_replace",
            Fault::Xid(_) => "xid",
            Fault::DeepHealthCheck(_) => "deep_health_check",
            Fault::Hang(_) => "hang",
            Fault::Daemon(_) => "daemon",
            Fault::Filesystem(_) => "filesystem",
            Fault::Straggler(_) => "straggler",
            Fault::Network(_) => "network",
        }
    }

    /// Whether injecting it needs the SageMaker API.
    pub fn needs_sagemaker(&self) -> bool {
        matches!(
            self,
            Fault::DeepHealthCheck(_)
                | Fault::NodeReboot(NodeReboot {
                    method: RebootMethod::Sagemaker
                })
                | Fault::NodeReplace(NodeReplace {
                    method: ReplaceMethod::Sagemaker,
                    ..
                })
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuStress {
    /// How long to keep the load on.
    pub duration: Duration,
    /// Which stress tool to run.
    pub tool: StressTool,
    /// Which GPUs: `all` (default) or a list of indexes.
    #[serde(default)]
    pub gpus: GpuSelection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StressTool {
    /// `dcgmi diag -r LEVEL`.
    DcgmDiag {
        #[schemars(range(min = 1, max = 4))]
        level: u8,
    },
    /// `gpu_burn SECONDS`.
    GpuBurn,
    /// `dcgmproftester`.
    Dcgmproftester,
    /// Your own command, as an argument list (never a shell string).
    Custom {
        #[schemars(length(min = 1))]
        command: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GpuSelection {
    /// Every GPU on the node: the word `all`.
    Every(AllGpus),
    /// These GPU indexes.
    Indexes(#[schemars(length(min = 1))] Vec<u32>),
}

impl Default for GpuSelection {
    fn default() -> Self {
        GpuSelection::Every(AllGpus::All)
    }
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllGpus {
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessKill {
    /// What to kill.
    pub target: KillTarget,
    /// Signal name: `KILL`, `SIGSEGV`, ...
    #[serde(default = "sigkill")]
    pub signal: Signal,
    /// How many matching processes per node (all if omitted).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub count: Option<u32>,
}

fn sigkill() -> Signal {
    Signal::Kill
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KillTarget {
    /// The workload's step tasks on the target node.
    JobTasks,
    /// The node's `slurmd`.
    Slurmd,
    /// Processes whose full command line matches this regex (`pgrep -f`).
    Pattern(String),
}

/// The signals that make sense for a chaos experiment, by name, with or
/// without the `SIG` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    #[serde(rename = "KILL", alias = "SIGKILL")]
    Kill,
    #[serde(rename = "TERM", alias = "SIGTERM")]
    Term,
    #[serde(rename = "SEGV", alias = "SIGSEGV")]
    Segv,
    #[serde(rename = "ABRT", alias = "SIGABRT")]
    Abrt,
    #[serde(rename = "INT", alias = "SIGINT")]
    Int,
    #[serde(rename = "HUP", alias = "SIGHUP")]
    Hup,
    #[serde(rename = "STOP", alias = "SIGSTOP")]
    Stop,
}

impl Signal {
    pub fn number(self) -> u8 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Abrt => 6,
            Signal::Kill => 9,
            Signal::Segv => 11,
            Signal::Term => 15,
            Signal::Stop => 19,
        }
    }
}

impl JsonSchema for Signal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Signal".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names = ["KILL", "TERM", "SEGV", "ABRT", "INT", "HUP", "STOP"];
        let spellings: Vec<String> = names
            .iter()
            .flat_map(|n| [(*n).to_owned(), format!("SIG{n}")])
            .collect();
        schemars::json_schema!({
            "description": "Signal name, with or without `SIG`: `KILL`, `SIGSEGV`, ...",
            "type": "string",
            "enum": spellings
        })
    }
}

/// HyperPod's on-demand deep health checks on the targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeepHealthCheck {
    /// Which checks (botocore's `DeepHealthCheckType`): `InstanceStress`
    /// (GPU and memory stress), `InstanceConnectivity` (EFA and NCCL),
    /// `MultiNodeTrainingValidation`.
    #[schemars(length(min = 1))]
    pub checks: Vec<DeepHealthCheckType>,
}

/// A deep health check, as the SageMaker API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeepHealthCheckType {
    InstanceStress,
    InstanceConnectivity,
    MultiNodeTrainingValidation,
}

impl DeepHealthCheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeepHealthCheckType::InstanceStress => "InstanceStress",
            DeepHealthCheckType::InstanceConnectivity => "InstanceConnectivity",
            DeepHealthCheckType::MultiNodeTrainingValidation => "MultiNodeTrainingValidation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeReboot {
    /// `ssh`: run `reboot` on the node; `slurm`: set reason `Action:Reboot`;
    /// `sagemaker`: call `BatchRebootClusterNodes`.
    pub method: RebootMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebootMethod {
    Ssh,
    Slurm,
    Sagemaker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeReplace {
    /// `slurm`: set reason `Action:Replace`; `sagemaker`: call
    /// `BatchReplaceClusterNodes`.
    pub method: ReplaceMethod,
    /// With `slurm`: set the node `down` instead of `fail`, killing the jobs
    /// on it rather than waiting for them to end.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceMethod {
    Slurm,
    Sagemaker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Xid {
    /// The NVIDIA Xid code, e.g. 79 (GPU fallen off the bus) or 48 (DBE).
    #[schemars(range(min = 1, max = 999))]
    pub code: u32,
    /// GPU index.
    #[serde(default)]
    pub gpu: u32,
    /// How the error is simulated.
    pub method: XidMethod,
    /// Kill the training task this long after injecting, as people do by
    /// hand to trigger HyperPod auto-resume. Needs a workload.
    #[serde(default)]
    pub crash_task_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum XidMethod {
    /// `dcgmi test --inject -f 230 -v CODE` (needs nv-hostengine).
    DcgmInject,
    /// An `NVRM: Xid` line appended to the node's kernel log.
    KernelLog,
    /// `echo 1 >> /var/run/sagemaker_healthcheck_status`.
    HealthStatusFile,
}

/// A steady-state check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Every target node is up and `idle`, `mixed` or `allocated`, with no reason set.
    TargetsHealthy,
    /// At least this many nodes in the cluster are healthy.
    MinHealthyNodes(#[schemars(range(min = 1))] u32),
    /// The workload job is running.
    JobRunning,
    /// A command whose result must match.
    Probe(Probe),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// `command`, `on` and `timeout` repeat `RemoteCommand` on purpose: serde
// cannot deny unknown fields through `flatten`, and nesting them would make
// users write `run: { command: ... }` in every probe.
pub struct Probe {
    /// Shown in reports.
    pub name: String,
    /// Program and arguments.
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Where to run it.
    #[serde(default)]
    pub on: Where,
    /// Give up after this long.
    #[serde(default = "command_timeout")]
    pub timeout: Duration,
    /// Expected exit status.
    #[serde(default)]
    pub expect_exit: i32,
    /// Regex the standard output must match.
    #[serde(default)]
    pub expect_output: Option<String>,
}

/// A command run over SSH, as an argument list that is quoted for the
/// remote shell (scenario text is never pasted into a shell string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteCommand {
    /// Program and arguments.
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Where to run it.
    #[serde(default)]
    pub on: Where,
    /// Give up after this long.
    #[serde(default = "command_timeout")]
    pub timeout: Duration,
}

fn command_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Where {
    /// The Slurm head (controller) node.
    #[default]
    Head,
    /// Each target node.
    Targets,
    /// One named node.
    Node(String),
}

/// What recovery the scenario expects, and the deadline of each phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The recovery that must happen.
    pub recovery: Recovery,
    /// The Slurm reason the cluster should set, e.g. `Action:Replace`.
    /// Defaults to the one that goes with `recovery`.
    #[serde(default)]
    pub reason: Option<String>,
    /// When each phase must be over, counted from the injection; later
    /// phases need later deadlines.
    #[serde(default)]
    pub deadlines: Deadlines,
    /// For `recovery: none`: how long nothing must happen.
    #[serde(default)]
    pub quiet_for: Option<Duration>,
    /// Most steps the workload may redo after resuming.
    #[serde(default)]
    pub max_lost_steps: Option<u64>,
    /// Regression gates: a phase that met its deadline but is slower than
    /// the baseline from the run history (`run --baseline`, default
    /// `p50:30d`) by more than allowed fails the scenario. One gate or a
    /// list: `{ phase: replace, max_increase: 25% }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<Regression>,
    /// What the cluster's monitoring must show, and by when: PromQL
    /// conditions and Alertmanager alerts, each with a deadline from the
    /// injection, judged like the phases (needs the profile's
    /// `monitoring`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitoring: Vec<MonitoringExpectation>,
}

/// One thing the monitoring must show: a PromQL condition that returns a
/// series, or an alert firing in Alertmanager, within `within` of the
/// injection. In the query and the label values, `$target` is each target
/// in turn (the expectation is then judged per target: every target must
/// be seen) and `$targets` all of them as a regex alternation
/// (`ip-10-1-0-11|ip-10-1-0-12`, for `=~`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringExpectation {
    /// The row's name in reports; defaults to the alert's name, or
    /// `promql-N` (N from 1, in the list's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A PromQL expression, true at the first instant it returns a series:
    /// `DCGM_FI_DEV_XID_ERRORS{Hostname="$target"} == 48`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
    /// An alert's name (`alertname`), seen when Alertmanager holds it
    /// firing with every label of `labels`; timed by its `startsAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Labels the alert must carry, `$target`/`$targets` substituted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The deadline, counted from the injection.
    pub within: Duration,
}

impl MonitoringExpectation {
    /// The row's name: `name`, else the alert's, else `promql-{index+1}`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .or_else(|| self.alert.clone())
            .unwrap_or_else(|| format!("promql-{}", index + 1))
    }

    /// Whether it is judged once per target (it says `$target`).
    pub fn per_target(&self) -> bool {
        let says = |text: &str| text.replace("$targets", "").contains("$target");
        self.promql.as_deref().is_some_and(says) || self.labels.values().any(|v| says(v))
    }
}

/// One regression gate or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Regression {
    One(RegressionGate),
    Many(Vec<RegressionGate>),
}

impl Regression {
    pub fn gates(&self) -> Vec<&RegressionGate> {
        match self {
            Regression::One(gate) => vec![gate],
            Regression::Many(gates) => gates.iter().collect(),
        }
    }
}

/// How much slower than its baseline a phase may get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegressionGate {
    /// A phase the scenario times.
    pub phase: Phase,
    /// The most it may take over the baseline, as a percentage: `25%`.
    pub max_increase: Percent,
}

/// A percentage written `25%` (decimals allowed: `12.5%`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Percent(pub f64);

/// The schema definition's name of [`Percent`]; the structural checker
/// recognises it to say what a percentage looks like.
pub const PERCENT_SCHEMA_NAME: &str = "Percent";

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(PERCENT_SCHEMA_NAME)
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^[0-9]+(\.[0-9]+)?%$",
            "description": "A percentage, such as `25%`.",
            "examples": ["25%", "12.5%"]
        })
    }
}

impl TryFrom<String> for Percent {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Percent)
            .ok_or_else(|| format!("`{text}` is not a percentage: write it as `25%`"))
    }
}

impl From<Percent> for String {
    fn from(percent: Percent) -> String {
        format!("{}%", percent.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Nothing happens: the node stays healthy and the job keeps running.
    None,
    /// The node is rebooted and rejoins with the same instance.
    Reboot,
    /// The node is replaced by a new instance under the same name.
    Replace,
    /// The job is requeued and resumes; the node may stay.
    Requeue,
    /// The job ends failed and is not retried.
    JobFails,
    /// HyperPod's deep health check takes the node out of service and
    /// gives it back (`deep_health_check` faults).
    HealthCheck,
    /// A backup slurmctld takes control when the primary stops answering
    /// (a multi-head cluster, `daemon: slurmctld`), after
    /// `SlurmctldTimeout` (HyperPod: 120 s); the workload keeps running.
    Takeover,
}

impl Recovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::None => "none",
            Recovery::Reboot => "reboot",
            Recovery::Replace => "replace",
            Recovery::Requeue => "requeue",
            Recovery::JobFails => "job_fails",
            Recovery::HealthCheck => "health_check",
            Recovery::Takeover => "takeover",
        }
    }

    /// The phases this recovery goes through, in order.
    pub fn phases(self) -> &'static [Phase] {
        use Phase::*;
        match self {
            Recovery::None => &[Quiet],
            Recovery::Reboot => &[Detect, Drain, Reboot, Rejoin, Resume],
            Recovery::Replace => &[Detect, Drain, Replace, Rejoin, Resume],
            Recovery::Requeue => &[Detect, Resume],
            Recovery::JobFails => &[Detect, JobEnd],
            Recovery::HealthCheck => &[Detect, HealthCheck, Rejoin],
            Recovery::Takeover => &[Takeover],
        }
    }

    /// The `Action:*` reason HyperPod sets for this recovery.
    pub fn default_reason(self) -> Option<&'static str> {
        match self {
            Recovery::Reboot => Some("Action:Reboot"),
            Recovery::Replace => Some("Action:Replace"),
            _ => None,
        }
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recovery phase, in the order they happen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// First sign the system noticed the fault.
    Detect,
    /// No job left on the node.
    Drain,
    /// Same instance back with a new launch time.
    Reboot,
    /// New instance id, API status `Running`.
    Replace,
    /// Slurm node up, responding, reason cleared.
    Rejoin,
    /// The job running again and past its pre-fault progress.
    Resume,
    /// The job ended (for `job_fails`).
    JobEnd,
    /// Nothing happened (for `recovery: none`).
    Quiet,
    /// HyperPod's deep health check over: the API's status back from
    /// `DeepHealthCheckInProgress` (for `health_check`).
    HealthCheck,
    /// A backup slurmctld in control: Slurm answers while the primary is
    /// down (`scontrol ping`), for `takeover`.
    Takeover,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Detect => "detect",
            Phase::Drain => "drain",
            Phase::Reboot => "reboot",
            Phase::Replace => "replace",
            Phase::Rejoin => "rejoin",
            Phase::Resume => "resume",
            Phase::JobEnd => "job_end",
            Phase::Quiet => "quiet",
            Phase::HealthCheck => "health_check",
            Phase::Takeover => "takeover",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Expect {
    /// The phases this scenario times: the recovery's, less `resume` when
    /// there is no workload to resume.
    pub fn phases(&self, workload: bool) -> Vec<Phase> {
        self.recovery
            .phases()
            .iter()
            .copied()
            .filter(|p| workload || *p != Phase::Resume)
            .collect()
    }
}

/// When each phase must be over, counted from the injection. Only the
/// phases of the expected recovery may be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejoin: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_end: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<Duration>,
}

impl Deadlines {
    /// The deadlines that are set, by phase, in phase order.
    pub fn set(&self) -> BTreeMap<Phase, Duration> {
        [
            (Phase::Detect, self.detect),
            (Phase::Drain, self.drain),
            (Phase::Reboot, self.reboot),
            (Phase::Replace, self.replace),
            (Phase::Rejoin, self.rejoin),
            (Phase::Resume, self.resume),
            (Phase::JobEnd, self.job_end),
            (Phase::HealthCheck, self.health_check),
            (Phase::Takeover, self.takeover),
        ]
        .into_iter()
        .filter_map(|(phase, deadline)| deadline.map(|d| (phase, d)))
        .collect()
    }
}

/// When to stop early and roll back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// Stop if more nodes than this are unhealthy at once.
    #[serde(default)]
    pub max_unhealthy_nodes: Option<u32>,
    /// Stop if the whole scenario runs longer than this.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Stop if any of these probes fails while the fault is active.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Stop conditions on the monitoring, asked before the injection and
    /// all along the watch (after AWS FIS's stop conditions): when one
    /// holds, no further change, rollback, and the scenario ends `aborted`
    /// with the condition and its value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<StopCondition>,
}

/// One stop condition: a PromQL expression on the profile's Prometheus
/// (holds while it returns a series), an Alertmanager alert by name and
/// labels (holds while it is active or suppressed: a silence stops the
/// paging, not the condition), or a CloudWatch alarm by name (holds while
/// its state is `ALARM`). Exactly one of the three. `$target`/`$targets`
/// are substituted as in `expect.monitoring`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopCondition {
    /// The condition's name in reports; defaults to the alert's or the
    /// alarm's name, or `promql-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A PromQL expression: `count(slurm_node_status{status=~"down.*"}) / count(slurm_node_status) > 0.02`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
    /// An alert's name (`alertname`) in Alertmanager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Labels the alert must carry (anchored regexes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// A CloudWatch alarm's name, read with `DescribeAlarms` in the
    /// profile's `sagemaker.region` with its credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_alarm: Option<String>,
}

impl StopCondition {
    /// The condition's name: `name`, else the alert's or alarm's, else
    /// `promql-{index+1}`.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .or_else(|| self.alert.clone())
            .or_else(|| self.cloudwatch_alarm.clone())
            .unwrap_or_else(|| format!("promql-{}", index + 1))
    }
}
