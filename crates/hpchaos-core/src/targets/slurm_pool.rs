//! A target pool chosen by what Slurm knows of each node (`target.pool:
//! {slurm: {...}}`): its state (`idle`, so no job is hit; `allocated`;
//! `mixed`; `usable`), its features (`AvailableFeatures`), its GRES
//! (`gpu:h100`) and partition, and the jobs running on it (by name, user,
//! account). One `sinfo` and, when jobs are asked about, one `squeue`,
//! read on the head; the judging is a pure function that says, per node,
//! why it was or was not a candidate (`plan` prints it).

use crate::cluster::node_state::{Base, NodeState};
use crate::scenario::model::{JobMatch, NodeStateFilter, SlurmPool};

/// `sinfo -a -N -h -o` format read for the pool: node, state, available
/// features, GRES, partition (a row per node and partition).
pub const POOL_FORMAT: &str = "%N|%T|%f|%G|%P";

/// `squeue -a -h -t RUNNING -o` format: job id, name, user, account,
/// node list. The name is free text and may hold `|`: it is what lies
/// between the id and the last three fields.
pub const JOBS_FORMAT: &str = "%i|%j|%u|%a|%N";

/// One node as the pool sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub state: NodeState,
    pub features: Vec<String>,
    /// GRES entries as Slurm prints them: `gpu:h100:8(S:0-1)`.
    pub gres: Vec<String>,
    pub partitions: Vec<String>,
}

/// A running job as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub id: String,
    pub name: String,
    pub user: String,
    pub account: String,
    /// Its nodes, expanded.
    pub nodes: Vec<String>,
}

/// Splits a comma list, dropping Slurm's `(null)` for none.
fn list(text: &str) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Vec::new();
    }
    // GRES entries hold commas inside parentheses (`(S:0-1)` has none,
    // but `(IDX:0,2)` does): split at commas outside them.
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim().to_owned());
    out.retain(|s| !s.is_empty() && s != "(null)");
    out
}

/// Reads [`POOL_FORMAT`] rows into one entry per node (partitions
/// gathered, first-seen order).
pub fn parse_nodes(text: &str) -> Vec<NodeFacts> {
    let mut nodes: Vec<NodeFacts> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        let [name, state, features, gres, partition] = fields.as_slice() else {
            continue;
        };
        let partition = partition.trim().trim_end_matches('*').to_owned();
        if let Some(known) = nodes.iter_mut().find(|n| n.name == name.trim()) {
            if !known.partitions.contains(&partition) {
                known.partitions.push(partition);
            }
            continue;
        }
        nodes.push(NodeFacts {
            name: name.trim().to_owned(),
            state: NodeState::parse(state),
            features: list(features),
            gres: list(gres),
            partitions: vec![partition],
        });
    }
    nodes
}

/// Reads [`JOBS_FORMAT`] rows; `expand` turns a node list into names.
pub fn parse_jobs(text: &str, mut expand: impl FnMut(&str) -> Vec<String>) -> Vec<RunningJob> {
    text.lines()
        .filter_map(|line| {
            let (id, rest) = line.split_once('|')?;
            let (rest, nodes) = rest.rsplit_once('|')?;
            let (rest, account) = rest.rsplit_once('|')?;
            let (name, user) = rest.rsplit_once('|')?;
            Some(RunningJob {
                id: id.trim().to_owned(),
                name: name.to_owned(),
                user: user.trim().to_owned(),
                account: account.trim().to_owned(),
                nodes: expand(nodes.trim()),
            })
        })
        .collect()
}

/// Whether a GRES entry (`gpu:h100:8(S:0-1)`) offers `wanted` (`gpu`,
/// `gpu:h100`): its name, then its type, match part by part.
pub fn gres_offers(entry: &str, wanted: &str) -> bool {
    let entry = entry.split('(').next().unwrap_or(entry);
    let have: Vec<&str> = entry.split(':').collect();
    let want: Vec<&str> = wanted.split(':').collect();
    want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w == h)
}

/// Whether the node's state is what the pool asks for: `idle` (no job on
/// it, in service), `allocated` (running jobs: allocated or mixed),
/// `mixed`, `usable` (in service, whatever runs there).
pub fn state_matches(state: &NodeState, wanted: NodeStateFilter) -> bool {
    if !state.is_usable() {
        return false;
    }
    match wanted {
        NodeStateFilter::Usable => true,
        NodeStateFilter::Idle => state.base == Base::Idle,
        NodeStateFilter::Allocated => matches!(state.base, Base::Allocated | Base::Mixed),
        NodeStateFilter::Mixed => state.base == Base::Mixed,
    }
}

/// Whether `job` matches every field the pool gives (exact names).
pub fn job_matches(job: &RunningJob, wanted: &JobMatch) -> bool {
    let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    field(&wanted.name, &job.name)
        && field(&wanted.user, &job.user)
        && field(&wanted.account, &job.account)
}

/// Each node judged against the pool, in Slurm's order: `Ok(())` for a
/// candidate, `Err(why not)` for one left out (the first unmet filter, in
/// words with what the node has).
pub fn judge(
    pool: &SlurmPool,
    nodes: &[NodeFacts],
    jobs: &[RunningJob],
) -> Vec<(String, Result<(), String>)> {
    nodes
        .iter()
        .map(|node| (node.name.clone(), judge_one(pool, node, jobs)))
        .collect()
}

fn judge_one(pool: &SlurmPool, node: &NodeFacts, jobs: &[RunningJob]) -> Result<(), String> {
    if let Some(partition) = &pool.partition
        && !node.partitions.contains(partition)
    {
        return Err(format!(
            "not in partition {partition} (in {})",
            node.partitions.join(",")
        ));
    }
    if let Some(state) = pool.state
        && !state_matches(&node.state, state)
    {
        return Err(format!("state {}, not {}", node.state, state.as_str()));
    }
    for feature in &pool.features {
        if !node.features.contains(feature) {
            return Err(format!(
                "no feature {feature} (has {})",
                none_or(&node.features)
            ));
        }
    }
    if let Some(gres) = &pool.gres
        && !node.gres.iter().any(|g| gres_offers(g, gres))
    {
        return Err(format!("no GRES {gres} (has {})", none_or(&node.gres)));
    }
    if let Some(wanted) = &pool.jobs {
        let here: Vec<&RunningJob> = jobs
            .iter()
            .filter(|j| j.nodes.contains(&node.name))
            .collect();
        if !here.iter().any(|j| job_matches(j, wanted)) {
            let running: Vec<String> = here
                .iter()
                .map(|j| format!("{} {} ({}/{})", j.id, j.name, j.user, j.account))
                .collect();
            return Err(format!(
                "runs no job matching {} (runs {})",
                wanted.describe(),
                if running.is_empty() {
                    "none".to_owned()
                } else {
                    running.join(", ")
                }
            ));
        }
    }
    Ok(())
}

fn none_or(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(",")
    }
}

/// Reads the cluster and judges every node against `pool`.
pub async fn read_and_judge(
    slurm: &crate::cluster::slurm::Slurm,
    pool: &SlurmPool,
) -> Result<Vec<(String, Result<(), String>)>, super::ResolveError> {
    let text = slurm
        .head_text(&["sinfo", "-a", "-N", "-h", "-o", POOL_FORMAT])
        .await?;
    let nodes = parse_nodes(&text);
    let jobs = match &pool.jobs {
        Some(_) => {
            let text = slurm
                .head_text(&["squeue", "-a", "-h", "-t", "RUNNING", "-o", JOBS_FORMAT])
                .await?;
            let mut bad = None;
            let jobs = parse_jobs(&text, |list| match slurm.hostnames(list) {
                Ok(names) => names,
                Err(e) => {
                    bad.get_or_insert(e);
                    Vec::new()
                }
            });
            if let Some(e) = bad {
                return Err(e.into());
            }
            jobs
        }
        None => Vec::new(),
    };
    Ok(judge(pool, &nodes, &jobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Slurm 24.11 prints `sinfo -a -N -h -o '%N|%T|%f|%G|%P'` (the lab).
    const SINFO: &str = "ip-10-1-0-11|idle|efa,h100|gpu:h100:8(S:0-1)|dev*\n\
ip-10-1-0-11|idle|efa,h100|gpu:h100:8(S:0-1)|all\n\
ip-10-1-0-12|allocated|efa,h100|gpu:h100:8(S:0-1)|dev*\n\
ip-10-1-0-13|mixed|efa,a100|gpu:a100:8,gpu:a100:0(IDX:0,2)|dev*\n\
ip-10-1-0-14|drained|efa,h100|gpu:h100:8|dev*\n\
ip-10-1-0-15|idle|(null)|(null)|cpu\n";

    const SQUEUE: &str = "41|train|a|b|alice|ml|ip-10-1-0-12\n42|eval|bob|research|ip-10-1-0-13\n";

    fn pool(yaml: &str) -> SlurmPool {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn chosen(pool: &SlurmPool) -> Vec<String> {
        let nodes = parse_nodes(SINFO);
        let jobs = parse_jobs(SQUEUE, |l| vec![l.to_owned()]);
        judge(pool, &nodes, &jobs)
            .into_iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn reads_every_node_once_with_its_partitions_features_and_gres() {
        let nodes = parse_nodes(SINFO);
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[0].partitions, ["dev", "all"]);
        assert_eq!(nodes[0].features, ["efa", "h100"]);
        assert_eq!(nodes[2].gres, ["gpu:a100:8", "gpu:a100:0(IDX:0,2)"]);
        assert!(nodes[4].features.is_empty() && nodes[4].gres.is_empty());
        let jobs = parse_jobs(SQUEUE, |l| vec![l.to_owned()]);
        // A job name holding `|` is read whole.
        assert_eq!(jobs[0].name, "train|a|b");
        assert_eq!(
            (jobs[0].user.as_str(), jobs[0].account.as_str()),
            ("alice", "ml")
        );
    }

    #[test]
    fn each_filter_chooses_and_says_why_not() {
        assert_eq!(
            chosen(&pool("state: idle")),
            ["ip-10-1-0-11", "ip-10-1-0-15"]
        );
        assert_eq!(
            chosen(&pool("state: allocated")),
            ["ip-10-1-0-12", "ip-10-1-0-13"]
        );
        assert_eq!(chosen(&pool("state: mixed")), ["ip-10-1-0-13"]);
        assert_eq!(
            chosen(&pool("state: usable")),
            [
                "ip-10-1-0-11",
                "ip-10-1-0-12",
                "ip-10-1-0-13",
                "ip-10-1-0-15"
            ]
        );
        assert_eq!(
            chosen(&pool("gres: gpu:h100")),
            ["ip-10-1-0-11", "ip-10-1-0-12", "ip-10-1-0-14"]
        );
        assert_eq!(chosen(&pool("gres: gpu")).len(), 4);
        assert_eq!(chosen(&pool("features: [efa, a100]")), ["ip-10-1-0-13"]);
        assert_eq!(chosen(&pool("partition: cpu")), ["ip-10-1-0-15"]);
        assert_eq!(chosen(&pool("jobs: {user: alice}")), ["ip-10-1-0-12"]);
        assert_eq!(
            chosen(&pool("jobs: {account: research, name: eval}")),
            ["ip-10-1-0-13"]
        );
        assert!(chosen(&pool("jobs: {user: alice, account: research}")).is_empty());
        assert_eq!(
            chosen(&pool("{state: idle, gres: 'gpu:h100', partition: dev}")),
            ["ip-10-1-0-11"]
        );
        let nodes = parse_nodes(SINFO);
        let jobs = parse_jobs(SQUEUE, |l| vec![l.to_owned()]);
        let why = judge(&pool("{state: idle, features: [h100]}"), &nodes, &jobs);
        assert_eq!(why[1].1, Err("state allocated, not idle".to_owned()));
        assert_eq!(why[3].1, Err("state drained, not idle".to_owned()));
        assert_eq!(why[4].1, Err("no feature h100 (has none)".to_owned()));
        let why = judge(&pool("jobs: {user: carol}"), &nodes, &jobs);
        assert_eq!(
            why[1].1,
            Err("runs no job matching user=carol (runs 41 train|a|b (alice/ml))".to_owned())
        );
        assert_eq!(
            why[0].1,
            Err("runs no job matching user=carol (runs none)".to_owned())
        );
    }

    #[test]
    fn a_gres_matches_by_name_then_type() {
        assert!(gres_offers("gpu:h100:8(S:0-1)", "gpu:h100"));
        assert!(gres_offers("gpu:h100:8", "gpu"));
        assert!(gres_offers("gpu:8", "gpu"));
        assert!(!gres_offers("gpu:8", "gpu:h100"));
        assert!(!gres_offers("gpu:a100:8", "gpu:h100"));
        assert!(!gres_offers("efa:1", "gpu"));
    }
}
