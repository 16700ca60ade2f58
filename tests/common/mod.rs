//! What the integration tests that train for real share: the tiny
//! experiment they train (seconds on the CPU) and a command's output as one
//! text. Used by `tests/exec.rs` and, through `tests/slurm_support`, by
//! `tests/slurm.rs` and `benches/slurm_overhead.rs`; the set-up's Python, by the
//! tests that check runner's files with Python readers.

#![allow(dead_code)] // Each test crate uses a different part of this module.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Settings small enough to train in seconds on the CPU; `EPOCHS` stands
/// for the number of epochs.
const SETTINGS: &str = r#"
    dataset {
        window length=32 step=32
        quantize dstart=3 duration=3 velocity=3
    }
    model { d-model 16; d-ff 32; layers 1; heads 2 }
    train { epochs EPOCHS; batch-size 128; accumulate 1 }
    evaluate { examples 1; greedy #false }
    schedule noam warmup=10
"#;

/// The KDL text of an experiment `name` with the tiny settings, `epochs`
/// epochs and the `extra` nodes.
pub fn tiny_experiment(name: &str, epochs: u32, extra: &str) -> String {
    let body = SETTINGS.replace("EPOCHS", &epochs.to_string());
    format!("experiment {name} {{\n{body}\n{extra}\n}}\n")
}

/// A command's stdout, then its stderr, as text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The Python of the set-up's torch environment (`$RUNNER_TORCH_HOME`, else
/// `torch-2.11.0` in the per-user cache), checked to import `modules`
/// (scripts/setup installs them); panics with the remedy otherwise.
pub fn python(modules: &[&str]) -> PathBuf {
    let home = std::env::var_os("RUNNER_TORCH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("RUNNER_CACHE").map(PathBuf::from).unwrap_or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
                    .join("runner")
            });
            cache.join("torch-2.11.0")
        });
    let python = home.join("bin").join("python");
    let check = Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output();
    match check {
        Ok(output) if output.status.success() => python,
        Ok(output) => panic!(
            "{} cannot import {}; run scripts/setup\n{}",
            python.display(),
            modules.join(", "),
            text(&output)
        ),
        Err(error) => panic!("no Python at {} ({error}); run scripts/setup", python.display()),
    }
}
