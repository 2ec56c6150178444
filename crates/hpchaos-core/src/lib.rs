//! hpchaos: a fault-injection chaos harness for Slurm GPU clusters on
//! Amazon SageMaker HyperPod. This library holds the harness; the `hpchaos`
//! command (the workspace's root package) parses the command line and
//! calls in, and the lab (crates/hpchaos-lab) is a crate of its own that
//! this one does not depend on.
//!
//! The pipeline, each arrow one way (docs/DESIGN.md has the reasons):
//!
//! ```text
//! scenario.yaml -> Scenario -> Plan -> inject -> Events -> Phases -> Journal -> Report -> exporters
//! ```
//!
//! | arrow | module |
//! |---|---|
//! | file -> [`scenario::model::Scenario`] | [`scenario`] |
//! | Scenario -> targets | [`runner::resolve_targets`], [`targets`] |
//! | Scenario -> [`faults::Plan`] | [`faults`] |
//! | Plan -> the cluster (write ahead, lease, fan-out) | [`runner`] |
//! | the cluster -> decoded values | [`cluster`] (`node_state`, `job_state`, `slurm`, `sagemaker`, `controller_log`) |
//! | the cluster's sources -> [`phases::Event`]s | [`observe`] (one file per source, behind [`observe::Source`]) |
//! | events -> journal, phases | [`runner`]'s watch (scheduling, judging, journaling), [`phases`] (pure) |
//! | everything -> [`journal::Record`] | [`journal`]; each record then to the report [`report::Builder`] and the live view |
//! | journal -> [`report::Report`] -> md / json / junit / table / prometheus | [`report`] (pure fold, one exporter each) |
//! | reports -> history, trends, gates | [`history`] |
//! | the monitoring's view | [`monitoring`] |
//! | time | [`clock`] (the only reader of the system clock), [`duration`] |

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
pub mod observe;
pub mod output;
pub mod phases;
pub mod preflight;
pub mod profile;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod status;
pub mod targets;
pub mod validate;
