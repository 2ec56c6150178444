//! Trends over the history: per phase of a scenario, how many runs timed
//! it, the median and 95th percentile of its time since the injection, the
//! last one, and which way it is going; and the mermaid `xychart-beta`
//! chart of it over time. Pure: runs in, numbers and text out.

use serde::Serialize;

use super::store::ScenarioRun;

/// One phase over a scenario's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTrend {
    pub phase: String,
    /// Runs in which the phase ended.
    pub count: usize,
    /// Seconds from the injection to the phase's end.
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    pub last_seconds: Option<f64>,
    pub direction: Direction,
    /// Oldest first: (run start, seconds), for charts.
    pub points: Vec<(chrono::DateTime<chrono::Utc>, f64)>,
}

/// Which way a phase's time is going: its last run against the median of
/// the runs before it, outside a ±10% band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Slower,
    Faster,
    Steady,
    /// Fewer than two runs timed it.
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Slower => "↑ slower",
            Direction::Faster => "↓ faster",
            Direction::Steady => "→ steady",
            Direction::Unknown => "-",
        }
    }
}

/// The share by which a last run must differ from the median before it to
/// count as a change of direction.
pub const STEADY_BAND: f64 = 0.10;

/// The `q` quantile (0..=1) of `values` by the nearest-rank method (a time
/// some run actually took); `None` for no values.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Each phase's trend over `runs` (any order; the phases in the order the
/// newest run lists them, then any others).
pub fn trends(runs: &[ScenarioRun]) -> Vec<PhaseTrend> {
    let mut runs: Vec<&ScenarioRun> = runs.iter().collect();
    runs.sort_by_key(|r| r.started_at);
    let mut phases: Vec<String> = Vec::new();
    for run in runs.iter().rev() {
        for phase in &run.phases {
            if !phases.contains(&phase.phase) {
                phases.push(phase.phase.clone());
            }
        }
    }
    let mut out: Vec<PhaseTrend> = phases
        .into_iter()
        .map(|phase| {
            let points: Vec<(chrono::DateTime<chrono::Utc>, f64)> = runs
                .iter()
                .filter_map(|run| {
                    run.phases
                        .iter()
                        .find(|p| p.phase == phase)
                        .and_then(|p| p.elapsed_seconds)
                        .map(|s| (run.started_at, s))
                })
                .collect();
            trend_of(phase, points)
        })
        .collect();
    // The failure's cost (GPU-hours, ETTR) and a straggler's slowdown,
    // each where runs could tell it.
    let series: [(&str, Figure); 3] = [
        (GPU_HOURS, |run| run.gpu_hours_lost),
        (ETTR, |run| run.ettr),
        (SLOWDOWN, |run| run.slowdown),
    ];
    for (name, value) in series {
        let points: Vec<(chrono::DateTime<chrono::Utc>, f64)> = runs
            .iter()
            .filter_map(|run| value(run).map(|v| (run.started_at, v)))
            .collect();
        if !points.is_empty() {
            out.push(trend_of(name.to_owned(), points));
        }
    }
    out
}

/// A trend's value in its own precision: GPU-hours to 0.01 (as `history`
/// shows them: a small failure is not 0.0), the ETTR to 0.001, seconds to
/// 0.1.
pub fn value_text(series: &str, value: f64) -> String {
    match series {
        GPU_HOURS => format!("{value:.2}"),
        ETTR => format!("{value:.3}"),
        SLOWDOWN => format!("{value:.2}"),
        _ => format!("{value:.1}"),
    }
}

/// The pseudo-phase name of the effective training time ratio (0..=1)
/// over a scenario's window, in trends.
pub const ETTR: &str = "ettr";

/// The pseudo-phase name of a straggler's slowdown factor (the step rate
/// before over during), in trends.
pub const SLOWDOWN: &str = "slowdown";

/// The pseudo-phase name of the GPU-hours a failure cost, in trends.
pub const GPU_HOURS: &str = "gpu_hours_lost";

/// A figure a run may have told (its GPU-hours lost, its ETTR, ...).
type Figure = fn(&ScenarioRun) -> Option<f64>;

/// One series' trend: its points oldest first.
fn trend_of(phase: String, points: Vec<(chrono::DateTime<chrono::Utc>, f64)>) -> PhaseTrend {
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let direction = match values.split_last() {
        Some((last, before)) if !before.is_empty() => {
            let median = quantile(before, 0.5).unwrap_or(*last);
            if *last > median * (1.0 + STEADY_BAND) {
                Direction::Slower
            } else if *last < median * (1.0 - STEADY_BAND) {
                Direction::Faster
            } else {
                Direction::Steady
            }
        }
        _ => Direction::Unknown,
    };
    PhaseTrend {
        count: values.len(),
        p50_seconds: quantile(&values, 0.5),
        p95_seconds: quantile(&values, 0.95),
        last_seconds: values.last().copied(),
        direction,
        phase,
        points,
    }
}

/// At most this many points in a chart: the newest.
pub const CHART_POINTS: usize = 60;

/// A mermaid `xychart-beta` of one phase over time: one point per run
/// (the newest [`CHART_POINTS`]), seconds since the injection. `None` when
/// no run timed the phase.
pub fn chart(scenario: &str, trend: &PhaseTrend) -> Option<String> {
    if trend.points.is_empty() {
        return None;
    }
    let points = &trend.points[trend.points.len().saturating_sub(CHART_POINTS)..];
    let labels: Vec<String> = points
        .iter()
        .map(|(at, _)| format!("\"{}\"", at.format("%m-%d %H:%M:%S")))
        .collect();
    let values: Vec<String> = points
        .iter()
        .map(|(_, s)| value_text(&trend.phase, *s))
        .collect();
    let top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = (top * 1.1).ceil().max(1.0);
    let (unit, title) = match trend.phase.as_str() {
        GPU_HOURS => (
            "GPU-hours",
            format!("{scenario}: GPU-hours lost per failure"),
        ),
        ETTR => (
            "ratio",
            format!("{scenario}: effective training time ratio"),
        ),
        SLOWDOWN => (
            "factor",
            format!("{scenario}: slowdown (step rate before / during)"),
        ),
        phase => (
            "seconds",
            format!("{scenario}: {phase} (s since injection)"),
        ),
    };
    let title = title.replace('"', "'");
    Some(format!(
        "```mermaid\nxychart-beta\n    title \"{title}\"\n    x-axis [{}]\n    y-axis \"{unit}\" 0 --> {top}\n    line [{}]\n```\n",
        labels.join(", "),
        values.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_keeps_its_precision() {
        // A small failure's GPU-hours are not rounded away (history shows 0.03).
        assert_eq!(value_text(GPU_HOURS, 0.034), "0.03");
        assert_eq!(value_text(ETTR, 0.9876), "0.988");
        assert_eq!(value_text(SLOWDOWN, 2.384), "2.38");
        assert_eq!(value_text("detect", 12.34), "12.3");
    }
    use crate::history::store::PhaseRun;
    use crate::report::{Status, Verdict};

    fn run(minute: i64, replace: Option<f64>) -> ScenarioRun {
        ScenarioRun {
            tags: Vec::new(),
            run_id: format!("run-{minute}"),
            dir: format!("d{minute}"),
            scenario: "xid48-replace".into(),
            started_at: chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .unwrap()
                .to_utc()
                + chrono::TimeDelta::minutes(minute),
            status: Status::Passed,
            reason: String::new(),
            lost_steps: None,
            gpu_hours_lost: None,
            ettr: None,
            slowdown: None,
            phases: vec![
                PhaseRun {
                    phase: "detect".into(),
                    verdict: Verdict::Met,
                    elapsed_seconds: Some(2.0),
                },
                PhaseRun {
                    phase: "replace".into(),
                    verdict: if replace.is_some() {
                        Verdict::Met
                    } else {
                        Verdict::NotReached
                    },
                    elapsed_seconds: replace,
                },
            ],
        }
    }

    #[test]
    fn quantiles_are_times_some_run_took() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&values, 0.5), Some(3.0));
        assert_eq!(quantile(&values, 0.95), Some(5.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&hundred, 0.95), Some(95.0));
    }

    #[test]
    fn a_slower_last_run_is_said_and_unended_phases_are_not_counted() {
        let runs = vec![
            run(3, Some(20.0)),
            run(1, Some(10.0)),
            run(2, Some(11.0)),
            run(4, None),
            run(5, Some(14.0)),
        ];
        let all = trends(&runs);
        let replace = all.iter().find(|t| t.phase == "replace").unwrap();
        assert_eq!(replace.count, 4);
        assert_eq!(replace.p50_seconds, Some(11.0));
        assert_eq!(replace.p95_seconds, Some(20.0));
        assert_eq!(replace.last_seconds, Some(14.0));
        // 14 against the median 11 of 10, 11, 20: more than 10% slower.
        assert_eq!(replace.direction, Direction::Slower);
        let detect = all.iter().find(|t| t.phase == "detect").unwrap();
        assert_eq!(detect.direction, Direction::Steady);
        assert_eq!(trends(&runs[..1])[1].direction, Direction::Unknown);
    }

    #[test]
    fn the_chart_is_an_xychart_of_the_newest_points() {
        let runs: Vec<ScenarioRun> = (0..70).map(|m| run(m, Some(m as f64))).collect();
        let trend = trends(&runs)
            .into_iter()
            .find(|t| t.phase == "replace")
            .unwrap();
        let chart = chart("xid48-replace", &trend).unwrap();
        assert!(chart.starts_with("```mermaid\nxychart-beta\n"), "{chart}");
        assert!(chart.contains("y-axis \"seconds\" 0 --> 76\n"), "{chart}");
        let line = chart
            .lines()
            .find(|l| l.trim_start().starts_with("line ["))
            .unwrap();
        assert_eq!(line.matches(',').count(), CHART_POINTS - 1);
        assert!(line.ends_with("69.0]"), "{line}");
    }
}
