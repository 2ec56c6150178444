//! A compound scenario's later steps (`steps:`): faults that follow the
//! first, each with its own targets and trigger ("inject A, wait until B,
//! inject C"). Every step is planned with the first, before anything is
//! changed (targets resolved, plan made, `step_planned` journaled), so the
//! whole blast radius is known and checked up front; injected when its
//! trigger comes (a delay after the first injection, a phase of an earlier
//! step starting or ending, a PromQL condition), each behind its own
//! write-ahead intent; judged as its own phase set, from its own injection,
//! on its own targets, by the same pure judge as the first step; and rolled
//! back before the steps before it (reverse order). This file owns the
//! planning, the triggers, the per-step judging and the undoing; the watch
//! calls it once per cycle.

use chrono::{DateTime, Utc};

use crate::faults::{self, Step};
use crate::journal::{Entry, PhaseVerdict, ScenarioOutcome};
use crate::phases::{self, Baseline, Expectation, Judgement};
use crate::scenario::model::{Edge, LaterStep, Phase, Scenario};

use super::{Ending, Runner, fan_out};

/// A later step, planned before anything was changed.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) spec: LaterStep,
    pub(super) targets: Vec<String>,
    pub(super) plan: faults::Plan,
    pub(super) undo: Vec<Step>,
    pub(super) expectation: Expectation,
    /// The mark HyperPod should set on its targets, if any.
    pub(super) reason: Option<String>,
    /// Past this long after its injection, its open phases are not
    /// reached (its last deadline plus five minutes; half an hour without).
    pub(super) give_up: std::time::Duration,
}

/// Where a later step stands during the watch.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) planned: Planned,
    pub(super) injected_at: Option<DateTime<Utc>>,
    /// Its write-ahead intent, once one was written.
    pub(super) intent: Option<u64>,
    /// How it came out, once it did: passed, or why not.
    pub(super) ended: Option<(bool, String)>,
    /// Its phases journaled as ended.
    journaled: usize,
    /// Its latest judgement (for the triggers of later steps).
    judgement: Option<Judgement>,
    /// Since when it has waited for its trigger with nothing else left
    /// to watch (see [`TRIGGER_GRACE`]).
    waiting_alone: Option<DateTime<Utc>>,
    /// Since when its PromQL trigger could not be read.
    unread_since: Option<DateTime<Utc>>,
}

/// How long a step may wait for its trigger once everything else in the
/// scenario is settled, or go without reading its PromQL trigger, before
/// it is ended as never injected: a run never waits without a bound.
pub const TRIGGER_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

impl Live {
    pub(super) fn new(planned: Planned) -> Live {
        Live {
            planned,
            injected_at: None,
            intent: None,
            ended: None,
            journaled: 0,
            judgement: None,
            waiting_alone: None,
            unread_since: None,
        }
    }
}

/// The trigger in words, for the plan and the journal.
pub fn trigger_words(step: &LaterStep, first: &str) -> String {
    let mut parts = Vec::new();
    if let Some(after) = step.after {
        parts.push(format!("{after} after the first injection"));
    }
    if let Some(when) = &step.when {
        if let Some(phase) = when.phase {
            parts.push(format!(
                "when {}'s {phase} phase has {}",
                when.step.as_deref().unwrap_or(first),
                when.edge.as_str()
            ));
        }
        if let Some(query) = &when.promql {
            parts.push(format!("when `{query}` returns a series"));
        }
    }
    format!("injected {}", parts.join(" and "))
}

/// When `phase`'s `edge` came, in `judgement` (a phase starts when the one
/// before it ends; the first, at the injection); `None` while it has not.
pub fn edge_time(
    judgement: &Judgement,
    injected_at: DateTime<Utc>,
    phase: Phase,
    edge: Edge,
) -> Option<DateTime<Utc>> {
    let at = judgement.phases.iter().position(|p| p.phase == phase)?;
    match edge {
        Edge::Ended => judgement.phases[at].ended.as_ref().map(|b| b.at),
        Edge::Started if at == 0 => Some(injected_at),
        Edge::Started => judgement.phases[at - 1].ended.as_ref().map(|b| b.at),
    }
}

/// Whether a phase trigger can never come now: its step is settled and
/// the edge was not reached.
fn never_comes(
    judgement: &Judgement,
    injected_at: DateTime<Utc>,
    phase: Phase,
    edge: Edge,
) -> bool {
    judgement.settled && edge_time(judgement, injected_at, phase, edge).is_none()
}

impl Runner {
    /// Plans every later step before anything is changed: its targets (a
    /// pool leaves out the earlier steps' targets; no `target` means the
    /// first step's), its plan (pidfiles named after the run and the
    /// step), its undo, and its expectation; each journaled
    /// `step_planned`. `Err`: how the scenario ends (nothing changed).
    pub(super) async fn plan_steps(
        &mut self,
        scenario: &Scenario,
        first: &[String],
        job: Option<u64>,
    ) -> Result<Vec<Planned>, Ending> {
        let name = scenario.name.as_str();
        let mut planned: Vec<Planned> = Vec::new();
        for spec in &scenario.steps {
            let mut earlier: Vec<String> = first.to_vec();
            for step in &planned {
                earlier.extend(step.targets.iter().cloned());
            }
            let seed = self.clock.now().timestamp_nanos_opt().unwrap_or_default() as u64;
            let targets = crate::targets::resolve_step_targets(
                &self.cluster,
                scenario,
                spec,
                first,
                &earlier,
                job,
                seed,
            )
            .await
            .map_err(|why| {
                Ending::new(
                    ScenarioOutcome::Aborted,
                    format!("step {}: {why} (nothing was changed)", spec.name),
                )
            })?;
            let plan = faults::plan(&spec.fault, &targets)
                .for_run(&format!("{}-{}", self.run_id, spec.name));
            let expect = scenario.step_expect(spec);
            let expectation = Expectation {
                recovery: expect.recovery,
                // Its nodes' phases: the job's resume is timed once, by the
                // first step, over the whole run (a later step's nodes may
                // not run the job when it strikes: a resume from it could
                // never come).
                phases: expect.phases(false),
                deadlines: expect.deadlines.set(),
                quiet_for: expect.quiet_for,
                max_lost_steps: None,
            };
            let last = expectation
                .deadlines
                .values()
                .max()
                .copied()
                .or(expectation.quiet_for);
            let give_up = last.map_or(std::time::Duration::from_secs(1800), |d| {
                d.as_std() + std::time::Duration::from_secs(300)
            });
            let actions: Vec<String> = plan.inject.iter().map(Step::describe).collect();
            self.log(
                Some(name),
                Entry::StepPlanned {
                    step: spec.name.clone(),
                    nodes: targets.clone(),
                    fault: spec.fault.kind().to_owned(),
                    action: actions.join("; "),
                    trigger: trigger_words(spec, name),
                    recovery: expectation.recovery,
                    phases: expectation.phases.clone(),
                    deadlines: expectation.deadlines.clone(),
                },
            );
            planned.push(Planned {
                spec: spec.clone(),
                undo: plan.rollback.clone(),
                targets,
                plan,
                reason: expect
                    .reason
                    .clone()
                    .or(expect.recovery.default_reason().map(str::to_owned)),
                expectation,
                give_up,
            });
        }
        Ok(planned)
    }

    /// One watch cycle for the later steps: each injected one judged (its
    /// phases journaled as they end), each pending one injected if its
    /// trigger came, each that can never be injected ended. `first`: the
    /// first step's injection and judgement; `union`: the baseline of
    /// every step's targets; `events`: all the watch saw. Whether every
    /// later step is settled.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn steps_cycle(
        &mut self,
        name: &str,
        first: (DateTime<Utc>, &Judgement),
        union: &Baseline,
        events: &[phases::Event],
        now: DateTime<Utc>,
        probes_due: bool,
        job: Option<u64>,
    ) -> bool {
        let mut later = std::mem::take(&mut self.later);
        for index in 0..later.len() {
            if later[index].ended.is_some() {
                continue;
            }
            if let Some(injected_at) = later[index].injected_at {
                self.judge_step(name, &mut later[index], injected_at, union, events, now);
                continue;
            }
            // Pending: its trigger, from the first step or an earlier one.
            let spec = later[index].planned.spec.clone();
            let mut due = true;
            let mut never = None;
            if let Some(after) = spec.after {
                due &= now >= first.0 + after.as_chrono();
            }
            if let Some(when) = &spec.when {
                if let Some(phase) = when.phase {
                    let (judgement, injected_at, whose) = match when.step.as_deref() {
                        None => (Some(first.1), Some(first.0), name.to_owned()),
                        Some(step) if step == name => {
                            (Some(first.1), Some(first.0), name.to_owned())
                        }
                        Some(step) => {
                            match later[..index].iter().find(|l| l.planned.spec.name == step) {
                                Some(l) => (l.judgement.as_ref(), l.injected_at, step.to_owned()),
                                None => (None, None, step.to_owned()),
                            }
                        }
                    };
                    match (judgement, injected_at) {
                        (Some(j), Some(at)) => {
                            due &= edge_time(j, at, phase, when.edge).is_some();
                            if never_comes(j, at, phase, when.edge) {
                                never = Some(format!(
                                    "never injected: {whose}'s {phase} phase never {} (its trigger)",
                                    when.edge.as_str()
                                ));
                            }
                        }
                        _ => {
                            due = false;
                            let gone = later[..index]
                                .iter()
                                .find(|l| l.planned.spec.name == whose)
                                .is_some_and(|l| l.ended.is_some() && l.injected_at.is_none());
                            if gone {
                                never = Some(format!(
                                    "never injected: {whose}, which triggers it, was never injected"
                                ));
                            }
                        }
                    }
                }
                if let Some(query) = &when.promql {
                    let holds = match probes_due {
                        false => false,
                        true => match self.promql_holds(query).await {
                            Ok(holds) => {
                                later[index].unread_since = None;
                                holds
                            }
                            Err(why) => {
                                let since = *later[index].unread_since.get_or_insert(now);
                                let blind = (now - since).to_std().unwrap_or_default();
                                if blind > TRIGGER_GRACE {
                                    never = Some(format!(
                                        "never injected: its trigger `{query}` could not be read for {}s: {why}",
                                        blind.as_secs()
                                    ));
                                }
                                false
                            }
                        },
                    };
                    due &= holds;
                }
            }
            // Nothing else left to watch: its trigger gets a bounded wait.
            let alone = first.1.settled
                && later
                    .iter()
                    .enumerate()
                    .all(|(i, l)| i == index || l.ended.is_some() || l.injected_at.is_none());
            if alone && !due && never.is_none() {
                let since = *later[index].waiting_alone.get_or_insert(now);
                let waited = (now - since).to_std().unwrap_or_default();
                if waited > TRIGGER_GRACE {
                    never = Some(format!(
                        "never injected: its trigger ({}) did not come within {}s of the rest of the scenario settling",
                        trigger_words(&spec, name).trim_start_matches("injected "),
                        TRIGGER_GRACE.as_secs()
                    ));
                }
            }
            if let Some(why) = never {
                self.end_step(name, &mut later[index], false, why);
                continue;
            }
            if due && !self.stopping() {
                self.inject_step(name, &mut later[index], now, job).await;
            }
        }
        let settled = later.iter().all(|l| l.ended.is_some());
        self.later = later;
        settled
    }

    /// Whether an instant PromQL query returns a series now (a trigger);
    /// `Err`: why it could not be asked.
    async fn promql_holds(&self, query: &str) -> Result<bool, String> {
        let endpoint = self
            .cluster
            .profile
            .monitoring
            .as_ref()
            .and_then(|m| m.prometheus.as_ref())
            .ok_or("the profile has no monitoring.prometheus")?;
        let body = self
            .monitoring_client()
            .get(endpoint, "/api/v1/query", &[("query", query)])
            .await
            .map_err(|e| e.to_string())?;
        crate::monitoring::expect::instant_result(&body)
            .map(|r| r.is_some())
            .map_err(|e| e.to_string())
    }

    /// Before any change: every later step's PromQL trigger can be asked
    /// (Prometheus configured, its metrics not near misses of known ones,
    /// the query answered); journaled as the check `step_triggers`. How
    /// the scenario ends if not (nothing changed).
    pub(super) async fn step_triggers_ready(&mut self, scenario: &Scenario) -> Option<Ending> {
        let queries: Vec<(String, String)> = self
            .later
            .iter()
            .filter_map(|l| {
                let when = l.planned.spec.when.as_ref()?;
                Some((l.planned.spec.name.clone(), when.promql.clone()?))
            })
            .collect();
        if queries.is_empty() {
            return None;
        }
        let mut problems = Vec::new();
        match self.cluster.profile.monitoring.clone() {
            None => problems.push("the profile has no `monitoring:` section to ask".to_owned()),
            Some(monitoring) => {
                let client = self.monitoring_client().clone();
                let mut readiness = crate::monitoring::Readiness::read(&client, &monitoring).await;
                for (step, query) in &queries {
                    readiness.promql_names(&format!("step {step}'s trigger"), query);
                }
                problems.append(&mut readiness.problems);
                for (step, query) in &queries {
                    if let Err(why) = self.promql_holds(query).await {
                        problems.push(format!(
                            "step {step}'s trigger `{query}` cannot be asked: {why}"
                        ));
                    }
                }
            }
        }
        let passed = problems.is_empty();
        let detail = if passed {
            format!("{} PromQL trigger(s) askable", queries.len())
        } else {
            problems.join("; ")
        };
        self.log(
            Some(&scenario.name),
            Entry::SteadyState {
                stage: crate::journal::Stage::Before,
                check: "step_triggers".to_owned(),
                passed,
                detail: detail.clone(),
            },
        );
        (!passed).then(|| {
            Ending::new(
                ScenarioOutcome::Error,
                format!("a step's trigger cannot be asked: {detail} (nothing was changed)"),
            )
        })
    }

    /// Injects a later step: its intent written ahead (with its undo), its
    /// steps fanned out over its targets, then its checks; journaled
    /// `step_injected` at its injection's time. A refused intent or a
    /// failed injection ends the step (not passed).
    async fn inject_step(
        &mut self,
        name: &str,
        live: &mut Live,
        now: DateTime<Utc>,
        job: Option<u64>,
    ) {
        let step = live.planned.spec.name.clone();
        let actions: Vec<String> = live
            .planned
            .plan
            .inject
            .iter()
            .map(Step::describe)
            .collect();
        let action = format!("step {step}: {}", actions.join("; "));
        let intent = match self
            .write_ahead(name, action.clone(), live.planned.undo.clone())
            .await
        {
            Ok(id) => id,
            Err(why) => {
                self.end_step(name, live, false, format!("not injected: {why}"));
                return;
            }
        };
        live.intent = Some(intent);
        live.injected_at = Some(now);
        let plan = live.planned.plan.clone();
        let results = self
            .execute_fanned(&plan.inject, job, fan_out::Mode::Change)
            .await;
        self.journal_steps(name, &plan.inject, &results);
        let mut failures: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.result.err().map(|e| e.to_string()))
            .collect();
        if failures.is_empty() {
            let checks = self
                .execute_fanned(&plan.verify, job, fan_out::Mode::Change)
                .await;
            self.journal_steps(name, &plan.verify, &checks);
            failures.extend(checks.into_iter().filter_map(|r| {
                r.result
                    .err()
                    .map(|e| format!("{}: {e}", plan.verify[r.index].describe()))
            }));
        }
        let ok = failures.is_empty();
        let detail = failures.join("; ");
        self.log(
            Some(name),
            Entry::StepInjected {
                step: step.clone(),
                injected_at: now,
                nodes: live.planned.targets.clone(),
                action: actions.join("; "),
                ok,
                detail: detail.clone(),
            },
        );
        if !ok {
            self.end_step(
                name,
                live,
                false,
                format!("its injection did not take: {detail}"),
            );
        }
    }

    /// Judges an injected step on its own targets from its own injection;
    /// journals each phase as it ends, and the step once it settles.
    fn judge_step(
        &mut self,
        name: &str,
        live: &mut Live,
        injected_at: DateTime<Utc>,
        union: &Baseline,
        events: &[phases::Event],
        now: DateTime<Utc>,
    ) {
        let mut own = union.clone();
        own.targets = live.planned.targets.clone();
        // What came before its injection is the earlier steps' story (a
        // mark HyperPod set for the first step is not this step's doing);
        // the job's progress before it is this step's baseline.
        let (before, after): (Vec<&phases::Event>, Vec<&phases::Event>) =
            events.iter().partition(|e| e.seen < injected_at);
        if let Some(step) = before.iter().rev().find_map(|e| match e.observation {
            phases::Observation::Progress { step, .. } => Some(step),
            _ => None,
        }) {
            own.progress = Some(step);
        }
        let events: Vec<phases::Event> = after.into_iter().cloned().collect();
        let events = events.as_slice();
        let give_up = injected_at
            + chrono::TimeDelta::from_std(live.planned.give_up).unwrap_or(chrono::TimeDelta::MAX);
        let (mut judgement, _) = phases::judge_scenario(
            injected_at,
            &own,
            &live.planned.expectation,
            events,
            now,
            now > give_up,
        );
        if let Some(expected) = &live.planned.reason
            && judgement.settled
            && let Some(why) = phases::wrong_mark(&own, expected, events)
        {
            judgement.passed = false;
            judgement.reason = match judgement.reason.is_empty() {
                true => why,
                false => format!("{why}; {}", judgement.reason),
            };
        }
        let step = live.planned.spec.name.clone();
        while let Some(result) = judgement.phases.get(live.journaled) {
            let (Some(end), Some(verdict)) = (&result.ended, result.verdict) else {
                break;
            };
            self.log(
                Some(name),
                Entry::StepPhaseEnded {
                    step: step.clone(),
                    phase: result.phase,
                    ended_at: end.at,
                    verdict,
                    time_source: end.time_source,
                    evidence: end.evidence.clone(),
                },
            );
            live.journaled += 1;
        }
        if judgement.settled {
            // What never ended is said as not reached.
            for result in judgement.phases.iter().skip(live.journaled) {
                self.log(
                    Some(name),
                    Entry::StepPhaseEnded {
                        step: step.clone(),
                        phase: result.phase,
                        ended_at: now,
                        verdict: PhaseVerdict::NotReached,
                        time_source: crate::journal::TimeSource::Observed,
                        evidence: judgement
                            .open_because
                            .clone()
                            .unwrap_or_else(|| "not seen before its deadline".into()),
                    },
                );
                live.journaled += 1;
            }
            let (passed, reason) = (judgement.passed, judgement.reason.clone());
            live.judgement = Some(judgement);
            self.end_step(name, live, passed, reason);
        } else {
            live.judgement = Some(judgement);
        }
    }

    fn end_step(&mut self, name: &str, live: &mut Live, passed: bool, reason: String) {
        if live.ended.is_some() {
            return;
        }
        live.ended = Some((passed, reason.clone()));
        self.log(
            Some(name),
            Entry::StepEnded {
                step: live.planned.spec.name.clone(),
                passed,
                reason,
            },
        );
    }

    /// At the watch's end (settled, aborted or stopped): every later step
    /// not ended yet is ended (injected: its phases as they stand; not
    /// injected: never); the failures, as `step NAME: why`.
    pub(super) fn close_steps(&mut self, name: &str, why: &str) -> Vec<String> {
        let mut later = std::mem::take(&mut self.later);
        for live in later.iter_mut().filter(|l| l.ended.is_none()) {
            let reason = match live.injected_at {
                Some(_) => format!("unfinished: {why}"),
                None => format!("never injected: {why}"),
            };
            self.end_step(name, live, false, reason);
        }
        let failures = later
            .iter()
            .filter_map(|l| match &l.ended {
                Some((false, why)) => Some(format!("step {}: {why}", l.planned.spec.name)),
                _ => None,
            })
            .collect();
        self.later = later;
        failures
    }

    /// Rolls back every later step that was begun, last first (before the
    /// first step's own rollback).
    pub(super) async fn roll_back_steps(&mut self, name: &str, job: Option<u64>) {
        let later = std::mem::take(&mut self.later);
        let begun = later.iter().filter(|l| l.intent.is_some()).count();
        for live in later.iter().rev() {
            if let Some(intent) = live.intent {
                // Which step the rollback lines that follow undo.
                self.log(
                    Some(name),
                    Entry::Observed {
                        source: crate::journal::Source::Harness,
                        node: None,
                        field: "rollback".into(),
                        from: None,
                        to: format!(
                            "undoing step {} (intent {intent}) before the steps before it",
                            live.planned.spec.name
                        ),
                        source_time: None,
                    },
                );
                self.roll_back(name, intent, &live.planned.undo, job).await;
            }
        }
        if begun > 0 {
            self.log(
                Some(name),
                Entry::Observed {
                    source: crate::journal::Source::Harness,
                    node: None,
                    field: "rollback".into(),
                    from: None,
                    to: format!("undoing the first step ({name})"),
                    source_time: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phases::{Boundary, PhaseResult};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + s, 0).unwrap()
    }

    fn judgement(ends: &[(Phase, Option<i64>)], settled: bool) -> Judgement {
        Judgement {
            phases: ends
                .iter()
                .map(|(phase, end)| PhaseResult {
                    phase: *phase,
                    started_at: None,
                    deadline: None,
                    ended: end.map(|s| Boundary {
                        at: t(s),
                        time_source: crate::journal::TimeSource::Observed,
                        evidence: String::new(),
                    }),
                    verdict: end.map(|_| PhaseVerdict::Met),
                })
                .collect(),
            lost_steps: None,
            settled,
            passed: false,
            reason: String::new(),
            open_because: None,
        }
    }

    #[test]
    fn a_phase_starts_when_the_one_before_it_ends() {
        let j = judgement(
            &[
                (Phase::Detect, Some(3)),
                (Phase::Drain, Some(5)),
                (Phase::Replace, None),
            ],
            false,
        );
        assert_eq!(
            edge_time(&j, t(0), Phase::Detect, Edge::Started),
            Some(t(0))
        );
        assert_eq!(edge_time(&j, t(0), Phase::Detect, Edge::Ended), Some(t(3)));
        assert_eq!(
            edge_time(&j, t(0), Phase::Replace, Edge::Started),
            Some(t(5))
        );
        assert_eq!(edge_time(&j, t(0), Phase::Replace, Edge::Ended), None);
        assert_eq!(edge_time(&j, t(0), Phase::Reboot, Edge::Started), None);
        assert!(!never_comes(&j, t(0), Phase::Replace, Edge::Ended));
        let settled = judgement(&[(Phase::Detect, Some(3)), (Phase::Drain, None)], true);
        assert!(never_comes(&settled, t(0), Phase::Drain, Edge::Ended));
        assert!(!never_comes(&settled, t(0), Phase::Drain, Edge::Started));
    }

    #[test]
    fn a_trigger_in_words_says_what_it_waits_for() {
        let step: LaterStep = serde_saphyr::from_str(
            "name: second\nfault: {node_replace: {method: slurm}}\nafter: 10s\nwhen: {phase: replace}\n",
        )
        .unwrap();
        assert_eq!(
            trigger_words(&step, "first"),
            "injected 10s after the first injection and when first's replace phase has started"
        );
    }
}
