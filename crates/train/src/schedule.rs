//! Learning-rate schedules (FACTS.md section 5): a [`Schedule`], the model
//! width, where training stands ([`Clock`]) and the run's total steps in;
//! the learning rate for that step out. A pure function, so a resumed run
//! recomputes it from its position alone.

use std::f64::consts::PI;

use runner_plan::config::{NoamCounts, Schedule};

/// Where training stands when an optimizer step is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Optimizer steps, counting this one (1-based).
    pub step: u64,
    /// Forward passes before this step's last one (its 0-based index).
    pub batch: u64,
}

/// The learning rate at `clock` of a run of `total_steps` steps.
///
/// - Noam: `factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5)`, where `s`
///   is the optimizer step, or with `counts=batches` the index of the step's
///   last forward pass (midi-translation's `LambdaLR` steps after every
///   batch, from 0); an `s` of 0 is read as 1, as the original does.
/// - Constant: `lr`.
/// - Cosine: `peak * step / warmup` up to `warmup`, then
///   `min + (peak - min) * (1 + cos(pi * progress)) / 2` with `progress`
///   going from 0 after the warm-up to 1 at `total_steps` (held at `min`
///   beyond it).
pub fn lr(schedule: &Schedule, d_model: usize, clock: Clock, total_steps: u64) -> f64 {
    let step = clock.step.max(1);
    match *schedule {
        Schedule::Noam { warmup, factor, counts } => {
            let s = match counts {
                NoamCounts::Steps => step,
                NoamCounts::Batches => clock.batch.max(1),
            } as f64;
            let warmup = warmup.max(1) as f64;
            factor * (d_model as f64).powf(-0.5) * s.powf(-0.5).min(s * warmup.powf(-1.5))
        }
        Schedule::Constant { lr } => lr,
        Schedule::Cosine { peak, min, warmup } => {
            if step <= warmup {
                return peak * step as f64 / warmup as f64;
            }
            let decay = total_steps.saturating_sub(warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / decay).min(1.0);
            min + (peak - min) * 0.5 * (1.0 + (PI * progress).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    /// Optimizer step `step` with one forward pass per step.
    fn at_step(step: u64) -> Clock {
        Clock {
            step,
            batch: step.saturating_sub(1),
        }
    }

    #[test]
    fn noam_rises_to_its_peak_at_warmup_then_decays() {
        let noam = Schedule::Noam {
            warmup: 4000,
            factor: 1.0,
            counts: NoamCounts::Steps,
        };
        let at = |step| lr(&noam, 256, at_step(step), 100_000);
        // 256^-0.5 * 4000^-1.5 = 2.4705e-7; 256^-0.5 * 4000^-0.5 = 9.8821e-4.
        assert!(close(at(1), 2.4705e-7, 1e-4), "{}", at(1));
        assert!(close(at(4000), 9.8821e-4, 1e-4), "{}", at(4000));
        assert!(close(at(2000), at(4000) / 2.0, 1e-12));
        assert!(close(at(16000), at(4000) / 2.0, 1e-12));
        assert_eq!(at(0), at(1));
        assert!((1..4000).all(|s| at(s) < at(s + 1)));
        assert!((4000..8000).all(|s| at(s) > at(s + 1)));
        let doubled = Schedule::Noam {
            warmup: 4000,
            factor: 2.0,
            counts: NoamCounts::Steps,
        };
        assert!(close(lr(&doubled, 256, at_step(123), 1), 2.0 * at(123), 1e-12));
    }

    #[test]
    fn noam_counting_batches_reads_the_last_batch_index() {
        let noam = Schedule::Noam {
            warmup: 4000,
            factor: 1.0,
            counts: NoamCounts::Batches,
        };
        let by_steps = Schedule::Noam {
            warmup: 4000,
            factor: 1.0,
            counts: NoamCounts::Steps,
        };
        // Step 400 of 10 passes each ends with pass 3999 (0-based): the rate
        // of step 3999 when counting steps.
        let clock = Clock { step: 400, batch: 3999 };
        assert_eq!(lr(&noam, 256, clock, 1), lr(&by_steps, 256, at_step(3999), 1));
        // The first pass is index 0, read as 1 (LambdaLR's first rate).
        let first = Clock { step: 1, batch: 0 };
        assert!(close(lr(&noam, 256, first, 1), 2.4705e-7, 1e-4));
    }

    #[test]
    fn constant_is_constant() {
        let constant = Schedule::Constant { lr: 3e-6 };
        assert!(
            [1, 2, 1000, 1_000_000]
                .iter()
                .all(|&s| lr(&constant, 256, at_step(s), 10) == 3e-6)
        );
    }

    #[test]
    fn cosine_warms_up_linearly_then_falls_to_its_minimum() {
        let cosine = Schedule::Cosine {
            peak: 1e-3,
            min: 1e-5,
            warmup: 10,
        };
        let at = |step| lr(&cosine, 256, at_step(step), 110);
        assert!(close(at(1), 1e-4, 1e-12));
        assert!(close(at(5), 5e-4, 1e-12));
        assert!(close(at(10), 1e-3, 1e-12));
        // Half-way through the decay: the mean of peak and min.
        assert!(close(at(60), (1e-3 + 1e-5) / 2.0, 1e-12));
        assert!(close(at(110), 1e-5, 1e-12));
        assert!(close(at(500), 1e-5, 1e-12));
        assert!((10..110).all(|s| at(s) > at(s + 1)));
        let no_warmup = Schedule::Cosine {
            peak: 1e-3,
            min: 0.0,
            warmup: 0,
        };
        assert!(close(
            lr(&no_warmup, 256, at_step(1), 100),
            1e-3 * 0.5 * (1.0 + (PI / 100.0).cos()),
            1e-12
        ));
    }
}
