//! The workload job as the watch reads it: its record in Slurm
//! (`scontrol show job`: state, nodes, restarts, start, GPUs) and the new
//! lines of its output (progress steps, checkpoint and resume lines).
//! Says the job's state when it changes, each progress step, the lines
//! worth keeping, and, as its last word, what the failure cost it.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::job_output::{OutputEvent, WorkloadJob};
use crate::cluster::slurm::{JobInfo, Slurm};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};
use crate::scenario::model::Phase;

use super::{Cadence, Closing, Cx, Said, Source};

/// The watched job, every `poll.job_output`.
pub(crate) struct Job<'a> {
    slurm: Slurm,
    job: &'a mut WorkloadJob,
    cadence: Cadence,
    /// `slurm.gpus_per_node`, for a job whose AllocTRES lists no GPUs.
    gpus_per_node: Option<u32>,
    /// The output file changed since the last read (old, new): said once.
    moved: Option<(String, String)>,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        slurm: Slurm,
        job: &'a mut WorkloadJob,
        every: Duration,
        gpus_per_node: Option<u32>,
    ) -> Job<'a> {
        Job {
            slurm,
            job,
            cadence: Cadence::every(every),
            gpus_per_node,
            moved: None,
        }
    }

    /// Takes in Slurm's record of the job: its first start and its GPUs
    /// are kept for the cost; returns the observation it makes.
    fn take_in(&mut self, info: JobInfo) -> Observation {
        // The first start Slurm reported (a requeue moves it on; the
        // runner took the one before the fault).
        if let Some(start) = info.start_time
            && self.job.started_at.is_none_or(|s| start < s)
        {
            self.job.started_at = Some(start);
        }
        // The output path as Slurm has it now (a pending job's first, or a
        // requeued one's on another batch host: `%N`), unless the
        // scenario named the file.
        // A requeued job waiting for its nodes has no batch host yet: its
        // `%N` would expand to nothing; the path is taken once it runs.
        let placed = info.batch_host.is_some() && info.state.is_running();
        if !self.job.output_pinned
            && (placed || self.job.output.is_none())
            && let Some(path) = info.output_path()
            && self.job.output.as_deref() != Some(path.as_str())
        {
            if let Some(old) = self.job.output.replace(path.clone()) {
                self.moved = Some((old, path));
            }
            self.job.restart_reading();
        }
        if self.job.gpus.is_none() {
            let per_node = self.gpus_per_node;
            self.job.gpus = info
                .gpus
                .map(|g| (g, "the job's AllocTRES gres/gpu".to_owned()))
                .or_else(|| {
                    per_node.zip(info.nodes).map(|(per, n)| {
                        (per * n, format!("slurm.gpus_per_node {per} × {n} node(s)"))
                    })
                });
        }
        let nodes = self.slurm.hostnames(&info.node_list).unwrap_or_default();
        Observation::Job {
            state: info.state,
            nodes,
            restarts: info.restarts,
        }
    }

    /// The job's state said as a value (journaled when it changes).
    fn state_said(&self, observation: Observation, seen_at: chrono::DateTime<chrono::Utc>) -> Said {
        let value = match &observation {
            Observation::Job {
                state,
                nodes,
                restarts,
            } => format!("{state} on [{}], restarts {restarts}", nodes.join(",")),
            _ => "gone".to_owned(),
        };
        Said::Value {
            source: SourceName::Squeue,
            node: None,
            field: format!("job {}", self.job.id),
            value,
            source_time: None,
            event: Some(Event {
                seen: seen_at,
                source_time: None,
                source: SourceName::Squeue,
                observation,
            }),
        }
    }

    /// The cost of the failure to the job, once it resumed, with the
    /// formula's terms; when the job's GPUs are unknown, said.
    fn cost(&self, closing: &Closing<'_>) -> Option<Said> {
        let resumed = closing
            .judgement
            .phases
            .iter()
            .find(|p| p.phase == Phase::Resume)
            .and_then(|p| p.ended.as_ref())
            .map(|b| b.at)?;
        let Some(gpus) = self.job.gpus.clone() else {
            return Some(Said::Record(Entry::Observed {
                source: SourceName::Harness,
                node: None,
                field: "cost".into(),
                from: None,
                to: "GPU-hours not computed: the job's AllocTRES lists no GPUs; set slurm.gpus_per_node in the profile".into(),
                source_time: None,
            }));
        };
        // The window: from the job's start (else the first progress seen)
        // to the end of the watch.
        let injected_at = closing.injected_at;
        let start = self
            .job
            .started_at
            .or(self.job.steps_seen.first().map(|s| s.0))
            .map_or(injected_at, |s| s.min(injected_at));
        let cost = crate::cost::failure_cost(
            gpus,
            injected_at,
            resumed,
            closing.judgement.lost_steps,
            &self.job.steps_seen,
            (start, closing.now),
        );
        Some(Said::Record(Entry::FailureCost { cost }))
    }
}

impl Source for Job<'_> {
    fn name(&self) -> SourceName {
        SourceName::Squeue
    }

    fn due(&self, now: Instant) -> bool {
        self.cadence.due(now)
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(self.cadence.next)
    }

    fn read<'b>(&'b mut self, cx: &'b Cx) -> BoxFuture<'b, Vec<Said>> {
        Box::pin(async move {
            self.cadence.started(Instant::now());
            let observation = match self.slurm.job(self.job.id).await {
                Ok(Some(info)) => Some(self.take_in(info)),
                Ok(None) => Some(Observation::JobGone),
                Err(_) => None,
            };
            let error = observation.is_none().then(|| "squeue failed".to_owned());
            let mut said = vec![Said::Health(error)];
            if let Some(observation) = observation {
                said.push(self.state_said(observation, cx.clock.now()));
            }
            let now = cx.clock.now();
            let event = |observation| {
                Said::Event(Event {
                    seen: now,
                    source_time: None,
                    source: SourceName::JobOutput,
                    observation,
                })
            };
            let line = |text: String| {
                Said::Record(Entry::Observed {
                    source: SourceName::JobOutput,
                    node: None,
                    field: "line".into(),
                    from: None,
                    to: text,
                    source_time: None,
                })
            };
            // A new file, or the same one rewritten: the journal says so,
            // and it is the job's word that it started again.
            let started_again = |said: &mut Vec<Said>, words: String| {
                said.push(line(words.clone()));
                said.push(event(Observation::JobRestarted {
                    from: None,
                    said: words,
                }));
            };
            if let Some((old, new)) = self.moved.take() {
                started_again(
                    &mut said,
                    format!(
                        "output moved to {new} (was {old}): the job's StdOut names another file now (a requeue on another batch host, `%N`); read from its start"
                    ),
                );
            }
            for news in self.job.read_progress(&self.slurm, now).await {
                match news {
                    OutputEvent::Rewritten {
                        was,
                        now: size,
                        shorter,
                    } => {
                        let words = format!(
                            "output {} rewritten ({}): read again from its start (Slurm truncates a requeued job's output unless JobFileAppend=1 or --open-mode=append)",
                            self.job.output.as_deref().unwrap_or("-"),
                            if shorter {
                                format!("{size} bytes, shorter than the {was} read")
                            } else {
                                "its first bytes changed".to_owned()
                            }
                        );
                        started_again(&mut said, words);
                    }
                    OutputEvent::Update(update) => {
                        if let Some(from) = update.resumed {
                            said.push(event(Observation::JobRestarted {
                                from,
                                said: update.text.clone(),
                            }));
                        }
                        if let Some(step) = update.step {
                            said.push(event(Observation::Progress {
                                step: step.value,
                                exact: step.exact,
                            }));
                        }
                        if update.auto_resume
                            || update.resumed.is_some()
                            || update.checkpoint.is_some()
                            || update.text.contains("resumed")
                            || update.text.contains("auto-resume")
                        {
                            said.push(line(update.text));
                        }
                    }
                }
            }
            said
        })
    }

    fn close<'b>(&'b mut self, closing: &'b Closing<'b>) -> BoxFuture<'b, Vec<Said>> {
        Box::pin(std::future::ready(self.cost(closing).into_iter().collect()))
    }
}
