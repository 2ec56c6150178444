//! The cost of a failure, for scenarios with a workload: GPU-hours lost and
//! the effective training time ratio (ETTR) over the scenario's window.
//! Pure: the job's GPUs, its progress as the watch saw it, and the phase
//! times in; figures and the formula's terms out.
//!
//! - **GPU-hours lost** = GPUs × (downtime + redone steps × step time),
//!   where downtime runs from the injection to the resume (the job making
//!   progress past its pre-fault step again) and step time is the median
//!   time per step the output showed while the job ran. Redone steps that
//!   had been made after the injection (a job that ran on until its next
//!   checkpoint failed) are already in the downtime: only those made
//!   before it are added.
//! - **ETTR** = productive time / wall time of the window, where the window
//!   runs from the job's start (Slurm's `StartTime`; else the first
//!   progress seen) to the end of the watch, and productive time is the window less the downtime and the
//!   redone work. Definitions: MegaScale (Jiang et al., NSDI 2024, §6.3:
//!   "effective training time ratio", the share of wall-clock time spent
//!   on productive training) and the Llama 3 paper (Dubey et al. 2024,
//!   §3.3.4: effective training time, the share of time spent on useful
//!   training, over 90% on 16K GPUs).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a failure cost, with the terms of the formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureCost {
    /// The job's GPUs.
    pub gpus: u32,
    /// Where that number comes from (`AllocTRES gres/gpu`, the profile's
    /// `slurm.gpus_per_node` × nodes).
    pub gpus_from: String,
    /// From the injection to the resume (s).
    pub downtime_seconds: f64,
    /// Steps done again after the restart; `None` when the output never
    /// showed where the job went back to (costed as none, said so).
    pub redone_steps: Option<u64>,
    /// Of those, the steps made after the injection: their time is in the
    /// downtime, and not counted again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redone_in_downtime: u64,
    /// Median seconds per step while the job ran; `None` when the output
    /// showed too few steps to tell.
    pub step_seconds: Option<f64>,
    pub gpu_hours_lost: f64,
    /// The window ETTR is taken over (s), and the ratio (0..=1).
    pub window_seconds: f64,
    pub ettr: f64,
}

/// Median seconds per step from `(seen, step)` progress updates in time
/// order: the updates one read brought share its time and count as the
/// last of them (a poll every 0.5 s that finds 2 new steps is 0.25 s a
/// step, not 0.5); each pair of reads where the step went up counts as
/// (Δtime / Δsteps); restarts (the step going down) are skipped.
pub fn step_seconds(progress: &[(DateTime<Utc>, u64)]) -> Option<f64> {
    let mut reads: Vec<(DateTime<Utc>, u64)> = Vec::new();
    for (at, step) in progress {
        match reads.last_mut() {
            Some(last) if last.0 == *at => last.1 = *step,
            _ => reads.push((*at, *step)),
        }
    }
    let mut rates: Vec<f64> = reads
        .windows(2)
        .filter_map(|pair| {
            let ((t0, s0), (t1, s1)) = (pair[0], pair[1]);
            (s1 > s0 && t1 > t0).then(|| (t1 - t0).as_seconds_f64() / (s1 - s0) as f64)
        })
        .collect();
    if rates.len() < 2 {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    Some(rates[(rates.len() - 1) / 2])
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many steps the job made after the injection before it went back
/// (its step first going down): the highest step seen after `injected_at`
/// until then, less the step last seen at or before it. 0 when no step was
/// seen before the injection (nothing to count from).
pub fn steps_after_injection(progress: &[(DateTime<Utc>, u64)], injected_at: DateTime<Utc>) -> u64 {
    let Some(before) = progress
        .iter()
        .filter(|(at, _)| *at <= injected_at)
        .map(|(_, step)| *step)
        .next_back()
    else {
        return 0;
    };
    let mut last = before;
    for (_, step) in progress.iter().filter(|(at, _)| *at > injected_at) {
        if *step < last {
            break;
        }
        last = *step;
    }
    last - before
}

/// The cost of one failure. `resumed` is when the resume phase ended;
/// `window` the span ETTR is taken over.
pub fn failure_cost(
    gpus: (u32, String),
    injected_at: DateTime<Utc>,
    resumed: DateTime<Utc>,
    redone_steps: Option<u64>,
    progress: &[(DateTime<Utc>, u64)],
    window: (DateTime<Utc>, DateTime<Utc>),
) -> FailureCost {
    let downtime = (resumed - injected_at).as_seconds_f64().max(0.0);
    let step = step_seconds(progress);
    let redone_in_downtime = redone_steps.map_or(0, |redone| {
        redone.min(steps_after_injection(progress, injected_at))
    });
    let redone_before = redone_steps.unwrap_or(0) - redone_in_downtime;
    let redone_seconds = step.map_or(0.0, |s| s * redone_before as f64);
    let lost_seconds = downtime + redone_seconds;
    let window_seconds = (window.1 - window.0).as_seconds_f64().max(0.0);
    let ettr = if window_seconds > 0.0 {
        ((window_seconds - lost_seconds) / window_seconds).clamp(0.0, 1.0)
    } else {
        0.0
    };
    FailureCost {
        gpus: gpus.0,
        gpus_from: gpus.1,
        downtime_seconds: downtime,
        redone_steps,
        redone_in_downtime,
        step_seconds: step,
        gpu_hours_lost: f64::from(gpus.0) * lost_seconds / 3600.0,
        window_seconds,
        ettr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::TimeDelta::milliseconds((s * 1000.0) as i64)
    }

    #[test]
    fn the_step_time_is_the_median_rate_and_restarts_are_skipped() {
        // 2 s a step, one slow poll (3 steps in 9 s), a restart to step 8.
        let progress = [
            (t(0.0), 10),
            (t(2.0), 11),
            (t(4.0), 12),
            (t(13.0), 15),
            (t(30.0), 8),
            (t(32.0), 9),
        ];
        assert_eq!(step_seconds(&progress), Some(2.0));
        assert_eq!(
            step_seconds(&progress[..2]),
            None,
            "one interval tells too little"
        );
        // Polls every 0.5 s, each finding 2 new steps (stamped with the
        // read's time): 0.25 s a step, not the poll interval (found on the
        // lab: 0.5 s reported for a job at 4 steps a second).
        let polled: Vec<_> = (0u32..8)
            .flat_map(|i| {
                let at = t(f64::from(i) * 0.5);
                [(at, u64::from(2 * i + 1)), (at, u64::from(2 * i + 2))]
            })
            .collect();
        assert_eq!(step_seconds(&polled), Some(0.25));
    }

    /// A job that ran on after the injection until its next checkpoint
    /// failed (the retried case: steps 30 to 39 after a fault at step 30,
    /// back to checkpoint 20): of its 19 redone steps, the 9 made after
    /// the injection are in the downtime, and only 10 are added; a job
    /// that stopped at the injection adds all it redoes; progress seen
    /// only after the injection counts nothing as in the downtime.
    #[test]
    fn redone_steps_made_after_the_injection_are_not_counted_twice() {
        let mut progress: Vec<_> = (0u32..=39)
            .map(|i| (t(f64::from(i)), u64::from(i)))
            .collect();
        progress.extend((20u32..=45).map(|i| (t(f64::from(i) + 30.0), u64::from(i))));
        assert_eq!(steps_after_injection(&progress, t(30.0)), 9);
        let cost = failure_cost(
            (8, "x".into()),
            t(30.0),
            t(70.0),
            Some(19),
            &progress,
            (t(0.0), t(100.0)),
        );
        assert_eq!(cost.redone_in_downtime, 9);
        assert_eq!(cost.step_seconds, Some(1.0));
        // 40 s down + 10 steps at 1 s.
        assert!(
            (cost.gpu_hours_lost - 8.0 * 50.0 / 3600.0).abs() < 1e-9,
            "{cost:?}"
        );
        let text = crate::journal::cost_text(&cost);
        assert!(
            text.contains(
                "+ 10 steps redone × 1.00 s (9 more made after the injection are in the downtime)"
            ),
            "{text}"
        );
        // Stopped at the injection: every redone step was made before it.
        let stopped: Vec<_> = progress
            .iter()
            .copied()
            .filter(|(at, step)| *at <= t(30.0) || *step < 30)
            .collect();
        assert_eq!(steps_after_injection(&stopped, t(30.0)), 0);
        // Nothing seen before the injection: nothing to count from.
        assert_eq!(steps_after_injection(&progress[31..], t(30.0)), 0);
    }

    #[test]
    fn gpu_hours_and_ettr_follow_the_formula() {
        let progress: Vec<_> = (0u32..10)
            .map(|i| (t(f64::from(i) * 2.0), u64::from(i)))
            .collect();
        // 16 GPUs, down 300 s, 12 steps redone at 2 s: 324 s lost.
        let cost = failure_cost(
            (16, "AllocTRES gres/gpu".into()),
            t(100.0),
            t(400.0),
            Some(12),
            &progress,
            (t(0.0), t(1000.0)),
        );
        assert_eq!(cost.step_seconds, Some(2.0));
        assert!((cost.gpu_hours_lost - 16.0 * 324.0 / 3600.0).abs() < 1e-9);
        assert!((cost.ettr - (1000.0 - 324.0) / 1000.0).abs() < 1e-9);
        // Without a step time, the redone steps cost nothing known.
        let unknown = failure_cost(
            (8, "x".into()),
            t(0.0),
            t(60.0),
            Some(5),
            &[],
            (t(0.0), t(50.0)),
        );
        assert_eq!(unknown.gpu_hours_lost, 8.0 * 60.0 / 3600.0);
        assert_eq!(unknown.ettr, 0.0, "more lost than the window: clamped");
        // Redone steps unknown: costed as none, and said.
        let unsure = failure_cost(
            (8, "x".into()),
            t(0.0),
            t(60.0),
            None,
            &progress,
            (t(0.0), t(1000.0)),
        );
        assert_eq!(unsure.redone_steps, None);
        assert!(crate::journal::cost_text(&unsure).contains("steps redone unknown"));
    }
}
