//! The plan as a terminal table (`tabled`) and as JSON.
//!
//! In: a [`Plan`] and, per run, its status and estimated optimizer steps.
//! Out: text. Nothing here reads files.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::{Plan, PlannedRun};

pub use runner_spec::error::{count, did_you_mean};

/// What the table needs to know about a run beyond its plan.
pub struct RunFacts {
    /// pending / done / partial / failed.
    pub status: String,
    /// Optimizer steps the run will take, when the data size is known.
    pub steps: Option<u64>,
}

/// The plan table: short id, one column per label (variant, axes, seed),
/// device, epochs, estimated steps and status; then a one-line summary.
pub fn table(plan: &Plan, facts: &dyn Fn(&PlannedRun) -> RunFacts) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for run in &plan.runs {
        for (key, _) in &run.labels {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
    }
    let mut builder = Builder::default();
    let mut header = vec!["run".to_owned()];
    header.extend(keys.iter().map(|k| (*k).to_owned()));
    header.extend(["device", "epochs", "est. steps", "status"].map(str::to_owned));
    builder.push_record(header);
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut unknown = 0;
    for run in &plan.runs {
        let facts = facts(run);
        unknown += usize::from(facts.steps.is_none());
        let mut row = vec![run.id[..8].to_owned()];
        for key in &keys {
            row.push(
                run.labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| "-".to_owned()),
            );
        }
        row.push(run.device.to_string());
        row.push(run.config.train.epochs.to_string());
        row.push(facts.steps.map_or_else(|| "?".to_owned(), |s| s.to_string()));
        match counts.iter_mut().find(|(s, _)| *s == facts.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((facts.status.clone(), 1)),
        }
        row.push(facts.status);
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::rounded());
    let mut summary = format!("{}: {}", plan.experiment, count(plan.runs.len(), "run"));
    let statuses: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    summary.push_str(&format!(" ({})", statuses.join(", ")));
    if plan.merged_duplicates > 0 {
        summary.push_str(&format!(
            "; {} identical combinations planned once",
            plan.merged_duplicates
        ));
    }
    if unknown > 0 {
        summary.push_str(&format!(
            "\nest. steps `?`: the dataset of {} is not cached yet (`runner data inspect` or `runner exec` builds it)",
            count(unknown, "run")
        ));
    }
    if let Some(search) = &plan.search {
        summary.push_str(&format!("\n{}", search.describe(plan.runs.len())));
    }
    format!("{table}\n{summary}")
}

/// The full plan, every run's resolved configuration included, as JSON.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("a plan always serialises")
}
