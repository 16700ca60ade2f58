//! A fully resolved run: every field decided, typed, with no spans. This is
//! what the data, model and training stages read.
//!
//! Its canonical form is its JSON serialisation (fields in declaration order,
//! numbers in their shortest exact spelling), and a run's id is a hash of
//! that form, so the id does not depend on field order, comments, whitespace
//! or how a number was spelt, and changes with any value that affects
//! training. The device a run is placed on is not part of it.

use runner_spec::file::{Better, Metric};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Everything that decides what a run trains and measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunConfig {
    /// Seed for data order, initialisation and dropout.
    pub seed: u64,
    /// The data.
    pub dataset: DatasetConfig,
    /// The token scheme.
    pub encoder: Scheme,
    /// The network.
    pub model: ModelConfig,
    /// The training loss.
    pub loss: Loss,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// The training loop.
    pub train: TrainConfig,
    /// What is measured.
    pub evaluate: EvaluateConfig,
}

/// Where the data comes from and how it is cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DatasetConfig {
    /// The performances.
    pub source: Source,
    /// How pieces are assigned to splits.
    pub split: Split,
    /// Which pieces must share a split.
    #[serde(default, skip_serializing_if = "is_default")]
    pub group: Group,
    /// Pedal threshold when notes are extended by the sustain pedal.
    pub sustain: Option<u8>,
    /// What to do with a bad MIDI file.
    pub bad_files: BadFiles,
    /// What to do with pieces identical to another.
    #[serde(default, skip_serializing_if = "is_default")]
    pub duplicates: Duplicates,
    /// Pieces with fewer distinct velocities than this are left out (0 keeps all).
    #[serde(default, skip_serializing_if = "is_default")]
    pub min_velocities: u8,
    /// Windowing.
    pub window: Window,
    /// Quantization.
    pub quantize: Quantize,
    /// Training-time augmentation.
    pub augment: Augment,
}

/// The performances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    /// The ten MAESTRO files fetched by `scripts/setup`.
    Bundled,
    /// A folder of MIDI files (absolute, or relative to the experiment file).
    MidiDir {
        /// The folder.
        path: String,
    },
    /// A folder of parquet files in the HuggingFace maestro layout.
    HfParquet {
        /// The folder.
        path: String,
    },
}

/// How pieces (never windows) are assigned to train / validation / test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Split {
    /// Shuffle pieces with a seed and cut by shares.
    Fractions {
        /// Share for training.
        train: f64,
        /// Share for validation.
        validation: f64,
        /// Share for testing.
        test: f64,
        /// Shuffle seed.
        seed: u64,
    },
    /// Explicit file names.
    Files {
        /// Training pieces.
        train: Vec<String>,
        /// Validation pieces.
        validation: Vec<String>,
        /// Test pieces.
        test: Vec<String>,
    },
    /// The parquet's own split column.
    Column,
    /// Each file's split from a metadata table (MAESTRO's CSV layout by
    /// default), joined to the source's files by relative path.
    Table {
        /// The CSV file (absolute, or relative to the experiment file).
        path: String,
        /// The column naming each row's MIDI file, relative to the source folder.
        file_column: String,
        /// The column holding train, validation or test.
        split_column: String,
    },
    /// One fold of a k-fold cross-validation by group: fold `fold` tests,
    /// fold `fold + 1 (mod k)` validates, the others train.
    KFold {
        /// Number of folds.
        k: usize,
        /// The tested fold (the planner makes one run per fold).
        fold: usize,
        /// Seed of the shuffle that deals groups into folds.
        seed: u64,
    },
}

/// Which pieces must share a split (see `runner_data::group`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Group {
    /// Every piece alone.
    #[default]
    File,
    /// Pieces in one folder, cut to its first `depth` components (0: all).
    Folder {
        /// Folder components that name the group.
        depth: usize,
    },
    /// Pieces whose names give one match of `regex` (or of its first capture group).
    Pattern {
        /// The regular expression.
        regex: String,
    },
    /// Pieces with the same value in a column of a metadata table, or of
    /// the parquet source's own metadata.
    Column {
        /// The column whose value names the group.
        name: String,
        /// The CSV file (relative to the experiment file); `None`: the
        /// parquet rows' own metadata.
        table: Option<String>,
        /// The table's column naming each row's MIDI file.
        file_column: String,
    },
}

/// What to do with a piece whose bytes or notes repeat another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Duplicates {
    /// Keep the first by name, report the others.
    #[default]
    Drop,
    /// Stop with the list.
    Fail,
    /// Keep and report them (copies made on purpose, e.g. for timing).
    Keep,
}

/// What to do with a corrupt or unreadable MIDI file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadFiles {
    /// Report it and go on.
    Skip,
    /// Stop.
    Fail,
}

/// Windows of `length` notes every `step` notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Notes per window.
    pub length: usize,
    /// Notes between window starts.
    pub step: usize,
}

/// Bin counts and edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantize {
    /// dstart bins.
    pub dstart: usize,
    /// Duration bins.
    pub duration: usize,
    /// Velocity bins.
    pub velocity: usize,
    /// Where the edges come from.
    pub edges: Edges,
}

/// Where the bin edges come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Edges {
    /// The originals' fixed table (3 or 5 bins).
    Original,
    /// Quantiles of the training split.
    Quantile,
    /// Given edges.
    Explicit {
        /// dstart edges (seconds), one per bin.
        dstart: Vec<f64>,
        /// Duration edges (seconds), one per bin.
        duration: Vec<f64>,
        /// Velocity edges, one more than bins, closing at 128.
        velocity: Vec<f64>,
    },
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Augment {
    /// Largest transposition in semitones.
    pub pitch_shift: u8,
    /// Largest relative tempo change.
    pub time_stretch: f64,
    /// Chance a window is augmented.
    pub probability: f64,
}

/// Token scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Separate source and target vocabularies (midi-translation).
    Separate,
    /// One shared vocabulary (midi-hf-transformers).
    Shared,
}

/// Architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Attention Is All You Need, as midi-translation.
    Vanilla,
    /// HuggingFace T5 defaults.
    T5,
}

/// Where the norm sits in a residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// `x + f(norm(x))`.
    Pre,
    /// `norm(x + f(x))`.
    Post,
}

/// Position encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Positions {
    /// Added sinusoids.
    Sinusoidal,
    /// T5's bucketed relative bias.
    Relative,
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ModelConfig {
    /// Architecture.
    pub architecture: Architecture,
    /// Width.
    pub d_model: usize,
    /// Width of one head.
    pub d_kv: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Dropout probability.
    pub dropout: f64,
    /// Norm placement.
    pub norm: Norm,
    /// Position encoding.
    pub positions: Positions,
    /// Shared input/output embeddings.
    pub tie_embeddings: bool,
    /// Relative-position buckets (relative positions only).
    pub relative_buckets: Option<usize>,
    /// Relative-position max distance (relative positions only).
    pub relative_max_distance: Option<usize>,
    /// Dropout on the attention weights; `None` follows [`ModelConfig::dropout`].
    /// midi-translation fixes it at 0.1 whatever its model's dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_dropout: Option<f64>,
}

impl ModelConfig {
    /// The dropout applied to attention weights.
    pub fn attention_dropout(&self) -> f64 {
        self.attention_dropout.unwrap_or(self.dropout)
    }
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Loss {
    /// Plain cross-entropy.
    CrossEntropy,
    /// Label smoothing.
    LabelSmoothing {
        /// Mass spread over the other classes.
        epsilon: f64,
        /// Which columns the spread mass goes to.
        #[serde(default, skip_serializing_if = "is_default")]
        target: SmoothingTarget,
    },
}

/// Where label smoothing puts its `epsilon` (see `train::loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmoothingTarget {
    /// `eps / (K - 1)` on each other velocity class; specials get nothing
    /// (a target that sums to 1).
    #[default]
    ExcludeSpecials,
    /// midi-translation's `LabelSmoothing`: `eps / (V - 2)` on every other
    /// column of the output vocabulary, `<CLS>` included (sums to slightly
    /// more than 1).
    Original,
}

/// Optimizer algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (L2 weight decay).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OptimizerConfig {
    /// Algorithm.
    pub kind: OptimizerKind,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clipping.
    pub clip_norm: Option<f64>,
}

/// The learning rate as a function of the optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Schedule {
    /// `factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)`.
    Noam {
        /// Warm-up steps.
        warmup: u64,
        /// Scale.
        factor: f64,
        /// What `step` counts.
        #[serde(default, skip_serializing_if = "is_default")]
        counts: NoamCounts,
    },
    /// A constant rate.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// Linear warm-up to `peak`, then cosine decay to `min`.
    Cosine {
        /// Rate after warm-up.
        peak: f64,
        /// Rate at the last step.
        min: f64,
        /// Warm-up steps.
        warmup: u64,
    },
}

/// What the Noam schedule's `step` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoamCounts {
    /// Optimizer steps (1-based).
    #[default]
    Steps,
    /// Forward passes, as midi-translation's loop steps its scheduler after
    /// every batch: a step's rate is that of its last batch (0-based, 0 read as 1).
    Batches,
}

/// How the gradients of a step's forward passes combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gradient {
    /// The mean of the passes' gradients.
    #[default]
    Mean,
    /// Their sum (each pass's loss is its own per-token mean), as both
    /// originals' loops do.
    Sum,
}

/// Which forward passes of an epoch make up each optimizer step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepGroups {
    /// Consecutive groups of `accumulate` passes; the last takes the rest.
    #[default]
    Even,
    /// The originals' `it % accumulate == 0 or it == last`: the epoch's first
    /// pass steps alone, then every `accumulate` passes, and the last step
    /// takes the remainder.
    FirstAlone,
}

/// What the decoder reads and what it is trained to predict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderInput {
    /// The decoder reads `[CLS, v1, .., v(n-1)]` and predicts `v1 .. vn`
    /// (midi-translation).
    #[default]
    Cls,
    /// HuggingFace's shift-right of the labels `[CLS, v1, .., vn]` with the
    /// decoder start id 0 (= CLS): it reads `[0, CLS, v1, .., v(n-1)]` and
    /// predicts, and is trained on, `[CLS, v1, .., vn]` (midi-hf-transformers'
    /// `pipelines/T5`).
    ShiftRight,
}

impl DecoderInput {
    /// The ids the decoder reads before its first velocity prediction.
    pub fn prefix(self) -> &'static [i64] {
        match self {
            DecoderInput::Cls => &[0],
            DecoderInput::ShiftRight => &[0, 0],
        }
    }
}

/// Which ids a prediction is the most likely of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Argmax {
    /// The 128 velocity ids.
    #[default]
    Velocities,
    /// The whole output vocabulary, as midi-translation's greedy decoding;
    /// a pick that is not a velocity counts as velocity 0.
    Vocabulary,
}

/// [`EvaluateConfig::listen`] when the file does not say: 4 pieces.
fn default_listen() -> usize {
    4
}

/// Whether `listen` is the default (left out of the canonical form, so that
/// runs planned before the field existed keep their ids).
fn is_default_listen(listen: &usize) -> bool {
    *listen == default_listen()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Arithmetic precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit floats.
    Fp32,
    /// bfloat16 autocast.
    Bf16,
}

/// The training loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: u64,
    /// Stop after this many optimizer steps, if sooner.
    pub max_steps: Option<u64>,
    /// Windows per forward pass.
    pub batch_size: usize,
    /// Forward passes per optimizer step.
    pub accumulate: usize,
    /// How the passes' gradients combine.
    #[serde(default, skip_serializing_if = "is_default")]
    pub gradient: Gradient,
    /// Which passes make up each step.
    #[serde(default, skip_serializing_if = "is_default")]
    pub groups: StepGroups,
    /// What the decoder reads and predicts.
    #[serde(default, skip_serializing_if = "is_default")]
    pub decoder_input: DecoderInput,
    /// Precision.
    pub precision: Precision,
    /// Evaluate every this many epochs.
    pub eval_every: u64,
    /// Stop when a validation metric stops improving (none: train every epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
}

/// `train { early-stop metric=val-dist patience=3 min-delta=0.01 }`:
/// training stops after `patience` evaluations in a row that do not beat
/// the best one by more than `min_delta`; the best evaluation's weights are
/// the run's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EarlyStop {
    /// The validation metric watched (one evaluated after every epoch, with
    /// a better direction).
    pub metric: Metric,
    /// Evaluations in a row without an improvement before training stops.
    pub patience: u64,
    /// The least change that counts as an improvement.
    pub min_delta: f64,
}

/// Where early stopping stands after some evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The index of the best evaluation so far (`None` before the first).
    pub best: Option<usize>,
    /// Evaluations since the best one.
    pub since_best: u64,
}

impl EarlyStop {
    /// Follows the values of the watched metric, one per evaluation in
    /// order (a missing or non-finite value never improves): an evaluation
    /// becomes the best when it beats the best so far by more than
    /// `min_delta` (the first one always does).
    pub fn watch(&self, values: impl IntoIterator<Item = Option<f64>>) -> Watch {
        let lower = self.metric.better() != Better::Higher;
        let mut best: Option<(usize, f64)> = None;
        let mut since_best = 0;
        for (i, value) in values.into_iter().enumerate() {
            let value = value.filter(|v| v.is_finite());
            let improves = match (value, best) {
                (Some(_), None) => true,
                (Some(v), Some((_, b))) if lower => v < b - self.min_delta,
                (Some(v), Some((_, b))) => v > b + self.min_delta,
                (None, _) => false,
            };
            if let (true, Some(v)) = (improves, value) {
                best = Some((i, v));
                since_best = 0;
            } else {
                since_best += 1;
            }
        }
        Watch {
            best: best.map(|(i, _)| i),
            since_best,
        }
    }

    /// Whether training stops after evaluations that stand at `watch`.
    pub fn stops(&self, watch: Watch) -> bool {
        watch.best.is_some() && watch.since_best >= self.patience
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvaluateConfig {
    /// Teacher-forced metrics.
    pub teacher_forced: bool,
    /// Greedy-decoded metrics.
    pub greedy: bool,
    /// Test-split metrics at the end.
    pub test: bool,
    /// Validation windows whose predictions are saved.
    pub examples: usize,
    /// Test pieces written as MIDI (true and greedy velocities) at the end.
    #[serde(default = "default_listen", skip_serializing_if = "is_default_listen")]
    pub listen: usize,
    /// Which ids predictions choose among.
    #[serde(default, skip_serializing_if = "is_default")]
    pub argmax: Argmax,
}

/// Where a run should train. Not part of the run's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DevicePreference {
    /// CUDA when present, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// Any CUDA device.
    Cuda,
    /// One CUDA device.
    CudaIndex(usize),
}

impl DevicePreference {
    /// Whether a machine with `cuda_devices` CUDA devices has the device
    /// asked for (`auto` and `cpu` are always there).
    pub fn is_available(self, cuda_devices: usize) -> bool {
        match self {
            DevicePreference::Auto | DevicePreference::Cpu => true,
            DevicePreference::Cuda => cuda_devices > 0,
            DevicePreference::CudaIndex(k) => k < cuda_devices,
        }
    }

    /// Parses `auto`, `cpu`, `cuda` or `cuda:K`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(DevicePreference::Auto),
            "cpu" => Some(DevicePreference::Cpu),
            "cuda" => Some(DevicePreference::Cuda),
            _ => text
                .strip_prefix("cuda:")?
                .parse()
                .ok()
                .map(DevicePreference::CudaIndex),
        }
    }
}

impl std::fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DevicePreference::Auto => f.write_str("auto"),
            DevicePreference::Cpu => f.write_str("cpu"),
            DevicePreference::Cuda => f.write_str("cuda"),
            DevicePreference::CudaIndex(k) => write!(f, "cuda:{k}"),
        }
    }
}

/// Whether a run on CUDA replays a captured CUDA graph of its training
/// step (`runner exec --cuda-graph`). An execution choice, like the device:
/// a replayed step computes what an eager one would, so it is not part of
/// the run's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CudaGraph {
    /// On CUDA, capture; when capture is not possible, go on eagerly and
    /// say why in the summary. Eager on the CPU.
    #[default]
    Auto,
    /// Capture, and fail the run when it cannot be captured (or is not on CUDA).
    On,
    /// Every step eager.
    Off,
}

impl CudaGraph {
    /// The choices, as typed.
    pub const WORDS: [&str; 3] = ["auto", "on", "off"];

    /// Parses `auto`, `on` or `off`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(CudaGraph::Auto),
            "on" => Some(CudaGraph::On),
            "off" => Some(CudaGraph::Off),
            _ => None,
        }
    }
}

impl std::fmt::Display for CudaGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CudaGraph::Auto => "auto",
            CudaGraph::On => "on",
            CudaGraph::Off => "off",
        })
    }
}

impl TrainConfig {
    /// Optimizer steps in an epoch of `batches` forward passes.
    pub fn steps_per_epoch(&self, batches: u64) -> u64 {
        let accumulate = self.accumulate as u64;
        match self.groups {
            StepGroups::Even => batches.div_ceil(accumulate),
            StepGroups::FirstAlone if batches == 0 => 0,
            StepGroups::FirstAlone => 1 + (batches - 1).div_ceil(accumulate),
        }
    }

    /// Forward passes in the optimizer step that starts at pass `first` of
    /// an epoch of `batches`.
    pub fn group(&self, first: u64, batches: u64) -> u64 {
        let left = batches.saturating_sub(first);
        match self.groups {
            StepGroups::FirstAlone if first == 0 => left.min(1),
            _ => left.min(self.accumulate as u64),
        }
    }
}

/// What to watch instead of a metric no run evaluates after each epoch.
pub const WATCH_VALIDATION: &str = "watch a validation metric: val-loss, val-dist, greedy-dist or accuracy";

/// Why a metric cannot be watched after each epoch of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unwatchable {
    /// Completes "`metric` ...".
    pub why: &'static str,
    /// What to do instead.
    pub help: &'static str,
    /// The setting responsible, with a label for it.
    pub setting: Option<(&'static str, &'static str)>,
}

impl RunConfig {
    /// Why `metric` cannot be watched after each epoch of this run (by
    /// early stopping or a search); `None` when it can: it is evaluated
    /// after every epoch and has a better direction.
    pub fn unwatchable(&self, metric: Metric) -> Option<Unwatchable> {
        let cannot = |why, help, setting| Some(Unwatchable { why, help, setting });
        if let Some(why) = metric.unwatchable() {
            return cannot(why, WATCH_VALIDATION, None);
        }
        match metric {
            Metric::GreedyDist if !self.evaluate.greedy => cannot(
                "is not evaluated with greedy decoding off",
                "watch val-dist, or turn greedy decoding on",
                Some(("evaluate.greedy", "evaluate.greedy #false")),
            ),
            Metric::ValLsKl if !matches!(self.loss, Loss::LabelSmoothing { .. }) => cannot(
                "is evaluated for label-smoothing runs only",
                "watch val-loss, every run's cross-entropy",
                Some(("loss", "the loss")),
            ),
            Metric::ValCeWithCls if self.train.decoder_input != DecoderInput::ShiftRight => cannot(
                "is evaluated with decoder-input shift-right only",
                "watch val-loss, every run's cross-entropy",
                Some(("train.decoder-input", "the decoder input")),
            ),
            _ => None,
        }
    }

    /// The canonical form: compact JSON.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("a run config always serialises")
    }

    /// The run's id: the first 16 hex digits of the SHA-256 of the canonical form.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.canonical().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Optimizer steps this run takes when the training split has `windows`
    /// windows (the last partial batch counts as a forward pass).
    pub fn steps(&self, windows: usize) -> u64 {
        let batches = windows.div_ceil(self.train.batch_size) as u64;
        let per_epoch = self.train.steps_per_epoch(batches);
        let total = per_epoch * self.train.epochs;
        self.train.max_steps.map_or(total, |max| total.min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(accumulate: usize, groups: StepGroups) -> TrainConfig {
        TrainConfig {
            epochs: 1,
            max_steps: None,
            batch_size: 16,
            accumulate,
            gradient: Gradient::Sum,
            groups,
            decoder_input: DecoderInput::Cls,
            precision: Precision::Fp32,
            eval_every: 1,
            early_stop: None,
        }
    }

    /// The passes of each step of an epoch of `batches` passes.
    fn groups(t: &TrainConfig, batches: u64) -> Vec<u64> {
        let mut first = 0;
        let mut sizes = Vec::new();
        while first < batches {
            let size = t.group(first, batches);
            sizes.push(size);
            first += size;
        }
        assert_eq!(sizes.len() as u64, t.steps_per_epoch(batches));
        sizes
    }

    fn stop(metric: Metric, patience: u64, min_delta: f64) -> EarlyStop {
        EarlyStop {
            metric,
            patience,
            min_delta,
        }
    }

    #[test]
    fn early_stop_keeps_the_best_evaluation_and_stops_after_patience_without_improvement() {
        let rule = stop(Metric::ValDist, 2, 0.1);
        // 9.0 best; 8.95 is not better by more than 0.1; 8.5 is; then two misses.
        let values = [9.0, 8.95, 8.5, 8.6, 8.45];
        let watch = rule.watch(values.iter().map(|&v| Some(v)));
        assert_eq!(
            watch,
            Watch {
                best: Some(2),
                since_best: 2
            }
        );
        assert!(rule.stops(watch));
        let before = rule.watch(values[..4].iter().map(|&v| Some(v)));
        assert_eq!(
            before,
            Watch {
                best: Some(2),
                since_best: 1
            }
        );
        assert!(!rule.stops(before));
        // A missing or NaN value never improves, and nothing stops before a best.
        let gaps = rule.watch([None, Some(f64::NAN), Some(7.0)]);
        assert_eq!(
            gaps,
            Watch {
                best: Some(2),
                since_best: 0
            }
        );
        assert!(!rule.stops(rule.watch([None, None, None])));
    }

    #[test]
    fn early_stop_on_accuracy_looks_for_a_higher_value() {
        let rule = stop(Metric::Accuracy, 1, 0.0);
        let watch = rule.watch([Some(0.2), Some(0.3), Some(0.3)]);
        assert_eq!(
            watch,
            Watch {
                best: Some(1),
                since_best: 1
            }
        );
        assert!(rule.stops(watch));
    }

    #[test]
    fn even_groups_take_accumulate_passes_and_the_last_the_rest() {
        let t = train(10, StepGroups::Even);
        assert_eq!(groups(&t, 25), [10, 10, 5]);
        assert_eq!(groups(&t, 20), [10, 10]);
        assert_eq!(groups(&t, 0), Vec::<u64>::new());
    }

    /// midi-translation steps when `it % accum_iter == 0 or it == steps - 1`
    /// (`it` from 0): after pass 0, then 10, 20, ... and the last.
    #[test]
    fn first_alone_groups_step_where_the_originals_loop_does() {
        let t = train(10, StepGroups::FirstAlone);
        for batches in [1u64, 2, 10, 11, 12, 25, 31] {
            let original: Vec<u64> = (0..batches).filter(|it| it % 10 == 0 || *it == batches - 1).collect();
            let ends: Vec<u64> = groups(&t, batches)
                .iter()
                .scan(0, |done, size| {
                    *done += size;
                    Some(*done - 1)
                })
                .collect();
            assert_eq!(ends, original, "{batches} passes");
        }
        // With accumulate 1 both groupings are one pass a step.
        assert_eq!(
            groups(&train(1, StepGroups::FirstAlone), 7),
            groups(&train(1, StepGroups::Even), 7)
        );
    }
}
