//! The report's data section: the datasets the runs trained on → Markdown.
//!
//! In: the [`DataUsed`] entries collected from the runs' `data.json`. Out:
//! for each dataset, its source, window, token scheme, bin edges and
//! warnings, and a table of groups, pieces, notes and windows per split
//! (pure; no I/O).

use super::collect::DataUsed;
use super::stats;
use super::table::Table;
use runner_data::summary::DatasetSummary;
use runner_plan::config::Scheme;

/// The data section's Markdown (without its heading).
pub fn render(datasets: &[DataUsed]) -> String {
    match datasets {
        [] => "No finished run recorded its dataset (`data.json`).\n".to_owned(),
        [only] => describe(only),
        several => several
            .iter()
            .map(|used| format!("### Runs {}\n\n{}", used.runs.join(", "), describe(used)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// One dataset: a few facts, then the table of its splits.
fn describe(used: &DataUsed) -> String {
    let summary = &used.summary;
    let list = |edges: &[f64]| edges.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
    let mut text = format!("- **source**: {}\n", summary.source);
    text.push_str(&format!(
        "- **windows**: {} notes, a new window every {} notes; token scheme{} {}\n",
        summary.window.length,
        summary.window.step,
        if used.schemes.len() == 1 { "" } else { "s" },
        used.schemes
            .iter()
            .map(|s| format!("`{}`", scheme_name(*s)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let edges = &summary.edges;
    text.push_str(&format!(
        "- **bin lower edges**: dstart (s) {}; duration (s) {}; velocity {}\n",
        list(&edges.dstart),
        list(&edges.duration),
        list(&edges.velocity)
    ));
    if !summary.skipped.is_empty() || summary.dropped_notes > 0 {
        text.push_str(&format!(
            "- **left out**: {} file(s) or row(s); {} note(s) outside the piano range\n",
            summary.skipped.len(),
            summary.dropped_notes
        ));
    }
    let warnings = summary.warnings();
    if !warnings.is_empty() {
        text.push_str("- **warnings**:\n");
        for warning in &warnings {
            text.push_str(&format!("  - {warning}\n"));
        }
    }
    text.push('\n');
    text.push_str(&splits_table(summary).markdown());
    text
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Separate => "separate",
        Scheme::Shared => "shared",
    }
}

/// Pieces, notes, windows and velocity statistics per split.
fn splits_table(summary: &DatasetSummary) -> Table {
    let header = [
        "split",
        "groups",
        "pieces",
        "notes",
        "windows",
        "velocity mean ± std",
        "velocity range",
    ];
    let rows = summary
        .splits
        .iter()
        .map(|split| {
            let (moments, range) = match &split.velocity {
                Some(v) => (
                    format!("{} ± {}", stats::fixed(v.mean, 1), stats::fixed(v.std, 1)),
                    format!("{}–{}", v.min, v.max),
                ),
                None => ("—".to_owned(), "—".to_owned()),
            };
            vec![
                split.split.to_string(),
                split.groups().to_string(),
                split.pieces.len().to_string(),
                split.notes.to_string(),
                split.windows.to_string(),
                moments,
                range,
            ]
        })
        .collect();
    Table {
        header: header.map(str::to_owned).to_vec(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner_data::split::Split;
    use runner_data::summary::{BinCounts, EdgeLists, PieceSummary, SplitSummary, VelocityStats};
    use runner_plan::config::Window;

    fn split(split: Split, pieces: &[(&str, usize, usize)], velocity: Option<VelocityStats>) -> SplitSummary {
        let pieces: Vec<PieceSummary> = pieces
            .iter()
            .map(|&(name, notes, windows)| PieceSummary {
                name: name.to_owned(),
                notes,
                windows,
                // `a` and `b` are two performances of one piece.
                group: if name == "c" { "c".to_owned() } else { "ab/".to_owned() },
                velocities: 40,
                warnings: Vec::new(),
            })
            .collect();
        SplitSummary {
            split,
            notes: pieces.iter().map(|p| p.notes).sum(),
            windows: pieces.iter().map(|p| p.windows).sum(),
            pieces,
            bins: BinCounts {
                dstart: vec![],
                duration: vec![],
                velocity: vec![],
            },
            velocity,
        }
    }

    fn used(scheme: Scheme, runs: &[&str]) -> DataUsed {
        let stats = VelocityStats {
            min: 3,
            max: 120,
            mean: 65.94,
            std: 19.46,
        };
        DataUsed {
            summary: DatasetSummary {
                source: "2 MIDI files in data/x".to_owned(),
                splits: vec![
                    split(Split::Train, &[("a", 100, 3), ("b", 50, 1)], Some(stats)),
                    split(Split::Validation, &[], None),
                    split(Split::Test, &[("c", 10, 1)], Some(stats)),
                ],
                edges: EdgeLists {
                    dstart: vec![0.0, 0.5],
                    duration: vec![0.0, 1.25],
                    velocity: vec![0.0, 64.0],
                },
                window: Window { length: 128, step: 42 },
                scheme,
                skipped: vec![],
                dropped_notes: 0,
                duplicates: vec![],
                kept_duplicates: false,
                folds: None,
                tables: vec![],
            },
            schemes: vec![scheme],
            runs: runs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn one_dataset_gives_its_facts_and_a_row_per_split() {
        let text = render(&[used(Scheme::Shared, &["aaaa1111"])]);
        assert_eq!(
            text,
            "- **source**: 2 MIDI files in data/x\n\
             - **windows**: 128 notes, a new window every 42 notes; token scheme `shared`\n\
             - **bin lower edges**: dstart (s) 0, 0.5; duration (s) 0, 1.25; velocity 0, 64\n\
             - **warnings**:\n  \
             - the validation split holds 0 pieces (0 notes): its metrics rest on little data; \
             `split k-fold` evaluates on every piece in turn\n  \
             - the test split holds 1 piece (10 notes): its metrics rest on little data; \
             `split k-fold` evaluates on every piece in turn\n\
             \n\
             | split | groups | pieces | notes | windows | velocity mean ± std | velocity range |\n\
             |---|---|---|---|---|---|---|\n\
             | train | 1 | 2 | 150 | 4 | 65.9 ± 19.5 | 3–120 |\n\
             | validation | 0 | 0 | 0 | 0 | — | — |\n\
             | test | 1 | 1 | 10 | 1 | 65.9 ± 19.5 | 3–120 |\n"
        );
    }

    #[test]
    fn several_datasets_are_headed_by_their_runs_and_schemes_are_listed() {
        let mut both = used(Scheme::Separate, &["aaaa1111", "bbbb2222"]);
        both.schemes.push(Scheme::Shared);
        let mut other = used(Scheme::Separate, &["cccc3333"]);
        other.summary.window.step = 64;
        let text = render(&[both, other]);
        assert!(text.starts_with("### Runs aaaa1111, bbbb2222\n\n"), "{text}");
        assert!(text.contains("token schemes `separate`, `shared`\n"), "{text}");
        assert!(text.contains("\n### Runs cccc3333\n\n"), "{text}");
        assert!(text.contains("a new window every 64 notes"), "{text}");
    }

    #[test]
    fn no_dataset_is_said_plainly() {
        assert!(render(&[]).contains("No finished run recorded its dataset"));
    }
}
