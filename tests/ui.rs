//! Golden diagnostics: every `tests/ui/NAME.kdl` is an invalid experiment
//! file, and `tests/ui/NAME.stderr` is exactly what `runner check` reports
//! for it, rendered without colour at a width of 100 columns.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the `.stderr` files after a
//! deliberate change to a message, then review the diff.

use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use runner_plan as plan;

/// The rendered problems for one file (what `runner check` reports), or
/// `None` if it has none.
fn render(path: &Path) -> Option<String> {
    let error = plan::check(path).err()?;
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &error)
        .expect("rendering to a string cannot fail");
    Some(out)
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir("tests/ui")
        .expect("tests/ui exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "kdl"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_invalid_file_gives_its_golden_diagnostic() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let golden = case.with_extension("stderr");
        let Some(actual) = render(case) else {
            failures.push(format!("{}: no problem reported", case.display()));
            continue;
        };
        if update {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: diagnostic differs\n--- expected\n{expected}\n--- actual\n{actual}",
                case.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no {} (run with UPDATE_GOLDEN=1)",
                case.display(),
                golden.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_shipped_experiments_are_valid() {
    for name in ["quickstart", "pathetique", "ablation"] {
        let path = PathBuf::from(format!("experiments/{name}.kdl"));
        assert_eq!(render(&path), None, "{name}.kdl has problems");
    }
}

#[test]
fn the_language_guide_documents_every_field() {
    let guide = std::fs::read_to_string("docs/dsl.md").unwrap();
    // Each path is the first cell of a row of the guide's tables.
    let rows: Vec<&str> = guide
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once("` |").map(|(path, _)| path))
        .collect();
    let missing: Vec<String> = runner_spec::schema::all_paths()
        .into_iter()
        .filter(|path| !rows.contains(&path.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/dsl.md has no table row for {missing:?}");
}
