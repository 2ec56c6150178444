//! Watching a fault play out: reads the sources (`observe/`) each at its
//! own interval, journals what they say (a change, a line, a source that
//! fails and comes back), judges the phases after each cycle and journals
//! their boundaries as they are decided, until the judgement settles, an
//! abort condition holds or the run is stopped. Owns the scheduling, the
//! `select!`, the judging and the journaling; the sources' reading and
//! decoding are theirs (`observe/`). Two things the watch still does
//! itself, each a reaction to what was seen, not a source: the fault's
//! follow-up steps at their time (`follow_up`), and the host key of a node
//! HyperPod replaced, read from the head (`accept_replacement_key`).

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};

use crate::faults;
use crate::journal::{Entry, PhaseVerdict, ScenarioOutcome, Source, TimeSource};
use crate::live::Standing;
use crate::monitoring::{Monitor, stop};
use crate::observe::{self, Closing, Cx, Said};
use crate::phases::{self, Baseline, Event, Expectation, Judgement};
use crate::scenario::model::{Abort, Phase, Scenario};

use super::{Ending, Runner, WorkloadJob};

/// The sources one watch reads, in the order what they say is taken in:
/// the controller log first (its lines carry millisecond times, and an
/// event seen first in a poll is judged first), then sinfo, the API, the
/// boots (after the API: when both show a reboot in one poll, the
/// LaunchTime's milliseconds close it), the job, the monitoring.
pub(super) type Sources<'a> = Vec<Box<dyn observe::Source + 'a>>;

/// The rules of one watch, from the scenario and the profile.
pub(super) struct Rules {
    expectation: Expectation,
    /// The phases in order (the expectation's).
    order: Vec<Phase>,
    abort: Abort,
    /// The abort timeout, as a time.
    limit: Option<DateTime<Utc>>,
    /// Past this, open phases are not reached: the last deadline plus five
    /// minutes (half an hour when nothing has a deadline).
    give_up: DateTime<Utc>,
    /// The longest sleep between cycles: the shortest interval of a
    /// cluster source (at least 50 ms).
    poll: StdDuration,
    /// Abort probes run at sinfo's interval.
    probe_every: StdDuration,
    /// The mark HyperPod should set (`expect.reason`, else the
    /// recovery's: `Action:Replace`, `Action:Reboot`).
    reason: Option<String>,
}

impl Rules {
    pub(super) fn of(
        scenario: &Scenario,
        injected_at: DateTime<Utc>,
        workload: bool,
        poll: &crate::profile::Poll,
    ) -> Rules {
        let expectation = Expectation {
            recovery: scenario.expect.recovery,
            phases: scenario.expect.phases(workload),
            deadlines: scenario.expect.deadlines.set(),
            quiet_for: scenario.expect.quiet_for,
            max_lost_steps: scenario.expect.max_lost_steps,
        };
        let last_deadline = expectation
            .deadlines
            .values()
            .max()
            .copied()
            .or(expectation.quiet_for);
        let bound = last_deadline.map_or(StdDuration::from_secs(1800), |d| {
            d.as_std() + StdDuration::from_secs(300)
        });
        let abort = scenario.abort.clone().unwrap_or(Abort {
            max_unhealthy_nodes: None,
            timeout: None,
            probes: Vec::new(),
            when: Vec::new(),
        });
        Rules {
            order: expectation.phases.clone(),
            limit: abort.timeout.map(|t| injected_at + t.as_chrono()),
            abort,
            give_up: injected_at
                + chrono::TimeDelta::from_std(bound).unwrap_or(chrono::TimeDelta::MAX),
            poll: poll
                .slurm
                .as_std()
                .min(poll.sagemaker.as_std())
                .min(poll.job_output.as_std())
                .max(StdDuration::from_millis(50)),
            probe_every: poll.slurm.as_std(),
            reason: scenario.expect.reason.clone().or(scenario
                .expect
                .recovery
                .default_reason()
                .map(str::to_owned)),
            expectation,
        }
    }
}

/// What a watch has taken in so far, across cycles.
#[derive(Default)]
pub(super) struct Seen {
    events: Vec<Event>,
    /// The last value said per source, node and field (see `note_change`).
    last: BTreeMap<String, String>,
    /// Sources whose reads are failing, since when.
    failing_since: BTreeMap<&'static str, DateTime<Utc>>,
    /// Unhealthy nodes at the last count.
    unhealthy: usize,
    /// Failures the sources' last words added.
    failed: Vec<String>,
    /// Phases journaled as ended, for the scenario and per target.
    journaled: usize,
    node_journaled: BTreeMap<String, usize>,
}

impl Runner {
    /// Watches the fault play out over the cluster's sources until the
    /// judgement settles, an abort condition holds, or the run is stopped.
    pub(super) async fn watch(
        &mut self,
        scenario: &Scenario,
        watched: Watched<'_>,
        workload: Option<&mut WorkloadJob>,
    ) -> Ending {
        let job = workload.as_ref().map(|w| w.id);
        if job.is_some() {
            self.note_requeue_delay(&scenario.name).await;
        }
        self.start_recording(scenario, &watched, workload.as_deref())
            .await;
        let (sources, said) = self.sources(scenario, &watched, workload).await;
        let ending = self.observe(scenario, &watched, sources, said, job).await;
        self.finish_recording(&scenario.name, &ending);
        ending
    }

    /// The sources a scenario's watch reads (see [`Sources`]), and what
    /// they said on opening.
    async fn sources<'a>(
        &mut self,
        scenario: &Scenario,
        watched: &Watched<'_>,
        workload: Option<&'a mut WorkloadJob>,
    ) -> (Sources<'a>, Vec<Said>) {
        let profile = &self.cluster.profile;
        let targets = &watched.baseline.targets;
        let slurm = self.cluster.slurm.clone();
        let every = profile.poll.slurm.as_std();
        // The light touch on slurmctld (see observe::Quiet).
        let quiet = std::sync::Arc::new(observe::Quiet::default());
        let floor = Some(profile.poll.slurm_when_quiet.as_std()).filter(|f| !f.is_zero());
        let touch = || observe::Touch::new(every, floor, Some(quiet.clone()));
        let (log, said) = observe::controller_log::ControllerLog::open(
            slurm.clone(),
            profile.slurm.controller_log.clone(),
            watched.controller_log,
            targets,
            every,
            profile.slurm.follow_controller_log,
            quiet.clone(),
        )
        .await;
        let count_cluster = scenario
            .abort
            .as_ref()
            .is_some_and(|a| a.max_unhealthy_nodes.is_some());
        let mut sources: Sources<'a> = vec![
            Box::new(log),
            Box::new(observe::slurm_nodes::SlurmNodes::new(
                slurm.clone(),
                targets,
                touch(),
                count_cluster,
                watched.baseline.unhealthy_before.clone(),
            )),
        ];
        let mut said = said;
        if let Some(api) = self.cluster.api.clone() {
            match hma_source(&api, watched, profile.poll.sagemaker.as_std()).await {
                Ok(hma) => sources.push(Box::new(hma)),
                Err(why) => said.push(observe::note(Source::Hma, why)),
            }
            sources.push(Box::new(observe::api::Api::new(
                api,
                targets,
                profile.poll.sagemaker.as_std(),
                watched.baseline.instance_ids.clone(),
                watched.injected_at,
                matches!(
                    scenario.fault,
                    crate::scenario::model::Fault::DeepHealthCheck(_)
                ),
            )));
        }
        if scenario
            .expect
            .phases(workload.is_some())
            .contains(&Phase::Reboot)
        {
            sources.push(Box::new(observe::boots::Boots::new(
                slurm.clone(),
                targets,
                touch(),
            )));
        }
        if scenario
            .expect
            .phases(workload.is_some())
            .contains(&Phase::Takeover)
        {
            sources.push(Box::new(observe::controllers::Controllers::new(
                slurm.clone(),
                every,
                self.clock.clone(),
            )));
        }
        if let Some(job) = workload {
            sources.push(Box::new(observe::job::Job::new(
                slurm,
                job,
                profile.poll.job_output.as_std(),
                profile.slurm.gpus_per_node,
                profile.addresses.clone(),
            )));
        }
        let monitor = Monitor::new(&scenario.expect.monitoring, targets, watched.injected_at);
        if let Some(monitor) = monitor {
            sources.push(Box::new(observe::monitoring::Monitoring::new(
                monitor,
                self.monitoring_client().clone(),
                profile.monitoring.clone(),
                profile.addresses.clone(),
            )));
        }
        (sources, said)
    }

    /// The watch loop over `sources` (any: the cluster's, or a stub's in
    /// the unit tests); `job` is the workload's id, for follow-ups and
    /// abort probes. `said` is what the sources said on opening.
    pub(super) async fn observe(
        &mut self,
        scenario: &Scenario,
        watched: &Watched<'_>,
        mut sources: Sources<'_>,
        said: Vec<Said>,
        job: Option<u64>,
    ) -> Ending {
        let name = scenario.name.as_str();
        let injected_at = watched.injected_at;
        let rules = Rules::of(
            scenario,
            injected_at,
            job.is_some(),
            &self.cluster.profile.poll,
        );
        self.log(
            Some(name),
            Entry::PhaseStarted {
                phase: rules.order[0],
                started_at: injected_at,
                deadline: rules.expectation.deadlines.get(&rules.order[0]).copied(),
            },
        );
        let mut seen = Seen::default();
        self.take_in(name, &mut seen, Source::SlurmctldLog, said)
            .await;
        let mut follow_up_done = watched.plan.follow_up.is_none();
        let stops = Self::stop_conditions(scenario, &watched.baseline.targets);
        let mut blindness = stop::Blindness::default();
        let mut next_probe = Instant::now();
        let mut settled = false;
        loop {
            if self.stopping() {
                sources.iter_mut().for_each(|s| s.stop());
                self.say_stop_request(Some(name));
                let mut why = match rules.order.get(seen.journaled) {
                    Some(phase) => format!("interrupted during the {phase} phase"),
                    None => "interrupted while waiting for the monitoring".to_owned(),
                };
                // What was seen already that the scenario cannot pass with.
                if let Some(expected) = &rules.reason
                    && let Some(mark) = phases::wrong_mark(watched.judged, expected, &seen.events)
                {
                    why = format!("{why}; {mark}");
                }
                return Ending::new(ScenarioOutcome::Interrupted, why);
            }
            if !follow_up_done {
                follow_up_done = self.follow_up(name, watched, job).await;
            }
            let tick = Instant::now();
            let read_sinfo = self
                .read_sources(name, &mut sources, &mut seen, settled)
                .await;
            // This cycle's reads are done: counted for `watch_cost`.
            self.cycles.count += 1;
            if read_sinfo {
                let wall = tick.elapsed().as_secs_f64() * 1000.0;
                self.cycles.slurm_walls.push(wall);
                self.cycles.slurm_starts.push(tick);
            }
            let now = self.clock.now();
            let judgement = self.judge(name, watched, &rules, &mut seen, now);
            let probes_due = tick >= next_probe;
            if probes_due {
                next_probe = tick + rules.probe_every;
            }
            // A compound scenario's later steps: judged, or injected when
            // their trigger comes.
            let steps_settled = self.later.is_empty()
                || self
                    .steps_cycle(
                        name,
                        (injected_at, &judgement),
                        watched.baseline,
                        &seen.events,
                        now,
                        probes_due,
                        job,
                    )
                    .await;
            // Something happened (a phase ended, by whatever source saw
            // it): the node table is read every poll from now on.
            if seen.journaled > 0 {
                sources.iter().for_each(|s| s.stir());
            }
            settled = judgement.settled && steps_settled;
            if settled && sources.iter().all(|s| s.settled(now)) {
                return self
                    .close(scenario, injected_at, &mut sources, &mut seen, judgement)
                    .await;
            }
            let timed_out = rules.limit.is_some_and(|l| now > l);
            let (abort, baseline) = (&rules.abort, watched.baseline);
            let mut reason = self
                .abort_reason(abort, seen.unhealthy, timed_out, baseline, job, probes_due)
                .await;
            // The stop conditions, with the probes (every Slurm poll).
            if reason.is_none() && probes_due && !stops.is_empty() {
                let reading = self.read_stop_conditions(&stops).await;
                let (new, blind) = blindness.take(&reading, now, stop::BLIND_LIMIT);
                for (condition, error) in new {
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::Harness,
                            node: None,
                            field: "stop_condition".into(),
                            from: None,
                            to: format!("{condition} cannot be read: {error}"),
                            source_time: None,
                        },
                    );
                }
                reason = reading.holds.map(|h| h.words()).or(blind);
            }
            if let Some(reason) = reason {
                sources.iter_mut().for_each(|s| s.stop());
                self.log(
                    Some(name),
                    Entry::Aborted {
                        reason: reason.clone(),
                    },
                );
                return Ending::new(ScenarioOutcome::Aborted, reason);
            }
            self.show_standing(name, &rules, &seen, now - injected_at);
            self.sleep(&mut sources, settled, rules.poll).await;
        }
    }

    /// The plan's follow-up steps, once their time after the injection
    /// came (a kill cannot be undone: its intent has no undo); each
    /// journaled with how it went. Whether they are done.
    async fn follow_up(&mut self, name: &str, watched: &Watched<'_>, job: Option<u64>) -> bool {
        let Some((after, steps)) = &watched.plan.follow_up else {
            return true;
        };
        if self.clock.now() < watched.injected_at + after.as_chrono() {
            return false;
        }
        for step in steps {
            let result = match self.write_ahead(name, step.describe(), Vec::new()).await {
                Ok(_) => self.execute(step, job).await.map_err(|e| e.to_string()),
                Err(reason) => Err(reason.to_string()),
            };
            // What the step said it did (the quota lifted, the processes
            // moved back), or why it failed: the later rollback finds it
            // done and says only "nothing to undo".
            let done = match result {
                Ok(said) if said.trim().is_empty() => "done".to_owned(),
                Ok(said) => format!("done ({})", said.trim()),
                Err(why) => why,
            };
            self.log(
                Some(name),
                Entry::Observed {
                    source: Source::Harness,
                    node: None,
                    field: "follow_up".into(),
                    from: None,
                    to: format!("{}: {done}", step.describe()),
                    source_time: None,
                },
            );
        }
        true
    }

    /// Reads the sources due (concurrently; once the phases settled, only
    /// those that outlast them) and takes in what they said, in the
    /// sources' order; when one saw a change, the sources that explain
    /// changes are read again at once. Whether sinfo was read.
    async fn read_sources(
        &mut self,
        name: &str,
        sources: &mut Sources<'_>,
        seen: &mut Seen,
        settled: bool,
    ) -> bool {
        let now = Instant::now();
        let due: Vec<bool> = sources
            .iter()
            .map(|s| (!settled || s.outlasts_phases()) && s.due(now))
            .collect();
        let cx = Cx {
            clock: self.clock.clone(),
            again: false,
            cycle: self.cycles.count,
            tape: self.tape.clone(),
        };
        let reads = sources
            .iter_mut()
            .zip(&due)
            .filter(|(_, due)| **due)
            .map(|(source, _)| source.read(&cx));
        let said = futures::future::join_all(reads).await;
        let read: Vec<usize> = (0..sources.len()).filter(|i| due[*i]).collect();
        let mut changed = false;
        for (i, said) in read.iter().zip(said) {
            let before = seen.events.len();
            self.take_in(name, seen, sources[*i].name(), said).await;
            changed |= !sources[*i].explains_changes() && seen.events.len() > before;
        }
        if changed {
            let cx = Cx { again: true, ..cx };
            for source in sources.iter_mut().filter(|s| s.explains_changes()) {
                let said = source.read(&cx).await;
                let name_of = source.name();
                self.take_in(name, seen, name_of, said).await;
            }
        }
        read.iter().any(|i| sources[*i].name() == Source::Sinfo)
    }

    /// Journals what a source said and keeps its events for judging: a
    /// value only when it changed, a health record when the source fails
    /// or comes back; a mark starts the evidence, a replacement the host
    /// key's acceptance.
    async fn take_in(&mut self, name: &str, seen: &mut Seen, source: Source, said: Vec<Said>) {
        for item in said {
            match item {
                Said::Value {
                    source,
                    node,
                    field,
                    value,
                    source_time,
                    event,
                } => {
                    let change = Change {
                        source,
                        node: node.as_deref(),
                        field: &field,
                        source_time,
                    };
                    if self.note_change(name, &mut seen.last, change, value) {
                        seen.events.extend(event);
                    }
                }
                Said::Event(event) => seen.events.push(event),
                Said::Record(entry) => self.log(Some(name), entry),
                Said::Health(error) => {
                    self.note_source_health(name, &mut seen.failing_since, source, error.as_ref());
                }
                Said::Evidence { node, why } => self.start_evidence(name, &node, &why),
                Said::Replaced { node, instance_id } => {
                    // Only for connections hpchaos checks itself: from the
                    // head, the head's client does (`ssh.compute`).
                    if self.cluster.profile.ssh.accept_replaced_host_keys
                        && !self.replaying
                        && self.cluster.ssh.checks_node_keys()
                        && !self.accepted_instances.contains(&instance_id)
                    {
                        self.accept_replacement_key(name, &node, &instance_id).await;
                    }
                }
                Said::Unhealthy(count) => seen.unhealthy = count,
                Said::Failed(why) => seen.failed.push(why),
            }
        }
    }

    /// Judges the phases on what was seen and journals their boundaries as
    /// they are decided (each target's too, with several). A dropped mark
    /// is only called while the API answers: a failing API could be hiding
    /// HyperPod's recovery.
    fn judge(
        &mut self,
        name: &str,
        watched: &Watched<'_>,
        rules: &Rules,
        seen: &mut Seen,
        now: DateTime<Utc>,
    ) -> Judgement {
        let (mut judgement, per_node) = phases::judge_scenario(
            watched.injected_at,
            watched.judged,
            &rules.expectation,
            &seen.events,
            now,
            now > rules.give_up,
        );
        // HyperPod acted, but not as expected (`expect.reason`, else the
        // recovery's own mark): the scenario fails, with the mark it set.
        if let Some(expected) = &rules.reason
            && let Some(why) = phases::wrong_mark(watched.judged, expected, &seen.events)
            && judgement.settled
        {
            judgement.passed = false;
            judgement.reason = match judgement.reason.is_empty() {
                true => why,
                false => format!("{why}; {}", judgement.reason),
            };
        }
        if judgement.open_because.is_some()
            && seen.failing_since.contains_key(Source::Sagemaker.as_str())
        {
            judgement.open_because = None;
            judgement.settled = false;
            judgement.passed = false;
            for phase in judgement.phases.iter_mut().filter(|p| p.ended.is_none()) {
                phase.verdict = None;
            }
        }
        if watched.judged.targets.len() > 1 {
            for (node, own) in &per_node {
                let done = seen.node_journaled.entry(node.clone()).or_insert(0);
                while let Some(result) = own.phases.get(*done).filter(|p| p.verdict.is_some()) {
                    if let Some(end) = &result.ended {
                        self.log(
                            Some(name),
                            Entry::NodePhaseEnded {
                                node: node.clone(),
                                phase: result.phase,
                                ended_at: end.at,
                                verdict: result.verdict.unwrap_or(PhaseVerdict::Observed),
                                time_source: end.time_source,
                                evidence: end.evidence.clone(),
                            },
                        );
                    }
                    *done += 1;
                }
            }
        }
        while let Some(result) = judgement.phases.get(seen.journaled) {
            let (Some(end), Some(verdict)) = (&result.ended, result.verdict) else {
                break;
            };
            let lost_steps = matches!(result.phase, Phase::Resume | Phase::JobEnd)
                .then_some(judgement.lost_steps)
                .flatten();
            self.log(
                Some(name),
                Entry::PhaseEnded {
                    phase: result.phase,
                    ended_at: end.at,
                    verdict,
                    time_source: end.time_source,
                    evidence: end.evidence.clone(),
                    lost_steps,
                },
            );
            seen.journaled += 1;
            if let Some(next) = rules.order.get(seen.journaled) {
                self.log(
                    Some(name),
                    Entry::PhaseStarted {
                        phase: *next,
                        started_at: end.at,
                        deadline: rules.expectation.deadlines.get(next).copied(),
                    },
                );
            }
        }
        judgement
    }

    /// Ends a settled watch: the phase still open journaled as not
    /// reached, the sources' last words taken in (the failure's cost, the
    /// monitoring's verdicts), the regression gates judged; the outcome.
    async fn close(
        &mut self,
        scenario: &Scenario,
        injected_at: DateTime<Utc>,
        sources: &mut Sources<'_>,
        seen: &mut Seen,
        judgement: Judgement,
    ) -> Ending {
        let name = scenario.name.as_str();
        // The watch ends now; what a last look finds after is journaled,
        // its time not counted in the watch.
        let now = self.clock.now();
        // Each source's last look, together, before they stop: what
        // happened before the end and would be read only after it. A stop
        // (Ctrl-C, the lease lost) cuts it short.
        let cx = Cx {
            clock: self.clock.clone(),
            again: false,
            cycle: self.cycles.count,
            tape: self.tape.clone(),
        };
        let names: Vec<Source> = sources.iter().map(|s| s.name()).collect();
        let mut cancel = self.cancel.clone();
        let looks = if self.stopping() {
            None
        } else {
            tokio::select! {
                looks = futures::future::join_all(sources.iter_mut().map(|s| s.last_look(&cx))) => Some(looks),
                _ = cancel.changed() => None,
            }
        };
        for (source_name, said) in names.into_iter().zip(looks.unwrap_or_default()) {
            self.take_in(name, seen, source_name, said).await;
        }
        sources.iter_mut().for_each(|s| s.stop());
        if let Some(result) = judgement
            .phases
            .get(seen.journaled)
            .filter(|p| p.ended.is_none())
        {
            let evidence = judgement
                .open_because
                .clone()
                .unwrap_or_else(|| "not seen before its deadline".into());
            self.log(
                Some(name),
                Entry::PhaseEnded {
                    phase: result.phase,
                    ended_at: now,
                    verdict: PhaseVerdict::NotReached,
                    time_source: TimeSource::Observed,
                    evidence,
                    lost_steps: None,
                },
            );
        }
        let closing = Closing {
            judgement: &judgement,
            injected_at,
            now,
        };
        for source in sources.iter_mut() {
            let said = source.close(&closing).await;
            let source_name = source.name();
            self.take_in(name, seen, source_name, said).await;
        }
        // Regression gates: a phase on time but slower than its baseline by
        // more than allowed fails the scenario too, as does a monitoring
        // expectation not met.
        // A quiet window ending while a source of the cluster could not be
        // read vouches for nothing that source would have shown: the
        // harness's reach failed, not the cluster (HMA's record is a
        // refinement, not a witness the quiet needs).
        let blind: Vec<String> = seen
            .failing_since
            .iter()
            .filter(|(source, _)| **source != Source::Hma.as_str())
            .map(|(source, since)| format!("{source} (failing since {})", since.format("%H:%M:%S")))
            .collect();
        if judgement.passed
            && scenario.expect.recovery == crate::scenario::model::Recovery::None
            && !blind.is_empty()
        {
            return Ending::new(
                ScenarioOutcome::Error,
                format!(
                    "nothing happened that hpchaos could see, but {} could not be read when the quiet window ended: the quiet is not vouched for; see the journal for why, fix it and run again",
                    blind.join(", ")
                ),
            );
        }
        let mut failures = self.judge_regressions(scenario, &judgement.phases, injected_at);
        failures.append(&mut seen.failed);
        match (judgement.passed, failures.is_empty()) {
            (true, true) => Ending::new(ScenarioOutcome::Passed, ""),
            (true, false) => Ending::new(ScenarioOutcome::Failed, failures.join("; ")),
            (false, true) => Ending::new(ScenarioOutcome::Failed, judgement.reason),
            (false, false) => Ending::new(
                ScenarioOutcome::Failed,
                format!("{}; {}", judgement.reason, failures.join("; ")),
            ),
        }
    }

    /// Where the scenario stands, for the live view.
    fn show_standing(&mut self, name: &str, rules: &Rules, seen: &Seen, since: chrono::TimeDelta) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let phase = rules.order[seen.journaled.min(rules.order.len() - 1)];
        live.standing(&Standing {
            scenario: name,
            phase,
            since_injection: since.to_std().unwrap_or_default(),
            deadline: rules.expectation.deadlines.get(&phase).copied(),
            last_seen: self.last_seen.as_deref(),
        });
    }

    /// Asleep until a source is due, one has something (a followed log
    /// line, an answer from its own task), or the run is stopped; at most
    /// `poll`, at least 10 ms. Once the phases settled only the sources
    /// that outlast them count.
    async fn sleep(&self, sources: &mut Sources<'_>, settled: bool, poll: StdDuration) {
        let now = Instant::now();
        let awake = |s: &&mut Box<dyn observe::Source + '_>| !settled || s.outlasts_phases();
        let wake = sources
            .iter()
            .filter(|s| !settled || s.outlasts_phases())
            .filter_map(|s| s.wake_at())
            .min()
            .unwrap_or(now + poll)
            .max(now + StdDuration::from_millis(10))
            .min(now + poll);
        let arrivals: Vec<_> = sources
            .iter_mut()
            .filter(awake)
            .map(|s| s.arrival())
            .collect();
        let any_arrival = async {
            match arrivals.is_empty() {
                true => std::future::pending().await,
                false => {
                    futures::future::select_all(arrivals).await;
                }
            }
        };
        let mut cancel = self.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = cancel.changed() => {}
            _ = any_arrival => {}
        }
    }
    /// Journals how long a requeued job waits before it may run again
    /// (`field: requeue_delay`, `to`: `"N s (where it was read)"`): a
    /// resume after a requeue comes no sooner. Reports show it beside the
    /// resume phase.
    async fn note_requeue_delay(&mut self, name: &str) {
        let to = match self.cluster.slurm.requeue_delay().await {
            Ok((seconds, from)) => format!("{seconds} s ({from})"),
            Err(err) => format!("the requeue delay is unknown: scontrol show config: {err}"),
        };
        self.log(
            Some(name),
            Entry::Observed {
                source: Source::Harness,
                node: None,
                field: "requeue_delay".into(),
                from: None,
                to,
                source_time: None,
            },
        );
    }

    /// Accepts `node`'s new host key for the rest of the run once the API
    /// shows it on a new instance: the key the head node sees on the
    /// cluster network, journaled with its fingerprint. When the node does
    /// not answer yet, the next poll tries again.
    async fn accept_replacement_key(&mut self, scenario: &str, node: &str, instance_id: &str) {
        if let Some(scanned) = self.scan_from_head(node).await {
            self.accept_and_pin(scenario, node, instance_id, scanned, None);
        }
    }

    /// Journals a change of a watched value: `value` if it differs from the
    /// last one said under the same source, node and field; says whether
    /// it did.
    fn note_change(
        &mut self,
        scenario: &str,
        last: &mut BTreeMap<String, String>,
        change: Change<'_>,
        value: String,
    ) -> bool {
        let key = format!(
            "{}/{}/{}",
            change.source.as_str(),
            change.node.unwrap_or_default(),
            change.field
        );
        if last.get(&key) == Some(&value) {
            return false;
        }
        let from = last.insert(key, value.clone());
        self.log(
            Some(scenario),
            Entry::Observed {
                source: change.source,
                node: change.node.map(str::to_owned),
                field: change.field.into(),
                from,
                to: value,
                source_time: change.source_time,
            },
        );
        true
    }

    /// Journals a source's first failed poll and its first good one after
    /// that, with how long it was out: a dropped connection or a throttled
    /// API shows in the journal, not only as a gap.
    fn note_source_health(
        &mut self,
        scenario: &str,
        failing_since: &mut BTreeMap<&'static str, DateTime<Utc>>,
        source: Source,
        error: Option<&String>,
    ) {
        let now = self.clock.now();
        let key = source.as_str();
        let (from, to) = match (failing_since.get(key).copied(), error) {
            (None, Some(error)) => {
                failing_since.insert(key, now);
                ("ok".to_owned(), format!("failing: {error}"))
            }
            (Some(since), None) => {
                failing_since.remove(key);
                let out = (now - since).as_seconds_f64();
                ("failing".to_owned(), format!("ok again after {out:.1}s"))
            }
            _ => return,
        };
        self.log(
            Some(scenario),
            Entry::Observed {
                source,
                node: None,
                field: "poll".into(),
                from: Some(from),
                to,
                source_time: None,
            },
        );
    }
}

/// Where a watched value comes from, for [`Runner::note_change`].
struct Change<'a> {
    source: Source,
    node: Option<&'a str>,
    field: &'a str,
    source_time: Option<DateTime<Utc>>,
}

/// What a watch starts from.
pub(super) struct Watched<'a> {
    /// Every watched target's state before the injection (the sources
    /// read these targets: the first step's and the later steps').
    pub(super) baseline: &'a Baseline,
    /// The first step's targets' (what its phases are judged on): the
    /// same as `baseline` but for a compound scenario.
    pub(super) judged: &'a Baseline,
    pub(super) injected_at: DateTime<Utc>,
    pub(super) plan: &'a faults::Plan,
    /// Where the controller log ended before the injection; `None` when
    /// it cannot be read.
    pub(super) controller_log: Option<u64>,
}

/// The cycles of one watch, for its `watch_cost` record: how many, and
/// the wall time (ms) of each that read Slurm (one per `poll.slurm`).
#[derive(Debug, Default)]
pub(super) struct Cycles {
    pub(super) count: u64,
    pub(super) slurm_walls: Vec<f64>,
    /// When each Slurm poll began, for the gaps between them.
    pub(super) slurm_starts: Vec<std::time::Instant>,
}

impl Cycles {
    /// The longest time between two Slurm polls (ms); `None` with fewer
    /// than two.
    pub(super) fn slurm_gap_ms_max(&self) -> Option<f64> {
        self.slurm_starts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
            .max_by(f64::total_cmp)
    }

    /// The median and the longest Slurm cycle (ms); zeros without any.
    pub(super) fn slurm_wall_ms(&self) -> (f64, f64) {
        let mut walls = self.slurm_walls.clone();
        walls.sort_by(f64::total_cmp);
        let p50 = walls.get(walls.len().saturating_sub(1) / 2).copied();
        (p50.unwrap_or(0.0), walls.last().copied().unwrap_or(0.0))
    }
}

/// HMA's record of the targets (`observe/hma.rs`): their streams in the
/// cluster's log group, named from `DescribeCluster`'s ARN and each
/// target's instance and group before the injection. Errors: why it is not
/// read (the cluster's ARN unknown, no target on a known instance), said
/// once; detect is then timed from Slurm.
async fn hma_source(
    api: &crate::cluster::sagemaker::SageMakerApi,
    watched: &Watched<'_>,
    every: std::time::Duration,
) -> Result<observe::hma::Hma, String> {
    use crate::cluster::hma;

    let baseline = watched.baseline;
    let streams: Vec<(String, String)> = baseline
        .targets
        .iter()
        .filter_map(|node| {
            let id = baseline.instance_ids.get(node)?;
            let group = baseline.instance_groups.get(node)?;
            Some((node.clone(), hma::stream(group, id)))
        })
        .collect();
    if streams.is_empty() {
        return Err(
            "HMA's record is not read: no target's instance is known; detect is timed from Slurm's mark"
                .to_owned(),
        );
    }
    let summary = api.summary().await.map_err(|err| {
        format!("HMA's record is not read: the cluster's log group is unknown ({err}); detect is timed from Slurm's mark")
    })?;
    let group = hma::log_group(&api.cluster, &summary.arn);
    Ok(observe::hma::Hma::new(
        hma::HmaLog::new(api.logs(), group),
        streams,
        watched.injected_at,
        every,
    ))
}

#[cfg(test)]
mod tests {
    //! The watch loop driven by a stub source: no cluster, no lab. Each
    //! read of the stub says its next scripted batch and moves the run's
    //! (manual) clock on, so deadlines pass without waiting for them.

    use std::collections::VecDeque;
    use std::sync::Arc;

    use futures::future::BoxFuture;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::journal::{Journal, JournalWriter};

    /// A source that says what it was given, one batch per read, then
    /// nothing; every read moves the clock on by `step`.
    struct Stub {
        batches: VecDeque<Vec<Said>>,
        clock: Arc<ManualClock>,
        step: chrono::TimeDelta,
        reads: Arc<std::sync::atomic::AtomicUsize>,
        /// What its last look says.
        last: Vec<Said>,
    }

    impl observe::Source for Stub {
        fn name(&self) -> Source {
            Source::Sinfo
        }
        fn due(&self, _: Instant) -> bool {
            true
        }
        fn wake_at(&self) -> Option<Instant> {
            Some(Instant::now())
        }
        fn read<'a>(&'a mut self, _: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
            self.clock.advance(self.step);
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(
                self.batches.pop_front().unwrap_or_default(),
            ))
        }
        fn last_look<'a>(&'a mut self, _: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
            Box::pin(std::future::ready(std::mem::take(&mut self.last)))
        }
    }

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// `node`'s row in sinfo, as the Slurm source says it.
    fn sinfo(node: &str, state: &str, reason: &str, seen: DateTime<Utc>) -> Said {
        Said::Value {
            source: Source::Sinfo,
            node: Some(node.into()),
            field: "state|reason".into(),
            value: format!("{state}|{reason}"),
            source_time: None,
            event: Some(Event {
                seen,
                source_time: None,
                source: Source::Sinfo,
                observation: phases::Observation::SlurmNode {
                    node: node.into(),
                    state: crate::cluster::node_state::NodeState::parse(state),
                    reason: reason.into(),
                },
            }),
        }
    }

    /// A fault that should change nothing: quiet for 30 s.
    const QUIET: &str = "name: stub
target:
  pool: { nodes: [ip-10-9-0-11] }
fault:
  process_kill:
    target: { pattern: '^python' }
expect:
  recovery: none
  quiet_for: 30s
";

    /// A replacement, detected within 30 s.
    const REPLACE: &str = "name: stub
target:
  pool: { nodes: [ip-10-9-0-11] }
fault:
  node_replace:
    method: slurm
expect:
  recovery: replace
  deadlines:
    detect: 30s
";

    /// Runs one watch of `scenario` over the stub; the ending, the journal
    /// it wrote and how often the stub was read.
    async fn watch(
        scenario: &str,
        batches: Vec<Vec<Said>>,
        step_s: i64,
        stop: bool,
    ) -> (Ending, Journal, usize) {
        watch_looking(scenario, batches, step_s, stop, Vec::new()).await
    }

    /// [`watch`], the stub's last look saying `last`.
    async fn watch_looking(
        scenario: &str,
        batches: Vec<Vec<Said>>,
        step_s: i64,
        stop: bool,
        last: Vec<Said>,
    ) -> (Ending, Journal, usize) {
        let dir = tempfile::tempdir().unwrap();
        let profile = crate::scenario::parse_profile(
            std::path::Path::new("p.yaml"),
            include_str!("../../../../tests/profiles/no-sagemaker.yaml"),
        )
        .unwrap();
        let scenario =
            crate::scenario::parse_scenario(std::path::Path::new("s.yaml"), scenario, None)
                .unwrap();
        let clock = Arc::new(ManualClock::starting_at(start()));
        let path = dir.path().join("journal.jsonl");
        let journal = JournalWriter::create(&path, clock.clone()).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let cluster = crate::cluster::Cluster::connect(&profile).await;
        let settings = super::super::Settings {
            clock: Some(clock.clone()),
            ..super::super::Settings::default()
        };
        let mut runner = Runner::new(cluster, journal, rx, settings);
        let baseline = Baseline {
            targets: vec!["ip-10-9-0-11".into()],
            ..Baseline::default()
        };
        let plan = faults::Plan {
            inject: Vec::new(),
            verify: Vec::new(),
            follow_up: None,
            rollback: Vec::new(),
        };
        let watched = Watched {
            baseline: &baseline,
            judged: &baseline,
            injected_at: clock.now(),
            plan: &plan,
            controller_log: None,
        };
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stub = Stub {
            batches: batches.into(),
            clock: clock.clone(),
            step: chrono::TimeDelta::seconds(step_s),
            reads: reads.clone(),
            last,
        };
        if stop {
            tx.send(true).unwrap();
        }
        let ending = runner
            .observe(&scenario, &watched, vec![Box::new(stub)], Vec::new(), None)
            .await;
        drop(runner);
        let journal = Journal::load(&path).unwrap();
        (
            ending,
            journal,
            reads.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    fn observed(journal: &Journal) -> Vec<String> {
        journal
            .records
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::Observed { field, to, .. } => Some(format!("{field}={to}")),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_quiet_node_passes_once_quiet_for_has_passed_and_is_journaled_once() {
        let t = start();
        let idle = |s| {
            sinfo(
                "ip-10-9-0-11",
                "idle",
                "none",
                t + chrono::TimeDelta::seconds(s),
            )
        };
        let batches = vec![
            vec![Said::Health(None), idle(0)],
            vec![idle(5)],
            vec![idle(10)],
        ];
        let (ending, journal, reads) = watch(QUIET, batches, 5, false).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Passed, "{}", ending.reason);
        // The same row again is not a change: journaled once.
        assert_eq!(observed(&journal), vec!["state|reason=idle|none"]);
        // 30 s of quiet at 5 s a read.
        assert!((6..=7).contains(&reads), "{reads} reads");
        let ended: Vec<_> = journal
            .records
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::PhaseEnded { phase, verdict, .. } => Some((*phase, *verdict)),
                _ => None,
            })
            .collect();
        assert_eq!(ended, vec![(Phase::Quiet, PhaseVerdict::Met)]);
    }

    /// What a source's last look says when the phases settled (an event
    /// HyperPod recorded before the watch's end, asked for only after it)
    /// is journaled; a watch stopped by Ctrl-C takes no last look.
    #[tokio::test]
    async fn a_last_look_is_journaled_when_the_phases_settle_and_not_on_a_stop() {
        let t = start();
        let idle = |s| {
            sinfo(
                "ip-10-9-0-11",
                "idle",
                "none",
                t + chrono::TimeDelta::seconds(s),
            )
        };
        let event = || {
            vec![Said::Record(Entry::Observed {
                source: Source::Sagemaker,
                node: Some("ip-10-9-0-11".into()),
                field: "cluster_event".into(),
                from: None,
                to: "Info: Instance i-2 replaced instance i-1 and is running (i-2)".into(),
                source_time: Some(t),
            })]
        };
        let batches = || vec![vec![Said::Health(None), idle(0)], vec![idle(5)]];
        let (ending, journal, _) = watch_looking(QUIET, batches(), 5, false, event()).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Passed, "{}", ending.reason);
        assert_eq!(
            observed(&journal),
            vec![
                "state|reason=idle|none",
                "cluster_event=Info: Instance i-2 replaced instance i-1 and is running (i-2)"
            ]
        );
        let (ending, journal, _) = watch_looking(QUIET, batches(), 5, true, event()).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Interrupted);
        assert!(
            !observed(&journal)
                .iter()
                .any(|o| o.starts_with("cluster_event")),
            "{:?}",
            observed(&journal)
        );
    }

    /// A quiet window that ends while a source cannot be read is not a
    /// pass: nothing is vouched for past its failure (an error, exit 3).
    #[tokio::test]
    async fn a_quiet_window_ending_blind_is_an_error_not_a_pass() {
        let t = start();
        let idle = |s: i64| {
            sinfo(
                "ip-10-9-0-11",
                "idle",
                "none",
                t + chrono::TimeDelta::seconds(s),
            )
        };
        let batches = vec![
            vec![Said::Health(None), idle(0)],
            vec![idle(5)],
            vec![Said::Health(Some("ExpiredTokenException: expired".into()))],
        ];
        let (ending, _journal, _) = watch(QUIET, batches, 5, false).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Error, "{}", ending.reason);
        assert!(
            ending.reason.contains("the quiet is not vouched for"),
            "{}",
            ending.reason
        );
    }

    #[tokio::test]
    async fn a_node_going_down_during_the_quiet_phase_fails_the_scenario() {
        let t = start();
        let batches = vec![
            vec![sinfo("ip-10-9-0-11", "idle", "none", t)],
            vec![sinfo(
                "ip-10-9-0-11",
                "down*",
                "Not responding",
                t + chrono::TimeDelta::seconds(10),
            )],
        ];
        let (ending, journal, _) = watch(QUIET, batches, 5, false).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Failed);
        assert!(ending.reason.contains("quiet"), "{}", ending.reason);
        assert_eq!(
            observed(&journal),
            vec![
                "state|reason=idle|none",
                "state|reason=down*|Not responding"
            ]
        );
    }

    #[tokio::test]
    async fn a_detection_ends_detect_at_its_time_and_an_unseen_replace_is_not_reached() {
        let t = start();
        let at = t + chrono::TimeDelta::seconds(10);
        let batches = vec![
            vec![sinfo("ip-10-9-0-11", "idle", "none", t)],
            vec![sinfo("ip-10-9-0-11", "down*", "Action:Replace", at)],
        ];
        // A minute per read: past the last deadline plus five minutes soon.
        let (ending, journal, reads) = watch(REPLACE, batches, 60, false).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Failed);
        let ended: Vec<_> = journal
            .records
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::PhaseEnded {
                    phase,
                    verdict,
                    ended_at,
                    ..
                } => Some((*phase, *verdict, *ended_at)),
                _ => None,
            })
            .collect();
        assert_eq!(
            ended[0],
            (Phase::Detect, PhaseVerdict::Met, at),
            "{ended:?}"
        );
        assert!(
            ended[1..]
                .iter()
                .any(|(_, verdict, _)| *verdict == PhaseVerdict::NotReached),
            "{ended:?}"
        );
        assert!(reads < 20, "{reads} reads");
    }

    #[tokio::test]
    async fn a_source_failing_and_coming_back_is_journaled_once_each_way() {
        let t = start();
        let batches = vec![
            vec![Said::Health(Some("ssh: connection reset".into()))],
            vec![Said::Health(Some("ssh: connection reset".into()))],
            vec![Said::Health(None), sinfo("ip-10-9-0-11", "idle", "none", t)],
        ];
        let (ending, journal, _) = watch(QUIET, batches, 2, false).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Passed, "{}", ending.reason);
        let said = observed(&journal);
        assert_eq!(said[0], "poll=failing: ssh: connection reset");
        assert_eq!(said[1], "poll=ok again after 4.0s");
        assert_eq!(said[2], "state|reason=idle|none");
        assert_eq!(said.len(), 3, "{said:?}");
    }

    #[tokio::test]
    async fn a_stop_ends_the_watch_interrupted_before_any_read() {
        let (ending, journal, reads) = watch(QUIET, Vec::new(), 1, true).await;
        assert_eq!(ending.outcome, ScenarioOutcome::Interrupted);
        assert_eq!(ending.reason, "interrupted during the quiet phase");
        assert_eq!(reads, 0);
        assert!(observed(&journal).is_empty());
    }
}
