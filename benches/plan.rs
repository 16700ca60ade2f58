//! Planning speed: load and expand a 10,000-run matrix (four axes of ten
//! values) and report the time. Goal: under 1 second (docs/perf.md).
//!
//! Run with `cargo bench --bench plan`.

use std::time::Instant;

fn main() {
    let text = "experiment big {
    matrix {
        axis model.d-model 64 128 192 256 320 384 448 512 576 640
        axis model.dropout 0 0.05 0.1 0.15 0.2 0.25 0.3 0.35 0.4 0.45
        axis train.batch-size 8 16 24 32 40 48 56 64 72 80
        axis train.accumulate 1 2 3 4 5 6 7 8 9 10
    }
}
";
    let dir = std::env::temp_dir().join(format!("runner-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.kdl");
    std::fs::write(&path, text).unwrap();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let plan = runner_plan::load(&path).expect("plans");
        best = best.min(start.elapsed().as_secs_f64());
        runs = plan.runs.len();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("plan: {runs} runs in {:.1} ms (best of 5)", best * 1e3);
}
