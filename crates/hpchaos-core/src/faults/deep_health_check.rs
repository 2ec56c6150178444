//! Deep health check: `StartClusterHealthCheck` on the targets. HyperPod
//! takes them out of service in a Slurm maintenance reservation while it
//! checks them, and gives them back (or repairs one that fails). Nothing
//! is rolled back: a check, once started, is HyperPod's to finish
//! (the API has no way to stop one).

use super::{Plan, Step};
use crate::scenario::model::DeepHealthCheck;

pub fn plan(check: &DeepHealthCheck, targets: &[String]) -> Plan {
    Plan {
        inject: vec![Step::ApiHealthCheck {
            nodes: targets.to_vec(),
            checks: check.checks.iter().map(|c| c.as_str().to_owned()).collect(),
        }],
        ..Plan::default()
    }
}
