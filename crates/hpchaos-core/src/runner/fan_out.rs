//! Steps on many targets at once: a plan's steps grouped by the node they
//! run on (in their order within a node; steps on the head node or the API
//! form one group of their own), the groups run concurrently, at most
//! [`FAN_OUT`] in flight, so the last target's fault starts as soon after
//! the first's as the connections allow. Each step's start and duration is
//! journaled (`step_ran`).

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::faults::Step;
use crate::journal::Entry;

use super::Runner;
use super::step_error::StepError;

/// Groups (nodes) worked on at once. SSH channels per host stay bounded by
/// the pool (`max_channels_per_host`); this bounds connections opened at
/// once (sshd's `MaxStartups` is 10:30:100 by default, SSM's session rate
/// about 3 a second, which the head's one connection avoids).
pub const FAN_OUT: usize = 64;

/// How a group treats a stop and a failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Changing the cluster: nothing starts once a stop is asked, and a
    /// failed step skips the rest of its node's group.
    Change,
    /// Undoing (rollback, recover): every step is tried, whatever came
    /// before it and whether a stop was asked.
    Undo,
}

/// One step carried out.
#[derive(Debug)]
pub struct StepResult {
    /// Its index in the steps given.
    pub index: usize,
    pub started: DateTime<Utc>,
    pub took_ms: u64,
    pub result: Result<String, StepError>,
}

/// The node a step is about, which orders it among that node's steps: the
/// node it runs on, or the node a head-node step changes (resuming it).
pub(super) fn concerns(step: &Step) -> Option<String> {
    step.node().or_else(|| match step {
        Step::ResumeIfUntouched { node, .. } => Some(node.clone()),
        _ => None,
    })
}

impl Runner {
    /// Runs `steps` grouped by node, the groups concurrently; results in
    /// the steps' order. In [`Mode::Change`], a stop asked for skips the
    /// steps not yet started (they fail with "stopped before") and a failed
    /// step skips the rest of its node's group, not other nodes'; in
    /// [`Mode::Undo`] every step is tried.
    pub(super) async fn execute_fanned(
        &self,
        steps: &[Step],
        job: Option<u64>,
        mode: Mode,
    ) -> Vec<StepResult> {
        let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            let node = concerns(step);
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, members)) => members.push(index),
                None => groups.push((node, vec![index])),
            }
        }
        // Steps on compute nodes and API calls cannot carry the lock's
        // fence themselves: the head is asked once, just before they start,
        // that the lock is still held under this run's token.
        if mode == Mode::Change
            && steps.iter().any(|s| !s.runs_on_head())
            && let Err(why) = self.fence_check().await
        {
            return (0..steps.len())
                .map(|index| StepResult {
                    index,
                    started: self.clock.now(),
                    took_ms: 0,
                    result: Err(StepError::Stopped {
                        step: steps[index].describe(),
                        why: Some(why.to_string()),
                    }),
                })
                .collect();
        }
        let mut results: Vec<StepResult> = stream::iter(groups)
            .map(|(_, members)| async move {
                let mut out = Vec::new();
                let mut failed = false;
                for index in members {
                    let step = &steps[index];
                    let started = self.clock.now();
                    let clock = Instant::now();
                    let result = if mode == Mode::Change && self.stopping() {
                        Err(StepError::Stopped {
                            step: step.describe(),
                            why: None,
                        })
                    } else if mode == Mode::Change && failed {
                        Err(StepError::Skipped(step.describe()))
                    } else {
                        self.execute(step, job).await
                    };
                    failed |= result.is_err();
                    out.push(StepResult {
                        index,
                        started,
                        took_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
                        result,
                    });
                }
                out
            })
            .buffer_unordered(FAN_OUT)
            .flat_map(stream::iter)
            .collect()
            .await;
        results.sort_by_key(|r| r.index);
        results
    }

    /// Asks the head whether the cluster's lock is still held under this
    /// run's token (nothing to ask while the run holds no lock). A lock
    /// held under another token loses the lease. Errors: why the run may
    /// not act.
    pub(super) async fn fence_check(&self) -> Result<(), StepError> {
        let Some(fence) = self.gate().await.map_err(StepError::Lock)? else {
            return Ok(());
        };
        let out = self
            .cluster
            .ssh
            .run_line_as(
                &self.cluster.slurm.head,
                Some(crate::cluster::privilege::Root::ClusterLock),
                &super::lock::fence_check_line(&fence),
                self.cluster.profile.ssh.command_timeout.as_std(),
            )
            .await
            .map_err(|e| StepError::Lock(format!("cannot check the cluster's lock: {e}")))?;
        if let Some(why) = self.fence_refusal(&out) {
            return Err(StepError::Fenced(why));
        }
        if out.status != 0 {
            return Err(StepError::Lock(format!(
                "cannot check the cluster's lock: exit {}: {}",
                out.status,
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    /// Journals when each step ran, how long it took and how it ended.
    pub(super) fn journal_steps(&mut self, scenario: &str, steps: &[Step], results: &[StepResult]) {
        for r in results {
            let step = &steps[r.index];
            let (ok, detail) = match &r.result {
                Ok(note) => (true, note.clone()),
                Err(err) => (false, err.to_string()),
            };
            self.log(
                Some(scenario),
                Entry::StepRan {
                    node: step.node(),
                    step: step.describe(),
                    started_at: r.started,
                    took_ms: r.took_ms,
                    ok,
                    detail,
                },
            );
        }
    }
}
