//! What the lab tests share: the hpchaos binary, the preflight
//! message, and OpenSSH to a lab node with the lab's key and known_hosts
//! (strict host-key checking, no prompts).

use std::path::Path;
use std::process::Command;

pub use super::hpchaos;

/// Whether the lab can run here. Without root or the lab's packages, a
/// plain `cargo test` says so and skips the lab test; `make test` (and CI)
/// set `HPCHAOS_REQUIRE_LAB=1`, where it fails the test instead, with how
/// to get what the lab needs.
pub fn lab_ready(test: &str) -> bool {
    let Err(err) = hpchaos_lab::preflight() else {
        return true;
    };
    let why = format!(
        "the {test} test needs root and the lab's packages ({err}); `make setup` installs them"
    );
    if std::env::var_os("HPCHAOS_REQUIRE_LAB").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why} (HPCHAOS_REQUIRE_LAB=1 makes this a failure)");
    false
}

/// Runs `command` as root on `host` of the lab in `dir`: its stdout, or
/// its stderr when it fails. A lab entered as `ubuntu` (as HyperPod) is
/// entered so, with the cluster's own key (which every node trusts) and
/// `sudo -n`; a lab on the host's Slurm as root.
pub fn ssh(dir: &Path, host: &str, command: &str) -> Result<String, String> {
    let cluster_key = dir.join("shared/ubuntu/.ssh/id_ed25519");
    let (key, login, command) = match cluster_key.exists() {
        true => (
            cluster_key,
            "ubuntu",
            format!("sudo -n sh -c {}", hpchaos::cluster::quote::quote(command)),
        ),
        false => (dir.join("ssh/id_ed25519"), "root", command.to_owned()),
    };
    let out = Command::new("ssh")
        .args(["-i", &key.display().to_string()])
        .args([
            "-o",
            &format!(
                "UserKnownHostsFile={}",
                dir.join("ssh/known_hosts").display()
            ),
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("{login}@{host}"))
        .arg(command)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `UpdateCluster NodeRecovery=value` on the lab's API.
#[allow(dead_code)] // the offline binary includes this module too
/// The keys the lab wrote for its profile (`LAB/aws-credentials`): its
/// API refuses any others, as AWS does.
pub fn lab_credentials(lab_dir: &Path) -> aws_sdk_sagemaker::config::Credentials {
    let text = std::fs::read_to_string(lab_dir.join("aws-credentials")).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap()
    };
    aws_sdk_sagemaker::config::Credentials::new(
        value("aws_access_key_id"),
        value("aws_secret_access_key"),
        None,
        None,
        "lab",
    )
}

pub fn set_node_recovery(lab_dir: &Path, value: &str) -> bool {
    let profile = hpchaos::scenario::load_profile(&lab_dir.join("profile.yaml"))
        .unwrap()
        .value;
    let settings = profile.sagemaker.unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = aws_sdk_sagemaker::Config::builder()
            .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
            .region(aws_sdk_sagemaker::config::Region::new(settings.region))
            .endpoint_url(settings.endpoint_url.unwrap())
            .credentials_provider(lab_credentials(lab_dir))
            .build();
        aws_sdk_sagemaker::Client::from_conf(config)
            .update_cluster()
            .cluster_name(settings.cluster_name)
            .node_recovery(aws_sdk_sagemaker::types::ClusterNodeRecovery::from(value))
            .send()
            .await
            .is_ok()
    })
}

/// A 4-node lab in a new temporary folder (`TMP/lab`, reports in
/// `TMP/reports`), with `options` for `lab up`; fails the test if it does
/// not come up; `None` when the lab cannot run here (see [`lab_ready`]).
/// The caller takes it down.
pub fn start_lab(test: &str, options: &[&str]) -> Option<tempfile::TempDir> {
    if !lab_ready(test) {
        return None;
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!("hpchaos-{test}-test"))
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("lab").display().to_string();
    let mut args = vec!["lab", "up", "--nodes", "4", "--dir", &dir];
    args.extend_from_slice(options);
    let up = hpchaos(&args);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    Some(tmp)
}

/// Polls `ready` every 200 ms until it holds; fails the test, naming
/// `what`, after `limit`.
pub fn wait_until_within(limit: std::time::Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The newest journal of scenario `name` under `reports` (run folders are
/// named `<time>-<name>`).
pub fn journal_of(reports: &Path, name: &str) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(reports)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{name}")))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|d| d.join("journal.jsonl"))
}

/// A journal's records, parsed (a line that is not one is skipped).
pub fn records(journal: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
