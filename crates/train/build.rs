//! Link-time set-up for libtorch.
//!
//! `torch-sys` finds libtorch (through `LIBTORCH`, set in `.cargo/config.toml`)
//! and exports its library folder to direct dependents as
//! `DEP_TCH_LIBTORCH_LIB`. From it this script:
//!
//! 1. adds an rpath to that folder, so `runner` (and the test binaries) start
//!    without `LD_LIBRARY_PATH`;
//! 2. links `libtorch_cuda.so` with `--no-as-needed` when the libtorch has it:
//!    nothing in the binary calls into it directly, so the default
//!    `--as-needed` would drop it and CUDA would never be available;
//! 3. reads the libtorch version and exposes it as `RUNNER_LIBTORCH_VERSION`,
//!    refusing any libtorch other than 2.11;
//! 4. compiles `csrc/`, the few libtorch calls `tch` does not expose
//!    (bf16 autocast, multi-tensor optimizer kernels, CUDA graphs). The
//!    CUDA graph shim needs the CUDA runtime headers (host code only, no
//!    nvcc), found beside the wheel's torch (see `cuda_include`), under
//!    `CUDA_HOME` or in `/usr/local/cuda`. Without them, or without
//!    `libtorch_cuda.so`, the shim compiles to stubs that report graphs as
//!    unavailable (a build warning says so) and training stays eager.

use std::path::{Path, PathBuf};

/// The libtorch release `tch` 0.24 is written against.
const EXPECTED_LIBTORCH: &str = "2.11.";

fn main() {
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not export DEP_TCH_LIBTORCH_LIB; is torch-sys a direct dependency?");
    // Resolve the `.libtorch` link, so the rpath names the real folder and a
    // binary keeps working when the clone it was built in is moved or removed.
    let lib_dir = std::fs::canonicalize(&lib_dir).unwrap_or_else(|_| PathBuf::from(&lib_dir));

    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }

    let version = libtorch_version(&lib_dir).unwrap_or_else(|| "unknown".to_owned());
    if !version.starts_with(EXPECTED_LIBTORCH) {
        panic!(
            "runner needs libtorch {EXPECTED_LIBTORCH}x but {} holds version {version}; \
             run scripts/setup (or scripts/setup --libtorch DIR with a libtorch 2.11)",
            lib_dir.display()
        );
    }
    println!("cargo:rustc-env=RUNNER_LIBTORCH_VERSION={version}");

    compile_shim(&lib_dir);
}

/// A folder of CUDA runtime headers complete enough for host code
/// (`cuda_runtime.h` includes `crt/host_config.h`), for a libtorch whose
/// `lib` folder is `lib_dir`, if any.
///
/// The wheel's own CUDA 13 headers (`nvidia/cu13/include`) lack `crt/`,
/// which belongs to nvcc; triton, a dependency of the wheel, ships a complete
/// CUDA 12.8 set. The libtorch headers the shim includes differ between
/// CUDA versions only in one initializer guarded by `CUDA_VERSION >= 12030`,
/// which both satisfy, and the shim passes no CUDA type by value, so either
/// set compiles the same code.
fn cuda_include(lib_dir: &Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let site_packages = lib_dir.parent()?.parent()?.to_owned();
    let mut candidates = vec![site_packages.join("nvidia/cu13/include")];
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(PathBuf::from(home).join("include"));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    candidates.push(site_packages.join("triton/backends/nvidia/include"));
    candidates
        .into_iter()
        .find(|dir| dir.join("cuda_runtime_api.h").exists() && dir.join("crt/host_config.h").exists())
}

/// Compiles `csrc/*.cpp` against libtorch's headers, with the C++11 ABI the
/// PyPI wheels use (as `.cargo/config.toml` tells torch-sys).
fn compile_shim(lib_dir: &Path) {
    let root = lib_dir.parent().expect("libtorch's lib folder has a parent");
    let files = ["csrc/autocast.cpp", "csrc/optim.cpp", "csrc/cuda_graph.cpp"];
    // The headers they include (by a path relative to the including file).
    let headers = ["csrc/guard.h"];
    for file in files.iter().chain(&headers) {
        println!("cargo:rerun-if-changed={file}");
    }
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .files(files)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .warnings(false);
    let cuda = lib_dir.join("libtorch_cuda.so").exists() && lib_dir.join("libc10_cuda.so").exists();
    match cuda_include(lib_dir).filter(|_| cuda) {
        Some(include) => {
            build.include(include).define("RUNNER_CUDA_GRAPH", None);
        }
        None => println!(
            "cargo:warning=CUDA graphs disabled: no libtorch_cuda or no CUDA runtime headers for {}",
            lib_dir.display()
        ),
    }
    build.compile("runner_shim");
    if cuda {
        // After the shim, which calls into them.
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
}

/// Reads the version of the libtorch whose `lib` folder is `lib_dir`: from the
/// `build-version` file of a standalone libtorch, or from `version.py` of a
/// PyTorch wheel.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    let standalone = root.join("build-version");
    if let Ok(text) = std::fs::read_to_string(&standalone) {
        println!("cargo:rerun-if-changed={}", standalone.display());
        return Some(text.trim().to_owned());
    }
    let wheel = root.join("version.py");
    let text = std::fs::read_to_string(&wheel).ok()?;
    println!("cargo:rerun-if-changed={}", wheel.display());
    text.lines()
        .find_map(|line| line.strip_prefix("__version__ = "))
        .map(|quoted| quoted.trim().trim_matches(['\'', '"']).to_owned())
}
