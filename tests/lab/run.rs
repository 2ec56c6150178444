//! `hpchaos run` end to end on the lab, through the real binary: shipped
//! scenarios pass with the phases they expect, a scenario that must fail
//! does (exit 1), a held lock refuses a second run (exit 3), Ctrl-C in the
//! middle of a fault rolls back, leaves no node drained by us and closes
//! the journal (exit 130), and a changed host key is refused with the fix.
//! Then the other shipped scenarios in two multi-scenario runs (replaced
//! nodes' new host keys accepted within a run), an SSH drop during a
//! watch, a throttled API, an abort probe, hpchaos run on the head node
//! itself, and compute nodes reached through a jump host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::lab::hpchaos;
use crate::support::root;

struct Lab {
    dir: PathBuf,
    reports: PathBuf,
}

impl Lab {
    fn profile(&self) -> String {
        self.dir.join("profile.yaml").display().to_string()
    }

    fn head(&self, command: &str) -> String {
        self.on("10.1.0.10", command)
    }

    /// Runs a shell command on the node at `address` over real OpenSSH.
    fn on(&self, address: &str, command: &str) -> String {
        crate::support::lab::ssh(&self.dir, address, command)
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    /// How many processes `pgrep PATTERN` finds on the node `name`.
    fn count_processes(&self, name: &str, pattern: &str) -> u32 {
        let address = name.trim_start_matches("ip-").replace('-', ".");
        let out = self.on(&address, &format!("pgrep -c {pattern} || true"));
        out.trim().parse().unwrap()
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
        let out = self.run_with(files);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr.clone(), latest_report(&stderr))
    }

    /// `hpchaos run ARGS` on this lab, into its report folder.
    fn run_with(&self, args: &[&str]) -> std::process::Output {
        let profile = self.profile();
        let reports = self.reports.display().to_string();
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend(["--cluster", &profile, "--report-dir", &reports]);
        hpchaos(&all)
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

/// The journal of the run into `lab.reports` whose folder ends with
/// `name`, once it contains `needle` (a minute at most).
fn wait_for_journal(lab: &Lab, name: &str, needle: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = std::fs::read_dir(&lab.reports)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.display().to_string().ends_with(name))
            .map(|p| p.join("journal.jsonl"))
            .find(|j| {
                std::fs::read_to_string(j)
                    .unwrap_or_default()
                    .contains(needle)
            });
        if let Some(journal) = found {
            return journal;
        }
        assert!(
            Instant::now() < deadline,
            "no journal of {name} came to contain {needle}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verdicts(report: &serde_json::Value) -> Vec<(String, String)> {
    verdicts_of(report, 0)
}

/// (phase, verdict) of the report's `index`th scenario.
fn verdicts_of(report: &serde_json::Value, index: usize) -> Vec<(String, String)> {
    report["scenarios"][index]["phases"]
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

/// A lab in a temporary folder, brought down when dropped.
struct LabUp {
    lab: Lab,
    _dir: tempfile::TempDir,
}

impl Drop for LabUp {
    fn drop(&mut self) {
        let _ = hpchaos(&["lab", "down", "--dir", &self.lab.dir.display().to_string()]);
    }
}

fn lab_up() -> Option<LabUp> {
    lab_up_with(&[])
}

/// A lab brought up with more `lab up` options; `None` when the lab
/// cannot run here (said; see `support::lab::lab_ready`).
fn lab_up_with(options: &[&str]) -> Option<LabUp> {
    let dir = crate::support::lab::start_lab("run", options)?;
    let lab = Lab {
        dir: dir.path().join("lab"),
        reports: dir.path().join("reports"),
    };
    Some(LabUp { lab, _dir: dir })
}

#[test]
fn runs_on_the_lab() {
    let Some(up) = lab_up() else {
        return;
    };
    let lab = &up.lab;
    a_shipped_replace_passes_every_phase_met(lab);
    a_shipped_reboot_through_slurm_passes(lab);
    an_existing_job_is_watched_through_a_replace_and_a_reboot(lab);
    more_shipped_scenarios_pass(lab);
    a_scenario_that_must_fail_does(lab);
    a_held_lock_refuses_a_second_run(lab);
    what_cannot_run_is_refused_before_anything(lab);
    a_written_plan_runs_as_written(lab);
    ctrl_c_mid_fault_rolls_back(lab);
}

/// `plan -o` writes the plan that `run --plan` carries out exactly: the
/// node it picked (a random pick without a seed), with the scenario's text
/// as planned; a planned node no longer usable is refused before
/// anything (exit 3), nothing recorded.
fn a_written_plan_runs_as_written(lab: &Lab) {
    let profile = lab.profile();
    let file = lab.dir.join("plan.json");
    let file_arg = file.display().to_string();
    let out = hpchaos(&[
        "plan",
        "tests/e2e/scheduled.yaml",
        "--cluster",
        &profile,
        "-o",
        &file_arg,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("plan written to"), "{stdout}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let planned = &plan["scenarios"][0];
    let target = planned["targets"][0].as_str().unwrap().to_owned();
    assert!(
        planned["instances"][&target]
            .as_str()
            .is_some_and(|i| i.starts_with("i-")),
        "{plan}"
    );
    assert!(
        planned["text"].as_str().unwrap().contains("gpu_stress"),
        "{plan}"
    );
    // Run as written: that node, whatever a new pick would draw.
    let out = lab.run_with(&["--plan", &file_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = latest_report(&stderr);
    assert_eq!(
        report["scenarios"][0]["targets"],
        serde_json::json!([target])
    );
    // The planned node drained since: refused, nothing done or recorded.
    lab.head(&format!(
        "scontrol update nodename={target} state=drain reason=hpchaos-plan-test"
    ));
    let runs_before = std::fs::read_dir(&lab.reports).map_or(0, |d| d.count());
    let out = lab.run_with(&["--plan", &file_arg]);
    lab.head(&format!("scontrol update nodename={target} state=resume"));
    // Back in service before the next step uses the cluster: Slurm shows
    // a resumed node `idle*` until its next ping answers.
    let deadline = Instant::now() + Duration::from_secs(90);
    while lab
        .head(&format!("sinfo -p dev -h -N -n {target} -o '%T'"))
        .trim()
        != "idle"
    {
        assert!(
            Instant::now() < deadline,
            "{target} did not come back after resume"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no longer matches the plan") && stderr.contains(&target),
        "{stderr}"
    );
    let runs_after = std::fs::read_dir(&lab.reports).map_or(0, |d| d.count());
    assert_eq!(runs_before, runs_after);
}

/// What cannot run is refused before anything starts, by `plan` and `run`
/// alike, with the same exit code, and leaves no run behind: a node Slurm
/// does not have (2, naming the nodes it has), a pick above the
/// blast-radius cap (2), a replace HyperPod will not make because the
/// cluster's NodeRecovery is None (3, saying so).
fn what_cannot_run_is_refused_before_anything(lab: &Lab) {
    let runs_before = std::fs::read_dir(&lab.reports).map_or(0, |d| d.count());
    let profile = lab.profile();
    for (file, code, said) in [
        (
            "tests/e2e/missing-node.yaml",
            2,
            "ip-10-1-0-99 not a Slurm node of this cluster (Slurm has",
        ),
        ("tests/e2e/over-cap.yaml", 2, "above the blast-radius cap"),
    ] {
        let plan = hpchaos(&["plan", file, "--cluster", &profile]);
        let stdout = String::from_utf8_lossy(&plan.stdout);
        assert_eq!(plan.status.code(), Some(code), "plan {file}: {stdout}");
        assert!(stdout.contains(said), "plan {file}: {stdout}");
        let (run_code, stderr, _) = lab.run(&[file]);
        assert_eq!(run_code, Some(code), "run {file}: {stderr}");
        assert!(stderr.contains(said), "run {file}: {stderr}");
        assert!(stderr.contains("nothing was done or recorded"), "{stderr}");
    }
    // The missing node's refusal names nodes Slurm has.
    let plan = hpchaos(&["plan", "tests/e2e/missing-node.yaml", "--cluster", &profile]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("ip-10-1-0-11"),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    assert!(crate::support::lab::set_node_recovery(&lab.dir, "None"));
    let (code, stderr, _) = lab.run(&["scenarios/node-replace-slurm.yaml"]);
    assert!(crate::support::lab::set_node_recovery(
        &lab.dir,
        "Automatic"
    ));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("NodeRecovery is None") && stderr.contains("--node-recovery Automatic"),
        "{stderr}"
    );
    // ubuntu's sudo taken away (cloud-init's entry gone, on every node):
    // refused before anything, exit 3, with the sudoers line that fixes it.
    let sudoers = lab.dir.join("etc/sudoers.d/90-cloud-init-users");
    let aside = lab.dir.join("sudoers-aside");
    std::fs::rename(&sudoers, &aside).unwrap();
    let (code, stderr, _) = lab.run(&["tests/e2e/kill-nothing.yaml"]);
    std::fs::rename(&aside, &sudoers).unwrap();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot become root with `sudo -n`")
            && stderr.contains("NOPASSWD:ALL")
            && stderr.contains("nothing was done"),
        "{stderr}"
    );
    // A permission the run needs and does not have (IAM refuses
    // ListClusterNodes): said before anything, naming the action to grant.
    let dir = lab.dir.display().to_string();
    let denied = hpchaos(&["lab", "deny", "--dir", &dir, "--action", "ListClusterNodes"]);
    assert!(denied.status.success(), "{denied:?}");
    let (code, stderr, _) = lab.run(&["tests/e2e/kill-nothing.yaml"]);
    let lifted = hpchaos(&["lab", "deny", "--dir", &dir, "--off"]);
    assert!(lifted.status.success(), "{lifted:?}");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("may not call sagemaker:ListClusterNodes")
            && stderr.contains("contrib/iam/hpchaos-run.json")
            && stderr.contains("nothing was done"),
        "{stderr}"
    );
    // Nothing was recorded: no run folder, nothing in the history.
    let runs_after = std::fs::read_dir(&lab.reports).map_or(0, |d| d.count());
    assert_eq!(runs_before, runs_after);
}

/// A shipped replace scenario passes, every phase met, lost work counted.
fn a_shipped_replace_passes_every_phase_met(lab: &Lab) {
    let recording = tempfile::tempdir().unwrap();
    let record = recording.path().join("xid48");
    let (code, stderr, report) = lab.run(&[
        "scenarios/xid48-replace.yaml",
        "--record",
        record.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    replay_gives_the_same(&record, &report);
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
    // Detected by HMA's own record in the lab's CloudWatch Logs, at its
    // `ts`: no later than the Slurm mark it left, which is still journaled
    // as the next witness (to the millisecond, from the controller log).
    let evidence = report["scenarios"][0]["phases"][0]["evidence"]
        .as_str()
        .unwrap();
    assert!(
        evidence.starts_with("hma ") && evidence.contains("XID Error {\"ErrNum\":48}"),
        "{evidence}"
    );
    let records: Vec<serde_json::Value> = std::fs::read_to_string(journal_of(&stderr))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let time_of = |wanted: &dyn Fn(&serde_json::Value) -> bool| {
        records
            .iter()
            .find(|r| wanted(r))
            .and_then(|r| r["source_time"].as_str())
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
    };
    let hma = time_of(&|r| r["field"] == "health_event" && r["source"] == "hma")
        .expect("HMA's record is journaled with its own time");
    let mark = time_of(&|r| {
        r["source"] == "slurmctld_log"
            && r["to"]
                .as_str()
                .is_some_and(|t| t.contains("reason set to: Action:Replace"))
    })
    .expect("the Slurm mark is journaled");
    assert!(hma <= mark, "HMA at {hma}, the Slurm mark at {mark}");
    // HyperPod's own events on the instance (ListClusterEvents), each
    // journaled with its time: the replacement started, and done.
    let events: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["field"] == "cluster_event")
        .collect();
    assert!(
        events.len() >= 2
            && events.iter().all(|r| r["source_time"].is_string())
            && events
                .iter()
                .any(|r| r["to"].as_str().unwrap().contains("replacement started"))
            && events
                .iter()
                .any(|r| r["to"].as_str().unwrap().contains("replaced instance")),
        "{events:?}"
    );
    assert_eq!(report["scenarios"][0]["phases"][2]["time_source"], "source");
    // The canary's output as HyperPod leaves it: HyperPod's auto-resume
    // lines, then the requeue truncating the file (JobFileAppend=0), read
    // again from its start; the steps redone are those from the checkpoint
    // the job says it resumed from up to the highest step seen before.
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert!(journal.contains("[Auto Resume] Info: JobID: "), "{journal}");
    assert!(journal.contains("ResumeAction=RETRYSTEP"), "{journal}");
    assert!(
        journal.contains("rewritten (") && journal.contains("read again from its start"),
        "{journal}"
    );
    // Where the new run started, as its output says: a checkpoint (the
    // lab's canary writes one every 20 steps), or step 0 when the fault
    // came before the first (that line is no resume and not journaled).
    let resumed_from: u64 = journal
        .split("resumed from checkpoint at step ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let lost = report["scenarios"][0]["lost_steps"].as_u64().unwrap();
    // At 5 steps a second, under 20 steps past a checkpoint plus what the
    // last polls saw before the truncation.
    assert!(
        resumed_from.is_multiple_of(20) && lost > 0 && lost < 40,
        "lost {lost}, resumed from {resumed_from}"
    );
    // What the failure cost: the lab's 8 GPUs a node (its Slurm has no GPU
    // gres, so the profile's gpus_per_node), down until the resume.
    let cost = &report["scenarios"][0]["cost"];
    assert_eq!(cost["gpus"].as_u64().unwrap() % 8, 0, "{cost}");
    assert!(
        cost["gpus_from"]
            .as_str()
            .unwrap()
            .contains("gpus_per_node"),
        "{cost}"
    );
    assert!(cost["gpu_hours_lost"].as_f64().unwrap() > 0.0, "{cost}");
    let ettr = cost["ettr"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&ettr), "{cost}");
    // Evidence collected from the target once it was marked, before its
    // instance went: in the run folder, linked from the report, and the
    // health report in it names the injected Xid.
    let collected = &report["scenarios"][0]["collected"][0];
    assert_eq!(collected["why"], "Action:Replace", "{collected}");
    let files = collected["files"].as_array().unwrap();
    assert_eq!(files.len(), 5, "{collected}");
    let run_dir = scenario_dir(&stderr);
    let health = files
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("dcgmi-health.txt"))
        .unwrap();
    let text = std::fs::read_to_string(run_dir.join(health["file"].as_str().unwrap())).unwrap();
    assert!(text.contains("Detected XID error 48"), "{text} {collected}");
    let markdown = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("### Evidence collected before the repair")
            && markdown.contains("(evidence/xid48-replace/"),
        "{markdown}"
    );
    // The lab runs the Slurm HyperPod ships, and the run says which.
    assert!(
        report["slurm_version"]
            .as_str()
            .unwrap()
            .starts_with("24.11."),
        "{}",
        report["slurm_version"]
    );
}

/// The lab's canary submitted by hand as `name` (`sbatch --job-name=NAME
/// ARGS`, outside hpchaos), once its output shows its first checkpoint
/// (step 20, a minute and a half at most): its job id.
fn submit_by_hand(lab: &Lab, name: &str, args: &str) -> String {
    let submitted = lab.head(&format!(
        "sbatch --job-name={name} {args} /usr/local/sbin/hpchaos-canary.sbatch"
    ));
    let job = submitted.trim().rsplit(' ').next().unwrap().to_owned();
    let output = lab.dir.join(format!("shared/canary/{name}-{job}.out"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(&output)
        .unwrap_or_default()
        .contains("checkpoint saved at step 20\n")
    {
        assert!(Instant::now() < deadline, "job {job} did not start");
        std::thread::sleep(Duration::from_millis(250));
    }
    job
}

/// `hpchaos replay` of the recording `record` made by the run that wrote
/// `live` (report.json): the same phases (times, verdicts, how each was
/// timed, the evidence), the same lost steps and GPUs, the same outcome,
/// with no cluster reached; the live run's verdict said beside it.
fn replay_gives_the_same(record: &Path, live: &serde_json::Value) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = hpchaos(&[
        "replay",
        record.to_str().unwrap(),
        "--report-dir",
        out_dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let live_code = if live["status"] == "passed" { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(live_code), "{stdout}\n{stderr}");
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let replayed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(dir).join("report.json")).unwrap())
            .unwrap();
    let (live, replayed) = (&live["scenarios"][0], &replayed["scenarios"][0]);
    let phases = |s: &serde_json::Value| -> Vec<serde_json::Value> {
        s["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                serde_json::json!([
                    p["phase"],
                    p["started_at"],
                    p["ended_at"],
                    p["verdict"],
                    p["time_source"],
                    p["evidence"]
                ])
            })
            .collect()
    };
    assert_eq!(phases(replayed), phases(live), "{stdout}");
    assert!(!phases(live).is_empty());
    assert_eq!(replayed["status"], live["status"]);
    assert_eq!(replayed["lost_steps"], live["lost_steps"]);
    assert_eq!(replayed["cost"]["gpus"], live["cost"]["gpus"]);
    assert!(
        stdout.contains(&format!(
            "replayed: {}",
            if live_code == 0 { "Passed" } else { "Failed" }
        )),
        "{stdout}"
    );
}

/// Runs `file`, a scenario whose middle phase is `middle`, recording it,
/// and asserts it passed with every phase met (its report and its
/// journal) and that its replay judges the same.
fn every_phase_met(lab: &Lab, file: &str, middle: &str) -> (serde_json::Value, String) {
    let recording = tempfile::tempdir().unwrap();
    let record = recording.path().join("watch");
    let (code, stderr, report) = lab.run(&[file, "--record", record.to_str().unwrap()]);
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap_or_default();
    assert_eq!(code, Some(0), "{file}: {stderr}\n{journal}");
    replay_gives_the_same(&record, &report);
    assert_eq!(
        verdicts(&report),
        phases(&[
            ("detect", "met"),
            ("drain", "met"),
            (middle, "met"),
            ("rejoin", "met"),
            ("resume", "met")
        ]),
        "{file}"
    );
    (report, journal)
}

/// A job submitted by hand (`sbatch`, outside hpchaos) and named by the
/// scenario: hpchaos finds its output from `scontrol show job` (the issue's
/// newcomer read none of it) and watches it through a replace and a
/// reboot; resume closes at a step past the fault, after the job said it
/// resumed from its checkpoint.
fn an_existing_job_is_watched_through_a_replace_and_a_reboot(lab: &Lab) {
    let job = submit_by_hand(lab, "llama7b", "");
    // `plan` shows the job it will watch and its output file.
    let profile = lab.profile();
    let out = hpchaos(&[
        "plan",
        "tests/e2e/existing-replace.yaml",
        "--cluster",
        &profile,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("watches:  job {job} (RUNNING on "))
            && stdout.contains("progress read with the plain `step N` preset"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("output /fsx/canary/llama7b-{job}.out;")),
        "{stdout}"
    );
    for (file, middle) in [
        ("tests/e2e/existing-replace.yaml", "replace"),
        ("tests/e2e/existing-reboot.yaml", "reboot"),
    ] {
        let (report, journal) = every_phase_met(lab, file, middle);
        assert!(
            journal.contains(&format!("watched: output /fsx/canary/llama7b-{job}.out")),
            "{journal}"
        );
        assert!(
            journal.contains("resumed from checkpoint at step "),
            "{journal}"
        );
        let resume = report["scenarios"][0]["phases"][4]["evidence"]
            .as_str()
            .unwrap();
        assert!(resume.starts_with("progress at step "), "{resume}");
        assert!(
            report["scenarios"][0]["lost_steps"].as_u64().is_some(),
            "{report}"
        );
        // The second run finds the job requeued once by the first: its
        // cost window starts at its last start, and says so.
        let partial = "the ETTR window starts at the job's last start: it had been requeued 1 time(s) before this run";
        assert_eq!(journal.contains(partial), middle == "reboot", "{journal}");
    }
    lab.head(&format!("scancel {job}"));
}

/// HyperPod's auto-resume in place (`lab up --auto-resume in-place`): a
/// job submitted by hand keeps its id and RUNNING state (Restarts 0)
/// through a replace and then a reboot of one of its nodes: Slurm shrinks
/// it off the node, an expansion job merges the repaired node back, the
/// step is retried. Drain ends when the job is seen without the target,
/// resume at progress after "Retrying step"; the steps redone are counted
/// from the checkpoint the retried step resumed from.
#[test]
fn auto_resume_in_place_is_judged_through_a_replace_and_a_reboot() {
    let Some(up) = lab_up_with(&["--auto-resume", "in-place"]) else {
        return;
    };
    let lab = &up.lab;
    let job = submit_by_hand(lab, "inplace", "--nodelist=ip-10-1-0-11,ip-10-1-0-12");
    for (file, middle) in [
        ("tests/e2e/in-place-replace.yaml", "replace"),
        ("tests/e2e/in-place-reboot.yaml", "reboot"),
    ] {
        let (report, journal) = every_phase_met(lab, file, middle);
        // The job never left RUNNING nor was requeued; its node list went
        // without the target and came back.
        assert!(!journal.contains("PENDING on"), "{journal}");
        assert!(!journal.contains("restarts 1"), "{journal}");
        assert!(
            journal.contains("\"to\":\"RUNNING on [ip-10-1-0-11], restarts 0\""),
            "{journal}"
        );
        for said in [
            "Succesfully shrink job",
            "Job Expansion complete",
            "Retrying step. Attempt number: ",
        ] {
            assert!(journal.contains(said), "{said}: {journal}");
        }
        let drain = report["scenarios"][0]["phases"][1]["evidence"]
            .as_str()
            .unwrap();
        assert_eq!(drain, "job RUNNING on ip-10-1-0-11", "{report}");
        // Ground truth from the job's own output: the checkpoint the retried
        // step resumed from; the canary checkpoints every 20 steps.
        let resumed_from: u64 = journal
            .rsplit("resumed from checkpoint at step ")
            .next()
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no resume line: {journal}"));
        let lost = report["scenarios"][0]["lost_steps"].as_u64().unwrap();
        assert!(
            resumed_from.is_multiple_of(20) && lost < 40,
            "lost {lost}, resumed from {resumed_from}"
        );
    }
    let state = lab.head(&format!("squeue -h -j {job} -o '%T %N'"));
    assert_eq!(state.trim(), "RUNNING ip-10-1-0-[11-12]");
    assert!(
        lab.head(&format!("scontrol -o show job {job}"))
            .contains(" Restarts=0 ")
    );
    lab.head(&format!("scancel {job}"));
}

/// A shipped reboot through Slurm passes.
fn a_shipped_reboot_through_slurm_passes(lab: &Lab) {
    let (code, stderr, report) = lab.run(&["scenarios/node-reboot-slurm.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report)[2],
        ("reboot".to_owned(), "met".to_owned())
    );
}

/// More shipped scenarios pass with the phases they expect.
fn more_shipped_scenarios_pass(lab: &Lab) {
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
}

/// A scenario that must fail does: the replace misses its deadline.
fn a_scenario_that_must_fail_does(lab: &Lab) {
    let (code, stderr, report) = lab.run(&["tests/e2e/tight-deadline.yaml"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        verdicts(&report)[2],
        ("replace".to_owned(), "missed".to_owned())
    );
    assert_eq!(report["status"], "failed");
}

/// A second run is refused while another holds the lock.
fn a_held_lock_refuses_a_second_run(lab: &Lab) {
    // A second run is refused while another holds the lock.
    // (A run of another host, whose lease was just renewed.)
    lab.head(
        r#"mkdir /run/hpchaos-run.lock && touch /run/hpchaos-run.lock/lease && echo '{"run_id":"run-by-a-test","host":"other-host","pid":1,"journal":"/elsewhere/journal.jsonl","started_at":"2026-11-29T12:00:00Z","lease_seconds":60}' > /run/hpchaos-run.lock/owner.json"#,
    );
    let (code, stderr, _) = lab.run(&["scenarios/node-reboot-slurm.yaml"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("another hpchaos run holds the lock")
            && stderr.contains("run run-by-a-test (pid 1 on other-host")
            && stderr.contains("wait for it to end"),
        "{stderr}"
    );
    lab.head("rm -rf /run/hpchaos-run.lock");
}

/// Ctrl-C in the middle of a fault rolls back and closes the journal (exit 130).
fn ctrl_c_mid_fault_rolls_back(lab: &Lab) {
    // Ctrl-C in the middle of a fault: with NodeRecovery None the reboot
    // never comes; SIGINT rolls back (the node we marked is resumed),
    // the journal ends, the exit code is 130.
    let dir_arg = lab.dir.display().to_string();
    let out = hpchaos(&["lab", "status", "--dir", &dir_arg]);
    assert_eq!(out.status.code(), Some(0));
    let recovery_none = crate::support::lab::set_node_recovery(&lab.dir, "None");
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
            "--accept-no-recovery",
        ])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run must still be going when detect is journaled; one that ended
    // first is said with what it printed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let journal = loop {
        if let Some(journal) = std::fs::read_dir(&lab.reports)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.display().to_string().ends_with("reboot-held"))
            .map(|p| p.join("journal.jsonl"))
            .find(|j| {
                std::fs::read_to_string(j)
                    .unwrap_or_default()
                    .contains(r#""phase":"detect","ended_at""#)
            })
        {
            break journal;
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run ended before detect: {:?}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "reboot-held never reached detect"
        );
        std::thread::sleep(Duration::from_millis(100));
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
    // By its state: Slurm 24.11 without accounting keeps the reason of a
    // resumed node until a job lands there.
    let sinfo = lab.head("sinfo -p dev -N -h -n ip-10-1-0-13 -o '%T'");
    assert_eq!(
        sinfo.trim(),
        "idle",
        "the node we marked must not be left drained"
    );
    assert!(crate::support::lab::set_node_recovery(
        &lab.dir,
        "Automatic"
    ));
}

/// Host keys follow the cluster: a node HyperPod replaced between two runs
/// (the API shows a new instance) has its new key accepted by the second
/// run, journaled with both fingerprints and pinned again; a key that
/// changed while the node stayed on its instance is refused, with a fix
/// whose commands work as printed.
fn host_keys_follow_hyperpods_replacements(lab: &Lab) {
    let pins = lab.dir.join("ssh/known_hosts.hpchaos-pins");
    let pinned = |node: &str| {
        std::fs::read_to_string(&pins)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(&format!("{node},")))
            .map(str::to_owned)
    };
    // A first run pins the node's key with its instance.
    let (code, stderr, _) = lab.run(&["tests/e2e/burn-on-replaced.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let first = pinned("ip-10-1-0-12").expect("ip-10-1-0-12 pinned");
    let old_instance = first.split("instance=").nth(1).unwrap().trim().to_owned();
    assert!(old_instance.starts_with("i-"), "{first}");
    // HyperPod replaces it between two runs: a new instance, a new key.
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
    let before = launches(lab);
    lab.head("scontrol update nodename=ip-10-1-0-12 state=down reason=Action:Replace");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(launches(lab) > before
        && lab
            .head("sinfo -p dev -N -h -n ip-10-1-0-12 -o '%T'")
            .trim()
            == "idle")
    {
        assert!(Instant::now() < deadline, "ip-10-1-0-12 was not replaced");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The second run accepts the new key, with both fingerprints.
    let (code, stderr, report) = lab.run(&["tests/e2e/burn-on-replaced.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let accepted: Vec<String> = report["scenarios"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["text"].as_str())
        .filter(|t| t.starts_with("accepted the new host key of ip-10-1-0-12 on "))
        .map(str::to_owned)
        .collect();
    assert_eq!(accepted.len(), 1, "{report}");
    let text = &accepted[0];
    assert!(
        text.contains(&format!("pinned on {old_instance}")) && text.matches("SHA256:").count() == 2,
        "{text}"
    );
    let second = pinned("ip-10-1-0-12").unwrap();
    assert!(!second.contains(&old_instance), "pinned again: {second}");
    assert_ne!(first, second);
    // known_hosts is hpchaos's to read, never to write: the test's own
    // OpenSSH needs the replaced node's key there.
    lab.trust_current_host_keys();
    // A key changed on the same instance (no replacement): refused.
    let key = lab.dir.join("nodes/ip-10-1-0-12/ssh_host_ed25519_key");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    // sshd takes its new key on SIGHUP (it re-executes itself).
    lab.on("10.1.0.12", "kill -HUP $(cat /run/sshd.pid)");
    let (code, stderr, report) = lab.run(&["tests/e2e/burn-on-replaced.yaml"]);
    let reason = report["scenarios"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        reason.contains("not a replacement by HyperPod")
            && reason.contains("ssh-keygen -R ip-10-1-0-12 -f"),
        "{reason}\n{stderr}"
    );
    // The fix works as printed: its commands, run as they are, let the
    // next run reach the node.
    let commands: Vec<&str> = reason.split('`').skip(1).step_by(2).collect();
    assert!(commands.len() >= 2, "{reason}");
    for command in commands {
        let out = Command::new("sh")
            .args(["-c", command])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
    }
    let (code, stderr, _) = lab.run(&["tests/e2e/burn-on-replaced.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// The other shipped scenarios, then the transport under stress: an SSH
/// connection dropped in the middle of a watch, a throttled API, and an
/// abort probe that stops a run.
/// The smaller suite on Slurm 22.05 (Debian bookworm's, the host's own):
/// hpchaos reads both releases, a replace and a reboot pass with every phase
/// met (the reboot keeping LaunchTime, so seen from Slurm), and `status
/// --format json` decodes every node.
#[test]
fn runs_on_slurm_22_05() {
    let Some(up) = lab_up_with(&["--slurm", "22.05", "--reboot-keeps-launch-time"]) else {
        return;
    };
    let lab = &up.lab;
    assert!(
        lab.head("sinfo --version").starts_with("slurm-wlm 22.05."),
        "the lab must run the host's Slurm 22.05"
    );
    // The node runs on the host's file system but has a home of its own:
    // its shells never read the host's dotfiles (whose start-up work once
    // stalled every command sent to the nodes for 60 s).
    use std::os::unix::fs::MetadataExt;
    let host_root = std::fs::metadata("/root").unwrap();
    let node_root = lab.head("stat -c '%d %i' /root");
    assert_ne!(
        node_root.trim(),
        format!("{} {}", host_root.dev(), host_root.ino()),
        "the node's /root must not be the host's"
    );
    let (code, stderr, report) = lab.run(&["scenarios/xid48-replace.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        report["slurm_version"]
            .as_str()
            .unwrap()
            .starts_with("22.05.")
    );
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
    lab.trust_current_host_keys();
    // The reboot keeps LaunchTime here: seen from Slurm, by slurmd's start.
    let (code, stderr, report) = lab.run(&["scenarios/node-reboot-slurm.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report)[2],
        ("reboot".to_owned(), "met".to_owned())
    );
    let reboot = &report["scenarios"][0]["phases"][2];
    assert!(
        !reboot["evidence"].as_str().unwrap().contains("LaunchTime"),
        "{reboot}"
    );
    // Two targets rebooted at once: each timed on its own, the scenario's
    // phases ending on the later one.
    lab.trust_current_host_keys();
    let (code, stderr, report) = lab.run(&["tests/e2e/reboot-two.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let scenario = &report["scenarios"][0];
    let targets: Vec<&str> = scenario["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 2, "{scenario}");
    let per_node = scenario["per_node"].as_array().unwrap();
    let at =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    for (index, phase) in ["detect", "drain", "reboot", "rejoin"].iter().enumerate() {
        let ends: Vec<_> = targets
            .iter()
            .map(|t| {
                let row = per_node
                    .iter()
                    .find(|r| r["node"] == *t && r["phase"] == *phase)
                    .unwrap_or_else(|| panic!("no {phase} on {t}: {scenario}"));
                at(&row["ended_at"])
            })
            .collect();
        let last = ends.iter().max().unwrap();
        assert_eq!(
            at(&scenario["phases"][index]["ended_at"]),
            *last,
            "{phase}: {scenario}"
        );
        assert_eq!(scenario["spread"][index]["reached"], 2, "{scenario}");
    }
    // The controller log was followed, not re-read: no fallback said.
    let texts: Vec<&str> = scenario["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(!texts.iter().any(|t| t.contains("follow")), "{texts:#?}");
    assert!(
        texts.iter().any(|t| t.starts_with("line: ")),
        "no controller log line journaled: {texts:#?}"
    );

    let status = hpchaos(&["status", "--cluster", &lab.profile(), "--format", "json"]);
    assert_eq!(status.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    // Compute nodes; the head node is the profile's, not listed.
    assert_eq!(nodes.len(), 4, "{status}");
    assert!(
        nodes
            .iter()
            .filter(|n| n["name"] != "ip-10-1-0-10")
            .all(|n| n["slurm"]["condition"] == "usable"),
        "{status}"
    );
}

/// A cluster of thousands: the lab runs 4 nodes and declares 2044 more;
/// sinfo and the API list all 2048, `status` maps them all, and a watch of
/// one target asks the API about that target only (a bound on requests
/// that listing the cluster each poll, 21 pages, would break).
#[test]
fn watches_one_target_of_a_cluster_of_thousands() {
    let Some(up) = lab_up_with(&["--cluster-size", "2048"]) else {
        return;
    };
    let lab = &up.lab;
    let listed = lab.head("sinfo -N -a -h -o %N | sort -u | wc -l");
    assert_eq!(listed.trim(), "2048");
    let status = hpchaos(&["status", "--cluster", &lab.profile(), "--format", "json"]);
    assert_eq!(status.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2048);
    assert!(
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["api"].is_object()),
        "every node mapped to its instance"
    );
    lab.on(
        "10.1.0.11",
        "setsid nohup sleep 86403 >/dev/null 2>&1 </dev/null &",
    );
    let (code, stderr, report) = lab.run(&["tests/e2e/quiet-large.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let watch = &report["scenarios"][0]["watch"];
    let seconds = watch["seconds"].as_f64().unwrap();
    let calls = watch["api_calls"].as_u64().unwrap();
    // 2044 nodes were down before the fault: `max_unhealthy_nodes: 1`
    // counts what went down since, so the run was not aborted.
    assert_eq!(report["scenarios"][0]["status"], "passed", "{report}");
    // The requests the lab's API received during the watch (from the end
    // of the injection to the watch's cost record), counted by the lab,
    // not by hpchaos.
    let journal: Vec<serde_json::Value> = std::fs::read_to_string(
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("journal: "))
            .unwrap(),
    )
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let at = |kind: &str| {
        journal
            .iter()
            .find(|r| r["type"] == kind)
            .and_then(|r| r["at"].as_str())
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
            .unwrap()
    };
    let (from, to) = (at("injection_finished"), at("watch_cost"));
    let received = std::fs::read_to_string(lab.dir.join("ground-truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["event"] == "api_call")
        .filter(|t| {
            let t = chrono::DateTime::parse_from_rfc3339(t["at"].as_str().unwrap()).unwrap();
            t >= from && t <= to
        })
        .count() as u64;
    // The lab's profile asks the API every 0.5 s: at most 2 requests a
    // poll (the target's DescribeClusterNode, one listing page), the
    // cluster's events every third poll, and HMA's record (CloudWatch
    // Logs) once a poll until every target's detection is read.
    let polls = (seconds / 0.5).ceil() as u64 + 1;
    let bound = 2 * polls + polls.div_ceil(3) + polls;
    assert!(
        received <= bound,
        "the lab received {received} requests in {seconds} s (bound {bound}): {watch}"
    );
    assert!(received > 0, "{watch}");
    // hpchaos's own count agrees with what the API received: a retry by
    // the SDK is one call and several requests; a read under way when the
    // watch ends is stopped and may never have been sent.
    assert!(
        calls > 0 && calls <= received + 1,
        "{calls} calls, {received} received"
    );
}

/// Runs that add up: a series of runs fills the history (`history`,
/// `trend`, `index.md` show their figures); the same lab slowed down with
/// `--scale` makes the scenario's regression gate fail (exit 1, the JUnit
/// failure naming both numbers), and the same gate passes against a run
/// of the slowed lab itself.
#[test]
fn regression_gates_judge_runs_against_the_history() {
    let Some(up) = lab_up() else {
        return;
    };
    let lab = &up.lab;
    gated_runs_pass_without_then_with_a_baseline(lab);
    let normal = the_history_holds_the_runs(lab);
    a_baseline_not_in_the_history_is_refused(lab);
    if_idle_skips_a_busy_cluster(lab);
    wait_lock_waits_for_the_first_run(lab);
    let slowed = a_slowed_lab_fails_the_gate(lab, normal);
    the_slowed_run_as_its_own_baseline_passes(lab, &slowed);
}

/// Without a baseline a gated scenario passes on its deadlines; then against the history.
fn gated_runs_pass_without_then_with_a_baseline(lab: &Lab) {
    // No baseline yet: said, and the scenario passes on its deadlines.
    let (code, stderr, report) = lab.run(&["tests/e2e/reboot-gated.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let gate = &report["scenarios"][0]["regression"][0];
    assert_eq!(gate["passed"], serde_json::Value::Null, "{gate}");
    assert!(
        gate["note"]
            .as_str()
            .unwrap()
            .starts_with("no baseline yet"),
        "{gate}"
    );
    for _ in 0..2 {
        let (code, stderr, report) = lab.run(&["tests/e2e/reboot-gated.yaml"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            report["scenarios"][0]["regression"][0]["passed"], true,
            "{report}"
        );
    }
}

/// The history, the trend and the index show the three runs; returns the reboot's p50.
fn the_history_holds_the_runs(lab: &Lab) -> f64 {
    // The history: three runs, their phases, a trend and the index.
    let reports = lab.reports.display().to_string();
    let out = hpchaos(&["history", "--report-dir", &reports, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{history}");
    assert!(runs.iter().all(|r| r["status"] == "passed"), "{history}");
    let out = hpchaos(&[
        "trend",
        "reboot-gated",
        "--report-dir",
        &reports,
        "--format",
        "json",
    ]);
    let trend: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reboot = trend["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "reboot")
        .unwrap()
        .clone();
    assert_eq!(reboot["count"], 3, "{trend}");
    let normal = reboot["p50_seconds"].as_f64().unwrap();
    let index = std::fs::read_to_string(lab.reports.join("index.md")).unwrap();
    assert!(
        index.contains("## reboot-gated") && index.contains("xychart-beta"),
        "{index}"
    );
    normal
}

/// A baseline run the history does not hold: refused before anything.
fn a_baseline_not_in_the_history_is_refused(lab: &Lab) {
    let before = std::fs::read_dir(&lab.reports).unwrap().count();
    let out = lab.run_with(&[
        "tests/e2e/reboot-gated.yaml",
        "--baseline",
        "run-doesnotexist",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such run in the history"));
    assert_eq!(std::fs::read_dir(&lab.reports).unwrap().count(), before);
}

/// `--if-idle` more nodes than the lab has skips the run (exit 4), nothing done.
fn if_idle_skips_a_busy_cluster(lab: &Lab) {
    // A schedule's guards. --if-idle more nodes than the lab has: skipped,
    // exit 4, nothing done (no run folder).
    let folders = || std::fs::read_dir(&lab.reports).unwrap().count();
    let before = folders();
    let out = lab.run_with(&["tests/e2e/reboot-gated.yaml", "--if-idle", "99"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("fewer than --if-idle 99"));
    assert_eq!(folders(), before);
}

/// `--wait-lock`: a second run waits for the first's lock, then runs.
fn wait_lock_waits_for_the_first_run(lab: &Lab) {
    let holding = |name: &str| {
        std::fs::read_dir(&lab.reports)
            .unwrap()
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().ends_with(name))
            .filter(|d| {
                std::fs::read_to_string(d.path().join("journal.jsonl"))
                    .is_ok_and(|j| j.contains(r#""type":"lock_acquired""#))
            })
            .count()
    };
    let held_before = holding("reboot-gated");
    let first = spawn_run(lab, "tests/e2e/reboot-gated.yaml");
    let deadline = Instant::now() + Duration::from_secs(60);
    while holding("reboot-gated") == held_before {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.on(
        "10.1.0.11",
        "setsid nohup sleep 86403 >/dev/null 2>&1 </dev/null &",
    );
    let out = lab.run_with(&["tests/e2e/quiet-large.yaml", "--wait-lock", "3m"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "the first run");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert!(journal.contains("waiting for the lock"), "{journal}");
    assert!(journal.contains(r#""type":"lock_acquired""#), "{journal}");
}

/// The same lab three times slower fails the regression gate; returns that run's report.
fn a_slowed_lab_fails_the_gate(lab: &Lab, normal: f64) -> serde_json::Value {
    // The same lab, three times slower.
    let dir = lab.dir.display().to_string();
    assert_eq!(
        hpchaos(&["lab", "down", "--dir", &dir]).status.code(),
        Some(0)
    );
    let again = hpchaos(&["lab", "up", "--nodes", "4", "--dir", &dir, "--scale", "3"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let (code, stderr, report) = lab.run(&["tests/e2e/reboot-gated.yaml"]);
    assert_eq!(code, Some(1), "the gate must fail: {stderr}");
    let scenario = &report["scenarios"][0];
    let gate = &scenario["regression"][0];
    assert_eq!(gate["passed"], false, "{gate}");
    let slow = gate["seconds"].as_f64().unwrap();
    assert!(slow > normal * 1.5, "{slow} against {normal}");
    assert!(
        scenario["reason"]
            .as_str()
            .unwrap()
            .contains("regression: reboot ended"),
        "{scenario}"
    );
    let run_dir = scenario_dir(&stderr);
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    let case = junit
        .split("<testcase")
        .find(|c| c.contains("reboot-gated.regression.reboot"))
        .unwrap_or_else(|| panic!("{junit}"));
    assert!(case.contains("<failure"), "{case}");
    let said = format!("ended {slow:.2} s after the injection");
    assert!(case.contains(&said), "{case}");
    let baseline = format!(
        "baseline {:.2} s",
        gate["baseline_seconds"].as_f64().unwrap()
    );
    assert!(case.contains(&baseline), "{case}");
    let markdown = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("### Regression against the baseline"),
        "{markdown}"
    );
    report
}

/// Against itself (the slowed run as the baseline): the gate holds.
fn the_slowed_run_as_its_own_baseline_passes(lab: &Lab, report: &serde_json::Value) {
    let slow_run = report["run_id"].as_str().unwrap().to_owned();
    let out = lab.run_with(&["tests/e2e/reboot-gated.yaml", "--baseline", &slow_run]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = latest_report(&stderr);
    let gate = &report["scenarios"][0]["regression"][0];
    assert_eq!(gate["passed"], true, "{gate}");
    assert!(
        gate["baseline_from"].as_str().unwrap().contains(&slow_run),
        "{gate}"
    );
}

/// The journal whose path stderr names.
fn journal_of(stderr: &str) -> PathBuf {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("journal: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no journal line: {stderr}"))
}

/// The run folder whose journal path stderr names.
fn scenario_dir(stderr: &str) -> PathBuf {
    journal_of(stderr).parent().unwrap().to_path_buf()
}

/// A suite scheduled with Slurm's own cron in the lab: `scrontab` on the
/// head runs hpchaos (from the shared /fsx) on a compute node every minute;
/// it runs at least twice on its own, and both runs are in the history.
#[test]
fn a_schedule_with_scrontab_runs_on_its_own() {
    let Some(up) = lab_up() else {
        return;
    };
    let lab = &up.lab;
    let shared = lab.dir.join("shared");
    std::fs::copy(env!("CARGO_BIN_EXE_hpchaos"), shared.join("hpchaos")).unwrap();
    std::fs::copy(
        root().join("tests/e2e/scheduled.yaml"),
        shared.join("scheduled.yaml"),
    )
    .unwrap();
    // From a compute node: the head over SSH with the lab's key (the lab
    // folder is visible on every node); no API (it listens on the host's
    // loopback, which a node cannot reach).
    std::fs::write(
        shared.join("profile.yaml"),
        format!(
            "name: lab-from-a-node\nhead_node: {{ name: ip-10-1-0-10 }}\nssh:\n  user: ubuntu\n  key: {}\n  known_hosts: {}\n",
            lab.dir.join("ssh/id_ed25519").display(),
            lab.dir.join("ssh/known_hosts").display()
        ),
    )
    .unwrap();
    std::fs::write(
        shared.join("hpchaos.scrontab"),
        "#SCRON --partition=dev\n#SCRON --job-name=hpchaos-scheduled\n\
         * * * * * cd /fsx && ./hpchaos run scheduled.yaml --cluster profile.yaml --report-dir reports --if-idle 1 --wait-lock 2m\n",
    )
    .unwrap();
    lab.head("scrontab /fsx/hpchaos.scrontab && scrontab -l");
    let reports = shared.join("reports");
    let started = Instant::now();
    let ended_runs = || {
        std::fs::read_dir(&reports)
            .map(|dirs| {
                dirs.flatten()
                    .filter(|d| {
                        std::fs::read_to_string(d.path().join("journal.jsonl"))
                            .is_ok_and(|j| j.contains(r#""type":"run_ended""#))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    while ended_runs() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "scrontab ran hpchaos {} time(s) in 4 minutes: {}",
            ended_runs(),
            lab.head("squeue -a; scrontab -l; tail -n 20 /var/log/slurm/slurmctld.log")
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    lab.head("scrontab -r");
    let out = hpchaos(&[
        "history",
        "--report-dir",
        &reports.display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = history["runs"].as_array().unwrap();
    assert!(runs.len() >= 2, "{history}");
    assert!(
        runs.iter()
            .all(|r| r["scenario"] == "scheduled" && r["status"] == "passed"),
        "{history}"
    );
}

/// A copy of the lab's profile whose head node is reached through a proxy
/// command, as operators reach HyperPod through SSM: a relay over the lab
/// network (socat) stands in for the SSM plugin, recording each start's
/// pid in `proxy.pids`. Compute nodes are then reached through the head.
fn proxy_profile(lab: &Lab) -> (PathBuf, PathBuf) {
    let pids = lab.dir.join("proxy.pids");
    let command = format!(
        "sh -c 'echo $$ >> {}; exec socat - TCP:%h:%p'",
        pids.display()
    );
    let text = std::fs::read_to_string(lab.dir.join("profile.yaml")).unwrap();
    assert!(text.contains("  proxy_command: null\n"), "{text}");
    let text = text.replace(
        "  proxy_command: null\n",
        &format!("  proxy_command: \"{command}\"\n"),
    );
    let profile = lab.dir.join("proxy-profile.yaml");
    std::fs::write(&profile, text).unwrap();
    (profile, pids)
}

fn proxy_pids(pids: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(pids)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// How many connections `node`'s sshd accepted from `from`.
fn accepted_from(lab: &Lab, node: &str, from: &str) -> usize {
    std::fs::read_to_string(lab.dir.join(format!("nodes/{node}/root/log/sshd.log")))
        .unwrap_or_default()
        .matches(&format!("Accepted publickey for ubuntu from {from} "))
        .count()
}

/// The head node behind a proxy command: one connection to it for the
/// whole run (one proxy started), compute nodes reached through it; then
/// the proxy killed mid-watch: the run reconnects through a new one and
/// passes.
#[test]
fn reaches_the_cluster_through_a_proxy_command() {
    let Some(up) = lab_up() else {
        return;
    };
    let lab = &up.lab;
    let (profile, pids) = proxy_profile(lab);
    let profile_arg = profile.display().to_string();
    one_proxy_a_run_reaches_the_compute_nodes(lab, &profile_arg, &pids);
    an_ssh_config_entry_does_the_same(lab, &pids);
    a_dead_proxy_is_replaced_mid_watch(lab, &profile_arg, &pids);
    init_writes_a_profile_status_accepts(lab);
}

/// `hpchaos init` against the lab's API writes a profile that `status`
/// accepts through SSM's proxy command: a stand-in `aws` on PATH opens
/// the session `aws ssm start-session` would, to the instance its target
/// names (and to nothing else). The host-key command init prints works as
/// printed.
fn init_writes_a_profile_status_accepts(lab: &Lab) {
    let status = hpchaos(&["lab", "status", "--dir", &lab.dir.display().to_string()]);
    let table = String::from_utf8_lossy(&status.stdout).into_owned();
    let head_instance = table
        .lines()
        .find(|l| l.starts_with("ip-10-1-0-10 "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("{table}"))
        .to_owned();
    let bin = lab.dir.join("fake-aws");
    std::fs::create_dir_all(&bin).unwrap();
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        format!(
            "#!/bin/sh\nt=''; p=22\nwhile [ $# -gt 0 ]; do case \"$1\" in --target) t=$2; shift;; --parameters) p=${{2#portNumber=}}; shift;; esac; shift; done\ncase \"$t\" in sagemaker-cluster:*_controller-{head_instance}) exec socat - TCP:10.1.0.10:$p ;; esac\necho \"An error occurred (TargetNotConnected) when calling the StartSession operation: $t is not connected.\" >&2; exit 254\n"
        ),
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&aws).status().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let lab_profile = hpchaos::scenario::load_profile(&lab.dir.join("profile.yaml"))
        .unwrap()
        .value;
    let api = lab_profile.sagemaker.unwrap();
    let known_hosts = lab.dir.join("init-known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let written = lab.dir.join("init-profile.yaml");
    let _ = std::fs::remove_file(&written);
    let key = lab.dir.join("ssh/id_ed25519");
    let out = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .env("PATH", &path)
        .args([
            "init",
            "--cluster-name",
            &api.cluster_name,
            "--region",
            &api.region,
        ])
        .args(["--endpoint-url", api.endpoint_url.as_deref().unwrap()])
        .args(["--aws-profile", api.aws_profile.as_deref().unwrap()])
        .args([
            "--credentials-file",
            api.credentials_file.as_deref().unwrap(),
        ])
        .arg("--key")
        .arg(&key)
        .arg("--known-hosts")
        .arg(&known_hosts)
        .arg("-o")
        .arg(&written)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(
        text.contains(&format!("_controller-{head_instance}"))
            && text.contains("AWS-StartSSHSession")
            && text.contains("- ip-10-1-0-9"),
        "{text}"
    );
    // The printed host-key command, run as printed.
    let command = stderr
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_owned();
    let added = Command::new("sh")
        .args(["-c", &command])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(added.status.success(), "{command}: {added:?}");
    let status = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .env("PATH", &path)
        .arg("status")
        .arg("--cluster")
        .arg(&written)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        said.contains("ip-10-1-0-11") && said.contains("agree"),
        "{said}"
    );
}

/// Through the proxy command, one connection to the head a run; compute nodes through it.
fn one_proxy_a_run_reaches_the_compute_nodes(lab: &Lab, profile_arg: &str, pids: &std::path::Path) {
    let reports = lab.reports.display().to_string();
    lab.on(
        "10.1.0.14",
        "setsid nohup sleep 86401 >/dev/null 2>&1 </dev/null &",
    );
    let through_head = accepted_from(lab, "ip-10-1-0-14", "10.1.0.10");
    let out = hpchaos(&[
        "run",
        "tests/e2e/local-kill.yaml",
        "--cluster",
        profile_arg,
        "--report-dir",
        &reports,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        lab.count_processes("ip-10-1-0-14", "-x -f 'sleep 86401'"),
        0
    );
    assert_eq!(
        proxy_pids(pids).len(),
        1,
        "one connection to the head per run"
    );
    assert!(
        accepted_from(lab, "ip-10-1-0-14", "10.1.0.10") > through_head,
        "the compute node was not reached through the head node"
    );
}

/// An OpenSSH config entry, as easy-ssh.sh writes one, works the same.
fn an_ssh_config_entry_does_the_same(lab: &Lab, pids: &std::path::Path) {
    // The same through an OpenSSH config entry, as easy-ssh.sh writes one:
    // the profile names only the file, the entry and known_hosts.
    let reports = lab.reports.display().to_string();
    let ssh_config = lab.dir.join("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host other\n  User nobody\n\nHost lab-cluster\n  HostName 10.1.0.10\n  User ubuntu\n  IdentityFile {}\n  ProxyCommand sh -c 'echo $$ >> {}; exec socat - TCP:%h:%p'\n",
            lab.dir.join("ssh/id_ed25519").display(),
            pids.display()
        ),
    )
    .unwrap();
    let config_profile = lab.dir.join("config-profile.yaml");
    std::fs::write(
        &config_profile,
        format!(
            "name: lab-through-ssh-config\nhead_node: {{ name: ip-10-1-0-10 }}\nssh:\n  known_hosts: {}\n  config: {}\n  config_host: lab-cluster\n",
            lab.dir.join("ssh/known_hosts").display(),
            ssh_config.display()
        ),
    )
    .unwrap();
    lab.on(
        "10.1.0.14",
        "setsid nohup sleep 86401 >/dev/null 2>&1 </dev/null &",
    );
    let before = proxy_pids(pids).len();
    let out = hpchaos(&[
        "run",
        "tests/e2e/local-kill.yaml",
        "--cluster",
        &config_profile.display().to_string(),
        "--report-dir",
        &reports,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(proxy_pids(pids).len(), before + 1, "{stderr}");
    assert_eq!(
        lab.count_processes("ip-10-1-0-14", "-x -f 'sleep 86401'"),
        0
    );
}

/// The proxy dies while the run watches a reboot: reconnected, passed.
fn a_dead_proxy_is_replaced_mid_watch(lab: &Lab, profile_arg: &str, pids: &std::path::Path) {
    let reports = lab.reports.display().to_string();
    let started = proxy_pids(pids).len();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args([
            "run",
            "scenarios/node-reboot-slurm.yaml",
            "--cluster",
            profile_arg,
        ])
        .args(["--report-dir", &reports])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(lab.dir.join("proxy-run.err")).unwrap())
        .spawn()
        .unwrap();
    wait_for_journal(lab, "node-reboot-slurm", r#""type":"injection_finished""#);
    let first = proxy_pids(pids)[started];
    signal(first, "KILL");
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(lab.dir.join("proxy-run.err")).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report = latest_report(&stderr);
    assert_eq!(
        verdicts(&report),
        phases(&[
            ("detect", "met"),
            ("drain", "observed"),
            ("reboot", "met"),
            ("rejoin", "met")
        ]),
        "{stderr}"
    );
    assert!(
        proxy_pids(pids).len() >= started + 2,
        "no new proxy after the first died: {:?}",
        proxy_pids(pids)
    );
    // The controller log's follower went with the proxy (or, killed as
    // the watch began, could not start over it): said either way, and the
    // log read each poll until it could be followed again.
    let texts: Vec<&str> = report["scenarios"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("stopped following") || t.contains("cannot follow")),
        "{texts:#?}"
    );
}

#[test]
fn more_scenarios_and_a_rough_transport() {
    // The compute nodes trust the profile's key too, and the profile
    // reaches them with this machine's own connections (`through_head`):
    // their host keys are checked here, and a jump host can carry them.
    let Some(up) = lab_up_with(&["--compute-trusts", "profile"]) else {
        return;
    };
    let lab = &up.lab;
    load_and_a_stray_process_kill_pass(lab);
    host_keys_follow_hyperpods_replacements(lab);
    replaced_nodes_new_host_keys_are_accepted(lab);
    an_ssh_drop_mid_watch_is_picked_up_again(lab);
    a_throttled_api_is_retried(lab);
    an_api_lost_mid_watch_is_read_again(lab);
    an_abort_probe_stops_the_scenario(lab);
    runs_on_the_head_node(lab);
    reaches_nodes_through_a_jump_host(lab);
}

/// Load that must leave nodes healthy, and a stray process killed by pattern, pass.
fn load_and_a_stray_process_kill_pass(lab: &Lab) {
    // Load that must leave nodes healthy, and a stray process killed by
    // pattern (the test starts one on every node): each passes its quiet
    // window, and every rollback step succeeds.
    let compute = ["10.1.0.11", "10.1.0.12", "10.1.0.13", "10.1.0.14"];
    for address in compute {
        lab.on(
            address,
            "setsid nohup sleep 86400 >/dev/null 2>&1 </dev/null &",
        );
    }
    let (code, stderr, report) = lab.run(&[
        "scenarios/gpu-stress.yaml",
        "scenarios/gpu-burn.yaml",
        "scenarios/process-kill-pattern.yaml",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for index in 0..3 {
        assert_eq!(report["scenarios"][index]["status"], "passed", "{stderr}");
        assert_eq!(verdicts_of(&report, index), phases(&[("quiet", "met")]));
        for step in report["scenarios"][index]["rollback"].as_array().unwrap() {
            assert_eq!(step["ok"], true, "{step}");
        }
    }
    let killed_on = report["scenarios"][2]["targets"][0].as_str().unwrap();
    assert_eq!(
        lab.count_processes(killed_on, "-x -f 'sleep 86400'"),
        0,
        "the stray process on {killed_on} was not killed"
    );
    // The diagnostic runs a minute and the window is 30 s: rollback stops it.
    assert!(
        stderr.contains("; verified: on ip-10-1-0-")
            && stderr.contains(": check that `timeout --signal=INT 60 dcgmi diag -r 3` runs"),
        "{stderr}"
    );
    let stressed = report["scenarios"][0]["targets"][0].as_str().unwrap();
    assert_eq!(
        lab.count_processes(stressed, "-f 'dcgmi dia[g]'"),
        0,
        "the diagnostic still runs on {stressed} after rollback"
    );
}

/// Four faults in one run: the replaced nodes' new host keys are accepted for the run.
fn replaced_nodes_new_host_keys_are_accepted(lab: &Lab) {
    // An Xid in the kernel log, a health-check file, a reboot over SSH and
    // a forced replace through Slurm, in one run: the replaced nodes' new
    // host keys are accepted for the run once the API shows their new
    // instances (journaled), so later steps on them go through.
    let (code, stderr, report) = lab.run(&[
        "scenarios/xid74-kernel-log.yaml",
        "scenarios/health-status-file.yaml",
        "scenarios/node-reboot-ssh.yaml",
        "scenarios/node-replace-slurm.yaml",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let expected = [
        vec![
            ("detect", "met"),
            ("drain", "observed"),
            ("replace", "met"),
            ("rejoin", "met"),
            ("resume", "met"),
        ],
        vec![
            ("detect", "met"),
            ("drain", "observed"),
            ("replace", "met"),
            ("rejoin", "met"),
        ],
        vec![
            ("detect", "met"),
            ("drain", "observed"),
            ("reboot", "met"),
            ("rejoin", "met"),
        ],
        vec![
            ("detect", "met"),
            ("drain", "met"),
            ("replace", "met"),
            ("rejoin", "met"),
            ("resume", "met"),
        ],
    ];
    for (index, expected) in expected.iter().enumerate() {
        assert_eq!(verdicts_of(&report, index), phases(expected), "{index}");
    }
    let health = &report["scenarios"][1];
    let replaced = health["targets"][0].as_str().unwrap();
    let accepted = format!("accepted the new host key of {replaced} on ");
    assert!(
        health["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["text"].as_str().unwrap_or("").starts_with(&accepted)),
        "{health}"
    );
    let removed = health["rollback"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().unwrap_or("").contains("rm -f"))
        .unwrap();
    assert_eq!(
        removed["ok"], true,
        "rollback on the replaced node: {removed}"
    );
    lab.trust_current_host_keys();
}

/// An SSH drop in the middle of a watch is journaled, picked up again, and the run passes.
fn an_ssh_drop_mid_watch_is_picked_up_again(lab: &Lab) {
    // An SSH drop in the middle of a watch: the head node's sshd stops
    // taking connections and the ones open are cut. The run journals the
    // lost source, picks it up again when sshd is back, and passes.
    let mut child = spawn_run(lab, "scenarios/node-reboot-slurm.yaml");
    let journal = wait_for_journal(lab, "node-reboot-slurm", r#""type":"injection_finished""#);
    let sshd = head_sshd(lab);
    struct Resume(u32);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-CONT", &self.0.to_string()])
                .status();
        }
    }
    let resume = Resume(sshd);
    signal(sshd, "STOP");
    for session in children(sshd) {
        signal(session, "TERM");
    }
    wait_for_journal(lab, "node-reboot-slurm", r#""from":"ok","to":"failing: "#);
    drop(resume);
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    // The lost source was journaled, and Slurm was read again over a new
    // connection to the head node afterwards.
    let lost = text
        .find(r#""field":"poll","from":"ok","to":"failing: "#)
        .expect("the lost source is journaled");
    assert!(
        text[lost..].contains(r#""source":"sinfo","node":"#)
            || text[lost..].contains(r#""to":"ok again after "#),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(journal.with_file_name("report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verdicts(&report)[2],
        ("reboot".to_owned(), "met".to_owned())
    );
    assert_eq!(
        verdicts(&report)[3],
        ("rejoin".to_owned(), "met".to_owned())
    );
}

/// A throttled API (1 request/s): the SDK retries and the run still passes.
fn a_throttled_api_is_retried(lab: &Lab) {
    // A throttled API (1 request/s): the SDK retries with backoff and the
    // run still passes.
    let dir_arg = lab.dir.display().to_string();
    let throttled = |lab: &Lab| {
        std::fs::read_to_string(lab.dir.join("ground-truth.jsonl"))
            .unwrap_or_default()
            .matches(r#""event":"api_throttled""#)
            .count()
    };
    let before = throttled(lab);
    let out = hpchaos(&[
        "lab", "throttle", "--dir", &dir_arg, "--rate", "1", "--burst", "1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (code, stderr, report) = lab.run(&["scenarios/node-reboot-api.yaml"]);
    let out = hpchaos(&["lab", "throttle", "--dir", &dir_arg, "--off"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report),
        phases(&[
            ("detect", "met"),
            ("drain", "observed"),
            ("reboot", "met"),
            ("rejoin", "met")
        ])
    );
    assert!(throttled(lab) > before, "the API never throttled the run");
}

/// An API throttled past the SDK's retries mid-watch: said at once, read again, passed.
fn an_api_lost_mid_watch_is_read_again(lab: &Lab) {
    // An API throttled past the SDK's retries in the middle of a watch:
    // the lost source is journaled, and once the limit is lifted the API
    // is read again, the reboot is seen and the run passes.
    let dir_arg = lab.dir.display().to_string();
    // Slurm read every poll throughout (the light touch off), so that its
    // polls can be seen to go on while the API waits.
    let every_poll = lab.dir.join("every-poll.yaml");
    let text = std::fs::read_to_string(lab.profile()).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.trim_start().starts_with("slurm_when_quiet:") {
            true => "  slurm_when_quiet: 0s\n".to_owned(),
            false => format!("{l}\n"),
        })
        .collect();
    assert!(text.contains("slurm_when_quiet: 0s"), "{text}");
    std::fs::write(&every_poll, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(["run", "scenarios/node-reboot-ssh.yaml", "--cluster"])
        .arg(&every_poll)
        .args(["--report-dir", &lab.reports.display().to_string()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = wait_for_journal(lab, "node-reboot-ssh", r#""type":"injection_finished""#);
    let out = hpchaos(&["lab", "throttle", "--dir", &dir_arg, "--rate", "0"]);
    assert_eq!(out.status.code(), Some(0));
    let throttled_at = chrono::Utc::now();
    wait_for_journal(
        lab,
        "node-reboot-ssh",
        r#""source":"sagemaker","field":"poll","from":"ok","to":"failing: "#,
    );
    // Slurm is polled on while the API's reads wait out the SDK's
    // retries: the gaps between Slurm polls stay near its interval
    // (500 ms in the lab), and the API's trouble is said within an
    // interval of its own, not when the SDK gives up.
    let throttle_said_after = |text: &str| {
        let failing = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| {
                r["source"] == "sagemaker"
                    && r["field"] == "poll"
                    && r["to"].as_str().is_some_and(|t| t.starts_with("failing: "))
            })
            .expect("the failing record");
        let said: chrono::DateTime<chrono::Utc> = failing["at"].as_str().unwrap().parse().unwrap();
        (said - throttled_at).as_seconds_f64()
    };
    let out = hpchaos(&["lab", "throttle", "--dir", &dir_arg, "--off"]);
    assert_eq!(out.status.code(), Some(0));
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    let said_after = throttle_said_after(&text);
    assert!(
        said_after < 3.0,
        "the throttled API was said {said_after:.1}s after it began"
    );
    let cost: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|r: &serde_json::Value| r["type"] == "watch_cost")
        .expect("a watch_cost record");
    let gap = cost["slurm_poll_gap_ms_max"].as_f64().unwrap();
    assert!(
        gap < 2000.0,
        "Slurm waited {gap:.0} ms between polls: {cost}"
    );
    // Either the API was read again before the end, or Slurm's own
    // witness (slurmd's start) ended the reboot while the API was lost.
    let read_again = text
        .contains(r#""source":"sagemaker","field":"poll","from":"failing","to":"ok again after "#);
    let by_slurm =
        text.contains(r#""phase":"reboot","ended_at""#) && text.contains("slurmd started again");
    assert!(read_again || by_slurm, "{text}");
}

/// An abort probe that fails aborts the scenario (exit 1), rolls back and leaves the node healthy.
fn an_abort_probe_stops_the_scenario(lab: &Lab) {
    // An abort probe fails once the fault marks the node: the scenario is
    // aborted (exit 1) with the probe named, rollback runs, and the node
    // is left healthy.
    let (code, stderr, report) = lab.run(&["tests/e2e/abort-probe.yaml"]);
    assert_eq!(code, Some(1), "{stderr}");
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["status"], "aborted");
    assert!(
        scenario["reason"]
            .as_str()
            .unwrap()
            .contains("probe: ip-10-1-0-13 carries no reason failed"),
        "{scenario}"
    );
    assert_eq!(
        scenario["rollback"].as_array().unwrap().len(),
        2,
        "{scenario}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab
        .head("sinfo -p dev -N -h -n ip-10-1-0-13 -o '%T'")
        .trim()
        != "idle"
    {
        assert!(Instant::now() < deadline, "ip-10-1-0-13 was left unhealthy");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// hpchaos on the head node itself: a profile whose head node is `local`
/// runs Slurm commands there, not over SSH; compute nodes are still SSH.
fn runs_on_the_head_node(lab: &Lab) {
    lab.on(
        "10.1.0.14",
        "setsid nohup sleep 86401 >/dev/null 2>&1 </dev/null &",
    );
    let profile = lab.dir.join("head-profile.yaml");
    let ssh = lab.dir.join("ssh");
    std::fs::write(
        &profile,
        format!(
            "name: lab-from-head\nhead_node: {{ name: ip-10-1-0-10, local: true }}\n\
             ssh:\n  user: ubuntu\n  key: {}\n  known_hosts: {}\n  compute: through_head\n",
            lab.dir.join("shared/ubuntu/.ssh/id_ed25519").display(),
            ssh.join("known_hosts").display()
        ),
    )
    .unwrap();
    let head: u32 = std::fs::read_to_string(lab.dir.join("nodes/ip-10-1-0-10/pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The head node runs in its own root file system (Slurm 24.11 from
    // trixie): hpchaos goes into the lab folder, which every node sees.
    let exe = lab.dir.join("hpchaos");
    std::fs::copy(env!("CARGO_BIN_EXE_hpchaos"), &exe).unwrap();
    let scenario = lab.dir.join("local-kill.yaml");
    std::fs::copy(root().join("tests/e2e/local-kill.yaml"), &scenario).unwrap();
    let out = Command::new("nsenter")
        .args(["-t", &head.to_string(), "-a", "--root", "--wd"])
        .arg(&exe)
        .arg("run")
        .arg(&scenario)
        .arg("--cluster")
        .arg(&profile)
        .arg("--report-dir")
        .arg(&lab.reports)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = latest_report(&stderr);
    assert_eq!(verdicts(&report), phases(&[("quiet", "met")]), "{stderr}");
    assert_eq!(
        lab.count_processes("ip-10-1-0-14", "-x -f 'sleep 86401'"),
        0
    );
}

/// Compute nodes reached through a jump host (the lab's login node, as
/// operators do): the kill's connection comes from the jump host.
fn reaches_nodes_through_a_jump_host(lab: &Lab) {
    lab.on(
        "10.1.0.14",
        "setsid nohup sleep 86401 >/dev/null 2>&1 </dev/null &",
    );
    let profile = lab.dir.join("jump-profile.yaml");
    let text = std::fs::read_to_string(lab.dir.join("profile.yaml")).unwrap();
    assert!(text.contains("jump_host: null"), "{text}");
    let text = text.replace(
        "jump_host: null",
        "jump_host: { name: ip-10-1-0-9, address: \"10.1.0.9\" }",
    );
    std::fs::write(&profile, text).unwrap();
    let sshd_log = lab.dir.join("nodes/ip-10-1-0-14/root/log/sshd.log");
    let via_jump = |log: &str| {
        log.matches("Accepted publickey for ubuntu from 10.1.0.9 ")
            .count()
    };
    let before = via_jump(&std::fs::read_to_string(&sshd_log).unwrap_or_default());
    let out = hpchaos(&[
        "run",
        "tests/e2e/local-kill.yaml",
        "--cluster",
        &profile.display().to_string(),
        "--report-dir",
        &lab.reports.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        lab.count_processes("ip-10-1-0-14", "-x -f 'sleep 86401'"),
        0
    );
    let after = via_jump(&std::fs::read_to_string(&sshd_log).unwrap());
    assert!(
        after > before,
        "no connection to ip-10-1-0-14 came through the jump host"
    );
}

fn spawn_run(lab: &Lab, file: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(["run", file, "--cluster", &lab.profile()])
        .args(["--report-dir", &lab.reports.display().to_string()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// (pid, parent pid, command name) of every process.
fn processes() -> Vec<(u32, u32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            let name = stat[open + 1..close].to_owned();
            let ppid = stat[close + 2..].split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid, name))
        })
        .collect()
}

fn children(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, ppid, _)| *ppid == parent)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The head node's listening sshd: the child of its init named sshd.
fn head_sshd(lab: &Lab) -> u32 {
    let init: u32 = std::fs::read_to_string(lab.dir.join("nodes/ip-10-1-0-10/pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    processes()
        .into_iter()
        .find(|(_, ppid, name)| *ppid == init && name == "sshd")
        .map(|(pid, _, _)| pid)
        .expect("the head node runs sshd")
}

/// A plain HTTP GET to the lab's monitoring host (curl, as an operator
/// would): the body.
fn http_get(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The monitoring must see the fault (issue: "Monitoring must see it"):
/// on a lab with Prometheus, Alertmanager, a Pushgateway and per-node
/// exporters, xid48-replace-monitored passes with the Xid metric and the
/// GpuXidError alert timed by the monitoring's own clock; its results are
/// on the Pushgateway and in Prometheus, queried back; with every
/// dcgm-exporter stopped, the same scenario fails (exit 1) and the report
/// says the monitoring never saw the fault, and why (the target's dcgm
/// scrape `up` 0 from the injection). Between them, an alert that fired
/// under an Alertmanager silence fails as "nobody was paged".
#[test]
fn the_monitoring_must_see_the_fault() {
    let Some(up) = lab_up_with(&["--monitoring"]) else {
        return;
    };
    let lab = &up.lab;
    let profile = std::fs::read_to_string(lab.dir.join("profile.yaml")).unwrap();
    assert!(profile.contains("http://10.1.0.5:9090"), "{profile}");
    let (report, target) = the_monitoring_sees_the_fault(lab);
    the_results_are_queried_back(&report);
    what_is_already_true_is_refused(lab, &target);
    a_silenced_alert_pages_nobody(lab);
    let (stderr, report) = a_blind_spot_still_writes_its_results(lab);
    the_blind_spot_is_said_and_why(&stderr, &report);
}

/// The monitored replace passes, the Xid metric and alert timed by the monitoring's own clock.
fn the_monitoring_sees_the_fault(lab: &Lab) -> (serde_json::Value, String) {
    let (code, stderr, report) = lab.run(&["scenarios/xid48-replace-monitored.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    let scenario = &report["scenarios"][0];
    let injected =
        chrono::DateTime::parse_from_rfc3339(scenario["injected_at"].as_str().unwrap()).unwrap();
    let target = scenario["targets"][0].as_str().unwrap().to_owned();
    let rows = scenario["monitoring"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{scenario}");
    for (row, source) in rows.iter().zip(["prometheus", "alertmanager"]) {
        assert_eq!(row["verdict"], "met", "{row}");
        assert_eq!(row["source"], source, "{row}");
        let seen = chrono::DateTime::parse_from_rfc3339(row["seen_at"].as_str().unwrap()).unwrap();
        assert!(seen > injected, "{row}");
        assert!(row["detail"].as_str().unwrap().contains(&target), "{row}");
    }
    assert_eq!(rows[0]["name"], "xid-metric");
    assert!(
        rows[0]["detail"].as_str().unwrap().contains("= 48"),
        "{}",
        rows[0]
    );
    assert_eq!(rows[1]["name"], "GpuXidError");
    // Timed by the monitoring's own clock: the journal saw each one after
    // the time it carries (the sample's step, the alert's startsAt).
    let journal_path = journal_of(&stderr);
    let journal = std::fs::read_to_string(&journal_path).unwrap();
    let sightings: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "monitoring_seen")
        .collect();
    assert_eq!(sightings.len(), 2, "{journal}");
    for s in &sightings {
        let recorded = chrono::DateTime::parse_from_rfc3339(s["at"].as_str().unwrap()).unwrap();
        let own = chrono::DateTime::parse_from_rfc3339(s["seen_at"].as_str().unwrap()).unwrap();
        assert!(own <= recorded, "{s}");
    }
    // Every report format carries the rows.
    let run_dir = journal_path.parent().unwrap();
    let markdown = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("| monitoring: xid-metric |"),
        "{markdown}"
    );
    assert!(markdown.contains("### Monitoring"), "{markdown}");
    assert!(markdown.contains("section Monitoring"), "{markdown}");
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("xid48-replace-monitored.monitoring.GpuXidError"),
        "{junit}"
    );
    // The replaced node's evidence, with the injected Xid, linked.
    assert!(
        scenario["collected"][0]["files"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{scenario}"
    );
    assert!(markdown.contains("evidence/"), "{markdown}");
    (report, target)
}

/// The results are on the Pushgateway as pushed, and Prometheus scraped them from it.
fn the_results_are_queried_back(report: &serde_json::Value) {
    // The results, queried back: the Pushgateway holds them as pushed, and
    // Prometheus scraped them from it.
    let scenario = &report["scenarios"][0];
    let pushed = &scenario["pushed"][0];
    assert_eq!(pushed["error"], serde_json::Value::Null, "{pushed}");
    let metrics = http_get("http://10.1.0.5:9091/metrics");
    let expected = scenario["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "replace")
        .unwrap()["elapsed_seconds"]
        .as_f64()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("hpchaos_phase_seconds{")
                && l.contains("phase=\"replace\"")
                && l.contains("scenario=\"xid48-replace-monitored\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - expected).abs() < 0.01, "{line} vs {expected}");
    assert!(
        metrics.contains("hpchaos_scenario_passed{cluster=\"lab\",instance=\"\",job=\"hpchaos\",scenario=\"xid48-replace-monitored\"} 1"),
        "{metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = http_get(
            "http://10.1.0.5:9090/api/v1/query?query=hpchaos_monitoring_met%7Bscenario%3D%22xid48-replace-monitored%22%7D",
        );
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the results: {answer}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// An alert already firing, or one no rule defines, is refused before anything changes.
fn what_is_already_true_is_refused(lab: &Lab, target: &str) {
    // Never time what is already true: the alert for the target just
    // replaced still fires (the rule looks back five minutes), so a
    // scenario expecting it again is refused before anything changes; so
    // is an alert no rule defines.
    let refire = std::fs::read_to_string(root().join("scenarios/xid48-replace-monitored.yaml"))
        .unwrap()
        .replace("name: xid48-replace-monitored", "name: xid48-refire")
        .replace(
            "    - alert: GpuXidError\n      labels:\n        Hostname: $target\n      within: 2m\n",
            &format!("    - alert: GpuXidError\n      labels:\n        Hostname: {target}\n      within: 2m\n    - alert: GpuXidErorr\n      within: 1m\n    - name: typo-metric\n      promql: 'DCGM_FI_DEV_XID_ERROR{{Hostname=\"$target\"}} == 48'\n      within: 1m\n    - name: typo-label\n      alert: GpuXidError\n      labels:\n        Hostnme: $target\n      within: 1m\n"),
        );
    assert!(refire.contains("GpuXidErorr"), "{refire}");
    let refire_file = lab.dir.join("refire.yaml");
    std::fs::write(&refire_file, refire).unwrap();
    lab.trust_current_host_keys();
    let (code, stderr, report) = lab.run(&[&refire_file.display().to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    let reason = report["scenarios"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("the monitoring is not ready before injecting"),
        "{reason}"
    );
    assert!(
        reason.contains("`GpuXidError` is already firing since"),
        "{reason}"
    );
    assert!(reason.contains("did you mean `GpuXidError`"), "{reason}");
    assert!(
        reason
            .contains("no metric `DCGM_FI_DEV_XID_ERROR` (did you mean `DCGM_FI_DEV_XID_ERRORS`?)"),
        "{reason}"
    );
    assert!(
        reason.contains("no series carries a label `Hostnme` (did you mean `Hostname`?)"),
        "{reason}"
    );
    assert!(reason.contains("nothing was changed"), "{reason}");
    assert_eq!(
        report["scenarios"][0]["injected_at"],
        serde_json::Value::Null,
        "{reason}"
    );
}

/// An alert fired under an Alertmanager silence is not met: nobody was paged.
fn a_silenced_alert_pages_nobody(lab: &Lab) {
    // Fired but silenced: a silence in Alertmanager for GPU 2's Xid alert
    // (as an operator sets for maintenance). The metric is seen; the alert
    // fires, suppressed, so nobody is paged: not met, and not called a
    // blind spot either.
    let now = chrono::Utc::now();
    let silence = serde_json::json!({
        "matchers": [
            {"name": "alertname", "value": "GpuXidError", "isRegex": false},
            {"name": "gpu", "value": "2", "isRegex": false}
        ],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "hpchaos tests",
        "comment": "maintenance"
    });
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(silence.to_string())
        .arg("http://10.1.0.5:9093/api/v2/silences")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let silence_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    let muted = std::fs::read_to_string(root().join("scenarios/xid48-replace-monitored.yaml"))
        .unwrap()
        .replace("name: xid48-replace-monitored", "name: xid48-silenced")
        .replace("    code: 48\n", "    code: 48\n    gpu: 2\n")
        .replace(
            "        Hostname: $target\n",
            "        Hostname: $target\n        gpu: \"2\"\n",
        )
        .replace("within: 2m", "within: 15s");
    let muted_file = lab.dir.join("silenced.yaml");
    std::fs::write(&muted_file, muted).unwrap();
    lab.trust_current_host_keys();
    let (code, stderr, report) = lab.run(&[&muted_file.display().to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    let rows = report["scenarios"][0]["monitoring"].as_array().unwrap();
    assert_eq!(rows[0]["verdict"], "met", "{}", rows[0]);
    assert_eq!(rows[1]["verdict"], "not_reached", "{}", rows[1]);
    let detail = rows[1]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "the alert fired but Alertmanager suppressed it, nobody was paged: on ip-10-1-0-"
        ),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("(silenced by {silence_id})")),
        "{detail}"
    );
    assert!(!detail.contains("never saw"), "{detail}");
    let markdown = std::fs::read_to_string(scenario_dir(&stderr).join("report.md")).unwrap();
    assert!(
        markdown.contains("**Not paged:** the alert fired"),
        "{markdown}"
    );
    assert!(!markdown.contains("**Blind spot:**"), "{markdown}");
}

/// A blind spot (every dcgm-exporter stopped) fails the run; its results go by remote write.
fn a_blind_spot_still_writes_its_results(lab: &Lab) -> (String, serde_json::Value) {
    // A blind spot: every dcgm-exporter stopped (as `systemctl stop` would),
    // the same scenario with shorter deadlines so the test waits less, on
    // another GPU so the first run's alert does not stand in the way.
    lab.trust_current_host_keys();
    for address in ["10.1.0.11", "10.1.0.12", "10.1.0.13", "10.1.0.14"] {
        lab.on(address, "pkill -f 'dcgm[-]exporter'; true");
    }
    let text = std::fs::read_to_string(root().join("scenarios/xid48-replace-monitored.yaml"))
        .unwrap()
        .replace("name: xid48-replace-monitored", "name: xid48-blind")
        .replace("    code: 48\n", "    code: 48\n    gpu: 1\n")
        .replace(
            "        Hostname: $target\n",
            "        Hostname: $target\n        gpu: \"1\"\n",
        )
        .replace("within: 60s", "within: 10s")
        .replace("within: 2m", "within: 15s");
    let blind = lab.dir.join("blind.yaml");
    std::fs::write(&blind, text).unwrap();
    // Its results by remote write to Prometheus instead of the Pushgateway.
    let profile = std::fs::read_to_string(lab.dir.join("profile.yaml"))
        .unwrap()
        .replace("  remote_write: null\n", "")
        .replace("  pushgateway:\n", "  remote_write:\n")
        .replace(
            "url: http://10.1.0.5:9091",
            "url: http://10.1.0.5:9090/api/v1/write",
        );
    assert!(
        profile.contains("remote_write:\n    url: http://10.1.0.5:9090/api/v1/write"),
        "{profile}"
    );
    let remote = lab.dir.join("profile-remote-write.yaml");
    std::fs::write(&remote, profile).unwrap();
    let out = hpchaos(&[
        "run",
        &blind.display().to_string(),
        "--cluster",
        &remote.display().to_string(),
        "--report-dir",
        &lab.reports.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (code, report) = (out.status.code(), latest_report(&stderr));
    assert_eq!(code, Some(1), "{stderr}");
    let written = &report["scenarios"][0]["pushed"][0];
    assert_eq!(
        written["to"], "http://10.1.0.5:9090/api/v1/write",
        "{written}"
    );
    assert_eq!(written["error"], serde_json::Value::Null, "{written}");
    let answer = http_get(
        "http://10.1.0.5:9090/api/v1/query?query=hpchaos_monitoring_met%7Bscenario%3D%22xid48-blind%22%7D",
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let series = answer["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{answer}");
    for s in series {
        assert_eq!(s["value"][1], "0", "{answer}");
        assert_eq!(s["metric"]["job"], "hpchaos", "{answer}");
        assert_eq!(s["metric"]["cluster"], "lab", "{answer}");
    }
    (stderr, report)
}

/// The blind spot's report says the monitoring never saw the fault, and why.
fn the_blind_spot_is_said_and_why(stderr: &str, report: &serde_json::Value) {
    let scenario = &report["scenarios"][0];
    assert!(
        scenario["reason"]
            .as_str()
            .unwrap()
            .contains("the monitoring never saw the fault"),
        "{scenario}"
    );
    // And why: Prometheus's `up` for the target's dcgm scrape was 0 while
    // the fault happened (its exporter was stopped before the injection
    // and came back only with the replaced node).
    let target = report["scenarios"][0]["targets"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let address = target.trim_start_matches("ip-").replace('-', ".");
    let why = format!(
        "why: {target}: `up` was 0 for its dcgm scrape ({address}:9400) from the injection"
    );
    for row in scenario["monitoring"].as_array().unwrap() {
        assert!(row["detail"].as_str().unwrap().contains(&why), "{row}");
    }
    for row in scenario["monitoring"].as_array().unwrap() {
        assert_eq!(row["verdict"], "not_reached", "{row}");
    }
    // The recovery itself still passed: the fault was real, only unseen.
    assert!(
        scenario["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["verdict"] == "met"),
        "{scenario}"
    );
    let markdown = std::fs::read_to_string(scenario_dir(stderr).join("report.md")).unwrap();
    assert!(markdown.contains("**Blind spot:**"), "{markdown}");
}

/// HyperPod as it is now (issue 21): a login group called `frontend` is a
/// login group because the API says `SlurmConfig.NodeType: Login`, and
/// the cluster's own changes (a patch due, a software update, scaling, a
/// deep health check and its maintenance reservation) refuse a run with
/// what and until when; a schedule skips instead; nothing is done either
/// way.
#[test]
fn the_apis_roles_and_the_clusters_own_changes_are_respected() {
    let Some(up) = lab_up_with(&["--login-group", "frontend"]) else {
        return;
    };
    let lab = &up.lab;
    let profile = lab.profile();
    let dir = lab.dir.display().to_string();
    let status = hpchaos(&["status", "--cluster", &profile]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("group frontend: Login (never a target), 1 node(s): ip-10-1-0-9")
            && said.contains("group controller: Controller (never a target)")
            && said.contains("group workers: Compute, 4 node(s)"),
        "{said}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = scratch.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let plan = |scenario: &str, profile: &str| {
        let out = hpchaos(&["plan", scenario, "--cluster", profile]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    // The login group as a pool: refused by its role, not its name.
    let login = write(
        "login.yaml",
        "name: hit-the-login-group\ntarget:\n  pool: { instance_group: frontend }\nfault:\n  process_kill:\n    target: { pattern: '^sleep' }\nexpect:\n  recovery: none\n  quiet_for: 30s\n",
    );
    let (code, text) = plan(&login, &profile);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(
            "ip-10-1-0-9 is a login node (instance group frontend, SlurmConfig.NodeType Login"
        ),
        "{text}"
    );
    // A profile that does not list the login node disagrees with the API:
    // refused before anything, with the fix.
    let unlisted = std::fs::read_to_string(&profile)
        .unwrap()
        .replace("login_nodes:\n- ip-10-1-0-9\n", "login_nodes: []\n");
    let unlisted = write("unlisted.yaml", &unlisted);
    let quiet = write(
        "quiet.yaml",
        "name: quiet-on-11\ntarget:\n  pool: { nodes: [ip-10-1-0-11] }\nfault:\n  process_kill:\n    target: { pattern: '^sleep' }\nexpect:\n  recovery: none\n  quiet_for: 30s\n",
    );
    let (code, text) = plan(&quiet, &unlisted);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("the API says ip-10-1-0-9 is a Login node (instance group frontend")
            && text.contains("add it to login_nodes"),
        "{text}"
    );
    assert_eq!(plan(&quiet, &profile).0, Some(0));
    // Each of the cluster's own changes refuses the run (exit 3), said
    // with what it is.
    let change = |args: &[&str]| {
        let mut all = vec!["lab", "change", "--dir", &dir, "--off"];
        all.extend_from_slice(args);
        let out = hpchaos(&all);
        assert!(out.status.success(), "{out:?}");
    };
    for (args, words) in [
        // Within the scenario's 30 s window (one due later is no overlap).
        (
            &["--patch-in", "15s"][..],
            "an AMI patch of instance group workers is due at",
        ),
        (
            &["--software-update", "InProgress"][..],
            "a software update of instance group workers is InProgress",
        ),
        (
            &["--scaling", "1"][..],
            "Scaling is in progress on instance group workers",
        ),
        (
            &["--deep-health-check", "ip-10-1-0-11", "--for", "20m"][..],
            "a deep health check is running on target ip-10-1-0-11",
        ),
    ] {
        change(args);
        let (code, text) = plan(&quiet, &profile);
        assert_eq!(code, Some(3), "{args:?}: {text}");
        assert!(
            text.contains("the cluster is under change of its own") && text.contains(words),
            "{args:?}: {text}"
        );
    }
    // The deep health check holds the node in a Slurm maintenance
    // reservation too, said with its end.
    let (_, text) = plan(&quiet, &profile);
    assert!(
        text.contains(
            "target(s) ip-10-1-0-11 in Slurm maintenance reservation sagemaker-deep-health-check-ip-10-1-0-11"
        ) && text.contains("(until "),
        "{text}"
    );
    // A schedule skips instead (exit 4), and nothing is recorded.
    let out = lab.run_with(&[&quiet, "--if-unchanged"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("skipped: the cluster is under change"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(&lab.reports).map_or(true, |mut d| d.next().is_none()),
        "a run folder was made"
    );
    // Without --if-unchanged the run is refused (exit 3), nothing done.
    let out = lab.run_with(&[&quiet]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // A patch due after the scenario's longest deadline does not overlap.
    change(&["--patch-in", "10m"]);
    assert_eq!(plan(&quiet, &profile).0, Some(0));
    // Once the cluster is done, the scenario runs.
    change(&[]);
    let (code, text) = plan(&quiet, &profile);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !lab.head("scontrol -o show reservation")
            .contains("ReservationName="),
        "the check's reservation is left"
    );
    // The API checks signatures as AWS does: a wrong secret, or a key it
    // does not know, is refused with AWS's error and the fix.
    let credentials = std::fs::read_to_string(lab.dir.join("aws-credentials")).unwrap();
    let wrong_secret: String = credentials
        .lines()
        .map(|l| match l.starts_with("aws_secret_access_key") {
            true => "aws_secret_access_key = not-the-labs-secret\n".to_owned(),
            false => format!("{l}\n"),
        })
        .collect();
    for (changed, error) in [
        (
            wrong_secret,
            "InvalidSignatureException: The request signature we calculated does not match",
        ),
        (
            credentials.replace("AKIDHPCHAOSLAB", "AKIDSOMEONEELSE"),
            "UnrecognizedClientException: The security token included in the request is invalid",
        ),
    ] {
        let file = write("credentials", &changed);
        let profile_text = std::fs::read_to_string(&profile).unwrap().replace(
            &lab.dir.join("aws-credentials").display().to_string(),
            &file,
        );
        let other = write("other-keys.yaml", &profile_text);
        let (code, text) = plan(&quiet, &other);
        assert_eq!(code, Some(3), "{text}");
        assert!(
            text.contains(error) && text.contains("the API refused the credentials"),
            "{text}"
        );
    }
    // HyperPod's deep health check as a fault: the node held in a Slurm
    // maintenance reservation while checked, then given back, each phase
    // met.
    let (code, stderr, report) = lab.run(&["scenarios/deep-health-check.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        verdicts(&report),
        phases(&[
            ("detect", "met"),
            ("health_check", "met"),
            ("rejoin", "met")
        ])
    );
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert!(
        journal.contains("DeepHealthCheckInProgress")
            && journal.contains("Created reservation=sagemaker-deep-health-check-"),
        "{journal}"
    );
    // Slurm read again once the check began (the light touch stirred by
    // the detection): the node seen in its reservation before its rejoin.
    assert!(journal.contains(r#""to":"maint|"#), "{journal}");
    // Killed (-9) during the check, `recover` leaves the check to HyperPod
    // (nothing of the run's is left applied), releases the lock, and the
    // node comes back on its own, its reservation gone.
    let mut killed = spawn_run(lab, "scenarios/deep-health-check.yaml");
    let journal = wait_for_journal(lab, "deep-health-check", "\"phase\":\"health_check\"");
    killed.kill().unwrap();
    killed.wait().unwrap();
    let out = hpchaos(&["recover", "--cluster", &profile, journal.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("nothing left applied")
            && said.contains(
                "left to HyperPod: SageMaker StartClusterHealthCheck InstanceStress on ip-10-1-0-"
            ),
        "{said}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = hpchaos(&["status", "--cluster", &profile]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
        let reservations = lab.head("scontrol -o show reservation");
        if text.contains("Slurm and SageMaker agree")
            && !text.contains("DeepHealthCheckInProgress")
            && !reservations.contains("ReservationName=")
            && text.contains("lock: free")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{text}\n{reservations}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Credentials that expire during a run, as an SSO session does: a
    // profile whose credential_process issues 20-second sessions is
    // refreshed through the SDK's provider chain and the watch never stops
    // seeing the API; the same session given as fixed keys runs out
    // mid-watch, and the run says so with what to do.
    let long = write(
        "long-quiet.yaml",
        "name: outlives-its-credentials\ntarget:\n  pool: { nodes: [ip-10-1-0-11] }\nfault:\n  gpu_stress:\n    duration: 2s\n    tool: { custom: { command: [sleep, '2'] } }\nexpect:\n  recovery: none\n  quiet_for: 30s\n",
    );
    let with_credentials = |name: &str, credentials: &str| {
        let file = write(&format!("{name}.credentials"), credentials);
        let text = std::fs::read_to_string(&profile).unwrap().replace(
            &lab.dir.join("aws-credentials").display().to_string(),
            &file,
        );
        write(&format!("{name}.yaml"), &text)
    };
    let refreshed = with_credentials(
        "refreshed",
        &format!(
            "[hpchaos-lab]\ncredential_process = {} lab credentials --dir {dir} --expires-in 20s\n",
            env!("CARGO_BIN_EXE_hpchaos")
        ),
    );
    let sessions_before = std::fs::read_to_string(lab.dir.join("api-keys"))
        .unwrap()
        .matches("[session-")
        .count();
    let reports = lab.reports.display().to_string();
    let out = hpchaos(&[
        "run",
        &long,
        "--cluster",
        &refreshed,
        "--report-dir",
        &reports,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert!(!journal.contains("ExpiredToken"), "{journal}");
    let sessions = std::fs::read_to_string(lab.dir.join("api-keys"))
        .unwrap()
        .matches("[session-")
        .count()
        - sessions_before;
    assert!(
        sessions >= 2,
        "the credentials were issued {sessions} time(s)"
    );
    let issued = hpchaos(&["lab", "credentials", "--dir", &dir, "--expires-in", "15s"]);
    let session: serde_json::Value = serde_json::from_slice(&issued.stdout).unwrap();
    let fixed = with_credentials(
        "fixed",
        &format!(
            "[hpchaos-lab]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            session["AccessKeyId"].as_str().unwrap(),
            session["SecretAccessKey"].as_str().unwrap(),
            session["SessionToken"].as_str().unwrap()
        ),
    );
    let out = hpchaos(&["run", &long, "--cluster", &fixed, "--report-dir", &reports]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert!(
        journal.contains("ExpiredTokenException")
            && journal.contains("the credentials expired during the run"),
        "{stderr}\n{journal}"
    );
    // Credentials that may not read the cluster's log group: the run says
    // so once and times detect from Slurm's mark.
    let out = hpchaos(&[
        "lab",
        "deny",
        "--dir",
        &dir,
        "--action",
        "logs:FilterLogEvents",
    ]);
    assert!(out.status.success(), "{out:?}");
    let reboot = write(
        "xid79.yaml",
        "name: xid79-without-hma\ntarget:\n  pool: { nodes: [ip-10-1-0-12] }\nfault:\n  xid: { code: 79, gpu: 0, method: dcgm_inject }\nexpect:\n  recovery: reboot\n  reason: \"Action:Reboot\"\n  deadlines: { detect: 60s, drain: 2m, reboot: 5m, rejoin: 6m }\n",
    );
    let (code, stderr, report) = lab.run(&[&reboot]);
    assert_eq!(code, Some(0), "{stderr}");
    let journal = std::fs::read_to_string(journal_of(&stderr)).unwrap();
    assert_eq!(
        journal.matches("HMA's record cannot be read").count(),
        1,
        "{journal}"
    );
    assert!(journal.contains("AccessDeniedException"), "{journal}");
    let evidence = report["scenarios"][0]["phases"][0]["evidence"]
        .as_str()
        .unwrap();
    assert!(
        evidence.starts_with("slurmctld_log ") || evidence.starts_with("sinfo "),
        "{evidence}"
    );
}
