//! Successive halving as its user meets it: `runner plan` states the
//! rungs and the budget; `runner exec` trains every run to the first rung,
//! the better half on, and the winner to the end; the winner is the full
//! grid's, found with half the epochs, and its result is bitwise the one
//! the grid trains for it; a second exec trains nothing, and a search killed
//! between rungs ends where an uninterrupted one ends. The report shows the
//! rung table. Bad use (`--only`, Slurm) is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{text, tiny_experiment};

/// Four runs: noam warm-ups far apart, so that the ranking is clear.
const MATRIX: &str = "matrix { axis schedule.warmup 1 10 100 1000 }";
const SEARCH: &str = "search halving metric=val-dist rungs=\"1 2 4\" keep=\"1/2\"";

struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = std::env::temp_dir().join(format!("runner-search-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Work { dir }
    }

    fn experiment(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.kdl"));
        std::fs::write(&path, tiny_experiment(name, 4, extra)).unwrap();
        path
    }

    fn command(&self, file: &Path, args: &[&str], store: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
        command
            .args(args)
            .arg(file)
            .arg("--store")
            .arg(self.dir.join(store))
            .env("NO_COLOR", "1")
            .env("OMP_NUM_THREADS", "1");
        command
    }

    fn run(&self, file: &Path, args: &[&str], store: &str) -> Output {
        self.command(file, args, store).output().unwrap()
    }

    fn json(&self, path: impl AsRef<Path>) -> serde_json::Value {
        let path = self.dir.join(path);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A summary's evaluations and test metrics, without wall-clock times.
fn result(summary: &serde_json::Value) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut epochs = summary["epochs"].as_array().unwrap().clone();
    for epoch in &mut epochs {
        epoch.as_object_mut().unwrap().remove("seconds");
    }
    (epochs, summary["test"].clone())
}

#[test]
fn halving_finds_the_grids_winner_with_half_the_epochs_and_resumes_to_the_same_end() {
    let work = Work::new("halving");
    let file = work.experiment("halving", &format!("{MATRIX}\n{SEARCH}"));

    let plan = work.run(&file, &["plan"], "search");
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        text(&plan).contains(
            "search: successive halving by val-dist, keeping 0.500 of each rung: 4 to epoch 1, 2 to epoch 2, \
             1 to epoch 4; 8 epochs in all, where the full grid trains 16"
        ),
        "{}",
        text(&plan)
    );

    let searched = work.run(&file, &["exec", "--jobs", "2", "--threads", "1"], "search");
    let out = text(&searched);
    assert!(searched.status.success(), "{out}");
    assert!(out.contains("search: rung 1 (epoch 1): 4 runs, 2 go on"), "{out}");
    assert!(out.contains("search: rung 2 (epoch 2): 2 runs, 1 go on"), "{out}");
    assert!(
        out.contains("search: 8 epochs trained, where the full grid trains 16"),
        "{out}"
    );
    assert!(out.contains("3 paused by the search"), "{out}");
    let record = work.json("search/halving/search.json");
    let rungs = record["rungs"].as_array().unwrap();
    assert_eq!(rungs.len(), 3);
    assert_eq!(
        rungs
            .iter()
            .map(|r| r["runs"].as_array().unwrap().len())
            .collect::<Vec<_>>(),
        [4, 2, 1]
    );
    let winner = rungs[2]["runs"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(rungs[2]["runs"][0]["kept"], true);

    // The full grid: the same runs (a search is not part of their identity)
    // trained to the end in another store.
    let grid_file = work.dir.join("grid.kdl");
    std::fs::write(&grid_file, tiny_experiment("halving", 4, MATRIX)).unwrap();
    let grid = work.run(&grid_file, &["exec", "--jobs", "2", "--threads", "1"], "grid");
    assert!(grid.status.success(), "{}", text(&grid));
    assert!(text(&grid).contains("4 trained"), "{}", text(&grid));
    let mut finals: Vec<(f64, String)> = std::fs::read_dir(work.dir.join("grid/halving"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .map(|p| {
            let summary = work.json(p.join("summary.json"));
            let dist = summary["epochs"].as_array().unwrap().last().unwrap()["val"]["dist"]
                .as_f64()
                .unwrap();
            (dist, p.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(finals.len(), 4);
    finals.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("budgets: halving trained 8 epochs, the full grid 16; val dist at epoch 4: {finals:?}");
    assert_eq!(finals[0].1, winner, "the grid's best run is not the search's winner");
    // Paused and resumed at two rungs, it ends bitwise as trained straight.
    assert_eq!(
        result(&work.json(format!("search/halving/{winner}/summary.json"))),
        result(&work.json(format!("grid/halving/{winner}/summary.json")))
    );
    // The three left behind are partial, their checkpoints kept.
    let states = text(&work.run(&file, &["plan"], "search"));
    assert!(states.contains("1 done") && states.contains("3 partial"), "{states}");
    let status = text(&work.run(&file, &["status"], "search"));
    assert_eq!(status.matches("stopped by the search at epoch").count(), 3, "{status}");

    // Again: nothing trains, the same rungs and winner.
    let again = work.run(&file, &["exec", "--jobs", "2", "--threads", "1"], "search");
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("0 trained, 0 resumed, 1 skipped"),
        "{}",
        text(&again)
    );
    assert_eq!(work.json("search/halving/search.json"), record);

    // Killed once the first rung is ranked, it ends as the uninterrupted search.
    let mut child = work
        .command(&file, &["exec", "--jobs", "2", "--threads", "1"], "killed")
        .spawn()
        .unwrap();
    let record_path = work.dir.join("killed/halving/search.json");
    let started = Instant::now();
    while !record_path.exists() {
        assert!(started.elapsed() < Duration::from_secs(300), "no rung was ranked");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    assert!(partial["rungs"].as_array().unwrap().len() < 3, "killed too late");
    // The worker processes die with their parent, moments later.
    std::thread::sleep(Duration::from_secs(2));
    let resumed = work.run(&file, &["exec", "--jobs", "2", "--threads", "1"], "killed");
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(work.json("killed/halving/search.json"), record);
    assert_eq!(
        result(&work.json(format!("killed/halving/{winner}/summary.json"))),
        result(&work.json(format!("search/halving/{winner}/summary.json")))
    );

    // The report: the rung table and the winner.
    let report = work.run(&file, &["report"], "search");
    assert!(report.status.success(), "{}", text(&report));
    let markdown = std::fs::read_to_string(work.dir.join("search/halving/report.md")).unwrap();
    assert!(markdown.contains("## Search: successive halving"), "{markdown}");
    assert!(
        markdown.contains(&format!("**winner**: `{}`", &winner[..8])),
        "{markdown}"
    );
    assert!(
        markdown.contains("8 epochs trained, where the full grid trains 16"),
        "{markdown}"
    );
    // Each numeric axis against the metric, at the first rung where every run has a value.
    assert!(
        markdown.contains("against val dist at the search's first rung (epoch 1)"),
        "{markdown}"
    );
    assert!(markdown.contains("| `schedule.warmup` | 4 | 1 – 1000 |"), "{markdown}");
    let scatter = std::fs::read(work.dir.join("search/halving/figures/parameter-schedule-warmup.png")).unwrap();
    assert_eq!(&scatter[1..4], b"PNG");
    // The runs left behind are listed as stopped by the search.
    assert_eq!(
        markdown.matches("| stopped by the search | at epoch ").count(),
        3,
        "{markdown}"
    );
}

#[test]
fn a_search_refuses_run_selection_and_slurm() {
    let work = Work::new("refuse");
    let file = work.experiment("refuse", &format!("{MATRIX}\n{SEARCH}"));
    let only = work.run(&file, &["exec", "--only", "schedule.warmup=10"], "runs");
    assert_eq!(only.status.code(), Some(1), "{}", text(&only));
    assert!(
        text(&only).contains("--only cannot select runs of refuse: its search ranks all of its runs"),
        "{}",
        text(&only)
    );
    let slurm = work.run(&file, &["exec", "--backend", "slurm", "--dry-run"], "runs");
    assert_eq!(slurm.status.code(), Some(1), "{}", text(&slurm));
    let words = text(&slurm)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("declares a search, which runs on the local backend only"),
        "{words}"
    );
}
