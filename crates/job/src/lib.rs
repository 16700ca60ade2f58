//! The worker protocol: what `runner` (the executor) and `runner-worker`
//! (training, in its own process) tell each other.
//!
//! - The executor writes one [`Job`] as a JSON line on the worker's stdin and
//!   keeps stdin open; closing it asks the worker to stop at the next step.
//! - The worker answers with [`Event`] JSON lines on stdout, the last one
//!   [`Event::Finished`] with the run's [`RunResult`].
//! - Training reports through [`Progress`], which the worker turns into
//!   events and the executor back into progress bars.
//!
//! [`output`] is how both binaries write to stdout ([`say!`]).

#![deny(missing_docs)]

pub mod output;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use runner_data::source::Folders;
use runner_plan::PlannedRun;
use runner_plan::config::{CudaGraph, DevicePreference};
use runner_store::records::EpochRecord;
use runner_store::{StoreError, StoreProblem};

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
    /// `GOMP_SPINCOUNT` for the worker: how long OpenMP's idle threads spin
    /// before they sleep; `None` leaves libgomp's default (or the user's).
    pub spin_count: Option<u64>,
    /// Whether CUDA steps replay a captured graph.
    pub cuda_graph: CudaGraph,
    /// Train again even when done.
    pub force: bool,
    /// Pause after this epoch, checkpointed (a search's rung); `None`: train
    /// to the end.
    #[serde(default)]
    pub until_epoch: Option<u64>,
    /// Where the run's data is.
    pub folders: Folders,
    /// The runs store's root.
    pub runs_root: PathBuf,
}

/// What a run is evaluating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evaluated {
    /// The validation split, after an epoch.
    Validation,
    /// The test split, after training.
    Test,
    /// Every test piece note by note, for listening (after the run is done).
    TestPieces,
}

impl Evaluated {
    /// What the progress bar says while it runs.
    pub fn describe(self, epoch: u64) -> String {
        match self {
            Evaluated::Validation => format!("evaluating epoch {epoch}"),
            Evaluated::Test => "evaluating the test split".to_owned(),
            Evaluated::TestPieces => "predicting the test pieces note by note".to_owned(),
        }
    }
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
    /// An optimizer step (at most every 100 ms, and whenever the loss was
    /// read).
    Step {
        /// The step.
        step: u64,
        /// Its learning rate.
        lr: f64,
        /// The running loss, when read.
        loss: Option<f64>,
    },
    /// Training stops to evaluate the epoch just trained, or it ended and
    /// the test split is evaluated.
    Evaluating {
        /// The epoch (1-based).
        epoch: u64,
        /// What is evaluated.
        on: Evaluated,
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
    /// Trained to a search's rung and checkpointed there, with that epoch's
    /// evaluation.
    Paused(Box<EpochRecord>),
    /// Failed, with the reason.
    Failed(String),
    /// Finished, but its files do not hold together: what, and the remedy.
    /// Not trained again unless forced.
    Damaged(String),
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
    /// Ctrl-C or SIGTERM: the run in progress stops at its next step, later ones never start.
    Stopped,
    /// A run found the store unwritable ([`Outcome::Unwritable`]).
    Unwritable,
}

impl Outcome {
    /// Whether the run failed (the exit code is then non-zero).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Failed(_) | Outcome::Damaged(_) | Outcome::Unwritable { .. }
        )
    }

    /// Words for tables and lines.
    pub fn text(&self) -> String {
        match self {
            Outcome::Trained => "trained".to_owned(),
            Outcome::Resumed => "resumed".to_owned(),
            Outcome::Skipped => "skipped (done)".to_owned(),
            Outcome::Busy => "busy (another exec)".to_owned(),
            Outcome::Interrupted => "interrupted".to_owned(),
            Outcome::Paused(record) => format!("paused at epoch {} (the search's rung)", record.epoch),
            Outcome::Failed(reason) => format!("FAILED: {reason}"),
            Outcome::Damaged(reason) => format!("DAMAGED: {reason}"),
            Outcome::Unwritable { path, problem } => {
                format!("FAILED: cannot write {}: {}", path.display(), problem.what())
            }
            Outcome::NotStarted(Halt::Stopped) => "not started (stopped)".to_owned(),
            Outcome::NotStarted(Halt::Unwritable) => "not started (store unwritable)".to_owned(),
        }
    }

    /// Whether the run was started (trained, skipped, found busy, ...).
    pub fn started(&self) -> bool {
        !matches!(self, Outcome::NotStarted(_))
    }

    /// The outcome of a store write that failed.
    pub fn of_store_error(error: StoreError) -> Outcome {
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
    pub fn of_reason(reason: String, path: &Path) -> Outcome {
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
    pub fn time(&self) -> Option<String> {
        self.outcome.started().then(|| format!("{:.1}s", self.seconds))
    }
}

/// What a run reports while it trains (only the executor's reporter prints).
pub trait Progress {
    /// Training starts (or resumes at `done` of `total` optimizer steps).
    fn start(&self, total: u64, done: u64);
    /// An optimizer step finished; `loss` is present whenever it was read.
    fn step(&self, step: u64, lr: f64, loss: Option<f64>);
    /// Evaluation of `on` after `epoch` starts (by default, nothing is shown).
    fn evaluating(&self, _epoch: u64, _on: Evaluated) {}
    /// An epoch was evaluated.
    fn epoch(&self, record: &EpochRecord);
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64, _: u64) {}
    fn step(&self, _: u64, _: f64, _: Option<f64>) {}
    fn epoch(&self, _: &EpochRecord) {}
}

/// What a worker sees (`runner-worker info --json`): shown by `runner info`
/// and `runner --version`, used by the executor to place runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// `runner`'s own version.
    pub runner_version: String,
    /// The libtorch version the binary was built against.
    pub libtorch_version: String,
    /// The folder the libtorch shared library was loaded from, when known.
    pub libtorch_loaded_from: Option<String>,
    /// Whether libtorch can use CUDA.
    pub cuda_available: bool,
    /// The number of CUDA devices libtorch sees.
    pub cuda_devices: usize,
    /// Whether cuDNN is available.
    pub cudnn_available: bool,
    /// The number of threads libtorch uses for intra-op parallelism on the CPU.
    pub cpu_threads: usize,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        writeln!(f, "runner {}", self.runner_version)?;
        writeln!(f, "libtorch: {}", self.libtorch_version)?;
        if let Some(folder) = &self.libtorch_loaded_from {
            writeln!(f, "libtorch loaded from: {folder}")?;
        }
        writeln!(f, "CUDA available: {}", yes_no(self.cuda_available))?;
        writeln!(f, "CUDA devices: {}", self.cuda_devices)?;
        writeln!(f, "cuDNN available: {}", yes_no(self.cudnn_available))?;
        write!(f, "CPU threads: {}", self.cpu_threads)
    }
}
