// The one libtorch call `tch` does not expose that runner needs: choosing
// bfloat16 (rather than the default float16) for CUDA autocast.
#include <ATen/autocast_mode.h>

extern "C" {

void runner_autocast_cuda_bf16() {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
}

int runner_autocast_cuda_dtype() {
    return static_cast<int>(at::autocast::get_autocast_dtype(at::kCUDA));
}

}
