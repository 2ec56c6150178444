//! `run`, `plan` and `status`: loading what the command line names,
//! connecting to the cluster, running, and turning the journal into the
//! reports. Kept out of `main.rs` so the binary stays a thin shell.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::exit;
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
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::HARNESS_FAILED
    })
}

pub fn run(
    files: &[PathBuf],
    cluster: Option<&Path>,
    report_dir: Option<&Path>,
    dry_run: bool,
) -> u8 {
    let work = match load(files, cluster) {
        Ok(work) => work,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let cluster = Cluster::connect(&work.profile).await;
        if dry_run {
            return plan(&cluster, &work).await;
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
        let (dir, journal) = match runner::open_run_dir(&report_dir, &name, clock) {
            Ok(opened) => opened,
            Err(err) => {
                eprintln!("error: {err}");
                return exit::HARNESS_FAILED;
            }
        };
        eprintln!("journal: {}", dir.join("journal.jsonl").display());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("interrupted: rolling back, then writing the report");
            let _ = cancel_tx.send(true);
        });
        let mut runner = Runner::new(cluster, journal, cancel_rx);
        runner.live = Some(crate::live::LiveView::default());
        let result = runner
            .run(
                &work.scenarios,
                work.suite.as_deref(),
                work.stop_on_failure,
                work.cooldown,
            )
            .await;
        let report = report::build(
            &Journal::load(&dir.join("journal.jsonl")).unwrap_or_else(|_| Journal::parse("")),
        );
        for (format, file) in [
            (Format::Markdown, "report.md"),
            (Format::Json, "report.json"),
            (Format::Junit, "junit.xml"),
        ] {
            if let Err(err) = std::fs::write(dir.join(file), format.exporter().render(&report)) {
                eprintln!("error: cannot write {file}: {err}");
            }
        }
        print!("{}", Format::Table.exporter().render(&report));
        println!("reports: {}", dir.display());
        match result {
            Err(err) => {
                eprintln!("error: {err}");
                exit::HARNESS_FAILED
            }
            Ok(_) => report.status.exit_code(),
        }
    })
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
    }
    println!("nothing was changed (dry run)");
    exit::SUCCESS
}

pub fn status(profile_path: &Path) -> u8 {
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
        let api = match &cluster.api {
            Some(api) => match api.nodes().await {
                Ok(nodes) => Some(nodes),
                Err(err) => {
                    eprintln!("error: {err}");
                    return exit::HARNESS_FAILED;
                }
            },
            None => None,
        };
        print!(
            "{}",
            crate::status::render(&profile.head_node.name, &rows, api.as_deref())
        );
        exit::SUCCESS
    })
}
