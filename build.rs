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
//!    (bf16 autocast, multi-tensor optimizer kernels).

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

/// Compiles `csrc/*.cpp` against libtorch's headers, with the C++11 ABI the
/// PyPI wheels use (as `.cargo/config.toml` tells torch-sys).
fn compile_shim(lib_dir: &Path) {
    let root = lib_dir.parent().expect("libtorch's lib folder has a parent");
    let files = ["csrc/autocast.cpp", "csrc/optim.cpp"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .files(files)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .warnings(false)
        .compile("runner_shim");
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
