//! GPU stress: the tool runs detached on each target for the duration
//! (`setsid -f`, stdio off the SSH channel, under `timeout`), is checked to
//! be running, and rollback stops it if it still runs.

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
    let pattern = crate::cluster::quote::command_line(&command);
    // Detached from the SSH session: its own session, and no stdio tied to
    // the channel (otherwise the tool dies when the channel closes).
    let mut detached = argv(&[
        "setsid",
        "-f",
        "sh",
        "-c",
        "exec \"$@\" </dev/null >/dev/null 2>&1",
        "hpchaos-stress",
    ]);
    detached.extend(command);
    Plan {
        inject: on_each(targets, |on| Step::Run {
            on,
            argv: detached.clone(),
        }),
        verify: on_each(targets, |on| Step::CheckRunning {
            on,
            pattern: pattern.clone(),
        }),
        follow_up: None,
        rollback: on_each(targets, |on| Step::StopIfRunning {
            on,
            pattern: pattern.clone(),
        }),
    }
}
