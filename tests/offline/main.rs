//! The tests a newcomer runs first: no root, no lab, no network beyond
//! loopback (`make test-quick`). The phase engine on recorded timelines,
//! the reports against snapshots, the scenario and profile checks, the
//! run history, the SageMaker client against recorded answers, and the
//! shipped monitoring rules.

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

mod history;
mod iam;
mod observability;
mod phases;
mod replay;
mod report;
mod sagemaker_api;
mod validate;
