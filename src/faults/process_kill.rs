//! Process kill: the workload's step tasks, slurmd, or processes matching a
//! pattern. A kill cannot be undone; recovery is the cluster's business.

use super::{Place, Plan, Step, argv};
use crate::scenario::model::{KillTarget, ProcessKill};

pub fn plan(kill: &ProcessKill, targets: &[String]) -> Plan {
    let signal = kill.signal.number();
    let inject = targets
        .iter()
        .map(|node| match &kill.target {
            KillTarget::JobTasks => Step::KillJobTasks {
                node: node.clone(),
                signal,
                count: kill.count,
            },
            KillTarget::Slurmd => Step::Run {
                on: Place::Node(node.clone()),
                argv: argv(&["pkill", &format!("-{signal}"), "-x", "slurmd"]),
            },
            KillTarget::Pattern(pattern) => Step::Run {
                on: Place::Node(node.clone()),
                argv: match kill.count {
                    // pkill has no "at most N": the oldest N via pgrep.
                    Some(count) => argv(&[
                        "sh",
                        "-c",
                        "pgrep -o -f -- \"$1\" | head -n \"$2\" | xargs -r kill -\"$3\"",
                        "hpchaos",
                        pattern,
                        &count.to_string(),
                        &signal.to_string(),
                    ]),
                    None => argv(&["pkill", &format!("-{signal}"), "-f", "--", pattern]),
                },
            },
        })
        .collect();
    Plan {
        inject,
        ..Plan::default()
    }
}
