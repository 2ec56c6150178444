//! What each fault kind does: the steps that inject it, the checks that
//! it took, the steps that undo what the harness did (and only that), and,
//! for an Xid with
//! `crash_task_after`, the task crash that follows. Steps are data, built
//! from quoted argument lists, so `plan` can print them and `run` can
//! execute them; one file per fault kind.

mod daemon;
mod deep_health_check;
pub mod filesystem;
mod gpu_stress;
pub mod hang;
pub mod network;
mod node_reboot;
mod node_replace;
mod process_kill;
pub mod straggler;
pub mod xid;

use crate::cluster::privilege::Root;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::scenario::model::Fault;

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Head,
    Node(String),
}

/// Where a detached process we start records its pid on the node: the
/// stem; a run names its own after itself ([`Plan::for_run`]).
pub const STRESS_PIDFILE: &str = "/run/hpchaos-stress.pid";

/// One thing the harness does. Steps are journaled (undo steps in the
/// write-ahead `intent` records), so the serialised shape is part of the
/// journal format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// A command, as arguments.
    Run { on: Place, argv: Vec<String> },
    /// A command of the scenario's own (`rollback:`), with its timeout.
    RunFor {
        on: Place,
        argv: Vec<String>,
        timeout: Duration,
    },
    /// A command whose connection may drop while it runs (a reboot).
    RunDropping { on: Place, argv: Vec<String> },
    /// Kill the workload's step tasks on a node with a signal.
    KillJobTasks {
        node: String,
        signal: u8,
        count: Option<u32>,
    },
    /// `BatchRebootClusterNodes` for these nodes.
    ApiReboot { nodes: Vec<String> },
    /// `BatchReplaceClusterNodes` for these nodes.
    ApiReplace { nodes: Vec<String> },
    /// `StartClusterHealthCheck` on these nodes with these checks
    /// (`InstanceStress`, `InstanceConnectivity`).
    ApiHealthCheck {
        nodes: Vec<String>,
        checks: Vec<String>,
    },
    /// Set the node `resume` if it still carries `reason` set by us and the
    /// cluster did not act on it.
    ResumeIfUntouched { node: String, reason: String },
    /// Start `argv` detached from the SSH session (its own session and
    /// process group, no stdio on the channel), its pid in `pidfile`.
    StartDetached {
        on: Place,
        argv: Vec<String>,
        pidfile: String,
    },
    /// Fails unless the process in `pidfile` runs with exactly `argv` as
    /// its command line (read from `/proc/PID/cmdline`, so arguments with
    /// spaces and quotes compare as they are).
    CheckDetached {
        on: Place,
        argv: Vec<String>,
        pidfile: String,
    },
    /// SIGINT to the process group in `pidfile` if its leader still runs
    /// `argv` (never a reused pid), SIGKILL if it is still there 10 s
    /// later, then the pidfile removed. Nothing left to stop is fine.
    StopDetached {
        on: Place,
        argv: Vec<String>,
        pidfile: String,
    },
    /// Signal `count` (default: all) of the processes whose full command
    /// line matches `pattern` (a regex), oldest first, never hpchaos's own
    /// shell or its ancestors. Fails, killing nothing, when fewer match.
    KillMatching {
        node: String,
        pattern: String,
        signal: u8,
        count: Option<u32>,
    },
    /// Cancel the jobs marked with this `--comment` (our canary).
    CancelCanary { comment: String },
    /// Stop (SIGSTOP) the workload's task on `node` (rank `rank`, one
    /// drawn at random there with `random`, or the lowest there) and
    /// everything under it, recording them in `pidfile`
    /// ([`hang::STOP_SCRIPT`]).
    StopJobTask {
        node: String,
        rank: Option<u32>,
        /// Draw the rank among the job's ranks on the node (journals
        /// written before it have none: false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        random: bool,
        pidfile: String,
    },
    /// Continue (SIGCONT) what `pidfile` records, the same processes only,
    /// and fail if one is still stopped ([`hang::CONTINUE_SCRIPT`]).
    ContinueStopped { node: String, pidfile: String },
    /// Fill the file system at `path` to `leave_free` bytes free with the
    /// file `pidfile` ([`filesystem::FILL_SCRIPT`]).
    FillFs {
        node: String,
        path: String,
        leave_free: u64,
        pidfile: String,
    },
    /// Remove the fill file ([`filesystem::UNFILL_SCRIPT`]).
    UnfillFs { node: String, pidfile: String },
    /// Slow the node's GPUs (`what`: `clocks` to `value` MHz, `power` to
    /// `value` W), recording what to restore in `pidfile`
    /// ([`straggler::SLOW_SCRIPT`]).
    SlowGpus {
        node: String,
        what: String,
        value: u32,
        pidfile: String,
    },
    /// Restore what `pidfile` records ([`straggler::RESTORE_SCRIPT`]).
    RestoreGpus { node: String, pidfile: String },
    /// Hold the workload's processes on `node` to `millicpus` thousandths
    /// of a CPU (a cgroup CPU quota), recording what to undo in `pidfile`
    /// ([`straggler::QUOTA_SCRIPT`]).
    CpuQuota {
        node: String,
        millicpus: u32,
        pidfile: String,
    },
    /// Undo what `pidfile` records ([`straggler::UNQUOTA_SCRIPT`]).
    LiftCpuQuota { node: String, pidfile: String },
    /// `effect` ([`crate::scenario::model::NetEffect::tc`]) on `node`'s
    /// traffic to `peers` only ([`network::APPLY_SCRIPT`]).
    Netem {
        node: String,
        effect: String,
        peers: Vec<String>,
    },
    /// Remove hpchaos's qdisc from every interface of `node`
    /// ([`network::CLEAR_SCRIPT`]).
    ClearNetem { node: String },
    /// Remount `path` read-only, or read-write again
    /// ([`filesystem::REMOUNT_SCRIPT`]).
    Remount {
        node: String,
        path: String,
        read_only: bool,
    },
    /// Freeze `path` (a stopped FUSE passthrough stacked on it), or thaw
    /// it: continue and unmount that passthrough
    /// ([`filesystem::FREEZE_SCRIPT`]).
    Freeze {
        node: String,
        path: String,
        frozen: bool,
    },
}

/// The first need for root among `steps` that run on a node over SSH
/// (see [`Step::needs_root`]): what a sudo check on those nodes asks for.
pub fn root_on_nodes<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Option<Root> {
    steps
        .into_iter()
        .filter(|s| s.node().is_some())
        .find_map(Step::needs_root)
}

impl Step {
    /// Why the step must run as root, if it must: the one place that says
    /// so for every step a fault plans (`cluster/privilege.rs` says why
    /// each need is one). A scenario's own rollback commands (`RunFor`)
    /// run as the profile's user: they say `sudo -n` themselves where they
    /// need it. The canary's cancel and the process listings need no root;
    /// `ResumeIfUntouched` is Slurm's
    /// ([`crate::cluster::slurm::Slurm::update_node`]).
    pub fn needs_root(&self) -> Option<Root> {
        match self {
            Step::Run { argv, .. } | Step::RunDropping { argv, .. } => {
                let word = |i: usize| argv.get(i).map(String::as_str);
                match (word(0), word(1), word(2)) {
                    (Some("scontrol"), _, _) => Some(Root::SlurmAdmin),
                    (Some("dcgmi"), Some("test"), _) => Some(Root::DcgmInject),
                    (Some("sh"), Some("-c"), Some(xid::KMSG_SCRIPT)) => Some(Root::KernelLog),
                    (Some("sh"), Some("-c"), Some(xid::HEALTH_STATUS_SCRIPT)) => {
                        Some(Root::HealthStatusFile)
                    }
                    (Some("rm"), Some("-f"), Some(xid::HEALTH_STATUS_FILE)) => {
                        Some(Root::HealthStatusFile)
                    }
                    (Some("pkill"), _, _) => Some(Root::SignalOthers),
                    (Some("systemctl"), _, _) => Some(Root::Daemons),
                    (Some("sh"), Some("-c"), Some(daemon::START_SCRIPT)) => Some(Root::Daemons),
                    (Some("reboot"), _, _) => Some(Root::Reboot),
                    _ => None,
                }
            }
            Step::KillJobTasks { .. }
            | Step::KillMatching { .. }
            | Step::StopJobTask { .. }
            | Step::ContinueStopped { .. } => Some(Root::SignalOthers),
            Step::FillFs { .. }
            | Step::UnfillFs { .. }
            | Step::Remount { .. }
            | Step::Freeze { .. } => Some(Root::Filesystems),
            Step::SlowGpus { .. } | Step::RestoreGpus { .. } => Some(Root::GpuSettings),
            Step::CpuQuota { .. } | Step::LiftCpuQuota { .. } => Some(Root::Cgroups),
            Step::Netem { .. } | Step::ClearNetem { .. } => Some(Root::Network),
            Step::StartDetached { .. } | Step::CheckDetached { .. } | Step::StopDetached { .. } => {
                Some(Root::RunState)
            }
            Step::RunFor { .. }
            | Step::CancelCanary { .. }
            | Step::ApiReboot { .. }
            | Step::ApiReplace { .. }
            | Step::ApiHealthCheck { .. }
            | Step::ResumeIfUntouched { .. } => None,
        }
    }

    /// The compute node the step runs on, if it runs on one over SSH.
    pub fn node(&self) -> Option<String> {
        match self {
            Step::Run { on, .. }
            | Step::RunFor { on, .. }
            | Step::RunDropping { on, .. }
            | Step::StartDetached { on, .. }
            | Step::CheckDetached { on, .. }
            | Step::StopDetached { on, .. } => match on {
                Place::Node(n) => Some(n.clone()),
                Place::Head => None,
            },
            Step::KillJobTasks { node, .. }
            | Step::KillMatching { node, .. }
            | Step::StopJobTask { node, .. }
            | Step::ContinueStopped { node, .. }
            | Step::FillFs { node, .. }
            | Step::UnfillFs { node, .. }
            | Step::Remount { node, .. }
            | Step::Freeze { node, .. }
            | Step::SlowGpus { node, .. }
            | Step::RestoreGpus { node, .. }
            | Step::CpuQuota { node, .. }
            | Step::LiftCpuQuota { node, .. }
            | Step::Netem { node, .. }
            | Step::ClearNetem { node } => Some(node.clone()),
            _ => None,
        }
    }

    /// Whether the step is a command run on the head node (which can
    /// carry the lock's fence in the same command).
    pub fn runs_on_head(&self) -> bool {
        matches!(
            self,
            Step::Run {
                on: Place::Head,
                ..
            } | Step::RunFor {
                on: Place::Head,
                ..
            } | Step::RunDropping {
                on: Place::Head,
                ..
            }
        )
    }

    pub fn describe(&self) -> String {
        let place = |p: &Place| match p {
            Place::Head => "head".to_owned(),
            Place::Node(n) => n.clone(),
        };
        match self {
            Step::Run { on, argv }
            | Step::RunDropping { on, argv }
            | Step::RunFor { on, argv, .. } => match argv.as_slice() {
                // The kernel-log Xid in words: its script is long and fixed.
                [sh, c, script, _, gpu, before, after]
                    if sh == "sh" && c == "-c" && script == xid::KMSG_SCRIPT =>
                {
                    format!(
                        "on {}: write to the kernel log (/dev/kmsg): {before}<PCI bus of GPU {gpu}, read with nvidia-smi>{after}",
                        place(on)
                    )
                }
                _ => format!(
                    "on {}: {}",
                    place(on),
                    crate::cluster::quote::command_line(argv)
                ),
            },
            Step::KillJobTasks {
                node,
                signal,
                count,
            } => format!(
                "on {node}: kill -{signal} {} of the workload's step tasks",
                count.map_or("all".to_owned(), |c| c.to_string())
            ),
            Step::ApiReboot { nodes } => {
                format!("SageMaker BatchRebootClusterNodes {}", nodes.join(", "))
            }
            Step::ApiReplace { nodes } => {
                format!("SageMaker BatchReplaceClusterNodes {}", nodes.join(", "))
            }
            Step::ApiHealthCheck { nodes, checks } => format!(
                "SageMaker StartClusterHealthCheck {} on {}",
                checks.join(", "),
                nodes.join(", ")
            ),
            Step::ResumeIfUntouched { node, reason } => {
                format!(
                    "on head: scontrol update nodename={node} state=resume, if {reason} is still ours and nothing happened"
                )
            }
            Step::StartDetached { on, argv, .. } => format!(
                "on {}: start detached: {}",
                place(on),
                crate::cluster::quote::command_line(argv)
            ),
            Step::CheckDetached { on, argv, .. } => format!(
                "on {}: check that `{}` runs",
                place(on),
                crate::cluster::quote::command_line(argv)
            ),
            Step::StopDetached { on, argv, .. } => format!(
                "on {}: stop `{}` if it still runs",
                place(on),
                crate::cluster::quote::command_line(argv)
            ),
            Step::KillMatching {
                node,
                pattern,
                signal,
                count,
            } => format!(
                "on {node}: kill -{signal} {} of the processes matching `{pattern}`",
                count.map_or("all".to_owned(), |c| c.to_string())
            ),
            Step::CancelCanary { comment } => {
                format!("on head: scancel the jobs with comment {comment} (canary)")
            }
            Step::StopJobTask {
                node, rank, random, ..
            } => format!(
                "on {node}: SIGSTOP the workload's task ({}) and every process under it",
                match (rank, random) {
                    (Some(r), _) => format!("rank {r}"),
                    (None, true) => "one of its ranks there, drawn at random".to_owned(),
                    (None, false) => "its lowest rank there".to_owned(),
                }
            ),
            Step::ContinueStopped { node, .. } => {
                format!("on {node}: SIGCONT what the hang stopped, if still stopped")
            }
            Step::FillFs {
                node,
                path,
                leave_free,
                pidfile,
            } => format!(
                "on {node}: fill {path} to {} free with {pidfile}",
                bytesize::ByteSize(*leave_free)
            ),
            Step::UnfillFs { node, pidfile } => format!("on {node}: remove {pidfile}"),
            Step::SlowGpus {
                node,
                what,
                value,
                pidfile,
            } => match what.as_str() {
                "clocks" => format!(
                    "on {node}: lock the GPU clocks at {value} MHz (nvidia-smi -lgc; noted in {pidfile})"
                ),
                _ => format!(
                    "on {node}: GPU power limit to {value} W (the limit before kept in {pidfile})"
                ),
            },
            Step::RestoreGpus { node, pidfile } => {
                format!("on {node}: restore the GPU clocks or power limit noted in {pidfile}")
            }
            Step::CpuQuota {
                node,
                millicpus,
                pidfile,
            } => format!(
                "on {node}: hold the workload's processes to {} CPU{} (a cgroup CPU quota; what it changes noted in {pidfile})",
                *millicpus as f64 / 1000.0,
                if *millicpus > 1000 { "s" } else { "" }
            ),
            Step::LiftCpuQuota { node, pidfile } => format!(
                "on {node}: lift the CPU quota noted in {pidfile} (the quota before, the processes back in their cgroups)"
            ),
            Step::Netem {
                node,
                effect,
                peers,
            } => format!(
                "on {node}: tc {} on its traffic to {} (nothing else: never the head's, never SSH's)",
                match effect.split_once(':') {
                    Some(("rate", mbit)) => format!("rate {mbit} Mbit/s"),
                    Some((_, netem)) => netem.to_owned(),
                    None => "every packet dropped (partition)".to_owned(),
                },
                peers.join(", ")
            ),
            Step::ClearNetem { node } => {
                format!("on {node}: remove hpchaos's tc qdisc (handle 7e57:) from every interface")
            }
            Step::Remount {
                node,
                path,
                read_only,
            } => format!(
                "on {node}: remount {path} {}",
                if *read_only {
                    "read-only"
                } else {
                    "read-write"
                }
            ),
            Step::Freeze { node, path, frozen } => {
                if *frozen {
                    format!(
                        "on {node}: freeze {path} (a stopped bindfs stacked on it: new file operations there wait)"
                    )
                } else {
                    format!("on {node}: thaw {path} (continue and unmount hpchaos's bindfs)")
                }
            }
        }
    }
}

/// A fault made concrete for its targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub inject: Vec<Step>,
    /// Checks, right after the injection, that it took.
    pub verify: Vec<Step>,
    /// Steps to run this long after the injection.
    pub follow_up: Option<(Duration, Vec<Step>)>,
    pub rollback: Vec<Step>,
}

impl Plan {
    /// The plan as run `run_id` carries it out: its detached processes'
    /// pidfiles named after the run (`/run/hpchaos-stress-RUN.pid`), so a
    /// second run's stress on the same node, or its rollback, never takes
    /// this run's pidfile for its own, and `recover` stops this run's.
    pub fn for_run(mut self, run_id: &str) -> Plan {
        let own = |pidfile: &mut String| {
            if let Some(stem) = pidfile.strip_suffix(".pid") {
                *pidfile = format!("{stem}-{run_id}.pid");
            }
        };
        let steps = self
            .inject
            .iter_mut()
            .chain(&mut self.verify)
            .chain(&mut self.rollback)
            .chain(self.follow_up.iter_mut().flat_map(|(_, s)| s.iter_mut()));
        for step in steps {
            match step {
                Step::StartDetached { pidfile, .. }
                | Step::CheckDetached { pidfile, .. }
                | Step::StopDetached { pidfile, .. }
                | Step::StopJobTask { pidfile, .. }
                | Step::ContinueStopped { pidfile, .. }
                | Step::FillFs { pidfile, .. }
                | Step::UnfillFs { pidfile, .. }
                | Step::SlowGpus { pidfile, .. }
                | Step::RestoreGpus { pidfile, .. }
                | Step::CpuQuota { pidfile, .. }
                | Step::LiftCpuQuota { pidfile, .. } => own(pidfile),
                _ => {}
            }
        }
        self
    }
}

pub fn plan(fault: &Fault, targets: &[String]) -> Plan {
    match fault {
        Fault::GpuStress(stress) => gpu_stress::plan(stress, targets),
        Fault::ProcessKill(kill) => process_kill::plan(kill, targets),
        Fault::NodeReboot(reboot) => node_reboot::plan(reboot, targets),
        Fault::NodeReplace(replace) => node_replace::plan(replace, targets),
        Fault::Xid(xid) => xid::plan(xid, targets),
        Fault::DeepHealthCheck(check) => deep_health_check::plan(check, targets),
        Fault::Hang(h) => hang::plan(h, targets),
        Fault::Daemon(d) => daemon::plan(d, targets),
        Fault::Filesystem(f) => filesystem::plan(f, targets),
        Fault::Straggler(st) => straggler::plan(st, targets),
        Fault::Network(n) => network::plan(n, targets),
    }
}

/// Marks nodes the way HyperPod's agent does (`scontrol update
/// state=STATE reason=REASON`); rollback resumes a node still carrying our
/// reason if the cluster never acted on it.
fn mark_through_slurm(targets: &[String], state: &str, reason: &str) -> Plan {
    Plan {
        inject: targets
            .iter()
            .map(|n| Step::Run {
                on: Place::Head,
                argv: argv(&[
                    "scontrol",
                    "update",
                    &format!("nodename={n}"),
                    &format!("state={state}"),
                    &format!("reason={reason}"),
                ]),
            })
            .collect(),
        rollback: targets
            .iter()
            .map(|n| Step::ResumeIfUntouched {
                node: n.clone(),
                reason: reason.to_owned(),
            })
            .collect(),
        ..Plan::default()
    }
}

/// One step on each target node.
fn on_each(targets: &[String], step: impl Fn(Place) -> Step) -> Vec<Step> {
    targets
        .iter()
        .map(|n| step(Place::Node(n.clone())))
        .collect()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The pids to signal among `ps -eo pid,ppid,args` output: the children of
/// the job's step daemons (`slurmstepd: [JOB.STEP]`, not the batch step).
pub fn step_task_pids(ps: &str, job: u64) -> Vec<u32> {
    let rows: Vec<(u32, u32, &str)> = ps
        .lines()
        .filter_map(|line| {
            let (pid, rest) = line.trim_start().split_once(char::is_whitespace)?;
            let (ppid, args) = rest.trim_start().split_once(char::is_whitespace)?;
            Some((pid.parse().ok()?, ppid.parse().ok()?, args.trim()))
        })
        .collect();
    let prefix = format!("slurmstepd: [{job}.");
    let steps: Vec<u32> = rows
        .iter()
        .filter(|(_, _, args)| {
            args.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|step| step.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(pid, _, _)| *pid)
        .collect();
    rows.iter()
        .filter(|(_, ppid, _)| steps.contains(ppid))
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// Run on a node: prints the listing shell's pid, then (the shell having
/// become `ps`) every process as `PID PPID ELAPSED_SECONDS ARGS`.
pub const PROCESS_LISTING: &str = "echo $$; exec ps -eo pid=,ppid=,etimes=,args=";

/// The pids to signal for [`Step::KillMatching`], from [`PROCESS_LISTING`]'s
/// output: processes whose full command line matches `pattern`, oldest
/// first, never the listing itself or any of its ancestors (our SSH
/// session and shell: a pattern must not kill the harness's own channel).
/// `count` of them, or all; an error, choosing none, when fewer match.
/// Why no process was picked to kill.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("the process listing did not start with its own pid")]
    NoOwnPid,
    /// Only hpchaos's own remote shell and its ancestors match.
    #[error(
        "only hpchaos's own processes match `{pattern}` ({own}: its remote shell and their ancestors, never killed)"
    )]
    OnlyOurs { pattern: String, own: usize },
    #[error("no process matches `{0}`")]
    NoMatch(String),
    #[error("only {found} process(es) match `{pattern}`, count is {wanted}: none killed")]
    TooFew {
        found: usize,
        pattern: String,
        wanted: usize,
    },
}

pub fn pick_processes(
    listing: &str,
    pattern: &regex::Regex,
    count: Option<u32>,
) -> Result<Vec<u32>, PickError> {
    let mut lines = listing.lines();
    let me: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or(PickError::NoOwnPid)?;
    let rows: Vec<(u32, u32, u64, &str)> = lines
        .filter_map(|line| {
            let mut rest = line.trim_start();
            let mut field = || {
                let (word, tail) = rest.split_once(char::is_whitespace)?;
                rest = tail.trim_start();
                Some(word)
            };
            let pid = field()?.parse().ok()?;
            let ppid = field()?.parse().ok()?;
            let age = field()?.parse().ok()?;
            Some((pid, ppid, age, rest.trim_end()))
        })
        .collect();
    // Our own chain: the listing and every ancestor up to init.
    let mut ours = std::collections::BTreeSet::from([me]);
    let mut at = me;
    while let Some((_, parent, _, _)) = rows.iter().find(|(pid, ..)| *pid == at) {
        if *parent == 0 || !ours.insert(*parent) {
            break;
        }
        at = *parent;
    }
    let mut matched: Vec<(u64, u32)> = rows
        .iter()
        .filter(|(pid, _, _, args)| !ours.contains(pid) && pattern.is_match(args))
        .map(|(pid, _, age, _)| (*age, *pid))
        .collect();
    // Oldest first (longest running), then by pid for a stable order.
    matched.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let found = matched.len();
    let wanted = count.map_or(found, |c| c as usize);
    if found == 0 {
        let own = rows
            .iter()
            .filter(|(pid, _, _, args)| ours.contains(pid) && pattern.is_match(args))
            .count();
        let pattern = pattern.as_str().to_owned();
        return Err(if own > 0 {
            PickError::OnlyOurs { pattern, own }
        } else {
            PickError::NoMatch(pattern)
        });
    }
    if found < wanted {
        return Err(PickError::TooFew {
            found,
            pattern: pattern.as_str().to_owned(),
            wanted,
        });
    }
    Ok(matched
        .into_iter()
        .take(wanted)
        .map(|(_, pid)| pid)
        .collect())
}

/// `/proc/PID/cmdline` as arguments (NUL-separated, NUL-terminated).
pub fn parse_cmdline(raw: &str) -> Vec<String> {
    let raw = raw.strip_suffix('\0').unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split('\0').map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_exactly_count_oldest_first_never_our_own_chain() {
        // 900 is the listing (our shell became ps), 890 its sshd session,
        // whose command line happens to match too.
        let listing = "900\n    1     0 5000 /sbin/init\n  890     1   10 sshd: root@notty sleep\n  900   890    0 ps -eo pid=,ppid=,etimes=,args=\n  101     1  300 sleep 86400\n  102     1  900 sleep 86400\n  103     1  600 sleep 86400\n  104     1   20 /bin/sleep 5\n";
        let re = regex::Regex::new("sleep").unwrap();
        assert_eq!(
            pick_processes(listing, &re, Some(3)).unwrap(),
            vec![102, 103, 101]
        );
        assert_eq!(pick_processes(listing, &re, None).unwrap().len(), 4);
        let err = pick_processes(listing, &re, Some(5)).unwrap_err();
        assert!(matches!(
            err,
            PickError::TooFew {
                found: 4,
                wanted: 5,
                ..
            }
        ));
        let err = err.to_string();
        assert!(
            err.contains("only 4") && err.contains("none killed"),
            "{err}"
        );
        let none = regex::Regex::new("no-such-thing").unwrap();
        assert!(
            pick_processes(listing, &none, None)
                .unwrap_err()
                .to_string()
                .contains("no process")
        );
        // A pattern that only matches our own chain is said to.
        let me = regex::Regex::new("etimes|notty").unwrap();
        let err = pick_processes(listing, &me, Some(1)).unwrap_err();
        assert!(matches!(err, PickError::OnlyOurs { own: 2, .. }), "{err}");
        assert!(
            err.to_string()
                .contains("only hpchaos's own processes match")
        );
    }

    #[test]
    fn command_lines_keep_spaces_and_quotes() {
        assert_eq!(
            parse_cmdline("timeout\0--signal=INT\u{0}30\0sh\0-c\0sleep 30; echo 'x'\0"),
            [
                "timeout",
                "--signal=INT",
                "30",
                "sh",
                "-c",
                "sleep 30; echo 'x'"
            ]
        );
        assert!(parse_cmdline("").is_empty());
    }

    #[test]
    fn slurm_marks_are_hyperpods_and_rolled_back_only_if_untouched() {
        use crate::scenario::model::{NodeReplace, ReplaceMethod};
        let targets = vec!["ip-10-1-0-12".to_owned()];
        let plan = plan(
            &Fault::NodeReplace(NodeReplace {
                method: ReplaceMethod::Slurm,
                force: true,
            }),
            &targets,
        );
        let inject: Vec<_> = plan.inject.iter().map(Step::describe).collect();
        assert_eq!(
            inject,
            ["on head: scontrol update nodename=ip-10-1-0-12 state=down reason=Action:Replace"]
        );
        assert_eq!(
            plan.rollback,
            [Step::ResumeIfUntouched {
                node: "ip-10-1-0-12".into(),
                reason: "Action:Replace".into()
            }]
        );
    }

    #[test]
    /// The Xid line travels as an argument, never as shell text, and goes to
    /// the kernel log itself (`/dev/kmsg`), not to syslog.
    fn a_kernel_log_xid_passes_the_line_as_an_argument_not_as_shell_text() {
        use crate::scenario::model::{Xid, XidMethod};
        let plan = plan(
            &Fault::Xid(Xid {
                code: 74,
                gpu: 1,
                method: XidMethod::KernelLog,
                crash_task_after: None,
            }),
            &["n".to_owned()],
        );
        let Step::Run { argv, .. } = &plan.inject[0] else {
            panic!("a command")
        };
        assert_eq!(argv[..2], ["sh".to_owned(), "-c".to_owned()]);
        assert!(
            argv[2].contains("/dev/kmsg") && !argv[2].contains("syslog"),
            "{argv:?}"
        );
        // The GPU's index, then the line around its bus: the node reads
        // the bus (field case 20), the line is never shell text; said in
        // words.
        assert_eq!(
            plan.inject[0].describe(),
            "on n: write to the kernel log (/dev/kmsg): NVRM: Xid (PCI:<PCI bus of GPU 1, read with nvidia-smi>): 74, pid='<unknown>', name=<unknown>, NVLink: fatal error detected on link 0(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)"
        );
        assert_eq!(argv[4], "1");
        assert_eq!(argv[5], "NVRM: Xid (PCI:");
        assert!(argv[6].starts_with("): 74, pid='<unknown>'"), "{}", argv[6]);
    }

    #[test]
    fn finds_the_step_tasks_not_the_batch_script() {
        let ps = "    PID    PPID COMMAND\n   35       1 slurmstepd: [7.batch]\n   39      35 /bin/sh /var/spool/slurmd/job00007/slurm_script\n   50       1 slurmstepd: [7.0]\n   55      50 /usr/bin/sleep 600\n   60       1 slurmstepd: [8.0]\n   61      60 python train.py\n";
        assert_eq!(step_task_pids(ps, 7), vec![55]);
        assert_eq!(step_task_pids(ps, 8), vec![61]);
        assert!(step_task_pids(ps, 9).is_empty());
    }
}
