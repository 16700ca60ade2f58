//! The typed form of one experiment file, before `extends` is followed and
//! before anything is expanded, and of the [`Experiment`] its chain merges
//! into. Every value keeps its span.

use std::path::PathBuf;

use super::source::{Span, Spanned};
use super::value::Value;

/// One change to a run's configuration, as written in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Override {
    /// A plain field set to a value.
    Set {
        /// The field's path (from the schema).
        path: &'static str,
        /// The value, already checked against the field's type and range.
        value: Value,
        /// Where it was written.
        span: Span,
    },
    /// One field of a choice, whatever kind the choice has (`axis schedule.warmup 1000 2000`).
    /// The planner checks that the run's kind has that field.
    Tweak {
        /// The choice's path (from the schema).
        choice: &'static str,
        /// The field's name within the kind.
        field: &'static str,
        /// The value, already checked against the field's type and range.
        value: Value,
        /// Where it was written.
        span: Span,
    },
    /// A choice set to one kind; the kind's fields not listed take their defaults.
    Choose {
        /// The choice's path (from the schema).
        path: &'static str,
        /// The kind.
        kind: &'static str,
        /// The kind's fields that were written.
        fields: Vec<(&'static str, Value, Span)>,
        /// Where the kind was written.
        span: Span,
    },
}

impl Override {
    /// The path this override sets.
    pub fn path(&self) -> String {
        match self {
            Override::Set { path, .. } | Override::Choose { path, .. } => (*path).to_owned(),
            Override::Tweak { choice, field, .. } => format!("{choice}.{field}"),
        }
    }

    /// Where it was written.
    pub fn span(&self) -> Span {
        match self {
            Override::Set { span, .. } | Override::Tweak { span, .. } | Override::Choose { span, .. } => *span,
        }
    }
}

/// A named bundle of overrides (e.g. `midi-translation`).
#[derive(Debug, Clone)]
pub struct Variant {
    /// Its name.
    pub name: Spanned<String>,
    /// What it changes.
    pub overrides: Vec<Override>,
}

/// One value of a matrix axis.
#[derive(Debug, Clone)]
pub struct AxisValue {
    /// How runs with this value are labelled, e.g. `noam` or `256`.
    pub label: String,
    /// Where it was written.
    pub span: Span,
    /// What it changes (empty for an axis over variants: the planner takes
    /// the variant's overrides).
    pub overrides: Vec<Override>,
}

/// An axis: a name and the values it takes.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The field path, `variant`, or a bundle's name.
    pub name: Spanned<String>,
    /// The values, in order (for a sampled axis: empty until they are
    /// drawn, once the experiment's seed is known).
    pub values: Vec<AxisValue>,
    /// How its values are drawn, for a sampled axis.
    pub sampling: Option<Sampling>,
}

impl Axis {
    /// How many values the axis has, or will have once drawn.
    pub fn len(&self) -> usize {
        match &self.sampling {
            Some(sampling) if self.values.is_empty() => sampling.samples as usize,
            _ => self.values.len(),
        }
    }

    /// Whether the axis has (or will have) no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A sampled axis: `axis schedule.lr log-uniform 1e-5 1e-3 samples=8`.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// What the values are drawn from.
    pub distribution: Distribution,
    /// How many values.
    pub samples: u32,
    /// Significant digits each drawn number is rounded to (continuous
    /// distributions), so labels read well and ids do not hang on the last
    /// bit of a float.
    pub digits: u32,
    /// The overrides a value makes: plain fields (several for an alias) or
    /// one field of a choice.
    pub target: SampleTarget,
    /// The field's type, which every drawn value is checked against.
    pub field: &'static crate::schema::Field,
    /// The `axis` node.
    pub span: Span,
}

/// Where a sampled value goes.
#[derive(Debug, Clone)]
pub enum SampleTarget {
    /// Plain fields (an alias sets several).
    Fields(Vec<&'static str>),
    /// One field of a choice, whatever its kind.
    ChoiceField {
        /// The choice's path.
        choice: &'static str,
        /// The field's name within the kind.
        field: &'static str,
    },
}

/// What a sampled axis draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform over `[low, high]`.
    Uniform {
        /// The low end.
        low: f64,
        /// The high end.
        high: f64,
    },
    /// Uniform in the logarithm over `[low, high]`, `0 < low`.
    LogUniform {
        /// The low end.
        low: f64,
        /// The high end.
        high: f64,
    },
    /// A whole number in `low..=high`, each equally likely.
    IntUniform {
        /// The low end.
        low: i64,
        /// The high end.
        high: i64,
    },
    /// One of the listed values, each with its weight.
    Choice {
        /// The values (checked against the field) with their labels as written.
        values: Vec<(Value, String)>,
        /// Their weights, positive (all 1 unless `weights=` is given).
        weights: Vec<f64>,
    },
}

/// An independent dimension of the matrix.
#[derive(Debug, Clone)]
pub enum Factor {
    /// One axis, crossed with the other factors.
    Axis(Axis),
    /// Several axes of equal length that vary together.
    Zip {
        /// The axes.
        axes: Vec<Axis>,
        /// The `zip` node.
        span: Span,
    },
}

impl Factor {
    /// The factor's axes.
    pub fn axes(&self) -> &[Axis] {
        match self {
            Factor::Axis(axis) => std::slice::from_ref(axis),
            Factor::Zip { axes, .. } => axes,
        }
    }
}

/// An `exclude` or `include` rule: axis name = value label pairs.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The pairs.
    pub pairs: Vec<(Spanned<String>, Spanned<String>)>,
    /// The rule's node.
    pub span: Span,
}

/// The `matrix` block.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The factors, crossed in order.
    pub factors: Vec<Factor>,
    /// Combinations to drop.
    pub exclude: Vec<Rule>,
    /// Combinations to add.
    pub include: Vec<Rule>,
    /// The `matrix` node.
    pub span: Span,
}

/// A metric an expectation can be about (serialised by its name in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Validation cross-entropy of the true velocity (every run).
    ValLoss,
    /// midi-translation's val loss: the label-smoothing KL divergence
    /// (label-smoothing runs only).
    ValLsKl,
    /// midi-hf-transformers' val loss: cross-entropy over `[CLS] + velocities`
    /// (decoder input shift-right only).
    #[serde(rename = "val-ce-cls")]
    ValCeWithCls,
    /// Teacher-forced mean |predicted - true| velocity on validation.
    ValDist,
    /// Greedy-decoded mean |predicted - true| velocity on validation.
    GreedyDist,
    /// std(predicted) / std(true) velocity on validation, teacher-forced.
    Flatness,
    /// The same, greedy-decoded: the write-up's "flat" picture.
    GreedyFlatness,
    /// Share of exactly right velocities on validation.
    Accuracy,
    /// Teacher-forced distance on the test split.
    TestDist,
    /// Greedy-decoded distance on the test split (every window of it).
    TestGreedyDist,
}

impl Metric {
    /// Every metric with its name in files.
    pub const ALL: [(&'static str, Metric); 10] = [
        ("val-loss", Metric::ValLoss),
        ("val-ls-kl", Metric::ValLsKl),
        ("val-ce-cls", Metric::ValCeWithCls),
        ("val-dist", Metric::ValDist),
        ("greedy-dist", Metric::GreedyDist),
        ("flatness", Metric::Flatness),
        ("greedy-flatness", Metric::GreedyFlatness),
        ("accuracy", Metric::Accuracy),
        ("test-dist", Metric::TestDist),
        ("test-greedy-dist", Metric::TestGreedyDist),
    ];

    /// Which way it improves.
    pub fn better(self) -> Better {
        match self {
            Metric::Accuracy => Better::Higher,
            Metric::Flatness | Metric::GreedyFlatness => Better::CloserToOne,
            Metric::ValLoss
            | Metric::ValLsKl
            | Metric::ValCeWithCls
            | Metric::ValDist
            | Metric::GreedyDist
            | Metric::TestDist
            | Metric::TestGreedyDist => Better::Lower,
        }
    }

    /// `a` against `b`, the better value first (`Less` when `a` is better):
    /// lower, higher for accuracy, nearer 1 for flatness.
    pub fn order(self, a: f64, b: f64) -> std::cmp::Ordering {
        match self.better() {
            Better::Lower => a.total_cmp(&b),
            Better::Higher => b.total_cmp(&a),
            Better::CloserToOne => (a - 1.0).abs().total_cmp(&(b - 1.0).abs()),
        }
    }

    /// Why it cannot be watched after each epoch whatever the run (by early
    /// stopping or a search): completes "`metric` ..."; `None` when it can
    /// be, given a run that evaluates it.
    pub fn unwatchable(self) -> Option<&'static str> {
        match self {
            Metric::TestDist | Metric::TestGreedyDist => Some("is measured once, on the test split, after training"),
            Metric::Flatness | Metric::GreedyFlatness => {
                Some("has no better direction (1 is best, and a run can miss it on either side)")
            }
            _ => None,
        }
    }

    /// The metric with this name in files.
    pub fn named(name: &str) -> Option<Metric> {
        Metric::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The metric's name in files.
    pub fn name(self) -> &'static str {
        Metric::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Losses and distances.
    Lower,
    /// Accuracy.
    Higher,
    /// Flatness: 1 when the predicted spread matches the true one.
    CloserToOne,
}

/// What an expectation claims.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The subject's metric is better than the other's by at least `ratio`.
    BetterThan {
        /// The selector of the runs compared against.
        other: Spanned<String>,
        /// How many times better (1: just better).
        ratio: f64,
    },
    /// The subject's metric is below a value.
    Below(f64),
    /// The subject's metric is above a value.
    Above(f64),
}

/// `expect METRIC SUBJECT ...`: a claim the report checks.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The metric.
    pub metric: Metric,
    /// Which runs: a variant name or `axis=label` pairs separated by spaces.
    pub subject: Spanned<String>,
    /// The claim.
    pub claim: Claim,
    /// The `expect` node.
    pub span: Span,
}

/// One experiment file, typed.
#[derive(Debug, Clone)]
pub struct ExperimentFile {
    /// The experiment's name.
    pub name: Spanned<String>,
    /// One-line description.
    pub description: Option<String>,
    /// The file this one extends.
    pub extends: Option<Spanned<String>>,
    /// Seeds per run.
    pub repeats: Option<Spanned<u32>>,
    /// The settings every run starts from.
    pub settings: Vec<Override>,
    /// Named bundles of overrides.
    pub variants: Vec<Variant>,
    /// The matrix, if any.
    pub matrix: Option<Matrix>,
    /// Claims for the report.
    pub expectations: Vec<Expectation>,
    /// A search over the matrix's runs, if any.
    pub search: Option<Search>,
}

/// `search halving metric=val-dist rungs="1 3 9" keep="1/3"`: successive
/// halving over the planned runs. Every run trains to the first rung (an
/// epoch count); the best `keep` share of them, by `metric` at that epoch,
/// goes on from its checkpoint to the next rung, and so on; the last rung is
/// the runs' `train.epochs`.
#[derive(Debug, Clone)]
pub struct Search {
    /// The metric runs are ranked by, lower better (higher for accuracy).
    pub metric: Spanned<Metric>,
    /// The epochs each rung trains to, increasing.
    pub rungs: Spanned<Vec<u64>>,
    /// The share of a rung's runs that go on, in (0, 1).
    pub keep: Spanned<f64>,
    /// The `search` node.
    pub span: Span,
}

/// An experiment with its `extends` chain merged.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The experiment's name (the last file's).
    pub name: Spanned<String>,
    /// One-line description.
    pub description: Option<String>,
    /// Seeds per run (default 1).
    pub repeats: u32,
    /// The settings every run starts from: the base file's, then this file's.
    pub settings: Vec<Override>,
    /// The variants of every file in the chain (a later one replaces an
    /// earlier one of the same name).
    pub variants: Vec<Variant>,
    /// The matrix of the last file that has one.
    pub matrix: Option<Matrix>,
    /// This file's expectations (they are not inherited).
    pub expectations: Vec<Expectation>,
    /// The search of the last file that has one.
    pub search: Option<Search>,
    /// The file the experiment was loaded from.
    pub path: PathBuf,
}
