//! hpchaos: a fault-injection chaos harness for Slurm GPU clusters on
//! Amazon SageMaker HyperPod. This library holds the harness; the `hpchaos`
//! command (the workspace's root package) parses the command line and
//! calls in, and the lab (crates/hpchaos-lab) is a crate of its own that
//! this one does not depend on.

pub mod cli_history;
pub mod cli_run;
pub mod clock;
pub mod cluster;
pub mod cost;
pub mod duration;
pub mod exit;
pub mod faults;
pub mod history;
pub mod journal;
pub mod live;
pub mod monitoring;
pub mod output;
pub mod phases;
pub mod preflight;
pub mod profile;
pub mod recover;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod status;
pub mod targets;
pub mod validate;
