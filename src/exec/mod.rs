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
//! With one job, runs train one after another in this process. With more
//! ([`Options::jobs`], by default one per CUDA device when runs go to CUDA),
//! [`schedule`] trains that many at once, each in a [`worker`] process
//! pinned to its device and thread count: libtorch's random generator is
//! process-global, so parallel runs must not share a process.
//!
//! A write that fails because the disk is full or the file system read-only
//! ([`store::StoreProblem`]) ends the run as [`Outcome::Unwritable`]: its
//! summary is written atomically or not at all, its status says failed if
//! that could still be written, and it resumes from its last checkpoint;
//! no further run is started, since each would fail the same way.

pub mod progress;
pub mod schedule;
pub mod store;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Style, Width};
use tch::Device;

use crate::data::dataset::{self, DataError};
use crate::plan::config::DevicePreference;
use crate::plan::{Plan, PlannedRun};
use crate::train::run::{self as training, TrainError};
use crate::train::torch_panic::catch_panic;
use progress::Reporter;
use store::{Recorded, RunState, RunStore, StoreError, StoreProblem};

/// What the user asked `runner exec` to do.
#[derive(Debug, Clone, Default)]
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
    /// The folder relative dataset paths start from (the experiment file's).
    pub base_dir: PathBuf,
    /// The runs store's root, e.g. `runs/`.
    pub runs_root: PathBuf,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Trained from the start.
    Trained,
    /// Trained from a checkpoint.
    Resumed,
    /// Already done.
    Skipped,
    /// Another process is training it.
    Busy,
    /// Stopped on request, checkpointed.
    Interrupted,
    /// Failed, with the reason.
    Failed(String),
    /// The store could not be written (a full disk, a read-only file
    /// system): the run is marked failed if that could still be written, and
    /// resumes from its last checkpoint; no further run is started.
    Unwritable {
        /// The file that could not be written.
        path: PathBuf,
        /// What happened.
        problem: StoreProblem,
    },
    /// Not started: its turn came after a stop was asked for or after a
    /// run found the store unwritable. Nothing was written for it.
    NotStarted(Halt),
}

/// Why `runner exec` starts no further runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Halt {
    /// Ctrl-C: the run in progress stops at its next step, later ones never start.
    Stopped,
    /// A run found the store unwritable ([`Outcome::Unwritable`]).
    Unwritable,
}

impl Outcome {
    /// Whether the run failed (the exit code is then non-zero).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_) | Outcome::Unwritable { .. })
    }

    /// Words for tables and lines.
    pub fn text(&self) -> String {
        match self {
            Outcome::Trained => "trained".to_owned(),
            Outcome::Resumed => "resumed".to_owned(),
            Outcome::Skipped => "skipped (done)".to_owned(),
            Outcome::Busy => "busy (another exec)".to_owned(),
            Outcome::Interrupted => "interrupted".to_owned(),
            Outcome::Failed(reason) => format!("FAILED: {reason}"),
            Outcome::Unwritable { path, problem } => {
                format!("FAILED: cannot write {}: {}", path.display(), problem.what())
            }
            Outcome::NotStarted(Halt::Stopped) => "not started (Ctrl-C)".to_owned(),
            Outcome::NotStarted(Halt::Unwritable) => "not started (store unwritable)".to_owned(),
        }
    }

    /// Whether the run was started (trained, skipped, found busy, ...).
    pub fn started(&self) -> bool {
        !matches!(self, Outcome::NotStarted(_))
    }

    /// The outcome of a store write that failed.
    fn of_store_error(error: StoreError) -> Outcome {
        match StoreProblem::of(&error.source) {
            Some(problem) => Outcome::Unwritable {
                path: error.path,
                problem,
            },
            None => Outcome::Failed(error.to_string()),
        }
    }

    /// The outcome of a failure described by `reason`, written while
    /// working on `path`: unwritable when the text names a full disk or a
    /// read-only file system.
    fn of_reason(reason: String, path: &Path) -> Outcome {
        match StoreProblem::in_text(&reason) {
            Some(problem) => Outcome::Unwritable {
                path: path.to_owned(),
                problem,
            },
            None => Outcome::Failed(reason),
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The run's id.
    pub id: String,
    /// Its labels as `axis=value` text.
    pub label: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Seconds spent on it here.
    pub seconds: f64,
    /// Final validation distance, when it trained.
    pub val_dist: Option<f64>,
}

impl RunResult {
    /// One line: short id, labels, outcome, val dist and time.
    pub fn describe(&self) -> String {
        let dist = self.val_dist.map_or(String::new(), |d| format!(", val dist {d:.2}"));
        let time = self.time().map_or(String::new(), |t| format!(" ({t})"));
        format!(
            "{} {}: {}{dist}{time}",
            &self.id[..8.min(self.id.len())],
            self.label,
            self.outcome.text(),
        )
    }

    /// The time spent on a run that was started.
    fn time(&self) -> Option<String> {
        self.outcome.started().then(|| format!("{:.1}s", self.seconds))
    }
}

/// The runs `options` select from the plan, with their state.
pub fn select<'a>(plan: &'a Plan, store: &RunStore, options: &Options) -> Vec<(&'a PlannedRun, RunState)> {
    plan.runs
        .iter()
        .filter(|run| {
            options.only.is_empty()
                || options
                    .only
                    .iter()
                    .any(|sel| run.id.starts_with(sel.as_str()) || run.matches(sel))
        })
        .map(|run| (run, store.state(run)))
        .filter(|(_, state)| !options.failed_only || matches!(state, RunState::Failed(_)))
        .collect()
}

/// How many runs train at once: `--jobs`, else one per CUDA device when
/// the selected runs go to CUDA, else one.
pub fn jobs(selected: &[(&PlannedRun, RunState)], options: &Options) -> usize {
    options.jobs.unwrap_or_else(|| {
        schedule::default_jobs(
            selected.iter().map(|(run, _)| options.device.unwrap_or(run.device)),
            cuda_devices(),
        )
    })
}

/// Trains the selected runs: one after another in this process with one
/// job, else in `jobs` worker processes at once (see [`schedule`]). After a
/// run finds the store unwritable no further run starts.
pub fn execute(
    plan: &Plan,
    store: &RunStore,
    options: &Options,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> Vec<RunResult> {
    let selected = select(plan, store, options);
    let jobs = jobs(&selected, options);
    if jobs > 1 {
        return schedule::parallel(plan, &selected, store, options, jobs, reporter, stop);
    }
    let mut results: Vec<RunResult> = Vec::new();
    for (run, state) in selected {
        let label = label_of(plan, run);
        let result = if results.iter().any(|r| matches!(r.outcome, Outcome::Unwritable { .. })) {
            not_started(run, label, Halt::Unwritable)
        } else {
            attempt(run, &state, label, store, options, reporter, stop)
        };
        reporter.finished(&result);
        results.push(result);
    }
    results
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
/// when done (and not forced); `None`: it trains.
fn settled(state: &RunState, options: &Options, stop: &AtomicBool) -> Option<Outcome> {
    if stop.load(Ordering::Relaxed) {
        Some(Outcome::NotStarted(Halt::Stopped))
    } else if *state == RunState::Done && !options.force {
        Some(Outcome::Skipped)
    } else {
        None
    }
}

/// Skips, or trains in this process, one run whose state was `state` when
/// selected.
fn attempt(
    run: &PlannedRun,
    state: &RunState,
    label: String,
    store: &RunStore,
    options: &Options,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> RunResult {
    let started = Instant::now();
    let (outcome, val_dist) = match settled(state, options, stop) {
        Some(outcome) => (outcome, None),
        None => one(run, &label, store, options, reporter, stop),
    };
    RunResult {
        id: run.id.clone(),
        label,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        val_dist,
    }
}

/// Trains one run under its lock and records how it ended.
fn one(
    run: &PlannedRun,
    label: &str,
    store: &RunStore,
    options: &Options,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> (Outcome, Option<f64>) {
    let short = &run.id[..8];
    let _lock = match store.claim(run) {
        Ok(Some(lock)) => lock,
        Ok(None) => return (Outcome::Busy, None),
        // Without the lock, the run's status is not ours to write.
        Err(e) => return (Outcome::of_store_error(e), None),
    };
    // Another process may have finished it since the plan was read.
    if store.is_done(run) && !options.force {
        return (Outcome::Skipped, None);
    }
    let fail = |outcome: Outcome| {
        let reason = outcome.text().trim_start_matches("FAILED: ").to_owned();
        let _ = store.log(&run.id, &format!("failed: {reason}"));
        // On a full or read-only disk this fails too, and the run stays
        // resumable from its last checkpoint.
        let _ = store.record(
            &run.id,
            &Recorded::Failed {
                reason: reason.clone(),
                log_tail: store.log_tail(&run.id, 20),
            },
        );
        (outcome, None)
    };
    if options.force
        && let Err(e) = store.reset(&run.id)
    {
        return fail(Outcome::of_store_error(e));
    }
    let dir = store.run_dir(&run.id);
    let resuming = dir.join("checkpoint/position.json").exists();
    if let Err(e) = store.record(&run.id, &Recorded::Running) {
        return fail(Outcome::of_store_error(e));
    }
    let device = match device_for(options.device.unwrap_or(run.device)) {
        Ok(device) => device,
        Err(reason) => return fail(Outcome::Failed(reason)),
    };
    let _ = store.log(
        &run.id,
        &format!("{} on {device:?}", if resuming { "resuming" } else { "starting" }),
    );
    let data = match dataset::build(&run.config, &options.base_dir, &options.runs_root.join(".datasets")) {
        Ok(data) => data,
        Err(DataError::Cache(e)) => {
            return fail(Outcome::of_store_error(StoreError {
                path: e.path,
                source: e.source,
            }));
        }
        Err(e) => return fail(Outcome::Failed(format!("dataset: {e}"))),
    };
    let bar = reporter.run(&run.id, label);
    let trained = catch_panic(|| training::train(&run.config, &data, device, &dir, bar.as_ref(), stop));
    drop(bar);
    let checkpoint = dir.join("checkpoint");
    match trained {
        Ok(Ok(summary)) => {
            let dist = summary.epochs.last().map(|r| r.val.dist);
            let _ = store.log(&run.id, &format!("done in {:.1}s", summary.seconds));
            if let Err(e) = store.record(&run.id, &Recorded::Done) {
                // summary.json is written: the run is done whatever its status says.
                reporter.line(&format!("{short} {label}: done, but {e}"));
            }
            (if resuming { Outcome::Resumed } else { Outcome::Trained }, dist)
        }
        Ok(Err(TrainError::Interrupted { step })) => {
            let _ = store.log(&run.id, &format!("interrupted after step {step}"));
            let _ = store.record(&run.id, &Recorded::Interrupted);
            (Outcome::Interrupted, None)
        }
        Ok(Err(TrainError::Io { path, source })) => fail(Outcome::of_store_error(StoreError { path, source })),
        Ok(Err(e)) => fail(Outcome::of_reason(e.to_string(), &checkpoint)),
        Err(panic) => fail(Outcome::of_reason(panic, &checkpoint)),
    }
}

/// The libtorch device for a preference, or why it cannot be had.
pub fn device_for(preference: DevicePreference) -> Result<Device, String> {
    let count = tch::Cuda::device_count();
    match preference {
        DevicePreference::Auto => Ok(Device::cuda_if_available()),
        DevicePreference::Cpu => Ok(Device::Cpu),
        DevicePreference::Cuda if count > 0 => Ok(Device::Cuda(0)),
        DevicePreference::CudaIndex(k) if (k as i64) < count => Ok(Device::Cuda(k)),
        other => Err(format!(
            "device {other} asked for, but libtorch sees {count} CUDA device(s)"
        )),
    }
}

/// The CUDA devices libtorch sees.
pub fn cuda_devices() -> usize {
    usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
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
    format!(
        "{table}\n{} trained, {} resumed, {} skipped, {} busy, {} interrupted, {} failed{not_started}",
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
        let options = Options::default();
        let stopped = AtomicBool::new(true);
        for state in [RunState::Pending, RunState::Partial, RunState::Done] {
            assert_eq!(
                settled(&state, &options, &stopped),
                Some(Outcome::NotStarted(Halt::Stopped)),
                "{state:?}"
            );
        }
        let going = AtomicBool::new(false);
        assert_eq!(settled(&RunState::Pending, &options, &going), None);
        assert_eq!(settled(&RunState::Done, &options, &going), Some(Outcome::Skipped));
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
            ("bbbbbbbb", "not started (Ctrl-C)"),
            ("cccccccc", "not started (store unwritable)"),
        ] {
            let row = row(id);
            let cells: Vec<&str> = row.split('│').map(str::trim).collect();
            assert!(cells.contains(&why) && cells.contains(&"-"), "{table}");
        }
        assert_eq!(results[1].describe(), "bbbbbbbb seed=1: not started (Ctrl-C)");
    }
}
