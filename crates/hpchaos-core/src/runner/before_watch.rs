//! Before the watch: how things are just before the injection (the
//! baseline the phases are judged against) and where the controller log
//! ends, so the watch reads only what follows.

use crate::journal::{Entry, Source};
use crate::phases::Baseline;

use super::{Runner, WorkloadJob};

impl Runner {
    /// How things are just before the injection. `count_cluster`: the
    /// scenario's abort counts unhealthy nodes, so the nodes down already
    /// are read too (one grouped `sinfo`), else left out.
    pub(super) async fn baseline(
        &mut self,
        targets: &[String],
        workload: Option<&mut WorkloadJob>,
        count_cluster: bool,
    ) -> Baseline {
        let mut baseline = Baseline {
            targets: targets.to_vec(),
            workload: workload.is_some(),
            ..Baseline::default()
        };
        if let Some(api) = &self.cluster.api
            && let Ok(nodes) = api.named(targets).await
        {
            for node in nodes {
                if let Some(launch) = node.launch_time {
                    baseline.launch_times.insert(node.node.clone(), launch);
                }
                baseline
                    .instance_groups
                    .insert(node.node.clone(), node.group.clone());
                baseline.instance_ids.insert(node.node, node.instance_id);
            }
        }
        if let Ok(boots) = self.cluster.slurm.node_boots(targets).await {
            baseline.boots = boots.into_iter().collect();
        }
        // What was down before the fault is not the fault's blast radius.
        if count_cluster && let Ok(groups) = self.cluster.slurm.state_groups().await {
            baseline.unhealthy_before =
                crate::cluster::slurm::unhealthy_in_groups(&groups).unwrap_or_default();
        }
        if let Some(job) = workload {
            job.read_progress(&self.cluster.slurm, self.clock.now(), &mut Vec::new())
                .await;
            baseline.progress = job.last_step;
            baseline.checkpoint = job.last_checkpoint;
        }
        baseline
    }
}

impl Runner {
    /// The controller log's size before the injection, so the watch reads
    /// only what follows; an unreadable log is journaled once and skipped.
    pub(super) async fn controller_log_offset(&mut self, scenario: &str) -> Option<u64> {
        let path = self.cluster.profile.slurm.controller_log.clone();
        match self.cluster.slurm.file_size(&path).await {
            Ok(size) => Some(size),
            Err(err) => {
                self.log(
                    Some(scenario),
                    Entry::Observed {
                        source: Source::SlurmctldLog,
                        node: None,
                        field: "poll".into(),
                        from: None,
                        to: format!("{path} is not readable ({err}); watching without it"),
                        source_time: None,
                    },
                );
                None
            }
        }
    }
}
