//! The process exit codes, as documented in the README.

/// Everything passed.
pub const SUCCESS: u8 = 0;
/// A scenario failed its expectations (or was aborted by its own rules).
pub const EXPECTATION_FAILED: u8 = 1;
/// The input was invalid: a scenario, suite, profile or journal.
pub const INVALID_INPUT: u8 = 2;
/// The harness itself failed: cluster unreachable, I/O error, ...
pub const HARNESS_FAILED: u8 = 3;
/// A scheduled run skipped itself: fewer idle nodes than `--if-idle`
/// asked for (nothing was done; try at the next slot).
pub const SKIPPED: u8 = 4;
/// The run lost the cluster's lock mid-run (a renewal found it gone or
/// taken, its lease ran out while the process was stopped, or `recover`
/// took its journal over): it stopped acting and ended `interrupted`.
pub const LEASE_LOST: u8 = 5;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: u8 = 130;

use hpchaos::preflight::{Refusal, RefusalKind};
use hpchaos::report::{Report, Status};

/// The exit code a run with this status ends with.
pub fn of_status(status: Status) -> u8 {
    match status {
        Status::Passed => SUCCESS,
        Status::Failed | Status::Aborted => EXPECTATION_FAILED,
        Status::Error | Status::Incomplete => HARNESS_FAILED,
        Status::Interrupted => INTERRUPTED,
    }
}

/// The exit code a run ended with, read back from its report: 5 when it
/// lost the cluster's lock, else its status's.
pub fn of_report(report: &Report) -> u8 {
    match report.lease_lost {
        Some(_) => LEASE_LOST,
        None => of_status(report.status),
    }
}

/// The exit code of a refusal before any change: 2 for a scenario that
/// cannot run as written, 3 for a cluster that cannot do what it expects.
pub fn of_refusal(refusal: &Refusal) -> u8 {
    match refusal.kind {
        RefusalKind::Scenario => INVALID_INPUT,
        RefusalKind::Cluster => HARNESS_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_the_documented_code() {
        assert_eq!(of_status(Status::Passed), 0);
        assert_eq!(of_status(Status::Failed), 1);
        assert_eq!(of_status(Status::Aborted), 1);
        assert_eq!(of_status(Status::Error), 3);
        assert_eq!(of_status(Status::Incomplete), 3);
        assert_eq!(of_status(Status::Interrupted), 130);
    }

    #[test]
    fn a_refusal_is_the_scenarios_or_the_clusters() {
        let refusal = |kind| Refusal {
            kind,
            why: String::new(),
        };
        assert_eq!(of_refusal(&refusal(RefusalKind::Scenario)), 2);
        assert_eq!(of_refusal(&refusal(RefusalKind::Cluster)), 3);
    }
}
