//! The scenario's workload put in place: the canary it submits (waiting
//! for its warm-up steps) or the job it watches. Reading the job's output
//! is the job source's (`observe/job_output.rs`).

use crate::scenario::model::{Scenario, Workload};

use crate::observe::job_output::{Patterns, WorkloadJob};

use super::Runner;

/// Why the scenario's workload could not be put in place: its job not
/// found, its canary not submitted or not warmed up.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Slurm could not be asked.
    #[error(transparent)]
    Slurm(#[from] crate::cluster::ssh::SshError),
    /// A progress or checkpoint pattern that is not a regular expression.
    #[error(transparent)]
    Pattern(#[from] regex::Error),
    /// No job, or several, under the workload's job name.
    #[error(transparent)]
    JobName(#[from] crate::cluster::slurm::JobNameError),
    #[error(
        "the canary needs a script: set workload.canary.script or slurm.canary_script in the profile"
    )]
    NoScript,
    /// The submission's write-ahead record could not be made (the lease,
    /// the journal, a stop): nothing was submitted.
    #[error(transparent)]
    NotRecorded(super::NotBegun),
    #[error("cannot submit the canary: {0}")]
    Submit(#[source] crate::cluster::ssh::SshError),
    /// The canary did not reach its warm-up step: stopped, ended, gone, or
    /// not within 3 minutes.
    #[error("{0}")]
    WarmUp(String),
}

impl Runner {
    /// Puts the workload in `slot` as soon as it exists (a canary is
    /// there right after `sbatch`, so that a stop during its warm-up still
    /// cancels it). Errors say why it cannot be watched.
    pub(super) async fn start_workload(
        &mut self,
        scenario: &Scenario,
        slot: &mut Option<WorkloadJob>,
    ) -> Result<(), WorkloadError> {
        let slurm = self.cluster.slurm.clone();
        match &scenario.workload {
            None => Ok(()),
            Some(Workload::Existing(existing)) => {
                let (job, _) = existing_job(&self.cluster, existing).await?;
                self.log(
                    Some(&scenario.name),
                    crate::journal::Entry::Observed {
                        source: crate::journal::Source::Squeue,
                        node: None,
                        field: format!("job {}", job.id),
                        from: None,
                        to: format!("watched: {}", watched_words(&job)),
                        source_time: None,
                    },
                );
                *slot = Some(job);
                Ok(())
            }
            Some(Workload::Canary(canary)) => {
                let script = canary
                    .script
                    .clone()
                    .or_else(|| self.cluster.profile.slurm.canary_script.clone())
                    .ok_or(WorkloadError::NoScript)?;
                let mut args = vec![
                    format!("--job-name={}", canary.name),
                    format!("--nodes={}", canary.nodes),
                ];
                if let Some(partition) = &canary.partition {
                    args.push(format!("--partition={partition}"));
                }
                args.push(if canary.requeue {
                    "--requeue".to_owned()
                } else {
                    "--no-requeue".to_owned()
                });
                // Marks the job as this run's, so `recover` finds it
                // even if we die before journaling its id.
                let comment = format!("hpchaos:{}:{}", self.run_id, scenario.name);
                args.push(format!("--comment={comment}"));
                args.extend(canary.sbatch_args.iter().cloned());
                args.push(script);
                let patterns = Patterns::of(&canary.progress)?;
                let intent = self
                    .write_ahead(
                        &scenario.name,
                        format!("submit the canary: sbatch {}", args.join(" ")),
                        vec![crate::faults::Step::CancelCanary {
                            comment: comment.clone(),
                        }],
                    )
                    .await
                    .map_err(WorkloadError::NotRecorded)?;
                let id = slurm.sbatch(&args).await.map_err(WorkloadError::Submit)?;
                let mut job = WorkloadJob::new(id, Some(patterns));
                job.submitted = true;
                job.comment = comment.clone();
                job.intent = Some(intent);
                *slot = Some(job);
                self.log(
                    Some(&scenario.name),
                    crate::journal::Entry::CanarySubmitted { job: id, comment },
                );
                let warmup = canary.warmup_steps.unwrap_or(1);
                match slot.as_mut() {
                    Some(job) => self.warm_up(job, warmup).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// Waits for the canary `job` to reach step `warmup` (up to three
    /// minutes), reading its output; why it did not, if it did not (a stop,
    /// the job ending or gone).
    async fn warm_up(&mut self, job: &mut WorkloadJob, warmup: u64) -> Result<(), WorkloadError> {
        let slurm = self.cluster.slurm.clone();
        let id = job.id;
        let deadline = self.clock.now() + chrono::TimeDelta::seconds(180);
        loop {
            if self.stopping() {
                return Err(WorkloadError::WarmUp(format!(
                    "stopped during the canary's warm-up (job {id} at step {})",
                    job.last_step.map_or("-".to_owned(), |s| s.to_string())
                )));
            }
            match slurm.job(id).await {
                Ok(Some(info)) => {
                    if job.output.is_none() {
                        job.output = info.output_path();
                    }
                    if job.started_at.is_none() {
                        job.started_at = info.start_time;
                    }
                    if info.state.is_running() {
                        job.read_progress(&slurm, self.clock.now(), &mut Vec::new())
                            .await;
                        if job.last_step.is_some_and(|s| s >= warmup) {
                            return Ok(());
                        }
                    } else if info.state.is_final() {
                        return Err(WorkloadError::WarmUp(format!(
                            "the canary (job {id}) ended {} ({}) before reaching step {warmup}",
                            info.state, info.reason
                        )));
                    }
                }
                Ok(None) => {
                    return Err(WorkloadError::WarmUp(format!(
                        "the canary (job {id}) is gone before reaching step {warmup}"
                    )));
                }
                Err(_) => {}
            }
            if self.clock.now() > deadline {
                return Err(WorkloadError::WarmUp(format!(
                    "the canary (job {id}) did not reach step {warmup} within 3 minutes"
                )));
            }
            let mut cancel = self.cancel.clone();
            tokio::select! {
                _ = tokio::time::sleep(self.cluster.profile.poll.job_output.as_std()) => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
        }
    }
}

/// The job an `existing:` workload names (by id, or the first running
/// job of its name), read as Slurm has it before the fault: its output
/// file from `StdOut` (patterns expanded; `progress.output` when given),
/// read on the head when it is there (shared storage, as `/fsx` on
/// HyperPod), else on the job's batch host; its first start, for the
/// cost's window; its progress read with the scenario's patterns, or a
/// plain `step N` when it gives none.
async fn existing_job(
    cluster: &crate::cluster::Cluster,
    existing: &crate::scenario::model::ExistingJob,
) -> Result<(WorkloadJob, Option<crate::cluster::slurm::JobInfo>), WorkloadError> {
    let slurm = &cluster.slurm;
    let id = match &existing.job {
        crate::scenario::model::JobRef::Id(id) => *id,
        crate::scenario::model::JobRef::Name(name) => slurm.job_named(name).await?,
    };
    let progress = existing.progress.clone().unwrap_or_default();
    let mut job = WorkloadJob::new(id, Some(Patterns::of(&progress)?));
    let info = slurm.job(id).await?;
    job.output_pinned = progress.output.is_some();
    job.output = progress
        .output
        .clone()
        .or_else(|| info.as_ref().and_then(|i| i.output_path()));
    job.started_at = info.as_ref().and_then(|i| i.start_time);
    job.restarts_before = info.as_ref().map_or(0, |i| i.restarts);
    if let Some(path) = job.output.clone() {
        let size = match slurm.file_size(&path).await {
            Ok(size) => Some(size),
            Err(_) => match info.as_ref().and_then(|i| i.batch_host.clone()) {
                Some(host) => {
                    job.read_on = Some(cluster.node(&host));
                    None
                }
                None => None,
            },
        };
        // A job that has run for days has written more than a poll reads:
        // its latest lines are where its progress is. The line cut at the
        // start is skipped.
        if let Some(size) = size
            && size > EXISTING_TAIL
        {
            job.offset = size - EXISTING_TAIL;
            job.skipping = true;
        }
    }
    Ok((job, info))
}

/// The job an `existing:` workload names, as `plan` shows it: its id,
/// state and nodes, the output file the run reads (and where), and how
/// its progress is read. Errors: no such job, Slurm not answering, a
/// pattern that is no regular expression.
pub async fn describe_existing(
    cluster: &crate::cluster::Cluster,
    existing: &crate::scenario::model::ExistingJob,
) -> Result<String, WorkloadError> {
    let (job, info) = existing_job(cluster, existing).await?;
    let progress = existing.progress.clone().unwrap_or_default();
    let reading = match (&progress.framework, &progress.pattern) {
        (_, Some(pattern)) => format!("pattern `{pattern}`"),
        (Some(framework), None) => format!("the {framework:?} preset"),
        (None, None) => "the plain `step N` preset".to_owned(),
    };
    Ok(format!(
        "job {}{}; {}; progress read with {reading}",
        job.id,
        info.map(|i| format!(" ({} on {})", i.state, i.node_list))
            .unwrap_or_default(),
        watched_words(&job),
    ))
}

/// How much of an existing job's output is read before the fault: its
/// last 1 MiB (half of what one poll reads).
const EXISTING_TAIL: u64 = 1024 * 1024;

/// What the run watches of an existing job: `output PATH[ read on NODE
/// (not on the head)]`, for the journal and `plan`.
fn watched_words(job: &WorkloadJob) -> String {
    format!(
        "output {}{}",
        job.output
            .as_deref()
            .unwrap_or("unknown (no StdOut in scontrol show job)"),
        match &job.read_on {
            Some(node) => format!(" read on {} (not on the head)", node.name),
            None => String::new(),
        }
    )
}

/// How the scenario's workload reads progress: its patterns (the canary's
/// `progress`, or an existing job's, a plain `step N` when it gives
/// none); `None` without a workload. Errors: a pattern that is no regular
/// expression.
pub(super) fn patterns_of(scenario: &Scenario) -> Result<Option<Patterns>, WorkloadError> {
    Ok(match &scenario.workload {
        None => None,
        Some(Workload::Canary(canary)) => Some(Patterns::of(&canary.progress)?),
        Some(Workload::Existing(existing)) => Some(Patterns::of(
            &existing.progress.clone().unwrap_or_default(),
        )?),
    })
}
