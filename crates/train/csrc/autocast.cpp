// The libtorch autocast calls runner needs and `tch` does not expose:
// choosing bfloat16 (rather than the default float16) for CUDA autocast,
// and the device-specific switch, nesting and cache calls that a scoped
// autocast (crates/train/src/precision.rs) is made of. `tch::autocast` reaches the
// same switch through the device-less at::autocast::is_enabled/set_enabled,
// which libtorch 2.11 deprecates with a warning on every use.
//
// These only read and write libtorch's thread-local autocast state and do
// not throw; `noexcept` turns a surprise into an abort rather than an
// exception unwinding into Rust.
#include <ATen/autocast_mode.h>

extern "C" {

void runner_autocast_cuda_bf16() noexcept {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
}

int runner_autocast_cuda_dtype() noexcept {
    return static_cast<int>(at::autocast::get_autocast_dtype(at::kCUDA));
}

int runner_autocast_cuda_enabled() noexcept {
    return at::autocast::is_autocast_enabled(at::kCUDA) ? 1 : 0;
}

void runner_autocast_cuda_set_enabled(int enabled) noexcept {
    at::autocast::set_autocast_enabled(at::kCUDA, enabled != 0);
}

// The depth of nested autocast scopes after entering one.
int runner_autocast_increment_nesting() noexcept { return at::autocast::increment_nesting(); }

// The depth of nested autocast scopes after leaving one.
int runner_autocast_decrement_nesting() noexcept { return at::autocast::decrement_nesting(); }

// Drops the casts of weights cached while autocast was on.
void runner_autocast_clear_cache() noexcept { at::autocast::clear_cache(); }

}
