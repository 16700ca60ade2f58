//! One job, the worker's side: a [`Job`] read from stdin, trained under the
//! run's lock, reported as [`Event`] lines on stdout.
//!
//! In: a job (the run, its device and thread count, the store). Out: the
//! run's files in the store (through [`RunStore`]), events while it trains,
//! and last an [`Event::Finished`] with its [`RunResult`]. A run that fails
//! (an error, a NaN loss, a libtorch panic such as out-of-memory) is
//! recorded as failed with its reason and log tail.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tch::Device;

use runner_data::dataset::{self, DataError, Origin};
use runner_job::{Evaluated, Event, Job, Outcome, Progress, RunResult};
use runner_plan::config::DevicePreference;
use runner_store::records::EpochRecord;
use runner_store::{ClaimedRun, Recorded, RunStore, StoreError};

use crate::environment::describe_device;
use crate::run::{self as training, Placement, TrainError};
use crate::torch_panic::catch_panic;

/// Least time between two step events (loss readings are always sent).
const STEP_INTERVAL: Duration = Duration::from_millis(100);

/// Lines of the run's log kept in a failed run's status.
const LOG_TAIL: usize = 20;

/// `runner-worker serve`: reads a [`Job`] from stdin, trains it, reports
/// on stdout. Errors are about the job itself (unreadable, inconsistent).
pub fn serve() -> miette::Result<()> {
    let mut input = BufReader::new(std::io::stdin());
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| miette::miette!("cannot read the job on stdin: {e}"))?;
    let job: Job = serde_json::from_str(&line).map_err(|e| {
        miette::miette!(
            help = "this subcommand is started by `runner exec`",
            "the job on stdin is not a run: {e}"
        )
    })?;
    if job.run.config.id() != job.run.id {
        miette::bail!(
            "the job's configuration has the id {}, not {}",
            job.run.config.id(),
            job.run.id
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // The parent closes stdin to ask for a stop; so does its death.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while input.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        flag.store(true, Ordering::SeqCst);
    });
    let flag = Arc::clone(&stop);
    let current = Arc::new(RunInTraining::default());
    let training = Arc::clone(&current);
    let parent = std::os::unix::process::parent_id();
    // A Ctrl-C at the terminal (or a scheduler's SIGTERM) reaches the
    // workers too: stop at the next step, and quit at the second, like the
    // parent; so does a parent that died (its death signal is SIGTERM).
    // ctrlc runs this on its own thread, not in the signal handler.
    let _ = ctrlc::set_handler(move || {
        let orphaned = std::os::unix::process::parent_id() != parent;
        if flag.swap(true, Ordering::SeqCst) || orphaned {
            training.quit_at_once();
        }
    });
    let events = Events {
        out: Mutex::new(std::io::stdout()),
    };
    let result = train(&job, &events, &stop, &current);
    events.send(&Event::Finished { result });
    Ok(())
}

/// The run this process is training, so that a second signal can record it
/// as interrupted before the process quits at once.
#[derive(Debug, Default)]
pub struct RunInTraining(Mutex<Option<Arc<ClaimedRun>>>);

impl RunInTraining {
    fn set(&self, run: Option<Arc<ClaimedRun>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = run;
    }

    /// Records the run in training (if any) as interrupted, then ends the
    /// process with status 130. `_exit`, not `exit`: libtorch's threads are
    /// still running, and exit's static destructors would free what they
    /// use (the crashes of R11: SIGSEGV, "corrupted double-linked list").
    fn quit_at_once(&self) -> ! {
        if let Ok(current) = self.0.try_lock()
            && let Some(run) = current.as_ref()
        {
            let _ = run.log("stopped at once by a second signal: resumes from its last checkpoint");
            let _ = run.record(&Recorded::Interrupted);
        }
        // SAFETY: _exit ends the process without running any user code.
        unsafe { libc::_exit(130) }
    }
}

/// Trains `job`'s run under its lock, timed, reporting through `events`;
/// `current` holds the claimed run while it trains.
pub fn train(job: &Job, events: &Events, stop: &AtomicBool, current: &RunInTraining) -> RunResult {
    let started = Instant::now();
    let store = RunStore::new(&job.runs_root, &job.experiment);
    let (outcome, val_dist) = one(job, &store, events, stop, current);
    current.set(None);
    RunResult {
        id: job.run.id.clone(),
        label: job.label.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        val_dist,
    }
}

/// Where a worker's callbacks go: each becomes an [`Event`] line on stdout.
pub struct Events {
    out: Mutex<std::io::Stdout>,
}

impl Events {
    fn send(&self, event: &Event) {
        let text = serde_json::to_string(event).expect("events serialise");
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A parent that is gone also closed stdin, which stops the run.
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    fn line(&self, text: &str) {
        self.send(&Event::Line { text: text.to_owned() });
    }

    fn progress(&self) -> EventProgress<'_> {
        EventProgress {
            events: self,
            last_step: Cell::new(None),
        }
    }
}

/// A run's progress as events.
pub struct EventProgress<'a> {
    events: &'a Events,
    last_step: Cell<Option<Instant>>,
}

impl Progress for EventProgress<'_> {
    fn start(&self, total: u64, done: u64) {
        self.events.send(&Event::Start { total, done });
    }

    fn step(&self, step: u64, lr: f64, loss: Option<f64>) {
        let due = self.last_step.get().is_none_or(|t| t.elapsed() >= STEP_INTERVAL);
        if due || loss.is_some() {
            self.last_step.set(Some(Instant::now()));
            self.events.send(&Event::Step { step, lr, loss });
        }
    }

    fn evaluating(&self, epoch: u64, on: Evaluated) {
        self.events.send(&Event::Evaluating { epoch, on });
    }

    fn epoch(&self, record: &EpochRecord) {
        self.events.send(&Event::Epoch { record: record.clone() });
    }
}

/// Trains one run under its lock and records how it ended.
fn one(
    job: &Job,
    store: &RunStore,
    events: &Events,
    stop: &AtomicBool,
    current: &RunInTraining,
) -> (Outcome, Option<f64>) {
    let run = &job.run;
    let claimed = match store.claim(run) {
        Ok(Some(claimed)) => Arc::new(claimed),
        Ok(None) => return (Outcome::Busy, None),
        // Without the lock, the run's status is not ours to write.
        Err(e) => return (Outcome::of_store_error(e), None),
    };
    // Another process may have finished it since the plan was read.
    match store.finished(run) {
        _ if job.force => {}
        Some(Ok(())) => return (Outcome::Skipped, None),
        Some(Err(damage)) => return (Outcome::Damaged(damage), None),
        None => {}
    }
    current.set(Some(Arc::clone(&claimed)));
    let fail = |outcome: Outcome| {
        let reason = outcome.text().trim_start_matches("FAILED: ").to_owned();
        let _ = claimed.log(&format!("failed: {reason}"));
        // On a full or read-only disk this fails too, and the run stays
        // resumable from its last checkpoint.
        let _ = claimed.record(&Recorded::Failed {
            reason: reason.clone(),
            log_tail: claimed.log_tail(LOG_TAIL),
        });
        (outcome, None)
    };
    if job.force
        && let Err(e) = claimed.reset()
    {
        return fail(Outcome::of_store_error(e));
    }
    let resuming = claimed.has_checkpoint();
    if let Err(e) = claimed.record(&Recorded::Running) {
        return fail(Outcome::of_store_error(e));
    }
    let device = match device_for(job.device) {
        Ok(device) => device,
        Err(reason) => return fail(Outcome::Failed(reason)),
    };
    let spinning = match job.spin_count {
        Some(spins) => format!(" (the machine is busy: OpenMP threads spin {spins} times, then sleep)"),
        None => String::new(),
    };
    let _ = claimed.log(&format!(
        "{} on {}{spinning}",
        if resuming { "resuming" } else { "starting" },
        describe_device(device)
    ));
    let data = match dataset::build(&run.config, &job.folders, &job.runs_root.join(".datasets")) {
        Ok(data) => data,
        Err(DataError::Cache(e)) => {
            return fail(Outcome::of_store_error(StoreError {
                path: e.path,
                source: e.source,
            }));
        }
        Err(e) => return fail(Outcome::Failed(format!("dataset: {e}"))),
    };
    let warnings = data.summary.warnings();
    for warning in &warnings {
        let _ = claimed.log(&format!("data warning: {warning}"));
    }
    // Said once, when the dataset is first built; every run's log keeps them.
    if !warnings.is_empty() && matches!(data.origin, Origin::Built { .. } | Origin::Rebuilt { .. }) {
        events.line(&format!(
            "{} {}: the data has {} (first: {}); `runner data inspect` lists them",
            &run.id[..8],
            job.label,
            runner_plan::show::count(warnings.len(), "warning"),
            warnings[0]
        ));
    }
    let progress = events.progress();
    let placement = Placement {
        device,
        threads: job.threads,
        cuda_graph: job.cuda_graph,
        until_epoch: job.until_epoch,
    };
    let trained = catch_panic(|| training::train(&run.config, &data, &placement, &claimed, &progress, stop));
    let checkpoint = claimed.checkpoint().dir;
    match trained {
        Ok(Ok(summary)) => {
            let dist = summary.result().map(|r| r.val.dist);
            // The run is done; its test pieces for listening come after, and a
            // failure there is logged, not a failed run.
            if run.config.evaluate.test && run.config.evaluate.greedy {
                let epoch = summary.epochs.last().map_or(0, |r| r.epoch);
                progress.evaluating(epoch, Evaluated::TestPieces);
            }
            match crate::predict::listen::write(&claimed, &run.config, &data.summary, &job.folders, device) {
                Ok(0) => {}
                Ok(pieces) => {
                    let _ = claimed.log(&format!("test pieces predicted note by note: {pieces}"));
                }
                Err(e) => {
                    let _ = claimed.log(&format!("test pieces for listening not written: {e}"));
                    events.line(&format!(
                        "{} {}: test pieces for listening not written: {e}",
                        &run.id[..8],
                        job.label
                    ));
                }
            }
            let _ = claimed.log(&format!("done in {:.1}s", summary.seconds));
            if let Err(e) = claimed.record(&Recorded::Done) {
                // summary.json is written: the run is done whatever its status says.
                events.line(&format!("{} {}: done, but {e}", &run.id[..8], job.label));
            }
            (if resuming { Outcome::Resumed } else { Outcome::Trained }, dist)
        }
        Ok(Err(TrainError::Paused { record })) => {
            let _ = claimed.record(&Recorded::Interrupted);
            let dist = Some(record.val.dist);
            (Outcome::Paused(record), dist)
        }
        Ok(Err(TrainError::Interrupted { step })) => {
            let _ = claimed.log(&format!("interrupted after step {step}"));
            let _ = claimed.record(&Recorded::Interrupted);
            (Outcome::Interrupted, None)
        }
        Ok(Err(TrainError::Io { path, source })) => fail(Outcome::of_store_error(StoreError { path, source })),
        Ok(Err(e)) => fail(Outcome::of_reason(e.to_string(), &checkpoint)),
        Err(panic) => fail(Outcome::of_reason(panic, &checkpoint)),
    }
}

/// The libtorch device for a preference, or why it cannot be had.
pub fn device_for(preference: DevicePreference) -> Result<Device, String> {
    let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    if !preference.is_available(count) {
        return Err(format!(
            "device {preference} asked for, but libtorch sees {count} CUDA device(s)"
        ));
    }
    Ok(match preference {
        DevicePreference::Auto => Device::cuda_if_available(),
        DevicePreference::Cpu => Device::Cpu,
        DevicePreference::Cuda => Device::Cuda(0),
        DevicePreference::CudaIndex(k) => Device::Cuda(k),
    })
}
