//! A simulated NVIDIA Xid: a DCGM injection (field 230), an `NVRM: Xid`
//! line in the kernel log, or the health-check status file; optionally
//! the training task crashed afterwards, as people trigger auto-resume by
//! hand. Rollback removes the status file if we wrote it; injected DCGM
//! values expire on their own and a log line cannot be unwritten.

use super::{Plan, Step, argv, on_each};
use crate::scenario::model::{Xid, XidMethod};

/// `NVRM: Xid (PCI:0000:b9:00): 79, pid=..., ...` as the driver writes it.
pub fn kernel_line(code: u32, gpu: u32) -> String {
    format!(
        "NVRM: Xid (PCI:0000:{:02x}:00): {code}, pid=0, name=hpchaos, injected by hpchaos for GPU {gpu}",
        0x53 + gpu * 16
    )
}

pub fn plan(xid: &Xid, targets: &[String]) -> Plan {
    let code = xid.code.to_string();
    let gpu = xid.gpu.to_string();
    let command = match xid.method {
        XidMethod::DcgmInject => argv(&[
            "dcgmi", "test", "--inject", "--gpuid", &gpu, "-f", "230", "-v", &code,
        ]),
        // The script is fixed; the line travels as an argument.
        XidMethod::KernelLog => argv(&[
            "sh",
            "-c",
            "printf '%s %s kernel: %s\\n' \"$(date '+%b %d %T')\" \"$(hostname)\" \"$1\" >> /var/log/syslog",
            "hpchaos",
            &kernel_line(xid.code, xid.gpu),
        ]),
        XidMethod::HealthStatusFile => argv(&[
            "sh",
            "-c",
            "echo 1 >> /var/run/sagemaker_healthcheck_status",
        ]),
    };
    let rollback = match xid.method {
        XidMethod::HealthStatusFile => on_each(targets, |on| Step::Run {
            on,
            argv: argv(&["rm", "-f", "/var/run/sagemaker_healthcheck_status"]),
        }),
        _ => Vec::new(),
    };
    Plan {
        inject: on_each(targets, |on| Step::Run {
            on,
            argv: command.clone(),
        }),
        follow_up: xid.crash_task_after.map(|after| {
            (
                after,
                targets
                    .iter()
                    .map(|n| Step::KillJobTasks {
                        node: n.clone(),
                        signal: 9,
                        count: Some(1),
                    })
                    .collect(),
            )
        }),
        rollback,
        ..Plan::default()
    }
}
