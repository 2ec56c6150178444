//! What the cluster is doing of its own accord that a chaos run must not
//! overlap: an AMI patch due (`AutoPatchConfig`; `WhenIdle` "cordons all
//! instances and patches each as it becomes idle"), a software update or
//! a scaling operation in flight (`SoftwareUpdateStatus`,
//! `ActiveOperations`), a deep health check on a target
//! (`DeepHealthCheckInProgress`), a target in a Slurm maintenance
//! reservation (where HyperPod holds the nodes it checks). A run that
//! overlaps one injects into a cluster already under change and credits
//! the cluster's work to the fault (HYPERPOD.md, "Since 2025"). Pure:
//! decodes `scontrol -o show reservation` and judges what the API and
//! Slurm said.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::sagemaker::{ApiNode, ClusterSummary};

/// One Slurm reservation (`scontrol -o show reservation`, one line each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub name: String,
    /// Its nodes as Slurm's host list (`ip-10-1-0-[11-12]`).
    pub nodes: String,
    /// `MAINT`, `IGNORE_JOBS`, ... as printed.
    pub flags: Vec<String>,
    /// Start and end in the controller's local time.
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
}

impl Reservation {
    /// A maintenance reservation: Slurm's `MAINT` flag.
    pub fn is_maintenance(&self) -> bool {
        self.flags.iter().any(|f| f == "MAINT")
    }
}

/// The reservations in `scontrol -o show reservation`'s text ("No
/// reservations in the system" is none).
pub fn parse_reservations(text: &str) -> Vec<Reservation> {
    text.lines()
        .filter(|l| l.starts_with("ReservationName="))
        .map(|line| {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .unwrap_or_default()
                    .to_owned()
            };
            let time =
                |key: &str| NaiveDateTime::parse_from_str(&field(key), "%Y-%m-%dT%H:%M:%S").ok();
            Reservation {
                name: field("ReservationName="),
                nodes: field("Nodes="),
                flags: field("Flags=")
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
                start: time("StartTime="),
                end: time("EndTime="),
            }
        })
        .collect()
}

/// One change under way that a run would overlap, in words with until
/// when when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub what: String,
    pub until: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        if let Some(until) = self.until {
            write!(f, " (until {})", until.format("%Y-%m-%dT%H:%M:%SZ"))?;
        }
        Ok(())
    }
}

/// What the cluster is doing that a run from `now` to `now + horizon`
/// (its longest deadline) on `targets` would overlap: from `summary`
/// (DescribeCluster), the targets' API nodes, and Slurm's reservations
/// (`offset`: the controller's UTC offset). A software update that
/// `Failed` or `Succeeded` is over; `Pending` is not.
pub fn overlapping(
    summary: Option<&ClusterSummary>,
    nodes: &[ApiNode],
    reservations: &[Reservation],
    targets: &[String],
    offset: chrono::FixedOffset,
    now: DateTime<Utc>,
    horizon: TimeDelta,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for group in summary.map(|s| s.groups.as_slice()).unwrap_or_default() {
        if let Some(next) = group.next_patch
            && next <= now + horizon
        {
            let strategy = group.patch_strategy.as_deref().unwrap_or("unknown");
            let cordons = match strategy {
                "WhenIdle" => ": it cordons every instance and patches each as it becomes idle",
                "DrainFirst" => ": it drains the nodes first",
                _ => "",
            };
            changes.push(Change {
                what: format!(
                    "an AMI patch of instance group {} is due at {} (PatchingStrategy {strategy}{cordons}), within the run's {}",
                    group.name,
                    next.format("%Y-%m-%dT%H:%M:%SZ"),
                    crate::duration::Duration(horizon.to_std().unwrap_or_default())
                ),
                until: None,
            });
        }
        if let Some(status) = group
            .software_update
            .as_deref()
            .filter(|s| matches!(*s, "Pending" | "InProgress" | "RollbackInProgress"))
        {
            changes.push(Change {
                what: format!(
                    "a software update of instance group {} is {status} (SoftwareUpdateStatus)",
                    group.name
                ),
                until: None,
            });
        }
        for (operation, count) in group.operations.iter().filter(|(_, n)| *n > 0) {
            changes.push(Change {
                what: format!(
                    "{operation} is in progress on instance group {} ({count} operation(s), ActiveOperations)",
                    group.name
                ),
                until: None,
            });
        }
    }
    for node in nodes.iter().filter(|n| targets.contains(&n.node)) {
        if node.status == "DeepHealthCheckInProgress" {
            changes.push(Change {
                what: format!(
                    "a deep health check is running on target {} (instance {}: DeepHealthCheckInProgress)",
                    node.node, node.instance_id
                ),
                until: None,
            });
        }
    }
    let utc = |t: NaiveDateTime| super::controller_log::local_to_utc(t, offset);
    for reservation in reservations.iter().filter(|r| r.is_maintenance()) {
        let start = reservation.start.and_then(utc);
        let end = reservation.end.and_then(utc);
        let overlaps = start.is_none_or(|s| s <= now + horizon) && end.is_none_or(|e| e > now);
        if !overlaps {
            continue;
        }
        let held = super::hostlist::expand(&reservation.nodes).unwrap_or_default();
        let hit: Vec<&String> = targets.iter().filter(|t| held.contains(t)).collect();
        if hit.is_empty() {
            continue;
        }
        let names: Vec<&str> = hit.iter().map(|s| s.as_str()).collect();
        changes.push(Change {
            what: format!(
                "target(s) {} in Slurm maintenance reservation {} (Flags={}{})",
                names.join(", "),
                reservation.name,
                reservation.flags.join(","),
                start
                    .filter(|s| *s > now)
                    .map(|s| format!(", from {}", s.format("%Y-%m-%dT%H:%M:%SZ")))
                    .unwrap_or_default()
            ),
            until: end,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::sagemaker::GroupSummary;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    const NOW: &str = "2026-11-28T10:00:00Z";

    fn summary(group: GroupSummary) -> ClusterSummary {
        ClusterSummary {
            arn: "arn:aws:sagemaker:us-west-2:1:cluster/abc".into(),
            groups: vec![group],
            node_recovery: "Automatic".into(),
        }
    }

    fn workers() -> GroupSummary {
        GroupSummary {
            name: "workers".into(),
            node_type: Some("Compute".into()),
            ..GroupSummary::default()
        }
    }

    fn judge(summary: Option<&ClusterSummary>, nodes: &[ApiNode], text: &str) -> Vec<String> {
        overlapping(
            summary,
            nodes,
            &parse_reservations(text),
            &["ip-10-1-0-12".to_owned()],
            chrono::FixedOffset::east_opt(0).unwrap(),
            at(NOW),
            TimeDelta::minutes(45),
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn a_patch_due_within_the_run_overlaps_it_and_one_after_does_not() {
        let due = |minutes| {
            summary(GroupSummary {
                patch_strategy: Some("WhenIdle".into()),
                next_patch: Some(at(NOW) + TimeDelta::minutes(minutes)),
                ..workers()
            })
        };
        let said = judge(Some(&due(10)), &[], "");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("due at 2026-11-28T10:10:00Z")
                && said[0].contains("cordons every instance")
                && said[0].contains("within the run's 45m"),
            "{said:?}"
        );
        assert!(judge(Some(&due(46)), &[], "").is_empty());
        // A patch whose date passed is under way, or overdue: overlapping.
        assert_eq!(judge(Some(&due(-5)), &[], "").len(), 1);
    }

    #[test]
    fn updates_and_scaling_in_flight_overlap_and_finished_ones_do_not() {
        for (status, overlaps) in [
            ("InProgress", true),
            ("Pending", true),
            ("RollbackInProgress", true),
            ("Succeeded", false),
            ("Failed", false),
            ("RollbackComplete", false),
        ] {
            let s = summary(GroupSummary {
                software_update: Some(status.into()),
                ..workers()
            });
            assert_eq!(!judge(Some(&s), &[], "").is_empty(), overlaps, "{status}");
        }
        let scaling = summary(GroupSummary {
            operations: vec![("Scaling".into(), 2)],
            ..workers()
        });
        let said = judge(Some(&scaling), &[], "");
        assert_eq!(
            said,
            ["Scaling is in progress on instance group workers (2 operation(s), ActiveOperations)"]
        );
        assert!(judge(Some(&summary(workers())), &[], "").is_empty());
    }

    #[test]
    fn a_deep_health_check_on_a_target_and_its_maintenance_reservation_overlap() {
        let node = |name: &str, status: &str| ApiNode {
            node: name.into(),
            instance_id: "i-0abc".into(),
            group: "workers".into(),
            status: status.into(),
            launch_time: None,
            status_message: None,
        };
        let said = judge(
            None,
            &[node("ip-10-1-0-12", "DeepHealthCheckInProgress")],
            "",
        );
        assert_eq!(
            said,
            [
                "a deep health check is running on target ip-10-1-0-12 (instance i-0abc: DeepHealthCheckInProgress)"
            ]
        );
        // On another node: not this run's.
        assert!(
            judge(
                None,
                &[node("ip-10-1-0-13", "DeepHealthCheckInProgress")],
                ""
            )
            .is_empty()
        );
        let reservation = "ReservationName=sagemaker-deep-health-check-ip-10-1-0-12 StartTime=2026-11-28T09:50:00 EndTime=2026-11-28T10:20:00 Duration=00:30:00 Nodes=ip-10-1-0-[11-12] NodeCnt=2 CoreCnt=4 Features=(null) PartitionName=(null) Flags=MAINT,IGNORE_JOBS,SPEC_NODES TRES=cpu=4 Users=root Groups=(null) Accounts=(null) Licenses=(null) State=ACTIVE BurstBuffer=(null) MaxStartDelay=(null)\n";
        let said = judge(None, &[], reservation);
        assert_eq!(
            said,
            [
                "target(s) ip-10-1-0-12 in Slurm maintenance reservation sagemaker-deep-health-check-ip-10-1-0-12 (Flags=MAINT,IGNORE_JOBS,SPEC_NODES) (until 2026-11-28T10:20:00Z)"
            ]
        );
        // Over, later than the run, or no MAINT flag: no overlap.
        for other in [
            reservation.replace("EndTime=2026-11-28T10:20:00", "EndTime=2026-11-28T09:59:00"),
            reservation.replace(
                "StartTime=2026-11-28T09:50:00",
                "StartTime=2026-11-28T11:00:00",
            ),
            reservation.replace("Flags=MAINT,IGNORE_JOBS,SPEC_NODES", "Flags=SPEC_NODES"),
        ] {
            assert!(judge(None, &[], &other).is_empty(), "{other}");
        }
        assert!(parse_reservations("No reservations in the system\n").is_empty());
    }
}
