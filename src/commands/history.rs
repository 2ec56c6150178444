//! `hpchaos history`: past runs from the history store under a report
//! folder, opened (and brought up to date, or rebuilt), queried, printed.

use std::path::{Path, PathBuf};

use crate::exit;
use hpchaos::history;

use super::{CliError, Outcome};

/// `hpchaos history`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "reports")]
    report_dir: PathBuf,
    /// Only this scenario's runs.
    #[arg(long)]
    scenario: Option<String>,
    /// Only runs started within this span (`30d`, `12h`, `2w`).
    #[arg(long)]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: hpchaos::history::HistoryFormat,
    /// Build the history anew from the journals.
    #[arg(long)]
    rebuild: bool,
}

/// Exit 0; 2 (an error) for a bad `--since` or a folder that does not
/// exist; 3 when the store cannot be used (the message says how to fix it).
pub fn exec(args: Args) -> Outcome {
    let root = args.report_dir.as_path();
    let since = parse_since(args.since.as_deref())?;
    missing_folder(root)?;
    let store = if args.rebuild {
        history::History::rebuild(root).map(|(store, synced, kept)| {
            eprintln!(
                "history: rebuilt {} from {} journal(s){}",
                root.join(history::store::FILE).display(),
                synced.added,
                kept.map(|k| format!("; the old file is kept as {}", k.display()))
                    .unwrap_or_default()
            );
            store
        })
    } else {
        history::open_synced(root)
    };
    let runs = store
        .and_then(|store| {
            if args.rebuild {
                history::write_index(&store)?;
            }
            store.runs(args.scenario.as_deref(), since)
        })
        .map_err(CliError::failed)?;
    hpchaos::output::print(&history::render_history(&runs, args.format));
    Ok(exit::SUCCESS)
}

/// `--since` as a time. Errors: exit 2, with why.
pub(super) fn parse_since(
    since: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, CliError> {
    since
        .map(|s| history::since(s, hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock)))
        .transpose()
        .map_err(CliError::bad_input)
}

/// A report folder that does not exist is a typo, not an empty history:
/// said (exit 2), and nothing created.
pub(super) fn missing_folder(root: &Path) -> Result<(), CliError> {
    if root.is_dir() {
        return Ok(());
    }
    Err(CliError::bad_input(format!(
        "no report folder {}: give the folder runs write to (`run --report-dir`, default `reports`)",
        root.display()
    )))
}
