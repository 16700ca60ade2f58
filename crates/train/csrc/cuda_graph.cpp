// Capture and replay of a CUDA graph (at::cuda::CUDAGraph) for
// crates/train/src/cuda_graph.rs: the whole training step is recorded once and
// replayed with one launch per step.
//
// build.rs defines RUNNER_CUDA_GRAPH when libtorch has CUDA and the CUDA
// runtime headers are found (the PyPI wheel ships them under
// site-packages/nvidia/cu13/include); host code only, no nvcc. Without it
// every function reports that graphs are unavailable, so callers fall back
// to eager steps.
//
// Only symbols exported by libtorch_cuda and libc10_cuda are used (no direct
// CUDA runtime calls), so the binary needs no libcudart of its own.
// Every function returns NULL on success or a malloc'd message freed with
// runner_free_error (csrc/optim.cpp): see guard.h.
#include <stdexcept>

#include "guard.h"

using runner::guarded;
using runner::message;

#ifdef RUNNER_CUDA_GRAPH

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

struct RunnerGraph {
    c10::DeviceIndex device;
    at::cuda::CUDAGraph graph;
    // The side stream warm-up and capture run on (capture cannot use the
    // default stream); replays go to whatever stream is current.
    c10::cuda::CUDAStream side;
    std::optional<c10::cuda::CUDAStream> previous;
    bool capturing = false;

    explicit RunnerGraph(c10::DeviceIndex index)
        : device(index), side(c10::cuda::getStreamFromPool(false, index)) {}
};

namespace {

void enter_side_stream(RunnerGraph* g) {
    // Everything queued so far finishes before the side stream starts.
    c10::cuda::device_synchronize();
    g->previous = c10::cuda::getCurrentCUDAStream(g->device);
    c10::cuda::setCurrentCUDAStream(g->side);
}

void leave_side_stream(RunnerGraph* g) {
    if (g->previous) {
        c10::cuda::setCurrentCUDAStream(*g->previous);
        g->previous.reset();
    }
}

}  // namespace

extern "C" {

int runner_cuda_graph_available() { return 1; }

char* runner_cuda_graph_new(int device, RunnerGraph** out) {
    *out = nullptr;
    return guarded([&] {
        auto index = static_cast<c10::DeviceIndex>(device);
        c10::cuda::set_device(index);
        *out = new RunnerGraph(index);
    });
}

void runner_cuda_graph_free(RunnerGraph* g) {
    if (g == nullptr) return;
    try {
        leave_side_stream(g);
        delete g;
    } catch (...) {
    }
}

// Eager work between enter and leave runs on the side stream (warm-up).
char* runner_cuda_graph_enter(RunnerGraph* g) {
    return guarded([&] { enter_side_stream(g); });
}

char* runner_cuda_graph_leave(RunnerGraph* g) {
    return guarded([&] {
        c10::cuda::device_synchronize();
        leave_side_stream(g);
    });
}

char* runner_cuda_graph_capture_begin(RunnerGraph* g) {
    return guarded([&] {
        enter_side_stream(g);
        try {
            g->graph.capture_begin();
            g->capturing = true;
        } catch (...) {
            leave_side_stream(g);
            throw;
        }
    });
}

// Ends the capture (also after a failure inside it, so that the stream
// leaves capture mode) and returns to the previous stream. An error here
// means the graph must not be replayed.
char* runner_cuda_graph_capture_end(RunnerGraph* g) {
    char* error = guarded([&] {
        if (!g->capturing) throw std::runtime_error("no capture in progress");
        g->capturing = false;
        g->graph.capture_end();
    });
    if (error != nullptr) {
        // capture_end may have thrown before handing the side stream's
        // allocations back to the ordinary pool; doing it twice is harmless.
        try {
            c10::cuda::CUDACachingAllocator::endAllocateToPool(g->device, g->graph.pool());
        } catch (...) {
        }
    }
    leave_side_stream(g);
    return error;
}

char* runner_cuda_graph_replay(RunnerGraph* g) {
    return guarded([&] { g->graph.replay(); });
}

}

#else

struct RunnerGraph;

static const char* const UNAVAILABLE =
    "CUDA graphs are unavailable: runner was built without the CUDA runtime headers "
    "(or against a libtorch without CUDA)";

extern "C" {

int runner_cuda_graph_available() { return 0; }

char* runner_cuda_graph_new(int, RunnerGraph** out) {
    *out = nullptr;
    return message(UNAVAILABLE);
}

void runner_cuda_graph_free(RunnerGraph*) {}

char* runner_cuda_graph_enter(RunnerGraph*) { return message(UNAVAILABLE); }

char* runner_cuda_graph_leave(RunnerGraph*) { return message(UNAVAILABLE); }

char* runner_cuda_graph_capture_begin(RunnerGraph*) { return message(UNAVAILABLE); }

char* runner_cuda_graph_capture_end(RunnerGraph*) { return message(UNAVAILABLE); }

char* runner_cuda_graph_replay(RunnerGraph*) { return message(UNAVAILABLE); }

}

#endif
