//! Mixed precision: bfloat16 autocast on CUDA.
//!
//! In: a closure and whether to autocast it. Out: its result, computed
//! under CUDA autocast in bfloat16 when asked ([`autocast`], after
//! [`use_bf16_autocast`]). libtorch's CUDA autocast type defaults to float16
//! and `tch::autocast` switches autocast through libtorch's deprecated
//! device-less calls (a warning on each use with libtorch 2.11), so runner
//! talks to libtorch through a small C++ shim (`csrc/autocast.cpp`, compiled
//! by `build.rs`) with the device-specific calls.
//!
//! libtorch keeps the autocast switch, the nesting depth and the cache of
//! cast weights per thread.

unsafe extern "C" {
    fn runner_autocast_cuda_bf16();
    fn runner_autocast_cuda_dtype() -> i32;
    fn runner_autocast_cuda_enabled() -> i32;
    fn runner_autocast_cuda_set_enabled(enabled: i32);
    fn runner_autocast_increment_nesting() -> i32;
    fn runner_autocast_decrement_nesting() -> i32;
    fn runner_autocast_clear_cache();
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

/// Runs `f` with CUDA autocast on (`enabled`) or off, then restores the
/// previous setting, as `tch::autocast` does but through libtorch's
/// device-specific calls. Without CUDA it only runs `f`, as `tch::autocast`
/// does. The setting is restored even when `f` panics.
pub fn autocast<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if !tch::Cuda::is_available() {
        return f();
    }
    let _scope = Scope::enter(enabled);
    f()
}

/// Whether CUDA autocast is on in this thread.
fn cuda_autocast_enabled() -> bool {
    // SAFETY: reads libtorch's thread-local autocast state.
    unsafe { runner_autocast_cuda_enabled() != 0 }
}

/// One autocast scope: entered by [`Scope::enter`], left when dropped
/// (also while unwinding from a panic).
struct Scope {
    /// Whether CUDA autocast was on before the scope.
    previous: bool,
}

impl Scope {
    /// Sets CUDA autocast to `enabled` and enters one nesting level.
    fn enter(enabled: bool) -> Scope {
        let previous = cuda_autocast_enabled();
        // SAFETY: writes libtorch's thread-local autocast state; undone by `drop`.
        unsafe {
            runner_autocast_cuda_set_enabled(i32::from(enabled));
            runner_autocast_increment_nesting();
        }
        Scope { previous }
    }
}

impl Drop for Scope {
    /// Leaves the nesting level, clearing the cast cache when it was the
    /// outermost, and restores the previous setting.
    fn drop(&mut self) {
        // SAFETY: writes libtorch's thread-local autocast state, undoing `enter`.
        unsafe {
            if runner_autocast_decrement_nesting() == 0 {
                runner_autocast_clear_cache();
            }
            runner_autocast_cuda_set_enabled(i32::from(self.previous));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_switches_cuda_autocast_to_bfloat16() {
        use_bf16_autocast();
        assert!(autocast_is_bf16());
    }

    /// The nesting depth of this thread, read by entering and leaving a level.
    fn nesting() -> i32 {
        // SAFETY: changes libtorch's thread-local nesting depth and restores it.
        unsafe {
            let depth = runner_autocast_increment_nesting() - 1;
            runner_autocast_decrement_nesting();
            depth
        }
    }

    /// Scopes set the CUDA autocast switch (which needs no CUDA device, so
    /// this runs on any machine) and restore it on the way out, nested, and
    /// when the closure panics.
    #[test]
    fn a_scope_sets_and_restores_cuda_autocast_even_across_a_panic() {
        assert!(!cuda_autocast_enabled());
        assert_eq!(nesting(), 0);
        {
            let _outer = Scope::enter(true);
            assert!(cuda_autocast_enabled());
            assert_eq!(nesting(), 1);
            {
                let _inner = Scope::enter(false);
                assert!(!cuda_autocast_enabled());
                assert_eq!(nesting(), 2);
            }
            assert!(cuda_autocast_enabled(), "the inner scope restores the outer's setting");
            assert_eq!(nesting(), 1);
        }
        assert!(!cuda_autocast_enabled());
        assert_eq!(nesting(), 0);

        let panicked = std::panic::catch_unwind(|| {
            let _scope = Scope::enter(true);
            assert!(cuda_autocast_enabled());
            panic!("inside the scope");
        });
        assert!(panicked.is_err());
        assert!(!cuda_autocast_enabled(), "restored while unwinding");
        assert_eq!(nesting(), 0);
    }

    /// [`autocast`] returns the closure's value and leaves the switch as it
    /// found it, with or without CUDA.
    #[test]
    fn autocast_returns_the_value_and_leaves_the_switch_as_it_was() {
        assert_eq!(autocast(true, || 7), 7);
        assert!(!cuda_autocast_enabled());
        let panicked = std::panic::catch_unwind(|| autocast(true, || panic!("inside autocast")));
        assert!(panicked.is_err());
        assert!(!cuda_autocast_enabled());
        assert_eq!(nesting(), 0);
    }
}
