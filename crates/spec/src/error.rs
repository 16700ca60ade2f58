//! Problems found in experiment files, as miette diagnostics.
//!
//! Every check that fails makes one [`Problem`]: a [`Kind`] holding the facts
//! (whose code, label and message are written in this file only), the span
//! it is about, maybe a second span, and maybe a help line. The stages
//! collect problems instead of stopping at the first; [`SpecError`] carries
//! them all, each rendered with the snippet of its own file.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use super::source::{Sources, Span};

/// What is wrong: one variant per problem, with the facts it is about.
/// Its code, label and message are written here and nowhere else.
#[allow(missing_docs)] // the fields are the facts its message shows
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The text is not valid KDL.
    Syntax { message: String, label: String },
    /// Children nested deeper than the limit.
    TooDeep { line: usize, limit: usize },
    /// A file that cannot be read.
    Unreadable { path: String, error: String },
    /// A file whose bytes are not UTF-8, from `offset` (on `line`) on.
    NotUtf8 { path: String, offset: usize, line: usize },
    /// `extends` leads back to a file already in the chain.
    ExtendsCycle,
    /// A file without an `experiment` node.
    NoExperiment,
    /// A top-level node other than `experiment`.
    UnknownTopLevel { name: String },
    /// A second `experiment` node.
    SecondExperiment,
    /// A setting written twice in one scope.
    SetTwice { path: String },
    /// Two variants of one name.
    VariantTwice { name: String },
    /// A node whose value must be a string.
    NotAString { what: String, expected: String },
    /// A node without its value.
    NeedsValue { what: String, expected: String },
    /// A list field without values.
    NeedsValues { what: String },
    /// A second argument where one is taken.
    TakesOneValue { what: String },
    /// A property on a node that takes none.
    TakesNoProperty { node: String, key: String },
    /// An argument on a node that takes none.
    TakesNoArguments { node: String },
    /// Children under a node that takes none.
    TakesNoChildren { node: String },
    /// `#null` or an integer too large.
    CannotBe { path: String, found: &'static str },
    /// A value of the wrong type.
    WrongType {
        path: String,
        expected: String,
        found: &'static str,
    },
    /// A number outside its field's range.
    OutOfRange { path: String, range: String, value: String },
    /// A word the field does not accept.
    UnknownWord { path: String, word: String, words: String },
    /// A top-level node inside a variant.
    Misplaced { name: String },
    /// An argument on a section.
    SectionArgument { name: String },
    /// A setting the schema does not have.
    UnknownField { name: String, place: String },
    /// A property the node does not take.
    UnknownProperty { name: String, node: String },
    /// A choice without its kind.
    NeedsKind { node: String, kinds: String },
    /// A choice's kind that is not a word.
    KindNotWord {
        node: String,
        kinds: String,
        found: &'static str,
    },
    /// A kind the choice does not have.
    UnknownKind { node: String, word: String },
    /// A second argument on a choice.
    KindArgument { node: String, kind: String },
    /// A property the kind does not have.
    KindProperty { node: String, kind: String, name: String },
    /// A node a matrix does not hold.
    UnknownMatrixNode { name: String },
    /// A node other than `axis` in a `zip`.
    NotAnAxis,
    /// `zip` axes of different lengths.
    ZipLength { values: usize },
    /// A `zip` of one axis.
    ZipTooShort,
    /// An axis with no values.
    EmptyAxis { axis: String },
    /// A value of `axis variant` that is not a name.
    NotAVariantName,
    /// An axis over a list field.
    ListAxis { path: String },
    /// One value written two ways on an axis.
    SameValueTwice {
        axis: String,
        first: String,
        written: String,
    },
    /// An axis value naming a kind the choice lacks.
    NoSuchKind { path: String, word: String },
    /// An axis that names nothing.
    UnknownAxisPath { path: String },
    /// One label twice on an axis.
    LabelTwice { axis: String, label: String },
    /// An `exclude` or `include` without pairs.
    EmptyRule { node: String },
    /// An `expect` without metric or selector.
    IncompleteExpect,
    /// A metric that does not exist.
    UnknownMetric { word: String },
    /// A selector that is not a string.
    SelectorNotString,
    /// A third argument on `expect`.
    ExpectArguments,
    /// A `better-than` that is not a string.
    BetterThanNotString,
    /// A `ratio` below 1.
    RatioRange,
    /// Both `below` and `above`.
    SecondBound,
    /// A bound that is not a number.
    BoundNotNumber { word: String },
    /// A property `expect` does not take.
    UnknownExpectProperty { name: String },
    /// `better-than` with a bound.
    TwoClaims,
    /// An `expect` without a claim.
    NoClaim,
    /// A `ratio` with a bound.
    RatioWithoutBetterThan,
    /// An axis value naming an undeclared variant.
    UnknownVariant { name: String },
    /// One axis twice in a matrix.
    AxisTwice { axis: String },
    /// An `include` that leaves an axis out.
    IncompleteInclude { missing: String },
    /// A matrix that expands to no run.
    EmptyMatrix,
    /// A rule about an axis the matrix lacks.
    NoSuchAxis { axis: String },
    /// A rule about a value the axis lacks.
    NoSuchAxisValue { axis: String, label: String },
    /// A selector that matches no run.
    NoMatch { selector: String },
    /// A data folder or metadata table that does not exist.
    MissingData { path: String, what: &'static str },
    /// An axis over a field the run's kind lacks.
    KindLacksField {
        choice: String,
        field: String,
        kind: String,
    },
    /// A device that is not auto, cpu, cuda or cuda:K.
    UnknownDevice { device: String },
    /// A vanilla d-kv that does not split d-model.
    KvTimesHeads { d_kv: i64, heads: usize, d_model: usize },
    /// Heads that do not divide d-model.
    HeadsDivide { d_model: usize, heads: usize },
    /// A cosine schedule whose min is above its peak.
    MinAbovePeak { min: f64, peak: f64 },
    /// A folder source without its path.
    SourceNeedsPath { kind: String },
    /// `split files` without a train list.
    NoTrainList,
    /// A piece in two splits.
    SplitOverlap {
        file: String,
        first: String,
        second: String,
    },
    /// `split column` without a parquet source.
    ColumnNeedsParquet,
    /// `split table` without `path`.
    TableNeedsPath,
    /// `group column` without `name`.
    NoColumnName,
    /// `group column` without `table` on a source with no metadata of its own.
    GroupColumnNeedsTable,
    /// Split fractions that do not add up to 1.
    FractionsSum { sum: f64 },
    /// A training fraction of 0.
    NoTrainFraction,
    /// `group pattern` without `regex`.
    NoPattern,
    /// A group pattern that is not a regular expression.
    BadPattern { problem: String },
    /// Explicit edges without a list.
    NoEdges { name: String },
    /// A bin count the original table lacks.
    OriginalBins { name: String, asked: usize },
    /// A bin count that explicit edges contradict.
    BinsContradictEdges { name: String, asked: usize, made: usize },
    /// Edges that do not start at 0.
    EdgesStart { name: String },
    /// Edges that do not increase.
    EdgesIncreasing { name: String },
    /// Velocity edges that do not close at 128.
    VelocityEdges,
    /// A sampled axis without `samples=`.
    NeedsSamples { sampler: String },
    /// A sampler with the wrong number of values.
    SamplerArguments {
        sampler: String,
        expected: String,
        found: usize,
    },
    /// A range sampler whose low end is not below its high end.
    SampleRange { low: String, high: String },
    /// A log-uniform range that reaches 0 or below.
    LogOfNonPositive { low: String },
    /// `weights=` that are not one positive number per value.
    BadWeights { reason: String },
    /// A sampled axis that cannot give as many distinct values as asked.
    TooFewDistinct { axis: String, samples: u32, drawn: usize },
    /// Two rows of a `zip` of sampled axes that are the same.
    ZipRowTwice { row: usize, first: usize },
    /// A matrix whose product has more cells than can be planned.
    TooManyCells { cells: String, limit: usize },
    /// Early stopping or a search on a metric that is not evaluated after
    /// every epoch (or has no better direction): `why` completes "`metric` ...".
    CannotWatch {
        watcher: String,
        metric: String,
        why: String,
    },
    /// A search kind other than `halving`.
    UnknownSearch { word: String },
    /// A search property that is missing.
    SearchNeeds { property: String, example: String },
    /// A search property's value that cannot be used: what is wrong.
    SearchValue { property: String, message: String },
    /// A search whose rungs do not fit the planned runs: what is wrong.
    SearchPlan { message: String },
    /// An early-stop setting written while its metric is off.
    EarlyStopOff { field: String },
}

impl Kind {
    /// The stable code, rendered as `runner::CODE`.
    pub fn code(&self) -> &'static str {
        match self {
            Kind::Syntax { .. } => "syntax",
            Kind::TooDeep { .. } => "too-deep",
            Kind::Unreadable { .. } => "missing-file",
            Kind::NotUtf8 { .. } => "not-utf8",
            Kind::ExtendsCycle => "extends-cycle",
            Kind::NoExperiment => "no-experiment",
            Kind::UnknownTopLevel { .. } | Kind::UnknownMatrixNode { .. } | Kind::NotAnAxis => "unknown-node",
            Kind::SecondExperiment
            | Kind::SetTwice { .. }
            | Kind::VariantTwice { .. }
            | Kind::SameValueTwice { .. }
            | Kind::LabelTwice { .. }
            | Kind::AxisTwice { .. } => "duplicate",
            Kind::NotAString { .. }
            | Kind::CannotBe { .. }
            | Kind::WrongType { .. }
            | Kind::KindNotWord { .. }
            | Kind::NotAVariantName
            | Kind::SelectorNotString
            | Kind::BetterThanNotString
            | Kind::BoundNotNumber { .. } => "wrong-type",
            Kind::NeedsValue { .. }
            | Kind::NeedsValues { .. }
            | Kind::NeedsKind { .. }
            | Kind::EmptyRule { .. }
            | Kind::IncompleteExpect
            | Kind::NoClaim
            | Kind::SourceNeedsPath { .. }
            | Kind::NoTrainList
            | Kind::NoPattern
            | Kind::TableNeedsPath
            | Kind::NoColumnName
            | Kind::NoEdges { .. } => "missing-value",
            Kind::TakesOneValue { .. }
            | Kind::TakesNoArguments { .. }
            | Kind::SectionArgument { .. }
            | Kind::KindArgument { .. }
            | Kind::ExpectArguments => "unexpected-argument",
            Kind::TakesNoProperty { .. }
            | Kind::UnknownProperty { .. }
            | Kind::KindProperty { .. }
            | Kind::UnknownExpectProperty { .. } => "unknown-property",
            Kind::TakesNoChildren { .. } => "unexpected-children",
            Kind::OutOfRange { .. }
            | Kind::RatioRange
            | Kind::NoTrainFraction
            | Kind::OriginalBins { .. }
            | Kind::EdgesStart { .. }
            | Kind::EdgesIncreasing { .. }
            | Kind::VelocityEdges
            | Kind::NeedsSamples { .. }
            | Kind::SamplerArguments { .. }
            | Kind::SampleRange { .. }
            | Kind::LogOfNonPositive { .. }
            | Kind::BadWeights { .. }
            | Kind::TooFewDistinct { .. } => "out-of-range",
            Kind::ZipRowTwice { .. } => "duplicate",
            Kind::TooManyCells { .. } => "too-many-runs",
            Kind::CannotWatch { .. } => "not-evaluated",
            Kind::UnknownSearch { .. } => "unknown-kind",
            Kind::SearchNeeds { .. } => "missing-value",
            Kind::SearchValue { .. } => "out-of-range",
            Kind::SearchPlan { .. } => "inconsistent",
            Kind::UnknownWord { .. } | Kind::NoSuchAxisValue { .. } | Kind::UnknownDevice { .. } => "unknown-value",
            Kind::Misplaced { .. } => "misplaced",
            Kind::UnknownField { .. } => "unknown-field",
            Kind::UnknownKind { .. } | Kind::NoSuchKind { .. } => "unknown-kind",
            Kind::ZipLength { .. } | Kind::ZipTooShort => "zip-length",
            Kind::EmptyAxis { .. } => "empty-axis",
            Kind::ListAxis { .. } => "unsupported-axis",
            Kind::UnknownAxisPath { .. } | Kind::NoSuchAxis { .. } => "unknown-axis",
            Kind::UnknownMetric { .. } => "unknown-metric",
            Kind::SecondBound | Kind::TwoClaims | Kind::RatioWithoutBetterThan => "conflict",
            Kind::UnknownVariant { .. } => "unknown-variant",
            Kind::IncompleteInclude { .. } => "incomplete-include",
            Kind::EmptyMatrix => "empty-matrix",
            Kind::NoMatch { .. } => "unknown-selector",
            Kind::MissingData { .. } => "missing-data",
            Kind::KindLacksField { .. }
            | Kind::KvTimesHeads { .. }
            | Kind::HeadsDivide { .. }
            | Kind::MinAbovePeak { .. }
            | Kind::ColumnNeedsParquet
            | Kind::GroupColumnNeedsTable
            | Kind::FractionsSum { .. }
            | Kind::BinsContradictEdges { .. }
            | Kind::EarlyStopOff { .. } => "inconsistent",
            Kind::SplitOverlap { .. } => "overlap",
            Kind::BadPattern { .. } => "bad-pattern",
        }
    }

    /// The short label at the span.
    pub fn label(&self) -> String {
        match self {
            Kind::Syntax { label, .. } => label.clone(),
            Kind::TooDeep { limit, .. } => format!("level {}", limit + 1),
            Kind::Unreadable { .. } | Kind::NotUtf8 { .. } => "extended here".to_owned(),
            Kind::ExtendsCycle => "extends a file already in the chain".to_owned(),
            Kind::NoExperiment => "here".to_owned(),
            Kind::UnknownTopLevel { .. } => "not allowed here".to_owned(),
            Kind::SecondExperiment => "second experiment".to_owned(),
            Kind::SetTwice { .. } => "set again".to_owned(),
            Kind::VariantTwice { .. } => "declared again".to_owned(),
            Kind::NotAString { .. } => "not a string".to_owned(),
            Kind::NeedsValue { .. } => "needs a value".to_owned(),
            Kind::NeedsValues { .. } => "needs values".to_owned(),
            Kind::TakesOneValue { .. } => "unexpected".to_owned(),
            Kind::TakesNoProperty { .. } => "unexpected".to_owned(),
            Kind::TakesNoArguments { .. } => "unexpected".to_owned(),
            Kind::TakesNoChildren { .. } => "unexpected".to_owned(),
            Kind::CannotBe { .. } => "not allowed".to_owned(),
            Kind::WrongType { .. } => "wrong type".to_owned(),
            Kind::OutOfRange { .. } => "out of range".to_owned(),
            Kind::UnknownWord { .. } => "unknown value".to_owned(),
            Kind::Misplaced { .. } => "only at the top of the experiment".to_owned(),
            Kind::SectionArgument { .. } => "unexpected argument".to_owned(),
            Kind::UnknownField { .. } => "unknown".to_owned(),
            Kind::UnknownProperty { .. } => "unknown".to_owned(),
            Kind::NeedsKind { .. } => "needs a kind".to_owned(),
            Kind::KindNotWord { .. } => "not a kind".to_owned(),
            Kind::UnknownKind { .. } => "unknown".to_owned(),
            Kind::KindArgument { .. } => "unexpected".to_owned(),
            Kind::KindProperty { .. } => "unknown".to_owned(),
            Kind::UnknownMatrixNode { .. } => "unknown".to_owned(),
            Kind::NotAnAxis => "not an axis".to_owned(),
            Kind::ZipLength { values } => count(*values, "value"),
            Kind::ZipTooShort => "fewer than two axes".to_owned(),
            Kind::EmptyAxis { .. } => "no values".to_owned(),
            Kind::NotAVariantName => "not a name".to_owned(),
            Kind::ListAxis { .. } => "a list field".to_owned(),
            Kind::SameValueTwice { first, .. } => format!("the same value as `{first}`"),
            Kind::NoSuchKind { .. } => "unknown".to_owned(),
            Kind::UnknownAxisPath { .. } => "unknown".to_owned(),
            Kind::LabelTwice { .. } => "repeated".to_owned(),
            Kind::EmptyRule { .. } => "empty".to_owned(),
            Kind::IncompleteExpect => "incomplete".to_owned(),
            Kind::UnknownMetric { .. } => "unknown".to_owned(),
            Kind::SelectorNotString => "not a selector".to_owned(),
            Kind::ExpectArguments => "unexpected".to_owned(),
            Kind::BetterThanNotString => "not a selector".to_owned(),
            Kind::RatioRange => "out of range".to_owned(),
            Kind::SecondBound => "second bound".to_owned(),
            Kind::BoundNotNumber { .. } => "not a number".to_owned(),
            Kind::UnknownExpectProperty { .. } => "unknown".to_owned(),
            Kind::TwoClaims => "two claims".to_owned(),
            Kind::NoClaim => "no claim".to_owned(),
            Kind::RatioWithoutBetterThan => "needs better-than".to_owned(),
            Kind::UnknownVariant { .. } => "not declared".to_owned(),
            Kind::AxisTwice { .. } => "varied again".to_owned(),
            Kind::IncompleteInclude { .. } => "names too few axes".to_owned(),
            Kind::EmptyMatrix => "expands to nothing".to_owned(),
            Kind::NoSuchAxis { .. } => "no such axis".to_owned(),
            Kind::NoSuchAxisValue { .. } => "not a value of the axis".to_owned(),
            Kind::NoMatch { .. } => "matches no run".to_owned(),
            Kind::MissingData { .. } => "not found".to_owned(),
            Kind::KindLacksField { choice, kind, .. } => format!("{choice} is `{kind}` here"),
            Kind::UnknownDevice { .. } => "unknown device".to_owned(),
            Kind::KvTimesHeads { .. } => "d-kv x heads != d-model".to_owned(),
            Kind::HeadsDivide { heads, .. } => count(*heads, "head"),
            Kind::MinAbovePeak { .. } => "above the peak".to_owned(),
            Kind::SourceNeedsPath { .. } => "needs path=".to_owned(),
            Kind::NoTrainList => "no training pieces".to_owned(),
            Kind::NoPattern => "needs `regex`".to_owned(),
            Kind::BadPattern { .. } => "not a regular expression".to_owned(),
            Kind::SplitOverlap { .. } => "listed twice".to_owned(),
            Kind::ColumnNeedsParquet => "needs a parquet source".to_owned(),
            Kind::TableNeedsPath => "needs path=".to_owned(),
            Kind::NoColumnName => "needs name=".to_owned(),
            Kind::GroupColumnNeedsTable => "needs table=".to_owned(),
            Kind::FractionsSum { sum } => format!("sums to {sum}"),
            Kind::NoTrainFraction => "no training data".to_owned(),
            Kind::NoEdges { name } => format!("no {name}-edges"),
            Kind::OriginalBins { asked, .. } => count(*asked, "bin"),
            Kind::BinsContradictEdges { asked, .. } => format!("{} asked", count(*asked, "bin")),
            Kind::EdgesStart { .. } => "must start at 0".to_owned(),
            Kind::EdgesIncreasing { .. } => "not increasing".to_owned(),
            Kind::VelocityEdges => "bad velocity edges".to_owned(),
            Kind::NeedsSamples { .. } => "needs samples=N".to_owned(),
            Kind::SamplerArguments { found, .. } => count(*found, "value"),
            Kind::SampleRange { .. } => "not above the low end".to_owned(),
            Kind::LogOfNonPositive { .. } => "not above 0".to_owned(),
            Kind::BadWeights { .. } => "bad weights".to_owned(),
            Kind::TooFewDistinct { drawn, .. } => format!("only {drawn} distinct"),
            Kind::ZipRowTwice { first, .. } => format!("the same as row {first}"),
            Kind::TooManyCells { cells, .. } => format!("{cells} cells"),
            Kind::CannotWatch { .. } => "cannot be watched".to_owned(),
            Kind::UnknownSearch { .. } => "unknown search".to_owned(),
            Kind::SearchNeeds { property, .. } => format!("needs {property}="),
            Kind::SearchValue { property, .. } => property.clone(),
            Kind::SearchPlan { .. } => "this search".to_owned(),
            Kind::EarlyStopOff { .. } => "early stopping is off".to_owned(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Syntax { message, .. } => write!(f, "KDL syntax error: {message}"),
            Kind::TooDeep { line, limit } => write!(f, "children nest more than {limit} levels deep (line {line})"),
            Kind::Unreadable { path, error } => write!(f, "cannot read `{path}`: {error}"),
            Kind::NotUtf8 { path, offset, line } => write!(
                f,
                "`{path}` is not UTF-8 text: byte {offset} (line {line}) starts an invalid sequence"
            ),
            Kind::ExtendsCycle => f.write_str("`extends` makes a cycle"),
            Kind::NoExperiment => write!(f, "the file declares no `experiment NAME {{ ... }}`"),
            Kind::UnknownTopLevel { name } => write!(
                f,
                "unknown top-level node `{name}`: a file holds one `experiment NAME {{ ... }}`"
            ),
            Kind::SecondExperiment => f.write_str("a file declares one experiment"),
            Kind::SetTwice { path } => write!(f, "`{path}` is set twice"),
            Kind::VariantTwice { name } => write!(f, "variant `{name}` is declared twice"),
            Kind::NotAString { what, expected } => write!(f, "`{what}` needs {expected}"),
            Kind::NeedsValue { what, expected } => write!(f, "`{what}` needs {expected}"),
            Kind::NeedsValues { what } => write!(f, "`{what}` needs one or more values"),
            Kind::TakesOneValue { what } => write!(f, "`{what}` takes one value"),
            Kind::TakesNoProperty { node, key } => write!(f, "`{node}` takes no property `{key}`"),
            Kind::TakesNoArguments { node } => write!(f, "`{node}` takes no arguments"),
            Kind::TakesNoChildren { node } => write!(f, "`{node}` takes no children"),
            Kind::CannotBe { path, found } => write!(f, "`{path}` cannot be {found}"),
            Kind::WrongType { path, expected, found } => write!(f, "`{path}` expects {expected}, not {found}"),
            Kind::OutOfRange { path, range, value } => write!(f, "`{path}` must be in {range}, not {value}"),
            Kind::UnknownWord { path, word, words } => write!(f, "`{path}` cannot be `{word}`: choose one of {words}"),
            Kind::Misplaced { name } => write!(f, "`{name}` cannot be set inside a variant"),
            Kind::SectionArgument { name } => write!(f, "`{name}` takes properties or children, not arguments"),
            Kind::UnknownField { name, place } => write!(f, "unknown field `{name}` in {place}"),
            Kind::UnknownProperty { name, node } => write!(f, "unknown property `{name}` on `{node}`"),
            Kind::NeedsKind { node, kinds } => write!(f, "`{node}` needs a kind: {kinds}"),
            Kind::KindNotWord { node, kinds, found } => write!(f, "`{node}` needs a kind ({kinds}), not {found}"),
            Kind::UnknownKind { node, word } => write!(f, "unknown {node} `{word}`"),
            Kind::KindArgument { node, kind } => write!(f, "`{node} {kind}` takes properties, not more arguments"),
            Kind::KindProperty { node, kind, name } => write!(f, "`{node} {kind}` has no property `{name}`"),
            Kind::UnknownMatrixNode { name } => write!(f, "unknown node `{name}` in `matrix`"),
            Kind::NotAnAxis => f.write_str("a `zip` holds only `axis` nodes"),
            Kind::ZipLength { .. } => f.write_str("the axes of a `zip` must have the same number of values"),
            Kind::ZipTooShort => f.write_str("a `zip` needs at least two axes"),
            Kind::EmptyAxis { axis } => write!(f, "axis `{axis}` has no values"),
            Kind::NotAVariantName => f.write_str("an axis over variants lists variant names"),
            Kind::ListAxis { path } => write!(f, "`{path}` holds a list; vary it with a bundle axis"),
            Kind::SameValueTwice { axis, first, written } => {
                write!(f, "axis `{axis}` lists `{first}` twice, written `{written}` here")
            }
            Kind::NoSuchKind { path, word } => write!(f, "`{path}` has no kind `{word}`"),
            Kind::UnknownAxisPath { path } => write!(f, "unknown axis path `{path}`"),
            Kind::LabelTwice { axis, label } => write!(f, "axis `{axis}` lists `{label}` twice"),
            Kind::EmptyRule { node } => write!(f, "`{node}` needs axis=value properties, e.g. `schedule=constant`"),
            Kind::IncompleteExpect => f.write_str("`expect` needs a metric and the runs it is about"),
            Kind::UnknownMetric { word } => write!(f, "unknown metric `{word}`"),
            Kind::SelectorNotString => f.write_str("the runs are named by a string"),
            Kind::ExpectArguments => f.write_str("`expect` takes a metric and one selector"),
            Kind::BetterThanNotString => f.write_str("`better-than` names runs with a string"),
            Kind::RatioRange => f.write_str("`ratio` must be a number >= 1"),
            Kind::SecondBound => f.write_str("give one of `below` and `above`"),
            Kind::BoundNotNumber { word } => write!(f, "`{word}` needs a number"),
            Kind::UnknownExpectProperty { name } => write!(f, "unknown property `{name}` on `expect`"),
            Kind::TwoClaims => f.write_str("an `expect` makes one claim: better-than=, below= or above="),
            Kind::NoClaim => f.write_str("`expect` needs better-than=, below= or above="),
            Kind::RatioWithoutBetterThan => f.write_str("`ratio` goes with `better-than`"),
            Kind::UnknownVariant { name } => write!(f, "unknown variant `{name}`"),
            Kind::AxisTwice { axis } => write!(f, "axis `{axis}` appears twice"),
            Kind::IncompleteInclude { missing } => {
                write!(f, "`include` must give a value for every axis; missing: {missing}")
            }
            Kind::EmptyMatrix => f.write_str("the matrix expands to zero runs"),
            Kind::NoSuchAxis { axis } => write!(f, "no axis `{axis}` in the matrix"),
            Kind::NoSuchAxisValue { axis, label } => write!(f, "axis `{axis}` has no value `{label}`"),
            Kind::NoMatch { selector } => write!(f, "`{selector}` matches no planned run"),
            Kind::MissingData { path, what } => write!(f, "the {what} `{path}` does not exist"),
            Kind::KindLacksField { choice, field, kind } => write!(
                f,
                "`{choice}.{field}` varies, but this run's {choice} `{kind}` has no `{field}`"
            ),
            Kind::UnknownDevice { device } => write!(f, "unknown device `{device}`"),
            Kind::KvTimesHeads { d_kv, heads, d_model } => write!(
                f,
                "the vanilla transformer needs d-kv x heads = d-model, but {d_kv} x {heads} != {d_model}"
            ),
            Kind::HeadsDivide { d_model, heads } => {
                write!(f, "d-model ({d_model}) must be divisible by heads ({heads})")
            }
            Kind::MinAbovePeak { min, peak } => {
                write!(f, "the cosine schedule's min ({min}) is above its peak ({peak})")
            }
            Kind::SourceNeedsPath { kind } => {
                write!(f, "`source {kind}` needs the folder: `source {kind} path=\"...\"`")
            }
            Kind::NoTrainList => f.write_str("`split files` needs a `train` list"),
            Kind::TableNeedsPath => f.write_str(
                "`split table` needs the metadata table: `split table path=\"maestro-v3.0.0.csv\"` (a CSV with a header row)",
            ),
            Kind::NoColumnName => {
                f.write_str("`group column` needs the column that names each group: `group column name=canonical_title`")
            }
            Kind::GroupColumnNeedsTable => f.write_str(
                "`group column` needs `table=\"...\"` (a CSV with a header row): only a parquet source has metadata of its own",
            ),
            Kind::NoPattern => f.write_str("`group pattern` needs `regex=\"...\"`, matched against each file's path"),
            Kind::BadPattern { problem } => write!(f, "the group pattern is not a regular expression: {problem}"),
            Kind::SplitOverlap { file, first, second } => write!(
                f,
                "`{file}` is in both `{first}` and `{second}`: splits are by piece and must not overlap"
            ),
            Kind::ColumnNeedsParquet => {
                f.write_str("`split column` reads the parquet's split column; it needs `source hf-parquet`")
            }
            Kind::FractionsSum { .. } => f.write_str("the split fractions must add up to 1"),
            Kind::NoTrainFraction => f.write_str("the training fraction must be above 0"),
            Kind::NoEdges { name } => write!(f, "`edges=explicit` needs `{name}-edges` inside `quantize {{ ... }}`"),
            Kind::OriginalBins { name, asked } => {
                write!(f, "the original edge table has 3 or 5 {name} bins, not {asked}")
            }
            Kind::BinsContradictEdges { name, asked, made } => write!(
                f,
                "`{name}={asked}` contradicts `{name}-edges`, which make {}",
                count(*made, "bin")
            ),
            Kind::EdgesStart { name } => write!(f, "{name} edges must start at 0"),
            Kind::EdgesIncreasing { name } => write!(f, "{name} edges must be strictly increasing"),
            Kind::VelocityEdges => f.write_str("velocity edges need at least two values and close at or below 128"),
            Kind::NeedsSamples { sampler } => write!(f, "a `{sampler}` axis needs `samples=N`: how many values to draw"),
            Kind::SamplerArguments {
                sampler,
                expected,
                found,
            } => write!(f, "`{sampler}` takes {expected}, not {}", count(*found, "value")),
            Kind::SampleRange { low, high } => {
                write!(f, "the range `{low} {high}` is empty: its low end must be below its high end")
            }
            Kind::LogOfNonPositive { low } => write!(f, "`log-uniform` needs a range above 0, not one from {low}"),
            Kind::BadWeights { reason } => write!(f, "`weights` must be {reason}"),
            Kind::TooFewDistinct { axis, samples, drawn } => write!(
                f,
                "axis `{axis}` asks for {samples} distinct values; its range gives only {drawn}"
            ),
            Kind::TooManyCells { cells, limit } => {
                write!(f, "this matrix crosses into {cells} cells; at most {limit} can be planned")
            }
            Kind::CannotWatch { watcher, metric, why } => write!(f, "{watcher} cannot watch `{metric}`: it {why}"),
            Kind::UnknownSearch { word } => write!(f, "unknown search `{word}`"),
            Kind::SearchNeeds { property, example } => {
                write!(f, "`search halving` needs {property}= (e.g. {property}={example})")
            }
            Kind::SearchValue { property, message } => write!(f, "search {property}: {message}"),
            Kind::SearchPlan { message } => write!(f, "{message}"),
            Kind::EarlyStopOff { field } => {
                write!(f, "early-stop sets {field} but no metric, so it would never stop")
            }
            Kind::ZipRowTwice { row, first } => write!(
                f,
                "row {row} of this `zip` draws the same values as row {first}, which would plan one run twice"
            ),
        }
    }
}

/// One problem in an experiment file.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What is wrong; it gives the code, the label and the message.
    pub kind: Kind,
    /// Where; `None` for problems about a whole file.
    pub span: Option<Span>,
    /// A second place that explains the first (e.g. "first set here").
    pub related: Option<(Span, String)>,
    /// How to fix it.
    pub help: Option<String>,
    /// Which run it is about, when the planner found it in one combination.
    pub run: Option<String>,
}

impl Problem {
    /// A problem at a span.
    pub fn at(kind: Kind, span: Span) -> Self {
        Problem {
            kind,
            span: Some(span),
            related: None,
            help: None,
            run: None,
        }
    }

    /// A problem with no span (e.g. a file that cannot be read).
    pub fn whole(kind: Kind) -> Self {
        Problem {
            kind,
            span: None,
            related: None,
            help: None,
            run: None,
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

    /// The message: the kind's, naming the run when there is one.
    pub fn message(&self) -> String {
        match &self.run {
            Some(run) => format!("{} (in the run {run})", self.kind),
            None => self.kind.to_string(),
        }
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 run`, `3 runs`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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
    message: String,
    source: Option<NamedSource<Arc<String>>>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
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
        let span = self.problem.span.as_ref()?;
        let label = self.problem.kind.label();
        let mut labels = vec![LabeledSpan::new_primary_with_span(Some(label), span.range)];
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
                let source = problem.span.as_ref().map(|span| sources.named(span.file));
                let message = problem.message();
                Rendered {
                    problem,
                    message,
                    source,
                }
            })
            .collect();
        SpecError { summary, problems }
    }

    /// The problems' codes, in order (for tests and tools).
    pub fn codes(&self) -> Vec<&'static str> {
        self.problems.iter().map(|r| r.problem.kind.code()).collect()
    }

    /// The problems' messages, in order.
    pub fn messages(&self) -> Vec<&str> {
        self.problems.iter().map(|r| r.message.as_str()).collect()
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
    fn a_kind_gives_its_code_label_and_message() {
        let kind = Kind::BinsContradictEdges {
            name: "velocity".to_owned(),
            asked: 4,
            made: 3,
        };
        assert_eq!(kind.code(), "inconsistent");
        assert_eq!(kind.label(), "4 bins asked");
        assert_eq!(
            kind.to_string(),
            "`velocity=4` contradicts `velocity-edges`, which make 3 bins"
        );
        let kind = Kind::HeadsDivide { d_model: 10, heads: 1 };
        assert_eq!((kind.code(), kind.label().as_str()), ("inconsistent", "1 head"));
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
