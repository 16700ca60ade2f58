//! The dataset summary as text: a [`Dataset`]'s summary in, terminal tables out.
//!
//! Pure functions (no I/O) for `runner data inspect` and `runner data
//! export`: groups, pieces, notes and windows per split, the bin edges in
//! use, the share of notes in each bin, velocity statistics, the skipped
//! files, the duplicates and the data's warnings; and the same as JSON.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::dataset::{Dataset, Origin};
use super::duplicates::Identical;
use super::export::Exported;
use super::split::Split;
use super::summary::{DatasetSummary, SplitSummary};

/// Every table `runner data inspect` prints, with a heading each.
pub fn render(dataset: &Dataset) -> String {
    let summary = &dataset.summary;
    let mut out = String::new();
    out.push_str(&format!(
        "source: {}\nwindows: {} notes every {} ({} scheme; source vocabulary {}, target {})\ncache: {}\n",
        summary.source,
        summary.window.length,
        summary.window.step,
        match summary.scheme {
            runner_plan::config::Scheme::Separate => "separate",
            runner_plan::config::Scheme::Shared => "shared",
        },
        dataset.vocab.source_size(),
        dataset.vocab.target_size(),
        origin(&dataset.origin),
    ));
    for (title, table) in [
        ("Splits", splits_table(summary)),
        ("Bin edges", edges_table(summary)),
        ("Share of notes per bin", shares_table(summary)),
        ("Velocity", velocity_table(summary)),
    ] {
        out.push_str(&format!("\n{title}\n{table}\n"));
    }
    out.push_str(&skipped_text(summary));
    out.push_str(&duplicates_text(summary));
    out.push_str(&warnings_text(summary));
    out
}

/// The pieces left out (or kept) as repeats of another, as a table.
pub fn duplicates_text(summary: &DatasetSummary) -> String {
    if summary.duplicates.is_empty() {
        return "\nDuplicates: none\n".to_owned();
    }
    let mut builder = Builder::default();
    builder.push_record(["duplicate", "of", "identical"]);
    for d in &summary.duplicates {
        let identical = match d.identical {
            Identical::Bytes => "bytes",
            Identical::Notes => "notes",
        };
        builder.push_record([d.name.clone(), d.of.clone(), identical.to_owned()]);
    }
    let fate = if summary.kept_duplicates { "kept" } else { "left out" };
    format!(
        "\nDuplicates ({}, {fate}; the first of each by name stays)\n{}\n",
        summary.duplicates.len(),
        styled(builder)
    )
}

/// [`DatasetSummary::warnings`], one per line.
pub fn warnings_text(summary: &DatasetSummary) -> String {
    let warnings = summary.warnings();
    if warnings.is_empty() {
        return "\nWarnings: none\n".to_owned();
    }
    let mut out = format!("\nWarnings ({})\n", warnings.len());
    for warning in warnings {
        out.push_str(&format!("  - {warning}\n"));
    }
    out
}

/// `runner data inspect --json`: every piece (kept or a duplicate) with
/// its group, split, notes, windows, distinct velocities, duplicate-of
/// and warnings; the splits' counts; skipped files; the warnings.
pub fn json(dataset: &Dataset) -> serde_json::Value {
    let summary = &dataset.summary;
    let mut pieces: Vec<serde_json::Value> = summary
        .splits
        .iter()
        .flat_map(|split| {
            split.pieces.iter().map(|piece| {
                serde_json::json!({
                    "name": piece.name,
                    "group": piece.group,
                    "split": split.split,
                    "notes": piece.notes,
                    "windows": piece.windows,
                    "velocities": piece.velocities,
                    "duplicate-of": null,
                    "warnings": summary.piece_warnings(piece),
                })
            })
        })
        .collect();
    // Kept duplicates are among the pieces already.
    let left_out: &[_] = if summary.kept_duplicates {
        &[]
    } else {
        &summary.duplicates
    };
    for d in left_out {
        pieces.push(serde_json::json!({
            "name": d.name,
            "group": null,
            "split": null,
            "notes": null,
            "windows": null,
            "velocities": null,
            "duplicate-of": d.of,
            "identical": d.identical,
            "warnings": [],
        }));
    }
    pieces.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let splits: Vec<serde_json::Value> = summary
        .splits
        .iter()
        .map(|s| {
            serde_json::json!({
                "split": s.split,
                "groups": s.groups(),
                "pieces": s.pieces.len(),
                "notes": s.notes,
                "windows": s.windows,
            })
        })
        .collect();
    serde_json::json!({
        "source": summary.source,
        "splits": splits,
        "pieces": pieces,
        "duplicates": summary.duplicates,
        "kept-duplicates": summary.kept_duplicates,
        "skipped": summary.skipped,
        "dropped-notes": summary.dropped_notes,
        "warnings": summary.warnings(),
    })
}

fn origin(origin: &Origin) -> String {
    match origin {
        Origin::Built { key } => format!("built and stored as {key}"),
        Origin::Rebuilt { key, reason } => {
            format!("rebuilt and stored as {key} (the old entry was unusable: {reason})")
        }
        Origin::Cached { key } => format!("read from entry {key}"),
        Origin::Uncached => "not used".to_owned(),
    }
}

fn styled(builder: Builder) -> String {
    let mut table = builder.build();
    table.with(Style::rounded());
    table.to_string()
}

/// Pieces, notes and windows per split, and in all.
pub fn splits_table(summary: &DatasetSummary) -> String {
    let mut builder = Builder::default();
    builder.push_record(["split", "groups", "pieces", "notes", "windows"]);
    for s in &summary.splits {
        builder.push_record([
            s.split.to_string(),
            s.groups().to_string(),
            s.pieces.len().to_string(),
            s.notes.to_string(),
            s.windows.to_string(),
        ]);
    }
    let total = |f: fn(&SplitSummary) -> usize| summary.splits.iter().map(f).sum::<usize>().to_string();
    builder.push_record([
        "all".to_owned(),
        total(SplitSummary::groups),
        total(|s| s.pieces.len()),
        total(|s| s.notes),
        total(|s| s.windows),
    ]);
    styled(builder)
}

/// The lower edge of every bin of each feature.
pub fn edges_table(summary: &DatasetSummary) -> String {
    let mut builder = Builder::default();
    builder.push_record(["feature", "bins", "lower edges"]);
    let edges = &summary.edges;
    for (feature, list) in [
        ("dstart (s)", &edges.dstart),
        ("duration (s)", &edges.duration),
        ("velocity", &edges.velocity),
    ] {
        let text = list.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
        builder.push_record([feature.to_owned(), list.len().to_string(), text]);
    }
    styled(builder)
}

/// The share of each split's notes in each bin, per feature.
pub fn shares_table(summary: &DatasetSummary) -> String {
    let widest = summary
        .splits
        .iter()
        .flat_map(|s| [s.bins.dstart.len(), s.bins.duration.len(), s.bins.velocity.len()])
        .max()
        .unwrap_or(0);
    let mut builder = Builder::default();
    let mut header = vec!["feature".to_owned(), "split".to_owned()];
    header.extend((0..widest).map(|i| format!("bin {i}")));
    builder.push_record(header);
    for feature in ["dstart", "duration", "velocity"] {
        for s in &summary.splits {
            let counts = match feature {
                "dstart" => &s.bins.dstart,
                "duration" => &s.bins.duration,
                _ => &s.bins.velocity,
            };
            let total: u64 = counts.iter().sum();
            let mut row = vec![feature.to_owned(), s.split.to_string()];
            row.extend((0..widest).map(|i| match (counts.get(i), total) {
                (None, _) => String::new(),
                (Some(_), 0) => "-".to_owned(),
                (Some(&c), total) => format!("{:.1}%", 100.0 * c as f64 / total as f64),
            }));
            builder.push_record(row);
        }
    }
    styled(builder)
}

/// Velocity minimum, maximum, mean and standard deviation per split.
pub fn velocity_table(summary: &DatasetSummary) -> String {
    let mut builder = Builder::default();
    builder.push_record(["split", "min", "max", "mean", "std"]);
    for s in &summary.splits {
        let mut row = vec![s.split.to_string()];
        match s.velocity {
            Some(v) => row.extend([
                v.min.to_string(),
                v.max.to_string(),
                format!("{:.1}", v.mean),
                format!("{:.1}", v.std),
            ]),
            None => row.extend(["-"; 4].map(str::to_owned)),
        }
        builder.push_record(row);
    }
    styled(builder)
}

/// The skipped files and dropped notes, as a table or one line.
pub fn skipped_text(summary: &DatasetSummary) -> String {
    let dropped = match summary.dropped_notes {
        0 => String::new(),
        n => format!("{n} notes outside the piano range 21..=108 were dropped\n"),
    };
    if summary.skipped.is_empty() {
        return format!("\nSkipped files: none\n{dropped}");
    }
    let mut builder = Builder::default();
    builder.push_record(["skipped", "reason"]);
    for s in &summary.skipped {
        builder.push_record([s.what.clone(), s.reason.clone()]);
    }
    format!(
        "\nSkipped files ({})\n{}\n{dropped}",
        summary.skipped.len(),
        styled(builder)
    )
}

/// What `runner data export` wrote.
pub fn render_export(exported: &Exported) -> String {
    let mut builder = Builder::default();
    builder.push_record(["split", "pieces"]);
    for (split, n) in Split::ALL.iter().zip(exported.pieces) {
        builder.push_record([split.to_string(), n.to_string()]);
    }
    let mut out = format!(
        "wrote {} ({} notes)\n{}\n",
        exported.path.display(),
        exported.notes,
        styled(builder)
    );
    if !exported.skipped.is_empty() {
        out.push_str(&format!("skipped {} files or rows:\n", exported.skipped.len()));
        for s in &exported.skipped {
            out.push_str(&format!("  {}: {}\n", s.what, s.reason));
        }
    }
    if !exported.duplicates.is_empty() {
        out.push_str(&format!("{} repeat another piece:\n", exported.duplicates.len()));
        for d in &exported.duplicates {
            out.push_str(&format!("  {} repeats {}\n", d.name, d.of));
        }
    }
    out
}
