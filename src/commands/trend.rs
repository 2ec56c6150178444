//! `hpchaos trend`: a scenario's phases over its runs, from the history.

use std::path::PathBuf;

use crate::exit;
use hpchaos::history;

use super::history::{missing_folder, parse_since};
use super::{CliError, Outcome};

/// `hpchaos trend`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    scenario: String,
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
    let scenario = args.scenario.as_str();
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
