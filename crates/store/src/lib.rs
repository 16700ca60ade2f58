//! The runs store: one folder per experiment, one per run inside it, and
//! the only code that knows the files in them.
//!
//! In: the store's root (`runs/`), an experiment name and run ids. Out: run
//! folders ([`RunFolder`], read through typed functions), their state as
//! recorded on disk, and claims ([`ClaimedRun`]: the run's lock held, the
//! only way to write its files). [`files::RunFile`] names every file a run
//! folder holds; [`records`] are what training leaves in them; [`find_run`]
//! turns what a user typed (a path, a run id or its prefix) into a run folder.
//! Beside the run folders, [`tensorboard`] writes each run's curves under
//! `tensorboard/`, and [`progress`] is where a run in training stands.
//!
//! Every write that fails says which file; [`StoreProblem`] tells the
//! failures that no retry fixes (a full disk, a read-only file system) from
//! the others.

#![deny(missing_docs)]

pub mod atomic;
pub mod checkpoint;
pub mod files;
pub mod find;
pub mod folder;
pub mod metrics;
pub mod progress;
pub mod records;
pub mod search;
pub mod tensorboard;

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use files::RunFile;
pub use find::{FindRunError, find_run};
pub use folder::{ClaimedRun, RunFolder};
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
    /// Its files do not hold together (a summary that does not parse,
    /// metrics that are not the summary's, a checkpoint that does not match
    /// its manifest): what, and the remedy.
    Damaged(String),
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
            RunState::Damaged(_) => "damaged",
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

/// What to do about a damaged run.
fn remedy(id: &str) -> String {
    format!(
        "`runner exec FILE --force --only {}` trains it again",
        id.chars().take(8).collect::<String>()
    )
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
    pub(crate) fn at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
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
    /// the operating system's error on as text only: its message, or Rust's
    /// `Debug` form of it).
    pub fn in_text(text: &str) -> Option<StoreProblem> {
        [StoreProblem::Full, StoreProblem::ReadOnly, StoreProblem::Quota]
            .into_iter()
            .find(|problem| {
                let code = problem.errno();
                let lower = text.to_lowercase();
                text.contains(&format!("(os error {code})"))
                    || text.contains(&format!("code: {code},"))
                    || lower.contains(problem.what())
            })
    }

    /// The operating system's error number for it (Linux).
    pub fn errno(self) -> i32 {
        match self {
            StoreProblem::Full => 28,
            StoreProblem::ReadOnly => 30,
            StoreProblem::Quota => 122,
        }
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

    /// A run's folder, for reading.
    pub fn folder(&self, id: &str) -> RunFolder {
        RunFolder::at(self.root.join(id))
    }

    /// The run's state, read from its folder (nothing is written).
    pub fn state(&self, run: &PlannedRun) -> RunState {
        let folder = self.folder(&run.id);
        if !folder.dir().exists() {
            return RunState::Pending;
        }
        if self.is_locked_by_other(&folder) {
            return RunState::Running;
        }
        match self.finished(run) {
            Some(Ok(())) => return RunState::Done,
            Some(Err(damage)) => return RunState::Damaged(damage),
            None => {}
        }
        match folder.status() {
            Some(Recorded::Failed { reason, .. }) => RunState::Failed(reason),
            _ if folder.has_checkpoint() => RunState::Partial,
            _ => match folder.checkpoint_problem() {
                Some(problem) => RunState::Damaged(format!(
                    "its checkpoint cannot be resumed from: {problem}; {}",
                    remedy(&run.id)
                )),
                None => RunState::Pending,
            },
        }
    }

    /// Whether the run finished and its files hold together.
    pub fn is_done(&self, run: &PlannedRun) -> bool {
        self.finished(run) == Some(Ok(()))
    }

    /// `None` when the run has not finished (no summary, or one recorded
    /// for another configuration); else whether its finished files hold
    /// together: `summary.json` parses and `metrics.csv` holds exactly its
    /// epochs. The error says what is wrong and what to do.
    pub fn finished(&self, run: &PlannedRun) -> Option<Result<(), String>> {
        let folder = self.folder(&run.id);
        let configured = folder
            .recorded_config()
            .is_some_and(|text| text == run.config.canonical());
        if !configured || !folder.path(RunFile::Summary).exists() {
            return None;
        }
        Some(
            folder
                .check_finished()
                .map_err(|damage| format!("{damage}; {}", remedy(&run.id))),
        )
    }

    /// Creates the run's folder, takes its lock and records its
    /// configuration (`config.json`, `config.kdl`); `None` when another
    /// process holds the lock. Only a claimed run's files can be written.
    pub fn claim(&self, run: &PlannedRun) -> Result<Option<ClaimedRun>, StoreError> {
        let folder = self.folder(&run.id);
        let dir = folder.dir().to_owned();
        std::fs::create_dir_all(&dir).map_err(StoreError::at(&dir))?;
        let path = folder.path(RunFile::Lock);
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
        // Writes killed halfway leave temporary files; no one else writes here now.
        atomic::remove_leftovers(&dir).map_err(StoreError::at(&dir))?;
        // Whoever trained it last is gone: its position is no one's now.
        let progress = folder.path(RunFile::Progress);
        match std::fs::remove_file(&progress) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::at(&progress)(e)),
            _ => {}
        }
        let label = if run.labels.is_empty() {
            self.experiment.clone()
        } else {
            run.label_text()
        };
        let curves = tensorboard::RunCurves::of(&self.root, run, &label);
        let claimed = ClaimedRun::new(dir, file).with_curves(curves);
        claimed.write_config(&run.config.canonical(), &write::experiment_file(&self.experiment, run))?;
        Ok(Some(claimed))
    }

    fn is_locked_by_other(&self, folder: &RunFolder) -> bool {
        let Ok(file) = File::open(folder.path(RunFile::Lock)) else {
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
        let debug = format!("IoError({:?})", std::io::Error::from_raw_os_error(30));
        assert_eq!(StoreProblem::in_text(&debug), Some(StoreProblem::ReadOnly), "{debug}");
        assert_eq!(
            StoreProblem::in_text("basic_ios::clear: No space left on device"),
            Some(StoreProblem::Full)
        );
        assert_eq!(StoreProblem::Full.what(), "no space left on device");
        assert_eq!(StoreProblem::ReadOnly.what(), "read-only file system");
    }
}
