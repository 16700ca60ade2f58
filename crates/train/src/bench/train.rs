//! Training-step throughput of the write-up model (FACTS.md section 8): 4 + 4
//! layers, d_model 256, d_ff 1024, 4 heads, source vocabulary 6601, target
//! vocabulary 129 (or, with `--scheme shared`, hf-t5's one vocabulary of
//! 6,730 on both sides: see [`Vocabulary`]), windows of 128 notes + `<CLS>`, random tokens, Adam
//! (lr 1e-4, betas 0.9/0.98, eps 1e-9), cross-entropy, dropout 0.1 — the
//! same settings as `benches/pytorch_reference.py`.
//!
//! Each cell builds the model, puts [`POOL_BATCHES`] batches of random
//! windows on the device and runs the training loop's own step
//! ([`crate::step::Stepper`]) on them in turn: `warmup` steps, a
//! device synchronisation, `steps` timed steps, a synchronisation.
//!
//! With `--cuda-graph` the step is captured after [`GRAPH_WARMUP`] warm-up
//! steps (the warm-up grows to cover them and the capture), and a second
//! pair of models checks that graph steps give the eager steps' losses.

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use super::{Options, process_cpu_seconds, synchronize};
use crate::loss::Criterion;
use crate::model::{self, Seq2Seq};
use crate::optimizer::{Kernels, Optimizer};
use crate::step::{DeviceWindows, GRAPH_WARMUP, GraphStatus, Recipe, Stepper};
use crate::torch_panic::catch_panic;
use runner_data::encoder::{NoteToken, Vocab};
use runner_data::quantize::Bins;
use runner_plan::config::{Architecture, Loss, OptimizerConfig, OptimizerKind, Precision, Scheme};
use runner_plan::presets;

/// The write-up's bins (FACTS.md section 2): 5 dstart, 5 duration and 3
/// velocity bins.
const WRITE_UP_BINS: Bins = Bins {
    dstart: 5,
    duration: 5,
    velocity: 3,
};

/// The token ids of the write-up's bins in one token scheme, as the
/// encoder ([`Vocab`]) numbers them: vocabulary sizes, and where the notes
/// and the 128 velocities lie. `<CLS>` is 0 in both schemes; the notes and
/// the velocities each form one run of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vocabulary {
    /// The scheme.
    pub scheme: Scheme,
    /// Source vocabulary size.
    pub source_size: i64,
    /// Target vocabulary size.
    pub target_size: i64,
    /// The first note id.
    pub first_note: i64,
    /// One past the last note id.
    pub end_note: i64,
    /// The id of velocity 0 (velocities are `first_velocity..first_velocity + 128`).
    pub first_velocity: i64,
}

impl Vocabulary {
    /// Separate (midi-translation): source `<CLS>` + 6,600 notes (6,601),
    /// target `<CLS>` + 128 velocities (129). Shared (midi-hf-transformers):
    /// one vocabulary of `<CLS>`, `<PAD>`, the notes and the velocities
    /// (6,730) on both sides.
    pub fn of(scheme: Scheme) -> Vocabulary {
        let vocab = Vocab::new(scheme, WRITE_UP_BINS).expect("the write-up bins form a vocabulary");
        // The lowest and the highest note token: pitch 21 in the first bins,
        // pitch 108 in the last.
        let note = |pitch, last: bool| {
            let bin = |count: usize| if last { (count - 1) as u8 } else { 0 };
            let token = NoteToken {
                pitch,
                dstart_bin: bin(WRITE_UP_BINS.dstart),
                duration_bin: bin(WRITE_UP_BINS.duration),
                velocity_bin: bin(WRITE_UP_BINS.velocity),
            };
            i64::from(vocab.note_id(token).expect("a note of the write-up bins"))
        };
        Vocabulary {
            scheme,
            source_size: i64::from(vocab.source_size()),
            target_size: i64::from(vocab.target_size()),
            first_note: note(21, false),
            end_note: note(108, true) + 1,
            first_velocity: i64::from(vocab.velocity_id(0).expect("velocity 0")),
        }
    }

    /// The velocity ids: the loss's classes.
    pub fn velocities(&self) -> std::ops::Range<i64> {
        self.first_velocity..self.first_velocity + 128
    }
}

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
    /// The token scheme: `separate` or `shared`.
    pub scheme: String,
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
    /// With a CUDA graph: the largest relative difference between the
    /// losses of graph and eager steps from the same start.
    pub graph_check: Option<f64>,
    /// Why a cell was skipped or failed, or what is worth knowing about it.
    pub note: Option<String>,
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

/// `count` random windows on `device` in `vocab`'s ids: random notes as the
/// source, random velocities as the target, each starting with `<CLS>` (0).
pub fn random_windows(count: i64, device: Device, vocab: &Vocabulary) -> DeviceWindows {
    let ids = |first: i64, len: i64| {
        let ids = Tensor::randint_low(first, first + len, [count, NOTES + 1], (Kind::Int64, device));
        let _ = ids.narrow(1, 0, 1).fill_(0);
        ids
    };
    DeviceWindows {
        src: ids(vocab.first_note, vocab.end_note - vocab.first_note),
        tgt: ids(vocab.first_velocity, 128),
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
        scheme: match options.scheme {
            Scheme::Separate => "separate",
            Scheme::Shared => "shared",
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
        graph_check: None,
        note: None,
    };
    if precision == Precision::Bf16 && !options.device.is_cuda() {
        cell.note = Some("bf16 autocast runs on CUDA only; skipped".to_owned());
        return cell;
    }
    let bf16 = precision == Precision::Bf16;
    match catch_panic(|| measure(options, batch, bf16)) {
        Ok(measured) => {
            cell.seq_per_s = Some(batch as f64 * options.steps as f64 / measured.seconds);
            cell.ms_per_step = Some(1e3 * measured.seconds / options.steps as f64);
            cell.cpu_ms_per_step = Some(1e3 * measured.cpu_seconds / options.steps as f64);
            cell.loss = Some(measured.loss);
            cell.warmup = measured.warmup;
            let mut notes = Vec::new();
            match measured.graph {
                GraphStatus::Captured { .. } => {
                    cell.mode = "cuda-graph".to_owned();
                    match catch_panic(|| graph_check(options, batch, bf16)) {
                        Ok(Ok(diff)) => {
                            cell.graph_check = Some(diff);
                            notes.push(format!("graph vs eager loss: max rel diff {diff:.1e}"));
                        }
                        Ok(Err(reason)) | Err(reason) => notes.push(format!("graph check failed: {reason}")),
                    }
                }
                GraphStatus::Failed(reason) => notes.push(format!("CUDA graph not used: {reason}")),
                GraphStatus::Off | GraphStatus::WarmingUp => {}
            }
            cell.note = (!notes.is_empty()).then(|| notes.join("; "));
        }
        Err(reason) => cell.note = Some(format!("failed: {reason}")),
    }
    cell
}

/// What one cell measured.
struct Measured {
    seconds: f64,
    cpu_seconds: f64,
    loss: f64,
    warmup: usize,
    graph: GraphStatus,
}

/// A model, its loss, and a pool of random batches on the device.
struct Harness {
    _vs: nn::VarStore,
    net: Box<dyn Seq2Seq>,
    criterion: Criterion,
    data: DeviceWindows,
    order: Tensor,
    batch: i64,
}

impl Harness {
    /// Everything seeded from 0, so two harnesses start alike; with the
    /// optimizer over the model's variables.
    fn new(options: &Options, batch: i64) -> (Harness, Optimizer) {
        let device = options.device;
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let cfg = presets::write_up(options.architecture);
        let vocab = Vocabulary::of(options.scheme);
        let net = model::build(&vs.root(), &cfg, vocab.source_size, vocab.target_size, vocab.scheme)
            .expect("the write-up model is valid");
        let criterion = Criterion::new(Loss::CrossEntropy, vocab.velocities(), vocab.target_size).expect("128 classes");
        let optimizer = Optimizer::with_kernels(&vs, &adam(), options.kernels).expect("Adam");
        let data = random_windows(POOL_BATCHES * batch, device, &vocab);
        let order = Tensor::randperm(POOL_BATCHES * batch, (Kind::Int64, device));
        let harness = Harness {
            _vs: vs,
            net,
            criterion,
            data,
            order,
            batch,
        };
        (harness, optimizer)
    }

    /// A stepper over the model, with a CUDA graph when asked.
    fn stepper(&self, options: &Options, optimizer: &Optimizer, bf16: bool, graph: bool) -> Stepper<'_> {
        let recipe = Recipe {
            autocast: bf16,
            ..Recipe::default()
        };
        let stepper = Stepper::new(self.net.as_ref(), &self.criterion, recipe, options.device);
        if graph {
            stepper.with_cuda_graph(options.device, optimizer, self.batch)
        } else {
            stepper
        }
    }

    /// Step `i` (from 0), as the training loop takes it: dropout seeded per
    /// step, the batch gathered on the device.
    fn step(&self, stepper: &mut Stepper, optimizer: &mut Optimizer, i: usize) {
        tch::manual_seed(i as i64);
        let index = self.order.narrow(0, (i as i64 % POOL_BATCHES) * self.batch, self.batch);
        stepper.step(optimizer, &self.data, &index, self.batch, LR);
    }
}

fn measure(options: &Options, batch: i64, bf16: bool) -> Measured {
    let device = options.device;
    if bf16 {
        crate::precision::use_bf16_autocast();
    }
    let (harness, mut optimizer) = Harness::new(options, batch);
    let mut stepper = harness.stepper(options, &optimizer, bf16, options.cuda_graph);
    // With a graph: its warm-up steps, then the capture, all before the timed steps.
    let warmup = if options.cuda_graph {
        options.warmup.max(GRAPH_WARMUP + 1)
    } else {
        options.warmup
    };
    for i in 0..warmup {
        harness.step(&mut stepper, &mut optimizer, i);
    }
    synchronize(device);
    let _ = stepper.sums.take_running();
    let (started, cpu_started) = (Instant::now(), process_cpu_seconds());
    for i in 0..options.steps {
        harness.step(&mut stepper, &mut optimizer, warmup + i);
    }
    synchronize(device);
    let seconds = started.elapsed().as_secs_f64();
    Measured {
        seconds,
        cpu_seconds: process_cpu_seconds() - cpu_started,
        loss: stepper.sums.take_running(),
        warmup,
        graph: stepper.graph_status(),
    }
}

/// Steps compared between an eager and a graph stepper.
const CHECK_STEPS: usize = GRAPH_WARMUP + 5;

/// Trains two identical models [`CHECK_STEPS`] steps on the same batches
/// with the same dropout seeds, one eagerly and one through a CUDA graph,
/// and returns the largest relative difference between their losses over
/// the captured and replayed steps.
fn graph_check(options: &Options, batch: i64, bf16: bool) -> Result<f64, String> {
    let losses = |graph: bool| -> Result<Vec<f64>, String> {
        let (harness, mut optimizer) = Harness::new(options, batch);
        let mut stepper = harness.stepper(options, &optimizer, bf16, graph);
        let losses = (0..CHECK_STEPS)
            .map(|i| {
                harness.step(&mut stepper, &mut optimizer, i);
                stepper.sums.take_running()
            })
            .collect();
        match stepper.graph_status() {
            GraphStatus::Failed(reason) if graph => Err(reason),
            _ => Ok(losses),
        }
    };
    let (eager, replayed) = (losses(false)?, losses(true)?);
    Ok(eager
        .iter()
        .zip(&replayed)
        .skip(GRAPH_WARMUP)
        .map(|(e, r)| (e - r).abs() / e.abs().max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_vocabularies_have_the_write_up_sizes_and_ids() {
        // FACTS.md section 3: 1 + 88 * 75 = 6,601 source ids for 5/5/3;
        // velocity v is v + 1 (separate) and 2 + 6,600 + v (shared).
        let separate = Vocabulary::of(Scheme::Separate);
        assert_eq!((separate.source_size, separate.target_size), (6601, 129));
        assert_eq!((separate.first_note, separate.end_note), (1, 6601));
        assert_eq!(separate.velocities().start + 6, 7);
        let shared = Vocabulary::of(Scheme::Shared);
        assert_eq!((shared.source_size, shared.target_size), (6730, 6730));
        assert_eq!((shared.first_note, shared.end_note), (2, 6602));
        assert_eq!(shared.velocities(), 6602..6730);
        assert_eq!(shared.velocities().start + 6, 6608);
    }

    #[test]
    fn random_windows_hold_notes_then_velocities_after_cls() {
        let vocab = Vocabulary::of(Scheme::Shared);
        let windows = random_windows(4, Device::Cpu, &vocab);
        assert_eq!(windows.src.size(), [4, NOTES + 1]);
        let body = |t: &Tensor| t.narrow(1, 1, NOTES);
        assert_eq!(windows.src.select(1, 0).abs().sum(Kind::Int64).int64_value(&[]), 0);
        assert_eq!(windows.tgt.select(1, 0).abs().sum(Kind::Int64).int64_value(&[]), 0);
        assert!(body(&windows.src).min().int64_value(&[]) >= vocab.first_note);
        assert!(body(&windows.src).max().int64_value(&[]) < vocab.first_velocity);
        assert!(body(&windows.tgt).min().int64_value(&[]) >= vocab.first_velocity);
        assert!(body(&windows.tgt).max().int64_value(&[]) < vocab.target_size);
    }
}
