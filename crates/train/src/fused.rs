//! Multi-tensor libtorch kernels `tch` 0.24 does not expose, reached
//! through `csrc/optim.cpp` (compiled by `build.rs`): what the optimizer
//! needs to update every variable in a few kernel launches instead of a
//! dozen per variable.
//!
//! In: lists of tensors (and scalars). Out: the tensors changed in place, or
//! the libtorch error as text. Nothing is read back to the host.

use std::ffi::{CStr, c_char, c_int};

use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn runner_free_error(message: *mut c_char);
    fn runner_foreach_zero(tensors: *const *const C_tensor, n: usize) -> *mut c_char;
    fn runner_clip_grad_norm(grads: *const *const C_tensor, n: usize, max_norm: f64) -> *mut c_char;
    fn runner_adam_foreach(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        adamw: c_int,
        step: i64,
    ) -> *mut c_char;
    fn runner_adam_fused(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        n: usize,
        lr: *const C_tensor,
        step: *const C_tensor,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        adamw: c_int,
    ) -> *mut c_char;
}

/// Adam's hyper-parameters for one update.
#[derive(Debug, Clone, Copy)]
pub struct AdamParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Decoupled weight decay.
    pub adamw: bool,
}

/// The variables an update touches, as four parallel lists.
pub struct AdamLists<'a> {
    /// Parameters.
    pub params: &'a [Tensor],
    /// Their gradients.
    pub grads: &'a [Tensor],
    /// First moments.
    pub exp_avgs: &'a [Tensor],
    /// Second moments.
    pub exp_avg_sqs: &'a [Tensor],
}

impl AdamLists<'_> {
    fn pointers(&self) -> [Vec<*const C_tensor>; 4] {
        assert!(
            self.grads.len() == self.params.len()
                && self.exp_avgs.len() == self.params.len()
                && self.exp_avg_sqs.len() == self.params.len(),
            "Adam lists of different lengths"
        );
        [self.params, self.grads, self.exp_avgs, self.exp_avg_sqs].map(pointers)
    }
}

fn pointers(tensors: &[Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(Tensor::as_ptr).collect()
}

/// Turns the shim's answer into a result, freeing the message.
fn check(message: *mut c_char) -> Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null answer is a NUL-terminated string from strdup, freed once here.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    unsafe { runner_free_error(message) };
    Err(text)
}

/// Sets every tensor to zero (one multi-tensor kernel on CUDA).
pub fn zero(tensors: &[Tensor]) -> Result<(), String> {
    let list = pointers(tensors);
    // SAFETY: the pointers are live tensors borrowed for the call.
    check(unsafe { runner_foreach_zero(list.as_ptr(), list.len()) })
}

/// Scales `grads` so that their joint L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_` with `foreach=True`).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<(), String> {
    let list = pointers(grads);
    // SAFETY: as in `zero`.
    check(unsafe { runner_clip_grad_norm(list.as_ptr(), list.len(), max_norm) })
}

/// One Adam/AdamW update with host scalars, `step` being the update's
/// number (1 for the first): `torch.optim.Adam(foreach=True)`.
pub fn adam_foreach(lists: &AdamLists, params: AdamParams, lr: f64, step: i64) -> Result<(), String> {
    let [p, g, m, v] = lists.pointers();
    // SAFETY: as in `zero`; the four lists have the same length.
    check(unsafe {
        runner_adam_foreach(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            p.len(),
            lr,
            params.beta1,
            params.beta2,
            params.eps,
            params.weight_decay,
            c_int::from(params.adamw),
            step,
        )
    })
}

/// One Adam/AdamW update in libtorch's fused kernel, reading the learning
/// rate from `lr` and incrementing then reading `step` (float32 scalars on
/// the parameters' device): `torch.optim.Adam(fused=True, capturable=True)`.
pub fn adam_fused(lists: &AdamLists, params: AdamParams, lr: &Tensor, step: &Tensor) -> Result<(), String> {
    let [p, g, m, v] = lists.pointers();
    // SAFETY: as in `zero`; `lr` and `step` are live tensors.
    check(unsafe {
        runner_adam_fused(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            p.len(),
            lr.as_ptr(),
            step.as_ptr(),
            params.beta1,
            params.beta2,
            params.eps,
            params.weight_decay,
            c_int::from(params.adamw),
        )
    })
}
