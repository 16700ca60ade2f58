//! KDL text → [`ExperimentFile`], checking every node, property and value
//! against the [schema](super::schema) and collecting every problem.
//!
//! The modules, each used only by those after it: `nodes` (the parser's
//! state and shared checks), `values` (a value against its field's type),
//! `settings` (fields, sections, choices), `sampled` (sampled axes),
//! `matrix`, `expect`; this module
//! reads the document and the experiment node. `depth` guards the KDL parser.

mod depth;
mod expect;
mod matrix;
mod nodes;
mod sampled;
mod search;
mod settings;
mod values;

use std::collections::HashMap;

use kdl::{KdlDocument, KdlNode};

use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{ExperimentFile, Variant};
use crate::source::{FileId, Span, Spanned};
use nodes::{Parser, Seen, children};

pub use depth::MAX_DEPTH;
pub use sampled::{DEFAULT_DIGITS, MAX_SAMPLES};

/// Parses one experiment file: what could be read of it (`None` when the
/// text is not KDL or declares no experiment) and every problem found.
pub fn parse(text: &str, file: FileId) -> (Option<ExperimentFile>, Vec<Problem>) {
    if let Some(offset) = depth::too_deep(text, MAX_DEPTH) {
        return (None, vec![too_deep(text, offset, file)]);
    }
    let doc = match text.parse::<KdlDocument>() {
        Ok(doc) => doc,
        Err(error) => return (None, syntax_problems(&error, file)),
    };
    let mut parser = Parser {
        file,
        problems: Vec::new(),
    };
    let parsed = parser.document(&doc);
    (parsed, parser.problems)
}

fn too_deep(text: &str, offset: usize, file: FileId) -> Problem {
    let line = text[..offset].matches('\n').count() + 1;
    let span = Span {
        file,
        range: (offset, 1).into(),
    };
    Problem::at(Kind::TooDeep { line, limit: MAX_DEPTH }, span).help(format!(
        "an experiment needs a few levels (experiment → dataset → quantize); the limit is {MAX_DEPTH}"
    ))
}

fn syntax_problems(error: &kdl::KdlError, file: FileId) -> Vec<Problem> {
    error
        .diagnostics
        .iter()
        .map(|d| {
            let span = Span { file, range: d.span };
            let label = d.label.clone().unwrap_or_else(|| "here".to_owned());
            let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_owned());
            let problem = Problem::at(Kind::Syntax { message, label }, span);
            match &d.help {
                Some(help) => problem.help(help.clone()),
                None => problem,
            }
        })
        .collect()
}

impl Parser {
    fn document(&mut self, doc: &KdlDocument) -> Option<ExperimentFile> {
        let mut experiments = doc.nodes().iter().filter(|n| n.name().value() == "experiment");
        for node in doc.nodes().iter().filter(|n| n.name().value() != "experiment") {
            let span = self.node_span(node);
            let mut problem = Problem::at(
                Kind::UnknownTopLevel {
                    name: node.name().value().to_owned(),
                },
                span,
            );
            if let Some(help) = did_you_mean(node.name().value(), ["experiment"]) {
                problem = problem.help(help);
            }
            self.report(problem);
        }
        let Some(node) = experiments.next() else {
            self.report(
                Problem::whole(Kind::NoExperiment)
                    .help("start the file with `experiment my-name {` and put the settings inside"),
            );
            return None;
        };
        for extra in experiments {
            let span = self.node_span(extra);
            self.report(Problem::at(Kind::SecondExperiment, span).also(self.node_span(node), "first declared here"));
        }
        self.experiment(node)
    }

    fn experiment(&mut self, node: &KdlNode) -> Option<ExperimentFile> {
        let name = match self.single_string(node, "experiment", "a name, e.g. `experiment pathetique { ... }`") {
            Some(name) => name,
            None => Spanned::new(String::new(), self.node_span(node)),
        };
        self.no_properties(node);
        let mut file = ExperimentFile {
            name,
            description: None,
            extends: None,
            repeats: None,
            settings: Vec::new(),
            variants: Vec::new(),
            matrix: None,
            expectations: Vec::new(),
            search: None,
        };
        let mut seen_settings = Seen::new();
        let mut seen_top: HashMap<String, Span> = HashMap::new();
        for child in children(node) {
            let word = child.name().value();
            if matches!(word, "description" | "extends" | "repeats" | "matrix" | "search") {
                let span = self.node_span(child);
                if let Some(first) = seen_top.insert(word.to_owned(), span) {
                    self.report(
                        Problem::at(Kind::SetTwice { path: word.to_owned() }, span).also(first, "first set here"),
                    );
                }
            }
            match word {
                "description" => file.description = self.single_string(child, word, "a string").map(|s| s.value),
                "extends" => file.extends = self.single_string(child, word, "the path of another experiment file"),
                "repeats" => file.repeats = self.repeats(child),
                "variant" => {
                    if let Some(variant) = self.variant(child, &file.variants) {
                        file.variants.push(variant);
                    }
                }
                "matrix" => file.matrix = Some(self.matrix(child)),
                "search" => file.search = self.search(child),
                "expect" => {
                    if let Some(expectation) = self.expectation(child) {
                        file.expectations.push(expectation);
                    }
                }
                _ => self.setting(child, "", &mut file.settings, &mut seen_settings),
            }
        }
        Some(file)
    }

    fn variant(&mut self, node: &KdlNode, earlier: &[Variant]) -> Option<Variant> {
        let name = self.single_string(node, "variant", "a name, e.g. `variant hf-t5 { ... }`")?;
        self.no_properties(node);
        if let Some(first) = earlier.iter().find(|v| v.name.value == name.value) {
            self.report(
                Problem::at(
                    Kind::VariantTwice {
                        name: name.value.clone(),
                    },
                    name.span,
                )
                .also(first.name.span, "first declared here"),
            );
        }
        let mut overrides = Vec::new();
        let mut seen = Seen::new();
        for child in children(node) {
            self.setting(child, "", &mut overrides, &mut seen);
        }
        Some(Variant { name, overrides })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_depth_limit_parses_on_a_test_threads_stack() {
        let levels = MAX_DEPTH - 1;
        let text = format!("experiment e {{ {}{} }}", "a { ".repeat(levels), "} ".repeat(levels));
        let (file, problems) = parse(&text, 0);
        assert!(file.is_some());
        let codes: Vec<&str> = problems.iter().map(|p| p.kind.code()).collect();
        assert_eq!(codes, ["unknown-field"]);
    }

    #[test]
    fn a_file_past_the_limit_is_not_handed_to_kdl() {
        let text = format!("{}{}", "a { ".repeat(100_000), "} ".repeat(100_000));
        let (file, problems) = parse(&text, 0);
        assert!(file.is_none());
        assert_eq!(problems.iter().map(|p| p.kind.code()).collect::<Vec<_>>(), ["too-deep"]);
    }
}
