//! The terminal table: per scenario, each phase with its duration, time
//! since injection, deadline and verdict; then one summary line.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::{Exporter, Report, ScenarioReport};
use crate::duration::show_duration;

pub struct TableExporter;

impl Exporter for TableExporter {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let title = report.suite.as_deref().unwrap_or("run");
        out.push_str(&format!(
            "hpchaos {title} {} on {}: {}\n",
            report.run_id,
            report.cluster,
            report.status.as_str().to_uppercase()
        ));
        for scenario in &report.scenarios {
            out.push('\n');
            out.push_str(&scenario_table(scenario));
        }
        let passed = report
            .scenarios
            .iter()
            .filter(|s| s.status == super::Status::Passed)
            .count();
        if report.scenarios.is_empty() {
            // Refused before any scenario (the lock, the journal): no
            // "0 of 0 passed", which reads like a result.
            out.push_str(&format!(
                "\nno scenario ran (run {})\n",
                report.status.as_str()
            ));
        } else {
            out.push_str(&format!(
                "\n{passed} of {} scenario(s) passed\n",
                report.scenarios.len()
            ));
        }
        if let Some(command) = &report.recover_command {
            out.push_str(&format!(
                "STILL APPLIED ({}):\n{}undo with: {command}\n",
                if report.status == super::Status::Incomplete {
                    "the run died before undoing them"
                } else {
                    "rollback did not undo them"
                },
                report
                    .still_applied
                    .iter()
                    .map(|s| format!("  - {s}\n"))
                    .collect::<String>()
            ));
        }
        if !report.damaged_lines.is_empty() {
            out.push_str(&format!(
                "warning: {} journal line(s) could not be read\n",
                report.damaged_lines.len()
            ));
        }
        out
    }
}

fn scenario_table(scenario: &ScenarioReport) -> String {
    let fault = match &scenario.fault_settings {
        Some(settings) => format!("{} {{{settings}}}", scenario.fault),
        None => scenario.fault.clone(),
    };
    let mut out = format!(
        "{} [{} → expect {}]: {}",
        scenario.name,
        fault,
        scenario.recovery,
        scenario.status.as_str().to_uppercase()
    );
    if !scenario.reason.is_empty() {
        out.push_str(&format!(" — {}", scenario.reason));
    }
    out.push('\n');
    let mut builder = Builder::default();
    builder.push_record([
        "phase",
        "took",
        "since inject",
        "deadline",
        "verdict",
        "timed by",
    ]);
    for phase in &scenario.phases {
        builder.push_record([
            phase.phase.to_string(),
            show_duration(phase.duration),
            show_duration(phase.elapsed),
            show_duration(phase.deadline),
            phase.verdict.as_str().to_owned(),
            phase.time_source.map_or("-", |t| t.as_str()).to_owned(),
        ]);
    }
    for m in &scenario.monitoring {
        builder.push_record([
            format!("monitoring: {}", m.name),
            "-".to_owned(),
            show_duration(m.elapsed),
            show_duration(m.deadline),
            m.verdict.as_str().to_owned(),
            m.source.clone(),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    out.push_str(&table.to_string());
    out.push('\n');
    for m in scenario
        .monitoring
        .iter()
        .filter(|m| !matches!(m.verdict, super::Verdict::Met | super::Verdict::Observed))
    {
        out.push_str(&format!("monitoring {}: {}\n", m.name, m.detail));
    }
    for push in &scenario.pushed {
        match &push.error {
            None => out.push_str(&format!(
                "results pushed to {} ({} series)\n",
                push.to, push.series
            )),
            Some(e) => out.push_str(&format!("results NOT pushed to {}: {e}\n", push.to)),
        }
    }
    for step in &scenario.steps {
        out.push_str(&step_table(step));
    }
    if let Some(t) = &scenario.throughput {
        out.push_str(&format!(
            "throughput: {} (slowed for {}s); noticed by {}\n",
            t.rates.words(),
            t.slowed_for_seconds,
            if t.noticed.is_empty() {
                "nothing".to_owned()
            } else {
                t.noticed.join("; ")
            }
        ));
    }
    if let (Some(lost), max) = (scenario.lost_steps, scenario.max_lost_steps) {
        let limit = max.map(|m| format!(" (limit {m})")).unwrap_or_default();
        out.push_str(&format!("lost steps: {lost}{limit}\n"));
    }
    if let Some(delay) = scenario.requeue_delay_shown() {
        out.push_str(&format!(
            "requeue delay: {delay}; a resume after a requeue comes no sooner\n"
        ));
    }
    out
}

/// A later step of a compound scenario: its line, then its phases from its
/// own injection.
fn step_table(step: &super::StepReport) -> String {
    let mut out = format!(
        "step {} [{} on {} → expect {}, {}]: {}",
        step.name,
        step.fault,
        step.targets.join(","),
        step.recovery,
        step.trigger,
        match step.status {
            super::Status::Error => "NOT INJECTED".to_owned(),
            other => other.as_str().to_uppercase(),
        }
    );
    if !step.reason.is_empty() {
        out.push_str(&format!(" — {}", step.reason));
    }
    out.push('\n');
    if step.injected_at.is_none() {
        return out;
    }
    let mut builder = Builder::default();
    builder.push_record([
        "phase",
        "took",
        "since its inject",
        "deadline",
        "verdict",
        "timed by",
    ]);
    for phase in &step.phases {
        builder.push_record([
            phase.phase.to_string(),
            show_duration(phase.duration),
            show_duration(phase.elapsed),
            show_duration(phase.deadline),
            phase.verdict.as_str().to_owned(),
            phase.time_source.map_or("-", |t| t.as_str()).to_owned(),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    out.push_str(&table.to_string());
    out.push('\n');
    out
}
