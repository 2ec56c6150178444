//! The emergency stop and the hold, after Steadybit's emergency stop and
//! AWS FIS's safety lever: `hpchaos stop` on any machine with the profile
//! writes a **stop request** into the cluster's run lock on the head
//! ([`STOP_FILE`] in [`super::lock::LOCK_DIR`]), which the running harness
//! reads with its next lease renewal (every [`ACTIVE_RENEWAL`] while a
//! scenario is under way) and obeys as it obeys SIGTERM: no further
//! change, rollback, report. `--hold` also writes the **hold**
//! ([`HOLD_FILE`], kept across the head's reboots, unlike the lock under
//! `/run`): every run refuses to take the lock while it is there, and a
//! run holding the lock when it appears stops as for a request, until
//! `hpchaos stop --release` removes it. This file owns the two records,
//! the scripts the head runs and the reading of their answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stop request's file in the lock directory: it goes with the lock
/// when the run releases it.
pub const STOP_FILE: &str = "stop";

/// The hold on the head: while it exists no run takes the cluster's lock.
pub const HOLD_FILE: &str = "/var/lib/hpchaos/hold.json";

/// How often the lease is renewed (and a stop request read) while a
/// scenario is under way; between scenarios a sixth of the lease.
pub const ACTIVE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(2);

/// A stop request or a hold, as `hpchaos stop` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// `--reason`, or `no reason given`.
    pub reason: String,
    /// `user@host` of whoever asked.
    pub by: String,
    /// When it was asked, by the asking machine's clock.
    pub at: DateTime<Utc>,
    /// It came with `--hold`.
    #[serde(default)]
    pub hold: bool,
}

impl StopRequest {
    /// `stopped by hpchaos stop (alice@laptop, 2026-12-03 08:00:00 UTC): REASON`.
    pub fn describe(&self) -> String {
        format!(
            "{} by hpchaos stop ({}, {}): {}",
            if self.hold {
                "stopped and held"
            } else {
                "stopped"
            },
            self.by,
            self.at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.reason
        )
    }
}

/// Run on the head with the lock directory as `$1` and the request as
/// `$2`: writes the request into a held lock (atomically: a reader sees
/// all of it or none) and prints `requested` and the holder's record, or
/// `free` when no run holds the lock.
pub const STOP_SCRIPT: &str = "L=\"$1\"; [ -d \"$L\" ] || { echo free; exit 0; }; printf '%s\\n' \"$2\" > \"$L/stop.new\" && mv -f \"$L/stop.new\" \"$L/stop\" && echo requested && cat \"$L/owner.json\" 2>/dev/null; true";

/// Run on the head with the hold file as `$1` and the hold as `$2`:
/// writes it (its directory made if need be) and prints `held`.
pub const HOLD_SCRIPT: &str = "mkdir -p \"$(dirname \"$1\")\" && printf '%s\\n' \"$2\" > \"$1.new\" && mv -f \"$1.new\" \"$1\" && echo held";

/// Run on the head with the hold file as `$1`: removes it and prints
/// `released` and what it held, or `none`.
pub const RELEASE_SCRIPT: &str =
    "if [ -e \"$1\" ]; then echo released; cat \"$1\"; rm -f \"$1\"; else echo none; fi";

/// Run on the head with the lock directory as `$1` and the hold file as
/// `$2`: prints `stop` and the request in the lock, if any, then `hold`
/// and the hold, if any (for `status`).
pub const READ_SCRIPT: &str = "[ -e \"$1/stop\" ] && { echo stop; cat \"$1/stop\"; }; [ -e \"$2\" ] && { echo hold; cat \"$2\"; }; true";

/// What [`STOP_SCRIPT`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// No run holds the lock: nothing to stop.
    NoRun,
    /// Written into the lock of this run (its owner record, when readable).
    Requested { owner: Option<super::lock::Owner> },
}

/// Reads [`STOP_SCRIPT`]'s answer; `None` for anything else.
pub fn parse_asked(text: &str) -> Option<Asked> {
    let mut lines = text.lines();
    match lines.next()?.trim() {
        "free" => Some(Asked::NoRun),
        "requested" => {
            let raw: String = lines.collect::<Vec<_>>().join("\n");
            Some(Asked::Requested {
                owner: serde_json::from_str(raw.trim()).ok(),
            })
        }
        _ => None,
    }
}

/// The stop request and the hold read on the head (by the renewal or by
/// `status`): each `Some` when there, parsed (an unreadable one stands as a
/// request with its raw text as the reason: it still stops the run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub stop: Option<StopRequest>,
    pub hold: Option<StopRequest>,
}

/// Reads the `stop`/`hold` sections [`READ_SCRIPT`] (or the renewal, after
/// its own answer) printed: a keyword line, then the record's line.
pub fn parse_standing(text: &str) -> Standing {
    let mut standing = Standing::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let slot = match line.trim() {
            "stop" => &mut standing.stop,
            "hold" => &mut standing.hold,
            _ => continue,
        };
        let raw = lines.next().unwrap_or_default().trim();
        *slot = Some(serde_json::from_str(raw).unwrap_or_else(|_| StopRequest {
            reason: format!("an unreadable request ({raw})"),
            by: "unknown".to_owned(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            hold: false,
        }));
    }
    standing
}

/// What a run obeys: the request in its lock, else the hold (a hold put
/// on while the run held the lock stops it too).
pub fn obeyed(standing: &Standing) -> Option<StopRequest> {
    standing.stop.clone().or_else(|| {
        standing.hold.clone().map(|mut h| {
            h.hold = true;
            h
        })
    })
}

/// `user@host` of this process, for a request's `by`: the user who ran
/// sudo, else `USER`/`LOGNAME`, else the name `/etc/passwd` gives this
/// process's uid (a root shell often has neither variable), else `uid N`.
pub fn asker() -> String {
    let from_env = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty());
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let user = from_env
        .or_else(|| {
            user_named(
                &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
                uid,
            )
        })
        .unwrap_or_else(|| format!("uid {uid}"));
    format!("{user}@{}", super::lock::this_host())
}

/// The name `passwd` (the file's text) gives `uid`.
fn user_named(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2)?.parse::<u32>().ok()? == uid).then(|| fields[0].to_owned())
    })
}

/// What a run and its lease renewal share about stopping: whether a
/// scenario is under way (the renewal is then more frequent) and the stop
/// request obeyed, if any. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stops(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    active: AtomicBool,
    request: Mutex<Option<StopRequest>>,
    /// The run's stop signal (the one Ctrl-C sends), so every wait ends as
    /// for SIGTERM; without it the run sees the request at its next look.
    signal: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

impl Stops {
    /// Sharing `signal` (the sender of the run's cancel channel), if any.
    pub fn new(signal: Option<Arc<tokio::sync::watch::Sender<bool>>>) -> Stops {
        Stops(Arc::new(Shared {
            signal,
            ..Shared::default()
        }))
    }

    /// Takes what a renewal read: the first request obeyed stands, and
    /// the run's stop signal is sent.
    pub fn heed(&self, standing: &Standing) {
        let Some(request) = obeyed(standing) else {
            return;
        };
        // A poisoned slot only means a thread panicked holding it; the
        // value inside is whole (set by one assignment).
        let mut slot = self.0.request.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(request);
            if let Some(signal) = &self.0.signal {
                signal.send_replace(true);
            }
        }
    }

    /// The request obeyed, once one was read.
    pub fn requested(&self) -> Option<StopRequest> {
        self.0
            .request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a scenario is under way.
    pub fn active(&self) -> bool {
        self.0.active.load(Ordering::Relaxed)
    }

    /// A scenario started (`true`) or ended.
    pub fn set_active(&self, active: bool) {
        self.0.active.store(active, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(hold: bool) -> StopRequest {
        StopRequest {
            reason: "incident 4711".into(),
            by: "alice@laptop".into(),
            at: DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            hold,
        }
    }

    fn sh(script: &str, args: &[&str]) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hpchaos")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_request_is_written_into_a_held_lock_only_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        let hold = dir.path().join("var/hold.json");
        let (lock, hold) = (lock.to_str().unwrap(), hold.to_str().unwrap());
        let json = serde_json::to_string(&request(false)).unwrap();
        assert_eq!(
            parse_asked(&sh(STOP_SCRIPT, &[lock, &json])),
            Some(Asked::NoRun)
        );
        std::fs::create_dir(lock).unwrap();
        std::fs::write(
            format!("{lock}/owner.json"),
            r#"{"run_id":"run-1","host":"ci","pid":7,"journal":"/j","started_at":"2026-12-03T07:00:00Z","lease_seconds":60}"#,
        )
        .unwrap();
        let Some(Asked::Requested { owner: Some(owner) }) =
            parse_asked(&sh(STOP_SCRIPT, &[lock, &json]))
        else {
            panic!("not requested");
        };
        assert_eq!(owner.run_id, "run-1");
        let standing = parse_standing(&sh(READ_SCRIPT, &[lock, hold]));
        assert_eq!(standing.stop, Some(request(false)));
        assert_eq!(standing.hold, None);
        assert_eq!(obeyed(&standing), Some(request(false)));

        // A hold: kept outside the lock, read by status and obeyed.
        let held = serde_json::to_string(&request(true)).unwrap();
        assert_eq!(sh(HOLD_SCRIPT, &[hold, &held]).trim(), "held");
        std::fs::remove_file(format!("{lock}/stop")).unwrap();
        let standing = parse_standing(&sh(READ_SCRIPT, &[lock, hold]));
        assert_eq!(standing.stop, None);
        assert_eq!(obeyed(&standing).map(|r| r.hold), Some(true));
        let released = sh(RELEASE_SCRIPT, &[hold]);
        assert!(released.starts_with("released\n"), "{released}");
        assert!(released.contains("incident 4711"), "{released}");
        assert_eq!(sh(RELEASE_SCRIPT, &[hold]).trim(), "none");
        assert_eq!(
            parse_standing(&sh(READ_SCRIPT, &[lock, hold])),
            Standing::default()
        );
    }

    #[test]
    fn a_hold_refuses_the_lock_and_a_renewal_carries_the_request_and_the_hold() {
        use super::super::lock::{self, LockState, Renewal};
        let dir = tempfile::tempdir().unwrap();
        let lock_dir = dir.path().join("lock");
        let hold = dir.path().join("hold.json");
        let fence_file = dir.path().join("fence");
        let (l, h, f) = (
            lock_dir.to_str().unwrap(),
            hold.to_str().unwrap(),
            fence_file.to_str().unwrap(),
        );
        let owner = r#"{"run_id":"run-1","host":"ci","pid":7,"journal":"/j","started_at":"2026-12-03T07:00:00Z","lease_seconds":60}"#;
        let held = serde_json::to_string(&request(true)).unwrap();
        sh(HOLD_SCRIPT, &[h, &held]);
        let answer = sh(lock::ACQUIRE_SCRIPT, &[l, owner, f, "run-1", h]);
        assert_eq!(
            lock::parse_answer(&answer),
            Some(LockState::OnHold(request(true)))
        );
        assert!(!lock_dir.exists(), "a held cluster's lock was taken");
        sh(RELEASE_SCRIPT, &[h]);
        let answer = sh(lock::ACQUIRE_SCRIPT, &[l, owner, f, "run-1", h]);
        assert_eq!(lock::parse_answer(&answer), Some(LockState::Acquired(1)));
        let marker = lock::Owner::marker("run-1");
        let fence = lock::fence_of(1, "run-1");
        let renew = |hold: &str| sh(lock::RENEW_SCRIPT, &[l, &marker, &fence, "60", hold]);
        let said = renew(h);
        assert_eq!(lock::parse_renewal(&said), Some(Renewal::Renewed));
        assert_eq!(parse_standing(&said), Standing::default());
        let json = serde_json::to_string(&request(false)).unwrap();
        sh(STOP_SCRIPT, &[l, &json]);
        let said = renew(h);
        assert_eq!(lock::parse_renewal(&said), Some(Renewal::Renewed));
        assert_eq!(obeyed(&parse_standing(&said)), Some(request(false)));
        // A hold put on while the run holds the lock stops it too.
        std::fs::remove_file(lock_dir.join(STOP_FILE)).unwrap();
        sh(HOLD_SCRIPT, &[h, &held]);
        assert_eq!(obeyed(&parse_standing(&renew(h))), Some(request(true)));
    }

    #[test]
    fn an_unreadable_request_still_stops_and_says_what_it_was() {
        let standing = parse_standing("renewed\nstop\nnot json\n");
        let stop = obeyed(&standing).unwrap();
        assert!(stop.reason.contains("not json"), "{}", stop.reason);
        assert_eq!(parse_standing("renewed\n"), Standing::default());
    }

    #[test]
    fn the_first_request_heeded_stands_and_sends_the_stop_signal() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stops = Stops::new(Some(Arc::new(tx)));
        stops.heed(&Standing::default());
        assert!(!*rx.borrow());
        assert_eq!(stops.requested(), None);
        stops.heed(&Standing {
            stop: Some(request(false)),
            hold: None,
        });
        stops.heed(&Standing {
            stop: None,
            hold: Some(request(true)),
        });
        assert!(*rx.borrow());
        assert_eq!(stops.requested(), Some(request(false)));
    }

    #[test]
    fn a_user_without_user_variables_is_named_from_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n";
        assert_eq!(user_named(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_named(passwd, 1000).as_deref(), Some("ubuntu"));
        assert_eq!(user_named(passwd, 7), None);
    }

    #[test]
    fn a_request_in_words_says_who_when_and_why() {
        assert_eq!(
            request(true).describe(),
            "stopped and held by hpchaos stop (alice@laptop, 2026-12-03 08:00:00 UTC): incident 4711"
        );
    }
}
