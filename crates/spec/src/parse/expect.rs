//! `expect METRIC SUBJECT better-than=OTHER ratio=R | below=X | above=X`.

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, written};
use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{Claim, Expectation, Metric};
use crate::source::Spanned;
use crate::value::Value;

impl Parser {
    pub(super) fn expectation(&mut self, node: &KdlNode) -> Option<Expectation> {
        self.no_children(node);
        let span = self.node_span(node);
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
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
        let metric_span = self.span(metric_entry.span());
        let metric_word = metric_entry.value().as_string().unwrap_or_default();
        let metric = Metric::ALL.iter().find(|(n, _)| *n == metric_word).map(|(_, m)| *m);
        if metric.is_none() {
            let help = did_you_mean(metric_word, names.iter().copied())
                .unwrap_or_else(|| format!("metrics: {}", names.join(", ")));
            self.report(
                Problem::at(
                    Kind::UnknownMetric,
                    metric_span,
                    "unknown",
                    format!("unknown metric `{}`", written(metric_entry)),
                )
                .help(help),
            );
        }
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
        let mut better_than = None;
        let mut ratio = None;
        let mut bound = None;
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let entry_span = self.span(entry.span());
            let number = || Value::from_kdl(entry.value()).and_then(|v| v.as_f64());
            match key.value() {
                "better-than" => match entry.value().as_string() {
                    Some(other) => better_than = Some(Spanned::new(other.to_owned(), entry_span)),
                    None => self.report(Problem::at(
                        Kind::WrongType,
                        entry_span,
                        "not a selector",
                        "`better-than` names runs with a string",
                    )),
                },
                "ratio" => match number() {
                    Some(r) if r >= 1.0 => ratio = Some((r, entry_span)),
                    _ => self.report(Problem::at(
                        Kind::OutOfRange,
                        entry_span,
                        "out of range",
                        "`ratio` must be a number >= 1",
                    )),
                },
                word @ ("below" | "above") => match number() {
                    Some(x) if bound.is_none() => bound = Some((word == "below", x)),
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
        let claim = match (better_than, bound) {
            (Some(other), None) => Claim::BetterThan {
                other,
                ratio: ratio.map_or(1.0, |(r, _)| r),
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
        if let (Some((_, ratio_span)), false) = (ratio, matches!(claim, Claim::BetterThan { .. })) {
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
}
