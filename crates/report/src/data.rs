//! The report's data section: the datasets the runs trained on → Markdown.
//!
//! In: the [`DataUsed`] entries collected from the runs' `data.json`. Out:
//! for each dataset, its source, window, token scheme, bin edges and
//! warnings, and a table of groups, pieces, notes and windows per split;
//! the folds of one k-fold split as one table, a row per fold (pure; no
//! I/O).

use super::collect::DataUsed;
use super::stats;
use super::table::Table;
use runner_data::split::Split;
use runner_data::summary::DatasetSummary;
use runner_plan::config::Scheme;
use runner_plan::show;

/// The data section's Markdown (without its heading).
pub fn render(datasets: &[DataUsed]) -> String {
    if let Some(text) = folds(datasets) {
        return text;
    }
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

/// The folds of one k-fold split (several datasets, each a fold, of one
/// source and window): the shared facts once, then a row per fold with
/// its test pieces; `None` for anything else.
fn folds(datasets: &[DataUsed]) -> Option<String> {
    let first = &datasets.first()?.summary;
    let k = first.folds?;
    let one_split = datasets.len() > 1
        && datasets.len() <= k
        && datasets.iter().all(|d| {
            d.summary.folds == Some(k) && d.summary.source == first.source && d.summary.window == first.window
        });
    if !one_split {
        return None;
    }
    let mut schemes: Vec<Scheme> = Vec::new();
    for scheme in datasets.iter().flat_map(|d| &d.schemes) {
        if !schemes.contains(scheme) {
            schemes.push(*scheme);
        }
    }
    let mut text = format!("- **source**: {}\n", first.source);
    text.push_str(&windows_line(first, &schemes));
    if datasets.iter().all(|d| d.summary.edges == first.edges) {
        text.push_str(&edges_line(first));
    } else {
        text.push_str("- **bin lower edges**: each fold's own, from its training split\n");
    }
    text.push_str(&format!(
        "- **folds**: {k} (`split k-fold`), {} with finished runs: each fold tests on its own groups, validates on the next fold's and trains on the rest\n",
        datasets.len()
    ));
    // Each warning once, with the runs whose fold has it.
    let mut warned: Vec<(String, Vec<&str>)> = Vec::new();
    for d in datasets {
        for warning in d.summary.content_warnings() {
            match warned.iter_mut().find(|(w, _)| *w == warning) {
                Some((_, runs)) => runs.extend(d.runs.iter().map(String::as_str)),
                None => warned.push((warning, d.runs.iter().map(String::as_str).collect())),
            }
        }
    }
    let small: Vec<&runner_data::summary::SplitSummary> =
        datasets.iter().flat_map(|d| d.summary.small_splits()).collect();
    if !warned.is_empty() || !small.is_empty() {
        text.push_str("- **warnings**:\n");
        for (warning, runs) in &warned {
            text.push_str(&format!("  - {warning} (runs {})\n", runs.join(", ")));
        }
        if let (Some(fewest), Some(most)) = (small.iter().map(|s| s.notes).min(), small.iter().map(|s| s.notes).max()) {
            text.push_str(&format!(
                "  - {} of the folds' validation and test splits are small ({} to {} notes, under {} pieces or {} notes): one fold's metrics rest on little data, so the results below read the folds together, as replicates\n",
                small.len(),
                fewest,
                most,
                runner_data::summary::SMALL_SPLIT_PIECES,
                runner_data::summary::SMALL_SPLIT_NOTES
            ));
        }
    }
    let split_cell = |d: &DataUsed, split| {
        d.summary.splits.iter().find(|s| s.split == split).map_or_else(
            || "—".to_owned(),
            |s| format!("{}, {} notes", show::count(s.pieces.len(), "piece"), s.notes),
        )
    };
    let rows = datasets
        .iter()
        .map(|d| {
            let tested: Vec<&str> = d
                .summary
                .splits
                .iter()
                .filter(|s| s.split == Split::Test)
                .flat_map(|s| s.pieces.iter().map(|p| p.name.as_str()))
                .collect();
            vec![
                d.runs.join(", "),
                split_cell(d, Split::Train),
                split_cell(d, Split::Validation),
                split_cell(d, Split::Test),
                tested.join(", "),
            ]
        })
        .collect();
    let table = Table {
        header: ["runs", "train", "validation", "test", "test pieces"]
            .map(str::to_owned)
            .to_vec(),
        rows,
    };
    text.push('\n');
    text.push_str(&table.markdown());
    Some(text)
}

/// `- **windows**: 32 notes, a new window every 16 notes; token scheme `separate``.
fn windows_line(summary: &DatasetSummary, schemes: &[Scheme]) -> String {
    format!(
        "- **windows**: {} notes, a new window every {} notes; token scheme{} {}\n",
        summary.window.length,
        summary.window.step,
        if schemes.len() == 1 { "" } else { "s" },
        schemes
            .iter()
            .map(|s| format!("`{}`", scheme_name(*s)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `- **bin lower edges**: dstart (s) ...; duration (s) ...; velocity ...`.
fn edges_line(summary: &DatasetSummary) -> String {
    let list = |edges: &[f64]| edges.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
    let edges = &summary.edges;
    format!(
        "- **bin lower edges**: dstart (s) {}; duration (s) {}; velocity {}\n",
        list(&edges.dstart),
        list(&edges.duration),
        list(&edges.velocity)
    )
}

/// One dataset: a few facts, then the table of its splits.
fn describe(used: &DataUsed) -> String {
    let summary = &used.summary;
    let mut text = format!("- **source**: {}\n", summary.source);
    text.push_str(&windows_line(summary, &used.schemes));
    text.push_str(&edges_line(summary));
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

    #[test]
    fn the_folds_of_one_split_are_one_table_with_their_test_pieces() {
        let fold = |runs: &[&str], test: &str| {
            let mut used = used(Scheme::Separate, runs);
            used.summary.folds = Some(3);
            used.summary.splits[2].pieces[0].name = test.to_owned();
            used
        };
        let text = render(&[fold(&["aaaa1111", "bbbb2222"], "c"), fold(&["cccc3333"], "d")]);
        assert!(!text.contains("###"), "{text}");
        assert!(
            text.contains("- **folds**: 3 (`split k-fold`), 2 with finished runs: each fold tests on its own groups"),
            "{text}"
        );
        assert!(
            text.contains(
                "| runs | train | validation | test | test pieces |\n|---|---|---|---|---|\n\
                 | aaaa1111, bbbb2222 | 2 pieces, 150 notes | 0 pieces, 0 notes | 1 piece, 10 notes | c |\n\
                 | cccc3333 | 2 pieces, 150 notes | 0 pieces, 0 notes | 1 piece, 10 notes | d |\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  - 4 of the folds' validation and test splits are small (0 to 10 notes, under 5 pieces or 10000 notes): \
                 one fold's metrics rest on little data, so the results below read the folds together, as replicates\n"
            ),
            "{text}"
        );
    }
}
