//! `hpchaos completions`: a shell completion script.

use clap::CommandFactory;

use crate::exit;

use super::Outcome;

/// `hpchaos completions`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn exec(args: Args) -> Outcome {
    clap_complete::generate(
        args.shell,
        &mut crate::cli::Cli::command(),
        "hpchaos",
        &mut std::io::stdout(),
    );
    Ok(exit::SUCCESS)
}
