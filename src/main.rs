//! The `hpchaos` binary: parses the command line and hands it to its
//! command (`commands/`, one file each); prints a command's error and maps
//! outcomes to the documented exit codes, in one place.

// The command is where hpchaos prints (the workspace denies it elsewhere).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;

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
