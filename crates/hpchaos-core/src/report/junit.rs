//! JUnit XML for CI gates: one test suite per run, one test case per
//! scenario and one per phase expectation; failures carry the reason as
//! their message and, as their body, the scenario's timeline (what was
//! seen, when) and where the full report is (`report.md` and the journal
//! beside this file). A scenario listed twice in a suite gets `#2`, `#3`
//! after its name, so no two cases share one.

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::{Exporter, PhaseReport, RegressionReport, Report, ScenarioReport, Status, Verdict};

pub struct JunitExporter;

impl Exporter for JunitExporter {
    fn render(&self, report: &Report) -> String {
        let name = report.suite.clone().unwrap_or_else(|| "hpchaos".to_owned());
        let mut junit = JunitReport::new(format!("hpchaos {}", report.run_id));
        let mut suite = TestSuite::new(name);
        if let Some(started) = report.started_at {
            suite.set_timestamp(started.fixed_offset());
            junit.set_timestamp(started.fixed_offset());
            if let Some(ended) = report.ended_at {
                let took = crate::duration::span(started, ended).as_std();
                suite.set_time(took);
                junit.set_time(took);
            }
        }
        for (scenario, name) in report.scenarios.iter().zip(case_names(report)) {
            let named = ScenarioReport {
                name,
                ..scenario.clone()
            };
            let scenario = &named;
            suite.add_test_case(scenario_case(scenario));
            for phase in &scenario.phases {
                suite.add_test_case(phase_case(scenario, phase));
            }
            // A later step's phases: `<scenario>.<step>.<phase>`.
            for step in &scenario.steps {
                for phase in &step.phases {
                    let as_step = ScenarioReport {
                        name: format!("{}.{}", scenario.name, step.name),
                        status: step.status,
                        ..scenario.clone()
                    };
                    let mut case = phase_case(&as_step, phase);
                    case.set_classname(format!("hpchaos.{}", scenario.name));
                    suite.add_test_case(case);
                }
            }
            for gate in &scenario.regression {
                suite.add_test_case(regression_case(scenario, gate));
            }
            for m in &scenario.monitoring {
                suite.add_test_case(monitoring_case(scenario, m));
            }
        }
        junit.add_test_suite(suite);
        // quick-junit only fails on writer errors, and a String cannot fail.
        junit.to_string().unwrap_or_default()
    }
}

/// Each scenario's case name: its own, then `NAME#2`, `NAME#3` for a
/// scenario the run ran again.
fn case_names(report: &Report) -> Vec<String> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    report
        .scenarios
        .iter()
        .map(|s| {
            let count = seen.entry(s.name.as_str()).or_insert(0);
            *count += 1;
            match *count {
                1 => s.name.clone(),
                n => format!("{}#{n}", s.name),
            }
        })
        .collect()
}

/// A failed scenario's body: its timeline, and where the whole report is.
fn body(scenario: &ScenarioReport) -> String {
    let mut text = String::new();
    for entry in &scenario.timeline {
        text.push_str(&format!(
            "{} {}{}: {}\n",
            entry.at.format("%H:%M:%S%.3f"),
            entry.source.as_str(),
            entry
                .node
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            entry.text
        ));
    }
    text.push_str("the whole report: report.md and journal.jsonl beside this file\n");
    text
}

fn scenario_case(scenario: &ScenarioReport) -> TestCase {
    let status = match scenario.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed | Status::Aborted => {
            let mut failed = failure(NonSuccessKind::Failure, scenario.status, &scenario.reason);
            failed.set_description(body(scenario));
            failed
        }
        Status::Error | Status::Interrupted | Status::Incomplete => {
            let mut failed = failure(NonSuccessKind::Error, scenario.status, &scenario.reason);
            failed.set_description(body(scenario));
            failed
        }
    };
    let mut case = TestCase::new(scenario.name.clone(), status);
    case.set_classname(format!("hpchaos.{}", scenario.name));
    if let (Some(start), Some(end)) = (Some(scenario.started_at), scenario.ended_at) {
        case.set_time(crate::duration::span(start, end).as_std());
    }
    case.set_timestamp(scenario.started_at.fixed_offset());
    case
}

fn phase_case(scenario: &ScenarioReport, phase: &PhaseReport) -> TestCase {
    let deadline = crate::duration::show_duration(phase.deadline);
    let status = match phase.verdict {
        Verdict::Met | Verdict::Observed => TestCaseStatus::success(),
        Verdict::Missed => {
            let message = format!(
                "{} took until {} after injection; deadline {deadline}",
                phase.phase,
                crate::duration::show_duration(phase.elapsed)
            );
            failure(NonSuccessKind::Failure, Status::Failed, &message)
        }
        Verdict::NotReached => {
            let message = format!("{} never happened (deadline {deadline})", phase.phase);
            failure(NonSuccessKind::Failure, Status::Failed, &message)
        }
        Verdict::NotStarted => TestCaseStatus::skipped(),
        // Under way when the scenario aborted by its own rules (a limit, a
        // timeout): the scenario failed, and so did the phase; a run that
        // crashed or was interrupted is the harness's error.
        Verdict::Unfinished => {
            let message = format!("{} was still under way when the run stopped", phase.phase);
            let kind = match scenario.status {
                Status::Aborted | Status::Failed => NonSuccessKind::Failure,
                _ => NonSuccessKind::Error,
            };
            failure(kind, scenario.status, &message)
        }
    };
    let mut case = TestCase::new(format!("{}.{}", scenario.name, phase.phase), status);
    case.set_classname(format!("hpchaos.{}", scenario.name));
    if let Some(took) = phase.duration {
        case.set_time(took.as_std());
    }
    case
}

/// `<scenario>.regression.<phase>`: a failure names both numbers; a gate
/// not judged (no baseline yet) is skipped with why, never a silent pass.
fn regression_case(scenario: &ScenarioReport, gate: &RegressionReport) -> TestCase {
    let status = match gate.passed {
        Some(true) => TestCaseStatus::success(),
        Some(false) => failure(NonSuccessKind::Failure, Status::Failed, &gate.describe()),
        None => {
            let mut skipped = TestCaseStatus::skipped();
            skipped.set_message(gate.describe());
            skipped
        }
    };
    let mut case = TestCase::new(
        format!("{}.regression.{}", scenario.name, gate.phase),
        status,
    );
    case.set_classname(format!("hpchaos.{}", scenario.name));
    case
}

/// `<scenario>.monitoring.<name>`: a failure says what was asked and why
/// it was not seen in time.
fn monitoring_case(scenario: &ScenarioReport, m: &super::MonitoringReport) -> TestCase {
    let status = match m.verdict {
        Verdict::Met | Verdict::Observed => TestCaseStatus::success(),
        _ => failure(
            NonSuccessKind::Failure,
            Status::Failed,
            &format!(
                "{} ({} `{}`, deadline {}): {}",
                m.verdict.as_str(),
                m.source,
                m.query,
                crate::duration::show_duration(m.deadline),
                m.detail
            ),
        ),
    };
    let mut case = TestCase::new(format!("{}.monitoring.{}", scenario.name, m.name), status);
    case.set_classname(format!("hpchaos.{}", scenario.name));
    if let Some(took) = m.elapsed {
        case.set_time(took.as_std());
    }
    case
}

fn failure(kind: NonSuccessKind, status: Status, message: &str) -> TestCaseStatus {
    let mut status_case = TestCaseStatus::non_success(kind);
    status_case.set_type(status.as_str());
    status_case.set_message(message);
    status_case
}
