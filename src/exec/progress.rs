//! The only module that knows `indicatif`: a bar for the whole plan and one
//! for the run in progress, drawn on stderr when it is a terminal; plain
//! lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::run::{EpochRecord, Progress};

/// Progress of a whole `runner exec`.
pub struct Reporter {
    multi: MultiProgress,
    overall: ProgressBar,
    terminal: bool,
}

impl Reporter {
    /// A reporter for `runs` runs.
    pub fn new(runs: u64) -> Reporter {
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
        Reporter {
            multi,
            overall,
            terminal,
        }
    }

    /// Prints a line above the bars (or on stderr without a terminal).
    pub fn line(&self, text: &str) {
        if self.terminal {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// One run finished (in any way).
    pub fn run_finished(&self) {
        self.overall.inc(1);
    }

    /// A bar for one run's training.
    pub fn run(&self, label: &str) -> RunBar<'_> {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} steps {per_sec} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.chars().take(8).collect::<String>());
        RunBar {
            bar,
            label: label.to_owned(),
            started: Instant::now(),
            terminal: self.terminal,
            reporter: self,
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

/// One run's bar; implements the trainer's [`Progress`].
pub struct RunBar<'a> {
    bar: ProgressBar,
    label: String,
    started: Instant,
    terminal: bool,
    reporter: &'a Reporter,
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
        let line = format!(
            "{}: epoch {} step {}: train loss {:.3}, val loss {:.3}, val dist {:.2}{greedy}, flatness {:.2} ({:.0}s)",
            self.label,
            r.epoch,
            r.step,
            r.train_loss,
            r.val_loss,
            r.val.dist,
            r.val.flatness,
            self.started.elapsed().as_secs_f64()
        );
        if self.terminal {
            let _ = self.reporter.multi.println(&line);
        } else {
            eprintln!("{line}");
        }
    }
}

impl Drop for RunBar<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
