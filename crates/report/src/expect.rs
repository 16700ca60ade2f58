//! Expectations: the experiment's declared claims, the plan and the
//! collected frame → a verdict per claim, with the numbers in words, and
//! its Markdown.
//!
//! In: the plan's [`PlannedExpectation`]s (each side's runs resolved at
//! planning) and the frame of [`super::collect`]. Out: [`Checked`] values.
//! A side's value is the mean of the metric's final values over its
//! replicates (a seed, on one fold under k-fold; the runs of one replicate
//! averaged); a claim is not evaluated when one of its runs has no result.
//! Lower is better for val-loss, val-dist, greedy-dist and test-dist,
//! higher for accuracy, and closer to 1 for flatness.
//!
//! `better-than=X ratio=R` claims that X's value is at least R times the
//! subject's (for accuracy: the subject's at least R times X's; for
//! flatness, the distances from 1), strictly better when R is 1. Its margin
//! (X − R × subject, oriented so that positive means the claim holds) gets a
//! 95% confidence interval: paired by replicate when both sides have the
//! same replicates (Student's t over the per-replicate margins), else
//! Welch's. `below=` and `above=` put the subject's own interval against
//! the bound. The verdict: **reproduced** when the estimate holds and the
//! interval excludes the opposite claim, **not significant** when the
//! estimate holds but the interval does not exclude it (or there is a
//! single replicate, hence no interval), **not reproduced** when the
//! estimate does not hold.

use std::collections::BTreeMap;

use polars::prelude::DataFrame;

use super::collect;
use super::stats::{Interval, Spread, fixed, signed, welch};
use super::table;
use runner_plan::expect::{PlannedClaim, PlannedExpectation, Selection};
use runner_plan::show::count;
use runner_spec::file::Better;
use runner_spec::file::Metric;

/// The outcome of one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The estimate bears it out and its interval excludes the opposite.
    Reproduced,
    /// The estimate bears it out, but its interval does not exclude the opposite.
    NotSignificant,
    /// The estimate contradicts it.
    NotReproduced,
    /// It could not be checked (runs or values missing).
    NotEvaluated,
}

impl Verdict {
    /// The verdict as the report prints it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotSignificant => "not significant",
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
    /// The numbers behind it in words, or why it was not evaluated.
    pub detail: String,
}

/// One side of a claim: the metric's mean per replicate over the runs a
/// selector picks.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// The selector as written.
    pub selector: String,
    /// How many runs it picks.
    pub runs: usize,
    /// The mean of the runs of each replicate, by replicate.
    pub replicates: BTreeMap<Option<String>, f64>,
}

impl Side {
    /// The spread of its per-replicate values after `f`.
    fn spread(&self, f: impl Fn(f64) -> f64) -> Spread {
        let values: Vec<f64> = self.replicates.values().map(|&v| f(v)).collect();
        spread_of(&values)
    }

    /// Its value: the mean over its replicates.
    fn value(&self) -> f64 {
        self.spread(|v| v).mean
    }

    /// `5.250 for `noam` (4 runs)`.
    fn text(&self, metric: Metric) -> String {
        format!(
            "{} for `{}` ({})",
            fixed(self.value(), table::decimals(metric) + 1),
            self.selector,
            count(self.runs, "run")
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
    let (verdict, detail) = judge(expectation.metric, &expectation.claim, &subject, other.as_ref());
    Checked { claim, verdict, detail }
}

/// The verdict on `claim` for the subject side (and the other side, for
/// `better-than`), with the numbers in words.
pub fn judge(metric: Metric, claim: &PlannedClaim, subject: &Side, other: Option<&Side>) -> (Verdict, String) {
    let name = table::title(metric);
    let decimals = table::decimals(metric);
    match (claim, other) {
        (PlannedClaim::Below { limit }, _) | (PlannedClaim::Above { limit }, _) => {
            let below = matches!(claim, PlannedClaim::Below { .. });
            let spread = subject.spread(|v| v);
            let holds = if below {
                spread.mean < *limit
            } else {
                spread.mean > *limit
            };
            let interval = spread.ci95();
            let beyond = interval.is_some_and(|ci| if below { ci.below(*limit) } else { ci.above(*limit) });
            let side_word = if below { "below" } else { "above" };
            let numbers = match interval {
                Some(ci) => format!(
                    "{name} {}, 95% CI {} over {}; the claim: {side_word} {limit}",
                    subject.text(metric),
                    ci.plain(decimals + 1),
                    count(spread.n, "replicate")
                ),
                None => format!(
                    "{name} {} from 1 replicate; the claim: {side_word} {limit}",
                    subject.text(metric)
                ),
            };
            let (verdict, why) = match (holds, beyond, interval) {
                (true, true, _) => (
                    Verdict::Reproduced,
                    format!("the whole interval is {side_word} {limit}"),
                ),
                (true, false, Some(_)) => (
                    Verdict::NotSignificant,
                    format!("the mean is {side_word} {limit}, but the interval reaches it"),
                ),
                (true, false, None) => (
                    Verdict::NotSignificant,
                    "the value holds, but one replicate gives no interval".to_owned(),
                ),
                (false, ..) => (Verdict::NotReproduced, format!("the mean is not {side_word} {limit}")),
            };
            (verdict, format!("{numbers}: {why}"))
        }
        (PlannedClaim::BetterThan { ratio, .. }, Some(other)) => better_than(metric, *ratio, subject, other),
        (PlannedClaim::BetterThan { .. }, None) => (Verdict::NotEvaluated, "no value for the other side".to_owned()),
    }
}

/// The verdict on "subject better than other by `ratio`" (see the module docs).
fn better_than(metric: Metric, ratio: f64, subject: &Side, other: &Side) -> (Verdict, String) {
    let name = table::title(metric);
    // The margin is `a − ratio × b` over the values after `f`: positive
    // when the claim holds.
    let (a, b, f, quantity): (&Side, &Side, fn(f64) -> f64, String) = match metric.better() {
        Better::Lower => (other, subject, |v| v, format!("`{}`'s {name}", other.selector)),
        Better::Higher => (subject, other, |v| v, format!("`{}`'s {name}", subject.selector)),
        Better::CloserToOne => (
            other,
            subject,
            |v| (1.0 - v).abs(),
            format!("`{}`'s |1 − {name}|", other.selector),
        ),
    };
    let (ta, tb) = (a.spread(f).mean, b.spread(f).mean);
    let factor = ta / tb;
    // A relative tolerance, so that 0.3 / 0.2 counts as 1.5.
    let holds = ta > tb && factor >= ratio * (1.0 - 1e-9);
    let b_quantity = format!("`{}`'s", b.selector);
    let needed = if ratio == 1.0 {
        "the claim: more than 1".to_owned()
    } else {
        format!("the claim: at least {ratio}")
    };
    let mut text = format!(
        "{name} {} vs {}: {quantity} is {} times {b_quantity} ({needed})",
        subject.text(metric),
        other.text(metric),
        fixed(factor, 2)
    );
    let margin_name = if ratio == 1.0 {
        format!("`{}` − `{}`", a.selector, b.selector)
    } else {
        format!("`{}` − {ratio} × `{}`", a.selector, b.selector)
    };
    let (estimate, interval, how) = margin(a, b, f, ratio);
    match interval {
        Some(ci) => text.push_str(&format!(
            "; the margin {margin_name} is {}, 95% CI {} ({how})",
            signed(estimate, 2),
            ci.text(2)
        )),
        None => text.push_str(&format!(
            "; the margin {margin_name} is {} ({how})",
            signed(estimate, 2)
        )),
    }
    let (verdict, why) = match (holds, interval) {
        (true, Some(ci)) if ci.above(0.0) => (
            Verdict::Reproduced,
            "the interval lies above 0, excluding the opposite claim",
        ),
        (true, Some(_)) => (
            Verdict::NotSignificant,
            "the estimate holds, but the interval reaches 0: these replicates cannot tell it from noise",
        ),
        (true, None) => (Verdict::NotSignificant, "the estimate holds, but there is no interval"),
        (false, _) => (Verdict::NotReproduced, "the estimate does not hold"),
    };
    (verdict, format!("{text}: {why}"))
}

/// `a − ratio × b` over the values after `f`, with its 95% interval and
/// how it was paired: per replicate when both sides have the same
/// replicates (at least 2), else Welch's.
fn margin(a: &Side, b: &Side, f: fn(f64) -> f64, ratio: f64) -> (f64, Option<Interval>, String) {
    let same = a.replicates.len() >= 2 && a.replicates.keys().eq(b.replicates.keys());
    if same {
        let per: Vec<f64> = a
            .replicates
            .values()
            .zip(b.replicates.values())
            .map(|(&x, &y)| f(x) - ratio * f(y))
            .collect();
        let spread = spread_of(&per);
        let how = format!("paired over {}", count(spread.n, "replicate"));
        return (spread.mean, spread.ci95(), how);
    }
    let (sa, sb) = (a.spread(f), b.spread(f));
    let (estimate, interval) = welch(&sa, &sb, ratio);
    let how = match interval {
        Some(_) => format!("Welch, {} and {} unpaired replicates", sa.n, sb.n),
        None => "one replicate on a side gives no interval".to_owned(),
    };
    (estimate, interval, how)
}

/// The spread of `values`; a NaN mean of no values when there are none
/// (a side always has at least one run, so this is only a guard).
fn spread_of(values: &[f64]) -> Spread {
    Spread::of(values).unwrap_or(Spread {
        mean: f64::NAN,
        std: None,
        n: 0,
    })
}

/// The metric's values per replicate over the runs `selection` picks, or
/// why there are none.
fn side(selection: &Selection, metric: Metric, frame: &DataFrame) -> Result<Side, String> {
    let ids = collect::strings(frame, "id");
    let values = collect::numbers(frame, collect::column(metric));
    let (replicate_of, _) = table::replicates(frame);
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
    let present = rows.iter().filter(|&&r| values[r].is_some()).count();
    if present < rows.len() {
        return Err(format!(
            "{} of the {} runs matching `{selector}` have no {} value",
            rows.len() - present,
            rows.len(),
            metric.name()
        ));
    }
    let mut by_replicate: BTreeMap<Option<String>, Vec<f64>> = BTreeMap::new();
    for &r in &rows {
        if let Some(value) = values[r] {
            by_replicate.entry(replicate_of[r].clone()).or_default().push(value);
        }
    }
    Ok(Side {
        selector: selector.to_owned(),
        runs: rows.len(),
        replicates: by_replicate
            .into_iter()
            .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
            .collect(),
    })
}

/// The expectations section: one line per claim.
pub fn render(checked: &[Checked]) -> String {
    if checked.is_empty() {
        return "The experiment declares no expectations.\n".to_owned();
    }
    let mut text: String = checked
        .iter()
        .map(|c| format!("- **{}**: `expect {}`: {}.\n", c.verdict.word(), c.claim, c.detail))
        .collect();
    text.push_str(
        "\nA claim is **reproduced** when its estimate holds and the 95% confidence interval excludes the \
         opposite claim, **not significant** when the estimate holds but the interval does not exclude it, and \
         **not reproduced** when the estimate does not hold. Replicates are seeds, and folds under k-fold; the \
         two sides of a comparison are paired by replicate when they share them.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(selector: &str, values: &[(&str, f64)]) -> Side {
        Side {
            selector: selector.to_owned(),
            runs: values.len(),
            replicates: values.iter().map(|(k, v)| (Some((*k).to_owned()), *v)).collect(),
        }
    }

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
    fn lower_is_better_for_distances_and_pairs_by_replicate() {
        // other / subject = 10 / 4 = 2.5; margins 10.5 − 2 × 4.5, 9.5 − 2 × 3.5: 1.5 and 2.5.
        let subject = side("s", &[("seed=0", 4.5), ("seed=1", 3.5)]);
        let other = side("o", &[("seed=0", 10.5), ("seed=1", 9.5)]);
        let (verdict, why) = judge(Metric::ValDist, &better_than(2.0), &subject, Some(&other));
        // Paired: mean 2.0, std 0.707, t(1) = 12.71: [−4.35, +8.35].
        assert_eq!(verdict, Verdict::NotSignificant, "{why}");
        assert!(
            why.contains("`o`'s val dist is 2.50 times `s`'s (the claim: at least 2)"),
            "{why}"
        );
        assert!(
            why.contains("the margin `o` − 2 × `s` is +2.00, 95% CI [−4.35, +8.35] (paired over 2 replicates)"),
            "{why}"
        );
        let (verdict, _) = judge(Metric::ValDist, &better_than(3.0), &subject, Some(&other));
        assert_eq!(verdict, Verdict::NotReproduced);
        let (verdict, _) = judge(Metric::ValDist, &better_than(1.0), &other, Some(&subject));
        assert_eq!(verdict, Verdict::NotReproduced);
        // Equal values are not better, whatever the ratio.
        let (verdict, _) = judge(Metric::ValLoss, &better_than(1.0), &subject, Some(&subject));
        assert_eq!(verdict, Verdict::NotReproduced);
    }

    #[test]
    fn a_tight_interval_reproduces_and_one_replicate_is_not_significant() {
        let folds = |base: f64| -> Vec<(String, f64)> {
            (0..5).map(|f| (format!("fold={f}"), base + 0.1 * f as f64)).collect()
        };
        let owned = |v: &[(String, f64)]| Side {
            selector: "x".to_owned(),
            runs: v.len(),
            replicates: v.iter().map(|(k, x)| (Some(k.clone()), *x)).collect(),
        };
        let (subject, other) = (owned(&folds(4.0)), owned(&folds(10.0)));
        let (verdict, why) = judge(Metric::ValDist, &better_than(2.0), &subject, Some(&other));
        assert_eq!(verdict, Verdict::Reproduced, "{why}");
        let one = side("s", &[("seed=0", 4.0)]);
        let (verdict, why) = judge(
            Metric::ValDist,
            &better_than(2.0),
            &one,
            Some(&side("o", &[("seed=0", 10.0)])),
        );
        assert_eq!(verdict, Verdict::NotSignificant, "{why}");
        assert!(why.contains("one replicate on a side gives no interval"), "{why}");
    }

    #[test]
    fn sides_without_shared_replicates_use_welch() {
        let subject = side("s", &[("seed=0", 4.0), ("seed=1", 5.0), ("seed=2", 4.5)]);
        let other = side("o", &[("seed=3", 10.0), ("seed=4", 11.0), ("seed=5", 10.5)]);
        let (verdict, why) = judge(Metric::ValDist, &better_than(1.0), &subject, Some(&other));
        assert_eq!(verdict, Verdict::Reproduced, "{why}");
        assert!(why.contains("(Welch, 3 and 3 unpaired replicates)"), "{why}");
    }

    #[test]
    fn higher_is_better_for_accuracy() {
        let s = side("s", &[("seed=0", 0.3)]);
        let o = side("o", &[("seed=0", 0.2)]);
        assert_eq!(
            judge(Metric::Accuracy, &better_than(1.5), &s, Some(&o)).0,
            Verdict::NotSignificant
        );
        assert_eq!(
            judge(Metric::Accuracy, &better_than(1.6), &s, Some(&o)).0,
            Verdict::NotReproduced
        );
        assert_eq!(
            judge(Metric::Accuracy, &better_than(1.0), &o, Some(&s)).0,
            Verdict::NotReproduced
        );
    }

    #[test]
    fn closer_to_one_is_better_for_flatness() {
        // |1 − 0.9| = 0.1 vs |1 − 0.6| = 0.4: ratio 4; 1.2 is as far from 1 as 0.8.
        let s = side("s", &[("seed=0", 0.9)]);
        let o = side("o", &[("seed=0", 0.6)]);
        assert_ne!(
            judge(Metric::Flatness, &better_than(4.0), &s, Some(&o)).0,
            Verdict::NotReproduced
        );
        let far = side("f", &[("seed=0", 1.2)]);
        let near = side("n", &[("seed=0", 0.8)]);
        assert_eq!(
            judge(Metric::Flatness, &better_than(1.0), &far, Some(&near)).0,
            Verdict::NotReproduced
        );
    }

    #[test]
    fn bounds_compare_the_subjects_interval() {
        let below = PlannedClaim::Below { limit: 0.3 };
        let low = side("s", &[("fold=0", 0.1), ("fold=1", 0.12), ("fold=2", 0.11)]);
        let (verdict, why) = judge(Metric::Flatness, &below, &low, None);
        assert_eq!(verdict, Verdict::Reproduced, "{why}");
        assert!(
            why.contains("over 3 replicates; the claim: below 0.3: the whole interval is below 0.3"),
            "{why}"
        );
        let wide = side("s", &[("fold=0", 0.05), ("fold=1", 0.45)]);
        assert_eq!(judge(Metric::Flatness, &below, &wide, None).0, Verdict::NotSignificant);
        let high = side("s", &[("fold=0", 0.3)]);
        assert_eq!(judge(Metric::Flatness, &below, &high, None).0, Verdict::NotReproduced);
        let above = PlannedClaim::Above { limit: 0.5 };
        assert_eq!(
            judge(Metric::Accuracy, &above, &side("s", &[("seed=0", 0.4)]), None).0,
            Verdict::NotReproduced
        );
    }
}
