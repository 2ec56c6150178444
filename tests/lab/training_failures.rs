//! The failures training loses time to (issue "The failures training
//! loses time to"), on the lab: the hung rank, the straggler, the network
//! between nodes, the checkpoint store and Slurm's daemons. The lab's canary
//! runs in lockstep through a collective with a watchdog (its
//! `hpchaos-train`); a stopped rank is caught only by that watchdog, as on
//! a real cluster. Each case asserts the phases against what the nodes
//! show, and a `kill -9` drill that `recover` leaves nothing stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::lab::{hpchaos, journal_of, records};
use crate::support::root;

struct Lab {
    dir: PathBuf,
    reports: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = hpchaos(&["lab", "down", "--dir", &self.dir.display().to_string()]);
    }
}

impl Lab {
    fn profile(&self) -> String {
        self.dir.join("profile.yaml").display().to_string()
    }

    fn on(&self, node: &str, command: &str) -> String {
        let address = node.replace("ip-", "").replace('-', ".");
        crate::support::lab::ssh(&self.dir, &address, command)
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    fn args(&self, scenario: &str) -> Vec<String> {
        [
            "run",
            scenario,
            "--cluster",
            &self.profile(),
            "--report-dir",
            &self.reports.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The canary `job`'s output, read on the head: the ground truth of
    /// its steps and checkpoints.
    fn canary_output(&self, job: u64) -> String {
        self.on(
            "ip-10-1-0-10",
            &format!("cat /fsx/canary/hpchaos-canary-{job}.out"),
        )
    }

    /// Processes on `node` stopped (state T) by a signal, with their
    /// command lines.
    fn stopped(&self, node: &str) -> Vec<String> {
        self.on(node, "ps -eo stat=,pid=,args= | awk '$1 ~ /^T/' || true")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Runs `file` (its journal named `name`) to its end, which must be
    /// exit 0; returns its journal.
    fn run_passing(&self, file: &str, name: &str) -> PathBuf {
        let args = self.args(file);
        let out = hpchaos(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        journal_of(&self.reports, name).unwrap()
    }

    /// The drill: runs `file` (its journal named `name`), waits for its
    /// injection to take, lets `took` assert it on the targets, then
    /// `kill -9` the run and `recover`, which must exit 0. Returns the
    /// targets and what `recover` printed. The run is killed whatever
    /// `took` finds (a failed assertion never leaves it running).
    fn kill_9_after_injection(
        &self,
        file: &str,
        name: &str,
        took: impl FnOnce(&[String]),
    ) -> (Vec<String>, String) {
        struct Killed(std::process::Child);
        impl Drop for Killed {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let before = journal_of(&self.reports, name);
        let child = Killed(
            Command::new(env!("CARGO_BIN_EXE_hpchaos"))
                .args(self.args(file))
                .current_dir(root())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let targets = targets_of(&records(&injected_run(
            &self.reports,
            name,
            before.as_ref(),
        )));
        took(&targets);
        drop(child);
        let out = hpchaos(&["recover", "--cluster", &self.profile()]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: recover: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (targets, said)
    }
}

fn wait_until(what: &str, ready: impl FnMut() -> bool) {
    crate::support::lab::wait_until_within(Duration::from_secs(180), what, ready);
}

/// Waits for a run of `name` newer than `before` (the newest when the run
/// was started) whose injection took; returns its journal.
fn injected_run(reports: &Path, name: &str, before: Option<&PathBuf>) -> PathBuf {
    let mut found = None;
    wait_until(&format!("{name}'s injection"), || {
        found = journal_of(reports, name).filter(|j| {
            Some(j) != before
                && records(j)
                    .iter()
                    .any(|r| r["type"] == "injection_finished" && r["ok"] == true)
        });
        found.is_some()
    });
    found.unwrap()
}

fn targets_of(written: &[serde_json::Value]) -> Vec<String> {
    written
        .iter()
        .find(|r| r["type"] == "targets_resolved")
        .map(|r| serde_json::from_value(r["nodes"].clone()).unwrap())
        .unwrap_or_default()
}

#[test]
fn failures_training_loses_time_to() {
    // Two head nodes (a backup slurmctld on ip-10-1-0-8) for the takeover;
    // the other cases run as on one head.
    let Some(tmp) = crate::support::lab::start_lab("training", &["--multi-head"]) else {
        return;
    };
    let lab = Lab {
        dir: tmp.path().join("lab"),
        reports: tmp.path().join("reports"),
        _tmp: tmp,
    };
    let mut table = Vec::new();
    a_hung_rank_is_caught_by_the_watchdog(&lab, &mut table);
    kill_9_mid_hang_and_recover_leaves_nothing_stopped(&lab, &mut table);
    slurms_daemons_restarted(&lab, &mut table);
    a_backup_controller_takes_over(&lab, &mut table);
    kill_9_with_the_primary_stopped_and_recover_gives_it_control(&lab, &mut table);
    a_broken_checkpoint_store_fails_the_job(&lab, &mut table);
    a_read_only_root_is_detected_and_rebooted(&lab, &mut table);
    kill_9_with_the_root_read_only_and_recover_mends_it(&lab, &mut table);
    a_retried_step_loses_the_steps_since_the_last_checkpoint(&lab, &mut table);
    a_straggler_slows_the_whole_job(&lab, &mut table);
    a_cpu_quota_slows_the_whole_job(&lab, &mut table);
    a_partition_ends_the_job_and_never_cuts_hpchaos_off(&lab, &mut table);
    kill_9_with_the_store_broken_and_recover_mends_it(&lab, &mut table);
    kill_9_with_slurmd_stopped_and_recover_starts_it(&lab, &mut table);
    println!("case | outcome\n{}", table.join("\n"));
}

/// The shipped hang: detect at the watchdog's line (its 20 s timeout after
/// the stop), the job failed (HyperPod's auto-resume: every node healthy),
/// nothing left stopped.
fn a_hung_rank_is_caught_by_the_watchdog(lab: &Lab, table: &mut Vec<String>) {
    let recording = tempfile::tempdir().unwrap();
    let mut args = lab.args("scenarios/hang-rank.yaml");
    args.extend([
        "--record".to_owned(),
        recording.path().display().to_string(),
    ]);
    let out = hpchaos(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let journal = journal_of(&lab.reports, "hang-rank").unwrap();
    let written = records(&journal);
    let targets = targets_of(&written);
    assert_eq!(targets.len(), 1, "{targets:?}");
    // The stop took: the step record names the rank and the pids stopped.
    let stopped = written
        .iter()
        .find(|r| r["type"] == "step_ran" && r["ok"] == true)
        .unwrap_or_else(|| panic!("no step_ran: {written:?}"));
    assert!(
        stopped["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped"),
        "{stopped}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
    )
    .unwrap();
    let scenario = &report["scenarios"][0];
    let detect = &scenario["phases"][0];
    let job_end = &scenario["phases"][1];
    assert_eq!(detect["phase"], "detect");
    assert!(
        detect["evidence"]
            .as_str()
            .unwrap()
            .contains("Watchdog caught collective operation timeout"),
        "{detect}"
    );
    // The lab's watchdog gives up 20 s after the last collective (at most
    // a step before the stop), and the detection is at its line's own
    // time (c10's prefix, to the second), not when the output was read.
    let detected = detect["elapsed_seconds"].as_f64().unwrap();
    assert!((18.0..21.5).contains(&detected), "detect at {detected:.1}s");
    assert_eq!(detect["time_source"], "source", "{detect}");
    assert_eq!(job_end["phase"], "job_end");
    let ended = job_end["elapsed_seconds"].as_f64().unwrap();
    assert!(ended >= detected, "{ended} {detected}");
    // Ground truth: the job failed in Slurm; nothing is left stopped.
    let job = written
        .iter()
        .find(|r| r["type"] == "canary_submitted")
        .map(|r| r["job"].as_u64().unwrap())
        .unwrap();
    let state = lab.on(
        "ip-10-1-0-10",
        &format!("scontrol -o show job {job} | tr ' ' '\\n' | sed -n 's/^JobState=//p'"),
    );
    assert!(
        matches!(state.trim(), "FAILED" | "CANCELLED" | ""),
        "job {job} is {state}"
    );
    for node in &targets {
        assert!(
            lab.stopped(node).is_empty(),
            "{node}: {:?}",
            lab.stopped(node)
        );
    }
    // The failed job lost the steps since its latest checkpoint: its own
    // output's highest step less the last checkpoint it says it saved.
    let output = lab.canary_output(job);
    let peak = output.lines().filter_map(|l| number(l, "step ")).max();
    let saved = output
        .lines()
        .rev()
        .find_map(|l| number(l, "checkpoint saved at step "));
    let peak = peak.unwrap_or_else(|| panic!("no step in the output:\n{output}"));
    // No checkpoint yet (hung in its first 20 steps): where a restart
    // would start is not said, and the loss is not made up.
    let lost = saved.map(|saved| peak - saved);
    assert_eq!(
        scenario["lost_steps"].as_u64(),
        lost,
        "step {peak}, checkpoint {saved:?}"
    );
    let lost = match (lost, saved) {
        (Some(lost), Some(saved)) => format!("{lost} (step {peak}, checkpoint {saved})"),
        _ => format!("not said (step {peak}, no checkpoint yet)"),
    };
    let stalled = a_stall_is_seen_before_the_watchdog(recording.path(), detected);
    table.push(format!(
        "hang-rank on {} | passed: detect {detected:.1}s (the watchdog's line), job_end {ended:.1}s; lost steps {lost}; nothing left stopped; replayed with `stalled_after: 8s`: detect {stalled:.1}s (progress stalled)",
        targets.join(",")
    ));
}

/// The same run replayed with `progress.stalled_after: 8s`: the hang is
/// detected when the job's steps stop for 8 s, before its watchdog's
/// 20 s; returns the detect phase's time.
fn a_stall_is_seen_before_the_watchdog(recording: &Path, watchdog_at: f64) -> f64 {
    let scenario = std::fs::read_to_string("scenarios/hang-rank.yaml")
        .unwrap()
        .replace(
            "    nodes: 2\n",
            "    nodes: 2\n    progress: { stalled_after: 8s }\n",
        );
    assert!(scenario.contains("stalled_after"), "{scenario}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hang-rank-stall.yaml");
    std::fs::write(&file, scenario).unwrap();
    let out = hpchaos(&[
        "replay",
        recording.to_str().unwrap(),
        "--scenario",
        file.to_str().unwrap(),
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(reports).join("report.json")).unwrap(),
    )
    .unwrap();
    let detect = &report["scenarios"][0]["phases"][0];
    assert_eq!(detect["phase"], "detect");
    assert!(
        detect["evidence"]
            .as_str()
            .unwrap()
            .contains("progress stalled: no step after"),
        "{detect}"
    );
    let at = detect["elapsed_seconds"].as_f64().unwrap();
    // 8 s after the last step (read every poll), well before the watchdog.
    assert!(
        at >= 7.0 && at < watchdog_at - 5.0,
        "stall at {at:.1}s, watchdog at {watchdog_at:.1}s"
    );
    at
}

/// `kill -9` right after the stop, then `recover`: the rank is continued,
/// no stopped process is left, the lock is free.
fn kill_9_mid_hang_and_recover_leaves_nothing_stopped(lab: &Lab, table: &mut Vec<String>) {
    let mut before = Vec::new();
    let (targets, _) =
        lab.kill_9_after_injection("scenarios/hang-rank.yaml", "hang-rank", |targets| {
            before = targets.iter().flat_map(|n| lab.stopped(n)).collect();
            assert!(!before.is_empty(), "nothing stopped on {targets:?}");
        });
    for node in &targets {
        assert!(
            lab.stopped(node).is_empty(),
            "{node}: {:?}",
            lab.stopped(node)
        );
    }
    assert!(
        lab.on(
            "ip-10-1-0-10",
            "test -e /run/hpchaos-run.lock && echo held || echo free"
        )
        .trim()
            == "free"
    );
    table.push(format!(
        "kill -9 mid hang, then recover | exit 0; {} stopped process(es) before, none after; lock free",
        before.len()
    ));
}

/// Whether slurmd (or slurmctld on the head) runs on `node`, as its unit says.
fn active(lab: &Lab, node: &str, unit: &str) -> bool {
    lab.on(node, &format!("systemctl is-active {unit} || true"))
        .trim()
        == "active"
}

/// slurmd restarted under the job: its steps go with it, the job fails;
/// slurmctld restarted: the job and the nodes are kept.
fn slurms_daemons_restarted(lab: &Lab, table: &mut Vec<String>) {
    for (file, name) in [
        ("scenarios/slurmd-restart.yaml", "slurmd-restart"),
        ("scenarios/slurmctld-restart.yaml", "slurmctld-restart"),
    ] {
        let journal = lab.run_passing(file, name);
        let written = records(&journal);
        let targets = targets_of(&written);
        let report: serde_json::Value = serde_json::from_slice(
            &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
        )
        .unwrap();
        let scenario = &report["scenarios"][0];
        // Ground truth: the daemons run again, the nodes are usable.
        for node in &targets {
            assert!(active(lab, node, "slurmd"), "slurmd down on {node}");
        }
        assert!(active(lab, "ip-10-1-0-10", "slurmctld"), "slurmctld down");
        let phases: Vec<String> = scenario["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {:.1}s {}",
                    p["phase"].as_str().unwrap(),
                    p["elapsed_seconds"].as_f64().unwrap_or(-1.0),
                    p["verdict"].as_str().unwrap()
                )
            })
            .collect();
        table.push(format!(
            "{name} on {} | passed: {}",
            targets.join(","),
            phases.join(", ")
        ));
    }
}

/// Who `scontrol ping` says is up, and whether Slurm answers, as the
/// harness reads it.
fn controllers(lab: &Lab) -> hpchaos::cluster::controllers::Controllers {
    hpchaos::cluster::controllers::Controllers::parse(
        &lab.on("ip-10-1-0-10", hpchaos::cluster::controllers::PING_SCRIPT),
    )
}

/// The time of the backup's `taking over` line after `after` (its
/// slurmctld.log, Slurm's ISO time, UTC on the lab).
fn takeover_logged(
    lab: &Lab,
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    lab.on(
        "ip-10-1-0-8",
        "sudo grep -h 'BackupController1 ip-10-1-0-8 taking over' /var/log/slurm/slurmctld.log || true",
    )
    .lines()
    .filter_map(|l| {
        let stamp = l.strip_prefix('[')?.split(']').next()?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.3f")
            .ok()
            .map(|t| t.and_utc())
    })
    .rfind(|t| *t > after)
}

/// The primary slurmctld stopped on the multi-head lab: the backup takes
/// over after SlurmctldTimeout (10 s on the lab) and the job runs on; the
/// takeover phase is timed against the backup's own log line; the
/// rollback gives the primary control back.
fn a_backup_controller_takes_over(lab: &Lab, table: &mut Vec<String>) {
    let journal = lab.run_passing("scenarios/slurmctld-takeover.yaml", "slurmctld-takeover");
    let written = records(&journal);
    let injected: chrono::DateTime<chrono::Utc> = written
        .iter()
        .find(|r| r["type"] == "injection_started")
        .and_then(|r| r["at"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(
        &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
    )
    .unwrap();
    let takeover = &report["scenarios"][0]["phases"][0];
    assert_eq!(takeover["phase"], "takeover", "{takeover}");
    assert_eq!(takeover["verdict"], "met", "{takeover}");
    assert!(
        takeover["evidence"]
            .as_str()
            .unwrap()
            .contains("backup ip-10-1-0-8 in control"),
        "{takeover}"
    );
    let measured = takeover["elapsed_seconds"].as_f64().unwrap();
    // Ground truth: the backup's own word, SlurmctldTimeout (10 s) after
    // the primary's last answer to it; the backup pings every third of
    // the timeout (Slurm's backup.c), so that answer may come up to 3.3 s
    // before the stop. The harness saw it within a read (2 s bound + poll).
    let logged = takeover_logged(lab, injected).expect("the backup never logged taking over");
    let truth = (logged - injected).num_milliseconds() as f64 / 1000.0;
    assert!(truth >= 6.5, "took over {truth:.1}s after the stop");
    assert!(
        measured >= truth - 0.5 && measured <= truth + 5.0,
        "measured {measured:.1}s, the backup's log {truth:.1}s"
    );
    // The job outlived it (the check after recovery held) and the primary
    // is in control again.
    assert!(
        written.iter().any(|r| r["type"] == "steady_state"
            && r["stage"] == "after"
            && r["check"] == "job_running"
            && r["passed"] == true),
        "{written:?}"
    );
    let now = controllers(lab);
    assert!(now.primary().is_some_and(|p| p.up), "{}", now.words());
    assert_eq!(now.answered, Some(true), "{}", now.words());
    table.push(format!(
        "slurmctld-takeover (multi-head) | passed: takeover {measured:.1}s (the backup's log: {truth:.1}s); job kept; primary in control after the rollback"
    ));
}

/// `kill -9` with the primary slurmctld stopped (the backup in control),
/// then `recover`: the primary runs and is in control again.
fn kill_9_with_the_primary_stopped_and_recover_gives_it_control(
    lab: &Lab,
    table: &mut Vec<String>,
) {
    let (_, said) = lab.kill_9_after_injection(
        "scenarios/slurmctld-takeover.yaml",
        "slurmctld-takeover",
        |_| {
            assert!(
                !active(lab, "ip-10-1-0-10", "slurmctld"),
                "slurmctld still runs"
            )
        },
    );
    assert!(
        active(lab, "ip-10-1-0-10", "slurmctld"),
        "recover left slurmctld stopped: {said}"
    );
    wait_until("the primary slurmctld in control", || {
        let now = controllers(lab);
        now.primary().is_some_and(|p| p.up) && now.answered == Some(true)
    });
    table.push(
        "kill -9 with the primary slurmctld stopped, then recover | exit 0; slurmctld runs on the primary and is in control"
            .to_owned(),
    );
}

/// `kill -9` with slurmd stopped, then `recover`: slurmd runs again.
fn kill_9_with_slurmd_stopped_and_recover_starts_it(lab: &Lab, table: &mut Vec<String>) {
    let (_, said) = lab.kill_9_after_injection("tests/e2e/slurmd-stop.yaml", "slurmd-stop", |_| {
        assert!(!active(lab, "ip-10-1-0-14", "slurmd"), "slurmd still runs")
    });
    assert!(
        active(lab, "ip-10-1-0-14", "slurmd"),
        "recover left slurmd stopped: {said}"
    );
    // Slurm has the node back.
    wait_until("ip-10-1-0-14 back in Slurm", || {
        lab.on("ip-10-1-0-10", "sinfo -h -N -n ip-10-1-0-14 -o %T")
            .lines()
            .all(|l| l.trim() == "idle")
    });
    table.push("kill -9 with slurmd stopped, then recover | exit 0; slurmd active again, ip-10-1-0-14 idle".to_owned());
}

/// Bytes free on the checkpoint store as `node` sees it, and whether it
/// takes a write there.
/// The checkpoint store as `node` sees it: bytes free, and whether a
/// write there finishes (within 5 s: a frozen store never answers; the
/// writer is killed).
fn store(lab: &Lab, node: &str) -> (u64, bool) {
    let free = lab.on(
        node,
        "timeout -s KILL 5 df --output=avail -B1 /fsx/canary | tail -1",
    );
    let free = free
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{node}: df of /fsx/canary said {free:?}"));
    (free, store_writes(lab, node))
}

/// Whether a write to the checkpoint store on `node` finishes within 5 s.
fn store_writes(lab: &Lab, node: &str) -> bool {
    lab.on(node, "timeout -s KILL 5 touch /fsx/canary/.probe 2>/dev/null && rm -f /fsx/canary/.probe && echo rw || echo no")
        .trim()
        == "rw"
}

/// The FUSE mounts stacked at /fsx/canary on `node` (hpchaos's frozen
/// store), from the node's mountinfo.
fn fuse_mounts(lab: &Lab, node: &str) -> usize {
    lab.on(node, "cat /proc/self/mountinfo")
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/fsx/canary") && l.contains(" - fuse"))
        .count()
}

/// The checkpoint store full, or read-only on one node: the job's own
/// error times detect, the job fails; the store is whole again after.
fn a_broken_checkpoint_store_fails_the_job(lab: &Lab, table: &mut Vec<String>) {
    let (free_before, _) = store(lab, "ip-10-1-0-11");
    for (file, name, error) in [
        (
            "scenarios/checkpoint-store-full.yaml",
            "checkpoint-store-full",
            "No space left on device",
        ),
        (
            "scenarios/checkpoint-store-read-only.yaml",
            "checkpoint-store-read-only",
            "Read-only file system",
        ),
        // Frozen: the rank hangs in its checkpoint, its peer's watchdog
        // ends the step.
        (
            "scenarios/checkpoint-store-frozen.yaml",
            "checkpoint-store-frozen",
            "Watchdog caught collective operation timeout",
        ),
    ] {
        let journal = lab.run_passing(file, name);
        let written = records(&journal);
        let targets = targets_of(&written);
        let report: serde_json::Value = serde_json::from_slice(
            &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
        )
        .unwrap();
        let detect = &report["scenarios"][0]["phases"][0];
        assert!(
            detect["evidence"].as_str().unwrap().contains(error),
            "{name}: {detect}"
        );
        // Ground truth: every node writes to the store again, with as much
        // room as before.
        for node in [
            "ip-10-1-0-11",
            "ip-10-1-0-12",
            "ip-10-1-0-13",
            "ip-10-1-0-14",
        ] {
            assert_eq!(
                fuse_mounts(lab, node),
                0,
                "{name}: a FUSE mount left on {node}"
            );
            assert_eq!(lab.stopped(node), Vec::<String>::new(), "{name}: on {node}");
            let (free, writes) = store(lab, node);
            assert!(
                writes,
                "{name}: {node} cannot write the store after the rollback"
            );
            assert!(
                free + 64 * 1024 * 1024 > free_before,
                "{name}: {free} free, {free_before} before"
            );
        }
        let ended = report["scenarios"][0]["phases"][1]["elapsed_seconds"]
            .as_f64()
            .unwrap();
        table.push(format!(
            "{name} on {} | passed: detect {:.1}s ({error}), job_end {ended:.1}s; the store whole again",
            targets.join(","),
            detect["elapsed_seconds"].as_f64().unwrap()
        ));
    }
}

/// Whether `node`'s root file system is mounted read-only, as the node's
/// own processes see it (the lab HMA's reading of the same mountinfo).
fn root_read_only(lab: &Lab, node: &str) -> bool {
    hpchaos_lab::root_read_only(&lab.on(node, "cat /proc/self/mountinfo"))
        .unwrap_or_else(|| panic!("{node}: no mount at /"))
}

/// The node's root file system remounted read-only on an idle node: the
/// lab's health agent (as HMA since 2025) notices it and marks
/// `Action:Reboot`; detect, drain, reboot and rejoin are timed; the node
/// was rebooted (the control plane's ground truth), its root writable
/// again, and only the target's root was ever read-only.
fn a_read_only_root_is_detected_and_rebooted(lab: &Lab, table: &mut Vec<String>) {
    let nodes = [
        "ip-10-1-0-11",
        "ip-10-1-0-12",
        "ip-10-1-0-13",
        "ip-10-1-0-14",
    ];
    for node in nodes {
        assert!(!root_read_only(lab, node), "{node}: read-only before");
    }
    let journal = lab.run_passing("scenarios/root-read-only.yaml", "root-read-only");
    let written = records(&journal);
    let targets = targets_of(&written);
    assert_eq!(targets.len(), 1, "{targets:?}");
    let target = targets[0].as_str();
    // The fault took: the journal's own check that a write to / failed.
    let took = written
        .iter()
        .find(|r| r["type"] == "injection_finished")
        .unwrap();
    assert_eq!(took["ok"], true, "{took}");
    let report: serde_json::Value = serde_json::from_slice(
        &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
    )
    .unwrap();
    let phases = report["scenarios"][0]["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["detect", "drain", "reboot", "rejoin"], "{phases:?}");
    for phase in phases {
        assert_eq!(phase["verdict"], "met", "{phase}");
    }
    assert!(
        phases[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("Read-only File System"),
        "{}",
        phases[0]
    );
    // Ground truth: the control plane noticed the read-only root on the
    // target, set Action:Reboot and rebooted it (same instance), after
    // the injection.
    let started = written
        .iter()
        .find(|r| r["type"] == "injection_started")
        .unwrap();
    let injected: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(started["at"].clone()).unwrap();
    let truth = hpchaos_lab::ground_truth::read(&lab.dir.join("ground-truth.jsonl"));
    let seen = |event: &str| {
        truth
            .iter()
            .any(|t| t.event == event && t.node.as_deref() == Some(target) && t.at >= injected)
    };
    assert!(seen("fault_noticed"), "no fault noticed on {target}");
    assert!(
        truth.iter().any(|t| t.event == "reason_set"
            && t.node.as_deref() == Some(target)
            && t.at >= injected
            && t.detail.starts_with("Action:Reboot")),
        "no Action:Reboot on {target}"
    );
    assert!(seen("node_rebooting"), "{target} not rebooted");
    assert!(
        !seen("instance_terminated"),
        "{target} replaced, not rebooted"
    );
    for node in nodes {
        assert!(!root_read_only(lab, node), "{node}: read-only after");
    }
    lab.on(
        target,
        "sudo touch /.hpchaos-probe && sudo rm /.hpchaos-probe",
    );
    let at = |i: usize| phases[i]["elapsed_seconds"].as_f64().unwrap();
    table.push(format!(
        "root-read-only on {target} | passed: detect {:.1}s (HMA), drain {:.1}s, reboot {:.1}s, rejoin {:.1}s; / writable again",
        at(0),
        at(1),
        at(2),
        at(3)
    ));
}

/// `kill -9` right after an idle node's root turned read-only, then
/// `recover`: it exits 0 and the root is writable, whether `recover`
/// remounted it or the health agent (which may have seen it read-only
/// first) rebooted the node; the node is back in service either way.
fn kill_9_with_the_root_read_only_and_recover_mends_it(lab: &Lab, table: &mut Vec<String>) {
    let before = std::time::SystemTime::now();
    let (targets, said) =
        lab.kill_9_after_injection("tests/e2e/root-ro-drill.yaml", "root-ro-drill", |targets| {
            assert!(root_read_only(lab, &targets[0]), "/ not read-only");
        });
    let target = targets[0].as_str();
    let injected: chrono::DateTime<chrono::Utc> = before.into();
    let truth = || hpchaos_lab::ground_truth::read(&lab.dir.join("ground-truth.jsonl"));
    let after = |event: &str, since: chrono::DateTime<chrono::Utc>| {
        truth()
            .iter()
            .filter(|t| t.event == event && t.node.as_deref() == Some(target) && t.at >= since)
            .map(|t| t.at)
            .next()
    };
    // Back in service: when the agent noticed it, once the reboot has
    // given the node back to Slurm.
    wait_until("the target back in service", || {
        let back = match after("fault_noticed", injected) {
            Some(noticed) => after("node_resumed", noticed).is_some(),
            None => true,
        };
        back && lab
            .on("ip-10-1-0-10", &format!("sinfo -h -N -n {target} -o %T"))
            .lines()
            .all(|l| l.trim() == "idle")
    });
    assert!(
        !root_read_only(lab, target),
        "{target}: / read-only after recover"
    );
    lab.on(
        target,
        "sudo touch /.hpchaos-probe && sudo rm /.hpchaos-probe",
    );
    let rebooted = after("node_rebooting", injected).is_some();
    table.push(format!(
        "kill -9 in root-ro-drill on {target}, then recover | exit 0 ({}); / writable, the node idle; the health agent {}",
        said.lines()
            .find(|l| l.starts_with("undone:"))
            .unwrap_or("nothing undone"),
        if rebooted {
            "had seen it read-only and rebooted it too"
        } else {
            "never saw it"
        }
    ));
}

/// The store read-only for 10 s under a canary that retries a failed
/// step (its own retry loop: auto-resume finds healthy nodes): resume is
/// timed from the retry's progress, and the lost steps the report gives
/// are those the job's own output shows: the highest step printed before
/// the retry, less the checkpoint it resumed from.
fn a_retried_step_loses_the_steps_since_the_last_checkpoint(lab: &Lab, table: &mut Vec<String>) {
    let journal = lab.run_passing(
        "scenarios/checkpoint-store-retried.yaml",
        "checkpoint-store-retried",
    );
    let written = records(&journal);
    let job = written
        .iter()
        .find(|r| r["type"] == "canary_submitted")
        .and_then(|r| r["job"].as_u64())
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(
        &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
    )
    .unwrap();
    let scenario = &report["scenarios"][0];
    let phases = scenario["phases"].as_array().unwrap();
    assert_eq!(phases[0]["phase"], "detect", "{phases:?}");
    assert!(
        phases[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{}",
        phases[0]
    );
    assert_eq!(phases[1]["phase"], "resume", "{phases:?}");
    assert_eq!(phases[1]["verdict"], "met", "{}", phases[1]);
    // Ground truth: the job's own output, read on the head.
    let output = lab.canary_output(job);
    // Each retry's loss: the highest step printed since the attempt
    // before began, less the checkpoint the retry resumed from.
    let mut losses = Vec::new();
    let (mut peak, mut retried) = (None::<u64>, false);
    for line in output.lines() {
        if let Some(step) = number(line, "step ") {
            peak = peak.max(Some(step));
        } else if line.starts_with("training step failed; retrying") {
            retried = true;
        } else if let Some(from) = number(line, "resumed from checkpoint at step ")
            && retried
        {
            // A retry that starts as the job is cancelled (its step
            // killed by scancel) resumes where the last checkpoint was
            // written: nothing lost there.
            let top = peak.unwrap_or_else(|| panic!("no step before the retry:\n{output}"));
            assert!(from <= top, "resumed at {from}, peak {top}");
            losses.push((top, from));
            (peak, retried) = (Some(from), false);
        }
    }
    assert!(
        !losses.is_empty(),
        "no retry and resume in the job's output:\n{output}"
    );
    // The watch ends once the resume is met: a later retry (the store
    // still read-only when the first retry checkpointed) may fall after
    // it. The figure is the loss of the retries it saw, the first ones.
    let lost = scenario["lost_steps"].as_u64().unwrap_or(0);
    let sums: Vec<u64> = std::iter::once((0, 0))
        .chain(losses.iter().copied())
        .scan(0, |sum, (top, from)| {
            *sum += top - from;
            Some(*sum)
        })
        .collect();
    assert!(
        sums.contains(&lost),
        "lost {lost}, the output's retries {losses:?}"
    );
    // The lab's canary writes a checkpoint's metadata (`latest`) only once
    // every rank's shard is written (as torch.distributed.checkpoint's
    // coordinator does): whichever rank the target runs, the failed
    // checkpoint is none, and the first retry goes back to the one before.
    let (peak, resumed) = losses[0];
    assert!(
        peak > resumed,
        "the first retry lost nothing (step {peak}, resumed from {resumed}):\n{output}"
    );
    // The cost is the downtime, from the injection to the resume (the
    // redone steps are inside it, not added again): the resume phase's
    // own time, on every GPU.
    let cost = &scenario["cost"];
    let resume_at = phases[1]["elapsed_seconds"].as_f64().unwrap();
    let down = cost["downtime_seconds"].as_f64().unwrap();
    assert!(
        (down - resume_at).abs() < 0.01,
        "{cost} vs resume at {resume_at}"
    );
    let hours = cost["gpus"].as_f64().unwrap() * down / 3600.0;
    assert!(
        (cost["gpu_hours_lost"].as_f64().unwrap() - hours).abs() < 1e-9,
        "{cost}"
    );
    table.push(format!(
        "checkpoint-store-retried | passed: detect {:.1}s (Read-only file system), resume {:.1}s; lost steps {lost} (the output: step {peak}, resumed from {resumed}; {} retry(ies)); {:.4} GPU-hours ({down:.1} s down, the redone steps inside it)",
        phases[0]["elapsed_seconds"].as_f64().unwrap(),
        phases[1]["elapsed_seconds"].as_f64().unwrap(),
        losses.len(),
        hours
    ));
}

/// `kill -9` with the store full, then read-only, each time `recover`:
/// the fill file is gone, the mount read-write.
fn kill_9_with_the_store_broken_and_recover_mends_it(lab: &Lab, table: &mut Vec<String>) {
    for (file, name) in [
        ("tests/e2e/fs-drill.yaml", "fs-drill"),
        ("tests/e2e/fs-ro-drill.yaml", "fs-ro-drill"),
        ("tests/e2e/fs-frozen-drill.yaml", "fs-frozen-drill"),
    ] {
        lab.kill_9_after_injection(file, name, |_| match name {
            "fs-drill" => {
                let (free, _) = store(lab, "ip-10-1-0-14");
                assert!(free <= 2 * 1024 * 1024, "not filled: {free} bytes free");
            }
            "fs-ro-drill" => assert!(!store_writes(lab, "ip-10-1-0-14"), "not read-only"),
            _ => {
                assert!(!store_writes(lab, "ip-10-1-0-14"), "not frozen");
                assert_eq!(fuse_mounts(lab, "ip-10-1-0-14"), 1);
                let stopped = lab.stopped("ip-10-1-0-14");
                assert!(
                    stopped.iter().any(|p| p.contains("bindfs")),
                    "no stopped bindfs: {stopped:?}"
                );
            }
        });
        assert_eq!(
            fuse_mounts(lab, "ip-10-1-0-14"),
            0,
            "{name}: FUSE mount left"
        );
        assert_eq!(lab.stopped("ip-10-1-0-14"), Vec::<String>::new(), "{name}");
        let (after, writes) = store(lab, "ip-10-1-0-14");
        assert!(writes, "{name}: still not writable after recover");
        assert!(
            after > 100 * 1024 * 1024,
            "{name}: {after} bytes free after recover"
        );
        let fills = lab.on(
            "ip-10-1-0-14",
            "ls -a /fsx/canary | grep -c hpchaos-fill || true",
        );
        assert_eq!(fills.trim(), "0", "{name}: a fill file is left");
        table.push(format!(
            "kill -9 in {name}, then recover | exit 0; {after} bytes free, writable, no fill file, no FUSE mount, nothing stopped"
        ));
    }
}

/// A straggler run's throughput record, and its step rates before,
/// during and after the slow-down and the slowdown (each must be known).
fn throughput_of(written: &[serde_json::Value]) -> (serde_json::Value, [f64; 4]) {
    let measured = written
        .iter()
        .find(|r| r["type"] == "throughput")
        .unwrap_or_else(|| panic!("no throughput record: {written:?}"))
        .clone();
    let rates = &measured["throughput"];
    let rate = |window: &str| {
        rates[window]
            .as_f64()
            .unwrap_or_else(|| panic!("no {window} rate: {measured}"))
    };
    let figures = [
        rate("before"),
        rate("during"),
        rate("after"),
        rate("slowdown"),
    ];
    (measured, figures)
}

/// The GPU power limit `node` shows (the lab's nvidia-smi).
fn power_limit(lab: &Lab, node: &str) -> String {
    lab.on(
        node,
        "nvidia-smi --query-gpu=power.limit --format=csv,noheader,nounits | head -1",
    )
    .trim()
    .to_owned()
}

/// One node at half power for 20 s: the whole job runs about half as fast
/// meanwhile (its ranks meet every step), as fast as before after it;
/// nothing fails, nothing is replaced; the power limit is set back. Then
/// `kill -9` while it is capped, and `recover` sets it back.
fn a_straggler_slows_the_whole_job(lab: &Lab, table: &mut Vec<String>) {
    let journal = lab.run_passing("tests/e2e/straggler-short.yaml", "straggler-short");
    let written = records(&journal);
    let targets = targets_of(&written);
    let (measured, [before, during, after, slowdown]) = throughput_of(&written);
    // Half the power, half the speed (the lab's GPUs scale with it), on
    // one node: the whole job, since every step waits for its slowest rank.
    // The lab's step rate is noisy on a 2-core machine (1.55 seen with a
    // second head node running): 1.4 is still well clear of no slowdown.
    assert!(
        (1.4..2.6).contains(&slowdown),
        "slowdown {slowdown:.2}: {measured}"
    );
    assert!(
        (after / before - 1.0).abs() < 0.3,
        "after {after:.2}, before {before:.2}"
    );
    for node in &targets {
        assert_eq!(power_limit(lab, node), "700.00", "{node}: the cap was left");
    }
    table.push(format!(
        "straggler-short on {} (350 W of 700) | passed: {before:.2} steps/s before, {during:.2} during ({slowdown:.2}x slower), {after:.2} after; noticed by {}; power limit 700 W again",
        targets.join(","),
        measured["noticed"]
    ));
    // The drill: capped, killed, recovered.
    let (capped, _) = lab.kill_9_after_injection(
        "tests/e2e/straggler-short.yaml",
        "straggler-short",
        |capped| {
            assert!(
                capped.iter().all(|n| power_limit(lab, n) == "350.00"),
                "{capped:?}"
            )
        },
    );
    for node in &capped {
        assert_eq!(
            power_limit(lab, node),
            "700.00",
            "{node}: recover left the cap"
        );
    }
    table.push(format!(
        "kill -9 with {} capped, then recover | exit 0; power limit 700 W again",
        capped.join(",")
    ));
}

/// hpchaos's CPU-quota cgroups on `node` (the lab's nodes share the host's
/// cgroup tree: each node's carry its name), with the CPU time each allows
/// per 100 ms period (`cpu.cfs_quota_us`, or `cpu.max`'s first field).
fn quota_cgroups(lab: &Lab, node: &str) -> Vec<String> {
    lab.on(
        node,
        &format!(
            "for d in /sys/fs/cgroup/hpchaos-cpu-quota-*-{node} /sys/fs/cgroup/*/hpchaos-cpu-quota-*-{node}; do \
               [ -d \"$d\" ] || continue; \
               q=$(cat \"$d/cpu.cfs_quota_us\" 2>/dev/null || cut -d' ' -f1 \"$d/cpu.max\"); \
               echo \"$d $q $(wc -l < \"$d/cgroup.procs\")\"; \
             done"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The job's processes on one node held to a twentieth of a CPU for 20 s
/// (a cgroup CPU quota: the lab's nodes mount the host's cgroups, as a
/// real node has its own): the whole job slows, nothing fails, and the
/// quota is lifted (hpchaos's cgroup gone, the processes back). Then
/// `kill -9` while it holds, and `recover` lifts it.
fn a_cpu_quota_slows_the_whole_job(lab: &Lab, table: &mut Vec<String>) {
    let journal = lab.run_passing("tests/e2e/straggler-cpu-short.yaml", "straggler-cpu-short");
    let written = records(&journal);
    let targets = targets_of(&written);
    let took = written
        .iter()
        .find(|r| r["type"] == "injection_finished")
        .unwrap();
    assert_eq!(took["ok"], true, "{took}");
    let (measured, [before, during, after, slowdown]) = throughput_of(&written);
    // The lab's rank needs about a twentieth of a CPU per step's work at
    // full speed (2.28x slower seen): clear of no slowdown, and back after.
    assert!(slowdown >= 1.4, "slowdown {slowdown:.2}: {measured}");
    assert!(
        (after / before - 1.0).abs() < 0.3,
        "after {after:.2}, before {before:.2}"
    );
    for node in &targets {
        assert_eq!(quota_cgroups(lab, node), Vec::<String>::new(), "{node}");
    }
    table.push(format!(
        "straggler-cpu-short on {} (0.05 CPU) | passed: {before:.2} steps/s before, {during:.2} during ({slowdown:.2}x slower), {after:.2} after; noticed by {}; no cgroup left",
        targets.join(","),
        measured["noticed"]
    ));
    // The drill: held, killed, recovered.
    let mut held = Vec::new();
    let (targets, _) = lab.kill_9_after_injection(
        "tests/e2e/straggler-cpu-short.yaml",
        "straggler-cpu-short",
        |targets| {
            held = quota_cgroups(lab, &targets[0]);
            assert_eq!(held.len(), 1, "{held:?}");
            let fields: Vec<&str> = held[0].split_whitespace().collect();
            assert_eq!(fields[1], "5000", "not 5 ms per 100 ms: {held:?}");
            assert_ne!(fields[2], "0", "no process held: {held:?}");
        },
    );
    assert_eq!(
        quota_cgroups(lab, &targets[0]),
        Vec::<String>::new(),
        "recover left the quota"
    );
    table.push(format!(
        "kill -9 with {} held ({}), then recover | exit 0; no hpchaos cgroup left",
        targets[0],
        held.join("; ")
    ));
}

/// Whether `from` reaches `to`'s sshd port (what the canary's collective
/// sends over), within a second.
fn reaches(lab: &Lab, from: &str, to: &str) -> bool {
    lab.on(
        from,
        &format!("timeout 1 bash -c 'exec 3<>/dev/tcp/{to}/22' 2>/dev/null && echo yes || echo no"),
    )
    .trim()
        == "yes"
}

/// hpchaos's own qdiscs (handle 7e57:) on `node`.
fn qdiscs(lab: &Lab, node: &str) -> usize {
    lab.on(node, "tc qdisc show | grep -c ' 7e57: ' || true")
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The job's two nodes cut off from each other: the collective watchdog
/// ends the job; all along hpchaos reads its targets and rolls back
/// through the head (a partition that cut its path would leave the qdisc
/// and fail the rollback, and this test with it). Then the drill: a delay
/// bandwidth limit held, `kill -9`, `recover` removes it.
fn a_partition_ends_the_job_and_never_cuts_hpchaos_off(lab: &Lab, table: &mut Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(lab.args("tests/e2e/network-partition-short.yaml"))
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let journal = injected_run(&lab.reports, "network-partition", None);
    let targets = targets_of(&records(&journal));
    assert_eq!(targets.len(), 2, "{targets:?}");
    // The fault took: the nodes do not reach each other; the head (and
    // through it hpchaos) reaches both.
    assert!(!reaches(lab, &targets[0], &targets[1]), "not partitioned");
    assert!(!reaches(lab, &targets[1], &targets[0]), "not partitioned");
    for node in &targets {
        assert!(reaches(lab, "ip-10-1-0-10", node), "the head lost {node}");
    }
    let status = hpchaos(&["status", "--cluster", &lab.profile()]);
    assert_eq!(status.status.code(), Some(0));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let written = records(&journal);
    let rolled: Vec<&serde_json::Value> = written
        .iter()
        .filter(|r| r["type"] == "rollback" && r["step"].as_str().unwrap_or("").contains("qdisc"))
        .collect();
    assert_eq!(rolled.len(), 2, "{written:?}");
    assert!(rolled.iter().all(|r| r["ok"] == true), "{rolled:?}");
    for node in &targets {
        assert_eq!(qdiscs(lab, node), 0, "{node}: a qdisc was left");
    }
    assert!(reaches(lab, &targets[0], &targets[1]), "still partitioned");
    let report: serde_json::Value = serde_json::from_slice(
        &hpchaos(&["report", &journal.display().to_string(), "--format", "json"]).stdout,
    )
    .unwrap();
    let detect = &report["scenarios"][0]["phases"][0];
    assert!(
        detect["evidence"]
            .as_str()
            .unwrap()
            .contains("Watchdog caught"),
        "{detect}"
    );
    table.push(format!(
        "network-partition between {} | passed: detect {:.1}s (the watchdog's line), job_end {:.1}s; hpchaos read and rolled back through the head all along; no qdisc left",
        targets.join(" and "),
        detect["elapsed_seconds"].as_f64().unwrap(),
        report["scenarios"][0]["phases"][1]["elapsed_seconds"].as_f64().unwrap()
    ));
    // The drill.
    let (_, said) = lab.kill_9_after_injection("tests/e2e/net-drill.yaml", "net-drill", |_| {
        assert_eq!(qdiscs(lab, "ip-10-1-0-13"), 1)
    });
    assert_eq!(
        qdiscs(lab, "ip-10-1-0-13"),
        0,
        "recover left the qdisc: {said}"
    );
    table.push(
        "kill -9 with a 10 Mbit/s limit on ip-10-1-0-13, then recover | exit 0; no qdisc left"
            .to_owned(),
    );
}

/// The number a canary output line gives after `prefix` (`step 12`,
/// `checkpoint saved at step 20 on ...`), if it starts so.
fn number(line: &str, prefix: &str) -> Option<u64> {
    line.strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
