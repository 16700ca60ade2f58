//! The report: an experiment's finished runs → `report.md` and PNG figures.
//!
//! In: a [`Plan`] (never the experiment file: the plan carries the declared
//! expectations, each side's runs resolved) and its [`RunStore`]. Out: a Markdown report, written
//! (by default) to `runs/<experiment>/report.md` with its figures in
//! `figures/` beside it, and the main table for the terminal.
//!
//! The stages, one module each: [`collect`] reads the run folders into a
//! polars frame; [`table`], [`data`], [`effects`] and [`expect`] are pure
//! functions of what it collected returning tables, factor effects and verdicts; [`render`] joins
//! them into Markdown; [`plots`] draws the figures separately, and
//! [`listen`] copies each cell's test pieces as MIDI beside the report. The same runs
//! give a byte-identical report: nothing in it depends on when or how long
//! the report itself took.

#![deny(missing_docs)]

pub mod collect;
pub mod data;
pub mod effects;
pub mod expect;
pub mod listen;
pub mod parameters;
pub mod plots;
pub mod search;
pub mod stats;
pub mod table;

use std::path::{Path, PathBuf};

use collect::Collected;
use listen::Listening;
use plots::Figure;
use runner_plan::Plan;
use runner_store::{RunStore, StoreProblem};
use table::{Cell, Table};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportError {
    /// Not one planned run has a result.
    #[error("no run of `{experiment}` has finished ({planned} planned): nothing to report")]
    #[diagnostic(
        code(report::no_finished_run),
        help("train the runs first with `runner exec FILE` (runs were looked for in {store})")
    )]
    NoFinishedRun {
        /// The experiment.
        experiment: String,
        /// The experiment's folder in the store.
        store: String,
        /// Runs planned.
        planned: usize,
    },
    /// No experiment was given.
    #[error("no experiment to report on")]
    NoExperiment,
    /// The results could not be put into a frame.
    #[error("cannot collate the runs: {0}")]
    Frame(#[from] polars::error::PolarsError),
    /// The report could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
    /// The disk is full or read-only: what `runner exec` says in that case.
    #[error("the runs store cannot be written: {} ({})", problem.what(), path.display())]
    #[diagnostic(code(report::unwritable), help("{help}"))]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What happened.
        problem: StoreProblem,
        /// What to do.
        help: String,
    },
}

impl ReportError {
    /// The same error as [`ReportError::Unwritable`] when it is a full
    /// disk, a read-only file system or a quota (plotters passes the
    /// operating system's error on as text).
    fn or_unwritable(self, store: &RunStore) -> ReportError {
        let found = match &self {
            ReportError::Io { path, source } => StoreProblem::of(source).map(|p| (path.clone(), p)),
            ReportError::Plot(e) => StoreProblem::in_text(&e.message).map(|p| (e.path.clone(), p)),
            _ => None,
        };
        match found {
            Some((path, problem)) => ReportError::Unwritable {
                path,
                problem,
                help: problem.help(store.root().parent().unwrap_or(store.root())),
            },
            None => self,
        }
    }
}

/// What the results of early-stopped runs are, when there are some (empty
/// otherwise).
fn early_stopping(runs: &[collect::RunRecords]) -> String {
    let kept = runs.iter().filter(|r| r.best.is_some()).count();
    if kept == 0 {
        return String::new();
    }
    let stopped = runs
        .iter()
        .filter(|r| r.best.as_ref().is_some_and(|b| b.stopped_early))
        .count();
    format!(
        "\nEarly stopping: the values of {} are those of its best evaluation, not its last ({} stopped early); \
         the test figures and listening files come from that evaluation's weights. The `result` column of \
         \"Hardware and time\" says which epoch each run's values are of; summary.json keeps every evaluation.\n",
        runner_plan::show::count(kept, "run"),
        stopped
    )
}

/// A report rendered in memory.
#[derive(Debug)]
pub struct Report {
    /// The Markdown text.
    pub markdown: String,
    /// The main comparison table.
    pub main_table: Table,
    /// The figures the Markdown links to (not drawn yet).
    pub figures: Vec<Figure>,
    /// The cells the tables and figures group runs by.
    pub cells: Vec<Cell>,
    /// The test pieces the report links (not copied yet).
    pub listenings: Vec<Listening>,
}

/// What [`write`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The Markdown file.
    pub path: PathBuf,
    /// The figure files.
    pub figures: Vec<PathBuf>,
    /// The listening files, without their `.true.mid` / `.greedy.mid`.
    pub listen: Vec<PathBuf>,
    /// The main comparison table (for the terminal).
    pub main_table: Table,
    /// Runs whose files do not hold together, left out of the report: id,
    /// and what is wrong with the remedy.
    pub damaged: Vec<(String, String)>,
}

/// Renders the report of the collected runs (pure: no I/O).
pub fn render(plan: &Plan, collected: &Collected) -> Report {
    let frame = &collected.frame;
    let keys = &collected.label_keys;
    let cells = table::cells(frame, keys);
    let main_table = table::main_table(frame, keys);
    let parameters = parameters::find(plan, collected);
    let mut figures = plots::figures(collected, &cells);
    if let Some(parameters) = &parameters {
        figures.extend(plots::scatter_figures(parameters));
    }
    let listenings = listen::choose(collected, &cells);
    let mut md = format!("# Report: {}\n\n", plan.experiment);
    if let Some(description) = &plan.description {
        md.push_str(&format!("{description}\n\n"));
    }
    md.push_str("## The experiment\n\n");
    md.push_str(&table::experiment(plan, frame.height()));
    md.push_str("\n## Data\n\n");
    md.push_str(&data::render(&collected.datasets));
    md.push_str("\n## Results\n\n");
    md.push_str(&main_table.markdown());
    md.push_str(
        "\nFinal-epoch values on the validation split (test dist and test greedy dist: the test split, teacher-forced \
         and greedy-decoded), as the mean \
         ± the half-width of its 95% confidence interval (Student's t over the cell's replicates: seeds, and folds \
         under k-fold) when a cell has several runs; a single run has no interval. val dist and greedy dist are the mean |predicted − true| \
         velocity (teacher-forced and greedy-decoded); lower is better for loss and distances, higher for \
         accuracy; flatness is std(predicted) / std(true): 1 when the spread matches, 0 when flat (greedy flatness: of \
         the greedy-decoded predictions, the write-up's \"flat\" picture). The \
         baselines are the validation distance of predicting the training mean, and the centre of the note's \
         coarse velocity bin.\n\n\
         Three losses, which are not comparable with each other: val loss is runner's cross-entropy of the true \
         velocity, the same for every run whatever it trained with. val ls-kl (label-smoothing runs) is \
         midi-translation's own val loss, the label-smoothing KL divergence per target, the definition of the \
         write-up's 2.486; val ce+cls (runs with decoder input shift-right) is midi-hf-transformers' own val \
         loss, the cross-entropy over the labels [CLS] + velocities, the definition of the write-up's 4.445. \
         Both are per-target means where the originals average batch means, and the write-up trained on \
         MAESTRO: a value here is comparable to the write-up's in definition only when the data and sizes \
         are its own.\n",
    );
    md.push_str(&early_stopping(&collected.runs));
    if let Some(record) = &collected.search {
        md.push_str(&search::render(record));
    }
    if let Some(parameters) = &parameters {
        md.push_str(&parameters::render(parameters));
    }
    md.push_str("\n## Expectations\n\n");
    md.push_str(&expect::render(&expect::check_all(&plan.expectations, frame)));
    let (factors, confounded) = effects::crossed(effects::factors(frame, keys));
    if !factors.is_empty() || !confounded.is_empty() {
        md.push_str("\n## Factor effects\n\n");
    }
    if !factors.is_empty() {
        md.push_str(&effects::render(
            &effects::main_effects(frame, &factors),
            &effects::interactions(frame, &factors),
        ));
    }
    if !confounded.is_empty() {
        let names: Vec<String> = confounded.iter().map(|n| format!("`{n}`")).collect();
        let (its, their) = if names.len() == 1 {
            ("its", "its")
        } else {
            ("their", "each one's")
        };
        md.push_str(&format!(
            "\nNo effect is shown for {}: {its} levels do not hold the same cells of the other factors, so a \
             difference of {their} means would mix in their effects; compare the cells in the results table.\n",
            names.join(", ")
        ));
    }
    if !figures.is_empty() {
        md.push_str("\n## Figures\n\n");
        for figure in &figures {
            md.push_str(&format!(
                "![{}]({})\n\n*{}*\n\n",
                figure.caption, figure.file, figure.caption
            ));
        }
    }
    md.push_str(if figures.is_empty() { "\n" } else { "" });
    if !listenings.is_empty() {
        md.push_str(&listen::render(&listenings, collected));
        md.push('\n');
    }
    md.push_str("## Hardware and time\n\n");
    md.push_str(&table::hardware_table(frame, keys).markdown());
    let total: f64 = collect::numbers(frame, "seconds").iter().flatten().sum();
    md.push_str(&format!(
        "\nTraining took {} s in all over {}.\n",
        stats::fixed(total, 1),
        runner_plan::show::count(frame.height(), "run")
    ));
    md.push_str("\n## Missing runs\n\n");
    if collected.missing.is_empty() {
        md.push_str("None: every planned run finished.\n");
    } else {
        md.push_str(&table::missing_table(&collected.missing).markdown());
    }
    if !collected.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for note in &collected.notes {
            md.push_str(&format!("- {note}\n"));
        }
    }
    Report {
        markdown: md,
        main_table,
        figures,
        cells,
        listenings,
    }
}

/// Collects the plan's runs from `store`, renders the report, and writes it
/// to `output` (default `<store>/<experiment>/report.md`) with its figures
/// in `figures/` beside it. Fails when no run has finished.
pub fn write(plan: &Plan, store: &RunStore, output: Option<&Path>) -> Result<Written, ReportError> {
    write_all(&[(plan, store)], output)
}

/// [`write`] for one or more experiments, each with its store: with several,
/// one report over all their runs, cells keyed by experiment and labels
/// ([`collect::compared`]), written by default to
/// `<store>/<A>+<B>/report.md`.
pub fn write_all(experiments: &[(&Plan, &RunStore)], output: Option<&Path>) -> Result<Written, ReportError> {
    let (plan, collected, store, default_path) = match experiments {
        [] => return Err(ReportError::NoExperiment),
        [(plan, store)] => (
            (*plan).clone(),
            collect::collect(plan, store)?,
            *store,
            store.root().join("report.md"),
        ),
        several => {
            let (plan, stores) = collect::compared(several);
            let collected = collect::collect_in(&plan, &stores)?;
            let store = several[0].1;
            let root = store.root().parent().unwrap_or(store.root());
            let path = root.join(&plan.experiment).join("report.md");
            (plan, collected, store, path)
        }
    };
    if collected.frame.height() == 0 {
        let folders: Vec<String> = experiments
            .iter()
            .map(|(_, s)| s.root().display().to_string())
            .collect();
        return Err(ReportError::NoFinishedRun {
            experiment: plan.experiment.clone(),
            store: folders.join(", "),
            planned: plan.runs.len(),
        });
    }
    let plan = &plan;
    let report = render(plan, &collected);
    let damaged = collected
        .missing
        .iter()
        .filter(|m| m.state == "damaged")
        .map(|m| (m.id.clone(), m.reason.clone().unwrap_or_default()))
        .collect();
    let path = output.map_or(default_path, Path::to_owned);
    let folder = path.parent().unwrap_or(Path::new("")).to_owned();
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    let written = std::fs::create_dir_all(&folder)
        .map_err(io)
        .and_then(|()| Ok(plots::draw(&report.figures, &collected, &report.cells, &folder)?))
        .and_then(|()| {
            listen::copy(&report.listenings, &collected, &folder)
                .map_err(|(path, source)| ReportError::Io { path, source })
        })
        .and_then(|()| runner_store::atomic::write(&path, report.markdown.as_bytes()).map_err(io));
    written.map_err(|e| e.or_unwritable(store))?;
    let base = &folder;
    Ok(Written {
        figures: report.figures.iter().map(|f| folder.join(&f.file)).collect(),
        listen: report
            .listenings
            .iter()
            .flat_map(|l| l.pieces.iter().map(move |p| base.join(&l.folder).join(&p.files)))
            .collect(),
        path,
        main_table: report.main_table,
        damaged,
    })
}
