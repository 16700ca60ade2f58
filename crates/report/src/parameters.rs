//! Numeric parameters against the metric: the report of a search.
//!
//! In: the plan and the collected runs. Out: for every axis whose values are
//! numbers (at least 3 distinct: a sampled axis, a grid of rates...), its
//! (value, metric) points, Spearman's rank correlation with its 95% interval,
//! and the best configuration; Markdown for them (pure). With successive
//! halving the points are the first rung's, where every run has a value;
//! otherwise each finished run's final value.

use runner_plan::Plan;
use runner_spec::file::Metric;

use super::collect::{self, Collected};
use super::stats::{Interval, Spread, fixed, spearman, spearman_ci95};
use super::table::{self, Table};

/// Label keys that are never parameters.
const NOT_PARAMETERS: [&str; 4] = ["seed", "fold", "experiment", "variant"];

/// The numeric parameters of the collected runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// The metric the points are of.
    pub metric: Metric,
    /// Where the points come from, in words.
    pub source: String,
    /// The best configuration: its labels, its mean value and its runs
    /// (`None` with a search, whose winner its own section names).
    pub best: Option<(String, Spread)>,
    /// One per numeric axis, in label order.
    pub each: Vec<Parameter>,
}

/// One numeric axis against the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Its label key, e.g. `schedule.lr`.
    pub key: String,
    /// (value, metric), one per run.
    pub points: Vec<(f64, f64)>,
    /// Whether its values are positive and span at least a decade (a log axis).
    pub log: bool,
    /// Spearman's rank correlation, with at least 3 points.
    pub rho: Option<f64>,
    /// Its 95% interval, with at least 4 points.
    pub interval: Option<Interval>,
}

/// A run's labels and its value of the metric.
type Valued = (Vec<(String, String)>, f64);

/// The numeric parameters, or `None` when no axis has numeric values.
pub fn find(plan: &Plan, collected: &Collected) -> Option<Parameters> {
    // (labels, value) for every run with a value.
    let (metric, source, runs): (Metric, String, Vec<Valued>) = match &collected.search {
        Some(record) if !record.rungs.is_empty() => {
            let rung = &record.rungs[0];
            let runs = rung
                .runs
                .iter()
                .filter_map(|r| {
                    let planned = plan.runs.iter().find(|p| p.id == r.id)?;
                    Some((planned.labels.clone(), r.value?))
                })
                .collect();
            let source = format!(
                "at the search's first rung (epoch {}), where every run has a value",
                rung.epoch
            );
            (record.metric, source, runs)
        }
        _ => {
            let values = collect::numbers(&collected.frame, collect::column(Metric::ValDist));
            let runs = collected
                .runs
                .iter()
                .zip(values)
                .filter_map(|(run, value)| Some((run.labels.clone(), value?)))
                .collect();
            (Metric::ValDist, "of each finished run (final epoch)".to_owned(), runs)
        }
    };
    let keys: Vec<&String> = collected
        .label_keys
        .iter()
        .filter(|k| !NOT_PARAMETERS.contains(&k.as_str()))
        .collect();
    let each: Vec<Parameter> = keys
        .iter()
        .filter_map(|key| {
            let points: Option<Vec<(f64, f64)>> = runs
                .iter()
                .filter_map(|(labels, value)| {
                    let text = &labels.iter().find(|(k, _)| k == *key)?.1;
                    Some(text.parse::<f64>().ok().filter(|x| x.is_finite()).map(|x| (x, *value)))
                })
                .collect();
            let points = points?;
            let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() < 3 {
                return None;
            }
            let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
            let rho = spearman(&points);
            Some(Parameter {
                key: (*key).clone(),
                log: lo > 0.0 && hi / lo >= 10.0,
                interval: rho.and_then(|r| spearman_ci95(r, points.len())),
                rho,
                points,
            })
        })
        .collect();
    if each.is_empty() {
        return None;
    }
    let best = collected
        .search
        .is_none()
        .then(|| best_cell(collected, metric))
        .flatten();
    Some(Parameters {
        metric,
        source,
        best,
        each,
    })
}

/// The cell with the best mean of `metric`, as labels text and spread.
fn best_cell(collected: &Collected, metric: Metric) -> Option<(String, Spread)> {
    let values = collect::numbers(&collected.frame, collect::column(metric));
    table::cells(&collected.frame, &collected.label_keys)
        .iter()
        .filter_map(|cell| {
            let cell_values: Vec<f64> = cell.rows.iter().filter_map(|&r| values[r]).collect();
            Some((cell.text(), Spread::of(&cell_values)?))
        })
        .min_by(|(_, a), (_, b)| metric.order(a.mean, b.mean))
}

/// The section's Markdown (figure links are added with the others).
pub fn render(parameters: &Parameters) -> String {
    let title = table::title(parameters.metric);
    let decimals = table::decimals(parameters.metric);
    let mut md = format!(
        "\n## Parameters\n\nEach numeric axis against {title} {}: Spearman's rank correlation ρ with its 95% \
         interval (Fisher's z; one value per run, so the interval is over runs, not seeds), and a scatter plot \
         under Figures.\n\n",
        parameters.source
    );
    if let Some((labels, spread)) = &parameters.best {
        md.push_str(&format!(
            "- **best configuration**: `{labels}`: {title} {} ({})\n\n",
            spread.text(decimals),
            runner_plan::show::count(spread.n, "run")
        ));
    }
    let header = ["parameter", "runs", "values", "Spearman ρ", "95% CI", "reading"].map(str::to_owned);
    let rows = parameters
        .each
        .iter()
        .map(|p| {
            let (lo, hi) = super::plots::bounds(p.points.iter().map(|q| q.0));
            vec![
                format!("`{}`", p.key),
                p.points.len().to_string(),
                format!("{} – {}", short(lo), short(hi)),
                p.rho.map_or("–".to_owned(), |r| super::stats::signed(r, 2)),
                p.interval.map_or("–".to_owned(), |i| i.text(2)),
                reading(p, title),
            ]
        })
        .collect();
    md.push_str(
        &Table {
            header: header.to_vec(),
            rows,
        }
        .markdown(),
    );
    md
}

/// What a correlation says, in words.
fn reading(p: &Parameter, title: &str) -> String {
    match (p.rho, p.interval) {
        (None, _) => format!("{title} does not vary: no correlation"),
        (Some(_), None) => "too few runs for an interval".to_owned(),
        (Some(rho), Some(ci)) if ci.above(0.0) || ci.below(0.0) => format!(
            "higher `{}`, {} {title} (the interval excludes 0)",
            p.key,
            if rho > 0.0 { "higher" } else { "lower" }
        ),
        (Some(_), Some(_)) => "no clear monotone relation: the interval includes 0".to_owned(),
    }
}

/// A parameter value, short: `3e-05`, `0.001`, `600`.
fn short(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:.2e}")
    } else {
        let text = fixed(x, 4);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_short_and_readings_follow_the_interval() {
        assert_eq!(short(3e-5), "3.00e-5");
        assert_eq!(short(0.001), "0.001");
        assert_eq!(short(600.0), "600");
        let p = |rho: f64, low: f64, high: f64| Parameter {
            key: "schedule.lr".to_owned(),
            points: Vec::new(),
            log: true,
            rho: Some(rho),
            interval: Some(Interval { low, high }),
        };
        assert_eq!(
            reading(&p(-0.9, -0.99, -0.4), "val dist"),
            "higher `schedule.lr`, lower val dist (the interval excludes 0)"
        );
        assert_eq!(
            reading(&p(0.3, -0.5, 0.8), "val dist"),
            "no clear monotone relation: the interval includes 0"
        );
    }
}
