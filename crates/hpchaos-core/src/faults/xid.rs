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
/// on the GPU at PCI `bus` (`0000:53:00`: domain, bus, device, as the
/// driver prints them, lower case; see [`kernel_bus`]). Source: NVIDIA's
/// Xid catalog, field cases 13 and 20.
pub fn kernel_line(code: u32, bus: &str) -> String {
    let (before, after) = kernel_line_around_bus(code);
    format!("{before}{bus}{after}")
}

/// [`kernel_line`] cut where the bus goes: the node fills it in with its
/// own GPU's bus ([`KMSG_SCRIPT`]).
pub fn kernel_line_around_bus(code: u32) -> (String, String) {
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
    (
        "NVRM: Xid (PCI:".to_owned(),
        format!("): {code}, pid='<unknown>', name=<unknown>, {what}"),
    )
}

/// The kernel's form of a bus id as `nvidia-smi --query-gpu=pci.bus_id`
/// prints it: `00000000:A8:00.0` → `0000:a8:00` (the domain's last four
/// digits, bus and device, no function, lower case, as the driver writes
/// `NVRM: Xid (PCI:0000:a8:00)`). `None` for any other shape.
pub fn kernel_bus(smi_bus_id: &str) -> Option<String> {
    let mut parts = smi_bus_id.trim().split(':');
    let (domain, bus, device) = (parts.next()?, parts.next()?, parts.next()?);
    let device = device.split('.').next()?;
    let hex = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit());
    if parts.next().is_some()
        || domain.len() < 4
        || !hex(domain)
        || bus.len() != 2
        || !hex(bus)
        || device.len() != 2
        || !hex(device)
    {
        return None;
    }
    Some(format!("{}:{bus}:{device}", &domain[domain.len() - 4..]).to_ascii_lowercase())
}

/// A p5.48xlarge's GPU buses, GPU 0 to 7, as `nvidia-smi` prints them
/// (field case 20: dcgm-exporter's `pci_bus_id` labels on a real p5): the
/// lab's GPUs have these.
pub const P5_BUS_IDS: [&str; 8] = [
    "00000000:53:00.0",
    "00000000:64:00.0",
    "00000000:75:00.0",
    "00000000:86:00.0",
    "00000000:97:00.0",
    "00000000:A8:00.0",
    "00000000:B9:00.0",
    "00000000:CA:00.0",
];

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

/// Writes one record at `err` level to the kernel log for GPU `$1`: `$2`,
/// the GPU's PCI bus as the driver writes it, then `$3`. The bus is read
/// on the node just before (`nvidia-smi --query-gpu=index,pci.bus_id`,
/// turned as [`kernel_bus`] does): an Xid names a GPU that exists, which
/// detectors that map the bus to a GPU need (field case 20). A GPU index
/// the node does not list is refused (exit 3), nothing written.
pub const KMSG_SCRIPT: &str = r#"bus=$(nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader 2>/dev/null | awk -F', *' -v g="$1" '$1 == g { n = split($2, p, ":"); if (n == 3) { sub(/\..*/, "", p[3]); print tolower(substr(p[1], length(p[1]) - 3) ":" p[2] ":" p[3]) } }')
[ -n "$bus" ] || { echo "GPU $1 is not on this node: nvidia-smi --query-gpu=index,pci.bus_id lists no GPU $1" >&2; exit 3; }
printf '<3>%s%s%s\n' "$2" "$bus" "$3" >> /dev/kmsg"#;

pub fn plan(xid: &Xid, targets: &[String]) -> Plan {
    let code = xid.code.to_string();
    let gpu = xid.gpu.to_string();
    let command = match xid.method {
        XidMethod::DcgmInject => argv(&[
            "dcgmi", "test", "--inject", "--gpuid", &gpu, "-f", "230", "-v", &code,
        ]),
        // The script is fixed; the line travels as an argument.
        XidMethod::KernelLog => {
            let (before, after) = kernel_line_around_bus(xid.code);
            argv(&["sh", "-c", KMSG_SCRIPT, "hpchaos", &gpu, &before, &after])
        }
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
            let line = kernel_line(code, "0000:75:00");
            assert!(shape.is_match(&line), "{line}");
            assert_eq!(parse_kernel_line(&line), Some(code));
            assert_eq!(parse_kernel_line(&format!("<3>{line}")), Some(code));
        }
        assert_eq!(
            parse_kernel_line("NVRM: GPU at PCI:0000:53:00: GPU-1"),
            None
        );
    }

    /// The case's second half: what a p5's driver writes for GPUs 0-7,
    /// from the buses nvidia-smi reports.
    fn field_case_20() -> Vec<String> {
        let text = include_str!("../../../../tests/fixtures/field-cases/20-xid-pci-bus-ids.txt");
        let driver = text
            .split("# the driver on a p5.48xlarge would write")
            .nth(1)
            .unwrap();
        driver
            .lines()
            .skip(1)
            .filter(|l| l.starts_with("NVRM"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn field_case_20_the_line_names_the_gpus_real_bus() {
        let driver = field_case_20();
        assert_eq!(driver.len(), 8);
        for (gpu, smi) in P5_BUS_IDS.iter().enumerate() {
            let bus = kernel_bus(smi).unwrap();
            assert_eq!(kernel_line(79, &bus), driver[gpu], "gpu {gpu}");
        }
        // Other shapes nvidia-smi and lspci print, and what is refused.
        assert_eq!(
            kernel_bus("00000001:0A:1F.0").as_deref(),
            Some("0001:0a:1f")
        );
        assert_eq!(kernel_bus("0000:ca:00.0").as_deref(), Some("0000:ca:00"));
        for bad in [
            "",
            "[N/A]",
            "53:00.0",
            "00000000:5:00.0",
            "00000000:ZZ:00.0",
        ] {
            assert_eq!(kernel_bus(bad), None, "{bad}");
        }
    }

    /// The script run by a real shell against an nvidia-smi that prints
    /// a p5's buses: GPU 5's line names bus a8, as the driver would; a
    /// GPU the node does not have is refused and nothing is written.
    #[test]
    fn field_case_20_the_node_reads_its_bus_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let smi = dir.path().join("nvidia-smi");
        let rows: String = P5_BUS_IDS
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i}, {b}\n"))
            .collect();
        std::fs::write(&smi, format!("#!/bin/sh\nprintf '{rows}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kmsg = dir.path().join("kmsg");
        let script = KMSG_SCRIPT.replace("/dev/kmsg", &kmsg.display().to_string());
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let run = |gpu: &str| {
            let (before, after) = kernel_line_around_bus(79);
            std::process::Command::new("sh")
                .args(["-c", &script, "hpchaos", gpu, &before, &after])
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        let out = run("5");
        assert!(out.status.success(), "{out:?}");
        let written = std::fs::read_to_string(&kmsg).unwrap();
        assert_eq!(written, format!("<3>{}\n", field_case_20()[5]));
        let out = run("9");
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no GPU 9"));
        assert_eq!(std::fs::read_to_string(&kmsg).unwrap(), written);
    }
}
