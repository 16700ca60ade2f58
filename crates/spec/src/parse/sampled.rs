//! Sampled axes: `axis PATH log-uniform LO HI samples=N digits=D`,
//! `uniform LO HI`, `int-uniform LO HI` and `choice V1 V2 ... weights="2 1"`.
//! The parser checks the bounds, counts and weights; the values are drawn
//! later (`crate::sample`), once the experiment's seed is known.

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, written};
use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{Distribution, SampleTarget, Sampling};
use crate::schema::{Field, Type};
use crate::source::Span;
use crate::value::Value;

/// The samplers, as written after an axis's path.
const SAMPLERS: [&str; 4] = ["uniform", "log-uniform", "int-uniform", "choice"];

/// Significant digits a drawn number keeps unless `digits=` says otherwise.
pub const DEFAULT_DIGITS: u32 = 3;

/// The most values one sampled axis may draw.
pub const MAX_SAMPLES: i64 = 10_000;

/// Whether an axis over `field` whose first value is `first` is a sampled
/// one: a sampler's name over a numeric field, or `choice` with `samples=`
/// over any field (a word field may take the value `choice` itself).
pub(super) fn is_sampled(node: &KdlNode, field: &Field, first: Option<&KdlEntry>) -> bool {
    let Some(word) = first.and_then(|e| e.value().as_string()) else {
        return false;
    };
    let numeric = matches!(field.ty, Type::Int { .. } | Type::Float { .. });
    let has_samples = node
        .entries()
        .iter()
        .any(|e| e.name().is_some_and(|k| k.value() == "samples"));
    (numeric && SAMPLERS.contains(&word)) || (word == "choice" && has_samples)
}

impl Parser {
    /// The sampling of `axis PATH SAMPLER ...` over `field`; `args` are the
    /// arguments after the path (the sampler's name first).
    pub(super) fn sampling(
        &mut self,
        node: &KdlNode,
        name_span: Span,
        field: &'static Field,
        target: SampleTarget,
        args: &[&KdlEntry],
    ) -> Option<Sampling> {
        let span = name_span;
        let sampler = args[0].value().as_string().unwrap_or_default().to_owned();
        let bounds = &args[1..];
        let properties = self.sampler_properties(node, &sampler);
        let distribution = match sampler.as_str() {
            "uniform" | "log-uniform" => self.continuous(&sampler, field, bounds, span),
            "int-uniform" => self.integers(field, bounds, span),
            _ => self.choice(field, bounds, properties.weights, span),
        };
        let samples = properties.samples.or_else(|| {
            if properties.samples_written {
                return None; // reported as out of range
            }
            self.report(
                Problem::at(
                    Kind::NeedsSamples {
                        sampler: sampler.clone(),
                    },
                    span,
                )
                .help(format!("e.g. `samples=8` after the bounds; at most {MAX_SAMPLES}")),
            );
            None
        });
        Some(Sampling {
            distribution: distribution?,
            samples: samples?,
            digits: properties.digits.unwrap_or(DEFAULT_DIGITS),
            target,
            field,
            span,
        })
    }

    /// `samples=`, `digits=` and `weights=`, each checked; other properties
    /// are reported.
    fn sampler_properties(&mut self, node: &KdlNode, sampler: &str) -> SamplerProperties {
        let mut found = SamplerProperties::default();
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let span = self.span(entry.span());
            match key.value() {
                "samples" => {
                    found.samples_written = true;
                    found.samples = self.whole(entry, "samples", 1, MAX_SAMPLES).map(|n| n as u32);
                }
                "digits" if matches!(sampler, "uniform" | "log-uniform") => {
                    found.digits = self.whole(entry, "digits", 1, 15).map(|n| n as u32);
                }
                "weights" if sampler == "choice" => match entry.value().as_string() {
                    Some(text) => found.weights = Some((text.to_owned(), span)),
                    None => self.report(
                        Problem::at(
                            Kind::BadWeights {
                                reason: "a string of numbers".to_owned(),
                            },
                            span,
                        )
                        .help("e.g. `weights=\"2 1 1\"`, one per value"),
                    ),
                },
                other => {
                    let allowed: &[&str] = match sampler {
                        "uniform" | "log-uniform" => &["samples", "digits"],
                        "choice" => &["samples", "weights"],
                        _ => &["samples"],
                    };
                    let help = did_you_mean(other, allowed.iter().copied())
                        .unwrap_or_else(|| format!("`{sampler}` takes {}", allowed.join(", ")));
                    self.report(
                        Problem::at(
                            Kind::UnknownProperty {
                                name: other.to_owned(),
                                node: format!("axis … {sampler}"),
                            },
                            self.span(key.span()),
                        )
                        .help(help),
                    );
                }
            }
        }
        found
    }

    /// A whole-number property in `min..=max`.
    fn whole(&mut self, entry: &KdlEntry, name: &str, min: i64, max: i64) -> Option<i64> {
        let span = self.span(entry.span());
        match Value::from_kdl(entry.value()) {
            Some(Value::Int(n)) if (min..=max).contains(&n) => Some(n),
            other => {
                let value = other.map_or_else(|| entry.value().to_string(), |v| v.to_string());
                self.report(Problem::at(
                    Kind::OutOfRange {
                        path: name.to_owned(),
                        range: format!("{min}..={max}"),
                        value,
                    },
                    span,
                ));
                None
            }
        }
    }

    /// `uniform LO HI` and `log-uniform LO HI`: two valid values of the
    /// field, LO below HI, and above 0 for the logarithm.
    fn continuous(&mut self, sampler: &str, field: &Field, bounds: &[&KdlEntry], span: Span) -> Option<Distribution> {
        let [low_entry, high_entry] = self.two_bounds(sampler, bounds, span)?;
        let low = self.entry_value(low_entry, field).and_then(|v| v.as_f64());
        let high = self.entry_value(high_entry, field).and_then(|v| v.as_f64());
        let (low, high) = (low?, high?);
        let low_span = self.span(low_entry.span());
        if sampler == "log-uniform" && low <= 0.0 {
            self.report(
                Problem::at(
                    Kind::LogOfNonPositive {
                        low: written(low_entry),
                    },
                    low_span,
                )
                .help("a log-uniform range lies above 0; use `uniform` for a range that reaches 0"),
            );
            return None;
        }
        if low >= high {
            return self.low_not_below_high(low_entry, high_entry);
        }
        Some(if sampler == "log-uniform" {
            Distribution::LogUniform { low, high }
        } else {
            Distribution::Uniform { low, high }
        })
    }

    /// `int-uniform LO HI`: two whole numbers, valid values of the field.
    fn integers(&mut self, field: &Field, bounds: &[&KdlEntry], span: Span) -> Option<Distribution> {
        let [low_entry, high_entry] = self.two_bounds("int-uniform", bounds, span)?;
        let mut whole = |entry: &KdlEntry| {
            let checked = self.entry_value(entry, field);
            match Value::from_kdl(entry.value()) {
                Some(Value::Int(n)) => checked.map(|_| n),
                _ => {
                    if checked.is_some() {
                        self.report(Problem::at(
                            Kind::WrongType {
                                path: "int-uniform".to_owned(),
                                expected: "whole-number bounds".to_owned(),
                                found: "a number with a fraction",
                            },
                            self.span(entry.span()),
                        ));
                    }
                    None
                }
            }
        };
        let (low, high) = (whole(low_entry), whole(high_entry));
        let (low, high) = (low?, high?);
        if low >= high {
            return self.low_not_below_high(low_entry, high_entry);
        }
        Some(Distribution::IntUniform { low, high })
    }

    /// `choice V1 V2 ...`: each a valid value of the field, none twice; the
    /// weights, when given, one positive number per value.
    fn choice(
        &mut self,
        field: &Field,
        listed: &[&KdlEntry],
        weights: Option<(String, Span)>,
        span: Span,
    ) -> Option<Distribution> {
        if listed.is_empty() {
            self.report(
                Problem::at(
                    Kind::SamplerArguments {
                        sampler: "choice".to_owned(),
                        expected: "one or more values".to_owned(),
                        found: 0,
                    },
                    span,
                )
                .help("e.g. `axis model.dropout choice 0 0.1 0.2 samples=2`"),
            );
            return None;
        }
        let mut values = Vec::new();
        let mut seen = Vec::new();
        for entry in listed {
            if let Some(value) = self.entry_value(entry, field) {
                let label = written(entry);
                self.same_value_twice(field.path, (&value, &label, self.span(entry.span())), &mut seen);
                values.push((value, label));
            }
        }
        let weights = match weights {
            None => vec![1.0; listed.len()],
            Some((text, at)) => self.weights(&text, listed.len(), at)?,
        };
        (values.len() == listed.len()).then_some(Distribution::Choice { values, weights })
    }

    /// `weights="2 1 1"`: `count` positive finite numbers.
    fn weights(&mut self, text: &str, count: usize, span: Span) -> Option<Vec<f64>> {
        let parsed: Option<Vec<f64>> = text
            .split_whitespace()
            .map(|w| w.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0))
            .collect();
        let reason = match &parsed {
            None => "positive numbers".to_owned(),
            Some(weights) if weights.len() != count => {
                format!("{count} numbers, one per value (found {})", weights.len())
            }
            Some(_) => return parsed,
        };
        self.report(Problem::at(Kind::BadWeights { reason }, span).help("e.g. `weights=\"2 1 1\"`, one per value"));
        None
    }

    /// The two bounds of a range sampler.
    fn two_bounds<'e>(&mut self, sampler: &str, bounds: &[&'e KdlEntry], span: Span) -> Option<[&'e KdlEntry; 2]> {
        match bounds {
            [low, high] => Some([*low, *high]),
            _ => {
                self.report(
                    Problem::at(
                        Kind::SamplerArguments {
                            sampler: sampler.to_owned(),
                            expected: "LO and HI".to_owned(),
                            found: bounds.len(),
                        },
                        span,
                    )
                    .help(format!("e.g. `axis schedule.lr {sampler} 1e-5 1e-3 samples=8`")),
                );
                None
            }
        }
    }

    fn low_not_below_high(&mut self, low: &KdlEntry, high: &KdlEntry) -> Option<Distribution> {
        self.report(
            Problem::at(
                Kind::SampleRange {
                    low: written(low),
                    high: written(high),
                },
                self.span(high.span()),
            )
            .also(self.span(low.span()), "the low end")
            .help("write the low end first: `LO HI` with LO < HI"),
        );
        None
    }
}

/// What a sampled axis's properties say.
#[derive(Default)]
struct SamplerProperties {
    samples: Option<u32>,
    samples_written: bool,
    digits: Option<u32>,
    weights: Option<(String, Span)>,
}
