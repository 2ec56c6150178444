//! `hpchaos plan`: what a scenario would do on a cluster, touching
//! nothing (a dry run; `run --dry-run` is the same).

use std::path::PathBuf;

use hpchaos::cluster::Cluster;
use hpchaos::exit;

use super::work::Work;
use super::{Outcome, run};

/// `hpchaos plan`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    scenario: PathBuf,
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
}

pub fn exec(args: Args) -> Outcome {
    run::dry_run(&[args.scenario], Some(&args.cluster))
}

/// Prints what each scenario would do on `cluster`: its targets, the
/// steps, the deadlines and what the monitoring will be asked; changes
/// nothing.
pub async fn show(cluster: &Cluster, work: &Work) -> Outcome {
    for loaded in &work.scenarios {
        let scenario = &loaded.value;
        println!("scenario {} ({})", scenario.name, loaded.path.display());
        let targets = hpchaos::runner::plan_targets(cluster, scenario).await;
        let targets = match targets {
            Ok(t) => t,
            Err(reason) => {
                println!("  targets: {reason}");
                for (index, item) in scenario.expect.monitoring.iter().enumerate() {
                    println!(
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
                continue;
            }
        };
        println!("  targets: {}", targets.join(", "));
        let plan = hpchaos::faults::plan(&scenario.fault, &targets);
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
        if let Some(monitor) = hpchaos::monitoring::Monitor::new(
            &scenario.expect.monitoring,
            &targets,
            hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock),
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
                let client = hpchaos::monitoring::client::Client::new();
                match monitor.ready(&client, endpoints).await {
                    Ok(said) => println!("  monitor:  ready: {said}"),
                    Err(why) => println!("  monitor:  NOT ready (the run would refuse): {why}"),
                }
            }
        }
    }
    println!("nothing was changed (dry run)");
    Ok(exit::SUCCESS)
}
