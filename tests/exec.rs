//! `runner exec` as its user meets it: finished runs are not trained again,
//! a killed run resumes and ends as if uninterrupted, a failing run does not
//! stop the others, and two processes never train one run twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests train for real: one at a time, so two cores suffice.
static TURN: Mutex<()> = Mutex::new(());

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

struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = std::env::temp_dir().join(format!("runner-exec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Work { dir }
    }

    /// Writes an experiment with the tiny settings and `extra` nodes.
    fn experiment(&self, name: &str, epochs: u32, extra: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.kdl"));
        let body = SETTINGS.replace("EPOCHS", &epochs.to_string());
        std::fs::write(&path, format!("experiment {name} {{\n{body}\n{extra}\n}}\n")).unwrap();
        path
    }

    fn command(&self, args: &[&str], store: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
        // One libtorch thread per process: the concurrency test runs two at once.
        command
            .args(args)
            .arg("--store")
            .arg(self.dir.join(store))
            .env("NO_COLOR", "1")
            .env("OMP_NUM_THREADS", "1");
        command
    }

    fn run(&self, args: &[&str], store: &str) -> Output {
        self.command(args, store).output().unwrap()
    }

    /// The only run folder of an experiment in a store.
    fn run_dirs(&self, store: &str, experiment: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.dir.join(store).join(experiment))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn summary_metrics(dir: &Path) -> Vec<(f64, f64, f64)> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    summary["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["train_loss"].as_f64().unwrap(),
                e["val_loss"].as_f64().unwrap(),
                e["val"]["dist"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_second_exec_trains_nothing() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("twice");
    let file = work.experiment("twice", 1, "");
    let file = file.to_str().unwrap();
    let first = work.run(&["exec", file], "runs");
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("1 trained, 0 resumed, 0 skipped"),
        "{}",
        text(&first)
    );
    let second = work.run(&["exec", file], "runs");
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("0 trained, 0 resumed, 1 skipped"),
        "{}",
        text(&second)
    );
    let plan = work.run(&["plan", file], "runs");
    assert!(text(&plan).contains("(1 done)"), "{}", text(&plan));
}

#[test]
fn a_killed_run_resumes_and_ends_like_an_uninterrupted_one() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("kill");
    let file = work.experiment("kill", 4, "");
    let file = file.to_str().unwrap();

    let straight = work.run(&["exec", file], "straight");
    assert!(straight.status.success(), "{}", text(&straight));

    let mut child = work.command(&["exec", file], "killed").spawn().unwrap();
    let started = Instant::now();
    let position = loop {
        let found = std::fs::read_dir(work.dir.join("killed/kill"))
            .ok()
            .and_then(|mut dirs| dirs.find_map(|d| d.ok().map(|d| d.path().join("checkpoint/position.json"))))
            .filter(|p| p.exists());
        if let Some(path) = found {
            break path;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let run_dir = position.parent().unwrap().parent().unwrap().to_owned();
    assert!(
        !run_dir.join("summary.json").exists(),
        "killed too late to test anything"
    );

    let plan = work.run(&["plan", file], "killed");
    assert!(text(&plan).contains("partial"), "{}", text(&plan));
    let resumed = work.run(&["exec", file], "killed");
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("1 resumed"), "{}", text(&resumed));

    let expected = summary_metrics(&work.run_dirs("straight", "kill")[0]);
    let actual = summary_metrics(&run_dir);
    assert_eq!(expected.len(), actual.len());
    for (a, b) in expected.iter().zip(&actual) {
        assert!(
            (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6 && (a.2 - b.2).abs() < 1e-6,
            "{a:?} {b:?}"
        );
    }
}

#[test]
fn a_failing_run_is_recorded_and_the_others_finish() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("fail");
    let variants = r#"
        variant good { seed 1 }
        variant broken { dataset { source midi-dir path="no-such-folder" } }
    "#;
    let file = work.experiment("fail", 1, variants);
    let file = file.to_str().unwrap();
    let output = work.run(&["exec", file], "runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("1 trained, 0 resumed, 0 skipped, 0 busy, 0 interrupted, 1 failed"),
        "{out}"
    );
    assert!(out.contains("no-such-folder"), "the reason is shown: {out}");

    let plan = text(&work.run(&["plan", file], "runs"));
    assert!(plan.contains("done") && plan.contains("failed"), "{plan}");

    let broken = work
        .run_dirs("runs", "fail")
        .into_iter()
        .find(|d| {
            std::fs::read_to_string(d.join("status.json"))
                .unwrap()
                .contains("failed")
        })
        .expect("a run recorded as failed");
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(broken.join("status.json")).unwrap()).unwrap();
    assert!(status["reason"].as_str().unwrap().contains("no-such-folder"));
    assert!(!status["log_tail"].as_array().unwrap().is_empty());

    let retry = work.run(&["exec", file, "--failed-only"], "runs");
    assert_eq!(retry.status.code(), Some(1));
    let retry = text(&retry);
    assert!(
        retry.contains("0 trained, 0 resumed, 0 skipped, 0 busy, 0 interrupted, 1 failed"),
        "{retry}"
    );
    assert!(
        !retry.contains("variant=good"),
        "only the failed run is retried: {retry}"
    );
}

#[test]
fn two_processes_train_every_run_exactly_once() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("concurrent");
    let file = work.experiment("concurrent", 1, "repeats 3");
    let file = file.to_str().unwrap();
    let spawn = || {
        let mut command = work.command(&["exec", file], "runs");
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", text(&a), text(&b));
    let dirs = work.run_dirs("runs", "concurrent");
    assert_eq!(dirs.len(), 3);
    for dir in dirs {
        let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
        assert_eq!(log.matches("starting").count(), 1, "{}: {log}", dir.display());
        assert!(dir.join("summary.json").exists());
    }
}
