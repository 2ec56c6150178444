//! The cluster's run lock on the head node, after restic's locks: a
//! directory (`mkdir` is atomic) holding the owner's record (run id, host,
//! pid, journal, profile, start time) and a lease file that the running
//! harness touches every third of [`LEASE`]. A lock is stale when its lease
//! ran out (judged by the head node's own clock, so the two clocks need not
//! agree) or when its owner ran on this host and its pid is gone. A run
//! refuses a held lock; a stale one is refused with the `recover` command
//! that undoes what the dead run left and releases it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the lock lives on the head node.
pub const LOCK_DIR: &str = "/run/hpchaos-run.lock";

/// How long a lock stays valid without being renewed.
pub const LEASE: Duration = Duration::from_secs(60);

/// Who holds the lock: `owner.json` in the lock directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    /// The holder's journal, absolute, on `host`.
    pub journal: String,
    /// The cluster profile the holder was started with, as given.
    #[serde(default)]
    pub profile: Option<String>,
    pub started_at: DateTime<Utc>,
    pub lease_seconds: u64,
}

impl Owner {
    /// `run R (pid P on HOST, since T, journal J)`.
    pub fn describe(&self) -> String {
        format!(
            "run {} (pid {} on {}, since {}, journal {})",
            self.run_id,
            self.pid,
            self.host,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.journal
        )
    }

    /// The text `renew` and `release` look for in `owner.json`.
    pub fn marker(run_id: &str) -> String {
        format!(
            "\"run_id\":{}",
            serde_json::Value::String(run_id.to_owned())
        )
    }
}

/// The lock as the head node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Free,
    /// We just took it.
    Acquired,
    Held {
        /// `None` while the holder is between `mkdir` and writing it, or
        /// when it cannot be read (then `raw` has what was there).
        owner: Option<Owner>,
        raw: String,
        /// Seconds since the lease was last renewed, by the head's clock
        /// (without a lease file: since the owner record, or the lock,
        /// was written).
        lease_age: Option<u64>,
    },
}

/// Run on the head with the lock directory as `$1` and the owner record as
/// `$2`: takes the lock, or prints who holds it and the lease's age.
pub const ACQUIRE_SCRIPT: &str = "L=\"$1\"; if mkdir \"$L\" 2>/dev/null; then printf '%s\\n' \"$2\" > \"$L/owner.json\" && touch \"$L/lease\" && echo acquired; exit $?; fi; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Run on the head with the lock directory as `$1`: `free`, or as
/// [`ACQUIRE_SCRIPT`] prints a held lock.
pub const READ_SCRIPT: &str = "L=\"$1\"; [ -e \"$L\" ] || { echo free; exit 0; }; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Renews the lease if the lock is still ours (`$2`: [`Owner::marker`]).
pub const RENEW_SCRIPT: &str =
    "grep -qF \"$2\" \"$1/owner.json\" 2>/dev/null && touch \"$1/lease\"";

/// Removes the lock if it is ours (`$2`: [`Owner::marker`]) or has no
/// owner record; a lock of another run stays. Nothing there is fine.
pub const RELEASE_SCRIPT: &str = "[ -e \"$1\" ] || exit 0; if [ ! -e \"$1/owner.json\" ] || grep -qF \"$2\" \"$1/owner.json\"; then rm -rf \"$1\"; else echo 'held by another run' >&2; exit 1; fi";

/// Parses what [`ACQUIRE_SCRIPT`] or [`READ_SCRIPT`] printed.
pub fn parse_answer(text: &str) -> Option<LockState> {
    let mut lines = text.lines();
    match lines.next()?.trim() {
        "free" => Some(LockState::Free),
        "acquired" => Some(LockState::Acquired),
        "held" => {
            let lease_age = lines.next().and_then(|l| l.trim().parse().ok());
            let raw: String = lines.collect::<Vec<_>>().join("\n");
            let owner = serde_json::from_str(raw.trim()).ok();
            Some(LockState::Held {
                owner,
                raw,
                lease_age,
            })
        }
        _ => None,
    }
}

/// Why a held lock's owner is dead, if it is: its lease ran out, or it ran
/// on `this_host` and `alive(pid)` says its process is gone.
pub fn stale_because(
    owner: &Owner,
    lease_age: Option<u64>,
    this_host: &str,
    alive: impl Fn(u32) -> bool,
) -> Option<String> {
    if owner.host == this_host && !alive(owner.pid) {
        return Some(format!("its process {} on {this_host} is gone", owner.pid));
    }
    match lease_age {
        Some(age) if age > owner.lease_seconds => Some(format!(
            "its lease was last renewed {age}s ago (lease {}s)",
            owner.lease_seconds
        )),
        _ => None,
    }
}

/// A lock without an owner record (its run died between `mkdir` and
/// writing it) is stale once it is older than a lease.
pub fn ownerless_is_stale(lease_age: Option<u64>) -> bool {
    lease_age.is_some_and(|age| age > LEASE.as_secs())
}

/// Whether a process of this host with `pid` runs hpchaos.
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains("hpchaos"))
        .unwrap_or(false)
}

/// This machine's host name, for the lock's owner record.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            run_id: "run-20261129T120000-1a2b".into(),
            host: "laptop".into(),
            pid: 4242,
            journal: "/r/j.jsonl".into(),
            profile: Some("lab.yaml".into()),
            started_at: DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
                .unwrap()
                .to_utc(),
            lease_seconds: 60,
        }
    }

    #[test]
    fn reads_a_held_lock_and_judges_it() {
        let text = format!("held\n75\n{}\n", serde_json::to_string(&owner()).unwrap());
        let Some(LockState::Held {
            owner: Some(found),
            lease_age,
            ..
        }) = parse_answer(&text)
        else {
            panic!("held: {text}")
        };
        assert_eq!(found, owner());
        assert_eq!(lease_age, Some(75));
        // Expired lease, from another host.
        let why = stale_because(&found, lease_age, "ci-runner", |_| true).unwrap();
        assert!(why.contains("75s ago"), "{why}");
        // Fresh lease, other host: alive.
        assert_eq!(stale_because(&found, Some(5), "ci-runner", |_| false), None);
        // Fresh lease, this host, pid gone: dead.
        assert!(
            stale_because(&found, Some(5), "laptop", |_| false)
                .unwrap()
                .contains("4242")
        );
        assert!(text.contains(&Owner::marker(&found.run_id)));
    }

    #[test]
    fn reads_free_acquired_and_a_lock_without_owner() {
        assert_eq!(parse_answer("free\n"), Some(LockState::Free));
        assert_eq!(parse_answer("acquired\n"), Some(LockState::Acquired));
        assert_eq!(
            parse_answer("held\n-\n"),
            Some(LockState::Held {
                owner: None,
                raw: String::new(),
                lease_age: None
            })
        );
        assert_eq!(parse_answer("sh: oops"), None);
    }
}
