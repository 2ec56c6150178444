//! A run's figures as Prometheus metrics, in the text exposition format
//! (version 0.0.4), for a Pushgateway or a textfile collector:
//! `hpchaos report JOURNAL --format prometheus | curl --data-binary @-
//! http://pushgateway:9091/metrics/job/hpchaos/scenario/NAME`.
//!
//! Names follow Prometheus's conventions (base units in the name:
//! `_seconds`, `_ratio`; no `_total`, as these are a run's gauges, not
//! counters). Labels are the scenario and the phase: the run id is in
//! `hpchaos_run_info` only, so series do not multiply with every run.

use std::fmt::Write as _;

use super::{Exporter, Report, ScenarioReport, Verdict};

pub struct PrometheusExporter;

/// One metric family: its name, help, and samples (labels, value); a
/// gauge.
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

/// A label value escaped as the exposition format asks (`\\`, `\"`, `\n`).
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_family(out: &mut String, family: &Family) {
    if family.samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
    let _ = writeln!(out, "# TYPE {} gauge", family.name);
    for (labels, value) in &family.samples {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let _ = writeln!(out, "{}{{{}}} {value}", family.name, labels.join(","));
    }
}

impl Exporter for PrometheusExporter {
    fn render(&self, report: &Report) -> String {
        render(&families(report))
    }
}

/// Families in the text exposition format.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        render_family(&mut out, family);
    }
    out
}

/// The report's figures as metric families, for the text format and for
/// remote write alike.
pub fn families(report: &Report) -> Vec<Family> {
    let mut scenarios = ScenarioFamilies::new();
    for scenario in &report.scenarios {
        scenarios.add(scenario);
    }
    let ScenarioFamilies {
        outcome,
        injected,
        elapsed,
        deadline,
        met,
        lost,
        gpu_hours,
        ettr,
        monitoring_seconds,
        monitoring_met,
        ended,
    } = scenarios;
    vec![
        run_info(report),
        run_started(report),
        outcome,
        injected,
        ended,
        elapsed,
        deadline,
        met,
        lost,
        gpu_hours,
        ettr,
        monitoring_seconds,
        monitoring_met,
    ]
}

/// `hpchaos_run_info`: the run's id, cluster, harness and Slurm versions
/// and status as labels on one sample of 1.
fn run_info(report: &Report) -> Family {
    let mut info = Family::new(
        "hpchaos_run_info",
        "The run these figures come from (always 1).",
    );
    info.push(
        vec![
            ("run_id", report.run_id.clone()),
            ("cluster", report.cluster.clone()),
            ("harness_version", report.harness_version.clone()),
            (
                "slurm_version",
                report.slurm_version.clone().unwrap_or_default(),
            ),
            ("status", report.status.as_str().to_owned()),
        ],
        1.0,
    );
    info
}

/// `hpchaos_run_start_timestamp_seconds`: when the run started; no sample
/// when the journal does not say.
fn run_started(report: &Report) -> Family {
    let mut started = Family::new(
        "hpchaos_run_start_timestamp_seconds",
        "When the run started (Unix time).",
    );
    if let Some(at) = report.started_at {
        started.push(Vec::new(), at.timestamp_millis() as f64 / 1000.0);
    }
    started
}

/// The families with a sample per scenario (or per scenario and phase, or
/// per scenario and monitoring expectation), filled one scenario at a time.
struct ScenarioFamilies {
    outcome: Family,
    injected: Family,
    elapsed: Family,
    deadline: Family,
    met: Family,
    lost: Family,
    gpu_hours: Family,
    ettr: Family,
    monitoring_seconds: Family,
    monitoring_met: Family,
    ended: Family,
}

impl ScenarioFamilies {
    /// Every per-scenario family with its name and help, and no samples.
    fn new() -> ScenarioFamilies {
        ScenarioFamilies {
            outcome: Family::new(
                "hpchaos_scenario_passed",
                "1 when the scenario passed, 0 otherwise (failed, aborted, error, interrupted, incomplete).",
            ),
            injected: Family::new(
                "hpchaos_injection_timestamp_seconds",
                "When the fault was injected (Unix time): for annotations.",
            ),
            elapsed: Family::new(
                "hpchaos_phase_seconds",
                "From the injection to the phase's end (s).",
            ),
            deadline: Family::new(
                "hpchaos_phase_deadline_seconds",
                "The phase's deadline, from the injection (s).",
            ),
            met: Family::new(
                "hpchaos_phase_met",
                "1 when the phase ended in time (met its deadline or had none), 0 when missed, not reached or unfinished.",
            ),
            lost: Family::new(
                "hpchaos_lost_steps",
                "Workload steps done again after the restart.",
            ),
            gpu_hours: Family::new(
                "hpchaos_failure_gpu_hours",
                "GPU-hours the failure cost the workload.",
            ),
            ettr: Family::new(
                "hpchaos_effective_training_time_ratio",
                "Productive time over wall time in the scenario's window (0 to 1).",
            ),
            monitoring_seconds: Family::new(
                "hpchaos_monitoring_seconds",
                "From the injection to when the monitoring showed the expectation (s), by its own time.",
            ),
            monitoring_met: Family::new(
                "hpchaos_monitoring_met",
                "1 when the monitoring showed the expectation within its deadline, 0 when late or never (a blind spot).",
            ),
            ended: Family::new(
                "hpchaos_scenario_end_timestamp_seconds",
                "When the scenario ended (Unix time).",
            ),
        }
    }

    /// Adds one scenario's samples: its end, its monitoring expectations,
    /// whether it passed, its injection, its phases, lost steps and cost.
    fn add(&mut self, scenario: &ScenarioReport) {
        let name = || ("scenario", scenario.name.clone());
        if let Some(at) = scenario.ended_at {
            self.ended
                .push(vec![name()], at.timestamp_millis() as f64 / 1000.0);
        }
        for m in &scenario.monitoring {
            let labels = || {
                vec![
                    name(),
                    ("expectation", m.name.clone()),
                    ("source", m.source.clone()),
                ]
            };
            if let Some(e) = m.elapsed {
                self.monitoring_seconds
                    .push(labels(), e.as_std().as_secs_f64());
            }
            self.monitoring_met.push(
                labels(),
                f64::from(u8::from(matches!(
                    m.verdict,
                    Verdict::Met | Verdict::Observed
                ))),
            );
        }
        self.outcome.push(
            vec![name()],
            f64::from(u8::from(scenario.status == super::Status::Passed)),
        );
        if let Some(at) = scenario.injected_at {
            self.injected
                .push(vec![name()], at.timestamp_millis() as f64 / 1000.0);
        }
        for phase in &scenario.phases {
            let labels = || vec![name(), ("phase", phase.phase.to_string())];
            if let Some(e) = phase.elapsed {
                self.elapsed.push(labels(), e.as_std().as_secs_f64());
            }
            if let Some(d) = phase.deadline {
                self.deadline.push(labels(), d.as_std().as_secs_f64());
            }
            if phase.verdict != Verdict::NotStarted {
                let ok = matches!(phase.verdict, Verdict::Met | Verdict::Observed);
                self.met.push(labels(), f64::from(u8::from(ok)));
            }
        }
        if let Some(steps) = scenario.lost_steps {
            self.lost.push(vec![name()], steps as f64);
        }
        if let Some(cost) = &scenario.cost {
            self.gpu_hours.push(vec![name()], cost.gpu_hours_lost);
            self.ettr.push(vec![name()], cost.ettr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
