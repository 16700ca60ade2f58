//! Sampled axes (`axis PATH log-uniform LO HI samples=N`, `uniform`,
//! `int-uniform`, `choice`): the values are drawn from the experiment's seed
//! and the axis's path, so two clean plans, in two processes, plan the same
//! runs; the values lie in their range, are distinct and rounded, and follow
//! their distribution.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use runner_plan as plan;
use runner_plan::Plan;

/// Writes `text` to a fresh file and returns its path.
fn write(text: &str) -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("runner-sampled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.kdl", CALLS.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).unwrap();
    path
}

fn plan_text(text: &str) -> Plan {
    let path = write(text);
    plan::load(&path).unwrap_or_else(|e| panic!("{text}\n{e:?}"))
}

/// An experiment whose matrix is `matrix` and whose seed is `seed`.
fn experiment(seed: u32, matrix: &str) -> String {
    format!(
        "experiment sampled {{\n    seed {seed}\n    schedule constant lr=1e-4\n    matrix {{\n{matrix}\n    }}\n}}\n"
    )
}

/// The labels of `axis` over the plan's runs, in run order, without repeats.
fn labels(plan: &Plan, axis: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for run in &plan.runs {
        let (_, label) = run
            .labels
            .iter()
            .find(|(a, _)| a == axis)
            .expect("the axis labels every run");
        if !seen.contains(label) {
            seen.push(label.clone());
        }
    }
    seen
}

fn numbers(labels: &[String]) -> Vec<f64> {
    labels.iter().map(|l| l.parse::<f64>().unwrap()).collect()
}

const SEARCH: &str = "        axis schedule.lr log-uniform 1e-5 1e-3 samples=4
        axis model.dropout uniform 0 0.3 samples=2 digits=2
        axis train.batch-size choice 16 32 64 samples=2";

#[test]
fn two_clean_plans_in_two_processes_plan_the_same_runs() {
    let path = write(&experiment(5, SEARCH));
    let runner = env!("CARGO_BIN_EXE_runner");
    let plan_in = |dir: &str| {
        let dir = std::env::temp_dir().join(format!("runner-sampled-{}-{dir}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(runner)
            .args(["plan", "--json"])
            .arg(&path)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let (first, second) = (plan_in("a"), plan_in("b"));
    assert_eq!(first, second);
    let planned = plan_text(&experiment(5, SEARCH));
    assert_eq!(planned.runs.len(), 4 * 2 * 2);
    let ids: Vec<&str> = planned.runs.iter().map(|r| r.id.as_str()).collect();
    let text = String::from_utf8(first).unwrap();
    assert!(ids.iter().all(|id| text.contains(id)), "{text}");
}

#[test]
fn the_drawn_values_are_the_known_ones() {
    // A known answer: the stream (SHA-256 of seed and path into PCG-64) and
    // the rounding are part of what a file means; a change to either would
    // silently re-plan every sampled experiment.
    let planned = plan_text(&experiment(5, SEARCH));
    assert_eq!(
        labels(&planned, "schedule.lr"),
        ["2.17e-5", "2.21e-5", "3.23e-5", "0.000313"]
    );
    assert_eq!(labels(&planned, "model.dropout"), ["0.073", "0.17"]);
    assert_eq!(labels(&planned, "train.batch-size"), ["32", "64"]);
}

#[test]
fn the_seed_changes_the_values_and_another_axis_leaves_them_alone() {
    let lr = |seed, matrix: &str| labels(&plan_text(&experiment(seed, matrix)), "schedule.lr");
    let alone = "        axis schedule.lr log-uniform 1e-5 1e-3 samples=4";
    assert_eq!(lr(5, alone), lr(5, SEARCH));
    assert_ne!(lr(5, alone), lr(6, alone));
}

#[test]
fn log_uniform_values_are_distinct_rounded_in_range_and_spread_over_decades() {
    let planned = plan_text(&experiment(
        0,
        "        axis schedule.lr log-uniform 1e-5 1e-1 samples=400 digits=4",
    ));
    let drawn = labels(&planned, "schedule.lr");
    assert_eq!(drawn.len(), 400);
    let values = numbers(&drawn);
    assert!(values.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    assert!(values.iter().all(|v| (1e-5..=1e-1).contains(v)));
    for v in &values {
        assert_eq!(
            format!("{:.3e}", v).parse::<f64>().unwrap(),
            *v,
            "{v} has 4 significant digits"
        );
    }
    // Uniform in the logarithm: about 100 values in each of the 4 decades.
    for decade in 0..4 {
        let low = 1e-5 * 10f64.powi(decade);
        let count = values.iter().filter(|v| (low..low * 10.0).contains(*v)).count();
        assert!((65..=135).contains(&count), "decade {decade}: {count} of 400");
    }
}

#[test]
fn int_uniform_and_log_uniform_over_a_whole_number_field_give_whole_numbers() {
    let planned = plan_text(
        "experiment warm {
    schedule noam
    matrix {
        axis schedule.warmup log-uniform 100 4000 samples=6 digits=2
        axis model.layers int-uniform 1 3 samples=3
    }
}
",
    );
    let warmups = labels(&planned, "schedule.warmup");
    assert_eq!(warmups.len(), 6);
    for w in numbers(&warmups) {
        assert!((100.0..=4000.0).contains(&w) && w.fract() == 0.0, "{w}");
    }
    assert_eq!(labels(&planned, "model.layers"), ["1", "2", "3"]);
    let run = &planned.runs[0];
    assert_eq!(run.config.model.encoder_layers, 1);
}

#[test]
fn choice_weights_shape_the_draws_of_a_zip() {
    // In a zip each row draws on its own (repeats allowed): 400 rows, weights 3:1.
    let planned = plan_text(&experiment(
        1,
        "        zip {
            axis train.batch-size choice 16 32 samples=400 weights=\"3 1\"
            axis schedule.lr uniform 1e-5 1e-3 samples=400 digits=6
        }",
    ));
    assert_eq!(planned.runs.len(), 400);
    let sixteen = planned.runs.iter().filter(|r| r.config.train.batch_size == 16).count();
    assert!((260..=340).contains(&sixteen), "{sixteen} of 400 rows drew 16");
}

#[test]
fn a_sampled_value_reaches_the_run_and_selects_it() {
    let planned = plan_text(&experiment(
        5,
        "        axis schedule.lr log-uniform 1e-5 1e-3 samples=4",
    ));
    let run = planned
        .runs
        .iter()
        .find(|r| r.labels.iter().any(|(a, l)| a == "schedule.lr" && l == "2.21e-5"))
        .unwrap();
    let json = serde_json::to_value(&run.config).unwrap();
    assert_eq!(json["schedule"]["lr"], 2.21e-5, "{json}");
    let path = write(&experiment(
        5,
        "        axis schedule.lr log-uniform 1e-5 1e-3 samples=4",
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["exec", "--dry-run", "--only", "schedule.lr=2.21e-5"])
        .arg(&path)
        .args([
            "--store",
            std::env::temp_dir().join("runner-sampled-store").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&run.id[..8]) && stdout.contains("1 of 4 runs selected"),
        "{stdout}"
    );
}
