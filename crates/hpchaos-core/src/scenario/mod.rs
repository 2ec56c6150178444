//! The scenario language: its model, the JSON Schema, and loading a file
//! through three gates (YAML syntax, structure against the schema, then
//! semantic rules), each reporting every problem it finds with a position.

pub mod diagnostic;
pub mod frameworks;
pub mod model;
pub mod promql;
pub mod schema;
mod schema_check;
mod semantic;
pub mod suite;
pub mod yaml_tree;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use diagnostic::{Diagnostic, Diagnostics, Position};
pub use model::Scenario;
use schema::SchemaKind;
pub use suite::Suite;
use yaml_tree::Node;

use crate::profile::Profile;

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {} problem(s)", path.display(), diagnostics.len())]
    Invalid {
        path: PathBuf,
        /// The file's text, for rendering the diagnostics with context.
        text: String,
        diagnostics: Diagnostics,
    },
}

/// A validated file together with its text (kept for reports).
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub path: PathBuf,
    pub text: String,
    pub value: T,
}

/// What a YAML file is, told from its top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Scenario,
    Suite,
    Profile,
}

impl FileKind {
    /// Suites list `scenarios:`, profiles have a `head_node:`; anything
    /// else is read as a scenario (and validated as one).
    pub fn detect(text: &str) -> FileKind {
        match Node::parse(text) {
            Ok(tree) if tree.entry("scenarios").is_some() => FileKind::Suite,
            Ok(tree) if tree.entry("head_node").is_some() => FileKind::Profile,
            _ => FileKind::Scenario,
        }
    }
}

pub fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses and checks a scenario's text. `profile`, when given, enables the
/// checks that depend on the cluster (SageMaker settings, controller names).
pub fn parse_scenario(
    path: &Path,
    text: &str,
    profile: Option<&Profile>,
) -> Result<Scenario, Diagnostics> {
    let (scenario, tree) = parse_typed::<Scenario>(path, text, SchemaKind::Scenario)?;
    let problems = semantic::check(path, &tree, &scenario, profile);
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(Diagnostics(problems).into_sorted())
    }
}

pub fn parse_suite(path: &Path, text: &str) -> Result<Suite, Diagnostics> {
    parse_typed::<Suite>(path, text, SchemaKind::Suite).map(|(suite, _)| suite)
}

pub fn parse_profile(path: &Path, text: &str) -> Result<Profile, Diagnostics> {
    let (mut profile, tree) = parse_typed::<Profile>(path, text, SchemaKind::Profile)?;
    // The head node's connection from the user's OpenSSH config, if named.
    if let Err(problem) = crate::cluster::ssh_config::apply(&mut profile) {
        let at = yaml_tree::TreePath::of(&["ssh", "config"]);
        return Err(Diagnostics(vec![
            Diagnostic::new(path, tree.locate_value(&at), problem.to_string()).with_hint(
                "point ssh.config at your OpenSSH client config and ssh.config_host at the head node's Host entry",
            ),
        ]));
    }
    // A proxy command OpenSSH would refuse is refused here, before a run.
    if let Some(command) = &profile.ssh.proxy_command
        && let Err(problem) = crate::cluster::ssh::check_proxy_command(command)
    {
        let given = profile.ssh.config.is_some()
            && tree
                .get(&yaml_tree::TreePath::of(&["ssh", "proxy_command"]))
                .is_none();
        let key: &[&str] = if given {
            &["ssh", "config"]
        } else {
            &["ssh", "proxy_command"]
        };
        return Err(Diagnostics(vec![
            Diagnostic::new(path, tree.locate_value(&yaml_tree::TreePath::of(key)), problem.to_string())
                .with_hint("write the command OpenSSH's ProxyCommand would run; tokens: %h (address), %p (port), %r (user), %n (name), %% (a %)"),
        ]));
    }
    let problems: Vec<Diagnostic> = crate::profile::invalid_host_names(&profile)
        .into_iter()
        .map(|(keys, name)| {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let at = yaml_tree::TreePath::of(&keys);
            Diagnostic::new(
                path,
                tree.locate_value(&at),
                format!("`{name}` is not a host name"),
            )
            .with_hint("use letters, digits, `-`, `_` and `.` only (HyperPod names nodes like ip-10-1-0-11)")
        })
        .collect();
    if problems.is_empty() {
        Ok(profile)
    } else {
        Err(Diagnostics(problems).into_sorted())
    }
}

pub fn load_profile(path: &Path) -> Result<Loaded<Profile>, LoadError> {
    let text = read(path)?;
    finish(path, text, parse_profile)
}

/// Reads and checks a scenario file, against `profile` when given (see
/// [`parse_scenario`]).
pub fn load_scenario(
    path: &Path,
    profile: Option<&Profile>,
) -> Result<Loaded<Scenario>, LoadError> {
    let text = read(path)?;
    finish(path, text, |path, text| parse_scenario(path, text, profile))
}

fn finish<T>(
    path: &Path,
    text: String,
    parse: impl FnOnce(&Path, &str) -> Result<T, Diagnostics>,
) -> Result<Loaded<T>, LoadError> {
    match parse(path, &text) {
        Ok(value) => Ok(Loaded {
            path: path.to_path_buf(),
            text,
            value,
        }),
        Err(diagnostics) => Err(LoadError::Invalid {
            path: path.to_path_buf(),
            text,
            diagnostics,
        }),
    }
}

/// YAML syntax, then structure; returns the typed value and its tree.
fn parse_typed<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    kind: SchemaKind,
) -> Result<(T, Node), Diagnostics> {
    let tree = Node::parse(text).map_err(|err| Diagnostics(vec![syntax_error(path, &err)]))?;
    let structural = schema_check::check(path, &tree, &schema::schema_of(kind));
    if !structural.is_empty() {
        return Err(Diagnostics(structural).into_sorted());
    }
    // The schema is derived from T, so a tree that passed it deserialises;
    // should the two ever disagree, say so rather than panic.
    serde_json::from_value::<T>(tree.to_json())
        .map(|value| (value, tree))
        .map_err(|err| {
            Diagnostics(vec![
                Diagnostic::new(path, Position::START, format!("{err}"))
                    .with_hint("this file passed the schema but not the loader: please report it as an hpchaos bug"),
            ])
        })
}

fn syntax_error(path: &Path, err: &serde_saphyr::Error) -> Diagnostic {
    let position = err.location().map_or(Position::START, |at| Position {
        line: at.line().max(1),
        column: at.column().max(1),
    });
    let text = err.without_snippet().to_string();
    let first_line = text.lines().next().unwrap_or("invalid YAML");
    // The parser appends the position, which our prefix already gives.
    let message = first_line.split(" at line ").next().unwrap_or(first_line);
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        return Diagnostic::new(
            path,
            position,
            format!("`{key}` is given twice in the same mapping"),
        )
        .with_hint("YAML keys must be unique: keep one and remove or merge the other");
    }
    let hint = if message.contains("tab") {
        "indent with spaces; YAML does not allow tabs for indentation"
    } else {
        "check the indentation and that every `key:` is followed by a space"
    };
    Diagnostic::new(path, position, format!("invalid YAML: {message}")).with_hint(hint)
}
