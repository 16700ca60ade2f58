//! Tables: the collected frame → [`Table`]s → Markdown (or terminal) text.
//!
//! In: the frame of [`super::collect`] (and the plan for the experiment's
//! declaration). Out: pure values — the main comparison per cell (runs
//! grouped by their labels other than `seed` and `fold`, mean ± the
//! half-width of its 95% confidence interval across those replicates), hardware and time per run, the missing runs — and their text.
//! Groupings are computed in plain Rust over the frame's columns.

use polars::prelude::DataFrame;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::collect::{self, BASELINES, Missing, short_id};
use super::stats::{Spread, fixed};
use runner_plan::{self as plan, Plan};
use runner_spec::file::Metric;

/// A table: a header and rows of text, all of the header's width.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table in GitHub Markdown (`|` in cells escaped).
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut text = line(&self.header);
        text.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            text.push_str(&line(row));
        }
        text
    }

    /// The table for a terminal.
    pub fn terminal(&self) -> String {
        let mut builder = Builder::default();
        builder.push_record(self.header.clone());
        for row in &self.rows {
            builder.push_record(row.clone());
        }
        builder.build().with(Style::rounded()).to_string()
    }
}

/// Runs that differ only by seed and fold: the replicates of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The labels other than `seed` and `fold` (empty for an experiment of one cell).
    pub labels: Vec<(String, String)>,
    /// The cell's frame rows.
    pub rows: Vec<usize>,
}

impl Cell {
    /// The labels as `key=value` pairs joined by spaces (`all runs` when none).
    pub fn text(&self) -> String {
        if self.labels.is_empty() {
            return "all runs".to_owned();
        }
        let pairs: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join(" ")
    }
}

/// The label keys that tell replicates of one cell apart: a run's seed
/// and its cross-validation fold.
pub const REPLICATE_KEYS: [&str; 2] = ["seed", "fold"];

/// Each row's replicate: its `seed` and `fold` labels joined (`None` for
/// every row with neither), and the distinct replicates. Differences are
/// paired by replicate: the same seed on the same fold.
pub fn replicates(frame: &DataFrame) -> (Vec<Option<String>>, Vec<Option<String>>) {
    let columns: Vec<Vec<Option<String>>> = REPLICATE_KEYS.iter().map(|key| collect::strings(frame, key)).collect();
    let per_row: Vec<Option<String>> = (0..frame.height())
        .map(|row| {
            let parts: Vec<String> = REPLICATE_KEYS
                .iter()
                .zip(&columns)
                .filter_map(|(key, column)| Some(format!("{key}={}", column[row].as_ref()?)))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .collect();
    let mut distinct: Vec<Option<String>> = Vec::new();
    for s in &per_row {
        if !distinct.contains(s) {
            distinct.push(s.clone());
        }
    }
    (per_row, distinct)
}

/// The label keys other than [`REPLICATE_KEYS`].
pub fn cell_keys(label_keys: &[String]) -> Vec<String> {
    label_keys
        .iter()
        .filter(|k| !REPLICATE_KEYS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The frame's rows grouped by their labels other than `seed` and `fold`,
/// in order of first appearance.
pub fn cells(frame: &DataFrame, label_keys: &[String]) -> Vec<Cell> {
    let keys = cell_keys(label_keys);
    let columns: Vec<Vec<Option<String>>> = keys.iter().map(|k| collect::strings(frame, k)).collect();
    let mut cells: Vec<Cell> = Vec::new();
    for row in 0..frame.height() {
        let labels: Vec<(String, String)> = keys
            .iter()
            .zip(&columns)
            .filter_map(|(k, values)| values[row].clone().map(|v| (k.clone(), v)))
            .collect();
        match cells.iter_mut().find(|c| c.labels == labels) {
            Some(cell) => cell.rows.push(row),
            None => cells.push(Cell {
                labels,
                rows: vec![row],
            }),
        }
    }
    cells
}

/// Decimals shown for a metric.
pub fn decimals(metric: Metric) -> usize {
    match metric {
        Metric::ValLoss | Metric::ValLsKl | Metric::ValCeWithCls | Metric::Accuracy => 3,
        Metric::ValDist
        | Metric::GreedyDist
        | Metric::Flatness
        | Metric::GreedyFlatness
        | Metric::TestDist
        | Metric::TestGreedyDist => 2,
    }
}

/// A metric's name in tables and sentences (`val dist`).
pub fn title(metric: Metric) -> &'static str {
    match metric {
        Metric::ValLoss => "val loss",
        Metric::ValLsKl => "val ls-kl",
        Metric::ValCeWithCls => "val ce+cls",
        Metric::ValDist => "val dist",
        Metric::GreedyDist => "greedy dist",
        Metric::Flatness => "flatness",
        Metric::GreedyFlatness => "greedy flatness",
        Metric::Accuracy => "accuracy",
        Metric::TestDist => "test dist",
        Metric::TestGreedyDist => "test greedy dist",
    }
}

/// The spread of a column over some rows (nulls left out).
pub fn spread(values: &[Option<f64>], rows: &[usize]) -> Option<Spread> {
    let present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
    Spread::of(&present)
}

/// The main comparison: one row per cell, each reported metric's final
/// value as the mean ± the half-width of its 95% confidence interval
/// across replicates, and the two baselines.
pub fn main_table(frame: &DataFrame, label_keys: &[String]) -> Table {
    let keys = cell_keys(label_keys);
    let mut header: Vec<String> = keys.clone();
    header.push("runs".to_owned());
    let metrics = collect::reported(frame);
    header.extend(metrics.iter().map(|m| title(*m).to_owned()));
    header.extend(["mean baseline".to_owned(), "bin-centre baseline".to_owned()]);
    let metric_columns: Vec<Vec<Option<f64>>> = metrics
        .iter()
        .map(|m| collect::numbers(frame, collect::column(*m)))
        .collect();
    let baseline_columns: Vec<Vec<Option<f64>>> = BASELINES.iter().map(|b| collect::numbers(frame, b)).collect();
    let show = |s: Option<Spread>, decimals: usize| s.map_or_else(|| "–".to_owned(), |s| s.text(decimals));
    let rows = cells(frame, label_keys)
        .iter()
        .map(|cell| {
            let mut row: Vec<String> = keys
                .iter()
                .map(|k| {
                    cell.labels
                        .iter()
                        .find(|(key, _)| key == k)
                        .map_or_else(|| "–".to_owned(), |(_, v)| v.clone())
                })
                .collect();
            row.push(cell.rows.len().to_string());
            for (metric, values) in metrics.iter().zip(&metric_columns) {
                row.push(show(spread(values, &cell.rows), decimals(*metric)));
            }
            for values in &baseline_columns {
                row.push(show(spread(values, &cell.rows), 2));
            }
            row
        })
        .collect();
    Table { header, rows }
}

/// The experiment as declared: name, description, runs, what varies.
pub fn experiment(plan: &Plan, finished: usize) -> String {
    let mut text = format!("- **experiment**: `{}`\n", plan.experiment);
    if let Some(description) = &plan.description {
        text.push_str(&format!("- **description**: {description}\n"));
    }
    let planned = plan.runs.len();
    text.push_str(&format!(
        "- **runs**: {planned} planned, {finished} finished, {} missing\n",
        planned - finished.min(planned)
    ));
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for run in &plan.runs {
        for (key, value) in &run.labels {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) if !values.contains(value) => values.push(value.clone()),
                Some(_) => {}
                None => keys.push((key.clone(), vec![value.clone()])),
            }
        }
    }
    if !keys.is_empty() {
        let described: Vec<String> = keys
            .iter()
            .map(|(k, values)| format!("`{k}` ∈ {{{}}}", values.join(", ")))
            .collect();
        text.push_str(&format!("- **labels**: {}\n", described.join("; ")));
    }
    let paths = plan::varying_paths(plan);
    if !paths.is_empty() {
        let paths: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
        text.push_str(&format!(
            "- **settings that differ between runs**: {}\n",
            paths.join(", ")
        ));
    }
    text
}

/// Hardware and time per finished run.
pub fn hardware_table(frame: &DataFrame, label_keys: &[String]) -> Table {
    let header = [
        "run",
        "labels",
        "device",
        "precision",
        "parameters",
        "epochs",
        "steps",
        "seconds",
        "ms/step",
    ];
    let ids = collect::strings(frame, "id");
    let labels: Vec<Vec<Option<String>>> = label_keys.iter().map(|k| collect::strings(frame, k)).collect();
    // Shown only when a run stopped early or kept its best evaluation.
    let result = collect::strings(frame, "result");
    let with_result = result.iter().any(Option::is_some);
    let device = collect::strings(frame, "device");
    let precision = collect::strings(frame, "precision");
    let parameters = collect::numbers(frame, "parameters");
    let epochs = collect::numbers(frame, "epochs");
    let steps = collect::numbers(frame, "steps");
    let seconds = collect::numbers(frame, "seconds");
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".to_owned());
    let whole = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| fixed(v, 0));
    let rows = (0..frame.height())
        .map(|r| {
            let pairs: Vec<String> = label_keys
                .iter()
                .zip(&labels)
                .filter_map(|(k, values)| values[r].as_ref().map(|v| format!("{k}={v}")))
                .collect();
            let per_step = match (seconds[r], steps[r]) {
                (Some(s), Some(n)) if n > 0.0 => fixed(1000.0 * s / n, 1),
                _ => "–".to_owned(),
            };
            let mut row = vec![
                short_id(ids[r].as_deref().unwrap_or("?")).to_owned(),
                pairs.join(" "),
                text(&device[r]),
                text(&precision[r]),
                whole(parameters[r]),
                whole(epochs[r]),
                whole(steps[r]),
                seconds[r].map_or_else(|| "–".to_owned(), |s| fixed(s, 1)),
                per_step,
            ];
            if with_result {
                row.insert(6, text(&result[r]));
            }
            row
        })
        .collect();
    let mut header: Vec<String> = header.map(str::to_owned).to_vec();
    if with_result {
        header.insert(6, "result".to_owned());
    }
    Table { header, rows }
}

/// The planned runs without a result.
pub fn missing_table(missing: &[Missing]) -> Table {
    Table {
        header: ["run", "labels", "state", "reason"].map(str::to_owned).to_vec(),
        rows: missing
            .iter()
            .map(|m| {
                vec![
                    short_id(&m.id).to_owned(),
                    m.labels.clone(),
                    m.state.clone(),
                    m.reason.clone().unwrap_or_else(|| "–".to_owned()).replace('\n', " "),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_pipes() {
        let table = Table {
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["x|y".into(), "1".into()]],
        };
        assert_eq!(table.markdown(), "| a | b |\n|---|---|\n| x\\|y | 1 |\n");
    }
}
