//! `search halving metric=M rungs="1 3 9" keep="1/3" [budget=epochs]`.

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, written};
use crate::error::{Kind, Problem, did_you_mean};
use crate::file::{Better, Metric, Search};
use crate::source::Spanned;
use crate::value::Value;

/// The properties `search halving` takes.
const PROPERTIES: [&str; 4] = ["metric", "rungs", "keep", "budget"];

/// The most rungs, and the largest rung (the largest `train.epochs`).
const MAX_RUNGS: usize = 64;
const MAX_RUNG: u64 = 1 << 20;

impl Parser {
    pub(super) fn search(&mut self, node: &KdlNode) -> Option<Search> {
        self.no_children(node);
        let span = self.node_span(node);
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let kind_ok = match args.first() {
            Some(entry) if entry.value().as_string() == Some("halving") => true,
            Some(entry) => {
                let word = written(entry);
                let help = did_you_mean(&word, ["halving"])
                    .unwrap_or_else(|| "the search runner knows: halving (successive halving)".to_owned());
                self.report(Problem::at(Kind::UnknownSearch { word }, self.span(entry.span())).help(help));
                false
            }
            None => {
                self.report(
                    Problem::at(
                        Kind::SearchValue {
                            property: "kind".to_owned(),
                            message: "`search` needs its kind first: halving".to_owned(),
                        },
                        span,
                    )
                    .help("e.g. `search halving metric=val-dist rungs=\"1 3 9\" keep=\"1/3\"`"),
                );
                false
            }
        };
        for extra in args.iter().skip(1) {
            self.report(
                Problem::at(
                    Kind::SearchValue {
                        property: "halving".to_owned(),
                        message: "takes its settings as properties (metric=, rungs=, keep=)".to_owned(),
                    },
                    self.span(extra.span()),
                )
                .help("e.g. `search halving metric=val-dist rungs=\"1 3 9\" keep=\"1/3\"`"),
            );
        }
        let (mut metric, mut rungs, mut keep) = (None, None, None);
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let entry_span = self.span(entry.span());
            let text = entry.value().as_string();
            let bad = |message: String| {
                Problem::at(
                    Kind::SearchValue {
                        property: key.value().to_owned(),
                        message,
                    },
                    entry_span,
                )
            };
            match key.value() {
                "metric" => match text.and_then(Metric::named) {
                    Some(m) if matches!(m, Metric::TestDist | Metric::TestGreedyDist) => self.report(
                        bad(format!(
                            "`{}` is measured once, on the test split, after training",
                            m.name()
                        ))
                        .help("rank by a validation metric: val-loss, val-dist, greedy-dist or accuracy"),
                    ),
                    Some(m) if m.better() == Better::CloserToOne => self.report(
                        bad(format!("`{}` has no better direction (1 is best)", m.name()))
                            .help("rank by a validation metric: val-loss, val-dist, greedy-dist or accuracy"),
                    ),
                    Some(m) => metric = Some(Spanned::new(m, entry_span)),
                    None => {
                        let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
                        let word = written(entry);
                        let help = did_you_mean(&word, names.iter().copied())
                            .unwrap_or_else(|| format!("metrics: {}", names.join(", ")));
                        self.report(Problem::at(Kind::UnknownMetric { word }, entry_span).help(help));
                    }
                },
                "rungs" => match parse_rungs(entry) {
                    Ok(values) => rungs = Some(Spanned::new(values, entry_span)),
                    Err(message) => self.report(bad(message).help("epochs to train to, increasing: rungs=\"1 3 9\"")),
                },
                "keep" => match parse_keep(entry) {
                    Ok(share) => keep = Some(Spanned::new(share, entry_span)),
                    Err(message) => self.report(bad(message).help("a share in (0, 1): keep=\"1/3\" or keep=0.5")),
                },
                "budget" => {
                    if text != Some("epochs") {
                        self.report(
                            bad(format!("`{}` is not a budget runner knows", written(entry)))
                                .help("budget=epochs: the rungs count epochs"),
                        );
                    }
                }
                other => {
                    let help = did_you_mean(other, PROPERTIES)
                        .unwrap_or_else(|| format!("`search halving` takes: {}", PROPERTIES.join(", ")));
                    self.report(
                        Problem::at(
                            Kind::UnknownProperty {
                                name: other.to_owned(),
                                node: "search".to_owned(),
                            },
                            self.span(key.span()),
                        )
                        .help(help),
                    );
                }
            }
        }
        let written_as = |name: &str| {
            node.entries()
                .iter()
                .any(|e| e.name().is_some_and(|k| k.value() == name))
        };
        for (property, example) in [("metric", "val-dist"), ("rungs", "\"1 3 9\""), ("keep", "\"1/3\"")] {
            if !written_as(property) {
                self.report(Problem::at(
                    Kind::SearchNeeds {
                        property: property.to_owned(),
                        example: example.to_owned(),
                    },
                    span,
                ));
            }
        }
        if !kind_ok {
            return None;
        }
        Some(Search {
            metric: metric?,
            rungs: rungs?,
            keep: keep?,
            span,
        })
    }
}

/// `rungs="1 3 9"` (or one number): whole epochs, increasing.
fn parse_rungs(entry: &KdlEntry) -> Result<Vec<u64>, String> {
    let words: Vec<String> = match (entry.value().as_string(), Value::from_kdl(entry.value())) {
        (Some(text), _) => text.split_whitespace().map(str::to_owned).collect(),
        (None, Some(Value::Int(n))) => vec![n.to_string()],
        _ => return Err(format!("`{}` is not a list of epochs", written(entry))),
    };
    if words.is_empty() {
        return Err("no rung given".to_owned());
    }
    if words.len() > MAX_RUNGS {
        return Err(format!("{} rungs; at most {MAX_RUNGS}", words.len()));
    }
    let mut rungs = Vec::new();
    for word in &words {
        match word.parse::<u64>() {
            Ok(n) if (1..=MAX_RUNG).contains(&n) => rungs.push(n),
            _ => return Err(format!("`{word}` is not a whole number of epochs in 1..={MAX_RUNG}")),
        }
    }
    if let Some(pair) = rungs.windows(2).find(|pair| pair[1] <= pair[0]) {
        return Err(format!("they must increase, but {} follows {}", pair[1], pair[0]));
    }
    Ok(rungs)
}

/// `keep="1/3"` or `keep=0.5`: a share strictly between 0 and 1.
fn parse_keep(entry: &KdlEntry) -> Result<f64, String> {
    let value = match (
        entry.value().as_string(),
        Value::from_kdl(entry.value()).and_then(|v| v.as_f64()),
    ) {
        (Some(text), _) => match text.split_once('/') {
            Some((a, b)) => match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
                (Ok(a), Ok(b)) if b != 0.0 => a / b,
                _ => return Err(format!("`{text}` is not a fraction a/b")),
            },
            None => text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a share"))?,
        },
        (None, Some(x)) => x,
        (None, None) => return Err(format!("`{}` is not a share", written(entry))),
    };
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "{} is outside (0, 1): a rung would keep every run or none",
            written(entry)
        ))
    }
}
