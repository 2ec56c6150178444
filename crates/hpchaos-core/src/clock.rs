//! Where "now" comes from. The harness reads wall-clock time through
//! [`Clock`], so tests can drive the journal and the phase engine with a
//! manual clock. clippy.toml's `disallowed-methods` enforces this for
//! `chrono::Utc::now` and `std::time::SystemTime::now`: [`SystemClock`] is
//! the one place in the library allowed to read the wall clock (tests, the
//! history bench and the lab allow it themselves). Not covered:
//! `std::time::Instant`, the monotonic clock read for intervals and
//! timeouts, which a wall-clock test clock could not stand in for.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the system's clock is read (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests and fixtures.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    pub fn advance(&self, by: TimeDelta) {
        // A poisoned lock only means another test thread panicked; the
        // timestamp inside is still valid.
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
