//! The records a run leaves: one [`EpochRecord`] per evaluated epoch (a row
//! of `metrics.csv`), the [`Summary`] of a finished run (`summary.json`) and
//! the [`Example`]s of `predictions.json`.
//!
//! serde_json writes a NaN (e.g. the flatness of a split whose true
//! velocities do not vary) as `null`; [`nan_if_null`] reads it back.

use serde::{Deserialize, Serialize};

use runner_plan::config::CudaGraph;
use runner_spec::file::Metric;

use crate::metrics::{VelocityMetrics, nan_if_null};

/// Metrics after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: u64,
    /// Optimizer steps so far.
    pub step: u64,
    /// Mean training objective over the epoch.
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Validation cross-entropy of the true velocity (comparable across
    /// every run, whatever its loss).
    #[serde(deserialize_with = "nan_if_null")]
    pub val_loss: f64,
    /// midi-translation's val loss (the write-up's 2.486): the label-smoothing
    /// KL divergence per target, for runs trained with label smoothing.
    #[serde(default)]
    pub val_ls_kl: Option<f64>,
    /// midi-hf-transformers' val loss (the write-up's 4.445): cross-entropy
    /// over the labels `[CLS, v1 .. vn]`, for runs with decoder input shift-right.
    #[serde(default)]
    pub val_ce_with_cls: Option<f64>,
    /// Teacher-forced validation metrics.
    pub val: VelocityMetrics,
    /// Greedy-decoded validation metrics, when asked for.
    pub greedy: Option<VelocityMetrics>,
    /// Seconds since training started (this process's share for a resumed run).
    pub seconds: f64,
}

impl EpochRecord {
    /// Its value of a validation metric (`None` for a metric it did not
    /// evaluate, and for the test metrics, which no epoch holds).
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::ValLoss => Some(self.val_loss),
            Metric::ValLsKl => self.val_ls_kl,
            Metric::ValCeWithCls => self.val_ce_with_cls,
            Metric::ValDist => Some(self.val.dist),
            Metric::GreedyDist => self.greedy.as_ref().map(|g| g.dist),
            Metric::Flatness => Some(self.val.flatness),
            Metric::GreedyFlatness => self.greedy.as_ref().map(|g| g.flatness),
            Metric::Accuracy => Some(self.val.accuracy),
            Metric::TestDist | Metric::TestGreedyDist => None,
        }
    }
}

/// With early stopping: the evaluation whose weights are the run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// Its epoch (one of [`Summary::epochs`]).
    pub epoch: u64,
    /// The metric watched.
    pub metric: Metric,
    /// Its value of that metric.
    pub value: f64,
    /// Whether training stopped before its planned epochs and steps.
    pub stopped_early: bool,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Every evaluated epoch.
    pub epochs: Vec<EpochRecord>,
    /// Test-split metrics (teacher-forced, then greedy), when asked for.
    pub test: Option<(VelocityMetrics, Option<VelocityMetrics>)>,
    /// "Predict the training mean" on validation.
    pub baseline_mean: VelocityMetrics,
    /// "Predict the centre of the coarse velocity bin" on validation.
    pub baseline_bin_centre: VelocityMetrics,
    /// Trainable parameters (0 in summaries older than the field).
    #[serde(default)]
    pub parameters: i64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The device it trained on.
    pub device: String,
    /// libtorch's CPU threads it trained with, which CPU results depend on
    /// (0 in summaries older than the field).
    #[serde(default)]
    pub threads: usize,
    /// The precision it trained in (empty in summaries older than the field).
    #[serde(default)]
    pub precision: String,
    /// How its steps ran: eager, or replays of a CUDA graph (and why not,
    /// when capture was asked for and failed).
    #[serde(default)]
    pub step: String,
    /// What `--cuda-graph` asked for.
    #[serde(default)]
    pub cuda_graph: CudaGraph,
    /// Wall-clock seconds of training and evaluation in this process.
    pub seconds: f64,
    /// With early stopping: the best evaluation, whose weights the test
    /// metrics, predictions and listening files come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestEpoch>,
}

impl Summary {
    /// The evaluation that stands for the run: the best one with early
    /// stopping, else the last.
    pub fn result(&self) -> Option<&EpochRecord> {
        match &self.best {
            Some(best) => self.epochs.iter().find(|e| e.epoch == best.epoch),
            None => self.epochs.last(),
        }
    }
}

/// Every note of one test piece with its true and greedy-predicted
/// velocity (`runner predict`'s windows: each note predicted once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiecePrediction {
    /// The piece's name.
    pub piece: String,
    /// Each note's pitch.
    pub pitch: Vec<u8>,
    /// Each note's onset, in seconds.
    pub start: Vec<f64>,
    /// Each note's release (pedal-extended), in seconds.
    pub end: Vec<f64>,
    /// Each note's true velocity.
    pub truth: Vec<u8>,
    /// Each note's greedy-predicted velocity.
    pub greedy: Vec<u8>,
    /// The name of its files in `listen/` (`NAME.true.mid`,
    /// `NAME.greedy.mid`), when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// Saved predictions for one validation window.
#[derive(Debug, Serialize, Deserialize)]
pub struct Example {
    /// Index of the window in the validation split.
    pub window: usize,
    /// True velocities.
    pub truth: Vec<u8>,
    /// Teacher-forced predictions.
    pub teacher_forced: Vec<u8>,
    /// Greedy predictions.
    pub greedy: Vec<u8>,
}
