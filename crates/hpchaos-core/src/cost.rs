//! The cost of a failure, for scenarios with a workload: GPU-hours lost and
//! the effective training time ratio (ETTR) over the scenario's window.
//! Pure: the job's GPUs, its progress as the watch saw it, and the phase
//! times in; figures and the formula's terms out.
//!
//! - **GPU-hours lost** = GPUs × downtime, where downtime runs from the
//!   injection to the resume: the job making progress past the step it
//!   stood at when the fault hit. The steps redone are inside it: the
//!   work from the checkpoint back up to that step is what the job does
//!   between its restart and the resume, and the steps it made after the
//!   fault are no loss of their own (once past its pre-fault step, the
//!   job is as far behind as the downtime, and stays so). They are
//!   reported (`redone_steps`, with the step time), not added again.
//! - **ETTR** = productive time / wall time of the window, where the window
//!   runs from the job's start (Slurm's `StartTime`; else the first
//!   progress seen) to the end of the watch, and productive time is the
//!   window less the downtime. Definitions: MegaScale (Jiang et al., NSDI 2024, §6.3:
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
    let lost_seconds = downtime;
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

    /// The downtime is the whole loss, redone steps inside it: a job at
    /// one step a second hit at step 30 ran on to step 39, restarted from
    /// checkpoint 20 at +50 s and passed step 30 again at +61 s: 31 s
    /// down, and from then on as far behind as that (it reaches step 39 at
    /// +69 s, 30 s late); its 19 redone steps are said, not added.
    #[test]
    fn gpu_hours_and_ettr_count_the_downtime_once() {
        let mut progress: Vec<_> = (0u32..=39)
            .map(|i| (t(f64::from(i)), u64::from(i)))
            .collect();
        progress.extend((20u32..=45).map(|i| (t(f64::from(i) + 30.0), u64::from(i))));
        let cost = failure_cost(
            (16, "AllocTRES gres/gpu".into()),
            t(30.0),
            t(61.0),
            Some(19),
            &progress,
            (t(0.0), t(100.0)),
        );
        assert_eq!(cost.step_seconds, Some(1.0));
        assert!(
            (cost.gpu_hours_lost - 16.0 * 31.0 / 3600.0).abs() < 1e-9,
            "{cost:?}"
        );
        assert!(
            (cost.ettr - (100.0 - 31.0) / 100.0).abs() < 1e-9,
            "{cost:?}"
        );
        let text = crate::journal::cost_text(&cost);
        assert!(
            text.contains("× (31 s down, 19 steps redone inside it at 1.00 s a step)"),
            "{text}"
        );
        // More lost than the window: clamped.
        let unknown = failure_cost(
            (8, "x".into()),
            t(0.0),
            t(60.0),
            Some(5),
            &[],
            (t(0.0), t(50.0)),
        );
        assert_eq!(unknown.gpu_hours_lost, 8.0 * 60.0 / 3600.0);
        assert_eq!(unknown.ettr, 0.0);
        // Redone steps unknown: said so; the downtime is the cost still.
        let unsure = failure_cost(
            (8, "x".into()),
            t(0.0),
            t(60.0),
            None,
            &progress,
            (t(0.0), t(1000.0)),
        );
        assert_eq!(unsure.redone_steps, None);
        assert_eq!(unsure.gpu_hours_lost, 8.0 * 60.0 / 3600.0);
        assert!(crate::journal::cost_text(&unsure).contains("steps redone unknown"));
    }
}
