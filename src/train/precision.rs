//! Mixed precision: bfloat16 autocast on CUDA.
//!
//! `tch::autocast` turns libtorch's autocast on, but libtorch's CUDA autocast
//! type defaults to float16; runner asks for bfloat16 through a two-line C++
//! shim (`csrc/autocast.cpp`, compiled by `build.rs`).

unsafe extern "C" {
    fn runner_autocast_cuda_bf16();
    fn runner_autocast_cuda_dtype() -> i32;
}

/// libtorch's `ScalarType` number of bfloat16.
const BFLOAT16: i32 = 15;

/// Makes CUDA autocast compute in bfloat16 (process-wide).
pub fn use_bf16_autocast() {
    // SAFETY: sets a process-wide libtorch setting; takes and returns nothing.
    unsafe { runner_autocast_cuda_bf16() }
}

/// Whether CUDA autocast computes in bfloat16.
pub fn autocast_is_bf16() -> bool {
    // SAFETY: reads a process-wide libtorch setting.
    unsafe { runner_autocast_cuda_dtype() == BFLOAT16 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_switches_cuda_autocast_to_bfloat16() {
        use_bf16_autocast();
        assert!(autocast_is_bf16());
    }
}
