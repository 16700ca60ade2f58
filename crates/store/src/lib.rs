//! The runs store: one folder per experiment, one per run inside it.
//!
//! In: the store's root (`runs/`), an experiment name and run ids. Out: run
//! folders, their state as recorded on disk, and locks. A run's folder holds
//! `config.json` (the resolved configuration in its canonical form, compared
//! to tell whether a summary belongs to this run), `config.kdl` (the same as
//! an experiment file for this run alone: `runner plan config.kdl` plans it
//! with the same id), `status.json` (its state, with the reason and log tail
//! when it failed), `log.txt`, and what training writes (`metrics.csv`,
//! `lr.csv`, `predictions.json`, `checkpoint/`, and `summary.json`, whose
//! presence marks the run done).
//!
//! Every write that fails says which file; [`StoreProblem`] tells the
//! failures that no retry fixes (a full disk, a read-only file system) from
//! the others.

#![deny(missing_docs)]

pub mod atomic;
pub mod metrics;
pub mod records;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use runner_plan::{PlannedRun, write};

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

/// A write to the store that failed: which file, and what happened.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct StoreError {
    /// The file or folder.
    pub path: PathBuf,
    /// What the operating system said.
    pub source: std::io::Error,
}

impl StoreError {
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError {
            path: path.to_owned(),
            source,
        }
    }
}

/// Why the store cannot be written at all: trying again, or another run,
/// fails the same way until someone acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreProblem {
    /// ENOSPC.
    Full,
    /// EROFS.
    ReadOnly,
    /// EDQUOT.
    Quota,
}

impl StoreProblem {
    /// The problem behind an I/O error, if it is one of these.
    pub fn of(error: &std::io::Error) -> Option<StoreProblem> {
        match error.kind() {
            std::io::ErrorKind::StorageFull => Some(StoreProblem::Full),
            std::io::ErrorKind::ReadOnlyFilesystem => Some(StoreProblem::ReadOnly),
            std::io::ErrorKind::QuotaExceeded => Some(StoreProblem::Quota),
            _ => None,
        }
    }

    /// The problem named in an error's text (libtorch and safetensors pass
    /// the operating system's message on as text only).
    pub fn in_text(text: &str) -> Option<StoreProblem> {
        [
            (StoreProblem::Full, "(os error 28)"),
            (StoreProblem::ReadOnly, "(os error 30)"),
            (StoreProblem::Quota, "(os error 122)"),
        ]
        .into_iter()
        .find(|(_, code)| text.contains(code))
        .map(|(problem, _)| problem)
    }

    /// What happened, in the operating system's words.
    pub fn what(self) -> &'static str {
        match self {
            StoreProblem::Full => "no space left on device",
            StoreProblem::ReadOnly => "read-only file system",
            StoreProblem::Quota => "disk quota exceeded",
        }
    }

    /// What to do about it, for the store under `runs_root`.
    pub fn help(self, runs_root: &Path) -> String {
        let root = runs_root.display();
        let fix = match self {
            StoreProblem::Full => format!("free space on the disk that holds {root}"),
            StoreProblem::ReadOnly => format!("remount the file system that holds {root} read-write"),
            StoreProblem::Quota => format!("free space in your quota on the disk that holds {root}"),
        };
        format!(
            "{fix}, or pass --store DIR on another disk; then run the same command again: finished runs are \
             kept, and an unfinished run resumes from its last checkpoint"
        )
    }
}

/// An experiment's folder in the runs store.
#[derive(Debug, Clone)]
pub struct RunStore {
    root: PathBuf,
    experiment: String,
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
            experiment: experiment.to_owned(),
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

    /// Creates the run's folder, takes its lock and records its
    /// configuration (`config.json`, `config.kdl`); `None` when another
    /// process holds the lock.
    pub fn claim(&self, run: &PlannedRun) -> Result<Option<RunLock>, StoreError> {
        let dir = self.run_dir(&run.id);
        std::fs::create_dir_all(&dir).map_err(StoreError::at(&dir))?;
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::at(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::at(&path)(e)),
        }
        let json = dir.join("config.json");
        atomic::write(&json, run.config.canonical().as_bytes()).map_err(StoreError::at(&json))?;
        let kdl = dir.join("config.kdl");
        atomic::write(&kdl, write::experiment_file(&self.experiment, run).as_bytes()).map_err(StoreError::at(&kdl))?;
        Ok(Some(RunLock { _file: file }))
    }

    /// Records a state transition.
    pub fn record(&self, id: &str, recorded: &Recorded) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(recorded).expect("serialisable");
        let path = self.run_dir(id).join("status.json");
        atomic::write(&path, text.as_bytes()).map_err(StoreError::at(&path))
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
    pub fn reset(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.run_dir(id);
        for name in [
            "summary.json",
            "status.json",
            "metrics.csv",
            "lr.csv",
            "predictions.json",
            "log.txt",
        ] {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::at(&path)(e)),
                _ => {}
            }
        }
        let path = dir.join("checkpoint");
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::at(&path)(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_read_only_are_told_from_other_errors() {
        let full = std::io::Error::from_raw_os_error(28);
        let read_only = std::io::Error::from_raw_os_error(30);
        assert_eq!(StoreProblem::of(&full), Some(StoreProblem::Full));
        assert_eq!(StoreProblem::of(&read_only), Some(StoreProblem::ReadOnly));
        assert_eq!(StoreProblem::of(&std::io::Error::from_raw_os_error(2)), None);
        // libtorch and safetensors hand the error on as text.
        let text = format!("libtorch: model.safetensors: {full}");
        assert_eq!(StoreProblem::in_text(&text), Some(StoreProblem::Full));
        assert_eq!(StoreProblem::in_text("libtorch: out of memory"), None);
        assert_eq!(StoreProblem::Full.what(), "no space left on device");
        assert_eq!(StoreProblem::ReadOnly.what(), "read-only file system");
    }
}
