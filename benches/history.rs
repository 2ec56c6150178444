//! Benchmark (issue 11): `hpchaos history` and `hpchaos trend` over RUNS
//! recorded runs (default 10,000). Writes RUNS synthetic run folders with
//! the real journal writer (a replace scenario: steady state, injection,
//! observations, five phases, rollback; the replace phase's time varies
//! run to run), builds the history from them (`history --rebuild`, timed:
//! a one-off), then times the commands a user runs, end to end through
//! the binary, each several times: `history` (all runs, JSON), `history
//! --scenario --since 30d`, and `trend` (markdown with charts). Goal:
//! each answers in under a second.
//!
//! Usage: cargo bench --bench history [-- RUNS]

// A test's unwrap is a failed assertion with its cause.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use hpchaos::clock::ManualClock;
use hpchaos::journal::{
    Entry, FORMAT_VERSION, JournalWriter, PhaseVerdict, RunOutcome, ScenarioOutcome, Source, Stage,
    TimeSource,
};
use hpchaos::scenario::model::{Phase, Recovery};

fn write_run(root: &Path, index: u32, start: DateTime<Utc>, source: &str) {
    let at = start + TimeDelta::minutes(i64::from(index) * 5);
    let dir = root.join(format!(
        "{}-xid48-replace-{index}",
        at.format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(ManualClock::starting_at(at));
    let mut journal = JournalWriter::create(&dir.join("journal.jsonl"), clock.clone()).unwrap();
    let t = |s: f64| at + TimeDelta::milliseconds((s * 1000.0) as i64);
    let name = Some("xid48-replace");
    let mut put = |secs: f64, scenario: Option<&str>, entry: Entry| {
        clock.set(t(secs));
        journal.append(scenario, entry).unwrap();
    };
    put(
        0.0,
        None,
        Entry::RunStarted {
            run_id: format!("run-bench-{index:05}"),
            harness_version: "0.1.0".into(),
            format: FORMAT_VERSION,
            cluster: "bench".into(),
            suite: None,
            profile: None,
            slurm_version: Some("24.11.5".into()),
        },
    );
    put(
        0.5,
        name,
        Entry::ScenarioStarted {
            file: "scenarios/xid48-replace.yaml".into(),
            description: None,
            fault: "xid".into(),
            recovery: Recovery::Replace,
            deadlines: Default::default(),
            max_lost_steps: None,
            phases: Vec::new(),
            source: source.to_owned(),
            tags: Vec::new(),
        },
    );
    put(
        1.0,
        name,
        Entry::TargetsResolved {
            nodes: vec!["ip-10-1-0-12".into()],
        },
    );
    put(
        2.0,
        name,
        Entry::SteadyState {
            stage: Stage::Before,
            check: "targets_healthy".into(),
            passed: true,
            detail: "ip-10-1-0-12 idle".into(),
        },
    );
    put(
        3.0,
        name,
        Entry::InjectionStarted {
            nodes: vec!["ip-10-1-0-12".into()],
            action: "xid 48".into(),
        },
    );
    put(
        3.2,
        name,
        Entry::InjectionFinished {
            ok: true,
            detail: String::new(),
        },
    );
    // A replace that takes 20 to 40 s, drifting.
    let replace = 20.0 + f64::from(index % 200) / 10.0;
    let phases = [
        (Phase::Detect, 2.1),
        (Phase::Drain, 3.0),
        (Phase::Replace, replace),
        (Phase::Rejoin, replace + 4.0),
        (Phase::Resume, replace + 9.0),
    ];
    for (phase, secs) in phases {
        put(
            3.0 + secs - 0.2,
            name,
            Entry::Observed {
                source: Source::Sinfo,
                node: Some("ip-10-1-0-12".into()),
                field: "state|reason".into(),
                from: None,
                to: format!("{phase} seen"),
                source_time: Some(t(3.0 + secs - 0.3)),
            },
        );
        put(
            3.0 + secs,
            name,
            Entry::PhaseEnded {
                phase,
                ended_at: t(3.0 + secs),
                verdict: PhaseVerdict::Met,
                time_source: TimeSource::Source,
                evidence: "bench".into(),
                lost_steps: (phase == Phase::Resume).then_some(12),
            },
        );
    }
    let end = 3.0 + replace + 12.0;
    put(
        end,
        name,
        Entry::Rollback {
            step: "scancel (canary)".into(),
            ok: true,
            detail: String::new(),
            undoes: None,
        },
    );
    put(
        end + 0.5,
        name,
        Entry::ScenarioEnded {
            outcome: ScenarioOutcome::Passed,
            reason: String::new(),
        },
    );
    put(
        end + 1.0,
        None,
        Entry::RunEnded {
            outcome: RunOutcome::Completed,
        },
    );
}

fn timed(what: &str, args: &[&str], times: usize) {
    let mut walls = Vec::new();
    let mut bytes = 0;
    for _ in 0..times {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_hpchaos"))
            .args(args)
            .output()
            .unwrap();
        walls.push(started.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bytes = out.stdout.len();
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "{what}: median {:.3} s, max {:.3} s over {times} runs ({bytes} bytes out; goal < 1 s)",
        walls[walls.len() / 2],
        walls[walls.len() - 1]
    );
}

fn main() {
    let runs: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let root = tempfile::Builder::new()
        .prefix("hpchaos-history-bench")
        .tempdir()
        .unwrap();
    let source = std::fs::read_to_string("scenarios/xid48-replace.yaml").unwrap();
    let start = Utc::now() - TimeDelta::minutes(i64::from(runs) * 5);
    let began = Instant::now();
    for index in 0..runs {
        write_run(root.path(), index, start, &source);
    }
    println!(
        "wrote {runs} journals with the journal writer in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let dir = root.path().display().to_string();
    timed(
        "history --rebuild (one-off ingest)",
        &[
            "history",
            "--report-dir",
            &dir,
            "--rebuild",
            "--since",
            "1h",
        ],
        1,
    );
    timed(
        "history (all runs, json)",
        &["history", "--report-dir", &dir, "--format", "json"],
        5,
    );
    timed(
        "history --scenario --since 30d (table)",
        &[
            "history",
            "--report-dir",
            &dir,
            "--scenario",
            "xid48-replace",
            "--since",
            "30d",
        ],
        5,
    );
    timed(
        "trend (markdown, charts)",
        &[
            "trend",
            "xid48-replace",
            "--report-dir",
            &dir,
            "--format",
            "markdown",
        ],
        5,
    );
}
