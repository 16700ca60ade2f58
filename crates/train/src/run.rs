//! One training run: a resolved configuration and its dataset → a trained
//! model, metrics per epoch, a summary and example predictions.
//!
//! In: a [`RunConfig`], a built [`Dataset`], a device and the run's folder.
//! Out: in that folder, `metrics.csv` (one row per evaluated epoch), `lr.csv`
//! (the learning rate applied at each optimizer step), `predictions.json`
//! (true, teacher-forced and greedy velocities of a few fixed validation
//! windows), `data.json` (the dataset's summary: pieces, notes and windows
//! per split, bin edges), `summary.json`, and `checkpoint/` (model, optimizer,
//! position, manifest; with early stopping also the best evaluation's
//! weights, which the test metrics and predictions then come from),
//! replaced whole at every epoch end; while it trains,
//! its TensorBoard curves and `progress.json` ([`crate::live`]). A run started again with a
//! checkpoint present resumes from it and ends exactly where an uninterrupted
//! run ends: data order and dropout are seeded per epoch from the run's seed.
//!
//! The whole token dataset lives on the device; batches are gathered there.
//! The loss is read back from the device only every [`LOG_EVERY`] steps.
//! Each optimizer step is a [`Stepper`] step, which on CUDA can replay a
//! CUDA graph of the whole step (the default on CUDA; `runner exec
//! --cuda-graph off` keeps every step eager).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

use super::evaluate::{Evaluation, Predictor, evaluate};
use super::loss::Criterion;
use super::optimizer::Optimizer;
use super::schedule::{self, Clock};
use super::step::{DeviceWindows, GraphStatus, Recipe, Stepper};
use crate::environment::describe_device;
use crate::live::Live;
use crate::model;
use runner_data::TokenWindows;
use runner_data::dataset::Dataset;
use runner_job::{Evaluated, Progress};
use runner_plan::config::{CudaGraph, Precision, RunConfig, Watch};
use runner_store::checkpoint::{CheckpointError, CheckpointFiles, TrainedWith, store_error_in_text};
use runner_store::metrics;
use runner_store::records::{BestEpoch, EpochRecord, Example, Summary};
use runner_store::{ClaimedRun, StoreError};

/// Optimizer steps between reads of the running loss.
pub const LOG_EVERY: u64 = 25;

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
    /// The checkpoint does not match its manifest (the message names the
    /// file and the remedy).
    #[error("{0}")]
    Unusable(String),
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
    /// `--cuda-graph on`, and the step could not be captured.
    #[error("--cuda-graph on, but the step could not be captured: {reason}")]
    CudaGraph {
        /// Why.
        reason: String,
    },
    /// Stopped on request; the state after `step` is checkpointed.
    #[error("interrupted after step {step} (checkpointed; run again to resume)")]
    Interrupted {
        /// The last optimizer step taken.
        step: u64,
    },
    /// Trained to [`Placement::until_epoch`] and checkpointed there: a
    /// search's rung. `record` is that epoch's evaluation.
    #[error("paused at epoch {} (checkpointed; a later rung resumes it)", record.epoch)]
    Paused {
        /// The evaluation of the epoch it paused at.
        record: Box<EpochRecord>,
    },
}

impl From<StoreError> for TrainError {
    fn from(error: StoreError) -> TrainError {
        TrainError::Io {
            path: error.path,
            source: error.source,
        }
    }
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

/// Where and how a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The libtorch device.
    pub device: Device,
    /// libtorch's CPU threads for a run that starts (a resumed run keeps the
    /// count it started with).
    pub threads: usize,
    /// Whether CUDA steps replay a captured graph.
    pub cuda_graph: CudaGraph,
    /// Train no further than this epoch and pause there, checkpointed (a
    /// search's rung; not part of the run's identity). `None`: to the end.
    pub until_epoch: Option<u64>,
}

/// A seed for `(run seed, salt)`: distinct salts give unrelated streams.
fn mix(seed: i64, salt: i64) -> i64 {
    let mut z = (seed as u64) ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// Trains `config` on `data` into the claimed run folder `run` as
/// `placement` says, resuming from its checkpoint when there is one (with
/// the thread count that checkpoint records, so that the resumed run ends
/// bitwise as the uninterrupted one). On CUDA a step may replay a CUDA
/// graph (it computes what an eager one would: `runner bench train
/// --cuda-graph` checks the losses, within 4e-7 relative in fp32 on an
/// H100, docs/perf.md). `stop` is polled after every optimizer step: when
/// set, the run checkpoints and returns [`TrainError::Interrupted`].
pub fn train(
    config: &RunConfig,
    data: &Dataset,
    placement: &Placement,
    run: &ClaimedRun,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let Placement {
        device,
        cuda_graph,
        until_epoch,
        ..
    } = *placement;
    let device_name = describe_device(device);
    let resume = run.recover_checkpoint().map_err(|e| match e {
        CheckpointError::Store(e) => TrainError::from(e),
        unusable => TrainError::Unusable(unusable.to_string()),
    })?;
    // CPU results depend on the thread count: a resumed run keeps its own.
    let threads = match &resume {
        Some(checkpoint) => {
            let started_with = &checkpoint.manifest.trained;
            if started_with.threads != placement.threads {
                run.log(&format!(
                    "resuming with the {} libtorch threads it started with (this job was given {})",
                    started_with.threads, placement.threads
                ))?;
            }
            let kind = |d: &str| d.split([':', ' ']).next().unwrap_or_default().to_owned();
            if kind(&started_with.device) != kind(&device_name) {
                run.log(&format!(
                    "it started on {}, resumes on {}: its numbers may differ from an uninterrupted run's",
                    started_with.device, device_name
                ))?;
            }
            started_with.threads
        }
        None => placement.threads,
    };
    tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX).max(1));
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
    let criterion = Criterion::new(config.loss, classes.clone(), i64::from(vocab.target_size()))?;
    let predictor = Predictor::new(net.as_ref(), config, classes.clone());
    let mut optimizer = Optimizer::new(&vs, &config.optimizer)?;

    let train_split = DeviceWindows::new(&data.train, device);
    let val_split = DeviceWindows::new(&data.validation, device);
    if train_split.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let total_steps = config.steps(data.train.len());

    let mut position = Position::default();
    if let Some(checkpoint) = &resume {
        let files = &checkpoint.files;
        let unusable = |reason: String| TrainError::Checkpoint {
            dir: files.dir.clone(),
            reason,
        };
        position = read_position(&files.position).map_err(unusable)?;
        vs.load(&files.model).map_err(|e| unusable(e.to_string()))?;
        optimizer.load(&files.optimizer).map_err(|e| unusable(e.to_string()))?;
    }
    let save = |position: &Position, vs: &nn::VarStore, optimizer: &Optimizer, new_best: bool| {
        let trained = TrainedWith {
            step: position.step,
            threads,
            device: device_name.clone(),
        };
        save_checkpoint(run, trained, vs, optimizer, position, new_best)
    };
    progress.start(total_steps, position.step);
    let mut live = Live::open(
        run,
        resume.is_some(),
        (position.step, total_steps),
        (position.epoch, config.train.epochs),
    )?;

    let use_autocast = config.train.precision == Precision::Bf16 && device.is_cuda();
    if use_autocast {
        super::precision::use_bf16_autocast();
    }
    let batch = config.train.batch_size as i64;
    let accumulate = config.train.accumulate as i64;
    let windows = train_split.len();
    let batches_per_epoch = (windows + batch - 1) / batch;
    let seed = config.seed as i64;
    let recipe = Recipe {
        autocast: use_autocast,
        gradient: config.train.gradient,
        decoder_input: config.train.decoder_input,
    };
    let mut stepper = Stepper::new(net.as_ref(), &criterion, recipe, device);
    let capture = match cuda_graph {
        CudaGraph::Auto => device.is_cuda(),
        CudaGraph::On => true,
        CudaGraph::Off => false,
    };
    if capture {
        stepper = stepper.with_cuda_graph(device, &optimizer, batch * accumulate);
    }
    // `--cuda-graph on`: a step that could not be captured ends the run. In
    // the other modes nothing is looked at (this runs every step).
    let graph_failed = |stepper: &Stepper| match cuda_graph {
        CudaGraph::On => match stepper.graph_status() {
            GraphStatus::Failed(reason) => Some(TrainError::CudaGraph { reason }),
            _ => None,
        },
        CudaGraph::Auto | CudaGraph::Off => None,
    };
    if let Some(error) = graph_failed(&stepper) {
        return Err(error);
    }

    // Early stopping is decided from the evaluations alone: a resumed run
    // that had stopped stays stopped.
    let watch = |epochs: &[EpochRecord]| {
        config
            .train
            .early_stop
            .map(|rule| (rule, rule.watch(epochs.iter().map(|e| e.value(rule.metric)))))
    };
    let stopped = |epochs: &[EpochRecord]| watch(epochs).is_some_and(|(rule, at)| rule.stops(at));
    let unfinished = |position: &Position| {
        position.epoch < config.train.epochs && position.step < total_steps && !stopped(&position.epochs)
    };
    let before_pause = |position: &Position| until_epoch.is_none_or(|until| position.epoch < until);
    while unfinished(&position) && before_pause(&position) {
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
            let group = config.train.group(b as u64, batches_per_epoch as u64) as i64;
            let first = b * batch;
            let index = order.narrow(0, first, (group * batch).min(windows - first));
            b += group;
            position.step += 1;
            let clock = Clock {
                step: position.step,
                batch: (epoch - 1) * batches_per_epoch as u64 + b as u64 - 1,
            };
            let lr = schedule::lr(&config.schedule, config.model.d_model, clock, total_steps);
            stepper.step(&mut optimizer, &train_split, &index, batch, lr);
            if let Some(error) = graph_failed(&stepper) {
                live.failed();
                return Err(error);
            }
            position.lr_log.push(lr);
            let loss = (position.step % LOG_EVERY == 0).then(|| stepper.sums.take_running());
            if let Some(value) = loss
                && !value.is_finite()
            {
                live.failed();
                return Err(TrainError::Diverged {
                    step: position.step,
                    value,
                });
            }
            progress.step(position.step, lr, loss);
            live.step(position.step, lr, loss)?;
            if stop.load(Ordering::Relaxed) && b < batches_per_epoch && position.step < total_steps {
                position.next_batch = b;
                (position.partial_loss, position.partial_count) = stepper.sums.epoch();
                save(&position, &vs, &optimizer, false)?;
                run.write_learning_rates(&position.lr_log)?;
                live.checkpointed(position.epoch)?;
                return Err(TrainError::Interrupted { step: position.step });
            }
        }
        let (epoch_sum, epoch_count) = stepper.sums.epoch();
        let train_loss = epoch_sum / epoch_count.max(1) as f64;
        if !train_loss.is_finite() {
            live.failed();
            return Err(TrainError::Diverged {
                step: position.step,
                value: train_loss,
            });
        }
        position.epoch = epoch;
        let mut new_best = false;
        position.next_batch = 0;
        position.partial_loss = 0.0;
        position.partial_count = 0;
        if epoch % config.train.eval_every == 0 || epoch == config.train.epochs || position.step >= total_steps {
            progress.evaluating(epoch, Evaluated::Validation);
            live.evaluating(epoch)?;
            let evaluation = evaluate(&predictor, &criterion, config.loss, &val_split, config.evaluate.greedy);
            let record = EpochRecord {
                epoch,
                step: position.step,
                train_loss,
                val_loss: evaluation.loss,
                val_ls_kl: evaluation.ls_kl,
                val_ce_with_cls: evaluation.ce_with_cls,
                val: evaluation.teacher_forced,
                greedy: evaluation.greedy,
                seconds: started.elapsed().as_secs_f64(),
            };
            progress.epoch(&record);
            live.evaluated(&record)?;
            position.epochs.push(record);
            run.write_metrics(&position.epochs)?;
            if let Some((rule, at)) = watch(&position.epochs) {
                new_best = at.best == Some(position.epochs.len() - 1);
                if rule.stops(at) {
                    let best_epoch = at.best.map_or(0, |i| position.epochs[i].epoch);
                    run.log(&format!(
                        "early stop after epoch {epoch}: {} has not improved on epoch {best_epoch}'s by more \
                         than {} for {} evaluations",
                        rule.metric.name(),
                        rule.min_delta,
                        rule.patience
                    ))?;
                }
            }
        }
        save(&position, &vs, &optimizer, new_best)?;
        run.write_learning_rates(&position.lr_log)?;
        live.checkpointed(epoch)?;
        if stop.load(Ordering::Relaxed) && position.epoch < config.train.epochs && position.step < total_steps {
            return Err(TrainError::Interrupted { step: position.step });
        }
    }

    if unfinished(&position) {
        // Paused at a rung (possibly reached before: a rung asked again).
        let until = until_epoch.unwrap_or(position.epoch);
        let record = position
            .epochs
            .iter()
            .find(|e| e.epoch == until)
            .cloned()
            .ok_or_else(|| {
                TrainError::Unusable(format!("epoch {until} was not evaluated, so a search cannot rank it"))
            })?;
        run.log(&format!("paused at epoch {until}, as the search's rung asks"))?;
        live.checkpointed(position.epoch)?;
        return Err(TrainError::Paused {
            record: Box::new(record),
        });
    }
    // With early stopping, the best evaluation's weights are the result.
    let best = match watch(&position.epochs) {
        Some((rule, Watch { best: Some(i), .. })) => {
            let record = &position.epochs[i];
            let weights = run.checkpoint().best_model;
            vs.load(&weights).map_err(|e| TrainError::Checkpoint {
                dir: run.checkpoint().dir,
                reason: format!("best-model.safetensors: {e}"),
            })?;
            Some(BestEpoch {
                epoch: record.epoch,
                metric: rule.metric,
                value: record.value(rule.metric).unwrap_or(f64::NAN),
                stopped_early: position.epoch < config.train.epochs && position.step < total_steps,
            })
        }
        _ => None,
    };
    let validation_truth = truth(&data.validation, first_velocity);
    let train_mean = metrics::mean(&truth(&data.train, first_velocity));
    let velocity_edges = data.quantizer.velocity.as_slice();
    if config.evaluate.test {
        progress.evaluating(position.epoch, Evaluated::Test);
        live.evaluating(position.epoch)?;
    }
    let test = config.evaluate.test.then(|| {
        let test_split = DeviceWindows::new(&data.test, device);
        let Evaluation {
            teacher_forced, greedy, ..
        } = evaluate(&predictor, &criterion, config.loss, &test_split, config.evaluate.greedy);
        (teacher_forced, greedy)
    });
    write_examples(run, &predictor, &val_split, config.evaluate.examples as i64)?;
    let summary = Summary {
        epochs: position.epochs.clone(),
        test,
        baseline_mean: metrics::mean_baseline(train_mean, &validation_truth),
        baseline_bin_centre: metrics::bin_centre_baseline(velocity_edges, &validation_truth),
        parameters: vs.trainable_variables().iter().map(|t| t.numel() as i64).sum(),
        steps: position.step,
        device: device_name.clone(),
        threads,
        precision: if use_autocast {
            "bf16 autocast".to_owned()
        } else {
            "fp32".to_owned()
        },
        step: stepper.graph_status().to_string(),
        cuda_graph,
        seconds: started.elapsed().as_secs_f64(),
        best,
    };
    live.finished(&summary)?;
    run.write_data(&data.summary)?;
    run.write_summary(&summary)?;
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

fn write_examples(
    run: &ClaimedRun,
    predictor: &Predictor,
    split: &DeviceWindows,
    count: i64,
) -> Result<(), TrainError> {
    let count = count.min(split.len());
    let examples: Vec<Example> = tch::no_grad(|| {
        (0..count)
            .map(|i| {
                let src = split.src.narrow(0, i, 1);
                let tgt = split.tgt.narrow(0, i, 1);
                let out = predictor.teacher_forced(&src, &tgt);
                let length = tgt.size()[1] - 1;
                Example {
                    window: i as usize,
                    truth: predictor.velocities(&out.velocity_targets),
                    teacher_forced: predictor.pick(&out.velocity_logits),
                    greedy: predictor.greedy(&src, length),
                }
            })
            .collect()
    });
    Ok(run.write_predictions(&examples)?)
}

/// Saves model, optimizer and position as one checkpoint (see
/// [`runner_store::checkpoint`]), with the best evaluation's weights: these
/// when `new_best` (early stopping found a new best), else the previous
/// checkpoint's, when it has some (never without early stopping). RNG
/// state needs no file, since every epoch and step reseeds from the run's
/// seed.
fn save_checkpoint(
    run: &ClaimedRun,
    trained: TrainedWith,
    vs: &nn::VarStore,
    optimizer: &Optimizer,
    position: &Position,
    new_best: bool,
) -> Result<(), TrainError> {
    // libtorch and safetensors report a full disk as text only.
    fn saved(path: &Path, error: impl Into<TrainError>) -> TrainError {
        let error = error.into();
        match store_error_in_text(path, &error.to_string()) {
            Some(store) => TrainError::from(store),
            None => error,
        }
    }
    run.write_checkpoint(trained, |files: &CheckpointFiles| {
        vs.save(&files.model).map_err(|e| saved(&files.model, e))?;
        optimizer
            .save(&files.optimizer)
            .map_err(|e| saved(&files.optimizer, e))?;
        let previous = run.checkpoint().best_model;
        if new_best {
            link_or_copy(&files.model, &files.best_model)?;
        } else if previous.is_file() {
            link_or_copy(&previous, &files.best_model)?;
        }
        let text = serde_json::to_string_pretty(position).expect("a position serialises");
        std::fs::write(&files.position, text).map_err(|source| TrainError::Io {
            path: files.position.clone(),
            source,
        })
    })
}

/// `to` as a hard link to `from` (the same bytes, no copy), or a copy where
/// the file system has no links.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .map_err(|source| TrainError::Io {
            path: to.to_owned(),
            source,
        })
}

/// The position saved in a checkpoint, or why it cannot be read.
fn read_position(path: &Path) -> Result<Position, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("position.json: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("position.json is corrupt: {e}"))
}
