//! The control plane's own record of every transition it causes or sees,
//! one JSON object per line with its own timestamp: the ground truth that
//! benchmarks compare the harness's measured phases against.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    /// `fault_noticed`, `reason_set`, `node_drained`, `instance_terminated`,
    /// `node_rebooting`, `instance_launched`, `instance_running`, `slurmd_registered`,
    /// `node_resumed`, `api_request` (a recovery asked for), `api_call`
    /// (every request the API received, its operation), ...
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

pub struct GroundTruth {
    file: Mutex<File>,
}

impl GroundTruth {
    pub fn open(path: &Path) -> std::io::Result<GroundTruth> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(GroundTruth {
            file: Mutex::new(file),
        })
    }

    /// Appends one transition, flushed; a write failure is reported on
    /// stderr (the daemon's log) rather than stopping the cluster.
    pub fn record(&self, event: &str, node: Option<&str>, detail: impl Into<String>) {
        self.record_at(Utc::now(), event, node, detail);
    }

    /// Appends one transition that happened at `at`, by a clock other than
    /// the lab's own read now (the kernel's start time of a process).
    pub fn record_at(
        &self,
        at: DateTime<Utc>,
        event: &str,
        node: Option<&str>,
        detail: impl Into<String>,
    ) {
        let transition = Transition {
            at,
            event: event.to_owned(),
            node: node.map(str::to_owned),
            detail: detail.into(),
        };
        let mut line = serde_json::to_string(&transition).unwrap_or_default();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()) {
            eprintln!("ground truth: cannot write: {err}");
        }
    }
}

/// Reads a ground-truth log back (for tests and benchmarks).
pub fn read(path: &Path) -> Vec<Transition> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
