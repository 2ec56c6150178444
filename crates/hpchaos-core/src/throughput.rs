//! A job's throughput around a fault that fails nothing (a straggler):
//! its step rate before the fault, while it lasts and after it, from the
//! progress lines the watch read (each with when it was read), and how
//! many times slower it ran meanwhile. Pure: the steps and the windows go
//! in, the figures come out.

use chrono::{DateTime, Utc};

/// The fewest readings, and the shortest time between the first and the
/// last, from which a window's rate is given: a job's first seconds (its
/// start-up burst, a few reads of several lines each) are no step rate.
pub const MIN_READINGS: usize = 3;
/// See [`MIN_READINGS`].
pub const MIN_SPAN_SECONDS: f64 = 10.0;

/// The step rates, in steps per second (`None`: fewer than
/// [`MIN_READINGS`] readings in that window, or less than
/// [`MIN_SPAN_SECONDS`] between the first and the last).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Throughput {
    pub before: Option<f64>,
    pub during: Option<f64>,
    pub after: Option<f64>,
    /// `before / during`: 2.0 is half as fast.
    pub slowdown: Option<f64>,
    /// Readings used per window.
    pub samples: [usize; 3],
}

/// Steps read within `(from, to]`, the rate between the first and the
/// last of them.
fn rate(
    steps: &[(DateTime<Utc>, u64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (Option<f64>, usize) {
    let inside: Vec<&(DateTime<Utc>, u64)> = steps
        .iter()
        .filter(|(at, _)| *at > from && *at <= to)
        .collect();
    let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
        return (None, inside.len());
    };
    let seconds = (last.0 - first.0).as_seconds_f64();
    if inside.len() < MIN_READINGS || seconds < MIN_SPAN_SECONDS || last.1 < first.1 {
        return (None, inside.len());
    }
    (Some((last.1 - first.1) as f64 / seconds), inside.len())
}

/// The rates before `start` (at most `window` of it), from `start` (plus
/// `settle`, the slow-down taking hold) to `end` of the slow-down, and
/// from `end` (plus `settle`) to `until`.
pub fn measure(
    steps: &[(DateTime<Utc>, u64)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    until: DateTime<Utc>,
    window: chrono::TimeDelta,
    settle: chrono::TimeDelta,
) -> Throughput {
    let (before, b) = rate(steps, start - window, start);
    let (during, d) = rate(steps, start + settle, end);
    let (after, a) = rate(steps, end + settle, until);
    let slowdown = match (before, during) {
        (Some(b), Some(d)) if d > 0.0 => Some(b / d),
        _ => None,
    };
    Throughput {
        before,
        during,
        after,
        slowdown,
        samples: [b, d, a],
    }
}

impl Throughput {
    /// `5.0 steps/s before, 2.5 during (2.00x slower), 5.0 after`.
    pub fn words(&self) -> String {
        let r = |v: Option<f64>| v.map_or("unknown".to_owned(), |v| format!("{v:.2}"));
        format!(
            "{} steps/s before, {} during{}, {} after",
            r(self.before),
            r(self.during),
            self.slowdown
                .map(|s| format!(" ({s:.2}x slower)"))
                .unwrap_or_default(),
            r(self.after)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000, 0).unwrap()
            + chrono::TimeDelta::milliseconds((s * 1000.0) as i64)
    }

    #[test]
    fn half_as_fast_while_slowed_is_a_slowdown_of_two() {
        // 5 steps/s for 20 s, 2.5 for 20 s, 5 again for 20 s, read each second.
        let mut steps = Vec::new();
        let mut step = 0u64;
        for s in 1..=60 {
            step += if (21..=40).contains(&s) { 2 } else { 5 };
            // 2.5/s: 2 then 3, alternating.
            if (21..=40).contains(&s) && s % 2 == 0 {
                step += 1;
            }
            steps.push((at(f64::from(s)), step));
        }
        let t = measure(
            &steps,
            at(20.0),
            at(40.0),
            at(60.0),
            chrono::TimeDelta::seconds(60),
            chrono::TimeDelta::seconds(1),
        );
        assert!((t.before.unwrap() - 5.0).abs() < 0.01, "{t:?}");
        assert!((t.during.unwrap() - 2.5).abs() < 0.1, "{t:?}");
        assert!((t.after.unwrap() - 5.0).abs() < 0.01, "{t:?}");
        assert!((t.slowdown.unwrap() - 2.0).abs() < 0.1, "{t:?}");
        assert!(t.words().contains("x slower"), "{}", t.words());
    }

    #[test]
    fn a_start_up_burst_is_no_rate() {
        // Four reads in the job's first 3 s (its start-up), then the fault.
        let steps = vec![(at(1.0), 6), (at(2.0), 12), (at(3.0), 17), (at(4.0), 23)];
        let t = measure(
            &steps,
            at(4.5),
            at(20.0),
            at(30.0),
            chrono::TimeDelta::seconds(60),
            chrono::TimeDelta::zero(),
        );
        assert_eq!(t.before, None, "{t:?}");
        assert_eq!(t.samples[0], 4);
        assert_eq!(t.slowdown, None);
        // Ten seconds of them is a rate.
        let steps: Vec<_> = (0..=10u32)
            .map(|s| (at(f64::from(s)), u64::from(s) * 5))
            .collect();
        let t = measure(
            &steps,
            at(10.5),
            at(20.0),
            at(30.0),
            chrono::TimeDelta::seconds(60),
            chrono::TimeDelta::zero(),
        );
        assert!((t.before.unwrap() - 5.0).abs() < 0.01, "{t:?}");
    }

    #[test]
    fn too_few_readings_say_unknown_not_zero() {
        let steps = vec![(at(1.0), 5)];
        let t = measure(
            &steps,
            at(2.0),
            at(3.0),
            at(4.0),
            chrono::TimeDelta::seconds(10),
            chrono::TimeDelta::zero(),
        );
        assert_eq!(t.before, None);
        assert_eq!(t.slowdown, None);
        assert_eq!(t.samples, [1, 0, 0]);
        assert_eq!(
            t.words(),
            "unknown steps/s before, unknown during, unknown after"
        );
    }
}
