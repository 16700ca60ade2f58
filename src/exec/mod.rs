//! The executor: a [`Plan`] → trained runs in the runs store.
//!
//! In: a plan (never the experiment file), the store, options and a
//! reporter. Out: one [`RunResult`] per selected run. A run whose summary
//! exists with a matching configuration is skipped; a run with a checkpoint
//! resumes; a run that fails (an error, a NaN loss, a libtorch panic such as
//! out-of-memory) is recorded as failed with its reason and log tail while
//! the others go on; a run locked by another `runner exec` is left to it.

pub mod progress;
pub mod store;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tabled::builder::Builder;
use tabled::settings::Style;
use tch::Device;

use crate::data::dataset;
use crate::plan::config::DevicePreference;
use crate::plan::{Plan, PlannedRun};
use crate::train::run::{self as training, TrainError};
use progress::Reporter;
use store::{Recorded, RunState, RunStore};

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
    /// The folder relative dataset paths start from (the experiment file's).
    pub base_dir: PathBuf,
    /// The runs store's root, e.g. `runs/`.
    pub runs_root: PathBuf,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq)]
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
}

/// One run's result.
#[derive(Debug, Clone)]
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

/// Trains the selected runs one after another.
pub fn execute(
    plan: &Plan,
    store: &RunStore,
    options: &Options,
    reporter: &Reporter,
    stop: &AtomicBool,
) -> Vec<RunResult> {
    let mut results = Vec::new();
    for (run, state) in select(plan, store, options) {
        let started = Instant::now();
        let label = if run.labels.is_empty() {
            plan.experiment.clone()
        } else {
            run.label_text()
        };
        let (outcome, val_dist) = if stop.load(Ordering::Relaxed) {
            (Outcome::Interrupted, None)
        } else if state == RunState::Done && !options.force {
            (Outcome::Skipped, None)
        } else {
            one(run, &label, store, options, reporter, stop)
        };
        reporter.run_finished();
        results.push(RunResult {
            id: run.id.clone(),
            label,
            outcome,
            seconds: started.elapsed().as_secs_f64(),
            val_dist,
        });
    }
    results
}

/// Trains one run under its lock and records how it ended.
fn one(
    run: &PlannedRun,
    label: &str,
    store: &RunStore,
    options: &Options,
    reporter: &Reporter,
    stop: &AtomicBool,
) -> (Outcome, Option<f64>) {
    let short = &run.id[..8];
    let _lock = match store.claim(run) {
        Ok(Some(lock)) => lock,
        Ok(None) => return (Outcome::Busy, None),
        Err(e) => return (Outcome::Failed(format!("cannot write the run's folder: {e}")), None),
    };
    // Another process may have finished it since the plan was read.
    if store.is_done(run) && !options.force {
        return (Outcome::Skipped, None);
    }
    if options.force
        && let Err(e) = store.reset(&run.id)
    {
        return (Outcome::Failed(format!("cannot clear the previous attempt: {e}")), None);
    }
    let resuming = store.run_dir(&run.id).join("checkpoint/position.json").exists();
    let fail = |reason: String| {
        let _ = store.log(&run.id, &format!("failed: {reason}"));
        let _ = store.record(
            &run.id,
            &Recorded::Failed {
                reason: reason.clone(),
                log_tail: store.log_tail(&run.id, 20),
            },
        );
        reporter.line(&format!("{short} {label}: failed: {reason}"));
        (Outcome::Failed(reason), None)
    };
    if let Err(e) = store.record(&run.id, &Recorded::Running) {
        return fail(format!("cannot write status.json: {e}"));
    }
    let device = match device_for(options.device.unwrap_or(run.device)) {
        Ok(device) => device,
        Err(reason) => return fail(reason),
    };
    let _ = store.log(
        &run.id,
        &format!("{} on {device:?}", if resuming { "resuming" } else { "starting" }),
    );
    let data = match dataset::build(&run.config, &options.base_dir, &options.runs_root.join(".datasets")) {
        Ok(data) => data,
        Err(e) => return fail(format!("dataset: {e}")),
    };
    let bar = reporter.run(short);
    let dir = store.run_dir(&run.id);
    let trained = catch_panic(|| training::train(&run.config, &data, device, &dir, &bar, stop));
    drop(bar);
    match trained {
        Ok(Ok(summary)) => {
            let dist = summary.epochs.last().map(|r| r.val.dist);
            let _ = store.log(&run.id, &format!("done in {:.1}s", summary.seconds));
            if let Err(e) = store.record(&run.id, &Recorded::Done) {
                return fail(format!("cannot write status.json: {e}"));
            }
            (if resuming { Outcome::Resumed } else { Outcome::Trained }, dist)
        }
        Ok(Err(TrainError::Interrupted { step })) => {
            let _ = store.log(&run.id, &format!("interrupted after step {step}"));
            let _ = store.record(&run.id, &Recorded::Interrupted);
            (Outcome::Interrupted, None)
        }
        Ok(Err(e)) => fail(e.to_string()),
        Err(panic) => fail(panic),
    }
}

/// Runs `f`, turning a panic (libtorch reports errors such as out-of-memory
/// by panicking) into its message.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let first = text.lines().next().unwrap_or_default().to_owned();
        format!("libtorch: {first}")
    })
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

/// The closing table: one row per run, then the counts.
pub fn table(results: &[RunResult]) -> String {
    let mut builder = Builder::default();
    builder.push_record(["run", "labels", "outcome", "val dist", "time"]);
    for r in results {
        let outcome = match &r.outcome {
            Outcome::Trained => "trained".to_owned(),
            Outcome::Resumed => "resumed".to_owned(),
            Outcome::Skipped => "skipped (done)".to_owned(),
            Outcome::Busy => "busy (another exec)".to_owned(),
            Outcome::Interrupted => "interrupted".to_owned(),
            Outcome::Failed(reason) => format!("FAILED: {reason}"),
        };
        let dist = r.val_dist.map_or_else(|| "-".to_owned(), |d| format!("{d:.2}"));
        builder.push_record([
            r.id[..8].to_owned(),
            r.label.clone(),
            outcome,
            dist,
            format!("{:.1}s", r.seconds),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::rounded());
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    format!(
        "{table}\n{} trained, {} resumed, {} skipped, {} busy, {} interrupted, {} failed",
        count(|o| *o == Outcome::Trained),
        count(|o| *o == Outcome::Resumed),
        count(|o| *o == Outcome::Skipped),
        count(|o| *o == Outcome::Busy),
        count(|o| *o == Outcome::Interrupted),
        count(|o| matches!(o, Outcome::Failed(_))),
    )
}
