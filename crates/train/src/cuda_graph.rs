//! CUDA graphs: record the work of a closure once, replay it with one
//! launch. Reached through `csrc/cuda_graph.cpp` (libtorch's
//! `at::cuda::CUDAGraph`), which `build.rs` compiles against the CUDA
//! runtime headers the PyPI wheel ships; built without them, every call
//! reports graphs as unavailable and callers stay eager.
//!
//! In: a CUDA device and closures that queue libtorch work. Out: a graph to
//! replay, or the reason there is none. Capture must see only device work
//! (no read-back, no host-to-device copy, no new shapes); a closure that
//! breaks that makes [`CudaGraph::capture`] fail, never the process.

use std::ffi::{CStr, c_char, c_int};

use tch::Device;

/// The shim's graph object.
#[repr(C)]
struct RunnerGraph {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn runner_free_error(message: *mut c_char);
    fn runner_cuda_graph_available() -> c_int;
    fn runner_cuda_graph_new(device: c_int, out: *mut *mut RunnerGraph) -> *mut c_char;
    fn runner_cuda_graph_free(graph: *mut RunnerGraph);
    fn runner_cuda_graph_enter(graph: *mut RunnerGraph) -> *mut c_char;
    fn runner_cuda_graph_leave(graph: *mut RunnerGraph) -> *mut c_char;
    fn runner_cuda_graph_capture_begin(graph: *mut RunnerGraph) -> *mut c_char;
    fn runner_cuda_graph_capture_end(graph: *mut RunnerGraph) -> *mut c_char;
    fn runner_cuda_graph_replay(graph: *mut RunnerGraph) -> *mut c_char;
}

/// Whether this build can capture CUDA graphs at all.
pub fn available() -> bool {
    // SAFETY: takes nothing, returns a constant.
    unsafe { runner_cuda_graph_available() != 0 }
}

/// Turns the shim's answer into a result, freeing the message.
fn check(message: *mut c_char) -> Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null answer is a NUL-terminated string from strdup, freed once here.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    unsafe { runner_free_error(message) };
    Err(first_line(&text))
}

/// libtorch's messages carry a C++ backtrace after the first line.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// One CUDA graph, with the side stream it is warmed up and captured on.
pub struct CudaGraph {
    raw: *mut RunnerGraph,
    captured: bool,
}

impl CudaGraph {
    /// A graph on `device` (CUDA only), not yet captured.
    pub fn new(device: Device) -> Result<CudaGraph, String> {
        let Device::Cuda(index) = device else {
            return Err(format!(
                "CUDA graphs need a CUDA device, not {}",
                crate::environment::device_name(device)
            ));
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: writes the new object (or null) into `raw`.
        check(unsafe { runner_cuda_graph_new(index as c_int, &mut raw) })?;
        Ok(CudaGraph { raw, captured: false })
    }

    /// Runs `f` eagerly on the graph's side stream, after everything queued
    /// before it and before anything queued after it (warm-up: libraries
    /// set up their per-stream state outside the capture).
    pub fn on_side_stream<T>(&mut self, f: impl FnOnce() -> T) -> Result<T, String> {
        // SAFETY: `raw` is live until drop.
        check(unsafe { runner_cuda_graph_enter(self.raw) })?;
        let result = super::torch_panic::catch_panic(f);
        // SAFETY: as above; leaving also follows a panic in `f`.
        let left = check(unsafe { runner_cuda_graph_leave(self.raw) });
        let value = result?;
        left.map(|()| value)
    }

    /// Records the device work `f` queues, without running it. On failure
    /// (an operation that capture forbids, a panic in `f`) the capture is
    /// ended and discarded, and the graph cannot be replayed.
    pub fn capture(&mut self, f: impl FnOnce()) -> Result<(), String> {
        if self.captured {
            return Err("this graph is already captured".to_owned());
        }
        // SAFETY: `raw` is live until drop.
        check(unsafe { runner_cuda_graph_capture_begin(self.raw) })?;
        let result = super::torch_panic::catch_panic(f);
        // SAFETY: as above; the capture is always ended, also after a panic.
        let ended = check(unsafe { runner_cuda_graph_capture_end(self.raw) });
        result?;
        ended?;
        self.captured = true;
        Ok(())
    }

    /// Queues the captured work once more, on the current stream.
    pub fn replay(&self) -> Result<(), String> {
        if !self.captured {
            return Err("nothing captured to replay".to_owned());
        }
        // SAFETY: `raw` is live until drop.
        check(unsafe { runner_cuda_graph_replay(self.raw) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` came from runner_cuda_graph_new and is freed once.
        unsafe { runner_cuda_graph_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphs_need_a_cuda_device() {
        let error = CudaGraph::new(Device::Cpu).err().expect("no graph on the CPU");
        assert!(error.contains("CUDA device"), "{error}");
    }
}
