//! Where a run stands, for `runner status`: `progress.json`, which the
//! worker leaves while it trains, and the latest evaluation in
//! `metrics.csv`.
//!
//! In: the worker's position as it trains (step, epoch, phase, running
//! loss), sampled into a [`RecentRate`]. Out: [`RunProgress`], written whole
//! ([`crate::atomic`]) at most every [`EVERY`] and at every evaluation and
//! checkpoint, read back with its estimated time left
//! ([`RunProgress::eta`]); [`LatestEvaluation`], the last row of
//! `metrics.csv`.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::files::RunFile;
use crate::folder::{METRICS_HEADER, RunFolder};
use crate::{ClaimedRun, StoreError, atomic};

/// The least time between two writes of `progress.json` while training
/// steps (evaluations and checkpoints write it at once).
pub const EVERY: Duration = Duration::from_secs(2);

/// How far back [`RecentRate`] looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What a run in training is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Taking optimizer steps.
    Training,
    /// Evaluating the epoch just trained.
    Evaluating,
}

/// `progress.json`: the live position of a run in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    /// What it is doing.
    pub phase: Phase,
    /// Optimizer steps taken.
    pub step: u64,
    /// Optimizer steps in all.
    pub total_steps: u64,
    /// Epochs finished.
    pub epoch: u64,
    /// Epochs in all.
    pub epochs: u64,
    /// Seconds since this process started training it.
    pub seconds: f64,
    /// Steps per second over the last [`RATE_WINDOW`] (evaluations in it
    /// included); `None` until it can be told.
    pub steps_per_second: Option<f64>,
    /// The running training loss last read.
    pub loss: Option<f64>,
    /// When it was written, in seconds since the Unix epoch.
    pub updated: f64,
}

impl RunProgress {
    /// Seconds left at `now` (seconds since the Unix epoch): the steps left
    /// divided by the recent rate ([`RunProgress::steps_per_second`]), less
    /// the time since the file was written, never below 0; `None` without a
    /// rate. Evaluations still to come count only as far as the recent rate
    /// saw one.
    pub fn eta(&self, now: f64) -> Option<f64> {
        let rate = self.steps_per_second.filter(|r| *r > 0.0)?;
        let left = self.total_steps.saturating_sub(self.step) as f64 / rate;
        Some((left - (now - self.updated).max(0.0)).max(0.0))
    }
}

/// The step rate over the last [`RATE_WINDOW`], from (time, step) samples.
#[derive(Debug, Clone, Default)]
pub struct RecentRate {
    samples: VecDeque<(f64, u64)>,
}

impl RecentRate {
    /// Notes that `step` steps were taken at `seconds` (since any fixed
    /// start); samples older than the window, but the last one before it,
    /// are dropped.
    pub fn observe(&mut self, seconds: f64, step: u64) {
        self.samples.push_back((seconds, step));
        let window = RATE_WINDOW.as_secs_f64();
        while self.samples.len() > 2 && seconds - self.samples[1].0 >= window {
            self.samples.pop_front();
        }
    }

    /// Steps per second between the oldest sample kept and the newest;
    /// `None` until they are half a second apart.
    pub fn per_second(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.0 - first.0;
        (seconds >= 0.5).then(|| last.1.saturating_sub(first.1) as f64 / seconds)
    }
}

/// The latest evaluated epoch, from the last row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestEvaluation {
    /// The epoch (1-based).
    pub epoch: u64,
    /// Optimizer steps at its end.
    pub step: u64,
    /// Its mean training objective.
    pub train_loss: f64,
    /// Teacher-forced validation distance.
    pub val_dist: f64,
    /// Greedy validation distance, when evaluated.
    pub greedy_dist: Option<f64>,
}

impl RunFolder {
    /// `progress.json`, when there is one that reads.
    pub fn progress(&self) -> Option<RunProgress> {
        let text = std::fs::read_to_string(self.path(RunFile::Progress)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The last row of `metrics.csv`, when it has one that reads.
    pub fn latest_evaluation(&self) -> Option<LatestEvaluation> {
        let mut reader = csv::Reader::from_path(self.path(RunFile::Metrics)).ok()?;
        let header = reader.headers().ok()?.clone();
        let row = reader.records().filter_map(Result::ok).last()?;
        let cell = |name: &str| {
            debug_assert!(METRICS_HEADER.contains(&name));
            let i = header.iter().position(|h| h == name)?;
            row.get(i).filter(|v| !v.is_empty())
        };
        let number = |name: &str| cell(name).and_then(|v| v.parse::<f64>().ok());
        Some(LatestEvaluation {
            epoch: cell("epoch")?.parse().ok()?,
            step: cell("step")?.parse().ok()?,
            train_loss: number("train_loss")?,
            val_dist: number("val_dist")?,
            greedy_dist: number("greedy_dist"),
        })
    }
}

impl ClaimedRun {
    /// Writes `progress.json`, whole.
    pub fn write_progress(&self, progress: &RunProgress) -> Result<(), StoreError> {
        let path = self.path(RunFile::Progress);
        let text = serde_json::to_string_pretty(progress).expect("a progress serialises");
        atomic::write(&path, text.as_bytes()).map_err(StoreError::at(&path))
    }
}

/// Seconds since the Unix epoch, as [`RunProgress::updated`] counts them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(step: u64, rate: Option<f64>) -> RunProgress {
        RunProgress {
            phase: Phase::Training,
            step,
            total_steps: 1000,
            epoch: 1,
            epochs: 4,
            seconds: 30.0,
            steps_per_second: rate,
            loss: Some(2.5),
            updated: 100.0,
        }
    }

    #[test]
    fn the_eta_is_the_steps_left_at_the_recent_rate_less_the_time_since() {
        assert_eq!(progress(400, Some(10.0)).eta(100.0), Some(60.0));
        assert_eq!(progress(400, Some(10.0)).eta(110.0), Some(50.0));
        assert_eq!(progress(400, Some(10.0)).eta(1000.0), Some(0.0));
        assert_eq!(progress(400, None).eta(100.0), None);
        assert_eq!(progress(400, Some(0.0)).eta(100.0), None);
        assert_eq!(progress(1000, Some(10.0)).eta(100.0), Some(0.0));
    }

    #[test]
    fn the_rate_looks_back_one_window() {
        let mut rate = RecentRate::default();
        rate.observe(0.0, 0);
        assert_eq!(rate.per_second(), None);
        rate.observe(0.25, 5);
        assert_eq!(rate.per_second(), None, "too soon to tell");
        rate.observe(2.0, 20);
        assert_eq!(rate.per_second(), Some(10.0));
        // A slow start falls out of the window: the rate becomes the recent one.
        for t in 1..=60u32 {
            rate.observe(2.0 + f64::from(t) * 2.0, 20 + u64::from(t) * 100);
        }
        assert!(
            (rate.per_second().unwrap() - 50.0).abs() < 1e-9,
            "{:?}",
            rate.per_second()
        );
    }

    #[test]
    fn progress_round_trips_and_the_latest_evaluation_is_the_last_row() {
        let root = std::env::temp_dir().join(format!("runner-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let folder = RunFolder::at(&root);
        assert_eq!(folder.progress(), None);
        assert_eq!(folder.latest_evaluation(), None);
        let text = serde_json::to_string(&progress(5, Some(1.5))).unwrap();
        std::fs::write(folder.path(RunFile::Progress), &text).unwrap();
        assert_eq!(folder.progress(), Some(progress(5, Some(1.5))));
        assert!(text.contains("\"phase\":\"training\""), "{text}");
        let header = METRICS_HEADER.join(",");
        std::fs::write(
            folder.path(RunFile::Metrics),
            format!(
                "{header}\n1,10,3.5,3,,,12.5,0.1,0.5,,,,1.000\n2,20,3.25,2.75,,,11.5,0.1,0.5,13.25,0.1,0.4,2.000\n"
            ),
        )
        .unwrap();
        assert_eq!(
            folder.latest_evaluation(),
            Some(LatestEvaluation {
                epoch: 2,
                step: 20,
                train_loss: 3.25,
                val_dist: 11.5,
                greedy_dist: Some(13.25),
            })
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
