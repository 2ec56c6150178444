//! Which commands need root, and why: the one place that says so. On
//! HyperPod operators log in as `ubuntu` (or `ssm-user`) and become root
//! with `sudo`; the profile's `ssh.become` says how hpchaos does (see
//! [`crate::profile::Become`]). Everything not listed here runs as the
//! profile's user: reading Slurm (`sinfo`, `squeue`, `scontrol show`),
//! submitting and cancelling the canary (the user's own job), probes, the
//! GPU stress tools.

use crate::cluster::quote::command_line;

/// Why a command must run as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `scontrol update` (a node's state and reason) and `scontrol reboot`:
    /// Slurm lets only root, its SlurmUser and operators with an
    /// AdminLevel change nodes (scontrol(1), "update").
    SlurmAdmin,
    /// The cluster's lock and fence under `/run` (root's, cleared at boot),
    /// and the fence guard that reads them before a change on the head.
    ClusterLock,
    /// Writing a record to `/dev/kmsg` (a simulated Xid): the kernel log
    /// device is root's.
    KernelLog,
    /// `dcgmi test --inject`: DCGM's field injection, refused to other
    /// users.
    DcgmInject,
    /// Signalling processes of other users: slurmd (root's) and the job's
    /// tasks (their submitter's); kill(2) needs CAP_KILL.
    SignalOthers,
    /// `reboot`: only root may restart the node.
    Reboot,
    /// The pidfiles of the tools hpchaos starts detached (GPU stress),
    /// under root's `/run`, where a reboot clears them.
    RunState,
    /// HyperPod's health-check status file
    /// (`/var/run/sagemaker_healthcheck_status`, under root's `/run`).
    HealthStatusFile,
    /// Reading the controller log (`slurmctld.log`, SlurmUser's, 0640 on
    /// HyperPod) and a job's output (its submitter's).
    ReadLogs,
    /// Evidence: `dmesg` (Ubuntu sets `kernel.dmesg_restrict=1`) and the
    /// system journal.
    Evidence,
    /// `systemctl restart|stop|start slurmd` (or slurmctld): system units
    /// are root's to change.
    Daemons,
    /// Remounting a file system, filling one past the users' share, or
    /// freezing one (a FUSE mount other users' files go through, stopped):
    /// mount(8), `allow_other` and the reserved blocks are root's.
    Filesystems,
    /// `nvidia-smi -lgc/-rgc/-pl`: GPU clocks and power limits are root's.
    GpuSettings,
    /// `tc qdisc`/`tc filter`: traffic control needs CAP_NET_ADMIN.
    Network,
    /// A CPU quota on another user's processes: cgroups (`cpu.max`,
    /// `cpu.cfs_quota_us`, moving a process between cgroups) are root's.
    Cgroups,
}

impl Root {
    /// The need in words, for errors: `change a Slurm node's state`.
    pub fn why(self) -> &'static str {
        match self {
            Root::SlurmAdmin => "change a Slurm node's state (scontrol update)",
            Root::ClusterLock => "hold the cluster's lock under /run",
            Root::KernelLog => "write the kernel log (/dev/kmsg)",
            Root::DcgmInject => "inject a DCGM field (dcgmi test --inject)",
            Root::SignalOthers => "signal another user's processes",
            Root::Reboot => "reboot the node",
            Root::HealthStatusFile => "write HyperPod's health-check status file",
            Root::RunState => "keep a started tool's pidfile under /run",
            Root::ReadLogs => "read slurmctld.log and the job's output",
            Root::Evidence => "read the kernel ring buffer and the system journal",
            Root::Daemons => "restart, stop or start a Slurm daemon (systemctl)",
            Root::Filesystems => "fill, remount or freeze a file system",
            Root::GpuSettings => "set GPU clocks or power limits (nvidia-smi -lgc, -pl)",
            Root::Network => "change the node's traffic control (tc qdisc, tc filter)",
            Root::Cgroups => "set a CPU quota on the job's processes (cgroup cpu.max)",
        }
    }
}

/// How the profile's user becomes root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elevation {
    /// The user is root already (or the profile says `become: none`).
    AsIs,
    /// `sudo -n`: never waits for a password; refused at once when the
    /// user may not (the preflight checks that first).
    Sudo,
}

impl Elevation {
    /// `line` (a command line built by this crate) as root: under
    /// `sudo -n -- sh -c LINE` with [`Elevation::Sudo`] (the line may hold
    /// several commands, a redirection or a pipe), unchanged otherwise.
    pub fn wrap(self, line: &str) -> String {
        match self {
            Elevation::AsIs => line.to_owned(),
            Elevation::Sudo => command_line(&["sudo", "-n", "--", "sh", "-c", line]),
        }
    }
}

/// Whether a command's failure is sudo's refusal, not the command's: sudo
/// says so on stderr in its own name (`sudo: a password is required`,
/// `sudo: a terminal is required ...`, `... is not in the sudoers file`,
/// `sudo: command not found` from the shell) with exit 1 (127 when it is
/// missing).
pub fn sudo_refused(status: u32, stderr: &str) -> bool {
    let first = stderr.trim_start().lines().next().unwrap_or("");
    (status == 1 && first.starts_with("sudo:"))
        || (status == 127 && first.contains("sudo") && first.contains("not found"))
        || first.contains("is not in the sudoers file")
}

/// How to let the profile's user run commands as root without a password
/// on `host`, as HyperPod's image does for `ubuntu` (cloud-init's
/// `/etc/sudoers.d/90-cloud-init-users`).
pub fn sudo_fix(user: &str, host: &str) -> String {
    format!(
        "on {host}, `{user}` must run sudo without a password: add `{user} ALL=(ALL) NOPASSWD:ALL` with `sudo visudo -f /etc/sudoers.d/90-hpchaos` (HyperPod's image has it for ubuntu), or set ssh.become: none and ssh.user: root"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_wraps_the_whole_line_in_one_shell() {
        assert_eq!(
            Elevation::Sudo.wrap("scontrol update nodename=ip-10-1-0-11 state=resume"),
            "sudo -n -- sh -c 'scontrol update nodename=ip-10-1-0-11 state=resume'"
        );
        let line = "printf '<3>%s\\n' \"$1\" >> /dev/kmsg";
        let wrapped = Elevation::Sudo.wrap(line);
        assert!(wrapped.starts_with("sudo -n -- sh -c '"), "{wrapped}");
        assert_eq!(Elevation::AsIs.wrap(line), line);
    }

    #[test]
    fn sudos_refusals_are_told_from_the_commands_failures() {
        assert!(sudo_refused(1, "sudo: a password is required\n"));
        assert!(sudo_refused(
            1,
            "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\n"
        ));
        assert!(sudo_refused(
            1,
            "ubuntu is not in the sudoers file.  This incident will be reported.\n"
        ));
        assert!(sudo_refused(127, "sh: 1: sudo: not found\n"));
        // The command's own failure, under sudo, is the command's.
        assert!(!sudo_refused(
            1,
            "scontrol: error: Invalid node name specified\n"
        ));
        assert!(!sudo_refused(0, ""));
    }
}
