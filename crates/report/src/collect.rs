//! Collect: a [`Plan`] and its [`RunStore`] → one polars [`DataFrame`] row
//! per finished run, plus what the figures need.
//!
//! In: the plan (never the experiment file) and the store. Out: a
//! [`Collected`]: the frame (columns `id`, one per label key in order of
//! first appearance — `variant`, axis names, `seed` — then the final-epoch
//! metrics (the best evaluation's with early stopping), the two baselines,
//! `epochs`, `result` (with early stopping: which evaluation), `steps`,
//! `parameters`, `seconds`,
//! `device`, `precision`), each finished run's curves, learning rates,
//! example predictions, baselines and note-by-note test predictions (with
//! its folder, for the listening files), the datasets the runs trained on (`data.json`), the
//! runs that are not done (with their state), and notes about files that
//! were unreadable. Nothing here panics on a missing
//! or corrupt file: a run without a readable `summary.json` is listed as
//! missing, and a missing `lr.csv`, `predictions.json` or
//! `test-predictions.json` only leaves that run out of the figure that needs
//! it.
//!
//! Every file is read through the store's [`runner_store::RunFolder`]; a
//! NaN metric (written as `null`) becomes an absent value in the frame.

use polars::prelude::*;

use crate::stats::fixed;
use runner_data::summary::DatasetSummary;
use runner_plan::Plan;
use runner_plan::config::Scheme;
use runner_plan::expect::{PlannedClaim, PlannedExpectation, Selection};
use runner_spec::file::Metric;
use runner_store::records::{BestEpoch, Example, PiecePrediction, Summary};
use runner_store::search::SearchRecord;
use runner_store::{RunFile, RunFolder, RunState, RunStore};

/// The frame column holding a metric's final value.
pub fn column(metric: Metric) -> &'static str {
    match metric {
        Metric::ValLoss => "val_loss",
        Metric::ValLsKl => "val_ls_kl",
        Metric::ValCeWithCls => "val_ce_with_cls",
        Metric::ValDist => "val_dist",
        Metric::GreedyDist => "greedy_dist",
        Metric::Flatness => "flatness",
        Metric::GreedyFlatness => "greedy_flatness",
        Metric::Accuracy => "accuracy",
        Metric::TestDist => "test_dist",
        Metric::TestGreedyDist => "test_greedy_dist",
    }
}

/// The metrics in table order.
pub const METRICS: [Metric; 10] = [
    Metric::ValLoss,
    Metric::ValLsKl,
    Metric::ValCeWithCls,
    Metric::ValDist,
    Metric::GreedyDist,
    Metric::Flatness,
    Metric::GreedyFlatness,
    Metric::Accuracy,
    Metric::TestDist,
    Metric::TestGreedyDist,
];

/// The metrics some run of `frame` has a value of, in table order (each
/// original's own loss exists only for the runs that use its setting).
pub fn reported(frame: &DataFrame) -> Vec<Metric> {
    METRICS
        .into_iter()
        .filter(|m| numbers(frame, column(*m)).iter().any(Option::is_some))
        .collect()
}

/// Frame columns of the baselines' validation distance.
pub const BASELINES: [&str; 2] = ["baseline_mean", "baseline_bin_centre"];

/// A planned run that has no result to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// The run's id.
    pub id: String,
    /// Its labels as `key=value` text.
    pub labels: String,
    /// Its state on disk (`pending`, `failed`, `partial`, `running`,
    /// `damaged`).
    pub state: String,
    /// Why, when known (the failure's reason, the unreadable file).
    pub reason: Option<String>,
}

/// One evaluated epoch, for the learning curves.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// 1-based epoch.
    pub epoch: u64,
    /// Teacher-forced validation distance.
    pub val_dist: Option<f64>,
}

/// What the figures need from one finished run.
#[derive(Debug)]
pub struct RunRecords {
    /// The run's id.
    pub id: String,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// Validation distance per evaluated epoch.
    pub curve: Vec<CurvePoint>,
    /// (step, learning rate) for each optimizer step; empty without `lr.csv`.
    pub lr: Vec<(u64, f64)>,
    /// Saved validation windows; empty without `predictions.json`.
    pub examples: Vec<Example>,
    /// Validation distance of the two baselines (training mean, bin centre).
    pub baselines: [f64; 2],
    /// Every test piece predicted note by note; empty without
    /// `test-predictions.json` (runs without greedy decoding or a test split).
    pub test: Vec<PiecePrediction>,
    /// The run's folder (its `listen/` files are named by `test`).
    pub folder: RunFolder,
    /// With early stopping: the evaluation its values are of.
    pub best: Option<BestEpoch>,
}

/// One dataset (pieces, windows, bins) and the finished runs that trained
/// on it, whatever token scheme they read it in.
#[derive(Debug, Clone, PartialEq)]
pub struct DataUsed {
    /// What the first run's `data.json` recorded.
    pub summary: DatasetSummary,
    /// The token schemes the runs used, in order of first use.
    pub schemes: Vec<Scheme>,
    /// The short ids of the runs that used it.
    pub runs: Vec<String>,
}

impl DataUsed {
    /// Whether `other` is the same data, perhaps in another token scheme.
    fn same_data(&self, other: &DatasetSummary) -> bool {
        let mut other = other.clone();
        other.scheme = self.summary.scheme;
        self.summary == other
    }
}

/// Everything the report is made from.
#[derive(Debug)]
pub struct Collected {
    /// One row per finished run, in plan order.
    pub frame: DataFrame,
    /// The label keys (frame columns), in order of first appearance.
    pub label_keys: Vec<String>,
    /// Per finished run, in frame order.
    pub runs: Vec<RunRecords>,
    /// The datasets the finished runs trained on, each once, in order of
    /// first use.
    pub datasets: Vec<DataUsed>,
    /// Planned runs without a result, in plan order.
    pub missing: Vec<Missing>,
    /// Problems with files of finished runs (a missing `lr.csv`...).
    pub notes: Vec<String>,
    /// The experiment's search record (`search.json`), when it has a search.
    pub search: Option<SearchRecord>,
}

/// One finished run's row, before it becomes columns.
struct Row {
    id: String,
    labels: Vec<(String, String)>,
    metrics: [Option<f64>; 10],
    baselines: [Option<f64>; 2],
    epochs: u64,
    /// With early stopping: which evaluation the metrics are of.
    result: Option<String>,
    steps: u64,
    parameters: Option<i64>,
    seconds: f64,
    device: String,
    precision: Option<String>,
}

/// Reads every planned run's folder into a [`Collected`], with the search
/// record when the plan has a search (the runs it stopped are missing as
/// `stopped by the search`, with the rung).
pub fn collect(plan: &Plan, store: &RunStore) -> PolarsResult<Collected> {
    let mut collected = collect_in(plan, &vec![store; plan.runs.len()])?;
    if plan.search.is_some() {
        match store.search() {
            Ok(record) => collected.search = record,
            Err(reason) => collected
                .notes
                .push(format!("{reason}; the search's rungs are left out")),
        }
    }
    if let Some(record) = &collected.search {
        for missing in &mut collected.missing {
            if let Some(rung) = record.stopped_at(&missing.id) {
                let value = rung.runs.iter().find(|r| r.id == missing.id).and_then(|r| r.value);
                let value = value.map_or("no value".to_owned(), |v| {
                    format!("{} {}", record.metric.name(), fixed(v, 3))
                });
                missing.state = "stopped by the search".to_owned();
                missing.reason = Some(format!("at epoch {} ({value}), not among the runs kept", rung.epoch));
            }
        }
    }
    Ok(collected)
}

/// [`collect`] with each run in its own store: `stores[i]` holds
/// `plan.runs[i]` (a comparison of experiments, [`compared`]).
pub fn collect_in(plan: &Plan, stores: &[&RunStore]) -> PolarsResult<Collected> {
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    let mut datasets: Vec<DataUsed> = Vec::new();
    let mut label_keys: Vec<String> = Vec::new();
    for (run, store) in plan.runs.iter().zip(stores) {
        for (key, _) in &run.labels {
            if !label_keys.contains(key) {
                label_keys.push(key.clone());
            }
        }
        let state = store.state(run);
        if state != RunState::Done {
            let reason = match &state {
                RunState::Failed(reason) | RunState::Damaged(reason) => Some(reason.clone()),
                _ => None,
            };
            missing.push(Missing {
                id: run.id.clone(),
                labels: run.label_text(),
                state: state.word().to_owned(),
                reason,
            });
            continue;
        }
        let folder = store.folder(&run.id);
        let summary = match folder.summary() {
            Ok(summary) => summary,
            Err(reason) => {
                missing.push(Missing {
                    id: run.id.clone(),
                    labels: run.label_text(),
                    state: "done".to_owned(),
                    reason: Some(reason),
                });
                continue;
            }
        };
        let short = short_id(&run.id);
        let lr = match folder.learning_rates() {
            Ok(lr) => lr,
            Err(reason) => {
                notes.push(format!("run {short}: {reason}; left out of the learning-rate figure"));
                Vec::new()
            }
        };
        let examples = match folder.predictions() {
            Ok(examples) => examples,
            Err(reason) => {
                notes.push(format!("run {short}: {reason}; left out of the prediction figures"));
                Vec::new()
            }
        };
        // Absent when the run has no greedy test predictions; a note only
        // when the file is there and unreadable.
        let mut test = match folder.test_predictions() {
            Ok(test) => test,
            Err(reason) => {
                if folder.path(RunFile::TestPredictions).exists() {
                    notes.push(format!("run {short}: {reason}; left out of the test-split figures"));
                }
                Vec::new()
            }
        };
        let notes_of = |p: &PiecePrediction| [p.start.len(), p.end.len(), p.truth.len(), p.greedy.len()];
        if let Some(bad) = test.iter().find(|p| notes_of(p).iter().any(|&n| n != p.pitch.len())) {
            notes.push(format!(
                "run {short}: test-predictions.json has lists of unequal length for {}; left out of the test-split figures",
                bad.piece
            ));
            test.clear();
        }
        for piece in &mut test {
            let Some(name) = &piece.listen else { continue };
            if let Some(gone) = folder.listen_files(name).iter().find(|f| !f.is_file()) {
                let file = gone.file_name().unwrap_or_default().to_string_lossy();
                notes.push(format!(
                    "run {short}: listen/{file} is missing; its piece is not linked"
                ));
                piece.listen = None;
            }
        }
        match folder.data() {
            Ok(data) => match datasets.iter_mut().find(|d| d.same_data(&data)) {
                Some(used) => {
                    used.runs.push(short.to_owned());
                    if !used.schemes.contains(&data.scheme) {
                        used.schemes.push(data.scheme);
                    }
                }
                None => datasets.push(DataUsed {
                    schemes: vec![data.scheme],
                    summary: data,
                    runs: vec![short.to_owned()],
                }),
            },
            Err(reason) => notes.push(format!("run {short}: {reason}; left out of the data summary")),
        }
        rows.push(row(&run.id, &run.labels, &summary));
        runs.push(RunRecords {
            id: run.id.clone(),
            labels: run.labels.clone(),
            curve: summary
                .epochs
                .iter()
                .map(|e| CurvePoint {
                    epoch: e.epoch,
                    val_dist: Some(e.val.dist).filter(|d| d.is_finite()),
                })
                .collect(),
            lr,
            examples,
            baselines: [summary.baseline_mean.dist, summary.baseline_bin_centre.dist],
            test,
            folder,
            best: summary.best.clone(),
        });
    }
    Ok(Collected {
        frame: frame(&rows, &label_keys)?,
        label_keys,
        runs,
        datasets,
        missing,
        notes,
        search: None,
    })
}

/// Several experiments as one plan, with the store of each of its runs:
/// every run's labels start with `experiment=NAME` (cells are keyed by
/// experiment and labels), and every experiment's claims are kept.
pub fn compared<'a>(experiments: &[(&Plan, &'a RunStore)]) -> (Plan, Vec<&'a RunStore>) {
    let names: Vec<&str> = experiments.iter().map(|(plan, _)| plan.experiment.as_str()).collect();
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for &(plan, store) in experiments {
        for run in &plan.runs {
            let mut run = run.clone();
            run.labels.insert(0, ("experiment".to_owned(), plan.experiment.clone()));
            runs.push(run);
            stores.push(store);
        }
    }
    let plan = Plan {
        experiment: names.join("+"),
        description: Some(format!(
            "{} experiments compared: {}",
            names.len(),
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        )),
        runs,
        merged_duplicates: experiments.iter().map(|(plan, _)| plan.merged_duplicates).sum(),
        expectations: experiments
            .iter()
            .flat_map(|(plan, _)| plan.expectations.iter().map(|e| of_experiment(e, &plan.experiment)))
            .collect(),
        // Each experiment's own report shows its search.
        search: None,
    };
    (plan, stores)
}

/// A claim of `experiment` with its selectors named after it
/// (`factorial: schedule=noam`): it keeps selecting that experiment's runs.
fn of_experiment(expectation: &PlannedExpectation, experiment: &str) -> PlannedExpectation {
    let mut expectation = expectation.clone();
    let name = |selection: &mut Selection| selection.selector = format!("{experiment}: {}", selection.selector);
    name(&mut expectation.subject);
    if let PlannedClaim::BetterThan { other, .. } = &mut expectation.claim {
        name(other);
    }
    expectation
}

/// The first 8 hex digits of a run id, as tables show it.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn row(id: &str, labels: &[(String, String)], summary: &Summary) -> Row {
    // The evaluation that stands for the run: the best with early stopping.
    let result = summary.result();
    let test = summary.test.as_ref().map(|(tf, _)| tf.dist);
    let test_greedy = summary
        .test
        .as_ref()
        .and_then(|(_, greedy)| greedy.as_ref())
        .map(|g| g.dist);
    let metrics = METRICS.map(|metric| match metric {
        Metric::TestDist => test,
        Metric::TestGreedyDist => test_greedy,
        validation => result.and_then(|e| e.value(validation)),
    });
    // Every metric is finite or absent in the frame.
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    Row {
        id: id.to_owned(),
        labels: labels.to_vec(),
        metrics: metrics.map(finite),
        baselines: [
            finite(Some(summary.baseline_mean.dist)),
            finite(Some(summary.baseline_bin_centre.dist)),
        ],
        epochs: summary.epochs.last().map_or(0, |e| e.epoch),
        result: summary.best.as_ref().map(|best| {
            let stopped = if best.stopped_early { ", stopped early" } else { "" };
            format!(
                "best: epoch {} ({} {}{stopped})",
                best.epoch,
                best.metric.name(),
                fixed(best.value, 3)
            )
        }),
        steps: summary.steps,
        parameters: (summary.parameters > 0).then_some(summary.parameters),
        seconds: summary.seconds,
        device: summary.device.clone(),
        precision: (!summary.precision.is_empty()).then(|| summary.precision.clone()),
    }
}

fn frame(rows: &[Row], label_keys: &[String]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::new();
    columns.push(Column::new(
        "id".into(),
        rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
    ));
    for key in label_keys {
        let values: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .collect();
        columns.push(Column::new(key.as_str().into(), values));
    }
    for (i, metric) in METRICS.iter().enumerate() {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.metrics[i]).collect();
        columns.push(Column::new(column(*metric).into(), values));
    }
    for (i, name) in BASELINES.iter().enumerate() {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.baselines[i]).collect();
        columns.push(Column::new((*name).into(), values));
    }
    columns.push(Column::new(
        "epochs".into(),
        rows.iter().map(|r| r.epochs).collect::<Vec<u64>>(),
    ));
    columns.push(Column::new(
        "result".into(),
        rows.iter().map(|r| r.result.clone()).collect::<Vec<Option<String>>>(),
    ));
    columns.push(Column::new(
        "steps".into(),
        rows.iter().map(|r| r.steps).collect::<Vec<u64>>(),
    ));
    columns.push(Column::new(
        "parameters".into(),
        rows.iter().map(|r| r.parameters).collect::<Vec<Option<i64>>>(),
    ));
    columns.push(Column::new(
        "seconds".into(),
        rows.iter().map(|r| r.seconds).collect::<Vec<f64>>(),
    ));
    columns.push(Column::new(
        "device".into(),
        rows.iter().map(|r| r.device.clone()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "precision".into(),
        rows.iter()
            .map(|r| r.precision.clone())
            .collect::<Vec<Option<String>>>(),
    ));
    DataFrame::new(rows.len(), columns)
}

/// A string column's values (`None` for nulls, and for every row when the
/// column does not exist).
pub fn strings(frame: &DataFrame, name: &str) -> Vec<Option<String>> {
    match frame.column(name).and_then(|c| c.str()) {
        Ok(values) => values.iter().map(|v| v.map(str::to_owned)).collect(),
        Err(_) => vec![None; frame.height()],
    }
}

/// A numeric column's values as `f64` (`None` for nulls, and for every row
/// when the column does not exist or is not numeric).
pub fn numbers(frame: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let Ok(column) = frame.column(name).and_then(|c| c.cast(&DataType::Float64)) else {
        return vec![None; frame.height()];
    };
    match column.f64() {
        Ok(values) => values.iter().collect(),
        Err(_) => vec![None; frame.height()],
    }
}
