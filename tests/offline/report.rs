//! Reports from fixture journals: what each fixture must say (asserted
//! directly), how every exporter renders it (insta snapshots), and the
//! `hpchaos report` command with its exit codes.

use crate::support::hpchaos;
use std::path::PathBuf;

use hpchaos::journal::Journal;
use hpchaos::report::{self, Format, Report, Status, Verdict};
use hpchaos::scenario::model::Phase;

fn fixture_path(name: &str) -> PathBuf {
    crate::support::root()
        .join("tests/fixtures/journals")
        .join(name)
}

fn load(name: &str) -> Report {
    report::build(&Journal::load(&fixture_path(name)).unwrap())
}

/// The committed fixtures are exactly what the journal writer produces;
/// `UPDATE_FIXTURES=1 cargo test --test offline report::` rewrites them.
#[test]
fn committed_fixture_journals_are_current() {
    let dir = tempfile::tempdir().unwrap();
    for (name, write) in crate::support::fixtures::FIXTURES {
        let fresh = dir.path().join(name);
        write(&fresh);
        let fresh = std::fs::read_to_string(&fresh).unwrap();
        let committed = fixture_path(name);
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(&committed, &fresh).unwrap();
        }
        let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            on_disk == fresh,
            "{name} is stale: run UPDATE_FIXTURES=1 cargo test --test offline report::"
        );
    }
}

#[test]
fn passed_run_has_every_phase_met_and_lost_steps() {
    let report = load("passed.jsonl");
    assert_eq!(report.status, Status::Passed);
    let scenario = &report.scenarios[0];
    let phases: Vec<_> = scenario
        .phases
        .iter()
        .map(|p| (p.phase, p.verdict))
        .collect();
    assert_eq!(
        phases,
        vec![
            (Phase::Detect, Verdict::Met),
            (Phase::Drain, Verdict::Met),
            (Phase::Replace, Verdict::Met),
            (Phase::Rejoin, Verdict::Met),
            (Phase::Resume, Verdict::Met),
        ]
    );
    // detect: injected at +5 s, reason time +12 s.
    assert_eq!(scenario.phases[0].duration.unwrap().as_std().as_secs(), 7);
    // replace ends at the LaunchTime, 86 s after injection.
    assert_eq!(scenario.phases[2].elapsed.unwrap().as_std().as_secs(), 86);
    assert_eq!(scenario.lost_steps, Some(31));
    assert!(
        scenario
            .evidence
            .iter()
            .any(|e| e == "[sinfo ip-10-1-0-12] Action:Replace")
    );
    // The requeue delay read from the cluster is shown beside the resume.
    assert_eq!(
        scenario.requeue_delay.as_deref(),
        Some("120 s (Slurm's default)")
    );
    for format in [Format::Table, Format::Markdown] {
        let text = format.exporter().render(&report);
        assert!(
            text.contains("120 s (Slurm's default); a resume after a requeue comes no sooner"),
            "{format:?}: {text}"
        );
    }
}

#[test]
fn missed_deadline_fails_with_the_missed_phase() {
    let report = load("missed-deadline.jsonl");
    assert_eq!(report.status, Status::Failed);
    let rejoin = report.scenarios[0]
        .phases
        .iter()
        .find(|p| p.phase == Phase::Rejoin)
        .unwrap();
    assert_eq!(rejoin.verdict, Verdict::Missed);
    assert_eq!(rejoin.elapsed.unwrap().as_std().as_secs(), 430);
    assert_eq!(rejoin.deadline.unwrap().as_std().as_secs(), 360);
}

#[test]
fn aborted_run_says_why_and_what_was_rolled_back() {
    let report = load("aborted.jsonl");
    assert_eq!(report.status, Status::Aborted);
    let scenario = &report.scenarios[0];
    assert_eq!(scenario.status, Status::Aborted);
    assert!(scenario.reason.contains("max_unhealthy_nodes: 2"));
    assert_eq!(scenario.rollback.len(), 1);
    let drain = scenario
        .phases
        .iter()
        .find(|p| p.phase == Phase::Drain)
        .unwrap();
    assert_eq!(drain.verdict, Verdict::Unfinished);
}

#[test]
fn interrupted_run_is_interrupted_with_rollback() {
    let report = load("interrupted.jsonl");
    assert_eq!(report.status, Status::Interrupted);
    assert_eq!(report.scenarios[0].rollback.len(), 2);
}

#[test]
fn crashed_journal_is_incomplete_and_keeps_what_was_written() {
    let report = load("crashed.jsonl");
    assert_eq!(report.status, Status::Incomplete);
    assert_eq!(report.damaged_lines.len(), 1);
    let scenario = &report.scenarios[0];
    assert_eq!(scenario.status, Status::Incomplete);
    let replace = scenario
        .phases
        .iter()
        .find(|p| p.phase == Phase::Replace)
        .unwrap();
    assert_eq!(replace.verdict, Verdict::Unfinished);
    assert_eq!(scenario.phases[0].verdict, Verdict::Met);
}

#[test]
fn suite_run_reports_each_scenario() {
    let report = load("suite.jsonl");
    assert_eq!(report.suite.as_deref(), Some("nightly"));
    let statuses: Vec<_> = report.scenarios.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![Status::Passed, Status::Passed, Status::Failed]
    );
    assert_eq!(report.status, Status::Failed);
}

#[test]
fn every_fixture_renders_in_every_format() {
    for (name, _) in crate::support::fixtures::FIXTURES {
        let report = load(name);
        for format in Format::ALL {
            let rendered = format.exporter().render(&report);
            let stem = name.trim_end_matches(".jsonl");
            insta::assert_snapshot!(format!("{stem}.{}", format.extension()), rendered);
        }
    }
}

#[test]
fn markdown_has_a_mermaid_gantt_with_one_bar_per_started_phase() {
    let markdown = Format::Markdown.exporter().render(&load("passed.jsonl"));
    let gantt = markdown
        .split("```mermaid\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(gantt.starts_with("gantt\n"));
    assert!(gantt.contains("dateFormat x"));
    assert_eq!(gantt.lines().filter(|l| l.contains(":done, p")).count(), 5);
}

#[test]
fn junit_has_a_case_per_scenario_and_per_phase() {
    let report = load("suite.jsonl");
    let xml = Format::Junit.exporter().render(&report);
    let expected: usize = report.scenarios.iter().map(|s| 1 + s.phases.len()).sum();
    assert_eq!(xml.matches("<testcase ").count(), expected);
    assert!(xml.contains(r#"<testsuite name="nightly""#));
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}"); // the scenario and its resume phase
}

/// A failed scenario's case carries its timeline as the failure's body and
/// says where the whole report is; a scenario run twice in one suite gets
/// `#2`, so no two cases share a name; an abort is a failure, not an error.
#[test]
fn junit_failures_have_a_body_and_unique_names() {
    let mut report = load("suite.jsonl");
    let failed = report
        .scenarios
        .iter()
        .find(|s| s.status == Status::Failed)
        .unwrap()
        .clone();
    report.scenarios.push(failed.clone());
    let xml = Format::Junit.exporter().render(&report);
    let name = &failed.name;
    assert_eq!(
        xml.matches(&format!("<testcase name=\"{name}\"")).count(),
        1,
        "{xml}"
    );
    assert_eq!(
        xml.matches(&format!("<testcase name=\"{name}#2\"")).count(),
        1,
        "{xml}"
    );
    assert!(
        xml.contains("report.md and journal.jsonl beside this file"),
        "{xml}"
    );
    // A timeline line with nothing XML escapes, found in the body.
    let line = failed
        .timeline
        .iter()
        .map(|t| t.text.as_str())
        .find(|t| !t.contains(['<', '>', '&', '"', '\'']))
        .unwrap();
    assert!(xml.contains(line), "{line}: {xml}");
    let aborted = Format::Junit.exporter().render(&load("aborted.jsonl"));
    assert!(
        aborted.contains("<failure ") && !aborted.contains("<error "),
        "{aborted}"
    );
}

#[test]
fn json_round_trips_with_a_schema_version() {
    let json = Format::Json.exporter().render(&load("passed.jsonl"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["status"], "passed");
    assert_eq!(value["scenarios"][0]["phases"][0]["phase"], "detect");
    assert_eq!(value["scenarios"][0]["phases"][0]["time_source"], "source");
    assert_eq!(value["scenarios"][0]["phases"][0]["duration_seconds"], 7.0);
    assert_eq!(value["scenarios"][0]["phases"][0]["deadline_seconds"], 60.0);
}

#[test]
fn report_command_renders_every_fixture_and_check_gives_the_runs_exit_code() {
    let expected = [
        ("passed.jsonl", 0),
        ("missed-deadline.jsonl", 1),
        ("aborted.jsonl", 1),
        ("interrupted.jsonl", 130),
        ("crashed.jsonl", 3),
        ("suite.jsonl", 1),
    ];
    for (name, code) in expected {
        let path = format!("tests/fixtures/journals/{name}");
        for format in ["table", "markdown", "json", "junit"] {
            let out = hpchaos(&["report", &path, "--format", format]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name} {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.stdout.is_empty());
        }
        let checked = hpchaos(&["report", &path, "--check"]);
        assert_eq!(checked.status.code(), Some(code), "{name}");
    }
}

#[test]
fn report_writes_to_a_file_and_warns_about_damaged_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("r.md");
    let out = hpchaos(&[
        "report",
        "tests/fixtures/journals/crashed.jsonl",
        "-f",
        "markdown",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("crashed.jsonl:19: unreadable journal line")
    );
    assert!(
        std::fs::read_to_string(out_file)
            .unwrap()
            .contains("**incomplete**")
    );
}

#[test]
fn report_refuses_a_file_that_is_not_a_journal() {
    let out = hpchaos(&["report", "scenarios/gpu-burn.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no journal records"));
}

/// Two targets: each one's phase ends are in the report, summed up per
/// phase (fastest, median, slowest and which), in JSON and markdown.
#[test]
fn several_targets_are_reported_per_node_and_summed_up() {
    use crate::support::fixtures::Script;
    use hpchaos::journal::{Entry, PhaseVerdict, RunOutcome, ScenarioOutcome, TimeSource};
    use hpchaos::scenario::model::Recovery;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.jsonl");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .unwrap()
        .to_utc();
    let t = |s: f64| start + chrono::TimeDelta::milliseconds((s * 1000.0) as i64);
    let nodes = ["ip-10-1-0-12", "ip-10-1-0-13", "ip-10-1-0-14"];
    let mut s = Script::new(&path, "run-0009", None);
    s.scenario(
        1.0,
        "scenarios/xid48-replace.yaml",
        Recovery::Replace,
        &[(Phase::Detect, 60), (Phase::Replace, 100)],
        None,
    )
    .at(
        2.0,
        Entry::TargetsResolved {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        },
    )
    .at(
        5.0,
        Entry::InjectionStarted {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            action: "xid 48".into(),
        },
    );
    // Detect after 7, 9 and 20 s; replace after 60, 80 and 120 s (missed).
    for (node, detect, replace) in [
        (nodes[0], 12.0, 65.0),
        (nodes[1], 14.0, 85.0),
        (nodes[2], 25.0, 125.0),
    ] {
        s.at(
            detect,
            Entry::NodePhaseEnded {
                node: node.into(),
                phase: Phase::Detect,
                ended_at: t(detect),
                verdict: PhaseVerdict::Met,
                time_source: TimeSource::Source,
                evidence: "reason Action:Replace".into(),
            },
        );
        s.at(
            replace,
            Entry::NodePhaseEnded {
                node: node.into(),
                phase: Phase::Replace,
                ended_at: t(replace),
                verdict: if replace - 5.0 > 100.0 {
                    PhaseVerdict::Missed
                } else {
                    PhaseVerdict::Met
                },
                time_source: TimeSource::Source,
                evidence: "new instance".into(),
            },
        );
    }
    s.at(
        126.0,
        Entry::ScenarioEnded {
            outcome: ScenarioOutcome::Failed,
            reason: "replace missed".into(),
        },
    );
    s.end_run(127.0, RunOutcome::Completed);
    let report = report::build(&Journal::load(&path).unwrap());
    let scenario = &report.scenarios[0];
    assert_eq!(scenario.per_node.len(), 6);
    let replace = scenario
        .spread
        .iter()
        .find(|p| p.phase == Phase::Replace)
        .unwrap();
    let secs = |d: Option<hpchaos::duration::Duration>| d.unwrap().as_std().as_secs_f64();
    assert_eq!((replace.targets, replace.reached), (3, 3));
    assert_eq!(
        (secs(replace.min), secs(replace.p50), secs(replace.max)),
        (60.0, 80.0, 120.0)
    );
    assert_eq!(replace.slowest.as_deref(), Some("ip-10-1-0-14"));
    let detect = scenario
        .spread
        .iter()
        .find(|p| p.phase == Phase::Detect)
        .unwrap();
    assert_eq!((secs(detect.min), secs(detect.max)), (7.0, 20.0));
    let markdown = Format::Markdown.exporter().render(&report);
    assert!(markdown.contains("### Per target"), "{markdown}");
    assert!(
        markdown.contains("| replace | 3/3 | 1m | 1m 20s | 2m | `ip-10-1-0-14` |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `ip-10-1-0-14` | 20s | - | 2m ❌ | - | - |"),
        "{markdown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&Format::Json.exporter().render(&report)).unwrap();
    assert_eq!(json["scenarios"][0]["spread"][2]["max_seconds"], 120.0);
    assert_eq!(json["scenarios"][0]["per_node"][0]["node"], "ip-10-1-0-12");
}

/// The run's figures as Prometheus metrics: valid exposition lines, a HELP
/// and TYPE per family, base units in the names, the phase times and
/// verdicts of the fixture, and no run id outside `hpchaos_run_info`.
#[test]
fn prometheus_metrics_carry_the_phases_in_the_exposition_format() {
    let report = load("passed.jsonl");
    let text = Format::Prometheus.exporter().render(&report);
    let sample =
        regex::Regex::new(r#"^([a-z_:][a-z0-9_:]*)\{([a-z_]+="(\\.|[^"\\])*",?)*\} -?[0-9.e+]+$"#)
            .unwrap();
    let mut families = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge", "{line}");
            families.insert(name.to_owned(), 0);
        } else if line.starts_with("# HELP ") {
            continue;
        } else {
            let caps = sample
                .captures(line)
                .unwrap_or_else(|| panic!("not an exposition line: {line}"));
            *families.get_mut(&caps[1]).expect("TYPE before samples") += 1;
            assert!(
                caps[1] == *"hpchaos_run_info" || !line.contains("run_id="),
                "{line}"
            );
        }
    }
    assert!(families.values().all(|n| *n > 0), "{families:?}");
    for name in families.keys() {
        assert!(
            [
                "_seconds", "_info", "_passed", "_met", "_steps", "_hours", "_ratio"
            ]
            .iter()
            .any(|unit| name.ends_with(unit)),
            "{name} has no unit"
        );
    }
    assert!(
        text.contains("hpchaos_phase_seconds{scenario=\"xid48-replace\",phase=\"replace\"} 86\n"),
        "{text}"
    );
    assert!(text.contains("hpchaos_phase_met{scenario=\"xid48-replace\",phase=\"replace\"} 1\n"));
    assert!(text.contains("hpchaos_scenario_passed{scenario=\"xid48-replace\"} 1\n"));
    assert!(text.contains("hpchaos_lost_steps{scenario=\"xid48-replace\"} 31\n"));
    let missed = Format::Prometheus
        .exporter()
        .render(&load("missed-deadline.jsonl"));
    assert!(
        missed.contains("hpchaos_scenario_passed{scenario=\"node-reboot-slurm\"} 0\n"),
        "{missed}"
    );
}
