//! Slurm's node table as the watch reads it: the targets' rows
//! (`sinfo -n`), and the whole cluster grouped by state only when an abort
//! condition counts unhealthy nodes (neither grows with the cluster's
//! size). Says each target's `state|reason` when it changes, a target
//! Slurm no longer lists, a state this harness does not know (once), the
//! unhealthy count, and a mark that calls for evidence.

use crate::cluster::slurm::is_hyperpod_mark;
use crate::cluster::ssh::SshError;
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::cluster::node_state::NodeState;
use crate::cluster::slurm::{NodeRow, Slurm, unhealthy_in_groups};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::{Cadence, Cx, Said, Source};

/// The targets in `sinfo`, every `poll.slurm`.
pub struct SlurmNodes {
    slurm: Slurm,
    targets: Vec<String>,
    cadence: Cadence,
    /// Count the cluster's unhealthy nodes (an abort condition asks).
    count_cluster: bool,
    /// Out of service before the fault: not the fault's blast radius.
    unhealthy_before: BTreeSet<String>,
    /// The last count, kept while the cluster is not counted anew.
    unhealthy: usize,
    /// States said once already as unrecognised.
    unrecognised_said: HashSet<String>,
}

/// One read: the targets' rows, and the cluster's state groups when
/// asked (each may fail on its own).
type Read = (
    Result<Vec<NodeRow>, SshError>,
    Option<Result<Vec<(NodeState, String)>, SshError>>,
);

impl SlurmNodes {
    pub fn new(
        slurm: Slurm,
        targets: &[String],
        every: Duration,
        count_cluster: bool,
        unhealthy_before: BTreeSet<String>,
    ) -> SlurmNodes {
        SlurmNodes {
            slurm,
            targets: targets.to_vec(),
            cadence: Cadence::every(every),
            count_cluster,
            unhealthy_before,
            unhealthy: 0,
            unrecognised_said: HashSet::new(),
        }
    }

    /// Decodes one read into what it says (pure: the recorded or the
    /// stub answer is judged the same way).
    pub fn said(&mut self, read: Read, seen_at: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let (rows, groups) = read;
        let error = match (&rows, &groups) {
            (Err(e), _) | (_, Some(Err(e))) => Some(e.to_string()),
            _ => None,
        };
        let mut said = vec![Said::Health(error)];
        let Ok(rows) = rows else {
            return said;
        };
        // Nodes, not rows; a target Slurm does not list counts too.
        let missing: Vec<&String> = self
            .targets
            .iter()
            .filter(|t| !rows.iter().any(|r| &r.name == *t))
            .collect();
        if let Some(Ok(groups)) = &groups
            && let Ok(set) = unhealthy_in_groups(groups)
        {
            self.unhealthy = set.difference(&self.unhealthy_before).count() + missing.len();
        }
        said.push(Said::Unhealthy(self.unhealthy));
        for target in missing {
            said.push(Said::Value {
                source: SourceName::Sinfo,
                node: Some(target.clone()),
                field: "state|reason".into(),
                value: "not in Slurm".into(),
                source_time: None,
                event: None,
            });
        }
        // A state this harness does not know: said once, never healthy.
        let group_states = groups
            .iter()
            .flatten()
            .flatten()
            .map(|(state, hosts)| (state, hosts.as_str()));
        let row_states = rows.iter().map(|r| (&r.state, r.name.as_str()));
        for (state, node) in row_states.chain(group_states) {
            if state.is_unrecognised() && self.unrecognised_said.insert(state.raw.clone()) {
                said.push(Said::Record(Entry::Observed {
                    source: SourceName::Sinfo,
                    node: Some(node.to_owned()),
                    field: "state".into(),
                    from: None,
                    to: format!(
                        "unrecognised state `{}`: judged unknown, not healthy",
                        state.raw
                    ),
                    source_time: None,
                }));
            }
        }
        for row in rows.iter().filter(|r| self.targets.contains(&r.name)) {
            // Marked for a repair that wipes or restarts it: collect what
            // it can still tell, now, beside the watch.
            if !row.healthy() && crate::cluster::slurm::marks_for_repair(&row.reason) {
                said.push(Said::Evidence {
                    node: row.name.clone(),
                    why: row.reason.clone(),
                });
            }
            said.push(Said::Value {
                source: SourceName::Sinfo,
                node: Some(row.name.clone()),
                field: "state|reason".into(),
                value: format!("{}|{}", row.state, row.reason),
                source_time: row.reason_time,
                event: Some(Event {
                    seen: seen_at,
                    // HyperPod's own mark carries the time it was set.
                    source_time: row
                        .reason_time
                        .filter(|_| is_hyperpod_mark(&row.reason) && !row.healthy()),
                    source: SourceName::Sinfo,
                    observation: Observation::SlurmNode {
                        node: row.name.clone(),
                        state: row.state.clone(),
                        reason: row.reason.clone(),
                    },
                }),
            });
        }
        said
    }
}

impl Source for SlurmNodes {
    fn name(&self) -> SourceName {
        SourceName::Sinfo
    }

    fn due(&self, now: Instant) -> bool {
        self.cadence.due(now)
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(self.cadence.next)
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            self.cadence.started(Instant::now());
            let (rows, groups) = tokio::join!(self.slurm.nodes_named(&self.targets), async {
                match self.count_cluster {
                    true => Some(self.slurm.state_groups().await),
                    false => None,
                }
            });
            self.said((rows, groups), cx.clock.now())
        })
    }
}
