//! Adam and AdamW written out over tensors, with state that a checkpoint can
//! hold, and gradient-norm clipping.
//!
//! In: an optimizer config, a variable store, and at each step the learning
//! rate. Out: updated variables. The moments live beside the variables (on
//! the same device) and are saved and restored by name, so a resumed run
//! continues exactly. The update follows `torch.optim.Adam` / `AdamW`
//! (bias-corrected moments, `eps` added to the corrected root); nothing is
//! read back to the host.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Kind, TchError, Tensor, nn};

use crate::plan::config::{OptimizerConfig, OptimizerKind};

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

/// One trainable variable with its moments.
struct Slot {
    variable: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// Adam or AdamW over the trainable variables of a store.
pub struct Optimizer {
    config: OptimizerConfig,
    slots: BTreeMap<String, Slot>,
    step: i64,
}

impl Optimizer {
    /// An optimizer over the trainable variables registered in `vs` so far.
    pub fn new(vs: &nn::VarStore, config: &OptimizerConfig) -> Result<Optimizer, OptimizerError> {
        let slots = vs
            .variables()
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .map(|(name, variable)| {
                let exp_avg = variable.zeros_like().set_requires_grad(false);
                let exp_avg_sq = variable.zeros_like().set_requires_grad(false);
                (
                    name,
                    Slot {
                        variable,
                        exp_avg,
                        exp_avg_sq,
                    },
                )
            })
            .collect();
        Ok(Optimizer {
            config: *config,
            slots,
            step: 0,
        })
    }

    /// Clears every variable's gradient.
    pub fn zero_grad(&mut self) {
        for slot in self.slots.values_mut() {
            let mut grad = slot.variable.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// Clips the gradients (when configured) and applies one update at
    /// learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            if let Some(max_norm) = self.config.clip_norm {
                self.clip(max_norm);
            }
            self.step += 1;
            let OptimizerConfig {
                kind,
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } = self.config;
            let correction1 = 1.0 - beta1.powi(self.step as i32);
            let correction2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
            for slot in self.slots.values_mut() {
                let grad = slot.variable.grad();
                if !grad.defined() {
                    continue;
                }
                let grad = match kind {
                    OptimizerKind::Adam if weight_decay != 0.0 => grad + &slot.variable * weight_decay,
                    OptimizerKind::Adamw if weight_decay != 0.0 => {
                        let _ = slot.variable.g_mul_scalar_(1.0 - lr * weight_decay);
                        grad
                    }
                    _ => grad,
                };
                let _ = slot.exp_avg.g_mul_scalar_(beta1).g_add_(&(&grad * (1.0 - beta1)));
                let _ = slot
                    .exp_avg_sq
                    .g_mul_scalar_(beta2)
                    .g_add_(&(&grad * &grad * (1.0 - beta2)));
                let denom = slot.exp_avg_sq.sqrt() / correction2_sqrt + eps;
                let _ = slot.variable.g_sub_(&(&slot.exp_avg / denom * (lr / correction1)));
            }
        });
    }

    /// Scales all gradients so that their joint L2 norm is at most `max_norm`
    /// (computed on the device; no read-back).
    fn clip(&self, max_norm: f64) {
        let grads: Vec<Tensor> = self
            .slots
            .values()
            .map(|s| s.variable.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return;
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Float)).collect();
        let total = Tensor::stack(&norms, 0).norm();
        let scale = (max_norm / (total + 1e-6)).clamp_max(1.0);
        for mut grad in grads {
            let _ = grad.g_mul_(&scale);
        }
    }

    /// Saves the moments and the step count (safetensors).
    pub fn save(&self, path: &Path) -> Result<(), OptimizerError> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.slots.len() + 1);
        for (name, slot) in &self.slots {
            named.push((format!("exp_avg.{name}"), slot.exp_avg.shallow_clone()));
            named.push((format!("exp_avg_sq.{name}"), slot.exp_avg_sq.shallow_clone()));
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
        for (name, slot) in &mut self.slots {
            for (prefix, target) in [("exp_avg", &mut slot.exp_avg), ("exp_avg_sq", &mut slot.exp_avg_sq)] {
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

    /// A store with one variable x = [1, -2], loss = sum(x^2 * scale).
    fn one_step(config: &OptimizerConfig, scale: f64, lr: f64) -> Vec<f64> {
        let vs = nn::VarStore::new(Device::Cpu);
        let x = vs.root().var_copy("x", &Tensor::from_slice(&[1.0f32, -2.0]));
        let mut opt = Optimizer::new(&vs, config).unwrap();
        opt.zero_grad();
        (&x * &x * scale).sum(Kind::Float).backward();
        opt.step(lr);
        Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap()
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
        let a = &opt.slots["x"];
        let b = &restored.slots["x"];
        assert!(a.exp_avg.equal(&b.exp_avg) && a.exp_avg_sq.equal(&b.exp_avg_sq));
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
