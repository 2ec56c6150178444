//! `hpchaos recover`: cleaning up after a run that died (`kill -9`, a lost
//! machine). It reads the dead run's journal (named, or the one the
//! cluster's lock points to), undoes every step whose write-ahead record
//! no successful rollback answers (resume the nodes it marked that the
//! cluster left alone, stop its processes, remove its files, cancel its
//! canary), appends what it did to that journal, and releases the lock.
//! It refuses while the run is alive, and never releases another run's lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::exit;
use crate::journal::{Entry, Journal, JournalWriter};
use crate::runner::{LOCK_DIR, Runner, lock};
use crate::scenario;

/// Runs `recover`; returns the exit code (0: nothing left applied, 3: a
/// step could not be undone or the cluster could not be reached).
/// `release_lock`: only release the dead run `RUN_ID`'s lock. `force`:
/// take over a holder that looks alive (the user made sure it is gone).
pub fn recover(
    profile_path: &Path,
    journal: Option<&Path>,
    release_lock: Option<&str>,
    force: bool,
) -> u8 {
    let profile = match scenario::load_profile(profile_path) {
        Ok(p) => p.value,
        Err(err) => {
            eprintln!("error: {err}");
            return exit::INVALID_INPUT;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HARNESS_FAILED;
        }
    };
    runtime.block_on(async move {
        let cluster = Cluster::connect(&profile).await;
        let head = cluster.slurm.head.clone();
        let state = match cluster
            .ssh
            .run(&head, &["sh", "-c", lock::READ_SCRIPT, "hpchaos", LOCK_DIR])
            .await
        {
            Ok(out) => lock::parse_answer(&out.stdout),
            Err(err) => {
                eprintln!("error: cannot read the lock on {}: {err}", head.name);
                return exit::HARNESS_FAILED;
            }
        };
        let this_host = lock::this_host();
        let this_boot = lock::this_boot();
        let holder = match &state {
            Some(lock::LockState::Held {
                owner: Some(owner),
                lease_age,
                ..
            }) => Some((
                owner.clone(),
                // `--force` speaks for the run being recovered only, never
                // for another run that holds the lock (see below).
                lock::stale_because(
                    owner,
                    *lease_age,
                    &this_host,
                    this_boot.as_deref(),
                    lock::pid_alive,
                ),
                *lease_age,
            )),
            _ => None,
        };
        let holder_alive = |owner: &lock::Owner, lease_age: Option<u64>| -> String {
            if owner.here(&this_host, this_boot.as_deref()) {
                let stopped = if lock::pid_stopped(owner.pid) {
                    format!(
                        " and is STOPPED (it may wake and act: end it with kill -CONT {} then kill -INT {}, or kill -KILL {} and recover again)",
                        owner.pid, owner.pid, owner.pid
                    )
                } else {
                    format!(" (stop it with kill -INT {})", owner.pid)
                };
                format!(
                    "{}: its process {} exists on this host{stopped}; it is alive however old its lease",
                    owner.describe(),
                    owner.pid
                )
            } else {
                format!(
                    "{}: it runs on {}, where its lease was renewed {}s ago (lease {}s); stop it there, or wait until its lease runs out",
                    owner.describe(),
                    owner.host,
                    lease_age.map_or("?".to_owned(), |a| a.to_string()),
                    owner.lease_seconds
                )
            }
        };
        let release = |marker: String| {
            let cluster = cluster.clone();
            let head = head.clone();
            async move {
                cluster
                    .ssh
                    .run(
                        &head,
                        &["sh", "-c", lock::RELEASE_SCRIPT, "hpchaos", LOCK_DIR, &marker],
                    )
                    .await
                    .is_ok_and(|o| o.status == 0)
            }
        };
        // Only the lock, for a run whose machine and journal are lost.
        if let Some(run_id) = release_lock {
            return match &holder {
                // Dead, or said to be gone for good (`--force`).
                Some((owner, why, _)) if owner.run_id == run_id && (why.is_some() || force) => {
                    let why = why.as_deref().unwrap_or("--force: said to be gone");
                    if release(lock::Owner::marker(run_id)).await {
                        println!(
                            "lock of {} released ({why}); nothing was undone: check the cluster for what it left (sinfo, the nodes it targeted)",
                            owner.describe()
                        );
                        exit::SUCCESS
                    } else {
                        eprintln!("error: cannot remove {LOCK_DIR} on {}", head.name);
                        exit::HARNESS_FAILED
                    }
                }
                Some((owner, None, age)) if owner.run_id == run_id => {
                    eprintln!(
                        "error: that run is alive, {}; nothing released (--force once it is gone for good)",
                        holder_alive(owner, *age)
                    );
                    exit::HARNESS_FAILED
                }
                Some((owner, _, _)) => {
                    eprintln!(
                        "error: the lock is held by {}, not {run_id}: left alone",
                        owner.describe()
                    );
                    exit::HARNESS_FAILED
                }
                None => {
                    println!(
                        "the lock on {} is not held by {run_id}: nothing to release",
                        head.name
                    );
                    exit::SUCCESS
                }
            };
        }
        // A lock without an owner record: its run died while taking it.
        if let (
            Some(lock::LockState::Held {
                owner: None,
                lease_age,
                ..
            }),
            None,
        ) = (&state, journal)
        {
            if !lock::ownerless_is_stale(*lease_age) {
                eprintln!(
                    "error: {LOCK_DIR} is being taken by a run right now ({}s ago); try again in a minute",
                    lease_age.map_or("?".to_owned(), |a| a.to_string())
                );
                return exit::HARNESS_FAILED;
            }
            if release(String::from("no owner record")).await {
                println!(
                    "released {LOCK_DIR} on {}: it had no owner record (a run died while taking it, before it changed anything)",
                    head.name
                );
                return exit::SUCCESS;
            }
            eprintln!("error: cannot remove {LOCK_DIR} on {}", head.name);
            return exit::HARNESS_FAILED;
        }
        let journal_path: PathBuf = match (journal, &holder) {
            (Some(path), _) => path.to_path_buf(),
            (None, Some((owner, _, _))) if owner.host == this_host => {
                PathBuf::from(&owner.journal)
            }
            (None, Some((owner, why, age))) => {
                let standing = match why {
                    Some(why) => format!("dead: {why}"),
                    None => format!(
                        "alive: its lease was renewed {}s ago (lease {}s)",
                        age.map_or("?".to_owned(), |a| a.to_string()),
                        owner.lease_seconds
                    ),
                };
                // Releasing is advised only for a holder judged dead.
                let release = if why.is_some() {
                    format!(
                        "; if it is lost, release the lock without undoing anything: hpchaos recover --cluster {} --release-lock {}",
                        profile_path.display(),
                        owner.run_id
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "error: the lock is held by {} ({standing}); its journal is on {}: run recover there, or copy the journal here and name it{release}",
                    owner.describe(),
                    owner.host,
                );
                return exit::HARNESS_FAILED;
            }
            (None, None) => {
                println!(
                    "nothing to recover: no run holds the lock on {}; name a journal to undo what its run left",
                    head.name
                );
                return exit::SUCCESS;
            }
        };
        let journal = match Journal::load(&journal_path) {
            Ok(j) => j,
            Err(err) => {
                eprintln!("error: {err}");
                return exit::HARNESS_FAILED;
            }
        };
        let Some((run_id, _)) = journal.run() else {
            eprintln!(
                "error: {} has no run_started record: not a run journal",
                journal_path.display()
            );
            return exit::INVALID_INPUT;
        };
        let run_id = run_id.to_owned();
        // The journal's own run, alive on this host, whatever the lock
        // says (it may have been removed by hand): never undone under it.
        let journal_owner = journal.records.iter().find_map(|r| match &r.entry {
            Entry::LockAcquired { owner } => {
                serde_json::from_value::<lock::Owner>(owner.clone()).ok()
            }
            _ => None,
        });
        let lock_is_its = holder.as_ref().is_some_and(|(h, _, _)| h.run_id == run_id);
        // `--force`: the user says the journal's own run is gone for good.
        let holder = holder.map(|(owner, why, age)| {
            let why = why.or_else(|| {
                (force && owner.run_id == run_id)
                    .then(|| "taken over with --force: said to be gone".to_owned())
            });
            (owner, why, age)
        });
        if let Some(owner) = &journal_owner
            && !force
            && owner.run_id == run_id
            && !lock_is_its
        {
            if owner.here(&this_host, this_boot.as_deref())
                && lock::pid_alive(owner.pid, owner.start_ticks)
            {
                eprintln!(
                    "error: that run is still alive, {}; nothing was undone (--force once it is gone for good)",
                    holder_alive(owner, None)
                );
                return exit::HARNESS_FAILED;
            }
            // Another machine's run that never ended, and no lock of its
            // to judge its lease by: whether it is alive cannot be told.
            let ended = journal
                .records
                .iter()
                .any(|r| matches!(r.entry, Entry::RunEnded { .. } | Entry::RecoverEnded { .. }));
            if !owner.here(&this_host, this_boot.as_deref()) && !ended {
                eprintln!(
                    "error: {} ran on {} and its journal has no end, and the cluster's lock is not its: whether it is still running cannot be told from here; nothing was undone (make sure it is gone, then --force)",
                    owner.describe(),
                    owner.host
                );
                return exit::HARNESS_FAILED;
            }
        }
        if let Some((owner, None, age)) = &holder {
            // Alive: its own rollback is the one to run, not ours; and
            // nothing is undone while another run holds the lock.
            if owner.run_id == run_id {
                eprintln!(
                    "error: that run is still alive, {}; nothing was undone (--force once it is gone for good)",
                    holder_alive(owner, *age)
                );
            } else {
                eprintln!(
                    "error: another run is under way, {}; nothing was undone: run recover again once it has ended",
                    holder_alive(owner, *age)
                );
            }
            return exit::HARNESS_FAILED;
        }
        // The dead run's lock is taken over under a token of recover's
        // before anything is undone: should that run wake, its fenced
        // commands are refused and its renewals find it fenced off.
        if lock_is_its {
            let taken = cluster
                .ssh
                .run(
                    &head,
                    &[
                        "sh",
                        "-c",
                        lock::TAKEOVER_SCRIPT,
                        "hpchaos",
                        LOCK_DIR,
                        &lock::Owner::marker(&run_id),
                        lock::FENCE_FILE,
                    ],
                )
                .await;
            match taken {
                Ok(out) if out.stdout.starts_with("taken") => {}
                Ok(out) => {
                    eprintln!(
                        "error: cannot take the lock over from {run_id} ({}{}); nothing was undone",
                        out.stdout.trim(),
                        out.stderr.trim()
                    );
                    return exit::HARNESS_FAILED;
                }
                Err(err) => {
                    eprintln!("error: cannot take the lock over from {run_id}: {err}; nothing was undone");
                    return exit::HARNESS_FAILED;
                }
            }
        }
        let pending = journal.still_applied();
        let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::SystemClock);
        let writer = match JournalWriter::append_to(&journal_path, clock) {
            Ok(w) => w,
            Err(err) => {
                eprintln!("error: cannot append to the journal: {err}");
                return exit::HARNESS_FAILED;
            }
        };
        println!(
            "recovering run {run_id} from {}: {} step(s) still applied",
            journal_path.display(),
            pending.len()
        );
        let (_never, cancel) = watch::channel(false);
        let mut runner = Runner::new(cluster.clone(), writer, cancel);
        runner.run_id = run_id.clone();
        runner.append(
            None,
            Entry::RecoverStarted {
                by: format!("hpchaos recover, pid {} on {this_host}", std::process::id()),
            },
        );
        let failed = runner.undo_pending(&pending).await;
        let released = match &holder {
            Some((owner, _, _)) if owner.run_id == run_id => {
                release(lock::Owner::marker(&run_id)).await
            }
            Some((owner, _, _)) => {
                println!(
                    "the lock is held by another dead run, {}: left alone; recover its journal too",
                    owner.describe()
                );
                false
            }
            None => false,
        };
        if released {
            println!("lock {LOCK_DIR} on {} released", head.name);
        }
        runner.append(
            None,
            Entry::RecoverEnded {
                still_applied: failed.clone(),
            },
        );
        // What could not be recorded is not claimed: the journal still
        // lists those steps as applied.
        if let Some(error) = runner.journal_failure() {
            eprintln!(
                "error: recover could not record what it did ({error}); the journal still lists {} step(s) as applied{}: free the space (or fix the file), then run recover again",
                pending.len(),
                if failed.is_empty() {
                    ", though each was undone (said above)"
                } else {
                    ""
                }
            );
            return exit::HARNESS_FAILED;
        }
        if failed.is_empty() {
            println!("nothing left applied by {run_id}");
            exit::SUCCESS
        } else {
            eprintln!(
                "error: {} step(s) could not be undone; fix what they say, then run recover again",
                failed.len()
            );
            exit::HARNESS_FAILED
        }
    })
}
