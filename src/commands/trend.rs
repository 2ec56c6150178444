//! `hpchaos trend`: a scenario's phases over its runs.

use std::path::PathBuf;

use super::Outcome;

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

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::cli_history::trend(
        &args.report_dir,
        &args.scenario,
        args.since.as_deref(),
        args.format,
    ))
}
