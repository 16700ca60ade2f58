//! Live curves as TensorBoard reads them: a tiny two-run matrix trained by
//! `runner exec` (the first run interrupted after its first checkpoint and
//! resumed), every event file read back with the `tensorboard` package's
//! own readers in the set-up's Python: one folder per run named by its
//! labels, every step's learning rate once, the losses, every evaluation's
//! metrics equal to `metrics.csv`'s, the hyperparameters and the end of each
//! session; then `--force` starts a run's curves over.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, tiny_experiment};

/// Reads every event file under the folder given as argument, with
/// tensorboard's own readers, and prints per run folder: its files, whether
/// the loader read each whole (a record whose checksum fails ends it), each
/// file's raw steps of `train/lr`, the restarts, the scalars as an
/// `EventAccumulator` (which drops what a restart orphaned) sees them, the
/// hyperparameters and the session ends.
const READ: &str = r#"
import json, os, sys
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

root = sys.argv[1]
out = {}
for name in sorted(os.listdir(root)):
    folder = os.path.join(root, name)
    run = {"files": [], "whole": [], "versions": [], "lr_steps": [], "restarts": [],
           "hparams": {}, "ends": [], "scalars": {}}
    for file in sorted(os.listdir(folder)):
        path = os.path.join(folder, file)
        run["files"].append(file)
        run["lr_steps"].append([])
        records = list(RawEventFileLoader(path).Load())
        run["whole"].append(sum(len(r) + 16 for r in records) == os.path.getsize(path))
        for record in records:
            event = event_pb2.Event.FromString(record)
            if event.file_version:
                run["versions"].append(event.file_version)
            if event.HasField("session_log"):
                run["restarts"].append([event.step, event.session_log.status])
            for value in event.summary.value:
                if value.tag == "train/lr":
                    run["lr_steps"][-1].append(event.step)
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        for key, v in data.session_start_info.hparams.items():
                            run["hparams"][key] = v.string_value if v.HasField("string_value") else (
                                v.bool_value if v.HasField("bool_value") else v.number_value)
                    if data.HasField("session_end_info"):
                        run["ends"].append(data.session_end_info.status)
    acc = ea.EventAccumulator(folder, size_guidance={ea.SCALARS: 0})
    acc.Reload()
    for tag in acc.Tags()["scalars"]:
        run["scalars"][tag] = [[s.step, s.value] for s in acc.Scalars(tag)]
    out[name] = run
print(json.dumps(out))
"#;

struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = std::env::temp_dir().join(format!("runner-tensorboard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Work { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
        command
            .args(args)
            .arg("--store")
            .arg(self.dir.join("runs"))
            .env("NO_COLOR", "1")
            .env("OMP_NUM_THREADS", "1");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// What [`READ`] prints about every run folder under `tensorboard/`.
    fn curves(&self, experiment: &str) -> serde_json::Map<String, serde_json::Value> {
        let folder = self.dir.join("runs").join(experiment).join("tensorboard");
        let output = Command::new(common::python(&["tensorboard"]))
            .args(["-c", READ])
            .arg(&folder)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        value.as_object().unwrap().clone()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Each run's id by its `variant` label (from `runner plan --json`).
fn ids_by_variant(work: &Work, file: &str) -> BTreeMap<String, String> {
    let output = work.run(&["plan", file, "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let variant = run["labels"][0][1].as_str().unwrap().to_owned();
            (variant, run["id"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// `metrics.csv` of a run: each row by its header's names (no cell is quoted).
fn metrics(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The optimizer steps a finished run took (`summary.json`).
fn steps(dir: &Path) -> u64 {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    summary["steps"].as_u64().unwrap()
}

/// The steps of a scalar's points.
fn points(run: &serde_json::Value, tag: &str) -> Vec<(u64, f64)> {
    run["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no {tag}: {run}"))
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// A run's curves against its files: one learning rate per step from 1,
/// a loss every 25 steps, every evaluation's metrics as `metrics.csv`
/// holds them (as TensorBoard's f32), its hyperparameters, a finished session.
fn check_run(run: &serde_json::Value, dir: &Path, variant: &str, greedy: bool) {
    let n = steps(dir);
    let lr: Vec<u64> = points(run, "train/lr").iter().map(|p| p.0).collect();
    assert_eq!(lr, (1..=n).collect::<Vec<_>>(), "{variant}: every step once, in order");
    let loss: Vec<u64> = points(run, "train/loss").iter().map(|p| p.0).collect();
    assert_eq!(loss, (25..=n).step_by(25).collect::<Vec<_>>(), "{variant}");
    let rows = metrics(dir);
    let f32_of = |row: &BTreeMap<String, String>, name: &str| f64::from(row[name].parse::<f64>().unwrap() as f32);
    for (tag, column) in [
        ("val/dist", "val_dist"),
        ("val/loss", "val_loss"),
        ("val/accuracy", "val_accuracy"),
        ("train/epoch_loss", "train_loss"),
    ] {
        let expected: Vec<(u64, f64)> = rows
            .iter()
            .map(|row| (row["step"].parse().unwrap(), f32_of(row, column)))
            .collect();
        assert_eq!(points(run, tag), expected, "{variant}: {tag} is metrics.csv's {column}");
    }
    let epochs: Vec<f64> = points(run, "train/epoch").iter().map(|p| p.1).collect();
    assert_eq!(epochs, [1.0, 2.0, 3.0], "{variant}");
    let tags: Vec<&String> = run["scalars"].as_object().unwrap().keys().collect();
    if greedy {
        let expected: Vec<(u64, f64)> = rows
            .iter()
            .map(|row| (row["step"].parse().unwrap(), f32_of(row, "greedy_dist")))
            .collect();
        assert_eq!(points(run, "greedy/dist"), expected, "{variant}");
        assert!(run["scalars"]["greedy/flatness"].is_array(), "{variant}: {tags:?}");
    } else {
        assert!(!tags.iter().any(|t| t.starts_with("greedy/")), "{variant}: {tags:?}");
    }
    for tag in ["val/flatness", "val/ls_kl", "test/dist"] {
        assert!(run["scalars"][tag].is_array(), "{variant}: no {tag} in {tags:?}");
    }
    let hparams = &run["hparams"];
    let id = dir.file_name().unwrap().to_str().unwrap();
    assert_eq!(hparams["variant"], variant, "{hparams}");
    assert_eq!(hparams["run"], &id[..8], "{hparams}");
    assert_eq!(hparams["model.d-model"], 16.0, "{hparams}");
    assert_eq!(hparams["train.epochs"], 3.0, "{hparams}");
    assert!(hparams["seed"].is_number(), "{hparams}");
    assert!(
        run["whole"].as_array().unwrap().iter().all(|w| w == true),
        "every record's checksums hold: {run}"
    );
    let files = run["files"].as_array().unwrap().len();
    assert_eq!(run["versions"].as_array().unwrap().len(), files, "{run}");
    assert!(run["versions"].as_array().unwrap().iter().all(|v| v == "brain.Event:2"));
    assert_eq!(run["ends"], serde_json::json!([1]), "one successful end: {run}");
}

#[test]
fn every_run_has_its_curves_and_hparams_for_tensorboard_and_a_resumed_run_continues_them() {
    let work = Work::new("matrix");
    let variants = "variant first { seed 1 }\nvariant second { seed 2; evaluate { greedy #true } }";
    let file = work.dir.join("curves.kdl");
    std::fs::write(&file, tiny_experiment("curves", 3, variants)).unwrap();
    let file = file.to_str().unwrap();
    let ids = ids_by_variant(&work, file);
    let dir = |variant: &str| work.dir.join("runs/curves").join(&ids[variant]);

    // The first run is interrupted after its first checkpoint, then resumed.
    let exec = work
        .command(&["exec", file, "--jobs", "1", "--only", "first"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir("first").join("checkpoint/position.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-s", "INT", &exec.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = exec.wait_with_output().unwrap();
    assert!(text(&stopped).contains("1 interrupted"), "{}", text(&stopped));
    let trained = work.run(&["exec", file, "--jobs", "1"]);
    assert!(trained.status.success(), "{}", text(&trained));
    assert!(text(&trained).contains("1 trained, 1 resumed"), "{}", text(&trained));

    let curves = work.curves("curves");
    let names: Vec<&String> = curves.keys().collect();
    let name = |variant: &str| format!("variant={variant}-{}", &ids[variant][..8]);
    assert_eq!(names, [&name("first"), &name("second")], "named by their labels");
    let first = &curves[&name("first")];
    let second = &curves[&name("second")];
    check_run(first, &dir("first"), "first", false);
    check_run(second, &dir("second"), "second", true);

    // The resumed run appended a file that marks where it took up again.
    assert_eq!(first["files"].as_array().unwrap().len(), 2, "{first}");
    let restarts = first["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 1, "{first}");
    let restart = restarts[0][0].as_u64().unwrap();
    assert_eq!(restarts[0][1], 1, "SessionLog START");
    let raw: Vec<Vec<u64>> = serde_json::from_value(first["lr_steps"].clone()).unwrap();
    assert_eq!(raw[0], (1..restart).collect::<Vec<_>>(), "up to the checkpoint");
    assert_eq!(
        raw[1],
        (restart..=steps(&dir("first"))).collect::<Vec<_>>(),
        "the resumed file takes up after it"
    );
    assert_eq!(second["files"].as_array().unwrap().len(), 1);
    assert!(second["restarts"].as_array().unwrap().is_empty());

    // --force starts the run's curves over: one file, nothing stale.
    let forced = work.run(&["exec", file, "--force", "--only", "first"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let curves = work.curves("curves");
    let first = &curves[&name("first")];
    assert_eq!(first["files"].as_array().unwrap().len(), 1, "{first}");
    assert!(first["restarts"].as_array().unwrap().is_empty());
    check_run(first, &dir("first"), "first", false);
}
