//! What a run leaves on disk while it trains, for whoever watches it: its
//! TensorBoard curves ([`runner_store::tensorboard`]) and `progress.json`
//! ([`runner_store::progress`]).
//!
//! In: the claimed run and where training stands (each step's learning rate
//! and running loss, evaluations, checkpoints, the summary). Out: events,
//! buffered and handed to the file together with a new `progress.json` at
//! most every [`progress::EVERY`] while steps go on, and at once when an
//! evaluation starts and ends, at every checkpoint and at the end. A write
//! that fails is a [`StoreError`], as every other write of the run.

use std::time::Instant;

use runner_store::progress::{self, Phase, RecentRate, RunProgress};
use runner_store::records::{EpochRecord, Summary};
use runner_store::tensorboard::Curves;
use runner_store::{ClaimedRun, StoreError};

/// A run's curves and progress file, being written.
pub struct Live<'a> {
    run: &'a ClaimedRun,
    curves: Curves,
    state: RunProgress,
    rate: RecentRate,
    started: Instant,
    written: Instant,
}

impl<'a> Live<'a> {
    /// Opens a new event file for `run` and writes its first progress:
    /// `step` of `total_steps` taken and `epoch` of `epochs` finished (a
    /// resumed run's checkpoint, else 0). A run that is not `resumed`
    /// starts its curves over.
    pub fn open(
        run: &'a ClaimedRun,
        resumed: bool,
        (step, total_steps): (u64, u64),
        (epoch, epochs): (u64, u64),
    ) -> Result<Live<'a>, StoreError> {
        let curves = run.curves(resumed.then_some(step + 1))?;
        let mut live = Live {
            run,
            curves,
            state: RunProgress {
                phase: Phase::Training,
                step,
                total_steps,
                epoch,
                epochs,
                seconds: 0.0,
                steps_per_second: None,
                loss: None,
                updated: 0.0,
            },
            rate: RecentRate::default(),
            started: Instant::now(),
            written: Instant::now(),
        };
        live.write()?;
        Ok(live)
    }

    /// An optimizer step: its learning rate, and the running loss when read.
    pub fn step(&mut self, step: u64, lr: f64, loss: Option<f64>) -> Result<(), StoreError> {
        self.curves.step(step, lr, loss)?;
        self.state.step = step;
        if loss.is_some() {
            self.state.loss = loss;
        }
        if self.written.elapsed() >= progress::EVERY {
            self.write()?;
        }
        Ok(())
    }

    /// Training of `epoch` is done and its evaluation starts.
    pub fn evaluating(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.state.epoch = epoch;
        self.state.phase = Phase::Evaluating;
        self.write()
    }

    /// An epoch was evaluated.
    pub fn evaluated(&mut self, record: &EpochRecord) -> Result<(), StoreError> {
        self.curves.epoch(record)?;
        self.state.phase = Phase::Training;
        self.write()
    }

    /// A checkpoint was written after `epoch` finished epochs.
    pub fn checkpointed(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.state.epoch = epoch;
        self.write()
    }

    /// The run finished: its test metrics, the end of its session.
    pub fn finished(&mut self, summary: &Summary) -> Result<(), StoreError> {
        if let Some(test) = &summary.test {
            self.curves.test(summary.steps, test)?;
        }
        self.curves.finished()?;
        self.write()
    }

    /// The run failed: the end of its TensorBoard session, as a failure
    /// (a write that fails is left unsaid: the run's own error is the news).
    pub fn failed(&mut self) {
        let _ = self.curves.failed();
    }

    /// Rewrites `progress.json` and hands the events to the file (in this
    /// order: on a full disk the new file fails first, naming the run's
    /// folder, where an event file may still grow into its last block).
    fn write(&mut self) -> Result<(), StoreError> {
        let seconds = self.started.elapsed().as_secs_f64();
        self.rate.observe(seconds, self.state.step);
        self.state.seconds = seconds;
        self.state.steps_per_second = self.rate.per_second();
        self.state.updated = progress::now();
        self.run.write_progress(&self.state)?;
        self.curves.flush()?;
        self.written = Instant::now();
        Ok(())
    }
}
