//! The run history from journals written by the real journal writer: runs
//! recorded (a cut one as incomplete, a grown one read again), `history`
//! and `trend` as a user runs them, and a damaged or newer store reported
//! with the fix, never replaced unasked.

use crate::support::hpchaos;
use std::path::Path;

use crate::support::fixtures::Script;
use chrono::{DateTime, TimeDelta, Utc};
use hpchaos::history::{History, HistoryError};
use hpchaos::journal::{Entry, PhaseVerdict, RunOutcome, ScenarioOutcome, TimeSource};
use hpchaos::scenario::model::{Phase, Recovery};

fn at(offset: f64, secs: f64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(crate::support::fixtures::START)
        .unwrap()
        .to_utc()
        + TimeDelta::milliseconds(((offset + secs) * 1000.0) as i64)
}

/// A replace run `day` days after START whose replace phase ends
/// `replace` seconds after the injection (at 5 s); `ended: false` cuts the
/// journal after the replacement (a killed run).
pub fn replace_run(root: &Path, day: u32, replace: f64, ended: bool) {
    judged_replace_run(root, day, replace, PhaseVerdict::Met, ended);
}

/// [`replace_run`] whose replace phase ends with `verdict` (a run that
/// passed when it is met, else failed).
fn judged_replace_run(root: &Path, day: u32, replace: f64, verdict: PhaseVerdict, ended: bool) {
    let offset = f64::from(day) * 86_400.0;
    let dir = root.join(format!("2026{day:04}T100000-xid48-replace"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = Script::new_at(
        &dir.join("journal.jsonl"),
        &format!("run-{day:04}"),
        None,
        offset,
    );
    s.scenario(
        1.0,
        "scenarios/xid48-replace.yaml",
        Recovery::Replace,
        &[(Phase::Detect, 60), (Phase::Replace, 600)],
        None,
    )
    .at(
        5.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-12".into()],
            action: "xid 48".into(),
        },
    );
    for (phase, secs, verdict) in [
        (Phase::Detect, 3.0, PhaseVerdict::Met),
        (Phase::Drain, 4.0, PhaseVerdict::Met),
        (Phase::Replace, replace, verdict),
    ] {
        s.at(
            5.0 + secs,
            Entry::PhaseEnded {
                phase,
                ended_at: at(offset, 5.0 + secs),
                verdict,
                time_source: TimeSource::Source,
                evidence: String::new(),
                lost_steps: None,
            },
        );
    }
    if ended {
        s.at(
            5.0 + replace + 1.0,
            match verdict {
                PhaseVerdict::Met => Entry::ScenarioEnded {
                    outcome: ScenarioOutcome::Passed,
                    reason: String::new(),
                },
                _ => Entry::ScenarioEnded {
                    outcome: ScenarioOutcome::Failed,
                    reason: "replace never happened".into(),
                },
            },
        );
        s.end_run(5.0 + replace + 2.0, RunOutcome::Completed);
    }
}

#[test]
fn runs_are_recorded_from_their_journals_cut_ones_as_incomplete() {
    let root = tempfile::tempdir().unwrap();
    for (day, replace) in [(1, 30.0), (2, 32.0), (3, 31.0)] {
        replace_run(root.path(), day, replace, true);
    }
    replace_run(root.path(), 4, 40.0, false);
    let mut history = History::open(root.path()).unwrap();
    let synced = history.sync().unwrap();
    assert_eq!((synced.added, synced.updated), (4, 0));
    assert_eq!(
        history.sync().unwrap().added,
        0,
        "nothing new the second time"
    );
    let runs = history.runs(Some("xid48-replace"), None).unwrap();
    assert_eq!(runs.len(), 4);
    // Newest first; the cut run is there, incomplete.
    assert_eq!(runs[0].run_id, "run-0004");
    assert_eq!(runs[0].status, hpchaos::report::Status::Incomplete);
    let replace = |run: &hpchaos::history::ScenarioRun| {
        run.phases
            .iter()
            .find(|p| p.phase == "replace")
            .unwrap()
            .elapsed_seconds
    };
    assert_eq!(replace(&runs[1]), Some(31.0));
    // A journal that grew (here: written anew, longer) is read again.
    std::fs::remove_file(
        root.path()
            .join("20260004T100000-xid48-replace/journal.jsonl"),
    )
    .unwrap();
    replace_run(root.path(), 4, 40.0, true);
    let synced = history.sync().unwrap();
    assert_eq!((synced.added, synced.updated), (0, 1));
    let runs = history.runs(None, Some(at(2.5 * 86_400.0, 0.0))).unwrap();
    assert_eq!(runs.len(), 2, "--since keeps days 3 and 4");
    assert_eq!(runs[0].status, hpchaos::report::Status::Passed);
}

#[test]
fn a_damaged_or_newer_store_is_reported_with_the_fix_and_kept() {
    let root = tempfile::tempdir().unwrap();
    replace_run(root.path(), 1, 30.0, true);
    let store = root.path().join("history.sqlite");
    std::fs::write(
        &store,
        "this is not a database, it was overwritten by mistake\n",
    )
    .unwrap();
    let err = History::open(root.path())
        .err()
        .expect("a damaged store is refused");
    assert!(matches!(err, HistoryError::Damaged { .. }), "{err}");
    assert!(
        err.to_string().contains("hpchaos history --rebuild"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&store).unwrap(),
        "this is not a database, it was overwritten by mistake\n",
        "never replaced unasked"
    );
    // --rebuild: the damaged file kept aside, the runs read again.
    let (history, synced, kept) = History::rebuild(root.path()).unwrap();
    assert_eq!(synced.added, 1);
    assert!(
        std::fs::read_to_string(kept.unwrap())
            .unwrap()
            .starts_with("this is not")
    );
    assert_eq!(history.runs(None, None).unwrap().len(), 1);
    drop(history);
    // A store from a newer hpchaos.
    let db = rusqlite::Connection::open(&store).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let err = History::open(root.path())
        .err()
        .expect("a newer store is refused");
    assert!(
        matches!(err, HistoryError::Newer { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--rebuild"), "{err}");
}

#[test]
fn history_and_trend_print_what_a_user_asks_for() {
    let root = tempfile::tempdir().unwrap();
    for (day, replace) in [(1, 30.0), (2, 34.0), (3, 32.0), (4, 45.0)] {
        replace_run(root.path(), day, replace, true);
    }
    let dir = root.path().display().to_string();
    let out = hpchaos(&["history", "--report-dir", &dir, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 4);
    assert_eq!(json["runs"][0]["run_id"], "run-0004");
    let table = hpchaos(&[
        "history",
        "--report-dir",
        &dir,
        "--scenario",
        "xid48-replace",
    ]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("run-0001") && table.contains("45.0"),
        "{table}"
    );

    let out = hpchaos(&[
        "trend",
        "xid48-replace",
        "--report-dir",
        &dir,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let trend: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let replace = trend["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "replace")
        .unwrap();
    assert_eq!(replace["count"], 4);
    assert_eq!(replace["p50_seconds"], 32.0);
    assert_eq!(replace["p95_seconds"], 45.0);
    assert_eq!(replace["last_seconds"], 45.0);
    assert_eq!(replace["direction"], "slower");
    let markdown = hpchaos(&[
        "trend",
        "xid48-replace",
        "--report-dir",
        &dir,
        "--format",
        "markdown",
    ]);
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("```mermaid\nxychart-beta\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("line [30.0, 34.0, 32.0, 45.0]"),
        "{markdown}"
    );

    // A scenario never run, a bad span: exit 2 with the reason.
    let none = hpchaos(&["trend", "no-such-scenario", "--report-dir", &dir]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no run of scenario `no-such-scenario`")
    );
    let bad = hpchaos(&["history", "--report-dir", &dir, "--since", "a while"]);
    assert_eq!(bad.status.code(), Some(2));

    // A report folder that does not exist is a typo: said, nothing made.
    let typo = root.path().join("no-such-folder");
    let out = hpchaos(&["history", "--report-dir", &typo.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!typo.exists());

    // --rebuild writes the index: every run linked (to its journal when it
    // has no report, as a killed run), each scenario's trend.
    let out = hpchaos(&["history", "--report-dir", &dir, "--rebuild"]);
    assert_eq!(out.status.code(), Some(0));
    let index = std::fs::read_to_string(root.path().join("index.md")).unwrap();
    assert!(
        index.contains("(20260004T100000-xid48-replace/journal.jsonl)"),
        "{index}"
    );
    assert!(
        index.contains("## xid48-replace") && index.contains("xychart-beta"),
        "{index}"
    );
}

/// A CPU-quota straggler run `day` days after START whose job ran
/// `slowdown` times slower during it.
fn straggler_run(root: &Path, day: u32, slowdown: f64) {
    let offset = f64::from(day) * 86_400.0;
    let dir = root.join(format!("2026{day:04}T100000-straggler-cpu-quota"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = Script::new_at(
        &dir.join("journal.jsonl"),
        &format!("run-s{day:04}"),
        None,
        offset,
    );
    s.scenario(
        1.0,
        "scenarios/straggler-cpu-quota.yaml",
        Recovery::None,
        &[],
        None,
    )
    .at(
        5.0,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-11".into()],
            action: "cpu quota".into(),
        },
    )
    .at(
        95.0,
        Entry::Throughput {
            throughput: hpchaos::throughput::Throughput {
                before: Some(4.2),
                during: Some(4.2 / slowdown),
                after: Some(4.1),
                slowdown: Some(slowdown),
                samples: [12, 12, 12],
            },
            slowed_for: "90s".parse().unwrap(),
            noticed: Vec::new(),
        },
    )
    .at(
        96.0,
        Entry::ScenarioEnded {
            outcome: ScenarioOutcome::Passed,
            reason: String::new(),
        },
    );
    s.end_run(97.0, RunOutcome::Completed);
}

/// A straggler's slowdown is kept with its run: `history` shows it (a
/// column only when a listed run measured one), `trend` follows it as a
/// series of its own, and a store of version 2 (no such column) is
/// upgraded and read again.
#[test]
fn a_stragglers_slowdown_is_in_the_history_and_its_trend() {
    let root = tempfile::tempdir().unwrap();
    replace_run(root.path(), 1, 30.0, true);
    for (day, slowdown) in [(2, 2.3), (3, 2.4), (4, 3.1)] {
        straggler_run(root.path(), day, slowdown);
    }
    let dir = root.path().display().to_string();
    let table = hpchaos(&["history", "--report-dir", &dir]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("slowdown") && table.contains("3.10x") && table.contains("2.30x"),
        "{table}"
    );
    let replace_only = hpchaos(&[
        "history",
        "--report-dir",
        &dir,
        "--scenario",
        "xid48-replace",
    ]);
    let replace_only = String::from_utf8_lossy(&replace_only.stdout);
    assert!(!replace_only.contains("slowdown"), "{replace_only}");
    let out = hpchaos(&[
        "trend",
        "straggler-cpu-quota",
        "--report-dir",
        &dir,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trend: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let slowdown = trend["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "slowdown")
        .unwrap_or_else(|| panic!("{trend}"));
    assert_eq!(slowdown["count"], 3);
    assert_eq!(slowdown["last_seconds"], 3.1);
    assert_eq!(slowdown["direction"], "slower");
    let markdown = hpchaos(&["history", "--report-dir", &dir, "--format", "markdown"]);
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("| Slowdown |") && markdown.contains("| 2.40x |"),
        "{markdown}"
    );
    // A version 2 store: the column added, the runs read again.
    let store = root.path().join(hpchaos::history::store::FILE);
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute_batch("ALTER TABLE scenarios DROP COLUMN slowdown; PRAGMA user_version = 2;")
        .unwrap();
    drop(db);
    let mut history = History::open(root.path()).unwrap();
    history.sync().unwrap();
    let runs = history.runs(Some("straggler-cpu-quota"), None).unwrap();
    assert_eq!(
        runs.iter().map(|r| r.slowdown).collect::<Vec<_>>(),
        vec![Some(3.1), Some(2.4), Some(2.3)]
    );
}

/// A phase not reached has no time in the history: its report's end is
/// when the watch gave up, which a trend or a gate must not take for a
/// recovery (found by a newcomer: `trend` showed a p50 for a resume that
/// never happened).
#[test]
fn a_phase_not_reached_has_no_time_in_the_history() {
    let root = tempfile::tempdir().unwrap();
    judged_replace_run(root.path(), 1, 600.0, PhaseVerdict::NotReached, true);
    let mut history = History::open(root.path()).unwrap();
    history.sync().unwrap();
    let runs = history.runs(Some("xid48-replace"), None).unwrap();
    let elapsed = |name: &str| {
        runs[0]
            .phases
            .iter()
            .find(|p| p.phase == name)
            .unwrap()
            .elapsed_seconds
    };
    assert_eq!(elapsed("detect"), Some(3.0));
    assert_eq!(elapsed("replace"), None);
}

/// A store written by the last release (schema 1, no tags) is upgraded in
/// place: the column added, every run read again from its journal.
#[test]
fn a_version_1_store_is_upgraded_and_read_again() {
    let root = tempfile::tempdir().unwrap();
    replace_run(root.path(), 1, 30.0, true);
    let store = root.path().join(hpchaos::history::store::FILE);
    // As the last release left it.
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute_batch(
        "CREATE TABLE runs (dir TEXT PRIMARY KEY, run_id TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL, suite TEXT, cluster TEXT NOT NULL, journal_bytes INTEGER NOT NULL);
         CREATE TABLE scenarios (dir TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, started_at TEXT NOT NULL, injected_at TEXT, status TEXT NOT NULL, reason TEXT NOT NULL, lost_steps INTEGER, gpu_hours_lost REAL, ettr REAL, PRIMARY KEY (dir, idx));
         CREATE TABLE phases (dir TEXT NOT NULL, idx INTEGER NOT NULL, position INTEGER NOT NULL, phase TEXT NOT NULL, verdict TEXT NOT NULL, elapsed_s REAL, PRIMARY KEY (dir, idx, position));
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(db);
    let mut history = History::open(root.path()).unwrap();
    let synced = history.sync().unwrap();
    assert_eq!(synced.updated + synced.added, 1, "{synced:?}");
    let runs = history.runs(None, None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].scenario, "xid48-replace");
    let db = rusqlite::Connection::open(&store).unwrap();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, hpchaos::history::store::SCHEMA_VERSION);
}

/// `trend --score` as a user runs it: the history's scenarios and the
/// catalogue's, each with its points and why, per category and overall;
/// `--metrics` as Prometheus text.
#[test]
fn trend_score_scores_the_history_and_the_catalogue() {
    let root = tempfile::tempdir().unwrap();
    replace_run(root.path(), 1, 30.0, true);
    let dir = root.path().display().to_string();
    let out = hpchaos(&[
        "trend",
        "--score",
        "--report-dir",
        &dir,
        "--stale",
        "100000d",
        "--scenarios",
        "scenarios/",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("100  xid48-replace: passed"), "{text}");
    assert!(text.contains("  0  xid79-reboot: never run"), "{text}");
    assert!(text.contains("compound"), "{text}");
    let out = hpchaos(&["trend", "--score", "--report-dir", &dir, "--stale", "1d"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("75  xid48-replace: passed") && text.contains("(older than 1d)"),
        "{text}"
    );
    let out = hpchaos(&[
        "trend",
        "--score",
        "--report-dir",
        &dir,
        "--metrics",
        "--stale",
        "1d",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hpchaos_resiliency_score{category=\"all\"} 75"),
        "{text}"
    );
    let out = hpchaos(&["trend", "--score", "--report-dir", &dir, "--stale", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stale `soon`"));
    // index.md opens with the score.
    let history = hpchaos::history::open_synced(root.path()).unwrap();
    let index = std::fs::read_to_string(hpchaos::history::write_index(&history).unwrap()).unwrap();
    let score_at = index
        .find("## Resiliency score: 100.0")
        .expect("no score in index.md");
    assert!(score_at < index.find("xid48-replace").unwrap(), "{index}");
}
