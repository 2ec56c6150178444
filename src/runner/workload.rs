//! The scenario's workload: the canary it submits (waiting for its
//! warm-up steps) or the job it watches, and reading its progress lines.

use regex::Regex;

use crate::scenario::model::{Scenario, Workload};

use super::Runner;

impl Runner {
    pub(super) async fn start_workload(
        &mut self,
        scenario: &Scenario,
    ) -> Result<Option<WorkloadJob>, String> {
        let slurm = self.cluster.slurm.clone();
        match &scenario.workload {
            None => Ok(None),
            Some(Workload::Existing(existing)) => {
                let id = match &existing.job {
                    crate::scenario::model::JobRef::Id(id) => *id,
                    crate::scenario::model::JobRef::Name(name) => *slurm
                        .jobs_named(name)
                        .await
                        .map_err(|e| e.to_string())?
                        .first()
                        .ok_or(format!("no job named {name} is running"))?,
                };
                let progress = existing
                    .progress
                    .as_ref()
                    .map(WorkloadJob::regexes)
                    .transpose()?;
                Ok(Some(WorkloadJob {
                    id,
                    submitted: false,
                    output: existing.progress.as_ref().and_then(|p| p.output.clone()),
                    offset: 0,
                    progress,
                    last_step: None,
                }))
            }
            Some(Workload::Canary(canary)) => {
                let script = canary
                    .script
                    .clone()
                    .or_else(|| self.cluster.profile.slurm.canary_script.clone())
                    .ok_or("the canary needs a script: set workload.canary.script or slurm.canary_script in the profile")?;
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
                args.extend(canary.sbatch_args.iter().cloned());
                args.push(script);
                let id = slurm
                    .sbatch(&args)
                    .await
                    .map_err(|e| format!("cannot submit the canary: {e}"))?;
                let mut job = WorkloadJob {
                    id,
                    submitted: true,
                    output: None,
                    offset: 0,
                    progress: Some(WorkloadJob::regexes(&canary.progress)?),
                    last_step: None,
                };
                let warmup = canary.warmup_steps.unwrap_or(1);
                let deadline = self.clock.now() + chrono::TimeDelta::seconds(180);
                loop {
                    if self.cancelled() {
                        return Err("interrupted while starting the canary".to_owned());
                    }
                    if let Ok(Some(info)) = slurm.job(id).await {
                        job.output = job.output.clone().or(info.stdout.clone());
                        if info.state == "RUNNING" {
                            job.read_progress(&slurm).await;
                            if job.last_step.is_some_and(|s| s >= warmup) {
                                return Ok(Some(job));
                            }
                        }
                    }
                    if self.clock.now() > deadline {
                        return Err(format!(
                            "the canary (job {id}) did not reach step {warmup} within 3 minutes"
                        ));
                    }
                    tokio::time::sleep(self.cluster.profile.poll.job_output.as_std()).await;
                }
            }
        }
    }
}

/// The watched job and where its output has been read to.
pub(super) struct WorkloadJob {
    pub(super) id: u64,
    /// Submitted by us (and so cancelled by us).
    pub(super) submitted: bool,
    pub(super) output: Option<String>,
    pub(super) offset: u64,
    pub(super) progress: Option<(Regex, Option<Regex>)>,
    pub(super) last_step: Option<u64>,
}

impl WorkloadJob {
    pub(super) fn regexes(
        progress: &crate::scenario::model::Progress,
    ) -> Result<(Regex, Option<Regex>), String> {
        let pattern = Regex::new(&progress.pattern).map_err(|e| e.to_string())?;
        let checkpoint = progress
            .checkpoint
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((pattern, checkpoint))
    }

    pub(super) fn is_checkpoint(&self, line: &str) -> bool {
        self.progress
            .as_ref()
            .and_then(|(_, c)| c.as_ref())
            .is_some_and(|c| c.is_match(line))
    }

    /// New whole lines of the job's output, each with its step if it is a
    /// progress line.
    pub(super) async fn read_progress(
        &mut self,
        slurm: &crate::cluster::slurm::Slurm,
    ) -> Vec<(String, Option<u64>)> {
        let Some(path) = self.output.clone() else {
            return Vec::new();
        };
        let Ok(text) = slurm.read_from(&path, self.offset).await else {
            return Vec::new();
        };
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        let mut lines = Vec::new();
        for line in text[..complete].lines() {
            let step = self
                .progress
                .as_ref()
                .and_then(|(p, _)| p.captures(line))
                .and_then(|c| c.get(1))
                .and_then(|m| m.as_str().parse::<u64>().ok());
            if step.is_some() {
                self.last_step = step;
            }
            lines.push((line.to_owned(), step));
        }
        lines
    }
}
