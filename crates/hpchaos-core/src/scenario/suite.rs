//! A suite file: an ordered list of scenario files with the defaults they
//! share (cluster profile, report folder, what to do after a failure).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// Several scenarios run one after the other against one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hpchaos suite")]
pub struct Suite {
    /// Suite name, used for the report folder and the JUnit suite.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Cluster profile to run against, relative to this file; the
    /// `--cluster` option overrides it.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Where reports go, relative to the working directory.
    #[serde(default)]
    pub report_dir: Option<String>,
    /// Stop after the first scenario that fails (default: run them all).
    #[serde(default)]
    pub stop_on_failure: bool,
    /// Pause between scenarios, on top of each one's steady-state check.
    #[serde(default)]
    pub cooldown: Option<Duration>,
    /// Scenario files, relative to this file, run in this order.
    #[schemars(length(min = 1))]
    pub scenarios: Vec<String>,
}
