//! What the integration tests that train for real share: the tiny
//! experiment they train (seconds on the CPU) and a command's output as one
//! text. Used by `tests/exec.rs` and, through `tests/slurm_support`, by
//! `tests/slurm.rs` and `benches/slurm_overhead.rs`.

use std::process::Output;

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
