//! A plan written down (`plan -o plan.json`) and run as written (`run
//! --plan plan.json`): each scenario's text as it was planned, the targets
//! it resolved to, and what the cluster showed of them then (each target's
//! Slurm state and instance, the job a job pool named), so that a run
//! hits exactly those nodes, or refuses a cluster that no longer matches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use hpchaos::cluster::Cluster;
use hpchaos::scenario::model::{Pick, Pool};
use hpchaos::scenario::{self, Loaded};

use super::CliError;
use super::work::Work;

/// The file's format; a file from a newer hpchaos is refused.
const FORMAT: u32 = 1;

/// A written plan.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: u32,
    /// The hpchaos that wrote it.
    pub hpchaos: String,
    pub planned_at: DateTime<Utc>,
    /// The cluster profile's name, and the path it was read from.
    pub cluster: String,
    pub profile: PathBuf,
    pub scenarios: Vec<Planned>,
}

/// One scenario as planned.
#[derive(Debug, Serialize, Deserialize)]
pub struct Planned {
    pub name: String,
    /// The file it was read from, and its text then (what runs).
    pub path: PathBuf,
    pub text: String,
    /// The nodes it resolved to; `None` for a workload's (picked once the
    /// workload runs).
    pub targets: Option<Vec<String>>,
    /// Each target's Slurm state when planned (`idle`, `mixed`, ...).
    pub states: BTreeMap<String, String>,
    /// Each target's instance when planned (with the API).
    pub instances: BTreeMap<String, String>,
    /// The job a job pool named, by id, when planned.
    pub job: Option<u64>,
    /// The steps, in words, for the reader: inject, then rollback.
    pub inject: Vec<String>,
    pub rollback: Vec<String>,
}

/// Writes the plan of `work` on `cluster` to `path`: `resolved` holds each
/// scenario's targets as `plan` found them (in order). Errors: the
/// cluster could not be asked, or the file not written (exit 3).
pub async fn write(
    path: &Path,
    cluster: &Cluster,
    work: &Work,
    resolved: &[Option<Vec<String>>],
) -> Result<(), CliError> {
    let mut scenarios = Vec::new();
    for (loaded, targets) in work.scenarios.iter().zip(resolved) {
        scenarios.push(planned(cluster, loaded, targets.clone()).await?);
    }
    let file = PlanFile {
        format: FORMAT,
        hpchaos: env!("CARGO_PKG_VERSION").to_owned(),
        planned_at: hpchaos::clock::Clock::now(&hpchaos::clock::SystemClock),
        cluster: work.profile.name.clone(),
        profile: std::path::absolute(&work.profile_path)
            .unwrap_or_else(|_| work.profile_path.clone()),
        scenarios,
    };
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| CliError::failed(format!("cannot write the plan: {e}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| CliError::failed(format!("cannot write the plan to {}: {e}", path.display())))
}

/// One scenario's plan: what the cluster shows of its targets now.
async fn planned(
    cluster: &Cluster,
    loaded: &Loaded<hpchaos::scenario::Scenario>,
    targets: Option<Vec<String>>,
) -> Result<Planned, CliError> {
    let scenario = &loaded.value;
    let asked = |e: &dyn std::fmt::Display| CliError::failed(format!("cannot write the plan: {e}"));
    let (mut states, mut instances) = (BTreeMap::new(), BTreeMap::new());
    if let Some(targets) = &targets {
        for row in cluster
            .slurm
            .nodes_named(targets)
            .await
            .map_err(|e| asked(&e))?
        {
            states.insert(row.name.clone(), row.state.to_string());
        }
        if let Some(api) = &cluster.api {
            for node in api.named(targets).await.map_err(|e| asked(&e))? {
                instances.insert(node.node, node.instance_id);
            }
        }
    }
    let job = job_of(cluster, &scenario.target.pool)
        .await
        .map_err(|e| asked(&e))?;
    let plan = hpchaos::faults::plan(&scenario.fault, targets.as_deref().unwrap_or_default());
    Ok(Planned {
        name: scenario.name.clone(),
        path: loaded.path.clone(),
        text: loaded.text.clone(),
        targets,
        states,
        instances,
        job,
        inject: plan.inject.iter().map(|s| s.describe()).collect(),
        rollback: plan.rollback.iter().map(|s| s.describe()).collect(),
    })
}

/// The job a job pool names now, by id.
async fn job_of(
    cluster: &Cluster,
    pool: &Pool,
) -> Result<Option<u64>, hpchaos::cluster::ssh::SshError> {
    Ok(match pool {
        Pool::JobId(id) => cluster.slurm.job(*id).await?.map(|j| j.id),
        Pool::JobName(name) => match cluster.slurm.job_named(name).await {
            Ok(id) => Some(id),
            Err(hpchaos::cluster::slurm::JobNameError::Slurm(err)) => return Err(err),
            Err(_) => None,
        },
        _ => None,
    })
}

/// Reads a written plan. Errors (exit 2): unreadable, not a plan, or from
/// a newer hpchaos.
pub fn read(path: &Path) -> Result<PlanFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::bad_input(format!("--plan {}: {e}", path.display())))?;
    let plan: PlanFile = serde_json::from_str(&text).map_err(|e| {
        CliError::bad_input(format!(
            "--plan {}: not a plan written by `hpchaos plan -o` ({e})",
            path.display()
        ))
    })?;
    if plan.format > FORMAT {
        return Err(CliError::bad_input(format!(
            "--plan {}: written by a newer hpchaos ({}, format {}); this one reads format {FORMAT}",
            path.display(),
            plan.hpchaos,
            plan.format
        )));
    }
    Ok(plan)
}

/// What `run --plan` runs: each scenario as its text was planned, its
/// targets the planned nodes (a job pool keeps its job, which is checked
/// against the plan's), with the profile given, else the plan's.
pub fn work(plan: &PlanFile, cluster: Option<&Path>) -> Result<Work, CliError> {
    let profile_path = cluster.map_or_else(|| plan.profile.clone(), Path::to_path_buf);
    let profile = scenario::load_profile(&profile_path).map_err(|e| CliError::invalid(&e))?;
    let mut scenarios = Vec::new();
    for planned in &plan.scenarios {
        let mut value =
            scenario::parse_scenario(&planned.path, &planned.text, Some(&profile.value))
                .map_err(|d| CliError::bad_input_rendered(d.render(&planned.text)))?;
        let by_job = matches!(value.target.pool, Pool::JobId(_) | Pool::JobName(_));
        if let (Some(targets), false) = (&planned.targets, by_job) {
            value.target.pool = Pool::Nodes(targets.clone());
            value.target.pick = Pick::All;
        }
        scenarios.push(Loaded {
            path: planned.path.clone(),
            text: planned.text.clone(),
            value,
        });
    }
    Ok(Work {
        scenarios,
        suite: None,
        stop_on_failure: false,
        cooldown: None,
        report_dir: None,
        profile: profile.value,
        profile_path,
        profile_text: profile.text,
    })
}

/// Whether the cluster still matches the plan: every planned target
/// usable in Slurm and on the instance it was planned on, a job pool's job
/// the same. Errors (exit 3, nothing done): what changed, and to plan
/// again.
pub async fn still_matches(
    cluster: &Cluster,
    plan: &PlanFile,
    path: &Path,
) -> Result<(), CliError> {
    let mut changed = Vec::new();
    for planned in &plan.scenarios {
        let Some(targets) = &planned.targets else {
            continue;
        };
        let rows = cluster.slurm.nodes_named(targets).await.map_err(|e| {
            CliError::failed(format!("cannot check the plan against the cluster: {e}"))
        })?;
        for target in targets {
            match rows.iter().find(|r| &r.name == target) {
                Some(row) if row.healthy() => {}
                Some(row) => changed.push(format!(
                    "{}: {target} is {}{} now, not usable (planned when {})",
                    planned.name,
                    row.state,
                    if row.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", row.reason)
                    },
                    planned.states.get(target).map_or("-", String::as_str)
                )),
                None => changed.push(format!("{}: {target} is not in Slurm now", planned.name)),
            }
        }
        if let (Some(api), false) = (&cluster.api, planned.instances.is_empty()) {
            let listed = api.named(targets).await.map_err(|e| {
                CliError::failed(format!("cannot check the plan against the cluster: {e}"))
            })?;
            for node in listed {
                if let Some(was) = planned.instances.get(&node.node)
                    && *was != node.instance_id
                {
                    changed.push(format!(
                        "{}: {} runs on {} now, planned on {was} (HyperPod replaced it)",
                        planned.name, node.node, node.instance_id
                    ));
                }
            }
        }
        let pool = scenario::parse_scenario(&planned.path, &planned.text, None)
            .map(|s| s.target.pool)
            .ok();
        if let Some(pool) = pool
            && planned.job.is_some()
        {
            let now = job_of(cluster, &pool).await.map_err(|e| {
                CliError::failed(format!("cannot check the plan against the cluster: {e}"))
            })?;
            if now != planned.job {
                changed.push(format!(
                    "{}: the job is {} now, planned on job {}",
                    planned.name,
                    now.map_or("gone".to_owned(), |j| format!("job {j}")),
                    planned.job.map_or("-".to_owned(), |j| j.to_string())
                ));
            }
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let mut said: Vec<String> = changed.iter().map(|c| format!("error: {c}")).collect();
    let again: Vec<String> = plan
        .scenarios
        .iter()
        .map(|s| {
            format!(
                "`hpchaos plan {} --cluster {} -o {}`",
                s.path.display(),
                plan.profile.display(),
                path.display()
            )
        })
        .collect();
    said.push(format!(
        "error: the cluster no longer matches the plan {} (made {}); nothing was done or recorded: plan again with {}",
        path.display(),
        plan.planned_at.format("%Y-%m-%d %H:%M:%S UTC"),
        again.join(", then ")
    ));
    Err(CliError::failed_rendered(said.join("\n")))
}
