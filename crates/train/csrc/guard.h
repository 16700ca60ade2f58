// How the shims (csrc/optim.cpp, csrc/cuda_graph.cpp) hand errors to Rust:
// every fallible function returns NULL on success or a malloc'd message
// that the caller frees with runner_free_error (csrc/optim.cpp), so no C++
// exception crosses into Rust.
#pragma once

#include <cstdlib>
#include <cstring>
#include <exception>

namespace runner {

// A malloc'd copy of `what`, for the caller to free.
inline char* message(const char* what) { return strdup(what); }

// Runs `f`: NULL when it returns, the message of whatever it throws.
template <typename F>
char* guarded(F f) {
    try {
        f();
        return nullptr;
    } catch (const std::exception& e) {
        return message(e.what());
    } catch (...) {
        return message("unknown C++ exception");
    }
}

}  // namespace runner
