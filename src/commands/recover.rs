//! `hpchaos recover`: cleaning up after a run that died (`kill -9`, a lost
//! machine). It reads the dead run's journal (named, or the one the
//! cluster's lock points to), undoes every step whose write-ahead record
//! no successful rollback answers (resume the nodes it marked that the
//! cluster left alone, stop its processes, remove its files, cancel its
//! canary), appends what it did to that journal, and releases the lock.
//! It refuses while the run is alive, and never releases another run's
//! lock. The lock's rules (who is alive, the scripts) are the library's
//! `runner::lock`; the undoing is the runner's `undo_pending`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::exit;
use hpchaos::cluster::Cluster;
use hpchaos::journal::{Entry, Journal, JournalWriter};
use hpchaos::runner::{LOCK_DIR, Runner, lock};

use super::{CliError, Outcome};

/// `hpchaos recover`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// The dead run's journal; by default the one the lock names.
    journal: Option<PathBuf>,
    /// Only release the lock of this dead run, undoing nothing: for a
    /// run whose machine and journal are lost (check the cluster by
    /// hand). Refused while that run's lease is alive.
    #[arg(long, value_name = "RUN_ID")]
    release_lock: Option<String>,
    /// Take over a run that still looks alive (its process exists on
    /// this host, stopped or not, or its lease is fresh): only once you
    /// have made sure that process is gone for good. A run taken over
    /// learns it at its next record and stops acting.
    #[arg(long)]
    force: bool,
}

/// Exit 0: nothing left applied (or nothing to do); 3: a step could not
/// be undone, the cluster could not be reached, or a live run was left
/// alone; 2: the profile or the journal is not one.
pub fn exec(args: Args) -> Outcome {
    let profile = hpchaos::scenario::load_profile(&args.cluster)
        .map_err(CliError::bad_input)?
        .value;
    super::runtime()?.block_on(async move {
        let cluster = Cluster::connect(&profile).await;
        Recovery::read(cluster).await?.recover(&args).await
    })
}

/// A failure of recover's own: exit 3 with `message`.
fn failed(message: impl std::fmt::Display) -> CliError {
    CliError::failed(message)
}

/// The lock's holder as judged from here: its owner record, why it is
/// dead (`None`: alive), and its lease's age in seconds.
type Holder = (lock::Owner, Option<String>, Option<u64>);

/// What recover starts from: the cluster, its lock, and this machine.
struct Recovery {
    cluster: Cluster,
    state: Option<lock::LockState>,
    holder: Option<Holder>,
    this_host: String,
    this_boot: Option<String>,
}

impl Recovery {
    /// Reads the cluster's lock and judges its holder.
    async fn read(cluster: Cluster) -> Result<Recovery, CliError> {
        let head = cluster.slurm.head.clone();
        let out = cluster
            .ssh
            .run(&head, &["sh", "-c", lock::READ_SCRIPT, "hpchaos", LOCK_DIR])
            .await
            .map_err(|err| failed(format!("cannot read the lock on {}: {err}", head.name)))?;
        let state = lock::parse_answer(&out.stdout);
        let (this_host, this_boot) = (lock::this_host(), lock::this_boot());
        let holder = match &state {
            Some(lock::LockState::Held {
                owner: Some(owner),
                lease_age,
                ..
            }) => Some((
                owner.clone(),
                // `--force` speaks for the run being recovered only, never
                // for another run that holds the lock (see `refuse_live`).
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
        Ok(Recovery {
            cluster,
            state,
            holder,
            this_host,
            this_boot,
        })
    }

    fn head_name(&self) -> &str {
        &self.cluster.slurm.head.name
    }

    /// Recovers as `args` asks: only the lock, an ownerless lock, or the
    /// dead run's journal.
    async fn recover(mut self, args: &Args) -> Outcome {
        if let Some(run_id) = &args.release_lock {
            return self.release_only(run_id, args.force).await;
        }
        if let (
            Some(lock::LockState::Held {
                owner: None,
                lease_age,
                ..
            }),
            None,
        ) = (&self.state, &args.journal)
        {
            return self.release_ownerless(*lease_age).await;
        }
        let Some(journal_path) = self.journal_path(args)? else {
            outln!(
                "nothing to recover: no run holds the lock on {}; name a journal to undo what its run left",
                self.head_name()
            );
            return Ok(exit::SUCCESS);
        };
        let journal = Journal::load(&journal_path).map_err(CliError::bad_input)?;
        let Some((run_id, _)) = journal.run() else {
            return Err(CliError::bad_input(format!(
                "{} has no run_started record: not a run journal",
                journal_path.display()
            )));
        };
        let run_id = run_id.to_owned();
        let lock_is_its = self
            .holder
            .as_ref()
            .is_some_and(|(h, _, _)| h.run_id == run_id);
        // `--force`: the user says the journal's own run is gone for good.
        if let Some((owner, why, _)) = self.holder.as_mut()
            && why.is_none()
            && args.force
            && owner.run_id == run_id
        {
            *why = Some("taken over with --force: said to be gone".to_owned());
        }
        if !args.force {
            self.refuse_unended(&journal, &run_id, lock_is_its)?;
        }
        self.refuse_live(&run_id)?;
        if lock_is_its {
            self.take_over(&run_id).await?;
        }
        self.undo(&journal, &journal_path, &run_id).await
    }

    /// `--release-lock RUN_ID`: only the lock, for a run whose machine
    /// and journal are lost; refused while that run is alive.
    async fn release_only(&self, run_id: &str, force: bool) -> Outcome {
        match &self.holder {
            // Dead, or said to be gone for good (`--force`).
            Some((owner, why, _)) if owner.run_id == run_id && (why.is_some() || force) => {
                let why = why.as_deref().unwrap_or("--force: said to be gone");
                if !self.release(lock::Owner::marker(run_id)).await {
                    return Err(failed(format!(
                        "cannot remove {LOCK_DIR} on {}",
                        self.head_name()
                    )));
                }
                outln!(
                    "lock of {} released ({why}); nothing was undone: check the cluster for what it left (sinfo, the nodes it targeted)",
                    owner.describe()
                );
                Ok(exit::SUCCESS)
            }
            Some((owner, None, age)) if owner.run_id == run_id => Err(failed(format!(
                "that run is alive, {}; nothing released (--force once it is gone for good)",
                self.alive(owner, *age)
            ))),
            Some((owner, _, _)) => Err(failed(format!(
                "the lock is held by {}, not {run_id}: left alone",
                owner.describe()
            ))),
            None => {
                outln!(
                    "the lock on {} is not held by {run_id}: nothing to release",
                    self.head_name()
                );
                Ok(exit::SUCCESS)
            }
        }
    }

    /// A lock without an owner record: its run died while taking it (or
    /// one is taking it right now).
    async fn release_ownerless(&self, lease_age: Option<u64>) -> Outcome {
        if !lock::ownerless_is_stale(lease_age) {
            return Err(failed(format!(
                "{LOCK_DIR} is being taken by a run right now ({}s ago); try again in a minute",
                lease_age.map_or("?".to_owned(), |a| a.to_string())
            )));
        }
        if !self.release(String::from("no owner record")).await {
            return Err(failed(format!(
                "cannot remove {LOCK_DIR} on {}",
                self.head_name()
            )));
        }
        outln!(
            "released {LOCK_DIR} on {}: it had no owner record (a run died while taking it, before it changed anything)",
            self.head_name()
        );
        Ok(exit::SUCCESS)
    }

    /// The journal to recover: the one named, else the one the lock's
    /// holder on this host names; `None`: no run holds the lock.
    fn journal_path(&self, args: &Args) -> Result<Option<PathBuf>, CliError> {
        match (&args.journal, &self.holder) {
            (Some(path), _) => Ok(Some(path.clone())),
            (None, Some((owner, _, _))) if owner.host == self.this_host => {
                Ok(Some(PathBuf::from(&owner.journal)))
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
                let release = match why {
                    Some(_) => format!(
                        "; if it is lost, release the lock without undoing anything: hpchaos recover --cluster {} --release-lock {}",
                        args.cluster.display(),
                        owner.run_id
                    ),
                    None => String::new(),
                };
                Err(failed(format!(
                    "the lock is held by {} ({standing}); its journal is on {}: run recover there, or copy the journal here and name it{release}",
                    owner.describe(),
                    owner.host,
                )))
            }
            (None, None) => Ok(None),
        }
    }

    /// The journal's own run, alive on this host, whatever the lock says
    /// (it may have been removed by hand), or another machine's that never
    /// ended with no lock of its to judge: never undone under it.
    fn refuse_unended(
        &self,
        journal: &Journal,
        run_id: &str,
        lock_is_its: bool,
    ) -> Result<(), CliError> {
        let owner = journal.records.iter().find_map(|r| match &r.entry {
            Entry::LockAcquired { owner } => {
                serde_json::from_value::<lock::Owner>(owner.clone()).ok()
            }
            _ => None,
        });
        let Some(owner) = owner.filter(|o| o.run_id == run_id && !lock_is_its) else {
            return Ok(());
        };
        let here = owner.here(&self.this_host, self.this_boot.as_deref());
        if here && lock::pid_alive(owner.pid, owner.start_ticks) {
            return Err(failed(format!(
                "that run is still alive, {}; nothing was undone (--force once it is gone for good)",
                self.alive(&owner, None)
            )));
        }
        let ended = journal
            .records
            .iter()
            .any(|r| matches!(r.entry, Entry::RunEnded { .. } | Entry::RecoverEnded { .. }));
        if !here && !ended {
            return Err(failed(format!(
                "{} ran on {} and its journal has no end, and the cluster's lock is not its: whether it is still running cannot be told from here; nothing was undone (make sure it is gone, then --force)",
                owner.describe(),
                owner.host
            )));
        }
        Ok(())
    }

    /// A live holder: its own rollback is the one to run, not ours; and
    /// nothing is undone while another run holds the lock.
    fn refuse_live(&self, run_id: &str) -> Result<(), CliError> {
        let Some((owner, None, age)) = &self.holder else {
            return Ok(());
        };
        let alive = self.alive(owner, *age);
        Err(failed(if owner.run_id == run_id {
            format!(
                "that run is still alive, {alive}; nothing was undone (--force once it is gone for good)"
            )
        } else {
            format!(
                "another run is under way, {alive}; nothing was undone: run recover again once it has ended"
            )
        }))
    }

    /// Takes the dead run's lock over under a token of recover's before
    /// anything is undone: should that run wake, its fenced commands are
    /// refused and its renewals find it fenced off.
    async fn take_over(&self, run_id: &str) -> Result<(), CliError> {
        let marker = lock::Owner::marker(run_id);
        let argv = [
            "sh",
            "-c",
            lock::TAKEOVER_SCRIPT,
            "hpchaos",
            LOCK_DIR,
            &marker,
            lock::FENCE_FILE,
        ];
        let taken = self.cluster.ssh.run_as_root(
            &self.cluster.slurm.head,
            hpchaos::cluster::privilege::Root::ClusterLock,
            &argv,
        );
        match taken.await {
            Ok(out) if lock::parse_takeover(&out.stdout).is_some() => Ok(()),
            Ok(out) => Err(failed(format!(
                "cannot take the lock over from {run_id} ({}{}); nothing was undone",
                out.stdout.trim(),
                out.stderr.trim()
            ))),
            Err(err) => Err(failed(format!(
                "cannot take the lock over from {run_id}: {err}; nothing was undone"
            ))),
        }
    }

    /// Undoes what the journal lists as still applied, journaling it, and
    /// releases the dead run's lock.
    async fn undo(&self, journal: &Journal, path: &Path, run_id: &str) -> Outcome {
        let pending = journal.still_applied();
        let clock: Arc<dyn hpchaos::clock::Clock> = Arc::new(hpchaos::clock::SystemClock);
        let writer = JournalWriter::append_to(path, clock)
            .map_err(|err| failed(format!("cannot append to the journal: {err}")))?;
        outln!(
            "recovering run {run_id} from {}: {} step(s) still applied",
            path.display(),
            pending.len()
        );
        // What the dead run asked HyperPod to do (a reboot, a replace, a
        // deep health check) is HyperPod's to finish: said, not undone.
        for record in &journal.records {
            if let Entry::StepRan { step, ok: true, .. } = &record.entry
                && step.starts_with("SageMaker ")
            {
                outln!(
                    "left to HyperPod: {step} (it finishes what it was asked; there is nothing to undo)"
                );
            }
        }
        let (_never, cancel) = tokio::sync::watch::channel(false);
        let settings = hpchaos::runner::Settings {
            run_id: Some(run_id.to_owned()),
            ..hpchaos::runner::Settings::default()
        };
        let mut runner = Runner::new(self.cluster.clone(), writer, cancel, settings);
        runner.append(
            None,
            Entry::RecoverStarted {
                by: format!(
                    "hpchaos recover, pid {} on {}",
                    std::process::id(),
                    self.this_host
                ),
            },
        );
        let failed_steps = runner.undo_pending(&pending).await;
        let released = match &self.holder {
            Some((owner, _, _)) if owner.run_id == run_id => {
                self.release(lock::Owner::marker(run_id)).await
            }
            Some((owner, _, _)) => {
                outln!(
                    "the lock is held by another dead run, {}: left alone; recover its journal too",
                    owner.describe()
                );
                false
            }
            None => false,
        };
        if released {
            outln!("lock {LOCK_DIR} on {} released", self.head_name());
        }
        runner.append(
            None,
            Entry::RecoverEnded {
                still_applied: failed_steps.clone(),
            },
        );
        // What could not be recorded is not claimed: the journal still
        // lists those steps as applied.
        if let Some(error) = runner.journal_failure() {
            return Err(failed(format!(
                "recover could not record what it did ({error}); the journal still lists {} step(s) as applied{}: free the space (or fix the file), then run recover again",
                pending.len(),
                if failed_steps.is_empty() {
                    ", though each was undone (said above)"
                } else {
                    ""
                }
            )));
        }
        if !failed_steps.is_empty() {
            return Err(failed(format!(
                "{} step(s) could not be undone; fix what they say, then run recover again",
                failed_steps.len()
            )));
        }
        outln!("nothing left applied by {run_id}");
        Ok(exit::SUCCESS)
    }

    /// Removes the lock if `marker` is in its owner record (or it has
    /// none); whether it is gone.
    async fn release(&self, marker: String) -> bool {
        lock::release(&self.cluster.ssh, &self.cluster.slurm.head, &marker).await
    }

    /// Why a holder is alive, and how to end it.
    fn alive(&self, owner: &lock::Owner, lease_age: Option<u64>) -> String {
        if !owner.here(&self.this_host, self.this_boot.as_deref()) {
            return format!(
                "{}: it runs on {}, where its lease was renewed {}s ago (lease {}s); stop it there, or wait until its lease runs out",
                owner.describe(),
                owner.host,
                lease_age.map_or("?".to_owned(), |a| a.to_string()),
                owner.lease_seconds
            );
        }
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
    }
}
