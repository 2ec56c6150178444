//! The lab's Health Monitoring Agent: per node, it reads what HyperPod's
//! agent reads (DCGM injections, `NVRM: Xid` lines in the kernel log, the
//! health-check status file) and says what action a fault calls for. The
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
