//! Regression gates at the end of a scenario's watch: each gated phase
//! that met its deadline is compared with its baseline from the run
//! history (resolved before the run, see [`GatePlan`]); every gate is
//! journaled, judged or not, and one that fails fails the scenario.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::history::gate::{self, BaselineSpec, PhaseBaseline};
use crate::journal::{Entry, PhaseVerdict};
use crate::phases::PhaseResult;
use crate::scenario::model::{Phase, Scenario};

use super::Runner;

/// How much slower than its baseline a phase may get when `--baseline`
/// is given and the scenario has no gates of its own.
pub const DEFAULT_MAX_INCREASE_PERCENT: f64 = 25.0;

/// The regression gates of a run, resolved before it starts.
#[derive(Debug, Clone)]
pub struct GatePlan {
    pub spec: BaselineSpec,
    /// `--baseline` was given: a scenario without gates of its own has
    /// every timed phase gated at 25%; else only the scenario's own gates.
    pub all_phases: bool,
    /// Per scenario name: each phase's baseline, or why there is none.
    pub baselines: HashMap<String, Result<BTreeMap<String, PhaseBaseline>, NoBaseline>>,
}

/// Why a scenario's gates have no baselines (journaled as unchecked).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoBaseline {
    /// The history could not be read for the scenario's runs.
    #[error(transparent)]
    History(std::sync::Arc<crate::history::HistoryError>),
    /// `--baseline RUN_ID` names a run of another scenario.
    #[error("run {id} is not a run of {scenario} (see `hpchaos history --scenario {scenario}`)")]
    NotThisScenario { id: String, scenario: String },
}

impl Runner {
    /// Judges the scenario's regression gates against the settled
    /// `phases`; journals each; returns why the scenario fails, if it does.
    pub(super) fn judge_regressions(
        &mut self,
        scenario: &Scenario,
        phases: &[PhaseResult],
        injected_at: DateTime<Utc>,
    ) -> Vec<String> {
        let Some(plan) = self.gates.clone() else {
            return Vec::new();
        };
        let mut gates: Vec<(Phase, f64)> = scenario
            .expect
            .regression
            .iter()
            .flat_map(|r| r.gates())
            .map(|g| (g.phase, g.max_increase.0))
            .collect();
        if gates.is_empty() && !plan.all_phases {
            return Vec::new();
        }
        // The scenario's own gates are its author's word; without any,
        // `--baseline` gates every phase at the default.
        if plan.all_phases && gates.is_empty() {
            for result in phases {
                if !gates.iter().any(|(p, _)| *p == result.phase) {
                    gates.push((result.phase, DEFAULT_MAX_INCREASE_PERCENT));
                }
            }
        }
        let baselines = plan.baselines.get(&scenario.name);
        let mut failures = Vec::new();
        for (phase, max) in gates {
            let result = phases.iter().find(|p| p.phase == phase);
            let ended = result.and_then(|r| match (r.verdict, &r.ended) {
                (Some(PhaseVerdict::Met | PhaseVerdict::Observed), Some(end)) => Some(end.at),
                _ => None,
            });
            let entry = match (ended, baselines) {
                (None, _) => Entry::RegressionUnchecked {
                    phase,
                    why: "the phase did not end in time: its deadline judges it".to_owned(),
                },
                (Some(_), None) => Entry::RegressionUnchecked {
                    phase,
                    why: "no baseline was looked up for this scenario".to_owned(),
                },
                (Some(_), Some(Err(why))) => Entry::RegressionUnchecked {
                    phase,
                    why: why.to_string(),
                },
                (Some(at), Some(Ok(map))) => match map.get(phase.as_str()) {
                    None => Entry::RegressionUnchecked {
                        phase,
                        why: format!(
                            "no baseline yet: no earlier run of {} in which {phase} ended ({})",
                            scenario.name, plan.spec
                        ),
                    },
                    Some(baseline) => {
                        let seconds = (at - injected_at).as_seconds_f64();
                        let judged = gate::check(phase.as_str(), seconds, baseline, max);
                        if !judged.passed {
                            failures.push(format!("regression: {}", judged.describe()));
                        }
                        Entry::RegressionChecked {
                            phase,
                            seconds,
                            baseline_seconds: baseline.seconds,
                            baseline_from: baseline.from.clone(),
                            increase_percent: judged.increase_percent,
                            max_increase_percent: max,
                            passed: judged.passed,
                        }
                    }
                },
            };
            self.log(Some(&scenario.name), entry);
        }
        failures
    }
}
