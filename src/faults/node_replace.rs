//! Node replace: `Action:Replace` through Slurm (`fail`, or `down` to kill
//! the jobs on it now) or `BatchReplaceClusterNodes`. Rollback resumes a
//! node we marked only if the cluster never acted on it.

use super::{Place, Plan, Step, argv};
use crate::scenario::model::{NodeReplace, ReplaceMethod};

pub fn plan(replace: &NodeReplace, targets: &[String]) -> Plan {
    match replace.method {
        ReplaceMethod::Slurm => {
            let state = if replace.force {
                "state=down"
            } else {
                "state=fail"
            };
            Plan {
                inject: targets
                    .iter()
                    .map(|n| Step::Run {
                        on: Place::Head,
                        argv: argv(&[
                            "scontrol",
                            "update",
                            &format!("nodename={n}"),
                            state,
                            "reason=Action:Replace",
                        ]),
                    })
                    .collect(),
                follow_up: None,
                rollback: targets
                    .iter()
                    .map(|n| Step::ResumeIfUntouched {
                        node: n.clone(),
                        reason: "Action:Replace".to_owned(),
                    })
                    .collect(),
            }
        }
        ReplaceMethod::Sagemaker => Plan {
            inject: vec![Step::ApiReplace {
                nodes: targets.to_vec(),
            }],
            ..Plan::default()
        },
    }
}
