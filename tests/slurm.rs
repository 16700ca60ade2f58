//! `runner exec --backend slurm` against a real Slurm: each test starts a
//! single-node cluster (see `slurm_support`), submits a tiny CPU matrix,
//! waits for the collation job, and checks the runs store, the report and
//! `runner status`. They fail, not skip, when Slurm is not installed. The
//! last tests need no cluster: what the commands say without Slurm.

mod slurm_support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use slurm_support::{Cluster, PATIENCE, find_files, job_ids, text};

/// The run folders (named by their 16-hex-digit id) of an experiment in the store.
fn run_dirs(store: &Path, experiment: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join(experiment))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.is_dir() && name.len() == 16 && name.chars().all(|c| c.is_ascii_hexdigit())
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn a_matrix_submitted_twice_trains_every_run_once_and_is_collated() {
    let cluster = Cluster::start("matrix");
    let file = cluster.experiment("sweep", 1, "repeats 2\nmatrix { axis model.d-model 8 16 }");
    let started = Instant::now();
    // Twice, at once: the second array's tasks find each run locked or done.
    let first = cluster.runner(&["exec", &file, "--backend", "slurm", "--max-parallel", "2"]);
    assert!(first.status.success(), "{}\n{}", text(&first), cluster.diagnostics());
    let second = cluster.runner(&["exec", &file, "--backend", "slurm", "--max-parallel", "2"]);
    assert!(second.status.success(), "{}\n{}", text(&second), cluster.diagnostics());
    assert!(text(&first).contains("submitted 4 runs of sweep"), "{}", text(&first));
    assert!(text(&first).contains("runner status"), "{}", text(&first));
    let (_, first_report) = job_ids(&first);
    let (_, second_report) = job_ids(&second);
    // Edited after submitting: the collation reports the submitted plan.
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        original.replace("axis model.d-model 8 16", "axis model.d-model 8 32"),
    )
    .unwrap();
    let state = cluster.wait_for_job(&first_report);
    assert_eq!(state, "COMPLETED", "{}", cluster.diagnostics());
    let state = cluster.wait_for_job(&second_report);
    assert_eq!(state, "COMPLETED", "{}", cluster.diagnostics());
    eprintln!("two submissions of 4 runs, collated, in {:.1?}", started.elapsed());

    let dirs = run_dirs(&cluster.store(), "sweep");
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    for dir in &dirs {
        let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
        assert_eq!(log.matches("starting").count(), 1, "{}: {log}", dir.display());
        assert!(dir.join("summary.json").exists(), "{}", cluster.diagnostics());
    }
    let report = std::fs::read_to_string(cluster.store().join("sweep/report.md"))
        .unwrap_or_else(|e| panic!("no report ({e}): {}", cluster.diagnostics()));
    assert!(report.contains("4 planned, 4 finished"), "{report}");
    std::fs::write(&file, original).unwrap();
    let report_log = std::fs::read_to_string(cluster.store().join("sweep/slurm/1/logs/report.out")).unwrap();
    assert!(report_log.contains("report: "), "{report_log}");

    let status = cluster.runner(&["status", &file]);
    let status = text(&status);
    assert!(status.contains("4 runs: 4 done"), "{status}");
    assert!(
        !status.contains("follow with"),
        "nothing left to follow once every job ended: {status}"
    );
    // The second array's four tasks found their runs locked or done, and ended well.
    assert_eq!(status.matches("#2: ").count(), 4, "{status}");
    assert_eq!(
        status.matches(" COMPLETED on ").count(),
        5,
        "four tasks and the collation: {status}"
    );
    assert!(
        status.contains(&format!("collation job {second_report} COMPLETED")),
        "{status}"
    );

    let third = cluster.runner(&["exec", &file, "--backend", "slurm"]);
    assert!(text(&third).contains("nothing to submit"), "{}", text(&third));
}

#[test]
fn a_failing_task_is_recorded_and_the_report_is_still_written() {
    let cluster = Cluster::start("fail");
    let variants = r#"
        variant good { seed 1 }
        variant broken { dataset { source midi-dir path="no-such-folder" } }
    "#;
    let file = cluster.experiment("fail", 1, variants);
    let submitted = cluster.runner(&["exec", &file, "--backend", "slurm"]);
    assert!(
        submitted.status.success(),
        "{}\n{}",
        text(&submitted),
        cluster.diagnostics()
    );
    let (array, report) = job_ids(&submitted);
    assert_eq!(cluster.wait_for_job(&report), "COMPLETED", "{}", cluster.diagnostics());
    assert!(
        cluster.store().join("fail/report.md").exists(),
        "{}",
        cluster.diagnostics()
    );

    let status = text(&cluster.runner(&["status", &file]));
    assert!(status.contains("2 runs: 1 done, 1 failed"), "{status}");
    assert!(status.contains("no-such-folder"), "the reason is shown: {status}");
    assert!(
        status.contains(&format!("{array}_1 FAILED")) || status.contains(&format!("{array}_0 FAILED")),
        "{status}"
    );
    let task_logs = find_files(&cluster.store().join("fail/slurm/1/logs"), "out");
    assert_eq!(task_logs.len(), 3, "two tasks and the collation: {task_logs:?}");
}

#[test]
fn a_task_killed_by_slurm_resumes_from_its_checkpoint() {
    let cluster = Cluster::start("kill");
    let file = cluster.experiment("kill", 5, "");
    let submitted = cluster.runner(&["exec", &file, "--backend", "slurm"]);
    assert!(
        submitted.status.success(),
        "{}\n{}",
        text(&submitted),
        cluster.diagnostics()
    );
    let (array, report) = job_ids(&submitted);
    let runs = cluster.store().join("kill");
    cluster.wait("a checkpoint", PATIENCE, || {
        find_files(&runs, "json")
            .iter()
            .any(|p| p.ends_with("checkpoint/position.json"))
    });
    let cancel = cluster.slurm("scancel", &[&array]);
    assert!(cancel.status.success(), "{}", text(&cancel));
    // No run finished, so the collation job fails; it runs all the same.
    cluster.wait_for_job(&report);
    let dir = &run_dirs(&cluster.store(), "kill")[0];
    assert!(
        !dir.join("summary.json").exists(),
        "cancelled too late to test anything"
    );

    let status = text(&cluster.runner(&["status", &file]));
    assert!(status.contains("partial"), "{status}");
    assert!(status.contains("stopped by Slurm (CANCELLED)"), "{status}");

    let resumed = cluster.runner(&["exec", &file]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("1 resumed"), "{}", text(&resumed));
}

/// An experiment in a scratch folder, for the tests that need no cluster.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> (Scratch, String) {
        let dir = std::env::temp_dir().join(format!("runner-slurm-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("two.kdl");
        std::fs::write(&file, "experiment two {\n    repeats 2\n}\n").unwrap();
        let file = file.display().to_string();
        (Scratch(dir), file)
    }

    /// `runner ARGS --store STORE` with only `path` on PATH.
    fn runner(&self, args: &[&str], path: &str) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
            .args(args)
            .arg("--store")
            .arg(self.0.join("runs"))
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn without_slurm_status_shows_the_store_and_submitting_says_what_is_missing() {
    let (scratch, file) = Scratch::new("missing");
    let nowhere = scratch.0.join("empty-path").display().to_string();

    let status = scratch.runner(&["status", &file], &nowhere);
    assert!(status.status.success(), "{}", text(&status));
    let out = text(&status);
    assert!(out.contains("2 runs: 2 pending") && !out.contains("squeue"), "{out}");

    let dry = scratch.runner(&["exec", &file, "--backend", "slurm", "--dry-run"], &nowhere);
    let out = text(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(out.contains("2 of 2 runs would be submitted to Slurm"), "{out}");

    let submit = scratch.runner(&["exec", &file, "--backend", "slurm"], &nowhere);
    let out = text(&submit);
    assert_eq!(submit.status.code(), Some(1), "{out}");
    assert!(out.contains("`sbatch` could not be started"), "{out}");
    let submissions = scratch.0.join("runs/two/slurm");
    let left: Vec<_> = std::fs::read_dir(&submissions).unwrap().collect();
    assert!(left.is_empty(), "a refused submission leaves no folder: {left:?}");
}

#[test]
fn slurm_options_need_the_slurm_backend() {
    let (scratch, file) = Scratch::new("options");
    let output = scratch.runner(&["exec", &file, "--partition", "gpu"], "/usr/bin:/bin");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = text(&output);
    assert!(out.contains("--partition is an option of the Slurm backend"), "{out}");
    assert!(!scratch.0.join("runs/two").exists(), "nothing trained: {out}");
}
