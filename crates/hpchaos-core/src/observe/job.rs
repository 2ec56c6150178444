//! The workload job as the watch reads it: its record in Slurm
//! (`scontrol show job`: state, nodes, restarts, start, GPUs) and the new
//! lines of its output (progress steps, checkpoint and resume lines).
//! Says the job's state when it changes, each progress step, the lines
//! worth keeping, and, as its last word, what the failure cost it.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::job_output::{OutputEvent, WorkloadJob};
use crate::cluster::slurm::{JobInfo, Slurm, merge_job_records};
use crate::journal::{Entry, Source as SourceName};
use crate::phases::{Event, Observation};
use crate::scenario::model::Phase;

use super::recording::{Answer, Chunk, Raw};
use super::{Cadence, Closing, Cx, Said, Source};

/// The watched job, every `poll.job_output`.
pub(crate) struct Job<'a> {
    slurm: Slurm,
    cadence: Cadence,
    view: JobView<'a>,
}

/// What the watch knows of the job between reads: the decoding's state
/// (a replay drives it alone).
pub(crate) struct JobView<'a> {
    job: &'a mut WorkloadJob,
    /// `slurm.gpus_per_node`, for a job whose AllocTRES lists no GPUs.
    gpus_per_node: Option<u32>,
    /// The output file changed since the last read: said once, in words.
    moved: Option<String>,
    /// The profile's node addresses: where a batch host is reached.
    addresses: std::collections::BTreeMap<String, String>,
    /// Slurm showed the job running at its last read: only then can its
    /// progress stall.
    running: bool,
    /// The nodes' offset from UTC (the controller's, `date +%z`): a
    /// PyTorch log line's local time is read with it.
    pub(crate) utc_offset: chrono::FixedOffset,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        slurm: Slurm,
        job: &'a mut WorkloadJob,
        every: Duration,
        gpus_per_node: Option<u32>,
        addresses: std::collections::BTreeMap<String, String>,
    ) -> Job<'a> {
        Job {
            slurm,
            cadence: Cadence::every(every),
            view: JobView::new(job, gpus_per_node, addresses),
        }
    }
}

impl<'a> JobView<'a> {
    pub(crate) fn new(
        job: &'a mut WorkloadJob,
        gpus_per_node: Option<u32>,
        addresses: std::collections::BTreeMap<String, String>,
    ) -> JobView<'a> {
        JobView {
            job,
            gpus_per_node,
            moved: None,
            addresses,
            running: false,
            utc_offset: chrono::FixedOffset::east_opt(0)
                .unwrap_or_else(|| unreachable!("0 is valid")),
        }
    }

    /// Decodes [`Raw::Squeue`]: the one decoding, live and replayed.
    /// Errors: a chunk's `base64` that is not base64.
    pub(crate) fn decode(
        &mut self,
        raw: &Raw,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Said>, String> {
        let Raw::Squeue { record, chunks } = raw else {
            return Ok(Vec::new());
        };
        let mut said = self.take_record(record, now);
        let mut news = Vec::new();
        for chunk in chunks {
            let (taken, gap) = self
                .job
                .take_recorded_chunk(chunk.offset, chunk.file_chunk()?, now);
            said.extend(gap.map(output_line));
            news.extend(taken);
        }
        said = timed_faults_first(said, self.said_output(news, now));
        if self.running
            && let Some(words) = self.job.stalled(now)
        {
            said.push(output_event(
                now,
                Observation::JobFault {
                    said: words.clone(),
                },
            ));
            said.push(output_line(words));
        }
        Ok(said)
    }

    /// What Slurm's record of the job says (`scontrol -o show job`'s
    /// text; empty: Slurm forgot it): the read's health, the job's state,
    /// and an output file that moved.
    fn take_record(&mut self, record: &Answer, now: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let observation = match record.result() {
            Ok(text) => Some(match merge_job_records(text) {
                Some(info) => self.take_in(info),
                None => Observation::JobGone,
            }),
            Err(_) => None,
        };
        match &observation {
            Some(Observation::Job { state, .. }) => self.running = state.is_running(),
            Some(_) => self.running = false,
            // An unanswered read changes nothing known.
            None => {}
        }
        let error = observation.is_none().then(|| "squeue failed".to_owned());
        let mut said = vec![Said::Health(error)];
        if let Some(observation) = observation {
            said.push(self.state_said(observation, now));
        }
        if let Some(words) = self.moved.take() {
            started_again(&mut said, now, words);
        }
        said
    }

    /// What the output's news say, in order.
    fn said_output(&self, news: Vec<OutputEvent>, now: chrono::DateTime<chrono::Utc>) -> Vec<Said> {
        let mut said = Vec::new();
        for news in news {
            match news {
                OutputEvent::Rewritten {
                    was,
                    now: size,
                    shorter,
                    head_changed,
                } => {
                    let words = format!(
                        "output {} rewritten ({}): read again from its start (Slurm truncates a requeued job's output unless JobFileAppend=1 or --open-mode=append)",
                        self.job.output.as_deref().unwrap_or("-"),
                        if shorter {
                            format!("{size} bytes, shorter than the {was} read")
                        } else if head_changed {
                            "its first bytes changed".to_owned()
                        } else {
                            "the bytes before where it was read to changed, though it starts as before".to_owned()
                        }
                    );
                    started_again(&mut said, now, words);
                }
                OutputEvent::Update(update) => {
                    if let Some(from) = update.resumed {
                        said.push(output_event(
                            now,
                            Observation::JobRestarted {
                                from,
                                said: update.text.clone(),
                            },
                        ));
                    }
                    // The fault at the time its line says (PyTorch's log
                    // prefix), not when the output was read; the line is
                    // journaled with it.
                    let logged = update
                        .fault
                        .then(|| super::job_output::log_time(&update.text, self.utc_offset, now))
                        .flatten();
                    if update.fault {
                        said.push(Said::Event(Event {
                            seen: now,
                            source_time: logged,
                            source: SourceName::JobOutput,
                            observation: Observation::JobFault {
                                said: update.text.clone(),
                            },
                        }));
                    }
                    if let Some(Some(step)) = update.checkpoint {
                        said.push(output_event(now, Observation::Checkpoint { step }));
                    }
                    if let Some(step) = update.step {
                        said.push(output_event(
                            now,
                            Observation::Progress {
                                step: step.value,
                                exact: step.exact,
                            },
                        ));
                    }
                    if update.auto_resume
                        || update.fault
                        || update.resumed.is_some()
                        || update.checkpoint.is_some()
                        || update.text.contains("resumed")
                        || update.text.contains("auto-resume")
                    {
                        let mut line = output_line(update.text);
                        if let Said::Record(Entry::Observed { source_time, .. }) = &mut line {
                            *source_time = logged;
                        }
                        said.push(line);
                    }
                }
            }
        }
        said
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
                self.moved = Some(format!(
                    "output moved to {path} (was {old}): the job's StdOut names another file now (a requeue on another batch host, `%N`); read from its start"
                ));
            }
            self.job.restart_reading();
        }
        // Output on a node's own disk (not on shared storage): a requeue
        // onto another batch host writes a new file there, read from its
        // start.
        if placed
            && let (Some(on), Some(host)) = (&self.job.read_on, &info.batch_host)
            && on.name != *host
        {
            self.moved = Some(format!(
                "output {} now read on {host} (was {}): the job's batch host moved and the file is on its local disk; read from its start",
                self.job.output.as_deref().unwrap_or("-"),
                on.name
            ));
            self.job.read_on = Some(crate::cluster::ssh::Endpoint::of_node_in(
                &self.addresses,
                host,
            ));
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
        let nodes = match info.node_list.trim() {
            "" => Vec::new(),
            list => crate::cluster::hostlist::expand(list).unwrap_or_default(),
        };
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
    pub(crate) fn cost(&self, closing: &Closing<'_>) -> Vec<Said> {
        let resumed = closing
            .judgement
            .phases
            .iter()
            .find(|p| p.phase == Phase::Resume)
            .and_then(|p| p.ended.as_ref())
            .map(|b| b.at);
        let Some(resumed) = resumed else {
            return Vec::new();
        };
        let Some(gpus) = self.job.gpus.clone() else {
            return vec![Said::Record(Entry::Observed {
                source: SourceName::Harness,
                node: None,
                field: "cost".into(),
                from: None,
                to: "GPU-hours not computed: the job's AllocTRES lists no GPUs; set slurm.gpus_per_node in the profile".into(),
                source_time: None,
            })];
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
        let mut said = vec![Said::Record(Entry::FailureCost { cost })];
        // Requeued before the run: its StartTime is its last start, and
        // its life before that is not in the window (Slurm keeps no
        // earlier start without accounting).
        if self.job.restarts_before > 0 {
            said.push(Said::Record(Entry::Observed {
                source: SourceName::Harness,
                node: None,
                field: "cost".into(),
                from: None,
                to: format!(
                    "the ETTR window starts at the job's last start: it had been requeued {} time(s) before this run, and Slurm keeps no earlier start without accounting",
                    self.job.restarts_before
                ),
                source_time: None,
            }));
        }
        said
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
            self.view.utc_offset = self.slurm.utc_offset().await;
            let record = Answer::of(&self.slurm.job_text(self.view.job.id).await);
            let now = cx.clock.now();
            let said = self.view.take_record(&record, now);
            let mut chunks = Vec::new();
            let news = self
                .view
                .job
                .read_progress(&self.slurm, now, &mut chunks)
                .await;
            let said = timed_faults_first(said, self.view.said_output(news, now));
            cx.record(now, || Raw::Squeue {
                record,
                chunks: chunks.iter().map(|(at, c)| Chunk::of(*at, c)).collect(),
            });
            said
        })
    }

    fn close<'b>(&'b mut self, closing: &'b Closing<'b>) -> BoxFuture<'b, Vec<Said>> {
        Box::pin(std::future::ready(
            self.view.cost(closing).into_iter().collect(),
        ))
    }
}

/// What one read said: Slurm's record of the job (`record`), then its
/// output (`output`), but a fault the output timed itself (a PyTorch log
/// line) first: both were read at once, and the line's own time comes
/// before the state Slurm shows (the watchdog's line, then the step
/// failing): taken first, it is the detection at its own time.
fn timed_faults_first(record: Vec<Said>, output: Vec<Said>) -> Vec<Said> {
    let (faults, rest): (Vec<Said>, Vec<Said>) = output.into_iter().partition(|s| {
        matches!(
            s,
            Said::Event(Event {
                observation: Observation::JobFault { .. },
                source_time: Some(_),
                ..
            })
        )
    });
    faults.into_iter().chain(record).chain(rest).collect()
}

/// A progress event the job's output gave, seen `now`.
fn output_event(now: chrono::DateTime<chrono::Utc>, observation: Observation) -> Said {
    Said::Event(Event {
        seen: now,
        source_time: None,
        source: SourceName::JobOutput,
        observation,
    })
}

/// A line of the job's output worth keeping, as a journal record.
fn output_line(text: String) -> Said {
    Said::Record(Entry::Observed {
        source: SourceName::JobOutput,
        node: None,
        field: "line".into(),
        from: None,
        to: text,
        source_time: None,
    })
}

/// A new file, or the same one rewritten: the journal says so, and it is
/// the job's word that it started again.
fn started_again(said: &mut Vec<Said>, now: chrono::DateTime<chrono::Utc>, words: String) {
    said.push(output_line(words.clone()));
    said.push(output_event(
        now,
        Observation::JobRestarted {
            from: None,
            said: words,
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, batch_host: &str) -> Answer {
        Answer::Ok(format!(
            "JobId=7 JobName=train JobState={state} Restarts=1 StartTime=2026-11-28T09:20:00 NodeList={batch_host} BatchHost={batch_host} NumNodes=1 StdOut=/tmp/train-7.out\n"
        ))
    }

    /// Output on a node's own disk follows the job to its new batch host
    /// after a requeue, read from its start, and says so once; a pending
    /// job (no host yet) moves nothing.
    #[test]
    fn output_on_a_local_disk_follows_the_batch_host() {
        let mut job = WorkloadJob::new(7, None);
        job.output = Some("/tmp/train-7.out".into());
        job.read_on = Some(crate::cluster::ssh::Endpoint::of_node_in(
            &Default::default(),
            "ip-10-1-0-11",
        ));
        job.offset = 4096;
        let mut addresses = std::collections::BTreeMap::new();
        addresses.insert("ip-10-1-0-13".to_owned(), "10.1.0.13".to_owned());
        let mut view = JobView::new(&mut job, None, addresses);
        let now = chrono::DateTime::UNIX_EPOCH;
        let said = view.take_record(
            &Answer::Ok(
                "JobId=7 JobName=train JobState=PENDING Restarts=1 NodeList=(null) StdOut=/tmp/train-7.out\n"
                    .into(),
            ),
            now,
        );
        assert_eq!(said.len(), 2, "{said:?}");
        let said = view.take_record(&record("RUNNING", "ip-10-1-0-13"), now);
        let words: Vec<String> = said
            .iter()
            .filter_map(|s| match s {
                Said::Record(Entry::Observed { to, .. }) => Some(to.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(words.len(), 1, "{said:?}");
        assert!(
            words[0].contains("now read on ip-10-1-0-13 (was ip-10-1-0-11)"),
            "{words:?}"
        );
        assert!(said.iter().any(|s| matches!(
            s,
            Said::Event(Event {
                observation: Observation::JobRestarted { .. },
                ..
            })
        )));
        let on = view.job.read_on.clone().unwrap();
        assert_eq!(
            (on.name.as_str(), on.address.as_str()),
            ("ip-10-1-0-13", "10.1.0.13")
        );
        assert_eq!(view.job.offset, 0);
        // Read again on the same host: nothing more is said.
        let again = view.take_record(&record("RUNNING", "ip-10-1-0-13"), now);
        assert_eq!(again.len(), 2, "{again:?}");
    }

    /// A fault line of the job's is judged at the time its PyTorch prefix
    /// gives (in the nodes' offset from UTC), not when it was read; one
    /// without a prefix at when it was read.
    #[test]
    fn a_watchdog_line_is_a_fault_at_its_own_time() {
        use crate::observe::job_output::Update;
        let mut job = WorkloadJob::new(7, None);
        let mut view = JobView::new(&mut job, None, Default::default());
        view.utc_offset = chrono::FixedOffset::west_opt(5 * 3600).unwrap();
        let read = chrono::DateTime::parse_from_rfc3339("2026-12-03T13:41:15Z")
            .unwrap()
            .to_utc();
        let lines = [
            "[rank1]:[E1203 08:41:07.918273645 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600010 milliseconds before timing out.",
            "OSError: [Errno 28] No space left on device",
        ];
        let news = lines
            .iter()
            .map(|l| OutputEvent::Update(Update::of(l, None)))
            .collect();
        let said = view.said_output(news, read);
        let journaled: Vec<_> = said
            .iter()
            .filter_map(|s| match s {
                Said::Record(Entry::Observed { source_time, .. }) => Some(*source_time),
                _ => None,
            })
            .collect();
        let times: Vec<_> = said
            .into_iter()
            .filter_map(|s| match s {
                Said::Event(Event {
                    observation: Observation::JobFault { .. },
                    source_time,
                    seen,
                    ..
                }) => Some((source_time, seen)),
                _ => None,
            })
            .collect();
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T13:41:07Z")
            .unwrap()
            .to_utc();
        assert_eq!(times, vec![(Some(at), read), (None, read)]);
        // Each line journaled, with the time it gives.
        assert_eq!(journaled, vec![Some(at), None]);
    }

    /// A checkpoint line is said as the checkpoint's step (what a
    /// restart goes back to); other lines are not.
    #[test]
    fn a_checkpoint_line_is_said_with_its_step_and_kept() {
        use crate::observe::job_output::Patterns;
        use crate::scenario::model::Progress;
        let patterns = Patterns::of(&Progress::canary_default()).unwrap();
        let mut job = WorkloadJob::new(7, Some(Patterns::of(&Progress::canary_default()).unwrap()));
        let view = JobView::new(&mut job, None, Default::default());
        let now = chrono::DateTime::UNIX_EPOCH;
        let news = [
            "step 40",
            "checkpoint saved at step 40 on ip-10-1-0-11",
            "step 41",
        ]
        .iter()
        .map(|l| OutputEvent::Update(crate::observe::job_output::Update::of(l, Some(&patterns))))
        .collect();
        let checkpoints: Vec<u64> = view
            .said_output(news, now)
            .iter()
            .filter_map(|s| match s {
                Said::Event(Event {
                    observation: Observation::Checkpoint { step },
                    ..
                }) => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(checkpoints, vec![40]);
    }

    /// A fault line that gives its own time comes before Slurm's record
    /// of the same read (the detection at the line's time, not the step's
    /// failure at the read's); one without a time keeps its place.
    #[test]
    fn a_timed_fault_goes_before_the_record_read_with_it() {
        let now = chrono::DateTime::UNIX_EPOCH;
        let event = |observation, source_time| {
            Said::Event(Event {
                seen: now,
                source_time,
                source: SourceName::JobOutput,
                observation,
            })
        };
        let fault = |timed: bool| {
            event(
                Observation::JobFault {
                    said: "Watchdog".into(),
                },
                timed.then_some(now - chrono::TimeDelta::seconds(2)),
            )
        };
        let record = vec![event(Observation::JobGone, None)];
        let kinds = |said: Vec<Said>| -> Vec<String> {
            said.iter()
                .map(|s| match s {
                    Said::Event(e) => {
                        let kind = match e.observation {
                            Observation::JobFault { .. } => "job-fault",
                            Observation::JobGone => "job",
                            Observation::Progress { .. } => "progress",
                            _ => "event",
                        };
                        format!("{kind}{}", if e.source_time.is_some() { "@" } else { "" })
                    }
                    _ => "other".into(),
                })
                .collect()
        };
        let said = timed_faults_first(
            record.clone(),
            vec![
                output_line("x".into()),
                fault(true),
                event(
                    Observation::Progress {
                        step: 3,
                        exact: true,
                    },
                    None,
                ),
            ],
        );
        assert_eq!(kinds(said), ["job-fault@", "job", "other", "progress"]);
        let said = timed_faults_first(record, vec![fault(false)]);
        assert_eq!(kinds(said), ["job", "job-fault"]);
    }

    fn stalls(said: &[Said]) -> Vec<String> {
        said.iter()
            .filter_map(|s| match s {
                Said::Event(Event {
                    observation: Observation::JobFault { said },
                    ..
                }) => Some(said.clone()),
                _ => None,
            })
            .collect()
    }

    /// `progress.stalled_after`: no new step for that long while the job
    /// runs is said once per stall, as the job's fault; a bar redrawing the
    /// same step is no progress; a pending job, or one that moves on, is
    /// not stalled; a later stall is said again.
    #[test]
    fn a_job_whose_progress_stops_is_said_stalled_once() {
        use crate::observe::job_output::Patterns;
        use crate::scenario::model::Progress;
        let patterns = Patterns::of(&Progress {
            stalled_after: Some("30s".parse().unwrap()),
            ..Progress::canary_default()
        })
        .unwrap();
        let t0 = chrono::DateTime::UNIX_EPOCH;
        let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
        let mut job = WorkloadJob::new(7, Some(patterns));
        // Step 40 first seen at 10 s, redrawn at 20 s.
        job.steps_seen = vec![(at(0), 39), (at(10), 40), (at(20), 40)];
        let mut view = JobView::new(&mut job, None, Default::default());
        let read = |state: &str| Raw::Squeue {
            record: record(state, "ip-10-1-0-11"),
            chunks: Vec::new(),
        };
        // 29 s after step 40 first showed: not yet.
        assert!(stalls(&view.decode(&read("RUNNING"), at(39)).unwrap()).is_empty());
        // A pending job makes no progress: not a stall.
        assert!(stalls(&view.decode(&read("PENDING"), at(45)).unwrap()).is_empty());
        let said = stalls(&view.decode(&read("RUNNING"), at(41)).unwrap());
        assert_eq!(
            said,
            vec!["progress stalled: no step after 40 for 31 s (progress.stalled_after 30s)"]
        );
        // Once per stall.
        assert!(stalls(&view.decode(&read("RUNNING"), at(90)).unwrap()).is_empty());
        // The job moves on, then stops again: said again.
        view.job.steps_seen.push((at(95), 41));
        assert!(stalls(&view.decode(&read("RUNNING"), at(100)).unwrap()).is_empty());
        let said = stalls(&view.decode(&read("RUNNING"), at(126)).unwrap());
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("after 41 for 31 s"), "{said:?}");
    }

    /// Without `stalled_after` no stall is watched, however long.
    #[test]
    fn without_stalled_after_no_stall_is_said() {
        use crate::observe::job_output::Patterns;
        use crate::scenario::model::Progress;
        let mut job = WorkloadJob::new(7, Some(Patterns::of(&Progress::canary_default()).unwrap()));
        let t0 = chrono::DateTime::UNIX_EPOCH;
        job.steps_seen = vec![(t0, 3)];
        let mut view = JobView::new(&mut job, None, Default::default());
        let read = Raw::Squeue {
            record: record("RUNNING", "ip-10-1-0-11"),
            chunks: Vec::new(),
        };
        let said = view
            .decode(&read, t0 + chrono::TimeDelta::hours(5))
            .unwrap();
        assert!(stalls(&said).is_empty(), "{said:?}");
    }
}
