//! `runner predict RUN INPUT... --out DIR`: a finished run applied to MIDI
//! (or parquet) files.
//!
//! In: the run (a folder, or an id or id prefix in the store), input files,
//! an output folder, a device. The run's own settings read the inputs: its
//! sustain threshold, bin edges (`data.json`), window length and step.
//! Out: in DIR, for each piece `<name>.mid` — the input file with each
//! note-on's velocity replaced by the prediction, every other byte kept
//! (timing, pedal, other events); a parquet row becomes a new file of its
//! notes — and with `--json` `<name>.notes.json`, one row per note. On
//! stdout, a line per piece: notes, windows, and the mean absolute error
//! against the input's velocities two ways: each note once, and over the
//! run's own windows (what `runner exec` reports as `greedy_dist`).
//! Every input is read before anything is written; every unreadable input
//! is listed at once.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tch::{Device, nn};

use super::{PiecePredicted, Progress, predict};
use crate::evaluate::Predictor;
use crate::model;
use runner_data::encoder::Vocab;
use runner_data::performance::{self, Performance};
use runner_data::quantize::{Edges, Quantizer};
use runner_data::window::WindowConfig;
use runner_job::say;
use runner_plan::config::{DevicePreference, RunConfig};
use runner_store::metrics::VelocityMetrics;
use runner_store::{Recorded, RunFile, RunFolder, find_run};

/// What `runner predict` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The run, as typed.
    pub run: String,
    /// The runs store to look run ids up in.
    pub store: PathBuf,
    /// MIDI or parquet files.
    pub inputs: Vec<PathBuf>,
    /// Where to write.
    pub out: PathBuf,
    /// Also write a per-note JSON table per piece.
    pub json: bool,
    /// Where the network runs.
    pub device: DevicePreference,
}

/// A finished run's network and the settings that cut its inputs.
pub struct TrainedRun {
    /// Its resolved configuration.
    pub config: RunConfig,
    /// Its bin edges.
    pub quantizer: Quantizer,
    /// Its vocabulary.
    pub vocab: Vocab,
    /// Where the network is.
    pub device: Device,
    net: Box<dyn model::Seq2Seq>,
    _weights: nn::VarStore,
}

impl TrainedRun {
    /// Loads the finished run in `folder` onto `device`.
    pub fn load(folder: &RunFolder, device: Device) -> miette::Result<TrainedRun> {
        let dir = folder.dir().display().to_string();
        if !folder.path(RunFile::Config).is_file() {
            miette::bail!(
                help = "give a folder under runs/<experiment>/ that `runner exec` made, or a run id",
                "{dir} is not a run folder (it has no config.json)"
            );
        }
        let config = folder.config().map_err(|reason| {
            miette::miette!(
                help = "predict with the runner version that trained it, or train it again with this one \
                        (`runner exec FILE --force --only ID`)",
                "{dir}/config.json is not a configuration this runner reads (another version wrote it?): {reason}"
            )
        })?;
        if folder.summary().is_err() {
            let state = match folder.status() {
                Some(Recorded::Running) => " (it is training, or was killed while training)",
                Some(Recorded::Interrupted) => " (it was interrupted)",
                Some(Recorded::Failed { .. }) => " (it failed)",
                Some(Recorded::Done) | None => "",
            };
            miette::bail!(
                help = "finish it with `runner exec FILE` (it resumes from its checkpoint), then predict",
                "the run in {dir} has not finished training{state}"
            );
        }
        let data = folder.data().map_err(|reason| {
            miette::miette!(
                help = "train it again with this runner (`runner exec FILE --force --only ID`)",
                "{dir}/data.json cannot be read (another version wrote it?): {reason}"
            )
        })?;
        let edges = |values: &[f64]| Edges::new(values.to_vec());
        let quantizer = match (
            edges(&data.edges.dstart),
            edges(&data.edges.duration),
            edges(&data.edges.velocity),
        ) {
            (Ok(dstart), Ok(duration), Ok(velocity)) => Quantizer {
                dstart,
                duration,
                velocity,
            },
            _ => miette::bail!("{dir}/data.json holds bin edges that are not increasing: it is damaged"),
        };
        let vocab = Vocab::new(config.encoder, quantizer.bins()).map_err(|e| miette::miette!("{dir}: {e}"))?;
        let mut weights = nn::VarStore::new(device);
        let net = model::build(
            &weights.root(),
            &config.model,
            i64::from(vocab.source_size()),
            i64::from(vocab.target_size()),
            config.encoder,
        )
        .map_err(|e| miette::miette!("{dir}: {e}"))?;
        let checkpoint = folder.checkpoint().result_weights().to_owned();
        weights.load(&checkpoint).map_err(|e| {
            miette::miette!(
                help = "train it again with this runner (`runner exec FILE --force --only ID`)",
                "{} does not fit the run's network (damaged, or saved by another version): {e}",
                checkpoint.display()
            )
        })?;
        Ok(TrainedRun {
            config,
            quantizer,
            vocab,
            device,
            net,
            _weights: weights,
        })
    }

    /// The run's window length and step.
    pub fn window(&self) -> WindowConfig {
        let w = &self.config.dataset.window;
        WindowConfig::new(w.length, w.step).expect("a planned run has a valid window")
    }

    /// Predicts every note of `pieces` (see [`predict`]), with a progress
    /// bar on stderr when it is a terminal.
    pub fn predict(&self, pieces: &[&runner_data::notes::Piece]) -> Result<Vec<PiecePredicted>, super::PredictError> {
        let first = i64::from(self.vocab.velocity_id(0).expect("velocity 0 is in every vocabulary"));
        let predictor = Predictor::new(self.net.as_ref(), &self.config, first..first + 128);
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} windows, {eta} left")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("predicting");
        let shown = |progress: Progress| match progress {
            Progress::Windows(total) => bar.set_length(total),
            Progress::Done(done) => bar.set_position(done),
        };
        let predicted = predict(
            &predictor,
            &self.quantizer,
            &self.vocab,
            self.window(),
            pieces,
            self.device,
            &shown,
        );
        bar.finish_and_clear();
        predicted
    }
}

/// One row of `<name>.notes.json`.
#[derive(Debug, Serialize)]
struct NoteRow {
    note: usize,
    pitch: u8,
    start: f64,
    end: f64,
    velocity: u8,
    predicted: u8,
}

/// `<name>.notes.json`.
#[derive(Debug, Serialize)]
struct NoteTable<'a> {
    piece: &'a str,
    input: String,
    run: String,
    /// Mean absolute error, each note once.
    mae: f64,
    /// Mean absolute error over the run's own windows (`greedy_dist`).
    window_mae: f64,
    notes: Vec<NoteRow>,
}

/// `runner predict` (module docs).
pub fn run(request: &Request) -> miette::Result<()> {
    let folder = find_run(&request.store, &request.run)?;
    let device = crate::job::device_for(request.device)
        .map_err(|e| miette::miette!(help = "use --device cpu, or cuda where CUDA is", "{e}"))?;
    let trained = TrainedRun::load(&folder, device)?;
    let performances = read_inputs(&request.inputs, trained.config.dataset.sustain)?;
    let pieces: Vec<&runner_data::notes::Piece> = performances.iter().map(|p| &p.piece).collect();
    let short: Vec<String> = pieces
        .iter()
        .filter(|p| p.notes.len() < trained.window().length())
        .map(|p| format!("{} ({} notes)", p.name, p.notes.len()))
        .collect();
    if !short.is_empty() {
        miette::bail!(
            help = format!(
                "this run reads windows of {} notes; give longer pieces or a run with shorter windows",
                trained.window().length()
            ),
            "{} shorter than one window: {}",
            runner_plan::show::count(short.len(), "piece is"),
            short.join(", ")
        );
    }
    let names = output_names(&performances)?;
    std::fs::create_dir_all(&request.out)
        .map_err(|e| miette::miette!("cannot create {}: {e}", request.out.display()))?;
    let predicted = trained.predict(&pieces).map_err(|e| miette::miette!("{e}"))?;
    let (mut all_notes, mut all_windows) = (Vec::new(), Vec::new());
    for ((performance, name), predicted) in performances.iter().zip(&names).zip(&predicted) {
        let truth: Vec<u8> = performance.piece.notes.iter().map(|n| n.velocity).collect();
        let (note_mae, window_mae) = (predicted.per_note(&truth), predicted.over_windows());
        let bytes = performance
            .with_velocities(&predicted.velocities)
            .map_err(|e| miette::miette!("{}: {e}", performance.file.display()))?;
        let midi = request.out.join(format!("{name}.mid"));
        write(&midi, &bytes)?;
        if request.json {
            let table = NoteTable {
                piece: &performance.piece.name,
                input: performance.file.display().to_string(),
                run: folder.dir().display().to_string(),
                mae: note_mae.dist,
                window_mae: window_mae.dist,
                notes: performance
                    .piece
                    .notes
                    .iter()
                    .zip(&predicted.velocities)
                    .enumerate()
                    .map(|(note, (n, &predicted))| NoteRow {
                        note,
                        pitch: n.pitch,
                        start: n.start,
                        end: n.end,
                        velocity: n.velocity,
                        predicted,
                    })
                    .collect(),
            };
            let text = serde_json::to_string_pretty(&table).expect("a note table serialises");
            write(&request.out.join(format!("{name}.notes.json")), text.as_bytes())?;
        }
        say!(
            "{}: {} notes, {} windows; MAE {:.3} (each note once), {:.3} (the run's windows, as greedy_dist) -> {}",
            performance.piece.name,
            truth.len(),
            predicted.windows,
            note_mae.dist,
            window_mae.dist,
            midi.display()
        );
        warn_flat(&performance.piece.name, &truth);
        all_notes.push((predicted.velocities.clone(), truth));
        all_windows.push((predicted.windowed.clone(), predicted.windowed_truth.clone()));
    }
    if performances.len() > 1 {
        let joined = |pairs: &[(Vec<u8>, Vec<u8>)]| {
            let predicted: Vec<u8> = pairs.iter().flat_map(|(p, _)| p.iter().copied()).collect();
            let truth: Vec<u8> = pairs.iter().flat_map(|(_, t)| t.iter().copied()).collect();
            VelocityMetrics::of(&predicted, &truth)
        };
        let (notes, windows) = (joined(&all_notes), joined(&all_windows));
        say!(
            "all {} pieces: {} notes; MAE {:.3} (each note once), {:.3} (the run's windows, as greedy_dist)",
            performances.len(),
            notes.notes,
            notes.dist,
            windows.dist
        );
    }
    Ok(())
}

/// Every input read; fails listing every input that could not be.
fn read_inputs(inputs: &[PathBuf], sustain: Option<u8>) -> miette::Result<Vec<Performance>> {
    let mut performances = Vec::new();
    let mut problems = Vec::new();
    for input in inputs {
        match performance::read(input, sustain) {
            Ok(read) if read.is_empty() => problems.push(format!("{}: no readable pieces", input.display())),
            Ok(read) => performances.extend(read),
            Err(error) => problems.push(error.to_string()),
        }
    }
    if !problems.is_empty() {
        miette::bail!(
            help = "give Standard MIDI Files (.mid, .midi) of piano performances, or parquet files in the \
                    HuggingFace maestro layout",
            "{} of {} could not be read:\n  {}",
            problems.len(),
            runner_plan::show::count(inputs.len(), "input"),
            problems.join("\n  ")
        );
    }
    Ok(performances)
}

/// A file name for each performance's outputs; fails when two would share one.
fn output_names(performances: &[Performance]) -> miette::Result<Vec<String>> {
    let names: Vec<String> = performances.iter().map(Performance::stem).collect();
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|n| n == name) {
            miette::bail!(
                help = "predict them in two commands with different --out folders",
                "{} and {} would both be written as {name}.mid",
                performances[j].piece.name,
                performances[i].piece.name
            );
        }
    }
    Ok(names)
}

/// Says so when the input's velocities do not vary: its MAE measures the
/// distance to that one value, not to a performance.
fn warn_flat(piece: &str, truth: &[u8]) {
    if let Some(&first) = truth.first()
        && truth.iter().all(|&v| v == first)
    {
        eprintln!(
            "note: every note of {piece} has velocity {first}, so its MAE is the distance to {first}, not to a \
             performance"
        );
    }
}

fn write(path: &Path, bytes: &[u8]) -> miette::Result<()> {
    runner_store::atomic::write(path, bytes).map_err(|e| miette::miette!("cannot write {}: {e}", path.display()))
}
