//! The cluster's run lock on the head node, after restic's locks: a
//! directory (`mkdir` is atomic) holding the owner's record (run id, host,
//! pid, journal, profile, start time), its fencing token and a lease file
//! that the running harness touches every third of its lease (see
//! `lease.rs`, which holds it). The token is a counter on the head
//! ([`FENCE_FILE`]) bumped at each acquisition, so a change carried out
//! under an old token is refused on the head even if the lock was lost and
//! taken again meanwhile (etcd's and Kleppmann's fencing tokens).
//!
//! Whether a holder is alive: one whose process exists on this host is
//! alive however old its lease (a stopped process, a laptop asleep, is
//! alive, and may wake); one on another host is judged by its lease, by the
//! head node's own clock (so the two clocks need not agree). A run refuses
//! a held lock; a dead holder's is refused with the `recover` command that
//! undoes what it left and releases it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the lock lives on the head node.
pub const LOCK_DIR: &str = "/run/hpchaos-run.lock";

/// The fencing counter on the head: the token of the latest acquisition.
/// It lives beside the lock, not in it, so removing the lock by hand does
/// not reset it.
pub const FENCE_FILE: &str = "/run/hpchaos-run.fence";

/// How long a lock stays valid without being renewed.
pub const LEASE: Duration = Duration::from_secs(60);

/// The lease a run takes: [`LEASE`], or `HPCHAOS_LOCK_LEASE` seconds (at
/// least 6) where the environment sets it: the lease drills use a short
/// one, so a stopped run outlives it in seconds, not minutes.
pub fn lease() -> Duration {
    std::env::var("HPCHAOS_LOCK_LEASE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(LEASE, |s| Duration::from_secs(s.max(6)))
}

/// The exit status a fenced head command ends with: the lock on the head
/// is not held under the token the command was given.
pub const FENCED_STATUS: u32 = 97;

/// What the head prints on stderr when it refuses a fenced command (no
/// single quote in it: [`fence_guard`] quotes it with them).
pub const FENCED_SAID: &str = "hpchaos: fenced: this run no longer holds the lock on the cluster";

/// The shell guard put before a command that changes the cluster from the
/// head: it runs only while the lock holds `token`. Checked in the same
/// remote command as the change, so a run stopped between its own check and
/// the act cannot act on a lock it lost meanwhile.
pub fn fence_guard(token: u64) -> String {
    format!(
        "[ \"$(cat {LOCK_DIR}/token 2>/dev/null)\" = {token} ] || {{ echo '{FENCED_SAID} (token {token})' >&2; exit {FENCED_STATUS}; }}; "
    )
}

/// `{lock}/token` read and compared on the head: exits 0 while the lock is
/// held under `token`, [`FENCED_STATUS`] otherwise.
pub fn fence_check_line(token: u64) -> String {
    format!("{}true", fence_guard(token))
}

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
    /// We just took it, under this fencing token.
    Acquired(u64),
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

/// Run on the head with the lock directory as `$1`, the owner record as
/// `$2` and the fencing counter as `$3`: takes the lock (bumping the
/// counter and printing `acquired TOKEN`), or prints who holds it and the
/// lease's age.
pub const ACQUIRE_SCRIPT: &str = "L=\"$1\"; if mkdir \"$L\" 2>/dev/null; then n=$(( $(cat \"$3\" 2>/dev/null || echo 0) + 1 )); echo $n > \"$3\" && printf '%s\\n' \"$2\" > \"$L/owner.json\" && echo $n > \"$L/token\" && touch \"$L/lease\" && echo acquired $n; exit $?; fi; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Run on the head with the lock directory as `$1`: `free`, or as
/// [`ACQUIRE_SCRIPT`] prints a held lock.
pub const READ_SCRIPT: &str = "L=\"$1\"; [ -e \"$L\" ] || { echo free; exit 0; }; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Renews the lease if the lock is still ours (`$2`: [`Owner::marker`],
/// `$3`: our token) and prints `renewed`; otherwise prints `lost`, then
/// `gone` (no lock) or `held` with the lock's owner record: never renews a
/// lock that is not ours. Parsed by [`parse_renewal`].
pub const RENEW_SCRIPT: &str = "L=\"$1\"; if [ ! -d \"$L\" ]; then echo lost; echo gone; exit 0; fi; if grep -qF \"$2\" \"$L/owner.json\" 2>/dev/null && [ \"$(cat \"$L/token\" 2>/dev/null)\" = \"$3\" ]; then touch \"$L/lease\" && echo renewed; exit $?; fi; echo lost; echo held; cat \"$L/owner.json\" 2>/dev/null; true";

/// What a renewal found on the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The lock is ours and its lease was touched.
    Renewed,
    /// No lock is there: removed by hand, or released by `recover`.
    Gone,
    /// The lock is there but not ours (another run's, or ours under
    /// another token); `owner`: its record, when readable.
    TakenBy { owner: Option<Owner>, raw: String },
}

/// Parses what [`RENEW_SCRIPT`] printed; `None` for anything else (the
/// renewal then proves nothing either way).
pub fn parse_renewal(text: &str) -> Option<Renewal> {
    let mut lines = text.lines();
    match lines.next()?.trim() {
        "renewed" => Some(Renewal::Renewed),
        "lost" => match lines.next()?.trim() {
            "gone" => Some(Renewal::Gone),
            "held" => {
                let raw: String = lines.collect::<Vec<_>>().join("\n");
                Some(Renewal::TakenBy {
                    owner: serde_json::from_str(raw.trim()).ok(),
                    raw,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// Removes the lock if it is ours (`$2`: [`Owner::marker`]) or has no
/// owner record; a lock of another run stays. Nothing there is fine.
pub const RELEASE_SCRIPT: &str = "[ -e \"$1\" ] || exit 0; if [ ! -e \"$1/owner.json\" ] || grep -qF \"$2\" \"$1/owner.json\"; then rm -rf \"$1\"; else echo 'held by another run' >&2; exit 1; fi";

/// Parses what [`ACQUIRE_SCRIPT`] or [`READ_SCRIPT`] printed.
pub fn parse_answer(text: &str) -> Option<LockState> {
    let mut lines = text.lines();
    match lines.next()?.trim() {
        "free" => Some(LockState::Free),
        first if first.starts_with("acquired") => first
            .strip_prefix("acquired")
            .and_then(|t| t.trim().parse().ok())
            .map(LockState::Acquired),
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

/// Why a held lock's owner is dead, if it is. On `this_host` its process
/// decides, whatever the lease's age: gone is dead, there (running or
/// stopped: a stopped process may wake and act) is alive. On another host
/// the lease decides: renewed more than `lease_seconds` ago is dead.
pub fn stale_because(
    owner: &Owner,
    lease_age: Option<u64>,
    this_host: &str,
    alive: impl Fn(u32) -> bool,
) -> Option<String> {
    if owner.host == this_host {
        return (!alive(owner.pid))
            .then(|| format!("its process {} on {this_host} is gone", owner.pid));
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

/// Whether a process of this host with `pid` runs hpchaos (running,
/// sleeping or stopped: `/proc/PID` is there until it is reaped).
pub fn pid_alive(pid: u32) -> bool {
    // Not this very process (a pid the dead run had, reused by recover).
    pid != std::process::id()
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|cmd| String::from_utf8_lossy(&cmd).contains("hpchaos"))
            .unwrap_or(false)
}

/// Whether the process `pid` of this host is stopped (`T`, SIGSTOP or a
/// terminal's Ctrl-Z, or `t`, traced), from `/proc/PID/stat`; for the
/// words `recover` refuses with.
pub fn pid_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(str::to_owned)
        })
        .is_some_and(|state| state == "T" || state == "t")
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
        // This host: the process decides, however old the lease (a
        // stopped run is alive).
        assert_eq!(stale_because(&found, Some(900), "laptop", |_| true), None);
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
        assert_eq!(parse_answer("acquired 7\n"), Some(LockState::Acquired(7)));
        assert_eq!(parse_answer("acquired\n"), None);
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

    /// Runs one of the lock's scripts with `sh`, as the head would.
    fn sh(script: &str, args: &[&str]) -> (String, u32) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hpchaos")
            .args(args)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(255) as u32,
        )
    }

    #[test]
    fn the_scripts_take_renew_fence_and_lose_the_lock_as_a_shell_runs_them() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock").display().to_string();
        let fence = dir.path().join("fence").display().to_string();
        let mine = serde_json::to_string(&owner()).unwrap();
        let marker = Owner::marker(&owner().run_id);
        // First acquisition: token 1; a second is refused with the holder.
        let (said, _) = sh(ACQUIRE_SCRIPT, &[&lock, &mine, &fence]);
        assert_eq!(parse_answer(&said), Some(LockState::Acquired(1)));
        let (said, _) = sh(ACQUIRE_SCRIPT, &[&lock, "{}", &fence]);
        assert!(
            matches!(parse_answer(&said), Some(LockState::Held { owner: Some(o), .. }) if o == owner())
        );
        let (said, _) = sh(RENEW_SCRIPT, &[&lock, &marker, "1"]);
        assert_eq!(parse_renewal(&said), Some(Renewal::Renewed));
        // Our run id under another token is not ours.
        let (said, _) = sh(RENEW_SCRIPT, &[&lock, &marker, "2"]);
        assert!(
            matches!(parse_renewal(&said), Some(Renewal::TakenBy { .. })),
            "{said}"
        );
        // Removed by hand: gone, and the counter goes on from where it was.
        std::fs::remove_dir_all(&lock).unwrap();
        let (said, _) = sh(RENEW_SCRIPT, &[&lock, &marker, "1"]);
        assert_eq!(parse_renewal(&said), Some(Renewal::Gone));
        let mut other = owner();
        other.run_id = "run-other".into();
        let theirs = serde_json::to_string(&other).unwrap();
        let (said, _) = sh(ACQUIRE_SCRIPT, &[&lock, &theirs, &fence]);
        assert_eq!(parse_answer(&said), Some(LockState::Acquired(2)));
        let (said, _) = sh(RENEW_SCRIPT, &[&lock, &marker, "1"]);
        match parse_renewal(&said) {
            Some(Renewal::TakenBy { owner: Some(o), .. }) => assert_eq!(o.run_id, "run-other"),
            other => panic!("{other:?}: {said}"),
        }
        // The fence, with the lock dir swapped for the test's: token 1 is
        // refused with its status, token 2 passes.
        let guard = |t: u64| fence_check_line(t).replace(LOCK_DIR, &lock);
        assert_eq!(sh(&guard(1), &[]).1, FENCED_STATUS);
        assert_eq!(sh(&guard(2), &[]).1, 0);
        // Released by its owner only.
        assert_eq!(sh(RELEASE_SCRIPT, &[&lock, &marker]).1, 1);
        assert_eq!(
            sh(RELEASE_SCRIPT, &[&lock, &Owner::marker("run-other")]).1,
            0
        );
        assert_eq!(sh(&guard(2), &[]).1, FENCED_STATUS);
    }

    #[test]
    fn renewal_answers_that_prove_nothing_are_none() {
        assert_eq!(parse_renewal(""), None);
        assert_eq!(parse_renewal("lost\n"), None);
        assert_eq!(parse_renewal("sh: 1: cannot create"), None);
    }

    #[test]
    fn a_stopped_process_is_told_from_a_running_one() {
        assert!(!pid_stopped(std::process::id()));
        assert!(!pid_stopped(u32::MAX));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let signal = |s: &str| {
            std::process::Command::new("kill")
                .args([s, &pid.to_string()])
                .status()
                .unwrap()
        };
        assert!(signal("-STOP").success());
        // The kernel marks it stopped once the signal is delivered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !pid_stopped(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(pid_stopped(pid));
        signal("-CONT");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
