//! Worker processes: one run trained in a child process of `runner exec`.
//!
//! Why a process per run: libtorch's random generator and thread count are
//! process-global, and training seeds the global generator at every step, so
//! two runs training at once in one process would disturb each other's
//! random streams. Each run trained in parallel gets its own process, pinned
//! to its device and thread count, and ends exactly as it would alone.
//!
//! The protocol, over the child's standard streams:
//! - the parent starts `runner exec-worker` and writes one [`Job`] as a JSON
//!   line on its stdin, then keeps stdin open: closing it (on Ctrl-C, or
//!   because the parent died) asks the worker to stop at the next step,
//!   checkpoint and mark the run interrupted;
//! - the worker reports [`Event`]s as JSON lines on stdout, the last one
//!   [`Event::Finished`] with the run's result;
//! - whatever the worker writes on stderr is shown, and kept: a worker that
//!   ends without a result (a crash, a signal) is recorded as a failed run
//!   whose log ends with those lines.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::progress::Reporter;
use super::store::{Recorded, RunStore};
use super::{Options, Outcome, RunResult};
use crate::plan::PlannedRun;
use crate::plan::config::DevicePreference;
use crate::train::run::{EpochRecord, Progress};

/// The name of the hidden subcommand a worker runs.
pub const SUBCOMMAND: &str = "exec-worker";

/// Lines of a worker's stderr kept for a failed run's log.
const STDERR_TAIL: usize = 20;

/// Least time between two step events (loss readings are always sent).
const STEP_INTERVAL: Duration = Duration::from_millis(100);

/// One run for a worker to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The experiment's name (the store folder under `runs_root`).
    pub experiment: String,
    /// The run.
    pub run: PlannedRun,
    /// Its labels as text.
    pub label: String,
    /// Where it trains: `cpu` or `cuda:K`.
    pub device: DevicePreference,
    /// libtorch CPU threads.
    pub threads: usize,
    /// Train again even when done.
    pub force: bool,
    /// The folder relative dataset paths start from.
    pub base_dir: PathBuf,
    /// The runs store's root.
    pub runs_root: PathBuf,
}

/// What a worker reports, one JSON line each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A line to show.
    Line {
        /// The text.
        text: String,
    },
    /// Training starts at `done` of `total` steps.
    Start {
        /// Optimizer steps in all.
        total: u64,
        /// Steps already taken (a resumed run).
        done: u64,
    },
    /// An optimizer step (at most every [`STEP_INTERVAL`], and whenever the
    /// loss was read).
    Step {
        /// The step.
        step: u64,
        /// Its learning rate.
        lr: f64,
        /// The running loss, when read.
        loss: Option<f64>,
    },
    /// An epoch was evaluated.
    Epoch {
        /// Its metrics.
        record: EpochRecord,
    },
    /// The run ended; the worker exits next.
    Finished {
        /// How.
        result: RunResult,
    },
}

/// The worker's side: reads a [`Job`] from stdin, trains it, reports on
/// stdout. Errors are about the job itself (unreadable, inconsistent).
pub fn serve() -> miette::Result<()> {
    let mut input = BufReader::new(std::io::stdin());
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| miette::miette!("cannot read the job on stdin: {e}"))?;
    let job: Job = serde_json::from_str(&line).map_err(|e| {
        miette::miette!(
            help = "this subcommand is started by `runner exec --jobs N`",
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
    // A Ctrl-C at the terminal reaches the workers too: stop, and quit at
    // the second, like the parent.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    tch::set_num_threads(i32::try_from(job.threads).unwrap_or(1).max(1));
    let store = RunStore::new(&job.runs_root, &job.experiment);
    let options = Options {
        force: job.force,
        device: Some(job.device),
        jobs: Some(1),
        base_dir: job.base_dir.clone(),
        runs_root: job.runs_root.clone(),
        ..Options::default()
    };
    let events = Events {
        out: Mutex::new(std::io::stdout()),
    };
    let state = store.state(&job.run);
    let result = super::attempt(&job.run, &state, job.label, &store, &options, &events, &stop);
    events.finished(&result);
    Ok(())
}

/// The worker's [`Reporter`]: every callback becomes an [`Event`] line.
struct Events {
    out: Mutex<std::io::Stdout>,
}

impl Events {
    fn send(&self, event: &Event) {
        let text = serde_json::to_string(event).expect("events serialise");
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A parent that is gone also closed stdin, which stops the run.
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}

impl Reporter for Events {
    fn line(&self, text: &str) {
        self.send(&Event::Line { text: text.to_owned() });
    }

    fn run(&self, _id: &str, _label: &str) -> Box<dyn Progress + '_> {
        Box::new(EventProgress {
            events: self,
            last_step: Cell::new(None),
        })
    }

    fn finished(&self, result: &RunResult) {
        self.send(&Event::Finished { result: result.clone() });
    }
}

/// A run's progress as events.
struct EventProgress<'a> {
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

    fn epoch(&self, record: &EpochRecord) {
        self.events.send(&Event::Epoch { record: record.clone() });
    }
}

/// The parent's side: trains `job` in a worker process, shows its events
/// through `reporter`, and returns its result. `stop` is forwarded by
/// closing the worker's stdin. A worker that ends without a result is
/// recorded in the store as a failed run.
pub fn train(job: &Job, store: &RunStore, reporter: &dyn Reporter, stop: &AtomicBool) -> RunResult {
    let started = Instant::now();
    let short = &job.run.id[..8];
    let result = |outcome: Outcome| RunResult {
        id: job.run.id.clone(),
        label: job.label.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        val_dist: None,
    };
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .arg(SUBCOMMAND)
            .env("OMP_NUM_THREADS", job.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return result(Outcome::Failed(format!("cannot start a worker process: {e}"))),
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("the three streams are piped")
    };
    let text = serde_json::to_string(job).expect("jobs serialise");
    // A worker that died at once shows in its exit status below.
    let _ = writeln!(stdin, "{text}");
    let ended = AtomicBool::new(false);
    let (finished, tail) = std::thread::scope(|scope| {
        let ended = &ended;
        scope.spawn(move || {
            while !ended.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(stdin);
        });
        let tail = scope.spawn(move || {
            let mut tail: VecDeque<String> = VecDeque::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                reporter.line(&format!("{short}: {line}"));
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail
        });
        let mut progress: Option<Box<dyn Progress + '_>> = None;
        let mut finished: Option<RunResult> = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<Event>(&line) {
                Ok(Event::Line { text }) => reporter.line(&text),
                Ok(Event::Start { total, done }) => progress
                    .get_or_insert_with(|| reporter.run(&job.run.id, &job.label))
                    .start(total, done),
                Ok(Event::Step { step, lr, loss }) => {
                    if let Some(progress) = &progress {
                        progress.step(step, lr, loss);
                    }
                }
                Ok(Event::Epoch { record }) => {
                    if let Some(progress) = &progress {
                        progress.epoch(&record);
                    }
                }
                Ok(Event::Finished { result }) => finished = Some(result),
                // Something else wrote on the worker's stdout.
                Err(_) => reporter.line(&format!("{short}: {line}")),
            }
        }
        ended.store(true, Ordering::Relaxed);
        (finished, tail.join().unwrap_or_default())
    });
    let status = child.wait();
    if let Some(finished) = finished {
        return finished;
    }
    let reason = match &status {
        Ok(status) => ended_how(*status),
        Err(e) => format!("the worker process could not be waited for: {e}"),
    };
    let interrupted = status.is_ok_and(|s| s.code() == Some(130) || signal(s) == Some(SIGINT));
    if interrupted && stop.load(Ordering::Relaxed) {
        // Ctrl-C twice: the worker quit at once; its last checkpoint stays.
        return result(Outcome::Interrupted);
    }
    // The worker is gone and its lock with it: record the failure under the lock.
    if let Ok(Some(_lock)) = store.claim(&job.run) {
        for line in &tail {
            let _ = store.log(&job.run.id, &format!("worker: {line}"));
        }
        let _ = store.log(&job.run.id, &format!("failed: {reason}"));
        let _ = store.record(
            &job.run.id,
            &Recorded::Failed {
                reason: reason.clone(),
                log_tail: store.log_tail(&job.run.id, STDERR_TAIL),
            },
        );
    }
    result(Outcome::Failed(reason))
}

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

/// How a worker that sent no result ended, in words.
fn ended_how(status: ExitStatus) -> String {
    match (status.code(), signal(status)) {
        (Some(code), _) => format!("the worker process exited with status {code} without a result"),
        (None, Some(SIGKILL)) => "the worker process was killed (SIGKILL; out of memory?)".to_owned(),
        (None, Some(signal)) => format!("the worker process was killed by signal {signal}"),
        (None, None) => "the worker process ended without a result".to_owned(),
    }
}

/// The signal that ended a process, where the platform has signals.
fn signal(status: ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        std::os::unix::process::ExitStatusExt::signal(&status)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}
