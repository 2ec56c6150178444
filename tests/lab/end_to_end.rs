//! The lab end to end, as root, with the real programs: `hpchaos lab up`,
//! then real commands over OpenSSH (host keys checked) and real
//! `aws-sdk-sagemaker` calls, through a replace, a reboot, process
//! isolation, a workload resuming from its checkpoint, and `lab down`
//! leaving nothing behind. One lab per machine (it owns 10.1.0.0/24), so
//! this is a single test that walks the steps in order.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::config::{BehaviorVersion, Region};
use hpchaos_lab::ground_truth;

use crate::support::lab::hpchaos;

struct Lab {
    dir: PathBuf,
}

impl Lab {
    /// Runs `command` on `host` over SSH with the lab's key and known_hosts.
    fn ssh(&self, host: &str, command: &str) -> Result<String, String> {
        crate::support::lab::ssh(&self.dir, host, command)
    }

    fn head(&self, command: &str) -> String {
        self.ssh("10.1.0.10", command)
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    /// name → (state, reason) from `sinfo` on the head node.
    fn sinfo(&self) -> Vec<(String, String, String)> {
        self.head("sinfo -p dev -N -h -o '%N|%T|%E'")
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                // sinfo's %E prints `none` for no reason.
                let reason = if f[2] == "none" { "" } else { f[2] };
                (f[0].to_owned(), f[1].to_owned(), reason.to_owned())
            })
            .collect()
    }

    fn node_state(&self, node: &str) -> (String, String) {
        self.sinfo()
            .into_iter()
            .find(|(n, _, _)| n == node)
            .map(|(_, s, r)| (s, r))
            .unwrap()
    }

    fn truth(&self) -> Vec<ground_truth::Transition> {
        ground_truth::read(&self.dir.join("ground-truth.jsonl"))
    }

    fn profile(&self) -> hpchaos::profile::Profile {
        hpchaos::scenario::load_profile(&self.dir.join("profile.yaml"))
            .unwrap()
            .value
    }

    async fn client(&self) -> Client {
        let sagemaker = self.profile().sagemaker.unwrap();
        let config = aws_sdk_sagemaker::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(sagemaker.region))
            .endpoint_url(sagemaker.endpoint_url.unwrap())
            .credentials_provider(crate::support::lab::lab_credentials(&self.dir))
            .build();
        Client::from_conf(config)
    }
}

/// Polls `ready` until it holds or `limit` passes.
async fn eventually<T>(limit: Duration, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn instance_id(client: &Client, node: &str) -> (String, f64) {
    let nodes = client
        .list_cluster_nodes()
        .cluster_name("hpchaos-lab")
        .send()
        .await
        .unwrap();
    let summary = nodes
        .cluster_node_summaries()
        .iter()
        .find(|s| {
            s.private_dns_hostname()
                .is_some_and(|h| h.starts_with(&format!("{node}.")))
        })
        .unwrap_or_else(|| panic!("{node} not listed"));
    (
        summary.instance_id().unwrap().to_owned(),
        summary.launch_time().unwrap().as_secs_f64(),
    )
}

async fn node_status(client: &Client, id: &str) -> String {
    let described = client
        .describe_cluster_node()
        .cluster_name("hpchaos-lab")
        .node_id(id)
        .send()
        .await
        .unwrap();
    described
        .node_details()
        .unwrap()
        .instance_status()
        .unwrap()
        .status()
        .unwrap()
        .as_str()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_end_to_end() {
    if !crate::support::lab::lab_ready("lab") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("hpchaos-lab-test")
        .tempdir()
        .unwrap();
    let lab = Lab {
        dir: dir.path().to_path_buf(),
    };
    let dir_arg = lab.dir.display().to_string();
    // Whatever happens below, take the lab down.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = hpchaos(&["lab", "down", "--dir", &self.0]);
        }
    }
    let _down = Down(dir_arg.clone());

    up_is_idempotent(&lab);
    the_nodes_run_slurm_24_11(&lab);
    lab_ssh_reaches_a_node(&lab);
    four_compute_nodes_are_idle(&lab);
    host_lists_expand_as_slurm_does(&lab);
    let client = the_api_answers_as_hyperpod_does(&lab).await;
    a_kill_leaves_other_nodes_alone(&lab);
    an_xid_48_replaces_the_node(&lab, &client).await;
    let same_id = action_reboot_keeps_the_instance(&lab, &client).await;
    the_api_reboots_through_the_cluster(&lab, &client, same_id).await;
    recovery_none_never_repairs(&lab, &client).await;
    auto_resume_on_healthy_nodes_does_not_retry(&lab).await;
    auto_resume_after_an_xid_retries_the_step(&lab).await;
    the_workload_resumes_from_its_checkpoint(&lab).await;
    lab_down_leaves_nothing_behind(&lab);
}

/// `lab up` twice brings the lab up once.
fn up_is_idempotent(lab: &Lab) {
    // up, and up again: idempotent. (How long `up` takes is measured by
    // benches/lab-up, not asserted here.)
    let dir_arg = lab.dir.display().to_string();
    let up = hpchaos(&[
        "lab",
        "up",
        "--nodes",
        "4",
        "--dir",
        &dir_arg,
        "--timings",
        "fast",
    ]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let daemon = std::fs::read_to_string(lab.dir.join("daemon.pid")).unwrap();
    let again = hpchaos(&["lab", "up", "--nodes", "4", "--dir", &dir_arg]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("daemon.pid")).unwrap(),
        daemon,
        "a second up must not restart the lab"
    );
}

/// The Slurm HyperPod ships (24.11), from Debian trixie, on every node.
fn the_nodes_run_slurm_24_11(lab: &Lab) {
    assert!(
        lab.head("sinfo --version").starts_with("slurm-wlm 24.11."),
        "the lab must run Slurm 24.11 by default"
    );
    assert!(
        lab.ssh("10.1.0.12", "slurmd -V")
            .unwrap()
            .starts_with("slurm-wlm 24.11.")
    );
}

/// `lab ssh NODE -- COMMAND` runs COMMAND there as hpchaos reaches the
/// node, and exits with its status; a name the lab does not have is said.
fn lab_ssh_reaches_a_node(lab: &Lab) {
    let dir = lab.dir.display().to_string();
    let out = hpchaos(&[
        "lab",
        "ssh",
        "--dir",
        &dir,
        "ip-10-1-0-12",
        "--",
        "hostname",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ip-10-1-0-12");
    let out = hpchaos(&["lab", "ssh", "--dir", &dir, "--", "sh", "-c", "'exit 7'"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let out = hpchaos(&["lab", "ssh", "--dir", &dir, "no-such-node", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a lab node name"));
}

/// Four compute nodes idle in sinfo, read over SSH on the head node.
fn four_compute_nodes_are_idle(lab: &Lab) {
    let sinfo = lab.sinfo();
    assert_eq!(sinfo.len(), 4, "{sinfo:?}");
    assert!(
        sinfo.iter().all(|(_, state, _)| state == "idle"),
        "{sinfo:?}"
    );
}

/// The harness's one host-list expansion agrees with Slurm's own.
fn host_lists_expand_as_slurm_does(lab: &Lab) {
    for list in [
        "ip-10-1-0-[11-14]",
        "ip-10-1-0-[11-12,14],ip-10-1-1-11",
        "gpu[008-010],gpu12",
        "node[9-10]",
        "ip-10-1-0-11",
    ] {
        let slurm: Vec<String> = lab
            .head(&format!("scontrol show hostnames '{list}'"))
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            hpchaos::cluster::hostlist::expand(list).unwrap(),
            slurm,
            "{list}"
        );
    }
}

/// The SageMaker API pages, describes and refuses as HyperPod's does; returns its client.
async fn the_api_answers_as_hyperpod_does(lab: &Lab) -> Client {
    // ListClusterNodes pages through the five instances, two at a time.
    let client = lab.client().await;
    let pages: Vec<_> = client
        .list_cluster_nodes()
        .cluster_name("hpchaos-lab")
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    // Head, login node and four workers, two a page.
    assert_eq!(pages.len(), 3);
    let listed: usize = pages.iter().map(|p| p.cluster_node_summaries().len()).sum();
    assert_eq!(listed, 6);
    let described = client
        .describe_cluster()
        .cluster_name("hpchaos-lab")
        .send()
        .await
        .unwrap();
    assert_eq!(described.node_recovery().unwrap().as_str(), "Automatic");
    // The controller, login and worker instance groups, as on HyperPod.
    let groups: Vec<&str> = described
        .instance_groups()
        .iter()
        .filter_map(|g| g.instance_group_name())
        .collect();
    assert_eq!(groups, ["controller", "login", "workers"]);
    // The login node: Slurm's client and config, no slurmd, not in sinfo.
    let login = lab
        .ssh(
            "10.1.0.9",
            "sinfo -h -N -o %N | sort -u; pgrep -c slurmd || true",
        )
        .unwrap();
    assert_eq!(
        login,
        "ip-10-1-0-11\nip-10-1-0-12\nip-10-1-0-13\nip-10-1-0-14\n0\n"
    );
    let missing = client
        .describe_cluster()
        .cluster_name("no-such-cluster")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.into_service_error().meta().code(),
        Some("ResourceNotFound")
    );
    let (head_id, _) = instance_id(&client, "ip-10-1-0-10").await;
    let refused = client
        .batch_replace_cluster_nodes()
        .cluster_name("hpchaos-lab")
        .node_ids("i-00000000000000000")
        .node_ids(&head_id)
        .send()
        .await
        .unwrap();
    let codes: Vec<_> = refused
        .failed()
        .iter()
        .map(|f| f.error_code().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(codes, vec!["InstanceIdNotFound", "InvalidInstanceStatus"]);
    assert!(refused.successful().is_empty());
    client
}

/// `kill` on one node leaves the other nodes' processes alone.
fn a_kill_leaves_other_nodes_alone(lab: &Lab) {
    for node in ["10.1.0.13", "10.1.0.14"] {
        lab.ssh(node, "setsid sleep 4242 </dev/null >/dev/null 2>&1 &")
            .unwrap();
    }
    lab.ssh("10.1.0.13", "pkill -f 'sleep [4]242'").unwrap();
    assert!(
        lab.ssh("10.1.0.13", "pgrep -f 'sleep [4]242'").is_err(),
        "killed on 13"
    );
    assert!(
        lab.ssh("10.1.0.14", "pgrep -f 'sleep [4]242'").is_ok(),
        "14's process must survive a kill on 13"
    );
    assert!(lab.ssh("10.1.0.13", "pgrep -x slurmd").is_ok());
}

/// DCGM Xid 48 on one node: Action:Replace, then idle on a new instance.
async fn an_xid_48_replaces_the_node(lab: &Lab, client: &Client) {
    let (old_id, _) = instance_id(client, "ip-10-1-0-12").await;
    let injected = lab
        .ssh("10.1.0.12", "dcgmi test --inject --gpuid 0 -f 230 -v 48")
        .unwrap();
    assert!(injected.contains("Successfully injected"));
    eventually(
        Duration::from_secs(30),
        "ip-10-1-0-12 marked Action:Replace",
        || {
            let (state, reason) = lab.node_state("ip-10-1-0-12");
            (reason == "Action:Replace" && (state.starts_with("fail") || state.starts_with("down")))
                .then_some(())
        },
    )
    .await;
    let new_id = eventually(
        Duration::from_secs(60),
        "ip-10-1-0-12 back, replaced",
        || {
            // Slurm 24.11 without accounting keeps the reason on a node
            // back in service; the state says it is back.
            let (state, _) = lab.node_state("ip-10-1-0-12");
            let truth = lab.truth();
            let running = truth.iter().rev().find(|t| {
                t.event == "instance_running" && t.node.as_deref() == Some("ip-10-1-0-12")
            })?;
            (state == "idle" && running.detail != old_id).then(|| running.detail.clone())
        },
    )
    .await;
    let (api_id, _) = instance_id(client, "ip-10-1-0-12").await;
    assert_eq!(api_id, new_id);
    assert_ne!(api_id, old_id);
    assert_eq!(node_status(client, &api_id).await, "Running");
    let host_key_error = lab.ssh("10.1.0.12", "true").unwrap_err();
    assert!(
        host_key_error.contains("HOST IDENTIFICATION HAS CHANGED")
            || host_key_error.contains("Host key for"),
        "{host_key_error}"
    );
}

/// Action:Reboot set by hand keeps the instance and sets a new launch time; returns its id.
async fn action_reboot_keeps_the_instance(lab: &Lab, client: &Client) -> String {
    // Action:Reboot set by hand: same instance, new launch time.
    let (reboot_id, launched) = instance_id(client, "ip-10-1-0-11").await;
    lab.head("scontrol update nodename=ip-10-1-0-11 state=fail reason=Action:Reboot");
    eventually(
        Duration::from_secs(60),
        "ip-10-1-0-11 rebooted and idle",
        || {
            let rebooted = lab
                .truth()
                .iter()
                .any(|t| t.event == "node_rebooting" && t.node.as_deref() == Some("ip-10-1-0-11"));
            let (state, _) = lab.node_state("ip-10-1-0-11");
            (rebooted && state == "idle").then_some(())
        },
    )
    .await;
    let (same_id, relaunched) = instance_id(client, "ip-10-1-0-11").await;
    assert_eq!(same_id, reboot_id, "a reboot keeps the instance");
    assert!(relaunched > launched, "a reboot sets a new LaunchTime");
    same_id
}

/// BatchRebootClusterNodes: the API asks, the cluster reboots the node.
async fn the_api_reboots_through_the_cluster(lab: &Lab, client: &Client, same_id: String) {
    let rebooted = client
        .batch_reboot_cluster_nodes()
        .cluster_name("hpchaos-lab")
        .node_ids(&same_id)
        .send()
        .await
        .unwrap();
    assert_eq!(rebooted.successful(), std::slice::from_ref(&same_id));
    eventually(
        Duration::from_secs(60),
        "the API reboot of ip-10-1-0-11 done",
        || {
            let events: Vec<_> = lab
                .truth()
                .into_iter()
                // The control plane's own transitions, not what it saw
                // of Slurm.
                .filter(|t| t.node.as_deref() == Some("ip-10-1-0-11") && t.event != "slurm_node")
                .map(|t| t.event)
                .collect();
            let after_request = events
                .iter()
                .skip_while(|e| *e != "api_request")
                .cloned()
                .collect::<Vec<_>>();
            let (state, _) = lab.node_state("ip-10-1-0-11");
            (after_request.contains(&"node_rebooting".to_owned())
                && after_request.last().map(String::as_str) == Some("instance_running")
                && state == "idle")
                .then_some(())
        },
    )
    .await;
}

/// NodeRecovery None: an Xid in the kernel log is detected, never repaired.
async fn recovery_none_never_repairs(lab: &Lab, client: &Client) {
    client
        .update_cluster()
        .cluster_name("hpchaos-lab")
        .node_recovery(aws_sdk_sagemaker::types::ClusterNodeRecovery::None)
        .send()
        .await
        .unwrap();
    lab.ssh("10.1.0.13", "echo \"$(date '+%b %d %T') ip-10-1-0-13 kernel: NVRM: Xid (PCI:0000:b9:00): 79, pid=2213, GPU has fallen off the bus.\" >> /var/log/syslog").unwrap();
    eventually(
        Duration::from_secs(30),
        "ip-10-1-0-13 marked Action:Reboot",
        || (lab.node_state("ip-10-1-0-13").1 == "Action:Reboot").then_some(()),
    )
    .await;
    // For three times the reboot delay, nothing may repair it.
    let window = Instant::now() + Duration::from_secs(9);
    while Instant::now() < window {
        assert!(
            !lab.truth()
                .iter()
                .any(|t| t.event == "node_rebooting" && t.node.as_deref() == Some("ip-10-1-0-13")),
            "NodeRecovery None must not reboot"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(lab.node_state("ip-10-1-0-13").1, "Action:Reboot");
    client
        .update_cluster()
        .cluster_name("hpchaos-lab")
        .node_recovery(aws_sdk_sagemaker::types::ClusterNodeRecovery::Automatic)
        .send()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "ip-10-1-0-13 rebooted once recovery is back",
        || (lab.node_state("ip-10-1-0-13").0 == "idle").then_some(()),
    )
    .await;
}

/// Auto-resume with every node healthy: ResumeAction=NONE, the job fails.
async fn auto_resume_on_healthy_nodes_does_not_retry(lab: &Lab) {
    let none = lab.head("sbatch --nodes=1 -w ip-10-1-0-13 -o /fsx/canary/none-%j.out --wrap \"srun --auto-resume=1 bash -c 'exit 3'\"");
    let none_job = none.trim().rsplit(' ').next().unwrap().to_owned();
    let none_out = lab.dir.join(format!("shared/canary/none-{none_job}.out"));
    eventually(Duration::from_secs(30), "ResumeAction=NONE", || {
        std::fs::read_to_string(&none_out)
            .unwrap_or_default()
            .contains("ResumeAction=NONE")
            .then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the job gone", || {
        lab.head(&format!("squeue -h -j {none_job} 2>/dev/null || true"))
            .trim()
            .is_empty()
            .then_some(())
    })
    .await;
}

/// Auto-resume after an Xid and a task crash: the step is retried.
async fn auto_resume_after_an_xid_retries_the_step(lab: &Lab) {
    // Appended: the requeue would truncate the file this test reads.
    let retry = lab.head("sbatch --nodes=1 -w ip-10-1-0-11 --open-mode=append -o /fsx/canary/retry-%j.out --wrap \"srun --auto-resume=1 sleep 600\"");
    let retry_job = retry.trim().rsplit(' ').next().unwrap().to_owned();
    eventually(Duration::from_secs(30), "the retry job running", || {
        lab.head(&format!("squeue -h -j {retry_job} -o %T"))
            .contains("RUNNING")
            .then_some(())
    })
    .await;
    lab.ssh("10.1.0.11", "dcgmi test --inject --gpuid 0 -f 230 -v 48")
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "ip-10-1-0-11 failing with Action:Replace",
        || (lab.node_state("ip-10-1-0-11").1 == "Action:Replace").then_some(()),
    )
    .await;
    lab.ssh("10.1.0.11", "pkill -9 -xf '/usr/bin/sleep 600'")
        .unwrap();
    let retry_out = lab.dir.join(format!("shared/canary/retry-{retry_job}.out"));
    eventually(Duration::from_secs(30), "ResumeAction=RETRYSTEP", || {
        std::fs::read_to_string(&retry_out)
            .unwrap_or_default()
            .contains("ResumeAction=RETRYSTEP")
            .then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "ip-10-1-0-11 replaced after the job left",
        || {
            lab.truth()
                .iter()
                .any(|t| {
                    t.event == "instance_terminated" && t.node.as_deref() == Some("ip-10-1-0-11")
                })
                .then_some(())
        },
    )
    .await;
    lab.head(&format!("scancel {retry_job}"));
}

/// The workload resumes from its checkpoint after a replace.
async fn the_workload_resumes_from_its_checkpoint(lab: &Lab) {
    let submitted = lab.head("sbatch --nodes=2 --nodelist=ip-10-1-0-13,ip-10-1-0-14 /usr/local/sbin/hpchaos-canary.sbatch");
    let job = submitted.trim().rsplit(' ').next().unwrap().to_owned();
    let output = lab
        .dir
        .join(format!("shared/canary/hpchaos-canary-{job}.out"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    eventually(Duration::from_secs(60), "the first checkpoint", || {
        read(&output)
            .contains("checkpoint saved at step 20")
            .then_some(())
    })
    .await;
    lab.head("scontrol update nodename=ip-10-1-0-14 state=down reason=Action:Replace");
    let resumed = eventually(
        Duration::from_secs(90),
        "the job resumed from its checkpoint",
        || {
            read(&output).lines().find_map(|l| {
                l.strip_prefix("resumed from checkpoint at step ")
                    .map(|s| s.split(' ').next().unwrap_or("").to_owned())
            })
        },
    )
    .await;
    let step: u64 = resumed.parse().unwrap();
    assert!(step >= 20 && step.is_multiple_of(20), "resumed at {step}");
    // As on HyperPod (JobFileAppend=0), the requeue truncated the output:
    // the new run's file starts with its resume, not the first run's start.
    let text = read(&output);
    assert!(
        text.starts_with("resumed from checkpoint at step "),
        "the requeued run's output must start afresh: {}",
        text.lines().next().unwrap_or("")
    );
    assert!(!text.contains("starting from step 0"), "{text}");
    lab.head(&format!("scancel {job}"));
}

/// `lab down` leaves nothing behind outside the lab folder.
fn lab_down_leaves_nothing_behind(lab: &Lab) {
    let dir_arg = lab.dir.display().to_string();
    let down = hpchaos(&["lab", "down", "--dir", &dir_arg]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(hpchaos_lab::leftovers(&lab.dir), Vec::<String>::new());
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&netns.stdout).contains("hpchaos-"));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains("hpchaos-"), "mounts left: {mounts}");
    let processes = Command::new("pgrep")
        .args(["-f", &dir_arg])
        .output()
        .unwrap();
    assert!(
        processes.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&processes.stdout)
    );
}
