//! `hpchaos run` end to end on the lab, through the real binary: shipped
//! scenarios pass with the phases they expect, a scenario that must fail
//! does (exit 1), a held lock refuses a second run (exit 3), Ctrl-C in the
//! middle of a fault rolls back, leaves no node drained by us and closes
//! the journal (exit 130), and a changed host key is refused with the fix.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn hpchaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

struct Lab {
    dir: PathBuf,
    reports: PathBuf,
}

impl Lab {
    fn profile(&self) -> String {
        self.dir.join("profile.yaml").display().to_string()
    }

    fn head(&self, command: &str) -> String {
        let out = Command::new("ssh")
            .args(["-i", &self.dir.join("ssh/id_ed25519").display().to_string()])
            .args([
                "-o",
                &format!(
                    "UserKnownHostsFile={}",
                    self.dir.join("ssh/known_hosts").display()
                ),
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "root@10.1.0.10",
                command,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A replaced node has a new host key, which hpchaos refuses; an
    /// operator who checked it trusts it. The lab's current keys are in its
    /// folder.
    fn trust_current_host_keys(&self) {
        let mut known = String::new();
        for entry in std::fs::read_dir(self.dir.join("nodes")).unwrap() {
            let node = entry.unwrap().path();
            let name = node.file_name().unwrap().to_string_lossy().into_owned();
            let key = std::fs::read_to_string(node.join("ssh_host_ed25519_key.pub")).unwrap();
            let key: Vec<&str> = key.split_whitespace().take(2).collect();
            let address = name.trim_start_matches("ip-").replace('-', ".");
            known.push_str(&format!("{name},{address} {}\n", key.join(" ")));
        }
        std::fs::write(self.dir.join("ssh/known_hosts"), known).unwrap();
    }

    /// Runs scenario files; returns the exit code, stderr and the report.
    fn run(&self, files: &[&str]) -> (Option<i32>, String, serde_json::Value) {
        let mut args = vec!["run"];
        args.extend_from_slice(files);
        let profile = self.profile();
        let reports = self.reports.display().to_string();
        args.extend(["--cluster", &profile, "--report-dir", &reports]);
        let out = hpchaos(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr.clone(), latest_report(&stderr))
    }
}

/// The report.json of the run whose journal path stderr names.
fn latest_report(stderr: &str) -> serde_json::Value {
    let journal = stderr
        .lines()
        .find_map(|l| l.strip_prefix("journal: "))
        .map(PathBuf::from);
    journal
        .and_then(|j| std::fs::read_to_string(j.with_file_name("report.json")).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn verdicts(report: &serde_json::Value) -> Vec<(String, String)> {
    report["scenarios"][0]["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["phase"].as_str().unwrap_or("").to_owned(),
                p["verdict"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn phases(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn runs_on_the_lab() {
    if let Err(err) = hpchaos::lab::preflight() {
        panic!(
            "the run test needs root and the lab's packages ({err}); `make setup` installs them"
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("hpchaos-run-test")
        .tempdir()
        .unwrap();
    let lab = Lab {
        dir: dir.path().join("lab"),
        reports: dir.path().join("reports"),
    };
    let dir_arg = lab.dir.display().to_string();
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = hpchaos(&["lab", "down", "--dir", &self.0]);
        }
    }
    let _down = Down(dir_arg.clone());
    let up = hpchaos(&["lab", "up", "--nodes", "4", "--dir", &dir_arg]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    // A shipped replace scenario passes, every phase met, lost work counted.
    let (code, stderr, report) = lab.run(&["scenarios/xid48-replace.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report),
        phases(&[
            ("detect", "met"),
            ("drain", "met"),
            ("replace", "met"),
            ("rejoin", "met"),
            ("resume", "met")
        ])
    );
    assert_eq!(report["scenarios"][0]["phases"][0]["time_source"], "source");
    assert_eq!(report["scenarios"][0]["phases"][2]["time_source"], "source");
    assert!(report["scenarios"][0]["lost_steps"].as_u64().is_some());

    // A shipped reboot through Slurm passes.
    let (code, stderr, report) = lab.run(&["scenarios/node-reboot-slurm.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report)[2],
        ("reboot".to_owned(), "met".to_owned())
    );

    // More shipped scenarios: a task crash the cluster must not retry, a
    // replace and a reboot through the API, an Xid 79 reboot with the canary.
    for (file, expected) in [
        (
            "scenarios/process-kill-task.yaml",
            vec![("detect", "met"), ("job_end", "met")],
        ),
        (
            "scenarios/node-replace-api.yaml",
            vec![
                ("detect", "met"),
                ("drain", "observed"),
                ("replace", "met"),
                ("rejoin", "met"),
            ],
        ),
        (
            "scenarios/node-reboot-api.yaml",
            vec![
                ("detect", "met"),
                ("drain", "observed"),
                ("reboot", "met"),
                ("rejoin", "met"),
            ],
        ),
        (
            "scenarios/xid79-reboot.yaml",
            vec![
                ("detect", "met"),
                ("drain", "met"),
                ("reboot", "met"),
                ("rejoin", "met"),
                ("resume", "met"),
            ],
        ),
    ] {
        lab.trust_current_host_keys();
        let (code, stderr, report) = lab.run(&[file]);
        assert_eq!(code, Some(0), "{file}: {stderr}");
        assert_eq!(verdicts(&report), phases(&expected), "{file}");
    }
    lab.trust_current_host_keys();

    // A scenario that must fail does: the replace misses its deadline.
    let (code, stderr, report) = lab.run(&["tests/e2e/tight-deadline.yaml"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        verdicts(&report)[2],
        ("replace".to_owned(), "missed".to_owned())
    );
    assert_eq!(report["status"], "failed");

    // A second run is refused while another holds the lock.
    lab.head(
        "mkdir /run/hpchaos-run.lock && echo 'run started by a test' > /run/hpchaos-run.lock/owner",
    );
    let (code, stderr, _) = lab.run(&["scenarios/node-reboot-slurm.yaml"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("another hpchaos run holds the lock")
            && stderr.contains("run started by a test"),
        "{stderr}"
    );
    lab.head("rm -rf /run/hpchaos-run.lock");

    // Ctrl-C in the middle of a fault: with NodeRecovery None the reboot
    // never comes; SIGINT rolls back (the node we marked is resumed),
    // the journal ends, the exit code is 130.
    let out = hpchaos(&["lab", "status", "--dir", &dir_arg]);
    assert_eq!(out.status.code(), Some(0));
    let recovery_none = set_node_recovery(&lab, "None");
    assert!(recovery_none, "UpdateCluster NodeRecovery=None");
    let profile = lab.profile();
    let reports = lab.reports.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args([
            "run",
            "tests/e2e/reboot-held.yaml",
            "--cluster",
            &profile,
            "--report-dir",
            &reports,
        ])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let journal = loop {
        let found = std::fs::read_dir(&lab.reports)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.display().to_string().ends_with("reboot-held"))
            .map(|p| p.join("journal.jsonl"))
            .find(|j| {
                std::fs::read_to_string(j)
                    .unwrap_or_default()
                    .contains(r#""phase":"detect","ended_at""#)
            });
        if let Some(journal) = found {
            break journal;
        }
        assert!(
            Instant::now() < deadline,
            "the reboot-held run never detected its fault"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let text = std::fs::read_to_string(&journal).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "run_ended");
    assert_eq!(last["outcome"], "interrupted");
    assert!(
        text.contains(r#""type":"rollback""#) && text.contains("state=resume"),
        "{text}"
    );
    let sinfo = lab.head("sinfo -N -h -n ip-10-1-0-13 -o '%T|%E'");
    assert_eq!(
        sinfo.trim(),
        "idle|none",
        "the node we marked must not be left drained"
    );
    assert!(set_node_recovery(&lab, "Automatic"));

    // A replaced node has a new host key: refused, with the fix. Wait for
    // one more instance of ip-10-1-0-12 than there was before asking.
    let launches = |lab: &Lab| {
        std::fs::read_to_string(lab.dir.join("ground-truth.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(r#""node":"ip-10-1-0-12""#)
                    && l.contains(r#""event":"instance_running""#)
            })
            .count()
    };
    let before = launches(&lab);
    lab.head("scontrol update nodename=ip-10-1-0-12 state=down reason=Action:Replace");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(launches(&lab) > before
        && lab.head("sinfo -N -h -n ip-10-1-0-12 -o '%T|%E'").trim() == "idle|none")
    {
        assert!(Instant::now() < deadline, "ip-10-1-0-12 was not replaced");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, stderr, report) = lab.run(&["tests/e2e/burn-on-replaced.yaml"]);
    let reason = report["scenarios"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        reason.contains("does not match") && reason.contains("ssh-keygen -R"),
        "{reason}\n{stderr}"
    );
}

/// UpdateCluster through the SDK, as an operator would.
fn set_node_recovery(lab: &Lab, value: &str) -> bool {
    let profile = hpchaos::scenario::load_profile(&lab.dir.join("profile.yaml"))
        .unwrap()
        .value;
    let settings = profile.sagemaker.unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = aws_sdk_sagemaker::Config::builder()
            .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
            .region(aws_sdk_sagemaker::config::Region::new(settings.region))
            .endpoint_url(settings.endpoint_url.unwrap())
            .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .build();
        let client = aws_sdk_sagemaker::Client::from_conf(config);
        client
            .update_cluster()
            .cluster_name(settings.cluster_name)
            .node_recovery(aws_sdk_sagemaker::types::ClusterNodeRecovery::from(value))
            .send()
            .await
            .is_ok()
    })
}
