//! Starting and stopping one node: the node is the process tree under its
//! PID 1 (`hpchaos-node-init`) in fresh PID, UTS and mount namespaces inside
//! its network namespace. Killing PID 1 ends every process of the node, and
//! only of that node, which is what a power cycle does.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::LabConfig;
use super::layout::{Layout, NodeSpec};
use super::system::{self, LabError};

/// A running node.
pub struct NodeProcess {
    /// `ip netns exec ... unshare ...`; exits when the node's PID 1 does.
    launcher: Child,
    /// Host PID of the node's PID 1.
    pub init_pid: u32,
}

/// Boots `node`: returns once its PID 1 exists. With the config's
/// `rootfs`, the node runs chrooted into that tree (Slurm 24.11); without,
/// on the host's own. With `monitoring`, the node starts its exporters
/// (`HPCHAOS_LAB_EXPORTER` names the binary that serves them).
pub fn start(
    layout: &Layout,
    node: &NodeSpec,
    config: &LabConfig,
) -> Result<NodeProcess, LabError> {
    let rootfs = config.rootfs.as_deref();
    let console = File::options()
        .create(true)
        .append(true)
        .open(layout.node_console(&node.name))
        .map_err(LabError::io(format!(
            "cannot open the console log of {}",
            node.name
        )))?;
    let console_err = console
        .try_clone()
        .map_err(LabError::io("cannot duplicate the console log"))?;
    let init = layout.bin().join("hpchaos-node-init");
    let dir = layout.dir.display().to_string();
    let role = node.role.as_str();
    let mut launcher = Command::new("ip");
    if config.monitoring {
        launcher.env("HPCHAOS_LAB_EXPORTER", &config.exe);
    } else {
        launcher.env_remove("HPCHAOS_LAB_EXPORTER");
    }
    let launcher = launcher
        .args([
            "netns",
            "exec",
            &node.netns(),
            "unshare",
            "--pid",
            "--uts",
            "--mount",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .arg(&init)
        .args([&dir, &node.name, role, rootfs.unwrap_or("/")])
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err)
        .spawn()
        .map_err(LabError::io(format!("cannot start node {}", node.name)))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(&init_pid) = system::children(launcher.id()).first() {
            std::fs::write(layout.node(&node.name).join("pid"), init_pid.to_string())
                .map_err(LabError::io("cannot record the node's pid"))?;
            return Ok(NodeProcess { launcher, init_pid });
        }
        if Instant::now() > deadline {
            return Err(LabError::Setup(format!(
                "node {} did not start; see {}",
                node.name,
                layout.node_console(&node.name).display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl NodeProcess {
    /// Power off: every process of the node dies at once.
    pub fn kill(mut self) {
        let _ = system::run("kill", &["-9", &self.init_pid.to_string()]);
        let _ = self.launcher.wait();
    }
}

/// The recorded PID 1 of a node, if that process still lives.
pub fn recorded_pid(layout: &Layout, name: &str) -> Option<u32> {
    let pid = std::fs::read_to_string(layout.node(name).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    system::alive(pid).then_some(pid)
}

/// When a process started, by the kernel's clock (`/proc/PID/stat`'s
/// start time in ticks since boot, plus `/proc/stat`'s `btime`): a time
/// taken on another path than the lab's own clock reads, so a harness's
/// boundary can be checked against it. `None` when either cannot be read.
pub fn started_at(pid: u32) -> Option<chrono::DateTime<chrono::Utc>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its `)`.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // USER_HZ, the unit of /proc's tick counts: 100 on every Linux
    // architecture the lab runs on (x86_64, aarch64).
    const TICKS_PER_SECOND: u64 = 100;
    let millis = (ticks % TICKS_PER_SECOND) * 1000 / TICKS_PER_SECOND;
    chrono::DateTime::from_timestamp(
        boot + (ticks / TICKS_PER_SECOND) as i64,
        (millis * 1_000_000) as u32,
    )
}
