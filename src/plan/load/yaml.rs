//! A YAML document as a tree of nodes that remember where they were written.
//!
//! Built from `saphyr-parser` events, which carry line and column markers. The loader walks
//! this tree instead of deserialising with serde because serde_yaml keeps no positions and
//! stops at the first error, and a plan must report every mistake at its `LINE:COL`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

/// A 1-based line and column in the plan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: Span) -> Self {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    /// Keys in the order written (duplicates kept, the loader reports them).
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// A plain `null`, `~` or nothing at all: YAML's null.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of YAML value this is, for "expected X, found Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing (null)",
            Value::Scalar { quoted: true, .. } => "a string",
            Value::Scalar { text, .. } => {
                if matches!(text.as_str(), "true" | "false") {
                    "a boolean"
                } else if text.parse::<f64>().is_ok() {
                    "a number"
                } else {
                    "a string"
                }
            }
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Why the text is not a single YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl From<ScanError> for SyntaxError {
    fn from(error: ScanError) -> Self {
        SyntaxError {
            pos: Pos {
                line: error.marker().line(),
                column: error.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", error.info()),
        }
    }
}

/// Deeper nesting than any plan needs; the limit keeps the recursive build off the end of
/// the stack on hostile input.
const MAX_DEPTH: usize = 64;

/// Nodes written out: far more than any plan needs (a plan of 10 000 data planes, X's and
/// Y's with their addresses, has some 200 000), still a bounded memory (some 80 bytes a
/// node) on hostile input.
const MAX_NODES: usize = 2_000_000;

/// Nodes that aliases add by copying what an anchor names, so a few lines of nested
/// aliases cannot expand into gigabytes. Counted apart from the nodes written out, so a
/// long plan is never refused for its length.
const MAX_ALIAS_NODES: usize = 100_000;

/// Parses one YAML document. An empty file yields `Ok(None)`.
pub fn parse(source: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(source),
        anchors: HashMap::new(),
        nodes: 0,
        alias_nodes: 0,
    };
    let mut root = None;
    loop {
        let (event, span) = builder.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => return Ok(root),
            Event::DocumentStart(_) => {
                let (event, span) = builder.next()?;
                let node = builder.node(event, span, 0)?;
                if root.is_some() {
                    return Err(SyntaxError {
                        pos: node.pos,
                        message: "the plan file holds more than one YAML document".into(),
                    });
                }
                root = Some(node);
            }
            other => {
                return Err(SyntaxError {
                    pos: Pos::of(span),
                    message: format!("YAML syntax error: unexpected {other:?}"),
                });
            }
        }
    }
}

struct Builder<'input> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    /// Anchored nodes by anchor id, with their node counts, so an alias becomes a copy.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes written out, built so far.
    nodes: usize,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
}

impl<'input> Builder<'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), SyntaxError> {
        match self.parser.next() {
            Some(Ok(item)) => Ok(item),
            Some(Err(error)) => Err(error.into()),
            None => Err(SyntaxError {
                pos: Pos::default(),
                message: "YAML syntax error: unexpected end of input".into(),
            }),
        }
    }

    fn node(
        &mut self,
        event: Event<'input>,
        span: Span,
        depth: usize,
    ) -> Result<Node, SyntaxError> {
        let pos = Pos::of(span);
        let first = self.nodes + self.alias_nodes;
        self.count(pos)?;
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("the plan nests deeper than {MAX_DEPTH} levels"),
            });
        }
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = style != ScalarStyle::Plain;
                let value = Value::Scalar {
                    text: text.into_owned(),
                    quoted,
                };
                (Node { pos, value }, anchor)
            }
            Event::SequenceStart(anchor, _tag) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
                let value = Value::Sequence(items);
                (Node { pos, value }, anchor)
            }
            Event::MappingStart(anchor, _tag) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(event, span, depth + 1)?;
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, depth + 1)?;
                    entries.push((key, value));
                }
                let value = Value::Mapping(entries);
                (Node { pos, value }, anchor)
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).cloned().ok_or(SyntaxError {
                    pos,
                    message: "YAML alias refers to an unknown anchor".into(),
                })?;
                self.count_copies(size, pos)?;
                return Ok(node);
            }
            other => {
                return Err(SyntaxError {
                    pos,
                    message: format!("YAML syntax error: unexpected {other:?}"),
                });
            }
        };
        if anchor != 0 {
            // What an alias of it copies: every node under it, copies included.
            let size = self.nodes + self.alias_nodes - first;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    fn count(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "the plan has more than {MAX_NODES} YAML nodes: far more than any upgrade \
                     needs (10 000 data planes take some 200 000); is this the plan file?"
                ),
            });
        }
        Ok(())
    }

    fn count_copies(&mut self, size: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.alias_nodes += size;
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "the plan's aliases copy more than {MAX_ALIAS_NODES} YAML nodes: write \
                     the repeated parts out, or alias smaller ones"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn nodes_carry_one_based_positions() {
        let root = parse("a: 1\nb:\n  - x\n  - {c: \"d\"}\n").unwrap().unwrap();
        let Value::Mapping(entries) = &root.value else {
            panic!("root is not a mapping")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, column: 4 });
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!("b is not a list")
        };
        assert_eq!(scalar(&items[0]), "x");
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        let Value::Mapping(inner) = &items[1].value else {
            panic!("item is not a mapping")
        };
        assert_eq!(inner[0].1.pos, Pos { line: 4, column: 9 });
        assert_eq!(
            inner[0].1.value,
            Value::Scalar {
                text: "d".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = parse("a: &v [1, 2]\nb: *v\n").unwrap().unwrap();
        let Value::Mapping(entries) = &root.value else {
            panic!("root is not a mapping")
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
    }

    #[test]
    fn version_like_scalars_keep_their_text() {
        let root = parse("to: 3.10\n").unwrap().unwrap();
        let Value::Mapping(entries) = &root.value else {
            panic!("root is not a mapping")
        };
        assert_eq!(scalar(&entries[0].1), "3.10");
    }

    #[test]
    fn syntax_errors_and_multiple_documents_are_reported_with_a_position() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.message.starts_with("YAML syntax error"), "{error:?}");
        assert!(error.pos.line >= 1);
        let error = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(error.pos.line, 3);
        assert!(error.message.contains("more than one YAML document"));
        assert_eq!(parse("").unwrap(), None);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let error = parse(&deep).unwrap_err();
        assert!(error.message.contains("deeper than 64"), "{error:?}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, previous) in ["b", "c", "d", "e", "f"]
            .iter()
            .zip(["a", "b", "c", "d", "e"])
        {
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 10].join(", ")
            ));
        }
        let error = parse(&bomb).unwrap_err();
        assert!(
            error
                .message
                .contains("aliases copy more than 100000 YAML nodes"),
            "{error:?}"
        );
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn a_long_plan_is_not_counted_as_aliases() {
        // 150 000 nodes written out: past the alias cap, well within the node cap.
        let long = format!("a: [{}]\n", vec!["x"; 150_000].join(", "));
        let Value::Mapping(entries) = parse(&long).unwrap().unwrap().value else {
            panic!("root is not a mapping")
        };
        assert!(matches!(&entries[0].1.value, Value::Sequence(items) if items.len() == 150_000));
        let error = parse(&format!("a: [{}]\n", vec!["x"; MAX_NODES].join(","))).unwrap_err();
        assert!(
            error.message.contains("more than 2000000 YAML nodes"),
            "{error:?}"
        );
    }
}
