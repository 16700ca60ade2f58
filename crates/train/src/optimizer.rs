//! Adam and AdamW written out over tensors, with state that a checkpoint can
//! hold, and gradient-norm clipping.
//!
//! In: an optimizer config, a variable store, and at each step the learning
//! rate. Out: updated variables. The moments live beside the variables (on
//! the same device) and are saved and restored by name, so a resumed run
//! continues exactly. The update follows `torch.optim.Adam` / `AdamW`
//! (bias-corrected moments, `eps` added to the corrected root); nothing is
//! read back to the host.
//!
//! Two ways to compute it ([`Kernels`]): [`Kernels::Fused`], the default,
//! touches every variable in a few multi-tensor kernels ([`super::fused`]):
//! `torch.optim.Adam(foreach=True)`'s sequence on the CPU, libtorch's fused
//! Adam on CUDA with the learning rate and step count in device tensors (so
//! a CUDA graph can capture the update and replay it at any rate).
//! [`Kernels::PerTensor`] is the original loop of small operations per
//! variable, kept as the reference the fused one is tested against and as a
//! benchmark baseline (`runner bench train --optimizer per-tensor`).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Kind, TchError, Tensor, nn};

use super::fused::{self, AdamLists, AdamParams};
use runner_plan::config::{OptimizerConfig, OptimizerKind};

/// A setting the optimizer cannot use, or a state file it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum OptimizerError {
    /// A saved state that does not fit this model.
    #[error("optimizer state does not match the model: {0}")]
    Mismatch(String),
    /// libtorch failed.
    #[error(transparent)]
    Torch(#[from] TchError),
}

/// How an update is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// Multi-tensor kernels: foreach on the CPU, fused on CUDA.
    Fused,
    /// A dozen small kernels per variable.
    PerTensor,
}

/// Device scalars the fused CUDA update reads: what makes it capturable.
struct DeviceScalars {
    /// The learning rate (float32).
    lr: Tensor,
    /// Updates taken (float32).
    step: Tensor,
}

/// Adam or AdamW over the trainable variables of a store.
pub struct Optimizer {
    config: OptimizerConfig,
    kernels: Kernels,
    names: Vec<String>,
    variables: Vec<Tensor>,
    exp_avgs: Vec<Tensor>,
    exp_avg_sqs: Vec<Tensor>,
    /// Updates taken (counting the one prepared).
    step: i64,
    /// The learning rate of the prepared update.
    lr: f64,
    /// Present for the fused kernels on CUDA.
    scalars: Option<DeviceScalars>,
}

impl Optimizer {
    /// An optimizer over the trainable variables registered in `vs` so far,
    /// with [`Kernels::Fused`].
    pub fn new(vs: &nn::VarStore, config: &OptimizerConfig) -> Result<Optimizer, OptimizerError> {
        Optimizer::with_kernels(vs, config, Kernels::Fused)
    }

    /// As [`Optimizer::new`], computing updates with `kernels`.
    pub fn with_kernels(
        vs: &nn::VarStore,
        config: &OptimizerConfig,
        kernels: Kernels,
    ) -> Result<Optimizer, OptimizerError> {
        let named: BTreeMap<String, Tensor> = vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
        let zeros = |v: &Tensor| v.zeros_like().set_requires_grad(false);
        let scalars = (kernels == Kernels::Fused && vs.device().is_cuda()).then(|| {
            let scalar = || Tensor::zeros([], (Kind::Float, vs.device()));
            DeviceScalars {
                lr: scalar(),
                step: scalar(),
            }
        });
        Ok(Optimizer {
            config: *config,
            kernels,
            exp_avgs: named.values().map(zeros).collect(),
            exp_avg_sqs: named.values().map(zeros).collect(),
            names: named.keys().cloned().collect(),
            variables: named.into_values().collect(),
            step: 0,
            lr: 0.0,
            scalars,
        })
    }

    /// Whether [`Optimizer::apply`] reads everything it needs from the
    /// device, so that a CUDA graph may capture it.
    pub fn capturable(&self) -> bool {
        self.scalars.is_some()
    }

    /// The device of the variables.
    pub fn device(&self) -> Device {
        self.variables.first().map_or(Device::Cpu, Tensor::device)
    }

    /// Clears every variable's gradient.
    pub fn zero_grad(&mut self) {
        let grads: Vec<Tensor> = self
            .variables
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        match self.kernels {
            Kernels::Fused => fused::zero(&grads).unwrap_or_else(|e| panic!("libtorch: {e}")),
            Kernels::PerTensor => {
                for mut grad in grads {
                    let _ = grad.zero_();
                }
            }
        }
    }

    /// Clips the gradients (when configured) and applies one update at
    /// learning rate `lr`: [`Optimizer::prepare`] then [`Optimizer::apply`].
    pub fn step(&mut self, lr: f64) {
        self.prepare(lr);
        self.apply();
    }

    /// The host side of an update: counts it and sets its learning rate
    /// (on the device for the fused CUDA kernels, without waiting).
    pub fn prepare(&mut self, lr: f64) {
        self.step += 1;
        self.lr = lr;
        if let Some(scalars) = &mut self.scalars {
            let _ = scalars.lr.fill_(lr);
        }
    }

    /// The device side of the prepared update: clipping (when configured)
    /// and the update itself.
    pub fn apply(&mut self) {
        tch::no_grad(|| {
            let mut lists: [Vec<Tensor>; 4] = Default::default();
            for (i, variable) in self.variables.iter().enumerate() {
                let grad = variable.grad();
                if grad.defined() {
                    lists[0].push(variable.shallow_clone());
                    lists[1].push(grad);
                    lists[2].push(self.exp_avgs[i].shallow_clone());
                    lists[3].push(self.exp_avg_sqs[i].shallow_clone());
                }
            }
            let [variables, grads, exp_avgs, exp_avg_sqs] = lists;
            if grads.is_empty() {
                return;
            }
            let lists = AdamLists {
                params: &variables,
                grads: &grads,
                exp_avgs: &exp_avgs,
                exp_avg_sqs: &exp_avg_sqs,
            };
            let params = AdamParams {
                beta1: self.config.beta1,
                beta2: self.config.beta2,
                eps: self.config.eps,
                weight_decay: self.config.weight_decay,
                adamw: self.config.kind == OptimizerKind::Adamw,
            };
            let done = match (self.kernels, &self.scalars) {
                (Kernels::PerTensor, _) => {
                    if let Some(max_norm) = self.config.clip_norm {
                        clip_per_tensor(&grads, max_norm);
                    }
                    update_per_tensor(&lists, params, self.lr, self.step);
                    Ok(())
                }
                (Kernels::Fused, scalars) => self
                    .config
                    .clip_norm
                    .map_or(Ok(()), |max_norm| fused::clip_grad_norm(&grads, max_norm))
                    .and_then(|()| match scalars {
                        Some(s) => fused::adam_fused(&lists, params, &s.lr, &s.step),
                        None => fused::adam_foreach(&lists, params, self.lr, self.step),
                    }),
            };
            done.unwrap_or_else(|e| panic!("libtorch: {e}"));
        });
    }

    /// Saves the moments and the step count (safetensors).
    pub fn save(&self, path: &Path) -> Result<(), OptimizerError> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.names.len() + 1);
        for (i, name) in self.names.iter().enumerate() {
            named.push((format!("exp_avg.{name}"), self.exp_avgs[i].shallow_clone()));
            named.push((format!("exp_avg_sq.{name}"), self.exp_avg_sqs[i].shallow_clone()));
        }
        named.push(("step".to_owned(), Tensor::from(self.step)));
        Tensor::write_safetensors(&named, path)?;
        Ok(())
    }

    /// Restores what [`Optimizer::save`] wrote, checking every name and shape.
    pub fn load(&mut self, path: &Path) -> Result<(), OptimizerError> {
        let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
        let step = saved
            .get("step")
            .ok_or_else(|| OptimizerError::Mismatch("no step count".to_owned()))?;
        self.step = step.int64_value(&[]);
        if let Some(scalars) = &mut self.scalars {
            let _ = scalars.step.fill_(self.step);
        }
        for (i, name) in self.names.iter().enumerate() {
            for (prefix, target) in [
                ("exp_avg", &mut self.exp_avgs[i]),
                ("exp_avg_sq", &mut self.exp_avg_sqs[i]),
            ] {
                let key = format!("{prefix}.{name}");
                let value = saved
                    .get(&key)
                    .ok_or_else(|| OptimizerError::Mismatch(format!("no `{key}`")))?;
                if value.size() != target.size() {
                    return Err(OptimizerError::Mismatch(format!(
                        "`{key}` has shape {:?}",
                        value.size()
                    )));
                }
                tch::no_grad(|| target.copy_(value));
            }
        }
        Ok(())
    }
}

/// Scales all gradients so that their joint L2 norm is at most `max_norm`
/// (computed on the device; no read-back), one variable at a time.
fn clip_per_tensor(grads: &[Tensor], max_norm: f64) {
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Float)).collect();
    let total = Tensor::stack(&norms, 0).norm();
    let scale = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for grad in grads {
        let _ = grad.shallow_clone().g_mul_(&scale);
    }
}

/// The update `step` (1 for the first) at rate `lr`, one variable at a time.
fn update_per_tensor(lists: &AdamLists, params: AdamParams, lr: f64, step: i64) {
    let AdamParams {
        beta1,
        beta2,
        eps,
        weight_decay,
        adamw,
    } = params;
    let correction1 = 1.0 - beta1.powi(step as i32);
    let correction2_sqrt = (1.0 - beta2.powi(step as i32)).sqrt();
    for (i, variable) in lists.params.iter().enumerate() {
        let mut variable = variable.shallow_clone();
        let grad = &lists.grads[i];
        let grad = match adamw {
            false if weight_decay != 0.0 => grad + &variable * weight_decay,
            true if weight_decay != 0.0 => {
                let _ = variable.g_mul_scalar_(1.0 - lr * weight_decay);
                grad.shallow_clone()
            }
            _ => grad.shallow_clone(),
        };
        let _ = lists.exp_avgs[i]
            .shallow_clone()
            .g_mul_scalar_(beta1)
            .g_add_(&(&grad * (1.0 - beta1)));
        let _ = lists.exp_avg_sqs[i]
            .shallow_clone()
            .g_mul_scalar_(beta2)
            .g_add_(&(&grad * &grad * (1.0 - beta2)));
        let denom = lists.exp_avg_sqs[i].sqrt() / correction2_sqrt + eps;
        let _ = variable.g_sub_(&(&lists.exp_avgs[i] / denom * (lr / correction1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn config(kind: OptimizerKind, weight_decay: f64, clip_norm: Option<f64>) -> OptimizerConfig {
        OptimizerConfig {
            kind,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            clip_norm,
        }
    }

    /// A store with one variable x = [1, -2], loss = sum(x^2 * scale), one
    /// step with each kind of kernels; both must agree.
    fn one_step(config: &OptimizerConfig, scale: f64, lr: f64) -> Vec<f64> {
        let results: Vec<Vec<f64>> = [Kernels::Fused, Kernels::PerTensor]
            .into_iter()
            .map(|kernels| {
                let vs = nn::VarStore::new(Device::Cpu);
                let x = vs.root().var_copy("x", &Tensor::from_slice(&[1.0f32, -2.0]));
                let mut opt = Optimizer::with_kernels(&vs, config, kernels).unwrap();
                opt.zero_grad();
                (&x * &x * scale).sum(Kind::Float).backward();
                opt.step(lr);
                Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap()
            })
            .collect();
        for (a, b) in results[0].iter().zip(&results[1]) {
            assert!((a - b).abs() < 1e-6, "{results:?}");
        }
        results[0].clone()
    }

    /// Ten steps on three variables of a quadratic with moving targets:
    /// the fused update equals the per-tensor one, for Adam and AdamW, with
    /// weight decay and clipping.
    #[test]
    fn fused_updates_equal_per_tensor_updates() {
        for (kind, weight_decay, clip_norm) in [
            (OptimizerKind::Adam, 0.0, None),
            (OptimizerKind::Adam, 0.01, Some(0.5)),
            (OptimizerKind::Adamw, 0.1, Some(2.0)),
        ] {
            let cfg = config(kind, weight_decay, clip_norm);
            let run = |kernels| {
                tch::manual_seed(9);
                let vs = nn::VarStore::new(Device::Cpu);
                let root = vs.root();
                let vars = [
                    root.randn("a", &[4, 3], 0.0, 1.0),
                    root.randn("b", &[7], 0.0, 1.0),
                    root.randn("c", &[2, 2, 2], 0.0, 1.0),
                ];
                let mut opt = Optimizer::with_kernels(&vs, &cfg, kernels).unwrap();
                for step in 1..=10 {
                    opt.zero_grad();
                    let loss = vars
                        .iter()
                        .map(|v| (v - step as f64 * 0.1).pow_tensor_scalar(2).sum(Kind::Float))
                        .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
                    loss.backward();
                    opt.step(0.05 / step as f64);
                }
                Tensor::cat(&vars.iter().map(|v| v.flatten(0, -1)).collect::<Vec<_>>(), 0)
            };
            let (fused, reference) = (run(Kernels::Fused), run(Kernels::PerTensor));
            let diff = (&fused - &reference).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{kind:?} {weight_decay} {clip_norm:?}: {diff}");
        }
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_the_learning_rate() {
        // After one step m̂ = g and v̂ = g², so the update is lr * sign(g).
        let x = one_step(&config(OptimizerKind::Adam, 0.0, None), 1.0, 0.1);
        assert!((x[0] - 0.9).abs() < 1e-6 && (x[1] + 1.9).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn adamw_decays_weights_before_the_update() {
        let x = one_step(&config(OptimizerKind::Adamw, 0.5, None), 1.0, 0.1);
        // x * (1 - 0.1 * 0.5) - 0.1 * sign(g)
        assert!(
            (x[0] - (0.95 - 0.1)).abs() < 1e-6 && (x[1] - (-1.9 + 0.1)).abs() < 1e-6,
            "{x:?}"
        );
    }

    #[test]
    fn clipping_keeps_adam_direction_and_scales_the_gradient() {
        // Adam's first step is invariant to gradient scale, so clipping must not change it.
        let x = one_step(&config(OptimizerKind::Adam, 0.0, Some(0.01)), 1.0, 0.1);
        assert!((x[0] - 0.9).abs() < 1e-5 && (x[1] + 1.9).abs() < 1e-5, "{x:?}");
    }

    #[test]
    fn state_round_trips_through_a_file() {
        let vs = nn::VarStore::new(Device::Cpu);
        let x = vs.root().var_copy("x", &Tensor::from_slice(&[1.0f32, -2.0, 3.0]));
        let cfg = config(OptimizerKind::Adam, 0.0, None);
        let mut opt = Optimizer::new(&vs, &cfg).unwrap();
        for _ in 0..3 {
            opt.zero_grad();
            (&x * &x).sum(Kind::Float).backward();
            opt.step(0.01);
        }
        let path = std::env::temp_dir().join(format!("runner-adam-{}.safetensors", std::process::id()));
        opt.save(&path).unwrap();
        let mut restored = Optimizer::new(&vs, &cfg).unwrap();
        restored.load(&path).unwrap();
        assert_eq!(restored.step, 3);
        assert!(opt.exp_avgs[0].equal(&restored.exp_avgs[0]) && opt.exp_avg_sqs[0].equal(&restored.exp_avg_sqs[0]));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn loading_another_models_state_is_an_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var_copy("x", &Tensor::from_slice(&[1.0f32]));
        let cfg = config(OptimizerKind::Adam, 0.0, None);
        let opt = Optimizer::new(&vs, &cfg).unwrap();
        let path = std::env::temp_dir().join(format!("runner-adam-other-{}.safetensors", std::process::id()));
        opt.save(&path).unwrap();
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var_copy("y", &Tensor::from_slice(&[1.0f32]));
        let mut mismatched = Optimizer::new(&other, &cfg).unwrap();
        assert!(matches!(mismatched.load(&path), Err(OptimizerError::Mismatch(_))));
        std::fs::remove_file(&path).unwrap();
    }
}
