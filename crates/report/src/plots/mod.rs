//! Figures: the collected runs → PNG files, drawn with `plotters`' bitmap
//! backend and the DejaVu Sans font bundled in the binary (no system fonts,
//! so the same runs give the same pixels).
//!
//! In: a [`Collected`] and its cells. Out: [`figures`] lists what can be
//! drawn (a pure function: the Markdown links to these), and [`draw`] writes
//! each under the report's folder. [`curves`]: learning curves (val dist
//! per epoch, coloured by cell, baselines drawn) and the learning rate per
//! step; [`notes`]: predicted vs true velocity along the saved validation
//! windows (one PNG per cell), the histogram of true vs greedy-predicted
//! velocities over the whole test split (one panel per cell), and a
//! velocity piano roll of one test excerpt per cell; [`scatter`]: each
//! numeric parameter against the metric. Every legend sits in a
//! strip below its chart ([`legend`]), so none covers data.

pub mod curves;
pub mod legend;
pub mod notes;
pub mod scatter;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use legend::Entry;

use super::collect::{Collected, short_id};
use super::parameters::{Parameter, Parameters};
use super::table::{self, Cell};

/// Saved windows drawn per cell.
const WINDOWS_PER_CELL: usize = 3;
/// Width of every figure but the examples and piano rolls.
const WIDTH: u32 = 900;

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
    /// A cell's index, the frame-order index of the run and its test piece.
    PianoRoll {
        cell: usize,
        run: usize,
        piece: usize,
    },
    /// A numeric parameter against the metric (titled).
    Scatter {
        parameter: Box<Parameter>,
        metric: &'static str,
    },
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

/// The height of a figure whose charts take `charts` pixels with the
/// legend `entries` below them.
fn with_legend(width: u32, charts: u32, entries: &[Entry]) -> (u32, u32) {
    (width, charts + legend::height(entries, width))
}

/// The figures the collected runs allow, in report order.
pub fn figures(collected: &Collected, cells: &[Cell]) -> Vec<Figure> {
    let runs = &collected.runs;
    let mut found = Vec::new();
    if runs.iter().any(|r| r.curve.iter().any(|p| p.val_dist.is_some())) {
        found.push(Figure {
            file: "figures/learning-curves.png".to_owned(),
            caption: "Validation distance (teacher-forced) per epoch: one colour per cell, its mean thick and each \
                      run (seed, fold) thin; dashed and dotted, the cell's two baselines"
                .to_owned(),
            size: with_legend(WIDTH, 540, &curves::curve_entries(runs, cells)),
            kind: Kind::LearningCurves,
        });
    }
    if runs.iter().any(|r| !r.lr.is_empty()) {
        found.push(Figure {
            file: "figures/learning-rate.png".to_owned(),
            caption: "Learning rate applied at each optimizer step, one line per cell".to_owned(),
            size: with_legend(WIDTH, 540, &curves::lr_entries(runs, cells)),
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
            size: with_legend(1000, 280 * windows as u32, &notes::example_entries()),
            kind: Kind::Examples {
                cell: index,
                run,
                windows,
            },
        });
    }
    let with_test = cells.iter().filter(|c| !notes::test_runs(runs, c).is_empty()).count();
    if with_test > 0 {
        found.push(Figure {
            file: "figures/velocity-histogram.png".to_owned(),
            caption: "Histogram of true vs greedy-predicted velocities over the whole test split (every note once, \
                      each run of the cell), one panel per cell"
                .to_owned(),
            size: with_legend(WIDTH, 260 * with_test as u32, &notes::histogram_entries()),
            kind: Kind::Histogram,
        });
    }
    for (index, cell) in cells.iter().enumerate() {
        let Some(&run) = cell.rows.iter().find(|&&r| !runs[r].test.is_empty()) else {
            continue;
        };
        let piece = &runs[run].test[0];
        let (excerpt, from, to) = notes::excerpt(piece);
        found.push(Figure {
            file: format!("figures/piano-roll-{}-{}.png", index + 1, slug(&cell.text())),
            caption: format!(
                "Velocity piano roll of test piece {}, {from:.1}–{to:.1} s ({} notes): true velocities above, \
                 greedy-predicted below; {} (run {})",
                piece.piece,
                excerpt.len(),
                cell.text(),
                short_id(&runs[run].id)
            ),
            size: (1000, 640),
            kind: Kind::PianoRoll {
                cell: index,
                run,
                piece: 0,
            },
        });
    }
    found
}

/// One scatter per numeric parameter.
pub fn scatter_figures(parameters: &Parameters) -> Vec<Figure> {
    let metric = table::title(parameters.metric);
    parameters
        .each
        .iter()
        .map(|p| Figure {
            file: format!("figures/parameter-{}.png", slug(&p.key)),
            caption: format!(
                "{metric} {} against `{}`, one point per run{}",
                parameters.source,
                p.key,
                if p.log { " (log scale)" } else { "" }
            ),
            size: (WIDTH, 540),
            kind: Kind::Scatter {
                parameter: Box::new(p.clone()),
                metric,
            },
        })
        .collect()
}

/// `schedule=noam loss=ce` → `schedule-noam-loss-ce`.
pub(crate) fn slug(text: &str) -> String {
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
            Kind::LearningCurves => curves::learning_curves(&root, runs, cells),
            Kind::LearningRate => curves::learning_rate(&root, runs, cells),
            Kind::Examples { run, windows, .. } => notes::examples(&root, &runs[*run], *windows),
            Kind::Histogram => notes::histogram(&root, runs, cells),
            Kind::PianoRoll { run, piece, .. } => notes::piano_roll(&root, &runs[*run].test[*piece]),
            Kind::Scatter { parameter, metric } => scatter::scatter(&root, parameter, metric),
        }
        .map_err(failed(&path))?;
        root.present().map_err(failed(&path))?;
    }
    Ok(())
}

/// The drawing area of a figure.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
/// What drawing gives.
pub type DrawResult = Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// `lo..hi` widened by 5% (and made non-empty).
pub fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad)..(hi + pad)
}

/// The least and greatest of `values` (infinite when there are none).
pub fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
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
