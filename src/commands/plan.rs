//! `hpchaos plan`: what a scenario would do on a cluster, touching
//! nothing (a dry run).

use std::path::PathBuf;

use super::Outcome;

/// `hpchaos plan`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    scenario: PathBuf,
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
}

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::cli_run::run(
        &[args.scenario],
        Some(&args.cluster),
        None,
        &hpchaos::cli_run::RunOptions {
            dry_run: true,
            ..Default::default()
        },
    ))
}
