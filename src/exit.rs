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
