//! Factor effects: the collected frame → main effects and two-way
//! interactions of the matrix's factors, and their Markdown.
//!
//! In: the frame of [`super::collect`] and its label keys. Out: pure values.
//! A factor is a label key other than `seed` and `fold` with at least two values; keys
//! whose values always go together (a `zip` of axes) form one factor, named
//! `a + b`, with levels `x/y`. A main effect compares each level of a factor
//! with its first level (level − first): for every replicate (a seed, on
//! one fold under k-fold), the mean of the metric over the runs at that
//! level minus the mean over the runs at the first level; the effect is the
//! mean of those per-replicate differences with its 95% confidence interval
//! (Student's t over the replicates, paired: the same seed on the same
//! fold on both sides). An interaction of
//! two two-level factors A and B is, per replicate,
//! (A's effect where B is at its second level) − (A's effect where B is at
//! its first level). A factor not crossed with the others (its levels do not
//! hold the same cells of them) has no effect: [`crossed`] sets it aside.
//! Groupings are plain Rust over the frame's columns.

use std::collections::BTreeSet;

use polars::prelude::DataFrame;

use super::collect::{self, METRICS};
use super::stats::Spread;
use super::table::{self, Table};
use runner_plan::show::count;
use runner_spec::file::Metric;

/// One factor of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// Its name: the label key, or keys joined by ` + `.
    pub name: String,
    /// Its levels in order of first appearance (values joined by `/`).
    pub levels: Vec<String>,
    /// Each frame row's level index (`None` when the row lacks a key).
    pub level_of: Vec<Option<usize>>,
}

/// "level − reference" of one factor.
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    /// The factor's name.
    pub factor: String,
    /// The level compared.
    pub level: String,
    /// The factor's first level.
    pub reference: String,
}

impl Contrast {
    /// `level − reference`.
    pub fn text(&self) -> String {
        format!("{} − {}", self.level, self.reference)
    }
}

/// A main effect on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// Which difference.
    pub contrast: Contrast,
    /// On which metric.
    pub metric: Metric,
    /// The per-replicate differences (mean, std, n; its `ci95`).
    pub estimate: Spread,
}

/// A two-way interaction on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    /// The effect whose change is measured.
    pub a: Contrast,
    /// The factor across whose levels it changes.
    pub b: Contrast,
    /// On which metric.
    pub metric: Metric,
    /// The per-replicate differences of differences (mean, std, n; its `ci95`).
    pub estimate: Spread,
}

impl Interaction {
    /// `a × b`.
    pub fn name(&self) -> String {
        format!("{} × {}", self.a.factor, self.b.factor)
    }
}

/// `factors` split into those crossed with the others (every level holds
/// the same combinations of the other factors' levels), whose differences
/// of means are effects, and the names of those that are not (an
/// experiment compared with one that lacks some cells): a difference of
/// their means would mix in the other factors' effects.
pub fn crossed(factors: Vec<Factor>) -> (Vec<Factor>, Vec<String>) {
    let others_at = |i: usize, row: usize| -> Vec<Option<usize>> {
        factors
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, f)| f.level_of[row])
            .collect()
    };
    let balanced: Vec<bool> = factors
        .iter()
        .enumerate()
        .map(|(i, factor)| {
            let mut cells: Vec<BTreeSet<Vec<Option<usize>>>> = vec![BTreeSet::new(); factor.levels.len()];
            for (row, level) in factor.level_of.iter().enumerate() {
                if let Some(level) = level {
                    cells[*level].insert(others_at(i, row));
                }
            }
            cells.windows(2).all(|pair| pair[0] == pair[1])
        })
        .collect();
    let mut kept = Vec::new();
    let mut confounded = Vec::new();
    for (factor, balanced) in factors.into_iter().zip(balanced) {
        if balanced {
            kept.push(factor);
        } else {
            confounded.push(factor.name);
        }
    }
    (kept, confounded)
}

/// The factors of the frame's matrix.
pub fn factors(frame: &DataFrame, label_keys: &[String]) -> Vec<Factor> {
    let mut groups: Vec<(Vec<String>, Vec<Option<String>>)> = Vec::new();
    for key in table::cell_keys(label_keys) {
        let values = collect::strings(frame, &key);
        let mut distinct: Vec<&String> = values.iter().flatten().collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < 2 {
            continue;
        }
        match groups.iter_mut().find(|(_, first)| one_to_one(first, &values)) {
            Some((keys, joined)) => {
                keys.push(key);
                for (j, v) in joined.iter_mut().zip(&values) {
                    *j = match (j.take(), v) {
                        (Some(a), Some(b)) => Some(format!("{a}/{b}")),
                        _ => None,
                    };
                }
            }
            None => groups.push((vec![key], values)),
        }
    }
    groups
        .into_iter()
        .map(|(keys, values)| {
            let mut levels: Vec<String> = Vec::new();
            let level_of = values
                .iter()
                .map(|v| {
                    let v = v.as_ref()?;
                    Some(levels.iter().position(|l| l == v).unwrap_or_else(|| {
                        levels.push(v.clone());
                        levels.len() - 1
                    }))
                })
                .collect();
            Factor {
                name: keys.join(" + "),
                levels,
                level_of,
            }
        })
        .collect()
}

/// Whether two label columns determine each other on every row where both are set.
fn one_to_one(a: &[Option<String>], b: &[Option<String>]) -> bool {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (x, y) in a.iter().zip(b) {
        let (Some(x), Some(y)) = (x, y) else {
            return false;
        };
        if !pairs.contains(&(x.as_str(), y.as_str())) {
            pairs.push((x, y));
        }
    }
    let firsts = pairs.iter().map(|p| p.0).collect::<std::collections::BTreeSet<_>>();
    let seconds = pairs.iter().map(|p| p.1).collect::<std::collections::BTreeSet<_>>();
    firsts.len() == pairs.len() && seconds.len() == pairs.len()
}

/// The mean of `values` over the rows where `keep` holds.
fn mean_where(values: &[Option<f64>], keep: impl Fn(usize) -> bool) -> Option<f64> {
    let present: Vec<f64> = (0..values.len())
        .filter(|&r| keep(r))
        .filter_map(|r| values[r])
        .collect();
    Spread::of(&present).map(|s| s.mean)
}

/// Every factor's main effects on every metric (each level vs the first).
pub fn main_effects(frame: &DataFrame, factors: &[Factor]) -> Vec<Effect> {
    let (replicate_of, replicates) = table::replicates(frame);
    let mut effects = Vec::new();
    for factor in factors {
        for level in 1..factor.levels.len() {
            for metric in METRICS {
                let values = collect::numbers(frame, collect::column(metric));
                let at = |l: usize, replicate: &Option<String>| {
                    mean_where(&values, |r| {
                        factor.level_of[r] == Some(l) && replicate_of[r] == *replicate
                    })
                };
                let differences: Vec<f64> = replicates
                    .iter()
                    .filter_map(|replicate| Some(at(level, replicate)? - at(0, replicate)?))
                    .collect();
                if let Some(estimate) = Spread::of(&differences) {
                    effects.push(Effect {
                        contrast: Contrast {
                            factor: factor.name.clone(),
                            level: factor.levels[level].clone(),
                            reference: factor.levels[0].clone(),
                        },
                        metric,
                        estimate,
                    });
                }
            }
        }
    }
    effects
}

/// The two-way interactions of every pair of two-level factors on every metric.
pub fn interactions(frame: &DataFrame, factors: &[Factor]) -> Vec<Interaction> {
    let (replicate_of, replicates) = table::replicates(frame);
    let two_level: Vec<&Factor> = factors.iter().filter(|f| f.levels.len() == 2).collect();
    let contrast = |f: &Factor| Contrast {
        factor: f.name.clone(),
        level: f.levels[1].clone(),
        reference: f.levels[0].clone(),
    };
    let mut found = Vec::new();
    for (i, a) in two_level.iter().enumerate() {
        for b in &two_level[i + 1..] {
            for metric in METRICS {
                let values = collect::numbers(frame, collect::column(metric));
                let at = |la: usize, lb: usize, replicate: &Option<String>| {
                    mean_where(&values, |r| {
                        a.level_of[r] == Some(la) && b.level_of[r] == Some(lb) && replicate_of[r] == *replicate
                    })
                };
                let differences: Vec<f64> = replicates
                    .iter()
                    .filter_map(|s| Some((at(1, 1, s)? - at(0, 1, s)?) - (at(1, 0, s)? - at(0, 0, s)?)))
                    .collect();
                if let Some(estimate) = Spread::of(&differences) {
                    found.push(Interaction {
                        a: contrast(a),
                        b: contrast(b),
                        metric,
                        estimate,
                    });
                }
            }
        }
    }
    found
}

/// The effects section: a table of every effect on every metric, then one
/// sentence per effect on val dist, naming the factor with the largest one.
pub fn render(effects: &[Effect], interactions: &[Interaction]) -> String {
    let metrics: Vec<Metric> = METRICS
        .into_iter()
        .filter(|m| effects.iter().any(|e| e.metric == *m) || interactions.iter().any(|i| i.metric == *m))
        .collect();
    let mut header = vec!["effect".to_owned()];
    header.extend(metrics.iter().map(|m| table::title(*m).to_owned()));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let cell = |estimate: Option<&Spread>, metric: Metric| {
        estimate.map_or_else(|| "–".to_owned(), |e| e.signed(table::decimals(metric)))
    };
    let mut contrasts: Vec<&Contrast> = Vec::new();
    for effect in effects {
        if !contrasts.contains(&&effect.contrast) {
            contrasts.push(&effect.contrast);
        }
    }
    for contrast in &contrasts {
        let mut row = vec![format!("{}: {}", contrast.factor, contrast.text())];
        for &metric in &metrics {
            let found = effects.iter().find(|e| e.contrast == **contrast && e.metric == metric);
            row.push(cell(found.map(|e| &e.estimate), metric));
        }
        rows.push(row);
    }
    let mut pairs: Vec<(&Contrast, &Contrast)> = Vec::new();
    for i in interactions {
        if !pairs.contains(&(&i.a, &i.b)) {
            pairs.push((&i.a, &i.b));
        }
    }
    for (a, b) in &pairs {
        let mut row = vec![format!("{} × {}", a.factor, b.factor)];
        for &metric in &metrics {
            let found = interactions
                .iter()
                .find(|i| i.a == **a && i.b == **b && i.metric == metric);
            row.push(cell(found.map(|i| &i.estimate), metric));
        }
        rows.push(row);
    }
    let mut text = String::from(
        "Each main effect is a difference of means (level − first level), computed per replicate (a seed, \
         on one fold under k-fold: the two sides are paired) and shown as the mean ± the half-width of its 95% \
         confidence interval (Student's t over the replicates; no interval from one replicate). An interaction \
         `A × B` is A's effect at B's second level minus A's effect at B's first level. Lower is better for loss \
         and distances, higher for accuracy, closer to 1 for flatness.\n\n",
    );
    text.push_str(&Table { header, rows }.markdown());
    text.push('\n');
    let on_val_dist: Vec<&Effect> = effects.iter().filter(|e| e.metric == Metric::ValDist).collect();
    let how_many = |s: &Spread| count(s.n, "replicate");
    if let Some(largest) = on_val_dist
        .iter()
        .max_by(|x, y| x.estimate.mean.abs().total_cmp(&y.estimate.mean.abs()))
        .filter(|_| on_val_dist.len() >= 2)
    {
        let total: f64 = on_val_dist.iter().map(|e| e.estimate.mean.abs()).sum();
        let share = if total > 0.0 {
            largest.estimate.mean.abs() / total
        } else {
            0.0
        };
        let verb = if share >= 0.5 {
            "accounts for most of the gap"
        } else {
            "has the largest effect"
        };
        text.push_str(&format!(
            "**{}** {verb} in val dist: {} = {} ({}, {:.0}% of the summed main effects).\n\n",
            largest.contrast.factor,
            largest.contrast.text(),
            with_interval(&largest.estimate),
            how_many(&largest.estimate),
            100.0 * share
        ));
    }
    for effect in &on_val_dist {
        text.push_str(&format!(
            "- {}: {} = {} on val dist ({}): {}.\n",
            effect.contrast.factor,
            effect.contrast.text(),
            with_interval(&effect.estimate),
            how_many(&effect.estimate),
            meaning(&effect.estimate, &effect.contrast.level, &effect.contrast.reference)
        ));
    }
    for i in interactions.iter().filter(|i| i.metric == Metric::ValDist) {
        let depends = match i.estimate.ci95() {
            Some(ci) if ci.above(0.0) || ci.below(0.0) => format!(
                "the interval excludes 0: the effect of {} on val dist depends on {}",
                i.a.factor, i.b.factor
            ),
            Some(_) => "the interval includes 0: no interaction is shown".to_owned(),
            None => "one replicate gives no interval".to_owned(),
        };
        text.push_str(&format!(
            "- {}: ({a} | {b}={b1}) − ({a} | {b}={b0}) = {} on val dist ({}): {depends}.\n",
            i.name(),
            with_interval(&i.estimate),
            how_many(&i.estimate),
            a = i.a.text(),
            b = i.b.factor,
            b1 = i.b.level,
            b0 = i.b.reference,
        ));
    }
    text
}

/// `+6.50, 95% CI [−6.21, +19.21]` (the estimate alone from one replicate).
fn with_interval(estimate: &Spread) -> String {
    let mean = super::stats::signed(estimate.mean, 2);
    match estimate.ci95() {
        Some(ci) => format!("{mean}, 95% CI {}", ci.text(2)),
        None => mean,
    }
}

/// What a val-dist difference `level − reference` means, in words.
fn meaning(estimate: &Spread, level: &str, reference: &str) -> String {
    let direction = if estimate.mean > 0.0 {
        "higher (worse)"
    } else {
        "lower (better)"
    };
    match estimate.ci95() {
        Some(ci) if ci.above(0.0) || ci.below(0.0) => {
            format!("the interval excludes 0, so `{level}` gives a {direction} val dist than `{reference}`")
        }
        Some(_) => format!("the interval includes 0: these replicates do not tell `{level}` from `{reference}`"),
        None => "one replicate gives no interval".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    /// A 2x2 factorial with 2 seeds; val dist per (schedule, loss, seed):
    /// noam/ls 4, 5; noam/ce 6, 6; constant/ls 10, 12; constant/ce 11, 14.
    fn frame() -> DataFrame {
        let schedule = [
            "noam", "noam", "noam", "noam", "constant", "constant", "constant", "constant",
        ];
        let loss = ["ls", "ls", "ce", "ce", "ls", "ls", "ce", "ce"];
        let seed = ["0", "1", "0", "1", "0", "1", "0", "1"];
        let dist = [4.0, 5.0, 6.0, 6.0, 10.0, 12.0, 11.0, 14.0];
        DataFrame::new(
            8,
            vec![
                Column::new("schedule".into(), schedule.to_vec()),
                Column::new("loss".into(), loss.to_vec()),
                Column::new("seed".into(), seed.to_vec()),
                Column::new("val_dist".into(), dist.to_vec()),
            ],
        )
        .unwrap()
    }

    fn keys() -> Vec<String> {
        ["schedule", "loss", "seed"].map(str::to_owned).to_vec()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn main_effects_are_per_seed_differences_of_means() {
        let frame = frame();
        let factors = factors(&frame, &keys());
        assert_eq!(factors.len(), 2);
        assert_eq!(factors[0].levels, ["noam", "constant"]);
        let effects = main_effects(&frame, &factors);
        // Only val dist is in this frame.
        assert_eq!(effects.len(), 2);
        // schedule: seed 0 (10+11)/2 − (4+6)/2 = 5.5; seed 1 (12+14)/2 − (5+6)/2 = 7.5.
        let schedule = &effects[0];
        assert_eq!(schedule.contrast.text(), "constant − noam");
        assert!(close(schedule.estimate.mean, 6.5));
        assert!(close(schedule.estimate.std.unwrap(), 2f64.sqrt()));
        // loss: seed 0 (6+11)/2 − (4+10)/2 = 1.5; seed 1 (6+14)/2 − (5+12)/2 = 1.5.
        let loss = &effects[1];
        assert!(close(loss.estimate.mean, 1.5));
        assert!(close(loss.estimate.std.unwrap(), 0.0));
    }

    #[test]
    fn interaction_is_a_difference_of_differences() {
        let frame = frame();
        let found = interactions(&frame, &factors(&frame, &keys()));
        assert_eq!(found.len(), 1);
        // seed 0: (11 − 6) − (10 − 4) = −1; seed 1: (14 − 6) − (12 − 5) = +1.
        assert!(close(found[0].estimate.mean, 0.0));
        assert!(close(found[0].estimate.std.unwrap(), 2f64.sqrt()));
        assert_eq!(found[0].name(), "schedule × loss");
    }

    #[test]
    fn folds_are_replicates_paired_with_their_seed() {
        // One seed on two folds: fold 0 has the gap 4, fold 1 the gap 8.
        let frame = DataFrame::new(
            4,
            vec![
                Column::new("schedule".into(), ["noam", "constant", "noam", "constant"].to_vec()),
                Column::new("fold".into(), ["0", "0", "1", "1"].to_vec()),
                Column::new("seed".into(), ["0", "0", "0", "0"].to_vec()),
                Column::new("val_dist".into(), [5.0, 9.0, 6.0, 14.0].to_vec()),
            ],
        )
        .unwrap();
        let keys = ["schedule", "fold", "seed"].map(str::to_owned);
        let factors = factors(&frame, &keys);
        assert_eq!(factors.len(), 1, "fold is not a factor");
        let effects = main_effects(&frame, &factors);
        assert_eq!(effects[0].estimate.n, 2);
        assert!(close(effects[0].estimate.mean, 6.0));
        assert!(close(effects[0].estimate.std.unwrap(), 8f64.sqrt()));
    }

    #[test]
    fn zipped_keys_form_one_factor() {
        let frame = DataFrame::new(
            4,
            vec![
                Column::new("encoder".into(), ["separate", "shared", "separate", "shared"].to_vec()),
                Column::new("model.architecture".into(), ["vanilla", "t5", "vanilla", "t5"].to_vec()),
                Column::new("loss".into(), ["ls", "ls", "ce", "ce"].to_vec()),
            ],
        )
        .unwrap();
        let keys = ["encoder", "model.architecture", "loss"].map(str::to_owned);
        let factors = factors(&frame, &keys);
        assert_eq!(factors.len(), 2);
        assert_eq!(factors[0].name, "encoder + model.architecture");
        assert_eq!(factors[0].levels, ["separate/vanilla", "shared/t5"]);
    }

    #[test]
    fn the_largest_effect_is_named() {
        let frame = frame();
        let factors = factors(&frame, &keys());
        let text = render(&main_effects(&frame, &factors), &interactions(&frame, &factors));
        assert!(
            text.contains(
                "**schedule** accounts for most of the gap in val dist: constant − noam = +6.50, 95% CI [−6.21, +19.21]"
            ),
            "{text}"
        );
    }
}
