//! GPU stress: the tool runs detached on each target for the duration
//! (`setsid -f timeout ...`), and rollback stops it if it still runs.

use super::{Place, Plan, Step, argv};
use crate::scenario::model::{GpuSelection, GpuStress, StressTool};

pub fn plan(stress: &GpuStress, targets: &[String]) -> Plan {
    let secs = stress.duration.as_std().as_secs().max(1).to_string();
    let mut tool = match &stress.tool {
        StressTool::DcgmDiag { level } => argv(&["dcgmi", "diag", "-r", &level.to_string()]),
        StressTool::GpuBurn => argv(&["gpu_burn", &secs]),
        StressTool::Dcgmproftester => argv(&["dcgmproftester", "-d", &secs]),
        StressTool::Custom { command } => command.clone(),
    };
    if let (GpuSelection::Indexes(gpus), StressTool::DcgmDiag { .. }) = (&stress.gpus, &stress.tool)
    {
        let list = gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        tool.extend(argv(&["-i", &list]));
    }
    let mut command = argv(&["timeout", "--signal=INT", &secs]);
    command.extend(tool);
    let pattern = crate::cluster::quote::command_line(&command);
    let mut detached = argv(&["setsid", "-f"]);
    detached.extend(command);
    Plan {
        inject: targets
            .iter()
            .map(|node| Step::Run {
                on: Place::Node(node.clone()),
                argv: detached.clone(),
            })
            .collect(),
        follow_up: None,
        rollback: targets
            .iter()
            .map(|node| Step::Run {
                on: Place::Node(node.clone()),
                argv: argv(&["pkill", "-INT", "-f", "-x", &pattern]),
            })
            .collect(),
    }
}
