//! The lease this run holds on the cluster's lock (see `lock.rs` for the
//! lock itself), after etcd's leases and restic's lock refresh: held, not
//! assumed. Every renewal's answer is looked at: the lock gone, another
//! owner, or no renewal confirmed for a whole lease means the lease is
//! **lost**, for good. The write-ahead gate asks [`Lease::check`] before
//! every change: it refuses once the lease is lost, and also once the last
//! confirmed renewal is older than the lease less a margin by this
//! machine's clock, so a process that was stopped (SIGSTOP, a laptop
//! asleep) cannot act on a lease that ran out while it was not running. The
//! fencing token the lock was taken under goes with each change made from
//! the head (`lock::fence_guard`), so even a stop between the check and the
//! act cannot make a change under a lock another run holds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::lock::{self, Renewal};

/// The part of a lease kept free for acting: a change is refused once the
/// lease's age passes `lease - margin`, so what is sent before then lands
/// before another run may judge the lease expired.
pub fn margin(lease: Duration) -> Duration {
    lease / 6
}

/// What the gate and the renewal task share.
#[derive(Debug)]
struct State {
    token: u64,
    lease: Duration,
    /// When the latest renewal the head confirmed was sent, by this
    /// machine's wall clock (which goes on while the process is stopped or
    /// the machine sleeps) and by its monotonic clock (which never goes
    /// back); the lease's age is the larger of the two.
    confirmed_wall: DateTime<Utc>,
    confirmed_mono: Instant,
    /// Why the lease was lost; never cleared.
    lost: Option<String>,
    /// The latest renewal that proved nothing, for the words said when the
    /// lease runs out through them.
    last_failure: Option<String>,
}

/// The lease on the cluster's lock this run holds: cheap to clone, shared
/// by the run and its renewal task.
#[derive(Debug, Clone)]
pub struct Lease(Arc<Mutex<State>>);

impl Lease {
    /// A lease just acquired under `token`, `lease` long, confirmed `now`.
    pub fn acquired(token: u64, lease: Duration, now: DateTime<Utc>) -> Lease {
        Lease(Arc::new(Mutex::new(State {
            token,
            lease,
            confirmed_wall: now,
            confirmed_mono: Instant::now(),
            lost: None,
            last_failure: None,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it;
        // the state inside is still whole (every write is one assignment).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fencing token the lock was taken under.
    pub fn token(&self) -> u64 {
        self.state().token
    }

    /// How long the lease is.
    pub fn length(&self) -> Duration {
        self.state().lease
    }

    /// The token while the run may still act (`now`: this machine's wall
    /// clock); otherwise why not, and the lease is lost from then on.
    /// Errors: lost before, or its last confirmed renewal is older than the
    /// lease less [`margin`].
    pub fn check(&self, now: DateTime<Utc>) -> Result<u64, String> {
        let mut state = self.state();
        if let Some(why) = &state.lost {
            return Err(why.clone());
        }
        let wall = (now - state.confirmed_wall).to_std().unwrap_or_default();
        let age = wall.max(state.confirmed_mono.elapsed());
        let usable = state.lease.saturating_sub(margin(state.lease));
        if age > usable {
            let why = match &state.last_failure {
                Some(failure) => format!(
                    "its lease was last renewed {}s ago (lease {}s): the renewals failed ({failure})",
                    age.as_secs(),
                    state.lease.as_secs()
                ),
                None => format!(
                    "its lease was last renewed {}s ago (lease {}s): this process did not run meanwhile (stopped, or the machine slept), and another run may have taken the lock",
                    age.as_secs(),
                    state.lease.as_secs()
                ),
            };
            state.lost = Some(why.clone());
            return Err(why);
        }
        Ok(state.token)
    }

    /// Why the lease is lost, if it is (without judging its age).
    pub fn lost(&self) -> Option<String> {
        self.state().lost.clone()
    }

    /// Marks the lease lost (the first reason stays).
    pub fn lose(&self, why: String) {
        self.state().lost.get_or_insert(why);
    }

    /// Takes in a renewal's answer: `sent_wall` and `sent_mono` are when
    /// it was sent; `answer` what the head said (or why it could not be
    /// asked). `head` names the head node for the words. Returns why the
    /// lease was lost when this answer lost it.
    pub fn renewal(
        &self,
        sent_wall: DateTime<Utc>,
        sent_mono: Instant,
        answer: Result<Option<Renewal>, String>,
        head: &str,
    ) -> Option<String> {
        let mut state = self.state();
        if state.lost.is_some() {
            return None;
        }
        let why = match answer {
            Ok(Some(Renewal::Renewed)) => {
                // An answer that arrives after the lease ran out proves
                // nothing: the gate judges the age it had.
                state.confirmed_wall = state.confirmed_wall.max(sent_wall);
                state.confirmed_mono = state.confirmed_mono.max(sent_mono);
                state.last_failure = None;
                return None;
            }
            Ok(Some(Renewal::Gone)) => format!(
                "the lock {} on {head} is gone (removed by hand, or released by `hpchaos recover`)",
                lock::LOCK_DIR
            ),
            Ok(Some(Renewal::TakenBy { owner: Some(o), .. })) => {
                format!("the lock on {head} is now held by {}", o.describe())
            }
            Ok(Some(Renewal::TakenBy { owner: None, raw })) => format!(
                "the lock on {head} is now held by another run (owner record: {})",
                raw.trim()
            ),
            Ok(None) => {
                state.last_failure = Some("an answer that is not the renewal's".to_owned());
                return None;
            }
            Err(error) => {
                state.last_failure = Some(error);
                return None;
            }
        };
        state.lost = Some(why.clone());
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_lease_is_usable_until_its_margin_by_the_wall_clock() {
        let start = at("2026-12-02T10:00:00Z");
        let lease = Lease::acquired(3, Duration::from_secs(60), start);
        assert_eq!(lease.check(at("2026-12-02T10:00:49Z")), Ok(3));
        // 60 s less the 10 s margin: a stopped process waking at +51 s
        // may not act.
        let why = lease.check(at("2026-12-02T10:00:51Z")).unwrap_err();
        assert!(
            why.contains("51s ago") && why.contains("did not run"),
            "{why}"
        );
        // Lost for good, also once the clock reads earlier.
        assert!(lease.check(start).is_err());
        // A renewal answered late does not bring it back.
        assert_eq!(
            lease.renewal(start, Instant::now(), Ok(Some(Renewal::Renewed)), "head"),
            None
        );
        assert!(lease.check(start).is_err());
    }

    #[test]
    fn renewals_move_the_lease_on_and_failures_are_said_when_it_runs_out() {
        let start = at("2026-12-02T10:00:00Z");
        let lease = Lease::acquired(1, Duration::from_secs(60), start);
        let later = at("2026-12-02T10:00:40Z");
        lease.renewal(later, Instant::now(), Ok(Some(Renewal::Renewed)), "head");
        assert_eq!(lease.check(at("2026-12-02T10:01:29Z")), Ok(1));
        assert_eq!(
            lease.renewal(later, Instant::now(), Err("ssh: timed out".into()), "head"),
            None
        );
        let why = lease.check(at("2026-12-02T10:01:31Z")).unwrap_err();
        assert!(
            why.contains("the renewals failed (ssh: timed out)"),
            "{why}"
        );
    }

    #[test]
    fn a_renewal_that_finds_the_lock_gone_or_taken_loses_the_lease() {
        let start = at("2026-12-02T10:00:00Z");
        let gone = Lease::acquired(1, Duration::from_secs(60), start);
        let why = gone
            .renewal(
                start,
                Instant::now(),
                Ok(Some(Renewal::Gone)),
                "ip-10-1-0-10",
            )
            .unwrap();
        assert!(
            why.contains("is gone") && why.contains("ip-10-1-0-10"),
            "{why}"
        );
        assert_eq!(gone.check(start), Err(why));
        let taken = Lease::acquired(1, Duration::from_secs(60), start);
        let why = taken
            .renewal(
                start,
                Instant::now(),
                Ok(Some(Renewal::TakenBy {
                    owner: None,
                    raw: "{}".into(),
                })),
                "head",
            )
            .unwrap();
        assert!(why.contains("held by another run"), "{why}");
        assert!(taken.lost().is_some());
        // An answer that proves nothing neither renews nor loses it.
        let unclear = Lease::acquired(1, Duration::from_secs(60), start);
        assert_eq!(
            unclear.renewal(start, Instant::now(), Ok(None), "head"),
            None
        );
        assert_eq!(unclear.check(start), Ok(1));
    }
}
