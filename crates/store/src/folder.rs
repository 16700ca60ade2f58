//! One run's folder: [`RunFolder`] reads each of its files through a typed
//! function; [`ClaimedRun`], the folder of a run whose lock this process
//! holds, is the only way to write them.
//!
//! In: a folder path (or a claimed run). Out: the records of
//! [`crate::records`], the learning rates, the dataset summary, the log;
//! every read or write that fails names its file. The checkpoint's reads and
//! writes are in [`crate::checkpoint`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::files::RunFile;
use crate::records::{EpochRecord, Example, PiecePrediction, Summary};
use crate::tensorboard::RunCurves;
use crate::{Recorded, StoreError, atomic};
use runner_data::summary::DatasetSummary;
use runner_plan::config::RunConfig;

/// The columns of `metrics.csv`, in order.
pub const METRICS_HEADER: [&str; 13] = [
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "val_ls_kl",
    "val_ce_with_cls",
    "val_dist",
    "val_accuracy",
    "val_flatness",
    "greedy_dist",
    "greedy_accuracy",
    "greedy_flatness",
    "seconds",
];

/// A run's folder, for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFolder {
    dir: PathBuf,
}

impl RunFolder {
    /// The run folder at `dir` (nothing is read yet).
    pub fn at(dir: impl Into<PathBuf>) -> RunFolder {
        RunFolder { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of its files.
    pub fn path(&self, file: RunFile) -> PathBuf {
        self.dir.join(file.name())
    }

    /// The canonical configuration recorded in `config.json`, when readable.
    pub fn recorded_config(&self) -> Option<String> {
        std::fs::read_to_string(self.path(RunFile::Config))
            .ok()
            .map(|text| text.trim().to_owned())
    }

    /// `config.json`: the run's resolved configuration.
    pub fn config(&self) -> Result<RunConfig, String> {
        read_json(&self.path(RunFile::Config))
    }

    /// `status.json`, when readable.
    pub fn status(&self) -> Option<Recorded> {
        read_json(&self.path(RunFile::Status)).ok()
    }

    /// `summary.json`.
    pub fn summary(&self) -> Result<Summary, String> {
        read_json(&self.path(RunFile::Summary))
    }

    /// `data.json`.
    pub fn data(&self) -> Result<DatasetSummary, String> {
        read_json(&self.path(RunFile::Data))
    }

    /// `test-predictions.json`: every test note, true and greedy.
    pub fn test_predictions(&self) -> Result<Vec<PiecePrediction>, String> {
        read_json(&self.path(RunFile::TestPredictions))
    }

    /// A test piece's listening files (names from [`listen_file_names`]), `listen/NAME.true.mid` (its true
    /// velocities) and `listen/NAME.greedy.mid` (the greedy-predicted ones).
    pub fn listen_files(&self, name: &str) -> [PathBuf; 2] {
        let dir = self.path(RunFile::Listen);
        listen_file_names(name).map(|file| dir.join(file))
    }

    /// `predictions.json`.
    pub fn predictions(&self) -> Result<Vec<Example>, String> {
        read_json(&self.path(RunFile::Predictions))
    }

    /// `lr.csv`: (step, learning rate) for each optimizer step.
    pub fn learning_rates(&self) -> Result<Vec<(u64, f64)>, String> {
        let path = self.path(RunFile::Lr);
        let name = RunFile::Lr.name();
        let mut reader = csv::Reader::from_path(&path).map_err(|e| format!("{name}: {e}"))?;
        reader
            .deserialize()
            .enumerate()
            .map(|(i, row)| row.map_err(|_| format!("{name} is corrupt at line {}", i + 2)))
            .collect()
    }

    /// Whether a finished run's files hold together: `summary.json` parses,
    /// and `metrics.csv` holds exactly the summary's epochs (so a row added,
    /// changed or lost is seen); else what is wrong.
    pub fn check_finished(&self) -> Result<(), String> {
        let summary = self.summary()?;
        let name = RunFile::Metrics.name();
        let mut reader = csv::Reader::from_path(self.path(RunFile::Metrics)).map_err(|e| format!("{name}: {e}"))?;
        let header = reader.headers().map_err(|e| format!("{name}: {e}"))?.clone();
        if header.iter().ne(METRICS_HEADER) {
            return Err(format!("{name} does not have the columns runner writes"));
        }
        let rows = reader
            .records()
            .enumerate()
            .map(|(i, row)| row.map_err(|e| format!("{name} is corrupt at line {}: {e}", i + 2)))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = metrics_rows(&summary.epochs);
        if rows.len() != expected.len() {
            return Err(format!(
                "{name} holds {}, summary.json {}",
                runner_plan::show::count(rows.len(), "epoch"),
                expected.len()
            ));
        }
        match rows
            .iter()
            .zip(&expected)
            .position(|(row, want)| row.iter().ne(want.iter().map(String::as_str)))
        {
            Some(i) => Err(format!(
                "{name} line {} is not the summary's epoch {} (edited, or another run's?)",
                i + 2,
                i + 1
            )),
            None => Ok(()),
        }
    }

    /// The last `n` lines of `log.txt`.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(RunFile::Log)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }
}

/// The folder of a run this process has claimed: its lock is held until
/// this is dropped (and by the operating system if the process dies).
#[derive(Debug)]
pub struct ClaimedRun {
    folder: RunFolder,
    pub(crate) curves: RunCurves,
    _lock: File,
}

impl std::ops::Deref for ClaimedRun {
    type Target = RunFolder;

    fn deref(&self) -> &RunFolder {
        &self.folder
    }
}

impl ClaimedRun {
    /// The claimed folder at `dir`, whose `lock` file is held (its curves
    /// named by its id alone until [`ClaimedRun::with_curves`]).
    pub(crate) fn new(dir: PathBuf, lock: File) -> ClaimedRun {
        ClaimedRun {
            curves: RunCurves::unlabelled(&dir),
            folder: RunFolder::at(dir),
            _lock: lock,
        }
    }

    /// The same claim, its curves going where `curves` says.
    pub(crate) fn with_curves(self, curves: RunCurves) -> ClaimedRun {
        ClaimedRun { curves, ..self }
    }

    /// Records a state transition in `status.json`.
    pub fn record(&self, recorded: &Recorded) -> Result<(), StoreError> {
        self.write_json(RunFile::Status, recorded)
    }

    /// Appends a line to `log.txt`.
    pub fn log(&self, line: &str) -> Result<(), StoreError> {
        let path = self.path(RunFile::Log);
        File::options()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"))
            .map_err(StoreError::at(&path))
    }

    /// Removes everything training wrote ([`RunFile::WRITTEN_BY_TRAINING`],
    /// and the run's TensorBoard curves), for `--force`.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.curves.remove()?;
        for file in RunFile::WRITTEN_BY_TRAINING {
            let path = self.path(file);
            let removed = if file.is_folder() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::at(&path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes `metrics.csv`: one row per epoch ([`METRICS_HEADER`]).
    pub fn write_metrics(&self, epochs: &[EpochRecord]) -> Result<(), StoreError> {
        self.write_csv(RunFile::Metrics, &METRICS_HEADER, metrics_rows(epochs).into_iter())
    }

    /// Writes `lr.csv`: the learning rate of each optimizer step, from step 1.
    pub fn write_learning_rates(&self, rates: &[f64]) -> Result<(), StoreError> {
        let rows = rates
            .iter()
            .enumerate()
            .map(|(i, lr)| vec![(i + 1).to_string(), format!("{lr:e}")]);
        self.write_csv(RunFile::Lr, &["step", "lr"], rows)
    }

    /// Writes `predictions.json`.
    pub fn write_predictions(&self, examples: &[Example]) -> Result<(), StoreError> {
        self.write_json(RunFile::Predictions, &examples)
    }

    /// Writes `test-predictions.json`, compact (a number per note and field:
    /// pretty-printed it would be a line each).
    pub fn write_test_predictions(&self, pieces: &[PiecePrediction]) -> Result<(), StoreError> {
        let text = serde_json::to_string(pieces).expect("records serialise");
        self.write_bytes(RunFile::TestPredictions, text.as_bytes())
    }

    /// Writes a test piece's listening files (see [`RunFolder::listen_files`]):
    /// the MIDI bytes with true and with greedy-predicted velocities.
    pub fn write_listen(&self, name: &str, truth: &[u8], greedy: &[u8]) -> Result<(), StoreError> {
        let dir = self.path(RunFile::Listen);
        std::fs::create_dir_all(&dir).map_err(StoreError::at(&dir))?;
        for (path, bytes) in self.listen_files(name).iter().zip([truth, greedy]) {
            atomic::write(path, bytes).map_err(StoreError::at(path))?;
        }
        Ok(())
    }

    /// Writes `data.json`.
    pub fn write_data(&self, summary: &DatasetSummary) -> Result<(), StoreError> {
        self.write_json(RunFile::Data, summary)
    }

    /// Writes `summary.json`, which marks the run done.
    pub fn write_summary(&self, summary: &Summary) -> Result<(), StoreError> {
        self.write_json(RunFile::Summary, summary)
    }

    /// Writes `config.json` and `config.kdl`.
    pub(crate) fn write_config(&self, canonical: &str, kdl: &str) -> Result<(), StoreError> {
        self.write_bytes(RunFile::Config, canonical.as_bytes())?;
        self.write_bytes(RunFile::ConfigKdl, kdl.as_bytes())
    }

    fn write_json<T: Serialize + ?Sized>(&self, file: RunFile, value: &T) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(value).expect("records serialise");
        self.write_bytes(file, text.as_bytes())
    }

    /// A CSV file of `header` and `rows`, whole or not at all.
    fn write_csv(
        &self,
        file: RunFile,
        header: &[&str],
        rows: impl Iterator<Item = Vec<String>>,
    ) -> Result<(), StoreError> {
        let path = self.path(file);
        let mut writer = csv::Writer::from_writer(Vec::new());
        let written = writer.write_record(header).and_then(|()| {
            for row in rows {
                writer.write_record(&row)?;
            }
            Ok(())
        });
        let bytes = written
            .map_err(std::io::Error::other)
            .and_then(|()| writer.into_inner().map_err(|e| e.into_error()))
            .map_err(StoreError::at(&path))?;
        self.write_bytes(file, &bytes)
    }

    fn write_bytes(&self, file: RunFile, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(file);
        atomic::write(&path, bytes).map_err(StoreError::at(&path))
    }
}

/// The rows of `metrics.csv` for `epochs`, as text.
fn metrics_rows(epochs: &[EpochRecord]) -> Vec<Vec<String>> {
    let optional = |value: Option<f64>| value.map_or(String::new(), |v| v.to_string());
    epochs
        .iter()
        .map(|r| {
            let greedy = |pick: fn(&crate::metrics::VelocityMetrics) -> f64| optional(r.greedy.as_ref().map(pick));
            vec![
                r.epoch.to_string(),
                r.step.to_string(),
                r.train_loss.to_string(),
                r.val_loss.to_string(),
                optional(r.val_ls_kl),
                optional(r.val_ce_with_cls),
                r.val.dist.to_string(),
                r.val.accuracy.to_string(),
                r.val.flatness.to_string(),
                greedy(|m| m.dist),
                greedy(|m| m.accuracy),
                greedy(|m| m.flatness),
                format!("{:.3}", r.seconds),
            ]
        })
        .collect()
}

/// A JSON file, or why it could not be read (naming the file).
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{name} is corrupt: {e}"))
}

/// The names of a test piece's listening files: `NAME.true.mid` (its true
/// velocities) and `NAME.greedy.mid` (the greedy-predicted ones).
pub fn listen_file_names(name: &str) -> [String; 2] {
    ["true", "greedy"].map(|kind| format!("{name}.{kind}.mid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunStore;
    use runner_plan::PlannedRun;

    fn planned() -> PlannedRun {
        let dir = std::env::temp_dir().join(format!("runner-folder-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("one.kdl");
        std::fs::write(&file, "experiment one {\n}\n").unwrap();
        let run = runner_plan::load(&file).unwrap().runs.remove(0);
        std::fs::remove_dir_all(&dir).unwrap();
        run
    }

    fn summary(epochs: u64) -> Summary {
        let metrics = crate::metrics::VelocityMetrics {
            notes: 10,
            dist: 7.25,
            accuracy: 0.1,
            // A split whose true velocities do not vary has no flatness.
            flatness: f64::NAN,
        };
        Summary {
            epochs: (1..=epochs)
                .map(|epoch| EpochRecord {
                    epoch,
                    step: epoch * 10,
                    train_loss: 3.0 / epoch as f64,
                    val_loss: 2.5,
                    val_ls_kl: Some(1.5),
                    val_ce_with_cls: None,
                    val: metrics,
                    greedy: None,
                    seconds: 1.234_567,
                })
                .collect(),
            test: None,
            baseline_mean: metrics,
            baseline_bin_centre: metrics,
            parameters: 1,
            steps: epochs * 10,
            device: "cpu".to_owned(),
            threads: 1,
            precision: "fp32".to_owned(),
            step: "eager".to_owned(),
            cuda_graph: Default::default(),
            seconds: 2.0,
            best: None,
        }
    }

    #[test]
    fn a_finished_run_whose_metrics_are_not_its_summarys_is_told() {
        let root = std::env::temp_dir().join(format!("runner-finished-{}", std::process::id()));
        let claimed = RunStore::new(&root, "one").claim(&planned()).unwrap().unwrap();
        let summary = summary(2);
        claimed.write_metrics(&summary.epochs).unwrap();
        claimed.write_summary(&summary).unwrap();
        assert_eq!(claimed.check_finished(), Ok(()), "NaN reads back as NaN");

        let metrics = claimed.path(RunFile::Metrics);
        let text = std::fs::read_to_string(&metrics).unwrap();
        std::fs::write(&metrics, text.replacen("1.5", "1.25", 1)).unwrap();
        assert_eq!(
            claimed.check_finished().unwrap_err(),
            "metrics.csv line 2 is not the summary's epoch 1 (edited, or another run's?)"
        );
        claimed.write_metrics(&summary.epochs[..1]).unwrap();
        assert_eq!(
            claimed.check_finished().unwrap_err(),
            "metrics.csv holds 1 epoch, summary.json 2"
        );
        std::fs::write(claimed.path(RunFile::Summary), "{\"epochs\": [").unwrap();
        assert!(
            claimed
                .check_finished()
                .unwrap_err()
                .starts_with("summary.json is corrupt")
        );
        drop(claimed);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reset_removes_everything_training_wrote_and_keeps_the_configuration() {
        let root = std::env::temp_dir().join(format!("runner-folder-{}", std::process::id()));
        let run = planned();
        let claimed = RunStore::new(&root, "one").claim(&run).unwrap().unwrap();
        claimed.record(&Recorded::Running).unwrap();
        claimed.log("starting").unwrap();
        claimed.write_metrics(&[]).unwrap();
        claimed.write_learning_rates(&[0.1, 0.2]).unwrap();
        claimed.write_predictions(&[]).unwrap();
        for file in [RunFile::Data, RunFile::Summary] {
            std::fs::write(claimed.path(file), "{}").unwrap();
        }
        for file in RunFile::WRITTEN_BY_TRAINING.into_iter().filter(|f| f.is_folder()) {
            std::fs::create_dir_all(claimed.path(file).join("x")).unwrap();
        }
        assert_eq!(claimed.learning_rates().unwrap(), [(1, 0.1), (2, 0.2)]);

        claimed.reset().unwrap();
        for file in RunFile::WRITTEN_BY_TRAINING {
            assert!(!claimed.path(file).exists(), "{} is left", file.name());
        }
        for file in [RunFile::Config, RunFile::ConfigKdl, RunFile::Lock] {
            assert!(claimed.path(file).exists(), "{} is gone", file.name());
        }
        drop(claimed);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
