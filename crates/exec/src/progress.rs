//! Progress: the [`Reporter`] the executor reports through, and [`Bars`],
//! the only code that knows `indicatif`.
//!
//! In: callbacks (a line to show, a run starting to train, its steps and
//! evaluations, a run ended). Out: on stderr, when it is a terminal, a
//! `MultiProgress` with one bar per run training now (its steps, loss and
//! learning rate, or that it is evaluating) and an overall bar below them
//! with the plan's ETA ([`plan_eta`]), lines printed above the bars; when it
//! is not, plain lines: each epoch, each failure and one line per finished
//! run. A worker process reports through another [`Reporter`]
//! (`worker::Events`) that sends the same callbacks to its parent as JSON.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::RunResult;
use runner_job::{Evaluated, Progress};
use runner_store::records::EpochRecord;

/// What the executor tells about its progress; only implementations print.
pub trait Reporter: Sync {
    /// A line to show (a failure, a worker's message).
    fn line(&self, text: &str);
    /// The run `id` (labelled `label`) starts training: where its steps and
    /// epochs go. Dropping it removes the run's bar.
    fn run(&self, id: &str, label: &str) -> Box<dyn Progress + '_>;
    /// A selected run ended, in any way (skipped runs too).
    fn finished(&self, result: &RunResult);
}

/// Bars on a terminal, plain lines otherwise.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    terminal: bool,
    work: Mutex<Work>,
}

/// How far the plan's training got, for its ETA.
#[derive(Debug, Default)]
struct Work {
    /// Runs selected.
    runs: u64,
    /// When the first run started training.
    started: Option<Instant>,
    /// Runs that trained here and ended (in any way).
    ended: u64,
    /// Runs that ended without training (skipped, busy, not started...).
    settled: u64,
    /// Each run training now: the share of its steps left at its start that it took.
    running: HashMap<String, f64>,
}

impl Work {
    /// The plan's ETA from what is done so far.
    fn eta(&self) -> Option<Duration> {
        let done = self.ended as f64 + self.running.values().sum::<f64>();
        let total = self.runs.saturating_sub(self.settled) as f64;
        plan_eta(self.started?.elapsed(), done, total)
    }
}

/// The time left to train `total` runs when `done` of them (counting the
/// share of steps taken of each run in training) took `elapsed`: the runs
/// left are taken to last as long as those done, at the same parallelism.
/// `None` before a hundredth of a run is done.
pub fn plan_eta(elapsed: Duration, done: f64, total: f64) -> Option<Duration> {
    (done >= 0.01).then(|| elapsed.mul_f64((total - done).max(0.0) / done))
}

impl Bars {
    /// A reporter for `runs` runs.
    pub fn new(runs: u64) -> Bars {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(runs));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} runs {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("exec");
        Bars {
            multi,
            overall,
            terminal,
            work: Mutex::new(Work {
                runs,
                ..Work::default()
            }),
        }
    }

    /// Updates the plan's ETA after `change`.
    fn work(&self, change: impl FnOnce(&mut Work)) {
        let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut work);
        let eta = work
            .eta()
            .map_or(String::new(), |eta| format!("ETA {}", HumanDuration(eta)));
        self.overall.set_message(eta);
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

impl Reporter for Bars {
    fn line(&self, text: &str) {
        if self.terminal {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn run(&self, id: &str, label: &str) -> Box<dyn Progress + '_> {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} steps {per_sec} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let short: String = id.chars().take(8).collect();
        bar.set_prefix(short.clone());
        Box::new(RunBar {
            bar,
            id: id.to_owned(),
            label: if label.is_empty() {
                short
            } else {
                format!("{short} {label}")
            },
            started: Instant::now(),
            first_step: Cell::new(0),
            message: RefCell::new(String::new()),
            reporter: self,
        })
    }

    fn finished(&self, result: &RunResult) {
        self.work(|work| match work.running.remove(&result.id) {
            Some(_) => work.ended += 1,
            None => work.settled += 1,
        });
        self.overall.inc(1);
        let count = format!("[{}/{}]", self.overall.position(), self.overall.length().unwrap_or(0));
        self.line(&format!("{count} {}", result.describe()));
    }
}

/// One run's bar; implements the trainer's [`Progress`].
struct RunBar<'a> {
    bar: ProgressBar,
    id: String,
    label: String,
    started: Instant,
    /// The step it started at (a resumed run's checkpoint).
    first_step: Cell<u64>,
    /// What the bar says while training (the last loss and learning rate).
    message: RefCell<String>,
    reporter: &'a Bars,
}

impl Progress for RunBar<'_> {
    fn start(&self, total: u64, done: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        self.bar.enable_steady_tick(Duration::from_millis(200));
        self.first_step.set(done);
        self.reporter.work(|work| {
            work.started.get_or_insert_with(Instant::now);
            work.running.insert(self.id.clone(), 0.0);
        });
    }

    fn step(&self, step: u64, lr: f64, loss: Option<f64>) {
        self.bar.set_position(step);
        if let Some(loss) = loss {
            let message = format!("loss {loss:.3} lr {lr:.2e}");
            self.bar.set_message(message.clone());
            *self.message.borrow_mut() = message;
        }
        let first = self.first_step.get();
        let total = self.bar.length().unwrap_or(0);
        let share = step.saturating_sub(first) as f64 / total.saturating_sub(first).max(1) as f64;
        self.reporter.work(|work| {
            work.running.insert(self.id.clone(), share.min(1.0));
        });
    }

    fn evaluating(&self, epoch: u64, on: Evaluated) {
        self.bar.set_message(on.describe(epoch));
    }

    fn epoch(&self, r: &EpochRecord) {
        self.bar.set_message(self.message.borrow().clone());
        let greedy = r
            .greedy
            .map_or(String::new(), |g| format!(", greedy dist {:.2}", g.dist));
        self.reporter.line(&format!(
            "{}: epoch {} step {}: train loss {:.3}, val loss {:.3}, val dist {:.2}{greedy}, flatness {:.2} ({:.0}s)",
            self.label,
            r.epoch,
            r.step,
            r.train_loss,
            r.val_loss,
            r.val.dist,
            r.val.flatness,
            self.started.elapsed().as_secs_f64()
        ));
    }
}

impl Drop for RunBar<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_eta_takes_the_runs_left_to_last_as_long_as_those_done() {
        let minute = Duration::from_secs(60);
        assert_eq!(plan_eta(minute, 1.0, 4.0), Some(minute * 3));
        assert_eq!(plan_eta(minute, 0.5, 2.0), Some(minute * 3));
        assert_eq!(plan_eta(minute, 2.0, 2.0), Some(Duration::ZERO));
        assert_eq!(plan_eta(minute, 0.0, 2.0), None);
    }

    #[test]
    fn runs_that_end_without_training_are_not_part_of_the_work() {
        let mut work = Work {
            runs: 4,
            started: Some(Instant::now()),
            ended: 1,
            settled: 2,
            running: HashMap::from([("a".to_owned(), 0.5)]),
        };
        // 1.5 of 2 runs done: a third of the time taken is left.
        let eta = work.eta().unwrap();
        let elapsed = work.started.unwrap().elapsed();
        assert!(eta <= elapsed / 3 + Duration::from_millis(5), "{eta:?} {elapsed:?}");
        work.started = None;
        assert_eq!(work.eta(), None, "nothing trained yet");
    }
}
