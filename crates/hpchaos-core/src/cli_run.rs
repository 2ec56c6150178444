//! `run`, `plan` and `status`: loading what the command line names,
//! connecting to the cluster, running, and turning the journal into the
//! reports. Kept out of `main.rs` so the binary stays a thin shell.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::exit;
use crate::history::gate::BaselineSpec;
use crate::journal::Journal;
use crate::profile::Profile;
use crate::report::{self, Format};
use crate::runner::{self, Runner};
use crate::scenario::{self, FileKind, LoadError, Loaded, Scenario};

/// What to run: scenarios in order, the suite's name and policy.
struct Work {
    scenarios: Vec<Loaded<Scenario>>,
    suite: Option<String>,
    stop_on_failure: bool,
    /// The suite's pause between scenarios.
    cooldown: Option<std::time::Duration>,
    /// The suite's report folder, relative to the working directory.
    report_dir: Option<PathBuf>,
    profile: Profile,
    profile_path: PathBuf,
    profile_text: String,
}

fn print_invalid(err: &LoadError) {
    match err {
        LoadError::Invalid {
            text, diagnostics, ..
        } => eprintln!("{}", diagnostics.render(text)),
        LoadError::Read { .. } => eprintln!("error: {err}"),
    }
}

fn load(files: &[PathBuf], cluster: Option<&Path>) -> Result<Work, u8> {
    let mut profile_path = cluster.map(Path::to_path_buf);
    let mut paths = Vec::new();
    let mut suite = None;
    let mut stop_on_failure = false;
    let mut cooldown = None;
    let mut report_dir = None;
    for file in files {
        let text = scenario::read(file).map_err(|e| {
            print_invalid(&e);
            exit::INVALID_INPUT
        })?;
        if FileKind::detect(&text) == FileKind::Suite {
            let loaded = scenario::parse_suite(file, &text).map_err(|d| {
                eprintln!("{}", d.render(&text));
                exit::INVALID_INPUT
            })?;
            let base = file.parent().unwrap_or(Path::new("."));
            if profile_path.is_none() {
                profile_path = loaded.cluster.as_ref().map(|c| base.join(c));
            }
            stop_on_failure |= loaded.stop_on_failure;
            cooldown = loaded.cooldown.map(|c| c.as_std()).or(cooldown);
            report_dir = loaded.report_dir.map(PathBuf::from).or(report_dir);
            paths.extend(loaded.scenarios.iter().map(|s| base.join(s)));
            suite = Some(loaded.name);
        } else {
            paths.push(file.clone());
        }
    }
    let Some(profile_path) = profile_path else {
        eprintln!(
            "error: no cluster profile: pass --cluster PROFILE (for the lab: /tmp/hpchaos-lab/profile.yaml after `hpchaos lab up`)"
        );
        return Err(exit::INVALID_INPUT);
    };
    let profile = scenario::load_profile(&profile_path).map_err(|e| {
        print_invalid(&e);
        exit::INVALID_INPUT
    })?;
    let mut scenarios = Vec::new();
    let mut invalid = false;
    for path in paths {
        match scenario::read(&path).and_then(|text| {
            scenario::parse_scenario(&path, &text, Some(&profile.value))
                .map(|value| Loaded {
                    path: path.clone(),
                    text: text.clone(),
                    value,
                })
                .map_err(|diagnostics| LoadError::Invalid {
                    path: path.clone(),
                    text,
                    diagnostics,
                })
        }) {
            Ok(loaded) => scenarios.push(loaded),
            Err(err) => {
                print_invalid(&err);
                invalid = true;
            }
        }
    }
    if invalid {
        return Err(exit::INVALID_INPUT);
    }
    Ok(Work {
        scenarios,
        suite,
        stop_on_failure,
        cooldown,
        report_dir,
        profile: profile.value,
        profile_path,
        profile_text: profile.text,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::HARNESS_FAILED
    })
}

/// How `run` runs, beyond its files.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the plan, touch nothing.
    pub dry_run: bool,
    /// `--baseline`: regression gates against the history.
    pub baseline: Option<String>,
    /// `--if-idle N`: skip (exit 4) with fewer idle nodes.
    pub if_idle: Option<u32>,
    /// `--wait-lock`: wait this long for a lock a live run holds.
    pub wait_lock: Option<std::time::Duration>,
}

pub fn run(
    files: &[PathBuf],
    cluster: Option<&Path>,
    report_dir: Option<&Path>,
    options: &RunOptions,
) -> u8 {
    let dry_run = options.dry_run;
    let baseline = match options
        .baseline
        .as_deref()
        .map(str::parse::<BaselineSpec>)
        .transpose()
    {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("error: --baseline {err}");
            return exit::INVALID_INPUT;
        }
    };
    let work = match load(files, cluster) {
        Ok(work) => work,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Offline first: files the profile names, the head's key.
    let problems = crate::preflight::offline(&work.profile_path, &work.profile_text, &work.profile);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}", problem.render(&work.profile_text));
        }
        eprintln!("error: the cluster profile cannot be used as it is; nothing was done");
        return exit::HARNESS_FAILED;
    }
    runtime.block_on(async move {
        let cluster = Cluster::connect(&work.profile).await;
        if dry_run {
            return plan(&cluster, &work).await;
        }
        // Signals are ours from here on (also when the shell started us
        // with SIGINT ignored): none is lost while the checks run.
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let undoing = std::sync::Arc::new(std::sync::Mutex::new(None));
        let recover_hint = std::sync::Arc::new(std::sync::Mutex::new(format!(
            "hpchaos recover --cluster {}",
            work.profile_path.display()
        )));
        tokio::spawn(stop_on_signals(
            cancel_tx,
            undoing.clone(),
            recover_hint.clone(),
        ));
        // Then every source the run needs must answer, before any change.
        let problems = crate::preflight::online(&cluster).await;
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!(
                "error: {} check(s) failed before the run ({}); nothing was done",
                problems.len(),
                work.profile_path.display()
            );
            return exit::HARNESS_FAILED;
        }
        // A schedule leaves a busy cluster alone: nothing done, exit 4.
        if let Some(wanted) = options.if_idle {
            let idle = cluster
                .slurm
                .state_groups()
                .await
                .map_err(|e| e.to_string())
                .and_then(|g| crate::cluster::slurm::idle_in_groups(&g));
            match idle {
                Ok(idle) if idle.len() < wanted as usize => {
                    eprintln!(
                        "skipped: {} node(s) idle, fewer than --if-idle {wanted}; nothing was done",
                        idle.len()
                    );
                    return exit::SKIPPED;
                }
                Ok(_) => {}
                Err(err) => {
                    eprintln!("error: cannot count idle nodes for --if-idle: {err}; nothing was done");
                    return exit::HARNESS_FAILED;
                }
            }
        }
        let name = work.suite.clone().unwrap_or_else(|| {
            work.scenarios
                .first()
                .map(|s| s.value.name.clone())
                .unwrap_or_default()
        });
        let clock: std::sync::Arc<dyn crate::clock::Clock> =
            std::sync::Arc::new(crate::clock::SystemClock);
        let report_dir = report_dir
            .map(Path::to_path_buf)
            .or(work.report_dir.clone())
            .unwrap_or_else(|| PathBuf::from("reports"));
        // Regression gates need their baselines: a store that cannot be
        // read or a run id it does not know stop the run here, before any
        // change (not after the fault, as an unjudged gate).
        let gates = match gate_plan(&report_dir, &work, baseline.as_ref()) {
            Ok(gates) => gates,
            Err(code) => return code,
        };
        let (dir, journal) = match runner::open_run_dir(&report_dir, &name, clock) {
            Ok(opened) => opened,
            Err(err) => {
                eprintln!("error: {err}; nothing was done");
                return exit::HARNESS_FAILED;
            }
        };
        let journal_path = dir.join("journal.jsonl");
        eprintln!("journal: {}", journal_path.display());
        *recover_hint.lock().unwrap_or_else(|p| p.into_inner()) = format!(
            "hpchaos recover --cluster {} {}",
            work.profile_path.display(),
            std::path::absolute(&journal_path)
                .unwrap_or_else(|_| journal_path.clone())
                .display()
        );
        let mut runner = Runner::new(cluster, journal, cancel_rx);
        runner.gates = gates;
        runner.wait_lock = options.wait_lock;
        runner.profile_path = Some(work.profile_path.display().to_string());
        runner.undoing = undoing;
        runner.live = Some(crate::live::LiveView::default());
        let result = runner
            .run(
                &work.scenarios,
                work.suite.as_deref(),
                work.stop_on_failure,
                work.cooldown,
            )
            .await;
        let journal = match Journal::load(&journal_path) {
            Ok(journal) if !journal.records.is_empty() => journal,
            Ok(_) | Err(_) => {
                let why = match &result {
                    Err(err) => err.to_string(),
                    Ok(_) => "it is empty".to_owned(),
                };
                eprintln!(
                    "error: the journal {} could not be written ({why}); no report was made",
                    journal_path.display()
                );
                for (step, found) in &runner.unrecorded {
                    eprintln!("rollback: {step}: {found}, not recorded");
                }
                return exit::HARNESS_FAILED;
            }
        };
        let report = report::build(&journal);
        let mut unwritten = false;
        for (format, file) in [
            (Format::Markdown, "report.md"),
            (Format::Json, "report.json"),
            (Format::Junit, "junit.xml"),
        ] {
            if let Err(err) = write_whole(&dir.join(file), &format.exporter().render(&report)) {
                eprintln!("error: cannot write {}: {err}", dir.join(file).display());
                unwritten = true;
            }
        }
        // The terminal's table tells what the cluster shows: a step the
        // rollback undid but could not record (re-checked, said below) is
        // not listed as still applied there; the journal still lists it,
        // for `recover`.
        let mut shown = report.clone();
        shown.still_applied.retain(|step| {
            !runner.unrecorded.iter().any(|(undone, found)| {
                undone == step && !found.starts_with("STILL") && !found.starts_with("NOT")
            })
        });
        if shown.still_applied.is_empty() {
            shown.recover_command = None;
        }
        print!("{}", Format::Table.exporter().render(&shown));
        // The history remembers the run; a history that cannot be written
        // is said, and never changes the run's outcome.
        match crate::history::open_synced(&report_dir).and_then(|h| crate::history::write_index(&h)) {
            Ok(index) => println!("history: {}", index.display()),
            Err(err) => eprintln!("warning: the run is not in the history: {err}"),
        }
        if unwritten {
            println!("reports: NOT written to {} (see the errors above); the journal is {}", dir.display(), journal_path.display());
        } else {
            println!("reports: {}", dir.display());
        }
        if let Some(command) = &report.recover_command {
            // Undone by the rollback, but its record could not be written:
            // what the cluster showed when re-checked is said instead.
            let unrecorded: Vec<&(String, String)> = runner
                .unrecorded
                .iter()
                .filter(|(step, _)| report.still_applied.iter().any(|s| s == step))
                .collect();
            let open = report.still_applied.len().saturating_sub(unrecorded.len());
            for (step, found) in &unrecorded {
                eprintln!("rollback: {step}: {found}, not recorded (the journal could not be written)");
            }
            let still = unrecorded.iter().filter(|(_, f)| f.starts_with("STILL") || f.starts_with("NOT")).count();
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
        match result {
            // Said when it was lost, with what became of its changes.
            Err(runner::RunError::LeaseLost(_)) => exit::LEASE_LOST,
            Err(err) => {
                eprintln!("error: {err}");
                exit::HARNESS_FAILED
            }
            // Something of ours is left on the cluster: that outranks any
            // verdict.
            Ok(_) if report.recover_command.is_some() => exit::HARNESS_FAILED,
            Ok(_) if unwritten && report.exit_code() == exit::SUCCESS => {
                exit::HARNESS_FAILED
            }
            Ok(_) => report.exit_code(),
        }
    })
}

/// The run's regression gates: with `--baseline`, every scenario;
/// without it, the scenarios that declare `expect.regression` (against
/// `p50:30d`). Baselines come from the history under `report_dir`, read
/// before the run. Errors (said, with the exit code): the history cannot
/// be read (3), or `--baseline RUN_ID` names a run it does not hold (2).
fn gate_plan(
    report_dir: &Path,
    work: &Work,
    baseline: Option<&BaselineSpec>,
) -> Result<Option<runner::regression::GatePlan>, u8> {
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
    let history = crate::history::open_synced(report_dir).map_err(|err| {
        eprintln!("error: regression gates need the run history: {err}; nothing was done");
        exit::HARNESS_FAILED
    })?;
    if let BaselineSpec::Run(id) = &spec
        && !history.has_run(id).unwrap_or(false)
    {
        eprintln!(
            "error: --baseline {id}: no such run in the history under {} (see `hpchaos history --report-dir {}`); nothing was done",
            report_dir.display(),
            report_dir.display()
        );
        return Err(exit::INVALID_INPUT);
    }
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let baselines = gated
        .into_iter()
        .map(|name| {
            let found = history
                .runs(Some(name), None)
                .map_err(|e| e.to_string())
                .and_then(|runs| {
                    if let BaselineSpec::Run(id) = &spec
                        && !runs.iter().any(|r| &r.run_id == id)
                    {
                        return Err(format!(
                            "run {id} is not a run of {name} (see `hpchaos history --scenario {name}`)"
                        ));
                    }
                    Ok(crate::history::gate::baselines(&runs, &spec, now))
                });
            (name.to_owned(), found)
        })
        .collect();
    Ok(Some(runner::regression::GatePlan {
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

/// Ctrl-C, SIGTERM and SIGHUP: the first asks the run to stop (no new change to
/// the cluster, roll back, report); the second says what rollback is still
/// undoing; the third leaves at once, with the command that finishes the
/// undo from the journal.
async fn stop_on_signals(
    cancel: watch::Sender<bool>,
    undoing: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    recover_hint: std::sync::Arc<std::sync::Mutex<String>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            // A closed terminal or dropped SSH session: stop, roll back.
            _ = hup.recv() => {}
        }
        count += 1;
        let now = undoing.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let recover_hint = recover_hint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match count {
            1 => {
                eprintln!(
                    "interrupted: no new change to the cluster; rolling back, then writing the report"
                );
                let _ = cancel.send(true);
            }
            2 => match now {
                Some(what) => eprintln!(
                    "still rolling back: {what}. Interrupt once more to leave now; then run: {recover_hint}"
                ),
                None => eprintln!(
                    "stopping: waiting for the step under way to end, then rolling back. Interrupt once more to leave now; then run: {recover_hint}"
                ),
            },
            _ => {
                eprintln!(
                    "leaving now: what was not undone is in the journal; undo it with: {recover_hint}"
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    }
}

async fn plan(cluster: &Cluster, work: &Work) -> u8 {
    for loaded in &work.scenarios {
        let scenario = &loaded.value;
        println!("scenario {} ({})", scenario.name, loaded.path.display());
        let targets = runner::plan_targets(cluster, scenario).await;
        let targets = match targets {
            Ok(t) => t,
            Err(reason) => {
                println!("  targets: {reason}");
                for (index, item) in scenario.expect.monitoring.iter().enumerate() {
                    println!(
                        "  monitor:  {}: {} within {} (asked once the targets are known)",
                        item.label(index),
                        item.promql.clone().unwrap_or_else(|| {
                            crate::monitoring::expect::Kind::Alert {
                                name: item.alert.clone().unwrap_or_default(),
                                labels: item.labels.clone(),
                            }
                            .describe()
                        }),
                        item.within
                    );
                }
                continue;
            }
        };
        println!("  targets: {}", targets.join(", "));
        let plan = crate::faults::plan(&scenario.fault, &targets);
        for step in &plan.inject {
            println!("  inject:   {}", step.describe());
        }
        for step in &plan.verify {
            println!("  verify:   {}", step.describe());
        }
        if let Some((after, steps)) = &plan.follow_up {
            for step in steps {
                println!("  after {after}: {}", step.describe());
            }
        }
        for step in &plan.rollback {
            println!("  rollback: {}", step.describe());
        }
        let deadlines: Vec<String> = scenario
            .expect
            .deadlines
            .set()
            .iter()
            .map(|(p, d)| format!("{p} by {d}"))
            .collect();
        println!(
            "  expect:   {} ({})",
            scenario.expect.recovery,
            if deadlines.is_empty() {
                "no deadlines".to_owned()
            } else {
                deadlines.join(", ")
            }
        );
        // What the monitoring will be asked, substituted, and whether it
        // can answer now (read-only queries).
        if let Some(monitor) = crate::monitoring::Monitor::new(
            &scenario.expect.monitoring,
            &targets,
            crate::clock::Clock::now(&crate::clock::SystemClock),
        ) {
            for watch in &monitor.watches {
                println!(
                    "  monitor:  {}{}: {} within {} ({})",
                    watch.name,
                    watch
                        .target
                        .as_deref()
                        .map(|t| format!(" on {t}"))
                        .unwrap_or_default(),
                    watch.kind.describe(),
                    watch.within,
                    watch.kind.source()
                );
            }
            if let Some(endpoints) = &cluster.profile.monitoring {
                let client = crate::monitoring::client::Client::new();
                match monitor.ready(&client, endpoints).await {
                    Ok(said) => println!("  monitor:  ready: {said}"),
                    Err(why) => println!("  monitor:  NOT ready (the run would refuse): {why}"),
                }
            }
        }
    }
    println!("nothing was changed (dry run)");
    exit::SUCCESS
}

/// `hpchaos status`: the table, or with `json` the machine-readable view.
pub fn status(profile_path: &Path, json: bool) -> u8 {
    let profile = match scenario::load_profile(profile_path) {
        Ok(p) => p.value,
        Err(err) => {
            print_invalid(&err);
            return exit::INVALID_INPUT;
        }
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let cluster = Cluster::connect(&profile).await;
        let rows = match cluster.slurm.nodes().await {
            Ok(rows) => rows,
            Err(err) => {
                eprintln!("error: {err}");
                return exit::HARNESS_FAILED;
            }
        };
        let (api, unmapped) = match &cluster.api {
            Some(api) => match api.listing().await {
                Ok((nodes, unmapped)) => (Some(nodes), unmapped),
                Err(err) => {
                    eprintln!("error: {err}");
                    return exit::HARNESS_FAILED;
                }
            },
            None => (None, Vec::new()),
        };
        // Who holds the cluster's lock, and whether it is alive.
        let lock = lock_words(&cluster, profile_path).await;
        // The head and login nodes are instances, not Slurm nodes.
        let mut outside: Vec<&str> = profile.login_nodes.iter().map(String::as_str).collect();
        outside.push(&profile.head_node.name);
        if json {
            let mut value = crate::status::render_json(
                &profile.name,
                &profile.head_node.name,
                &profile.login_nodes,
                &rows,
                api.as_deref(),
                &unmapped,
            );
            if let Some(fields) = value.as_object_mut() {
                fields.insert("lock".to_owned(), serde_json::Value::String(lock));
            }
            crate::output::println(
                &serde_json::to_string_pretty(&value)
                    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
            );
        } else {
            crate::output::print(&crate::status::render(&outside, &rows, api.as_deref()));
            println!("lock: {lock}");
            for u in &unmapped {
                println!(
                    "unmapped instance {} ({}, {}): {}",
                    u.instance_id, u.group, u.status, u.why
                );
            }
        }
        exit::SUCCESS
    })
}

/// The cluster's lock in words, for `status`: `free`, or who holds it,
/// since when, the lease's age, and whether it is alive (by the rules
/// `recover` uses) with the command that cleans up after a dead one.
async fn lock_words(cluster: &Cluster, profile_path: &Path) -> String {
    use crate::runner::lock;
    let head = &cluster.slurm.head;
    let read = cluster
        .ssh
        .run(
            head,
            &["sh", "-c", lock::READ_SCRIPT, "hpchaos", lock::LOCK_DIR],
        )
        .await;
    let state = match read {
        Ok(out) => lock::parse_answer(&out.stdout),
        Err(err) => return format!("cannot be read: {err}"),
    };
    match state {
        Some(lock::LockState::Free) => "free".to_owned(),
        Some(lock::LockState::Held {
            owner: Some(owner),
            lease_age,
            ..
        }) => {
            let age = lease_age.map_or("?".to_owned(), |a| a.to_string());
            let boot = lock::this_boot();
            match lock::stale_because(
                &owner,
                lease_age,
                &lock::this_host(),
                boot.as_deref(),
                lock::pid_alive,
            ) {
                None => format!("held by {} (lease renewed {age}s ago)", owner.describe()),
                Some(why) => format!(
                    "held by {}, which is DEAD: {why}; undo what it left and release the lock with: hpchaos recover --cluster {}",
                    owner.describe(),
                    profile_path.display()
                ),
            }
        }
        Some(lock::LockState::Held { lease_age, .. }) => format!(
            "held, with no readable owner record ({}s old)",
            lease_age.map_or("?".to_owned(), |a| a.to_string())
        ),
        _ => "cannot be read (an answer that is not the lock's)".to_owned(),
    }
}
