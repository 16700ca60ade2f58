//! `runner report` on hand-made run folders: a 2x2 factorial (schedule x
//! loss) with 2 seeds in `tests/fixtures/report/`. The fixture folders are
//! named by their labels (`runs/<schedule>-<loss>-<seed>/`); each test copies
//! them into a fresh store under the run ids the plan gives, with the
//! `config.json` the plan resolves (so a change of the config schema does not
//! break the fixtures, only the ids printed in the golden file).
//!
//! The golden Markdown is `tests/fixtures/report/expected.md`; regenerate it
//! with `UPDATE_GOLDEN=1 cargo test --test report`.

use std::path::{Path, PathBuf};
use std::process::Command;

use runner_plan::{self as plan, Plan};
use runner_report::{self as report, collect};
use runner_store::{RunFile, RunStore};

const FIXTURE: &str = "tests/fixtures/report";

fn load() -> Plan {
    plan::load(&Path::new(FIXTURE).join("factorial.kdl")).expect("the fixture experiment plans")
}

/// A fresh store under the test's temporary folder, with every fixture run
/// copied in as a finished run (its `metrics.csv` written from its summary).
fn fixture_store(name: &str, plan: &Plan) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    copy_fixture_runs(&root, plan);
    root
}

/// Copies the fixture run of each of `plan`'s runs into `root/<experiment>/<id>/`.
fn copy_fixture_runs(root: &Path, plan: &Plan) {
    for run in &plan.runs {
        let values: Vec<&str> = run.labels.iter().map(|(_, v)| v.as_str()).collect();
        let from = Path::new(FIXTURE).join("runs").join(values.join("-"));
        let to = root.join(&plan.experiment).join(&run.id);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
            let entry = entry.unwrap();
            if entry.path().is_dir() {
                // listen/, the test pieces as MIDI.
                std::fs::create_dir_all(to.join(entry.file_name())).unwrap();
                for file in std::fs::read_dir(entry.path()).unwrap() {
                    let file = file.unwrap();
                    std::fs::copy(file.path(), to.join(entry.file_name()).join(file.file_name())).unwrap();
                }
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
        // What runner writes beside the summary: its configuration and metrics.csv.
        let claimed = RunStore::new(root, &plan.experiment).claim(run).unwrap().unwrap();
        claimed.write_metrics(&claimed.summary().unwrap().epochs).unwrap();
    }
}

fn markdown(plan: &Plan, root: &Path) -> String {
    let store = RunStore::new(root, &plan.experiment);
    let collected = collect::collect(plan, &store).unwrap();
    report::render(plan, &collected).markdown
}

#[test]
fn report_matches_the_golden_file() {
    let plan = load();
    let root = fixture_store("golden", &plan);
    let text = markdown(&plan, &root);
    let golden = Path::new(FIXTURE).join("expected.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).expect("expected.md exists (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(text, expected, "the report differs from {}", golden.display());
}

#[test]
fn report_states_the_hand_computed_numbers() {
    let plan = load();
    let root = fixture_store("numbers", &plan);
    let text = markdown(&plan, &root);
    // Cell noam / label-smoothing: val ls-kl 1.9 and 2.1, std 0.1414, 95%
    // half-width t(0.975, 1) × 0.1414 / √2 = 12.706 × 0.1 = 1.271; val dist 4
    // and 5 → 4.50 ± 6.35; no run has midi-hf-transformers' loss, so that
    // column is left out.
    assert!(
        text.contains("| noam | label-smoothing | 2 | 2.600 ± 1.271 | 2.000 ± 1.271 | 4.50 ± 6.35 |"),
        "{text}"
    );
    // Cross-entropy runs have no label-smoothing KL.
    assert!(
        text.contains("| noam | cross-entropy | 2 | 3.000 ± 1.271 | – | 6.00 ± 0.00 |"),
        "{text}"
    );
    assert!(!text.contains("val ce+cls |"), "{text}");
    // schedule: seed 0 (10+11)/2 − (4+6)/2 = 5.5, seed 1 (12+14)/2 − (5+6)/2 = 7.5:
    // mean 6.5, std √2, half-width 12.706 → [−6.21, +19.21].
    assert!(
        text.contains(
            "**schedule** accounts for most of the gap in val dist: constant − noam = +6.50, 95% CI [−6.21, +19.21]"
        ),
        "{text}"
    );
    assert!(
        text.contains("(2 replicates): the interval includes 0: these replicates do not tell `constant` from `noam`."),
        "{text}"
    );
    // loss: 1.5 on both seeds: an interval of zero width, which excludes 0.
    assert!(
        text.contains(
            "- loss: cross-entropy − label-smoothing = +1.50, 95% CI [+1.50, +1.50] on val dist (2 replicates): \
             the interval excludes 0, so `cross-entropy` gives a higher (worse) val dist than `label-smoothing`."
        ),
        "{text}"
    );
    // schedule × loss: seed 0 (11 − 6) − (10 − 4) = −1, seed 1 (14 − 6) − (12 − 5) = +1.
    assert!(text.contains("= +0.00, 95% CI [−12.71, +12.71] on val dist"), "{text}");
    // val dist: noam 5.25, constant 11.75; 11.75 / 5.25 = 2.24 ≥ 2. Margins
    // per seed 10.5 − 2 × 5 = 0.5 and 13 − 2 × 5.5 = 2: mean 1.25, std
    // 1.061, half-width 12.706 × 1.061 / √2 = 9.53.
    assert!(
        text.contains("- **not significant**: `expect val-dist \"schedule=noam\""),
        "{text}"
    );
    assert!(
        text.contains("`schedule=constant`'s val dist is 2.24 times `schedule=noam`'s (the claim: at least 2)"),
        "{text}"
    );
    assert!(
        text.contains("is +1.25, 95% CI [−8.28, +10.78] (paired over 2 replicates)"),
        "{text}"
    );
    // flatness of constant: (0.2 + 0.25 + 0.3 + 0.25) / 4 = 0.25, and 0.25 on each seed: below 0.3.
    assert!(text.contains("- **reproduced**: `expect flatness"), "{text}");
    // accuracy of cross-entropy: ≈ 0.04, not above 0.5.
    assert!(text.contains("- **not reproduced**: `expect accuracy"), "{text}");
    // The fixtures' greedy test predictions of seed 0 are the truth ± 3 (noam,
    // label smoothing), ± 5 (noam, cross-entropy) and ± 9 (constant, label
    // smoothing), never clipped: each piece's dist is that offset.
    for (cell, dist) in [
        ("schedule=noam loss=label-smoothing", "3.00"),
        ("schedule=noam loss=cross-entropy", "5.00"),
        ("schedule=constant loss=label-smoothing", "9.00"),
    ] {
        assert!(text.contains(&format!("| {cell} | ")), "{text}");
        let row = text.lines().find(|l| l.starts_with(&format!("| {cell} | "))).unwrap();
        assert!(row.contains(&format!("| piece-a.mid | 40 | {dist} |")), "{row}");
    }
    // test greedy dist of noam/label-smoothing: 4.7 and 4.8 (summary.json).
    assert!(text.contains("test greedy dist"), "{text}");
}

#[test]
fn the_report_links_each_cells_test_pieces_and_copies_them_beside_it() {
    let plan = load();
    let root = fixture_store("listen", &plan);
    let store = RunStore::new(&root, &plan.experiment);
    let written = report::write(&plan, &store, None).unwrap();
    let text = std::fs::read_to_string(&written.path).unwrap();
    // Seed 0 of each cell has piece-a's files; one link per cell.
    assert_eq!(written.listen.len(), 4, "{:?}", written.listen);
    for listen in &written.listen {
        for kind in ["true", "greedy"] {
            let file = listen.with_file_name(format!("{}.{kind}.mid", listen.file_name().unwrap().to_string_lossy()));
            assert_eq!(&std::fs::read(&file).unwrap()[..4], b"MThd", "{}", file.display());
            let relative = file.strip_prefix(root.join("factorial")).unwrap().display().to_string();
            assert!(
                text.contains(&format!("]({relative})")),
                "{relative} is not linked:\n{text}"
            );
        }
    }
    assert!(
        text.contains("(listen/1-schedule-noam-loss-label-smoothing/piece-a.true.mid)"),
        "{text}"
    );
}

#[test]
fn broken_test_predictions_leave_their_run_out_with_a_note() {
    let plan = load();
    let root = fixture_store("broken-listen", &plan);
    let store = RunStore::new(&root, &plan.experiment);
    // Run 0: a listening file is gone; run 2: lists of unequal length; run 4: not JSON.
    let first = store.folder(&plan.runs[0].id);
    std::fs::remove_file(first.listen_files("piece-a")[1].clone()).unwrap();
    let uneven = store.folder(&plan.runs[2].id).path(RunFile::TestPredictions);
    let mut pieces: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&uneven).unwrap()).unwrap();
    pieces[0]["greedy"].as_array_mut().unwrap().pop();
    std::fs::write(&uneven, serde_json::to_vec(&pieces).unwrap()).unwrap();
    std::fs::write(store.folder(&plan.runs[4].id).path(RunFile::TestPredictions), "[{").unwrap();
    let written = report::write(&plan, &store, None).unwrap();
    let text = std::fs::read_to_string(&written.path).unwrap();
    let short = |i: usize| &plan.runs[i].id[..8];
    assert!(
        text.contains(&format!(
            "run {}: listen/piece-a.greedy.mid is missing; its piece is not linked",
            short(0)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "run {}: test-predictions.json has lists of unequal length",
            short(2)
        )),
        "{text}"
    );
    assert!(text.contains(&format!("run {}: ", short(4))), "{text}");
    // Runs 0, 2 and 4 are seed 0 of the first three cells, the only seed with
    // listening files: those cells link no piece, the fourth still does.
    assert_eq!(written.listen.len(), 1, "{:?}", written.listen);
    assert!(written.listen[0].ends_with("listen/4-schedule-constant-loss-cross-entropy/piece-a"));
}

#[test]
fn missing_and_failed_runs_are_listed_and_block_their_expectations() {
    let plan = load();
    let root = fixture_store("missing", &plan);
    let store = RunStore::new(&root, &plan.experiment);
    // The first run never finished; the last one failed; a third has a corrupt summary.
    std::fs::remove_file(store.folder(&plan.runs[0].id).path(RunFile::Summary)).unwrap();
    let failed = store.folder(&plan.runs[7].id).dir().to_owned();
    std::fs::remove_file(failed.join("summary.json")).unwrap();
    std::fs::write(
        failed.join("status.json"),
        r#"{"state": "failed", "reason": "out of memory", "log_tail": []}"#,
    )
    .unwrap();
    std::fs::write(store.folder(&plan.runs[4].id).path(RunFile::Summary), "{ not json").unwrap();
    std::fs::remove_file(store.folder(&plan.runs[1].id).path(RunFile::Lr)).unwrap();
    let text = markdown(&plan, &root);
    assert!(text.contains("- **runs**: 8 planned, 5 finished, 3 missing"), "{text}");
    assert!(text.contains("| pending | – |"), "{text}");
    assert!(text.contains("| failed | out of memory |"), "{text}");
    assert!(text.contains("summary.json is corrupt"), "{text}");
    assert!(text.contains("lr.csv"), "{text}");
    assert!(
        text.contains("- **not evaluated**: `expect val-dist \"schedule=noam\""),
        "{text}"
    );
    assert!(
        text.contains("1 of the 4 runs matching `schedule=noam` have no result"),
        "{text}"
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn figures_are_pngs_of_the_expected_size_and_reports_are_byte_identical() {
    let plan = load();
    let root = fixture_store("figures", &plan);
    let store = RunStore::new(&root, &plan.experiment);
    let first = report::write(&plan, &store, None).unwrap();
    assert_eq!(first.path, root.join("factorial/report.md"));
    let names: Vec<String> = first
        .figures
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "learning-curves.png",
            "learning-rate.png",
            "examples-1-schedule-noam-loss-label-smoothing.png",
            "examples-2-schedule-noam-loss-cross-entropy.png",
            "examples-3-schedule-constant-loss-label-smoothing.png",
            "examples-4-schedule-constant-loss-cross-entropy.png",
            "velocity-histogram.png",
            "piano-roll-1-schedule-noam-loss-label-smoothing.png",
            "piano-roll-2-schedule-noam-loss-cross-entropy.png",
            "piano-roll-3-schedule-constant-loss-label-smoothing.png",
            "piano-roll-4-schedule-constant-loss-cross-entropy.png",
        ]
    );
    // Legends below the charts: four cells and two baselines in two columns
    // of three rows (20 px each, 12 px of margin), the examples' three
    // entries in two rows, the histogram's two in one.
    let expected_sizes = [
        (900, 540 + 72),
        (900, 540 + 52),
        (1000, 560 + 52),
        (1000, 560 + 52),
        (1000, 560 + 52),
        (1000, 560 + 52),
        (900, 1040 + 32),
        (1000, 640),
        (1000, 640),
        (1000, 640),
        (1000, 640),
    ];
    for (path, size) in first.figures.iter().zip(expected_sizes) {
        assert_eq!(png_size(path), size, "{}", path.display());
    }
    let collected = collect::collect(&plan, &store).unwrap();
    let rendered = report::render(&plan, &collected);
    for figure in &rendered.figures {
        assert_eq!(png_size(&root.join("factorial").join(&figure.file)), figure.size);
    }

    let read_all = |written: &report::Written| -> Vec<Vec<u8>> {
        std::iter::once(&written.path)
            .chain(&written.figures)
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    let before = read_all(&first);
    let other = root.join("again/report.md");
    let second = report::write(&plan, &store, Some(&other)).unwrap();
    assert_eq!(second.figures[0], root.join("again/figures/learning-curves.png"));
    assert_eq!(before, read_all(&second), "two reports of the same runs differ");
}

fn runner(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runner starts")
}

#[test]
fn the_binary_writes_the_report_and_its_figures() {
    let plan = load();
    let root = fixture_store("binary", &plan);
    let file = format!("{FIXTURE}/factorial.kdl");
    let output = runner(&["report", &file, "--store", root.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("label-smoothing"), "{stdout}");
    assert!(stdout.contains("report.md"), "{stdout}");
    let folder = root.join("factorial");
    assert!(folder.join("report.md").is_file());
    for name in [
        "learning-curves.png",
        "learning-rate.png",
        "velocity-histogram.png",
        "piano-roll-1-schedule-noam-loss-label-smoothing.png",
    ] {
        assert!(folder.join("figures").join(name).is_file(), "{name}");
    }
    let custom = root.join("elsewhere/out.md");
    let output = runner(&[
        "report",
        &file,
        "--store",
        root.to_str().unwrap(),
        "-o",
        custom.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(custom.is_file());
    assert!(root.join("elsewhere/figures/learning-curves.png").is_file());
}

#[test]
fn the_binary_fails_clearly_without_finished_runs() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-empty");
    let _ = std::fs::remove_dir_all(&root);
    let file = format!("{FIXTURE}/factorial.kdl");
    let output = runner(&["report", &file, "--store", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no run of `factorial` has finished"), "{stderr}");
    assert!(stderr.contains("runner exec"), "{stderr}");
    assert!(!root.join("factorial/report.md").exists());
}

#[test]
fn several_experiments_make_one_report_with_cells_keyed_by_experiment() {
    let plan = load();
    let root = fixture_store("compare", &plan);
    // A second experiment: factorial's noam half under another name (the
    // same configurations, so the same fixture runs).
    let text = std::fs::read_to_string(Path::new(FIXTURE).join("factorial.kdl")).unwrap();
    let start = text.find("    expect ").unwrap();
    let noam = text[..start]
        .replace("experiment factorial", "experiment noam-only")
        .replace("            constant lr=3e-6\n", "")
        + "}\n";
    let noam_file = root.join("noam-only.kdl");
    std::fs::write(&noam_file, noam).unwrap();
    let noam_plan = plan::load(&noam_file).unwrap();
    assert_eq!(noam_plan.runs.len(), 4);
    copy_fixture_runs(&root, &noam_plan);

    let factorial = Path::new(FIXTURE).join("factorial.kdl");
    let report = |files: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_runner"))
            .arg("report")
            .args(files)
            .arg("--store")
            .arg(&root)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = report(&[&factorial, &noam_file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let path = root.join("factorial+noam-only/report.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{stdout}", path.display()));
    assert!(text.contains("# Report: factorial+noam-only"), "{text}");
    assert!(text.contains("`experiment` ∈ {factorial, noam-only}"), "{text}");
    assert!(
        text.contains("- **runs**: 12 planned, 12 finished, 0 missing"),
        "{text}"
    );
    // The same cells, hand-computed in report_states_the_hand_computed_numbers,
    // once for each experiment; constant only in factorial.
    for experiment in ["factorial", "noam-only"] {
        let row =
            format!("| {experiment} | noam | label-smoothing | 2 | 2.600 ± 1.271 | 2.000 ± 1.271 | 4.50 ± 6.35 |");
        assert!(text.contains(&row), "{row}\n{text}");
    }
    assert!(
        text.contains("| factorial | constant | label-smoothing | 2 |"),
        "{text}"
    );
    assert!(!text.contains("| noam-only | constant |"), "{text}");
    // noam-only lacks constant: neither experiment nor schedule is crossed
    // with the others, and only loss has an effect.
    assert!(
        text.contains("No effect is shown for `experiment`, `schedule`: their levels"),
        "{text}"
    );
    assert!(text.contains("| loss: cross-entropy − label-smoothing |"), "{text}");
    assert!(!text.contains("| experiment: noam-only − factorial |"), "{text}");
    // factorial's claims still select its own runs only.
    assert!(
        text.contains("`factorial: schedule=constant`'s val dist is 2.24 times `factorial: schedule=noam`'s"),
        "{text}"
    );

    // One experiment named twice is refused.
    let twice = report(&[&factorial, &factorial]);
    assert_eq!(twice.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(stderr.contains("are both experiment `factorial`"), "{stderr}");
}
