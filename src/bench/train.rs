//! Training-step throughput of the write-up model (FACTS.md section 8): 4 + 4
//! layers, d_model 256, d_ff 1024, 4 heads, source vocabulary 6601, target
//! vocabulary 129, windows of 128 notes + `<CLS>`, random tokens, Adam
//! (lr 1e-4, betas 0.9/0.98, eps 1e-9), cross-entropy, dropout 0.1 — the
//! same settings as `benches/pytorch_reference.py`.
//!
//! Each cell builds the model, puts [`POOL_BATCHES`] batches of random
//! windows on the device and runs the training loop's own step
//! ([`crate::train::step::Stepper`]) on them in turn: `warmup` steps, a
//! device synchronisation, `steps` timed steps, a synchronisation.

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use super::{Options, process_cpu_seconds, synchronize};
use crate::exec::catch_panic;
use crate::model;
use crate::plan::config::{
    Architecture, Loss, ModelConfig, Norm, OptimizerConfig, OptimizerKind, Positions, Precision, Scheme,
};
use crate::train::loss::Criterion;
use crate::train::optimizer::{Kernels, Optimizer};
use crate::train::step::{DeviceWindows, Stepper};

/// Source vocabulary: `<CLS>` and 88 pitches x 5 x 5 x 3 bins.
pub const SOURCE_VOCAB: i64 = 6601;
/// Target vocabulary: `<CLS>` and 128 velocities.
pub const TARGET_VOCAB: i64 = 129;
/// Notes per window (plus a leading `<CLS>`).
pub const NOTES: i64 = 128;
/// Distinct random batches resident on the device, used in turn.
pub const POOL_BATCHES: i64 = 8;
/// The constant learning rate.
const LR: f64 = 1e-4;

/// One measured (batch, precision) cell.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCell {
    /// `vanilla` or `t5`.
    pub arch: String,
    /// Windows per step.
    pub batch: i64,
    /// `fp32` or `bf16`.
    pub precision: String,
    /// How the step ran: `eager` or `cuda-graph`.
    pub mode: String,
    /// The optimizer's kernels: `fused` or `per-tensor`.
    pub optimizer: String,
    /// Timed steps.
    pub steps: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Sequences (windows) per second.
    pub seq_per_s: Option<f64>,
    /// Milliseconds per optimizer step.
    pub ms_per_step: Option<f64>,
    /// CPU milliseconds this process used per step (all threads): the work
    /// done, whatever else the machine runs.
    pub cpu_ms_per_step: Option<f64>,
    /// Mean training loss over the timed steps.
    pub loss: Option<f64>,
    /// Why a cell was skipped or failed, or what is worth knowing about it.
    pub note: Option<String>,
}

/// The write-up's model in `architecture`'s form.
pub fn model_config(architecture: Architecture) -> ModelConfig {
    ModelConfig {
        architecture,
        d_model: 256,
        d_kv: 64,
        d_ff: 1024,
        encoder_layers: 4,
        decoder_layers: 4,
        heads: 4,
        dropout: 0.1,
        norm: Norm::Pre,
        positions: match architecture {
            Architecture::Vanilla => Positions::Sinusoidal,
            Architecture::T5 => Positions::Relative,
        },
        tie_embeddings: architecture == Architecture::T5,
        relative_buckets: None,
        relative_max_distance: None,
    }
}

/// Adam as the PyTorch reference runs it.
pub fn adam() -> OptimizerConfig {
    OptimizerConfig {
        kind: OptimizerKind::Adam,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-9,
        weight_decay: 0.0,
        clip_norm: None,
    }
}

/// `count` random windows on `device`: source ids in `1..6601`, targets in
/// `1..129`, each starting with `<CLS>` (0).
pub fn random_windows(count: i64, device: Device) -> DeviceWindows {
    let ids = |vocab: i64| {
        let ids = Tensor::randint_low(1, vocab, [count, NOTES + 1], (Kind::Int64, device));
        let _ = ids.narrow(1, 0, 1).fill_(0);
        ids
    };
    DeviceWindows {
        src: ids(SOURCE_VOCAB),
        tgt: ids(TARGET_VOCAB),
    }
}

/// Every (precision, batch) cell `options` asks for.
pub fn run(options: &Options) -> Vec<TrainCell> {
    let mut cells = Vec::new();
    for &precision in &options.precisions {
        for &batch in &options.batches {
            cells.push(cell(options, batch, precision));
        }
    }
    cells
}

fn cell(options: &Options, batch: i64, precision: Precision) -> TrainCell {
    let mut cell = TrainCell {
        arch: match options.architecture {
            Architecture::Vanilla => "vanilla",
            Architecture::T5 => "t5",
        }
        .to_owned(),
        batch,
        precision: match precision {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
        .to_owned(),
        mode: "eager".to_owned(),
        optimizer: match options.kernels {
            Kernels::Fused => "fused",
            Kernels::PerTensor => "per-tensor",
        }
        .to_owned(),
        steps: options.steps,
        warmup: options.warmup,
        seq_per_s: None,
        ms_per_step: None,
        cpu_ms_per_step: None,
        loss: None,
        note: None,
    };
    if precision == Precision::Bf16 && !options.device.is_cuda() {
        cell.note = Some("bf16 autocast runs on CUDA only; skipped".to_owned());
        return cell;
    }
    match catch_panic(|| measure(options, batch, precision == Precision::Bf16)) {
        Ok(measured) => {
            cell.seq_per_s = Some(batch as f64 * options.steps as f64 / measured.seconds);
            cell.ms_per_step = Some(1e3 * measured.seconds / options.steps as f64);
            cell.cpu_ms_per_step = Some(1e3 * measured.cpu_seconds / options.steps as f64);
            cell.loss = Some(measured.loss);
        }
        Err(reason) => cell.note = Some(format!("failed: {reason}")),
    }
    cell
}

struct Measured {
    seconds: f64,
    cpu_seconds: f64,
    loss: f64,
}

fn measure(options: &Options, batch: i64, bf16: bool) -> Measured {
    let device = options.device;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let cfg = model_config(options.architecture);
    let net = model::build(&vs.root(), &cfg, SOURCE_VOCAB, TARGET_VOCAB, Scheme::Separate)
        .expect("the write-up model is valid");
    let criterion = Criterion::new(Loss::CrossEntropy, 1..TARGET_VOCAB).expect("128 classes");
    let mut optimizer = Optimizer::with_kernels(&vs, &adam(), options.kernels).expect("Adam");
    if bf16 {
        crate::train::precision::use_bf16_autocast();
    }
    let data = random_windows(POOL_BATCHES * batch, device);
    let order = Tensor::randperm(POOL_BATCHES * batch, (Kind::Int64, device));
    let mut stepper = Stepper::new(net.as_ref(), &criterion, bf16, device);
    let mut step = |i: usize, stepper: &mut Stepper| {
        // As the training loop does: the dropout stream is seeded per step.
        tch::manual_seed(i as i64);
        let index = order.narrow(0, (i as i64 % POOL_BATCHES) * batch, batch);
        stepper.step(&mut optimizer, &data, &index, batch, LR);
    };
    for i in 0..options.warmup {
        step(i, &mut stepper);
    }
    synchronize(device);
    let _ = stepper.sums.take_running();
    let (started, cpu_started) = (Instant::now(), process_cpu_seconds());
    for i in 0..options.steps {
        step(options.warmup + i, &mut stepper);
    }
    synchronize(device);
    let seconds = started.elapsed().as_secs_f64();
    Measured {
        seconds,
        cpu_seconds: process_cpu_seconds() - cpu_started,
        loss: stepper.sums.take_running(),
    }
}
