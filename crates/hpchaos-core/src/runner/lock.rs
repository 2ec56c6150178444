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
//! alive, and may wake; a zombie, killed and not yet reaped, is not); one
//! on another host is judged by its lease, by the head node's own clock
//! (so the two clocks need not agree). A run refuses
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
    static SET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        let Ok(text) = std::env::var("HPCHAOS_LOCK_LEASE") else {
            return LEASE;
        };
        lease_from(&text).unwrap_or_else(|why| {
            crate::output::say(&format!(
                "warning: HPCHAOS_LOCK_LEASE={text}: {why}; the lease is {}s",
                LEASE.as_secs()
            ));
            LEASE
        })
    })
}

/// What is wrong with an `HPCHAOS_LOCK_LEASE` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseSettingError {
    #[error("not a whole number of seconds (write 6, not 6s)")]
    NotSeconds,
    #[error("{0} is outside 6 to 3600 seconds")]
    OutOfRange(u64),
}

/// Removes the lock on `head` if `marker` is in its owner record (or it
/// has no owner record: a run died taking it); whether it is gone.
/// [`RELEASE_SCRIPT`] refuses another run's lock.
pub async fn release(
    ssh: &crate::cluster::ssh::SshPool,
    head: &crate::cluster::ssh::Endpoint,
    marker: &str,
) -> bool {
    let argv = ["sh", "-c", RELEASE_SCRIPT, "hpchaos", LOCK_DIR, marker];
    ssh.run_as_root(head, crate::cluster::privilege::Root::ClusterLock, &argv)
        .await
        .is_ok_and(|o| o.status == 0)
}

/// `HPCHAOS_LOCK_LEASE`'s value: whole seconds from 6 to 3600.
pub fn lease_from(text: &str) -> Result<Duration, LeaseSettingError> {
    let seconds: u64 = text
        .trim()
        .parse()
        .map_err(|_| LeaseSettingError::NotSeconds)?;
    if !(6..=3600).contains(&seconds) {
        return Err(LeaseSettingError::OutOfRange(seconds));
    }
    Ok(Duration::from_secs(seconds))
}

/// The exit status a fenced head command ends with: the lock on the head
/// is not held under the token the command was given.
pub const FENCED_STATUS: u32 = 97;

/// What the head prints on stderr when it refuses a fenced command (no
/// single quote in it: [`fence_guard`] quotes it with them).
pub const FENCED_SAID: &str = "hpchaos: fenced: this run no longer holds the lock on the cluster";

/// The lock's token file as a holder writes it: `N RUN_ID`, the counter's
/// value at its acquisition and its run id (so a counter that restarted
/// with the head's /run never matches another run's token).
pub fn fence_of(token: u64, run_id: &str) -> String {
    format!("{token} {run_id}")
}

/// The shell guard put before a command that changes the cluster from the
/// head: it runs only while the lock holds `fence` ([`fence_of`]; run ids
/// are letters, digits and dashes). Checked in the same remote command as
/// the change, so a run stopped between its own check and the act cannot
/// act on a lock it lost meanwhile.
pub fn fence_guard(fence: &str) -> String {
    format!(
        "[ \"$(cat {LOCK_DIR}/token 2>/dev/null)\" = '{fence}' ] || {{ echo '{FENCED_SAID} ({fence})' >&2; exit {FENCED_STATUS}; }}; "
    )
}

/// `argv` run on the head behind [`fence_guard`], through `sh -c` (the
/// login shell may not be a POSIX one).
pub fn fenced_line<S: AsRef<str>>(fence: &str, argv: &[S]) -> String {
    let script = format!("{}exec \"$@\"", fence_guard(fence));
    let mut words: Vec<&str> = vec!["sh", "-c", &script, "sh"];
    let pinned = crate::cluster::slurm_env::pinned(argv);
    words.extend(pinned.iter().map(String::as_str));
    crate::cluster::quote::command_line(&words)
}

/// `{lock}/token` read and compared on the head: exits 0 while the lock is
/// held under `fence`, [`FENCED_STATUS`] otherwise.
pub fn fence_check_line(fence: &str) -> String {
    fenced_line(fence, &["true"])
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
    /// The holder's machine's boot id (`/proc/sys/kernel/random/boot_id`):
    /// a host name two machines share, or a machine rebooted since, is not
    /// taken for the holder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// When the holder's process started, in clock ticks since boot
    /// (`/proc/PID/stat` field 22): a pid reused by another process is not
    /// taken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
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

    /// Whether the holder ran on this machine, as this boot: its process
    /// then decides whether it is alive.
    pub fn here(&self, this_host: &str, this_boot: Option<&str>) -> bool {
        self.host == this_host
            && match (&self.boot_id, this_boot) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            }
    }
}

/// The lock as the head node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Free,
    /// `hpchaos stop --hold` holds the cluster: no run may take the lock.
    OnHold(super::emergency::StopRequest),
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
/// `$2`, the fencing counter as `$3`, the run id as `$4` and the hold file
/// as `$5` ([`super::emergency::HOLD_FILE`]): refuses while the hold is
/// there (printing `hold` and it), else takes the lock
/// (bumping the counter, writing the token file as [`fence_of`] and
/// printing `acquired N`), or prints who holds it and the lease's age.
pub const ACQUIRE_SCRIPT: &str = "L=\"$1\"; if [ -n \"$5\" ] && [ -e \"$5\" ]; then echo hold; cat \"$5\"; exit 0; fi; if mkdir \"$L\" 2>/dev/null; then n=$(( $(cat \"$3\" 2>/dev/null || echo 0) + 1 )); echo $n > \"$3\" && printf '%s\\n' \"$2\" > \"$L/owner.json\" && echo \"$n $4\" > \"$L/token\" && touch \"$L/lease\" && echo acquired $n; exit $?; fi; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Run on the head with the lock directory as `$1`: `free`, or as
/// [`ACQUIRE_SCRIPT`] prints a held lock.
pub const READ_SCRIPT: &str = "L=\"$1\"; [ -e \"$L\" ] || { echo free; exit 0; }; echo held; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; [ -e \"$f\" ] || f=\"$L\"; echo $(( $(date +%s) - $(stat -c %Y \"$f\") )); cat \"$L/owner.json\" 2>/dev/null; true";

/// Renews the lease if the lock is still ours (`$2`: [`Owner::marker`],
/// `$3`: our [`fence_of`]) and, when `$4` is set, the head's clock says it
/// has not run out (renewed no more than `$4` seconds ago: past that,
/// another run may already have judged us dead). Prints `renewed`, or
/// `lost` and then `gone` (no lock), `held` and the owner record (another
/// run's lock), `fenced` and the token (ours, taken over by `recover`) or
/// `expired` and the lease's age. Never renews a lock that is not ours.
/// After `renewed` come the stop request in the lock and the hold (`$5`),
/// when there, as [`super::emergency::parse_standing`] reads them.
/// Parsed by [`parse_renewal`].
pub const RENEW_SCRIPT: &str = "L=\"$1\"; if [ ! -d \"$L\" ]; then echo lost; echo gone; exit 0; fi; if ! grep -qF \"$2\" \"$L/owner.json\" 2>/dev/null; then echo lost; echo held; cat \"$L/owner.json\" 2>/dev/null; exit 0; fi; t=$(cat \"$L/token\" 2>/dev/null); if [ \"$t\" != \"$3\" ]; then echo lost; echo fenced; echo \"$t\"; exit 0; fi; f=\"$L/lease\"; [ -e \"$f\" ] || f=\"$L/owner.json\"; a=$(( $(date +%s) - $(stat -c %Y \"$f\") )); if [ -n \"$4\" ] && [ \"$a\" -gt \"$4\" ]; then echo lost; echo expired; echo \"$a\"; exit 0; fi; touch \"$L/lease\" && echo renewed; [ -e \"$L/stop\" ] && { echo stop; cat \"$L/stop\"; }; [ -n \"$5\" ] && [ -e \"$5\" ] && { echo hold; cat \"$5\"; }; true";

/// Run by `recover` before it undoes a dead run's steps (`$1` the lock,
/// `$2` that run's [`Owner::marker`], `$3` the counter): bumps the counter
/// and writes a token of its own into the lock, so the dead run's fenced
/// commands are refused from then on, should it wake. Prints `taken N`, or
/// `not-its` when the lock is not that run's.
pub const TAKEOVER_SCRIPT: &str = "L=\"$1\"; if grep -qF \"$2\" \"$L/owner.json\" 2>/dev/null; then n=$(( $(cat \"$3\" 2>/dev/null || echo 0) + 1 )); echo $n > \"$3\" && echo \"$n recover\" > \"$L/token\" && echo taken $n; else echo not-its; fi";

/// What a renewal found on the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The lock is ours and its lease was touched.
    Renewed,
    /// No lock is there: removed by hand, or released by `recover`.
    Gone,
    /// The lock is another run's; `owner`: its record, when readable.
    TakenBy { owner: Option<Owner>, raw: String },
    /// Our lock under another token: `recover` took it over.
    Fenced { token: String },
    /// Ours, but the head's clock says the lease ran out (`age` seconds
    /// since it was renewed): another run may have judged us dead.
    Expired { age: u64 },
}

/// The fence token [`TAKEOVER_SCRIPT`] took the lock over under (`taken
/// N`); `None` when it did not (`not-its`, or anything else).
pub fn parse_takeover(text: &str) -> Option<u64> {
    text.lines()
        .next()?
        .trim()
        .strip_prefix("taken ")?
        .trim()
        .parse()
        .ok()
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
            "fenced" => Some(Renewal::Fenced {
                token: lines.next().unwrap_or_default().trim().to_owned(),
            }),
            "expired" => Some(Renewal::Expired {
                age: lines.next()?.trim().parse().ok()?,
            }),
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
        "hold" => Some(LockState::OnHold(
            super::emergency::parse_standing(text)
                .hold
                .unwrap_or_else(|| super::emergency::StopRequest {
                    reason: "no reason given".to_owned(),
                    by: "unknown".to_owned(),
                    at: DateTime::<Utc>::UNIX_EPOCH,
                    hold: true,
                }),
        )),
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

/// Why a held lock's owner is dead, if it is. On this machine (same host
/// name and boot, see [`Owner::here`]) its process decides, whatever the
/// lease's age: gone is dead, there (running or stopped: a stopped process
/// may wake and act) is alive. Elsewhere the lease decides: renewed more
/// than `lease_seconds` ago is dead. `alive(pid, start_ticks)`: whether
/// that process runs here.
pub fn stale_because(
    owner: &Owner,
    lease_age: Option<u64>,
    this_host: &str,
    this_boot: Option<&str>,
    alive: impl Fn(u32, Option<u64>) -> bool,
) -> Option<String> {
    if owner.here(this_host, this_boot) {
        return (!alive(owner.pid, owner.start_ticks))
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

/// Whether the process `pid` of this host is the holder: it exists
/// (running, sleeping or stopped), is not a zombie (`Z`, or `X`: killed
/// and not yet reaped by its parent, it can never act again; `/proc/PID`
/// stays until it is reaped), is not this very process, and started at
/// `start_ticks` (when the record has it; older records: its command line
/// names hpchaos).
pub fn pid_alive(pid: u32, start_ticks: Option<u64>) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if matches!(process_state(pid).as_deref(), Some("Z" | "X")) {
        return false;
    }
    match start_ticks {
        Some(start) => process_start(pid) == Some(start),
        None => std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|cmd| String::from_utf8_lossy(&cmd).contains("hpchaos"))
            .unwrap_or(false),
    }
}

/// `/proc/PID/stat` past the command name: `STATE PPID ...` (the name may
/// hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The state letter of process `pid` (`R`, `S`, `D`, `T`, `Z`, ...: the
/// field after the name in `/proc/PID/stat`, proc(5)); `None` when it is
/// gone.
fn process_state(pid: u32) -> Option<String> {
    stat_fields(pid)?.into_iter().next()
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`, the 20th after the name).
pub fn process_start(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// This machine's boot id, `None` where the kernel does not say.
pub fn this_boot() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
}

/// Whether the process `pid` of this host is stopped (`T`, SIGSTOP or a
/// terminal's Ctrl-Z, or `t`, traced), from `/proc/PID/stat`; for the
/// words `recover` refuses with.
pub fn pid_stopped(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state == "T" || state == "t")
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

    /// Whether `holds` came true within 5 s (a signal's effect on another
    /// process is seen once the kernel delivered it).
    fn within_5s(holds: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !holds() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        holds()
    }

    #[test]
    fn a_killed_holder_not_yet_reaped_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = process_start(pid);
        assert!(pid_alive(pid, start), "a running process is alive");
        // SIGKILL, not reaped: a zombie until wait(), /proc/PID still there.
        child.kill().unwrap();
        let zombie = || process_state(pid).as_deref() == Some("Z");
        assert!(within_5s(zombie), "the child never became a zombie");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(!pid_alive(pid, start), "a zombie is not alive");
        child.wait().unwrap();
        assert!(!pid_alive(pid, start));
    }

    #[test]
    fn a_takeover_is_its_token_or_nothing() {
        assert_eq!(parse_takeover("taken 7\n"), Some(7));
        assert_eq!(parse_takeover("not-its\n"), None);
        assert_eq!(parse_takeover("taken\n"), None);
        assert_eq!(parse_takeover(""), None);
    }

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
            boot_id: Some("boot-a".into()),
            start_ticks: Some(777),
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
        let boot = Some("boot-a");
        // Expired lease, from another host.
        let why = stale_because(&found, lease_age, "ci-runner", boot, |_, _| true).unwrap();
        assert!(why.contains("75s ago"), "{why}");
        // Fresh lease, other host: alive.
        assert_eq!(
            stale_because(&found, Some(5), "ci-runner", boot, |_, _| false),
            None
        );
        // This machine: the process decides, however old the lease (a
        // stopped run is alive), asked with the recorded start time.
        let asked = std::cell::Cell::new(None);
        let alive = |pid, start| {
            asked.set(Some((pid, start)));
            true
        };
        assert_eq!(
            stale_because(&found, Some(900), "laptop", boot, alive),
            None
        );
        assert_eq!(asked.get(), Some((4242, Some(777))));
        // Fresh lease, this machine, pid gone: dead.
        assert!(
            stale_because(&found, Some(5), "laptop", boot, |_, _| false)
                .unwrap()
                .contains("4242")
        );
        // The same host name after a reboot (or another machine of that
        // name): judged by the lease, not by a pid of this boot.
        assert_eq!(
            stale_because(&found, Some(5), "laptop", Some("boot-b"), |_, _| false),
            None
        );
        assert!(stale_because(&found, Some(90), "laptop", Some("boot-b"), |_, _| true).is_some());
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

    /// Runs a script with `sh` as the head would, the lock's path swapped
    /// for the test's.
    fn sh(script: &str, args: &[&str], lock: &str) -> (String, u32) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.replace(LOCK_DIR, lock))
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
        let fence_file = dir.path().join("fence").display().to_string();
        let mine = serde_json::to_string(&owner()).unwrap();
        let run = owner().run_id;
        let marker = Owner::marker(&run);
        let renew = |fence: &str, lease: &str| {
            parse_renewal(&sh(RENEW_SCRIPT, &[&lock, &marker, fence, lease], &lock).0)
        };
        // First acquisition: token 1; a second is refused with the holder.
        let (said, _) = sh(ACQUIRE_SCRIPT, &[&lock, &mine, &fence_file, &run], &lock);
        assert_eq!(parse_answer(&said), Some(LockState::Acquired(1)));
        let (said, _) = sh(ACQUIRE_SCRIPT, &[&lock, "{}", &fence_file, "run-x"], &lock);
        assert!(
            matches!(parse_answer(&said), Some(LockState::Held { owner: Some(o), .. }) if o == owner())
        );
        let ours = fence_of(1, &run);
        assert_eq!(renew(&ours, "60"), Some(Renewal::Renewed));
        // Our run id under another token is fenced off.
        assert_eq!(
            renew(&fence_of(2, &run), "60"),
            Some(Renewal::Fenced {
                token: ours.clone()
            })
        );
        // The head's clock says the lease ran out: not renewed (unless the
        // caller asks for no limit: the rollback of a lock still ours).
        let stale = std::process::Command::new("touch")
            .args(["-d", "2 minutes ago", &format!("{lock}/lease")])
            .status()
            .unwrap();
        assert!(stale.success());
        match renew(&ours, "60") {
            Some(Renewal::Expired { age }) => assert!((119..200).contains(&age), "{age}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(renew(&ours, ""), Some(Renewal::Renewed));
        // The fence, run through sh -c as the head would: ours passes and
        // runs the command with its arguments; another is refused.
        let (said, status) = sh(&fenced_line(&ours, &["echo", "it's", "run"]), &[], &lock);
        assert_eq!((said.as_str(), status), ("it's run\n", 0));
        assert_eq!(
            sh(&fence_check_line(&fence_of(1, "run-other")), &[], &lock).1,
            FENCED_STATUS
        );
        // recover takes it over: our fenced commands are refused from then on.
        let (said, _) = sh(TAKEOVER_SCRIPT, &[&lock, &marker, &fence_file], &lock);
        assert_eq!(said.trim(), "taken 2");
        assert_eq!(sh(&fence_check_line(&ours), &[], &lock).1, FENCED_STATUS);
        assert!(matches!(renew(&ours, "60"), Some(Renewal::Fenced { .. })));
        // Removed by hand: gone, and the counter goes on from where it was.
        std::fs::remove_dir_all(&lock).unwrap();
        assert_eq!(renew(&ours, "60"), Some(Renewal::Gone));
        let mut other = owner();
        other.run_id = "run-other".into();
        let theirs = serde_json::to_string(&other).unwrap();
        let (said, _) = sh(
            ACQUIRE_SCRIPT,
            &[&lock, &theirs, &fence_file, "run-other"],
            &lock,
        );
        assert_eq!(parse_answer(&said), Some(LockState::Acquired(3)));
        match renew(&ours, "60") {
            Some(Renewal::TakenBy { owner: Some(o), .. }) => assert_eq!(o.run_id, "run-other"),
            other => panic!("{other:?}"),
        }
        let (said, _) = sh(TAKEOVER_SCRIPT, &[&lock, &marker, &fence_file], &lock);
        assert_eq!(said.trim(), "not-its");
        assert_eq!(
            sh(&fence_check_line(&fence_of(3, "run-other")), &[], &lock).1,
            0
        );
        // Released by its owner only.
        assert_eq!(sh(RELEASE_SCRIPT, &[&lock, &marker], &lock).1, 1);
        assert_eq!(
            sh(RELEASE_SCRIPT, &[&lock, &Owner::marker("run-other")], &lock).1,
            0
        );
        assert_eq!(
            sh(&fence_check_line(&fence_of(3, "run-other")), &[], &lock).1,
            FENCED_STATUS
        );
    }

    #[test]
    fn a_lease_from_the_environment_is_whole_seconds_from_6_to_3600() {
        assert_eq!(lease_from("6"), Ok(Duration::from_secs(6)));
        assert_eq!(lease_from(" 600 "), Ok(Duration::from_secs(600)));
        for bad in ["abc", "6s", "5", "100000000", "-1", ""] {
            assert!(lease_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renewal_answers_that_prove_nothing_are_none() {
        assert_eq!(parse_renewal(""), None);
        assert_eq!(parse_renewal("lost\n"), None);
        assert_eq!(parse_renewal("lost\nexpired\nsoon\n"), None);
        assert_eq!(parse_renewal("sh: 1: cannot create"), None);
    }

    #[test]
    fn a_stopped_process_is_told_from_a_running_one_and_a_reused_pid_from_its_holder() {
        assert!(!pid_stopped(std::process::id()));
        assert!(!pid_stopped(u32::MAX));
        // This process is never a holder (a pid recover reused).
        assert!(!pid_alive(std::process::id(), None));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = process_start(pid);
        assert!(start.is_some());
        assert!(pid_alive(pid, start));
        assert!(
            !pid_alive(pid, start.map(|s| s + 1)),
            "another start is another process"
        );
        let signal = |s: &str| {
            std::process::Command::new("kill")
                .args([s, &pid.to_string()])
                .status()
                .unwrap()
        };
        assert!(signal("-STOP").success());
        // The kernel marks it stopped once the signal is delivered.
        assert!(within_5s(|| pid_stopped(pid)));
        assert!(pid_alive(pid, start), "stopped is alive");
        signal("-CONT");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(this_boot().is_some());
    }
}
