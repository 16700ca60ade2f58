//! `runner data inspect` and `runner data export` as a user runs them, in a
//! temporary working folder (where the cache `runs/.datasets` goes).

mod data_support;

use std::path::Path;
use std::process::Command;

use data_support::{TempDir, runner, text};

fn experiment(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn inspect_prints_the_tables_and_caches_the_dataset() {
    let cwd = TempDir::new("cli-inspect");
    let output = runner(cwd.path(), &["data", "inspect", &experiment("pathetique.kdl")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for expected in [
        "source: 10 MIDI files in",
        "windows: 128 notes every 42 (separate scheme; source vocabulary 6601, target 129)",
        "cache: built and stored as",
        "Splits",
        "│ all        │ 10     │ 10     │ 101901 │",
        "Bin edges",
        "│ velocity     │ 3    │ 0, 57, 74",
        "Share of notes per bin",
        "Velocity",
        "Skipped files: none",
        "Duplicates: none",
        "Warnings (2)",
        "the validation split holds 1 piece (2367 notes): its metrics rest on little data; `split k-fold`",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in\n{stdout}");
    }
    assert!(cwd.path().join("runs/.datasets").is_dir());
    let again = runner(cwd.path(), &["data", "inspect", &experiment("pathetique.kdl")]);
    assert!(
        text(&again.stdout).contains("cache: read from entry"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn inspect_uses_the_cache_of_the_store_it_is_given() {
    let cwd = TempDir::new("cli-inspect-store");
    let args = ["data", "inspect", &experiment("quickstart.kdl"), "--store", "elsewhere"];
    let output = runner(cwd.path(), &args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("cache: built and stored as"));
    assert!(cwd.path().join("elsewhere/.datasets").is_dir());
    assert!(!cwd.path().join("runs").exists());
    let again = runner(cwd.path(), &args);
    assert!(
        text(&again.stdout).contains("cache: read from entry"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn inspect_of_a_chosen_run_and_an_unknown_run() {
    let cwd = TempDir::new("cli-run");
    let plan = runner(cwd.path(), &["plan", "--json", &experiment("pathetique.kdl")]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan --json");
    let runs = json["runs"].as_array().expect("runs");
    let shared = runs
        .iter()
        .find(|r| r["config"]["encoder"] == "shared")
        .and_then(|r| r["id"].as_str())
        .expect("a shared-scheme run");
    let output = runner(
        cwd.path(),
        &["data", "inspect", &experiment("pathetique.kdl"), "--run", shared],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("(shared scheme; source vocabulary 6730, target 6730)"));

    let output = runner(
        cwd.path(),
        &["data", "inspect", &experiment("pathetique.kdl"), "--run", "0123"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("has no run 0123"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_missing_dataset_folder_fails_with_a_clear_message() {
    let cwd = TempDir::new("cli-nope");
    std::fs::write(
        cwd.path().join("nope.kdl"),
        "experiment nope {\n    dataset {\n        source midi-dir path=\"nope\"\n    }\n}\n",
    )
    .unwrap();
    let output = runner(cwd.path(), &["data", "inspect", "nope.kdl"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dataset folder nope does not exist or is not a folder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("relative paths are taken from the experiment file's folder"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_bundled_data_says_to_run_setup() {
    let cwd = TempDir::new("cli-bundled");
    let output = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["data", "inspect", &experiment("pathetique.kdl")])
        .current_dir(cwd.path())
        .env("NO_COLOR", "1")
        .env("RUNNER_BUNDLED_DIR", cwd.path().join("absent"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the bundled data is not in place"), "{stderr}");
    assert!(stderr.contains("scripts/setup"), "{stderr}");
}

#[test]
fn export_writes_a_parquet_that_an_hf_parquet_source_reads() {
    let cwd = TempDir::new("cli-export");
    let output = runner(
        cwd.path(),
        &["data", "export", &experiment("pathetique.kdl"), "--out", "exported"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("exported/dataset.parquet (101901 notes)"), "{stdout}");
    assert!(cwd.path().join("exported/dataset.parquet").is_file());

    std::fs::write(
        cwd.path().join("parquet.kdl"),
        "experiment p {\n    dataset {\n        source hf-parquet path=\"exported\"\n        split column\n        window length=128 step=42\n        quantize dstart=5 duration=5 velocity=3 edges=original\n    }\n}\n",
    )
    .unwrap();
    let output = runner(cwd.path(), &["data", "inspect", "parquet.kdl"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("source: 1 parquet file in exported"), "{stdout}");
    assert!(stdout.contains("│ all        │ 10     │ 10     │ 101901 │"), "{stdout}");
}
