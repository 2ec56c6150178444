//! `hpchaos run`: scenarios and suites against a cluster. Loads and
//! checks what it is given, checks the cluster before any change, runs
//! (the library's `Runner`), and turns the journal into the reports, the
//! terminal's table and the history; the exit code says how it went
//! (`exit.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::exit;
use hpchaos::cluster::Cluster;
use hpchaos::history::gate::BaselineSpec;
use hpchaos::journal::Journal;
use hpchaos::report::{Format, Report};
use hpchaos::runner::regression::{GatePlan, NoBaseline};
use hpchaos::runner::{self, Runner};

use super::work::{self, Work};
use super::{CliError, Outcome};

/// `hpchaos run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required_unless_present = "plan", value_name = "SCENARIO|SUITE")]
    files: Vec<PathBuf>,
    /// Run a plan written by `plan -o FILE`, exactly: its scenarios as
    /// they were planned, on the nodes it resolved; refused (exit 3,
    /// nothing done) when the cluster no longer matches it (a target not
    /// usable or on another instance, a different job).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["files", "dry_run"])]
    plan: Option<PathBuf>,
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
    /// Run a scenario that expects HyperPod to replace or reboot a node
    /// although the cluster's NodeRecovery is None (refused otherwise): to
    /// rehearse a cluster that does not recover, the fault held until the
    /// deadlines pass and the rollback undoes it.
    #[arg(long)]
    accept_no_recovery: bool,
    /// For schedules: skip the run (exit 4, nothing done) instead of
    /// refusing it (exit 3) when the cluster is under change of its own:
    /// an AMI patch due within the run's longest deadline, a software
    /// update or scaling in flight, a deep health check or maintenance
    /// reservation on a target.
    #[arg(long)]
    if_unchanged: bool,
    /// Record each watch's raw reads (sinfo's and scontrol's text, the
    /// controller log's lines, the API's nodes, the job's output) with
    /// when they were read, into DIR (a directory per scenario under it
    /// for several), for `hpchaos replay DIR` and for bug reports.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    record: Option<PathBuf>,
}

pub fn exec(args: Args) -> Outcome {
    let baseline = args
        .baseline
        .as_deref()
        .map(str::parse::<BaselineSpec>)
        .transpose()
        .map_err(|err| CliError::bad_input(format!("--baseline {err}")))?;
    if args.dry_run {
        return dry_run(
            &args.files,
            args.cluster.as_deref(),
            args.accept_no_recovery,
            None,
        );
    }
    let written = args
        .plan
        .as_deref()
        .map(super::plan_file::read)
        .transpose()?;
    let work = match &written {
        Some(plan) => super::plan_file::work(plan, args.cluster.as_deref())?,
        None => work::load(&args.files, args.cluster.as_deref())?,
    };
    let runtime = super::runtime()?;
    offline_checks(&work)?;
    runtime.block_on(run(&args, &work, baseline.as_ref(), written.as_ref()))
}

/// `plan`, and `run --dry-run`: what would be done, touching nothing;
/// with `output`, the plan written there too (when nothing was refused).
pub fn dry_run(
    files: &[PathBuf],
    cluster: Option<&Path>,
    accept_no_recovery: bool,
    output: Option<&Path>,
) -> Outcome {
    let work = work::load(files, cluster)?;
    let runtime = super::runtime()?;
    offline_checks(&work)?;
    runtime.block_on(async {
        let cluster = Cluster::connect(&work.profile).await;
        let summary = online_checks(&cluster, &work).await?;
        let checks = super::plan::Checks {
            cluster: summary.as_ref(),
            accept_no_recovery,
            writes_plan: output.is_some(),
        };
        let mut resolved = Vec::new();
        let shown = super::plan::show(&cluster, &work, checks, &mut resolved).await?;
        if let Some(path) = output {
            super::plan_file::write(path, &cluster, &work, &resolved).await?;
            outln!(
                "plan written to {} (run it with `hpchaos run --plan {}`)",
                path.display(),
                path.display()
            );
        }
        Ok(shown)
    })
}

/// Offline first: the files the profile names, the head's key.
fn offline_checks(work: &Work) -> Result<(), CliError> {
    let problems =
        hpchaos::preflight::offline(&work.profile_path, &work.profile_text, &work.profile);
    if problems.is_empty() {
        return Ok(());
    }
    let mut said: Vec<String> = problems
        .iter()
        .map(|p| p.render(&work.profile_text))
        .collect();
    said.push("error: the cluster profile cannot be used as it is; nothing was done".to_owned());
    Err(CliError::bad_input_rendered(said.join("\n")))
}

/// Every source the run needs must answer, before any change; what
/// `DescribeCluster` said, for the scenario checks.
pub async fn online_checks(
    cluster: &Cluster,
    work: &Work,
) -> Result<Option<hpchaos::cluster::sagemaker::ClusterSummary>, CliError> {
    let online = hpchaos::preflight::online(cluster).await;
    let problems = online.problems;
    if problems.is_empty() {
        return Ok(online.cluster);
    }
    let mut said: Vec<String> = problems.iter().map(|p| format!("error: {p}")).collect();
    said.push(format!(
        "error: {} check(s) failed before the run ({}); nothing was done",
        problems.len(),
        work.profile_path.display()
    ));
    Err(CliError::failed_rendered(said.join("\n")))
}

/// Every scenario checked against the live cluster before the run opens
/// anything (see `preflight::scenario`): a refusal ends the run here,
/// nothing recorded, with the highest exit code among them (2: a scenario
/// that cannot run as written, 3: a cluster that cannot do what it
/// expects).
async fn scenario_checks(
    cluster: &Cluster,
    work: &Work,
    summary: Option<&hpchaos::cluster::sagemaker::ClusterSummary>,
    accept_no_recovery: bool,
    if_unchanged: bool,
) -> Result<(), CliError> {
    let mut said = Vec::new();
    let mut worst = None;
    for loaded in &work.scenarios {
        let scenario = &loaded.value;
        let checked = match hpchaos::monitoring::stop::refusal(cluster, scenario).await {
            Err(refusal) => Err(refusal),
            Ok(()) => {
                hpchaos::preflight::scenario(cluster, scenario, summary, accept_no_recovery).await
            }
        };
        if let Err(refusal) = checked {
            said.push(format!(
                "error: scenario {} ({}): {}",
                loaded.value.name,
                loaded.path.display(),
                refusal.why
            ));
            worst = worst.max(Some(refusal.kind));
        }
    }
    if said.is_empty() {
        return Ok(());
    }
    // A schedule skips a cluster under its own change (exit 4) when every
    // refusal is that.
    if if_unchanged && worst == Some(hpchaos::preflight::RefusalKind::UnderChange) {
        said.push(
            "skipped: the cluster is under change of its own (--if-unchanged); nothing was done"
                .to_owned(),
        );
        return Err(CliError::skipped(
            said.join("\n").replace("error: scenario", "scenario"),
        ));
    }
    said.push(format!(
        "error: {} scenario(s) cannot run on this cluster; nothing was done or recorded",
        said.len()
    ));
    let worst = worst.unwrap_or(hpchaos::preflight::RefusalKind::Scenario);
    Err(CliError::refused(worst, said.join("\n"), true))
}

/// A schedule leaves a busy cluster alone: fewer than `wanted` idle nodes
/// is exit 4, nothing done.
async fn idle_enough(cluster: &Cluster, wanted: u32) -> Result<(), CliError> {
    let idle = cluster
        .slurm
        .state_groups()
        .await
        .map_err(|e| e.to_string())
        .and_then(|g| hpchaos::cluster::slurm::idle_in_groups(&g).map_err(|e| e.to_string()))
        .map_err(|err| {
            CliError::failed(format!(
                "cannot count idle nodes for --if-idle: {err}; nothing was done"
            ))
        })?;
    if idle.len() < wanted as usize {
        return Err(CliError::skipped(format!(
            "skipped: {} node(s) idle, fewer than --if-idle {wanted}; nothing was done",
            idle.len()
        )));
    }
    Ok(())
}

/// The run itself: checks, the run folder, the runner, the reports.
async fn run(
    args: &Args,
    work: &Work,
    baseline: Option<&BaselineSpec>,
    written: Option<&super::plan_file::PlanFile>,
) -> Outcome {
    let cluster = Cluster::connect(&work.profile).await;
    // Signals are ours from here on (also when the shell started us with
    // SIGINT ignored): none is lost while the checks run.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let undoing = Arc::new(Mutex::new(None));
    let recover_hint = Arc::new(Mutex::new(format!(
        "hpchaos recover --cluster {}",
        work.profile_path.display()
    )));
    // Shared with the runner: `hpchaos stop`, read with the lease's
    // renewal, sends it as a signal would.
    let cancel_tx = Arc::new(cancel_tx);
    tokio::spawn(super::signals::stop_on_signals(
        cancel_tx.clone(),
        undoing.clone(),
        recover_hint.clone(),
    ));
    // The checks before the run: a refusal changes nothing, and is told
    // to the webhooks as a failure (a nightly run that could not start).
    let checked = async {
        let summary = online_checks(&cluster, work).await?;
        if let (Some(plan), Some(path)) = (written, &args.plan) {
            super::plan_file::still_matches(&cluster, plan, path).await?;
        }
        scenario_checks(
            &cluster,
            work,
            summary.as_ref(),
            args.accept_no_recovery,
            args.if_unchanged,
        )
        .await?;
        if let Some(wanted) = args.if_idle {
            idle_enough(&cluster, wanted).await?;
        }
        not_held(&cluster, &work.profile_path).await?;
        Ok::<(), CliError>(())
    }
    .await;
    if let Err(refused) = checked {
        // A scheduled run skipping itself (`--if-idle`) is no failure.
        if refused.code != exit::SKIPPED {
            tell_refused(&work.profile, work, &refused.message).await;
        }
        return Err(refused);
    }
    let name = work.suite.clone().unwrap_or_else(|| {
        work.scenarios
            .first()
            .map(|s| s.value.name.clone())
            .unwrap_or_default()
    });
    let clock: Arc<dyn hpchaos::clock::Clock> = Arc::new(hpchaos::clock::SystemClock);
    let report_dir = args
        .report_dir
        .clone()
        .or(work.report_dir.clone())
        .unwrap_or_else(|| PathBuf::from("reports"));
    // Regression gates need their baselines: a store that cannot be read
    // or a run id it does not know stop the run here, before any change
    // (not after the fault, as an unjudged gate).
    let gates = gate_plan(&report_dir, work, baseline)?;
    let (dir, journal) = runner::open_run_dir(&report_dir, &name, clock)
        .map_err(|err| CliError::failed(format!("{err}; nothing was done")))?;
    let journal_path = dir.join("journal.jsonl");
    eprintln!("journal: {}", journal_path.display());
    *recover_hint.lock().unwrap_or_else(|p| p.into_inner()) = format!(
        "hpchaos recover --cluster {} {}",
        work.profile_path.display(),
        std::path::absolute(&journal_path)
            .unwrap_or_else(|_| journal_path.clone())
            .display()
    );
    let settings = runner::Settings {
        gates,
        wait_lock: args.wait_lock.map(|d| d.as_std()),
        profile_path: Some(work.profile_path.display().to_string()),
        undoing: Some(undoing),
        live: true,
        record: args.record.clone(),
        stop_signal: Some(cancel_tx),
        ..runner::Settings::default()
    };
    let mut runner = Runner::new(cluster, journal, cancel_rx, settings);
    let result = runner
        .run(
            &work.scenarios,
            work.suite.as_deref(),
            work.stop_on_failure,
            work.cooldown,
        )
        .await;
    let ran = Ran {
        runner: &runner,
        dir: &dir,
        journal_path: &journal_path,
    };
    let report = ran.report(&result)?;
    let unwritten = ran.write_reports(&report);
    ran.show(&report);
    // The history remembers the run; a history that cannot be written is
    // said, and never changes the run's outcome.
    match hpchaos::history::open_synced(&report_dir).and_then(|h| {
        let index = hpchaos::history::write_index(&h)?;
        Ok((index, h.runs(None, None)?))
    }) {
        Ok((index, runs)) => {
            outln!("history: {}", index.display());
            push_score(&work.profile, &runs).await;
        }
        Err(err) => eprintln!("warning: the run is not in the history: {err}"),
    }
    if unwritten {
        outln!(
            "reports: NOT written to {} (see the errors above); the journal is {}",
            dir.display(),
            journal_path.display()
        );
    } else {
        outln!("reports: {}", dir.display());
    }
    ran.say_still_applied(&report);
    tell(&work.profile.notify, &report, &dir).await;
    let ended = |lease_lost| exit::Ended {
        lease_lost,
        left_applied: report.recover_command.is_some(),
        reports_unwritten: unwritten,
    };
    match result {
        // Said when it was lost, with what became of its changes.
        Err(runner::RunError::LeaseLost(_)) => Ok(exit::of_ended_run(&report, ended(true))),
        Err(err) => Err(CliError::failed(err)),
        Ok(_) => Ok(exit::of_ended_run(&report, ended(false))),
    }
}

/// A run that ended, for its reports.
pub(super) struct Ran<'a> {
    pub(super) runner: &'a Runner,
    pub(super) dir: &'a Path,
    pub(super) journal_path: &'a Path,
}

impl Ran<'_> {
    /// The report, from the journal; a journal that could not be written
    /// (or is empty) makes none, and says what the rollback found.
    pub(super) fn report<T>(
        &self,
        result: &Result<T, runner::RunError>,
    ) -> Result<Report, CliError> {
        match Journal::load(self.journal_path) {
            Ok(journal) if !journal.records.is_empty() => Ok(hpchaos::report::build(&journal)),
            Ok(_) | Err(_) => {
                let why = match result {
                    Err(err) => err.to_string(),
                    Ok(_) => "it is empty".to_owned(),
                };
                let mut said = vec![format!(
                    "error: the journal {} could not be written ({why}); no report was made",
                    self.journal_path.display()
                )];
                for undone in &self.runner.unrecorded {
                    said.push(format!(
                        "rollback: {}: {}, not recorded",
                        undone.step, undone.found
                    ));
                }
                Err(CliError::failed_rendered(said.join("\n")))
            }
        }
    }

    /// Writes the markdown, JSON and JUnit reports, each whole or absent;
    /// whether one could not be written (said).
    pub(super) fn write_reports(&self, report: &Report) -> bool {
        let mut unwritten = false;
        for (format, file) in [
            (Format::Markdown, "report.md"),
            (Format::Json, "report.json"),
            (Format::Junit, "junit.xml"),
        ] {
            let path = self.dir.join(file);
            if let Err(err) = write_whole(&path, &format.exporter().render(report)) {
                eprintln!("error: cannot write {}: {err}", path.display());
                unwritten = true;
            }
        }
        unwritten
    }

    /// The terminal's table tells what the cluster shows: a step the
    /// rollback undid but could not record (re-checked, said below) is not
    /// listed as still applied there; the journal still lists it, for
    /// `recover`.
    pub(super) fn show(&self, report: &Report) {
        let mut shown = report.clone();
        shown.still_applied.retain(|step| {
            !self
                .runner
                .unrecorded
                .iter()
                .any(|undone| undone.step == *step && !undone.still_applied)
        });
        if shown.still_applied.is_empty() {
            shown.recover_command = None;
        }
        out!("{}", Format::Table.exporter().render(&shown));
    }

    /// What is still applied and how to undo it; a step undone by the
    /// rollback whose record could not be written is said with what the
    /// cluster showed when re-checked.
    fn say_still_applied(&self, report: &Report) {
        let Some(command) = &report.recover_command else {
            return;
        };
        let unrecorded: Vec<&runner::Unrecorded> = self
            .runner
            .unrecorded
            .iter()
            .filter(|u| report.still_applied.contains(&u.step))
            .collect();
        let open = report.still_applied.len().saturating_sub(unrecorded.len());
        for undone in &unrecorded {
            eprintln!(
                "rollback: {}: {}, not recorded (the journal could not be written)",
                undone.step, undone.found
            );
        }
        let still = unrecorded.iter().filter(|u| u.still_applied).count();
        if open + still > 0 {
            eprintln!(
                "error: {} step(s) were not undone and may still be applied; undo them with: {command}",
                open + still
            );
        } else {
            eprintln!(
                "error: the journal lists {} step(s) as applied: the rollback undid them (re-checked above) but could not record it; `{command}` would find them undone",
                unrecorded.len()
            );
        }
    }
}

/// The run's regression gates: with `--baseline`, every scenario;
/// without it, the scenarios that declare `expect.regression` (against
/// `p50:30d`). Baselines come from the history under `report_dir`, read
/// before the run. Errors: the history cannot
/// be read (3), or `--baseline RUN_ID` names a run it does not hold (2).
fn gate_plan(
    report_dir: &Path,
    work: &Work,
    baseline: Option<&BaselineSpec>,
) -> Result<Option<GatePlan>, CliError> {
    let gated: Vec<&str> = work
        .scenarios
        .iter()
        .filter(|s| baseline.is_some() || s.value.expect.regression.is_some())
        .map(|s| s.value.name.as_str())
        .collect();
    if gated.is_empty() {
        return Ok(None);
    }
    let spec = baseline
        .cloned()
        .unwrap_or(BaselineSpec::Median { days: 30 });
    let history = hpchaos::history::open_synced(report_dir).map_err(|err| {
        CliError::failed(format!(
            "regression gates need the run history: {err}; nothing was done"
        ))
    })?;
    if let BaselineSpec::Run(id) = &spec
        && !history.has_run(id).unwrap_or(false)
    {
        return Err(CliError::bad_input(format!(
            "--baseline {id}: no such run in the history under {} (see `hpchaos history --report-dir {}`); nothing was done",
            report_dir.display(),
            report_dir.display()
        )));
    }
    let now = hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock);
    let baselines = gated
        .into_iter()
        .map(|name| {
            let found = history
                .runs(Some(name), None)
                .map_err(|e| NoBaseline::History(std::sync::Arc::new(e)))
                .and_then(|runs| {
                    if let BaselineSpec::Run(id) = &spec
                        && !runs.iter().any(|r| &r.run_id == id)
                    {
                        return Err(NoBaseline::NotThisScenario {
                            id: id.clone(),
                            scenario: name.to_owned(),
                        });
                    }
                    Ok(hpchaos::history::gate::baselines(&runs, &spec, now))
                });
            (name.to_owned(), found)
        })
        .collect();
    Ok(Some(GatePlan {
        all_phases: baseline.is_some(),
        spec,
        baselines,
    }))
}

/// Writes `text` to a temporary file beside `path`, synced, then renames
/// it over `path`: a report is whole or absent, never empty or half
/// written (a full disk leaves no file, and says so).
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = std::fs::remove_file(&tmp);
            Err(err)
        }
    }
}

/// Tells the profile's webhooks how the run ended (`notify:`): said on
/// stderr, never changing the exit.
pub(super) async fn tell(hooks: &[hpchaos::profile::Notify], report: &Report, dir: &Path) {
    if hooks.is_empty() {
        return;
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let sent =
        hpchaos::publish::notify::notify_all(hooks, report, &dir.display().to_string()).await;
    for told in sent {
        match told.result {
            Ok(status) => eprintln!(
                "notified {} (HTTP {status}, attempt {})",
                told.url, told.attempts
            ),
            Err(why) => eprintln!(
                "warning: could not notify {} after {} attempt(s): {why}",
                told.url, told.attempts
            ),
        }
    }
}

/// Pushes the resiliency score, as the history now stands, to the
/// profile's Pushgateway (`hpchaos_resiliency_score`); a failure is said
/// and changes nothing.
async fn push_score(profile: &hpchaos::profile::Profile, runs: &[hpchaos::history::ScenarioRun]) {
    let Some(endpoint) = profile
        .monitoring
        .as_ref()
        .and_then(|m| m.pushgateway.as_ref())
    else {
        return;
    };
    use hpchaos::history::score;
    let now = hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock);
    let text = score::prometheus(&score::score(runs, &[], now, score::DEFAULT_STALE));
    let client = hpchaos::monitoring::client::Client::new();
    if let Err(err) =
        hpchaos::publish::push::score_to_pushgateway(&client, endpoint, &profile.name, &text).await
    {
        eprintln!("warning: the resiliency score was not pushed: {err}");
    }
}

/// Tells the profile's webhooks that a run was refused before any change
/// (a nightly run that could not start is a failure to hear about).
async fn tell_refused(profile: &hpchaos::profile::Profile, work: &Work, why: &str) {
    if profile.notify.is_empty() {
        return;
    }
    let what: Vec<String> = match &work.suite {
        Some(suite) => vec![suite.clone()],
        None => work
            .scenarios
            .iter()
            .map(|s| s.value.name.clone())
            .collect(),
    };
    // The message as printed, without its `error: ` prefixes.
    let why: Vec<&str> = why
        .lines()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    let why = why.join("; ");
    let sent =
        hpchaos::publish::notify::refused_all(&profile.notify, &profile.name, &what, &why).await;
    for told in sent {
        match told.result {
            Ok(status) => eprintln!(
                "notified {} of the refusal (HTTP {status}, attempt {})",
                told.url, told.attempts
            ),
            Err(e) => eprintln!(
                "warning: could not notify {} after {} attempt(s): {e}",
                told.url, told.attempts
            ),
        }
    }
}

/// Refuses, before anything is done or recorded, a run on a cluster that
/// `hpchaos stop --hold` holds (the lock refuses it too, for a hold put on
/// between this check and taking the lock). A head that cannot be asked
/// is left to the lock.
async fn not_held(cluster: &Cluster, profile_path: &Path) -> Result<(), CliError> {
    use hpchaos::runner::emergency;
    let read = cluster
        .ssh
        .run(
            &cluster.slurm.head,
            &[
                "sh",
                "-c",
                emergency::READ_SCRIPT,
                "hpchaos",
                hpchaos::runner::LOCK_DIR,
                emergency::HOLD_FILE,
            ],
        )
        .await;
    let Some(hold) = read
        .ok()
        .and_then(|out| emergency::parse_standing(&out.stdout).hold)
    else {
        return Ok(());
    };
    Err(CliError::failed(format!(
        "the cluster is held by hpchaos stop --hold ({}, {}): {}; no run starts until it is released with: hpchaos stop --cluster {} --release (nothing was done or recorded)",
        hold.by,
        hold.at.format("%Y-%m-%d %H:%M:%S UTC"),
        hold.reason,
        profile_path.display()
    )))
}
