//! `hpchaos status`: the cluster as hpchaos sees it, and its lock.

use std::path::PathBuf;

use crate::cli::StatusFormat;

use super::Outcome;

/// `hpchaos status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// `table` for people, `json` for scripts (every node with its
    /// decoded Slurm state and its API view).
    #[arg(long, value_enum, default_value = "table")]
    format: StatusFormat,
}

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::cli_run::status(
        &args.cluster,
        args.format == StatusFormat::Json,
    ))
}
