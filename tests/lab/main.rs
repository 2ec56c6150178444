//! The tests of record: hpchaos end to end on the lab (real Slurm, munge
//! and sshd in network namespaces, the local SageMaker control plane,
//! Prometheus and Alertmanager). They need root and `make setup`; the
//! lab owns 10.1.0.0/24, so nextest runs them one at a time (the `lab`
//! test group in `.config/nextest.toml`).

// A test's unwrap is a failed assertion with its cause.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../support/mod.rs"]
mod support;

mod controls;
mod drills;
mod end_to_end;
mod run;
mod training_failures;
