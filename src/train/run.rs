//! One training run: a resolved configuration and its dataset → a trained
//! model, metrics per epoch, a summary and example predictions.
//!
//! In: a [`RunConfig`], a built [`Dataset`], a device and the run's folder.
//! Out: in that folder, `metrics.csv` (one row per evaluated epoch), `lr.csv`
//! (the learning rate applied at each optimizer step), `predictions.json`
//! (true, teacher-forced and greedy velocities of a few fixed validation
//! windows), `data.json` (the dataset's summary: pieces, notes and windows
//! per split, bin edges), `summary.json`, and `checkpoint/` (model, optimizer, position),
//! rewritten atomically at every epoch end. A run started again with a
//! checkpoint present resumes from it and ends exactly where an uninterrupted
//! run ends: data order and dropout are seeded per epoch from the run's seed.
//!
//! The whole token dataset lives on the device; batches are gathered there.
//! The loss is read back from the device only every [`LOG_EVERY`] steps.
//! Each optimizer step is a [`Stepper`] step, which on CUDA can replay a
//! CUDA graph of the whole step (the default on CUDA; `RUNNER_CUDA_GRAPH=0`
//! keeps every step eager).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

use super::loss::Criterion;
use super::metrics::{self, VelocityMetrics};
use super::optimizer::Optimizer;
use super::schedule;
use super::step::{DeviceWindows, Stepper};
use crate::atomic;
use crate::data::TokenWindows;
use crate::data::dataset::Dataset;
use crate::model::{self, Seq2Seq};
use crate::plan::config::{Precision, RunConfig};

/// Optimizer steps between reads of the running loss.
pub const LOG_EVERY: u64 = 25;

/// Windows per evaluation batch on `device`: 64 on the CPU (larger batches
/// gain nothing there), 256 on CUDA, where small batches leave the card
/// waiting on kernel launches (greedy decoding takes 128 decoder steps a
/// batch) and 256 keeps the teacher-forced logits of even a shared
/// vocabulary (`[256, 128, ~6,700]` in f32, with their log-softmax) near
/// 2 GB.
pub fn eval_batch(device: Device) -> i64 {
    if device.is_cuda() { 256 } else { 64 }
}

/// What a run reports while it trains (only the executor's reporter prints).
pub trait Progress {
    /// Training starts (or resumes at `done` of `total` optimizer steps).
    fn start(&self, total: u64, done: u64);
    /// An optimizer step finished; `loss` is present every [`LOG_EVERY`] steps.
    fn step(&self, step: u64, lr: f64, loss: Option<f64>);
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

/// Metrics after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: u64,
    /// Optimizer steps so far.
    pub step: u64,
    /// Mean training objective over the epoch.
    pub train_loss: f64,
    /// Validation cross-entropy over velocity targets (comparable across losses).
    pub val_loss: f64,
    /// Teacher-forced validation metrics.
    pub val: VelocityMetrics,
    /// Greedy-decoded validation metrics, when asked for.
    pub greedy: Option<VelocityMetrics>,
    /// Seconds since training started (this process's share for a resumed run).
    pub seconds: f64,
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
    /// Trainable parameters.
    pub parameters: i64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The device it trained on.
    pub device: String,
    /// The precision it trained in.
    pub precision: String,
    /// How its steps ran: eager, or replays of a CUDA graph (and why not,
    /// when capture was asked for and failed).
    #[serde(default)]
    pub step: String,
    /// Wall-clock seconds of training and evaluation in this process.
    pub seconds: f64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// The loss could not be set up.
    #[error(transparent)]
    Loss(#[from] super::loss::LossError),
    /// The optimizer could not be set up or restored.
    #[error(transparent)]
    Optimizer(#[from] super::optimizer::OptimizerError),
    /// libtorch failed (out of memory, a bad checkpoint...).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// The checkpoint of an unfinished run cannot be restored into this
    /// model: damaged, or saved by a runner whose model layout differs.
    #[error(
        "cannot resume from the checkpoint in {dir} ({reason}): it is damaged or was saved by a \
         runner with another model layout; `runner exec FILE --force --only RUN` starts the run over"
    )]
    Checkpoint {
        /// The checkpoint folder.
        dir: PathBuf,
        /// What libtorch said.
        reason: String,
    },
    /// The training loss became NaN or infinite.
    #[error("the training loss became {value} at step {step}")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss value.
        value: f64,
    },
    /// The training split has no windows.
    #[error("the training split has no windows (pieces shorter than the window length?)")]
    NoTrainingData,
    /// Stopped on request; the state after `step` is checkpointed.
    #[error("interrupted after step {step} (checkpointed; run again to resume)")]
    Interrupted {
        /// The last optimizer step taken.
        step: u64,
    },
}

/// How far training got: saved with every checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    /// Finished epochs.
    epoch: u64,
    /// Optimizer steps taken.
    step: u64,
    /// The next batch of the unfinished epoch (0 at an epoch boundary).
    next_batch: i64,
    /// Sum and count of the training objective so far in the unfinished epoch.
    partial_loss: f64,
    partial_count: i64,
    /// Evaluated epochs.
    epochs: Vec<EpochRecord>,
    /// The learning rate applied at each step.
    lr_log: Vec<f64>,
}

/// Whether training on CUDA should capture its steps in a CUDA graph: yes
/// unless `RUNNER_CUDA_GRAPH=0`. A replayed step computes what an eager
/// one would (`runner bench train --cuda-graph` checks the losses: within
/// 4e-7 relative in fp32 on an H100) at up to 4x the speed at small
/// batches (docs/perf.md). The variable is an execution choice, like the
/// device, so it is not part of a run's configuration or id. When capture
/// fails the run goes on eagerly and its summary says why.
fn cuda_graph_requested() -> bool {
    cuda_graph_wanted(std::env::var("RUNNER_CUDA_GRAPH").ok().as_deref())
}

/// [`cuda_graph_requested`] for a value of `RUNNER_CUDA_GRAPH`.
fn cuda_graph_wanted(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim() != "0")
}

/// A seed for `(run seed, salt)`: distinct salts give unrelated streams.
fn mix(seed: i64, salt: i64) -> i64 {
    let mut z = (seed as u64) ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// Trains `config` on `data` in `dir`, resuming from `dir/checkpoint` when
/// present. `stop` is polled after every optimizer step: when set, the run
/// checkpoints and returns [`TrainError::Interrupted`].
pub fn train(
    config: &RunConfig,
    data: &Dataset,
    device: Device,
    dir: &Path,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let vocab = &data.vocab;
    let first_velocity = i64::from(vocab.velocity_id(0).expect("velocity 0 is in every vocabulary"));
    let classes = first_velocity..first_velocity + 128;

    tch::manual_seed(config.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let net = model::build(
        &vs.root(),
        &config.model,
        i64::from(vocab.source_size()),
        i64::from(vocab.target_size()),
        config.encoder,
    )?;
    let criterion = Criterion::new(config.loss, classes.clone())?;
    let mut optimizer = Optimizer::new(&vs, &config.optimizer)?;

    let train_split = DeviceWindows::new(&data.train, device);
    let val_split = DeviceWindows::new(&data.validation, device);
    if train_split.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let total_steps = config.steps(data.train.len());

    let checkpoint = dir.join("checkpoint");
    let mut position = Position::default();
    if checkpoint.join("position.json").exists() {
        let unusable = |reason: String| TrainError::Checkpoint {
            dir: checkpoint.clone(),
            reason,
        };
        position = read_json(&checkpoint.join("position.json"))?;
        vs.load(checkpoint.join("model.safetensors"))
            .map_err(|e| unusable(e.to_string()))?;
        optimizer
            .load(&checkpoint.join("optimizer.safetensors"))
            .map_err(|e| unusable(e.to_string()))?;
    }
    progress.start(total_steps, position.step);

    let use_autocast = config.train.precision == Precision::Bf16 && device.is_cuda();
    if use_autocast {
        super::precision::use_bf16_autocast();
    }
    let batch = config.train.batch_size as i64;
    let accumulate = config.train.accumulate as i64;
    let windows = train_split.len();
    let batches_per_epoch = (windows + batch - 1) / batch;
    let seed = config.seed as i64;
    let mut stepper = Stepper::new(net.as_ref(), &criterion, use_autocast, device);
    if device.is_cuda() && cuda_graph_requested() {
        stepper = stepper.with_cuda_graph(device, &optimizer, batch * accumulate);
    }

    while position.epoch < config.train.epochs && position.step < total_steps {
        let epoch = position.epoch + 1;
        // The data order depends only on (seed, epoch), and dropout only on
        // (seed, step): a resumed run sees exactly what an uninterrupted one saw.
        tch::manual_seed(mix(seed, -(epoch as i64)));
        let order = Tensor::randperm(windows, (Kind::Int64, Device::Cpu)).to_device(device);
        stepper.sums.start_epoch(position.partial_loss, position.partial_count);
        let mut b = position.next_batch;
        while b < batches_per_epoch && position.step < total_steps {
            // One optimizer step over up to `accumulate` batches.
            tch::manual_seed(mix(seed, position.step as i64 + 1));
            let group = accumulate.min(batches_per_epoch - b);
            let first = b * batch;
            let index = order.narrow(0, first, (group * batch).min(windows - first));
            b += group;
            position.step += 1;
            let lr = schedule::lr(&config.schedule, config.model.d_model, position.step, total_steps);
            stepper.step(&mut optimizer, &train_split, &index, batch, lr);
            position.lr_log.push(lr);
            let loss = (position.step % LOG_EVERY == 0).then(|| stepper.sums.take_running());
            if let Some(value) = loss
                && !value.is_finite()
            {
                return Err(TrainError::Diverged {
                    step: position.step,
                    value,
                });
            }
            progress.step(position.step, lr, loss);
            if stop.load(Ordering::Relaxed) && b < batches_per_epoch && position.step < total_steps {
                position.next_batch = b;
                (position.partial_loss, position.partial_count) = stepper.sums.epoch();
                save_checkpoint(&checkpoint, &vs, &optimizer, &position)?;
                write_lr_log(dir, &position.lr_log)?;
                return Err(TrainError::Interrupted { step: position.step });
            }
        }
        let (epoch_sum, epoch_count) = stepper.sums.epoch();
        let train_loss = epoch_sum / epoch_count.max(1) as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::Diverged {
                step: position.step,
                value: train_loss,
            });
        }
        position.epoch = epoch;
        position.next_batch = 0;
        position.partial_loss = 0.0;
        position.partial_count = 0;
        if epoch % config.train.eval_every == 0 || epoch == config.train.epochs || position.step >= total_steps {
            let evaluation = evaluate(net.as_ref(), &val_split, &classes, config.evaluate.greedy);
            let record = EpochRecord {
                epoch,
                step: position.step,
                train_loss,
                val_loss: evaluation.loss,
                val: evaluation.teacher_forced,
                greedy: evaluation.greedy,
                seconds: started.elapsed().as_secs_f64(),
            };
            progress.epoch(&record);
            position.epochs.push(record);
            write_metrics(dir, &position.epochs)?;
        }
        save_checkpoint(&checkpoint, &vs, &optimizer, &position)?;
        write_lr_log(dir, &position.lr_log)?;
        if stop.load(Ordering::Relaxed) && position.epoch < config.train.epochs && position.step < total_steps {
            return Err(TrainError::Interrupted { step: position.step });
        }
    }

    let validation_truth = truth(&data.validation, first_velocity);
    let train_mean = metrics::mean(&truth(&data.train, first_velocity));
    let velocity_edges = data.quantizer.velocity.as_slice();
    let test = config.evaluate.test.then(|| {
        let test_split = DeviceWindows::new(&data.test, device);
        let evaluation = evaluate(net.as_ref(), &test_split, &classes, config.evaluate.greedy);
        (evaluation.teacher_forced, evaluation.greedy)
    });
    write_examples(dir, net.as_ref(), &val_split, &classes, config.evaluate.examples as i64)?;
    let summary = Summary {
        epochs: position.epochs.clone(),
        test,
        baseline_mean: metrics::mean_baseline(train_mean, &validation_truth),
        baseline_bin_centre: metrics::bin_centre_baseline(velocity_edges, &validation_truth),
        parameters: vs.trainable_variables().iter().map(|t| t.numel() as i64).sum(),
        steps: position.step,
        device: crate::environment::describe_device(device),
        precision: if use_autocast {
            "bf16 autocast".to_owned()
        } else {
            "fp32".to_owned()
        },
        step: stepper.graph_status().to_string(),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join("data.json"), &data.summary)?;
    write_json(&dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// The true velocities of every window's notes (CLS excluded), flattened.
fn truth(windows: &TokenWindows, first_velocity: i64) -> Vec<u8> {
    let width = windows.width();
    windows
        .target()
        .chunks(width)
        .flat_map(|w| {
            w[1..]
                .iter()
                .map(|&id| (i64::from(id) - first_velocity).clamp(0, 127) as u8)
        })
        .collect()
}

/// Validation or test results.
struct Evaluation {
    loss: f64,
    teacher_forced: VelocityMetrics,
    greedy: Option<VelocityMetrics>,
}

/// Teacher-forced loss and metrics, and greedy metrics when `greedy`.
/// Predictions are the most likely velocity class (other tokens excluded).
fn evaluate(net: &dyn Seq2Seq, split: &DeviceWindows, classes: &std::ops::Range<i64>, greedy: bool) -> Evaluation {
    tch::no_grad(|| {
        let mut nll = 0.0;
        let mut predicted: Vec<u8> = Vec::new();
        let mut greedy_predicted: Vec<u8> = Vec::new();
        let mut truth: Vec<u8> = Vec::new();
        let n = split.len();
        let batch = eval_batch(split.src.device());
        let mut start = 0;
        while start < n {
            let size = batch.min(n - start);
            let src = split.src.narrow(0, start, size);
            let tgt = split.tgt.narrow(0, start, size);
            let length = tgt.size()[1] - 1;
            let tgt_in = tgt.narrow(1, 0, length);
            let tgt_out = tgt.narrow(1, 1, length);
            let logits = net.forward(&src, &tgt_in, false).to_kind(Kind::Float);
            // Cross-entropy over the whole output vocabulary: [B, T].
            let log_probs = logits.log_softmax(-1, Kind::Float);
            nll += -log_probs
                .gather(2, &tgt_out.unsqueeze(-1), false)
                .sum(Kind::Double)
                .double_value(&[]);
            predicted.extend(velocities(&logits, classes));
            truth.extend(
                Vec::<u8>::try_from(
                    (&tgt_out - classes.start)
                        .clamp(0, 127)
                        .to_kind(Kind::Uint8)
                        .flatten(0, -1),
                )
                .unwrap_or_default(),
            );
            if greedy {
                greedy_predicted.extend(decode_greedy(net, &src, length, classes));
            }
            start += size;
        }
        Evaluation {
            loss: nll / truth.len().max(1) as f64,
            teacher_forced: VelocityMetrics::of(&predicted, &truth),
            greedy: greedy.then(|| VelocityMetrics::of(&greedy_predicted, &truth)),
        }
    })
}

/// The most likely velocity at each position of `logits` `[B, T, V]`, flattened.
fn velocities(logits: &Tensor, classes: &std::ops::Range<i64>) -> Vec<u8> {
    let velocity_logits = logits.narrow(2, classes.start, classes.end - classes.start); // [B, T, 128]
    let best = velocity_logits.argmax(-1, false).to_kind(Kind::Uint8).flatten(0, -1);
    Vec::<u8>::try_from(best.to_device(Device::Cpu)).unwrap_or_default()
}

/// Greedy autoregressive decoding, batched: the decoder starts from CLS and
/// feeds back its own most likely velocity. The source is encoded once; each
/// step feeds one target to [`Seq2Seq::decode_next`], which keeps the keys
/// and values of the earlier ones (`length` decoder passes over one position).
pub(crate) fn decode_greedy(net: &dyn Seq2Seq, src: &Tensor, length: i64, classes: &std::ops::Range<i64>) -> Vec<u8> {
    let memory = net.encode(src, None, false);
    let mut state = net.start_decoding(&memory);
    let batch = src.size()[0];
    let mut next = Tensor::full(
        [batch, 1],
        crate::data::encoder::CLS as i64,
        (Kind::Int64, src.device()),
    );
    let mut chosen = Vec::with_capacity(length as usize);
    for _ in 0..length {
        let logits = net.decode_next(&mut state, &next); // [B, V]
        let velocity_logits = logits.narrow(1, classes.start, classes.end - classes.start); // [B, 128]
        next = velocity_logits.argmax(-1, true) + classes.start; // [B, 1]
        chosen.push(next.shallow_clone());
    }
    // length x [B, 1] -> [B, length]
    let predicted = (Tensor::cat(&chosen, 1) - classes.start)
        .to_kind(Kind::Uint8)
        .flatten(0, -1);
    Vec::<u8>::try_from(predicted.to_device(Device::Cpu)).unwrap_or_default()
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

fn write_examples(
    dir: &Path,
    net: &dyn Seq2Seq,
    split: &DeviceWindows,
    classes: &std::ops::Range<i64>,
    count: i64,
) -> Result<(), TrainError> {
    let count = count.min(split.len());
    let examples: Vec<Example> = tch::no_grad(|| {
        (0..count)
            .map(|i| {
                let src = split.src.narrow(0, i, 1);
                let tgt = split.tgt.narrow(0, i, 1);
                let length = tgt.size()[1] - 1;
                let logits = net.forward(&src, &tgt.narrow(1, 0, length), false);
                let truth = (tgt.narrow(1, 1, length) - classes.start)
                    .clamp(0, 127)
                    .to_kind(Kind::Uint8)
                    .flatten(0, -1);
                Example {
                    window: i as usize,
                    truth: Vec::<u8>::try_from(truth.to_device(Device::Cpu)).unwrap_or_default(),
                    teacher_forced: velocities(&logits, classes),
                    greedy: decode_greedy(net, &src, length, classes),
                }
            })
            .collect()
    });
    write_json(&dir.join("predictions.json"), &examples)
}

fn save_checkpoint(
    folder: &Path,
    vs: &nn::VarStore,
    optimizer: &Optimizer,
    position: &Position,
) -> Result<(), TrainError> {
    let io = |source| TrainError::Io {
        path: folder.to_owned(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(io)?;
    // Model and optimizer go to temporary names first, the position file
    // last: a checkpoint is complete exactly when position.json names it.
    let model_tmp = folder.join("model.partial.safetensors");
    let optimizer_tmp = folder.join("optimizer.partial.safetensors");
    vs.save(&model_tmp)?;
    optimizer.save(&optimizer_tmp)?;
    std::fs::rename(&model_tmp, folder.join("model.safetensors")).map_err(io)?;
    std::fs::rename(&optimizer_tmp, folder.join("optimizer.safetensors")).map_err(io)?;
    write_json(&folder.join("position.json"), position)
}

fn write_metrics(dir: &Path, epochs: &[EpochRecord]) -> Result<(), TrainError> {
    let mut text = String::from(
        "epoch,step,train_loss,val_loss,val_dist,val_accuracy,val_flatness,greedy_dist,greedy_accuracy,greedy_flatness,seconds\n",
    );
    for r in epochs {
        let g = |f: fn(&VelocityMetrics) -> f64| r.greedy.as_ref().map_or(String::new(), |m| format!("{}", f(m)));
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{:.3}\n",
            r.epoch,
            r.step,
            r.train_loss,
            r.val_loss,
            r.val.dist,
            r.val.accuracy,
            r.val.flatness,
            g(|m| m.dist),
            g(|m| m.accuracy),
            g(|m| m.flatness),
            r.seconds
        ));
    }
    write_file(&dir.join("metrics.csv"), text.as_bytes())
}

fn write_lr_log(dir: &Path, lrs: &[f64]) -> Result<(), TrainError> {
    let mut text = String::from("step,lr\n");
    for (i, lr) in lrs.iter().enumerate() {
        text.push_str(&format!("{},{lr:e}\n", i + 1));
    }
    write_file(&dir.join("lr.csv"), text.as_bytes())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    write_file(path, text.as_bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    atomic::write(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| TrainError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{ids, seeded, tiny};
    use crate::plan::config::{Architecture, ModelConfig, Norm, Positions, Scheme};

    /// Greedy decoding as it was before the key/value cache: the whole
    /// growing prefix through [`Seq2Seq::decode`] at every step.
    fn decode_greedy_full_prefix(
        net: &dyn Seq2Seq,
        src: &Tensor,
        length: i64,
        classes: &std::ops::Range<i64>,
    ) -> Vec<u8> {
        let memory = net.encode(src, None, false);
        let batch = src.size()[0];
        let mut ys = Tensor::full(
            [batch, 1],
            crate::data::encoder::CLS as i64,
            (Kind::Int64, src.device()),
        );
        for _ in 0..length {
            let logits = net.decode(&memory, &ys, false); // [B, t, V]
            let last = logits
                .select(1, -1)
                .narrow(1, classes.start, classes.end - classes.start); // [B, 128]
            let next = last.argmax(-1, true) + classes.start; // [B, 1]
            ys = Tensor::cat(&[ys, next], 1);
        }
        let predicted = (ys.narrow(1, 1, length) - classes.start)
            .to_kind(Kind::Uint8)
            .flatten(0, -1);
        Vec::<u8>::try_from(predicted).unwrap()
    }

    #[test]
    fn cached_greedy_decoding_chooses_what_full_prefix_decoding_does() {
        let _generator = seeded(11);
        // Ids 2..12 are the "velocities" of a 12-id target vocabulary.
        let classes = 2..12;
        let mut varied = 0;
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            for norm in [Norm::Pre, Norm::Post] {
                for positions in [Positions::Sinusoidal, Positions::Relative] {
                    let cfg = ModelConfig {
                        norm,
                        positions,
                        ..tiny(architecture)
                    };
                    let vs = nn::VarStore::new(Device::Cpu);
                    let net = crate::model::build(&vs.root(), &cfg, 30, 12, Scheme::Separate).unwrap();
                    let src = ids(3, 9, 0, 30);
                    let (cached, full) = tch::no_grad(|| {
                        (
                            decode_greedy(net.as_ref(), &src, 20, &classes),
                            decode_greedy_full_prefix(net.as_ref(), &src, 20, &classes),
                        )
                    });
                    assert_eq!(cached.len(), 3 * 20);
                    assert_eq!(cached, full, "{cfg:?}");
                    varied += usize::from(cached.iter().any(|&v| v != cached[0]));
                }
            }
        }
        // Untrained models may repeat one velocity; most here do not.
        assert!(varied >= 4, "{varied} of 8 models vary their choices");
    }

    #[test]
    fn cuda_graphs_are_on_unless_the_variable_says_0() {
        assert!(cuda_graph_wanted(None));
        assert!(cuda_graph_wanted(Some("1")));
        assert!(!cuda_graph_wanted(Some("0")));
        assert!(!cuda_graph_wanted(Some(" 0 ")));
    }
}
