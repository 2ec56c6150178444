//! What `run` and `plan` are given to do: the scenarios the command line
//! names (a suite expands to its scenarios, its profile, its policy), and
//! the cluster profile, each read and checked before anything else.

use std::path::{Path, PathBuf};

use hpchaos::profile::Profile;
use hpchaos::scenario::{self, FileKind, Loaded, Scenario};

use super::CliError;

/// What to run: scenarios in order, the suite's name and policy.
pub struct Work {
    pub scenarios: Vec<Loaded<Scenario>>,
    pub suite: Option<String>,
    pub stop_on_failure: bool,
    /// The suite's pause between scenarios.
    pub cooldown: Option<std::time::Duration>,
    /// The suite's report folder, relative to the working directory.
    pub report_dir: Option<PathBuf>,
    pub profile: Profile,
    pub profile_path: PathBuf,
    pub profile_text: String,
}

/// The files and profile a suite or scenarios name, before reading them.
#[derive(Default)]
struct Named {
    profile_path: Option<PathBuf>,
    paths: Vec<PathBuf>,
    suite: Option<String>,
    stop_on_failure: bool,
    cooldown: Option<std::time::Duration>,
    report_dir: Option<PathBuf>,
}

/// Reads `files` (scenarios and suites) and the profile (`cluster`, else
/// the suite's). Errors (exit 2): a file unreadable or invalid (every
/// invalid scenario is said, rendered), no profile named.
pub fn load(files: &[PathBuf], cluster: Option<&Path>) -> Result<Work, CliError> {
    let named = expand(files, cluster)?;
    let Some(profile_path) = named.profile_path else {
        return Err(CliError::bad_input(
            "no cluster profile: pass --cluster PROFILE (for the lab: /tmp/hpchaos-lab/profile.yaml after `hpchaos lab up`)",
        ));
    };
    let profile = scenario::load_profile(&profile_path).map_err(|e| CliError::invalid(&e))?;
    let mut scenarios = Vec::new();
    let mut invalid = Vec::new();
    for path in named.paths {
        match scenario::load_scenario(&path, Some(&profile.value)) {
            Ok(loaded) => scenarios.push(loaded),
            Err(err) => invalid.push(CliError::invalid(&err).message_as_said()),
        }
    }
    if !invalid.is_empty() {
        return Err(CliError::bad_input_rendered(invalid.join("\n")));
    }
    Ok(Work {
        scenarios,
        suite: named.suite,
        stop_on_failure: named.stop_on_failure,
        cooldown: named.cooldown,
        report_dir: named.report_dir,
        profile: profile.value,
        profile_path,
        profile_text: profile.text,
    })
}

/// Suites expanded to their scenarios (paths relative to the suite), with
/// the suite's profile (unless `--cluster` named one) and policy.
fn expand(files: &[PathBuf], cluster: Option<&Path>) -> Result<Named, CliError> {
    let mut named = Named {
        profile_path: cluster.map(Path::to_path_buf),
        ..Named::default()
    };
    for file in files {
        let text = scenario::read(file).map_err(|e| CliError::invalid(&e))?;
        if FileKind::detect(&text) != FileKind::Suite {
            named.paths.push(file.clone());
            continue;
        }
        let suite = scenario::parse_suite(file, &text)
            .map_err(|d| CliError::bad_input_rendered(d.render(&text)))?;
        let base = file.parent().unwrap_or(Path::new("."));
        if named.profile_path.is_none() {
            named.profile_path = suite.cluster.as_ref().map(|c| base.join(c));
        }
        named.stop_on_failure |= suite.stop_on_failure;
        named.cooldown = suite.cooldown.map(|c| c.as_std()).or(named.cooldown);
        named.report_dir = suite.report_dir.map(PathBuf::from).or(named.report_dir);
        named
            .paths
            .extend(suite.scenarios.iter().map(|s| base.join(s)));
        named.suite = Some(suite.name);
    }
    Ok(named)
}

impl CliError {
    /// The error as `main` would print it.
    fn message_as_said(self) -> String {
        match self.rendered {
            true => self.message,
            false => format!("error: {}", self.message),
        }
    }
}
