//! Every file of a run's folder, named in one place.
//!
//! In: nothing. Out: [`RunFile`], each file a run folder can hold with its
//! name, and the set that training writes (what `--force` removes).

/// One file (or folder) of a run's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFile {
    /// `config.json`: the resolved configuration in its canonical form,
    /// compared to tell whether a summary belongs to this run.
    Config,
    /// `config.kdl`: the same as an experiment file for this run alone.
    ConfigKdl,
    /// `lock`: held while the run trains.
    Lock,
    /// `status.json`: its state, with the reason and log tail when it failed.
    Status,
    /// `log.txt`: what happened, a line each.
    Log,
    /// `data.json`: the summary of the dataset it trained on.
    Data,
    /// `metrics.csv`: one row per evaluated epoch.
    Metrics,
    /// `lr.csv`: the learning rate applied at each optimizer step.
    Lr,
    /// `predictions.json`: a few validation windows, true and predicted.
    Predictions,
    /// `summary.json`: the finished run; its presence marks the run done.
    Summary,
    /// `checkpoint/`: model, optimizer, position and manifest, replaced
    /// whole at every epoch end ([`crate::checkpoint`]).
    Checkpoint,
    /// `.checkpoint-next/`: a new checkpoint being written.
    CheckpointNext,
    /// `.checkpoint-old/`: the previous checkpoint while the new one is switched in.
    CheckpointOld,
}

impl RunFile {
    /// What a run's training writes, removed by `runner exec --force`.
    pub const WRITTEN_BY_TRAINING: [RunFile; 10] = [
        RunFile::Status,
        RunFile::Log,
        RunFile::Data,
        RunFile::Metrics,
        RunFile::Lr,
        RunFile::Predictions,
        RunFile::Summary,
        RunFile::Checkpoint,
        RunFile::CheckpointNext,
        RunFile::CheckpointOld,
    ];

    /// Whether it is a folder.
    pub fn is_folder(self) -> bool {
        matches!(
            self,
            RunFile::Checkpoint | RunFile::CheckpointNext | RunFile::CheckpointOld
        )
    }

    /// The file's name in the run folder.
    pub const fn name(self) -> &'static str {
        match self {
            RunFile::Config => "config.json",
            RunFile::ConfigKdl => "config.kdl",
            RunFile::Lock => "lock",
            RunFile::Status => "status.json",
            RunFile::Log => "log.txt",
            RunFile::Data => "data.json",
            RunFile::Metrics => "metrics.csv",
            RunFile::Lr => "lr.csv",
            RunFile::Predictions => "predictions.json",
            RunFile::Summary => "summary.json",
            RunFile::Checkpoint => "checkpoint",
            RunFile::CheckpointNext => ".checkpoint-next",
            RunFile::CheckpointOld => ".checkpoint-old",
        }
    }
}
