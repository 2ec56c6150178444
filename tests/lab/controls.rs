//! Production controls on the lab (issue "Production controls"): a stop
//! condition on an Alertmanager alert fired mid-watch aborts and rolls
//! back, a PromQL one that holds already stops the scenario before the
//! injection; `hpchaos stop` from a second process stops a running
//! scenario within one lease renewal and `--hold` refuses the next run
//! until released; an `idle` pool never picks a node running a job; a
//! webhook on loopback gets the failure notice with the report's path.
//! Every "nothing left" is asserted from the nodes themselves.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    fn up() -> Option<Lab> {
        let tmp = crate::support::lab::start_lab("controls", &["--monitoring"])?;
        Some(Lab {
            dir: tmp.path().join("lab"),
            reports: tmp.path().join("reports"),
            _tmp: tmp,
        })
    }

    fn profile(&self) -> String {
        self.dir.join("profile.yaml").display().to_string()
    }

    fn on(&self, address: &str, command: &str) -> String {
        crate::support::lab::ssh(&self.dir, address, command)
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    fn head(&self, command: &str) -> String {
        self.on("10.1.0.10", command)
    }

    fn args(&self, scenario: &str, profile: &str) -> Vec<String> {
        [
            "run",
            scenario,
            "--cluster",
            profile,
            "--report-dir",
            &self.reports.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn spawn(&self, scenario: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_hpchaos"))
            .args(self.args(scenario, &self.profile()))
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, scenario: &str, profile: &str) -> std::process::Output {
        let args = self.args(scenario, profile);
        hpchaos(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Processes on `address` whose command line is exactly `pattern`.
    fn count(&self, address: &str, pattern: &str) -> u32 {
        self.on(address, &format!("pgrep -c -f '^{pattern}$' || true"))
            .trim()
            .parse()
            .unwrap()
    }

    fn lock_free(&self) -> bool {
        self.head("test -e /run/hpchaos-run.lock && echo held || echo free")
            .trim()
            == "free"
    }

    /// Drains `node` as an operator would, or resumes it, and waits until
    /// Slurm shows it so.
    fn drain(&self, node: &str, drain: bool) {
        let command = if drain {
            format!("scontrol update nodename={node} state=drain reason='operator maintenance'")
        } else {
            format!("scontrol update nodename={node} state=resume")
        };
        self.head(&command);
        wait_until(&format!("{node} drained={drain}"), || {
            let state = self.head(&format!("sinfo -h -N -n {node} -o %T"));
            // A row per partition the node is in.
            let rows: Vec<&str> = state
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            !rows.is_empty()
                && match drain {
                    true => rows.iter().all(|r| r.contains("drain")),
                    false => rows.iter().all(|r| *r == "idle"),
                }
        });
    }
}

fn wait_until(what: &str, ready: impl FnMut() -> bool) {
    crate::support::lab::wait_until_within(Duration::from_secs(120), what, ready);
}

/// Waits until the newest journal of `name` has a record of `kind`
/// (and `ok: true` for an injection); returns the journal.
fn journal_with(reports: &Path, name: &str, kind: &str) -> PathBuf {
    wait_until(kind, || {
        journal_of(reports, name).is_some_and(|j| {
            records(&j)
                .iter()
                .any(|r| r["type"] == kind && (kind != "injection_finished" || r["ok"] == true))
        })
    });
    journal_of(reports, name).unwrap()
}

fn at(record: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    record["at"].as_str().unwrap().parse().unwrap()
}

#[test]
fn production_controls() {
    let Some(lab) = Lab::up() else {
        return;
    };
    let mut table = Vec::new();
    an_alert_fired_mid_watch_aborts_and_rolls_back(&lab, &mut table);
    a_stop_condition_holding_before_changes_nothing(&lab, &mut table);
    a_cloudwatch_alarm_stops_the_run(&lab, &mut table);
    hpchaos_stop_stops_the_run_and_hold_refuses_the_next(&lab, &mut table);
    an_idle_pool_never_picks_a_node_running_a_job(&lab, &mut table);
    a_webhook_is_told_of_a_failure(&lab, &mut table);
    println!("control | outcome\n{}", table.join("\n"));
}

/// An Alertmanager alert fired mid-watch aborts the scenario and rolls it back.
fn an_alert_fired_mid_watch_aborts_and_rolls_back(lab: &Lab, table: &mut Vec<String>) {
    let child = lab.spawn("tests/e2e/controls-alert.yaml");
    let journal = journal_with(&lab.reports, "controls-alert", "injection_finished");
    assert_eq!(
        lab.count("10.1.0.12", "sleep 121"),
        1,
        "the stress is not on"
    );
    // An operator drains another node: the monitoring's rule fires.
    let drained = chrono::Utc::now();
    lab.drain("ip-10-1-0-14", true);
    let out = child.wait_with_output().unwrap();
    lab.drain("ip-10-1-0-14", false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let written = records(&journal);
    let aborted = written
        .iter()
        .find(|r| r["type"] == "aborted")
        .unwrap_or_else(|| panic!("no aborted record: {written:?}"));
    let reason = aborted["reason"].as_str().unwrap();
    assert!(
        reason.contains("stop condition SlurmNodeDrained holds") && reason.contains("ip-10-1-0-14"),
        "{reason}"
    );
    let ended = written
        .iter()
        .find(|r| r["type"] == "scenario_ended")
        .unwrap();
    assert_eq!(ended["outcome"], "aborted", "{ended}");
    assert!(
        written
            .iter()
            .any(|r| r["type"] == "rollback" && r["ok"] == true),
        "{written:?}"
    );
    // Ground truth: the stress is gone from the node, the lock is free.
    assert_eq!(
        lab.count("10.1.0.12", "sleep 121"),
        0,
        "the stress was left"
    );
    assert!(lab.lock_free());
    let after = (at(aborted) - drained).as_seconds_f64();
    table.push(format!(
        "alert fired mid-watch | exit 1, aborted {after:.1}s after the drain, stress gone: {reason}"
    ));
}

/// A PromQL stop condition that holds already stops the scenario before the injection.
fn a_stop_condition_holding_before_changes_nothing(lab: &Lab, table: &mut Vec<String>) {
    lab.drain("ip-10-1-0-14", true);
    // Prometheus sees the drain at its next scrape.
    wait_until("Prometheus to see the drain", || {
        let out = Command::new("curl")
            .args([
                "-s",
                "http://10.1.0.5:9090/api/v1/query?query=count(slurm_node_status%7Bstatus%3D~%22.*drain.*%22%7D)",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"value\"")
    });
    let out = lab.run("tests/e2e/controls-promql.yaml", &lab.profile());
    lab.drain("ip-10-1-0-14", false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let journal = journal_of(&lab.reports, "controls-promql").unwrap();
    let written = records(&journal);
    assert!(
        !written.iter().any(|r| r["type"] == "intent"),
        "a change was begun: {written:?}"
    );
    let ended = written
        .iter()
        .find(|r| r["type"] == "scenario_ended")
        .unwrap();
    let reason = ended["reason"].as_str().unwrap();
    assert_eq!(ended["outcome"], "aborted");
    assert!(
        reason.contains("stop condition fleet-drained holds")
            && reason.contains("before the injection (nothing was changed)"),
        "{reason}"
    );
    assert_eq!(lab.count("10.1.0.12", "sleep 121"), 0);
    table.push(format!(
        "PromQL holding before | exit 1, no intent: {reason}"
    ));
}

/// A CloudWatch alarm entering ALARM mid-watch stops the run; an alarm
/// CloudWatch does not have is refused before anything.
fn a_cloudwatch_alarm_stops_the_run(lab: &Lab, table: &mut Vec<String>) {
    let dir = lab.dir.display().to_string();
    // No such alarm yet: the check before use refuses the scenario as
    // written (exit 2), before anything is done or recorded.
    let out = lab.run("tests/e2e/controls-alarm.yaml", &lab.profile());
    let refused = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{refused}");
    assert!(
        refused.contains("CloudWatch has no alarm named `training-throughput`")
            && refused.contains("nothing was done or recorded"),
        "{refused}"
    );
    assert!(journal_of(&lab.reports, "controls-alarm").is_none());
    let set = |state: &str| {
        let out = hpchaos(&[
            "lab",
            "alarm",
            "--dir",
            &dir,
            "training-throughput",
            "--state",
            state,
            "--reason",
            "step rate 0.2/s below 0.5/s for 3 datapoints",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set("OK");
    let child = lab.spawn("tests/e2e/controls-alarm.yaml");
    let journal = journal_with(&lab.reports, "controls-alarm", "injection_finished");
    assert_eq!(lab.count("10.1.0.12", "sleep 121"), 1);
    let alarmed = chrono::Utc::now();
    set("ALARM");
    let out = child.wait_with_output().unwrap();
    set("OK");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let written = records(&journal);
    let aborted = written
        .iter()
        .find(|r| r["type"] == "aborted")
        .unwrap_or_else(|| panic!("no aborted record: {written:?}"));
    let reason = aborted["reason"].as_str().unwrap();
    assert!(
        reason.contains("stop condition training-throughput holds: CloudWatch alarm training-throughput: ALARM since")
            && reason.contains("step rate 0.2/s"),
        "{reason}"
    );
    assert_eq!(
        lab.count("10.1.0.12", "sleep 121"),
        0,
        "the stress was left"
    );
    assert!(lab.lock_free());
    // Ground truth: the harness asked CloudWatch (the lab counts each call).
    let asked = std::fs::read_to_string(lab.dir.join("ground-truth.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("cloudwatch:DescribeAlarms"))
        .count();
    assert!(asked >= 2, "DescribeAlarms asked {asked} time(s)");
    table.push(format!(
        "CloudWatch alarm | unknown alarm refused (exit 2, nothing recorded); ALARM mid-watch: exit 1, aborted {:.1}s after it was set, stress gone ({asked} DescribeAlarms): {reason}",
        (at(aborted) - alarmed).as_seconds_f64()
    ));
}

/// `hpchaos stop` from a second process stops a running scenario within one lease renewal; `--hold` refuses the next run until released.
fn hpchaos_stop_stops_the_run_and_hold_refuses_the_next(lab: &Lab, table: &mut Vec<String>) {
    let child = lab.spawn("tests/e2e/lease-stress.yaml");
    let journal = journal_with(&lab.reports, "lease-stress", "injection_finished");
    assert_eq!(lab.count("10.1.0.12", "sleep 120"), 1);
    let profile = lab.profile();
    // From another machine: another host name, no shared process.
    let asked = chrono::Utc::now();
    let stop = Command::new("unshare")
        .args([
            "--uts",
            "--",
            "sh",
            "-c",
            "hostname oncall-laptop && exec \"$@\"",
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_hpchaos"))
        .args([
            "stop",
            "--cluster",
            &profile,
            "--reason",
            "INC-4711 GPU fleet alarm",
            "--hold",
            "--wait",
            "60s",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&stop.stdout);
    assert_eq!(
        stop.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(said.contains("stop asked of run"), "{said}");
    // `--wait`: it returns once the run rolled back and let go of the lock.
    assert!(said.contains("the run let go of the lock"), "{said}");
    assert_eq!(
        lab.count("10.1.0.12", "sleep 120"),
        0,
        "stop returned before the rollback"
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let written = records(&journal);
    let request = written
        .iter()
        .find(|r| r["type"] == "stop_requested")
        .unwrap_or_else(|| panic!("no stop_requested record: {written:?}"));
    assert_eq!(request["reason"], "INC-4711 GPU fleet alarm");
    assert!(
        request["by"].as_str().unwrap().ends_with("@oncall-laptop"),
        "{request}"
    );
    assert_eq!(request["hold"], true);
    // Within one renewal (2 s while a scenario runs), and a little for SSH
    // and the watch's next look.
    let seen = (at(request) - asked).as_seconds_f64();
    assert!(
        seen < 3.5,
        "the stop was seen {seen:.1}s after it was asked"
    );
    let ended = written
        .iter()
        .find(|r| r["type"] == "scenario_ended")
        .unwrap();
    assert_eq!(ended["outcome"], "interrupted");
    assert!(
        ended["reason"].as_str().unwrap().contains("INC-4711"),
        "{ended}"
    );
    assert!(
        written
            .iter()
            .any(|r| r["type"] == "rollback" && r["ok"] == true)
    );
    assert_eq!(
        lab.count("10.1.0.12", "sleep 120"),
        0,
        "the stress was left"
    );
    assert!(lab.lock_free());
    // Held: status says so, the next run is refused and changes nothing.
    let status = hpchaos(&["status", "--cluster", &profile]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("hold: ON HOLD") && shown.contains("INC-4711"),
        "{shown}"
    );
    let refused = lab.run("tests/e2e/controls-idle.yaml", &profile);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{why}");
    assert!(
        why.contains("held by hpchaos stop --hold")
            && why.contains("--release")
            && why.contains("nothing was done or recorded"),
        "{why}"
    );
    // Refused before anything: no run folder, no journal.
    assert!(journal_of(&lab.reports, "controls-idle").is_none());
    let released = hpchaos(&["stop", "--cluster", &profile, "--release"]);
    assert_eq!(released.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&released.stdout).contains("released the hold"));
    let again = lab.run("tests/e2e/controls-idle.yaml", &profile);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    table.push(format!(
        "hpchaos stop --hold from another host | exit 130, seen after {seen:.1}s, stress gone; next run refused (exit 3) until --release, then passed"
    ));
}

/// An `idle` pool never picks a node running a job.
fn an_idle_pool_never_picks_a_node_running_a_job(lab: &Lab, table: &mut Vec<String>) {
    let job =
        lab.head("su ubuntu -c 'sbatch --parsable -w ip-10-1-0-13 -p dev --wrap \"sleep 300\"'");
    let job = job.trim().to_owned();
    wait_until("the job to run", || {
        lab.head(&format!("squeue -h -j {job} -o %T")).trim() == "RUNNING"
    });
    let profile = lab.profile();
    let planned = hpchaos(&[
        "plan",
        "tests/e2e/controls-idle.yaml",
        "--cluster",
        &profile,
    ]);
    let shown = String::from_utf8_lossy(&planned.stdout);
    // A one-CPU job leaves the node `mixed`, a whole-node one `allocated`.
    assert!(
        shown.contains("ip-10-1-0-13: left out: state ") && shown.contains(", not idle"),
        "{shown}"
    );
    assert!(shown.contains("ip-10-1-0-11: chosen"), "{shown}");
    let mut picked = Vec::new();
    for _ in 0..2 {
        let out = lab.run("tests/e2e/controls-idle.yaml", &profile);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let journal = journal_of(&lab.reports, "controls-idle").unwrap();
        let targets = records(&journal)
            .into_iter()
            .find(|r| r["type"] == "targets_resolved")
            .unwrap();
        let nodes: Vec<String> = serde_json::from_value(targets["nodes"].clone()).unwrap();
        assert!(!nodes.contains(&"ip-10-1-0-13".to_owned()), "{nodes:?}");
        assert_eq!(nodes.len(), 3, "{nodes:?}");
        picked = nodes;
    }
    lab.head(&format!("scancel {job}"));
    table.push(format!(
        "idle pool with job {job} on ip-10-1-0-13 | picked {} (twice), plan says ip-10-1-0-13 is left out for its state",
        picked.join(",")
    ));
}

/// One webhook POST received on `listener`: its head and body.
fn receive(listener: &std::net::TcpListener) -> (String, String) {
    let (mut socket, _) = listener.accept().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = socket.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .unwrap();
                return (head.to_owned(), body.to_owned());
            }
        }
    }
}

/// A webhook receiver on loopback gets the failure notice with the report
/// path, and the notice of a run refused before any change.
fn a_webhook_is_told_of_a_failure(lab: &Lab, table: &mut Vec<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || (receive(&listener), receive(&listener)));
    let base = std::fs::read_to_string(lab.profile()).unwrap();
    let profile = lab.dir.join("profile-notify.yaml");
    std::fs::write(
        &profile,
        format!(
            "{base}\nnotify:\n  - webhook: http://127.0.0.1:{port}/hooks/chaos\n    on: failure\n"
        ),
    )
    .unwrap();
    let profile = profile.display().to_string();
    // Refused before any change: told, with why.
    let out = lab.run("tests/e2e/kill-nothing.yaml", &profile);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("notified http://127.0.0.1:"), "{stderr}");
    // A run that fails its expectations: told, with its report.
    let out = lab.run("tests/e2e/tight-deadline.yaml", &profile);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "notified http://127.0.0.1:{port}/hooks/chaos (HTTP 200"
        )),
        "{stderr}"
    );
    let ((_, refused), (head, body)) = receiver.join().unwrap();
    let refused: serde_json::Value = serde_json::from_str(&refused).unwrap();
    let said = refused["text"].as_str().unwrap();
    assert!(
        said.contains("kill-nothing")
            && said.contains("REFUSED before any change")
            && said.contains("no process matches"),
        "{said}"
    );
    assert!(head.starts_with("POST /hooks/chaos"), "{head}");
    let notice: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains("tight-deadline") && text.contains("FAILED"),
        "{text}"
    );
    let report = notice["hpchaos"]["report"].as_str().unwrap();
    assert!(
        Path::new(report).exists(),
        "the report path does not exist: {report}"
    );
    assert!(text.contains(&format!("report: {report}")), "{text}");
    assert_eq!(notice["hpchaos"]["status"], "failed");
    table.push(format!(
        "webhook on loopback | refused run told: `{}`; failed run told: `{}` with {report}",
        said.lines().next().unwrap_or_default(),
        text.lines().next().unwrap_or_default()
    ));
}

/// Compound faults (issue "Production controls", item 3): a second node
/// fails while HyperPod replaces the first; both are timed, each from its
/// own injection, and rolled back last first; the two shipped compound
/// scenarios pass on the lab.
#[test]
fn compound_faults() {
    let Some(tmp) = crate::support::lab::start_lab("compound", &[]) else {
        return;
    };
    let lab = Lab {
        dir: tmp.path().join("lab"),
        reports: tmp.path().join("reports"),
        _tmp: tmp,
    };
    let mut table = Vec::new();
    a_second_node_lost_during_a_replacement(&lab, &mut table);
    kill_9_mid_steps_and_recover_leaves_nothing(&lab, &mut table);
    the_shipped_compound_scenarios_pass(&lab, &mut table);
    println!("compound | outcome\n{}", table.join("\n"));
}

/// The lab's ground truth: (event, node, time) of each transition.
fn truth(lab: &Lab) -> Vec<(String, String, chrono::DateTime<chrono::Utc>)> {
    std::fs::read_to_string(lab.dir.join("ground-truth.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                v["event"].as_str()?.to_owned(),
                v["node"].as_str()?.to_owned(),
                v["at"].as_str()?.parse().ok()?,
            ))
        })
        .collect()
}

fn report_of(journal: &Path) -> serde_json::Value {
    let out = hpchaos(&["report", &journal.display().to_string(), "--format", "json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A two-step scenario: the second node fails during the first's replacement.
fn a_second_node_lost_during_a_replacement(lab: &Lab, table: &mut Vec<String>) {
    let started = chrono::Utc::now();
    let out = lab.run("tests/e2e/two-step-replace.yaml", &lab.profile());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let journal = journal_of(&lab.reports, "two-step-replace").unwrap();
    let written = records(&journal);
    let find = |kind: &str| {
        written
            .iter()
            .find(|r| r["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {written:?}"))
            .clone()
    };
    let planned = find("step_planned");
    assert_eq!(planned["nodes"], serde_json::json!(["ip-10-1-0-13"]));
    // Planned before anything was changed.
    let first_intent = written.iter().position(|r| r["type"] == "intent").unwrap();
    let planned_at = written
        .iter()
        .position(|r| r["type"] == "step_planned")
        .unwrap();
    assert!(planned_at < first_intent, "planned after the first change");
    let injected = find("step_injected");
    assert_eq!(injected["ok"], true, "{injected}");
    let second_at: chrono::DateTime<chrono::Utc> =
        injected["injected_at"].as_str().unwrap().parse().unwrap();
    let drained = written
        .iter()
        .find(|r| r["type"] == "phase_ended" && r["phase"] == "drain")
        .unwrap();
    let replaced = written
        .iter()
        .find(|r| r["type"] == "phase_ended" && r["phase"] == "replace")
        .unwrap();
    let drain_end: chrono::DateTime<chrono::Utc> =
        drained["ended_at"].as_str().unwrap().parse().unwrap();
    let replace_end: chrono::DateTime<chrono::Utc> =
        replaced["ended_at"].as_str().unwrap().parse().unwrap();
    assert!(
        drain_end <= second_at && second_at < replace_end,
        "the second step was not injected during the first replacement: drain ended {drain_end}, second injected {second_at}, replace ended {replace_end}"
    );
    // Ground truth: both nodes got new instances, the second while the
    // first was being replaced (its old instance gone, its new one not up).
    let truth = truth(lab);
    let running = |node: &str| {
        truth
            .iter()
            .filter(|(e, n, at)| e == "instance_running" && n == node && *at > started)
            .map(|(_, _, at)| *at)
            .next()
    };
    let first_running = running("ip-10-1-0-12").expect("ip-10-1-0-12 was not replaced");
    let second_running = running("ip-10-1-0-13").expect("ip-10-1-0-13 was not replaced");
    assert!(second_at < first_running, "{second_at} {first_running}");
    // Each step's phases, from its own injection.
    let report = report_of(&journal);
    let scenario = &report["scenarios"][0];
    assert_eq!(scenario["status"], "passed", "{scenario}");
    let step = &scenario["steps"][0];
    assert_eq!(step["name"], "second-node");
    assert_eq!(step["status"], "passed", "{step}");
    let verdicts = |phases: &serde_json::Value| -> Vec<String> {
        phases
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["phase"].as_str().unwrap(),
                    p["verdict"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        verdicts(&scenario["phases"]),
        ["detect met", "drain observed", "replace met", "rejoin met"]
            .map(str::to_owned)
            .to_vec(),
        "{scenario}"
    );
    assert_eq!(
        verdicts(&step["phases"]),
        verdicts(&scenario["phases"]),
        "{step}"
    );
    // Timed from its own injection: its replace ends when the ground
    // truth's new instance ran, counted from the step's injection (counted
    // from the first injection it would be off by the gap between them).
    let second_replace = step["phases"][2]["elapsed_seconds"].as_f64().unwrap();
    let truth_replace = (second_running - second_at).as_seconds_f64();
    let first_injected: chrono::DateTime<chrono::Utc> =
        scenario["injected_at"].as_str().unwrap().parse().unwrap();
    let gap = (second_at - first_injected).as_seconds_f64();
    assert!(
        gap > 1.0,
        "the steps were {gap:.1}s apart: too close to tell the clocks apart"
    );
    assert!(
        (second_replace - truth_replace).abs() < 1.0,
        "the second step's replace ended {second_replace:.1}s after its injection; its instance ran {truth_replace:.1}s after it (steps {gap:.1}s apart)"
    );
    // Rolled back last first: the second step's undo before the first's.
    let intents: Vec<u64> = written
        .iter()
        .filter(|r| r["type"] == "intent")
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(intents.len(), 2, "{written:?}");
    let undone: Vec<u64> = written
        .iter()
        .filter(|r| r["type"] == "rollback")
        .filter_map(|r| r["undoes"].as_u64())
        .collect();
    let last_of_second = undone.iter().rposition(|u| *u == intents[1]);
    let first_of_first = undone.iter().position(|u| *u == intents[0]);
    if let (Some(second), Some(first)) = (last_of_second, first_of_first) {
        assert!(
            second < first,
            "rolled back in order, not reverse: {undone:?}"
        );
    }
    assert!(
        !undone.is_empty() && undone.iter().all(|u| intents.contains(u)),
        "{undone:?}"
    );
    let phases = |p: &serde_json::Value| {
        p.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{} {:.1}s",
                    x["phase"].as_str().unwrap(),
                    x["elapsed_seconds"].as_f64().unwrap_or(-1.0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    table.push(format!(
        "two-step replace | passed; first: {}; second-node (injected {:.1}s after the first's drain ended): {}; rollbacks {undone:?} for intents {intents:?}",
        phases(&scenario["phases"]),
        (second_at - drain_end).as_seconds_f64(),
        phases(&step["phases"])
    ));
}

/// `kill -9` once both steps are applied, then `recover`: nothing left
/// (on nodes not replaced before: the test's own SSH pins their keys).
fn kill_9_mid_steps_and_recover_leaves_nothing(lab: &Lab, table: &mut Vec<String>) {
    let mut child = lab.spawn("tests/e2e/two-step-stress.yaml");
    journal_with(&lab.reports, "two-step-stress", "step_injected");
    assert_eq!(lab.count("10.1.0.11", "sleep 121"), 1);
    assert_eq!(lab.count("10.1.0.14", "sleep 122"), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let profile = lab.profile();
    let out = hpchaos(&["recover", "--cluster", &profile]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lab.count("10.1.0.11", "sleep 121"),
        0,
        "the first stress was left"
    );
    assert_eq!(
        lab.count("10.1.0.14", "sleep 122"),
        0,
        "the second stress was left"
    );
    assert!(lab.lock_free());
    let undone = said.lines().filter(|l| l.starts_with("undone:")).count();
    table.push(format!(
        "kill -9 with both steps applied, then recover | exit 0, {undone} step(s) undone, no stress left on ip-10-1-0-11 or ip-10-1-0-14, lock free"
    ));
}

/// The shipped compound scenarios pass on the lab, each step timed.
fn the_shipped_compound_scenarios_pass(lab: &Lab, table: &mut Vec<String>) {
    for (file, name) in [
        (
            "scenarios/second-node-during-replace.yaml",
            "second-node-during-replace",
        ),
        ("scenarios/stress-on-rejoin.yaml", "stress-on-rejoin"),
    ] {
        let out = lab.run(file, &lab.profile());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        let journal = journal_of(&lab.reports, name).unwrap();
        let report = report_of(&journal);
        let scenario = &report["scenarios"][0];
        let step = &scenario["steps"][0];
        assert_eq!(step["status"], "passed", "{step}");
        assert!(step["injected_at"].is_string(), "{step}");
        // Ground truth: the stressed node is the one replaced, and no
        // second replacement of it (it stayed in service under stress).
        let targets: Vec<String> = serde_json::from_value(scenario["targets"].clone()).unwrap();
        let step_targets: Vec<String> = serde_json::from_value(step["targets"].clone()).unwrap();
        if name == "stress-on-rejoin" {
            assert_eq!(targets, step_targets);
        } else {
            assert!(
                step_targets.iter().all(|t| !targets.contains(t)),
                "{targets:?} {step_targets:?}"
            );
        }
        let phases = |p: &serde_json::Value| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    format!(
                        "{} {:.1}s {}",
                        x["phase"].as_str().unwrap(),
                        x["elapsed_seconds"].as_f64().unwrap_or(-1.0),
                        x["verdict"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.push(format!(
            "{name} | passed; first on {}: {}; {} on {}: {}",
            targets.join(","),
            phases(&scenario["phases"]),
            step["name"].as_str().unwrap(),
            step_targets.join(","),
            phases(&step["phases"])
        ));
    }
}
