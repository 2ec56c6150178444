//! What each fault kind does: the steps that inject it, the checks that
//! it took, the steps that undo what the harness did (and only that), and,
//! for an Xid with
//! `crash_task_after`, the task crash that follows. Steps are data, built
//! from quoted argument lists, so `plan` can print them and `run` can
//! execute them; one file per fault kind.

mod gpu_stress;
mod node_reboot;
mod node_replace;
mod process_kill;
mod xid;

use crate::duration::Duration;
use crate::scenario::model::Fault;

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Head,
    Node(String),
}

/// One thing the harness does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A command, as arguments.
    Run { on: Place, argv: Vec<String> },
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
    /// Set the node `resume` if it still carries `reason` set by us and the
    /// cluster did not act on it.
    ResumeIfUntouched { node: String, reason: String },
    /// Fails unless a process whose whole command line is `pattern` runs.
    CheckRunning { on: Place, pattern: String },
    /// SIGINT to processes whose whole command line is `pattern`; none left
    /// (it ended by itself) is fine.
    StopIfRunning { on: Place, pattern: String },
}

impl Step {
    pub fn describe(&self) -> String {
        let place = |p: &Place| match p {
            Place::Head => "head".to_owned(),
            Place::Node(n) => n.clone(),
        };
        match self {
            Step::Run { on, argv } | Step::RunDropping { on, argv } => {
                format!(
                    "on {}: {}",
                    place(on),
                    crate::cluster::quote::command_line(argv)
                )
            }
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
            Step::ResumeIfUntouched { node, reason } => {
                format!(
                    "on head: scontrol update nodename={node} state=resume, if {reason} is still ours and nothing happened"
                )
            }
            Step::CheckRunning { on, pattern } => {
                format!("on {}: check that `{pattern}` runs", place(on))
            }
            Step::StopIfRunning { on, pattern } => {
                format!("on {}: stop `{pattern}` if it still runs", place(on))
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

pub fn plan(fault: &Fault, targets: &[String]) -> Plan {
    match fault {
        Fault::GpuStress(stress) => gpu_stress::plan(stress, targets),
        Fault::ProcessKill(kill) => process_kill::plan(kill, targets),
        Fault::NodeReboot(reboot) => node_reboot::plan(reboot, targets),
        Fault::NodeReplace(replace) => node_replace::plan(replace, targets),
        Fault::Xid(xid) => xid::plan(xid, targets),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            argv[4].starts_with("NVRM: Xid (PCI:0000:63:00): 74,"),
            "{}",
            argv[4]
        );
    }

    #[test]
    fn finds_the_step_tasks_not_the_batch_script() {
        let ps = "    PID    PPID COMMAND\n   35       1 slurmstepd: [7.batch]\n   39      35 /bin/sh /var/spool/slurmd/job00007/slurm_script\n   50       1 slurmstepd: [7.0]\n   55      50 /usr/bin/sleep 600\n   60       1 slurmstepd: [8.0]\n   61      60 python train.py\n";
        assert_eq!(step_task_pids(ps, 7), vec![55]);
        assert_eq!(step_task_pids(ps, 8), vec![61]);
        assert!(step_task_pids(ps, 9).is_empty());
    }
}
