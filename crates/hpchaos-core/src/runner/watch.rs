//! Watching a fault play out: the baseline before it, then polling the
//! controller log, sinfo, the SageMaker API and the workload until the
//! phase engine settles, an abort condition holds or the run is
//! cancelled; every change journaled, lost sources too, and a replaced
//! node's new host key accepted once the API confirms the replacement.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::cluster::controller_log::{self, Stamp};
use crate::cluster::hostlist::nodes_named_in;
use crate::cluster::log_follow::Follower;
use crate::cluster::ssh::{KEYSCAN_SCRIPT, parse_keyscan};
use crate::faults;
use crate::journal::{Entry, ScenarioOutcome, Source};
use crate::live::Standing;
use crate::phases::{self, Baseline, Event, Expectation, Observation};
use crate::scenario::model::{Check, Phase, Scenario};

use super::{Ending, Runner, WorkloadJob};

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
            job.read_progress(&self.cluster.slurm, self.clock.now())
                .await;
            baseline.progress = job.last_step;
        }
        baseline
    }

    /// The targets' boot and slurmd start, for scenarios timing a reboot:
    /// an event when either moves.
    fn poll_boots(&mut self, name: &str, boots: Option<BootsRead>, seen: &mut Seen) {
        let Some(Ok(boots)) = boots else {
            return;
        };
        for (node, boot) in boots {
            let show = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.to_rfc3339()).unwrap_or_default()
            };
            let value = format!("{}|{}", show(boot.boot_time), show(boot.slurmd_started));
            let change = Change {
                source: Source::Scontrol,
                node: &node,
                field: "boot_time|slurmd_start_time",
                source_time: boot.boot_time,
            };
            if self.note_change(name, &mut seen.last, change, value) {
                seen.events.push(Event {
                    seen: self.clock.now(),
                    source_time: None,
                    source: Source::Scontrol,
                    observation: Observation::NodeBoot { node, boot },
                });
            }
        }
    }

    /// Polls every source until the judgement settles, an abort condition
    /// holds, or the run is cancelled.
    pub(super) async fn watch(
        &mut self,
        scenario: &Scenario,
        watched: Watched<'_>,
        mut workload: Option<&mut WorkloadJob>,
    ) -> Ending {
        let Watched {
            baseline,
            injected_at,
            plan,
            controller_log,
        } = watched;
        let name = scenario.name.clone();
        let name = name.as_str();
        let expectation = Expectation {
            recovery: scenario.expect.recovery,
            phases: scenario.expect.phases(workload.is_some()),
            deadlines: scenario.expect.deadlines.set(),
            quiet_for: scenario.expect.quiet_for,
            max_lost_steps: scenario.expect.max_lost_steps,
        };
        let order = expectation.phases.clone();
        self.log(
            Some(name),
            Entry::PhaseStarted {
                phase: order[0],
                started_at: injected_at,
                deadline: expectation.deadlines.get(&order[0]).copied(),
            },
        );
        let mut seen = Seen {
            events: Vec::new(),
            last: BTreeMap::new(),
            failing_since: BTreeMap::new(),
            log: LogCursor {
                offset: controller_log,
                follower: None,
                retry_at: None,
            },
            unplaced_said: false,
            unhealthy: 0,
            api_ids: baseline.instance_ids.clone(),
        };
        let mut journaled = 0usize;
        let mut node_journaled: BTreeMap<String, usize> = BTreeMap::new();
        let mut follow_up_done = plan.follow_up.is_none();
        let abort = scenario
            .abort
            .clone()
            .unwrap_or(crate::scenario::model::Abort {
                max_unhealthy_nodes: None,
                timeout: None,
                probes: Vec::new(),
            });
        let limit = abort.timeout.map(|t| injected_at + t.as_chrono());
        // Every watch ends: past the last deadline plus five minutes (half
        // an hour when nothing has a deadline), open phases are not reached.
        let last_deadline = expectation
            .deadlines
            .values()
            .max()
            .copied()
            .or(expectation.quiet_for);
        let bound = last_deadline.map_or(StdDuration::from_secs(1800), |d| {
            d.as_std() + StdDuration::from_secs(300)
        });
        let give_up =
            injected_at + chrono::TimeDelta::from_std(bound).unwrap_or(chrono::TimeDelta::MAX);
        // Each source at its own interval: Slurm (and the controller log,
        // and slurmd's boot times) every `poll.slurm`, the API every
        // `poll.sagemaker`, the job's output every `poll.job_output`; the
        // loop wakes at the shortest.
        let intervals = &self.cluster.profile.poll;
        let (api_every, job_every) = (intervals.sagemaker.as_std(), intervals.job_output.as_std());
        let poll = intervals
            .slurm
            .as_std()
            .min(api_every)
            .min(job_every)
            .max(StdDuration::from_millis(50));
        let (mut next_api, mut next_job) = (std::time::Instant::now(), std::time::Instant::now());
        let mut next_slurm = std::time::Instant::now();
        let slurm_every = intervals.slurm.as_std();
        // The monitoring, at its own interval, when the scenario expects
        // something of it.
        let mut monitor = crate::monitoring::Monitor::new(
            &scenario.expect.monitoring,
            &baseline.targets,
            injected_at,
        );
        let endpoints = self.cluster.profile.monitoring.clone();
        let monitor_every = endpoints
            .as_ref()
            .map_or(StdDuration::from_secs(2), |m| m.poll.as_std())
            .max(StdDuration::from_millis(100));
        // A condition true by its deadline shows up a scrape and a poll
        // later: it is given that long before it is called unseen.
        let monitor_grace = monitor_every + StdDuration::from_secs(2);
        let mut next_monitor = std::time::Instant::now();
        let mut phases_done = false;
        let mut monitor_poll: Option<
            tokio::task::JoinHandle<(crate::monitoring::Monitor, Vec<crate::monitoring::Update>)>,
        > = None;
        // The API is read in a task of its own, as the monitoring is: a
        // throttled API (the SDK backs off and retries for up to half a
        // minute) delays only the API's own observations, never Slurm's.
        let mut api_poll: Option<(std::time::Instant, tokio::task::JoinHandle<ApiRead>)> = None;
        // A read still unanswered after an interval was said as failing.
        let mut api_slow_said = false;
        // An answered read, taken in at the next cycle.
        let mut api_done: Option<ApiRead> = None;
        let follow = self.cluster.profile.slurm.follow_controller_log;
        if follow {
            self.follow_controller_log(name, &mut seen.log).await;
        }
        loop {
            if self.stopping() {
                if let Some(poll) = monitor_poll.take() {
                    poll.abort();
                }
                if let Some((_, poll)) = api_poll.take() {
                    poll.abort();
                }
                return Ending::new(
                    ScenarioOutcome::Interrupted,
                    match order.get(journaled) {
                        Some(phase) => format!("interrupted during the {phase} phase"),
                        None => "interrupted while waiting for the monitoring".to_owned(),
                    },
                );
            }
            let now = self.clock.now();
            if !follow_up_done
                && let Some((after, steps)) = &plan.follow_up
                && now >= injected_at + after.as_chrono()
            {
                for step in steps {
                    // A kill cannot be undone: its intent has no undo.
                    let result = match self.write_ahead(name, step.describe(), Vec::new()).await {
                        Ok(_) => self.execute(step, workload.as_deref()).await,
                        Err(reason) => Err(reason),
                    };
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::Harness,
                            node: None,
                            field: "follow_up".into(),
                            from: None,
                            to: format!(
                                "{}: {}",
                                step.describe(),
                                result.err().unwrap_or_else(|| "done".into())
                            ),
                            source_time: None,
                        },
                    );
                }
                follow_up_done = true;
            }
            let tick = std::time::Instant::now();
            // The phases settled and only the monitoring is awaited: the
            // cluster's sources rest.
            let slurm_due = tick >= next_slurm && !phases_done;
            let api_due = tick >= next_api && !phases_done && api_poll.is_none();
            if slurm_due {
                next_slurm = tick + slurm_every;
            }
            if api_due {
                next_api = tick + api_every;
            }
            // The sources due are read at once, so a slow one does not hold
            // up the others; what they said is then journaled in order.
            let boots_due = slurm_due && expectation.phases.contains(&Phase::Reboot);
            let asked: Vec<(String, String)> = baseline
                .targets
                .iter()
                .filter_map(|t| seen.api_ids.get(t).map(|id| (t.clone(), id.clone())))
                .collect();
            // Slurm: the targets' rows only, and the cluster grouped by
            // state only when an abort condition counts unhealthy nodes:
            // neither grows with the cluster's size.
            let count_cluster = abort.max_unhealthy_nodes.is_some();
            if api_due && let Some(api) = self.cluster.api.clone() {
                api_poll = Some((
                    tick,
                    tokio::spawn(
                        async move { api.targets(&asked).await.map_err(|e| e.to_string()) },
                    ),
                ));
            }
            let (rows, boots) = tokio::join!(
                async {
                    if !slurm_due {
                        return None;
                    }
                    let slurm = &self.cluster.slurm;
                    let (rows, groups) =
                        tokio::join!(slurm.nodes_named(&baseline.targets), async {
                            match count_cluster {
                                true => Some(slurm.state_groups().await),
                                false => None,
                            }
                        });
                    let groups = groups.map(|g| g.map_err(|e| e.to_string()));
                    Some(rows.map_err(|e| e.to_string()).map(|rows| (rows, groups)))
                },
                async {
                    match boots_due {
                        true => Some(self.cluster.slurm.node_boots(&baseline.targets).await),
                        false => None,
                    }
                },
            );
            // The controller log first: followed, its lines are taken as
            // they came (this wake may be theirs); else read with Slurm.
            self.poll_controller_log(name, baseline, &mut seen, slurm_due)
                .await;
            if let Some(rows) = rows {
                let events_before = seen.events.len();
                seen.unhealthy = self.poll_slurm(name, baseline, &mut seen, rows);
                // A target changed in Slurm: the controller wrote its line
                // already; read it now, so the millisecond time is judged
                // in the same poll as sinfo's whole second.
                if seen.events.len() > events_before {
                    self.poll_controller_log(name, baseline, &mut seen, true)
                        .await;
                }
            }
            if slurm_due
                && follow
                && seen.log.follower.is_none()
                && seen.log.retry_at.is_some_and(|at| tick >= at)
            {
                self.follow_controller_log(name, &mut seen.log).await;
            }
            // The API's read, once it is answered; one unanswered for an
            // interval is said as failing then, not when the SDK gives up.
            let answered = api_poll.as_ref().is_some_and(|(_, p)| p.is_finished());
            if answered && let Some((_, done)) = api_poll.take() {
                api_done = Some(
                    done.await
                        .unwrap_or_else(|e| Err(format!("the API's read ended: {e}"))),
                );
            }
            if let Some(listed) = api_done.take() {
                if api_slow_said && let Err(error) = &listed {
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::Sagemaker,
                            node: None,
                            field: "poll".into(),
                            from: Some("failing".to_owned()),
                            to: format!("failing: {error}"),
                            source_time: None,
                        },
                    );
                }
                api_slow_said = false;
                self.poll_api(name, baseline, &mut seen, Some(listed)).await;
            } else if let Some((sent, _)) = &api_poll
                && !api_slow_said
                && sent.elapsed() > api_every
            {
                let waited = sent.elapsed().as_secs_f64();
                let error = format!(
                    "no answer after {waited:.1}s (the SDK retries a throttled or failing request with backoff)"
                );
                self.note_source_health(
                    name,
                    &mut seen.failing_since,
                    Source::Sagemaker,
                    Some(&error),
                );
                api_slow_said = true;
            }
            // After the API: when both show the reboot in one poll, the
            // LaunchTime's milliseconds close it, not slurmd's whole second.
            self.poll_boots(name, boots, &mut seen);
            if tick >= next_job
                && !phases_done
                && let Some(job) = workload.as_deref_mut()
            {
                next_job = tick + job_every;
                self.poll_workload(name, job, &mut seen).await;
            }
            // The monitoring is asked in a task of its own: a slow or hung
            // Prometheus never holds up Slurm, the API or the job. A poll
            // done is taken in; the next starts when due and none runs.
            if monitor_poll.as_ref().is_some_and(|p| p.is_finished())
                && let Some(done) = monitor_poll.take()
                && let Ok((polled, updates)) = done.await
            {
                for update in updates {
                    self.journal_monitoring(name, &polled, update);
                }
                monitor = Some(polled);
            }
            if tick >= next_monitor
                && monitor_poll.is_none()
                && let (Some(m), Some(endpoints)) = (monitor.as_ref(), endpoints.as_ref())
            {
                next_monitor = tick + monitor_every;
                let now = self.clock.now();
                let client = self.monitoring_client().clone();
                let (mut m, endpoints) = (m.clone(), endpoints.clone());
                monitor_poll = Some(tokio::spawn(async move {
                    let updates = m.poll(&client, &endpoints, now).await;
                    (m, updates)
                }));
            }
            // This cycle's reads are done: counted for `watch_cost` (before
            // any return below).
            self.cycles.count += 1;
            if slurm_due {
                let wall = tick.elapsed().as_secs_f64() * 1000.0;
                self.cycles.slurm_walls.push(wall);
                self.cycles.slurm_starts.push(tick);
            }
            let unhealthy = seen.unhealthy;
            // Judge, and journal phase boundaries as they are decided.
            let now = self.clock.now();
            let (mut judgement, per_node) = phases::judge_scenario(
                injected_at,
                baseline,
                &expectation,
                &seen.events,
                now,
                now > give_up,
            );
            // A dropped mark is only called while the API answers: a
            // throttled API could be hiding HyperPod's recovery.
            if judgement.open_because.is_some()
                && (seen.failing_since.contains_key(Source::Sagemaker.as_str()) || api_slow_said)
            {
                judgement.open_because = None;
                judgement.settled = false;
                judgement.passed = false;
                for phase in &mut judgement.phases {
                    if phase.ended.is_none() {
                        phase.verdict = None;
                    }
                }
            }
            // Several targets: each one's phases journaled as they end.
            if baseline.targets.len() > 1 {
                for (node, own) in &per_node {
                    let done = node_journaled.entry(node.clone()).or_insert(0);
                    while let Some(result) = own.phases.get(*done).filter(|p| p.verdict.is_some()) {
                        if let Some(end) = &result.ended {
                            self.log(
                                Some(name),
                                Entry::NodePhaseEnded {
                                    node: node.clone(),
                                    phase: result.phase,
                                    ended_at: end.at,
                                    verdict: result
                                        .verdict
                                        .unwrap_or(crate::journal::PhaseVerdict::Observed),
                                    time_source: end.time_source,
                                    evidence: end.evidence.clone(),
                                },
                            );
                        }
                        *done += 1;
                    }
                }
            }
            while let Some(result) = judgement
                .phases
                .get(journaled)
                .filter(|p| p.ended.is_some() && p.verdict.is_some())
            {
                let end = result
                    .ended
                    .clone()
                    .unwrap_or_else(|| unreachable!("filtered on ended"));
                let lost = if result.phase == Phase::Resume {
                    judgement.lost_steps
                } else {
                    None
                };
                self.log(
                    Some(name),
                    Entry::PhaseEnded {
                        phase: result.phase,
                        ended_at: end.at,
                        verdict: result
                            .verdict
                            .unwrap_or(crate::journal::PhaseVerdict::Observed),
                        time_source: end.time_source,
                        evidence: end.evidence,
                        lost_steps: lost,
                    },
                );
                journaled += 1;
                if let Some(next) = order.get(journaled) {
                    self.log(
                        Some(name),
                        Entry::PhaseStarted {
                            phase: *next,
                            started_at: end.at,
                            deadline: expectation.deadlines.get(next).copied(),
                        },
                    );
                }
            }
            let monitor_settled = monitor
                .as_ref()
                .is_none_or(|m| m.settled(now, monitor_grace));
            phases_done = judgement.settled;
            if judgement.settled && monitor_settled {
                if let Some(poll) = monitor_poll.take() {
                    poll.abort();
                }
                if let Some((_, poll)) = api_poll.take() {
                    poll.abort();
                }
                if let Some(result) = judgement
                    .phases
                    .get(journaled)
                    .filter(|p| p.ended.is_none())
                {
                    self.log(
                        Some(name),
                        Entry::PhaseEnded {
                            phase: result.phase,
                            ended_at: now,
                            verdict: crate::journal::PhaseVerdict::NotReached,
                            time_source: crate::journal::TimeSource::Observed,
                            evidence: judgement
                                .open_because
                                .clone()
                                .unwrap_or_else(|| "not seen before its deadline".into()),
                            lost_steps: None,
                        },
                    );
                }
                if let Some(job) = workload.as_deref() {
                    self.journal_cost(name, job, &judgement, injected_at, now);
                }
                // Regression gates: a phase on time but slower than its
                // baseline by more than allowed fails the scenario too.
                let mut regressions =
                    self.judge_regressions(scenario, &judgement.phases, injected_at);
                // Monitoring expectations: one not seen in time fails the
                // scenario as a missed phase does; a blind spot first asks
                // Prometheus why (its `up` for the unseen node).
                if let (Some(m), Some(endpoints)) = (monitor.as_mut(), endpoints.as_ref()) {
                    let client = self.monitoring_client().clone();
                    m.explain_blind_spots(&client, endpoints, &self.cluster.profile.addresses, now)
                        .await;
                }
                if let Some(m) = &monitor {
                    for judged in m.judge() {
                        let ok = matches!(
                            judged.verdict,
                            crate::journal::PhaseVerdict::Met
                                | crate::journal::PhaseVerdict::Observed
                        );
                        if !ok {
                            regressions.push(match judged.verdict {
                                crate::journal::PhaseVerdict::Missed => format!(
                                    "monitoring {}: seen after its deadline {}: {}",
                                    judged.name, judged.within, judged.detail
                                ),
                                _ => format!("monitoring {}: {}", judged.name, judged.detail),
                            });
                        }
                        self.log(
                            Some(name),
                            Entry::MonitoringJudged {
                                name: judged.name,
                                query: judged.query,
                                source: judged.source.to_owned(),
                                within: judged.within,
                                seen_at: judged.seen_at,
                                verdict: judged.verdict,
                                detail: judged.detail,
                            },
                        );
                    }
                }
                return match (judgement.passed, regressions.is_empty()) {
                    (true, true) => Ending::new(ScenarioOutcome::Passed, ""),
                    (true, false) => Ending::new(ScenarioOutcome::Failed, regressions.join("; ")),
                    (false, true) => Ending::new(ScenarioOutcome::Failed, judgement.reason),
                    (false, false) => Ending::new(
                        ScenarioOutcome::Failed,
                        format!("{}; {}", judgement.reason, regressions.join("; ")),
                    ),
                };
            }
            let abort_reason = self
                .abort_reason(
                    &abort,
                    unhealthy,
                    limit.is_some_and(|l| now > l),
                    baseline,
                    workload.as_deref(),
                    slurm_due,
                )
                .await;
            if let Some(reason) = abort_reason {
                self.log(
                    Some(name),
                    Entry::Aborted {
                        reason: reason.clone(),
                    },
                );
                return Ending::new(ScenarioOutcome::Aborted, reason);
            }
            if let Some(live) = self.live.as_mut() {
                let phase = order[journaled.min(order.len() - 1)];
                live.standing(&Standing {
                    scenario: name,
                    phase,
                    since_injection: (now - injected_at).to_std().unwrap_or_default(),
                    deadline: expectation.deadlines.get(&phase).copied(),
                    last_seen: self.last_seen.as_deref(),
                });
            }
            // Asleep until the next source is due, a followed log line
            // arrives, or the run is cancelled.
            // While an API read is under way its next one is not due: only
            // Slurm's poll (and the checks below) wake the loop.
            let mut wake = if phases_done {
                std::time::Instant::now() + poll
            } else if api_poll.is_some() {
                next_slurm
            } else {
                next_slurm.min(next_api)
            };
            if let Some((sent, _)) = &api_poll
                && !api_slow_said
            {
                // A read under way is said as failing once it has waited
                // an interval (its answer wakes the loop itself).
                wake = wake.min(*sent + api_every);
            }
            if workload.is_some() && !phases_done {
                wake = wake.min(next_job);
            }
            if monitor.is_some() {
                // A poll still under way is looked at every 100 ms, not
                // spun on.
                let at = match monitor_poll {
                    Some(_) => {
                        next_monitor.max(std::time::Instant::now() + StdDuration::from_millis(100))
                    }
                    None => next_monitor,
                };
                wake = wake.min(at);
            }
            let wake = wake.max(std::time::Instant::now() + StdDuration::from_millis(10));
            let wake = wake.min(std::time::Instant::now() + poll);
            let mut cancel = self.cancel.clone();
            let follower = seen.log.follower.as_mut();
            let mut answer = None;
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = cancel.changed() => {}
                read = async {
                    match api_poll.as_mut() {
                        Some((_, handle)) => handle.await,
                        None => std::future::pending().await,
                    }
                } => {
                    answer = Some(read.unwrap_or_else(|e| Err(format!("the API's read ended: {e}"))));
                }
                _ = async {
                    match follower {
                        Some(f) => f.arrival().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            if let Some(read) = answer {
                api_poll = None;
                api_done = Some(read);
            }
        }
    }
}

impl Runner {
    /// Journals what a monitoring poll found: a sighting (with the
    /// monitoring's own time), a condition already true at the injection,
    /// or why the monitoring could not be read.
    fn journal_monitoring(
        &mut self,
        scenario: &str,
        monitor: &crate::monitoring::Monitor,
        update: crate::monitoring::Update,
    ) {
        use crate::monitoring::Update;
        // The variant says whether it held before the injection.
        let (watch, sighting, before) = match update {
            Update::Seen { watch, sighting } => (watch, sighting, false),
            Update::HeldBefore { watch, sighting } => (watch, sighting, true),
            Update::Unread { watch, error } => {
                let entry = Entry::MonitoringUnread {
                    name: monitor.watches[watch].name.clone(),
                    error,
                };
                self.log(Some(scenario), entry);
                return;
            }
        };
        let w = &monitor.watches[watch];
        let entry = Entry::MonitoringSeen {
            name: w.name.clone(),
            target: w.target.clone(),
            query: w.kind.describe(),
            source: w.kind.source().to_owned(),
            seen_at: sighting.at,
            detail: if before {
                format!("already true before the injection: {}", sighting.detail)
            } else {
                sighting.detail
            },
        };
        self.log(Some(scenario), entry);
    }

    /// Starts collecting `node`'s evidence in a task of its own, once per
    /// watch (the controller log and sinfo both show the mark).
    fn start_evidence(&mut self, scenario: &str, node: &str, why: &str) {
        if self.evidence.iter().any(|(n, _, _)| n == node) {
            return;
        }
        let run_dir = self.journal.path().parent().map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
        let task = tokio::spawn(super::evidence::collect(
            self.cluster.ssh.clone(),
            self.cluster.node(node),
            run_dir,
            scenario.to_owned(),
        ));
        self.evidence.push((node.to_owned(), why.to_owned(), task));
    }

    /// Journals the evidence collected during the watch, waiting up to a
    /// minute for collections still under way (each command is bounded to
    /// 10 s).
    pub(super) async fn journal_evidence(&mut self, scenario: &str) {
        for (node, why, task) in std::mem::take(&mut self.evidence) {
            let files = match tokio::time::timeout(StdDuration::from_secs(60), task).await {
                Ok(Ok(files)) => files,
                _ => Vec::new(),
            };
            self.log(
                Some(scenario),
                Entry::EvidenceCollected { node, why, files },
            );
        }
    }

    /// The cost of the failure to the workload, once it resumed: journaled
    /// with the formula's terms; when the job's GPUs are unknown, said.
    fn journal_cost(
        &mut self,
        name: &str,
        job: &WorkloadJob,
        judgement: &phases::Judgement,
        injected_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let resumed = judgement
            .phases
            .iter()
            .find(|p| p.phase == Phase::Resume)
            .and_then(|p| p.ended.as_ref())
            .map(|b| b.at);
        let Some(resumed) = resumed else {
            return;
        };
        let Some(gpus) = job.gpus.clone() else {
            self.log(
                Some(name),
                Entry::Observed {
                    source: Source::Harness,
                    node: None,
                    field: "cost".into(),
                    from: None,
                    to: "GPU-hours not computed: the job's AllocTRES lists no GPUs; set slurm.gpus_per_node in the profile".into(),
                    source_time: None,
                },
            );
            return;
        };
        // The window: from the job's start (else the first progress seen)
        // to the end of the watch.
        let start = job
            .started_at
            .or(job.steps_seen.first().map(|s| s.0))
            .map_or(injected_at, |s| s.min(injected_at));
        let cost = crate::cost::failure_cost(
            gpus,
            injected_at,
            resumed,
            judgement.lost_steps.unwrap_or(0),
            &job.steps_seen,
            (start, now),
        );
        self.log(Some(name), Entry::FailureCost { cost });
    }
}

impl Runner {
    /// Accepts `node`'s new host key for the rest of the run once the API
    /// shows it on a new instance: the key the head node sees on the
    /// cluster network, journaled with its fingerprint. When the node does
    /// not answer yet, the next poll tries again.
    async fn accept_replacement_key(&mut self, scenario: &str, node: &str, instance_id: &str) {
        let endpoint = self.cluster.node(node);
        let port = endpoint.port.to_string();
        let argv = [
            "sh",
            "-c",
            KEYSCAN_SCRIPT,
            "hpchaos",
            &endpoint.address,
            &port,
        ];
        let scanned = match self.cluster.ssh.run(&self.cluster.slurm.head, &argv).await {
            Ok(out) if out.status == 0 => parse_keyscan(&out.stdout),
            _ => None,
        };
        if let Some(scanned) = scanned {
            self.cluster.ssh.accept_host_key(node, &scanned.key);
            self.accepted_instances.insert(instance_id.to_owned());
            self.log(
                Some(scenario),
                Entry::HostKeyAccepted {
                    node: node.to_owned(),
                    instance_id: instance_id.to_owned(),
                    fingerprint: scanned.fingerprint,
                },
            );
        }
    }
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

/// What sinfo said: the targets' rows, and the cluster grouped by state
/// when it was asked.
type SlurmRead = Result<
    (
        Vec<crate::cluster::slurm::NodeRow>,
        Option<Result<Vec<(crate::cluster::node_state::NodeState, String)>, String>>,
    ),
    String,
>;
/// What `DescribeClusterNode`/`ListClusterNodes` said of the targets.
type ApiRead = Result<Vec<crate::cluster::sagemaker::ApiNode>, String>;
/// What `scontrol show node` said of the targets' boots.
type BootsRead = Result<Vec<(String, crate::phases::BootWitness)>, crate::cluster::ssh::SshError>;

/// The controller log as the watch reads it: followed over a kept
/// channel while that works, else read at each Slurm poll.
struct LogCursor {
    /// Where it has been read to; `None` when it is not readable at all.
    offset: Option<u64>,
    follower: Option<Follower>,
    /// When to try following it again after the follower ended.
    retry_at: Option<std::time::Instant>,
}

/// What a watch has seen so far, across polls.
struct Seen {
    events: Vec<Event>,
    /// The last value journaled per source and node (see `note_change`).
    last: BTreeMap<String, String>,
    /// Sources whose polls are failing, since when.
    failing_since: BTreeMap<&'static str, DateTime<Utc>>,
    /// Where the controller log has been read to, and its follower.
    log: LogCursor,
    /// Lines without a placeable time were journaled once already.
    unplaced_said: bool,
    /// Unhealthy nodes at the last Slurm poll.
    unhealthy: usize,
    /// The instance each target is on, as last seen (a replacement moves
    /// it): what the API is asked about.
    api_ids: BTreeMap<String, String>,
}

impl Runner {
    /// Why the scenario must stop now, if one of its abort conditions
    /// holds: too many unhealthy nodes, a failing probe, the timeout.
    async fn abort_reason(
        &self,
        abort: &crate::scenario::model::Abort,
        unhealthy: usize,
        timed_out: bool,
        baseline: &Baseline,
        workload: Option<&WorkloadJob>,
        probes_due: bool,
    ) -> Option<String> {
        if let Some(max) = abort.max_unhealthy_nodes
            && unhealthy > max as usize
        {
            return Some(format!(
                "{unhealthy} nodes unhealthy, more than max_unhealthy_nodes: {max}"
            ));
        }
        // Probes run with the Slurm poll, not at every followed log line.
        for probe in abort.probes.iter().filter(|_| probes_due) {
            let check = Check::Probe(probe.clone());
            let (label, result) = self.check(&check, &baseline.targets, workload).await;
            if let Err(detail) = result {
                return Some(format!("abort condition {label} failed: {detail}"));
            }
        }
        timed_out.then(|| "the abort timeout passed".to_owned())
    }

    /// Starts following the controller log from where it was read to;
    /// on failure, journals why and reads it each poll, trying again a
    /// Slurm poll later.
    async fn follow_controller_log(&mut self, name: &str, log: &mut LogCursor) {
        let Some(offset) = log.offset else {
            return;
        };
        let path = self.cluster.profile.slurm.controller_log.clone();
        match Follower::start(&self.cluster.slurm, &path, offset).await {
            Ok(follower) => {
                log.follower = Some(follower);
                log.retry_at = None;
            }
            Err(err) => {
                let every = self.cluster.profile.poll.slurm.as_std();
                log.retry_at = Some(std::time::Instant::now() + every);
                self.note_controller_log(
                    name,
                    format!("cannot follow {path} ({err}); reading it each poll meanwhile"),
                );
            }
        }
    }

    /// New lines of the controller log about the targets: what its
    /// follower handed over, or, without one and when `slurm_due`, what
    /// was appended since the last read. Read first in each poll: its
    /// lines carry millisecond times, and an event seen first in a poll is
    /// judged first.
    async fn poll_controller_log(
        &mut self,
        name: &str,
        baseline: &Baseline,
        seen: &mut Seen,
        slurm_due: bool,
    ) {
        let path = self.cluster.profile.slurm.controller_log.clone();
        let text = if let Some(follower) = seen.log.follower.as_mut() {
            let taken = follower.take();
            seen.log.offset = Some(follower.offset());
            for notice in taken.notices {
                self.note_controller_log(name, notice);
            }
            if let Some(why) = taken.ended {
                seen.log.follower = None;
                let every = self.cluster.profile.poll.slurm.as_std();
                seen.log.retry_at = Some(std::time::Instant::now() + every);
                self.note_controller_log(
                    name,
                    format!("stopped following {path}: {why}; reading it each poll until it can be followed again"),
                );
            }
            taken.lines
        } else if let (Some(offset), true) = (seen.log.offset.as_mut(), slurm_due) {
            let read = self.cluster.slurm.read_log(&path, *offset).await;
            let error = read.as_ref().err();
            self.note_source_health(name, &mut seen.failing_since, Source::SlurmctldLog, error);
            let (size, text) = read.unwrap_or((*offset, String::new()));
            if size < *offset {
                // Rotated: the new file is read from its start next poll.
                *offset = 0;
                self.note_controller_log(name, format!("{path} was rotated; reading the new file"));
            }
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            *offset += complete as u64;
            text[..complete].lines().map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        if text.is_empty() {
            return;
        }
        let offset = self.cluster.slurm.utc_offset().await;
        let now = self.clock.now();
        for line in &text {
            let parsed = controller_log::parse_line(line, offset, now);
            let named = nodes_named_in(parsed.message, &baseline.targets);
            if named.is_empty() {
                continue;
            }
            // A line it cannot place in time is said once, then timed
            // when seen.
            if parsed.stamp != Stamp::Placed && !seen.unplaced_said {
                seen.unplaced_said = true;
                let said = match &parsed.stamp {
                    Stamp::Unplaceable(stamp) => format!(
                        "lines stamped `[{stamp}]` give no time of day (LogTimeFormat clock or thread_id?): timed when seen"
                    ),
                    _ => "lines carry no time stamp (LogTimeFormat=omit?): timed when seen"
                        .to_owned(),
                };
                self.note_controller_log(name, said);
            }
            // The controller's own line is the first sign of a mark (sinfo
            // shows it a poll later): collect the evidence from here.
            if let Some((_, reason)) = parsed.message.split_once("reason set to: ")
                && super::evidence::marks_for_repair(reason.trim())
            {
                for node in &named {
                    self.start_evidence(name, node, reason.trim());
                }
            }
            for node in named {
                self.log(
                    Some(name),
                    Entry::Observed {
                        source: Source::SlurmctldLog,
                        node: Some(node.clone()),
                        field: "line".into(),
                        from: None,
                        to: parsed.message.to_owned(),
                        source_time: parsed.at,
                    },
                );
                seen.events.push(Event {
                    seen: self.clock.now(),
                    source_time: parsed.at,
                    source: Source::SlurmctldLog,
                    observation: Observation::ControllerLog {
                        node: node.clone(),
                        message: parsed.message.to_owned(),
                    },
                });
            }
        }
    }

    /// The targets in `sinfo`, and the cluster's health when it was read;
    /// returns how many nodes are unhealthy since the fault (out of service
    /// now and not before it, and the targets Slurm does not list), 0 when
    /// the cluster was not counted.
    fn poll_slurm(
        &mut self,
        name: &str,
        baseline: &Baseline,
        seen: &mut Seen,
        read: SlurmRead,
    ) -> usize {
        // Kept from the last count while the cluster is not counted anew.
        let mut unhealthy = seen.unhealthy;
        let error = match &read {
            Err(e) => Some(e.clone()),
            Ok((_, Some(Err(e)))) => Some(e.clone()),
            _ => None,
        };
        self.note_source_health(name, &mut seen.failing_since, Source::Sinfo, error.as_ref());
        let Ok((rows, groups)) = read else {
            return seen.unhealthy;
        };
        // Nodes, not rows; a target Slurm does not list counts too.
        let missing: Vec<&String> = baseline
            .targets
            .iter()
            .filter(|t| !rows.iter().any(|r| &r.name == *t))
            .collect();
        if let Some(Ok(groups)) = &groups {
            unhealthy = match crate::cluster::slurm::unhealthy_in_groups(groups) {
                Ok(set) => set.difference(&baseline.unhealthy_before).count() + missing.len(),
                Err(_) => seen.unhealthy,
            };
        }
        for target in missing {
            let change = Change {
                source: Source::Sinfo,
                node: target,
                field: "state|reason",
                source_time: None,
            };
            self.note_change(name, &mut seen.last, change, "not in Slurm".to_owned());
        }
        // A state this harness does not know: said once, never healthy.
        let group_states = groups
            .iter()
            .flatten()
            .flatten()
            .map(|(state, hosts)| (state, hosts.as_str()));
        let row_states = rows.iter().map(|r| (&r.state, r.name.as_str()));
        for (state, node) in row_states.chain(group_states) {
            if !state.is_unrecognised() {
                continue;
            }
            let key = format!("unrecognised/{}", state.raw);
            if seen.last.insert(key, String::new()).is_none() {
                self.log(
                    Some(name),
                    Entry::Observed {
                        source: Source::Sinfo,
                        node: Some(node.to_owned()),
                        field: "state".into(),
                        from: None,
                        to: format!(
                            "unrecognised state `{}`: judged unknown, not healthy",
                            state.raw
                        ),
                        source_time: None,
                    },
                );
            }
        }
        for row in rows.iter().filter(|r| baseline.targets.contains(&r.name)) {
            // Marked for a repair that wipes or restarts it: collect what
            // it can still tell, now, beside the watch.
            if !row.healthy() && super::evidence::marks_for_repair(&row.reason) {
                self.start_evidence(name, &row.name, &row.reason);
            }
            let value = format!("{}|{}", row.state, row.reason);
            let change = Change {
                source: Source::Sinfo,
                node: &row.name,
                field: "state|reason",
                source_time: row.reason_time,
            };
            if self.note_change(name, &mut seen.last, change, value) {
                seen.events.push(Event {
                    seen: self.clock.now(),
                    source_time: row
                        .reason_time
                        .filter(|_| row.reason.starts_with("Action:") && !row.healthy()),
                    source: Source::Sinfo,
                    observation: Observation::SlurmNode {
                        node: row.name.clone(),
                        state: row.state.raw.clone(),
                        flags: String::new(),
                        reason: row.reason.clone(),
                    },
                });
            }
        }
        unhealthy
    }

    /// Takes in a read of the targets from the API (DescribeClusterNode per
    /// target, one listing page when an instance is gone: sagemaker.rs,
    /// `targets`), made in a task of its own; accepts a replaced target's
    /// new host key once the API shows it running.
    async fn poll_api(
        &mut self,
        name: &str,
        baseline: &Baseline,
        seen: &mut Seen,
        listed: Option<ApiRead>,
    ) {
        if let Some(result) = &listed {
            let error = result.as_ref().err();
            self.note_source_health(name, &mut seen.failing_since, Source::Sagemaker, error);
        }
        if let Some(Ok(nodes)) = &listed {
            for node in nodes {
                seen.api_ids
                    .insert(node.node.clone(), node.instance_id.clone());
            }
        }
        if let Some(Ok(nodes)) = listed {
            // A target can vanish from the listing (between launch
            // attempts after a `Failure`): journaled, not an event.
            for target in &baseline.targets {
                if !nodes.iter().any(|n| &n.node == target) {
                    let change = Change {
                        source: Source::Sagemaker,
                        node: target,
                        field: "status|instance_id|launch_time",
                        source_time: None,
                    };
                    self.note_change(name, &mut seen.last, change, "not listed".to_owned());
                }
            }
            for node in nodes.iter().filter(|n| baseline.targets.contains(&n.node)) {
                let value = format!(
                    "{}|{}|{}",
                    node.status,
                    node.instance_id,
                    node.launch_time.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
                let change = Change {
                    source: Source::Sagemaker,
                    node: &node.node,
                    field: "status|instance_id|launch_time",
                    source_time: node.launch_time,
                };
                let replaced = baseline
                    .instance_ids
                    .get(&node.node)
                    .is_some_and(|old| *old != node.instance_id);
                if replaced
                    && node.status == "Running"
                    && self.cluster.profile.ssh.accept_replaced_host_keys
                    && !self.accepted_instances.contains(&node.instance_id)
                {
                    self.accept_replacement_key(name, &node.node, &node.instance_id)
                        .await;
                }
                if self.note_change(name, &mut seen.last, change, value) {
                    seen.events.push(Event {
                        seen: self.clock.now(),
                        source_time: None,
                        source: Source::Sagemaker,
                        observation: Observation::ApiNode {
                            node: node.node.clone(),
                            status: node.status.clone(),
                            instance_id: node.instance_id.clone(),
                            launch_time: node.launch_time,
                        },
                    });
                }
            }
        }
    }

    /// The workload's state in Slurm and its new output lines.
    async fn poll_workload(&mut self, name: &str, job: &mut WorkloadJob, seen: &mut Seen) {
        let observation = match self.cluster.slurm.job(job.id).await {
            Ok(Some(info)) => {
                // The first start Slurm reported (a requeue moves it on).
                if let Some(start) = info.start_time
                    && job.started_at.is_none_or(|s| start < s)
                {
                    job.started_at = Some(start);
                }
                if job.gpus.is_none() {
                    let per_node = self.cluster.profile.slurm.gpus_per_node;
                    job.gpus = info
                        .gpus
                        .map(|g| (g, "the job's AllocTRES gres/gpu".to_owned()))
                        .or_else(|| {
                            per_node.zip(info.nodes).map(|(per, n)| {
                                (per * n, format!("slurm.gpus_per_node {per} × {n} node(s)"))
                            })
                        });
                }
                let nodes = self
                    .cluster
                    .slurm
                    .hostnames(&info.node_list)
                    .unwrap_or_default();
                Some(Observation::Job {
                    state: info.state,
                    nodes,
                    restarts: info.restarts,
                })
            }
            Ok(None) => Some(Observation::JobGone),
            Err(_) => None,
        };
        let error = observation.is_none().then(|| "squeue failed".to_owned());
        self.note_source_health(
            name,
            &mut seen.failing_since,
            Source::Squeue,
            error.as_ref(),
        );
        if let Some(observation) = observation {
            let value = format!("{observation:?}");
            if seen.last.get("job") != Some(&value) {
                let text = match &observation {
                    Observation::Job {
                        state,
                        nodes,
                        restarts,
                    } => format!("{state} on [{}], restarts {restarts}", nodes.join(",")),
                    _ => "gone".to_owned(),
                };
                // `last` keeps the raw value to compare and the
                // text last journaled, for `from`.
                seen.last.insert("job".into(), value);
                let from = seen.last.insert("job-text".into(), text.clone());
                self.log(
                    Some(name),
                    Entry::Observed {
                        source: Source::Squeue,
                        node: None,
                        field: format!("job {}", job.id),
                        from,
                        to: text,
                        source_time: None,
                    },
                );
                seen.events.push(Event {
                    seen: self.clock.now(),
                    source_time: None,
                    source: Source::Squeue,
                    observation,
                });
            }
        }
        for (line, step) in job
            .read_progress(&self.cluster.slurm, self.clock.now())
            .await
        {
            if let Some(step) = step {
                seen.events.push(Event {
                    seen: self.clock.now(),
                    source_time: None,
                    source: Source::JobOutput,
                    observation: Observation::Progress { step },
                });
            }
            if line.contains("resumed") || line.contains("auto-resume") || job.is_checkpoint(&line)
            {
                self.log(
                    Some(name),
                    Entry::Observed {
                        source: Source::JobOutput,
                        node: None,
                        field: "line".into(),
                        from: None,
                        to: line,
                        source_time: None,
                    },
                );
            }
        }
    }
}

/// What a watch starts from.
pub(super) struct Watched<'a> {
    pub(super) baseline: &'a Baseline,
    pub(super) injected_at: DateTime<Utc>,
    pub(super) plan: &'a faults::Plan,
    /// Where the controller log ended before the injection; `None` when
    /// it cannot be read.
    pub(super) controller_log: Option<u64>,
}

impl Runner {
    /// The controller log's size before the injection, so the watch reads
    /// only what follows; an unreadable log is journaled once and skipped.
    pub(super) async fn controller_log_offset(&mut self, scenario: &str) -> Option<u64> {
        let path = self.cluster.profile.slurm.controller_log.clone();
        match self.cluster.slurm.file_size(&path).await {
            Ok(size) => Some(size),
            Err(err) => {
                self.note_controller_log(
                    scenario,
                    format!("{path} is not readable ({err}); watching without it"),
                );
                None
            }
        }
    }
}

impl Runner {
    /// Journals something about reading the controller log itself.
    fn note_controller_log(&mut self, scenario: &str, to: String) {
        self.log(
            Some(scenario),
            Entry::Observed {
                source: Source::SlurmctldLog,
                node: None,
                field: "poll".into(),
                from: None,
                to,
                source_time: None,
            },
        );
    }
}

/// Where a watched value comes from, for [`Runner::note_change`].
struct Change<'a> {
    source: Source,
    node: &'a str,
    field: &'static str,
    source_time: Option<DateTime<Utc>>,
}

impl Runner {
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

    /// Journals `value` if it differs from the last one seen for this source
    /// and node; says whether it did.
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
            change.node,
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
                node: Some(change.node.to_owned()),
                field: change.field.into(),
                from,
                to: value,
                source_time: change.source_time,
            },
        );
        true
    }
}
