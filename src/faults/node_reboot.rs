//! Node reboot, three ways: `reboot` on the node over SSH, `Action:Reboot`
//! through Slurm, or `BatchRebootClusterNodes`. Rollback resumes a node we
//! marked only if the cluster never acted on it.

use super::{Place, Plan, Step, argv};
use crate::scenario::model::{NodeReboot, RebootMethod};

pub fn plan(reboot: &NodeReboot, targets: &[String]) -> Plan {
    match reboot.method {
        RebootMethod::Ssh => Plan {
            inject: targets
                .iter()
                .map(|n| Step::RunDropping {
                    on: Place::Node(n.clone()),
                    argv: argv(&["reboot"]),
                })
                .collect(),
            ..Plan::default()
        },
        RebootMethod::Slurm => super::mark_through_slurm(targets, "fail", "Action:Reboot"),
        RebootMethod::Sagemaker => Plan {
            inject: vec![Step::ApiReboot {
                nodes: targets.to_vec(),
            }],
            ..Plan::default()
        },
    }
}
