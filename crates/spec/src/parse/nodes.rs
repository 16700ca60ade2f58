//! The parser's state and the checks every node shares: spans, single
//! string arguments, nodes that take no properties, arguments or children.

use std::collections::HashMap;

use kdl::{KdlEntry, KdlNode};

use crate::error::{Kind, Problem};
use crate::source::{FileId, Span, Spanned};
use crate::value::Value;

/// One file's parse: where spans point and the problems found so far.
pub(super) struct Parser {
    pub(super) file: FileId,
    pub(super) problems: Vec<Problem>,
}

/// Paths already set in one scope (the settings, a variant, an axis value),
/// so that setting one twice is reported.
pub(super) type Seen = HashMap<String, Span>;

impl Parser {
    pub(super) fn span(&self, range: miette::SourceSpan) -> Span {
        Span { file: self.file, range }
    }

    pub(super) fn node_span(&self, node: &KdlNode) -> Span {
        self.span(node.name().span())
    }

    pub(super) fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub(super) fn first_string(&mut self, node: &KdlNode, what: &str, expected: &str) -> Option<Spanned<String>> {
        let span = self.node_span(node);
        match node.entries().iter().find(|e| e.name().is_none()) {
            Some(entry) => match entry.value().as_string() {
                Some(s) => Some(Spanned::new(s.to_owned(), self.span(entry.span()))),
                None => {
                    self.report(Problem::at(
                        Kind::NotAString {
                            what: what.to_owned(),
                            expected: expected.to_owned(),
                        },
                        self.span(entry.span()),
                    ));
                    None
                }
            },
            None => {
                self.report(Problem::at(
                    Kind::NeedsValue {
                        what: what.to_owned(),
                        expected: expected.to_owned(),
                    },
                    span,
                ));
                None
            }
        }
    }

    pub(super) fn single_string(&mut self, node: &KdlNode, what: &str, expected: &str) -> Option<Spanned<String>> {
        let value = self.first_string(node, what, expected)?;
        for extra in node.entries().iter().filter(|e| e.name().is_none()).skip(1) {
            self.report(Problem::at(
                Kind::TakesOneValue { what: what.to_owned() },
                self.span(extra.span()),
            ));
        }
        Some(value)
    }

    pub(super) fn no_properties(&mut self, node: &KdlNode) {
        for entry in node.entries() {
            if let Some(key) = entry.name() {
                self.report(Problem::at(
                    Kind::TakesNoProperty {
                        node: node.name().value().to_owned(),
                        key: key.value().to_owned(),
                    },
                    self.span(key.span()),
                ));
            }
        }
    }

    pub(super) fn no_arguments(&mut self, node: &KdlNode) {
        for entry in node.entries().iter().filter(|e| e.name().is_none()) {
            self.report(Problem::at(
                Kind::TakesNoArguments {
                    node: node.name().value().to_owned(),
                },
                self.span(entry.span()),
            ));
        }
    }

    pub(super) fn no_children(&mut self, node: &KdlNode) {
        if let Some(first) = children(node).next() {
            self.report(Problem::at(
                Kind::TakesNoChildren {
                    node: node.name().value().to_owned(),
                },
                self.node_span(first),
            ));
        }
    }
}

pub(super) fn kdl_type(entry: &KdlEntry) -> &'static str {
    match entry.value() {
        kdl::KdlValue::String(_) => "a string",
        kdl::KdlValue::Integer(_) => "an integer this large",
        kdl::KdlValue::Float(_) => "a number",
        kdl::KdlValue::Bool(_) => "a boolean",
        kdl::KdlValue::Null => "#null",
    }
}

pub(super) fn children(node: &KdlNode) -> impl Iterator<Item = &KdlNode> {
    node.children().into_iter().flat_map(|doc| doc.nodes())
}

pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// An entry's value as the file wrote it: `0` stays `0`, `1e-3` stays
/// `1e-3`, a string is its contents, `#true` is `true`.
pub(super) fn written(entry: &KdlEntry) -> String {
    let value = Value::from_kdl(entry.value());
    match (&value, entry.format()) {
        (Some(Value::Int(_) | Value::Float(_)), Some(format)) if !format.value_repr.is_empty() => {
            format.value_repr.trim().to_owned()
        }
        (Some(value), _) => value.to_string(),
        (None, _) => entry.value().to_string(),
    }
}
