//! `hpchaos validate`: checks the files named on the command line. Tells
//! scenarios, suites and profiles apart, follows a suite to its scenarios
//! and its cluster profile, and returns every file's verdict; printing is
//! the caller's business.

use std::path::{Path, PathBuf};

use crate::profile::Profile;
use crate::scenario::yaml_tree::{Node, TreePath};
use crate::scenario::{self, Diagnostic, Diagnostics, FileKind, LoadError, Position};

/// What validating one file found.
#[derive(Debug)]
pub struct Outcome {
    pub path: PathBuf,
    pub kind: FileKind,
    /// The file's text (empty when unreadable), for rendering diagnostics.
    pub text: String,
    pub result: Result<String, Diagnostics>,
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        self.result.is_ok()
    }
}

/// Validates each path; a suite adds outcomes for its profile and scenarios.
/// `profile` (from `--cluster`) enables the cluster-dependent checks.
pub fn validate(paths: &[PathBuf], profile: Option<&Profile>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for path in paths {
        let text = match scenario::read(path) {
            Ok(text) => text,
            Err(err) => {
                outcomes.push(unreadable(path, &err));
                continue;
            }
        };
        match FileKind::detect(&text) {
            FileKind::Scenario => outcomes.push(scenario_outcome(path, text, profile)),
            FileKind::Profile => {
                // Also offline what a run checks first: the files it names.
                let result = scenario::parse_profile(path, &text).and_then(|p| {
                    let problems = crate::preflight::offline(path, &text, &p);
                    if problems.is_empty() {
                        Ok(format!("cluster profile `{}`", p.name))
                    } else {
                        Err(Diagnostics(problems))
                    }
                });
                outcomes.push(Outcome {
                    path: path.clone(),
                    kind: FileKind::Profile,
                    text,
                    result,
                });
            }
            FileKind::Suite => suite_outcomes(path, text, profile, &mut outcomes),
        }
    }
    dedupe(outcomes)
}

/// A scenario named on the command line and by a suite is reported once.
fn dedupe(outcomes: Vec<Outcome>) -> Vec<Outcome> {
    let mut seen = std::collections::HashSet::new();
    outcomes
        .into_iter()
        .filter(|o| seen.insert(std::fs::canonicalize(&o.path).unwrap_or_else(|_| o.path.clone())))
        .collect()
}

fn unreadable(path: &Path, err: &LoadError) -> Outcome {
    Outcome {
        path: path.to_path_buf(),
        kind: FileKind::Scenario,
        text: String::new(),
        result: Err(Diagnostics(vec![
            Diagnostic::new(path, Position::START, err.to_string()).with_hint("check the path"),
        ])),
    }
}

fn scenario_outcome(path: &Path, text: String, profile: Option<&Profile>) -> Outcome {
    let result =
        scenario::parse_scenario(path, &text, profile).map(|s| format!("scenario `{}`", s.name));
    Outcome {
        path: path.to_path_buf(),
        kind: FileKind::Scenario,
        text,
        result,
    }
}

fn suite_outcomes(
    path: &Path,
    text: String,
    cli_profile: Option<&Profile>,
    outcomes: &mut Vec<Outcome>,
) {
    let suite = match scenario::parse_suite(path, &text) {
        Ok(suite) => suite,
        Err(diagnostics) => {
            outcomes.push(Outcome {
                path: path.to_path_buf(),
                kind: FileKind::Suite,
                text,
                result: Err(diagnostics),
            });
            return;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let tree = Node::parse(&text).ok();
    let locate = |at: TreePath| {
        tree.as_ref()
            .map_or(Position::START, |t| t.locate_value(&at))
    };
    let mut problems = Vec::new();

    // The suite's own profile, unless --cluster overrides it.
    let mut suite_profile = None;
    if cli_profile.is_none()
        && let Some(relative) = &suite.cluster
    {
        let profile_path = base.join(relative);
        match scenario::load_profile(&profile_path) {
            Ok(loaded) => suite_profile = Some(loaded.value),
            Err(LoadError::Read { .. }) => problems.push(
                Diagnostic::new(
                    path,
                    locate(TreePath::of(&["cluster"])),
                    format!(
                        "cluster profile `{}` does not exist",
                        profile_path.display()
                    ),
                )
                .with_hint("the path is relative to the suite file"),
            ),
            Err(LoadError::Invalid {
                path,
                text,
                diagnostics,
            }) => outcomes.push(Outcome {
                path,
                kind: FileKind::Profile,
                text,
                result: Err(diagnostics),
            }),
        }
    }
    let profile = cli_profile.or(suite_profile.as_ref());

    let mut scenario_outcomes = Vec::new();
    for (index, relative) in suite.scenarios.iter().enumerate() {
        let scenario_path = base.join(relative);
        match scenario::read(&scenario_path) {
            Ok(scenario_text) => {
                scenario_outcomes.push(scenario_outcome(&scenario_path, scenario_text, profile))
            }
            Err(_) => problems.push(
                Diagnostic::new(
                    path,
                    locate(TreePath::of(&["scenarios"]).index(index)),
                    format!("scenario file `{}` does not exist", scenario_path.display()),
                )
                .with_hint("paths in `scenarios` are relative to the suite file"),
            ),
        }
    }
    let result = if problems.is_empty() {
        Ok(format!(
            "suite `{}` ({} scenarios)",
            suite.name,
            suite.scenarios.len()
        ))
    } else {
        Err(Diagnostics(problems).into_sorted())
    };
    outcomes.push(Outcome {
        path: path.to_path_buf(),
        kind: FileKind::Suite,
        text,
        result,
    });
    outcomes.extend(scenario_outcomes);
}
