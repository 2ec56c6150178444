//! One problem found in an input file, pinned to a line and column, and how
//! it is printed: a `file:line:column: error: message` line that editors and
//! CI annotations parse, the source line with a caret, and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a text file, both 1-based; column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    /// The start of a file, for problems that belong to the whole file.
    pub const START: Position = Position { line: 1, column: 1 };
}

/// A problem in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    pub message: String,
    /// What to do about it, when we can tell.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:column: error: message`, the line editors and CI parse.
    fn header(&self) -> String {
        format!(
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.message
        )
    }

    /// The one-line form: `file:line:column: error: message (hint)`.
    pub fn short(&self) -> String {
        let mut line = self.header();
        if let Some(hint) = &self.hint {
            line.push_str(&format!(" (hint: {hint})"));
        }
        line
    }

    /// The full form, with the offending source line and a caret under the
    /// column, in the manner of rustc.
    pub fn render(&self, source: &str) -> String {
        let mut out = self.header();
        out.push('\n');
        let line_no = self.position.line;
        let index = usize::try_from(line_no.saturating_sub(1)).unwrap_or(usize::MAX);
        if let Some(text) = source.lines().nth(index) {
            let gutter = line_no.to_string().len();
            let pad = " ".repeat(gutter);
            let caret_at = usize::try_from(self.position.column.saturating_sub(1)).unwrap_or(0);
            let indent: String = text
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = token_width(text, caret_at);
            out.push_str(&format!(
                "{pad} |\n{line_no} | {text}\n{pad} | {indent}{}\n",
                "^".repeat(width)
            ));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("  = help: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// How many characters to underline: the YAML token starting at `start`.
fn token_width(line: &str, start: usize) -> usize {
    let token: String = line
        .chars()
        .skip(start)
        .take_while(|c| !c.is_whitespace() && *c != ':' && *c != ',' && *c != ']' && *c != '}')
        .collect();
    token.chars().count().max(1)
}

/// All problems found in one file, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Sorted by position, with exact repeats dropped (two checks may find
    /// the same fault from different angles).
    pub fn into_sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
        self.0.dedup();
        self
    }

    /// Every diagnostic in full form, against the file's text.
    pub fn render(&self, source: &str) -> String {
        self.0
            .iter()
            .map(|d| d.render(source))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_leads_with_file_line_column() {
        let diagnostic =
            Diagnostic::new(Path::new("a.yaml"), Position { line: 3, column: 5 }, "bad")
                .with_hint("fix it");
        assert_eq!(diagnostic.short(), "a.yaml:3:5: error: bad (hint: fix it)");
    }

    #[test]
    fn render_underlines_the_token() {
        let source = "name: x\nexpect:\n    deadlin: 60s\n";
        let diagnostic = Diagnostic::new(
            Path::new("a.yaml"),
            Position { line: 3, column: 5 },
            "unknown key",
        );
        let rendered = diagnostic.render(source);
        assert!(
            rendered.contains("3 |     deadlin: 60s\n  |     ^^^^^^^\n"),
            "{rendered}"
        );
    }
}
