//! AWS's own models of the operations the lab serves (subsets of
//! botocore's `sagemaker/service-2.json`, HyperPod's, and
//! `logs/service-2.json`, the CloudWatch Logs reads of HMA's record;
//! extracted by `scripts/botocore-hyperpod-model`), and one check of a JSON value
//! against a shape of it: types, required members, unknown members, enums,
//! patterns, lengths and ranges. The lab refuses requests that break the
//! model with AWS's `ValidationException` wording, and its tests check
//! every answer against the model.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// The model file: `{source, operations: {Op: {input, output, errors}},
/// shapes: {Name: botocore shape}}`.
const MODEL: &str = include_str!("botocore-sagemaker-hyperpod.json");
/// CloudWatch Logs' model, same shape.
const LOGS_MODEL: &str = include_str!("botocore-logs-hma.json");

/// The parsed model and its compiled patterns.
pub struct Model {
    pub source: String,
    operations: HashMap<String, Operation>,
    shapes: serde_json::Map<String, Value>,
    patterns: HashMap<String, fancy_regex::Regex>,
}

/// One operation's shapes.
#[derive(Debug, Clone)]
pub struct Operation {
    pub input: String,
    pub output: String,
    /// Error shapes the operation declares (`ResourceNotFound`, ...).
    pub errors: Vec<String>,
}

/// The model, parsed once. `None` only if the embedded file is broken,
/// which the unit tests rule out.
pub fn model() -> Option<&'static Model> {
    static MODEL_CELL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL_CELL.get_or_init(|| Model::parse(MODEL)).as_ref()
}

/// CloudWatch Logs' model, parsed once (`None` as for [`model`]).
pub fn logs_model() -> Option<&'static Model> {
    static MODEL_CELL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL_CELL.get_or_init(|| Model::parse(LOGS_MODEL)).as_ref()
}

impl Model {
    fn parse(text: &str) -> Option<Model> {
        let value: Value = serde_json::from_str(text).ok()?;
        let shapes = value["shapes"].as_object()?.clone();
        let operations = value["operations"]
            .as_object()?
            .iter()
            .map(|(name, op)| {
                let operation = Operation {
                    input: op["input"].as_str().unwrap_or_default().to_owned(),
                    output: op["output"].as_str().unwrap_or_default().to_owned(),
                    errors: op["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                };
                (name.clone(), operation)
            })
            .collect();
        let mut patterns = HashMap::new();
        for shape in shapes.values() {
            if let Some(pattern) = shape["pattern"].as_str() {
                // botocore's patterns match the whole value, and some use
                // look-around (`(?!\s*$)`), which `regex` lacks: fancy-regex.
                let compiled = fancy_regex::Regex::new(&format!("^(?:{pattern})$")).ok()?;
                patterns.insert(pattern.to_owned(), compiled);
            }
        }
        Some(Model {
            source: value["source"].as_str().unwrap_or_default().to_owned(),
            operations,
            shapes,
            patterns,
        })
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// Every way `value` breaks `shape`, each as AWS words a validation
    /// error: `Value 'x' at 'nodeIds.1.member' failed to satisfy
    /// constraint: Member must satisfy regular expression pattern: ...`.
    /// Empty when it conforms.
    pub fn check(&self, shape: &str, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        self.walk(shape, value, "", &mut problems);
        problems
    }

    fn walk(&self, name: &str, value: &Value, at: &str, out: &mut Vec<String>) {
        let Some(shape) = self.shapes.get(name) else {
            out.push(format!("shape {name} is not in the model"));
            return;
        };
        let shown = || match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let constraint = |what: String| {
            format!(
                "Value '{}' at '{at}' failed to satisfy constraint: Member must {what}",
                shown()
            )
        };
        match shape["type"].as_str().unwrap_or_default() {
            "structure" => {
                let Some(object) = value.as_object() else {
                    out.push(constraint("be a structure".into()));
                    return;
                };
                self.walk_structure(name, shape, object, at, out);
            }
            "list" => {
                let Some(items) = value.as_array() else {
                    out.push(constraint("be a list".into()));
                    return;
                };
                self.walk_list(shape, items, at, &constraint, out);
            }
            "map" => {
                let Some(object) = value.as_object() else {
                    out.push(constraint("be a map".into()));
                    return;
                };
                self.walk_map(shape, object, at, out);
            }
            "string" => {
                let Some(text) = value.as_str() else {
                    out.push(constraint("be a string".into()));
                    return;
                };
                self.walk_string(shape, text, &constraint, out);
            }
            "integer" | "long" => {
                let Some(number) = value.as_i64() else {
                    out.push(constraint("be an integer".into()));
                    return;
                };
                self.walk_integer(shape, number, &constraint, out);
            }
            "boolean" if !value.is_boolean() => out.push(constraint("be a boolean".into())),
            // awsJson1_1 sends timestamps as epoch seconds.
            "timestamp" if !value.is_number() => out.push(constraint("be epoch seconds".into())),
            "float" | "double" if !value.is_number() => out.push(constraint("be a number".into())),
            _ => {}
        }
    }

    /// Checks a structure (`shape`, named `name`) at `at`: its required
    /// members present, no member the shape lacks, and each member that is
    /// not null against its own shape. Problems go to `out`.
    fn walk_structure(
        &self,
        name: &str,
        shape: &Value,
        object: &serde_json::Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
    ) {
        let members = shape["members"].as_object();
        for required in shape["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap_or_default();
            if object.get(required).is_none_or(Value::is_null) {
                out.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    join(at, required)
                ));
            }
        }
        for (key, member) in object {
            match members.and_then(|m| m.get(key)) {
                Some(spec) => {
                    let member_shape = spec["shape"].as_str().unwrap_or_default();
                    if !member.is_null() {
                        self.walk(member_shape, member, &join(at, key), out);
                    }
                }
                None => out.push(format!("'{}' is not a member of {name}", join(at, key))),
            }
        }
    }

    /// Checks a list against its `shape` at `at`: its length, then each
    /// item against the member shape. Problems go to `out`.
    fn walk_list(
        &self,
        shape: &Value,
        items: &[Value],
        at: &str,
        constraint: &dyn Fn(String) -> String,
        out: &mut Vec<String>,
    ) {
        self.length(shape, items.len(), constraint, out);
        let member = shape["member"]["shape"].as_str().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            self.walk(member, item, &format!("{at}.{}.member", i + 1), out);
        }
    }

    /// Checks each key and value of a map against its `shape`'s key and
    /// value shapes. Problems go to `out`.
    fn walk_map(
        &self,
        shape: &Value,
        object: &serde_json::Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
    ) {
        let key_shape = shape["key"]["shape"].as_str().unwrap_or_default();
        let value_shape = shape["value"]["shape"].as_str().unwrap_or_default();
        for (k, v) in object {
            self.walk(
                key_shape,
                &Value::String(k.clone()),
                &format!("{at}.key"),
                out,
            );
            self.walk(value_shape, v, &format!("{at}.{k}"), out);
        }
    }

    /// Checks a string against its `shape`: enum values, length (in
    /// characters) and pattern. Problems go to `out`.
    fn walk_string(
        &self,
        shape: &Value,
        text: &str,
        constraint: &dyn Fn(String) -> String,
        out: &mut Vec<String>,
    ) {
        if let Some(allowed) = shape["enum"].as_array()
            && !allowed.iter().any(|a| a.as_str() == Some(text))
        {
            let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            out.push(constraint(format!(
                "satisfy enum value set: [{}]",
                names.join(", ")
            )));
        }
        self.length(shape, text.chars().count(), constraint, out);
        if let Some(pattern) = shape["pattern"].as_str()
            && self
                .patterns
                .get(pattern)
                .is_some_and(|re| !re.is_match(text).unwrap_or(false))
        {
            out.push(constraint(format!(
                "satisfy regular expression pattern: {pattern}"
            )));
        }
    }

    /// Checks an integer against its `shape`'s `min` and `max`. Problems go
    /// to `out`.
    fn walk_integer(
        &self,
        shape: &Value,
        number: i64,
        constraint: &dyn Fn(String) -> String,
        out: &mut Vec<String>,
    ) {
        if let Some(min) = shape["min"].as_i64()
            && number < min
        {
            out.push(constraint(format!(
                "have value greater than or equal to {min}"
            )));
        }
        if let Some(max) = shape["max"].as_i64()
            && number > max
        {
            out.push(constraint(format!(
                "have value less than or equal to {max}"
            )));
        }
    }

    fn length(
        &self,
        shape: &Value,
        len: usize,
        constraint: &dyn Fn(String) -> String,
        out: &mut Vec<String>,
    ) {
        if let Some(min) = shape["min"].as_u64()
            && (len as u64) < min
        {
            out.push(constraint(format!(
                "have length greater than or equal to {min}"
            )));
        }
        if let Some(max) = shape["max"].as_u64()
            && (len as u64) > max
        {
            out.push(constraint(format!(
                "have length less than or equal to {max}"
            )));
        }
    }
}

/// `nodeIds`: AWS names members in lowerCamelCase in its messages.
fn join(at: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    if at.is_empty() {
        camel
    } else {
        format!("{at}.{camel}")
    }
}

/// AWS's message for a request that breaks the model: `N validation
/// error(s) detected: A; B`.
pub fn validation_message(problems: &[String]) -> String {
    let count = problems.len();
    let noun = if count == 1 { "error" } else { "errors" };
    format!(
        "{count} validation {noun} detected: {}",
        problems.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_embedded_model_parses_and_serves_the_lab_operations() {
        let model = model().unwrap();
        assert!(model.source.starts_with("botocore "), "{}", model.source);
        for op in [
            "DescribeCluster",
            "ListClusterNodes",
            "DescribeClusterNode",
            "BatchRebootClusterNodes",
            "BatchReplaceClusterNodes",
            "UpdateCluster",
        ] {
            let op = model.operation(op).unwrap();
            assert!(op.errors.contains(&"ResourceNotFound".to_owned()));
        }
    }

    #[test]
    fn requests_that_break_the_model_are_named_as_aws_names_them() {
        let model = model().unwrap();
        let input = |op: &str| model.operation(op).unwrap().input.clone();
        assert_eq!(
            model.check(
                &input("DescribeClusterNode"),
                &json!({"ClusterName": "c", "NodeId": "i-123"})
            ),
            vec![
                "Value 'i-123' at 'nodeId' failed to satisfy constraint: Member must satisfy regular expression pattern: i-[a-f0-9]{8}(?:[a-f0-9]{9})?"
            ]
        );
        let bad_sort = model.check(
            &input("ListClusterNodes"),
            &json!({"ClusterName": "c", "SortBy": "LAUNCH_TIME", "MaxResults": 0}),
        );
        assert_eq!(bad_sort.len(), 2, "{bad_sort:?}");
        assert!(bad_sort[0].contains("'sortBy'") || bad_sort[1].contains("'sortBy'"));
        assert!(
            bad_sort
                .iter()
                .any(|p| p.contains("enum value set: [CREATION_TIME, NAME]"))
        );
        assert!(
            bad_sort
                .iter()
                .any(|p| p.contains("greater than or equal to 1"))
        );
        let list = model.check(
            &input("BatchRebootClusterNodes"),
            &json!({"ClusterName": "c", "NodeIds": ["i-0123456789abcdef0", "node-1"]}),
        );
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].contains("'nodeIds.2.member'"), "{list:?}");
        assert_eq!(
            model.check(&input("DescribeCluster"), &json!({})),
            vec![
                "Value null at 'clusterName' failed to satisfy constraint: Member must not be null"
            ]
        );
        assert!(
            model.check(
                &input("UpdateCluster"),
                &json!({"ClusterName": "c", "NodeRecovery": "Manual"})
            )[0]
            .contains("[Automatic, None]")
        );
        assert!(
            model
                .check(
                    &input("ListClusterNodes"),
                    &json!({"ClusterName": "c", "SortBy": "NAME", "SortOrder": "Ascending", "MaxResults": 100})
                )
                .is_empty()
        );
        assert_eq!(
            validation_message(&["a".into(), "b".into()]),
            "2 validation errors detected: a; b"
        );
    }

    #[test]
    fn answers_are_checked_member_by_member() {
        let model = model().unwrap();
        let output = model
            .operation("DescribeClusterNode")
            .unwrap()
            .output
            .clone();
        let problems = model.check(
            &output,
            &json!({"NodeDetails": {
                "InstanceId": "i-0123456789abcdef0",
                "InstanceStatus": {"Status": "Rebooting"},
                "Placement": {"AvailabilityZoneId": "lab-az1"},
                "LaunchTime": "yesterday",
                "Colour": "blue",
            }}),
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("nodeDetails.instanceStatus.status"))
        );
        assert!(problems.iter().any(|p| p.contains("'lab-az1'")));
        assert!(problems.iter().any(|p| p.contains("epoch seconds")));
        assert!(problems.iter().any(|p| p.contains("nodeDetails.colour")));
    }
}
