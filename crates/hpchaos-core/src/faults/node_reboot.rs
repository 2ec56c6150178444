//! Node reboot, three ways: `reboot` on the node over SSH, `Action:Reboot`
//! through Slurm, or `BatchRebootClusterNodes`. Rollback resumes a node we
//! marked only if the cluster never acted on it.

use super::{Plan, Step, argv, on_each};
use crate::scenario::model::{NodeReboot, RebootMethod};

pub fn plan(reboot: &NodeReboot, targets: &[String]) -> Plan {
    match reboot.method {
        RebootMethod::Ssh => Plan {
            inject: on_each(targets, |on| Step::RunDropping {
                on,
                argv: argv(&["reboot"]),
            }),
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
