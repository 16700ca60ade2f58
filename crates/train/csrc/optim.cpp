// Multi-tensor libtorch kernels that `tch` does not expose, for the
// optimizer (crates/train/src/fused.rs): zeroing and clipping every gradient at
// once, Adam/AdamW as `torch.optim` runs them with `foreach=True` (the CPU)
// and with `fused=True` (CUDA, reading the learning rate and the step count
// from device tensors, so a CUDA graph can capture it).
//
// Tensors come in as arrays of `torch::Tensor*` (tch's C_tensor). Every
// function returns NULL on success or a malloc'd message that the caller
// frees with runner_free_error (defined here): see guard.h.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "guard.h"

using runner::guarded;

namespace {

std::vector<at::Tensor> list(at::Tensor* const* tensors, size_t n) {
    std::vector<at::Tensor> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
    return out;
}

}  // namespace

extern "C" {

void runner_free_error(char* message) { free(message); }

// Sets every tensor to zero.
char* runner_foreach_zero(at::Tensor* const* tensors, size_t n) {
    if (n == 0) return nullptr;
    return guarded([&] { at::_foreach_zero_(list(tensors, n)); });
}

// Scales the gradients so that their joint L2 norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_(foreach=True): no read-back.
char* runner_clip_grad_norm(at::Tensor* const* grads, size_t n, double max_norm) {
    return guarded([&] {
        auto g = list(grads, n);
        if (g.empty()) return;
        auto norms = at::_foreach_norm(g, 2);
        auto total = at::linalg_vector_norm(at::stack(norms), 2);
        auto scale = at::clamp_max(max_norm / (total + 1e-6), 1.0);
        at::_foreach_mul_(g, scale);
    });
}

// Adam (adamw = 0) or AdamW (adamw = 1) with host scalars, as torch.optim's
// _multi_tensor_adam: `step` is the step being taken (1 for the first).
char* runner_adam_foreach(at::Tensor* const* params, at::Tensor* const* grads, at::Tensor* const* exp_avgs,
                          at::Tensor* const* exp_avg_sqs, size_t n, double lr, double beta1, double beta2,
                          double eps, double weight_decay, int adamw, int64_t step) {
    return guarded([&] {
        auto p = list(params, n);
        auto g = list(grads, n);
        auto m = list(exp_avgs, n);
        auto v = list(exp_avg_sqs, n);
        if (weight_decay != 0.0) {
            if (adamw) {
                at::_foreach_mul_(p, 1.0 - lr * weight_decay);
            } else {
                g = at::_foreach_add(g, p, weight_decay);
            }
        }
        at::_foreach_lerp_(m, g, 1.0 - beta1);
        at::_foreach_mul_(v, beta2);
        at::_foreach_addcmul_(v, g, g, 1.0 - beta2);
        double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
        double correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
        auto denom = at::_foreach_sqrt(v);
        at::_foreach_div_(denom, correction2_sqrt);
        at::_foreach_add_(denom, eps);
        at::_foreach_addcdiv_(p, m, denom, -lr / correction1);
    });
}

// Adam or AdamW in libtorch's fused kernel: `lr` and `step` are float32
// scalars on the parameters' device; `step` is incremented here, so the
// whole update runs on the device.
char* runner_adam_fused(at::Tensor* const* params, at::Tensor* const* grads, at::Tensor* const* exp_avgs,
                        at::Tensor* const* exp_avg_sqs, size_t n, const at::Tensor* lr, at::Tensor* step, double beta1,
                        double beta2, double eps, double weight_decay, int adamw) {
    return guarded([&] {
        auto p = list(params, n);
        auto g = list(grads, n);
        auto m = list(exp_avgs, n);
        auto v = list(exp_avg_sqs, n);
        step->add_(1);
        std::vector<at::Tensor> steps(n, *step);
        if (adamw) {
            at::_fused_adamw_(p, g, m, v, {}, steps, *lr, beta1, beta2, weight_decay, eps, false, false);
        } else {
            at::_fused_adam_(p, g, m, v, {}, steps, *lr, beta1, beta2, weight_decay, eps, false, false);
        }
    });
}

}
