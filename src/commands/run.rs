//! `hpchaos run`: scenarios and suites against a cluster (the work is the
//! library's `cli_run`).

use std::path::PathBuf;

use super::Outcome;

/// `hpchaos run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true, value_name = "SCENARIO|SUITE")]
    files: Vec<PathBuf>,
    #[arg(long, value_name = "PROFILE")]
    cluster: Option<PathBuf>,
    /// Where run folders go: this, else the suite's `report_dir`, else
    /// `reports`.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Print what would be done, touching nothing (same as `plan`).
    #[arg(long)]
    dry_run: bool,
    /// Regression gates: compare each phase with this baseline from the
    /// history under the report folder: `last` (the newest earlier run
    /// in which the phase ended), `p50:30d` (the median over 30 days) or
    /// a run id. A phase slower than it by more than the scenario's
    /// `expect.regression` allows (every phase at 25% for a scenario
    /// without gates) fails the scenario. Scenarios with
    /// `expect.regression` and no --baseline use `p50:30d`.
    #[arg(long, value_name = "last|p50:30d|RUN_ID")]
    baseline: Option<String>,
    /// For schedules: skip the run (exit 4, nothing done) when fewer
    /// than N nodes are idle, so a busy cluster is left alone.
    #[arg(long, value_name = "N")]
    if_idle: Option<u32>,
    /// For schedules: while another run holds the cluster's lock, wait
    /// up to this long for it (`10m`) instead of refusing at once.
    #[arg(long, value_name = "DURATION")]
    wait_lock: Option<hpchaos::duration::Duration>,
}

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::cli_run::run(
        &args.files,
        args.cluster.as_deref(),
        args.report_dir.as_deref(),
        &hpchaos::cli_run::RunOptions {
            dry_run: args.dry_run,
            baseline: args.baseline,
            if_idle: args.if_idle,
            wait_lock: args.wait_lock.map(|d| d.as_std()),
        },
    ))
}
