//! `hpchaos validate`: scenario, suite and profile files checked, every
//! problem said with its file, line and column (and, with a profile, what
//! depends on the cluster).

use std::path::{Path, PathBuf};

use crate::exit;
use hpchaos::scenario::{self, LoadError};
use hpchaos::validate;

use super::Outcome;

/// `hpchaos validate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to check; the kind is told from the content.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Cluster profile: also checks what depends on the cluster, such
    /// as SageMaker settings for API faults and controller node names.
    #[arg(long, value_name = "PROFILE")]
    cluster: Option<PathBuf>,
    /// One line per problem, without source excerpts (for editors).
    #[arg(long)]
    short: bool,
}

pub fn exec(args: Args) -> Outcome {
    Ok(run_validate(
        &args.files,
        args.cluster.as_deref(),
        args.short,
    ))
}

fn run_validate(files: &[std::path::PathBuf], cluster: Option<&Path>, short: bool) -> u8 {
    let profile = match cluster.map(scenario::load_profile) {
        None => None,
        Some(Ok(loaded)) => {
            // The files the profile names, and the head's key, offline.
            let problems = hpchaos::preflight::offline(&loaded.path, &loaded.text, &loaded.value);
            if !problems.is_empty() {
                for problem in &problems {
                    if short {
                        eprintln!("{}", problem.short());
                    } else {
                        eprintln!("{}", problem.render(&loaded.text));
                    }
                }
                outln!(
                    "invalid {} ({} problem(s))",
                    loaded.path.display(),
                    problems.len()
                );
                return exit::INVALID_INPUT;
            }
            Some(loaded.value)
        }
        Some(Err(err)) => {
            print_load_error(&err, short);
            return exit::INVALID_INPUT;
        }
    };
    let outcomes = validate::validate(files, profile.as_ref());
    let mut problems = 0;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(what) => outln!("ok      {} ({what})", outcome.path.display()),
            Err(diagnostics) => {
                problems += diagnostics.len();
                outln!(
                    "invalid {} ({} problem(s))",
                    outcome.path.display(),
                    diagnostics.len()
                );
                for diagnostic in diagnostics.iter() {
                    if short {
                        eprintln!("{}", diagnostic.short());
                    } else {
                        eprintln!("{}", diagnostic.render(&outcome.text));
                    }
                }
            }
        }
    }
    let invalid = outcomes.iter().filter(|o| !o.is_valid()).count();
    outln!(
        "{} file(s) valid, {invalid} invalid, {problems} problem(s)",
        outcomes.len() - invalid
    );
    if invalid == 0 {
        exit::SUCCESS
    } else {
        exit::INVALID_INPUT
    }
}

fn print_load_error(err: &LoadError, short: bool) {
    match err {
        LoadError::Invalid {
            text, diagnostics, ..
        } => {
            for diagnostic in diagnostics.iter() {
                if short {
                    eprintln!("{}", diagnostic.short());
                } else {
                    eprintln!("{}", diagnostic.render(text));
                }
            }
        }
        LoadError::Read { .. } => eprintln!("error: {err}"),
    }
}
