//! Expectations: the experiment's declared claims, the plan and the
//! collected frame → a verdict per claim, with the numbers, and its Markdown.
//!
//! In: the plan's [`PlannedExpectation`]s (each side's runs resolved at
//! planning) and the frame of [`super::collect`]. Out:
//! [`Checked`] values. A side's value is the mean of the metric's final
//! values over the runs it selects; a claim is not evaluated when one of
//! those runs has no result. Lower is better for val-loss, val-dist,
//! greedy-dist and test-dist, higher for accuracy, and closer to 1 for
//! flatness. `better-than=X ratio=R` holds when the subject is strictly
//! better and "other / subject" (subject / other for accuracy, |1 − other| /
//! |1 − subject| for flatness) is at least R; `below=` and `above=` compare
//! the subject's value directly.

use polars::prelude::DataFrame;

use super::collect;
use super::table;
use runner_plan::expect::{PlannedClaim, PlannedExpectation, Selection};
use runner_spec::file::Metric;

/// The outcome of one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The runs bear it out.
    Reproduced,
    /// The runs contradict it.
    NotReproduced,
    /// It could not be checked (runs or values missing).
    NotEvaluated,
}

impl Verdict {
    /// The verdict as the report prints it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::NotEvaluated => "not evaluated",
        }
    }
}

/// One claim, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The claim as written in the file (without `expect`).
    pub claim: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The numbers behind it, or why it was not evaluated.
    pub detail: String,
}

/// One side of a claim: the mean over the runs a selector picks.
struct Side {
    selector: String,
    value: f64,
    runs: usize,
}

impl Side {
    fn text(&self, metric: Metric) -> String {
        format!(
            "{} (`{}`, {} run{})",
            super::stats::fixed(self.value, table::decimals(metric) + 1),
            self.selector,
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        )
    }
}

/// Checks every expectation.
pub fn check_all(expectations: &[PlannedExpectation], frame: &DataFrame) -> Vec<Checked> {
    expectations.iter().map(|e| check(e, frame)).collect()
}

/// Checks one expectation against the finished runs.
pub fn check(expectation: &PlannedExpectation, frame: &DataFrame) -> Checked {
    let claim = expectation.text.clone();
    let not_evaluated = |detail: String| Checked {
        claim: claim.clone(),
        verdict: Verdict::NotEvaluated,
        detail,
    };
    let subject = match side(&expectation.subject, expectation.metric, frame) {
        Ok(side) => side,
        Err(reason) => return not_evaluated(reason),
    };
    let other = match &expectation.claim {
        PlannedClaim::BetterThan { other, .. } => match side(other, expectation.metric, frame) {
            Ok(side) => Some(side),
            Err(reason) => return not_evaluated(reason),
        },
        PlannedClaim::Below { .. } | PlannedClaim::Above { .. } => None,
    };
    let (holds, reasoning) = judge(
        expectation.metric,
        &expectation.claim,
        subject.value,
        other.as_ref().map(|o| o.value),
    );
    let metric = table::title(expectation.metric);
    let detail = match &other {
        Some(other) => format!(
            "{metric} {} vs {}; {reasoning}",
            subject.text(expectation.metric),
            other.text(expectation.metric)
        ),
        None => format!("{metric} {}; {reasoning}", subject.text(expectation.metric)),
    };
    Checked {
        claim,
        verdict: if holds {
            Verdict::Reproduced
        } else {
            Verdict::NotReproduced
        },
        detail,
    }
}

/// Whether `claim` holds for a subject value (and the other side's, for
/// `better-than`), with the comparison in words.
pub fn judge(metric: Metric, claim: &PlannedClaim, subject: f64, other: Option<f64>) -> (bool, String) {
    match (claim, other) {
        (PlannedClaim::Below { limit }, _) => (subject < *limit, format!("needed below {limit}")),
        (PlannedClaim::Above { limit }, _) => (subject > *limit, format!("needed above {limit}")),
        (PlannedClaim::BetterThan { ratio, .. }, Some(other)) => {
            let (better, factor, how) = match metric {
                Metric::Accuracy => (subject > other, subject / other, "subject / other"),
                Metric::Flatness | Metric::GreedyFlatness => {
                    let (s, o) = ((1.0 - subject).abs(), (1.0 - other).abs());
                    (s < o, o / s, "|1 − other| / |1 − subject|")
                }
                Metric::ValLoss
                | Metric::ValLsKl
                | Metric::ValCeWithCls
                | Metric::ValDist
                | Metric::GreedyDist
                | Metric::TestDist => (subject < other, other / subject, "other / subject"),
            };
            // A relative tolerance, so that 0.3 / 0.2 counts as 1.5.
            let holds = better && factor >= *ratio * (1.0 - 1e-9);
            let needed = if *ratio == 1.0 {
                "needed: strictly better".to_owned()
            } else {
                format!("needed: strictly better and ≥ {ratio}")
            };
            (holds, format!("{how} = {}; {needed}", super::stats::fixed(factor, 2)))
        }
        (PlannedClaim::BetterThan { .. }, None) => (false, "no value for the other side".to_owned()),
    }
}

/// The mean of `metric` over the runs `selection` picks, or why there is none.
fn side(selection: &Selection, metric: Metric, frame: &DataFrame) -> Result<Side, String> {
    let ids = collect::strings(frame, "id");
    let values = collect::numbers(frame, collect::column(metric));
    let selector = &selection.selector;
    let selected = &selection.runs;
    if selected.is_empty() {
        return Err(format!("no planned run matches `{selector}`"));
    }
    let rows: Vec<usize> = selected
        .iter()
        .filter_map(|id| ids.iter().position(|i| i.as_deref() == Some(id.as_str())))
        .collect();
    if rows.len() < selected.len() {
        return Err(format!(
            "{} of the {} runs matching `{selector}` have no result",
            selected.len() - rows.len(),
            selected.len()
        ));
    }
    let present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
    if present.len() < rows.len() {
        return Err(format!(
            "{} of the {} runs matching `{selector}` have no {} value",
            rows.len() - present.len(),
            rows.len(),
            metric.name()
        ));
    }
    Ok(Side {
        selector: selector.to_owned(),
        value: present.iter().sum::<f64>() / present.len() as f64,
        runs: present.len(),
    })
}

/// The expectations section: one line per claim.
pub fn render(checked: &[Checked]) -> String {
    if checked.is_empty() {
        return "The experiment declares no expectations.\n".to_owned();
    }
    checked
        .iter()
        .map(|c| format!("- **{}**: `expect {}`: {}.\n", c.verdict.word(), c.claim, c.detail))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn better_than(ratio: f64) -> PlannedClaim {
        PlannedClaim::BetterThan {
            other: Selection {
                selector: "other".to_owned(),
                runs: vec!["0123456789abcdef".to_owned()],
            },
            ratio,
        }
    }

    #[test]
    fn lower_is_better_for_distances() {
        // other / subject = 10 / 4 = 2.5.
        let (holds, why) = judge(Metric::ValDist, &better_than(2.0), 4.0, Some(10.0));
        assert!(holds, "{why}");
        assert!(why.contains("= 2.50"), "{why}");
        assert!(!judge(Metric::ValDist, &better_than(3.0), 4.0, Some(10.0)).0);
        assert!(!judge(Metric::ValDist, &better_than(1.0), 10.0, Some(4.0)).0);
        // Equal values are not better, whatever the ratio.
        assert!(!judge(Metric::ValLoss, &better_than(1.0), 4.0, Some(4.0)).0);
    }

    #[test]
    fn higher_is_better_for_accuracy() {
        assert!(judge(Metric::Accuracy, &better_than(1.5), 0.3, Some(0.2)).0);
        assert!(!judge(Metric::Accuracy, &better_than(1.6), 0.3, Some(0.2)).0);
        assert!(!judge(Metric::Accuracy, &better_than(1.0), 0.2, Some(0.3)).0);
    }

    #[test]
    fn closer_to_one_is_better_for_flatness() {
        // |1 − 0.9| = 0.1 vs |1 − 0.6| = 0.4: ratio 4; 1.2 is as far from 1 as 0.8.
        assert!(judge(Metric::Flatness, &better_than(4.0), 0.9, Some(0.6)).0);
        assert!(!judge(Metric::Flatness, &better_than(1.0), 1.2, Some(0.8)).0);
    }

    #[test]
    fn below_and_above_compare_directly() {
        assert!(judge(Metric::Flatness, &PlannedClaim::Below { limit: 0.3 }, 0.1, None).0);
        assert!(!judge(Metric::Flatness, &PlannedClaim::Below { limit: 0.3 }, 0.3, None).0);
        assert!(judge(Metric::Accuracy, &PlannedClaim::Above { limit: 0.5 }, 0.6, None).0);
        assert!(!judge(Metric::Accuracy, &PlannedClaim::Above { limit: 0.5 }, 0.4, None).0);
    }
}
