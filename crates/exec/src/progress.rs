//! Progress: the [`Reporter`] the executor reports through, and [`Bars`],
//! the only code that knows `indicatif`.
//!
//! In: callbacks (a line to show, a run starting to train, a run ended).
//! Out: on stderr, when it is a terminal, a `MultiProgress` with one bar per
//! run training now and an overall bar below them, lines printed above the
//! bars; when it is not, plain lines: each epoch, each failure and one line
//! per finished run. A worker process reports through another [`Reporter`]
//! (`worker::Events`) that sends the same callbacks to its parent as JSON.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::RunResult;
use runner_job::Progress;
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
        }
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
            label: if label.is_empty() {
                short
            } else {
                format!("{short} {label}")
            },
            started: Instant::now(),
            reporter: self,
        })
    }

    fn finished(&self, result: &RunResult) {
        self.overall.inc(1);
        let count = format!("[{}/{}]", self.overall.position(), self.overall.length().unwrap_or(0));
        self.line(&format!("{count} {}", result.describe()));
    }
}

/// One run's bar; implements the trainer's [`Progress`].
struct RunBar<'a> {
    bar: ProgressBar,
    label: String,
    started: Instant,
    reporter: &'a Bars,
}

impl Progress for RunBar<'_> {
    fn start(&self, total: u64, done: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn step(&self, step: u64, lr: f64, loss: Option<f64>) {
        self.bar.set_position(step);
        if let Some(loss) = loss {
            self.bar.set_message(format!("loss {loss:.3} lr {lr:.2e}"));
        }
    }

    fn epoch(&self, r: &EpochRecord) {
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
