//! Slurm's node table as the watch reads it: the targets' rows
//! (`sinfo -n`), and the whole cluster grouped by state only when an abort
//! condition counts unhealthy nodes (neither grows with the cluster's
//! size). Says each target's `state|reason` when it changes, a target
//! Slurm no longer lists, a state this harness does not know (once), the
//! unhealthy count, and a mark that calls for evidence.

use crate::cluster::slurm::{is_hyperpod_mark, parse_state_groups, rows_named};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::cluster::node_state::NodeState;
use crate::cluster::slurm::{NodeRow, Slurm, unhealthy_in_groups};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};

use super::recording::{Answer, Raw};
use super::{Cx, Said, Source, Touch};

/// The targets in `sinfo`, every `poll.slurm` (lightly while the watch is
/// quiet: see [`super::Quiet`]).
pub struct SlurmNodes {
    slurm: Slurm,
    touch: Touch,
    /// Count the cluster's unhealthy nodes (an abort condition asks): a
    /// full node listing, at most every [`GROUPS_FLOOR`].
    count_cluster: bool,
    groups_read: Option<Instant>,
    /// The targets' rows as last read: a change stirs the watch.
    last_rows: Option<Answer>,
    view: NodesView,
}

/// The shortest interval between two full node listings (the unhealthy
/// count of an abort condition): the heaviest request slurmctld serves.
pub const GROUPS_FLOOR: Duration = Duration::from_secs(30);

/// What the watch knows of the node table between reads: the decoding's
/// state (a replay drives it alone).
pub struct NodesView {
    targets: Vec<String>,
    /// Out of service before the fault: not the fault's blast radius.
    unhealthy_before: BTreeSet<String>,
    /// The last count, kept while the cluster is not counted anew.
    unhealthy: usize,
    /// States said once already as unrecognised.
    unrecognised_said: HashSet<String>,
    /// Targets said to be in a maintenance reservation.
    in_maintenance_said: HashSet<String>,
}

/// One read: the targets' rows, and the cluster's state groups when
/// asked (each may fail on its own, with why).
type Read = (
    Result<Vec<NodeRow>, String>,
    Option<Result<Vec<(NodeState, String)>, String>>,
);

impl SlurmNodes {
    pub fn new(
        slurm: Slurm,
        targets: &[String],
        touch: Touch,
        count_cluster: bool,
        unhealthy_before: BTreeSet<String>,
    ) -> SlurmNodes {
        SlurmNodes {
            slurm,
            touch,
            count_cluster,
            groups_read: None,
            last_rows: None,
            view: NodesView::new(targets, unhealthy_before),
        }
    }
}

impl NodesView {
    pub fn new(targets: &[String], unhealthy_before: BTreeSet<String>) -> NodesView {
        NodesView {
            targets: targets.to_vec(),
            unhealthy_before,
            unhealthy: 0,
            unrecognised_said: HashSet::new(),
            in_maintenance_said: HashSet::new(),
        }
    }

    /// Decodes `sinfo`'s text as printed (the controller's UTC offset
    /// `offset`) into what it says: the one decoding, live and replayed.
    pub fn decode(
        &mut self,
        rows: &Answer,
        groups: Option<&Answer>,
        offset: chrono::FixedOffset,
        seen_at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Said> {
        let rows = rows
            .result()
            .map(|t| rows_named(t, offset, &self.targets))
            .map_err(str::to_owned);
        let groups = groups.map(|g| g.result().map(parse_state_groups).map_err(str::to_owned));
        self.said((rows, groups), seen_at)
    }

    /// Decodes one read into what it says (pure: the recorded or the
    /// stub answer is judged the same way).
    pub fn said(&mut self, read: Read, seen_at: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let (rows, groups) = read;
        let error = match (&rows, &groups) {
            (Err(e), _) | (_, Some(Err(e))) => Some(e.clone()),
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
            // In a maintenance reservation: the cluster's own change.
            if row.state.condition() == crate::cluster::node_state::Condition::Maintenance
                && self.in_maintenance_said.insert(row.name.clone())
            {
                said.push(Said::Record(Entry::Observed {
                    source: SourceName::Sinfo,
                    node: Some(row.name.clone()),
                    field: "cluster_change".into(),
                    from: None,
                    to: format!(
                        "{}: in a maintenance reservation (a deep health check, a patch or an operator's): the cluster's own change, not counted as the fault's detection unless the scenario started it",
                        row.state
                    ),
                    source_time: None,
                }));
            }
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
        self.touch.due(now)
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(self.touch.wake_at())
    }

    fn stir(&self) {
        self.touch.stir();
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            let now = Instant::now();
            self.touch.started(now);
            let offset = self.slurm.utc_offset().await;
            let count = self.count_cluster
                && self
                    .groups_read
                    .is_none_or(|at| now.duration_since(at) >= GROUPS_FLOOR);
            if count {
                self.groups_read = Some(now);
            }
            let (rows, groups) =
                tokio::join!(self.slurm.nodes_named_text(&self.view.targets), async {
                    match count {
                        true => Some(self.slurm.state_groups_text().await),
                        false => None,
                    }
                });
            let (rows, groups) = (Answer::of(&rows), groups.as_ref().map(Answer::of));
            if self.last_rows.as_ref().is_some_and(|last| *last != rows) {
                self.touch.stir();
            }
            self.last_rows = Some(rows.clone());
            let at = cx.clock.now();
            cx.record(at, || Raw::Sinfo {
                rows: rows.clone(),
                groups: groups.clone(),
            });
            self.view.decode(&rows, groups.as_ref(), offset, at)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::tests::fixed_now;

    fn row(state: &str) -> NodeRow {
        NodeRow {
            name: "ip-10-1-0-12".into(),
            state: NodeState::parse(state),
            reason: String::new(),
            reason_time: None,
        }
    }

    /// A target in a maintenance reservation (a deep health check, a
    /// patch) is said once as the cluster's own change.
    #[test]
    fn a_target_in_maintenance_is_said_once_as_the_clusters_own_change() {
        let mut view = NodesView::new(&["ip-10-1-0-12".to_owned()], BTreeSet::new());
        let changes = |said: &[Said]| {
            said.iter()
                .filter(|s| {
                    matches!(s, Said::Record(Entry::Observed { field, .. }) if field == "cluster_change")
                })
                .count()
        };
        let now = fixed_now();
        assert_eq!(changes(&view.said((Ok(vec![row("idle")]), None), now)), 0);
        assert_eq!(changes(&view.said((Ok(vec![row("idle$")]), None), now)), 1);
        assert_eq!(changes(&view.said((Ok(vec![row("maint")]), None), now)), 0);
    }
}
