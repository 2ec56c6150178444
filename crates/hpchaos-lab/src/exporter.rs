//! The lab's metric exporters, compatible with what a HyperPod cluster's
//! observability add-on scrapes (`docs/HYPERPOD.md`, "Observability on
//! a real cluster"): per compute node a dcgm-exporter on :9400 fed by the
//! node's GPU state (DCGM injections and the `NVRM: Xid` lines of its
//! kernel log, so an injected Xid shows up as it would), and on the head
//! node a Slurm exporter on :9341 (`slurm_node_status`, `slurm_nodes_*`)
//! fed by `sinfo`. Each runs inside its node (started by `node-init`), so it
//! dies with the node and comes back with it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::http::{PROMETHEUS_TEXT, Request, Response, serve};
use super::layout::Role;
use super::system::LabError;

/// dcgm-exporter's port.
pub const DCGM_PORT: u16 = 9400;
/// The Slurm exporter's port (prometheus-slurm-exporter's default).
pub const SLURM_PORT: u16 = 9341;
/// node_exporter's port.
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// The lab's GPUs per node: eight H100s, as `nvidia-smi` there says.
const GPUS: u32 = 8;
const MODEL: &str = "NVIDIA H100 80GB HBM3";
const DRIVER: &str = "550.90.07";
/// DCGM field ids (`dcgm_fields.h`).
const FIELD_XID_ERRORS: u32 = 230;
const FIELD_ECC_DBE_VOLATILE: u32 = 319;

/// What one node's GPUs show: per GPU, the last Xid and the volatile
/// double-bit ECC count; and whether a stress test runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GpuState {
    pub last_xid: BTreeMap<u32, u32>,
    pub ecc_dbe: BTreeMap<u32, u64>,
    pub stressed: bool,
}

/// The PCI bus of GPU `gpu`, as the lab's `nvidia-smi` numbers them.
fn pci_bus(gpu: u32) -> u32 {
    0x53 + gpu * 16
}

/// Reads the GPU state of the node whose file system root is `root`
/// (`run/hpchaos/dcgm-injections`: `GPU FIELD VALUE TIME` lines;
/// `log/kmsg`: the node's kernel log). A kernel Xid line names its GPU by
/// PCI bus; one on a bus the lab's GPUs are not on counts for none.
pub fn gpu_state(root: &Path) -> GpuState {
    let mut state = GpuState {
        stressed: root.join("run/hpchaos/stress").exists(),
        ..GpuState::default()
    };
    let injections =
        std::fs::read_to_string(root.join("run/hpchaos/dcgm-injections")).unwrap_or_default();
    for line in injections.lines() {
        let mut parts = line.split_whitespace();
        let (Some(gpu), Some(field), Some(value)) = (
            parts.next().and_then(|g| g.parse::<u32>().ok()),
            parts.next().and_then(|f| f.parse::<u32>().ok()),
            parts.next().and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        match field {
            FIELD_XID_ERRORS => {
                state
                    .last_xid
                    .insert(gpu, u32::try_from(value).unwrap_or(u32::MAX));
            }
            FIELD_ECC_DBE_VOLATILE => *state.ecc_dbe.entry(gpu).or_insert(0) += value,
            _ => {}
        }
    }
    let kmsg = std::fs::read_to_string(root.join("log/kmsg")).unwrap_or_default();
    for line in kmsg.lines() {
        let Some(xid) = crate::xid::read(line) else {
            continue;
        };
        // A bus no GPU of the node sits on is no GPU's: a harness that
        // names the wrong bus is not rescued by a guess.
        if let Some(gpu) = (0..GPUS).find(|g| pci_bus(*g) == xid.bus) {
            state.last_xid.insert(gpu, xid.code);
        }
    }
    state
}

/// dcgm-exporter's text for one node: its default counters' names, help
/// and labels (`gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`,
/// `Hostname`, `DCGM_FI_DRIVER_VERSION`). `DCGM_FI_DEV_XID_ERRORS` is a
/// gauge holding the last Xid (0 when none).
pub fn dcgm_metrics(node: &str, state: &GpuState) -> String {
    let labels = |gpu: u32| {
        format!(
            "gpu=\"{gpu}\",UUID=\"GPU-{:08x}-1ab0-4000-8000-{:012x}\",pci_bus_id=\"00000000:{:02X}:00.0\",device=\"nvidia{gpu}\",modelName=\"{MODEL}\",Hostname=\"{node}\",DCGM_FI_DRIVER_VERSION=\"{DRIVER}\"",
            fnv(node),
            gpu,
            pci_bus(gpu)
        )
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(u32) -> String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for gpu in 0..GPUS {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(gpu), value(gpu));
        }
    };
    family(
        "DCGM_FI_DEV_XID_ERRORS",
        "gauge",
        "Value of the last XID error encountered.",
        &|gpu| state.last_xid.get(&gpu).copied().unwrap_or(0).to_string(),
    );
    family(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "counter",
        "Total number of double-bit volatile ECC errors.",
        &|gpu| state.ecc_dbe.get(&gpu).copied().unwrap_or(0).to_string(),
    );
    let util = if state.stressed { 100 } else { 0 };
    family(
        "DCGM_FI_DEV_GPU_UTIL",
        "gauge",
        "GPU utilization (in %).",
        &|_| util.to_string(),
    );
    family(
        "DCGM_FI_DEV_GPU_TEMP",
        "gauge",
        "GPU temperature (in C).",
        &|_| if util > 0 { "78" } else { "34" }.to_owned(),
    );
    out
}

/// A stable number from a name (FNV-1a), for the lab's GPU UUIDs.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The `slurm_nodes_*` family a state counts in, as
/// prometheus-slurm-exporter groups `sinfo`'s states: drain flags first
/// (`drained`, `draining`, `idle+drain`), then the base state.
fn state_family(state: &str) -> &'static str {
    let state = state.to_ascii_lowercase();
    let base = state
        .split(['+', '*', '~', '#', '!', '%', '$', '@', '^', '-'])
        .next()
        .unwrap_or("");
    if state.contains("drain") {
        return "drain";
    }
    match base {
        "allocated" | "alloc" => "alloc",
        "completing" | "comp" => "comp",
        "down" => "down",
        "fail" | "failing" => "fail",
        "idle" => "idle",
        "maint" => "maint",
        "mixed" | "mix" => "mix",
        "reserved" | "resv" => "resv",
        "planned" => "planned",
        "inval" | "invalid" => "inval",
        _ => "other",
    }
}

/// The Slurm exporter's text from `sinfo -h -N -a -o '%N|%T|%P'` lines:
/// `slurm_node_status{node,status,partition} 1` per row (Slurm's own state
/// string, flags included) and `slurm_nodes_<family>` per family, each node
/// counted once however many partitions list it.
pub fn slurm_metrics(sinfo: &str) -> String {
    let mut out = String::from(
        "# HELP slurm_node_status Node status by partition (1 for the state the node is in).\n# TYPE slurm_node_status gauge\n",
    );
    let mut family_of: BTreeMap<&str, &'static str> = BTreeMap::new();
    for line in sinfo.lines() {
        let mut fields = line.split('|');
        let (Some(node), Some(status), Some(partition)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (node, status) = (node.trim(), status.trim());
        let partition = partition.trim().trim_end_matches('*');
        let _ = writeln!(
            out,
            "slurm_node_status{{node=\"{node}\",status=\"{status}\",partition=\"{partition}\"}} 1"
        );
        family_of.insert(node, state_family(status));
    }
    for family in [
        "alloc", "comp", "down", "drain", "fail", "idle", "maint", "mix", "resv", "planned",
        "inval", "other",
    ] {
        let count = family_of.values().filter(|f| **f == family).count();
        let _ = writeln!(
            out,
            "# HELP slurm_nodes_{family} Nodes in state {family}.\n# TYPE slurm_nodes_{family} gauge\nslurm_nodes_{family} {count}"
        );
    }
    out
}

/// Serves the node's exporter until killed: dcgm-exporter on a compute
/// node, the Slurm exporter on the head; nothing on the login node.
/// `rootfs` is the tree the node is chrooted into (`/` for the host's).
pub fn run(dir: &Path, node: &str, role: Role, rootfs: &str) -> Result<(), LabError> {
    let port = match role {
        Role::Compute => DCGM_PORT,
        Role::Head => SLURM_PORT,
        Role::Login => return Ok(()),
    };
    let root: PathBuf = dir.join("nodes").join(node).join("root");
    let node = node.to_owned();
    let rootfs = rootfs.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::io("cannot start the exporter's runtime"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(LabError::io(format!("cannot listen on :{port}")))?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (root, node, rootfs) = (root.clone(), node.clone(), rootfs.clone());
            tokio::spawn(serve(stream, move |_request: Request| {
                let body = match role {
                    Role::Compute => dcgm_metrics(&node, &gpu_state(&root)),
                    _ => match sinfo(&rootfs) {
                        Ok(text) => slurm_metrics(&text),
                        Err(message) => {
                            return Response {
                                status: 500,
                                body: message.into(),
                                content_type: PROMETHEUS_TEXT,
                            };
                        }
                    },
                };
                Response {
                    status: 200,
                    body: body.into(),
                    content_type: PROMETHEUS_TEXT,
                }
            }));
        }
    })
}

/// The head's `sinfo`, one row per node and partition, run in the node's
/// root file system (its Slurm, its munge socket).
fn sinfo(rootfs: &str) -> Result<String, String> {
    let args = ["sinfo", "-h", "-N", "-a", "-o", "%N|%T|%P"];
    let output = if rootfs == "/" || rootfs.is_empty() {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
    } else {
        std::process::Command::new("chroot")
            .arg(rootfs)
            .args(args)
            .output()
    }
    .map_err(|e| format!("cannot run sinfo: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "sinfo failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_xid_and_a_kernel_xid_show_on_their_gpus() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run/hpchaos")).unwrap();
        std::fs::create_dir_all(root.path().join("log")).unwrap();
        std::fs::write(
            root.path().join("run/hpchaos/dcgm-injections"),
            "3 230 48 1.0\n1 319 2 1.0\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("log/kmsg"),
            "<3>NVRM: Xid (PCI:0000:b3:00): 79, pid=1, GPU has fallen off the bus.\n",
        )
        .unwrap();
        let state = gpu_state(root.path());
        assert_eq!(state.last_xid.get(&3), Some(&48));
        // 0xb3 = 0x53 + 6 * 16: GPU 6.
        assert_eq!(state.last_xid.get(&6), Some(&79));
        assert_eq!(state.ecc_dbe.get(&1), Some(&2));
        let text = dcgm_metrics("ip-10-1-0-11", &state);
        let line = text
            .lines()
            .find(|l| l.starts_with("DCGM_FI_DEV_XID_ERRORS{gpu=\"3\""))
            .unwrap();
        assert!(line.contains("Hostname=\"ip-10-1-0-11\""), "{line}");
        assert!(line.ends_with(" 48"), "{line}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("DCGM_FI_DEV_XID_ERRORS{"))
                .filter(|l| l.ends_with(" 0"))
                .count(),
            6
        );
    }

    #[test]
    fn an_xid_on_a_bus_no_gpu_is_on_counts_for_none() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("log")).unwrap();
        // The lab's GPUs sit on 0x53, 0x63, ... 0xc3: 0x54 is none of them.
        std::fs::write(
            root.path().join("log/kmsg"),
            "<3>NVRM: Xid (PCI:0000:54:00): 79, pid=1, GPU has fallen off the bus.\n",
        )
        .unwrap();
        assert!(gpu_state(root.path()).last_xid.is_empty());
    }

    #[test]
    fn a_healthy_node_shows_no_xid() {
        let root = tempfile::tempdir().unwrap();
        let text = dcgm_metrics("n", &gpu_state(root.path()));
        assert!(text.contains("# TYPE DCGM_FI_DEV_XID_ERRORS gauge"));
        assert!(
            text.lines()
                .filter(|l| l.starts_with("DCGM_FI_DEV_XID_ERRORS{"))
                .all(|l| l.ends_with(" 0"))
        );
    }

    #[test]
    fn slurm_metrics_count_each_node_once() {
        let text = slurm_metrics(
            "ip-1|idle|dev*\nip-1|idle|p5\nip-2|drained|dev*\nip-3|down*|dev*\nip-4|mixed+drain|p5\nip-5|allocated|p5\n",
        );
        assert!(
            text.contains(
                "slurm_node_status{node=\"ip-2\",status=\"drained\",partition=\"dev\"} 1"
            )
        );
        assert!(
            text.contains("slurm_node_status{node=\"ip-1\",status=\"idle\",partition=\"p5\"} 1")
        );
        assert!(text.contains("\nslurm_nodes_idle 1\n"));
        assert!(text.contains("\nslurm_nodes_drain 2\n"));
        assert!(text.contains("\nslurm_nodes_down 1\n"));
        assert!(text.contains("\nslurm_nodes_alloc 1\n"));
    }
}
