//! Markdown for people, rendered by GitHub: a summary, and per scenario
//! the phase table, a mermaid `gantt` of the phases, the event timeline,
//! the evidence captured, steady state, rollback and the scenario as run.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Exporter, PhaseReport, Report, ScenarioReport, Status, Verdict};
use crate::duration::{show_duration, span};
use crate::journal::Stage;

pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn render(&self, report: &Report) -> String {
        let mut out = String::new();
        let title = report
            .suite
            .clone()
            .or_else(|| report.scenarios.first().map(|s| s.name.clone()))
            .unwrap_or_else(|| "run".to_owned());
        let _ = writeln!(out, "# hpchaos report: {title}\n");
        summary(&mut out, report);
        if report.scenarios.len() > 1 {
            scenario_index(&mut out, report);
        }
        for scenario in &report.scenarios {
            scenario_section(&mut out, scenario);
        }
        out
    }
}

fn badge(status: Status) -> String {
    let icon = match status {
        Status::Passed => "✅",
        Status::Failed => "❌",
        Status::Aborted => "🛑",
        Status::Error => "💥",
        Status::Interrupted => "⏹️",
        Status::Incomplete => "⚠️",
    };
    format!("{icon} **{}**", status.as_str())
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Makes text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

fn summary(out: &mut String, report: &Report) {
    let took = report
        .started_at
        .zip(report.ended_at)
        .map(|(a, b)| span(a, b));
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Status | {} |", badge(report.status));
    let _ = writeln!(out, "| Run | `{}` |", report.run_id);
    let _ = writeln!(out, "| Cluster | `{}` |", cell(&report.cluster));
    if let Some(version) = &report.slurm_version {
        let _ = writeln!(out, "| Slurm | {} |", cell(version));
    }
    let _ = writeln!(out, "| Started | {} |", time(report.started_at));
    let _ = writeln!(out, "| Duration | {} |", show_duration(took));
    let _ = writeln!(out, "| Harness | hpchaos {} |", report.harness_version);
    if report.status == Status::Incomplete {
        let _ = writeln!(
            out,
            "\n> [!WARNING]\n> The journal ends without a `run_ended` record: the harness stopped (crash, kill, lost machine) or is still running. Everything below is what was recorded up to that point."
        );
    }
    if let Some(command) = &report.recover_command {
        let _ = writeln!(
            out,
            "\n> [!CAUTION]\n> {} {} step(s); they may still be applied on the cluster:",
            if report.status == Status::Incomplete {
                "The run died before undoing"
            } else {
                "Rollback did not undo"
            },
            report.still_applied.len()
        );
        for step in &report.still_applied {
            let _ = writeln!(out, "> - {}", cell(step));
        }
        let _ = writeln!(
            out,
            ">\n> Undo them and release the cluster's lock with `{command}`."
        );
    }
    if let Some(at) = report.recovered {
        let _ = writeln!(
            out,
            "\n> [!NOTE]\n> `hpchaos recover` took over this journal at {}: {}.",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            if report.still_applied.is_empty() {
                "nothing was left applied".to_owned()
            } else {
                format!("could not undo {}", report.still_applied.join("; "))
            }
        );
    }
    if !report.damaged_lines.is_empty() {
        let _ = writeln!(
            out,
            "\n> [!WARNING]\n> {} journal line(s) could not be read:",
            report.damaged_lines.len()
        );
        for (line, problem) in &report.damaged_lines {
            let _ = writeln!(out, "> - line {line}: {}", cell(problem));
        }
    }
    out.push('\n');
}

fn scenario_index(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Scenarios\n");
    let _ = writeln!(
        out,
        "| Scenario | Fault | Expected recovery | Status | Reason |\n|---|---|---|---|---|"
    );
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "| [{}](#{}) | `{}` | `{}` | {} | {} |",
            s.name,
            anchor(&s.name),
            s.fault,
            s.recovery,
            badge(s.status),
            cell(&s.reason)
        );
    }
    out.push('\n');
}

/// GitHub's heading anchor for `## name`.
fn anchor(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn scenario_section(out: &mut String, s: &ScenarioReport) {
    scenario_header(out, s);
    out.push('\n');
    phase_table(out, s);
    throughput(out, s);
    step_tables(out, s);
    regression_table(out, s);
    per_target(out, s);
    gantt(out, s);
    events(out, s);
    evidence_list(out, s);
    steady_state_table(out, s);
    rollback_table(out, s);
    let _ = writeln!(
        out,
        "<details><summary>Scenario as run</summary>\n\n```yaml\n{}\n```\n\n</details>\n",
        s.source.trim_end()
    );
}

/// The scenario's heading, description, status badge and reason, and its
/// facts as a list: fault and targets, expected recovery, injection time,
/// file, lost steps and the failure's cost.
fn scenario_header(out: &mut String, s: &ScenarioReport) {
    let _ = writeln!(out, "## {}\n", s.name);
    if let Some(description) = &s.description {
        let _ = writeln!(out, "> {}\n", description.trim().replace('\n', "\n> "));
    }
    let _ = writeln!(
        out,
        "{}{}\n",
        badge(s.status),
        if s.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", s.reason)
        }
    );
    let targets = if s.targets.is_empty() {
        "-".to_owned()
    } else {
        s.targets
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "- **Fault:** `{}`{} on {targets}\n- **Expected recovery:** `{}`\n- **Injected:** {}\n- **File:** `{}`",
        s.fault,
        s.fault_settings
            .as_ref()
            .map(|settings| format!(" (`{settings}`)"))
            .unwrap_or_default(),
        s.recovery,
        time(s.injected_at),
        s.file
    );
    if let Some(lost) = s.lost_steps {
        let limit = s
            .max_lost_steps
            .map(|m| format!(" (limit {m})"))
            .unwrap_or_default();
        let _ = writeln!(out, "- **Lost steps:** {lost}{limit}");
    }
    if let Some(delay) = s.requeue_delay_shown() {
        let _ = writeln!(
            out,
            "- **Requeue delay:** {delay}; a resume after a requeue comes no sooner"
        );
    }
    if let Some(cost) = &s.cost {
        let _ = writeln!(
            out,
            "- **Cost of the failure:** {} (see the README for the formula)",
            crate::report::cost_text(cost)
        );
    }
}

/// The evidence lines the sources gave (Slurm's reasons, slurmctld's log,
/// the job's output), then the files collected from each node before the
/// repair, linked; nothing when there are none.
fn evidence_list(out: &mut String, s: &ScenarioReport) {
    if !s.evidence.is_empty() {
        let _ = writeln!(out, "### Evidence\n\n```text");
        for line in &s.evidence {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "```\n");
    }
    if !s.collected.is_empty() {
        let _ = writeln!(out, "### Evidence collected before the repair\n");
        for node in &s.collected {
            let links: Vec<String> = node
                .files
                .iter()
                .map(|f| {
                    let name = f.file.rsplit('/').next().unwrap_or(&f.file);
                    let problem = if f.problem.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", f.problem)
                    };
                    format!("[{name}]({}) {} B{problem}", f.file, f.bytes)
                })
                .collect();
            let _ = writeln!(
                out,
                "- `{}` ({}): {}",
                node.node,
                cell(&node.why),
                links.join(", ")
            );
        }
        out.push('\n');
    }
}

/// The steady-state checks before and after the fault, as a table;
/// nothing when there were none.
fn steady_state_table(out: &mut String, s: &ScenarioReport) {
    if !s.steady_state.is_empty() {
        let _ = writeln!(
            out,
            "### Steady state\n\n| Stage | Check | Result | Detail |\n|---|---|---|---|"
        );
        for check in &s.steady_state {
            let stage = match check.stage {
                Stage::Before => "before",
                Stage::After => "after",
            };
            let result = if check.passed {
                "✅ holds"
            } else {
                "❌ fails"
            };
            let _ = writeln!(
                out,
                "| {stage} | {} | {result} | {} |",
                cell(&check.check),
                cell(&check.detail)
            );
        }
        out.push('\n');
    }
}

/// The rollback steps and how each went, as a table; nothing when there
/// were none.
fn rollback_table(out: &mut String, s: &ScenarioReport) {
    if !s.rollback.is_empty() {
        let _ = writeln!(
            out,
            "### Rollback\n\n| Step | Result | Detail |\n|---|---|---|"
        );
        for step in &s.rollback {
            let result = if step.ok { "✅ done" } else { "❌ failed" };
            let _ = writeln!(
                out,
                "| {} | {result} | {} |",
                cell(&step.step),
                cell(&step.detail)
            );
        }
        out.push('\n');
    }
}

fn phase_table(out: &mut String, s: &ScenarioReport) {
    let _ = writeln!(
        out,
        "### Phases\n\n| Phase | Took | Since injection | Deadline | Verdict | Timed by | Evidence |\n|---|---|---|---|---|---|---|"
    );
    for p in &s.phases {
        let verdict = verdict_cell(p.verdict);
        let timed_by = p.time_source.map_or("-", |t| t.as_str());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {verdict} | {timed_by} | {} |",
            p.phase,
            show_duration(p.duration),
            show_duration(p.elapsed),
            show_duration(p.deadline),
            cell(&p.evidence)
        );
    }
    // Monitoring expectations, judged as phases are: the time is the
    // monitoring's own (the sample's step, the alert's startsAt).
    for m in &s.monitoring {
        let _ = writeln!(
            out,
            "| monitoring: {} | - | {} | {} | {} | {} | {} |",
            cell(&m.name),
            show_duration(m.elapsed),
            show_duration(m.deadline),
            verdict_cell(m.verdict),
            m.source,
            cell(&m.detail)
        );
    }
    out.push('\n');
    monitoring_table(out, s);
}

/// A straggler's throughput: the step rate before, during and after the
/// slow-down, the slowdown, and what noticed it.
fn throughput(out: &mut String, s: &ScenarioReport) {
    let Some(t) = &s.throughput else {
        return;
    };
    let rate = |v: Option<f64>| v.map_or("unknown".to_owned(), |v| format!("{v:.2}"));
    let _ = writeln!(
        out,
        "### Throughput\n\n| | steps/s | readings |\n|---|---|---|\n| before | {} | {} |\n| during ({}s slowed) | {} | {} |\n| after | {} | {} |\n\nSlowdown: {}. Noticed by: {}.\n",
        rate(t.rates.before),
        t.rates.samples[0],
        t.slowed_for_seconds,
        rate(t.rates.during),
        t.rates.samples[1],
        rate(t.rates.after),
        t.rates.samples[2],
        t.rates
            .slowdown
            .map_or("unknown".to_owned(), |v| format!("{v:.2}x")),
        if t.noticed.is_empty() {
            "nothing (no HMA record, no mark, no monitoring expectation seen)".to_owned()
        } else {
            t.noticed.join("; ")
        }
    );
}

/// A compound scenario's later steps: each with its targets, trigger,
/// injection and its own phase table (times from its own injection).
fn step_tables(out: &mut String, s: &ScenarioReport) {
    for step in &s.steps {
        let status = match step.status {
            Status::Error => "not injected".to_owned(),
            other => other.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "### Step {}: {status}\n\n- fault: `{}` on {}\n- expected recovery: `{}`\n- {}\n- injected: {}{}\n",
            step.name,
            step.fault,
            step.targets.join(", "),
            step.recovery,
            step.trigger,
            time(step.injected_at),
            if step.reason.is_empty() {
                String::new()
            } else {
                format!("\n- why: {}", cell(&step.reason))
            }
        );
        if step.injected_at.is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "| Phase | Took | Since its injection | Deadline | Verdict | Timed by | Evidence |\n|---|---|---|---|---|---|---|"
        );
        for p in &step.phases {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                p.phase,
                show_duration(p.duration),
                show_duration(p.elapsed),
                show_duration(p.deadline),
                verdict_cell(p.verdict),
                p.time_source.map_or("-", |t| t.as_str()),
                cell(&p.evidence)
            );
        }
        out.push('\n');
    }
}

fn verdict_cell(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "✅ met",
        Verdict::Observed => "✅ observed",
        Verdict::Missed => "❌ missed",
        Verdict::NotReached => "❌ not reached",
        Verdict::Unfinished => "⚠️ unfinished",
        Verdict::NotStarted => "⏸️ not started",
    }
}

/// What the monitoring was asked, and when it answered: each PromQL or
/// alert, its deadline, the monitoring's own time; then where the results
/// were pushed.
fn monitoring_table(out: &mut String, s: &ScenarioReport) {
    if !s.monitoring.is_empty() {
        let _ = writeln!(
            out,
            "### Monitoring\n\n| Expectation | Asked | Source | Seen at (UTC) | Since injection | Deadline | Verdict |\n|---|---|---|---|---|---|---|"
        );
        for m in &s.monitoring {
            let _ = writeln!(
                out,
                "| {} | `` {} `` | {} | {} | {} | {} | {} |",
                cell(&m.name),
                cell(&m.query),
                m.source,
                m.seen_at
                    .map_or("-".to_owned(), |t| t.format("%H:%M:%S%.3f").to_string()),
                show_duration(m.elapsed),
                show_duration(m.deadline),
                verdict_cell(m.verdict)
            );
        }
        let blind: Vec<&str> = s
            .monitoring
            .iter()
            .filter(|m| m.blind_spot)
            .map(|m| m.detail.as_str())
            .collect();
        if !blind.is_empty() {
            let _ = writeln!(out, "\n**Blind spot:** {}", cell(&blind.join("; ")));
        }
        let muted: Vec<&str> = s
            .monitoring
            .iter()
            // A detail with both is under "Blind spot", whole.
            .filter(|m| m.muted && !m.blind_spot)
            .map(|m| m.detail.as_str())
            .collect();
        if !muted.is_empty() {
            let _ = writeln!(out, "\n**Not paged:** {}", cell(&muted.join("; ")));
        }
        out.push('\n');
    }
    for push in &s.pushed {
        let _ = match &push.error {
            None => writeln!(
                out,
                "Results pushed to `{}` ({} series).\n",
                push.to, push.series
            ),
            Some(e) => writeln!(
                out,
                "Results **not** pushed to `{}`: {}\n",
                push.to,
                cell(e)
            ),
        };
    }
}

/// Regression gates: each phase against its baseline from the history.
fn regression_table(out: &mut String, s: &ScenarioReport) {
    if s.regression.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Regression against the baseline\n\n| Phase | Since injection | Baseline | Change | Allowed | Verdict | Baseline from |\n|---|---|---|---|---|---|---|"
    );
    for gate in &s.regression {
        let number =
            |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.2}{unit}"));
        let verdict = match gate.passed {
            Some(true) => "✅ holds".to_owned(),
            Some(false) => "❌ slower than allowed".to_owned(),
            None => format!("⚠️ not judged: {}", cell(&gate.note)),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {verdict} | {} |",
            gate.phase,
            number(gate.seconds, " s"),
            number(gate.baseline_seconds, " s"),
            gate.increase_percent
                .map_or("-".to_owned(), |v| format!("{v:+.0}%")),
            gate.max_increase_percent
                .map_or("-".to_owned(), |v| format!("+{v:.0}%")),
            cell(gate.baseline_from.as_deref().unwrap_or("-"))
        );
    }
    out.push('\n');
}

/// With several targets: each phase over them (fastest, median, slowest,
/// since the injection), then each target's own times.
fn per_target(out: &mut String, s: &ScenarioReport) {
    if s.spread.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Per target\n\nTimes since the injection.\n\n| Phase | Reached | Fastest | Median | Slowest | Slowest target |\n|---|---|---|---|---|---|"
    );
    for p in &s.spread {
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {} | {} | {} |",
            p.phase,
            p.reached,
            p.targets,
            show_duration(p.min),
            show_duration(p.p50),
            show_duration(p.max),
            p.slowest
                .as_deref()
                .map_or("-".to_owned(), |n| format!("`{n}`"))
        );
    }
    let phases: Vec<_> = s.phases.iter().map(|p| p.phase).collect();
    let _ = writeln!(
        out,
        "\n| Target | {} |\n|---|{}",
        phases
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(phases.len())
    );
    for target in &s.targets {
        let cells: Vec<String> = phases
            .iter()
            .map(|phase| {
                s.per_node
                    .iter()
                    .find(|r| &r.node == target && r.phase == *phase)
                    .map_or("-".to_owned(), |r| {
                        let mark = if r.verdict == Verdict::Missed {
                            " ❌"
                        } else {
                            ""
                        };
                        format!("{}{mark}", show_duration(r.elapsed))
                    })
            })
            .collect();
        let _ = writeln!(out, "| `{target}` | {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// A mermaid gantt chart, one bar per phase that started; unfinished
/// phases run to the last thing recorded.
fn gantt(out: &mut String, s: &ScenarioReport) {
    let last_seen = s.ended_at.or_else(|| s.timeline.last().map(|e| e.at));
    let bars: Vec<(&PhaseReport, DateTime<Utc>, DateTime<Utc>)> = s
        .phases
        .iter()
        .filter_map(|p| {
            let start = p.started_at?;
            let end = p.ended_at.or(last_seen)?.max(start);
            Some((p, start, end))
        })
        .collect();
    if bars.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Timeline\n\n```mermaid\ngantt\n    title {} phases\n    dateFormat x\n    axisFormat %H:%M:%S\n    section Recovery",
        mermaid_text(&s.name)
    );
    if let Some(injected) = s.injected_at {
        let _ = writeln!(
            out,
            "    inject :milestone, inject, {}, 0ms",
            injected.timestamp_millis()
        );
    }
    for (index, (phase, start, end)) in bars.iter().enumerate() {
        let tag = match phase.verdict {
            Verdict::Met | Verdict::Observed => "done, ",
            Verdict::Missed | Verdict::NotReached => "crit, ",
            Verdict::Unfinished | Verdict::NotStarted => "active, ",
        };
        let _ = writeln!(
            out,
            "    {} ({}) :{tag}p{index}, {}, {}",
            phase.phase,
            mermaid_text(phase.verdict.as_str()),
            start.timestamp_millis(),
            end.timestamp_millis()
        );
    }
    // A compound scenario's later steps: a section each, from its own
    // injection.
    for (n, step) in s.steps.iter().enumerate() {
        let Some(injected) = step.injected_at else {
            continue;
        };
        let _ = writeln!(
            out,
            "    section Step {}\n    inject {} :milestone, s{n}i, {}, 0ms",
            mermaid_text(&step.name),
            mermaid_text(&step.name),
            injected.timestamp_millis()
        );
        for (index, phase) in step.phases.iter().enumerate() {
            let (Some(start), Some(end)) = (phase.started_at, phase.ended_at.or(last_seen)) else {
                continue;
            };
            let tag = match phase.verdict {
                Verdict::Met | Verdict::Observed => "done, ",
                Verdict::Missed | Verdict::NotReached => "crit, ",
                Verdict::Unfinished | Verdict::NotStarted => "active, ",
            };
            let _ = writeln!(
                out,
                "    {} ({}) :{tag}s{n}p{index}, {}, {}",
                phase.phase,
                mermaid_text(phase.verdict.as_str()),
                start.timestamp_millis(),
                end.max(start).timestamp_millis()
            );
        }
    }
    // Monitoring: a bar from the injection to when it was seen (or to its
    // deadline, red, when never).
    if let Some(injected) = s.injected_at
        && !s.monitoring.is_empty()
    {
        let _ = writeln!(out, "    section Monitoring");
        for (index, m) in s.monitoring.iter().enumerate() {
            let end = m
                .seen_at
                .or(m.deadline.map(|d| injected + d.as_chrono()))
                .unwrap_or(injected)
                .max(injected);
            let tag = match m.verdict {
                Verdict::Met | Verdict::Observed => "done, ",
                _ => "crit, ",
            };
            let _ = writeln!(
                out,
                "    {} ({}) :{tag}m{index}, {}, {}",
                mermaid_text(&m.name),
                mermaid_text(m.verdict.as_str()),
                injected.timestamp_millis(),
                end.timestamp_millis()
            );
        }
    }
    let _ = writeln!(out, "```\n");
}

/// Mermaid task names may not contain `:`, `#` or `;`.
fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| if matches!(c, ':' | '#' | ';') { ' ' } else { c })
        .collect()
}

fn events(out: &mut String, s: &ScenarioReport) {
    if s.timeline.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Events\n\n| Seen (UTC) | +t | Source time | Source | Node | Event |\n|---|---|---|---|---|---|"
    );
    for e in &s.timeline {
        let offset = show_duration(Some(span(s.started_at, e.at)));
        let _ = writeln!(
            out,
            "| {} | {offset} | {} | {} | {} | {} |",
            e.at.format("%H:%M:%S%.3f"),
            e.source_time
                .map_or_else(|| "-".to_owned(), |t| t.format("%H:%M:%S%.3f").to_string()),
            e.source.as_str(),
            e.node.as_deref().unwrap_or("-"),
            cell(&e.text)
        );
    }
    out.push('\n');
}
