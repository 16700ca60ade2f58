//! Successive halving, as the plan's search declares it.
//!
//! In: the plan with its [`PlannedSearch`], the store, the options. Out: one
//! [`RunResult`] per planned run (its last outcome), and `search.json` in
//! the store ([`SearchRecord`]), rewritten after every rung.
//!
//! Every run trains to the first rung's epoch and pauses there,
//! checkpointed; the runs are ranked by the metric at that epoch (ties by
//! plan order) and the best `keep` share goes on from its checkpoint to the
//! next rung, and so on; the last rung's runs train to the end and the best
//! of them is the winner. Each rung runs through [`schedule`] (`--jobs` at a
//! time). Nothing is kept here between rungs that the runs' folders do not
//! hold: after a kill, the same command asks each run for its rung again,
//! and a run already there answers from its checkpoint without training,
//! so the search ends where an uninterrupted one ends.

use std::sync::atomic::{AtomicBool, Ordering};

use runner_job::{Outcome, RunResult};
use runner_plan::search::PlannedSearch;
use runner_plan::show::count;
use runner_plan::{Plan, PlannedRun};
use runner_store::search::{Rung, RungRun, SearchRecord};
use runner_store::{RunState, RunStore};

use super::progress::Reporter;
use super::{Options, label_of, schedule};

/// Runs the search over every planned run, `jobs` at a time.
pub(super) fn run(
    plan: &Plan,
    search: &PlannedSearch,
    store: &RunStore,
    options: &Options,
    jobs: usize,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> Vec<RunResult> {
    let mut last: Vec<Option<RunResult>> = vec![None; plan.runs.len()];
    let mut record = SearchRecord {
        metric: search.metric,
        keep: search.keep,
        planned: search.rungs.clone(),
        rungs: Vec::new(),
    };
    let mut candidates: Vec<usize> = (0..plan.runs.len()).collect();
    for (k, &epoch) in search.rungs.iter().enumerate() {
        let final_rung = k + 1 == search.rungs.len();
        let selected: Vec<(&PlannedRun, RunState)> = candidates
            .iter()
            .map(|&i| (&plan.runs[i], store.state(&plan.runs[i])))
            .collect();
        // `--force` starts the runs over once, at the first rung.
        let options = Options {
            force: options.force && k == 0,
            ..options.clone()
        };
        let batch = schedule::Batch {
            runs: &selected,
            until_epoch: (!final_rung).then_some(epoch),
        };
        let results = schedule::run(plan, &batch, store, &options, jobs, reporter, stop);
        let mut ranked: Vec<(usize, Option<f64>)> = Vec::new();
        for (&i, result) in candidates.iter().zip(&results) {
            ranked.push((i, value_at(store, &plan.runs[i], &result.outcome, search, epoch)));
            last[i] = Some(result.clone());
        }
        // A run stopped, left to another exec or unwritable cannot be ranked yet.
        let halted = results.iter().any(|r| {
            !r.outcome.started()
                || matches!(
                    r.outcome,
                    Outcome::Interrupted | Outcome::Busy | Outcome::Unwritable { .. }
                )
        });
        if halted || stop.load(Ordering::Relaxed) {
            reporter.line(&format!(
                "search: stopped at rung {} (epoch {epoch}); run the same command again to go on",
                k + 1
            ));
            break;
        }
        sort_best_first(&mut ranked, search);
        let keep = if final_rung { 1 } else { search.kept(candidates.len()) };
        let kept: Vec<usize> = ranked
            .iter()
            .filter(|(_, value)| value.is_some())
            .take(keep)
            .map(|&(i, _)| i)
            .collect();
        record.rungs.push(Rung {
            epoch,
            runs: ranked
                .iter()
                .map(|&(i, value)| RungRun {
                    id: plan.runs[i].id.clone(),
                    label: label_of(plan, &plan.runs[i]),
                    value,
                    kept: kept.contains(&i),
                })
                .collect(),
        });
        if let Err(e) = store.write_search(&record) {
            reporter.line(&format!("search: {e}; the rung table is not saved"));
        }
        reporter.line(&describe_rung(&record, k, search));
        if kept.is_empty() {
            reporter.line("search: no run of this rung has a value (all failed); the search ends here");
            break;
        }
        candidates = kept;
    }
    if record.is_complete() {
        reporter.line(&format!(
            "search: {} epochs trained, where the full grid trains {}",
            record.epochs_trained(),
            record.grid_epochs()
        ));
    }
    last.into_iter().flatten().collect()
}

/// The run's metric at the rung's `epoch`: from its pause, or from its
/// summary when it finished; `None` when it failed or did not get there.
fn value_at(store: &RunStore, run: &PlannedRun, outcome: &Outcome, search: &PlannedSearch, epoch: u64) -> Option<f64> {
    let value = match outcome {
        Outcome::Paused(record) if record.epoch == epoch => record.value(search.metric),
        Outcome::Trained | Outcome::Resumed | Outcome::Skipped => {
            let summary = store.folder(&run.id).summary().ok()?;
            summary.epochs.iter().find(|e| e.epoch == epoch)?.value(search.metric)
        }
        _ => None,
    };
    value.filter(|v| v.is_finite())
}

/// Best first by the search's metric; runs without a value last; ties in
/// plan order.
fn sort_best_first(ranked: &mut [(usize, Option<f64>)], search: &PlannedSearch) {
    ranked.sort_by(|(i, a), (j, b)| match (a, b) {
        (Some(a), Some(b)) => search.metric.order(*a, *b).then(i.cmp(j)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => i.cmp(j),
    });
}

/// One line for rung `k` of the record.
fn describe_rung(record: &SearchRecord, k: usize, search: &PlannedSearch) -> String {
    let rung = &record.rungs[k];
    let best = rung.runs.first();
    let best = best.map_or(String::new(), |r| {
        let value = r.value.map_or("–".to_owned(), |v| format!("{v:.3}"));
        format!("; best {} {} ({} {value})", &r.id[..8], r.label, search.metric.name())
    });
    let kept = rung.runs.iter().filter(|r| r.kept).count();
    let runs = count(rung.runs.len(), "run");
    if k + 1 == record.planned.len() {
        format!(
            "search: rung {} (epoch {}): {runs}{best}: the winner",
            k + 1,
            rung.epoch
        )
    } else {
        format!(
            "search: rung {} (epoch {}): {runs}, {kept} go on{best}",
            k + 1,
            rung.epoch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner_spec::file::Metric;

    #[test]
    fn ranking_puts_the_best_first_ties_in_plan_order_and_failures_last() {
        let search = |metric| PlannedSearch {
            metric,
            rungs: vec![1, 2],
            keep: 0.5,
        };
        let mut ranked = vec![(0, Some(3.0)), (1, None), (2, Some(1.0)), (3, Some(3.0))];
        sort_best_first(&mut ranked, &search(Metric::ValDist));
        assert_eq!(ranked, [(2, Some(1.0)), (0, Some(3.0)), (3, Some(3.0)), (1, None)]);
        sort_best_first(&mut ranked, &search(Metric::Accuracy));
        assert_eq!(ranked, [(0, Some(3.0)), (3, Some(3.0)), (2, Some(1.0)), (1, None)]);
    }
}
