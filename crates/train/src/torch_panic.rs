//! libtorch reports many errors (out of memory, a shape it cannot handle,
//! a CUDA failure) by panicking through `tch`; [`catch_panic`] turns such a
//! panic into its message, so that one run or one benchmark cell fails with
//! a reason and the rest go on.

use std::panic::AssertUnwindSafe;

/// Runs `f`, turning a panic (libtorch reports errors such as out-of-memory
/// by panicking) into its message.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let first = text.lines().next().unwrap_or_default().to_owned();
        format!("libtorch: {first}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn a_libtorch_error_becomes_its_first_line_and_a_result_passes_through() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        let a = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
        let message = catch_panic(|| a.matmul(&b)).unwrap_err();
        assert!(message.starts_with("libtorch: "), "{message}");
        assert!(message.contains("cannot be multiplied"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
