//! `runner exec` as its user meets it: finished runs are not trained again,
//! a killed run resumes and ends as if uninterrupted, a failing run does not
//! stop the others, two processes never train one run twice, runs trained
//! in parallel worker processes with `--threads` end bitwise as in one process, a killed
//! worker and Ctrl-C are recorded (Ctrl-C leaves the runs whose turn had
//! not come unstarted), `runner plan` shows every run's state,
//! and a full disk or a read-only store stop with a clear error and lose no
//! finished run.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{text, tiny_experiment};

/// The tests train for real: one at a time, so two cores suffice.
static TURN: Mutex<()> = Mutex::new(());

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
        std::fs::write(&path, tiny_experiment(name, epochs, extra)).unwrap();
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

    /// The run folders of an experiment in a store (those holding a
    /// `config.json`: not `tensorboard/`).
    fn run_dirs(&self, store: &str, experiment: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.dir.join(store).join(experiment))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("config.json").is_file())
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

/// The words of `text`, with miette's wrapping and margins undone.
fn words(text: &str) -> String {
    text.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each run's id by its `variant` label (from `runner plan --json`).
fn ids_by_variant(work: &Work, file: &str) -> HashMap<String, String> {
    let output = work.run(&["plan", file, "--json"], "runs");
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let variant = run["labels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|pair| pair[0] == "variant")
                .map(|pair| pair[1].as_str().unwrap().to_owned())
                .unwrap();
            (variant, run["id"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The status column of the run `id` in `runner plan`'s table.
fn plan_status(plan: &str, id: &str) -> String {
    let row = plan
        .lines()
        .find(|line| line.contains(&id[..8]))
        .unwrap_or_else(|| panic!("no row for {id}: {plan}"));
    let cells: Vec<&str> = row.split('│').map(str::trim).filter(|c| !c.is_empty()).collect();
    cells.last().unwrap().to_string()
}

/// Waits until `done` holds, for at most two minutes.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose parent is `pid` (read from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let child: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
}

/// Sends `signal` (`INT`, `KILL`) to `pid` through the shell's `kill`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -s {signal} {pid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} {pid}");
}

/// Runs `script` with `sh` in a private mount namespace (`unshare -m`), so
/// it can mount a small tmpfs or a read-only bind mount that nobody else
/// sees. Fails when the namespace cannot be made: these tests must not pass
/// without testing anything.
fn in_mount_namespace(work: &Work, script: &str) -> Output {
    let probe = Command::new("unshare").args(["-m", "true"]).output();
    match &probe {
        Ok(output) if output.status.success() => {}
        _ => panic!(
            "`unshare -m` is needed to make a full disk or a read-only store for this test (run as root, or \
             where user namespaces are allowed): {probe:?}"
        ),
    }
    Command::new("unshare")
        .args(["-m", "sh", "-euc", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("R", env!("CARGO_BIN_EXE_runner"))
        .env("W", &work.dir)
        .env("NO_COLOR", "1")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
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

    // The run's config.kdl is an experiment file for it alone: same id, and
    // `runner plan` finds it done in the same store.
    let run_dir = &work.run_dirs("runs", "twice")[0];
    let config = run_dir.join("config.kdl");
    let config = config.to_str().unwrap();
    let json = work.run(&["plan", config, "--json"], "runs");
    assert!(json.status.success(), "{}", text(&json));
    let planned: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let id = run_dir.file_name().unwrap().to_str().unwrap();
    assert_eq!(planned["experiment"], "twice");
    assert_eq!(planned["runs"].as_array().unwrap().len(), 1);
    assert_eq!(planned["runs"][0]["id"], id);
    assert!(text(&work.run(&["plan", config], "runs")).contains("(1 done)"));
}

#[test]
fn a_killed_run_resumes_and_ends_like_an_uninterrupted_one() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("kill");
    let file = work.experiment("kill", 4, "");
    let file = file.to_str().unwrap();

    let straight = work.run(&["exec", file], "straight");
    assert!(straight.status.success(), "{}", text(&straight));

    let run_dir = kill_after_first_checkpoint(&work, file, "killed", "kill");
    let resumed = work.run(&["exec", file], "killed");
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("1 resumed"), "{}", text(&resumed));

    // Bitwise: the same thread count, the same data order, the same dropout.
    let expected = summary_metrics(&work.run_dirs("straight", "kill")[0]);
    assert_eq!(summary_metrics(&run_dir), expected);
}

/// Starts `runner exec file` into `store`, SIGKILLs it once its one run
/// has a checkpoint, and returns that run's folder, checked unfinished and
/// shown `partial` by `runner plan`.
fn kill_after_first_checkpoint(work: &Work, file: &str, store: &str, experiment: &str) -> PathBuf {
    let mut child = work.command(&["exec", file], store).spawn().unwrap();
    let started = Instant::now();
    let position = loop {
        // The experiment's folder holds `tensorboard/` beside the run's.
        let found = std::fs::read_dir(work.dir.join(store).join(experiment))
            .ok()
            .and_then(|mut dirs| {
                dirs.find_map(|d| Some(d.ok()?.path().join("checkpoint/position.json")).filter(|p| p.exists()))
            });
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

    // The worker process dies with its parent, moments later.
    let started = Instant::now();
    let plan = loop {
        let plan = work.run(&["plan", file], store);
        if !text(&plan).contains("running") || started.elapsed() > Duration::from_secs(10) {
            break plan;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(text(&plan).contains("partial"), "{}", text(&plan));
    run_dir
}

/// Epoch records without their wall-clock `seconds`.
fn without_seconds(epochs: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut epochs = epochs.as_array().unwrap().clone();
    for epoch in &mut epochs {
        epoch.as_object_mut().unwrap().remove("seconds");
    }
    epochs
}

fn summary_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn early_stopping_keeps_the_best_weights_and_a_killed_run_resumes_to_the_same_result() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("early");
    // No later evaluation can beat the first by 1000: epoch 1 is the best,
    // and training stops after the two evaluations of patience, at epoch 3 of 8.
    let rule = "train { early-stop metric=val-dist patience=2 min-delta=1000 }";
    let file = work.experiment("early", 8, rule);
    let file = file.to_str().unwrap();
    let straight = work.run(&["exec", file], "straight");
    assert!(straight.status.success(), "{}", text(&straight));
    let dir = &work.run_dirs("straight", "early")[0];
    let summary = summary_json(dir);
    let epochs = summary["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3, "{summary:#}");
    assert_eq!(summary["best"]["epoch"], 1);
    assert_eq!(summary["best"]["metric"], "val-dist");
    assert_eq!(summary["best"]["stopped_early"], true);
    assert_eq!(summary["best"]["value"], epochs[0]["val"]["dist"]);
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
    assert!(
        log.contains("early stop after epoch 3: val-dist has not improved on epoch 1's"),
        "{log}"
    );
    let checkpoint = dir.join("checkpoint");
    let best = std::fs::read(checkpoint.join("best-model.safetensors")).unwrap();
    assert_ne!(
        best,
        std::fs::read(checkpoint.join("model.safetensors")).unwrap(),
        "best is not the last"
    );

    // The test split is evaluated with epoch 1's weights: those of a run
    // that trains one epoch (the same data order, dropout and noam rates).
    let one = work.experiment("one", 1, "");
    let one_epoch = work.run(&["exec", one.to_str().unwrap()], "one");
    assert!(one_epoch.status.success(), "{}", text(&one_epoch));
    let one_summary = summary_json(&work.run_dirs("one", "one")[0]);
    assert_eq!(
        without_seconds(&one_summary["epochs"])[0],
        without_seconds(&summary["epochs"])[0]
    );
    assert_eq!(one_summary["test"], summary["test"]);
    assert_eq!(
        std::fs::read(work.run_dirs("one", "one")[0].join("checkpoint/model.safetensors")).unwrap(),
        best
    );

    // The report uses the best evaluation and says so.
    let report = work.run(&["report", file], "straight");
    assert!(report.status.success(), "{}", text(&report));
    let markdown = std::fs::read_to_string(work.dir.join("straight/early/report.md")).unwrap();
    assert!(
        markdown.contains("the values of 1 run are those of its best evaluation"),
        "{markdown}"
    );
    assert!(markdown.contains("best: epoch 1 (val-dist"), "{markdown}");

    // Killed after its first checkpoint, it resumes to the same result.
    let run_dir = kill_after_first_checkpoint(&work, file, "killed", "early");
    let resumed = work.run(&["exec", file], "killed");
    assert!(resumed.status.success(), "{}", text(&resumed));
    let again = summary_json(&run_dir);
    assert_eq!(without_seconds(&again["epochs"]), without_seconds(&summary["epochs"]));
    assert_eq!(again["best"], summary["best"]);
    assert_eq!(again["test"], summary["test"]);
    assert_eq!(
        std::fs::read(run_dir.join("checkpoint/best-model.safetensors")).unwrap(),
        best
    );
}

#[test]
fn an_unusable_checkpoint_is_reported_damaged_with_the_remedy_and_force_starts_it_over() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("checkpoint");
    let file = work.experiment("checkpoint", 1, "");
    let file = file.to_str().unwrap();
    let first = work.run(&["exec", file], "runs");
    assert!(first.status.success(), "{}", text(&first));
    // Make it an unfinished run whose checkpoint cannot be read, as one
    // saved by a runner with another model layout (or a damaged file) is.
    let dir = &work.run_dirs("runs", "checkpoint")[0];
    let id = dir.file_name().unwrap().to_str().unwrap().to_owned();
    for name in ["summary.json", "status.json"] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("checkpoint/model.safetensors"), b"not a safetensors file").unwrap();

    let output = work.run(&["exec", file], "runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = words(&text(&output));
    assert!(out.contains("DAMAGED: its checkpoint cannot be resumed from"), "{out}");
    assert!(
        out.contains("model.safetensors has 22 bytes, its manifest says"),
        "names what does not match: {out}"
    );
    assert!(
        out.contains(&format!("`runner exec FILE --force --only {}`", &id[..8])),
        "{out}"
    );
    assert_eq!(plan_status(&text(&work.run(&["plan", file], "runs")), &id), "damaged");

    let again = work.run(&["exec", file, "--force", "--only", &id], "runs");
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("1 trained"), "{}", text(&again));
    assert!(dir.join("summary.json").exists());
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
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
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

#[test]
fn two_jobs_on_the_cpu_train_each_run_once_and_end_as_one_job_does() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("jobs");
    let file = work.experiment("jobs", 1, "repeats 4");
    let file = file.to_str().unwrap();

    let dry = text(&work.run(&["exec", file, "--device", "cpu", "--dry-run"], "two"));
    assert!(
        dry.contains("4 of 4 runs selected; 1 at a time"),
        "one job on the CPU by default: {dry}"
    );
    let dry = text(&work.run(&["exec", file, "--jobs", "2", "--dry-run"], "two"));
    assert!(dry.contains("2 at a time"), "{dry}");

    // CPU results depend on the thread count; --threads fixes it whatever --jobs says.
    let one = work.run(
        &["exec", file, "--jobs", "1", "--threads", "1", "--device", "cpu"],
        "one",
    );
    assert!(one.status.success(), "{}", text(&one));
    let two = work.run(
        &["exec", file, "--jobs", "2", "--threads", "1", "--device", "cpu"],
        "two",
    );
    assert!(two.status.success(), "{}", text(&two));
    assert!(text(&two).contains("4 trained, 0 resumed, 0 skipped"), "{}", text(&two));

    let dirs = work.run_dirs("two", "jobs");
    assert_eq!(dirs.len(), 4);
    for dir in dirs {
        let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
        assert_eq!(log.matches("starting").count(), 1, "{}: {log}", dir.display());
        // Across the process boundary, every run ends exactly as in one process.
        let alone = work.dir.join("one/jobs").join(dir.file_name().unwrap());
        assert_eq!(summary_metrics(&alone), summary_metrics(&dir), "{}", dir.display());
    }
}

#[test]
fn workers_that_fail_are_killed_or_stopped_are_recorded_and_plan_shows_every_state() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("states");
    let variants = r#"
        variant good { seed 1 }
        variant broken { dataset { source midi-dir path="no-such-folder" } }
        variant victim { seed 2; train { epochs 3 } }
        variant stopped { seed 3; train { epochs 3 } }
        variant untouched { seed 4 }
    "#;
    let file = work.experiment("states", 1, variants);
    let file = file.to_str().unwrap();
    let ids = ids_by_variant(&work, file);
    let dir = |variant: &str| work.dir.join("runs/states").join(&ids[variant]);

    // A worker trains one run while the other's fails; the failure is recorded.
    let first = work.run(
        &["exec", file, "--jobs", "2", "--only", "good", "--only", "broken"],
        "runs",
    );
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(text(&first).contains("1 trained, 0 resumed, 0 skipped, 0 busy, 0 interrupted, 1 failed"));
    let status = std::fs::read_to_string(dir("broken").join("status.json")).unwrap();
    assert!(status.contains("no-such-folder"), "{status}");

    // Two runs in two workers: one worker is killed, then Ctrl-C stops the other.
    let parent = work
        .command(
            &["exec", file, "--jobs", "2", "--only", "victim", "--only", "stopped"],
            "runs",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("both runs' first checkpoint", || {
        ["victim", "stopped"]
            .iter()
            .all(|v| dir(v).join("checkpoint/position.json").exists())
    });
    let workers = children_of(parent.id());
    assert_eq!(workers.len(), 2, "one worker process per run: {workers:?}");
    signal(workers[0], "KILL");
    let failed = || {
        ["victim", "stopped"]
            .into_iter()
            .find(|v| std::fs::read_to_string(dir(v).join("status.json")).is_ok_and(|s| s.contains("failed")))
    };
    wait_until("the killed worker's run to be recorded as failed", || {
        failed().is_some()
    });
    signal(parent.id(), "INT");
    let stopped = parent.wait_with_output().unwrap();
    let out = text(&stopped);
    assert_eq!(stopped.status.code(), Some(1), "{out}");
    assert!(
        out.contains("0 trained, 0 resumed, 0 skipped, 0 busy, 1 interrupted, 1 failed"),
        "{out}"
    );
    assert!(out.contains("the worker process was killed (SIGKILL"), "{out}");
    let killed = failed().unwrap();
    let interrupted = if killed == "victim" { "stopped" } else { "victim" };
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir(killed).join("status.json")).unwrap()).unwrap();
    assert!(status["reason"].as_str().unwrap().contains("killed"), "{status}");
    assert!(!status["log_tail"].as_array().unwrap().is_empty(), "{status}");
    let status = std::fs::read_to_string(dir(interrupted).join("status.json")).unwrap();
    assert!(status.contains("interrupted"), "the stop reached the worker: {status}");
    for variant in ["victim", "stopped"] {
        assert!(
            !dir(variant).join("summary.json").exists(),
            "stopped too late to test anything"
        );
    }

    let plan = text(&work.run(&["plan", file], "runs"));
    for (variant, expected) in [
        ("good", "done"),
        ("broken", "failed"),
        (killed, "failed"),
        (interrupted, "partial"),
        ("untouched", "pending"),
    ] {
        assert_eq!(plan_status(&plan, &ids[variant]), expected, "{variant}: {plan}");
    }

    // Both resume from their checkpoints, in workers again.
    let again = work.run(
        &["exec", file, "--jobs", "2", "--only", "victim", "--only", "stopped"],
        "runs",
    );
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("0 trained, 2 resumed"), "{}", text(&again));
    let plan = text(&work.run(&["plan", file], "runs"));
    for (variant, expected) in [
        ("good", "done"),
        ("broken", "failed"),
        ("victim", "done"),
        ("stopped", "done"),
        ("untouched", "pending"),
    ] {
        assert_eq!(plan_status(&plan, &ids[variant]), expected, "{variant}: {plan}");
    }
}

/// Ctrl-C during a sequential exec interrupts the run in progress only: the
/// runs whose turn had not come are not started, in the closing table, in
/// the store and in `runner plan`.
#[test]
fn ctrl_c_or_sigterm_interrupts_the_run_in_progress_and_leaves_later_runs_not_started() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // SIGINT is Ctrl-C; SIGTERM is what scancel, preemption and most schedulers send.
    for sig in ["INT", "TERM"] {
        interrupted_by(sig);
    }
}

fn interrupted_by(sig: &str) {
    let work = Work::new(&format!("sig-{sig}"));
    let variants = "variant first { seed 1 }\nvariant second { seed 2 }\nvariant third { seed 3 }";
    let file = work.experiment("ctrlc", 3, variants);
    let file = file.to_str().unwrap();
    let ids = ids_by_variant(&work, file);
    let dir = |variant: &str| work.dir.join("runs/ctrlc").join(&ids[variant]);

    let exec = work
        .command(&["exec", file, "--jobs", "1"], "runs")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpointed = || {
        ["first", "second", "third"]
            .into_iter()
            .find(|v| dir(v).join("checkpoint/position.json").exists())
    };
    wait_until("the first run's first checkpoint", || checkpointed().is_some());
    signal(exec.id(), sig);
    let stopped = exec.wait_with_output().unwrap();
    let out = text(&stopped);
    assert_eq!(stopped.status.code(), Some(1), "{out}");
    let interrupted = checkpointed().unwrap();
    assert!(
        !dir(interrupted).join("summary.json").exists(),
        "stopped too late to test anything: {out}"
    );
    assert!(
        out.contains("0 trained, 0 resumed, 0 skipped, 0 busy, 1 interrupted, 0 failed, 2 not started"),
        "{out}"
    );
    assert!(
        words(&out).contains("0 runs failed, 1 interrupted, 2 not started"),
        "{out}"
    );
    let status = std::fs::read_to_string(dir(interrupted).join("status.json")).unwrap();
    assert!(status.contains("interrupted"), "{status}");

    let plan = text(&work.run(&["plan", file], "runs"));
    assert_eq!(plan_status(&plan, &ids[interrupted]), "partial", "{plan}");
    for variant in ["first", "second", "third"].into_iter().filter(|v| *v != interrupted) {
        let row = out
            .lines()
            .find(|line| line.contains(&ids[variant][..8]) && line.contains('│'))
            .unwrap_or_else(|| panic!("no row for {variant}: {out}"));
        let cells: Vec<&str> = row.split('│').map(str::trim).collect();
        assert!(
            cells.contains(&"not started (stopped)") && cells.contains(&"-"),
            "{variant}: {out}"
        );
        assert!(!dir(variant).join("status.json").exists(), "{variant} was touched");
        assert_eq!(plan_status(&plan, &ids[variant]), "pending", "{variant}: {plan}");
    }
}

#[test]
fn a_full_disk_stops_with_a_clear_error_keeps_finished_runs_and_resumes_later() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("full");
    let variants = "variant first { seed 1 }\nvariant second { seed 2; train { epochs 3 } }";
    let file = work.experiment("full", 1, variants);
    let ids = ids_by_variant(&work, file.to_str().unwrap());
    // The store is a 64 MiB tmpfs; once `second` has its first checkpoint,
    // a file fills the tmpfs up. What the store holds then is copied out.
    let script = r#"
        mkdir -p "$W/store"
        mount -t tmpfs -o size=64m tmpfs "$W/store"
        "$R" exec "$W/full.kdl" --store "$W/store" --only first > "$W/first.txt" 2>&1
        set +e
        "$R" exec "$W/full.kdl" --store "$W/store" --only second > "$W/full.txt" 2>&1 &
        pid=$!
        n=0
        while [ "$(ls "$W"/store/full/*/checkpoint/position.json 2>/dev/null | wc -l)" -lt 2 ]; do
            sleep 0.02; n=$((n + 1)); [ $n -lt 6000 ] || exit 90
        done
        dd if=/dev/zero of="$W/store/filler" bs=1M 2> /dev/null
        wait $pid
        echo $? > "$W/full.rc"
        set -e
        "$R" plan "$W/full.kdl" --store "$W/store" > "$W/plan.txt" 2>&1
        "$R" report "$W/full.kdl" --store "$W/store" > "$W/report.txt" 2>&1 && exit 91
        rm "$W/store/filler"
        cp -a "$W/store/full" "$W/after-full"
        "$R" exec "$W/full.kdl" --store "$W/store" > "$W/again.txt" 2>&1
        "$R" plan "$W/full.kdl" --store "$W/store" > "$W/plan-again.txt" 2>&1
    "#;
    let output = in_mount_namespace(&work, script);
    let read = |name: &str| std::fs::read_to_string(work.dir.join(name)).unwrap_or_default();
    assert!(
        output.status.success(),
        "{}\nfirst: {}\nfull: {}\nagain: {}",
        text(&output),
        read("first.txt"),
        read("full.txt"),
        read("again.txt")
    );

    let full = read("full.txt");
    assert_eq!(read("full.rc").trim(), "1", "{full}");
    let second = work.dir.join("store/full").join(&ids["second"]);
    assert!(
        words(&full).contains("the runs store cannot be written: no space left on device"),
        "{full}"
    );
    assert!(full.contains(&second.display().to_string()), "names the path: {full}");
    assert!(
        words(&full).contains("free space on the disk"),
        "says what to do: {full}"
    );

    let report = words(&read("report.txt"));
    assert!(
        report.contains("the runs store cannot be written: no space left on device")
            && report.contains("free space on the disk"),
        "the report says what exec says: {report}"
    );

    let after = work.dir.join("after-full");
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(after.join(&ids["first"]).join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        first["epochs"].as_array().unwrap().len(),
        1,
        "the finished run is kept whole"
    );
    let second = after.join(&ids["second"]);
    assert!(
        !second.join("summary.json").exists(),
        "no summary for an unfinished run"
    );
    assert!(second.join("checkpoint/position.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&second)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let plan = read("plan.txt");
    assert_eq!(plan_status(&plan, &ids["first"]), "done", "{plan}");
    assert_eq!(plan_status(&plan, &ids["second"]), "partial", "resumable: {plan}");

    let again = read("again.txt");
    assert!(again.contains("0 trained, 1 resumed, 1 skipped"), "{again}");
    assert!(
        read("plan-again.txt").contains("(2 done)"),
        "{}",
        read("plan-again.txt")
    );
}

#[test]
fn a_read_only_store_stops_with_a_clear_error_and_changes_nothing() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("readonly");
    let variants = "variant first { seed 1 }\nvariant second { seed 2 }\nvariant third { seed 3 }";
    let file = work.experiment("readonly", 1, variants);
    let file = file.to_str().unwrap();
    let ids = ids_by_variant(&work, file);
    let first = work.run(&["exec", file, "--only", "first"], "runs");
    assert!(first.status.success(), "{}", text(&first));
    let summary = work.dir.join("runs/readonly").join(&ids["first"]).join("summary.json");
    let before = std::fs::read(&summary).unwrap();

    let script = r#"
        mount --bind "$W/runs" "$W/runs"
        mount -o remount,bind,ro "$W/runs"
        set +e
        "$R" exec "$W/readonly.kdl" --store "$W/runs" > "$W/one.txt" 2>&1
        echo $? > "$W/one.rc"
        "$R" exec "$W/readonly.kdl" --store "$W/runs" --jobs 2 > "$W/two.txt" 2>&1
        echo $? > "$W/two.rc"
    "#;
    let output = in_mount_namespace(&work, script);
    assert!(output.status.success(), "{}", text(&output));
    let read = |name: &str| std::fs::read_to_string(work.dir.join(name)).unwrap();
    for (out, rc) in [("one.txt", "one.rc"), ("two.txt", "two.rc")] {
        let out = read(out);
        assert_eq!(read(rc).trim(), "1", "{out}");
        assert!(
            words(&out).contains("the runs store cannot be written: read-only file system"),
            "{out}"
        );
        assert!(
            out.contains(&work.dir.join("runs/readonly").display().to_string()),
            "{out}"
        );
        assert!(words(&out).contains("remount the file system"), "{out}");
        assert!(out.contains("1 skipped"), "{out}");
    }
    assert!(read("one.txt").contains("1 not started"), "{}", read("one.txt"));
    assert_eq!(
        std::fs::read(&summary).unwrap(),
        before,
        "the finished run is untouched"
    );
    assert_eq!(work.run_dirs("runs", "readonly").len(), 1, "nothing else was written");
}

/// A finished run whose files were damaged afterwards (summary.json cut in
/// half, a row added to metrics.csv) is reported as damaged, with the
/// remedy, by exec, plan and report; never skipped or dropped in silence.
#[test]
fn a_damaged_finished_run_is_reported_everywhere_with_the_remedy() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("damaged");
    let file = work.experiment("damaged", 1, "variant first { seed 1 }\nvariant second { seed 2 }");
    let file = file.to_str().unwrap();
    let ids = ids_by_variant(&work, file);
    let trained = work.run(&["exec", file], "runs");
    assert!(trained.status.success(), "{}", text(&trained));
    let dir = |variant: &str| work.dir.join("runs/damaged").join(&ids[variant]);

    let metrics = dir("first").join("metrics.csv");
    let mut rows = std::fs::read_to_string(&metrics).unwrap();
    rows.push_str("2,99,NaN,NaN,,,NaN,NaN,NaN,,,,1.000\n");
    std::fs::write(&metrics, rows).unwrap();
    let summary = dir("second").join("summary.json");
    let whole = std::fs::read(&summary).unwrap();
    std::fs::write(&summary, &whole[..whole.len() / 2]).unwrap();

    let exec = work.run(&["exec", file], "runs");
    assert_eq!(exec.status.code(), Some(1), "{}", text(&exec));
    let out = words(&text(&exec));
    assert!(
        out.contains("DAMAGED: metrics.csv holds 2 epochs, summary.json 1"),
        "{out}"
    );
    assert!(out.contains("DAMAGED: summary.json is corrupt"), "{out}");
    for variant in ["first", "second"] {
        let remedy = format!(
            "`runner exec FILE --force --only {}` trains it again",
            &ids[variant][..8]
        );
        assert!(out.contains(&remedy), "{out}");
    }
    let plan = text(&work.run(&["plan", file], "runs"));
    for variant in ["first", "second"] {
        assert_eq!(plan_status(&plan, &ids[variant]), "damaged", "{plan}");
    }
    let report = work.run(&["report", file], "runs");
    assert!(!report.status.success(), "no run is left to report: {}", text(&report));

    // Trained again, the first is whole; the report shows the second as damaged.
    let again = work.run(&["exec", file, "--force", "--only", &ids["first"]], "runs");
    assert!(again.status.success(), "{}", text(&again));
    let report = work.run(&["report", file], "runs");
    assert!(report.status.success(), "{}", text(&report));
    assert!(
        words(&text(&report)).contains(&format!(
            "warning: run {} is damaged and left out: summary.json is corrupt",
            &ids["second"][..8]
        )),
        "{}",
        text(&report)
    );
    let markdown = std::fs::read_to_string(work.dir.join("runs/damaged/report.md")).unwrap();
    let row = markdown
        .lines()
        .find(|l| l.contains(&ids["second"][..8]))
        .unwrap_or_default();
    assert!(
        row.contains("damaged") && row.contains("summary.json is corrupt"),
        "{markdown}"
    );
}
