//! The runs store: one folder per experiment, one per run inside it.
//!
//! In: the store's root (`runs/`), an experiment name and run ids. Out: run
//! folders, their state as recorded on disk, and locks. A run's folder holds
//! `config.json` (the resolved configuration), `status.json` (its state, with
//! the reason and log tail when it failed), `log.txt`, and what training
//! writes (`metrics.csv`, `lr.csv`, `predictions.json`, `checkpoint/`, and
//! `summary.json`, whose presence marks the run done).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::plan::PlannedRun;

/// A run's state on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Nothing trained yet.
    Pending,
    /// Finished: its summary exists and its configuration matches.
    Done,
    /// Started and checkpointed or interrupted; will resume.
    Partial,
    /// Failed, with the reason.
    Failed(String),
    /// Another process holds its lock.
    Running,
}

impl RunState {
    /// One word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Done => "done",
            RunState::Partial => "partial",
            RunState::Failed(_) => "failed",
            RunState::Running => "running",
        }
    }
}

/// What `status.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Recorded {
    /// Training in progress (or killed while training).
    Running,
    /// Stopped on request after a checkpoint.
    Interrupted,
    /// Failed.
    Failed {
        /// Why.
        reason: String,
        /// The last lines of the run's log.
        log_tail: Vec<String>,
    },
    /// Finished.
    Done,
}

/// An experiment's folder in the runs store.
#[derive(Debug, Clone)]
pub struct RunStore {
    root: PathBuf,
}

/// An exclusive lock on one run, held while it trains; released on drop
/// (and by the operating system if the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunStore {
    /// The store of `experiment` under `runs_root` (not created yet).
    pub fn new(runs_root: &Path, experiment: &str) -> RunStore {
        RunStore {
            root: runs_root.join(experiment),
        }
    }

    /// The experiment's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A run's folder.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The run's state, read from its folder (nothing is written).
    pub fn state(&self, run: &PlannedRun) -> RunState {
        let dir = self.run_dir(&run.id);
        if !dir.exists() {
            return RunState::Pending;
        }
        if self.is_locked_by_other(&run.id) {
            return RunState::Running;
        }
        if self.is_done(run) {
            return RunState::Done;
        }
        match read_status(&dir) {
            Some(Recorded::Failed { reason, .. }) => RunState::Failed(reason),
            _ if dir.join("checkpoint/position.json").exists() => RunState::Partial,
            _ => RunState::Pending,
        }
    }

    /// Whether the run finished: its summary exists and the recorded
    /// configuration is this run's.
    pub fn is_done(&self, run: &PlannedRun) -> bool {
        let dir = self.run_dir(&run.id);
        let config_matches =
            std::fs::read_to_string(dir.join("config.json")).is_ok_and(|text| text.trim() == run.config.canonical());
        config_matches && dir.join("summary.json").exists()
    }

    /// Creates the run's folder, records its configuration and takes its
    /// lock; `None` when another process holds it.
    pub fn claim(&self, run: &PlannedRun) -> std::io::Result<Option<RunLock>> {
        let dir = self.run_dir(&run.id);
        std::fs::create_dir_all(&dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        atomic::write(&dir.join("config.json"), run.config.canonical().as_bytes())?;
        Ok(Some(RunLock { _file: file }))
    }

    /// Records a state transition.
    pub fn record(&self, id: &str, recorded: &Recorded) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(recorded).expect("serialisable");
        atomic::write(&self.run_dir(id).join("status.json"), text.as_bytes())
    }

    /// Appends a line to the run's log.
    pub fn log(&self, id: &str, line: &str) -> std::io::Result<()> {
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(self.run_dir(id).join("log.txt"))?;
        writeln!(file, "{line}")
    }

    /// The last `n` lines of the run's log.
    pub fn log_tail(&self, id: &str, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.run_dir(id).join("log.txt")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }

    /// Removes what a previous attempt left, for `--force`.
    pub fn reset(&self, id: &str) -> std::io::Result<()> {
        let dir = self.run_dir(id);
        for name in [
            "summary.json",
            "status.json",
            "metrics.csv",
            "lr.csv",
            "predictions.json",
            "log.txt",
        ] {
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::remove_dir_all(dir.join("checkpoint")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn is_locked_by_other(&self, id: &str) -> bool {
        let Ok(file) = File::open(self.run_dir(id).join("lock")) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

fn read_status(dir: &Path) -> Option<Recorded> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).ok()?).ok()
}
