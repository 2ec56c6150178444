//! Runs that add up: the history of every run under a report root
//! (`store`), trends per phase (`trend`), regression gates against a
//! baseline (`gate`), and what `hpchaos history`, `hpchaos trend` and the
//! report root's `index.md` print of them (here).

pub mod gate;
pub mod score;
pub mod store;
pub mod trend;

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

pub use store::{History, HistoryError, ScenarioRun};

/// How `history` and `trend` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Table,
    Json,
    Markdown,
}

/// Why a `--since` span cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SinceError {
    #[error("--since `{text}`: {source} (give a span such as 30d, 12h or 2w)")]
    NotASpan {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("--since `{0}` is too long")]
    TooLong(String),
}

/// `--since 30d`: how far back, as a time (`now` minus the span).
///
/// Errors: not a span humantime reads (`30d`, `12h`, `2w`), or too long.
pub fn since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, SinceError> {
    let span = humantime::parse_duration(text.trim()).map_err(|source| SinceError::NotASpan {
        text: text.to_owned(),
        source,
    })?;
    chrono::TimeDelta::from_std(span)
        .map(|span| now - span)
        .map_err(|_| SinceError::TooLong(text.to_owned()))
}

/// A ratio as a percentage for people: `-` when absent.
fn percent(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// A trend's value for people, in its series' precision (see
/// [`trend::value_text`]): `-` when absent.
fn value(series: &str, v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| trend::value_text(series, v))
}

/// The phases timed in `runs`, in the order phases happen.
fn phase_names(runs: &[ScenarioRun]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for phase in &run.phases {
            if !names.contains(&phase.phase) {
                names.push(phase.phase.clone());
            }
        }
    }
    // In the order they happen (a reboot run's phase among a replace
    // run's goes before rejoin, not last); names this release does not
    // know keep their place after those it does.
    let order = |name: &String| {
        use crate::scenario::model::Phase::*;
        [
            Detect, Drain, Reboot, Replace, Rejoin, Resume, JobEnd, Quiet,
        ]
        .iter()
        .position(|p| p.as_str() == name)
        .unwrap_or(usize::MAX)
    };
    names.sort_by_key(order);
    names
}

/// `hpchaos history`: scenario runs, newest first, with outcome, each
/// phase's seconds since the injection (`*` when it missed its deadline)
/// and lost steps.
pub fn render_history(runs: &[ScenarioRun], format: HistoryFormat) -> String {
    render_runs(runs, format, None)
}

/// [`render_history`]; with the report root, the markdown links a run's
/// journal when it has no report (a run killed before it wrote one).
fn render_runs(runs: &[ScenarioRun], format: HistoryFormat, root: Option<&Path>) -> String {
    let phases = phase_names(runs);
    match format {
        HistoryFormat::Json => serde_json::to_string_pretty(&serde_json::json!({
            "schema_version": 1,
            "runs": runs,
        }))
        .unwrap_or_default(),
        HistoryFormat::Markdown => runs_markdown(runs, &phases, root),
        HistoryFormat::Table => runs_table(runs, &phases),
    }
}

/// A run's cell for one phase: seconds since the injection (`*` when it
/// missed its deadline), the verdict when it has no time, empty when the
/// run did not time that phase.
fn phase_cell(run: &ScenarioRun, phase: &str) -> String {
    run.phases
        .iter()
        .find(|p| p.phase == phase)
        .map_or("".to_owned(), |p| {
            let mark = if p.verdict == crate::report::Verdict::Missed {
                "*"
            } else {
                ""
            };
            match p.elapsed_seconds {
                Some(s) => format!("{s:.1}{mark}"),
                None => p.verdict.as_str().to_owned(),
            }
        })
}

/// The runs as a markdown table, a row per run linking its report (or its
/// journal, under `root`, when it has no report).
fn runs_markdown(runs: &[ScenarioRun], phases: &[String], root: Option<&Path>) -> String {
    let slowed = runs.iter().any(|r| r.slowdown.is_some());
    let mut out = String::from("| Started (UTC) | Run | Scenario | Outcome |");
    for phase in phases {
        let _ = write!(out, " {phase} (s) |");
    }
    out.push_str(" Lost steps | GPU-h lost | ETTR |");
    if slowed {
        out.push_str(" Slowdown |");
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---|".repeat(phases.len() + 3 + usize::from(slowed)));
    out.push('\n');
    for run in runs {
        let target = match root {
            Some(root) if !root.join(&run.dir).join("report.md").exists() => "journal.jsonl",
            _ => "report.md",
        };
        let _ = write!(
            out,
            "| {} | [{}]({}/{target}) | {} | {} |",
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            run.run_id,
            run.dir,
            run.scenario,
            run.status.as_str()
        );
        for phase in phases {
            let _ = write!(out, " {} |", phase_cell(run, phase));
        }
        let _ = write!(
            out,
            " {} | {} | {} |",
            run.lost_steps.map_or("-".to_owned(), |l| l.to_string()),
            run.gpu_hours_lost
                .map_or("-".to_owned(), |g| format!("{g:.2}")),
            percent(run.ettr)
        );
        if slowed {
            let _ = write!(out, " {} |", factor(run.slowdown));
        }
        out.push('\n');
    }
    out
}

/// A slowdown factor as the reports say it (`2.38x`), or `-`.
fn factor(slowdown: Option<f64>) -> String {
    slowdown.map_or("-".to_owned(), |f| format!("{f:.2}x"))
}

/// The runs as a psql-style table for the terminal, with a footnote on
/// the count and the `*` mark.
fn runs_table(runs: &[ScenarioRun], phases: &[String]) -> String {
    let mut header = vec![
        "started (UTC)".to_owned(),
        "run".to_owned(),
        "scenario".to_owned(),
        "outcome".to_owned(),
    ];
    header.extend(phases.iter().map(|p| format!("{p} s")));
    header.push("lost steps".to_owned());
    header.push("GPU-h lost".to_owned());
    header.push("ETTR".to_owned());
    // Stragglers' slowdown, when a run listed measured one.
    let slowed = runs.iter().any(|r| r.slowdown.is_some());
    if slowed {
        header.push("slowdown".to_owned());
    }
    let mut builder = tabled::builder::Builder::default();
    builder.push_record(header);
    for run in runs {
        let mut row = vec![
            run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            run.run_id.clone(),
            run.scenario.clone(),
            run.status.as_str().to_owned(),
        ];
        row.extend(phases.iter().map(|p| phase_cell(run, p)));
        row.push(run.lost_steps.map_or("-".to_owned(), |l| l.to_string()));
        row.push(
            run.gpu_hours_lost
                .map_or("-".to_owned(), |g| format!("{g:.2}")),
        );
        row.push(percent(run.ettr));
        if slowed {
            row.push(factor(run.slowdown));
        }
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(tabled::settings::Style::psql());
    format!(
        "{table}\n{} run(s); * missed its deadline; seconds from the injection\n",
        runs.len()
    )
}

/// `hpchaos trend SCENARIO`: per phase, count, p50, p95, last and the
/// direction; markdown adds a chart per phase.
pub fn render_trend(scenario: &str, runs: &[ScenarioRun], format: HistoryFormat) -> String {
    let trends = trend::trends(runs);
    match format {
        HistoryFormat::Json => serde_json::to_string_pretty(&serde_json::json!({
            "schema_version": 1,
            "scenario": scenario,
            "runs": runs.len(),
            "phases": trends.iter().map(|t| serde_json::json!({
                "phase": t.phase,
                "count": t.count,
                "p50_seconds": t.p50_seconds,
                "p95_seconds": t.p95_seconds,
                "last_seconds": t.last_seconds,
                "direction": t.direction,
            })).collect::<Vec<_>>(),
        }))
        .unwrap_or_default(),
        HistoryFormat::Markdown => {
            let mut out = format!(
                "## {scenario}\n\n{} run(s). Seconds from the injection to each phase's end; GPU-hours lost and the ETTR in their own units.\n\n| Phase | Runs | p50 | p95 | Last | Direction |\n|---|---|---|---|---|---|\n",
                runs.len()
            );
            for t in &trends {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    t.phase,
                    t.count,
                    value(&t.phase, t.p50_seconds),
                    value(&t.phase, t.p95_seconds),
                    value(&t.phase, t.last_seconds),
                    t.direction.as_str()
                );
            }
            out.push('\n');
            for t in &trends {
                if let Some(chart) = trend::chart(scenario, t) {
                    out.push_str(&chart);
                    out.push('\n');
                }
            }
            out
        }
        HistoryFormat::Table => {
            let mut builder = tabled::builder::Builder::default();
            builder.push_record(["phase", "runs", "p50 s", "p95 s", "last s", "direction"]);
            for t in &trends {
                builder.push_record([
                    t.phase.clone(),
                    t.count.to_string(),
                    value(&t.phase, t.p50_seconds),
                    value(&t.phase, t.p95_seconds),
                    value(&t.phase, t.last_seconds),
                    t.direction.as_str().to_owned(),
                ]);
            }
            let mut table = builder.build();
            table.with(tabled::settings::Style::psql());
            format!(
                "{scenario}: {} run(s); seconds from the injection\n{table}\n",
                runs.len()
            )
        }
    }
}

/// Writes `index.md` under the report root: each scenario's trend (table
/// and charts), then every run, newest first, each linked to its report.
/// Written whole (temporary file, then renamed).
pub fn write_index(history: &History) -> Result<std::path::PathBuf, HistoryError> {
    let runs = history.runs(None, None)?;
    let mut scenarios: Vec<String> = runs.iter().map(|r| r.scenario.clone()).collect();
    scenarios.sort();
    scenarios.dedup();
    let mut out = format!(
        "# hpchaos runs\n\n{} scenario run(s) of {} scenario(s) under this folder: each scenario's trend, then every run, newest first (under Runs). Written by hpchaos after each run; `hpchaos history` and `hpchaos trend SCENARIO` say the same from the history store.\n\n",
        runs.len(),
        scenarios.len()
    );
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    out.push_str(&score::render(
        &score::score(&runs, &[], now, score::DEFAULT_STALE),
        true,
    ));
    for scenario in &scenarios {
        let own: Vec<ScenarioRun> = runs
            .iter()
            .filter(|r| &r.scenario == scenario)
            .cloned()
            .collect();
        out.push_str(&render_trend(scenario, &own, HistoryFormat::Markdown));
    }
    out.push_str("## Runs\n\n");
    out.push_str(&render_runs(
        &runs,
        HistoryFormat::Markdown,
        Some(history.root()),
    ));
    let path = history.root().join("index.md");
    let tmp = history.root().join("index.md.tmp");
    let io = |e: std::io::Error| HistoryError::Io {
        path: path.clone(),
        detail: e.to_string(),
    };
    std::fs::write(&tmp, out).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Opens the store under `root` and brings it up to date.
pub fn open_synced(root: &Path) -> Result<History, HistoryError> {
    let mut history = History::open(root)?;
    history.sync()?;
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(phases: &[&str]) -> ScenarioRun {
        ScenarioRun {
            tags: Vec::new(),
            run_id: "r".into(),
            dir: "d".into(),
            scenario: "s".into(),
            started_at: DateTime::<Utc>::MIN_UTC,
            status: crate::report::Status::Passed,
            reason: String::new(),
            lost_steps: None,
            gpu_hours_lost: None,
            ettr: None,
            slowdown: None,
            phases: phases
                .iter()
                .map(|p| store::PhaseRun {
                    phase: (*p).to_owned(),
                    verdict: crate::report::Verdict::Met,
                    elapsed_seconds: Some(1.0),
                })
                .collect(),
        }
    }

    #[test]
    fn phases_are_listed_in_the_order_they_happen() {
        // The newest run replaced, an older one rebooted: reboot goes
        // before rejoin, not after it; an unknown name keeps its place last.
        let runs = [
            run(&["detect", "drain", "replace", "rejoin", "resume"]),
            run(&["detect", "drain", "reboot", "rejoin", "ramp_up"]),
        ];
        assert_eq!(
            phase_names(&runs),
            [
                "detect", "drain", "reboot", "replace", "rejoin", "resume", "ramp_up"
            ]
        );
    }
}
