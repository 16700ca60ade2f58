//! The experiment's search, planned: `search halving ...` checked against
//! the planned runs, so that the executor and the report need only the plan.
//!
//! In: the file's [`Search`] and the planned runs. Out: a [`PlannedSearch`]
//! (serialisable: a plan frozen for Slurm keeps it), or the problems, each
//! at the search's span: a rung the runs do not evaluate, a last rung that
//! is not their `train.epochs`, early stopping beside the search, a metric
//! some run does not evaluate.

use serde::{Deserialize, Serialize};

use super::PlannedRun;
use super::resolve::cannot_watch;
use runner_spec::file::{Metric, Search};
use runner_spec::{Kind, Problem};

/// Successive halving over the plan's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSearch {
    /// The metric runs are ranked by at each rung.
    pub metric: Metric,
    /// The epoch each rung trains to; the last is every run's `train.epochs`.
    pub rungs: Vec<u64>,
    /// The share of a rung's runs that go on to the next.
    pub keep: f64,
}

impl PlannedSearch {
    /// The runs at each rung when `runs` start: the first rung has them all.
    pub fn runs_per_rung(&self, runs: usize) -> Vec<usize> {
        let mut counts = vec![runs];
        for _ in 1..self.rungs.len() {
            let previous = *counts.last().expect("one count at least");
            counts.push(self.kept(previous));
        }
        counts
    }

    /// Epochs trained when every rung is full ([`epochs_trained`]).
    pub fn epochs(&self, runs: usize) -> u64 {
        epochs_trained(self.rungs.iter().copied().zip(self.runs_per_rung(runs)))
    }

    /// One line for `runner plan`: the rungs, the runs at each and the budget.
    pub fn describe(&self, runs: usize) -> String {
        let rungs: Vec<String> = self
            .rungs
            .iter()
            .zip(self.runs_per_rung(runs))
            .map(|(epoch, count)| format!("{count} to epoch {epoch}"))
            .collect();
        let last = self.rungs.last().copied().unwrap_or(0);
        format!(
            "search: successive halving by {}, keeping {:.3} of each rung: {}; {} epochs in all, where the full grid trains {}",
            self.metric.name(),
            self.keep,
            rungs.join(", "),
            self.epochs(runs),
            runs as u64 * last
        )
    }

    /// How many of `runs` runs go on from a rung: the `keep` share rounded
    /// up, at least one.
    pub fn kept(&self, runs: usize) -> usize {
        ((runs as f64 * self.keep).ceil() as usize).clamp(1, runs.max(1))
    }
}

/// The epochs rungs train, given each rung's (epoch, runs) in order: each
/// rung's runs from the previous rung's epoch to its own.
pub fn epochs_trained(rungs: impl IntoIterator<Item = (u64, usize)>) -> u64 {
    let mut previous = 0;
    let mut total = 0;
    for (epoch, runs) in rungs {
        total += runs as u64 * (epoch - previous);
        previous = epoch;
    }
    total
}

/// `search` checked against `runs`.
pub fn planned(search: &Search, runs: &[PlannedRun]) -> Result<PlannedSearch, Vec<Problem>> {
    let mut problems = Vec::new();
    let rungs = &search.rungs.value;
    let last = *rungs.last().expect("the parser gives at least one rung");
    let plan_problem = |message: String| Problem::at(Kind::SearchPlan { message }, search.rungs.span);
    let mut epochs: Vec<u64> = runs.iter().map(|r| r.config.train.epochs).collect();
    epochs.sort_unstable();
    epochs.dedup();
    if epochs != [last] {
        let epochs: Vec<String> = epochs.iter().map(u64::to_string).collect();
        problems.push(
            plan_problem(format!(
                "the last rung ({last}) is not the runs' train.epochs ({}): the runs that survive every rung train to the end",
                epochs.join(", ")
            ))
            .help(format!("set `train {{ epochs {last} }}`, or end the rungs at the runs' epochs")),
        );
    }
    for run in runs {
        let every = run.config.train.eval_every;
        if let Some(rung) = rungs.iter().find(|&&r| r % every != 0 && r != run.config.train.epochs) {
            problems.push(
                plan_problem(format!(
                    "rung {rung} is not an evaluated epoch (train.eval-every {every}): it could not be ranked"
                ))
                .help("use rungs that are multiples of eval-every"),
            );
            break;
        }
    }
    if runs.iter().any(|r| r.config.train.early_stop.is_some()) {
        problems.push(
            Problem::at(
                Kind::SearchPlan {
                    message: "a search and early stopping cannot be combined: a run that stops early has no value at the later rungs".to_owned(),
                },
                search.span,
            )
            .help("remove `early-stop` from `train`, or the search"),
        );
    }
    if let Some(cannot) = runs.iter().find_map(|r| r.config.unwatchable(search.metric.value)) {
        problems.push(cannot_watch("search", search.metric.value, cannot, search.metric.span));
    }
    if problems.is_empty() {
        Ok(PlannedSearch {
            metric: search.metric.value,
            rungs: rungs.clone(),
            keep: search.keep.value,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rung_keeps_its_share_rounded_up_and_at_least_one_run() {
        let search = |keep| PlannedSearch {
            metric: Metric::ValDist,
            rungs: vec![1, 3, 9],
            keep,
        };
        assert_eq!(search(1.0 / 3.0).kept(9), 3);
        assert_eq!(search(1.0 / 3.0).kept(3), 1);
        assert_eq!(search(1.0 / 3.0).kept(4), 2);
        assert_eq!(search(0.5).kept(1), 1);
        assert_eq!(search(0.01).kept(7), 1);
        // 9 runs: 9 to epoch 1, 3 to epoch 3, 1 to epoch 9: 9 + 6 + 6 epochs.
        assert_eq!(search(1.0 / 3.0).runs_per_rung(9), [9, 3, 1]);
        assert_eq!(search(1.0 / 3.0).epochs(9), 21);
    }
}
