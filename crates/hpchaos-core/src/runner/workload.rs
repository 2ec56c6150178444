//! The scenario's workload put in place: the canary it submits (waiting
//! for its warm-up steps) or the job it watches. Reading the job's output
//! is the job source's (`observe/job_output.rs`).

use crate::scenario::model::{Scenario, Workload};

use crate::observe::job_output::WorkloadJob;

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
    #[error("no job named {0} is running")]
    NoJob(String),
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
                *slot = Some(existing_job(&slurm, existing).await?);
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
                let progress = WorkloadJob::regexes(&canary.progress)?;
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
                *slot = Some(WorkloadJob {
                    id,
                    submitted: true,
                    comment: comment.clone(),
                    intent: Some(intent),
                    output: None,
                    offset: 0,
                    skipping: false,
                    progress: Some(progress),
                    last_step: None,
                    steps_seen: Vec::new(),
                    gpus: None,
                    started_at: None,
                });
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
                    job.output = job.output.clone().or(info.stdout.clone());
                    if info.state.is_running() {
                        job.read_progress(&slurm, self.clock.now()).await;
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
/// job of its name), with its progress pattern.
async fn existing_job(
    slurm: &crate::cluster::slurm::Slurm,
    existing: &crate::scenario::model::ExistingJob,
) -> Result<WorkloadJob, WorkloadError> {
    let id = match &existing.job {
        crate::scenario::model::JobRef::Id(id) => *id,
        crate::scenario::model::JobRef::Name(name) => *slurm
            .jobs_named(name)
            .await?
            .first()
            .ok_or_else(|| WorkloadError::NoJob(name.clone()))?,
    };
    let progress = existing
        .progress
        .as_ref()
        .map(WorkloadJob::regexes)
        .transpose()?;
    Ok(WorkloadJob {
        id,
        submitted: false,
        comment: String::new(),
        intent: None,
        output: existing.progress.as_ref().and_then(|p| p.output.clone()),
        offset: 0,
        skipping: false,
        progress,
        last_step: None,
        steps_seen: Vec::new(),
        gpus: None,
        started_at: None,
    })
}
