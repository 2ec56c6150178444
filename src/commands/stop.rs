//! `hpchaos stop`: the emergency stop, from any machine with the profile.
//! It writes a stop request into the cluster's run lock on the head; the
//! running harness reads it with its next lease renewal and stops as on
//! SIGTERM (no further change, rollback, report). `--hold` keeps every new
//! run off the cluster until `--release`. The records and scripts are the
//! library's `runner::emergency`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::exit;
use hpchaos::cluster::Cluster;
use hpchaos::cluster::privilege::Root;
use hpchaos::runner::{LOCK_DIR, emergency, lock};

use super::{CliError, Outcome};

/// `hpchaos stop`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// Why, for the run's journal and `status` (an incident number).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Also refuse every new run on this cluster until `--release`.
    #[arg(long, conflicts_with = "release")]
    hold: bool,
    /// End the hold (`--hold`): runs may start again.
    #[arg(long)]
    release: bool,
    /// Wait until the running harness has rolled back and released the
    /// lock, up to this long (`10m`); exit 3 if it has not.
    #[arg(long, value_name = "DURATION", conflicts_with = "release")]
    wait: Option<hpchaos::duration::Duration>,
}

/// Exit 0: the request (or hold, or release) is on the head, and with
/// `--wait` the run let go of the lock; 3: the head could not be reached,
/// or the run still held the lock when `--wait` ran out; 2: a profile
/// that is not one.
pub fn exec(args: Args) -> Outcome {
    let profile = hpchaos::scenario::load_profile(&args.cluster)
        .map_err(|e| CliError::invalid(&e))?
        .value;
    super::runtime()?.block_on(async move {
        let cluster = Cluster::connect(&profile).await;
        let head = cluster.slurm.head.clone();
        let root = |argv: Vec<String>| {
            let cluster = &cluster;
            let head = &head;
            async move {
                cluster
                    .ssh
                    .run_as_root(head, Root::ClusterLock, &argv)
                    .await
                    .map_err(|e| CliError::failed(format!("cannot reach {}: {e}", head.name)))
            }
        };
        let script = |s: &str, args: &[&str]| -> Vec<String> {
            ["sh", "-c", s, "hpchaos"]
                .iter()
                .chain(args)
                .map(|w| (*w).to_owned())
                .collect()
        };
        if args.release {
            let out = root(script(emergency::RELEASE_SCRIPT, &[emergency::HOLD_FILE])).await?;
            let mut lines = out.stdout.lines();
            match lines.next().map(str::trim) {
                Some("released") => {
                    let held = emergency::parse_standing(&format!(
                        "hold\n{}",
                        lines.collect::<Vec<_>>().join("\n")
                    ));
                    let said = held
                        .hold
                        .map(|h| format!(" (held by {} since {}: {})", h.by, h.at, h.reason))
                        .unwrap_or_default();
                    outln!("released the hold on {}{said}: runs may start again", profile.name);
                }
                Some("none") => outln!("{} was not held: nothing to release", profile.name),
                _ => {
                    return Err(CliError::failed(format!(
                        "the hold on {} could not be released: exit {}: {}",
                        head.name,
                        out.status,
                        out.stderr.trim()
                    )));
                }
            }
            return Ok(exit::SUCCESS);
        }
        let request = emergency::StopRequest {
            reason: args
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned()),
            by: emergency::asker(),
            at: hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock),
            hold: args.hold,
        };
        let json = serde_json::to_string(&request).map_err(CliError::failed)?;
        // The hold first: a run taking the lock between the two sees it.
        if args.hold {
            let out = root(script(emergency::HOLD_SCRIPT, &[emergency::HOLD_FILE, &json])).await?;
            if out.stdout.trim() != "held" {
                return Err(CliError::failed(format!(
                    "the hold could not be written on {}: exit {}: {}",
                    head.name,
                    out.status,
                    out.stderr.trim()
                )));
            }
            outln!(
                "held: no run starts on {} until: hpchaos stop --cluster {} --release",
                profile.name,
                args.cluster.display()
            );
        }
        let out = root(script(emergency::STOP_SCRIPT, &[LOCK_DIR, &json])).await?;
        let holder = match emergency::parse_asked(&out.stdout) {
            Some(emergency::Asked::NoRun) => {
                outln!("no run holds the lock on {}: nothing to stop", profile.name);
                return Ok(exit::SUCCESS);
            }
            Some(emergency::Asked::Requested { owner }) => owner,
            None => {
                return Err(CliError::failed(format!(
                    "the stop request could not be written on {}: exit {}: {}",
                    head.name,
                    out.status,
                    out.stderr.trim()
                )));
            }
        };
        let who = holder
            .as_ref()
            .map_or_else(|| "the run holding the lock".to_owned(), lock::Owner::describe);
        outln!(
            "stop asked of {who}: it stops at its next lease renewal (every {}s while a scenario runs), rolls back and writes its report",
            emergency::ACTIVE_RENEWAL.as_secs()
        );
        let Some(wait) = args.wait else {
            return Ok(exit::SUCCESS);
        };
        let run_id = holder.map(|h| h.run_id);
        let until = Instant::now() + wait.as_std();
        loop {
            let out = cluster
                .ssh
                .run(&head, &["sh", "-c", lock::READ_SCRIPT, "hpchaos", LOCK_DIR])
                .await;
            let gone = match out.ok().and_then(|o| lock::parse_answer(&o.stdout)) {
                Some(lock::LockState::Free) => true,
                Some(lock::LockState::Held { owner: Some(o), .. }) => {
                    run_id.as_ref().is_some_and(|id| *id != o.run_id)
                }
                _ => false,
            };
            if gone {
                outln!("the run let go of the lock: it has stopped");
                return Ok(exit::SUCCESS);
            }
            if Instant::now() >= until {
                return Err(CliError::failed(format!(
                    "the run still holds the lock after {}; see: hpchaos status --cluster {}",
                    wait,
                    args.cluster.display()
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
