//! Problems found in experiment files, as miette diagnostics.
//!
//! Every check that fails makes one [`Problem`]: a code, a message, the span
//! it is about with a label, maybe a second span, and maybe a help line. The
//! stages collect problems instead of stopping at the first; [`SpecError`]
//! carries them all, each rendered with the snippet of its own file.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use super::source::{Sources, Span};

/// What kind of problem: one variant per rendered code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// the text is not valid KDL.
    Syntax,
    /// nodes nested deeper than the language allows.
    TooDeep,
    /// a file (the experiment, or one it extends) cannot be read.
    MissingFile,
    /// `extends` leads back to a file already in the chain.
    ExtendsCycle,
    /// the file declares no `experiment`.
    NoExperiment,
    /// a node that is not allowed where it is.
    UnknownNode,
    /// a setting the schema does not have.
    UnknownField,
    /// a property the node does not take.
    UnknownProperty,
    /// a kind the choice does not have.
    UnknownKind,
    /// a word the field does not accept.
    UnknownValue,
    /// an expectation about a metric that does not exist.
    UnknownMetric,
    /// an axis that names nothing, or a rule about an axis the matrix lacks.
    UnknownAxis,
    /// an axis value naming a variant that is not declared.
    UnknownVariant,
    /// an expectation's selector that matches no run.
    UnknownSelector,
    /// a value of the wrong type.
    WrongType,
    /// a number outside its field's range.
    OutOfRange,
    /// a node or kind without a value it needs.
    MissingValue,
    /// an argument the node does not take.
    UnexpectedArgument,
    /// children under a node that takes none.
    UnexpectedChildren,
    /// something set or declared twice.
    Duplicate,
    /// a top-level node written inside a variant.
    Misplaced,
    /// properties that cannot go together.
    Conflict,
    /// settings that contradict each other in a run.
    Inconsistent,
    /// a piece in two splits.
    Overlap,
    /// a field that cannot be varied by an axis.
    UnsupportedAxis,
    /// an axis with no values.
    EmptyAxis,
    /// a `zip` whose axes differ in length.
    ZipLength,
    /// an `include` rule that leaves an axis out.
    IncompleteInclude,
    /// a matrix that expands to no run.
    EmptyMatrix,
    /// a data folder that does not exist.
    MissingData,
}

impl Kind {
    /// Every kind (for tests and tools).
    pub const ALL: [Kind; 30] = [
        Kind::Syntax,
        Kind::TooDeep,
        Kind::MissingFile,
        Kind::ExtendsCycle,
        Kind::NoExperiment,
        Kind::UnknownNode,
        Kind::UnknownField,
        Kind::UnknownProperty,
        Kind::UnknownKind,
        Kind::UnknownValue,
        Kind::UnknownMetric,
        Kind::UnknownAxis,
        Kind::UnknownVariant,
        Kind::UnknownSelector,
        Kind::WrongType,
        Kind::OutOfRange,
        Kind::MissingValue,
        Kind::UnexpectedArgument,
        Kind::UnexpectedChildren,
        Kind::Duplicate,
        Kind::Misplaced,
        Kind::Conflict,
        Kind::Inconsistent,
        Kind::Overlap,
        Kind::UnsupportedAxis,
        Kind::EmptyAxis,
        Kind::ZipLength,
        Kind::IncompleteInclude,
        Kind::EmptyMatrix,
        Kind::MissingData,
    ];

    /// The stable code, rendered as `runner::CODE`.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Syntax => "syntax",
            Kind::TooDeep => "too-deep",
            Kind::MissingFile => "missing-file",
            Kind::ExtendsCycle => "extends-cycle",
            Kind::NoExperiment => "no-experiment",
            Kind::UnknownNode => "unknown-node",
            Kind::UnknownField => "unknown-field",
            Kind::UnknownProperty => "unknown-property",
            Kind::UnknownKind => "unknown-kind",
            Kind::UnknownValue => "unknown-value",
            Kind::UnknownMetric => "unknown-metric",
            Kind::UnknownAxis => "unknown-axis",
            Kind::UnknownVariant => "unknown-variant",
            Kind::UnknownSelector => "unknown-selector",
            Kind::WrongType => "wrong-type",
            Kind::OutOfRange => "out-of-range",
            Kind::MissingValue => "missing-value",
            Kind::UnexpectedArgument => "unexpected-argument",
            Kind::UnexpectedChildren => "unexpected-children",
            Kind::Duplicate => "duplicate",
            Kind::Misplaced => "misplaced",
            Kind::Conflict => "conflict",
            Kind::Inconsistent => "inconsistent",
            Kind::Overlap => "overlap",
            Kind::UnsupportedAxis => "unsupported-axis",
            Kind::EmptyAxis => "empty-axis",
            Kind::ZipLength => "zip-length",
            Kind::IncompleteInclude => "incomplete-include",
            Kind::EmptyMatrix => "empty-matrix",
            Kind::MissingData => "missing-data",
        }
    }
}

/// One problem in an experiment file.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Its kind, which gives its code.
    pub kind: Kind,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, with a short label; `None` for problems about a whole file.
    pub span: Option<(Span, String)>,
    /// A second place that explains the first (e.g. "first set here").
    pub related: Option<(Span, String)>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Problem {
    /// A problem at a span.
    pub fn at(kind: Kind, span: Span, label: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
            span: Some((span, label.into())),
            related: None,
            help: None,
        }
    }

    /// A problem with no span (e.g. a file that cannot be read).
    pub fn whole(kind: Kind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
            span: None,
            related: None,
            help: None,
        }
    }

    /// Adds a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a second labelled span; it is shown only when it is in the same
    /// file as the first.
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related = Some((span, label.into()));
        self
    }
}

/// A did-you-mean help line: the candidate closest to `word`, if close.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// A problem rendered against its file.
#[derive(Debug)]
pub struct Rendered {
    problem: Problem,
    source: Option<NamedSource<Arc<String>>>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Rendered {}

impl Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("runner::{}", self.problem.kind.code())))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (span, label) = self.problem.span.as_ref()?;
        let mut labels = vec![LabeledSpan::new_primary_with_span(Some(label.clone()), span.range)];
        if let Some((other, other_label)) = &self.problem.related
            && other.file == span.file
        {
            labels.push(LabeledSpan::new_with_span(Some(other_label.clone()), other.range));
        }
        Some(Box::new(labels.into_iter()))
    }
}

/// Every problem found while loading or planning an experiment.
#[derive(Debug)]
pub struct SpecError {
    summary: String,
    problems: Vec<Rendered>,
}

impl SpecError {
    /// Attaches each problem to its file's text. `what` names the thing
    /// checked, e.g. the file's path.
    pub fn new(what: &str, problems: Vec<Problem>, sources: &Sources) -> Self {
        let count = problems.len();
        let summary = if count == 1 {
            format!("1 problem in {what}")
        } else {
            format!("{count} problems in {what}")
        };
        let problems = problems
            .into_iter()
            .map(|problem| {
                let source = problem.span.as_ref().map(|(span, _)| sources.named(span.file));
                Rendered { problem, source }
            })
            .collect();
        SpecError { summary, problems }
    }

    /// The problems' kinds, in order (for tests and tools).
    pub fn kinds(&self) -> Vec<Kind> {
        self.problems.iter().map(|r| r.problem.kind).collect()
    }

    /// The problems' messages, in order.
    pub fn messages(&self) -> Vec<&str> {
        self.problems.iter().map(|r| r.problem.message.as_str()).collect()
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for SpecError {}

impl Diagnostic for SpecError {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_words() {
        let codes: Vec<&str> = Kind::ALL.iter().map(|k| k.code()).collect();
        for (i, code) in codes.iter().enumerate() {
            assert!(!codes[..i].contains(code), "{code} twice");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{code}");
        }
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["d-model", "d-ff", "heads", "dropout"];
        assert_eq!(
            did_you_mean("d_model", names).as_deref(),
            Some("did you mean `d-model`?")
        );
        assert_eq!(
            did_you_mean("dropuot", names).as_deref(),
            Some("did you mean `dropout`?")
        );
        assert_eq!(did_you_mean("banana", names), None);
    }
}
