//! `runner bench train` as a user meets it: a tiny measurement on the CPU,
//! its JSON, and the errors for bad flags.

use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runner starts")
}

#[test]
fn bench_train_on_the_cpu_reports_every_cell_as_json() {
    let output = runner(&[
        "bench",
        "train",
        "--device",
        "cpu",
        "--batch",
        "2",
        "--precision",
        "fp32,bf16",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--no-data",
        "--greedy-windows",
        "0",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["device"], "cpu");
    let cells = report["train"].as_array().expect("train cells");
    assert_eq!(cells.len(), 2);
    let fp32 = &cells[0];
    assert_eq!(
        (fp32["batch"].as_i64(), fp32["precision"].as_str()),
        (Some(2), Some("fp32"))
    );
    assert!(fp32["seq_per_s"].as_f64().unwrap() > 0.0, "{fp32}");
    // Cross-entropy over 128 velocities starts near ln(128) = 4.85.
    let loss = fp32["loss"].as_f64().unwrap();
    assert!((4.0..6.5).contains(&loss), "{loss}");
    let bf16 = &cells[1];
    assert!(bf16["seq_per_s"].is_null());
    assert!(bf16["note"].as_str().unwrap().contains("CUDA only"), "{bf16}");
    assert!(report["data"].is_null() && report["greedy"].is_null());
}

#[test]
fn bench_train_rejects_unknown_settings() {
    for (flag, value, message) in [
        ("--precision", "fp16", "unknown precision `fp16`"),
        ("--arch", "gpt", "unknown architecture `gpt`"),
        ("--scheme", "mixed", "unknown token scheme `mixed`"),
        ("--device", "tpu", "unknown device `tpu`"),
        ("--batch", "0", "--batch needs sizes of at least 1"),
    ] {
        let output = runner(&["bench", "train", flag, value, "--steps", "1"]);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{flag} {value}: {stderr}");
    }
}

#[test]
fn bench_train_with_the_shared_scheme_trains_over_hf_t5s_vocabulary() {
    let output = runner(&[
        "bench",
        "train",
        "--device",
        "cpu",
        "--arch",
        "t5",
        "--scheme",
        "shared",
        "--batch",
        "1",
        "--precision",
        "fp32",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--no-data",
        "--greedy-windows",
        "1",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let cell = &report["train"][0];
    assert_eq!(
        (cell["arch"].as_str(), cell["scheme"].as_str()),
        (Some("t5"), Some("shared"))
    );
    // Over the whole 6,730-id vocabulary an untrained model starts near
    // ln(6730) = 8.8, far above the separate scheme's ln(129) = 4.9.
    let loss = cell["loss"].as_f64().unwrap();
    assert!((7.5..10.5).contains(&loss), "{loss}");
    assert_eq!(report["greedy"]["windows"], 1);
}
