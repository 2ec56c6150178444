//! The lab's Health Monitoring Agent: per node, it reads what HyperPod's
//! agent reads (DCGM injections, `NVRM: Xid` lines in the kernel log, the
//! health-check status file, whether the root file system is read-only)
//! and says what action a fault calls for. The
//! recovery engine turns that into `scontrol ... reason="Action:*"`, after
//! writing HMA's own record of it to the lab's CloudWatch Logs
//! ([`Finding::record`], `logs.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::config::{Action, LabConfig};

/// DCGM field ids (dcgm_fields.h).
const FIELD_XID_ERRORS: u32 = 230;
const FIELD_ECC_DBE_VOLATILE: u32 = 319;

/// A fault the agent noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub action: Action,
    pub detail: String,
    /// HMA's `msg`, `condition: ` and `data: ` for its record.
    pub msg: &'static str,
    pub condition: &'static str,
    pub data: serde_json::Value,
}

impl Finding {
    /// HMA's record of this finding, decided at `at`, as HyperPod's agent
    /// writes it to CloudWatch Logs (docs/HYPERPOD.md, "Since 2025"): its
    /// members in HMA's order, keys with a trailing colon and space, `ts`
    /// in whole seconds.
    pub fn record(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        let text = |s: &str| serde_json::Value::from(s).to_string();
        format!(
            r#"{{"level":"info","ts":{},"msg":{},"condition: ":{},"data: ":{},"HealthMonitoringAgentDetectionEvent":"HealthEvent"}}"#,
            text(&at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            text(self.msg),
            text(self.condition),
            self.data,
        )
    }
}

/// Reads each watched file from where it left off.
#[derive(Default)]
pub struct Watcher {
    offsets: HashMap<PathBuf, usize>,
    /// Nodes whose root file system was found read-only, until it is
    /// writable again: each spell is one finding.
    read_only_roots: std::collections::HashSet<String>,
}

/// Whether the root file system in `mountinfo` (`/proc/PID/mountinfo` of
/// a process of the node: mount point, field 5, as that process sees it)
/// is mounted read-only: its top mount at `/` has `ro` in its mount
/// options (field 6). `None` when no mount is at `/`.
pub fn root_read_only(mountinfo: &str) -> Option<bool> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let point = fields.nth(4)?;
            let options = fields.next()?;
            (point == "/").then(|| options.split(',').any(|o| o == "ro"))
        })
        .next_back()
}

impl Watcher {
    /// New findings on the node whose file system root is `root`.
    pub fn scan(&mut self, root: &Path, config: &LabConfig) -> Vec<Finding> {
        let mut findings = Vec::new();
        for line in self.new_lines(&root.join("run/hpchaos/dcgm-injections")) {
            if let Some(finding) = dcgm_finding(&line, config) {
                findings.push(finding);
            }
        }
        for log in ["log/kmsg", "log/syslog", "log/kern.log"] {
            for line in self.new_lines(&root.join(log)) {
                if let Some(finding) = kernel_log_finding(&line, config) {
                    findings.push(finding);
                }
            }
        }
        let status = root.join("run/sagemaker_healthcheck_status");
        if self
            .new_lines(&status)
            .iter()
            .any(|l| l.trim() != "0" && !l.trim().is_empty())
        {
            findings.push(Finding {
                action: Action::Replace,
                detail: "health check status file reports unhealthy".to_owned(),
                msg: "Health check failed ",
                condition: "Health Check Failure",
                data: serde_json::json!({"Status": 1}),
            });
        }
        findings
    }

    /// A finding when `node`'s root file system turned read-only (HMA
    /// detects a read-only root file system: HYPERPOD.md, "Since 2025"),
    /// from `mountinfo` (see [`root_read_only`]); once per spell. The
    /// action, a reboot (which mounts it writable again), is the lab's:
    /// AWS does not publish HMA's, and a scenario says what it expects.
    pub fn root_file_system(&mut self, node: &str, mountinfo: &str) -> Option<Finding> {
        if root_read_only(mountinfo) != Some(true) {
            self.read_only_roots.remove(node);
            return None;
        }
        if !self.read_only_roots.insert(node.to_owned()) {
            return None;
        }
        Some(Finding {
            action: Action::Reboot,
            detail: "root file system is read-only".to_owned(),
            msg: "Read-only file system found ",
            condition: "Read-only File System",
            data: serde_json::json!({"MountPoint": "/"}),
        })
    }

    /// Forgets the offsets of files under `root` (the node was wiped or its
    /// /run cleared by a reboot).
    pub fn forget(&mut self, root: &Path) {
        self.offsets.retain(|path, _| !path.starts_with(root));
    }

    fn new_lines(&mut self, path: &Path) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        let offset = self.offsets.entry(path.to_path_buf()).or_insert(0);
        if *offset > text.len() {
            *offset = 0; // the file was truncated or replaced
        }
        // Only whole lines: a line still being written waits for its newline.
        let fresh = &text[*offset..];
        let complete = fresh.rfind('\n').map_or(0, |i| i + 1);
        *offset += complete;
        fresh[..complete].lines().map(str::to_owned).collect()
    }
}

/// `GPU FIELD VALUE TIME` as `dcgmi test --inject` records it.
fn dcgm_finding(line: &str, config: &LabConfig) -> Option<Finding> {
    let mut parts = line.split_whitespace();
    let gpu = parts.next()?;
    let field: u32 = parts.next()?.parse().ok()?;
    let value: u32 = parts.next()?.parse().ok()?;
    let (action, condition, data) = match field {
        FIELD_XID_ERRORS => (
            config.action_for_xid(value),
            "XID Error",
            serde_json::json!({"ErrNum": value}),
        ),
        FIELD_ECC_DBE_VOLATILE if value > 0 => (
            Action::Replace,
            "DBE Error",
            serde_json::json!({"Count": value}),
        ),
        _ => return None,
    };
    Some(Finding {
        action,
        detail: format!("DCGM field {field} = {value} on GPU {gpu}"),
        msg: "DCGM Policy Violation found ",
        condition,
        data,
    })
}

fn kernel_log_finding(line: &str, config: &LabConfig) -> Option<Finding> {
    let code = crate::xid::read(line)?.code;
    Some(Finding {
        action: config.action_for_xid(code),
        detail: format!("kernel log: Xid {code}: {}", line.trim()),
        msg: "NVRM Xid found in kernel log ",
        condition: "XID Error",
        data: serde_json::json!({"ErrNum": code}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LabConfig {
        crate::config::test_config()
    }

    #[test]
    fn reads_dcgm_kernel_log_and_status_file_once_each() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run/hpchaos")).unwrap();
        std::fs::create_dir_all(root.path().join("log")).unwrap();
        std::fs::write(
            root.path().join("run/hpchaos/dcgm-injections"),
            "0 230 48 1.0\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("log/syslog"),
            "Nov 28 kernel: NVRM: Xid (PCI:0000:b9:00): 79, pid=1234, GPU has fallen off the bus.\nunrelated\n",
        )
        .unwrap();
        let mut watcher = Watcher::default();
        let found = watcher.scan(root.path(), &config());
        let actions: Vec<_> = found.iter().map(|f| f.action).collect();
        assert_eq!(actions, vec![Action::Replace, Action::Reboot]);
        assert!(
            watcher.scan(root.path(), &config()).is_empty(),
            "each line is read once"
        );
        std::fs::write(root.path().join("run/sagemaker_healthcheck_status"), "1\n").unwrap();
        assert_eq!(
            watcher.scan(root.path(), &config())[0].action,
            Action::Replace
        );
    }

    /// Recorded from a lab node (`/proc/PID/mountinfo` of its PID 1): the
    /// root bind mount, then the same remounted read-only.
    #[test]
    fn a_read_only_root_is_one_finding_per_spell() {
        let rw = "1480 1479 259:1 /var/cache/hpchaos/rootfs/slurm-24.11 / rw,relatime - ext4 /dev/root rw\n1481 1480 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n1490 1480 0:5 /tmp/lab/bin /usr/local/sbin rw,relatime - ext4 /dev/root rw\n";
        let ro = rw.replacen(" / rw,relatime", " / ro,relatime", 1);
        assert_eq!(root_read_only(rw), Some(false));
        assert_eq!(root_read_only(&ro), Some(true));
        assert_eq!(root_read_only("1 0 0:1 / /proc rw - proc proc rw\n"), None);
        let mut watcher = Watcher::default();
        assert!(watcher.root_file_system("n1", rw).is_none());
        let found = watcher.root_file_system("n1", &ro).unwrap();
        assert_eq!(found.action, Action::Reboot);
        assert_eq!(found.condition, "Read-only File System");
        assert!(
            watcher.root_file_system("n1", &ro).is_none(),
            "once per spell"
        );
        assert!(watcher.root_file_system("n2", &ro).is_some(), "per node");
        assert!(watcher.root_file_system("n1", rw).is_none());
        assert!(watcher.root_file_system("n1", &ro).is_some(), "a new spell");
    }

    #[test]
    fn the_record_is_written_as_hyperpods_agent_writes_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run/hpchaos")).unwrap();
        std::fs::write(
            root.path().join("run/hpchaos/dcgm-injections"),
            "0 230 79 1.0\n",
        )
        .unwrap();
        let found = Watcher::default().scan(root.path(), &config());
        let at = chrono::DateTime::parse_from_rfc3339("2026-07-20T22:53:17.640Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            found[0].record(at),
            r#"{"level":"info","ts":"2026-07-20T22:53:17Z","msg":"DCGM Policy Violation found ","condition: ":"XID Error","data: ":{"ErrNum":79},"HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#
        );
    }

    #[test]
    fn a_half_written_line_waits_for_its_end() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run/hpchaos")).unwrap();
        let file = root.path().join("run/hpchaos/dcgm-injections");
        std::fs::write(&file, "0 230 7").unwrap();
        let mut watcher = Watcher::default();
        assert!(watcher.scan(root.path(), &config()).is_empty());
        std::fs::write(&file, "0 230 74 1.0\n").unwrap();
        assert_eq!(
            watcher.scan(root.path(), &config())[0].action,
            Action::Replace
        );
    }
}
