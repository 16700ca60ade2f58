//! `runner check` on files written for each test: every problem of a file
//! in one pass, the nesting limit, data folders that do not exist, axis
//! labels as written and explicit edges that contradict their bin counts.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A fresh folder under the system's temp dir.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runner-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `dir/file` and runs `runner check` on it.
fn check(dir: &std::path::Path, file: &str, text: &str) -> Output {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("check")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("runner starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `levels` nested children blocks, one per line, inside an experiment.
fn nested(levels: usize) -> String {
    format!(
        "experiment deep {{\n{}{}}}\n",
        "a {\n".repeat(levels),
        "}\n".repeat(levels)
    )
}

#[test]
fn a_file_nested_too_deep_is_an_error_at_its_line_not_a_crash() {
    let dir = folder("deep");
    for levels in [300, 100_000] {
        let started = Instant::now();
        let output = check(&dir, "deep.kdl", &nested(levels));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{levels} levels: {err}");
        assert!(err.contains("runner::too-deep"), "{err}");
        // The experiment is level 1, so the 33rd level opens on line 33.
        assert!(
            err.contains("children nest more than 32 levels deep (line 33)"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{levels} levels took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn nesting_up_to_the_limit_reaches_the_schema_checks() {
    let dir = folder("limit");
    let err = stderr(&check(&dir, "limit.kdl", &nested(31)));
    assert!(!err.contains("too-deep"), "{err}");
    assert!(err.contains("unknown field `a` in the experiment"), "{err}");
}

#[test]
fn axis_labels_are_what_was_written() {
    let dir = folder("labels");
    let text = r#"experiment labels {
    matrix {
        axis model.dropout 0 0.01 1e-1
        axis schedule.warmup 1000 2000
        exclude model.dropout=0 schedule.warmup=1000
    }
    expect val-dist "model.dropout=0" better-than="model.dropout=1e-1 schedule.warmup=1000"
}
"#;
    let output = check(&dir, "labels.kdl", text);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (5 runs)"));
    let err = stderr(&check(&dir, "zero.kdl", &text.replace("dropout=0 ", "dropout=0.0 ")));
    assert!(err.contains("axis `model.dropout` has no value `0.0`"), "{err}");
    assert!(err.contains("its values: 0, 0.01, 1e-1"), "{err}");
}

#[test]
fn one_value_written_two_ways_is_listed_twice() {
    let dir = folder("twice");
    let text = "experiment twice {\n    matrix {\n        axis model.dropout 0.1 1e-1\n    }\n}\n";
    let err = stderr(&check(&dir, "twice.kdl", text));
    assert!(
        err.contains("axis `model.dropout` lists `0.1` twice, written `1e-1` here"),
        "{err}"
    );
}

#[test]
fn a_bin_count_that_explicit_edges_contradict_is_an_error_at_both() {
    let dir = folder("edges");
    let text = "experiment edges {
    dataset {
        quantize velocity=4 edges=explicit {
            dstart-edges 0 0.048177 0.5
            duration-edges 0 0.145833 0.45
            velocity-edges 0 57 74 128
        }
    }
}
";
    let output = check(&dir, "edges.kdl", text);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`velocity=4` contradicts `velocity-edges`, which make 3 bins"),
        "{err}"
    );
    assert!(
        err.contains("4 bins asked") && err.contains("4 edges, the last closing the top bin"),
        "{err}"
    );
    let err = stderr(&check(&dir, "dstart.kdl", &text.replace("velocity=4", "dstart=2")));
    assert!(
        err.contains("`dstart=2` contradicts `dstart-edges`, which make 3 bins"),
        "{err}"
    );
    let agreeing = check(
        &dir,
        "agree.kdl",
        &text.replace("velocity=4", "dstart=3 duration=3 velocity=3"),
    );
    assert!(agreeing.status.success(), "{}", stderr(&agreeing));
}

#[test]
fn a_data_folder_that_does_not_exist_is_reported_with_where_it_was_looked_for() {
    let dir = folder("data");
    let text = "experiment data {\n    dataset { source midi-dir path=\"nope/\" }\n}\n";
    let output = check(&dir, "data.kdl", text);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("runner::missing-data"), "{err}");
    assert!(err.contains("the data folder `nope/` does not exist"), "{err}");
    assert!(err.contains(&format!("looked in `{}`", dir.display())), "{err}");
    std::fs::create_dir(dir.join("nope")).unwrap();
    let found = check(&dir, "data.kdl", text);
    assert!(found.status.success(), "{}", stderr(&found));
    let bundled = check(
        &dir,
        "bundled.kdl",
        "experiment b {\n    dataset { source bundled }\n}\n",
    );
    assert!(bundled.status.success(), "{}", stderr(&bundled));
}

#[test]
fn parse_and_planner_problems_come_in_one_report() {
    let dir = folder("together");
    let text = "experiment together {
    model {
        d-model 100
        heads 8
        dropuot 0.1
    }
    variant a { train { epochs 2 } }
    expect val-dist \"a\" better-than=\"b\"
}
";
    let output = check(&dir, "together.kdl", text);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("3 problems in"), "{err}");
    assert!(err.contains("unknown field `dropuot` in `model`"), "{err}");
    assert!(err.contains("d-model (100) must be divisible by heads (8)"), "{err}");
    assert!(err.contains("`b` matches no planned run"), "{err}");
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_with_the_byte_offset() {
    let dir = folder("latin1");
    let path = dir.join("latin1.kdl");
    // "Beethoven, Sonate pathétique" in Latin-1: é is the single byte 0xE9.
    let mut bytes = b"experiment x {\n    description \"Sonate path".to_vec();
    let offset = bytes.len();
    bytes.extend_from_slice(b"\xe9tique\"\n}\n");
    std::fs::write(&path, &bytes).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("check")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    // miette wraps the message where the path's length puts it: unwrapped here.
    let text = stderr(&output)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("runner::not-utf8"), "{text}");
    assert!(text.contains(&format!("is not UTF-8 text: byte {offset}")), "{text}");
    assert!(text.contains("(line 2) starts an invalid sequence"), "{text}");
    assert!(text.contains("save the file as UTF-8"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
