//! `hpchaos plan`: what a scenario would do on a cluster, touching
//! nothing (a dry run; `run --dry-run` is the same).

use std::path::PathBuf;

use crate::exit;
use hpchaos::cluster::Cluster;

use super::work::Work;
use super::{CliError, Outcome, run};

/// `hpchaos plan`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    scenario: PathBuf,
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// As `run --accept-no-recovery`: a replace or reboot expected of a
    /// cluster whose NodeRecovery is None is shown, not refused.
    #[arg(long)]
    accept_no_recovery: bool,
    /// Also write the plan (each scenario's text, its targets, what the
    /// cluster showed of them) to this file, for `run --plan FILE` to run
    /// exactly that.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn exec(args: Args) -> Outcome {
    run::dry_run(
        &[args.scenario],
        Some(&args.cluster),
        args.accept_no_recovery,
        args.output.as_deref(),
    )
}

/// What `plan` checks each scenario with, as `run` would.
pub struct Checks<'a> {
    /// The cluster's NodeRecovery, when the API answered.
    pub cluster: Option<&'a hpchaos::cluster::sagemaker::ClusterSummary>,
    pub accept_no_recovery: bool,
    /// The plan is written (`-o`): `run --plan` hits the nodes shown.
    pub writes_plan: bool,
}

/// Prints what each scenario would do on `cluster`: its targets, the
/// steps, the deadlines and what the monitoring will be asked; changes
/// nothing.
pub async fn show(
    cluster: &Cluster,
    work: &Work,
    checks: Checks<'_>,
    resolved: &mut Vec<Option<Vec<String>>>,
) -> Outcome {
    let mut refused = Vec::new();
    let mut worst = None;
    for loaded in &work.scenarios {
        let scenario = &loaded.value;
        outln!("scenario {} ({})", scenario.name, loaded.path.display());
        // The checks `run` makes before it starts, with the exit it would give.
        let checked = match hpchaos::monitoring::stop::refusal(cluster, scenario).await {
            Err(refusal) => Err(refusal),
            Ok(()) => {
                hpchaos::preflight::scenario(
                    cluster,
                    scenario,
                    checks.cluster,
                    checks.accept_no_recovery,
                )
                .await
            }
        };
        let targets = match checked {
            Ok(Some(targets)) => {
                resolved.push(Some(targets.clone()));
                targets
            }
            Ok(None) => {
                resolved.push(None);
                outln!(
                    "  targets: the nodes the workload runs on, picked once it runs (WORKLOAD-NODE below)"
                );
                show_workload(scenario, cluster);
                vec![WORKLOAD_NODE.to_owned()]
            }
            Err(refusal) => {
                resolved.push(None);
                outln!(
                    "  REFUSED: {} (run would exit {})",
                    refusal.why,
                    exit::of_refusal(&refusal)
                );
                monitoring_unresolved(scenario);
                refused.push(scenario.name.clone());
                worst = worst.max(Some(refusal.kind));
                continue;
            }
        };
        if targets != [WORKLOAD_NODE] {
            outln!("  targets: {}", targets.join(", "));
        }
        show_slurm_pool(scenario, cluster, &targets).await;
        show_existing_job(scenario, cluster).await;
        // A random pick is drawn again by `run` unless seeded (a list of
        // nodes no longer than the pick is no draw).
        let every_listed = matches!(
            &scenario.target.pool,
            hpchaos::scenario::model::Pool::Nodes(nodes) if nodes.len() <= targets.len()
        );
        let random =
            !matches!(scenario.target.pick, hpchaos::scenario::model::Pick::All) && !every_listed;
        if random && scenario.target.seed.is_none() && checks.writes_plan {
            outln!(
                "  (a random pick without target.seed: `run --plan` hits these nodes; a plain `run` draws again)"
            );
        } else if random && scenario.target.seed.is_none() {
            outln!(
                "  (a random pick without target.seed: run draws again and may hit other nodes; set target.seed to repeat this one, or write the plan with -o and run it with `run --plan`)"
            );
        }
        let plan = hpchaos::faults::plan(&scenario.fault, &targets);
        for step in &plan.inject {
            outln!("  inject:   {}", step.describe());
        }
        for step in &plan.verify {
            outln!("  verify:   {}", step.describe());
        }
        if let Some((after, steps)) = &plan.follow_up {
            for step in steps {
                outln!("  after {after}: {}", step.describe());
            }
        }
        for step in &plan.rollback {
            outln!("  rollback: {}", step.describe());
        }
        // The later steps, after the first step's own lines.
        show_steps(scenario, cluster, &targets).await;
        // The stop conditions (checked before use already: a refusal
        // above says which cannot be asked).
        if let Some(abort) = &scenario.abort {
            for c in hpchaos::monitoring::stop::plan(&abort.when, &targets) {
                outln!("  stop when: {}: {}", c.name, c.describe());
            }
        }
        let deadlines: Vec<String> = scenario
            .expect
            .deadlines
            .set()
            .iter()
            .map(|(p, d)| format!("{p} by {d}"))
            .collect();
        outln!(
            "  expect:   {} ({})",
            scenario.expect.recovery,
            if deadlines.is_empty() {
                "no deadlines".to_owned()
            } else {
                deadlines.join(", ")
            }
        );
        // What the monitoring will be asked, substituted, and whether it
        // can answer now (read-only queries); once the targets are known.
        if targets == [WORKLOAD_NODE] {
            monitoring_unresolved(scenario);
        } else if let Some(monitor) = hpchaos::monitoring::Monitor::new(
            &scenario.expect.monitoring,
            &targets,
            hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock),
        ) {
            for watch in &monitor.watches {
                outln!(
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
                let client = hpchaos::monitoring::client::Client::new();
                match monitor.ready(&client, endpoints).await {
                    Ok(said) => outln!("  monitor:  ready: {said}"),
                    Err(why) => outln!("  monitor:  NOT ready (the run would refuse): {why}"),
                }
            }
        }
    }
    outln!("nothing was changed (dry run)");
    if refused.is_empty() {
        return Ok(exit::SUCCESS);
    }
    Err(CliError::refused(
        worst.unwrap_or(hpchaos::preflight::RefusalKind::Scenario),
        format!(
            "run would refuse {} before changing anything (see REFUSED above)",
            refused.join(", ")
        ),
        false,
    ))
}

/// The monitoring expectations of a scenario whose targets are not known
/// yet, as written (their `$target` not substituted).
/// How the steps name a node of the workload's, not known before it runs.
const WORKLOAD_NODE: &str = "WORKLOAD-NODE";

/// The workload a scenario starts or watches: the canary's script, size
/// and partition, or the job it watches.
fn show_workload(scenario: &hpchaos::scenario::Scenario, cluster: &Cluster) {
    use hpchaos::scenario::model::Workload;
    match &scenario.workload {
        Some(Workload::Canary(canary)) => outln!(
            "  workload: canary {} on {} node(s){} from {}",
            canary.name,
            canary.nodes,
            canary
                .partition
                .as_deref()
                .map(|p| format!(" of partition {p}"))
                .unwrap_or_default(),
            canary
                .script
                .clone()
                .or_else(|| cluster.profile.slurm.canary_script.clone())
                .unwrap_or_else(|| "(no script: set slurm.canary_script)".to_owned())
        ),
        Some(Workload::Existing(existing)) => match &existing.job {
            hpchaos::scenario::model::JobRef::Id(id) => outln!("  workload: the running job {id}"),
            hpchaos::scenario::model::JobRef::Name(name) => {
                outln!("  workload: the running job named {name}")
            }
        },
        None => {}
    }
}

/// The job an `existing:` workload watches, as the run will find it.
async fn show_existing_job(scenario: &hpchaos::scenario::Scenario, cluster: &Cluster) {
    if let Some(hpchaos::scenario::model::Workload::Existing(existing)) = &scenario.workload {
        match hpchaos::runner::workload::describe_existing(cluster, existing).await {
            Ok(words) => outln!("  watches:  {words}"),
            Err(err) => outln!("  watches:  {err}"),
        }
    }
}

fn monitoring_unresolved(scenario: &hpchaos::scenario::Scenario) {
    for (index, item) in scenario.expect.monitoring.iter().enumerate() {
        outln!(
            "  monitor:  {}: {} within {} (asked once the targets are known)",
            item.label(index),
            item.promql.clone().unwrap_or_else(|| {
                hpchaos::monitoring::expect::Kind::Alert {
                    name: item.alert.clone().unwrap_or_default(),
                    labels: item.labels.clone(),
                }
                .describe()
            }),
            item.within
        );
    }
}

/// For a pool chosen by what Slurm knows: each node, and why it was or
/// was not chosen (a candidate picked, a candidate not drawn, or the first
/// filter it fails, with what it has).
async fn show_slurm_pool(
    scenario: &hpchaos::scenario::model::Scenario,
    cluster: &hpchaos::cluster::Cluster,
    targets: &[String],
) {
    let hpchaos::scenario::model::Pool::Slurm(pool) = &scenario.target.pool else {
        return;
    };
    match hpchaos::targets::slurm_pool::read_and_judge(&cluster.slurm, pool).await {
        Ok(judged) => {
            outln!("  pool (what Slurm shows of each node):");
            for (node, why) in judged {
                let said = match why {
                    Ok(()) if targets.contains(&node) => "chosen".to_owned(),
                    Ok(()) if scenario.target.exclude.contains(&node) => {
                        "a candidate, excluded by target.exclude".to_owned()
                    }
                    Ok(()) => {
                        "a candidate, not drawn (or never a target: head, login, under a check)"
                            .to_owned()
                    }
                    Err(why) => format!("left out: {why}"),
                };
                outln!("    {node}: {said}");
            }
        }
        Err(err) => outln!("  pool: cannot be read again to explain it: {err}"),
    }
}

/// A compound scenario's later steps: each with its targets (resolved
/// now, as `run` resolves them before any change), its trigger and what
/// it will do.
async fn show_steps(
    scenario: &hpchaos::scenario::model::Scenario,
    cluster: &hpchaos::cluster::Cluster,
    first: &[String],
) {
    let mut earlier: Vec<String> = first.to_vec();
    for step in &scenario.steps {
        let seed = hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock)
            .timestamp_nanos_opt()
            .unwrap_or_default() as u64;
        let targets = if first == [WORKLOAD_NODE] && step.target.is_none() {
            Ok(first.to_vec())
        } else {
            hpchaos::targets::resolve_step_targets(
                cluster, scenario, step, first, &earlier, None, seed,
            )
            .await
        };
        let trigger = hpchaos::runner::steps::trigger_words(step, &scenario.name);
        match targets {
            Ok(targets) => {
                let plan = hpchaos::faults::plan(&step.fault, &targets);
                outln!(
                    "  step {} ({trigger}): {} on {}",
                    step.name,
                    step.fault.kind(),
                    targets.join(", ")
                );
                for s in &plan.inject {
                    outln!("    inject:   {}", s.describe());
                }
                for s in &plan.verify {
                    outln!("    verify:   {}", s.describe());
                }
                if let Some((after, steps)) = &plan.follow_up {
                    for s in steps {
                        outln!("    after {after}: {}", s.describe());
                    }
                }
                for s in &plan.rollback {
                    outln!("    rollback: {}", s.describe());
                }
                earlier.extend(targets);
            }
            Err(why) => outln!(
                "  step {} ({trigger}): targets not resolved now: {why}",
                step.name
            ),
        }
    }
}
