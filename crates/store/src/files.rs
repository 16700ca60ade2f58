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
    /// `progress.json`: where the run stands while it trains
    /// ([`crate::progress::RunProgress`]).
    Progress,
    /// `predictions.json`: a few validation windows, true and predicted.
    Predictions,
    /// `test-predictions.json`: every note of every test piece, with its
    /// true and greedy-predicted velocity ([`crate::records::PiecePrediction`]).
    TestPredictions,
    /// `listen/`: test pieces as MIDI, `<piece>.true.mid` and
    /// `<piece>.greedy.mid`, the same notes with true and predicted velocities.
    Listen,
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
    pub const WRITTEN_BY_TRAINING: [RunFile; 13] = [
        RunFile::Status,
        RunFile::Log,
        RunFile::Data,
        RunFile::Metrics,
        RunFile::Lr,
        RunFile::Progress,
        RunFile::Predictions,
        RunFile::TestPredictions,
        RunFile::Listen,
        RunFile::Summary,
        RunFile::Checkpoint,
        RunFile::CheckpointNext,
        RunFile::CheckpointOld,
    ];

    /// Whether it is a folder.
    pub fn is_folder(self) -> bool {
        matches!(
            self,
            RunFile::Checkpoint | RunFile::CheckpointNext | RunFile::CheckpointOld | RunFile::Listen
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
            RunFile::Progress => "progress.json",
            RunFile::Predictions => "predictions.json",
            RunFile::TestPredictions => "test-predictions.json",
            RunFile::Listen => "listen",
            RunFile::Summary => "summary.json",
            RunFile::Checkpoint => "checkpoint",
            RunFile::CheckpointNext => ".checkpoint-next",
            RunFile::CheckpointOld => ".checkpoint-old",
        }
    }
}
