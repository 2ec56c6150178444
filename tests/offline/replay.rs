//! `hpchaos replay` on recordings made by hand from the field cases
//! (tests/fixtures/recordings/, one per field case about a source): each
//! judged through the same decoders and watch as a live run, to that
//! case's right value (see each case's header in
//! tests/fixtures/field-cases/).

use std::path::Path;

use crate::support::{hpchaos, root};

/// Replays `case`'s recording (with `extra` arguments) into a fresh
/// folder: the exit code, stdout, the scenario's report and the journal.
fn replay(case: &str, extra: &[&str]) -> (Option<i32>, String, serde_json::Value, String) {
    let out_dir = tempfile::tempdir().unwrap();
    let dir = root().join("tests/fixtures/recordings").join(case);
    let mut args = vec![
        "replay",
        dir.to_str().unwrap(),
        "--report-dir",
        out_dir.path().to_str().unwrap(),
    ];
    args.extend(extra);
    let out = hpchaos(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let folder = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap_or_else(|| panic!("{case}: {stdout}\n{stderr}"));
    let read = |name: &str| std::fs::read_to_string(Path::new(folder).join(name)).unwrap();
    let report: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
    let journal = read("journal.jsonl");
    (
        out.status.code(),
        stdout,
        report["scenarios"][0].clone(),
        journal,
    )
}

/// Each phase's name, end and verdict.
fn ends(scenario: &serde_json::Value) -> Vec<(String, String, String)> {
    scenario["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_owned(),
                p["ended_at"].as_str().unwrap_or("-").to_owned(),
                p["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn evidence<'a>(scenario: &'a serde_json::Value, phase: &str) -> &'a str {
    scenario["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == phase)
        .and_then(|p| p["evidence"].as_str())
        .unwrap()
}

/// Field case 15: auto-resume in place. Job 82 stays RUNNING with
/// Restarts 0; drain ends when it is seen without the target (+62 s),
/// resume at "step 6" after "Retrying step"; nothing lost; HyperPod's
/// `[Auto Resume]` lines are in the journal.
#[test]
fn field_case_15_recording_replays_as_a_resume_in_place() {
    let (code, stdout, scenario, journal) = replay("15-auto-resume-in-place", &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let met = |phase: &str, at: &str| (phase.to_owned(), at.to_owned(), "met".to_owned());
    assert_eq!(
        ends(&scenario),
        vec![
            met("detect", "2026-11-28T10:00:40.512Z"),
            met("drain", "2026-11-28T10:01:02Z"),
            met("replace", "2026-11-28T10:04:50Z"),
            met("rejoin", "2026-11-28T10:05:19.207Z"),
            met("resume", "2026-11-28T10:05:40Z"),
        ]
    );
    assert!(
        evidence(&scenario, "resume").contains("step 6"),
        "{scenario}"
    );
    assert_eq!(scenario["lost_steps"], 0);
    assert!(journal.contains("Retrying step. Attempt number: 1"));
    assert!(journal.contains("Succesfully shrink job to retain healthy nodes"));
    assert!(
        stdout
            .contains("recorded run field-case-15-auto-resume-in-place: Passed; replayed: Passed")
    );
}

/// Field case 16: the requeued job's output truncated. Read again from
/// its start: 200 steps lost (1200 back to checkpoint 1000), resume at
/// step 1201, the first past the fault.
#[test]
fn field_case_16_recording_reads_a_truncated_output_again() {
    let (code, stdout, scenario, journal) = replay("16-requeued-output-truncated", &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(scenario["lost_steps"], 200);
    assert!(
        evidence(&scenario, "resume").contains("step 1201"),
        "{scenario}"
    );
    assert!(journal.contains("rewritten (") && journal.contains("shorter than the"));
}

/// Field case 17: NeMo's `global_step=1.2e+4` is about 12,000, never a
/// restart to step 1: across a requeue from checkpoint 11900, 49 steps
/// lost, not 11,948.
#[test]
fn field_case_17_recording_reads_a_float_global_step() {
    let (code, stdout, scenario, _) = replay("17-lightning-float-global-step", &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(scenario["lost_steps"], 49);
    assert!(
        evidence(&scenario, "resume").contains("step 12000"),
        "{scenario}"
    );
}

/// Field case 18: a het job watched by its leader's id is all its
/// components: 32 GPUs from their AllocTRES, and drain is not over while
/// component 93+1 still runs on the target (+30 s, +40 s), only once the
/// job is off it (+70 s).
#[test]
fn field_case_18_recording_takes_the_het_job_whole() {
    let (code, stdout, scenario, _) = replay("18-het-job-leader", &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(scenario["cost"]["gpus"], 32, "{}", scenario["cost"]);
    assert_eq!(
        scenario["cost"]["gpus_from"],
        "the job's AllocTRES gres/gpu"
    );
    let drain = &ends(&scenario)[1];
    assert_eq!(drain.0, "drain");
    assert_eq!(drain.1, "2026-11-28T15:49:28.100Z");
    assert_eq!(scenario["lost_steps"], 100);
}

/// `--scenario` judges the same reads against other expectations: a
/// 30 s detect deadline is missed by the detection at 40.5 s, and the
/// replay fails (exit 1) where the recorded run passed.
#[test]
fn a_replay_against_another_scenario_judges_it_anew() {
    let text = std::fs::read_to_string(
        root().join("tests/fixtures/recordings/15-auto-resume-in-place/scenario.yaml"),
    )
    .unwrap()
    .replace("detect: 60s", "detect: 30s");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tight.yaml");
    std::fs::write(&path, text).unwrap();
    let (code, stdout, scenario, _) = replay(
        "15-auto-resume-in-place",
        &["--scenario", path.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(ends(&scenario)[0].2, "missed");
    assert!(stdout.contains("Passed; replayed: Failed"), "{stdout}");
}

/// A folder that is no recording is refused with what it lacks (exit 2).
#[test]
fn a_folder_that_is_no_recording_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = hpchaos(&["replay", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("recording.json") && stderr.contains("not a recording"),
        "{stderr}"
    );
}

/// A real recording (`run --record` of xid79-reboot on the lab) judged
/// against a replace: its scontrol reads are still taken in order (no
/// hang), HyperPod's `Action:Reboot` is not the replace expected (failed,
/// saying so), and what the replace awaits is said to be past the end of
/// the recording, not "never happened".
#[test]
fn a_reboot_recording_judged_as_a_replace_ends_with_the_recording() {
    let (code, stdout, scenario, _) = replay(
        "lab-xid79-reboot",
        &[
            "--scenario",
            root()
                .join("scenarios/xid48-replace.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let reason = scenario["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "HyperPod marked ip-10-1-0-11 `Action:Reboot`, not the `Action:Replace` the scenario expects"
        ) && reason.contains("the recording ends at +")
            && reason.contains("of scenario xid79-reboot")
            && reason.contains("it ends during the replace phase"),
        "{reason}"
    );
    assert_eq!(ends(&scenario)[0].2, "met");
    // The same recording as recorded: passed, as the live run did.
    let (code, stdout, scenario, _) = replay("lab-xid79-reboot", &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        ends(&scenario).iter().all(|(_, _, v)| v == "met"),
        "{scenario}"
    );
}

/// A recording cut short (its reads end a minute before the live watch
/// did), or with no reads, is refused as such (exit 2), not judged.
#[test]
fn a_cut_recording_is_refused_with_where_it_ends() {
    let source = root().join("tests/fixtures/recordings/lab-xid79-reboot");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "recording.json",
        "scenario.yaml",
        "profile.yaml",
        "reads.jsonl",
    ] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let manifest = dir.path().join("recording.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let injected =
        chrono::DateTime::parse_from_rfc3339(value["injected_at"].as_str().unwrap()).unwrap();
    value["ended_at"] = serde_json::json!((injected + chrono::TimeDelta::minutes(10)).to_rfc3339());
    std::fs::write(&manifest, value.to_string()).unwrap();
    let out = hpchaos(&["replay", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("reads.jsonl: the reads end at +")
            && stderr.contains("but the live watch ended at +600.0s: the recording is cut"),
        "{stderr}"
    );
    // Cut at a line boundary, a few seconds short of the live end (the
    // lab polls every 0.5 s: a watch ends within 2 s of its last read).
    std::fs::copy(source.join("recording.json"), &manifest).unwrap();
    let reads = std::fs::read_to_string(source.join("reads.jsonl")).unwrap();
    let first: String = reads.lines().take(10).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("reads.jsonl"), first).unwrap();
    let out = hpchaos(&["replay", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the recording is cut"), "{stderr}");
    std::fs::write(dir.path().join("reads.jsonl"), "").unwrap();
    let out = hpchaos(&["replay", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no reads"), "{stderr}");
    // Nothing was written beside it.
    assert!(!dir.path().join("replays").exists());
}

/// The live watch's last look (the cluster's events asked once more when
/// the phases settled, in the cycle after the last) is replayed too: the
/// event HyperPod recorded before the watch's end is journaled with its
/// own time, as the live run journaled it.
#[test]
fn a_recorded_last_look_is_journaled_in_the_replay() {
    let source = root().join("tests/fixtures/recordings/lab-xid79-reboot");
    let dir = tempfile::tempdir().unwrap();
    for name in ["recording.json", "scenario.yaml", "profile.yaml"] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let reads = std::fs::read_to_string(source.join("reads.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(reads.lines().last().unwrap()).unwrap();
    let look = serde_json::json!({
        "at": last["at"],
        "cycle": last["cycle"].as_u64().unwrap() + 1,
        "source": "sagemaker",
        "nodes": [],
        "error": null,
        "events": [{
            "id": "e-9",
            "time": "2026-12-03T00:15:14.100Z",
            "group": "workers",
            "instance_id": "i-0cb5230e846d27471",
            "description": "Instance i-0cb5230e846d27471 rebooted and is running",
            "level": "Info"
        }],
        "last_look": true
    });
    std::fs::write(dir.path().join("reads.jsonl"), format!("{reads}{look}\n")).unwrap();
    let report_dir = tempfile::tempdir().unwrap();
    let out = hpchaos(&[
        "replay",
        dir.path().to_str().unwrap(),
        "--report-dir",
        report_dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let folder = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap();
    let journal = std::fs::read_to_string(Path::new(folder).join("journal.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["field"] == "cluster_event")
        .collect();
    assert_eq!(events.len(), 1, "{journal}");
    assert_eq!(
        events[0]["to"],
        "Info: Instance i-0cb5230e846d27471 rebooted and is running (i-0cb5230e846d27471)"
    );
    assert_eq!(events[0]["node"], "ip-10-1-0-11");
    assert!(
        events[0]["source_time"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-03T00:15:14.1"),
        "{}",
        events[0]
    );
    // The last look asked for no nodes: none is said to be unlisted.
    assert!(!journal.contains("not listed"), "{journal}");
}
