//! A simulated NVIDIA Xid: a DCGM injection (field 230), an `NVRM: Xid`
//! record written to the kernel log (`/dev/kmsg`, which `dmesg`,
//! `journalctl -k` and HyperPod's agent read) in the driver's own format,
//! or the health-check status file; optionally
//! the training task crashed afterwards, as people trigger auto-resume by
//! hand. Rollback removes the status file if we wrote it; injected DCGM
//! values expire on their own and a log line cannot be unwritten.

use super::{Plan, Step, argv, on_each};
use crate::scenario::model::{Xid, XidMethod};

/// `NVRM: Xid (PCI:0000:53:00): 79, pid='<unknown>', name=<unknown>, GPU
/// has fallen off the bus.`: the record R550+ drivers write for Xid `code`
/// on GPU `gpu` (PCI bus ids as on a p5.48xlarge; source: NVIDIA's Xid
/// catalog and field case 13).
pub fn kernel_line(code: u32, gpu: u32) -> String {
    let what = match code {
        13 => "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Illegal Instruction Parameter",
        31 => {
            "Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f_00000000. Fault is of type FAULT_PDE ACCESS_TYPE_READ"
        }
        43 => "Ch 00000010",
        48 => {
            "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0."
        }
        63 => "Row Remapper: New row marked for remapping, reset gpu to activate.",
        64 => "Row Remapper: Failed to mark a row for remapping.",
        74 => "NVLink: fatal error detected on link 0(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)",
        79 => "GPU has fallen off the bus.",
        92 => "High single-bit ECC error rate",
        95 => "Uncontained: FBHUB. RST: Yes, D-RST: No",
        119 => "Timeout after 6s of waiting for RPC response from GPU0 GSP!",
        _ => "injected by hpchaos",
    };
    format!(
        "NVRM: Xid (PCI:0000:{:02x}:00): {code}, pid='<unknown>', name=<unknown>, {what}",
        0x53 + gpu * 16
    )
}

/// The Xid code of a kernel log line, R535 or R550+ style, with or
/// without dmesg's time or a `<priority>` prefix: the number after `):`.
pub fn parse_kernel_line(line: &str) -> Option<u32> {
    let (_, rest) = line.split_once("NVRM: Xid (")?;
    let (_, after) = rest.split_once("):")?;
    after
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// HyperPod's health-check status file: a line in it marks the node bad.
pub const HEALTH_STATUS_FILE: &str = "/var/run/sagemaker_healthcheck_status";

/// Marks the node bad through [`HEALTH_STATUS_FILE`].
pub const HEALTH_STATUS_SCRIPT: &str = "echo 1 >> /var/run/sagemaker_healthcheck_status";

/// Writes `$1` to the kernel log as one record at `err` level.
pub const KMSG_SCRIPT: &str = "printf '<3>%s\\n' \"$1\" >> /dev/kmsg";

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
            KMSG_SCRIPT,
            "hpchaos",
            &kernel_line(xid.code, xid.gpu),
        ]),
        XidMethod::HealthStatusFile => argv(&["sh", "-c", HEALTH_STATUS_SCRIPT]),
    };
    let rollback = match xid.method {
        XidMethod::HealthStatusFile => on_each(targets, |on| Step::Run {
            on,
            argv: argv(&["rm", "-f", HEALTH_STATUS_FILE]),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_case_13_the_drivers_lines_and_ours_read_alike() {
        let text = include_str!("../../../../tests/fixtures/field-cases/13-xid-kernel-lines.txt");
        let codes: Vec<u32> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(parse_kernel_line)
            .collect();
        assert_eq!(codes, [79, 13, 109]);
        // Ours is the R550+ record shape of the fixture's second line.
        let shape = regex::Regex::new(
            r"^NVRM: Xid \(PCI:0000:[0-9a-f]{2}:00\): (\d+), pid='<unknown>', name=<unknown>, \S",
        )
        .unwrap();
        for code in [13, 31, 48, 64, 74, 79, 95, 119, 500] {
            let line = kernel_line(code, 2);
            assert!(shape.is_match(&line), "{line}");
            assert_eq!(parse_kernel_line(&line), Some(code));
            assert_eq!(parse_kernel_line(&format!("<3>{line}")), Some(code));
        }
        assert_eq!(
            parse_kernel_line("NVRM: GPU at PCI:0000:53:00: GPU-1"),
            None
        );
    }
}
