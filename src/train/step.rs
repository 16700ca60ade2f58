//! The training step: what [`super::run`] repeats and `runner bench train`
//! times, in one place so that the benchmark measures the real loop.
//!
//! In: a model, its loss, an optimizer, a split resident on the device
//! ([`DeviceWindows`]) and the indices of the windows one optimizer step
//! uses. Out: updated weights, and the loss summed into device-side
//! accumulators ([`LossSums`]) that the caller reads when it chooses (every
//! [`super::run::LOG_EVERY`] steps in training): a step itself never waits
//! for the device.

use tch::{Device, Kind, Tensor};

use super::loss::Criterion;
use super::optimizer::Optimizer;
use crate::data::TokenWindows;
use crate::model::Seq2Seq;

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

/// Runs training steps of one model.
pub struct Stepper<'a> {
    net: &'a dyn Seq2Seq,
    criterion: &'a Criterion,
    autocast: bool,
    /// The loss accumulated by every step.
    pub sums: LossSums,
}

impl<'a> Stepper<'a> {
    /// Steps of `net` under `criterion`, in bf16 autocast when `autocast`.
    pub fn new(net: &'a dyn Seq2Seq, criterion: &'a Criterion, autocast: bool, device: Device) -> Stepper<'a> {
        Stepper {
            net,
            criterion,
            autocast,
            sums: LossSums::new(device),
        }
    }

    /// One optimizer step at learning rate `lr` over the windows `index`
    /// (`[n]`, i64, on the device) of `data`, in forward passes of `batch`
    /// windows whose gradients are averaged.
    pub fn step(&mut self, optimizer: &mut Optimizer, data: &DeviceWindows, index: &Tensor, batch: i64, lr: f64) {
        optimizer.zero_grad();
        let n = index.size()[0];
        let group = (n + batch - 1) / batch;
        for g in 0..group {
            let index = index.narrow(0, g * batch, batch.min(n - g * batch));
            let src = data.src.index_select(0, &index);
            let tgt = data.tgt.index_select(0, &index);
            let length = tgt.size()[1] - 1;
            let (tgt_in, tgt_out) = (tgt.narrow(1, 0, length), tgt.narrow(1, 1, length));
            let terms = tch::autocast(self.autocast, || {
                let logits = self.net.forward(&src, &tgt_in, true);
                self.criterion.compute(&logits.to_kind(Kind::Float), &tgt_out)
            });
            (terms.mean() / group as f64).backward();
            self.sums.add(&terms.sum, &terms.count);
        }
        optimizer.step(lr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, tests::tiny};
    use crate::plan::config::{Architecture, Loss, OptimizerConfig, OptimizerKind, Scheme};
    use crate::train::optimizer::Kernels;
    use tch::nn;

    /// The losses of `steps` training steps on one fixed batch, the update
    /// computed with `kernels`.
    fn losses(architecture: Architecture, kernels: Kernels, steps: i64) -> Vec<f64> {
        let device = Device::Cpu;
        tch::manual_seed(11);
        let vs = nn::VarStore::new(device);
        let cfg = tiny(architecture);
        let net = model::build(&vs.root(), &cfg, 30, 12, Scheme::Separate).unwrap();
        let criterion = Criterion::new(Loss::LabelSmoothing { epsilon: 0.1 }, 2..12).unwrap();
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-9,
            weight_decay: 0.0,
            clip_norm: Some(1.0),
        };
        let mut optimizer = Optimizer::with_kernels(&vs, &config, kernels).unwrap();
        let src = Tensor::randint_low(1, 30, [8, 10], (Kind::Int64, device));
        let tgt = Tensor::randint_low(2, 12, [8, 10], (Kind::Int64, device));
        let _ = tgt.narrow(1, 0, 1).fill_(0);
        let data = DeviceWindows { src, tgt };
        let index = Tensor::arange(8, (Kind::Int64, device));
        let mut stepper = Stepper::new(net.as_ref(), &criterion, false, device);
        (0..steps)
            .map(|step| {
                tch::manual_seed(100 + step);
                // Two forward passes of 4 windows per step, as with accumulation.
                stepper.step(&mut optimizer, &data, &index, 4, 1e-3);
                stepper.sums.take_running()
            })
            .collect()
    }

    /// The fast step (multi-tensor optimizer kernels) gives the same losses
    /// as the plain one (per-tensor kernels), step after step, in fp32.
    #[test]
    fn the_fast_step_gives_the_plain_steps_losses() {
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            let plain = losses(architecture, Kernels::PerTensor, 6);
            let fast = losses(architecture, Kernels::Fused, 6);
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
}
