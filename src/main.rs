//! The `hpchaos` binary: parses the command line and hands it to its
//! command (`commands/`, one file each). A command returns its exit code
//! (the codes, and how outcomes map to them, are in `exit.rs`) or a
//! `CliError`; main prints that error on stderr and exits with its code.
//! Commands print their own output, warnings and diagnostics as they go
//! (`validate`'s problems, a report that could not be written), and a
//! third Ctrl-C exits from `commands/signals.rs`.

// The command is where hpchaos prints (the workspace denies it elsewhere).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod exit;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) if err.rendered => {
            eprintln!("{}", err.message);
            ExitCode::from(err.code)
        }
        Err(err) => {
            eprintln!("error: {}", err.message);
            ExitCode::from(err.code)
        }
    }
}
