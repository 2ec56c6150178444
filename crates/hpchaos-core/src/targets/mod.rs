//! Resolving a scenario's `target` against the live cluster: the pool's
//! candidates (named nodes Slurm has, a partition, an instance group, a
//! job's nodes), minus controller, login and excluded nodes, picked with a
//! seeded shuffle (so a run can be repeated), under the blast-radius cap.
//! `run` (through the runner) and the checks before it (`preflight`,
//! `plan`) resolve targets here alike.

pub mod slurm_pool;

use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::scenario::model::{Pick, Pool, Scenario, Target};

/// Why a scenario's targets could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `plan` of a workload pool: its nodes are known once it runs.
    #[error("the nodes the workload runs on, picked once it runs")]
    WorkloadNotYet,
    #[error("no workload")]
    NoWorkload,
    #[error("instance groups need the profile's sagemaker settings")]
    NoApi,
    #[error("job {0} not found")]
    JobNotFound(u64),
    /// Target nodes Slurm does not have; `known` is a few of those it has.
    #[error("{} not a Slurm node of this cluster (Slurm has {count} nodes: {known}{})", missing.join(", "), if *count > 8 { ", ..." } else { "" })]
    NotInSlurm {
        missing: Vec<String>,
        known: String,
        count: usize,
    },
    /// No job, or several, under the pool's job name.
    #[error(transparent)]
    JobName(#[from] crate::cluster::slurm::JobNameError),
    /// Slurm could not be asked (sinfo, squeue, scontrol).
    #[error(transparent)]
    Slurm(#[from] crate::cluster::ssh::SshError),
    #[error(transparent)]
    Api(#[from] crate::cluster::sagemaker::ApiError),
    #[error(transparent)]
    HostList(#[from] crate::cluster::hostlist::HostListError),
    /// No node Slurm shows matches the pool's filters: each node and why.
    #[error("no node matches the pool ({})", .0.join("; "))]
    NoSlurmMatch(Vec<String>),
    /// The pool is empty or above the blast-radius cap.
    #[error(transparent)]
    Select(#[from] crate::targets::TargetError),
    /// A named target the API says is a controller or login node.
    #[error(
        "{} is a {} node (instance group {}, SlurmConfig.NodeType {} in DescribeCluster): never a target; name a compute node",
        .0.node, .0.node_type.to_lowercase(), .0.group, .0.node_type
    )]
    Protected(Protected),
}

/// The targets a scenario would hit now, for `plan` (the workload's
/// nodes are only known once it runs).
pub async fn plan_targets(
    cluster: &Cluster,
    scenario: &Scenario,
) -> Result<Vec<String>, ResolveError> {
    if scenario.target.pool == Pool::Workload {
        return Err(ResolveError::WorkloadNotYet);
    }
    let seed = SystemClock.now().timestamp_nanos_opt().unwrap_or_default() as u64;
    resolve_targets(cluster, scenario, None, seed).await
}

/// A later step's targets (see `Scenario::steps`): without a `target` of
/// its own, `first` (the first step's); with one, resolved as a scenario's
/// are, a pool leaving out `earlier` (every earlier step's targets; nodes
/// named outright are taken as named).
pub async fn resolve_step_targets(
    cluster: &Cluster,
    scenario: &Scenario,
    step: &crate::scenario::model::LaterStep,
    first: &[String],
    earlier: &[String],
    job: Option<u64>,
    seed: u64,
) -> Result<Vec<String>, ResolveError> {
    let Some(target) = &step.target else {
        return Ok(first.to_vec());
    };
    let mut own = scenario.clone();
    own.target = target.clone();
    if !matches!(target.pool, Pool::Nodes(_)) {
        own.target.exclude.extend(earlier.iter().cloned());
    }
    resolve_targets(cluster, &own, job, seed).await
}

/// The nodes a scenario hits now: its pool on the live cluster, less
/// controller, login and excluded nodes, picked under the cap. `job` is the
/// workload's id when the pool is the workload.
pub async fn resolve_targets(
    cluster: &Cluster,
    scenario: &Scenario,
    job: Option<u64>,
    seed: u64,
) -> Result<Vec<String>, ResolveError> {
    let slurm = &cluster.slurm;
    let job_nodes = |id: u64| async move {
        let info = slurm.job(id).await?.ok_or(ResolveError::JobNotFound(id))?;
        Ok::<_, ResolveError>(slurm.hostnames(&info.node_list)?)
    };
    // Controller and login nodes are never targets: by the API's roles
    // (whatever their group is called), and by the profile's names. A
    // pool that names one (a node, its group) is refused as such.
    let (protected, checked) = protected_by_api(cluster).await?;
    let named = |p: &&Protected| match &scenario.target.pool {
        Pool::Nodes(nodes) => nodes.contains(&p.node),
        Pool::InstanceGroup(group) => p.group == *group,
        _ => false,
    };
    if let Some(role) = protected.iter().find(named) {
        return Err(ResolveError::Protected(role.clone()));
    }
    let candidates = match &scenario.target.pool {
        Pool::Nodes(nodes) => named_nodes(slurm, nodes).await?,
        Pool::Partition(p) => slurm.partition_nodes(p).await?,
        Pool::InstanceGroup(group) => {
            let api = cluster.api.as_ref().ok_or(ResolveError::NoApi)?;
            api.nodes()
                .await?
                .into_iter()
                .filter(|n| &n.group == group)
                .map(|n| n.node)
                .collect()
        }
        Pool::JobId(id) => job_nodes(*id).await?,
        Pool::JobName(name) => {
            let id = slurm.job_named(name).await?;
            job_nodes(id).await?
        }
        Pool::Workload => job_nodes(job.ok_or(ResolveError::NoWorkload)?).await?,
        Pool::Slurm(pool) => {
            let judged = slurm_pool::read_and_judge(slurm, pool).await?;
            let chosen: Vec<String> = judged
                .iter()
                .filter(|(_, j)| j.is_ok())
                .map(|(node, _)| node.clone())
                .collect();
            if chosen.is_empty() {
                return Err(ResolveError::NoSlurmMatch(
                    judged
                        .into_iter()
                        .filter_map(|(node, j)| j.err().map(|why| format!("{node}: {why}")))
                        .collect(),
                ));
            }
            chosen
        }
    };
    let mut never = cluster.profile.login_nodes.clone();
    never.push(cluster.profile.head_node.name.clone());
    never.extend(protected.into_iter().map(|p| p.node));
    // A node under HyperPod's deep health check is left out of a pool (a
    // node named outright is refused for it by the checks before a run).
    if !matches!(scenario.target.pool, Pool::Nodes(_)) {
        never.extend(checked);
    }
    let seed = scenario.target.seed.unwrap_or(seed);
    Ok(crate::targets::select(
        &scenario.target,
        &candidates,
        &never,
        seed,
    )?)
}

/// A node the API says is a controller or login node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub node: String,
    pub group: String,
    /// `SlurmConfig.NodeType`: `Controller` or `Login`.
    pub node_type: String,
}

/// The nodes in instance groups whose `SlurmConfig.NodeType` is
/// `Controller` or `Login` (none when the API gives no roles), and the
/// nodes under a deep health check (`DeepHealthCheckInProgress`); none
/// without the API.
pub async fn protected_by_api(
    cluster: &Cluster,
) -> Result<(Vec<Protected>, Vec<String>), ResolveError> {
    let Some(api) = &cluster.api else {
        return Ok((Vec::new(), Vec::new()));
    };
    let summary = api.summary().await?;
    let nodes = api.nodes().await?;
    let checked = nodes
        .iter()
        .filter(|n| n.status == "DeepHealthCheckInProgress")
        .map(|n| n.node.clone())
        .collect();
    let protected = nodes
        .into_iter()
        .filter_map(|n| {
            let group = summary.group(&n.group).filter(|g| g.is_protected())?;
            Some(Protected {
                node: n.node,
                group: group.name.clone(),
                node_type: group.node_type.clone().unwrap_or_default(),
            })
        })
        .collect();
    Ok((protected, checked))
}

/// `nodes` as the scenario names them, each one Slurm has; else which it
/// does not, with a few it does (the closest first).
async fn named_nodes(
    slurm: &crate::cluster::slurm::Slurm,
    nodes: &[String],
) -> Result<Vec<String>, ResolveError> {
    let rows = slurm.nodes_named(nodes).await?;
    let missing: Vec<String> = nodes
        .iter()
        .filter(|n| !rows.iter().any(|r| &r.name == *n))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(nodes.to_vec());
    }
    let mut all: Vec<String> = slurm.nodes().await?.into_iter().map(|r| r.name).collect();
    all.dedup();
    let first = &missing[0];
    all.sort_by(|a, b| strsim::jaro_winkler(b, first).total_cmp(&strsim::jaro_winkler(a, first)));
    let count = all.len();
    Err(ResolveError::NotInSlurm {
        missing,
        known: all.into_iter().take(8).collect::<Vec<_>>().join(", "),
        count,
    })
}

/// Why a target selection cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "the target pool is empty after excluding controller, login and excluded nodes (candidates were: {0})"
    )]
    Empty(String),
    #[error(
        "the target resolves to {count} nodes, above the blast-radius cap max_nodes: {cap}; refusing to run"
    )]
    AboveCap { count: usize, cap: u32 },
}

/// Picks targets from `candidates`; `never` are controller and login nodes.
pub fn select(
    target: &Target,
    candidates: &[String],
    never: &[String],
    seed: u64,
) -> Result<Vec<String>, TargetError> {
    let mut pool: Vec<String> = candidates
        .iter()
        .filter(|n| !never.contains(n) && !target.exclude.contains(n))
        .cloned()
        .collect();
    pool.sort();
    pool.dedup();
    if pool.is_empty() {
        return Err(TargetError::Empty(candidates.join(", ")));
    }
    let wanted = match target.pick {
        Pick::All => pool.len(),
        Pick::Count(n) => (n as usize).min(pool.len()),
        Pick::Percent(p) => (pool.len() * p as usize).div_ceil(100).max(1),
    };
    if wanted > target.max_nodes as usize {
        return Err(TargetError::AboveCap {
            count: wanted,
            cap: target.max_nodes,
        });
    }
    shuffle(&mut pool, seed);
    pool.truncate(wanted);
    pool.sort();
    Ok(pool)
}

/// Fisher-Yates with splitmix64: the same seed, the same pick.
fn shuffle(items: &mut [String], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Pool;

    fn target(pick: Pick, max_nodes: u32, exclude: &[&str]) -> Target {
        Target {
            pool: Pool::Partition("dev".into()),
            pick,
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
            max_nodes,
            seed: None,
        }
    }

    fn names(n: u8) -> Vec<String> {
        (11..11 + n).map(|i| format!("ip-10-1-0-{i}")).collect()
    }

    #[test]
    fn the_same_seed_picks_the_same_nodes() {
        let a = select(&target(Pick::Count(2), 2, &[]), &names(4), &[], 7).unwrap();
        let b = select(&target(Pick::Count(2), 2, &[]), &names(4), &[], 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn controllers_and_excluded_nodes_are_never_picked() {
        let never = vec!["ip-10-1-0-11".to_owned()];
        for seed in 0..20 {
            let picked = select(
                &target(Pick::All, 10, &["ip-10-1-0-12"]),
                &names(4),
                &never,
                seed,
            )
            .unwrap();
            assert_eq!(picked, vec!["ip-10-1-0-13", "ip-10-1-0-14"]);
        }
    }

    #[test]
    fn the_cap_refuses_a_wider_blast_radius() {
        let err = select(&target(Pick::Percent(50), 1, &[]), &names(4), &[], 1).unwrap_err();
        assert_eq!(err, TargetError::AboveCap { count: 2, cap: 1 });
        assert!(matches!(
            select(&target(Pick::All, 4, &[]), &[], &[], 1),
            Err(TargetError::Empty(_))
        ));
    }
}
