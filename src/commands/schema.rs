//! `hpchaos schema`: the JSON Schema of a kind of file, for editors.

use std::path::PathBuf;

use hpchaos::scenario::schema::{self, SchemaKind};

use super::Outcome;

/// `hpchaos schema`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "scenario")]
    kind: SchemaKind,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn exec(args: Args) -> Outcome {
    super::write_out(args.output.as_deref(), &schema::schema_text(args.kind))
}
