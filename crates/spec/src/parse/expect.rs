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
                Problem::at(Kind::IncompleteExpect, span)
                    .help("e.g. `expect val-dist \"midi-translation\" better-than=\"hf-t5\" ratio=2.0`"),
            );
            return None;
        };
        let metric = self.metric(metric_entry);
        let subject_span = self.span(subject_entry.span());
        let subject = match subject_entry.value().as_string() {
            Some(s) => Spanned::new(s.to_owned(), subject_span),
            None => {
                self.report(Problem::at(Kind::SelectorNotString, subject_span));
                return None;
            }
        };
        for extra in args.iter().skip(2) {
            self.report(Problem::at(Kind::ExpectArguments, self.span(extra.span())));
        }
        let written_claim = self.claim_properties(node);
        let claim = self.claim(&written_claim, span)?;
        if let (Some((_, ratio_span)), false) = (written_claim.ratio, matches!(claim, Claim::BetterThan { .. })) {
            self.report(Problem::at(Kind::RatioWithoutBetterThan, ratio_span));
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
        let metric = Metric::named(word);
        if metric.is_none() {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            let help =
                did_you_mean(word, names.iter().copied()).unwrap_or_else(|| format!("metrics: {}", names.join(", ")));
            self.report(Problem::at(Kind::UnknownMetric { word: written(entry) }, self.span(entry.span())).help(help));
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
                    None => self.report(Problem::at(Kind::BetterThanNotString, entry_span)),
                },
                "ratio" => match number() {
                    Some(r) if r >= 1.0 => written.ratio = Some((r, entry_span)),
                    _ => self.report(Problem::at(Kind::RatioRange, entry_span)),
                },
                word @ ("below" | "above") => match number() {
                    Some(x) if written.bound.is_none() => written.bound = Some((word == "below", x)),
                    Some(_) => self.report(Problem::at(Kind::SecondBound, entry_span)),
                    None => self.report(Problem::at(Kind::BoundNotNumber { word: word.to_owned() }, entry_span)),
                },
                other => {
                    let help = did_you_mean(other, ["better-than", "ratio", "below", "above"])
                        .unwrap_or_else(|| "`expect` takes better-than= (with ratio=), below= or above=".to_owned());
                    self.report(
                        Problem::at(
                            Kind::UnknownExpectProperty { name: other.to_owned() },
                            self.span(key.span()),
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
                self.report(Problem::at(Kind::TwoClaims, span));
                return None;
            }
            (None, None) => {
                self.report(Problem::at(Kind::NoClaim, span));
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
