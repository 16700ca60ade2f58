//! `runner status` while a run trains and after it was interrupted: its
//! state, epochs done of all, latest metrics (train loss, val dist, greedy
//! dist) and, while it trains, what it is doing and its ETA, in the table
//! and in `--json`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, tiny_experiment};

struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = std::env::temp_dir().join(format!("runner-status-{name}-{}", std::process::id()));
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

    /// `runner status FILE --json`, parsed.
    fn status_json(&self, file: &str) -> serde_json::Value {
        let output = self.run(&["status", file, "--json"]);
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cells of the table row of the run `id`.
fn cells(table: &str, id: &str) -> Vec<String> {
    let row = table
        .lines()
        .find(|line| line.contains(&id[..8]))
        .unwrap_or_else(|| panic!("no row for {id}: {table}"));
    row.split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The last row's `column` of a run's `metrics.csv`.
fn last_metric(dir: &std::path::Path, column: &str) -> f64 {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == column).unwrap();
    last[i].parse().unwrap()
}

#[test]
fn status_shows_a_run_in_training_with_its_epoch_metrics_and_eta_then_interrupted() {
    let work = Work::new("live");
    let variants = "variant first { seed 1 }\nvariant second { seed 2 }";
    let file = work.dir.join("live.kdl");
    std::fs::write(
        &file,
        tiny_experiment("live", 8, variants).replace("greedy #false", "greedy #true"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let exec = work
        .command(&["exec", file, "--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until the first run is past its first evaluation and has an ETA.
    let started = Instant::now();
    let (json, table) = loop {
        let json = work.status_json(file);
        let training = json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["state"] == "running" && run["evaluated_epoch"].is_u64() && run["eta_seconds"].is_f64());
        let table = text(&work.run(&["status", file]));
        if training && table.contains("running") && table.contains("steps/s") {
            break (json, table);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no run in training with metrics and an ETA: {json}\n{table}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let runs = json["runs"].as_array().unwrap();
    let running = runs.iter().find(|run| run["state"] == "running").unwrap();
    let pending = runs.iter().find(|run| run["state"] == "pending").unwrap();
    let id = running["id"].as_str().unwrap().to_owned();
    assert_eq!(running["epochs"], 8, "{running}");
    let epoch = running["epoch"].as_u64().unwrap();
    assert!((1..8).contains(&epoch), "{running}");
    assert!(
        running["phase"] == "training" || running["phase"] == "evaluating",
        "{running}"
    );
    assert!(running["step"].as_u64().unwrap() <= running["total_steps"].as_u64().unwrap());
    for field in [
        "train_loss",
        "val_dist",
        "greedy_dist",
        "steps_per_second",
        "eta_seconds",
    ] {
        assert!(running[field].is_f64(), "{field}: {running}");
    }
    assert!(pending["epoch"].is_null() && pending["val_dist"].is_null(), "{pending}");

    let header = cells(&table, "run      ");
    assert_eq!(
        header,
        [
            "run",
            "labels",
            "state",
            "epoch",
            "train loss",
            "val dist",
            "greedy dist",
            "eta",
            "note"
        ],
        "{table}"
    );
    let row = cells(&table, &id);
    assert_eq!(row[2], "running", "{table}");
    assert!(row[3].ends_with("/8"), "{table}");
    assert!(
        row[5].parse::<f64>().is_ok() && row[6].parse::<f64>().is_ok(),
        "{table}"
    );
    assert!(row[7].ends_with('s') || row[7].ends_with('m'), "an ETA: {table}");
    assert!(row[8].contains("step ") && row[8].contains("steps/s"), "{table}");
    assert!(table.ends_with("2 runs: 1 running, 1 pending\n"), "{table}");

    // Interrupted: partial, with its epochs and metrics, and no ETA.
    let status = Command::new("kill")
        .args(["-s", "INT", &exec.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = exec.wait_with_output().unwrap();
    assert!(text(&stopped).contains("1 interrupted"), "{}", text(&stopped));
    let json = work.status_json(file);
    let run = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["id"] == id.as_str())
        .unwrap();
    assert_eq!(run["state"], "partial", "{run}");
    assert!(run["epoch"].as_u64().unwrap() >= epoch, "{run}");
    assert!(run["eta_seconds"].is_null() && run["phase"].is_null(), "{run}");
    let dir = work.dir.join("runs/live").join(&id);
    assert_eq!(
        run["val_dist"].as_f64().unwrap(),
        last_metric(&dir, "val_dist"),
        "{run}"
    );
    assert_eq!(
        run["greedy_dist"].as_f64().unwrap(),
        last_metric(&dir, "greedy_dist"),
        "{run}"
    );
    let table = text(&work.run(&["status", file]));
    let row = cells(&table, &id);
    assert_eq!(row[2], "partial", "{table}");
    assert_eq!(row[7], "-", "no ETA once it stopped: {table}");
    assert!(row[8].contains("resumes it from its checkpoint"), "{table}");
}
