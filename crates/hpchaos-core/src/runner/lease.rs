//! The lease this run holds on the cluster's lock (see `lock.rs` for the
//! lock itself), after etcd's leases and restic's lock refresh: held, not
//! assumed. Every renewal's answer is looked at: the lock gone, another
//! owner, our lock under another token (`recover` took it over), the head's
//! clock saying the lease ran out, or no renewal confirmed for a whole
//! lease means the lease is **lost**, for good.
//!
//! The write-ahead gate asks [`Lease::usable`] before every change. Past
//! the lease less a margin since the last confirmed renewal (by
//! `CLOCK_BOOTTIME`, which goes on while the process is stopped or the
//! machine sleeps, and never jumps with the wall clock) the gate renews
//! there and then, and the head's answer decides: renewed only while the
//! head's own clock says the lease has not run out, i.e. before any other
//! run could have judged this one dead. A process stopped past its lease
//! therefore never acts on it again. The fencing token the lock was taken
//! under goes with each change made from the head (`lock::fence_guard`),
//! so even a stop between the check and the act cannot make a change under
//! a lock another run holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock::{self, Renewal};
use crate::cluster::ssh::SshError;

/// Why a renewal brought no answer from the head.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    /// The head could not be reached, or the command not run.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// No answer within the renewal's bound (seconds), connecting included.
    #[error("no answer within {0}s")]
    Timeout(u64),
}

/// The part of a lease kept free for acting: past `lease - margin` since
/// the last confirmed renewal, a change waits for a renewal first, so what
/// is sent lands before another run may judge the lease expired.
pub fn margin(lease: Duration) -> Duration {
    lease / 6
}

/// Time since boot, stopped and suspended time included
/// (`CLOCK_BOOTTIME`); the lease's ages are measured on it.
pub fn boot_clock() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer, which
    // points at one; CLOCK_BOOTTIME exists on every Linux since 2.6.39.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    if status != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Why the lease may not be acted on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Lost, for good: why.
    Lost(String),
    /// Not confirmed for `age`, past the usable part: a renewal decides.
    Stale { age: Duration },
}

/// What the gate and the renewal task share.
#[derive(Debug)]
struct State {
    token: u64,
    run_id: String,
    lease: Duration,
    /// When the latest renewal the head confirmed was sent, on
    /// [`boot_clock`].
    confirmed: Duration,
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
    /// A lease just acquired under `token` by `run_id`, `lease` long,
    /// confirmed at `now` ([`boot_clock`]).
    pub fn acquired(token: u64, run_id: &str, lease: Duration, now: Duration) -> Lease {
        Lease(Arc::new(Mutex::new(State {
            token,
            run_id: run_id.to_owned(),
            lease,
            confirmed: now,
            lost: None,
            last_failure: None,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it;
        // the state inside is still whole (every write is one assignment).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter's value the lock was taken under.
    pub fn token(&self) -> u64 {
        self.state().token
    }

    /// The token file's text this lease holds the lock under
    /// ([`lock::fence_of`]).
    pub fn fence(&self) -> String {
        let state = self.state();
        lock::fence_of(state.token, &state.run_id)
    }

    /// How long the lease is.
    pub fn length(&self) -> Duration {
        self.state().lease
    }

    /// Whether the run may act now (`now`: [`boot_clock`]): the fence
    /// while the last confirmed renewal is within the lease less
    /// [`margin`]; otherwise why not.
    pub fn usable(&self, now: Duration) -> Result<String, Unusable> {
        let state = self.state();
        if let Some(why) = &state.lost {
            return Err(Unusable::Lost(why.clone()));
        }
        let age = now.saturating_sub(state.confirmed);
        if age > state.lease.saturating_sub(margin(state.lease)) {
            return Err(Unusable::Stale { age });
        }
        Ok(lock::fence_of(state.token, &state.run_id))
    }

    /// Why the lease is lost, if it is; a lease not confirmed for a whole
    /// lease length by `now` is lost from then on.
    pub fn lost(&self, now: Duration) -> Option<String> {
        let mut state = self.state();
        if state.lost.is_none() {
            let age = now.saturating_sub(state.confirmed);
            if age > state.lease {
                let why = match &state.last_failure {
                    Some(failure) => format!(
                        "no renewal of its lease was confirmed for {}s (lease {}s): {failure}",
                        age.as_secs(),
                        state.lease.as_secs()
                    ),
                    None => format!(
                        "no renewal of its lease was confirmed for {}s (lease {}s): this process did not run meanwhile (stopped, or the machine slept), and another run may have taken the lock",
                        age.as_secs(),
                        state.lease.as_secs()
                    ),
                };
                state.lost = Some(why);
            }
        }
        state.lost.clone()
    }

    /// Marks the lease lost (the first reason stays).
    pub fn lose(&self, why: String) {
        self.state().lost.get_or_insert(why);
    }

    /// Takes in a renewal's answer: `sent` is when it was sent
    /// ([`boot_clock`]); `answer` what the head said (or why it could not
    /// be asked). `head` names the head node for the words. Returns why
    /// the lease was lost when this answer lost it.
    pub fn renewal(
        &self,
        sent: Duration,
        answer: Result<Option<Renewal>, Unanswered>,
        head: &str,
    ) -> Option<String> {
        let mut state = self.state();
        if state.lost.is_some() {
            return None;
        }
        let why = match answer {
            Ok(Some(Renewal::Renewed)) => {
                // The head renewed it by its own clock's judgement that
                // the lease had not run out: nobody could have judged us
                // dead before it.
                state.confirmed = state.confirmed.max(sent);
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
            Ok(Some(Renewal::Fenced { token })) => format!(
                "the lock on {head} was taken over under token `{token}` (by `hpchaos recover`, which undoes this run's changes)"
            ),
            Ok(Some(Renewal::Expired { age })) => format!(
                "its lease on {head} ran out by the head's clock (renewed {age}s ago, lease {}s): this process did not run or could not reach the head meanwhile, and another run may have judged it dead",
                state.lease.as_secs()
            ),
            Ok(None) => {
                state.last_failure = Some("an answer that is not the renewal's".to_owned());
                return None;
            }
            Err(error) => {
                state.last_failure = Some(error.to_string());
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

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_lease_is_usable_within_its_margin_then_stale_then_lost() {
        let lease = Lease::acquired(3, "run-a", s(60), s(1000));
        assert_eq!(lease.usable(s(1049)), Ok("3 run-a".to_owned()));
        // Past 50 s a renewal must decide first.
        assert_eq!(lease.usable(s(1051)), Err(Unusable::Stale { age: s(51) }));
        assert_eq!(lease.lost(s(1051)), None);
        // Past the whole lease unconfirmed: lost, for good.
        let why = lease.lost(s(1061)).unwrap();
        assert!(why.contains("61s") && why.contains("did not run"), "{why}");
        assert_eq!(lease.usable(s(1000)), Err(Unusable::Lost(why.clone())));
        // A renewal answered late does not bring it back.
        assert_eq!(
            lease.renewal(s(1062), Ok(Some(Renewal::Renewed)), "head"),
            None
        );
        assert_eq!(lease.lost(s(1000)), Some(why));
    }

    #[test]
    fn renewals_move_the_lease_on_and_failures_are_said_when_it_runs_out() {
        let lease = Lease::acquired(1, "run-a", s(60), s(0));
        lease.renewal(s(40), Ok(Some(Renewal::Renewed)), "head");
        assert!(lease.usable(s(89)).is_ok());
        assert_eq!(
            lease.renewal(s(50), Err(Unanswered::Timeout(10)), "head"),
            None
        );
        assert!(lease.lost(s(99)).is_none());
        let why = lease.lost(s(101)).unwrap();
        assert!(why.contains("no answer within 10s"), "{why}");
    }

    #[test]
    fn a_renewal_that_finds_the_lock_gone_taken_fenced_or_expired_loses_the_lease() {
        let answers = [
            (Renewal::Gone, "is gone"),
            (
                Renewal::TakenBy {
                    owner: None,
                    raw: "{}".into(),
                },
                "held by another run",
            ),
            (
                Renewal::Fenced {
                    token: "2 recover".into(),
                },
                "taken over under token `2 recover`",
            ),
            (
                Renewal::Expired { age: 90 },
                "ran out by the head's clock (renewed 90s ago",
            ),
        ];
        for (answer, said) in answers {
            let lease = Lease::acquired(1, "run-a", s(60), s(0));
            let why = lease
                .renewal(s(1), Ok(Some(answer)), "ip-10-1-0-10")
                .unwrap();
            assert!(why.contains(said) && why.contains("ip-10-1-0-10"), "{why}");
            assert_eq!(lease.usable(s(1)), Err(Unusable::Lost(why)));
        }
        // An answer that proves nothing neither renews nor loses it.
        let unclear = Lease::acquired(1, "run-a", s(60), s(0));
        assert_eq!(unclear.renewal(s(1), Ok(None), "head"), None);
        assert!(unclear.usable(s(1)).is_ok());
    }

    #[test]
    fn the_boot_clock_moves_on() {
        let a = boot_clock();
        assert!(a > Duration::ZERO && boot_clock() >= a);
    }
}
