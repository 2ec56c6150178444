//! A YAML document as a tree whose every node and mapping key remembers its
//! line and column. The structural and semantic checks walk this tree so
//! they can report every problem in a file at once, each where it stands;
//! typed deserialisation only happens once the tree has passed.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::diagnostic::Position;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub position: Position,
    pub value: Value,
}

/// A mapping entry: the key, where the key is written, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_position: Position,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root, printed as `expect.deadlines.detect` or
/// `steady_state[1].probe`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreePath(pub Vec<Segment>);

impl TreePath {
    pub fn key(&self, key: &str) -> TreePath {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_owned()));
        next
    }

    pub fn index(&self, index: usize) -> TreePath {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// Builds a path from dotted keys; for paths written in code.
    pub fn of(keys: &[&str]) -> TreePath {
        TreePath(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Node {
    /// Parses one YAML document. Duplicate keys are an error, as YAML
    /// says, and only YAML 1.2 booleans are booleans: `on: targets` is a
    /// key named `on`, not `true`.
    pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
        let options = serde_saphyr::options! {
            strict_booleans: true,
            duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
        };
        let node: Option<Node> = serde_saphyr::from_str_with_options(text, options)?;
        Ok(node.unwrap_or(Node {
            position: Position::START,
            value: Value::Null,
        }))
    }

    /// A short human name for the kind of value, for "expected X, found Y".
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Integer(_) => "a whole number",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Mapping(entries) => entries,
            _ => &[],
        }
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Where the thing at `path` is written: the key for a mapping entry
    /// (that is where a reader looks), the item for a list element. Falls
    /// back to the deepest existing ancestor when the path is absent.
    pub fn locate(&self, path: &TreePath) -> Position {
        let mut node = self;
        let mut position = self.position;
        for segment in &path.0 {
            let next = match (segment, &node.value) {
                (Segment::Key(key), Value::Mapping(entries)) => entries
                    .iter()
                    .find(|e| &e.key == key)
                    .map(|e| (e.key_position, &e.value)),
                (Segment::Index(i), Value::Sequence(items)) => {
                    items.get(*i).map(|n| (n.position, n))
                }
                _ => None,
            };
            match next {
                Some((at, child)) => {
                    position = at;
                    node = child;
                }
                None => break,
            }
        }
        position
    }

    /// Where the value at `path` starts (rather than its key).
    pub fn locate_value(&self, path: &TreePath) -> Position {
        self.get(path)
            .map_or_else(|| self.locate(path), |n| n.position)
    }

    pub fn get(&self, path: &TreePath) -> Option<&Node> {
        path.0
            .iter()
            .try_fold(self, |node, segment| match (segment, &node.value) {
                (Segment::Key(key), Value::Mapping(entries)) => {
                    entries.iter().find(|e| &e.key == key).map(|e| &e.value)
                }
                (Segment::Index(i), Value::Sequence(items)) => items.get(*i),
                _ => None,
            })
    }

    /// The same document as JSON, for typed deserialisation and the schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Integer(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    J::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    J::from(v)
                } else {
                    J::from(*i as f64)
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Sequence(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Mapping(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

fn position_of(location: serde_saphyr::Location) -> Position {
    Position {
        line: location.line().max(1),
        column: location.column().max(1),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            position: position_of(spanned.referenced),
            value: spanned.value,
        })
    }
}

/// A mapping key: any scalar, kept as the text a reader would compare.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Key(s)),
            Value::Integer(i) => Ok(Key(i.to_string())),
            Value::Float(f) => Ok(Key(f.to_string())),
            Value::Bool(b) => Ok(Key(b.to_string())),
            Value::Null => Ok(Key("null".to_owned())),
            Value::Sequence(_) | Value::Mapping(_) => Err(de::Error::custom(
                "mapping keys must be plain words, not lists or mappings",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Integer(v.into()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Integer)
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.value.0,
                key_position: position_of(key.referenced),
                value,
            });
        }
        Ok(Value::Mapping(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let tree = Node::parse("name: x\nexpect:\n  deadlines:\n    detect: 60s\n").unwrap();
        let path = TreePath::of(&["expect", "deadlines", "detect"]);
        assert_eq!(tree.locate(&path), Position { line: 4, column: 5 });
        assert_eq!(
            tree.locate_value(&path),
            Position {
                line: 4,
                column: 13
            }
        );
        assert_eq!(tree.get(&path).and_then(Node::as_str), Some("60s"));
    }

    #[test]
    fn list_items_are_located() {
        let tree = Node::parse("tags:\n  - a\n  - b\n").unwrap();
        let at = tree.locate(&TreePath::of(&["tags"]).index(1));
        assert_eq!(at, Position { line: 3, column: 5 });
    }

    #[test]
    fn duplicate_keys_are_refused_with_a_location() {
        let err = Node::parse("name: a\nname: b\n").unwrap_err();
        let location = err.location().expect("a location");
        assert_eq!(location.line(), 2);
    }

    #[test]
    fn yaml_1_1_booleans_stay_words() {
        let tree = Node::parse("on: targets\nanswer: no\nflag: true\n").unwrap();
        assert_eq!(tree.entries()[0].key, "on");
        assert_eq!(
            tree.entry("answer").and_then(|e| e.value.as_str()),
            Some("no")
        );
        assert_eq!(
            tree.entry("flag").map(|e| &e.value.value),
            Some(&Value::Bool(true))
        );
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(Node::parse("").unwrap().value, Value::Null);
    }

    #[test]
    fn converts_to_json() {
        let tree = Node::parse("a: [1, true, x, null, 1.5]\n").unwrap();
        assert_eq!(
            tree.to_json(),
            serde_json::json!({"a": [1, true, "x", null, 1.5]})
        );
    }
}
