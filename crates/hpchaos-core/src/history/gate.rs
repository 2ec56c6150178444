//! Regression gates: a phase that met its deadline but took longer than
//! the scenario's baseline by more than allowed fails the scenario. The
//! baseline comes from the history (`run --baseline last|p50:30d|RUN_ID`):
//! the last run in which the phase ended, the median over a window, or one
//! named run. Pure: past runs and this run's times in, verdicts out.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::ScenarioRun;
use super::trend::quantile;
use crate::report::Verdict;

/// Where a baseline comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineSpec {
    /// The newest earlier run in which the phase ended.
    Last,
    /// The median over the earlier runs of the last `days` days.
    Median { days: u32 },
    /// One recorded run, by id (`run-...`).
    Run(String),
}

/// Why `--baseline` text is not a baseline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineSpecError {
    /// `p50:` with a window that is not a whole number of days.
    #[error("`{0}`: the window is a number of days, as in `p50:30d`")]
    Window(String),
    /// Neither `last`, `p50:Nd` nor a run id.
    #[error(
        "`{0}` is not a baseline: give `last`, `p50:30d` (the median over 30 days) or a run id (`run-...`, see `hpchaos history`)"
    )]
    Unknown(String),
}

impl FromStr for BaselineSpec {
    type Err = BaselineSpecError;

    /// `last`, `p50:30d` (any whole number of days), or a run id.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "last" {
            return Ok(BaselineSpec::Last);
        }
        if let Some(window) = text.strip_prefix("p50:") {
            return window
                .strip_suffix('d')
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|d| *d > 0)
                .map(|days| BaselineSpec::Median { days })
                .ok_or_else(|| BaselineSpecError::Window(text.to_owned()));
        }
        if text.starts_with("run-") {
            return Ok(BaselineSpec::Run(text.to_owned()));
        }
        Err(BaselineSpecError::Unknown(text.to_owned()))
    }
}

impl std::fmt::Display for BaselineSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineSpec::Last => write!(f, "last"),
            BaselineSpec::Median { days } => write!(f, "p50:{days}d"),
            BaselineSpec::Run(id) => write!(f, "{id}"),
        }
    }
}

/// A phase's baseline time and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseBaseline {
    /// Seconds from the injection to the phase's end.
    pub seconds: f64,
    /// In words: `run run-... of 2026-11-30 10:00` or `p50 of 12 runs
    /// since 2026-11-01`.
    pub from: String,
}

/// Each phase's baseline from `earlier` runs of the scenario (any order,
/// this run excluded): only phases that ended (met or observed) count.
pub fn baselines(
    earlier: &[ScenarioRun],
    spec: &BaselineSpec,
    now: DateTime<Utc>,
) -> BTreeMap<String, PhaseBaseline> {
    let mut runs: Vec<&ScenarioRun> = earlier.iter().collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    let ended = |run: &ScenarioRun, phase: &str| {
        run.phases
            .iter()
            .find(|p| p.phase == phase && matches!(p.verdict, Verdict::Met | Verdict::Observed))
            .and_then(|p| p.elapsed_seconds)
    };
    let mut phases: Vec<String> = runs
        .iter()
        .flat_map(|r| r.phases.iter().map(|p| p.phase.clone()))
        .collect();
    phases.sort();
    phases.dedup();
    let mut out = BTreeMap::new();
    for phase in phases {
        let found = match spec {
            BaselineSpec::Last => runs.iter().find_map(|run| {
                ended(run, &phase).map(|seconds| PhaseBaseline {
                    seconds,
                    from: format!(
                        "last run {} of {}",
                        run.run_id,
                        run.started_at.format("%Y-%m-%d %H:%M")
                    ),
                })
            }),
            BaselineSpec::Median { days } => {
                let since = now - chrono::TimeDelta::days(i64::from(*days));
                let values: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.started_at >= since)
                    .filter_map(|r| ended(r, &phase))
                    .collect();
                quantile(&values, 0.5).map(|seconds| PhaseBaseline {
                    seconds,
                    from: format!(
                        "p50 of {} run(s) since {}",
                        values.len(),
                        since.format("%Y-%m-%d")
                    ),
                })
            }
            BaselineSpec::Run(id) => runs.iter().find(|r| &r.run_id == id).and_then(|run| {
                ended(run, &phase).map(|seconds| PhaseBaseline {
                    seconds,
                    from: format!("run {id} of {}", run.started_at.format("%Y-%m-%d %H:%M")),
                })
            }),
        };
        if let Some(found) = found {
            out.insert(phase, found);
        }
    }
    out
}

/// One gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    pub phase: String,
    /// This run's seconds from the injection to the phase's end.
    pub seconds: f64,
    pub baseline: PhaseBaseline,
    /// How much slower this run is, in percent (negative: faster).
    pub increase_percent: f64,
    pub max_increase_percent: f64,
    pub passed: bool,
}

pub use crate::report::MIN_CHANGE_SECONDS;

/// Compares one phase's time (from the injection to its end, as deadlines
/// count) with its baseline: it fails when slower by more than
/// `max_increase_percent` and by more than [`MIN_CHANGE_SECONDS`].
pub fn check(
    phase: &str,
    seconds: f64,
    baseline: &PhaseBaseline,
    max_increase_percent: f64,
) -> GateResult {
    let increase_percent = if baseline.seconds > 0.0 {
        (seconds - baseline.seconds) / baseline.seconds * 100.0
    } else if seconds > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    GateResult {
        phase: phase.to_owned(),
        seconds,
        baseline: baseline.clone(),
        increase_percent,
        max_increase_percent,
        passed: increase_percent <= max_increase_percent
            || seconds - baseline.seconds <= MIN_CHANGE_SECONDS,
    }
}

impl GateResult {
    /// `replace ended 40.00 s after the injection, +60% against the
    /// baseline 25.00 s (p50 of 5 runs since 2026-11-01); allowed +25%`.
    pub fn describe(&self) -> String {
        crate::report::describe_regression(
            &self.phase,
            self.seconds,
            self.increase_percent,
            self.baseline.seconds,
            &self.baseline.from,
            self.max_increase_percent,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::PhaseRun;
    use crate::report::Status;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::TimeDelta::days(day)
    }

    fn run(day: i64, replace: f64, verdict: Verdict) -> ScenarioRun {
        ScenarioRun {
            tags: Vec::new(),
            run_id: format!("run-{day}"),
            dir: format!("d{day}"),
            scenario: "xid48-replace".into(),
            started_at: at(day),
            status: Status::Passed,
            reason: String::new(),
            lost_steps: None,
            gpu_hours_lost: None,
            ettr: None,
            slowdown: None,
            phases: vec![PhaseRun {
                phase: "replace".into(),
                verdict,
                elapsed_seconds: Some(replace),
            }],
        }
    }

    #[test]
    fn specs_are_read_or_refused_with_the_forms() {
        assert_eq!("last".parse(), Ok(BaselineSpec::Last));
        assert_eq!("p50:30d".parse(), Ok(BaselineSpec::Median { days: 30 }));
        assert_eq!(
            "run-20261201T100000Z-ab12".parse(),
            Ok(BaselineSpec::Run("run-20261201T100000Z-ab12".into()))
        );
        assert!(
            "p50:30"
                .parse::<BaselineSpec>()
                .unwrap_err()
                .to_string()
                .contains("p50:30d")
        );
        assert!(
            "yesterday"
                .parse::<BaselineSpec>()
                .unwrap_err()
                .to_string()
                .contains("last")
        );
    }

    #[test]
    fn each_spec_finds_its_baseline_among_ended_phases() {
        let earlier = vec![
            run(1, 10.0, Verdict::Met),
            run(2, 30.0, Verdict::Met),
            run(3, 20.0, Verdict::Met),
            run(4, 99.0, Verdict::NotReached),
        ];
        let now = at(5);
        let last = baselines(&earlier, &BaselineSpec::Last, now);
        assert_eq!(last["replace"].seconds, 20.0, "run 4's phase never ended");
        assert!(
            last["replace"]
                .from
                .starts_with("last run run-3 of 2026-11-04")
        );
        let p50 = baselines(&earlier, &BaselineSpec::Median { days: 30 }, now);
        assert_eq!(p50["replace"].seconds, 20.0);
        assert!(
            p50["replace"].from.starts_with("p50 of 3 run(s)"),
            "{:?}",
            p50
        );
        let recent = baselines(&earlier, &BaselineSpec::Median { days: 3 }, now);
        assert_eq!(
            recent["replace"].seconds, 20.0,
            "runs 2 and 3: the lower of 30, 20"
        );
        let named = baselines(&earlier, &BaselineSpec::Run("run-2".into()), now);
        assert_eq!(named["replace"].seconds, 30.0);
        assert!(baselines(&earlier, &BaselineSpec::Run("run-9".into()), now).is_empty());
        assert!(baselines(&[], &BaselineSpec::Last, now).is_empty());
    }

    #[test]
    fn a_phase_slower_than_allowed_fails_and_says_both_numbers() {
        let baseline = PhaseBaseline {
            seconds: 25.0,
            from: "p50 of 5 run(s) since 2026-11-01".into(),
        };
        let slow = check("replace", 40.0, &baseline, 25.0);
        assert!(!slow.passed);
        assert_eq!(slow.increase_percent, 60.0);
        assert_eq!(
            slow.describe(),
            "replace ended 40.00 s after the injection, +60% against the baseline 25.00 s (p50 of 5 run(s) since 2026-11-01); allowed +25% (and 1 s)"
        );
        assert!(
            check("replace", 31.25, &baseline, 25.0).passed,
            "exactly +25% passes"
        );
        assert!(check("replace", 10.0, &baseline, 25.0).passed);
        // Sub-second phases: +73% of 0.06 s is noise, not a regression.
        let tiny = PhaseBaseline {
            seconds: 0.061,
            from: "last run".into(),
        };
        assert!(check("detect", 0.106, &tiny, 25.0).passed);
        assert!(!check("detect", 1.2, &tiny, 25.0).passed);
    }
}
