//! A YAML tree that remembers the line of every node, so that a rule problem can name it.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` when unquoted (only plain scalars can be null, booleans or numbers).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A scalar with its YAML type resolved (core schema).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The scalar, typed; `None` for a sequence or a map.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        let Kind::Scalar { text, plain } = &self.kind else {
            return None;
        };
        if !plain {
            return Some(Scalar::Str(text));
        }
        Some(match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
            "true" | "True" | "TRUE" => Scalar::Bool(true),
            "false" | "False" | "FALSE" => Scalar::Bool(false),
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    Scalar::Int(i)
                } else if looks_like_float(t)
                    && let Ok(f) = t.parse::<f64>()
                {
                    Scalar::Float(f)
                } else {
                    Scalar::Str(t)
                }
            }
        })
    }

    /// The text of a scalar, whatever its type (`None` for a sequence or a map).
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, v)| v)
    }

    /// This node as JSON (for test records written in YAML).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
            Kind::Scalar { .. } => match self.scalar() {
                Some(Scalar::Null) | None => Value::Null,
                Some(Scalar::Bool(b)) => Value::Bool(b),
                Some(Scalar::Int(i)) => Value::from(i),
                Some(Scalar::Float(f)) => {
                    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
                Some(Scalar::Str(s)) => Value::String(s.to_owned()),
            },
        }
    }
}

fn looks_like_float(t: &str) -> bool {
    let t = t.trim_start_matches(['-', '+']);
    t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

/// Parses every document in `text`. The error carries the line and the parser's message.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, (usize, String)> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, true)
        .map_err(|e| (e.marker().line(), e.info().to_owned()))?;
    if let Some((line, message)) = builder.error {
        return Err((line, message));
    }
    Ok(builder.documents)
}

#[derive(Default)]
struct Builder {
    documents: Vec<Node>,
    /// Open sequences and maps; a map collects keys and values alternately.
    stack: Vec<(Node, Option<Node>)>,
    anchors: Vec<(usize, Node)>,
    /// The anchor of each open collection.
    open_anchors: Vec<usize>,
    error: Option<(usize, String)>,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        let Some((parent, pending_key)) = self.stack.last_mut() else {
            self.documents.push(node);
            return;
        };
        match &mut parent.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(entries) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Kind::Scalar { .. } => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                self.finish(
                    Node {
                        line,
                        kind: Kind::Scalar { text, plain },
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.open_anchors.push(anchor);
                self.stack.push((
                    Node {
                        line,
                        kind: Kind::Seq(Vec::new()),
                    },
                    None,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.open_anchors.push(anchor);
                self.stack.push((
                    Node {
                        line,
                        kind: Kind::Map(Vec::new()),
                    },
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    let anchor = self.open_anchors.pop().unwrap_or(0);
                    self.finish(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) => {
                    let node = node.clone();
                    self.finish(node, 0);
                }
                None => {
                    self.error
                        .get_or_insert((line, format!("unknown alias (anchor {id})")));
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_types() {
        let docs = parse("a: 1\nb:\n  - 'x'\n  - true\n  - ~\nc: hello\n").unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d.get("a").unwrap().scalar(), Some(Scalar::Int(1)));
        let b = d.get("b").unwrap().as_seq().unwrap();
        assert_eq!(b[0].scalar(), Some(Scalar::Str("x")));
        assert_eq!(b[0].line, 3);
        assert_eq!(b[1].scalar(), Some(Scalar::Bool(true)));
        assert_eq!(b[2].scalar(), Some(Scalar::Null));
        assert_eq!(d.get("c").unwrap().line, 6);
        assert_eq!(d.to_json()["b"], serde_json::json!(["x", true, null]));
    }

    #[test]
    fn quoted_true_is_a_string_and_aliases_resolve() {
        let d = &parse("a: &x 'true'\nb: *x\n").unwrap()[0];
        assert_eq!(d.get("b").unwrap().scalar(), Some(Scalar::Str("true")));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let (line, _) = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(line >= 2, "{line}");
    }
}
