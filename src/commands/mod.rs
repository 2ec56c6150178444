//! The commands, one file each (after cargo's `commands/`): each command's
//! arguments are one struct (clap `Args`, what `cli.rs`'s `Command` holds)
//! and its `exec` returns the exit code or a [`CliError`], which `main`
//! prints in one place. What a command prints as it goes, it prints itself.

use std::io::Write;
use std::path::Path;

/// `println!` for a command's output: a reader that went away (`| head`)
/// ends it quietly, not with a panic (see `hpchaos::output`).
macro_rules! outln {
    ($($arg:tt)*) => { hpchaos::output::println(&format!($($arg)*)) };
}

/// `print!`, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { hpchaos::output::print(&format!($($arg)*)) };
}

use crate::exit;

use crate::cli::Command;

pub mod completions;
pub mod history;
pub mod init;
pub mod lab;
pub mod plan;
mod plan_file;
pub mod recover;
pub mod replay;
pub mod report;
pub mod run;
pub mod schema;
mod signals;
pub mod status;
pub mod stop;
pub mod trend;
pub mod validate;
mod work;

/// A command that ended in an error: the exit code (see `exit.rs`) and
/// what to say, printed once by `main`: as `error: MESSAGE`, or as it is
/// when it is already rendered (a scenario's diagnostics, with the lines
/// they point at).
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    /// `message` is whole as it is (no `error: ` before it).
    pub rendered: bool,
}

impl CliError {
    fn with(code: u8, message: impl std::fmt::Display, rendered: bool) -> CliError {
        CliError {
            code,
            message: message.to_string(),
            rendered,
        }
    }

    /// Invalid input (exit 2): a scenario, suite, profile, journal or
    /// argument.
    pub fn bad_input(message: impl std::fmt::Display) -> CliError {
        CliError::with(exit::INVALID_INPUT, message, false)
    }

    /// Invalid input already rendered in full (diagnostics that quote the
    /// file), exit 2.
    pub fn bad_input_rendered(text: impl std::fmt::Display) -> CliError {
        CliError::with(exit::INVALID_INPUT, text, true)
    }

    /// A file that could not be read or is not valid: its diagnostics
    /// rendered against its text, exit 2.
    pub fn invalid(err: &hpchaos::scenario::LoadError) -> CliError {
        match err {
            hpchaos::scenario::LoadError::Invalid {
                text, diagnostics, ..
            } => CliError::bad_input_rendered(diagnostics.render(text)),
            hpchaos::scenario::LoadError::Read { .. } => CliError::bad_input(err),
        }
    }

    /// A failure of the harness's own, or a cluster it could not ask
    /// (exit 3).
    pub fn failed(message: impl std::fmt::Display) -> CliError {
        CliError::with(exit::HARNESS_FAILED, message, false)
    }

    /// [`CliError::failed`], already rendered in full.
    pub fn failed_rendered(text: impl std::fmt::Display) -> CliError {
        CliError::with(exit::HARNESS_FAILED, text, true)
    }

    /// A scheduled run that skipped itself (exit 4): nothing was done.
    pub fn skipped(message: impl std::fmt::Display) -> CliError {
        CliError::with(exit::SKIPPED, message, true)
    }

    /// Refusals before any change, said in full, with the code of the
    /// worst of them (see [`exit::of_kind`]).
    pub fn refused(
        worst: hpchaos::preflight::RefusalKind,
        text: impl std::fmt::Display,
        rendered: bool,
    ) -> CliError {
        CliError::with(exit::of_kind(worst), text, rendered)
    }
}

/// The one async runtime a command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

/// A command's end: its exit code, or the error it ended with.
pub type Outcome = Result<u8, CliError>;

/// Runs the command.
pub fn dispatch(command: Command) -> Outcome {
    match command {
        Command::Validate(args) => validate::exec(args),
        Command::Schema(args) => schema::exec(args),
        Command::Report(args) => report::exec(args),
        Command::Run(args) => run::exec(args),
        Command::Replay(args) => replay::exec(args),
        Command::History(args) => history::exec(args),
        Command::Trend(args) => trend::exec(args),
        Command::Plan(args) => plan::exec(args),
        Command::Init(args) => init::exec(args),
        Command::Status(args) => status::exec(args),
        Command::Recover(args) => recover::exec(args),
        Command::Stop(args) => stop::exec(args),
        Command::Lab(args) => lab::exec(args),
        Command::Completions(args) => completions::exec(args),
    }
}

/// Writes `text` to `output`, or to standard output.
pub fn write_out(output: Option<&Path>, text: &str) -> Outcome {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|err| format!("cannot write {}: {err}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .map_err(|err| format!("cannot write to standard output: {err}"))
        }
    }
    .map(|()| exit::SUCCESS)
    .map_err(CliError::failed)
}
