//! Node replace: `Action:Replace` through Slurm (`fail`, or `down` to kill
//! the jobs on it now) or `BatchReplaceClusterNodes`. Rollback resumes a
//! node we marked only if the cluster never acted on it.

use super::{Plan, Step};
use crate::scenario::model::{NodeReplace, ReplaceMethod};

pub fn plan(replace: &NodeReplace, targets: &[String]) -> Plan {
    match replace.method {
        ReplaceMethod::Slurm => {
            let state = if replace.force { "down" } else { "fail" };
            super::mark_through_slurm(targets, state, "Action:Replace")
        }
        ReplaceMethod::Sagemaker => Plan {
            inject: vec![Step::ApiReplace {
                nodes: targets.to_vec(),
            }],
            ..Plan::default()
        },
    }
}
