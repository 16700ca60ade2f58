//! Figures: the collected runs → PNG files, drawn with `plotters`' bitmap
//! backend and the DejaVu Sans font bundled in the binary (no system fonts,
//! so the same runs give the same pixels).
//!
//! In: a [`Collected`] and its cells. Out: [`figures`] lists what can be
//! drawn (a pure function: the Markdown links to these), and [`draw`] writes
//! each under the report's folder: learning curves (val dist per epoch, one
//! line per run), the learning rate applied per step (one line per cell),
//! predicted (teacher-forced and greedy) vs true velocity along the saved
//! validation windows (one PNG per cell, its first run with examples), and a
//! histogram of predicted vs true velocities (one panel per cell).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::collect::{Collected, RunRecords, short_id};
use super::table::Cell;

/// Saved windows drawn per cell.
const WINDOWS_PER_CELL: usize = 3;
/// Width of a velocity bin in the histogram.
const HISTOGRAM_BIN: u32 = 4;

/// What a figure shows.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LearningCurves,
    LearningRate,
    /// A cell's index and the frame-order index of the run drawn.
    Examples {
        cell: usize,
        run: usize,
        windows: usize,
    },
    Histogram,
}

/// One figure of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Its path relative to the report's folder (`figures/NAME.png`).
    pub file: String,
    /// What it shows, for the Markdown.
    pub caption: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
    kind: Kind,
}

/// A figure that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

fn failed<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// The figures the collected runs allow, in report order.
pub fn figures(collected: &Collected, cells: &[Cell]) -> Vec<Figure> {
    let runs = &collected.runs;
    let mut found = Vec::new();
    if runs.iter().any(|r| r.curve.iter().any(|p| p.val_dist.is_some())) {
        found.push(Figure {
            file: "figures/learning-curves.png".to_owned(),
            caption: "Validation distance (teacher-forced) per epoch, one line per run".to_owned(),
            size: (900, 540),
            kind: Kind::LearningCurves,
        });
    }
    if runs.iter().any(|r| !r.lr.is_empty()) {
        found.push(Figure {
            file: "figures/learning-rate.png".to_owned(),
            caption: "Learning rate applied at each optimizer step, one line per cell".to_owned(),
            size: (900, 540),
            kind: Kind::LearningRate,
        });
    }
    for (index, cell) in cells.iter().enumerate() {
        let Some(&run) = cell.rows.iter().find(|&&r| !runs[r].examples.is_empty()) else {
            continue;
        };
        let windows = runs[run].examples.len().min(WINDOWS_PER_CELL);
        found.push(Figure {
            file: format!("figures/examples-{}-{}.png", index + 1, slug(&cell.text())),
            caption: format!(
                "Predicted (teacher-forced, greedy) vs true velocity along saved validation windows: {} (run {})",
                cell.text(),
                short_id(&runs[run].id)
            ),
            size: (1000, 280 * windows as u32),
            kind: Kind::Examples {
                cell: index,
                run,
                windows,
            },
        });
    }
    let with_examples = cells
        .iter()
        .filter(|c| c.rows.iter().any(|&r| !runs[r].examples.is_empty()))
        .count();
    if with_examples > 0 {
        found.push(Figure {
            file: "figures/velocity-histogram.png".to_owned(),
            caption:
                "Histogram of true vs teacher-forced predicted velocities over the saved windows, one panel per cell"
                    .to_owned(),
            size: (900, 260 * with_examples as u32),
            kind: Kind::Histogram,
        });
    }
    found
}

/// `schedule=noam loss=ce` → `schedule-noam-loss-ce`.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// Registers the bundled font once; false when it could not be read.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok())
}

/// Draws every figure under `folder` (the report's folder), creating `figures/`.
pub fn draw(figures: &[Figure], collected: &Collected, cells: &[Cell], folder: &Path) -> Result<(), PlotError> {
    for figure in figures {
        let path = folder.join(&figure.file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed(&path))?;
        }
        if !font_ready() {
            return Err(failed(&path)("the bundled DejaVu Sans font could not be loaded"));
        }
        let root = BitMapBackend::new(&path, figure.size).into_drawing_area();
        root.fill(&WHITE).map_err(failed(&path))?;
        let runs = &collected.runs;
        match &figure.kind {
            Kind::LearningCurves => learning_curves(&root, runs).map_err(failed(&path))?,
            Kind::LearningRate => learning_rate(&root, runs, cells).map_err(failed(&path))?,
            Kind::Examples { run, windows, .. } => examples(&root, &runs[*run], *windows).map_err(failed(&path))?,
            Kind::Histogram => histogram(&root, runs, cells).map_err(failed(&path))?,
        }
        root.present().map_err(failed(&path))?;
    }
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn name(run: &RunRecords) -> String {
    if run.labels.is_empty() {
        short_id(&run.id).to_owned()
    } else {
        let pairs: Vec<String> = run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join(" ")
    }
}

/// `lo..hi` widened by 5% (and made non-empty).
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad)..(hi + pad)
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// The legend's mark of a line series drawn in `color`: a short stroke.
fn line_mark(color: RGBAColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// Draws the chart's legend: the labelled series in a bordered box.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
}

fn learning_curves(root: &Area<'_>, runs: &[RunRecords]) -> DrawResult {
    let points = |run: &RunRecords| -> Vec<(f64, f64)> {
        run.curve
            .iter()
            .filter_map(|p| Some((p.epoch as f64, p.val_dist?)))
            .collect()
    };
    let (x0, x1) = bounds(runs.iter().flat_map(|r| points(r).into_iter().map(|p| p.0)));
    let (y0, y1) = bounds(runs.iter().flat_map(|r| points(r).into_iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(root)
        .caption("val dist per epoch", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(padded(x0, x1), padded(y0, y1))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("val dist (MIDI velocity)")
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points(run), color.stroke_width(2)).point_size(3))?
            .label(name(run))
            .legend(line_mark(color));
    }
    legend(&mut chart)
}

fn learning_rate(root: &Area<'_>, runs: &[RunRecords], cells: &[Cell]) -> DrawResult {
    let chosen: Vec<(String, &RunRecords)> = cells
        .iter()
        .filter_map(|c| {
            let run = c.rows.iter().map(|&r| &runs[r]).find(|r| !r.lr.is_empty())?;
            Some((c.text(), run))
        })
        .collect();
    let (x0, x1) = bounds(chosen.iter().flat_map(|(_, r)| r.lr.iter().map(|p| p.0 as f64)));
    // A log axis: the write-up's schedules differ by orders of magnitude.
    let (y0, y1) = bounds(
        chosen
            .iter()
            .flat_map(|(_, r)| r.lr.iter().map(|p| p.1).filter(|lr| *lr > 0.0)),
    );
    let (y0, y1) = if y0 <= y1 { (y0 / 2.0, y1 * 2.0) } else { (1e-8, 1.0) };
    let mut chart = ChartBuilder::on(root)
        .caption("learning rate per step (log scale)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(padded(x0, x1), (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc("learning rate")
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .draw()?;
    for (i, (label, run)) in chosen.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = run.lr.iter().filter(|p| p.1 > 0.0).map(|&(s, lr)| (s as f64, lr));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label.clone())
            .legend(line_mark(color));
    }
    legend(&mut chart)
}

fn examples(root: &Area<'_>, run: &RunRecords, windows: usize) -> DrawResult {
    let panels = root.split_evenly((windows, 1));
    for (example, panel) in run.examples.iter().zip(panels.iter()) {
        let length = example.truth.len().max(2) as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("validation window {}", example.window), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..length - 1.0, 0.0..127.0)?;
        chart.configure_mesh().x_desc("note").y_desc("velocity").draw()?;
        let series: [(&str, &Vec<u8>, RGBAColor); 3] = [
            ("true", &example.truth, BLACK.to_rgba()),
            ("teacher-forced", &example.teacher_forced, BLUE.to_rgba()),
            ("greedy", &example.greedy, RED.to_rgba()),
        ];
        for (label, values, color) in series {
            let points = values.iter().enumerate().map(|(i, v)| (i as f64, f64::from(*v)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(label)
                .legend(line_mark(color));
        }
        legend(&mut chart)?;
    }
    Ok(())
}

fn histogram(root: &Area<'_>, runs: &[RunRecords], cells: &[Cell]) -> DrawResult {
    let drawn: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.rows.iter().any(|&r| !runs[r].examples.is_empty()))
        .collect();
    let panels = root.split_evenly((drawn.len(), 1));
    let bins = 128 / HISTOGRAM_BIN;
    for (cell, panel) in drawn.iter().zip(panels.iter()) {
        let examples = || cell.rows.iter().flat_map(|&r| runs[r].examples.iter());
        let count = |pick: fn(&runner_store::records::Example) -> &Vec<u8>| {
            let mut counts = vec![0u32; bins as usize];
            for example in examples() {
                for v in pick(example) {
                    counts[(u32::from(*v) / HISTOGRAM_BIN).min(bins - 1) as usize] += 1;
                }
            }
            counts
        };
        let truth = count(|e| &e.truth);
        let predicted = count(|e| &e.teacher_forced);
        let top = truth.iter().chain(&predicted).copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(panel)
            .caption(cell.text(), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
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
        let series: [(&str, &Vec<u32>, RGBAColor); 2] = [
            ("true", &truth, BLACK.mix(0.4)),
            ("teacher-forced", &predicted, BLUE.mix(0.5)),
        ];
        for (label, counts, color) in series {
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .style(color.filled())
                        .margin(1)
                        .data(counts.iter().enumerate().map(|(b, c)| (b as u32, *c))),
                )?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
        }
        legend(&mut chart)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("schedule=noam loss=label-smoothing"),
            "schedule-noam-loss-label-smoothing"
        );
        assert_eq!(slug("encoder+model.architecture=a/b"), "encoder-model-architecture-a-b");
    }
}
