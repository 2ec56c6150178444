//! `hpchaos report`: a run journal rendered as a table, markdown, JSON,
//! JUnit or Prometheus text; with --check, the run's exit code.

use std::path::PathBuf;

use crate::exit;
use hpchaos::journal::Journal;
use hpchaos::report::{self, Format};

use super::{CliError, Outcome};

/// `hpchaos report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The journal (`journal.jsonl`) a run wrote.
    journal: PathBuf,
    #[arg(short, long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit with the run's status instead of 0.
    #[arg(long)]
    check: bool,
}

pub fn exec(args: Args) -> Outcome {
    let path = &args.journal;
    let journal = Journal::load(path).map_err(CliError::bad_input)?;
    if journal.records.is_empty() {
        return Err(CliError::bad_input(format!(
            "{} holds no journal records; is it a journal.jsonl written by `hpchaos run`?",
            path.display()
        )));
    }
    for (line, problem) in &journal.damaged {
        eprintln!(
            "warning: {}:{line}: unreadable journal line: {problem}",
            path.display()
        );
    }
    let report = report::build(&journal);
    super::write_out(
        args.output.as_deref(),
        &args.format.exporter().render(&report),
    )?;
    Ok(if args.check {
        exit::of_report(&report)
    } else {
        exit::SUCCESS
    })
}
