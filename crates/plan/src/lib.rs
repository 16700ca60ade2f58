//! The planner: an [`Experiment`] → a [`Plan`] of concrete runs.
//!
//! In: a loaded experiment. Out: every run it declares, each a fully
//! resolved [`RunConfig`] with an id that is a hash of its canonical form,
//! labelled by the variant / axis values / seed that made it, and the
//! experiment's expectations with the runs each side selects ([`expect`]).
//! Runs that would be identical are planned once. [`load`] (and [`check`],
//! which also looks for the data folders) drive both stages from a path,
//! with every problem: `runner` and the tests start there; the executor,
//! the report and a Slurm submission take the `Plan` and never re-read the
//! experiment file. [`presets`] holds the write-up's and a tiny model.

#![deny(missing_docs)]

pub mod config;
mod data;
pub mod expect;
pub mod matrix;
pub mod presets;
pub mod resolve;
pub mod search;
pub mod show;
pub mod write;

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use config::{DevicePreference, RunConfig};
use expect::PlannedExpectation;
use runner_spec::file::Claim;
use runner_spec::{Experiment, Kind, Problem, Span, SpecError};

/// One run to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Hash of the canonical config (16 hex digits).
    pub id: String,
    /// What distinguishes this run: (axis or `variant` or `fold` or `seed`, value).
    pub labels: Vec<(String, String)>,
    /// The resolved configuration.
    pub config: RunConfig,
    /// Where it asks to train.
    pub device: DevicePreference,
}

impl PlannedRun {
    /// The labels as `axis=value` pairs joined by spaces.
    pub fn label_text(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether the run matches a selector: a variant name, or `axis=label`
    /// pairs separated by spaces (all must hold).
    pub fn matches(&self, selector: &str) -> bool {
        matches(&self.labels, selector)
    }
}

/// An experiment expanded into runs: everything the executor and the
/// report need, so neither re-reads the experiment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The experiment's name.
    pub experiment: String,
    /// Its description.
    pub description: Option<String>,
    /// The runs, in matrix order, folds then seeds innermost.
    pub runs: Vec<PlannedRun>,
    /// Cells that resolved to a run already planned.
    pub merged_duplicates: usize,
    /// The claims the report checks, with the runs each side selects.
    #[serde(default)]
    pub expectations: Vec<PlannedExpectation>,
    /// The search over the runs, if the file declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<search::PlannedSearch>,
}

/// Loads the experiment file at `path` (with its `extends` chain) and
/// expands it into its plan: what `runner` and every test start from.
/// Every problem found is in the error.
pub fn load(path: &Path) -> Result<Plan, SpecError> {
    drive(path, false)
}

/// Loads and plans an experiment file, and checks that the data folders it
/// names exist (relative ones are taken from the file's folder).
pub fn check(path: &Path) -> Result<Plan, SpecError> {
    drive(path, true)
}

fn drive(path: &Path, data: bool) -> Result<Plan, SpecError> {
    let mut loaded = runner_spec::load_all(path);
    if let Some(experiment) = &loaded.experiment {
        if data {
            loaded.problems.extend(data::missing_data(experiment));
        }
        match expand(experiment) {
            Ok(plan) if loaded.problems.is_empty() => return Ok(plan),
            Ok(_) => {}
            Err(found) => loaded.problems.extend(found),
        }
    }
    Err(loaded.error(path))
}

/// Expands an experiment into its runs, checking every combination and the
/// expectations' selectors.
pub fn expand(experiment: &Experiment) -> Result<Plan, Vec<Problem>> {
    let cells = matrix::cells(experiment)?;
    let mut problems: Vec<Problem> = Vec::new();
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut ids = HashSet::new();
    let mut merged_duplicates = 0;
    // The labels of every run, and of every cell whose run has problems.
    let mut declared: Vec<Vec<(String, String)>> = Vec::new();
    for cell in &cells {
        let overrides = experiment.settings.iter().chain(&cell.overrides);
        let resolved = match resolve::resolve(overrides, experiment.name.span) {
            Ok(resolved) => resolved,
            Err(found) => {
                add_cell_problems(&mut problems, found, &cell.labels);
                declared.push(cell.labels.clone());
                continue;
            }
        };
        // `split k-fold` without a `fold`: one run per fold, then per seed.
        let folds: Vec<Option<usize>> = match resolved.folds {
            Some(k) => (0..k).map(Some).collect(),
            None => vec![None],
        };
        for (fold, repeat) in folds.iter().flat_map(|&f| (0..experiment.repeats).map(move |r| (f, r))) {
            let mut config = resolved.config.clone();
            config.seed += u64::from(repeat);
            let mut labels = cell.labels.clone();
            if let Some(fold) = fold {
                if let config::Split::KFold { fold: slot, .. } = &mut config.dataset.split {
                    *slot = fold;
                }
                labels.push(("fold".to_owned(), fold.to_string()));
            }
            if experiment.repeats > 1 {
                labels.push(("seed".to_owned(), config.seed.to_string()));
            }
            let id = config.id();
            if ids.insert(id.clone()) {
                declared.push(labels.clone());
                runs.push(PlannedRun {
                    id,
                    labels,
                    config,
                    device: resolved.device,
                });
            } else {
                merged_duplicates += 1;
            }
        }
    }
    problems.extend(selector_problems(experiment, &declared));
    let search = match &experiment.search {
        Some(declared) if problems.is_empty() => match search::planned(declared, &runs) {
            Ok(planned) => Some(planned),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
        _ => None,
    };
    if problems.is_empty() {
        let expectations = experiment
            .expectations
            .iter()
            .map(|expectation| expect::planned(expectation, &runs))
            .collect();
        Ok(Plan {
            experiment: experiment.name.value.clone(),
            description: experiment.description.clone(),
            runs,
            merged_duplicates,
            expectations,
            search,
        })
    } else {
        Err(problems)
    }
}

/// Adds a cell's problems, naming the run; a problem already reported at
/// the same place for another cell is not repeated.
fn add_cell_problems(problems: &mut Vec<Problem>, found: Vec<Problem>, labels: &[(String, String)]) {
    for mut problem in found {
        if !labels.is_empty() {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            problem.run = Some(labels.join(" "));
        }
        if !problems
            .iter()
            .any(|p| p.kind.code() == problem.kind.code() && p.span == problem.span)
        {
            problems.push(problem);
        }
    }
}

/// An expectation's selectors that match none of the declared runs.
fn selector_problems(experiment: &Experiment, declared: &[Vec<(String, String)>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for expectation in &experiment.expectations {
        let mut selectors = vec![&expectation.subject];
        if let Claim::BetterThan { other, .. } = &expectation.claim {
            selectors.push(other);
        }
        for selector in selectors {
            if !declared.iter().any(|labels| matches(labels, &selector.value)) {
                problems.push(no_match(&selector.value, selector.span, declared));
            }
        }
    }
    problems
}

/// Whether labels match a selector: a variant name, or `axis=label` pairs
/// separated by spaces (all must hold).
fn matches(labels: &[(String, String)], selector: &str) -> bool {
    selector.split_whitespace().all(|part| match part.split_once('=') {
        Some((key, value)) => labels.iter().any(|(k, v)| k == key && v == value),
        None => labels.iter().any(|(k, v)| k == "variant" && v == part),
    })
}

fn no_match(selector: &str, span: Span, declared: &[Vec<(String, String)>]) -> Problem {
    let help = suggestion(selector, declared.iter().map(Vec::as_slice));
    Problem::at(
        Kind::NoMatch {
            selector: selector.to_owned(),
        },
        span,
    )
    .help(help)
}

/// What to say about a selector that matches none of `runs`: the closest
/// selector they answer to (a variant name or `axis=label`), else the list.
pub fn selector_help(selector: &str, runs: &[PlannedRun]) -> String {
    suggestion(selector, runs.iter().map(|run| run.labels.as_slice()))
}

/// The selector among those `labels` answer to closest to `selector`, else
/// the list of them.
fn suggestion<'a>(selector: &str, labels: impl Iterator<Item = &'a [(String, String)]>) -> String {
    let mut known: Vec<String> = labels
        .flat_map(|labels| labels.iter().filter(|(k, _)| k != "seed" && k != "fold"))
        .map(|(k, v)| if k == "variant" { v.clone() } else { format!("{k}={v}") })
        .collect();
    known.sort();
    known.dedup();
    runner_spec::error::did_you_mean(selector, known.iter().map(String::as_str))
        .unwrap_or_else(|| format!("selectors: {}", known.join(", ")))
}

/// The paths whose values differ between runs, for the plan table.
pub fn varying_paths(plan: &Plan) -> Vec<String> {
    let Some(first) = plan.runs.first() else {
        return Vec::new();
    };
    let flat = |run: &PlannedRun| flatten(&serde_json::to_value(&run.config).unwrap_or_default());
    let reference = flat(first);
    let mut varying: Vec<String> = Vec::new();
    for run in &plan.runs[1..] {
        for (path, value) in flat(run) {
            let same = reference.iter().any(|(p, v)| *p == path && *v == value);
            if !same && !varying.contains(&path) {
                varying.push(path);
            }
        }
    }
    varying
}

/// (path, value) pairs of a JSON tree, e.g. `model.d-model` → `256`.
pub fn flatten(value: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    let path = if key == "kind" {
                        prefix.to_owned()
                    } else if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}
