//! `expect METRIC SUBJECT better-than=OTHER ratio=R | below=X | above=X`.

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, written};
use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{Claim, Expectation, Metric};
use crate::source::{Span, Spanned};
use crate::value::Value;

impl Parser {
    pub(super) fn expectation(&mut self, node: &KdlNode) -> Option<Expectation> {
        self.no_children(node);
        let span = self.node_span(node);
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let (Some(metric_entry), Some(subject_entry)) = (args.first(), args.get(1)) else {
            self.report(
                Problem::at(
                    Kind::MissingValue,
                    span,
                    "incomplete",
                    "`expect` needs a metric and the runs it is about",
                )
                .help("e.g. `expect val-dist \"midi-translation\" better-than=\"hf-t5\" ratio=2.0`"),
            );
            return None;
        };
        let metric = self.metric(metric_entry);
        let subject_span = self.span(subject_entry.span());
        let subject = match subject_entry.value().as_string() {
            Some(s) => Spanned::new(s.to_owned(), subject_span),
            None => {
                self.report(Problem::at(
                    Kind::WrongType,
                    subject_span,
                    "not a selector",
                    "the runs are named by a string",
                ));
                return None;
            }
        };
        for extra in args.iter().skip(2) {
            self.report(Problem::at(
                Kind::UnexpectedArgument,
                self.span(extra.span()),
                "unexpected",
                "`expect` takes a metric and one selector",
            ));
        }
        let written_claim = self.claim_properties(node);
        let claim = self.claim(&written_claim, span)?;
        if let (Some((_, ratio_span)), false) = (written_claim.ratio, matches!(claim, Claim::BetterThan { .. })) {
            self.report(Problem::at(
                Kind::Conflict,
                ratio_span,
                "needs better-than",
                "`ratio` goes with `better-than`",
            ));
        }
        Some(Expectation {
            metric: metric?,
            subject,
            claim,
            span,
        })
    }

    /// The metric named by the first argument; reported when unknown.
    fn metric(&mut self, entry: &KdlEntry) -> Option<Metric> {
        let word = entry.value().as_string().unwrap_or_default();
        let metric = Metric::ALL.iter().find(|(n, _)| *n == word).map(|(_, m)| *m);
        if metric.is_none() {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            let help =
                did_you_mean(word, names.iter().copied()).unwrap_or_else(|| format!("metrics: {}", names.join(", ")));
            self.report(
                Problem::at(
                    Kind::UnknownMetric,
                    self.span(entry.span()),
                    "unknown",
                    format!("unknown metric `{}`", written(entry)),
                )
                .help(help),
            );
        }
        metric
    }

    /// The claim's properties, each checked on its own.
    fn claim_properties(&mut self, node: &KdlNode) -> WrittenClaim {
        let mut written = WrittenClaim::default();
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let entry_span = self.span(entry.span());
            let number = || Value::from_kdl(entry.value()).and_then(|v| v.as_f64());
            match key.value() {
                "better-than" => match entry.value().as_string() {
                    Some(other) => written.better_than = Some(Spanned::new(other.to_owned(), entry_span)),
                    None => self.report(Problem::at(
                        Kind::WrongType,
                        entry_span,
                        "not a selector",
                        "`better-than` names runs with a string",
                    )),
                },
                "ratio" => match number() {
                    Some(r) if r >= 1.0 => written.ratio = Some((r, entry_span)),
                    _ => self.report(Problem::at(
                        Kind::OutOfRange,
                        entry_span,
                        "out of range",
                        "`ratio` must be a number >= 1",
                    )),
                },
                word @ ("below" | "above") => match number() {
                    Some(x) if written.bound.is_none() => written.bound = Some((word == "below", x)),
                    Some(_) => self.report(Problem::at(
                        Kind::Conflict,
                        entry_span,
                        "second bound",
                        "give one of `below` and `above`",
                    )),
                    None => self.report(Problem::at(
                        Kind::WrongType,
                        entry_span,
                        "not a number",
                        format!("`{word}` needs a number"),
                    )),
                },
                other => {
                    let help = did_you_mean(other, ["better-than", "ratio", "below", "above"])
                        .unwrap_or_else(|| "`expect` takes better-than= (with ratio=), below= or above=".to_owned());
                    self.report(
                        Problem::at(
                            Kind::UnknownProperty,
                            self.span(key.span()),
                            "unknown",
                            format!("unknown property `{other}` on `expect`"),
                        )
                        .help(help),
                    );
                }
            }
        }
        written
    }

    /// The one claim the properties make.
    fn claim(&mut self, written: &WrittenClaim, span: Span) -> Option<Claim> {
        let claim = match (written.better_than.clone(), written.bound) {
            (Some(other), None) => Claim::BetterThan {
                other,
                ratio: written.ratio.map_or(1.0, |(r, _)| r),
            },
            (None, Some((true, x))) => Claim::Below(x),
            (None, Some((false, x))) => Claim::Above(x),
            (Some(_), Some(_)) => {
                self.report(Problem::at(
                    Kind::Conflict,
                    span,
                    "two claims",
                    "an `expect` makes one claim: better-than=, below= or above=",
                ));
                return None;
            }
            (None, None) => {
                self.report(Problem::at(
                    Kind::MissingValue,
                    span,
                    "no claim",
                    "`expect` needs better-than=, below= or above=",
                ));
                return None;
            }
        };
        Some(claim)
    }
}

/// What an `expect` node's properties say, before they are checked together.
#[derive(Default)]
struct WrittenClaim {
    better_than: Option<Spanned<String>>,
    ratio: Option<(f64, Span)>,
    /// (is it `below`, the bound).
    bound: Option<(bool, f64)>,
}
