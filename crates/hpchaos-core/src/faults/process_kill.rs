//! Process kill: the workload's step tasks, slurmd, or processes matching a
//! pattern (exactly `count` of them, or all; a kill that matches nothing
//! is a failed injection). A kill cannot be undone; recovery is the
//! cluster's business.

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
            // Chosen by the harness from a process listing, not by pkill:
            // exactly `count`, oldest first, never our own shell.
            KillTarget::Pattern(pattern) => Step::KillMatching {
                node: node.clone(),
                pattern: pattern.clone(),
                signal,
                count: kill.count,
            },
        })
        .collect();
    Plan {
        inject,
        ..Plan::default()
    }
}
