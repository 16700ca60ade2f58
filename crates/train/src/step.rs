//! The training step: what [`super::run`] repeats and `runner bench train`
//! times, in one place so that the benchmark measures the real loop.
//!
//! In: a model, its loss, an optimizer, a split resident on the device
//! ([`DeviceWindows`]) and the indices of the windows one optimizer step
//! uses. Out: updated weights, and the loss summed into device-side
//! accumulators ([`LossSums`]) that the caller reads when it chooses (every
//! [`super::run::LOG_EVERY`] steps in training): a step itself never waits
//! for the device. On CUDA a [`Stepper`] can capture the whole step in a
//! CUDA graph and replay it.

use tch::{Device, Kind, Tensor};

use super::cuda_graph::{self, CudaGraph};
use super::loss::Criterion;
use super::optimizer::Optimizer;
use super::precision;
use crate::model::Seq2Seq;
use runner_data::TokenWindows;
use runner_plan::config::{DecoderInput, Gradient};

/// A split's windows as device tensors `[N, L+1]` (i64): batches are
/// gathered there, with no host-to-device copy per step.
pub struct DeviceWindows {
    /// Source ids.
    pub src: Tensor,
    /// Target ids (`<CLS>` first).
    pub tgt: Tensor,
}

impl DeviceWindows {
    /// Uploads `windows` to `device`.
    pub fn new(windows: &TokenWindows, device: Device) -> DeviceWindows {
        let to_tensor = |ids: &[u32]| {
            let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
            Tensor::from_slice(&ids)
                .view([windows.len() as i64, windows.width() as i64])
                .to_device(device)
        };
        DeviceWindows {
            src: to_tensor(windows.source()),
            tgt: to_tensor(windows.target()),
        }
    }

    /// Number of windows.
    pub fn len(&self) -> i64 {
        self.src.size()[0]
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The decoder's input and its targets for target windows `tgt` `[B, L+1]`
/// (`<CLS>` first), by the convention `input` names: `[B, L]` each for
/// [`DecoderInput::Cls`], `[B, L+1]` each for [`DecoderInput::ShiftRight`]
/// (start id 0 prepended to the input; the targets are the whole window).
pub fn decoder_io(tgt: &Tensor, input: DecoderInput) -> (Tensor, Tensor) {
    let length = tgt.size()[1] - 1;
    match input {
        DecoderInput::Cls => (tgt.narrow(1, 0, length), tgt.narrow(1, 1, length)),
        DecoderInput::ShiftRight => {
            let start = tgt.narrow(1, 0, 1).zeros_like();
            (Tensor::cat(&[start, tgt.narrow(1, 0, length)], 1), tgt.shallow_clone())
        }
    }
}

/// How a step turns windows into gradients: a run's `train` settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recipe {
    /// bf16 autocast around the forward pass and loss.
    pub autocast: bool,
    /// How the forward passes' gradients combine.
    pub gradient: Gradient,
    /// What the decoder reads and predicts.
    pub decoder_input: DecoderInput,
}

/// Running sums of the training objective on the device, updated in place.
pub struct LossSums {
    /// Objective summed over the epoch so far (f64).
    pub epoch_sum: Tensor,
    /// Counted positions in the epoch so far (i64).
    pub epoch_count: Tensor,
    /// Objective summed since the last read of the running loss (f64).
    pub running_sum: Tensor,
    /// Counted positions since then (i64).
    pub running_count: Tensor,
}

impl LossSums {
    /// Zeroed sums on `device`.
    pub fn new(device: Device) -> LossSums {
        let zero = |kind| Tensor::zeros([], (kind, device));
        LossSums {
            epoch_sum: zero(Kind::Double),
            epoch_count: zero(Kind::Int64),
            running_sum: zero(Kind::Double),
            running_count: zero(Kind::Int64),
        }
    }

    /// Starts an epoch from a saved partial sum and count.
    pub fn start_epoch(&mut self, sum: f64, count: i64) {
        let _ = self.epoch_sum.fill_(sum);
        let _ = self.epoch_count.fill_(count);
    }

    /// The running mean since the last call, then restarts it (reads the
    /// device: a synchronisation).
    pub fn take_running(&mut self) -> f64 {
        let value = (&self.running_sum / self.running_count.clamp_min(1)).double_value(&[]);
        let _ = self.running_sum.zero_();
        let _ = self.running_count.zero_();
        value
    }

    /// The epoch's sum and count so far (reads the device).
    pub fn epoch(&self) -> (f64, i64) {
        (self.epoch_sum.double_value(&[]), self.epoch_count.int64_value(&[]))
    }

    fn add(&mut self, sum: &Tensor, count: &Tensor) {
        let sum = sum.detach().to_kind(Kind::Double);
        let _ = self.epoch_sum.g_add_(&sum);
        let _ = self.epoch_count.g_add_(count);
        let _ = self.running_sum.g_add_(&sum);
        let _ = self.running_count.g_add_(count);
    }
}

/// Same-shape steps run eagerly on the graph's side stream before the
/// capture, so that libraries set up their state outside it.
pub const GRAPH_WARMUP: usize = 3;

/// Where CUDA-graph capture stands.
enum Graph {
    /// Eager steps only.
    Off,
    /// Warming up for steps of `shape` windows.
    Warming { graph: CudaGraph, shape: i64, left: usize },
    /// Captured: a step of `shape` windows is copied into `index` and replayed.
    Ready {
        graph: CudaGraph,
        index: Tensor,
        shape: i64,
    },
    /// Capture or replay failed; eager from then on.
    Failed(String),
}

/// How a [`Stepper`] runs its steps, for reports.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphStatus {
    /// Eagerly, as asked.
    Off,
    /// Eagerly so far: warm-up before the capture.
    WarmingUp,
    /// Steps of the captured shape replay a CUDA graph (others run eagerly).
    Captured {
        /// Windows per captured step.
        windows: i64,
    },
    /// Eagerly, because capture or replay failed.
    Failed(String),
}

impl std::fmt::Display for GraphStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphStatus::Off => f.write_str("eager"),
            GraphStatus::WarmingUp => f.write_str("eager (CUDA graph warming up)"),
            GraphStatus::Captured { windows } => write!(f, "CUDA graph (steps of {windows} windows)"),
            GraphStatus::Failed(reason) => write!(f, "eager (CUDA graph failed: {reason})"),
        }
    }
}

/// The eager work of one step, which a graph captures.
struct Body<'a> {
    net: &'a dyn Seq2Seq,
    criterion: &'a Criterion,
    recipe: Recipe,
}

impl Body<'_> {
    /// Gradients over `index` in forward passes of `batch` (their mean or
    /// sum, as the recipe says), the loss summed into `sums`, then the
    /// prepared optimizer update.
    fn run(&self, sums: &mut LossSums, optimizer: &mut Optimizer, data: &DeviceWindows, index: &Tensor, batch: i64) {
        optimizer.zero_grad();
        let n = index.size()[0];
        let group = (n + batch - 1) / batch;
        let divisor = match self.recipe.gradient {
            Gradient::Mean => group as f64,
            Gradient::Sum => 1.0,
        };
        for g in 0..group {
            let index = index.narrow(0, g * batch, batch.min(n - g * batch));
            let src = data.src.index_select(0, &index);
            let tgt = data.tgt.index_select(0, &index);
            let (tgt_in, tgt_out) = decoder_io(&tgt, self.recipe.decoder_input);
            let terms = precision::autocast(self.recipe.autocast, || {
                let logits = self.net.forward(&src, &tgt_in, true);
                self.criterion.compute(&logits.to_kind(Kind::Float), &tgt_out)
            });
            (terms.mean() / divisor).backward();
            sums.add(&terms.sum, &terms.count);
        }
        optimizer.apply();
    }
}

/// Runs training steps of one model, eagerly or, when asked and possible,
/// by replaying a CUDA graph of the whole step (forward, loss, backward,
/// clipping, optimizer update).
///
/// With a graph, the first steps of the common shape warm up
/// ([`GRAPH_WARMUP`]), the next is captured and replayed, and every later
/// step of that shape copies its window indices into the graph's input and
/// replays it: one launch instead of thousands. Steps of another shape (the
/// last, shorter batch of an epoch) run eagerly. The learning rate and step
/// count reach the graph through device tensors ([`Optimizer::prepare`]),
/// dropout through the generator state libtorch gives each replay, so a
/// replayed step computes what an eager one would. If capture or a replay
/// fails, the reason is kept ([`Stepper::graph_status`]) and every step
/// from then on is eager.
pub struct Stepper<'a> {
    body: Body<'a>,
    graph: Graph,
    /// The loss accumulated by every step.
    pub sums: LossSums,
}

impl<'a> Stepper<'a> {
    /// Eager steps of `net` under `criterion`, made as `recipe` says.
    pub fn new(net: &'a dyn Seq2Seq, criterion: &'a Criterion, recipe: Recipe, device: Device) -> Stepper<'a> {
        Stepper {
            body: Body { net, criterion, recipe },
            graph: Graph::Off,
            sums: LossSums::new(device),
        }
    }

    /// Asks for CUDA-graph steps of `windows` windows (batch size times
    /// accumulation: the common step) on `device`; when they cannot be had
    /// (the CPU, a build without the CUDA headers, an optimizer whose update
    /// reads host values) the steps stay eager and [`Stepper::graph_status`]
    /// says why.
    pub fn with_cuda_graph(mut self, device: Device, optimizer: &Optimizer, windows: i64) -> Stepper<'a> {
        self.graph = if !device.is_cuda() {
            Graph::Failed(format!(
                "CUDA graphs need a CUDA device, not {}",
                crate::environment::device_name(device)
            ))
        } else if !cuda_graph::available() {
            Graph::Failed("this build has no CUDA graph support (no CUDA headers at build time)".to_owned())
        } else if !optimizer.capturable() {
            Graph::Failed("the optimizer's update is not capturable (per-tensor kernels, or not on CUDA)".to_owned())
        } else {
            match CudaGraph::new(device) {
                Ok(graph) => Graph::Warming {
                    graph,
                    shape: windows,
                    left: GRAPH_WARMUP,
                },
                Err(reason) => Graph::Failed(reason),
            }
        };
        self
    }

    /// How steps run now.
    pub fn graph_status(&self) -> GraphStatus {
        match &self.graph {
            Graph::Off => GraphStatus::Off,
            Graph::Warming { .. } => GraphStatus::WarmingUp,
            Graph::Ready { shape, .. } => GraphStatus::Captured { windows: *shape },
            Graph::Failed(reason) => GraphStatus::Failed(reason.clone()),
        }
    }

    /// One optimizer step at learning rate `lr` over the windows `index`
    /// (`[n]`, i64, on the device) of `data`, in forward passes of `batch`
    /// windows whose gradients combine as the recipe says.
    pub fn step(&mut self, optimizer: &mut Optimizer, data: &DeviceWindows, index: &Tensor, batch: i64, lr: f64) {
        optimizer.prepare(lr);
        let n = index.size()[0];
        let Stepper { body, graph, sums } = self;
        let failure = match graph {
            Graph::Warming {
                graph: cuda,
                shape,
                left,
            } if *shape == n => {
                if *left > 0 {
                    *left -= 1;
                    // A failure here is fatal to the step, as it would be eagerly.
                    cuda.on_side_stream(|| body.run(sums, optimizer, data, index, batch))
                        .unwrap_or_else(|reason| panic!("{reason}"));
                    return;
                }
                let static_index = index.copy();
                let captured = cuda
                    .capture(|| body.run(sums, optimizer, data, &static_index, batch))
                    .and_then(|()| cuda.replay());
                match captured {
                    Ok(()) => {
                        let Graph::Warming { graph: cuda, .. } = std::mem::replace(graph, Graph::Off) else {
                            unreachable!("matched above")
                        };
                        *graph = Graph::Ready {
                            graph: cuda,
                            index: static_index,
                            shape: n,
                        };
                        return;
                    }
                    Err(reason) => Some(format!("capture: {reason}")),
                }
            }
            Graph::Ready {
                graph: cuda,
                index: static_index,
                shape,
            } if *shape == n => {
                static_index.copy_(index);
                match cuda.replay() {
                    Ok(()) => return,
                    Err(reason) => Some(format!("replay: {reason}")),
                }
            }
            _ => None,
        };
        if let Some(reason) = failure {
            *graph = Graph::Failed(reason);
        }
        body.run(sums, optimizer, data, index, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::train::adam;
    use crate::model::{self, tests::tiny};
    use crate::optimizer::Kernels;
    use runner_plan::config::{Architecture, Loss, OptimizerConfig, Scheme, SmoothingTarget};
    use tch::nn;

    /// Deterministic values of `shape` without the global generator, which
    /// tests running beside this one reseed and draw from.
    fn fixed(shape: &[i64], salt: f64, device: Device) -> Tensor {
        let n: i64 = shape.iter().product();
        ((Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.731 + salt).sin() * 0.3)
            .to_kind(Kind::Float)
            .view(shape)
            .to_device(device)
    }

    /// The losses of `steps` training steps on one fixed batch, the update
    /// computed with `kernels`, with or without a CUDA graph. No dropout and
    /// weights and ids set from formulas: the same run twice gives the same
    /// numbers whatever other tests do with the random generator.
    fn losses(architecture: Architecture, kernels: Kernels, steps: i64, device: Device, graph: bool) -> Vec<f64> {
        let vs = nn::VarStore::new(device);
        let cfg = runner_plan::config::ModelConfig {
            dropout: 0.0,
            ..tiny(architecture)
        };
        let net = model::build(&vs.root(), &cfg, 30, 12, Scheme::Separate).unwrap();
        let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (_, var)) in names.iter_mut().enumerate() {
            tch::no_grad(|| var.copy_(&fixed(&var.size(), i as f64, device)));
        }
        let criterion = Criterion::new(
            Loss::LabelSmoothing {
                epsilon: 0.1,
                target: SmoothingTarget::ExcludeSpecials,
            },
            2..12,
            12,
        )
        .unwrap();
        let config = OptimizerConfig {
            clip_norm: Some(1.0),
            ..adam()
        };
        let mut optimizer = Optimizer::with_kernels(&vs, &config, kernels).unwrap();
        let ids = |modulus: i64, low: i64| {
            ((Tensor::arange(80, (Kind::Int64, device)) * 7).remainder(modulus) + low).view([8, 10])
        };
        let (src, tgt) = (ids(29, 1), ids(10, 2));
        let _ = tgt.narrow(1, 0, 1).fill_(0);
        let data = DeviceWindows { src, tgt };
        let index = Tensor::arange(8, (Kind::Int64, device));
        let mut stepper = Stepper::new(net.as_ref(), &criterion, Recipe::default(), device);
        if graph {
            stepper = stepper.with_cuda_graph(device, &optimizer, 8);
        }
        let losses = (0..steps)
            .map(|_| {
                // Two forward passes of 4 windows per step, as with accumulation.
                stepper.step(&mut optimizer, &data, &index, 4, 1e-3);
                stepper.sums.take_running()
            })
            .collect();
        if graph {
            assert_eq!(stepper.graph_status(), GraphStatus::Captured { windows: 8 });
        }
        losses
    }

    /// The fast step (multi-tensor optimizer kernels) gives the same losses
    /// as the plain one (per-tensor kernels), step after step, in fp32.
    #[test]
    fn the_fast_step_gives_the_plain_steps_losses() {
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            let plain = losses(architecture, Kernels::PerTensor, 6, Device::Cpu, false);
            let fast = losses(architecture, Kernels::Fused, 6, Device::Cpu, false);
            for (step, (p, f)) in plain.iter().zip(&fast).enumerate() {
                assert!(
                    (p - f).abs() <= 1e-5 * p.abs(),
                    "{architecture:?} step {step}: {p} vs {f}"
                );
            }
            // Training moves the loss: the comparison is not of constants.
            assert!(plain[5] < plain[0], "{plain:?}");
        }
    }

    /// Steps replayed from a CUDA graph give the eager steps' losses.
    /// Dropout under a graph is checked by `runner bench train --cuda-graph`,
    /// in a process of its own. `scripts/gpu-check.sh` runs it.
    #[test]
    #[ignore = "needs CUDA"]
    fn graph_steps_give_eager_losses_on_cuda() {
        assert!(tch::Cuda::is_available(), "this test needs a CUDA device");
        let device = Device::Cuda(0);
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            let eager = losses(architecture, Kernels::Fused, 8, device, false);
            let replayed = losses(architecture, Kernels::Fused, 8, device, true);
            for (step, (e, r)) in eager.iter().zip(&replayed).enumerate() {
                assert!(
                    (e - r).abs() <= 1e-4 * e.abs(),
                    "{architecture:?} step {step}: {e} vs {r}"
                );
            }
        }
    }

    #[test]
    fn graphs_stay_off_on_the_cpu_and_say_why() {
        let criterion = Criterion::new(Loss::CrossEntropy, 2..12, 12).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = model::build(&vs.root(), &tiny(Architecture::Vanilla), 30, 12, Scheme::Separate).unwrap();
        let optimizer = Optimizer::new(&vs, &adam()).unwrap();
        let stepper = Stepper::new(net.as_ref(), &criterion, Recipe::default(), Device::Cpu).with_cuda_graph(
            Device::Cpu,
            &optimizer,
            8,
        );
        match stepper.graph_status() {
            GraphStatus::Failed(reason) => assert!(reason.contains("CUDA device"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Stepper::new(net.as_ref(), &criterion, Recipe::default(), Device::Cpu).graph_status(),
            GraphStatus::Off
        );
    }
}
