//! `hpchaos replay`: a recording (`run --record DIR`) judged again without
//! a cluster (the library's `Runner::replay`), with the same reports and
//! exit code as the run; the live run's verdict is said beside it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::exit;
use hpchaos::clock::ManualClock;
use hpchaos::cluster::Cluster;
use hpchaos::observe::recording::Recording;
use hpchaos::runner::{self, Runner};
use hpchaos::scenario;

use super::run::Ran;
use super::{CliError, Outcome};

/// `hpchaos replay`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording: a directory `run --record` wrote.
    recording: PathBuf,
    /// Judge against this scenario instead of the recorded one (other
    /// deadlines, another expectation).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The profile to judge with (its poll intervals, gpus_per_node)
    /// instead of the recorded one; needed when the recording has none.
    #[arg(long, value_name = "PROFILE")]
    cluster: Option<PathBuf>,
    /// Where the replay's folder goes (default: RECORDING/replays).
    #[arg(long)]
    report_dir: Option<PathBuf>,
}

pub fn exec(args: Args) -> Outcome {
    let recording = Recording::load(&args.recording).map_err(CliError::bad_input)?;
    let profile_path = match &args.cluster {
        Some(path) => path.clone(),
        None if recording.profile.is_some() => recording.dir.join("profile.yaml"),
        None => {
            return Err(CliError::bad_input(format!(
                "{} has no profile.yaml (the run had no profile file): pass --cluster PROFILE",
                recording.dir.display()
            )));
        }
    };
    let mut profile = scenario::load_profile(&profile_path).map_err(|e| CliError::invalid(&e))?;
    let slack = hpchaos::runner::replay::cut_slack(&profile.value.poll);
    hpchaos::runner::replay::cut(&recording, slack).map_err(CliError::bad_input)?;
    let scenario_path = match (&args.scenario, &recording.scenario) {
        (Some(path), _) => path.clone(),
        (None, Some(_)) => recording.dir.join("scenario.yaml"),
        (None, None) => {
            return Err(CliError::bad_input(format!(
                "{} has no scenario.yaml (the scenario it was made with): pass one with --scenario FILE",
                recording.dir.display()
            )));
        }
    };
    let loaded = scenario::load_scenario(&scenario_path, Some(&profile.value))
        .map_err(|e| CliError::invalid(&e))?;
    // Nothing is asked of the cluster: no API client either.
    profile.value.sagemaker = None;
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| recording.dir.join("replays"));
    let manifest = &recording.manifest;
    let clock = Arc::new(ManualClock::starting_at(manifest.injected_at));
    let (dir, journal) = runner::open_run_dir(&report_dir, &loaded.value.name, clock.clone())
        .map_err(|err| CliError::failed(format!("{err}; nothing was replayed")))?;
    let journal_path = dir.join("journal.jsonl");
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let cluster = Cluster::connect(&profile.value).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let settings = runner::Settings {
            clock: Some(clock.clone()),
            run_id: Some(format!("replay-{}", manifest.run_id)),
            ..runner::Settings::default()
        };
        let mut runner = Runner::new(cluster, journal, rx, settings);
        let ending = runner
            .replay(&recording, &loaded, clock, stop)
            .await
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        let ran = Ran {
            runner: &runner,
            dir: &dir,
            journal_path: &journal_path,
        };
        let result: Result<(), runner::RunError> = Ok(());
        let report = ran.report(&result)?;
        let unwritten = ran.write_reports(&report);
        ran.show(&report);
        if let Some(live) = manifest.outcome {
            outln!(
                "recorded run {}: {live:?}{}; replayed: {:?}",
                manifest.run_id,
                manifest
                    .reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                ending.outcome
            );
        }
        outln!("reports: {}", dir.display());
        let ended = exit::Ended {
            lease_lost: false,
            left_applied: false,
            reports_unwritten: unwritten,
        };
        Ok(exit::of_ended_run(&report, ended))
    })
}
