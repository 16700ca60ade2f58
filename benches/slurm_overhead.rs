//! The time the Slurm path adds: a tiny 4-run CPU matrix (2 d-models x 2
//! seeds, 1 epoch each), trained and collated by local `runner exec` +
//! `runner report`, then by `runner exec --backend slurm` on a real
//! single-node Slurm started for the purpose (as the tests do; needs Slurm
//! installed and root), from the command until the collation job has ended.
//! Each path gets a fresh store (so each builds the dataset cache once) and
//! one libtorch thread per run; Slurm runs once one task at a time (the
//! difference to local is the overhead) and once two at a time (this
//! machine's cores). Three rounds; every time is printed (docs/perf.md).
//!
//! Run with `cargo bench --bench slurm_overhead`.

#[path = "../tests/slurm_support/mod.rs"]
mod slurm_support;

use std::time::Instant;

use slurm_support::{Cluster, job_ids, text};

fn main() {
    let cluster = Cluster::start("bench");
    let file = cluster.experiment("sweep", 1, "repeats 2\nmatrix { axis model.d-model 8 16 }");
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("local", vec![]),
        ("slurm, 1 at a time", vec![]),
        ("slurm, 2 at a time", vec![]),
    ];
    for round in 0..3 {
        let store = cluster.work().join(format!("local-{round}"));
        let start = Instant::now();
        let exec = cluster.runner_with_store(&["exec", &file], &store);
        assert!(exec.status.success(), "{}", text(&exec));
        let report = cluster.runner_with_store(&["report", &file], &store);
        assert!(report.status.success(), "{}", text(&report));
        rows[0].1.push(start.elapsed().as_secs_f64());

        for (row, parallel) in [(1, "1"), (2, "2")] {
            let store = cluster.work().join(format!("slurm-{parallel}-{round}"));
            let start = Instant::now();
            let args = ["exec", &file, "--backend", "slurm", "--max-parallel", parallel];
            let submitted = cluster.runner_with_store(&args, &store);
            assert!(submitted.status.success(), "{}", text(&submitted));
            let submit_s = start.elapsed().as_secs_f64();
            let (_, collation) = job_ids(&submitted);
            let state = cluster.wait_for_job(&collation);
            assert_eq!(state, "COMPLETED", "{}", cluster.diagnostics());
            assert!(store.join("sweep/report.md").exists());
            let total = start.elapsed().as_secs_f64();
            println!("round {round}: slurm, {parallel} at a time: {total:.2} s (submission {submit_s:.2} s)");
            rows[row].1.push(total);
        }
        println!("round {round}: local: {:.2} s", rows[0].1[round]);
    }
    let median = |times: &[f64]| {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let local = median(&rows[0].1);
    for (name, times) in &rows {
        let all: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "{name:>20}: median {:.2} s ({}), {:+.2} s vs local",
            median(times),
            all.join(", "),
            median(times) - local
        );
    }
}
