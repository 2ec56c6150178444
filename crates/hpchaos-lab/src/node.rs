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

/// The host's cgroup file systems under /sys/fs/cgroup, for a node to
/// mount again, one `TYPE OPTIONS MOUNTPOINT` per line: `cgroup2 - /sys/fs/cgroup`
/// on a unified host; on a v1 (or hybrid) host each v1 hierarchy with a
/// controller (`cgroup cpu,cpuacct /sys/fs/cgroup/cpu,cpuacct`; named
/// ones such as systemd's left out) and the unified one beside them.
/// From `/proc/self/mountinfo`'s fields: mount point (5th), file system
/// type and super options after the ` - ` (proc(5)).
pub fn cgroup_mounts(mountinfo: &str) -> String {
    let mut lines = Vec::new();
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = mount.split_whitespace().nth(4) else {
            continue;
        };
        if !point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let mut fs = fs.split_whitespace();
        let (kind, options) = (fs.next(), fs.nth(1).unwrap_or(""));
        match kind {
            Some("cgroup2") => lines.push(format!("cgroup2 - {point}")),
            Some("cgroup") => {
                let controllers: Vec<&str> = options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .collect();
                if !controllers.is_empty() {
                    lines.push(format!("cgroup {} {point}", controllers.join(",")));
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
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
    // `ip netns exec` mounts a fresh sysfs, without the cgroup file
    // systems under it: the node mounts the host's again (a real node has
    // its cgroups at /sys/fs/cgroup).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    launcher.env("HPCHAOS_LAB_CGROUPS", cgroup_mounts(&mountinfo));
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

#[cfg(test)]
mod tests {
    use super::cgroup_mounts;

    #[test]
    fn the_hosts_cgroup_hierarchies_are_listed_for_the_node() {
        // A hybrid host (this lab's CI machine): v1 hierarchies under a
        // tmpfs, the unified one beside them, systemd's named one.
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
            33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
            37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
            50 23 0:40 / /proc rw - proc proc rw\n";
        assert_eq!(
            cgroup_mounts(hybrid),
            "cgroup cpu /sys/fs/cgroup/cpu\n\
             cgroup cpu,cpuacct /sys/fs/cgroup/cpu,cpuacct\n\
             cgroup freezer /sys/fs/cgroup/freezer\n\
             cgroup2 - /sys/fs/cgroup/unified"
        );
        // Ubuntu 22.04 (a HyperPod node): cgroup v2 only.
        let unified = "28 22 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(cgroup_mounts(unified), "cgroup2 - /sys/fs/cgroup");
        assert_eq!(cgroup_mounts(""), "");
    }
}
