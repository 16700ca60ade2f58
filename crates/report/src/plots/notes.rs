//! Velocities note by note: predicted vs true along saved validation
//! windows, the histogram of true vs greedy-predicted velocities over the
//! whole test split, and a velocity piano roll of one test excerpt.

use plotters::prelude::*;

use super::legend::{self, Entry, Mark};
use super::{Area, DrawResult};
use crate::collect::RunRecords;
use crate::table::Cell;
use runner_store::records::PiecePrediction;

/// Width of a velocity bin in the histogram.
const HISTOGRAM_BIN: u32 = 4;
/// The longest excerpt a piano roll shows, in seconds.
const EXCERPT_SECONDS: f64 = 12.0;
/// The most notes a piano roll shows (a dense passage ends it sooner).
const EXCERPT_NOTES: usize = 400;

/// The examples figure's legend.
pub fn example_entries() -> Vec<Entry> {
    vec![
        Entry::new("true", BLACK.to_rgba(), Mark::Line(2)),
        Entry::new("teacher-forced", BLUE.to_rgba(), Mark::Line(2)),
        Entry::new("greedy", RED.to_rgba(), Mark::Line(2)),
    ]
}

/// Predicted (teacher-forced, greedy) vs true velocity along `run`'s first
/// `windows` saved validation windows, one panel each.
pub fn examples(root: &Area<'_>, run: &RunRecords, windows: usize) -> DrawResult {
    let entries = example_entries();
    let (charts, strip) = legend::split(root, &entries);
    let panels = charts.split_evenly((windows, 1));
    for (example, panel) in run.examples.iter().zip(panels.iter()) {
        let length = example.truth.len().max(2) as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("validation window {}", example.window), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..length - 1.0, 0.0..127.0)?;
        chart
            .configure_mesh()
            .x_desc("note")
            .y_desc("velocity")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for (values, entry) in [&example.truth, &example.teacher_forced, &example.greedy]
            .into_iter()
            .zip(&entries)
        {
            let points = values.iter().enumerate().map(|(i, v)| (i as f64, f64::from(*v)));
            chart.draw_series(LineSeries::new(points, entry.color.stroke_width(2)))?;
        }
    }
    legend::draw(&strip, &entries)
}

/// The runs of `cell` with test predictions.
pub fn test_runs<'a>(runs: &'a [RunRecords], cell: &Cell) -> Vec<&'a RunRecords> {
    cell.rows
        .iter()
        .map(|&r| &runs[r])
        .filter(|r| !r.test.is_empty())
        .collect()
}

/// The histogram figure's legend.
pub fn histogram_entries() -> Vec<Entry> {
    vec![
        Entry::new("true", BLACK.mix(0.4), Mark::Bar),
        Entry::new("greedy-predicted", RED.mix(0.5), Mark::Bar),
    ]
}

/// Mean |greedy − true| velocity over every note of `pieces` (each once).
pub fn note_dist<'a>(pieces: impl IntoIterator<Item = &'a PiecePrediction>) -> (f64, usize) {
    let (mut sum, mut count) = (0u64, 0usize);
    for piece in pieces {
        for (t, g) in piece.truth.iter().zip(&piece.greedy) {
            sum += u64::from(t.abs_diff(*g));
            count += 1;
        }
    }
    (
        if count == 0 {
            f64::NAN
        } else {
            sum as f64 / count as f64
        },
        count,
    )
}

/// Counts of `values` in bins of [`HISTOGRAM_BIN`].
fn binned<'a>(values: impl Iterator<Item = &'a u8>) -> Vec<u32> {
    let bins = 128 / HISTOGRAM_BIN;
    let mut counts = vec![0u32; bins as usize];
    for v in values {
        counts[(u32::from(*v) / HISTOGRAM_BIN).min(bins - 1) as usize] += 1;
    }
    counts
}

/// True vs greedy-predicted velocities over the whole test split, every
/// note of every run of the cell once, one panel per cell with test
/// predictions.
pub fn histogram(root: &Area<'_>, runs: &[RunRecords], cells: &[Cell]) -> DrawResult {
    let entries = histogram_entries();
    let (charts, strip) = legend::split(root, &entries);
    let drawn: Vec<(&Cell, Vec<&RunRecords>)> = cells
        .iter()
        .map(|c| (c, test_runs(runs, c)))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let panels = charts.split_evenly((drawn.len(), 1));
    let bins = 128 / HISTOGRAM_BIN;
    for ((cell, with_test), panel) in drawn.iter().zip(panels.iter()) {
        let pieces = || with_test.iter().flat_map(|r| r.test.iter());
        let truth = binned(pieces().flat_map(|p| p.truth.iter()));
        let greedy = binned(pieces().flat_map(|p| p.greedy.iter()));
        let (dist, notes) = note_dist(pieces());
        let top = truth.iter().chain(&greedy).copied().max().unwrap_or(1).max(1);
        let caption = format!(
            "{}: {} notes of {} test pieces, {} run{}; greedy dist {dist:.2}",
            cell.text(),
            notes,
            with_test[0].test.len(),
            with_test.len(),
            if with_test.len() == 1 { "" } else { "s" }
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d((0u32..bins).into_segmented(), 0u32..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .x_desc("velocity")
            .y_desc("notes")
            .x_label_formatter(&|v| match v {
                SegmentValue::Exact(b) | SegmentValue::CenterOf(b) => (b * HISTOGRAM_BIN).to_string(),
                SegmentValue::Last => String::new(),
            })
            .draw()?;
        for (counts, entry) in [&truth, &greedy].into_iter().zip(&entries) {
            chart.draw_series(
                Histogram::vertical(&chart)
                    .style(entry.color.filled())
                    .margin(1)
                    .data(counts.iter().enumerate().map(|(b, c)| (b as u32, *c))),
            )?;
        }
    }
    legend::draw(&strip, &entries)
}

/// The notes a piano roll of `piece` shows: those starting in the first
/// [`EXCERPT_SECONDS`] from its first note, at most [`EXCERPT_NOTES`];
/// with the excerpt's start and end in seconds.
pub fn excerpt(piece: &PiecePrediction) -> (Vec<usize>, f64, f64) {
    let Some(&first) = piece.start.first() else {
        return (Vec::new(), 0.0, 1.0);
    };
    let mut notes: Vec<usize> = (0..piece.start.len())
        .filter(|&i| piece.start[i] >= first && piece.start[i] < first + EXCERPT_SECONDS)
        .collect();
    notes.truncate(EXCERPT_NOTES);
    let last_start = notes.last().map_or(first, |&i| piece.start[i]);
    let end = if notes.len() == EXCERPT_NOTES {
        last_start + 0.5
    } else {
        first + EXCERPT_SECONDS
    };
    (notes, first, end.max(first + 1.0))
}

/// A velocity's colour: viridis from 0 (dark blue) to 127 (yellow).
fn velocity_color(velocity: u8) -> RGBColor {
    ViridisRGB::get_color_normalized(f64::from(velocity), 0.0, 127.0)
}

/// A velocity piano roll of `piece`'s excerpt: time × pitch, colour =
/// velocity, the true velocities above and the greedy-predicted below, with
/// the colour scale at the right.
pub fn piano_roll(root: &Area<'_>, piece: &PiecePrediction) -> DrawResult {
    let (width, _) = root.dim_in_pixel();
    let (rolls, scale) = root.split_horizontally(width - 90);
    let (notes, t0, t1) = excerpt(piece);
    let pitches = notes.iter().map(|&i| piece.pitch[i]);
    let low = pitches.clone().min().unwrap_or(60).saturating_sub(2);
    let high = pitches.max().unwrap_or(72).saturating_add(2).min(127);
    let panels = rolls.split_evenly((2, 1));
    for (panel, (title, velocities)) in panels.iter().zip([
        ("true velocities", &piece.truth),
        ("greedy-predicted velocities", &piece.greedy),
    ]) {
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(t0..t1, f64::from(low)..f64::from(high) + 1.0)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("pitch (MIDI)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(notes.iter().map(|&i| {
            let pitch = f64::from(piece.pitch[i]);
            let end = piece.end[i].max(piece.start[i] + 0.02).min(t1);
            Rectangle::new(
                [(piece.start[i], pitch + 0.1), (end, pitch + 0.9)],
                velocity_color(velocities[i]).filled(),
            )
        }))?;
    }
    let mut bar = ChartBuilder::on(&scale)
        .margin_top(40)
        .margin_bottom(40)
        .margin_right(10)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..1.0, 0.0..128.0)?;
    bar.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .y_desc("velocity")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    bar.draw_series((0..=127u8).map(|v| {
        Rectangle::new(
            [(0.0, f64::from(v)), (1.0, f64::from(v) + 1.0)],
            velocity_color(v).filled(),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(starts: &[f64]) -> PiecePrediction {
        PiecePrediction {
            piece: "p".to_owned(),
            pitch: vec![60; starts.len()],
            start: starts.to_vec(),
            end: starts.iter().map(|s| s + 0.5).collect(),
            truth: vec![64; starts.len()],
            greedy: vec![60; starts.len()],
            listen: None,
        }
    }

    #[test]
    fn an_excerpt_is_the_first_seconds_or_the_first_notes() {
        let (notes, t0, t1) = excerpt(&piece(&[2.0, 3.0, 13.9, 14.1]));
        assert_eq!((notes, t0, t1), (vec![0, 1, 2], 2.0, 14.0));
        let dense: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.01).collect();
        let (notes, _, t1) = excerpt(&piece(&dense));
        assert_eq!(notes.len(), EXCERPT_NOTES);
        assert_eq!(t1, dense[EXCERPT_NOTES - 1] + 0.5);
        assert_eq!(excerpt(&piece(&[])).0, Vec::<usize>::new());
    }

    #[test]
    fn the_note_distance_counts_each_note_once() {
        let (dist, notes) = note_dist([&piece(&[0.0, 1.0]), &piece(&[0.0])]);
        assert_eq!((dist, notes), (4.0, 3));
        assert!(note_dist([]).0.is_nan());
    }
}
