//! Structural validation: walks a spanned YAML tree against the JSON Schema
//! that schemars derives from our types, and reports every mismatch (unknown
//! key, wrong type, bad value, missing field) where it is written, with a
//! "did you mean" where one is close. Covers the subset of JSON Schema that
//! schemars emits; the schema stays the one source of truth for editors,
//! `hpchaos schema` and this checker alike.

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::diagnostic::{Diagnostic, Position};
use super::yaml_tree::{Entry, Node, TreePath, Value};
use crate::duration::{self, DurationError};

/// Checks `tree` against `schema`; returns every problem found.
pub fn check(file: &Path, tree: &Node, schema: &Json) -> Vec<Diagnostic> {
    let checker = Checker { file, root: schema };
    let mut found = Vec::new();
    checker.node(
        tree,
        schema,
        &TreePath::default(),
        Position::START,
        &mut found,
    );
    found
}

struct Checker<'a> {
    file: &'a Path,
    root: &'a Json,
}

/// A schema after following `$ref`s, with the name of the last definition.
struct Resolved<'a> {
    name: Option<&'a str>,
    schema: &'a Json,
}

impl<'a> Checker<'a> {
    fn resolve(&self, mut schema: &'a Json) -> Resolved<'a> {
        let mut name = None;
        // Bounded: schemars never emits reference cycles without structure
        // in between, and 32 hops is far beyond any real chain.
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some(def) = reference.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|defs| defs.get(def)) {
                Some(target) => {
                    name = Some(def);
                    schema = target;
                }
                None => break,
            }
        }
        Resolved { name, schema }
    }

    fn error(&self, at: Position, message: String) -> Diagnostic {
        Diagnostic::new(self.file, at, message)
    }

    /// `anchor` is where the node is introduced (its key), used for
    /// "missing field" errors on mappings.
    fn node(
        &self,
        node: &Node,
        schema: &'a Json,
        path: &TreePath,
        anchor: Position,
        out: &mut Vec<Diagnostic>,
    ) {
        let Resolved { name, schema } = self.resolve(schema);
        if name == Some(duration::SCHEMA_NAME) {
            return self.duration(node, path, out);
        }
        if name == Some(crate::scenario::model::PERCENT_SCHEMA_NAME) {
            return self.percent(node, path, out);
        }
        if let Some(branches) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
        {
            return self.alternatives(node, branches, path, anchor, out);
        }
        if let Some(parts) = schema.get("allOf").and_then(Json::as_array) {
            for part in parts {
                self.node(node, part, path, anchor, out);
            }
        }
        if !type_matches(schema, node) {
            let expected = expected_kinds(schema).join(" or ");
            let mut diagnostic = self.error(
                node.position,
                format!("`{path}` must be {expected}, found {}", describe(node)),
            );
            if let Some(hint) = type_hint(schema, node) {
                diagnostic = diagnostic.with_hint(hint);
            }
            out.push(diagnostic);
            return;
        }
        if let Some(options) = schema.get("enum").and_then(Json::as_array) {
            self.one_of_values(node, options, path, out);
        }
        if let Some(constant) = schema.get("const") {
            self.one_of_values(node, std::slice::from_ref(constant), path, out);
        }
        match &node.value {
            Value::Mapping(_) => self.mapping(node, schema, path, anchor, out),
            Value::Sequence(items) => {
                if let Some(min) = schema.get("minItems").and_then(Json::as_u64)
                    && (items.len() as u64) < min
                {
                    out.push(self.error(
                        node.position,
                        format!("`{path}` needs at least {min} item(s)"),
                    ));
                }
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.node(item, item_schema, &path.index(index), item.position, out);
                    }
                }
            }
            Value::Integer(number) => self.range(node, *number as f64, schema, path, out),
            Value::Float(number) => self.range(node, *number, schema, path, out),
            Value::String(text) => self.string(node, text, schema, path, out),
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn duration(&self, node: &Node, path: &TreePath, out: &mut Vec<Diagnostic>) {
        match &node.value {
            Value::String(text) => {
                if let Err(err) = text.parse::<duration::Duration>() {
                    out.push(
                        self.error(node.position, format!("`{path}`: {err}"))
                            .with_hint(DurationError::HINT),
                    );
                }
            }
            Value::Integer(number) => out.push(
                self.error(
                    node.position,
                    format!("`{path}` is the bare number {number}; a duration needs a unit"),
                )
                .with_hint(format!(
                    "write `{number}s` for seconds or `{number}m` for minutes"
                )),
            ),
            _ => out.push(
                self.error(
                    node.position,
                    format!("`{path}` must be a duration, found {}", describe(node)),
                )
                .with_hint(DurationError::HINT),
            ),
        }
    }

    /// A percentage (`25%`): the parser's own message, and for a bare
    /// number the `%` it lacks.
    fn percent(&self, node: &Node, path: &TreePath, out: &mut Vec<Diagnostic>) {
        let hint = "write a percentage, such as `25%`";
        match &node.value {
            Value::String(text) => {
                if let Err(err) = crate::scenario::model::Percent::try_from(text.clone()) {
                    out.push(
                        self.error(node.position, format!("`{path}`: {err}"))
                            .with_hint(hint),
                    );
                }
            }
            Value::Integer(_) | Value::Float(_) => out.push(
                self.error(
                    node.position,
                    format!("`{path}` is a bare number; a percentage needs its `%`"),
                )
                .with_hint(hint),
            ),
            _ => out.push(
                self.error(
                    node.position,
                    format!("`{path}` must be a percentage, found {}", describe(node)),
                )
                .with_hint(hint),
            ),
        }
    }

    fn mapping(
        &self,
        node: &Node,
        schema: &'a Json,
        path: &TreePath,
        anchor: Position,
        out: &mut Vec<Diagnostic>,
    ) {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or(&empty);
        let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
        let known: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut misspelt = Vec::new();
        for entry in node.entries() {
            let child_path = path.key(&entry.key);
            if let Some(child_schema) = properties.get(&entry.key) {
                self.node(
                    &entry.value,
                    child_schema,
                    &child_path,
                    entry.key_position,
                    out,
                );
            } else if closed {
                misspelt.extend(did_you_mean(&entry.key, &known));
                out.push(self.unknown_key(&entry.key, entry.key_position, path, properties));
            } else if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object())
            {
                self.node(&entry.value, extra, &child_path, entry.key_position, out);
            }
        }
        for required in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key) = required.as_str() else {
                continue;
            };
            // A misspelt key already got a "did you mean" for this one.
            if node.entry(key).is_none() && !misspelt.contains(&key) {
                let whose = if path.0.is_empty() {
                    "the file".to_owned()
                } else {
                    format!("`{path}`")
                };
                let mut diagnostic = self.error(
                    anchor,
                    format!("{whose} is missing the required key `{key}`"),
                );
                if let Some(about) = properties.get(key).and_then(|p| self.describe_property(p)) {
                    diagnostic = diagnostic.with_hint(format!("add `{key}:` ({about})"));
                }
                out.push(diagnostic);
            }
        }
    }

    fn describe_property(&self, property: &'a Json) -> Option<String> {
        let own = property.get("description").and_then(Json::as_str);
        let resolved = self.resolve(property).schema;
        let text = own.or_else(|| resolved.get("description").and_then(Json::as_str))?;
        let first = text.split(['\n', '.']).next().unwrap_or(text).trim();
        Some(lowercase_first(first))
    }

    fn unknown_key(
        &self,
        key: &str,
        at: Position,
        path: &TreePath,
        properties: &Map<String, Json>,
    ) -> Diagnostic {
        let where_ = if path.0.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in `{path}`")
        };
        let diagnostic = self.error(at, format!("unknown key `{key}` {where_}"));
        let known: Vec<&str> = properties.keys().map(String::as_str).collect();
        match did_you_mean(key, &known) {
            Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
            None => diagnostic.with_hint(format!("expected one of: {}", quote_all(&known))),
        }
    }

    fn one_of_values(
        &self,
        node: &Node,
        options: &[Json],
        path: &TreePath,
        out: &mut Vec<Diagnostic>,
    ) {
        let value = node.to_json();
        if options.contains(&value) {
            return;
        }
        let words: Vec<&str> = options.iter().filter_map(Json::as_str).collect();
        out.push(self.bad_word(node, path, &words));
    }

    fn bad_word(&self, node: &Node, path: &TreePath, words: &[&str]) -> Diagnostic {
        let shown = node
            .as_str()
            .map_or_else(|| describe(node), |s| format!("`{s}`"));
        let diagnostic = self.error(node.position, format!("`{path}` cannot be {shown}"));
        match node.as_str().and_then(|s| did_you_mean(s, words)) {
            Some(close) => diagnostic.with_hint(format!(
                "did you mean `{close}`? (expected one of: {})",
                quote_all(words)
            )),
            None => diagnostic.with_hint(format!("expected one of: {}", quote_all(words))),
        }
    }

    fn range(
        &self,
        node: &Node,
        number: f64,
        schema: &Json,
        path: &TreePath,
        out: &mut Vec<Diagnostic>,
    ) {
        let min = schema.get("minimum").and_then(Json::as_f64);
        let max = schema.get("maximum").and_then(Json::as_f64);
        let below = min.is_some_and(|m| number < m);
        let above = max.is_some_and(|m| number > m);
        if below || above {
            let bounds = match (min, max) {
                (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => unreachable!("a bound was crossed, so one exists"),
            };
            out.push(self.error(
                node.position,
                format!("`{path}` must be {bounds}, found {number}"),
            ));
        }
    }

    fn string(
        &self,
        node: &Node,
        text: &str,
        schema: &Json,
        path: &TreePath,
        out: &mut Vec<Diagnostic>,
    ) {
        if let Some(min) = schema.get("minLength").and_then(Json::as_u64)
            && (text.chars().count() as u64) < min
        {
            out.push(self.error(node.position, format!("`{path}` must not be empty")));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Json::as_str)
            && let Ok(regex) = regex::Regex::new(pattern)
            && !regex.is_match(text)
        {
            out.push(
                self.error(
                    node.position,
                    format!("`{path}` has an invalid value `{text}`"),
                )
                .with_hint(format!("it must match the pattern {pattern}")),
            );
        }
    }

    /// `oneOf` / `anyOf`: fine if any branch fits; otherwise explain against
    /// the branch the author most plausibly meant.
    fn alternatives(
        &self,
        node: &Node,
        branches: &'a [Json],
        path: &TreePath,
        anchor: Position,
        out: &mut Vec<Diagnostic>,
    ) {
        // `Option<T>` is `anyOf: [T, null]`: a value that is present is
        // judged against T alone, so T's own messages come through.
        if !matches!(node.value, Value::Null) {
            let present: Vec<&Json> = branches
                .iter()
                .filter(|b| types_of(b) != ["null"])
                .collect();
            if let [only] = present.as_slice()
                && present.len() < branches.len()
            {
                return self.node(node, only, path, anchor, out);
            }
        }
        let Some(attempts) = self.attempts(node, branches, path, anchor) else {
            return;
        };
        let options = BranchOptions::of(&attempts);
        let explained = match &node.value {
            Value::String(_) if !options.words.is_empty() => {
                out.push(self.word_mismatch(node, path, &options));
                true
            }
            Value::Mapping(entries) if !options.tags.is_empty() => {
                self.tagged_mapping(node, entries, path, &attempts, &options, out)
            }
            _ => false,
        };
        if !explained {
            self.closest_branch(node, path, &attempts, &options.choices, out);
        }
    }

    /// What each branch of a `oneOf` / `anyOf` finds wrong with `node`,
    /// with the branch's schema (its `$ref`s followed); `None` when some
    /// branch fits.
    fn attempts(
        &self,
        node: &Node,
        branches: &'a [Json],
        path: &TreePath,
        anchor: Position,
    ) -> Option<Vec<(&'a Json, Vec<Diagnostic>)>> {
        let mut attempts = Vec::with_capacity(branches.len());
        for branch in branches {
            let mut found = Vec::new();
            self.node(node, branch, path, anchor, &mut found);
            if found.is_empty() {
                return None;
            }
            attempts.push((self.resolve(branch).schema, found));
        }
        Some(attempts)
    }

    /// A string that is none of the branches' words: the closest word,
    /// and the variant tags a mapping could have used instead.
    fn word_mismatch(
        &self,
        node: &Node,
        path: &TreePath,
        options: &BranchOptions<'_>,
    ) -> Diagnostic {
        let mut diagnostic = self.bad_word(node, path, &options.words);
        if !options.tags.is_empty() {
            diagnostic.hint = Some(format!(
                "{}; or a mapping with one of: {}",
                diagnostic.hint.unwrap_or_default(),
                quote_all(&options.tags)
            ));
        }
        diagnostic
    }

    /// A mapping against externally tagged variants: the chosen variant's
    /// own problems, or an unknown, missing or extra kind. `false` when
    /// nothing was said (left to `closest_branch`).
    fn tagged_mapping(
        &self,
        node: &Node,
        entries: &[Entry],
        path: &TreePath,
        attempts: &[(&'a Json, Vec<Diagnostic>)],
        options: &BranchOptions<'_>,
        out: &mut Vec<Diagnostic>,
    ) -> bool {
        let tagged: Vec<_> = entries
            .iter()
            .filter(|e| options.tags.contains(&e.key.as_str()))
            .collect();
        match (entries.len(), tagged.len()) {
            (1, 1) => {
                let chosen = attempts
                    .iter()
                    .find(|(schema, _)| variant_tag(schema) == Some(tagged[0].key.as_str()));
                if let Some((_, found)) = chosen {
                    out.extend(found.iter().cloned());
                    return true;
                }
                false
            }
            (1, 0) if options.words.contains(&entries[0].key.as_str()) => {
                // A kind that takes no settings, written as a mapping
                // (`effect: { partition: true }`).
                let entry = &entries[0];
                out.push(
                    self.error(
                        entry.key_position,
                        format!("`{}` takes no settings", entry.key),
                    )
                    .with_hint(format!(
                        "write the word alone: `{}: {}`",
                        path.to_string().rsplit('.').next().unwrap_or_default(),
                        entry.key
                    )),
                );
                true
            }
            (1, 0) => {
                let entry = &entries[0];
                let diagnostic = self.error(
                    entry.key_position,
                    format!("unknown kind `{}` for `{path}`", entry.key),
                );
                out.push(match did_you_mean(&entry.key, &options.choices) {
                    Some(close) => diagnostic.with_hint(format!(
                        "did you mean `{close}`? (expected one of: {})",
                        quote_all(&options.choices)
                    )),
                    None => diagnostic
                        .with_hint(format!("expected one of: {}", quote_all(&options.choices))),
                });
                true
            }
            (0, _) => {
                out.push(
                    self.error(node.position, format!("`{path}` is empty"))
                        .with_hint(format!(
                            "give exactly one of: {}",
                            quote_all(&options.choices)
                        )),
                );
                true
            }
            (_, 1) => {
                // One kind chosen, and keys beside it that are none: most
                // likely settings of the kind written one level too high.
                let chosen = tagged[0].key.as_str();
                for entry in entries.iter().filter(|e| e.key != chosen) {
                    out.push(
                        self.error(
                            entry.key_position,
                            format!(
                                "`{}` is not a kind of `{path}`, which takes exactly one of {} (here `{chosen}`)",
                                entry.key,
                                quote_all(&options.choices)
                            ),
                        )
                        .with_hint(format!(
                            "move it under `{chosen}` if it is one of its settings (indent it further), or remove it"
                        )),
                    );
                }
                true
            }
            _ => {
                let second = entries.get(1).map_or(node.position, |e| e.key_position);
                out.push(
                    self.error(
                        second,
                        format!(
                            "`{path}` takes exactly one of {}, found {}",
                            quote_all(&options.choices),
                            entries.len()
                        ),
                    )
                    .with_hint("keep one and remove the others"),
                );
                true
            }
        }
    }

    /// Explains against the branch whose type fits with the fewest
    /// problems; when no branch's type fits, the kinds they expect.
    fn closest_branch(
        &self,
        node: &Node,
        path: &TreePath,
        attempts: &[(&'a Json, Vec<Diagnostic>)],
        choices: &[&str],
        out: &mut Vec<Diagnostic>,
    ) {
        let fitting: Vec<_> = attempts
            .iter()
            .filter(|(schema, _)| type_matches(schema, node))
            .collect();
        match fitting.iter().min_by_key(|(_, found)| found.len()) {
            Some((_, found)) => out.extend(found.iter().cloned()),
            None => {
                let mut expected: Vec<&str> = attempts
                    .iter()
                    .flat_map(|(schema, _)| expected_kinds(schema))
                    .collect();
                expected.dedup();
                let mut diagnostic = self.error(
                    node.position,
                    format!(
                        "`{path}` must be {}, found {}",
                        expected.join(" or "),
                        describe(node)
                    ),
                );
                if !choices.is_empty() {
                    diagnostic =
                        diagnostic.with_hint(format!("expected one of: {}", quote_all(choices)));
                }
                out.push(diagnostic);
            }
        }
    }
}

/// What the branches of a `oneOf` / `anyOf` that did not fit accept, for
/// the messages: plain words (`enum` / `const`), variant tags, and both.
struct BranchOptions<'w> {
    words: Vec<&'w str>,
    tags: Vec<&'w str>,
    choices: Vec<&'w str>,
}

impl<'w> BranchOptions<'w> {
    /// The words, then the tags, of `attempts`' branches, in branch order.
    fn of(attempts: &'w [(&Json, Vec<Diagnostic>)]) -> BranchOptions<'w> {
        let words: Vec<&str> = attempts
            .iter()
            .flat_map(|(schema, _)| string_options(schema))
            .collect();
        let tags: Vec<&str> = attempts
            .iter()
            .filter_map(|(schema, _)| variant_tag(schema))
            .collect();
        let mut choices = words.clone();
        choices.extend(tags.iter().copied());
        BranchOptions {
            words,
            tags,
            choices,
        }
    }
}

/// The words a branch accepts as a plain string (`enum` / `const`).
fn string_options(schema: &Json) -> Vec<&str> {
    let from_enum = schema
        .get("enum")
        .and_then(Json::as_array)
        .into_iter()
        .flatten();
    let from_const = schema.get("const").into_iter();
    from_enum
        .chain(from_const)
        .filter_map(Json::as_str)
        .collect()
}

/// For an externally tagged enum variant `{ tag: ... }`: its tag.
fn variant_tag(schema: &Json) -> Option<&str> {
    let required = schema.get("required")?.as_array()?;
    let properties = schema.get("properties")?.as_object()?;
    match (required.as_slice(), properties.len()) {
        ([only], 1) => only.as_str(),
        _ => None,
    }
}

fn types_of(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(one)) => vec![one.as_str()],
        Some(Json::Array(many)) => many.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(schema: &Json, node: &Node) -> bool {
    let types = types_of(schema);
    types.is_empty()
        || types.iter().any(|t| match (*t, &node.value) {
            ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("integer", Value::Integer(_))
            | ("number", Value::Integer(_) | Value::Float(_))
            | ("string", Value::String(_))
            | ("array", Value::Sequence(_))
            | ("object", Value::Mapping(_)) => true,
            ("number", _) | ("integer", _) => false,
            _ => false,
        })
}

fn expected_kinds(schema: &Json) -> Vec<&'static str> {
    types_of(schema)
        .into_iter()
        .map(|t| match t {
            "null" => "empty",
            "boolean" => "true or false",
            "integer" => "a whole number",
            "number" => "a number",
            "string" => "a string",
            "array" => "a list",
            "object" => "a mapping",
            _ => "a value",
        })
        .collect()
}

fn type_hint(schema: &Json, node: &Node) -> Option<String> {
    let types = types_of(schema);
    match &node.value {
        Value::Null if types.contains(&"object") => {
            Some("indent the keys that belong under it, or remove it".to_owned())
        }
        Value::String(text) if types.contains(&"integer") && text.trim().parse::<i64>().is_ok() => {
            Some(format!("remove the quotes: {}", text.trim()))
        }
        Value::String(_) | Value::Integer(_) | Value::Float(_) | Value::Bool(_)
            if types.contains(&"array") =>
        {
            Some("write a list, e.g. `[a, b]` or one `- item` per line".to_owned())
        }
        Value::Integer(_) | Value::Float(_) | Value::Bool(_) if types.contains(&"string") => {
            Some("quote it to make it a string".to_owned())
        }
        _ => None,
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::String(s) => format!("the string `{s}`"),
        Value::Integer(i) => format!("the number {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Bool(b) => format!("`{b}`"),
        _ => node.kind().to_owned(),
    }
}

fn quote_all(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The closest known word, if it is close enough to be a likely typo.
pub fn did_you_mean<'w>(typed: &str, known: &[&'w str]) -> Option<&'w str> {
    let typed_lower = typed.to_lowercase();
    known
        .iter()
        .map(|word| {
            (
                *word,
                strsim::jaro_winkler(&typed_lower, &word.to_lowercase()),
            )
        })
        .filter(|(_, score)| *score >= 0.82)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(word, _)| word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let known = ["deadlines", "recovery", "total"];
        assert_eq!(did_you_mean("deadlin", &known), Some("deadlines"));
        assert_eq!(did_you_mean("recovry", &known), Some("recovery"));
        assert_eq!(did_you_mean("banana", &known), None);
    }
}
