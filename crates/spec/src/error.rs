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

/// One problem in an experiment file.
#[derive(Debug, Clone)]
pub struct Problem {
    /// A stable code, e.g. `unknown-field`.
    pub code: &'static str,
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
    pub fn at(code: &'static str, span: Span, label: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            span: Some((span, label.into())),
            related: None,
            help: None,
        }
    }

    /// A problem with no span (e.g. a file that cannot be read).
    pub fn whole(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
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
        Some(Box::new(format!("runner::{}", self.problem.code)))
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

    /// The problems' codes, in order (for tests and tools).
    pub fn codes(&self) -> Vec<&'static str> {
        self.problems.iter().map(|r| r.problem.code).collect()
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
