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
fn runner_links_no_libtorch() {
    let output = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_runner"))
        .output()
        .expect("ldd runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let libraries = stdout(&output);
    assert!(
        !libraries.contains("libtorch") && !libraries.contains("libc10"),
        "{libraries}"
    );
}

/// `runner` alone (no runner-worker beside it) still checks and plans, and
/// says what is missing for the rest.
#[test]
fn without_its_worker_runner_checks_and_plans_and_says_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("runner-alone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alone = dir.join("runner");
    std::fs::copy(env!("CARGO_BIN_EXE_runner"), &alone).unwrap();
    let run = |args: &[&str]| Command::new(&alone).args(args).env("NO_COLOR", "1").output().unwrap();
    assert!(run(&["check", "experiments/quickstart.kdl"]).status.success());
    assert!(run(&["plan", "experiments/ablation.kdl"]).status.success());
    let output = run(&["info"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    // The message names the folder it looked in (miette may wrap the path).
    assert!(
        text.contains("runner-worker is not beside runner") && text.contains(dir.to_str().unwrap()),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
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
    for word in ["check", "plan", "exec", "report", "data", "info", "Examples:"] {
        assert!(text.contains(word), "--help lacks '{word}':\n{text}");
    }
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let output = runner(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("Usage: runner"), "{}", stderr(&output));
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

#[test]
fn check_accepts_the_shipped_experiments() {
    let mut files: Vec<String> = std::fs::read_dir("experiments")
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .filter(|path| path.ends_with(".kdl"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    // Its data folder is made by scripts/maestro-scale; until then, check says so.
    let scaled = "experiments/pathetique-maestro-scale.kdl";
    if !std::path::Path::new("data/maestro-scale").exists() {
        files.retain(|file| file != scaled);
        let output = runner(&["check", scaled]);
        assert_eq!(output.status.code(), Some(1));
        let said = "the data folder `../data/maestro-scale` does not exist";
        assert!(stderr(&output).contains(said), "{}", stderr(&output));
    }
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let output = runner(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    for (file, runs) in [
        ("experiments/ablation.kdl", 24),
        ("experiments/ablation-cpu.kdl", 40),
        ("experiments/pathetique-cpu.kdl", 10),
    ] {
        let line = format!("{file}: ok ({runs} runs)");
        assert!(stdout(&output).contains(&line), "no `{line}` in\n{}", stdout(&output));
    }
}

/// The settings (flattened JSON paths) in which an experiment's two variants
/// differ (on its first fold, under k-fold).
fn paths_the_variants_differ_in(file: &str) -> Vec<String> {
    fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value.as_object() {
            Some(map) => map.iter().for_each(|(k, v)| flatten(&format!("{prefix}.{k}"), v, out)),
            None => out.push((prefix.to_owned(), value.to_string())),
        }
    }
    let output = runner(&["plan", file, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let first_fold: Vec<&serde_json::Value> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| {
            let labels = run["labels"].as_array().unwrap();
            labels.iter().all(|pair| pair[0] != "fold" || pair[1] == "0")
        })
        .collect();
    let [a, b] = first_fold.as_slice() else {
        panic!("{file}: two runs expected on the first fold")
    };
    let (mut left, mut right) = (Vec::new(), Vec::new());
    flatten("", &a["config"], &mut left);
    flatten("", &b["config"], &mut right);
    let mut paths: Vec<String> = left
        .iter()
        .filter(|entry| !right.contains(entry))
        .map(|(path, _)| path.clone())
        .collect();
    paths.extend(right.iter().filter(|e| !left.contains(e)).map(|(path, _)| path.clone()));
    paths.sort();
    paths.dedup();
    paths
}

#[test]
fn the_cpu_scale_down_keeps_every_difference_between_the_two_setups() {
    let full = paths_the_variants_differ_in("experiments/pathetique.kdl");
    let small = paths_the_variants_differ_in("experiments/pathetique-cpu.kdl");
    for setup_setting in [".encoder", ".loss.kind", ".model.architecture", ".schedule.kind"] {
        assert!(
            full.iter().any(|p| p.starts_with(setup_setting)),
            "{setup_setting} in {full:?}"
        );
    }
    assert_eq!(full, small);
}

#[test]
fn check_reports_every_problem_of_every_file_and_fails() {
    let output = runner(&[
        "check",
        "tests/ui/several-problems.kdl",
        "experiments/pathetique.kdl",
        "tests/ui/bins-zero.kdl",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("4 problems in tests/ui/several-problems.kdl"), "{err}");
    assert!(err.contains("1 problem in tests/ui/bins-zero.kdl"), "{err}");
    assert!(err.contains("2 of 3 experiment files have problems"), "{err}");
    assert!(stdout(&output).contains("experiments/pathetique.kdl: ok (2 runs)"));
}

#[test]
fn check_of_a_missing_file_says_so() {
    let output = runner(&["check", "experiments/nope.kdl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read `experiments/nope.kdl`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plan_shows_the_matrix_and_json_holds_resolved_configs() {
    let output = runner(&["plan", "experiments/ablation.kdl"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.contains("ablation: 24 runs (24 pending)"), "{table}");
    for column in [
        "schedule",
        "loss",
        "encoder",
        "model.architecture",
        "seed",
        "est. steps",
        "status",
    ] {
        assert!(table.contains(column), "no column {column}:\n{table}");
    }

    // `plan` builds no dataset: with an empty store the steps are unknown.
    let empty = std::env::temp_dir().join(format!("runner-plan-empty-{}", std::process::id()));
    let output = runner(&["plan", "experiments/quickstart.kdl", "--store", empty.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.contains("est. steps `?`: the dataset of 1 run is not cached yet"),
        "{table}"
    );
    assert!(!empty.join(".datasets").exists(), "plan built a dataset");

    let output = runner(&["plan", "experiments/pathetique.kdl", "--json"]);
    assert!(output.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let hf = runs.iter().find(|r| r["labels"][0][1] == "hf-t5").unwrap();
    assert_eq!(hf["config"]["schedule"]["lr"], 3e-6);
    assert_eq!(hf["config"]["model"]["positions"], "relative");
    assert_eq!(hf["config"]["model"]["tie-embeddings"], true);
    assert_eq!(hf["config"]["optimizer"]["beta2"], 0.999);
    assert_eq!(hf["config"]["train"]["epochs"], 25);
}

#[test]
fn a_selector_that_matches_no_run_is_an_error_with_a_suggestion() {
    let store = std::env::temp_dir().join(format!("runner-select-{}", std::process::id()));
    let store = store.to_str().unwrap();
    let output = runner(&[
        "exec",
        "experiments/ablation.kdl",
        "--only",
        "schedule=nom",
        "--dry-run",
        "--store",
        store,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("--only `schedule=nom` matches no run of ablation"),
        "{text}"
    );
    assert!(text.contains("did you mean `schedule=noam`?"), "{text}");

    let output = runner(&[
        "exec",
        "experiments/quickstart.kdl",
        "--failed-only",
        "--dry-run",
        "--store",
        store,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("--failed-only: none of the 1 run selected has failed"),
        "{text}"
    );

    let output = runner(&[
        "exec",
        "experiments/ablation.kdl",
        "--only",
        "schedule=noam",
        "--dry-run",
        "--store",
        store,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("12 of 24 runs selected"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_cuda_device_the_worker_does_not_see_is_refused_before_anything_trains() {
    let store = std::env::temp_dir().join(format!("runner-no-such-gpu-{}", std::process::id()));
    let output = runner(&[
        "exec",
        "experiments/quickstart.kdl",
        "--device",
        "cuda:99",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("1 run selected go to cuda:99 (--device), but runner-worker sees"),
        "{text}"
    );
    assert!(!store.exists(), "nothing was written to the store");
}

/// A reader that goes away (`runner ... | head`) ends runner quietly: no
/// broken-pipe panic, exit 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [&["plan", "experiments/ablation.kdl"][..], &["info"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runner"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let text = stderr(&output);
        assert!(!text.contains("panicked"), "{args:?}: {text}");
        assert!(
            matches!(output.status.code(), Some(0) | Some(141)),
            "{args:?}: {:?} {text}",
            output.status
        );
    }
}
