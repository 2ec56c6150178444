//! The run history: an SQLite file under the report root
//! (`history.sqlite`) that remembers every run so that trends and
//! regression gates mean something. The journals stay the source of truth:
//! the store is filled from them (each run folder's `journal.jsonl`, read
//! through the report builder), brought up to date before every query
//! (new journals, and journals that grew since, such as a run that was
//! still going), and can be rebuilt from them at any time. A store that is
//! damaged or was written by a newer hpchaos is reported with the fix,
//! never replaced unasked.
//!
//! SQLite through rusqlite (bundled): one file, transactions, indexes,
//! and no server; a well-kept crate rather than a format of our own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::journal::Journal;
use crate::report::{Report, Status, Verdict};

/// The store's file name under the report root.
pub const FILE: &str = "history.sqlite";
/// Bumped when the tables change incompatibly; a store with a higher
/// version is refused (written by a newer hpchaos).
pub const SCHEMA_VERSION: i64 = 3;

/// Why the history cannot be used; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "the history store {path} was written by a newer hpchaos (its schema {found}, this one reads {supported}): use that hpchaos, or rebuild the store from the journals with `hpchaos history --rebuild --report-dir {root}`"
    )]
    Newer {
        path: PathBuf,
        root: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "the history store {path} cannot be read ({detail}): rebuild it from the journals with `hpchaos history --rebuild --report-dir {root}` (the damaged file is kept beside it)"
    )]
    Damaged {
        path: PathBuf,
        root: PathBuf,
        detail: String,
    },
    #[error("cannot read {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// One scenario of one run, as the history keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioRun {
    pub run_id: String,
    /// The run's folder, relative to the report root.
    pub dir: String,
    pub scenario: String,
    pub started_at: DateTime<Utc>,
    pub status: Status,
    pub reason: String,
    pub lost_steps: Option<u64>,
    /// GPU-hours the failure cost, and the ETTR over the scenario's
    /// window, when the run could tell (see `cost.rs`).
    pub gpu_hours_lost: Option<f64>,
    pub ettr: Option<f64>,
    /// A straggler's slowdown factor (the job's step rate before over
    /// during: 2.0 is half as fast), when it was measured.
    pub slowdown: Option<f64>,
    /// The scenario's tags (its categories in the resiliency score).
    pub tags: Vec<String>,
    /// Each phase timed: its verdict and seconds from the injection to its
    /// end (`None` when it never ended).
    pub phases: Vec<PhaseRun>,
}

/// One phase of one scenario run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhaseRun {
    pub phase: String,
    pub verdict: Verdict,
    /// From the injection to the phase's end (s).
    pub elapsed_seconds: Option<f64>,
}

/// The open store.
pub struct History {
    db: Connection,
    root: PathBuf,
}

/// What a sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub added: usize,
    pub updated: usize,
}

impl History {
    /// Opens (or creates) the store under `root`. Errors: a damaged file,
    /// or one from a newer hpchaos (both with the fix).
    pub fn open(root: &Path) -> Result<History, HistoryError> {
        std::fs::create_dir_all(root).map_err(|e| HistoryError::Io {
            path: root.to_path_buf(),
            detail: e.to_string(),
        })?;
        let path = root.join(FILE);
        // A store this call creates (none there, or an empty file a full
        // disk left) is removed again if it cannot be made whole: never a
        // zero-byte history left behind.
        let created = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
        let opened = Self::open_at(root, &path);
        match opened {
            // Nothing was there to be damaged: it could not be made (a full
            // disk), and what was begun goes.
            Err(HistoryError::Damaged { detail, .. }) if created => {
                for leftover in ["", "-journal", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{leftover}", path.display()));
                }
                Err(HistoryError::Io {
                    path,
                    detail: format!("cannot create it: {detail}"),
                })
            }
            other => other,
        }
    }

    fn open_at(root: &Path, path: &Path) -> Result<History, HistoryError> {
        let path = path.to_path_buf();
        let damaged = |detail: String| HistoryError::Damaged {
            path: path.clone(),
            root: root.to_path_buf(),
            detail,
        };
        let db = Connection::open(&path).map_err(|e| damaged(e.to_string()))?;
        // A file that is not SQLite fails here, on the first read.
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| damaged(e.to_string()))?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path,
                root: root.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            db.execute_batch(SCHEMA)
                .map_err(|e| damaged(e.to_string()))?;
        }
        // Version 1 had no tags: the column is added, and every run is
        // read again from its journal at the next sync (the journals are
        // the record; the store is an index of them).
        if version == 1 {
            db.execute_batch(UPGRADE_1_TO_2)
                .map_err(|e| damaged(e.to_string()))?;
        }
        // Version 2 had no slowdown: the same.
        if version == 1 || version == 2 {
            db.execute_batch(UPGRADE_2_TO_3)
                .map_err(|e| damaged(e.to_string()))?;
        }
        // Several runs may finish at once (a schedule): wait for the lock.
        db.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| damaged(e.to_string()))?;
        Ok(History {
            db,
            root: root.to_path_buf(),
        })
    }

    /// Moves the store aside (`history.sqlite.old-<time>`) and builds a new
    /// one from every journal under `root`. The old file is kept, never
    /// deleted: it may hold what no journal does any more.
    pub fn rebuild(root: &Path) -> Result<(History, Synced, Option<PathBuf>), HistoryError> {
        let path = root.join(FILE);
        let kept = if path.exists() {
            let aside = root.join(format!(
                "{FILE}.old-{}",
                crate::clock::Clock::now(&crate::clock::SystemClock).format("%Y%m%dT%H%M%S")
            ));
            std::fs::rename(&path, &aside).map_err(|e| HistoryError::Io {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            Some(aside)
        } else {
            None
        };
        let mut history = History::open(root)?;
        let synced = history.sync()?;
        Ok((history, synced, kept))
    }

    /// Brings the store up to date with the journals under the root: a run
    /// folder not recorded yet is added; one whose journal changed size
    /// since (a run that was going on, or was recovered) is read again. A
    /// journal cut short is recorded as `incomplete`, not left out.
    pub fn sync(&mut self) -> Result<Synced, HistoryError> {
        let known: HashMap<String, i64> = {
            let mut statement = self
                .db
                .prepare("SELECT dir, journal_bytes FROM runs")
                .map_err(|e| self.damaged(e))?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(|e| self.damaged(e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| self.damaged(e))?
        };
        let mut changed = Vec::new();
        let entries = std::fs::read_dir(&self.root).map_err(|e| HistoryError::Io {
            path: self.root.clone(),
            detail: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let journal = entry.path().join("journal.jsonl");
            let Ok(meta) = std::fs::metadata(&journal) else {
                continue;
            };
            let dir = entry.file_name().to_string_lossy().into_owned();
            let bytes = meta.len() as i64;
            match known.get(&dir) {
                Some(size) if *size == bytes => {}
                Some(_) => changed.push((dir, journal, bytes, false)),
                None => changed.push((dir, journal, bytes, true)),
            }
        }
        let mut synced = Synced::default();
        if changed.is_empty() {
            return Ok(synced);
        }
        let tx = self
            .db
            .transaction()
            .map_err(|e| damaged_at(&self.root, e))?;
        for (dir, path, bytes, new) in changed {
            let Ok(journal) = Journal::load(&path) else {
                continue;
            };
            if journal.records.is_empty() {
                continue;
            }
            let report = crate::report::build(&journal);
            record(&tx, &dir, bytes, &report).map_err(|e| damaged_at(&self.root, e))?;
            if new {
                synced.added += 1;
            } else {
                synced.updated += 1;
            }
        }
        tx.commit().map_err(|e| damaged_at(&self.root, e))?;
        Ok(synced)
    }

    fn damaged(&self, err: rusqlite::Error) -> HistoryError {
        damaged_at(&self.root, err)
    }

    /// Scenario runs, newest first: those of `scenario` if given, started
    /// at or after `since` if given.
    pub fn runs(
        &self,
        scenario: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ScenarioRun>, HistoryError> {
        let since = since.map(stamp).unwrap_or_default();
        let mut statement = self
            .db
            .prepare(
                "SELECT s.dir, s.idx, r.run_id, s.name, s.started_at, s.status, s.reason, s.lost_steps, s.gpu_hours_lost, s.ettr, s.tags, s.slowdown
                 FROM scenarios s JOIN runs r ON r.dir = s.dir
                 WHERE (?1 IS NULL OR s.name = ?1) AND s.started_at >= ?2
                 ORDER BY s.started_at DESC, s.dir DESC, s.idx",
            )
            .map_err(|e| self.damaged(e))?;
        let rows = statement
            .query_map(params![scenario, since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    ScenarioRun {
                        run_id: r.get(2)?,
                        dir: r.get(0)?,
                        scenario: r.get(3)?,
                        started_at: parse_stamp(&r.get::<_, String>(4)?),
                        status: status_of(&r.get::<_, String>(5)?),
                        reason: r.get(6)?,
                        lost_steps: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                        gpu_hours_lost: r.get(8)?,
                        ettr: r.get(9)?,
                        slowdown: r.get(11)?,
                        tags: r
                            .get::<_, String>(10)?
                            .split(',')
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        phases: Vec::new(),
                    },
                ))
            })
            .map_err(|e| self.damaged(e))?;
        let mut runs: Vec<(String, i64, ScenarioRun)> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.damaged(e))?;
        let mut phases = self
            .db
            .prepare(
                "SELECT phase, verdict, elapsed_s FROM phases WHERE dir = ?1 AND idx = ?2 ORDER BY position",
            )
            .map_err(|e| self.damaged(e))?;
        for (dir, idx, run) in &mut runs {
            let found = phases
                .query_map(params![&*dir, *idx], |r| {
                    Ok(PhaseRun {
                        phase: r.get(0)?,
                        verdict: verdict_of(&r.get::<_, String>(1)?),
                        elapsed_seconds: r.get(2)?,
                    })
                })
                .map_err(|e| damaged_at(&self.root, e))?;
            run.phases = found
                .collect::<Result<_, _>>()
                .map_err(|e| damaged_at(&self.root, e))?;
        }
        Ok(runs.into_iter().map(|(_, _, run)| run).collect())
    }

    /// Whether a run with this id is recorded (for `--baseline RUN_ID`).
    pub fn has_run(&self, run_id: &str) -> Result<bool, HistoryError> {
        self.db
            .query_row(
                "SELECT 1 FROM runs WHERE run_id = ?1",
                params![run_id],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.damaged(e))
    }

    /// The report root this store belongs to.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn damaged_at(root: &Path, err: rusqlite::Error) -> HistoryError {
    HistoryError::Damaged {
        path: root.join(FILE),
        root: root.to_path_buf(),
        detail: err.to_string(),
    }
}

const SCHEMA: &str = "
BEGIN;
CREATE TABLE runs (
    dir TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    suite TEXT,
    cluster TEXT NOT NULL,
    journal_bytes INTEGER NOT NULL
);
CREATE INDEX runs_by_id ON runs(run_id);
CREATE TABLE scenarios (
    dir TEXT NOT NULL REFERENCES runs(dir) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    injected_at TEXT,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    lost_steps INTEGER,
    gpu_hours_lost REAL,
    ettr REAL,
    tags TEXT NOT NULL DEFAULT '',
    slowdown REAL,
    PRIMARY KEY (dir, idx)
);
CREATE INDEX scenarios_by_name ON scenarios(name, started_at);
CREATE INDEX scenarios_by_time ON scenarios(started_at);
CREATE TABLE phases (
    dir TEXT NOT NULL,
    idx INTEGER NOT NULL,
    position INTEGER NOT NULL,
    phase TEXT NOT NULL,
    verdict TEXT NOT NULL,
    elapsed_s REAL,
    PRIMARY KEY (dir, idx, position),
    FOREIGN KEY (dir, idx) REFERENCES scenarios(dir, idx) ON DELETE CASCADE
);
PRAGMA user_version = 3;
COMMIT;
";

/// From version 1: scenarios' tags, and every run read again.
const UPGRADE_1_TO_2: &str = "
BEGIN;
ALTER TABLE scenarios ADD COLUMN tags TEXT NOT NULL DEFAULT '';
UPDATE runs SET journal_bytes = -1;
PRAGMA user_version = 2;
COMMIT;
";

/// From version 2: stragglers' slowdown, and every run read again.
const UPGRADE_2_TO_3: &str = "
BEGIN;
ALTER TABLE scenarios ADD COLUMN slowdown REAL;
UPDATE runs SET journal_bytes = -1;
PRAGMA user_version = 3;
COMMIT;
";

/// Records one run (replacing what was recorded of its folder before).
fn record(
    tx: &rusqlite::Transaction<'_>,
    dir: &str,
    bytes: i64,
    report: &Report,
) -> Result<(), rusqlite::Error> {
    for table in ["phases", "scenarios", "runs"] {
        tx.execute(&format!("DELETE FROM {table} WHERE dir = ?1"), params![dir])?;
    }
    let started = report
        .started_at
        .or_else(|| report.scenarios.first().map(|s| s.started_at));
    tx.execute(
        "INSERT INTO runs (dir, run_id, started_at, ended_at, status, suite, cluster, journal_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            dir,
            report.run_id,
            started.map(stamp).unwrap_or_default(),
            report.ended_at.map(stamp),
            report.status.as_str(),
            report.suite,
            report.cluster,
            bytes
        ],
    )?;
    for (idx, scenario) in report.scenarios.iter().enumerate() {
        tx.execute(
            "INSERT INTO scenarios (dir, idx, name, started_at, injected_at, status, reason, lost_steps, gpu_hours_lost, ettr, tags, slowdown)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                dir,
                idx as i64,
                scenario.name,
                stamp(scenario.started_at),
                scenario.injected_at.map(stamp),
                scenario.status.as_str(),
                scenario.reason,
                scenario.lost_steps.map(|v| v as i64),
                scenario.cost.as_ref().map(|c| c.gpu_hours_lost),
                scenario.cost.as_ref().map(|c| c.ettr),
                scenario.tags.join(","),
                scenario.throughput.as_ref().and_then(|t| t.rates.slowdown),
            ],
        )?;
        for (position, phase) in scenario.phases.iter().enumerate() {
            tx.execute(
                "INSERT INTO phases (dir, idx, position, phase, verdict, elapsed_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    dir,
                    idx as i64,
                    position as i64,
                    phase.phase.to_string(),
                    verdict_name(phase.verdict),
                    // A phase not reached has no time: its report's end is
                    // when the watch gave up, which no trend or gate may
                    // take for a recovery.
                    phase
                        .elapsed
                        .filter(|_| phase.verdict != Verdict::NotReached)
                        .map(|d| d.as_std().as_secs_f64()),
                ],
            )?;
        }
    }
    Ok(())
}

/// Times as fixed-width UTC text, so that text order is time order.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_stamp(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn status_of(text: &str) -> Status {
    match text {
        "passed" => Status::Passed,
        "failed" => Status::Failed,
        "aborted" => Status::Aborted,
        "error" => Status::Error,
        "interrupted" => Status::Interrupted,
        _ => Status::Incomplete,
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "met",
        Verdict::Missed => "missed",
        Verdict::NotReached => "not_reached",
        Verdict::Observed => "observed",
        Verdict::Unfinished => "unfinished",
        Verdict::NotStarted => "not_started",
    }
}

fn verdict_of(text: &str) -> Verdict {
    match text {
        "met" => Verdict::Met,
        "missed" => Verdict::Missed,
        "not_reached" => Verdict::NotReached,
        "observed" => Verdict::Observed,
        "unfinished" => Verdict::Unfinished,
        _ => Verdict::NotStarted,
    }
}
