//! Curves over training: validation distance per epoch (coloured by cell,
//! each run thin, the cell's mean thick, the baselines drawn) and the
//! learning rate per optimizer step (one line per cell).

use plotters::prelude::*;

use super::legend::{self, Entry, Mark};
use super::{Area, DrawResult, bounds, padded};
use crate::collect::RunRecords;
use crate::table::Cell;

/// A cell's colour in every figure.
pub fn color(cell: usize) -> RGBAColor {
    Palette99::pick(cell).to_rgba()
}

/// The runs of `cell` that have a learning curve.
fn curve_runs<'a>(runs: &'a [RunRecords], cell: &Cell) -> Vec<&'a RunRecords> {
    cell.rows
        .iter()
        .map(|&r| &runs[r])
        .filter(|r| r.curve.iter().any(|p| p.val_dist.is_some()))
        .collect()
}

fn points(run: &RunRecords) -> Vec<(f64, f64)> {
    run.curve
        .iter()
        .filter_map(|p| Some((p.epoch as f64, p.val_dist?)))
        .collect()
}

/// The mean over `runs` of the validation distance at each epoch some run
/// evaluated.
fn mean_curve(runs: &[&RunRecords]) -> Vec<(f64, f64)> {
    let mut epochs: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.curve.iter().filter(|p| p.val_dist.is_some()).map(|p| p.epoch))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
        .into_iter()
        .map(|epoch| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.curve.iter().find(|p| p.epoch == epoch)?.val_dist)
                .collect();
            (epoch as f64, values.iter().sum::<f64>() / values.len() as f64)
        })
        .collect()
}

/// The mean of baseline `which` (0: training mean, 1: bin centre) over `runs`.
fn mean_baseline(runs: &[&RunRecords], which: usize) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .map(|r| r.baselines[which])
        .filter(|v| v.is_finite())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The learning-curve figure's legend: a thick line per cell, then the two
/// baselines' strokes.
pub fn curve_entries(runs: &[RunRecords], cells: &[Cell]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = cells
        .iter()
        .enumerate()
        .filter_map(|(i, cell)| {
            let drawn = curve_runs(runs, cell).len();
            let label = match drawn {
                0 => return None,
                1 => cell.text(),
                n => format!("{} ({n} runs)", cell.text()),
            };
            Some(Entry::new(label, color(i), Mark::Line(3)))
        })
        .collect();
    let grey = BLACK.mix(0.6);
    entries.push(Entry::new("baseline: predict the training mean", grey, Mark::Dashed));
    entries.push(Entry::new(
        "baseline: the centre of the note's velocity bin",
        grey,
        Mark::Dotted,
    ));
    entries
}

/// How many x labels to ask plotters for over epochs `first..=last`: no
/// more than there are whole epochs, so its "nice" steps are whole too.
fn epoch_label_count(first: u64, last: u64) -> usize {
    (last.saturating_sub(first) as usize + 1).min(13)
}

/// An epoch tick's label: whole epochs only.
fn epoch_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Validation distance per epoch (module docs).
pub fn learning_curves(root: &Area<'_>, runs: &[RunRecords], cells: &[Cell]) -> DrawResult {
    let entries = curve_entries(runs, cells);
    let (chart_area, strip) = legend::split(root, &entries);
    let all: Vec<(f64, f64)> = runs.iter().flat_map(points).collect();
    let baselines: Vec<f64> = cells
        .iter()
        .flat_map(|c| {
            let drawn = curve_runs(runs, c);
            [mean_baseline(&drawn, 0), mean_baseline(&drawn, 1)]
        })
        .flatten()
        .collect();
    let (x0, x1) = bounds(all.iter().map(|p| p.0));
    let (y0, y1) = bounds(all.iter().map(|p| p.1).chain(baselines.iter().copied()));
    let (first, last) = (x0.max(0.0) as u64, x1.max(0.0) as u64);
    let x_range = (first as f64 - 0.3)..(last as f64 + 0.3);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption("val dist per epoch", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, padded(y0, y1))?;
    chart
        .configure_mesh()
        .x_labels(epoch_label_count(first, last))
        .x_desc("epoch")
        .y_desc("val dist (MIDI velocity)")
        .x_label_formatter(&epoch_label)
        .draw()?;
    for (i, cell) in cells.iter().enumerate() {
        let drawn = curve_runs(runs, cell);
        if drawn.is_empty() {
            continue;
        }
        let color = color(i);
        if drawn.len() > 1 {
            for run in &drawn {
                chart.draw_series(LineSeries::new(points(run), color.mix(0.35).stroke_width(1)))?;
            }
        }
        chart.draw_series(LineSeries::new(mean_curve(&drawn), color.stroke_width(3)).point_size(3))?;
        let across = |y: f64| vec![(first as f64 - 0.3, y), (last as f64 + 0.3, y)];
        if let Some(y) = mean_baseline(&drawn, 0) {
            chart.draw_series(DashedLineSeries::new(across(y), 8, 6, color.stroke_width(1)))?;
        }
        if let Some(y) = mean_baseline(&drawn, 1) {
            chart.draw_series(DottedLineSeries::new(across(y), 0, 6, move |c| {
                Circle::new(c, 1, color.filled())
            }))?;
        }
    }
    legend::draw(&strip, &entries)
}

/// For each cell with learning rates, its label and the first such run.
fn lr_runs<'a>(runs: &'a [RunRecords], cells: &[Cell]) -> Vec<(usize, String, &'a RunRecords)> {
    cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let run = c.rows.iter().map(|&r| &runs[r]).find(|r| !r.lr.is_empty())?;
            Some((i, c.text(), run))
        })
        .collect()
}

/// The learning-rate figure's legend: a line per cell.
pub fn lr_entries(runs: &[RunRecords], cells: &[Cell]) -> Vec<Entry> {
    lr_runs(runs, cells)
        .into_iter()
        .map(|(i, label, _)| Entry::new(label, color(i), Mark::Line(2)))
        .collect()
}

/// The learning rate at each optimizer step, one line per cell (log scale:
/// the write-up's schedules differ by orders of magnitude).
pub fn learning_rate(root: &Area<'_>, runs: &[RunRecords], cells: &[Cell]) -> DrawResult {
    let entries = lr_entries(runs, cells);
    let (chart_area, strip) = legend::split(root, &entries);
    let chosen = lr_runs(runs, cells);
    let (x0, x1) = bounds(chosen.iter().flat_map(|(_, _, r)| r.lr.iter().map(|p| p.0 as f64)));
    let (y0, y1) = bounds(
        chosen
            .iter()
            .flat_map(|(_, _, r)| r.lr.iter().map(|p| p.1).filter(|lr| *lr > 0.0)),
    );
    let (y0, y1) = if y0 <= y1 { (y0 / 2.0, y1 * 2.0) } else { (1e-8, 1.0) };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption("learning rate per step (log scale)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(padded(x0, x1), (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc("learning rate")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .draw()?;
    for (i, _, run) in &chosen {
        let points = run.lr.iter().filter(|p| p.1 > 0.0).map(|&(s, lr)| (s as f64, lr));
        chart.draw_series(LineSeries::new(points, color(*i).stroke_width(2)))?;
    }
    legend::draw(&strip, &entries)
}

#[cfg(test)]
mod tests {
    use super::{epoch_label, epoch_label_count};

    #[test]
    fn epoch_ticks_are_whole_epochs() {
        assert_eq!(epoch_label_count(1, 4), 4);
        assert_eq!(epoch_label_count(1, 1), 1);
        assert_eq!(epoch_label_count(1, 100), 13);
        assert_eq!(epoch_label(&3.0), "3");
        assert_eq!(epoch_label(&2.5), "");
    }
}
