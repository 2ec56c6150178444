//! Evidence before it is wiped: as soon as a target is marked for
//! replacement or reboot (`Action:Replace`/`Action:Reboot` on a node out of
//! service), its kernel log's Xid lines, `nvidia-smi -q`, `dcgmi health
//! -c`, and the tails of the slurmd log and syslog are collected from it,
//! in a task of their own so the watch goes on, each command bounded in
//! time (10 s) and size (256 KiB). The files go to
//! `RUN/evidence/<scenario>/<node>/`, are listed in the journal
//! (`evidence_collected`) and linked from the markdown report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::ssh::{Endpoint, SshPool};

/// What is collected: (file name, shell command run on the node). Each
/// output is cut at [`MAX_BYTES`] on the node, before it crosses the
/// network.
pub const COLLECTED: &[(&str, &str)] = &[
    (
        "kernel-xid.txt",
        "dmesg 2>/dev/null | grep -E 'NVRM: Xid|Xid \\(' | tail -n 500",
    ),
    ("nvidia-smi-q.txt", "nvidia-smi -q 2>&1"),
    ("dcgmi-health.txt", "dcgmi health -c 2>&1"),
    (
        "slurmd-log-tail.txt",
        "tail -n 300 /var/log/slurm/slurmd.log 2>&1",
    ),
    ("syslog-tail.txt", "tail -n 300 /var/log/syslog 2>&1"),
];

/// Most bytes kept of one command's output.
pub const MAX_BYTES: usize = 256 * 1024;
/// Longest one command may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

pub use crate::journal::Collected;

/// Collects everything in [`COLLECTED`] from `endpoint` into
/// `run_dir/evidence/<scenario>/<node>/` (commands at once, each bounded);
/// returns each file written. Never fails: a command that cannot run
/// leaves its file with what it said and the problem noted.
pub async fn collect(
    ssh: Arc<SshPool>,
    endpoint: Endpoint,
    run_dir: PathBuf,
    scenario: String,
) -> Vec<Collected> {
    let relative = Path::new("evidence").join(&scenario).join(&endpoint.name);
    let dir = run_dir.join(&relative);
    let _ = std::fs::create_dir_all(&dir);
    let runs = COLLECTED.iter().map(|(file, command)| {
        let ssh = ssh.clone();
        let endpoint = endpoint.clone();
        let line = crate::cluster::quote::command_line(&[
            "sh",
            "-c",
            &format!("{{ {command}; }} | head -c {MAX_BYTES}"),
        ]);
        async move {
            let root = Some(crate::cluster::privilege::Root::Evidence);
            let result = ssh.run_line_as(&endpoint, root, &line, TIME_LIMIT).await;
            (*file, result)
        }
    });
    let mut out = Vec::new();
    for (file, result) in futures::future::join_all(runs).await {
        let (text, problem) = match result {
            Ok(output) if output.status == 0 => (output.stdout, String::new()),
            Ok(output) => (
                format!("{}{}", output.stdout, output.stderr),
                format!("exit {}", output.status),
            ),
            Err(err) => (String::new(), err.to_string()),
        };
        let written = std::fs::write(dir.join(file), text.as_bytes());
        out.push(Collected {
            file: relative.join(file).display().to_string(),
            bytes: text.len() as u64,
            problem: match written {
                Ok(()) => problem,
                Err(err) => format!("cannot write it: {err}"),
            },
        });
    }
    out
}

pub use crate::cluster::slurm::marks_for_repair;

/// A collection under way: the node, why (its Slurm reason), when it
/// started, and the task.
pub(super) type Collecting = (
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    tokio::task::JoinHandle<Vec<Collected>>,
);

impl super::Runner {
    /// Starts collecting `node`'s evidence in a task of its own, once per
    /// watch (the controller log and sinfo both show the mark).
    pub(super) fn start_evidence(&mut self, scenario: &str, node: &str, why: &str) {
        // A replay has no cluster to collect from.
        if self.replaying || self.evidence.iter().any(|(n, ..)| n == node) {
            return;
        }
        let started = self.clock.now();
        let run_dir = self.journal.path().parent().map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
        let task = tokio::spawn(collect(
            self.cluster.ssh.clone(),
            self.cluster.node(node),
            run_dir,
            scenario.to_owned(),
        ));
        self.evidence
            .push((node.to_owned(), why.to_owned(), started, task));
    }

    /// Journals the evidence collected during the watch, waiting up to a
    /// minute for collections still under way (each command is bounded to
    /// 10 s).
    pub(super) async fn journal_evidence(&mut self, scenario: &str) {
        for (node, why, started, task) in std::mem::take(&mut self.evidence) {
            let files = match tokio::time::timeout(Duration::from_secs(60), task).await {
                Ok(Ok(files)) => files,
                _ => Vec::new(),
            };
            self.log(
                Some(scenario),
                crate::journal::Entry::EvidenceCollected {
                    node,
                    why,
                    files,
                    collected_at: Some(started),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replace_and_reboot_marks_start_a_collection() {
        assert!(marks_for_repair("Action:Replace"));
        assert!(marks_for_repair("Action:Reboot"));
        assert!(!marks_for_repair("Not responding"));
        assert!(!marks_for_repair("hpchaos drill"));
    }

    #[tokio::test]
    async fn collects_from_a_node_into_the_run_folder_bounded() {
        let run = tempfile::tempdir().unwrap();
        let profile: crate::profile::Profile = serde_saphyr::from_str(
            "name: c\nhead_node: { name: head, local: true }\nssh:\n  known_hosts: /dev/null\n",
        )
        .unwrap();
        let endpoint = Endpoint {
            name: "ip-10-1-0-12".into(),
            address: "127.0.0.1".into(),
            port: 22,
            local: true,
        };
        let collected = collect(
            Arc::new(SshPool::new(&profile)),
            endpoint,
            run.path().to_path_buf(),
            "xid48-replace".into(),
        )
        .await;
        assert_eq!(collected.len(), COLLECTED.len());
        for item in &collected {
            assert!(
                item.file
                    .starts_with("evidence/xid48-replace/ip-10-1-0-12/"),
                "{item:?}"
            );
            let path = run.path().join(&item.file);
            let bytes = std::fs::metadata(&path).unwrap().len();
            assert_eq!(bytes, item.bytes);
            assert!(bytes <= MAX_BYTES as u64);
        }
    }
}
