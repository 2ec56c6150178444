//! `hpchaos history` and `hpchaos trend`: the history store opened (and
//! brought up to date, or rebuilt), queried, printed.

use std::path::Path;

use crate::exit;
use crate::history::{self, HistoryFormat};

/// `hpchaos history`. Exit 0, or 2 for a bad `--since`, 3 when the store
/// cannot be used (the message says how to fix it).
pub fn history(
    root: &Path,
    scenario: Option<&str>,
    since: Option<&str>,
    format: HistoryFormat,
    rebuild: bool,
) -> u8 {
    let since = match parse_since(since) {
        Ok(since) => since,
        Err(code) => return code,
    };
    if let Some(code) = missing_folder(root) {
        return code;
    }
    let store = if rebuild {
        history::History::rebuild(root).map(|(store, synced, kept)| {
            eprintln!(
                "history: rebuilt {} from {} journal(s){}",
                root.join(history::store::FILE).display(),
                synced.added,
                kept.map(|k| format!("; the old file is kept as {}", k.display()))
                    .unwrap_or_default()
            );
            store
        })
    } else {
        history::open_synced(root)
    };
    let result = store.and_then(|store| {
        if rebuild {
            history::write_index(&store)?;
        }
        store.runs(scenario, since)
    });
    match result {
        Ok(runs) => {
            crate::output::print(&history::render_history(&runs, format));
            exit::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            exit::HARNESS_FAILED
        }
    }
}

/// `hpchaos trend SCENARIO`. Exit 0; 2 for a bad `--since` or a scenario
/// with no recorded run; 3 when the store cannot be used.
pub fn trend(root: &Path, scenario: &str, since: Option<&str>, format: HistoryFormat) -> u8 {
    let since = match parse_since(since) {
        Ok(since) => since,
        Err(code) => return code,
    };
    if let Some(code) = missing_folder(root) {
        return code;
    }
    match history::open_synced(root).and_then(|store| store.runs(Some(scenario), since)) {
        Ok(runs) if runs.is_empty() => {
            eprintln!(
                "error: no run of scenario `{scenario}` is recorded under {}{} (see `hpchaos history --report-dir {}`)",
                root.display(),
                if since.is_some() { " in that span" } else { "" },
                root.display()
            );
            exit::INVALID_INPUT
        }
        Ok(runs) => {
            crate::output::print(&history::render_trend(scenario, &runs, format));
            exit::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            exit::HARNESS_FAILED
        }
    }
}

/// `--since` as a time, or the exit code after saying why not.
fn parse_since(since: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, u8> {
    since
        .map(|s| history::since(s, crate::clock::Clock::now(&crate::clock::SystemClock)))
        .transpose()
        .map_err(|err| {
            eprintln!("error: {err}");
            exit::INVALID_INPUT
        })
}

/// A report folder that does not exist is a typo, not an empty history:
/// said (exit 2), and nothing created.
fn missing_folder(root: &Path) -> Option<u8> {
    (!root.is_dir()).then(|| {
        eprintln!(
            "error: no report folder {}: give the folder runs write to (`run --report-dir`, default `reports`)",
            root.display()
        );
        exit::INVALID_INPUT
    })
}
