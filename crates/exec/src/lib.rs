//! The executor: a [`Plan`] → trained runs in the runs store.
//!
//! In: a plan (never the experiment file), the store, options and a
//! [`Reporter`]. Out: one [`RunResult`] per selected run, in plan order. A
//! run whose summary exists with a matching configuration is skipped; a run
//! with a checkpoint resumes; a run that fails (an error, a NaN loss, a
//! libtorch panic such as out-of-memory, a worker process killed) is
//! recorded as failed with its reason and log tail while the others go on;
//! a run locked by another `runner exec` is left to it.
//!
//! With a search declared ([`Plan::search`]), [`search`] trains the runs
//! rung by rung (successive halving) instead.
//!
//! Every run trains in a `runner-worker` process ([`worker`]), so this
//! crate, and the `runner` binary, never load libtorch. [`schedule`] keeps
//! [`Options::jobs`] of them going at once (by default one per CUDA device
//! when runs go to CUDA, else one), each pinned to its device and thread
//! count: libtorch's random generator is process-global, so parallel runs
//! must not share a process.
//!
//! A write that fails because the disk is full or the file system read-only
//! ([`runner_store::StoreProblem`]) ends the run as [`Outcome::Unwritable`]: its
//! summary is written atomically or not at all, its status says failed if
//! that could still be written, and it resumes from its last checkpoint;
//! no further run is started, since each would fail the same way.

#![deny(missing_docs)]

pub mod progress;
pub mod schedule;
pub mod search;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Style, Width};

use progress::Reporter;
use runner_data::source::Folders;
use runner_job::{Environment, Halt, Outcome, RunResult};
use runner_plan::config::{CudaGraph, DevicePreference};
use runner_plan::{Plan, PlannedRun};
use runner_store::{RunState, RunStore};
pub use worker::Worker;

/// What the user asked `runner exec` to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only runs matching one of these: an id prefix, a variant name, or
    /// `axis=value` pairs.
    pub only: Vec<String>,
    /// Only runs recorded as failed.
    pub failed_only: bool,
    /// Train again even when done.
    pub force: bool,
    /// Device for every run, overriding the experiment's preference.
    pub device: Option<DevicePreference>,
    /// Runs trained at once (`--jobs`); `None`: one per CUDA device when
    /// the runs go to CUDA, else one.
    pub jobs: Option<usize>,
    /// libtorch threads per run on the CPU (`--threads`); `None`: the cores
    /// shared evenly between the jobs.
    pub threads: Option<usize>,
    /// What the workers' OpenMP threads do between parallel regions is
    /// chosen from ([`schedule::spin_count`]).
    pub openmp: OpenMp,
    /// Whether CUDA steps replay a captured graph (`--cuda-graph`).
    pub cuda_graph: CudaGraph,
    /// Where the runs' data is: the experiment file's folder (relative
    /// dataset paths start there) and the bundled data's.
    pub folders: Folders,
    /// The runs store's root, e.g. `runs/`.
    pub runs_root: PathBuf,
    /// The `runner-worker` binary that trains each run.
    pub worker: Worker,
    /// The devices and cores the worker sees, for placing runs.
    pub environment: Environment,
}

/// What decides how the workers' OpenMP threads wait (it changes speed,
/// never results).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpenMp {
    /// The user's environment sets `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`:
    /// the workers inherit it.
    Given,
    /// Threads of other processes that were ready to run before anything
    /// trained: the least of five readings of `/proc/stat` 20 ms apart.
    Runnable(usize),
    /// Not known (no `/proc/loadavg`): libgomp's default.
    Unknown,
}

impl OpenMp {
    /// What this process's environment and this machine say now (call it
    /// once, where a command starts).
    pub fn here() -> OpenMp {
        if ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return OpenMp::Given;
        }
        let readings: Option<Vec<usize>> = (0..5)
            .map(|i| {
                if i > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let stat = std::fs::read_to_string("/proc/stat").ok()?;
                stat.lines()
                    .find_map(|line| line.strip_prefix("procs_running "))?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect();
        match readings.and_then(|r| r.into_iter().min()) {
            // This process was running as it read.
            Some(running) => OpenMp::Runnable(running.saturating_sub(1)),
            None => OpenMp::Unknown,
        }
    }
}

/// Why `--only` or `--failed-only` select nothing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SelectError {
    /// A `--only` selector matches no run.
    #[error("--only `{selector}` matches no run of {experiment}")]
    #[diagnostic(
        code(runner::unknown_selector),
        help("{help} (or an id prefix, as `runner plan` shows)")
    )]
    NoMatch {
        /// The selector as typed.
        selector: String,
        /// The experiment.
        experiment: String,
        /// The closest selectors.
        help: String,
    },
    /// `--only` or `--failed-only` on an experiment with a search, which
    /// ranks all of its runs.
    #[error("{flag} cannot select runs of {experiment}: its search ranks all of its runs")]
    #[diagnostic(
        code(runner::search_selects),
        help("run `runner exec FILE` without {flag}: finished and paused runs are not trained again, failed ones are")
    )]
    Search {
        /// The flag given.
        flag: String,
        /// The experiment.
        experiment: String,
    },
    /// `--failed-only`, and none of the runs selected failed.
    #[error("--failed-only: none of the {selected} selected has failed")]
    #[diagnostic(
        code(runner::nothing_failed),
        help("`runner status` shows each run's state; without --failed-only, exec trains what is not done")
    )]
    NoneFailed {
        /// How many runs were selected before, in words.
        selected: String,
    },
}

/// The runs `options` select from the plan, with their state: every run,
/// or those matching one of `--only`'s selectors (an id prefix, a variant,
/// `axis=label` pairs), and only the failed ones with `--failed-only`. A
/// selector that matches nothing, or `--failed-only` that keeps nothing, is
/// an error.
pub fn select<'a>(
    plan: &'a Plan,
    store: &RunStore,
    options: &Options,
) -> Result<Vec<(&'a PlannedRun, RunState)>, SelectError> {
    if plan.search.is_some() && (!options.only.is_empty() || options.failed_only) {
        let flag = if options.failed_only { "--failed-only" } else { "--only" };
        return Err(SelectError::Search {
            flag: flag.to_owned(),
            experiment: plan.experiment.clone(),
        });
    }
    let picks = |run: &PlannedRun, selector: &str| run.id.starts_with(selector) || run.matches(selector);
    if let Some(selector) = options
        .only
        .iter()
        .find(|selector| !plan.runs.iter().any(|run| picks(run, selector)))
    {
        return Err(SelectError::NoMatch {
            selector: selector.clone(),
            experiment: plan.experiment.clone(),
            help: runner_plan::selector_help(selector, &plan.runs),
        });
    }
    let chosen: Vec<(&PlannedRun, RunState)> = plan
        .runs
        .iter()
        .filter(|run| options.only.is_empty() || options.only.iter().any(|selector| picks(run, selector)))
        .map(|run| (run, store.state(run)))
        .collect();
    if !options.failed_only {
        return Ok(chosen);
    }
    let selected = runner_plan::show::count(chosen.len(), "run");
    let failed: Vec<_> = chosen
        .into_iter()
        .filter(|(_, state)| matches!(state, RunState::Failed(_)))
        .collect();
    if failed.is_empty() {
        return Err(SelectError::NoneFailed { selected });
    }
    Ok(failed)
}

/// How many runs train at once: `--jobs`, else one per CUDA device when
/// the selected runs go to CUDA, else one.
pub fn jobs(selected: &[(&PlannedRun, RunState)], options: &Options) -> usize {
    options.jobs.unwrap_or_else(|| {
        schedule::default_jobs(
            selected.iter().map(|(run, _)| options.device.unwrap_or(run.device)),
            options.environment.cuda_devices,
        )
    })
}

/// Trains the `selected` runs of `plan` ([`select`]), `jobs` at a time,
/// each in a `runner-worker` process (see [`schedule`]). After a run finds
/// the store unwritable no further run starts.
pub fn execute(
    plan: &Plan,
    selected: &[(&PlannedRun, RunState)],
    store: &RunStore,
    options: &Options,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> Vec<RunResult> {
    let jobs = jobs(selected, options);
    match &plan.search {
        Some(search) => search::run(plan, search, store, options, jobs, reporter, stop),
        None => {
            let batch = schedule::Batch {
                runs: selected,
                until_epoch: None,
            };
            schedule::run(plan, &batch, store, options, jobs, reporter, stop)
        }
    }
}

/// A run's labels as text, or the experiment's name when it has none.
fn label_of(plan: &Plan, run: &PlannedRun) -> String {
    if run.labels.is_empty() {
        plan.experiment.clone()
    } else {
        run.label_text()
    }
}

/// The result of a run not started, for `why`.
fn not_started(run: &PlannedRun, label: String, why: Halt) -> RunResult {
    RunResult {
        id: run.id.clone(),
        label,
        outcome: Outcome::NotStarted(why),
        seconds: 0.0,
        val_dist: None,
    }
}

/// How a run ends without training: not started when a stop was asked for
/// before its turn (only a run that started can be interrupted), skipped
/// when done, reported when damaged (both unless forced); `None`: it trains.
fn settled(state: &RunState, force: bool, stop: &AtomicBool) -> Option<Outcome> {
    if stop.load(Ordering::Relaxed) {
        Some(Outcome::NotStarted(Halt::Stopped))
    } else if force {
        None
    } else {
        match state {
            RunState::Done => Some(Outcome::Skipped),
            RunState::Damaged(damage) => Some(Outcome::Damaged(damage.clone())),
            _ => None,
        }
    }
}

/// The widest the outcome column gets: a failure's reason wraps there (the
/// whole of it is on the run's progress line and in its `status.json`).
const OUTCOME_WIDTH: usize = 60;

/// The closing table: one row per run, then the counts.
pub fn table(results: &[RunResult]) -> String {
    let mut builder = Builder::default();
    builder.push_record(["run", "labels", "outcome", "val dist", "time"]);
    for r in results {
        let dist = r.val_dist.map_or_else(|| "-".to_owned(), |d| format!("{d:.2}"));
        builder.push_record([
            r.id[..8].to_owned(),
            r.label.clone(),
            r.outcome.text(),
            dist,
            r.time().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let mut table = builder.build();
    table
        .with(Style::rounded())
        .modify(Columns::one(2), Width::wrap(OUTCOME_WIDTH).keep_words(true));
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let not_started = match count(|o| !o.started()) {
        0 => String::new(),
        n => format!(", {n} not started"),
    };
    let paused = match count(|o| matches!(o, Outcome::Paused(_))) {
        0 => String::new(),
        n => format!(", {n} paused by the search"),
    };
    format!(
        "{table}\n{} trained, {} resumed, {} skipped, {} busy, {} interrupted, {} failed{not_started}{paused}",
        count(|o| *o == Outcome::Trained),
        count(|o| *o == Outcome::Resumed),
        count(|o| *o == Outcome::Skipped),
        count(|o| *o == Outcome::Busy),
        count(|o| *o == Outcome::Interrupted),
        count(Outcome::is_failure),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After Ctrl-C, a run whose turn comes is not started, whatever its
    /// state: only the run in progress is interrupted (by the trainer).
    #[test]
    fn after_a_stop_later_runs_are_not_started_rather_than_interrupted() {
        let stopped = AtomicBool::new(true);
        for state in [RunState::Pending, RunState::Partial, RunState::Done] {
            assert_eq!(
                settled(&state, false, &stopped),
                Some(Outcome::NotStarted(Halt::Stopped)),
                "{state:?}"
            );
        }
        let going = AtomicBool::new(false);
        assert_eq!(settled(&RunState::Pending, false, &going), None);
        assert_eq!(settled(&RunState::Done, false, &going), Some(Outcome::Skipped));
        assert_eq!(settled(&RunState::Done, true, &going), None);
        let damaged = RunState::Damaged("summary.json is corrupt".to_owned());
        assert_eq!(
            settled(&damaged, false, &going),
            Some(Outcome::Damaged("summary.json is corrupt".to_owned()))
        );
        assert_eq!(settled(&damaged, true, &going), None);
    }

    #[test]
    fn the_table_counts_runs_not_started_apart_and_gives_them_no_time() {
        let result = |id: &str, outcome: Outcome, seconds: f64| RunResult {
            id: id.to_owned(),
            label: "seed=1".to_owned(),
            outcome,
            seconds,
            val_dist: None,
        };
        let results = [
            result("aaaaaaaa00000000", Outcome::Interrupted, 2.5),
            result("bbbbbbbb00000000", Outcome::NotStarted(Halt::Stopped), 0.0),
            result("cccccccc00000000", Outcome::NotStarted(Halt::Unwritable), 0.0),
        ];
        let table = table(&results);
        assert!(
            table.ends_with("0 trained, 0 resumed, 0 skipped, 0 busy, 1 interrupted, 0 failed, 2 not started"),
            "{table}"
        );
        let row = |id: &str| table.lines().find(|l| l.contains(id)).unwrap().to_owned();
        assert!(row("aaaaaaaa").contains("2.5s"), "{table}");
        assert_eq!(results[0].describe(), "aaaaaaaa seed=1: interrupted (2.5s)");
        for (id, why) in [
            ("bbbbbbbb", "not started (stopped)"),
            ("cccccccc", "not started (store unwritable)"),
        ] {
            let row = row(id);
            let cells: Vec<&str> = row.split('│').map(str::trim).collect();
            assert!(cells.contains(&why) && cells.contains(&"-"), "{table}");
        }
        assert_eq!(results[1].describe(), "bbbbbbbb seed=1: not started (stopped)");
    }
}
