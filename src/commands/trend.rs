//! `hpchaos trend`: a scenario's phases over its runs, from the history;
//! with `--score`, the resiliency score of every scenario and category.

use std::path::PathBuf;

use crate::exit;
use hpchaos::history;

use super::history::{missing_folder, parse_since};
use super::{CliError, Outcome};

/// `hpchaos trend`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario whose phases to show (not with `--score`).
    #[arg(required_unless_present = "score")]
    scenario: Option<String>,
    /// The resiliency score instead: each scenario by its latest verdict
    /// (passed within `--stale` 100, passed longer ago 75, failed 50,
    /// never run 0), averaged per category (its tags) and overall.
    #[arg(long, conflicts_with = "scenario")]
    score: bool,
    /// With `--score`: how old a pass may be before it counts 75 (its
    /// schedule: `1d` for nightly runs).
    #[arg(long, value_name = "SPAN", default_value = "7d", requires = "score")]
    stale: String,
    /// With `--score`: the scenarios meant to run (files, folders of them,
    /// or suites), so one never run scores 0 and its tags count.
    #[arg(long, value_name = "PATH", requires = "score")]
    scenarios: Vec<PathBuf>,
    /// With `--score`: print Prometheus text (`hpchaos_resiliency_score`)
    /// for a textfile collector, instead of `--format`.
    #[arg(long, requires = "score")]
    metrics: bool,
    #[arg(long, default_value = "reports")]
    report_dir: PathBuf,
    /// Only runs started within this span (`30d`, `12h`, `2w`).
    #[arg(long)]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: hpchaos::history::HistoryFormat,
}

/// Exit 0; 2 (an error) for a bad `--since`, a folder that does not exist
/// or a scenario with no recorded run; 3 when the store cannot be used.
pub fn exec(args: Args) -> Outcome {
    let root = args.report_dir.as_path();
    let since = parse_since(args.since.as_deref())?;
    missing_folder(root)?;
    let Some(scenario) = args.scenario.as_deref() else {
        return score(&args);
    };
    let runs = history::open_synced(root)
        .and_then(|store| store.runs(Some(scenario), since))
        .map_err(CliError::failed)?;
    if runs.is_empty() {
        return Err(CliError::bad_input(format!(
            "no run of scenario `{scenario}` is recorded under {}{} (see `hpchaos history --report-dir {}`)",
            root.display(),
            if since.is_some() { " in that span" } else { "" },
            root.display()
        )));
    }
    hpchaos::output::print(&history::render_trend(scenario, &runs, args.format));
    Ok(exit::SUCCESS)
}

/// `trend --score`.
fn score(args: &Args) -> Outcome {
    let now = hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock);
    let stale = history::since(&args.stale, now)
        .map_err(|e| CliError::bad_input(e.to_string().replace("--since", "--stale")))?;
    let stale = (now - stale).to_std().unwrap_or_default();
    let runs = history::open_synced(&args.report_dir)
        .and_then(|store| store.runs(None, None))
        .map_err(CliError::failed)?;
    let catalogue = catalogue(&args.scenarios)?;
    let score = history::score::score(&runs, &catalogue, now, stale);
    let text = if args.metrics {
        history::score::prometheus(&score)
    } else {
        match args.format {
            history::HistoryFormat::Json => {
                serde_json::to_string_pretty(&score).map_err(CliError::failed)? + "\n"
            }
            history::HistoryFormat::Markdown => history::score::render(&score, true),
            history::HistoryFormat::Table => history::score::render(&score, false),
        }
    };
    hpchaos::output::print(&text);
    Ok(exit::SUCCESS)
}

/// The scenarios under `paths` (scenario files, or folders whose
/// scenario files are read: suites and other files there are passed
/// over), each with its tags. A named file that is not a valid scenario is
/// refused with its diagnostics.
fn catalogue(paths: &[PathBuf]) -> Result<Vec<(String, Vec<String>)>, CliError> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |s: hpchaos::scenario::model::Scenario| {
        if !out.iter().any(|(n, _)| *n == s.name) {
            out.push((s.name, s.tags));
        }
    };
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?;
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            for file in found {
                if let Ok(loaded) = hpchaos::scenario::load_scenario(&file, None) {
                    add(loaded.value);
                }
            }
        } else {
            let loaded =
                hpchaos::scenario::load_scenario(path, None).map_err(|e| CliError::invalid(&e))?;
            add(loaded.value);
        }
    }
    Ok(out)
}
