//! GPU stress: the tool runs detached on each target for the duration
//! (`setsid -f`, stdio off the SSH channel, under `timeout`, its pid in a
//! pidfile), is checked to run with exactly its arguments, and rollback
//! stops its process group if it still runs.

use super::{Plan, Step, argv, on_each};
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
    let pidfile = super::STRESS_PIDFILE.to_owned();
    Plan {
        inject: on_each(targets, |on| Step::StartDetached {
            on,
            argv: command.clone(),
            pidfile: pidfile.clone(),
        }),
        verify: on_each(targets, |on| Step::CheckDetached {
            on,
            argv: command.clone(),
            pidfile: pidfile.clone(),
        }),
        follow_up: None,
        rollback: on_each(targets, |on| Step::StopDetached {
            on,
            argv: command.clone(),
            pidfile: pidfile.clone(),
        }),
    }
}
