//! Journal → [`Report`]: a pure fold over the records. It trusts nothing to
//! be complete: phases that never ended, scenarios that never ended and a
//! run with no end record are all reported as such.

use chrono::{DateTime, Utc};

use super::{
    CheckReport, CollectedReport, MonitoringReport, NodePhaseReport, PhaseReport, PhaseSpread,
    PushReport, REPORT_SCHEMA_VERSION, RegressionReport, Report, RollbackReport, ScenarioReport,
    Status, TimelineEntry, Verdict, WatchReport,
};
use crate::duration::{Duration, span};
use crate::journal::{
    Entry, Journal, Record, RunOutcome, ScenarioOutcome, Source, cost_text, watch_cost_text,
};

/// The report of a whole journal: its records folded in order, then the
/// run's ending and what it left applied (see [`Builder`]).
pub fn build(journal: &Journal) -> Report {
    let mut builder = Builder::new();
    for record in &journal.records {
        builder.push(record);
    }
    builder.finish(journal)
}

/// The report built record by record, as the records are written: the
/// runner hands each one over at its write point, so a scenario's figures
/// (for the metrics push) are known without reading the journal back.
#[derive(Debug, Clone)]
pub struct Builder {
    report: Report,
    run_outcome: Option<RunOutcome>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            report: empty_report(&[]),
            run_outcome: None,
        }
    }

    /// Folds one record in.
    pub fn push(&mut self, record: &Record) {
        match (&record.scenario, &record.entry) {
            (
                _,
                Entry::RunStarted {
                    run_id,
                    harness_version,
                    cluster,
                    suite,
                    slurm_version,
                    ..
                },
            ) => {
                self.report.slurm_version = slurm_version.clone();
                self.report.run_id = run_id.clone();
                self.report.harness_version = harness_version.clone();
                self.report.cluster = cluster.clone();
                self.report.suite = suite.clone();
                self.report.started_at = Some(record.at);
            }
            (_, Entry::LeaseLost { reason, .. }) if self.report.lease_lost.is_none() => {
                self.report.lease_lost = Some(reason.clone());
                if let Some(name) = &record.scenario
                    && let Some(scenario) = self
                        .report
                        .scenarios
                        .iter_mut()
                        .rev()
                        .find(|s| &s.name == name)
                {
                    apply(scenario, record, &record.entry);
                }
            }
            (_, Entry::RecoverEnded { still_applied }) => {
                self.report.recovered = Some(record.at);
                self.report.still_applied = still_applied.clone();
            }
            (_, Entry::RunEnded { outcome }) => {
                self.report.ended_at = Some(record.at);
                self.run_outcome = Some(*outcome);
            }
            (Some(name), Entry::ScenarioStarted { .. }) => {
                if let Some(scenario) = started_scenario(name, record) {
                    self.report.scenarios.push(scenario);
                }
            }
            (Some(name), entry) => {
                if let Some(scenario) = self
                    .report
                    .scenarios
                    .iter_mut()
                    .rev()
                    .find(|s| &s.name == name)
                {
                    apply(scenario, record, entry);
                }
            }
            (None, _) => {}
        }
    }

    /// The report as it stands, for a run still under way (no end record
    /// yet: the run is incomplete, the scenarios as far as they went).
    pub fn so_far(&self) -> Report {
        let mut report = self.report.clone();
        finish(&mut report, true, self.run_outcome);
        report
    }

    /// The whole report: the run's ending, the journal's damaged lines, and
    /// what the run left applied (its still-open intents) and how to undo
    /// it.
    pub fn finish(self, journal: &Journal) -> Report {
        let mut report = self.report;
        report.damaged_lines = journal.damaged.clone();
        finish(&mut report, journal.cut_short, self.run_outcome);
        if report.recovered.is_none() {
            report.still_applied = journal
                .still_applied()
                .iter()
                .map(|p| p.step.describe())
                .collect();
            if !report.still_applied.is_empty() {
                report.recover_command = Some(recover_command(journal));
            }
        }
        report
    }
}

/// The report before any record is folded in: the journal's damaged lines,
/// an incomplete status, and nothing else known yet.
fn empty_report(damaged: &[(usize, String)]) -> Report {
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run_id: String::new(),
        harness_version: String::new(),
        cluster: String::new(),
        slurm_version: None,
        suite: None,
        started_at: None,
        ended_at: None,
        status: Status::Incomplete,
        scenarios: Vec::new(),
        damaged_lines: damaged.to_vec(),
        still_applied: Vec::new(),
        recover_command: None,
        recovered: None,
        lease_lost: None,
    }
}

/// The `hpchaos recover` command line that undoes what the run left
/// applied, with placeholders for the profile or journal it cannot tell.
fn recover_command(journal: &Journal) -> String {
    let profile = journal.run().and_then(|(_, p)| p).unwrap_or("PROFILE");
    // The lock record holds the journal's absolute path.
    let journal_path = journal.records.iter().find_map(|r| match &r.entry {
        Entry::LockAcquired { owner } => owner["journal"].as_str().map(str::to_owned),
        _ => None,
    });
    format!(
        "hpchaos recover --cluster {profile} {}",
        journal_path.unwrap_or_else(|| "JOURNAL".to_owned())
    )
}

/// The fault's settings in the scenario `source` (the file as it ran), in
/// YAML's flow style and the order written: `slow: {cpu_quota: {cpus:
/// 0.05}}, duration: 20s`. `None` when the source does not parse or the
/// fault has no settings.
pub fn fault_settings(source: &str) -> Option<String> {
    use crate::scenario::yaml_tree::{Node, Value};
    let tree = Node::parse(source).ok()?;
    let settings = &tree.entry("fault")?.value.entries().first()?.value;
    match &settings.value {
        Value::Mapping(entries) if !entries.is_empty() => Some(flow_entries(entries)),
        Value::Mapping(_) | Value::Null => None,
        _ => Some(flow(settings)),
    }
}

/// A mapping's entries in YAML's flow style, without the braces.
fn flow_entries(entries: &[crate::scenario::yaml_tree::Entry]) -> String {
    entries
        .iter()
        .map(|entry| format!("{}: {}", entry.key, flow(&entry.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One value in YAML's flow style: a string quoted only when it holds
/// what the flow style gives a meaning to.
fn flow(node: &crate::scenario::yaml_tree::Node) -> String {
    use crate::scenario::yaml_tree::Value;
    match &node.value {
        Value::Mapping(entries) => format!("{{{}}}", flow_entries(entries)),
        Value::Sequence(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Value::String(text) if needs_quotes(text) => {
            serde_json::Value::String(text.clone()).to_string()
        }
        Value::String(text) => text.clone(),
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Integer(n) => n.to_string(),
        // `1.0` stays `1.0`, not `1`.
        Value::Float(x) => format!("{x:?}"),
    }
}

/// Whether a string would not read back as itself unquoted in YAML's flow
/// style: empty, edged with spaces, over lines, a number, a boolean or
/// null, starting with an indicator, or holding what a flow gives a
/// meaning to.
fn needs_quotes(text: &str) -> bool {
    let words = ["true", "false", "yes", "no", "on", "off", "null", "~"];
    text.is_empty()
        || text.trim() != text
        || text.contains(['\n', '\r', '\t'])
        || text.parse::<f64>().is_ok()
        || words.iter().any(|w| text.eq_ignore_ascii_case(w))
        || text.starts_with([
            '-', '?', ':', '!', '&', '*', '|', '>', '%', '@', '`', '\'', '"',
        ])
        || text.contains([',', '[', ']', '{', '}', '#', '"', '\''])
        || text.contains(": ")
        || text.ends_with(':')
}

/// A scenario's report as its start record opens it: every phase it times
/// not reached yet, with its deadline. `None` for any other record.
fn started_scenario(name: &str, record: &Record) -> Option<ScenarioReport> {
    let Entry::ScenarioStarted {
        file,
        description,
        fault,
        recovery,
        deadlines,
        max_lost_steps,
        phases,
        source,
        tags,
    } = &record.entry
    else {
        return None;
    };
    Some(ScenarioReport {
        name: name.to_owned(),
        file: file.clone(),
        description: description.clone(),
        fault: fault.clone(),
        fault_settings: fault_settings(source),
        tags: tags.clone(),
        recovery: *recovery,
        status: Status::Incomplete,
        reason: String::new(),
        started_at: record.at,
        ended_at: None,
        injected_at: None,
        targets: Vec::new(),
        phases: if phases.is_empty() {
            recovery.phases()
        } else {
            phases.as_slice()
        }
        .iter()
        .map(|phase| PhaseReport {
            phase: *phase,
            started_at: None,
            ended_at: None,
            duration: None,
            elapsed: None,
            deadline: deadlines.get(phase).copied(),
            verdict: Verdict::NotReached,
            time_source: None,
            evidence: String::new(),
        })
        .collect(),
        steady_state: Vec::new(),
        lost_steps: None,
        max_lost_steps: *max_lost_steps,
        requeue_delay: None,
        rollback: Vec::new(),
        throughput: None,
        steps: Vec::new(),
        per_node: Vec::new(),
        spread: Vec::new(),
        regression: Vec::new(),
        monitoring: Vec::new(),
        pushed: Vec::new(),
        collected: Vec::new(),
        cost: None,
        watch: None,
        timeline: Vec::new(),
        evidence: Vec::new(),
        source: source.clone(),
    })
}

/// Folds one scenario record into its report: one helper per kind of
/// record (around the injection, the injection, the phases, what was
/// measured, the regression gates, the monitoring, and how the scenario
/// ended).
fn apply(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::TargetsResolved { .. }
        | Entry::SteadyState { .. }
        | Entry::CanarySubmitted { .. }
        | Entry::HostKeyAccepted { .. } => apply_setup(scenario, record, entry),
        Entry::InjectionStarted { .. }
        | Entry::StepRan { .. }
        | Entry::InjectionFinished { .. }
        | Entry::Observed { .. } => apply_injection(scenario, record, entry),
        Entry::PhaseStarted { .. } | Entry::PhaseEnded { .. } | Entry::NodePhaseEnded { .. } => {
            apply_phase(scenario, record, entry)
        }
        Entry::Throughput {
            throughput,
            slowed_for,
            noticed,
        } => {
            harness_note(
                scenario,
                record,
                format!("throughput: {}", throughput.words()),
            );
            scenario.throughput = Some(crate::report::ThroughputReport {
                rates: throughput.clone(),
                slowed_for_seconds: slowed_for.as_std().as_secs_f64(),
                noticed: noticed.clone(),
            });
        }
        Entry::StepPlanned { .. }
        | Entry::StepInjected { .. }
        | Entry::StepPhaseEnded { .. }
        | Entry::StepEnded { .. } => apply_step(scenario, record, entry),
        Entry::WatchCost { .. }
        | Entry::EvidenceCollected { .. }
        | Entry::FailureCost { .. }
        | Entry::ResultsPushed { .. } => apply_measured(scenario, record, entry),
        Entry::RegressionChecked { .. } | Entry::RegressionUnchecked { .. } => {
            apply_regression(scenario, record, entry)
        }
        Entry::MonitoringSeen { .. }
        | Entry::MonitoringUnread { .. }
        | Entry::MonitoringJudged { .. } => apply_monitoring(scenario, record, entry),
        Entry::Rollback { .. }
        | Entry::Aborted { .. }
        | Entry::LeaseLost { .. }
        | Entry::StopRequested { .. }
        | Entry::Error { .. }
        | Entry::ScenarioEnded { .. } => apply_ending(scenario, record, entry),
        Entry::RunStarted { .. }
        | Entry::RunEnded { .. }
        | Entry::ScenarioStarted { .. }
        | Entry::LockAcquired { .. }
        | Entry::Intent { .. }
        | Entry::RecoverStarted { .. }
        | Entry::RecoverEnded { .. } => {}
    }
}

/// Appends one line to the scenario's timeline, at the record's time.
fn note(
    scenario: &mut ScenarioReport,
    record: &Record,
    source: Source,
    node: Option<String>,
    source_time: Option<DateTime<Utc>>,
    text: String,
) {
    scenario.timeline.push(TimelineEntry {
        at: record.at,
        source_time,
        source,
        node,
        text,
    });
}

/// Appends a line of the harness's own to the timeline: no node, no
/// source time.
fn harness_note(scenario: &mut ScenarioReport, record: &Record, text: String) {
    note(scenario, record, Source::Harness, None, None, text);
}

/// Folds a record from around the injection into the scenario: the
/// targets, the steady-state checks, the canary job and accepted host keys.
fn apply_setup(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::TargetsResolved { nodes } => {
            harness_note(
                scenario,
                record,
                format!("targets resolved: {}", nodes.join(", ")),
            );
            scenario.targets = nodes.clone();
        }
        Entry::SteadyState {
            stage,
            check,
            passed,
            detail,
        } => {
            let verdict = if *passed { "holds" } else { "FAILS" };
            harness_note(
                scenario,
                record,
                format!("steady state ({stage:?}): {check} {verdict}").to_lowercase(),
            );
            scenario.steady_state.push(CheckReport {
                stage: *stage,
                check: check.clone(),
                passed: *passed,
                detail: detail.clone(),
            });
        }
        Entry::HostKeyAccepted {
            node,
            instance_id,
            fingerprint,
            replaces,
        } => note(
            scenario,
            record,
            Source::Harness,
            Some(node.clone()),
            None,
            crate::journal::host_key_text(node, instance_id, fingerprint, replaces.as_ref()),
        ),
        Entry::CanarySubmitted { job, .. } => {
            harness_note(scenario, record, format!("canary submitted: job {job}"))
        }
        _ => {}
    }
}

/// Folds a record of the fault's injection into the scenario: when it
/// started, the steps run on the nodes, whether it took, and what the
/// sources observed (and the evidence among it).
fn apply_injection(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::InjectionStarted { nodes, action } => {
            harness_note(
                scenario,
                record,
                format!("inject on {}: {action}", nodes.join(", ")),
            );
            scenario.injected_at = Some(record.at);
        }
        Entry::StepRan {
            node,
            step,
            took_ms,
            ok,
            detail,
            ..
        } => {
            let outcome = if *ok { "done" } else { "FAILED" };
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            note(
                scenario,
                record,
                Source::Harness,
                node.clone(),
                None,
                format!("step {outcome} in {took_ms} ms: {step}{detail}"),
            );
        }
        Entry::InjectionFinished { ok, detail } => {
            let what = if *ok {
                "injection took"
            } else {
                "injection FAILED"
            };
            harness_note(scenario, record, format!("{what}: {detail}"));
        }
        Entry::Observed {
            source,
            node,
            field,
            from,
            to,
            source_time,
        } => {
            let text = match from {
                Some(from) => format!("{field}: {from} → {to}"),
                None => format!("{field}: {to}"),
            };
            note(scenario, record, *source, node.clone(), *source_time, text);
            if field == "requeue_delay" {
                scenario.requeue_delay = Some(to.clone());
            }
            if field == "reason" || matches!(source, Source::SlurmctldLog | Source::JobOutput) {
                let node = node.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
                scenario
                    .evidence
                    .push(format!("[{}{node}] {to}", source.as_str()));
            }
        }
        _ => {}
    }
}

/// Folds a phase's start or end (over the scenario, or on one node) into
/// the scenario's phases and per-node rows.
fn apply_phase(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::PhaseStarted {
            phase,
            started_at,
            deadline,
        } => {
            harness_note(scenario, record, format!("phase {phase} started"));
            if let Some(report) = scenario.phases.iter_mut().find(|p| p.phase == *phase) {
                report.started_at = Some(*started_at);
                report.deadline = deadline.or(report.deadline);
                report.verdict = Verdict::Unfinished;
            }
        }
        Entry::PhaseEnded {
            phase,
            ended_at,
            verdict,
            time_source,
            evidence,
            lost_steps,
        } => {
            harness_note(
                scenario,
                record,
                format!("phase {phase} ended: {}", Verdict::from(*verdict).as_str()),
            );
            if lost_steps.is_some() {
                scenario.lost_steps = *lost_steps;
            }
            if let Some(report) = scenario.phases.iter_mut().find(|p| p.phase == *phase) {
                report.ended_at = Some(*ended_at);
                report.verdict = (*verdict).into();
                report.time_source = Some(*time_source);
                report.evidence = evidence.clone();
            }
        }
        Entry::NodePhaseEnded {
            node,
            phase,
            ended_at,
            verdict,
            time_source,
            evidence,
        } => {
            note(
                scenario,
                record,
                Source::Harness,
                Some(node.clone()),
                None,
                format!(
                    "phase {phase} ended on {node}: {}",
                    Verdict::from(*verdict).as_str()
                ),
            );
            scenario.per_node.push(NodePhaseReport {
                node: node.clone(),
                phase: *phase,
                ended_at: *ended_at,
                elapsed: None,
                verdict: (*verdict).into(),
                time_source: *time_source,
                evidence: evidence.clone(),
            });
        }
        _ => {}
    }
}

/// Folds a regression gate into the scenario: judged against the
/// baseline, or not judged and why.
fn apply_regression(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::RegressionChecked {
            phase,
            seconds,
            baseline_seconds,
            baseline_from,
            increase_percent,
            max_increase_percent,
            passed,
        } => {
            let gate = RegressionReport {
                phase: *phase,
                passed: Some(*passed),
                seconds: Some(*seconds),
                baseline_seconds: Some(*baseline_seconds),
                baseline_from: Some(baseline_from.clone()),
                increase_percent: Some(*increase_percent),
                max_increase_percent: Some(*max_increase_percent),
                note: String::new(),
            };
            let verdict = if *passed { "holds" } else { "FAILS" };
            harness_note(
                scenario,
                record,
                format!("regression gate {verdict}: {}", gate.describe()),
            );
            scenario.regression.push(gate);
        }
        Entry::RegressionUnchecked { phase, why } => {
            harness_note(
                scenario,
                record,
                format!("regression gate on {phase} not judged: {why}"),
            );
            scenario.regression.push(RegressionReport {
                phase: *phase,
                passed: None,
                seconds: None,
                baseline_seconds: None,
                baseline_from: None,
                increase_percent: None,
                max_increase_percent: None,
                note: why.clone(),
            });
        }
        _ => {}
    }
}

/// Folds what the scenario measured or kept into its report: the watch's
/// cost, the evidence collected, the failure's cost and the results pushed.
fn apply_measured(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::WatchCost {
            seconds,
            api_calls,
            cycles,
            slurm_cycle_ms_p50,
            cpu_ms,
            peak_rss_kib,
            ..
        } => {
            harness_note(scenario, record, watch_cost_text(entry));
            scenario.watch = Some(WatchReport {
                seconds: *seconds,
                api_calls: *api_calls,
                api_calls_per_minute: api_calls
                    .filter(|_| *seconds > 0.0)
                    .map(|c| c as f64 * 60.0 / seconds),
                cycles: *cycles,
                slurm_cycle_ms_p50: *slurm_cycle_ms_p50,
                cpu_ms: *cpu_ms,
                peak_rss_kib: *peak_rss_kib,
            });
        }
        Entry::EvidenceCollected {
            node,
            why,
            files,
            collected_at,
        } => {
            // At the time it was collected, not when the watch's end
            // journaled it.
            let entry = TimelineEntry {
                at: collected_at.unwrap_or(record.at),
                source_time: None,
                source: Source::Harness,
                node: Some(node.clone()),
                text: format!("evidence collected ({why}): {} file(s)", files.len()),
            };
            let at = scenario.timeline.partition_point(|t| t.at <= entry.at);
            scenario.timeline.insert(at, entry);
            scenario.collected.push(CollectedReport {
                node: node.clone(),
                why: why.clone(),
                files: files.clone(),
            });
        }
        Entry::FailureCost { cost } => {
            harness_note(scenario, record, cost_text(cost));
            scenario.cost = Some(cost.clone());
        }
        Entry::ResultsPushed { to, error, series } => {
            harness_note(
                scenario,
                record,
                match error {
                    None => format!("results pushed to {to}: {series} series"),
                    Some(e) => format!("results NOT pushed to {to}: {e}"),
                },
            );
            scenario.pushed.push(PushReport {
                to: to.clone(),
                series: *series,
                error: error.clone(),
            });
        }
        _ => {}
    }
}

/// Folds a monitoring record into the scenario: an alert or metric seen,
/// a source that could not be read, and each expectation's verdict with
/// how long after the injection it was seen.
fn apply_monitoring(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::MonitoringSeen {
            name,
            target,
            source,
            seen_at,
            detail,
            ..
        } => note(
            scenario,
            record,
            Source::Monitoring,
            target.clone(),
            Some(*seen_at),
            format!("monitoring: {name} seen in {source}: {detail}"),
        ),
        Entry::MonitoringUnread { name, error } => note(
            scenario,
            record,
            Source::Monitoring,
            None,
            None,
            format!("monitoring: {name} could not be read: {error}"),
        ),
        Entry::MonitoringJudged {
            name,
            query,
            source,
            within,
            seen_at,
            verdict,
            detail,
            blind_spot,
            muted,
        } => {
            let elapsed = seen_at
                .zip(scenario.injected_at)
                .and_then(|(seen, injected)| (seen - injected).to_std().ok())
                .map(|d| Duration(std::time::Duration::from_millis(d.as_millis() as u64)));
            note(
                scenario,
                record,
                Source::Monitoring,
                None,
                *seen_at,
                crate::journal::monitoring_judged_text(name, *verdict, detail),
            );
            // Journals before the flags were recorded: their words.
            let blind_spot = blind_spot.unwrap_or_else(|| detail.contains("never saw the fault"));
            let muted = muted.unwrap_or_else(|| detail.contains("nobody was paged"));
            scenario.monitoring.push(MonitoringReport {
                name: name.clone(),
                query: query.clone(),
                source: source.clone(),
                deadline: Some(*within),
                seen_at: *seen_at,
                elapsed,
                verdict: (*verdict).into(),
                detail: detail.clone(),
                blind_spot,
                muted,
            });
        }
        _ => {}
    }
}

/// Folds how the scenario ended into its report: the rollback steps, an
/// abort, a lost lease, an error, and the end record's status and reason.
fn apply_ending(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    match entry {
        Entry::Rollback {
            step, ok, detail, ..
        } => {
            let what = if *ok { "rollback" } else { "rollback FAILED" };
            harness_note(scenario, record, format!("{what}: {step}"));
            scenario.rollback.push(RollbackReport {
                step: step.clone(),
                ok: *ok,
                detail: detail.clone(),
            });
        }
        Entry::Aborted { reason } => {
            harness_note(scenario, record, format!("ABORT: {reason}"));
            scenario.reason = reason.clone();
        }
        Entry::StopRequested { .. } => {
            harness_note(scenario, record, crate::journal::run_text(entry));
        }
        Entry::LeaseLost { reason, rollback } => {
            harness_note(
                scenario,
                record,
                format!("LEASE LOST: {reason}; {rollback}"),
            );
            scenario.reason = format!("the run lost the cluster's lock: {reason}");
        }
        Entry::Error { message } => {
            harness_note(scenario, record, format!("error: {message}"));
            if scenario.reason.is_empty() {
                scenario.reason = message.clone();
            }
        }
        Entry::ScenarioEnded { outcome, reason } => {
            harness_note(
                scenario,
                record,
                format!("scenario ended: {outcome:?}").to_lowercase(),
            );
            scenario.ended_at = Some(record.at);
            scenario.status = match outcome {
                ScenarioOutcome::Passed => Status::Passed,
                ScenarioOutcome::Failed => Status::Failed,
                ScenarioOutcome::Aborted => Status::Aborted,
                ScenarioOutcome::Error => Status::Error,
                ScenarioOutcome::Interrupted => Status::Interrupted,
            };
            if !reason.is_empty() {
                scenario.reason = reason.clone();
            }
        }
        _ => {}
    }
}

/// Folds a later step's record into its report (see [`StepReport`]).
fn apply_step(scenario: &mut ScenarioReport, record: &Record, entry: &Entry) {
    harness_note(scenario, record, crate::journal::step_text(entry));
    match entry {
        Entry::StepPlanned {
            step,
            nodes,
            fault,
            trigger,
            recovery,
            phases,
            deadlines,
            ..
        } => scenario.steps.push(crate::report::StepReport {
            name: step.clone(),
            fault: fault.clone(),
            targets: nodes.clone(),
            trigger: trigger.clone(),
            recovery: *recovery,
            injected_at: None,
            status: Status::Incomplete,
            reason: String::new(),
            phases: phases
                .iter()
                .map(|phase| PhaseReport {
                    phase: *phase,
                    started_at: None,
                    ended_at: None,
                    duration: None,
                    elapsed: None,
                    deadline: deadlines.get(phase).copied(),
                    verdict: Verdict::NotStarted,
                    time_source: None,
                    evidence: String::new(),
                })
                .collect(),
        }),
        Entry::StepInjected {
            step, injected_at, ..
        } => {
            if let Some(report) = scenario.steps.iter_mut().find(|s| &s.name == step) {
                report.injected_at = Some(*injected_at);
                if let Some(first) = report.phases.first_mut() {
                    first.started_at = Some(*injected_at);
                    first.verdict = Verdict::Unfinished;
                }
            }
        }
        Entry::StepPhaseEnded {
            step,
            phase,
            ended_at,
            verdict,
            time_source,
            evidence,
        } => {
            let Some(report) = scenario.steps.iter_mut().find(|s| &s.name == step) else {
                return;
            };
            let Some(at) = report.phases.iter().position(|p| p.phase == *phase) else {
                return;
            };
            let row = &mut report.phases[at];
            row.ended_at = Some(*ended_at);
            row.verdict = (*verdict).into();
            row.time_source = Some(*time_source);
            row.evidence = evidence.clone();
            if let Some(next) = report.phases.get_mut(at + 1) {
                next.started_at = Some(*ended_at);
                next.verdict = Verdict::Unfinished;
            }
        }
        Entry::StepEnded {
            step,
            passed,
            reason,
        } => {
            if let Some(report) = scenario.steps.iter_mut().find(|s| &s.name == step) {
                report.status = match (passed, report.injected_at) {
                    (true, _) => Status::Passed,
                    (false, Some(_)) => Status::Failed,
                    (false, None) => Status::Error,
                };
                report.reason = reason.clone();
            }
        }
        _ => {}
    }
}

/// Derived fields and the statuses of whatever the journal left open.
fn finish(report: &mut Report, cut_short: bool, run_outcome: Option<RunOutcome>) {
    let interrupted = run_outcome == Some(RunOutcome::Interrupted);
    for scenario in &mut report.scenarios {
        if let Some(injected) = scenario.injected_at {
            for row in &mut scenario.per_node {
                row.elapsed = Some(span(injected, row.ended_at));
            }
        }
        scenario.spread = spread(scenario);
        for step in &mut scenario.steps {
            for phase in &mut step.phases {
                if let (Some(start), Some(end), false) = (
                    phase.started_at,
                    phase.ended_at,
                    phase.verdict == Verdict::NotReached,
                ) {
                    phase.duration = Some(span(start, end));
                }
                if let (Some(injected), Some(end)) = (step.injected_at, phase.ended_at) {
                    phase.elapsed = Some(span(injected, end));
                }
            }
        }
        for phase in &mut scenario.phases {
            // A phase not reached took no time: its end is when the watch
            // gave up on it (shown since the injection), not when it ended.
            if let (Some(start), Some(end), false) = (
                phase.started_at,
                phase.ended_at,
                phase.verdict == Verdict::NotReached,
            ) {
                phase.duration = Some(span(start, end));
            }
            if let (Some(injected), Some(end)) = (scenario.injected_at, phase.ended_at) {
                phase.elapsed = Some(span(injected, end));
            }
        }
        let stopped_early = scenario.ended_at.is_none()
            || matches!(
                scenario.status,
                Status::Aborted | Status::Error | Status::Interrupted
            );
        if stopped_early {
            for phase in scenario
                .phases
                .iter_mut()
                .filter(|p| p.started_at.is_none())
            {
                phase.verdict = Verdict::NotStarted;
            }
        }
        if scenario.ended_at.is_none() {
            scenario.status = if interrupted {
                Status::Interrupted
            } else {
                Status::Incomplete
            };
            if scenario.reason.is_empty() {
                scenario.reason = if interrupted {
                    "the run was interrupted".to_owned()
                } else {
                    "the journal ends before this scenario did".to_owned()
                };
            }
        }
    }
    report.status = match (cut_short, run_outcome) {
        (true, _) | (false, None) => Status::Incomplete,
        (false, Some(RunOutcome::Interrupted)) => Status::Interrupted,
        (false, Some(RunOutcome::Aborted)) => Status::Aborted,
        (false, Some(RunOutcome::Completed)) => report
            .scenarios
            .iter()
            .map(|s| s.status)
            .max()
            .unwrap_or(Status::Passed),
    };
}

/// Each phase over the scenario's targets, from the per-node rows; empty
/// for a scenario with one target or none timed per node.
fn spread(scenario: &ScenarioReport) -> Vec<PhaseSpread> {
    if scenario.per_node.is_empty() || scenario.targets.len() < 2 {
        return Vec::new();
    }
    scenario
        .phases
        .iter()
        .map(|phase| {
            let mut rows: Vec<(&str, Duration)> = scenario
                .per_node
                .iter()
                .filter(|r| r.phase == phase.phase)
                .filter_map(|r| r.elapsed.map(|e| (r.node.as_str(), e)))
                .collect();
            rows.sort_by_key(|(_, e)| *e);
            // The lower median: a time some target actually took.
            let p50 = rows.get(rows.len().saturating_sub(1) / 2).map(|r| r.1);
            PhaseSpread {
                phase: phase.phase,
                targets: scenario.targets.len(),
                reached: rows.len(),
                min: rows.first().map(|r| r.1),
                p50,
                max: rows.last().map(|r| r.1),
                slowest: rows.last().map(|r| r.0.to_owned()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fault_settings;

    /// The fault's settings as written, in flow style, whatever their
    /// shape: nested mappings, a word where a number may be, a list, a
    /// string that needs quotes; none for a fault without settings or a
    /// source that does not parse.
    #[test]
    fn a_faults_settings_are_said_as_written() {
        let scenario = |fault: &str| {
            format!(
                "name: s\ntarget: {{ pool: {{ nodes: [a] }} }}\nfault:\n{fault}\nexpect: {{ recovery: none }}\n"
            )
        };
        assert_eq!(
            fault_settings(&scenario(
                "  straggler:\n    slow: { cpu_quota: { cpus: 0.05 } }\n    duration: 20s"
            ))
            .as_deref(),
            Some("slow: {cpu_quota: {cpus: 0.05}}, duration: 20s")
        );
        assert_eq!(
            fault_settings(&scenario("  hang: { rank: random }")).as_deref(),
            Some("rank: random")
        );
        assert_eq!(
            fault_settings(&scenario(
                "  network:\n    effect: { bandwidth: { mbit: 10 } }\n    peers: [ip-10-1-0-12, ip-10-1-0-13]"
            ))
            .as_deref(),
            Some("effect: {bandwidth: {mbit: 10}}, peers: [ip-10-1-0-12, ip-10-1-0-13]")
        );
        assert_eq!(
            fault_settings(&scenario(
                "  process_kill:\n    target: { pattern: '^python: train' }"
            ))
            .as_deref(),
            Some(r#"target: {pattern: "^python: train"}"#)
        );
        // Strings that read as something else, or span lines, are quoted;
        // a float keeps its point.
        assert_eq!(
            fault_settings(&scenario(
                "  straggler:\n    slow: { power_cap: { watts: 350.0 } }\n    note: \"79\"\n    flag: 'true'\n    anchor: '*x'\n    text: |\n      two\n      lines"
            ))
            .as_deref(),
            Some(r#"slow: {power_cap: {watts: 350.0}}, note: "79", flag: "true", anchor: "*x", text: "two\nlines\n""#)
        );
        assert_eq!(fault_settings(&scenario("  node_reboot: {}")), None);
        assert_eq!(fault_settings("fault: [unclosed"), None);
    }
}
