//! The live view of a run on stderr: every journal record as a line, and
//! where the current scenario stands (phase, time since injection against
//! that phase's deadline, what was last seen). On a terminal the standing
//! is one line redrawn in place under the records; otherwise (CI logs,
//! pipes) it is printed as a line of its own every `HEARTBEAT`.

use std::io::{IsTerminal, Write};
use std::time::{Duration as StdDuration, Instant};

use crate::duration::Duration;
use crate::scenario::model::Phase;

/// How often the standing is printed when stderr is not a terminal.
const HEARTBEAT: StdDuration = StdDuration::from_secs(15);

/// Where one scenario stands while its fault is watched.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing<'a> {
    pub scenario: &'a str,
    pub phase: Phase,
    pub since_injection: StdDuration,
    /// The phase's deadline, counted from the injection.
    pub deadline: Option<Duration>,
    pub last_seen: Option<&'a str>,
}

/// `xid48-replace: replace · 12.3s since injection (deadline 35m) · last: sinfo ip-10-1-0-13: fail|Action:Replace`
pub fn render(standing: &Standing<'_>) -> String {
    let elapsed = standing.since_injection.as_secs_f64();
    let deadline = match standing.deadline {
        Some(deadline) if standing.since_injection > deadline.as_std() => {
            format!(" (past its {deadline} deadline)")
        }
        Some(deadline) => format!(" (deadline {deadline})"),
        None => String::new(),
    };
    let last = standing
        .last_seen
        .map(|l| format!(" · last: {l}"))
        .unwrap_or_default();
    format!(
        "{}: {} · {elapsed:.1}s since injection{deadline}{last}",
        standing.scenario, standing.phase
    )
}

pub struct LiveView {
    terminal: bool,
    /// A standing line is on screen (terminal only) and must be cleared
    /// before anything else is printed.
    drawn: bool,
    last_heartbeat: Option<Instant>,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
            last_heartbeat: None,
        }
    }
}

impl LiveView {
    /// A journal record's line, printed above the standing.
    pub fn record(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "\r\x1b[2K");
            self.drawn = false;
        }
        let _ = writeln!(err, "{line}");
    }

    /// The current standing: redrawn in place on a terminal, a line of its
    /// own every [`HEARTBEAT`] elsewhere.
    pub fn standing(&mut self, standing: &Standing<'_>) {
        let text = render(standing);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            self.drawn = true;
        } else if self
            .last_heartbeat
            .is_none_or(|at| at.elapsed() >= HEARTBEAT)
        {
            let _ = writeln!(err, "  … {text}");
            self.last_heartbeat = Some(Instant::now());
        }
    }

    /// The scenario's watch is over: the standing line goes away.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.drawn = false;
        }
        self.last_heartbeat = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(secs: f64, deadline: Option<&str>) -> String {
        render(&Standing {
            scenario: "xid48-replace",
            phase: Phase::Replace,
            since_injection: StdDuration::from_secs_f64(secs),
            deadline: deadline.map(|d| d.parse().unwrap()),
            last_seen: Some("sinfo ip-10-1-0-13: fail|Action:Replace"),
        })
    }

    #[test]
    fn the_standing_says_phase_time_against_deadline_and_last_sight() {
        assert_eq!(
            standing(12.34, Some("35m")),
            "xid48-replace: replace · 12.3s since injection (deadline 35m) · last: sinfo ip-10-1-0-13: fail|Action:Replace"
        );
        assert!(
            standing(2101.0, Some("35m"))
                .contains("2101.0s since injection (past its 35m deadline)")
        );
        assert!(standing(3.0, None).contains("replace · 3.0s since injection · last"));
    }
}
