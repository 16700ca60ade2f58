//! A corpus laid out as a researcher's real one is: `Composer/Piece/perf_k.mid`
//! with several performances of each piece, a byte-identical copy under
//! another name, a score with one constant velocity. Through `runner data
//! inspect --json` and `runner plan --json`, as a user runs them: no group
//! in two splits, k folds that test every group once, duplicates reported
//! once, warnings shown, and bad input refused with a clear message.

mod data_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use data_support::{Ev, Rng, TempDir, bundled_dir, runner, smf, text, track_body};
use serde_json::Value;

/// A performance of 200 notes; `velocity` gives each note's velocity.
fn performance(seed: u64, velocity: impl Fn(&mut Rng) -> u8) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut events = Vec::new();
    for _ in 0..200 {
        let pitch = 40 + rng.below(40) as u8;
        let v = velocity(&mut rng);
        events.push((rng.below(60) as u32, Ev::On(0, pitch, v)));
        events.push((30 + rng.below(60) as u32, Ev::Off(0, pitch)));
    }
    smf(0, 480, &[track_body(&events, false)])
}

/// The corpus: 7 pieces by 3 composers with 1 to 3 performances each (13
/// performances: copies of the 10 bundled files, then 3 generated ones), a
/// byte-identical copy of `C0/P0/perf_0.mid` filed under another piece, a
/// score of piece `C2/P5` with constant velocity, and 37 bytes of padding
/// after `C0/P3/perf_0.mid`'s last track.
fn corpus(root: &Path) -> usize {
    let mut bundled: Vec<_> = std::fs::read_dir(bundled_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "mid"))
        .collect();
    bundled.sort();
    assert_eq!(bundled.len(), 10, "the bundled data is in place");
    let mut files = 0;
    for piece in 0..7u64 {
        for take in 0..(1 + piece % 3) {
            let dir = root.join(format!("corpus/C{}/P{piece}", piece % 3));
            std::fs::create_dir_all(&dir).unwrap();
            let mut bytes = match bundled.get(files) {
                Some(path) => std::fs::read(path).unwrap(),
                None => performance(piece * 10 + take, |rng| 20 + rng.below(90) as u8),
            };
            if (piece, take) == (3, 0) {
                // Padding after the last track, as some writers leave.
                bytes.extend([0u8; 37]);
            }
            std::fs::write(dir.join(format!("perf_{take}.mid")), bytes).unwrap();
            files += 1;
        }
    }
    std::fs::copy(root.join("corpus/C0/P0/perf_0.mid"), root.join("corpus/C1/P4/copy.mid")).unwrap();
    std::fs::write(root.join("corpus/C2/P5/score.mid"), performance(99, |_| 80)).unwrap();
    files + 2
}

/// An experiment over the corpus with `dataset` lines added.
fn experiment(root: &Path, name: &str, dataset: &str) -> String {
    let file = root.join(format!("{name}.kdl"));
    std::fs::write(
        &file,
        format!(
            "experiment {name} {{\n    dataset {{\n        source midi-dir path=\"corpus\"\n        window length=16 step=8\n{dataset}\n    }}\n}}\n"
        ),
    )
    .unwrap();
    file.display().to_string()
}

fn inspect_json(root: &Path, file: &str, extra: &[&str]) -> Value {
    let mut args = vec!["data", "inspect", "--json", file];
    args.extend(extra);
    let output = runner(root, &args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON")
}

/// The `--json` entry of the piece `name`.
fn piece<'a>(json: &'a Value, name: &str) -> &'a Value {
    let pieces = json["pieces"].as_array().unwrap();
    pieces
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no piece {name}"))
}

/// Each kept piece's (group, split).
fn kept(json: &Value) -> Vec<(String, String)> {
    json["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["duplicate-of"].is_null())
        .map(|p| {
            (
                p["group"].as_str().unwrap().to_owned(),
                p["split"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn splits_per_group(pieces: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, split) in pieces {
        of.entry(group.clone()).or_default().insert(split.clone());
    }
    of
}

#[test]
fn folder_groups_never_straddle_splits_and_duplicates_are_listed_once() {
    let work = TempDir::new("corpus-groups");
    let files = corpus(work.path());
    for seed in 0..4 {
        let file = experiment(
            work.path(),
            &format!("groups{seed}"),
            &format!(
                "        group folder depth=2\n        split fractions train=0.6 validation=0.2 test=0.2 seed={seed}"
            ),
        );
        let json = inspect_json(work.path(), &file, &[]);
        let pieces = kept(&json);
        assert_eq!(pieces.len(), files - 1, "every file but the copy is kept");
        let of = splits_per_group(&pieces);
        assert_eq!(of.len(), 7, "one group per piece folder: {of:?}");
        assert!(
            of.values().all(|splits| splits.len() == 1),
            "a group in two splits: {of:?}"
        );
        let duplicates = json["duplicates"].as_array().unwrap();
        assert_eq!(duplicates.len(), 1);
        assert_eq!(duplicates[0]["name"], "C1/P4/copy.mid");
        assert_eq!(duplicates[0]["of"], "C0/P0/perf_0.mid");
        assert_eq!(duplicates[0]["identical"], "bytes");
        let score = piece(&json, "C2/P5/score.mid");
        assert_eq!(score["velocities"], 1);
        assert!(
            score["warnings"][0]
                .as_str()
                .unwrap()
                .contains("every note has the same velocity")
        );
        let padded = piece(&json, "C0/P3/perf_0.mid");
        assert!(
            padded["warnings"][0]
                .as_str()
                .unwrap()
                .starts_with("ignored 37 trailing bytes after the 2 declared tracks"),
            "{padded}"
        );
        let groups: usize = json["splits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["groups"].as_u64().unwrap() as usize)
            .sum();
        assert_eq!(groups, 7);
    }
}

#[test]
fn inspect_shows_groups_duplicates_and_warnings() {
    let work = TempDir::new("corpus-text");
    corpus(work.path());
    let file = experiment(work.path(), "text", "        group folder depth=1");
    let output = runner(work.path(), &["data", "inspect", &file]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("│ split      │ groups │ pieces │"), "{stdout}");
    assert!(
        stdout.contains("Duplicates (1, left out; the first of each by name stays)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("│ C1/P4/copy.mid │ C0/P0/perf_0.mid │ bytes"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("C2/P5/score.mid: every note has the same velocity (`min-velocities 2` leaves such pieces out)"),
        "{stdout}"
    );
    // Three composers: 3 groups in all.
    assert!(stdout.contains("│ all        │ 3      │ 14     │"), "{stdout}");
}

#[test]
fn min_velocities_leaves_the_score_out_and_duplicates_fail_stops() {
    let work = TempDir::new("corpus-policies");
    let files = corpus(work.path());
    let file = experiment(work.path(), "flat", "        min-velocities 2");
    let json = inspect_json(work.path(), &file, &[]);
    assert_eq!(kept(&json).len(), files - 2);
    assert_eq!(json["skipped"][0]["what"], "C2/P5/score.mid");

    let file = experiment(work.path(), "strict", "        duplicates fail");
    let output = runner(work.path(), &["data", "inspect", &file]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1 piece(s) repeat another:")
            && stderr.contains("C1/P4/copy.mid repeats C0/P0/perf_0.mid (the same bytes)"),
        "{stderr}"
    );
}

#[test]
fn k_folds_plan_one_run_per_fold_and_test_every_group_once() {
    let work = TempDir::new("corpus-kfold");
    corpus(work.path());
    let file = experiment(
        work.path(),
        "folds",
        "        group folder depth=2\n        split k-fold k=3 seed=7",
    );
    let output = runner(work.path(), &["plan", "--json", &file]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let mut tested: BTreeMap<String, usize> = BTreeMap::new();
    let mut validated: BTreeMap<String, usize> = BTreeMap::new();
    let mut small_splits = 0;
    for (fold, run) in runs.iter().enumerate() {
        assert_eq!(run["labels"][0], serde_json::json!(["fold", fold.to_string()]));
        let id = run["id"].as_str().unwrap();
        let json = inspect_json(work.path(), &file, &["--run", id]);
        for small in json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|w| w.starts_with("the test split holds") || w.starts_with("the validation split holds"))
        {
            small_splits += 1;
            assert!(small.ends_with("read it with the other 2 folds"), "{small}");
        }
        let pieces = kept(&json);
        assert!(splits_per_group(&pieces).values().all(|s| s.len() == 1));
        for (group, split) in splits_per_group(&pieces)
            .into_iter()
            .map(|(g, s)| (g, s.into_iter().next().unwrap()))
        {
            match split.as_str() {
                "test" => *tested.entry(group).or_default() += 1,
                "validation" => *validated.entry(group).or_default() += 1,
                _ => {}
            }
        }
    }
    assert!(small_splits > 0, "under 5 pieces, some fold's split is warned about");
    assert_eq!(tested.len(), 7, "{tested:?}");
    assert!(tested.values().all(|&n| n == 1), "{tested:?}");
    assert!(
        validated.values().all(|&n| n == 1) && validated.len() == 7,
        "{validated:?}"
    );
    let ids: BTreeSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "the fold is part of the run id");
}

#[test]
fn bad_grouping_and_folds_are_refused_clearly() {
    let work = TempDir::new("corpus-bad");
    corpus(work.path());
    let check = |name: &str, dataset: &str| {
        let file = experiment(work.path(), name, dataset);
        let output = runner(work.path(), &["check", &file]);
        assert!(!output.status.success(), "{name} passed the check");
        text(&output.stderr)
    };
    let k1 = check("k1", "        split k-fold k=1");
    assert!(
        k1.contains("`k` must be in 3..=1000, not 1") && k1.contains("k-fold k=1"),
        "{k1}"
    );
    let bad_regex = check("regex", "        group pattern regex=\"(\"");
    assert!(
        bad_regex.contains("the group pattern is not a regular expression"),
        "{bad_regex}"
    );
    let no_regex = check("noregex", "        group pattern");
    assert!(no_regex.contains("`group pattern` needs `regex="), "{no_regex}");
    let fold = check("fold", "        split k-fold k=3 fold=3");
    assert!(fold.contains("dataset.split.fold"), "{fold}");

    let inspect = |name: &str, dataset: &str| {
        let file = experiment(work.path(), name, dataset);
        let output = runner(work.path(), &["data", "inspect", &file]);
        assert!(!output.status.success(), "{name} was inspected");
        text(&output.stderr)
    };
    let many = inspect("many", "        group folder depth=2\n        split k-fold k=8");
    assert!(
        many.contains("k-fold with k=8: there are only 7 groups to deal into 8 folds"),
        "{many}"
    );
    let nothing = inspect("nothing", "        group pattern regex=\"^Bach/\"");
    // miette wraps lines at 80 columns.
    let squeezed = |text: &str| text.replace(['│', ' ', '\n'], "");
    assert!(
        squeezed(&nothing).contains(&squeezed(
            "group pattern \"^Bach/\" matches none of the 14 piece names (first: \"C0/P0/perf_0.mid\")"
        )),
        "{nothing}"
    );
}

/// A metadata table in MAESTRO's CSV layout for the corpus: pieces P0 to
/// P3 train, P4 validates, P5 and P6 test. It leaves out
/// `C0/P3/perf_0.mid` and names a file the corpus lacks.
fn maestro_csv(root: &Path) {
    let mut csv = String::from("canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n");
    let split = |piece: u64| match piece {
        0..=3 => "train",
        4 => "validation",
        _ => "test",
    };
    for piece in 0..7u64 {
        let composer = piece % 3;
        let mut takes: Vec<String> = (0..(1 + piece % 3)).map(|t| format!("perf_{t}.mid")).collect();
        match piece {
            3 => takes.clear(),
            4 => takes.push("copy.mid".to_owned()),
            5 => takes.push("score.mid".to_owned()),
            _ => {}
        }
        for take in takes {
            csv.push_str(&format!(
                "Composer {composer},\"Piece {piece}, Op. {piece}\",{},2018,C{composer}/P{piece}/{take},x.wav,60.5\n",
                split(piece)
            ));
        }
    }
    csv.push_str("Composer 9,Lost,train,2004,C9/P9/missing.mid,y.wav,1.0\n");
    std::fs::write(root.join("maestro.csv"), csv).unwrap();
}

#[test]
fn a_maestro_table_gives_the_official_split_and_lists_what_it_does_not_match() {
    let work = TempDir::new("corpus-table");
    corpus(work.path());
    maestro_csv(work.path());
    let file = experiment(work.path(), "official", "        split table path=\"maestro.csv\"");
    let json = inspect_json(work.path(), &file, &[]);
    let official = |name: &str| match name.split('/').nth(1) {
        Some("P0" | "P1" | "P2" | "P3") => "train",
        Some("P4") => "validation",
        _ => "test",
    };
    let pieces = json["pieces"].as_array().unwrap();
    let kept: Vec<&Value> = pieces.iter().filter(|p| p["duplicate-of"].is_null()).collect();
    assert_eq!(kept.len(), 13, "15 files, less the copy and the file the table lacks");
    for piece in kept {
        let name = piece["name"].as_str().unwrap();
        assert_eq!(piece["split"], official(name), "{name}");
    }
    assert_eq!(json["skipped"][0]["what"], "C0/P3/perf_0.mid");
    assert_eq!(json["skipped"][0]["reason"], "no row in maestro.csv");
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.contains(&"1 piece of the source not in maestro.csv left out (listed with the skipped files)"),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(&"1 row of maestro.csv names no file of the source (first: C9/P9/missing.mid)"),
        "{warnings:?}"
    );
}

#[test]
fn a_table_column_groups_pieces_over_seeds_and_fractions() {
    let work = TempDir::new("corpus-column");
    corpus(work.path());
    maestro_csv(work.path());
    for seed in 0..3 {
        let file = experiment(
            work.path(),
            &format!("titles{seed}"),
            &format!(
                "        group column name=canonical_title table=\"maestro.csv\"\n        split fractions train=0.5 validation=0.25 test=0.25 seed={seed}"
            ),
        );
        let json = inspect_json(work.path(), &file, &[]);
        let of = splits_per_group(&kept(&json));
        assert_eq!(of.len(), 6, "six titles (the table lacks P3's only file): {of:?}");
        assert!(of.keys().all(|g| g.starts_with("canonical_title=Piece ")), "{of:?}");
        assert!(of.values().all(|s| s.len() == 1), "a group in two splits: {of:?}");
    }
}

#[test]
fn bad_tables_are_refused_with_the_columns_they_have() {
    let work = TempDir::new("corpus-bad-table");
    corpus(work.path());
    maestro_csv(work.path());
    // miette wraps lines at 80 columns: compare without spaces.
    let squeezed = |text: &str| text.replace(['│', ' ', '\n'], "");
    let check = |name: &str, dataset: &str| {
        let file = experiment(work.path(), name, dataset);
        let output = runner(work.path(), &["check", &file]);
        assert!(!output.status.success(), "{name} passed the check");
        squeezed(&text(&output.stderr))
    };
    let no_column = check("nocolumn", "        split table path=\"maestro.csv\" split-column=fold");
    assert!(
        no_column.contains(&squeezed("the metadata table maestro.csv has no column `fold` (asked for by `split-column`); its columns: canonical_composer, canonical_title, split,")),
        "{no_column}"
    );
    let typo = check(
        "typo",
        "        group column name=canonical_titel table=\"maestro.csv\"",
    );
    assert!(typo.contains(&squeezed("did you mean `canonical_title`?")), "{typo}");
    let missing = check("missing", "        split table path=\"nope.csv\"");
    assert!(
        missing.contains(&squeezed("the metadata table `nope.csv` does not exist")),
        "{missing}"
    );
    let no_table = check("notable", "        group column name=canonical_title");
    assert!(
        no_table.contains(&squeezed("`group column` needs `table=\"...\"`")),
        "{no_table}"
    );
    let no_path = check("nopath", "        split table");
    assert!(
        no_path.contains(&squeezed("`split table` needs the metadata table")),
        "{no_path}"
    );

    std::fs::write(
        work.path().join("bad-split.csv"),
        "midi_filename,split\nC0/P0/perf_0.mid,holdout\n",
    )
    .unwrap();
    let file = experiment(work.path(), "badsplit", "        split table path=\"bad-split.csv\"");
    let output = runner(work.path(), &["data", "inspect", &file]);
    assert!(!output.status.success());
    let stderr = squeezed(&text(&output.stderr));
    assert!(
        stderr.contains(&squeezed(
            "has 1 row whose `split` is not train, validation or test: C0/P0/perf_0.mid: \"holdout\""
        )),
        "{stderr}"
    );
}
