//! `hpchaos recover`: undo what a dead run left applied, and release the
//! cluster's lock (the work is the library's `recover`).

use std::path::PathBuf;

use super::Outcome;

/// `hpchaos recover`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// The dead run's journal; by default the one the lock names.
    journal: Option<PathBuf>,
    /// Only release the lock of this dead run, undoing nothing: for a
    /// run whose machine and journal are lost (check the cluster by
    /// hand). Refused while that run's lease is alive.
    #[arg(long, value_name = "RUN_ID")]
    release_lock: Option<String>,
    /// Take over a run that still looks alive (its process exists on
    /// this host, stopped or not, or its lease is fresh): only once you
    /// have made sure that process is gone for good. A run taken over
    /// learns it at its next record and stops acting.
    #[arg(long)]
    force: bool,
}

pub fn exec(args: Args) -> Outcome {
    Ok(hpchaos::recover::recover(
        &args.cluster,
        args.journal.as_deref(),
        args.release_lock.as_deref(),
        args.force,
    ))
}
