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
    of_kind(refusal.kind)
}

/// The exit code of a kind of refusal (see [`of_refusal`]).
pub fn of_kind(kind: RefusalKind) -> u8 {
    match kind {
        RefusalKind::Scenario => INVALID_INPUT,
        RefusalKind::Cluster | RefusalKind::UnderChange => HARNESS_FAILED,
    }
}

/// How a run ended besides its report's verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    /// It lost the cluster's lock mid-run (and stopped acting).
    pub lease_lost: bool,
    /// Something of its own is left on the cluster (`recover` must undo it).
    pub left_applied: bool,
    /// Its report files could not be written.
    pub reports_unwritten: bool,
}

/// The exit code of a run that ended: 5 when it lost the lock; else 3 when
/// something of ours is left on the cluster (that outranks any verdict),
/// or when a passing run's reports could not be written; else its report's
/// ([`of_report`]).
pub fn of_ended_run(report: &Report, ended: Ended) -> u8 {
    let verdict = of_report(report);
    if ended.lease_lost {
        LEASE_LOST
    } else if ended.left_applied || (ended.reports_unwritten && verdict == SUCCESS) {
        HARNESS_FAILED
    } else {
        verdict
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
    fn what_a_run_left_outranks_its_verdict() {
        let report = |status| Report {
            status,
            ..hpchaos::report::build(&hpchaos::journal::Journal::parse(""))
        };
        let passed = report(Status::Passed);
        let failed = report(Status::Failed);
        assert_eq!(of_ended_run(&passed, Ended::default()), 0);
        assert_eq!(of_ended_run(&failed, Ended::default()), 1);
        let lost = Ended {
            lease_lost: true,
            ..Ended::default()
        };
        assert_eq!(of_ended_run(&passed, lost), 5);
        let left = Ended {
            left_applied: true,
            ..Ended::default()
        };
        assert_eq!(of_ended_run(&failed, left), 3);
        let unwritten = Ended {
            reports_unwritten: true,
            ..Ended::default()
        };
        // Unwritten reports fail a pass; a failure keeps its own code.
        assert_eq!(of_ended_run(&passed, unwritten), 3);
        assert_eq!(of_ended_run(&failed, unwritten), 1);
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
