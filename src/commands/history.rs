//! `hpchaos history`: past runs from the history under a report folder.

use std::path::PathBuf;

use super::Outcome;

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

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::cli_history::history(
        &args.report_dir,
        args.scenario.as_deref(),
        args.since.as_deref(),
        args.format,
        args.rebuild,
    ))
}
