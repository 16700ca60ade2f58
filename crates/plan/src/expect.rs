//! The experiment's claims, planned: each side's selector resolved to the
//! runs it picks, so the report needs only the plan.
//!
//! In: the file's [`Expectation`]s and the planned runs. Out:
//! [`PlannedExpectation`]s (serialisable: a Slurm submission freezes them
//! with the runs).

use serde::{Deserialize, Serialize};

use super::PlannedRun;
use runner_spec::file::{Claim, Expectation, Metric};

/// The runs one side of a claim is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The selector as written: a variant name or `axis=label` pairs.
    pub selector: String,
    /// The ids of the planned runs it matches, in plan order.
    pub runs: Vec<String>,
}

/// What a planned expectation claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlannedClaim {
    /// The subject's metric is better than `other`'s by at least `ratio`.
    BetterThan {
        /// The runs compared against.
        other: Selection,
        /// How many times better (1: just better).
        ratio: f64,
    },
    /// The subject's metric is below `limit`.
    Below {
        /// The limit.
        limit: f64,
    },
    /// The subject's metric is above `limit`.
    Above {
        /// The limit.
        limit: f64,
    },
}

/// One `expect` of the file, with its selectors resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedExpectation {
    /// The claim as written in the file (without `expect`).
    pub text: String,
    /// The metric.
    pub metric: Metric,
    /// The runs it is about.
    pub subject: Selection,
    /// The claim.
    pub claim: PlannedClaim,
}

/// `expectation` with its selectors resolved against `runs`.
pub fn planned(expectation: &Expectation, runs: &[PlannedRun]) -> PlannedExpectation {
    let select = |selector: &str| Selection {
        selector: selector.to_owned(),
        runs: runs
            .iter()
            .filter(|run| run.matches(selector))
            .map(|run| run.id.clone())
            .collect(),
    };
    PlannedExpectation {
        text: text(expectation),
        metric: expectation.metric,
        subject: select(&expectation.subject.value),
        claim: match &expectation.claim {
            Claim::BetterThan { other, ratio } => PlannedClaim::BetterThan {
                other: select(&other.value),
                ratio: *ratio,
            },
            Claim::Below(limit) => PlannedClaim::Below { limit: *limit },
            Claim::Above(limit) => PlannedClaim::Above { limit: *limit },
        },
    }
}

/// The claim as written in the file.
fn text(expectation: &Expectation) -> String {
    let quote = |s: &str| {
        if s.contains(['=', ' ', '"']) {
            format!("{s:?}")
        } else {
            s.to_owned()
        }
    };
    let rest = match &expectation.claim {
        Claim::BetterThan { other, ratio } if *ratio == 1.0 => format!("better-than={}", quote(&other.value)),
        Claim::BetterThan { other, ratio } => format!("better-than={} ratio={ratio}", quote(&other.value)),
        Claim::Below(v) => format!("below={v}"),
        Claim::Above(v) => format!("above={v}"),
    };
    format!(
        "{} {} {rest}",
        expectation.metric.name(),
        quote(&expectation.subject.value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_serialise_by_their_names_in_files() {
        for (name, metric) in Metric::ALL {
            assert_eq!(serde_json::to_value(metric).unwrap(), name);
            assert_eq!(serde_json::from_value::<Metric>(name.into()).unwrap(), metric);
        }
    }
}
