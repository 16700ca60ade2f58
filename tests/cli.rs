//! The `runner` binary as a user meets it: version, help, exit codes.

use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runner starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_reports_libtorch_2_11_and_cuda_consistently() {
    let output = runner(&["--version"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("libtorch: 2.11.0"), "{text}");
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no '{key}' line in {text}"))
            .to_owned()
    };
    let devices: usize = line("CUDA devices: ").parse().unwrap();
    let available = line("CUDA available: ");
    assert_eq!(available == "yes", devices > 0, "{text}");
    let threads: usize = line("CPU threads: ").parse().unwrap();
    assert!(threads >= 1);
}

#[test]
fn runner_starts_without_library_path_thanks_to_the_rpath() {
    let output = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("info")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn info_check_devices_runs_a_computation_on_the_cpu() {
    let output = runner(&["info", "--check-devices"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("cpu: 256x256 matmul + softmax ok"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn help_shows_every_subcommand_and_examples() {
    let output = runner(&["--help"]);
    assert!(output.status.success());
    let text = stdout(&output);
    for word in [
        "check",
        "plan",
        "exec",
        "report",
        "data",
        "info",
        "Examples:",
    ] {
        assert!(text.contains(word), "--help lacks '{word}':\n{text}");
    }
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let output = runner(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("Usage: runner"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let output = runner(&["train"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unrecognized subcommand"),
        "{}",
        stderr(&output)
    );
}
