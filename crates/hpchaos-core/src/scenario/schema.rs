//! The JSON Schemas of the files users write (scenarios, suites, cluster
//! profiles), derived from the Rust types so that they cannot drift. The
//! committed copies under `schema/` are what editors load through the
//! `# yaml-language-server: $schema=` line; a test keeps them current.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::model::Scenario;
use super::suite::Suite;
use crate::profile::Profile;

/// Which kind of file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    Scenario,
    Suite,
    Profile,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 3] = [SchemaKind::Scenario, SchemaKind::Suite, SchemaKind::Profile];

    /// File name of the committed copy under `schema/`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Scenario => "scenario.schema.json",
            SchemaKind::Suite => "suite.schema.json",
            SchemaKind::Profile => "profile.schema.json",
        }
    }
}

/// The schema as a JSON value.
pub fn schema_of(kind: SchemaKind) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = match kind {
        SchemaKind::Scenario => generator.into_root_schema_for::<Scenario>(),
        SchemaKind::Suite => generator.into_root_schema_for::<Suite>(),
        SchemaKind::Profile => generator.into_root_schema_for::<Profile>(),
    };
    schema.to_value()
}

/// The schema as pretty JSON with a trailing newline, as committed.
pub fn schema_text(kind: SchemaKind) -> String {
    let mut text = serde_json::to_string_pretty(&schema_of(kind)).unwrap_or_default();
    text.push('\n');
    text
}
