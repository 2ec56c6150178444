//! JSON for dashboards and trend tools: the [`Report`](super::Report)
//! serialised as is. Its fields are the stable interface documented in the
//! README (section "JSON report"); `schema_version` changes when they break.

use super::{Exporter, Report};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn render(&self, report: &Report) -> String {
        // Serialising plain data with string keys cannot fail.
        let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
        text.push('\n');
        text
    }
}
